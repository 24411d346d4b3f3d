//! `events.bin`: the versioned capture file — magic, version, a JSON header, then the records
//! exactly as the kernel wrote them: length-framed one by one (version 1, still read), or
//! delta-encoded and compressed in blocks (version 2, written). See docs/event-log.md.
mod frame;
mod reader;
mod records;
mod varint;
mod writer;

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

pub use reader::EventLogReader;
pub use writer::{EventLogWriter, BLOCK_MAX_AGE, BLOCK_TARGET_LEN};

pub const MAGIC: &[u8; 8] = b"OBSVEVT\0";
/// The version written.
pub const FORMAT_VERSION: u32 = 2;
/// The versions read.
pub const SUPPORTED_VERSIONS: [u32; 2] = [1, 2];
/// Schema of the records themselves (layouts in observer-common); bumped when a layout changes
/// other than by appending fields.
pub const RECORD_SCHEMA: u32 = 1;
/// No record is anywhere near this; a larger length means the framing is corrupt.
pub const MAX_RECORD_LEN: u32 = 64 * 1024;
const PREAMBLE_LEN: usize = 16;

/// What the capture was taken on, written once at the start of the file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHeader {
    pub record_schema: u32,
    pub kernel_release: String,
    pub hostname: String,
    /// Add to a record's CLOCK_BOOTTIME timestamp to get nanoseconds since the Unix epoch.
    pub boot_to_wall_ns: i64,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub command: Vec<String>,
    /// pid of the observer that wrote the capture (its signals are "from the observer").
    pub observer_pid: u32,
    /// pid of the launched command, when the capture has one.
    #[serde(default)]
    pub root_pid: Option<u32>,
}

impl LogHeader {
    /// The header of a capture taken on this machine now by this process.
    pub fn live(command: Vec<String>, root_pid: Option<u32>, started_at: String) -> Self {
        LogHeader {
            record_schema: RECORD_SCHEMA,
            kernel_release: crate::proc::sysctl("kernel.osrelease").unwrap_or_default(),
            hostname: crate::proc::sysctl("kernel.hostname").unwrap_or_default(),
            boot_to_wall_ns: crate::clock::boot_to_wall_offset_ns(),
            started_at,
            command,
            observer_pid: std::process::id(),
            root_pid,
        }
    }
}

/// Writes the magic, `version` and `header`; returns the bytes written.
fn write_preamble(out: &mut impl Write, version: u32, header: &LogHeader) -> io::Result<u64> {
    let json = serde_json::to_vec(header)?;
    let mut head = Vec::with_capacity(PREAMBLE_LEN + json.len());
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&version.to_le_bytes());
    head.extend_from_slice(&(json.len() as u32).to_le_bytes());
    head.extend_from_slice(&json);
    out.write_all(&head)?;
    Ok(head.len() as u64)
}

/// Why an event log cannot be read (past `offset`).
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("not an observer event log: expected magic {expected:?} at byte 0, found {found:?}")]
    BadMagic { expected: String, found: String },
    #[error(
        "event log format version {found} is not supported (this observer reads versions {})",
        SUPPORTED_VERSIONS.map(|v| v.to_string()).join(" and ")
    )]
    UnsupportedVersion { found: u32 },
    #[error("corrupt event log at byte {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
}

#[cfg(test)]
mod tests;
