//! `syscalls/sys_enter_*` and `sys_exit_*`: one generic program each, attached to every watched
//! syscall; entry parks the arguments in the in-flight table, exit turns them into one record.
use aya_ebpf::{
    helpers::{bpf_ktime_get_boot_ns, bpf_probe_read_kernel_buf, bpf_probe_read_user},
    EbpfContext,
    macros::tracepoint,
    programs::TracePointContext,
};
use observer_common::{
    flags,
    host_bits::{ERRORS, LIMIT_SETS, STACK_MMAPS},
    kind,
    syscall_bits::{CLONE3, NARGS_MASK, NO_RETURN, RLIMIT},
    tracepoint_fields::{SYS_ENTER_ARGS, SYS_ENTER_NR, SYS_EXIT_RET},
    EventHeader, InFlight, SyscallEvent, COUNTER_INFLIGHT_FULL, MAX_ARGS,
};

use crate::{
    maps::{bump, current_ids, host_wide, is_tracked, in_flight_put, in_flight_take, DROPPED, HOST_TABLE, SYSCALL_TABLE},
    output::emit,
};

/// A field every record of the attached tracepoints has (`__syscall_nr`, `ret`), loaded straight
/// from the context: `read_at` would cost a helper call on the hottest path.
#[inline(always)]
fn field<T: Copy>(ctx: &TracePointContext, offset: usize) -> T {
    // SAFETY: offsets are constants checked against the format file by userspace before
    // attaching; the record is at least that long; the verifier checks each load.
    unsafe { core::ptr::read((ctx.as_ptr() as *const u8).add(offset) as *const T) }
}

#[tracepoint]
pub fn sys_enter(ctx: TracePointContext) -> u32 {
    let _ = try_sys_enter(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit(ctx: TracePointContext) -> u32 {
    let _ = try_sys_exit(&ctx);
    0
}

fn try_sys_enter(ctx: &TracePointContext) -> Result<(), i32> {
    let (tid, tgid) = current_ids();
    let tracked = is_tracked(tgid);
    if !tracked && !host_wide() {
        return Ok(());
    }
    let nr: i32 = field(ctx, SYS_ENTER_NR);
    let bits = match SYSCALL_TABLE.get(nr as u32) {
        Some(bits) if *bits != 0 => *bits,
        _ => return Ok(()),
    };
    // Untracked processes (host-wide mode) are paired only for the syscalls whose failures count.
    let host = if tracked {
        0
    } else {
        match HOST_TABLE.get(nr as u32) {
            Some(h) if *h != 0 => *h,
            _ => return Ok(()),
        }
    };
    let nargs = (bits & NARGS_MASK) as usize;
    let mut entry = InFlight { nr: nr as u32, nargs: nargs as u32, tgid, host, ..InFlight::default() };
    // One copy of the syscall's own arguments. Not direct context loads: a program that loads
    // past a record's end cannot attach to tracepoints with shorter records (munmap has two).
    if nargs > 0 {
        let len = (nargs * 8).min(MAX_ARGS * 8);
        // SAFETY: `args` is MAX_ARGS u64s, viewed as bytes; `len` is bounded by its size.
        let dst = unsafe { core::slice::from_raw_parts_mut(entry.args.as_mut_ptr() as *mut u8, len) };
        // SAFETY: the source is this tracepoint's own record, at offsets checked against its format.
        unsafe { bpf_probe_read_kernel_buf((ctx.as_ptr() as *const u8).add(SYS_ENTER_ARGS), dst)? };
    }
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
    // SAFETY: helper without preconditions.
    entry.enter_ns = unsafe { bpf_ktime_get_boot_ns() };
    if bits & NO_RETURN != 0 {
        if tracked {
            emit(kind::SYSCALL, &record(tid, &entry, flags::NO_RETURN, 0, 0));
        }
        return Ok(());
    }
    if !in_flight_put(tid, &entry) {
        bump(&DROPPED, COUNTER_INFLIGHT_FULL);
    }
    Ok(())
}

fn try_sys_exit(ctx: &TracePointContext) -> Result<(), i32> {
    let (tid, tgid) = current_ids();
    // The same one-load filter as at entry: untracked processes have no slot to look for.
    if !host_wide() && !is_tracked(tgid) {
        return Ok(());
    }
    // Only threads whose entry we recorded have an in-flight slot; everything else stops here.
    let Some(entry) = in_flight_take(tid) else {
        return Ok(());
    };
    let ret: i64 = field(ctx, SYS_EXIT_RET);
    let mut extra = 0;
    if entry.host != 0 {
        // Host-wide: only failures, and thread-stack mappings, leave the kernel.
        let failed = (-4095..0).contains(&ret);
        let stack = entry.host & STACK_MMAPS != 0 && entry.args[3] & MAP_STACK != 0;
        let limit_set = entry.host & LIMIT_SETS != 0 && entry.flags & flags::AUX_RLIMIT_CUR != 0;
        if !(failed && entry.host & ERRORS != 0) && !stack && !limit_set {
            return Ok(());
        }
        extra = flags::HOST;
    }
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    emit(kind::SYSCALL, &record(tid, &entry, extra, ret, now.saturating_sub(entry.enter_ns)));
    Ok(())
}

/// `MAP_STACK` in mmap's flags.
const MAP_STACK: u64 = 0x20000;

/// The record for an in-flight entry, finished (`ret`, `duration_ns`) or not (`extra_flags`).
#[inline(always)]
pub fn record(tid: u32, entry: &InFlight, extra_flags: u16, ret: i64, duration_ns: u64) -> SyscallEvent {
    SyscallEvent {
        header: EventHeader {
            kind: kind::SYSCALL,
            flags: extra_flags | entry.flags,
            tid,
            tgid: entry.tgid,
            _pad: 0,
            ts_ns: entry.enter_ns,
        },
        nr: entry.nr,
        nargs: entry.nargs,
        args: entry.args,
        ret,
        duration_ns,
        aux: entry.aux,
    }
}
