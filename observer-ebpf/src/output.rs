//! Writing a record into the ring buffer: reservation, failure counting and wake-up batching.
use aya_ebpf::bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};

use crate::maps::{bump, wakeup_bytes, DROPPED, EVENTS, RING_FILL, SUBMITTED};

/// Emit one record of `kind`; a full buffer is counted, never silent.
#[inline(always)]
pub fn emit<T: Copy + 'static>(kind: u16, record: &T) {
    match EVENTS.reserve::<T>(0) {
        Some(mut entry) => {
            entry.write(*record);
            let pending = EVENTS.query(BPF_RB_AVAIL_DATA as u64);
            if let Some(fill) = RING_FILL.get_ptr_mut(0) {
                // SAFETY: this CPU's own slot.
                unsafe { *fill = pending };
            }
            let flags = if pending >= wakeup_bytes() { BPF_RB_FORCE_WAKEUP } else { BPF_RB_NO_WAKEUP };
            entry.submit(flags as u64);
            bump(&SUBMITTED, kind as u32);
        }
        None => bump(&DROPPED, kind as u32),
    }
}
