//! Where decoded events go during a capture: the event log, the run statistics, the process book
//! and the classifiers, fed in one pass by [`Pipeline`]; the per-thread trace files are rendered
//! from the event log when the capture ends, so formatting text never competes with the traced
//! program for a CPU while it runs. Nothing a sink writes can stop a capture: a full disk or the
//! size limit cuts the files, and the summary says where.
pub mod event_file;
pub mod stats;
pub mod trace_files;

use std::io;

use observer_common::syscalls::Syscall;

use crate::{
    analysis::{
        failure_facts::{self, FailureFacts, Shortage},
        seed_book,
        snapshot::StuckSnapshot,
        Analyzer, Classification, Context,
    },
    event::Event,
    eventlog::LogHeader,
    interrupt::Hurry,
    out_dir::OutDir,
    preflight::Preflight,
    processes::ProcessBook,
    source::{EventSource, FileSource},
};

pub use event_file::EventFile;
pub use stats::RunStats;
pub use trace_files::TraceFiles;

/// How far the per-thread trace text got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TraceText {
    #[default]
    Complete,
    /// Stopped at the size limit after this many bytes.
    CutAtLimit(u64),
    /// A signal arrived while it was written: observer was asked to finish at once.
    CutBySignal,
    /// Every thread's log written, but for the middle of the busiest ones: `events` events of
    /// `threads` threads.
    MiddlesLeftOut { events: u64, threads: usize },
    /// Not rendered: the disk was full (or failing) when the capture was cut.
    Skipped,
    /// Writing it failed.
    Failed(String),
}

impl std::fmt::Display for TraceText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceText::Complete => write!(f, "complete"),
            TraceText::CutAtLimit(n) => write!(f, "cut at {n} bytes (--max-size); `observer replay` prints the rest"),
            TraceText::CutBySignal => {
                write!(f, "cut short by a signal; `observer replay` prints all of events.bin")
            }
            TraceText::MiddlesLeftOut { events, threads } => write!(
                f,
                "complete but for {events} events in the middle of the {threads} busiest thread(s)' logs \
                 (the first and last {} lines of each are kept); `observer replay --tid` prints them",
                trace_files::KEEP_HEAD
            ),
            TraceText::Skipped => write!(f, "not written (the disk was full); `observer replay` prints events.bin"),
            TraceText::Failed(e) => write!(f, "cut by a write error: {e}; `observer replay` prints events.bin"),
        }
    }
}

/// The sinks of one run, fed every event in arrival order.
pub struct Pipeline {
    log: EventFile,
    dir: OutDir,
    pub stats: RunStats,
    pub book: ProcessBook,
    analyzer: Analyzer,
    header: LogHeader,
    preflight: Option<Preflight>,
    /// A signal while the text is rendered: stop rendering and finish.
    hurry: Hurry,
    trace_text: TraceText,
    /// The first failure of each kind per process, with the task's cgroups and limits read as it
    /// arrived.
    failures: Vec<FailureFacts>,
}

/// What a failed record was short of, if it is a failure worth explaining.
fn shortage(event: &Event) -> Option<Shortage> {
    let Event::Syscall(e) = event else { return None };
    if !crate::event::returned(e) {
        return None;
    }
    match (Syscall::from_nr(e.nr), crate::decode::is_error_return(e.ret)) {
        (Some(call), Some(libc::EAGAIN)) if call.creates_task() => Some(Shortage::Tasks),
        (Some(Syscall::Mmap | Syscall::Mprotect | Syscall::Brk), Some(libc::ENOMEM)) => Some(Shortage::Memory),
        _ => None,
    }
}

impl Pipeline {
    /// `log` is the run's `events.bin` (in `run_dir`); the trace files are rendered from it.
    pub fn new(run_dir: &OutDir, log: EventFile, header: LogHeader, preflight: Option<Preflight>) -> Self {
        let mut book = ProcessBook::default();
        seed_book(&mut book, &header);
        Self {
            log,
            dir: run_dir.clone(),
            stats: RunStats::default(),
            book,
            analyzer: Analyzer::default(),
            header,
            preflight,
            hurry: Hurry::default(),
            trace_text: TraceText::default(),
            failures: Vec::new(),
        }
    }

    /// Rendering the trace text stops early when a signal arrives meanwhile.
    pub fn hurry_on(&mut self, hurry: Hurry) {
        self.hurry = hurry;
    }

    /// Where events.bin was cut, if it was.
    pub fn cut(&self) -> Option<&event_file::Cut> {
        self.log.cut()
    }

    /// Reads the failing task's cgroups and limits the first time a process fails for want of a
    /// resource (rare, so reading /proc here costs the traced program nothing).
    fn note_failure(&mut self, event: &Event) {
        let Some(shortage) = shortage(event) else { return };
        let h = event.header();
        if self.failures.iter().any(|f| f.pid == h.tgid && f.shortage == Some(shortage)) {
            return;
        }
        // A process that died at once cannot be read; its parent's cgroups are the ones it was
        // forked into.
        let mut from = Some(h.tgid);
        let mut facts =
            FailureFacts { pid: h.tgid, tid: h.tid, shortage: Some(shortage), ts_ns: h.ts_ns, ..Default::default() };
        // An imported failure happened on the machine the trace came from: this machine's /proc
        // and cgroups say nothing of it (its pid may be an unrelated process here).
        if h.flags & observer_common::flags::IMPORTED != 0 {
            self.failures.push(facts);
            return;
        }
        for _ in 0..8 {
            let Some(pid) = from else { break };
            let (cgroups, limits) = crate::proc::preflight::task_limits(pid);
            // An exiting task is already back in the root cgroups: only a live one tells. Checked
            // after the read, so the task was alive while it was read.
            let alive = crate::proc::task::process_stat(pid).is_some_and(|s| !matches!(s.state, 'Z' | 'X'));
            if !cgroups.is_empty() && alive {
                facts.read = true;
                facts.read_from = (pid != h.tgid).then_some(pid);
                facts.cgroups = cgroups;
                facts.limits = limits;
                break;
            }
            from = self.book.process(pid).and_then(|p| p.parent);
        }
        // The cgroups the kernel saw the process (or an ancestor, inherited at fork) move into
        // during the capture, read now: they outlive the task.
        let moved = self.book.process(h.tgid).map(|p| p.cgroups.clone()).unwrap_or_default();
        // The kernel saw every move of a tracked process, so these win over /proc, which shows an
        // exiting task already back in the root cgroups (before it turns zombie).
        for (root, path) in moved {
            let Some(mut info) = crate::proc::preflight::cgroup_in_hierarchy(root, &path) else { continue };
            // Not read through the task: the count in use now says nothing of the failure.
            info.pids_current = None;
            match facts.cgroups.iter_mut().find(|c| c.hierarchy == info.hierarchy) {
                // /proc agrees, and was read as the failure arrived: keep its numbers.
                Some(known) if known.path == info.path => {}
                Some(known) => *known = info,
                None => facts.cgroups.push(info),
            }
            facts.read = true;
        }
        self.failures.push(facts);
    }

    pub fn handle_batch(&mut self, events: &[Event]) {
        let arrived = std::time::Instant::now();
        for event in events {
            self.log.append(event, arrived);
            self.book.observe(event);
            self.stats.observe(event);
            self.note_failure(event);
            let cx = Context {
                book: &self.book,
                header: &self.header,
                preflight: self.preflight.as_ref(),
                stuck: None,
                failures: &self.failures,
            };
            self.analyzer.observe(event, &cx);
        }
        // Also after an empty batch: the capture loop's timer keeps a quiet capture's last block
        // going to disk on time.
        self.log.write_due(arrived);
    }

    /// Writes the events handled so far to disk now (before a wait in which nothing is handled).
    pub fn write_pending(&mut self) {
        self.log.write_pending();
    }

    /// Writes `trace.<tid>.txt` for every thread from the finished event log, at most `limit`
    /// bytes of it (the same limit as events.bin), and says how far it got.
    fn render_traces(&self, limit: Option<u64>, records: u64) -> io::Result<TraceText> {
        if matches!(self.log.cut(), Some(event_file::Cut { reason: event_file::CutReason::WriteError(_), .. })) {
            return Ok(TraceText::Skipped);
        }
        let signals_before = self.hurry.count();
        let events = || -> io::Result<FileSource> {
            FileSource::from_file(self.dir.read(crate::rundir::EVENTS)?).map_err(io::Error::other)
        };
        let mut batch = Vec::with_capacity(4096);
        let mut traces = if records > trace_files::KEEP_HEAD + trace_files::KEEP_TAIL {
            // Some thread may have more lines than its log keeps: count each thread's first.
            let mut counts: foldhash::HashMap<u32, u64> = foldhash::HashMap::default();
            let mut source = events()?;
            loop {
                if self.hurry.count() > signals_before {
                    return Ok(TraceText::CutBySignal);
                }
                batch.clear();
                let more = source.read_batch(&mut batch).map_err(io::Error::other)?;
                for event in &batch {
                    *counts.entry(crate::render::owner_tid(event)).or_default() += 1;
                }
                if !more {
                    break;
                }
            }
            TraceFiles::with_counts(&self.dir, counts)
        } else {
            TraceFiles::new(&self.dir)
        };
        let mut source = events()?;
        let mut bytes = 0u64;
        loop {
            if self.hurry.count() > signals_before {
                traces.flush_all()?;
                return Ok(TraceText::CutBySignal);
            }
            batch.clear();
            let more = source.read_batch(&mut batch).map_err(io::Error::other)?;
            for event in &batch {
                let tid = crate::render::owner_tid(event);
                let (kept, marker_bytes) = traces.keeps_next(tid)?;
                bytes += marker_bytes;
                if !kept {
                    continue;
                }
                let line = crate::render::trace_line(event, &self.book, self.header.boot_to_wall_ns);
                bytes += line.len() as u64 + 1;
                if limit.is_some_and(|max| bytes > max) {
                    traces.flush_all()?;
                    return Ok(TraceText::CutAtLimit(bytes - line.len() as u64 - 1));
                }
                traces.append(tid, event.header().ts_ns, line)?;
            }
            if !more {
                break;
            }
        }
        traces.flush_all()?;
        Ok(match traces.left_out() {
            (0, _) => TraceText::Complete,
            (events, threads) => TraceText::MiddlesLeftOut { events, threads },
        })
    }

    /// The container, pod or systemd unit process `pid` ran in: as the stuck snapshot read it
    /// (after any wrapper moved it), else as it started (`container.*`, `pod.*`, `systemd_unit`,
    /// `cgroup`; nothing when its cgroups name none).
    pub fn put_workload(&self, s: &mut crate::summary::Summary, pid: u32, stuck: Option<&StuckSnapshot>) {
        let workload = stuck
            .and_then(|st| st.process(pid))
            .and_then(|p| p.workload.clone())
            .or_else(|| self.preflight.as_ref().and_then(Preflight::workload));
        if let Some(w) = workload {
            w.put(s, "");
        }
    }

    /// The diagnosis and volume lines every capture's summary starts its facts with.
    pub fn put_outcome(&self, s: &mut crate::summary::Summary, classification: &Classification, records: u64) {
        s.put("findings", classification.findings.len());
        s.put("verdict", crate::analysis::report::verdict(classification));
        s.put("threads_seen", self.book.threads_seen());
        s.put("processes_seen", self.book.processes().count());
        s.put("events_received", self.stats.events_received);
        s.put("events_written", records);
        s.put(
            "capture_cut",
            self.log.cut().map_or_else(
                || "no".to_string(),
                |cut| {
                    let at = crate::clock::time_of_day(cut.first_lost_ns as i64 + self.header.boot_to_wall_ns);
                    format!("at {at}, {cut}; later events were counted, not written")
                },
            ),
        );
        s.put("trace_text", self.trace_text.to_string());
    }

    /// The summary lines every capture shares: records by kind, calls and failures by syscall and
    /// errno, and each process a signal ended.
    pub fn put_counts(&self, s: &mut crate::summary::Summary) {
        s.put("unfinished_syscalls", self.stats.unfinished_syscalls);
        for (kind, n) in &self.stats.by_kind {
            s.put(format!("events.{kind}"), *n);
        }
        // In name order, as strace and the reader expect.
        let mut syscalls: Vec<(String, &crate::sinks::stats::SyscallCount)> =
            self.stats.syscalls.iter().map(|(nr, count)| (crate::decode::syscall_label(*nr), count)).collect();
        syscalls.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, count) in &syscalls {
            s.put(format!("syscalls.{name}"), count.calls);
        }
        for (name, count) in &syscalls {
            s.put(format!("syscall_errors.{name}"), count.errors);
            let mut errnos: Vec<(String, u64)> = count
                .by_errno
                .iter()
                .map(|(errno, n)| {
                    (crate::decode::errno_name(*errno).map_or_else(|| errno.to_string(), str::to_string), *n)
                })
                .collect();
            errnos.sort();
            for (errno, n) in errnos {
                s.put(format!("syscall_errors.{name}.{errno}"), n);
            }
        }
        for p in self.book.processes() {
            if let Some(exit @ crate::processes::ProcessExit::Signal { .. }) = &p.exit {
                s.put(format!("killed.{}", p.pid), format!("{} {}", p.comm, crate::processes::describe_exit(exit)));
            }
        }
    }

    /// Flushes everything to disk and runs the classifiers' final pass; returns the number of
    /// records in the event log and the findings. The trace text has the event log's size limit;
    /// a failure to write it is noted (in the summary), not fatal.
    pub fn finish(&mut self, stuck: Option<&StuckSnapshot>) -> io::Result<(u64, Classification)> {
        let records = self.log.finish()?;
        self.trace_text =
            self.render_traces(self.log.max_bytes(), records).unwrap_or_else(|e| TraceText::Failed(e.to_string()));
        // Only now: the trace text is much larger than events.bin and may fill the disk itself.
        self.log.release_reserve();
        let analyzer = std::mem::take(&mut self.analyzer);
        failure_facts::write(&self.dir, &self.failures)?;
        let cx = Context {
            book: &self.book,
            header: &self.header,
            preflight: self.preflight.as_ref(),
            stuck,
            failures: &self.failures,
        };
        Ok((records, analyzer.finish(&cx)))
    }
}

#[cfg(test)]
mod tests {
    use observer_common::{flags, syscalls::Syscall, EventHeader, Record, SyscallEvent};

    use super::*;
    use crate::{eventlog::LogHeader, out_dir::OutDir, session::open_capture};

    /// A clone that failed with EAGAIN in this very process (alive, its cgroups readable).
    fn clone_eagain(extra_flags: u16) -> Event {
        let me = std::process::id();
        Event::Syscall(SyscallEvent {
            header: EventHeader { kind: SyscallEvent::KIND, flags: extra_flags, tid: me, tgid: me, _pad: 0, ts_ns: 1 },
            nr: Syscall::Clone3.nr(),
            nargs: 2,
            ret: -(libc::EAGAIN as i64),
            ..SyscallEvent::default()
        })
    }

    #[test]
    fn failure_facts_are_read_from_this_machine_for_live_failures_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OutDir::open(tmp.path()).unwrap();
        let mut pipeline = open_capture(&dir, LogHeader::default(), None).unwrap();
        pipeline.handle_batch(&[clone_eagain(0)]);
        assert!(pipeline.failures[0].read, "a live failure's cgroups and limits are read");
        let tmp = tempfile::tempdir().unwrap();
        let dir = OutDir::open(tmp.path()).unwrap();
        let mut pipeline = open_capture(&dir, LogHeader::default(), None).unwrap();
        pipeline.handle_batch(&[clone_eagain(flags::IMPORTED)]);
        let facts = &pipeline.failures[0];
        assert!(!facts.read && facts.cgroups.is_empty(), "an imported failure's pid is another machine's: {facts:?}");
    }
}
