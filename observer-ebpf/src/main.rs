//! The kernel half of observer: tracepoint programs that filter by tracked process, pair syscall
//! entry with exit, and write records into a single ring buffer (one per ring entry, or a run of
//! compact syscall records held on a CPU's stage).
#![no_std]
#![no_main]

mod lifecycle;
mod maps;
mod output;
mod sampling;
mod signals;
mod stage;
mod syscalls;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

// GPL-compatible: bpf_probe_read_user and friends are GPL-only helpers.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
