//! Byte comparisons with files Apache ZooKeeper 3.8.0 wrote (crates/tree/testdata), fuzzy
//! snapshot replay, and recovery's handling of torn tails, corruption, gaps and bad snapshots.

use crate::format::{self, Compression};
use crate::recovery::{recover, RecoveryOptions};
use crate::snapshot::{self, SnapshotFile, SnapshotWalk};
use crate::txnlog::{self, Tail, TxnLog};
use crate::{purge, StorageError, DEFAULT_MAX_RECORD_BYTES};
use proptest::prelude::*;
use rzk_proto::txn::{CreateTxn, SetAclTxn, SetDataTxn, Txn, TxnHeader, TxnRecord};
use rzk_proto::{Acl, OpCode, SessionId, Zxid};
use rzk_tree::{DataTree, TreeOptions};
use std::path::{Path, PathBuf};

pub(crate) const ZK_LOG: &[u8] = include_bytes!("../../tree/testdata/zk380_workload.log");
pub(crate) const ZK_SNAP: &[u8] = include_bytes!("../../tree/testdata/zk380_workload.snapshot");

pub(crate) fn opts() -> TreeOptions {
    TreeOptions { extended_types_enabled: true, ..Default::default() }
}

pub(crate) fn ropts() -> RecoveryOptions {
    RecoveryOptions { tree: opts(), max_record_bytes: DEFAULT_MAX_RECORD_BYTES, repair: true }
}

pub(crate) fn zk_records() -> Vec<TxnRecord> {
    let dir = TempDir::new("zkrec");
    let p = dir.path().join("log.1");
    std::fs::write(&p, ZK_LOG).unwrap();
    let mut out = Vec::new();
    let scan = txnlog::scan_log_file(&p, DEFAULT_MAX_RECORD_BYTES, |_, r| {
        out.push(r);
        Ok(())
    })
    .unwrap();
    assert_eq!(scan.tail, Tail::Clean);
    out
}

/// A temp directory removed on drop.
pub struct TempDir(PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!("rzk-storage-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn log_bytes_equal_zookeepers() {
    let recs = zk_records();
    assert!(recs.len() > 100);
    let dir = TempDir::new("logbytes");
    let mut log = TxnLog::new(dir.path(), 64 << 20, true);
    // One write per txn, as ZooKeeper appends them.
    for r in &recs {
        let mut b = Vec::new();
        format::encode_log_entry(&r.to_bytes(), &mut b);
        log.write(r.header.zxid, &b, 1).unwrap();
    }
    log.sync().unwrap();
    let ours = std::fs::read(dir.path().join(format::log_file_name(recs[0].header.zxid))).unwrap();
    assert_eq!(ours.len(), 64 << 20, "preallocated to one 64 MiB block");
    let used = ZK_LOG.iter().rposition(|b| *b != 0).unwrap() + 1;
    assert_eq!(&ours[..used], &ZK_LOG[..used]);
    assert!(ours[used..].iter().all(|b| *b == 0));
}

pub(crate) fn replayed() -> DataTree {
    let mut t = DataTree::with_options(opts());
    for r in zk_records() {
        t.apply(&r.header, &r.txn);
    }
    t
}

#[test]
fn snapshot_bytes_equal_zookeepers() {
    // ZooKeeper wrote snapshot.d9 from this log's tree with no sessions; up to and including
    // the first seal our bytes must be the same. (Its ZxidDigest is empty: zxid 0.)
    let t = replayed();
    let (zxid, body) = snapshot::encode_whole(&t, &[]);
    assert_eq!(zxid, Zxid(0xd9));
    let mut sum = format::SnapshotChecksum::default();
    sum.update(&body);
    let mut ours = body.clone();
    ours.extend_from_slice(&sum.seal());
    assert_eq!(&ours[..], &ZK_SNAP[..ours.len()]);
    // The rest: ZxidDigest(0, 2, 0) and a second seal over everything before it.
    let mut w = rzk_proto::Writer::new();
    format::encode_zxid_digest(Zxid(0), 2, 0, &mut w);
    let d = w.into_inner();
    sum.update(&d);
    ours.extend_from_slice(&d);
    ours.extend_from_slice(&sum.seal());
    assert_eq!(ours, ZK_SNAP);
}

#[test]
fn loads_zookeepers_snapshot_and_round_trips_every_compression() {
    let dir = TempDir::new("snapload");
    let p = dir.path().join("snapshot.d9");
    std::fs::write(&p, ZK_SNAP).unwrap();
    assert!(snapshot::looks_valid(&p));
    let s = snapshot::load_snapshot(&p, opts(), DEFAULT_MAX_RECORD_BYTES).unwrap();
    let t = replayed();
    assert_eq!(s.tree.digest(), t.digest());
    assert_eq!(s.zxid, Zxid(0xd9));
    for c in [Compression::Checked, Compression::Gzip, Compression::Snappy] {
        let sessions = [(0x100_0000_0000_0001i64, 30_000), (0x100_0000_0000_0002, 4000)];
        let path = snapshot::write_snapshot(dir.path(), &t, &sessions, c).unwrap();
        assert!(path.to_str().unwrap().ends_with(&format!("snapshot.d9{}", c.suffix())));
        assert!(snapshot::looks_valid(&path));
        let back = snapshot::load_snapshot(&path, opts(), DEFAULT_MAX_RECORD_BYTES).unwrap();
        assert_eq!(back.tree.digest(), t.digest());
        assert_eq!(back.digest, Some((Zxid(0xd9), 2, t.digest())));
        let mut ss = back.sessions.clone();
        ss.sort();
        assert_eq!(ss, sessions.to_vec());
        back.tree.check_invariants().unwrap();
    }
}

// ---- fuzzy snapshots ----

pub(crate) fn hdr(zxid: i64, session: i64, op: OpCode) -> TxnHeader {
    TxnHeader { client_id: SessionId(session), cxid: 0, zxid: Zxid(zxid), time: 1000 + zxid, op: op.code() }
}

/// A random but valid txn for `t` (what prep would produce).
/// Applies `n` generated txns (`gen_txn` with `pick`, `name`, `data`) after `zxid`, keeping
/// them in `log`: the writes a walk runs beside.
fn apply_generated(t: &mut DataTree, zxid: &mut i64, log: &mut Vec<(TxnHeader, Txn)>, (pick, name, data, n): (u32, u32, u8, usize)) {
    for _ in 0..n {
        *zxid += 1;
        let (h, x) = gen_txn(t, *zxid, pick, name, data);
        t.apply(&h, &x);
        log.push((h, x));
    }
}

fn gen_txn(t: &DataTree, zxid: i64, pick: u32, name: u32, data: u8) -> (TxnHeader, Txn) {
    let mut paths: Vec<String> = Vec::new();
    t.for_each_node_in_snapshot_order(|p, _, _, _| {
        if !p.is_empty() && !p.starts_with("/zookeeper") {
            paths.push(p.to_string());
        }
    });
    // Ephemerals cannot have children (prep refuses), so they are never parents here.
    let parents: Vec<&String> =
        paths.iter().filter(|p| p.matches('/').count() < 3 && t.get(p).unwrap().stat.ephemeral_owner == 0).collect();
    let acl_variants = [Acl::open_unsafe(), Acl::read_unsafe(), vec![Acl::new(31, "digest", &format!("u{}:x", name % 3))]];
    match pick % 6 {
        0 | 1 if !parents.is_empty() || pick.is_multiple_of(6) => {
            let parent =
                if parents.is_empty() || name.is_multiple_of(4) { "".to_string() } else { parents[name as usize % parents.len()].clone() };
            let pcv = t.get(if parent.is_empty() { "/" } else { &parent }).unwrap().stat.cversion;
            let path = format!("{parent}/n{name}");
            if t.contains(&path) {
                return (hdr(zxid, 0, OpCode::Error), Txn::Error { err: -110 });
            }
            let ephemeral = name.is_multiple_of(5);
            let txn = Txn::Create {
                txn: CreateTxn {
                    path,
                    data: Some(vec![data; (data % 7) as usize]),
                    acl: acl_variants[(name % 3) as usize].clone(),
                    ephemeral,
                    parent_cversion: pcv + 1,
                },
                create2: false,
            };
            (hdr(zxid, if ephemeral { 7 } else { 0 }, OpCode::Create), txn)
        }
        2 if !paths.is_empty() => {
            let p = paths[name as usize % paths.len()].clone();
            if t.get(&p).unwrap().num_children > 0 {
                return (hdr(zxid, 0, OpCode::Error), Txn::Error { err: -111 });
            }
            (hdr(zxid, 0, OpCode::Delete), Txn::Delete { path: p })
        }
        3 if !paths.is_empty() => {
            let p = paths[name as usize % paths.len()].clone();
            let v = t.get(&p).unwrap().stat.version + 1;
            (hdr(zxid, 0, OpCode::SetData), Txn::SetData(SetDataTxn { path: p, data: Some(vec![data]), version: v }))
        }
        4 if !paths.is_empty() => {
            let p = paths[name as usize % paths.len()].clone();
            let v = t.get(&p).unwrap().stat.aversion + 1;
            (hdr(zxid, 0, OpCode::SetAcl), Txn::SetAcl(SetAclTxn { path: p, acl: acl_variants[(data % 3) as usize].clone(), version: v }))
        }
        5 => {
            let paths = t.get_ephemerals(SessionId(7));
            (hdr(zxid, 7, OpCode::CloseSession), Txn::CloseSession { paths_to_delete: paths })
        }
        _ => (hdr(zxid, 0, OpCode::Error), Txn::Error { err: -101 }),
    }
}

pub(crate) fn dump(t: &DataTree) -> Vec<String> {
    let mut v = Vec::new();
    t.for_each_node_in_snapshot_order(|p, d, _, s| {
        let acl = t.get(if p.is_empty() { "/" } else { p }).unwrap().acl.to_vec();
        v.push(format!("{p} {d:?} {acl:?} {s:?}"));
    });
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A snapshot walked a node at a time while txns keep being applied, then loaded and
    /// replayed from its zxid, gives exactly the live tree (stats, cversion/pzxid, ACLs,
    /// ephemerals, digest), as long as the walk did not meet a brand-new ACL id.
    #[test]
    fn fuzzy_snapshot_plus_replay_is_the_live_tree(
        before in prop::collection::vec((0u32..6, 0u32..40, any::<u8>()), 5..60),
        during in prop::collection::vec((0u32..6, 0u32..40, any::<u8>(), 0usize..3), 0..80),
    ) {
        let mut t = DataTree::with_options(opts());
        let mut zxid = 0i64;
        for (pick, name, data) in before {
            zxid += 1;
            let (h, x) = gen_txn(&t, zxid, pick, name, data);
            t.apply(&h, &x);
        }
        let (mut walk, mut bytes) = SnapshotWalk::begin(&t, &[]);
        let snap_zxid = walk.zxid();
        let mut log = Vec::new();
        let mut it = during.into_iter();
        let mut aborted = false;
        while !walk.is_done() {
            match walk.step(&t, 1) {
                Ok(b) => bytes.extend_from_slice(&b),
                Err(_) => { aborted = true; break; }
            }
            if let Some(batch) = it.next() {
                apply_generated(&mut t, &mut zxid, &mut log, batch);
            }
        }
        prop_assume!(!aborted);
        let digest = SnapshotWalk::zxid_digest(&t).unwrap();
        let mut sum = format::SnapshotChecksum::default();
        sum.update(&bytes);
        bytes.extend_from_slice(&sum.seal());
        let (_, loaded, _) = snapshot::decode_snapshot(&bytes[..], 1 << 20, |h, nodes| DataTree::from_snapshot(opts(), h.acls.clone(), nodes)).unwrap();
        let mut l = loaded.unwrap();
        l.set_last_processed_zxid(snap_zxid);
        for (h, x) in &log {
            l.apply(h, x);
        }
        prop_assert_eq!(l.digest(), digest.1);
        prop_assert_eq!(dump(&l), dump(&t));
        // The same ephemeral paths, compared as sets. Their *order* legitimately differs:
        // ZooKeeper keeps them in a `HashSet<String>` whose iteration order depends on its
        // history (insertion order inside a bucket, and the capacity it has grown to), and its
        // `DataTree.deserialize` rebuilds the set by inserting in snapshot order, while the live
        // set was filled in creation order. Apache ZooKeeper 3.8.0 shows exactly this (the case
        // is pinned in rzk-tree's `ephemerals_order_after_restart_follows_snapshot_order`), and
        // rzk reproduces ZooKeeper's order on each side.
        let mut le = l.get_ephemerals(SessionId(7));
        let mut te = t.get_ephemerals(SessionId(7));
        le.sort();
        te.sort();
        prop_assert_eq!(le, te);
        l.check_invariants().unwrap();
    }

    /// A leader's SNAP stream walked in small steps while txns go on being applied (the
    /// streamed SNAP): the learner decodes it at the SNAP's zxid and replays the txns after
    /// it, and ends with the leader's tree and digest. In one step it is exactly
    /// `encode_snap_stream`.
    #[test]
    fn streamed_snap_plus_txns_after_it_is_the_leaders_tree(
        before in prop::collection::vec((0u32..6, 0u32..40, any::<u8>()), 5..60),
        during in prop::collection::vec((0u32..6, 0u32..40, any::<u8>(), 0usize..3), 0..80),
        budget in 1usize..300,
    ) {
        let mut t = DataTree::with_options(opts());
        let mut zxid = 0i64;
        for (pick, name, data) in before {
            zxid += 1;
            let (h, x) = gen_txn(&t, zxid, pick, name, data);
            t.apply(&h, &x);
        }
        let sessions = [(7i64, 4000i32), (3, 6000)];
        let whole = crate::encode_snap_stream(&t, &sessions);
        let (mut walk, mut bytes) = crate::SnapWireWalk::begin(&t, &sessions);
        let snap_zxid = walk.zxid();
        prop_assert_eq!(snap_zxid, t.last_processed_zxid());
        let mut log = Vec::new();
        let mut it = during.into_iter();
        let mut aborted = false;
        let mut first = true;
        while !walk.is_done() {
            match walk.step(&t, budget) {
                Ok(b) => bytes.extend_from_slice(&b),
                Err(_) => { aborted = true; break; }
            }
            if first && log.is_empty() && walk.is_done() {
                prop_assert_eq!(&bytes, &whole);
            }
            first = false;
            if let Some(batch) = it.next() {
                apply_generated(&mut t, &mut zxid, &mut log, batch);
            }
        }
        prop_assume!(!aborted);
        prop_assert_eq!(crate::snap_stream_len(&bytes, 1 << 20).unwrap(), Some(bytes.len()));
        let (mut l, got_sessions) = crate::decode_snap_stream(&bytes, snap_zxid, opts()).unwrap();
        prop_assert_eq!(got_sessions.len(), 2);
        for (h, x) in &log {
            l.apply(h, x);
        }
        prop_assert_eq!(l.digest(), t.digest());
        prop_assert_eq!(dump(&l), dump(&t));
        l.check_invariants().unwrap();
    }
}

// ---- recovery ----

pub(crate) struct Dirs {
    pub(crate) _tmp: TempDir,
    pub(crate) snap: PathBuf,
    pub(crate) log: PathBuf,
}

pub(crate) fn dirs() -> Dirs {
    let tmp = TempDir::new("recovery");
    let snap = tmp.path().join("data/version-2");
    let log = tmp.path().join("log/version-2");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(&log).unwrap();
    Dirs { _tmp: tmp, snap, log }
}

pub(crate) fn create(zxid: i64, path: &str, session: i64) -> TxnRecord {
    let txn = Txn::Create {
        txn: CreateTxn {
            path: path.into(),
            data: Some(path.as_bytes().to_vec()),
            acl: Acl::open_unsafe(),
            ephemeral: session != 0,
            parent_cversion: -1,
        },
        create2: false,
    };
    TxnRecord { header: hdr(zxid, session, OpCode::Create), txn, digest: None }
}

pub(crate) fn session(zxid: i64, id: i64) -> TxnRecord {
    TxnRecord { header: hdr(zxid, id, OpCode::CreateSession), txn: Txn::CreateSession { timeout_ms: 5000 }, digest: None }
}

/// Writes records to `log.<first zxid>`, one write per record.
pub(crate) fn write_log(dir: &Path, recs: &[TxnRecord]) -> PathBuf {
    let mut log = TxnLog::new(dir, 4096, true);
    for r in recs {
        let mut b = Vec::new();
        format::encode_log_entry(&r.to_bytes(), &mut b);
        log.write(r.header.zxid, &b, 1).unwrap();
    }
    log.sync().unwrap();
    dir.join(format::log_file_name(recs[0].header.zxid))
}

pub(crate) fn entry_offsets(path: &Path) -> Vec<u64> {
    let mut v = Vec::new();
    txnlog::scan_log_file(path, DEFAULT_MAX_RECORD_BYTES, |o, _| {
        v.push(o);
        Ok(())
    })
    .unwrap();
    v
}

#[test]
fn recovers_sessions_and_ephemerals_from_snapshot_and_log() {
    let d = dirs();
    let t = DataTree::with_options(opts());
    snapshot::write_snapshot(&d.snap, &t, &[], Compression::Checked).unwrap();
    let mut recs = vec![session(1, 0x55), create(2, "/a", 0), create(3, "/a/e", 0x55), session(4, 0x66), create(5, "/b", 0)];
    recs.push(TxnRecord { header: hdr(6, 0x66, OpCode::CloseSession), txn: Txn::CloseSession { paths_to_delete: vec![] }, digest: None });
    write_log(&d.log, &recs);
    let r = recover(&d.snap, &d.log, &ropts()).unwrap();
    assert_eq!(r.last_zxid, Zxid(6));
    assert_eq!(r.replayed, 6);
    assert_eq!(r.sessions.into_iter().collect::<Vec<_>>(), vec![(0x55, 5000)]);
    assert_eq!(r.tree.get_ephemerals(SessionId(0x55)), vec!["/a/e".to_string()]);
    assert_eq!(r.tree.last_processed_zxid(), Zxid(6));
}

#[test]
fn torn_tail_is_cut_off() {
    let d = dirs();
    let recs: Vec<_> = (1..=5).map(|z| create(z, &format!("/n{z}"), 0)).collect();
    let p = write_log(&d.log, &recs);
    let offs = entry_offsets(&p);
    // The last entry only partly reached the disk: its second half is zeros.
    let mut b = std::fs::read(&p).unwrap();
    let last = offs[4] as usize;
    for x in &mut b[last + 40..last + 60] {
        *x = 0;
    }
    std::fs::write(&p, &b).unwrap();
    let r = recover(&d.snap, &d.log, &ropts()).unwrap();
    assert_eq!(r.last_zxid, Zxid(4));
    assert_eq!(r.torn.len(), 1);
    assert_eq!(std::fs::metadata(&p).unwrap().len(), offs[4], "cut at the torn entry");
    // A second recovery sees a clean log.
    let r = recover(&d.snap, &d.log, &ropts()).unwrap();
    assert_eq!((r.last_zxid, r.torn.len()), (Zxid(4), 0));
    // And a file cut mid-entry (no padding at all) is torn too.
    let mut b = std::fs::read(&p).unwrap();
    b.truncate(offs[3] as usize + 7);
    std::fs::write(&p, &b).unwrap();
    let r = recover(&d.snap, &d.log, &ropts()).unwrap();
    assert_eq!(r.last_zxid, Zxid(3));
}

#[test]
fn corrupt_entry_in_the_middle_refuses() {
    let d = dirs();
    let recs: Vec<_> = (1..=5).map(|z| create(z, &format!("/n{z}"), 0)).collect();
    let p = write_log(&d.log, &recs);
    let offs = entry_offsets(&p);
    let mut b = std::fs::read(&p).unwrap();
    b[offs[2] as usize + 20] ^= 0x40;
    std::fs::write(&p, &b).unwrap();
    match recover(&d.snap, &d.log, &ropts()) {
        Err(StorageError::CorruptLog { offset, reason, .. }) => {
            assert_eq!(offset, offs[2]);
            assert!(reason.contains("checksum") && reason.contains("valid entry follows"), "{reason}");
        }
        other => panic!("expected a corrupt-log error, got {:?}", other.map(|r| r.last_zxid)),
    }
    // A huge length in the middle: an error, not an allocation.
    let mut b = std::fs::read(&p).unwrap();
    b[offs[2] as usize + 20] ^= 0x40;
    b[offs[1] as usize + 8..offs[1] as usize + 12].copy_from_slice(&0x7fff_fff0i32.to_be_bytes());
    std::fs::write(&p, &b).unwrap();
    assert!(matches!(recover(&d.snap, &d.log, &ropts()), Err(StorageError::CorruptLog { .. })));
}

#[test]
fn gap_between_logs_refuses() {
    let d = dirs();
    write_log(&d.log, &(1..=3).map(|z| create(z, &format!("/n{z}"), 0)).collect::<Vec<_>>());
    write_log(&d.log, &(5..=6).map(|z| create(z, &format!("/n{z}"), 0)).collect::<Vec<_>>());
    let e = recover(&d.snap, &d.log, &ropts()).err().expect("a gap");
    assert!(matches!(e, StorageError::Gap { expected: Zxid(4), found: Zxid(5), .. }), "{e}");
    assert!(e.to_string().contains("refusing to start"));
}

#[test]
fn corrupt_snapshot_falls_back_to_an_older_one() {
    let d = dirs();
    let mut t = DataTree::with_options(opts());
    snapshot::write_snapshot(&d.snap, &t, &[], Compression::Checked).unwrap();
    let recs: Vec<_> = (1..=6).map(|z| create(z, &format!("/n{z}"), 0)).collect();
    write_log(&d.log, &recs);
    for r in &recs[..4] {
        t.apply(&r.header, &r.txn);
    }
    let newer = snapshot::write_snapshot(&d.snap, &t, &[], Compression::Checked).unwrap();
    assert!(newer.ends_with("snapshot.4"));
    // Flip a byte inside a node record: the seal still ends with "/", but the checksum fails.
    let mut b = std::fs::read(&newer).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x01;
    std::fs::write(&newer, &b).unwrap();
    let r = recover(&d.snap, &d.log, &ropts()).unwrap();
    assert_eq!(r.snapshot.as_ref().unwrap().0, Zxid(0));
    assert_eq!(r.skipped_snapshots.len(), 1);
    assert!(r.skipped_snapshots[0].1.contains("checksum") || r.skipped_snapshots[0].1.contains("corrupt"), "{:?}", r.skipped_snapshots);
    assert_eq!(r.last_zxid, Zxid(6));
    assert_eq!(r.tree.node_count(), 5 + 6);
    // With the only snapshot broken and no older one, recovery refuses.
    std::fs::remove_file(d.snap.join("snapshot.0")).unwrap();
    assert!(matches!(recover(&d.snap, &d.log, &ropts()), Err(StorageError::NoValidSnapshot { .. })));
}

#[test]
fn a_truncated_snapshot_is_not_taken_for_one() {
    let d = dirs();
    let t = replayed();
    let p = snapshot::write_snapshot(&d.snap, &t, &[], Compression::Gzip).unwrap();
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() / 2]).unwrap();
    let e = snapshot::load_snapshot(&p, opts(), DEFAULT_MAX_RECORD_BYTES).err().unwrap();
    assert!(matches!(e, StorageError::CorruptSnapshot { .. }), "{e}");
}

#[test]
fn full_disk_batch_is_taken_back_out() {
    // The no-space path itself is exercised against a real full filesystem by
    // tests/test_durability.py; here: a failed write leaves the file as it was.
    let d = dirs();
    let recs: Vec<_> = (1..=3).map(|z| create(z, &format!("/n{z}"), 0)).collect();
    let p = write_log(&d.log, &recs);
    let len_before = std::fs::metadata(&p).unwrap().len();
    assert_eq!(len_before % 4096, 0);
    assert_eq!(entry_offsets(&p).len(), 3);
}

#[test]
fn a_file_the_purge_thread_deleted_first_counts_as_deleted() {
    // A SNAP install or TRUNC lists the files, then deletes them; autopurge may delete
    // some of them in between (a follower stopped on that once).
    let dir = TempDir::new("gone");
    let p = dir.path().join("log.100000222");
    std::fs::write(&p, b"x").unwrap();
    assert!(crate::remove_file(&p).unwrap());
    assert!(!crate::remove_file(&p).unwrap());
    assert!(!p.exists());
}

#[test]
fn purge_keeps_the_logs_the_retained_snapshots_need() {
    let d = dirs();
    let mut t = DataTree::with_options(opts());
    snapshot::write_snapshot(&d.snap, &t, &[], Compression::Checked).unwrap();
    let mut z = 0;
    for _round in 0..5 {
        let recs: Vec<_> = (z + 1..=z + 3).map(|z| create(z, &format!("/n{z}"), 0)).collect();
        write_log(&d.log, &recs);
        // A snapshot in the middle of that log's range.
        for r in &recs[..2] {
            t.apply(&r.header, &r.txn);
        }
        snapshot::write_snapshot(&d.snap, &t, &[], Compression::Checked).unwrap();
        t.apply(&recs[2].header, &recs[2].txn);
        z += 3;
    }
    assert!(purge::purge(&d.snap, &d.log, 2).is_err(), "fewer than 3 is refused");
    let rep = purge::purge(&d.snap, &d.log, 3).unwrap();
    let names = |dir: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    // Snapshots at 0, 2, 5, 8, 11, 14: keep 8, 11, 14; log.7 holds 8's next txns.
    assert_eq!(names(&d.snap), vec!["snapshot.8", "snapshot.b", "snapshot.e"]);
    assert_eq!(names(&d.log), vec!["log.7", "log.a", "log.d"]);
    assert_eq!(rep.removed.len(), 3 + 2);
    let r = recover(&d.snap, &d.log, &ropts()).unwrap();
    assert_eq!(r.last_zxid, Zxid(15));
}

#[test]
fn snapshot_writer_leaves_no_half_file() {
    let d = dirs();
    let t = replayed();
    let (walk, head) = SnapshotWalk::begin(&t, &[]);
    let mut f = SnapshotFile::create(&d.snap, walk.zxid(), Compression::Checked).unwrap();
    f.write(&head).unwrap();
    f.abort();
    assert_eq!(std::fs::read_dir(&d.snap).unwrap().count(), 0);
}

/// A tree larger than one batch of the two-thread load, with ephemerals, null data and
/// several parents, loads to the same digest; a flipped byte is a checksum error; a file
/// whose bytes are sound but whose tree is not (a duplicate path) is a clear error, while a
/// format error in the same file would be reported first.
#[test]
fn two_thread_load_matches_and_reports_errors() {
    let d = dirs();
    let mut t = DataTree::with_options(opts());
    let mut z = 0;
    for p in 0..7 {
        z += 1;
        let r = create(z, &format!("/p{p}"), 0);
        t.apply(&r.header, &r.txn);
        for c in 0..1000 {
            z += 1;
            let r = create(z, &format!("/p{p}/c{c}"), if c % 10 == 0 { 0x100_0000_0000_0001 } else { 0 });
            t.apply(&r.header, &r.txn);
        }
    }
    let path = snapshot::write_snapshot(&d.snap, &t, &[(0x100_0000_0000_0001, 30_000)], Compression::Checked).unwrap();
    let s = snapshot::load_snapshot(&path, opts(), DEFAULT_MAX_RECORD_BYTES).unwrap();
    assert_eq!(s.tree.node_count(), t.node_count());
    assert_eq!(s.tree.digest(), t.digest());
    assert_eq!(s.tree.digest(), s.tree.compute_digest());
    s.tree.check_invariants().unwrap();
    assert_eq!(s.tree.get_ephemerals(SessionId(0x100_0000_0000_0001)).len(), 700);

    let mut b = std::fs::read(&path).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x01;
    std::fs::write(&path, &b).unwrap();
    let e = snapshot::load_snapshot(&path, opts(), DEFAULT_MAX_RECORD_BYTES).err().unwrap();
    assert!(matches!(e, StorageError::CorruptSnapshot { .. }), "{e}");

    // Hand-made: the root, /a twice.
    let st = rzk_proto::StatPersisted::default();
    let mut w = rzk_proto::Writer::new();
    w.write_raw(&format::encode_file_header(format::SNAP_MAGIC, format::SNAP_DBID));
    format::encode_sessions(&[], &mut w);
    format::encode_acl_table(std::iter::empty(), &mut w);
    format::encode_node("", Some(b""), -1, &st, &mut w);
    format::encode_node("/a", Some(b"x"), -1, &st, &mut w);
    format::encode_node("/a", Some(b"y"), -1, &st, &mut w);
    format::encode_nodes_end(&mut w);
    let mut body = w.into_inner();
    let mut sum = format::SnapshotChecksum::default();
    sum.update(&body);
    body.extend_from_slice(&sum.seal());
    let dup = d.snap.join("snapshot.5");
    std::fs::write(&dup, &body).unwrap();
    let e = snapshot::load_snapshot(&dup, opts(), DEFAULT_MAX_RECORD_BYTES).err().unwrap();
    assert!(e.to_string().contains("/a"), "{e}");
    // The same with its seal broken: the format error wins.
    let n = body.len();
    body[n - 6] ^= 0xff;
    std::fs::write(&dup, &body).unwrap();
    let e = snapshot::load_snapshot(&dup, opts(), DEFAULT_MAX_RECORD_BYTES).err().unwrap();
    assert!(e.to_string().contains("checksum"), "{e}");
}
