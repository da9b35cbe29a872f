//! Tree-level tests: fresh-tree facts observed on Apache ZooKeeper 3.8.0, every txn kind,
//! Stat evolution, watch trigger tables, Java iteration order and property tests.

use rzk_proto::txn::{CreateTxn, Txn, TxnHeader};
use rzk_proto::{Acl, OpCode, SessionId, Stat, Zxid};

use crate::*;

pub(crate) fn hdr(zxid: i64, session: i64, txn: &Txn) -> TxnHeader {
    TxnHeader { client_id: SessionId(session), cxid: 1, zxid: Zxid(zxid), time: 1000 + zxid, op: txn.op().code() }
}

pub(crate) fn create(path: &str, data: &[u8], ephemeral: bool) -> Txn {
    Txn::Create {
        txn: CreateTxn { path: path.into(), data: Some(data.to_vec()), acl: Acl::open_unsafe(), ephemeral, parent_cversion: -1 },
        create2: false,
    }
}

fn zero_stat(cversion: i32, aversion: i32, num_children: i32) -> Stat {
    Stat { cversion, aversion, num_children, ..Default::default() }
}

#[test]
fn config_node_is_set_as_init_config_in_zk_database_does() {
    let mut t = DataTree::new();
    let digest = t.digest();
    let size = t.approximate_data_size();
    let text = b"server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nversion=100000000";
    assert!(t.set_config_node(text, 0x1_0000_0000, 1234).is_empty());
    let s = t.stat("/zookeeper/config").unwrap();
    assert_eq!((s.version, s.mzxid.0, s.mtime, s.aversion, s.czxid.0), (-1, 0x1_0000_0000, 1234, -1, 0));
    assert_eq!(t.get("/zookeeper/config").unwrap().data, &text[..]);
    // Nothing under /zookeeper/ is in the digest; the data size counts it, as ZooKeeper's.
    assert_eq!(t.digest(), digest);
    assert_eq!(t.approximate_data_size(), size + text.len() as i64);
    t.check_invariants().unwrap();
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

// ---- watch behaviour against ZooKeeper 3.8.0 ----
//
// testdata/Watches.java ran each scenario on Apache ZooKeeper 3.8.0 and printed the events
// connection X received, in order (zk380_watches_expected.txt; DataWatchRemoved and
// PersistentWatchRemoved are produced by the Java client itself and are left out here).

use rzk_proto::client::SetWatches2;
use rzk_proto::txn::{SetDataTxn, Txn as T};
use rzk_proto::{EventType, WatcherType};

const X: WatcherId = WatcherId(1);
const Y_SESSION: i64 = 0x200_0000_0000_0001;

struct Sim {
    t: DataTree,
    zxid: i64,
    seen: Vec<String>,
}

impl Sim {
    fn new() -> Sim {
        Sim::with(TreeOptions::default())
    }
    fn with(opts: TreeOptions) -> Sim {
        Sim { t: DataTree::with_options(opts), zxid: 1, seen: Vec::new() }
    }
    fn run(&mut self, session: i64, txn: T) -> TxnResult {
        self.zxid += 1;
        let out = self.t.apply(&hdr(self.zxid, session, &txn), &txn);
        for (w, e) in out.deliveries {
            if w == X {
                let ty = EventType::from_code(e.event_type).unwrap();
                self.seen.push(format!("{ty:?}:{}", e.path));
            }
        }
        self.t.check_invariants().unwrap();
        out.result
    }
    fn mk(&mut self, p: &str) {
        let r = self.run(Y_SESSION, create(p, b"", false));
        assert!(matches!(r, TxnResult::Created { .. }), "{p}: {r:?}");
    }
    fn eph(&mut self, session: i64, p: &str) {
        let r = self.run(session, create(p, b"", true));
        assert!(matches!(r, TxnResult::Created { .. }), "{p}: {r:?}");
    }
    fn del(&mut self, p: &str) {
        assert_eq!(self.run(Y_SESSION, T::Delete { path: p.into() }), TxnResult::Deleted);
    }
    fn set(&mut self, p: &str, data: &[u8]) {
        let version = self.t.get(p).unwrap().stat.version + 1;
        let r = self.run(Y_SESSION, T::SetData(SetDataTxn { path: p.into(), data: Some(data.to_vec()), version }));
        assert!(matches!(r, TxnResult::SetData { .. }));
    }
    fn take(&mut self) -> String {
        std::mem::take(&mut self.seen).join(",")
    }
}

fn expected_watches(name: &str) -> String {
    let line = include_str!("../testdata/zk380_watches_expected.txt")
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        .unwrap();
    line.split(',').filter(|e| !e.starts_with("DataWatchRemoved") && !e.starts_with("PersistentWatchRemoved")).collect::<Vec<_>>().join(",")
}

#[test]
fn zk380_watch_scenarios() {
    let mut s = Sim::new();
    // w1: data + exists + child watch on a node and a child watch on its parent; node deleted.
    s.mk("/w1");
    s.mk("/w1/n");
    s.t.get_data("/w1/n", Some(X)).unwrap();
    s.t.stat_node("/w1/n", Some(X)).unwrap();
    s.t.get_children_watch("/w1/n", Some(X)).unwrap();
    s.t.get_children_watch("/w1", Some(X)).unwrap();
    s.del("/w1/n");
    assert_eq!(s.take(), expected_watches("w1"));

    // w2: persistent recursive.
    s.mk("/w2");
    s.t.add_watch("/w2", WatchKind::PersistentRecursive, X);
    s.mk("/w2/a");
    s.set("/w2/a", b"1");
    s.mk("/w2/a/b");
    s.del("/w2/a/b");
    s.del("/w2/a");
    s.set("/w2", b"1");
    assert_eq!(s.take(), expected_watches("w2"));

    // w3: persistent.
    s.mk("/w3");
    s.t.add_watch("/w3", WatchKind::Persistent, X);
    s.mk("/w3/a");
    s.set("/w3", b"1");
    s.set("/w3/a", b"1");
    s.del("/w3/a");
    s.del("/w3");
    s.mk("/w3");
    s.set("/w3", b"22");
    assert_eq!(s.take(), expected_watches("w3"));

    // w4: a one-time data watch replaces the persistent mode in the data table (3.8).
    s.mk("/w4");
    s.t.add_watch("/w4", WatchKind::Persistent, X);
    s.t.get_data("/w4", Some(X)).unwrap();
    s.set("/w4", b"1");
    s.set("/w4", b"22");
    s.mk("/w4/c");
    s.mk("/w4/d");
    assert_eq!(s.take(), expected_watches("w4"));

    // w6: a multi's events in member order.
    s.mk("/w6");
    s.mk("/w6/a");
    s.mk("/w6/b");
    s.t.get_data("/w6/a", Some(X)).unwrap();
    s.t.get_data("/w6/b", Some(X)).unwrap();
    s.t.get_children_watch("/w6", Some(X)).unwrap();
    assert!(s.t.stat_node("/w6/c", Some(X)).is_err());
    let multi = T::Multi(vec![
        create("/w6/c", b"", false),
        T::SetData(SetDataTxn { path: "/w6/a".into(), data: Some(vec![0]), version: 1 }),
        T::Delete { path: "/w6/b".into() },
    ]);
    let r = s.run(Y_SESSION, multi);
    assert!(matches!(&r, TxnResult::Multi(v) if v.len() == 3 && r.err() == rzk_proto::ErrorCode::Ok));
    assert_eq!(s.take(), expected_watches("w6"));

    // w9: an exists watch on a missing node fires once.
    assert!(s.t.stat_node("/w9", Some(X)).is_err());
    s.mk("/w9");
    s.del("/w9");
    assert_eq!(s.take(), expected_watches("w9"));

    // w10: recursive watch on / plus a child watch.
    s.mk("/w10");
    s.t.get_children_watch("/w10", Some(X)).unwrap();
    s.t.add_watch("/", WatchKind::PersistentRecursive, X);
    s.mk("/w10/a");
    s.del("/w10/a");
    assert!(s.t.remove_watches("/", WatcherType::Any, X));
    assert_eq!(s.take(), expected_watches("w10"));

    // w11: recursive on an ancestor plus one-time on a descendant; then a one-time watch on
    // the recursive watch's own path replaces it (3.8).
    s.mk("/w11");
    s.mk("/w11/a");
    s.t.add_watch("/w11", WatchKind::PersistentRecursive, X);
    s.t.get_data("/w11/a", Some(X)).unwrap();
    s.set("/w11/a", b"1");
    s.set("/w11/a", b"22");
    s.t.get_data("/w11", Some(X)).unwrap();
    s.set("/w11", b"1");
    s.set("/w11", b"22");
    s.mk("/w11/b");
    assert_eq!(s.take(), expected_watches("w11"));

    // w12: a session close deletes its ephemerals in the order of its set's clone.
    let e_session = 0x300_0000_0000_0007;
    s.mk("/w12");
    for i in 0..20 {
        s.eph(e_session, &format!("/w12/e{i}"));
    }
    s.t.add_watch("/w12", WatchKind::PersistentRecursive, X);
    s.t.get_children_watch("/w12", Some(X)).unwrap();
    let paths = s.t.get_ephemerals(SessionId(e_session));
    assert_eq!(s.run(e_session, T::CloseSession { paths_to_delete: paths }), TxnResult::SessionClosed);
    assert_eq!(s.take(), expected_watches("w12"));
    assert!(s.t.get_ephemerals(SessionId(e_session)).is_empty());
    assert!(!s.t.sessions_with_ephemerals().contains(&SessionId(e_session)));

    // w13: removeWatches(Data) leaves the child watch.
    s.mk("/w13");
    s.t.get_data("/w13", Some(X)).unwrap();
    s.t.get_children_watch("/w13", Some(X)).unwrap();
    assert!(s.t.remove_watches("/w13", WatcherType::Data, X));
    assert!(!s.t.remove_watches("/w13", WatcherType::Data, X));
    s.set("/w13", b"1");
    s.mk("/w13/k");
    assert_eq!(s.take(), expected_watches("w13"));
}

// ---- snapshots: ZooKeeper 3.8.0 wrote zk380_workload.snapshot at its restart after the
// workload (the tree rebuilt from zk380_workload.log). Its ACL table and node order must be
// what our replayed tree lists; loading it must give the same tree (zk380_workload_dump.txt
// is also what the server showed after a second restart that loaded this snapshot).

struct Snapshot {
    acls: Vec<(i64, Vec<Acl>)>,
    nodes: Vec<(String, Option<Vec<u8>>, i64, rzk_proto::StatPersisted)>,
    digest: (i64, i32, i64),
}

fn read_snapshot(bytes: &[u8]) -> Snapshot {
    use rzk_proto::Record;
    let mut r = rzk_proto::Reader::new(bytes);
    assert_eq!(r.read_i32().unwrap(), 0x5A4B_534E, "ZKSN magic");
    assert_eq!(r.read_i32().unwrap(), 2);
    let _dbid = r.read_i64().unwrap();
    let sessions = r.read_i32().unwrap();
    for _ in 0..sessions {
        r.read_i64().unwrap();
        r.read_i32().unwrap();
    }
    let n = r.read_i32().unwrap();
    let mut acls = Vec::new();
    for _ in 0..n {
        let id = r.read_i64().unwrap();
        let list: Vec<Acl> = r.read_vec().unwrap();
        acls.push((id, list));
    }
    let mut nodes = Vec::new();
    loop {
        let path = r.read_string().unwrap();
        if path == "/" {
            break;
        }
        let data = r.read_buffer_opt().unwrap();
        let acl = r.read_i64().unwrap();
        let stat = rzk_proto::StatPersisted::read(&mut r).unwrap();
        nodes.push((path, data, acl, stat));
    }
    // SnapStream.sealStream: checksum and "/", then the ZxidDigest (3.6+).
    let _checksum = r.read_i64().unwrap();
    assert_eq!(r.read_string().unwrap(), "/");
    let digest = (r.read_i64().unwrap(), r.read_i32().unwrap(), r.read_i64().unwrap());
    Snapshot { acls, nodes, digest }
}

fn replayed_workload() -> DataTree {
    let opts = TreeOptions { extended_types_enabled: true, ..Default::default() };
    let mut t = DataTree::with_options(opts);
    for rec in read_log(include_bytes!("../testdata/zk380_workload.log")) {
        t.apply(&rec.header, &rec.txn);
    }
    t
}

#[test]
fn snapshot_order_and_acl_table_match_zookeeper() {
    let snap = read_snapshot(include_bytes!("../testdata/zk380_workload.snapshot"));
    let t = replayed_workload();
    let mut ours = Vec::new();
    t.for_each_node_in_snapshot_order(|p, d, a, s| ours.push((p.to_string(), d.map(<[u8]>::to_vec), a, s.clone())));
    assert_eq!(ours.len(), snap.nodes.len());
    for (o, s) in ours.iter().zip(&snap.nodes) {
        assert_eq!(o, s);
    }
    let acls: Vec<(i64, Vec<Acl>)> = t.acl_cache().snapshot_entries().into_iter().map(|(i, l)| (i, l.to_vec())).collect();
    assert_eq!(acls, snap.acls);
    // The file is snapshot.d9; this one carries an empty ZxidDigest (zxid 0), which ZooKeeper
    // writes when it has not logged a digest since loading.
    assert_eq!(t.last_processed_zxid().0, 0xd9);
    assert_eq!(snap.digest, (0, 2, 0));
}

#[test]
fn loading_a_zookeeper_snapshot() {
    let snap = read_snapshot(include_bytes!("../testdata/zk380_workload.snapshot"));
    let opts = TreeOptions { extended_types_enabled: true, ..Default::default() };
    let t = DataTree::from_snapshot(opts, snap.acls.clone(), snap.nodes.clone()).unwrap();
    t.check_invariants().unwrap();
    let replayed = replayed_workload();
    assert_eq!(t.digest(), replayed.digest());
    assert_eq!(t.approximate_data_size(), replayed.compute_approximate_data_size());
    assert_eq!(t.node_count(), replayed.node_count());
    assert_eq!(t.acl_cache_size(), replayed.acl_cache_size());
    assert_eq!(t.get_ephemerals(SessionId(0)), Vec::<String>::new());
    assert_eq!(t.containers(), replayed.containers());
    assert_eq!(t.ttls(), replayed.ttls());
    let mut got = Vec::new();
    walk(&t, "/", &mut got);
    let want: Vec<&str> = include_str!("../testdata/zk380_workload_dump.txt").lines().collect();
    assert_eq!(got, want);
    // And it writes itself back the same way.
    let mut again = Vec::new();
    t.for_each_node_in_snapshot_order(|p, d, a, s| again.push((p.to_string(), d.map(<[u8]>::to_vec), a, s.clone())));
    assert_eq!(again, snap.nodes);
    assert_eq!(t.acl_cache().snapshot_entries().len(), snap.acls.len());
}

/// A session's ephemerals set is a Java `HashSet`, so its order depends on history: the live
/// set was filled in creation order, `DataTree.deserialize` refills a fresh set in snapshot
/// order. "/n0" and "/n2/n7/n25" share bucket 1 of a 16-bucket table. Observed on Apache
/// ZooKeeper 3.8.0 (`dump`): live `/n2/n7/n25, /n0`; restarted from the txn log, the same;
/// restarted from a snapshot (which lists /n0 before /n2), `/n0, /n2/n7/n25`.
#[test]
fn ephemerals_order_after_restart_follows_snapshot_order() {
    let s = 0x100_0000_0000_0007;
    let mut t = DataTree::new();
    let mut zxid = 0;
    for (path, eph) in [("/n2", false), ("/n2/n7", false), ("/n2/n7/n25", true), ("/n0", true)] {
        zxid += 1;
        let c = create(path, b"", eph);
        t.apply(&hdr(zxid, s, &c), &c);
    }
    assert_eq!(t.get_ephemerals(SessionId(s)), vec!["/n2/n7/n25", "/n0"]);
    assert_eq!(t.get_children("/").unwrap(), vec!["n0", "zookeeper", "n2"]);
    let mut nodes = Vec::new();
    t.for_each_node_in_snapshot_order(|p, d, a, st| nodes.push((p.to_string(), d.map(<[u8]>::to_vec), a, st.clone())));
    let acls = t.acl_cache().snapshot_entries().into_iter().map(|(i, l)| (i, l.to_vec())).collect();
    let l = DataTree::from_snapshot(TreeOptions::default(), acls, nodes).unwrap();
    assert_eq!(l.get_ephemerals(SessionId(s)), vec!["/n0", "/n2/n7/n25"]);
    assert_eq!(l.digest(), t.digest());
}

// ---- every txn kind, Stat evolution and apply-time errors ----

use rzk_proto::txn::{CheckVersionTxn, CreateContainerTxn, CreateTtlTxn, SetAclTxn};
use rzk_proto::ErrorCode;

fn ttl_create(path: &str, ttl: i64) -> T {
    T::CreateTtl(CreateTtlTxn { path: path.into(), data: Some(b"t".to_vec()), acl: Acl::open_unsafe(), parent_cversion: -1, ttl })
}

fn container_create(path: &str) -> T {
    T::CreateContainer(CreateContainerTxn { path: path.into(), data: Some(vec![]), acl: Acl::open_unsafe(), parent_cversion: -1 })
}

#[test]
fn create_kinds_and_owner_encodings() {
    let mut s = Sim::with(TreeOptions { extended_types_enabled: true, ..Default::default() });
    let sess = 0x100_0000_0000_00aa;
    // create2 returns the stat; ephemeral owner is the header's session.
    let c2 = T::Create {
        txn: CreateTxn { path: "/e".into(), data: Some(b"abc".to_vec()), acl: Acl::open_unsafe(), ephemeral: true, parent_cversion: -1 },
        create2: true,
    };
    let r = s.run(sess, c2);
    let TxnResult::Created { path, stat } = r else { panic!("{r:?}") };
    assert_eq!(path, "/e");
    assert_eq!(stat.ephemeral_owner, sess);
    assert_eq!((stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime), (Zxid(2), Zxid(2), Zxid(2), 1002, 1002));
    assert_eq!((stat.version, stat.cversion, stat.aversion, stat.data_length, stat.num_children), (0, 0, 0, 3, 0));
    assert_eq!(s.t.get_ephemerals(SessionId(sess)), vec!["/e"]);
    assert_eq!(s.t.sessions_with_ephemerals(), vec![SessionId(sess)]);

    // Containers: owner Long.MIN_VALUE stored, 0 shown.
    let TxnResult::Created { stat, .. } = s.run(sess, container_create("/c")) else { panic!() };
    assert_eq!(stat.ephemeral_owner, 0);
    assert_eq!(s.t.get("/c").unwrap().stat.ephemeral_owner, i64::MIN);
    assert_eq!(s.t.get("/c").unwrap().ephemeral_type, EphemeralType::Container);
    assert_eq!(s.t.containers(), vec!["/c"]);

    // TTL: 0xFF << 56 | ttl stored, 0 shown, listed with its ttl.
    let TxnResult::Created { stat, .. } = s.run(sess, ttl_create("/t", 5000)) else { panic!() };
    assert_eq!(stat.ephemeral_owner, 0);
    assert_eq!(s.t.get("/t").unwrap().stat.ephemeral_owner, 0xff00_0000_0000_1388_u64 as i64);
    assert_eq!(s.t.ttls(), vec![("/t".to_string(), 5000)]);
    assert_eq!(s.run(sess, ttl_create("/t2", 0)), TxnResult::Error(ErrorCode::BadArguments));
    assert!(!s.t.contains("/t2"));
    // None of them is an ephemeral of the session.
    assert_eq!(s.t.get_ephemerals(SessionId(sess)), vec!["/e"]);
    assert_eq!(s.t.ephemerals_count(), 1);

    // Container candidates: an empty container that never had a child is kept unless the
    // never-used interval is set; an expired TTL node is a candidate.
    let now = 1_000_000;
    assert_eq!(s.t.container_candidates(now, 0), vec!["/t"]);
    let mut both = s.t.container_candidates(now, 10);
    both.sort();
    assert_eq!(both, vec!["/c", "/t"]);
    s.run(sess, create("/c/x", b"", false));
    assert_eq!(s.t.container_candidates(now, 0), vec!["/t"]);
    assert_eq!(s.run(sess, T::Delete { path: "/c/x".into() }), TxnResult::Deleted);
    let mut cands = s.t.container_candidates(now, 0);
    cands.sort();
    assert_eq!(cands, vec!["/c", "/t"]);
    assert_eq!(s.run(0, T::DeleteContainer { path: "/c".into() }), TxnResult::Deleted);
    assert!(s.t.containers().is_empty());

    // Without extended types a TTL owner is just a session id (ZooKeeper's EphemeralType.get).
    let mut s2 = Sim::new();
    s2.run(sess, ttl_create("/t", 5000));
    assert_eq!(s2.t.ttls(), vec![]);
    assert_eq!(s2.t.stat("/t").unwrap().ephemeral_owner, 0xff00_0000_0000_1388_u64 as i64);
    assert_eq!(s2.t.sessions_with_ephemerals(), vec![SessionId(0xff00_0000_0000_1388_u64 as i64)]);
}

#[test]
fn parent_cversion_from_txn_and_sequence_style_numbers() {
    let mut s = Sim::new();
    s.mk("/p");
    // An explicit parent cversion (as prep computes it) wins when larger.
    let c = T::Create {
        txn: CreateTxn { path: "/p/a".into(), data: Some(vec![]), acl: Acl::open_unsafe(), ephemeral: false, parent_cversion: 7 },
        create2: false,
    };
    s.run(Y_SESSION, c);
    let p = s.t.get("/p").unwrap();
    assert_eq!((p.stat.cversion, p.stat.pzxid), (7, Zxid(s.zxid)));
    assert_eq!(s.t.stat("/p").unwrap().cversion, 13); // 7 * 2 - 1 child
                                                      // A smaller one leaves cversion and pzxid alone.
    let c = T::Create {
        txn: CreateTxn { path: "/p/b".into(), data: Some(vec![]), acl: Acl::open_unsafe(), ephemeral: false, parent_cversion: 3 },
        create2: false,
    };
    let z_before = s.zxid;
    s.run(Y_SESSION, c);
    let p = s.t.get("/p").unwrap();
    assert_eq!((p.stat.cversion, p.stat.pzxid), (7, Zxid(z_before)));
}

#[test]
fn set_data_set_acl_check_and_session_txns() {
    let mut s = Sim::new();
    s.mk("/a");
    let r = s.run(Y_SESSION, T::SetData(SetDataTxn { path: "/a".into(), data: Some(b"hello".to_vec()), version: 1 }));
    let TxnResult::SetData { stat } = r else { panic!() };
    assert_eq!((stat.version, stat.mzxid, stat.mtime, stat.data_length, stat.czxid), (1, Zxid(3), 1003, 5, Zxid(2)));
    assert_eq!(s.t.approximate_data_size(), 44 + 2 + 5);
    // setACL: aversion from the txn; ACL ids churn like ZooKeeper's cache.
    assert_eq!(s.t.get("/a").unwrap().acl_id, 2);
    let r = s.run(Y_SESSION, T::SetAcl(SetAclTxn { path: "/a".into(), acl: Acl::open_unsafe(), version: 1 }));
    let TxnResult::SetAcl { stat } = r else { panic!() };
    assert_eq!((stat.aversion, stat.mzxid), (1, Zxid(3)));
    // The only user of list 2 re-set it: the entry was dropped and re-added as 3.
    assert_eq!(s.t.get("/a").unwrap().acl_id, 3);
    assert_eq!(s.t.acl_cache_size(), 2);
    let r = s.run(Y_SESSION, T::SetAcl(SetAclTxn { path: "/a".into(), acl: Acl::read_unsafe(), version: 2 }));
    assert!(matches!(r, TxnResult::SetAcl { .. }));
    assert_eq!(s.t.get("/a").unwrap().acl_id, 1);
    assert_eq!(s.t.acl_cache_size(), 1);
    assert_eq!(s.t.acl_cache().ref_count(1), 2);
    assert_eq!(s.run(Y_SESSION, T::Check(CheckVersionTxn { path: "/a".into(), version: 2 })), TxnResult::Check);
    assert_eq!(s.run(Y_SESSION, T::CreateSession { timeout_ms: 30000 }), TxnResult::SessionCreated);
    assert_eq!(s.run(Y_SESSION, T::Error { err: -101 }), TxnResult::Error(ErrorCode::NoNode));
    assert_eq!(s.t.last_processed_zxid(), Zxid(s.zxid));
}

#[test]
fn apply_time_errors_and_their_side_effects() {
    let mut s = Sim::new();
    s.mk("/a");
    s.mk("/a/b");
    let before = s.t.get("/a").unwrap().stat;
    // Create of an existing node (op create): NodeExists, and the parent's cversion/pzxid
    // move forward via setCversionPzxid (parent_cversion -1 = current + 1).
    assert_eq!(s.run(Y_SESSION, create("/a/b", b"", false)), TxnResult::Error(ErrorCode::NodeExists));
    let after = s.t.get("/a").unwrap().stat;
    assert_eq!((after.cversion, after.pzxid), (before.cversion + 1, Zxid(s.zxid)));
    // ...but the ACL reference taken before the check stays (ZooKeeper leaks it too).
    assert_eq!(s.t.acl_cache().ref_count(2), 3);
    // create2 of an existing node: NodeExists without touching the parent.
    let c2 = T::Create {
        txn: CreateTxn { path: "/a/b".into(), data: Some(vec![]), acl: Acl::open_unsafe(), ephemeral: false, parent_cversion: -1 },
        create2: true,
    };
    let st = s.t.get("/a").unwrap().stat;
    assert_eq!(s.run(Y_SESSION, c2), TxnResult::Error(ErrorCode::NodeExists));
    assert_eq!(s.t.get("/a").unwrap().stat, st);
    // Missing parent.
    assert_eq!(s.run(Y_SESSION, create("/x/y", b"", false)), TxnResult::Error(ErrorCode::NoNode));
    // Delete of a missing child: NoNode, yet the parent's pzxid moved (ZooKeeper deleteNode).
    assert_eq!(s.run(Y_SESSION, T::Delete { path: "/a/zz".into() }), TxnResult::Error(ErrorCode::NoNode));
    assert_eq!(s.t.get("/a").unwrap().stat.pzxid, Zxid(s.zxid));
    assert_eq!(s.run(Y_SESSION, T::Delete { path: "/q/zz".into() }), TxnResult::Error(ErrorCode::NoNode));
    // Refused outright: non-empty node, root.
    assert_eq!(s.run(Y_SESSION, T::Delete { path: "/a".into() }), TxnResult::Error(ErrorCode::NotEmpty));
    assert_eq!(s.run(Y_SESSION, T::Delete { path: "/".into() }), TxnResult::Error(ErrorCode::BadArguments));
    assert_eq!(
        s.run(Y_SESSION, T::SetData(SetDataTxn { path: "/nope".into(), data: Some(vec![]), version: 1 })),
        TxnResult::Error(ErrorCode::NoNode)
    );
    assert_eq!(
        s.run(Y_SESSION, T::SetAcl(SetAclTxn { path: "/nope".into(), acl: vec![], version: 1 })),
        TxnResult::Error(ErrorCode::NoNode)
    );
    s.t.check_invariants().unwrap();
}

#[test]
fn multi_success_failure_and_invalid_members() {
    let mut s = Sim::new();
    s.mk("/m");
    let ok = T::Multi(vec![
        create("/m/a", b"1", false),
        T::Check(CheckVersionTxn { path: "/m/a".into(), version: 0 }),
        T::SetData(SetDataTxn { path: "/m/a".into(), data: Some(b"22".to_vec()), version: 1 }),
        T::Delete { path: "/m/a".into() },
        create("/m/b", b"", false),
    ]);
    let r = s.run(Y_SESSION, ok);
    let TxnResult::Multi(rs) = &r else { panic!() };
    assert!(matches!(rs[0], TxnResult::Created { .. }));
    assert_eq!(rs[1], TxnResult::Check);
    assert!(matches!(rs[2], TxnResult::SetData { .. }));
    assert_eq!(rs[3], TxnResult::Deleted);
    assert_eq!(r.err(), ErrorCode::Ok);
    // All members share the zxid.
    assert_eq!(s.t.stat("/m/b").unwrap().czxid, Zxid(s.zxid));
    assert_eq!(s.t.stat("/m").unwrap().pzxid, Zxid(s.zxid));
    // A failed multi as prep writes it: members before the failure keep their txn, the
    // failing one is an ErrorTxn, later ones ErrorTxn(RuntimeInconsistency). Nothing applies.
    let digest = s.t.digest();
    let failed = T::Multi(vec![
        create("/m/c", b"", false),
        T::Error { err: ErrorCode::BadVersion.code() },
        T::Error { err: ErrorCode::RuntimeInconsistency.code() },
    ]);
    let r = s.run(Y_SESSION, failed);
    assert_eq!(
        r,
        TxnResult::Multi(vec![
            TxnResult::Error(ErrorCode::Ok),
            TxnResult::Error(ErrorCode::BadVersion),
            TxnResult::Error(ErrorCode::RuntimeInconsistency)
        ])
    );
    assert_eq!(r.err(), ErrorCode::BadVersion);
    assert!(!s.t.contains("/m/c"));
    assert_eq!(s.t.digest(), digest);
    // A member that cannot be in a multi stops processing there (3.8 has no create2 in multi).
    let odd = T::Multi(vec![
        create("/m/d", b"", false),
        T::Create {
            txn: CreateTxn { path: "/m/e".into(), data: Some(vec![]), acl: Acl::open_unsafe(), ephemeral: false, parent_cversion: -1 },
            create2: true,
        },
        create("/m/f", b"", false),
    ]);
    let r = s.run(Y_SESSION, odd.clone());
    assert!(matches!(&r, TxnResult::Multi(v) if v.len() == 1));
    assert!(s.t.contains("/m/d") && !s.t.contains("/m/e") && !s.t.contains("/m/f"));
    // 3.9 accepts create2 members.
    let mut s9 = Sim::with(TreeOptions { flavor: Flavor::V3_9, ..Default::default() });
    s9.mk("/m");
    let r = s9.run(Y_SESSION, odd);
    assert!(matches!(&r, TxnResult::Multi(v) if v.len() == 3));
}

#[test]
fn close_session_deletes_listed_then_remaining_paths() {
    let mut s = Sim::new();
    let sess = 0x500_0000_0000_0001;
    s.mk("/s");
    for i in 0..12 {
        s.eph(sess, &format!("/s/e{i}"));
    }
    s.t.add_watch("/s", WatchKind::Persistent, X);
    // The txn lists a subset (plus a path already gone): those go first, in txn order, then
    // the rest in set order.
    let listed = vec!["/s/e5".to_string(), "/s/gone".to_string(), "/s/e1".to_string()];
    // The rest goes in the order of the session's own set (not of its clone).
    let mut rest: Vec<String> = s.t.ephemerals_by_session()[0].1.clone();
    rest.retain(|p| !listed.contains(p));
    assert_ne!(rest, {
        let mut c = s.t.get_ephemerals(SessionId(sess));
        c.retain(|p| !listed.contains(p));
        c
    });
    let r = s.run(sess, T::CloseSession { paths_to_delete: listed });
    assert_eq!(r, TxnResult::SessionClosed);
    assert_eq!(s.t.get_children("/s").unwrap(), Vec::<String>::new());
    let seen = s.take();
    let order: Vec<&str> = seen.split(',').filter_map(|e| e.strip_prefix("NodeChildrenChanged:")).collect();
    assert_eq!(order.len(), 12); // one per deletion (persistent child watch on /s)
    assert!(s.t.sessions_with_ephemerals().is_empty());
    // The deletes happened in the order: e5, e1, then `rest`.
    let mut s2 = Sim::new();
    s2.mk("/s");
    for i in 0..12 {
        s2.eph(sess, &format!("/s/e{i}"));
    }
    s2.t.add_watch("/s", WatchKind::PersistentRecursive, X);
    s2.run(sess, T::CloseSession { paths_to_delete: vec!["/s/e5".into(), "/s/gone".into(), "/s/e1".into()] });
    let deleted: Vec<String> = s2.take().split(',').filter_map(|e| e.strip_prefix("NodeDeleted:").map(str::to_string)).collect();
    let mut want = vec!["/s/e5".to_string(), "/s/e1".to_string()];
    want.extend(rest);
    assert_eq!(deleted, want);
}

#[test]
fn ephemeral_session_entry_outlives_its_nodes_until_close() {
    let mut s = Sim::new();
    let sess = 0x600_0000_0000_0001;
    s.eph(sess, "/e");
    s.del("/e");
    // ZooKeeper keeps the (now empty) set until the session closes.
    assert_eq!(s.t.sessions_with_ephemerals(), vec![SessionId(sess)]);
    assert_eq!(s.t.get_ephemerals(SessionId(sess)), Vec::<String>::new());
    s.run(sess, T::CloseSession { paths_to_delete: vec![] });
    assert!(s.t.sessions_with_ephemerals().is_empty());
}

#[test]
fn quota_stats_follow_changes() {
    let mut s = Sim::new();
    s.mk("/q");
    s.run(Y_SESSION, create("/q/a", b"12345", false));
    s.mk("/zookeeper/quota/q");
    s.run(Y_SESSION, create("/zookeeper/quota/q/zookeeper_limits", b"count=10,bytes=-1", false));
    s.run(Y_SESSION, create("/zookeeper/quota/q/zookeeper_stats", b"count=0,bytes=0", false));
    let stats = || String::from_utf8(s_data(&s.t, "/zookeeper/quota/q/zookeeper_stats")).unwrap();
    fn s_data(t: &DataTree, p: &str) -> Vec<u8> {
        t.get(p).unwrap().data.to_vec()
    }
    assert_eq!(stats(), "count=2,bytes=5");
    s.run(Y_SESSION, create("/q/a/b", b"xy", false));
    assert_eq!(String::from_utf8(s_data(&s.t, "/zookeeper/quota/q/zookeeper_stats")).unwrap(), "count=3,bytes=7");
    s.set("/q/a", b"1");
    assert_eq!(String::from_utf8(s_data(&s.t, "/zookeeper/quota/q/zookeeper_stats")).unwrap(), "count=3,bytes=3");
    s.del("/q/a/b");
    assert_eq!(String::from_utf8(s_data(&s.t, "/zookeeper/quota/q/zookeeper_stats")).unwrap(), "count=2,bytes=1");
    assert_eq!(s.t.max_prefix_with_quota("/q/zz"), Some("/q".to_string()));
    s.del("/zookeeper/quota/q/zookeeper_limits");
    assert_eq!(s.t.max_prefix_with_quota("/q/zz"), None);
}

#[test]
fn set_watches_after_reconnect() {
    let mut s = Sim::new();
    s.mk("/a");
    s.mk("/b");
    s.mk("/c");
    let rel = Zxid(s.zxid);
    s.set("/a", b"1");
    s.mk("/c/x");
    let w = SetWatches2 {
        relative_zxid: rel,
        data_watches: vec!["/a".into(), "/b".into(), "/gone".into()],
        exist_watches: vec!["/b".into(), "/nothere".into()],
        child_watches: vec!["/c".into(), "/b".into(), "/gone2".into()],
        persistent_watches: vec!["/p".into()],
        persistent_recursive_watches: vec!["/r".into()],
    };
    let out = s.t.set_watches(rel, &w, X);
    let got: Vec<String> = out.iter().map(|(_, e)| format!("{:?}:{}", EventType::from_code(e.event_type).unwrap(), e.path)).collect();
    assert_eq!(got, vec!["NodeDataChanged:/a", "NodeDeleted:/gone", "NodeCreated:/b", "NodeChildrenChanged:/c", "NodeDeleted:/gone2"]);
    assert!(out.iter().all(|(w, e)| *w == X && e.state == 3));
    // Registered: data /b, exist /nothere, child /b, persistent /p, recursive /r.
    let mut paths = s.t.watches_by_watcher()[0].1.clone();
    paths.sort();
    assert_eq!(paths, vec!["/b", "/nothere", "/p", "/r"]);
    s.mk("/nothere");
    s.mk("/r");
    s.mk("/r/deep");
    s.mk("/b/k");
    assert_eq!(s.take(), "NodeCreated:/nothere,NodeCreated:/r,NodeCreated:/r/deep,NodeChildrenChanged:/b");
}

#[test]
fn watch_counts_and_listings() {
    let mut s = Sim::new();
    s.mk("/a");
    let y = WatcherId(2);
    s.t.get_data("/a", Some(X)).unwrap();
    s.t.stat_node("/zz", Some(X)).unwrap_err();
    s.t.get_children_watch("/a", Some(X)).unwrap();
    s.t.get_data("/a", Some(y)).unwrap();
    s.t.add_watch("/a", WatchKind::Persistent, y);
    assert_eq!(s.t.watch_count(), 2 + 1 + 1 + 1); // data: /a X, /zz X, /a y; child: /a X, /a y
    assert_eq!(s.t.watch_summary(), WatchesSummary { connections: 2, paths: 2, total: 3 });
    let by_path = s.t.watches_by_path();
    assert_eq!(by_path.len(), 2);
    assert!(by_path.contains(&("/a".to_string(), vec![X, y])));
    s.set("/a", b"1");
    // X's one-time data watch fired; y's persistent one (it replaced y's one-time one) stays.
    assert_eq!(s.t.watch_summary(), WatchesSummary { connections: 2, paths: 2, total: 2 });
    // ZooKeeper keeps a watcher's (empty) entry after its last watch fired.
    s.mk("/zz");
    assert_eq!(s.t.watch_summary(), WatchesSummary { connections: 2, paths: 1, total: 1 });
    assert_eq!(s.t.watches_by_watcher(), vec![(X, vec![]), (y, vec!["/a".to_string()])]);
    s.t.remove_watcher(y);
    s.t.remove_watcher(X);
    assert_eq!(s.t.watch_count(), 0);
    assert_eq!(s.t.watch_summary(), WatchesSummary::default());
}

#[test]
fn check_watches_quirk_of_3_8() {
    let mut s = Sim::new();
    s.mk("/a");
    let y = WatcherId(2);
    s.t.get_data("/a", Some(y)).unwrap();
    // 3.8: containsWatcher only asks whether the path has a watcher at all. Observed on
    // ZooKeeper 3.8.0 with testdata/check_watches_probe.py: a connection without watches gets
    // Ok from checkWatches(Data) and (Any) when another connection has a data watch on the
    // path, NoWatcher from checkWatches(Children) and from every removeWatches, and
    // MarshallingError for watcher type 4 (the server's to produce; the tree says false).
    assert!(s.t.contains_watch("/a", WatcherType::Data, X));
    assert!(!s.t.contains_watch("/a", WatcherType::Children, X));
    assert!(s.t.contains_watch("/a", WatcherType::Any, X));
    assert!(!s.t.contains_watch("/a", WatcherType::Persistent, y));
    // removeWatches is per watcher.
    assert!(!s.t.remove_watches("/a", WatcherType::Data, X));
    assert!(s.t.remove_watches("/a", WatcherType::Any, y));
    assert!(!s.t.contains_watch("/a", WatcherType::Data, y));
}

#[test]
fn flavor_3_9_keeps_modes_apart() {
    let mut s = Sim::with(TreeOptions { flavor: Flavor::V3_9, ..Default::default() });
    let y = WatcherId(2);
    s.mk("/w4");
    s.t.add_watch("/w4", WatchKind::Persistent, X);
    s.t.get_data("/w4", Some(X)).unwrap();
    s.set("/w4", b"1");
    s.set("/w4", b"22");
    s.mk("/w4/c");
    // The one-time watch fires once, the persistent one keeps firing.
    assert_eq!(s.take(), "NodeDataChanged:/w4,NodeDataChanged:/w4,NodeChildrenChanged:/w4");
    s.mk("/w11");
    s.t.add_watch("/w11", WatchKind::PersistentRecursive, X);
    s.t.get_data("/w11", Some(X)).unwrap();
    s.set("/w11", b"1");
    s.set("/w11", b"22");
    s.mk("/w11/b");
    assert_eq!(s.take(), "NodeDataChanged:/w11,NodeDataChanged:/w11,NodeCreated:/w11/b");
    // Recursive watches live in the data table only.
    assert!(!s.t.child_watches().has_watcher(X) || s.t.child_watches().modes("/w11", X).is_empty());
    // checkWatches / removeWatches by mode, per watcher.
    s.t.get_data("/w11", Some(y)).unwrap();
    assert!(!s.t.contains_watch("/w11", WatcherType::Data, X));
    assert!(s.t.contains_watch("/w11", WatcherType::PersistentRecursive, X));
    assert!(s.t.contains_watch("/w11", WatcherType::Data, y));
    assert!(s.t.contains_watch("/w4", WatcherType::Persistent, X));
    assert!(!s.t.remove_watches("/w11", WatcherType::Data, X));
    assert!(s.t.remove_watches("/w4", WatcherType::Persistent, X));
    assert!(!s.t.contains_watch("/w4", WatcherType::Any, X));
    assert!(s.t.remove_watches("/w11", WatcherType::PersistentRecursive, X));
    s.mk("/w11/c");
    assert_eq!(s.take(), "");
    // A create of an existing node replaces its ACL in 3.9.
    let c = T::Create {
        txn: CreateTxn { path: "/w4".into(), data: Some(vec![]), acl: Acl::read_unsafe(), ephemeral: false, parent_cversion: -1 },
        create2: false,
    };
    assert_eq!(s.run(Y_SESSION, c), TxnResult::Error(ErrorCode::NodeExists));
    assert_eq!(&*s.t.get("/w4").unwrap().acl, &Acl::read_unsafe()[..]);
}

#[test]
fn root_children_events_and_all_children_number() {
    let mut s = Sim::new();
    s.t.get_children_watch("/", Some(X)).unwrap();
    s.mk("/a");
    s.mk("/a/b");
    s.mk("/a/b/c");
    assert_eq!(s.take(), "NodeChildrenChanged:/");
    assert_eq!(s.t.all_children_number("/"), Some(6));
    assert_eq!(s.t.all_children_number("/a"), Some(2));
    assert_eq!(s.t.all_children_number("/zookeeper"), Some(2));
    assert_eq!(s.t.all_children_number("/nope"), None);
    assert_eq!(s.t.node_count(), 8);
}

// ---- property tests ----

mod props {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashSet};

    const PATHS: &[&str] = &["/a", "/b", "/a/x", "/a/y", "/a/x/1", "/b/z", "/c", "/a/y/2", "/zookeeper/q"];
    const SESSIONS: &[i64] = &[0x11, 0x22, 0x33];

    #[derive(Debug, Clone)]
    enum Op {
        Create { path: usize, data: Option<Vec<u8>>, eph: Option<usize>, kind: u8, pcv: i32 },
        Delete(usize),
        SetData(usize, Option<Vec<u8>>),
        SetAcl(usize, bool),
        Close(usize),
        Multi(Vec<(usize, bool)>),
        Watch(usize, u8, u64),
        Unwatch(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let p = 0..PATHS.len();
        prop_oneof![
            4 => (p.clone(), proptest::option::weighted(0.8, proptest::collection::vec(any::<u8>(), 0..6)), proptest::option::of(0..SESSIONS.len()), 0u8..3, prop_oneof![Just(-1), 0i32..20])
                .prop_map(|(path, data, eph, kind, pcv)| Op::Create { path, data, eph, kind, pcv }),
            2 => p.clone().prop_map(Op::Delete),
            2 => (p.clone(), proptest::option::weighted(0.8, proptest::collection::vec(any::<u8>(), 0..6))).prop_map(|(a, d)| Op::SetData(a, d)),
            1 => (p.clone(), any::<bool>()).prop_map(|(a, b)| Op::SetAcl(a, b)),
            1 => (0..SESSIONS.len()).prop_map(Op::Close),
            1 => proptest::collection::vec((p.clone(), any::<bool>()), 1..4).prop_map(Op::Multi),
            2 => (p.clone(), 0u8..5, 1u64..4).prop_map(|(a, k, w)| Op::Watch(a, k, w)),
            1 => (1u64..4).prop_map(Op::Unwatch),
        ]
    }

    fn parent(p: &str) -> &str {
        match p.rfind('/') {
            Some(0) => "/",
            Some(i) => &p[..i],
            None => "/",
        }
    }

    /// A plain model: path → (data, owner).
    type Model = BTreeMap<String, (Option<Vec<u8>>, i64)>;

    fn model_new() -> Model {
        let mut m = Model::new();
        for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            m.insert(p.into(), (Some(vec![]), 0));
        }
        m
    }

    fn has_children(m: &Model, p: &str) -> bool {
        m.keys().any(|k| k != p && parent(k) == p && k.len() > 1)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_txns_keep_invariants(ops in proptest::collection::vec(op(), 1..60), flavor_39 in any::<bool>()) {
            let flavor = if flavor_39 { Flavor::V3_9 } else { Flavor::V3_8 };
            let opts = TreeOptions { extended_types_enabled: true, flavor, ..Default::default() };
            let mut t = DataTree::with_options(opts);
            let mut m = model_new();
            let mut zxid = 1i64;
            for o in ops {
                zxid += 1;
                let (session, txn) = match &o {
                    Op::Create { path, data, eph, kind, pcv } => {
                        let p = PATHS[*path].to_string();
                        let s = eph.map_or(0x99, |i| SESSIONS[i]);
                        let txn = match kind {
                            1 => T::CreateContainer(CreateContainerTxn { path: p, data: data.clone(), acl: Acl::open_unsafe(), parent_cversion: *pcv }),
                            2 => T::CreateTtl(CreateTtlTxn { path: p, data: data.clone(), acl: Acl::read_unsafe(), parent_cversion: *pcv, ttl: 100 }),
                            _ => T::Create { txn: CreateTxn { path: p, data: data.clone(), acl: Acl::open_unsafe(), ephemeral: eph.is_some(), parent_cversion: *pcv }, create2: *pcv % 2 == 0 },
                        };
                        (s, txn)
                    }
                    Op::Delete(a) => (0x99, T::Delete { path: PATHS[*a].into() }),
                    Op::SetData(a, d) => (0x99, T::SetData(SetDataTxn { path: PATHS[*a].into(), data: d.clone(), version: 3 })),
                    Op::SetAcl(a, open) => (0x99, T::SetAcl(SetAclTxn { path: PATHS[*a].into(), acl: if *open { Acl::open_unsafe() } else { Acl::creator_all() }, version: 2 })),
                    Op::Close(i) => {
                        let s = SESSIONS[*i];
                        (s, T::CloseSession { paths_to_delete: t.get_ephemerals(SessionId(s)) })
                    }
                    Op::Multi(ms) => (0x99, T::Multi(ms.iter().map(|(a, c)| if *c { create(PATHS[*a], b"m", false) } else { T::Delete { path: PATHS[*a].into() } }).collect())),
                    Op::Watch(a, k, w) => {
                        let kind = [WatchKind::Data, WatchKind::Exist, WatchKind::Child, WatchKind::Persistent, WatchKind::PersistentRecursive][*k as usize];
                        t.add_watch(PATHS[*a], kind, WatcherId(*w));
                        continue;
                    }
                    Op::Unwatch(w) => {
                        t.remove_watcher(WatcherId(*w));
                        continue;
                    }
                };
                // Prep never lets a node be created under an ephemeral (NoChildrenForEphemerals).
                let creates: Vec<&str> = match &txn {
                    T::Create { txn: c, .. } => vec![c.path.as_str()],
                    T::CreateContainer(c) => vec![c.path.as_str()],
                    T::CreateTtl(c) => vec![c.path.as_str()],
                    T::Multi(ms) => ms.iter().filter_map(|m| if let T::Create { txn: c, .. } = m { Some(c.path.as_str()) } else { None }).collect(),
                    _ => vec![],
                };
                if creates.iter().any(|p| t.get(parent(p)).is_some_and(|n| n.ephemeral_type == EphemeralType::Normal) || m.get(parent(p)).is_some_and(|v| v.1 != 0 && v.1 != i64::MIN && v.1 >> 56 != -1)) {
                    continue;
                }
                let before = t.clone();
                let out = t.apply(&hdr(zxid, session, &txn), &txn);
                // Model: what should exist afterwards.
                let apply_model = |m: &mut Model, txn: &T| -> bool {
                    match txn {
                        T::Create { txn: c, .. } => {
                            let ok = m.contains_key(parent(&c.path)) && !m.contains_key(&c.path);
                            if ok { m.insert(c.path.clone(), (c.data.clone(), if c.ephemeral { session } else { 0 })); }
                            ok
                        }
                        T::CreateContainer(c) => {
                            let ok = m.contains_key(parent(&c.path)) && !m.contains_key(&c.path);
                            if ok { m.insert(c.path.clone(), (c.data.clone(), i64::MIN)); }
                            ok
                        }
                        T::CreateTtl(c) => {
                            let ok = m.contains_key(parent(&c.path)) && !m.contains_key(&c.path);
                            if ok { m.insert(c.path.clone(), (c.data.clone(), EphemeralType::ttl_to_owner(c.ttl).unwrap())); }
                            ok
                        }
                        T::Delete { path } => {
                            let ok = m.contains_key(path) && !has_children(m, path);
                            if ok { m.remove(path); }
                            ok
                        }
                        T::SetData(sd) => {
                            let ok = m.contains_key(&sd.path);
                            if ok { m.get_mut(&sd.path).unwrap().0 = sd.data.clone(); }
                            ok
                        }
                        T::SetAcl(sa) => m.contains_key(&sa.path),
                        T::CloseSession { .. } => {
                            let dead: Vec<String> = m.iter().filter(|(_, v)| v.1 == session).map(|(k, _)| k.clone()).collect();
                            for k in dead { m.remove(&k); }
                            true
                        }
                        _ => true,
                    }
                };
                match &txn {
                    T::Multi(members) => {
                        // Members apply one by one; a failing one fails alone (no prep here).
                        let TxnResult::Multi(rs) = &out.result else { panic!("{:?}", out.result) };
                        prop_assert_eq!(rs.len(), members.len());
                        for (mem, r) in members.iter().zip(rs) {
                            let ok = apply_model(&mut m, mem);
                            prop_assert_eq!(ok, r.err() == ErrorCode::Ok, "{:?} -> {:?}", mem, r);
                        }
                    }
                    _ => {
                        let ok = apply_model(&mut m, &txn);
                        prop_assert_eq!(ok, out.result.err() == ErrorCode::Ok, "{:?} -> {:?}", txn, out.result);
                    }
                }
                if out.result.err() != ErrorCode::Ok && !matches!(txn, T::Multi(_) | T::Create { .. } | T::Delete { .. }) {
                    // Failed non-create/delete txns change nothing at all.
                    prop_assert_eq!(t.digest(), before.digest());
                }
                t.check_invariants().map_err(TestCaseError::fail)?;
                prop_assert_eq!(t.last_processed_zxid(), Zxid(zxid));
                // Same nodes and data as the model.
                for (p, (d, owner)) in &m {
                    let n = t.get(p);
                    prop_assert!(n.is_some(), "{} missing", p);
                    let n = n.unwrap();
                    prop_assert_eq!(n.data_opt(), d.as_deref());
                    prop_assert_eq!(n.stat.ephemeral_owner, *owner);
                }
                prop_assert_eq!(t.node_count(), m.len() + 1);
                // Per node: numChildren matches the children list, cversion is v3 (creates*2 -
                // live children), and a change to the children moved pzxid to this zxid.
                for p in m.keys() {
                    let st = t.stat(p).unwrap();
                    let kids = t.get_children(p).unwrap();
                    prop_assert_eq!(st.num_children as usize, kids.len());
                    let raw = t.get(p).unwrap().stat;
                    prop_assert_eq!(st.cversion, raw.cversion * 2 - st.num_children);
                    if let Some(b) = before.get(p) {
                        if b.stat.cversion != raw.cversion {
                            prop_assert_eq!(raw.pzxid, Zxid(zxid), "cversion moved without pzxid on {}", p);
                        }
                    }
                }
                prop_assert_eq!(t.approximate_data_size(), t.compute_approximate_data_size());
            }
            // Snapshot round trip.
            let mut nodes = Vec::new();
            t.for_each_node_in_snapshot_order(|p, d, a, s| nodes.push((p.to_string(), d.map(<[u8]>::to_vec), a, s.clone())));
            let acls = t.acl_cache().snapshot_entries().into_iter().map(|(i, l)| (i, l.to_vec())).collect();
            let l = DataTree::from_snapshot(opts, acls, nodes).unwrap();
            l.check_invariants().map_err(TestCaseError::fail)?;
            prop_assert_eq!(l.digest(), t.digest());
            prop_assert_eq!(l.node_count(), t.node_count());
            for p in m.keys() {
                prop_assert_eq!(l.stat(p), t.stat(p));
                prop_assert_eq!(l.get(p).unwrap().data_opt(), t.get(p).unwrap().data_opt());
                let mut a = l.get_children(p).unwrap();
                let mut b = t.get_children(p).unwrap();
                a.sort();
                b.sort();
                prop_assert_eq!(a, b);
            }
        }

        #[test]
        fn java_hash_set_is_a_set(ops in proptest::collection::vec((any::<bool>(), 0u16..300), 0..400), cap in 0usize..40) {
            let mut j: JavaHashSet<String> = JavaHashSet::with_capacity(cap);
            let mut h: HashSet<String> = HashSet::new();
            for (ins, k) in ops {
                let k = format!("k{k}");
                if ins {
                    prop_assert_eq!(j.insert(k.clone()), h.insert(k));
                } else {
                    prop_assert_eq!(j.remove(k.as_str()), h.remove(&k));
                }
                prop_assert_eq!(j.len(), h.len());
            }
            let items: Vec<&String> = j.iter().collect();
            prop_assert_eq!(items.len(), h.len());
            prop_assert_eq!(items.iter().map(|s| s.as_str()).collect::<HashSet<_>>(), h.iter().map(|s| s.as_str()).collect::<HashSet<_>>());
            let c = j.java_clone();
            prop_assert_eq!(c.len(), j.len());
            for k in &h {
                prop_assert!(c.contains(k.as_str()));
            }
        }
    }
}

// ---- ContainerManager order: testdata/Containers.java ran on ZooKeeper 3.8.0 with
// -Dznode.container.checkIntervalMs=2000 (40 containers, 34 emptied, 8 TTL nodes with a 1 ms
// TTL); zk380_containers.log holds the deleteContainer txns ZooKeeper's ContainerManager
// issued, in its candidate set's order.

#[test]
fn container_manager_candidates_in_zookeeper_order() {
    let log = read_log(include_bytes!("../testdata/zk380_containers.log"));
    let opts = TreeOptions { extended_types_enabled: true, ..Default::default() };
    let mut t = DataTree::with_options(opts);
    let mut i = 0;
    let mut passes = 0;
    let mut deleted = 0;
    while i < log.len() {
        if let T::DeleteContainer { .. } = log[i].txn {
            // One pass: consecutive deleteContainer txns less than a second apart.
            let mut pass = Vec::new();
            let start_time = log[i].header.time;
            while i < log.len() {
                let T::DeleteContainer { path } = &log[i].txn else { break };
                if log[i].header.time - start_time > 1000 {
                    break;
                }
                pass.push(path.clone());
                i += 1;
            }
            assert_eq!(t.container_candidates(start_time, 0), pass, "pass at {start_time}");
            for rec in &log[i - pass.len()..i] {
                assert_eq!(t.apply(&rec.header, &rec.txn).result, TxnResult::Deleted);
            }
            passes += 1;
            deleted += pass.len();
            continue;
        }
        t.apply(&log[i].header, &log[i].txn);
        i += 1;
    }
    assert!(passes >= 1);
    assert_eq!(deleted, 34 + 8);
    assert_eq!(t.get_children("/cc").unwrap().len(), 6);
    t.check_invariants().unwrap();
}

#[test]
fn deliveries_carry_the_znode_acl() {
    let mut t = DataTree::new();
    let c = T::Create {
        txn: CreateTxn { path: "/r".into(), data: None, acl: Acl::read_unsafe(), ephemeral: false, parent_cversion: -1 },
        create2: false,
    };
    t.add_watch("/r", WatchKind::Exist, X);
    t.add_watch("/", WatchKind::Child, X);
    let out = t.apply(&hdr(2, 1, &c), &c);
    assert_eq!(out.deliveries.len(), 2);
    assert_eq!(&*out.delivery_acls[0], &Acl::read_unsafe()[..]); // NodeCreated /r
    assert_eq!(&*out.delivery_acls[1], &Acl::open_unsafe()[..]); // NodeChildrenChanged / (root's)
    assert!(t.get("/r").unwrap().data_is_null);
    assert_eq!(t.stat("/r").unwrap().data_length, 0);
    t.add_watch("/r", WatchKind::Data, X);
    let d = T::Delete { path: "/r".into() };
    let out = t.apply(&hdr(3, 1, &d), &d);
    assert_eq!(out.deliveries.len(), 1);
    assert_eq!(&*out.delivery_acls[0], &Acl::read_unsafe()[..]);
}

#[test]
fn set_watches_matches_zookeeper_3_8_probe() {
    // testdata/set_watches_probe.py on ZooKeeper 3.8.0: setWatches(relativeZxid 1,
    // data [/sw/a, /sw/gone, /sw/b], exist [/sw/b, /sw/nothere], child [/sw, /sw/gone2, /sw/a])
    // produced 3:/sw/a,2:/sw/gone,3:/sw/b,1:/sw/b,4:/sw,2:/sw/gone2,4:/sw/a (then the reply).
    let mut s = Sim::new();
    s.mk("/sw");
    s.mk("/sw/a");
    s.mk("/sw/b");
    let w = SetWatches2 {
        relative_zxid: Zxid(1),
        data_watches: vec!["/sw/a".into(), "/sw/gone".into(), "/sw/b".into()],
        exist_watches: vec!["/sw/b".into(), "/sw/nothere".into()],
        child_watches: vec!["/sw".into(), "/sw/gone2".into(), "/sw/a".into()],
        persistent_watches: vec![],
        persistent_recursive_watches: vec![],
    };
    let got: Vec<String> = s.t.set_watches(Zxid(1), &w, X).iter().map(|(_, e)| format!("{}:{}", e.event_type, e.path)).collect();
    assert_eq!(got.join(","), "3:/sw/a,2:/sw/gone,3:/sw/b,1:/sw/b,4:/sw,2:/sw/gone2,4:/sw/a");
    assert_eq!(s.t.watches_by_watcher(), vec![(X, vec!["/sw/nothere".to_string()])]);
}

/// A snapshot walk's hint finds a node only while the slot still holds exactly that path:
/// a deleted node is gone even if its slot was reused, a re-created one is found by path.
#[test]
fn snapshot_hints_are_checked_against_the_path() {
    let mut t = DataTree::new();
    let mut z = 0;
    let mut apply = |t: &mut DataTree, x: Txn| {
        z += 1;
        t.apply(&hdr(z, 0, &x), &x);
    };
    apply(&mut t, create("/a", b"1", false));
    apply(&mut t, create("/a/b", b"2", false));
    let mut hints = Vec::new();
    t.snapshot_node_hinted("/a", None, |name, h| hints.push((name.to_string(), h))).unwrap();
    assert_eq!(hints.len(), 1);
    let (name, hint) = hints.pop().unwrap();
    assert_eq!(name, "b");
    let (d, _, _) = t.snapshot_node_hinted("/a/b", Some(hint), |_, _| {}).unwrap();
    assert_eq!(d, Some(&b"2"[..]));
    // The hint names some other node's slot (or none): it is not taken for /a/b.
    assert_eq!(t.snapshot_node_hinted("/a", Some(hint), |_, _| {}).map(|r| r.0), t.snapshot_node("/a", |_| {}).map(|r| r.0));
    apply(&mut t, Txn::Delete { path: "/a/b".into() });
    apply(&mut t, create("/c", b"3", false)); // likely reuses b's slot
    assert!(t.snapshot_node_hinted("/a/b", Some(hint), |_, _| {}).is_none());
    let (d, _, _) = t.snapshot_node_hinted("/c", Some(hint), |_, _| {}).unwrap();
    assert_eq!(d, Some(&b"3"[..]));
    apply(&mut t, create("/a/b", b"4", false));
    let (d, _, _) = t.snapshot_node_hinted("/a/b", Some(hint), |_, _| {}).unwrap();
    assert_eq!(d, Some(&b"4"[..]));
}

/// `logZxidDigest`: the digest after every zxid that is a multiple of 128, none while paused
/// (a fuzzy snapshot's digest waits), the newest 1024 kept; 0 with digests off.
#[test]
fn digest_log_every_128th_zxid() {
    for enabled in [true, false] {
        let mut t = DataTree::with_options(TreeOptions { digest_enabled: enabled, ..Default::default() });
        let mk = |i: i64| Txn::Create {
            txn: CreateTxn { path: format!("/n{i}"), data: None, acl: Acl::open_unsafe(), ephemeral: false, parent_cversion: i as i32 },
            create2: false,
        };
        for z in 1..=300 {
            if z == 200 {
                t.set_digest_log_paused(true);
            }
            if z == 255 {
                t.set_digest_log_paused(false);
            }
            let txn = mk(z);
            t.apply(&hdr(z, 1, &txn), &txn);
            if z == 128 {
                assert_eq!(t.digest_log().collect::<Vec<_>>(), vec![(Zxid(128), if enabled { t.digest() } else { 0 })]);
            }
        }
        let zxids: Vec<i64> = t.digest_log().map(|(z, _)| z.0).collect();
        assert_eq!(zxids, vec![128, 256]);
    }
}
