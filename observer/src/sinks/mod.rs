//! Where decoded events go during a capture: the event log, the per-thread trace files and the
//! run statistics, fed in one pass by [`Pipeline`].
pub mod stats;
pub mod trace_files;

use std::{io, path::Path};

use crate::{
    analysis::{seed_book, Analyzer, Classification, Context},
    event::Event,
    eventlog::{EventLogWriter, LogHeader},
    hang::snapshot::StuckSnapshot,
    preflight::Preflight,
    processes::ProcessBook,
};

pub use stats::RunStats;
pub use trace_files::TraceFiles;

/// The sinks of one run, fed every event in arrival order.
pub struct Pipeline {
    pub log: Option<EventLogWriter>,
    pub traces: TraceFiles,
    pub stats: RunStats,
    pub book: ProcessBook,
    analyzer: Analyzer,
    header: LogHeader,
    preflight: Option<Preflight>,
}

impl Pipeline {
    pub fn new(run_dir: &Path, log: Option<EventLogWriter>, header: LogHeader, preflight: Option<Preflight>) -> Self {
        let mut book = ProcessBook::default();
        seed_book(&mut book, &header);
        Self {
            log,
            traces: TraceFiles::new(run_dir),
            stats: RunStats::default(),
            book,
            analyzer: Analyzer::default(),
            header,
            preflight,
        }
    }

    pub fn handle_batch(&mut self, events: &[Event]) -> io::Result<()> {
        let arrived = std::time::Instant::now();
        for event in events {
            if let Some(log) = self.log.as_mut() {
                log.append(event)?;
            }
            self.book.observe(event);
            self.stats.observe(event, arrived);
            let cx = Context { book: &self.book, header: &self.header, preflight: self.preflight.as_ref(), stuck: None };
            self.analyzer.observe(event, &cx);
            let line = crate::render::trace_line(event, &self.book, self.header.boot_to_wall_ns);
            self.traces.append(crate::render::owner_tid(event), event.header().ts_ns, line)?;
        }
        if let Some(log) = self.log.as_mut() {
            log.flush()?;
        }
        Ok(())
    }

    /// The summary lines every capture shares: records by kind, calls and failures by syscall and
    /// errno, and each process a signal ended.
    pub fn put_counts(&self, s: &mut crate::summary::Summary) {
        s.put("unfinished_syscalls", self.stats.unfinished_syscalls);
        for (kind, n) in &self.stats.by_kind {
            s.put(format!("events.{kind}"), *n);
        }
        for (name, count) in &self.stats.syscalls {
            s.put(format!("syscalls.{name}"), count.calls);
        }
        for (name, count) in &self.stats.syscalls {
            s.put(format!("syscall_errors.{name}"), count.errors);
            for (errno, n) in &count.by_errno {
                s.put(format!("syscall_errors.{name}.{errno}"), *n);
            }
        }
        for p in self.book.processes() {
            if let Some(exit @ crate::processes::ProcessExit::Signal { .. }) = &p.exit {
                s.put(format!("killed.{}", p.pid), format!("{} {}", p.comm, crate::processes::describe_exit(exit)));
            }
        }
    }

    /// Flushes everything to disk and runs the classifiers' final pass; returns the number of
    /// records in the event log and the findings.
    pub fn finish(&mut self, stuck: Option<&StuckSnapshot>) -> io::Result<(u64, Classification)> {
        self.traces.flush_all()?;
        let records = match self.log.take() {
            Some(log) => log.finish()?,
            None => 0,
        };
        let analyzer = std::mem::take(&mut self.analyzer);
        let cx = Context { book: &self.book, header: &self.header, preflight: self.preflight.as_ref(), stuck };
        Ok((records, analyzer.finish(&cx)))
    }
}
