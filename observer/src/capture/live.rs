//! The live event source: drains the kernel ring buffer without blocking; the caller waits for
//! readiness (or its poll timer) between batches.

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;

use crate::{
    event::Event,
    source::{EventSource, SourceError},
};

/// Records taken from the ring per batch. The ring is the buffer: drained whole into memory, the
/// reader grew to 150 MiB facing two producers that kept refilling it, and to 2.1 GiB when one
/// producer at 2.2 M records/s kept the drain from ever ending.
pub const MAX_BATCH: usize = 16 * 1024;

pub struct LiveSource {
    ring: AsyncFd<RingBuf<MapData>>,
    undecodable: u64,
    /// The last batch did not fill up: the ring was empty, the drain in progress is over.
    drained: bool,
}

impl LiveSource {
    pub fn new(ring: RingBuf<MapData>) -> std::io::Result<Self> {
        // SAFETY: the ring buffer owns its fd for as long as the AsyncFd holds it.
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Self { ring, undecodable: 0, drained: false })
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
    /// and says whether there is a batch to handle. A drain is
    /// `while live.next_batch(&mut batch) { handle(&batch) }`: it ends after the first batch the
    /// ring could not fill, so a producer that keeps refilling the ring never holds the caller
    /// away from its timers.
    pub fn next_batch(&mut self, batch: &mut Vec<Event>) -> bool {
        batch.clear();
        if std::mem::take(&mut self.drained) {
            return false;
        }
        let _ = self.read_batch(batch);
        true
    }
}

impl EventSource for LiveSource {
    fn read_batch(&mut self, out: &mut Vec<Event>) -> Result<bool, SourceError> {
        let ring = self.ring.get_mut();
        let mut taken = 0;
        while taken < MAX_BATCH {
            let Some(item) = ring.next() else {
                break;
            };
            taken += 1;
            match Event::decode(&item) {
                Ok(event) => out.push(event),
                Err(_) => self.undecodable += 1,
            }
        }
        self.drained = taken < MAX_BATCH;
        Ok(true)
    }
}
