//! The live event source: drains the kernel ring buffer without blocking; the caller waits for
//! readiness (or its poll timer) between batches.

use std::time::{Duration, Instant};

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;

use crate::{
    event::Event,
    source::{EventSource, SourceError},
};

/// Records taken from the ring per batch (a ring entry is one record, or a CPU's run of held
/// compact syscall records). The ring is the buffer: drained whole into memory, the
/// reader grew to 150 MiB facing two producers that kept refilling it, and to 2.1 GiB when one
/// producer at 2.2 M records/s kept the drain from ever ending.
pub const MAX_BATCH: usize = 16 * 1024;

pub struct LiveSource {
    ring: AsyncFd<RingBuf<MapData>>,
    undecodable: u64,
}

impl LiveSource {
    pub fn new(ring: RingBuf<MapData>) -> std::io::Result<Self> {
        // SAFETY: the ring buffer owns its fd for as long as the AsyncFd holds it.
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Self { ring, undecodable: 0 })
    }

    /// Waits until the kernel signals pending data (it does so only past the wake-up threshold;
    /// the caller's timer picks up the rest).
    pub async fn readable(&self) {
        if let Ok(mut guard) = self.ring.readable().await {
            guard.clear_ready();
        }
    }

    /// Records the kernel sent that did not decode (a build mismatch; counted, never silent).
    pub fn undecodable(&self) -> u64 {
        self.undecodable
    }

    /// Fills `batch` (cleared first) with the next records of the ring, at most [`MAX_BATCH`],
    /// and says whether the ring may hold more (the batch filled up).
    fn next_batch(&mut self, batch: &mut Vec<Event>) -> bool {
        batch.clear();
        self.read_records(batch)
    }

    /// Appends records to `out` until the ring is empty or [`MAX_BATCH`] were added; true when
    /// the batch filled up.
    fn read_records(&mut self, out: &mut Vec<Event>) -> bool {
        let ring = self.ring.get_mut();
        let start = out.len();
        while out.len() - start < MAX_BATCH {
            let Some(item) = ring.next() else {
                return false;
            };
            for record in split_records(&item) {
                match record.map(Event::decode) {
                    Some(Ok(event)) => out.push(event),
                    _ => self.undecodable += 1,
                }
            }
        }
        true
    }
}

/// One drain of the ring: `while drain.next(live, &mut batch) { handle(&batch) }` hands over
/// batches until one comes back short (the ring was empty) or `limit` has passed, so a producer
/// that keeps refilling the ring never holds the caller away from its timers. Its state lives and
/// dies with the drain: one cut short by its clock (or by observer being stopped) leaves the next
/// one whole.
pub struct Drain {
    until: Instant,
    over: bool,
}

impl Drain {
    pub fn for_at_most(limit: Duration) -> Self {
        Self { until: Instant::now() + limit, over: false }
    }

    /// Fills `batch` with the next records (possibly none) and says whether there is a batch to
    /// handle.
    pub fn next(&mut self, live: &mut LiveSource, batch: &mut Vec<Event>) -> bool {
        if self.over {
            return false;
        }
        let more = live.next_batch(batch);
        self.over = !more || Instant::now() >= self.until;
        true
    }
}

impl EventSource for LiveSource {
    /// A live ring never ends: always `Ok(true)`.
    fn read_batch(&mut self, out: &mut Vec<Event>) -> Result<bool, SourceError> {
        self.read_records(out);
        Ok(true)
    }
}

/// The records of one ring entry, each sized by its kind; `None` for a remainder that is no whole
/// record (a build mismatch), after which the entry is not read further.
fn split_records(entry: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    let mut rest = Some(entry);
    std::iter::from_fn(move || {
        let bytes = rest.filter(|b| !b.is_empty())?;
        let kind = bytes.get(..2).map(|k| u16::from_ne_bytes([k[0], k[1]]));
        let size = kind.map_or(0, observer_common::record_size);
        if size == 0 || size > bytes.len() {
            rest = None;
            return Some(None);
        }
        let (record, tail) = bytes.split_at(size);
        rest = Some(tail);
        Some(Some(record))
    })
}

#[cfg(test)]
mod tests {
    use observer_common::{kind, record_size};

    use super::split_records;

    fn record(kind: u16) -> Vec<u8> {
        let mut bytes = vec![0u8; record_size(kind)];
        bytes[..2].copy_from_slice(&kind.to_ne_bytes());
        bytes
    }

    #[test]
    fn an_entry_of_held_records_splits_into_each_record() {
        let entry = [record(kind::SHORT_SYSCALL), record(kind::SHORT_SYSCALL), record(kind::SHORT_SYSCALL)].concat();
        let records: Vec<_> = split_records(&entry).collect();
        assert_eq!(records.len(), 3);
        assert!(records.iter().all(|r| r.is_some_and(|r| r.len() == record_size(kind::SHORT_SYSCALL))));
    }

    #[test]
    fn a_single_record_entry_is_one_record() {
        let entry = record(kind::SYSCALL);
        assert_eq!(split_records(&entry).collect::<Vec<_>>(), vec![Some(&entry[..])]);
    }

    #[test]
    fn a_remainder_that_is_no_whole_record_is_one_undecodable_item() {
        let mut entry = record(kind::SHORT_SYSCALL);
        entry.extend_from_slice(&record(kind::SHORT_SYSCALL)[..10]);
        let records: Vec<_> = split_records(&entry).collect();
        assert_eq!(records.len(), 2);
        assert!(records[0].is_some() && records[1].is_none());
        let unknown = [0xffu8; 64];
        assert_eq!(split_records(&unknown).collect::<Vec<_>>(), vec![None]);
    }
}
