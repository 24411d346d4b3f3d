//! Causal links between findings, across threads and processes: a limit hit makes a clone or a
//! mapping fail, the failure makes the process trap, abort or exit, and the parent that waits for
//! it hangs. Each finding gets an id and the ids of what caused it; the verdict is the root cause
//! with its chain, and the findings are ordered root first, consequences under it.
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Finding, Severity, Signature};
use crate::processes::{describe_exit, ProcessBook, ProcessExit};

/// The root cause and what followed from it, as `classification.json` carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Id of the root-cause finding.
    pub root: String,
    /// Ids of its consequences, in the order they happened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consequences: Vec<String>,
    /// The most severe finding of the chain.
    pub severity: Severity,
    /// The chain in one sentence.
    pub text: String,
}

/// What a finding is, for linking.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A resource could not be had: a thread, a task, memory.
    Failure,
    /// A process ended badly: a fatal signal or a non-zero exit.
    Death,
    /// A process stopped by job control.
    Stop,
    /// Progress stopped.
    Hang,
    Other,
}

fn role(s: Signature) -> Role {
    match s {
        Signature::PthreadStackMprotectEnomem
        | Signature::PthreadStackMmapEnomem
        | Signature::CloneEagain
        | Signature::MmapEnomem => Role::Failure,
        Signature::FatalSignal | Signature::ExitNonzero => Role::Death,
        Signature::JobControlStop => Role::Stop,
        Signature::HangBlocked | Signature::HangWaitingChild | Signature::HangStopped => Role::Hang,
        Signature::HangSpinning | Signature::Deadlock | Signature::VaProbeEnomem => Role::Other,
    }
}

fn first_ts(f: &Finding) -> Option<u64> {
    f.evidence.iter().filter_map(|e| e.ts_ns).min()
}

fn last_ts(f: &Finding) -> Option<u64> {
    f.evidence.iter().filter_map(|e| e.ts_ns).max()
}

/// Whether `cause` happened no later than `effect` (unknown times do not rule it out).
fn before(cause: &Finding, effect: &Finding) -> bool {
    match (first_ts(cause), last_ts(effect)) {
        (Some(c), Some(e)) => c <= e,
        _ => true,
    }
}

/// `pid` and every process the capture saw it create, transitively.
fn tree(children: &BTreeMap<u32, Vec<u32>>, pid: u32) -> BTreeSet<u32> {
    let mut out = BTreeSet::from([pid]);
    let mut next = vec![pid];
    while let Some(p) = next.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            if out.insert(c) {
                next.push(c);
            }
        }
    }
    out
}

/// Each process's children, as the capture saw them created.
fn children_of(book: &ProcessBook) -> BTreeMap<u32, Vec<u32>> {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for p in book.processes() {
        if let Some(parent) = p.parent {
            children.entry(parent).or_default().push(p.pid);
        }
    }
    children
}

/// The processes a finding speaks of: its own and those of the threads in its evidence (one
/// finding may gather the same failure in several processes).
fn processes(f: &Finding, book: &ProcessBook) -> BTreeSet<u32> {
    let mut out = BTreeSet::from([f.pid]);
    out.extend(f.processes.iter().copied());
    out.extend(f.evidence.iter().filter_map(|e| e.tid).filter_map(|tid| book.tgid_of(tid)));
    out
}

/// Whether `cause` explains `effect`.
/// `effect_tree` is the effect's process and its descendants; `cause_processes` those the cause
/// speaks of.
fn explains(cause: &Finding, effect: &Finding, effect_tree: &BTreeSet<u32>, cause_processes: &BTreeSet<u32>) -> bool {
    // Informational findings (the observer's own stop, a harmless probe) neither cause nor follow.
    if std::ptr::eq(cause, effect)
        || cause.severity == Severity::Info
        || effect.severity == Severity::Info
        || !before(cause, effect)
    {
        return false;
    }
    match (role(cause.signature), role(effect.signature)) {
        // The failing process traps, aborts or exits because of it.
        (Role::Failure, Role::Death) => cause_processes.contains(&effect.pid),
        // A hung process waits on a tree where something failed or died.
        (Role::Failure | Role::Death, Role::Hang) => {
            effect.signature != Signature::HangStopped && !effect_tree.is_disjoint(cause_processes)
        }
        (Role::Stop, Role::Hang) => effect.signature == Signature::HangStopped && cause.pid == effect.pid,
        // Threads deadlocked keep their process, and whoever waits on it, from progressing.
        (Role::Other, Role::Hang) => {
            cause.signature == Signature::Deadlock
                && effect.signature != Signature::HangStopped
                && effect_tree.contains(&cause.pid)
        }
        // A stopped process holds whoever waits on it.
        (Role::Hang, Role::Hang) => {
            cause.signature == Signature::HangStopped
                && effect.signature != Signature::HangStopped
                && cause.pid != effect.pid
                && effect_tree.contains(&cause.pid)
        }
        _ => false,
    }
}

/// The first clause of a summary, to name a consequence in the verdict's sentence.
fn headline(f: &Finding) -> &str {
    let s = f.summary.as_str();
    let cut = [": ", "; "].iter().filter_map(|sep| s.find(sep)).min().unwrap_or(s.len());
    &s[..cut]
}

/// Everything that followed from `root`, transitively, in the order it happened.
fn consequences(root: usize, caused_by: &[Vec<usize>], findings: &[Finding]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    let mut next = vec![root];
    while let Some(at) = next.pop() {
        for (e, causes) in caused_by.iter().enumerate() {
            if causes.contains(&at) && !out.contains(&e) && e != root {
                out.push(e);
                next.push(e);
            }
        }
    }
    out.sort_by_key(|&e| (first_ts(&findings[e]).unwrap_or(u64::MAX), e));
    out
}

/// The root cause and its consequences in one sentence.
fn sentence(root: usize, chain: &[usize], findings: &[Finding], book: &ProcessBook) -> String {
    let cause = &findings[root];
    let mut text = cause.summary.clone();
    // Consequences of one kind are said once: "which led to [fatal-signal] ... (and 4 more)".
    let mut said: Vec<(Signature, usize, usize)> = Vec::new();
    for &e in chain {
        match said.iter_mut().find(|(s, _, _)| *s == findings[e].signature) {
            Some((_, _, more)) => *more += 1,
            None => said.push((findings[e].signature, e, 0)),
        }
    }
    for (signature, first, more) in said {
        let also = if more > 0 { format!(" (and {more} more)") } else { String::new() };
        text.push_str(&format!("; which led to [{signature}] {}{also}", headline(&findings[first])));
    }
    // How the failing process ended, when no finding says it.
    let ended_in_chain =
        chain.iter().any(|&e| role(findings[e].signature) == Role::Death && findings[e].pid == cause.pid);
    if role(cause.signature) == Role::Failure && !ended_in_chain {
        let exit = book.process(cause.pid).and_then(|p| p.exit.clone());
        if let Some(exit @ (ProcessExit::Signal { .. } | ProcessExit::Code(1..))) = exit {
            text.push_str(&format!(
                "; process {} ({}) then ended with {}",
                cause.pid,
                book.comm(cause.pid),
                describe_exit(&exit)
            ));
        }
    }
    text
}

/// Gives every finding an id, links causes to consequences, orders the findings root cause first
/// and returns the verdict (`None` when nothing above info was found).
pub fn link(findings: &mut Vec<Finding>, book: &ProcessBook) -> Option<Verdict> {
    let n = findings.len();
    // Computed once: each finding's tree (for it as an effect) and processes (as a cause).
    let children = children_of(book);
    let trees: Vec<BTreeSet<u32>> = findings.iter().map(|f| tree(&children, f.pid)).collect();
    let spoken_of: Vec<BTreeSet<u32>> = findings.iter().map(|f| processes(f, book)).collect();
    let mut caused_by: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (e, effect) in findings.iter().enumerate() {
        for (c, cause) in findings.iter().enumerate() {
            if explains(cause, effect, &trees[e], &spoken_of[c]) {
                caused_by[e].push(c);
            }
        }
    }
    // A consequence of a consequence is linked to the nearer one only (failure -> death -> hang,
    // not failure -> hang as well).
    for e in 0..n {
        let direct: Vec<usize> = caused_by[e]
            .iter()
            .copied()
            .filter(|&c| !caused_by[e].iter().any(|&m| m != c && caused_by[m].contains(&c)))
            .collect();
        caused_by[e] = direct;
    }
    let chains: Vec<Vec<usize>> = (0..n).map(|r| consequences(r, &caused_by, findings)).collect();
    let worst: Vec<Severity> = (0..n)
        .map(|r| chains[r].iter().map(|&e| findings[e].severity).fold(findings[r].severity, Severity::max))
        .collect();
    // Roots, most severe outcome first, then the earliest.
    let mut roots: Vec<usize> = (0..n).filter(|&i| caused_by[i].is_empty()).collect();
    roots.sort_by_key(|&r| {
        (std::cmp::Reverse(worst[r]), std::cmp::Reverse(findings[r].severity), first_ts(&findings[r]), r)
    });
    let mut order: Vec<usize> = Vec::with_capacity(n);
    for &r in &roots {
        for i in std::iter::once(r).chain(chains[r].iter().copied()) {
            if !order.contains(&i) {
                order.push(i);
            }
        }
    }
    let rest: Vec<usize> = (0..n).filter(|i| !order.contains(i)).collect();
    order.extend(rest);
    let position: BTreeMap<usize, usize> = order.iter().enumerate().map(|(pos, &i)| (i, pos)).collect();
    let id = |i: usize| format!("F{}", position[&i] + 1);
    let verdict = roots.first().filter(|&&r| worst[r] > Severity::Info).map(|&r| Verdict {
        root: id(r),
        consequences: chains[r].iter().map(|&e| id(e)).collect(),
        severity: worst[r],
        text: sentence(r, &chains[r], findings, book),
    });
    for (i, f) in findings.iter_mut().enumerate() {
        f.id = id(i);
        let mut causes: Vec<usize> = caused_by[i].iter().map(|c| position[c]).collect();
        causes.sort_unstable();
        f.caused_by = causes.iter().map(|pos| format!("F{}", pos + 1)).collect();
    }
    let mut taken: Vec<Option<Finding>> = std::mem::take(findings).into_iter().map(Some).collect();
    findings.extend(order.iter().filter_map(|&i| taken[i].take()));
    verdict
}

#[cfg(test)]
mod tests {
    use super::super::classifiers::testing::*;
    use super::*;
    use crate::analysis::snapshot::{BlockedCall, ProcessSnapshot, StuckSnapshot, TaskState, ThreadSnapshot};

    fn blocked_parent() -> StuckSnapshot {
        let thread = ThreadSnapshot {
            tid: 10,
            comm: "prog".into(),
            state: TaskState::Sleeping,
            syscall: Some(BlockedCall { name: "ppoll".into(), text: "ppoll(...)".into(), ..Default::default() }),
            ..Default::default()
        };
        StuckSnapshot {
            schema: 1,
            reason: "no progress for 2s".into(),
            window_s: 2.0,
            processes: vec![ProcessSnapshot {
                pid: 10,
                comm: "prog".into(),
                threads: vec![thread],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_clone_failure_leads_to_the_childs_trap_and_the_parents_hang() {
        let events = vec![
            fork(10, 10, 20, false),
            syscall(20, 20, "clone3", [0x7ffd_0000, 88, 0, 0, 0, 0], -11),
            generate(20, 20, 20, libc::SIGTRAP, 0x80),
            fault(20, 20, libc::SIGTRAP, 0x80, 0),
            deliver(20, 20, libc::SIGTRAP, 0),
            exit(20, 20, true),
        ];
        let c = classify_with(&events, None, Some(&blocked_parent()));
        let ids: Vec<(&str, Signature, &[String])> =
            c.findings.iter().map(|f| (f.id.as_str(), f.signature, f.caused_by.as_slice())).collect();
        assert_eq!(
            ids,
            [
                ("F1", Signature::CloneEagain, &[][..]),
                ("F2", Signature::FatalSignal, &["F1".to_string()][..]),
                ("F3", Signature::HangBlocked, &["F2".to_string()][..]),
            ],
            "{c:#?}"
        );
        let v = c.verdict.as_ref().unwrap();
        assert_eq!(
            (v.root.as_str(), v.consequences.as_slice(), v.severity),
            ("F1", &["F2".into(), "F3".into()][..], Severity::Fatal)
        );
        assert!(v.text.starts_with("thread 20 could not create a task (clone = EAGAIN)"), "{}", v.text);
        assert!(
            v.text.contains(
                "; which led to [fatal-signal] process 20 (prog) stopped itself; which led to [hang-blocked]"
            ),
            "{}",
            v.text
        );
        let report = crate::analysis::report::to_text(&c);
        assert!(report.starts_with("verdict: fatal [clone-eagain] thread 20 could not create a task"), "{report}");
        assert!(
            report.contains("F3. warning [hang-blocked] pid 10 tid 10\n") && report.contains("   caused by: F2\n"),
            "{report}"
        );
    }

    #[test]
    fn unrelated_failures_stay_separate_roots_and_schema_1_files_still_read() {
        // A trap in a process that had no failure is its own root cause.
        let events = vec![
            generate(10, 10, 10, libc::SIGTRAP, 0x80),
            fault(10, 10, libc::SIGTRAP, 0x80, 0),
            deliver(10, 10, libc::SIGTRAP, 0),
            exit(10, 10, true),
        ];
        let c = classify(&events, None);
        assert!(c.findings.iter().all(|f| f.caused_by.is_empty()));
        assert_eq!(c.verdict.as_ref().map(|v| v.root.as_str()), Some("F1"));
        let old = r#"{"schema": 1, "findings": [{"signature": "clone-eagain", "severity": "error", "pid": 1, "tid": 1, "summary": "s", "evidence": []}]}"#;
        let c: crate::analysis::Classification = serde_json::from_str(old).unwrap();
        assert_eq!(crate::analysis::report::verdict(&c), "error [clone-eagain] s");
    }
}
