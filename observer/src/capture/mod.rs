//! Everything that touches the kernel side: privilege and tracefs checks, the layout check against
//! tracepoint format files, loading and attaching the eBPF programs, the live event source, and the
//! stack sampler attached on demand through [`Probes::sample_thread`].
pub mod error;
pub mod kernel;
pub mod live;
pub mod privilege;
pub mod probes;
pub mod sampler;
pub mod tracefs;

pub use error::CaptureError;
pub use kernel::{Kernel, Tally};
pub use live::{Drain, LiveSource};
pub use probes::{Counters, Probes};
pub use sampler::{SampleRun, SampleStats, StackSample};
