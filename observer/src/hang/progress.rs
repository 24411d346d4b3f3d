//! Progress over time: CPU time per tracked thread sampled at the detection cadence, and the rule
//! that turns "no syscall completed and no CPU gained" (or "CPU gained, no syscall") into a hang.
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    time::{Duration, Instant},
};

use crate::analysis::snapshot::{GROUP_SPIN_SHARE, SPIN_SHARE};
use crate::proc::task as procread;

/// CPU time gained by each thread over a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuWindow {
    pub seconds: f64,
    /// tid -> (user, system) seconds gained in the window.
    pub gained: BTreeMap<u32, (f64, f64)>,
}

impl CpuWindow {
    pub fn share(&self, tid: u32) -> f64 {
        if self.seconds <= 0.0 {
            return 0.0;
        }
        self.gained.get(&tid).map_or(0.0, |(u, s)| (u + s) / self.seconds)
    }

    pub fn total(&self) -> f64 {
        self.gained.values().map(|(u, s)| u + s).sum()
    }
}

/// Per thread: (user ticks, system ticks) at one sampling.
type ThreadCpu = HashMap<u32, (u64, u64)>;

/// CPU samples of every thread of the tracked processes, kept for as long as the window needs.
pub struct CpuSampler {
    history: VecDeque<(Instant, ThreadCpu)>,
    keep: Duration,
    ticks: f64,
}

impl CpuSampler {
    pub fn new(keep: Duration) -> Self {
        Self { history: VecDeque::new(), keep, ticks: procread::clock_ticks_per_second() as f64 }
    }

    /// Reads the CPU time of every thread of `pids` now.
    pub fn sample(&mut self, pids: &[u32]) {
        let now = Instant::now();
        let mut cpu = HashMap::new();
        for &pid in pids {
            for tid in procread::threads(pid) {
                if let Some(s) = procread::thread_stat(pid, tid) {
                    cpu.insert(tid, (s.utime, s.stime));
                }
            }
        }
        self.history.push_back((now, cpu));
        while self.history.len() > 2 && self.history.front().is_some_and(|(t, _)| now.duration_since(*t) > self.keep) {
            self.history.pop_front();
        }
    }

    /// The threads seen at the latest sample.
    pub fn threads(&self) -> impl Iterator<Item = u32> + '_ {
        self.history.back().into_iter().flat_map(|(_, cpu)| cpu.keys().copied())
    }

    /// CPU gained from the oldest sample at least `window` old (or the oldest there is) to the newest.
    pub fn window(&self, window: Duration) -> CpuWindow {
        let Some((newest_at, newest)) = self.history.back() else { return CpuWindow::default() };
        let oldest = self
            .history
            .iter()
            .rev()
            .find(|(t, _)| newest_at.duration_since(*t) >= window)
            .or(self.history.front())
            .expect("non-empty");
        let seconds = newest_at.duration_since(oldest.0).as_secs_f64();
        let gained = newest
            .iter()
            .map(|(tid, (u, s))| {
                let (u0, s0) = oldest.1.get(tid).copied().unwrap_or((0, 0));
                (*tid, (u.saturating_sub(u0) as f64 / self.ticks, s.saturating_sub(s0) as f64 / self.ticks))
            })
            .collect();
        CpuWindow { seconds, gained }
    }

    /// How long the samples reach back.
    pub fn span(&self) -> Duration {
        match (self.history.front(), self.history.back()) {
            (Some((a, _)), Some((b, _))) => b.duration_since(*a),
            _ => Duration::ZERO,
        }
    }
}

/// What the detector concluded.
#[derive(Clone, Debug, PartialEq)]
pub enum Stall {
    /// No syscall completed and (almost) no CPU gained by any thread for the whole window.
    Blocked,
    /// These threads used at least 90% of a CPU for the window without completing a syscall.
    Spinning(Vec<u32>),
}

/// Total CPU share below which "no CPU gained" holds: scheduler tick noise, and the few
/// milliseconds tickers spend (OCaml's tick thread, Go's sysmon, a timer loop).
const IDLE_SHARE: f64 = 0.1;

/// What each thread did over the window, as the kernel counted it.
pub struct Activity<'a> {
    /// The thread completed a syscall that did more than wait (see `syscalls::only_waits`).
    pub progressed: &'a dyn Fn(u32) -> bool,
}

/// Decides whether the tracked threads stalled over `cpu`'s window. Progress is judged per
/// thread: tickers that only time out and wait again, and threads that only hand a lock back and
/// forth, are not progress.
pub fn detect(cpu: &CpuWindow, window: Duration, activity: &Activity<'_>) -> Option<Stall> {
    // Not enough history yet to judge a whole window.
    if cpu.seconds + 0.05 < window.as_secs_f64() {
        return None;
    }
    // A whole CPU and no recorded call that did more than wait (a busy poll, a yield loop, the
    // signal returns of a runtime preempting its spinner) is a spin.
    let spinning: Vec<u32> =
        cpu.gained.keys().copied().filter(|&tid| cpu.share(tid) >= SPIN_SHARE && !(activity.progressed)(tid)).collect();
    if !spinning.is_empty() {
        return Some(Stall::Spinning(spinning));
    }
    if cpu.gained.keys().any(|&tid| (activity.progressed)(tid)) {
        return None;
    }
    // Nobody progressed: CPU burnt together by threads that only pass a lock is a spin.
    let busy: Vec<u32> = cpu.gained.keys().copied().filter(|&tid| cpu.share(tid) >= GROUP_SPIN_SHARE).collect();
    let busy_share: f64 = busy.iter().map(|&t| cpu.share(t)).sum();
    if busy.len() >= 2 && busy_share >= SPIN_SHARE {
        return Some(Stall::Spinning(busy));
    }
    if cpu.total() / cpu.seconds < IDLE_SHARE {
        return Some(Stall::Blocked);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(gained: &[(u32, f64)]) -> CpuWindow {
        CpuWindow { seconds: 2.0, gained: gained.iter().map(|&(t, s)| (t, (s, 0.0))).collect() }
    }

    fn activity<'a>(progressed: &'a dyn Fn(u32) -> bool) -> Activity<'a> {
        Activity { progressed }
    }

    #[test]
    fn a_thread_on_cpu_without_syscalls_is_spinning() {
        let cpu = window(&[(1, 0.0), (2, 1.95)]);
        let w = Duration::from_secs(2);
        assert_eq!(detect(&cpu, w, &activity(&|_| false)), Some(Stall::Spinning(vec![2])));
        assert_eq!(detect(&cpu, w, &activity(&|t| t == 2)), None, "its syscalls are progress");
    }

    #[test]
    fn tickers_are_no_progress_and_threads_passing_a_lock_spin_together() {
        let w = Duration::from_secs(2);
        // OCaml's tick thread: pselect every 50 ms, a sliver of CPU; the others asleep.
        let ticking = window(&[(1, 0.0), (2, 0.0), (3, 0.004)]);
        assert_eq!(detect(&ticking, w, &activity(&|_| false)), Some(Stall::Blocked));
        // Two CPython threads handing the GIL over: half a CPU each, futex calls only.
        let gil = window(&[(1, 0.0), (2, 0.96), (3, 0.94)]);
        assert_eq!(detect(&gil, w, &activity(&|_| false)), Some(Stall::Spinning(vec![2, 3])));
        // The same threads doing real work (a read, a write) are progress.
        assert_eq!(detect(&gil, w, &activity(&|t| t == 2)), None);
    }

    #[test]
    fn no_cpu_and_no_syscalls_is_blocked_but_either_one_is_progress() {
        let w = Duration::from_secs(2);
        let idle = window(&[(1, 0.0), (2, 0.01)]);
        assert_eq!(detect(&idle, w, &activity(&|_| false)), Some(Stall::Blocked));
        assert_eq!(detect(&idle, w, &activity(&|_| true)), None);
        let working = window(&[(1, 0.5)]);
        assert_eq!(detect(&working, w, &activity(&|_| false)), None);
    }

    #[test]
    fn nothing_is_concluded_before_a_whole_window_was_watched() {
        let short = CpuWindow { seconds: 0.5, gained: BTreeMap::new() };
        assert_eq!(detect(&short, Duration::from_secs(2), &activity(&|_| false)), None);
    }
}
