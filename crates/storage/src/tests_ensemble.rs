//! Ensemble storage: epoch files byte-compared with what ZooKeeper 3.8 writes, the SNAP wire
//! stream built from a ZooKeeper-written snapshot body, ensemble recovery, TRUNC and SNAP
//! installation (directly and through the ordered log worker), with restarts in between.

use crate::ensemble::{install_snapshot, recover_ensemble, truncate_after};
use crate::epoch::{self, load_epochs, parse_epoch, read_epoch, write_epoch, Epochs, ACCEPTED_EPOCH, CURRENT_EPOCH};
use crate::format::{self, Compression};
use crate::snapshot;
use crate::snapwire::{self, decode_snap_stream, encode_snap_stream, snap_stream_len, SnapStreamScanner, SIGNATURE};
use crate::tests::{create, dirs, dump, entry_offsets, opts, replayed, ropts, session, write_log, TempDir, ZK_SNAP};
use crate::txnlog;
use crate::worker::{spawn_log_worker, LogAppend, LogCommand, StorageEvent};
use crate::{StorageConfig, StorageError, DEFAULT_MAX_RECORD_BYTES};
use proptest::prelude::*;
use rzk_proto::txn::TxnRecord;
use rzk_proto::Zxid;
use rzk_tree::DataTree;
use std::path::Path;

// ---- epoch files ----

#[test]
fn epoch_files_are_what_zookeeper_writes() {
    // ZooKeeper 3.8 (QuorumPeerMain, one-member quorum, standaloneEnabled=false) wrote
    // dataDir/version-2/acceptedEpoch and currentEpoch as the single byte "1": decimal
    // text, no newline, in the snapshot directory.
    let d = TempDir::new("epoch");
    assert_eq!(read_epoch(d.path(), ACCEPTED_EPOCH).unwrap(), None);
    write_epoch(d.path(), ACCEPTED_EPOCH, 1).unwrap();
    write_epoch(d.path(), CURRENT_EPOCH, 1).unwrap();
    assert_eq!(std::fs::read(d.path().join("acceptedEpoch")).unwrap(), b"1");
    assert_eq!(std::fs::read(d.path().join("currentEpoch")).unwrap(), b"1");
    write_epoch(d.path(), CURRENT_EPOCH, u32::MAX).unwrap();
    assert_eq!(std::fs::read(d.path().join("currentEpoch")).unwrap(), b"4294967295");
    assert_eq!(read_epoch(d.path(), CURRENT_EPOCH).unwrap(), Some(u32::MAX));
    // Nothing left behind.
    let mut names: Vec<String> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["acceptedEpoch", "currentEpoch"]);
    assert!(read_epoch(d.path(), "myid").is_err());
}

#[test]
fn epoch_parsing_is_readlongfromfiles() {
    assert_eq!(parse_epoch(b"7"), Ok(7));
    assert_eq!(parse_epoch(b"7\n"), Ok(7));
    assert_eq!(parse_epoch(b"7\r\nrest"), Ok(7));
    assert_eq!(parse_epoch(b"+7"), Ok(7)); // Long.parseLong accepts a plus sign
    for bad in [&b""[..], b"\n", b" 7", b"7 ", b"x", b"-1", b"4294967296", b"99999999999999999999", b"\xff"] {
        assert!(parse_epoch(bad).is_err(), "{bad:?}");
    }
    let d = TempDir::new("epochbad");
    std::fs::write(d.path().join("currentEpoch"), b"garbage").unwrap();
    let e = read_epoch(d.path(), CURRENT_EPOCH).unwrap_err().to_string();
    assert!(e.contains("currentEpoch") && e.contains("garbage"), "{e}");
}

#[test]
fn load_epochs_follows_quorumpeer() {
    let d = TempDir::new("loadepochs");
    // Missing files: created from the last zxid's epoch.
    assert_eq!(load_epochs(d.path(), Zxid::new(3, 9)).unwrap(), Epochs { accepted: 3, current: 3 });
    assert_eq!(read_epoch(d.path(), CURRENT_EPOCH).unwrap(), Some(3));
    assert_eq!(read_epoch(d.path(), ACCEPTED_EPOCH).unwrap(), Some(3));
    // The log ahead of currentEpoch: a crash before the rename left currentEpoch.tmp.
    std::fs::write(d.path().join("currentEpoch.tmp"), b"5").unwrap();
    write_epoch(d.path(), ACCEPTED_EPOCH, 5).unwrap();
    assert_eq!(load_epochs(d.path(), Zxid::new(5, 1)).unwrap(), Epochs { accepted: 5, current: 5 });
    assert_eq!(read_epoch(d.path(), CURRENT_EPOCH).unwrap(), Some(5));
    // (Writing currentEpoch consumed the temp file, as ZooKeeper's setCurrentEpoch does.)
    assert!(!d.path().join("currentEpoch.tmp").exists());
    // Without it, an inconsistent directory.
    assert!(load_epochs(d.path(), Zxid::new(6, 1)).unwrap_err().to_string().contains("older than the last zxid"));
    // acceptedEpoch below currentEpoch.
    write_epoch(d.path(), ACCEPTED_EPOCH, 4).unwrap();
    assert!(load_epochs(d.path(), Zxid::new(5, 1)).unwrap_err().to_string().contains("less than the current epoch"));
    assert_eq!(epoch::TMP_EXTENSION, ".tmp");
}

// ---- the SNAP stream ----

/// The body ZooKeeper wrote into snapshot.d9 (after the file header, up to and including
/// the "/" terminator): SerializeUtils.serializeSnapshot, which is also what its leader
/// writes after a SNAP packet, followed there by the signature.
fn zk_snap_body() -> &'static [u8] {
    // After the nodes: seal (long + "/"), ZxidDigest (long, int, long), seal.
    let tail = 13 + 20 + 13;
    &ZK_SNAP[format::FILE_HEADER_BYTES..ZK_SNAP.len() - tail]
}

fn zk_snap_stream() -> Vec<u8> {
    let mut s = zk_snap_body().to_vec();
    s.extend_from_slice(&(SIGNATURE.len() as i32).to_be_bytes());
    s.extend_from_slice(SIGNATURE.as_bytes());
    s
}

#[test]
fn snap_stream_equals_zookeepers_serialized_database() {
    let zk = zk_snap_stream();
    assert!(zk_snap_body().ends_with(&[0, 0, 0, 1, b'/']));
    let t = replayed();
    assert_eq!(encode_snap_stream(&t, &[]), zk);
    assert_eq!(snap_stream_len(&zk, DEFAULT_MAX_RECORD_BYTES).unwrap(), Some(zk.len()));
    let (back, sessions) = decode_snap_stream(&zk, Zxid(0xd9), opts()).unwrap();
    assert!(sessions.is_empty());
    assert_eq!(back.last_processed_zxid(), Zxid(0xd9));
    assert_eq!(back.digest(), t.digest());
    assert_eq!(dump(&back), dump(&t));
    back.check_invariants().unwrap();
}

/// Bytes a real ZooKeeper 3.8.0 leader sent a learner right after a SNAP packet (zxid
/// 0x10000002c), captured on the quorum connection (testdata/capture_snap_stream.py): the
/// snapshot, then the next packets (NEWLEADER, ...).
const ZK_WIRE: &[u8] = include_bytes!("../testdata/zk380_snap_stream.bin");

#[test]
fn snap_stream_as_a_zookeeper_leader_sent_it() {
    let n = snap_stream_len(ZK_WIRE, DEFAULT_MAX_RECORD_BYTES).unwrap().expect("whole stream captured");
    assert!(n < ZK_WIRE.len());
    // What follows is the next QuorumPacket: NEWLEADER (10) with the new epoch's zxid.
    let next = &ZK_WIRE[n..];
    assert_eq!(i32::from_be_bytes(next[..4].try_into().unwrap()), 10, "NEWLEADER follows");
    assert_eq!(i64::from_be_bytes(next[4..12].try_into().unwrap()), Zxid::new(1, 0).0);
    // The same end, fed in 100-byte reads.
    let mut sc = SnapStreamScanner::new(DEFAULT_MAX_RECORD_BYTES);
    let mut end = None;
    for upto in (100..ZK_WIRE.len() + 100).step_by(100) {
        if let Some(k) = sc.scan(&ZK_WIRE[..upto.min(ZK_WIRE.len())]).unwrap() {
            end = Some(k);
            break;
        }
    }
    assert_eq!(end, Some(n));
    let (tree, sessions) = decode_snap_stream(&ZK_WIRE[..n], Zxid(0x1_0000_002c), opts()).unwrap();
    tree.check_invariants().unwrap();
    // The leader's `dump` and `srvr`: four sessions, three with an ephemeral, 42 nodes.
    assert_eq!(tree.node_count(), 42);
    let mut ids: Vec<i64> = sessions.iter().map(|s| s.0).collect();
    ids.sort();
    assert_eq!(ids, (0..4).map(|k| 0x1000087d3350000 + k).collect::<Vec<i64>>());
    for (k, path) in ["/eph0", "/eph1", "/eph2"].iter().enumerate() {
        assert_eq!(tree.get_ephemerals(rzk_proto::SessionId(0x1000087d3350001 + k as i64)), vec![path.to_string()]);
    }
    assert_eq!(tree.get("/app/n3").unwrap().data, &b"changed"[..]);
    assert!(tree.get("/app/n4").is_none());
    // And a leader built on rzk sends exactly the same bytes for that state.
    assert_eq!(encode_snap_stream(&tree, &sessions), &ZK_WIRE[..n]);
}

#[test]
fn snap_stream_round_trips_sessions_and_finds_its_end_in_any_split() {
    let mut t = replayed();
    t.set_last_processed_zxid(Zxid(0xd9));
    let sessions = [(0x100_0000_0000_0001i64, 30_000), (0x100_0000_0000_0002, 4000), (0x7fff_0000_0000_0003, 12_000)];
    let s = encode_snap_stream(&t, &sessions);
    let (back, mut got) = decode_snap_stream(&s, Zxid(0xd9), opts()).unwrap();
    got.sort();
    assert_eq!(got, sessions.to_vec());
    assert_eq!(back.digest(), t.digest());
    // The stream followed by the next packets: the end is found exactly, byte by byte.
    let mut wire = s.clone();
    wire.extend_from_slice(b"\x00\x00\x00\x1cthe next quorum packet......");
    let mut sc = SnapStreamScanner::new(DEFAULT_MAX_RECORD_BYTES);
    for n in 0..s.len() {
        assert_eq!(sc.scan(&wire[..n]).unwrap(), None, "at {n}");
        assert!(sc.scanned() <= n);
    }
    assert_eq!(sc.scan(&wire[..s.len()]).unwrap(), Some(s.len()));
    assert_eq!(sc.scan(&wire).unwrap(), Some(s.len()));
    assert_eq!(snap_stream_len(&wire, DEFAULT_MAX_RECORD_BYTES).unwrap(), Some(s.len()));
    // Bytes after the signature are not part of a stream to decode.
    assert!(decode_snap_stream(&wire, Zxid(1), opts()).is_err());
    // An empty tree (root, /zookeeper, /zookeeper/quota, /zookeeper/config) too.
    let e = DataTree::with_options(opts());
    let s = encode_snap_stream(&e, &[]);
    assert_eq!(snap_stream_len(&s, 1024).unwrap(), Some(s.len()));
    assert_eq!(decode_snap_stream(&s, Zxid(0), opts()).unwrap().0.digest(), e.digest());
}

#[test]
fn malformed_snap_streams_are_errors() {
    let good = zk_snap_stream();
    let max = DEFAULT_MAX_RECORD_BYTES;
    // Negative session count.
    let mut b = good.clone();
    b[..4].copy_from_slice(&(-2i32).to_be_bytes());
    assert!(matches!(snap_stream_len(&b, max), Err(StorageError::SnapStream { offset: 0, .. })));
    // A huge path length is refused before anything is read.
    let mut huge = Vec::new();
    huge.extend_from_slice(&0i32.to_be_bytes()); // sessions
    huge.extend_from_slice(&0i32.to_be_bytes()); // ACL lists
    huge.extend_from_slice(&i32::MAX.to_be_bytes()); // path length
    assert!(snap_stream_len(&huge, max).unwrap_err().to_string().contains("exceeds"));
    // A wrong signature.
    let mut b = good.clone();
    let n = b.len();
    b[n - 1] = b'X';
    assert!(snap_stream_len(&b, max).unwrap_err().to_string().contains("signature"));
    assert!(decode_snap_stream(&b, Zxid(1), opts()).unwrap_err().to_string().contains("signature"));
    // Cut short: the scanner waits, the decoder refuses.
    assert_eq!(snap_stream_len(&good[..good.len() - 3], max).unwrap(), None);
    assert!(decode_snap_stream(&good[..good.len() - 3], Zxid(1), opts()).is_err());
    assert!(snapwire::snap_stream_body(&good[..good.len() - 3], max).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Damaged streams never panic, never claim more bytes than given, and whatever the
    /// scanner accepts as a whole stream, the decoder handles without panicking.
    #[test]
    fn damaged_snap_streams_never_panic(cut in 0usize..2000, flips in prop::collection::vec((0usize..2000, any::<u8>()), 0..4)) {
        let mut b = zk_snap_stream();
        for (i, v) in flips {
            let n = b.len();
            b[i % n] ^= v;
        }
        let b = &b[..cut.min(b.len())];
        if let Ok(Some(n)) = snap_stream_len(b, DEFAULT_MAX_RECORD_BYTES) {
            prop_assert!(n <= b.len());
            let _ = decode_snap_stream(&b[..n], Zxid(1), opts());
        }
        let _ = decode_snap_stream(b, Zxid(1), opts());
    }
}

// ---- a SNAP received as it arrives (snaprecv) ----

/// `stream` in pieces whose sizes cycle through `sizes`.
fn pieces(stream: &[u8], sizes: &[usize]) -> Vec<bytes::Bytes> {
    let mut out = Vec::new();
    let (mut at, mut k) = (0, 0);
    while at < stream.len() {
        let n = sizes[k % sizes.len()].min(stream.len() - at);
        out.push(bytes::Bytes::copy_from_slice(&stream[at..at + n]));
        at += n;
        k += 1;
    }
    out
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn a_snap_received_in_pieces_is_the_tree_and_the_file_install_snapshot_writes() {
    let mut t = replayed();
    t.set_last_processed_zxid(Zxid(0xd9));
    let sessions = [(0x100_0000_0000_0001i64, 30_000), (0x100_0000_0000_0002, 4000)];
    let stream = encode_snap_stream(&t, &sessions);
    // The file install_snapshot writes from the whole stream, for comparison.
    let whole = dirs();
    let want =
        install_snapshot(&whole.snap, &whole.log, Zxid(0xd9), &stream, None, Compression::Checked, DEFAULT_MAX_RECORD_BYTES).unwrap();
    let want = std::fs::read(want).unwrap();
    for sizes in [&[1usize][..], &[3, 14, 1], &[4096], &[stream.len()], &[13, 15, 200_000]] {
        let d = dirs();
        let r = crate::receive_snap_stream(
            pieces(&stream, sizes),
            Zxid(0xd9),
            Some(&d.snap),
            Compression::Checked,
            DEFAULT_MAX_RECORD_BYTES,
            opts(),
        )
        .unwrap();
        assert_eq!(r.stream_bytes(), stream.len() as u64);
        let (tree, mut got) = r.take_state().unwrap();
        assert!(r.take_state().is_none(), "taken once");
        got.sort();
        assert_eq!(got, sessions.to_vec());
        assert_eq!(tree.digest(), t.digest());
        assert_eq!(tree.last_processed_zxid(), Zxid(0xd9));
        // Under a temp name until installed; then exactly the file install_snapshot writes.
        assert!(names_in(&d.snap).iter().all(|n| n.starts_with("tmp.")), "{:?}", names_in(&d.snap));
        let path = crate::ensemble::install_received_snapshot(&d.snap, &d.log, Zxid(0xd9), r.take_file().unwrap()).unwrap();
        assert_eq!(names_in(&d.snap), ["snapshot.d9"]);
        assert_eq!(std::fs::read(&path).unwrap(), want, "pieces {sizes:?}");
        drop(r);
        assert_eq!(names_in(&d.snap), ["snapshot.d9"], "a taken file stays");
        let rec = recover_ensemble(&d.snap, &d.log, &ropts(), 0).unwrap();
        assert_eq!(rec.snapshot_zxid, Zxid(0xd9));
        assert_eq!(rec.tree.digest(), t.digest());
    }
    // Compressed: the file loads back the same.
    let d = dirs();
    let r =
        crate::receive_snap_stream(pieces(&stream, &[777]), Zxid(0xd9), Some(&d.snap), Compression::Gzip, DEFAULT_MAX_RECORD_BYTES, opts())
            .unwrap();
    crate::ensemble::install_received_snapshot(&d.snap, &d.log, Zxid(0xd9), r.take_file().unwrap()).unwrap();
    let rec = recover_ensemble(&d.snap, &d.log, &ropts(), 0).unwrap();
    assert_eq!(rec.tree.digest(), t.digest());
    // Without a directory nothing is written (the simulator).
    let r = crate::receive_snap_stream(pieces(&stream, &[5]), Zxid(0xd9), None, Compression::Checked, DEFAULT_MAX_RECORD_BYTES, opts())
        .unwrap();
    assert!(r.take_file().is_none());
    assert_eq!(r.take_state().unwrap().0.digest(), t.digest());
    // A ZooKeeper leader's stream too.
    let zk = zk_snap_stream();
    let d = dirs();
    let r =
        crate::receive_snap_stream(pieces(&zk, &[64]), Zxid(0xd9), Some(&d.snap), Compression::Checked, DEFAULT_MAX_RECORD_BYTES, opts())
            .unwrap();
    assert_eq!(r.take_state().unwrap().0.digest(), decode_snap_stream(&zk, Zxid(0xd9), opts()).unwrap().0.digest());
}

#[test]
fn a_torn_or_malformed_snap_received_is_an_error_and_leaves_no_file() {
    let good = zk_snap_stream();
    let recv = |b: &[u8], d: &Path| {
        crate::receive_snap_stream(pieces(b, &[100, 7]), Zxid(1), Some(d), Compression::Checked, DEFAULT_MAX_RECORD_BYTES, opts())
    };
    let mut cases: Vec<(&str, Vec<u8>)> =
        vec![("cut short", good[..good.len() - 3].to_vec()), ("cut in the nodes", good[..good.len() / 2].to_vec()), ("empty", Vec::new())];
    let mut b = good.clone();
    let n = b.len();
    b[n - 1] = b'X';
    cases.push(("signature", b));
    let mut b = good.clone();
    b.extend_from_slice(b"more");
    cases.push(("bytes after the signature", b));
    // A node whose parent is missing: the first node record's path made "/nope/x".
    let mut t = DataTree::with_options(opts());
    t.set_last_processed_zxid(Zxid(1));
    let s = encode_snap_stream(&t, &[]);
    let at = s.windows(11).position(|w| w == b"/zookeeper/").expect("a child of /zookeeper");
    let mut b = s.clone();
    b[at..at + 11].copy_from_slice(b"/nopenope/x");
    cases.push(("orphan", b));
    for (what, b) in cases {
        let d = dirs();
        let e = recv(&b, &d.snap).err().unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(matches!(e, StorageError::SnapStream { .. }), "{what}: {e}");
        assert!(names_in(&d.snap).is_empty(), "{what}: {:?}", names_in(&d.snap));
    }
    // A received SNAP never installed removes its file when dropped.
    let d = dirs();
    let r = recv(&good, &d.snap).unwrap();
    assert_eq!(names_in(&d.snap).len(), 1);
    drop(r);
    assert!(names_in(&d.snap).is_empty());
}

#[test]
fn the_scanner_finds_the_end_when_its_buffer_drops_what_it_passed() {
    let mut t = replayed();
    t.set_last_processed_zxid(Zxid(0xd9));
    let s = encode_snap_stream(&t, &[(1, 4000)]);
    let mut wire = s.clone();
    wire.extend_from_slice(b"next packet");
    for step in [1usize, 5, 64, 1000] {
        // A reader that keeps only what the scanner has not passed.
        let mut sc = SnapStreamScanner::new(DEFAULT_MAX_RECORD_BYTES);
        let (mut buf, mut gone, mut at) = (Vec::new(), 0usize, 0usize);
        let end = loop {
            let n = step.min(wire.len() - at);
            buf.extend_from_slice(&wire[at..at + n]);
            at += n;
            if let Some(e) = sc.scan(&buf).unwrap() {
                break gone + e;
            }
            let k = sc.scanned();
            buf.drain(..k);
            sc.consume(k);
            gone += k;
            assert!(buf.len() < 600, "the buffer holds about one record");
        };
        assert_eq!(end, s.len(), "step {step}");
    }
}

// ---- ensemble recovery ----

fn bytes_of(recs: &[TxnRecord]) -> Vec<(Zxid, Vec<u8>)> {
    recs.iter().map(|r| (r.header.zxid, r.to_bytes())).collect()
}

fn snapshot_at(dir: &Path, recs: &[TxnRecord]) -> DataTree {
    let mut t = DataTree::with_options(opts());
    for r in recs {
        t.apply(&r.header, &r.txn);
    }
    snapshot::write_snapshot(dir, &t, &[(0x55, 5000)], Compression::Checked).unwrap();
    t
}

#[test]
fn ensemble_recovery_is_the_snapshot_plus_the_raw_log() {
    let d = dirs();
    let recs: Vec<TxnRecord> = std::iter::once(session(1, 0x55)).chain((2..=12).map(|z| create(z, &format!("/n{z}"), 0))).collect();
    write_log(&d.log, &recs[..6]); // log.1: 1..=6
    write_log(&d.log, &recs[6..]); // log.7: 7..=12
    let t = snapshot_at(&d.snap, &recs[..8]); // snapshot.8
    for keep in [0usize, 3, 8, 100] {
        let r = recover_ensemble(&d.snap, &d.log, &ropts(), keep).unwrap();
        assert_eq!(r.snapshot_zxid, Zxid(8));
        assert_eq!(r.tree.last_processed_zxid(), Zxid(8));
        assert_eq!(r.tree.digest(), t.digest(), "nothing from the log is applied");
        assert!(r.tree.get("/n9").is_none());
        assert_eq!(r.sessions, vec![(0x55, 5000)]);
        let k = keep.min(8);
        assert_eq!(r.committed, k);
        assert_eq!(r.log, bytes_of(&recs[8 - k..]), "keep {keep}");
        assert_eq!(r.last_logged, Zxid(12));
        assert!(r.torn.is_empty());
    }
    // A log that does not reach the snapshot: no history, nothing after.
    let d2 = dirs();
    write_log(&d2.log, &recs[..3]);
    snapshot_at(&d2.snap, &recs[..8]);
    let r = recover_ensemble(&d2.snap, &d2.log, &ropts(), 10).unwrap();
    assert_eq!((r.committed, r.log.len(), r.last_logged), (0, 0, Zxid(8)));
    // No snapshot at all: every entry is after zxid 0.
    let d3 = dirs();
    write_log(&d3.log, &recs[..4]);
    let r = recover_ensemble(&d3.snap, &d3.log, &ropts(), 10).unwrap();
    assert_eq!(r.snapshot_zxid, Zxid(0));
    assert_eq!((r.committed, r.log), (0, bytes_of(&recs[..4])));
}

#[test]
fn ensemble_recovery_repairs_torn_tails_and_refuses_gaps() {
    let d = dirs();
    let recs: Vec<TxnRecord> = (1..=6).map(|z| create(z, &format!("/n{z}"), 0)).collect();
    let p = write_log(&d.log, &recs);
    snapshot_at(&d.snap, &recs[..2]);
    // Cut the last entry in half.
    let offs = entry_offsets(&p);
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(offs[5] + 7).unwrap();
    drop(f);
    let r = recover_ensemble(&d.snap, &d.log, &ropts(), 5).unwrap();
    assert_eq!(r.torn.len(), 1);
    assert_eq!(r.log, bytes_of(&recs[..5]));
    assert_eq!(r.committed, 2);
    assert_eq!(std::fs::metadata(&p).unwrap().len(), offs[5]);
    // A gap after the snapshot is refused.
    write_log(&d.log, &[create(9, "/n9", 0)]);
    assert!(matches!(recover_ensemble(&d.snap, &d.log, &ropts(), 5), Err(StorageError::Gap { .. })));
}

// ---- TRUNC ----

#[test]
fn truncate_in_the_middle_of_a_file_then_recover_and_append() {
    let d = dirs();
    let recs: Vec<TxnRecord> = (1..=8).map(|z| create(z, &format!("/n{z}"), 0)).collect();
    snapshot_at(&d.snap, &recs[..0]);
    let p = write_log(&d.log, &recs);
    let offs = entry_offsets(&p);
    let t = truncate_after(&d.snap, &d.log, Zxid(5), DEFAULT_MAX_RECORD_BYTES).unwrap();
    assert_eq!(t.cut, Some((p.clone(), offs[5])));
    assert!(t.deleted.is_empty());
    let r = recover_ensemble(&d.snap, &d.log, &ropts(), 0).unwrap();
    assert_eq!(r.log, bytes_of(&recs[..5]));
    assert!(r.torn.is_empty());
    // Appends continue after it (with different txns), in a new file.
    let more: Vec<TxnRecord> = (6..=7).map(|z| create(z, &format!("/m{z}"), 0)).collect();
    write_log(&d.log, &more);
    let r = recover_ensemble(&d.snap, &d.log, &ropts(), 0).unwrap();
    let mut want = bytes_of(&recs[..5]);
    want.extend(bytes_of(&more));
    assert_eq!(r.log, want);
    // Truncating at or beyond the end changes nothing; below everything empties the log.
    truncate_after(&d.snap, &d.log, Zxid(7), DEFAULT_MAX_RECORD_BYTES).unwrap();
    assert_eq!(recover_ensemble(&d.snap, &d.log, &ropts(), 0).unwrap().log, want);
    let t = truncate_after(&d.snap, &d.log, Zxid(0), DEFAULT_MAX_RECORD_BYTES).unwrap();
    assert_eq!(t.deleted.len(), 2);
    assert!(recover_ensemble(&d.snap, &d.log, &ropts(), 0).unwrap().log.is_empty());
}

#[test]
fn truncate_across_files() {
    let d = dirs();
    let recs: Vec<TxnRecord> = (1..=12).map(|z| create(z, &format!("/n{z}"), 0)).collect();
    snapshot_at(&d.snap, &recs[..0]);
    let a = write_log(&d.log, &recs[..4]); // 1..=4
    let b = write_log(&d.log, &recs[4..8]); // 5..=8
    let c = write_log(&d.log, &recs[8..]); // 9..=12
    let offs = entry_offsets(&b);
    let t = truncate_after(&d.snap, &d.log, Zxid(6), DEFAULT_MAX_RECORD_BYTES).unwrap();
    assert_eq!(t.deleted, vec![c.clone()]);
    assert_eq!(t.cut, Some((b.clone(), offs[2])));
    assert!(a.exists() && !c.exists());
    let r = recover_ensemble(&d.snap, &d.log, &ropts(), 0).unwrap();
    assert_eq!(r.log, bytes_of(&recs[..6]));
    // At a file boundary: the later file goes entirely, the earlier one keeps its padding
    // trimmed away.
    let t = truncate_after(&d.snap, &d.log, Zxid(4), DEFAULT_MAX_RECORD_BYTES).unwrap();
    assert_eq!(t.deleted, vec![b.clone()]);
    assert_eq!(recover_ensemble(&d.snap, &d.log, &ropts(), 0).unwrap().log, bytes_of(&recs[..4]));
    // A snapshot above the truncation point would lose committed txns: refused.
    snapshot_at(&d.snap, &recs[..3]);
    assert!(truncate_after(&d.snap, &d.log, Zxid(2), DEFAULT_MAX_RECORD_BYTES).is_err());
    assert_eq!(recover_ensemble(&d.snap, &d.log, &ropts(), 0).unwrap().log, bytes_of(&recs[3..4]));
}

// ---- SNAP install ----

#[test]
fn installed_snapshot_is_all_that_remains() {
    let d = dirs();
    let recs: Vec<TxnRecord> = (1..=6).map(|z| create(z, &format!("/old{z}"), 0)).collect();
    snapshot_at(&d.snap, &recs[..2]);
    write_log(&d.log, &recs);
    // The leader's state: ZooKeeper's workload tree at 0xd9.
    let stream = zk_snap_stream();
    let (tree, _) = decode_snap_stream(&stream, Zxid(0xd9), opts()).unwrap();
    let p =
        install_snapshot(&d.snap, &d.log, Zxid(0xd9), &stream, Some(tree.digest()), Compression::Gzip, DEFAULT_MAX_RECORD_BYTES).unwrap();
    assert!(p.ends_with("snapshot.d9.gz"));
    assert!(txnlog::list_logs(&d.log).unwrap().is_empty());
    assert_eq!(snapshot::list_snapshots(&d.snap).unwrap().len(), 1);
    let r = recover_ensemble(&d.snap, &d.log, &ropts(), 10).unwrap();
    assert_eq!(r.snapshot_zxid, Zxid(0xd9));
    assert_eq!(r.snapshot_digest, Some((Zxid(0xd9), 2, tree.digest())));
    assert_eq!(r.tree.digest(), replayed().digest());
    assert!(r.log.is_empty());
    // The standalone loader takes it too (it is an ordinary snapshot file).
    let s = crate::recover(&d.snap, &d.log, &ropts()).unwrap();
    assert_eq!(s.tree.digest(), replayed().digest());
    assert_eq!(s.digests_checked, 1);
    assert!(s.digest_mismatches.is_empty());
    // A stream that is not whole is refused before anything changes.
    assert!(install_snapshot(&d.snap, &d.log, Zxid(0xda), &stream[..100], None, Compression::Checked, DEFAULT_MAX_RECORD_BYTES).is_err());
    assert_eq!(snapshot::list_snapshots(&d.snap).unwrap().len(), 1);
}

// ---- the ordered worker ----

fn storage_cfg(d: &crate::tests::Dirs) -> StorageConfig {
    StorageConfig {
        snap_dir: d.snap.clone(),
        log_dir: d.log.clone(),
        snap_count: 100_000,
        prealloc_bytes: 4096,
        force_sync: true,
        compression: Compression::Checked,
        snap_retain_count: 3,
        purge_interval_hours: 0,
        max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
    }
}

fn appends(recs: &[TxnRecord]) -> Vec<LogAppend> {
    recs.iter().map(|r| LogAppend { zxid: r.header.zxid, entry: r.to_bytes().into() }).collect()
}

/// Sends the commands to a fresh worker, waits for it to stop, returns its events.
fn run_worker(cfg: &StorageConfig, cmds: Vec<LogCommand>) -> Vec<StorageEvent> {
    let (ev_tx, mut ev_rx) = tokio::sync::mpsc::channel(1024);
    let (tx, h) = spawn_log_worker(cfg, ev_tx, 7, crate::worker::FullDisk::Fatal).unwrap();
    for c in cmds {
        tx.blocking_send(c).unwrap();
    }
    drop(tx);
    h.join().unwrap();
    let mut out = Vec::new();
    while let Ok(e) = ev_rx.try_recv() {
        out.push(e);
    }
    out
}

fn dones(evs: &[StorageEvent]) -> Vec<u64> {
    evs.iter()
        .map(|e| match e {
            StorageEvent::Done { token, .. } => *token,
            other => panic!("unexpected event {other:?}"),
        })
        .collect()
}

#[test]
fn worker_runs_commands_in_order_across_restarts() {
    let d = dirs();
    let cfg = storage_cfg(&d);
    snapshot_at(&d.snap, &[]);
    let recs: Vec<TxnRecord> = std::iter::once(session(1, 0x77)).chain((2..=10).map(|z| create(z, &format!("/n{z}"), 0))).collect();
    let evs = run_worker(
        &cfg,
        vec![
            LogCommand::Epoch { name: ACCEPTED_EPOCH, epoch: 1, token: 1 },
            LogCommand::Epoch { name: CURRENT_EPOCH, epoch: 1, token: 2 },
            LogCommand::Append { entries: appends(&recs[..3]), token: 3 },
            LogCommand::Append { entries: appends(&recs[3..8]), token: 4 },
            LogCommand::Truncate { after: Zxid(6), token: 5 },
            LogCommand::Append { entries: vec![], token: 6 },
        ],
    );
    let got = dones(&evs);
    // In order; consecutive appends may share one Done (the last token).
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    assert_eq!(got[..2], [1, 2]);
    assert!(got.ends_with(&[5, 6]) && got.contains(&4));
    assert_eq!(read_epoch(&d.snap, CURRENT_EPOCH).unwrap(), Some(1));
    let r = recover_ensemble(&d.snap, &d.log, &ropts(), 0).unwrap();
    assert_eq!(r.log, bytes_of(&recs[..6]));

    // Restart: a new worker appends after the truncation point (a different history),
    // then installs a leader's snapshot, then appends on top of it.
    let other: Vec<TxnRecord> = (7..=8).map(|z| create(z, &format!("/x{z}"), 0)).collect();
    let stream = zk_snap_stream();
    let (tree, _) = decode_snap_stream(&stream, Zxid(0xd9), opts()).unwrap();
    let after: Vec<TxnRecord> = (0xda..=0xdc).map(|z| create(z, &format!("/after{z}"), 0)).collect();
    let evs = run_worker(
        &cfg,
        vec![
            LogCommand::Append { entries: appends(&other), token: 10 },
            LogCommand::InstallSnapshot { zxid: Zxid(0xd9), stream: stream.clone().into(), digest: Some(tree.digest()), token: 11 },
            LogCommand::Append { entries: appends(&after), token: 12 },
        ],
    );
    assert_eq!(dones(&evs), [10, 11, 12]);
    let r = recover_ensemble(&d.snap, &d.log, &ropts(), 5).unwrap();
    assert_eq!(r.snapshot_zxid, Zxid(0xd9));
    assert_eq!(r.tree.digest(), tree.digest());
    assert_eq!(r.committed, 0);
    assert_eq!(r.log, bytes_of(&after));
    assert_eq!(r.last_logged, Zxid(0xdc));
    assert!(r.tree.get("/n2").is_none());

    // An append that goes backwards is a host bug: the worker stops, loudly.
    let evs = run_worker(
        &cfg,
        vec![
            LogCommand::Append { entries: appends(&after[2..]), token: 20 },
            LogCommand::Append { entries: appends(&after[..1]), token: 21 },
        ],
    );
    assert!(matches!(evs.last(), Some(StorageEvent::Fatal(m)) if m.contains("out of order")), "{evs:?}");
}

// ---- a model check: random appends, TRUNCs, snapshots, SNAP installs and restarts ----

#[derive(Debug, Clone)]
enum Op {
    /// Append n txns; `new_epoch` starts the first of them in the next epoch.
    Append { n: usize, new_epoch: bool },
    /// TRUNC to one of the logged zxids at or above the snapshot (picked by index).
    Truncate { pick: usize },
    /// Take a snapshot of this server's own state at a logged zxid (picked by index).
    Snapshot { pick: usize },
    /// SNAP from a leader that is `ahead` txns further.
    Install { ahead: u32 },
    /// Close the log writer (a restart: the next append starts a new file).
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..6, prop::bool::weighted(0.15)).prop_map(|(n, new_epoch)| Op::Append { n, new_epoch }),
        2 => any::<usize>().prop_map(|pick| Op::Truncate { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Snapshot { pick }),
        1 => (1u32..5).prop_map(|ahead| Op::Install { ahead }),
        2 => Just(Op::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// After any sequence, ensemble recovery returns exactly the model: the snapshot, the
    /// entries after it byte for byte, and the history before it up to `keep`.
    #[test]
    fn ensemble_log_matches_a_model(ops in prop::collection::vec(op(), 1..24), keep in 0usize..6) {
        let d = dirs();
        let mut snap = Zxid(0);
        snapshot_at(&d.snap, &[]);
        let mut model: Vec<(Zxid, Vec<u8>)> = Vec::new();
        let mut last = Zxid(0);
        let mut gen = 0u32;
        let mut log = txnlog::TxnLog::new(&d.log, 4096, true);
        for op in ops {
            match op {
                Op::Append { n, new_epoch } => {
                    for i in 0..n {
                        let z = if new_epoch && i == 0 { Zxid::new(last.epoch() + 1, 1) } else { last.next() };
                        gen += 1;
                        let r = create(z.0, &format!("/n{}-{gen}", z.0), 0);
                        let mut b = Vec::new();
                        format::encode_log_entry(&r.to_bytes(), &mut b);
                        log.write(z, &b, 1).unwrap();
                        model.push((z, r.to_bytes()));
                        last = z;
                    }
                    log.sync().unwrap();
                }
                Op::Truncate { pick } => {
                    let cands: Vec<Zxid> = std::iter::once(snap).chain(model.iter().map(|(z, _)| *z).filter(|z| *z >= snap)).collect();
                    let after = cands[pick % cands.len()];
                    log.roll().unwrap();
                    truncate_after(&d.snap, &d.log, after, DEFAULT_MAX_RECORD_BYTES).unwrap();
                    model.retain(|(z, _)| *z <= after);
                    last = after;
                }
                Op::Snapshot { pick } => {
                    let cands: Vec<Zxid> = model.iter().map(|(z, _)| *z).filter(|z| *z >= snap).collect();
                    if cands.is_empty() {
                        continue;
                    }
                    let z = cands[pick % cands.len()];
                    let mut t = DataTree::with_options(opts());
                    t.set_last_processed_zxid(z);
                    snapshot::write_snapshot(&d.snap, &t, &[], Compression::Checked).unwrap();
                    snap = z;
                }
                Op::Install { ahead } => {
                    let z = Zxid::new(last.epoch(), last.counter() + ahead);
                    let t = DataTree::with_options(opts());
                    log.roll().unwrap();
                    install_snapshot(&d.snap, &d.log, z, &encode_snap_stream(&t, &[]), Some(t.digest()), Compression::Checked, DEFAULT_MAX_RECORD_BYTES).unwrap();
                    model.clear();
                    snap = z;
                    last = z;
                }
                Op::Restart => {
                    log.roll().unwrap();
                    log = txnlog::TxnLog::new(&d.log, 4096, true);
                }
            }
        }
        log.roll().unwrap();
        let r = recover_ensemble(&d.snap, &d.log, &ropts(), keep).unwrap();
        prop_assert_eq!(r.snapshot_zxid, snap);
        let before: Vec<_> = model.iter().filter(|(z, _)| *z <= snap).cloned().collect();
        let history: Vec<_> = if before.last().is_some_and(|(z, _)| *z == snap) {
            before[before.len().saturating_sub(keep)..].to_vec()
        } else {
            Vec::new()
        };
        let mut want = history.clone();
        want.extend(model.iter().filter(|(z, _)| *z > snap).cloned());
        prop_assert_eq!(r.committed, history.len());
        prop_assert_eq!(&r.log, &want);
        prop_assert_eq!(r.last_logged, want.last().map(|(z, _)| *z).filter(|z| *z > snap).unwrap_or(snap));
        prop_assert!(r.torn.is_empty());
    }
}

// ---- DIFF from the txn log (getProposalsFromTxnLog) ----

#[test]
fn log_read_after_a_zxid_follows_getproposalsfromtxnlog() {
    use crate::ensemble::{read_log_after, LogReadRefused};
    let d = dirs();
    let recs: Vec<TxnRecord> = (1..=12).map(|z| create(z, &format!("/n{z}"), 0)).collect();
    write_log(&d.log, &recs[..6]); // log.1: 1..=6
    write_log(&d.log, &recs[6..]); // log.7: 7..=12
    let read = |after: i64, factor: f64| {
        let mut got: Vec<i64> = Vec::new();
        let r = read_log_after(&d.snap, &d.log, Zxid(after), factor, DEFAULT_MAX_RECORD_BYTES, |b| {
            got.extend(b.iter().map(|(z, _)| z.0));
            true
        })
        .unwrap();
        (r, got)
    };
    // No snapshot: no size limit. Every txn after the zxid, across files, in order.
    assert_eq!(read(3, 0.33), (Ok(()), (4..=12).collect()));
    assert_eq!(read(6, 0.33), (Ok(()), (7..=12).collect()));
    assert_eq!(read(12, 0.33), (Ok(()), vec![]));
    // The bytes are the log's records (a PROPOSAL's data).
    let mut first = None;
    read_log_after(&d.snap, &d.log, Zxid(10), 0.33, DEFAULT_MAX_RECORD_BYTES, |b| {
        first.get_or_insert(b[0].1.clone());
        true
    })
    .unwrap()
    .unwrap();
    assert_eq!(first.unwrap(), recs[10].to_bytes());
    // Not logged: before the log, or beyond it; a negative factor (or NaN) disables.
    assert_eq!(read(0, 0.33).0, Err(LogReadRefused::NotLogged(Zxid(0))));
    assert_eq!(read(13, 0.33).0, Err(LogReadRefused::NotLogged(Zxid(13))));
    assert_eq!(read(3, -1.0).0, Err(LogReadRefused::Disabled));
    assert_eq!(read(3, f64::NAN).0, Err(LogReadRefused::Disabled));
    // With a snapshot, the files to read (from the one holding the zxid) must weigh no more
    // than its size times the factor; a factor of 0 means no limit, as in ZooKeeper.
    std::fs::write(d.snap.join("snapshot.c"), vec![0u8; 1000]).unwrap();
    let log_bytes: u64 = ["log.1", "log.7"].iter().map(|n| std::fs::metadata(d.log.join(n)).unwrap().len()).sum();
    let second: u64 = std::fs::metadata(d.log.join("log.7")).unwrap().len();
    assert_eq!(read(3, 0.33).0, Err(LogReadRefused::TooLarge { log_bytes, limit_bytes: 330 }));
    let factor = log_bytes as f64 / 1000.0 + 0.001;
    assert_eq!(read(3, factor).0, Ok(()));
    assert_eq!(read(8, (second as f64 + 1.0) / 1000.0), (Ok(()), (9..=12).collect()));
    assert_eq!(read(3, 0.0), (Ok(()), (4..=12).collect()));
    // The reader stops when told to.
    let mut calls = 0;
    read_log_after(&d.snap, &d.log, Zxid(1), 0.0, DEFAULT_MAX_RECORD_BYTES, |_| {
        calls += 1;
        false
    })
    .unwrap()
    .unwrap();
    assert!(calls <= 1);
}
