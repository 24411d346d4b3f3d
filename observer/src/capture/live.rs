//! The live event source: drains the kernel ring buffer without blocking; the caller waits for
//! readiness (or its poll timer) between batches.
use std::os::fd::AsRawFd;

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;

use crate::{
    event::Event,
    source::{EventSource, SourceError},
};

pub struct LiveSource {
    ring: AsyncFd<RingBuf<MapData>>,
    undecodable: u64,
}

impl LiveSource {
    pub fn new(ring: RingBuf<MapData>) -> std::io::Result<Self> {
        // SAFETY: the ring buffer owns its fd for as long as the AsyncFd holds it.
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }.map_err(|e| e.into_parts().1)?;
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

    pub fn raw_fd(&self) -> i32 {
        self.ring.get_ref().as_raw_fd()
    }
}

impl EventSource for LiveSource {
    fn read_batch(&mut self, out: &mut Vec<Event>) -> Result<bool, SourceError> {
        let ring = self.ring.get_mut();
        while let Some(item) = ring.next() {
            match Event::decode(&item) {
                Ok(event) => out.push(event),
                Err(_) => self.undecodable += 1,
            }
        }
        Ok(true)
    }
}
