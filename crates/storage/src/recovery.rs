//! Recovery: the state a server starts from.
//!
//! 1. The newest snapshot that loads and whose seals verify (falling back to older ones, as
//!    ZooKeeper does; a snapshot that fails is reported).
//! 2. The log files that may hold later txns (`getLogFiles`), replayed in order from the
//!    snapshot's zxid + 1 with `processTransaction`'s session bookkeeping. Every txn must
//!    follow the previous one (zxid + 1, or counter 1 of a later epoch); otherwise committed
//!    txns are missing and recovery refuses with the file and zxids.
//! 3. A torn tail (an entry cut short by a crash, nothing valid after it) is cut off when
//!    `repair` is set; corruption in the middle of a file is an error.
//! 4. Digests: a txn's TxnDigest and the snapshot's ZxidDigest are compared with the tree's
//!    as ZooKeeper does (not while the tree is still fuzzy); mismatches are logged and counted.
//! 5. Ephemerals of sessions missing from the session table are removed (ZooKeeper's
//!    `loadData` "clean up dead sessions").

use crate::snapshot::{self, LoadedSnapshot};
use crate::txnlog::{self, Tail};
use crate::StorageError;
use rzk_proto::txn::{Txn, TxnHeader};
use rzk_proto::{OpCode, SessionId, Zxid};
use rzk_tree::{DataTree, TreeOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct RecoveryOptions {
    pub tree: TreeOptions,
    pub max_record_bytes: usize,
    /// Cut torn tails off (the server does; `rzk check` only reports).
    pub repair: bool,
}

/// What recovery produced.
pub struct Recovered {
    pub tree: DataTree,
    /// The session table (id → timeout), as replay left it.
    pub sessions: BTreeMap<i64, i32>,
    pub last_zxid: Zxid,
    /// The snapshot loaded, if any.
    pub snapshot: Option<(Zxid, PathBuf)>,
    /// Newer snapshots that could not be used, and why.
    pub skipped_snapshots: Vec<(PathBuf, String)>,
    pub log_files: Vec<PathBuf>,
    pub replayed: u64,
    /// Torn tails found: file, offset, reason (cut off if `repair`).
    pub torn: Vec<(PathBuf, u64, String)>,
    pub digests_checked: u64,
    pub digest_mismatches: Vec<Zxid>,
    /// Sessions whose ephemerals were dropped because the session table does not have them.
    pub dead_sessions: Vec<SessionId>,
}

/// True if `next` may follow `prev` in a log: the next counter, or a new epoch's first txn.
pub fn follows(prev: Zxid, next: Zxid) -> bool {
    next.0 == prev.0 + 1 || (next.epoch() > prev.epoch() && next.counter() == 1)
}

/// Snapshots that could not be used, and why.
pub(crate) type SkippedSnapshots = Vec<(PathBuf, String)>;

/// The newest snapshot that loads and whose seals verify, falling back to older ones (as
/// ZooKeeper does), and the newer ones skipped with why. No snapshot at all is `None`; only
/// unusable ones is an error.
pub(crate) fn newest_valid_snapshot(
    snap_dir: &Path,
    opts: &RecoveryOptions,
) -> Result<(Option<LoadedSnapshot>, SkippedSnapshots), StorageError> {
    let snaps = snapshot::list_snapshots(snap_dir)?;
    let mut skipped = Vec::new();
    let mut loaded: Option<LoadedSnapshot> = None;
    for (_, path) in snaps.iter().rev() {
        if !snapshot::looks_valid(path) {
            skipped.push((path.clone(), "incomplete (no seal at the end)".to_string()));
            continue;
        }
        match snapshot::load_snapshot(path, opts.tree, opts.max_record_bytes) {
            Ok(s) => {
                loaded = Some(s);
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "snapshot unusable, trying an older one");
                skipped.push((path.clone(), e.to_string()));
            }
        }
    }
    if loaded.is_none() && !snaps.is_empty() {
        let reasons = skipped.iter().map(|(p, r)| format!("{}: {r}", p.display())).collect::<Vec<_>>().join("; ");
        return Err(StorageError::NoValidSnapshot { dir: snap_dir.to_path_buf(), reasons });
    }
    Ok((loaded, skipped))
}

/// Recovers from `snap_dir` and `log_dir` (the `version-2` directories).
pub fn recover(snap_dir: &Path, log_dir: &Path, opts: &RecoveryOptions) -> Result<Recovered, StorageError> {
    let (loaded, skipped) = newest_valid_snapshot(snap_dir, opts)?;
    let (mut tree, mut sessions, snap_zxid, snap_path, mut pending_digest) = match loaded {
        Some(s) => {
            tracing::info!(snapshot = %s.path.display(), zxid = %s.zxid, "loaded snapshot");
            let sessions: BTreeMap<i64, i32> = s.sessions.iter().copied().collect();
            // A digest taken before the snapshot's zxid cannot be checked (ZooKeeper ignores it).
            let digest = s.digest.filter(|(z, _, _)| z.0 > 0 && *z >= s.zxid);
            (s.tree, sessions, s.zxid, Some(s.path), digest)
        }
        None => (DataTree::with_options(opts.tree), BTreeMap::new(), Zxid(0), None, None),
    };
    let mut rec = Recovered {
        tree: DataTree::new(),
        sessions: BTreeMap::new(),
        last_zxid: snap_zxid,
        snapshot: snap_path.map(|p| (snap_zxid, p)),
        skipped_snapshots: skipped,
        log_files: Vec::new(),
        replayed: 0,
        torn: Vec::new(),
        digests_checked: 0,
        digest_mismatches: Vec::new(),
        dead_sessions: Vec::new(),
    };
    let check_snapshot_digest = |tree: &DataTree, zxid: Zxid, pending: &mut Option<(Zxid, i32, i64)>, rec: &mut Recovered| {
        if let Some((dz, version, d)) = *pending {
            if zxid == dz {
                if version == tree.digest_version() && opts.tree.digest_enabled {
                    rec.digests_checked += 1;
                    if tree.digest() != d {
                        tracing::error!(zxid = %zxid, "digest mismatch with the snapshot's digest after replay");
                        rec.digest_mismatches.push(zxid);
                    }
                }
                *pending = None;
            }
        }
    };
    check_snapshot_digest(&tree, snap_zxid, &mut pending_digest, &mut rec);
    tree.set_digest_log_paused(pending_digest.is_some());

    let logs = txnlog::logs_from(&txnlog::list_logs(log_dir)?, snap_zxid);
    let mut last = snap_zxid;
    for (_, path) in &logs {
        rec.log_files.push(path.clone());
        let scan = txnlog::scan_log_file(path, opts.max_record_bytes, |_, r| {
            let zxid = r.header.zxid;
            if zxid <= last {
                return Ok(()); // in the snapshot already
            }
            if !follows(last, zxid) {
                return Err(StorageError::Gap { expected: last.next(), found: zxid, file: path.clone() });
            }
            match &r.txn {
                Txn::CreateSession { timeout_ms } => {
                    sessions.insert(r.header.client_id.0, *timeout_ms);
                }
                Txn::CloseSession { .. } => {
                    sessions.remove(&r.header.client_id.0);
                }
                _ => {}
            }
            tree.apply(&r.header, &r.txn);
            last = zxid;
            rec.replayed += 1;
            if pending_digest.is_some() {
                check_snapshot_digest(&tree, zxid, &mut pending_digest, &mut rec);
                tree.set_digest_log_paused(pending_digest.is_some());
            } else if let (Some(d), true) = (&r.digest, opts.tree.digest_enabled) {
                if d.version == tree.digest_version() {
                    rec.digests_checked += 1;
                    if d.tree_digest != tree.digest() {
                        tracing::error!(zxid = %zxid, "digest mismatch: the log's digest differs from the tree's after replay");
                        rec.digest_mismatches.push(zxid);
                    }
                }
            }
            Ok(())
        })?;
        if let Tail::Torn { offset, reason } = scan.tail {
            tracing::warn!(file = %path.display(), offset, reason = %reason, "torn tail in the transaction log (a write cut short by a crash)");
            if opts.repair {
                txnlog::truncate_log(path, offset)?;
                tracing::warn!(file = %path.display(), offset, "truncated the torn tail");
            }
            rec.torn.push((path.clone(), offset, reason));
        }
    }
    if let Some((z, _, _)) = pending_digest {
        tracing::warn!(digest_zxid = %z, last = %last, "the log does not reach the snapshot's digest zxid");
    }
    // loadData: sessions with ephemerals that are not in the session table are dead.
    for s in tree.sessions_with_ephemerals() {
        if !sessions.contains_key(&s.0) {
            let paths = tree.get_ephemerals(s);
            let hdr = TxnHeader { client_id: s, cxid: 0, zxid: last, time: 0, op: OpCode::CloseSession.code() };
            tree.apply(&hdr, &Txn::CloseSession { paths_to_delete: paths });
            rec.dead_sessions.push(s);
        }
    }
    if tree.last_processed_zxid() < last {
        tree.set_last_processed_zxid(last);
    }
    rec.last_zxid = last;
    rec.tree = tree;
    rec.sessions = sessions;
    Ok(rec)
}
