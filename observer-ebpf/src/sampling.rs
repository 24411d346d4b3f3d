//! The `perf_event` stack sampler: on each cpu-clock tick of a sampled thread, counts where its
//! user code was (pc and user stack id) without stopping it; attached on demand by userspace.
use aya_ebpf::{
    bindings::{BPF_F_USER_STACK, BPF_NOEXIST},
    macros::{map, perf_event},
    maps::{HashMap, PerCpuArray, StackTrace},
    programs::{tracing::StackIdContext, PerfEventContext},
};

use observer_common::maps::{
    sample_counters::{SAMPLED_KERNEL, SAMPLED_USER, SAMPLES_FULL, SLOTS, STACK_FAILED},
    SampleKey,
};

use crate::maps::{bump, current_ids};

/// Sample counts by (thread, user pc, user stack).
#[map]
pub static SAMPLES: HashMap<SampleKey, u32> = HashMap::with_max_entries(4096, 0);

/// User stacks. Each slot holds 127 frames (about 1 KiB) and is preallocated when the object loads,
/// so this stays small; a hash-bucket collision loses that sample's stack and is counted.
#[map]
pub static SAMPLE_STACKS: StackTrace = StackTrace::with_max_entries(1024, 0);

/// Ticks and failures, by `observer_common::maps::sample_counters` slot.
#[map]
pub static SAMPLE_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(SLOTS, 0);

/// x86-64 `user_mode(regs)`: the interrupted privilege level lives in the low bits of `cs`.
#[cfg(bpf_target_arch = "x86_64")]
#[inline(always)]
fn user_pc(ctx: &PerfEventContext) -> u64 {
    // SAFETY: perf_event programs may load any u64 of `struct bpf_perf_event_data`'s regs; the
    // verifier rewrites these loads to read the sampled registers.
    let (cs, ip) = unsafe { ((*ctx.ctx).regs.cs, (*ctx.ctx).regs.rip) };
    if cs & 3 == 3 {
        ip
    } else {
        0
    }
}

/// Other architectures: no user pc of our own; the stack's first frame still gives it.
#[cfg(not(bpf_target_arch = "x86_64"))]
#[inline(always)]
fn user_pc(_ctx: &PerfEventContext) -> u64 {
    0
}

#[perf_event]
pub fn sample_user_stack(ctx: PerfEventContext) -> u32 {
    let (tid, _) = current_ids();
    // Ticks in the idle task or a kernel thread have no user side to report.
    if tid == 0 {
        return 0;
    }
    let ip = user_pc(&ctx);
    bump(&SAMPLE_COUNTERS, if ip != 0 { SAMPLED_USER } else { SAMPLED_KERNEL });
    let stack_id = match ctx.get_stackid(&SAMPLE_STACKS, BPF_F_USER_STACK as u64) {
        Ok(id) => id as i32,
        Err(errno) => {
            bump(&SAMPLE_COUNTERS, STACK_FAILED);
            errno
        }
    };
    let key = SampleKey { tid, stack_id, ip };
    match SAMPLES.get_ptr_mut(key) {
        // SAFETY: keys start with the tid, and a thread's cpu-clock event only fires on the CPU
        // running that thread, so no two programs update one counter at once.
        Some(count) => unsafe { *count = (*count).saturating_add(1) },
        None => {
            if SAMPLES.insert(key, 1, BPF_NOEXIST as u64).is_err() {
                bump(&SAMPLE_COUNTERS, SAMPLES_FULL);
            }
        }
    }
    0
}
