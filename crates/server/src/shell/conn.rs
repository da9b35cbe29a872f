//! One client connection: reads length-prefixed frames and hands them to the driver; writes
//! what the driver sends back. The first four bytes may instead spell a four-letter word.
//!
//! Back-pressure: a connection stops reading its socket while `outstanding_max` of its
//! requests are unanswered, and the driver's inbox is bounded, so a full server stops
//! reading sockets instead of queueing without limit. A malformed or oversized frame closes
//! only this connection, with the reason logged.

use super::{Event, Outbound};
use crate::core::fourlw::WORDS;
use rzk_proto::frame::{self, FrameStatus};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// The largest frame payload accepted (`jute.maxbuffer`).
    pub frame_bytes_max: usize,
    /// Unanswered requests after which the socket is not read.
    pub outstanding_max: usize,
}

pub async fn run(
    stream: TcpStream,
    conn: u64,
    peer: SocketAddr,
    inbox: mpsc::Sender<Event>,
    limits: ConnLimits,
    _permit: super::ConnPermit,
) {
    let _ = stream.set_nodelay(true);
    let (tx, mut rx) = mpsc::unbounded_channel::<Outbound>();
    if inbox.send(Event::Accepted { conn, peer, tx }).await.is_err() {
        return;
    }
    let (mut rd, wr) = stream.into_split();
    let mut wr = BufWriter::with_capacity(64 * 1024, wr);
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut first = true;
    let mut outstanding: usize = 0;
    let mut reading = true;
    let reason: String = 'conn: loop {
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
    };
    tracing::debug!(conn, %peer, reason = %reason, "connection closed");
    let _ = inbox.send(Event::Closed { conn }).await;
}

async fn read_more(rd: &mut tokio::net::tcp::OwnedReadHalf, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    buf.reserve(16 * 1024);
    rd.read_buf(buf).await
}
