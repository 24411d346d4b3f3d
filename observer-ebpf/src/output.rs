//! Writing a record into the ring buffer: reservation, failure counting and wake-up batching.
use aya_ebpf::bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};

use crate::maps::{bump, wakeup_bytes, DROPPED, EVENTS, FILL_PENDING, FILL_SINCE_QUERY, RING_FILL, SUBMITTED};

/// Emit one record of `kind`; a full buffer is counted, never silent.
#[inline(always)]
pub fn emit<T: Copy + 'static>(kind: u16, record: &T) {
    match EVENTS.reserve::<T>(0) {
        Some(mut entry) => {
            entry.write(*record);
            let flags = if wakeup_due() { BPF_RB_FORCE_WAKEUP } else { BPF_RB_NO_WAKEUP };
            entry.submit(flags as u64);
            bump(&SUBMITTED, kind as u32);
        }
        None => bump(&DROPPED, kind as u32),
    }
}

/// A CPU looks at the buffer's fill once per this many of its records: the query is a helper call
/// per record otherwise, and a wake-up decided 64 records (about 7 KB) late changes nothing.
const QUERY_EVERY: u64 = 64;

/// Whether this submit should wake the reader (enough bytes pending); keeps the fill gauge.
#[inline(always)]
fn wakeup_due() -> bool {
    let (Some(pending), Some(since_query)) =
        (RING_FILL.get_ptr_mut(FILL_PENDING), RING_FILL.get_ptr_mut(FILL_SINCE_QUERY))
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
