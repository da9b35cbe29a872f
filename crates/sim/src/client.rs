//! Simulated ZooKeeper clients: they speak real client frames (rzk-proto's codec) to the
//! members' connection inputs, as the Java client does: a ConnectRequest with the last zxid
//! seen (a new session, or the old one moved to another server), pipelined requests with
//! increasing xids, PINGs when idle, a new server when the connection breaks or goes quiet.
//!
//! What they send, at random: creates of every mode (persistent, sequential, ephemeral,
//! container, TTL), setData and delete with and without versions, multi, sync followed by a
//! read, reads that leave one-time data / exists / child watches, a persistent recursive
//! watch (addWatch), and closeSession. What comes back is fed to the [`Checker`]; this
//! module only keeps the client's side of the protocol.

use std::collections::VecDeque;

use rzk_proto::client::{
    AddWatchRequest, ConnectRequest, ConnectResponse, Create, DeleteRequest, PathRequest, PathWatchRequest, ReplyHeader, Request, Response,
    SetDataRequest, SetWatches2, WatcherEvent,
};
use rzk_proto::codes::xid;
use rzk_proto::{Acl, AddWatchMode, CreateMode, OpCode, Reader, Record, SessionId, Writer, Zxid};

use crate::check::{Change, Checker, WatchKind, WriteRec};
use crate::rng::Rng;

/// Session timeout every client asks for (the core's max is 20 ticks of 200 ms).
pub const SESSION_TIMEOUT_MS: i32 = 4000;
/// Keys that get setData, watches and (rarely) delete + create.
pub const KEYS: usize = 4;

/// What a request was, to read its reply.
#[derive(Debug, Clone)]
pub enum Op {
    /// Setup creates (`/k`, `/k/N`, `/p`, `/e`); NodeExists is fine.
    Setup,
    /// `op`: which create it was (create, create2, createContainer, createTTL), to read its reply.
    Create {
        widx: usize,
        mode: CreateMode,
        op: OpCode,
    },
    SetData {
        widx: usize,
        path: String,
    },
    Delete {
        widx: usize,
        path: String,
    },
    Multi {
        widx: usize,
        create: String,
        set: String,
    },
    /// A reconfig (any answer is fine; the checkers watch the ensemble).
    Reconfig,
    /// A sync; the read that follows it must see at least `barrier`.
    Sync {
        barrier: Zxid,
    },
    /// getData / getChildren (`exists: false`) or exists (`exists: true`).
    Read {
        path: String,
        watch: Option<WatchKind>,
        exists: bool,
        after_sync: Option<Zxid>,
    },
    AddWatch {
        path: String,
    },
    /// SetWatches2 after a move: the watches held are registered again on the new server.
    SetWatches,
    Ping,
    Close {
        widx: usize,
    },
}

#[derive(Debug, Clone)]
pub struct Outstanding {
    pub xid: i32,
    pub op: Op,
    /// When it was sent: the server touched the session when it got it, not when it answered.
    pub sent: u64,
}

/// A connection of a client to a server.
#[derive(Debug, Clone)]
pub struct ClientConn {
    pub id: u64,
    pub server: usize,
    pub handshake_done: bool,
    pub outstanding: VecDeque<Outstanding>,
    pub last_heard: u64,
    pub last_sent: u64,
}

/// A watch the client holds, as the checker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub kind: WatchKind,
    /// A data watch left by exists on a missing node (ZooKeeper's exist watch).
    pub exist: bool,
    pub path: String,
    /// The zxid of the reply that set it: changes after it must be announced.
    pub set_at: Zxid,
    /// Persistent recursive: events received since it was set.
    pub events: u64,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: SessionId,
    pub passwd: Vec<u8>,
}

pub struct Client {
    pub idx: usize,
    pub session: Option<Session>,
    pub conn: Option<ClientConn>,
    pub last_zxid: Zxid,
    pub next_xid: i32,
    pub watches: Vec<Watch>,
    pub setup_done: bool,
    /// Names of this client's nodes: unique per client.
    pub counter: u64,
    /// Persistent nodes this client created and may delete.
    pub own_nodes: Vec<String>,
    /// A closeSession was sent: the session is over once it is answered (or lost).
    pub closing: bool,
    /// Frames to send that came up while handling a reply (SetWatches2 after a move).
    pending_sends: Vec<Vec<u8>>,
    /// Connects with canBeReadOnly (a read-only member may serve it).
    pub can_be_read_only: bool,
    /// With dynamic reconfig: every voter's `server.N` line (removed and added back).
    pub reconfig_lines: Vec<String>,
}

/// What a client asks its host to do.
#[derive(Debug)]
pub enum ClientAction {
    /// A frame payload (no length prefix) on the client's connection.
    Send { conn: u64, payload: Vec<u8> },
    /// The client drops its connection (it is quiet too long, or its session ended).
    Disconnect { conn: u64 },
}

impl Client {
    pub fn new(idx: usize) -> Client {
        Client {
            idx,
            session: None,
            conn: None,
            last_zxid: Zxid::ZERO,
            next_xid: 1,
            watches: Vec::new(),
            setup_done: false,
            counter: 0,
            own_nodes: Vec::new(),
            closing: false,
            pending_sends: Vec::new(),
            can_be_read_only: false,
            reconfig_lines: Vec::new(),
        }
    }

    /// The connection to `server` (`id`) opened: send the ConnectRequest.
    pub fn connect(&mut self, id: u64, server: usize, now: u64) -> Vec<u8> {
        self.conn = Some(ClientConn { id, server, handshake_done: false, outstanding: VecDeque::new(), last_heard: now, last_sent: now });
        let (session_id, passwd) = match &self.session {
            Some(s) => (s.id, s.passwd.clone()),
            None => (SessionId(0), vec![0; 16]),
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout_ms: SESSION_TIMEOUT_MS,
            session_id,
            passwd,
            read_only: Some(self.can_be_read_only),
        };
        let mut w = Writer::new();
        req.write(&mut w);
        w.into_inner()
    }

    /// The connection is gone: requests in flight have unknown outcomes. Watches are kept
    /// and registered again with SetWatches2 on the next server, as the Java client does.
    pub fn disconnected(&mut self, chk: &mut Checker) {
        if let Some(c) = self.conn.take() {
            for o in c.outstanding {
                if let Op::Delete { path, .. } = &o.op {
                    chk.maybe_deleted(path);
                }
                if let Op::Close { .. } = o.op {
                    // The close may or may not have happened: a new session next time.
                    self.session = None;
                }
            }
        }
        if self.closing {
            self.closing = false;
            self.session = None;
        }
        if self.session.is_none() {
            self.watches.clear();
        }
    }

    fn next_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid += 1;
        x
    }

    fn frame(&mut self, xid: i32, req: &Request, op: Op, now: u64) -> Vec<u8> {
        let mut w = Writer::new();
        rzk_proto::client::RequestHeader { xid, op: req.op().code() }.write(&mut w);
        req.write(&mut w);
        let c = self.conn.as_mut().expect("connected");
        c.outstanding.push_back(Outstanding { xid, op, sent: now });
        c.last_sent = now;
        w.into_inner()
    }

    /// One tick of the client's own behaviour; returns what to send.
    pub fn step(&mut self, now: u64, tick_ms: u64, rng: &mut Rng, chk: &mut Checker, writes_enabled: bool) -> Vec<ClientAction> {
        let mut out = Vec::new();
        let Some(c) = self.conn.as_ref() else { return out };
        let conn = c.id;
        let timeout_ticks = SESSION_TIMEOUT_MS as u64 / tick_ms;
        // As the Java client: a connection that has been quiet for 2/3 of the session
        // timeout is given up (another server is tried).
        if now > c.last_heard + timeout_ticks * 2 / 3 {
            out.push(ClientAction::Disconnect { conn });
            self.disconnected(chk);
            return out;
        }
        if !c.handshake_done || self.closing {
            return out;
        }
        if !self.setup_done {
            if c.outstanding.iter().any(|o| matches!(o.op, Op::Setup)) {
                return out;
            }
            for p in ["/k", "/p", "/e"].into_iter().map(String::from).chain((0..KEYS).map(|i| format!("/k/{i}"))) {
                let xid = self.next_xid();
                let req = Request::Create(create(OpCode::Create, &p, CreateMode::Persistent));
                out.push(ClientAction::Send { conn, payload: self.frame(xid, &req, Op::Setup, now) });
            }
            return out;
        }
        if c.outstanding.len() < 3 && rng.chance(0.35) {
            for payload in self.request(now, rng, chk, writes_enabled) {
                out.push(ClientAction::Send { conn, payload });
            }
        } else if now > c.last_sent + timeout_ticks / 3 {
            let xid = xid::PING;
            let mut w = Writer::new();
            rzk_proto::client::RequestHeader { xid, op: OpCode::Ping.code() }.write(&mut w);
            let c = self.conn.as_mut().expect("connected");
            c.outstanding.push_back(Outstanding { xid, op: Op::Ping, sent: now });
            c.last_sent = now;
            out.push(ClientAction::Send { conn, payload: w.into_inner() });
        }
        out
    }

    /// One random request (two frames for sync-then-read).
    fn request(&mut self, now: u64, rng: &mut Rng, chk: &mut Checker, writes_enabled: bool) -> Vec<Vec<u8>> {
        let session = self.session.as_ref().expect("handshake done").id.0;
        let key = format!("/k/{}", rng.below(KEYS as u64));
        let r = if writes_enabled { rng.below(100) } else { 60 + rng.below(40) };
        self.counter += 1;
        let n = self.counter;
        let me = self.idx;
        let xid = self.next_xid();
        let write = |chk: &mut Checker| {
            chk.writes.push(WriteRec { session, cxid: xid, start: now, end: None, close: false });
            chk.writes.len() - 1
        };
        let (req, op) = match r {
            0..=9 => {
                let (mode, op) = match rng.below(5) {
                    0 => (CreateMode::Persistent, OpCode::Create),
                    1 => (CreateMode::PersistentSequential, OpCode::Create2),
                    2 => (CreateMode::Container, OpCode::CreateContainer),
                    3 => (CreateMode::PersistentWithTtl, OpCode::CreateTtl),
                    _ => (CreateMode::Persistent, OpCode::Create2),
                };
                let widx = write(chk);
                (Request::Create(create(op, &format!("/p/c{me}-{n}-"), mode)), Op::Create { widx, mode, op })
            }
            10..=17 => {
                let mode = if rng.chance(0.5) { CreateMode::Ephemeral } else { CreateMode::EphemeralSequential };
                let widx = write(chk);
                (Request::Create(create(OpCode::Create2, &format!("/e/c{me}-{n}-"), mode)), Op::Create { widx, mode, op: OpCode::Create2 })
            }
            18..=33 => {
                let version = if rng.chance(0.7) { -1 } else { rng.below(5) as i32 };
                let widx = write(chk);
                let data = Some(format!("{session}:{xid}").into_bytes());
                (Request::SetData(SetDataRequest { path: key.clone(), data, version }), Op::SetData { widx, path: key.clone() })
            }
            34..=39 => {
                if self.own_nodes.is_empty() {
                    let widx = write(chk);
                    (
                        Request::SetData(SetDataRequest { path: key.clone(), data: None, version: -1 }),
                        Op::SetData { widx, path: key.clone() },
                    )
                } else {
                    let path = self.own_nodes.swap_remove(rng.below(self.own_nodes.len() as u64) as usize);
                    let version = if rng.chance(0.8) { -1 } else { 0 };
                    let widx = write(chk);
                    (Request::Delete(DeleteRequest { path: path.clone(), version }), Op::Delete { widx, path })
                }
            }
            40..=49 => {
                let widx = write(chk);
                let cpath = format!("/p/m{me}-{n}");
                let ops = vec![
                    Request::Create(create(OpCode::Create, &cpath, CreateMode::Persistent)),
                    Request::SetData(SetDataRequest { path: key.clone(), data: Some(vec![n as u8]), version: -1 }),
                ];
                (Request::Multi(ops), Op::Multi { widx, create: cpath, set: key.clone() })
            }
            50..=51 if writes_enabled => {
                self.closing = true;
                let widx = write(chk);
                chk.writes[widx].close = true;
                (Request::CloseSession, Op::Close { widx })
            }
            52..=59 => {
                // sync, then a read that must see every write acknowledged before the sync.
                let barrier = chk.max_acked_zxid();
                let s = Request::Sync(PathRequest { path: "/k".into() });
                let p = self.frame(xid, &s, Op::Sync { barrier }, now);
                let xid2 = self.next_xid();
                let read = Request::GetData(PathWatchRequest { path: key.clone(), watch: false });
                let p2 = self.frame(xid2, &read, Op::Read { path: key, watch: None, exists: false, after_sync: Some(barrier) }, now);
                return vec![p, p2];
            }
            60..=74 => (
                Request::GetData(PathWatchRequest { path: key.clone(), watch: true }),
                Op::Read { path: key, watch: Some(WatchKind::Data), exists: false, after_sync: None },
            ),
            75..=82 => (
                Request::Exists(PathWatchRequest { path: key.clone(), watch: true }),
                Op::Read { path: key, watch: Some(WatchKind::Data), exists: true, after_sync: None },
            ),
            83..=89 => {
                let p = "/k".to_string();
                (
                    Request::GetChildren(PathWatchRequest { path: p.clone(), watch: true }),
                    Op::Read { path: p, watch: Some(WatchKind::Child), exists: false, after_sync: None },
                )
            }
            93..=94 if writes_enabled && !self.reconfig_lines.is_empty() => {
                // Remove voters, or add them (back), one or two at a time; or (one in
                // five) a whole new member list: whatever the quorums allow.
                let n = self.reconfig_lines.len() as u64;
                let first = rng.below(n) as usize;
                let mut picked = vec![first];
                let kind = rng.below(10);
                if kind >= 5 {
                    let second = (first + 1 + rng.below(n - 1) as usize) % n as usize;
                    picked.push(second);
                }
                if kind >= 8 {
                    // A new member list: every line but the picked ones.
                    let more: Vec<usize> = (0..n as usize).filter(|i| !picked.contains(i) && rng.chance(0.7)).collect();
                    picked.extend(more);
                }
                let lines: Vec<&String> = picked.iter().map(|&i| &self.reconfig_lines[i]).collect();
                let sids: Vec<&str> = lines.iter().map(|l| &l["server.".len()..l.find('=').expect("a server line")]).collect();
                let joined = lines.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(",");
                let (joining, leaving, new_members) = match kind {
                    8.. => (None, None, Some(joined)),
                    _ if rng.chance(0.5) => (None, Some(sids.join(",")), None),
                    _ => (Some(joined), None, None),
                };
                let req = rzk_proto::client::ReconfigRequest {
                    joining_servers: joining,
                    leaving_servers: leaving,
                    new_members,
                    cur_config_id: -1,
                };
                (Request::Reconfig(req), Op::Reconfig)
            }
            90..=92 if !self.watches.iter().any(|w| w.kind == WatchKind::PersistentRecursive) => {
                let p = "/k".to_string();
                (
                    Request::AddWatch(AddWatchRequest { path: p.clone(), mode: AddWatchMode::PersistentRecursive as i32 }),
                    Op::AddWatch { path: p },
                )
            }
            _ => (
                Request::GetData(PathWatchRequest { path: key.clone(), watch: false }),
                Op::Read { path: key, watch: None, exists: false, after_sync: None },
            ),
        };
        vec![self.frame(xid, &req, op, now)]
    }

    /// A frame from the server (length prefix included). `Err` is a checker failure;
    /// `Ok(true)` asks the host to drop the connection (the session is over).
    pub fn receive(&mut self, frame: &[u8], now: u64, chk: &mut Checker) -> Result<bool, String> {
        let session_label = self.session.as_ref().map(|s| s.id.0).unwrap_or(0);
        let who = format!("client {} (session {session_label:#x})", self.idx);
        let body = frame.get(4..).ok_or_else(|| format!("{who}: a frame shorter than its length prefix"))?;
        let Some(c) = self.conn.as_mut() else { return Ok(false) };
        c.last_heard = now;
        if !c.handshake_done {
            let resp = ConnectResponse::read(&mut Reader::new(body)).map_err(|e| format!("{who}: bad ConnectResponse: {e}"))?;
            if resp.timeout_ms <= 0 {
                // The session expired (or was closed): start a new one on the next connection.
                if let Some(s) = self.session.take() {
                    chk.session_reported_expired(s.id.0);
                }
                self.watches.clear();
                return Ok(true);
            }
            if let Some(s) = &self.session {
                if s.id != resp.session_id {
                    return Err(format!("{who}: reattached as session {:#x}", resp.session_id.0));
                }
            }
            if resp.read_only == Some(true) {
                chk.read_only_sessions += 1;
            }
            self.session = Some(Session { id: resp.session_id, passwd: resp.passwd });
            c.handshake_done = true;
            chk.session_heard(resp.session_id.0, now);
            if !self.watches.is_empty() {
                self.set_watches(now);
            }
            return Ok(false);
        }
        let session = self.session.as_ref().expect("handshake done").id.0;
        let r = &mut Reader::new(body);
        let h = ReplyHeader::read(r).map_err(|e| format!("{who}: bad reply header: {e}"))?;
        let rest = &body[body.len() - r.remaining()..];
        if h.xid == xid::NOTIFICATION {
            let ev = WatcherEvent::read(&mut Reader::new(rest)).map_err(|e| format!("{who}: bad watch event: {e}"))?;
            chk.watch_events += 1;
            return self.event(&ev).map(|_| false).map_err(|e| format!("{who}: {e}"));
        }
        let server = c.server;
        // Replies come in the order the requests were sent.
        let Some(o) = c.outstanding.pop_front() else { return Err(format!("{who}: a reply (xid {}) to nothing outstanding", h.xid)) };
        if o.xid != h.xid {
            return Err(format!("{who}: reply xid {} but the oldest request outstanding is xid {}", h.xid, o.xid));
        }
        // The session was alive when the server got the request (it touched it then); a reply
        // held back behind slow commits says nothing about the time since. A SessionExpired
        // answer (the session is closing) says it was not.
        if h.err != rzk_proto::ErrorCode::SessionExpired.code() {
            chk.session_heard(session, o.sent);
        } else {
            chk.replies += 1;
        }
        if let Op::SetWatches = o.op {
            for w in self.watches.iter_mut().filter(|w| w.kind == WatchKind::PersistentRecursive) {
                w.set_at = h.zxid;
                w.events = 0;
            }
        }
        // The session's view never goes back.
        if h.zxid.0 > 0 {
            chk.session_saw(session, h.zxid, "got a reply")?;
            self.last_zxid = self.last_zxid.max(h.zxid);
            // Watch order: every change up to this reply's zxid that a watch here covers
            // must already have been announced.
            for w in &self.watches {
                chk.watch_announced(session, w, h.zxid)?;
            }
        }
        let ok = h.err == 0;
        if h.err == rzk_proto::ErrorCode::NotReadOnly.code() {
            chk.not_read_only += 1;
        }
        if h.err == rzk_proto::ErrorCode::Throttled.code() {
            chk.throttled += 1;
        }
        match o.op {
            Op::Ping => {}
            Op::Reconfig => {
                if ok {
                    chk.reconfigs_committed += 1;
                } else {
                    chk.reconfigs_refused += 1;
                }
            }
            Op::Setup => {
                // Done once the last of them is answered (created, or there already).
                if !c.outstanding.iter().any(|o| matches!(o.op, Op::Setup)) {
                    self.setup_done = true;
                }
            }
            Op::Create { widx, mode, op } => {
                if ok {
                    let resp = Response::decode(op, rest).map_err(|e| format!("{who}: bad create reply: {e}"))?;
                    let path = match resp {
                        Response::Path(p) | Response::Create2 { path: p, .. } => p,
                        other => return Err(format!("{who}: create answered {other:?}")),
                    };
                    chk.write_acked(widx, now, h.zxid, session)?;
                    chk.expect_audited(server, session, rzk_core::audit::OP_CREATE, &path)?;
                    if mode.is_ephemeral() {
                        chk.ephemeral_acked(session, &path);
                    } else {
                        chk.node_acked(&path);
                        if mode == CreateMode::Persistent || mode == CreateMode::PersistentSequential {
                            self.own_nodes.push(path);
                        }
                    }
                }
            }
            Op::SetData { widx, path } => {
                if ok {
                    let stat = match Response::decode(OpCode::SetData, rest).map_err(|e| format!("{who}: bad setData reply: {e}"))? {
                        Response::Stat(s) => s,
                        other => return Err(format!("{who}: setData answered {other:?}")),
                    };
                    if stat.mzxid != h.zxid {
                        return Err(format!("{who}: setData of {path} at {} has mzxid {}", h.zxid, stat.mzxid));
                    }
                    chk.write_acked(widx, now, h.zxid, session)?;
                    chk.expect_audited(server, session, rzk_core::audit::OP_SETDATA, &path)?;
                    chk.set_acked(&path, stat.mzxid);
                }
            }
            Op::Delete { widx, path } => {
                if ok {
                    chk.write_acked(widx, now, h.zxid, session)?;
                    chk.expect_audited(server, session, rzk_core::audit::OP_DELETE, &path)?;
                }
                // Acknowledged or not (a version mismatch leaves it), it is no longer ours
                // to delete; if it went, it must not be expected.
                chk.maybe_deleted(&path);
            }
            Op::Multi { widx, create, set } => {
                // A multi that failed is answered with error results (and the header's err).
                let failed = ok
                    && match Response::decode(OpCode::Multi, rest).map_err(|e| format!("{who}: bad multi reply: {e}"))? {
                        Response::Multi(results) => results.iter().any(|r| matches!(r, rzk_proto::client::OpResult::Error { .. })),
                        other => return Err(format!("{who}: multi answered {other:?}")),
                    };
                if ok && !failed {
                    chk.write_acked(widx, now, h.zxid, session)?;
                    chk.node_acked(&create);
                    chk.set_acked(&set, h.zxid);
                }
            }
            Op::Close { widx } => {
                if ok {
                    chk.write_acked(widx, now, h.zxid, session)?;
                }
                self.session = None;
                self.closing = false;
                return Ok(true);
            }
            Op::Sync { .. } if !ok => {
                // Refused (NotReadOnly on a read-only member): the read behind it is an
                // ordinary read, with no barrier to meet.
                if let Some(Outstanding { op: Op::Read { after_sync, .. }, .. }) = c.outstanding.front_mut() {
                    *after_sync = None;
                }
            }
            Op::Sync { .. } | Op::SetWatches => {}
            Op::Read { path, watch, exists, after_sync } => {
                chk.reads += 1;
                if let Some(b) = after_sync {
                    if h.zxid < b {
                        return Err(format!("{who}: a read after sync answered at {} but {b} was acknowledged before the sync", h.zxid));
                    }
                }
                let no_node = h.err == rzk_proto::ErrorCode::NoNode.code();
                if let Some(kind) = watch {
                    // exists leaves a watch whether or not the node is there; getData and
                    // getChildren only when it is.
                    if ok || (no_node && exists) {
                        let w = Watch { kind, exist: !ok, path: path.clone(), set_at: h.zxid, events: 0 };
                        if !self.watches.contains(&w) {
                            self.watches.retain(|x| !(x.kind == kind && x.path == path));
                            self.watches.push(w);
                        }
                    }
                }
            }
            Op::AddWatch { path } => {
                if ok {
                    self.watches.push(Watch { kind: WatchKind::PersistentRecursive, exist: false, path, set_at: h.zxid, events: 0 });
                }
            }
        }
        Ok(false)
    }

    /// Registers the watches held again on a new server (SetWatches2, xid -8), relative to
    /// the last zxid seen: the server announces at once what changed since. A persistent
    /// watch misses what happened while the client was away (as in ZooKeeper), so it counts
    /// from the SetWatches2 reply on.
    fn set_watches(&mut self, now: u64) {
        let mut sw = SetWatches2 { relative_zxid: self.last_zxid, ..Default::default() };
        for w in self.watches.iter_mut() {
            let list = match (w.kind, w.exist) {
                (WatchKind::Data, false) => &mut sw.data_watches,
                (WatchKind::Data, true) => &mut sw.exist_watches,
                (WatchKind::Child, _) => &mut sw.child_watches,
                (WatchKind::PersistentRecursive, _) => &mut sw.persistent_recursive_watches,
            };
            list.push(w.path.clone());
        }
        let mut wr = Writer::new();
        rzk_proto::client::RequestHeader { xid: xid::SET_WATCHES, op: OpCode::SetWatches2.code() }.write(&mut wr);
        sw.write(&mut wr);
        let c = self.conn.as_mut().expect("connected");
        c.outstanding.push_back(Outstanding { xid: xid::SET_WATCHES, op: Op::SetWatches, sent: now });
        c.last_sent = now;
        self.pending_sends.push(wr.into_inner());
    }

    /// Frames the client queued while handling a reply (sent by the host after it).
    pub fn take_pending_sends(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.pending_sends)
    }

    /// A watch event: the watches it consumes go, persistent ones count it.
    fn event(&mut self, ev: &WatcherEvent) -> Result<(), String> {
        let change = Change::from_event_type(ev.event_type).ok_or_else(|| format!("a watch event of type {}", ev.event_type))?;
        let mut matched = false;
        self.watches.retain_mut(|w| match w.kind {
            WatchKind::Data if w.path == ev.path && change != Change::ChildrenChanged => {
                matched = true;
                false
            }
            WatchKind::Child if (w.path == ev.path && matches!(change, Change::ChildrenChanged | Change::Deleted)) => {
                matched = true;
                false
            }
            WatchKind::PersistentRecursive if crate::check::under(&ev.path, &w.path) && change != Change::ChildrenChanged => {
                matched = true;
                w.events += 1;
                true
            }
            _ => true,
        });
        if !matched {
            return Err(format!("a watch event {change:?} {} that no watch of this client covers", ev.path));
        }
        if change == Change::Created {
            // ZooKeeper's createNode: a watcher told of the new node (its exist or recursive
            // watch) is not told again that its parent's children changed; its one-time
            // child watch on the parent is used up all the same.
            let parent = match ev.path.rfind('/') {
                Some(0) => "/",
                Some(i) => &ev.path[..i],
                None => "",
            };
            self.watches.retain(|w| !(w.kind == WatchKind::Child && w.path == parent));
        }
        Ok(())
    }
}

fn create(op: OpCode, path: &str, mode: CreateMode) -> Create {
    let ttl = (op == OpCode::CreateTtl).then_some(3_600_000);
    Create { op, path: path.to_string(), data: Some(b"v".to_vec()), acl: Acl::open_unsafe(), flags: mode as i32, ttl }
}
