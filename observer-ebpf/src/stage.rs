//! The per-CPU stage: compact syscall records of the thread running on a CPU, held back and
//! written to the ring in one piece, so the hottest path pays a ring reservation, a commit and a
//! cold ring line once per [`STAGE_RECORDS`] calls instead of once per call.
//!
//! A stage only ever holds records of the thread running on its CPU, so a thread's records reach
//! the ring in order: the stage is flushed when that thread leaves the CPU (`sched_switch`), before
//! any other record is written from the CPU, and when userspace asks (it runs [`stage_flush`] on
//! every CPU each poll, so a record waits at most one poll interval). Programs that interrupt a
//! stage write (a signal generated from an interrupt, userspace's flush, which runs in an IPI)
//! find it busy and leave it alone: the interrupted writer finishes and flushes later.
use aya_ebpf::{macros::raw_tracepoint, maps::PerCpuArray, programs::RawTracePointContext};
use observer_common::{Record, ShortSyscallEvent};

use crate::{
    maps::EVENTS,
    output::{count_lost, count_submitted, wakeup_flag},
};

/// Records a stage holds (2 KiB of compact records).
pub const STAGE_RECORDS: usize = 32;

#[repr(C)]
pub struct Stage {
    /// Records held, at most [`STAGE_RECORDS`].
    count: u32,
    /// Non-zero while a program on this CPU changes the stage.
    busy: u32,
    records: [ShortSyscallEvent; STAGE_RECORDS],
}

#[aya_ebpf::macros::map]
pub static STAGE: PerCpuArray<Stage> = PerCpuArray::with_max_entries(1, 0);

/// Holds `record` on this CPU's stage, writing the stage out when it is full.
#[inline(always)]
pub fn stage(record: &ShortSyscallEvent) {
    let Some(stage) = STAGE.get_ptr_mut(0) else {
        crate::output::emit(record);
        return;
    };
    // SAFETY: this CPU's stage. Programs on a CPU do not preempt each other; one that interrupts
    // this (an interrupt's, userspace's IPI flush) sees `busy` and keeps off.
    unsafe {
        core::ptr::write_volatile(&mut (*stage).busy, 1);
        let held = core::ptr::read_volatile(&(*stage).count) as usize;
        if held >= STAGE_RECORDS {
            // Cannot happen (a full stage is written out at once); never write past it.
            core::ptr::write_volatile(&mut (*stage).busy, 0);
            crate::output::emit(record);
            return;
        }
        core::ptr::write_volatile(&mut (*stage).records[held], *record);
        core::ptr::write_volatile(&mut (*stage).count, held as u32 + 1);
        core::ptr::write_volatile(&mut (*stage).busy, 0);
        if held + 1 == STAGE_RECORDS {
            write_out(stage);
        }
    }
}

/// Writes this CPU's held records to the ring (if any, and if no program on the CPU is changing
/// the stage).
#[inline(always)]
pub fn flush() {
    if let Some(stage) = STAGE.get_ptr_mut(0) {
        write_out(stage);
    }
}

#[inline(always)]
fn write_out(stage: *mut Stage) {
    // SAFETY: as in `stage`.
    unsafe {
        let held = core::ptr::read_volatile(&(*stage).count) as usize;
        if held == 0 || core::ptr::read_volatile(&(*stage).busy) != 0 {
            return;
        }
        core::ptr::write_volatile(&mut (*stage).busy, 1);
        let held = held.min(STAGE_RECORDS);
        match EVENTS.output::<[ShortSyscallEvent]>(&(&(*stage).records)[..held], wakeup_flag(held as u64)) {
            Ok(()) => count_submitted(ShortSyscallEvent::KIND, held as u64),
            Err(_) => count_lost(ShortSyscallEvent::KIND, held as u64),
        }
        core::ptr::write_volatile(&mut (*stage).count, 0);
        core::ptr::write_volatile(&mut (*stage).busy, 0);
    }
}

/// On `sched_switch` (the CPU's thread is leaving it), and run by userspace on each CPU in turn
/// (`BPF_PROG_TEST_RUN` with a CPU): writes out the CPU's stage. Takes no arguments from the
/// tracepoint, so a raw tracepoint serves on every kernel.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn stage_flush(_ctx: RawTracePointContext) -> i32 {
    flush();
    0
}
