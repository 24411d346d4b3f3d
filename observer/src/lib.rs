//! observer: an eBPF observer for timing-sensitive hangs and thread-creation failures. The library
//! holds everything; the binary only parses arguments and maps errors to exit codes.
pub mod analysis;
pub mod attach;
pub mod capture;
pub mod child;
pub mod cli;
pub mod clock;
pub mod container;
pub mod decode;
pub mod event;
pub mod eventlog;
pub mod hang;
pub mod import_strace;
pub mod offline;
pub mod preflight;
pub mod proc;
pub mod processes;
pub mod render;
pub mod repeat;
pub mod replay;
pub mod run;
pub mod rundir;
pub mod session;
pub mod sinks;
pub mod source;
pub mod summary;
pub mod watch;
