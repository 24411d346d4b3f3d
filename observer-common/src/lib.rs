//! Event records shared by the kernel programs and the userspace daemon: their exact byte layout,
//! the kind ids, the syscall table and the tracepoint field offsets the kernel side reads.
#![no_std]

pub mod event;
pub mod syscalls;
pub mod tracepoint_fields;

pub use event::*;
