//! One ZooKeeper session over one TCP connection, spoken with rzk-proto's codec.
//!
//! Just what a load generator needs and nothing a client library would add: the connect
//! handshake, request frames appended to a write buffer (so many can go out in one write),
//! and reply frames parsed in arrival order with their raw [`ReplyHeader`]. Watch
//! notifications (xid -1) come out of the same frame stream; the caller decides what to do
//! with them. Every socket read is bounded by `io_timeout`, so a stuck server fails the run
//! with an error instead of hanging it. With `--tls-ca` the connection is TLS (rustls, as
//! rzk-client speaks it), with a client certificate when `--tls-cert` / `--tls-key` are given.

use crate::BenchError;
use rzk_proto::client::{ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader, WatcherEvent};
use rzk_proto::frame::{self, FrameStatus};
use rzk_proto::{OpCode, Reader, Record, SessionId, Writer, Zxid};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// How sessions reach the servers: `--servers` (resolved, with the host names for TLS),
/// the read/write timeout, and the TLS configuration if any.
#[derive(Debug, Clone)]
pub struct Dial {
    pub addrs: Vec<SocketAddr>,
    /// The host part of each `--servers` entry: the name a server's certificate must match.
    pub hosts: Vec<String>,
    pub io_timeout: Duration,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// A SASL login every session makes after its handshake.
    pub login: Option<rzk_client::sasl::SaslLogin>,
    /// `--local-addrs`: connection `i` binds source address 127.0.0.(1 + i % n) when n > 1,
    /// so more connections than one address's ephemeral ports reach a loopback server.
    pub local_addrs: u8,
    /// Bytes reserved for each socket read: large for the throughput workloads, small where
    /// a run holds many idle sessions (their buffers would be most of the client's memory).
    pub read_chunk_bytes: usize,
}

/// A socket read's reservation for the throughput workloads.
pub const READ_CHUNK_BYTES: usize = 32 * 1024;

/// A plaintext or TLS connection.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The largest reply frame accepted (ZooKeeper's default `jute.maxbuffer` plus headers).
pub const FRAME_BYTES_MAX: usize = 0xfffff + 1024;
/// The size of a reply header: xid (4), zxid (8), err (4).
const REPLY_HEADER_BYTES: usize = 16;

/// One connected session.
pub struct Session {
    stream: Stream,
    addr: SocketAddr,
    rbuf: Vec<u8>,
    /// Where the unparsed bytes of `rbuf` start.
    rstart: usize,
    wbuf: Vec<u8>,
    next_xid: i32,
    io_timeout: Duration,
    read_chunk_bytes: usize,
    pub session_id: SessionId,
    pub timeout_ms: i32,
}

/// A frame from the server: a reply to a request, or a watch notification.
pub enum Incoming<'a> {
    Reply { header: ReplyHeader, body: &'a [u8] },
    Notification(WatcherEvent),
}

impl Session {
    /// Connects to server `i` (modulo their number) and performs the handshake for a new
    /// session of `timeout_ms` (the TLS handshake first, with TLS).
    pub async fn connect(dial: &Dial, i: usize, timeout_ms: i32) -> Result<Session, BenchError> {
        let (addr, io_timeout) = (dial.addrs[i % dial.addrs.len()], dial.io_timeout);
        let connect = async {
            if dial.local_addrs <= 1 {
                return TcpStream::connect(addr).await;
            }
            let source = std::net::Ipv4Addr::new(127, 0, 0, 1 + (i % dial.local_addrs as usize) as u8);
            let sock = tokio::net::TcpSocket::new_v4()?;
            sock.bind(SocketAddr::new(source.into(), 0))?;
            sock.connect(addr).await
        };
        let tcp = match tokio::time::timeout(io_timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(BenchError::Io { addr, what: "connect", source: e }),
            Err(_) => return Err(BenchError::Timeout { addr, what: "connect" }),
        };
        tcp.set_nodelay(true).map_err(|e| BenchError::Io { addr, what: "set TCP_NODELAY", source: e })?;
        let stream = match &dial.tls {
            None => Stream::Plain(tcp),
            Some(cfg) => {
                let host = &dial.hosts[i % dial.hosts.len()];
                let name = rustls_pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| BenchError::Usage(format!("--servers host {host:?} is not a TLS server name: {e}")))?;
                let connector = tokio_rustls::TlsConnector::from(cfg.clone());
                match tokio::time::timeout(io_timeout, connector.connect(name, tcp)).await {
                    Ok(Ok(s)) => Stream::Tls(Box::new(s)),
                    Ok(Err(e)) => return Err(BenchError::Io { addr, what: "TLS handshake", source: e }),
                    Err(_) => return Err(BenchError::Timeout { addr, what: "TLS handshake" }),
                }
            }
        };
        let mut s = Session {
            stream,
            addr,
            rbuf: Vec::with_capacity(dial.read_chunk_bytes),
            rstart: 0,
            wbuf: Vec::with_capacity(dial.read_chunk_bytes.min(16 * 1024)),
            read_chunk_bytes: dial.read_chunk_bytes,
            next_xid: 1,
            io_timeout,
            session_id: SessionId(0),
            timeout_ms: 0,
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: Zxid(0),
            timeout_ms,
            session_id: SessionId(0),
            passwd: vec![0; 16],
            read_only: Some(false),
        };
        let mut w = Writer::for_frame();
        req.write(&mut w);
        s.wbuf.extend_from_slice(&w.finish_frame());
        s.flush().await?;
        let resp = loop {
            if let Some(len) = s.whole_frame()? {
                let start = s.rstart + 4;
                let r = ConnectResponse::read(&mut Reader::new(&s.rbuf[start..start + len]))
                    .map_err(|e| BenchError::Protocol(format!("{addr}: bad connect response: {e}")))?;
                s.rstart = start + len;
                break r;
            }
            s.read_more().await?;
        };
        if resp.timeout_ms <= 0 {
            return Err(BenchError::Protocol(format!("{addr}: the server refused the session (negotiated timeout {})", resp.timeout_ms)));
        }
        s.session_id = resp.session_id;
        s.timeout_ms = resp.timeout_ms;
        if let Some(login) = &dial.login {
            s.sasl_login(login, &dial.hosts[i % dial.hosts.len()], addr.port()).await?;
        }
        Ok(s)
    }

    /// The SASL login (DIGEST-MD5 or GSSAPI) before the first request, as the Java client
    /// makes it: `sasl` requests carrying the mechanism's tokens until it is complete.
    async fn sasl_login(&mut self, login: &rzk_client::sasl::SaslLogin, host: &str, port: u16) -> Result<(), BenchError> {
        let (mut mech, mut token) = tokio::time::timeout(self.io_timeout, rzk_client::sasl::SaslExchange::start(login, host, port))
            .await
            .map_err(|_| BenchError::Timeout { addr: self.addr, what: "SASL login (credentials)" })?
            .map_err(|e| BenchError::Protocol(format!("{}: SASL login: {e}", self.addr)))?;
        loop {
            let (h, body) = self.call(OpCode::Sasl, |w| w.write_buffer(&token), |_| {}).await?;
            if h.err != 0 {
                return Err(BenchError::Server { what: "SASL login".into(), code: h.err });
            }
            let challenge = Reader::new(&body)
                .read_buffer_opt()
                .map_err(|e| BenchError::Protocol(format!("{}: bad SASL reply: {e}", self.addr)))?
                .unwrap_or_default();
            match mech.evaluate_challenge(&challenge) {
                Ok(Some(next)) => token = next,
                Ok(None) => return Ok(()),
                Err(e) => return Err(BenchError::Protocol(format!("{}: SASL login: {e}", self.addr))),
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Appends a request frame to the write buffer and returns its xid; `body` writes the
    /// request record after the header. Nothing is sent until [`Session::flush`].
    pub fn push(&mut self, op: OpCode, body: impl FnOnce(&mut Writer)) -> i32 {
        let xid = self.next_xid;
        self.next_xid = if self.next_xid == i32::MAX { 1 } else { self.next_xid + 1 };
        let mut w = Writer::for_frame();
        RequestHeader { xid, op: op.code() }.write(&mut w);
        body(&mut w);
        self.wbuf.extend_from_slice(&w.finish_frame());
        xid
    }

    /// Appends a ping (xid -2, as the Java client sends them); its reply has xid -2 too.
    pub fn push_ping(&mut self) {
        let mut w = Writer::for_frame();
        RequestHeader { xid: rzk_proto::codes::xid::PING, op: OpCode::Ping.code() }.write(&mut w);
        self.wbuf.extend_from_slice(&w.finish_frame());
    }

    /// Sends everything pushed so far.
    pub async fn flush(&mut self) -> Result<(), BenchError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let addr = self.addr;
        let write = async {
            self.stream.write_all(&self.wbuf).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.io_timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(BenchError::Io { addr, what: "write", source: e }),
            Err(_) => return Err(BenchError::Timeout { addr, what: "write" }),
        }
        self.wbuf.clear();
        Ok(())
    }

    /// Waits for more bytes from the server.
    pub async fn read_more(&mut self) -> Result<(), BenchError> {
        if self.rstart > 0 {
            self.rbuf.drain(..self.rstart);
            self.rstart = 0;
        }
        self.rbuf.reserve(self.read_chunk_bytes);
        let addr = self.addr;
        match tokio::time::timeout(self.io_timeout, self.stream.read_buf(&mut self.rbuf)).await {
            Ok(Ok(0)) => Err(BenchError::Closed { addr }),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(BenchError::Io { addr, what: "read", source: e }),
            Err(_) => Err(BenchError::Timeout { addr, what: "read (no reply)" }),
        }
    }

    /// The payload length of a whole frame at the front of the read buffer, if there is one.
    fn whole_frame(&self) -> Result<Option<usize>, BenchError> {
        match frame::split(&self.rbuf[self.rstart..], FRAME_BYTES_MAX) {
            FrameStatus::Incomplete { .. } => Ok(None),
            FrameStatus::Frame { len } => Ok(Some(len)),
            FrameStatus::Invalid { len } => Err(BenchError::Protocol(format!("{}: invalid reply frame length {len}", self.addr))),
        }
    }

    /// The next whole frame already received, if any (call [`Session::read_more`] when `None`).
    pub fn next_incoming(&mut self) -> Result<Option<Incoming<'_>>, BenchError> {
        let Some(len) = self.whole_frame()? else { return Ok(None) };
        let start = self.rstart + 4;
        self.rstart = start + len;
        let payload = &self.rbuf[start..start + len];
        if len < REPLY_HEADER_BYTES {
            return Err(BenchError::Protocol(format!("{}: reply frame of {len} bytes is shorter than a reply header", self.addr)));
        }
        let mut r = Reader::new(payload);
        let header = ReplyHeader::read(&mut r).map_err(|e| BenchError::Protocol(format!("{}: bad reply header: {e}", self.addr)))?;
        if header.xid == rzk_proto::codes::xid::NOTIFICATION {
            let ev = WatcherEvent::read(&mut r).map_err(|e| BenchError::Protocol(format!("{}: bad watch event: {e}", self.addr)))?;
            return Ok(Some(Incoming::Notification(ev)));
        }
        Ok(Some(Incoming::Reply { header, body: &payload[REPLY_HEADER_BYTES..] }))
    }

    /// Sends one request and waits for its reply; notifications that arrive meanwhile go to
    /// `on_event`. Returns the reply header and body.
    pub async fn call(
        &mut self,
        op: OpCode,
        body: impl FnOnce(&mut Writer),
        mut on_event: impl FnMut(WatcherEvent),
    ) -> Result<(ReplyHeader, Vec<u8>), BenchError> {
        let xid = self.push(op, body);
        self.flush().await?;
        loop {
            while let Some(inc) = self.next_incoming()? {
                match inc {
                    Incoming::Notification(ev) => on_event(ev),
                    Incoming::Reply { header, body } => {
                        if header.xid == xid {
                            return Ok((header, body.to_vec()));
                        }
                        if header.xid != rzk_proto::codes::xid::PING {
                            return Err(BenchError::Protocol(format!("{}: reply xid {} while waiting for {xid}", self.addr, header.xid)));
                        }
                    }
                }
            }
            self.read_more().await?;
        }
    }

    /// Closes the session (closeSession, wait for the reply) and the connection.
    pub async fn close(mut self) -> Result<(), BenchError> {
        let (h, _) = self.call(OpCode::CloseSession, |_| {}, |_| {}).await?;
        if h.err != 0 {
            return Err(BenchError::Server { what: "closeSession".into(), code: h.err });
        }
        let _ = self.stream.shutdown().await;
        Ok(())
    }
}

/// Encoders for the request bodies the workloads send.
pub mod req {
    use rzk_proto::{perms, Writer};

    /// CreateRequest with OPEN_ACL_UNSAFE (one ACL: all permissions for world:anyone).
    pub fn create(w: &mut Writer, path: &str, data: &[u8], flags: i32) {
        w.write_string(path);
        w.write_buffer(data);
        w.write_i32(1);
        w.write_i32(perms::ALL);
        w.write_string("world");
        w.write_string("anyone");
        w.write_i32(flags);
    }
    /// GetDataRequest, ExistsRequest, GetChildrenRequest.
    pub fn path_watch(w: &mut Writer, path: &str, watch: bool) {
        w.write_string(path);
        w.write_bool(watch);
    }
    pub fn set_data(w: &mut Writer, path: &str, data: &[u8], version: i32) {
        w.write_string(path);
        w.write_buffer(data);
        w.write_i32(version);
    }
    /// The header before each op of a MultiRequest.
    pub fn multi_header(w: &mut Writer, op: rzk_proto::OpCode) {
        use rzk_proto::Record;
        rzk_proto::client::MultiHeader { op: op.code(), done: false, err: -1 }.write(w);
    }
    /// The header that ends a MultiRequest.
    pub fn multi_end(w: &mut Writer) {
        use rzk_proto::Record;
        rzk_proto::client::MultiHeader { op: -1, done: true, err: -1 }.write(w);
    }
}
