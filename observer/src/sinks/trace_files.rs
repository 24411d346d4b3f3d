//! `trace.<tid>.txt`: one strace-like log per thread. Lines are buffered per thread and appended
//! in chunks, so ten thousand threads never mean ten thousand open files.
use std::{
    collections::{HashMap, HashSet},
    io::{self, Write},
};

use crate::out_dir::OutDir;

/// Lines held per thread before they are appended to its file.
const FLUSH_AT: usize = 256;
/// Lines held over all threads before everything is flushed.
const FLUSH_ALL_AT: usize = 64 * 1024;

pub struct TraceFiles {
    dir: OutDir,
    /// Threads whose file exists: created once, appended to after.
    created: HashSet<u32>,
    /// (timestamp, line) per thread. A syscall record arrives when the call returns, after events
    /// that happened during it (the exec inside execve, the fork inside clone), so lines are put
    /// back in timestamp order before they are written.
    pending: HashMap<u32, Vec<(u64, String)>>,
    pending_lines: usize,
}

impl TraceFiles {
    pub fn new(dir: &OutDir) -> Self {
        Self { dir: dir.clone(), created: HashSet::new(), pending: HashMap::new(), pending_lines: 0 }
    }

    pub fn name(tid: u32) -> String {
        format!("trace.{tid}.txt")
    }

    pub fn append(&mut self, tid: u32, ts_ns: u64, line: String) -> io::Result<()> {
        let lines = self.pending.entry(tid).or_default();
        lines.push((ts_ns, line));
        self.pending_lines += 1;
        if lines.len() >= FLUSH_AT {
            let lines = std::mem::take(lines);
            self.pending_lines -= lines.len();
            self.write(tid, lines)?;
        }
        if self.pending_lines >= FLUSH_ALL_AT {
            self.flush_all()?;
        }
        Ok(())
    }

    fn write(&mut self, tid: u32, mut lines: Vec<(u64, String)>) -> io::Result<()> {
        lines.sort_by_key(|(ts, _)| *ts);
        let mut text = String::with_capacity(lines.iter().map(|(_, l)| l.len() + 1).sum());
        for (_, line) in lines {
            text.push_str(&line);
            text.push('\n');
        }
        let mut file = if self.created.insert(tid) {
            self.dir.create(&Self::name(tid))?
        } else {
            self.dir.append(&Self::name(tid))?
        };
        file.write_all(text.as_bytes())
    }

    pub fn flush_all(&mut self) -> io::Result<()> {
        for (tid, lines) in std::mem::take(&mut self.pending) {
            if !lines.is_empty() {
                self.write(tid, lines)?;
            }
        }
        self.pending_lines = 0;
        Ok(())
    }
}
