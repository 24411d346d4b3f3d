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
    #[error("byte mask {mask:#04x} marks bytes past the body's end")]
    BadMask { mask: u8 },
}

/// The most bytes a record of `len` bytes takes in a block.
pub fn max_encoded_len(len: usize) -> usize {
    let body = len.saturating_sub(HEADER_LEN);
    MAX_ENCODED_HEADER + body + body.div_ceil(8)
}

#[derive(Default)]
struct Slot {
    key: Option<(u16, u32)>,
    body: Vec<u8>,
}

/// What a record is encoded against: the previous record's header fields and recent bodies.
struct Previous {
    tid: u32,
    tgid: u32,
    ts_ns: u64,
    slots: Vec<Slot>,
}

impl Previous {
    fn new() -> Self {
        Self { tid: 0, tgid: 0, ts_ns: 0, slots: (0..SLOTS).map(|_| Slot::default()).collect() }
    }

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
pub struct RecordEncoder {
    prev: Previous,
}

impl Default for RecordEncoder {
    fn default() -> Self {
        Self { prev: Previous::new() }
    }
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
        let reference: &[u8] = if slot.key == key { &slot.body } else { &[] };
        for (i, chunk) in body.chunks(8).enumerate() {
            let base = i * 8;
            let mask_at = out.len();
            out.push(0);
            let mut mask = 0u8;
            for (j, &byte) in chunk.iter().enumerate() {
                let diff = byte ^ reference.get(base + j).copied().unwrap_or(0);
                if diff != 0 {
                    mask |= 1 << j;
                    out.push(diff);
                }
            }
            out[mask_at] = mask;
        }
        slot.key = key;
        slot.body.clear();
        slot.body.extend_from_slice(body);
    }
}

/// Decodes the records of a block's raw bytes.
pub struct RecordDecoder {
    prev: Previous,
}

impl Default for RecordDecoder {
    fn default() -> Self {
        Self { prev: Previous::new() }
    }
}

impl RecordDecoder {
    /// Starts a new block.
    pub fn reset(&mut self) {
        self.prev.reset();
    }

    /// Decodes the record at `raw[*pos..]` into `record` (cleared first), moving `pos` past it.
    /// `max_len` bounds the whole record.
    pub fn decode(
        &mut self,
        raw: &[u8],
        pos: &mut usize,
        record: &mut Vec<u8>,
        max_len: usize,
    ) -> Result<(), RecordError> {
        let narrow = |what: &'static str, value: u64, max: u64| {
            if value > max {
                Err(RecordError::OutOfRange { what, value })
            } else {
                Ok(value)
            }
        };
        let kind_pad = narrow("kind", varint::get(raw, pos)?, u64::from(u16::MAX) << 1 | 1)?;
        let kind = (kind_pad >> 1) as u16;
        let flags = narrow("flags", varint::get(raw, pos)?, u64::from(u16::MAX))? as u16;
        let tid_delta = narrow("tid delta", varint::get(raw, pos)?, u64::from(u32::MAX))?;
        let tgid_delta = narrow("tgid delta", varint::get(raw, pos)?, u64::from(u32::MAX))?;
        let ts_delta = varint::get(raw, pos)?;
        let pad =
            if kind_pad & 1 == 1 { narrow("padding", varint::get(raw, pos)?, u64::from(u32::MAX))? as u32 } else { 0 };
        let tid = self.prev.tid.wrapping_add(varint::unzigzag(tid_delta) as u32);
        let tgid = self.prev.tgid.wrapping_add(varint::unzigzag(tgid_delta) as u32);
        let ts_ns = self.prev.ts_ns.wrapping_add(varint::unzigzag(ts_delta) as u64);
        (self.prev.tid, self.prev.tgid, self.prev.ts_ns) = (tid, tgid, ts_ns);

        let len = varint::get(raw, pos)?;
        let max_body = max_len.saturating_sub(HEADER_LEN);
        if len > max_body as u64 {
            return Err(RecordError::TooLong { len, max: max_body });
        }
        let len = len as usize;
        record.clear();
        record.extend_from_slice(&kind.to_le_bytes());
        record.extend_from_slice(&flags.to_le_bytes());
        record.extend_from_slice(&tid.to_le_bytes());
        record.extend_from_slice(&tgid.to_le_bytes());
        record.extend_from_slice(&pad.to_le_bytes());
        record.extend_from_slice(&ts_ns.to_le_bytes());

        let slot = &mut self.prev.slots[Previous::slot(kind, len as u32)];
        let key = Some((kind, len as u32));
        if slot.key == key {
            record.extend_from_slice(&slot.body);
        } else {
            record.resize(HEADER_LEN + len, 0);
        }
        let body = &mut record[HEADER_LEN..];
        for chunk in body.chunks_mut(8) {
            let Some(&mask) = raw.get(*pos) else { return Err(RecordError::BodyTruncated) };
            *pos += 1;
            if mask == 0 {
                continue;
            }
            if chunk.len() < 8 && mask >> chunk.len() != 0 {
                return Err(RecordError::BadMask { mask });
            }
            let Some(diffs) = raw.get(*pos..*pos + mask.count_ones() as usize) else {
                return Err(RecordError::BodyTruncated);
            };
            *pos += diffs.len();
            let mut diffs = diffs.iter();
            for (j, byte) in chunk.iter_mut().enumerate() {
                if mask & 1 << j != 0 {
                    *byte ^= diffs.next().expect("one diff per mask bit");
                }
            }
        }
        slot.key = key;
        slot.body.clear();
        slot.body.extend_from_slice(body);
        Ok(())
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
        let (mut pos, mut out) = (0, Vec::new());
        for (i, r) in records.iter().enumerate() {
            decoder.decode(&raw, &mut pos, &mut out, 1 << 16).unwrap_or_else(|e| panic!("record {i}: {e}"));
            assert_eq!(&out, r, "record {i}");
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
        // The first body whole; then a header of deltas, a length and ten empty masks.
        let first = 1 + 2 + 2 + 1 + 2 + 1 + 80 + 10;
        assert!(raw.len() <= first + 99 * 18, "{} bytes", raw.len());
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let records = vec![record(1, 5, 0, 10, &[1; 20]), record(1, 5, 0, 20, &[2; 20])];
        let raw = round_trip(&records);
        let decode_all = |raw: &[u8], max_len: usize| {
            let mut decoder = RecordDecoder::default();
            let (mut pos, mut out) = (0, Vec::new());
            decoder.decode(raw, &mut pos, &mut out, max_len)?;
            decoder.decode(raw, &mut pos, &mut out, max_len)
        };
        for cut in 0..raw.len() {
            assert!(decode_all(&raw[..cut], 1 << 16).is_err(), "cut at {cut}");
        }
        assert_eq!(decode_all(&raw, 40), Err(RecordError::TooLong { len: 20, max: 16 }));
        // A mask marking bytes past a 20-byte body's last chunk (4 bytes).
        let mut bad = raw.clone();
        let last_mask = 7 + 9 + 9;
        assert_eq!(bad[last_mask], 0b1111, "the first record's third mask");
        bad[last_mask] = 0b1_1111;
        assert_eq!(decode_all(&bad, 1 << 16), Err(RecordError::BadMask { mask: 0b1_1111 }));
    }
}
