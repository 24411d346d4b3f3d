//! The event log end to end: what the writer writes, the reader gives back, for both versions.
use std::{
    fs::File,
    time::{Duration, Instant},
};

use observer_common::{
    flags, kind, CgroupAttachEvent, EventHeader, ExecEvent, ExitEvent, FaultEvent, ForkEvent, SignalDeliverEvent,
    SignalGenerateEvent, SyscallEvent,
};

use super::*;
use crate::event::Event;

fn header(kind: u16, tid: u32, ts_ns: u64) -> EventHeader {
    EventHeader { kind, flags: 0, tid, tgid: 100, _pad: 0, ts_ns }
}

fn exit_event(tid: u32) -> Event {
    Event::Exit(ExitEvent { header: header(kind::EXIT, tid, tid as u64), comm: *b"worker\0\0\0\0\0\0\0\0\0\0" })
}

fn syscall(tid: u32, ts_ns: u64, nr: u32, ret: i64) -> Event {
    Event::Syscall(SyscallEvent {
        header: header(kind::SYSCALL, tid, ts_ns),
        nr,
        nargs: 3,
        args: [0x7f00_1234_5000, 4096, 1, 0, 0, 0],
        ret,
        duration_ns: 700 + ts_ns % 97,
        aux: 0,
    })
}

/// One record of every kind, with odd values where the encoding has cases: a non-zero padding
/// word, a timestamp and a tid going backwards, all-ones fields.
fn every_kind() -> Vec<Event> {
    let mut path = [0u8; 128];
    path[..22].copy_from_slice(b"/observer-e2e-chromium");
    let mut filename = [0u8; 128];
    filename[..13].copy_from_slice(b"/usr/bin/true");
    let odd = EventHeader {
        kind: kind::SYSCALL,
        flags: u16::MAX,
        tid: u32::MAX,
        tgid: 1,
        _pad: 0xdead_beef,
        ts_ns: u64::MAX,
    };
    vec![
        Event::Exec(ExecEvent {
            header: header(kind::EXEC, 100, 1_000),
            old_tid: 100,
            _pad: 0,
            comm: [b'a'; 16],
            filename,
        }),
        syscall(100, 2_000, 10, 0),
        Event::Syscall(SyscallEvent {
            header: odd,
            nr: u32::MAX,
            nargs: 6,
            args: [u64::MAX; 6],
            ret: i64::MIN,
            duration_ns: 0,
            aux: 1,
        }),
        syscall(7, 1_500, 10, -11),
        Event::Fork(ForkEvent {
            header: EventHeader { flags: flags::THREAD, ..header(kind::FORK, 100, 3_000) },
            child_tid: 101,
            child_tgid: 100,
            parent_comm: [b'p'; 16],
        }),
        Event::SignalGenerate(SignalGenerateEvent {
            header: header(kind::SIGNAL_GENERATE, 101, 4_000),
            sig: 9,
            errno: 0,
            code: 0,
            target_tid: 102,
            group: 1,
            result: 0,
            sender_comm: [b's'; 16],
            target_comm: [b't'; 16],
        }),
        Event::SignalDeliver(SignalDeliverEvent {
            header: header(kind::SIGNAL_DELIVER, 102, 4_100),
            sig: 15,
            errno: 0,
            code: -6,
            _pad: 7,
            sa_handler: 0x5555_0000,
            sa_flags: 0x0400_0000,
        }),
        Event::Fault(FaultEvent { header: header(kind::FAULT, 101, 3_999), sig: 11, code: 1, addr: 0xdead_0000 }),
        Event::CgroupAttach(CgroupAttachEvent {
            header: header(kind::CGROUP_ATTACH, 100, 5_000),
            root: 8,
            level: 1,
            id: 4242,
            path,
        }),
        Event::Exit(ExitEvent {
            header: EventHeader { flags: flags::GROUP_DEAD, ..header(kind::EXIT, 101, 6_000) },
            comm: [b'w'; 16],
        }),
    ]
}

fn log_header() -> LogHeader {
    LogHeader { record_schema: RECORD_SCHEMA, command: vec!["true".into()], ..Default::default() }
}

/// A log written by the writer, a block closed after each group of records.
fn write_blocks(groups: &[Vec<Event>]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.bin");
    let mut writer = EventLogWriter::new(File::create(&path).unwrap(), &log_header()).unwrap();
    let now = Instant::now();
    for group in groups {
        for e in group {
            writer.append(e, now).unwrap();
        }
        writer.write_pending().unwrap();
    }
    let total: usize = groups.iter().map(Vec::len).sum();
    assert_eq!(writer.finish().unwrap(), total as u64);
    std::fs::read(&path).unwrap()
}

/// A version 1 log, as observer wrote them before version 2.
fn v1_log(events: &[Event]) -> Vec<u8> {
    let mut data = Vec::new();
    write_preamble(&mut data, 1, &log_header()).unwrap();
    for e in events {
        data.extend_from_slice(&(e.as_bytes().len() as u32).to_le_bytes());
        data.extend_from_slice(e.as_bytes());
    }
    data
}

fn read_all(data: Vec<u8>) -> Result<(Vec<Event>, u64), LogError> {
    let mut reader = EventLogReader::from_bytes(data)?;
    let mut out = Vec::new();
    while let Some(e) = reader.next_event()? {
        out.push(e);
    }
    Ok((out, reader.truncated_tail()))
}

/// Byte offsets where each block of a version 2 log ends (the first entry: where the first block
/// starts).
fn block_ends(data: &[u8]) -> Vec<usize> {
    let header_len = u32::from_le_bytes(data[12..16].try_into().unwrap()) as usize;
    let mut at = PREAMBLE_LEN + header_len;
    let mut ends = vec![at];
    while at < data.len() {
        let compressed = u32::from_le_bytes(data[at + 4..at + 8].try_into().unwrap()) as usize;
        at += frame::FRAME_LEN + compressed;
        ends.push(at);
    }
    assert_eq!(at, data.len());
    ends
}

#[test]
fn every_record_kind_reads_back_byte_for_byte_with_the_header() {
    let events = every_kind();
    let data = write_blocks(std::slice::from_ref(&events));
    assert_eq!(u32::from_le_bytes(data[8..12].try_into().unwrap()), 2);
    let reader = EventLogReader::from_bytes(data.clone()).unwrap();
    assert_eq!((reader.header().command.as_slice(), reader.version()), (["true".to_string()].as_slice(), 2));
    let (read, tail) = read_all(data).unwrap();
    assert_eq!(tail, 0);
    assert_eq!(read.len(), events.len());
    for (got, want) in read.iter().zip(&events) {
        assert_eq!(got.as_bytes(), want.as_bytes());
    }
}

#[test]
fn a_version_1_log_still_reads() {
    let events = every_kind();
    let mut data = v1_log(&events);
    assert_eq!(read_all(data.clone()).unwrap(), (events.clone(), 0));
    data.truncate(data.len() - 5);
    let (read, tail) = read_all(data).unwrap();
    assert_eq!(read, events[..events.len() - 1]);
    assert_eq!(tail, 4 + events.last().unwrap().as_bytes().len() as u64 - 5);
}

#[test]
fn the_golden_version_1_captures_read_the_same_rewritten_as_version_2() {
    let data_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    let mut cases = 0;
    for case in std::fs::read_dir(&data_dir).unwrap().flatten() {
        let Ok(v1) = std::fs::read(case.path().join("events.bin")) else { continue };
        let reader = EventLogReader::from_bytes(v1.clone()).unwrap();
        assert_eq!(reader.version(), 1, "{}", case.path().display());
        let (events, tail) = read_all(v1).unwrap();
        assert_eq!(tail, 0);
        let v2 = write_blocks(std::slice::from_ref(&events));
        assert_eq!(read_all(v2).unwrap(), (events, 0), "{}", case.path().display());
        cases += 1;
    }
    assert!(cases >= 5, "only {cases} golden captures under {}", data_dir.display());
}

#[test]
fn a_log_cut_at_every_byte_reads_exactly_its_whole_blocks() {
    let groups: Vec<Vec<Event>> = vec![
        (1..=3).map(exit_event).collect(),
        vec![syscall(5, 10, 9, 0), syscall(5, 20, 10, 0), syscall(6, 15, 11, -12)],
        every_kind(),
    ];
    let data = write_blocks(&groups);
    let ends = block_ends(&data);
    assert_eq!(ends.len(), 4, "three blocks");
    for cut in ends[0]..=data.len() {
        let whole = ends[1..].iter().filter(|&&end| end <= cut).count();
        let (read, tail) = read_all(data[..cut].to_vec()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let want: Vec<Event> = groups[..whole].concat();
        assert_eq!(read, want, "cut at {cut}");
        assert_eq!(tail, (cut - ends[whole]) as u64, "cut at {cut}");
    }
}

#[test]
fn a_damaged_block_is_refused_with_its_offset() {
    let groups = vec![(1..=3).map(exit_event).collect::<Vec<_>>(), (4..=6).map(exit_event).collect()];
    let data = write_blocks(&groups);
    let second = block_ends(&data)[1];
    let expect = |data: Vec<u8>, reason: &str| {
        let err = read_all(data).unwrap_err();
        assert!(matches!(err, LogError::Corrupt { offset, .. } if offset == second as u64), "{err}");
        assert!(err.to_string().contains(reason), "{err}");
    };
    // A compressed byte: the block's checksum disagrees.
    let mut bad = data.clone();
    bad[second + frame::FRAME_LEN + 2] ^= 1;
    expect(bad, "block checksum mismatch");
    // Its length: the frame's own checksum disagrees (not read as a cut tail).
    let mut bad = data.clone();
    bad[second + 5] ^= 0x40;
    expect(bad, "block frame checksum mismatch");
    // Not a frame at all.
    let mut bad = data.clone();
    bad[second] = b'X';
    expect(bad, "expected a block frame");
}

#[test]
fn an_unknown_version_is_refused_naming_the_ones_read() {
    let mut data = write_blocks(&[vec![exit_event(1)]]);
    data[8] = 3;
    let err = read_all(data).unwrap_err();
    assert_eq!(err.to_string(), "event log format version 3 is not supported (this observer reads versions 1 and 2)");
}

#[test]
fn a_foreign_file_is_refused_by_its_magic() {
    let err = EventLogReader::from_bytes(b"ELF\x7f0000000000000000".to_vec()).err().unwrap();
    assert!(matches!(err, LogError::BadMagic { .. }), "{err}");
}

#[test]
fn a_block_is_written_once_its_first_record_is_old_enough_or_it_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.bin");
    let mut writer = EventLogWriter::new(File::create(&path).unwrap(), &log_header()).unwrap();
    let preamble = writer.bytes();
    let t0 = Instant::now();
    writer.append(&exit_event(1), t0).unwrap();
    writer.append(&exit_event(2), t0 + Duration::from_millis(60)).unwrap();
    writer.write_due(t0 + BLOCK_MAX_AGE - Duration::from_millis(1)).unwrap();
    assert_eq!((std::fs::metadata(&path).unwrap().len(), writer.pending_since_ns()), (preamble, Some(1)));
    writer.write_due(t0 + BLOCK_MAX_AGE).unwrap();
    assert!(writer.bytes() > preamble);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), writer.bytes());
    assert_eq!(read_all(std::fs::read(&path).unwrap()).unwrap(), (vec![exit_event(1), exit_event(2)], 0));

    // A quiet writer writes nothing more; a busy one closes blocks by size, whatever the clock.
    writer.write_due(t0 + Duration::from_secs(10)).unwrap();
    let one_block = writer.bytes();
    let events: Vec<Event> = (0..20_000).map(|i| syscall(9, i * 1_000, 10, 0)).collect();
    for e in &events {
        writer.append(e, t0).unwrap();
    }
    assert!(writer.bytes() > one_block, "a full block is written at once");
    assert!(writer.records() == 20_002 && writer.pending_since_ns().is_some());
    assert_eq!(writer.finish().unwrap(), 20_002);
    let data = std::fs::read(&path).unwrap();
    assert!(block_ends(&data).len() > 3, "records of about {BLOCK_TARGET_LEN} bytes a block");
    assert_eq!(read_all(data).unwrap().0.len(), 20_002);
}

#[test]
fn the_size_bound_is_never_below_what_the_file_becomes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.bin");
    let mut writer = EventLogWriter::new(File::create(&path).unwrap(), &log_header()).unwrap();
    let now = Instant::now();
    // Incompressible bodies: zstd's worst case.
    let mut seed = 0x1234_5678_9abc_def0u64;
    for i in 0..5_000u64 {
        let mut args = [0u64; 6];
        for a in &mut args {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *a = seed;
        }
        let e = Event::Syscall(SyscallEvent {
            args,
            ..match syscall(1, i, 0, 0) {
                Event::Syscall(s) => s,
                _ => unreachable!(),
            }
        });
        let bound = writer.bytes_with(&e);
        writer.append(&e, now).unwrap();
        writer.write_pending().unwrap();
        assert!(writer.bytes() <= bound, "record {i}: {} > {bound}", writer.bytes());
    }
}

#[test]
fn a_failed_write_leaves_the_file_on_its_last_whole_block_and_counts_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = EventLogWriter::new(File::create(dir.path().join("events.bin")).unwrap(), &log_header()).unwrap();
    let now = Instant::now();
    writer.append(&exit_event(1), now).unwrap();
    writer.write_pending().unwrap();
    let (bytes, records) = (writer.bytes(), writer.records());
    // /dev/full fails every write with ENOSPC, like a full disk.
    let Ok(full) = File::options().write(true).open("/dev/full") else { return };
    writer.replace_file(full);
    writer.append(&exit_event(2), now).unwrap();
    writer.append(&exit_event(3), now).unwrap();
    assert_eq!((writer.records(), writer.pending_since_ns()), (3, Some(2)));
    let err = writer.write_pending().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
    assert_eq!((writer.bytes(), writer.records(), writer.pending_since_ns()), (bytes, records, None));
}
