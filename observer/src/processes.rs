//! What the event stream says about each process and thread: names, parentage, who signalled whom,
//! and how each process ended. Fed every event in order; read by the renderer and the summary.
use std::collections::{BTreeMap, BTreeSet};

use foldhash::HashMap;

use observer_common::{flags, syscalls::Syscall};

use crate::{
    decode::{si_code_name, signal_name},
    event::{c_str, Event},
};

const SI_USER: i32 = 0;
const SI_TKILL: i32 = -6;
const SI_QUEUE: i32 = -1;

/// Who sent a signal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sender {
    pub tid: u32,
    pub tgid: u32,
    pub comm: String,
    pub code: i32,
}

impl Sender {
    /// Sent by a process (kill/tgkill/sigqueue) rather than raised by the kernel (fault, timer...).
    pub fn is_process(&self) -> bool {
        matches!(self.code, SI_USER | SI_TKILL | SI_QUEUE)
    }
}

/// How one process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessExit {
    Code(i32),
    Signal {
        sig: i32,
        sender: Option<Sender>,
    },
    /// The capture holds no record of the cause (exit_group, a fatal signal): they were dropped,
    /// or happened before observer was watching. Never read as code 0.
    Unknown,
}

/// One process seen in the capture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub parent: Option<u32>,
    pub comm: String,
    pub threads: BTreeSet<u32>,
    pub exit_group_code: Option<i32>,
    /// The code the group leader passed to `exit` (not exit_group): the process's status when its
    /// threads all leave that way.
    pub leader_exit_code: Option<i32>,
    pub fatal_signal: Option<i32>,
    pub exit: Option<ProcessExit>,
    /// Soft resource limits set during the capture (by prlimit64/setrlimit, or inherited from a
    /// parent that set them): resource id -> (rlim_cur, when, set by pid).
    pub limits: BTreeMap<u64, LimitChange>,
    /// Cgroups it was moved into during the capture (or inherited from a parent that was), by
    /// hierarchy id: hierarchy -> path.
    pub cgroups: BTreeMap<i32, String>,
}

/// A soft limit changed during the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitChange {
    /// `u64::MAX` is unlimited.
    pub value: u64,
    pub ts_ns: u64,
    /// Whether `ts_ns` is a real time (an imported capture without timestamps has none).
    pub time_known: bool,
    pub by_pid: u32,
}

/// Signals whose default action ends the process.
pub fn default_action_kills(sig: i32) -> bool {
    !matches!(
        sig,
        libc::SIGCHLD
            | libc::SIGCONT
            | libc::SIGSTOP
            | libc::SIGTSTP
            | libc::SIGTTIN
            | libc::SIGTTOU
            | libc::SIGURG
            | libc::SIGWINCH
    ) && sig > 0
        && sig < 32
}

#[derive(Default)]
pub struct ProcessBook {
    tgid_of: HashMap<u32, u32>,
    processes: BTreeMap<u32, Process>,
    /// Last sender of each signal to each process: (tgid, sig) -> sender.
    last_sender: HashMap<(u32, i32), Sender>,
    /// Per process, the signals generated for it whose default action ends it and that no handler
    /// has taken since. A fatal signal makes the kernel end every thread with SIGKILL, so
    /// deliveries alone would name SIGKILL; a signal a handler took (HotSpot's SIGSEGV, a SIGTERM
    /// handler) ended nothing.
    pending_fatal: HashMap<u32, Vec<i32>>,
    /// The (tid, tgid) `see` recorded last: a thread's calls come in runs, and a run costs no
    /// lookup. Cleared whenever a thread is forgotten.
    latest_seen: Option<(u32, u32)>,
}

impl ProcessBook {
    pub fn tgid_of(&self, tid: u32) -> Option<u32> {
        self.tgid_of.get(&tid).copied()
    }

    pub fn comm(&self, tgid: u32) -> &str {
        self.processes.get(&tgid).map_or("?", |p| p.comm.as_str())
    }

    pub fn processes(&self) -> impl Iterator<Item = &Process> {
        self.processes.values()
    }

    pub fn process(&self, pid: u32) -> Option<&Process> {
        self.processes.get(&pid)
    }

    /// The soft limit `resource` of process `tgid` as set during the capture, if it was.
    pub fn limit(&self, tgid: u32, resource: u64) -> Option<&LimitChange> {
        self.processes.get(&tgid)?.limits.get(&resource)
    }

    /// Whether the limit change recorded for `tgid` has a real time.
    pub fn limit_known_time(&self, tgid: u32, resource: u64) -> bool {
        self.limit(tgid, resource).is_some_and(|c| c.time_known)
    }

    pub fn threads_seen(&self) -> usize {
        self.tgid_of.len()
    }

    pub fn sender_of(&self, tgid: u32, sig: i32) -> Option<&Sender> {
        self.last_sender.get(&(tgid, sig))
    }

    fn process_mut(&mut self, tgid: u32) -> &mut Process {
        self.processes.entry(tgid).or_insert_with(|| Process { pid: tgid, ..Process::default() })
    }

    fn see(&mut self, tid: u32, tgid: u32) {
        if tid == 0 || self.latest_seen == Some((tid, tgid)) {
            return;
        }
        self.tgid_of.insert(tid, tgid);
        self.process_mut(tgid).threads.insert(tid);
        self.latest_seen = Some((tid, tgid));
    }

    /// Drops everything known about a process that is gone (a long-running watch must not grow).
    pub fn forget(&mut self, tgid: u32) {
        self.latest_seen = None;
        if let Some(p) = self.processes.remove(&tgid) {
            for tid in p.threads {
                self.tgid_of.remove(&tid);
            }
        }
        self.last_sender.retain(|(t, _), _| *t != tgid);
        self.pending_fatal.remove(&tgid);
    }

    /// Seeds the name of a process known before its first event (the launched command).
    pub fn name(&mut self, tgid: u32, comm: &str) {
        let p = self.process_mut(tgid);
        if p.comm.is_empty() {
            p.comm = comm.to_string();
        }
    }

    pub fn observe(&mut self, event: &Event) {
        let h = *event.header();
        match event {
            Event::Syscall(e) => {
                self.see(h.tid, h.tgid);
                let call = Syscall::from_nr(e.nr);
                if e.header.flags & flags::NO_RETURN != 0 {
                    let code = (e.args[0] & 0xff) as i32;
                    match call {
                        Some(Syscall::ExitGroup) => self.process_mut(h.tgid).exit_group_code = Some(code),
                        Some(Syscall::Exit) if h.tid == h.tgid => {
                            self.process_mut(h.tgid).leader_exit_code = Some(code)
                        }
                        _ => {}
                    }
                }
                if e.header.flags & flags::AUX_RLIMIT_CUR != 0 && e.ret == 0 {
                    let (target, resource) = match call {
                        Some(Syscall::Prlimit64) if e.args[0] != 0 => {
                            (self.tgid_of(e.args[0] as u32).unwrap_or(e.args[0] as u32), e.args[1])
                        }
                        Some(Syscall::Prlimit64) => (h.tgid, e.args[1]),
                        _ => (h.tgid, e.args[0]),
                    };
                    let change = LimitChange {
                        value: e.aux,
                        ts_ns: h.ts_ns,
                        time_known: h.flags & flags::UNKNOWN_TIME == 0,
                        by_pid: h.tgid,
                    };
                    self.process_mut(target).limits.insert(resource, change);
                }
            }
            Event::Fork(e) => {
                self.see(h.tid, h.tgid);
                self.see(e.child_tid, e.child_tgid);
                if e.header.flags & flags::THREAD == 0 {
                    let parent_comm = c_str(&e.parent_comm);
                    let (limits, cgroups) =
                        self.processes.get(&h.tgid).map(|p| (p.limits.clone(), p.cgroups.clone())).unwrap_or_default();
                    let child = self.process_mut(e.child_tgid);
                    child.parent = Some(h.tgid);
                    child.comm = parent_comm;
                    child.limits = limits;
                    child.cgroups = cgroups;
                }
                let parent_comm = c_str(&e.parent_comm);
                self.name(h.tgid, &parent_comm);
            }
            Event::Exec(e) => {
                self.see(h.tid, h.tgid);
                // exec ends the other threads with SIGKILL (de_thread); the process lives on.
                let p = self.process_mut(h.tgid);
                p.comm = c_str(&e.comm);
                p.fatal_signal = None;
            }
            Event::Exit(e) => {
                self.see(h.tid, h.tgid);
                let comm = c_str(&e.comm);
                self.name(h.tgid, &comm);
                if e.header.flags & flags::GROUP_DEAD != 0 {
                    let exit = self.cause_of_death(h.tgid);
                    self.process_mut(h.tgid).exit = Some(exit);
                }
            }
            Event::SignalGenerate(e) => {
                // The sender may be untracked (the observer, a shell): note its name, not its threads.
                let target_tgid = self.tgid_of(e.target_tid).unwrap_or(e.target_tid);
                let sender = Sender { tid: h.tid, tgid: h.tgid, comm: c_str(&e.sender_comm), code: e.code };
                self.last_sender.insert((target_tgid, e.sig), sender);
                if default_action_kills(e.sig) && e.result == 0 {
                    let pending = self.pending_fatal.entry(target_tgid).or_default();
                    pending.retain(|&s| s != e.sig);
                    pending.push(e.sig);
                }
                self.name(target_tgid, &c_str(&e.target_comm));
            }
            Event::Fault(_) => self.see(h.tid, h.tgid),
            Event::CgroupAttach(e) => {
                self.see(h.tid, h.tgid);
                self.process_mut(h.tgid).cgroups.insert(e.root, c_str(&e.path));
            }
            Event::SignalDeliver(e) => {
                self.see(h.tid, h.tgid);
                let default_handler = e.sa_handler == 0;
                if !default_handler {
                    // Taken by a handler: whatever the program does next, this signal ended nothing.
                    if let Some(pending) = self.pending_fatal.get_mut(&h.tgid) {
                        pending.retain(|&s| s != e.sig);
                    }
                } else if e.sig == libc::SIGKILL || default_action_kills(e.sig) {
                    // A SIGKILL nobody sent is the kernel ending the group: for another fatal
                    // signal, or for exit_group / exec (zap_other_threads), which is no kill.
                    let sig = match (e.sig, self.pending_fatal.get(&h.tgid).and_then(|p| p.last())) {
                        (libc::SIGKILL, Some(&cause)) if !self.last_sender.contains_key(&(h.tgid, libc::SIGKILL)) => {
                            cause
                        }
                        _ => e.sig,
                    };
                    let p = self.process_mut(h.tgid);
                    p.fatal_signal.get_or_insert(sig);
                }
            }
        }
    }

    /// How a process whose last thread just exited ended. A process that called exit_group ended
    /// with its code unless a signal that nobody handled killed it first: a SIGKILL (or other
    /// fatal signal) sent by a process, or a fault the kernel raised. The SIGKILLs the kernel
    /// sends to the other threads inside exit_group and exec are not causes of death.
    fn cause_of_death(&self, tgid: u32) -> ProcessExit {
        let Some(p) = self.processes.get(&tgid) else { return ProcessExit::Unknown };
        let unhandled = self.pending_fatal.get(&tgid).map_or(&[][..], Vec::as_slice);
        let signal = |sig: i32| ProcessExit::Signal { sig, sender: self.sender_of(tgid, sig).cloned() };
        let killed_by_sender = unhandled
            .iter()
            .rev()
            .copied()
            .find(|&sig| self.sender_of(tgid, sig).is_some_and(Sender::is_process) && p.fatal_signal.is_some());
        match (killed_by_sender, p.exit_group_code, p.fatal_signal) {
            (Some(sig), _, _) => signal(sig),
            (None, Some(code), _) => ProcessExit::Code(code),
            (None, None, Some(sig)) if sig != libc::SIGKILL || self.last_sender.contains_key(&(tgid, sig)) => {
                signal(sig)
            }
            (None, None, Some(_)) => match unhandled.last() {
                Some(&sig) => signal(sig),
                None => signal(libc::SIGKILL),
            },
            (None, None, None) => p.leader_exit_code.map_or(ProcessExit::Unknown, ProcessExit::Code),
        }
    }

    /// Settles how `tgid` ended from its wait status (observer reaped it), which beats whatever
    /// the capture could tell, since records can be dropped.
    pub fn settle_exit(&mut self, tgid: u32, exit: ProcessExit) {
        let p = self.process_mut(tgid);
        match (&p.exit, &exit) {
            // The capture knows who sent the signal; the wait status only which one.
            (Some(ProcessExit::Signal { sig: known, .. }), ProcessExit::Signal { sig, .. }) if known == sig => {}
            _ => p.exit = Some(exit),
        }
    }
}

/// `signal SIGKILL from pid 123 (timeout)`, `code 0`, `signal SIGSEGV (SEGV_MAPERR, raised by the kernel)`.
pub fn describe_exit_signal(sig: i32, sender: Option<&Sender>) -> String {
    let name = signal_name(sig).map_or_else(|| sig.to_string(), str::to_string);
    match sender {
        Some(s) if s.is_process() => format!("signal {name} from pid {} ({})", s.tgid, s.comm),
        Some(s) => format!("signal {name} ({}, raised by the kernel in pid {})", si_code_name(sig, s.code), s.tgid),
        None => format!("signal {name}"),
    }
}

pub fn describe_exit(exit: &ProcessExit) -> String {
    match exit {
        ProcessExit::Code(c) => format!("code {c}"),
        ProcessExit::Signal { sig, sender } => describe_exit_signal(*sig, sender.as_ref()),
        ProcessExit::Unknown => "unknown (no record of its exit_group or of a fatal signal)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::classifiers::testing::{deliver, exit, generate, syscall};

    fn ended(events: &[Event]) -> Option<ProcessExit> {
        let mut book = ProcessBook::default();
        events.iter().for_each(|e| book.observe(e));
        book.process(10).and_then(|p| p.exit.clone())
    }

    #[test]
    fn an_exit_without_its_cause_in_the_capture_is_unknown_never_code_0() {
        assert_eq!(ended(&[exit(10, 10, true)]), Some(ProcessExit::Unknown));
        assert_eq!(describe_exit(&ProcessExit::Unknown).split(' ').next(), Some("unknown"));
    }

    #[test]
    fn the_exit_code_comes_from_exit_group_or_the_leaders_exit() {
        let exit_group = syscall(10, 11, "exit_group", [3, 0, 0, 0, 0, 0], 0);
        assert_eq!(ended(&[exit_group, exit(10, 10, true)]), Some(ProcessExit::Code(3)));
        let leader = syscall(10, 10, "exit", [4, 0, 0, 0, 0, 0], 0);
        let other = syscall(10, 11, "exit", [5, 0, 0, 0, 0, 0], 0);
        assert_eq!(ended(&[leader, other, exit(10, 11, true)]), Some(ProcessExit::Code(4)));
    }

    #[test]
    fn a_wait_status_settles_an_unknown_exit_but_keeps_a_known_sender() {
        let mut book = ProcessBook::default();
        book.observe(&exit(10, 10, true));
        book.settle_exit(10, ProcessExit::Code(0));
        assert_eq!(book.process(10).unwrap().exit, Some(ProcessExit::Code(0)));

        let mut book = ProcessBook::default();
        for e in [generate(99, 99, 10, libc::SIGTERM, 0), deliver(10, 10, libc::SIGTERM, 0), exit(10, 10, true)] {
            book.observe(&e);
        }
        book.settle_exit(10, ProcessExit::Signal { sig: libc::SIGTERM, sender: None });
        let Some(ProcessExit::Signal { sender: Some(s), .. }) = &book.process(10).unwrap().exit else { panic!() };
        assert_eq!(s.tgid, 99);
    }
}
