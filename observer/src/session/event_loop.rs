//! The capture loop shared by `run` and `attach`: drain the ring buffer on wake-ups and on a timer,
//! watch for hangs, and stop the target's process group on timeout, hang or interrupt (snapshot
//! first, then SIGTERM, grace, SIGKILL) — or, for an attached tree, detach on interrupt.
use std::{future::Future, pin::Pin, time::Duration};

use super::{io_at, OnHang, RunError, StopReason};
use crate::{
    analysis::snapshot::StuckSnapshot,
    capture::{Kernel, LiveSource, Probes},
    child::{self, ExitStatus},
    event::Event,
    hang::{progress::Stall, watch::Watchdog},
    out_dir::OutDir,
    render,
    sinks::Pipeline,
};

/// How often the reader collects records that did not reach the wake-up threshold.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

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
    runtime_dumps: bool,
}

impl Loop<'_> {
    /// Sends `sig` to the target: its process group, or each tracked process.
    fn signal(&self, group: Option<i32>, sig: i32) -> bool {
        match group {
            Some(g) => child::signal_group(g, sig),
            None => {
                let mut any = false;
                for pid in self.probes.tracked() {
                    // SAFETY: plain syscall.
                    any |= unsafe { libc::kill(pid as i32, sig) } == 0;
                }
                any
            }
        }
    }

    /// Hands everything pending in the ring to the pipeline, one bounded batch at a time.
    fn drain(&mut self) -> Result<(), RunError> {
        while self.live.next_batch(&mut self.batch) {
            self.pipeline.handle_batch(&self.batch).map_err(io_at(self.dir.path()))?;
        }
        Ok(())
    }

    /// Takes the stuck snapshot (after collecting every pending record) and writes it, with the
    /// runtimes' own dumps when asked.
    fn snapshot(&mut self, reason: String) -> Result<StuckSnapshot, RunError> {
        self.drain()?;
        let pids = self.probes.tracked();
        let mut snap = self.watchdog.snapshot(self.probes, &pids, &self.pipeline.stats, self.root, reason);
        if self.runtime_dumps {
            let dumps = crate::hang::dumps::take(&mut snap);
            crate::hang::dumps::write(&dumps, &self.dir).map_err(io_at(self.dir.path()))?;
        }
        render::stuck::write(&snap, &self.dir).map_err(io_at(self.dir.path()))?;
        Ok(snap)
    }
}

/// Runs the capture loop until the target's root ends (or observer detaches).
pub async fn watch(
    kernel: &mut Kernel,
    pipeline: &mut Pipeline,
    mut target: Target,
    opts: &SessionOptions,
    shutdown: impl Future<Output = &'static str>,
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
        runtime_dumps: opts.runtime_dumps,
    };
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut check = l.watchdog.interval().map(tokio::time::interval);
    let timeout_at = opts.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut kill_at: Option<tokio::time::Instant> = None;
    let mut stop_reason: Option<StopReason> = None;
    let mut stuck: Option<StuckSnapshot> = None;
    tokio::pin!(shutdown);
    let mut shutdown_done = false;
    let group = target.group;

    let exit = loop {
        let mut begin_stop = None;
        tokio::select! {
            status = &mut target.ended => break status,
            _ = l.live.readable() => {}
            _ = tick.tick() => {}
            name = &mut shutdown, if !shutdown_done => {
                shutdown_done = true;
                if opts.on_interrupt == OnInterrupt::Detach && stop_reason.is_none() {
                    l.drain()?;
                    return Ok(SessionEnd { exit: None, stop_reason: Some(StopReason::Detached(name)), stuck, leftovers: false, detached: true });
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
                l.drain()?;
                if let Some(stall) = l.watchdog.check(&l.probes.tracked(), &l.pipeline.stats) {
                    let window = opts.hang_after.unwrap_or_default();
                    let reason = match &stall {
                        Stall::Blocked => format!("no progress for {}s", window.as_secs_f64()),
                        Stall::Spinning(tids) => format!("threads {tids:?} on CPU without syscalls for {}s", window.as_secs_f64()),
                    };
                    stuck = Some(l.snapshot(reason)?);
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
                    stuck = Some(l.snapshot(reason.to_string())?);
                }
                l.signal(group, libc::SIGTERM);
                kill_at = Some(tokio::time::Instant::now() + opts.kill_grace);
                stop_reason = Some(reason);
            } else {
                // A second Ctrl-C: do not wait out the grace period.
                l.signal(group, libc::SIGKILL);
            }
        }
        l.drain()?;
    };
    // Whatever the command left running in its own group is stopped too: a run ends with its
    // command. An attached tree's leftovers are not ours to stop.
    let leftovers = group.is_some_and(|g| child::signal_group(g, libc::SIGTERM));
    if let (true, Some(g)) = (leftovers, group) {
        tokio::time::sleep(opts.kill_grace.min(Duration::from_secs(1))).await;
        child::signal_group(g, libc::SIGKILL);
    }
    // Records of the last exit are in the ring before the parent is woken; one more pass collects them.
    tokio::time::sleep(Duration::from_millis(5)).await;
    l.drain()?;
    Ok(SessionEnd { exit, stop_reason, stuck, leftovers, detached: false })
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
