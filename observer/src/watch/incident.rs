//! Incidents of a host-wide watch: which events may reveal a signature, the rate limits that
//! turn a storm into one incident plus a count, and the incident directory — the same contract as
//! a run directory, built from the tree's flight recorder.
use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use observer_common::{flags, syscalls::Syscall};
use serde::Serialize;

use crate::{
    analysis::{report, snapshot::StuckSnapshot, Cause, Classification, Finding, Severity, Signature},
    clock,
    decode::{is_error_return, MAP_STACK, PROT_READ, PROT_WRITE},
    event::{returned, Event},
    eventlog::LogHeader,
    out_dir::{first_free, OutDir},
    proc,
    processes::{ProcessBook, ProcessExit},
    session::open_capture,
    summary::Summary,
};

const ENOMEM: i32 = 12;
const EAGAIN: i32 = 11;

/// What an incident is about: the signature an event revealed, or a stall the watchdog saw (the
/// stuck snapshot then says which hang signature it is). Rate limits and metrics count by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IncidentKind {
    Signature(Signature),
    Hang,
}

impl IncidentKind {
    /// The label of rate limits and metrics: the signature's name, or `hang`.
    pub fn name(self) -> &'static str {
        match self {
            IncidentKind::Signature(s) => s.name(),
            IncidentKind::Hang => "hang",
        }
    }

    /// Whether a finding makes this an incident. Deaths by SIGTERM/SIGINT/SIGHUP are how
    /// processes are stopped every day: only crashes and kills confirm a fatal-signal incident.
    pub fn confirmed_by(self, f: &Finding) -> bool {
        match self {
            IncidentKind::Hang => f.signature.is_hang(),
            IncidentKind::Signature(Signature::FatalSignal) => {
                f.signature == Signature::FatalSignal
                    && (f.severity == Severity::Fatal
                        || matches!(f.cause, Some(Cause::Signal { sig: libc::SIGKILL, .. })))
            }
            IncidentKind::Signature(s) => f.signature == s,
        }
    }
}

impl std::fmt::Display for IncidentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// The signature an event may reveal, judged cheaply as it streams by; the classifiers decide.
pub fn trigger(event: &Event, book: &ProcessBook) -> Option<Signature> {
    match event {
        Event::Syscall(e) if returned(e) => {
            let call = Syscall::from_nr(e.nr)?;
            let errno = is_error_return(e.ret)?;
            match (call, errno) {
                (Syscall::Mprotect, ENOMEM) if e.args[2] & (PROT_READ | PROT_WRITE) == (PROT_READ | PROT_WRITE) => {
                    Some(Signature::PthreadStackMprotectEnomem)
                }
                (Syscall::Mmap, ENOMEM) if e.args[3] & MAP_STACK != 0 => Some(Signature::PthreadStackMmapEnomem),
                (call, EAGAIN) if call.creates_task() => Some(Signature::CloneEagain),
                _ => None,
            }
        }
        // Crashes and kills; a SIGTERM/SIGINT/SIGHUP ending is how services are stopped every day.
        Event::Exit(x) if x.header.flags & flags::GROUP_DEAD != 0 => {
            match book.process(x.header.tgid)?.exit.as_ref()? {
                ProcessExit::Signal { sig, .. }
                    if matches!(
                        *sig,
                        libc::SIGSEGV
                            | libc::SIGBUS
                            | libc::SIGILL
                            | libc::SIGTRAP
                            | libc::SIGFPE
                            | libc::SIGABRT
                            | libc::SIGKILL
                            | libc::SIGSYS
                    ) =>
                {
                    Some(Signature::FatalSignal)
                }
                _ => None,
            }
        }
        Event::SignalDeliver(d)
            if matches!(d.sig, libc::SIGTTIN | libc::SIGTTOU | libc::SIGTSTP | libc::SIGSTOP)
                && (d.sig == libc::SIGSTOP || d.sa_handler == 0) =>
        {
            Some(Signature::JobControlStop)
        }
        _ => None,
    }
}

/// One incident per signature and tree per window, and at most N per minute overall; what is held
/// back is counted and reported with the next incident of the same kind.
pub struct RateLimit {
    window: Duration,
    per_minute: usize,
    last: HashMap<(IncidentKind, u32), Instant>,
    recent: Vec<Instant>,
    pub suppressed: HashMap<(IncidentKind, u32), u64>,
    pub suppressed_by_kind: HashMap<IncidentKind, u64>,
}

impl RateLimit {
    pub fn new(window: Duration, per_minute: usize) -> Self {
        Self {
            window,
            per_minute,
            last: HashMap::new(),
            recent: Vec::new(),
            suppressed: HashMap::new(),
            suppressed_by_kind: HashMap::new(),
        }
    }

    /// Whether an incident of `kind` in `tree` may be written now.
    pub fn allow(&mut self, kind: IncidentKind, tree: u32, now: Instant) -> bool {
        let key = (kind, tree);
        self.recent.retain(|t| now.duration_since(*t) < Duration::from_secs(60));
        let too_soon = self.last.get(&key).is_some_and(|t| now.duration_since(*t) < self.window);
        if too_soon || self.recent.len() >= self.per_minute {
            *self.suppressed.entry(key).or_default() += 1;
            *self.suppressed_by_kind.entry(kind).or_default() += 1;
            return false;
        }
        self.last.insert(key, now);
        self.recent.push(now);
        true
    }

    /// How many incidents of this kind were held back since the last one written.
    pub fn take_suppressed(&mut self, kind: IncidentKind, tree: u32) -> u64 {
        self.suppressed.remove(&(kind, tree)).unwrap_or(0)
    }
}

/// The one JSON line `--json` prints per incident.
#[derive(Clone, Debug, Serialize)]
pub struct IncidentLine {
    pub time: String,
    pub signature: Signature,
    pub severity: String,
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub summary: String,
    pub dir: String,
    pub suppressed_before: u64,
    pub events: usize,
    pub events_dropped_so_far: u64,
    /// The container, pod or systemd unit of the process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<crate::container::Workload>,
}

/// What an incident directory is written from.
pub struct IncidentInput<'a> {
    pub parent: &'a OutDir,
    /// What the incident is about; a finding that confirms it names the directory.
    pub kind: IncidentKind,
    pub pid: u32,
    pub comm: &'a str,
    pub events: Vec<Event>,
    pub stuck: Option<StuckSnapshot>,
    /// The runtimes' own dumps taken with the snapshot (`--runtime-dumps`).
    pub runtime_dumps: Vec<crate::hang::dumps::RuntimeDump>,
    pub dropped_so_far: u64,
    pub suppressed_before: u64,
}

/// Writes the incident directory; returns it with the classification of its events, or `None`
/// when the classifiers do not confirm the signature (nothing is left on disk then).
pub fn write(input: IncidentInput<'_>) -> std::io::Result<Option<(PathBuf, Classification, IncidentLine)>> {
    let now = clock::now_wall_ns();
    // Built under a hidden name, renamed once the finding (and so the name) is known.
    let hidden = format!(".incident-{}-{}.partial", input.pid, now);
    let dir = input.parent.create_dir(&hidden)?;
    if let Some(s) = &input.stuck {
        crate::render::stuck::write(s, &dir)?;
    }
    crate::hang::dumps::write(&input.runtime_dumps, &dir)?;
    // The affected process's limits and cgroups now, if it is still there.
    let preflight = proc::exists(input.pid).then(|| proc::preflight::take(input.pid, clock::rfc3339(now)));
    let header = LogHeader::live(vec![input.comm.to_string()], Some(input.pid), clock::rfc3339(now));
    let mut pipeline = open_capture(&dir, header, preflight)?;
    pipeline.handle_batch(&input.events);
    if let Some(cut) = pipeline.cut() {
        return Err(std::io::Error::other(format!("events.bin {cut}")));
    }
    let (records, classification) = pipeline.finish(input.stuck.as_ref())?;
    let Some(f) = classification.findings.iter().find(|f| input.kind.confirmed_by(f) && f.severity > Severity::Info)
    else {
        input.parent.remove_dir_all(&hidden)?;
        return Ok(None);
    };
    report::write(&classification, &dir)?;
    let mut line = IncidentLine {
        time: clock::rfc3339(now),
        signature: f.signature,
        severity: f.severity.as_str().into(),
        pid: f.pid,
        tid: f.tid,
        comm: input.comm.into(),
        summary: f.summary.clone(),
        dir: String::new(),
        suppressed_before: input.suppressed_before,
        events: input.events.len(),
        events_dropped_so_far: input.dropped_so_far,
        workload: f.workload.clone(),
    };
    let mut s = Summary::default();
    s.put("incident", line.signature.name());
    s.put("time", line.time.clone());
    s.put("pid", line.pid);
    s.put("comm", line.comm.clone());
    if let Some(w) = &line.workload {
        w.put(&mut s, "");
    }
    s.put("verdict", report::verdict(&classification));
    s.put("events_written", records);
    s.put("flight_recorder_events", input.events.len());
    s.put("events_dropped_so_far", input.dropped_so_far);
    s.put(
        "evidence_may_be_incomplete",
        if input.dropped_so_far > 0 { "yes: the kernel dropped events since the watch started" } else { "no" },
    );
    s.put("suppressed_before", input.suppressed_before);
    s.write(&dir)?;
    crate::render::html::write(
        &dir,
        &input.parent.join(&hidden).join(crate::rundir::EVENTS),
        &classification,
        input.stuck.as_ref(),
    )?;
    let name = format!("{}-{}-{}", clock::compact_utc(now), line.signature, input.pid);
    let final_dir = rename_unique(input.parent, &hidden, &name)?;
    line.dir = final_dir.display().to_string();
    Ok(Some((final_dir, classification, line)))
}

/// Renames `hidden` in `parent` to `name`, or `name.2`, `name.3`... when taken; returns its path.
fn rename_unique(parent: &OutDir, hidden: &str, name: &str) -> std::io::Result<PathBuf> {
    first_free(name, |candidate| parent.rename_new(hidden, parent, candidate).map(|()| parent.join(candidate)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLONE_EAGAIN: IncidentKind = IncidentKind::Signature(Signature::CloneEagain);
    const FATAL_SIGNAL: IncidentKind = IncidentKind::Signature(Signature::FatalSignal);

    #[test]
    fn a_storm_gives_one_incident_per_tree_and_window_and_counts_the_rest() {
        let mut limit = RateLimit::new(Duration::from_secs(60), 10);
        let t0 = Instant::now();
        assert!(limit.allow(CLONE_EAGAIN, 7, t0));
        for _ in 0..1000 {
            assert!(!limit.allow(CLONE_EAGAIN, 7, t0));
        }
        assert!(limit.allow(CLONE_EAGAIN, 8, t0), "another tree");
        assert!(limit.allow(FATAL_SIGNAL, 7, t0), "another signature");
        assert_eq!(limit.take_suppressed(CLONE_EAGAIN, 7), 1000);
        assert!(limit.allow(CLONE_EAGAIN, 7, t0 + Duration::from_secs(61)), "a new window");
    }

    fn fatal(severity: Severity, sig: i32) -> Finding {
        Finding {
            signature: Signature::FatalSignal,
            severity,
            pid: 10,
            tid: 10,
            summary: String::new(),
            evidence: vec![],
            cause: Some(Cause::Signal { sig, sender: Some(1) }),
            id: String::new(),
            caused_by: Vec::new(),
            workload: None,
            processes: Vec::new(),
        }
    }

    #[test]
    fn only_crashes_and_kills_confirm_a_fatal_signal_incident() {
        assert!(FATAL_SIGNAL.confirmed_by(&fatal(Severity::Fatal, libc::SIGSEGV)));
        assert!(FATAL_SIGNAL.confirmed_by(&fatal(Severity::Error, libc::SIGKILL)));
        assert!(!FATAL_SIGNAL.confirmed_by(&fatal(Severity::Error, libc::SIGTERM)));
        assert!(!CLONE_EAGAIN.confirmed_by(&fatal(Severity::Fatal, libc::SIGSEGV)));
        let deadlock = Finding { signature: Signature::Deadlock, cause: None, ..fatal(Severity::Error, 0) };
        assert!(IncidentKind::Hang.confirmed_by(&deadlock));
        assert_eq!(IncidentKind::Hang.to_string(), "hang");
    }

    #[test]
    fn the_per_minute_cap_holds_across_trees() {
        let mut limit = RateLimit::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        let allowed = (0..10).filter(|tree| limit.allow(FATAL_SIGNAL, *tree, t0)).count();
        assert_eq!(allowed, 3);
        assert_eq!(limit.suppressed_by_kind[&FATAL_SIGNAL], 7);
    }
}
