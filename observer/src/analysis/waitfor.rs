//! The wait-for graph of a stuck snapshot: for each stuck thread, what could wake it (a mutex's
//! owner, a joined thread, the holders of a pipe's or socket's other end, a child, any thread of
//! its process for a condition variable), the chain that follows from it, and the sets of
//! threads that only threads of the same set could ever wake: deadlocks, named by their cycle.
use std::collections::{BTreeMap, BTreeSet};

/// What one thread waits for, as far as the snapshot tells.
#[derive(Clone, Debug, PartialEq)]
pub enum Wait {
    /// On a CPU or runnable: it wakes others, nobody needs to wake it.
    Running,
    /// Asleep until a timeout (nanosleep, a poll with a timeout...): wakes by itself.
    Timer { call: String },
    /// A lock with a known owner (a glibc mutex, a PI futex).
    Mutex { call: String, addr: u64, owner: u32 },
    /// A futex with no owner recorded: a condition variable, a semaphore, a runtime's own lock.
    /// Any other thread of the process could wake it.
    Futex { call: String, addr: u64 },
    /// pthread_join: woken when that thread exits.
    Join { call: String, tid: u32 },
    /// A pipe, socket or eventfd: woken by a process holding its other end.
    Fd { call: String, fd: i32, kind: String, holders: Vec<u32>, outside: bool },
    /// wait4/waitid: woken when a child changes state.
    Children { call: String, pids: Vec<u32> },
    /// A blocking call the graph cannot follow (or a state without a call).
    Unknown { what: String },
}

/// One thread as the graph sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub wait: Wait,
    /// Made no progress of its own over the whole window (no syscall beyond waiting, little CPU).
    pub idle: bool,
    /// The function it waits in, from its stack, when known.
    pub site: Option<String>,
    /// How long it has been in this wait (or without progress), when known.
    pub stuck_s: Option<f64>,
}

/// One step of a chain: `thread` waits, and `why` says on what and who could end it.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub tid: u32,
    pub why: String,
}

/// Where a chain ends.
#[derive(Clone, Debug, PartialEq)]
pub enum End {
    /// Back at the step with this index: a cycle.
    Cycle(usize),
    /// A thread that can move by itself (runnable, or asleep on a timer and making progress).
    Free { tid: u32, how: String },
    /// Something outside the capture, or a wait the graph cannot follow.
    Outside(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Chain {
    pub steps: Vec<Step>,
    pub end: End,
}

/// A set of threads that only each other could wake, named by one cycle through it.
#[derive(Clone, Debug, PartialEq)]
pub struct Deadlock {
    /// The cycle, each step waiting for the next (the last for the first).
    pub cycle: Vec<Step>,
    /// What the cycle waits on: `mutex`, `pipe`, `condition variable`, ... in cycle order, deduplicated.
    pub kinds: Vec<&'static str>,
    /// A single thread waiting for itself (relocking a mutex it holds, or alone in a futex wait).
    pub self_deadlock: bool,
}

pub struct WaitGraph {
    nodes: BTreeMap<u32, Node>,
    by_pid: BTreeMap<u32, Vec<u32>>,
    /// Threads that nothing outside the set can wake (greatest fixpoint).
    closed: BTreeSet<u32>,
}

impl Wait {
    fn kind(&self) -> &'static str {
        match self {
            Wait::Mutex { .. } => "mutex",
            Wait::Futex { .. } => "condition variable or lock without owner",
            Wait::Join { .. } => "thread join",
            Wait::Fd { kind, .. } if kind == "pipe" => "pipe",
            Wait::Fd { kind, .. } if kind == "socket" => "socket",
            Wait::Fd { .. } => "file descriptor",
            Wait::Children { .. } => "child process",
            Wait::Running | Wait::Timer { .. } | Wait::Unknown { .. } => "other",
        }
    }

    /// Whether the wait names exactly who ends it (an owner, a joined thread).
    fn definite(&self) -> bool {
        matches!(self, Wait::Mutex { .. } | Wait::Join { .. })
    }
}

impl WaitGraph {
    pub fn new(nodes: impl IntoIterator<Item = Node>) -> Self {
        let nodes: BTreeMap<u32, Node> = nodes.into_iter().map(|n| (n.tid, n)).collect();
        let mut by_pid: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for n in nodes.values() {
            by_pid.entry(n.pid).or_default().push(n.tid);
        }
        let mut graph = WaitGraph { nodes, by_pid, closed: BTreeSet::new() };
        graph.closed = graph.closure();
        graph
    }

    pub fn node(&self, tid: u32) -> Option<&Node> {
        self.nodes.get(&tid)
    }

    /// Who could end `tid`'s wait; `None` when something outside the graph could (or nobody knows).
    fn wakers(&self, node: &Node) -> Option<Vec<u32>> {
        let others_of = |pids: &[u32]| -> Vec<u32> {
            pids.iter()
                .flat_map(|p| self.by_pid.get(p).into_iter().flatten().copied())
                .filter(|&t| t != node.tid)
                .collect()
        };
        match &node.wait {
            Wait::Running | Wait::Timer { .. } | Wait::Unknown { .. } => None,
            Wait::Mutex { owner, .. } => self.nodes.contains_key(owner).then(|| vec![*owner]),
            Wait::Join { tid, .. } => self.nodes.contains_key(tid).then(|| vec![*tid]),
            Wait::Futex { .. } => Some(others_of(&[node.pid])),
            Wait::Fd { outside: true, .. } => None,
            Wait::Fd { holders, .. } if holders.is_empty() => None,
            Wait::Fd { holders, .. } => Some(others_of(holders)),
            Wait::Children { pids, .. } if pids.is_empty() => None,
            Wait::Children { pids, .. } => Some(others_of(pids)),
        }
    }

    /// The largest set of idle threads whose every possible waker is in the set. Idle threads on
    /// a timer (tickers) stay in it without waking anyone: they only time out and wait again.
    fn closure(&self) -> BTreeSet<u32> {
        let mut set: BTreeSet<u32> =
            self.nodes.values().filter(|n| n.idle && n.wait != Wait::Running).map(|n| n.tid).collect();
        loop {
            let escaping: Vec<u32> = set
                .iter()
                .copied()
                .filter(|tid| {
                    let node = &self.nodes[tid];
                    match (&node.wait, self.wakers(node)) {
                        (Wait::Timer { .. }, _) => false,
                        (_, None) => true,
                        (_, Some(wakers)) => wakers.iter().any(|w| !set.contains(w)),
                    }
                })
                .collect();
            if escaping.is_empty() {
                return set;
            }
            for tid in escaping {
                set.remove(&tid);
            }
        }
    }

    /// Whether nothing outside the set of stuck threads can ever wake `tid`.
    pub fn stuck_for_good(&self, tid: u32) -> bool {
        self.closed.contains(&tid) && !matches!(self.nodes[&tid].wait, Wait::Timer { .. })
    }

    /// What `node` waits for, in words; `in` names the function it waits in when its stack is
    /// known, else the call.
    fn describe(&self, node: &Node) -> String {
        let thread = |tid: u32| match self.nodes.get(&tid) {
            Some(n) if n.comm != node.comm => format!("thread {tid} ({})", n.comm),
            _ => format!("thread {tid}"),
        };
        let holders = |pids: &[u32]| -> String {
            if pids == [node.pid] {
                "this process only".to_string()
            } else {
                let names: Vec<String> = pids.iter().map(|p| format!("pid {p}")).collect();
                names.join(", ")
            }
        };
        let at = |call: &str| node.site.clone().unwrap_or_else(|| call.to_string());
        match &node.wait {
            Wait::Running => "is running".into(),
            Wait::Timer { call } => format!("sleeps on a timer in {}", at(call)),
            Wait::Unknown { what } => format!("waits in {what}"),
            Wait::Mutex { call, addr, owner } if *owner == node.tid => {
                format!("waits in {} for mutex {addr:#x}, which it holds itself", at(call))
            }
            Wait::Mutex { call, addr, owner } => {
                format!("waits in {} for mutex {addr:#x} held by {}", at(call), thread(*owner))
            }
            Wait::Futex { call, addr } => format!(
                "waits in {} on futex {addr:#x} (a condition variable or a lock without owner), which only another thread of pid {} can wake",
                at(call),
                node.pid
            ),
            Wait::Join { call, tid } => format!("waits in {} to join {}", at(call), thread(*tid)),
            Wait::Fd { call, fd, kind, holders: h, outside } => {
                let end = if kind == "pipe" { "write end" } else { "other end" };
                if *outside || h.is_empty() {
                    format!("waits in {} on {kind} fd {fd}, whose {end} is held outside the capture", at(call))
                } else {
                    format!("waits in {} on {kind} fd {fd}, whose {end} is held by {}", at(call), holders(h))
                }
            }
            Wait::Children { call, pids } => {
                let names: Vec<String> = pids.iter().map(|p| format!("pid {p}")).collect();
                format!("waits in {} for child {}", at(call), names.join(", "))
            }
        }
    }

    fn step(&self, node: &Node) -> Step {
        let age = node.stuck_s.map_or(String::new(), |s| format!(" for {s:.1}s"));
        Step { tid: node.tid, why: format!("thread {} ({}) {}{age}", node.tid, node.comm, self.describe(node)) }
    }

    /// The next thread to follow from `node`: the one waker, or among several the one whose own
    /// named wait (a mutex, a join) leads back into the chain, else one already in the chain.
    fn next(&self, node: &Node, path: &[u32]) -> Option<u32> {
        let wakers = self.wakers(node)?;
        if let [only] = wakers[..] {
            return Some(only);
        }
        // A lock holder's waiter names the cycle better than a thread that joins it.
        let leads_back = |kind: fn(&Wait) -> bool| {
            wakers.iter().copied().find(|&w| {
                !path.contains(&w)
                    && self.closed.contains(&w)
                    && kind(&self.nodes[&w].wait)
                    && self.reaches(w, path, &mut BTreeSet::new())
            })
        };
        let leads_back =
            leads_back(|w| matches!(w, Wait::Mutex { .. })).or_else(|| leads_back(|w| matches!(w, Wait::Join { .. })));
        leads_back.or_else(|| wakers.iter().copied().find(|w| path.contains(w)))
    }

    /// Whether following definite waits from `from` reaches a thread of `targets`.
    fn reaches(&self, from: u32, targets: &[u32], seen: &mut BTreeSet<u32>) -> bool {
        if targets.contains(&from) {
            return true;
        }
        if !seen.insert(from) {
            return false;
        }
        let Some(node) = self.nodes.get(&from) else { return false };
        if !node.wait.definite() {
            return false;
        }
        self.wakers(node).is_some_and(|w| w.iter().any(|&t| self.reaches(t, targets, seen)))
    }

    /// What `tid` waits for, followed until a cycle, a thread that can move, or the capture's edge.
    pub fn chain(&self, tid: u32) -> Chain {
        let mut steps = Vec::new();
        let mut path: Vec<u32> = Vec::new();
        let mut at = tid;
        loop {
            if let Some(pos) = path.iter().position(|&t| t == at) {
                return Chain { steps, end: End::Cycle(pos) };
            }
            let Some(node) = self.nodes.get(&at) else {
                return Chain { steps, end: End::Outside(format!("thread {at} is outside the capture")) };
            };
            match &node.wait {
                Wait::Running => {
                    return Chain {
                        steps,
                        end: End::Free { tid: at, how: format!("thread {at} ({}) is running", node.comm) },
                    }
                }
                Wait::Timer { call } if !node.idle => {
                    let how = format!("thread {at} ({}) sleeps on a timer in {call} and makes progress", node.comm);
                    return Chain { steps, end: End::Free { tid: at, how } };
                }
                _ => {}
            }
            steps.push(self.step(node));
            path.push(at);
            match self.next(node, &path) {
                Some(next) => at = next,
                None => {
                    let end = match &node.wait {
                        Wait::Timer { .. } => "it only times out and waits again".to_string(),
                        Wait::Unknown { .. } => "the graph cannot follow this wait".to_string(),
                        _ if self.stuck_for_good(at) => "every thread that could wake it is stuck".to_string(),
                        _ => "what could wake it is outside the capture or still moving".to_string(),
                    };
                    return Chain { steps, end: End::Outside(end) };
                }
            }
        }
    }

    /// Every set of threads that only each other could wake, with at least one wait that names
    /// its waker (a mutex owner, a joined thread) or a single thread that nothing else can wake.
    pub fn deadlocks(&self) -> Vec<Deadlock> {
        let mut seen: BTreeSet<BTreeSet<u32>> = BTreeSet::new();
        let mut out = Vec::new();
        for &tid in &self.closed {
            let node = &self.nodes[&tid];
            if matches!(node.wait, Wait::Timer { .. }) {
                continue;
            }
            let chain = self.chain(tid);
            let End::Cycle(pos) = chain.end else { continue };
            let cycle: Vec<Step> = chain.steps[pos..].to_vec();
            let members: BTreeSet<u32> = cycle.iter().map(|s| s.tid).collect();
            let waits: Vec<&Wait> = members.iter().map(|t| &self.nodes[t].wait).collect();
            let lone = self.by_pid.get(&node.pid).is_some_and(|t| t.len() == 1);
            let named = waits.iter().any(|w| w.definite()) || (members.len() == 1 && lone);
            // One finding per knot: a second cycle through threads already named adds nothing.
            let known = seen.iter().any(|s| !s.is_disjoint(&members));
            if !named || known || !members.iter().all(|t| self.stuck_for_good(*t)) {
                continue;
            }
            seen.insert(members.clone());
            let mut kinds: Vec<&'static str> = Vec::new();
            for s in &cycle {
                let k = self.nodes[&s.tid].wait.kind();
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
            out.push(Deadlock { self_deadlock: members.len() == 1, cycle, kinds });
        }
        // A thread alone in its process waiting on a futex nobody else can touch.
        for tids in self.by_pid.values() {
            let [tid] = tids[..] else { continue };
            let node = &self.nodes[&tid];
            if matches!(node.wait, Wait::Futex { .. }) && self.stuck_for_good(tid) && seen.insert(BTreeSet::from([tid]))
            {
                out.push(Deadlock { cycle: vec![self.step(node)], kinds: vec![node.wait.kind()], self_deadlock: true });
            }
        }
        out
    }
}

impl Deadlock {
    /// `deadlock across mutex and pipe: thread 1 ... -> thread 2 ... -> back to thread 1`.
    pub fn sentence(&self) -> String {
        let what = if self.self_deadlock {
            "self-deadlock".to_string()
        } else if self.kinds == ["mutex"] {
            format!("{} threads wait on each other's mutexes", self.cycle.len())
        } else {
            format!("deadlock across {}", self.kinds.join(" and "))
        };
        let steps: Vec<&str> = self.cycle.iter().map(|s| s.why.as_str()).collect();
        format!("{what}: {}", steps.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(pid: u32, tid: u32, wait: Wait) -> Node {
        Node { pid, tid, comm: format!("t{tid}"), wait, idle: true, site: None, stuck_s: Some(5.0) }
    }

    fn mutex(addr: u64, owner: u32) -> Wait {
        Wait::Mutex { call: "futex".into(), addr, owner }
    }

    fn pipe_read(fd: i32, holders: Vec<u32>) -> Wait {
        Wait::Fd { call: "read".into(), fd, kind: "pipe".into(), holders, outside: false }
    }

    #[test]
    fn abba_is_a_mutex_cycle() {
        let g = WaitGraph::new([
            node(10, 11, mutex(0xa, 12)),
            node(10, 12, mutex(0xb, 11)),
            node(10, 10, Wait::Join { call: "futex".into(), tid: 11 }),
        ]);
        let d = g.deadlocks();
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(d[0].kinds, ["mutex"]);
        assert!(
            d[0].sentence().starts_with("2 threads wait on each other's mutexes: thread 11"),
            "{}",
            d[0].sentence()
        );
        // The joining main thread is not in the cycle, but its chain leads into it.
        let c = g.chain(10);
        assert_eq!(c.steps[0].tid, 10);
        assert_eq!(c.end, End::Cycle(1));
    }

    #[test]
    fn a_mutex_holder_reading_a_pipe_only_its_waiter_can_write_is_a_deadlock_across_mutex_and_pipe() {
        // 11 holds M and reads a pipe whose write end only this process holds; 12 waits for M;
        // 13 is a ticker (a timed wait that only times out), 10 joins.
        let g = WaitGraph::new([
            node(10, 10, Wait::Join { call: "futex".into(), tid: 11 }),
            node(10, 11, pipe_read(5, vec![10])),
            node(10, 12, mutex(0x55, 11)),
            node(10, 13, Wait::Timer { call: "pselect6".into() }),
        ]);
        let d = g.deadlocks();
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(d[0].kinds, ["pipe", "mutex"]);
        let s = d[0].sentence();
        assert!(s.starts_with("deadlock across pipe and mutex: thread 11 (t11) waits in read on pipe fd 5, whose write end is held by this process only"), "{s}");
        assert!(s.contains("thread 12 (t12) waits in futex for mutex 0x55 held by thread 11 (t11)"), "{s}");
    }

    #[test]
    fn a_writer_that_still_makes_progress_breaks_the_cycle() {
        let mut busy = node(10, 13, Wait::Timer { call: "nanosleep".into() });
        busy.idle = false;
        let g = WaitGraph::new([node(10, 11, pipe_read(5, vec![10])), node(10, 12, mutex(0x55, 11)), busy]);
        assert!(g.deadlocks().is_empty());
        assert!(!g.stuck_for_good(11));
    }

    #[test]
    fn a_pipe_written_from_outside_is_no_deadlock() {
        let g = WaitGraph::new([node(10, 11, pipe_read(5, vec![99])), node(10, 12, mutex(0x55, 11))]);
        assert!(g.deadlocks().is_empty());
        let c = g.chain(12);
        assert_eq!(c.steps.len(), 2);
        assert!(matches!(c.end, End::Outside(_)), "{c:#?}");
    }

    #[test]
    fn relocking_a_held_mutex_is_a_self_deadlock() {
        let g = WaitGraph::new([node(10, 10, mutex(0x10, 10)), node(10, 11, Wait::Timer { call: "nanosleep".into() })]);
        let d = g.deadlocks();
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(d[0].self_deadlock);
        assert!(
            d[0].sentence()
                .starts_with("self-deadlock: thread 10 (t10) waits in futex for mutex 0x10, which it holds itself"),
            "{}",
            d[0].sentence()
        );
    }

    #[test]
    fn a_lone_thread_in_an_untimed_futex_wait_is_a_self_deadlock() {
        let g = WaitGraph::new([node(10, 10, Wait::Futex { call: "futex".into(), addr: 0x20 })]);
        let d = g.deadlocks();
        assert_eq!(d.len(), 1);
        assert!(d[0].self_deadlock && d[0].sentence().starts_with("self-deadlock"), "{d:#?}");
    }

    #[test]
    fn condition_variable_waiters_with_a_mutex_holder_form_a_knot() {
        // 11 holds M and waits on a condvar; 12, the only one who would signal it, waits for M.
        let g = WaitGraph::new([
            node(10, 11, Wait::Futex { call: "futex".into(), addr: 0x30 }),
            node(10, 12, mutex(0x40, 11)),
        ]);
        let d = g.deadlocks();
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(
            d[0].sentence().starts_with("deadlock across condition variable or lock without owner and mutex"),
            "{}",
            d[0].sentence()
        );
    }

    #[test]
    fn runtime_threads_on_ownerless_futexes_alone_are_no_named_deadlock() {
        // Go: every thread parked on a runtime note, sysmon ticking: stuck, but no cycle to name.
        let g = WaitGraph::new([
            node(10, 10, Wait::Futex { call: "futex".into(), addr: 0x1 }),
            node(10, 11, Wait::Futex { call: "futex".into(), addr: 0x2 }),
            node(10, 12, Wait::Timer { call: "nanosleep".into() }),
        ]);
        assert!(g.deadlocks().is_empty());
        assert!(g.stuck_for_good(10) && g.stuck_for_good(11));
    }
}
