//! The data behind report.html's timeline, built from the event log in one pass and bounded
//! whatever the capture's length: the longest calls become bars (every call, in a small capture),
//! every failure and signal a mark, and all calls together a per-thread activity density.
use std::{cmp::Reverse, collections::BinaryHeap};

use foldhash::{HashMap, HashMapExt};

use observer_common::{flags, SyscallEvent};
use serde::Serialize;

use crate::{
    analysis::snapshot::StuckSnapshot,
    event::{returned, Event},
    eventlog::LogHeader,
    processes::ProcessBook,
    render::{
        lanes::{waiting_call, LaneBook, MarkKind, ProcessLanes},
        owner_tid, trace_line,
    },
};

/// Calls drawn as bars, at most (the longest ones).
pub const MAX_BARS: usize = 20_000;
/// Failures and signals kept as marks, at most (in capture order).
pub const MAX_ESSENTIAL_MARKS: usize = 50_000;
/// Other marks (fork, exec, exit, limit changes) kept, at most.
pub const MAX_OTHER_MARKS: usize = 20_000;
/// Columns of the activity density over the whole capture.
const DENSITY_COLUMNS: u64 = 2_000;
/// Density cells over all threads, at most (many threads get fewer columns each).
const MAX_DENSITY_CELLS: usize = 200_000;

/// How a bar is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BarClass {
    /// Waiting for something (futex, poll, wait, sleep, read/write).
    Wait,
    /// Any other call.
    Call,
    /// A call that failed.
    Failed,
    /// Ended without a real return: interrupted by a signal (ERESTART*) or cut off by the thread's end.
    Cut,
    /// On a CPU without syscalls over the watchdog's window (from the stuck snapshot).
    Cpu,
}

/// A call drawn as a bar: start and length (ns from the origin), its trace line, how it is drawn.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bar(pub u64, pub u64, pub u32, pub BarClass);

/// An instant: when (ns from the origin), its kind, its trace line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mark(pub u64, pub &'static str, pub u32);

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThreadTrack {
    pub tid: u32,
    pub comm: String,
    pub chain: bool,
    pub bars: Vec<Bar>,
    pub marks: Vec<Mark>,
    /// (column, calls started in it), columns of `density_ns`.
    pub density: Vec<(u32, u32)>,
    pub calls: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessTrack {
    pub pid: u32,
    pub comm: String,
    pub exit: String,
    pub chain: bool,
    pub threads: Vec<ThreadTrack>,
}

/// Everything the page's script draws.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timeline {
    /// CLOCK_BOOTTIME ns of the origin, the first event (evidence times are given in it).
    pub origin: u64,
    /// Wall-clock ns (since the epoch) of the origin, the first event.
    pub wall0: i64,
    /// Length of the capture in ns.
    pub span: u64,
    /// The times are only an order (an import without timestamps).
    pub order_only: bool,
    pub processes: Vec<ProcessTrack>,
    /// Trace lines, indexed by bars and marks.
    pub texts: Vec<String>,
    pub density_ns: u64,
    /// The watchdog's window before the snapshot, and the snapshot's moment (ns from the origin).
    pub window: Option<(u64, u64)>,
    pub snapshot: Option<u64>,
    pub snapshot_reason: String,
    pub syscalls: u64,
    pub bars_dropped: u64,
    pub marks_dropped: u64,
}

fn bar_class(e: &SyscallEvent) -> BarClass {
    match crate::decode::is_error_return(e.ret) {
        _ if e.header.flags & flags::UNFINISHED != 0 => BarClass::Cut,
        Some(errno) if (512..=516).contains(&errno) => BarClass::Cut,
        Some(_) => BarClass::Failed,
        None if waiting_call(e.nr) => BarClass::Wait,
        None => BarClass::Call,
    }
}

/// One thread's calls: how many, and how many started per cell of `merge` columns of `column_ns`
/// since the origin.
struct ThreadCalls {
    tid: u32,
    calls: u64,
    cells: Vec<u32>,
}

/// Columns per density cell (a power of two, at least `from`) for `threads` threads: fewer cells
/// per thread when there are many threads, so the page stays small.
fn merge_for(threads: usize, from: usize) -> usize {
    let mut merge = from;
    while threads.max(1) * (DENSITY_COLUMNS as usize / merge) > MAX_DENSITY_CELLS {
        merge *= 2;
    }
    merge
}

/// Collects the timeline while the event log is read.
pub struct TimelineBuilder {
    lanes: LaneBook,
    origin: Option<u64>,
    end: u64,
    order_only: bool,
    /// The longest calls so far: (duration, sequence) -> call, shortest on top.
    bars: BinaryHeap<Reverse<(u64, u64)>>,
    bar_events: HashMap<u64, SyscallEvent>,
    /// Each mark's kind and where its record starts in `mark_records`.
    marks: Vec<(MarkKind, usize)>,
    /// The marks' records back to back, each as long as its kind (a fork or an exit is a quarter
    /// of an `Event`, and tens of thousands of them are kept).
    mark_records: Vec<u8>,
    essential_marks: usize,
    other_marks: usize,
    marks_dropped: u64,
    /// Per thread that made calls, in order of its first call.
    threads: Vec<ThreadCalls>,
    thread_index: HashMap<u32, usize>,
    /// The thread of the latest call and its index: a thread's calls come in runs, and a run
    /// costs no lookup.
    latest: Option<(u32, usize)>,
    column_ns: u64,
    /// Columns per cell: grows with the threads seen as `finish` would merge them anyway, so ten
    /// thousand threads never hold `DENSITY_COLUMNS` cells each while the log is read.
    merge: usize,
    /// The column of the latest call, the times it covers (`[start, end)` ns since the origin) and
    /// its cell: calls arrive in time order, mostly into the column of the call before, and a
    /// division per call shows on a capture of millions.
    latest_column: (u64, u64, usize),
    /// Calls that could be bars (all but exit / exit_group).
    spans: u64,
    seq: u64,
}

impl Default for TimelineBuilder {
    fn default() -> Self {
        Self {
            lanes: LaneBook::default(),
            origin: None,
            end: 0,
            order_only: false,
            bars: BinaryHeap::new(),
            bar_events: HashMap::new(),
            marks: Vec::new(),
            mark_records: Vec::new(),
            essential_marks: 0,
            other_marks: 0,
            marks_dropped: 0,
            threads: Vec::new(),
            thread_index: HashMap::new(),
            latest: None,
            column_ns: 1_000,
            merge: 1,
            latest_column: (0, 0, 0),
            spans: 0,
            seq: 0,
        }
    }
}

impl TimelineBuilder {
    /// `book` must already have observed `event`.
    pub fn observe(&mut self, event: &Event, book: &ProcessBook) {
        self.lanes.observe(event, book);
        let h = event.header();
        self.order_only |= h.flags & flags::UNKNOWN_TIME != 0;
        let origin = *self.origin.get_or_insert(h.ts_ns);
        let since = h.ts_ns.saturating_sub(origin);
        self.seq += 1;
        if let Event::Syscall(e) = event {
            let length = if returned(e) || e.header.flags & flags::UNFINISHED != 0 { e.duration_ns } else { 0 };
            self.end = self.end.max(since + length);
            self.count(h.tid, since);
            let shorter_than_all_kept =
                self.bars.len() >= MAX_BARS && self.bars.peek().is_some_and(|Reverse((d, _))| length <= *d);
            let span = e.header.flags & flags::NO_RETURN == 0;
            self.spans += u64::from(span);
            if span && !shorter_than_all_kept {
                self.bars.push(Reverse((length, self.seq)));
                self.bar_events.insert(self.seq, *e);
                if self.bars.len() > MAX_BARS {
                    if let Some(Reverse((_, seq))) = self.bars.pop() {
                        self.bar_events.remove(&seq);
                    }
                }
            }
        } else {
            self.end = self.end.max(since);
        }
        if let Some(kind) = MarkKind::of(event) {
            let (count, cap) = if kind.essential() {
                (&mut self.essential_marks, MAX_ESSENTIAL_MARKS)
            } else {
                (&mut self.other_marks, MAX_OTHER_MARKS)
            };
            if *count < cap {
                *count += 1;
                self.marks.push((kind, self.mark_records.len()));
                self.mark_records.extend_from_slice(event.as_bytes());
            } else {
                self.marks_dropped += 1;
            }
        }
    }

    /// Counts a call of `tid` and in its thread's density, widening the columns when the capture
    /// outgrows them and the cells when the threads outnumber them.
    fn count(&mut self, tid: u32, since: u64) {
        // Exactly `since / column_ns >= DENSITY_COLUMNS`, without the division.
        while self.column_ns.checked_mul(DENSITY_COLUMNS).is_some_and(|end| since >= end) {
            self.column_ns *= 2;
            self.halve_cells();
        }
        let index = match self.latest {
            Some((latest, index)) if latest == tid => index,
            _ => {
                let next = self.threads.len();
                let index = *self.thread_index.entry(tid).or_insert(next);
                if index == next {
                    let merge = merge_for(next + 1, self.merge);
                    while self.merge < merge {
                        self.merge *= 2;
                        self.halve_cells();
                    }
                    self.threads.push(ThreadCalls { tid, calls: 0, cells: Vec::new() });
                }
                self.latest = Some((tid, index));
                index
            }
        };
        let cell = match self.latest_column {
            (start, end, cell) if (start..end).contains(&since) => cell,
            _ => {
                let column = since / self.column_ns;
                let start = column * self.column_ns;
                let cell = column as usize / self.merge;
                self.latest_column = (start, start.saturating_add(self.column_ns), cell);
                cell
            }
        };
        let thread = &mut self.threads[index];
        thread.calls += 1;
        if thread.cells.len() <= cell {
            thread.cells.resize(cell + 1, 0);
        }
        thread.cells[cell] += 1;
    }

    /// Every thread's cells, each pair summed into one (cells twice as wide).
    fn halve_cells(&mut self) {
        // The latest column's cell is no longer where it was.
        self.latest_column = (0, 0, 0);
        for thread in &mut self.threads {
            let merged: Vec<u32> = thread.cells.chunks(2).map(|pair| pair.iter().sum()).collect();
            thread.cells = merged;
        }
    }

    pub fn finish(
        self,
        book: &ProcessBook,
        header: &LogHeader,
        stuck: Option<&StuckSnapshot>,
        chain: &[u32],
    ) -> Timeline {
        let origin = self.origin.unwrap_or(0);
        let mut texts: Vec<String> = Vec::new();
        let mut text = |event: &Event| {
            texts.push(trace_line(event, book, header.boot_to_wall_ns));
            (texts.len() - 1) as u32
        };
        let since = |ts: u64| ts.saturating_sub(origin);
        let mut bars: HashMap<u32, Vec<Bar>> = HashMap::new();
        let bars_dropped = self.spans - self.bar_events.len() as u64;
        let mut kept: Vec<u64> = self.bar_events.keys().copied().collect();
        kept.sort_unstable();
        for seq in kept {
            let e = &self.bar_events[&seq];
            let bar = Bar(since(e.header.ts_ns), e.duration_ns, text(&Event::Syscall(*e)), bar_class(e));
            bars.entry(e.header.tid).or_default().push(bar);
        }
        drop(self.bar_events);
        let snapshot = stuck.and_then(|s| {
            let wall = crate::clock::parse_rfc3339(&s.taken_at)?;
            let boot = u64::try_from(wall - header.boot_to_wall_ns).ok()?;
            Some((since(boot), (s.window_s * 1e9) as u64))
        });
        let mut marks: HashMap<u32, Vec<Mark>> = HashMap::new();
        for &(kind, at) in &self.marks {
            // Bytes `observe` copied from a decoded record: they decode again.
            let Ok(event) = Event::decode(&self.mark_records[at..]) else { continue };
            let mark = Mark(since(event.header().ts_ns), kind.name(), text(&event));
            marks.entry(owner_tid(&event)).or_default().push(mark);
        }
        drop((self.marks, self.mark_records));
        // A thread busy on a CPU makes no syscall to draw: its share over the window is the bar.
        if let (Some(s), Some((at, window))) = (stuck, snapshot) {
            for (_, t) in s.threads().filter(|(_, t)| t.cpu_share >= 0.5) {
                let site = t.samples.first().map_or(String::new(), |(f, _)| format!(", sampled mostly in {f}"));
                texts.push(format!(
                    "on CPU {:.0}% of the {:.1}s before the snapshot without completing a syscall{site}",
                    t.cpu_share * 100.0,
                    s.window_s
                ));
                let bar = Bar(at.saturating_sub(window), window, (texts.len() - 1) as u32, BarClass::Cpu);
                bars.entry(t.tid).or_default().push(bar);
            }
        }
        let merge = merge_for(self.threads.len(), self.merge) / self.merge;
        let density_ns = self.column_ns * (self.merge * merge) as u64;
        let calls: HashMap<u32, u64> = self.threads.iter().map(|t| (t.tid, t.calls)).collect();
        let mut density: HashMap<u32, Vec<(u32, u32)>> = self
            .threads
            .into_iter()
            .map(|thread| {
                let cells = thread
                    .cells
                    .chunks(merge)
                    .enumerate()
                    .map(|(i, c)| (i as u32, c.iter().sum::<u32>()))
                    .filter(|(_, n)| *n > 0)
                    .collect();
                (thread.tid, cells)
            })
            .collect();
        let processes = self
            .lanes
            .lanes(book, stuck, chain)
            .into_iter()
            .map(|p: ProcessLanes| ProcessTrack {
                pid: p.pid,
                comm: p.comm,
                exit: p.exit,
                chain: p.chain,
                threads: p
                    .threads
                    .into_iter()
                    .map(|t| {
                        let mut bars = bars.remove(&t.tid).unwrap_or_default();
                        bars.sort_by_key(|b| b.0);
                        let mut marks = marks.remove(&t.tid).unwrap_or_default();
                        marks.sort_by_key(|m| m.0);
                        ThreadTrack {
                            tid: t.tid,
                            comm: t.comm,
                            chain: t.chain,
                            bars,
                            marks,
                            density: density.remove(&t.tid).unwrap_or_default(),
                            calls: calls.get(&t.tid).copied().unwrap_or(0),
                        }
                    })
                    .collect(),
            })
            .collect();
        let span = self.end.max(snapshot.map_or(0, |(at, _)| at));
        Timeline {
            origin,
            wall0: origin as i64 + header.boot_to_wall_ns,
            span,
            order_only: self.order_only,
            processes,
            texts,
            density_ns,
            window: snapshot.map(|(at, window)| (at.saturating_sub(window), at)),
            snapshot: snapshot.map(|(at, _)| at),
            snapshot_reason: stuck.map_or_else(String::new, |s| s.reason.clone()),
            syscalls: calls.values().sum(),
            bars_dropped,
            marks_dropped: self.marks_dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::classifiers::testing::{exit, fork, generate, syscall};

    fn at(mut event: Event, ts_ns: u64, duration_ns: u64) -> Event {
        match &mut event {
            Event::Syscall(e) => {
                e.header.ts_ns = ts_ns;
                e.duration_ns = duration_ns;
            }
            Event::Fork(e) => e.header.ts_ns = ts_ns,
            Event::Exit(e) => e.header.ts_ns = ts_ns,
            Event::SignalGenerate(e) => e.header.ts_ns = ts_ns,
            _ => {}
        }
        event
    }

    fn build(events: &[Event], chain: &[u32]) -> Timeline {
        let mut book = ProcessBook::default();
        let mut builder = TimelineBuilder::default();
        for e in events {
            book.observe(e);
            builder.observe(e, &book);
        }
        builder.finish(&book, &LogHeader::default(), None, chain)
    }

    fn thread(t: &Timeline, tid: u32) -> &ThreadTrack {
        t.processes.iter().flat_map(|p| &p.threads).find(|t| t.tid == tid).unwrap()
    }

    #[test]
    fn a_small_capture_keeps_every_call_as_a_bar_and_every_failure_and_signal_as_a_mark() {
        let events = [
            at(fork(10, 10, 11, true), 1_000, 0),
            at(syscall(10, 11, "futex", [0x55, 0, 2, 0, 0, 0], 0), 2_000, 5_000_000),
            at(syscall(10, 10, "mprotect", [0x7000, 8192, 3, 0, 0, 0], -12), 3_000, 4_000),
            at(generate(99, 99, 11, libc::SIGTERM, 0), 6_000_000, 0),
            at(exit(10, 11, false), 6_000_100, 0),
        ];
        let t = build(&events, &[11]);
        assert_eq!(t.processes.len(), 1);
        let tids: Vec<u32> = t.processes[0].threads.iter().map(|t| t.tid).collect();
        assert_eq!(tids, [11, 10], "the chain's thread first");
        let waiter = thread(&t, 11);
        assert!(waiter.chain);
        assert_eq!(waiter.bars, [Bar(1_000, 5_000_000, waiter.bars[0].2, BarClass::Wait)]);
        let kinds: Vec<&str> = waiter.marks.iter().map(|m| m.1).collect();
        assert_eq!(kinds, ["signal", "exit"], "the signal is on its target's lane");
        let main = thread(&t, 10);
        assert_eq!(main.bars[0].3, BarClass::Failed);
        let failure = main.marks.iter().find(|m| m.1 == "failure").unwrap();
        assert!(t.texts[failure.2 as usize].contains("mprotect(0x7000, 8192, PROT_READ|PROT_WRITE) = -1 ENOMEM"));
        assert_eq!((t.span, t.bars_dropped, t.marks_dropped, t.syscalls), (5_999_100, 0, 0, 2));
    }

    #[test]
    fn many_threads_share_the_density_cells_while_the_log_is_read() {
        // A thousand threads, each making one call at its own moment of a one-second capture.
        let threads = 1_000u32;
        let mut book = ProcessBook::default();
        let mut builder = TimelineBuilder::default();
        for i in 0..threads {
            let call = at(syscall(10, 100 + i, "mprotect", [0x7000, 4096, 3, 0, 0, 0], 0), u64::from(i) * 1_000_000, 1);
            book.observe(&call);
            builder.observe(&call, &book);
            // Each thread's cells reach as far as its call: without sharing, ~1000 each.
            let held: usize = builder.threads.iter().map(|t| t.cells.len()).sum();
            assert!(held <= MAX_DENSITY_CELLS + builder.threads.len(), "{held} cells held after {i} threads");
        }
        let t = builder.finish(&book, &LogHeader::default(), None, &[]);
        for i in 0..threads {
            let at = u64::from(i) * 1_000_000 / t.density_ns;
            assert_eq!(thread(&t, 100 + i).density, [(at as u32, 1)], "thread {i}");
        }
    }

    #[test]
    fn a_huge_capture_is_bounded_but_keeps_the_longest_calls_and_every_failure() {
        let mut events = Vec::new();
        for i in 0..(MAX_BARS as u64 * 3) {
            let tid = 10 + (i % 4) as u32;
            // Every 1000th call is long, every 5000th fails.
            let duration = if i % 1000 == 0 { 10_000_000 + i } else { 1_000 };
            let ret = if i % 5000 == 0 { -11 } else { 0 };
            events.push(at(syscall(10, tid, "clone3", [0, 88, 0, 0, 0, 0], ret), i * 10_000, duration));
        }
        let t = build(&events, &[]);
        let bars: Vec<&Bar> = t.processes.iter().flat_map(|p| &p.threads).flat_map(|t| &t.bars).collect();
        assert_eq!(bars.len(), MAX_BARS);
        assert_eq!(t.bars_dropped, 2 * MAX_BARS as u64);
        assert_eq!(bars.iter().filter(|b| b.1 >= 10_000_000).count(), MAX_BARS * 3 / 1000, "every long call");
        let failures: usize = t
            .processes
            .iter()
            .flat_map(|p| &p.threads)
            .map(|t| t.marks.iter().filter(|m| m.1 == "failure").count())
            .sum();
        assert_eq!(failures, MAX_BARS * 3 / 5000);
        let cells: usize = t.processes.iter().flat_map(|p| &p.threads).map(|t| t.density.len()).sum();
        assert!(cells <= 4 * DENSITY_COLUMNS as usize, "{cells}");
        let counted: u32 = t.processes.iter().flat_map(|p| &p.threads).flat_map(|t| &t.density).map(|c| c.1).sum();
        assert_eq!(counted as usize, MAX_BARS * 3, "the density counts every call");
        assert_eq!(t.texts.len(), MAX_BARS + failures);
    }
}
