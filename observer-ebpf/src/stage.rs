//! The per-CPU stage: what a CPU holds about the thread whose syscalls it is running, so the
//! hottest path touches one per-CPU block of memory instead of shared tables: whether the thread is
//! tracked (looked up once per stint on the CPU), its syscall counters (added to its progress slot
//! every [`FOLD_EVERY`] calls and when it leaves), and its compact syscall records (written to the
//! ring in one piece, a reservation and a commit per [`STAGE_RECORDS`] calls instead of per call).
//!
//! A stage only holds the records of the thread running on its CPU, so a thread's records reach
//! the ring in order: the stage is written out when the thread leaves the CPU (`sched_switch`),
//! before any other record is written from the CPU, and when userspace asks (it runs
//! [`stage_flush`] on every CPU each poll, so nothing waits longer than a poll interval). A program
//! that interrupts the syscall program while it holds the stage (a signal generated in an
//! interrupt, userspace's flush, which runs in an IPI) finds it busy and leaves it alone (a record
//! such a program writes then goes ahead of the held ones, as a syscall record stamped at entry
//! already may go after later ones: readers do not rely on a thread's timestamps rising).
use aya_ebpf::{macros::raw_tracepoint, maps::PerCpuArray, programs::RawTracePointContext};
use observer_common::{
    syscall_bits::{WAIT, WATCHED},
    Record, ShortSyscallEvent, ThreadProgress, PROGRESS_SLOTS,
};

use crate::{
    maps::{is_tracked, EVENTS, THREAD_PROGRESS},
    output::{count_lost, count_submitted, wakeup_flag},
};

/// Records a stage holds (2 KiB of compact records).
pub const STAGE_RECORDS: usize = 32;

/// Calls after which a thread's counts reach its progress slot even if it stays on the CPU.
const FOLD_EVERY: u64 = 64;

#[repr(C)]
pub struct Stage {
    /// Records held, at most [`STAGE_RECORDS`].
    count: u32,
    /// Non-zero while a program on this CPU changes the stage.
    busy: u32,
    /// The thread whose syscalls the CPU runs (0: not known since the stage was last let go), and
    /// whether its process is tracked.
    tid: u32,
    tracked: u32,
    /// The thread's syscalls, and the time of its latest progress (0: none), not yet in its slot.
    calls: u64,
    last_progress_ns: u64,
    records: [ShortSyscallEvent; STAGE_RECORDS],
}

#[aya_ebpf::macros::map]
pub static STAGE: PerCpuArray<Stage> = PerCpuArray::with_max_entries(1, 0);

/// This CPU's stage, held by the syscall exit program until dropped (then written out if full).
pub struct Held(*mut Stage);

impl Held {
    /// Holds this CPU's stage. Nothing else holds it at a syscall exit: programs on a CPU do not
    /// preempt each other, and an interrupting one never holds it past its own end.
    #[inline(always)]
    pub fn take() -> Option<Self> {
        let stage = STAGE.get_ptr_mut(0)?;
        // SAFETY: this CPU's stage (see the module's note on who else may touch it).
        unsafe { core::ptr::write_volatile(&mut (*stage).busy, 1) };
        Some(Self(stage))
    }

    /// Makes thread `tid` of `tgid` the stage's thread and says whether it is tracked: looked up
    /// once per stint on the CPU (a different thread found here first has its records and counts
    /// written out).
    #[inline(always)]
    pub fn thread(&mut self, tid: u32, tgid: u32) -> bool {
        let stage = self.0;
        // SAFETY: held (see `take`).
        unsafe {
            if (*stage).tid == tid && tid != 0 {
                return (*stage).tracked != 0;
            }
            write_out_held(stage, true);
            let tracked = is_tracked(tgid);
            (*stage).tid = tid;
            (*stage).tracked = u32::from(tracked);
            tracked
        }
    }

    /// Counts a completed syscall (behaviour bits `bits`) of the stage's thread at `now`.
    #[inline(always)]
    pub fn count_call(&mut self, bits: u16, now: u64) {
        let stage = self.0;
        // SAFETY: held.
        unsafe {
            (*stage).calls += 1;
            // Progress is a recorded call that does more than wait: the runtimes' own housekeeping
            // (a JVM thread's getrusage, Go's signal returns, clock reads) is not.
            if bits & (WATCHED | WAIT) == WATCHED {
                (*stage).last_progress_ns = now;
            }
            if (*stage).calls >= FOLD_EVERY {
                fold(stage);
            }
        }
    }

    /// Holds `record` back, to be written with the rest of the stage.
    #[inline(always)]
    pub fn push(&mut self, record: &ShortSyscallEvent) {
        let stage = self.0;
        // SAFETY: held.
        unsafe {
            let mut count = (*stage).count as usize;
            if count >= STAGE_RECORDS {
                // Cannot happen (a full stage is written out when let go); never write past it.
                write_out_held(stage, false);
                count = 0;
            }
            core::ptr::write_volatile(&mut (*stage).records[count], *record);
            core::ptr::write_volatile(&mut (*stage).count, count as u32 + 1);
        }
    }

    /// Writes the held records out now: a record about to be written directly comes after them.
    #[inline(always)]
    pub fn write_out(&mut self) {
        // SAFETY: held.
        unsafe { write_out_held(self.0, false) };
    }
}

impl Drop for Held {
    #[inline(always)]
    fn drop(&mut self) {
        let stage = self.0;
        // SAFETY: held until here.
        unsafe {
            if (*stage).count as usize >= STAGE_RECORDS {
                write_out_held(stage, false);
            }
            core::ptr::write_volatile(&mut (*stage).busy, 0);
        }
    }
}

/// Writes out this CPU's held records unless a program on the CPU holds the stage (a record
/// written next from the CPU then follows them).
#[inline(always)]
pub fn flush() {
    write_out_if_free(false);
}

/// Lets the stage's thread go: its records and counts are written out and the next syscall exit
/// on the CPU looks its thread up afresh (it left the CPU, or its process became tracked).
#[inline(always)]
pub fn let_go() {
    write_out_if_free(true);
}

#[inline(always)]
fn write_out_if_free(let_thread_go: bool) {
    let Some(stage) = STAGE.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's stage, taken only when no program on the CPU holds it.
    unsafe {
        if core::ptr::read_volatile(&(*stage).busy) != 0
            || (!let_thread_go && core::ptr::read_volatile(&(*stage).count) == 0)
        {
            return;
        }
        core::ptr::write_volatile(&mut (*stage).busy, 1);
        write_out_held(stage, let_thread_go);
        core::ptr::write_volatile(&mut (*stage).busy, 0);
    }
}

/// Writes the held records to the ring and, when letting the thread go, its counts to its slot.
/// The caller holds the stage.
#[inline(always)]
unsafe fn write_out_held(stage: *mut Stage, let_thread_go: bool) {
    // SAFETY: held by the caller.
    unsafe {
        let held = ((*stage).count as usize).min(STAGE_RECORDS);
        if held > 0 {
            match EVENTS.output::<[ShortSyscallEvent]>(&(&(*stage).records)[..held], wakeup_flag(held as u64)) {
                Ok(()) => count_submitted(ShortSyscallEvent::KIND, held as u64),
                Err(_) => count_lost(ShortSyscallEvent::KIND, held as u64),
            }
            core::ptr::write_volatile(&mut (*stage).count, 0);
        }
        if let_thread_go {
            fold(stage);
            (*stage).tid = 0;
        }
    }
}

/// Adds the stage thread's counts to its progress slot (the slot of `tid % PROGRESS_SLOTS`, owned
/// by one tid at a time: a colliding thread restarts the counts, which userspace reads as unknown).
#[inline(always)]
unsafe fn fold(stage: *mut Stage) {
    // SAFETY: held by the caller.
    unsafe {
        let (tid, calls, last) = ((*stage).tid, (*stage).calls, (*stage).last_progress_ns);
        if tid == 0 || calls == 0 {
            return;
        }
        (*stage).calls = 0;
        (*stage).last_progress_ns = 0;
        let Some(slot) = THREAD_PROGRESS.get_ptr_mut(tid & (PROGRESS_SLOTS - 1)) else {
            return;
        };
        if (*slot).tid != tid {
            *slot = ThreadProgress { tid, ..ThreadProgress::default() };
        }
        (*slot).calls += calls;
        if last > (*slot).last_progress_ns {
            (*slot).last_progress_ns = last;
        }
    }
}

/// On `sched_switch` (the CPU's thread is leaving it), and run by userspace on each CPU in turn
/// (`BPF_PROG_TEST_RUN` with a CPU): lets the CPU's thread go. Reads no tracepoint argument, so a
/// raw tracepoint serves on every kernel.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn stage_flush(_ctx: RawTracePointContext) -> i32 {
    let_go();
    0
}
