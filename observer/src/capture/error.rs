//! Why capture could not start, each with the fix a user needs.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("observer needs root or CAP_BPF + CAP_PERFMON to load eBPF programs: run it with sudo")]
    NotPrivileged,
    #[error("tracefs is not mounted at {path}: run `sudo mount -t tracefs nodev {path}` (or run observer as root, which mounts it)")]
    TracefsMissing { path: PathBuf },
    #[error("could not mount tracefs at {path}: {reason}; mount it by hand with `mount -t tracefs nodev {path}`")]
    TracefsMount { path: PathBuf, reason: String },
    #[error("tracepoint {category}/{event} is missing on this kernel (needs CONFIG_FTRACE_SYSCALLS and a matching kernel); observer cannot capture without it")]
    TracepointMissing { category: String, event: String },
    /// Boxed: the details would make every `Result<_, CaptureError>` three times as large.
    #[error(transparent)]
    LayoutMismatch(Box<LayoutMismatch>),
    #[error("the kernel verifier refused eBPF program `{program}`: {reason}\nverifier log:\n{log}")]
    Verifier { program: String, reason: String, log: String },
    #[error("could not attach `{program}` to {target}: {reason}")]
    Attach { program: String, target: String, reason: String },
    #[error("this observer was built with OBSERVER_SKIP_EBPF=1 and has no eBPF object: rebuild it without that variable (`cargo build`)")]
    NoEbpfObject,
    #[error("could not load the eBPF object: {0}")]
    Load(String),
    #[error("--buffer-size {0} is not valid: it must be a power of two of at least 4096 bytes (e.g. 4194304)")]
    BufferSize(u64),
    #[error("kernel map `{map}`: {reason}")]
    Map { map: &'static str, reason: String },
}

/// A tracepoint field where this kernel puts it somewhere other than where observer reads it.
#[derive(Debug, thiserror::Error)]
#[error("tracepoint {category}/{event} field `{field}` is at offset {found_offset} size {found_size}, observer was built for offset {expected_offset} size {expected_size}: this kernel's layout differs, refusing to misread it")]
pub struct LayoutMismatch {
    pub category: String,
    pub event: String,
    pub field: String,
    pub expected_offset: usize,
    pub expected_size: usize,
    pub found_offset: String,
    pub found_size: String,
}
