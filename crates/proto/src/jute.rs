//! Jute primitives: big-endian int (4 bytes) and long (8), boolean (1 byte), ustring and buffer
//! (4-byte length, -1 for null, then bytes), vector (4-byte count, -1 for null, then items).
//!
//! [`Reader`] checks every length against the bytes that remain before allocating, so a
//! hostile length prefix costs nothing. Null strings, buffers and vectors decode as empty,
//! which is how ZooKeeper's servers treat them.

use thiserror::Error;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("record truncated: needed {needed} more bytes, {remaining} remain")]
    Truncated { needed: usize, remaining: usize },
    #[error("negative length {0}")]
    NegativeLength(i32),
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("unknown op code {0}")]
    UnknownOpCode(i32),
    #[error("invalid value: {0}")]
    Invalid(&'static str),
}

/// A cursor over a byte slice holding jute-encoded records.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The bytes not yet read.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated { needed: n, remaining: self.remaining() });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next `n` bytes as they are.
    pub fn read_raw(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.take(n)
    }

    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// A length prefix: -1 means null (returned as `None`); other negatives are errors.
    fn read_len(&mut self) -> Result<Option<usize>, DecodeError> {
        let n = self.read_i32()?;
        match n {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::NegativeLength(n)),
            n => Ok(Some(n as usize)),
        }
    }

    /// A jute buffer; null decodes as empty.
    pub fn read_buffer(&mut self) -> Result<Vec<u8>, DecodeError> {
        match self.read_len()? {
            None => Ok(Vec::new()),
            Some(n) => Ok(self.take(n)?.to_vec()),
        }
    }

    /// A jute buffer, keeping null apart from empty.
    pub fn read_buffer_opt(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        match self.read_len()? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?.to_vec())),
        }
    }

    /// A jute ustring; null decodes as empty. Bytes that are not UTF-8 decode as Java's
    /// `new String(bytes, UTF_8)` decodes them: each malformed sequence becomes U+FFFD (so a
    /// path with them is an invalid path, or a node that does not exist, as in ZooKeeper).
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        match self.read_len()? {
            None => Ok(String::new()),
            Some(n) => {
                let b = self.take(n)?;
                Ok(match std::str::from_utf8(b) {
                    Ok(s) => s.to_owned(),
                    Err(_) => java_utf8_decode(b),
                })
            }
        }
    }

    /// A jute vector of records; null decodes as empty. As jute's `BinaryInputArchive`, a
    /// count below -1 is an empty vector (its index is done at once), not an error. The count
    /// is checked against the remaining bytes (each item takes at least `min_item_bytes`)
    /// before anything is allocated.
    pub fn read_vec<T: Record>(&mut self) -> Result<Vec<T>, DecodeError> {
        let n = self.read_i32()?;
        match (n >= 0).then_some(n as usize) {
            None => Ok(Vec::new()),
            Some(n) => {
                let min = T::MIN_ENCODED_BYTES.max(1);
                if n.saturating_mul(min) > self.remaining() {
                    return Err(DecodeError::Truncated { needed: n * min, remaining: self.remaining() });
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(T::read(self)?);
                }
                Ok(v)
            }
        }
    }
}

/// Java's `new String(bytes, UTF_8)`: valid UTF-8 as it is; each malformed sequence becomes
/// U+FFFD where Java's decoder makes one (`String.decodeUTF8_UTF16` with replacement: a
/// surrogate's three bytes are one U+FFFD, a truncated sequence at the end is one U+FFFD
/// whatever its length), which is not always where Rust's `from_utf8_lossy` makes them.
pub fn java_utf8_decode(src: &[u8]) -> String {
    const REPL: char = '\u{fffd}';
    let cont = |b: u8| b & 0xc0 == 0x80;
    let mut out = String::with_capacity(src.len());
    let (mut sp, sl) = (0usize, src.len());
    while sp < sl {
        let b1 = src[sp];
        sp += 1;
        match b1 {
            0x00..=0x7f => out.push(b1 as char),
            0xc2..=0xdf => {
                if sp < sl {
                    let b2 = src[sp];
                    if cont(b2) {
                        sp += 1;
                        out.push(char::from_u32(((b1 as u32 & 0x1f) << 6) | (b2 as u32 & 0x3f)).unwrap_or(REPL));
                    } else {
                        out.push(REPL);
                    }
                    continue;
                }
                out.push(REPL);
                break;
            }
            0xe0..=0xef => {
                // isMalformed3_2 / malformed3: an overlong E0 or a second byte that does not continue.
                let bad2 = |b2: u8| (b1 == 0xe0 && b2 & 0xe0 == 0x80) || !cont(b2);
                if sp + 1 < sl {
                    let (b2, b3) = (src[sp], src[sp + 1]);
                    if bad2(b2) || !cont(b3) {
                        out.push(REPL);
                        sp += if bad2(b2) { 0 } else { 1 };
                    } else {
                        sp += 2;
                        let c = ((b1 as u32 & 0x0f) << 12) | ((b2 as u32 & 0x3f) << 6) | (b3 as u32 & 0x3f);
                        // A surrogate is not a char: one U+FFFD for its three bytes.
                        out.push(char::from_u32(c).unwrap_or(REPL));
                    }
                    continue;
                }
                if sp < sl && bad2(src[sp]) {
                    out.push(REPL);
                    continue;
                }
                out.push(REPL);
                break;
            }
            0xf0..=0xf7 => {
                // isMalformed4_2 / malformed4's first test.
                let bad2 =
                    |b2: u8| b1 > 0xf4 || (b1 == 0xf0 && !(0x90..=0xbf).contains(&b2)) || (b1 == 0xf4 && b2 & 0xf0 != 0x80) || !cont(b2);
                if sp + 2 < sl {
                    let (b2, b3, b4) = (src[sp], src[sp + 1], src[sp + 2]);
                    let uc = ((b1 as u32 & 0x07) << 18) | ((b2 as u32 & 0x3f) << 12) | ((b3 as u32 & 0x3f) << 6) | (b4 as u32 & 0x3f);
                    if !cont(b2) || !cont(b3) || !cont(b4) || !(0x10000..0x110000).contains(&uc) {
                        out.push(REPL);
                        sp += if bad2(b2) {
                            0
                        } else if !cont(b3) {
                            1
                        } else {
                            2
                        };
                    } else {
                        sp += 3;
                        out.push(char::from_u32(uc).unwrap_or(REPL));
                    }
                    continue;
                }
                if b1 > 0xf4 || (sp < sl && bad2(src[sp])) {
                    out.push(REPL);
                    continue;
                }
                sp += 1;
                out.push(REPL);
                if sp < sl && !cont(src[sp]) {
                    continue;
                }
                break;
            }
            _ => out.push(REPL),
        }
    }
    out
}

/// A growable buffer that jute records are written into.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    pub fn with_capacity(n: usize) -> Self {
        Writer { buf: Vec::with_capacity(n) }
    }

    /// A writer that starts with a 4-byte placeholder for a frame length; see [`Writer::finish_frame`].
    pub fn for_frame() -> Self {
        Writer { buf: vec![0, 0, 0, 0] }
    }

    /// [`Writer::for_frame`] with room for `n` bytes, the length included.
    pub fn for_frame_with_capacity(n: usize) -> Self {
        let mut buf = Vec::with_capacity(n.max(4));
        buf.extend_from_slice(&[0; 4]);
        Writer { buf }
    }

    /// Fills in the length placeholder written by [`Writer::for_frame`] and returns the frame.
    pub fn finish_frame(mut self) -> Vec<u8> {
        let n = (self.buf.len() - 4) as i32;
        self.buf[..4].copy_from_slice(&n.to_be_bytes());
        self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub fn write_bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }

    pub fn write_u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn write_i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn write_i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn write_buffer(&mut self, v: &[u8]) {
        self.write_i32(v.len() as i32);
        self.buf.extend_from_slice(v);
    }

    /// Writes a buffer, or -1 for null.
    pub fn write_buffer_opt(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.write_i32(-1),
            Some(b) => self.write_buffer(b),
        }
    }

    pub fn write_string(&mut self, v: &str) {
        self.write_buffer(v.as_bytes());
    }

    pub fn write_vec<T: Record>(&mut self, v: &[T]) {
        self.write_i32(v.len() as i32);
        for item in v {
            item.write(self);
        }
    }

    pub fn write_raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
}

/// A jute record: something with a fixed field order that reads and writes itself.
pub trait Record: Sized {
    /// The fewest bytes one encoded value can take; bounds vector pre-allocation.
    const MIN_ENCODED_BYTES: usize;
    fn write(&self, w: &mut Writer);
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Encodes this record alone.
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_inner()
    }

    /// Decodes one record from the start of `b` (trailing bytes are allowed).
    fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        Self::read(&mut Reader::new(b))
    }
}

impl Record for String {
    const MIN_ENCODED_BYTES: usize = 4;
    fn write(&self, w: &mut Writer) {
        w.write_string(self)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_string()
    }
}

impl Record for i32 {
    const MIN_ENCODED_BYTES: usize = 4;
    fn write(&self, w: &mut Writer) {
        w.write_i32(*self)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}

impl Record for i64 {
    const MIN_ENCODED_BYTES: usize = 8;
    fn write(&self, w: &mut Writer) {
        w.write_i64(*self)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
}

/// Declares a plain jute record: a struct whose fields are written in order.
#[macro_export]
macro_rules! jute_record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $( $(#[$fmeta])* pub $field: $ty ),* }

        impl $crate::jute::Record for $name {
            const MIN_ENCODED_BYTES: usize = 0 $( + <$ty as $crate::jute::Field>::MIN_BYTES )*;
            fn write(&self, w: &mut $crate::jute::Writer) {
                $( $crate::jute::Field::write_field(&self.$field, w); )*
            }
            fn read(r: &mut $crate::jute::Reader<'_>) -> Result<Self, $crate::jute::DecodeError> {
                Ok($name { $( $field: <$ty as $crate::jute::Field>::read_field(r)? ),* })
            }
        }

        impl $crate::jute::Field for $name {
            const MIN_BYTES: usize = <$name as $crate::jute::Record>::MIN_ENCODED_BYTES;
            fn write_field(&self, w: &mut $crate::jute::Writer) {
                $crate::jute::Record::write(self, w)
            }
            fn read_field(r: &mut $crate::jute::Reader<'_>) -> Result<Self, $crate::jute::DecodeError> {
                <$name as $crate::jute::Record>::read(r)
            }
        }
    };
}

/// A field type usable inside [`jute_record!`].
pub trait Field: Sized {
    const MIN_BYTES: usize;
    fn write_field(&self, w: &mut Writer);
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

impl Field for i32 {
    const MIN_BYTES: usize = 4;
    fn write_field(&self, w: &mut Writer) {
        w.write_i32(*self)
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}
impl Field for i64 {
    const MIN_BYTES: usize = 8;
    fn write_field(&self, w: &mut Writer) {
        w.write_i64(*self)
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
}
impl Field for bool {
    const MIN_BYTES: usize = 1;
    fn write_field(&self, w: &mut Writer) {
        w.write_bool(*self)
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
}
impl Field for String {
    const MIN_BYTES: usize = 4;
    fn write_field(&self, w: &mut Writer) {
        w.write_string(self)
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_string()
    }
}
/// A ustring that keeps null (length -1) apart from empty (`ReconfigRequest`'s strings:
/// ZooKeeper tells "not given" from "" by null).
impl Field for Option<String> {
    const MIN_BYTES: usize = 4;
    fn write_field(&self, w: &mut Writer) {
        w.write_buffer_opt(self.as_deref().map(str::as_bytes))
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.read_buffer_opt()?.map(|b| match String::from_utf8(b) {
            Ok(s) => s,
            Err(e) => java_utf8_decode(e.as_bytes()),
        }))
    }
}
impl Field for Vec<u8> {
    const MIN_BYTES: usize = 4;
    fn write_field(&self, w: &mut Writer) {
        w.write_buffer(self)
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_buffer()
    }
}

/// A buffer that keeps null (length -1) apart from empty, as ZooKeeper's znode data does.
impl Field for Option<Vec<u8>> {
    const MIN_BYTES: usize = 4;
    fn write_field(&self, w: &mut Writer) {
        w.write_buffer_opt(self.as_deref())
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_buffer_opt()
    }
}

/// Vectors of records (jute `vector<T>`); `Vec<u8>` is a buffer instead.
impl<T: Record> Field for Vec<T> {
    const MIN_BYTES: usize = 4;
    fn write_field(&self, w: &mut Writer) {
        w.write_vec(self)
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut w = Writer::new();
        w.write_i32(-7);
        w.write_i64(1 << 40);
        w.write_bool(true);
        w.write_string("/a/b");
        w.write_buffer(b"xyz");
        w.write_i32(-1); // null buffer
        let b = w.into_inner();
        let mut r = Reader::new(&b);
        assert_eq!(r.read_i32().unwrap(), -7);
        assert_eq!(r.read_i64().unwrap(), 1 << 40);
        assert!(r.read_bool().unwrap());
        assert_eq!(r.read_string().unwrap(), "/a/b");
        assert_eq!(r.read_buffer().unwrap(), b"xyz");
        assert_eq!(r.read_buffer_opt().unwrap(), None);
        assert!(r.is_empty());
    }

    #[test]
    fn hostile_lengths_are_errors_not_allocations() {
        let mut w = Writer::new();
        w.write_i32(i32::MAX);
        let b = w.into_inner();
        assert!(matches!(Reader::new(&b).read_buffer(), Err(DecodeError::Truncated { .. })));
        assert!(matches!(Reader::new(&b).read_vec::<String>(), Err(DecodeError::Truncated { .. })));
        let neg = (-5i32).to_be_bytes();
        assert_eq!(Reader::new(&neg).read_string(), Err(DecodeError::NegativeLength(-5)));
    }

    /// Cases decoded by Java 17's `new String(bytes, UTF_8)` (random byte strings rich in
    /// lead, continuation and invalid bytes): input hex, then the UTF-16 code units.
    #[test]
    fn decoding_matches_java_on_its_own_cases() {
        let cases = include_str!("../testdata/java_utf8_decode.txt");
        let mut n = 0;
        for line in cases.lines() {
            let (input, want) = line.split_once(' ').expect("two columns");
            let bytes: Vec<u8> = (0..input.len()).step_by(2).map(|i| u8::from_str_radix(&input[i..i + 2], 16).unwrap()).collect();
            let got: String = java_utf8_decode(&bytes).encode_utf16().map(|u| format!("{u:04x}")).collect();
            assert_eq!(got, want, "input {input}");
            n += 1;
        }
        assert!(n > 1000);
    }

    #[test]
    fn invalid_utf8_decodes_as_java_does() {
        let mut w = Writer::new();
        w.write_buffer(b"/a\xffb\xe2\x82");
        let b = w.into_inner();
        assert_eq!(Reader::new(&b).read_string().unwrap(), "/a\u{fffd}b\u{fffd}");
    }

    #[test]
    fn vector_counts_below_minus_one_are_empty() {
        for n in [-1i32, -2, i32::MIN] {
            let b = n.to_be_bytes();
            assert_eq!(Reader::new(&b).read_vec::<String>().unwrap(), Vec::<String>::new());
        }
    }
}
