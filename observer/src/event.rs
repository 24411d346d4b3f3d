//! Decoded records: the typed view of one ring-buffer / event-log record, and its raw bytes.
use observer_common::{
    record_size, CgroupAttachEvent, EventHeader, ExecEvent, ExitEvent, FaultEvent, ForkEvent, Record,
    ShortSyscallEvent, SignalDeliverEvent, SignalGenerateEvent, SyscallEvent,
};

/// Why a byte string is not a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {got} bytes is shorter than the {need}-byte header")]
    NotEnoughBytes { need: usize, got: usize },
    #[error("unknown record kind {0}")]
    UnknownKind(u16),
    #[error("record of kind {kind} is {got} bytes, expected at least {expected}")]
    SizeMismatch { kind: u16, expected: usize, got: usize },
}

/// The decoded view of each record type: a variant per [`Record`], read by its `Record::KIND`.
macro_rules! events {
    ($($variant:ident($t:ty),)*) => {
        /// One record, in any of the kernel's kinds.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Event {
            $($variant($t),)*
        }

        impl Event {
            /// The record of kind `kind` in `bytes` (long enough for it), written over `out`.
            fn read_kind(kind: u16, bytes: &[u8], out: &mut Event) -> bool {
                $(if kind == <$t as Record>::KIND {
                    *out = Event::$variant(read(bytes));
                    return true;
                })*
                false
            }

            /// The record exactly as the kernel wrote it.
            pub fn as_bytes(&self) -> &[u8] {
                match self {
                    $(Event::$variant(e) => bytes_of(e),)*
                }
            }

            pub fn header(&self) -> &EventHeader {
                match self {
                    $(Event::$variant(e) => &e.header,)*
                }
            }
        }

        /// Name of a record kind id.
        pub fn kind_name(kind: u16) -> &'static str {
            $(if kind == <$t as Record>::KIND {
                return <$t as Record>::NAME;
            })*
            if kind == ShortSyscallEvent::KIND {
                return ShortSyscallEvent::NAME;
            }
            "unknown"
        }

        /// The kinds counters are reported by: every decoded kind (the compact syscall record
        /// is counted as a syscall record).
        pub const REPORTED_KINDS: [u16; [$(<$t as Record>::KIND,)*].len()] = [$(<$t as Record>::KIND,)*];
    };
}

events! {
    Syscall(SyscallEvent),
    Fork(ForkEvent),
    Exec(ExecEvent),
    Exit(ExitEvent),
    SignalGenerate(SignalGenerateEvent),
    SignalDeliver(SignalDeliverEvent),
    Fault(FaultEvent),
    CgroupAttach(CgroupAttachEvent),
}

fn read<T: Copy>(bytes: &[u8]) -> T {
    debug_assert!(bytes.len() >= std::mem::size_of::<T>());
    // SAFETY: length checked by the caller; T is a #[repr(C)] plain-integer record, valid for any
    // bit pattern; read_unaligned because ring-buffer and file offsets are only 8-byte aligned by luck.
    unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) }
}

fn bytes_of<T>(value: &T) -> &[u8] {
    // SAFETY: records have explicit padding fields, so every byte is initialised.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

impl Event {
    /// Decodes a record. Longer input is accepted (fields appended by a newer writer are ignored).
    pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        let mut event = Event::Syscall(SyscallEvent::default());
        Event::decode_into(bytes, &mut event)?;
        Ok(event)
    }

    /// As [`Event::decode`], writing the record over `out` (a reader decoding millions of records
    /// lends each from one place instead of moving it through every return; `out` is unchanged on
    /// an error).
    pub fn decode_into(bytes: &[u8], out: &mut Event) -> Result<(), DecodeError> {
        let need = std::mem::size_of::<EventHeader>();
        if bytes.len() < need {
            return Err(DecodeError::NotEnoughBytes { need, got: bytes.len() });
        }
        let header: EventHeader = read(bytes);
        let expected = record_size(header.kind);
        if expected == 0 {
            return Err(DecodeError::UnknownKind(header.kind));
        }
        if bytes.len() < expected {
            return Err(DecodeError::SizeMismatch { kind: header.kind, expected, got: bytes.len() });
        }
        // The kernel's compact form of the common syscall record reads as the full one.
        if header.kind == ShortSyscallEvent::KIND {
            *out = Event::Syscall(read::<ShortSyscallEvent>(bytes).expand());
            return Ok(());
        }
        if Event::read_kind(header.kind, bytes, out) {
            Ok(())
        } else {
            Err(DecodeError::UnknownKind(header.kind))
        }
    }

    /// Short name of the record kind, as used in summaries and `--format json`.
    pub fn kind_name(&self) -> &'static str {
        kind_name(self.header().kind)
    }
}

/// Whether a syscall record carries a real return value (it neither never returns nor was cut
/// short by the thread's end).
pub fn returned(e: &SyscallEvent) -> bool {
    e.header.flags & (observer_common::flags::NO_RETURN | observer_common::flags::UNFINISHED) == 0
}

/// A NUL-terminated kernel string (comm, filename) as text.
pub fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use observer_common::kind;

    use super::*;

    fn sample_syscall() -> SyscallEvent {
        SyscallEvent {
            header: EventHeader { kind: kind::SYSCALL, flags: 0, tid: 7, tgid: 5, _pad: 0, ts_ns: 42 },
            nr: 9,
            nargs: 6,
            args: [0, 8392704, 0, 0x20022, u64::MAX, 0],
            ret: 0x7fff_df79_f000,
            duration_ns: 1200,
            aux: 0,
        }
    }

    #[test]
    fn decode_round_trips_every_kind() {
        let events = [
            Event::Syscall(sample_syscall()),
            Event::Fork(ForkEvent {
                header: EventHeader { kind: kind::FORK, ..Default::default() },
                ..Default::default()
            }),
            Event::Exec(ExecEvent {
                header: EventHeader { kind: kind::EXEC, ..Default::default() },
                ..Default::default()
            }),
            Event::Exit(ExitEvent {
                header: EventHeader { kind: kind::EXIT, ..Default::default() },
                ..Default::default()
            }),
            Event::SignalGenerate(SignalGenerateEvent {
                header: EventHeader { kind: kind::SIGNAL_GENERATE, ..Default::default() },
                sig: 9,
                ..Default::default()
            }),
            Event::SignalDeliver(SignalDeliverEvent {
                header: EventHeader { kind: kind::SIGNAL_DELIVER, ..Default::default() },
                sig: 11,
                ..Default::default()
            }),
            Event::Fault(FaultEvent {
                header: EventHeader { kind: kind::FAULT, ..Default::default() },
                sig: 11,
                code: 1,
                addr: 0xdead_0000,
            }),
        ];
        for event in events {
            assert_eq!(Event::decode(event.as_bytes()), Ok(event));
        }
    }

    #[test]
    fn the_compact_syscall_record_reads_as_the_full_one() {
        use observer_common::flags;
        let short = ShortSyscallEvent {
            header: EventHeader {
                kind: kind::SHORT_SYSCALL,
                flags: flags::UNKNOWN_DURATION,
                tid: 7,
                tgid: 5,
                _pad: 0,
                ts_ns: 99,
            },
            nr: 10,
            nargs: 3,
            ret: -12,
            args: [0x1000, 4096, 1],
        };
        let Ok(Event::Syscall(full)) = Event::decode(bytes_of(&short)) else { panic!("a syscall record") };
        assert_eq!(
            (full.header.kind, full.header.flags, full.header.tid, full.header.ts_ns),
            (kind::SYSCALL, 256, 7, 99)
        );
        assert_eq!((full.nr, full.nargs, full.ret, full.duration_ns), (10, 3, -12, 0));
        assert_eq!(full.args, [0x1000, 4096, 1, 0, 0, 0]);
        assert_eq!(Event::Syscall(full).as_bytes().len(), 104, "stored as the full record");
        assert_eq!(kind_name(kind::SHORT_SYSCALL), "syscall");
    }

    #[test]
    fn kind_names_come_from_the_record_types() {
        assert_eq!(kind_name(kind::SYSCALL), "syscall");
        assert_eq!(kind_name(kind::FAULT), "fault");
        assert_eq!(kind_name(0), "unknown");
        let names: Vec<&str> = (1..kind::COUNT as u16).map(kind_name).collect();
        assert!(!names.contains(&"unknown"), "every kind below COUNT has a record type: {names:?}");
    }

    #[test]
    fn decode_rejects_short_unknown_and_truncated_records() {
        assert_eq!(Event::decode(&[0; 10]), Err(DecodeError::NotEnoughBytes { need: 24, got: 10 }));
        let mut unknown = [0u8; 24];
        unknown[0] = 99;
        assert_eq!(Event::decode(&unknown), Err(DecodeError::UnknownKind(99)));
        let bytes = Event::Syscall(sample_syscall()).as_bytes().to_vec();
        assert_eq!(
            Event::decode(&bytes[..50]),
            Err(DecodeError::SizeMismatch { kind: kind::SYSCALL, expected: 104, got: 50 })
        );
    }

    #[test]
    fn decode_ignores_fields_appended_by_a_newer_writer() {
        let mut bytes = Event::Syscall(sample_syscall()).as_bytes().to_vec();
        bytes.extend_from_slice(&[0xAA; 16]);
        assert_eq!(Event::decode(&bytes), Ok(Event::Syscall(sample_syscall())));
    }
}
