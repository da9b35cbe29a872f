//! # rzk-sim: a deterministic simulator for rzk ensembles
//!
//! One seed drives everything: the ensemble (3, 5 or 7 voters, maybe observers), the clients'
//! operations, and the faults. Each server is a real [`rzk_zab::Node`] whose state machine is
//! the real [`rzk_tree::DataTree`] applying real `TxnRecord`s; the simulator plays host:
//! network, disks, clocks and clients.
//!
//! - **Network.** The election port is a datagram network with loss, duplication, delay and
//!   therefore reordering. The quorum port behaves like TCP: a learner opens a connection
//!   with FOLLOWERINFO / OBSERVERINFO; messages on a connection arrive in order; a lost
//!   message breaks the connection (the ends may or may not hear of it, as with a reset or a
//!   silent peer) and nothing more travels on it. Partitions cut links both ways or one way.
//! - **Disks.** Writes complete in order after a latency; a "slow disk" makes them take many
//!   ticks. A crash loses every write not yet completed, except that a random prefix of them
//!   may have reached the disk (a torn tail). Snapshots are taken every few dozen txns.
//! - **Crashes and restarts** rebuild the server from what its disk holds.
//! - **Clients** read from their server and write through it (followers forward to the
//!   leader), with timeouts; they move to another server that is not behind them.
//!
//! The run has a *safety phase* (faults on; the checkers of [`check`] run after every step)
//! then a *liveness phase* (faults healed, crashed servers restarted): a leader must be
//! established within a bound, new writes must commit, and every server must converge to the
//! same zxid and tree digest. A failure carries the seed and the command that replays it; the
//! run's trace hash is the same every time a seed runs.

pub mod check;
pub mod rng;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use rzk_proto::txn::{CreateTxn, SetDataTxn, Txn, TxnHeader, TxnRecord};
use rzk_proto::{Acl, Reader, SessionId, StatPersisted, Writer, Zxid};
use rzk_tree::{DataTree, TreeOptions};
use rzk_zab::{Action, Config, Entry, Message, Node, Restored, ServerId, ServerState, StorageOp};

use check::{hash_bytes, Checker, WriteRec};
use rng::Rng;

/// How hard the world is on the ensemble during the safety phase. Probabilities are per
/// message (network) or per server per tick (crashes, disks).
#[derive(Debug, Clone)]
pub struct Faults {
    pub election_loss: f64,
    pub election_dup: f64,
    pub delay_max_ticks: u64,
    /// A quorum-port message is lost and its connection breaks.
    pub conn_reset: f64,
    pub crash: f64,
    pub restart_ticks: (u64, u64),
    /// A partition starts (per tick, when none is active).
    pub partition: f64,
    pub partition_ticks: (u64, u64),
    /// Fraction of partitions that cut links one way only.
    pub one_way: f64,
    /// A server's disk turns slow (or back to normal).
    pub slow_disk: f64,
    /// A crash keeps a random prefix of the unsynced writes (else it loses them all).
    pub torn_tail: f64,
}

/// Each seed scales [`Faults::base`] by one of these (0 = a fault-free run).
pub const FAULT_INTENSITIES: [f64; 5] = [0.0, 0.5, 1.0, 1.0, 2.0];

impl Faults {
    /// The fault mix at intensity 1.
    pub fn base() -> Faults {
        Faults {
            election_loss: 0.05,
            election_dup: 0.05,
            delay_max_ticks: 4,
            conn_reset: 0.002,
            crash: 0.002,
            restart_ticks: (5, 80),
            partition: 0.004,
            partition_ticks: (10, 150),
            one_way: 0.3,
            slow_disk: 0.002,
            torn_tail: 0.5,
        }
    }

    pub fn none() -> Faults {
        Faults {
            election_loss: 0.0,
            election_dup: 0.0,
            delay_max_ticks: 1,
            conn_reset: 0.0,
            crash: 0.0,
            restart_ticks: (1, 1),
            partition: 0.0,
            partition_ticks: (1, 1),
            one_way: 0.0,
            slow_disk: 0.0,
            torn_tail: 0.0,
        }
    }

    /// A one-line summary for reports.
    pub fn summary(&self) -> String {
        format!(
            "loss={:.3} dup={:.3} delay<={} reset={:.4} crash={:.4} partition={:.4} one_way={:.2} slow_disk={:.4} torn={:.2}",
            self.election_loss, self.election_dup, self.delay_max_ticks, self.conn_reset, self.crash, self.partition, self.one_way, self.slow_disk, self.torn_tail
        )
    }
}

/// One simulation run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub voters: usize,
    pub observers: usize,
    pub clients: usize,
    pub safety_ticks: u64,
    /// Bound on the liveness phase: leader, progress and convergence must happen within it.
    pub liveness_ticks: u64,
    /// Writes that must commit in the liveness phase.
    pub progress_writes: usize,
    pub committed_log_max: usize,
    pub faults: Faults,
}

impl SimConfig {
    /// Everything from the seed: ensemble size, clients and the fault mix.
    pub fn from_seed(seed: u64) -> SimConfig {
        let mut r = Rng::new(seed);
        let voters = [3, 3, 3, 5, 5, 7][r.below(6) as usize];
        let observers = if r.chance(0.25) { 1 } else { 0 };
        let intensity = FAULT_INTENSITIES[r.below(FAULT_INTENSITIES.len() as u64) as usize];
        let mut faults = Faults::base();
        for p in [&mut faults.election_loss, &mut faults.election_dup, &mut faults.conn_reset, &mut faults.crash, &mut faults.partition, &mut faults.slow_disk] {
            *p *= intensity;
        }
        faults.delay_max_ticks = r.range(1, 4);
        SimConfig {
            seed,
            voters,
            observers,
            clients: r.range(2, 5) as usize,
            safety_ticks: r.range(600, 1200),
            liveness_ticks: 1500,
            progress_writes: 5,
            committed_log_max: r.range(10, 60) as usize,
            faults,
        }
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        format!("cargo run --release -p rzk-sim -- --seed {}", self.seed)
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub voters: usize,
    pub observers: usize,
    pub trace_hash: u64,
    pub ticks: u64,
    pub committed: usize,
    pub acked_writes: usize,
    pub unacked_writes: usize,
    pub reads: u64,
    pub elections: u64,
    pub epochs: usize,
    pub crashes: u64,
    pub torn_tails: u64,
    pub partitions: u64,
    pub one_way_partitions: u64,
    pub conn_resets: u64,
    pub election_lost: u64,
    pub election_dups: u64,
    pub slow_disks: u64,
    pub diff_syncs: u64,
    pub trunc_syncs: u64,
    pub snap_syncs: u64,
    pub digest_checks: u64,
    pub log_checks: u64,
    pub liveness_ticks: u64,
}

/// A failed run: what broke, when, and how to replay it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub seed: u64,
    pub tick: u64,
    pub message: String,
    pub replay: String,
    pub trace_hash: u64,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seed={} tick={} trace={:016x}: {}\n  replay: {}", self.seed, self.tick, self.trace_hash, self.message, self.replay)
    }
}

#[derive(Debug, Clone)]
enum Packet {
    Zab(Message),
    /// A client write forwarded by a learner to its leader (ZooKeeper's REQUEST).
    Forward { session: i64, cxid: i32, op: WriteOp },
}

#[derive(Debug, Clone)]
enum WriteOp {
    Create { path: String, data: Vec<u8> },
    SetRoot { data: Vec<u8> },
}

enum Event {
    Deliver { to: usize, from: usize, packet: Packet, conn: Option<u64> },
    DiskDone { server: usize, incarnation: u64, seq: u64 },
    Disconnected { to: usize, peer: usize, incarnation: u64 },
    Restart { server: usize },
}

#[derive(Default)]
struct Durable {
    accepted_epoch: u32,
    current_epoch: u32,
    snapshot: Option<(Zxid, Bytes)>,
    log: Vec<Entry>,
}

struct Server {
    id: ServerId,
    node: Option<Node>,
    incarnation: u64,
    durable: Durable,
    pending: VecDeque<(u64, StorageOp)>,
    disk_free_at: u64,
    slow_disk: bool,
    tree: DataTree,
    applied: Zxid,
    serving: bool,
    since_snapshot: u64,
    snapshot_every: u64,
}

struct Client {
    session: i64,
    server: Option<usize>,
    pending: Option<(i32, usize, u64)>, // (cxid, index in writes, deadline)
    next_cxid: i32,
}

#[derive(Default, Clone, Copy)]
struct Conn {
    gen: u64,
    open: bool,
    /// Last scheduled delivery per direction (FIFO): [low→high, high→low].
    last: [u64; 2],
}

struct World {
    cfg: SimConfig,
    faults: Faults,
    rng: Rng,
    now: u64,
    servers: Vec<Server>,
    clients: Vec<Client>,
    events: BTreeMap<(u64, u64), Event>,
    next_event: u64,
    conns: BTreeMap<(usize, usize), Conn>,
    /// Directed links that drop everything.
    cut: BTreeSet<(usize, usize)>,
    partition_until: Option<u64>,
    chk: Checker,
    trace: u64,
    rep: Report,
    client_writes_enabled: bool,
    /// `RZK_SIM_TRACE=1`: print every action and delivery (for replaying a failing seed).
    verbose: bool,
}

fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(17)
}

/// Runs one seed to completion.
pub fn run(cfg: SimConfig) -> Result<Report, Failure> {
    let mut w = World::new(cfg);
    let r = w.run_phases();
    let trace = w.trace;
    match r {
        Ok(()) => {
            w.rep.trace_hash = trace;
            Ok(w.rep)
        }
        Err(message) => Err(Failure { seed: w.cfg.seed, tick: w.now, message, replay: w.cfg.replay_command(), trace_hash: trace }),
    }
}

impl World {
    fn new(cfg: SimConfig) -> World {
        let mut rng = Rng::new(cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5);
        let n = cfg.voters + cfg.observers;
        let servers = (0..n)
            .map(|i| Server {
                id: ServerId(i as i64 + 1),
                node: None,
                incarnation: 0,
                durable: Durable::default(),
                pending: VecDeque::new(),
                disk_free_at: 0,
                slow_disk: false,
                tree: DataTree::with_options(TreeOptions::default()),
                applied: Zxid::ZERO,
                serving: false,
                since_snapshot: 0,
                snapshot_every: rng.range(15, 60),
            })
            .collect();
        let clients = (0..cfg.clients).map(|i| Client { session: 0x100 + i as i64, server: None, pending: None, next_cxid: 1 }).collect();
        let rep = Report { seed: cfg.seed, voters: cfg.voters, observers: cfg.observers, ..Default::default() };
        let faults = cfg.faults.clone();
        let mut w = World {
            cfg,
            faults,
            rng,
            now: 0,
            servers,
            clients,
            events: BTreeMap::new(),
            next_event: 0,
            conns: BTreeMap::new(),
            cut: BTreeSet::new(),
            partition_until: None,
            chk: Checker::default(),
            trace: 0xcbf2_9ce4_8422_2325,
            rep,
            client_writes_enabled: true,
            verbose: std::env::var_os("RZK_SIM_TRACE").is_some(),
        };
        for i in 0..n {
            w.start_server(i);
        }
        w
    }

    fn node_config(&self, i: usize) -> Config {
        let voters: BTreeSet<ServerId> = (1..=self.cfg.voters as i64).map(ServerId).collect();
        let observers: BTreeSet<ServerId> = (self.cfg.voters as i64 + 1..=(self.cfg.voters + self.cfg.observers) as i64).map(ServerId).collect();
        let mut c = Config::from_ms(ServerId(i as i64 + 1), voters, observers, 50, 200, 10, 5);
        c.finalize_wait_ticks = 2;
        c.min_notification_ticks = 2;
        c.max_notification_ticks = 32;
        c.committed_log_max = self.cfg.committed_log_max;
        c.outstanding_proposals_max = 200;
        c
    }

    fn start_server(&mut self, i: usize) {
        let cfg = self.node_config(i);
        let s = &mut self.servers[i];
        let (applied, tree) = match &s.durable.snapshot {
            Some((z, data)) => (*z, decode_snapshot(data).expect("own snapshot decodes")),
            None => (Zxid::ZERO, DataTree::with_options(TreeOptions::default())),
        };
        s.tree = tree;
        s.applied = applied;
        s.serving = false;
        s.pending.clear();
        s.disk_free_at = self.now;
        let restored = Restored { accepted_epoch: s.durable.accepted_epoch, current_epoch: s.durable.current_epoch, applied, log: s.durable.log.clone() };
        s.node = Some(Node::new(cfg, restored).expect("valid config"));
        let _ = s.incarnation;
        self.drain(i);
    }

    fn schedule(&mut self, at: u64, ev: Event) {
        self.next_event += 1;
        self.events.insert((at.max(self.now), self.next_event), ev);
    }

    fn run_phases(&mut self) -> Result<(), String> {
        // Safety phase.
        while self.now < self.cfg.safety_ticks {
            self.step()?;
            self.inject_faults();
        }
        // Liveness phase: heal everything.
        self.faults = Faults::none();
        self.cut.clear();
        self.partition_until = None;
        for i in 0..self.servers.len() {
            self.servers[i].slow_disk = false;
            if self.servers[i].node.is_none() {
                self.start_server(i);
            }
        }
        let start = self.now;
        let deadline = start + self.cfg.liveness_ticks;
        let acked_before = self.acked_count();
        let mut progress_at: Option<u64> = None;
        loop {
            if self.now >= deadline {
                let leader = self.servers.iter().find(|s| s.node.as_ref().is_some_and(|n| n.state() == ServerState::Leading && n.is_serving()));
                return Err(format!(
                    "liveness: after {} healed ticks: established leader: {}, new acked writes: {}/{}, states: {}",
                    self.cfg.liveness_ticks,
                    leader.map(|s| s.id.to_string()).unwrap_or("none".into()),
                    self.acked_count() - acked_before,
                    self.cfg.progress_writes,
                    self.describe()
                ));
            }
            self.step()?;
            if progress_at.is_none() && self.acked_count() >= acked_before + self.cfg.progress_writes {
                progress_at = Some(self.now);
                self.client_writes_enabled = false;
            }
            if progress_at.is_some() && self.converged() {
                break;
            }
        }
        self.rep.liveness_ticks = self.now - start;
        // Final checks.
        let (acked, open) = self.chk.check_history()?;
        for i in 0..self.servers.len() {
            self.add_stats(i);
        }
        self.rep.ticks = self.now;
        self.rep.committed = self.chk.committed.len();
        self.rep.acked_writes = acked;
        self.rep.unacked_writes = open;
        self.rep.reads = self.chk.reads;
        self.rep.epochs = self.chk.epoch_owner.len();
        self.rep.digest_checks = self.chk.digest_checks;
        self.rep.log_checks = self.chk.log_checks;
        Ok(())
    }

    fn acked_count(&self) -> usize {
        self.chk.writes.iter().filter(|w| w.end.is_some()).count()
    }

    /// Every server serving, no client op pending, all at the last committed zxid.
    fn converged(&self) -> bool {
        let last = self.chk.last_committed();
        self.clients.iter().all(|c| c.pending.is_none())
            && self.servers.iter().all(|s| s.serving && s.applied == last && s.node.as_ref().is_some_and(|n| n.is_serving()))
    }

    fn describe(&self) -> String {
        self.servers
            .iter()
            .map(|s| match &s.node {
                None => format!("{}:down", s.id),
                Some(n) => format!("{}:{:?}/e{}/{}{}", s.id, n.state(), n.current_epoch(), s.applied, if n.is_serving() { "/serving" } else { "" }),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// One tick: due events, node ticks, clients, checks.
    fn step(&mut self) -> Result<(), String> {
        self.now += 1;
        self.trace = mix(self.trace, self.now);
        while let Some((&(at, _), _)) = self.events.iter().next() {
            if at > self.now {
                break;
            }
            let (_, ev) = self.events.pop_first().expect("first");
            self.handle_event(ev)?;
        }
        for i in 0..self.servers.len() {
            if let Some(n) = self.servers[i].node.as_mut() {
                n.tick();
                self.process(i)?;
            }
        }
        self.clients_step()?;
        self.check_step()
    }

    fn handle_event(&mut self, ev: Event) -> Result<(), String> {
        match ev {
            Event::Deliver { to, from, packet, conn } => {
                if self.servers[to].node.is_none() {
                    return Ok(());
                }
                if let Some(gen) = conn {
                    let c = self.conns.get(&key(to, from)).copied().unwrap_or_default();
                    if !c.open || c.gen != gen {
                        return Ok(());
                    }
                }
                self.trace = mix(self.trace, (to as u64) << 32 | from as u64);
                let from_id = self.servers[from].id;
                match packet {
                    Packet::Zab(m) => {
                        if self.verbose {
                            eprintln!("t={} s{} <- s{} {}", self.now, to + 1, from + 1, short_msg(&m));
                        }
                        self.trace = mix(self.trace, hash_bytes(m.name().as_bytes()));
                        self.servers[to].node.as_mut().expect("up").step(from_id, m);
                    }
                    Packet::Forward { session, cxid, op } => self.leader_prep(to, session, cxid, op),
                }
                self.process(to)?;
            }
            Event::DiskDone { server, incarnation, seq } => {
                let s = &mut self.servers[server];
                if s.incarnation != incarnation || s.node.is_none() {
                    return Ok(());
                }
                while s.pending.front().is_some_and(|(q, _)| *q <= seq) {
                    let (_, op) = s.pending.pop_front().expect("front");
                    apply_durable(&mut s.durable, op);
                }
                s.node.as_mut().expect("up").persisted(seq);
                self.maybe_snapshot(server);
                self.process(server)?;
            }
            Event::Disconnected { to, peer, incarnation } => {
                if self.servers[to].incarnation == incarnation {
                    let pid = self.servers[peer].id;
                    if let Some(n) = self.servers[to].node.as_mut() {
                        n.disconnected(pid);
                        self.process(to)?;
                    }
                }
            }
            Event::Restart { server } => {
                if self.servers[server].node.is_none() {
                    self.start_server(server);
                    self.process(server)?;
                }
            }
        }
        Ok(())
    }

    fn drain(&mut self, i: usize) {
        // Start-up actions cannot fail the checkers (nothing delivered yet); route them.
        let _ = self.process(i);
    }

    /// Carries out a server's actions.
    fn process(&mut self, i: usize) -> Result<(), String> {
        loop {
            let Some(node) = self.servers[i].node.as_mut() else { return Ok(()) };
            let actions = node.take_actions();
            if actions.is_empty() {
                return Ok(());
            }
            for a in actions {
                self.trace = mix(self.trace, action_sig(i, &a));
                if self.verbose {
                    eprintln!("t={} s{} {}", self.now, i + 1, short_action(&a));
                }
                self.do_action(i, a)?;
            }
        }
    }

    fn do_action(&mut self, i: usize, a: Action) -> Result<(), String> {
        match a {
            Action::Send { to, msg } => self.send(i, (to.0 - 1) as usize, Packet::Zab(msg)),
            Action::Persist { seq, op } => {
                if let StorageOp::InstallSnapshot { zxid, data } = &op {
                    let tree = decode_snapshot(data).map_err(|e| format!("server {} got a bad snapshot: {e}", i + 1))?;
                    let s = &mut self.servers[i];
                    s.tree = tree;
                    s.applied = *zxid;
                    let d = s.tree.digest();
                    self.chk.digest(i as i64 + 1, *zxid, d)?;
                }
                let lat = if self.servers[i].slow_disk { self.rng.range(5, 40) } else { self.rng.range(0, 2) };
                let s = &mut self.servers[i];
                let at = s.disk_free_at.max(self.now + lat);
                s.disk_free_at = at;
                s.pending.push_back((seq, op));
                let inc = s.incarnation;
                self.schedule(at, Event::DiskDone { server: i, incarnation: inc, seq });
            }
            Action::Deliver(e) => self.apply(i, e)?,
            Action::SendSnapshot { to, zxid } => {
                let s = &self.servers[i];
                if s.applied != zxid {
                    return Err(format!("server {} asked to snapshot at {zxid} but its state is at {}", i + 1, s.applied));
                }
                let snapshot = encode_snapshot(&s.tree);
                self.send(i, (to.0 - 1) as usize, Packet::Zab(Message::Snap { zxid, snapshot }));
            }
            Action::Disconnect { peer } => {
                let j = (peer.0 - 1) as usize;
                self.break_conn(i, j, true);
            }
            Action::StateChanged { .. } => {
                self.servers[i].serving = false;
                // Clients of a server that stops serving lose their connection.
                for c in self.clients.iter_mut() {
                    if c.server == Some(i) {
                        c.server = None;
                        c.pending = None;
                    }
                }
            }
            Action::Serving { .. } => {
                self.servers[i].serving = true;
                let n = self.servers[i].node.as_ref().expect("up");
                if n.state() == ServerState::Leading {
                    // ZAB: an established leader holds every committed txn.
                    let last = self.chk.last_committed();
                    if self.servers[i].applied < last {
                        return Err(format!("server {} established as leader at {} but {last} is committed", i + 1, self.servers[i].applied));
                    }
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, i: usize, e: Entry) -> Result<(), String> {
        let sid = i as i64 + 1;
        let prev = self.servers[i].applied;
        self.chk.delivered(sid, prev, e.zxid, hash_bytes(&e.data))?;
        let rec = TxnRecord::from_bytes(&e.data).map_err(|err| format!("server {sid}: undecodable txn at {}: {err}", e.zxid))?;
        if rec.header.zxid != e.zxid {
            return Err(format!("server {sid}: txn header zxid {} under entry {}", rec.header.zxid, e.zxid));
        }
        let s = &mut self.servers[i];
        s.tree.apply(&rec.header, &rec.txn);
        s.applied = e.zxid;
        s.since_snapshot += 1;
        let d = s.tree.digest();
        self.chk.digest(sid, e.zxid, d)?;
        let key_op = (rec.header.client_id.0, rec.header.cxid);
        self.chk.txn_of_op.entry(key_op).or_insert(e.zxid);
        // The reply goes to the client if it is connected here and waiting for this op.
        for c in self.clients.iter_mut() {
            if c.server == Some(i) && c.session == rec.header.client_id.0 {
                if let Some((cxid, widx, _)) = c.pending {
                    if cxid == rec.header.cxid {
                        c.pending = None;
                        self.chk.writes[widx].end = Some(self.now);
                        self.chk.session_saw(c.session, e.zxid, "got its write acknowledged")?;
                    }
                }
            }
        }
        self.maybe_snapshot(i);
        Ok(())
    }

    /// Periodic snapshots, taken only when no earlier write is still in flight (so the
    /// snapshot never gets ahead of a pending TRUNC or snapshot install on disk).
    fn maybe_snapshot(&mut self, i: usize) {
        let s = &mut self.servers[i];
        if s.since_snapshot < s.snapshot_every || !s.pending.is_empty() || s.node.is_none() {
            return;
        }
        s.since_snapshot = 0;
        let z = s.applied;
        s.durable.snapshot = Some((z, encode_snapshot(&s.tree)));
        // Purge log entries well below the snapshot, keeping a few (as purgeTxnLog keeps files).
        let keep_from = s.durable.log.partition_point(|e| e.zxid <= z).saturating_sub(5);
        s.durable.log.drain(..keep_from);
    }

    fn send(&mut self, from: usize, to: usize, packet: Packet) {
        if self.servers[to].node.is_none() && !matches!(packet, Packet::Zab(Message::Notification(_))) {
            self.break_conn(from, to, false);
            return;
        }
        let cut = self.cut.contains(&(from, to));
        let delay = self.rng.range(1, self.faults.delay_max_ticks.max(1));
        let is_election = matches!(packet, Packet::Zab(Message::Notification(_)));
        if is_election {
            if cut || self.servers[to].node.is_none() {
                return;
            }
            if self.rng.chance(self.faults.election_loss) {
                self.rep.election_lost += 1;
                return;
            }
            if self.rng.chance(self.faults.election_dup) {
                self.rep.election_dups += 1;
                let d2 = self.rng.range(1, self.faults.delay_max_ticks.max(1) + 2);
                self.schedule(self.now + d2, Event::Deliver { to, from, packet: packet.clone(), conn: None });
            }
            self.schedule(self.now + delay, Event::Deliver { to, from, packet, conn: None });
            return;
        }
        let k = key(from, to);
        let dir = if from < to { 0 } else { 1 };
        let mut c = self.conns.get(&k).copied().unwrap_or_default();
        if matches!(packet, Packet::Zab(Message::LearnerInfo { .. })) {
            // A learner opens a new connection; whatever was in flight on the old one is gone.
            c.gen += 1;
            c.open = true;
            c.last = [self.now, self.now];
        }
        if !c.open {
            self.conns.insert(k, c);
            return;
        }
        if cut {
            // Packets into a partition are lost; the connection dies without anyone knowing.
            c.open = false;
            c.gen += 1;
            self.conns.insert(k, c);
            return;
        }
        if self.rng.chance(self.faults.conn_reset) {
            self.rep.conn_resets += 1;
            self.conns.insert(k, c);
            let notify = self.rng.chance(0.5);
            self.break_conn(from, to, notify);
            return;
        }
        let at = (self.now + delay).max(c.last[dir]);
        c.last[dir] = at;
        let gen = c.gen;
        self.conns.insert(k, c);
        self.schedule(at, Event::Deliver { to, from, packet, conn: Some(gen) });
    }

    /// Closes the connection between two servers; `notify` tells both ends after a moment.
    fn break_conn(&mut self, a: usize, b: usize, notify: bool) {
        let k = key(a, b);
        let mut c = self.conns.get(&k).copied().unwrap_or_default();
        if !c.open {
            return;
        }
        c.open = false;
        c.gen += 1;
        self.conns.insert(k, c);
        if notify {
            for (to, peer) in [(a, b), (b, a)] {
                let d = self.rng.range(1, 3);
                let inc = self.servers[to].incarnation;
                self.schedule(self.now + d, Event::Disconnected { to, peer, incarnation: inc });
            }
        }
    }

    /// The leader's prep step for a client write: the txn gets the next zxid.
    fn leader_prep(&mut self, i: usize, session: i64, cxid: i32, op: WriteOp) {
        let Some(node) = self.servers[i].node.as_mut() else { return };
        let Ok(zxid) = node.next_zxid() else { return };
        let txn = match op {
            WriteOp::Create { path, data } => Txn::Create {
                txn: CreateTxn { path, data: Some(data), acl: Acl::open_unsafe(), ephemeral: false, parent_cversion: -1 },
                create2: false,
            },
            WriteOp::SetRoot { data } => Txn::SetData(SetDataTxn { path: "/".into(), data: Some(data), version: (zxid.counter() % 1000) as i32 }),
        };
        let rec = TxnRecord {
            header: TxnHeader { client_id: SessionId(session), cxid, zxid, time: self.now as i64, op: txn.op().code() },
            txn,
            digest: None,
        };
        node.propose(zxid, Bytes::from(rec.to_bytes())).expect("next_zxid was just checked");
    }

    fn clients_step(&mut self) -> Result<(), String> {
        for ci in 0..self.clients.len() {
            let session = self.clients[ci].session;
            // Timeouts: the outcome of the pending write becomes unknown; reconnect elsewhere.
            if let Some((_, _, deadline)) = self.clients[ci].pending {
                if self.now > deadline {
                    self.clients[ci].pending = None;
                    self.clients[ci].server = None;
                }
                continue;
            }
            let connected = self.clients[ci].server.filter(|&s| self.servers[s].serving);
            let Some(si) = connected else {
                self.clients[ci].server = None;
                if self.rng.chance(0.3) {
                    // Like a ZooKeeper client: only a server that has seen what we have seen.
                    let seen = self.chk.session_zxid.get(&session).copied().unwrap_or(Zxid::ZERO);
                    let n = self.servers.len() as u64;
                    let s = self.rng.below(n) as usize;
                    if self.servers[s].serving && self.servers[s].applied >= seen {
                        self.clients[ci].server = Some(s);
                    }
                }
                continue;
            };
            if !self.rng.chance(0.3) {
                continue;
            }
            if self.rng.chance(0.5) || !self.client_writes_enabled {
                // A read, answered from the server's own tree.
                let z = self.servers[si].applied;
                let _ = self.servers[si].tree.get("/").map(|n| n.client_stat());
                self.chk.reads += 1;
                self.chk.session_saw(session, z, "read")?;
                continue;
            }
            let cxid = self.clients[ci].next_cxid;
            self.clients[ci].next_cxid += 1;
            let data = format!("{session}:{cxid}").into_bytes();
            let op = if self.rng.chance(0.5) { WriteOp::Create { path: format!("/n{session}-{cxid}"), data } } else { WriteOp::SetRoot { data } };
            let widx = self.chk.writes.len();
            self.chk.writes.push(WriteRec { session, cxid, start: self.now, end: None });
            self.clients[ci].pending = Some((cxid, widx, self.now + 120));
            let node = self.servers[si].node.as_ref().expect("serving");
            match node.state() {
                ServerState::Leading => self.leader_prep(si, session, cxid, op),
                _ => {
                    if let Some(l) = node.leader() {
                        self.send(si, (l.0 - 1) as usize, Packet::Forward { session, cxid, op });
                    }
                }
            }
            self.process(si)?;
        }
        Ok(())
    }

    /// Per-step invariants that are not checked where they happen.
    fn check_step(&mut self) -> Result<(), String> {
        for i in 0..self.servers.len() {
            let sid = i as i64 + 1;
            let Some(n) = self.servers[i].node.as_ref() else { continue };
            if let Some(e) = n.leading_epoch() {
                self.chk.leader_owns_epoch(e, sid)?;
            }
            if n.applied() != self.servers[i].applied {
                return Err(format!("server {sid}: node applied {} but state machine at {}", n.applied(), self.servers[i].applied));
            }
        }
        // Logs against the committed history: in-memory windows every tick, durable logs
        // every few ticks (they are larger).
        for i in 0..self.servers.len() {
            let sid = i as i64 + 1;
            if let Some(n) = self.servers[i].node.as_ref() {
                let entries: Vec<(Zxid, u64)> = n.log_window().map(|e| (e.zxid, hash_bytes(&e.data))).collect();
                for (z, h) in entries {
                    self.chk.log_entry(sid, z, h)?;
                }
            }
            if self.now % 16 == 0 {
                let entries: Vec<(Zxid, u64)> = self.servers[i].durable.log.iter().map(|e| (e.zxid, hash_bytes(&e.data))).collect();
                let mut prev = Zxid(i64::MIN);
                for (z, h) in entries {
                    if z <= prev {
                        return Err(format!("server {sid}'s durable log goes from {prev} to {z}"));
                    }
                    prev = z;
                    self.chk.log_entry(sid, z, h)?;
                }
            }
        }
        Ok(())
    }

    fn inject_faults(&mut self) {
        let n = self.servers.len();
        // Partitions.
        if let Some(until) = self.partition_until {
            if self.now >= until {
                self.cut.clear();
                self.partition_until = None;
            }
        } else if self.rng.chance(self.faults.partition) {
            self.rep.partitions += 1;
            let len = self.rng.range(self.faults.partition_ticks.0, self.faults.partition_ticks.1);
            self.partition_until = Some(self.now + len);
            let side: Vec<bool> = (0..n).map(|_| self.rng.chance(0.5)).collect();
            let one_way = self.rng.chance(self.faults.one_way);
            if one_way {
                self.rep.one_way_partitions += 1;
            }
            for a in 0..n {
                for b in 0..n {
                    if a != b && side[a] && !side[b] {
                        self.cut.insert((a, b));
                        if !one_way {
                            self.cut.insert((b, a));
                        }
                    }
                }
            }
        }
        for i in 0..n {
            if self.servers[i].node.is_some() && self.rng.chance(self.faults.crash) {
                self.crash(i);
            }
            if self.rng.chance(self.faults.slow_disk) {
                self.servers[i].slow_disk = !self.servers[i].slow_disk;
                self.rep.slow_disks += 1;
            }
        }
    }

    fn add_stats(&mut self, i: usize) {
        if let Some(n) = self.servers[i].node.as_ref() {
            let st = n.stats();
            self.rep.elections += st.elections;
            self.rep.diff_syncs += st.diff_syncs;
            self.rep.trunc_syncs += st.trunc_syncs;
            self.rep.snap_syncs += st.snap_syncs;
        }
    }

    fn crash(&mut self, i: usize) {
        self.rep.crashes += 1;
        self.add_stats(i);
        let keep = if self.rng.chance(self.faults.torn_tail) {
            let n = self.servers[i].pending.len() as u64;
            if n > 0 {
                self.rep.torn_tails += 1;
            }
            self.rng.range(0, n) as usize
        } else {
            0
        };
        let s = &mut self.servers[i];
        s.node = None;
        s.incarnation += 1;
        s.serving = false;
        let pending: Vec<StorageOp> = s.pending.drain(..).map(|(_, op)| op).collect();
        for op in pending.into_iter().take(keep) {
            apply_durable(&mut s.durable, op);
        }
        for j in 0..self.servers.len() {
            if j != i {
                let notify = self.rng.chance(0.5);
                self.break_conn(i, j, notify);
            }
        }
        for c in self.clients.iter_mut() {
            if c.server == Some(i) {
                c.server = None;
                c.pending = None;
            }
        }
        let d = self.rng.range(self.faults.restart_ticks.0, self.faults.restart_ticks.1);
        self.schedule(self.now + d, Event::Restart { server: i });
    }
}

fn short_msg(m: &Message) -> String {
    match m {
        Message::Proposal(e) | Message::Inform(e) => format!("{} {}", m.name(), e.zxid),
        Message::Snap { zxid, .. } => format!("SNAP {zxid}"),
        Message::Notification(v) => format!("NOTIFICATION {:?} leader={} zxid={:#x} ee={} pe={}", v.state, v.leader, v.zxid, v.election_epoch, v.peer_epoch),
        other => format!("{other:?}"),
    }
}

fn short_action(a: &Action) -> String {
    match a {
        Action::Send { to, msg } => format!("-> s{} {}", to, short_msg(msg)),
        Action::Persist { seq, op } => match op {
            StorageOp::Append(e) => format!("persist #{seq} append {}", e.zxid),
            StorageOp::InstallSnapshot { zxid, .. } => format!("persist #{seq} snapshot {zxid}"),
            other => format!("persist #{seq} {other:?}"),
        },
        Action::Deliver(e) => format!("deliver {}", e.zxid),
        other => format!("{other:?}"),
    }
}

fn key(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

fn apply_durable(d: &mut Durable, op: StorageOp) {
    match op {
        StorageOp::Append(e) => {
            if let Some(last) = d.log.last() {
                assert!(e.zxid > last.zxid, "append {} after {} on disk", e.zxid, last.zxid);
            }
            d.log.push(e);
        }
        StorageOp::Truncate { after } => {
            let keep = d.log.partition_point(|e| e.zxid <= after);
            d.log.truncate(keep);
        }
        StorageOp::AcceptedEpoch(e) => d.accepted_epoch = e,
        StorageOp::CurrentEpoch(e) => d.current_epoch = e,
        StorageOp::InstallSnapshot { zxid, data } => {
            d.snapshot = Some((zxid, data));
            d.log.clear();
        }
    }
}

fn action_sig(i: usize, a: &Action) -> u64 {
    let mut h = (i as u64) << 56;
    match a {
        Action::Send { to, msg } => {
            h = mix(h, 1 ^ (to.0 as u64) << 8);
            h = mix(h, hash_bytes(msg.name().as_bytes()));
            if let Message::Proposal(e) | Message::Inform(e) = msg {
                h = mix(h, e.zxid.0 as u64);
            }
        }
        Action::Persist { seq, .. } => h = mix(h, 2 ^ seq << 8),
        Action::Deliver(e) => h = mix(h, 3 ^ (e.zxid.0 as u64) << 8),
        Action::SendSnapshot { zxid, .. } => h = mix(h, 4 ^ (zxid.0 as u64) << 8),
        Action::Disconnect { peer } => h = mix(h, 5 ^ (peer.0 as u64) << 8),
        Action::StateChanged { state, epoch, .. } => h = mix(h, 6 ^ (*state as u64) << 8 ^ (*epoch as u64) << 16),
        Action::Serving { epoch } => h = mix(h, 7 ^ (*epoch as u64) << 8),
    }
    h
}

/// A simple snapshot of a `DataTree` for the simulator: the ACL table and the nodes in
/// ZooKeeper's snapshot order (the durability work brings ZooKeeper's real snapshot format).
pub fn encode_snapshot(t: &DataTree) -> Bytes {
    let mut w = Writer::new();
    let acls = t.acl_cache().snapshot_entries();
    w.write_i32(acls.len() as i32);
    for (id, list) in &acls {
        w.write_i64(*id);
        w.write_vec(list);
    }
    let mut nodes = Writer::new();
    let mut count = 0i32;
    t.for_each_node_in_snapshot_order(|path, data, acl, stat| {
        count += 1;
        nodes.write_string(path);
        nodes.write_buffer_opt(data);
        nodes.write_i64(acl);
        rzk_proto::Record::write(stat, &mut nodes);
    });
    w.write_i32(count);
    w.write_raw(nodes.as_slice());
    w.write_i64(t.last_processed_zxid().0);
    Bytes::from(w.into_inner())
}

pub fn decode_snapshot(b: &[u8]) -> Result<DataTree, String> {
    let r = &mut Reader::new(b);
    let e = |x: rzk_proto::DecodeError| x.to_string();
    let n = r.read_i32().map_err(e)?;
    let mut acls = Vec::new();
    for _ in 0..n.max(0) {
        let id = r.read_i64().map_err(e)?;
        acls.push((id, r.read_vec::<Acl>().map_err(e)?));
    }
    let count = r.read_i32().map_err(e)?;
    let mut nodes = Vec::new();
    for _ in 0..count.max(0) {
        let path = r.read_string().map_err(e)?;
        let data = r.read_buffer_opt().map_err(e)?;
        let acl = r.read_i64().map_err(e)?;
        let stat = <StatPersisted as rzk_proto::Record>::read(r).map_err(e)?;
        nodes.push((path, data, acl, stat));
    }
    let z = r.read_i64().map_err(e)?;
    let mut t = DataTree::from_snapshot(TreeOptions::default(), acls, nodes).map_err(|x| format!("{x:?}"))?;
    t.set_last_processed_zxid(Zxid(z));
    Ok(t)
}

/// Runs `seeds` and summarizes; stops at the first failure.
pub fn run_many(seeds: impl IntoIterator<Item = u64>, configure: impl Fn(&mut SimConfig)) -> Result<Vec<Report>, Failure> {
    let mut out = Vec::new();
    for s in seeds {
        let mut cfg = SimConfig::from_seed(s);
        configure(&mut cfg);
        out.push(run(cfg)?);
    }
    Ok(out)
}

/// A human summary of many reports: seeds, fault mix, what the checkers verified.
pub fn summarize(reports: &[Report]) -> String {
    let sum = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    let by_size = |n: usize| reports.iter().filter(|r| r.voters == n).count();
    format!(
        "rzk-sim: {} seeds passed (3 voters: {}, 5: {}, 7: {}; with an observer: {})\n\
         faults injected: {} crashes ({} torn tails), {} partitions ({} one-way), {} quorum connection resets, \
         {} election messages lost, {} duplicated, {} slow-disk toggles\n\
         protocol: {} elections, {} epochs established, syncs: {} DIFF / {} TRUNC / {} SNAP\n\
         checked after every step: one leader per epoch, every delivery continues the committed history \
         ({} txns committed), logs agree with it ({} entry checks), equal zxid => equal tree digest ({} checks), \
         established leaders hold every committed txn\n\
         clients: {} acknowledged writes all committed and linearizable ({} more unacknowledged), {} reads never back in zxid per session\n\
         liveness: after healing, a leader, {} new writes and full convergence in {} ticks at most ({} on average)",
        reports.len(),
        by_size(3),
        by_size(5),
        by_size(7),
        reports.iter().filter(|r| r.observers > 0).count(),
        sum(|r| r.crashes),
        sum(|r| r.torn_tails),
        sum(|r| r.partitions),
        sum(|r| r.one_way_partitions),
        sum(|r| r.conn_resets),
        sum(|r| r.election_lost),
        sum(|r| r.election_dups),
        sum(|r| r.slow_disks),
        sum(|r| r.elections),
        sum(|r| r.epochs as u64),
        sum(|r| r.diff_syncs),
        sum(|r| r.trunc_syncs),
        sum(|r| r.snap_syncs),
        sum(|r| r.committed as u64),
        sum(|r| r.log_checks),
        sum(|r| r.digest_checks),
        sum(|r| r.acked_writes as u64),
        sum(|r| r.unacked_writes as u64),
        sum(|r| r.reads),
        reports.first().map(|_| 5).unwrap_or(0),
        reports.iter().map(|r| r.liveness_ticks).max().unwrap_or(0),
        if reports.is_empty() { 0 } else { sum(|r| r.liveness_ticks) / reports.len() as u64 },
    )
}
