//! `observer export`: a capture in other tools' trace formats — Perfetto's TrackEvent protobuf
//! ([`perfetto`], for ui.perfetto.dev and trace_processor) and Chrome's Trace Event JSON
//! ([`chrome_json`]). One pass decides what the trace holds (a track per process and thread, a
//! slice per syscall with its arguments and result, instants for signals, failures and lifecycle
//! steps, flows from fork to child and from a signal's sender to its target, the findings as
//! annotations); each format only writes it.
pub mod chrome_json;
pub mod perfetto;
pub mod protobuf;

use std::{
    collections::{HashMap, HashSet},
    io,
    path::{Path, PathBuf},
};

use observer_common::flags;

use crate::{
    analysis::Finding,
    decode::{errno_name, is_error_return, signal_name, syscall_label},
    event::{c_str, returned, Event},
    offline::{diagnose, Capture, Diagnosis, OfflineError},
    processes::ProcessBook,
    render::{
        describe,
        lanes::{chain_threads, LaneBook, MarkKind, ProcessLanes, ThreadLane},
        owner_tid,
    },
    source::for_each_event,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Perfetto,
    ChromeJson,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Capture(#[from] OfflineError),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// A value attached to a slice or an instant.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Text(String),
    Int(i64),
}

/// Where an instant goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    Thread { pid: u32, tid: u32 },
    Process(u32),
}

/// A span of time on a thread: one syscall.
#[derive(Clone, Debug, PartialEq)]
pub struct Slice {
    /// CLOCK_BOOTTIME ns.
    pub ts: u64,
    pub duration: u64,
    pub pid: u32,
    pub tid: u32,
    pub name: String,
    pub category: &'static str,
    pub args: Vec<(&'static str, Arg)>,
}

/// A moment: a signal, a failure, a fork, a finding.
#[derive(Clone, Debug, PartialEq)]
pub struct Instant {
    pub ts: u64,
    pub track: Track,
    pub name: String,
    pub category: &'static str,
    pub args: Vec<(&'static str, Arg)>,
    /// A flow starts here ...
    pub flow_out: Option<u64>,
    /// ... or ends here.
    pub flow_in: Option<u64>,
}

/// What a format writes, called in this order: processes and threads (chain first), then slices
/// and instants in capture order, then `finish`.
pub trait Sink {
    fn process(&mut self, process: &ProcessLanes, rank: usize) -> io::Result<()>;
    fn thread(&mut self, thread: &ThreadLane, rank: usize) -> io::Result<()>;
    fn slice(&mut self, slice: &Slice) -> io::Result<()>;
    fn instant(&mut self, instant: &Instant) -> io::Result<()>;
    fn finish(&mut self) -> io::Result<()>;
}

/// What an export wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exported {
    pub processes: usize,
    pub threads: usize,
    pub slices: u64,
    pub instants: u64,
    pub flows: u64,
    pub findings: usize,
    pub skipped_tail: u64,
}

/// Writes the capture at `path` (a run directory or an events.bin) as `format` into `out`.
pub fn export(path: &Path, format: Format, out: &Path) -> Result<Exported, ExportError> {
    let capture = Capture::locate(path)?;
    let mut lanes = LaneBook::default();
    let mut origin = u64::MAX;
    let Diagnosis { header, classification, book, stuck, skipped_tail } = diagnose(&capture, |event, book| {
        lanes.observe(event, book);
        origin = origin.min(event.header().ts_ns);
    })?;
    let chain = chain_threads(&crate::render::html::chain(&classification), stuck.as_ref());
    let processes = lanes.lanes(&book, stuck.as_ref(), &chain);
    let write_err = |source| ExportError::Write { path: out.to_path_buf(), source };
    // As root, never through a link planted at the output path; private like a run directory.
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(out)
            .map_err(write_err)?
    };
    let mut sink: Box<dyn Sink> = match format {
        Format::Perfetto => Box::new(perfetto::PerfettoSink::new(file)),
        Format::ChromeJson => Box::new(chrome_json::ChromeJsonSink::new(file, header.boot_to_wall_ns, origin)),
    };
    let mut exported = Exported { skipped_tail, findings: classification.findings.len(), ..Exported::default() };
    let mut rank = 0;
    for p in &processes {
        sink.process(p, rank).map_err(write_err)?;
        for t in &p.threads {
            rank += 1;
            sink.thread(t, rank).map_err(write_err)?;
        }
        rank += 1;
    }
    exported.processes = processes.len();
    exported.threads = processes.iter().map(|p| p.threads.len()).sum();
    let traced: HashSet<u32> = processes.iter().flat_map(|p| p.threads.iter().map(|t| t.tid)).collect();

    // The second pass: the events, with a fresh book so each is described as it was then.
    let mut source = capture.open()?;
    let mut replay_book = ProcessBook::default();
    crate::analysis::seed_book(&mut replay_book, &header);
    let mut trace = TraceBuilder { traced: &traced, last_end: HashMap::new(), next_flow: 1, last_ts: 0 };
    let mut failure: Option<io::Error> = None;
    for_each_event(&mut source, |event| {
        replay_book.observe(event);
        if failure.is_some() {
            return;
        }
        if let Err(e) = trace.event(event, &replay_book, sink.as_mut(), &mut exported) {
            failure = Some(e);
        }
    })
    .map_err(|source| OfflineError::Data { path: capture.events.clone(), source })?;
    if let Some(e) = failure {
        return Err(write_err(e));
    }
    let end = trace.last_ts;
    let snapshot_ts = stuck
        .as_ref()
        .and_then(|s| crate::clock::parse_rfc3339(&s.taken_at))
        .and_then(|wall| u64::try_from(wall - header.boot_to_wall_ns).ok());
    for f in &classification.findings {
        sink.instant(&finding_instant(f, &traced, snapshot_ts.unwrap_or(end))).map_err(write_err)?;
        exported.instants += 1;
    }
    sink.finish().map_err(write_err)?;
    Ok(exported)
}

fn finding_instant(f: &Finding, traced: &HashSet<u32>, fallback_ts: u64) -> Instant {
    let ts = f.evidence.iter().filter_map(|e| e.ts_ns).min().unwrap_or(fallback_ts);
    let track = if traced.contains(&f.tid) { Track::Thread { pid: f.pid, tid: f.tid } } else { Track::Process(f.pid) };
    let evidence: Vec<String> = f.evidence.iter().map(|e| e.to_line()).collect();
    let mut args = vec![
        ("id", Arg::Text(f.id.clone())),
        ("severity", Arg::Text(f.severity.as_str().into())),
        ("summary", Arg::Text(f.summary.clone())),
        ("evidence", Arg::Text(evidence.join("\n"))),
    ];
    if !f.caused_by.is_empty() {
        args.push(("caused_by", Arg::Text(f.caused_by.join(", "))));
    }
    Instant {
        ts,
        track,
        name: format!("{} {}", f.severity.as_str(), f.signature),
        category: "finding",
        args,
        flow_out: None,
        flow_in: None,
    }
}

fn emit(sink: &mut dyn Sink, exported: &mut Exported, instant: Instant) -> io::Result<()> {
    exported.instants += 1;
    exported.flows += u64::from(instant.flow_in.is_some());
    sink.instant(&instant)
}

/// Turns events into slices and instants, keeping each thread's slices one after another (a
/// syscall cannot start before the thread's previous one ended; the kernel's timestamps always
/// agree, an imported capture may not).
struct TraceBuilder<'a> {
    traced: &'a HashSet<u32>,
    last_end: HashMap<u32, u64>,
    next_flow: u64,
    last_ts: u64,
}

impl TraceBuilder<'_> {
    fn flow(&mut self) -> u64 {
        self.next_flow += 1;
        self.next_flow - 1
    }

    fn event(
        &mut self,
        event: &Event,
        book: &ProcessBook,
        sink: &mut dyn Sink,
        exported: &mut Exported,
    ) -> io::Result<()> {
        let h = *event.header();
        self.last_ts = self.last_ts.max(h.ts_ns);
        let thread = Track::Thread { pid: h.tgid, tid: h.tid };
        let text = describe(event, book);
        let instant = |ts: u64, track: Track, name: String, category: &'static str, text: &str| Instant {
            ts,
            track,
            name,
            category,
            args: vec![("event", Arg::Text(text.to_string()))],
            flow_out: None,
            flow_in: None,
        };
        match event {
            Event::Syscall(e) => {
                let known = e.header.flags & flags::UNKNOWN_DURATION == 0;
                let length =
                    if known && (returned(e) || e.header.flags & flags::UNFINISHED != 0) { e.duration_ns } else { 0 };
                let start = h.ts_ns.max(self.last_end.get(&h.tid).copied().unwrap_or(0));
                self.last_end.insert(h.tid, start + length + 1);
                self.last_ts = self.last_ts.max(start + length);
                let name = syscall_label(e.nr);
                let mut args = vec![("call", Arg::Text(text.clone()))];
                let errno = is_error_return(e.ret).filter(|_| returned(e));
                if returned(e) {
                    args.push(("result", Arg::Int(e.ret)));
                    if let Some(errno) = errno {
                        args.push(("errno", Arg::Text(errno_name(errno).unwrap_or("?").to_string())));
                    }
                } else if e.header.flags & flags::UNFINISHED != 0 {
                    args.push(("result", Arg::Text("unfinished: the thread ended inside the call".into())));
                }
                if known && returned(e) {
                    args.push(("duration_ns", Arg::Int(e.duration_ns as i64)));
                }
                sink.slice(&Slice {
                    ts: start,
                    duration: length,
                    pid: h.tgid,
                    tid: h.tid,
                    name: name.clone(),
                    category: "syscall",
                    args,
                })?;
                exported.slices += 1;
                if let Some(kind @ (MarkKind::Failure | MarkKind::Limit)) = MarkKind::of(event) {
                    let label = match (kind, errno.and_then(errno_name)) {
                        (MarkKind::Failure, Some(errno)) => format!("{name} failed: {errno}"),
                        (MarkKind::Failure, None) => format!("{name} failed"),
                        _ => format!("{name}: limit set"),
                    };
                    let category = if kind == MarkKind::Failure { "failure" } else { "limit" };
                    emit(sink, exported, instant(start + length, thread, label, category, &text))?;
                }
            }
            Event::Fork(f) => {
                let flow = self.flow();
                let what = if f.header.flags & flags::THREAD != 0 { "thread" } else { "process" };
                let mut out = instant(h.ts_ns, thread, format!("create {what} {}", f.child_tid), "lifecycle", &text);
                out.flow_out = Some(flow);
                emit(sink, exported, out)?;
                let child = Track::Thread { pid: f.child_tgid, tid: f.child_tid };
                let mut start = instant(
                    h.ts_ns,
                    child,
                    format!("created by {} ({})", h.tid, c_str(&f.parent_comm)),
                    "lifecycle",
                    &text,
                );
                start.flow_in = Some(flow);
                emit(sink, exported, start)?;
            }
            Event::Exec(e) => emit(
                sink,
                exported,
                instant(h.ts_ns, thread, format!("exec {}", c_str(&e.filename)), "lifecycle", &text),
            )?,
            Event::Exit(_) => emit(sink, exported, instant(h.ts_ns, thread, "exit".into(), "lifecycle", &text))?,
            Event::SignalGenerate(g) => {
                let target = owner_tid(event);
                let target_pid = book.tgid_of(target).unwrap_or(h.tgid);
                let name = signal_name(g.sig).map_or_else(|| format!("signal {}", g.sig), str::to_string);
                let mut received =
                    instant(h.ts_ns, Track::Thread { pid: target_pid, tid: target }, name.clone(), "signal", &text);
                received
                    .args
                    .push(("sender", Arg::Text(format!("pid {} tid {} ({})", h.tgid, h.tid, c_str(&g.sender_comm)))));
                // A sender in the capture gets its side of the flow; one outside it (observer, a
                // shell) is named in the arguments.
                let from_process = matches!(g.code, 0 | -1 | -6);
                if from_process && self.traced.contains(&h.tid) && h.tid != target {
                    let flow = self.flow();
                    let mut sent = instant(h.ts_ns, thread, format!("send {name} to {target}"), "signal", &text);
                    sent.flow_out = Some(flow);
                    emit(sink, exported, sent)?;
                    received.flow_in = Some(flow);
                }
                emit(sink, exported, received)?;
            }
            Event::SignalDeliver(d) => {
                let name = signal_name(d.sig).map_or_else(|| format!("signal {}", d.sig), str::to_string);
                emit(sink, exported, instant(h.ts_ns, thread, format!("{name} delivered"), "signal", &text))?;
            }
            Event::CgroupAttach(c) => emit(
                sink,
                exported,
                instant(h.ts_ns, thread, format!("moved to cgroup {}", c_str(&c.path)), "lifecycle", &text),
            )?,
            Event::Fault(f) => {
                let name = signal_name(f.sig).map_or_else(|| format!("signal {}", f.sig), str::to_string);
                emit(
                    sink,
                    exported,
                    instant(h.ts_ns, thread, format!("{name} fault at {:#x}", f.addr), "signal", &text),
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_never_writes_through_a_link_at_its_path_and_is_private() {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/segfault/events.bin");
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("trace.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(export(&golden, Format::ChromeJson, &link).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let out = dir.path().join("out.json");
        export(&golden, Format::ChromeJson, &out).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
