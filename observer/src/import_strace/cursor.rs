//! One file read again, a line at a time, as placed items: each understood line with its number,
//! its thread and its wall time — what the first read learned of the file (its byte length, the
//! tid of its unprefixed lines, the dating of its times) makes every later read the same.
use super::{
    line::{self, Untangle},
    order::Item,
    source::{RawLines, SourceFile},
    stamp::{Dating, DayRoller},
    tids::Tids,
    ImportError,
};

/// Where one file's later reads start from.
#[derive(Clone, Debug)]
pub struct Start {
    pub file: SourceFile,
    /// Bytes the first read found: a later read stops there.
    pub bytes: u64,
    pub tids: TidsFrom,
    pub dating: Dating,
}

/// How a file's lines get their tid.
#[derive(Clone, Copy, Debug)]
pub enum TidsFrom {
    /// A `-ff` file's tid.
    PerThread(u32),
    /// A single file's unprefixed lines' tid.
    Single(u32),
}

pub struct Cursor {
    /// The file's index in the import.
    index: usize,
    lines: Untangle<RawLines>,
    tids: Tids,
    roller: DayRoller,
    dating: Dating,
}

impl Cursor {
    pub fn open(index: usize, start: &Start) -> Result<Self, ImportError> {
        let tids = match start.tids {
            TidsFrom::PerThread(tid) => Tids::PerThread(tid),
            TidsFrom::Single(main) => Tids::single(main),
        };
        Ok(Self {
            index,
            lines: Untangle::new(RawLines::open(&start.file, start.bytes)?),
            tids,
            roller: DayRoller::default(),
            dating: start.dating,
        })
    }

    /// The next understood line, placed; `None` at the end of the file.
    pub fn next_item(&mut self) -> Result<Option<Item>, ImportError> {
        for (number, text) in self.lines.by_ref() {
            if text.trim().is_empty() {
                continue;
            }
            let Some(line) = line::parse(&text) else { continue };
            let tid = self.tids.of(&line);
            let wall = self.dating.wall(self.roller.roll(line.stamp));
            return Ok(Some(Item { file: self.index, line: number, tid, wall, body: line.body }));
        }
        self.lines.lines().finish()?;
        Ok(None)
    }
}
