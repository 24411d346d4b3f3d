//! `observer watch`: a long-lived host-side daemon. Every process is streamed at low rate
//! (lifecycle, signals, failed resource calls, thread stacks); processes matching the filters are
//! tracked in full. Each process tree keeps a bounded flight recorder; when a signature appears, the
//! tree's recorder becomes an incident directory with the same contract as a run directory.
pub mod incident;
pub mod metrics;
pub mod trees;

use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    capture::{probes::HostWide, CaptureError, Drain, Kernel},
    event::{kind_name, Event},
    hang::{progress::Stall, watch::Watchdog},
    out_dir::OutDir,
    proc,
    processes::ProcessBook,
    session::event_loop::{DRAIN_BUDGET, FINAL_DRAIN_LIMIT, POLL_INTERVAL},
    sinks::RunStats,
};
use incident::{trigger, IncidentInput, IncidentKind, RateLimit};
use metrics::Metrics;
use trees::{RecorderBounds, Trees};

#[derive(Clone, Debug)]
pub struct WatchOptions {
    pub comms: Vec<String>,
    pub cgroups: Vec<PathBuf>,
    pub uids: Vec<u32>,
    pub pids: Vec<u32>,
    pub incidents: PathBuf,
    /// Who may read the incident directories (`--group`).
    pub access: crate::out_dir::Access,
    pub hang_after: Option<Duration>,
    /// Save the runtime's own dump of its threads in a hang incident.
    pub runtime_dumps: bool,
    pub metrics: Option<SocketAddr>,
    pub json: bool,
    pub max_incidents_per_minute: usize,
    /// One incident per signature and tree within this window.
    pub window: Duration,
    pub recorder: RecorderBounds,
    pub buffer_size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("--cgroup {path}: {reason}")]
    Cgroup { path: PathBuf, reason: String },
    #[error("--metrics {addr}: {source}")]
    Metrics { addr: SocketAddr, source: std::io::Error },
    #[error("incidents directory {path}: {source}")]
    Incidents { path: PathBuf, source: std::io::Error },
}

/// What a watch did, for its last words.
#[derive(Clone, Debug, Default)]
pub struct WatchOutcome {
    pub incidents: u64,
    pub suppressed: u64,
    pub events: u64,
    pub dropped: u64,
}

/// The cgroup v2 id of a directory: its inode number in the cgroup2 filesystem.
pub fn cgroup_id(path: &Path) -> Result<u64, WatchError> {
    let bad = |reason: String| WatchError::Cgroup { path: path.to_path_buf(), reason };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if proc::cgroup_fs(path).map_err(|e| bad(e.to_string()))? != Some(proc::CgroupFs::V2) {
        return Err(bad("not a cgroup v2 directory; the kernel filter matches cgroup v2 ids (on hybrid hosts the v2 hierarchy is mounted at /sys/fs/cgroup/unified)".into()));
    }
    Ok(meta.ino())
}

fn v2_root() -> PathBuf {
    let unified = Path::new("/sys/fs/cgroup/unified");
    if unified.join("cgroup.procs").exists() {
        unified.to_path_buf()
    } else {
        PathBuf::from("/sys/fs/cgroup")
    }
}

/// Processes already running that the filters select (the kernel catches the ones that exec later).
fn matching_processes(opts: &WatchOptions, cgroups: &[u64]) -> Vec<u32> {
    let root = v2_root();
    let comms: Vec<String> = opts.comms.iter().map(|c| c.chars().take(15).collect()).collect();
    let mut out = proc::all_pids();
    out.retain(|&pid| {
        pid != std::process::id()
            && (proc::task::process_stat(pid).is_some_and(|s| comms.contains(&s.comm))
                || proc::real_uid(pid).is_some_and(|u| opts.uids.contains(&u))
                || (!cgroups.is_empty() && proc::cgroup_v2_id(pid, &root).is_some_and(|c| cgroups.contains(&c))))
    });
    for pid in &opts.pids {
        out.extend(proc::process_tree(*pid));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Hang detection of one fully tracked tree.
struct TreeWatch {
    watchdog: Watchdog,
    stats: RunStats,
}

struct Daemon {
    opts: WatchOptions,
    incidents: OutDir,
    kernel: Kernel,
    book: ProcessBook,
    trees: Trees,
    limit: RateLimit,
    metrics: metrics::Shared,
    hangs: HashMap<u32, TreeWatch>,
    outcome: WatchOutcome,
    batch: Vec<Event>,
}

impl Daemon {
    /// Handles what is pending in the ring, one bounded batch at a time, for at most
    /// [`DRAIN_BUDGET`] (a flood must not keep the daemon from its timers and signals).
    fn drain(&mut self) {
        self.kernel.probes.flush_stages(POLL_INTERVAL);
        self.read_for(DRAIN_BUDGET);
    }

    /// The daemon's last read: every CPU's held records, then the ring until it is empty (see
    /// [`FINAL_DRAIN_LIMIT`]).
    fn drain_to_end(&mut self) {
        self.kernel.probes.flush_stages(Duration::ZERO);
        self.read_for(FINAL_DRAIN_LIMIT);
    }

    /// Handles batches from the ring until it is empty or `limit` has passed.
    fn read_for(&mut self, limit: Duration) {
        let mut drain = Drain::for_at_most(limit);
        // Out of `self` while it is handled: an incident needs all of the daemon.
        let mut batch = std::mem::take(&mut self.batch);
        while drain.next(&mut self.kernel.live, &mut batch) {
            self.handle_batch(&batch);
        }
        self.batch = batch;
    }

    fn handle_batch(&mut self, batch: &[Event]) {
        let me = std::process::id();
        for event in batch {
            self.book.observe(event);
            let tree = self.trees.record(event);
            self.outcome.events += 1;
            if let Ok(mut m) = self.metrics.lock() {
                *m.events_received.entry(event.kind_name()).or_default() += 1;
            }
            if let Some(w) = self.hangs.get_mut(&tree) {
                w.stats.observe(event);
            }
            if event.header().tgid == me {
                continue;
            }
            if let Some(signature) = trigger(event, &self.book) {
                self.incident(IncidentKind::Signature(signature), tree, event.header().tgid, None);
            }
        }
    }

    fn incident(
        &mut self,
        kind: IncidentKind,
        tree: u32,
        pid: u32,
        stuck: Option<(crate::analysis::snapshot::StuckSnapshot, Vec<crate::hang::dumps::RuntimeDump>)>,
    ) {
        if !self.limit.allow(kind, tree, Instant::now()) {
            if let Ok(mut m) = self.metrics.lock() {
                *m.incidents_suppressed.entry(kind).or_default() += 1;
            }
            self.outcome.suppressed += 1;
            return;
        }
        let events: Vec<Event> = self.trees.get(tree).map(|t| t.events.iter().copied().collect()).unwrap_or_default();
        let dropped = self.kernel.probes.counters().dropped_total();
        let comm = self.book.comm(pid).to_string();
        let input = IncidentInput {
            parent: &self.incidents,
            kind,
            pid,
            comm: &comm,
            events,
            stuck: stuck.as_ref().map(|(snap, _)| snap.clone()),
            runtime_dumps: stuck.map(|(_, dumps)| dumps).unwrap_or_default(),
            dropped_so_far: dropped,
            suppressed_before: self.limit.take_suppressed(kind, tree),
        };
        match incident::write(input) {
            Ok(Some((_, _, line))) => {
                self.outcome.incidents += 1;
                if let Ok(mut m) = self.metrics.lock() {
                    *m.incidents.entry(line.signature).or_default() += 1;
                    let workload = metrics::WorkloadLabels::of(line.workload.as_ref());
                    *m.incidents_by_workload.entry((line.signature, workload)).or_default() += 1;
                }
                if self.opts.json {
                    println!("{}", serde_json::to_string(&line).unwrap_or_default());
                } else {
                    let text = format!(
                        "observer watch: {} [{}] pid {} ({}): {} -> {}",
                        line.severity, line.signature, line.pid, line.comm, line.summary, line.dir
                    );
                    eprintln!("{}", crate::decode::escape_controls(&text));
                }
            }
            Ok(None) => {
                if let Ok(mut m) = self.metrics.lock() {
                    m.unconfirmed_triggers += 1;
                }
            }
            Err(e) => eprintln!("observer watch: could not write an incident for pid {pid}: {e}"),
        }
    }

    /// Hang detection over every fully tracked tree.
    fn check_hangs(&mut self) {
        let Some(after) = self.opts.hang_after else { return };
        let tracked = self.kernel.probes.tracked();
        let trees = self.trees.trees_with(&tracked);
        self.hangs.retain(|t, _| trees.iter().any(|(k, _)| k == t));
        for (tree, pids) in trees {
            let w = self
                .hangs
                .entry(tree)
                .or_insert_with(|| TreeWatch { watchdog: Watchdog::new(Some(after)), stats: RunStats::default() });
            let Some(stall) = w.watchdog.check(&self.kernel.probes, &pids, &w.stats) else { continue };
            let reason = match stall {
                Stall::Blocked => format!("no progress for {}s", after.as_secs_f64()),
                Stall::Spinning(tids) => {
                    format!("threads {tids:?} on CPU without syscalls for {}s", after.as_secs_f64())
                }
            };
            let root = pids[0];
            let mut snap = w.watchdog.snapshot(&mut self.kernel.probes, &pids, &w.stats, root, reason);
            w.watchdog.reported = true;
            let dumps = if self.opts.runtime_dumps { crate::hang::dumps::take(&mut snap) } else { Vec::new() };
            self.incident(IncidentKind::Hang, tree, root, Some((snap, dumps)));
        }
    }

    fn refresh_metrics(&mut self) {
        let counters = self.kernel.probes.counters();
        let (pending, size) = self.kernel.probes.ring_fill();
        let tracked = self.kernel.probes.tracked().len();
        self.outcome.dropped = counters.dropped_total();
        if let Ok(mut m) = self.metrics.lock() {
            for kind in crate::event::REPORTED_KINDS {
                m.events_submitted.insert(kind_name(kind), counters.submitted[kind as usize]);
                m.events_dropped.insert(kind_name(kind), counters.dropped[kind as usize]);
            }
            m.inflight_overflows = counters.inflight_full;
            m.tracked_processes = tracked;
            m.trees = self.trees.len();
            m.recorder_events = self.trees.events_held();
            m.recorder_bytes = self.trees.bytes_held();
            m.ring_pending_bytes = pending;
            m.ring_size_bytes = size;
        }
    }
}

/// Runs the daemon until `shutdown` resolves; then detaches every program before returning.
pub async fn watch(
    opts: WatchOptions,
    shutdown: impl Future<Output = &'static str>,
) -> Result<WatchOutcome, WatchError> {
    let cgroups = opts.cgroups.iter().map(|p| cgroup_id(p)).collect::<Result<Vec<u64>, _>>()?;
    let incidents = OutDir::open_or_create(&opts.incidents, opts.access)
        .map_err(|source| WatchError::Incidents { path: opts.incidents.clone(), source })?;
    let host = HostWide { enabled: true, comms: opts.comms.clone(), uids: opts.uids.clone(), cgroups: cgroups.clone() };
    let mut kernel = Kernel::load_with(opts.buffer_size, &host)?;
    // The endpoint answers only once the programs are attached.
    let metrics: metrics::Shared = Arc::new(Mutex::new(Metrics::default()));
    let listener = match opts.metrics {
        Some(addr) => Some(metrics::bind(addr).await.map_err(|source| WatchError::Metrics { addr, source })?),
        None => None,
    };
    let seeded = matching_processes(&opts, &cgroups);
    crate::session::track_running(&mut kernel.probes, &seeded)?;
    let server = listener.map(|l| tokio::spawn(metrics::serve(l, metrics.clone())));
    eprintln!(
        "observer watch: watching every process; {} tracked in full now; incidents in {}{}",
        seeded.len(),
        opts.incidents.display(),
        opts.metrics.map_or(String::new(), |a| format!("; metrics on http://{a}/metrics"))
    );
    let mut d = Daemon {
        limit: RateLimit::new(opts.window, opts.max_incidents_per_minute),
        trees: Trees::new(opts.recorder, Duration::from_secs(5)),
        opts,
        incidents,
        kernel,
        book: ProcessBook::default(),
        metrics,
        hangs: HashMap::new(),
        outcome: WatchOutcome::default(),
        batch: Vec::with_capacity(4096),
    };
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
    let check_every = Watchdog::new(d.opts.hang_after).interval().unwrap_or(Duration::from_secs(3600));
    let mut hang_check = tokio::time::interval(check_every);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = d.kernel.live.readable() => d.drain(),
            _ = tick.tick() => d.drain(),
            _ = hang_check.tick() => {
                d.drain();
                d.check_hangs();
            }
            _ = housekeeping.tick() => {
                for pid in d.trees.sweep() {
                    d.book.forget(pid);
                }
                d.refresh_metrics();
            }
        }
    }
    d.drain_to_end();
    d.refresh_metrics();
    if let Some(server) = server {
        server.abort();
    }
    let outcome = d.outcome.clone();
    // Nothing of ours may stay loaded: wait for every program to be detached.
    let _ = d.kernel.detach_in_background().join();
    Ok(outcome)
}
