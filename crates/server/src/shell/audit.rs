//! The audit log's file (`audit.enable`): the lines the pure core decides
//! ([`crate::core::audit`]), stamped and written by one thread of their own, as ZooKeeper's
//! shipped logging configuration writes its `zookeeper.audit` appender: to
//! `${zookeeper.log.dir}/${zookeeper.auditlog.file}` (default `./zookeeper_audit.log`), each
//! line `%d{ISO8601} %p %c{2}: %m` (`INFO`, or `ERROR` for a failure, then
//! `audit.Slf4jAuditLogger`, the category ZooKeeper's parsers expect), rolled at 10 MiB into
//! `.1` … `.10` (the oldest dropped), as its RollingFileAppender / FixedWindowRollingPolicy.
//! Times are UTC (ZooKeeper prints the JVM's local time).
//!
//! This module owns the writer thread and its bounded queue. The driver only hands events
//! over (`record` collects a turn's events, `send` passes them on as one batch, never
//! blocking): ZooKeeper's appender writes synchronously on the request thread, so a slow
//! disk slows its requests; here requests never wait for the audit file. If the writer falls
//! [`QUEUE_MAX`] events behind, further events are dropped and counted, and the writer puts
//! one `ERROR` line with the count in the file as soon as it can (and logs a warning), so a
//! gap in the audit trail is always visible in it.

use super::rolling::RollingFile;
use crate::core::audit::{AuditEvent, AuditResult, OP_START, OP_STOP};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Events queued for the writer beyond which new ones are dropped (and counted).
pub const QUEUE_MAX: usize = 10_000;
/// Batches in the writer's channel, at most (each of at most [`QUEUE_MAX`] events; the events
/// queued are bounded by [`QUEUE_MAX`] in all).
const BATCHES_MAX: usize = 1024;
/// Size at which the file is rolled (ZooKeeper's `MaxFileSize` of 10MB).
pub const FILE_BYTES_MAX: u64 = 10 * 1024 * 1024;
/// Rolled files kept: `.1` (newest) to `.10` (ZooKeeper's `maxIndex` / `MaxBackupIndex`).
pub const BACKUPS_MAX: u32 = 10;
/// `%c{2}` of ZooKeeper's audit logger class.
const CATEGORY: &str = "audit.Slf4jAuditLogger";

struct Line {
    wall_ms: i64,
    event: AuditEvent,
}

/// The audit log of a running server.
pub struct AuditLog {
    tx: Option<SyncSender<Vec<Line>>>,
    /// This turn's events, not yet sent.
    batch: Vec<Line>,
    /// Events sent and not yet written (the writer counts them down).
    queued: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
    user: String,
    started: bool,
}

impl AuditLog {
    /// Opens (creating its directory, as ZooKeeper's appender does) the file and starts the
    /// writer. `user` is the server's user (`serverStart`, `serverStop`).
    pub fn open(path: &Path, user: String) -> io::Result<AuditLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = RollingFile::open(path.to_path_buf(), FILE_BYTES_MAX, BACKUPS_MAX)?;
        let (tx, rx) = sync_channel(BATCHES_MAX);
        let dropped = Arc::new(AtomicU64::new(0));
        let queued = Arc::new(AtomicUsize::new(0));
        let (d, q) = (dropped.clone(), queued.clone());
        let thread = std::thread::Builder::new().name("rzk-audit".into()).spawn(move || writer(file, rx, q, d))?;
        tracing::info!(file = %path.display(), "audit log enabled");
        Ok(AuditLog { tx: Some(tx), batch: Vec::new(), queued, dropped, thread: Some(thread), user, started: false })
    }

    /// Adds one event to this turn's batch ([`Self::send`] passes it on).
    pub fn record(&mut self, wall_ms: i64, event: AuditEvent) {
        if self.tx.is_some() {
            self.batch.push(Line { wall_ms, event });
        }
    }

    /// Hands this turn's events to the writer as one batch, or drops them (counted) when the
    /// writer is [`QUEUE_MAX`] events behind. Never waits.
    pub fn send(&mut self) {
        let Some(tx) = &self.tx else { return };
        if self.batch.is_empty() {
            return;
        }
        let n = self.batch.len();
        let fits = self.queued.load(Ordering::Acquire) + n <= QUEUE_MAX;
        let sent = fits && {
            self.queued.fetch_add(n, Ordering::AcqRel);
            match tx.try_send(std::mem::take(&mut self.batch)) {
                Ok(()) => true,
                Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) => {
                    self.queued.fetch_sub(n, Ordering::AcqRel);
                    self.batch = b;
                    false
                }
            }
        };
        if !sent {
            self.batch.clear();
            if self.dropped.fetch_add(n as u64, Ordering::Relaxed) == 0 {
                tracing::warn!(queue = QUEUE_MAX, "the audit log writer is behind; audit events are being dropped");
            }
        }
    }

    /// The server's user the events name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// `serverStart`: success once the server serves, failure if it stops before.
    pub fn server_started(&mut self, wall_ms: i64) {
        self.started = true;
        let e = AuditEvent::server(&self.user, OP_START, AuditResult::Success);
        self.record(wall_ms, e);
        self.send();
    }

    /// `serverStop` (`invoked`, as ZooKeeper's shutdown hook writes it), then everything
    /// queued is written and the file closed.
    pub fn stop(mut self, wall_ms: i64) {
        let e = AuditEvent::server(&self.user, OP_STOP, AuditResult::Invoked);
        self.record(wall_ms, e);
        self.finish();
    }

    fn finish(&mut self) {
        self.send();
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AuditLog {
    /// A server that fails before it serves: `serverStart` failure.
    fn drop(&mut self) {
        if !self.started && self.tx.is_some() {
            let e = AuditEvent::server(&self.user, OP_START, AuditResult::Failure);
            self.record(super::wall_ms(), e);
        }
        self.finish();
    }
}

/// The server's user, as Java's `user.name` is on Linux: the name of the process's uid in
/// `/etc/passwd`, else `$USER`, else `<NA>` (ZooKeeper's `Login.SYSTEM_USER` fallback).
pub fn server_user() -> String {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(1).map(str::to_string)));
    let from_passwd = uid.and_then(|uid| {
        std::fs::read_to_string("/etc/passwd")
            .ok()?
            .lines()
            .find(|l| l.split(':').nth(2) == Some(uid.as_str()))
            .and_then(|l| l.split(':').next().map(str::to_string))
    });
    from_passwd.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "<NA>".into())
}

fn writer(mut file: RollingFile, rx: Receiver<Vec<Line>>, queued: Arc<AtomicUsize>, dropped: Arc<AtomicU64>) {
    let mut reported_drops = 0u64;
    let mut failing = false;
    let mut write = |file: &mut RollingFile, text: &str| match file.write_line(text) {
        Ok(()) => failing = false,
        Err(e) => {
            if !failing {
                tracing::error!(error = %e, file = %file.path.display(), "cannot write the audit log");
            }
            failing = true;
        }
    };
    let mut text = String::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(batch) = next {
            for line in &batch {
                let level = if line.event.result == AuditResult::Failure { "ERROR" } else { "INFO" };
                text.clear();
                text.push_str(&iso8601_utc(line.wall_ms));
                text.push(' ');
                text.push_str(level);
                text.push(' ');
                text.push_str(CATEGORY);
                text.push_str(": ");
                text.push_str(&line.event.message());
                write(&mut file, &text);
            }
            queued.fetch_sub(batch.len(), Ordering::AcqRel);
            next = rx.try_recv().ok();
        }
        let d = dropped.load(Ordering::Relaxed);
        if d > reported_drops {
            let msg = format!(
                "{} ERROR {CATEGORY}: rzk dropped {} audit events: the audit log writer was {QUEUE_MAX} events behind",
                iso8601_utc(super::wall_ms()),
                d - reported_drops
            );
            tracing::warn!(dropped = d - reported_drops, "audit events dropped");
            write(&mut file, &msg);
            reported_drops = d;
        }
        if let Err(e) = file.flush() {
            tracing::error!(error = %e, "cannot flush the audit log");
        }
    }
    let _ = file.flush();
}

/// log4j's / logback's `%d{ISO8601}`: `yyyy-MM-dd HH:mm:ss,SSS`, here in UTC.
pub fn iso8601_utc(wall_ms: i64) -> String {
    let t = rzk_proto::time::UtcTime::from_ms(wall_ms);
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}", t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh directory under the system's temp dir, removed on drop.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!("rzk-audit-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn iso8601() {
        assert_eq!(iso8601_utc(0), "1970-01-01 00:00:00,000");
        assert_eq!(iso8601_utc(1_796_617_445_123), "2026-12-07 04:24:05,123");
        assert_eq!(iso8601_utc(951_782_400_000), "2000-02-29 00:00:00,000");
    }

    #[test]
    fn rolls_by_size_and_keeps_n_backups() {
        let dir = TempDir::new("roll");
        let path = dir.path().join("zookeeper_audit.log");
        let mut f = RollingFile::open(path.clone(), 100, 3).unwrap();
        for i in 0..40 {
            f.write_line(&format!("line {i:03} ......................")).unwrap();
        }
        f.flush().unwrap();
        let names: Vec<String> = {
            let mut v: Vec<String> =
                std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            v.sort();
            v
        };
        assert_eq!(names, ["zookeeper_audit.log", "zookeeper_audit.log.1", "zookeeper_audit.log.2", "zookeeper_audit.log.3"]);
        let current = std::fs::read_to_string(&path).unwrap();
        assert!(current.ends_with("line 039 ......................\n"), "{current}");
        assert!(std::fs::metadata(f.backup(1)).unwrap().len() >= 100);
    }

    /// A writer that fell behind: what was queued is written, then one ERROR line with the
    /// number of events dropped.
    #[test]
    fn dropped_events_are_counted_in_the_file() {
        let dir = TempDir::new("drops");
        let path = dir.path().join("zookeeper_audit.log");
        let file = RollingFile::open(path.clone(), FILE_BYTES_MAX, BACKUPS_MAX).unwrap();
        let (tx, rx) = sync_channel(BATCHES_MAX);
        let dropped = Arc::new(AtomicU64::new(0));
        // The writer is QUEUE_MAX - 2 events behind already.
        let queued = Arc::new(AtomicUsize::new(QUEUE_MAX - 2));
        let mut log = AuditLog {
            tx: Some(tx),
            batch: Vec::new(),
            queued: queued.clone(),
            dropped: dropped.clone(),
            thread: None,
            user: "zk".into(),
            started: true,
        };
        for i in 0..2 {
            log.record(i, AuditEvent::server("zk", OP_START, AuditResult::Success));
        }
        log.send();
        for i in 0..3 {
            log.record(i, AuditEvent::server("zk", OP_START, AuditResult::Success));
        }
        log.send();
        assert_eq!(dropped.load(Ordering::Relaxed), 3);
        drop(log);
        queued.store(2, Ordering::Relaxed);
        writer(file, rx, queued.clone(), dropped);
        assert_eq!(queued.load(Ordering::Relaxed), 0);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[2].contains(" ERROR audit.Slf4jAuditLogger: rzk dropped 3 audit events"), "{text}");
    }

    #[test]
    fn writes_start_events_and_stop() {
        let dir = TempDir::new("start");
        let path = dir.path().join("logs").join("zookeeper_audit.log");
        let mut log = AuditLog::open(&path, "zk".into()).unwrap();
        log.server_started(0);
        log.stop(1000);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "1970-01-01 00:00:00,000 INFO audit.Slf4jAuditLogger: user=zk\toperation=serverStart\tresult=success\n\
             1970-01-01 00:00:01,000 INFO audit.Slf4jAuditLogger: user=zk\toperation=serverStop\tresult=invoked\n"
        );
        // A server that never served: serverStart failure, at ERROR.
        drop(AuditLog::open(&path, "zk".into()).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.lines().last().unwrap().contains(" ERROR audit.Slf4jAuditLogger: user=zk\toperation=serverStart\tresult=failure"),
            "{text}"
        );
    }
}
