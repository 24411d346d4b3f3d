//! `trace.<tid>.txt`: one strace-like log per thread. Lines are buffered per thread and appended
//! in chunks, so ten thousand threads never mean ten thousand open files. A thread with more than
//! [`KEEP_HEAD`] + [`KEEP_TAIL`] events keeps its first and last lines and a line saying how many
//! were left out between them (`observer replay --tid` prints them): the text of a thread looping
//! on a call is otherwise most of the run directory, and the start and the end are what is read.
use std::{
    collections::{HashMap, HashSet},
    io::{self, Write},
};

use crate::out_dir::OutDir;

/// Lines kept from the start of a busy thread's log.
pub const KEEP_HEAD: u64 = 50_000;
/// Lines kept from the end of a busy thread's log.
pub const KEEP_TAIL: u64 = 50_000;

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
    /// Threads whose middle is left out: their event count, and how many of their lines were offered.
    busy: HashMap<u32, (u64, u64)>,
    /// Events left out, over all threads.
    left_out: u64,
}

impl TraceFiles {
    pub fn new(dir: &OutDir) -> Self {
        Self {
            dir: dir.clone(),
            created: HashSet::new(),
            pending: HashMap::new(),
            pending_lines: 0,
            busy: HashMap::new(),
            left_out: 0,
        }
    }

    /// Logs for threads with these event counts: a thread with more than [`KEEP_HEAD`] +
    /// [`KEEP_TAIL`] has its middle left out.
    pub fn with_counts(dir: &OutDir, counts: impl IntoIterator<Item = (u32, u64)>) -> Self {
        let mut files = Self::new(dir);
        files.busy = counts.into_iter().filter(|(_, n)| *n > KEEP_HEAD + KEEP_TAIL).map(|(t, n)| (t, (n, 0))).collect();
        files
    }

    /// Whether the thread's next line is written (else it need not be rendered), and the bytes of
    /// text written now: at the first line left out, the lines before it and a line saying what is
    /// left out.
    pub fn keeps_next(&mut self, tid: u32) -> io::Result<(bool, u64)> {
        let Some((total, offered)) = self.busy.get_mut(&tid) else {
            return Ok((true, 0));
        };
        let (total, index) = (*total, *offered);
        *offered += 1;
        let left_out = total - KEEP_HEAD - KEEP_TAIL;
        let mut marker_bytes = 0;
        if index == KEEP_HEAD {
            let mut lines = self.pending.remove(&tid).unwrap_or_default();
            self.pending_lines -= lines.len();
            let last_ts = lines.iter().map(|(ts, _)| *ts).max().unwrap_or(0);
            // Quoted as a shell needs it, on one line whatever the path holds.
            let dir = crate::rundir::shell_join(&[self.dir.path().to_string_lossy().into_owned()]);
            let marker = format!(
                "... {left_out} events of this thread left out here (the first {KEEP_HEAD} and the last {KEEP_TAIL} \
                 are kept); `observer replay {dir} --tid {tid}` prints every one ..."
            );
            marker_bytes = marker.len() as u64 + 1;
            lines.push((last_ts, marker));
            self.write(tid, lines)?;
            self.left_out += left_out;
        }
        Ok((!(KEEP_HEAD..KEEP_HEAD + left_out).contains(&index), marker_bytes))
    }

    /// Events left out of the logs, and of how many threads.
    pub fn left_out(&self) -> (u64, usize) {
        (self.left_out, self.busy.len())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::out_dir::Access;

    #[test]
    fn a_busy_thread_keeps_its_first_and_last_lines_and_says_what_is_left_out_between() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OutDir::open_or_create(&tmp.path().join("run"), Access::OWNER).unwrap();
        let (busy, quiet, total) = (7, 8, KEEP_HEAD + KEEP_TAIL + 5);
        let mut files = TraceFiles::with_counts(&dir, [(busy, total), (quiet, 3)]);
        let mut rendered = 0;
        for i in 0..total {
            if files.keeps_next(busy).unwrap().0 {
                rendered += 1;
                files.append(busy, i, format!("line {i}")).unwrap();
            }
            if i < 3 {
                assert_eq!(files.keeps_next(quiet).unwrap(), (true, 0));
                files.append(quiet, i, format!("quiet {i}")).unwrap();
            }
        }
        files.flush_all().unwrap();
        assert_eq!(rendered, KEEP_HEAD + KEEP_TAIL, "the lines left out are not even rendered");
        assert_eq!(files.left_out(), (5, 1));

        let text = std::fs::read_to_string(dir.join(&TraceFiles::name(busy))).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, KEEP_HEAD + KEEP_TAIL + 1);
        assert_eq!(lines[0], "line 0");
        assert_eq!(lines[KEEP_HEAD as usize - 1], format!("line {}", KEEP_HEAD - 1));
        let marker = lines[KEEP_HEAD as usize];
        assert!(marker.starts_with("... 5 events of this thread left out here"), "{marker}");
        assert!(marker.contains(&format!("--tid {busy}")), "{marker}");
        assert_eq!(lines[KEEP_HEAD as usize + 1], format!("line {}", KEEP_HEAD + 5));
        assert_eq!(*lines.last().unwrap(), format!("line {}", total - 1));

        let quiet_text = std::fs::read_to_string(dir.join(&TraceFiles::name(quiet))).unwrap();
        assert_eq!(quiet_text, "quiet 0\nquiet 1\nquiet 2\n");
    }
}
