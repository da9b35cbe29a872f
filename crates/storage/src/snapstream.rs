//! Snapshot streams: the compression ZooKeeper's `SnapStream` applies (none, gzip, or
//! snappy-java's `SnappyOutputStream` framing) and a reader that checks the Adler-32 seals
//! over the uncompressed bytes while it decodes jute values.
//!
//! snappy-java's framing: an 8-byte magic `0x82 "SNAPPY" 0x00`, `int version` and
//! `int compatible version` (both 1), then blocks of `int compressed length` + a raw snappy
//! block of at most 32 KiB of input. Every length read is bounded before anything is
//! allocated.

use crate::format::{Compression, FormatError, SnapshotChecksum};
use rzk_proto::{Acl, Record, StatPersisted};
use std::io::{self, BufReader, Read, Write};

const SNAPPY_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const SNAPPY_BLOCK_BYTES: usize = 32 * 1024;
/// The largest snappy block we accept (compressed or not); snappy-java writes 32 KiB blocks.
const SNAPPY_BLOCK_BYTES_MAX: usize = 64 << 20;

/// A writer that compresses as `snapshot.compression.method` says.
#[allow(clippy::large_enum_variant)] // one per snapshot
pub enum Compressor<W: Write> {
    Checked(io::BufWriter<W>),
    Gzip(flate2::write::GzEncoder<io::BufWriter<W>>),
    Snappy(SnappyWriter<W>),
}

impl<W: Write> Compressor<W> {
    pub fn new(inner: W, c: Compression) -> io::Result<Self> {
        let buffered = io::BufWriter::with_capacity(256 * 1024, inner);
        Ok(match c {
            Compression::Checked => Compressor::Checked(buffered),
            Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(buffered, flate2::Compression::default())),
            Compression::Snappy => Compressor::Snappy(SnappyWriter::new(buffered)?),
        })
    }

    /// Flushes everything (the gzip trailer, the last snappy block) and returns the file.
    pub fn finish(self) -> io::Result<W> {
        let buffered = match self {
            Compressor::Checked(b) => b,
            Compressor::Gzip(g) => g.finish()?,
            Compressor::Snappy(s) => s.finish()?,
        };
        buffered.into_inner().map_err(|e| e.into_error())
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Checked(w) => w.write(buf),
            Compressor::Gzip(w) => w.write(buf),
            Compressor::Snappy(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Checked(w) => w.flush(),
            Compressor::Gzip(w) => w.flush(),
            Compressor::Snappy(w) => w.flush(),
        }
    }
}

/// snappy-java's `SnappyOutputStream`.
pub struct SnappyWriter<W: Write> {
    inner: io::BufWriter<W>,
    block: Vec<u8>,
    enc: snap::raw::Encoder,
}

impl<W: Write> SnappyWriter<W> {
    fn new(mut inner: io::BufWriter<W>) -> io::Result<Self> {
        inner.write_all(&SNAPPY_MAGIC)?;
        inner.write_all(&1i32.to_be_bytes())?;
        inner.write_all(&1i32.to_be_bytes())?;
        Ok(SnappyWriter { inner, block: Vec::with_capacity(SNAPPY_BLOCK_BYTES), enc: snap::raw::Encoder::new() })
    }

    fn flush_block(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let c = self.enc.compress_vec(&self.block).map_err(io::Error::other)?;
        self.inner.write_all(&(c.len() as i32).to_be_bytes())?;
        self.inner.write_all(&c)?;
        self.block.clear();
        Ok(())
    }

    fn finish(mut self) -> io::Result<io::BufWriter<W>> {
        self.flush_block()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SnappyWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = SNAPPY_BLOCK_BYTES - self.block.len();
        let n = room.min(buf.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == SNAPPY_BLOCK_BYTES {
            self.flush_block()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.flush_block()?;
        self.inner.flush()
    }
}

/// snappy-java's `SnappyInputStream`.
pub struct SnappyReader<R: Read> {
    inner: R,
    block: Vec<u8>,
    pos: usize,
    dec: snap::raw::Decoder,
}

impl<R: Read> SnappyReader<R> {
    pub fn new(mut inner: R) -> io::Result<Self> {
        let mut h = [0u8; 16];
        inner.read_exact(&mut h)?;
        if h[..8] != SNAPPY_MAGIC {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not a snappy-java stream (bad magic header)"));
        }
        Ok(SnappyReader { inner, block: Vec::new(), pos: 0, dec: snap::raw::Decoder::new() })
    }

    /// Reads the next block; false at a clean end of stream.
    fn next_block(&mut self) -> io::Result<bool> {
        let mut l = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            let n = self.inner.read(&mut l[got..])?;
            if n == 0 {
                if got == 0 {
                    return Ok(false);
                }
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "snappy block length truncated"));
            }
            got += n;
        }
        let len = i32::from_be_bytes(l);
        if len < 0 || len as usize > SNAPPY_BLOCK_BYTES_MAX {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("snappy block length {len} out of range")));
        }
        let mut c = Vec::new();
        (&mut self.inner).take(len as u64).read_to_end(&mut c)?;
        if c.len() != len as usize {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "snappy block truncated"));
        }
        let n = snap::raw::decompress_len(&c).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if n > SNAPPY_BLOCK_BYTES_MAX {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("snappy block of {n} bytes is too large")));
        }
        self.block = self.dec.decompress_vec(&c).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.pos = 0;
        Ok(true)
    }
}

impl<R: Read> Read for SnappyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The uncompressed stream of a snapshot file.
pub fn decompressor<'a, R: Read + 'a>(inner: R, c: Compression) -> io::Result<Box<dyn Read + 'a>> {
    let buffered = BufReader::with_capacity(256 * 1024, inner);
    Ok(match c {
        Compression::Checked => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(buffered)),
        Compression::Snappy => Box::new(SnappyReader::new(buffered)?),
    })
}

/// Reads jute values from a stream, keeping the Adler-32 of everything read.
///
/// It keeps its own buffer and parses values in place: the checksum is brought up to date
/// over whole buffers (and when asked for), not per value, and a stat is decoded from the
/// buffer without a copy. On a restart every byte of the snapshot goes through here
/// (bench/FINDINGS.md, *Restart at scale*).
pub struct CheckedReader<R: Read> {
    inner: R,
    buf: Vec<u8>,
    /// `buf[pos..end]` is read from `inner` and not consumed yet.
    pos: usize,
    end: usize,
    /// `buf[summed..pos]` is consumed but not yet in `sum`.
    summed: usize,
    sum: SnapshotChecksum,
    /// Bytes read so far (uncompressed), for error messages.
    pub offset: u64,
    max_bytes: usize,
}

fn fe(offset: u64, what: impl std::fmt::Display) -> FormatError {
    FormatError(format!("at byte {offset} (uncompressed): {what}"))
}

/// The reader's buffer (it grows only for a value larger than this).
const CHECKED_READER_BUFFER_BYTES: usize = 1 << 20;

impl<R: Read> CheckedReader<R> {
    /// `max_bytes` bounds any one string or buffer (ZooKeeper: `jute.maxbuffer`).
    pub fn new(inner: R, max_bytes: usize) -> Self {
        CheckedReader {
            inner,
            buf: vec![0u8; CHECKED_READER_BUFFER_BYTES],
            pos: 0,
            end: 0,
            summed: 0,
            sum: SnapshotChecksum::default(),
            offset: 0,
            max_bytes,
        }
    }

    fn update_sum(&mut self) {
        self.sum.update(&self.buf[self.summed..self.pos]);
        self.summed = self.pos;
    }

    /// The reader it reads from (bytes it buffered and did not hand out are dropped).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The checksum of every byte consumed so far.
    pub fn checksum(&mut self) -> i64 {
        self.update_sum();
        self.sum.value()
    }

    /// Reads until `n` unconsumed bytes are buffered, or the stream ends (then fewer are).
    fn refill(&mut self, n: usize) -> Result<(), FormatError> {
        self.update_sum();
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        self.summed = 0;
        if self.buf.len() < n {
            self.buf.resize(n, 0);
        }
        while self.end < n {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => break,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fe(self.offset, e)),
            }
        }
        Ok(())
    }

    /// The next `n` bytes, consumed.
    #[inline]
    fn take(&mut self, n: usize) -> Result<&[u8], FormatError> {
        if self.end - self.pos < n {
            self.refill(n)?;
            if self.end - self.pos < n {
                return Err(fe(self.offset, "unexpected end of snapshot"));
            }
        }
        let at = self.pos;
        self.pos += n;
        self.offset += n as u64;
        Ok(&self.buf[at..at + n])
    }

    pub fn read_i32(&mut self) -> Result<i32, FormatError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes(b.try_into().expect("4 bytes")))
    }

    pub fn read_i64(&mut self) -> Result<i64, FormatError> {
        let b = self.take(8)?;
        Ok(i64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    /// True if the stream has no more bytes.
    pub fn at_end(&mut self) -> Result<bool, FormatError> {
        if self.pos < self.end {
            return Ok(false);
        }
        self.refill(1)?;
        Ok(self.pos == self.end)
    }

    fn read_len(&mut self, what: &str) -> Result<Option<usize>, FormatError> {
        let n = self.read_i32()?;
        match n {
            -1 => Ok(None),
            n if n < 0 => Err(fe(self.offset, format!("negative {what} length {n}"))),
            n if n as usize > self.max_bytes => {
                Err(fe(self.offset, format!("{what} length {n} exceeds the limit of {} bytes", self.max_bytes)))
            }
            n => Ok(Some(n as usize)),
        }
    }

    pub fn read_buffer_opt(&mut self) -> Result<Option<Vec<u8>>, FormatError> {
        match self.read_len("buffer")? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?.to_vec())),
        }
    }

    /// Appends the next buffer to `out`; its range there, `None` for a null buffer.
    pub fn read_buffer_opt_into(&mut self, out: &mut Vec<u8>) -> Result<Option<(usize, usize)>, FormatError> {
        match self.read_len("buffer")? {
            None => Ok(None),
            Some(n) => {
                let at = out.len();
                out.extend_from_slice(self.take(n)?);
                Ok(Some((at, at + n)))
            }
        }
    }

    /// Appends the next string's UTF-8 to `out` (a null string is empty); its range there.
    pub fn read_string_into(&mut self, out: &mut Vec<u8>) -> Result<(usize, usize), FormatError> {
        let at = out.len();
        let r = self.read_buffer_opt_into(out)?.unwrap_or((at, at));
        if std::str::from_utf8(&out[r.0..r.1]).is_err() {
            out.truncate(at);
            return Err(fe(self.offset, "string is not valid UTF-8"));
        }
        Ok(r)
    }

    pub fn read_string(&mut self) -> Result<String, FormatError> {
        let b = self.read_buffer_opt()?.unwrap_or_default();
        String::from_utf8(b).map_err(|_| fe(self.offset, "string is not valid UTF-8"))
    }

    /// Decodes a fixed-size record from the next `n` bytes.
    fn read_record<T: Record>(&mut self, n: usize) -> Result<T, FormatError> {
        let b = self.take(n)?;
        let r = T::from_bytes(b);
        r.map_err(|e| fe(self.offset, e))
    }

    pub fn read_stat(&mut self) -> Result<StatPersisted, FormatError> {
        self.read_record(STAT_PERSISTED_BYTES)
    }

    pub fn read_acl_list(&mut self) -> Result<Vec<Acl>, FormatError> {
        let n = self.read_len("ACL list")?.unwrap_or(0);
        // Each ACL takes at least 12 bytes; the count is bounded like a buffer.
        let mut v = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let perms = self.read_i32()?;
            let scheme = self.read_string()?;
            let id = self.read_string()?;
            v.push(Acl { perms, id: rzk_proto::Id { scheme, id } });
        }
        Ok(v)
    }

    /// `SnapStream.checkSealIntegrity`: the stored checksum must equal ours, then `"/"`.
    pub fn check_seal(&mut self) -> Result<(), FormatError> {
        let expected = self.checksum();
        let at = self.offset;
        let stored = self.read_i64()?;
        let slash = self.read_string()?;
        if stored != expected {
            return Err(fe(at, format!("checksum mismatch: stored {stored:#x}, computed {expected:#x} (the snapshot is corrupt)")));
        }
        if slash != "/" {
            return Err(fe(at, format!("seal path is {slash:?}, expected \"/\"")));
        }
        Ok(())
    }
}

/// czxid, mzxid, ctime, mtime (longs), version, cversion, aversion (ints), ephemeralOwner,
/// pzxid (longs).
pub const STAT_PERSISTED_BYTES: usize = 8 * 6 + 4 * 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compression_round_trips() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 251).to_be_bytes()).collect();
        for c in [Compression::Checked, Compression::Gzip, Compression::Snappy] {
            let mut w = Compressor::new(Vec::new(), c).unwrap();
            w.write_all(&data).unwrap();
            let bytes = w.finish().unwrap();
            let mut back = Vec::new();
            decompressor(&bytes[..], c).unwrap().read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "{c:?}");
        }
    }

    #[test]
    fn snappy_rejects_garbage() {
        let mut bad = SNAPPY_MAGIC.to_vec();
        bad.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        bad.extend_from_slice(&i32::MAX.to_be_bytes());
        let mut out = Vec::new();
        assert!(decompressor(&bad[..], Compression::Snappy).unwrap().read_to_end(&mut out).is_err());
        assert!(decompressor(&b"nope"[..], Compression::Snappy).is_err());
    }

    #[test]
    fn huge_lengths_are_errors() {
        let b = i32::MAX.to_be_bytes();
        let mut r = CheckedReader::new(&b[..], 1 << 20);
        assert!(r.read_buffer_opt().unwrap_err().0.contains("exceeds"));
    }
}
