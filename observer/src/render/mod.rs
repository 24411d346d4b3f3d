//! Text for people: each event as a strace-like trace line ([`trace`]), the stuck snapshot as
//! `stuck.txt` ([`stuck`]) and its sampled stacks as a flame graph ([`flame`]).
pub mod flame;
pub mod stuck;
pub mod trace;

pub use trace::{describe, owner_tid, trace_line, when};
