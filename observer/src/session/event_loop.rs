//! The capture loop shared by `run` and `attach`: drain the ring buffer on wake-ups and on a timer,
//! watch for hangs, and stop the target's process group on timeout, hang or interrupt (snapshot
//! first, then SIGTERM, grace, SIGKILL; a second interrupt kills at once) — or, for an attached
//! tree, detach on interrupt. Nothing written to the run directory can end the loop early: a
//! command is always stopped on schedule.
use std::{future::Future, pin::Pin, time::Duration};

use super::{OnHang, RunError, StopReason};
use crate::{
    analysis::snapshot::StuckSnapshot,
    capture::{Drain, Kernel, LiveSource, Probes},
    child::{self, ExitStatus},
    event::Event,
    hang::{progress::Stall, watch::Watchdog},
    interrupt::Interrupts,
    out_dir::OutDir,
    proc::task::process_stat,
    render,
    sinks::Pipeline,
};

/// How often the reader collects records that did not reach the wake-up threshold. Each pass
/// also writes a block of events.bin that has waited long enough: a record is on disk within
/// 100 ms of its arrival, all an observer killed with SIGKILL loses.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
const _: () = assert!(POLL_INTERVAL.as_millis() + crate::eventlog::BLOCK_MAX_AGE.as_millis() <= 100);
/// Longest the loop reads the ring before it looks at its timers and signals again: under a flood
/// of events the ring never empties, and a timeout must still fire on schedule.
pub const DRAIN_BUDGET: Duration = Duration::from_millis(50);
/// Longest the last read of a capture may take. It reads until the ring is empty: a reader left
/// behind by a busy machine has a backlog that one [`DRAIN_BUDGET`] does not clear (19,000 of
/// 120,000 records were left unread so), and nothing waits on the loop's timers any more. The
/// bound only matters when the producer goes on (a detached process flooding the ring); what is
/// left then is reported (`events_unread`).
pub const FINAL_DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// What a session watches and may stop.
pub struct Target {
    /// The process the run is about (listed first in snapshots).
    pub root: u32,
    /// Process group stopped on timeout, hang or interrupt (`run`: the command's own group).
    /// `None` (`attach`): the group may be someone's shell, so each tracked process is signalled.
    pub group: Option<i32>,
    /// Resolves when the root process has ended, with its status when observer could reap it.
    pub ended: Pin<Box<dyn Future<Output = Option<ExitStatus>>>>,
}

/// What Ctrl-C / SIGTERM to observer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnInterrupt {
    /// Stop the target like a timeout (`run`: the command is ours).
    Stop,
    /// Detach and leave the target running, untouched (`attach`).
    Detach,
}

#[derive(Clone, Debug)]
pub struct SessionOptions {
    pub timeout: Option<Duration>,
    pub kill_grace: Duration,
    pub hang_after: Option<Duration>,
    pub on_hang: OnHang,
    /// Save the runtime's own dump of its threads with the stuck snapshot.
    pub runtime_dumps: bool,
    pub on_interrupt: OnInterrupt,
}

/// How a session ended.
pub struct SessionEnd {
    /// The root's status, when it ended and observer reaped it.
    pub exit: Option<ExitStatus>,
    pub stop_reason: Option<StopReason>,
    pub stuck: Option<StuckSnapshot>,
    /// Processes of the group outlived the root and were stopped.
    pub leftovers: bool,
    /// Tracked processes that had left the group (setsid, setpgid) and were stopped with it (at
    /// the stop, or because they outlived the root): pid and name.
    pub escaped: Vec<(u32, String)>,
    /// The session ended by detaching; the target still runs.
    pub detached: bool,
}

struct Loop<'a> {
    probes: &'a mut Probes,
    live: &'a mut LiveSource,
    pipeline: &'a mut Pipeline,
    dir: OutDir,
    batch: Vec<Event>,
    watchdog: Watchdog,
    root: u32,
    /// Processes outside the group that stopping it had to reach.
    escaped: Vec<(u32, String)>,
    runtime_dumps: bool,
}

impl Loop<'_> {
    /// Tracked processes outside the process group `group` (they called setsid or setpgid):
    /// signalling the group misses them. Never observer itself.
    fn outside(&self, group: i32) -> Vec<(u32, String)> {
        let me = std::process::id();
        self.probes
            .tracked()
            .into_iter()
            .filter(|&pid| pid != me)
            .filter_map(|pid| process_stat(pid).map(|s| (pid, s)))
            .filter(|(_, s)| s.pgrp as i32 != group && s.state != 'Z')
            .map(|(pid, s)| (pid, s.comm))
            .collect()
    }

    /// Sends `sig` to the target: its process group and the tracked processes that left it (noted
    /// in `escaped`), or (no group: an attached tree) each tracked process.
    fn signal(&mut self, group: Option<i32>, sig: i32) -> bool {
        let me = std::process::id();
        let (mut any, pids) = match group {
            Some(g) => {
                let outside = self.outside(g);
                let pids = outside.iter().map(|(p, _)| *p).collect();
                for o in outside {
                    if !self.escaped.iter().any(|(p, _)| *p == o.0) {
                        self.escaped.push(o);
                    }
                }
                (child::signal_group(g, sig), pids)
            }
            None => (false, self.probes.tracked()),
        };
        for pid in pids.into_iter().filter(|&p| p != me) {
            // SAFETY: plain syscall.
            any |= unsafe { libc::kill(pid as i32, sig) } == 0;
        }
        any
    }

    /// Hands what is pending in the ring to the pipeline, one bounded batch at a time, for at
    /// most [`DRAIN_BUDGET`].
    fn drain(&mut self) {
        self.probes.flush_stages(POLL_INTERVAL);
        self.read_for(DRAIN_BUDGET);
    }

    /// As [`Loop::drain`], after every CPU has written out the records it holds: what the kernel
    /// has seen comes first (within the budget: a timer may be due).
    fn drain_all(&mut self) {
        self.probes.flush_stages(Duration::ZERO);
        self.read_for(DRAIN_BUDGET);
    }

    /// The capture's last read: every CPU's held records, then the ring until it is empty.
    fn drain_to_end(&mut self) {
        self.probes.flush_stages(Duration::ZERO);
        self.read_for(FINAL_DRAIN_LIMIT);
    }

    /// Hands batches from the ring to the pipeline until it is empty or `limit` has passed.
    fn read_for(&mut self, limit: Duration) {
        let mut drain = Drain::for_at_most(limit);
        while drain.next(self.live, &mut self.batch) {
            self.pipeline.handle_batch(&self.batch);
        }
    }

    /// Takes the stuck snapshot (after collecting every pending record) and writes it, with the
    /// runtimes' own dumps when asked; a failure to write them is reported, not fatal (the command
    /// must still be stopped).
    fn snapshot(&mut self, reason: String) -> StuckSnapshot {
        self.drain_all();
        let pids = self.probes.tracked();
        let mut snap = self.watchdog.snapshot(self.probes, &pids, &self.pipeline.stats, self.root, reason);
        if self.runtime_dumps {
            let dumps = crate::hang::dumps::take(&mut snap);
            if let Err(e) = crate::hang::dumps::write(&dumps, &self.dir) {
                eprintln!("observer: could not write the runtime dumps in {}: {e}", self.dir.path().display());
            }
        }
        if let Err(e) = render::stuck::write(&snap, &self.dir) {
            eprintln!("observer: could not write the stuck snapshot in {}: {e}", self.dir.path().display());
        }
        snap
    }
}

/// Runs the capture loop until the target's root ends (or observer detaches).
pub async fn watch(
    kernel: &mut Kernel,
    pipeline: &mut Pipeline,
    mut target: Target,
    opts: &SessionOptions,
    interrupts: &mut Interrupts,
    dir: &OutDir,
) -> Result<SessionEnd, RunError> {
    let mut l = Loop {
        probes: &mut kernel.probes,
        live: &mut kernel.live,
        pipeline,
        dir: dir.clone(),
        batch: Vec::with_capacity(4096),
        watchdog: Watchdog::new(opts.hang_after),
        root: target.root,
        escaped: Vec::new(),
        runtime_dumps: opts.runtime_dumps,
    };
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut check = l.watchdog.interval().map(tokio::time::interval);
    let timeout_at = opts.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut kill_at: Option<tokio::time::Instant> = None;
    let mut stop_reason: Option<StopReason> = None;
    let mut stuck: Option<StuckSnapshot> = None;
    let group = target.group;

    let exit = loop {
        let mut begin_stop = None;
        tokio::select! {
            status = &mut target.ended => break status,
            _ = l.live.readable() => {}
            _ = tick.tick() => {}
            name = interrupts.recv() => {
                if opts.on_interrupt == OnInterrupt::Detach && stop_reason.is_none() {
                    l.drain_to_end();
                    return Ok(SessionEnd { exit: None, stop_reason: Some(StopReason::Detached(name)), stuck, leftovers: false, escaped: Vec::new(), detached: true });
                }
                begin_stop = Some(StopReason::Signal(name));
            }
            _ = sleep_until_opt(timeout_at), if stop_reason.is_none() && timeout_at.is_some() => {
                begin_stop = opts.timeout.map(StopReason::Timeout);
            }
            _ = sleep_until_opt(kill_at), if kill_at.is_some() => {
                l.signal(group, libc::SIGKILL);
                kill_at = None;
            }
            _ = tick_opt(check.as_mut()), if check.is_some() && stop_reason.is_none() => {
                l.drain();
                if let Some(stall) = l.watchdog.check(l.probes, &l.probes.tracked(), &l.pipeline.stats) {
                    let window = opts.hang_after.unwrap_or_default();
                    let reason = match &stall {
                        Stall::Blocked => format!("no progress for {}s", window.as_secs_f64()),
                        Stall::Spinning(tids) => format!("threads {tids:?} on CPU without syscalls for {}s", window.as_secs_f64()),
                    };
                    stuck = Some(l.snapshot(reason));
                    l.watchdog.reported = true;
                    if opts.on_hang == OnHang::Kill {
                        begin_stop = Some(StopReason::NoProgress(window));
                    }
                }
            }
        }
        if let Some(reason) = begin_stop {
            if stop_reason.is_none() {
                // What the threads were doing, before stopping them changes it.
                if stuck.is_none() {
                    stuck = Some(l.snapshot(reason.to_string()));
                }
                l.signal(group, libc::SIGTERM);
                kill_at = Some(tokio::time::Instant::now() + opts.kill_grace);
                stop_reason = Some(reason);
            } else {
                // A second Ctrl-C: do not wait out the grace period.
                l.signal(group, libc::SIGKILL);
            }
        }
        l.drain();
    };
    // Whatever the command left running is stopped too, in its group or out of it: a run ends
    // with its command. An attached tree's leftovers are not ours to stop.
    let outlived = group.is_some_and(|g| !l.outside(g).is_empty());
    let leftovers = group.is_some_and(|g| child::signal_group(g, libc::SIGTERM));
    if leftovers || outlived {
        l.pipeline.write_pending();
        l.signal(group, libc::SIGTERM);
        tokio::time::sleep(opts.kill_grace.min(Duration::from_secs(1))).await;
        l.signal(group, libc::SIGKILL);
    }
    // Records of the last exit are in the ring before the parent is woken; one more pass collects them.
    tokio::time::sleep(Duration::from_millis(5)).await;
    l.drain_to_end();
    Ok(SessionEnd { exit, stop_reason, stuck, leftovers, escaped: l.escaped, detached: false })
}

async fn tick_opt(interval: Option<&mut tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
