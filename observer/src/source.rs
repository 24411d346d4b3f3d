//! The one interface every consumer reads events through, whether they come live from the kernel
//! or from an `events.bin` written earlier.
use std::path::Path;

use crate::{
    event::Event,
    eventlog::{EventLogReader, LogError, LogHeader},
};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Log(#[from] LogError),
}

/// A stream of decoded events, read in batches.
pub trait EventSource {
    /// Appends the events available now to `out`. Returns `false` once the source has ended
    /// (a file at its end); a live source never ends by itself.
    fn read_batch(&mut self, out: &mut Vec<Event>) -> Result<bool, SourceError>;

    /// Feeds every event to `each`, in order, until the source ends: a batch at a time, unless
    /// the source can lend its events one by one (then none is copied into a batch).
    fn for_each(&mut self, each: &mut dyn FnMut(&Event)) -> Result<(), SourceError> {
        let mut batch = Vec::with_capacity(4096);
        loop {
            batch.clear();
            let more = self.read_batch(&mut batch)?;
            batch.iter().for_each(&mut *each);
            if !more {
                return Ok(());
            }
        }
    }
}

/// Feeds every event of `source` to `each`, in order, until the source ends.
pub fn for_each_event(source: &mut dyn EventSource, mut each: impl FnMut(&Event)) -> Result<(), SourceError> {
    source.for_each(&mut each)
}

/// Replays an event log.
pub struct FileSource {
    reader: EventLogReader,
}

impl FileSource {
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        Ok(Self { reader: EventLogReader::open(path)? })
    }

    /// An event log already open (read through a run directory's descriptor).
    pub fn from_file(file: std::fs::File) -> Result<Self, SourceError> {
        Ok(Self { reader: EventLogReader::from_reader(Box::new(file))? })
    }

    pub fn header(&self) -> &LogHeader {
        self.reader.header()
    }

    /// Bytes at the end that did not form a whole record (version 1) or block (version 2).
    pub fn truncated_tail(&self) -> u64 {
        self.reader.truncated_tail()
    }
}

impl EventSource for FileSource {
    fn read_batch(&mut self, out: &mut Vec<Event>) -> Result<bool, SourceError> {
        for _ in 0..4096 {
            match self.reader.lend_event()? {
                Some(event) => out.push(*event),
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    fn for_each(&mut self, each: &mut dyn FnMut(&Event)) -> Result<(), SourceError> {
        while let Some(event) = self.reader.lend_event()? {
            each(event);
        }
        Ok(())
    }
}
