//! Scenario tests on a perfect in-memory network: election outcome, durability ordering,
//! DIFF / TRUNC / SNAP choice, observers. The seeded fault-injecting simulator is `rzk-sim`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use crate::*;

struct Net {
    nodes: BTreeMap<ServerId, Node>,
    queue: VecDeque<(ServerId, ServerId, Message)>,
    /// Servers whose writes complete only when the test says so.
    manual_disk: BTreeSet<ServerId>,
    pending_seq: BTreeMap<ServerId, u64>,
    /// The state machine: delivered zxids.
    state: BTreeMap<ServerId, Vec<Zxid>>,
    /// Every send, in order, for assertions.
    log: Vec<(ServerId, ServerId, Message)>,
    persists: Vec<(ServerId, StorageOp)>,
    down: BTreeSet<ServerId>,
    /// `ReconfigCommitted` actions: (server, zxid, designated leader, deliveries so far).
    reconfigs: Vec<(ServerId, Zxid, ServerId, usize)>,
    /// What each server's txn log on disk holds, for `ReadLog` (absent: refused).
    disk: BTreeMap<ServerId, Vec<Entry>>,
    /// Reads of it under way: (server, learner) → the last zxid handed over.
    reads: BTreeMap<(ServerId, ServerId), Zxid>,
}

fn cfg(me: i64, voters: &[i64], observers: &[i64]) -> Config {
    let mut c = Config::from_ms(
        ServerId(me),
        voters.iter().map(|v| ServerId(*v)).collect(),
        observers.iter().map(|v| ServerId(*v)).collect(),
        50,
        200,
        10,
        5,
    );
    c.committed_log_max = 5;
    c
}

fn entry(epoch: u32, counter: u32) -> Entry {
    Entry { zxid: Zxid::new(epoch, counter), data: Bytes::from(format!("{epoch}:{counter}")) }
}

impl Net {
    fn new(voters: &[i64], observers: &[i64], restored: impl Fn(i64) -> Restored) -> Net {
        Net::with(voters, observers, restored, |c| c)
    }

    /// As `new`, each server's config changed by `f` (a hierarchy, say).
    fn with(voters: &[i64], observers: &[i64], restored: impl Fn(i64) -> Restored, f: impl Fn(Config) -> Config) -> Net {
        let mut n = Net {
            nodes: BTreeMap::new(),
            queue: VecDeque::new(),
            manual_disk: BTreeSet::new(),
            pending_seq: BTreeMap::new(),
            state: BTreeMap::new(),
            log: vec![],
            persists: vec![],
            down: BTreeSet::new(),
            reconfigs: vec![],
            disk: BTreeMap::new(),
            reads: BTreeMap::new(),
        };
        for &id in voters.iter().chain(observers) {
            let r = restored(id);
            n.state.insert(ServerId(id), vec![]);
            n.nodes.insert(ServerId(id), Node::new(f(cfg(id, voters, observers)), r).unwrap());
        }
        let ids: Vec<ServerId> = n.nodes.keys().copied().collect();
        for id in ids {
            n.actions(id);
        }
        n
    }

    fn actions(&mut self, id: ServerId) {
        loop {
            let acts = self.nodes.get_mut(&id).unwrap().take_actions();
            if acts.is_empty() {
                return;
            }
            let mut last_seq = None;
            for a in acts {
                match a {
                    Action::Send { to, msg } => {
                        self.log.push((id, to, msg.clone()));
                        self.queue.push_back((id, to, msg));
                    }
                    Action::Persist { seq, op } => {
                        if let StorageOp::InstallSnapshot { data, .. } = &op {
                            let st = data
                                .stream()
                                .expect("the test host sends streams")
                                .chunks(8)
                                .map(|c| Zxid(i64::from_be_bytes(c.try_into().unwrap())))
                                .collect();
                            self.state.insert(id, st);
                        }
                        self.persists.push((id, op));
                        last_seq = Some(seq);
                    }
                    Action::Deliver(e) => self.state.get_mut(&id).unwrap().push(e.zxid),
                    Action::ReconfigCommitted { zxid, leader } => self.reconfigs.push((id, zxid, leader, self.state[&id].len())),
                    Action::ReadLog { to, after } => {
                        self.reads.insert((id, to), after);
                    }
                    Action::StopReadLog { to } => {
                        self.reads.remove(&(id, to));
                    }
                    Action::SendSnapshot { to, zxid } => {
                        let st = &self.state[&id];
                        assert_eq!(st.last().copied().unwrap_or(Zxid::ZERO), zxid, "snapshot not at the state's zxid");
                        let data: Vec<u8> = st.iter().flat_map(|z| z.0.to_be_bytes()).collect();
                        let m = Message::Snap { zxid, snapshot: Bytes::from(data).into() };
                        self.log.push((id, to, m.clone()));
                        self.queue.push_back((id, to, m));
                    }
                    _ => {}
                }
            }
            if let Some(seq) = last_seq {
                if self.manual_disk.contains(&id) {
                    self.pending_seq.insert(id, seq);
                } else {
                    self.nodes.get_mut(&id).unwrap().persisted(seq);
                }
            }
        }
    }

    /// Hands each log read its next batch (3 txns), as a host's reader thread does.
    fn read_logs(&mut self) -> bool {
        let Some((&(id, to), &after)) = self.reads.iter().next() else { return false };
        let read = match self.disk.get(&id) {
            Some(log) if log.iter().any(|e| e.zxid == after) => {
                let batch: Vec<Entry> = log.iter().filter(|e| e.zxid > after).take(3).cloned().collect();
                match batch.last() {
                    Some(l) => {
                        self.reads.insert((id, to), l.zxid);
                        LogRead::Entries(batch)
                    }
                    None => {
                        self.reads.remove(&(id, to));
                        LogRead::End
                    }
                }
            }
            _ => {
                self.reads.remove(&(id, to));
                LogRead::Unavailable
            }
        };
        self.nodes.get_mut(&id).unwrap().log_read(to, read);
        self.actions(id);
        true
    }

    fn deliver_all(&mut self) {
        let mut budget = 100_000;
        while self.read_logs() {}
        while let Some((from, to, m)) = self.queue.pop_front() {
            while self.read_logs() {}
            budget -= 1;
            assert!(budget > 0, "message storm");
            if self.down.contains(&to) || self.down.contains(&from) {
                continue;
            }
            // A server only a configuration names (never started) hears nothing.
            let Some(n) = self.nodes.get_mut(&to) else { continue };
            n.step(from, m);
            self.actions(to);
        }
    }

    fn run(&mut self, ticks: u32) {
        for _ in 0..ticks {
            self.deliver_all();
            let ids: Vec<ServerId> = self.nodes.keys().copied().filter(|i| !self.down.contains(i)).collect();
            for id in ids {
                self.nodes.get_mut(&id).unwrap().tick();
                self.actions(id);
            }
        }
        self.deliver_all();
    }

    fn leader(&self) -> Option<ServerId> {
        self.nodes.iter().find(|(id, n)| !self.down.contains(id) && n.state() == ServerState::Leading && n.is_serving()).map(|(id, _)| *id)
    }

    fn propose(&mut self, n: u32) -> Vec<Zxid> {
        let l = self.leader().expect("a leader");
        let mut out = vec![];
        for _ in 0..n {
            let node = self.nodes.get_mut(&l).unwrap();
            let z = node.next_zxid().unwrap();
            node.propose(z, Bytes::from(format!("txn {z}"))).unwrap();
            out.push(z);
            self.actions(l);
        }
        out
    }
}

#[test]
fn three_voters_elect_the_highest_sid_and_replicate() {
    let mut net = Net::new(&[1, 2, 3], &[], |_| Restored::default());
    net.run(20);
    assert_eq!(net.leader(), Some(ServerId(3)));
    for n in net.nodes.values() {
        assert!(n.is_serving(), "{} not serving", n.id());
        assert_eq!((n.accepted_epoch(), n.current_epoch()), (1, 1));
    }
    let zs = net.propose(3);
    assert_eq!(zs, vec![Zxid::new(1, 1), Zxid::new(1, 2), Zxid::new(1, 3)]);
    net.run(2);
    for st in net.state.values() {
        assert_eq!(st, &zs);
    }
    // The leader's wire traffic for a txn: PROPOSAL to each follower, then COMMIT.
    let names: Vec<&str> = net.log.iter().filter(|(f, _, _)| *f == ServerId(3)).map(|(_, _, m)| m.name()).collect();
    assert!(names.iter().filter(|n| **n == "PROPOSAL").count() >= 6);
    assert!(names.iter().filter(|n| **n == "COMMIT").count() >= 6);
}

#[test]
fn votes_order_by_epoch_then_zxid_then_sid() {
    // Server 1 has the newest current epoch; server 2 the longest log of an older epoch.
    let mut net = Net::new(&[1, 2, 3], &[], |id| match id {
        1 => Restored { accepted_epoch: 3, current_epoch: 3, applied: Zxid::ZERO, log: vec![entry(3, 1)] },
        2 => Restored { accepted_epoch: 2, current_epoch: 2, applied: Zxid::ZERO, log: vec![entry(2, 1), entry(2, 2), entry(2, 3)] },
        _ => Restored::default(),
    });
    net.run(30);
    assert_eq!(net.leader(), Some(ServerId(1)));
    assert_eq!(net.nodes[&ServerId(1)].current_epoch(), 4);
    // Server 2's epoch-2 txns were never committed by a leader with them: TRUNC'd or SNAP'd away.
    assert_eq!(net.state[&ServerId(2)], vec![Zxid::new(3, 1)]);
}

#[test]
fn follower_acks_only_what_is_durable() {
    let mut net = Net::new(&[1, 2, 3], &[], |_| Restored::default());
    net.run(20);
    net.manual_disk.insert(ServerId(1));
    let before = net.log.len();
    let zs = net.propose(1);
    net.deliver_all();
    let acks_from_1 =
        |net: &Net| net.log[before..].iter().filter(|(f, _, m)| *f == ServerId(1) && matches!(m, Message::Ack { .. })).count();
    assert_eq!(acks_from_1(&net), 0, "ACK before the write is durable");
    // Server 2 and the leader make a quorum meanwhile.
    assert_eq!(net.state[&ServerId(3)], zs);
    let seq = net.pending_seq[&ServerId(1)];
    net.nodes.get_mut(&ServerId(1)).unwrap().persisted(seq);
    net.actions(ServerId(1));
    assert_eq!(acks_from_1(&net), 1);
}

#[test]
fn accepted_epoch_is_written_before_ackepoch() {
    let mut net = Net::new(&[1, 2, 3], &[], |_| Restored::default());
    net.manual_disk.insert(ServerId(1));
    net.run(20);
    // Server 1 got LEADERINFO, issued the write, and holds its ACKEPOCH back.
    assert!(net.persists.iter().any(|(id, op)| *id == ServerId(1) && *op == StorageOp::AcceptedEpoch(1)));
    assert!(!net.log.iter().any(|(f, _, m)| *f == ServerId(1) && matches!(m, Message::AckEpoch { .. })));
    let seq = net.pending_seq[&ServerId(1)];
    net.manual_disk.clear();
    net.nodes.get_mut(&ServerId(1)).unwrap().persisted(seq);
    net.actions(ServerId(1));
    net.run(20);
    assert!(net.log.iter().any(|(f, _, m)| *f == ServerId(1) && matches!(m, Message::AckEpoch { current_epoch: Some(0), .. })));
    assert!(net.nodes[&ServerId(1)].is_serving());
}

/// The sync a learner got from the leader, by first packet after ACKEPOCH.
fn sync_kind(net: &Net, to: i64) -> &'static str {
    net.log
        .iter()
        .filter(|(_, t, _)| *t == ServerId(to))
        .map(|(_, _, m)| m.name())
        .find(|n| matches!(*n, "DIFF" | "TRUNC" | "SNAP"))
        .unwrap_or("none")
}

#[test]
fn diff_trunc_and_snap_as_syncfollower_chooses() {
    // Leader-to-be (3) has epoch-1 txns 1..=8 and applied up to 6; 1 is behind, inside the
    // window: DIFF.
    let hist: Vec<Entry> = (1..=8).map(|c| entry(1, c)).collect();
    let mut net = Net::new(&[1, 2, 3], &[], |id| match id {
        3 => Restored { accepted_epoch: 1, current_epoch: 1, applied: Zxid::new(1, 6), log: hist.clone() },
        1 => Restored { accepted_epoch: 1, current_epoch: 1, applied: Zxid::new(1, 4), log: hist[..5].to_vec() },
        _ => Restored { accepted_epoch: 1, current_epoch: 1, applied: Zxid::new(1, 4), log: hist[..5].to_vec() },
    });
    net.run(30);
    assert_eq!(net.leader(), Some(ServerId(3)));
    assert_eq!(sync_kind(&net, 1), "DIFF");
    let all: Vec<Zxid> = (1..=8).map(|c| Zxid::new(1, c)).collect();
    assert_eq!(net.state[&ServerId(1)], all[4..].to_vec(), "server 1 applies 1:5..1:8 on top of its 1:4 state");

    let mut net = Net::new(&[1, 2, 3], &[], |id| match id {
        3 => Restored { accepted_epoch: 1, current_epoch: 1, applied: Zxid::ZERO, log: hist[..4].to_vec() },
        // Same epoch, longer (its tail never reached a quorum), but a lower current epoch so
        // it does not win the election: TRUNC.
        2 => Restored { accepted_epoch: 1, current_epoch: 0, applied: Zxid::ZERO, log: hist[..6].to_vec() },
        _ => Restored { accepted_epoch: 1, current_epoch: 1, applied: Zxid::ZERO, log: hist[..4].to_vec() },
    });
    net.run(40);
    assert_eq!(net.leader(), Some(ServerId(3)));
    assert_eq!(sync_kind(&net, 2), "TRUNC");
    assert!(net.persists.iter().any(|(id, op)| *id == ServerId(2) && *op == StorageOp::Truncate { after: Zxid::new(1, 4) }));
    assert_eq!(net.state[&ServerId(2)], all[..4].to_vec());

    // A server far behind the leader's committed window (5 entries kept here) gets a SNAP.
    let long: Vec<Entry> = (1..=20).map(|c| entry(1, c)).collect();
    let mut net = Net::new(&[1, 2, 3], &[], |id| match id {
        1 => Restored { accepted_epoch: 1, current_epoch: 1, applied: Zxid::ZERO, log: long[..2].to_vec() },
        _ => Restored { accepted_epoch: 1, current_epoch: 1, applied: Zxid::new(1, 20), log: long.clone() },
    });
    net.state.insert(ServerId(2), long.iter().map(|e| e.zxid).collect());
    net.state.insert(ServerId(3), long.iter().map(|e| e.zxid).collect());
    net.run(40);
    assert_eq!(net.leader(), Some(ServerId(3)));
    assert_eq!(sync_kind(&net, 1), "SNAP");
    assert_eq!(net.state[&ServerId(1)].len(), 20);
}

#[test]
fn observers_follow_without_voting() {
    let mut net = Net::new(&[1, 2, 3], &[4], |_| Restored::default());
    net.run(20);
    assert_eq!(net.nodes[&ServerId(4)].state(), ServerState::Observing);
    assert!(net.nodes[&ServerId(4)].is_serving());
    let zs = net.propose(2);
    net.run(2);
    assert_eq!(net.state[&ServerId(4)], zs);
    assert!(net.log.iter().any(|(_, t, m)| *t == ServerId(4) && matches!(m, Message::Inform(_))));
    assert!(!net.log.iter().any(|(f, _, m)| *f == ServerId(4) && matches!(m, Message::Ack { zxid } if zxid.counter() != 0)));
    // Two voters down: the leader and the observer are not a quorum; the leader steps down.
    net.down.insert(ServerId(1));
    net.down.insert(ServerId(2));
    net.run(200);
    assert_eq!(net.leader(), None);
    assert!(net.nodes[&ServerId(3)].next_zxid().is_err());
}

#[test]
fn a_new_leader_is_elected_when_the_leader_dies() {
    let mut net = Net::new(&[1, 2, 3], &[], |_| Restored::default());
    net.run(20);
    let zs = net.propose(3);
    net.run(2);
    net.down.insert(ServerId(3));
    net.run(300);
    let l = net.leader().expect("new leader");
    assert_eq!(l, ServerId(2));
    assert_eq!(net.nodes[&l].current_epoch(), 2);
    let more = net.propose(1);
    net.run(2);
    assert_eq!(more, vec![Zxid::new(2, 1)]);
    let mut all = zs.clone();
    all.extend(more);
    assert_eq!(net.state[&ServerId(1)], all);
    assert_eq!(net.state[&ServerId(2)], all);
}

#[test]
fn config_is_validated() {
    let mut c = cfg(1, &[1, 2, 3], &[]);
    assert!(c.validate().is_ok());
    c.my_id = ServerId(9);
    assert_eq!(c.validate(), Err(ConfigError::NotAMember(ServerId(9))));
    let c = cfg(1, &[1, 2], &[2]);
    assert_eq!(c.validate(), Err(ConfigError::VoterAndObserver(ServerId(2))));
    assert!(Node::new(cfg(1, &[], &[]), Restored::default()).is_err());
}

/// A standalone server: no election and no epoch files; a proposal is delivered once its
/// append is durable, in order; a refused append is forgotten with everything after it and
/// its zxid is the next one again.
#[test]
fn standalone_delivers_what_is_durable_and_forgets_a_refused_append() {
    let restored = Restored { applied: Zxid::new(3, 7), ..Default::default() };
    let mut n = Node::standalone(cfg(1, &[1], &[]), restored).expect("one voter");
    assert!(n.take_actions().is_empty(), "nothing to do at start");
    assert!(n.is_serving() && n.is_standalone());
    assert!(matches!(Node::standalone(cfg(1, &[1, 2], &[]), Restored::default()), Err(ConfigError::NotStandalone)));
    let z = |c| Zxid::new(3, c);
    assert_eq!(n.next_zxid(), Ok(z(8)));
    assert_eq!(n.propose(z(9), Bytes::from_static(b"x")), Err(ProposeError::WrongZxid { expected: z(8), got: z(9) }));
    let mut seqs = Vec::new();
    for c in 8..=10 {
        n.propose(z(c), Bytes::from(format!("t{c}"))).unwrap();
        match n.take_actions().as_slice() {
            [Action::Persist { seq, op: StorageOp::Append(e) }] if e.zxid == z(c) => seqs.push(*seq),
            other => panic!("expected one append, got {other:?}"),
        }
    }
    n.persisted(seqs[0]);
    assert_eq!(n.take_actions(), vec![Action::Deliver(Entry { zxid: z(8), data: Bytes::from("t8") })]);
    // The disk refuses 9 (and so 10): both are forgotten; 9 comes again.
    n.append_failed(z(9));
    assert_eq!(n.next_zxid(), Ok(z(9)));
    n.propose(z(9), Bytes::from("again")).unwrap();
    let Action::Persist { seq, .. } = n.take_actions().remove(0) else { panic!("append") };
    n.persisted(seq);
    assert_eq!(n.take_actions(), vec![Action::Deliver(Entry { zxid: z(9), data: Bytes::from("again") })]);
    assert_eq!(n.applied(), z(9));
    // Peers do not exist for it.
    n.step(ServerId(2), Message::Ping { zxid: z(9), data: Bytes::new() });
    n.tick();
    assert!(n.take_actions().is_empty());
}

fn hierarchy(groups: &[(u64, &[i64])], weights: &[(i64, u64)]) -> Hierarchy {
    let g = groups.iter().map(|(id, m)| (*id, m.iter().map(|s| ServerId(*s)).collect())).collect();
    let w = weights.iter().map(|(s, w)| (ServerId(*s), *w)).collect();
    Hierarchy::new(&g, &w)
}

fn ids(v: &[i64]) -> Vec<ServerId> {
    v.iter().map(|s| ServerId(*s)).collect()
}

#[test]
fn hierarchical_quorums_as_quorum_hierarchical_counts_them() {
    // Three groups of three: a majority of the members of a majority of the groups.
    let h = hierarchy(&[(1, &[1, 2, 3]), (2, &[4, 5, 6]), (3, &[7, 8, 9])], &[]);
    assert!(h.contains_quorum(&ids(&[1, 2, 4, 5])));
    assert!(!h.contains_quorum(&ids(&[1, 2, 3])));
    assert!(!h.contains_quorum(&ids(&[1, 4, 7, 2])));
    assert!(h.contains_quorum(&ids(&[1, 2, 4, 5, 6, 7])));
    assert!(!h.contains_quorum(&ids(&[])));
    // Weights: server 1 alone outweighs 2 and 3 in its group (4 > 6 / 2).
    let h = hierarchy(&[(1, &[1, 2, 3]), (2, &[4, 5, 6])], &[(1, 4)]);
    assert!(!h.contains_quorum(&ids(&[1, 4])));
    assert!(h.contains_quorum(&ids(&[1, 4, 5])));
    assert!(!h.contains_quorum(&ids(&[2, 3, 4, 5, 6])));
    // A group of weight 0 is not counted among the groups; its members never matter.
    let h = hierarchy(&[(1, &[1, 2]), (2, &[3, 4]), (3, &[5])], &[(5, 0)]);
    assert!(h.contains_quorum(&ids(&[1, 2, 3, 4])));
    assert!(!h.contains_quorum(&ids(&[1, 2, 5])));
    // Integer halves: in a group of weight 3, 2 is a majority; in one of weight 2, 1 is not.
    let h = hierarchy(&[(1, &[1, 2, 3])], &[]);
    assert!(h.contains_quorum(&ids(&[1, 2])));
    let h = hierarchy(&[(1, &[1, 2])], &[]);
    assert!(!h.contains_quorum(&ids(&[1])));
}

#[test]
fn a_voter_of_weight_zero_is_never_leader_and_its_ack_counts_for_nothing() {
    let h = hierarchy(&[(1, &[1, 2, 3])], &[(3, 0)]);
    let with = |c: Config| Config { hierarchy: Some(h.clone()), ..c };
    // Server 3 has the highest sid, but weight 0: server 2 leads.
    let mut net = Net::with(&[1, 2, 3], &[], |_| Restored::default(), with);
    net.run(40);
    assert_eq!(net.leader(), Some(ServerId(2)));
    let zs = net.propose(2);
    net.run(2);
    assert_eq!(net.state[&ServerId(3)], zs, "a weight-0 voter still follows and applies");
    // Without server 1, servers 2 and 3 weigh 1 of 2: no quorum, so no leader serves
    // (under a plain majority, 2 of 3 would).
    net.down.insert(ServerId(1));
    net.run(400);
    assert!(net.nodes.values().filter(|n| n.id() != ServerId(1)).all(|n| !n.is_serving()), "served without a weighted quorum");
}

#[test]
fn a_committed_reconfiguration_is_delivered_then_reported() {
    // What a ZooKeeper leader sends for a reconfig txn: COMMITANDACTIVATE to followers,
    // INFORMANDACTIVATE to observers. The txn is delivered, then the host hears of it.
    let mut net = Net::new(&[1, 2, 3], &[4], |_| Restored::default());
    net.run(20);
    let l = net.leader().unwrap();
    let zs = net.propose(1);
    while let Some((from, to, m)) = net.queue.pop_front() {
        let m = match m {
            Message::Commit { zxid } => Message::CommitAndActivate { zxid, leader: ServerId(2) },
            Message::Inform(entry) => Message::InformAndActivate { entry, leader: ServerId(2) },
            m => m,
        };
        net.nodes.get_mut(&to).unwrap().step(from, m);
        net.actions(to);
    }
    let mut got: Vec<_> = net.reconfigs.clone();
    got.sort_by_key(|r| r.0);
    let learners: Vec<ServerId> = [1, 2, 3, 4].into_iter().map(ServerId).filter(|s| *s != l).collect();
    assert_eq!(got, learners.iter().map(|s| (*s, zs[0], ServerId(2), 1)).collect::<Vec<_>>());
    for s in learners {
        assert_eq!(net.state[&s], zs, "server {s} delivered the reconfig txn");
    }
}

#[test]
fn membership_text_parses_as_quorum_verifier_to_string() {
    let m = Membership::parse(
        b"server.1=a:1:2:participant;c:3\nserver.2=b:1:2|b2:1:2:participant\nserver.3=c:1:2:observer;c:4\nversion=10000000a",
    )
    .unwrap();
    assert_eq!(m.voters, BTreeSet::from([ServerId(1), ServerId(2)]));
    assert_eq!(m.observers, BTreeSet::from([ServerId(3)]));
    assert_eq!(m.version, 0x10000000a);
    assert!(m.hierarchy.is_none());
    let h =
        Membership::parse(b"server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\ngroup.1=1:2:3\nweight.1=0\nweight.2=1\nweight.3=1").unwrap();
    assert_eq!(h.hierarchy.unwrap().weight(ServerId(1)), 0);
    assert_eq!(Membership::parse(b"version=1"), Err(MembershipError::NoVoters));
    assert!(Membership::parse(b"server.x=a:1:2").is_err());
    assert!(Membership::parse(b"server.1=a:1:2\nserver.2=b:1:2\ngroup.1=1").is_err());
}

#[test]
fn activation_takes_only_newer_configurations_with_reconfig_enabled() {
    let restored = || Restored { accepted_epoch: 0, current_epoch: 0, applied: Zxid::ZERO, log: vec![] };
    let text = Bytes::from_static(b"server.1=a:1:2:participant\nserver.2=b:1:2:participant\nversion=100000002");
    // Without reconfigEnabled: nothing taken.
    let mut n = Node::new(cfg(1, &[1, 2, 3], &[]), restored()).unwrap();
    assert!(!n.activate(text.clone(), None).unwrap());
    assert_eq!(n.config().voters.len(), 3);
    let mut c = cfg(1, &[1, 2, 3], &[]);
    c.reconfig_enabled = true;
    let mut n = Node::new(c, restored()).unwrap();
    n.take_actions();
    assert!(n.activate(text.clone(), Some(ServerId(2))).unwrap());
    assert_eq!(n.config().voters, BTreeSet::from([ServerId(1), ServerId(2)]));
    assert_eq!(n.config().config_version, 0x100000002);
    let acts = n.take_actions();
    assert!(acts.iter().any(|a| matches!(a, Action::ConfigActivated { version: 0x100000002, .. })), "{acts:?}");
    // A looking node starts a new round among the new voters: no notification to 3.
    assert!(acts.iter().any(|a| matches!(a, Action::Send { to: ServerId(2), msg: Message::Notification(_) })));
    assert!(!acts.iter().any(|a| matches!(a, Action::Send { to: ServerId(3), .. })));
    // The same version again, or an older one: not taken.
    assert!(!n.activate(text, None).unwrap());
    // A configuration without this server: it keeps running, proposing nobody.
    let gone = Bytes::from_static(b"server.2=b:1:2:participant\nserver.3=c:1:2:participant\nversion=100000005");
    assert!(n.activate(gone, None).unwrap());
    assert!(!n.config().voters.contains(&ServerId(1)));
    assert_eq!(n.state(), ServerState::Looking);
}

#[test]
fn a_learner_behind_the_window_gets_a_diff_from_the_log_on_disk() {
    // Server 1 is far behind the leader's window (5 committed txns kept in memory); the
    // leader's txn log on disk holds all 20: a DIFF read from it in batches, then the window.
    let long: Vec<Entry> = (1..=20).map(|c| entry(1, c)).collect();
    let setup = |disk: bool| {
        let mut net = Net::with(
            &[1, 2, 3],
            &[],
            |id| match id {
                1 => Restored { accepted_epoch: 1, current_epoch: 1, applied: Zxid::ZERO, log: long[..2].to_vec() },
                _ => Restored { accepted_epoch: 1, current_epoch: 1, applied: Zxid::new(1, 20), log: long.clone() },
            },
            |mut c| {
                c.txn_log_sync = true;
                c
            },
        );
        if disk {
            for id in [2, 3] {
                net.disk.insert(ServerId(id), long.clone());
            }
        }
        net.state.insert(ServerId(2), long.iter().map(|e| e.zxid).collect());
        net.state.insert(ServerId(3), long.iter().map(|e| e.zxid).collect());
        net
    };
    let mut net = setup(true);
    net.run(40);
    assert_eq!(net.leader(), Some(ServerId(3)));
    assert_eq!(sync_kind(&net, 1), "DIFF");
    assert_eq!(net.nodes[&ServerId(3)].stats().diff_from_log_syncs, 1);
    // Every txn after 1:2 once, in order, each committed, then NEWLEADER.
    let to1: Vec<&Message> = net.log.iter().filter(|(f, t, _)| *f == ServerId(3) && *t == ServerId(1)).map(|(_, _, m)| m).collect();
    let proposals: Vec<Zxid> = to1.iter().filter_map(|m| if let Message::Proposal(e) = m { Some(e.zxid) } else { None }).collect();
    assert_eq!(proposals, (3..=20).map(|c| Zxid::new(1, c)).collect::<Vec<_>>());
    let newleader = to1.iter().position(|m| matches!(m, Message::NewLeader { .. })).unwrap();
    let last_commit = to1.iter().rposition(|m| matches!(m, Message::Commit { .. })).unwrap();
    assert!(last_commit < newleader);
    // Its own 1:1 and 1:2 (logged, committed as it learns), then the DIFF's.
    assert_eq!(net.state[&ServerId(1)], (1..=20).map(|c| Zxid::new(1, c)).collect::<Vec<_>>());
    assert!(net.reads.is_empty(), "the read is over");
    // New writes replicate to it as usual.
    let z = net.propose(2);
    net.run(5);
    assert_eq!(net.state[&ServerId(1)].last(), z.last());

    // The host refuses (the log is too large next to the snapshot, or purged): SNAP.
    let mut net = setup(false);
    net.run(40);
    assert_eq!(net.leader(), Some(ServerId(3)));
    assert_eq!(sync_kind(&net, 1), "SNAP");
    assert_eq!(net.nodes[&ServerId(3)].stats().diff_from_log_syncs, 0);
    assert_eq!(net.state[&ServerId(1)].len(), 20);
}

#[test]
fn a_leader_needs_a_quorum_of_the_last_configuration_seen_proposed_too() {
    // FastLeaderElection's vote tracker and Leader.lead's newLeaderProposal: the
    // configuration in force ({1,2,3}) and the last one seen proposed ({3,4,5}, a reconfig
    // txn in the log) must both elect and ack NEWLEADER.
    let with_reconfig = |mut c: Config| {
        c.reconfig_enabled = true;
        c.config_data =
            Bytes::from_static(b"server.1=a:1:2:participant\nserver.2=b:1:2:participant\nserver.3=c:1:2:participant\nversion=0");
        c
    };
    let proposed = b"server.3=c:1:2:participant\nserver.4=d:1:2:participant\nserver.5=e:1:2:participant\nversion=100000005";
    let mut net = Net::with(&[1, 2, 3], &[], |_| Restored::default(), with_reconfig);
    for n in net.nodes.values_mut() {
        n.saw_config(proposed, true).unwrap();
        assert_eq!(n.last_seen_config().map(|m| m.version), Some(0x100000005));
    }
    net.run(40);
    assert_eq!(net.leader(), None, "1, 2 and 3 are no quorum of {{3,4,5}}");
    // Without a configuration seen proposed, the same servers establish a leader.
    let mut net = Net::with(&[1, 2, 3], &[], |_| Restored::default(), with_reconfig);
    net.run(40);
    assert!(net.leader().is_some());
    // Activating the proposed configuration (or a newer one) forgets it.
    // The host hears of each change (zoo.cfg.dynamic.next written, then deleted).
    let mut n = Node::new(with_reconfig(cfg(1, &[1, 2, 3], &[])), Restored::default()).unwrap();
    n.take_actions();
    n.saw_config(proposed, true).unwrap();
    assert!(matches!(&n.take_actions()[..], [Action::LastSeenConfig { data: Some(d) }] if &d[..] == proposed));
    n.saw_config(proposed, true).unwrap();
    assert!(n.take_actions().is_empty(), "the same configuration again: nothing new");
    n.activate(Bytes::from_static(proposed), None).unwrap();
    assert!(n.last_seen_config().is_none());
    let acts = n.take_actions();
    assert!(acts.iter().any(|a| matches!(a, Action::LastSeenConfig { data: None })), "{acts:?}");
}

#[test]
fn an_observer_without_sync_logs_nothing_and_checkpoints_before_it_logs_again() {
    // syncEnabled=false on every server: only observers are affected.
    let mut net = Net::with(
        &[1, 2, 3],
        &[4],
        |_| Restored::default(),
        |mut c| {
            c.sync_enabled = false;
            c
        },
    );
    net.run(20);
    assert_eq!(net.nodes[&ServerId(4)].state(), ServerState::Observing);
    let zs = net.propose(3);
    net.run(2);
    assert_eq!(net.state[&ServerId(4)], zs);
    let appends =
        |net: &Net, id: i64| net.persists.iter().filter(|(s, op)| *s == ServerId(id) && matches!(op, StorageOp::Append(_))).count();
    assert_eq!(appends(&net, 4), 0, "the observer logs nothing");
    assert!(
        net.persists.iter().any(|(s, op)| *s == ServerId(4) && matches!(op, StorageOp::CurrentEpoch(_))),
        "its epoch files are written"
    );
    assert_eq!(appends(&net, 1), 3, "participants log as ever");

    // The observer becomes a participant (as a reconfig would make it): before its first
    // append its state is checkpointed, so the log on disk continues a snapshot.
    for n in net.nodes.values_mut() {
        n.cfg.observers.clear();
        n.cfg.voters.insert(ServerId(4));
    }
    // It has every txn (in memory): with the highest sid it is elected in a new election.
    let before = net.persists.len();
    for n in net.nodes.values_mut() {
        n.go_looking();
    }
    net.run(200);
    assert_eq!(net.leader(), Some(ServerId(4)));
    let more = net.propose(2);
    net.run(2);
    let mine: Vec<&StorageOp> = net.persists[before..].iter().filter(|(s, _)| *s == ServerId(4)).map(|(_, op)| op).collect();
    let checkpoint = mine.iter().position(|op| **op == StorageOp::Checkpoint { zxid: *zs.last().unwrap() }).expect("a checkpoint");
    let first_append = mine.iter().position(|op| matches!(op, StorageOp::Append(_))).expect("appends");
    assert!(checkpoint < first_append, "{mine:?}");
    assert_eq!(mine.iter().filter(|op| matches!(op, StorageOp::Checkpoint { .. })).count(), 1);
    assert_eq!(net.state[&ServerId(4)][3..], more[..]);
    assert_eq!(net.state[&ServerId(1)], net.state[&ServerId(4)]);
}

/// Voters 1-3 and observer 4 with `observerMasterPort`: the observer's learner-master list
/// shuffled by `seed` (returned), the followers serving observers when `followers_serve`.
fn observer_master_net(seed: u64, followers_serve: bool) -> (Net, Vec<ServerId>) {
    let order = crate::observer_master::LearnerMasters::new([ServerId(1), ServerId(2), ServerId(3)], seed).order().to_vec();
    let net = Net::with(
        &[1, 2, 3],
        &[4],
        |_| Restored::default(),
        |mut c| {
            if c.my_id == ServerId(4) {
                c.observer_master_seed = Some(seed);
            } else {
                c.observer_master = followers_serve;
            }
            c
        },
    );
    (net, order)
}

#[test]
fn an_observer_with_observer_masters_tries_the_voters_in_turn() {
    // observerMasterPort on the observer: each election round it learns from the next voter
    // of its shuffled list, not from the leader. Here no follower answers OBSERVERINFO (these
    // followers run no observer master) and, this network having no ports, the leader does:
    // the observer goes round its list until it reaches the leader.
    let seed = 7;
    let (mut net, order) = observer_master_net(seed, false);
    net.run(400);
    let obs = &net.nodes[&ServerId(4)];
    assert_eq!(obs.state(), ServerState::Observing);
    assert!(obs.is_serving());
    assert_eq!(obs.leader(), Some(ServerId(3)));
    let tried: Vec<ServerId> = net
        .log
        .iter()
        .filter(|(f, _, m)| *f == ServerId(4) && matches!(m, Message::LearnerInfo { observer: true, .. }))
        .map(|(_, t, _)| *t)
        .collect();
    let mut tried = tried;
    tried.dedup(); // OBSERVERINFO is sent again within a round while unanswered
    let until_leader = order.iter().position(|s| *s == ServerId(3)).unwrap();
    assert!(until_leader > 0, "seed {seed} should not put the leader first");
    assert_eq!(tried, order[..=until_leader].to_vec(), "the voters in the list's order, up to the leader");
    // Without the seed an observer learns from the leader at once.
    let mut plain = Net::new(&[1, 2, 3], &[4], |_| Restored::default());
    plain.run(20);
    let first = plain.log.iter().find(|(f, _, m)| *f == ServerId(4) && matches!(m, Message::LearnerInfo { observer: true, .. })).unwrap();
    assert_eq!(first.1, ServerId(3));
}

#[test]
fn a_follower_serves_its_observers_as_an_observer_master() {
    // observerMasterPort everywhere: the followers run observer masters, the observer syncs
    // from the first voter of its list (2, with this seed), writes reach it as INFORMs from
    // that follower; the follower down, it syncs from the next one.
    let seed = 7;
    let (mut net, order) = observer_master_net(seed, true);
    assert_eq!(order[0], ServerId(2));
    net.run(100);
    let zs = net.propose(3);
    net.run(100);
    let obs = &net.nodes[&ServerId(4)];
    assert!(obs.is_serving());
    assert_eq!(obs.leader(), Some(ServerId(2)));
    assert_eq!(net.nodes[&ServerId(2)].synced_observers(), Some(1));
    assert_eq!(net.nodes[&ServerId(3)].synced_observers(), None, "the leader is no observer master");
    assert_eq!(net.state[&ServerId(4)], zs);
    assert!(net.log.iter().any(|(f, t, m)| *f == ServerId(2) && *t == ServerId(4) && matches!(m, Message::Inform(_))));
    assert!(
        !net.log.iter().any(|(f, t, m)| *f == ServerId(3) && *t == ServerId(4) && !matches!(m, Message::Notification(_))),
        "nothing from the leader but votes"
    );
    // A restarted observer behind by a few txns is synced by DIFF from the follower's window.
    net.down.insert(ServerId(2));
    let more = net.propose(2);
    net.run(400);
    let obs = &net.nodes[&ServerId(4)];
    assert!(obs.is_serving());
    assert_ne!(obs.leader(), Some(ServerId(2)));
    let mut all = zs.clone();
    all.extend(more);
    assert_eq!(net.state[&ServerId(4)], all);
}

#[test]
fn a_follower_coming_back_joins_the_leader_without_an_election() {
    // Its accepted epoch is the leader's own (it followed this leader before): as in
    // ZooKeeper, no reason for the leader to step down.
    let mut net = Net::new(&[1, 2, 3], &[], |_| Restored::default());
    net.run(20);
    assert_eq!(net.leader(), Some(ServerId(3)));
    net.propose(2);
    net.run(2);
    let elections = net.nodes[&ServerId(3)].stats().elections;
    net.nodes.get_mut(&ServerId(1)).unwrap().go_looking();
    net.run(50);
    assert_eq!(net.leader(), Some(ServerId(3)));
    assert_eq!(net.nodes[&ServerId(3)].stats().elections, elections, "the leader never left LEADING");
    assert_eq!(net.nodes[&ServerId(1)].state(), ServerState::Following);
    assert_eq!(net.propose(1), vec![Zxid::new(1, 3)], "still epoch 1");
    net.run(2);
    assert_eq!(net.state[&ServerId(1)], net.state[&ServerId(3)]);
}

#[test]
fn an_observer_rebuilds_its_learner_masters_on_a_reconfig() {
    // reconfigEnabled with observerMasterPort (ZooKeeper's `updateObserverMasterList` in
    // `setQuorumVerifier`): an activated configuration replaces the observer's list with its
    // voters, shuffled again; the connection to its learner master stays up while the leader
    // is still the designated one (the vote's leader is compared, not the follower it syncs
    // from), and the next round takes the new list.
    let seed = 7;
    let (mut net, order) = observer_master_net(seed, true);
    net.nodes.get_mut(&ServerId(4)).unwrap().cfg.reconfig_enabled = true;
    net.run(100);
    let master = order[0];
    assert_eq!(net.nodes[&ServerId(4)].leader(), Some(master));
    let text = Bytes::from_static(
        b"server.1=a:1:2:participant\nserver.3=c:1:2:participant\nserver.5=e:1:2:participant\nserver.4=d:1:2:observer\nversion=100000007",
    );
    let obs = net.nodes.get_mut(&ServerId(4)).unwrap();
    assert!(obs.activate(text, Some(ServerId(3))).unwrap());
    assert_eq!(obs.state(), ServerState::Observing, "still observing through its learner master");
    assert_eq!(obs.leader(), Some(master));
    let mut listed = obs.learner_masters.as_ref().unwrap().order().to_vec();
    listed.sort();
    assert_eq!(listed, vec![ServerId(1), ServerId(3), ServerId(5)]);
    // A designated leader other than its leader: a new election round (processReconfig's
    // leader change), from the new list.
    let text = Bytes::from_static(
        b"server.1=a:1:2:participant\nserver.3=c:1:2:participant\nserver.5=e:1:2:participant\nserver.4=d:1:2:observer\nversion=100000008",
    );
    assert!(obs.activate(text, Some(ServerId(1))).unwrap());
    assert_eq!(obs.state(), ServerState::Looking);
}

#[test]
fn an_observer_waits_its_reconnect_and_election_delays() {
    // zookeeper.observer.reconnectDelayMs: a random wait below it before connecting to the
    // leader; zookeeper.observer.election.DelayMs: below it before the election round of an
    // observer that lost its leader. Randomness from the host's seed.
    let mut net = Net::with(
        &[1, 2, 3],
        &[4],
        |_| Restored::default(),
        |mut c| {
            if c.my_id == ServerId(4) {
                c.observer_reconnect_delay_ticks = 40;
                c.observer_election_delay_ticks = 40;
                c.random_seed = 3;
            }
            c
        },
    );
    let obs_infos = |net: &Net| net.log.iter().filter(|(f, _, m)| *f == ServerId(4) && matches!(m, Message::LearnerInfo { .. })).count();
    let mut decided = None;
    for t in 0..200 {
        net.run(1);
        if decided.is_none() && net.nodes[&ServerId(4)].state() == ServerState::Observing {
            decided = Some(t);
            assert_eq!(obs_infos(&net), 0, "OBSERVERINFO waits for the delay");
        }
        if obs_infos(&net) > 0 {
            break;
        }
    }
    let decided = decided.expect("the observer found its leader");
    assert!(obs_infos(&net) > 0, "connected after the delay");
    net.run(100);
    assert!(net.nodes[&ServerId(4)].is_serving());
    let _ = decided;
    // The leader gone: LOOKING at once, its notifications only after the election delay.
    let leader = net.leader().unwrap();
    net.down.insert(leader);
    let votes = |net: &Net| net.log.iter().filter(|(f, _, m)| *f == ServerId(4) && matches!(m, Message::Notification(_))).count();
    let before = votes(&net);
    let mut looking_quiet = 0;
    for _ in 0..200 {
        net.run(1);
        let n = &net.nodes[&ServerId(4)];
        if n.state() == ServerState::Looking && votes(&net) == before {
            looking_quiet += 1;
        }
        if votes(&net) > before {
            break;
        }
    }
    assert!(looking_quiet > 0, "LOOKING without notifications for a while");
    assert!(votes(&net) > before, "its round starts after the delay");
    net.run(400);
    assert!(net.nodes[&ServerId(4)].is_serving(), "observing the new leader");
}
