//! The watchdog half of hang anatomy: checks progress at the cadence the detection window needs
//! (never faster), and takes the stuck snapshot — CPU window, kernel in-flight table, /proc — when
//! a run stalls or its timeout fires.
use std::time::{Duration, Instant};

use super::{
    progress::{detect, Activity, CpuSampler, Stall},
    snapshot, symbols,
};
use crate::{
    analysis::snapshot::{StuckSnapshot, SPIN_SHARE},
    capture::Probes,
    clock,
    sinks::RunStats,
};

/// Window used when the snapshot must measure CPU on the spot (a timeout without `--hang-after`).
const SPOT_WINDOW: Duration = Duration::from_millis(500);

pub struct Watchdog {
    hang_after: Option<Duration>,
    sampler: CpuSampler,
    /// Syscall records received at each CPU sample, to count syscalls in a window.
    syscalls: std::collections::VecDeque<(Instant, u64)>,
    /// A stall was reported; with `--on-hang keep` it is not reported again.
    pub reported: bool,
}

impl Watchdog {
    pub fn new(hang_after: Option<Duration>) -> Self {
        let keep = hang_after.unwrap_or(SPOT_WINDOW) + Duration::from_secs(1);
        Self { hang_after, sampler: CpuSampler::new(keep), syscalls: Default::default(), reported: false }
    }

    /// How often to check: a quarter of the window, between 250 ms and 5 s.
    pub fn interval(&self) -> Option<Duration> {
        self.hang_after.map(|w| (w / 4).clamp(Duration::from_millis(250), Duration::from_secs(5)))
    }

    fn sample(&mut self, pids: &[u32], stats: &RunStats) {
        let now = Instant::now();
        self.sampler.sample(pids);
        self.syscalls.push_back((now, stats.syscall_records));
        let keep = self.hang_after.unwrap_or(SPOT_WINDOW) + Duration::from_secs(1);
        while self.syscalls.len() > 2 && self.syscalls.front().is_some_and(|(t, _)| now.duration_since(*t) > keep) {
            self.syscalls.pop_front();
        }
    }

    fn syscalls_since(&self, window: Duration) -> u64 {
        let Some(&(newest_at, newest)) = self.syscalls.back() else { return 0 };
        let base =
            self.syscalls.iter().rev().find(|(t, _)| newest_at.duration_since(*t) >= window).or(self.syscalls.front());
        newest - base.map_or(newest, |(_, n)| *n)
    }

    /// Samples progress of the processes `pids`; returns the stall once a whole window passed
    /// without progress.
    pub fn check(&mut self, pids: &[u32], stats: &RunStats) -> Option<Stall> {
        let window = self.hang_after?;
        self.sample(pids, stats);
        if self.reported {
            return None;
        }
        let cpu = self.sampler.window(window);
        let now = Instant::now();
        let since_ns = snapshot::boot_ns_now().saturating_sub(window.as_nanos() as u64);
        let syscalled = |tid: u32| stats.last_syscall_at.get(&tid).is_some_and(|t| now.duration_since(*t) < window);
        let progressed = |tid: u32| stats.last_progress_ns.get(&tid).is_some_and(|&t| t >= since_ns);
        detect(&cpu, window, &Activity { syscalled: &syscalled, progressed: &progressed })
    }

    /// The stuck snapshot now. Without enough CPU history it measures a short window on the spot.
    /// `root` is listed first; the other processes follow in pid order.
    pub fn snapshot(
        &mut self,
        probes: &mut Probes,
        pids: &[u32],
        stats: &RunStats,
        root: u32,
        reason: String,
    ) -> StuckSnapshot {
        let window = self.hang_after.unwrap_or(SPOT_WINDOW);
        if self.sampler.span() < SPOT_WINDOW.min(window) {
            self.sample(pids, stats);
            std::thread::sleep(SPOT_WINDOW);
        }
        self.sample(pids, stats);
        let cpu = self.sampler.window(window);
        let mut pids_sorted = pids.to_vec();
        pids_sorted.sort_unstable_by_key(|&p| (p != root, p));
        let mut snap = snapshot::take(&snapshot::Input {
            pids: &pids_sorted,
            in_flight: &probes.in_flight(),
            now_boot_ns: snapshot::boot_ns_now(),
            cpu: &cpu,
            reason,
            taken_at: clock::rfc3339(clock::now_wall_ns()),
            syscalls_in_window: self.syscalls_since(window),
            last_progress_ns: &stats.last_progress_ns,
            first_seen_ns: &stats.first_seen_ns,
        });
        add_stacks(&mut snap, probes);
        snap
    }
}

/// `lock_b_then_a (abba)`: the function and the file it lives in.
fn frame_text(frame: &symbols::Frame) -> String {
    let module = frame.module.as_deref().map(|m| m.rsplit('/').next().unwrap_or(m));
    match (&frame.function, module) {
        (Some(_), Some(m)) => format!("{} ({m})", symbols::label(frame)),
        _ => symbols::label(frame),
    }
}

/// How long a spinning thread is sampled, and how often.
const SAMPLE_FOR: Duration = Duration::from_secs(1);
const SAMPLE_HZ: u64 = 99;

/// Where the threads are in their own code: sampled functions for a thread on CPU, the
/// symbolized user stack for a thread blocked in a syscall. Neither stops the thread.
fn add_stacks(snap: &mut StuckSnapshot, probes: &mut Probes) {
    for p in &mut snap.processes {
        for t in &mut p.threads {
            if t.cpu_share >= SPIN_SHARE {
                if let Ok(samples) = probes.sample_user_stacks(t.tid, SAMPLE_FOR, SAMPLE_HZ) {
                    t.samples = symbols::top_functions(p.pid, &samples, 5);
                }
            } else if t.syscall.is_some() {
                t.user_frames = symbols::function_frames(p.pid, t.tid, 8).iter().map(frame_text).collect();
            }
        }
    }
}
