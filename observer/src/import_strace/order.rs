//! From parsed lines to one ordered stream of calls and lifecycle steps: which thread each line
//! belongs to, the order of lines across `-ff` files (by timestamp, else by thread creation), and
//! `<unfinished ...>` / `<... resumed>` halves merged into one call.
use std::collections::{BTreeSet, HashMap};

use super::{
    calls,
    lifecycle::Lifecycle,
    line::{Body, Line, Ret},
    source::Layout,
};

/// Stands for the thread of lines without a pid prefix when nothing in the file says its tid
/// (above the kernel's PID_MAX_LIMIT, so it is never a real tid).
pub const UNKNOWN_TID: u32 = 0x3fff_ffff;

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
fn created_child(body: &Body) -> Option<u32> {
    let (name, ret) = match body {
        Body::Call { name, ret, .. } | Body::Resumed { name, ret, .. } => (name, ret),
        _ => return None,
    };
    match ret {
        Ret::Value(v) if calls::is_clone(name) && *v > 0 => u32::try_from(*v).ok(),
        _ => None,
    }
}

/// The caller's own tid when a line says it: `set_tid_address(...) = tid`, `gettid() = tid`.
fn says_own_tid(body: &Body) -> Option<u32> {
    match body {
        Body::Call { name, ret: Ret::Value(v), .. } if name == "set_tid_address" || name == "gettid" => {
            u32::try_from(*v).ok().filter(|t| *t > 0)
        }
        _ => None,
    }
}

/// The tid of every line of one file. `-ff` files: the file's tid. A single file: the pid prefix;
/// lines without one belong to the only thread being traced at the time (strace drops the prefix
/// then), which at the start is the command's own — its tid comes from `strace: Process N
/// attached`, `set_tid_address`/`gettid`, or the file name, else [`UNKNOWN_TID`]. Returns
/// whether the placeholder was needed.
pub fn assign_tids(layout: Layout, file_tid: Option<u32>, lines: &[(usize, Line)]) -> (Vec<u32>, bool) {
    if layout == Layout::PerThread {
        let tid = file_tid.unwrap_or(UNKNOWN_TID);
        return (lines.iter().map(|(_, l)| l.pid.unwrap_or(tid)).collect(), file_tid.is_none());
    }
    let mut learned = None;
    for (_, l) in lines {
        if l.pid.is_some() {
            break;
        }
        learned = match &l.body {
            Body::Attached(tid) => Some(*tid),
            body => says_own_tid(body),
        };
        if learned.is_some() {
            break;
        }
    }
    let unprefixed = lines.iter().any(|(_, l)| l.pid.is_none() && !matches!(l.body, Body::Note | Body::Attached(_)));
    let main = learned.or(file_tid);
    let placeholder = unprefixed && main.is_none();
    let main = main.unwrap_or(UNKNOWN_TID);
    let mut live: BTreeSet<u32> = BTreeSet::from([main]);
    let mut tids = Vec::with_capacity(lines.len());
    for (_, l) in lines {
        let tid = match (&l.body, l.pid) {
            (Body::Attached(tid), _) => *tid,
            (_, Some(pid)) => pid,
            _ if live.len() == 1 => live.first().copied().unwrap_or(main),
            _ => main,
        };
        tids.push(tid);
        live.insert(tid);
        if let Some(child) = created_child(&l.body) {
            live.insert(child);
        }
        if matches!(l.body, Body::Lifecycle(Lifecycle::Exited(_) | Lifecycle::Killed(_))) {
            live.remove(&tid);
        }
    }
    (tids, placeholder)
}

/// Whether a line stands for something that happened (rather than one of strace's notes).
pub fn is_event(body: &Body) -> bool {
    !matches!(body, Body::Note | Body::Attached(_) | Body::Lifecycle(Lifecycle::Stopped(_) | Lifecycle::Superseded(_)))
}

/// All items in one stream. A single file keeps its order. `-ff` files are merged by timestamp
/// when every line has one; otherwise file after file, the command's thread first and then each
/// thread in the order its creation was seen — the order across threads is then unknown.
pub fn order(layout: Layout, files: Vec<Vec<Item>>, timed: bool) -> Vec<Item> {
    if layout == Layout::Single || files.len() <= 1 {
        return files.into_iter().flatten().collect();
    }
    if timed {
        let mut all: Vec<Item> = files.into_iter().flatten().collect();
        // Stable: equal times keep file order, and each file's own order.
        all.sort_by_key(|i| (i.wall.unwrap_or(i64::MAX), i.file));
        return all;
    }
    let tid_of_file: Vec<Option<u32>> = files.iter().map(|f| f.first().map(|i| i.tid)).collect();
    let mut children_of: Vec<Vec<u32>> = Vec::with_capacity(files.len());
    let mut created = BTreeSet::new();
    for f in &files {
        let children: Vec<u32> = f.iter().filter_map(|i| created_child(&i.body)).collect();
        created.extend(children.iter().copied());
        children_of.push(children);
    }
    let file_of: HashMap<u32, usize> = tid_of_file.iter().enumerate().filter_map(|(i, t)| t.map(|t| (t, i))).collect();
    let mut seq: Vec<usize> = Vec::with_capacity(files.len());
    let mut placed = vec![false; files.len()];
    // Roots (no creator in the capture) by tid, each followed by what it created, breadth first.
    let mut roots: Vec<usize> =
        (0..files.len()).filter(|&i| tid_of_file[i].is_none_or(|t| !created.contains(&t))).collect();
    roots.sort_by_key(|&i| tid_of_file[i]);
    for root in roots.into_iter().chain(0..files.len()) {
        if placed[root] {
            continue;
        }
        placed[root] = true;
        let mut queue = std::collections::VecDeque::from([root]);
        while let Some(f) = queue.pop_front() {
            seq.push(f);
            for child in &children_of[f] {
                if let Some(&cf) = file_of.get(child) {
                    if !placed[cf] {
                        placed[cf] = true;
                        queue.push_back(cf);
                    }
                }
            }
        }
    }
    let mut files: Vec<Option<Vec<Item>>> = files.into_iter().map(Some).collect();
    seq.into_iter().filter_map(|f| files[f].take()).flatten().collect()
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

/// Merges the halves of interrupted calls. A call is placed where it completed (as the kernel
/// emits a syscall's record when it returns); one that never resumed is placed at its thread's
/// end, or at the end of the stream.
pub fn pair(items: Vec<Item>) -> Vec<Op> {
    let mut ops = Vec::with_capacity(items.len());
    let mut pending: HashMap<u32, Pending> = HashMap::new();
    for item in items {
        let Item { file, line, tid, wall, body } = item;
        match body {
            Body::Call { name, args, ret, duration } => {
                if let Some(p) = pending.remove(&tid) {
                    ops.push(never_resumed(p, tid, wall));
                }
                let call = Call { name, args, ret: Some(ret), entry: wall, exit: None, duration, partial: false };
                ops.push(Op { tid, at: wall, kind: OpKind::Syscall(call), file, line });
            }
            Body::Unfinished { name, args } => {
                if let Some(p) = pending.remove(&tid) {
                    ops.push(never_resumed(p, tid, wall));
                }
                pending.insert(tid, Pending { name, args, entry: wall, file, line });
            }
            Body::Resumed { name, args, ret, duration } => {
                let first = match pending.remove(&tid) {
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
                    if let Some(p) = pending.remove(&tid) {
                        ops.push(never_resumed(p, tid, wall));
                    }
                }
                ops.push(Op { tid, at: wall, kind: OpKind::Lifecycle(step), file, line });
            }
            Body::Attached(_) | Body::Note => {}
        }
    }
    let mut rest: Vec<(u32, Pending)> = pending.into_iter().collect();
    rest.sort_by_key(|(_, p)| (p.entry, p.file, p.line));
    ops.extend(rest.into_iter().map(|(tid, p)| never_resumed(p, tid, None)));
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
    fn unprefixed_lines_belong_to_the_only_traced_thread() {
        let lines: Vec<(usize, Line)> = [
            "set_tid_address(0x7f2e4fcaea10) = 5345",
            "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 5346",
            "[pid  5346] exit_group(0) = ?",
            "[pid  5346] +++ exited with 0 +++",
            "exit_group(0) = ?",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| (i + 1, parse(t).unwrap()))
        .collect();
        assert_eq!(assign_tids(Layout::Single, None, &lines), (vec![5345, 5345, 5346, 5346, 5345], false));
        let bare: Vec<(usize, Line)> = vec![(1, parse("exit_group(0) = ?").unwrap())];
        assert_eq!(assign_tids(Layout::Single, None, &bare), (vec![UNKNOWN_TID], true));
        assert_eq!(assign_tids(Layout::Single, Some(42), &bare), (vec![42], false));
    }

    #[test]
    fn untimed_dash_ff_files_follow_thread_creation() {
        let parent = items(
            0,
            Some(10),
            &["clone(child_stack=NULL, flags=SIGCHLD) = 12", "clone(child_stack=NULL, flags=SIGCHLD) = 11"],
        );
        let eleven = items(1, Some(11), &["exit_group(0) = ?"]);
        let twelve = items(2, Some(12), &["exit_group(0) = ?"]);
        let out = order(Layout::PerThread, vec![eleven, twelve, parent], false);
        assert_eq!(out.iter().map(|i| i.tid).collect::<Vec<_>>(), vec![10, 10, 12, 11]);
    }

    #[test]
    fn timed_dash_ff_files_merge_by_time() {
        let a = items(0, Some(1), &["1.0 brk(NULL) = 0x1000", "3.0 brk(NULL) = 0x1000"]);
        let b = items(1, Some(2), &["2.0 brk(NULL) = 0x1000"]);
        let out = order(Layout::PerThread, vec![a, b], true);
        assert_eq!(out.iter().map(|i| i.tid).collect::<Vec<_>>(), vec![1, 2, 1]);
    }
}
