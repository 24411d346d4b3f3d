//! `signal/signal_generate` and `signal/signal_deliver`: who sent which signal to whom, and when a
//! tracked thread acted on one.
use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_probe_read_kernel},
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};
use observer_common::{
    siginfo,
    tracepoint_fields::{
        SIGDEL_CODE, SIGDEL_ERRNO, SIGDEL_SA_FLAGS, SIGDEL_SA_HANDLER, SIGDEL_SIG, SIGGEN_CODE, SIGGEN_COMM,
        SIGGEN_ERRNO, SIGGEN_GROUP, SIGGEN_PID, SIGGEN_RESULT, SIGGEN_SIG,
    },
    FaultEvent, SignalDeliverEvent, SignalGenerateEvent,
};

use crate::{
    maps::{current_ids, host_wide, is_tracked, TASKS},
    output::{emit, header, lost},
};

// A field that cannot be read loses the event: counted with the records lost of its kind.

#[tracepoint]
pub fn signal_generate(ctx: TracePointContext) -> u32 {
    if try_generate(&ctx).is_err() {
        lost::<SignalGenerateEvent>();
    }
    0
}

#[tracepoint]
pub fn signal_deliver(ctx: TracePointContext) -> u32 {
    if try_deliver(&ctx).is_err() {
        lost::<SignalDeliverEvent>();
    }
    0
}

/// Signals worth streaming host-wide: those that end or stop processes and the user signals; not
/// the routine SIGCHLD, timers, SIGWINCH, SIGURG, SIGIO and real-time signals.
fn host_signal(sig: i32) -> bool {
    sig > 0 && sig < 32 && !matches!(sig, 14 | 17 | 23 | 26 | 27 | 28 | 29)
}

fn try_generate(ctx: &TracePointContext) -> Result<(), i32> {
    let (tid, tgid) = current_ids();
    // SAFETY: offsets checked against the format file.
    let target: i32 = unsafe { ctx.read_at(SIGGEN_PID)? };
    let target = target as u32;
    // Sent by a tracked task, or aimed at one (a process id is its leader's tid).
    let mut flags = 0;
    if !is_tracked(tgid) && !is_tracked(target) && TASKS.get_ptr(target).is_none() {
        // SAFETY: offset checked against the format file.
        let sig: i32 = unsafe { ctx.read_at(SIGGEN_SIG)? };
        if !host_wide() || !host_signal(sig) {
            return Ok(());
        }
        flags = observer_common::flags::HOST;
    }
    let event = unsafe {
        SignalGenerateEvent {
            header: header::<SignalGenerateEvent>(flags, tid, tgid),
            sig: ctx.read_at(SIGGEN_SIG)?,
            errno: ctx.read_at(SIGGEN_ERRNO)?,
            code: ctx.read_at(SIGGEN_CODE)?,
            target_tid: target,
            group: ctx.read_at(SIGGEN_GROUP)?,
            result: ctx.read_at(SIGGEN_RESULT)?,
            sender_comm: bpf_get_current_comm().unwrap_or_default(),
            target_comm: ctx.read_at(SIGGEN_COMM)?,
        }
    };
    emit(&event);
    Ok(())
}

fn try_deliver(ctx: &TracePointContext) -> Result<(), i32> {
    let (tid, tgid) = current_ids();
    let mut flags = 0;
    if !is_tracked(tgid) {
        // SAFETY: offset checked against the format file.
        let sig: i32 = unsafe { ctx.read_at(SIGDEL_SIG)? };
        if !host_wide() || !host_signal(sig) {
            return Ok(());
        }
        flags = observer_common::flags::HOST;
    }
    // SAFETY: offsets checked against the format file.
    let event = unsafe {
        SignalDeliverEvent {
            header: header::<SignalDeliverEvent>(flags, tid, tgid),
            sig: ctx.read_at(SIGDEL_SIG)?,
            errno: ctx.read_at(SIGDEL_ERRNO)?,
            code: ctx.read_at(SIGDEL_CODE)?,
            _pad: 0,
            sa_handler: ctx.read_at(SIGDEL_SA_HANDLER)?,
            sa_flags: ctx.read_at(SIGDEL_SA_FLAGS)?,
        }
    };
    emit(&event);
    Ok(())
}

const SIGILL: i32 = 4;
const SIGTRAP: i32 = 5;
const SIGBUS: i32 = 7;
const SIGFPE: i32 = 8;
const SIGSEGV: i32 = 11;

/// `signal_generate(int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
/// int result)`: only the siginfo of fault signals is read, at its userspace-ABI offsets.
#[btf_tracepoint(function = "signal_generate")]
pub fn signal_fault(ctx: BtfTracePointContext) -> i32 {
    if try_fault(&ctx).is_err() {
        lost::<FaultEvent>();
    }
    0
}

fn try_fault(ctx: &BtfTracePointContext) -> Result<(), i32> {
    let sig: i32 = ctx.arg(0);
    if !matches!(sig, SIGILL | SIGTRAP | SIGBUS | SIGFPE | SIGSEGV) {
        return Ok(());
    }
    let (tid, tgid) = current_ids();
    let flags = if is_tracked(tgid) {
        0
    } else if host_wide() {
        observer_common::flags::HOST
    } else {
        return Ok(());
    };
    let info: *const u8 = ctx.arg(1);
    // SEND_SIG_NOINFO (0) and SEND_SIG_PRIV (1) are markers, not pointers.
    if (info as usize) < 4096 {
        return Ok(());
    }
    // SAFETY: a kernel pointer read with the fault-tolerant helper.
    let (code, addr) = unsafe {
        (
            bpf_probe_read_kernel(info.add(siginfo::SI_CODE) as *const i32)?,
            bpf_probe_read_kernel(info.add(siginfo::SI_ADDR) as *const u64)?,
        )
    };
    // Only kernel-raised faults (positive si_code) carry an address.
    if code <= 0 {
        return Ok(());
    }
    let event = FaultEvent { header: header::<FaultEvent>(flags, tid, tgid), sig, code, addr };
    emit(&event);
    Ok(())
}
