//! The capture's `events.bin` as a sink that cannot stop a capture: it writes records until the
//! size limit (`--max-size`) or a write error (a full disk) cuts it, then only says where it was
//! cut. A little disk room is held back from the start, so a capture cut by a full disk can still
//! write its snapshot, report and summary.
use std::{io, os::fd::AsRawFd, time::Instant};

use crate::{event::Event, eventlog::EventLogWriter, out_dir::OutDir};

/// Room held back for the files written after a cut (stuck.txt, report.txt, summary.*).
const RESERVE_BYTES: i64 = 1024 * 1024;
/// The reserve's name in the run directory while the capture runs.
pub const RESERVE_FILE: &str = ".observer-reserve";

/// Why the capture stopped being written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CutReason {
    /// `--max-size` reached.
    MaxSize(u64),
    /// The file could not be written (ENOSPC, EDQUOT, EFBIG, EIO, ...).
    WriteError(String),
}

/// Where the capture was cut: what is in the file, and the first record that is not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub reason: CutReason,
    /// Size of events.bin, which ends on a whole block.
    pub bytes: u64,
    pub records: u64,
    /// Boot-clock time of the first record not written (or of the batch it was lost in).
    pub first_lost_ns: u64,
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match &self.reason {
            CutReason::MaxSize(max) => format!("--max-size {max} reached"),
            CutReason::WriteError(e) => format!("write failed: {e}"),
        };
        write!(f, "after {} records ({} bytes of events.bin): {why}", self.records, self.bytes)
    }
}

/// A file of [`RESERVE_BYTES`] allocated on the run directory's filesystem, deleted to make room.
struct Reserve(OutDir);

impl Reserve {
    fn take(dir: &OutDir) -> Option<Reserve> {
        let file = dir.create(RESERVE_FILE).ok()?;
        // SAFETY: fallocate on a valid descriptor we own.
        if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, RESERVE_BYTES) } != 0 {
            let _ = dir.remove_file(RESERVE_FILE);
            return None;
        }
        Some(Reserve(dir.clone()))
    }
}

impl Drop for Reserve {
    fn drop(&mut self) {
        let _ = self.0.remove_file(RESERVE_FILE);
    }
}

enum State {
    Writing(EventLogWriter),
    Cut,
    Finished,
}

/// `events.bin` during a capture.
pub struct EventFile {
    state: State,
    max_bytes: Option<u64>,
    cut: Option<Cut>,
    reserve: Option<Reserve>,
}

impl EventFile {
    /// `log` is already created in `dir`; `max_bytes` caps its size.
    pub fn new(log: EventLogWriter, dir: &OutDir, max_bytes: Option<u64>) -> Self {
        Self { state: State::Writing(log), max_bytes, cut: None, reserve: Reserve::take(dir) }
    }

    /// An event file without a limit or a reserve (imports, incidents: their input is bounded).
    pub fn unbounded(log: EventLogWriter) -> Self {
        Self { state: State::Writing(log), max_bytes: None, cut: None, reserve: None }
    }

    /// Adds `event`, which arrived at `now`. The size limit counts the block being filled at the
    /// most it can compress to, so the file never passes the limit.
    pub fn append(&mut self, event: &Event, now: Instant) {
        let State::Writing(log) = &mut self.state else { return };
        if let Some(max) = self.max_bytes {
            if log.bytes_with(event) > max {
                self.cut_at(CutReason::MaxSize(max), event.header().ts_ns);
                return;
            }
        }
        // A failed write loses the whole block the event went into.
        let first_lost = log.pending_since_ns().unwrap_or(event.header().ts_ns);
        if let Err(e) = log.append(event, now) {
            self.cut_at(CutReason::WriteError(e.to_string()), first_lost);
        }
    }

    /// Writes the block being filled if its first record is old enough (called after every batch,
    /// and at least every 20 ms while a capture runs, so a block reaches the disk in time).
    pub fn write_due(&mut self, now: Instant) {
        let State::Writing(log) = &mut self.state else { return };
        let first_lost = log.pending_since_ns().unwrap_or_default();
        if let Err(e) = log.write_due(now) {
            self.cut_at(CutReason::WriteError(e.to_string()), first_lost);
        }
    }

    /// Writes the block being filled now, however young.
    pub fn write_pending(&mut self) {
        let State::Writing(log) = &mut self.state else { return };
        let first_lost = log.pending_since_ns().unwrap_or_default();
        if let Err(e) = log.write_pending() {
            self.cut_at(CutReason::WriteError(e.to_string()), first_lost);
        }
    }

    fn cut_at(&mut self, reason: CutReason, first_lost_ns: u64) {
        let State::Writing(mut log) = std::mem::replace(&mut self.state, State::Cut) else { return };
        // Whole records still in the open block are kept when they fit; a failed write drops them.
        let _ = log.write_pending();
        self.cut = Some(Cut { reason, bytes: log.bytes(), records: log.records(), first_lost_ns });
        if matches!(self.cut, Some(Cut { reason: CutReason::WriteError(_), .. })) {
            // The filesystem is full (or failing): give the files still to come the room held back.
            self.reserve = None;
        }
        let _ = log.finish();
    }

    /// Gives the room held back to the files written last (report, summary).
    pub fn release_reserve(&mut self) {
        self.reserve = None;
    }

    /// The size limit, if there is one.
    pub fn max_bytes(&self) -> Option<u64> {
        self.max_bytes
    }

    /// Where the capture was cut, if it was.
    pub fn cut(&self) -> Option<&Cut> {
        self.cut.as_ref()
    }

    /// Ends the file; returns its records. The reserve is kept for the trace text rendered from
    /// it, which may fill the disk in turn: see [`EventFile::release_reserve`].
    pub fn finish(&mut self) -> io::Result<u64> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Writing(log) => log.finish(),
            State::Cut | State::Finished => Ok(self.cut.as_ref().map_or(0, |c| c.records)),
        }
    }
}

#[cfg(test)]
mod tests {
    use observer_common::{kind, EventHeader, ExitEvent};

    use super::*;
    use crate::eventlog::{EventLogReader, LogHeader};

    fn exit_event(ts: u64) -> Event {
        Event::Exit(ExitEvent {
            header: EventHeader { kind: kind::EXIT, flags: 0, tid: 7, tgid: 7, _pad: 0, ts_ns: ts },
            comm: [0; 16],
        })
    }

    #[test]
    fn the_size_limit_cuts_the_file_on_a_whole_block_and_says_where() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OutDir::open(tmp.path()).unwrap();
        let path = tmp.path().join("events.bin");
        let log = EventLogWriter::new(std::fs::File::create(&path).unwrap(), &LogHeader::default()).unwrap();
        let limit = log.bytes() + 1000;
        let mut file = EventFile::new(log, &dir, Some(limit));
        assert!(tmp.path().join(RESERVE_FILE).exists(), "room is held back while the capture runs");
        let now = Instant::now();
        for ts in 1..=100_000 {
            file.append(&exit_event(ts), now);
            file.write_due(now + crate::eventlog::BLOCK_MAX_AGE);
        }
        let cut = file.cut().unwrap().clone();
        assert_eq!(cut.reason, CutReason::MaxSize(limit));
        assert!(cut.records > 3 && cut.bytes <= limit, "{cut:?}");
        assert_eq!(cut.first_lost_ns, cut.records + 1);
        assert_eq!(file.finish().unwrap(), cut.records);
        file.release_reserve();
        assert!(!tmp.path().join(RESERVE_FILE).exists());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), cut.bytes);
        let mut reader = EventLogReader::open(&path).unwrap();
        let mut n = 0;
        while let Some(e) = reader.next_event().unwrap() {
            n += 1;
            assert_eq!(e, exit_event(n));
        }
        assert_eq!((n, reader.truncated_tail()), (cut.records, 0));
    }
}
