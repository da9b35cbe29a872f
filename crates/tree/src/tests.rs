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

// ---- replay of a real ZooKeeper 3.8.0 transaction log ----
//
// testdata/Workload.java ran against Apache ZooKeeper 3.8.0 (standalone, with
// -Dzookeeper.extendedTypesEnabled=true): creates of every kind, sequential and ephemeral
// nodes, a quota on /app, setData/setACL, a successful and a failed multi, a session close.
// zk380_workload.log is that server's transaction log; zk380_workload_dump.txt is
// testdata/Dump.java's walk of the final tree (stat, data, ACL, getChildren order).

fn read_log(bytes: &[u8]) -> Vec<rzk_proto::txn::TxnRecord> {
    let mut r = rzk_proto::Reader::new(bytes);
    assert_eq!(r.read_i32().unwrap(), 0x5A4B_4C47, "ZKLG magic");
    assert_eq!(r.read_i32().unwrap(), 2);
    let _dbid = r.read_i64().unwrap();
    let mut out = Vec::new();
    while r.remaining() >= 12 {
        let _crc = r.read_i64().unwrap();
        let len = r.read_i32().unwrap();
        if len <= 0 {
            break;
        }
        let mut body = vec![0u8; len as usize];
        for b in body.iter_mut() {
            *b = r.read_u8().unwrap();
        }
        assert_eq!(r.read_u8().unwrap(), b'B', "end of record");
        out.push(rzk_proto::txn::TxnRecord::from_bytes(&body).unwrap());
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn dump_line(t: &DataTree, path: &str) -> String {
    let st = t.stat(path).unwrap();
    let n = t.get(path).unwrap();
    let acl: String = n.acl.iter().map(|a| format!("{}:{}:{};", a.perms, a.id.scheme, a.id.id)).collect();
    format!(
        "{path} {} {} {} {} {} {} {} {} {} {} {} {} {} {}",
        st.czxid.0,
        st.mzxid.0,
        st.pzxid.0,
        st.ctime,
        st.mtime,
        st.version,
        st.cversion,
        st.aversion,
        st.ephemeral_owner,
        st.data_length,
        st.num_children,
        hex(n.data),
        acl,
        t.get_children(path).unwrap().join(",")
    )
}

fn walk(t: &DataTree, path: &str, out: &mut Vec<String>) {
    out.push(dump_line(t, path));
    for c in t.get_children(path).unwrap() {
        let p = if path == "/" { format!("/{c}") } else { format!("{path}/{c}") };
        walk(t, &p, out);
    }
}

#[test]
fn replays_real_zookeeper_log_with_matching_digests_and_state() {
    let log = read_log(include_bytes!("../testdata/zk380_workload.log"));
    assert!(log.len() > 100);
    let opts = TreeOptions { extended_types_enabled: true, ..Default::default() };
    let mut t = DataTree::with_options(opts);
    let mut checked = 0;
    let mut closes_checked = 0;
    for rec in &log {
        if let rzk_proto::txn::Txn::CloseSession { paths_to_delete } = &rec.txn {
            // ZooKeeper's prep listed getEphemerals(session) (a HashSet clone) in the txn.
            assert_eq!(&t.get_ephemerals(rec.header.client_id), paths_to_delete);
            closes_checked += paths_to_delete.len();
        }
        let out = t.apply(&rec.header, &rec.txn);
        if let Some(d) = &rec.digest {
            assert_eq!(d.version, 2);
            assert_eq!(t.digest(), d.tree_digest, "digest after zxid {} ({:?}) result {:?}", rec.header.zxid, rec.txn.op(), out.result);
            checked += 1;
        }
        t.check_invariants().unwrap();
    }
    assert!(checked > 100, "{checked} digests checked");
    assert_eq!(closes_checked, 34, "the ephemeral session's close listed its 34 nodes");
    let mut got = Vec::new();
    walk(&t, "/", &mut got);
    let want: Vec<&str> = include_str!("../testdata/zk380_workload_dump.txt").lines().collect();
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    assert_eq!(got.len(), want.len());
}
