//! The transaction log on disk: `log.<first zxid hex>` files under `dataLogDir/version-2`.
//!
//! Writing ([`TxnLog`]): a new file per start and per roll, named after its first txn, with
//! the `ZKLG` header; entries are written with positioned writes at the logical end, and the
//! file is extended (sparse, as ZooKeeper's `FilePadding` does) in `preAllocSize` blocks so
//! the fdatasync of a batch rarely has to change the file size. A batch that fails for lack
//! of space is taken back out of the file (truncate, re-extend, fdatasync), so a refused txn
//! can never be found by recovery.
//!
//! Reading ([`scan_log_file`]): entries are checked one by one (Adler-32, length bounds,
//! end-of-record byte, the record decodes). An invalid or incomplete entry is a *torn tail*
//! when nothing valid follows it in the file (a write cut short by a crash: never fsynced,
//! never acknowledged); if a valid entry follows, the file is corrupt in the middle and the
//! error names the file and offset.

use crate::format::{self, LogEntry, FILE_HEADER_BYTES, TXNLOG_MAGIC};
use crate::{io_err, StorageError};
use rzk_proto::txn::TxnRecord;
use rzk_proto::Zxid;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Why a batch could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The disk (or quota) is full: the batch was taken back out; later writes may succeed.
    #[error("no space left to write the transaction log ({0})")]
    NoSpace(io::Error),
    /// Anything else: the log can no longer be trusted.
    #[error("cannot write the transaction log {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == 28 /* ENOSPC */ || code == 122 /* EDQUOT */) || e.kind() == io::ErrorKind::StorageFull
}

struct OpenLog {
    file: File,
    path: PathBuf,
    /// The logical end: where the next entry goes.
    position: u64,
    /// The file's size including preallocated zeros.
    size: u64,
    txns: u64,
    first_zxid: Zxid,
}

/// The log writer. Not thread-safe by design: one storage worker owns it.
pub struct TxnLog {
    dir: PathBuf,
    current: Option<OpenLog>,
    prealloc_bytes: u64,
    force_sync: bool,
}

impl TxnLog {
    /// A writer over `dir` (the `version-2` directory, which must exist). No file is opened
    /// until the first append; as in ZooKeeper, every start writes a new file.
    pub fn new(dir: &Path, prealloc_bytes: u64, force_sync: bool) -> TxnLog {
        TxnLog { dir: dir.to_path_buf(), current: None, prealloc_bytes, force_sync }
    }

    /// Txns written to the current file (ZooKeeper's `getTxnCount`, reset by a roll).
    pub fn txns_in_current(&self) -> u64 {
        self.current.as_ref().map_or(0, |c| c.txns)
    }

    pub fn current_file(&self) -> Option<&Path> {
        self.current.as_ref().map(|c| c.path.as_path())
    }

    fn create(&mut self, first_zxid: Zxid) -> Result<(), AppendError> {
        let path = self.dir.join(format::log_file_name(first_zxid));
        let io = |source| AppendError::Io { path: path.clone(), source };
        // A leftover from a batch that failed before anything in it was acknowledged.
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).map_err(|e| {
            if is_no_space(&e) {
                AppendError::NoSpace(e)
            } else {
                io(e)
            }
        })?;
        let header = format::encode_file_header(TXNLOG_MAGIC, format::LOG_DBID);
        if let Err(e) = file.write_all_at(&header, 0) {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(if is_no_space(&e) { AppendError::NoSpace(e) } else { io(e) });
        }
        // The new name must be durable before anything in the file is acknowledged.
        sync_dir(&self.dir).map_err(io)?;
        tracing::info!(file = %path.display(), "creating new log file");
        self.current =
            Some(OpenLog { file, path, position: FILE_HEADER_BYTES as u64, size: FILE_HEADER_BYTES as u64, txns: 0, first_zxid });
        Ok(())
    }

    /// Writes encoded entries (`count` txns, the first being `first_zxid`) at the end of the
    /// log. Not durable until [`TxnLog::sync`]. On `NoSpace` the log is as it was before.
    pub fn write(&mut self, first_zxid: Zxid, bytes: &[u8], count: u64) -> Result<(), AppendError> {
        let fresh = self.current.is_none();
        if fresh {
            self.create(first_zxid)?;
        }
        let prealloc = self.prealloc_bytes;
        let cur = self.current.as_mut().expect("open log");
        let start = cur.position;
        let end = start + bytes.len() as u64;
        let result = (|| {
            let want = format::padded_file_size(end, cur.size, prealloc).max(end);
            if want != cur.size {
                cur.file.set_len(want)?;
                cur.size = want;
            }
            cur.file.write_all_at(bytes, start)
        })();
        match result {
            Ok(()) => {
                cur.position = end;
                cur.txns += count;
                Ok(())
            }
            Err(e) if is_no_space(&e) => {
                // Take the batch back out: drop whatever reached the file, fdatasync the
                // shorter file so a crash cannot bring a refused txn back.
                let path = cur.path.clone();
                let undo = (|| {
                    cur.file.set_len(start)?;
                    cur.size = start;
                    cur.file.sync_data()
                })();
                if let Err(u) = undo {
                    return Err(AppendError::Io { path, source: u });
                }
                if fresh && cur.txns == 0 {
                    self.current = None;
                    let _ = std::fs::remove_file(&path);
                    let _ = sync_dir(&self.dir);
                }
                Err(AppendError::NoSpace(e))
            }
            Err(e) => Err(AppendError::Io { path: cur.path.clone(), source: e }),
        }
    }

    /// Makes everything written durable (fdatasync; skipped with `forceSync=no`).
    pub fn sync(&mut self) -> io::Result<()> {
        match &self.current {
            Some(c) if self.force_sync => c.file.sync_data(),
            _ => Ok(()),
        }
    }

    /// Closes the current file (synced); the next write starts `log.<its zxid>`. Like
    /// ZooKeeper, the closed file keeps its preallocated zeros.
    pub fn roll(&mut self) -> io::Result<()> {
        if let Some(c) = self.current.take() {
            if self.force_sync {
                c.file.sync_data()?;
            }
            tracing::debug!(file = %c.path.display(), txns = c.txns, first = %c.first_zxid, "rolled log");
        }
        Ok(())
    }
}

/// fsyncs a directory, so names created or renamed in it survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What the end of a log file looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// End of file, or the zero padding.
    Clean,
    /// An entry cut short (or never completely written) at `offset`, with nothing valid
    /// after it: a crash during a write that was never acknowledged.
    Torn { offset: u64, reason: String },
}

/// What [`scan_log_file`] found.
#[derive(Debug, Clone)]
pub struct LogScan {
    pub dbid: i64,
    pub entries: u64,
    pub first_zxid: Option<Zxid>,
    pub last_zxid: Option<Zxid>,
    /// The offset just after the last valid entry.
    pub end: u64,
    pub tail: Tail,
}

const READ_CHUNK: usize = 1 << 20;
/// How much after a bad entry is searched for a valid one before calling the file corrupt.
const RESYNC_WINDOW_BYTES: u64 = 256 << 20;

/// Reads every entry of a log file in order, calling `f(offset, record)` for each.
/// `max_entry_bytes` bounds an entry's length (`jute.maxbuffer` plus headroom).
pub fn scan_log_file(
    path: &Path,
    max_entry_bytes: usize,
    mut f: impl FnMut(u64, TxnRecord) -> Result<(), StorageError>,
) -> Result<LogScan, StorageError> {
    scan_log_file_raw(path, max_entry_bytes, |pos, rec, _| f(pos, rec))
}

/// [`scan_log_file`], also giving each entry's bytes as stored (TxnHeader, txn, optional
/// digest: what a PROPOSAL carries).
pub fn scan_log_file_raw(
    path: &Path,
    max_entry_bytes: usize,
    mut f: impl FnMut(u64, TxnRecord, &[u8]) -> Result<(), StorageError>,
) -> Result<LogScan, StorageError> {
    let mut file = File::open(path).map_err(|e| io_err(path, e))?;
    let file_len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let corrupt = |offset: u64, reason: String| StorageError::CorruptLog { path: path.to_path_buf(), offset, reason };
    let mut header = [0u8; FILE_HEADER_BYTES];
    let n = read_up_to(&mut file, &mut header).map_err(|e| io_err(path, e))?;
    if n < FILE_HEADER_BYTES {
        // Created, header never completely written: a crash right at a roll.
        let tail = Tail::Torn { offset: 0, reason: format!("file header incomplete ({n} bytes)") };
        return Ok(LogScan { dbid: 0, entries: 0, first_zxid: None, last_zxid: None, end: 0, tail });
    }
    let dbid = format::decode_file_header(&header, TXNLOG_MAGIC).map_err(|e| corrupt(0, e.0))?;
    let mut scan = LogScan { dbid, entries: 0, first_zxid: None, last_zxid: None, end: FILE_HEADER_BYTES as u64, tail: Tail::Clean };
    // buf holds file bytes [buf_start, buf_start + buf.len()).
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut buf_start = FILE_HEADER_BYTES as u64;
    let mut pos = FILE_HEADER_BYTES as u64;
    let mut eof = false;
    loop {
        let rel = (pos - buf_start) as usize;
        let decoded = format::decode_log_entry(&buf[rel..], max_entry_bytes);
        match decoded {
            LogEntry::Incomplete { needed } if !eof => {
                // Slide the window and read more.
                buf.drain(..rel);
                buf_start = pos;
                let want = needed.max(READ_CHUNK);
                let got = fill(&mut file, &mut buf, want).map_err(|e| io_err(path, e))?;
                if got == 0 {
                    eof = true;
                }
                continue;
            }
            LogEntry::Entry { body, len } => {
                let body = &buf[rel + body.start..rel + body.end];
                let rec = TxnRecord::from_bytes(body)
                    .map_err(|e| corrupt(pos, format!("entry has a valid checksum but does not decode: {e}")))?;
                let zxid = rec.header.zxid;
                if let Some(last) = scan.last_zxid {
                    if zxid <= last {
                        return Err(corrupt(pos, format!("zxid {zxid} does not follow {last}")));
                    }
                }
                scan.first_zxid.get_or_insert(zxid);
                scan.last_zxid = Some(zxid);
                scan.entries += 1;
                f(pos, rec, body)?;
                pos += len as u64;
                scan.end = pos;
            }
            LogEntry::End => {
                // Padding. Anything valid after it means the zeros are damage, not padding.
                if let Some(at) = find_valid_entry_after(&mut file, file_len, pos + 1, max_entry_bytes).map_err(|e| io_err(path, e))? {
                    return Err(corrupt(pos, format!("zeros in the middle of the log; a valid entry follows at offset {at}")));
                }
                return Ok(scan);
            }
            LogEntry::Incomplete { .. } | LogEntry::Invalid(_) => {
                let reason = match decoded {
                    LogEntry::Invalid(r) => r,
                    _ => "entry cut short by the end of the file".to_string(),
                };
                if pos + FILE_HEADER_BYTES as u64 > file_len && buf[rel..].iter().all(|b| *b == 0) {
                    return Ok(scan);
                }
                match find_valid_entry_after(&mut file, file_len, pos + 1, max_entry_bytes).map_err(|e| io_err(path, e))? {
                    Some(at) => {
                        return Err(corrupt(pos, format!("{reason}; a valid entry follows at offset {at}, so this is not a torn tail")))
                    }
                    None => {
                        scan.tail = Tail::Torn { offset: pos, reason };
                        return Ok(scan);
                    }
                }
            }
        }
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = file.read(&mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// Appends up to `want` more bytes from `file` to `buf`; returns how many.
fn fill(file: &mut File, buf: &mut Vec<u8>, want: usize) -> io::Result<usize> {
    let old = buf.len();
    buf.resize(old + want, 0);
    let n = read_up_to(file, &mut buf[old..])?;
    buf.truncate(old + n);
    Ok(n)
}

/// Looks for any offset at or after `from` where a whole valid entry that decodes starts.
/// Beyond the search window the answer is "yes" (unknown is treated as corrupt).
fn find_valid_entry_after(file: &mut File, file_len: u64, from: u64, max_entry_bytes: usize) -> io::Result<Option<u64>> {
    if from >= file_len {
        return Ok(None);
    }
    let window = (file_len - from).min(RESYNC_WINDOW_BYTES);
    // The common case is the preallocated zero padding up to the window's end: stream it in
    // chunks through one buffer, and read the rest whole only from just before a nonzero byte
    // (a valid entry starts at most ENTRY_LOOKBACK bytes before one).
    file.seek(SeekFrom::Start(from))?;
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut skipped = 0u64;
    let start = loop {
        let want = (window - skipped).min(READ_CHUNK as u64) as usize;
        let n = if want == 0 { 0 } else { read_up_to(file, &mut chunk[..want])? };
        if let Some(off) = first_nonzero(&chunk[..n]) {
            break (skipped + off as u64).saturating_sub(ENTRY_LOOKBACK as u64);
        }
        if n < want || want == 0 {
            // Zeros to the window's end (or to the file's, if it shrank meanwhile).
            return Ok((window < file_len - from).then_some(from + window));
        }
        skipped += n as u64;
    };
    drop(chunk);
    let from = from + start;
    let window = window - start;
    file.seek(SeekFrom::Start(from))?;
    let mut rest = Vec::with_capacity(window as usize);
    file.take(window).read_to_end(&mut rest)?;
    let mut k = 0usize;
    while k < rest.len() {
        // Skip zeros fast; a valid entry starts at most 12 bytes before a nonzero byte
        // (its checksum's first four bytes are always zero).
        match rest[k..].iter().position(|b| *b != 0) {
            None => break,
            Some(off) => k += off,
        }
        let lo = k.saturating_sub(ENTRY_LOOKBACK);
        for q in lo..=k {
            if let LogEntry::Entry { body, .. } = format::decode_log_entry(&rest[q..], max_entry_bytes) {
                if TxnRecord::from_bytes(&rest[q + body.start..q + body.end]).is_ok() {
                    return Ok(Some(from + q as u64));
                }
            }
        }
        k += 1;
    }
    if window < file_len - from {
        return Ok(Some(from + window));
    }
    Ok(None)
}

const ENTRY_LOOKBACK: usize = 12;

/// The offset of the first nonzero byte: blocks are OR-ed first (which vectorizes), as a
/// restart passes over tens of MB of a log's zero padding.
fn first_nonzero(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    for c in b.chunks(4096) {
        if c.iter().fold(0u8, |a, &x| a | x) != 0 {
            return c.iter().position(|&x| x != 0).map(|i| at + i);
        }
        at += c.len();
    }
    None
}

/// Cuts a log file at `offset` (dropping a torn tail) and fsyncs it.
pub fn truncate_log(path: &Path, offset: u64) -> Result<(), StorageError> {
    let f = OpenOptions::new().write(true).open(path).map_err(|e| io_err(path, e))?;
    f.set_len(offset).map_err(|e| io_err(path, e))?;
    f.sync_all().map_err(|e| io_err(path, e))
}

/// The log files in `dir`, sorted by the zxid in their names.
pub fn list_logs(dir: &Path) -> Result<Vec<(Zxid, PathBuf)>, StorageError> {
    crate::list_files(dir, "log")
}

/// `FileTxnLog.getLogFiles`: the files that may hold txns after `snap_zxid` — every file
/// named after a later zxid, plus the newest one named at or before it.
pub fn logs_from(logs: &[(Zxid, PathBuf)], snap_zxid: Zxid) -> Vec<(Zxid, PathBuf)> {
    let start = logs.iter().rposition(|(z, _)| *z <= snap_zxid).unwrap_or(0);
    logs[start..].to_vec()
}
