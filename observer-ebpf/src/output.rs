//! Writing a record into the ring buffer: the header, reservation, failure counting and wake-up
//! batching.
use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::bpf_ktime_get_boot_ns,
};
use observer_common::{maps::ring_fill, EventHeader, Record};

use crate::maps::{bump, wakeup_bytes, DROPPED, EVENTS, RING_FILL, SUBMITTED};

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
    match EVENTS.reserve::<T>(0) {
        Some(mut entry) => {
            entry.write(*record);
            let flags = if wakeup_due() { BPF_RB_FORCE_WAKEUP } else { BPF_RB_NO_WAKEUP };
            entry.submit(flags as u64);
            bump(&SUBMITTED, T::KIND as u32);
        }
        None => lost::<T>(),
    }
}

/// Counts a record of type `T` that could not be written (a full buffer, or a tracepoint field
/// the kernel would not let the program read): userspace reports every loss.
#[inline(always)]
pub fn lost<T: Record>() {
    bump(&DROPPED, T::KIND as u32);
}

/// A CPU looks at the buffer's fill once per this many of its records: the query is a helper call
/// per record otherwise, and a wake-up decided 64 records (about 7 KB) late changes nothing.
const QUERY_EVERY: u64 = 64;

/// Whether this submit should wake the reader (enough bytes pending); keeps the fill gauge.
#[inline(always)]
fn wakeup_due() -> bool {
    let (Some(pending), Some(since_query)) =
        (RING_FILL.get_ptr_mut(ring_fill::PENDING), RING_FILL.get_ptr_mut(ring_fill::SINCE_QUERY))
    else {
        return false;
    };
    // SAFETY: this CPU's own slots; no other writer while the program runs on it.
    unsafe {
        *since_query += 1;
        if *since_query < QUERY_EVERY {
            return false;
        }
        *since_query = 0;
        *pending = EVENTS.query(BPF_RB_AVAIL_DATA as u64);
        *pending >= wakeup_bytes()
    }
}
