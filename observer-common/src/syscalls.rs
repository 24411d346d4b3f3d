//! The syscalls observer watches (x86_64 numbering): name, number, how many arguments are kept, and
//! how the kernel side treats them.

use crate::syscall_bits::{CLONE, CLONE3, EXIT_ONLY, NARGS_MASK, NO_RETURN, RLIMIT, WAIT, WATCHED as BIT_WATCHED};

/// One watched syscall: its identity and how the kernel side treats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchedSyscall {
    pub call: Syscall,
    /// Name as in `syscalls/sys_enter_<name>`.
    pub name: &'static str,
    /// x86_64 number (`__syscall_nr`): the identity on the wire.
    pub nr: u32,
    /// Arguments recorded (read/write keep only the fd, never buffer addresses or sizes).
    pub nargs: u8,
    /// Extra `syscall_bits` (NO_RETURN, CLONE, CLONE3, RLIMIT, EXIT_ONLY, WAIT).
    pub bits: u16,
}

/// Declares the [`Syscall`] enum and the [`WATCHED`] table from one list, so they cannot drift.
macro_rules! watched {
    ($( $variant:ident = sc($name:literal, $nr:literal, $nargs:literal, $bits:expr), )*) => {
        /// A syscall observer watches; the discriminant is its x86_64 number.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum Syscall {
            $( $variant = $nr, )*
        }

        impl Syscall {
            /// Name as in `syscalls/sys_enter_<name>`.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Syscall::$variant => $name, )*
                }
            }
        }

        /// Every syscall the capture attaches to, in the order they are documented.
        pub const WATCHED: &[WatchedSyscall] = &[
            $( WatchedSyscall { call: Syscall::$variant, name: $name, nr: $nr, nargs: $nargs, bits: $bits }, )*
        ];
    };
}

watched! {
    // memory
    Mmap = sc("mmap", 9, 6, EXIT_ONLY),
    Munmap = sc("munmap", 11, 2, EXIT_ONLY),
    Mprotect = sc("mprotect", 10, 3, EXIT_ONLY),
    Mremap = sc("mremap", 25, 5, EXIT_ONLY),
    Brk = sc("brk", 12, 1, EXIT_ONLY),
    // tasks
    Clone = sc("clone", 56, 5, CLONE),
    Clone3 = sc("clone3", 435, 2, CLONE3),
    Fork = sc("fork", 57, 0, 0),
    Vfork = sc("vfork", 58, 0, 0),
    Execve = sc("execve", 59, 3, 0),
    Execveat = sc("execveat", 322, 5, 0),
    Exit = sc("exit", 60, 1, NO_RETURN),
    ExitGroup = sc("exit_group", 231, 1, NO_RETURN),
    // sessions and process groups: a process leaving its parent's tree
    Setsid = sc("setsid", 112, 0, EXIT_ONLY),
    Setpgid = sc("setpgid", 109, 2, EXIT_ONLY),
    // signals sent
    Kill = sc("kill", 62, 2, EXIT_ONLY),
    Tkill = sc("tkill", 200, 2, EXIT_ONLY),
    Tgkill = sc("tgkill", 234, 3, EXIT_ONLY),
    RtSigqueueinfo = sc("rt_sigqueueinfo", 129, 3, EXIT_ONLY),
    RtTgsigqueueinfo = sc("rt_tgsigqueueinfo", 297, 4, EXIT_ONLY),
    // blocking
    Futex = sc("futex", 202, 6, WAIT),
    Poll = sc("poll", 7, 3, WAIT),
    Ppoll = sc("ppoll", 271, 5, WAIT),
    Select = sc("select", 23, 5, WAIT),
    Pselect6 = sc("pselect6", 270, 6, WAIT),
    EpollWait = sc("epoll_wait", 232, 4, WAIT),
    EpollPwait = sc("epoll_pwait", 281, 6, WAIT),
    EpollPwait2 = sc("epoll_pwait2", 441, 6, WAIT),
    Nanosleep = sc("nanosleep", 35, 2, WAIT),
    ClockNanosleep = sc("clock_nanosleep", 230, 4, WAIT),
    Wait4 = sc("wait4", 61, 4, 0),
    Waitid = sc("waitid", 247, 5, 0),
    Read = sc("read", 0, 1, 0),
    Write = sc("write", 1, 1, 0),
    // limits: a launcher like `prlimit` or a shell's `ulimit` changes them after the preflight
    Prlimit64 = sc("prlimit64", 302, 4, RLIMIT | EXIT_ONLY),
    Setrlimit = sc("setrlimit", 160, 2, RLIMIT | EXIT_ONLY),
}

impl Syscall {
    /// The x86_64 number.
    pub const fn nr(self) -> u32 {
        self as u32
    }

    /// The watched syscall with this number.
    pub fn from_nr(nr: u32) -> Option<Syscall> {
        by_nr(nr).map(|s| s.call)
    }

    /// A call that creates a task (thread or process): what a pids limit refuses with EAGAIN.
    pub const fn creates_task(self) -> bool {
        matches!(self, Syscall::Clone | Syscall::Clone3 | Syscall::Fork | Syscall::Vfork)
    }

    /// Its entry in [`WATCHED`].
    pub fn watched(self) -> &'static WatchedSyscall {
        match by_nr(self.nr()) {
            Some(s) => s,
            None => unreachable!(),
        }
    }
}

impl core::fmt::Display for Syscall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.pad(self.name())
    }
}

impl WatchedSyscall {
    /// Its entry in the kernel's syscall table map: argument count and behaviour bits.
    pub const fn table_bits(&self) -> u16 {
        BIT_WATCHED | (self.nargs as u16 & NARGS_MASK) | self.bits
    }
}

/// Whether a thread making nothing but call `nr` makes no progress of its own: the call only
/// waits, sleeps or hands a lock over (OCaml's tick thread, Go's sysmon, a timer loop, two threads
/// passing a GIL).
pub fn only_waits(nr: u32) -> bool {
    by_nr(nr).is_some_and(|s| s.bits & WAIT != 0)
}

/// Syscalls whose failures `observer watch` reports from every process (resource exhaustion and
/// task creation; blocking calls fail with EAGAIN/EINTR all the time and are left out).
pub const HOST_WIDE_ERRORS: &[Syscall] = &[
    Syscall::Mmap,
    Syscall::Munmap,
    Syscall::Mprotect,
    Syscall::Mremap,
    Syscall::Brk,
    Syscall::Clone,
    Syscall::Clone3,
    Syscall::Fork,
    Syscall::Vfork,
    Syscall::Execve,
    Syscall::Execveat,
];

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
pub fn by_nr(nr: u32) -> Option<&'static WatchedSyscall> {
    match INDEX.get(nr as usize) {
        Some(&i) if (i as usize) < WATCHED.len() => Some(&WATCHED[i as usize]),
        _ => None,
    }
}

/// The watched syscall with this name.
pub fn by_name(name: &str) -> Option<&'static WatchedSyscall> {
    WATCHED.iter().find(|s| s.name == name)
}

/// Resource ids of prlimit64 / setrlimit that the classifiers read.
pub const RLIMIT_STACK: u64 = 3;
pub const RLIMIT_DATA: u64 = 2;
pub const RLIMIT_NPROC: u64 = 6;
pub const RLIMIT_AS: u64 = 9;

/// Clone flag marking a new thread rather than a new process.
pub const CLONE_THREAD: u64 = 0x0001_0000;
