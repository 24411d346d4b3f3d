//! Process trees of a host-wide watch and their flight recorders: the last N seconds / M events
//! of each tree, kept so an incident can show the run-up to a failure. A tree is a process group:
//! a child starts in its parent's, and moves with `setsid` / `setpgid` (a daemon, a job of a
//! shell, a service started by PID 1 is a tree of its own). A tree whose processes are all gone is
//! dropped after a short linger, so memory stays bounded.
use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    time::{Duration, Instant},
};

use observer_common::{flags, syscalls::Syscall, SyscallEvent};

use crate::{event::Event, proc::task::process_stat};

/// Bounds of one flight recorder.
#[derive(Clone, Copy, Debug)]
pub struct RecorderBounds {
    pub max_events: usize,
    pub max_age: Duration,
}

/// One tree's recent events and live processes.
#[derive(Default)]
pub struct Tree {
    pub events: VecDeque<Event>,
    pub alive: BTreeSet<u32>,
    pub dead_since: Option<Instant>,
    /// Bytes of events held (for the memory gauge).
    bytes: usize,
}

impl Tree {
    fn push(&mut self, event: Event, bounds: RecorderBounds) {
        let ts = event.header().ts_ns;
        self.bytes += std::mem::size_of::<Event>();
        self.events.push_back(event);
        let max_age = bounds.max_age.as_nanos() as u64;
        while self.events.len() > bounds.max_events
            || self.events.front().is_some_and(|e| ts.saturating_sub(e.header().ts_ns) > max_age)
        {
            self.events.pop_front();
            self.bytes -= std::mem::size_of::<Event>();
        }
    }
}

/// Every tree seen, keyed by process group.
pub struct Trees {
    tree_of: HashMap<u32, u32>,
    trees: HashMap<u32, Tree>,
    /// Processes whose end was recorded, until the linger is over: a parent's fork record can
    /// arrive after its child has already run and exited (the fork tracepoint fires once the
    /// child is running), and must not bring it back to life.
    exited: HashMap<u32, Instant>,
    bounds: RecorderBounds,
    linger: Duration,
}

impl Trees {
    pub fn new(bounds: RecorderBounds, linger: Duration) -> Self {
        Self { tree_of: HashMap::new(), trees: HashMap::new(), exited: HashMap::new(), bounds, linger }
    }

    /// The tree of a process: known, or its process group read from /proc at first sight.
    pub fn tree_of(&mut self, tgid: u32) -> u32 {
        if let Some(t) = self.tree_of.get(&tgid) {
            return *t;
        }
        let tree = process_stat(tgid).map_or(tgid, |s| if s.pgrp == 0 { tgid } else { s.pgrp });
        self.tree_of.insert(tgid, tree);
        tree
    }

    /// A successful `setsid` / `setpgid` moves a process to another tree from then on.
    fn follow_group_change(&mut self, e: &SyscallEvent) {
        if e.header.flags & (flags::UNFINISHED | flags::NO_RETURN) != 0 {
            return;
        }
        let (moved, group) = match Syscall::from_nr(e.nr) {
            // setsid returns the new session id, which is also the new process group.
            Some(Syscall::Setsid) if e.ret > 0 => (e.header.tgid, e.ret as u32),
            Some(Syscall::Setpgid) if e.ret == 0 => {
                let pid = if e.args[0] == 0 { e.header.tgid } else { e.args[0] as u32 };
                (pid, if e.args[1] == 0 { pid } else { e.args[1] as u32 })
            }
            _ => return,
        };
        let old = self.tree_of(moved);
        if old == group {
            return;
        }
        self.tree_of.insert(moved, group);
        if let Some(t) = self.trees.get_mut(&old) {
            t.alive.remove(&moved);
            if t.alive.is_empty() {
                t.dead_since = Some(Instant::now());
            }
        }
        let t = self.trees.entry(group).or_default();
        t.alive.insert(moved);
        t.dead_since = None;
    }

    /// Files an event in its tree's recorder; returns the tree.
    pub fn record(&mut self, event: &Event) -> u32 {
        let h = *event.header();
        if let Event::Syscall(e) = event {
            self.follow_group_change(e);
        }
        let tree = self.tree_of(h.tgid);
        if let Event::Fork(f) = event {
            if f.header.flags & flags::THREAD == 0 && !self.exited.contains_key(&f.child_tgid) {
                // A child starts in its parent's group, unless its own records came first and
                // placed it already.
                let child_tree = *self.tree_of.entry(f.child_tgid).or_insert(tree);
                let t = self.trees.entry(child_tree).or_default();
                t.alive.insert(f.child_tgid);
                t.dead_since = None;
            }
        }
        if matches!(event, Event::Exit(x) if x.header.flags & flags::GROUP_DEAD != 0) {
            self.exited.insert(h.tgid, Instant::now());
        }
        let t = self.trees.entry(tree).or_default();
        match event {
            Event::Exit(x) if x.header.flags & flags::GROUP_DEAD != 0 => {
                t.alive.remove(&h.tgid);
            }
            // A signal's record is its sender's, and the last one a process sends (SIGCHLD to
            // its parent) comes after its exit: it proves nothing alive. Nor does a thread's end.
            Event::Exit(_) | Event::SignalGenerate(_) => {}
            _ => {
                t.alive.insert(h.tgid);
                t.dead_since = None;
            }
        }
        // A tree with nothing alive in it (all exited, or only seen through such records) goes
        // after the linger.
        if t.alive.is_empty() {
            t.dead_since.get_or_insert_with(Instant::now);
        }
        t.push(*event, self.bounds);
        tree
    }

    pub fn get(&self, tree: u32) -> Option<&Tree> {
        self.trees.get(&tree)
    }

    /// Drops trees dead for longer than the linger; returns the processes forgotten.
    pub fn sweep(&mut self) -> Vec<u32> {
        let linger = self.linger;
        self.exited.retain(|_, at| at.elapsed() <= linger);
        // Processes whose exit record was lost (dropped) keep no tree alive.
        for t in self.trees.values_mut() {
            t.alive.retain(|&p| crate::proc::exists(p));
            if t.alive.is_empty() {
                t.dead_since.get_or_insert_with(Instant::now);
            }
        }
        let gone: Vec<u32> = self
            .trees
            .iter()
            .filter(|(_, t)| t.dead_since.is_some_and(|d| d.elapsed() > linger))
            .map(|(k, _)| *k)
            .collect();
        let mut forgotten = Vec::new();
        for tree in gone {
            self.trees.remove(&tree);
            let members: Vec<u32> = self.tree_of.iter().filter(|(_, t)| **t == tree).map(|(p, _)| *p).collect();
            for p in members {
                self.tree_of.remove(&p);
                forgotten.push(p);
            }
        }
        // Processes that vanished without an exit record (untracked before the watch) still go.
        self.tree_of.retain(|p, t| self.trees.contains_key(t) || process_stat(*p).is_some());
        forgotten
    }

    pub fn len(&self) -> usize {
        self.trees.len()
    }

    pub fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }

    pub fn events_held(&self) -> usize {
        self.trees.values().map(|t| t.events.len()).sum()
    }

    pub fn bytes_held(&self) -> usize {
        self.trees.values().map(|t| t.bytes).sum()
    }

    /// Trees with a live process among `tracked` (fully tracked ones).
    pub fn trees_with(&self, tracked: &[u32]) -> Vec<(u32, Vec<u32>)> {
        let mut out: HashMap<u32, Vec<u32>> = HashMap::new();
        for p in tracked {
            if let Some(t) = self.tree_of.get(p) {
                out.entry(*t).or_default().push(*p);
            }
        }
        let mut v: Vec<(u32, Vec<u32>)> = out.into_iter().collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use observer_common::{kind, EventHeader, ExitEvent, ForkEvent};

    use super::*;

    fn fork(parent: u32, child: u32, ts: u64) -> Event {
        Event::Fork(ForkEvent {
            header: EventHeader { kind: kind::FORK, tid: parent, tgid: parent, ts_ns: ts, ..Default::default() },
            child_tid: child,
            child_tgid: child,
            ..Default::default()
        })
    }

    fn exit(pid: u32, ts: u64) -> Event {
        Event::Exit(ExitEvent {
            header: EventHeader {
                kind: kind::EXIT,
                flags: flags::GROUP_DEAD,
                tid: pid,
                tgid: pid,
                ts_ns: ts,
                ..Default::default()
            },
            comm: [0; 16],
        })
    }

    #[test]
    fn recorders_keep_only_the_last_events_and_seconds() {
        let mut trees = Trees::new(RecorderBounds { max_events: 3, max_age: Duration::from_secs(10) }, Duration::ZERO);
        // Pids that do not exist are their own group.
        let root = 999_999_001;
        for i in 0..5 {
            trees.record(&fork(root, root + 1 + i, i as u64 * 1_000_000_000));
        }
        assert_eq!(trees.get(root).unwrap().events.len(), 3);
        trees.record(&fork(root, root + 10, 100_000_000_000));
        assert_eq!(trees.get(root).unwrap().events.len(), 1, "older than 10 s dropped");
    }

    fn call(pid: u32, nr: Syscall, args: [u64; 2], ret: i64) -> Event {
        Event::Syscall(SyscallEvent {
            header: EventHeader { kind: kind::SYSCALL, tid: pid, tgid: pid, ..Default::default() },
            nr: nr.nr(),
            nargs: 2,
            args: [args[0], args[1], 0, 0, 0, 0],
            ret,
            ..Default::default()
        })
    }

    #[test]
    fn setsid_and_setpgid_move_a_process_and_its_later_events_to_a_tree_of_its_own() {
        let mut trees =
            Trees::new(RecorderBounds { max_events: 100, max_age: Duration::from_secs(60) }, Duration::ZERO);
        let root = 999_999_200;
        let (daemon, job) = (root + 1, root + 2);
        trees.record(&fork(root, daemon, 1));
        trees.record(&fork(root, job, 2));
        assert_eq!(trees.record(&call(daemon, Syscall::Setsid, [0, 0], daemon as i64)), daemon);
        // A shell puts its job in a group of its own: setpgid(child, 0) from the parent.
        trees.record(&call(root, Syscall::Setpgid, [job as u64, 0], 0));
        assert_eq!((trees.tree_of(daemon), trees.tree_of(job), trees.tree_of(root)), (daemon, job, root));
        assert_eq!(trees.record(&exit(daemon, 5)), daemon, "later events go to the new tree");
        assert_eq!(trees.get(root).unwrap().alive.iter().copied().collect::<Vec<_>>(), vec![root]);
        // A failed call moves nothing.
        trees.record(&call(root, Syscall::Setsid, [0, 0], -1));
        assert_eq!(trees.tree_of(root), root);
    }

    #[test]
    fn a_tree_whose_processes_all_ended_is_swept_with_its_processes() {
        let mut trees =
            Trees::new(RecorderBounds { max_events: 100, max_age: Duration::from_secs(60) }, Duration::ZERO);
        let root = 999_999_100;
        trees.record(&fork(root, root + 1, 1));
        assert_eq!(trees.tree_of(root + 1), root, "the child is in its parent's group");
        trees.record(&exit(root + 1, 2));
        trees.record(&exit(root, 3));
        std::thread::sleep(Duration::from_millis(5));
        let forgotten = trees.sweep();
        assert!(trees.is_empty());
        assert!(forgotten.contains(&root) && forgotten.contains(&(root + 1)));
    }
}
