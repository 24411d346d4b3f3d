//! The Perfetto trace: a `Trace` of `TracePacket`s holding TrackDescriptors (a process track per
//! process, a thread track per thread) and TrackEvents (slice begin/end pairs for syscalls,
//! instants with debug annotations and flow ids). Field numbers are those of perfetto's
//! `protos/perfetto/trace/{trace,trace_packet}.proto` and `track_event/*.proto`. Timestamps are
//! the kernel's CLOCK_BOOTTIME, Perfetto's default trace clock.
use std::{
    collections::HashSet,
    io::{self, BufWriter, Write},
};

use super::{protobuf::Message, Arg, Instant, Sink, Slice, Track};
use crate::render::lanes::{ProcessLanes, ThreadLane};

/// `Trace.packet`.
const TRACE_PACKET: u32 = 1;

mod packet {
    pub const TIMESTAMP: u32 = 8;
    pub const TRUSTED_PACKET_SEQUENCE_ID: u32 = 10;
    pub const TRACK_EVENT: u32 = 11;
    pub const SEQUENCE_FLAGS: u32 = 13;
    pub const TRACK_DESCRIPTOR: u32 = 60;
    /// `SequenceFlags.SEQ_INCREMENTAL_STATE_CLEARED`.
    pub const SEQ_INCREMENTAL_STATE_CLEARED: u64 = 1;
}

mod track_descriptor {
    pub const UUID: u32 = 1;
    pub const PROCESS: u32 = 3;
    pub const THREAD: u32 = 4;
}

mod process_descriptor {
    pub const PID: u32 = 1;
    pub const PROCESS_NAME: u32 = 6;
}

mod thread_descriptor {
    pub const PID: u32 = 1;
    pub const TID: u32 = 2;
    pub const THREAD_NAME: u32 = 5;
}

mod track_event {
    pub const DEBUG_ANNOTATIONS: u32 = 4;
    pub const TYPE: u32 = 9;
    pub const TRACK_UUID: u32 = 11;
    pub const CATEGORIES: u32 = 22;
    pub const NAME: u32 = 23;
    pub const FLOW_IDS: u32 = 47;
    pub const TERMINATING_FLOW_IDS: u32 = 48;
    pub const TYPE_SLICE_BEGIN: u64 = 1;
    pub const TYPE_SLICE_END: u64 = 2;
    pub const TYPE_INSTANT: u64 = 3;
}

mod debug_annotation {
    pub const INT_VALUE: u32 = 4;
    pub const STRING_VALUE: u32 = 6;
    pub const NAME: u32 = 10;
}

/// The one packet sequence this writer is.
const SEQUENCE_ID: u64 = 1;

pub fn process_uuid(pid: u32) -> u64 {
    (1 << 32) | u64::from(pid)
}

pub fn thread_uuid(tid: u32) -> u64 {
    (2 << 32) | u64::from(tid)
}

pub struct PerfettoSink<W: Write> {
    out: BufWriter<W>,
    first: bool,
    processes: HashSet<u32>,
    threads: HashSet<u32>,
}

impl<W: Write> PerfettoSink<W> {
    pub fn new(out: W) -> Self {
        Self { out: BufWriter::new(out), first: true, processes: HashSet::new(), threads: HashSet::new() }
    }

    fn packet(&mut self, mut packet: Message) -> io::Result<()> {
        packet.uint(packet::TRUSTED_PACKET_SEQUENCE_ID, SEQUENCE_ID);
        if std::mem::take(&mut self.first) {
            packet.uint(packet::SEQUENCE_FLAGS, packet::SEQ_INCREMENTAL_STATE_CLEARED);
        }
        let mut framed = Message::new();
        framed.message(TRACE_PACKET, &packet);
        self.out.write_all(framed.as_bytes())
    }

    fn declare_process(&mut self, pid: u32, name: &str) -> io::Result<()> {
        self.processes.insert(pid);
        let mut process = Message::new();
        process.int(process_descriptor::PID, i64::from(pid));
        if !name.is_empty() {
            process.string(process_descriptor::PROCESS_NAME, name);
        }
        let mut track = Message::new();
        track.uint(track_descriptor::UUID, process_uuid(pid)).message(track_descriptor::PROCESS, &process);
        let mut packet = Message::new();
        packet.message(packet::TRACK_DESCRIPTOR, &track);
        self.packet(packet)
    }

    fn declare_thread(&mut self, pid: u32, tid: u32, name: &str) -> io::Result<()> {
        self.threads.insert(tid);
        let mut thread = Message::new();
        thread.int(thread_descriptor::PID, i64::from(pid)).int(thread_descriptor::TID, i64::from(tid));
        if !name.is_empty() {
            thread.string(thread_descriptor::THREAD_NAME, name);
        }
        let mut track = Message::new();
        track.uint(track_descriptor::UUID, thread_uuid(tid)).message(track_descriptor::THREAD, &thread);
        let mut packet = Message::new();
        packet.message(packet::TRACK_DESCRIPTOR, &track);
        self.packet(packet)
    }

    /// The track's uuid, declared first when nothing declared it (a pid only a finding names).
    fn track(&mut self, track: Track) -> io::Result<u64> {
        match track {
            Track::Thread { pid, tid } => {
                if !self.threads.contains(&tid) {
                    self.declare_thread(pid, tid, "")?;
                }
                Ok(thread_uuid(tid))
            }
            Track::Process(pid) => {
                if !self.processes.contains(&pid) {
                    self.declare_process(pid, "")?;
                }
                Ok(process_uuid(pid))
            }
        }
    }

    fn event(&mut self, ts: u64, event: &Message) -> io::Result<()> {
        let mut packet = Message::new();
        packet.uint(packet::TIMESTAMP, ts).message(packet::TRACK_EVENT, event);
        self.packet(packet)
    }
}

fn annotations(event: &mut Message, args: &[(&'static str, Arg)]) {
    for (name, value) in args {
        let mut a = Message::new();
        a.string(debug_annotation::NAME, name);
        match value {
            Arg::Text(text) => a.string(debug_annotation::STRING_VALUE, text),
            Arg::Int(n) => a.int(debug_annotation::INT_VALUE, *n),
        };
        event.message(track_event::DEBUG_ANNOTATIONS, &a);
    }
}

impl<W: Write> Sink for PerfettoSink<W> {
    fn process(&mut self, process: &ProcessLanes, _rank: usize) -> io::Result<()> {
        self.declare_process(process.pid, &process.comm)
    }

    fn thread(&mut self, thread: &ThreadLane, _rank: usize) -> io::Result<()> {
        self.declare_thread(thread.pid, thread.tid, &thread.comm)
    }

    fn slice(&mut self, slice: &Slice) -> io::Result<()> {
        let uuid = self.track(Track::Thread { pid: slice.pid, tid: slice.tid })?;
        let mut begin = Message::new();
        begin
            .uint(track_event::TYPE, track_event::TYPE_SLICE_BEGIN)
            .uint(track_event::TRACK_UUID, uuid)
            .string(track_event::CATEGORIES, slice.category)
            .string(track_event::NAME, &slice.name);
        annotations(&mut begin, &slice.args);
        self.event(slice.ts, &begin)?;
        let mut end = Message::new();
        end.uint(track_event::TYPE, track_event::TYPE_SLICE_END).uint(track_event::TRACK_UUID, uuid);
        self.event(slice.ts + slice.duration, &end)
    }

    fn instant(&mut self, instant: &Instant) -> io::Result<()> {
        let uuid = self.track(instant.track)?;
        let mut event = Message::new();
        event
            .uint(track_event::TYPE, track_event::TYPE_INSTANT)
            .uint(track_event::TRACK_UUID, uuid)
            .string(track_event::CATEGORIES, instant.category)
            .string(track_event::NAME, &instant.name);
        annotations(&mut event, &instant.args);
        if let Some(flow) = instant.flow_out {
            event.fixed64(track_event::FLOW_IDS, flow);
        }
        if let Some(flow) = instant.flow_in {
            event.fixed64(track_event::TERMINATING_FLOW_IDS, flow);
        }
        self.event(instant.ts, &event)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
