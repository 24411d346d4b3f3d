//! Unwinding a syscall-blocked thread's user stack from outside, without stopping it: from the pc
//! and stack pointer the kernel saved on syscall entry, each frame's caller is found with the call
//! frame information its binary carries (`.eh_frame`, else `.debug_frame`, as Go writes it),
//! else by the frame-pointer chain when the frame pointer is known. Where neither applies the
//! rest of the stack is scanned for return addresses, and those frames are only guesses.
use std::{collections::HashMap, ops::Range, rc::Rc};

use gimli::{
    BaseAddresses, CfaRule, DebugFrame, EhFrame, EhFrameHdr, LittleEndian, Register, RegisterRule, UnwindContext,
    UnwindSection, X86_64,
};
use object::{Object, ObjectSection, ObjectSegment};

use crate::proc::maps::{mapping_of, Mapping};

/// One frame of a call chain: its address and whether an unwinder found it (else a stack scan).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainFrame {
    pub addr: u64,
    pub exact: bool,
}

/// The registers a blocked thread's unwinding starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    pub pc: u64,
    pub sp: u64,
    /// The frame pointer (rbp), when known; /proc only gives pc and sp.
    pub bp: Option<u64>,
}

/// Bytes of stack scanned past the last unwound frame when unwinding cannot go on.
const SCAN_BYTES: u64 = 8 * 1024;

/// The call frame information of one executable file.
struct Module {
    data: memmap2::Mmap,
    /// `(file offset, virtual address, file size)` of each loadable segment.
    segments: Vec<(u64, u64, u64)>,
    eh_frame: Option<(Range<usize>, u64)>,
    eh_frame_hdr: Option<(Range<usize>, u64)>,
    text: u64,
    /// `.debug_frame`, decompressed when compressed (Go compresses its DWARF).
    debug_frame: Option<Vec<u8>>,
}

fn section_range(file: &object::File<'_>, name: &str) -> Option<(Range<usize>, u64)> {
    let section = file.section_by_name(name)?;
    let (offset, size) = section.file_range()?;
    Some((offset as usize..(offset + size) as usize, section.address()))
}

/// A section's bytes, inflated when zlib-compressed (`SHF_COMPRESSED` or a GNU `.zdebug_`).
fn section_bytes(file: &object::File<'_>, name: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let section = file.section_by_name(name)?;
    let compressed = section.compressed_data().ok()?;
    match compressed.format {
        object::CompressionFormat::None => Some(compressed.data.to_vec()),
        object::CompressionFormat::Zlib => {
            let mut out = Vec::with_capacity(compressed.uncompressed_size as usize);
            flate2::read::ZlibDecoder::new(compressed.data).read_to_end(&mut out).ok()?;
            Some(out)
        }
        _ => None,
    }
}

impl Module {
    fn open(path: &str) -> Option<Module> {
        let file = std::fs::File::open(path).ok()?;
        // SAFETY: read only; a file changed meanwhile gives wrong frames or errors, not UB in
        // practice for this read-only use (as for every profiler reading mapped binaries).
        let data = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        let (segments, eh_frame, eh_frame_hdr, text, debug_frame) = {
            let elf = object::File::parse(&*data).ok()?;
            let segments = elf
                .segments()
                .filter_map(|s| {
                    let (offset, size) = s.file_range();
                    (size > 0).then_some((offset, s.address(), size))
                })
                .collect();
            let text = elf.section_by_name(".text").map_or(0, |s| s.address());
            let debug_frame = section_bytes(&elf, ".debug_frame").or_else(|| section_bytes(&elf, ".zdebug_frame"));
            (segments, section_range(&elf, ".eh_frame"), section_range(&elf, ".eh_frame_hdr"), text, debug_frame)
        };
        Some(Module { data, segments, eh_frame, eh_frame_hdr, text, debug_frame })
    }

    /// The address `file_offset` is loaded at in the file's own terms.
    fn svma(&self, file_offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|(offset, _, size)| *offset <= file_offset && file_offset < offset + size)
            .map(|(offset, vaddr, _)| vaddr + (file_offset - offset))
    }

    /// The rules for the caller's registers at `svma`, from `.eh_frame`, else `.debug_frame`.
    fn rules(&self, svma: u64) -> Option<Rules> {
        if let Some((range, addr)) = &self.eh_frame {
            let eh = EhFrame::new(self.data.get(range.clone())?, LittleEndian);
            let mut bases = BaseAddresses::default().set_eh_frame(*addr).set_text(self.text);
            let mut ctx = UnwindContext::new();
            let row = match &self.eh_frame_hdr {
                Some((hdr_range, hdr_addr)) => {
                    bases = bases.set_eh_frame_hdr(*hdr_addr);
                    let hdr = EhFrameHdr::new(self.data.get(hdr_range.clone())?, LittleEndian).parse(&bases, 8).ok();
                    match hdr.as_ref().and_then(|h| h.table()) {
                        Some(table) => {
                            table.unwind_info_for_address(&eh, &bases, &mut ctx, svma, EhFrame::cie_from_offset).ok()
                        }
                        None => eh.unwind_info_for_address(&bases, &mut ctx, svma, EhFrame::cie_from_offset).ok(),
                    }
                }
                None => eh.unwind_info_for_address(&bases, &mut ctx, svma, EhFrame::cie_from_offset).ok(),
            };
            if let Some(row) = row {
                return Rules::of(row.cfa(), |r| row.register(r));
            }
        }
        let data = self.debug_frame.as_deref()?;
        let mut debug = DebugFrame::new(data, LittleEndian);
        debug.set_address_size(8);
        let bases = BaseAddresses::default();
        let mut ctx = UnwindContext::new();
        let row = debug.unwind_info_for_address(&bases, &mut ctx, svma, DebugFrame::cie_from_offset).ok()?;
        Rules::of(row.cfa(), |r| row.register(r))
    }
}

/// Where a caller's registers are, relative to the CFA (the stack pointer before the call).
#[derive(Clone, Copy, Debug)]
struct Rules {
    /// The CFA is this register plus an offset.
    cfa_from: Register,
    cfa_offset: i64,
    /// The return address: None when undefined (the outermost frame).
    ra: Option<Saved>,
    bp: Saved,
}

#[derive(Clone, Copy, Debug)]
enum Saved {
    /// Unchanged from the callee's value.
    Same,
    /// Stored at CFA + offset.
    At(i64),
    /// Is CFA + offset.
    Value(i64),
}

impl Rules {
    fn of<T: gimli::ReaderOffset>(
        cfa: &CfaRule<T>,
        register: impl Fn(Register) -> Option<RegisterRule<T>>,
    ) -> Option<Rules> {
        let CfaRule::RegisterAndOffset { register: cfa_from, offset: cfa_offset } = *cfa else { return None };
        let saved = |rule: Option<RegisterRule<T>>| match rule {
            None | Some(RegisterRule::SameValue) => Some(Saved::Same),
            Some(RegisterRule::Offset(n)) => Some(Saved::At(n)),
            Some(RegisterRule::ValOffset(n)) => Some(Saved::Value(n)),
            _ => None,
        };
        let ra = match register(X86_64::RA) {
            Some(RegisterRule::Undefined) => None,
            rule => Some(saved(rule)?),
        };
        let bp = saved(register(X86_64::RBP)).unwrap_or(Saved::Same);
        Some(Rules { cfa_from, cfa_offset, ra, bp })
    }
}

/// Reads a process's memory, word by word, from outside.
struct Memory {
    pid: u32,
}

impl Memory {
    fn word(&self, addr: u64) -> Option<u64> {
        let bytes = crate::proc::task::read_memory(self.pid, addr, 8);
        Some(u64::from_ne_bytes(bytes.get(..8)?.try_into().ok()?))
    }
}

/// Unwinds one process's threads, with each file's call frame information read once.
pub struct Unwinder {
    pid: u32,
    modules: HashMap<String, Option<Rc<Module>>>,
}

/// Why unwinding stopped.
enum Stop {
    /// The outermost frame was reached (or the next address is no code): nothing more to find.
    End,
    /// No way to find this frame's caller: scan what is left of the stack.
    Lost,
}

impl Unwinder {
    pub fn new(pid: u32) -> Self {
        Unwinder { pid, modules: HashMap::new() }
    }

    fn module(&mut self, path: &str) -> Option<Rc<Module>> {
        // Through the process's root: the path is as the process sees it.
        let pid = self.pid;
        self.modules
            .entry(path.to_string())
            .or_insert_with(|| {
                Module::open(&format!("/proc/{pid}/root{path}")).or_else(|| Module::open(path)).map(Rc::new)
            })
            .clone()
    }

    /// One step: the caller's (pc, sp, bp) of the frame at `regs`. `lookup` is the address whose
    /// rules apply (the pc, or a return address less one).
    fn step(&mut self, maps: &[Mapping], regs: Registers, lookup: u64, memory: &Memory) -> Result<Registers, Stop> {
        let mapping = mapping_of(maps, lookup).ok_or(Stop::End)?;
        let rules = match &mapping.path {
            Some(path) if path.starts_with('/') => {
                let file_offset = lookup - mapping.start + mapping.file_offset;
                self.module(path).and_then(|m| m.rules(m.svma(file_offset)?))
            }
            _ => None,
        };
        let Some(rules) = rules else {
            // No call frame information (JIT code, a stripped binary): the frame-pointer chain.
            let bp = regs.bp.filter(|bp| *bp >= regs.sp).ok_or(Stop::Lost)?;
            let ra = memory.word(bp + 8).ok_or(Stop::Lost)?;
            let caller_bp = memory.word(bp).ok_or(Stop::Lost)?;
            return Ok(Registers { pc: ra, sp: bp + 16, bp: Some(caller_bp) });
        };
        let base = if rules.cfa_from == X86_64::RSP {
            regs.sp
        } else if rules.cfa_from == X86_64::RBP {
            regs.bp.ok_or(Stop::Lost)?
        } else {
            return Err(Stop::Lost);
        };
        let cfa = base.checked_add_signed(rules.cfa_offset).ok_or(Stop::Lost)?;
        let restore = |saved: Saved, current: Option<u64>| -> Option<u64> {
            match saved {
                Saved::Same => current,
                Saved::At(n) => memory.word(cfa.checked_add_signed(n)?),
                Saved::Value(n) => cfa.checked_add_signed(n),
            }
        };
        let ra = restore(rules.ra.ok_or(Stop::End)?, None).ok_or(Stop::Lost)?;
        Ok(Registers { pc: ra, sp: cfa, bp: restore(rules.bp, regs.bp) })
    }

    /// The call chain from `regs` in a process whose mappings are `maps`, innermost first, at most
    /// `max_frames` long.
    pub fn chain(&mut self, maps: &[Mapping], regs: Registers, max_frames: usize) -> Vec<ChainFrame> {
        let memory = Memory { pid: self.pid };
        let mut chain = Vec::new();
        if max_frames == 0 {
            return chain;
        }
        chain.push(ChainFrame { addr: regs.pc, exact: true });
        let mut regs = regs;
        let mut lost = false;
        while chain.len() < max_frames {
            let lookup = if chain.len() == 1 { regs.pc } else { regs.pc.saturating_sub(1) };
            match self.step(maps, regs, lookup, &memory) {
                Ok(caller) if caller.pc != 0 && caller.sp > regs.sp && in_code(maps, caller.pc) => {
                    chain.push(ChainFrame { addr: caller.pc, exact: true });
                    regs = caller;
                }
                Ok(_) | Err(Stop::End) => break,
                Err(Stop::Lost) => {
                    lost = true;
                    break;
                }
            }
        }
        if lost {
            let room = max_frames - chain.len();
            chain.extend(scan(self.pid, maps, regs.sp, room).into_iter().map(|addr| ChainFrame { addr, exact: false }));
        }
        chain
    }
}

fn in_code(maps: &[Mapping], addr: u64) -> bool {
    mapping_of(maps, addr).is_some_and(|m| m.executable)
}

/// Words of process `pid`'s stack from `sp` up that point into code right after a call
/// instruction: return addresses, live or stale. At most `max` of them, within [`SCAN_BYTES`] and
/// the stack's mapping.
pub fn scan(pid: u32, maps: &[Mapping], sp: u64, max: usize) -> Vec<u64> {
    let len = mapping_of(maps, sp).map_or(SCAN_BYTES, |m| (m.end - sp).min(SCAN_BYTES));
    let stack = crate::proc::task::read_memory(pid, sp, len as usize);
    stack
        .chunks_exact(8)
        .map(|w| u64::from_ne_bytes(w.try_into().expect("8-byte chunk")))
        .filter(|&addr| in_code(maps, addr) && follows_a_call(pid, addr))
        .take(max)
        .collect()
}

/// Whether the bytes before `addr` end in a call instruction, as those before a return address do.
/// x86-64 only: `call rel32` (E8), and `call r/m64` (FF /2) in its 2- to 7-byte forms.
#[cfg(target_arch = "x86_64")]
fn follows_a_call(pid: u32, addr: u64) -> bool {
    let Some(start) = addr.checked_sub(7) else { return false };
    let code = crate::proc::task::read_memory(pid, start, 7);
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
