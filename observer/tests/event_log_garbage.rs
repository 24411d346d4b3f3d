//! The event-log reader on damaged and hostile input: deterministic pseudo-random mutations of a
//! real log (the fuzz target in `fuzz/` explores the same space without a fixed budget).
//!
//! Whatever the bytes, reading to the end must not panic, must terminate, and every error that
//! names a byte offset must name one inside the input.
use std::panic::{catch_unwind, AssertUnwindSafe};

use observer::{
    event::Event,
    eventlog::{EventLogReader, EventLogWriter, LogError, LogHeader, MAGIC, MAX_RECORD_LEN, RECORD_SCHEMA},
};
use observer_common::{
    flags, kind, EventHeader, ExecEvent, ExitEvent, FaultEvent, ForkEvent, SignalGenerateEvent, SyscallEvent,
};

/// xorshift64*: small, fast, and the same sequence on every run and platform.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-enough in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

fn header(kind: u16, flags: u16, tid: u32, ts_ns: u64) -> EventHeader {
    EventHeader { kind, flags, tid, tgid: 100, _pad: 0, ts_ns }
}

fn comm(name: &str) -> [u8; 16] {
    let mut out = [0; 16];
    out[..name.len()].copy_from_slice(name.as_bytes());
    out
}

/// One record of several kinds (and so of several sizes).
fn sample_events() -> Vec<Event> {
    let mut filename = [0; 128];
    filename[..13].copy_from_slice(b"/usr/bin/true");
    vec![
        Event::Exec(ExecEvent {
            header: header(kind::EXEC, 0, 100, 1_000),
            old_tid: 100,
            _pad: 0,
            comm: comm("true"),
            filename,
        }),
        Event::Syscall(SyscallEvent {
            header: header(kind::SYSCALL, 0, 100, 2_000),
            nr: 56,
            nargs: 5,
            args: [0x11, 0, 0, 0, 0, 0],
            ret: 101,
            duration_ns: 1_500,
            aux: 0,
        }),
        Event::Fork(ForkEvent {
            header: header(kind::FORK, flags::THREAD, 100, 3_000),
            child_tid: 101,
            child_tgid: 100,
            parent_comm: comm("true"),
        }),
        Event::SignalGenerate(SignalGenerateEvent {
            header: header(kind::SIGNAL_GENERATE, 0, 101, 4_000),
            sig: 11,
            errno: 0,
            code: 1,
            target_tid: 101,
            group: 0,
            result: 0,
            sender_comm: comm("true"),
            target_comm: comm("true"),
        }),
        Event::Fault(FaultEvent { header: header(kind::FAULT, 0, 101, 4_000), sig: 11, code: 1, addr: 0xdead_0000 }),
        Event::Exit(ExitEvent { header: header(kind::EXIT, flags::GROUP_DEAD, 101, 5_000), comm: comm("true") }),
    ]
}

/// A log written by the real writer, and the byte offset where each record frame ends.
fn write_log(events: &[Event]) -> (Vec<u8>, Vec<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.bin");
    let header = LogHeader {
        record_schema: RECORD_SCHEMA,
        kernel_release: "6.8.0".into(),
        hostname: "test".into(),
        command: vec!["true".into()],
        ..Default::default()
    };
    let mut writer = EventLogWriter::new(std::fs::File::create(&path).unwrap(), &header).unwrap();
    for event in events {
        writer.append(event).unwrap();
    }
    writer.finish().unwrap();
    let data = std::fs::read(&path).unwrap();

    let header_len = u32::from_le_bytes(data[12..16].try_into().unwrap()) as usize;
    let mut end = 16 + header_len;
    let mut ends = Vec::new();
    for event in events {
        end += 4 + event.as_bytes().len();
        ends.push(end);
    }
    assert_eq!(end, data.len());
    (data, ends)
}

/// How reading some bytes to the end went.
#[derive(Debug)]
struct Outcome {
    events: Vec<Event>,
    tail: u64,
    error: Option<String>,
}

/// Every `at byte N` in an error message names an offset within the input (`N == len` included:
/// "the header should start here" in a file that ends there).
fn assert_offsets_inside(error: &LogError, len: usize, input: &[u8]) {
    if let LogError::Corrupt { offset, .. } = error {
        assert!(*offset as usize <= len, "error names byte {offset} of a {len}-byte input: {error}\n{input:02x?}");
    }
    let message = error.to_string();
    for (at, _) in message.match_indices("at byte ") {
        let digits: String = message[at + "at byte ".len()..].chars().take_while(char::is_ascii_digit).collect();
        if let Ok(offset) = digits.parse::<usize>() {
            assert!(offset <= len, "error names byte {offset} of a {len}-byte input: {message}\n{input:02x?}");
        }
    }
}

/// Reads `data` as a whole log, to the end or the first error, checking the reader's invariants
/// on the way. Panics (with the input, to reproduce) if the reader panics.
fn read_to_end(data: &[u8]) -> Outcome {
    let len = data.len();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut reader = match EventLogReader::from_bytes(data.to_vec()) {
            Ok(reader) => reader,
            Err(e) => {
                assert_offsets_inside(&e, len, data);
                return Outcome { events: Vec::new(), tail: 0, error: Some(e.to_string()) };
            }
        };
        let mut events = Vec::new();
        loop {
            let before = reader.offset();
            match reader.next_event() {
                Ok(Some(event)) => {
                    // Always progress, never past the end: the loop ends.
                    assert!(reader.offset() > before && reader.offset() as usize <= len, "{data:02x?}");
                    events.push(event);
                }
                Ok(None) => {
                    let tail = reader.truncated_tail();
                    assert_eq!(reader.offset() + tail, len as u64, "{data:02x?}");
                    return Outcome { events, tail, error: None };
                }
                Err(e) => {
                    assert_offsets_inside(&e, len, data);
                    return Outcome { events, tail: reader.truncated_tail(), error: Some(e.to_string()) };
                }
            }
        }
    }));
    match result {
        Ok(outcome) => outcome,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("?");
            panic!("reader panicked ({what}) on {len} bytes: {data:02x?}");
        }
    }
}

/// Values a length or kind field is most likely to be wrong with.
fn interesting_u32(rng: &mut Rng) -> u32 {
    const VALUES: [u32; 10] = [0, 1, 23, 24, 39, 40, MAX_RECORD_LEN, MAX_RECORD_LEN + 1, i32::MAX as u32, u32::MAX];
    if rng.below(4) == 0 {
        rng.next() as u32
    } else {
        VALUES[rng.below(VALUES.len())]
    }
}

/// One random kind of damage to `data`.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, pristine: &[u8]) {
    match rng.below(6) {
        // Flip a few bytes anywhere.
        0 => {
            for _ in 0..1 + rng.below(8) {
                if !data.is_empty() {
                    let at = rng.below(data.len());
                    data[at] ^= 1 << rng.below(8);
                }
            }
        }
        // Overwrite a byte with a random value.
        1 => {
            if !data.is_empty() {
                let at = rng.below(data.len());
                data[at] = rng.byte();
            }
        }
        // Truncate at a random point.
        2 => {
            let at = rng.below(data.len() + 1);
            data.truncate(at);
        }
        // Splice in random bytes, or a piece of the original log, of random length.
        3 => {
            let at = rng.below(data.len() + 1);
            let piece = if rng.below(2) == 0 {
                let n = rng.below(64);
                rng.bytes(n)
            } else {
                let from = rng.below(pristine.len());
                let to = (from + rng.below(256)).min(pristine.len());
                pristine[from..to].to_vec()
            };
            data.splice(at..at, piece);
        }
        // Cut out a random range.
        4 => {
            let from = rng.below(data.len() + 1);
            let to = (from + rng.below(64)).min(data.len());
            data.drain(from..to);
        }
        // Put a suspicious value in a 4-byte field (lengths, version, header length, kind).
        _ => {
            if data.len() >= 4 {
                let at = rng.below(data.len() - 3);
                data[at..at + 4].copy_from_slice(&interesting_u32(rng).to_le_bytes());
            }
        }
    }
}

#[test]
fn randomly_damaged_logs_read_to_the_end_without_panicking_and_name_offsets_inside_the_input() {
    let (pristine, _) = write_log(&sample_events());
    let mut rng = Rng::new(0x0b5e_7e47_5eed_0001);
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..15_000 {
        let mut data = pristine.clone();
        for _ in 0..1 + rng.below(3) {
            mutate(&mut rng, &mut data, &pristine);
        }
        match read_to_end(&data).error {
            None => ok += 1,
            Some(_) => failed += 1,
        }
    }
    // The mutations reach both outcomes (a mutator that only broke the magic would test nothing).
    assert!(ok > 1_000 && failed > 1_000, "{ok} read to the end, {failed} stopped with an error");
}

#[test]
fn garbage_after_a_valid_preamble_and_header_reads_without_panicking() {
    let (pristine, ends) = write_log(&sample_events());
    let records_start = ends[0] - 4 - sample_events()[0].as_bytes().len();
    let mut rng = Rng::new(0x0b5e_7e47_5eed_0002);
    let mut records_read = 0;
    for i in 0..5_000 {
        let mut data = pristine[..records_start].to_vec();
        let n = rng.below(512);
        if i % 2 == 0 {
            // Pure garbage.
            data.extend(rng.bytes(n));
        } else {
            // Plausible frames: a sane length and a known kind, random contents.
            while data.len() < records_start + n {
                let body_len = 24 + rng.below(200);
                data.extend_from_slice(&(body_len as u32).to_le_bytes());
                let mut body = rng.bytes(body_len);
                body[..2].copy_from_slice(&(1 + rng.below(8) as u16).to_le_bytes());
                data.extend(body);
            }
        }
        records_read += read_to_end(&data).events.len();
    }
    assert!(records_read > 100, "only {records_read} records decoded: the frames are not plausible enough");
}

#[test]
fn random_bytes_behind_the_magic_or_alone_never_panic() {
    let mut rng = Rng::new(0x0b5e_7e47_5eed_0003);
    for i in 0..2_000 {
        let n = rng.below(96);
        let mut data = if i % 2 == 0 { MAGIC.to_vec() } else { Vec::new() };
        if i % 4 == 0 {
            // Version 1 and a small header length, so the header parser sees the garbage.
            data.extend_from_slice(&1u32.to_le_bytes());
            data.extend_from_slice(&(rng.below(80) as u32).to_le_bytes());
        }
        data.extend(rng.bytes(n));
        read_to_end(&data);
        // The same bytes as a single record.
        if let Ok(event) = Event::decode(&data) {
            assert_eq!(event.as_bytes(), &data[..event.as_bytes().len()]);
        }
    }
}

#[test]
fn a_log_cut_at_any_byte_reads_the_whole_records_before_the_cut_and_reports_the_rest_as_its_tail() {
    let events = sample_events();
    let (data, ends) = write_log(&events);
    let records_start = ends[0] - 4 - events[0].as_bytes().len();
    for cut in 0..=data.len() {
        let outcome = read_to_end(&data[..cut]);
        if cut < records_start {
            // Not even the header is whole: the file is refused, not read as empty.
            let error = outcome.error.unwrap_or_else(|| panic!("a log cut at {cut} inside its header was accepted"));
            if cut < 16 {
                assert!(error.starts_with("not an observer event log"), "cut at {cut}: {error}");
            } else {
                assert!(error.starts_with("corrupt event log at byte 12:"), "cut at {cut}: {error}");
            }
            continue;
        }
        assert_eq!(outcome.error, None, "cut at {cut}");
        let whole = ends.iter().filter(|&&end| end <= cut).count();
        let last_end = if whole == 0 { records_start } else { ends[whole - 1] };
        assert_eq!(outcome.events, events[..whole], "cut at {cut}");
        assert_eq!(outcome.tail, (cut - last_end) as u64, "cut at {cut}");
    }
}
