//! Signal signatures: `fatal-signal` (a process ended by a signal: which, from whom, and for a
//! fault where it hit) and `job-control-stop` (a process stopped by SIGTTIN/SIGTTOU/SIGTSTP/SIGSTOP).
use std::collections::HashMap;

use observer_common::flags;

use crate::{
    analysis::{mappings::AddressSpaces, Cause, Classifier, Context, Evidence, Finding, Severity, Signature},
    decode::{si_code_name, signal_name},
    event::Event,
    processes::{describe_exit, ProcessExit},
};

fn name(sig: i32) -> String {
    signal_name(sig).map_or_else(|| sig.to_string(), str::to_string)
}

fn is_fault(sig: i32) -> bool {
    matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGTRAP | libc::SIGFPE)
}

/// si_code of a SIGTRAP raised by an `int3` (the kernel reports SI_KERNEL) and of a SIGILL from `ud2`.
const SI_KERNEL: i32 = 0x80;
const TRAP_BRKPT: i32 = 1;
const ILL_ILLOPN: i32 = 2;

/// A trap the program executed on purpose, where the fault address means nothing: CHECK/assert
/// failures and `__builtin_trap` compile to `int3` or `ud2`.
fn trap_instruction(sig: i32, code: i32) -> Option<&'static str> {
    match (sig, code) {
        (libc::SIGTRAP, SI_KERNEL | TRAP_BRKPT) => {
            Some("a trap instruction (int3): a deliberate crash such as a failed CHECK/assert or __builtin_trap")
        }
        (libc::SIGILL, ILL_ILLOPN | SI_KERNEL) => {
            Some("an undefined instruction (ud2): a deliberate crash such as __builtin_trap or a Rust/C++ abort path")
        }
        _ => None,
    }
}

/// A process that ended by a signal: (pid, tid, signal, evidence, how it ended, whether observer stopped it).
type Ended = (u32, u32, i32, Evidence, ProcessExit, bool);

/// A fault record: (tid, si_code, si_addr, its evidence, where the address is).
type FaultSeen = (u32, i32, u64, Evidence, String);

#[derive(Default)]
pub struct FatalSignal {
    spaces: AddressSpaces,
    /// Per process: the signal's generation (sender) and the fault record, latest per signal.
    generated: HashMap<(u32, i32), Evidence>,
    /// Per process and signal: (tid, si_code, si_addr, the fault's evidence, where the address is).
    faults: HashMap<(u32, i32), FaultSeen>,
    delivered: HashMap<(u32, i32), (u32, Evidence)>,
    ended: Vec<Ended>,
    /// When the observer began stopping the run (its first signal to a tracked process).
    observer_stop_ns: Option<u64>,
}

impl Classifier for FatalSignal {
    fn observe(&mut self, event: &Event, cx: &Context<'_>) {
        match event {
            Event::Exec(e) => self.spaces.exec(e.header.tgid),
            Event::Syscall(e) => self.spaces.syscall(e),
            Event::SignalGenerate(g) => {
                if g.header.tgid == cx.header.observer_pid && cx.header.observer_pid != 0 {
                    self.observer_stop_ns.get_or_insert(g.header.ts_ns);
                }
                let tgid = cx.book.tgid_of(g.target_tid).unwrap_or(g.target_tid);
                self.generated.insert((tgid, g.sig), cx.evidence(event));
            }
            Event::Fault(f) => {
                let place = self.spaces.describe(f.header.tgid, f.addr);
                self.faults.insert((f.header.tgid, f.sig), (f.header.tid, f.code, f.addr, cx.evidence(event), place));
            }
            Event::SignalDeliver(d) => {
                self.delivered.insert((d.header.tgid, d.sig), (d.header.tid, cx.evidence(event)));
            }
            Event::Exit(x) if x.header.flags & flags::GROUP_DEAD != 0 => {
                if let Some(exit @ ProcessExit::Signal { sig, .. }) =
                    cx.book.process(x.header.tgid).and_then(|p| p.exit.clone())
                {
                    let during_stop = self.observer_stop_ns.is_some_and(|t| t <= x.header.ts_ns);
                    self.ended.push((x.header.tgid, x.header.tid, sig, cx.evidence(event), exit, during_stop));
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, cx: &Context<'_>, _: &[Finding]) -> Vec<Finding> {
        let observer_pid = cx.header.observer_pid;
        let ended: Vec<(Option<(i32, i32)>, Finding)> = std::mem::take(&mut self.ended)
            .into_iter()
            .map(|(pid, exit_tid, sig, exit_evidence, exit, during_stop)| {
                let comm = cx.book.comm(pid).to_string();
                let mut evidence = Vec::new();
                evidence.extend(self.generated.get(&(pid, sig)).cloned());
                let mut tid = self.delivered.get(&(pid, sig)).map_or(exit_tid, |(t, _)| *t);
                let mut severity = Severity::Error;
                let mut summary = format!("process {pid} ({comm}) was ended by {}", describe_exit(&exit));
                if let ProcessExit::Signal { sender: Some(s), .. } = &exit {
                    if s.is_process() && s.tgid == observer_pid && observer_pid != 0 {
                        severity = Severity::Info;
                        summary.push_str(": the observer stopped it (timeout, hang or interrupt)");
                    } else if during_stop {
                        severity = Severity::Info;
                        summary.push_str(", while the observer was stopping the run");
                    }
                }
                if is_fault(sig) {
                    severity = Severity::Fatal;
                    if let Some((fault_tid, code, addr, fault, place)) = self.faults.get(&(pid, sig)) {
                        tid = *fault_tid;
                        evidence.push(fault.clone());
                        summary = match trap_instruction(sig, *code) {
                            Some(what) => format!(
                                "process {pid} ({comm}) stopped itself: {} ({}) in thread {tid} from {what}",
                                name(sig),
                                si_code_name(sig, *code),
                            ),
                            None => {
                                evidence.push(Evidence::fact("capture", place.clone()));
                                format!(
                                    "process {pid} ({comm}) crashed: {} ({}) in thread {tid} at address {addr:#x}; {place}",
                                    name(sig),
                                    si_code_name(sig, *code),
                                )
                            }
                        };
                    }
                }
                evidence.extend(self.delivered.get(&(pid, sig)).map(|(_, e)| e.clone()));
                evidence.push(exit_evidence);
                let sender = match &exit {
                    ProcessExit::Signal { sender: Some(s), .. } if s.is_process() => Some(s.tgid),
                    _ => None,
                };
                let mut finding = Finding::new(Signature::FatalSignal, severity, pid, tid, summary, evidence);
                finding.cause = Some(Cause::Signal { sig, sender });
                let trap = self
                    .faults
                    .get(&(pid, sig))
                    .and_then(|(_, code, ..)| trap_instruction(sig, *code).map(|_| (sig, *code)));
                (trap, finding)
            })
            .collect();
        merge_traps(ended)
    }
}

/// Many processes that trap the same way (a browser's children each failing the same CHECK) are
/// one finding: the first, with the others named.
fn merge_traps(ended: Vec<(Option<(i32, i32)>, Finding)>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let mut by_trap: HashMap<(i32, i32), usize> = HashMap::new();
    for (trap, finding) in ended {
        let Some(key) = trap else {
            out.push(finding);
            continue;
        };
        match by_trap.get(&key) {
            Some(&first) => out[first].processes.push(finding.pid),
            None => {
                by_trap.insert(key, out.len());
                out.push(finding);
            }
        }
    }
    for f in &mut out {
        if !f.processes.is_empty() {
            let others: Vec<String> = f.processes.iter().take(10).map(|p| p.to_string()).collect();
            let more = if f.processes.len() > 10 { ", ..." } else { "" };
            f.summary = format!(
                "{} processes trapped the same way; the first: {} (the others: pids {}{more})",
                f.processes.len() + 1,
                f.summary,
                others.join(", ")
            );
        }
    }
    out
}

/// Stops: the default action of SIGTTIN / SIGTTOU / SIGTSTP, and SIGSTOP always.
#[derive(Default)]
pub struct JobControlStop {
    generated: HashMap<(u32, i32), Evidence>,
    stops: Vec<(u32, u32, i32, Vec<Evidence>, String)>,
    seen: HashMap<(u32, i32), u32>,
}

impl Classifier for JobControlStop {
    fn observe(&mut self, event: &Event, cx: &Context<'_>) {
        match event {
            Event::SignalGenerate(g) if is_stop(g.sig) => {
                let tgid = cx.book.tgid_of(g.target_tid).unwrap_or(g.target_tid);
                self.generated.insert((tgid, g.sig), cx.evidence(event));
            }
            Event::SignalDeliver(d) if is_stop(d.sig) && (d.sig == libc::SIGSTOP || d.sa_handler == 0) => {
                let key = (d.header.tgid, d.sig);
                let n = self.seen.entry(key).or_default();
                *n += 1;
                if *n > 1 {
                    return;
                }
                let sender = cx.book.sender_of(d.header.tgid, d.sig);
                let by = match sender {
                    Some(s) if s.is_process() && s.tgid == d.header.tgid => "itself".to_string(),
                    Some(s) if s.is_process() => format!("pid {} ({})", s.tgid, s.comm),
                    _ => "the kernel".to_string(),
                };
                let mut evidence: Vec<Evidence> = self.generated.get(&key).cloned().into_iter().collect();
                evidence.push(cx.evidence(event));
                self.stops.push((d.header.tgid, d.header.tid, d.sig, evidence, by));
            }
            _ => {}
        }
    }

    fn finish(&mut self, cx: &Context<'_>, _: &[Finding]) -> Vec<Finding> {
        std::mem::take(&mut self.stops)
            .into_iter()
            .map(|(pid, tid, sig, evidence, by)| {
                let comm = cx.book.comm(pid);
                let why = match sig {
                    libc::SIGTTIN => ": it read from its controlling terminal from a background process group (the classic `timeout CMD` under an interactive terminal; use `timeout --foreground`, redirect stdin, or run without a terminal)",
                    libc::SIGTTOU => ": it wrote to or configured its controlling terminal from a background process group (with `stty tostop`); run it in the foreground or without a terminal",
                    libc::SIGTSTP => ": a terminal stop (Ctrl-Z) or a SIGTSTP sent to it",
                    _ => ": SIGSTOP cannot be caught; something must send SIGCONT",
                };
                Finding::new(Signature::JobControlStop, Severity::Warning, pid, tid, format!("process {pid} ({comm}) was stopped by {} from {by}{why}", name(sig)), evidence)
            })
            .collect()
    }
}

fn is_stop(sig: i32) -> bool {
    matches!(sig, libc::SIGTTIN | libc::SIGTTOU | libc::SIGTSTP | libc::SIGSTOP)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::analysis::Severity;

    #[test]
    fn a_segfault_names_the_address_and_the_mapping_it_falls_in() {
        let events = vec![
            exec(10),
            syscall(10, 10, "mmap", [0, 8192, 1, 0x22, u64::MAX, 0], 0x7f00_0000_0000),
            generate(10, 10, 10, libc::SIGSEGV, 2),
            fault(10, 10, libc::SIGSEGV, 2, 0x7f00_0000_1008),
            deliver(10, 10, libc::SIGSEGV, 0),
            exit(10, 10, true),
        ];
        let c = classify(&events, None);
        let f = only(&c, Signature::FatalSignal);
        assert_eq!((f.pid, f.tid, f.severity), (10, 10, Severity::Fatal));
        assert!(f.summary.contains("SIGSEGV (SEGV_ACCERR)"), "{}", f.summary);
        assert!(
            f.summary.contains(
                "at address 0x7f0000001008; 0x7f0000001008 is in an anonymous mapping 0x7f0000000000-0x7f0000002000"
            ),
            "{}",
            f.summary
        );
    }

    #[test]
    fn a_kill_names_the_sender_and_a_clean_exit_is_not_fatal() {
        let events =
            vec![generate(20, 21, 10, libc::SIGKILL, 0), deliver(10, 10, libc::SIGKILL, 0), exit(10, 10, true)];
        let c = classify(&events, None);
        let f = only(&c, Signature::FatalSignal);
        assert!(f.summary.contains("signal SIGKILL from pid 20 (sender)"), "{}", f.summary);
        assert!(classify(&[exit(10, 10, true)], None).findings.is_empty());
    }

    #[test]
    fn sigttin_from_the_kernel_is_a_background_terminal_read() {
        let events = vec![generate(10, 10, 10, libc::SIGTTIN, 0x80), deliver(10, 10, libc::SIGTTIN, 0)];
        let c = classify(&events, None);
        let f = only(&c, Signature::JobControlStop);
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.summary.contains("stopped by SIGTTIN from the kernel: it read from its controlling terminal from a background process group"), "{}", f.summary);
    }

    #[test]
    fn a_handled_sigtstp_is_not_a_stop() {
        assert!(classify(&[deliver(10, 10, libc::SIGTSTP, 0x4000)], None).findings.is_empty());
    }

    #[test]
    fn a_fault_taken_by_a_handler_is_no_crash_and_exit_group_zaps_are_no_kill() {
        // HotSpot: a SIGSEGV on purpose, taken by its handler; later exit(0) from one thread of
        // three, and the kernel ends the other two with SIGKILL.
        let events = vec![
            exec(10),
            fork(10, 10, 11, true),
            fork(10, 10, 12, true),
            generate(10, 11, 11, libc::SIGSEGV, 1),
            fault(10, 11, libc::SIGSEGV, 1, 0),
            deliver(10, 11, libc::SIGSEGV, 0x7f00_0000_4000),
            deliver(10, 11, libc::SIGKILL, 0),
            exit(10, 11, false),
            deliver(10, 12, libc::SIGKILL, 0),
            exit(10, 12, false),
            syscall(10, 10, "exit_group", [0; 6], 0),
            exit(10, 10, true),
        ];
        assert!(classify(&events, None).findings.is_empty(), "{:#?}", classify(&events, None));
        let mut exit_3 = events[..events.len() - 2].to_vec();
        exit_3.extend([syscall(10, 10, "exit_group", [3, 0, 0, 0, 0, 0], 0), exit(10, 10, true)]);
        let c = classify(&exit_3, None);
        assert!(!c.has(Signature::FatalSignal), "{c:#?}");
        assert!(only(&c, Signature::ExitNonzero).summary.contains("code 3"), "{c:#?}");
    }

    #[test]
    fn exec_of_a_threaded_process_is_no_kill() {
        let events = vec![
            fork(10, 10, 11, true),
            deliver(10, 11, libc::SIGKILL, 0),
            exit(10, 11, false),
            exec(10),
            syscall(10, 10, "exit_group", [0; 6], 0),
            exit(10, 10, true),
        ];
        assert!(classify(&events, None).findings.is_empty(), "{:#?}", classify(&events, None));
    }

    #[test]
    fn an_int3_trap_is_a_deliberate_crash_not_a_null_dereference() {
        let events = vec![
            exec(10),
            generate(10, 10, 10, libc::SIGTRAP, 0x80),
            fault(10, 10, libc::SIGTRAP, 0x80, 0),
            deliver(10, 10, libc::SIGTRAP, 0),
            exit(10, 10, true),
        ];
        let c = classify(&events, None);
        let f = only(&c, Signature::FatalSignal);
        assert!(f.summary.contains("SIGTRAP (SI_KERNEL)") && f.summary.contains("deliberate crash"), "{}", f.summary);
        assert!(!f.summary.contains("null"), "{}", f.summary);
    }

    #[test]
    fn a_sigterm_taken_by_a_handler_then_exit_is_the_exit_code() {
        let events = vec![
            generate(20, 20, 10, libc::SIGTERM, 0),
            deliver(10, 10, libc::SIGTERM, 0x4000),
            syscall(10, 10, "exit_group", [0; 6], 0),
            exit(10, 10, true),
        ];
        assert!(classify(&events, None).findings.is_empty());
        let unhandled =
            vec![generate(20, 20, 10, libc::SIGTERM, 0), deliver(10, 10, libc::SIGKILL, 0), exit(10, 10, true)];
        let c = classify(&unhandled, None);
        assert!(only(&c, Signature::FatalSignal).summary.contains("signal SIGTERM from pid 20"), "{c:#?}");
    }
}
