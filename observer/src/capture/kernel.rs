//! The kernel side ready to capture: checks passed, programs attached, ring-buffer reader open.
//! Loaded once, then used by one run, one attach, or every attempt of a repeat.
use std::thread::JoinHandle;

use super::{privilege, probes, probes::HostWide, tracefs, CaptureError, Counters, LiveSource, Probes};

pub struct Kernel {
    pub probes: Probes,
    pub live: LiveSource,
}

/// What the kernel side counted during one capture (differences of its running counters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub counters: Counters,
    pub undecodable: u64,
}

impl Kernel {
    /// Checks privileges and tracefs, verifies the tracepoint layout, loads and attaches the
    /// programs with a ring buffer of `buffer_size` bytes. Needs a tokio runtime (the reader).
    pub fn load(buffer_size: u64) -> Result<Self, CaptureError> {
        Self::load_with(buffer_size, &HostWide::default())
    }

    /// As `load`, streaming every process at low rate with filters (`observer watch`).
    pub fn load_with(buffer_size: u64, host: &HostWide) -> Result<Self, CaptureError> {
        let buffer_size = probes::validate_buffer_size(buffer_size)?;
        privilege::check()?;
        let root = tracefs::ensure_mounted()?;
        tracefs::verify_layout(&root)?;
        // Wake the reader once a quarter of the buffer (at most 256 KiB) is pending.
        let wakeup_bytes = (u64::from(buffer_size) / 4).min(256 * 1024);
        let mut probes = Probes::load_with(buffer_size, wakeup_bytes, host)?;
        let ring = probes.take_ring().expect("a freshly loaded Probes has its ring buffer");
        let live = LiveSource::new(ring).map_err(|e| CaptureError::Load(format!("ring buffer reader: {e}")))?;
        Ok(Self { probes, live })
    }

    /// The running counters now, to subtract at the end of a capture.
    pub fn tally(&self) -> Tally {
        Tally { counters: self.probes.counters(), undecodable: self.live.undecodable() }
    }

    /// What was counted since `start`.
    pub fn tally_since(&self, start: &Tally) -> Tally {
        let now = self.tally();
        let minus = |a: &[u64], b: &[u64]| {
            a.iter().zip(b.iter().chain(std::iter::repeat(&0))).map(|(x, y)| x - y.min(x)).collect()
        };
        Tally {
            counters: Counters {
                submitted: minus(&now.counters.submitted, &start.counters.submitted),
                dropped: minus(&now.counters.dropped, &start.counters.dropped),
                inflight_full: now.counters.inflight_full
                    - start.counters.inflight_full.min(now.counters.inflight_full),
            },
            undecodable: now.undecodable - start.undecodable.min(now.undecodable),
        }
    }

    /// Detaches every program on another thread: it waits for RCU grace periods (seconds for 70
    /// tracepoints), which can overlap with writing the run directory.
    pub fn detach_in_background(self) -> JoinHandle<()> {
        std::thread::spawn(move || drop(self))
    }
}
