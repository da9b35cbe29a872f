//! Pure tests of the core's ensemble mode: a leader core and learner cores driven by hand,
//! with a perfect "ZAB" in between (every appended txn is committed on every core, in order,
//! when the test says so).

use super::*;
use crate::auth;
use rzk_proto::client::{ConnectRequest, ConnectResponse, Create, PathRequest, PathWatchRequest, Request, SetDataRequest};
use rzk_proto::txn::TxnHeader;
use rzk_proto::{Acl, Writer};

const LEADER: PeerId = 1;
const F1: PeerId = 2;
const F2: PeerId = 3;
const TIMEOUT: i32 = 10_000;

fn cfg(sid: PeerId) -> CoreConfig {
    CoreConfig { server_id: sid as u8, tick_ms: 2000, ..CoreConfig::default() }
}

fn peer() -> SocketAddr {
    "127.0.0.1:5000".parse().unwrap()
}

/// A client-visible reply: (xid, zxid, err, body).
#[derive(Debug, Clone)]
struct Reply {
    xid: i32,
    zxid: Zxid,
    err: i32,
    body: Vec<u8>,
}

/// One test ensemble: servers by sid, a proposal queue standing in for ZAB, and what each
/// server's connections were sent.
struct Ens {
    servers: BTreeMap<PeerId, ZooKeeperServer>,
    /// Who leads now.
    leader: PeerId,
    now: i64,
    /// Proposed by the leader, not yet committed.
    proposals: VecDeque<TxnRecord>,
    /// Every action that is not handled by the harness, per server.
    seen: BTreeMap<PeerId, Vec<Action>>,
}

impl Ens {
    /// Server 1 leads epoch 1; 2 and 3 follow (3 is an observer when `observer`).
    fn new(observer: bool) -> Ens {
        let mut servers = BTreeMap::new();
        for sid in [LEADER, F1, F2] {
            let mut s = ZooKeeperServer::new(cfg(sid), DataTree::new(), 0, 1_700_000_000_000);
            let role = match sid {
                LEADER => Role::Leader,
                F2 if observer => Role::Observer,
                _ => Role::Follower,
            };
            s.handle(0, 1000, Input::StopServing);
            s.handle(0, 1000, Input::Serve { role, epoch: 1 });
            servers.insert(sid, s);
        }
        Ens { servers, leader: LEADER, now: 0, proposals: VecDeque::new(), seen: BTreeMap::new() }
    }

    fn s(&mut self, sid: PeerId) -> &mut ZooKeeperServer {
        self.servers.get_mut(&sid).unwrap()
    }

    fn input(&mut self, sid: PeerId, input: Input) {
        let now = self.now;
        self.s(sid).handle(now, 1000 + now, input);
        self.pump();
    }

    /// Carries messages between the servers until nothing moves (commits excepted).
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            let sids: Vec<PeerId> = self.servers.keys().copied().collect();
            for sid in sids {
                let actions = self.s(sid).take_actions();
                for a in actions {
                    moved = true;
                    let now = self.now;
                    match a {
                        Action::Append(r) => {
                            assert_eq!(sid, self.leader, "only the leader proposes");
                            self.proposals.push_back(r);
                        }
                        Action::Forward { session, cxid, op, body, auth } => {
                            self.s(self.leader).handle(now, 1000 + now, Input::Forwarded { from: sid, session, cxid, op, body, auth })
                        }
                        Action::Revalidate { session, timeout_ms } => {
                            self.s(self.leader).handle(now, 1000 + now, Input::Revalidate { from: sid, session, timeout_ms })
                        }
                        Action::RevalidateReply { to, session, valid } => {
                            self.s(to).handle(now, 1000 + now, Input::Revalidated { session, valid })
                        }
                        Action::SyncReply { to } => self.s(to).handle(now, 1000 + now, Input::Synced),
                        other => self.seen.entry(sid).or_default().push(other),
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Commits the oldest `n` proposals on every server (the leader's COMMIT, the learners'
    /// COMMIT/INFORM), in zxid order.
    fn commit(&mut self, n: usize) {
        for _ in 0..n {
            let r = self.proposals.pop_front().expect("a proposal to commit");
            let sids: Vec<PeerId> = self.servers.keys().copied().collect();
            for sid in sids {
                let now = self.now;
                // The leader applies its own proposal as prepped; the others get the txn.
                let record = (sid != self.leader).then(|| r.clone());
                self.s(sid).handle(now, 1000 + now, Input::Committed { zxid: r.header.zxid, record });
            }
            self.pump();
        }
    }

    fn commit_all(&mut self) {
        let n = self.proposals.len();
        self.commit(n);
    }

    fn take(&mut self, sid: PeerId) -> Vec<Action> {
        self.pump();
        self.seen.remove(&sid).unwrap_or_default()
    }

    fn replies(&mut self, sid: PeerId, conn: ConnId) -> Vec<Reply> {
        let actions = self.take(sid);
        let mut out = Vec::new();
        let mut keep = Vec::new();
        for a in actions {
            match a {
                Action::Send { conn: c, frame, reply: true } if c == conn => {
                    let mut r = Reader::new(&frame[4..]);
                    let h = ReplyHeader::read(&mut r).unwrap();
                    out.push(Reply { xid: h.xid, zxid: h.zxid, err: h.err, body: r.rest().to_vec() });
                }
                other => keep.push(other),
            }
        }
        self.seen.insert(sid, keep);
        out
    }

    fn closed(&mut self, sid: PeerId, conn: ConnId) -> bool {
        let actions = self.take(sid);
        let closed = actions.iter().any(|a| matches!(a, Action::Close { conn: c, .. } if *c == conn));
        self.seen.insert(sid, actions);
        closed
    }

    /// The ConnectResponse sent on `conn`, if any.
    fn connect_response(&mut self, sid: PeerId, conn: ConnId) -> Option<ConnectResponse> {
        let actions = self.take(sid);
        let mut found = None;
        let mut keep = Vec::new();
        for a in actions {
            match a {
                Action::Send { conn: c, frame, reply: false } if c == conn && found.is_none() => {
                    found = Some(ConnectResponse::read(&mut Reader::new(&frame[4..])).unwrap());
                }
                other => keep.push(other),
            }
        }
        self.seen.insert(sid, keep);
        found
    }

    fn connect_request(&mut self, sid: PeerId, conn: ConnId, session: SessionId, passwd: Vec<u8>, last_zxid: Zxid) {
        self.input(sid, Input::Accepted { conn, peer: peer(), auth: Vec::new() });
        let mut w = Writer::new();
        ConnectRequest {
            timeout_ms: TIMEOUT,
            session_id: session,
            passwd,
            last_zxid_seen: last_zxid,
            read_only: Some(false),
            ..Default::default()
        }
        .write(&mut w);
        self.input(sid, Input::Frame { conn, payload: w.into_inner() });
    }

    /// A new session through `sid`, committed everywhere; returns its id.
    fn connect(&mut self, sid: PeerId, conn: ConnId) -> SessionId {
        self.connect_request(sid, conn, SessionId(0), vec![0; 16], Zxid(0));
        self.commit_all();
        let resp = self.connect_response(sid, conn).expect("a ConnectResponse");
        assert_ne!(resp.session_id.0, 0);
        resp.session_id
    }

    fn request(&mut self, sid: PeerId, conn: ConnId, xid: i32, req: &Request) {
        let mut w = Writer::new();
        RequestHeader { xid, op: req.op().code() }.write(&mut w);
        req.write(&mut w);
        self.input(sid, Input::Frame { conn, payload: w.into_inner() });
    }

    fn assert_converged(&mut self) {
        let digests: Vec<(PeerId, Zxid, i64)> =
            self.servers.iter().map(|(sid, s)| (*sid, s.tree().last_processed_zxid(), s.tree().digest())).collect();
        for w in digests.windows(2) {
            assert_eq!((w[0].1, w[0].2), (w[1].1, w[1].2), "servers {} and {} differ", w[0].0, w[1].0);
        }
        for s in self.servers.values() {
            assert_eq!(s.digest_mismatches(), 0);
            assert_eq!(s.tree().digest(), s.tree().compute_digest());
        }
    }
}

fn create(path: &str, flags: i32) -> Request {
    Request::Create(Create { op: OpCode::Create, path: path.into(), data: Some(b"x".to_vec()), acl: Acl::open_unsafe(), flags, ttl: None })
}

fn exists(path: &str) -> Request {
    Request::Exists(PathWatchRequest { path: path.into(), watch: false })
}

fn sync(path: &str) -> Request {
    Request::Sync(PathRequest { path: path.into() })
}

#[test]
fn a_learners_new_session_is_created_by_the_leader() {
    let mut e = Ens::new(false);
    e.connect_request(F1, 7, SessionId(0), vec![0; 16], Zxid(0));
    // No answer before the commit; the id carries the follower's sid.
    assert!(e.connect_response(F1, 7).is_none());
    assert_eq!(e.proposals.len(), 1);
    let r = e.proposals[0].clone();
    assert_eq!(r.header.op, OpCode::CreateSession.code());
    assert_eq!(r.header.client_id.0 >> 56, F1);
    assert_eq!(r.header.zxid, Zxid::new(1, 1));
    assert_eq!(r.txn, Txn::CreateSession { timeout_ms: TIMEOUT });
    assert!(e.s(LEADER).sessions().is_live(r.header.client_id), "the leader tracks it at prep");
    assert!(e.s(F1).sessions().get(r.header.client_id).is_none(), "a learner learns it at commit");
    e.commit_all();
    let resp = e.connect_response(F1, 7).unwrap();
    assert_eq!(resp.session_id, r.header.client_id);
    assert_eq!(resp.timeout_ms, TIMEOUT);
    assert_eq!(resp.passwd, auth::session_password(resp.session_id));
    for sid in [LEADER, F1, F2] {
        assert!(e.s(sid).sessions().get(resp.session_id).is_some(), "server {sid} knows the session");
    }
    e.assert_converged();
}

#[test]
fn a_forwarded_write_is_answered_when_committed_and_reads_wait_behind_it() {
    let mut e = Ens::new(false);
    e.connect(F1, 1);
    e.connect(F1, 2);
    e.request(F1, 1, 1, &create("/a", 0));
    e.request(F1, 1, 2, &exists("/a"));
    e.request(F1, 2, 1, &exists("/a"));
    // Conn 1 waits for its write (and its read behind it); conn 2's read is local and at once.
    assert!(e.replies(F1, 1).is_empty());
    let r2 = e.replies(F1, 2);
    assert_eq!((r2[0].xid, r2[0].err), (1, ErrorCode::NoNode.code()));
    let p = e.proposals[0].clone();
    assert_eq!((p.header.cxid, p.header.op), (1, OpCode::Create.code()));
    e.commit_all();
    let r1 = e.replies(F1, 1);
    assert_eq!(r1.iter().map(|r| (r.xid, r.err)).collect::<Vec<_>>(), vec![(1, 0), (2, 0)]);
    assert_eq!(r1[0].zxid, p.header.zxid);
    assert_eq!(Response::decode(OpCode::Create, &r1[0].body).unwrap(), Response::Path("/a".into()));
    // Nobody answers on the leader or the other follower.
    assert!(e.take(LEADER).iter().all(|a| !matches!(a, Action::Send { reply: true, .. })));
    e.assert_converged();
}

#[test]
fn forwarded_writes_are_prepped_against_each_other_on_the_leader() {
    let mut e = Ens::new(false);
    e.connect(F1, 1);
    e.connect(F2, 2);
    e.connect(LEADER, 3);
    // Pipelined from three servers, all before any commit: the leader's outstanding changes
    // see them all (the second /p fails, /p/c succeeds, sequence numbers follow).
    e.request(F1, 1, 1, &create("/p", 0));
    e.request(F2, 2, 1, &create("/p", 0));
    e.request(LEADER, 3, 1, &create("/p/c", 0));
    e.request(F1, 1, 2, &create("/p/s-", 2));
    e.request(F2, 2, 2, &create("/p/s-", 2));
    e.commit_all();
    let errs = |r: Vec<Reply>| r.iter().map(|r| (r.xid, r.err)).collect::<Vec<_>>();
    assert_eq!(errs(e.replies(F1, 1)), vec![(1, 0), (2, 0)]);
    assert_eq!(errs(e.replies(F2, 2)), vec![(1, ErrorCode::NodeExists.code()), (2, 0)]);
    assert_eq!(errs(e.replies(LEADER, 3)), vec![(1, 0)]);
    assert_eq!(e.s(F2).tree().get_children("/p").unwrap().len(), 3);
    e.assert_converged();
}

#[test]
fn an_observer_forwards_like_a_follower() {
    let mut e = Ens::new(true);
    assert_eq!(e.s(F2).role(), Role::Observer);
    let sid = e.connect(F2, 1);
    assert_eq!(sid.0 >> 56, F2);
    e.request(F2, 1, 1, &create("/o", 0));
    e.commit_all();
    assert_eq!(e.replies(F2, 1)[0].err, 0);
    e.assert_converged();
}

#[test]
fn ephemerals_and_watches_fire_on_every_server() {
    let mut e = Ens::new(false);
    e.connect(F1, 1);
    e.connect(F2, 2);
    e.request(F2, 2, 1, &Request::Exists(PathWatchRequest { path: "/e".into(), watch: true }));
    e.replies(F2, 2);
    e.request(F1, 1, 1, &create("/e", 1));
    e.commit_all();
    assert_eq!(e.replies(F1, 1).len(), 1);
    let events: Vec<Action> = e.take(F2).into_iter().filter(|a| matches!(a, Action::Send { conn: 2, reply: false, .. })).collect();
    assert_eq!(events.len(), 1, "the watch on the other follower fires");
    // Closing the session removes its ephemeral everywhere.
    e.request(F1, 1, 2, &Request::CloseSession);
    assert!(e.replies(F1, 1).is_empty());
    e.commit_all();
    assert_eq!(e.replies(F1, 1).iter().map(|r| r.xid).collect::<Vec<_>>(), vec![2]);
    assert!(e.closed(F1, 1));
    for sid in [LEADER, F1, F2] {
        assert!(e.s(sid).tree().get("/e").is_none());
        assert_eq!(e.s(sid).sessions().len(), 1);
    }
    e.assert_converged();
}

#[test]
fn sync_on_a_learner_waits_for_everything_proposed_before_it() {
    let mut e = Ens::new(false);
    e.connect(F1, 1);
    e.connect(F2, 2);
    // F2's write is in flight at the leader when F1's sync arrives.
    e.request(F2, 2, 1, &create("/s", 0));
    e.request(F1, 1, 1, &sync("/s"));
    e.request(F1, 1, 2, &exists("/s"));
    assert!(e.replies(F1, 1).is_empty(), "the sync waits for the leader");
    e.commit_all();
    let r = e.replies(F1, 1);
    assert_eq!(r.iter().map(|r| (r.xid, r.err)).collect::<Vec<_>>(), vec![(1, 0), (2, 0)], "the read after the sync sees /s");
    assert_eq!(r[0].zxid, e.s(F2).tree().last_processed_zxid());
    assert_eq!(Response::decode(OpCode::Sync, &r[0].body).unwrap(), Response::Path("/s".into()));
    // With nothing in flight, the leader answers at once.
    e.request(F1, 1, 3, &sync("/"));
    assert_eq!(e.replies(F1, 1).iter().map(|r| r.xid).collect::<Vec<_>>(), vec![3]);
    // On the leader itself, a sync is a local read.
    e.connect(LEADER, 3);
    e.request(LEADER, 3, 1, &sync("/"));
    assert_eq!(e.replies(LEADER, 3).len(), 1);
    assert!(e.proposals.is_empty());
}

#[test]
fn syncs_are_answered_oldest_first() {
    let mut e = Ens::new(false);
    e.connect(F1, 1);
    e.connect(F1, 2);
    e.connect(F2, 3);
    e.request(F2, 3, 1, &create("/x", 0));
    e.request(F1, 1, 1, &sync("/"));
    e.request(F2, 3, 2, &create("/y", 0));
    e.request(F1, 2, 1, &sync("/"));
    // First commit releases the first sync only.
    e.commit(1);
    assert_eq!(e.replies(F1, 1).len(), 1);
    assert!(e.replies(F1, 2).is_empty());
    e.commit(1);
    let r = e.replies(F1, 2);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].zxid, e.s(LEADER).last_zxid());
}

#[test]
fn a_session_moves_to_another_server_by_revalidation() {
    let mut e = Ens::new(false);
    let id = e.connect(F1, 1);
    e.request(F1, 1, 1, &create("/m", 1));
    e.commit_all();
    e.replies(F1, 1);
    let zxid = e.s(F1).tree().last_processed_zxid();
    // The client moves to F2 (F1's connection is gone, as when F1 died).
    e.input(F1, Input::Closed { conn: 1 });
    e.connect_request(F2, 5, id, auth::session_password(id), zxid);
    let resp = e.connect_response(F2, 5).expect("revalidated");
    assert_eq!((resp.session_id, resp.timeout_ms), (id, TIMEOUT));
    // The session (and its ephemeral) lives on; writes from F2 work.
    e.request(F2, 5, 2, &Request::SetData(SetDataRequest { path: "/m".into(), data: Some(b"y".to_vec()), version: -1 }));
    e.commit_all();
    assert_eq!(e.replies(F2, 5)[0].err, 0);
    // A request for it still coming through F1 is refused: the session moved.
    e.input(
        LEADER,
        Input::Forwarded {
            from: F1,
            session: id,
            cxid: 9,
            op: OpCode::Delete.code(),
            body: vec![0, 0, 0, 2, b'/', b'm', 255, 255, 255, 255],
            auth: vec![],
        },
    );
    let p = e.proposals.back().unwrap().clone();
    assert_eq!(p.txn, Txn::Error { err: ErrorCode::SessionMoved.code() });
    e.commit_all();
    assert!(e.s(F2).tree().get("/m").is_some());
    e.assert_converged();
}

#[test]
fn revalidation_refuses_bad_passwords_locally_and_dead_sessions_at_the_leader() {
    let mut e = Ens::new(false);
    let id = e.connect(F1, 1);
    // A wrong password: refused by the learner, the leader is not asked.
    e.connect_request(F2, 5, id, vec![1; 16], Zxid(0));
    let resp = e.connect_response(F2, 5).unwrap();
    assert_eq!((resp.session_id.0, resp.timeout_ms), (0, 0));
    assert!(e.closed(F2, 5));
    // An unknown session with a right password: the leader says invalid.
    let ghost = SessionId((F1 << 56) | 0x1234);
    e.connect_request(F2, 6, ghost, auth::session_password(ghost), Zxid(0));
    let resp = e.connect_response(F2, 6).unwrap();
    assert_eq!(resp.session_id.0, 0);
    assert!(e.closed(F2, 6));
}

#[test]
fn requests_sent_while_revalidating_wait_for_the_session() {
    let mut e = Ens::new(false);
    let id = e.connect(F1, 1);
    e.input(F1, Input::Closed { conn: 1 });
    // Hold the leader's answer: drive F2 by hand.
    let now = e.now;
    let f2 = e.s(F2);
    f2.handle(now, 1000, Input::Accepted { conn: 5, peer: peer(), auth: Vec::new() });
    let mut w = Writer::new();
    ConnectRequest {
        timeout_ms: TIMEOUT,
        session_id: id,
        passwd: auth::session_password(id),
        read_only: Some(false),
        ..Default::default()
    }
    .write(&mut w);
    f2.handle(now, 1000, Input::Frame { conn: 5, payload: w.into_inner() });
    let mut w = Writer::new();
    RequestHeader { xid: 1, op: OpCode::Exists.code() }.write(&mut w);
    exists("/").write(&mut w);
    f2.handle(now, 1000, Input::Frame { conn: 5, payload: w.into_inner() });
    let a = f2.take_actions();
    assert_eq!(a, vec![Action::Revalidate { session: id, timeout_ms: TIMEOUT }]);
    f2.handle(now, 1000, Input::Revalidated { session: id, valid: true });
    let a = f2.take_actions();
    assert_eq!(a.len(), 2, "ConnectResponse, then the early read's reply: {a:?}");
    assert!(matches!(&a[1], Action::Send { conn: 5, reply: true, .. }));
}

#[test]
fn learners_report_touches_and_only_the_leader_expires_sessions() {
    let mut e = Ens::new(false);
    let a = e.connect(F1, 1);
    let b = e.connect(F1, 2);
    // The commit of a new session counts as a touch (LearnerSessionTracker.commitSession).
    assert_eq!(e.s(F1).take_touches(), vec![(a, TIMEOUT), (b, TIMEOUT)]);
    assert!(e.s(F1).take_touches().is_empty());
    // Far past the timeout: the learner expires nothing.
    e.now = 60_000;
    e.input(F1, Input::Tick);
    assert!(e.proposals.is_empty());
    assert!(e.s(F1).sessions().is_live(a));
    // Client a pings through F1; F1's PING carries the touch to the leader.
    e.request(F1, 1, -2, &Request::Ping);
    assert_eq!(e.replies(F1, 1).len(), 1, "a ping is answered locally");
    let touches = e.s(F1).take_touches();
    assert_eq!(touches, vec![(a, TIMEOUT)]);
    e.input(LEADER, Input::Touches { sessions: touches });
    e.input(LEADER, Input::Tick);
    // b expired on the leader; a did not.
    assert_eq!(e.proposals.len(), 1);
    assert_eq!(e.proposals[0].header.client_id, b);
    assert_eq!(e.proposals[0].header.op, OpCode::CloseSession.code());
    e.commit_all();
    assert!(e.closed(F1, 2), "the expired session's client is disconnected on its learner");
    for sid in [LEADER, F1, F2] {
        assert!(e.s(sid).sessions().get(b).is_none());
        assert!(e.s(sid).sessions().get(a).is_some());
    }
    // A request from a session the leader has expired fails with SessionExpired.
    e.input(LEADER, Input::Forwarded { from: F1, session: b, cxid: 3, op: OpCode::Create.code(), body: vec![], auth: vec![] });
    assert_eq!(e.proposals[0].txn, Txn::Error { err: ErrorCode::SessionExpired.code() });
}

#[test]
fn stop_serving_closes_clients_and_forgets_in_flight_work() {
    let mut e = Ens::new(false);
    let a = e.connect(F1, 1);
    let b = e.connect(LEADER, 2);
    e.request(F1, 1, 1, &create("/w", 0));
    e.request(LEADER, 2, 1, &Request::CloseSession);
    e.connect_request(LEADER, 3, SessionId(0), vec![0; 16], Zxid(0));
    let pending_new = e.proposals.back().unwrap().header.client_id;
    assert!(e.s(LEADER).sessions().get(pending_new).is_some());
    assert!(!e.s(LEADER).sessions().is_live(b), "closing");
    let before = e.s(F1).tree().digest();
    for sid in [LEADER, F1] {
        e.input(sid, Input::StopServing);
        assert_eq!(e.s(sid).role(), Role::NotServing);
    }
    assert!(e.closed(F1, 1));
    assert!(e.closed(LEADER, 2) && e.closed(LEADER, 3));
    // Tree and committed sessions stay; uncommitted session changes are undone.
    assert_eq!(e.s(F1).tree().digest(), before);
    assert!(e.s(F1).sessions().get(a).is_some());
    assert!(e.s(LEADER).sessions().is_live(b));
    assert!(e.s(LEADER).sessions().get(pending_new).is_none());
    assert_eq!(e.s(LEADER).last_zxid(), e.s(LEADER).tree().last_processed_zxid());
    // While not serving, a ConnectRequest is refused.
    e.proposals.clear();
    e.connect_request(F1, 9, SessionId(0), vec![0; 16], Zxid(0));
    assert!(e.closed(F1, 9));
    assert!(e.proposals.is_empty());
    // Committed txns are still applied while not serving (a learner's sync phase).
    let z = e.s(F2).tree().last_processed_zxid().next();
    let r = TxnRecord {
        header: TxnHeader { client_id: a, cxid: 5, zxid: z, time: 1, op: OpCode::Create.code() },
        txn: Txn::Create {
            txn: rzk_proto::txn::CreateTxn {
                path: "/late".into(),
                data: None,
                acl: Acl::open_unsafe(),
                ephemeral: false,
                parent_cversion: 1,
            },
            create2: false,
        },
        digest: None,
    };
    e.input(F1, Input::Committed { zxid: r.header.zxid, record: Some(r) });
    assert!(e.s(F1).tree().get("/late").is_some());
}

#[test]
fn a_new_leader_numbers_from_its_epoch_and_gives_sessions_a_fresh_timeout() {
    let mut e = Ens::new(false);
    let a = e.connect(F1, 1);
    // F1 becomes the leader of epoch 2 after an election (old leader gone).
    e.servers.remove(&LEADER);
    e.leader = F1;
    e.now = 9_000;
    e.input(F1, Input::StopServing);
    e.input(F1, Input::Serve { role: Role::Leader, epoch: 2 });
    e.input(F2, Input::StopServing);
    e.input(F2, Input::Serve { role: Role::Follower, epoch: 2 });
    // The session, created by the old leader, got a full timeout from now.
    let s = e.s(F1).sessions().get(a).unwrap().clone();
    assert!(s.expires_at_ms >= 9_000 + TIMEOUT as i64);
    e.now = 9_000 + TIMEOUT as i64 - 1;
    e.input(F1, Input::Tick);
    assert!(e.proposals.is_empty());
    // Writes are numbered in epoch 2.
    e.connect_request(F1, 4, SessionId(0), vec![0; 16], Zxid(0));
    let p = e.proposals.pop_front().unwrap();
    assert_eq!(p.header.zxid, Zxid::new(2, 1));
}

#[test]
fn a_connect_request_ahead_of_the_server_is_refused() {
    let mut e = Ens::new(false);
    e.connect(F1, 1);
    e.connect_request(F2, 2, SessionId(0), vec![0; 16], Zxid::new(1, 99));
    assert!(e.closed(F2, 2));
    assert!(e.proposals.is_empty());
}

#[test]
fn install_replaces_tree_and_sessions_while_not_serving() {
    let mut e = Ens::new(false);
    let a = e.connect(F1, 1);
    e.request(F1, 1, 1, &create("/snap", 0));
    e.commit_all();
    // A session being created is not in the snapshot yet.
    e.connect_request(LEADER, 8, SessionId(0), vec![0; 16], Zxid(0));
    let creating = e.proposals.back().unwrap().header.client_id;
    assert!(e.s(LEADER).sessions().get(creating).is_some());
    let tree = e.s(LEADER).tree().clone();
    let sessions = e.s(LEADER).committed_sessions();
    assert_eq!(sessions, vec![(a, TIMEOUT)]);
    e.proposals.clear();
    e.input(LEADER, Input::StopServing);
    e.input(LEADER, Input::Serve { role: Role::Leader, epoch: 2 });
    let mut fresh = ZooKeeperServer::new(cfg(F2), DataTree::new(), 0, 1000);
    fresh.handle(0, 1000, Input::StopServing);
    fresh.install(tree, &sessions);
    assert_eq!(fresh.tree().digest(), e.s(LEADER).tree().digest());
    assert_eq!(fresh.last_zxid(), e.s(LEADER).tree().last_processed_zxid());
    assert!(fresh.sessions().get(a).is_some());
    fresh.handle(0, 1000, Input::Serve { role: Role::Follower, epoch: 1 });
    e.servers.insert(F2, fresh);
    // It follows on from the snapshot.
    e.request(F1, 1, 2, &create("/after", 0));
    e.commit_all();
    assert!(e.s(F2).tree().get("/after").is_some());
    e.assert_converged();
}

#[test]
fn four_letter_words_show_the_role() {
    use crate::fourlw::{render, ProcessInfo};
    let mut e = Ens::new(true);
    let p = ProcessInfo::default();
    for (sid, mode) in [(LEADER, "leader"), (F1, "follower"), (F2, "observer")] {
        let snap = e.s(sid).snapshot();
        assert!(render("srvr", &snap, &p).contains(&format!("Mode: {mode}\n")));
        assert!(render("mntr", &snap, &p).contains(&format!("zk_server_state\t{mode}\n")));
    }
    e.input(F1, Input::StopServing);
    let snap = e.s(F1).snapshot();
    assert_eq!(render("srvr", &snap, &p), "This ZooKeeper instance is not currently serving requests\n");
    assert_eq!(render("ruok", &snap, &p), "imok");
    assert_eq!(render("isro", &snap, &p), "null");
    let standalone = ZooKeeperServer::new(CoreConfig::default(), DataTree::new(), 0, 1000);
    assert!(render("srvr", &standalone.snapshot(), &p).contains("Mode: standalone\n"));
}

#[test]
fn mntr_in_an_ensemble_has_zookeepers_quorum_keys() {
    use crate::fourlw::{render, ProcessInfo};
    let mut e = Ens::new(true);
    let p = ProcessInfo::default();
    let mut snap = e.s(LEADER).snapshot();
    snap.quorum.quorum_size = 2;
    snap.quorum.learners = 2;
    let out = render("mntr", &snap, &p);
    std::fs::write(std::env::temp_dir().join("rzk_mntr_leader"), &out).unwrap();
    assert!(out.contains("zk_peer_state\tleading - broadcast\n"));
    assert!(out.contains("zk_learners\t2\n") && out.contains("zk_quorum_size\t2\n") && out.contains("zk_pending_syncs\t0\n"));
    assert!(render("srvr", &snap, &p).ends_with("Proposal sizes last/min/max: -1/-1/-1\n"));
    let mut snap = e.s(F2).snapshot();
    snap.quorum.observer_master_id = Some(1);
    let out = render("mntr", &snap, &p);
    std::fs::write(std::env::temp_dir().join("rzk_mntr_observer"), &out).unwrap();
    assert!(out.contains("zk_peer_state\tobserving - broadcast\nzk_observer_master_id\t1\n"));
    assert!(!out.contains("proposal_size"));
    let out = render("mntr", &e.s(F1).snapshot(), &p);
    std::fs::write(std::env::temp_dir().join("rzk_mntr_follower"), &out).unwrap();
    assert!(!out.contains("zk_learners"));
    assert!(!out.contains("zk_synced_observers"));
    // A follower with an observer master (observerMasterPort): ZooKeeper 3.8 prints its
    // observers right after zk_watch_count.
    let mut snap = e.s(F1).snapshot();
    snap.quorum.follower_synced_observers = Some(1);
    let out = render("mntr", &snap, &p);
    assert!(out.contains("zk_watch_count\t0\nzk_synced_observers\t1\n"), "{out}");
}

mod random {
    use super::*;
    use proptest::prelude::*;
    use rzk_proto::client::DeleteRequest;

    fn op(kind: u8, name: u8) -> Request {
        let p = format!("/n{}", name % 3);
        let c = format!("{p}/c{}", name % 2);
        match kind % 9 {
            0 => create(&p, 0),
            1 => create(&c, (name % 2) as i32), // ephemeral or not
            2 => create(&format!("{p}/s-"), 2),
            3 => Request::Delete(DeleteRequest { path: c, version: -1 }),
            4 => Request::SetData(SetDataRequest { path: p, data: Some(vec![name; 2]), version: -1 }),
            5 => Request::Multi(vec![create(&c, 0), Request::Delete(DeleteRequest { path: c.clone(), version: -1 })]),
            6 => sync(&p),
            7 => Request::GetData(PathWatchRequest { path: p, watch: name.is_multiple_of(2) }),
            _ => exists(&c),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Clients on a leader and two followers, requests pipelined, commits at random
        /// moments: every request is answered exactly once, in the order its connection sent
        /// it, with zxids that never go back on a connection; every server ends with the same
        /// tree, and every logged digest matched.
        #[test]
        fn every_request_is_answered_in_order_and_the_servers_converge(
            steps in proptest::collection::vec((0usize..3, 0u64..2, 0u8..9, any::<u8>(), 0u8..4), 1..80),
        ) {
            let mut e = Ens::new(false);
            let servers = [LEADER, F1, F2];
            // (server, conn) → xids sent, replies seen.
            let mut sent: BTreeMap<(PeerId, ConnId), Vec<i32>> = BTreeMap::new();
            let mut got: BTreeMap<(PeerId, ConnId), Vec<Reply>> = BTreeMap::new();
            for sid in servers {
                for conn in 0..2 {
                    e.connect(sid, conn);
                    sent.insert((sid, conn), vec![]);
                }
            }
            let collect = |e: &mut Ens, got: &mut BTreeMap<(PeerId, ConnId), Vec<Reply>>| {
                for sid in servers {
                    for conn in 0..2 {
                        let r = e.replies(sid, conn);
                        got.entry((sid, conn)).or_default().extend(r);
                    }
                }
            };
            for (si, conn, kind, name, commit) in steps {
                let sid = servers[si];
                let xids = sent.get_mut(&(sid, conn)).unwrap();
                let xid = xids.len() as i32 + 1;
                xids.push(xid);
                e.request(sid, conn, xid, &op(kind, name));
                match commit {
                    0 => {}
                    1 | 2 => if !e.proposals.is_empty() { e.commit(1) },
                    _ => e.commit_all(),
                }
                collect(&mut e, &mut got);
            }
            e.commit_all();
            collect(&mut e, &mut got);
            for (key, xids) in &sent {
                let replies = &got[key];
                let seen: Vec<i32> = replies.iter().map(|r| r.xid).collect();
                prop_assert_eq!(&seen, xids, "conn {:?}", key);
                for w in replies.windows(2) {
                    prop_assert!(w[0].zxid <= w[1].zxid, "conn {:?}: zxid went back {:?}", key, replies);
                }
            }
            e.assert_converged();
            for s in e.servers.values() {
                s.tree().check_invariants().unwrap();
            }
        }
    }
}

#[test]
fn a_moved_sessions_old_connection_is_closed_not_answered() {
    let mut e = Ens::new(false);
    // Created through F1; the client's old connection there stays open while it moves to F2.
    let id = e.connect(F1, 1);
    e.connect_request(F2, 5, id, auth::session_password(id), Zxid(0));
    assert!(e.connect_response(F2, 5).is_some());
    e.request(F1, 1, 7, &create("/stale", 0));
    assert_eq!(e.proposals.back().unwrap().txn, Txn::Error { err: ErrorCode::SessionMoved.code() });
    e.commit_all();
    assert!(e.replies(F1, 1).is_empty(), "no answer for a moved session");
    assert!(e.closed(F1, 1));
    assert!(e.s(F2).tree().get("/stale").is_none());
    // On the leader, even a read of a session that moved away closes the connection.
    let id = e.connect(LEADER, 3);
    e.connect_request(F1, 6, id, auth::session_password(id), Zxid(0));
    assert!(e.connect_response(F1, 6).is_some());
    e.request(LEADER, 3, 1, &exists("/"));
    assert!(e.replies(LEADER, 3).is_empty());
    assert!(e.closed(LEADER, 3));
    // The session itself lives on where it moved.
    e.request(F1, 6, 2, &create("/moved", 1));
    e.commit_all();
    assert_eq!(e.replies(F1, 6)[0].err, 0);
    e.assert_converged();
}
