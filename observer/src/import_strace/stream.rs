//! The input as one stream of steps, read again from the files each time it is needed, holding
//! one line per open file and the calls waiting for their other half. A single file keeps its
//! order. Timed `-ff` files are merged by time, each file keeping its own order (a thread's lines
//! are in the order it made them); a file is opened when the merge reaches its first time and
//! closed at its end, so only the threads alive at one moment are open at once. Untimed `-ff`
//! files are read one after the other in the order their threads were created.
use std::{cmp::Reverse, collections::BinaryHeap, ops::ControlFlow};

use super::{
    cursor::{Cursor, Start},
    order::{self, Item, Op, Pairer},
    source::Layout,
    survey::Survey,
    ImportError,
};

/// How the files are read into one stream.
pub struct Plan {
    starts: Vec<Start>,
    order: Order,
}

enum Order {
    /// One file after another, in this order.
    Sequence(Vec<usize>),
    /// By time; per file, when its first timed line happened (`i64::MAX`: never).
    ByTime(Vec<i64>),
}

impl Plan {
    pub fn new(survey: &Survey) -> Self {
        let starts: Vec<Start> = survey.files.iter().map(|f| f.start.clone()).collect();
        let order = match survey.layout {
            Layout::Single => Order::Sequence((0..starts.len()).collect()),
            Layout::PerThread if survey.timed => {
                Order::ByTime(survey.files.iter().map(|f| f.first_wall().unwrap_or(i64::MAX)).collect())
            }
            Layout::PerThread => {
                let lineages: Vec<order::Lineage> = survey.files.iter().map(|f| f.lineage.clone()).collect();
                Order::Sequence(order::creation_order(&lineages))
            }
        };
        Self { starts, order }
    }

    /// Every step of the input, in order, to `each` until it breaks.
    pub fn for_each_op(&self, mut each: impl FnMut(Op) -> ControlFlow<()>) -> Result<(), ImportError> {
        let mut items = Merge::new(self);
        let mut pairer = Pairer::default();
        let mut ops = Vec::new();
        while let Some(item) = items.next_item()? {
            pairer.push(item, &mut ops);
            for op in ops.drain(..) {
                if each(op).is_break() {
                    return Ok(());
                }
            }
        }
        pairer.finish(&mut ops);
        for op in ops {
            if each(op).is_break() {
                break;
            }
        }
        Ok(())
    }
}

enum Merge<'a> {
    Sequence {
        starts: &'a [Start],
        rest: std::slice::Iter<'a, usize>,
        /// Boxed: a cursor is large beside the other way of merging.
        current: Option<Box<Cursor>>,
    },
    ByTime {
        starts: &'a [Start],
        /// Per file, when the merge places its next item (then its index), earliest on top.
        next: BinaryHeap<Reverse<(i64, usize)>>,
        /// Per file: open with its next item, once the merge reached its first time.
        open: Vec<Option<(Cursor, Item)>>,
        /// Per file, the time of its last timed item: one without a time stays where it is.
        carried: Vec<i64>,
    },
}

impl<'a> Merge<'a> {
    fn new(plan: &'a Plan) -> Self {
        match &plan.order {
            Order::Sequence(order) => Merge::Sequence { starts: &plan.starts, rest: order.iter(), current: None },
            Order::ByTime(first) => Merge::ByTime {
                starts: &plan.starts,
                next: first.iter().enumerate().map(|(i, &at)| Reverse((at, i))).collect(),
                open: first.iter().map(|_| None).collect(),
                carried: first.clone(),
            },
        }
    }

    fn next_item(&mut self) -> Result<Option<Item>, ImportError> {
        match self {
            Merge::Sequence { starts, rest, current } => loop {
                if let Some(cursor) = current {
                    if let Some(item) = cursor.next_item()? {
                        return Ok(Some(item));
                    }
                }
                let Some(&next) = rest.next() else { return Ok(None) };
                *current = Some(Box::new(Cursor::open(next, &starts[next])?));
            },
            Merge::ByTime { starts, next, open, carried } => loop {
                let Some(Reverse((_, file))) = next.pop() else { return Ok(None) };
                let (mut cursor, item) = match open[file].take() {
                    Some(open) => open,
                    None => {
                        // Opened when the merge reaches it: its first item is at its first time.
                        let mut cursor = Cursor::open(file, &starts[file])?;
                        match cursor.next_item()? {
                            Some(first) => (cursor, first),
                            None => continue,
                        }
                    }
                };
                if let Some(following) = cursor.next_item()? {
                    carried[file] = following.wall.unwrap_or(carried[file]);
                    next.push(Reverse((carried[file], file)));
                    open[file] = Some((cursor, following));
                }
                return Ok(Some(item));
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::import_strace::{source::discover, survey::survey};

    fn write(dir: &Path, name: &str, lines: &[&str]) {
        std::fs::write(dir.join(name), lines.join("\n") + "\n").unwrap();
    }

    /// (tid, line) of every step of the capture in `dir`, and what `during` saw at each.
    fn steps<T>(dir: &Path, mut during: impl FnMut() -> T) -> (Vec<(u32, usize)>, Vec<T>) {
        let (layout, files) = discover(dir).unwrap();
        let plan = Plan::new(&survey(layout, files).unwrap());
        let (mut steps, mut seen) = (Vec::new(), Vec::new());
        plan.for_each_op(|op| {
            steps.push((op.tid, op.line));
            seen.push(during());
            ControlFlow::Continue(())
        })
        .unwrap();
        (steps, seen)
    }

    #[test]
    fn timed_dash_ff_files_merge_by_time_each_keeping_its_own_order() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "t.1",
            &["10:00:01.0 brk(NULL) = 0x1000", "10:00:03.0 brk(NULL) = 0x1000", "10:00:02.5 brk(NULL) = 0x1000"],
        );
        write(dir.path(), "t.2", &["10:00:02.0 brk(NULL) = 0x1000", "10:00:03.0 brk(NULL) = 0x1000"]);
        let (steps, _) = steps(dir.path(), || ());
        // Equal times: the lower file first. A time going back stays where its thread made it.
        assert_eq!(steps, vec![(1, 1), (2, 1), (1, 2), (1, 3), (2, 2)]);
    }

    #[test]
    fn untimed_dash_ff_files_follow_thread_creation() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "t.10",
            &["clone(child_stack=NULL, flags=SIGCHLD) = 12", "clone(child_stack=NULL, flags=SIGCHLD) = 11"],
        );
        write(dir.path(), "t.11", &["exit_group(0) = ?"]);
        write(dir.path(), "t.12", &["exit_group(0) = ?"]);
        let tids: Vec<u32> = steps(dir.path(), || ()).0.into_iter().map(|(t, _)| t).collect();
        assert_eq!(tids, vec![10, 10, 12, 11]);
    }

    /// Files of the capture in `dir` open in this process.
    fn open_files(dir: &Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| target.starts_with(dir))
            .count()
    }

    #[test]
    fn a_file_is_open_only_while_its_thread_is_alive() {
        let dir = tempfile::tempdir().unwrap();
        let parent = ["10:00:01.0 brk(NULL) = 0x1000", "10:00:05.0 brk(NULL) = 0x1000", "10:00:09.0 exit_group(0) = ?"];
        write(dir.path(), "t.1", &parent);
        write(dir.path(), "t.2", &["10:00:02.0 brk(NULL) = 0x1000", "10:00:03.0 exit(0) = ?"]);
        write(dir.path(), "t.3", &["10:00:06.0 brk(NULL) = 0x1000", "10:00:07.0 exit(0) = ?"]);
        let (steps, open) = steps(dir.path(), || open_files(dir.path()));
        assert_eq!(steps.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1, 2, 2, 1, 3, 3, 1]);
        // A file opens at its first line and closes after its last: 2 and 3 are never open together.
        assert_eq!(open, vec![1, 2, 1, 1, 2, 1, 0], "{steps:?}");
    }
}
