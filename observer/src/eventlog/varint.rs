//! The integers inside an `events.bin` v2 block: LEB128 varints (7 bits a byte, low bits first,
//! high bit set on every byte but the last) and zigzag-encoded signed deltas.

/// Why a varint could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VarintError {
    #[error("a number runs past the end of the block")]
    Truncated,
    #[error("a number is longer than 64 bits")]
    TooLong,
}

/// Appends `value` as a varint (1 to 10 bytes).
pub fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads the varint at `data[*pos..]` and moves `pos` past it.
#[inline]
pub fn get(data: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    // Most numbers in a block are deltas below 128.
    if let Some(&byte) = data.get(*pos) {
        if byte < 0x80 {
            *pos += 1;
            return Ok(u64::from(byte));
        }
    }
    get_long(data, pos)
}

fn get_long(data: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = data.get(*pos) else { return Err(VarintError::Truncated) };
        *pos += 1;
        let bits = u64::from(byte & 0x7f);
        // The tenth byte holds the 64th bit only.
        if shift == 63 && bits > 1 {
            return Err(VarintError::TooLong);
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(VarintError::TooLong)
}

/// Small magnitudes of either sign to small numbers: 0, -1, 1, -2, 2 ... -> 0, 1, 2, 3, 4 ...
pub fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

pub fn unzigzag(value: u64) -> i64 {
    (value >> 1) as i64 ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_length() {
        let values = [0, 1, 127, 128, 300, 16_383, 16_384, u32::MAX as u64, 1 << 62, u64::MAX - 1, u64::MAX];
        let mut out = Vec::new();
        for v in values {
            put(&mut out, v);
        }
        assert_eq!(out.len(), 1 + 1 + 1 + 2 + 2 + 2 + 3 + 5 + 9 + 10 + 10);
        let mut pos = 0;
        for v in values {
            assert_eq!(get(&out, &mut pos), Ok(v));
        }
        assert_eq!(pos, out.len());
    }

    #[test]
    fn a_cut_or_overlong_varint_is_an_error() {
        let mut pos = 0;
        assert_eq!(get(&[0x80, 0x80], &mut pos), Err(VarintError::Truncated));
        let mut pos = 0;
        assert_eq!(get(&[0xff; 10], &mut pos), Err(VarintError::TooLong));
        let mut pos = 0;
        assert_eq!(
            get(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], &mut pos),
            Err(VarintError::TooLong)
        );
    }

    #[test]
    fn zigzag_maps_small_magnitudes_to_small_numbers_and_back() {
        assert_eq!([0, -1, 1, -2, 2].map(zigzag), [0, 1, 2, 3, 4]);
        for v in [0, 1, -1, i64::MAX, i64::MIN, 123_456_789, -987_654_321] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
