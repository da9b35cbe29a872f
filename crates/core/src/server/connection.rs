//! Connections and the handshake: a frame's first stop (a ConnectRequest until the session
//! is attached), a new session (its createSession txn, forwarded to the leader by a learner),
//! a session reattached (the password, the old connection closed; on a learner the leader's
//! REVALIDATE decides, frames sent meanwhile wait), the ConnectResponse, and auth packets.
//! The leader's side of REVALIDATE is here too.

use super::pipeline::c_push_write;
use super::{frame_of, Action, ConnId, ConnState, Origin, PeerId, Pending, Role, ZooKeeperServer, MAX_EARLY_FRAMES};
use crate::auth;
use rzk_proto::client::{self, ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader, Response};
use rzk_proto::txn::{Txn, TxnHeader};
use rzk_proto::{ErrorCode, OpCode, Reader, Record, SessionId, Writer, Zxid};

impl ZooKeeperServer {
    pub(super) fn on_frame(&mut self, conn: ConnId, payload: Vec<u8>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.stats.received += 1;
        self.stats.packets_received += 1;
        self.stats.bytes_received += payload.len() as u64 + 4;
        match c.state {
            ConnState::Handshake => self.on_connect_request(conn, &payload),
            ConnState::Revalidating => {
                if c.early.len() >= MAX_EARLY_FRAMES {
                    return self.close(conn, "too many requests before the session was established".into());
                }
                c.early.push(payload);
            }
            ConnState::Connecting | ConnState::Connected => self.on_request(conn, payload),
            ConnState::Closed => {}
        }
    }

    pub(super) fn on_connect_request(&mut self, conn: ConnId, payload: &[u8]) {
        self.stats.connection_requests += 1;
        if self.role() == Role::NotServing {
            // ZooKeeper closes a connection whose server is not running (between roles).
            return self.close(conn, "ZooKeeperServer not running".into());
        }
        let req = match ConnectRequest::read(&mut Reader::new(payload)) {
            Ok(r) => r,
            Err(e) => {
                self.stats.unsuccessful_handshakes += 1;
                return self.close(conn, format!("malformed connect request: {e}"));
            }
        };
        if req.last_zxid_seen > self.tree.last_processed_zxid() {
            // The client has seen a newer state than ours; it must find a newer server.
            let reason = format!(
                "refusing session request: client has seen zxid {} our last zxid is {}",
                req.last_zxid_seen,
                self.tree.last_processed_zxid()
            );
            return self.close(conn, reason);
        }
        let read_only = self.role() == Role::ReadOnly;
        if read_only && req.read_only != Some(true) {
            return self.close(conn, "Refusing session request for not-read-only client".into());
        }
        let timeout = req.timeout_ms.clamp(self.cfg.min_session_timeout_ms, self.cfg.max_session_timeout_ms);
        let c = self.conns.get_mut(&conn).expect("conn");
        c.old_client = req.read_only.is_none();
        c.timeout_ms = timeout;
        if req.session_id.0 == 0 && self.local_sessions() {
            // A local session: this server's alone, answered at once (no txn).
            let id = self.sessions.next_id();
            self.local.add(id, timeout, self.now_ms);
            self.attach(conn, id);
            return self.send_connect_response(conn, true);
        }
        if req.session_id.0 == 0 && read_only {
            // ZooKeeper 3.9 (and 3.8.1+) creates no global session in read-only mode.
            return self.close(conn, "refusing a new global session in read-only mode (localSessionsEnabled is off)".into());
        }
        if req.session_id.0 == 0 {
            // A new session: createSession goes through the log like any write.
            let id = self.sessions.next_id();
            if self.role().is_learner() {
                return self.forward_create_session(conn, id, timeout);
            }
            self.sessions.add(id, timeout, self.now_ms);
            let me = self.my_peer();
            if let Some(l) = self.leader_mut() {
                l.owners.insert(id, me);
            }
            let c = self.conns.get_mut(&conn).expect("conn");
            c.session = Some(id);
            c.state = ConnState::Connecting;
            self.session_conn.insert(id, conn);
            let zxid = self.next_zxid();
            let header = TxnHeader { client_id: id, cxid: 0, zxid, time: self.wall_ms, op: OpCode::CreateSession.code() };
            let txn = Txn::CreateSession { timeout_ms: timeout };
            c_push_write(self.conns.get_mut(&conn).expect("conn"), zxid);
            self.append(header, txn, Origin::Connect { conn });
        } else {
            let id = req.session_id;
            // As ZooKeeper does (closeSession(id, CLIENT_RECONNECT) before reopenSession), the
            // session's current connection is closed before the password is even checked.
            if let Some(old) = self.session_conn.get(&id).copied() {
                if old != conn {
                    self.session_conn.remove(&id);
                    self.close(old, format!("session 0x{:x} reconnected on another connection", id.0));
                }
            }
            let revalidating = self.learner_mut().and_then(|l| l.revalidations.get(&id).copied());
            if let Some(old) = revalidating {
                if old != conn {
                    self.learner_mut().expect("learner").revalidations.remove(&id);
                    self.close(old, format!("session 0x{:x} reconnected on another connection", id.0));
                }
            }
            let passwd_ok = req.passwd == auth::session_password(id);
            if passwd_ok && self.local.is_live(id) {
                // One of this server's local sessions, back on a new connection.
                self.local.touch(id, self.now_ms);
                self.attach(conn, id);
                return self.send_connect_response(conn, true);
            }
            if read_only {
                // ZooKeeper 3.9's ReadOnlyZooKeeperServer.validateSession refuses a global
                // session. A session this member does not know at all may be alive on the
                // quorum (created while this member was cut off): ZooKeeper answers it
                // "expired"; rzk cannot know that and refuses it too, so the client tries
                // another server instead of dropping a live session.
                return self.close(conn, format!("Refusing global session reconnection in RO mode (session 0x{:x})", id.0));
            }
            if let Some(l) = self.learner_mut().filter(|_| passwd_ok) {
                // Only the leader knows whether the session is alive: ask it (REVALIDATE).
                l.revalidations.insert(id, conn);
                let c = self.conns.get_mut(&conn).expect("conn");
                c.session = Some(id);
                c.state = ConnState::Revalidating;
                self.out.push(Action::Revalidate { session: id, timeout_ms: timeout });
                return;
            }
            let valid = passwd_ok && self.sessions.is_live(id);
            if valid {
                self.sessions.touch(id, self.now_ms);
                let me = self.my_peer();
                if let Some(l) = self.leader_mut() {
                    l.owners.insert(id, me);
                }
                self.session_conn.insert(id, conn);
                let c = self.conns.get_mut(&conn).expect("conn");
                c.session = Some(id);
                c.state = ConnState::Connected;
                c.stats.last_op = "createSession";
            }
            self.send_connect_response(conn, valid);
            if !valid {
                self.close(conn, format!("invalid session {id} (expired or bad password)"));
            }
        }
    }

    /// Whether new sessions are local here: `localSessionsEnabled` on an ensemble member (a
    /// standalone server has only global sessions, as ZooKeeper's).
    pub(super) fn local_sessions(&self) -> bool {
        self.cfg.local_sessions_enabled && !matches!(self.role(), Role::Standalone | Role::NotServing)
    }

    /// A connection now serves `session` (established at once: a local session).
    fn attach(&mut self, conn: ConnId, session: SessionId) {
        self.session_conn.insert(session, conn);
        let c = self.conns.get_mut(&conn).expect("conn");
        c.session = Some(session);
        c.state = ConnState::Connected;
        c.stats.last_op = "createSession";
    }

    pub(super) fn send_connect_response(&mut self, conn: ConnId, valid: bool) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let session = c.session.unwrap_or_default();
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: if valid { c.timeout_ms } else { 0 },
            session_id: if valid { session } else { SessionId(0) },
            passwd: if valid { auth::session_password(session) } else { vec![0; 16] },
            read_only: if c.old_client { None } else { Some(self.role() == Role::ReadOnly) },
        };
        let mut w = Writer::for_frame();
        resp.write(&mut w);
        self.send(conn, w.finish_frame(), false);
    }

    pub(super) fn on_auth(&mut self, conn: ConnId, header: RequestHeader, body: &[u8]) {
        let packet = client::AuthPacket::from_bytes(body);
        let result = match &packet {
            Ok(p) => auth::authenticate(&self.cfg.auth, &p.scheme, &p.auth, &self.conns[&conn].auth),
            Err(_) => {
                self.stats.auth_failed += 1;
                Err(ErrorCode::AuthFailed)
            }
        };
        match result {
            Ok(ids) => {
                let c = self.conns.get_mut(&conn).expect("conn");
                for id in ids {
                    if !c.auth.contains(&id) {
                        c.auth.push(id);
                    }
                }
                let h = ReplyHeader { xid: header.xid, zxid: Zxid(0), err: 0 };
                self.send(conn, frame_of(&h, &Response::Empty), true);
            }
            Err(e) => {
                let h = ReplyHeader { xid: header.xid, zxid: Zxid(0), err: e.code() };
                self.send(conn, frame_of(&h, &Response::Empty), true);
                let scheme = packet.map(|p| p.scheme).unwrap_or_default();
                self.close(conn, format!("authentication failed for scheme {scheme:?}"));
            }
        }
    }

    /// Learner: a new session's createSession goes to the leader; the ConnectResponse waits
    /// for its commit. The id carries this server's sid (the session tracker's seed).
    pub(super) fn forward_create_session(&mut self, conn: ConnId, id: SessionId, timeout: i32) {
        let c = self.conns.get_mut(&conn).expect("conn");
        c.session = Some(id);
        c.state = ConnState::Connecting;
        c.pending.push_back(Pending::Forwarded { xid: 0, op: OpCode::CreateSession, received_ms: self.now_ms });
        let auth = c.auth.clone();
        self.session_conn.insert(id, conn);
        self.out.push(Action::Forward {
            session: id,
            cxid: 0,
            op: OpCode::CreateSession.code(),
            body: timeout.to_be_bytes().to_vec(),
            auth,
        });
    }

    /// Leader: a learner's REVALIDATE (`LearnerMaster.revalidateSession`): valid if the
    /// session is live, which touches it with the timeout given; the learner then owns it.
    pub(super) fn on_revalidate(&mut self, from: PeerId, session: SessionId, timeout_ms: i32) {
        if self.role() != Role::Leader {
            tracing::warn!(learner = from, role = self.role().name(), "REVALIDATE while not leading; dropped");
            return;
        }
        // LeaderSessionTracker.touchSession: the leader's own local sessions first.
        let valid = self.local.touch(session, self.now_ms) || self.sessions.touch_for(session, timeout_ms, self.now_ms);
        if valid {
            self.leader_mut().expect("leading").owners.insert(session, from);
        }
        self.out.push(Action::RevalidateReply { to: from, session, valid });
    }

    /// Learner: the leader's answer for a reattaching session.
    pub(super) fn on_revalidated(&mut self, session: SessionId, valid: bool) {
        let Some(conn) = self.learner_mut().and_then(|l| l.revalidations.remove(&session)) else {
            tracing::warn!(%session, "REVALIDATE answer for no waiting connection");
            return;
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.state != ConnState::Revalidating {
            return;
        }
        if !valid {
            self.send_connect_response(conn, false);
            return self.close(conn, format!("invalid session {session} (expired, per the leader)"));
        }
        c.state = ConnState::Connected;
        c.stats.last_op = "createSession";
        let early = std::mem::take(&mut c.early);
        self.session_conn.insert(session, conn);
        self.send_connect_response(conn, true);
        for payload in early {
            if !self.conns.get(&conn).is_some_and(|c| c.state == ConnState::Connected) {
                break;
            }
            self.on_request(conn, payload);
        }
    }
}
