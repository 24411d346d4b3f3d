//! The stuck snapshot (`stuck.txt`, `stuck.json`): for every tracked thread, its state, kernel wait
//! channel, the syscall it is blocked in (from the kernel's in-flight table) and what that wait is
//! on — fds decoded to pipes, eventfds and sockets, futexes to mutex owners, waits to children.
use std::{
    collections::{BTreeMap, BTreeSet},
    io,
    path::Path,
};

use observer_common::{flags, kind, syscalls, EventHeader, InFlight, SyscallEvent};
use serde::{Deserialize, Serialize};

use super::{procread, progress::CpuWindow};
use crate::decode::format_call;

pub const STUCK_TXT: &str = "stuck.txt";
pub const STUCK_JSON: &str = "stuck.json";
pub const SCHEMA: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StuckSnapshot {
    pub schema: u32,
    pub taken_at: String,
    /// Why it was taken: `timeout after 5s`, `no progress for 3s`, ...
    pub reason: String,
    /// Length of the CPU window the `cpu_*` figures cover.
    pub window_s: f64,
    /// Syscalls the tracked threads completed in that window (from the capture).
    pub syscalls_in_window: u64,
    pub processes: Vec<ProcessSnapshot>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSnapshot {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    pub state: TaskState,
    pub maps_lines: usize,
    pub rss_kb: u64,
    pub children: Vec<u32>,
    pub threads: Vec<ThreadSnapshot>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreadSnapshot {
    pub tid: u32,
    pub comm: String,
    pub state: TaskState,
    pub wchan: String,
    pub cpu_user_s: f64,
    pub cpu_system_s: f64,
    /// Share of one CPU used over the window.
    pub cpu_share: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<BlockedCall>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fds: Vec<FdWait>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub futex: Option<FutexWait>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_wait: Option<ChildWait>,
    /// User-space frames of a blocked thread (heuristic stack scan, symbolized).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_frames: Vec<String>,
    /// Sampled functions of a thread on CPU: (function, samples).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<(String, u32)>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockedCall {
    pub name: String,
    pub nr: u32,
    pub args: Vec<u64>,
    /// Decoded like a trace line: `ppoll([...], 2, NULL, NULL, 8)`.
    pub text: String,
    /// Seconds since the call was entered (unknown when read from /proc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_s: Option<f64>,
    /// `kernel in-flight table` or `/proc syscall` (for calls entered before tracking began).
    pub source: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdWait {
    pub fd: i32,
    pub target: String,
    /// eventfd, pipe, socket, tty, file, anon_inode, unknown
    pub kind: String,
    /// Who holds the other end / what it is, in words (`self-pipe: write end held by this process`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FutexWait {
    pub addr: u64,
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word: Option<i32>,
    /// The thread owning the lock, read from a glibc pthread_mutex_t (`__owner`, 8 bytes after the
    /// lock word) or from a PI futex word, when it names a live thread of the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_tid: Option<u32>,
    /// The futex word holds a live tid: pthread_join waiting for that thread to exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joining_tid: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildWait {
    /// `any child`, `pid 123`, `process group 5`.
    pub waits_for: String,
    pub children: Vec<ChildState>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildState {
    pub pid: u32,
    pub comm: String,
    pub state: TaskState,
}

/// A task's scheduler state, the letter of `/proc/<pid>/stat` (written as that letter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// `R`: running or runnable.
    Running,
    /// `S`: interruptible sleep.
    Sleeping,
    /// `D`: uninterruptible sleep (usually I/O).
    DiskSleep,
    /// `T`: stopped by a signal.
    Stopped,
    /// `t`: stopped by a tracer.
    TracingStop,
    /// `I`: an idle kernel thread.
    Idle,
    /// `Z`: exited, not yet reaped.
    Zombie,
    /// `X`: dead.
    Dead,
    /// Any other letter a kernel may report.
    Other(char),
    /// Not read.
    #[default]
    Unknown,
}

impl TaskState {
    /// The letter `/proc` uses; `None` when not read.
    pub fn letter(self) -> Option<char> {
        Some(match self {
            TaskState::Running => 'R',
            TaskState::Sleeping => 'S',
            TaskState::DiskSleep => 'D',
            TaskState::Stopped => 'T',
            TaskState::TracingStop => 't',
            TaskState::Idle => 'I',
            TaskState::Zombie => 'Z',
            TaskState::Dead => 'X',
            TaskState::Other(c) => c,
            TaskState::Unknown => return None,
        })
    }

    /// Stopped, by a signal or a tracer.
    pub fn is_stopped(self) -> bool {
        matches!(self, TaskState::Stopped | TaskState::TracingStop)
    }

    /// Off CPU waiting for something (asleep, stopped or idle).
    pub fn is_waiting(self) -> bool {
        matches!(self, TaskState::Sleeping | TaskState::DiskSleep | TaskState::Idle) || self.is_stopped()
    }
}

impl From<char> for TaskState {
    fn from(letter: char) -> Self {
        match letter {
            'R' => TaskState::Running,
            'S' => TaskState::Sleeping,
            'D' => TaskState::DiskSleep,
            'T' => TaskState::Stopped,
            't' => TaskState::TracingStop,
            'I' => TaskState::Idle,
            'Z' => TaskState::Zombie,
            'X' => TaskState::Dead,
            other => TaskState::Other(other),
        }
    }
}

impl From<&str> for TaskState {
    fn from(text: &str) -> Self {
        text.chars().next().map_or(TaskState::Unknown, TaskState::from)
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.letter() {
            Some(c) => f.pad(c.encode_utf8(&mut [0; 4])),
            None => f.pad(""),
        }
    }
}

impl Serialize for TaskState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TaskState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(TaskState::from(text.as_str()))
    }
}

const FUTEX_CMD_MASK: u64 = !(128 | 256);
const FUTEX_WAIT: u64 = 0;
const FUTEX_LOCK_PI: u64 = 6;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_LOCK_PI2: u64 = 13;
/// Offset of `__owner` in glibc's `struct __pthread_mutex_s` on 64-bit (after `__lock`, `__count`).
pub const MUTEX_OWNER_OFFSET: u64 = 8;

fn in_progress_text(nr: u32, args: &[u64; 6], nargs: u32) -> String {
    let event = SyscallEvent {
        header: EventHeader { kind: kind::SYSCALL, flags: flags::UNFINISHED, ..Default::default() },
        nr,
        nargs,
        args: *args,
        ..Default::default()
    };
    let text = format_call(&event);
    text.strip_suffix(" <unfinished ...>").map_or(text.clone(), |t| format!("{t})"))
}

fn fd_kind(target: &str) -> &'static str {
    if target == "anon_inode:[eventfd]" {
        "eventfd"
    } else if target.starts_with("pipe:") {
        "pipe"
    } else if target.starts_with("socket:") {
        "socket"
    } else if target.starts_with("anon_inode:") {
        "anon_inode"
    } else if target.starts_with("/dev/pts/") || target.starts_with("/dev/tty") {
        "tty"
    } else if target.starts_with('/') {
        "file"
    } else {
        "unknown"
    }
}

/// Every (pid, fd, write-only) holding `target` among `pids`.
fn holders(pids: &[u32], target: &str) -> Vec<(u32, i32, bool)> {
    let mut out = Vec::new();
    for &pid in pids {
        for (fd, t) in procread::fds(pid) {
            if t == target {
                out.push((pid, fd, procread::opened_write_only(&procread::fdinfo(pid, fd))));
            }
        }
    }
    out
}

fn describe_fd(pid: u32, fd: i32, pids: &[u32]) -> FdWait {
    let target = procread::fd_target(pid, fd).unwrap_or_else(|| "(closed)".into());
    let kind = fd_kind(&target);
    let note = match kind {
        "pipe" => {
            let all = holders(pids, &target);
            let writers: Vec<&(u32, i32, bool)> = all.iter().filter(|(_, _, w)| *w).collect();
            if writers.is_empty() {
                "no tracked process holds the write end".to_string()
            } else if writers.iter().all(|(p, _, _)| *p == pid) {
                format!("self-pipe: the write end is fd {} of this process", writers[0].1)
            } else {
                let list: Vec<String> = writers.iter().map(|(p, f, _)| format!("pid {p} fd {f}")).collect();
                format!("write end held by {}", list.join(", "))
            }
        }
        "socket" => describe_socket(pid, &target, pids),
        "eventfd" => "an eventfd: woken only when some thread writes to it".to_string(),
        _ => String::new(),
    };
    FdWait { fd, target, kind: kind.into(), note }
}

/// A socket's other end: for a unix socket the peer the kernel reports through sock_diag and who
/// holds it ("self" for a socketpair inside one process), else who else has it open.
fn describe_socket(pid: u32, target: &str, pids: &[u32]) -> String {
    let unix =
        super::unix_sockets::socket_inode(target).and_then(|ino| super::unix_sockets::unix_sockets().remove(&ino));
    match unix {
        Some(sock) => {
            let name = sock.path.as_deref().map_or("unnamed unix socket".to_string(), |p| format!("unix socket {p}"));
            let Some(peer) = sock.peer else { return format!("{name}, no peer (listening or unconnected)") };
            let peer_target = format!("socket:[{peer}]");
            let held: Vec<String> = holders(pids, &peer_target)
                .into_iter()
                .map(|(p, f, _)| if p == pid { format!("this process (fd {f})") } else { format!("pid {p} fd {f}") })
                .collect();
            if held.is_empty() {
                format!("{name}, peer {peer_target} held by no tracked process")
            } else {
                format!("{name}, peer {peer_target} held by {}", held.join(", "))
            }
        }
        None => {
            let others: Vec<String> = holders(pids, target)
                .into_iter()
                .filter(|(p, _, _)| *p != pid)
                .map(|(p, f, _)| format!("pid {p} fd {f}"))
                .collect();
            if others.is_empty() {
                "not a unix socket; its peer is not exposed".to_string()
            } else {
                format!("also open in {}", others.join(", "))
            }
        }
    }
}

/// fds a poll-family call waits on, read from the caller's memory.
fn polled_fds(pid: u32, name: &str, args: &[u64]) -> Vec<i32> {
    match name {
        "poll" | "ppoll" => {
            let n = args[1].min(256) as usize;
            procread::read_memory(pid, args[0], n * 8)
                .map(|b| {
                    b.chunks(8)
                        .map(|c| i32::from_le_bytes(c[..4].try_into().expect("4 bytes")))
                        .filter(|fd| *fd >= 0)
                        .collect()
                })
                .unwrap_or_default()
        }
        "select" | "pselect6" => {
            let nfds = args[0].min(1024) as usize;
            let mut fds = BTreeSet::new();
            for set in [args[1], args[2], args[3]] {
                if set == 0 {
                    continue;
                }
                if let Some(bits) = procread::read_memory(pid, set, nfds.div_ceil(64) * 8) {
                    for fd in 0..nfds {
                        if bits[fd / 8] & (1 << (fd % 8)) != 0 {
                            fds.insert(fd as i32);
                        }
                    }
                }
            }
            fds.into_iter().collect()
        }
        "epoll_wait" | "epoll_pwait" | "epoll_pwait2" => {
            procread::epoll_targets(&procread::fdinfo(pid, args[0] as i32))
        }
        "read" | "write" => vec![args[0] as i32],
        _ => vec![],
    }
}

fn futex_wait(pid: u32, args: &[u64], threads: &BTreeSet<u32>) -> Option<FutexWait> {
    let cmd = args[1] & FUTEX_CMD_MASK;
    let op = match cmd {
        FUTEX_WAIT => "FUTEX_WAIT",
        FUTEX_WAIT_BITSET => "FUTEX_WAIT_BITSET",
        FUTEX_LOCK_PI => "FUTEX_LOCK_PI",
        FUTEX_LOCK_PI2 => "FUTEX_LOCK_PI2",
        _ => return None,
    };
    let addr = args[0];
    let word = procread::read_i32(pid, addr);
    let live = |t: i32| t > 0 && threads.contains(&(t as u32));
    let mut wait = FutexWait { addr, op: op.into(), word, ..Default::default() };
    if matches!(cmd, FUTEX_LOCK_PI | FUTEX_LOCK_PI2) {
        wait.owner_tid = word.map(|w| w & 0x3fff_ffff).filter(|&t| live(t)).map(|t| t as u32);
    } else if let Some(w) = word {
        let owner = procread::read_i32(pid, addr + MUTEX_OWNER_OFFSET);
        if matches!(w, 1 | 2) && owner.is_some_and(live) {
            wait.owner_tid = owner.map(|t| t as u32);
        } else if live(w) {
            wait.joining_tid = Some(w as u32);
        }
    }
    Some(wait)
}

fn child_wait(pid: u32, name: &str, args: &[u64]) -> Option<ChildWait> {
    let waits_for = match name {
        "wait4" => match args[0] as i64 as i32 {
            -1 => "any child".to_string(),
            0 => "any child in its process group".to_string(),
            p if p > 0 => format!("pid {p}"),
            g => format!("process group {}", -g),
        },
        "waitid" => match args[0] {
            0 => "any child".to_string(),
            1 => format!("pid {}", args[1] as i32),
            2 => format!("process group {}", args[1] as i32),
            _ => format!("idtype {} id {}", args[0], args[1]),
        },
        _ => return None,
    };
    let children = procread::children(pid)
        .into_iter()
        .filter_map(|c| procread::process_stat(c).map(|s| ChildState { pid: c, comm: s.comm, state: s.state.into() }))
        .collect();
    Some(ChildWait { waits_for, children })
}

/// What the snapshot is taken from.
pub struct Input<'a> {
    pub pids: &'a [u32],
    pub in_flight: &'a [(u32, InFlight)],
    /// CLOCK_BOOTTIME now, to age in-flight entries.
    pub now_boot_ns: u64,
    pub cpu: &'a CpuWindow,
    pub reason: String,
    pub taken_at: String,
    pub syscalls_in_window: u64,
}

pub fn boot_ns_now() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid clock id and pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Reads every thread of `pids` now.
pub fn take(input: &Input<'_>) -> StuckSnapshot {
    let in_flight: BTreeMap<u32, &InFlight> = input.in_flight.iter().map(|(tid, e)| (*tid, e)).collect();
    let mut processes = Vec::new();
    for &pid in input.pids {
        let Some(pstat) = procread::process_stat(pid) else { continue };
        let tids = procread::threads(pid);
        let live: BTreeSet<u32> = tids.iter().copied().collect();
        let mut threads = Vec::new();
        for tid in tids {
            let Some(stat) = procread::thread_stat(pid, tid) else { continue };
            let (user, system) = input.cpu.gained.get(&tid).copied().unwrap_or((0.0, 0.0));
            let mut t = ThreadSnapshot {
                tid,
                comm: stat.comm.clone(),
                state: stat.state.into(),
                wchan: procread::wchan(pid, tid),
                cpu_user_s: user,
                cpu_system_s: system,
                cpu_share: input.cpu.share(tid),
                ..Default::default()
            };
            let call = match in_flight.get(&tid) {
                Some(e) => Some((
                    e.nr,
                    e.args,
                    e.nargs,
                    Some(input.now_boot_ns.saturating_sub(e.enter_ns) as f64 / 1e9),
                    "kernel in-flight table",
                )),
                None => procread::current_syscall(pid, tid).filter(|s| s.nr >= 0).map(|s| {
                    let nargs = syscalls::by_nr(s.nr as u32).map_or(6, |sc| sc.nargs as u32);
                    (s.nr as u32, s.args, nargs, None, "/proc syscall")
                }),
            };
            if let Some((nr, args, nargs, blocked_s, source)) = call {
                let name = crate::decode::syscall_label(nr);
                t.fds = polled_fds(pid, &name, &args).into_iter().map(|fd| describe_fd(pid, fd, input.pids)).collect();
                if name == "futex" {
                    t.futex = futex_wait(pid, &args, &live);
                }
                t.child_wait = child_wait(pid, &name, &args);
                t.syscall = Some(BlockedCall {
                    text: in_progress_text(nr, &args, nargs),
                    name,
                    nr,
                    args: args[..nargs.min(6) as usize].to_vec(),
                    blocked_s,
                    source: source.into(),
                });
            }
            threads.push(t);
        }
        processes.push(ProcessSnapshot {
            pid,
            ppid: pstat.ppid,
            comm: pstat.comm,
            state: pstat.state.into(),
            maps_lines: procread::maps_lines(pid),
            rss_kb: procread::rss_kb(pid),
            children: procread::children(pid),
            threads,
        });
    }
    StuckSnapshot {
        schema: SCHEMA,
        taken_at: input.taken_at.clone(),
        reason: input.reason.clone(),
        window_s: input.cpu.seconds,
        syscalls_in_window: input.syscalls_in_window,
        processes,
    }
}

impl StuckSnapshot {
    pub fn threads(&self) -> impl Iterator<Item = (&ProcessSnapshot, &ThreadSnapshot)> {
        self.processes.iter().flat_map(|p| p.threads.iter().map(move |t| (p, t)))
    }

    pub fn process(&self, pid: u32) -> Option<&ProcessSnapshot> {
        self.processes.iter().find(|p| p.pid == pid)
    }

    pub fn to_text(&self) -> String {
        let mut out = format!(
            "taken_at: {}\nreason: {}\ncpu_window_s: {:.3}\nsyscalls_in_window: {}\n",
            self.taken_at, self.reason, self.window_s, self.syscalls_in_window
        );
        for p in &self.processes {
            out.push_str(&format!(
                "\nprocess {} ({}) state {} ppid {} threads {} maps_lines {} rss_kb {}{}\n",
                p.pid,
                p.comm,
                p.state,
                p.ppid,
                p.threads.len(),
                p.maps_lines,
                p.rss_kb,
                if p.children.is_empty() { String::new() } else { format!(" children {:?}", p.children) }
            ));
            for t in &p.threads {
                out.push_str(&format!(
                    "  thread {} ({}) state {} wchan {} cpu {:.0}% (user {:.3}s sys {:.3}s)\n",
                    t.tid,
                    t.comm,
                    t.state,
                    if t.wchan.is_empty() { "-" } else { &t.wchan },
                    t.cpu_share * 100.0,
                    t.cpu_user_s,
                    t.cpu_system_s
                ));
                if let Some(c) = &t.syscall {
                    let age = c.blocked_s.map_or("for an unknown time".to_string(), |s| format!("for {s:.3}s"));
                    out.push_str(&format!("    in {} {age} ({})\n", c.text, c.source));
                }
                for f in &t.fds {
                    out.push_str(&format!(
                        "    fd {} -> {} [{}]{}\n",
                        f.fd,
                        f.target,
                        f.kind,
                        if f.note.is_empty() { String::new() } else { format!(": {}", f.note) }
                    ));
                }
                if let Some(f) = &t.futex {
                    let who = match (f.owner_tid, f.joining_tid) {
                        (Some(o), _) => format!("mutex owned by thread {o}"),
                        (None, Some(j)) => format!("joining thread {j}"),
                        _ => "owner unknown".into(),
                    };
                    out.push_str(&format!("    futex {:#x} {} word {:?}: {who}\n", f.addr, f.op, f.word));
                }
                if let Some(w) = &t.child_wait {
                    out.push_str(&format!("    waits for {}\n", w.waits_for));
                    for c in &w.children {
                        out.push_str(&format!("      child {} ({}) state {}\n", c.pid, c.comm, c.state));
                    }
                }
                for frame in &t.user_frames {
                    out.push_str(&format!("    at {frame}\n"));
                }
                for (function, n) in &t.samples {
                    out.push_str(&format!("    sampled {n} x {function}\n"));
                }
            }
        }
        out
    }

    pub fn write(&self, dir: &Path) -> io::Result<()> {
        std::fs::write(dir.join(STUCK_TXT), self.to_text())?;
        std::fs::write(dir.join(STUCK_JSON), crate::rundir::json_text(self).map_err(io::Error::other)?)
    }

    pub fn read(dir: &Path) -> Option<Self> {
        serde_json::from_str(&std::fs::read_to_string(dir.join(STUCK_JSON)).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_states_are_written_as_the_proc_letter() {
        for letter in ['R', 'S', 'D', 'T', 't', 'I', 'Z', 'X', 'P'] {
            let state = TaskState::from(letter);
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{letter}\""));
            assert_eq!(serde_json::from_str::<TaskState>(&json).unwrap(), state);
        }
        assert_eq!(TaskState::from('t'), TaskState::TracingStop);
        assert!(TaskState::from('t').is_stopped() && !TaskState::Running.is_waiting());
        assert_eq!(serde_json::to_string(&TaskState::Unknown).unwrap(), "\"\"");
    }

    #[test]
    fn fd_targets_are_classified() {
        assert_eq!(fd_kind("anon_inode:[eventfd]"), "eventfd");
        assert_eq!(fd_kind("pipe:[1116]"), "pipe");
        assert_eq!(fd_kind("socket:[5132]"), "socket");
        assert_eq!(fd_kind("/dev/pts/3"), "tty");
        assert_eq!(fd_kind("/etc/passwd"), "file");
    }

    #[test]
    fn an_in_progress_call_reads_like_a_trace_line_without_a_result() {
        let nr = syscalls::by_name("futex").unwrap().nr;
        assert_eq!(in_progress_text(nr, &[0x1000, 128, 2, 0, 0, 0], 6), "futex(0x1000, FUTEX_WAIT_PRIVATE, 2, NULL)");
    }

    #[test]
    fn a_snapshot_of_this_process_round_trips_through_json() {
        let me = std::process::id();
        let cpu = CpuWindow::default();
        let snap = take(&Input {
            pids: &[me],
            in_flight: &[],
            now_boot_ns: boot_ns_now(),
            cpu: &cpu,
            reason: "test".into(),
            taken_at: "now".into(),
            syscalls_in_window: 0,
        });
        assert_eq!(snap.processes.len(), 1);
        assert!(snap.processes[0].threads.iter().any(|t| t.tid == me));
        let dir = tempfile::tempdir().unwrap();
        snap.write(dir.path()).unwrap();
        assert_eq!(StuckSnapshot::read(dir.path()), Some(snap));
    }
}
