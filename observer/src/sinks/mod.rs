//! Where decoded events go during a capture: the event log, the per-thread trace files and the
//! run statistics, fed in one pass by [`Pipeline`].
pub mod stats;
pub mod trace_files;

use std::{io, path::Path};

use crate::{event::Event, eventlog::EventLogWriter, processes::ProcessBook};

pub use stats::RunStats;
pub use trace_files::TraceFiles;

/// The sinks of one run, fed every event in arrival order.
pub struct Pipeline {
    pub log: Option<EventLogWriter>,
    pub traces: TraceFiles,
    pub stats: RunStats,
    pub book: ProcessBook,
    boot_to_wall_ns: i64,
}

impl Pipeline {
    pub fn new(run_dir: &Path, log: Option<EventLogWriter>, boot_to_wall_ns: i64) -> Self {
        Self { log, traces: TraceFiles::new(run_dir), stats: RunStats::default(), book: ProcessBook::default(), boot_to_wall_ns }
    }

    pub fn handle_batch(&mut self, events: &[Event]) -> io::Result<()> {
        for event in events {
            if let Some(log) = self.log.as_mut() {
                log.append(event)?;
            }
            self.book.observe(event);
            self.stats.observe(event);
            let line = crate::render::trace_line(event, &self.book, self.boot_to_wall_ns);
            self.traces.append(crate::render::owner_tid(event), event.header().ts_ns, line)?;
        }
        if let Some(log) = self.log.as_mut() {
            log.flush()?;
        }
        Ok(())
    }

    /// Flushes everything to disk; returns the number of records in the event log.
    pub fn finish(&mut self) -> io::Result<u64> {
        self.traces.flush_all()?;
        match self.log.take() {
            Some(log) => log.finish(),
            None => Ok(0),
        }
    }
}
