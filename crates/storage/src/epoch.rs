//! The two epoch files of an ensemble member, `acceptedEpoch` and `currentEpoch`, in the
//! snapshot directory (`dataDir/version-2`), exactly as ZooKeeper 3.8's `QuorumPeer` keeps
//! them.
//!
//! Format (`writeLongToFile`): the epoch as decimal text (`Long.toString`), no newline.
//! Reading (`readLongFromFile`): the first line, parsed as a Java `long`; anything else is an
//! error naming the file and what it holds.
//!
//! Writing is atomic as `AtomicFileWritingIdiom` does it: the value goes to `<name>.tmp` in
//! the same directory, which is fsynced and renamed over `<name>`; rzk also fsyncs the
//! directory so the rename survives a crash (ZooKeeper does not). A crash before the rename
//! leaves `<name>.tmp` holding the new value; [`load_epochs`] uses a `currentEpoch.tmp`
//! exactly when ZooKeeper does (the log is already ahead of `currentEpoch`).

use crate::txnlog::sync_dir;
use crate::{io_err, StorageError};
use rzk_proto::Zxid;
use std::io::Write;
use std::path::Path;

/// `QuorumPeer.ACCEPTED_EPOCH_FILENAME`.
pub const ACCEPTED_EPOCH: &str = "acceptedEpoch";
/// `QuorumPeer.CURRENT_EPOCH_FILENAME`.
pub const CURRENT_EPOCH: &str = "currentEpoch";
/// `AtomicFileOutputStream.TMP_EXTENSION`.
pub const TMP_EXTENSION: &str = ".tmp";

fn check_name(name: &str) -> Result<(), StorageError> {
    if name == ACCEPTED_EPOCH || name == CURRENT_EPOCH || name == "currentEpoch.tmp" || name == "acceptedEpoch.tmp" {
        Ok(())
    } else {
        Err(StorageError::Invalid(format!("{name:?} is not an epoch file (acceptedEpoch or currentEpoch)")))
    }
}

/// Parses an epoch file's bytes as `readLongFromFile` does: the first line (ended by `\n`,
/// `\r` or `\r\n`) must be a Java `long`, and for rzk also a valid epoch (0..=u32::MAX).
pub fn parse_epoch(bytes: &[u8]) -> Result<u32, String> {
    let end = bytes.iter().position(|b| *b == b'\n' || *b == b'\r').unwrap_or(bytes.len());
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let line = std::str::from_utf8(&bytes[..end]).map_err(|_| "the file is not text".to_string())?;
    // Long.parseLong: optional sign, ASCII digits, no spaces.
    let v: i64 = line.parse().map_err(|_| format!("found {line:?}, expected a number"))?;
    u32::try_from(v).map_err(|_| format!("found {v}, which is not an epoch (0..={})", u32::MAX))
}

/// Reads `snap_dir/<name>` (`"acceptedEpoch"` or `"currentEpoch"`); `None` if it does not
/// exist.
pub fn read_epoch(snap_dir: &Path, name: &str) -> Result<Option<u32>, StorageError> {
    check_name(name)?;
    let path = snap_dir.join(name);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path, e)),
    };
    parse_epoch(&bytes).map(Some).map_err(|why| StorageError::Invalid(format!("{}: {why}; refusing to guess the epoch", path.display())))
}

/// Writes `snap_dir/<name>` atomically and durably (see the module docs). When it returns
/// Ok, the new value survives a crash.
pub fn write_epoch(snap_dir: &Path, name: &str, epoch: u32) -> Result<(), StorageError> {
    check_name(name)?;
    let path = snap_dir.join(name);
    let tmp = snap_dir.join(format!("{name}{TMP_EXTENSION}"));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(epoch.to_string().as_bytes())?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(&tmp, e));
    }
    std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    sync_dir(snap_dir).map_err(|e| io_err(snap_dir, e))
}

/// Both epochs, as an ensemble member starts with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epochs {
    pub accepted: u32,
    pub current: u32,
}

/// `QuorumPeer.loadDataBase`'s epoch part. `last_zxid` is the last zxid the server holds
/// (ZooKeeper: the tree after replaying the whole log; rzk: the last logged zxid,
/// [`crate::ensemble::EnsembleRecovered::last_logged`]).
///
/// - A missing file is created with the epoch of `last_zxid` (a data directory from a
///   standalone server, or one older than the files), as ZooKeeper does.
/// - `currentEpoch` below the epoch of `last_zxid`: a crash between writing
///   `currentEpoch.tmp` and renaming it; its value is taken (and written) if it exists,
///   otherwise the directory is inconsistent and this is an error.
/// - `acceptedEpoch` below `currentEpoch` is an error.
pub fn load_epochs(snap_dir: &Path, last_zxid: Zxid) -> Result<Epochs, StorageError> {
    let of_zxid = last_zxid.epoch();
    let mut current = match read_epoch(snap_dir, CURRENT_EPOCH)? {
        Some(e) => e,
        None => {
            tracing::info!(
                epoch = of_zxid,
                "currentEpoch not found; creating it from the last zxid (a standalone or older data directory)"
            );
            write_epoch(snap_dir, CURRENT_EPOCH, of_zxid)?;
            of_zxid
        }
    };
    if of_zxid > current {
        let tmp_name = format!("{CURRENT_EPOCH}{TMP_EXTENSION}");
        match read_epoch(snap_dir, &tmp_name)? {
            Some(e) => {
                tracing::info!(epoch = e, "{tmp_name} found; setting the current epoch from it");
                write_epoch(snap_dir, CURRENT_EPOCH, e)?;
                current = e;
            }
            None => {
                return Err(StorageError::Invalid(format!(
                    "{}: the current epoch, {current}, is older than the last zxid, {last_zxid}",
                    snap_dir.join(CURRENT_EPOCH).display()
                )))
            }
        }
    }
    let accepted = match read_epoch(snap_dir, ACCEPTED_EPOCH)? {
        Some(e) => e,
        None => {
            tracing::info!(
                epoch = of_zxid,
                "acceptedEpoch not found; creating it from the last zxid (a standalone or older data directory)"
            );
            write_epoch(snap_dir, ACCEPTED_EPOCH, of_zxid)?;
            of_zxid
        }
    };
    if accepted < current {
        return Err(StorageError::Invalid(format!(
            "{}: the accepted epoch, {accepted}, is less than the current epoch, {current}",
            snap_dir.join(ACCEPTED_EPOCH).display()
        )));
    }
    Ok(Epochs { accepted, current })
}
