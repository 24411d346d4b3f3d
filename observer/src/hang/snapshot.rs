//! Taking the stuck snapshot: reads every tracked thread from outside — state, wait channel, the
//! syscall it is blocked in (from the kernel's in-flight table, else /proc), the fds, futex and
//! children it waits on — into the model `analysis::snapshot` defines.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use observer_common::{flags, kind, syscalls, EventHeader, InFlight, SyscallEvent};

use super::progress::CpuWindow;
use crate::{
    analysis::snapshot::{
        BlockedCall, ChildState, ChildWait, FdWait, FutexWait, ProcessSnapshot, StuckSnapshot, ThreadSnapshot, SCHEMA,
    },
    decode::{format_call, futex_cmd},
    proc::{
        sockets::{socket_inode, unix_sockets},
        task as procread,
    },
};

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
    let mut other_end = Vec::new();
    let note = match kind {
        "pipe" => {
            let all = holders(pids, &target);
            let writers: Vec<&(u32, i32, bool)> = all.iter().filter(|(_, _, w)| *w).collect();
            other_end = writers.iter().map(|(p, _, _)| *p).collect();
            if writers.is_empty() {
                "no tracked process holds the write end".to_string()
            } else if writers.iter().all(|(p, _, _)| *p == pid) {
                format!("write end held only by this process (fd {})", writers[0].1)
            } else {
                let list: Vec<String> = writers.iter().map(|(p, f, _)| format!("pid {p} fd {f}")).collect();
                format!("write end held by {}", list.join(", "))
            }
        }
        "socket" => {
            let (note, peers) = describe_socket(pid, &target, pids);
            other_end = peers;
            note
        }
        "eventfd" => {
            other_end = holders(pids, &target).into_iter().map(|(p, _, _)| p).collect();
            "an eventfd: woken only when some thread writes to it".to_string()
        }
        _ => String::new(),
    };
    other_end.sort_unstable();
    other_end.dedup();
    FdWait { fd, target, kind: kind.into(), note, other_end }
}

/// A socket's other end: for a unix socket the peer the kernel reports through sock_diag and who
/// holds it ("self" for a socketpair inside one process), else who else has it open.
fn describe_socket(pid: u32, target: &str, pids: &[u32]) -> (String, Vec<u32>) {
    let unix = socket_inode(target).and_then(|ino| unix_sockets().remove(&ino));
    match unix {
        Some(sock) => {
            let name = sock.path.as_deref().map_or("unnamed unix socket".to_string(), |p| format!("unix socket {p}"));
            let Some(peer) = sock.peer else {
                return (format!("{name}, no peer (listening or unconnected)"), Vec::new());
            };
            let peer_target = format!("socket:[{peer}]");
            let holding = holders(pids, &peer_target);
            let held: Vec<String> = holding
                .iter()
                .map(|(p, f, _)| if *p == pid { format!("this process (fd {f})") } else { format!("pid {p} fd {f}") })
                .collect();
            let peers = holding.iter().map(|(p, _, _)| *p).collect();
            if held.is_empty() {
                (format!("{name}, peer {peer_target} held by no tracked process"), peers)
            } else {
                (format!("{name}, peer {peer_target} held by {}", held.join(", ")), peers)
            }
        }
        // Not a unix socket: its peer is not exposed, so nobody in the capture is known to hold it.
        None => {
            let others: Vec<String> = holders(pids, target)
                .into_iter()
                .filter(|(p, _, _)| *p != pid)
                .map(|(p, f, _)| format!("pid {p} fd {f}"))
                .collect();
            if others.is_empty() {
                ("not a unix socket; its peer is not exposed".to_string(), Vec::new())
            } else {
                (format!("also open in {}", others.join(", ")), Vec::new())
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
                .chunks_exact(8)
                .map(|c| i32::from_le_bytes(c[..4].try_into().expect("4 bytes")))
                .filter(|fd| *fd >= 0)
                .collect()
        }
        "select" | "pselect6" => {
            let nfds = args[0].min(1024) as usize;
            let mut fds = BTreeSet::new();
            for set in [args[1], args[2], args[3]] {
                if set == 0 {
                    continue;
                }
                let bits = procread::read_memory(pid, set, nfds.div_ceil(64) * 8);
                if bits.len() == nfds.div_ceil(64) * 8 {
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
    let cmd = futex_cmd::of(args[1]);
    let op = match cmd {
        futex_cmd::WAIT => "FUTEX_WAIT",
        futex_cmd::WAIT_BITSET => "FUTEX_WAIT_BITSET",
        futex_cmd::LOCK_PI => "FUTEX_LOCK_PI",
        futex_cmd::LOCK_PI2 => "FUTEX_LOCK_PI2",
        _ => return None,
    };
    let addr = args[0];
    let word = procread::read_i32(pid, addr);
    let live = |t: i32| t > 0 && threads.contains(&(t as u32));
    let mut wait = FutexWait { addr, op: op.into(), word, ..Default::default() };
    if matches!(cmd, futex_cmd::LOCK_PI | futex_cmd::LOCK_PI2) {
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
    /// Per thread, the kernel time of its latest call that did more than wait.
    pub last_progress_ns: &'a HashMap<u32, u64>,
    /// The window progress was judged over (`--hang-after`, or the spot window of a timeout).
    pub progress_window: std::time::Duration,
    /// Per thread, when the capture first saw it.
    pub first_seen_ns: &'a HashMap<u32, u64>,
}

/// Seconds since `tid` last did more than wait (since it was first seen, if never); unknown for a
/// thread the capture never saw (one that existed before an attach and made no call since).
fn idle_seconds(input: &Input<'_>, tid: u32) -> Option<f64> {
    let since = input.last_progress_ns.get(&tid).or_else(|| input.first_seen_ns.get(&tid))?;
    Some(input.now_boot_ns.saturating_sub(*since) as f64 / 1e9)
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
                idle_s: idle_seconds(input, tid),
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
            workload: crate::proc::workload(pid),
            ..Default::default()
        });
    }
    StuckSnapshot {
        schema: SCHEMA,
        taken_at: input.taken_at.clone(),
        reason: input.reason.clone(),
        window_s: input.cpu.seconds,
        progress_window_s: Some(input.progress_window.as_secs_f64()),
        syscalls_in_window: input.syscalls_in_window,
        processes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let now = boot_ns_now();
        let first_seen = HashMap::from([(me, now - 3_000_000_000)]);
        let snap = take(&Input {
            pids: &[me],
            in_flight: &[],
            now_boot_ns: now,
            cpu: &cpu,
            reason: "test".into(),
            taken_at: "now".into(),
            syscalls_in_window: 0,
            last_progress_ns: &HashMap::new(),
            progress_window: std::time::Duration::from_secs(2),
            first_seen_ns: &first_seen,
        });
        let main = snap.processes[0].threads.iter().find(|t| t.tid == me).unwrap();
        assert_eq!(main.idle_s, Some(3.0), "idle since first seen, never progressed");
        assert_eq!(snap.processes.len(), 1);
        assert!(snap.processes[0].threads.iter().any(|t| t.tid == me));
        let dir = tempfile::tempdir().unwrap();
        crate::render::stuck::write(&snap, &crate::out_dir::OutDir::open(dir.path()).unwrap()).unwrap();
        assert_eq!(StuckSnapshot::read(dir.path()), Some(snap));
    }
}
