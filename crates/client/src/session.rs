//! The session task: the one owner of the socket, the session's identity, the watch table and
//! the outstanding requests.
//!
//! [`Client`](crate::Client) handles talk to it over a bounded request channel and a close
//! channel. The task loops: pick a server (the listed hosts in a fresh random order each
//! round, backing off with jitter between rounds), handshake with the session id and password
//! it holds, replay the credentials given to `add_auth`, re-arm watches with SetWatches2
//! relative to the last zxid seen, then serve: send requests (at most
//! `in_flight_requests_max` unanswered), match replies to requests in xid order, deliver
//! notifications, ping when idle for a third of the session timeout, and drop the connection
//! when the server has been silent for two thirds of it.
//!
//! Connected to a read-only server (`read_only` in the config: canBeReadOnly), the task keeps
//! looking for a read-write one as the Java client's `pingRwServer` does: every so often
//! (from 100 ms, doubling up to a minute) it asks the other hosts `isro` over a plain
//! socket, and when one answers `rw` it drops the read-only connection and connects there
//! first. A session the client only ever had on read-only servers is a read-only server's
//! local session: it starts a new one on the first read-write server (session id 0), as the
//! Java client does (`seenRwServerBefore`).
//!
//! A lost connection fails the requests in flight with ConnectionLoss (their outcome is
//! unknown); requests not yet sent wait for the next connection. The session ends when the
//! server says it expired, when the client has heard nothing from any server for longer than
//! the session timeout (it declares the expiry itself instead of retrying forever), when
//! credentials are refused, or when the application closes it (a closeSession is sent if a
//! server is reachable).

use crate::error::{Error, Result};
use crate::sasl::SaslLogin;
use crate::types::{Config, SessionInfo, SessionState};
use crate::watch::{WatchReg, Watches};
use bytes::BytesMut;
use rzk_proto::client::{request_frame, AuthPacket, ConnectRequest, ConnectResponse, ReplyHeader, Request, Response, WatcherEvent};
use rzk_proto::codes::xid;
use rzk_proto::frame::{split, FrameStatus};
use rzk_proto::{ErrorCode, EventType, KeeperState, OpCode, Reader, Record, SessionId, WatcherType, Writer, Zxid};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

/// A connection to a server: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
type Stream = Box<dyn Io>;
type OwnedReadHalf = ReadHalf<Stream>;
type OwnedWriteHalf = WriteHalf<Stream>;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{sleep_until, timeout, Instant};

/// From a client handle to the session task.
pub(crate) enum Command {
    /// A request with server paths; `watch` is registered if it succeeds; `then_remove`
    /// removes local watches once the server confirmed a removeWatches.
    Request { req: Request, watch: Option<WatchReg>, then_remove: Option<(WatcherType, String)>, reply: oneshot::Sender<Result<Response>> },
    /// addAuth: remembered and replayed on every later connection.
    Auth { packet: AuthPacket, reply: oneshot::Sender<Result<()>> },
    /// Remove local watches without asking the server; replies whether any was there.
    RemoveLocal { kind: WatcherType, path: String, reply: oneshot::Sender<bool> },
    /// `updateServerList`: the new hosts; the session may move to rebalance (see
    /// [`rebalance`]). Replies once the list is taken.
    UpdateServerList { hosts: Vec<(String, u16)>, reply: oneshot::Sender<()> },
}

/// What the handles share with the task.
pub(crate) struct Handles {
    pub cmd_rx: mpsc::Receiver<Command>,
    pub close_rx: mpsc::Receiver<oneshot::Sender<()>>,
    pub state_tx: watch::Sender<SessionState>,
    pub events_tx: broadcast::Sender<SessionState>,
    pub info: Arc<Mutex<SessionInfo>>,
}

struct InFlight {
    xid: i32,
    op: OpCode,
    reply: Option<oneshot::Sender<Result<Response>>>,
    watch: Option<WatchReg>,
    then_remove: Option<(WatcherType, String)>,
}

/// Why a connection ended.
enum End {
    /// Reconnect (the session may live on).
    Lost(&'static str),
    /// The session is over in this state.
    Terminal(SessionState),
}

pub(crate) struct SessionTask {
    cfg: Config,
    hosts: Vec<(String, u16)>,
    chroot: Option<String>,
    info: SessionInfo,
    last_zxid: Zxid,
    auths: Vec<AuthPacket>,
    watches: Watches,
    next_xid: i32,
    h: Handles,
    /// When a server last sent this session anything (None before the first handshake).
    last_heard: Option<Instant>,
    /// Replies to close() calls made while connecting.
    closers: Vec<oneshot::Sender<()>>,
    /// Whether the session was ever established on a read-write server.
    seen_rw: bool,
    /// A read-write server found while connected read-only, or the server a new server list
    /// sends the session to: tried first next.
    preferred: Option<(String, u16)>,
    /// The server of the current connection.
    current: Option<(String, u16)>,
    /// A new server list asks this connection to end so that the session moves.
    moving: bool,
}

/// `StaticHostProvider.updateServerList`'s choice when the application gives a new server
/// list while connected to `current`: `Some(server)` to move the session there, `None` to
/// stay. The list grew: a client on a server still listed moves to one of the added
/// servers with probability 1 - old/new (so each server ends with its share), one whose
/// server is gone always does; the list did not grow: a client on a listed server stays,
/// one whose server is gone moves to a kept server or an added one with ZooKeeper's
/// probabilities (ZOOKEEPER-1355). `rand` gives uniform numbers in [0, 1).
pub(crate) fn rebalance(
    old: &[(String, u16)],
    new: &[(String, u16)],
    current: &(String, u16),
    rand: &mut dyn FnMut() -> f32,
) -> Option<(String, u16)> {
    let kept: Vec<&(String, u16)> = new.iter().filter(|h| old.contains(h)).collect();
    let added: Vec<&(String, u16)> = new.iter().filter(|h| !old.contains(h)).collect();
    let still_listed = new.contains(current);
    let (o, n) = (old.len() as f32, new.len() as f32);
    let prob_new = if new.len() > old.len() {
        if still_listed && rand() > 1.0 - o / n {
            return None;
        }
        1.0
    } else if still_listed {
        return None;
    } else {
        let k = kept.len() as f32;
        1.0 - (k * (o - n)) / (n * (o - k))
    };
    let pick =
        |set: &[&(String, u16)], r: f32| set.get(((r * set.len() as f32) as usize).min(set.len().saturating_sub(1))).map(|h| (*h).clone());
    let take_new = rand() <= prob_new;
    match (take_new && !added.is_empty()) || kept.is_empty() {
        true => pick(&added, rand()),
        false => pick(&kept, rand()),
    }
}

/// Asks each host `isro` over a plain socket (as the Java client's `pingRwServer`); sends
/// the first that answers `rw`.
async fn find_rw_server(hosts: Vec<(String, u16)>, found: mpsc::Sender<(String, u16)>) {
    for (host, port) in hosts {
        let ask = async {
            let mut s = TcpStream::connect((host.as_str(), port)).await.ok()?;
            s.write_all(b"isro").await.ok()?;
            let mut answer = Vec::new();
            s.read_to_end(&mut answer).await.ok()?;
            Some(answer)
        };
        if let Ok(Some(answer)) = timeout(Duration::from_secs(1), ask).await {
            if answer.starts_with(b"rw") {
                let _ = found.send((host, port)).await;
                return;
            }
        }
    }
}

/// How often a read-only connection looks for a read-write server: from this, doubling...
const RW_PROBE_FIRST: Duration = Duration::from_millis(100);
/// ...up to this (the Java client's `maxPingRwTimeout`).
const RW_PROBE_MAX: Duration = Duration::from_secs(60);

impl SessionTask {
    pub fn new(cfg: Config, hosts: Vec<(String, u16)>, chroot: Option<String>, h: Handles) -> SessionTask {
        let info = cfg.session.clone().unwrap_or_default();
        let info_given = info.id.0 != 0;
        let auths = cfg.auth.iter().map(|(s, a)| AuthPacket { auth_type: 0, scheme: s.clone(), auth: a.clone() }).collect();
        SessionTask {
            cfg,
            hosts,
            chroot,
            last_heard: if info.id.0 != 0 { Some(Instant::now()) } else { None },
            info,
            last_zxid: Zxid(0),
            auths,
            watches: Watches::default(),
            next_xid: 1,
            h,
            closers: Vec::new(),
            // A session handed in by the application was established somewhere before.
            seen_rw: info_given,
            preferred: None,
            current: None,
            moving: false,
        }
    }

    fn set_state(&self, s: SessionState) {
        let prev = self.h.state_tx.send_replace(s);
        if prev != s {
            tracing::debug!(session = %self.info.id, ?prev, state = ?s, "session state");
            let _ = self.h.events_tx.send(s);
        }
    }

    fn session_timeout(&self) -> Duration {
        if self.info.timeout.is_zero() {
            self.cfg.session_timeout
        } else {
            self.info.timeout
        }
    }

    fn xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if x == i32::MAX { 1 } else { x + 1 };
        x
    }

    /// Runs the session to its end.
    pub async fn run(mut self) {
        let end = self.connect_loop().await;
        self.finish(end).await;
    }

    async fn connect_loop(&mut self) -> SessionState {
        let mut round: u32 = 0;
        loop {
            let mut order = self.hosts.clone();
            fastrand::shuffle(&mut order);
            if let Some(rw) = self.preferred.take() {
                order.retain(|h| *h != rw);
                order.insert(0, rw);
            }
            for (host, port) in order {
                if let Some(end) = self.check_expired_or_closed() {
                    return end;
                }
                let (req, deadline) = self.connect_request();
                let res = tokio::select! {
                    biased;
                    c = self.h.close_rx.recv() => {
                        if let Some(c) = c { self.closers.push(c); }
                        return SessionState::Closed;
                    }
                    r = handshake(&host, port, self.cfg.tls.clone(), req, deadline) => r,
                };
                let res = res.and_then(|(stream, resp)| self.accept(resp).map(|ro| (stream, ro)));
                let login = match (self.cfg.kerberos.clone(), self.cfg.sasl.clone()) {
                    (Some(k), _) => Some(SaslLogin::Kerberos(k)),
                    (None, Some(creds)) => Some(SaslLogin::DigestMd5(creds)),
                    (None, None) => None,
                };
                let res = match (res, login) {
                    (Ok((mut stream, ro)), Some(login)) => match self.sasl_login(&mut stream, login, (&host, port)).await {
                        Ok(()) => Ok((stream, ro)),
                        Err(SaslEnd::Refused(why)) => {
                            tracing::warn!(host = %host, port, why = %why, "SASL login refused");
                            return SessionState::AuthFailed;
                        }
                        Err(SaslEnd::Lost(why)) => Err(HandshakeError::Failed(why)),
                    },
                    (res, _) => res,
                };
                match res {
                    Ok((stream, read_only)) => {
                        round = 0;
                        match self.serve(stream, read_only, (&host, port)).await {
                            End::Terminal(s) => return s,
                            End::Lost(why) => {
                                tracing::debug!(session = %self.info.id, host = %host, why, "connection lost");
                                self.set_state(SessionState::Disconnected);
                                // A little jitter so a server's clients do not all come back at once.
                                let jitter = Duration::from_millis(fastrand::u64(0..=50));
                                tokio::time::sleep(jitter).await;
                            }
                        }
                    }
                    Err(HandshakeError::Expired) => return SessionState::Expired,
                    Err(HandshakeError::Failed(why)) => {
                        tracing::debug!(host = %host, port, why = %why, "connection attempt failed");
                    }
                }
            }
            // A full round failed: back off (exponential, full jitter), unless it would
            // outlast the session.
            let exp = self.cfg.backoff_min.saturating_mul(1u32 << round.min(16));
            let cap = exp.min(self.cfg.backoff_max);
            let wait = Duration::from_micros(fastrand::u64(cap.as_micros() as u64 / 2..=cap.as_micros().max(1) as u64));
            round = round.saturating_add(1);
            tokio::select! {
                biased;
                c = self.h.close_rx.recv() => {
                    if let Some(c) = c { self.closers.push(c); }
                    return SessionState::Closed;
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn check_expired_or_closed(&mut self) -> Option<SessionState> {
        if self.h.cmd_rx.is_closed() {
            return Some(SessionState::Closed);
        }
        if let Some(t) = self.last_heard {
            if t.elapsed() > self.session_timeout() {
                tracing::debug!(session = %self.info.id, "no server reached within the session timeout: session expired");
                return Some(SessionState::Expired);
            }
        }
        None
    }

    /// The ConnectRequest for the next attempt, and how long that attempt may take.
    fn connect_request(&self) -> (ConnectRequest, Instant) {
        let per_host = (self.session_timeout() / self.hosts.len().max(1) as u32).max(Duration::from_millis(250));
        let deadline = match self.last_heard {
            // Never wait past the moment the session would expire.
            Some(t) => (Instant::now() + per_host).min(t + self.session_timeout() + Duration::from_millis(1)),
            None => Instant::now() + per_host,
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout_ms: self.cfg.session_timeout.as_millis().min(i32::MAX as u128) as i32,
            // A session never seen by a read-write server is a read-only server's local one:
            // a read-write server would not know it (Java's seenRwServerBefore).
            session_id: if self.seen_rw { self.info.id } else { SessionId(0) },
            passwd: if self.info.password.is_empty() || !self.seen_rw { vec![0; 16] } else { self.info.password.clone() },
            read_only: Some(self.cfg.read_only),
        };
        (req, deadline)
    }

    /// Takes the server's ConnectResponse: the session lives on (returns whether the server
    /// is read-only) or it has expired.
    fn accept(&mut self, resp: ConnectResponse) -> Result<bool, HandshakeError> {
        if resp.timeout_ms <= 0 {
            // The server does not know the session any more.
            return Err(HandshakeError::Expired);
        }
        let read_only = resp.read_only.unwrap_or(false);
        if self.info.id.0 != 0 && resp.session_id != self.info.id && !read_only {
            tracing::warn!(old = %self.info.id, new = %resp.session_id, "server answered with another session");
        }
        self.info = SessionInfo { id: resp.session_id, password: resp.passwd, timeout: Duration::from_millis(resp.timeout_ms as u64) };
        *self.h.info.lock().expect("session info") = self.info.clone();
        self.last_heard = Some(Instant::now());
        self.seen_rw |= !read_only;
        Ok(read_only)
    }

    /// SASL (DIGEST-MD5 or GSSAPI) on a new connection, before anything else is sent (as the
    /// Java client holds its requests back until the SASL exchange is over).
    async fn sasl_login(&mut self, stream: &mut Stream, login: SaslLogin, (host, port): (&str, u16)) -> Result<(), SaslEnd> {
        let limit = self.session_timeout();
        let (mut mech, mut token) = match timeout(limit, crate::sasl::SaslExchange::start(&login, host, port)).await {
            Ok(Ok(started)) => started,
            Ok(Err(e)) => return Err(SaslEnd::Refused(e)),
            Err(_) => return Err(SaslEnd::Lost("Kerberos: no ticket within the session timeout".into())),
        };
        loop {
            let xid = self.xid();
            let frame = request_frame(xid, &Request::Sasl(token));
            let lost = |e: &str| SaslEnd::Lost(format!("SASL: {e}"));
            match timeout(limit, stream.write_all(&frame)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(lost(&e.to_string())),
                Err(_) => return Err(lost("write timed out")),
            }
            let challenge = loop {
                let body = match timeout(limit, read_frame(stream, self.cfg.frame_bytes_max)).await {
                    Ok(Ok(b)) => b,
                    Ok(Err(e)) => return Err(lost(&e)),
                    Err(_) => return Err(lost("no reply within the session timeout")),
                };
                let mut r = Reader::new(&body);
                let h = ReplyHeader::read(&mut r).map_err(|e| lost(&e.to_string()))?;
                if h.xid != xid {
                    continue; // a ping's or a notification's: not the SASL reply
                }
                if h.err != 0 {
                    let code = ErrorCode::from_code(h.err).map(|c| format!("{c:?}")).unwrap_or_else(|| h.err.to_string());
                    return Err(SaslEnd::Refused(format!("the server answered {code}")));
                }
                break r.read_buffer_opt().map_err(|e| lost(&e.to_string()))?.unwrap_or_default();
            };
            match mech.evaluate_challenge(&challenge) {
                Ok(Some(next)) => token = next,
                Ok(None) => return Ok(()),
                Err(e) => return Err(SaslEnd::Refused(e)),
            }
        }
    }

    async fn serve(&mut self, stream: Stream, read_only: bool, current: (&str, u16)) -> End {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let timeout_d = self.session_timeout();
        let read_timeout = timeout_d * 2 / 3;
        let ping_interval = timeout_d / 3;
        let mut conn = Conn { pending: VecDeque::new(), auth_waiters: VecDeque::new(), rbuf: BytesMut::with_capacity(64 * 1024) };
        self.current = Some((current.0.to_owned(), current.1));
        self.moving = false;

        // Prime the connection: credentials first, then the watches (as the Java client).
        let mut out = Vec::new();
        for a in &self.auths {
            out.extend(request_frame(xid::AUTH, &Request::Auth(a.clone())));
            conn.auth_waiters.push_back(None);
        }
        for sw in self.watches.set_watches(self.last_zxid) {
            out.extend(request_frame(xid::SET_WATCHES, &Request::SetWatches2(sw)));
        }
        if !out.is_empty() {
            if let Err(e) = write(&mut wr, &out, read_timeout).await {
                return End::Lost(e);
            }
        }
        self.set_state(if read_only { SessionState::ConnectedReadOnly } else { SessionState::Connected });
        let mut last_send = Instant::now();
        let mut last_recv = Instant::now();
        // Read-only: look for a read-write server among the other hosts.
        let others: Vec<(String, u16)> = self.hosts.iter().filter(|(h, p)| (h.as_str(), *p) != current).cloned().collect();
        let (rw_tx, mut rw_rx) = mpsc::channel::<(String, u16)>(1);
        let mut probe_wait = RW_PROBE_FIRST;
        let mut next_probe = Instant::now() + probe_wait;
        let mut probing: Option<tokio::task::JoinHandle<()>> = None;
        let end = loop {
            let in_flight_ok = conn.pending.len() < self.cfg.in_flight_requests_max;
            if conn.rbuf.capacity() - conn.rbuf.len() < 16 * 1024 {
                conn.rbuf.reserve(64 * 1024);
            }
            tokio::select! {
                biased;
                c = self.h.close_rx.recv() => {
                    if let Some(c) = c { self.closers.push(c); }
                    break self.close_session(&mut rd, &mut wr, &mut conn, read_timeout).await;
                }
                r = rd.read_buf(&mut conn.rbuf) => {
                    match r {
                        Ok(0) => break End::Lost("server closed the connection"),
                        Err(_) => break End::Lost("read error"),
                        Ok(_) => {
                            last_recv = Instant::now();
                            self.last_heard = Some(last_recv);
                            if let Some(end) = self.process_frames(&mut conn) {
                                break end;
                            }
                        }
                    }
                }
                cmd = self.h.cmd_rx.recv(), if in_flight_ok => {
                    let Some(cmd) = cmd else {
                        // Every handle is gone: close the session.
                        break self.close_session(&mut rd, &mut wr, &mut conn, read_timeout).await;
                    };
                    let mut out = Vec::new();
                    self.encode(cmd, &mut conn, &mut out);
                    // Batch whatever else is queued into the same write.
                    for _ in 0..128 {
                        if conn.pending.len() >= self.cfg.in_flight_requests_max {
                            break;
                        }
                        match self.h.cmd_rx.try_recv() {
                            Ok(cmd) => self.encode(cmd, &mut conn, &mut out),
                            Err(_) => break,
                        }
                    }
                    if !out.is_empty() {
                        if let Err(e) = write(&mut wr, &out, read_timeout).await {
                            break End::Lost(e);
                        }
                        last_send = Instant::now();
                    }
                    if self.moving {
                        break End::Lost("the server list changed: moving to another server (updateServerList)");
                    }
                }
                _ = sleep_until(last_send + ping_interval) => {
                    if let Err(e) = write(&mut wr, &request_frame(xid::PING, &Request::Ping), read_timeout).await {
                        break End::Lost(e);
                    }
                    last_send = Instant::now();
                }
                _ = sleep_until(last_recv + read_timeout) => {
                    break End::Lost("no reply from the server within two thirds of the session timeout");
                }
                _ = sleep_until(next_probe), if read_only && !others.is_empty() => {
                    if probing.as_ref().is_none_or(|p| p.is_finished()) {
                        probing = Some(tokio::spawn(find_rw_server(others.clone(), rw_tx.clone())));
                    }
                    probe_wait = (probe_wait * 2).min(RW_PROBE_MAX);
                    next_probe = Instant::now() + probe_wait;
                }
                Some(rw) = rw_rx.recv() => {
                    tracing::info!(host = %rw.0, port = rw.1, "a read-write server is available: leaving the read-only one");
                    self.preferred = Some(rw);
                    break End::Lost("found a read-write server");
                }
            }
        };
        if let Some(p) = probing {
            p.abort();
        }
        // Whatever was in flight has an unknown outcome.
        let err = match &end {
            End::Lost(_) => Error::ConnectionLoss,
            End::Terminal(s) => s.terminal_error(),
        };
        for p in conn.pending.drain(..) {
            if let Some(r) = p.reply {
                let _ = r.send(Err(err.clone()));
            }
        }
        for w in conn.auth_waiters.drain(..).flatten() {
            let _ = w.send(Err(err.clone()));
        }
        end
    }

    fn encode(&mut self, cmd: Command, conn: &mut Conn, out: &mut Vec<u8>) {
        match cmd {
            Command::Request { req, watch, then_remove, reply } => {
                if reply.is_closed() {
                    return; // the caller gave up (timeout, dropped future)
                }
                let x = self.xid();
                out.extend(request_frame(x, &req));
                conn.pending.push_back(InFlight { xid: x, op: req.op(), reply: Some(reply), watch, then_remove });
            }
            Command::Auth { packet, reply } => {
                out.extend(request_frame(xid::AUTH, &Request::Auth(packet.clone())));
                self.auths.push(packet);
                conn.auth_waiters.push_back(Some(reply));
            }
            Command::RemoveLocal { kind, path, reply } => {
                let _ = reply.send(self.watches.remove(kind, &path, self.chroot.as_deref()));
            }
            Command::UpdateServerList { hosts, reply } => {
                self.update_server_list(hosts);
                let _ = reply.send(());
            }
        }
    }

    fn update_server_list(&mut self, hosts: Vec<(String, u16)>) {
        let current = self.current.clone().unwrap_or_else(|| hosts[0].clone());
        if let Some(to) = rebalance(&self.hosts, &hosts, &current, &mut || fastrand::f32()) {
            tracing::info!(from = ?current, to = ?to, "new server list: moving the session");
            self.preferred = Some(to);
            self.moving = true;
        }
        self.hosts = hosts;
    }

    /// Handles every whole frame in the read buffer.
    fn process_frames(&mut self, conn: &mut Conn) -> Option<End> {
        loop {
            match split(&conn.rbuf, self.cfg.frame_bytes_max) {
                FrameStatus::Incomplete { .. } => return None,
                FrameStatus::Invalid { len } => {
                    tracing::warn!(len, "reply frame length out of range; dropping the connection");
                    return Some(End::Lost("reply frame length out of range"));
                }
                FrameStatus::Frame { len } => {
                    let frame = conn.rbuf.split_to(4 + len);
                    let payload = &frame[4..];
                    if let Some(end) = self.process_frame(conn, payload) {
                        return Some(end);
                    }
                }
            }
            if conn.rbuf.is_empty() {
                return None;
            }
        }
    }

    fn process_frame(&mut self, conn: &mut Conn, payload: &[u8]) -> Option<End> {
        let mut r = Reader::new(payload);
        let Ok(h) = ReplyHeader::read(&mut r) else {
            return Some(End::Lost("truncated reply header"));
        };
        match h.xid {
            xid::NOTIFICATION => {
                let Ok(ev) = WatcherEvent::read(&mut r) else {
                    return Some(End::Lost("bad notification"));
                };
                let (Some(t), Some(s)) = (EventType::from_code(ev.event_type), KeeperState::from_code(ev.state)) else {
                    tracing::warn!(?ev, "notification with unknown type or state ignored");
                    return None;
                };
                tracing::trace!(event = ?t, state = ?s, path = %ev.path, "notification");
                self.watches.deliver(t, s, &ev.path, self.chroot.as_deref());
                None
            }
            xid::PING => None,
            xid::AUTH => {
                let waiter = conn.auth_waiters.pop_front().flatten();
                if h.err == ErrorCode::AuthFailed.code() {
                    if let Some(w) = waiter {
                        let _ = w.send(Err(Error::AuthFailed));
                    }
                    return Some(End::Terminal(SessionState::AuthFailed));
                }
                if let Some(w) = waiter {
                    let _ = w.send(if h.err == 0 { Ok(()) } else { Err(Error::from_code(h.err)) });
                }
                None
            }
            xid::SET_WATCHES => {
                if h.err != 0 {
                    tracing::warn!(err = h.err, "setWatches refused");
                }
                None
            }
            x => {
                let Some(p) = conn.pending.pop_front() else {
                    return Some(End::Lost("reply to no request"));
                };
                if p.xid != x {
                    tracing::warn!(expected = p.xid, got = x, "reply out of order; dropping the connection");
                    conn.pending.push_front(p);
                    return Some(End::Lost("reply out of order"));
                }
                if h.zxid.0 > 0 {
                    self.last_zxid = h.zxid;
                }
                tracing::trace!(xid = x, op = ?p.op, err = h.err, zxid = %h.zxid, body = ?r.rest(), "reply");
                let result = if h.err != 0 {
                    if h.err == ErrorCode::NoNode.code() && p.op == OpCode::Exists {
                        if let Some(w) = p.watch {
                            self.watches.register(w, false);
                        }
                    }
                    if h.err == ErrorCode::SessionExpired.code() {
                        if let Some(r) = p.reply {
                            let _ = r.send(Err(Error::SessionExpired));
                        }
                        return Some(End::Terminal(SessionState::Expired));
                    }
                    Err(Error::from_code(h.err))
                } else {
                    match Response::decode(p.op, r.rest()) {
                        Ok(resp) => {
                            if let Some(w) = p.watch {
                                self.watches.register(w, true);
                            }
                            if let Some((kind, path)) = &p.then_remove {
                                self.watches.remove(*kind, path, self.chroot.as_deref());
                            }
                            Ok(resp)
                        }
                        Err(e) => {
                            tracing::warn!(op = ?p.op, error = %e, "undecodable reply");
                            Err(Error::MarshallingError)
                        }
                    }
                };
                if p.op == OpCode::CloseSession {
                    return Some(End::Terminal(SessionState::Closed));
                }
                if let Some(r) = p.reply {
                    let _ = r.send(result);
                }
                None
            }
        }
    }

    /// Sends closeSession and waits (bounded) for the replies up to it.
    async fn close_session(&mut self, rd: &mut OwnedReadHalf, wr: &mut OwnedWriteHalf, conn: &mut Conn, read_timeout: Duration) -> End {
        let x = self.xid();
        conn.pending.push_back(InFlight { xid: x, op: OpCode::CloseSession, reply: None, watch: None, then_remove: None });
        if write(wr, &request_frame(x, &Request::CloseSession), read_timeout).await.is_err() {
            return End::Terminal(SessionState::Closed);
        }
        let deadline = Instant::now() + read_timeout.min(Duration::from_secs(2));
        loop {
            tokio::select! {
                r = rd.read_buf(&mut conn.rbuf) => match r {
                    Ok(0) | Err(_) => return End::Terminal(SessionState::Closed),
                    Ok(_) => {
                        if let Some(end) = self.process_frames(conn) {
                            if let End::Terminal(s) = end {
                                if s != SessionState::Closed {
                                    return End::Terminal(s);
                                }
                            }
                            return End::Terminal(SessionState::Closed);
                        }
                    }
                },
                _ = sleep_until(deadline) => return End::Terminal(SessionState::Closed),
            }
        }
    }

    /// The session is over: fail everything still waiting, end every watch, publish the state.
    async fn finish(mut self, end: SessionState) {
        self.watches.clear();
        self.set_state(end);
        let err = end.terminal_error();
        self.h.cmd_rx.close();
        while let Ok(cmd) = self.h.cmd_rx.try_recv() {
            match cmd {
                Command::Request { reply, .. } => {
                    let _ = reply.send(Err(err.clone()));
                }
                Command::Auth { reply, .. } => {
                    let _ = reply.send(Err(err.clone()));
                }
                Command::RemoveLocal { reply, .. } => {
                    let _ = reply.send(false);
                }
                // Dropping the reply tells the caller the session is over.
                Command::UpdateServerList { .. } => {}
            }
        }
        self.h.close_rx.close();
        while let Ok(c) = self.h.close_rx.try_recv() {
            self.closers.push(c);
        }
        for c in self.closers.drain(..) {
            let _ = c.send(());
        }
        tracing::debug!(session = %SessionId(self.info.id.0), ?end, "session task finished");
    }
}

struct Conn {
    pending: VecDeque<InFlight>,
    /// One entry per auth packet sent on this connection (None for replayed ones).
    auth_waiters: VecDeque<Option<oneshot::Sender<Result<()>>>>,
    rbuf: BytesMut,
}

/// Connects to one server and exchanges ConnectRequest / ConnectResponse, by `deadline`.
async fn handshake(
    host: &str,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    req: ConnectRequest,
    deadline: Instant,
) -> Result<(Stream, ConnectResponse), HandshakeError> {
    let fut = async {
        let addrs = tokio::net::lookup_host((host, port)).await.map_err(|e| HandshakeError::Failed(format!("resolve: {e}")))?;
        let mut last = HandshakeError::Failed("no address".into());
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect(a).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = HandshakeError::Failed(format!("connect {a}: {e}")),
            }
        }
        let tcp = stream.ok_or(last)?;
        let _ = tcp.set_nodelay(true);
        let mut stream: Stream = match tls {
            None => Box::new(tcp),
            Some(cfg) => {
                let name = rustls_pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| HandshakeError::Failed(format!("TLS server name {host:?}: {e}")))?;
                let tls = tokio_rustls::TlsConnector::from(cfg)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| HandshakeError::Failed(format!("TLS handshake: {e}")))?;
                Box::new(tls)
            }
        };
        let mut w = Writer::for_frame();
        req.write(&mut w);
        stream.write_all(&w.finish_frame()).await.map_err(|e| HandshakeError::Failed(format!("write: {e}")))?;
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await.map_err(|e| HandshakeError::Failed(format!("read: {e}")))?;
        let n = i32::from_be_bytes(len);
        if !(16..=4096).contains(&n) {
            return Err(HandshakeError::Failed(format!("bad handshake length {n}")));
        }
        let mut body = vec![0u8; n as usize];
        stream.read_exact(&mut body).await.map_err(|e| HandshakeError::Failed(format!("read: {e}")))?;
        let resp = ConnectResponse::read(&mut Reader::new(&body)).map_err(|e| HandshakeError::Failed(format!("bad handshake: {e}")))?;
        Ok((stream, resp))
    };
    match timeout(deadline.saturating_duration_since(Instant::now()), fut).await {
        Ok(r) => r,
        Err(_) => Err(HandshakeError::Failed("handshake timed out".into())),
    }
}

enum HandshakeError {
    Expired,
    Failed(String),
}

enum SaslEnd {
    /// The server refused the login (or could not prove the password): terminal.
    Refused(String),
    /// The connection failed: try another server.
    Lost(String),
}

/// One whole frame's body, at most `bytes_max` long.
async fn read_frame(stream: &mut Stream, bytes_max: usize) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.map_err(|e| format!("read: {e}"))?;
    let n = i32::from_be_bytes(len);
    if n < 16 || n as usize > bytes_max {
        return Err(format!("bad frame length {n}"));
    }
    let mut body = vec![0u8; n as usize];
    stream.read_exact(&mut body).await.map_err(|e| format!("read: {e}"))?;
    Ok(body)
}

async fn write(wr: &mut OwnedWriteHalf, bytes: &[u8], limit: Duration) -> Result<(), &'static str> {
    match timeout(limit, wr.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err("write error"),
        Err(_) => Err("write timed out"),
    }
}

#[cfg(test)]
mod rebalance_tests {
    use super::rebalance;

    fn hosts(ports: &[u16]) -> Vec<(String, u16)> {
        ports.iter().map(|p| ("127.0.0.1".to_string(), *p)).collect()
    }

    /// How many of `n` clients on `current` move, and where, with a seeded PRNG.
    fn moves(old: &[u16], new: &[u16], current: u16, n: usize) -> std::collections::BTreeMap<u16, usize> {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut out = std::collections::BTreeMap::new();
        for _ in 0..n {
            if let Some((_, p)) = rebalance(&hosts(old), &hosts(new), &("127.0.0.1".to_string(), current), &mut || rng.f32()) {
                *out.entry(p).or_insert(0) += 1;
            }
        }
        out
    }

    #[test]
    fn a_growing_list_moves_a_share_to_the_added_servers() {
        // 3 -> 5 servers: 1 - 3/5 = 40 % of the clients on a kept server move, to 4 or 5.
        let m = moves(&[1, 2, 3], &[1, 2, 3, 4, 5], 1, 10_000);
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![4, 5]);
        let moved: usize = m.values().sum();
        assert!((3_700..4_300).contains(&moved), "{moved}");
    }

    #[test]
    fn a_client_stays_on_a_listed_server_when_the_list_does_not_grow() {
        assert!(moves(&[1, 2, 3, 4, 5], &[1, 2, 3], 2, 1_000).is_empty());
        assert!(moves(&[1, 2, 3], &[3, 2, 1], 2, 1_000).is_empty());
    }

    #[test]
    fn a_client_whose_server_is_gone_always_moves_to_a_listed_one() {
        let m = moves(&[1, 2, 3, 4, 5], &[1, 2, 3], 5, 1_000);
        assert_eq!(m.values().sum::<usize>(), 1_000);
        assert!(m.keys().all(|p| [1, 2, 3].contains(p)), "{m:?}");
        let m = moves(&[1, 2, 3], &[4, 5, 6], 1, 1_000);
        assert!(m.keys().all(|p| [4, 5, 6].contains(p)), "{m:?}");
        // Replacing one server by another of the same count: the client of the removed one
        // moves to the new server (ZooKeeper's probOld is 0 then).
        let m = moves(&[1, 2, 3], &[1, 2, 4], 3, 1_000);
        assert_eq!(m.get(&4).copied(), Some(1_000), "{m:?}");
    }
}
