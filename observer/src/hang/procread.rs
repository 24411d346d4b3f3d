//! Reading a live thread from outside through /proc and process_vm_readv: its state, CPU time,
//! kernel wait channel, current syscall, file descriptors and a few words of its memory. Nothing
//! here stops, signals or ptraces the thread.
use std::{collections::BTreeMap, path::PathBuf};

/// Scheduler view of one thread, from /proc/<pid>/task/<tid>/stat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThreadStat {
    pub tid: u32,
    pub comm: String,
    /// R, S, D, T, t, Z, ...
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    /// user and system CPU time in clock ticks.
    pub utime: u64,
    pub stime: u64,
}

pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Parses a `stat` line; the command name may contain spaces and parentheses.
pub fn parse_stat(tid: u32, text: &str) -> Option<ThreadStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); utime/stime are fields 14/15.
    Some(ThreadStat {
        tid,
        comm,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        pgrp: rest.get(2)?.parse().ok()?,
        utime: rest.get(11)?.parse().ok()?,
        stime: rest.get(12)?.parse().ok()?,
    })
}

pub fn thread_stat(pid: u32, tid: u32) -> Option<ThreadStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    parse_stat(tid, &text)
}

pub fn process_stat(pid: u32) -> Option<ThreadStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

/// The threads of a process, in tid order.
pub fn threads(pid: u32) -> Vec<u32> {
    let mut tids: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    tids.sort_unstable();
    tids
}

pub fn wchan(pid: u32, tid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/wchan")).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// `/proc/<pid>/task/<tid>/syscall`: the syscall a blocked thread is in, with its arguments and
/// its user stack pointer and program counter; `None` when running or unreadable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcSyscall {
    pub nr: i64,
    pub args: [u64; 6],
    pub sp: u64,
    pub pc: u64,
}

pub fn parse_syscall(text: &str) -> Option<ProcSyscall> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() < 9 {
        return None;
    }
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    let mut args = [0u64; 6];
    for (i, a) in args.iter_mut().enumerate() {
        *a = hex(fields[1 + i])?;
    }
    Some(ProcSyscall { nr: fields[0].parse().ok()?, args, sp: hex(fields[7])?, pc: hex(fields[8])? })
}

pub fn current_syscall(pid: u32, tid: u32) -> Option<ProcSyscall> {
    parse_syscall(&std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?)
}

/// What an fd points at (`pipe:[123]`, `socket:[9]`, `anon_inode:[eventfd]`, a path).
pub fn fd_target(pid: u32, fd: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok().map(|p| p.to_string_lossy().into_owned())
}

/// Every open fd of a process with its target.
pub fn fds(pid: u32) -> BTreeMap<i32, String> {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| {
                let fd: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
                Some((fd, fd_target(pid, fd)?))
            })
            .collect()
        })
        .unwrap_or_default()
}

/// `/proc/<pid>/fdinfo/<fd>` as key/value lines (epoll instances add `tfd:` lines).
pub fn fdinfo(pid: u32, fd: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default()
}

/// The fds an epoll instance watches, from its fdinfo `tfd:` lines.
pub fn epoll_targets(fdinfo: &str) -> Vec<i32> {
    fdinfo
        .lines()
        .filter_map(|l| l.strip_prefix("tfd:"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Whether the fd is open for writing only (the write end of a pipe), from fdinfo `flags:` (octal).
pub fn opened_write_only(fdinfo: &str) -> bool {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u64::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & 0o3 == 0o1)
}

/// Reads `len` bytes of another process's memory without stopping it.
pub fn read_memory(pid: u32, addr: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: len };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: len };
    // SAFETY: one local iovec over our own buffer of `len` bytes; the remote side is checked by the kernel.
    let n = unsafe { libc::process_vm_readv(pid as i32, &local, 1, &remote, 1, 0) };
    (n == len as isize).then_some(buf)
}

pub fn read_i32(pid: u32, addr: u64) -> Option<i32> {
    read_memory(pid, addr, 4).map(|b| i32::from_le_bytes(b[..4].try_into().expect("4 bytes")))
}

/// Lines of /proc/<pid>/maps and VmRSS in kB.
pub fn maps_lines(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).map(|s| s.lines().count()).unwrap_or(0)
}

pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches("kB").trim().to_string()))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Children of `pid` among all processes (by their stat ppid).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter(|p| process_stat(*p).is_some_and(|s| s.ppid == pid))
                .collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "1234 (we (ird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 2 0 100 0 0";
        let s = parse_stat(1234, line).unwrap();
        assert_eq!((s.comm.as_str(), s.state, s.ppid, s.pgrp, s.utime, s.stime), ("we (ird) name", 'S', 1, 1234, 7, 3));
    }

    #[test]
    fn proc_syscall_lines_give_number_args_sp_and_pc() {
        let s = parse_syscall("202 0x55d4c3a0 0x80 0x2 0x0 0x0 0x0 0x7ffd1000 0x7f0012345678\n").unwrap();
        assert_eq!((s.nr, s.args[0], s.args[2], s.sp, s.pc), (202, 0x55d4c3a0, 2, 0x7ffd1000, 0x7f0012345678));
        assert!(parse_syscall("running\n").is_none());
    }

    #[test]
    fn epoll_fdinfo_lists_watched_fds_and_pipe_flags_tell_the_write_end() {
        let info = "pos:\t0\nflags:\t02\nmnt_id:\t15\ntfd:        5 events:       19 data:                5  pos:0 ino:3f sdev:d\ntfd:        7 events:       19 data: 7\n";
        assert_eq!(epoll_targets(info), vec![5, 7]);
        assert!(opened_write_only("pos:\t0\nflags:\t01\n"));
        assert!(!opened_write_only("pos:\t0\nflags:\t02000000\n"));
    }

    #[test]
    fn this_process_reads_its_own_threads_memory_and_fds() {
        let me = std::process::id();
        assert!(threads(me).contains(&me));
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        assert!(thread_stat(me, tid).is_some_and(|s| s.state == 'R'), "the reading thread is running");
        let value: i32 = 0x1234_5678;
        assert_eq!(read_i32(me, &value as *const i32 as u64), Some(0x1234_5678));
        assert!(!fds(me).is_empty());
    }
}
