//! Offsets of the classic tracepoint fields the kernel programs read (userspace checks each of them
//! against `/sys/kernel/tracing/events/<category>/<event>/format` before loading anything), and of
//! the saved registers the raw syscall tracepoints hand over.

/// A field the kernel side reads, at a fixed offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub category: &'static str,
    pub event: &'static str,
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
}

const fn f(category: &'static str, event: &'static str, name: &'static str, offset: usize, size: usize) -> Field {
    Field { category, event, name, offset, size }
}

/// The saved user registers (`struct pt_regs`, x86-64 uapi layout) that the raw `sys_enter` /
/// `sys_exit` tracepoints pass by pointer. Syscall arguments (and the frame pointer, where a
/// blocked thread's stack unwinding starts) are read from them, in one copy of the span
/// `SPAN_START..SPAN_END`.
pub mod pt_regs {
    /// rbp: the user frame pointer at syscall entry.
    pub const BP: usize = 32;
    pub const R10: usize = 56;
    pub const R9: usize = 64;
    pub const R8: usize = 72;
    pub const DX: usize = 96;
    pub const SI: usize = 104;
    pub const DI: usize = 112;
    /// The syscall number as the task entered.
    pub const ORIG_AX: usize = 120;
    pub const CS: usize = 136;
    /// The code segment of a 64-bit task; anything else (0x23) is a 32-bit compat syscall, whose
    /// numbers mean other calls.
    pub const USER_CS_64: u64 = 0x33;
    pub const SPAN_START: usize = BP;
    pub const SPAN_END: usize = CS + 8;
    /// Offsets of syscall arguments 0..6 in the x86-64 syscall convention.
    pub const ARGS: [usize; 6] = [DI, SI, DX, R10, R8, R9];
}

pub const FORK_CHILD_PID: usize = 20;
pub const EXEC_FILENAME_LOC: usize = 8;
pub const EXEC_OLD_PID: usize = 16;
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
pub const CGATTACH_DST_ROOT: usize = 8;
pub const CGATTACH_DST_LEVEL: usize = 12;
pub const CGATTACH_DST_ID: usize = 16;
pub const CGATTACH_PID: usize = 24;
pub const CGATTACH_DST_PATH_LOC: usize = 28;

use crate::maps::tracepoints as tp;

/// The non-syscall fields read by the kernel side.
pub const FIXED: &[Field] = &[
    f(tp::SCHED, tp::SCHED_PROCESS_FORK, "child_pid", FORK_CHILD_PID, 4),
    f(tp::SCHED, tp::SCHED_PROCESS_EXEC, "filename", EXEC_FILENAME_LOC, 4),
    f(tp::SCHED, tp::SCHED_PROCESS_EXEC, "old_pid", EXEC_OLD_PID, 4),
    f(tp::SCHED, tp::SCHED_PROCESS_EXIT, "group_dead", EXIT_GROUP_DEAD, 1),
    f(tp::SIGNAL, tp::SIGNAL_GENERATE, "sig", SIGGEN_SIG, 4),
    f(tp::SIGNAL, tp::SIGNAL_GENERATE, "errno", SIGGEN_ERRNO, 4),
    f(tp::SIGNAL, tp::SIGNAL_GENERATE, "code", SIGGEN_CODE, 4),
    f(tp::SIGNAL, tp::SIGNAL_GENERATE, "comm", SIGGEN_COMM, 16),
    f(tp::SIGNAL, tp::SIGNAL_GENERATE, "pid", SIGGEN_PID, 4),
    f(tp::SIGNAL, tp::SIGNAL_GENERATE, "group", SIGGEN_GROUP, 4),
    f(tp::SIGNAL, tp::SIGNAL_GENERATE, "result", SIGGEN_RESULT, 4),
    f(tp::SIGNAL, tp::SIGNAL_DELIVER, "sig", SIGDEL_SIG, 4),
    f(tp::SIGNAL, tp::SIGNAL_DELIVER, "errno", SIGDEL_ERRNO, 4),
    f(tp::SIGNAL, tp::SIGNAL_DELIVER, "code", SIGDEL_CODE, 4),
    f(tp::SIGNAL, tp::SIGNAL_DELIVER, "sa_handler", SIGDEL_SA_HANDLER, 8),
    f(tp::SIGNAL, tp::SIGNAL_DELIVER, "sa_flags", SIGDEL_SA_FLAGS, 8),
    f(tp::CGROUP, tp::CGROUP_ATTACH_TASK, "dst_root", CGATTACH_DST_ROOT, 4),
    f(tp::CGROUP, tp::CGROUP_ATTACH_TASK, "dst_level", CGATTACH_DST_LEVEL, 4),
    f(tp::CGROUP, tp::CGROUP_ATTACH_TASK, "dst_id", CGATTACH_DST_ID, 8),
    f(tp::CGROUP, tp::CGROUP_ATTACH_TASK, "pid", CGATTACH_PID, 4),
    f(tp::CGROUP, tp::CGROUP_ATTACH_TASK, "dst_path", CGATTACH_DST_PATH_LOC, 4),
];
