//! Reads and watches: a read answered from the tree at once (or queued behind the
//! connection's pending write, so a client sees its own writes and its replies in xid order),
//! the drain of that queue when the write is answered, the latency bookkeeping of every reply,
//! watches set by reads, AddWatch, CheckWatches/RemoveWatches and SetWatches, and the delivery
//! of watch events to their connections.

use super::{frame_of, ConnId, Pending, ZooKeeperServer};
use crate::auth;
use rzk_proto::client::{ClientInfo, OpResult, ReplyHeader, Request, RequestHeader, Response, WatcherEvent};
use rzk_proto::codes::xid;
use rzk_proto::{perms, AddWatchMode, ErrorCode, OpCode, Record, WatcherType, Writer, Zxid};
use rzk_tree::{WatchKind, WatcherId};

impl ZooKeeperServer {
    pub(super) fn on_read(&mut self, conn: ConnId, header: RequestHeader, body: &[u8], received_ms: i64) {
        let zxid = self.tree.last_processed_zxid();
        let op = OpCode::from_code(header.op);
        let (err, resp) = match op {
            None => (ErrorCode::Unimplemented, Response::Empty),
            Some(_) => match Request::decode(header.op, body) {
                Err(_) => (ErrorCode::MarshallingError, Response::Empty),
                // SyncResponse echoes the request's path as ZooKeeper decoded it: the field as
                // sent (a null stays null), unless it was not UTF-8: then the decoded path
                // (Java's U+FFFD replacements) is what goes back.
                Ok(Request::Sync(r)) => {
                    let raw = &body[..4 + string_field_len(body)];
                    if std::str::from_utf8(&raw[4..]).is_ok() {
                        (ErrorCode::Ok, Response::Raw(raw.to_vec()))
                    } else {
                        (ErrorCode::Ok, Response::Path(r.path))
                    }
                }
                Ok(req) => match self.read(conn, req) {
                    Ok(r) => (ErrorCode::Ok, r),
                    Err(e) => (e, Response::Empty),
                },
            },
        };
        let xid_out = header.xid;
        let h = ReplyHeader { xid: xid_out, zxid, err: err.code() };
        self.finish(conn, h, &resp, op, received_ms);
        if op.is_none() {
            // As ZooKeeper does: answer Unimplemented, then drop the connection.
            self.close(conn, format!("unknown request type {}", header.op));
        }
    }

    pub(super) fn finish(&mut self, conn: ConnId, h: ReplyHeader, resp: &Response, op: Option<OpCode>, received_ms: i64) {
        let latency = (self.now_ms - received_ms).max(0);
        self.stats.record(latency);
        // ZooKeeper's readlatency / updatelatency: by whether the request carries a txn.
        if op.is_some_and(OpCode::is_write) {
            self.stats.update_latency.observe(latency);
        } else {
            self.stats.read_latency.observe(latency);
        }
        let op_name = op.map(OpCode::name).unwrap_or("unknown");
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.record(latency);
            c.stats.last_op = op_name;
            c.stats.last_zxid = h.zxid.0;
            c.stats.last_response_ms = self.now_ms;
        }
        self.send(conn, frame_of(&h, resp), true);
    }

    pub(super) fn read(&mut self, conn: ConnId, req: Request) -> Result<Response, ErrorCode> {
        match req {
            // The two reads that call back into the server (delivering events, reading each
            // op); the others borrow the connection's auth ids instead of copying them.
            Request::SetWatches(w) | Request::SetWatches2(w) => {
                let events = self.tree.set_watches(w.relative_zxid, &w, WatcherId(conn));
                self.deliver(events);
                Ok(Response::Empty)
            }
            Request::MultiRead(ops) => {
                let mut results = Vec::with_capacity(ops.len());
                for op in ops {
                    let r = match op {
                        Request::GetData(r) => self.read(conn, Request::GetData(r)).map(|resp| match resp {
                            Response::GetData { data, stat } => OpResult::GetData { data, stat },
                            _ => unreachable!("getData answers GetData"),
                        }),
                        Request::GetChildren(r) => self.read(conn, Request::GetChildren(r)).map(|resp| match resp {
                            Response::Children(children) => OpResult::GetChildren { children },
                            _ => unreachable!("getChildren answers Children"),
                        }),
                        _ => Err(ErrorCode::BadArguments),
                    };
                    results.push(r.unwrap_or_else(|e| OpResult::Error { err: e.code() }));
                }
                Ok(Response::Multi(results))
            }
            req => self.read_one(conn, req),
        }
    }

    fn read_one(&mut self, conn: ConnId, req: Request) -> Result<Response, ErrorCode> {
        let watcher = WatcherId(conn);
        let c = self.conns.get(&conn).expect("conn");
        let ids = &c.auth;
        let session = c.session.unwrap_or_default();
        let cfg = &self.cfg.auth;
        match req {
            Request::Ping => Ok(Response::Empty),
            Request::Exists(r) => {
                if r.path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                let stat = self.tree.stat(&r.path);
                if r.watch {
                    let kind = if stat.is_some() { WatchKind::Data } else { WatchKind::Exist };
                    self.tree.add_watch(&r.path, kind, watcher);
                }
                stat.map(Response::Stat).ok_or(ErrorCode::NoNode)
            }
            Request::GetData(r) => {
                let node = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
                auth::check_acl(cfg, &node.acl, perms::READ, ids)?;
                let (stat, data) = (node.client_stat(), node.data_opt().map(<[u8]>::to_vec));
                if r.watch {
                    self.tree.add_watch(&r.path, WatchKind::Data, watcher);
                }
                Ok(Response::GetData { data, stat })
            }
            req @ (Request::GetChildren(_) | Request::GetChildren2(_)) => {
                let two = matches!(req, Request::GetChildren2(_));
                let (Request::GetChildren(r) | Request::GetChildren2(r)) = req else { unreachable!() };
                let node = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
                auth::check_acl(cfg, &node.acl, perms::READ, ids)?;
                let stat = node.client_stat();
                let children = self.tree.get_children(&r.path).ok_or(ErrorCode::NoNode)?;
                if r.watch {
                    self.tree.add_watch(&r.path, WatchKind::Child, watcher);
                }
                Ok(if two { Response::Children2 { children, stat } } else { Response::Children(children) })
            }
            Request::GetAcl(r) => {
                let node = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
                auth::check_acl(cfg, &node.acl, auth::PERMS_READ_OR_ADMIN, ids)?;
                let stat = node.client_stat();
                let acl = if auth::check_acl(cfg, &node.acl, perms::ADMIN, ids).is_ok() {
                    node.acl.to_vec()
                } else {
                    auth::redact_digests(&node.acl)
                };
                Ok(Response::GetAcl { acl, stat })
            }
            Request::Sync(r) => Ok(Response::Path(r.path)),
            Request::GetAllChildrenNumber(r) => {
                let node = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
                auth::check_acl(cfg, &node.acl, perms::READ, ids)?;
                Ok(Response::AllChildrenNumber(self.tree.all_children_number(&r.path).ok_or(ErrorCode::NoNode)?))
            }
            Request::GetEphemerals(r) => {
                let all = self.tree.get_ephemerals(session);
                let prefix = r.path.trim();
                let list =
                    if prefix.is_empty() || prefix == "/" { all } else { all.into_iter().filter(|p| p.starts_with(&r.path)).collect() };
                Ok(Response::Paths(list))
            }
            Request::WhoAmI => Ok(Response::WhoAmI(
                auth::java_auth_order(ids)
                    .iter()
                    .map(|id| ClientInfo { auth_scheme: id.scheme.clone(), user: auth::user_name(cfg, id) })
                    .collect(),
            )),
            Request::AddWatch(r) => {
                let mode = AddWatchMode::from_code(r.mode).ok_or(ErrorCode::BadArguments)?;
                let kind = match mode {
                    AddWatchMode::Persistent => WatchKind::Persistent,
                    AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
                };
                if !r.path.is_empty() {
                    self.tree.add_watch(&r.path, kind, watcher);
                }
                Ok(Response::ErrorResponse(0))
            }
            Request::CheckWatches(r) => {
                let t = self.watcher_type(r.watcher_type)?;
                if self.tree.contains_watch(&r.path, t, watcher) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::RemoveWatches(r) => {
                let t = self.watcher_type(r.watcher_type)?;
                if self.tree.remove_watches(&r.path, t, watcher) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::Reconfig(_) | Request::Other(_) => Err(ErrorCode::Unimplemented),
            _ => Err(ErrorCode::Unimplemented),
        }
    }

    /// `WatcherType.fromInt`: ZooKeeper 3.9's Children, Data, Any, Persistent and
    /// PersistentRecursive (rzk announces 3.9; ZooKeeper 3.8 knows the first three only);
    /// anything else fails the request (MarshallingError), as ZooKeeper's exception does.
    pub(super) fn watcher_type(&self, code: i32) -> Result<WatcherType, ErrorCode> {
        WatcherType::from_code(code).ok_or(ErrorCode::MarshallingError)
    }

    /// Answers the reads (and refused writes) that waited behind a write, up to the next
    /// pending write.
    /// An error answer to a request refused before prep (NotReadOnly,
    /// EphemeralOnLocalSession): at once, or in its turn behind the connection's earlier
    /// requests.
    pub(super) fn fail_in_turn(&mut self, conn: ConnId, xid: i32, op: OpCode, err: ErrorCode, received_ms: i64) {
        let c = self.conns.get_mut(&conn).expect("conn");
        if c.pending.is_empty() {
            let h = ReplyHeader { xid, zxid: self.tree.last_processed_zxid(), err: err.code() };
            self.finish(conn, h, &Response::Empty, Some(op), received_ms);
        } else {
            c.pending.push_back(Pending::Failed { xid, op, err, received_ms });
        }
    }

    pub(super) fn drain(&mut self, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            match c.pending.front() {
                Some(Pending::Read { .. }) => {
                    let Some(Pending::Read { header, body, received_ms }) = c.pending.pop_front() else { unreachable!() };
                    self.on_read(conn, header, &body, received_ms);
                }
                Some(Pending::Failed { .. }) => {
                    let Some(Pending::Failed { xid, op, err, received_ms }) = c.pending.pop_front() else { unreachable!() };
                    let h = ReplyHeader { xid, zxid: self.tree.last_processed_zxid(), err: err.code() };
                    self.finish(conn, h, &Response::Empty, Some(op), received_ms);
                }
                Some(Pending::LocalClose { xid }) => {
                    let xid = *xid;
                    c.pending.pop_front();
                    let session = c.session.expect("a local close has a session");
                    return self.close_local_session(conn, session, xid);
                }
                Some(Pending::Sync { done: true, .. }) => {
                    let Some(Pending::Sync { header, body, received_ms, .. }) = c.pending.pop_front() else { unreachable!() };
                    self.on_read(conn, header, &body, received_ms);
                }
                _ => return,
            }
        }
    }

    /// Sends each watcher its notification. One change notifies its watchers in a run of the
    /// same event, so a frame is encoded once per run and copied for each watcher (a watch
    /// fan-out to 100 sessions encoded it 100 times, growing the buffer field by field).
    pub(super) fn deliver(&mut self, deliveries: Vec<(WatcherId, WatcherEvent)>) {
        let mut last: Option<(WatcherEvent, Vec<u8>)> = None;
        for (watcher, event) in deliveries {
            let frame = match &last {
                Some((e, frame)) if *e == event => frame.clone(),
                _ => {
                    let frame = notification_frame(&event);
                    last = Some((event, frame.clone()));
                    frame
                }
            };
            self.send(watcher.0, frame, false);
        }
    }
}

/// A watch notification's frame: length, the NOTIFICATION reply header, the event.
fn notification_frame(event: &WatcherEvent) -> Vec<u8> {
    let h = ReplyHeader { xid: xid::NOTIFICATION, zxid: Zxid(-1), err: 0 };
    // Length, header (xid, zxid, err), type, state, the path's length and bytes.
    let mut w = Writer::for_frame_with_capacity(4 + 16 + 4 + 4 + 4 + event.path.len());
    h.write(&mut w);
    event.write(&mut w);
    w.finish_frame()
}

/// The encoded length of the jute ustring at the start of `b` (0 for null), past its prefix.
pub(super) fn string_field_len(b: &[u8]) -> usize {
    let n = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    n.max(0) as usize
}
