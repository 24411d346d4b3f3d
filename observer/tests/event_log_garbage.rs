//! The event-log reader on damaged and hostile input: deterministic pseudo-random mutations of a
//! real log of each version (the fuzz target in `fuzz/` explores the same space without a fixed
//! budget).
//!
//! Whatever the bytes, reading to the end must not panic, must terminate, and every error that
//! names a byte offset must name one inside the input.
use std::panic::{catch_unwind, AssertUnwindSafe};

use std::time::Instant;

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

fn log_header() -> LogHeader {
    LogHeader {
        record_schema: RECORD_SCHEMA,
        kernel_release: "6.8.0".into(),
        hostname: "test".into(),
        command: vec!["true".into()],
        ..Default::default()
    }
}

/// Where the records of a log start (after magic, version and header).
fn records_start(data: &[u8]) -> usize {
    16 + u32::from_le_bytes(data[12..16].try_into().unwrap()) as usize
}

/// A version 2 log written by the real writer, a block closed after every `per_block` records,
/// and the byte offset where each block ends with the records before that offset.
fn write_log(events: &[Event], per_block: usize) -> (Vec<u8>, Vec<(usize, usize)>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.bin");
    let mut writer = EventLogWriter::new(std::fs::File::create(&path).unwrap(), &log_header()).unwrap();
    let now = Instant::now();
    for group in events.chunks(per_block) {
        for event in group {
            writer.append(event, now).unwrap();
        }
        writer.write_pending().unwrap();
    }
    writer.finish().unwrap();
    let data = std::fs::read(&path).unwrap();

    // Block frames: tag, compressed length, raw length, record count, two checksums.
    let mut at = records_start(&data);
    let mut ends = Vec::new();
    while at < data.len() {
        assert_eq!(&data[at..at + 4], b"OBLK");
        let records = u32::from_le_bytes(data[at + 12..at + 16].try_into().unwrap()) as usize;
        at += 24 + u32::from_le_bytes(data[at + 4..at + 8].try_into().unwrap()) as usize;
        ends.push((at, ends.last().map_or(0, |e: &(usize, usize)| e.1) + records));
    }
    assert_eq!(at, data.len());
    assert_eq!(ends.last().map(|e| e.1), Some(events.len()));
    (data, ends)
}

/// A version 1 log (length-framed records, as observer wrote before version 2), and the byte
/// offset where each record frame ends.
fn write_v1_log(events: &[Event]) -> (Vec<u8>, Vec<(usize, usize)>) {
    let json = serde_json::to_vec(&log_header()).unwrap();
    let mut data = MAGIC.to_vec();
    data.extend_from_slice(&1u32.to_le_bytes());
    data.extend_from_slice(&(json.len() as u32).to_le_bytes());
    data.extend_from_slice(&json);
    let mut ends = Vec::new();
    for (i, event) in events.iter().enumerate() {
        data.extend_from_slice(&(event.as_bytes().len() as u32).to_le_bytes());
        data.extend_from_slice(event.as_bytes());
        ends.push((data.len(), i + 1));
    }
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
        // Records of one version 2 block come out at one offset (the next block's); a block holds
        // at most 256 KiB of records, at least a byte each.
        let mut at_offset = 0;
        loop {
            let before = reader.offset();
            match reader.next_event() {
                Ok(Some(event)) => {
                    // Progress, never past the end: the loop ends.
                    let after = reader.offset();
                    assert!(after as usize <= len, "{data:02x?}");
                    if reader.version() == 1 || after > before {
                        assert!(after > before, "{data:02x?}");
                        at_offset = 0;
                    } else {
                        at_offset += 1;
                        assert!(at_offset < 256 * 1024, "{data:02x?}");
                    }
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
    let events = sample_events();
    for (version, pristine) in [(1, write_v1_log(&events).0), (2, write_log(&events, 2).0)] {
        let mut rng = Rng::new(0x0b5e_7e47_5eed_0001 + version);
        let (mut ok, mut failed, mut records) = (0, 0, 0);
        for _ in 0..10_000 {
            let mut data = pristine.clone();
            for _ in 0..1 + rng.below(3) {
                mutate(&mut rng, &mut data, &pristine);
            }
            let outcome = read_to_end(&data);
            records += outcome.events.len();
            match outcome.error {
                None => ok += 1,
                Some(_) => failed += 1,
            }
        }
        // The mutations reach both outcomes (a mutator that only broke the magic would test
        // nothing), and records are read from damaged logs (fewer from version 2, where most
        // damage trips a checksum: cuts and damage past a block read).
        assert!(
            ok > 500 && failed > 1_000 && records > 3_000,
            "version {version}: {ok} read to the end, {failed} stopped with an error, {records} records"
        );
    }
}

/// A version 2 block frame around `compressed`, with good checksums (the layout is
/// docs/event-log.md's).
fn block_frame(compressed: &[u8], raw_len: u32, records: u32) -> Vec<u8> {
    let mut frame = b"OBLK".to_vec();
    for word in [compressed.len() as u32, raw_len, records, crc32fast::hash(compressed)] {
        frame.extend_from_slice(&word.to_le_bytes());
    }
    let own = crc32fast::hash(&frame);
    frame.extend_from_slice(&own.to_le_bytes());
    frame.extend_from_slice(compressed);
    frame
}

#[test]
fn well_framed_blocks_of_garbage_records_read_without_panicking() {
    let (pristine, _) = write_log(&sample_events(), 100);
    let start = records_start(&pristine);
    let mut rng = Rng::new(0x0b5e_7e47_5eed_0004);
    let (mut records_read, mut errors) = (0, 0);
    for i in 0..3_000 {
        let mut data = pristine[..start].to_vec();
        for _ in 0..1 + rng.below(3) {
            // Random records: plausible small numbers, or the real block's bytes damaged.
            let mut raw = if i % 2 == 0 {
                let n = 1 + rng.below(300);
                (0..n).map(|_| if rng.below(3) == 0 { rng.byte() } else { rng.byte() % 16 }).collect::<Vec<u8>>()
            } else {
                let block = &pristine[start + 24..];
                let mut raw = zstd::bulk::decompress(block, 1 << 20).unwrap();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(raw.len());
                    raw[at] = rng.byte();
                }
                raw
            };
            if rng.below(8) == 0 {
                raw.truncate(rng.below(raw.len() + 1).max(1));
            }
            let records =
                if rng.below(2) == 0 { sample_events().len() as u32 } else { 1 + rng.below(raw.len()) as u32 };
            let compressed = zstd::bulk::compress(&raw, 1).unwrap();
            data.extend(block_frame(&compressed, raw.len() as u32, records));
        }
        let outcome = read_to_end(&data);
        records_read += outcome.events.len();
        errors += usize::from(outcome.error.is_some());
    }
    assert!(records_read > 1_000 && errors > 1_000, "{records_read} records decoded, {errors} errors");
}

#[test]
fn garbage_after_a_valid_preamble_and_header_reads_without_panicking() {
    let (pristine, ends) = write_v1_log(&sample_events());
    let records_start = ends[0].0 - 4 - sample_events()[0].as_bytes().len();
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
            // Version 1 or 2 and a small header length, so the header parser sees the garbage.
            data.extend_from_slice(&(1 + (i % 8 == 0) as u32).to_le_bytes());
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
fn a_log_cut_at_any_byte_reads_the_whole_records_or_blocks_before_the_cut_and_reports_the_rest_as_its_tail() {
    let events = sample_events();
    for (version, (data, ends)) in [(1, write_v1_log(&events)), (2, write_log(&events, 2))] {
        let records_start = records_start(&data);
        for cut in 0..=data.len() {
            let outcome = read_to_end(&data[..cut]);
            if cut < records_start {
                // Not even the header is whole: the file is refused, not read as empty.
                let error = outcome
                    .error
                    .unwrap_or_else(|| panic!("v{version}: a log cut at {cut} inside its header was accepted"));
                if cut < 16 {
                    assert!(error.starts_with("not an observer event log"), "v{version} cut at {cut}: {error}");
                } else {
                    assert!(error.starts_with("corrupt event log at byte 12:"), "v{version} cut at {cut}: {error}");
                }
                continue;
            }
            assert_eq!(outcome.error, None, "v{version} cut at {cut}");
            let (last_end, whole) =
                ends.iter().rev().find(|(end, _)| *end <= cut).copied().unwrap_or((records_start, 0));
            assert_eq!(outcome.events, events[..whole], "v{version} cut at {cut}");
            assert_eq!(outcome.tail, (cut - last_end) as u64, "v{version} cut at {cut}");
        }
    }
}
