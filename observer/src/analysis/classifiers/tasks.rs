//! `clone-eagain`: a clone / clone3 / fork / vfork refused with EAGAIN, and which task limit
//! explains it, with its numbers.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use observer_common::syscalls::{Syscall, RLIMIT_NPROC};

use crate::{
    analysis::{
        failure_facts::{self, FailureFacts, Shortage},
        Classifier, Context, Evidence, Finding, Severity, Signature,
    },
    decode::is_error_return,
    event::{returned, Event},
};

const EAGAIN: i32 = 11;

/// The failure-time facts of `pid`, or of the ancestor it inherited its cgroups from.
fn facts<'a>(cx: &Context<'a>, pid: u32) -> Option<&'a FailureFacts> {
    failure_facts::find_inherited(cx.failures, pid, Shortage::Tasks, |p| cx.book.process(p).and_then(|p| p.parent))
}

/// (pid, first failing call, failures, live tasks at the first failure).
type Failure = (u32, Evidence, u32, usize);

#[derive(Default)]
pub struct CloneEagain {
    /// Tasks of the capture alive right now (tids).
    live: BTreeSet<u32>,
    /// The thread of the latest call, already in `live`: a thread's calls come in runs.
    latest_live: Option<u32>,
    /// Per thread: its first failure.
    failures: HashMap<u32, Failure>,
}

impl CloneEagain {
    fn explain(&self, cx: &Context<'_>, pid: u32, live_at_failure: usize) -> (String, Vec<Evidence>) {
        let Some(pf) = cx.preflight else {
            return ("no preflight snapshot to name the limit".into(), vec![]);
        };
        let mut evidence = Vec::new();
        let mut reasons = Vec::new();
        let at_start = pf.pids_cgroup();
        // The cgroup the failing task was in when the failure arrived beats the one at start.
        let at_failure = facts(cx, pid).and_then(|f| f.pids_cgroup());
        match (at_failure, at_start) {
            (Some(cg), start) if matches!(cg.pids_max, Some(Some(_))) => {
                let Some(Some(max)) = cg.pids_max else { unreachable!("matched above") };
                // Unknown when the cgroup could only be read after the task was gone.
                let in_use = cg.pids_current.map_or(String::new(), |c| format!(" and {c} were in use when it failed"));
                let current = cg.pids_current.map_or("not read in time".to_string(), |c| c.to_string());
                let refused =
                    cg.pids_refused.map_or(String::new(), |n| format!("; the kernel refused {n} forks for it so far"));
                evidence.push(Evidence::fact(
                    "failure",
                    format!(
                        "pids cgroup {} ({}) when the failure arrived: pids.max {max}, pids.current {current}{}",
                        cg.path,
                        cg.hierarchy,
                        cg.pids_refused.map_or(String::new(), |n| format!(", pids.events max {n}"))
                    ),
                ));
                let moved = match start {
                    Some(s) if s.path != cg.path => {
                        format!(" (the command joined it after the start: at start it was in {})", s.path)
                    }
                    None => " (the command joined it after the start)".to_string(),
                    _ => String::new(),
                };
                reasons.push(format!("the pids cgroup {} allows {max} tasks{in_use}{moved}{refused}", cg.path));
            }
            _ => {
                if let Some(cg) = at_start {
                    if let Some(Some(max)) = cg.pids_max {
                        let current = cg.pids_current.unwrap_or(0);
                        // The preflight counted the launched command; the capture adds what it created since.
                        let estimate = current + live_at_failure.saturating_sub(1) as u64;
                        evidence.push(Evidence::fact(
                            "preflight",
                            format!(
                                "pids cgroup {} ({}): pids.max {max}, pids.current {current} at start",
                                cg.path, cg.hierarchy
                            ),
                        ));
                        reasons.push(format!(
                            "the pids cgroup {} allows {max} tasks and about {estimate} were in use ({current} at start + {} created by the command and still alive)",
                            cg.path,
                            live_at_failure.saturating_sub(1)
                        ));
                    }
                }
            }
        }
        if let Some((nproc, fact)) = super::memory::limit_fact(cx, pid, RLIMIT_NPROC, "Max processes", "RLIMIT_NPROC") {
            evidence.push(fact);
            if pf.uid != 0 && reasons.is_empty() {
                reasons.push(format!(
                    "RLIMIT_NPROC is {nproc} tasks for uid {} (it counts every task of the user, not only this command's {live_at_failure})",
                    pf.uid
                ));
            }
        }
        for (name, label) in [("kernel.threads-max", "kernel.threads-max"), ("kernel.pid_max", "kernel.pid_max")] {
            if let Some(v) = pf.sysctl(name) {
                evidence.push(Evidence::fact("preflight", format!("{label} = {v}")));
            }
        }
        evidence
            .push(Evidence::fact("capture", format!("{live_at_failure} tasks of the command alive at the failure")));
        if reasons.is_empty() {
            reasons.push(format!(
                "no pids cgroup or RLIMIT_NPROC (at start or when it failed) explains it; compare kernel.threads-max ({}) and kernel.pid_max ({}) with the system's task count",
                pf.sysctl("kernel.threads-max").unwrap_or("?"),
                pf.sysctl("kernel.pid_max").unwrap_or("?")
            ));
        }
        (reasons.join("; "), evidence)
    }
}

impl Classifier for CloneEagain {
    fn observe(&mut self, event: &Event, cx: &Context<'_>) {
        match event {
            Event::Fork(f) => {
                self.live.insert(f.header.tid);
                self.live.insert(f.child_tid);
            }
            Event::Exit(x) => {
                self.live.remove(&x.header.tid);
                self.latest_live = None;
            }
            Event::Syscall(e) => {
                if self.latest_live != Some(e.header.tid) {
                    self.live.insert(e.header.tid);
                    self.latest_live = Some(e.header.tid);
                }
                if !returned(e) || is_error_return(e.ret) != Some(EAGAIN) {
                    return;
                }
                if !Syscall::from_nr(e.nr).is_some_and(Syscall::creates_task) {
                    return;
                }
                let live = self.live.len();
                self.failures.entry(e.header.tid).and_modify(|f| f.2 += 1).or_insert((
                    e.header.tgid,
                    cx.evidence(event),
                    1,
                    live,
                ));
            }
            _ => {}
        }
    }

    fn finish(&mut self, cx: &Context<'_>, _: &[Finding]) -> Vec<Finding> {
        // One finding per limit: the threads of every process that hit the same pids cgroup (or
        // no known limit) share one cause.
        let mut groups: BTreeMap<String, Vec<(u32, Failure)>> = BTreeMap::new();
        for (tid, failure) in self.failures.drain() {
            let pid = failure.0;
            let limit = facts(cx, pid)
                .and_then(|f| f.pids_cgroup())
                .filter(|c| matches!(c.pids_max, Some(Some(_))))
                .or_else(|| cx.preflight.and_then(|p| p.pids_cgroup()))
                .map_or(String::new(), |c| c.path.clone());
            groups.entry(limit).or_default().push((tid, failure));
        }
        groups
            .into_values()
            .map(|mut group| {
                group.sort_by_key(|(tid, (_, first, _, _))| (first.ts_ns, *tid));
                let (tid, (pid, _, _, live)) = group[0].clone();
                let (why, facts) = self.explain(cx, pid, live);
                let calls: u32 = group.iter().map(|(_, f)| f.2).sum();
                let processes: BTreeSet<u32> = group.iter().map(|(_, f)| f.0).collect();
                let who = match (group.len(), processes.len()) {
                    (1, _) => format!("thread {tid}"),
                    (threads, 1) => format!("{threads} threads of pid {pid} (first thread {tid})"),
                    (threads, n) => format!("{threads} threads in {n} processes (first thread {tid} of pid {pid})"),
                };
                let times = if calls > 1 { format!(" ({calls} times)") } else { String::new() };
                let mut evidence: Vec<Evidence> = group.iter().take(8).map(|(_, f)| f.1.clone()).collect();
                evidence.extend(facts);
                let mut finding = Finding::new(
                    Signature::CloneEagain,
                    Severity::Error,
                    pid,
                    tid,
                    format!("{who} could not create a task (clone = EAGAIN){times}: {why}"),
                    evidence,
                );
                finding.processes = processes.into_iter().filter(|&p| p != pid).collect();
                finding
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::preflight::CgroupInfo;

    #[test]
    fn a_clone_eagain_under_a_pids_cgroup_names_its_numbers() {
        let mut pf = preflight_with_limit("Max processes", 1000);
        pf.cgroups.push(CgroupInfo {
            hierarchy: "pids".into(),
            path: "/observer-test".into(),
            pids_max: Some(Some(4)),
            pids_current: Some(1),
            ..Default::default()
        });
        let events = vec![
            fork(10, 10, 11, true),
            fork(10, 10, 12, true),
            fork(10, 10, 13, true),
            syscall(10, 10, "clone3", [0x7ffd_0000, 88, 0, 0, 0, 0], -11),
        ];
        let c = classify(&events, Some(pf));
        let f = only(&c, Signature::CloneEagain);
        assert_eq!((f.pid, f.tid), (10, 10));
        assert!(
            f.summary.contains("pids cgroup /observer-test allows 4 tasks and about 4 were in use"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn a_successful_clone_or_another_errno_is_not_clone_eagain() {
        let events =
            vec![syscall(10, 10, "clone3", [0, 88, 0, 0, 0, 0], 11), syscall(10, 10, "clone", [0, 0, 0, 0, 0, 0], -12)];
        assert!(!classify(&events, None).has(Signature::CloneEagain));
    }
}
