//! Hang anatomy: what each tracked thread is doing when the program stops making progress, read
//! from outside without stopping it — the stuck snapshot, progress detection, stack sampling.
pub mod dumps;
pub mod jitnames;
pub mod progress;
pub mod runtime;
pub mod snapshot;
pub mod symbols;
pub mod unwind;
pub mod watch;
