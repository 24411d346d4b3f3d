//! Processes and threads, which strace does not tell apart (it shows tids): inferred from what
//! clone / clone3 / fork / vfork returned — CLONE_THREAD makes a thread of the caller's process,
//! anything else a new process — with every tid that nobody created being a process of its own.
use std::collections::HashMap;

use super::{
    calls,
    line::Ret,
    order::{Op, OpKind},
};

/// How a task came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Creation {
    pub parent: u32,
    pub thread: bool,
    /// Wall time the creating call returned, when known.
    pub at: Option<i64>,
}

#[derive(Clone, Debug, Default)]
pub struct Family {
    pub created: HashMap<u32, Creation>,
    /// Clone-family calls whose flags were not readable (their child counted as a process).
    pub unknown_kind: u64,
    /// The process of every created task, once all are known ([`Family::settle`]).
    tgid: HashMap<u32, u32>,
}

impl Family {
    /// Learns who created whom from one step of the stream.
    pub fn observe(&mut self, op: &Op) {
        let OpKind::Syscall(call) = &op.kind else { return };
        let Some(Ret::Value(child)) = call.ret else { return };
        if !calls::is_clone(&call.name) || child <= 0 {
            return;
        }
        let Ok(child) = u32::try_from(child) else { return };
        let thread = calls::build(&call.name, &call.args).and_then(|b| calls::creates_thread(&call.name, &b));
        if thread.is_none() {
            self.unknown_kind += 1;
        }
        let at = call.exit.or(match (call.entry, call.duration) {
            (Some(e), Some(d)) => Some(e.saturating_add(i64::try_from(d).unwrap_or(i64::MAX))),
            (e, _) => e,
        });
        self.created.entry(child).or_insert(Creation { parent: op.tid, thread: thread.unwrap_or(false), at });
    }

    /// Resolves the process of every task once the whole stream was seen.
    pub fn settle(&mut self) {
        self.tgid = self.created.keys().map(|&tid| (tid, self.resolve(tid))).collect();
    }

    /// Reads who created whom from a whole stream.
    #[cfg(test)]
    pub fn infer(ops: &[Op]) -> Family {
        let mut family = Family::default();
        ops.iter().for_each(|op| family.observe(op));
        family.settle();
        family
    }

    /// Follows thread parents up to the process (bounded, so a bogus cycle cannot hang).
    fn resolve(&self, tid: u32) -> u32 {
        let mut current = tid;
        for _ in 0..4096 {
            match self.created.get(&current) {
                Some(c) if c.thread && c.parent != current => current = c.parent,
                _ => return current,
            }
        }
        current
    }

    /// The process of `tid` (a task nobody created is a process of its own).
    pub fn tgid(&self, tid: u32) -> u32 {
        self.tgid.get(&tid).copied().unwrap_or(tid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import_strace::order::Call;

    fn clone_op(tid: u32, name: &str, args: &str, child: i64) -> Op {
        let call = Call {
            name: name.into(),
            args: args.into(),
            ret: Some(Ret::Value(child)),
            entry: Some(10),
            exit: None,
            duration: Some(5),
            partial: false,
        };
        Op { tid, at: Some(10), kind: OpKind::Syscall(call), file: 0, line: 1 }
    }

    #[test]
    fn clone_thread_makes_a_thread_of_the_callers_process_and_fork_a_process() {
        let ops = vec![
            clone_op(100, "clone3", "{flags=CLONE_VM|CLONE_THREAD|CLONE_SIGHAND, exit_signal=0}, 88", 101),
            clone_op(101, "clone3", "{flags=CLONE_VM|CLONE_THREAD|CLONE_SIGHAND, exit_signal=0}, 88", 102),
            clone_op(
                102,
                "clone",
                "child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f",
                200,
            ),
            clone_op(200, "vfork", "", 300),
        ];
        let f = Family::infer(&ops);
        assert_eq!([f.tgid(100), f.tgid(101), f.tgid(102), f.tgid(200), f.tgid(300)], [100, 100, 100, 200, 300]);
        assert_eq!(f.created[&101], Creation { parent: 100, thread: true, at: Some(15) });
        assert_eq!(f.created[&200].parent, 102);
        assert_eq!(f.tgid(999), 999, "an unknown tid is a process of its own");
    }

    #[test]
    fn a_failed_clone_creates_nothing() {
        let f = Family::infer(&[clone_op(100, "clone3", "{flags=CLONE_THREAD}, 88", -11)]);
        assert!(f.created.is_empty());
    }

    #[test]
    fn unreadable_clone3_flags_count_as_a_process() {
        let f = Family::infer(&[clone_op(100, "clone3", "0x7ffd0000, 88", 101)]);
        assert_eq!((f.tgid(101), f.unknown_kind), (101, 1));
    }
}
