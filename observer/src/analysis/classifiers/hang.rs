//! Hang signatures, read from the stuck snapshot: `hang-blocked` (everything asleep), `hang-spinning`
//! (a thread on CPU without syscalls), `hang-stopped` (a stopped process holds the tree),
//! `deadlock` (a cycle of mutex waits) and `hang-waiting-child` (waiting on a hung child).
use std::collections::{BTreeMap, BTreeSet};

use crate::{
    analysis::snapshot::{ProcessSnapshot, StuckSnapshot, TaskState, ThreadSnapshot, SPIN_SHARE},
    analysis::{Classifier, Context, Evidence, Finding, Severity, Signature},
    event::Event,
};

/// Below this share of a CPU over the window a thread counts as asleep.
const ASLEEP_SHARE: f64 = 0.02;

fn fact(text: impl Into<String>) -> Evidence {
    Evidence::fact("snapshot", text)
}

fn asleep(t: &ThreadSnapshot) -> bool {
    t.state.is_waiting() && t.cpu_share < ASLEEP_SHARE
}

fn stopped(p: &ProcessSnapshot) -> bool {
    p.state.is_stopped() || (!p.threads.is_empty() && p.threads.iter().all(|t| t.state.is_stopped()))
}

/// The first frame worth naming: outside libc, else the first there is.
fn wait_site(t: &ThreadSnapshot) -> Option<&str> {
    let outside_libc = t.user_frames.iter().find(|f| !f.contains("libc.so") && !f.contains("ld-linux"));
    outside_libc.or(t.user_frames.first()).map(String::as_str)
}

/// One thread's wait, in words: `ppoll on eventfd fd 3, pipe fd 4 (self-pipe)`.
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
                let self_pipe = if f.note.starts_with("self-pipe") { " (self-pipe)" } else { "" };
                format!(
                    "{} fd {}{self_pipe}",
                    if f.kind == "unknown" { f.target.as_str() } else { f.kind.as_str() },
                    f.fd
                )
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
        findings.extend(deadlocks(snap));
        findings.extend(stopped_processes(snap, earlier));
        findings.extend(waiting_on_hung_children(snap));
        findings.extend(spinning(snap));
        findings.extend(blocked(snap));
        findings
    }
}

fn blocked(snap: &StuckSnapshot) -> Option<Finding> {
    let threads: Vec<(&ProcessSnapshot, &ThreadSnapshot)> = snap.threads().collect();
    if threads.is_empty() || snap.syscalls_in_window > 0 || !threads.iter().all(|(_, t)| asleep(t)) {
        return None;
    }
    // Group the waits: "12 threads in futex on 3 futexes; main thread in ppoll on ...".
    let mut by_call: BTreeMap<String, (usize, BTreeSet<u64>)> = BTreeMap::new();
    let mut parts = Vec::new();
    let root = snap.processes.first();
    for (p, t) in &threads {
        if Some(p.pid) == root.map(|r| r.pid) && t.tid == p.pid {
            parts.insert(0, format!("main thread {} in {}", t.tid, describe_wait(t)));
            continue;
        }
        let name = t.syscall.as_ref().map_or_else(|| format!("state {}", t.state), |c| c.name.clone());
        let entry = by_call.entry(name).or_default();
        entry.0 += 1;
        if let Some(f) = &t.futex {
            entry.1.insert(f.addr);
        }
    }
    for (name, (n, futexes)) in by_call {
        let on = if futexes.is_empty() {
            String::new()
        } else {
            format!(" on {} futex{}", futexes.len(), if futexes.len() == 1 { "" } else { "es" })
        };
        parts.push(format!("{n} thread{} in {name}{on}", if n == 1 { "" } else { "s" }));
    }
    parts.push("nothing on CPU".into());
    let (p, t) = threads[0];
    Some(Finding {
        cause: None,
        id: String::new(),
        caused_by: Vec::new(),
        workload: None,
        processes: Vec::new(),
        signature: Signature::HangBlocked,
        severity: Severity::Warning,
        pid: p.pid,
        tid: t.tid,
        summary: format!("no thread made progress for {:.1}s: {}", snap.window_s, parts.join("; ")),
        evidence: std::iter::once(fact(format!("snapshot taken: {}", snap.reason)))
            .chain(threads.iter().map(|(p, t)| fact(thread_line(p, t))))
            .collect(),
    })
}

fn spinning(snap: &StuckSnapshot) -> Vec<Finding> {
    snap.threads()
        .filter(|(_, t)| {
            t.cpu_share >= SPIN_SHARE
                && t.syscall.as_ref().is_none_or(|c| c.blocked_s.is_some_and(|s| s >= snap.window_s))
        })
        .map(|(p, t)| {
            let top = t.samples.first().map_or("no stack samples".to_string(), |(f, n)| {
                let total: u32 = t.samples.iter().map(|(_, n)| n).sum();
                format!("most samples ({n} of {total}) in {f}")
            });
            let mut evidence = vec![fact(format!(
                "thread {} used {:.0}% of a CPU over {:.1}s (user {:.2}s, system {:.2}s) without completing a syscall",
                t.tid,
                t.cpu_share * 100.0,
                snap.window_s,
                t.cpu_user_s,
                t.cpu_system_s
            ))];
            evidence.extend(t.samples.iter().take(5).map(|(f, n)| fact(format!("sampled {n} x {f}"))));
            Finding {
                cause: None,
                id: String::new(),
                caused_by: Vec::new(),
                workload: None,
                processes: Vec::new(),
                signature: Signature::HangSpinning,
                severity: Severity::Error,
                pid: p.pid,
                tid: t.tid,
                summary: format!(
                    "thread {} ({}) of pid {} spins on a CPU making no syscalls: {top}",
                    t.tid, t.comm, p.pid
                ),
                evidence,
            }
        })
        .collect()
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

fn deadlocks(snap: &StuckSnapshot) -> Vec<Finding> {
    // Wait-for graph: thread -> the thread owning the mutex it waits on.
    let mut waits: BTreeMap<u32, (u32, u64)> = BTreeMap::new();
    let mut threads: BTreeMap<u32, (&ProcessSnapshot, &ThreadSnapshot)> = BTreeMap::new();
    for (p, t) in snap.threads() {
        threads.insert(t.tid, (p, t));
        if let Some(f) = &t.futex {
            if let Some(owner) = f.owner_tid {
                waits.insert(t.tid, (owner, f.addr));
            }
        }
    }
    let mut reported: BTreeSet<Vec<u32>> = BTreeSet::new();
    let mut out = Vec::new();
    for &start in waits.keys() {
        let mut path = vec![start];
        let mut at = start;
        while let Some(&(owner, _)) = waits.get(&at) {
            if let Some(pos) = path.iter().position(|&t| t == owner) {
                let cycle: Vec<u32> = path[pos..].to_vec();
                let mut key = cycle.clone();
                key.sort_unstable();
                if reported.insert(key) {
                    out.push(deadlock_finding(&cycle, &waits, &threads));
                }
                break;
            }
            path.push(owner);
            at = owner;
        }
    }
    out
}

fn deadlock_finding(
    cycle: &[u32],
    waits: &BTreeMap<u32, (u32, u64)>,
    threads: &BTreeMap<u32, (&ProcessSnapshot, &ThreadSnapshot)>,
) -> Finding {
    let mut parts = Vec::new();
    let mut evidence = Vec::new();
    for &tid in cycle {
        let (owner, addr) = waits[&tid];
        let (p, t) = threads[&tid];
        let site = wait_site(t).map_or(String::new(), |s| format!(" in {s}"));
        parts.push(format!("thread {tid} ({}) waits{site} for mutex {addr:#x} held by thread {owner}", t.comm));
        evidence.push(fact(thread_line(p, t)));
        evidence.extend(t.user_frames.iter().take(6).map(|f| fact(format!("thread {tid} at {f}"))));
    }
    let (p, _) = threads[&cycle[0]];
    Finding::new(
        Signature::Deadlock,
        Severity::Error,
        p.pid,
        cycle[0],
        format!("{} threads wait on each other's mutexes: {}", cycle.len(), parts.join("; ")),
        evidence,
    )
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
            processes,
        }
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
        assert!(f.summary.contains("thread 12 (prog) waits for mutex 0x2000 held by thread 11"), "{}", f.summary);
        assert!(c.has(Signature::HangBlocked));
    }

    #[test]
    fn a_thread_on_cpu_without_syscalls_is_spinning_with_its_top_function() {
        let mut spinner = thread(11, "R", None);
        spinner.cpu_share = 0.99;
        spinner.samples = vec![("spin_here".into(), 95), ("other".into(), 4)];
        let snap = snapshot(vec![process(10, "S", vec![thread(10, "S", Some("futex")), spinner])]);
        let c = classify_with(&[], None, Some(&snap));
        assert!(only(&c, Signature::HangSpinning).summary.contains("most samples (95 of 99) in spin_here"));
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
