//! Reading a live thread from outside through /proc (on procfs) and process_vm_readv: its state,
//! CPU time, kernel wait channel, current syscall, file descriptors and a few words of its memory.
//! Nothing here stops, signals or ptraces the thread.
use std::{collections::BTreeMap, path::PathBuf};

use procfs::process::{Process, Task};

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
    procfs::ticks_per_second()
}

impl ThreadStat {
    fn from_procfs(tid: u32, stat: procfs::process::Stat) -> Self {
        ThreadStat {
            tid,
            comm: stat.comm,
            state: stat.state,
            ppid: u32::try_from(stat.ppid).unwrap_or(0),
            pgrp: u32::try_from(stat.pgrp).unwrap_or(0),
            utime: stat.utime,
            stime: stat.stime,
        }
    }
}

fn process(pid: u32) -> Option<Process> {
    Process::new(i32::try_from(pid).ok()?).ok()
}

fn task(pid: u32, tid: u32) -> Option<Task> {
    process(pid)?.task_from_tid(i32::try_from(tid).ok()?).ok()
}

pub fn thread_stat(pid: u32, tid: u32) -> Option<ThreadStat> {
    Some(ThreadStat::from_procfs(tid, task(pid, tid)?.stat().ok()?))
}

pub fn process_stat(pid: u32) -> Option<ThreadStat> {
    Some(ThreadStat::from_procfs(pid, process(pid)?.stat().ok()?))
}

/// The threads of a process, in tid order.
pub fn threads(pid: u32) -> Vec<u32> {
    let mut tids: Vec<u32> = process(pid)
        .and_then(|p| p.tasks().ok())
        .map(|tasks| tasks.filter_map(|t| u32::try_from(t.ok()?.tid).ok()).collect())
        .unwrap_or_default();
    tids.sort_unstable();
    tids
}

/// The kernel function a thread sleeps in. procfs reads `wchan` for a process only, not per task.
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

/// The syscall thread `tid` of `pid` is blocked in; `None` while it runs, outside a syscall, or
/// when unreadable.
pub fn current_syscall(pid: u32, tid: u32) -> Option<ProcSyscall> {
    match task(pid, tid)?.syscall().ok()? {
        procfs::process::Syscall::Blocked { syscall_number, argument_registers, stack_pointer, program_counter } => {
            Some(ProcSyscall { nr: syscall_number, args: argument_registers, sp: stack_pointer, pc: program_counter })
        }
        // `Running`, and whatever later procfs versions add.
        _ => None,
    }
}

/// What an fd points at (`pipe:[123]`, `socket:[9]`, `anon_inode:[eventfd]`, a path), as the
/// kernel words it: procfs parses the link into `FDTarget`, which loses that text.
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

/// `/proc/<pid>/fdinfo/<fd>` as key/value lines (epoll instances add `tfd:` lines). procfs has no
/// reader for fdinfo, so its two fields observer needs are parsed here.
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

/// Copies `len` bytes at `addr` of process `pid` without stopping it; shorter (down to empty)
/// when part of the range is unmapped or the process is gone.
pub fn read_memory(pid: u32, addr: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: len };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: len };
    // SAFETY: one local iovec over our own buffer of `len` bytes; the remote side is only read.
    let n = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    buf.truncate(usize::try_from(n).unwrap_or(0));
    buf
}

pub fn read_i32(pid: u32, addr: u64) -> Option<i32> {
    read_memory(pid, addr, 4).try_into().ok().map(i32::from_le_bytes)
}

/// How many mappings the process has (lines of /proc/<pid>/maps).
pub fn maps_lines(pid: u32) -> usize {
    process(pid).and_then(|p| p.maps().ok()).map_or(0, |m| m.len())
}

/// Resident set size in kB (VmRSS).
pub fn rss_kb(pid: u32) -> u64 {
    process(pid).and_then(|p| p.status().ok()).and_then(|s| s.vmrss).unwrap_or(0)
}

/// Children of `pid` among all processes (by their stat ppid).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out: Vec<u32> = procfs::process::all_processes()
        .map(|all| {
            all.filter_map(|p| p.ok()?.stat().ok())
                .filter(|s| u32::try_from(s.ppid).is_ok_and(|ppid| ppid == pid))
                .filter_map(|s| u32::try_from(s.pid).ok())
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
        assert_eq!(read_i32(me, 8), None, "the zero page is never mapped");
        assert!(!fds(me).is_empty());
        assert!(process_stat(me).is_some_and(|s| s.tid == me && s.ppid > 0));
        assert!(maps_lines(me) > 0 && rss_kb(me) > 0);
    }
}
