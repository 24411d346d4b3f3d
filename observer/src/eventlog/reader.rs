//! Reads `events.bin` of either version as one stream of records, holding only a window of the
//! file in memory (version 1: the next record frame; version 2: one block), and telling a tail cut
//! by a crash (read up to the last whole record or block) from damage (an error with its offset).
use std::{
    fs::File,
    io::{self, Read},
    path::Path,
};

use super::{
    frame::{Frame, FRAME_LEN},
    records::RecordDecoder,
    LogError, LogHeader, MAGIC, MAX_RECORD_LEN, PREAMBLE_LEN, SUPPORTED_VERSIONS,
};
use crate::event::Event;

const READ_CHUNK: usize = 256 * 1024;

/// The block whose records are being handed out (version 2).
struct Block {
    /// Byte offset of its frame in the file.
    at: u64,
    raw: Vec<u8>,
    pos: usize,
    /// Records handed out, and in all.
    done: u32,
    records: u32,
    decoder: RecordDecoder,
    decompressor: zstd::bulk::Decompressor<'static>,
}

/// Reads an event log as a stream: header first, then records one by one.
pub struct EventLogReader {
    source: Box<dyn Read>,
    /// Bytes read but not consumed; `buf[start..]` begins at file offset `offset`.
    buf: Vec<u8>,
    start: usize,
    offset: u64,
    eof: bool,
    header: LogHeader,
    version: u32,
    block: Option<Block>,
    /// The record read last, decoded in place and lent by `lend_event`.
    current: Event,
}

impl EventLogReader {
    pub fn open(path: &Path) -> Result<Self, LogError> {
        Self::from_reader(Box::new(File::open(path)?))
    }

    pub fn from_bytes(data: Vec<u8>) -> Result<Self, LogError> {
        Self::from_reader(Box::new(io::Cursor::new(data)))
    }

    pub fn from_reader(source: Box<dyn Read>) -> Result<Self, LogError> {
        let mut reader = Self {
            source,
            buf: Vec::new(),
            start: 0,
            offset: 0,
            eof: false,
            header: LogHeader::default(),
            version: 0,
            block: None,
            current: Event::Syscall(Default::default()),
        };
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
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(LogError::UnsupportedVersion { found: version });
        }
        let header_len = u32::from_le_bytes(data[12..16].try_into().expect("4 bytes")) as usize;
        reader.version = version;
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

    /// The file's format version (1 or 2).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Byte offset of the next record frame (version 1) or block frame (version 2) in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes after the last whole record (version 1) or block (version 2) that do not form one (a
    /// tail cut by a crash, or one still being written). Known once `next_event` has returned
    /// `Ok(None)`.
    pub fn truncated_tail(&self) -> u64 {
        if self.eof {
            self.available().len() as u64
        } else {
            0
        }
    }

    /// The next whole record; `Ok(None)` at the end or at a truncated tail (see `truncated_tail`).
    pub fn next_event(&mut self) -> Result<Option<Event>, LogError> {
        Ok(self.lend_event()?.copied())
    }

    /// As [`EventLogReader::next_event`], lending the record instead of copying it out: it is
    /// decoded in place, which pays on a log of millions.
    pub fn lend_event(&mut self) -> Result<Option<&Event>, LogError> {
        let read = if self.version == 1 { self.next_framed_record()? } else { self.next_block_record()? };
        Ok(read.then_some(&self.current))
    }

    /// Version 1: a u32 length, then the record, decoded into `current`; `false` at the end.
    fn next_framed_record(&mut self) -> Result<bool, LogError> {
        self.fill(4)?;
        let rest = self.available();
        if rest.len() < 4 {
            return Ok(false);
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
        if self.available().len() < end {
            return Ok(false);
        }
        Event::decode_into(&self.buf[self.start + 4..self.start + end], &mut self.current)
            .map_err(|e| LogError::Corrupt { offset: self.offset + 4, reason: e.to_string() })?;
        self.consume(end);
        Ok(true)
    }

    /// Version 2: the next record of the current block, decoded into `current`, reading the next
    /// block when it is done; `false` at the end.
    fn next_block_record(&mut self) -> Result<bool, LogError> {
        if self.block.as_ref().is_none_or(|b| b.done == b.records) && !self.read_block()? {
            return Ok(false);
        }
        let block = self.block.as_mut().expect("a block was read");
        let corrupt = |block: &Block, reason: String| LogError::Corrupt {
            offset: block.at,
            reason: format!("record {} of {} in the block: {reason}", block.done + 1, block.records),
        };
        let Block { raw, pos, decoder, .. } = block;
        let decoded =
            decoder.decode(raw, pos, MAX_RECORD_LEN as usize).map(|r| Event::decode_into(r, &mut self.current));
        match decoded {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(corrupt(block, e.to_string())),
            Err(e) => return Err(corrupt(block, e.to_string())),
        }
        block.done += 1;
        if block.done == block.records && block.pos != block.raw.len() {
            let after = block.raw.len() - block.pos;
            return Err(corrupt(block, format!("{after} bytes follow the block's last record")));
        }
        Ok(true)
    }

    /// Reads, checks and decompresses the block at the current offset. `false` at the end of the
    /// file or at a cut tail.
    fn read_block(&mut self) -> Result<bool, LogError> {
        self.fill(FRAME_LEN)?;
        let rest = self.available();
        if rest.len() < FRAME_LEN {
            return Ok(false);
        }
        let at = self.offset;
        let corrupt = |reason: String| LogError::Corrupt { offset: at, reason };
        let frame = Frame::parse(rest[..FRAME_LEN].try_into().expect("frame bytes")).map_err(corrupt)?;
        let end = FRAME_LEN + frame.compressed_len as usize;
        self.fill(end)?;
        if self.available().len() < end {
            return Ok(false);
        }
        // The buffer alone is borrowed (not `self`): the block is filled from it.
        let compressed = &self.buf[self.start + FRAME_LEN..self.start + end];
        if crc32fast::hash(compressed) != frame.checksum {
            return Err(corrupt("block checksum mismatch".into()));
        }
        let block = match &mut self.block {
            Some(block) => block,
            None => self.block.insert(Block {
                at,
                raw: Vec::new(),
                pos: 0,
                done: 0,
                records: 0,
                decoder: RecordDecoder::default(),
                decompressor: zstd::bulk::Decompressor::new()?,
            }),
        };
        block.raw.clear();
        block.raw.reserve(frame.raw_len as usize);
        let raw_len = block
            .decompressor
            .decompress_to_buffer(compressed, &mut block.raw)
            .map_err(|e| corrupt(format!("block does not decompress: {e}")))?;
        if raw_len != frame.raw_len as usize {
            return Err(corrupt(format!("block decompresses to {raw_len} bytes, its frame says {}", frame.raw_len)));
        }
        (block.at, block.pos, block.done, block.records) = (at, 0, 0, frame.records);
        block.decoder.reset();
        self.consume(end);
        Ok(true)
    }
}
