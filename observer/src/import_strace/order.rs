//! From placed lines to one stream of calls and lifecycle steps: the order of untimed `-ff` files
//! (by thread creation), and `<unfinished ...>` / `<... resumed>` halves merged into one call, a
//! line at a time (holding only the first halves still waiting for theirs).
use std::collections::{BTreeSet, HashMap, VecDeque};

use super::{
    calls,
    lifecycle::Lifecycle,
    line::{Body, Ret},
};

/// One understood line, placed.
#[derive(Clone, Debug)]
pub struct Item {
    pub file: usize,
    pub line: usize,
    pub tid: u32,
    /// Wall-clock nanoseconds, when the line had a timestamp.
    pub wall: Option<i64>,
    pub body: Body,
}

/// One syscall, both halves merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub name: String,
    pub args: String,
    /// `None`: it never returned in the capture (no `<... resumed>`).
    pub ret: Option<Ret>,
    /// Wall time of entry.
    pub entry: Option<i64>,
    /// Wall time of the line that completed it (or of the thread's end, for one never resumed).
    pub exit: Option<i64>,
    pub duration: Option<u64>,
    /// Only the resumed half was seen: the arguments are incomplete.
    pub partial: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    Syscall(Call),
    Lifecycle(Lifecycle),
}

/// One step of one thread, in stream order; `file`/`line` say where it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub tid: u32,
    /// Wall time of the line this step was completed at.
    pub at: Option<i64>,
    pub kind: OpKind,
    pub file: usize,
    pub line: usize,
}

/// The child a successful clone-family call on this line created.
pub fn created_child(body: &Body) -> Option<u32> {
    let (name, ret) = match body {
        Body::Call { name, ret, .. } | Body::Resumed { name, ret, .. } => (name, ret),
        _ => return None,
    };
    match ret {
        Ret::Value(v) if calls::is_clone(name) && *v > 0 => u32::try_from(*v).ok(),
        _ => None,
    }
}

/// Whether a line stands for something that happened (rather than one of strace's notes).
pub fn is_event(body: &Body) -> bool {
    !matches!(body, Body::Note | Body::Attached(_) | Body::Lifecycle(Lifecycle::Stopped(_) | Lifecycle::Superseded(_)))
}

/// What the order of untimed `-ff` files needs of one file: the tid of its first line and the
/// children its clone calls created, in order.
#[derive(Clone, Debug, Default)]
pub struct Lineage {
    pub tid: Option<u32>,
    pub children: Vec<u32>,
}

/// The order to read untimed `-ff` files in: the command's thread first and then each thread in
/// the order its creation was seen (roots — no creator in the capture — by tid, each followed by
/// what it created, breadth first); the order across threads is then unknown.
pub fn creation_order(files: &[Lineage]) -> Vec<usize> {
    let created: BTreeSet<u32> = files.iter().flat_map(|f| f.children.iter().copied()).collect();
    let file_of: HashMap<u32, usize> = files.iter().enumerate().filter_map(|(i, f)| f.tid.map(|t| (t, i))).collect();
    let mut seq: Vec<usize> = Vec::with_capacity(files.len());
    let mut placed = vec![false; files.len()];
    let mut roots: Vec<usize> =
        (0..files.len()).filter(|&i| files[i].tid.is_none_or(|t| !created.contains(&t))).collect();
    roots.sort_by_key(|&i| files[i].tid);
    for root in roots.into_iter().chain(0..files.len()) {
        if placed[root] {
            continue;
        }
        placed[root] = true;
        let mut queue = VecDeque::from([root]);
        while let Some(f) = queue.pop_front() {
            seq.push(f);
            for child in &files[f].children {
                if let Some(&cf) = file_of.get(child) {
                    if !placed[cf] {
                        placed[cf] = true;
                        queue.push_back(cf);
                    }
                }
            }
        }
    }
    seq
}

/// The first half of a call waiting for its `<... resumed>`.
struct Pending {
    name: String,
    args: String,
    entry: Option<i64>,
    file: usize,
    line: usize,
}

fn never_resumed(p: Pending, tid: u32, end: Option<i64>) -> Op {
    let duration = match (p.entry, end) {
        (Some(a), Some(b)) if b >= a => Some((b - a) as u64),
        _ => None,
    };
    let call = Call { name: p.name, args: p.args, ret: None, entry: p.entry, exit: end, duration, partial: false };
    Op { tid, at: end.or(p.entry), kind: OpKind::Syscall(call), file: p.file, line: p.line }
}

/// Merges the halves of interrupted calls, an item at a time. A call is placed where it completed
/// (as the kernel emits a syscall's record when it returns); one that never resumed is placed at
/// its thread's end, or at the end of the stream ([`Pairer::finish`]).
#[derive(Default)]
pub struct Pairer {
    pending: HashMap<u32, Pending>,
}

impl Pairer {
    /// The steps `item` completes (none, one, or a call never resumed and then the item's own).
    pub fn push(&mut self, item: Item, ops: &mut Vec<Op>) {
        let Item { file, line, tid, wall, body } = item;
        match body {
            Body::Call { name, args, ret, duration } => {
                if let Some(p) = self.pending.remove(&tid) {
                    ops.push(never_resumed(p, tid, wall));
                }
                let call = Call { name, args, ret: Some(ret), entry: wall, exit: None, duration, partial: false };
                ops.push(Op { tid, at: wall, kind: OpKind::Syscall(call), file, line });
            }
            Body::Unfinished { name, args } => {
                if let Some(p) = self.pending.remove(&tid) {
                    ops.push(never_resumed(p, tid, wall));
                }
                self.pending.insert(tid, Pending { name, args, entry: wall, file, line });
            }
            Body::Resumed { name, args, ret, duration } => {
                let first = match self.pending.remove(&tid) {
                    Some(p) if p.name == name => Some(p),
                    Some(p) => {
                        ops.push(never_resumed(p, tid, wall));
                        None
                    }
                    None => None,
                };
                let call = match first {
                    Some(p) => {
                        let args = if args.is_empty() { p.args } else { format!("{} {args}", p.args) };
                        let duration = duration.or(match (p.entry, wall) {
                            (Some(a), Some(b)) if b >= a => Some((b - a) as u64),
                            _ => None,
                        });
                        Call { name, args, ret: Some(ret), entry: p.entry, exit: wall, duration, partial: false }
                    }
                    None => {
                        // Entry was before the capture began (strace -p) or its line is lost.
                        let entry = match (wall, duration) {
                            (Some(w), Some(d)) => Some(w.saturating_sub(i64::try_from(d).unwrap_or(i64::MAX))),
                            _ => wall,
                        };
                        Call { name, args, ret: Some(ret), entry, exit: wall, duration, partial: true }
                    }
                };
                ops.push(Op { tid, at: wall, kind: OpKind::Syscall(call), file, line });
            }
            Body::Lifecycle(step) => {
                if matches!(step, Lifecycle::Exited(_) | Lifecycle::Killed(_)) {
                    if let Some(p) = self.pending.remove(&tid) {
                        ops.push(never_resumed(p, tid, wall));
                    }
                }
                ops.push(Op { tid, at: wall, kind: OpKind::Lifecycle(step), file, line });
            }
            Body::Attached(_) | Body::Note => {}
        }
    }

    /// The calls still waiting at the end of the stream, never resumed, by entry.
    pub fn finish(self, ops: &mut Vec<Op>) {
        let mut rest: Vec<(u32, Pending)> = self.pending.into_iter().collect();
        rest.sort_by_key(|(_, p)| (p.entry, p.file, p.line));
        ops.extend(rest.into_iter().map(|(tid, p)| never_resumed(p, tid, None)));
    }
}

/// Every step of `items`, in order.
#[cfg(test)]
pub fn pair(items: Vec<Item>) -> Vec<Op> {
    let mut pairer = Pairer::default();
    let mut ops = Vec::new();
    items.into_iter().for_each(|item| pairer.push(item, &mut ops));
    pairer.finish(&mut ops);
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import_strace::line::parse;

    fn items(file: usize, tid: Option<u32>, text: &[&str]) -> Vec<Item> {
        text.iter()
            .enumerate()
            .map(|(i, t)| {
                let l = parse(t).unwrap();
                let wall = l.stamp.map(|s| match s {
                    crate::import_strace::stamp::Stamp::Epoch(ns)
                    | crate::import_strace::stamp::Stamp::TimeOfDay(ns)
                    | crate::import_strace::stamp::Stamp::Relative(ns) => ns,
                });
                Item { file, line: i + 1, tid: l.pid.or(tid).unwrap(), wall, body: l.body }
            })
            .collect()
    }

    fn call(op: &Op) -> &Call {
        match &op.kind {
            OpKind::Syscall(c) => c,
            other => panic!("not a call: {other:?}"),
        }
    }

    #[test]
    fn resumed_halves_merge_with_args_from_both_and_the_total_duration() {
        let ops = pair(items(
            0,
            None,
            &[
                "5205  1.000000 wait4(-1,  <unfinished ...>",
                "5206  1.000100 exit_group(0) = ?",
                "5205  1.500000 <... wait4 resumed>[{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 5206",
            ],
        ));
        assert_eq!(ops.len(), 2);
        let wait = call(&ops[1]);
        assert_eq!(wait.args, "-1, [{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL");
        assert_eq!(
            (wait.ret, wait.entry, wait.duration, ops[1].line),
            (Some(Ret::Value(5206)), Some(1_000_000_000), Some(500_000_000), 3)
        );
    }

    #[test]
    fn a_call_never_resumed_ends_unfinished_at_its_thread_end() {
        let ops = pair(items(
            0,
            None,
            &[
                "7  1.000000 futex(0x55d4c3a0, FUTEX_WAIT_PRIVATE, 2, NULL <unfinished ...>",
                "7  3.000000 +++ killed by SIGKILL +++",
                "8  3.500000 nanosleep({tv_sec=1, tv_nsec=0},  <unfinished ...>",
            ],
        ));
        assert_eq!(ops.len(), 3);
        assert_eq!((call(&ops[0]).ret, call(&ops[0]).duration), (None, Some(2_000_000_000)));
        assert_eq!(ops[1].kind, OpKind::Lifecycle(Lifecycle::Killed(9)));
        assert_eq!((call(&ops[2]).name.as_str(), call(&ops[2]).ret, ops[2].tid), ("nanosleep", None, 8));
    }

    #[test]
    fn a_resumed_half_without_its_start_is_kept_as_partial() {
        let ops = pair(items(0, Some(9), &["2.000000 <... read resumed>\"abc\", 832) = 3 <0.500000>"]));
        let read = call(&ops[0]);
        assert!(read.partial);
        assert_eq!(read.entry, Some(1_500_000_000));
    }

    #[test]
    fn untimed_dash_ff_files_follow_thread_creation() {
        let files = [
            Lineage { tid: Some(11), children: vec![] },
            Lineage { tid: Some(12), children: vec![] },
            Lineage { tid: Some(10), children: vec![12, 11] },
        ];
        assert_eq!(creation_order(&files), vec![2, 1, 0]);
    }
}
