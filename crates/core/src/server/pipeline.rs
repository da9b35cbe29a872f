//! The write pipeline: prep → a txn with the next zxid → `Action::Append` (a proposal) → the
//! commit → apply in zxid order → the reply in the session's order. Owns the proposals in
//! flight and the predicted digest, the roll-back when the log refuses appends
//! (`AppendFailed`), the committed txns that come from a leader (matched to the learner's
//! forwarded request), a learner's forwarding of writes and syncs, and the leader's side:
//! learners' forwarded requests and their syncs, answered once what came before is committed.

use super::{Action, Conn, ConnId, ConnState, CoreConfig, InFlight, Origin, PeerId, Pending, Role, RoleState, ZooKeeperServer};
use crate::prep::{Outstanding, PrepContext, QuotaRecord, ReconfigView};
use crate::{audit, auth};
use rzk_proto::client::{OpResult, ReplyHeader, Request, RequestHeader, Response};
use rzk_proto::txn::{Txn, TxnDigest, TxnHeader, TxnRecord};
use rzk_proto::{perms, ErrorCode, Id, OpCode, SessionId, Zxid};
use rzk_tree::{DataTree, TxnResult};

impl ZooKeeperServer {
    pub(super) fn on_write(&mut self, conn: ConnId, session: SessionId, header: RequestHeader, body: &[u8], received_ms: i64) {
        let op = OpCode::from_code(header.op).expect("write ops are known");
        let zxid = self.next_zxid();
        let time = self.wall_ms;
        let txn = if op == OpCode::CloseSession {
            self.sessions.set_closing(session);
            Ok(self.close_session_txn(session, zxid))
        } else if !self.check_owner(session, self.my_peer()) {
            Err(ErrorCode::SessionMoved)
        } else {
            let c = self.conns.get(&conn).expect("conn");
            prep_request(
                &self.tree,
                &mut self.outstanding,
                &self.cfg,
                &mut self.stats.quota,
                &c.auth,
                session,
                header.op,
                body,
                zxid,
                time,
                self.reconfig_view.as_ref(),
            )
        };
        let (txn, op_code) = txn_and_op(op, txn);
        let header_txn = TxnHeader { client_id: session, cxid: header.xid, zxid, time, op: op_code.code() };
        c_push_write(self.conns.get_mut(&conn).expect("conn"), zxid);
        self.append(header_txn, txn, Origin::Client { conn, xid: header.xid, op, received_ms });
    }

    /// With the audit log on: what an audited write said, kept on its connection until its
    /// txn is applied.
    pub(super) fn note_audit(&mut self, conn: ConnId, session: SessionId, xid: i32, op: i32, body: &[u8]) {
        if self.cfg.audit_server_user.is_none() {
            return;
        }
        let Some(c) = self.conns.get(&conn) else { return };
        // A sasl id has a user name only when SASLAuthenticationProvider is configured.
        let ids: Vec<_> = c.auth.iter().filter(|id| id.scheme != "sasl" || self.cfg.auth.sasl_provider).cloned().collect();
        if let Some(r) = audit::request(session, op, body, &ids, &super::ip_text(c.peer.ip())) {
            self.audit_pending.insert((session, xid), r);
        }
    }

    /// The audit events of a client's write whose txn was applied (`hdr` names its session
    /// and cxid); nothing for txns nobody here asked for.
    fn audit_committed(&mut self, hdr: &TxnHeader, txn: &Txn, result: &TxnResult) {
        if let Some(r) = self.audit_pending.remove(&(hdr.client_id, hdr.cxid)) {
            for e in audit::committed(&r, txn, result) {
                self.out.push(Action::Audit(Box::new(e)));
            }
        }
    }

    pub(super) fn append(&mut self, header: TxnHeader, txn: Txn, origin: Origin) {
        // The digest after this txn: the previous one moved by what prep recorded for it
        // (nothing for an error, a session creation or a failed multi).
        // As ZooKeeper, start from the tree's digest when nothing is in flight, and log no
        // digest for an error txn.
        let delta = self.outstanding.take_digest_delta();
        if self.in_flight.is_empty() && self.predicted_digest.is_some() {
            self.predicted_digest = Some(self.tree.digest());
        }
        let digest = match (self.predicted_digest, &txn) {
            (Some(d), t) => {
                let d = d.wrapping_add(delta);
                self.predicted_digest = Some(d);
                (!matches!(t, Txn::Error { .. })).then(|| TxnDigest { version: self.tree.digest_version(), tree_digest: d })
            }
            (None, _) => None,
        };
        let record = TxnRecord { header, txn, digest };
        self.stats.txns_appended += 1;
        self.out.push(Action::Append(record.clone()));
        self.in_flight.push_back(InFlight { record, origin, digest_after: self.predicted_digest });
    }

    /// This server's own proposal `zxid` is committed: it must be the oldest in flight.
    pub(super) fn on_proposal_committed(&mut self, zxid: Zxid) {
        let f = self.in_flight.pop_front().unwrap_or_else(|| panic!("committed own proposal {zxid} but none is in flight"));
        assert_eq!(f.record.header.zxid, zxid, "ZAB committed {zxid} but the oldest proposal in flight is {}", f.record.header.zxid);
        if self.role() == Role::Leader {
            let latency = self.wall_ms - f.record.header.time;
            if latency >= 0 {
                self.stats.quorum_ack_latency.observe(latency);
            }
        }
        self.commit(f);
        self.release_leader_syncs(zxid);
    }

    pub(super) fn on_append_failed(&mut self, zxid: Zxid) {
        let mut failed = Vec::new();
        while self.in_flight.back().is_some_and(|f| f.record.header.zxid >= zxid) {
            failed.push(self.in_flight.pop_back().expect("back"));
        }
        if failed.is_empty() {
            return;
        }
        failed.reverse();
        debug_assert_eq!(failed[0].record.header.zxid, zxid, "the log fails from an appended zxid");
        self.outstanding.rollback_from(zxid);
        if self.predicted_digest.is_some() {
            self.predicted_digest = Some(self.in_flight.back().and_then(|f| f.digest_after).unwrap_or(self.tree.digest()));
        }
        self.last_zxid = Zxid(zxid.0 - 1);
        tracing::warn!(from = %zxid, count = failed.len(), "writes refused: the transaction log could not take them");
        for f in failed {
            let hdr = &f.record.header;
            // Never applied: not audited (the client hears ConnectionLoss and retries).
            self.audit_pending.remove(&(hdr.client_id, hdr.cxid));
            let closes = matches!(f.record.txn, Txn::CloseSession { .. });
            match f.origin {
                Origin::Client { conn, xid, op, received_ms } => {
                    if closes {
                        self.sessions.reopen(hdr.client_id, self.now_ms);
                    }
                    if let Some(c) = self.conns.get_mut(&conn) {
                        for p in c.pending.iter_mut() {
                            if matches!(p, Pending::Write { zxid: z } if *z == hdr.zxid) {
                                *p = Pending::Failed { xid, op, err: ErrorCode::ConnectionLoss, received_ms };
                            }
                        }
                    }
                    self.drain(conn);
                }
                Origin::Connect { conn } => {
                    let session = hdr.client_id;
                    self.sessions.remove(session);
                    if self.session_conn.get(&session) == Some(&conn) {
                        self.session_conn.remove(&session);
                    }
                    self.close(conn, format!("cannot create session {session}: the transaction log refused the write"));
                }
                Origin::Upgrade { conn } => {
                    // The session stays local (its ephemeral create behind fails too).
                    let session = hdr.client_id;
                    self.sessions.remove(session);
                    if let Some(l) = self.leader_mut() {
                        l.owners.remove(&session);
                    }
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.pending.retain(|p| !matches!(p, Pending::Write { zxid: z } if *z == hdr.zxid));
                        let timeout = c.timeout_ms;
                        self.local.add(session, timeout, self.now_ms);
                    }
                    self.drain(conn);
                }
                Origin::Internal => {
                    if closes {
                        // An expiry: it is tried again at the next tick.
                        self.sessions.reopen(hdr.client_id, self.now_ms);
                        self.sessions.expire_now(hdr.client_id, self.now_ms);
                    }
                }
                Origin::Remote { from } => {
                    // ZAB has no way to refuse a learner's request: its client waits until
                    // the learner's link to the leader resets (the driver should rather step
                    // down than refuse a proposal).
                    tracing::warn!(zxid = %hdr.zxid, learner = from, "a learner's request could not be proposed");
                    if closes {
                        self.sessions.reopen(hdr.client_id, self.now_ms);
                    } else if matches!(f.record.txn, Txn::CreateSession { .. }) {
                        self.sessions.remove(hdr.client_id);
                        if let Some(l) = self.leader_mut() {
                            l.owners.remove(&hdr.client_id);
                        }
                    }
                }
            }
        }
        // Learners' syncs waited for txns that will never commit: they wait for the last
        // txn still in flight now, or are answered at once.
        let last = self.last_zxid;
        if let Some(l) = self.leader_mut() {
            for (z, _) in l.syncs.iter_mut() {
                if *z > last {
                    *z = last;
                }
            }
        }
        self.release_leader_syncs(self.tree.last_processed_zxid());
    }

    pub(super) fn commit(&mut self, f: InFlight) {
        let hdr = &f.record.header;
        // The ephemerals a closeSession deletes, audited on every server (and whether each
        // is still there to delete).
        let closing = match (&self.cfg.audit_server_user, &f.record.txn) {
            (Some(_), Txn::CloseSession { paths_to_delete }) => {
                paths_to_delete.iter().map(|p| (p.clone(), self.tree.get(p).is_some())).collect::<Vec<_>>()
            }
            _ => Vec::new(),
        };
        let mut outcome = self.tree.apply(hdr, &f.record.txn);
        if let (Some(user), false) = (&self.cfg.audit_server_user, closing.is_empty()) {
            for e in audit::ephemerals_deleted(hdr.client_id, user, &closing) {
                self.out.push(Action::Audit(Box::new(e)));
            }
        }
        if !self.audit_pending.is_empty() {
            match f.record.txn {
                Txn::CloseSession { .. } => {
                    // Whatever else the closed session asked for will not be applied now.
                    let s = hdr.client_id;
                    self.audit_pending.retain(|(session, _), _| *session != s);
                }
                // A session's creation (or a local session's upgrade, cxid 0) is no request
                // the audit log records.
                Txn::CreateSession { .. } => {}
                _ => self.audit_committed(hdr, &f.record.txn, &outcome.result),
            }
        }
        self.outstanding.applied(hdr.zxid);
        if let Some(d) = f.record.digest.as_ref().filter(|_| self.tree.options().digest_enabled) {
            if self.digest_fuzzy {
                // A fuzzy snapshot being replayed: the first match says it converged.
                if d.version == self.tree.digest_version() && d.tree_digest == self.tree.digest() {
                    tracing::info!(zxid = %hdr.zxid, "the snapshot's replay converged: its digest matches the leader's");
                    self.digest_fuzzy = false;
                    self.tree.set_digest_log_paused(false);
                }
            } else if d.tree_digest != self.tree.digest() {
                // What ZooKeeper reports as a digest mismatch: the logged digest is wrong.
                self.digest_mismatches += 1;
                tracing::error!(zxid = %hdr.zxid, op = hdr.op, "digest mismatch: logged {} but the tree's is {} after applying", d.tree_digest, self.tree.digest());
                // ZooKeeper 3.8's prep mispredicts some creates the same way (its own log then
                // shows "First digest mismatch" at the same txn); tests use other shapes.
                #[cfg(test)]
                panic!("digest mismatch at {} ({:?})", hdr.zxid, f.record.txn);
            }
        }
        // A watcher hears of a change only if it may READ the node (as ZooKeeper checks).
        let mut deliveries = std::mem::take(&mut outcome.deliveries);
        let mut i = 0;
        deliveries.retain(|(watcher, _)| {
            let allowed = match (outcome.delivery_acls.get(i), self.conns.get(&watcher.0)) {
                (Some(acl), Some(c)) => auth::check_acl(&self.cfg.auth, acl, perms::READ, &c.auth).is_ok(),
                _ => true,
            };
            i += 1;
            allowed
        });
        self.deliver(deliveries);
        let zxid = hdr.zxid;
        match (&f.record.txn, hdr.op) {
            (Txn::CreateSession { timeout_ms }, _) => {
                // A leader (or standalone) tracked it at prep; a learner learns it now
                // (ZooKeeper's commitSession, which also reports it to the leader).
                let session = hdr.client_id;
                if self.sessions.get(session).is_none() {
                    self.sessions.add(session, *timeout_ms, self.now_ms);
                }
                if let Some(l) = self.learner_mut() {
                    l.touches.insert(session, *timeout_ms);
                }
            }
            (Txn::CloseSession { .. }, _) => {
                let session = hdr.client_id;
                self.sessions.remove(session);
                match &mut self.role {
                    RoleState::Leader(l) => {
                        l.owners.remove(&session);
                    }
                    RoleState::Follower(l) | RoleState::Observer(l) => {
                        l.touches.remove(&session);
                    }
                    RoleState::Standalone | RoleState::NotServing | RoleState::ReadOnly => {}
                }
                let conn = self.session_conn.remove(&session);
                if let (Origin::Client { conn, xid, received_ms, .. }, _) = (&f.origin, ()) {
                    let h = ReplyHeader { xid: *xid, zxid, err: 0 };
                    let (conn, received_ms) = (*conn, *received_ms);
                    self.pop_write(conn, zxid);
                    self.finish(conn, h, &Response::Empty, Some(OpCode::CloseSession), received_ms);
                    self.close(conn, session_reason(session, " closed by client"));
                } else if let Some(conn) = conn {
                    self.close(conn, session_reason(session, " expired"));
                }
                return;
            }
            _ => {}
        }
        match f.origin {
            Origin::Connect { conn } => {
                self.pop_write(conn, zxid);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.state = ConnState::Connected;
                    c.stats.last_op = "createSession";
                    self.send_connect_response(conn, true);
                }
                self.drain(conn);
            }
            Origin::Client { conn, .. } if f.record.txn == (Txn::Error { err: ErrorCode::SessionMoved.code() }) => {
                // As ZooKeeper's FinalRequestProcessor: a moved session gets no answer here,
                // its connection is closed (the client carries on with the server it moved to).
                self.pop_write(conn, zxid);
                self.close(conn, format!("session {} moved to another server", hdr.client_id));
            }
            Origin::Client { conn, xid, op, received_ms } => {
                let (err, resp) = reply_for(op, &f.record.txn, &outcome.result);
                let h = ReplyHeader { xid, zxid, err: err.code() };
                self.pop_write(conn, zxid);
                if self.conns.contains_key(&conn) {
                    self.finish(conn, h, &resp, Some(op), received_ms);
                    self.drain(conn);
                }
            }
            Origin::Upgrade { conn } => {
                // The session is global now; what waited behind its createSession goes on.
                self.pop_write(conn, zxid);
                self.drain(conn);
            }
            Origin::Internal | Origin::Remote { .. } => {}
        }
    }

    pub(super) fn pop_write(&mut self, conn: ConnId, zxid: Zxid) {
        if let Some(c) = self.conns.get_mut(&conn) {
            match c.pending.front() {
                Some(Pending::Write { zxid: z }) if *z == zxid => {
                    c.pending.pop_front();
                }
                other => debug_assert!(false, "conn {conn}: committed {zxid} but queue front is {other:?}"),
            }
        }
    }

    /// A committed txn from the leader (or a new leader's initial history): nothing of this
    /// server's is in flight then (learners forward their writes; a leader serves only once
    /// its history is delivered).
    pub(super) fn on_committed(&mut self, record: TxnRecord) {
        let zxid = record.header.zxid;
        assert!(
            self.in_flight.is_empty(),
            "txn {zxid} committed from the leader while this server's proposal {} is in flight",
            self.in_flight.front().map(|f| f.record.header.zxid).unwrap_or_default()
        );
        if zxid <= self.tree.last_processed_zxid() {
            tracing::warn!(%zxid, applied = %self.tree.last_processed_zxid(), "committed txn already applied; ignored");
            return;
        }
        if self.last_zxid < zxid {
            self.last_zxid = zxid;
        }
        let origin = self.local_origin(&record.header);
        self.commit(InFlight { record, origin, digest_after: None });
        self.release_leader_syncs(zxid);
    }

    /// Learner: who waits for a committed txn here. It answers the session's local
    /// connection when that connection's oldest pending request is the forwarded one
    /// (ZooKeeper's CommitProcessor matches the session's queue head by cxid; a mismatch is
    /// applied as someone else's txn and the pending request keeps waiting).
    pub(super) fn local_origin(&mut self, hdr: &TxnHeader) -> Origin {
        if !self.role().is_learner() {
            return Origin::Internal;
        }
        let Some(&conn) = self.session_conn.get(&hdr.client_id) else {
            return Origin::Internal;
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return Origin::Internal;
        };
        let Some(&Pending::Forwarded { xid, op, received_ms }) = c.pending.front() else {
            return Origin::Internal;
        };
        if xid != hdr.cxid {
            tracing::debug!(session = %hdr.client_id, cxid = hdr.cxid, expected = xid, "committed txn is not the session's next pending request");
            return Origin::Internal;
        }
        let creates = hdr.op == OpCode::CreateSession.code();
        if op == OpCode::CreateSession && !creates {
            // The leader turned the new session down (an error txn): nobody to serve.
            c.pending.pop_front();
            self.close(conn, format!("the leader refused session {}", hdr.client_id));
            return Origin::Internal;
        }
        if op != OpCode::CreateSession && creates {
            return Origin::Internal;
        }
        // From here the txn is this connection's: the commit path pops it as its write.
        *c.pending.front_mut().expect("front") = Pending::Write { zxid: hdr.zxid };
        if op == OpCode::CreateSession && c.state == ConnState::Connected {
            // A local session's upgrade (its connection is long established).
            Origin::Upgrade { conn }
        } else if op == OpCode::CreateSession {
            Origin::Connect { conn }
        } else {
            Origin::Client { conn, xid, op, received_ms }
        }
    }

    /// Learner: a write or a sync goes to the leader (ZooKeeper's FollowerRequestProcessor);
    /// the connection's later requests wait behind it.
    pub(super) fn forward(&mut self, conn: ConnId, session: SessionId, header: RequestHeader, body: Vec<u8>, received_ms: i64) {
        let (cxid, op) = (header.xid, header.op);
        let c = self.conns.get_mut(&conn).expect("conn");
        let auth = c.auth.clone();
        if header.op == OpCode::Sync.code() {
            c.pending.push_back(Pending::Sync { header, body: body.clone(), received_ms, done: false });
            let l = self.learner_mut().expect("only a learner forwards");
            l.syncs.push_back((conn, cxid));
        } else {
            let op = OpCode::from_code(header.op).expect("write ops are known");
            c.pending.push_back(Pending::Forwarded { xid: header.xid, op, received_ms });
        }
        self.out.push(Action::Forward { session, cxid, op, body, auth });
    }

    /// Leader: a learner's REQUEST, prepped as a local write would be (ZooKeeper's
    /// PrepRequestProcessor behind `submitLearnerRequest`). Nobody answers here: the learner
    /// answers its client when it applies the committed txn.
    pub(super) fn on_forwarded(&mut self, from: PeerId, session: SessionId, cxid: i32, op: i32, body: Vec<u8>, auth: Vec<Id>) {
        if self.role() != Role::Leader {
            tracing::warn!(learner = from, role = self.role().name(), "forwarded request while not leading; dropped");
            return;
        }
        let Some(code) = OpCode::from_code(op) else {
            tracing::warn!(learner = from, op, "forwarded request of unknown type; dropped");
            return;
        };
        let time = self.wall_ms;
        let (txn, op_code) = match code {
            OpCode::Sync => {
                // Prep checks (and, if unset, sets) the session's owner; the sync is answered
                // whatever that says.
                if self.sessions.is_live(session) {
                    self.check_owner(session, from);
                }
                // Leader.processSync: answered once everything proposed so far is committed.
                if self.in_flight.is_empty() {
                    self.out.push(Action::SyncReply { to: from });
                } else {
                    let last = self.last_zxid;
                    self.leader_mut().expect("leading").syncs.push_back((last, from));
                }
                return;
            }
            OpCode::CreateSession => {
                let timeout = body.get(..4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                match timeout {
                    Some(timeout_ms) => {
                        if self.sessions.get(session).is_none() {
                            self.sessions.add(session, timeout_ms, self.now_ms);
                        }
                        self.leader_mut().expect("leading").owners.insert(session, from);
                        (Txn::CreateSession { timeout_ms }, OpCode::CreateSession)
                    }
                    None => (Txn::Error { err: ErrorCode::MarshallingError.code() }, OpCode::Error),
                }
            }
            OpCode::CloseSession => {
                // As local: no owner check (an expiry is nobody's), the session's ephemerals go.
                let zxid = self.last_zxid.next();
                self.sessions.set_closing(session);
                (self.close_session_txn(session, zxid), OpCode::CloseSession)
            }
            // CloseSession is a client write too, taken above.
            write if write.is_client_write() => {
                let zxid = self.last_zxid.next();
                // A session local to the learner passes unowned (LeaderSessionTracker.checkSession).
                let txn = if !self.sessions.is_live(session) && !self.local.is_live(session) && !self.local_elsewhere(session) {
                    Err(ErrorCode::SessionExpired)
                } else if self.sessions.is_live(session) && !self.check_owner(session, from) {
                    Err(ErrorCode::SessionMoved)
                } else {
                    prep_request(
                        &self.tree,
                        &mut self.outstanding,
                        &self.cfg,
                        &mut self.stats.quota,
                        &auth,
                        session,
                        op,
                        &body,
                        zxid,
                        time,
                        self.reconfig_view.as_ref(),
                    )
                };
                txn_and_op(code, txn)
            }
            _ => {
                tracing::warn!(learner = from, op = code.name(), "forwarded request is not a write; dropped");
                return;
            }
        };
        let zxid = self.next_zxid();
        let header = TxnHeader { client_id: session, cxid, zxid, time, op: op_code.code() };
        self.append(header, txn, Origin::Remote { from });
    }

    /// Leader: a session this server does not track may be local to another member, when
    /// local sessions are on and its id carries another server's id
    /// (`LeaderSessionTracker.checkSession`).
    fn local_elsewhere(&self, session: SessionId) -> bool {
        self.cfg.local_sessions_enabled && (session.0 >> 56) != self.cfg.server_id as i64
    }

    /// Leader: answers the learners' syncs that waited for txns up to `zxid`.
    pub(super) fn release_leader_syncs(&mut self, zxid: Zxid) {
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        while l.syncs.front().is_some_and(|(z, _)| *z <= zxid) {
            let (_, to) = l.syncs.pop_front().expect("front");
            self.out.push(Action::SyncReply { to });
        }
    }

    /// Learner: the leader's SYNC answers the oldest sync forwarded (ZooKeeper's
    /// `pendingSyncs`); its reply goes out in the connection's order.
    pub(super) fn on_synced(&mut self) {
        let Some((conn, xid)) = self.learner_mut().and_then(|l| l.syncs.pop_front()) else {
            tracing::warn!("SYNC from the leader with no sync pending");
            return;
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        for p in c.pending.iter_mut() {
            if let Pending::Sync { header, done, .. } = p {
                if header.xid == xid && !*done {
                    *done = true;
                    break;
                }
            }
        }
        self.drain(conn);
    }
}

/// Prep for a write request other than closeSession: its txn, or the error its ErrorTxn
/// carries.
#[allow(clippy::too_many_arguments)]
pub(super) fn prep_request(
    tree: &DataTree,
    outstanding: &mut Outstanding,
    cfg: &CoreConfig,
    quota: &mut QuotaRecord,
    auth_ids: &[Id],
    session: SessionId,
    op: i32,
    body: &[u8],
    zxid: Zxid,
    time: i64,
    reconfig_view: Option<&ReconfigView>,
) -> Result<Txn, ErrorCode> {
    let req = Request::decode(op, body).map_err(|_| ErrorCode::MarshallingError)?;
    let mut ctx = PrepContext {
        tree,
        outstanding,
        auth_cfg: &cfg.auth,
        auth_ids,
        session,
        extended_types_enabled: cfg.extended_types_enabled,
        reconfig_enabled: cfg.reconfig_enabled,
        standalone_enabled: cfg.standalone_enabled,
        reconfig_view,
        enforce_quota: cfg.enforce_quota,
        quota,
        now_ms: time,
    };
    ctx.prep(&req, zxid, time)
}

/// The txn to log for a prepped request and its header's type (an error txn on failure).
pub(super) fn txn_and_op(op: OpCode, txn: Result<Txn, ErrorCode>) -> (Txn, OpCode) {
    match txn {
        Ok(t) => {
            let code = if op == OpCode::Multi { OpCode::Multi } else { t.op() };
            (t, code)
        }
        Err(e) => (Txn::Error { err: e.code() }, OpCode::Error),
    }
}

pub(super) fn c_push_write(c: &mut Conn, zxid: Zxid) {
    c.pending.push_back(Pending::Write { zxid });
}

/// The reply to a write, from what applying its txn gave.
pub(super) fn reply_for(op: OpCode, txn: &Txn, result: &TxnResult) -> (ErrorCode, Response) {
    // Which members of a multi were create2-like (their result carries a Stat).
    let members: Vec<bool> = match txn {
        Txn::Multi(ts) => ts.iter().map(|t| !matches!(t, Txn::Create { create2: false, .. })).collect(),
        _ => vec![],
    };
    match result {
        TxnResult::Error(e) => (*e, Response::Empty),
        TxnResult::Created { path, stat } => match op {
            OpCode::Create => (ErrorCode::Ok, Response::Path(path.clone())),
            _ => (ErrorCode::Ok, Response::Create2 { path: path.clone(), stat: stat.clone() }),
        },
        TxnResult::Deleted | TxnResult::Check | TxnResult::SessionClosed | TxnResult::SessionCreated => (ErrorCode::Ok, Response::Empty),
        // FinalRequestProcessor: a reconfig is answered with the new configuration and its Stat.
        TxnResult::SetData { stat } if matches!(txn, Txn::Reconfig(_)) => {
            let Txn::Reconfig(t) = txn else { unreachable!("matched above") };
            (ErrorCode::Ok, Response::GetData { data: t.data.clone(), stat: stat.clone() })
        }
        TxnResult::SetData { stat } | TxnResult::SetAcl { stat } => (ErrorCode::Ok, Response::Stat(stat.clone())),
        TxnResult::Multi(results) => (
            ErrorCode::Ok,
            Response::Multi(
                results
                    .iter()
                    .enumerate()
                    .map(|(i, r)| match r {
                        TxnResult::Created { path, stat } if members.get(i).copied().unwrap_or(false) => {
                            OpResult::Create2 { path: path.clone(), stat: stat.clone() }
                        }
                        TxnResult::Created { path, .. } => OpResult::Create { path: path.clone() },
                        TxnResult::Deleted => OpResult::Delete,
                        TxnResult::SetData { stat } => OpResult::SetData { stat: stat.clone() },
                        TxnResult::Check => OpResult::Check,
                        TxnResult::Error(e) => OpResult::Error { err: e.code() },
                        _ => OpResult::Error { err: ErrorCode::RuntimeInconsistency.code() },
                    })
                    .collect(),
            ),
        ),
    }
}

/// `session 0x<id><tail>`: a close reason of every session that ends (churn closes thousands a
/// second); `format!` cost ~2,300 instructions for it, growing its String field by field.
fn session_reason(session: SessionId, tail: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let v = session.0 as u64;
    let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
    let mut s = String::with_capacity(10 + digits as usize + tail.len());
    s.push_str("session 0x");
    for i in (0..digits).rev() {
        s.push(char::from(HEX[((v >> (i * 4)) & 0xf) as usize]));
    }
    s.push_str(tail);
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn session_reason_is_format_s_text() {
        for id in [0i64, 1, 0xf, 0x10, 0x1234_5678_9abc, i64::MAX, -1, i64::MIN, 0x0100_0000_0000_0001] {
            let s = SessionId(id);
            assert_eq!(super::session_reason(s, " expired"), format!("session {s} expired"));
        }
    }

    use super::*;
    use crate::server::{Input, SocketAddr};
    use rzk_proto::client::{ConnectRequest, Create, PathWatchRequest};
    use rzk_proto::{Acl, Reader, Record, Writer};
    use std::collections::VecDeque;

    fn peer() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    #[test]
    fn a_reconfig_is_answered_with_the_new_configuration_and_its_stat() {
        let text = b"server.1=h:1:2:participant\nversion=100000002".to_vec();
        let txn = Txn::Reconfig(rzk_proto::txn::SetDataTxn { path: "/zookeeper/config".into(), data: Some(text.clone()), version: -1 });
        let stat = rzk_proto::Stat { version: -1, ..Default::default() };
        let r = reply_for(OpCode::Reconfig, &txn, &TxnResult::SetData { stat: stat.clone() });
        assert_eq!(r, (ErrorCode::Ok, Response::GetData { data: Some(text), stat }));
    }

    #[test]
    fn admin_authorize_as_zookeeper_3_9() {
        let s = ZooKeeperServer::new(CoreConfig::default(), DataTree::new(), 0, 1000);
        let all = rzk_proto::perms::ALL;
        let x509 = vec![Id::new("x509", "CN=a")];
        // The root's ACL is world:anyone: any authenticated caller passes.
        assert_eq!(s.admin_authorize("digest u:p", &[], "", all, "/"), Ok(()));
        assert_eq!(s.admin_authorize("x509", &x509, "", all, "/"), Ok(()));
        assert_eq!(s.admin_authorize("ip", &[], "127.0.0.1", all, "/"), Ok(()));
        // Not authenticated: no credentials, no certificate, unknown scheme, too many parts.
        for h in ["digest", "x509", "bogus u:p", "digest a b", ""] {
            assert_eq!(s.admin_authorize(h, &[], "", all, "/"), Err(ErrorCode::AuthFailed), "{h}");
        }
        assert_eq!(s.admin_authorize("digest u:p", &[], "", all, "/nothing"), Err(ErrorCode::NoNode));
    }

    fn connect(s: &mut ZooKeeperServer, conn: ConnId) {
        s.handle(0, 1000, Input::Accepted { conn, peer: peer(), auth: Vec::new() });
        let mut w = Writer::new();
        ConnectRequest { timeout_ms: 10_000, passwd: vec![0; 16], read_only: Some(false), ..Default::default() }.write(&mut w);
        s.handle(0, 1000, Input::Frame { conn, payload: w.into_inner() });
        let zxid = appended(s).expect("createSession appended");
        persist(s, zxid);
        assert!(sends(&s.take_actions(), conn) == 1, "connect response");
    }

    /// What the standalone member's ZAB node does once the log holds everything up to
    /// `zxid`: it commits this server's proposals through it, in order.
    fn persist(s: &mut ZooKeeperServer, zxid: Zxid) {
        while let Some(z) = s.proposed_front().filter(|z| *z <= zxid) {
            s.handle(0, 1000, Input::Committed { zxid: z, record: None });
        }
    }

    fn request(s: &mut ZooKeeperServer, conn: ConnId, xid: i32, req: &Request) {
        let mut w = Writer::new();
        RequestHeader { xid, op: req.op().code() }.write(&mut w);
        req.write(&mut w);
        s.handle(0, 1000, Input::Frame { conn, payload: w.into_inner() });
    }

    fn appended(s: &mut ZooKeeperServer) -> Option<Zxid> {
        let mut last = None;
        let mut keep = Vec::new();
        for a in s.take_actions() {
            match a {
                Action::Append(r) => last = Some(r.header.zxid),
                other => keep.push(other),
            }
        }
        s.out = keep;
        last
    }

    fn sends(actions: &[Action], conn: ConnId) -> usize {
        actions.iter().filter(|a| matches!(a, Action::Send { conn: c, .. } if *c == conn)).count()
    }

    fn reply_xids(actions: &[Action], conn: ConnId) -> Vec<i32> {
        replies(actions, conn).into_iter().map(|(xid, _)| xid).collect()
    }

    fn create(path: &str) -> Request {
        Request::Create(Create { op: OpCode::Create, path: path.into(), data: None, acl: Acl::open_unsafe(), flags: 0, ttl: None })
    }

    #[test]
    fn reads_wait_behind_the_connections_own_pending_write() {
        let mut s = ZooKeeperServer::new(CoreConfig::default(), DataTree::new(), 0, 1000);
        connect(&mut s, 1);
        connect(&mut s, 2);
        request(&mut s, 1, 1, &create("/a"));
        let zxid = appended(&mut s).expect("create appended");
        // conn 1's read waits; conn 2's read is answered now, from the committed tree.
        request(&mut s, 1, 2, &Request::Exists(PathWatchRequest { path: "/a".into(), watch: false }));
        request(&mut s, 2, 1, &Request::Exists(PathWatchRequest { path: "/a".into(), watch: false }));
        let a = s.take_actions();
        assert!(reply_xids(&a, 1).is_empty());
        assert_eq!(reply_xids(&a, 2), vec![1]);
        // Durable: the write's reply, then the read that waited, in xid order.
        persist(&mut s, zxid);
        assert_eq!(reply_xids(&s.take_actions(), 1), vec![1, 2]);
    }

    #[test]
    fn pipelined_writes_see_each_other_through_outstanding_changes() {
        let mut s = ZooKeeperServer::new(CoreConfig::default(), DataTree::new(), 0, 1000);
        connect(&mut s, 1);
        request(&mut s, 1, 1, &create("/p"));
        request(&mut s, 1, 2, &create("/p/c"));
        request(&mut s, 1, 3, &create("/p"));
        let zxid = appended(&mut s).unwrap();
        persist(&mut s, zxid);
        let frames: Vec<ReplyHeader> = s
            .take_actions()
            .iter()
            .filter_map(|a| match a {
                Action::Send { frame, reply: true, .. } => Some(ReplyHeader::from_bytes(&frame[4..]).unwrap()),
                _ => None,
            })
            .collect();
        let errs: Vec<i32> = frames.iter().map(|h| h.err).collect();
        assert_eq!(errs, vec![0, 0, ErrorCode::NodeExists.code()]);
        assert_eq!(s.tree().get_children("/p").unwrap(), vec!["c".to_string()]);
    }

    #[test]
    fn failed_multi_rolls_back_its_outstanding_changes() {
        let mut s = ZooKeeperServer::new(CoreConfig::default(), DataTree::new(), 0, 1000);
        connect(&mut s, 1);
        let multi = Request::Multi(vec![create("/m"), create("/missing/x")]);
        request(&mut s, 1, 1, &multi);
        // Prepped before the multi is applied: /m must not look created.
        request(&mut s, 1, 2, &create("/m"));
        let zxid = appended(&mut s).unwrap();
        persist(&mut s, zxid);
        let a = s.take_actions();
        let replies: Vec<(ReplyHeader, Vec<u8>)> = a
            .iter()
            .filter_map(|a| match a {
                Action::Send { frame, reply: true, .. } => {
                    let mut r = Reader::new(&frame[4..]);
                    Some((ReplyHeader::read(&mut r).unwrap(), r.rest().to_vec()))
                }
                _ => None,
            })
            .collect();
        let Response::Multi(results) = Response::decode(OpCode::Multi, &replies[0].1).unwrap() else { panic!() };
        assert_eq!(results, vec![OpResult::Error { err: 0 }, OpResult::Error { err: ErrorCode::NoNode.code() }]);
        assert_eq!(replies[1].0.err, 0, "the create after the failed multi succeeds");
    }

    fn replies(actions: &[Action], conn: ConnId) -> Vec<(i32, i32)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { conn: c, frame, reply: true } if *c == conn => {
                    let h = ReplyHeader::from_bytes(&frame[4..]).unwrap();
                    Some((h.xid, h.err))
                }
                _ => None,
            })
            .collect()
    }

    fn seq_create(path: &str) -> Request {
        Request::Create(Create { op: OpCode::Create, path: path.into(), data: None, acl: Acl::open_unsafe(), flags: 2, ttl: None })
    }

    #[test]
    fn append_failed_refuses_the_txns_and_reissues_their_zxids() {
        let mut s = ZooKeeperServer::new(CoreConfig::default(), DataTree::new(), 0, 1000);
        connect(&mut s, 1);
        connect(&mut s, 2);
        request(&mut s, 1, 1, &create("/a"));
        let za = appended(&mut s).unwrap();
        request(&mut s, 1, 2, &seq_create("/a/s-"));
        let zb = appended(&mut s).unwrap();
        request(&mut s, 1, 3, &Request::Exists(PathWatchRequest { path: "/a".into(), watch: false }));
        request(&mut s, 2, 1, &create("/c"));
        let zc = appended(&mut s).unwrap();
        assert_eq!((zb.0, zc.0), (za.0 + 1, za.0 + 2));
        persist(&mut s, za);
        s.handle(0, 1000, Input::AppendFailed { zxid: zb });
        let a = s.take_actions();
        let loss = ErrorCode::ConnectionLoss.code();
        // conn 1: /a succeeded, the sequential create was refused, the read behind it answered.
        assert_eq!(replies(&a, 1), vec![(1, 0), (2, loss), (3, 0)]);
        assert_eq!(replies(&a, 2), vec![(1, loss)]);
        assert_eq!(s.last_zxid(), za);
        // Writes go on from the refused zxid; the sequential name is not skipped.
        request(&mut s, 1, 4, &seq_create("/a/s-"));
        let z = appended(&mut s).unwrap();
        assert_eq!(z, zb);
        persist(&mut s, z);
        assert_eq!(replies(&s.take_actions(), 1), vec![(4, 0)]);
        assert_eq!(s.tree().get_children("/a").unwrap(), vec!["s-0000000000".to_string()]);
        assert!(s.tree().get("/c").is_none());
    }

    fn audit_lines(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Audit(e) => Some(e.message().split_once('\t').map(|(_, rest)| rest.to_string()).unwrap_or_default()),
                _ => None,
            })
            .collect()
    }

    fn ephemeral(path: &str) -> Request {
        Request::Create(Create { op: OpCode::Create, path: path.into(), data: None, acl: Acl::open_unsafe(), flags: 1, ttl: None })
    }

    /// The audit log's events come out of the pipeline: a write whose client left before it
    /// committed is audited all the same (as ZooKeeper does), a write the log refused is not
    /// (it never happened), and a closed session's ephemerals are, as the server's user.
    #[test]
    fn audit_events_follow_what_was_applied() {
        let cfg = CoreConfig { audit_server_user: Some("zk".into()), ..Default::default() };
        let mut s = ZooKeeperServer::new(cfg, DataTree::new(), 0, 1000);
        connect(&mut s, 1);
        connect(&mut s, 2);
        request(&mut s, 1, 1, &create("/a"));
        let za = appended(&mut s).unwrap();
        request(&mut s, 1, 2, &ephemeral("/a/e"));
        let ze = appended(&mut s).unwrap();
        request(&mut s, 2, 1, &create("/b"));
        let zb = appended(&mut s).unwrap();
        s.handle(0, 1000, Input::Closed { conn: 1 });
        persist(&mut s, ze);
        s.handle(0, 1000, Input::AppendFailed { zxid: zb });
        let a = s.take_actions();
        assert_eq!(
            audit_lines(&a),
            [
                "user=127.0.0.1\tip=127.0.0.1\toperation=create\tznode=/a\tznode_type=persistent\tresult=success",
                "user=127.0.0.1\tip=127.0.0.1\toperation=create\tznode=/a/e\tznode_type=ephemeral\tresult=success",
            ]
        );
        assert!(za < ze && s.audit_pending.is_empty());
        // Session 2 closes its session: nothing of its own to delete; session 1 expires later.
        let s1 = s.tree().get("/a/e").unwrap().stat.ephemeral_owner;
        s.handle(
            0,
            1000,
            Input::Frame { conn: 2, payload: [RequestHeader { xid: 2, op: OpCode::CloseSession.code() }.to_bytes()].concat() },
        );
        let zc = appended(&mut s).unwrap();
        persist(&mut s, zc);
        assert!(audit_lines(&s.take_actions()).is_empty());
        s.handle(60_000, 61_000, Input::Tick);
        if let Some(z) = appended(&mut s) {
            persist(&mut s, z);
        }
        let lines: Vec<String> = s
            .take_actions()
            .iter()
            .filter_map(|a| match a {
                Action::Audit(e) => Some(e.message()),
                _ => None,
            })
            .collect();
        assert_eq!(
            lines,
            [format!("session=0x{:x}\tuser=zk\toperation=ephemeralZNodeDeletionOnSessionCloseOrExpire\tznode=/a/e\tresult=success", s1)]
        );
    }

    /// Session 2's ephemeral is deleted and created again by session 1 (as a persistent node
    /// with a child, or as session 1's ephemeral) by txns still in flight when session 2
    /// closes: the node is no longer session 2's, so its closeSession lists nothing
    /// (ZooKeeper's prep replays every outstanding change, and the delete takes the path out),
    /// session 1's node survives, and the logged digest is the tree's.
    #[test]
    fn close_session_skips_an_ephemeral_deleted_and_recreated_in_flight() {
        use rzk_proto::client::DeleteRequest;
        for ephemeral in [false, true] {
            let mut s = ZooKeeperServer::new(CoreConfig::default(), DataTree::new(), 0, 1000);
            connect(&mut s, 1);
            connect(&mut s, 2);
            let (s1, s2) = (s.conns[&1].session.unwrap(), s.conns[&2].session.unwrap());
            let mk = |path: &str, flags: i32| {
                Request::Create(Create { op: OpCode::Create, path: path.into(), data: None, acl: Acl::open_unsafe(), flags, ttl: None })
            };
            request(&mut s, 1, 1, &mk("/p", 0));
            request(&mut s, 2, 1, &mk("/p/e", 1));
            let z = appended(&mut s).unwrap();
            persist(&mut s, z);
            s.take_actions();
            assert_eq!(s.tree().get_ephemerals(s2), vec!["/p/e".to_string()]);
            request(&mut s, 1, 2, &Request::Delete(DeleteRequest { path: "/p/e".into(), version: -1 }));
            if ephemeral {
                request(&mut s, 1, 3, &mk("/p/e", 1));
            } else {
                request(&mut s, 1, 3, &Request::Multi(vec![mk("/p/e", 0), mk("/p/e/x", 0)]));
            }
            request(&mut s, 2, 2, &Request::CloseSession);
            let logged: Vec<TxnRecord> =
                s.take_actions().into_iter().filter_map(|a| if let Action::Append(r) = a { Some(r) } else { None }).collect();
            let close = logged.last().unwrap();
            assert!(matches!(&close.txn, Txn::CloseSession { paths_to_delete } if paths_to_delete.is_empty()), "{:?}", close.txn);
            persist(&mut s, close.header.zxid);
            assert_eq!(s.digest_mismatches(), 0);
            let owner = if ephemeral { s1.0 } else { 0 };
            assert_eq!(s.tree().get("/p/e").unwrap().stat.ephemeral_owner, owner);
            assert_eq!(s.tree().get("/p/e/x").is_some(), !ephemeral);
            s.tree().check_invariants().unwrap();
        }
    }

    #[test]
    fn append_failed_for_a_new_session_closes_its_connection() {
        let mut s = ZooKeeperServer::new(CoreConfig::default(), DataTree::new(), 0, 1000);
        s.handle(0, 1000, Input::Accepted { conn: 9, peer: peer(), auth: Vec::new() });
        let mut w = Writer::new();
        ConnectRequest { timeout_ms: 10_000, passwd: vec![0; 16], read_only: Some(false), ..Default::default() }.write(&mut w);
        s.handle(0, 1000, Input::Frame { conn: 9, payload: w.into_inner() });
        let z = appended(&mut s).unwrap();
        s.handle(0, 1000, Input::AppendFailed { zxid: z });
        assert!(s.take_actions().iter().any(|a| matches!(a, Action::Close { conn: 9, .. })));
        assert_eq!(s.sessions().len(), 0);
        assert_eq!(s.last_zxid(), Zxid(z.0 - 1));
    }

    fn create_data(path: &str, data: &[u8]) -> Request {
        Request::Create(Create {
            op: OpCode::Create,
            path: path.into(),
            data: Some(data.to_vec()),
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl: None,
        })
    }

    /// With `enforceQuota`, a hard count limit of 2 on /q (the limit node as zkCli.sh's
    /// `setquota -N 2` writes it) refuses the third node of the subtree, alone and inside a
    /// multi (the member's QuotaExceeded, the ones before it OK, the rest
    /// RuntimeInconsistency); a byte hard limit refuses a setData; soft limits only warn;
    /// without enforceQuota nothing is refused.
    #[test]
    fn hard_quota_refuses_creates_and_set_data() {
        use rzk_proto::client::SetDataRequest;
        for enforce in [true, false] {
            let cfg = CoreConfig { enforce_quota: enforce, ..CoreConfig::default() };
            let mut s = ZooKeeperServer::new(cfg, DataTree::new(), 0, 1000);
            connect(&mut s, 1);
            let setup = [
                create("/q"),
                create("/zookeeper/quota/q"),
                create_data("/zookeeper/quota/q/zookeeper_limits", b"count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=2"),
                create_data("/zookeeper/quota/q/zookeeper_stats", b"count=0,bytes=0"),
                create("/soft"),
                create("/zookeeper/quota/soft"),
                create_data("/zookeeper/quota/soft/zookeeper_limits", b"count=1,bytes=1"),
                create_data("/zookeeper/quota/soft/zookeeper_stats", b"count=0,bytes=0"),
            ];
            for (i, r) in setup.iter().enumerate() {
                request(&mut s, 1, i as i32 + 1, r);
            }
            let z = appended(&mut s).unwrap();
            persist(&mut s, z);
            assert!(replies(&s.take_actions(), 1).iter().all(|(_, e)| *e == 0));
            let q = ErrorCode::QuotaExceeded.code();
            let want = |e: i32| if enforce { e } else { 0 };
            // /q counts itself: one more node fits, the next does not.
            request(&mut s, 1, 20, &create("/q/a"));
            let z = appended(&mut s).unwrap();
            persist(&mut s, z);
            request(&mut s, 1, 21, &create("/q/b"));
            request(&mut s, 1, 22, &Request::SetData(SetDataRequest { path: "/q/a".into(), data: Some(vec![0; 11]), version: -1 }));
            request(&mut s, 1, 23, &create("/soft/a"));
            request(&mut s, 1, 24, &create_data("/soft/b", b"xyz"));
            let z = appended(&mut s).unwrap();
            persist(&mut s, z);
            let got = replies(&s.take_actions(), 1);
            assert_eq!(got, vec![(20, 0), (21, want(q)), (22, want(q)), (23, 0), (24, 0)]);
            if enforce {
                request(&mut s, 1, 30, &Request::Multi(vec![create("/m"), create("/q/c"), create("/n")]));
                let z = appended(&mut s).unwrap();
                persist(&mut s, z);
                let a = s.take_actions();
                let frame = a
                    .iter()
                    .find_map(|a| match a {
                        Action::Send { frame, reply: true, .. } => Some(frame.clone()),
                        _ => None,
                    })
                    .unwrap();
                let mut r = Reader::new(&frame[4..]);
                assert_eq!(ReplyHeader::read(&mut r).unwrap().err, 0);
                let Response::Multi(results) = Response::decode(OpCode::Multi, r.rest()).unwrap() else { panic!() };
                let ri = ErrorCode::RuntimeInconsistency.code();
                assert_eq!(results, vec![OpResult::Error { err: 0 }, OpResult::Error { err: q }, OpResult::Error { err: ri }]);
                assert!(s.tree().get("/m").is_none());
                assert_eq!(s.stats.quota.exceeded_per_namespace.get("q"), Some(&3));
            }
        }
    }

    use proptest::prelude::*;

    fn req(kind: u8, name: u8, data: u8) -> Request {
        use rzk_proto::client::{DeleteRequest, SetAclRequest, SetDataRequest};
        let p = format!("/p{}", name % 4);
        let c = format!("{p}/c{}", name % 3);
        // (A create2 inside a multi is what ZooKeeper 3.8's processTxn cannot apply; ZooKeeper
        // itself logs a digest mismatch for it. Clients send create, op 1, in a multi.)
        let mk = |path: &str, flags: i32| {
            Request::Create(Create {
                op: OpCode::Create,
                path: path.into(),
                data: Some(vec![data; data as usize % 5]),
                acl: Acl::open_unsafe(),
                flags,
                ttl: None,
            })
        };
        match kind % 9 {
            0 => mk(&p, 0),
            1 => mk(&c, (data % 2) as i32),                     // persistent or ephemeral child
            2 => mk(&format!("{p}/s-"), 2 + (data % 2) as i32), // sequential (ephemeral or not)
            3 => Request::Delete(DeleteRequest { path: c, version: -1 }),
            4 => Request::Delete(DeleteRequest { path: p, version: -1 }),
            5 => Request::SetData(SetDataRequest { path: p, data: Some(vec![data; 3]), version: -1 }),
            6 => Request::SetAcl(SetAclRequest {
                path: p,
                acl: if data.is_multiple_of(2) { Acl::read_unsafe() } else { Acl::open_unsafe() },
                version: -1,
            }),
            7 => Request::Multi(vec![
                mk(&c, 0),
                Request::SetData(SetDataRequest { path: p.clone(), data: None, version: -1 }),
                mk(&format!("{c}/x"), 0),
            ]),
            _ => Request::Multi(vec![mk(&p, 0), Request::Delete(DeleteRequest { path: format!("/nope{name}"), version: -1 })]),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// Pipelined writes from several sessions, persisted in arbitrary groups, some
        /// refused by the log, sessions closing: every logged TxnDigest equals the tree's
        /// digest after applying it (a mismatch panics in tests), and the tree stays sound.
        #[test]
        fn logged_digests_match_the_tree_under_pipelining_and_refusals(
            steps in prop::collection::vec((1u64..=3, 0u8..10, 0u8..12, any::<u8>(), 0u8..6), 1..120),
        ) {
            let mut s = ZooKeeperServer::new(CoreConfig::default(), DataTree::new(), 0, 1000);
            let mut conns: Vec<ConnId> = vec![1, 2, 3];
            for c in &conns { connect(&mut s, *c); }
            let mut next_conn = 10;
            let mut in_flight: VecDeque<Zxid> = VecDeque::new();
            let mut xid = 0;
            for (ci, kind, name, data, act) in steps {
                let conn = conns[(ci - 1) as usize];
                xid += 1;
                if kind == 9 {
                    request(&mut s, conn, xid, &Request::CloseSession);
                } else {
                    request(&mut s, conn, xid, &req(kind, name, data));
                }
                let mut closed = false;
                let drain = |s: &mut ZooKeeperServer, in_flight: &mut VecDeque<Zxid>, closed: &mut bool| {
                    for a in s.take_actions() {
                        match a {
                            Action::Append(r) => in_flight.push_back(r.header.zxid),
                            Action::Close { conn: c, .. } if c == conn => *closed = true,
                            _ => {}
                        }
                    }
                };
                drain(&mut s, &mut in_flight, &mut closed);
                match act {
                    0 | 1 => {}
                    2 | 3 => if let Some(z) = in_flight.back().copied() {
                        persist(&mut s, z);
                        in_flight.clear();
                    },
                    4 => if in_flight.len() > 1 {
                        let z = in_flight[in_flight.len() / 2];
                        persist(&mut s, z);
                        while in_flight.front().is_some_and(|f| *f <= z) { in_flight.pop_front(); }
                    },
                    _ => if let Some(z) = in_flight.get(in_flight.len() / 2).copied() {
                        s.handle(0, 1000, Input::AppendFailed { zxid: z });
                        while in_flight.back().is_some_and(|f| *f >= z) { in_flight.pop_back(); }
                    },
                }
                drain(&mut s, &mut in_flight, &mut closed);
                if closed || !s.conns.contains_key(&conn) {
                    // The session closed (or its creation was refused): a new connection.
                    if let Some(z) = in_flight.back().copied() {
                        persist(&mut s, z);
                        in_flight.clear();
                        s.take_actions();
                    }
                    next_conn += 1;
                    connect(&mut s, next_conn);
                    conns[(ci - 1) as usize] = next_conn;
                }
            }
            if let Some(z) = in_flight.back().copied() {
                persist(&mut s, z);
            }
            prop_assert_eq!(s.digest_mismatches(), 0);
            prop_assert_eq!(s.tree().digest(), s.tree().compute_digest());
            s.tree().check_invariants().unwrap();
            prop_assert_eq!(s.last_zxid(), s.tree().last_processed_zxid());
        }
    }
}
