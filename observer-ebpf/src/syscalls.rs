//! `sys_enter` / `sys_exit`: entry parks a watched syscall of a tracked process that can block in
//! the in-flight table, exit turns it into one record; a call that cannot block for long
//! (`EXIT_ONLY`: mprotect, mmap, kill, ...) is recorded at exit alone, from the argument registers
//! the task still holds, with one clock read, and held on the CPU's stage (`stage`) with the
//! thread's call counts. On the raw syscall tracepoints rather than the
//! per-syscall `syscalls/sys_*_<name>` ones: those fill a perf record of every hit before any
//! filter runs, which cost ~300 ns per call of every process that makes a watched syscall.
//! Two builds of each program: BTF-typed (`tp_btf`), which reads the saved registers with plain
//! loads, and raw (`raw_tp`), which needs a helper call per read, for kernels without BTF.
use aya_ebpf::{
    helpers::{bpf_ktime_get_boot_ns, bpf_probe_read_kernel, bpf_probe_read_user},
    macros::{btf_tracepoint, raw_tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext},
};
use observer_common::{
    flags,
    host_bits::{ERRORS, GROUP_CHANGES, LIMIT_SETS, STACK_MMAPS},
    syscall_bits::{CLONE3, EXIT_ONLY, NARGS_MASK, NO_RETURN, RLIMIT, WATCHED},
    tracepoint_fields::pt_regs,
    EventHeader, InFlight, Record, ShortSyscallEvent, SyscallEvent, COUNTER_INFLIGHT_FULL, MAX_ARGS, SHORT_ARGS,
};

use crate::{
    maps::{
        bump, current_ids, hooks_only, host_wide, in_flight_put, in_flight_take, is_tracked, DROPPED, HOST_TABLE,
        SYSCALL_TABLE,
    },
    output::{emit, emit_now},
    stage::Held,
};

#[btf_tracepoint(function = "sys_enter")]
pub fn sys_enter(ctx: BtfTracePointContext) -> i32 {
    if !hooks_only() {
        let _ = try_sys_enter(&ctx);
    }
    0
}

#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit(ctx: BtfTracePointContext) -> i32 {
    if !hooks_only() {
        let _ = try_sys_exit(&ctx);
    }
    0
}

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter_raw(ctx: RawTracePointContext) -> i32 {
    if !hooks_only() {
        let _ = try_sys_enter(&ctx);
    }
    0
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit_raw(ctx: RawTracePointContext) -> i32 {
    if !hooks_only() {
        let _ = try_sys_exit(&ctx);
    }
    0
}

/// What the syscall programs need from their tracepoint: `(struct pt_regs *regs, long id_or_ret)`.
trait SyscallContext {
    /// The syscall number (sys_enter) or return value (sys_exit).
    fn second(&self) -> i64;
    fn regs(&self) -> Result<Regs, i32>;
    /// The syscall number the task entered with (`orig_ax`), read at exit.
    fn entered_nr(&self) -> Result<i64, i32>;
}

impl SyscallContext for BtfTracePointContext {
    #[inline(always)]
    fn second(&self) -> i64 {
        self.arg(1)
    }

    #[inline(always)]
    fn regs(&self) -> Result<Regs, i32> {
        let regs: *const u64 = self.arg(0);
        let mut copy = Regs([0; REGS_WORDS]);
        for (i, word) in copy.0.iter_mut().enumerate() {
            // SAFETY: a BTF-typed `struct pt_regs *`: the verifier checks each load against the
            // struct's layout and turns it into a fault-tolerant load.
            *word = unsafe { *regs.add(pt_regs::SPAN_START / 8 + i) };
        }
        Ok(copy)
    }

    #[inline(always)]
    fn entered_nr(&self) -> Result<i64, i32> {
        let regs: *const u64 = self.arg(0);
        // SAFETY: as in `regs`.
        Ok(unsafe { *regs.add(pt_regs::ORIG_AX / 8) } as i64)
    }
}

impl SyscallContext for RawTracePointContext {
    #[inline(always)]
    fn second(&self) -> i64 {
        self.arg(1)
    }

    #[inline(always)]
    fn regs(&self) -> Result<Regs, i32> {
        let regs: *const u8 = self.arg(0);
        // SAFETY: the tracepoint's `struct pt_regs *`, read with the fault-tolerant helper.
        unsafe { bpf_probe_read_kernel(regs.add(pt_regs::SPAN_START) as *const Regs) }
    }

    #[inline(always)]
    fn entered_nr(&self) -> Result<i64, i32> {
        let regs: *const u8 = self.arg(0);
        // SAFETY: as in `regs`.
        unsafe { bpf_probe_read_kernel(regs.add(pt_regs::ORIG_AX) as *const i64) }
    }
}

const REGS_WORDS: usize = (pt_regs::SPAN_END - pt_regs::SPAN_START) / 8;

/// The registers a syscall's arguments (and number, code segment and the caller's frame pointer)
/// live in, copied at once.
#[repr(C)]
#[derive(Clone, Copy)]
struct Regs([u64; REGS_WORDS]);

impl Regs {
    #[inline(always)]
    fn at(&self, offset: usize) -> u64 {
        self.0[(offset - pt_regs::SPAN_START) / 8]
    }

    /// A 32-bit compat syscall: its number means another call, its arguments other registers.
    #[inline(always)]
    fn compat(&self) -> bool {
        self.at(pt_regs::CS) != pt_regs::USER_CS_64
    }

    #[inline(always)]
    fn args(&self) -> [u64; MAX_ARGS] {
        let mut args = [0; MAX_ARGS];
        for (i, offset) in pt_regs::ARGS.iter().enumerate().take(MAX_ARGS) {
            args[i] = self.at(*offset);
        }
        args
    }
}

/// Reads what a syscall's pointer arguments point at, for the calls whose meaning is there.
#[inline(always)]
fn read_aux(bits: u16, nargs: usize, entry: &mut InFlight) {
    if bits & CLONE3 != 0 {
        // struct clone_args starts with `__aligned_u64 flags`.
        // SAFETY: a user pointer, read with the fault-tolerant helper.
        if let Ok(clone_flags) = unsafe { bpf_probe_read_user(entry.args[0] as *const u64) } {
            entry.aux = clone_flags;
            entry.flags = flags::AUX_CLONE_FLAGS;
        }
    }
    if bits & RLIMIT != 0 {
        // prlimit64(pid, resource, new, old) / setrlimit(resource, new): `new` is second to last
        // for prlimit64 and last for setrlimit; struct rlimit starts with rlim_cur.
        let new = if nargs == 4 { entry.args[2] } else { entry.args[1] };
        if new != 0 {
            // SAFETY: a user pointer, read with the fault-tolerant helper.
            if let Ok(cur) = unsafe { bpf_probe_read_user(new as *const u64) } {
                entry.aux = cur;
                entry.flags = flags::AUX_RLIMIT_CUR;
            }
        }
    }
}

/// The table bits of syscall `nr` (0 for a number outside the table).
#[inline(always)]
fn table_bits(nr: i64) -> u16 {
    if nr < 0 {
        return 0;
    }
    SYSCALL_TABLE.get(nr as u32).copied().unwrap_or(0)
}

#[inline(always)]
fn try_sys_enter(ctx: &impl SyscallContext) -> Result<(), i32> {
    // The number first: it is in the context, and most syscalls of any process are not watched
    // or are recorded at exit alone.
    let nr = ctx.second();
    let bits = table_bits(nr);
    if bits & WATCHED == 0 || bits & EXIT_ONLY != 0 {
        return Ok(());
    }
    let (tid, tgid) = current_ids();
    if !is_tracked(tgid) {
        return Ok(());
    }
    let regs = ctx.regs()?;
    if regs.compat() {
        return Ok(());
    }
    let nargs = (bits & NARGS_MASK) as usize;
    let mut entry = InFlight {
        nr: nr as u32,
        nargs: nargs as u32,
        tgid,
        args: regs.args(),
        bp: regs.at(pt_regs::BP),
        ..InFlight::default()
    };
    read_aux(bits, nargs, &mut entry);
    // SAFETY: helper without preconditions.
    entry.enter_ns = unsafe { bpf_ktime_get_boot_ns() };
    if bits & NO_RETURN != 0 {
        emit(&record(tid, &entry, flags::NO_RETURN, 0, 0));
        return Ok(());
    }
    if !in_flight_put(tid, &entry) {
        bump(&DROPPED, COUNTER_INFLIGHT_FULL);
    }
    Ok(())
}

#[inline(always)]
fn try_sys_exit(ctx: &impl SyscallContext) -> Result<(), i32> {
    let (tid, tgid) = current_ids();
    let Some(mut stage) = Held::take() else {
        return Ok(());
    };
    let tracked = stage.thread(tid, tgid);
    if !tracked && !host_wide() {
        return Ok(());
    }
    let ret = ctx.second();
    let nr = ctx.entered_nr()?;
    let bits = table_bits(nr);
    if !tracked {
        // Host-wide: an untracked process's call is judged here alone, nothing was parked.
        if bits & WATCHED != 0 {
            // Nothing is held for an untracked thread: its record goes straight out.
            host_call(ctx, tid, tgid, nr, bits, ret);
        }
        return Ok(());
    }
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    stage.count_call(bits, now);
    if bits & (WATCHED | EXIT_ONLY) == WATCHED | EXIT_ONLY {
        if let Some(entry) = entry_at_exit(ctx, tgid, nr, bits, now) {
            if entry.nargs as usize <= SHORT_ARGS && entry.flags == 0 {
                stage.push(&short_record(tid, &entry, ret));
            } else {
                stage.write_out();
                emit_now(&record(tid, &entry, flags::UNKNOWN_DURATION, ret, 0));
            }
        }
        return Ok(());
    }
    // Only threads whose entry we recorded have an in-flight slot.
    if let Some(entry) = in_flight_take(tid) {
        stage.write_out();
        emit_now(&record(tid, &entry, 0, ret, now.saturating_sub(entry.enter_ns)));
    }
    Ok(())
}

/// The call being left, rebuilt from the registers the task still holds at exit (the kernel does
/// not clobber the argument registers), stamped `now`; `None` for a 32-bit compat call.
#[inline(always)]
fn entry_at_exit(ctx: &impl SyscallContext, tgid: u32, nr: i64, bits: u16, now: u64) -> Option<InFlight> {
    let regs = ctx.regs().ok()?;
    if regs.compat() {
        return None;
    }
    let nargs = (bits & NARGS_MASK) as usize;
    let mut entry =
        InFlight { nr: nr as u32, nargs: nargs as u32, tgid, args: regs.args(), enter_ns: now, ..InFlight::default() };
    read_aux(bits, nargs, &mut entry);
    Some(entry)
}

/// Host-wide mode: a call of an untracked process, reported when it failed (for the calls whose
/// failures matter) or when its arguments make it worth reporting even on success (a thread-stack
/// mapping, a limit set, a move to another session or process group). Its time is the exit's;
/// the duration is unknown.
#[inline(always)]
fn host_call(ctx: &impl SyscallContext, tid: u32, tgid: u32, nr: i64, bits: u16, ret: i64) {
    let Some(host) = HOST_TABLE.get(nr as u32).copied() else {
        return;
    };
    if host == 0 || (failed(ret) && host & ERRORS == 0) || (!failed(ret) && host & !ERRORS == 0) {
        return;
    }
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    let Some(entry) = entry_at_exit(ctx, tgid, nr, bits, now) else {
        return;
    };
    if failed(ret) || host_reportable_success(host, &entry) {
        emit_now(&record(tid, &entry, flags::HOST | flags::UNKNOWN_DURATION, ret, 0));
    }
}

/// A syscall return value that is `-errno`.
#[inline(always)]
fn failed(ret: i64) -> bool {
    (-4095..0).contains(&ret)
}

/// Host-wide: a call reported even when it succeeds (a thread-stack mapping, a limit set, a move
/// to another session or process group), by its `host_bits`.
#[inline(always)]
fn host_reportable_success(host: u8, entry: &InFlight) -> bool {
    let stack = host & STACK_MMAPS != 0 && entry.args[3] & MAP_STACK != 0;
    let limit_set = host & LIMIT_SETS != 0 && entry.flags & flags::AUX_RLIMIT_CUR != 0;
    stack || limit_set || host & GROUP_CHANGES != 0
}

/// `MAP_STACK` in mmap's flags.
const MAP_STACK: u64 = 0x20000;

/// The header of a record of type `T` for `entry` of thread `tid`, stamped with its entry time.
#[inline(always)]
fn entry_header<T: Record>(tid: u32, entry: &InFlight, flags: u16) -> EventHeader {
    EventHeader { kind: T::KIND, flags, tid, tgid: entry.tgid, _pad: 0, ts_ns: entry.enter_ns }
}

/// The compact record of a call taken at exit (`entry` holds at most three arguments, no aux).
#[inline(always)]
fn short_record(tid: u32, entry: &InFlight, ret: i64) -> ShortSyscallEvent {
    ShortSyscallEvent {
        header: entry_header::<ShortSyscallEvent>(tid, entry, flags::UNKNOWN_DURATION),
        nr: entry.nr,
        nargs: entry.nargs,
        ret,
        args: [entry.args[0], entry.args[1], entry.args[2]],
    }
}

/// The record for an in-flight entry, finished (`ret`, `duration_ns`) or not (`extra_flags`).
#[inline(always)]
pub fn record(tid: u32, entry: &InFlight, extra_flags: u16, ret: i64, duration_ns: u64) -> SyscallEvent {
    SyscallEvent {
        header: entry_header::<SyscallEvent>(tid, entry, extra_flags | entry.flags),
        nr: entry.nr,
        nargs: entry.nargs,
        args: entry.args,
        ret,
        duration_ns,
        aux: entry.aux,
    }
}
