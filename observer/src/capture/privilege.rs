//! Whether this process may load eBPF programs: root, or CAP_BPF with CAP_PERFMON (or CAP_SYS_ADMIN).
use super::CaptureError;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

pub fn may_load_bpf(caps: u64) -> bool {
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

pub fn check() -> Result<(), CaptureError> {
    if may_load_bpf(crate::proc::effective_capabilities()) {
        Ok(())
    } else {
        Err(CaptureError::NotPrivileged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_with_perfmon_or_sys_admin_is_enough_and_nothing_less() {
        assert!(may_load_bpf(1 << CAP_SYS_ADMIN));
        assert!(may_load_bpf((1 << CAP_BPF) | (1 << CAP_PERFMON)));
        assert!(!may_load_bpf(1 << CAP_BPF));
        assert!(!may_load_bpf(0));
    }
}
