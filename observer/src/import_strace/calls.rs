//! A watched syscall's argument text, as strace printed it, turned back into the registers the
//! kernel side records: which printed argument is which register, read through the shared decode
//! tables; what strace printed instead of a pointer (a string, a struct, an array) cannot be
//! recovered and is 0 with `flags::UNKNOWN_ARGS`. clone3's flags and prlimit64/setrlimit's new
//! soft limit go to `aux`, as the kernel side reads them from user memory.
use observer_common::{flags, syscalls, MAX_ARGS};

use super::{scan::split_args, value};
use crate::decode::Names;

/// The record fields of one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Built {
    pub nr: u32,
    pub nargs: u32,
    pub args: [u64; MAX_ARGS],
    pub aux: u64,
    /// `AUX_CLONE_FLAGS`, `AUX_RLIMIT_CUR`, `UNKNOWN_ARGS`.
    pub flags: u16,
}

/// How one printed argument reads back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arg {
    /// A number.
    Int,
    /// A pointer: a number or NULL; anything else is what strace read through it.
    Ptr,
    /// An fd, with or without a `-y` decoration, or AT_FDCWD.
    Fd,
    Flags(Names),
    Signal,
    /// prlimit64/setrlimit's new limit: NULL, or `{rlim_cur=N, ...}` for `aux`.
    NewLimit,
    /// clone3's `struct clone_args`: its `flags` go to `aux`.
    CloneArgs,
}

use Arg::*;

/// (register, how to read it) per printed argument, for the syscalls whose printed order is fixed.
fn layout(name: &str) -> &'static [(usize, Arg)] {
    match name {
        "mmap" => &[(0, Ptr), (1, Int), (2, Flags(Names::Prot)), (3, Flags(Names::Mmap)), (4, Fd), (5, Int)],
        "munmap" => &[(0, Ptr), (1, Int)],
        "mprotect" => &[(0, Ptr), (1, Int), (2, Flags(Names::Prot))],
        "mremap" => &[(0, Ptr), (1, Int), (2, Int), (3, Flags(Names::Mremap)), (4, Ptr)],
        "brk" => &[(0, Ptr)],
        "clone3" => &[(0, CloneArgs), (1, Int)],
        "execve" => &[(0, Ptr), (1, Ptr), (2, Ptr)],
        "execveat" => &[(0, Fd), (1, Ptr), (2, Ptr), (3, Ptr), (4, Flags(Names::ExecveatFlags))],
        "exit" | "exit_group" => &[(0, Int)],
        "setpgid" => &[(0, Int), (1, Int)],
        "kill" | "tkill" => &[(0, Int), (1, Signal)],
        "tgkill" => &[(0, Int), (1, Int), (2, Signal)],
        "rt_sigqueueinfo" => &[(0, Int), (1, Signal), (2, Ptr)],
        "rt_tgsigqueueinfo" => &[(0, Int), (1, Int), (2, Signal), (3, Ptr)],
        "poll" => &[(0, Ptr), (1, Int), (2, Int)],
        "ppoll" => &[(0, Ptr), (1, Int), (2, Ptr), (3, Ptr), (4, Int)],
        "select" => &[(0, Int), (1, Ptr), (2, Ptr), (3, Ptr), (4, Ptr)],
        "pselect6" => &[(0, Int), (1, Ptr), (2, Ptr), (3, Ptr), (4, Ptr), (5, Ptr)],
        "epoll_wait" => &[(0, Fd), (1, Ptr), (2, Int), (3, Int)],
        "epoll_pwait" => &[(0, Fd), (1, Ptr), (2, Int), (3, Int), (4, Ptr), (5, Int)],
        "epoll_pwait2" => &[(0, Fd), (1, Ptr), (2, Int), (3, Ptr), (4, Ptr), (5, Int)],
        "nanosleep" => &[(0, Ptr), (1, Ptr)],
        "clock_nanosleep" => &[(0, Flags(Names::Clock)), (1, Flags(Names::ClockFlags)), (2, Ptr), (3, Ptr)],
        "wait4" => &[(0, Int), (1, Ptr), (2, Flags(Names::WaitOptions)), (3, Ptr)],
        "waitid" => &[(0, Flags(Names::WaitidType)), (1, Int), (2, Ptr), (3, Flags(Names::WaitOptions)), (4, Ptr)],
        // Only the fd is recorded, never the buffer or its size.
        "read" | "write" => &[(0, Fd)],
        "prlimit64" => &[(0, Int), (1, Flags(Names::RlimitResource)), (2, NewLimit), (3, Ptr)],
        "setrlimit" => &[(0, Flags(Names::RlimitResource)), (1, NewLimit)],
        // fork, vfork; clone and futex are laid out by `clone_slot` and `futex_layout`.
        _ => &[],
    }
}

/// Which register a printed futex argument is: it depends on the command, as strace prints only
/// the arguments the command uses.
fn futex_layout(op: Option<u64>) -> &'static [(usize, Arg)] {
    const OP: (usize, Arg) = (1, Flags(Names::FutexOp));
    const VAL3: (usize, Arg) = (5, Flags(Names::FutexVal3));
    match op.map(|op| op & 127) {
        Some(0) => &[(0, Ptr), OP, (2, Int), (3, Ptr)],
        Some(1 | 2) => &[(0, Ptr), OP, (2, Int)],
        Some(3) => &[(0, Ptr), OP, (2, Int), (3, Int), (4, Ptr)],
        Some(4 | 12) => &[(0, Ptr), OP, (2, Int), (3, Int), (4, Ptr), (5, Int)],
        Some(5) => &[(0, Ptr), OP, (2, Int), (3, Int), (4, Ptr), VAL3],
        Some(6 | 13) => &[(0, Ptr), OP, (3, Ptr)],
        Some(7 | 8) => &[(0, Ptr), OP],
        Some(9) => &[(0, Ptr), OP, (2, Int), (3, Ptr), VAL3],
        Some(10) => &[(0, Ptr), OP, (2, Int), VAL3],
        Some(11) => &[(0, Ptr), OP, (2, Int), (3, Ptr), (4, Ptr)],
        _ => &[(0, Ptr), OP, (2, Int), (3, Ptr), (4, Ptr), (5, Int)],
    }
}

/// clone(2)'s arguments are printed by name (`child_stack=`, `flags=`, ...), in an order of
/// strace's; the registers are flags, stack, parent_tid, child_tid, tls.
fn clone_slot(key: &str) -> Option<(usize, Arg)> {
    Some(match key {
        "flags" => (0, Flags(Names::Clone)),
        "child_stack" | "stack" => (1, Ptr),
        "parent_tid" | "parent_tidptr" | "ptid" => (2, Ptr),
        "child_tidptr" | "child_tid" | "ctid" => (3, Ptr),
        "tls" | "newtls" => (4, Ptr),
        _ => return None,
    })
}

const RAW_CLONE: [(usize, Arg); 5] = [(0, Flags(Names::Clone)), (1, Ptr), (2, Ptr), (3, Ptr), (4, Ptr)];

/// The soft limit in `{rlim_cur=8192*1024, rlim_max=RLIM64_INFINITY}`.
fn rlim_cur(text: &str) -> Option<u64> {
    match value::field(text, "rlim_cur")? {
        "RLIM64_INFINITY" | "RLIM_INFINITY" => Some(u64::MAX),
        v => value::reg(v),
    }
}

impl Built {
    fn set(&mut self, slot: usize, arg: Arg, text: &str) {
        let text = text.trim();
        let value = match arg {
            Int => value::reg(text),
            Ptr => value::reg(text),
            Fd => value::reg(text).or_else(|| value::flags(text, Names::Dirfd)),
            Flags(names) => value::flags(text, names),
            Signal => value::signal(text),
            NewLimit => match value::reg(text) {
                Some(v) => Some(v),
                None => {
                    if let Some(cur) = rlim_cur(text) {
                        self.aux = cur;
                        self.flags |= flags::AUX_RLIMIT_CUR;
                    }
                    None
                }
            },
            CloneArgs => match value::reg(text) {
                Some(v) => Some(v),
                None => {
                    if let Some(f) = value::field(text, "flags").and_then(|f| value::flags(f, Names::Clone)) {
                        self.aux = f;
                        self.flags |= flags::AUX_CLONE_FLAGS;
                    }
                    None
                }
            },
        };
        match value {
            Some(v) if slot < MAX_ARGS => self.args[slot] = v,
            Some(_) => {}
            None => self.flags |= flags::UNKNOWN_ARGS,
        }
    }
}

/// The record fields of a call of watched syscall `name` with printed arguments `args`; `None` when
/// observer does not record `name`.
pub fn build(name: &str, args: &str) -> Option<Built> {
    let sc = syscalls::by_name(name)?;
    let mut built = Built { nr: sc.nr, nargs: sc.nargs.into(), ..Built::default() };
    let printed = split_args(args);
    match name {
        "clone" => {
            for (i, text) in printed.iter().enumerate() {
                match value::named(text) {
                    Some((key, v)) => {
                        if let Some((slot, arg)) = clone_slot(key) {
                            built.set(slot, arg, v);
                        }
                    }
                    None => {
                        if let Some(&(slot, arg)) = RAW_CLONE.get(i) {
                            built.set(slot, arg, text);
                        }
                    }
                }
            }
        }
        "futex" => {
            let op = printed.get(1).and_then(|t| value::flags(t, Names::FutexOp));
            for (&(slot, arg), text) in futex_layout(op).iter().zip(&printed) {
                built.set(slot, arg, text);
            }
        }
        _ => {
            for (&(slot, arg), text) in layout(name).iter().zip(&printed) {
                built.set(slot, arg, text);
            }
        }
    }
    // The kernel keeps `nargs` arguments and zeroes the rest (read/write: the fd only).
    let keep = (built.nargs as usize).min(MAX_ARGS);
    built.args[keep..].iter_mut().for_each(|a| *a = 0);
    Some(built)
}

/// Addresses and lengths the kernel accepts are below this (x86_64 user space, 5-level paging).
const ADDRESS_SPACE_END: u64 = 1 << 57;

/// Whether a successful call is one the kernel could have returned: mmap, munmap and mremap
/// refuse ranges past the end of the address space, so a line saying otherwise is damaged.
pub fn possible(name: &str, built: &Built, ret: i64) -> bool {
    let within = |v: u64| v < ADDRESS_SPACE_END;
    let a = &built.args;
    match name {
        "mmap" => within(ret as u64) && within(a[1]),
        "munmap" => within(a[0]) && within(a[1]),
        "mremap" => within(ret as u64) && within(a[0]) && within(a[1]) && within(a[2]),
        _ => true,
    }
}

/// Whether a successful clone-family call created a thread (CLONE_THREAD) rather than a process;
/// `None` when its flags are not known (clone3 with an unreadable struct).
pub fn creates_thread(name: &str, built: &Built) -> Option<bool> {
    match name {
        "clone" if built.flags & flags::UNKNOWN_ARGS != 0 && built.args[0] == 0 => None,
        "clone" => Some(built.args[0] & syscalls::CLONE_THREAD != 0),
        "clone3" if built.flags & flags::AUX_CLONE_FLAGS != 0 => Some(built.aux & syscalls::CLONE_THREAD != 0),
        "clone3" => None,
        "fork" | "vfork" => Some(false),
        _ => None,
    }
}

/// Whether `name` creates a task.
pub fn is_clone(name: &str) -> bool {
    matches!(name, "clone" | "clone3" | "fork" | "vfork")
}

/// The path and argv of an execve / execveat as strace printed them (argv `None` when it was not
/// printed as an array).
pub fn exec_target(name: &str, args: &str) -> Option<(Vec<u8>, Option<Vec<String>>)> {
    let printed = split_args(args);
    let (path, argv) = match name {
        "execve" => (printed.first()?, printed.get(1)),
        "execveat" => (printed.get(1)?, printed.get(2)),
        _ => return None,
    };
    Some((value::string(path)?, argv.and_then(|a| value::strings(a))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(name: &str, text: &str) -> Built {
        build(name, text).unwrap_or_else(|| panic!("{name} is watched"))
    }

    #[test]
    fn mmap_of_a_thread_stack_keeps_every_register() {
        let b = args("mmap", "NULL, 8392704, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK, -1, 0");
        assert_eq!((b.nr, b.nargs), (9, 6));
        assert_eq!(b.args, [0, 8392704, 0, 0x20022, u64::MAX, 0]);
        assert_eq!(b.flags, 0);
    }

    #[test]
    fn mmap_of_a_file_with_a_dash_y_fd() {
        let b = args(
            "mmap",
            "NULL, 27028, PROT_READ, MAP_SHARED, 3</usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache>, 0",
        );
        assert_eq!(b.args, [0, 27028, 1, 1, 3, 0]);
    }

    #[test]
    fn mprotect_committing_a_stack() {
        let b = args("mprotect", "0x7ff4423cb000, 8388608, PROT_READ|PROT_WRITE");
        assert_eq!(b.args[..3], [0x7ff4_423c_b000, 8388608, 3]);
    }

    #[test]
    fn read_keeps_only_the_fd_like_the_kernel_side() {
        let b = args("read", "3</etc/passwd>, \"root:x:0:0:root:/root:/bin/bash\\n\"..., 4096");
        assert_eq!((b.nargs, b.args, b.flags), (1, [3, 0, 0, 0, 0, 0], 0));
    }

    #[test]
    fn clone3_flags_go_to_aux_and_the_struct_pointer_is_unknown() {
        let b = args(
            "clone3",
            "{flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7ff444bce990, parent_tid=0x7ff444bce990, exit_signal=0, stack=0x7ff4443ce000, stack_size=0x7fff80, tls=0x7ff444bce6c0} => {parent_tid=[4164]}, 88",
        );
        assert_eq!(b.aux, 0x003d_0f00);
        assert_eq!(b.flags, flags::AUX_CLONE_FLAGS | flags::UNKNOWN_ARGS);
        assert_eq!(b.args[..2], [0, 88]);
        assert_eq!(creates_thread("clone3", &b), Some(true));
    }

    #[test]
    fn clone_reads_named_arguments_into_their_registers() {
        let b = args(
            "clone",
            "child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f0a1b2c3a10",
        );
        assert_eq!(b.args, [0x0120_0011, 0, 0, 0x7f0a_1b2c_3a10, 0, 0]);
        assert_eq!(creates_thread("clone", &b), Some(false));
        let t = args(
            "clone",
            "child_stack=0x7f00, flags=CLONE_VM|CLONE_THREAD|CLONE_PARENT_SETTID, parent_tid=[77], tls=0x7f10",
        );
        assert_eq!(creates_thread("clone", &t), Some(true));
        assert_eq!(t.flags, flags::UNKNOWN_ARGS, "parent_tid was printed as its content");
        assert_eq!(creates_thread("fork", &args("fork", "")), Some(false));
    }

    #[test]
    fn prlimit_new_soft_limit_goes_to_aux() {
        let b = args("prlimit64", "0, RLIMIT_DATA, {rlim_cur=40960*1024, rlim_max=40960*1024}, NULL");
        assert_eq!((b.args[..2].to_vec(), b.aux), (vec![0, 2], 41_943_040));
        assert_eq!(b.flags, flags::AUX_RLIMIT_CUR | flags::UNKNOWN_ARGS);
        let inf = args("setrlimit", "RLIMIT_AS, {rlim_cur=RLIM_INFINITY, rlim_max=RLIM_INFINITY}");
        assert_eq!((inf.args[0], inf.aux), (9, u64::MAX));
        let get = args("prlimit64", "0, RLIMIT_STACK, NULL, {rlim_cur=8192*1024, rlim_max=RLIM64_INFINITY}");
        assert_eq!(get.flags & flags::AUX_RLIMIT_CUR, 0, "only a new limit is recorded");
    }

    #[test]
    fn futex_arguments_follow_the_command() {
        let wait =
            args("futex", "0x7ff4443cd990, FUTEX_WAIT_BITSET|FUTEX_CLOCK_REALTIME, 4165, NULL, FUTEX_BITSET_MATCH_ANY");
        assert_eq!(wait.args, [0x7ff4_443c_d990, 9 | 256, 4165, 0, 0, 0xffff_ffff]);
        let wake = args("futex", "0x7f2b327d4a4c, FUTEX_WAKE_PRIVATE, 2147483647");
        assert_eq!(wake.args[..3], [0x7f2b_327d_4a4c, 129, 2_147_483_647]);
        let timed = args("futex", "0x55d4c3a0, FUTEX_WAIT_PRIVATE, 2, {tv_sec=1, tv_nsec=0}");
        assert_eq!(timed.flags, flags::UNKNOWN_ARGS);
    }

    #[test]
    fn strings_and_structs_in_pointer_places_are_unknown() {
        let b =
            args("execve", "\"/usr/bin/prlimit\", [\"prlimit\", \"--data=41943040\"], 0x7ffe7aa8fa58 /* 35 vars */");
        assert_eq!(b.args[..3], [0, 0, 0x7ffe_7aa8_fa58]);
        assert_eq!(b.flags, flags::UNKNOWN_ARGS);
        let w = args("wait4", "-1, [{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL");
        assert_eq!((w.args[0], w.args[2], w.flags), (u64::MAX, 0, flags::UNKNOWN_ARGS));
    }

    #[test]
    fn signals_and_exit_codes() {
        assert_eq!(args("kill", "5205, SIGTERM").args[..2], [5205, 15]);
        assert_eq!(args("tgkill", "10, 11, SIGABRT").args[..3], [10, 11, 6]);
        assert_eq!(args("exit_group", "1").args[0], 1);
    }

    #[test]
    fn ranges_past_the_end_of_the_address_space_are_impossible() {
        let ok = args("mmap", "NULL, 8192, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0");
        assert!(possible("mmap", &ok, 0x7f00_0000_0000));
        assert!(!possible("mmap", &ok, -5000), "not an errno, not an address");
        let huge = args("munmap", "0x7f0000000000, 18446744073709551615");
        assert!(!possible("munmap", &huge, 0));
        assert!(possible("brk", &args("brk", "NULL"), -1));
    }

    #[test]
    fn syscalls_outside_the_schema_are_not_built() {
        assert_eq!(build("openat", "AT_FDCWD, \"/etc/passwd\", O_RDONLY"), None);
        assert_eq!(build("rt_sigaction", "SIGINT, NULL, NULL, 8"), None);
    }

    #[test]
    fn exec_targets_give_the_path_and_argv() {
        let (path, argv) =
            exec_target("execve", "\"./threads\", [\"./threads\", \"8\"], 0x7ffe905c9f10 /* 35 vars */").unwrap();
        assert_eq!((path, argv), (b"./threads".to_vec(), Some(vec!["./threads".to_string(), "8".to_string()])));
        assert_eq!(exec_target("execve", "0x1234, 0x5678, 0x9abc"), None);
    }
}
