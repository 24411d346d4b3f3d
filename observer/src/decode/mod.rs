//! Turning raw record fields into the text strace would show: names for errnos, signals and
//! `si_code`s, and the one-line rendering of a syscall. Pure functions over x86_64 Linux values.

pub mod all_syscalls;
pub mod escape;
pub mod names;
pub mod syscall_fmt;

pub use escape::{escape, escape_controls};
pub use names::{
    errno_by_name, errno_message, errno_name, is_error_return, si_code_by_name, si_code_name, signal_by_name,
    signal_name,
};
pub use syscall_fmt::{
    clone3_flags, clone_flags, format_call, futex_cmd, mmap_flags, prot_flags, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE,
    MAP_PRIVATE, MAP_STACK, PROT_READ, PROT_WRITE,
};
pub(crate) use syscall_fmt::{value_of_name, Names};

/// A syscall's name by number: the watched table, then every x86_64 syscall, then `syscall_0x1a4`
/// as strace prints an unknown one.
pub fn syscall_label(nr: u32) -> String {
    observer_common::syscalls::by_nr(nr)
        .map(|s| s.name)
        .or_else(|| all_syscalls::syscall_name(nr))
        .map_or_else(|| format!("syscall_{nr:#x}"), str::to_string)
}
