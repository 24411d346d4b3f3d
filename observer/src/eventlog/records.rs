//! The records inside one `events.bin` v2 block, and their exact reversal. Each record's 24-byte
//! header is stored as varints: its kind and flags, and its tid, tgid and timestamp as zigzag
//! deltas against the previous record of the block (timestamps of different CPUs go backwards);
//! the header's padding word only when it is not zero. Its body follows its length, XOR'd against
//! the previous body of the same kind and length in the block (zeros for the first), stored
//! sparsely: per 8 bytes a mask of the bytes that differ, then those bytes. Nothing depends on a
//! record kind's layout or size, so decoding gives back exactly the bytes the kernel wrote.
use super::varint::{self, VarintError};

/// Bytes of the header every record starts with (`EventHeader`).
pub const HEADER_LEN: usize = 24;
/// Most bytes the header of a record takes in a block: kind (3), flags (3), tid and tgid deltas
/// (5 each), timestamp delta (10), padding (5), body length (3).
pub const MAX_ENCODED_HEADER: usize = 34;

/// Previous bodies remembered per block, found by a hash of kind and length (a collision only
/// costs compression).
const SLOTS: usize = 64;

/// Why the bytes of a block do not decode to a record.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Varint(#[from] VarintError),
    #[error("{what} {value} does not fit its field")]
    OutOfRange { what: &'static str, value: u64 },
    #[error("body of {len} bytes is longer than a record may be ({max})")]
    TooLong { len: u64, max: usize },
    #[error("a body runs past the end of the block")]
    BodyTruncated,
    #[error("the chunk map marks chunks past the body's end")]
    BadMap,
    #[error("byte mask {mask:#04x} marks bytes past the body's end")]
    BadMask { mask: u8 },
}

/// The most bytes a record of `len` bytes takes in a block.
pub fn max_encoded_len(len: usize) -> usize {
    let body = len.saturating_sub(HEADER_LEN);
    MAX_ENCODED_HEADER + body.div_ceil(64) + body.div_ceil(8) + body
}

/// The last record of one kind and body length in the block, header included (the decoder hands
/// out the record from here, rebuilt in place).
#[derive(Default)]
struct Slot {
    key: Option<(u16, u32)>,
    record: Vec<u8>,
}

/// What a record is encoded against: the previous record's header fields and recent bodies.
struct Previous {
    tid: u32,
    tgid: u32,
    ts_ns: u64,
    slots: Vec<Slot>,
}

impl Default for Previous {
    fn default() -> Self {
        Self { tid: 0, tgid: 0, ts_ns: 0, slots: (0..SLOTS).map(|_| Slot::default()).collect() }
    }
}

impl Previous {
    /// Every block starts from zeros, so it decodes on its own.
    fn reset(&mut self) {
        self.tid = 0;
        self.tgid = 0;
        self.ts_ns = 0;
        for slot in &mut self.slots {
            slot.key = None;
        }
    }

    fn slot(kind: u16, len: u32) -> usize {
        ((u32::from(kind) << 20 ^ len).wrapping_mul(0x9e37_79b1) >> 26) as usize % SLOTS
    }
}

/// The first (up to) 8 bytes of `bytes` as a little-endian word, zeros past its end.
fn word(bytes: &[u8]) -> u64 {
    match bytes.get(..8) {
        Some(eight) => u64::from_le_bytes(eight.try_into().expect("8 bytes")),
        None => bytes.iter().rev().fold(0, |w, &b| w << 8 | u64::from(b)),
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Encodes records into a block's raw bytes.
#[derive(Default)]
pub struct RecordEncoder {
    prev: Previous,
}

impl RecordEncoder {
    /// Starts a new block.
    pub fn reset(&mut self) {
        self.prev.reset();
    }

    /// Appends `record` (at least the 24-byte header) to `out`.
    pub fn encode(&mut self, record: &[u8], out: &mut Vec<u8>) {
        debug_assert!(record.len() >= HEADER_LEN);
        let (kind, flags) = (u16_at(record, 0), u16_at(record, 2));
        let (tid, tgid, pad, ts_ns) = (u32_at(record, 4), u32_at(record, 8), u32_at(record, 12), u64_at(record, 16));
        varint::put(out, u64::from(kind) << 1 | u64::from(pad != 0));
        varint::put(out, u64::from(flags));
        varint::put(out, varint::zigzag(i64::from(tid.wrapping_sub(self.prev.tid) as i32)));
        varint::put(out, varint::zigzag(i64::from(tgid.wrapping_sub(self.prev.tgid) as i32)));
        varint::put(out, varint::zigzag(ts_ns.wrapping_sub(self.prev.ts_ns) as i64));
        if pad != 0 {
            varint::put(out, u64::from(pad));
        }
        (self.prev.tid, self.prev.tgid, self.prev.ts_ns) = (tid, tgid, ts_ns);

        let body = &record[HEADER_LEN..];
        varint::put(out, body.len() as u64);
        let slot = &mut self.prev.slots[Previous::slot(kind, body.len() as u32)];
        let key = Some((kind, body.len() as u32));
        let reference: &[u8] = if slot.key == key { &slot.record[HEADER_LEN..] } else { &[] };
        // A bit per 8-byte chunk that differs, then for each of those its byte mask and bytes.
        let map_at = out.len();
        out.resize(map_at + body.len().div_ceil(64), 0);
        for (i, chunk) in body.chunks(8).enumerate() {
            let diff = word(chunk) ^ reference.get(i * 8..).map_or(0, word);
            if diff == 0 {
                continue;
            }
            out[map_at + i / 8] |= 1 << (i % 8);
            let mask_at = out.len();
            out.push(0);
            let mut mask = 0u8;
            for j in 0..chunk.len() {
                let byte = (diff >> (8 * j)) as u8;
                if byte != 0 {
                    mask |= 1 << j;
                    out.push(byte);
                }
            }
            out[mask_at] = mask;
        }
        slot.key = key;
        slot.record.clear();
        slot.record.extend_from_slice(record);
    }
}

/// Decodes the records of a block's raw bytes.
#[derive(Default)]
pub struct RecordDecoder {
    prev: Previous,
}

impl RecordDecoder {
    /// Starts a new block.
    pub fn reset(&mut self) {
        self.prev.reset();
    }

    /// Decodes the record at `raw[*pos..]`, moving `pos` past it; `max_len` bounds the record.
    pub fn decode(&mut self, raw: &[u8], pos: &mut usize, max_len: usize) -> Result<&[u8], RecordError> {
        let narrow = |what: &'static str, value: u64, max: u64| {
            if value > max {
                Err(RecordError::OutOfRange { what, value })
            } else {
                Ok(value)
            }
        };
        // A local position stays in a register.
        let mut p = *pos;
        let kind_pad = narrow("kind", varint::get(raw, &mut p)?, u64::from(u16::MAX) << 1 | 1)?;
        let kind = (kind_pad >> 1) as u16;
        let flags = narrow("flags", varint::get(raw, &mut p)?, u64::from(u16::MAX))? as u16;
        let tid_delta = narrow("tid delta", varint::get(raw, &mut p)?, u64::from(u32::MAX))?;
        let tgid_delta = narrow("tgid delta", varint::get(raw, &mut p)?, u64::from(u32::MAX))?;
        let ts_delta = varint::get(raw, &mut p)?;
        let pad = if kind_pad & 1 == 1 {
            narrow("padding", varint::get(raw, &mut p)?, u64::from(u32::MAX))? as u32
        } else {
            0
        };
        let tid = self.prev.tid.wrapping_add(varint::unzigzag(tid_delta) as u32);
        let tgid = self.prev.tgid.wrapping_add(varint::unzigzag(tgid_delta) as u32);
        let ts_ns = self.prev.ts_ns.wrapping_add(varint::unzigzag(ts_delta) as u64);
        (self.prev.tid, self.prev.tgid, self.prev.ts_ns) = (tid, tgid, ts_ns);

        let len = varint::get(raw, &mut p)?;
        let max_body = max_len.saturating_sub(HEADER_LEN);
        if len > max_body as u64 {
            return Err(RecordError::TooLong { len, max: max_body });
        }
        let len = len as usize;
        let slot = &mut self.prev.slots[Previous::slot(kind, len as u32)];
        let key = Some((kind, len as u32));
        // The previous body of this kind and length is where the record is rebuilt; none: zeros.
        if slot.key != key {
            slot.record.clear();
            slot.record.resize(HEADER_LEN + len, 0);
        }
        slot.key = None;
        let (header, body) = slot.record.split_at_mut(HEADER_LEN);
        header[0..2].copy_from_slice(&kind.to_le_bytes());
        header[2..4].copy_from_slice(&flags.to_le_bytes());
        header[4..8].copy_from_slice(&tid.to_le_bytes());
        header[8..12].copy_from_slice(&tgid.to_le_bytes());
        header[12..16].copy_from_slice(&pad.to_le_bytes());
        header[16..24].copy_from_slice(&ts_ns.to_le_bytes());
        let chunks = len.div_ceil(8);
        let Some(map) = raw.get(p..p + chunks.div_ceil(8)) else { return Err(RecordError::BodyTruncated) };
        p += map.len();
        if !chunks.is_multiple_of(8) && map.last().is_some_and(|last| last >> (chunks % 8) != 0) {
            return Err(RecordError::BadMap);
        }
        for (k, &byte) in map.iter().enumerate() {
            let mut changed = byte;
            while changed != 0 {
                let at = (k * 8 + changed.trailing_zeros() as usize) * 8;
                changed &= changed - 1;
                let Some(&mask) = raw.get(p) else { return Err(RecordError::BodyTruncated) };
                p += 1;
                if mask.checked_shr((len - at).min(8) as u32).unwrap_or(0) != 0 {
                    return Err(RecordError::BadMask { mask });
                }
                let Some(diffs) = raw.get(p..p + mask.count_ones() as usize) else {
                    return Err(RecordError::BodyTruncated);
                };
                p += diffs.len();
                // One diff per set bit, lowest bit first.
                let mut bits = mask;
                for &diff in diffs {
                    body[at + bits.trailing_zeros() as usize] ^= diff;
                    bits &= bits - 1;
                }
            }
        }
        *pos = p;
        slot.key = key;
        Ok(&slot.record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of `kind` with a header and `body`, as raw bytes.
    fn record(kind: u16, tid: u32, pad: u32, ts_ns: u64, body: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&kind.to_le_bytes());
        r.extend_from_slice(&0x0102u16.to_le_bytes());
        r.extend_from_slice(&tid.to_le_bytes());
        r.extend_from_slice(&(tid / 2).to_le_bytes());
        r.extend_from_slice(&pad.to_le_bytes());
        r.extend_from_slice(&ts_ns.to_le_bytes());
        r.extend_from_slice(body);
        r
    }

    fn round_trip(records: &[Vec<u8>]) -> Vec<u8> {
        let mut encoder = RecordEncoder::default();
        let mut raw = Vec::new();
        for r in records {
            let before = raw.len();
            encoder.encode(r, &mut raw);
            assert!(raw.len() - before <= max_encoded_len(r.len()), "{} > bound", raw.len() - before);
        }
        let mut decoder = RecordDecoder::default();
        let mut pos = 0;
        for (i, r) in records.iter().enumerate() {
            let out = decoder.decode(&raw, &mut pos, 1 << 16).unwrap_or_else(|e| panic!("record {i}: {e}"));
            assert_eq!(out, r, "record {i}");
        }
        assert_eq!(pos, raw.len());
        raw
    }

    #[test]
    fn records_of_any_size_and_kind_decode_to_their_exact_bytes() {
        // Lengths that are not multiples of 8, one kind in several sizes (variable-size records),
        // bodies changing a little or wholly, padding set, time and tids going backwards.
        let mut records = Vec::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..2_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let kind = (x % 9) as u16;
            let len = [0, 1, 7, 8, 9, 40, 80, 81, 152][(x >> 8) as usize % 9];
            let mut body: Vec<u8> = (0..len).map(|j| (j as u64 * 31 + (i % 3)) as u8).collect();
            if x & 0x10000 != 0 && len > 0 {
                body[(x >> 20) as usize % len] = x as u8;
            }
            let pad = if x & 0x20000 != 0 { (x >> 32) as u32 } else { 0 };
            let ts = 1_000_000u64.wrapping_add(i * 500).wrapping_sub((x >> 40) % 3_000);
            records.push(record(kind, 100 + (x >> 50) as u32 % 4, pad, ts, &body));
        }
        records.push(record(u16::MAX, u32::MAX, u32::MAX, u64::MAX, &[0xff; 3]));
        records.push(record(0, 0, 0, 0, &[]));
        round_trip(&records);
    }

    #[test]
    fn a_repeated_record_costs_a_few_bytes() {
        let body: Vec<u8> = (0..80).map(|i| i as u8 | 1).collect();
        let records: Vec<Vec<u8>> = (0..100).map(|i| record(1, 7, 0, 1_000 + i * 1_500, &body)).collect();
        let raw = round_trip(&records);
        // The first body whole; then a header of deltas, a length and an empty chunk map.
        let first = 1 + 2 + 1 + 1 + 2 + 1 + 2 + 10 + 80;
        assert_eq!(raw.len(), first + 99 * (1 + 2 + 1 + 1 + 2 + 1 + 2), "{raw:?}");
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let records = vec![record(1, 5, 0, 10, &[1; 20]), record(1, 5, 0, 20, &[2; 20])];
        let raw = round_trip(&records);
        let decode_all = |raw: &[u8], max_len: usize| {
            let mut decoder = RecordDecoder::default();
            let mut pos = 0;
            decoder.decode(raw, &mut pos, max_len)?;
            decoder.decode(raw, &mut pos, max_len).map(<[u8]>::to_vec)
        };
        for cut in 0..raw.len() {
            assert!(decode_all(&raw[..cut], 1 << 16).is_err(), "cut at {cut}");
        }
        assert_eq!(decode_all(&raw, 40), Err(RecordError::TooLong { len: 20, max: 16 }));
        // A mask marking bytes past a 20-byte body's last chunk (4 bytes).
        let mut bad = raw.clone();
        let (map, last_mask) = (7, 7 + 1 + 9 + 9);
        assert_eq!((bad[map], bad[last_mask]), (0b111, 0b1111), "the first record's chunk map and third mask");
        bad[last_mask] = 0b1_1111;
        assert_eq!(decode_all(&bad, 1 << 16), Err(RecordError::BadMask { mask: 0b1_1111 }));
        // A chunk map marking a fourth chunk of a 3-chunk body.
        let mut bad = raw.clone();
        bad[map] = 0b1111;
        assert_eq!(decode_all(&bad, 1 << 16), Err(RecordError::BadMap));
    }
}
