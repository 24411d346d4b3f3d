//! Every identity the kernel programs and the userspace daemon share: the records' exact byte
//! layout and kind ids, the syscall table, the signatures, the map names, slots and filter bits,
//! and the tracepoint field offsets the kernel side reads.
#![no_std]

// The derives of the `user` feature (clap, serde) name `::std` paths.
#[cfg(feature = "user")]
extern crate std;

pub mod event;
pub mod maps;
pub mod signature;
pub mod syscalls;
pub mod tracepoint_fields;

pub use event::*;
pub use signature::Signature;
