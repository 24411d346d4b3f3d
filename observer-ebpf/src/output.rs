//! Writing a record into the ring buffer: the header, reservation, failure counting and wake-up
//! batching. Records of one CPU keep their order: the CPU's stage is written out first.
use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::bpf_ktime_get_boot_ns,
};
use observer_common::{maps::ring_fill, EventHeader, Record};

use crate::maps::{add, wakeup_bytes, DROPPED, EVENTS, RING_FILL, SUBMITTED};

/// The header of a record of type `T` about task `tid` of `tgid`, stamped now.
#[inline(always)]
pub fn header<T: Record>(flags: u16, tid: u32, tgid: u32) -> EventHeader {
    // SAFETY: helper without preconditions.
    let ts_ns = unsafe { bpf_ktime_get_boot_ns() };
    EventHeader { kind: T::KIND, flags, tid, tgid, _pad: 0, ts_ns }
}

/// Emit one record, counted under its own kind; a full buffer is counted, never silent.
#[inline(always)]
pub fn emit<T: Record>(record: &T) {
    crate::stage::flush();
    emit_now(record);
}

/// Emit one record without first writing out the CPU's stage: for a caller that holds the stage
/// and has written it out.
#[inline(always)]
pub fn emit_now<T: Record>(record: &T) {
    match EVENTS.reserve::<T>(0) {
        Some(mut entry) => {
            entry.write(*record);
            entry.submit(wakeup_flag(1));
            count_submitted(T::KIND, 1);
        }
        None => lost::<T>(),
    }
}

/// Counts `records` of kind `kind` written to the ring.
#[inline(always)]
pub fn count_submitted(kind: u16, records: u64) {
    add(&SUBMITTED, kind as u32, records);
}

/// Counts `records` of kind `kind` that found the ring full.
#[inline(always)]
pub fn count_lost(kind: u16, records: u64) {
    add(&DROPPED, kind as u32, records);
}

/// Counts a record of type `T` that could not be written (a full buffer, or a tracepoint field
/// the kernel would not let the program read): userspace reports every loss.
#[inline(always)]
pub fn lost<T: Record>() {
    count_lost(T::KIND, 1);
}

/// A CPU looks at the buffer's fill once per this many of its records: the query is a helper call
/// per record otherwise, and a wake-up decided 64 records (about 7 KB) late changes nothing.
const QUERY_EVERY: u64 = 64;

/// The submit flag for a write of `records` records: a wake-up when enough bytes are pending (the
/// reader's poll timer collects the rest); keeps the fill gauge.
#[inline(always)]
pub fn wakeup_flag(records: u64) -> u64 {
    let (Some(pending), Some(since_query)) =
        (RING_FILL.get_ptr_mut(ring_fill::PENDING), RING_FILL.get_ptr_mut(ring_fill::SINCE_QUERY))
    else {
        return BPF_RB_NO_WAKEUP as u64;
    };
    // SAFETY: this CPU's own slots; a program interrupting this one at worst miscounts the gauge.
    unsafe {
        *since_query += records;
        if *since_query < QUERY_EVERY {
            return BPF_RB_NO_WAKEUP as u64;
        }
        *since_query = 0;
        *pending = EVENTS.query(BPF_RB_AVAIL_DATA as u64);
        if *pending >= wakeup_bytes() {
            BPF_RB_FORCE_WAKEUP as u64
        } else {
            BPF_RB_NO_WAKEUP as u64
        }
    }
}
