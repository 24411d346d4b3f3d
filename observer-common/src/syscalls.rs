//! The syscalls observer watches (x86_64 numbering): name, number, how many arguments are kept, and
//! how the kernel side treats them.

use crate::syscall_bits::{CLONE, CLONE3, NO_RETURN, RLIMIT};

/// One watched syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syscall {
    /// Name as in `syscalls/sys_enter_<name>`.
    pub name: &'static str,
    /// x86_64 number (`__syscall_nr`).
    pub nr: u32,
    /// Arguments recorded (read/write keep only the fd, never buffer addresses or sizes).
    pub nargs: u8,
    /// Extra `syscall_bits` (NO_RETURN, CLONE, CLONE3).
    pub bits: u8,
}

const fn sc(name: &'static str, nr: u32, nargs: u8, bits: u8) -> Syscall {
    Syscall { name, nr, nargs, bits }
}

/// Every syscall the capture attaches to, in the order they are documented.
pub const WATCHED: &[Syscall] = &[
    // memory
    sc("mmap", 9, 6, 0),
    sc("munmap", 11, 2, 0),
    sc("mprotect", 10, 3, 0),
    sc("mremap", 25, 5, 0),
    sc("brk", 12, 1, 0),
    // tasks
    sc("clone", 56, 5, CLONE),
    sc("clone3", 435, 2, CLONE3),
    sc("fork", 57, 0, 0),
    sc("vfork", 58, 0, 0),
    sc("execve", 59, 3, 0),
    sc("execveat", 322, 5, 0),
    sc("exit", 60, 1, NO_RETURN),
    sc("exit_group", 231, 1, NO_RETURN),
    // signals sent
    sc("kill", 62, 2, 0),
    sc("tkill", 200, 2, 0),
    sc("tgkill", 234, 3, 0),
    sc("rt_sigqueueinfo", 129, 3, 0),
    sc("rt_tgsigqueueinfo", 297, 4, 0),
    // blocking
    sc("futex", 202, 6, 0),
    sc("poll", 7, 3, 0),
    sc("ppoll", 271, 5, 0),
    sc("select", 23, 5, 0),
    sc("pselect6", 270, 6, 0),
    sc("epoll_wait", 232, 4, 0),
    sc("epoll_pwait", 281, 6, 0),
    sc("epoll_pwait2", 441, 6, 0),
    sc("nanosleep", 35, 2, 0),
    sc("clock_nanosleep", 230, 4, 0),
    sc("wait4", 61, 4, 0),
    sc("waitid", 247, 5, 0),
    sc("read", 0, 1, 0),
    sc("write", 1, 1, 0),
    // limits: a launcher like `prlimit` or a shell's `ulimit` changes them after the preflight
    sc("prlimit64", 302, 4, RLIMIT),
    sc("setrlimit", 160, 2, RLIMIT),
];

/// Syscalls whose failures `observer watch` reports from every process (resource exhaustion and
/// task creation; blocking calls fail with EAGAIN/EINTR all the time and are left out).
pub const HOST_WIDE_ERRORS: &[&str] =
    &["mmap", "munmap", "mprotect", "mremap", "brk", "clone", "clone3", "fork", "vfork", "execve", "execveat"];

/// Entries of the kernel's syscall table map (indexed by number).
pub const TABLE_SIZE: u32 = 512;

/// Index into `WATCHED` by syscall number (`u8::MAX`: not watched), built at compile time so the
/// lookup on every event is one load.
const INDEX: [u8; TABLE_SIZE as usize] = {
    let mut index = [u8::MAX; TABLE_SIZE as usize];
    let mut i = 0;
    while i < WATCHED.len() {
        index[WATCHED[i].nr as usize] = i as u8;
        i += 1;
    }
    index
};

/// The watched syscall with this number.
pub fn by_nr(nr: u32) -> Option<&'static Syscall> {
    match INDEX.get(nr as usize) {
        Some(&i) if (i as usize) < WATCHED.len() => Some(&WATCHED[i as usize]),
        _ => None,
    }
}

/// The watched syscall with this name.
pub fn by_name(name: &str) -> Option<&'static Syscall> {
    WATCHED.iter().find(|s| s.name == name)
}

/// Resource ids of prlimit64 / setrlimit that the classifiers read.
pub const RLIMIT_STACK: u64 = 3;
pub const RLIMIT_DATA: u64 = 2;
pub const RLIMIT_NPROC: u64 = 6;
pub const RLIMIT_AS: u64 = 9;

/// Clone flag marking a new thread rather than a new process.
pub const CLONE_THREAD: u64 = 0x0001_0000;
