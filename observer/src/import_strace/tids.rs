//! Which thread each line belongs to, a line at a time. `-ff` files: the file's tid. A single
//! file: the pid prefix; lines without one belong to the only thread being traced at the time
//! (strace drops the prefix then), which at the start is the command's own — its tid comes from
//! `strace: Process N attached`, `set_tid_address`/`gettid` before the first prefixed line, or the
//! file name, else [`UNKNOWN_TID`]. The first read of a file learns that tid ([`MainTid`]); the
//! later reads assign tids with it ([`Tids`]).
use std::collections::BTreeSet;

use super::{
    lifecycle::Lifecycle,
    line::{Body, Line, Ret},
    order::created_child,
};

/// Stands for the thread of lines without a pid prefix when nothing in the file says its tid
/// (above the kernel's PID_MAX_LIMIT, so it is never a real tid).
pub const UNKNOWN_TID: u32 = 0x3fff_ffff;

/// The caller's own tid when a line says it: `set_tid_address(...) = tid`, `gettid() = tid`.
fn says_own_tid(body: &Body) -> Option<u32> {
    match body {
        Body::Call { name, ret: Ret::Value(v), .. } if name == "set_tid_address" || name == "gettid" => {
            u32::try_from(*v).ok().filter(|t| *t > 0)
        }
        _ => None,
    }
}

/// Learns, over a single file's understood lines in order, the tid of its lines without a prefix.
#[derive(Debug)]
pub struct MainTid {
    /// Still before the first prefixed line and the first line that says the tid.
    learning: bool,
    learned: Option<u32>,
    /// Whether some line that stands for something lacks a prefix.
    unprefixed: bool,
}

impl Default for MainTid {
    fn default() -> Self {
        Self { learning: true, learned: None, unprefixed: false }
    }
}

impl MainTid {
    pub fn observe(&mut self, line: &Line) {
        if self.learning {
            if line.pid.is_some() {
                self.learning = false;
            } else {
                self.learned = match &line.body {
                    Body::Attached(tid) => Some(*tid),
                    body => says_own_tid(body),
                };
                self.learning = self.learned.is_none();
            }
        }
        self.unprefixed |= line.pid.is_none() && !matches!(line.body, Body::Note | Body::Attached(_));
    }

    /// The tid of the lines without a prefix (`file_tid`: the number the file's name ends in),
    /// and whether it is the placeholder [`UNKNOWN_TID`] because nothing said it.
    pub fn main(&self, file_tid: Option<u32>) -> (u32, bool) {
        let main = self.learned.or(file_tid);
        (main.unwrap_or(UNKNOWN_TID), self.unprefixed && main.is_none())
    }
}

/// Assigns the tid of each understood line of one file, in order.
#[derive(Debug)]
pub enum Tids {
    /// A `-ff` file: its tid (from its name), unless a line says otherwise.
    PerThread(u32),
    /// A single file: `main` for lines without a prefix while other threads are traced too, else
    /// the only thread alive.
    Single { main: u32, live: BTreeSet<u32> },
}

impl Tids {
    pub fn single(main: u32) -> Self {
        Tids::Single { main, live: BTreeSet::from([main]) }
    }

    pub fn of(&mut self, line: &Line) -> u32 {
        match self {
            Tids::PerThread(tid) => line.pid.unwrap_or(*tid),
            Tids::Single { main, live } => {
                let tid = match (&line.body, line.pid) {
                    (Body::Attached(tid), _) => *tid,
                    (_, Some(pid)) => pid,
                    _ if live.len() == 1 => live.first().copied().unwrap_or(*main),
                    _ => *main,
                };
                live.insert(tid);
                if let Some(child) = created_child(&line.body) {
                    live.insert(child);
                }
                if matches!(line.body, Body::Lifecycle(Lifecycle::Exited(_) | Lifecycle::Killed(_))) {
                    live.remove(&tid);
                }
                tid
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import_strace::line::parse;

    fn assign(file_tid: Option<u32>, text: &[&str]) -> (Vec<u32>, bool) {
        let lines: Vec<Line> = text.iter().map(|t| parse(t).unwrap()).collect();
        let mut learner = MainTid::default();
        lines.iter().for_each(|l| learner.observe(l));
        let (main, placeholder) = learner.main(file_tid);
        let mut tids = Tids::single(main);
        (lines.iter().map(|l| tids.of(l)).collect(), placeholder)
    }

    #[test]
    fn unprefixed_lines_belong_to_the_only_traced_thread() {
        let lines = [
            "set_tid_address(0x7f2e4fcaea10) = 5345",
            "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 5346",
            "[pid  5346] exit_group(0) = ?",
            "[pid  5346] +++ exited with 0 +++",
            "exit_group(0) = ?",
        ];
        assert_eq!(assign(None, &lines), (vec![5345, 5345, 5346, 5346, 5345], false));
        assert_eq!(assign(None, &["exit_group(0) = ?"]), (vec![UNKNOWN_TID], true));
        assert_eq!(assign(Some(42), &["exit_group(0) = ?"]), (vec![42], false));
    }

    #[test]
    fn the_tid_is_learned_only_before_the_first_prefixed_line() {
        let lines = ["brk(NULL) = 0x1000", "[pid 7] brk(NULL) = 0x1000", "gettid() = 9", "brk(NULL) = 0x1000"];
        assert_eq!(assign(Some(3), &lines).0, vec![3, 7, 3, 3]);
        let attached = ["strace: Process 11 attached", "brk(NULL) = 0x1000"];
        assert_eq!(assign(None, &attached), (vec![11, 11], false));
    }
}
