//! Counting what a run saw: events by kind, calls and errors by syscall and errno.
use std::collections::{BTreeMap, HashMap};

use observer_common::flags;

use crate::{decode::is_error_return, event::Event};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyscallCount {
    pub calls: u64,
    pub errors: u64,
    /// Failures by errno number (named only when written out).
    pub by_errno: BTreeMap<i32, u64>,
}

#[derive(Clone, Debug, Default)]
pub struct RunStats {
    pub events_received: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// By syscall number (named only when written out: nothing is allocated per event).
    pub syscalls: BTreeMap<u32, SyscallCount>,
    pub unfinished_syscalls: u64,
    /// Syscall records received, for progress detection.
    pub syscall_records: u64,
    /// Per thread, the kernel time of its latest call that did more than wait: a ticker's timed
    /// waits, a lock's futex dance and sleeps are no progress (see [`only_waits`]).
    pub last_progress_ns: HashMap<u32, u64>,
    /// Per thread, the kernel time it was first seen in the capture.
    pub first_seen_ns: HashMap<u32, u64>,
}

pub use observer_common::syscalls::only_waits;

impl RunStats {
    pub fn observe(&mut self, event: &Event) {
        self.events_received += 1;
        *self.by_kind.entry(event.kind_name()).or_default() += 1;
        let h = event.header();
        self.first_seen_ns.entry(h.tid).or_insert(h.ts_ns);
        if let Event::Fork(f) = event {
            self.first_seen_ns.entry(f.child_tid).or_insert(h.ts_ns);
        }
        if let Event::Syscall(e) = event {
            if !only_waits(e.nr) {
                self.last_progress_ns.insert(e.header.tid, e.header.ts_ns + e.duration_ns);
            }
            self.syscall_records += 1;
            let count = self.syscalls.entry(e.nr).or_default();
            count.calls += 1;
            if e.header.flags & flags::UNFINISHED != 0 {
                self.unfinished_syscalls += 1;
            } else if e.header.flags & flags::NO_RETURN == 0 {
                if let Some(errno) = is_error_return(e.ret) {
                    count.errors += 1;
                    *count.by_errno.entry(errno).or_default() += 1;
                }
            }
        }
    }
}
