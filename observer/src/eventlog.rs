//! `events.bin`: the versioned capture file — magic, version, a JSON header, then length-framed
//! records exactly as the kernel wrote them. See docs/event-log.md.
use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom, Write},
    path::Path,
};

use serde::{Deserialize, Serialize};

use crate::event::{DecodeError, Event};

pub const MAGIC: &[u8; 8] = b"OBSVEVT\0";
pub const FORMAT_VERSION: u32 = 1;
/// Schema of the records themselves (layouts in observer-common); bumped when a layout changes
/// other than by appending fields.
pub const RECORD_SCHEMA: u32 = 1;
/// No record is anywhere near this; a larger length means the framing is corrupt.
pub const MAX_RECORD_LEN: u32 = 64 * 1024;
const PREAMBLE_LEN: usize = 16;

/// What the capture was taken on, written once at the start of the file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHeader {
    pub record_schema: u32,
    pub kernel_release: String,
    pub hostname: String,
    /// Add to a record's CLOCK_BOOTTIME timestamp to get nanoseconds since the Unix epoch.
    pub boot_to_wall_ns: i64,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub command: Vec<String>,
    /// pid of the observer that wrote the capture (its signals are "from the observer").
    pub observer_pid: u32,
    /// pid of the launched command, when the capture has one.
    #[serde(default)]
    pub root_pid: Option<u32>,
}

impl LogHeader {
    /// The header of a capture taken on this machine now by this process.
    pub fn live(command: Vec<String>, root_pid: Option<u32>, started_at: String) -> Self {
        LogHeader {
            record_schema: RECORD_SCHEMA,
            kernel_release: crate::proc::sysctl("kernel.osrelease").unwrap_or_default(),
            hostname: crate::proc::sysctl("kernel.hostname").unwrap_or_default(),
            boot_to_wall_ns: crate::clock::boot_to_wall_offset_ns(),
            started_at,
            command,
            observer_pid: std::process::id(),
            root_pid,
        }
    }
}

/// Records buffered before they are written to the file.
const WRITE_BUFFER: usize = 256 * 1024;

/// Appends records to an event log. The file only ever ends on a whole record: when a write
/// fails, what it left of the unwritten records is cut off again.
pub struct EventLogWriter {
    file: File,
    buf: Vec<u8>,
    /// Bytes in the file, all of them whole records (or the header).
    written: u64,
    records: u64,
    /// Records in the file (the rest are in `buf`).
    written_records: u64,
}

impl EventLogWriter {
    /// Starts the log in `file` (new and empty) with `header`.
    pub fn new(mut file: File, header: &LogHeader) -> io::Result<Self> {
        let json = serde_json::to_vec(header)?;
        let mut head = Vec::with_capacity(PREAMBLE_LEN + json.len());
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        head.extend_from_slice(&(json.len() as u32).to_le_bytes());
        head.extend_from_slice(&json);
        file.write_all(&head)?;
        Ok(Self {
            file,
            buf: Vec::with_capacity(WRITE_BUFFER),
            written: head.len() as u64,
            records: 0,
            written_records: 0,
        })
    }

    /// The bytes a record adds to the file.
    pub fn framed_len(event: &Event) -> u64 {
        4 + event.as_bytes().len() as u64
    }

    pub fn append(&mut self, event: &Event) -> io::Result<()> {
        let bytes = event.as_bytes();
        self.buf.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(bytes);
        self.records += 1;
        if self.buf.len() >= WRITE_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    /// The file's size once everything appended is written.
    pub fn bytes(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Records appended and not lost to a failed write.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Pushes buffered records to the file so a reader sees them (called after every batch). On
    /// failure the buffered records are lost and the file is cut back to its last whole record.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        match self.file.write_all(&self.buf) {
            Ok(()) => {
                self.written += self.buf.len() as u64;
                self.written_records = self.records;
                self.buf.clear();
                Ok(())
            }
            Err(e) => {
                self.buf.clear();
                self.records = self.written_records;
                let _ = self.file.set_len(self.written);
                let _ = self.file.seek(SeekFrom::Start(self.written));
                Err(e)
            }
        }
    }

    pub fn finish(mut self) -> io::Result<u64> {
        self.flush()?;
        self.file.sync_data()?;
        Ok(self.records)
    }
}

/// Why an event log cannot be read (past `offset`).
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("not an observer event log: expected magic {expected:?} at byte 0, found {found:?}")]
    BadMagic { expected: String, found: String },
    #[error("event log format version {found} is not supported (this observer reads version {supported})")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("corrupt event log at byte {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
}

/// Reads an event log as a stream: header first, then records one by one, holding only a window
/// of the file in memory (a capture of ten million records is a gigabyte).
pub struct EventLogReader {
    source: Box<dyn Read>,
    /// Bytes read but not consumed; `buf[start..]` begins at file offset `offset`.
    buf: Vec<u8>,
    start: usize,
    offset: u64,
    eof: bool,
    header: LogHeader,
}

const READ_CHUNK: usize = 256 * 1024;

impl EventLogReader {
    pub fn open(path: &Path) -> Result<Self, LogError> {
        Self::from_reader(Box::new(File::open(path)?))
    }

    pub fn from_bytes(data: Vec<u8>) -> Result<Self, LogError> {
        Self::from_reader(Box::new(io::Cursor::new(data)))
    }

    pub fn from_reader(source: Box<dyn Read>) -> Result<Self, LogError> {
        let mut reader =
            Self { source, buf: Vec::new(), start: 0, offset: 0, eof: false, header: LogHeader::default() };
        reader.fill(PREAMBLE_LEN)?;
        let data = reader.available();
        if data.len() < PREAMBLE_LEN || &data[..8] != MAGIC {
            let found = &data[..data.len().min(8)];
            return Err(LogError::BadMagic {
                expected: String::from_utf8_lossy(MAGIC).into_owned(),
                found: String::from_utf8_lossy(found).into_owned(),
            });
        }
        let version = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(LogError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
        }
        let header_len = u32::from_le_bytes(data[12..16].try_into().expect("4 bytes")) as usize;
        let header_end = PREAMBLE_LEN + header_len;
        reader.fill(header_end)?;
        let data = reader.available();
        if data.len() < header_end {
            return Err(LogError::Corrupt {
                offset: 12,
                reason: format!("header of {header_len} bytes runs past the end of the file ({} bytes)", data.len()),
            });
        }
        reader.header = serde_json::from_slice(&data[PREAMBLE_LEN..header_end]).map_err(|e| LogError::Corrupt {
            offset: PREAMBLE_LEN as u64,
            reason: format!("header is not valid JSON: {e}"),
        })?;
        reader.consume(header_end);
        Ok(reader)
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    /// Reads until `need` bytes are available or the source ends.
    fn fill(&mut self, need: usize) -> Result<(), LogError> {
        while self.buf.len() - self.start < need && !self.eof {
            if self.start > 0 && self.start >= self.buf.len() / 2 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            // `take` + `read_to_end` appends without zeroing the buffer first.
            let want = READ_CHUNK.max(need) as u64;
            let n = (&mut self.source).take(want).read_to_end(&mut self.buf)?;
            self.eof = n == 0;
        }
        Ok(())
    }

    pub fn header(&self) -> &LogHeader {
        &self.header
    }

    /// Byte offset of the next record frame.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes after the last whole record that do not form a record (a tail cut by a crash, or a
    /// record still being written). Known once `next_event` has returned `Ok(None)`.
    pub fn truncated_tail(&self) -> u64 {
        if self.eof {
            self.available().len() as u64
        } else {
            0
        }
    }

    /// The next whole record; `Ok(None)` at the end or at a truncated tail (see `truncated_tail`).
    pub fn next_event(&mut self) -> Result<Option<Event>, LogError> {
        self.fill(4)?;
        let rest = self.available();
        if rest.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_RECORD_LEN {
            return Err(LogError::Corrupt {
                offset: self.offset,
                reason: format!("record length {len} is outside 1..={MAX_RECORD_LEN}"),
            });
        }
        let end = 4 + len as usize;
        self.fill(end)?;
        let rest = self.available();
        if rest.len() < end {
            return Ok(None);
        }
        match Event::decode(&rest[4..end]) {
            Ok(event) => {
                self.consume(end);
                Ok(Some(event))
            }
            Err(
                e @ (DecodeError::UnknownKind(_)
                | DecodeError::SizeMismatch { .. }
                | DecodeError::NotEnoughBytes { .. }),
            ) => Err(LogError::Corrupt { offset: self.offset + 4, reason: e.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use observer_common::{kind, EventHeader, ExitEvent};

    use super::*;

    fn exit_event(tid: u32) -> Event {
        Event::Exit(ExitEvent {
            header: EventHeader { kind: kind::EXIT, flags: 0, tid, tgid: tid, _pad: 0, ts_ns: tid as u64 },
            comm: *b"worker\0\0\0\0\0\0\0\0\0\0",
        })
    }

    fn write_log(events: &[Event]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.bin");
        let header = LogHeader { record_schema: RECORD_SCHEMA, command: vec!["true".into()], ..Default::default() };
        let mut writer = EventLogWriter::new(File::create(&path).unwrap(), &header).unwrap();
        for e in events {
            writer.append(e).unwrap();
        }
        assert_eq!(writer.finish().unwrap(), events.len() as u64);
        std::fs::read(&path).unwrap()
    }

    fn read_all(data: Vec<u8>) -> (Vec<Event>, u64) {
        let mut reader = EventLogReader::from_bytes(data).unwrap();
        let mut out = Vec::new();
        while let Some(e) = reader.next_event().unwrap() {
            out.push(e);
        }
        (out, reader.truncated_tail())
    }

    #[test]
    fn written_records_read_back_in_order_with_the_header() {
        let events: Vec<Event> = (1..=3).map(exit_event).collect();
        let data = write_log(&events);
        let reader = EventLogReader::from_bytes(data.clone()).unwrap();
        assert_eq!(reader.header().command, vec!["true".to_string()]);
        assert_eq!(read_all(data), (events, 0));
    }

    #[test]
    fn a_truncated_tail_reads_up_to_the_last_whole_record() {
        let events: Vec<Event> = (1..=3).map(exit_event).collect();
        let mut data = write_log(&events);
        data.truncate(data.len() - 5);
        let (read, skipped) = read_all(data);
        assert_eq!(read, events[..2].to_vec());
        assert_eq!(skipped, 4 + 40 - 5);
    }

    #[test]
    fn a_corrupt_length_is_rejected_with_its_offset() {
        let mut data = write_log(&[exit_event(1)]);
        let first = data.len() - 44;
        data[first..first + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut reader = EventLogReader::from_bytes(data).unwrap();
        let err = reader.next_event().unwrap_err().to_string();
        assert!(err.contains(&format!("at byte {first}")), "{err}");
    }

    #[test]
    fn a_failed_write_leaves_the_file_on_its_last_whole_record() {
        // /dev/full fails every write with ENOSPC, like a full disk.
        let Ok(full) = File::options().write(true).open("/dev/full") else { return };
        let mut writer = EventLogWriter { file: full, buf: Vec::new(), written: 100, records: 2, written_records: 2 };
        writer.append(&exit_event(1)).unwrap();
        assert_eq!(writer.bytes(), 144);
        let err = writer.flush().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!((writer.bytes(), writer.records()), (100, 2));
    }

    #[test]
    fn a_foreign_file_is_refused_by_its_magic() {
        let err = EventLogReader::from_bytes(b"ELF\x7f0000000000000000".to_vec()).err().unwrap();
        assert!(matches!(err, LogError::BadMagic { .. }), "{err}");
    }
}
