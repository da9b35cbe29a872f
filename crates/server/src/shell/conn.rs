//! One client connection: reads length-prefixed frames and hands them to the driver; writes
//! what the driver sends back. The first four bytes may instead spell a four-letter word.
//!
//! Back-pressure: a connection stops reading its socket while `outstanding_max` of its
//! requests are unanswered, and the driver's inbox is bounded, so a full server stops
//! reading sockets instead of queueing without limit. A malformed or oversized frame closes
//! only this connection, with the reason logged.
//!
//! The other way, the driver's frames wait in a bounded queue ([`ConnTx`]: at most
//! [`OUTBOUND_FRAMES_MAX`] frames and [`OUTBOUND_BYTES_MAX`] bytes). A client that stops
//! reading its replies and watch events fills it; the driver then cuts it off (`kill`), with
//! a logged reason, so the server's memory stays bounded and the driver never waits.

use super::{Event, Outbound};
use crate::core::fourlw::WORDS;
use rzk_proto::frame::{self, FrameStatus};
use rzk_proto::Id;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

/// Frames queued for one client beyond which it is disconnected.
pub const OUTBOUND_FRAMES_MAX: usize = 16 * 1024;
/// Bytes queued for one client beyond which it is disconnected (the client is not reading
/// what it is sent).
pub const OUTBOUND_BYTES_MAX: usize = 128 << 20;
/// What an idle connection keeps of its read and write buffers: they grow while a client
/// keeps them busy (up to [`READ_CHUNK_BYTES_MAX`] per read, [`WRITE_BATCH_BYTES`] per
/// write) and are given back when it goes quiet, so 100,000 idle sessions cost little.
pub const IDLE_BUF_BYTES: usize = 4 * 1024;
/// The most reserved for one socket read (a busy, pipelining client's reads double up to it).
pub const READ_CHUNK_BYTES_MAX: usize = 64 * 1024;
/// Replies gathered into one socket write before it is made.
pub const WRITE_BATCH_BYTES: usize = 64 * 1024;
/// How long a closed connection may take to write its last frames (a client that stopped
/// reading would otherwise hold its socket until it goes away).
pub const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The driver's handle on one connection: its bounded outbound queue, and a way to cut it
/// off at once when it stops reading what it is sent.
#[derive(Debug)]
pub struct ConnTx {
    frames: mpsc::Sender<Outbound>,
    queued_bytes: Arc<AtomicUsize>,
    kill: Arc<Notify>,
    closing: Arc<Notify>,
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The connection task is gone (the connection closed).
    Closed,
    /// The queue is full: the client does not read.
    Full,
}

impl ConnTx {
    /// Queues a frame without waiting.
    pub fn send(&self, out: Outbound) -> Result<(), SendError> {
        let n = match &out {
            Outbound::Frame { bytes, .. } => bytes.len(),
            Outbound::Close(_) => 0,
        };
        if self.queued_bytes.load(Ordering::Relaxed) + n > OUTBOUND_BYTES_MAX {
            return Err(SendError::Full);
        }
        match self.frames.try_send(out) {
            Ok(()) => {
                self.queued_bytes.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(SendError::Full),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Closed),
        }
    }

    /// Sends what is queued, then closes; a full queue closes at once, and a client that
    /// does not take what is queued within [`CLOSE_GRACE`] is cut off then.
    pub fn close(&self, reason: String) {
        if self.send(Outbound::Close(reason)).is_err() {
            self.kill();
        } else {
            self.closing.notify_one();
        }
    }

    /// Closes the connection at once, dropping what is queued.
    pub fn kill(&self) {
        self.kill.notify_one();
    }
}
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// The largest frame payload accepted (`jute.maxbuffer`).
    pub frame_bytes_max: usize,
    /// Unanswered requests after which the socket is not read.
    pub outstanding_max: usize,
    /// Whether `4lw.commands.whitelist` allows `stmk`: only then is its 8-byte mask read
    /// after the word (ZooKeeper checks the whitelist first and answers a refused word at once).
    pub stmk_allowed: bool,
}

/// Serves one connection over any byte stream: a plain TCP stream or a TLS stream after
/// its handshake (`auth` then holds the ids the x509 provider gave it).
pub async fn run<S>(
    stream: S,
    conn: u64,
    peer: SocketAddr,
    auth: Vec<Id>,
    inbox: mpsc::Sender<Event>,
    limits: ConnLimits,
    _permit: super::ConnPermit,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (frames, mut rx) = mpsc::channel::<Outbound>(OUTBOUND_FRAMES_MAX);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let kill = Arc::new(Notify::new());
    let closing = Arc::new(Notify::new());
    let tx = ConnTx { frames, queued_bytes: queued_bytes.clone(), kill: kill.clone(), closing: closing.clone() };
    if to_driver(&inbox, Event::Accepted { conn, peer, auth, tx }).await.is_err() {
        return;
    }
    // `biased`: polled in this order, without drawing a random start (tokio's fairness
    // draw cost ~440 instructions per churned session over the two selects here).
    let reason = tokio::select! {
        biased;
        r = serve(stream, conn, &inbox, limits, &mut rx, &queued_bytes) => r,
        _ = kill.notified() => "the client does not read what it is sent (outbound queue full)".to_string(),
        _ = async { closing.notified().await; tokio::time::sleep(CLOSE_GRACE).await } => {
            "closed; the client did not take its last frames in time".to_string()
        }
    };
    if reason.starts_with("the client does not read") || reason.starts_with("closed; the client did not take") {
        tracing::warn!(conn, %peer, reason = %reason, "connection closed");
    } else {
        tracing::debug!(conn, %peer, reason = %reason, "connection closed");
    }
    let _ = to_driver(&inbox, Event::Closed { conn }).await;
}

/// Hands an event to the driver: at once when the bounded inbox has room (a `try_send`,
/// cheaper than `send`'s reservation future), else waiting for room as `send` does.
async fn to_driver(inbox: &mpsc::Sender<Event>, ev: Event) -> Result<(), ()> {
    match inbox.try_send(ev) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Full(ev)) => inbox.send(ev).await.map_err(|_| ()),
        Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
    }
}

/// Reads requests and writes replies until the connection ends; returns why. Reading and
/// writing run side by side: a client that does not read its replies is still read (up to
/// `outstanding_max` unanswered requests), so its replies fill the bounded queue and it is
/// cut off, instead of the connection hanging on a blocked write.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    conn: u64,
    inbox: &mpsc::Sender<Event>,
    limits: ConnLimits,
    rx: &mut mpsc::Receiver<Outbound>,
    queued_bytes: &AtomicUsize,
) -> String {
    let (rd, wr) = tokio::io::split(stream);
    // Unanswered requests: counted up by the reader, down by the writer.
    let outstanding = AtomicUsize::new(0);
    let answered = Notify::new();
    tokio::select! {
        biased;
        r = write_replies(wr, rx, queued_bytes, &outstanding, &answered) => r,
        r = read_requests(rd, conn, inbox, limits, &outstanding, &answered) => r,
    }
}

/// Writes the driver's frames (everything queued, gathered into writes of up to
/// [`WRITE_BATCH_BYTES`], then one flush) until a `Close`. The gathering buffer is given
/// back when it grew past [`IDLE_BUF_BYTES`] and the queue is empty.
async fn write_replies<W: AsyncWrite + Unpin>(
    mut wr: W,
    rx: &mut mpsc::Receiver<Outbound>,
    queued_bytes: &AtomicUsize,
    outstanding: &AtomicUsize,
    answered: &Notify,
) -> String {
    let mut out: Vec<u8> = Vec::new();
    loop {
        let mut msg = rx.recv().await;
        loop {
            match msg {
                Some(Outbound::Frame { bytes, reply }) => {
                    if reply {
                        let _ = outstanding.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                        answered.notify_one();
                    }
                    queued_bytes.fetch_sub(bytes.len(), Ordering::Relaxed);
                    let next = rx.try_recv();
                    // A large frame, or a lone one (nothing queued behind it, the common
                    // case of one reply per wake-up), is written from its own buffer: no
                    // copy into the gathering buffer, which then is never allocated.
                    let alone = matches!(next, Err(mpsc::error::TryRecvError::Empty));
                    let r = if out.is_empty() && (bytes.len() >= WRITE_BATCH_BYTES || alone) {
                        wr.write_all(&bytes).await
                    } else {
                        out.extend_from_slice(&bytes);
                        if out.len() >= WRITE_BATCH_BYTES {
                            let r = wr.write_all(&out).await;
                            out.clear();
                            r
                        } else {
                            Ok(())
                        }
                    };
                    if let Err(e) = r {
                        return format!("write failed: {e}");
                    }
                    match next {
                        Ok(m) => msg = Some(m),
                        Err(_) => break,
                    }
                }
                Some(Outbound::Close(reason)) => {
                    let _ = wr.write_all(&out).await;
                    let _ = wr.flush().await;
                    let _ = wr.shutdown().await;
                    return reason;
                }
                None => return "server shutting down".to_string(),
            }
        }
        if !out.is_empty() {
            if let Err(e) = wr.write_all(&out).await {
                return format!("write failed: {e}");
            }
            out.clear();
        }
        if let Err(e) = wr.flush().await {
            return format!("write failed: {e}");
        }
        if out.capacity() > IDLE_BUF_BYTES {
            out = Vec::new();
        }
    }
}

/// Reads frames (or a four-letter word) and hands them to the driver; stops reading while
/// `outstanding_max` requests are unanswered. Returns only when the connection must end.
async fn read_requests<R: AsyncRead + Unpin>(
    mut rd: R,
    conn: u64,
    inbox: &mpsc::Sender<Event>,
    limits: ConnLimits,
    outstanding: &AtomicUsize,
    answered: &Notify,
) -> String {
    let mut buf: Vec<u8> = Vec::new();
    // What the next read reserves: doubled while reads fill it, back to the idle size when
    // a read finds everything it took consumed.
    let mut chunk = IDLE_BUF_BYTES;
    let mut first = true;
    loop {
        while outstanding.load(Ordering::Relaxed) >= limits.outstanding_max {
            answered.notified().await;
        }
        let n = match read_more(&mut rd, &mut buf, chunk).await {
            Ok(0) => return "client closed the connection".to_string(),
            Ok(n) => n,
            Err(e) => return format!("read failed: {e}"),
        };
        chunk = if n >= chunk { (chunk * 2).min(READ_CHUNK_BYTES_MAX) } else { IDLE_BUF_BYTES };
        // Cut out every whole frame.
        let mut start = 0;
        loop {
            let rest = &buf[start..];
            if first && rest.len() >= 4 {
                first = false;
                if let Ok(word) = std::str::from_utf8(&rest[..4]) {
                    if WORDS.contains(&word) {
                        let word = word.to_string();
                        // stmk's trace mask: a big-endian long after the word, taken from what
                        // has arrived with it, as ZooKeeper reads it with one non-blocking read
                        // (fewer than 8 bytes there: no answer, the mask unchanged).
                        let arg = (word == "stmk" && limits.stmk_allowed)
                            .then(|| rest.get(4..12).map(|b| i64::from_be_bytes(b.try_into().expect("8 bytes"))))
                            .flatten();
                        let _ = to_driver(inbox, Event::FourLetterWord { conn, word, arg }).await;
                        // Nothing more is read; the writer sends the answer and closes.
                        return std::future::pending().await;
                    }
                }
            }
            match frame::split(rest, limits.frame_bytes_max) {
                FrameStatus::Incomplete { .. } => break,
                FrameStatus::Invalid { len } => {
                    return format!("invalid frame length {len} (jute.maxbuffer is {})", limits.frame_bytes_max);
                }
                FrameStatus::Frame { len } => {
                    let payload = rest[4..4 + len].to_vec();
                    start += 4 + len;
                    outstanding.fetch_add(1, Ordering::Relaxed);
                    if to_driver(inbox, Event::Frame { conn, payload }).await.is_err() {
                        return "server shutting down".to_string();
                    }
                }
            }
        }
        buf.drain(..start);
        if buf.is_empty() && buf.capacity() > IDLE_BUF_BYTES && chunk == IDLE_BUF_BYTES {
            buf = Vec::new();
        }
    }
}

/// Reads what has arrived into `buf`, with room for at least `chunk` more bytes.
async fn read_more<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut Vec<u8>, chunk: usize) -> std::io::Result<usize> {
    buf.reserve(chunk);
    rd.read_buf(buf).await
}
