//! Tree-level tests: fresh-tree facts observed on Apache ZooKeeper 3.8.0, every txn kind,
//! Stat evolution, watch trigger tables, Java iteration order and property tests.

use rzk_proto::txn::{CreateTxn, TxnHeader, Txn};
use rzk_proto::{Acl, OpCode, SessionId, Stat, Zxid};

use crate::*;

pub(crate) fn hdr(zxid: i64, session: i64, txn: &Txn) -> TxnHeader {
    TxnHeader { client_id: SessionId(session), cxid: 1, zxid: Zxid(zxid), time: 1000 + zxid, op: txn.op().code() }
}

pub(crate) fn create(path: &str, data: &[u8], ephemeral: bool) -> Txn {
    Txn::Create {
        txn: CreateTxn { path: path.into(), data: data.into(), acl: Acl::open_unsafe(), ephemeral, parent_cversion: -1 },
        create2: false,
    }
}

fn zero_stat(cversion: i32, aversion: i32, num_children: i32) -> Stat {
    Stat { cversion, aversion, num_children, ..Default::default() }
}

#[test]
fn fresh_tree_matches_zookeeper() {
    let t = DataTree::new();
    // Observed on ZooKeeper 3.8.0 standalone: mntr zk_znode_count 5, zk_approximate_data_size 44.
    assert_eq!(t.node_count(), 5);
    assert_eq!(t.approximate_data_size(), 44);
    assert_eq!(t.compute_approximate_data_size(), 44);
    assert_eq!(t.stat("/").unwrap(), zero_stat(-1, 0, 1));
    assert_eq!(t.stat("/zookeeper").unwrap(), zero_stat(-2, 0, 2));
    assert_eq!(t.stat("/zookeeper/quota").unwrap(), zero_stat(0, 0, 0));
    assert_eq!(t.stat("/zookeeper/config").unwrap(), zero_stat(0, -1, 0));
    assert_eq!(t.get_children("/").unwrap(), vec!["zookeeper"]);
    assert_eq!(t.get_children("/zookeeper").unwrap(), vec!["config", "quota"]);
    assert_eq!(t.get_acl("/").unwrap().0, Acl::open_unsafe());
    assert_eq!(t.get_acl("/zookeeper/config").unwrap().0, Acl::read_unsafe());
    assert_eq!(t.get("/zookeeper/config").unwrap().acl_id, 1);
    assert_eq!(t.get("/").unwrap().acl_id, -1);
    assert_eq!(t.acl_cache_size(), 1);
    assert_eq!(t.all_children_number("/"), Some(3));
    t.check_invariants().unwrap();
}

#[test]
fn create_delete_stat_evolution() {
    // The sequence probed on ZooKeeper 3.8.0 (zxid 1 was the session's createSession).
    let mut t = DataTree::new();
    let s = 0x100_0000_0000_0001;
    let c = create("/a", b"x", false);
    t.apply(&hdr(2, s, &c), &c);
    let c = create("/a/b", b"", false);
    t.apply(&hdr(3, s, &c), &c);
    let st = t.stat("/a").unwrap();
    assert_eq!((st.czxid, st.mzxid, st.cversion, st.num_children, st.pzxid), (Zxid(2), Zxid(2), 1, 1, Zxid(3)));
    let d = Txn::Delete { path: "/a/b".into() };
    let out = t.apply(&hdr(4, s, &d), &d);
    assert_eq!(out.result, TxnResult::Deleted);
    let st = t.stat("/a").unwrap();
    assert_eq!((st.cversion, st.num_children, st.pzxid), (2, 0, Zxid(4)));
    for (z, p) in [(5, "/a/c"), (6, "/a/d")] {
        let c = create(p, b"", false);
        t.apply(&hdr(z, s, &c), &c);
    }
    let st = t.stat("/a").unwrap();
    assert_eq!((st.cversion, st.num_children, st.pzxid), (4, 2, Zxid(6)));
    let root = t.stat("/").unwrap();
    assert_eq!((root.cversion, root.num_children, root.pzxid), (0, 2, Zxid(2)));
    assert_eq!(t.last_processed_zxid(), Zxid(6));
    t.check_invariants().unwrap();
    let _ = OpCode::Create;
}
