//! Naming user addresses of a live process (blazesym over /proc/<pid>/maps), ranking sampled leaf
//! functions, and reading a syscall-blocked thread's user stack from outside without stopping it.
use std::collections::HashMap;

use blazesym::{
    symbolize::{source::Process, source::Source, Input, Symbolized, Symbolizer},
    Pid,
};

use crate::{
    capture::StackSample,
    proc::{
        maps::{mapping_of, mappings, Mapping},
        task::{current_syscall, read_memory},
    },
};

/// One symbolized address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub addr: u64,
    /// None when no symbol covers the address (stripped, JIT code, anonymous memory, unmapped).
    pub function: Option<String>,
    /// Bytes from the function's start; for an unnamed address, its offset in the mapped file.
    pub offset: u64,
    /// Path of the mapped file (or `[vdso]` and the like) holding the address.
    pub module: Option<String>,
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
        // Sampled code is native; a perf map is only produced by JITs that opt in.
        process.perf_map = false;
        let symbolizer = Symbolizer::new();
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

/// Frames for `addrs` (same order and length) in process `pid`, mapped through
/// /proc/<pid>/maps. Never fails: what cannot be named has `function: None`.
pub fn symbolize(pid: u32, addrs: &[u64]) -> Vec<Frame> {
    let maps = mappings(pid);
    frames(&maps, addrs, &lookup(pid, addrs), &vec![0; addrs.len()])
}

/// As [`symbolize`] for a call chain (innermost first): every frame after the first is a return
/// address, which points past its call and may already be in the next function if the call was a
/// function's last instruction (a call to a noreturn function), so it is looked up one byte back.
fn symbolize_call_chain(pid: u32, addrs: &[u64]) -> Vec<Frame> {
    let maps = mappings(pid);
    let back: Vec<u64> = (0..addrs.len()).map(|i| u64::from(i > 0)).collect();
    let lookups: Vec<u64> = addrs.iter().zip(&back).map(|(a, b)| a.saturating_sub(*b)).collect();
    frames(&maps, addrs, &lookup(pid, &lookups), &back)
}

fn frames(maps: &[Mapping], addrs: &[u64], found: &[Option<Named>], back: &[u64]) -> Vec<Frame> {
    addrs
        .iter()
        .enumerate()
        .map(|(i, &addr)| {
            let mapping = mapping_of(maps, addr);
            let mapped_path = mapping.and_then(|m| m.path.clone());
            match found.get(i).cloned().flatten() {
                Some(Named { function, offset, module }) => Frame {
                    addr,
                    function: Some(function),
                    offset: offset + back.get(i).copied().unwrap_or(0),
                    module: module.or(mapped_path),
                },
                None => Frame {
                    addr,
                    function: None,
                    offset: mapping.map(|m| addr - m.start + m.file_offset).unwrap_or(0),
                    module: mapped_path,
                },
            }
        })
        .collect()
}

/// How a frame is named in rankings: its function, else `0x<addr> (<module>)`.
pub fn label(frame: &Frame) -> String {
    match &frame.function {
        Some(name) => name.clone(),
        None => format!("{:#x} ({})", frame.addr, frame.module.as_deref().unwrap_or("unmapped")),
    }
}

/// The `n` functions the most samples were in (by each sample's innermost user address), most
/// samples first; ties by name. Samples with no user address at all count as `[no user stack]`.
pub fn top_functions(pid: u32, samples: &[StackSample], n: usize) -> Vec<(String, u32)> {
    let mut leaves: Vec<u64> = samples.iter().filter_map(StackSample::leaf).collect();
    leaves.sort_unstable();
    leaves.dedup();
    let names: HashMap<u64, String> = symbolize(pid, &leaves).iter().map(|frame| (frame.addr, label(frame))).collect();
    let mut totals: HashMap<String, u32> = HashMap::new();
    for sample in samples {
        let name = match sample.leaf() {
            Some(addr) => names.get(&addr).cloned().unwrap_or_else(|| format!("{addr:#x} (unmapped)")),
            None => "[no user stack]".to_string(),
        };
        let total = totals.entry(name).or_default();
        *total = total.saturating_add(sample.count);
    }
    let mut ranked: Vec<(String, u32)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(n);
    ranked
}

/// How much of a blocked thread's stack is scanned for return addresses.
const STACK_SCAN_BYTES: usize = 8 * 1024;

/// Whether the bytes before `addr` end in a call instruction, as those before a return address do.
/// x86-64 only: `call rel32` (E8), and `call r/m64` (FF /2) in its 2- to 7-byte forms.
#[cfg(target_arch = "x86_64")]
fn follows_a_call(pid: u32, addr: u64) -> bool {
    let Some(start) = addr.checked_sub(7) else { return false };
    let code = read_memory(pid, start, 7);
    if code.len() != 7 {
        return false;
    }
    let before = |k: usize| code[7 - k];
    before(5) == 0xE8 || [2, 3, 4, 6, 7].iter().any(|&k| before(k) == 0xFF && (before(k - 1) >> 3) & 7 == 2)
}

#[cfg(not(target_arch = "x86_64"))]
fn follows_a_call(_pid: u32, _addr: u64) -> bool {
    true
}

/// The user call chain of thread `tid` of `pid` while it is blocked in a syscall, innermost first,
/// at most `max_frames` long; empty while it runs or when its state cannot be read.
///
/// This is a heuristic stack scan, not an unwind: it takes the pc and stack pointer the kernel
/// saved on syscall entry, copies up to 8 KiB of the stack from there with `process_vm_readv`
/// (the thread keeps running; nothing is ptraced), and keeps, in order, the pc followed by every
/// word that points into an executable mapping and, on x86-64, right after a call instruction.
/// Stale return addresses left in dead stack slots and code pointers stored as data can still
/// appear, and frames beyond the scanned window are missed.
pub fn blocked_user_stack(pid: u32, tid: u32, max_frames: usize) -> Vec<u64> {
    if max_frames == 0 {
        return Vec::new();
    }
    let Some(call) = current_syscall(pid, tid) else { return Vec::new() };
    let (sp, pc) = (call.sp, call.pc);
    let maps = mappings(pid);
    let executable: Vec<&Mapping> = maps.iter().filter(|m| m.executable).collect();
    let in_code = |addr: u64| executable.iter().any(|m| m.start <= addr && addr < m.end);
    // Stop at the end of the stack's mapping rather than relying on a short read.
    let len =
        mapping_of(&maps, sp).map(|m| (m.end - sp).min(STACK_SCAN_BYTES as u64) as usize).unwrap_or(STACK_SCAN_BYTES);
    let stack = read_memory(pid, sp, len);
    let mut chain = vec![pc];
    for word in stack.chunks_exact(8) {
        if chain.len() >= max_frames {
            break;
        }
        let addr = u64::from_ne_bytes(word.try_into().expect("8-byte chunk"));
        if in_code(addr) && follows_a_call(pid, addr) {
            chain.push(addr);
        }
    }
    chain
}

/// [`blocked_user_stack`], symbolized. All frames are kept, libc's internals included: telling
/// them apart would need a per-libc list of names, and the innermost libc frame is what says
/// where the thread blocks.
pub fn function_frames(pid: u32, tid: u32, max_frames: usize) -> Vec<Frame> {
    symbolize_call_chain(pid, &blocked_user_stack(pid, tid, max_frames))
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
        assert_eq!(frames, vec![Frame { addr: 0x10, function: None, offset: 0, module: None }]);
        assert_eq!(label(&frames[0]), "0x10 (unmapped)");
        assert!(symbolize(own_pid(), &[]).is_empty());
        // A process that does not exist: every address unknown, no panic.
        let gone = symbolize(u32::MAX - 1, &[0x1000]);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].function, None);
    }

    #[test]
    fn top_functions_orders_by_sample_count() {
        let frequent = addr_of(frequently_sampled_marker);
        let rare = addr_of(rarely_sampled_marker);
        let samples = vec![
            StackSample { ip: rare, stack: vec![rare], count: 2 },
            StackSample { ip: frequent, stack: vec![frequent], count: 3 },
            // A kernel-mode tick: the leaf comes from the stack.
            StackSample { ip: 0, stack: vec![frequent + 1, rare], count: 4 },
            StackSample { ip: 0x10, stack: vec![], count: 1 },
        ];
        let top = top_functions(own_pid(), &samples, 10);
        let names: Vec<(&str, u32)> = top.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(names.len(), 3, "{top:?}");
        assert!(names[0].0.ends_with("frequently_sampled_marker") && names[0].1 == 7, "{top:?}");
        assert!(names[1].0.ends_with("rarely_sampled_marker") && names[1].1 == 2, "{top:?}");
        assert_eq!(names[2], ("0x10 (unmapped)", 1));
        assert_eq!(top_functions(own_pid(), &samples, 1).len(), 1);
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
        let running = blocked_user_stack(own_pid(), tid, 16);
        STOP.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        assert!(running.is_empty(), "{running:x?}");
        assert!(blocked_user_stack(u32::MAX - 1, u32::MAX - 1, 16).is_empty());
        assert!(function_frames(own_pid(), own_pid(), 0).is_empty());
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
            frames = function_frames(own_pid(), tid, 64);
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
    }

    #[inline(never)]
    fn blocked_in_named_caller(done: &std::sync::mpsc::Receiver<()>) {
        let _ = std::hint::black_box(done.recv());
    }
}
