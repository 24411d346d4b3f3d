//! Naming user addresses of a live process: blazesym over /proc/<pid>/maps for native code, the
//! process's perf map or jitdump for JIT code, names demangled in its runtime's way; turning
//! sampled stacks into named call chains and ranking their leaves; and a syscall-blocked thread's
//! call chain, unwound from outside without stopping it.
use std::collections::HashMap;

use blazesym::{
    symbolize::{source::Process, source::Source, Input, Symbolized, Symbolizer},
    Pid,
};

use super::{
    jitnames::JitNames,
    runtime::{recognise, Recognised},
    unwind::{ChainFrame, Registers, Unwinder},
};
use crate::{
    analysis::{
        runtime::{demangle, is_outermost, Runtime},
        snapshot::SampledStack,
    },
    capture::StackSample,
    proc::{
        maps::{mapping_of, mappings, Mapping},
        task::current_syscall,
    },
};

/// One symbolized address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub addr: u64,
    /// None when no symbol covers the address (stripped, JIT code no map names, unmapped).
    pub function: Option<String>,
    /// Bytes from the function's start; for an unnamed address, its offset in the mapped file.
    pub offset: u64,
    /// Path of the mapped file (or `[vdso]` and the like) holding the address.
    pub module: Option<String>,
    /// In anonymous executable memory: code a JIT compiler wrote.
    pub jit: bool,
    /// Found by scanning the stack for return addresses, not by unwinding: maybe stale.
    pub guess: bool,
}

/// What blazesym found for one address.
#[derive(Clone)]
struct Named {
    function: String,
    offset: u64,
    module: Option<String>,
}

/// blazesym's answers for `addrs`, one per address; None where it found nothing.
fn lookup(pid: u32, addrs: &[u64]) -> Vec<Option<Named>> {
    let run = |map_files: bool| -> Option<Vec<Option<Named>>> {
        let mut process = Process::new(Pid::from(pid));
        // map_files survives deleted files and other mount namespaces but needs privilege even
        // for one's own process; symbolic paths are the fallback.
        process.map_files = map_files;
        // JIT code is named from the perf map by `ProcessSymbols`, which also reads jitdumps.
        process.perf_map = false;
        // Names are demangled by `runtime::demangle`, which knows OCaml's too.
        let symbolizer = Symbolizer::builder().enable_demangling(false).build();
        let symbolized = symbolizer.symbolize(&Source::Process(process), Input::AbsAddr(addrs)).ok()?;
        Some(
            symbolized
                .iter()
                .map(|s| match s {
                    Symbolized::Sym(sym) => Some(Named {
                        function: sym.name.to_string(),
                        offset: sym.offset as u64,
                        module: sym.module.as_ref().map(|m| m.to_string_lossy().into_owned()),
                    }),
                    Symbolized::Unknown(_) => None,
                })
                .collect(),
        )
    };
    if addrs.is_empty() {
        return Vec::new();
    }
    match run(true) {
        Some(found) if found.iter().any(Option::is_some) => found,
        _ => run(false).unwrap_or_else(|| vec![None; addrs.len()]),
    }
}

/// Everything naming one process's addresses needs, read once: its mappings, its runtime and the
/// names it wrote for its JIT code.
pub struct ProcessSymbols {
    pub pid: u32,
    maps: Vec<Mapping>,
    pub runtime: Recognised,
    pub jit: JitNames,
    /// Call frame information of the process's files, read when a stack first needs it.
    unwinder: std::cell::RefCell<Unwinder>,
}

impl ProcessSymbols {
    pub fn read(pid: u32) -> Self {
        let maps = mappings(pid);
        let runtime = recognise(pid, &maps);
        let jit = JitNames::of_process(pid, maps.iter().filter_map(|m| m.path.as_deref()));
        ProcessSymbols { pid, maps, runtime, jit, unwinder: std::cell::RefCell::new(Unwinder::new(pid)) }
    }

    /// Frames for `addrs` (same order and length). Where `returns[i]` is set the address is a
    /// return address, which points past its call and may already be in the next function if the
    /// call was a function's last instruction (a call to a noreturn function), so it is looked up
    /// one byte back. Never fails: what cannot be named has `function: None`.
    pub fn frames(&self, addrs: &[u64], returns: &[bool]) -> Vec<Frame> {
        let back: Vec<u64> = (0..addrs.len()).map(|i| u64::from(returns.get(i).copied().unwrap_or(false))).collect();
        let lookups: Vec<u64> = addrs.iter().zip(&back).map(|(a, b)| a.saturating_sub(*b)).collect();
        let found = lookup(self.pid, &lookups);
        addrs
            .iter()
            .enumerate()
            .map(|(i, &addr)| {
                let mapping = mapping_of(&self.maps, addr);
                let mapped_path = mapping.and_then(|m| m.path.clone());
                let jit = mapping.is_some_and(|m| m.executable && m.path.is_none());
                let mut frame = Frame { addr, function: None, offset: 0, module: mapped_path, jit, guess: false };
                if let Some(Named { function, offset, module }) = found.get(i).cloned().flatten() {
                    frame.function = Some(demangle(&function));
                    frame.offset = offset + back[i];
                    frame.module = module.or(frame.module);
                } else if let Some((name, offset)) = self.jit.lookup(lookups[i]) {
                    frame.function = Some(name.to_string());
                    frame.offset = offset + back[i];
                } else if let Some(m) = mapping {
                    frame.offset = addr - m.start + m.file_offset;
                }
                frame
            })
            .collect()
    }

    /// Where names of JIT code came from, or how to get them when `frames` hold JIT code no map
    /// names; empty when no frame is JIT code.
    pub fn jit_note<'a>(&self, frames: impl IntoIterator<Item = &'a Frame>) -> String {
        let (mut any, mut unnamed) = (false, false);
        for f in frames.into_iter().filter(|f| f.jit) {
            any = true;
            unnamed |= f.function.is_none();
        }
        let sources: Vec<String> = self.jit.sources.iter().map(|p| p.display().to_string()).collect();
        match (any, unnamed, sources.is_empty()) {
            (false, _, _) => String::new(),
            (true, false, _) => format!("JIT code named from {}", sources.join(", ")),
            (true, true, true) => self.runtime.runtime.jit_hint().replace("PID", &self.pid.to_string()),
            (true, true, false) => {
                format!("some JIT code is not in {} (written after it was read?)", sources.join(", "))
            }
        }
    }

    pub fn runtime(&self) -> Runtime {
        self.runtime.runtime
    }
}

/// Frames for `addrs` (same order and length) in process `pid`, none of them return addresses.
pub fn symbolize(pid: u32, addrs: &[u64]) -> Vec<Frame> {
    ProcessSymbols::read(pid).frames(addrs, &[])
}

/// How unnamed JIT code reads: one name for all of it, so that chains through it merge (its
/// addresses mean nothing without the runtime's map).
pub const UNNAMED_JIT: &str = "[JIT code]";

/// How a frame is named in call chains and rankings: its function, else [`UNNAMED_JIT`] or
/// `0x<addr> (<module>)`.
pub fn label(frame: &Frame) -> String {
    match &frame.function {
        Some(name) => name.clone(),
        None if frame.jit => UNNAMED_JIT.to_string(),
        None => format!("{:#x} ({})", frame.addr, frame.module.as_deref().unwrap_or("unmapped")),
    }
}

/// `lock_b_then_a (abba)`: the function and the file it lives in; `(JIT)` for JIT code; a frame
/// found only by scanning the stack starts with `? `.
pub fn frame_text(frame: &Frame) -> String {
    let module = frame.module.as_deref().map(|m| m.rsplit('/').next().unwrap_or(m));
    let guess = if frame.guess { "? " } else { "" };
    match (&frame.function, module) {
        (Some(_), _) if frame.jit => format!("{guess}{} (JIT)", label(frame)),
        (None, _) if frame.jit => format!("{guess}{UNNAMED_JIT} at {:#x}", frame.addr),
        (Some(_), Some(m)) => format!("{guess}{} ({m})", label(frame)),
        _ => format!("{guess}{}", label(frame)),
    }
}

/// The sampled stacks as named call chains, innermost first, most samples first; samples whose
/// frames name the same chain are merged. The frames are returned too, for notes on JIT code.
pub fn sampled_stacks(symbols: &ProcessSymbols, samples: &[StackSample]) -> (Vec<SampledStack>, Vec<Frame>) {
    // Every distinct (address, is a return address) once.
    let chain = |s: &StackSample| -> Vec<u64> {
        if s.stack.is_empty() {
            s.leaf().into_iter().collect()
        } else {
            s.stack.clone()
        }
    };
    let mut wanted: Vec<(u64, bool)> =
        samples.iter().flat_map(|s| chain(s).into_iter().enumerate().map(|(i, a)| (a, i > 0))).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let addrs: Vec<u64> = wanted.iter().map(|w| w.0).collect();
    let returns: Vec<bool> = wanted.iter().map(|w| w.1).collect();
    let frames = symbols.frames(&addrs, &returns);
    let names: HashMap<(u64, bool), String> = wanted.iter().copied().zip(frames.iter().map(label)).collect();
    let mut merged: HashMap<Vec<String>, u32> = HashMap::new();
    for sample in samples {
        let named: Vec<String> = chain(sample).iter().enumerate().map(|(i, a)| names[&(*a, i > 0)].clone()).collect();
        let named = if named.is_empty() { vec!["[no user stack]".to_string()] } else { named };
        let total = merged.entry(named).or_default();
        *total = total.saturating_add(sample.count);
    }
    let mut stacks: Vec<SampledStack> =
        merged.into_iter().map(|(frames, count)| SampledStack { frames, count }).collect();
    stacks.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.frames.cmp(&b.frames)));
    (stacks, frames)
}

/// The `n` functions the most samples were in (by each chain's innermost frame), most samples
/// first; ties by name.
pub fn top_functions(stacks: &[SampledStack], n: usize) -> Vec<(String, u32)> {
    let mut totals: HashMap<&str, u32> = HashMap::new();
    for stack in stacks {
        let leaf = stack.frames.first().map_or("[no user stack]", String::as_str);
        let total = totals.entry(leaf).or_default();
        *total = total.saturating_add(stack.count);
    }
    let mut ranked: Vec<(String, u32)> = totals.into_iter().map(|(f, n)| (f.to_string(), n)).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(n);
    ranked
}

/// Looks at a blocked thread's current call, and the pause between looks (at most 18 ms a thread,
/// only for one caught outside its call).
const CALL_LOOKS: u32 = 10;
const CALL_LOOK_GAP: std::time::Duration = std::time::Duration::from_millis(2);

/// The user call chain of thread `tid` of `pid` while it is blocked in a syscall, innermost first,
/// at most `max_frames` long; empty while it runs (looked at again for up to 18 ms) or when its
/// state cannot be read. `bp` is the frame pointer at syscall entry when the capture recorded it.
///
/// Unwound from the pc and stack pointer the kernel saved on syscall entry (/proc/<pid>/task/
/// <tid>/syscall) with the binaries' call frame information or the frame-pointer chain, reading
/// the stack with `process_vm_readv`: the thread keeps running, nothing is ptraced. Where that
/// cannot go on, the rest of the stack is scanned for return addresses: those frames are marked
/// as guesses (stale return addresses in dead stack slots and code pointers stored as data can
/// appear among them).
pub fn blocked_user_stack(symbols: &ProcessSymbols, tid: u32, bp: Option<u64>, max_frames: usize) -> Vec<ChainFrame> {
    if max_frames == 0 {
        return Vec::new();
    }
    // A waiter the snapshot found in a syscall may be caught just woken (a runtime's ticker, a
    // timed wait running out): it is back in its call within moments, so look again briefly.
    let call = (0..CALL_LOOKS).find_map(|look| {
        if look > 0 {
            std::thread::sleep(CALL_LOOK_GAP);
        }
        current_syscall(symbols.pid, tid)
    });
    let Some(call) = call else { return Vec::new() };
    let regs = Registers { pc: call.pc, sp: call.sp, bp };
    symbols.unwinder.borrow_mut().chain(&symbols.maps, regs, max_frames)
}

/// [`blocked_user_stack`], symbolized; frames found by scanning are `guess`es. All frames are
/// kept, libc's internals included: the innermost libc frame is what says where the thread blocks.
pub fn function_frames(symbols: &ProcessSymbols, tid: u32, bp: Option<u64>, max_frames: usize) -> Vec<Frame> {
    let chain = blocked_user_stack(symbols, tid, bp, max_frames);
    let addrs: Vec<u64> = chain.iter().map(|f| f.addr).collect();
    let returns: Vec<bool> = (0..chain.len()).map(|i| i > 0).collect();
    let mut frames = symbols.frames(&addrs, &returns);
    for (frame, found) in frames.iter_mut().zip(&chain) {
        frame.guess = !found.exact;
    }
    let runtime = symbols.runtime();
    if let Some(end) = frames.iter().position(|f| f.function.as_deref().is_some_and(|n| is_outermost(runtime, n))) {
        frames.truncate(end + 1);
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn frequently_sampled_marker(x: u64) -> u64 {
        std::hint::black_box(x.wrapping_mul(3).rotate_left(7))
    }

    #[inline(never)]
    fn rarely_sampled_marker(x: u64) -> u64 {
        std::hint::black_box(x.wrapping_add(11).rotate_right(5))
    }

    fn addr_of(f: fn(u64) -> u64) -> u64 {
        f as usize as u64
    }

    fn own_pid() -> u32 {
        std::process::id()
    }

    #[test]
    fn symbolizing_a_function_of_this_test_binary_names_it() {
        let addr = addr_of(frequently_sampled_marker);
        let frames = symbolize(own_pid(), &[addr, addr + 1]);
        assert_eq!(frames.len(), 2);
        for (frame, offset) in frames.iter().zip([0, 1]) {
            assert_eq!(frame.addr, addr + offset);
            let name = frame.function.as_deref().unwrap_or_default();
            assert!(name.ends_with("frequently_sampled_marker"), "{frame:?}");
            assert_eq!(frame.offset, offset);
            assert!(frame.module.is_some(), "{frame:?}");
        }
    }

    #[test]
    fn unknown_addresses_are_unnamed_not_errors() {
        let frames = symbolize(own_pid(), &[0x10]);
        assert_eq!(
            frames,
            vec![Frame { addr: 0x10, function: None, offset: 0, module: None, jit: false, guess: false }]
        );
        assert_eq!(label(&frames[0]), "0x10 (unmapped)");
        assert!(symbolize(own_pid(), &[]).is_empty());
        // A process that does not exist: every address unknown, no panic.
        let gone = symbolize(u32::MAX - 1, &[0x1000]);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].function, None);
    }

    #[test]
    fn sampled_stacks_are_named_chains_and_their_leaves_are_ranked() {
        let frequent = addr_of(frequently_sampled_marker);
        let rare = addr_of(rarely_sampled_marker);
        let samples = vec![
            StackSample { ip: rare, stack: vec![rare], count: 2 },
            StackSample { ip: frequent, stack: vec![frequent, rare + 1], count: 3 },
            // A kernel-mode tick: the leaf comes from the stack.
            StackSample { ip: 0, stack: vec![frequent + 1, rare + 1], count: 4 },
            StackSample { ip: 0x10, stack: vec![], count: 1 },
            StackSample { ip: 0, stack: vec![], count: 1 },
        ];
        let (stacks, frames) = sampled_stacks(&ProcessSymbols::read(own_pid()), &samples);
        assert!(frames.iter().all(|f| !f.jit), "{frames:?}");
        let short = |name: &str| name.rsplit("::").next().unwrap_or(name).to_string();
        let chains: Vec<(Vec<String>, u32)> =
            stacks.iter().map(|s| (s.frames.iter().map(|f| short(f)).collect(), s.count)).collect();
        let both = vec!["frequently_sampled_marker".to_string(), "rarely_sampled_marker".to_string()];
        assert_eq!(chains[0], (both, 7), "the two chains differing only in the leaf's offset merge: {chains:?}");
        assert_eq!(chains[1], (vec!["rarely_sampled_marker".to_string()], 2), "{chains:?}");
        assert!(chains.contains(&(vec!["0x10 (unmapped)".to_string()], 1)), "{chains:?}");
        assert!(chains.contains(&(vec!["[no user stack]".to_string()], 1)), "{chains:?}");
        let top = top_functions(&stacks, 10);
        assert!(top[0].0.ends_with("frequently_sampled_marker") && top[0].1 == 7, "{top:?}");
        assert!(top[1].0.ends_with("rarely_sampled_marker") && top[1].1 == 2, "{top:?}");
        assert_eq!(top.len(), 4);
        assert_eq!(top_functions(&stacks, 1).len(), 1);
    }

    #[test]
    fn anonymous_executable_memory_is_jit_code_named_from_a_perf_map() {
        // Executable anonymous memory of this process, named in a perf map of this pid.
        let len = 4096;
        // SAFETY: a fresh private anonymous mapping, unmapped below.
        let code = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        } as u64;
        assert_ne!(code as *mut libc::c_void, libc::MAP_FAILED);
        let map = std::path::PathBuf::from(format!("/tmp/perf-{}.map", own_pid()));
        let _ = std::fs::remove_file(&map);
        let unnamed = ProcessSymbols::read(own_pid());
        let frames = unnamed.frames(&[code + 0x20], &[]);
        assert!(frames[0].jit && frames[0].function.is_none(), "{frames:?}");
        assert_eq!(label(&frames[0]), "[JIT code]");
        assert_eq!(frame_text(&frames[0]), format!("[JIT code] at {:#x}", code + 0x20));
        assert_eq!(unnamed.jit_note(&frames), Runtime::Rust.jit_hint().replace("PID", &own_pid().to_string()));
        std::fs::write(&map, format!("{code:x} 40 JS:*spinForeverInJs [eval]:1\n")).unwrap();
        let named = ProcessSymbols::read(own_pid());
        let frames = named.frames(&[code + 0x20, code + 0x21], &[false, true]);
        let _ = std::fs::remove_file(&map);
        // SAFETY: mapped above, no longer used.
        unsafe { libc::munmap(code as *mut libc::c_void, len) };
        assert_eq!(frames[0].function.as_deref(), Some("JS:*spinForeverInJs [eval]:1"), "{frames:?}");
        assert_eq!((frames[0].offset, frames[1].offset), (0x20, 0x21));
        assert_eq!(frame_text(&frames[0]), "JS:*spinForeverInJs [eval]:1 (JIT)");
        assert_eq!(named.jit_note(&frames), format!("JIT code named from {}", map.display()));
    }

    #[test]
    fn a_running_or_missing_thread_has_no_blocked_stack() {
        use std::sync::atomic::{AtomicBool, Ordering};
        // A thread reading its own syscall file is blocked (in that read), so spin another one:
        // the kernel reports `running` for any thread that is runnable.
        static STOP: AtomicBool = AtomicBool::new(false);
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let spinner = std::thread::spawn(move || {
            // SAFETY: no preconditions.
            tid_tx.send(unsafe { libc::gettid() } as u32).unwrap();
            while !STOP.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        let tid = tid_rx.recv().unwrap();
        let running = blocked_user_stack(&ProcessSymbols::read(own_pid()), tid, None, 16);
        STOP.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        assert!(running.is_empty(), "{running:x?}");
        assert!(blocked_user_stack(&ProcessSymbols::read(u32::MAX - 1), u32::MAX - 1, None, 16).is_empty());
        assert!(function_frames(&ProcessSymbols::read(own_pid()), own_pid(), None, 0).is_empty());
    }

    #[test]
    fn a_thread_blocked_in_a_syscall_shows_its_caller() {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let blocked = std::thread::spawn(move || {
            // SAFETY: no preconditions.
            ready_tx.send(unsafe { libc::gettid() } as u32).unwrap();
            blocked_in_named_caller(&done_rx);
        });
        let tid = ready_rx.recv().unwrap();
        let mut frames = Vec::new();
        for _ in 0..200 {
            frames = function_frames(&ProcessSymbols::read(own_pid()), tid, None, 64);
            if frames.iter().any(|f| f.function.as_deref().is_some_and(|n| n.ends_with("blocked_in_named_caller"))) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        done_tx.send(()).unwrap();
        blocked.join().unwrap();
        assert!(
            frames.iter().any(|f| f.function.as_deref().is_some_and(|n| n.ends_with("blocked_in_named_caller"))),
            "{frames:#?}"
        );
        // glibc's syscall wrapper unwinds by its call frame information; std's frames keep frame
        // pointers, whose chain needs the frame pointer at syscall entry that only the capture
        // records, so past them the stack is scanned and marked so.
        assert!(frames.len() >= 2 && !frames[0].guess && !frames[1].guess, "{frames:#?}");
        assert!(frames.iter().skip_while(|f| !f.guess).all(|f| f.guess), "guesses come last: {frames:#?}");
    }

    #[inline(never)]
    fn blocked_in_named_caller(done: &std::sync::mpsc::Receiver<()>) {
        let _ = std::hint::black_box(done.recv());
    }
}
