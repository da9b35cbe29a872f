//! Transactions (`org.apache.zookeeper.txn`): what the leader's prep step produces, what is
//! appended to the transaction log, carried in PROPOSALs and applied to the data tree.
//!
//! A transaction is a [`TxnHeader`] plus a body whose record depends on the header's type.
//! [`Txn`] is that body as an enum; [`Txn::op`] is the type the header must carry.

use crate::codes::OpCode;
use crate::data::{Acl, SessionId, Zxid};
use crate::jute::{DecodeError, Reader, Record, Writer};
use crate::jute_record;

jute_record! {
    pub struct TxnHeader {
        pub client_id: SessionId,
        pub cxid: i32,
        pub zxid: Zxid,
        /// The leader's wall-clock time in ms when it created the txn; becomes ctime/mtime.
        pub time: i64,
        pub op: i32,
    }
}

jute_record! {
    /// The tree digest ZooKeeper 3.6+ appends to a txn (version 2 = the digest calculator in use).
    pub struct TxnDigest {
        pub version: i32,
        pub tree_digest: i64,
    }
}

jute_record! {
    pub struct CreateTxn {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub ephemeral: bool,
        pub parent_cversion: i32,
    }
}

jute_record! {
    pub struct CreateTtlTxn {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub parent_cversion: i32,
        pub ttl: i64,
    }
}

jute_record! {
    pub struct CreateContainerTxn {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub parent_cversion: i32,
    }
}

jute_record! {
    pub struct SetDataTxn {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub version: i32,
    }
}

jute_record! {
    pub struct SetAclTxn {
        pub path: String,
        pub acl: Vec<Acl>,
        pub version: i32,
    }
}

jute_record! {
    pub struct CheckVersionTxn {
        pub path: String,
        pub version: i32,
    }
}

/// A transaction body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    /// Written for both create (op 1) and create2 (op 15); `create2` says which.
    Create {
        txn: CreateTxn,
        create2: bool,
    },
    CreateTtl(CreateTtlTxn),
    CreateContainer(CreateContainerTxn),
    Delete {
        path: String,
    },
    DeleteContainer {
        path: String,
    },
    SetData(SetDataTxn),
    /// A committed reconfiguration (op 16): a SetDataTxn of `/zookeeper/config` whose data is
    /// the new configuration text, applied as a setData.
    Reconfig(SetDataTxn),
    SetAcl(SetAclTxn),
    Check(CheckVersionTxn),
    CreateSession {
        timeout_ms: i32,
    },
    /// ZooKeeper 3.6+ lists the ephemerals the close deletes.
    CloseSession {
        paths_to_delete: Vec<String>,
    },
    Error {
        err: i32,
    },
    Multi(Vec<Txn>),
}

impl Txn {
    /// About the encoded size of the body (at least it for the common txns), so the record's
    /// buffer is allocated once rather than grown.
    pub fn size_hint(&self) -> usize {
        let data = |d: &Option<Vec<u8>>| 4 + d.as_ref().map_or(0, |d| d.len());
        let acl = |a: &[Acl]| 4 + a.iter().map(|a| 12 + a.id.scheme.len() + a.id.id.len()).sum::<usize>();
        match self {
            Txn::Create { txn, .. } => 4 + txn.path.len() + data(&txn.data) + acl(&txn.acl) + 5,
            Txn::CreateTtl(t) => 4 + t.path.len() + data(&t.data) + acl(&t.acl) + 12,
            Txn::CreateContainer(t) => 4 + t.path.len() + data(&t.data) + acl(&t.acl) + 4,
            Txn::Delete { path } | Txn::DeleteContainer { path } => 4 + path.len(),
            Txn::SetData(t) | Txn::Reconfig(t) => 4 + t.path.len() + data(&t.data) + 4,
            Txn::SetAcl(t) => 4 + t.path.len() + acl(&t.acl) + 4,
            Txn::Check(t) => 4 + t.path.len() + 4,
            Txn::CreateSession { .. } | Txn::Error { .. } => 4,
            Txn::CloseSession { paths_to_delete } => 4 + paths_to_delete.iter().map(|p| 4 + p.len()).sum::<usize>(),
            Txn::Multi(txns) => 4 + txns.iter().map(|t| 12 + t.size_hint()).sum::<usize>(),
        }
    }

    /// The op code a TxnHeader (or a multi member) carries for this body.
    pub fn op(&self) -> OpCode {
        match self {
            Txn::Create { create2: false, .. } => OpCode::Create,
            Txn::Create { create2: true, .. } => OpCode::Create2,
            Txn::CreateTtl(_) => OpCode::CreateTtl,
            Txn::CreateContainer(_) => OpCode::CreateContainer,
            Txn::Delete { .. } => OpCode::Delete,
            Txn::DeleteContainer { .. } => OpCode::DeleteContainer,
            Txn::SetData(_) => OpCode::SetData,
            Txn::Reconfig(_) => OpCode::Reconfig,
            Txn::SetAcl(_) => OpCode::SetAcl,
            Txn::Check(_) => OpCode::Check,
            Txn::CreateSession { .. } => OpCode::CreateSession,
            Txn::CloseSession { .. } => OpCode::CloseSession,
            Txn::Error { .. } => OpCode::Error,
            Txn::Multi(_) => OpCode::Multi,
        }
    }

    pub fn write(&self, w: &mut Writer) {
        match self {
            Txn::Create { txn, .. } => txn.write(w),
            Txn::CreateTtl(t) => t.write(w),
            Txn::CreateContainer(t) => t.write(w),
            Txn::Delete { path } | Txn::DeleteContainer { path } => w.write_string(path),
            Txn::SetData(t) | Txn::Reconfig(t) => t.write(w),
            Txn::SetAcl(t) => t.write(w),
            Txn::Check(t) => t.write(w),
            Txn::CreateSession { timeout_ms } => w.write_i32(*timeout_ms),
            Txn::CloseSession { paths_to_delete } => w.write_vec(paths_to_delete),
            Txn::Error { err } => w.write_i32(*err),
            Txn::Multi(txns) => {
                // MultiTxn { vector<Txn { int type; buffer data; }> }
                w.write_i32(txns.len() as i32);
                for t in txns {
                    w.write_i32(t.op().code());
                    let mut inner = Writer::new();
                    t.write(&mut inner);
                    w.write_buffer(inner.as_slice());
                }
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.size_hint());
        self.write(&mut w);
        w.into_inner()
    }

    /// Decodes a body of type `op`. A closeSession body may be empty (pre-3.6 writers).
    pub fn read(op: i32, r: &mut Reader<'_>) -> Result<Txn, DecodeError> {
        let code = OpCode::from_code(op).ok_or(DecodeError::UnknownOpCode(op))?;
        use OpCode as O;
        Ok(match code {
            O::Create | O::Create2 => Txn::Create { txn: CreateTxn::read(r)?, create2: code == O::Create2 },
            O::CreateTtl => Txn::CreateTtl(CreateTtlTxn::read(r)?),
            O::CreateContainer => Txn::CreateContainer(CreateContainerTxn::read(r)?),
            O::Delete => Txn::Delete { path: r.read_string()? },
            O::DeleteContainer => Txn::DeleteContainer { path: r.read_string()? },
            O::SetData => Txn::SetData(SetDataTxn::read(r)?),
            O::Reconfig => Txn::Reconfig(SetDataTxn::read(r)?),
            O::SetAcl => Txn::SetAcl(SetAclTxn::read(r)?),
            O::Check => Txn::Check(CheckVersionTxn::read(r)?),
            O::CreateSession => Txn::CreateSession { timeout_ms: r.read_i32()? },
            O::CloseSession => {
                if r.is_empty() {
                    Txn::CloseSession { paths_to_delete: vec![] }
                } else {
                    Txn::CloseSession { paths_to_delete: r.read_vec()? }
                }
            }
            O::Error => Txn::Error { err: r.read_i32()? },
            O::Multi => {
                let n = r.read_i32()?;
                if n < 0 {
                    return Err(DecodeError::NegativeLength(n));
                }
                if (n as usize).saturating_mul(8) > r.remaining() {
                    return Err(DecodeError::Truncated { needed: n as usize * 8, remaining: r.remaining() });
                }
                let mut txns = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let t = r.read_i32()?;
                    let data = r.read_buffer()?;
                    if t == O::Multi.code() {
                        return Err(DecodeError::Invalid("nested multi txn"));
                    }
                    txns.push(Txn::read(t, &mut Reader::new(&data))?);
                }
                Txn::Multi(txns)
            }
            _ => return Err(DecodeError::UnknownOpCode(op)),
        })
    }
}

/// A header and its body: one entry of the log, one PROPOSAL's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub header: TxnHeader,
    pub txn: Txn,
    pub digest: Option<TxnDigest>,
}

impl TxnRecord {
    /// Serializes as ZooKeeper's `Util.marshallTxnEntry`: header, body, then digest if any.
    pub fn write(&self, w: &mut Writer) {
        self.header.write(w);
        self.txn.write(w);
        if let Some(d) = &self.digest {
            d.write(w);
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // The TxnHeader (32 bytes: client id 8, cxid 4, zxid 8, time 8, type 4), the body,
        // the TxnDigest (12).
        let mut w = Writer::with_capacity(32 + self.txn.size_hint() + 12);
        self.write(&mut w);
        w.into_inner()
    }

    /// Parses a serialized entry; a trailing TxnDigest is read when bytes remain.
    pub fn from_bytes(b: &[u8]) -> Result<TxnRecord, DecodeError> {
        let r = &mut Reader::new(b);
        let header = TxnHeader::read(r)?;
        let txn = Txn::read(header.op, r)?;
        let digest = if r.remaining() >= 12 { Some(TxnDigest::read(r)?) } else { None };
        Ok(TxnRecord { header, txn, digest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_txn_round_trips() {
        let t = Txn::Multi(vec![
            Txn::Create {
                txn: CreateTxn { path: "/a".into(), data: Some(vec![1]), acl: Acl::open_unsafe(), ephemeral: false, parent_cversion: 1 },
                create2: false,
            },
            Txn::Error { err: -101 },
        ]);
        let rec = TxnRecord {
            header: TxnHeader { client_id: SessionId(5), cxid: 1, zxid: Zxid(7), time: 99, op: t.op().code() },
            txn: t,
            digest: Some(TxnDigest { version: 2, tree_digest: 1234 }),
        };
        let b = rec.to_bytes();
        assert_eq!(TxnRecord::from_bytes(&b).unwrap(), rec);
    }

    #[test]
    fn size_hint_covers_the_encoding() {
        let create =
            CreateTxn { path: "/a/b".into(), data: Some(vec![1; 100]), acl: Acl::open_unsafe(), ephemeral: true, parent_cversion: 1 };
        let set = SetDataTxn { path: "/a".into(), data: None, version: 3 };
        let txns = [
            Txn::Create { txn: create.clone(), create2: true },
            Txn::CreateTtl(CreateTtlTxn { path: "/t".into(), data: Some(vec![]), acl: Acl::open_unsafe(), parent_cversion: 0, ttl: 5 }),
            Txn::Delete { path: "/a/b".into() },
            Txn::SetData(set.clone()),
            Txn::SetAcl(SetAclTxn { path: "/a".into(), acl: Acl::open_unsafe(), version: 1 }),
            Txn::Check(CheckVersionTxn { path: "/a".into(), version: 1 }),
            Txn::CreateSession { timeout_ms: 1 },
            Txn::CloseSession { paths_to_delete: vec!["/e1".into(), "/e2".into()] },
            Txn::Multi(vec![Txn::Create { txn: create, create2: false }, Txn::SetData(set), Txn::Error { err: -101 }]),
        ];
        for t in txns {
            let mut w = Writer::new();
            t.write(&mut w);
            assert!(t.size_hint() >= w.len(), "{t:?}: hint {} < {}", t.size_hint(), w.len());
        }
    }

    #[test]
    fn a_record_is_encoded_without_regrowing_its_buffer() {
        let header = TxnHeader { client_id: SessionId(i64::MAX), cxid: 7, zxid: Zxid(0x1_0000_0002), time: 1_700_000_000_000, op: 0 };
        let digest = TxnDigest { version: 2, tree_digest: 42 };
        for txn in [Txn::CreateSession { timeout_ms: 30_000 }, Txn::CloseSession { paths_to_delete: vec!["/e".into()] }] {
            let header = TxnHeader { op: txn.op().code(), ..header.clone() };
            for digest in [Some(digest.clone()), None] {
                let rec = TxnRecord { header: header.clone(), txn: txn.clone(), digest };
                let b = rec.to_bytes();
                // The hint covers header, body and digest: the first allocation held it all.
                assert!(b.capacity() <= 32 + rec.txn.size_hint() + 12, "{rec:?}: regrown to {}", b.capacity());
            }
        }
    }

    #[test]
    fn close_session_without_body() {
        let t = Txn::read(OpCode::CloseSession.code(), &mut Reader::new(&[])).unwrap();
        assert_eq!(t, Txn::CloseSession { paths_to_delete: vec![] });
    }
}
