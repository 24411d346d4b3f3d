//! The rest of the kernel/user contract: the names userspace looks the kernel's maps, globals and
//! programs up by, the tracepoints the programs attach to, the slots of its counter arrays, the
//! filter bits, and the stack sampler's map key.
//!
//! A map's or program's name is the name of its `static` or `fn` in observer-ebpf (aya's
//! attributes take no constant), so each name here must equal that identifier; loading the object
//! checks every one of them.

/// Map names, as the `#[map] static`s of observer-ebpf are called.
pub mod names {
    pub const EVENTS: &str = "EVENTS";
    pub const TRACKED: &str = "TRACKED";
    pub const TRACKED_BY_PID: &str = "TRACKED_BY_PID";
    pub const TASKS: &str = "TASKS";
    pub const IN_FLIGHT: &str = "IN_FLIGHT";
    pub const IN_FLIGHT_BY_TID: &str = "IN_FLIGHT_BY_TID";
    pub const SYSCALL_TABLE: &str = "SYSCALL_TABLE";
    pub const THREAD_PROGRESS: &str = "THREAD_PROGRESS";
    pub const HOST_TABLE: &str = "HOST_TABLE";
    pub const DROPPED: &str = "DROPPED";
    pub const SUBMITTED: &str = "SUBMITTED";
    pub const RING_FILL: &str = "RING_FILL";
    pub const COMM_FILTER: &str = "COMM_FILTER";
    pub const UID_FILTER: &str = "UID_FILTER";
    pub const CGROUP_FILTER: &str = "CGROUP_FILTER";
    pub const SAMPLES: &str = "SAMPLES";
    pub const SAMPLE_STACKS: &str = "SAMPLE_STACKS";
    pub const SAMPLE_COUNTERS: &str = "SAMPLE_COUNTERS";
}

/// Program names, as the `fn`s of observer-ebpf are called.
pub mod programs {
    /// `tp_btf/sys_enter` and `tp_btf/sys_exit`: syscall entry and exit, paired in the kernel.
    pub const SYS_ENTER: &str = "sys_enter";
    pub const SYS_EXIT: &str = "sys_exit";
    /// The same on raw tracepoints, for kernels without BTF.
    pub const SYS_ENTER_RAW: &str = "sys_enter_raw";
    pub const SYS_EXIT_RAW: &str = "sys_exit_raw";
    /// Classic tracepoints, each named after the one it attaches to.
    pub use super::tracepoints::{
        CGROUP_ATTACH_TASK, SCHED_PROCESS_EXEC, SCHED_PROCESS_EXIT, SCHED_PROCESS_FORK, SIGNAL_DELIVER, SIGNAL_GENERATE,
    };
    /// `tp_btf/signal_generate`: the siginfo of fault signals.
    pub const SIGNAL_FAULT: &str = "signal_fault";
    /// `raw_tp/sched_switch`: writes out a CPU's held syscall records when its thread leaves it;
    /// userspace also runs it on each CPU to collect what is held.
    pub const STAGE_FLUSH: &str = "stage_flush";
    /// The on-demand stack sampler (`perf_event`).
    pub const SAMPLE_USER_STACK: &str = "sample_user_stack";
}

/// The kernel tracepoints the programs attach to: `(category, name)` in tracefs.
pub mod tracepoints {
    pub const RAW_SYSCALLS: &str = "raw_syscalls";
    pub const SCHED: &str = "sched";
    pub const SIGNAL: &str = "signal";
    pub const CGROUP: &str = "cgroup";
    /// In `raw_syscalls`, and the BTF functions of the same names.
    pub const SYS_ENTER: &str = "sys_enter";
    pub const SYS_EXIT: &str = "sys_exit";
    pub const SCHED_SWITCH: &str = "sched_switch";
    pub const SCHED_PROCESS_FORK: &str = "sched_process_fork";
    pub const SCHED_PROCESS_EXEC: &str = "sched_process_exec";
    pub const SCHED_PROCESS_EXIT: &str = "sched_process_exit";
    pub const SIGNAL_GENERATE: &str = "signal_generate";
    pub const SIGNAL_DELIVER: &str = "signal_deliver";
    pub const CGROUP_ATTACH_TASK: &str = "cgroup_attach_task";
}

/// Read-only globals the loader patches (`#[unsafe(no_mangle)] static`s of observer-ebpf).
pub mod globals {
    /// `u64`: pending ring-buffer bytes at which a submit wakes the reader.
    pub const WAKEUP_BYTES: &str = "WAKEUP_BYTES";
    /// `u8`: non-zero for `observer watch` (host-wide streaming).
    pub const HOST_WIDE: &str = "HOST_WIDE";
    /// `u8`: which filter maps hold entries, a set of [`super::filters`] bits.
    pub const FILTERS: &str = "FILTERS";
    /// `u8`: non-zero when the syscall programs return at once (benchmark floor).
    pub const HOOKS_ONLY: &str = "HOOKS_ONLY";
}

/// Bits of the `FILTERS` global: which host-wide filter maps hold entries, so empty ones cost
/// nothing.
pub mod filters {
    pub const COMM: u8 = 1 << 0;
    pub const UID: u8 = 1 << 1;
    pub const CGROUP: u8 = 1 << 2;
}

/// Per-CPU slots of `RING_FILL`.
pub mod ring_fill {
    /// Bytes pending in the ring buffer as this CPU's producer last looked (a fill gauge).
    pub const PENDING: u32 = 0;
    /// Records this CPU wrote since it last looked.
    pub const SINCE_QUERY: u32 = 1;
    pub const SLOTS: u32 = 2;
}

/// Per-CPU slots of `SAMPLE_COUNTERS`.
pub mod sample_counters {
    /// Ticks that interrupted user code.
    pub const SAMPLED_USER: u32 = 0;
    /// Ticks that interrupted the kernel (a syscall or a fault of the sampled thread).
    pub const SAMPLED_KERNEL: u32 = 1;
    /// `bpf_get_stackid` failures (the stack of that sample is lost).
    pub const STACK_FAILED: u32 = 2;
    /// Samples not counted because `SAMPLES` was full.
    pub const SAMPLES_FULL: u32 = 3;
    pub const SLOTS: u32 = 4;
}

/// What one stack sample is counted under in `SAMPLES`: 16 bytes with no padding (a hash key's
/// padding would be hashed too).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SampleKey {
    pub tid: u32,
    /// Id in `SAMPLE_STACKS`, or the negative errno `bpf_get_stackid` returned.
    pub stack_id: i32,
    /// User pc; 0 when the tick interrupted kernel code (the stack still starts at the user pc
    /// saved on kernel entry).
    pub ip: u64,
}

const _: () = assert!(core::mem::size_of::<SampleKey>() == 16);
const _: () = assert!(core::mem::offset_of!(SampleKey, stack_id) == 4);
const _: () = assert!(core::mem::offset_of!(SampleKey, ip) == 8);
