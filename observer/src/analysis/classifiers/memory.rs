//! Thread-stack failures seen in the memory syscalls: the stack mapped but not committable
//! (`pthread-stack-mprotect-enomem`), not mappable at all (`pthread-stack-mmap-enomem`), and the
//! harmless 5-level-paging probe (`va-probe-enomem`).
use std::collections::HashMap;

use observer_common::{
    syscalls::{self, Syscall, RLIMIT_AS, RLIMIT_DATA},
    SyscallEvent,
};

use super::human_bytes;
use crate::{
    analysis::{
        failure_facts::{self, Shortage},
        Classifier, Context, Evidence, Finding, Severity, Signature,
    },
    decode::{is_error_return, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_PRIVATE, MAP_STACK, PROT_READ, PROT_WRITE},
    event::{returned, Event},
};

const ENOMEM: i32 = 12;

fn syscall(event: &Event, call: Syscall) -> Option<&SyscallEvent> {
    match event {
        Event::Syscall(e) if e.nr == call.nr() && returned(e) => Some(e),
        _ => None,
    }
}

/// The soft limit in force for process `tgid`: as set during the capture, else as the preflight saw
/// it; `None` when unlimited or unknown.
pub(crate) fn limit_fact(
    cx: &Context<'_>,
    tgid: u32,
    resource: u64,
    proc_name: &str,
    label: &str,
) -> Option<(u64, Evidence)> {
    // Task-count limits are plain numbers; the others are bytes.
    let show = |v: u64| {
        if resource == syscalls::RLIMIT_NPROC {
            format!("{v} tasks")
        } else {
            format!("{v} ({})", human_bytes(v))
        }
    };
    if let Some(change) = cx.book.limit(tgid, resource) {
        if change.value == u64::MAX {
            return None;
        }
        let when = match cx.book.limit_known_time(tgid, resource) {
            true => crate::clock::time_of_day(change.ts_ns as i64 + cx.header.boot_to_wall_ns),
            false => "an unknown time".to_string(),
        };
        let text = format!(
            "{label} soft limit set to {} at {when} by pid {} ({})",
            show(change.value),
            change.by_pid,
            cx.book.comm(change.by_pid)
        );
        return Some((change.value, Evidence::fact("capture", text)));
    }
    let at_failure = failure_facts::find_inherited(cx.failures, tgid, Shortage::Memory, |p| {
        cx.book.process(p).and_then(|p| p.parent)
    })
    .and_then(|f| f.limit(proc_name));
    if let Some(soft) = at_failure.and_then(|l| l.soft) {
        let text = format!("{label} soft limit {} when the failure arrived", show(soft));
        return Some((soft, Evidence::fact("failure", text)));
    }
    let limit = cx.preflight?.limit(proc_name)?;
    let soft = limit.soft?;
    Some((soft, Evidence::fact("preflight", format!("{label} soft limit {} when the command started", show(soft)))))
}

/// Why a mapping of `bytes` could not be made: the limits that count it, with their evidence.
/// RLIMIT_DATA counts private writable mappings only; RLIMIT_AS and the map count count them all.
fn mapping_limits(cx: &Context<'_>, pid: u32, writable: bool, bytes: u64) -> (Vec<String>, Vec<Evidence>) {
    let mut why = Vec::new();
    let mut evidence = Vec::new();
    if writable {
        if let Some((soft, fact)) = limit_fact(cx, pid, RLIMIT_DATA, "Max data size", "RLIMIT_DATA") {
            why.push(format!(
                "RLIMIT_DATA is {} and counts private writable mappings, so {} more did not fit",
                human_bytes(soft),
                human_bytes(bytes)
            ));
            evidence.push(fact);
        }
    }
    if let Some((soft, fact)) = limit_fact(cx, pid, RLIMIT_AS, "Max address space", "RLIMIT_AS") {
        why.push(format!("RLIMIT_AS is {}", human_bytes(soft)));
        evidence.push(fact);
    }
    if let Some(pf) = cx.preflight {
        if writable && pf.sysctl("vm.overcommit_memory") == Some("2") {
            let (limit, committed) = (pf.meminfo.commit_limit_kb, pf.meminfo.committed_as_kb);
            why.push(format!(
                "vm.overcommit_memory=2 (strict): CommitLimit {} kB, Committed_AS {} kB at start",
                limit.map_or("?".into(), |v| v.to_string()),
                committed.map_or("?".into(), |v| v.to_string())
            ));
            evidence.push(Evidence::fact(
                "preflight",
                format!("vm.overcommit_memory=2, CommitLimit {limit:?} kB, Committed_AS {committed:?} kB"),
            ));
        }
        if let Some(max) = pf.sysctl("vm.max_map_count") {
            evidence.push(Evidence::fact("preflight", format!("vm.max_map_count = {max}")));
            if why.is_empty() {
                why.push(format!(
                    "no RLIMIT_AS or RLIMIT_DATA; the mapping count may have reached vm.max_map_count ({max})"
                ));
            }
        }
    }
    (why, evidence)
}

/// `mmap(MAP_STACK) = base` then `mprotect(base.., PROT_READ|PROT_WRITE) = -ENOMEM` in one thread.
#[derive(Default)]
pub struct StackCommit {
    /// Per thread: the stacks it mapped, (base, len, the mmap's evidence).
    stacks: HashMap<u32, Vec<(u64, u64, Evidence)>>,
    /// Per thread: (first mmap evidence, first mprotect evidence, failures, bytes asked).
    failures: HashMap<u32, (u32, Evidence, Evidence, u32, u64)>,
}

impl Classifier for StackCommit {
    fn observe(&mut self, event: &Event, cx: &Context<'_>) {
        if let Some(e) = syscall(event, Syscall::Mmap) {
            if e.args[3] & MAP_STACK != 0 && is_error_return(e.ret).is_none() {
                let stacks = self.stacks.entry(e.header.tid).or_default();
                stacks.push((e.ret as u64, e.args[1], cx.evidence(event)));
                // Only recent stacks matter; bound what a thread-creating loop keeps.
                if stacks.len() > 64 {
                    stacks.remove(0);
                }
            }
        } else if let Some(e) = syscall(event, Syscall::Mprotect) {
            let rw = e.args[2] & (PROT_READ | PROT_WRITE) == (PROT_READ | PROT_WRITE);
            if !rw || is_error_return(e.ret) != Some(ENOMEM) {
                return;
            }
            let Some(stacks) = self.stacks.get(&e.header.tid) else { return };
            let addr = e.args[0];
            let Some((_, _, mmap)) = stacks.iter().rev().find(|(base, len, _)| addr >= *base && addr < base + len)
            else {
                return;
            };
            let mmap = mmap.clone();
            self.failures.entry(e.header.tid).and_modify(|f| f.3 += 1).or_insert((
                e.header.tgid,
                mmap,
                cx.evidence(event),
                1,
                e.args[1],
            ));
        }
    }

    fn finish(&mut self, cx: &Context<'_>, _: &[Finding]) -> Vec<Finding> {
        let mut failures: Vec<_> = self.failures.drain().collect();
        failures.sort_by_key(|(tid, _)| *tid);
        failures
            .into_iter()
            .map(|(tid, (pid, mmap, mprotect, count, bytes))| {
                let mut evidence = vec![mmap, mprotect];
                let mut why = String::new();
                if let Some((soft, fact)) = limit_fact(cx, pid, RLIMIT_DATA, "Max data size", "RLIMIT_DATA") {
                    why = format!(
                        "; RLIMIT_DATA is {} and counts private writable memory, so committing {} more failed",
                        human_bytes(soft),
                        human_bytes(bytes)
                    );
                    evidence.push(fact);
                }
                if let Some(pf) = cx.preflight {
                    if pf.sysctl("vm.overcommit_memory") == Some("2") {
                        let (limit, committed) = (pf.meminfo.commit_limit_kb, pf.meminfo.committed_as_kb);
                        why.push_str(&format!(
                            "; vm.overcommit_memory=2 (strict): CommitLimit {} kB, Committed_AS {} kB at start",
                            limit.map_or("?".into(), |v| v.to_string()),
                            committed.map_or("?".into(), |v| v.to_string())
                        ));
                        evidence.push(Evidence::fact(
                            "preflight",
                            format!("vm.overcommit_memory=2, CommitLimit {limit:?} kB, Committed_AS {committed:?} kB"),
                        ));
                    }
                }
                if why.is_empty() {
                    why = "; no limit in the preflight explains it (check the memory cgroup and commit headroom)".into();
                }
                let times = if count > 1 { format!(" ({count} times)") } else { String::new() };
                Finding {
                    cause: None,
                    id: String::new(),
                    caused_by: Vec::new(),
                    workload: None,
                    processes: Vec::new(),
                    signature: Signature::PthreadStackMprotectEnomem,
                    severity: Severity::Error,
                    pid,
                    tid,
                    summary: format!(
                        "thread {tid} mapped a thread stack but could not commit it (mprotect PROT_READ|PROT_WRITE = ENOMEM){times}, so pthread_create returned EAGAIN{why}"
                    ),
                    evidence,
                }
            })
            .collect()
    }
}

/// `mmap(..., MAP_STACK, ...) = -ENOMEM`: no address space left for a thread stack.
#[derive(Default)]
pub struct StackMap {
    /// (pid, tid, first failure, bytes asked, mapped writable).
    failures: Vec<(u32, u32, Evidence, u64, bool)>,
    count: HashMap<u32, u32>,
}

impl Classifier for StackMap {
    fn observe(&mut self, event: &Event, cx: &Context<'_>) {
        if let Some(e) = syscall(event, Syscall::Mmap) {
            if e.args[3] & MAP_STACK != 0 && is_error_return(e.ret) == Some(ENOMEM) {
                let n = self.count.entry(e.header.tid).or_default();
                *n += 1;
                if *n == 1 {
                    let writable = e.args[2] & PROT_WRITE != 0;
                    self.failures.push((e.header.tgid, e.header.tid, cx.evidence(event), e.args[1], writable));
                }
            }
        }
    }

    fn finish(&mut self, cx: &Context<'_>, _: &[Finding]) -> Vec<Finding> {
        std::mem::take(&mut self.failures)
            .into_iter()
            .map(|(pid, tid, first, len, writable)| {
                let (why, facts) = mapping_limits(cx, pid, writable, len);
                let mut evidence = vec![first];
                evidence.extend(facts);
                let count = self.count[&tid];
                let times = if count > 1 { format!(" ({count} times)") } else { String::new() };
                // A stack mapped read-write at once (guard size 0, as the JVM asks) is charged to
                // RLIMIT_DATA; a PROT_NONE one only to the address space.
                let what = if writable {
                    "the stack is mapped read-write at once (no guard page), so it counts as data"
                } else {
                    "the address space is exhausted"
                };
                let why = if why.is_empty() { String::new() } else { format!("; {}", why.join(", ")) };
                Finding::new(
                    Signature::PthreadStackMmapEnomem,
                    Severity::Error,
                    pid,
                    tid,
                    format!(
                        "thread {tid} could not map a {} thread stack (mmap MAP_STACK = ENOMEM){times}: {what}, so pthread_create returned EAGAIN{why}",
                        human_bytes(len)
                    ),
                    evidence,
                )
            })
            .collect()
    }
}

/// `mmap(..., PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) = -ENOMEM` for memory other than a thread
/// stack: a heap arena (Go, the JVM's malloc), under a data or address-space limit.
#[derive(Default)]
pub struct MapFailure {
    /// Per process: (first failing thread, its evidence, bytes asked, failures).
    failures: Vec<(u32, u32, Evidence, u64)>,
    count: HashMap<u32, u32>,
}

impl Classifier for MapFailure {
    fn observe(&mut self, event: &Event, cx: &Context<'_>) {
        let Some(e) = syscall(event, Syscall::Mmap) else { return };
        let private_anon = e.args[3] & (MAP_PRIVATE | MAP_ANONYMOUS) == (MAP_PRIVATE | MAP_ANONYMOUS);
        let stack_or_probe = e.args[3] & (MAP_STACK | MAP_FIXED_NOREPLACE) != 0;
        if !private_anon || stack_or_probe || e.args[2] & PROT_WRITE == 0 || is_error_return(e.ret) != Some(ENOMEM) {
            return;
        }
        let n = self.count.entry(e.header.tgid).or_default();
        *n += 1;
        if *n == 1 {
            self.failures.push((e.header.tgid, e.header.tid, cx.evidence(event), e.args[1]));
        }
    }

    fn finish(&mut self, cx: &Context<'_>, _: &[Finding]) -> Vec<Finding> {
        std::mem::take(&mut self.failures)
            .into_iter()
            .map(|(pid, tid, first, len)| {
                let (why, facts) = mapping_limits(cx, pid, true, len);
                let mut evidence = vec![first];
                evidence.extend(facts);
                let count = self.count[&pid];
                let times = if count > 1 { format!(" ({count} times in the process)") } else { String::new() };
                let why = if why.is_empty() {
                    "no limit the capture knows explains it (check the memory cgroup and commit headroom)".to_string()
                } else {
                    why.join(", ")
                };
                Finding::new(
                    Signature::MmapEnomem,
                    Severity::Error,
                    pid,
                    tid,
                    format!(
                        "thread {tid} could not map {} of private writable memory (mmap = ENOMEM){times}: {why}",
                        human_bytes(len)
                    ),
                    evidence,
                )
            })
            .collect()
    }
}

/// `mmap(hint >= 2^47, ..., MAP_FIXED_NOREPLACE) = -ENOMEM`: probing for 5-level paging.
#[derive(Default)]
pub struct VaProbe {
    probes: Vec<(u32, u32, Evidence)>,
    seen: HashMap<u32, u32>,
}

impl Classifier for VaProbe {
    fn observe(&mut self, event: &Event, cx: &Context<'_>) {
        if let Some(e) = syscall(event, Syscall::Mmap) {
            if e.args[0] >= 1 << 47 && e.args[3] & MAP_FIXED_NOREPLACE != 0 && is_error_return(e.ret) == Some(ENOMEM) {
                let n = self.seen.entry(e.header.tgid).or_default();
                *n += 1;
                if *n == 1 {
                    self.probes.push((e.header.tgid, e.header.tid, cx.evidence(event)));
                }
            }
        }
    }

    fn finish(&mut self, _: &Context<'_>, _: &[Finding]) -> Vec<Finding> {
        std::mem::take(&mut self.probes)
            .into_iter()
            .map(|(pid, tid, evidence)| Finding {
                cause: None,
                id: String::new(),
                caused_by: Vec::new(),
                workload: None,
                processes: Vec::new(),
                signature: Signature::VaProbeEnomem,
                severity: Severity::Info,
                pid,
                tid,
                summary: format!(
                    "process {pid} probed for 5-level paging (mmap above 2^47 with MAP_FIXED_NOREPLACE = ENOMEM, {} times): expected on 4-level kernels, not a failure",
                    self.seen[&pid]
                ),
                evidence: vec![evidence],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::analysis::Severity;

    #[test]
    fn a_stack_mapped_then_refused_read_write_is_found_with_the_data_limit() {
        let events = vec![
            syscall(10, 11, "mmap", [0, 8392704, 0, 0x20022, u64::MAX, 0], 0x7f00_0000_0000),
            syscall(10, 11, "mprotect", [0x7f00_0000_1000, 8388608, 3, 0, 0, 0], -12),
        ];
        let c = classify(&events, Some(preflight_with_limit("Max data size", 41943040)));
        let f = only(&c, Signature::PthreadStackMprotectEnomem);
        assert_eq!((f.pid, f.tid, f.severity), (10, 11, Severity::Error));
        assert!(f.summary.contains("RLIMIT_DATA is 40 MiB"), "{}", f.summary);
        assert!(f.evidence[0].text.contains("MAP_STACK") && f.evidence[1].text.contains("ENOMEM"));
    }

    #[test]
    fn an_enomem_mprotect_outside_any_stack_or_in_another_thread_is_not_a_stack_failure() {
        let events = vec![
            syscall(10, 11, "mmap", [0, 8392704, 0, 0x20022, u64::MAX, 0], 0x7f00_0000_0000),
            syscall(10, 12, "mprotect", [0x7f00_0000_1000, 8388608, 3, 0, 0, 0], -12),
            syscall(10, 11, "mprotect", [0x1000, 4096, 3, 0, 0, 0], -12),
        ];
        assert!(classify(&events, None).findings.is_empty());
    }

    #[test]
    fn a_limit_set_during_the_capture_wins_over_the_preflight() {
        let mut prlimit = syscall(10, 10, "prlimit64", [0, 2, 0x7ffd_0000, 0, 0, 0], 0);
        if let crate::event::Event::Syscall(e) = &mut prlimit {
            e.header.flags |= observer_common::flags::AUX_RLIMIT_CUR;
            e.aux = 41943040;
        }
        let events = vec![
            prlimit,
            syscall(10, 11, "mmap", [0, 8392704, 0, 0x20022, u64::MAX, 0], 0x7f00_0000_0000),
            syscall(10, 11, "mprotect", [0x7f00_0000_1000, 8388608, 3, 0, 0, 0], -12),
        ];
        let c = classify(&events, Some(preflight_with_limit("Max data size", u64::MAX - 1)));
        let f = only(&c, Signature::PthreadStackMprotectEnomem);
        assert!(f.summary.contains("RLIMIT_DATA is 40 MiB"), "{}", f.summary);
        assert!(
            f.evidence[2].text.starts_with("RLIMIT_DATA soft limit set to 41943040 (40 MiB) at "),
            "{:?}",
            f.evidence
        );
    }

    #[test]
    fn a_stack_mmap_failing_names_the_address_space_limit() {
        let events = vec![syscall(10, 10, "mmap", [0, 8392704, 0, 0x20022, u64::MAX, 0], -12)];
        let c = classify(&events, Some(preflight_with_limit("Max address space", 62914560)));
        let f = only(&c, Signature::PthreadStackMmapEnomem);
        assert!(f.summary.contains("RLIMIT_AS is 60 MiB"), "{}", f.summary);
    }

    #[test]
    fn a_high_hint_noreplace_probe_is_reported_as_info_once() {
        let probe = syscall(10, 10, "mmap", [1 << 47, 4096, 3, 0x100022, u64::MAX, 0], -12);
        let c = classify(&[probe, probe], None);
        let f = only(&c, Signature::VaProbeEnomem);
        assert_eq!(f.severity, Severity::Info);
        assert!(f.summary.contains("2 times"));
    }
}
