//! The fixed 24-byte frame in front of every `events.bin` v2 block: a tag to recognise it, the
//! compressed and raw sizes, the record count and two CRC-32s (of the compressed bytes and of the
//! frame itself), so a reader tells a cut tail (too few bytes) from damage (bytes that disagree).

/// Starts every block frame.
pub const TAG: &[u8; 4] = b"OBLK";
pub const FRAME_LEN: usize = 24;
/// The writer closes a block at about 64 KiB; one record (at most 64 KiB) may carry it past that.
pub const MAX_RAW_LEN: u32 = 256 * 1024;
/// zstd's bound for `MAX_RAW_LEN` bytes (ZSTD_compressBound), rounded up.
pub const MAX_COMPRESSED_LEN: u32 = MAX_RAW_LEN + MAX_RAW_LEN / 128;

/// One block's frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub compressed_len: u32,
    pub raw_len: u32,
    pub records: u32,
    /// CRC-32 of the compressed bytes.
    pub checksum: u32,
}

impl Frame {
    pub fn encode(&self) -> [u8; FRAME_LEN] {
        let mut out = [0u8; FRAME_LEN];
        out[..4].copy_from_slice(TAG);
        out[4..8].copy_from_slice(&self.compressed_len.to_le_bytes());
        out[8..12].copy_from_slice(&self.raw_len.to_le_bytes());
        out[12..16].copy_from_slice(&self.records.to_le_bytes());
        out[16..20].copy_from_slice(&self.checksum.to_le_bytes());
        let own = crc32fast::hash(&out[..20]);
        out[20..].copy_from_slice(&own.to_le_bytes());
        out
    }

    /// The frame in `bytes`, or why it is not one.
    pub fn parse(bytes: &[u8; FRAME_LEN]) -> Result<Frame, String> {
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        if &bytes[..4] != TAG {
            return Err(format!(
                "expected a block frame (tag {:?}), found {:?}",
                String::from_utf8_lossy(TAG),
                String::from_utf8_lossy(&bytes[..4])
            ));
        }
        if crc32fast::hash(&bytes[..20]) != word(20) {
            return Err("block frame checksum mismatch".into());
        }
        let frame = Frame { compressed_len: word(4), raw_len: word(8), records: word(12), checksum: word(16) };
        if !(1..=MAX_COMPRESSED_LEN).contains(&frame.compressed_len) {
            return Err(format!(
                "compressed block length {} is outside 1..={MAX_COMPRESSED_LEN}",
                frame.compressed_len
            ));
        }
        if !(1..=MAX_RAW_LEN).contains(&frame.raw_len) {
            return Err(format!("block length {} is outside 1..={MAX_RAW_LEN}", frame.raw_len));
        }
        // Every record takes at least one byte of the block.
        if !(1..=frame.raw_len).contains(&frame.records) {
            return Err(format!("record count {} is outside 1..={} for its block", frame.records, frame.raw_len));
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_back_and_any_changed_byte_is_caught() {
        let frame = Frame { compressed_len: 1234, raw_len: 65_600, records: 3000, checksum: 0xdead_beef };
        let bytes = frame.encode();
        assert_eq!(Frame::parse(&bytes), Ok(frame));
        for at in 0..FRAME_LEN {
            let mut bad = bytes;
            bad[at] ^= 0x10;
            assert!(Frame::parse(&bad).is_err(), "byte {at} changed unnoticed");
        }
    }

    #[test]
    fn out_of_range_sizes_are_refused_even_with_a_good_checksum() {
        for (c, r, n) in [
            (0, 10, 1),
            (MAX_COMPRESSED_LEN + 1, 10, 1),
            (10, 0, 1),
            (10, MAX_RAW_LEN + 1, 1),
            (10, 10, 0),
            (10, 10, 11),
        ] {
            let bytes = Frame { compressed_len: c, raw_len: r, records: n, checksum: 0 }.encode();
            assert!(Frame::parse(&bytes).is_err(), "{c} {r} {n}");
        }
    }
}
