//! The byte formats of ZooKeeper's data directory, as pure functions over bytes: the file
//! header, one transaction-log entry, the pieces of a snapshot (sessions, ACL table, node
//! records, the Adler-32 seal, the zxid digest) and the file names.
//!
//! Nothing here touches a file. The log and snapshot layers ([`crate::txnlog`],
//! [`crate::snapshot`]) read and write bytes and call these.
//!
//! Log file (`FileTxnLog`): `FileHeader{magic "ZKLG", version 2, dbid 0}`, then per txn
//! `long checksum` (Adler-32 of the entry bytes), `int length`, the entry bytes (TxnHeader,
//! txn record, optional TxnDigest), and the end-of-record byte `'B'`. The file is padded with
//! zeros (preallocation); a zero length marks the end.
//!
//! Snapshot (`FileSnap` + `SnapStream`): `FileHeader{"ZKSN", 2, dbid -1}`, `int count` +
//! `(long id, int timeout)` per session, `int count` + `(long id, vector<ACL>)` per ACL list,
//! node records `(ustring path, buffer data, long acl, StatPersisted)` in DataTree order with
//! the root as `""`, the terminator path `"/"`, a seal (`long` Adler-32 of everything so far,
//! then the string `"/"`), the `ZxidDigest{long zxid, int version, long digest}` and a
//! second seal over everything before it. The checksum is over the uncompressed stream.

use rzk_proto::{Acl, Record, StatPersisted, Writer, Zxid};

/// `FileTxnLog.TXNLOG_MAGIC`: "ZKLG".
pub const TXNLOG_MAGIC: i32 = 0x5A4B_4C47;
/// `FileSnap.SNAP_MAGIC`: "ZKSN".
pub const SNAP_MAGIC: i32 = 0x5A4B_534E;
/// The format version both files carry.
pub const VERSION: i32 = 2;
/// The dbid ZooKeeper writes in a log header.
pub const LOG_DBID: i64 = 0;
/// The dbid ZooKeeper writes in a snapshot header.
pub const SNAP_DBID: i64 = -1;
/// Bytes of a `FileHeader`.
pub const FILE_HEADER_BYTES: usize = 16;
/// `'B'`, written after each log entry.
pub const END_OF_RECORD: u8 = b'B';
/// checksum (8) + length (4).
pub const ENTRY_PREFIX_BYTES: usize = 12;
/// The directory ZooKeeper keeps its files in under dataDir and dataLogDir.
pub const VERSION_DIR: &str = "version-2";
/// The digest version (`DigestCalculator.DIGEST_VERSION`) a snapshot's ZxidDigest carries.
pub const DIGEST_VERSION: i32 = 2;

/// A format error: what is wrong, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

/// `FileHeader` as 16 bytes.
pub fn encode_file_header(magic: i32, dbid: i64) -> [u8; FILE_HEADER_BYTES] {
    let mut b = [0u8; FILE_HEADER_BYTES];
    b[..4].copy_from_slice(&magic.to_be_bytes());
    b[4..8].copy_from_slice(&VERSION.to_be_bytes());
    b[8..].copy_from_slice(&dbid.to_be_bytes());
    b
}

/// Checks a `FileHeader`; returns its dbid.
pub fn decode_file_header(b: &[u8], magic: i32) -> Result<i64, FormatError> {
    if b.len() < FILE_HEADER_BYTES {
        return Err(FormatError(format!("file header truncated: {} of {FILE_HEADER_BYTES} bytes", b.len())));
    }
    let m = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let v = i32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    if m != magic {
        return Err(FormatError(format!("bad magic {m:#010x}, expected {magic:#010x} ({})", magic_name(magic))));
    }
    if v != VERSION {
        return Err(FormatError(format!("unsupported format version {v}, expected {VERSION}")));
    }
    let mut d = [0u8; 8];
    d.copy_from_slice(&b[8..16]);
    Ok(i64::from_be_bytes(d))
}

fn magic_name(m: i32) -> &'static str {
    match m {
        TXNLOG_MAGIC => "ZKLG",
        SNAP_MAGIC => "ZKSN",
        _ => "?",
    }
}

/// Adler-32 as ZooKeeper stores it (a Java `long` holding the unsigned 32-bit value).
/// `simd-adler32` (AVX2 / SSSE3 when the CPU has them): on a restart every byte of the
/// snapshot and the log goes through it (bench/FINDINGS.md, *Restart at scale*).
pub fn adler32(bytes: &[u8]) -> i64 {
    let mut a = simd_adler32::Adler32::new();
    a.write(bytes);
    a.finish() as i64
}

/// Appends one log entry for the serialized txn `entry` (header + txn + optional digest).
pub fn encode_log_entry(entry: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&adler32(entry).to_be_bytes());
    out.extend_from_slice(&(entry.len() as i32).to_be_bytes());
    out.extend_from_slice(entry);
    out.push(END_OF_RECORD);
}

/// What is at some offset of a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEntry {
    /// A whole, checksummed entry; its bytes are `buf[body]`, and it takes `len` bytes.
    Entry { body: std::ops::Range<usize>, len: usize },
    /// Zero checksum and zero length: the end of what was written (the rest is padding).
    End,
    /// Not enough bytes to say; at least `needed` are required.
    Incomplete { needed: usize },
    /// Not a valid entry (bad length, checksum, end-of-record byte).
    Invalid(String),
}

/// Decodes the log entry at the start of `buf`. Lengths above `max_entry_bytes` are invalid,
/// so a corrupt length never leads to a large read.
pub fn decode_log_entry(buf: &[u8], max_entry_bytes: usize) -> LogEntry {
    if buf.len() < ENTRY_PREFIX_BYTES {
        return LogEntry::Incomplete { needed: ENTRY_PREFIX_BYTES };
    }
    let mut c = [0u8; 8];
    c.copy_from_slice(&buf[..8]);
    let crc = i64::from_be_bytes(c);
    let len = i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
    if len == 0 && crc == 0 {
        return LogEntry::End;
    }
    if len <= 0 || len as usize > max_entry_bytes {
        return LogEntry::Invalid(format!("entry length {len} out of range (1..={max_entry_bytes})"));
    }
    let len = len as usize;
    let total = ENTRY_PREFIX_BYTES + len + 1;
    if buf.len() < total {
        return LogEntry::Incomplete { needed: total };
    }
    let body = ENTRY_PREFIX_BYTES..ENTRY_PREFIX_BYTES + len;
    if buf[total - 1] != END_OF_RECORD {
        return LogEntry::Invalid(format!("end-of-record byte is {:#04x}, expected 'B'", buf[total - 1]));
    }
    let actual = adler32(&buf[body.clone()]);
    if actual != crc {
        return LogEntry::Invalid(format!("checksum mismatch: stored {crc:#x}, computed {actual:#x}"));
    }
    LogEntry::Entry { body, len: total }
}

/// `calculateFileSizeWithPadding`: the size a log file is extended to before writing at
/// `position` (of a file `file_size` long), preallocating in `prealloc` byte blocks.
pub fn padded_file_size(position: u64, file_size: u64, prealloc: u64) -> u64 {
    if prealloc > 0 && position + 4096 >= file_size {
        if position > file_size {
            let s = position + prealloc;
            s - s % prealloc
        } else {
            file_size + prealloc
        }
    } else {
        file_size
    }
}

// ---- snapshots ----

/// The sessions table: count, then `(id, timeout)` in the order given.
pub fn encode_sessions(sessions: &[(i64, i32)], w: &mut Writer) {
    w.write_i32(sessions.len() as i32);
    for (id, timeout) in sessions {
        w.write_i64(*id);
        w.write_i32(*timeout);
    }
}

/// The ACL table (`ReferenceCountedACLCache.serialize`).
pub fn encode_acl_table<'a>(entries: impl ExactSizeIterator<Item = (i64, &'a [Acl])>, w: &mut Writer) {
    w.write_i32(entries.len() as i32);
    for (id, list) in entries {
        w.write_i64(id);
        w.write_i32(list.len() as i32);
        for a in list {
            a.write(w);
        }
    }
}

/// One node record (`serializeNodeData`): path, data (null as -1), ACL id, stat.
pub fn encode_node(path: &str, data: Option<&[u8]>, acl: i64, stat: &StatPersisted, w: &mut Writer) {
    w.write_string(path);
    w.write_buffer_opt(data);
    w.write_i64(acl);
    stat.write(w);
}

/// The path that ends the node records.
pub fn encode_nodes_end(w: &mut Writer) {
    w.write_string("/");
}

/// `ZxidDigest`: the zxid the digest was taken at, the digest version and the tree digest.
pub fn encode_zxid_digest(zxid: Zxid, version: i32, digest: i64, w: &mut Writer) {
    w.write_i64(zxid.0);
    w.write_i32(version);
    w.write_i64(digest);
}

/// The Adler-32 of a snapshot stream, kept as bytes go by, and the seals it produces.
#[derive(Clone)]
pub struct SnapshotChecksum(simd_adler32::Adler32);

impl Default for SnapshotChecksum {
    fn default() -> Self {
        SnapshotChecksum(simd_adler32::Adler32::new())
    }
}

impl SnapshotChecksum {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    pub fn value(&self) -> i64 {
        self.0.finish() as i64
    }

    /// `SnapStream.sealStream`: the checksum so far and `"/"`; the seal's own bytes are
    /// counted too (they are part of the stream the next seal covers).
    pub fn seal(&mut self) -> Vec<u8> {
        let mut w = Writer::with_capacity(13);
        w.write_i64(self.value());
        w.write_string("/");
        let b = w.into_inner();
        self.update(&b);
        b
    }
}

// ---- file names ----

/// `log.<zxid hex>`.
pub fn log_file_name(zxid: Zxid) -> String {
    format!("log.{:x}", zxid.0)
}

/// `snapshot.<zxid hex>` plus the compression suffix (`""`, `.gz`, `.snappy`).
pub fn snapshot_file_name(zxid: Zxid, suffix: &str) -> String {
    format!("snapshot.{:x}{suffix}", zxid.0)
}

/// `Util.getZxidFromName`: the zxid in `<prefix>.<hex>[.<ext>]`, or `None`.
pub fn zxid_from_name(name: &str, prefix: &str) -> Option<Zxid> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('.')?;
    let hex = rest.split('.').next()?;
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|v| Zxid(v as i64))
}

/// How a snapshot file is compressed, from its name (`SnapStream.getStreamMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain bytes with the Adler-32 seal (the default).
    Checked,
    Gzip,
    /// xerial snappy-java's `SnappyOutputStream` framing.
    Snappy,
}

impl Compression {
    pub fn of_file_name(name: &str) -> Compression {
        if name.ends_with(".gz") {
            Compression::Gzip
        } else if name.ends_with(".snappy") {
            Compression::Snappy
        } else {
            Compression::Checked
        }
    }

    pub fn suffix(self) -> &'static str {
        match self {
            Compression::Checked => "",
            Compression::Gzip => ".gz",
            Compression::Snappy => ".snappy",
        }
    }

    /// From `snapshot.compression.method` (`""`, `gz`, `snappy`).
    pub fn from_method(m: &str) -> Option<Compression> {
        match m {
            "" => Some(Compression::Checked),
            "gz" => Some(Compression::Gzip),
            "snappy" => Some(Compression::Snappy),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_errors() {
        let h = encode_file_header(TXNLOG_MAGIC, LOG_DBID);
        assert_eq!(&h[..4], b"ZKLG");
        assert_eq!(decode_file_header(&h, TXNLOG_MAGIC), Ok(0));
        assert!(decode_file_header(&h, SNAP_MAGIC).unwrap_err().0.contains("bad magic"));
        assert!(decode_file_header(&h[..5], TXNLOG_MAGIC).is_err());
    }

    #[test]
    fn entries_decode_and_reject_corruption() {
        let mut b = Vec::new();
        encode_log_entry(b"hello", &mut b);
        assert_eq!(decode_log_entry(&b, 100), LogEntry::Entry { body: 12..17, len: 18 });
        assert_eq!(decode_log_entry(&b[..10], 100), LogEntry::Incomplete { needed: 12 });
        assert_eq!(decode_log_entry(&b[..17], 100), LogEntry::Incomplete { needed: 18 });
        assert_eq!(decode_log_entry(&[0u8; 20], 100), LogEntry::End);
        let mut bad = b.clone();
        bad[13] ^= 1;
        assert!(matches!(decode_log_entry(&bad, 100), LogEntry::Invalid(s) if s.contains("checksum")));
        let mut bad = b.clone();
        bad[17] = b'X';
        assert!(matches!(decode_log_entry(&bad, 100), LogEntry::Invalid(s) if s.contains("end-of-record")));
        // A huge or negative length is an error, not an allocation.
        let mut huge = b.clone();
        huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(decode_log_entry(&huge, 1 << 20), LogEntry::Invalid(_)));
        huge[8..12].copy_from_slice(&(-7i32).to_be_bytes());
        assert!(matches!(decode_log_entry(&huge, 1 << 20), LogEntry::Invalid(_)));
    }

    #[test]
    fn padding_matches_zookeeper() {
        let mb64 = 64 << 20;
        assert_eq!(padded_file_size(16, 0, mb64), mb64);
        assert_eq!(padded_file_size(1000, mb64, mb64), mb64);
        assert_eq!(padded_file_size(mb64 - 100, mb64, mb64), 2 * mb64);
        assert_eq!(padded_file_size(100, 0, 0), 0);
    }

    #[test]
    fn names() {
        assert_eq!(log_file_name(Zxid(0x1a)), "log.1a");
        assert_eq!(snapshot_file_name(Zxid(0x100000001), ".gz"), "snapshot.100000001.gz");
        assert_eq!(zxid_from_name("snapshot.1a.snappy", "snapshot"), Some(Zxid(0x1a)));
        assert_eq!(zxid_from_name("log.ff", "log"), Some(Zxid(0xff)));
        assert_eq!(zxid_from_name("log.zz", "log"), None);
        assert_eq!(zxid_from_name("snapshot.1a.tmp", "log"), None);
        assert_eq!(Compression::of_file_name("snapshot.5.gz"), Compression::Gzip);
    }
}
