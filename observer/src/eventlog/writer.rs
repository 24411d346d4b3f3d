//! Writes `events.bin` version 2: the preamble, then records gathered into blocks, each closed
//! when it holds about 64 KiB or its first record is [`BLOCK_MAX_AGE`] old, compressed and written
//! whole. The file only ever ends on a whole block: when a write fails, what it left of the block
//! is cut off again and the block's records are counted as lost.
use std::{
    fs::File,
    io::{self, Seek, SeekFrom, Write},
    time::{Duration, Instant},
};

use super::{
    frame::{Frame, FRAME_LEN},
    records::{max_encoded_len, RecordEncoder},
    write_preamble, LogHeader, FORMAT_VERSION,
};
use crate::event::Event;

/// A block is closed once its raw records reach this size.
pub const BLOCK_TARGET_LEN: usize = 64 * 1024;
/// A block is closed (at the next `write_due`) once its first record is this old. The capture loop
/// calls `write_due` at least every 20 ms, so a record is on disk within 100 ms of its arrival:
/// that is all an observer killed with SIGKILL loses.
pub const BLOCK_MAX_AGE: Duration = Duration::from_millis(80);
/// zstd level: 1 is the fastest of the standard levels, and higher ones gain little on records
/// (see docs/event-log.md).
const ZSTD_LEVEL: i32 = 1;

/// The block being filled.
struct OpenBlock {
    raw: Vec<u8>,
    records: u32,
    /// When its first record was appended, and that record's timestamp.
    opened: Option<(Instant, u64)>,
    encoder: RecordEncoder,
}

/// Appends records to an event log.
pub struct EventLogWriter {
    file: File,
    block: OpenBlock,
    compressor: zstd::bulk::Compressor<'static>,
    /// Frame and compressed bytes of the block being written.
    out: Vec<u8>,
    /// Bytes in the file, all of them whole blocks (or the preamble).
    written: u64,
    /// Records in the file.
    written_records: u64,
}

impl EventLogWriter {
    /// Starts the log in `file` (new and empty) with `header`.
    pub fn new(mut file: File, header: &LogHeader) -> io::Result<Self> {
        let written = write_preamble(&mut file, FORMAT_VERSION, header)?;
        Ok(Self {
            file,
            block: OpenBlock {
                raw: Vec::with_capacity(2 * BLOCK_TARGET_LEN),
                records: 0,
                opened: None,
                encoder: RecordEncoder::default(),
            },
            compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
            out: Vec::new(),
            written,
            written_records: 0,
        })
    }

    /// Adds `event`, which arrived at `now`; writes the block when it is full.
    pub fn append(&mut self, event: &Event, now: Instant) -> io::Result<()> {
        let block = &mut self.block;
        if block.opened.is_none() {
            block.opened = Some((now, event.header().ts_ns));
        }
        block.encoder.encode(event.as_bytes(), &mut block.raw);
        block.records += 1;
        if block.raw.len() >= BLOCK_TARGET_LEN {
            self.write_block()?;
        }
        Ok(())
    }

    /// Writes the open block if its first record is [`BLOCK_MAX_AGE`] old at `now`.
    pub fn write_due(&mut self, now: Instant) -> io::Result<()> {
        match self.block.opened {
            Some((at, _)) if now.saturating_duration_since(at) >= BLOCK_MAX_AGE => self.write_block(),
            _ => Ok(()),
        }
    }

    /// Writes the open block now, however small.
    pub fn write_pending(&mut self) -> io::Result<()> {
        if self.block.records == 0 {
            return Ok(());
        }
        self.write_block()
    }

    /// Compresses and writes the open block in one write. On failure its records are lost and the
    /// file is cut back to its last whole block.
    fn write_block(&mut self) -> io::Result<()> {
        let result = self.compress_block().and_then(|()| self.file.write_all(&self.out));
        let block = &mut self.block;
        match result {
            Ok(()) => {
                self.written += self.out.len() as u64;
                self.written_records += u64::from(block.records);
            }
            Err(_) => {
                let _ = self.file.set_len(self.written);
                let _ = self.file.seek(SeekFrom::Start(self.written));
            }
        }
        block.raw.clear();
        block.records = 0;
        block.opened = None;
        block.encoder.reset();
        result
    }

    /// Puts the open block's frame and compressed bytes into `out`.
    fn compress_block(&mut self) -> io::Result<()> {
        let raw = &self.block.raw;
        self.out.clear();
        self.out.resize(FRAME_LEN, 0);
        let compressed = self.compressor.compress(raw)?;
        let frame = Frame {
            compressed_len: compressed.len() as u32,
            raw_len: raw.len() as u32,
            records: self.block.records,
            checksum: crc32fast::hash(&compressed),
        };
        self.out[..FRAME_LEN].copy_from_slice(&frame.encode());
        self.out.extend_from_slice(&compressed);
        Ok(())
    }

    /// Bytes in the file: the preamble and whole blocks.
    pub fn bytes(&self) -> u64 {
        self.written
    }

    /// The most bytes the file can hold once `event` is appended and everything is written: the
    /// open block is counted at zstd's bound for its raw size, never less than it compresses to.
    pub fn bytes_with(&self, event: &Event) -> u64 {
        let raw = self.block.raw.len() + max_encoded_len(event.as_bytes().len());
        self.written + (FRAME_LEN + zstd::zstd_safe::compress_bound(raw)) as u64
    }

    /// Records appended and not lost to a failed write.
    pub fn records(&self) -> u64 {
        self.written_records + u64::from(self.block.records)
    }

    /// Timestamp of the first record not yet written (lost if the next write fails).
    pub fn pending_since_ns(&self) -> Option<u64> {
        self.block.opened.map(|(_, ts)| ts)
    }

    /// Points the writer at another file (a test's /dev/full).
    #[cfg(test)]
    pub(super) fn replace_file(&mut self, file: File) {
        self.file = file;
    }

    /// Writes the last block and syncs the file; returns the records in it.
    pub fn finish(mut self) -> io::Result<u64> {
        self.write_pending()?;
        self.file.sync_data()?;
        Ok(self.written_records)
    }
}
