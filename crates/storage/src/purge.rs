//! Purge (ZooKeeper's `PurgeTxnLog`): keep the newest `retain` snapshots that look valid,
//! and every log file their recovery needs — the files named after a later zxid and the
//! newest one named at or before the oldest kept snapshot (it may hold the txns right after
//! it). Everything older goes. Run hourly by the server (`autopurge.purgeInterval`, on by
//! default in rzk) and by `rzk purge`.

use crate::snapshot::{self, tmp_name};
use crate::txnlog;
use crate::{io_err, StorageError};
use std::path::{Path, PathBuf};

/// ZooKeeper refuses to keep fewer than 3 snapshots.
pub const MIN_RETAIN: usize = 3;

/// What a purge removed.
#[derive(Debug, Default)]
pub struct PurgeReport {
    pub removed: Vec<PathBuf>,
    pub kept_snapshots: Vec<PathBuf>,
}

/// Purges `snap_dir` and `log_dir` (the `version-2` directories), keeping `retain` snapshots.
pub fn purge(snap_dir: &Path, log_dir: &Path, retain: usize) -> Result<PurgeReport, StorageError> {
    if retain < MIN_RETAIN {
        return Err(StorageError::Invalid(format!("snapRetainCount must be at least {MIN_RETAIN}, got {retain}")));
    }
    let snaps = snapshot::list_snapshots(snap_dir)?;
    let kept: Vec<_> = snaps.iter().rev().filter(|(_, p)| snapshot::looks_valid(p)).take(retain).cloned().collect();
    let mut report = PurgeReport { kept_snapshots: kept.iter().map(|(_, p)| p.clone()).collect(), ..Default::default() };
    let Some((least, _)) = kept.last().cloned() else { return Ok(report) };
    let logs = txnlog::list_logs(log_dir)?;
    let needed = txnlog::logs_from(&logs, least);
    let mut doomed: Vec<PathBuf> =
        logs.iter().filter(|(z, p)| *z < least && !needed.iter().any(|(_, n)| n == p)).map(|(_, p)| p.clone()).collect();
    doomed.extend(snaps.iter().filter(|(z, _)| *z < least).map(|(_, p)| p.clone()));
    for p in doomed {
        if crate::remove_file(&p)? {
            tracing::info!(file = %p.display(), "purged");
            report.removed.push(p);
        }
    }
    Ok(report)
}

/// Removes snapshot temp files a crash left behind (never taken for snapshots, but they
/// take space). Only for use before the server starts writing.
pub fn remove_stale_temps(snap_dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(snap_dir) else { return Ok(out) };
    let probe = tmp_name(rzk_proto::Zxid(0), crate::Compression::Checked);
    let prefix = &probe[..probe.find('.').map_or(0, |i| i + 1)];
    for e in rd.flatten() {
        let name = e.file_name();
        if name.to_str().is_some_and(|n| n.starts_with(prefix)) {
            std::fs::remove_file(e.path()).map_err(|x| io_err(&e.path(), x))?;
            out.push(e.path());
        }
    }
    Ok(out)
}
