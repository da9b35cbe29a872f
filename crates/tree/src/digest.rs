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

const fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

static CRC_TABLES: [[u32; 256]; 8] = make_tables();

/// A running CRC-32 (IEEE 802.3, reflected, as `java.util.zip.CRC32`).
#[derive(Debug, Clone, Copy)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    pub fn new() -> Crc32 {
        Crc32(!0)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        let t = &CRC_TABLES;
        let mut c = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for ch in &mut chunks {
            let lo = c ^ u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]);
            let hi = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]);
            c = t[7][(lo & 0xff) as usize]
                ^ t[6][((lo >> 8) & 0xff) as usize]
                ^ t[5][((lo >> 16) & 0xff) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][(hi & 0xff) as usize]
                ^ t[2][((hi >> 8) & 0xff) as usize]
                ^ t[1][((hi >> 16) & 0xff) as usize]
                ^ t[0][(hi >> 24) as usize];
        }
        for &b in chunks.remainder() {
            c = (c >> 8) ^ t[0][((c ^ b as u32) & 0xff) as usize];
        }
        self.0 = c;
    }

    /// `CRC32.getValue()`.
    pub fn value(&self) -> u32 {
        !self.0
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
#[derive(Debug, Clone, Copy)]
pub struct DigestPrefix(Option<Crc32>);

impl DigestPrefix {
    pub fn new(path: &str, data: &[u8]) -> DigestPrefix {
        if is_excluded(path) {
            return DigestPrefix(None);
        }
        let path = if path == "/" { "" } else { path };
        let mut crc = Crc32::new();
        crc.update(path.as_bytes());
        crc.update(data);
        DigestPrefix(Some(crc))
    }

    /// The node's digest with `stat`.
    pub fn digest(&self, stat: &StatPersisted) -> i64 {
        let Some(mut crc) = self.0 else { return 0 };
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
