//! Who is who on a timeline: the processes and threads of a capture with their names, and the order
//! a timeline shows them in (the threads of the verdict's chain first). Shared by `report.html`
//! and the Perfetto / Chrome exports, so both name and order threads alike.
use std::collections::{BTreeMap, HashMap};

use observer_common::flags;

use crate::{
    analysis::snapshot::StuckSnapshot,
    event::{c_str, Event},
    processes::ProcessBook,
    render::owner_tid,
};

/// One thread as a timeline shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadLane {
    pub tid: u32,
    pub pid: u32,
    /// Its own name (`comm`), as the kernel last reported it.
    pub comm: String,
    /// One of the threads the verdict's chain is about.
    pub chain: bool,
}

/// One process and its threads, in display order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessLanes {
    pub pid: u32,
    pub comm: String,
    pub parent: Option<u32>,
    /// `code 0`, `signal SIGKILL from pid 12 (kill)`, or empty while it ran on.
    pub exit: String,
    pub chain: bool,
    pub threads: Vec<ThreadLane>,
}

/// Thread names and first appearances, learnt from the event stream (fed every event in order).
#[derive(Default)]
pub struct LaneBook {
    /// tid -> (pid, name, order of first appearance).
    threads: foldhash::HashMap<u32, (u32, String, usize)>,
    /// The (tid, pid) seen last: a thread's events come in runs, and a run without a new name
    /// costs no lookup.
    latest: Option<(u32, u32)>,
}

impl LaneBook {
    fn see(&mut self, tid: u32, pid: u32, name: Option<String>) {
        if tid == 0 || (name.is_none() && self.latest == Some((tid, pid))) {
            return;
        }
        self.latest = Some((tid, pid));
        let next = self.threads.len();
        let entry = self.threads.entry(tid).or_insert_with(|| (pid, String::new(), next));
        entry.0 = pid;
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            entry.1 = name;
        }
    }

    /// `book` must already have observed `event`.
    pub fn observe(&mut self, event: &Event, book: &ProcessBook) {
        let h = event.header();
        match event {
            Event::Fork(f) => {
                self.see(h.tid, h.tgid, None);
                // A new thread starts with its creator's name; a new process with the parent's.
                self.see(f.child_tid, f.child_tgid, Some(c_str(&f.parent_comm)));
            }
            Event::Exec(e) => self.see(h.tid, h.tgid, Some(c_str(&e.comm))),
            Event::Exit(e) => self.see(h.tid, h.tgid, Some(c_str(&e.comm))),
            Event::SignalGenerate(g) => {
                let target = owner_tid(event);
                let pid = book.tgid_of(target).unwrap_or(target);
                // The sender is often outside the capture (observer, a shell): it gets no lane.
                self.see(target, pid, Some(c_str(&g.target_comm)).filter(|_| !self.threads.contains_key(&target)));
            }
            _ => self.see(h.tid, h.tgid, None),
        }
    }

    /// Every thread seen, grouped by process: processes holding `chain` threads first (in chain
    /// order), within a process the chain threads first, then by first appearance. Names from the
    /// stuck snapshot (read from /proc at the time) win over the capture's.
    pub fn lanes(&self, book: &ProcessBook, stuck: Option<&StuckSnapshot>, chain: &[u32]) -> Vec<ProcessLanes> {
        let snapshot_names: HashMap<u32, &str> =
            stuck.map(|s| s.threads().map(|(_, t)| (t.tid, t.comm.as_str())).collect()).unwrap_or_default();
        let rank = |tid: u32| chain.iter().position(|&c| c == tid);
        let mut by_pid: BTreeMap<u32, Vec<(u32, &str, usize)>> = BTreeMap::new();
        for (&tid, (pid, name, order)) in &self.threads {
            by_pid.entry(*pid).or_default().push((tid, name.as_str(), *order));
        }
        let mut processes: Vec<(Option<usize>, usize, ProcessLanes)> = by_pid
            .into_iter()
            .map(|(pid, mut threads)| {
                threads.sort_by_key(|&(tid, _, order)| (rank(tid).unwrap_or(usize::MAX), order));
                let process = book.process(pid);
                let comm = process.map_or_else(String::new, |p| p.comm.clone());
                let lanes: Vec<ThreadLane> = threads
                    .iter()
                    .map(|&(tid, name, _)| ThreadLane {
                        tid,
                        pid,
                        comm: snapshot_names
                            .get(&tid)
                            .map(|s| s.to_string())
                            .or_else(|| (!name.is_empty()).then(|| name.to_string()))
                            .unwrap_or_else(|| comm.clone()),
                        chain: rank(tid).is_some(),
                    })
                    .collect();
                let first_rank = threads.iter().filter_map(|&(tid, _, _)| rank(tid)).min();
                let first_seen = threads.iter().map(|t| t.2).min().unwrap_or(usize::MAX);
                let p = ProcessLanes {
                    pid,
                    comm,
                    parent: process.and_then(|p| p.parent),
                    exit: process
                        .and_then(|p| p.exit.as_ref())
                        .map_or_else(String::new, crate::processes::describe_exit),
                    chain: first_rank.is_some(),
                    threads: lanes,
                };
                (first_rank, first_seen, p)
            })
            .collect();
        processes.sort_by_key(|(rank, first_seen, _)| (rank.unwrap_or(usize::MAX), *first_seen));
        processes.into_iter().map(|(_, _, p)| p).collect()
    }
}

/// What an event that is not a span of time is, on a timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MarkKind {
    /// A syscall that returned an error worth a look.
    Failure,
    /// A failure that is routine (a futex EAGAIN, a timeout, an interrupted wait).
    RoutineFailure,
    /// A signal generated for this thread (sent by someone, or raised by the kernel).
    Signal,
    /// A signal acted on by this thread.
    Delivery,
    /// A fault's siginfo (the address).
    Fault,
    /// A thread or process created by this thread.
    Fork,
    Exec,
    Exit,
    /// A resource limit set (prlimit64 / setrlimit).
    Limit,
    /// The process moved into another cgroup.
    Cgroup,
}

impl MarkKind {
    pub fn name(self) -> &'static str {
        match self {
            MarkKind::Failure => "failure",
            MarkKind::RoutineFailure => "routine-failure",
            MarkKind::Signal => "signal",
            MarkKind::Delivery => "delivery",
            MarkKind::Fault => "fault",
            MarkKind::Fork => "fork",
            MarkKind::Exec => "exec",
            MarkKind::Exit => "exit",
            MarkKind::Limit => "limit",
            MarkKind::Cgroup => "cgroup",
        }
    }

    /// Failures and signals: what a bounded timeline keeps above everything else.
    pub fn essential(self) -> bool {
        matches!(self, MarkKind::Failure | MarkKind::Signal | MarkKind::Delivery | MarkKind::Fault)
    }

    /// The mark an event makes, if any (a syscall that succeeded is a span, not a mark).
    pub fn of(event: &Event) -> Option<MarkKind> {
        match event {
            Event::Syscall(e) if !crate::event::returned(e) => None,
            Event::Syscall(e) => match crate::decode::is_error_return(e.ret) {
                Some(errno) if routine_failure(e.nr, errno) => Some(MarkKind::RoutineFailure),
                Some(_) => Some(MarkKind::Failure),
                None if e.header.flags & flags::AUX_RLIMIT_CUR != 0 => Some(MarkKind::Limit),
                None => None,
            },
            Event::Fork(_) => Some(MarkKind::Fork),
            Event::Exec(_) => Some(MarkKind::Exec),
            Event::Exit(_) => Some(MarkKind::Exit),
            Event::SignalGenerate(_) => Some(MarkKind::Signal),
            Event::SignalDeliver(_) => Some(MarkKind::Delivery),
            Event::Fault(_) => Some(MarkKind::Fault),
            Event::CgroupAttach(_) => Some(MarkKind::Cgroup),
        }
    }
}

/// Calls that wait for something: the pure waits (futex, poll, sleep...), children, and reads and
/// writes (of pipes and sockets, mostly).
pub fn waiting_call(nr: u32) -> bool {
    use observer_common::syscalls::Syscall;
    crate::sinks::stats::only_waits(nr)
        || matches!(Syscall::from_nr(nr), Some(Syscall::Wait4 | Syscall::Waitid | Syscall::Read | Syscall::Write))
}

/// Errors that waiting calls return all the time: a timeout, an interrupted or restarted wait, a
/// futex whose word changed, a non-blocking read with nothing to read.
fn routine_failure(nr: u32, errno: i32) -> bool {
    const EAGAIN: i32 = libc::EAGAIN;
    // 512..=516: the kernel's ERESTART* codes, seen when a signal interrupts a wait.
    waiting_call(nr) && (matches!(errno, EAGAIN | libc::ETIMEDOUT | libc::EINTR) || (512..=516).contains(&errno))
}

/// The threads a timeline shows first: those the given findings name (their thread and the threads
/// of their evidence), each followed through the stuck snapshot to whoever it waits on (a mutex's
/// owner, a joined thread), so the threads of one deadlock stay together.
pub fn chain_threads(findings: &[&crate::analysis::Finding], stuck: Option<&StuckSnapshot>) -> Vec<u32> {
    let waits_on: HashMap<u32, u32> = stuck
        .map(|snap| {
            snap.threads()
                .filter_map(|(_, t)| {
                    let f = t.futex.as_ref()?;
                    Some((t.tid, f.owner_tid.or(f.joining_tid)?))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut tids: Vec<u32> = Vec::new();
    let named = findings.iter().flat_map(|f| std::iter::once(f.tid).chain(f.evidence.iter().filter_map(|e| e.tid)));
    for tid in named {
        let mut next = Some(tid);
        while let Some(tid) = next.filter(|&t| t != 0 && !tids.contains(&t)) {
            tids.push(tid);
            next = waits_on.get(&tid).copied();
        }
    }
    tids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{
        snapshot::{FutexWait, ProcessSnapshot, ThreadSnapshot},
        Finding, Severity, Signature,
    };

    #[test]
    fn the_chain_follows_each_named_thread_to_whoever_it_waits_on_before_the_next() {
        let waits = |tid: u32, owner: u32| ThreadSnapshot {
            tid,
            futex: Some(FutexWait { owner_tid: Some(owner), ..Default::default() }),
            ..Default::default()
        };
        let stuck = StuckSnapshot {
            processes: vec![ProcessSnapshot {
                pid: 10,
                threads: vec![waits(10, 11), waits(11, 12), waits(12, 11)],
                ..Default::default()
            }],
            ..Default::default()
        };
        let deadlock = Finding::new(Signature::Deadlock, Severity::Error, 10, 11, "", vec![]);
        let hang = Finding::new(Signature::HangBlocked, Severity::Warning, 10, 10, "", vec![]);
        assert_eq!(chain_threads(&[&deadlock, &hang], Some(&stuck)), [11, 12, 10]);
        assert_eq!(chain_threads(&[&hang], None), [10]);
    }
}
