//! The watchdog half of hang anatomy: checks progress at the cadence the detection window needs
//! (never faster), and takes the stuck snapshot — CPU window, kernel in-flight table, /proc — when
//! a run stalls or its timeout fires.
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    time::{Duration, Instant},
};

use observer_common::ThreadProgress;

use super::{
    progress::{detect, Activity, CpuSampler, Stall},
    snapshot, symbols,
};
use crate::{
    analysis::{
        runtime::activity,
        snapshot::{StuckSnapshot, SPIN_SHARE},
    },
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
    syscalls: VecDeque<(Instant, u64)>,
    /// The kernel's per-thread counters at each CPU sample: what the threads did, however far
    /// the reader has got through the ring buffer.
    kernel: VecDeque<(Instant, BTreeMap<u32, ThreadProgress>)>,
    /// A stall was reported; with `--on-hang keep` it is not reported again.
    pub reported: bool,
}

impl Watchdog {
    pub fn new(hang_after: Option<Duration>) -> Self {
        let keep = hang_after.unwrap_or(SPOT_WINDOW) + Duration::from_secs(1);
        Self {
            hang_after,
            sampler: CpuSampler::new(keep),
            syscalls: Default::default(),
            kernel: Default::default(),
            reported: false,
        }
    }

    /// How often to check: a quarter of the window, between 250 ms and 5 s.
    pub fn interval(&self) -> Option<Duration> {
        self.hang_after.map(|w| (w / 4).clamp(Duration::from_millis(250), Duration::from_secs(5)))
    }

    fn sample(&mut self, probes: &Probes, pids: &[u32], stats: &RunStats) {
        let now = Instant::now();
        self.sampler.sample(pids);
        self.syscalls.push_back((now, stats.syscall_records));
        self.kernel.push_back((now, probes.thread_progress(self.sampler.threads())));
        let keep = self.hang_after.unwrap_or(SPOT_WINDOW) + Duration::from_secs(1);
        trim(&mut self.syscalls, now, keep);
        trim(&mut self.kernel, now, keep);
    }

    /// Syscalls completed in the window: as the kernel counted them per thread, or as records
    /// arrived, whichever is more (a thread whose counter slot another took is only in the latter).
    fn syscalls_since(&self, window: Duration) -> u64 {
        let received = match (self.syscalls.back(), oldest_within(&self.syscalls, window)) {
            (Some((_, newest)), Some((_, base))) => newest - base,
            _ => 0,
        };
        let counted = match (self.kernel.back(), oldest_within(&self.kernel, window)) {
            (Some((_, newest)), Some((_, base))) => newest
                .iter()
                .map(|(tid, now)| now.calls.saturating_sub(base.get(tid).map_or(0, |then| then.calls)))
                .sum(),
            _ => 0,
        };
        received.max(counted)
    }

    /// The kernel's counters of the latest sample.
    fn counters(&self) -> Option<&BTreeMap<u32, ThreadProgress>> {
        self.kernel.back().map(|(_, c)| c)
    }

    /// Per thread, the latest call that did more than wait: the kernel's counter or the latest
    /// record, whichever is later.
    fn last_progress_ns(&self, stats: &RunStats) -> HashMap<u32, u64> {
        let mut last = stats.last_progress_ns.clone();
        for (tid, p) in self.counters().into_iter().flatten() {
            if p.last_progress_ns != 0 {
                let t = last.entry(*tid).or_default();
                *t = (*t).max(p.last_progress_ns);
            }
        }
        last
    }

    /// Samples progress of the processes `pids`; returns the stall once a whole window passed
    /// without progress.
    pub fn check(&mut self, probes: &Probes, pids: &[u32], stats: &RunStats) -> Option<Stall> {
        let window = self.hang_after?;
        self.sample(probes, pids, stats);
        if self.reported {
            return None;
        }
        let cpu = self.sampler.window(window);
        let since_ns = snapshot::boot_ns_now().saturating_sub(window.as_nanos() as u64);
        let last_progress = self.last_progress_ns(stats);
        let progressed = |tid: u32| last_progress.get(&tid).is_some_and(|&t| t >= since_ns);
        detect(&cpu, window, &Activity { progressed: &progressed })
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
            self.sample(probes, pids, stats);
            std::thread::sleep(SPOT_WINDOW);
        }
        self.sample(probes, pids, stats);
        let cpu = self.sampler.window(window);
        let mut pids_sorted = pids.to_vec();
        pids_sorted.sort_unstable_by_key(|&p| (p != root, p));
        let in_flight = probes.in_flight();
        let mut snap = snapshot::take(&snapshot::Input {
            pids: &pids_sorted,
            in_flight: &in_flight,
            now_boot_ns: snapshot::boot_ns_now(),
            cpu: &cpu,
            reason,
            taken_at: clock::rfc3339(clock::now_wall_ns()),
            syscalls_in_window: self.syscalls_since(window),
            last_progress_ns: &self.last_progress_ns(stats),
            progress_window: window,
            first_seen_ns: &stats.first_seen_ns,
        });
        let frame_pointers: HashMap<u32, u64> = in_flight.iter().map(|(tid, e)| (*tid, e.bp)).collect();
        add_stacks(&mut snap, probes, &frame_pointers);
        snap
    }
}

/// Drops samples older than `keep`, keeping at least two.
fn trim<T>(samples: &mut VecDeque<(Instant, T)>, now: Instant, keep: Duration) {
    while samples.len() > 2 && samples.front().is_some_and(|(t, _)| now.duration_since(*t) > keep) {
        samples.pop_front();
    }
}

/// The newest sample at least `window` older than the latest (or the oldest there is).
fn oldest_within<T>(samples: &VecDeque<(Instant, T)>, window: Duration) -> Option<&(Instant, T)> {
    let (newest_at, _) = samples.back()?;
    samples.iter().rev().find(|(t, _)| newest_at.duration_since(*t) >= window).or(samples.front())
}

/// How long a spinning thread is sampled, and how often.
const SAMPLE_FOR: Duration = Duration::from_secs(1);
const SAMPLE_HZ: u64 = 99;
/// Frames kept of a blocked thread's stack.
const BLOCKED_FRAMES: usize = 32;

/// Where the threads are in their own code: sampled call chains for a thread on CPU, the user
/// stack for a thread blocked in a syscall — neither stops the thread — named in the process's
/// runtime's way, with the runtime and where JIT names came from recorded per process.
/// `frame_pointers` holds each thread's frame pointer at the entry of the syscall it is in, where
/// the capture saw that entry.
fn add_stacks(snap: &mut StuckSnapshot, probes: &mut Probes, frame_pointers: &HashMap<u32, u64>) {
    for p in &mut snap.processes {
        let symbols = symbols::ProcessSymbols::read(p.pid);
        let runtime = symbols.runtime();
        p.runtime = runtime;
        p.runtime_version = symbols.runtime.version.clone();
        let mut seen: Vec<symbols::Frame> = Vec::new();
        for t in &mut p.threads {
            if t.cpu_share >= SPIN_SHARE {
                if let Ok(samples) = probes.sample_user_stacks(t.tid, SAMPLE_FOR, SAMPLE_HZ) {
                    let (stacks, frames) = symbols::sampled_stacks(&symbols, &samples);
                    t.samples = symbols::top_functions(&stacks, 5);
                    // What most samples' innermost frames mean, else what the hottest chain does:
                    // chains of code without frame pointers are short, their leaves are right.
                    let leaves = t.samples.iter().map(|(f, _)| f.as_str());
                    let hottest = stacks.first().map(|s| s.frames.iter().map(String::as_str));
                    t.activity = activity(runtime, leaves)
                        .or_else(|| hottest.and_then(|f| activity(runtime, f)))
                        .unwrap_or_default();
                    t.stacks = stacks;
                    seen.extend(frames);
                }
            } else if t.syscall.is_some() {
                let frames =
                    symbols::function_frames(&symbols, t.tid, frame_pointers.get(&t.tid).copied(), BLOCKED_FRAMES);
                t.user_frames = frames.iter().map(symbols::frame_text).collect();
                let exact = frames.iter().filter(|f| !f.guess).filter_map(|f| f.function.as_deref());
                t.activity = activity(runtime, exact).unwrap_or_default();
                seen.extend(frames);
            }
        }
        p.jit_names = symbols.jit_note(&seen);
    }
}
