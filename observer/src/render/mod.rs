//! Text for people: each event as a strace-like trace line ([`trace`]) and the stuck snapshot as
//! `stuck.txt` ([`stuck`]).
pub mod stuck;
pub mod trace;

pub use trace::{describe, owner_tid, trace_line, when};
