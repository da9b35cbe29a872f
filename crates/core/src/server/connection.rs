//! Connections and the handshake: a frame's first stop (a ConnectRequest until the session
//! is attached), a new session (its createSession txn, forwarded to the leader by a learner),
//! a session reattached (the password, the old connection closed; on a learner the leader's
//! REVALIDATE decides, frames sent meanwhile wait), the ConnectResponse, auth and SASL
//! packets, and the refusal of a connection that `enforce.auth` wants authenticated first.
//! The leader's side of REVALIDATE is here too.

use super::{frame_of, Action, ConnId, ConnState, Origin, PeerId, Role, ZooKeeperServer, MAX_EARLY_FRAMES};
use crate::auth;
use crate::throttle::ConnectKind;
use rzk_proto::client::{self, ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader, Response};
use rzk_proto::{ErrorCode, Id, Reader, Record, SessionId, Writer, Zxid};

impl ZooKeeperServer {
    pub(super) fn on_frame(&mut self, conn: ConnId, payload: Vec<u8>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.stats.received += 1;
        self.stats.packets_received += 1;
        self.stats.bytes_received += payload.len() as u64 + 4;
        if !self.large.admits(payload.len()) {
            // ZooKeeper's checkRequestSizeWhenReceivingMessage: the connection goes.
            self.stats.large_requests_rejected += 1;
            return self.close(conn, format!("Rejecting large request of {} bytes (largeRequestMaxBytes)", payload.len()));
        }
        let c = self.conns.get_mut(&conn).expect("conn");
        if c.state != ConnState::Handshake {
            c.requests_received += 1;
            if self.large.is_large(payload.len()) {
                // Held until the request is answered (ZooKeeper's requestFinished).
                c.large.push_back((c.requests_received - 1, payload.len()));
                self.large.current += payload.len() as i64;
            }
        }
        match c.state {
            ConnState::Handshake => self.on_connect_request(conn, &payload),
            ConnState::Revalidating => {
                if c.early.len() >= MAX_EARLY_FRAMES {
                    return self.close(conn, "too many requests before the session was established".into());
                }
                c.early.push(payload);
            }
            ConnState::Connecting | ConnState::Connected => self.submit(conn, payload),
            ConnState::Closed => {}
        }
    }

    pub(super) fn on_connect_request(&mut self, conn: ConnId, payload: &[u8]) {
        self.stats.connection_requests += 1;
        if !self.serves_clients() {
            // ZooKeeper closes a connection whose server is not running (between roles, or
            // a leader with leaderServes=no, whose server is never handed to the port).
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
        if self.conn_throttle.enabled() {
            // ZooKeeper's BlueThrottle, before anything else of the request is looked at.
            let kind = match (req.session_id.0, self.local_sessions()) {
                (0, true) => ConnectKind::NewLocal,
                (0, false) => ConnectKind::NewGlobal,
                _ => ConnectKind::Renew,
            };
            let need = self.conn_throttle.tokens_for(kind);
            if !self.conn_throttle.check_limit(need, self.now_ms) {
                self.stats.connections_throttled += 1;
                return self.close(conn, "Connection throttled (connection_throttle_tokens)".into());
            }
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
            let c = self.conns.get_mut(&conn).expect("conn");
            c.session = Some(id);
            c.state = ConnState::Connecting;
            self.session_conn.insert(id, conn);
            self.append_session_create(conn, id, timeout, Origin::Connect { conn });
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
                self.attach(conn, id);
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

    /// A connection now serves `session`: a new local session, or a reattached one.
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
        // Length, protocol version, timeout, session id, the password (length and 16
        // bytes), read-only.
        let mut w = Writer::for_frame_with_capacity(4 + 4 + 4 + 8 + 4 + resp.passwd.len() + 1);
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

    /// `ZooKeeperServer.processSasl`: one SASL token, answered at once with zxid 0. A failed
    /// negotiation gets AuthFailed (SessionClosedRequireSaslAuth when SASL is required) and a
    /// null token, and its connection is closed, unless `allowSaslFailedClients`.
    pub(super) fn on_sasl(&mut self, conn: ConnId, header: RequestHeader, body: &[u8]) {
        let token = match Reader::new(body).read_buffer() {
            Ok(t) => t,
            Err(e) => return self.close(conn, format!("malformed SASL request: {e}")),
        };
        let ok = |token: Option<Vec<u8>>| {
            let h = ReplyHeader { xid: header.xid, zxid: Zxid(0), err: 0 };
            match token {
                Some(t) => frame_of(&h, &Response::Sasl(t)),
                None => frame_of(&h, &Response::Raw(vec![0xff; 4])),
            }
        };
        let Some(login) = &self.cfg.auth.sasl_login else {
            // No JAAS server section: ZooKeeper's connection has no SASL server, logs the
            // NullPointerException and answers OK with a null token.
            tracing::error!(conn, "SASL packet, but the server has no SASL login (no JAAS server section)");
            return self.send(conn, ok(None), true);
        };
        let counter = self.sasl_nonces;
        let c = self.conns.get_mut(&conn).expect("conn");
        let session = c.session.unwrap_or_default();
        let peer = c.peer;
        let server = c.sasl.get_or_insert_with(|| match &login.gssapi {
            Some(g) => super::SaslServer::Gssapi(crate::gssapi::GssapiServer::new(g.acceptor.new_context())),
            None => super::SaslServer::DigestMd5(crate::sasl::DigestMd5Server::new()),
        });
        let result = match server {
            super::SaslServer::DigestMd5(server) => {
                let result = server.evaluate_response(&token, &login.users, || nonce_bytes(&login.nonce_secret, counter, conn));
                if matches!(result, Ok(crate::sasl::Step::Challenge(_))) {
                    self.sasl_nonces += 1;
                }
                result
            }
            super::SaslServer::Gssapi(server) => {
                let naming = &login.gssapi.as_ref().expect("a GSSAPI server has a GSSAPI login").naming;
                server.evaluate_response(&token, naming)
            }
        };
        match result {
            Ok(crate::sasl::Step::Challenge(t)) => self.send(conn, ok(Some(t)), true),
            Ok(crate::sasl::Step::Complete { token, authentication_id, authorization_id }) => {
                tracing::info!(%session, %authentication_id, %authorization_id, "adding SASL authorization");
                let is_super = self.cfg.auth.sasl_super_users.contains(&authorization_id);
                let c = self.conns.get_mut(&conn).expect("conn");
                let id = Id::new("sasl", &authorization_id);
                if !c.auth.contains(&id) {
                    c.auth.push(id);
                }
                if is_super {
                    tracing::info!(%session, %authorization_id, "SASL id authenticated as super user");
                    let sup = Id::new("super", "");
                    if !c.auth.contains(&sup) {
                        c.auth.push(sup);
                    }
                }
                // GSSAPI's last step has no token: ZooKeeper answers it with a null one.
                let token = if token.is_empty() { None } else { Some(token) };
                self.send(conn, ok(token), true);
            }
            Err(e) => {
                tracing::warn!(%peer, %session, "client failed to SASL authenticate: {e}");
                let required = self.cfg.auth.sasl_required();
                if self.cfg.auth.allow_sasl_failed_clients && !required {
                    tracing::warn!(%peer, %session, "keeping the connection despite the SASL failure (allowSaslFailedClients)");
                    return self.send(conn, ok(None), true);
                }
                let err = if required { ErrorCode::SessionClosedRequireSaslAuth } else { ErrorCode::AuthFailed };
                let h = ReplyHeader { xid: header.xid, zxid: Zxid(0), err: err.code() };
                self.send(conn, frame_of(&h, &Response::Raw(vec![0xff; 4])), true);
                let why = if required { "the server requires SASL authentication" } else { "SASL authentication failed" };
                self.close(conn, format!("{why}: {e}"));
            }
        }
    }

    /// `AuthenticationHelper.enforceAuthentication`: a request from a connection without an
    /// id of the enforced schemes gets SessionClosedRequireSaslAuth, and its connection is
    /// closed (the session stays until it expires, as in ZooKeeper).
    pub(super) fn refuse_unauthenticated(&mut self, conn: ConnId, xid: i32) {
        let c = &self.conns[&conn];
        let schemes: Vec<&str> = c.auth.iter().map(|id| id.scheme.as_str()).collect();
        let wanted = self.cfg.auth.enforce_auth_schemes.clone().unwrap_or_default();
        tracing::error!(peer = %c.peer, "client authentication scheme(s) {schemes:?} match none of the expected {wanted:?}; closing the connection");
        let h = ReplyHeader { xid, zxid: Zxid(0), err: ErrorCode::SessionClosedRequireSaslAuth.code() };
        self.send(conn, frame_of(&h, &Response::Empty), true);
        self.close(conn, format!("not authenticated with any of {wanted:?}"));
    }

    /// Learner: a new session's createSession goes to the leader; the ConnectResponse waits
    /// for its commit. The id carries this server's sid (the session tracker's seed).
    pub(super) fn forward_create_session(&mut self, conn: ConnId, id: SessionId, timeout: i32) {
        let c = self.conns.get_mut(&conn).expect("conn");
        c.session = Some(id);
        c.state = ConnState::Connecting;
        self.session_conn.insert(id, conn);
        self.forward_session_create(conn, id, timeout, self.now_ms);
    }

    /// Leader: a learner's REVALIDATE (`LearnerMaster.revalidateSession`): valid if the
    /// session is live, which touches it with the timeout given; the learner then owns it.
    pub(super) fn on_revalidate(&mut self, from: PeerId, session: SessionId, timeout_ms: i32) {
        if self.role() != Role::Leader {
            tracing::warn!(learner = from, role = self.role().name(), "REVALIDATE while not leading; dropped");
            return;
        }
        // `checkIfValidGlobalSession`: only a global session is valid on another server; the
        // leader's own local sessions are not (a client moving one gets SessionExpired, as in
        // ZooKeeper), or the learner would take it for global and forward its ephemerals
        // without the upgrade.
        let valid = self.sessions.touch_for(session, timeout_ms, self.now_ms);
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
        let early = std::mem::take(&mut c.early);
        self.attach(conn, session);
        self.send_connect_response(conn, true);
        for payload in early {
            if !self.conns.get(&conn).is_some_and(|c| c.state == ConnState::Connected) {
                break;
            }
            self.admit(conn, payload);
        }
    }
}

/// A SASL nonce's 30 bytes: SHA-1 over the login's secret, a counter and the connection, so
/// nonces never repeat and cannot be guessed without the secret.
fn nonce_bytes(secret: &[u8; 32], counter: u64, conn: ConnId) -> [u8; crate::sasl::NONCE_RAW_BYTES] {
    use sha1::{Digest, Sha1};
    let mut out = [0u8; crate::sasl::NONCE_RAW_BYTES];
    for (i, chunk) in out.chunks_mut(20).enumerate() {
        let mut h = Sha1::new();
        h.update(secret);
        h.update(counter.to_be_bytes());
        h.update(conn.to_be_bytes());
        h.update([i as u8]);
        let d = h.finalize();
        chunk.copy_from_slice(&d[..chunk.len()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthConfig, SaslLogin};
    use crate::sasl::SaslUsers;
    use crate::server::{CoreConfig, Input};
    use rzk_proto::OpCode;
    use rzk_tree::DataTree;

    const CONN: ConnId = 7;

    fn server(auth: AuthConfig) -> ZooKeeperServer {
        let cfg = CoreConfig { server_id: 1, auth, ..CoreConfig::default() };
        let mut s = ZooKeeperServer::new(cfg, DataTree::new(), 0, 1000);
        s.handle(0, 1000, Input::Accepted { conn: CONN, peer: "127.0.0.1:5000".parse().unwrap(), auth: Vec::new() });
        let mut w = Writer::new();
        ConnectRequest { timeout_ms: 10_000, passwd: vec![0; 16], read_only: Some(false), ..Default::default() }.write(&mut w);
        s.handle(0, 1000, Input::Frame { conn: CONN, payload: w.into_inner() });
        let zxid = s.take_actions().iter().find_map(|a| if let Action::Append(r) = a { Some(r.header.zxid) } else { None });
        s.handle(0, 1000, Input::Committed { zxid: zxid.expect("createSession"), record: None });
        s.take_actions();
        s
    }

    fn login() -> Option<SaslLogin> {
        Some(SaslLogin {
            users: SaslUsers { users: [("bob".into(), "pw".into())].into(), super_password: None },
            nonce_secret: [3; 32],
            gssapi: None,
        })
    }

    /// A GSSAPI acceptor whose contexts take "ap-req" and wrap by prefixing "W".
    #[derive(Debug)]
    struct FakeAcceptor;
    #[derive(Debug)]
    struct FakeCtx;
    impl crate::gssapi::GssAcceptor for FakeAcceptor {
        fn new_context(&self) -> Box<dyn crate::gssapi::GssContext> {
            Box::new(FakeCtx)
        }
        fn default_realm(&self) -> Option<String> {
            Some("EXAMPLE.COM".into())
        }
    }
    impl crate::gssapi::GssContext for FakeCtx {
        fn accept(&mut self, token: &[u8]) -> Result<(Option<Vec<u8>>, bool), String> {
            if token == b"ap-req" {
                Ok((Some(b"ap-rep".to_vec()), true))
            } else {
                Err("invalid token".into())
            }
        }
        fn source_name(&self) -> Result<String, String> {
            Ok("bob@EXAMPLE.COM".into())
        }
        fn wrap(&mut self, m: &[u8]) -> Result<Vec<u8>, String> {
            Ok([b"W".as_slice(), m].concat())
        }
        fn unwrap(&mut self, t: &[u8]) -> Result<Vec<u8>, String> {
            t.strip_prefix(b"W").map(<[u8]>::to_vec).ok_or_else(|| "bad".into())
        }
    }

    fn kerberos_login(remove_realm: bool) -> Option<SaslLogin> {
        let naming = crate::gssapi::KerberosNaming { remove_host: false, remove_realm, default_realm: Some("EXAMPLE.COM".into()) };
        let gssapi = Some(crate::auth::GssapiLogin { acceptor: std::sync::Arc::new(FakeAcceptor), naming });
        Some(SaslLogin { gssapi, ..login().unwrap() })
    }

    #[test]
    fn gssapi_login_gives_the_principal_s_sasl_id() {
        let mut s = server(AuthConfig { sasl_login: kerberos_login(true), sasl_super_users: vec!["bob".into()], ..AuthConfig::default() });
        assert_eq!(sasl(&mut s, b"ap-req"), (0, Some(b"ap-rep".to_vec()), false));
        assert_eq!(sasl(&mut s, b""), (0, Some(b"W\x01\x01\x00\x00".to_vec()), false));
        // The last step: OK with a null token, and the ids.
        assert_eq!(sasl(&mut s, b"W\x01\x00\x00\x00bob@EXAMPLE.COM"), (0, None, false));
        assert_eq!(s.conns[&CONN].auth, vec![Id::new("ip", "127.0.0.1"), Id::new("sasl", "bob"), Id::new("super", "")]);
        // A DIGEST-MD5 exchange finds the GSSAPI server: the mechanism is the login's.
        let mut s = server(AuthConfig { sasl_login: kerberos_login(false), ..AuthConfig::default() });
        assert_eq!(sasl(&mut s, b""), (ErrorCode::AuthFailed.code(), None, true));
        let mut s = server(AuthConfig { sasl_login: kerberos_login(false), ..AuthConfig::default() });
        sasl(&mut s, b"ap-req");
        sasl(&mut s, b"");
        sasl(&mut s, b"W\x01\x00\x00\x00");
        assert!(s.conns[&CONN].auth.contains(&Id::new("sasl", "bob@EXAMPLE.COM")));
    }

    /// One SASL packet: (err, token or None for null, closed?).
    fn sasl(s: &mut ZooKeeperServer, token: &[u8]) -> (i32, Option<Vec<u8>>, bool) {
        let mut w = Writer::new();
        RequestHeader { xid: 5, op: OpCode::Sasl.code() }.write(&mut w);
        w.write_buffer(token);
        s.handle(0, 1000, Input::Frame { conn: CONN, payload: w.into_inner() });
        let actions = s.take_actions();
        let closed = actions.iter().any(|a| matches!(a, Action::Close { .. }));
        let frame = actions.iter().find_map(|a| if let Action::Send { frame, .. } = a { Some(frame.clone()) } else { None });
        let frame = frame.expect("a reply");
        let mut r = Reader::new(&frame[4..]);
        let h = ReplyHeader::read(&mut r).unwrap();
        assert_eq!((h.xid, h.zxid), (5, Zxid(0)));
        (h.err, r.read_buffer_opt().unwrap(), closed)
    }

    #[test]
    fn no_login_answers_ok_with_a_null_token() {
        let mut s = server(AuthConfig::default());
        assert_eq!(sasl(&mut s, b""), (0, None, false));
    }

    #[test]
    fn failure_closes_unless_allowed() {
        let mut s = server(AuthConfig { sasl_login: login(), ..AuthConfig::default() });
        let (err, challenge, _) = sasl(&mut s, b"");
        assert!(err == 0 && challenge.unwrap().starts_with(b"realm="));
        assert_eq!(sasl(&mut s, b"username=\"bob\""), (ErrorCode::AuthFailed.code(), None, true));

        let mut s = server(AuthConfig { sasl_login: login(), allow_sasl_failed_clients: true, ..AuthConfig::default() });
        sasl(&mut s, b"");
        assert_eq!(sasl(&mut s, b"username=\"bob\""), (0, None, false));
        assert_eq!(s.conns[&CONN].auth, vec![Id::new("ip", "127.0.0.1")]);

        // Required SASL: SessionClosedRequireSaslAuth, and allowSaslFailedClients does not apply.
        let mut s = server(AuthConfig {
            sasl_login: login(),
            allow_sasl_failed_clients: true,
            enforce_auth_schemes: Some(vec!["sasl".into()]),
            ..AuthConfig::default()
        });
        sasl(&mut s, b"");
        assert_eq!(sasl(&mut s, b"x=y"), (ErrorCode::SessionClosedRequireSaslAuth.code(), None, true));
    }

    #[test]
    fn nonces_differ() {
        let mut s = server(AuthConfig { sasl_login: login(), ..AuthConfig::default() });
        let (_, a, _) = sasl(&mut s, b"");
        s.conns.get_mut(&CONN).unwrap().sasl = None;
        let (_, b, _) = sasl(&mut s, b"");
        assert_ne!(a, b);
    }
}
