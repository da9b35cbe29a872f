//! ZooKeeper 3.6+'s tree digest (`DigestCalculator`, digest version 2, and `AdHash`).
//!
//! Each znode contributes the CRC32 (`java.util.zip.CRC32`) of its path bytes, its data and
//! 60 big-endian bytes of its persisted stat in the order czxid, mzxid, pzxid, ctime, mtime
//! (longs), version, cversion, aversion (ints), ephemeralOwner (long). The tree digest is the
//! wrapping 64-bit sum of the node digests. The root is hashed under the path `""` (ZooKeeper
//! keeps `""` and `"/"` as aliases and maps `"/"` to `""`), and every path under
//! `/zookeeper/` contributes nothing (`/zookeeper` itself does count).

use rzk_proto::StatPersisted;

/// `DigestCalculator.DIGEST_VERSION`, the version carried in `TxnDigest`.
pub const DIGEST_VERSION: i32 = 2;

/// `ZooDefs.ZOOKEEPER_NODE_SUBTREE`: paths under it are left out of the digest.
pub const ZOOKEEPER_NODE_SUBTREE: &str = "/zookeeper/";

/// A running CRC-32 (IEEE 802.3, reflected, as `java.util.zip.CRC32`), computed by
/// `crc32fast` (carry-less multiplication where the CPU has it: the digest of every
/// written node is two of these, so it showed in profiles of setData).
#[derive(Debug, Clone, Default)]
pub struct Crc32(crc32fast::Hasher);

impl Crc32 {
    pub fn new() -> Crc32 {
        Crc32(crc32fast::Hasher::new())
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// `CRC32.getValue()`.
    pub fn value(&self) -> u32 {
        self.0.clone().finalize()
    }
}

/// Whether `path` is left out of the digest (`path.startsWith("/zookeeper/")`).
pub fn is_excluded(path: &str) -> bool {
    path.starts_with(ZOOKEEPER_NODE_SUBTREE)
}

/// `DigestCalculator.calculateDigest(path, data, stat)` with digests enabled: 0 for paths
/// under `/zookeeper/`, otherwise the node's CRC32 (as a non-negative long).
pub fn calculate_digest(path: &str, data: &[u8], stat: &StatPersisted) -> i64 {
    DigestPrefix::new(path, data).digest(stat)
}

/// A node's digest with the stat still to come: the CRC state after its path and data (or
/// nothing for an excluded path). With it the digest under another stat is computed without
/// the data — what the prep step needs to predict the tree digest after a txn.
#[derive(Debug, Clone)]
pub struct DigestPrefix(Option<Crc32>);

impl DigestPrefix {
    pub fn new(path: &str, data: &[u8]) -> DigestPrefix {
        DigestPrefix::from_bytes(path.as_bytes(), data)
    }

    /// [`DigestPrefix::new`] from a path's UTF-8 bytes.
    pub fn from_bytes(path: &[u8], data: &[u8]) -> DigestPrefix {
        if path.starts_with(ZOOKEEPER_NODE_SUBTREE.as_bytes()) {
            return DigestPrefix(None);
        }
        let path: &[u8] = if path == b"/" { b"" } else { path };
        let mut crc = Crc32::new();
        crc.update(path);
        crc.update(data);
        DigestPrefix(Some(crc))
    }

    /// The node's digest with `stat`.
    pub fn digest(&self, stat: &StatPersisted) -> i64 {
        let Some(mut crc) = self.0.clone() else { return 0 };
        let mut b = [0u8; 60];
        b[0..8].copy_from_slice(&stat.czxid.0.to_be_bytes());
        b[8..16].copy_from_slice(&stat.mzxid.0.to_be_bytes());
        b[16..24].copy_from_slice(&stat.pzxid.0.to_be_bytes());
        b[24..32].copy_from_slice(&stat.ctime.to_be_bytes());
        b[32..40].copy_from_slice(&stat.mtime.to_be_bytes());
        b[40..44].copy_from_slice(&stat.version.to_be_bytes());
        b[44..48].copy_from_slice(&stat.cversion.to_be_bytes());
        b[48..52].copy_from_slice(&stat.aversion.to_be_bytes());
        b[52..60].copy_from_slice(&stat.ephemeral_owner.to_be_bytes());
        crc.update(&b);
        crc.value() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::Zxid;

    #[test]
    fn crc32_check_values() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.value(), 0xCBF4_3926);
        let mut c = Crc32::new();
        c.update(b"");
        assert_eq!(c.value(), 0);
        // Same result however the input is split.
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut a = Crc32::new();
        a.update(&data);
        let mut b = Crc32::new();
        for ch in data.chunks(13) {
            b.update(ch);
        }
        assert_eq!(a.value(), b.value());
    }

    #[test]
    fn excluded_and_root_alias() {
        let s = StatPersisted::default();
        assert_eq!(calculate_digest("/zookeeper/quota", b"", &s), 0);
        assert_ne!(calculate_digest("/zookeeper", b"", &s), 0);
        assert_eq!(calculate_digest("/", b"", &s), calculate_digest("", b"", &s));
        let s2 = StatPersisted { czxid: Zxid(1), ..Default::default() };
        assert_ne!(calculate_digest("/a", b"", &s), calculate_digest("/a", b"", &s2));
    }
}
