//! Sessions over time: the touches a learner collects for its leader's PINGs and the leader
//! applies, the session owner a leader checks (`SessionMoved`), the closeSession txn, the
//! tick that expires sessions (and runs the container manager, where sessions expire: on a
//! standalone server and on the leader), and the session table a snapshot carries.
//! The tracker itself (tick buckets) is [`crate::session`].

use super::pipeline::c_push_write;
use super::{frame_of, Action, ConnId, Origin, PeerId, Pending, Role, ZooKeeperServer};
use crate::prep::PrepContext;
use rzk_proto::client::{ReplyHeader, Response};
use rzk_proto::txn::{Txn, TxnHeader};
use rzk_proto::{OpCode, SessionId, Zxid};

/// The most sessions one tick expires (a closeSession txn each); the rest of a mass expiry
/// waits for the next ticks (the driver ticks every 50 ms: 20,000 sessions a second).
pub const EXPIRED_PER_TICK_MAX: usize = 1000;

impl ZooKeeperServer {
    /// Leader: the sessions a learner's PING reports active get their timeouts from now.
    pub(super) fn on_touches(&mut self, sessions: Vec<(SessionId, i32)>) {
        if self.role() == Role::Leader {
            for (id, timeout) in sessions {
                self.sessions.touch_for(id, timeout, self.now_ms);
            }
        }
    }

    /// Learner: the sessions its clients touched since the last call, with their timeouts
    /// (the payload of the learner's next PING to the leader).
    pub fn take_touches(&mut self) -> Vec<(SessionId, i32)> {
        match self.learner_mut() {
            Some(l) => std::mem::take(&mut l.touches).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// The sessions as the committed txns left them (ZooKeeper's `sessionsWithTimeouts`, what
    /// a snapshot or a SNAP to a learner carries): the tracker's, without those whose
    /// createSession is still in flight; a session whose closeSession is in flight is still in.
    pub fn committed_sessions(&self) -> Vec<(SessionId, i32)> {
        let creating: std::collections::HashSet<SessionId> = self
            .in_flight
            .iter()
            .filter(|f| matches!(f.record.txn, Txn::CreateSession { .. }))
            .map(|f| f.record.header.client_id)
            .collect();
        self.sessions.sessions().iter().filter(|s| !creating.contains(&s.id)).map(|s| (s.id, s.timeout_ms)).collect()
    }

    /// Restores a session loaded from disk (snapshot or log replay); it expires unless its
    /// client comes back within its timeout.
    pub fn restore_session(&mut self, id: SessionId, timeout_ms: i32) {
        self.sessions.add(id, timeout_ms, self.now_ms);
    }

    /// `SessionTrackerImpl.checkSession`'s owner rule (a leader's; elsewhere every request
    /// passes): the first checked request sets a session's owner; a request from another
    /// server is `SessionMoved`.
    pub(super) fn check_owner(&mut self, session: SessionId, owner: PeerId) -> bool {
        match self.leader_mut() {
            Some(l) => *l.owners.entry(session).or_insert(owner) == owner,
            None => true,
        }
    }

    /// closeSession: the ephemerals to delete are the session's, as the tree and the
    /// outstanding changes know them.
    pub(super) fn close_session_txn(&mut self, session: SessionId, zxid: Zxid) -> Txn {
        let mut ctx = PrepContext {
            tree: &self.tree,
            outstanding: &mut self.outstanding,
            auth_cfg: &self.cfg.auth,
            auth_ids: &[],
            session,
            extended_types_enabled: self.cfg.extended_types_enabled,
            reconfig_enabled: false,
            standalone_enabled: true,
            reconfig_view: None,
            enforce_quota: false,
            quota: &mut self.stats.quota,
            now_ms: self.wall_ms,
        };
        ctx.close_session(zxid)
    }

    /// A local session's closeSession: no txn (it owns no ephemerals); answered and closed
    /// here, as ZooKeeper's local session tracker does.
    pub(super) fn close_local_session(&mut self, conn: ConnId, session: SessionId, xid: i32) {
        self.local.remove(session);
        self.session_conn.remove(&session);
        let h = ReplyHeader { xid, zxid: self.tree.last_processed_zxid(), err: 0 };
        self.send(conn, frame_of(&h, &Response::Empty), true);
        self.close(conn, format!("local session {session} closed by client"));
    }

    /// A local session becomes global before its first ephemeral create (ZooKeeper's
    /// `upgradeSession`): a createSession txn with the session's id goes first, and the
    /// connection's requests wait behind it. A learner forwards it to the leader.
    pub(super) fn upgrade_session(&mut self, conn: ConnId, session: SessionId, timeout_ms: i32, received_ms: i64) {
        tracing::info!(%session, "upgrading a local session to a global one");
        self.local.remove(session);
        if self.role().is_learner() {
            return self.forward_session_create(conn, session, timeout_ms, received_ms);
        }
        self.append_session_create(conn, session, timeout_ms, Origin::Upgrade { conn });
    }

    /// Learner: `session`'s createSession goes to the leader as a REQUEST (cxid 0, the
    /// timeout as body); the connection's requests wait behind it until it is committed.
    pub(super) fn forward_session_create(&mut self, conn: ConnId, session: SessionId, timeout_ms: i32, received_ms: i64) {
        let c = self.conns.get_mut(&conn).expect("conn");
        c.pending.push_back(Pending::Forwarded { xid: 0, op: OpCode::CreateSession, received_ms });
        let auth = c.auth.clone();
        self.out.push(Action::Forward {
            session,
            cxid: 0,
            op: OpCode::CreateSession.code(),
            body: timeout_ms.to_be_bytes().to_vec(),
            auth,
        });
    }

    /// Leader or standalone: `session` is tracked (and owned by this server) and its
    /// createSession txn appended; the connection's requests wait behind it.
    pub(super) fn append_session_create(&mut self, conn: ConnId, session: SessionId, timeout_ms: i32, origin: Origin) {
        self.sessions.add(session, timeout_ms, self.now_ms);
        let me = self.my_peer();
        if let Some(l) = self.leader_mut() {
            l.owners.insert(session, me);
        }
        let zxid = self.next_zxid();
        let header = TxnHeader { client_id: session, cxid: 0, zxid, time: self.wall_ms, op: OpCode::CreateSession.code() };
        c_push_write(self.conns.get_mut(&conn).expect("conn"), zxid);
        self.append(header, Txn::CreateSession { timeout_ms }, origin);
    }

    /// Local sessions past their timeout go, with their connections (no txn: they own no
    /// ephemerals).
    fn expire_local_sessions(&mut self) {
        for session in self.local.expire(self.now_ms) {
            tracing::info!(%session, "local session expired");
            self.stats.sessions_expired += 1;
            self.local.remove(session);
            if let Some(conn) = self.session_conn.remove(&session) {
                self.close(conn, format!("session {session} expired"));
            }
        }
    }

    pub(super) fn on_tick(&mut self) {
        if self.role() != Role::NotServing {
            self.expire_local_sessions();
        }
        if !self.role().expires_sessions() {
            // Learners never expire sessions (the leader does, from their touches) and run no
            // container manager; nothing is served between roles.
            return;
        }
        // Paced: a mass expiry's closeSession txns go out over several ticks, so the requests
        // of other clients are served between them.
        for session in self.sessions.expire_at_most(self.now_ms, EXPIRED_PER_TICK_MAX) {
            tracing::info!(session = %session, "session expired");
            if self.trace_mask & super::zootrace::SESSION_TRACE_MASK != 0 {
                tracing::trace!(target: "rzk::zootrace", session = %session, "session expired: closeSession");
            }
            self.stats.sessions_expired += 1;
            let zxid = self.next_zxid();
            let header = TxnHeader { client_id: session, cxid: 0, zxid, time: self.wall_ms, op: OpCode::CloseSession.code() };
            let txn = self.close_session_txn(session, zxid);
            self.append(header, txn, Origin::Internal);
        }
        if self.now_ms >= self.next_container_check_ms {
            self.next_container_check_ms = self.now_ms + self.cfg.container_check_interval_ms;
            self.check_containers();
        }
    }

    /// ZooKeeper's ContainerManager: delete containers that had children and have none now,
    /// and TTL nodes without children whose TTL has passed since their last change.
    /// ZooKeeper's ContainerManager: every check interval, a deleteContainer request for each
    /// candidate (empty containers that once had children, expired empty TTL nodes), in the
    /// order of ZooKeeper's candidate set.
    pub(super) fn check_containers(&mut self) {
        let candidates = self.tree.container_candidates(self.wall_ms, self.cfg.container_max_never_used_interval_ms);
        for path in candidates {
            let zxid = self.next_zxid();
            let mut ctx = PrepContext {
                tree: &self.tree,
                outstanding: &mut self.outstanding,
                auth_cfg: &self.cfg.auth,
                auth_ids: &[],
                session: SessionId(0),
                extended_types_enabled: self.cfg.extended_types_enabled,
                reconfig_enabled: false,
                standalone_enabled: true,
                reconfig_view: None,
                enforce_quota: false,
                quota: &mut self.stats.quota,
                now_ms: self.wall_ms,
            };
            let (txn, op) = match ctx.prep_delete_container(&path, zxid) {
                Ok(t) => (t, OpCode::DeleteContainer),
                Err(e) => (Txn::Error { err: e.code() }, OpCode::Error),
            };
            let header = TxnHeader { client_id: SessionId(0), cxid: 0, zxid, time: self.wall_ms, op: op.code() };
            self.append(header, txn, Origin::Internal);
        }
    }
}
