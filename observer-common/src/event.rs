//! The records the kernel writes into the ring buffer (and `events.bin` stores verbatim).
//!
//! Every record starts with an [`EventHeader`]. Layouts are `#[repr(C)]` with explicit padding so
//! that the kernel side, the userspace reader and the on-disk format agree byte for byte; the
//! `const` asserts at the bottom pin sizes and offsets. Kind ids are never reused: a new kind gets a
//! new number, a new field is appended at the end of its record.

/// Longest command name the kernel keeps (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;
/// Syscall arguments carried per record.
pub const MAX_ARGS: usize = 6;
/// Bytes of an exec'd filename kept (longer names are cut, NUL-terminated).
pub const FILENAME_LEN: usize = 128;

/// Numbered record kinds. Never renumber, never reuse.
pub mod kind {
    /// A completed (or, with `flags::UNFINISHED`, abandoned) syscall: [`super::SyscallEvent`].
    pub const SYSCALL: u16 = 1;
    /// `sched_process_fork`: [`super::ForkEvent`].
    pub const FORK: u16 = 2;
    /// `sched_process_exec`: [`super::ExecEvent`].
    pub const EXEC: u16 = 3;
    /// `sched_process_exit`: [`super::ExitEvent`].
    pub const EXIT: u16 = 4;
    /// `signal_generate`: [`super::SignalGenerateEvent`].
    pub const SIGNAL_GENERATE: u16 = 5;
    /// `signal_deliver`: [`super::SignalDeliverEvent`].
    pub const SIGNAL_DELIVER: u16 = 6;
    /// A fault signal's siginfo (`tp_btf/signal_generate`): [`super::FaultEvent`].
    pub const FAULT: u16 = 7;
    /// `cgroup_attach_task`: a tracked process moved into a cgroup, [`super::CgroupAttachEvent`].
    pub const CGROUP_ATTACH: u16 = 8;
    /// A syscall of at most three arguments recorded at exit alone, without duration or aux:
    /// [`super::ShortSyscallEvent`]. Readers expand it into a [`SYSCALL`] record.
    pub const SHORT_SYSCALL: u16 = 9;
    /// One past the highest kernel kind; sizes the per-kind counters.
    pub const COUNT: u32 = 10;
}

/// Header flags.
pub mod flags {
    /// The syscall does not return (`exit`, `exit_group`): recorded at entry, `ret` is meaningless.
    pub const NO_RETURN: u16 = 1 << 0;
    /// The thread ended while inside the syscall (killed in a futex wait, say): recorded at exit of
    /// the thread, `ret` is meaningless, `duration_ns` is how long it had been inside.
    pub const UNFINISHED: u16 = 1 << 1;
    /// `aux` holds the clone flags read from userspace `struct clone_args` (clone3).
    pub const AUX_CLONE_FLAGS: u16 = 1 << 2;
    /// The fork created a thread (CLONE_THREAD) rather than a process.
    pub const THREAD: u16 = 1 << 3;
    /// The exiting thread was the last of its thread group.
    pub const GROUP_DEAD: u16 = 1 << 4;
    /// `aux` holds the soft limit (`rlim_cur`) being set by prlimit64 / setrlimit.
    pub const AUX_RLIMIT_CUR: u16 = 1 << 5;
    /// Imported from another tool's text (strace), not captured by observer's kernel programs.
    pub const IMPORTED: u16 = 1 << 6;
    /// The source did not record when it happened: `ts_ns` only keeps the order (imported).
    pub const UNKNOWN_TIME: u16 = 1 << 7;
    /// The source did not record how long the syscall took: `duration_ns` is 0 (imported).
    pub const UNKNOWN_DURATION: u16 = 1 << 8;
    /// Some arguments could not be recovered from the source and are 0 (imported).
    pub const UNKNOWN_ARGS: u16 = 1 << 9;
    /// From a process observer does not track in full: host-wide streaming of `observer watch`.
    pub const HOST: u16 = 1 << 10;
}

/// Common prefix of every record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// One of [`kind`].
    pub kind: u16,
    /// Bit set of [`flags`].
    pub flags: u16,
    /// Thread id (kernel `pid`) of the task the event happened in.
    pub tid: u32,
    /// Process id (kernel `tgid`) of that task.
    pub tgid: u32,
    /// Keeps `ts_ns` 8-byte aligned.
    pub _pad: u32,
    /// CLOCK_BOOTTIME nanoseconds; for syscalls, the moment of entry.
    pub ts_ns: u64,
}

/// One syscall, paired in the kernel: arguments from entry, result from exit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallEvent {
    pub header: EventHeader,
    /// x86_64 syscall number (see [`crate::syscalls`]).
    pub nr: u32,
    /// How many of `args` the syscall has (the rest are zero).
    pub nargs: u32,
    pub args: [u64; MAX_ARGS],
    /// Raw return value; `-4095..=-1` is `-errno`.
    pub ret: i64,
    /// Exit timestamp minus entry timestamp.
    pub duration_ns: u64,
    /// Syscall-specific extra datum, meaning given by header flags (clone3: the clone flags).
    pub aux: u64,
}

/// Arguments a [`ShortSyscallEvent`] carries.
pub const SHORT_ARGS: usize = 3;

/// The common case in compact form: a call that cannot block (mprotect, munmap, kill, ...) with at
/// most three arguments and no aux, recorded at exit (its header's `ts_ns` is the exit; flags
/// include `UNKNOWN_DURATION`). 64 bytes instead of 104: less ring buffer per call.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShortSyscallEvent {
    pub header: EventHeader,
    pub nr: u32,
    pub nargs: u32,
    pub ret: i64,
    pub args: [u64; SHORT_ARGS],
}

impl ShortSyscallEvent {
    /// The same call as a full record (kind `SYSCALL`, duration and aux 0).
    pub fn expand(&self) -> SyscallEvent {
        let mut args = [0; MAX_ARGS];
        args[..SHORT_ARGS].copy_from_slice(&self.args);
        SyscallEvent {
            header: EventHeader { kind: kind::SYSCALL, ..self.header },
            nr: self.nr,
            nargs: self.nargs,
            args,
            ret: self.ret,
            duration_ns: 0,
            aux: 0,
        }
    }
}

/// A task created by a tracked process. Header: the parent (the task that called fork/clone).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkEvent {
    pub header: EventHeader,
    pub child_tid: u32,
    /// Equal to the parent's tgid for a thread (`flags::THREAD`), to `child_tid` for a process.
    pub child_tgid: u32,
    pub parent_comm: [u8; COMM_LEN],
}

/// A successful exec. Header: the task after exec.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecEvent {
    pub header: EventHeader,
    /// The tid that called exec (differs from `header.tid` when a non-leader thread exec'd).
    pub old_tid: u32,
    pub _pad: u32,
    /// The command name after exec.
    pub comm: [u8; COMM_LEN],
    /// The path passed to exec, NUL-terminated, cut at `FILENAME_LEN - 1` bytes.
    pub filename: [u8; FILENAME_LEN],
}

impl Default for ExecEvent {
    fn default() -> Self {
        Self { header: EventHeader::default(), old_tid: 0, _pad: 0, comm: [0; COMM_LEN], filename: [0; FILENAME_LEN] }
    }
}

/// Bytes of a cgroup path kept (longer paths are cut, NUL-terminated).
pub const CGROUP_PATH_LEN: usize = 128;

/// A tracked task moved into a cgroup (a wrapper's `echo $$ > cgroup.procs`, systemd-run, a
/// container runtime). Header: the task moved. Cgroups are inherited at fork, so this and the
/// start-time cgroups tell which cgroup every later task of the tree is in.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CgroupAttachEvent {
    pub header: EventHeader,
    /// The hierarchy's id, as the `hierarchy` column of `/proc/cgroups` lists it (0 for v2).
    pub root: i32,
    /// Depth of the cgroup below the hierarchy's root.
    pub level: i32,
    /// The kernel's cgroup id (the inode of its directory).
    pub id: u64,
    /// The path relative to the hierarchy's root, NUL-terminated, cut at `CGROUP_PATH_LEN - 1`.
    pub path: [u8; CGROUP_PATH_LEN],
}

impl Default for CgroupAttachEvent {
    fn default() -> Self {
        Self { header: EventHeader::default(), root: 0, level: 0, id: 0, path: [0; CGROUP_PATH_LEN] }
    }
}

/// A thread ending. Header: the exiting thread; `flags::GROUP_DEAD` when it was the last one.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitEvent {
    pub header: EventHeader,
    pub comm: [u8; COMM_LEN],
}

/// A signal being generated. Header: the *sender* (current task; the kernel itself for faults,
/// in which case the sender is the faulting thread and `code` says so).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalGenerateEvent {
    pub header: EventHeader,
    pub sig: i32,
    pub errno: i32,
    /// `si_code` (SI_USER, SI_TKILL, SI_KERNEL, SEGV_MAPERR, ...).
    pub code: i32,
    /// Target task id.
    pub target_tid: u32,
    /// Non-zero for a signal to the whole thread group.
    pub group: i32,
    /// TRACE_SIGNAL_DELIVERED(0), IGNORED(1), ALREADY_PENDING(2), OVERFLOW_FAIL(3), LOSE_INFO(4).
    pub result: i32,
    pub sender_comm: [u8; COMM_LEN],
    pub target_comm: [u8; COMM_LEN],
}

/// A signal being delivered (acted upon) in a thread. Header: the receiving thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalDeliverEvent {
    pub header: EventHeader,
    pub sig: i32,
    pub errno: i32,
    pub code: i32,
    pub _pad: u32,
    /// 0 = SIG_DFL, 1 = SIG_IGN, else the handler address.
    pub sa_handler: u64,
    pub sa_flags: u64,
}

/// The faulting address of a SIGSEGV / SIGBUS / SIGILL / SIGTRAP / SIGFPE raised by the kernel in
/// a tracked thread (the classic `signal_generate` format has no `si_addr`). Header: that thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultEvent {
    pub header: EventHeader,
    pub sig: i32,
    /// `si_code` (SEGV_MAPERR, SEGV_ACCERR, BUS_ADRERR, ...).
    pub code: i32,
    /// `si_addr`: the address that faulted.
    pub addr: u64,
}

/// Offsets inside the kernel's `struct kernel_siginfo` (the userspace siginfo ABI on 64-bit:
/// three ints, padding, then the `_sigfault` union whose first member is `si_addr`).
pub mod siginfo {
    pub const SI_CODE: usize = 8;
    pub const SI_ADDR: usize = 16;
}

/// The entry of the in-flight table (tid -> syscall being executed), readable from userspace at any
/// time to say what a thread is blocked in.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InFlight {
    pub nr: u32,
    pub nargs: u32,
    pub args: [u64; MAX_ARGS],
    pub aux: u64,
    /// CLOCK_BOOTTIME of entry.
    pub enter_ns: u64,
    pub tgid: u32,
    /// `flags::AUX_CLONE_FLAGS` / `AUX_RLIMIT_CUR` when `aux` holds clone flags / a limit.
    pub flags: u16,
    /// Unused (host-wide calls are judged at exit alone and never parked).
    pub _spare: u8,
    /// Non-zero while the slot holds a syscall in progress (slots of the by-tid array are reused).
    pub live: u8,
    /// The user frame pointer (rbp) at entry: where the blocked thread's frame-pointer chain
    /// starts, for code whose unwinding needs it.
    pub bp: u64,
}

/// Slots of the kernel's per-thread progress counters (`THREAD_PROGRESS`, indexed by
/// `tid % PROGRESS_SLOTS`); a power of two.
pub const PROGRESS_SLOTS: u32 = 1 << 16;

/// What the kernel counts of one thread of a tracked process, at every syscall exit whatever the
/// call and whether or not its record reaches userspace: the watchdog judges progress from these,
/// not from the records it has drained (a reader lagging behind a busy program sees old records).
/// A slot belongs to the last `tid` that used it; a thread whose `tid % PROGRESS_SLOTS` collides
/// with another's restarts the counts (userspace treats a slot it does not own as unknown).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadProgress {
    pub tid: u32,
    pub _pad: u32,
    /// Syscalls completed since the slot was claimed.
    pub calls: u64,
    /// CLOCK_BOOTTIME of the latest exit of a watched call that did more than wait (see
    /// `syscall_bits::WAIT`): progress; 0 when none yet.
    pub last_progress_ns: u64,
}

/// Per-syscall behaviour bits stored (with the argument count) in the kernel's syscall table map.
pub mod syscall_bits {
    /// Low three bits: number of arguments to record.
    pub const NARGS_MASK: u16 = 0x07;
    /// `prlimit64` / `setrlimit`: read `rlim_cur` of the new limit (the last pointer argument but
    /// one for prlimit64, the last for setrlimit) from user memory into `aux`.
    pub const RLIMIT: u16 = 0x08;
    /// Record at entry; there is no exit (`exit`, `exit_group`).
    pub const NO_RETURN: u16 = 0x10;
    /// `clone3`: read `clone_args.flags` from user memory into `aux`.
    pub const CLONE3: u16 = 0x20;
    /// `clone`: the first argument is the clone flags.
    pub const CLONE: u16 = 0x40;
    /// Watched at all (a zero entry means "not ours": ignore).
    pub const WATCHED: u16 = 0x80;
    /// The call cannot block for long (mprotect, mmap, kill, ...): recorded at exit alone, from
    /// the argument registers the task still holds, with one clock read and no entry parked; its
    /// record carries the exit time and `flags::UNKNOWN_DURATION`.
    pub const EXIT_ONLY: u16 = 0x100;
    /// The call only waits, sleeps or hands a lock over (futex, poll, nanosleep, ...): a thread
    /// making nothing but these makes no progress of its own (the kernel's progress counters).
    pub const WAIT: u16 = 0x200;
}

/// Bits of the kernel's per-syscall host-wide table (`observer watch`): what an untracked process
/// reports. Untracked processes are paired only for these syscalls, and only failures (plus thread
/// stack mappings) leave the kernel, so host-wide streaming stays low-rate.
pub mod host_bits {
    /// Report a failed call of this syscall from any process.
    pub const ERRORS: u8 = 0x01;
    /// `mmap`: also report a successful thread-stack (MAP_STACK) mapping: one per thread created.
    pub const STACK_MMAPS: u8 = 0x02;
    /// `prlimit64` / `setrlimit`: also report a call that sets a new limit (not a mere read),
    /// so a limit set by a launcher explains a later failure.
    pub const LIMIT_SETS: u8 = 0x04;
    /// `setsid` / `setpgid`: report every call, so a host-wide watch can follow a process into the
    /// session or process group it moves to (a rare call, once per daemon or job).
    pub const GROUP_CHANGES: u8 = 0x08;
}

/// Index of the per-kind counters map entry that counts in-flight table overflows.
pub const COUNTER_INFLIGHT_FULL: u32 = 0;

/// A record the kernel writes, labelled with its kind by its type: `emit(&record)` cannot write
/// one kind under another's id.
pub trait Record: Copy + 'static {
    const KIND: u16;
    /// Short name of the kind, as summaries, metrics and `--format json` give it.
    const NAME: &'static str;
}

/// The one table of record types: their kind ids and names, and the sizes by kind id.
macro_rules! records {
    ($($t:ty => $kind:expr, $name:literal;)*) => {
        $(impl Record for $t {
            const KIND: u16 = $kind;
            const NAME: &'static str = $name;
        })*

        /// Size of each record kind, by kind id (0 = unknown kind).
        pub const fn record_size(kind: u16) -> usize {
            $(if kind == <$t as Record>::KIND {
                return core::mem::size_of::<$t>();
            })*
            0
        }
    };
}

records! {
    SyscallEvent => kind::SYSCALL, "syscall";
    ForkEvent => kind::FORK, "fork";
    ExecEvent => kind::EXEC, "exec";
    ExitEvent => kind::EXIT, "exit";
    SignalGenerateEvent => kind::SIGNAL_GENERATE, "signal_generate";
    SignalDeliverEvent => kind::SIGNAL_DELIVER, "signal_deliver";
    FaultEvent => kind::FAULT, "fault";
    CgroupAttachEvent => kind::CGROUP_ATTACH, "cgroup_attach";
    ShortSyscallEvent => kind::SHORT_SYSCALL, "syscall";
}

macro_rules! assert_layout {
    ($t:ty, $size:expr) => {
        const _: () = assert!(core::mem::size_of::<$t>() == $size);
        const _: () = assert!(core::mem::align_of::<$t>() == 8);
    };
}
assert_layout!(EventHeader, 24);
assert_layout!(SyscallEvent, 24 + 8 + 48 + 24);
assert_layout!(ShortSyscallEvent, 24 + 8 + 8 + 24);
assert_layout!(ForkEvent, 24 + 8 + 16);
assert_layout!(ExecEvent, 24 + 8 + 16 + 128);
assert_layout!(ExitEvent, 24 + 16);
assert_layout!(SignalGenerateEvent, 24 + 24 + 32);
assert_layout!(SignalDeliverEvent, 24 + 16 + 16);
assert_layout!(FaultEvent, 24 + 16);
assert_layout!(CgroupAttachEvent, 24 + 16 + 128);
assert_layout!(InFlight, 8 + 48 + 8 + 8 + 8 + 8);
assert_layout!(ThreadProgress, 24);
const _: () = assert!(core::mem::offset_of!(EventHeader, ts_ns) == 16);
const _: () = assert!(core::mem::offset_of!(SyscallEvent, args) == 32);
const _: () = assert!(core::mem::offset_of!(SyscallEvent, ret) == 80);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all of these are #[repr(C)], made only of integers and byte arrays, with explicit
    // padding fields, so every bit pattern is valid and there are no implicit holes.
    unsafe impl aya::Pod for InFlight {}
    unsafe impl aya::Pod for ThreadProgress {}
    unsafe impl aya::Pod for crate::maps::SampleKey {}
}
