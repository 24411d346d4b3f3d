//! What people and other tools read: each event as a strace-like trace line ([`trace`]), the stuck
//! snapshot as `stuck.txt` ([`stuck`]) and its sampled stacks as a flame graph ([`flame`]), the run
//! as `report.html` ([`html`]) or as a Perfetto or Chrome trace ([`export`]), and the lanes and
//! marks every timeline shares ([`lanes`]).
pub mod export;
pub mod flame;
pub mod html;
pub mod lanes;
pub mod stuck;
pub mod trace;

pub use trace::{describe, owner_tid, trace_line, when};
