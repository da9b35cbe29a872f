//! A file rolled by size into `.1` … `.N`, as log4j's RollingFileAppender rolls: the audit
//! log and (with `zookeeper.log.dir`) the server's own log.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

/// A file rolled by size into `.1` … `.N`.
pub struct RollingFile {
    pub path: PathBuf,
    out: BufWriter<File>,
    bytes: u64,
    bytes_max: u64,
    backups: u32,
}

impl RollingFile {
    pub fn open(path: PathBuf, bytes_max: u64, backups: u32) -> io::Result<RollingFile> {
        let f = OpenOptions::new().create(true).append(true).open(&path)?;
        let bytes = f.metadata()?.len();
        Ok(RollingFile { path, out: BufWriter::new(f), bytes, bytes_max, backups })
    }

    /// The path of the i-th rolled file (`.i`).
    pub fn backup(&self, i: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{i}"));
        PathBuf::from(p)
    }

    pub fn write_line(&mut self, text: &str) -> io::Result<()> {
        if self.bytes >= self.bytes_max {
            self.roll()?;
        }
        self.out.write_all(text.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.bytes += text.len() as u64 + 1;
        Ok(())
    }

    fn roll(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let _ = std::fs::remove_file(self.backup(self.backups));
        for i in (1..self.backups).rev() {
            let from = self.backup(i);
            if from.exists() {
                std::fs::rename(&from, self.backup(i + 1))?;
            }
        }
        std::fs::rename(&self.path, self.backup(1))?;
        let f = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.out = BufWriter::new(f);
        self.bytes = 0;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The server's log through `tracing`: each event is one write, rolled before it when the
/// file is full.
impl Write for RollingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes >= self.bytes_max {
            self.roll()?;
        }
        self.out.write_all(buf)?;
        self.bytes += buf.len() as u64;
        // A log line is on disk before the next event (a crash leaves its last words).
        self.out.flush()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
