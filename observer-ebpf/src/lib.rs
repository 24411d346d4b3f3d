//! Library half of the eBPF crate; it exists only so `cargo` treats the crate as `no_std`.
#![no_std]
