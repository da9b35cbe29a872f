//! The records of `org.apache.zookeeper.data` (Id, ACL, Stat, StatPersisted), permission bits,
//! and the newtypes rzk uses for ZooKeeper's identifiers.

#[cfg(test)]
use crate::jute::Record;
use crate::jute::{DecodeError, Field, Reader, Writer};
use crate::jute_record;

/// A transaction id: `epoch << 32 | counter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Zxid(pub i64);

impl Zxid {
    pub const ZERO: Zxid = Zxid(0);

    pub fn new(epoch: u32, counter: u32) -> Zxid {
        Zxid(((epoch as i64) << 32) | counter as i64)
    }
    pub fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub fn counter(self) -> u32 {
        self.0 as u32
    }
    /// The next zxid in the same epoch.
    pub fn next(self) -> Zxid {
        Zxid(self.0 + 1)
    }
}

impl std::fmt::Display for Zxid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A session id (ZooKeeper's `long sessionId`; the top byte is the creating server's sid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SessionId(pub i64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

macro_rules! newtype_field {
    ($t:ty) => {
        impl Field for $t {
            const MIN_BYTES: usize = 8;
            fn write_field(&self, w: &mut Writer) {
                w.write_i64(self.0)
            }
            fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self(r.read_i64()?))
            }
        }
    };
}
newtype_field!(Zxid);
newtype_field!(SessionId);

/// Permission bits of an ACL entry (`ZooDefs.Perms`).
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 1 << 1;
    pub const CREATE: i32 = 1 << 2;
    pub const DELETE: i32 = 1 << 3;
    pub const ADMIN: i32 = 1 << 4;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

jute_record! {
    /// An identity: a scheme (`world`, `auth`, `digest`, `ip`, `super`, ...) and an id in it.
    pub struct Id {
        pub scheme: String,
        pub id: String,
    }
}

jute_record! {
    /// One ACL entry: permission bits granted to an id.
    pub struct Acl {
        pub perms: i32,
        pub id: Id,
    }
}

impl Id {
    pub fn new(scheme: &str, id: &str) -> Id {
        Id { scheme: scheme.to_owned(), id: id.to_owned() }
    }
}

impl Acl {
    pub fn new(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl { perms, id: Id::new(scheme, id) }
    }
    /// `ZooDefs.Ids.OPEN_ACL_UNSAFE`: world:anyone with all permissions.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(perms::ALL, "world", "anyone")]
    }
    /// `ZooDefs.Ids.READ_ACL_UNSAFE`.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(perms::READ, "world", "anyone")]
    }
    /// `ZooDefs.Ids.CREATOR_ALL_ACL`.
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(perms::ALL, "auth", "")]
    }
}

jute_record! {
    /// The znode metadata a client sees.
    pub struct Stat {
        pub czxid: Zxid,
        pub mzxid: Zxid,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: Zxid,
    }
}

jute_record! {
    /// The znode metadata stored in snapshots (Stat without the derived fields).
    pub struct StatPersisted {
        pub czxid: Zxid,
        pub mzxid: Zxid,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub pzxid: Zxid,
    }
}

impl StatPersisted {
    /// `DataTree.createStat`: a new znode's stat at `zxid` and `time`.
    pub fn for_new_node(zxid: Zxid, time: i64, ephemeral_owner: i64) -> StatPersisted {
        StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner,
            pzxid: zxid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_68_bytes_and_round_trips() {
        let s = Stat { czxid: Zxid(1), mzxid: Zxid(2), pzxid: Zxid(3), version: 4, ..Default::default() };
        let b = s.to_bytes();
        assert_eq!(b.len(), 68);
        assert_eq!(Stat::from_bytes(&b).unwrap(), s);
        assert_eq!(<Stat as Record>::MIN_ENCODED_BYTES, 68);
    }

    #[test]
    fn zxid_parts() {
        let z = Zxid::new(3, 7);
        assert_eq!(z.0, (3i64 << 32) | 7);
        assert_eq!((z.epoch(), z.counter()), (3, 7));
        assert_eq!(z.to_string(), "0x300000007");
    }
}
