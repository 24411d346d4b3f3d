//! Hang signatures, read from the stuck snapshot: `hang-blocked` (everything asleep), `hang-spinning`
//! (a thread on CPU without syscalls), `hang-stopped` (a stopped process holds the tree),
//! `deadlock` (a cycle of mutex waits) and `hang-waiting-child` (waiting on a hung child).
use std::collections::{BTreeMap, BTreeSet};

use crate::{
    analysis::runtime::Runtime,
    analysis::snapshot::{ProcessSnapshot, StuckSnapshot, TaskState, ThreadSnapshot, GROUP_SPIN_SHARE, SPIN_SHARE},
    analysis::waitfor::{Chain, End, Node, Wait, WaitGraph},
    analysis::{Classifier, Context, Evidence, Finding, Severity, Signature},
    decode::futex_cmd,
    event::Event,
};

/// Below this share of a CPU over the window a thread counts as asleep.
const ASLEEP_SHARE: f64 = 0.02;

fn fact(text: impl Into<String>) -> Evidence {
    Evidence::fact("snapshot", text)
}

/// A thread that waits: asleep in the kernel, or inside a syscall and runnable only because it was
/// just woken (a runtime's ticker wakes its threads every few ms; caught between the wake-up and
/// the return it reads `R`), using next to no CPU over the window either way.
fn asleep(t: &ThreadSnapshot) -> bool {
    let woken_in_call = t.state == TaskState::Running && t.syscall.is_some();
    (t.state.is_waiting() || woken_in_call) && t.cpu_share < ASLEEP_SHARE
}

fn stopped(p: &ProcessSnapshot) -> bool {
    p.state.is_stopped() || (!p.threads.is_empty() && p.threads.iter().all(|t| t.state.is_stopped()))
}

/// The first frame worth naming: the program's own code, unwound (not a `? ` guess from a stack
/// scan), outside libc and outside a runtime's internals (OCaml's `caml_*` C functions, Go's
/// `runtime.*`); else the first unwound frame outside libc; else the first there is.
fn wait_site(t: &ThreadSnapshot) -> Option<&str> {
    let unwound = || t.user_frames.iter().filter(|f| !f.starts_with("? "));
    let outside_libc = |f: &&String| !f.contains("libc.so") && !f.contains("ld-linux");
    let runtime_internal = |f: &&String| f.starts_with("caml_") || f.starts_with("runtime.");
    unwound()
        .filter(outside_libc)
        .find(|f| !runtime_internal(f))
        .or_else(|| unwound().find(outside_libc))
        .or(t.user_frames.first())
        .map(String::as_str)
}

/// One thread's wait, in words: `ppoll on eventfd fd 3, pipe fd 4 (write end in this process)`.
fn describe_wait(t: &ThreadSnapshot) -> String {
    let Some(call) = &t.syscall else {
        return if t.state == TaskState::Running {
            "running".into()
        } else {
            format!("state {} in {}", t.state, if t.wchan.is_empty() { "?" } else { &t.wchan })
        };
    };
    let mut text = call.name.clone();
    if !t.fds.is_empty() {
        let fds: Vec<String> = t
            .fds
            .iter()
            .map(|f| {
                let own = if f.note.starts_with("write end held only by this process") {
                    " (write end in this process)"
                } else {
                    ""
                };
                format!("{} fd {}{own}", if f.kind == "unknown" { f.target.as_str() } else { f.kind.as_str() }, f.fd)
            })
            .collect();
        text.push_str(&format!(" on {}", fds.join(", ")));
    }
    if let Some(f) = &t.futex {
        text.push_str(&format!(" on futex {:#x}", f.addr));
        if let Some(o) = f.owner_tid {
            text.push_str(&format!(" (mutex owned by thread {o})"));
        } else if let Some(j) = f.joining_tid {
            text.push_str(&format!(" (joining thread {j})"));
        }
    }
    if let Some(w) = &t.child_wait {
        text.push_str(&format!(" for {}", w.waits_for));
    }
    text
}

fn thread_line(p: &ProcessSnapshot, t: &ThreadSnapshot) -> String {
    let age = t.syscall.as_ref().and_then(|c| c.blocked_s).map_or(String::new(), |s| format!(" for {s:.1}s"));
    let call = t.syscall.as_ref().map_or(String::new(), |c| format!(": {}", c.text));
    format!("pid {} ({}) thread {} ({}) state {} wchan {}{age}{call}", p.pid, p.comm, t.tid, t.comm, t.state, t.wchan)
}

pub struct Hang;

impl Classifier for Hang {
    fn observe(&mut self, _: &Event, _: &Context<'_>) {}

    fn finish(&mut self, cx: &Context<'_>, earlier: &[Finding]) -> Vec<Finding> {
        let Some(snap) = cx.stuck else { return vec![] };
        let mut findings = Vec::new();
        let graph = wait_graph(snap);
        findings.extend(deadlocks(snap, &graph));
        findings.extend(stopped_processes(snap, earlier));
        findings.extend(waiting_on_hung_children(snap));
        findings.extend(spinning(snap));
        findings.extend(spinning_together(snap));
        findings.extend(blocked(snap, &graph));
        findings
    }
}

/// Whether `t` made no progress of its own over the whole window: judged per thread where the
/// snapshot says how long each has been idle (tickers re-entering a timed wait stay idle), else
/// (older snapshots) by no syscall at all in the window.
fn idle(snap: &StuckSnapshot, t: &ThreadSnapshot) -> bool {
    match t.idle_s {
        Some(s) => s + 0.05 >= snap.progress_window_s.unwrap_or(snap.window_s),
        None => snap.syscalls_in_window == 0,
    }
}

/// How long `t` has been stuck: in its current call, else since its last progress.
fn stuck_for(t: &ThreadSnapshot) -> Option<f64> {
    t.syscall.as_ref().and_then(|c| c.blocked_s).or(t.idle_s)
}

/// Whether a blocking call was given a timeout (it wakes by itself).
fn timed(name: &str, args: &[u64]) -> bool {
    let arg = |i: usize| args.get(i).copied().unwrap_or(0);
    match name {
        "nanosleep" | "clock_nanosleep" => true,
        "futex" => matches!(futex_cmd::of(arg(1)), futex_cmd::WAIT | futex_cmd::WAIT_BITSET) && arg(3) != 0,
        "poll" => arg(2) as i32 >= 0,
        "epoll_wait" | "epoll_pwait" => arg(3) as i32 >= 0,
        "ppoll" => arg(2) != 0,
        // epoll_pwait2(epfd, events, maxevents, timeout, sigmask, sigsetsize)
        "epoll_pwait2" => arg(3) != 0,
        "select" | "pselect6" => arg(4) != 0,
        _ => false,
    }
}

/// The wait-for graph of a snapshot's threads.
pub(crate) fn wait_graph(snap: &StuckSnapshot) -> WaitGraph {
    WaitGraph::new(snap.threads().map(|(p, t)| {
        let wait = match &t.syscall {
            _ if !asleep(t) => Wait::Running,
            None => Wait::Unknown {
                what: format!("state {} in {}", t.state, if t.wchan.is_empty() { "?" } else { &t.wchan }),
            },
            Some(c) => {
                let call = c.name.clone();
                if let Some(f) = &t.futex {
                    match (f.owner_tid, f.joining_tid) {
                        (Some(owner), _) => Wait::Mutex { call, addr: f.addr, owner },
                        (None, Some(tid)) => Wait::Join { call, tid },
                        _ if timed(&c.name, &c.args) => Wait::Timer { call },
                        _ => Wait::Futex { call, addr: f.addr },
                    }
                } else if timed(&c.name, &c.args) {
                    Wait::Timer { call }
                } else if let Some(w) = &t.child_wait {
                    Wait::Children { call, pids: w.children.iter().map(|c| c.pid).collect() }
                } else if let Some(fd) = t.fds.iter().find(|f| matches!(f.kind.as_str(), "pipe" | "socket" | "eventfd"))
                {
                    Wait::Fd {
                        call,
                        fd: fd.fd,
                        kind: fd.kind.clone(),
                        holders: fd.other_end.clone(),
                        outside: fd.other_end.is_empty(),
                    }
                } else {
                    Wait::Unknown { what: call }
                }
            }
        };
        Node {
            pid: p.pid,
            tid: t.tid,
            comm: t.comm.clone(),
            wait,
            idle: idle(snap, t),
            site: wait_site(t).map(str::to_string),
            stuck_s: stuck_for(t),
        }
    }))
}

/// `thread 5 (app) waits in read ... -> thread 6 (app) ... -> back to thread 5`.
fn chain_text(chain: &Chain) -> String {
    let steps: Vec<&str> = chain.steps.iter().map(|s| s.why.as_str()).collect();
    let end = match &chain.end {
        End::Cycle(pos) => format!("back to thread {}", chain.steps[*pos].tid),
        End::Free { how, .. } => how.clone(),
        End::Outside(why) => why.clone(),
    };
    format!("{} -> {end}", steps.join(" -> "))
}

fn blocked(snap: &StuckSnapshot, graph: &WaitGraph) -> Option<Finding> {
    let threads: Vec<(&ProcessSnapshot, &ThreadSnapshot)> = snap.threads().collect();
    if threads.is_empty() || !threads.iter().all(|(_, t)| asleep(t) && idle(snap, t)) {
        return None;
    }
    // "main thread 5 in ppoll ...; thread 6 stuck 12.0s in read ...; 1 ticker (pselect6)".
    let mut parts = Vec::new();
    let mut tickers: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_call: BTreeMap<String, (usize, BTreeSet<u64>)> = BTreeMap::new();
    let root = snap.processes.first();
    let mut evidence = vec![fact(format!("snapshot taken: {}", snap.reason))];
    for (p, t) in &threads {
        let node = graph.node(t.tid);
        if matches!(node.map(|n| &n.wait), Some(Wait::Timer { .. })) && t.tid != p.pid {
            *tickers.entry(t.syscall.as_ref().map_or("?".into(), |c| c.name.clone())).or_default() += 1;
            continue;
        }
        let age = stuck_for(t).map_or(String::new(), |s| format!(" for {s:.1}s"));
        if Some(p.pid) == root.map(|r| r.pid) && t.tid == p.pid {
            parts.insert(0, format!("main thread {} in {}{age}", t.tid, describe_wait(t)));
        } else if graph.stuck_for_good(t.tid) || t.futex.as_ref().is_some_and(|f| f.owner_tid.is_some()) {
            parts.push(format!("thread {} ({}) in {}{age}", t.tid, t.comm, describe_wait(t)));
        } else {
            let name = t.syscall.as_ref().map_or_else(|| format!("state {}", t.state), |c| c.name.clone());
            let entry = by_call.entry(name).or_default();
            entry.0 += 1;
            entry.1.extend(t.futex.as_ref().map(|f| f.addr));
        }
    }
    for (name, (n, futexes)) in by_call {
        let on = match futexes.len() {
            0 => String::new(),
            1 => " on 1 futex".to_string(),
            k => format!(" on {k} futexes"),
        };
        parts.push(format!("{n} thread{} in {name}{on}", if n == 1 { "" } else { "s" }));
    }
    for (call, n) in tickers {
        parts.push(format!("{n} ticker thread{} only timing out in {call}", if n == 1 { "" } else { "s" }));
    }
    parts.push("nothing on CPU".into());
    // What each stuck thread waits for, followed as far as the snapshot allows.
    let mut chained = BTreeSet::new();
    for (_, t) in &threads {
        if chained.contains(&t.tid) || matches!(graph.node(t.tid).map(|n| &n.wait), Some(Wait::Timer { .. })) {
            continue;
        }
        let chain = graph.chain(t.tid);
        if chain.steps.len() > 1 {
            chained.extend(chain.steps.iter().map(|s| s.tid));
            evidence.push(Evidence::fact("wait-for", chain_text(&chain)));
        }
    }
    evidence.extend(threads.iter().map(|(p, t)| fact(thread_line(p, t))));
    let longest = threads.iter().filter_map(|(_, t)| stuck_for(t)).fold(snap.window_s, f64::max);
    let (p, t) = threads[0];
    evidence.extend(snap.processes.iter().filter_map(runtime_fact));
    Some(Finding::new(
        Signature::HangBlocked,
        Severity::Warning,
        p.pid,
        t.tid,
        format!("no thread made progress for {longest:.1}s: {}", parts.join("; ")),
        evidence,
    ))
}

/// Frames shown of one call chain: the innermost ones, where the spinning happens.
const CHAIN_FRAMES: usize = 12;
/// Call chains shown of a spinning thread.
const CHAINS: usize = 3;

/// A sampled call chain, caller first: `main -> run -> spin`; `... -> ` where outer frames are
/// left out.
fn call_chain_text(innermost_first: &[String]) -> String {
    let shown: Vec<&str> = innermost_first.iter().take(CHAIN_FRAMES).rev().map(String::as_str).collect();
    let more = if innermost_first.len() > CHAIN_FRAMES { "... -> " } else { "" };
    format!("{more}{}", shown.join(" -> "))
}

/// `pid 12 (node) runs Node.js (V8)`, with the version and where JIT names came from.
fn runtime_fact(p: &ProcessSnapshot) -> Option<Evidence> {
    if p.runtime == Runtime::Unknown {
        return None;
    }
    let version = if p.runtime_version.is_empty() { String::new() } else { format!(" ({})", p.runtime_version) };
    let jit = if p.jit_names.is_empty() { String::new() } else { format!("; {}", p.jit_names) };
    let dump = if p.runtime_dump.is_empty() { String::new() } else { format!("; runtime dump: {}", p.runtime_dump) };
    Some(fact(format!("pid {} ({}) runs {}{version}{jit}{dump}", p.pid, p.comm, p.runtime)))
}

fn spinning(snap: &StuckSnapshot) -> Vec<Finding> {
    snap.threads()
        .filter(|(_, t)| {
            t.cpu_share >= SPIN_SHARE
                && t.syscall.as_ref().is_none_or(|c| c.blocked_s.is_some_and(|s| s >= snap.window_s))
                // A thread whose calls the capture saw doing real work in the window is busy, not
                // spinning (older snapshots without per-thread idle times keep the old rule).
                && (t.idle_s.is_none() || idle(snap, t))
        })
        .map(|(p, t)| {
            let total: u32 = t.samples.iter().map(|(_, n)| n).sum();
            let top = t
                .samples
                .first()
                .map_or("no stack samples".to_string(), |(f, n)| format!("most samples ({n} of {total}) in {f}"));
            let doing = if t.activity.is_empty() { String::new() } else { format!(" ({})", t.activity) };
            let runtime = if p.runtime == Runtime::Unknown { String::new() } else { format!(", {}", p.runtime) };
            let mut evidence = vec![fact(format!(
                "thread {} used {:.0}% of a CPU over {:.1}s (user {:.2}s, system {:.2}s) without completing a syscall",
                t.tid,
                t.cpu_share * 100.0,
                snap.window_s,
                t.cpu_user_s,
                t.cpu_system_s
            ))];
            evidence.extend(runtime_fact(p));
            let chain_total: u32 = t.stacks.iter().map(|s| s.count).sum();
            evidence.extend(t.stacks.iter().take(CHAINS).map(|s| {
                let share = f64::from(s.count) * 100.0 / f64::from(chain_total.max(1));
                fact(format!("{share:.0}% of samples ({} of {chain_total}) in {}", s.count, call_chain_text(&s.frames)))
            }));
            evidence.extend(t.samples.iter().take(5).map(|(f, n)| fact(format!("sampled {n} x {f}"))));
            Finding::new(
                Signature::HangSpinning,
                Severity::Error,
                p.pid,
                t.tid,
                format!(
                    "thread {} ({}) of pid {} ({}{runtime}) spins on a CPU making no syscall that does work: {top}{doing}",
                    t.tid, t.comm, p.pid, p.comm
                ),
                evidence,
            )
        })
        .collect()
}

/// Threads that burn a CPU between them while only handing a lock back and forth (two CPython
/// threads passing the GIL: half a CPU each, futex calls, no progress).
fn spinning_together(snap: &StuckSnapshot) -> Option<Finding> {
    let threads: Vec<(&ProcessSnapshot, &ThreadSnapshot)> = snap.threads().collect();
    if threads.iter().any(|(_, t)| !idle(snap, t) || t.cpu_share >= SPIN_SHARE) {
        return None;
    }
    let busy: Vec<&(&ProcessSnapshot, &ThreadSnapshot)> =
        threads.iter().filter(|(_, t)| t.cpu_share >= GROUP_SPIN_SHARE).collect();
    let total: f64 = busy.iter().map(|(_, t)| t.cpu_share).sum();
    if busy.len() < 2 || total < SPIN_SHARE {
        return None;
    }
    let names: Vec<String> = busy
        .iter()
        .map(|(p, t)| format!("thread {} ({}) of pid {} at {:.0}%", t.tid, t.comm, p.pid, t.cpu_share * 100.0))
        .collect();
    let mut evidence = vec![fact(format!(
        "{} threads used {:.0}% of a CPU between them over {:.1}s and made no call but waits (futex, poll, sleep)",
        busy.len(),
        total * 100.0,
        snap.window_s
    ))];
    for (p, t) in &busy {
        evidence.push(fact(thread_line(p, t)));
        evidence.extend(t.samples.iter().take(3).map(|(f, n)| fact(format!("thread {} sampled {n} x {f}", t.tid))));
    }
    let (p, t) = busy[0];
    Some(Finding::new(
        Signature::HangSpinning,
        Severity::Error,
        p.pid,
        t.tid,
        format!(
            "{} threads spin together, passing a lock back and forth without progress: {}",
            busy.len(),
            names.join(", ")
        ),
        evidence,
    ))
}

fn stopped_processes(snap: &StuckSnapshot, earlier: &[Finding]) -> Vec<Finding> {
    snap.processes
        .iter()
        .filter(|p| stopped(p))
        .map(|p| {
            let why = earlier
                .iter()
                .find(|f| f.signature == Signature::JobControlStop && f.pid == p.pid)
                .map_or(String::new(), |f| format!(" (see job-control-stop: {})", f.summary));
            let t = p.threads.first();
            Finding {
                cause: None,
                id: String::new(),
                caused_by: Vec::new(),
                workload: None,
                processes: Vec::new(),
                signature: Signature::HangStopped,
                severity: Severity::Error,
                pid: p.pid,
                tid: t.map_or(p.pid, |t| t.tid),
                summary: format!(
                    "process {} ({}) is stopped (state {}, wchan {}): it and whatever waits for it cannot progress until it gets SIGCONT{why}",
                    p.pid,
                    p.comm,
                    p.state,
                    t.map_or("?", |t| t.wchan.as_str())
                ),
                evidence: p.threads.iter().map(|t| fact(thread_line(p, t))).collect(),
            }
        })
        .collect()
}

/// Whether `pid` is hung in the snapshot: every thread asleep (or the process stopped).
fn hung(snap: &StuckSnapshot, pid: u32) -> Option<&ProcessSnapshot> {
    snap.process(pid).filter(|p| stopped(p) || (!p.threads.is_empty() && p.threads.iter().all(asleep)))
}

fn waiting_on_hung_children(snap: &StuckSnapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for (p, t) in snap.threads() {
        let Some(wait) = &t.child_wait else { continue };
        if wait.children.is_empty() {
            continue;
        }
        // Follow the chain: a child waiting for its own hung child, and so on.
        let mut chain = vec![format!(
            "pid {} ({}) thread {} waits in {} for {}",
            p.pid,
            p.comm,
            t.tid,
            t.syscall.as_ref().map_or("wait", |c| c.name.as_str()),
            wait.waits_for
        )];
        let mut evidence = vec![fact(thread_line(p, t))];
        let mut next: Vec<u32> = wait.children.iter().map(|c| c.pid).collect();
        let mut seen = BTreeSet::from([p.pid]);
        let mut all_hung = true;
        while let Some(child) = next.first().copied() {
            next.clear();
            if !seen.insert(child) {
                break;
            }
            let Some(c) = hung(snap, child) else {
                all_hung = false;
                break;
            };
            let main = c.threads.iter().find(|t| t.tid == c.pid).or(c.threads.first());
            let doing = main.map_or("?".to_string(), describe_wait);
            let age = main
                .and_then(|t| t.syscall.as_ref())
                .and_then(|s| s.blocked_s)
                .map_or(String::new(), |s| format!(" for {s:.1}s"));
            chain.push(format!(
                "pid {} ({}) is {}{age}",
                c.pid,
                c.comm,
                if stopped(c) { "stopped".to_string() } else { format!("blocked in {doing}") }
            ));
            evidence.extend(c.threads.iter().map(|t| fact(thread_line(c, t))));
            // Its own wait names the child it waits for; otherwise follow its children anyway
            // (a `timeout` parked in sigsuspend still hangs on the child it supervises).
            next = match main.and_then(|t| t.child_wait.as_ref()) {
                Some(w) => w.children.iter().map(|c| c.pid).collect(),
                None => c.children.clone(),
            };
        }
        if all_hung && chain.len() > 1 {
            out.push(Finding::new(
                Signature::HangWaitingChild,
                Severity::Error,
                p.pid,
                t.tid,
                chain.join(", which "),
                evidence,
            ));
        }
    }
    out
}

fn deadlocks(snap: &StuckSnapshot, graph: &WaitGraph) -> Vec<Finding> {
    let threads: BTreeMap<u32, (&ProcessSnapshot, &ThreadSnapshot)> =
        snap.threads().map(|(p, t)| (t.tid, (p, t))).collect();
    graph
        .deadlocks()
        .into_iter()
        .map(|d| {
            let first = d.cycle[0].tid;
            let mut evidence = Vec::new();
            for step in &d.cycle {
                let (p, t) = threads[&step.tid];
                evidence.push(fact(thread_line(p, t)));
                evidence.extend(t.user_frames.iter().take(6).map(|f| fact(format!("thread {} at {f}", t.tid))));
            }
            let (p, _) = threads[&first];
            evidence.extend(runtime_fact(p));
            Finding::new(Signature::Deadlock, Severity::Error, p.pid, first, d.sentence(), evidence)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::analysis::snapshot::*;

    fn thread(tid: u32, state: &str, call: Option<&str>) -> ThreadSnapshot {
        ThreadSnapshot {
            tid,
            comm: "prog".into(),
            state: state.into(),
            wchan: "futex_wait_queue".into(),
            syscall: call.map(|name| BlockedCall {
                name: name.into(),
                text: format!("{name}(...)"),
                blocked_s: Some(5.0),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn snapshot(processes: Vec<ProcessSnapshot>) -> StuckSnapshot {
        StuckSnapshot {
            schema: 1,
            taken_at: "t".into(),
            reason: "no progress for 2s".into(),
            window_s: 2.0,
            syscalls_in_window: 0,
            progress_window_s: None,
            processes,
        }
    }

    #[test]
    fn timeouts_are_read_from_each_calls_own_argument() {
        assert!(super::timed("epoll_pwait2", &[3, 0x1000, 8, 0x2000, 0, 8]));
        assert!(!super::timed("epoll_pwait2", &[3, 0x1000, 8, 0, 0x3000, 8]), "a sigmask is no timeout");
        assert!(super::timed("pselect6", &[0, 0, 0, 0, 0x2000, 0]));
        assert!(!super::timed("pselect6", &[4, 0x1000, 0, 0, 0, 0]));
        assert!(super::timed("futex", &[0x10, 128, 2, 0x2000, 0, 0]), "FUTEX_WAIT_PRIVATE with a timeout");
        assert!(!super::timed("futex", &[0x10, 128, 2, 0, 0, 0]));
        assert!(super::timed("poll", &[0x10, 1, 50]) && !super::timed("poll", &[0x10, 1, u64::MAX]));
    }

    #[test]
    fn a_busy_thread_whose_calls_made_progress_is_not_spinning() {
        let mut busy = thread(11, "R", None);
        busy.cpu_share = 0.99;
        busy.idle_s = Some(0.01);
        let snap = snapshot(vec![process(10, "S", vec![busy.clone()])]);
        assert!(!classify_with(&[], None, Some(&snap)).has(Signature::HangSpinning));
        busy.idle_s = Some(3.0);
        let snap = snapshot(vec![process(10, "S", vec![busy])]);
        assert!(classify_with(&[], None, Some(&snap)).has(Signature::HangSpinning));
    }

    #[test]
    fn a_waiter_caught_just_woken_inside_its_call_is_still_asleep() {
        // A Go ABBA deadlock with a ticker: the snapshot caught one thread runnable inside
        // epoll_pwait (woken by the ticker, not yet returned), using no CPU over the window.
        let mut woken = thread(10, "R", Some("epoll_pwait"));
        woken.wchan = String::new();
        let mut snap = snapshot(vec![process(10, "R", vec![woken.clone(), thread(11, "S", Some("futex"))])]);
        snap.progress_window_s = Some(2.0);
        assert!(classify_with(&[], None, Some(&snap)).has(Signature::HangBlocked));
        // On CPU over the window, it is no waiter.
        woken.cpu_share = 0.5;
        let mut snap = snapshot(vec![process(10, "R", vec![woken, thread(11, "S", Some("futex"))])]);
        snap.progress_window_s = Some(2.0);
        assert!(!classify_with(&[], None, Some(&snap)).has(Signature::HangBlocked));
    }

    #[test]
    fn a_thread_idle_for_the_watchdogs_window_is_stuck_though_the_cpu_window_ran_longer() {
        // The CPU window reaches back one sampling interval more than --hang-after.
        let mut reader = thread(11, "S", Some("read"));
        reader.idle_s = Some(2.34);
        let mut ticker = thread(12, "S", Some("pselect6"));
        ticker.idle_s = Some(2.5);
        let mut snap = snapshot(vec![process(10, "S", vec![reader, ticker])]);
        snap.window_s = 2.5;
        snap.syscalls_in_window = 40;
        assert!(classify_with(&[], None, Some(&snap)).findings.is_empty(), "without the watchdog's window: too short");
        snap.progress_window_s = Some(2.0);
        let c = classify_with(&[], None, Some(&snap));
        assert!(only(&c, Signature::HangBlocked).summary.starts_with("no thread made progress"), "{c:#?}");
    }

    fn process(pid: u32, state: &str, threads: Vec<ThreadSnapshot>) -> ProcessSnapshot {
        ProcessSnapshot { pid, comm: "prog".into(), state: state.into(), threads, ..Default::default() }
    }

    #[test]
    fn an_abba_cycle_is_a_deadlock_naming_both_mutexes() {
        let mut a = thread(11, "S", Some("futex"));
        a.futex = Some(FutexWait { addr: 0x1000, owner_tid: Some(12), ..Default::default() });
        a.user_frames = vec!["lock_b_then_a+0x20 (prog)".into()];
        let mut b = thread(12, "S", Some("futex"));
        b.futex = Some(FutexWait { addr: 0x2000, owner_tid: Some(11), ..Default::default() });
        let snap = snapshot(vec![process(10, "S", vec![thread(10, "S", Some("futex")), a, b])]);
        let c = classify_with(&[], None, Some(&snap));
        let f = only(&c, Signature::Deadlock);
        assert!(
            f.summary
                .contains("thread 11 (prog) waits in lock_b_then_a+0x20 (prog) for mutex 0x1000 held by thread 12"),
            "{}",
            f.summary
        );
        assert!(
            f.summary.contains("thread 12 (prog) waits in futex for mutex 0x2000 held by thread 11"),
            "{}",
            f.summary
        );
        assert!(c.has(Signature::HangBlocked));
    }

    #[test]
    fn a_thread_on_cpu_without_syscalls_is_spinning_with_its_top_function() {
        let mut spinner = thread(11, "R", None);
        spinner.cpu_share = 0.99;
        spinner.samples = vec![("spin_here".into(), 95), ("other".into(), 4)];
        let frames = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        spinner.stacks = vec![
            SampledStack { frames: frames(&["spin_here", "run", "main"]), count: 90 },
            SampledStack { frames: frames(&["spin_here", "other_caller", "main"]), count: 5 },
            SampledStack { frames: frames(&["other", "main"]), count: 4 },
        ];
        let mut p = process(10, "S", vec![thread(10, "S", Some("futex")), spinner]);
        p.runtime = crate::analysis::runtime::Runtime::Node;
        p.jit_names = "JIT code named from /tmp/perf-10.map".into();
        let snap = snapshot(vec![p]);
        let c = classify_with(&[], None, Some(&snap));
        let f = only(&c, Signature::HangSpinning);
        assert!(f.summary.contains("of pid 10 (prog, Node.js (V8)) spins"), "{}", f.summary);
        assert!(f.summary.contains("most samples (95 of 99) in spin_here"), "{}", f.summary);
        let texts: Vec<&str> = f.evidence.iter().map(|e| e.text.as_str()).collect();
        assert!(texts.contains(&"pid 10 (prog) runs Node.js (V8); JIT code named from /tmp/perf-10.map"), "{texts:#?}");
        assert!(texts.contains(&"91% of samples (90 of 99) in main -> run -> spin_here"), "{texts:#?}");
        assert!(texts.contains(&"4% of samples (4 of 99) in main -> other"), "{texts:#?}");
        assert!(!c.has(Signature::HangBlocked), "a thread on CPU is not asleep");
    }

    #[test]
    fn a_wait_for_a_sleeping_child_names_the_chain() {
        let mut waiter = thread(10, "S", Some("wait4"));
        waiter.child_wait = Some(ChildWait {
            waits_for: "any child".into(),
            children: vec![ChildState { pid: 20, comm: "sleep".into(), state: "S".into() }],
        });
        let child = ProcessSnapshot {
            pid: 20,
            comm: "sleep".into(),
            state: "S".into(),
            threads: vec![thread(20, "S", Some("clock_nanosleep"))],
            ..Default::default()
        };
        let snap = snapshot(vec![process(10, "S", vec![waiter]), child]);
        let c = classify_with(&[], None, Some(&snap));
        let f = only(&c, Signature::HangWaitingChild);
        assert_eq!(f.summary, "pid 10 (prog) thread 10 waits in wait4 for any child, which pid 20 (sleep) is blocked in clock_nanosleep for 5.0s");
    }

    #[test]
    fn a_stopped_process_is_hang_stopped_and_progress_means_no_blocked_hang() {
        let snap = snapshot(vec![process(10, "T", vec![thread(10, "T", None)])]);
        let c = classify_with(&[], None, Some(&snap));
        assert!(only(&c, Signature::HangStopped).summary.contains("is stopped (state T"));
        let mut busy = snapshot(vec![process(10, "S", vec![thread(10, "S", Some("read"))])]);
        busy.syscalls_in_window = 10;
        assert!(classify_with(&[], None, Some(&busy)).findings.is_empty());
    }
}
