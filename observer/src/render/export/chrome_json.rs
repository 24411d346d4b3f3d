//! Chrome's Trace Event Format (the JSON `chrome://tracing`, Perfetto and speedscope read): one
//! object with `traceEvents` — `M` metadata naming and ordering processes and threads, `X`
//! complete events for syscalls, `i` instants, and `s`/`f` flow events bound to zero-length `X`
//! events where a flow starts or ends. Times are microseconds since the capture's first event;
//! `otherData.wall_clock_origin` says when that was.
use std::io::{self, BufWriter, Write};

use serde_json::{json, Map, Value};

use super::{Arg, Instant, Sink, Slice, Track};
use crate::render::lanes::{ProcessLanes, ThreadLane};

pub struct ChromeJsonSink<W: Write> {
    out: BufWriter<W>,
    boot_to_wall_ns: i64,
    /// CLOCK_BOOTTIME ns of the capture's first event: time 0.
    origin: u64,
    first: bool,
}

fn args(list: &[(&'static str, Arg)]) -> Value {
    let map: Map<String, Value> = list
        .iter()
        .map(|(name, value)| {
            let value = match value {
                Arg::Text(t) => json!(t),
                Arg::Int(n) => json!(n),
            };
            (name.to_string(), value)
        })
        .collect();
    Value::Object(map)
}

impl<W: Write> ChromeJsonSink<W> {
    pub fn new(out: W, boot_to_wall_ns: i64, origin: u64) -> Self {
        Self { out: BufWriter::new(out), boot_to_wall_ns, origin, first: true }
    }

    fn write(&mut self, event: &Value) -> io::Result<()> {
        if std::mem::take(&mut self.first) {
            self.out.write_all(b"{\"traceEvents\":[\n")?;
        } else {
            self.out.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut self.out, event).map_err(io::Error::other)
    }

    /// Microseconds since the first event, as the format wants them.
    fn micros(&self, ts: u64) -> f64 {
        ts.saturating_sub(self.origin) as f64 / 1000.0
    }
}

impl<W: Write> Sink for ChromeJsonSink<W> {
    fn process(&mut self, process: &ProcessLanes, rank: usize) -> io::Result<()> {
        let name = format!("{} {}", process.comm, process.pid);
        self.write(&json!({"ph": "M", "name": "process_name", "pid": process.pid, "args": {"name": name}}))?;
        self.write(&json!({"ph": "M", "name": "process_sort_index", "pid": process.pid, "args": {"sort_index": rank}}))
    }

    fn thread(&mut self, thread: &ThreadLane, rank: usize) -> io::Result<()> {
        let (pid, tid) = (thread.pid, thread.tid);
        self.write(&json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": thread.comm}}))?;
        self.write(
            &json!({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": rank}}),
        )
    }

    fn slice(&mut self, slice: &Slice) -> io::Result<()> {
        let ts = self.micros(slice.ts);
        self.write(&json!({
            "ph": "X", "name": slice.name, "cat": slice.category, "ts": ts, "dur": slice.duration as f64 / 1000.0,
            "pid": slice.pid, "tid": slice.tid, "args": args(&slice.args),
        }))
    }

    fn instant(&mut self, instant: &Instant) -> io::Result<()> {
        let ts = self.micros(instant.ts);
        let (pid, tid, scope) = match instant.track {
            Track::Thread { pid, tid } => (pid, tid, "t"),
            Track::Process(pid) => (pid, pid, "p"),
        };
        let flow = instant.flow_out.map(|id| ("s", id)).or(instant.flow_in.map(|id| ("f", id)));
        let Some((phase, id)) = flow else {
            return self.write(&json!({
                "ph": "i", "s": scope, "name": instant.name, "cat": instant.category, "ts": ts,
                "pid": pid, "tid": tid, "args": args(&instant.args),
            }));
        };
        // Flow events attach to the slice around them: a zero-length one here.
        self.write(&json!({
            "ph": "X", "name": instant.name, "cat": instant.category, "ts": ts, "dur": 0,
            "pid": pid, "tid": tid, "args": args(&instant.args),
        }))?;
        self.write(
            &json!({"ph": phase, "bp": "e", "id": id, "name": "flow", "cat": "flow", "ts": ts, "pid": pid, "tid": tid}),
        )
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.first {
            self.out.write_all(b"{\"traceEvents\":[")?;
        }
        let origin = crate::clock::rfc3339(self.origin as i64 + self.boot_to_wall_ns);
        let tail = json!({"wall_clock_origin": origin, "source": "observer"});
        write!(self.out, "\n],\"displayTimeUnit\":\"ns\",\"otherData\":{tail}}}\n")?;
        self.out.flush()
    }
}
