//! The protobuf wire format, as much of it as a Perfetto trace needs: varints, 64-bit fixed
//! values, strings and nested messages, written field by field (proto2 has no required order).

/// One message being written.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct Message {
    bytes: Vec<u8>,
}

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LENGTH_DELIMITED: u64 = 2;

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

impl Message {
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, field: u32, wire_type: u64) {
        push_varint(&mut self.bytes, (u64::from(field) << 3) | wire_type);
    }

    /// `uint32`, `uint64`, `bool` and enum fields.
    pub fn uint(&mut self, field: u32, value: u64) -> &mut Self {
        self.key(field, VARINT);
        push_varint(&mut self.bytes, value);
        self
    }

    /// `int32` and `int64` fields (a negative value takes ten bytes, as protobuf has it).
    pub fn int(&mut self, field: u32, value: i64) -> &mut Self {
        self.uint(field, value as u64)
    }

    /// `fixed64` fields.
    pub fn fixed64(&mut self, field: u32, value: u64) -> &mut Self {
        self.key(field, FIXED64);
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn bytes(&mut self, field: u32, value: &[u8]) -> &mut Self {
        self.key(field, LENGTH_DELIMITED);
        push_varint(&mut self.bytes, value.len() as u64);
        self.bytes.extend_from_slice(value);
        self
    }

    pub fn string(&mut self, field: u32, value: &str) -> &mut Self {
        self.bytes(field, value.as_bytes())
    }

    pub fn message(&mut self, field: u32, value: &Message) -> &mut Self {
        self.bytes(field, &value.bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_protobuf_documentation() {
        // https://protobuf.dev/programming-guides/encoding/: field 1 = 150 is 08 96 01.
        assert_eq!(Message::new().uint(1, 150).as_bytes(), [0x08, 0x96, 0x01]);
        // field 2 = "testing" is 12 07 74 65 73 74 69 6e 67.
        assert_eq!(Message::new().string(2, "testing").as_bytes(), b"\x12\x07testing");
        // field 3 = message { field 1 = 150 } is 1a 03 08 96 01.
        assert_eq!(Message::new().message(3, Message::new().uint(1, 150)).as_bytes(), [0x1a, 0x03, 0x08, 0x96, 0x01]);
        assert_eq!(Message::new().int(4, -1).as_bytes().len(), 11);
        assert_eq!(Message::new().fixed64(47, 1).as_bytes(), [0xf9, 0x02, 1, 0, 0, 0, 0, 0, 0, 0]);
    }
}
