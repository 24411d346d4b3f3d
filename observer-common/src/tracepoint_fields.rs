//! Offsets of the classic tracepoint fields the kernel programs read. Userspace checks each of them
//! against `/sys/kernel/tracing/events/<category>/<event>/format` before loading anything.

/// A field the kernel side reads, at a fixed offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub category: &'static str,
    /// Event name; `*` stands for every watched `sys_enter_<name>` / `sys_exit_<name>`.
    pub event: &'static str,
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
}

const fn f(category: &'static str, event: &'static str, name: &'static str, offset: usize, size: usize) -> Field {
    Field { category, event, name, offset, size }
}

pub const SYS_ENTER_NR: usize = 8;
/// First argument of a `sys_enter_*` record; argument i is at `SYS_ENTER_ARGS + 8 * i`.
pub const SYS_ENTER_ARGS: usize = 16;
pub const SYS_EXIT_NR: usize = 8;
pub const SYS_EXIT_RET: usize = 16;

pub const FORK_PARENT_PID: usize = 12;
pub const FORK_CHILD_PID: usize = 20;
pub const EXEC_FILENAME_LOC: usize = 8;
pub const EXEC_PID: usize = 12;
pub const EXEC_OLD_PID: usize = 16;
pub const EXIT_PID: usize = 24;
pub const EXIT_GROUP_DEAD: usize = 32;
pub const SIGGEN_SIG: usize = 8;
pub const SIGGEN_ERRNO: usize = 12;
pub const SIGGEN_CODE: usize = 16;
pub const SIGGEN_COMM: usize = 20;
pub const SIGGEN_PID: usize = 36;
pub const SIGGEN_GROUP: usize = 40;
pub const SIGGEN_RESULT: usize = 44;
pub const SIGDEL_SIG: usize = 8;
pub const SIGDEL_ERRNO: usize = 12;
pub const SIGDEL_CODE: usize = 16;
pub const SIGDEL_SA_HANDLER: usize = 24;
pub const SIGDEL_SA_FLAGS: usize = 32;

/// The non-syscall fields read by the kernel side.
pub const FIXED: &[Field] = &[
    f("sched", "sched_process_fork", "parent_pid", FORK_PARENT_PID, 4),
    f("sched", "sched_process_fork", "child_pid", FORK_CHILD_PID, 4),
    f("sched", "sched_process_exec", "filename", EXEC_FILENAME_LOC, 4),
    f("sched", "sched_process_exec", "pid", EXEC_PID, 4),
    f("sched", "sched_process_exec", "old_pid", EXEC_OLD_PID, 4),
    f("sched", "sched_process_exit", "pid", EXIT_PID, 4),
    f("sched", "sched_process_exit", "group_dead", EXIT_GROUP_DEAD, 1),
    f("signal", "signal_generate", "sig", SIGGEN_SIG, 4),
    f("signal", "signal_generate", "errno", SIGGEN_ERRNO, 4),
    f("signal", "signal_generate", "code", SIGGEN_CODE, 4),
    f("signal", "signal_generate", "comm", SIGGEN_COMM, 16),
    f("signal", "signal_generate", "pid", SIGGEN_PID, 4),
    f("signal", "signal_generate", "group", SIGGEN_GROUP, 4),
    f("signal", "signal_generate", "result", SIGGEN_RESULT, 4),
    f("signal", "signal_deliver", "sig", SIGDEL_SIG, 4),
    f("signal", "signal_deliver", "errno", SIGDEL_ERRNO, 4),
    f("signal", "signal_deliver", "code", SIGDEL_CODE, 4),
    f("signal", "signal_deliver", "sa_handler", SIGDEL_SA_HANDLER, 8),
    f("signal", "signal_deliver", "sa_flags", SIGDEL_SA_FLAGS, 8),
];
