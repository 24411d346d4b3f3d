//! The ordered stream of calls and lifecycle steps turned into the records the kernel side writes:
//! syscalls, forks (at the clone's return, before anything the child did), execs, signals (sender,
//! fault, delivery), exits. Every record carries `flags::IMPORTED`, and `UNKNOWN_*` for what strace
//! did not record; nothing strace did not say is made up.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use observer_common::{
    flags, kind, EventHeader, ExecEvent, ExitEvent, FaultEvent, ForkEvent, SignalDeliverEvent, SignalGenerateEvent,
    SyscallEvent, COMM_LEN, FILENAME_LEN,
};

use super::{
    calls::{self, Built},
    lifecycle::{Lifecycle, SigInfo},
    line::Ret,
    order::{Call, Op, OpKind},
    scan::split_args,
    tasks::Family,
    value,
};
use crate::{decode::is_error_return, event::Event};

/// How a process ended, as strace said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Code(i32),
    Signal(i32),
}

/// What the stream became.
#[derive(Debug, Default)]
pub struct Emitted {
    /// Records made and not yet taken ([`Emitter::events`]).
    pub events: Vec<Event>,
    /// Calls of syscalls observer does not record, by name.
    pub skipped: BTreeMap<String, u64>,
    /// The command's argv, from its first successful exec.
    pub command: Vec<String>,
    pub root_pid: Option<u32>,
    pub root_end: Option<End>,
    /// Calls that never returned in the capture (recorded as UNFINISHED).
    pub never_resumed: u64,
    /// Calls left out because the kernel could not have returned what the line says: where they
    /// were read (file index, line) and the call as understood.
    pub impossible: Vec<(usize, usize, String)>,
}

/// Turns wall times into record timestamps: `wall - base` with a known time, else a counter that
/// only keeps the order (and `flags::UNKNOWN_TIME`).
struct Stamper {
    base: Option<i64>,
    counter: u64,
    last: u64,
}

impl Stamper {
    fn ts(&mut self, wall: Option<i64>) -> (u64, u16) {
        match (self.base, wall) {
            (Some(base), Some(wall)) => {
                self.last = u64::try_from(wall.saturating_sub(base)).unwrap_or(0);
                (self.last, 0)
            }
            (Some(_), None) => (self.last, flags::UNKNOWN_TIME),
            (None, _) => {
                self.counter += 1;
                (self.counter, flags::UNKNOWN_TIME)
            }
        }
    }
}

fn comm_of(name: &[u8]) -> [u8; COMM_LEN] {
    let mut comm = [0u8; COMM_LEN];
    let n = name.len().min(COMM_LEN - 1);
    comm[..n].copy_from_slice(&name[..n]);
    comm
}

fn is_fault(sig: i32) -> bool {
    matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGTRAP | libc::SIGFPE)
}

/// `SIG_DFL` 0, `SIG_IGN` 1, else the handler's address.
fn handler(text: &str) -> Option<u64> {
    match text.trim() {
        "SIG_DFL" => Some(0),
        "SIG_IGN" => Some(1),
        other => value::reg(other),
    }
}

/// Makes the records of a stream, a step at a time.
pub struct Emitter<'a> {
    family: &'a Family,
    stamper: Stamper,
    out: Emitted,
    /// Per tid.
    comm: HashMap<u32, [u8; COMM_LEN]>,
    /// Per process: signal dispositions set with rt_sigaction during the capture, with whether
    /// they reset to SIG_DFL once used (SA_RESETHAND).
    handlers: HashMap<u32, HashMap<i32, Disposition>>,
    /// Per process: threads seen and not yet exited.
    live: HashMap<u32, BTreeSet<u32>>,
    ended: HashSet<u32>,
    forked: HashSet<u32>,
    /// (process, signal) delivered while its action was the default one.
    delivered_default: HashSet<(u32, i32)>,
    root: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Disposition {
    handler: u64,
    reset_hand: bool,
}

impl Emitter<'_> {
    fn header(&mut self, kind: u16, extra: u16, tid: u32, tgid: u32, wall: Option<i64>) -> EventHeader {
        let (ts_ns, unknown) = self.stamper.ts(wall);
        EventHeader { kind, flags: flags::IMPORTED | unknown | extra, tid, tgid, _pad: 0, ts_ns }
    }

    fn comm(&self, tid: u32) -> [u8; COMM_LEN] {
        self.comm.get(&tid).copied().unwrap_or_default()
    }

    /// The fork record of `tid`, once, no later than `at` (the child's first step).
    fn ensure_forked(&mut self, tid: u32, at: Option<i64>) {
        let Some(creation) = self.family.created.get(&tid).copied() else { return };
        if !self.forked.insert(tid) {
            return;
        }
        let wall = match (creation.at, at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let parent_tgid = self.family.tgid(creation.parent);
        let child_tgid = self.family.tgid(tid);
        let extra = if creation.thread { flags::THREAD } else { 0 };
        let header = self.header(kind::FORK, extra, creation.parent, parent_tgid, wall);
        let parent_comm = self.comm(creation.parent);
        self.out.events.push(Event::Fork(ForkEvent { header, child_tid: tid, child_tgid, parent_comm }));
        self.comm.insert(tid, parent_comm);
        if !creation.thread {
            let inherited = self.handlers.get(&parent_tgid).cloned().unwrap_or_default();
            self.handlers.insert(child_tgid, inherited);
        }
        self.live.entry(child_tgid).or_default().insert(tid);
    }

    /// The records of one step.
    pub fn step(&mut self, op: &Op) {
        let built = match &op.kind {
            OpKind::Syscall(call) => calls::build(&call.name, &call.args),
            OpKind::Lifecycle(_) => None,
        };
        if let (OpKind::Syscall(call), Some(built)) = (&op.kind, &built) {
            if let Some(Ret::Value(ret)) = call.ret {
                if is_error_return(ret).is_none() && !calls::possible(&call.name, built, ret) {
                    let text = format!("{}({}) = {ret:#x}", call.name, call.args);
                    self.out.impossible.push((op.file, op.line, text));
                    return;
                }
            }
        }
        self.ensure_forked(op.tid, op.at);
        let tgid = self.family.tgid(op.tid);
        if !self.ended.contains(&tgid) {
            self.live.entry(tgid).or_default().insert(op.tid);
        }
        match &op.kind {
            OpKind::Syscall(call) => self.call(op.tid, tgid, call, built),
            OpKind::Lifecycle(step) => self.lifecycle(op.tid, tgid, op.at, step),
        }
    }

    /// What calls outside the schema still tell: signal dispositions and thread names.
    fn track(&mut self, tid: u32, tgid: u32, call: &Call) {
        if call.ret != Some(Ret::Value(0)) {
            return;
        }
        let args = split_args(&call.args);
        match call.name.as_str() {
            "rt_sigaction" => {
                let (Some(sig), Some(act)) = (args.first().and_then(|s| value::signal(s)), args.get(1)) else { return };
                // `{sa_handler=SIG_IGN, sa_mask=[], sa_flags=SA_RESETHAND}`, or old strace's
                // `{SIG_IGN, [], SA_RESETHAND}`.
                let fields = act.strip_prefix('{').map(split_args).unwrap_or_default();
                let text = value::field(act, "sa_handler").or_else(|| fields.first().copied());
                let flags = value::field(act, "sa_flags").or_else(|| fields.get(2).copied()).unwrap_or("");
                let reset_hand = flags.split('|').any(|f| matches!(f.trim(), "SA_RESETHAND" | "SA_ONESHOT"));
                if let (Some(handler), Ok(sig)) = (text.and_then(handler), i32::try_from(sig)) {
                    self.handlers.entry(tgid).or_default().insert(sig, Disposition { handler, reset_hand });
                }
            }
            "prctl" if args.first() == Some(&"PR_SET_NAME") => {
                if let Some(name) = args.get(1).and_then(|a| value::string(a)) {
                    self.comm.insert(tid, comm_of(&name));
                }
            }
            _ => {}
        }
    }

    /// One call; `built` is its record's fields, `None` for a syscall observer does not record.
    fn call(&mut self, tid: u32, tgid: u32, call: &Call, built: Option<Built>) {
        if calls::is_clone(&call.name) {
            if let Some(Ret::Value(child)) = call.ret {
                if let Ok(child) = u32::try_from(child) {
                    self.ensure_forked(child, None);
                }
            }
        }
        let Some(built) = built else {
            *self.out.skipped.entry(call.name.clone()).or_default() += 1;
            self.track(tid, tgid, call);
            return;
        };
        let no_return = matches!(call.name.as_str(), "exit" | "exit_group");
        let mut extra = built.flags;
        if call.partial {
            extra |= flags::UNKNOWN_ARGS;
        }
        let ret = match call.ret {
            _ if no_return => {
                extra |= flags::NO_RETURN;
                0
            }
            Some(Ret::Value(v)) => v,
            None | Some(Ret::Unknown) => {
                extra |= flags::UNFINISHED;
                if call.ret.is_none() {
                    self.out.never_resumed += 1;
                }
                0
            }
        };
        let duration_ns = match call.duration {
            _ if no_return => 0,
            Some(d) => d,
            None => {
                extra |= flags::UNKNOWN_DURATION;
                0
            }
        };
        let returned_at = call.exit.or(match (call.entry, call.duration) {
            (Some(e), Some(d)) => Some(e.saturating_add(i64::try_from(d).unwrap_or(i64::MAX))),
            (e, _) => e,
        });
        let execs = matches!(call.name.as_str(), "execve" | "execveat");
        if execs && ret == 0 && extra & (flags::NO_RETURN | flags::UNFINISHED) == 0 {
            self.exec(tid, tgid, call, returned_at);
        }
        let header = self.header(kind::SYSCALL, extra, tid, tgid, call.entry);
        self.out.events.push(Event::Syscall(SyscallEvent {
            header,
            nr: built.nr,
            nargs: built.nargs,
            args: built.args,
            ret,
            duration_ns,
            aux: built.aux,
        }));
    }

    /// A successful execve / execveat: the exec record (placed before the call's own record, as
    /// the kernel emits it from inside the call), the new name and the reset handlers.
    fn exec(&mut self, tid: u32, tgid: u32, call: &Call, at: Option<i64>) {
        let Some((path, argv)) = calls::exec_target(&call.name, &call.args) else {
            // Exec'd, but strace did not print the path: the name is unknown.
            let header = self.header(kind::EXEC, flags::UNKNOWN_ARGS, tid, tgid, at);
            self.out.events.push(Event::Exec(ExecEvent { header, old_tid: tid, ..ExecEvent::default() }));
            return;
        };
        let base = path.rsplit(|&b| b == b'/').next().unwrap_or(&path);
        let comm = comm_of(base);
        let mut filename = [0u8; FILENAME_LEN];
        let n = path.len().min(FILENAME_LEN - 1);
        filename[..n].copy_from_slice(&path[..n]);
        let header = self.header(kind::EXEC, 0, tid, tgid, at);
        self.out.events.push(Event::Exec(ExecEvent { header, old_tid: tid, _pad: 0, comm, filename }));
        self.comm.insert(tid, comm);
        // Handlers do not survive exec; ignored signals stay ignored.
        if let Some(h) = self.handlers.get_mut(&tgid) {
            h.retain(|_, d| d.handler == 1);
        }
        if tgid == self.root && self.out.command.is_empty() {
            self.out.command = command_line(&path, argv);
        }
    }

    /// A delivery of `info`'s signal; `killed`: strace said the signal ended the process, so its
    /// action was the default one whatever the capture saw set.
    fn deliver(&mut self, tid: u32, tgid: u32, wall: Option<i64>, info: &SigInfo, killed: bool) {
        let SigInfo { sig, code, errno, .. } = *info;
        let uncatchable = matches!(sig, libc::SIGKILL | libc::SIGSTOP);
        let disposition =
            self.handlers.get_mut(&tgid).and_then(|h| h.get_mut(&sig)).filter(|_| !killed && !uncatchable);
        let sa_handler = match disposition {
            Some(d) => {
                let handler = d.handler;
                if d.reset_hand && handler > 1 {
                    *d = Disposition { handler: 0, reset_hand: false };
                }
                handler
            }
            None => 0,
        };
        // sa_flags are never known, and the code only when strace printed siginfo.
        let header = self.header(kind::SIGNAL_DELIVER, flags::UNKNOWN_ARGS, tid, tgid, wall);
        self.out.events.push(Event::SignalDeliver(SignalDeliverEvent {
            header,
            sig,
            errno,
            code: code.unwrap_or(0),
            _pad: 0,
            sa_handler,
            sa_flags: 0,
        }));
        if sa_handler == 0 {
            self.delivered_default.insert((tgid, sig));
        }
    }

    fn signal(&mut self, tid: u32, tgid: u32, wall: Option<i64>, info: &SigInfo) {
        let code = info.code.unwrap_or(0);
        if let Some(pid) = info.pid {
            // When it was sent is not known, only that it was before the delivery; nor by which
            // thread of the sender. Its name is known when the sender is in the capture.
            let header = self.header(kind::SIGNAL_GENERATE, flags::UNKNOWN_TIME, pid, pid, wall);
            let sender_comm = self.comm(pid);
            // kill() and sigqueue() (and a child's SIGCHLD) address the process; tkill a thread.
            let group = i32::from(matches!(code, 0 | -1) || info.sig == libc::SIGCHLD);
            self.out.events.push(Event::SignalGenerate(SignalGenerateEvent {
                header,
                sig: info.sig,
                errno: info.errno,
                code,
                target_tid: tid,
                group,
                result: 0,
                sender_comm,
                target_comm: self.comm(tid),
            }));
        }
        if let (true, Some(addr)) = (is_fault(info.sig), info.addr) {
            let header = self.header(kind::FAULT, 0, tid, tgid, wall);
            self.out.events.push(Event::Fault(FaultEvent { header, sig: info.sig, code, addr }));
        }
        self.deliver(tid, tgid, wall, info, false);
    }

    fn lifecycle(&mut self, tid: u32, tgid: u32, wall: Option<i64>, step: &Lifecycle) {
        match step {
            Lifecycle::Signal(info) => self.signal(tid, tgid, wall, info),
            Lifecycle::Exited(code) => self.exit(tid, tgid, wall, End::Code(*code)),
            Lifecycle::Killed(sig) => {
                // strace never shows SIGKILL's delivery; a signal that ended the process without a
                // delivery line (`-e signal=none`), or whose delivery the capture took for a
                // handled one, was still delivered to it with the default action.
                if *sig == libc::SIGKILL || !self.delivered_default.contains(&(tgid, *sig)) {
                    let info = SigInfo { sig: *sig, code: None, errno: 0, pid: None, addr: None };
                    self.deliver(tid, tgid, wall, &info, true);
                }
                self.exit(tid, tgid, wall, End::Signal(*sig));
            }
            Lifecycle::Stopped(_) | Lifecycle::Superseded(_) => {}
        }
    }

    /// A thread's end; the process's when it is the leader (strace reports the leader last) or
    /// the last thread seen alive.
    fn exit(&mut self, tid: u32, tgid: u32, wall: Option<i64>, end: End) {
        let threads = self.live.entry(tgid).or_default();
        threads.remove(&tid);
        let group_dead = !self.ended.contains(&tgid) && (tid == tgid || threads.is_empty());
        if group_dead {
            self.ended.insert(tgid);
            self.live.remove(&tgid);
            // Nothing is delivered to an ended process: memory follows the processes alive.
            self.handlers.remove(&tgid);
            if tgid == self.root {
                self.out.root_end = Some(end);
            }
        }
        let extra = if group_dead { flags::GROUP_DEAD } else { 0 };
        let header = self.header(kind::EXIT, extra, tid, tgid, wall);
        let comm = self.comm(tid);
        self.out.events.push(Event::Exit(ExitEvent { header, comm }));
    }
}

/// The command an exec ran: its argv, or its path when strace printed no argv.
fn command_line(path: &[u8], argv: Option<Vec<String>>) -> Vec<String> {
    argv.filter(|a| !a.is_empty()).unwrap_or_else(|| vec![String::from_utf8_lossy(path).into_owned()])
}

/// The command `call` ran, when it is an exec that succeeded and says what it ran: what the
/// emitter takes as the command when the call is the first such in the root process.
pub fn command_of(call: &Call) -> Option<Vec<String>> {
    let execs = matches!(call.name.as_str(), "execve" | "execveat");
    if !execs || call.ret != Some(Ret::Value(0)) || calls::build(&call.name, &call.args).is_none() {
        return None;
    }
    let (path, argv) = calls::exec_target(&call.name, &call.args)?;
    Some(command_line(&path, argv))
}

impl<'a> Emitter<'a> {
    /// `base` is the wall time that becomes timestamp 0 (`None`: times unknown); `root` the
    /// command's process, the first step's.
    pub fn new(family: &'a Family, base: Option<i64>, root: Option<u32>) -> Self {
        Emitter {
            family,
            stamper: Stamper { base, counter: 0, last: 0 },
            out: Emitted { root_pid: root, ..Emitted::default() },
            comm: HashMap::new(),
            handlers: HashMap::new(),
            live: HashMap::new(),
            ended: HashSet::new(),
            forked: HashSet::new(),
            delivered_default: HashSet::new(),
            root: root.unwrap_or(0),
        }
    }

    /// The records made so far and not yet taken.
    pub fn events(&mut self) -> &mut Vec<Event> {
        &mut self.out.events
    }

    /// What the stream became, once every step was made.
    pub fn finish(self) -> Emitted {
        self.out
    }
}

/// Records for `ops`; `base` is the wall time that becomes timestamp 0 (`None`: times unknown).
#[cfg(test)]
pub fn emit(ops: &[Op], family: &Family, base: Option<i64>) -> Emitted {
    let mut e = Emitter::new(family, base, ops.first().map(|op| family.tgid(op.tid)));
    for op in ops {
        e.step(op);
    }
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        event::c_str,
        import_strace::{
            line::parse,
            order::{pair, Item},
        },
    };

    /// Records for the lines of one `strace -f -o` file (times in seconds via -ttt when given).
    fn records(lines: &[&str]) -> Emitted {
        let items: Vec<Item> = lines
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let l = parse(t).unwrap_or_else(|| panic!("parses: {t}"));
                let wall = l.stamp.map(|s| match s {
                    crate::import_strace::stamp::Stamp::Epoch(ns)
                    | crate::import_strace::stamp::Stamp::TimeOfDay(ns)
                    | crate::import_strace::stamp::Stamp::Relative(ns) => ns,
                });
                Item { file: 0, line: i + 1, tid: l.pid.unwrap_or(1), wall, body: l.body }
            })
            .collect();
        let timed = items.iter().all(|i| i.wall.is_some());
        let ops = pair(items);
        let family = Family::infer(&ops);
        emit(&ops, &family, timed.then_some(0))
    }

    fn syscalls(e: &Emitted) -> Vec<SyscallEvent> {
        e.events.iter().filter_map(|ev| if let Event::Syscall(s) = ev { Some(*s) } else { None }).collect()
    }

    #[test]
    fn every_record_is_marked_imported_and_unknown_times_keep_only_the_order() {
        let e = records(&[
            "1 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f00",
            "1 brk(NULL) = 0x1000",
        ]);
        let s = syscalls(&e);
        assert_eq!(s.len(), 2);
        for r in &s {
            assert_eq!(r.header.flags, flags::IMPORTED | flags::UNKNOWN_TIME | flags::UNKNOWN_DURATION);
        }
        assert!(s[0].header.ts_ns < s[1].header.ts_ns);
    }

    #[test]
    fn times_and_durations_are_kept_when_strace_printed_them() {
        let e = records(&["1 2.000000 mprotect(0x7f01000, 8388608, PROT_READ|PROT_WRITE) = -1 ENOMEM (Cannot allocate memory) <0.000004>"]);
        let s = syscalls(&e)[0];
        assert_eq!(
            (s.header.ts_ns, s.duration_ns, s.ret, s.header.flags),
            (2_000_000_000, 4_000, -12, flags::IMPORTED)
        );
        assert_eq!((s.header.tid, s.header.tgid), (1, 1));
    }

    #[test]
    fn a_thread_clone_emits_a_thread_fork_before_the_childs_first_step() {
        let e = records(&[
            "10  1.0 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, exit_signal=0} <unfinished ...>",
            "11  1.1 brk(NULL) = 0x1000",
            "10  1.2 <... clone3 resumed> => {parent_tid=[11]}, 88) = 11",
            "11  1.3 exit(0) = ?",
            "11  1.4 +++ exited with 0 +++",
        ]);
        let Event::Fork(fork) = e.events[0] else { panic!("{:?}", e.events[0]) };
        assert_eq!(
            (fork.header.tid, fork.child_tid, fork.child_tgid, fork.header.flags),
            (10, 11, 10, flags::IMPORTED | flags::THREAD)
        );
        assert_eq!(fork.header.ts_ns, 1_100_000_000, "no later than the child's first step");
        let brk = syscalls(&e)[0];
        assert_eq!((brk.header.tid, brk.header.tgid), (11, 10));
        let Some(Event::Exit(exit)) = e.events.last() else { panic!() };
        assert_eq!(
            (exit.header.tid, exit.header.flags & flags::GROUP_DEAD),
            (11, 0),
            "a thread's end is not its process's"
        );
    }

    #[test]
    fn a_fork_creates_a_process_that_inherits_the_name() {
        let e = records(&[
            "5 execve(\"/usr/bin/sh\", [\"sh\", \"-c\", \"x\"], 0x7ffe /* 3 vars */) = 0",
            "5 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 6",
            "6 exit_group(3) = ?",
            "6 +++ exited with 3 +++",
        ]);
        assert_eq!(e.command, ["sh", "-c", "x"]);
        let Event::Exec(exec) = e.events[0] else { panic!() };
        assert_eq!((c_str(&exec.comm), c_str(&exec.filename)), ("sh".to_string(), "/usr/bin/sh".to_string()));
        let fork = e.events.iter().find_map(|ev| if let Event::Fork(f) = ev { Some(*f) } else { None }).unwrap();
        assert_eq!(
            (fork.child_tgid, fork.header.flags & flags::THREAD, c_str(&fork.parent_comm)),
            (6, 0, "sh".to_string())
        );
        let Some(Event::Exit(exit)) = e.events.last() else { panic!() };
        assert_eq!((exit.header.flags & flags::GROUP_DEAD, c_str(&exit.comm)), (flags::GROUP_DEAD, "sh".to_string()));
        assert_eq!(e.root_pid, Some(5));
        assert_eq!(e.root_end, None, "the root never said how it ended");
    }

    #[test]
    fn a_fault_gives_fault_and_delivery_then_the_kill_ends_the_process() {
        let e = records(&[
            "7 --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_ACCERR, si_addr=0x7f0000001008} ---",
            "7 +++ killed by SIGSEGV (core dumped) +++",
        ]);
        let kinds: Vec<&str> = e.events.iter().map(|ev| ev.kind_name()).collect();
        assert_eq!(kinds, ["fault", "signal_deliver", "exit"]);
        let Event::Fault(f) = e.events[0] else { panic!() };
        assert_eq!((f.sig, f.code, f.addr), (11, 2, 0x7f00_0000_1008));
        assert_eq!(e.root_end, Some(End::Signal(11)));
    }

    #[test]
    fn a_signal_from_a_process_is_generated_by_it_just_before_delivery() {
        let e = records(&[
            "7 --- SIGTERM {si_signo=SIGTERM, si_code=SI_USER, si_pid=99, si_uid=0} ---",
            "7 +++ killed by SIGTERM +++",
        ]);
        let Event::SignalGenerate(g) = e.events[0] else { panic!() };
        assert_eq!((g.header.tid, g.header.tgid, g.target_tid, g.sig, g.code, g.group), (99, 99, 7, 15, 0, 1));
        assert_eq!(g.header.flags, flags::IMPORTED | flags::UNKNOWN_TIME);
        assert_eq!(c_str(&g.sender_comm), "", "pid 99 is not in the capture: its name is unknown");
        let kinds: Vec<&str> = e.events.iter().map(|ev| ev.kind_name()).collect();
        assert_eq!(kinds, ["signal_generate", "signal_deliver", "exit"], "one delivery, not a second at the kill");
    }

    #[test]
    fn a_sender_in_the_capture_is_named() {
        let e = records(&[
            "5 execve(\"/usr/bin/kill\", [\"kill\"], 0x7ffe /* 3 vars */) = 0",
            "7 --- SIGTERM {si_signo=SIGTERM, si_code=SI_USER, si_pid=5, si_uid=0} ---",
        ]);
        let g = e.events.iter().find_map(|ev| if let Event::SignalGenerate(g) = ev { Some(*g) } else { None }).unwrap();
        assert_eq!(c_str(&g.sender_comm), "kill");
    }

    #[test]
    fn sigkill_is_delivered_at_the_kill_line() {
        let e = records(&[
            "7 futex(0x55d4c3a0, FUTEX_WAIT_PRIVATE, 2, NULL <unfinished ...>",
            "7 +++ killed by SIGKILL +++",
        ]);
        let kinds: Vec<&str> = e.events.iter().map(|ev| ev.kind_name()).collect();
        assert_eq!(kinds, ["syscall", "signal_deliver", "exit"]);
        let futex = syscalls(&e)[0];
        assert_ne!(futex.header.flags & flags::UNFINISHED, 0);
        assert_eq!(e.never_resumed, 1);
        let Event::SignalDeliver(d) = e.events[1] else { panic!() };
        assert_eq!(d.sig, 9);
    }

    #[test]
    fn handlers_set_with_rt_sigaction_are_known_at_delivery() {
        let e = records(&[
            "7 rt_sigaction(SIGTERM, {sa_handler=0x55a48ba4bdc0, sa_mask=~[RTMIN RT_1], sa_flags=SA_RESTORER, sa_restorer=0x7f2e}, NULL, 8) = 0",
            "7 rt_sigaction(SIGINT, {sa_handler=SIG_IGN, sa_mask=[], sa_flags=0}, NULL, 8) = 0",
            "7 --- SIGTERM {si_signo=SIGTERM, si_code=SI_USER, si_pid=7, si_uid=0} ---",
            "7 --- SIGINT {si_signo=SIGINT, si_code=SI_KERNEL} ---",
        ]);
        let handlers: Vec<u64> = e
            .events
            .iter()
            .filter_map(|ev| if let Event::SignalDeliver(d) = ev { Some(d.sa_handler) } else { None })
            .collect();
        assert_eq!(handlers, [0x55a4_8ba4_bdc0, 1]);
        assert_eq!(e.skipped.get("rt_sigaction"), Some(&2));
    }

    #[test]
    fn a_one_shot_handler_is_the_default_again_after_one_delivery() {
        let e = records(&[
            "7 rt_sigaction(SIGSEGV, {sa_handler=0x4011d6, sa_mask=[], sa_flags=SA_RESTORER|SA_RESETHAND, sa_restorer=0x7f}, NULL, 8) = 0",
            "7 --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x10} ---",
            "7 --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x10} ---",
            "7 +++ killed by SIGSEGV (core dumped) +++",
        ]);
        let handlers: Vec<u64> = e
            .events
            .iter()
            .filter_map(|ev| if let Event::SignalDeliver(d) = ev { Some(d.sa_handler) } else { None })
            .collect();
        assert_eq!(handlers, [0x4011d6, 0], "no third delivery: the second had the default action");
    }

    #[test]
    fn a_kill_by_a_signal_the_capture_thought_handled_is_a_default_delivery() {
        let e = records(&[
            "7 rt_sigaction(SIGTERM, {sa_handler=0x4011d6, sa_mask=[], sa_flags=SA_RESTORER, sa_restorer=0x7f}, NULL, 8) = 0",
            "7 --- SIGTERM {si_signo=SIGTERM, si_code=SI_USER, si_pid=1, si_uid=0} ---",
            "7 +++ killed by SIGTERM +++",
        ]);
        let handlers: Vec<u64> = e
            .events
            .iter()
            .filter_map(|ev| if let Event::SignalDeliver(d) = ev { Some(d.sa_handler) } else { None })
            .collect();
        assert_eq!(handlers, [0x4011d6, 0]);
        assert_eq!(e.root_end, Some(End::Signal(15)));
    }

    #[test]
    fn the_leaders_exit_ends_the_process_even_with_threads_not_seen_ending() {
        let e = records(&[
            "10 clone3({flags=CLONE_VM|CLONE_THREAD|CLONE_SIGHAND, exit_signal=0}, 88) = 11",
            "10 exit_group(1) = ?",
            "10 +++ exited with 1 +++",
        ]);
        let Some(Event::Exit(exit)) = e.events.last() else { panic!() };
        assert_ne!(exit.header.flags & flags::GROUP_DEAD, 0);
        assert_eq!(e.root_end, Some(End::Code(1)));
        let exit_group = syscalls(&e)[1];
        assert_eq!(exit_group.header.flags, flags::IMPORTED | flags::UNKNOWN_TIME | flags::NO_RETURN);
    }
}
