//! Feeds arbitrary bytes to the event-log reader (as a whole file, of either version) and to the
//! record decoder (as one record). Neither may panic, loop or allocate out of proportion to the
//! input; the asserts pin the invariants a caller relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer::{
    event::Event,
    eventlog::{EventLogReader, LogError},
};

/// Most records one version 2 block can hold (256 KiB of records, at least a byte each).
const MAX_BLOCK_RECORDS: u64 = 256 * 1024;

fuzz_target!(|data: &[u8]| {
    // The bytes as a single record: a decoded record is a prefix of its input.
    if let Ok(event) = Event::decode(data) {
        let bytes = event.as_bytes();
        assert_eq!(bytes, &data[..bytes.len()]);
    }

    // The bytes as a whole file, read to the end.
    let len = data.len() as u64;
    let mut reader = match EventLogReader::from_bytes(data.to_vec()) {
        Ok(reader) => reader,
        Err(e) => {
            check_error(&e, len);
            return;
        }
    };
    let mut at_same_offset = 0;
    loop {
        let before = reader.offset();
        match reader.next_event() {
            Ok(Some(event)) => {
                let after = reader.offset();
                assert!(after >= before && after <= len, "offset {before} -> {after} of {len}");
                let bytes = event.as_bytes();
                if reader.version() == 1 {
                    // Progress, and the record is the bytes after its 4-byte length (possibly
                    // followed by fields this reader does not know).
                    assert!(after > before, "offset {before} -> {after} of {len}");
                    let start = before as usize + 4;
                    assert_eq!(bytes, &data[start..start + bytes.len()]);
                } else {
                    // A block's records come out at the offset after it: a bounded number of them.
                    at_same_offset = if after > before { 0 } else { at_same_offset + 1 };
                    assert!(at_same_offset < MAX_BLOCK_RECORDS);
                    // A rebuilt record decodes to itself.
                    assert_eq!(Event::decode(bytes), Ok(event));
                }
            }
            Ok(None) => {
                // Everything was either read as whole records or blocks, or reported as a
                // truncated tail.
                assert_eq!(reader.offset() + reader.truncated_tail(), len);
                break;
            }
            Err(e) => {
                check_error(&e, len);
                assert_eq!(reader.truncated_tail(), 0);
                break;
            }
        }
    }
});

/// An error names a byte offset inside the input (the end counts: "the header should be here").
fn check_error(e: &LogError, len: u64) {
    if let LogError::Corrupt { offset, .. } = e {
        assert!(*offset <= len, "offset {offset} past the end of {len} bytes: {e}");
    }
    let _ = e.to_string();
}
