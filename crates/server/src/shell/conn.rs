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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, Notify};

/// Frames queued for one client beyond which it is disconnected.
pub const OUTBOUND_FRAMES_MAX: usize = 16 * 1024;
/// Bytes queued for one client beyond which it is disconnected (the client is not reading
/// what it is sent).
pub const OUTBOUND_BYTES_MAX: usize = 128 << 20;

/// The driver's handle on one connection: its bounded outbound queue, and a way to cut it
/// off at once when it stops reading what it is sent.
#[derive(Debug)]
pub struct ConnTx {
    frames: mpsc::Sender<Outbound>,
    queued_bytes: Arc<AtomicUsize>,
    kill: Arc<Notify>,
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

    /// Sends what is queued, then closes; a full queue closes at once.
    pub fn close(&self, reason: String) {
        if self.send(Outbound::Close(reason)).is_err() {
            self.kill();
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
    let tx = ConnTx { frames, queued_bytes: queued_bytes.clone(), kill: kill.clone() };
    if inbox.send(Event::Accepted { conn, peer, auth, tx }).await.is_err() {
        return;
    }
    let reason = tokio::select! {
        r = serve(stream, conn, &inbox, limits, &mut rx, &queued_bytes) => r,
        _ = kill.notified() => "the client does not read what it is sent (outbound queue full)".to_string(),
    };
    if reason.starts_with("the client does not read") {
        tracing::warn!(conn, %peer, reason = %reason, "connection closed");
    } else {
        tracing::debug!(conn, %peer, reason = %reason, "connection closed");
    }
    let _ = inbox.send(Event::Closed { conn }).await;
}

/// Reads requests and writes replies until the connection ends; returns why.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    conn: u64,
    inbox: &mpsc::Sender<Event>,
    limits: ConnLimits,
    rx: &mut mpsc::Receiver<Outbound>,
    queued_bytes: &AtomicUsize,
) -> String {
    let (mut rd, wr) = tokio::io::split(stream);
    let mut wr = BufWriter::with_capacity(64 * 1024, wr);
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut first = true;
    let mut outstanding: usize = 0;
    let mut reading = true;
    'conn: loop {
        tokio::select! {
            biased;
            msg = rx.recv() => {
                let mut msg = msg;
                // Write everything queued, then flush once.
                loop {
                    match msg {
                        Some(Outbound::Frame { bytes, reply }) => {
                            if reply {
                                outstanding = outstanding.saturating_sub(1);
                            }
                            queued_bytes.fetch_sub(bytes.len(), Ordering::Relaxed);
                            if let Err(e) = wr.write_all(&bytes).await {
                                break 'conn format!("write failed: {e}");
                            }
                        }
                        Some(Outbound::Close(reason)) => {
                            let _ = wr.flush().await;
                            let _ = wr.shutdown().await;
                            break 'conn reason;
                        }
                        None => break 'conn "server shutting down".to_string(),
                    }
                    match rx.try_recv() {
                        Ok(m) => msg = Some(m),
                        Err(_) => break,
                    }
                }
                if let Err(e) = wr.flush().await {
                    break 'conn format!("write failed: {e}");
                }
            }
            r = read_more(&mut rd, &mut buf), if reading && outstanding < limits.outstanding_max => {
                match r {
                    Ok(0) => break 'conn "client closed the connection".to_string(),
                    Ok(_) => {}
                    Err(e) => break 'conn format!("read failed: {e}"),
                }
                // Cut out every whole frame.
                let mut start = 0;
                loop {
                    let rest = &buf[start..];
                    if first && rest.len() >= 4 {
                        first = false;
                        if let Ok(word) = std::str::from_utf8(&rest[..4]) {
                            if WORDS.contains(&word) {
                                let _ = inbox.send(Event::FourLetterWord { conn, word: word.to_string() }).await;
                                reading = false;
                                start = buf.len();
                                break;
                            }
                        }
                    }
                    match frame::split(rest, limits.frame_bytes_max) {
                        FrameStatus::Incomplete { .. } => break,
                        FrameStatus::Invalid { len } => {
                            break 'conn format!("invalid frame length {len} (jute.maxbuffer is {})", limits.frame_bytes_max);
                        }
                        FrameStatus::Frame { len } => {
                            let payload = rest[4..4 + len].to_vec();
                            start += 4 + len;
                            outstanding += 1;
                            if inbox.send(Event::Frame { conn, payload }).await.is_err() {
                                break 'conn "server shutting down".to_string();
                            }
                        }
                    }
                }
                buf.drain(..start);
            }
        }
    }
}

async fn read_more<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    buf.reserve(16 * 1024);
    rd.read_buf(buf).await
}
