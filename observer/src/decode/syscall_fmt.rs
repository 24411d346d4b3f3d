//! strace's one-line rendering of a syscall record, `name(args) = result`, without timestamp or
//! duration, and the x86_64 flag tables (mmap, prot, clone, futex, wait, clocks) it needs.
//!
//! The capture keeps registers, never user memory, so wherever strace would read through a pointer
//! (paths, argv, timespecs, fd sets, siginfo, `[tid]`) the pointer itself is printed instead.

use observer_common::flags::{AUX_CLONE_FLAGS, NO_RETURN, UNFINISHED};
use observer_common::syscalls::by_nr;
use observer_common::SyscallEvent;

use super::names::{errno_message, errno_name, is_error_return, signal_name};

/// `mmap`/`mprotect` prot bit: readable.
pub const PROT_READ: u64 = 0x1;
/// `mmap`/`mprotect` prot bit: writable.
pub const PROT_WRITE: u64 = 0x2;
/// `mmap` flag glibc and others set on thread stacks.
pub const MAP_STACK: u64 = 0x2_0000;
pub const MAP_PRIVATE: u64 = 0x2;
pub const MAP_ANONYMOUS: u64 = 0x20;
/// `mmap` flag: place exactly at `addr` but fail rather than replace an existing mapping.
pub const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

/// Value-name pairs. Flag tables are matched in table order, which is strace's order (not always
/// ascending), so that combined flags come out spelled exactly as strace spells them.
type Xlat = &'static [(u64, &'static str)];

const PROT: Xlat = &[
    (0, "PROT_NONE"),
    (PROT_READ, "PROT_READ"),
    (PROT_WRITE, "PROT_WRITE"),
    (0x4, "PROT_EXEC"),
    (0x8, "PROT_SEM"),
    (0x0100_0000, "PROT_GROWSDOWN"),
    (0x0200_0000, "PROT_GROWSUP"),
];

/// The low nibble of mmap flags is a mapping type, one value rather than bits.
const MAP_TYPE: u64 = 0xf;
const MAP_TYPES: Xlat =
    &[(0, "MAP_FILE"), (0x1, "MAP_SHARED"), (0x2, "MAP_PRIVATE"), (0x3, "MAP_SHARED_VALIDATE"), (0x8, "MAP_DROPPABLE")];
const MAP_HUGETLB: u64 = 0x4_0000;
const MAP_HUGE_SHIFT: u32 = 26;
const MAP_HUGE_MASK: u64 = 0x3f << MAP_HUGE_SHIFT;
const MAP_FLAGS: Xlat = &[
    (0x10, "MAP_FIXED"),
    (0x20, "MAP_ANONYMOUS"),
    (0x40, "MAP_32BIT"),
    (0x80, "MAP_ABOVE4G"),
    (0x4000, "MAP_NORESERVE"),
    (0x8000, "MAP_POPULATE"),
    (0x1_0000, "MAP_NONBLOCK"),
    (0x100, "MAP_GROWSDOWN"),
    (0x800, "MAP_DENYWRITE"),
    (0x1000, "MAP_EXECUTABLE"),
    (0x2000, "MAP_LOCKED"),
    (MAP_STACK, "MAP_STACK"),
    (MAP_HUGETLB, "MAP_HUGETLB"),
    (0x8_0000, "MAP_SYNC"),
    (0x400_0000, "MAP_UNINITIALIZED"),
    (MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"),
];

const MREMAP_MAYMOVE: u64 = 0x1;
const MREMAP_FIXED: u64 = 0x2;
const MREMAP_DONTUNMAP: u64 = 0x4;
const MREMAP_FLAGS: Xlat =
    &[(MREMAP_MAYMOVE, "MREMAP_MAYMOVE"), (MREMAP_FIXED, "MREMAP_FIXED"), (MREMAP_DONTUNMAP, "MREMAP_DONTUNMAP")];

/// clone(2) keeps the child's exit signal in the low byte of its flags word.
const CSIGNAL: u64 = 0xff;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_SETTLS: u64 = 0x8_0000;
const CLONE_PARENT_SETTID: u64 = 0x10_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
const CLONE_CHILD_SETTID: u64 = 0x100_0000;
// CLONE_DETACHED (0x400000) is missing on purpose: the kernel ignores it and strace shows it raw.
const CLONE_FLAGS: Xlat = &[
    (0x100, "CLONE_VM"),
    (0x200, "CLONE_FS"),
    (0x400, "CLONE_FILES"),
    (0x800, "CLONE_SIGHAND"),
    (CLONE_PIDFD, "CLONE_PIDFD"),
    (0x2000, "CLONE_PTRACE"),
    (0x4000, "CLONE_VFORK"),
    (0x8000, "CLONE_PARENT"),
    (0x1_0000, "CLONE_THREAD"),
    (0x2_0000, "CLONE_NEWNS"),
    (0x4_0000, "CLONE_SYSVSEM"),
    (CLONE_SETTLS, "CLONE_SETTLS"),
    (CLONE_PARENT_SETTID, "CLONE_PARENT_SETTID"),
    (CLONE_CHILD_CLEARTID, "CLONE_CHILD_CLEARTID"),
    (0x80_0000, "CLONE_UNTRACED"),
    (CLONE_CHILD_SETTID, "CLONE_CHILD_SETTID"),
    (0x200_0000, "CLONE_NEWCGROUP"),
    (0x400_0000, "CLONE_NEWUTS"),
    (0x800_0000, "CLONE_NEWIPC"),
    (0x1000_0000, "CLONE_NEWUSER"),
    (0x2000_0000, "CLONE_NEWPID"),
    (0x4000_0000, "CLONE_NEWNET"),
    (0x8000_0000, "CLONE_IO"),
];
/// Flags only clone3 can pass: CLONE_NEWTIME reuses a bit of clone(2)'s exit-signal byte, the
/// others do not fit in clone(2)'s 32-bit flags.
const CLONE3_FLAGS: Xlat = &[
    (0x80, "CLONE_NEWTIME"),
    (1 << 32, "CLONE_CLEAR_SIGHAND"),
    (1 << 33, "CLONE_INTO_CGROUP"),
    (1 << 34, "CLONE_AUTOREAP"),
    (1 << 35, "CLONE_NNP"),
    (1 << 36, "CLONE_PIDFD_AUTOKILL"),
    (1 << 37, "CLONE_EMPTY_MNTNS"),
];

/// A futex op's command, without the PRIVATE and CLOCK_REALTIME flags (`futex_cmd::of(op)`), for
/// code that reasons about what a futex call waits for.
pub mod futex_cmd {
    pub const WAIT: u64 = 0;
    pub const LOCK_PI: u64 = 6;
    pub const WAIT_BITSET: u64 = 9;
    pub const LOCK_PI2: u64 = 13;

    pub const fn of(op: u64) -> u64 {
        op & !((super::FUTEX_PRIVATE_FLAG | super::FUTEX_CLOCK_REALTIME) as u64)
    }
}

const FUTEX_PRIVATE_FLAG: i32 = 128;
const FUTEX_CLOCK_REALTIME: i32 = 256;
const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_FD: i32 = 2;
const FUTEX_REQUEUE: i32 = 3;
const FUTEX_CMP_REQUEUE: i32 = 4;
const FUTEX_WAKE_OP: i32 = 5;
const FUTEX_LOCK_PI: i32 = 6;
const FUTEX_UNLOCK_PI: i32 = 7;
const FUTEX_TRYLOCK_PI: i32 = 8;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_WAIT_REQUEUE_PI: i32 = 11;
const FUTEX_CMP_REQUEUE_PI: i32 = 12;
const FUTEX_LOCK_PI2: i32 = 13;
/// Indexed by futex command.
const FUTEX_CMDS: [&str; 14] = [
    "FUTEX_WAIT",
    "FUTEX_WAKE",
    "FUTEX_FD",
    "FUTEX_REQUEUE",
    "FUTEX_CMP_REQUEUE",
    "FUTEX_WAKE_OP",
    "FUTEX_LOCK_PI",
    "FUTEX_UNLOCK_PI",
    "FUTEX_TRYLOCK_PI",
    "FUTEX_WAIT_BITSET",
    "FUTEX_WAKE_BITSET",
    "FUTEX_WAIT_REQUEUE_PI",
    "FUTEX_CMP_REQUEUE_PI",
    "FUTEX_LOCK_PI2",
];
const FUTEX_BITSET_MATCH_ANY: u32 = 0xffff_ffff;
const FUTEX_OP_OPARG_SHIFT: u32 = 8;
const FUTEX_WAKE_OPS: [&str; 5] = ["FUTEX_OP_SET", "FUTEX_OP_ADD", "FUTEX_OP_OR", "FUTEX_OP_ANDN", "FUTEX_OP_XOR"];
const FUTEX_WAKE_CMPS: [&str; 6] =
    ["FUTEX_OP_CMP_EQ", "FUTEX_OP_CMP_NE", "FUTEX_OP_CMP_LT", "FUTEX_OP_CMP_LE", "FUTEX_OP_CMP_GT", "FUTEX_OP_CMP_GE"];

/// Options of wait4 and waitid alike. WUNTRACED and WSTOPPED share a value; strace says WSTOPPED.
const WAIT_OPTIONS: Xlat = &[
    (0x1, "WNOHANG"),
    (0x2, "WSTOPPED"),
    (0x4, "WEXITED"),
    (0x8, "WCONTINUED"),
    (0x100_0000, "WNOWAIT"),
    (0x8000_0000, "__WCLONE"),
    (0x4000_0000, "__WALL"),
    (0x2000_0000, "__WNOTHREAD"),
];
const WAITID_TYPES: Xlat = &[(0, "P_ALL"), (1, "P_PID"), (2, "P_PGID"), (3, "P_PIDFD")];

const CLOCKS: Xlat = &[
    (0, "CLOCK_REALTIME"),
    (1, "CLOCK_MONOTONIC"),
    (2, "CLOCK_PROCESS_CPUTIME_ID"),
    (3, "CLOCK_THREAD_CPUTIME_ID"),
    (4, "CLOCK_MONOTONIC_RAW"),
    (5, "CLOCK_REALTIME_COARSE"),
    (6, "CLOCK_MONOTONIC_COARSE"),
    (7, "CLOCK_BOOTTIME"),
    (8, "CLOCK_REALTIME_ALARM"),
    (9, "CLOCK_BOOTTIME_ALARM"),
    (10, "CLOCK_SGI_CYCLE"),
    (11, "CLOCK_TAI"),
];
const CPU_CLOCKS: Xlat = &[(0, "CPUCLOCK_PROF"), (1, "CPUCLOCK_VIRT"), (2, "CPUCLOCK_SCHED")];
/// Negative clock ids encode a pid or fd above the low three bits; these are the kernel's.
const CLOCKFD: i32 = 3;
const CLOCKFD_MASK: i32 = 7;
const CPUCLOCK_PERTHREAD_MASK: i32 = 4;
const CLOCK_FLAGS: Xlat = &[(0x1, "TIMER_ABSTIME")];

pub(crate) const AT_FDCWD: i32 = -100;
const EXECVEAT_FLAGS: Xlat =
    &[(0x100, "AT_SYMLINK_NOFOLLOW"), (0x1000, "AT_EMPTY_PATH"), (0x1_0000, "AT_EXECVE_CHECK")];

/// Hex the way strace's `%#x` prints it: zero has no `0x`.
fn hex(v: u64) -> String {
    if v == 0 {
        "0".to_string()
    } else {
        format!("{v:#x}")
    }
}

fn ptr(v: u64) -> String {
    if v == 0 {
        "NULL".to_string()
    } else {
        format!("{v:#x}")
    }
}

/// The kernel reads these arguments as C `int`, so only the low 32 bits count (an fd of -1 may
/// arrive as 0xffffffff).
fn int(v: u64) -> String {
    (v as i32).to_string()
}

fn uint(v: u64) -> String {
    (v as u32).to_string()
}

fn signal(sig: i32) -> String {
    signal_name(sig).map_or_else(|| sig.to_string(), str::to_string)
}

/// The one name for `value`, or the raw value with `dflt` as a comment.
fn xval(value: u64, table: Xlat, dflt: &str) -> String {
    match table.iter().find(|e| e.0 == value) {
        Some(e) => e.1.to_string(),
        None => format!("{} /* {dflt} */", hex(value)),
    }
}

/// strace's `printflags`: names joined by `|`, leftover bits as `|0x...`; with no name at all, the
/// raw value with `dflt` as a comment (or plain `0` for no bits). A value-0 entry is only used for
/// an all-zero value, and only if it comes first, as in strace.
fn flags(value: u64, tables: &[Xlat], dflt: Option<&str>) -> String {
    let mut names: Vec<&str> = Vec::new();
    let mut rest = value;
    'tables: for table in tables {
        for &(v, name) in *table {
            if rest == v || (v != 0 && rest & v == v) {
                names.push(name);
                rest &= !v;
            }
            if rest == 0 {
                break 'tables;
            }
        }
    }
    let mut out = names.join("|");
    if names.is_empty() {
        if rest != 0 {
            out = hex(rest);
            if let Some(d) = dflt {
                out.push_str(&format!(" /* {d} */"));
            }
        } else if dflt.is_some() {
            out.push('0');
        }
    } else if rest != 0 {
        out.push_str(&format!("|{rest:#x}"));
    }
    out
}

/// mmap/mprotect protection bits: `PROT_NONE`, `PROT_READ|PROT_WRITE`, unknown bits as `|0x...`.
pub fn prot_flags(prot: u64) -> String {
    flags(prot, &[PROT], Some("PROT_???"))
}

/// mmap flags: the mapping type (`MAP_PRIVATE`, ...) then the flag bits, then, for MAP_HUGETLB,
/// the page size as `21<<MAP_HUGE_SHIFT`.
///
/// strace always reads bits 26..=31 as the huge page size; here they are only when MAP_HUGETLB is
/// set (the kernel ignores them otherwise), so that bit 26 alone still reads MAP_UNINITIALIZED.
pub fn mmap_flags(value: u64) -> String {
    let mut out = xval(value & MAP_TYPE, MAP_TYPES, "MAP_???");
    let mut rest = value & !MAP_TYPE;
    let huge = if rest & MAP_HUGETLB != 0 { rest & MAP_HUGE_MASK } else { 0 };
    rest &= !huge;
    if rest != 0 {
        out.push('|');
        out.push_str(&flags(rest, &[MAP_FLAGS], None));
    }
    if huge != 0 {
        out.push_str(&format!("|{}<<MAP_HUGE_SHIFT", huge >> MAP_HUGE_SHIFT));
    }
    out
}

/// clone(2)'s flags word: the `CLONE_*` bits, then the exit signal kept in the low byte
/// (`CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD`); a bare signal or `0` when no bit is set.
/// For clone3's `clone_args.flags`, which has no signal byte, use [`clone3_flags`].
pub fn clone_flags(value: u64) -> String {
    let bits = value & !CSIGNAL;
    let sig = (value & CSIGNAL) as i32;
    if bits == 0 {
        return signal(sig);
    }
    let mut out = flags(bits, &[CLONE_FLAGS], Some("CLONE_???"));
    if sig != 0 {
        out.push('|');
        out.push_str(&signal(sig));
    }
    out
}

/// clone3's `clone_args.flags`: the clone(2) bits plus the clone3-only ones (CLONE_NEWTIME,
/// CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP, ...); `0` when empty.
pub fn clone3_flags(value: u64) -> String {
    flags(value, &[CLONE_FLAGS, CLONE3_FLAGS], Some("CLONE_???"))
}

/// futex op: the command with `_PRIVATE` folded in and `|FUTEX_CLOCK_REALTIME`, for exactly the
/// combinations strace has names for; any other op is shown raw.
fn futex_op(op: i32) -> String {
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    let timed_wait = matches!(cmd, FUTEX_WAIT | FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI);
    let name = usize::try_from(cmd).ok().and_then(|c| FUTEX_CMDS.get(c));
    match name {
        Some(name) if !realtime || timed_wait => {
            let mut out = name.to_string();
            if private {
                // FUTEX_FD predates private futexes and never got a _PRIVATE name.
                out.push_str(if cmd == FUTEX_FD { "|FUTEX_PRIVATE_FLAG" } else { "_PRIVATE" });
            }
            if realtime {
                out.push_str("|FUTEX_CLOCK_REALTIME");
            }
            out
        }
        _ => format!("{} /* FUTEX_??? */", hex(op as i64 as u64)),
    }
}

fn futex_bitset(val3: u32) -> String {
    if val3 == FUTEX_BITSET_MATCH_ANY {
        "FUTEX_BITSET_MATCH_ANY".to_string()
    } else {
        hex(val3.into())
    }
}

/// FUTEX_WAKE_OP's packed operation, as the shifts that would build it:
/// `FUTEX_OP_SET<<28|0<<12|FUTEX_OP_CMP_GT<<24|0x1`.
fn futex_wake_op(val3: u32) -> String {
    let mut out = String::new();
    if (val3 >> 28) & FUTEX_OP_OPARG_SHIFT != 0 {
        out.push_str("FUTEX_OP_OPARG_SHIFT<<28|");
    }
    let op = (val3 >> 28) & 0x7;
    match FUTEX_WAKE_OPS.get(op as usize) {
        Some(name) => out.push_str(&format!("{name}<<28")),
        None => out.push_str(&format!("{}<<28 /* FUTEX_OP_??? */", hex(op.into()))),
    }
    out.push_str(&format!("|{}<<12|", hex(((val3 >> 12) & 0xfff).into())));
    let cmp = (val3 >> 24) & 0xf;
    match FUTEX_WAKE_CMPS.get(cmp as usize) {
        Some(name) => out.push_str(&format!("{name}<<24")),
        None => out.push_str(&format!("{}<<24 /* FUTEX_OP_CMP_??? */", hex(cmp.into()))),
    }
    out.push_str(&format!("|{}", hex((val3 & 0xfff).into())));
    out
}

/// futex's arguments: which of the six an op uses, and as what, depends on the command.
fn futex_args(a: &[u64; 6]) -> Vec<String> {
    let op = a[1] as i32;
    let val = uint(a[2]);
    // The fourth argument is a timeout pointer for some commands and a count for others.
    let timeout = ptr(a[3]);
    let val2 = uint(a[3]);
    let uaddr2 = ptr(a[4]);
    let val3 = a[5] as u32;
    let mut out = vec![ptr(a[0]), futex_op(op)];
    // strace switches on the low 7 bits, so an op with stray high bits still shows its arguments.
    match op & 127 {
        FUTEX_WAIT => out.extend([val, timeout]),
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 => out.push(timeout),
        FUTEX_WAIT_BITSET => out.extend([val, timeout, futex_bitset(val3)]),
        FUTEX_WAKE_BITSET => out.extend([val, futex_bitset(val3)]),
        FUTEX_REQUEUE => out.extend([val, val2, uaddr2]),
        FUTEX_CMP_REQUEUE | FUTEX_CMP_REQUEUE_PI => out.extend([val, val2, uaddr2, val3.to_string()]),
        FUTEX_WAKE_OP => out.extend([val, val2, uaddr2, futex_wake_op(val3)]),
        FUTEX_WAIT_REQUEUE_PI => out.extend([val, timeout, uaddr2]),
        FUTEX_FD | FUTEX_WAKE => out.push(val),
        FUTEX_UNLOCK_PI | FUTEX_TRYLOCK_PI => {}
        _ => out.extend([val, timeout, uaddr2, hex(val3.into())]),
    }
    out
}

/// A clock id; negative ids name a process's or thread's CPU clock, or a clock behind an fd.
fn clock_name(id: i32) -> String {
    if id >= 0 {
        return xval(id as u64, CLOCKS, "CLOCK_???");
    }
    let upper = !(id >> 3);
    if id & CLOCKFD_MASK == CLOCKFD {
        return format!("FD_TO_CLOCKID({upper})");
    }
    let maker = if id & CPUCLOCK_PERTHREAD_MASK != 0 { "MAKE_THREAD_CPUCLOCK" } else { "MAKE_PROCESS_CPUCLOCK" };
    // Masking with CLOCKFD_MASK (not the 2-bit clock mask) is strace's, thread clocks included.
    let which = xval((id & CLOCKFD_MASK) as u64, CPU_CLOCKS, "CPUCLOCK_???");
    format!("{maker}({upper}, {which})")
}

fn dirfd(v: u64) -> String {
    match v as i32 {
        AT_FDCWD => "AT_FDCWD".to_string(),
        fd => fd.to_string(),
    }
}

fn wait_options(v: u64) -> String {
    flags(v as u32 as u64, &[WAIT_OPTIONS], Some("W???"))
}

/// How a successful return value is printed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ret {
    Decimal,
    /// Addresses (mmap, mremap, brk).
    Hex,
    /// A count of ready descriptors, where 0 means the timeout expired: strace adds `(Timeout)`.
    ReadyOrTimeout,
}

/// Indexed by resource id.
const RLIMIT_NAMES: [&str; 16] = [
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

fn rlimit_resource(r: u64) -> String {
    RLIMIT_NAMES.get(r as usize).map_or_else(|| r.to_string(), |n| n.to_string())
}

/// The new limit of prlimit64/setrlimit: its soft value when the kernel side could read it.
fn new_rlimit(ev: &SyscallEvent, pointer: u64) -> String {
    if pointer == 0 {
        return "NULL".into();
    }
    if ev.header.flags & observer_common::flags::AUX_RLIMIT_CUR == 0 {
        return ptr(pointer);
    }
    match ev.aux {
        u64::MAX => "{rlim_cur=RLIM64_INFINITY, ...}".into(),
        cur => format!("{{rlim_cur={cur}, ...}}"),
    }
}

/// The arguments of a watched syscall, rendered, and how its result reads; `None` for a name this
/// module has no decoder for.
fn decode(name: &str, ev: &SyscallEvent) -> Option<(Vec<String>, Ret)> {
    let a = &ev.args;
    let (args, ret) = match name {
        "mmap" => {
            (vec![ptr(a[0]), a[1].to_string(), prot_flags(a[2]), mmap_flags(a[3]), int(a[4]), hex(a[5])], Ret::Hex)
        }
        "munmap" => (vec![ptr(a[0]), a[1].to_string()], Ret::Decimal),
        "mprotect" => (vec![ptr(a[0]), a[1].to_string(), prot_flags(a[2])], Ret::Decimal),
        "mremap" => {
            let mut args =
                vec![ptr(a[0]), a[1].to_string(), a[2].to_string(), flags(a[3], &[MREMAP_FLAGS], Some("MREMAP_???"))];
            // The new address is only read by the kernel in these cases, and only then shown.
            if a[3] & MREMAP_MAYMOVE != 0 && a[3] & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
                args.push(ptr(a[4]));
            }
            (args, Ret::Hex)
        }
        "brk" => (vec![ptr(a[0])], Ret::Hex),
        "prlimit64" => (vec![int(a[0]), rlimit_resource(a[1]), new_rlimit(ev, a[2]), ptr(a[3])], Ret::Decimal),
        "setrlimit" => (vec![rlimit_resource(a[0]), new_rlimit(ev, a[1])], Ret::Decimal),
        "clone" => {
            let bits = a[0] & !CSIGNAL;
            let mut args = vec![format!("child_stack={}", ptr(a[1])), format!("flags={}", clone_flags(a[0]))];
            if bits & (CLONE_PARENT_SETTID | CLONE_PIDFD) != 0 {
                args.push(format!("parent_tid={}", ptr(a[2])));
            }
            if bits & CLONE_SETTLS != 0 {
                args.push(format!("tls={}", ptr(a[4])));
            }
            if bits & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID) != 0 {
                args.push(format!("child_tidptr={}", ptr(a[3])));
            }
            (args, Ret::Decimal)
        }
        "clone3" => {
            let cl_args = if ev.header.flags & AUX_CLONE_FLAGS != 0 {
                format!("{{flags={}, ...}}", clone3_flags(ev.aux))
            } else {
                ptr(a[0])
            };
            (vec![cl_args, a[1].to_string()], Ret::Decimal)
        }
        "fork" | "vfork" | "setsid" => (vec![], Ret::Decimal),
        "setpgid" => (vec![int(a[0]), int(a[1])], Ret::Decimal),
        "execve" => (vec![ptr(a[0]), ptr(a[1]), ptr(a[2])], Ret::Decimal),
        "execveat" => (
            vec![
                dirfd(a[0]),
                ptr(a[1]),
                ptr(a[2]),
                ptr(a[3]),
                flags(a[4] as u32 as u64, &[EXECVEAT_FLAGS], Some("AT_???")),
            ],
            Ret::Decimal,
        ),
        "exit" | "exit_group" => (vec![int(a[0])], Ret::Decimal),
        "kill" | "tkill" => (vec![int(a[0]), signal(a[1] as i32)], Ret::Decimal),
        "tgkill" => (vec![int(a[0]), int(a[1]), signal(a[2] as i32)], Ret::Decimal),
        "rt_sigqueueinfo" => (vec![int(a[0]), signal(a[1] as i32), ptr(a[2])], Ret::Decimal),
        "rt_tgsigqueueinfo" => (vec![int(a[0]), int(a[1]), signal(a[2] as i32), ptr(a[3])], Ret::Decimal),
        "futex" => (futex_args(a), Ret::Decimal),
        "poll" => (vec![ptr(a[0]), uint(a[1]), int(a[2])], Ret::ReadyOrTimeout),
        "ppoll" => (vec![ptr(a[0]), uint(a[1]), ptr(a[2]), ptr(a[3]), a[4].to_string()], Ret::ReadyOrTimeout),
        "select" => (vec![int(a[0]), ptr(a[1]), ptr(a[2]), ptr(a[3]), ptr(a[4])], Ret::ReadyOrTimeout),
        "pselect6" => (vec![int(a[0]), ptr(a[1]), ptr(a[2]), ptr(a[3]), ptr(a[4]), ptr(a[5])], Ret::ReadyOrTimeout),
        "epoll_wait" => (vec![int(a[0]), ptr(a[1]), int(a[2]), int(a[3])], Ret::Decimal),
        "epoll_pwait" => (vec![int(a[0]), ptr(a[1]), int(a[2]), int(a[3]), ptr(a[4]), a[5].to_string()], Ret::Decimal),
        // Unlike epoll_pwait, the timeout is a timespec pointer.
        "epoll_pwait2" => (vec![int(a[0]), ptr(a[1]), int(a[2]), ptr(a[3]), ptr(a[4]), a[5].to_string()], Ret::Decimal),
        "nanosleep" => (vec![ptr(a[0]), ptr(a[1])], Ret::Decimal),
        "clock_nanosleep" => (
            vec![
                clock_name(a[0] as i32),
                flags(a[1] as u32 as u64, &[CLOCK_FLAGS], Some("TIMER_???")),
                ptr(a[2]),
                ptr(a[3]),
            ],
            Ret::Decimal,
        ),
        "wait4" => (vec![int(a[0]), ptr(a[1]), wait_options(a[2]), ptr(a[3])], Ret::Decimal),
        "waitid" => (
            vec![xval(a[0] as u32 as u64, WAITID_TYPES, "P_???"), int(a[1]), ptr(a[2]), wait_options(a[3]), ptr(a[4])],
            Ret::Decimal,
        ),
        // Only the fd is captured (never the buffer or its size); `...` stands for the rest.
        "read" | "write" => (vec![int(a[0]), "...".to_string()], Ret::Decimal),
        _ => return None,
    };
    Some((args, ret))
}

/// Arguments as strace shows a syscall it cannot decode: each one raw, in hex.
fn raw_args(args: &[u64], nargs: usize) -> Vec<String> {
    args.iter().take(nargs).map(|&v| hex(v)).collect()
}

/// The ` = ...` part for a syscall that returned `ret`.
fn result(ret: i64, kind: Ret) -> String {
    if let Some(errno) = is_error_return(ret) {
        let name = errno_name(errno);
        return match (errno, name) {
            // A signal interrupted the call and the kernel will restart it or turn it into EINTR:
            // the caller never sees this value, hence `?` rather than -1.
            (512..=514 | 516, Some(name)) => {
                format!(" = ? {name} ({})", errno_message(errno).unwrap_or_default())
            }
            (_, Some(name)) => match errno_message(errno) {
                Some(message) => format!(" = -1 {name} ({message})"),
                None => format!(" = -1 {name} (Unknown error {errno})"),
            },
            (_, None) => format!(" = -1 (errno {errno})"),
        };
    }
    match kind {
        Ret::Hex => format!(" = {}", hex(ret as u64)),
        Ret::ReadyOrTimeout if ret == 0 => " = 0 (Timeout)".to_string(),
        Ret::Decimal | Ret::ReadyOrTimeout => format!(" = {ret}"),
    }
}

/// strace's line for one syscall record, without timestamp or duration:
/// `mmap(NULL, 8392704, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK, -1, 0) = 0x7fffdf79f000`.
///
/// Records flagged NO_RETURN end in ` = ?`; records flagged UNFINISHED (the thread died inside the
/// call) end in ` <unfinished ...>` with no closing parenthesis and no result, as strace leaves a
/// call it never saw return. A syscall number outside the watched table prints as
/// `syscall_0x1a4(...)` with its arguments in hex.
pub fn format_call(ev: &SyscallEvent) -> String {
    let nargs = (ev.nargs as usize).min(ev.args.len());
    let (name, args, kind) = match by_nr(ev.nr) {
        Some(sc) => match decode(sc.name, ev) {
            Some((args, kind)) => (sc.name.to_string(), args, kind),
            None => (sc.name.to_string(), raw_args(&ev.args, sc.nargs.into()), Ret::Decimal),
        },
        None => (super::syscall_label(ev.nr), raw_args(&ev.args, nargs), Ret::Decimal),
    };
    let call = format!("{name}({}", args.join(", "));
    if ev.header.flags & NO_RETURN != 0 {
        format!("{call}) = ?")
    } else if ev.header.flags & UNFINISHED != 0 {
        format!("{call} <unfinished ...>")
    } else {
        format!("{call}){}", result(ev.ret, kind))
    }
}

/// The vocabularies strace spells arguments in, for reading its text back with [`value_of_name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Names {
    Prot,
    /// Mapping types and flags, and `MAP_HUGE_SHIFT`.
    Mmap,
    Mremap,
    /// clone(2) and clone3 flags (the exit signal is a signal name: [`super::signal_by_name`]).
    Clone,
    /// A futex command, with `_PRIVATE` folded in, or `FUTEX_PRIVATE_FLAG` / `FUTEX_CLOCK_REALTIME`.
    FutexOp,
    /// futex's last argument: `FUTEX_BITSET_MATCH_ANY`, or a FUTEX_WAKE_OP field name.
    FutexVal3,
    WaitOptions,
    WaitidType,
    Clock,
    ClockFlags,
    ExecveatFlags,
    RlimitResource,
    /// A dirfd: `AT_FDCWD`.
    Dirfd,
}

fn value_in(table: Xlat, name: &str) -> Option<u64> {
    table.iter().find(|e| e.1 == name).map(|e| e.0)
}

fn futex_cmd_by_name(name: &str) -> Option<u64> {
    FUTEX_CMDS.iter().position(|c| *c == name).map(|i| i as u64)
}

/// The value of one name strace printed in an argument of vocabulary `names`: the inverse of
/// `prot_flags`, `mmap_flags`, `clone_flags`, `futex_op`, ... read from the same tables. A flag
/// expression is read term by term (`MAP_PRIVATE|MAP_ANONYMOUS` is two names); `MAP_HUGE_SHIFT`
/// and the FUTEX_WAKE_OP field names give the number they stand for in `21<<MAP_HUGE_SHIFT` and
/// `FUTEX_OP_SET<<28`.
pub(crate) fn value_of_name(names: Names, name: &str) -> Option<u64> {
    match names {
        Names::Prot => value_in(PROT, name),
        Names::Mmap if name == "MAP_HUGE_SHIFT" => Some(MAP_HUGE_SHIFT.into()),
        Names::Mmap => value_in(MAP_TYPES, name).or_else(|| value_in(MAP_FLAGS, name)),
        Names::Mremap => value_in(MREMAP_FLAGS, name),
        Names::Clone => value_in(CLONE_FLAGS, name).or_else(|| value_in(CLONE3_FLAGS, name)),
        Names::FutexOp => match name {
            "FUTEX_PRIVATE_FLAG" => Some(FUTEX_PRIVATE_FLAG as u64),
            "FUTEX_CLOCK_REALTIME" => Some(FUTEX_CLOCK_REALTIME as u64),
            _ => futex_cmd_by_name(name).or_else(|| {
                let cmd = futex_cmd_by_name(name.strip_suffix("_PRIVATE")?)?;
                Some(cmd | FUTEX_PRIVATE_FLAG as u64)
            }),
        },
        Names::FutexVal3 => match name {
            "FUTEX_BITSET_MATCH_ANY" => Some(FUTEX_BITSET_MATCH_ANY.into()),
            "FUTEX_OP_OPARG_SHIFT" => Some(FUTEX_OP_OPARG_SHIFT.into()),
            _ => FUTEX_WAKE_OPS
                .iter()
                .position(|o| *o == name)
                .or_else(|| FUTEX_WAKE_CMPS.iter().position(|c| *c == name))
                .map(|i| i as u64),
        },
        Names::WaitOptions => value_in(WAIT_OPTIONS, name),
        Names::WaitidType => value_in(WAITID_TYPES, name),
        Names::Clock => value_in(CLOCKS, name),
        Names::ClockFlags => value_in(CLOCK_FLAGS, name),
        Names::ExecveatFlags => value_in(EXECVEAT_FLAGS, name),
        Names::RlimitResource => RLIMIT_NAMES.iter().position(|n| *n == name).map(|i| i as u64),
        Names::Dirfd => (name == "AT_FDCWD").then_some(AT_FDCWD as i64 as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use observer_common::syscalls::by_name;
    use observer_common::{kind, EventHeader};

    fn record(nr: u32, nargs: u32, args: &[u64], ret: i64) -> SyscallEvent {
        let mut all = [0; 6];
        all[..args.len()].copy_from_slice(args);
        SyscallEvent {
            header: EventHeader { kind: kind::SYSCALL, flags: 0, tid: 1235, tgid: 1234, _pad: 0, ts_ns: 1_000_000_000 },
            nr,
            nargs,
            args: all,
            ret,
            duration_ns: 12_345,
            aux: 0,
        }
    }

    /// A record of the watched syscall `name`, numbered and sized from the shared table.
    fn call(name: &str, args: &[u64], ret: i64) -> SyscallEvent {
        let sc = by_name(name).unwrap_or_else(|| panic!("{name} is not watched"));
        assert!(args.len() <= sc.nargs.into(), "{name} keeps only {} arguments", sc.nargs);
        record(sc.nr, sc.nargs.into(), args, ret)
    }

    fn fmt(name: &str, args: &[u64], ret: i64) -> String {
        format_call(&call(name, args, ret))
    }

    fn err(errno: i32) -> i64 {
        -i64::from(errno)
    }

    const CLONE_THREAD_FLAGS: u64 = 0x3d0f00;

    #[test]
    fn mmap_of_a_thread_stack_prints_like_strace() {
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK;
        assert_eq!(
            fmt("mmap", &[0, 8392704, 0, flags, u64::MAX, 0], 0x7fff_df79_f000),
            "mmap(NULL, 8392704, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK, -1, 0) = 0x7fffdf79f000"
        );
    }

    #[test]
    fn mmap_fd_is_a_32_bit_int_and_offset_is_hex() {
        assert_eq!(
            fmt("mmap", &[0, 4096, PROT_READ, MAP_PRIVATE | 0x800, 3, 0x2000], 0x7f00_0000_0000),
            "mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_DENYWRITE, 3, 0x2000) = 0x7f0000000000"
        );
        assert_eq!(
            fmt("mmap", &[0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, 0xffff_ffff, 0], err(libc::ENOMEM)),
            "mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = -1 ENOMEM (Cannot allocate memory)"
        );
    }

    #[test]
    fn mprotect_failure_prints_errno_name_and_glibc_message() {
        assert_eq!(
            fmt("mprotect", &[0x7fff_df7a_0000, 8388608, PROT_READ | PROT_WRITE], err(libc::ENOMEM)),
            "mprotect(0x7fffdf7a0000, 8388608, PROT_READ|PROT_WRITE) = -1 ENOMEM (Cannot allocate memory)"
        );
    }

    #[test]
    fn prot_flags_names_bits_and_keeps_unknown_ones_raw() {
        assert_eq!(prot_flags(0), "PROT_NONE");
        assert_eq!(prot_flags(PROT_READ | PROT_WRITE | 0x4), "PROT_READ|PROT_WRITE|PROT_EXEC");
        assert_eq!(prot_flags(PROT_READ | 0x10), "PROT_READ|0x10");
        assert_eq!(prot_flags(0x10), "0x10 /* PROT_??? */");
        assert_eq!(prot_flags(0x0100_0003), "PROT_READ|PROT_WRITE|PROT_GROWSDOWN");
    }

    #[test]
    fn mmap_flags_names_type_then_bits_in_strace_order() {
        assert_eq!(mmap_flags(0x1), "MAP_SHARED");
        assert_eq!(mmap_flags(0x3), "MAP_SHARED_VALIDATE");
        assert_eq!(mmap_flags(0x3 | 0x8_0000), "MAP_SHARED_VALIDATE|MAP_SYNC");
        assert_eq!(mmap_flags(MAP_PRIVATE | 0x10 | MAP_ANONYMOUS), "MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS");
        assert_eq!(
            mmap_flags(MAP_PRIVATE | MAP_ANONYMOUS | 0x4000 | 0x100),
            "MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE|MAP_GROWSDOWN"
        );
        assert_eq!(
            mmap_flags(MAP_PRIVATE | MAP_FIXED_NOREPLACE | 0x1000 | 0x2000 | 0x8000 | 0x1_0000),
            "MAP_PRIVATE|MAP_POPULATE|MAP_NONBLOCK|MAP_EXECUTABLE|MAP_LOCKED|MAP_FIXED_NOREPLACE"
        );
        assert_eq!(mmap_flags(MAP_PRIVATE | 0x400_0000), "MAP_PRIVATE|MAP_UNINITIALIZED");
        // With no type bits the type is MAP_FILE (0), which is how strace names it.
        assert_eq!(mmap_flags(MAP_ANONYMOUS), "MAP_FILE|MAP_ANONYMOUS");
        assert_eq!(mmap_flags(0x4 | 0x200), "0x4 /* MAP_??? */|0x200");
    }

    #[test]
    fn mmap_flags_shows_huge_page_size_only_with_hugetlb() {
        let two_mib = 21 << MAP_HUGE_SHIFT;
        assert_eq!(
            mmap_flags(MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | two_mib),
            "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|21<<MAP_HUGE_SHIFT"
        );
    }

    #[test]
    fn exported_constants_match_the_host_headers() {
        assert_eq!(PROT_READ, libc::PROT_READ as u64);
        assert_eq!(PROT_WRITE, libc::PROT_WRITE as u64);
        assert_eq!(MAP_STACK, libc::MAP_STACK as u64);
        assert_eq!(MAP_FIXED_NOREPLACE, libc::MAP_FIXED_NOREPLACE as u64);
        assert_eq!(MAP_HUGETLB, libc::MAP_HUGETLB as u64);
    }

    #[test]
    fn munmap_and_brk_print_addresses() {
        assert_eq!(fmt("munmap", &[0x7f04_db60_0000, 10485760], 0), "munmap(0x7f04db600000, 10485760) = 0");
        assert_eq!(fmt("brk", &[0], 0x55d4_c3a0_0000), "brk(NULL) = 0x55d4c3a00000");
        assert_eq!(fmt("brk", &[0x55d4_c3a2_1000], 0x55d4_c3a2_1000), "brk(0x55d4c3a21000) = 0x55d4c3a21000");
    }

    #[test]
    fn mremap_shows_new_address_only_when_the_kernel_reads_it() {
        assert_eq!(
            fmt("mremap", &[0x7f00_0000_0000, 4096, 8192, MREMAP_MAYMOVE, 0x7f10_0000_0000], 0x7f20_0000_0000),
            "mremap(0x7f0000000000, 4096, 8192, MREMAP_MAYMOVE) = 0x7f2000000000"
        );
        assert_eq!(
            fmt(
                "mremap",
                &[0x7f00_0000_0000, 4096, 8192, MREMAP_MAYMOVE | MREMAP_FIXED, 0x7f10_0000_0000],
                0x7f10_0000_0000
            ),
            "mremap(0x7f0000000000, 4096, 8192, MREMAP_MAYMOVE|MREMAP_FIXED, 0x7f1000000000) = 0x7f1000000000"
        );
        assert_eq!(
            fmt("mremap", &[0x7f00_0000_0000, 4096, 8192, 0, 0], err(libc::ENOMEM)),
            "mremap(0x7f0000000000, 4096, 8192, 0) = -1 ENOMEM (Cannot allocate memory)"
        );
    }

    #[test]
    fn clone3_flags_come_from_aux_when_captured() {
        let mut ev = call("clone3", &[0x7ffc_1234_5670, 88], 1235);
        ev.header.flags = observer_common::flags::AUX_CLONE_FLAGS;
        ev.aux = CLONE_THREAD_FLAGS;
        assert_eq!(
            format_call(&ev),
            "clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|\
             CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, ...}, 88) = 1235"
        );
    }

    #[test]
    fn clone3_without_captured_flags_prints_the_pointer() {
        assert_eq!(
            fmt("clone3", &[0x7ffc_1234_5670, 88], err(libc::EAGAIN)),
            "clone3(0x7ffc12345670, 88) = -1 EAGAIN (Resource temporarily unavailable)"
        );
    }

    #[test]
    fn clone3_flags_include_clone3_only_bits() {
        assert_eq!(clone3_flags(0), "0");
        assert_eq!(clone3_flags(0x80 | (1 << 32)), "CLONE_NEWTIME|CLONE_CLEAR_SIGHAND");
        assert_eq!(clone3_flags(0x100 | (1 << 40)), "CLONE_VM|0x10000000000");
    }

    #[test]
    fn clone_of_a_thread_prints_named_args_in_strace_order() {
        let flags = CLONE_THREAD_FLAGS;
        assert_eq!(
            fmt("clone", &[flags, 0x7f04_e3ff_efb0, 0x7f04_e3ff_f9d0, 0x7f04_e3ff_f9d0, 0x7f04_e3ff_f6c0], 1236),
            "clone(child_stack=0x7f04e3ffefb0, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|\
             CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, \
             parent_tid=0x7f04e3fff9d0, tls=0x7f04e3fff6c0, child_tidptr=0x7f04e3fff9d0) = 1236"
        );
    }

    #[test]
    fn clone_of_a_process_ends_flags_with_the_exit_signal() {
        let flags = CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID | libc::SIGCHLD as u64;
        assert_eq!(
            fmt("clone", &[flags, 0, 0, 0x7f04_e4e0_ce50, 0], 5821),
            "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, \
             child_tidptr=0x7f04e4e0ce50) = 5821"
        );
        assert_eq!(fmt("clone", &[17, 0, 0, 0, 0], 42), "clone(child_stack=NULL, flags=SIGCHLD) = 42");
    }

    #[test]
    fn clone_flags_splits_bits_and_exit_signal() {
        assert_eq!(clone_flags(0), "0");
        assert_eq!(clone_flags(17), "SIGCHLD");
        assert_eq!(clone_flags(0x4100 | 17), "CLONE_VM|CLONE_VFORK|SIGCHLD");
        assert_eq!(clone_flags(0x10_0000), "CLONE_PARENT_SETTID");
        assert_eq!(clone_flags(0x40_0000), "0x400000 /* CLONE_??? */");
        assert_eq!(clone_flags(0x100 | 0x40_0000), "CLONE_VM|0x400000");
    }

    #[test]
    fn fork_and_vfork_take_no_arguments() {
        assert_eq!(fmt("fork", &[], 1234), "fork() = 1234");
        assert_eq!(fmt("vfork", &[], 1234), "vfork() = 1234");
    }

    #[test]
    fn no_return_records_end_in_question_mark() {
        let mut ev = call("exit_group", &[0], 0);
        ev.header.flags = NO_RETURN;
        assert_eq!(format_call(&ev), "exit_group(0) = ?");
        let mut ev = call("exit", &[0xffff_ffff], 0);
        ev.header.flags = NO_RETURN;
        assert_eq!(format_call(&ev), "exit(-1) = ?");
    }

    #[test]
    fn unfinished_records_stop_after_the_arguments() {
        let mut ev = call("futex", &[0x55d4_c3a0, 0x80, 2, 0, 0, 0], 0);
        ev.header.flags = UNFINISHED;
        assert_eq!(format_call(&ev), "futex(0x55d4c3a0, FUTEX_WAIT_PRIVATE, 2, NULL <unfinished ...>");
        let mut ev = call("wait4", &[u64::MAX, 0x7ffd_0000_1000, 0, 0], 0);
        ev.header.flags = UNFINISHED;
        assert_eq!(format_call(&ev), "wait4(-1, 0x7ffd00001000, 0, NULL <unfinished ...>");
    }

    #[test]
    fn futex_wait_private_shows_value_and_timeout() {
        assert_eq!(
            fmt("futex", &[0x55d4_c3a0, 0x80, 2, 0, 0, 0], 0),
            "futex(0x55d4c3a0, FUTEX_WAIT_PRIVATE, 2, NULL) = 0"
        );
        assert_eq!(
            fmt("futex", &[0x55d4_c3a0, 0, 2, 0x7ffd_0000_2000, 0, 0], err(libc::ETIMEDOUT)),
            "futex(0x55d4c3a0, FUTEX_WAIT, 2, 0x7ffd00002000) = -1 ETIMEDOUT (Connection timed out)"
        );
    }

    #[test]
    fn futex_shows_only_the_arguments_its_op_uses() {
        assert_eq!(
            fmt("futex", &[0x7f04_e4d4_e6f8, 0x81, 1, 0x7ff, 0x55, 0x66], 1),
            "futex(0x7f04e4d4e6f8, FUTEX_WAKE_PRIVATE, 1) = 1"
        );
        assert_eq!(
            fmt("futex", &[0x5566_c74a_7440, 0x189, 0, 0, 0, 0xffff_ffff], 0),
            "futex(0x5566c74a7440, FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME, 0, NULL, \
             FUTEX_BITSET_MATCH_ANY) = 0"
        );
        assert_eq!(
            fmt("futex", &[0x1000, 0x8a, 3, 0, 0, 0x4], 0),
            "futex(0x1000, FUTEX_WAKE_BITSET_PRIVATE, 3, 0x4) = 0"
        );
        assert_eq!(fmt("futex", &[0x1000, 0x87, 0, 0, 0, 0], 0), "futex(0x1000, FUTEX_UNLOCK_PI_PRIVATE) = 0");
        assert_eq!(
            fmt("futex", &[0x1000, 0x86, 0, 0x7ffd_0000_2000, 0, 0], 0),
            "futex(0x1000, FUTEX_LOCK_PI_PRIVATE, 0x7ffd00002000) = 0"
        );
        assert_eq!(
            fmt("futex", &[0x1000, 0x84, 1, 0x7fff_ffff, 0x2000, 7], 1),
            "futex(0x1000, FUTEX_CMP_REQUEUE_PRIVATE, 1, 2147483647, 0x2000, 7) = 1"
        );
        assert_eq!(
            fmt("futex", &[0x1000, 0x83, 1, 2, 0x2000, 7], 1),
            "futex(0x1000, FUTEX_REQUEUE_PRIVATE, 1, 2, 0x2000) = 1"
        );
        assert_eq!(
            fmt("futex", &[0x1000, 0x8b, 0, 0, 0x2000, 0], 0),
            "futex(0x1000, FUTEX_WAIT_REQUEUE_PI_PRIVATE, 0, NULL, 0x2000) = 0"
        );
    }

    #[test]
    fn futex_ops_strace_has_no_name_for_are_printed_raw() {
        assert_eq!(futex_op(2 | 128), "FUTEX_FD|FUTEX_PRIVATE_FLAG");
        assert_eq!(futex_op(1 | 256), "0x101 /* FUTEX_??? */");
        assert_eq!(futex_op(14), "0xe /* FUTEX_??? */");
        assert_eq!(
            fmt("futex", &[0x1000, 14, 1, 0x2000, 0x3000, 0x4], 0),
            "futex(0x1000, 0xe /* FUTEX_??? */, 1, 0x2000, 0x3000, 0x4) = 0"
        );
    }

    #[test]
    fn futex_wake_op_unpacks_the_operation_like_strace() {
        // Expected strings from strace's own tests (tests/futex.c).
        assert_eq!(futex_wake_op(0), "FUTEX_OP_SET<<28|0<<12|FUTEX_OP_CMP_EQ<<24|0");
        assert_eq!(futex_wake_op(0x5000_0000), "0x5<<28 /* FUTEX_OP_??? */|0<<12|FUTEX_OP_CMP_EQ<<24|0");
        assert_eq!(
            futex_wake_op(0xa0ca_ffee),
            "FUTEX_OP_OPARG_SHIFT<<28|FUTEX_OP_OR<<28|0xcaf<<12|FUTEX_OP_CMP_EQ<<24|0xfee"
        );
        assert_eq!(futex_wake_op(0x0123_4567), "FUTEX_OP_SET<<28|0x234<<12|FUTEX_OP_CMP_NE<<24|0x567");
        assert_eq!(futex_wake_op(0x0f00_0000), "FUTEX_OP_SET<<28|0<<12|0xf<<24 /* FUTEX_OP_CMP_??? */|0");
        assert_eq!(
            fmt("futex", &[0x1000, 0x85, 1, 1, 0x2000, 0x0400_0001], 1),
            "futex(0x1000, FUTEX_WAKE_OP_PRIVATE, 1, 1, 0x2000, \
             FUTEX_OP_SET<<28|0<<12|FUTEX_OP_CMP_GT<<24|0x1) = 1"
        );
    }

    #[test]
    fn signal_senders_print_pids_as_ints_and_signal_names() {
        assert_eq!(fmt("kill", &[1234, 15], 0), "kill(1234, SIGTERM) = 0");
        assert_eq!(fmt("kill", &[(-1234i64) as u64, 9], 0), "kill(-1234, SIGKILL) = 0");
        assert_eq!(fmt("kill", &[1234, 0], 0), "kill(1234, 0) = 0");
        assert_eq!(fmt("kill", &[99999, 99], err(libc::EINVAL)), "kill(99999, 99) = -1 EINVAL (Invalid argument)");
        assert_eq!(fmt("tkill", &[13, 34], 0), "tkill(13, SIGRT_2) = 0");
        assert_eq!(fmt("tgkill", &[12, 13, 9], 0), "tgkill(12, 13, SIGKILL) = 0");
        assert_eq!(
            fmt("tgkill", &[12, 13, 6], err(libc::ESRCH)),
            "tgkill(12, 13, SIGABRT) = -1 ESRCH (No such process)"
        );
        assert_eq!(
            fmt("rt_sigqueueinfo", &[1234, 10, 0x7ffd_0000_3000], 0),
            "rt_sigqueueinfo(1234, SIGUSR1, 0x7ffd00003000) = 0"
        );
        assert_eq!(
            fmt("rt_tgsigqueueinfo", &[1234, 1236, 32, 0x7ffd_0000_3000], 0),
            "rt_tgsigqueueinfo(1234, 1236, SIGRTMIN, 0x7ffd00003000) = 0"
        );
    }

    #[test]
    fn wait4_and_waitid_decode_options_and_id_types() {
        assert_eq!(
            fmt("wait4", &[u64::MAX, 0x7ffd_0000_1000, 0, 0], 1234),
            "wait4(-1, 0x7ffd00001000, 0, NULL) = 1234"
        );
        assert_eq!(
            fmt("wait4", &[u64::MAX, 0, 1 | 0x4000_0000, 0], err(libc::ECHILD)),
            "wait4(-1, NULL, WNOHANG|__WALL, NULL) = -1 ECHILD (No child processes)"
        );
        assert_eq!(
            fmt("waitid", &[1, 1234, 0x7ffd_0000_4000, 4, 0], 0),
            "waitid(P_PID, 1234, 0x7ffd00004000, WEXITED, NULL) = 0"
        );
        assert_eq!(
            fmt("waitid", &[0, 0, 0x7ffd_0000_4000, 4 | 2 | 8 | 0x100_0000, 0], 0),
            "waitid(P_ALL, 0, 0x7ffd00004000, WSTOPPED|WEXITED|WCONTINUED|WNOWAIT, NULL) = 0"
        );
        assert_eq!(
            fmt("waitid", &[7, 3, 0, 0x40, 0], err(libc::EINVAL)),
            "waitid(0x7 /* P_??? */, 3, NULL, 0x40 /* W??? */, NULL) = -1 EINVAL (Invalid argument)"
        );
    }

    #[test]
    fn read_and_write_show_only_the_fd() {
        assert_eq!(fmt("read", &[3], 42), "read(3, ...) = 42");
        assert_eq!(fmt("write", &[1], 6), "write(1, ...) = 6");
        assert_eq!(fmt("write", &[1], err(libc::EPIPE)), "write(1, ...) = -1 EPIPE (Broken pipe)");
    }

    #[test]
    fn sleeps_print_pointers_and_decode_clocks() {
        assert_eq!(fmt("nanosleep", &[0x7ffd_0000_5000, 0], 0), "nanosleep(0x7ffd00005000, NULL) = 0");
        assert_eq!(
            fmt("clock_nanosleep", &[1, 0, 0x7ffd_0000_5000, 0x7ffd_0000_5010], 0),
            "clock_nanosleep(CLOCK_MONOTONIC, 0, 0x7ffd00005000, 0x7ffd00005010) = 0"
        );
        assert_eq!(
            fmt("clock_nanosleep", &[0, 1, 0x7ffd_0000_5000, 0], 0),
            "clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, 0x7ffd00005000, NULL) = 0"
        );
    }

    #[test]
    fn negative_clock_ids_decode_to_cpu_and_fd_clocks() {
        // MAKE_PROCESS_CPUCLOCK(pid, clock) = (~pid << 3) | clock.
        let process_sched = (!1234i32 << 3) | 2;
        assert_eq!(clock_name(process_sched), "MAKE_PROCESS_CPUCLOCK(1234, CPUCLOCK_SCHED)");
        let thread_prof = (!1235i32 << 3) | 4;
        assert_eq!(clock_name(thread_prof), "MAKE_THREAD_CPUCLOCK(1235, 0x4 /* CPUCLOCK_??? */)");
        let fd_clock = (!5i32 << 3) | 3;
        assert_eq!(clock_name(fd_clock), "FD_TO_CLOCKID(5)");
        assert_eq!(clock_name(12), "0xc /* CLOCK_??? */");
    }

    #[test]
    fn interrupted_sleeps_print_restart_codes_with_question_mark() {
        assert_eq!(
            fmt("clock_nanosleep", &[1, 0, 0x7ffd_0000_5000, 0x7ffd_0000_5010], err(516)),
            "clock_nanosleep(CLOCK_MONOTONIC, 0, 0x7ffd00005000, 0x7ffd00005010) = ? \
             ERESTART_RESTARTBLOCK (Interrupted by signal)"
        );
        assert_eq!(
            fmt("futex", &[0x55d4_c3a0, 0x80, 2, 0, 0, 0], err(512)),
            "futex(0x55d4c3a0, FUTEX_WAIT_PRIVATE, 2, NULL) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)"
        );
        assert_eq!(fmt("fork", &[], err(513)), "fork() = ? ERESTARTNOINTR (To be restarted)");
        assert_eq!(
            fmt("pselect6", &[0, 0, 0, 0, 0, 0], err(514)),
            "pselect6(0, NULL, NULL, NULL, NULL, NULL) = ? ERESTARTNOHAND (To be restarted if no handler)"
        );
    }

    #[test]
    fn poll_and_select_say_timeout_when_nothing_was_ready() {
        assert_eq!(fmt("poll", &[0x7ffd_0000_6000, 1, u64::MAX], 1), "poll(0x7ffd00006000, 1, -1) = 1");
        assert_eq!(fmt("poll", &[0x7ffd_0000_6000, 1, 100], 0), "poll(0x7ffd00006000, 1, 100) = 0 (Timeout)");
        assert_eq!(
            fmt("ppoll", &[0x7ffd_0000_6000, 2, 0x7ffd_0000_6100, 0, 8], 0),
            "ppoll(0x7ffd00006000, 2, 0x7ffd00006100, NULL, 8) = 0 (Timeout)"
        );
        assert_eq!(
            fmt("select", &[4, 0x7ffd_0000_7000, 0, 0, 0x7ffd_0000_7100], 1),
            "select(4, 0x7ffd00007000, NULL, NULL, 0x7ffd00007100) = 1"
        );
        assert_eq!(
            fmt("pselect6", &[4, 0x7ffd_0000_7000, 0, 0, 0x7ffd_0000_7100, 0x7ffd_0000_7200], 0),
            "pselect6(4, 0x7ffd00007000, NULL, NULL, 0x7ffd00007100, 0x7ffd00007200) = 0 (Timeout)"
        );
    }

    #[test]
    fn epoll_waits_print_timeout_as_signed_int() {
        assert_eq!(
            fmt("epoll_wait", &[5, 0x7ffd_0000_8000, 16, 0xffff_ffff], 2),
            "epoll_wait(5, 0x7ffd00008000, 16, -1) = 2"
        );
        assert_eq!(fmt("epoll_wait", &[5, 0x7ffd_0000_8000, 16, 0], 0), "epoll_wait(5, 0x7ffd00008000, 16, 0) = 0");
        assert_eq!(
            fmt("epoll_pwait", &[5, 0x7ffd_0000_8000, 16, u64::MAX, 0, 8], 1),
            "epoll_pwait(5, 0x7ffd00008000, 16, -1, NULL, 8) = 1"
        );
        assert_eq!(
            fmt("epoll_pwait2", &[5, 0x7ffd_0000_8000, 16, 0x7ffd_0000_8100, 0, 8], 1),
            "epoll_pwait2(5, 0x7ffd00008000, 16, 0x7ffd00008100, NULL, 8) = 1"
        );
    }

    #[test]
    fn execs_print_pointers_only() {
        assert_eq!(
            fmt("execve", &[0x55d4_c3a0_1000, 0x7ffd_0000_9000, 0x7ffd_0000_9100], 0),
            "execve(0x55d4c3a01000, 0x7ffd00009000, 0x7ffd00009100) = 0"
        );
        assert_eq!(
            fmt("execveat", &[(-100i64) as u64, 0x55d4_c3a0_1000, 0x7ffd_0000_9000, 0x7ffd_0000_9100, 0], err(2)),
            "execveat(AT_FDCWD, 0x55d4c3a01000, 0x7ffd00009000, 0x7ffd00009100, 0) = -1 ENOENT (No such file or directory)"
        );
        assert_eq!(
            fmt("execveat", &[3, 0x55d4_c3a0_1000, 0, 0, 0x1000], 0),
            "execveat(3, 0x55d4c3a01000, NULL, NULL, AT_EMPTY_PATH) = 0"
        );
    }

    #[test]
    fn unknown_syscall_numbers_print_hex_name_and_hex_args() {
        assert_eq!(
            format_call(&record(0x1a4, 3, &[1, 0, 0x7ffd_0000_a000], 0)),
            "syscall_0x1a4(0x1, 0, 0x7ffd0000a000) = 0"
        );
        assert_eq!(
            format_call(&record(0x1a4, 0, &[], err(libc::ENOSYS))),
            "syscall_0x1a4() = -1 ENOSYS (Function not implemented)"
        );
        // nargs beyond the six kept arguments must not overrun.
        assert_eq!(
            format_call(&record(500, 9, &[1, 2, 3, 4, 5, 6], 7)),
            "syscall_0x1f4(0x1, 0x2, 0x3, 0x4, 0x5, 0x6) = 7"
        );
    }

    #[test]
    fn errnos_without_a_glibc_text_follow_strace() {
        assert_eq!(fmt("read", &[3], err(515)), "read(3, ...) = -1 ENOIOCTLCMD (Unknown error 515)");
        assert_eq!(fmt("read", &[3], err(41)), "read(3, ...) = -1 (errno 41)");
        assert_eq!(fmt("read", &[3], err(4095)), "read(3, ...) = -1 (errno 4095)");
    }

    #[test]
    fn large_returns_outside_the_errno_range_are_successes() {
        assert_eq!(fmt("read", &[3], -4096), "read(3, ...) = -4096");
        assert_eq!(
            fmt("mmap", &[0, 4096, 0, MAP_PRIVATE | MAP_ANONYMOUS, u64::MAX, 0], 0),
            "mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0"
        );
    }

    #[test]
    fn value_of_name_reads_back_every_name_the_tables_print() {
        for (names, tables) in [
            (Names::Prot, &[PROT][..]),
            (Names::Mmap, &[MAP_TYPES, MAP_FLAGS][..]),
            (Names::Mremap, &[MREMAP_FLAGS][..]),
            (Names::Clone, &[CLONE_FLAGS, CLONE3_FLAGS][..]),
            (Names::WaitOptions, &[WAIT_OPTIONS][..]),
            (Names::WaitidType, &[WAITID_TYPES][..]),
            (Names::Clock, &[CLOCKS][..]),
            (Names::ClockFlags, &[CLOCK_FLAGS][..]),
            (Names::ExecveatFlags, &[EXECVEAT_FLAGS][..]),
        ] {
            for table in tables {
                for &(value, name) in *table {
                    assert_eq!(value_of_name(names, name), Some(value), "{name}");
                }
            }
        }
        assert_eq!(value_of_name(Names::Mmap, "MAP_HUGE_SHIFT"), Some(26));
        assert_eq!(value_of_name(Names::Mmap, "PROT_READ"), None);
        assert_eq!(value_of_name(Names::RlimitResource, &rlimit_resource(9)), Some(9));
        assert_eq!(value_of_name(Names::Dirfd, "AT_FDCWD"), Some(-100i64 as u64));
    }

    #[test]
    fn futex_names_read_back_to_the_op_that_prints_them() {
        for op in [0, 1, 9, 0x80, 0x81, 0x89, 0x189, 0x109, 6 | 0x80] {
            let text = futex_op(op);
            let value = text.split('|').map(|t| value_of_name(Names::FutexOp, t).unwrap()).fold(0, |a, b| a | b);
            assert_eq!(value, op as u64, "{text}");
        }
        assert_eq!(value_of_name(Names::FutexVal3, "FUTEX_BITSET_MATCH_ANY"), Some(0xffff_ffff));
        assert_eq!(value_of_name(Names::FutexVal3, "FUTEX_OP_CMP_GT"), Some(4));
        assert_eq!(value_of_name(Names::FutexOp, "FUTEX_NOPE_PRIVATE"), None);
    }

    #[test]
    fn every_watched_syscall_has_a_decoder() {
        for sc in observer_common::syscalls::WATCHED {
            let ev = record(sc.nr, sc.nargs.into(), &[], 0);
            assert!(decode(sc.name, &ev).is_some(), "{} falls back to raw arguments", sc.name);
        }
    }
}
