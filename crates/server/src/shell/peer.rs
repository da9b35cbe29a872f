//! The peer transport: the sockets between the servers of an ensemble, in ZooKeeper's own
//! wire formats, so that rzk and Apache ZooKeeper servers can share one ensemble.
//!
//! [`PeerNet`] owns every peer socket of one server; the ensemble driver owns the `PeerNet`
//! and hears from it through one bounded channel of [`NetEvent`]s. Nothing here decides
//! anything about ZAB: messages in, messages out.
//!
//! **Election port** (`QuorumCnxManager`): at most one connection per pair of servers, kept by
//! the server with the larger sid. A connection starts with the initiator's
//! [`ConnectionHeader`] (protocol version -65536, sid, `host:port`); a server that hears from
//! a smaller sid closes that socket and connects back, and a server that connects to a larger
//! sid sends its header and closes (the larger one then connects back). Each message is an
//! int length and a [`Notification`]. Every peer has a latest-only send slot (ZooKeeper's
//! send queue of capacity 1): a newer notification replaces an unsent older one, so it never
//! fills; on a new connection the last notification sent is sent again if nothing newer
//! waits. Connections are opened on demand, when there is something to send.
//!
//! **Quorum port** (`Learner` / `LearnerHandler`): back-to-back [`QuorumPacket`]s, no length
//! prefix. A learner's FOLLOWERINFO / OBSERVERINFO opens a new connection to the leader
//! (replacing any older one with that server); an accepted connection's first packet must be
//! one of those, and its LearnerInfo sid names the peer. After a SNAP packet the serialized
//! database follows unframed: its end is found by a pluggable [`SnapStreamScanner`] (the
//! storage layer's parser), and those bytes, exactly as on the wire, become
//! [`Message::Snap`]'s `snapshot`. A leader writes it in pieces as its member produces them
//! ([`PeerNet::send_snap`]), each queued behind what was sent before; the driver asks
//! [`PeerNet::snap_room`] before producing the next piece and waits on
//! [`PeerNet::drained`] for a writer to empty its queue. Each quorum connection has a writer
//! with a bounded queue: when it is full the connection is dropped and
//! [`NetEvent::Disconnected`] reported, so the driver never waits on a slow peer.
//!
//! **Security** (`sslQuorum`, `portUnification`, quorum SASL): each socket is secured by
//! [`PeerSecurity`] (`shell::peersec`) before its first header or packet: TLS when
//! accepting and connecting, the QuorumAuth SASL exchange after the election header and
//! before a learner's FOLLOWERINFO. A peer that fails either is closed with a warning.
//!
//! Malformed input (bad lengths, undecodable records, a wrong first packet, an unknown sid)
//! closes that one connection with a warning. Tasks are aborted when the `PeerNet` is dropped.

use super::peersec::{self, PeerRead, PeerSecurity, PeerWrite};
use crate::core::member::{PeerMsg, PeerMsgError};
use bytes::{Buf, Bytes, BytesMut};
use rzk_config::ServerConfig;
use rzk_proto::quorum::{
    decode_quorum_packet, packet_type as pt, ConnectionHeader, Notification, PacketStatus, QuorumPacket, CONNECTION_HEADER_ADDR_MAX_BYTES,
    ELECTION_MESSAGE_MAX_BYTES, PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2,
};
use rzk_proto::{Record, Writer};
use rzk_zab::{Message, MessageError, ServerId, SnapData, Vote};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;

/// Where a server listens, from its `server.N=host:quorumPort:electionPort` line: the
/// first address, and the others of a multi-address line (`a|b`, ZooKeeper 3.6's
/// `multiAddress.enabled`). A server binds every one of its addresses; a connection to it
/// tries them in turn (election) or all at once, the first to answer winning (a learner to
/// its leader, as ZooKeeper's `LeaderConnector`s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddrs {
    /// Host name or address as written (IPv6 without brackets); resolved at each connect.
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    /// The further addresses of a multi-address line: (host, quorum port, election port).
    pub also: Vec<(String, u16, u16)>,
}

impl PeerAddrs {
    /// Every `server.N` line of the configuration (the first address of each).
    pub fn from_config(cfg: &ServerConfig) -> BTreeMap<ServerId, PeerAddrs> {
        cfg.servers
            .iter()
            .map(|(id, s)| {
                (
                    ServerId(*id as i64),
                    PeerAddrs {
                        host: s.host().to_string(),
                        quorum_port: s.quorum_port(),
                        election_port: s.election_port(),
                        also: s.addresses[1..].iter().map(|a| (a.host.clone(), a.quorum_port, a.election_port)).collect(),
                    },
                )
            })
            .collect()
    }

    /// Where an observer reaches this voter's observer master: every one of its quorum
    /// hosts at the observer's own `observerMasterPort` (ZooKeeper's
    /// `updateObserverMasterList` keeps one of them, the reachable one).
    fn at_learner_master_port(mut self, port: u16) -> PeerAddrs {
        self.quorum_port = port;
        for a in &mut self.also {
            a.1 = port;
        }
        self
    }

    /// Every address: (host, quorum port, election port), the first one first.
    fn all(&self) -> Vec<(String, u16, u16)> {
        let mut v = vec![(self.host.clone(), self.quorum_port, self.election_port)];
        v.extend(self.also.iter().cloned());
        v
    }

    /// `host:port` of each election address as `NetUtils.formatInetAddr` writes it in the
    /// election header (ZooKeeper joins several with `|`).
    fn election_texts(&self) -> Vec<String> {
        self.all().into_iter().map(|(h, _, e)| if h.contains(':') { format!("[{h}]:{e}") } else { format!("{h}:{e}") }).collect()
    }
}

/// Finds where a SNAP's serialized database ends. Called with every byte received after the
/// SNAP packet so far (the buffer only grows between calls, and starts at the same byte):
/// `Ok(Some(n))` once the whole stream is in the buffer and takes its first `n` bytes,
/// `Ok(None)` for "need more", `Err` for a malformed stream (the connection is closed).
/// A scanner may keep its position between calls so that large snapshots stay linear; a
/// stateless one is called again only after the buffer grew by an eighth or the socket had
/// nothing more for the moment.
///
/// A scanner made with a [`SnapSink`] hands the stream on as it arrives instead: after a
/// scan that needs more, [`SnapStreamScanner::scanned`] says how many bytes at the start of
/// the buffer it has passed; the transport sends them to the sink, removes them from its
/// buffer and says so with [`SnapStreamScanner::dropped`] (later calls see the buffer
/// without them). The learner then never holds the whole stream.
pub trait SnapStreamScanner: Send {
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, String>;
    /// Bytes at the start of the buffer that the scanner has passed (0: keep everything).
    fn scanned(&self) -> usize {
        0
    }
    /// The first `n` bytes (`n <= scanned()`) left the buffer.
    fn dropped(&mut self, n: usize) {
        assert_eq!(n, 0, "this scanner keeps the whole stream");
    }
}

/// Where a scanner that decodes as the stream arrives takes it: the stream's bytes in
/// order, on a bounded channel (the transport stops reading the socket while it is full),
/// and the result once the channel is closed after the last byte ([`SnapData::Received`]
/// or a stream, or why it is malformed).
pub struct SnapSink {
    pub chunks: mpsc::Sender<Bytes>,
    pub done: tokio::sync::oneshot::Receiver<Result<SnapData, String>>,
}

impl<F> SnapStreamScanner for F
where
    F: FnMut(&[u8]) -> Result<Option<usize>, String> + Send,
{
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, String> {
        self(buf)
    }
}

/// Makes a fresh [`SnapStreamScanner`] for each SNAP received (given the SNAP's zxid), and
/// with it a [`SnapSink`] if the stream is decoded as it arrives.
pub type SnapScannerFactory = Arc<dyn Fn(rzk_proto::Zxid) -> (Box<dyn SnapStreamScanner>, Option<SnapSink>) + Send + Sync>;

/// A factory whose scanners reject every stream: the default until a parser is plugged in.
pub fn no_snap_scanner() -> SnapScannerFactory {
    Arc::new(|_| (Box::new(|_: &[u8]| Err::<Option<usize>, String>("no snapshot stream parser configured".into())), None))
}

/// How many scanned bytes of a SNAP stream go to its sink at once.
const SNAP_SINK_CHUNK_BYTES: usize = 256 * 1024;

/// Bounds and settings of the transport.
#[derive(Clone)]
pub struct NetLimits {
    /// The largest `data` or authinfo field of a quorum packet: `jute.maxbuffer` plus
    /// ZooKeeper's `jute.maxbuffer.extrasize` (1024).
    pub packet_bytes_max: usize,
    /// Packets waiting to be written on one quorum connection; when full, the connection is
    /// dropped and reported.
    pub quorum_queue_max: usize,
    /// Bytes of packets waiting on one quorum connection (a SNAP's stream, shared with the
    /// caller, is not counted); when over, the connection is dropped and reported.
    pub quorum_queue_bytes_max: usize,
    /// The largest SNAP stream accepted when it is held whole (a scanner without a
    /// [`SnapSink`]); a stream handed on as it arrives has no such bound.
    pub snapshot_bytes_max: usize,
    /// Connecting to a peer (`zookeeper.cnxTimeout`, 5 s).
    pub connect_timeout: Duration,
    /// Reading the election header or the first quorum packet of an accepted connection.
    pub handshake_timeout: Duration,
    /// `quorumListenOnAllIPs`: bind the wildcard address instead of `server.N`'s host.
    pub listen_on_all_ips: bool,
    /// Where a SNAP stream ends; see [`SnapStreamScanner`].
    pub snap_scanner: SnapScannerFactory,
    /// TLS and SASL on the peer sockets (default: plaintext, no SASL).
    pub security: PeerSecurity,
    /// `observerMasterPort` as an observer uses it: its OBSERVERINFO connections (to the
    /// voter it syncs from) go to that port on the voter's quorum hosts, as ZooKeeper's
    /// observer builds its list of learner masters.
    pub learner_master_port: Option<u16>,
    /// A participant's `observerMasterPort`: the port [`PeerNet::observer_master`] opens on
    /// its quorum host (observers' connections there are quorum connections like any).
    pub observer_master_port: Option<u16>,
    /// The pause between a learner's attempts to connect to its leader
    /// (`zookeeper.leaderConnectDelayDuringRetryMs`, 100 ms).
    pub leader_connect_retry_delay: Duration,
}

impl Default for NetLimits {
    fn default() -> NetLimits {
        NetLimits {
            packet_bytes_max: 0xfffff + 1024,
            // Packets are bounded by bytes first: the txns a learner's SNAP held back (up to
            // member::SNAP_HELD_BYTES_MAX) go out at its end, COMMITs of ~30 bytes among them.
            quorum_queue_max: 1 << 20,
            quorum_queue_bytes_max: 64 << 20,
            snapshot_bytes_max: 2 << 30,
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            listen_on_all_ips: false,
            snap_scanner: no_snap_scanner(),
            security: PeerSecurity::default(),
            learner_master_port: None,
            observer_master_port: None,
            leader_connect_retry_delay: LEADER_CONNECT_RETRY_DELAY,
        }
    }
}

impl NetLimits {
    /// The settings zoo.cfg gives (`jute.maxbuffer`, `quorumListenOnAllIPs`,
    /// `zookeeper.cnxTimeout`); the snapshot scanner stays the rejecting default.
    pub fn from_config(cfg: &ServerConfig) -> NetLimits {
        NetLimits {
            packet_bytes_max: cfg.jute_maxbuffer as usize + 1024,
            connect_timeout: Duration::from_millis(cfg.cnx_timeout_ms as u64),
            listen_on_all_ips: cfg.quorum_listen_on_all_ips,
            leader_connect_retry_delay: Duration::from_millis(cfg.leader_connect_delay_during_retry_ms.max(0) as u64),
            ..NetLimits::default()
        }
    }
}

impl std::fmt::Debug for NetLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetLimits")
            .field("packet_bytes_max", &self.packet_bytes_max)
            .field("quorum_queue_max", &self.quorum_queue_max)
            .field("quorum_queue_bytes_max", &self.quorum_queue_bytes_max)
            .field("snapshot_bytes_max", &self.snapshot_bytes_max)
            .field("connect_timeout", &self.connect_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("listen_on_all_ips", &self.listen_on_all_ips)
            .field("security", &self.security)
            .field("learner_master_port", &self.learner_master_port)
            .field("observer_master_port", &self.observer_master_port)
            .finish_non_exhaustive()
    }
}

/// What the transport tells the driver.
#[derive(Debug)]
pub enum NetEvent {
    /// A notification, or a quorum packet [`Message::from_packet`] understands.
    Message { from: ServerId, msg: Message },
    /// A quorum packet of the members' own protocol (REQUEST, REVALIDATE, SYNC; see
    /// [`PeerMsg`]), for the member.
    Member { from: ServerId, msg: PeerMsg },
    /// The quorum connection with `peer` broke, or a send found none (or found it full).
    Disconnected { peer: ServerId },
}

/// One server's peer sockets. See the module docs. Its methods never block; they must be
/// called from inside the tokio runtime that started it.
pub struct PeerNet {
    shared: Arc<Shared>,
    election_addr: SocketAddr,
    quorum_addr: SocketAddr,
    listeners: Vec<tokio::task::JoinHandle<()>>,
    /// The observer master port's listener, while open.
    observer_master: Option<tokio::task::JoinHandle<()>>,
    /// This server's first quorum host (where the observer master port is opened).
    quorum_host: String,
    /// The last PROPOSAL encoded (its zxid, its txn bytes, the packet): a leader sends each
    /// proposal to every follower in a row, so the packet is encoded once for all of them.
    last_proposal: Mutex<Option<(rzk_proto::Zxid, Bytes, Bytes)>>,
}

struct Shared {
    my_id: ServerId,
    /// Every member's addresses; replaced when a new configuration is activated.
    peers: std::sync::RwLock<BTreeMap<ServerId, PeerAddrs>>,
    /// Servers outside the configuration that opened an election connection to us (a
    /// joining server, or one a reconfig removed): their election addresses as their
    /// connection header gave them, so that we can answer their notifications and connect
    /// back, as ZooKeeper's `QuorumCnxManager` does with the initial message's address.
    /// Bounded: `STRANGERS_MAX` entries, the oldest forgotten first.
    strangers: Mutex<std::collections::VecDeque<(ServerId, PeerAddrs)>>,
    /// This server's election address as sent in the connection header.
    my_election_texts: Vec<String>,
    limits: NetLimits,
    events: mpsc::Sender<NetEvent>,
    next_conn: AtomicU64,
    state: Mutex<State>,
    /// Poked whenever a quorum connection's writer has emptied its queue (room for the next
    /// piece of a SNAP stream).
    drained: Arc<Notify>,
}

#[derive(Default)]
struct State {
    election: HashMap<ServerId, ElectionPeer>,
    quorum: HashMap<ServerId, QuorumConn>,
    /// Peers with a Disconnected report waiting for room in the event channel.
    reporting: HashSet<ServerId>,
    closed: bool,
}

#[derive(Default)]
struct ElectionPeer {
    /// The send slot: the newest notification not yet written.
    latest: Option<Bytes>,
    /// The last notification written, sent again on a new connection.
    last_sent: Option<Bytes>,
    conn: Option<ElectionConn>,
    connecting: bool,
}

struct ElectionConn {
    id: u64,
    wake: Arc<Notify>,
    task: AbortHandle,
}

struct QuorumConn {
    id: u64,
    tx: QueueTx,
    task: AbortHandle,
}

/// A quorum connection's send queue, bounded in packets and in bytes.
struct QueueTx {
    tx: mpsc::Sender<Outbound>,
    bytes: Arc<AtomicUsize>,
    bytes_max: usize,
}

struct QueueRx {
    rx: mpsc::Receiver<Outbound>,
    bytes: Arc<AtomicUsize>,
}

fn quorum_queue(limits: &NetLimits) -> (QueueTx, QueueRx) {
    let (tx, rx) = mpsc::channel(limits.quorum_queue_max.max(1));
    let bytes = Arc::new(AtomicUsize::new(0));
    (QueueTx { tx, bytes: bytes.clone(), bytes_max: limits.quorum_queue_bytes_max }, QueueRx { rx, bytes })
}

impl QueueTx {
    /// Queues without waiting; `Err` says why the connection must go.
    fn push(&self, out: Outbound) -> Result<(), &'static str> {
        let n = out.counted_bytes();
        let before = self.bytes.fetch_add(n, Ordering::Relaxed);
        // One packet may always go into an empty queue, whatever its size.
        if before > 0 && before + n > self.bytes_max {
            self.bytes.fetch_sub(n, Ordering::Relaxed);
            return Err("its send queue holds too many bytes");
        }
        match self.tx.try_send(out) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.bytes.fetch_sub(n, Ordering::Relaxed);
                Err(match e {
                    mpsc::error::TrySendError::Full(_) => "its send queue is full",
                    mpsc::error::TrySendError::Closed(_) => "it has closed",
                })
            }
        }
    }
}

/// An encoded quorum packet, or a SNAP packet with (the first piece of) the stream that
/// follows it, or a further piece of that stream.
#[derive(Debug)]
enum Outbound {
    Packet(Vec<u8>),
    Snap(Vec<u8>, Bytes),
    Raw(Bytes),
}

impl Outbound {
    fn counted_bytes(&self) -> usize {
        match self {
            Outbound::Packet(b) => b.len(),
            Outbound::Snap(b, s) => b.len() + s.len(),
            Outbound::Raw(s) => s.len(),
        }
    }
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    Eof,
    Io(io::Error),
    Malformed(String),
    /// The driver dropped its event receiver.
    EventsClosed,
    /// The connection's queue was dropped (replaced or disconnected).
    Dropped,
}

impl From<io::Error> for End {
    fn from(e: io::Error) -> End {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            End::Eof
        } else {
            End::Io(e)
        }
    }
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Eof => write!(f, "closed by the peer"),
            End::Io(e) => write!(f, "{e}"),
            End::Malformed(m) => write!(f, "malformed input: {m}"),
            End::EventsClosed => write!(f, "the driver is gone"),
            End::Dropped => write!(f, "dropped"),
        }
    }
}

fn encode(p: &QuorumPacket) -> Vec<u8> {
    let mut w = Writer::with_capacity(24 + p.data().len());
    p.write(&mut w);
    w.into_inner()
}

impl PeerNet {
    /// Binds this server's election and quorum ports (from `peers[my_id]`) and starts
    /// accepting. Nothing connects out until there is something to send.
    pub async fn start(
        my_id: ServerId,
        peers: BTreeMap<ServerId, PeerAddrs>,
        limits: NetLimits,
        events: mpsc::Sender<NetEvent>,
    ) -> io::Result<PeerNet> {
        let me = peers
            .get(&my_id)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no server.{my_id} line for my id")))?;
        // Every address of this server is bound (with quorumListenOnAllIPs, the wildcard
        // address of each port).
        let mut election_listeners = Vec::new();
        let mut quorum_listeners = Vec::new();
        for (host, q, e) in me.all() {
            let ea = bind_addr(&host, e, limits.listen_on_all_ips).await?;
            if !election_listeners.iter().any(|l: &TcpListener| l.local_addr().ok() == Some(ea)) {
                election_listeners.push(super::bind(ea, 64)?);
            }
            let qa = bind_addr(&host, q, limits.listen_on_all_ips).await?;
            if !quorum_listeners.iter().any(|l: &TcpListener| l.local_addr().ok() == Some(qa)) {
                quorum_listeners.push(super::bind(qa, 64)?);
            }
        }
        let election_addr = election_listeners[0].local_addr()?;
        let quorum_addr = quorum_listeners[0].local_addr()?;
        let shared = Arc::new(Shared {
            my_id,
            my_election_texts: me.election_texts(),
            peers: std::sync::RwLock::new(peers),
            strangers: Mutex::new(Default::default()),
            limits,
            events,
            next_conn: AtomicU64::new(1),
            drained: Arc::new(Notify::new()),
            state: Mutex::new(State::default()),
        });
        tracing::info!(%my_id, %election_addr, %quorum_addr, "peer transport listening");
        let mut listeners = Vec::new();
        for l in election_listeners {
            listeners.push(tokio::spawn(accept_loop(shared.clone(), l, Port::Election)));
        }
        for l in quorum_listeners {
            listeners.push(tokio::spawn(accept_loop(shared.clone(), l, Port::Quorum)));
        }
        Ok(PeerNet {
            shared,
            election_addr,
            quorum_addr,
            listeners,
            observer_master: None,
            quorum_host: me.host.clone(),
            last_proposal: Mutex::new(None),
        })
    }

    /// The bound election address.
    pub fn election_addr(&self) -> SocketAddr {
        self.election_addr
    }

    /// The bound quorum address.
    pub fn quorum_addr(&self) -> SocketAddr {
        self.quorum_addr
    }

    /// Sends a message to a peer; see the module docs for which connection carries what.
    /// `my_id` and `config_version` fill a LearnerInfo, `config_data` a notification's config
    /// and NEWLEADER's data. Never waits: a quorum message with no connection (or a full one)
    /// is dropped and reported as [`NetEvent::Disconnected`].
    pub fn send(&self, to: ServerId, msg: &Message, my_id: ServerId, config_version: i64, config_data: &[u8]) {
        debug_assert_eq!(my_id, self.shared.my_id);
        let s = &self.shared;
        if to == s.my_id {
            // QuorumCnxManager loops a server's notifications to itself back into its queue.
            if matches!(msg, Message::Notification(_)) {
                s.report(NetEvent::Message { from: to, msg: msg.clone() });
            } else {
                tracing::warn!(msg = msg.name(), "dropping a quorum message addressed to myself");
            }
            return;
        }
        // A learner outside the configuration (joining, or removed by a reconfig) follows
        // over the quorum connection it opened: packets to it go there.
        if matches!(msg, Message::ElectionConfig(_)) {
            // Every notification carries the configuration (`config_data`) on the wire.
            return;
        }
        let by_connection = !matches!(msg, Message::Notification(_) | Message::LearnerInfo { .. });
        // A notification may go to a server outside the configuration that reached us first.
        let to_stranger = matches!(msg, Message::Notification(_)) && s.stranger(to).is_some();
        if !(s.knows(to) || by_connection || to_stranger) {
            tracing::warn!(peer = %to, msg = msg.name(), "dropping a message to an unknown server");
            return;
        }
        match msg {
            Message::Notification(v) => {
                let frame = Bytes::from(v.to_notification(config_data).encode_frame());
                s.queue_notification(to, frame);
            }
            Message::LearnerInfo { observer, .. } => {
                let observer = *observer;
                let Some(p) = msg.to_packet(my_id, config_version, config_data) else { return };
                s.open_quorum(to, encode(&p), observer);
            }
            Message::Snap { snapshot, .. } => {
                let Some(p) = msg.to_packet(my_id, config_version, config_data) else { return };
                let stream = snapshot.stream().expect("a SNAP sent is a stream, never one received").clone();
                s.enqueue(to, Outbound::Snap(encode(&p), stream));
            }
            Message::Proposal(e) => {
                let frame = {
                    let mut last = self.last_proposal.lock().unwrap_or_else(|p| p.into_inner());
                    match &*last {
                        // The same txn bytes (not only the same zxid): the very proposal.
                        Some((z, d, f)) if *z == e.zxid && d.as_ptr() == e.data.as_ptr() && d.len() == e.data.len() => f.clone(),
                        _ => {
                            let Some(p) = msg.to_packet(my_id, config_version, config_data) else { return };
                            let f = Bytes::from(encode(&p));
                            *last = Some((e.zxid, e.data.clone(), f.clone()));
                            f
                        }
                    }
                };
                s.enqueue(to, Outbound::Raw(frame));
            }
            _ => {
                let Some(p) = msg.to_packet(my_id, config_version, config_data) else { return };
                s.enqueue(to, Outbound::Packet(encode(&p)));
            }
        }
    }

    /// A piece of a SNAP stream to learner `to` (see `Output::SnapStream`): with `start`, the
    /// SNAP packet at `zxid` goes first. Queued like any packet (a full queue drops the
    /// connection: ask [`PeerNet::snap_room`] first).
    pub fn send_snap(&self, to: ServerId, zxid: rzk_proto::Zxid, start: bool, bytes: Bytes) {
        if start {
            let p = QuorumPacket { ty: pt::SNAP, zxid, data: None, authinfo: None };
            self.shared.enqueue(to, Outbound::Snap(encode(&p), bytes));
        } else {
            self.shared.enqueue(to, Outbound::Raw(bytes));
        }
    }

    /// Whether the quorum connection with `to` has fewer than `bytes_max` bytes waiting (or
    /// is gone: what is sent to it is dropped and reported).
    pub fn snap_room(&self, to: ServerId, bytes_max: usize) -> bool {
        let st = self.shared.lock();
        st.quorum.get(&to).is_none_or(|c| c.tx.bytes.load(Ordering::Relaxed) < bytes_max)
    }

    /// Poked when a quorum connection's writer emptied its queue.
    pub fn drained(&self) -> Arc<Notify> {
        self.shared.drained.clone()
    }

    /// Sends a raw packet (REQUEST, REVALIDATE, SYNC, a learner's PING reply) on the quorum
    /// connection with `to`, with the same rules as [`PeerNet::send`].
    pub fn send_packet(&self, to: ServerId, p: QuorumPacket) {
        self.shared.enqueue(to, Outbound::Packet(encode(&p)));
    }

    /// A new configuration's members (a reconfig activated): messages go to these addresses
    /// from now on; this server's own entry stays as it bound it. Connections to peers whose
    /// addresses changed are closed so the next message opens one to the new address; a
    /// server no longer named keeps its quorum connection (a removed follower goes on
    /// following, as with ZooKeeper) but gets no more election messages.
    pub fn set_peers(&self, mut peers: BTreeMap<ServerId, PeerAddrs>) {
        let me = self.shared.my_id;
        let old = {
            let mut w = self.shared.peers.write().unwrap_or_else(|e| e.into_inner());
            if let Some(mine) = w.get(&me).cloned() {
                peers.insert(me, mine);
            }
            std::mem::replace(&mut *w, peers.clone())
        };
        // A server the new configuration removes may run on as a non-voting participant: its
        // notifications still reach us over the connection it holds, and ours reach it (as
        // QuorumCnxManager sends by sid), so that it finds the leader after losing its own.
        for (id, a) in old.iter().filter(|(id, _)| !peers.contains_key(id)) {
            self.shared.learn_stranger(*id, a.clone());
        }
        let gone: Vec<ServerId> = old.iter().filter(|(id, a)| peers.get(id).is_some_and(|new| new != *a)).map(|(id, _)| *id).collect();
        let mut st = self.shared.lock();
        for id in gone {
            tracing::info!(peer = %id, "no longer at this address in the configuration: closing its connections");
            if let Some(c) = st.quorum.remove(&id) {
                c.task.abort();
            }
            if let Some(p) = st.election.remove(&id) {
                if let Some(c) = p.conn {
                    c.task.abort();
                }
            }
        }
    }

    /// Closes the quorum connection with `peer`, if any, at once (queued packets are
    /// dropped). Not reported as Disconnected.
    pub fn disconnect(&self, peer: ServerId) {
        let old = self.shared.lock().quorum.remove(&peer);
        if let Some(c) = old {
            tracing::info!(%peer, "closing the quorum connection");
            c.task.abort();
        }
    }

    /// Stops everything, like dropping, and returns once both ports are closed (so that a new
    /// `PeerNet` can bind them at once).
    pub async fn shutdown(mut self) {
        let listeners = std::mem::take(&mut self.listeners);
        drop(self);
        for l in listeners {
            l.abort();
            let _ = l.await;
        }
    }

    /// Opens (`listen`) or closes the observer master port (`NetLimits::observer_master_port`;
    /// nothing without it). Observers' connections there are accepted as quorum
    /// connections; closing it leaves established ones to the member (it disconnects them).
    pub fn observer_master(&mut self, listen: bool) {
        let Some(port) = self.shared.limits.observer_master_port else { return };
        if let Some(old) = self.observer_master.take() {
            old.abort();
        }
        if !listen {
            tracing::info!(port, "observer master port closed");
            return;
        }
        let shared = self.shared.clone();
        let host = self.quorum_host.clone();
        self.observer_master = Some(tokio::spawn(async move {
            let all_ips = shared.limits.listen_on_all_ips;
            let listener = match bind_addr(&host, port, all_ips).await.and_then(|a| super::bind(a, 10)) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(host, port, error = %e, "cannot open the observer master port");
                    return;
                }
            };
            tracing::info!(host, port, "observer master port open");
            accept_loop(shared, listener, Port::Quorum).await
        }));
    }

    /// Whether a quorum connection with `peer` exists (connecting or established).
    pub fn has_quorum_connection(&self, peer: ServerId) -> bool {
        self.shared.lock().quorum.contains_key(&peer)
    }
}

impl Drop for PeerNet {
    fn drop(&mut self) {
        for l in &self.listeners {
            l.abort();
        }
        if let Some(l) = &self.observer_master {
            l.abort();
        }
        let mut st = self.shared.lock();
        st.closed = true;
        for (_, c) in st.quorum.drain() {
            c.task.abort();
        }
        for (_, p) in st.election.iter_mut() {
            if let Some(c) = p.conn.take() {
                c.task.abort();
            }
        }
    }
}

impl Shared {
    fn knows(&self, sid: ServerId) -> bool {
        self.peers.read().unwrap_or_else(|e| e.into_inner()).contains_key(&sid)
    }

    fn addrs(&self, sid: ServerId) -> Option<PeerAddrs> {
        self.peers.read().unwrap_or_else(|e| e.into_inner()).get(&sid).cloned()
    }

    /// Where to reach `sid`'s election port: its configuration line, else what its own
    /// connection header said (a server outside the configuration).
    fn election_addrs(&self, sid: ServerId) -> Option<PeerAddrs> {
        self.addrs(sid).or_else(|| self.stranger(sid))
    }

    fn stranger(&self, sid: ServerId) -> Option<PeerAddrs> {
        self.strangers.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(id, _)| *id == sid).map(|(_, a)| a.clone())
    }

    /// Remembers the election address of a server outside the configuration.
    fn learn_stranger(&self, sid: ServerId, addrs: PeerAddrs) {
        let mut st = self.strangers.lock().unwrap_or_else(|e| e.into_inner());
        st.retain(|(id, _)| *id != sid);
        if st.len() >= STRANGERS_MAX {
            st.pop_front();
        }
        st.push_back((sid, addrs));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a panic elsewhere already; the state itself stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Hands an event to the driver without waiting; if the channel is full, a task waits.
    fn report(&self, ev: NetEvent) {
        match self.events.try_send(ev) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(ev)) => {
                let tx = self.events.clone();
                tokio::spawn(async move {
                    let _ = tx.send(ev).await;
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Reports Disconnected without waiting, at most one waiting report per peer.
    fn report_disconnected(self: &Arc<Self>, peer: ServerId) {
        match self.events.try_send(NetEvent::Disconnected { peer }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(ev)) => {
                if !self.lock().reporting.insert(peer) {
                    return;
                }
                let me = self.clone();
                tokio::spawn(async move {
                    let _ = me.events.send(ev).await;
                    me.lock().reporting.remove(&peer);
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    // ---- election port ----

    fn queue_notification(self: &Arc<Self>, to: ServerId, frame: Bytes) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        let p = st.election.entry(to).or_default();
        p.latest = Some(frame);
        match &p.conn {
            Some(c) => c.wake.notify_one(),
            None => self.connect_election(&mut st, to),
        }
    }

    /// `connectOne`: opens an election connection to `to` unless one exists or is opening.
    fn connect_election(self: &Arc<Self>, st: &mut State, to: ServerId) {
        if st.closed {
            return;
        }
        let p = st.election.entry(to).or_default();
        if p.conn.is_some() || p.connecting {
            return;
        }
        let Some(addrs) = self.election_addrs(to) else { return };
        p.connecting = true;
        tokio::spawn(connect_election(self.clone(), to, addrs));
    }

    /// Makes `stream` the election connection with `peer`, replacing an older one.
    fn register_election(self: &Arc<Self>, peer: ServerId, rd: BufReader<PeerRead>, wr: PeerWrite) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        let id = self.conn_id();
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(run_election(self.clone(), peer, id, rd, wr, wake.clone())).abort_handle();
        let p = st.election.entry(peer).or_default();
        if let Some(old) = p.conn.replace(ElectionConn { id, wake, task }) {
            old.task.abort();
        }
        tracing::debug!(my_id = %self.my_id, %peer, "election connection up");
    }

    fn election_closed(&self, peer: ServerId, id: u64) {
        let mut st = self.lock();
        if let Some(p) = st.election.get_mut(&peer) {
            if p.conn.as_ref().map(|c| c.id) == Some(id) {
                p.conn = None;
            }
        }
    }

    // ---- quorum port ----

    /// A learner's FOLLOWERINFO / OBSERVERINFO: a new connection to `to`'s quorum port; an
    /// OBSERVERINFO with `observerMasterPort` set goes to that port instead, on each of the
    /// voter's quorum hosts (ZooKeeper's `updateObserverMasterList` takes one address per
    /// voter, the reachable one; rzk checks no reachability and keeps the first address that
    /// connects, as for a learner's connection to its leader). Whether the node is an
    /// observer is its own business (a reconfig converts it): OBSERVERINFO says so.
    fn open_quorum(self: &Arc<Self>, to: ServerId, first: Vec<u8>, observer: bool) {
        let Some(mut addrs) = self.addrs(to) else { return };
        if let (Some(port), true) = (self.limits.learner_master_port, observer) {
            addrs = addrs.at_learner_master_port(port);
        }
        let mut st = self.lock();
        if st.closed {
            return;
        }
        let (tx, rx) = quorum_queue(&self.limits);
        tx.push(Outbound::Packet(first)).expect("a fresh queue has room");
        let id = self.conn_id();
        let task = tokio::spawn(connect_quorum(self.clone(), to, id, addrs, rx)).abort_handle();
        if let Some(old) = st.quorum.insert(to, QuorumConn { id, tx, task }) {
            old.task.abort();
        }
    }

    /// Queues a packet on the quorum connection with `to`; none, or a full queue: drop it and
    /// report the connection lost.
    fn enqueue(self: &Arc<Self>, to: ServerId, out: Outbound) {
        let mut st = self.lock();
        let Some(c) = st.quorum.get(&to) else {
            drop(st);
            tracing::debug!(peer = %to, "no quorum connection; message dropped");
            self.report_disconnected(to);
            return;
        };
        let Err(why) = c.tx.push(out) else { return };
        if let Some(c) = st.quorum.remove(&to) {
            c.task.abort();
        }
        drop(st);
        tracing::warn!(peer = %to, "dropping the quorum connection: {why}");
        self.report_disconnected(to);
    }

    /// Registers an accepted quorum connection for `peer` (replacing an older one) and runs it.
    fn register_quorum(self: &Arc<Self>, peer: ServerId, rd: PeerRead, wr: PeerWrite, buf: BytesMut, first: NetEvent) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        let (tx, rx) = quorum_queue(&self.limits);
        let id = self.conn_id();
        let task = tokio::spawn(run_quorum(self.clone(), peer, id, rd, wr, buf, rx, Some(first))).abort_handle();
        if let Some(old) = st.quorum.insert(peer, QuorumConn { id, tx, task }) {
            old.task.abort();
        }
        tracing::info!(my_id = %self.my_id, %peer, "quorum connection from a learner");
    }

    /// A quorum connection's task ended on its own: forget it and report, if still current.
    async fn quorum_closed(self: &Arc<Self>, peer: ServerId, id: u64, end: &End) {
        let current = {
            let mut st = self.lock();
            if st.quorum.get(&peer).map(|c| c.id) == Some(id) {
                st.quorum.remove(&peer);
                true
            } else {
                false
            }
        };
        match end {
            End::Malformed(_) => tracing::warn!(%peer, "closing the quorum connection: {end}"),
            _ => tracing::info!(%peer, "quorum connection closed: {end}"),
        }
        if current {
            let _ = self.events.send(NetEvent::Disconnected { peer }).await;
        }
    }
}

/// The address to listen on: `server.N`'s host, or the wildcard with `quorumListenOnAllIPs`.
async fn bind_addr(host: &str, port: u16, all_ips: bool) -> io::Result<SocketAddr> {
    if all_ips {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host} resolves to nothing")))
}

#[derive(Clone, Copy, Debug)]
enum Port {
    Election,
    Quorum,
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, port: Port) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                let _ = stream.set_nodelay(true);
                let s = shared.clone();
                match port {
                    Port::Election => tokio::spawn(accept_election(s, stream, from)),
                    Port::Quorum => tokio::spawn(accept_quorum(s, stream, from)),
                };
            }
            Err(e) => {
                tracing::warn!(error = %e, ?port, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads an election connection's header as `InitialMessage.parse` does.
async fn read_header(rd: &mut BufReader<PeerRead>) -> Result<ConnectionHeader, End> {
    let mut b = vec![0u8; 8];
    rd.read_exact(&mut b).await?;
    let first = i64::from_be_bytes(b[..8].try_into().expect("8 bytes"));
    if first >= 0 {
        return Ok(ConnectionHeader { protocol_version: None, sid: first, addresses: vec![] });
    }
    if first != PROTOCOL_VERSION_V1 && first != PROTOCOL_VERSION_V2 {
        return Err(End::Malformed(format!("unrecognized election protocol version {first}")));
    }
    b.resize(20, 0);
    rd.read_exact(&mut b[8..20]).await?;
    let n = i32::from_be_bytes(b[16..20].try_into().expect("4 bytes"));
    if n <= 0 || n as usize > CONNECTION_HEADER_ADDR_MAX_BYTES {
        return Err(End::Malformed(format!("unreasonable address length {n} in the election header")));
    }
    b.resize(20 + n as usize, 0);
    rd.read_exact(&mut b[20..]).await?;
    match ConnectionHeader::decode(&b) {
        Ok(Some((h, _))) => Ok(h),
        Ok(None) => Err(End::Malformed("short election header".into())),
        Err(e) => Err(End::Malformed(e.to_string())),
    }
}

/// Servers outside the configuration whose election address is remembered at once.
const STRANGERS_MAX: usize = 64;

/// The election addresses of a connection header (`host:port`, `[v6]:port`), as a
/// [`PeerAddrs`] with no quorum port (only its election port is ever connected to).
fn stranger_addrs(texts: &[String]) -> Option<PeerAddrs> {
    let parsed: Vec<(String, u16, u16)> = texts
        .iter()
        .flat_map(|t| t.split('|'))
        .filter_map(|t| {
            let (host, port) = t.trim().rsplit_once(':')?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
            (!host.is_empty()).then(|| (host.to_string(), 0, port))
        })
        .collect();
    let ((host, quorum_port, election_port), also) = parsed.split_first()?;
    Some(PeerAddrs { host: host.clone(), quorum_port: *quorum_port, election_port: *election_port, also: also.to_vec() })
}

/// `handleConnection`: a peer connected to our election port.
async fn accept_election(shared: Arc<Shared>, stream: TcpStream, from: SocketAddr) {
    let stream = match shared.limits.security.accept(stream, from).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%from, "closing an election connection: {e}");
            return;
        }
    };
    let (rd, mut wr) = peersec::split(stream);
    let mut rd = BufReader::new(rd);
    let header = match tokio::time::timeout(shared.limits.handshake_timeout, read_header(&mut rd)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            tracing::warn!(%from, "closing an election connection: bad header: {e}");
            return;
        }
        Err(_) => {
            tracing::warn!(%from, "closing an election connection: no header in time");
            return;
        }
    };
    let sid = ServerId(header.sid);
    if sid == shared.my_id {
        tracing::warn!(%from, "an election connection claims my own id {sid}: a configuration error");
        return;
    }
    if !shared.knows(sid) {
        // A joining server (or one a reconfig removed): ZooKeeper takes its connection and
        // answers its notifications with its vote, so that it finds the leader and follows
        // without a vote until a reconfig names it. Its header says where it listens.
        match stranger_addrs(&header.addresses) {
            Some(addrs) => {
                tracing::info!(%from, %sid, "an election connection from a server not in my configuration");
                shared.learn_stranger(sid, addrs);
            }
            None => {
                tracing::warn!(%from, %sid, "closing an election connection from a server not in my configuration (its header gives no address)");
                return;
            }
        }
    }
    // SaslQuorumAuthServer, after the header whoever keeps the connection.
    let rd = match shared.limits.security.server_auth(&mut rd, &mut wr, from, shared.limits.handshake_timeout).await {
        Ok(ahead) if ahead.is_empty() => rd,
        Ok(ahead) => BufReader::new(peersec::unread(ahead, Box::new(rd))),
        Err(e) => {
            tracing::warn!(%from, %sid, "closing an election connection: {e}");
            return;
        }
    };
    if sid < shared.my_id {
        // We win the challenge: drop this socket (and any connection the peer may think is
        // dead) and connect back.
        tracing::debug!(my_id = %shared.my_id, %sid, "smaller sid connected; connecting back");
        drop((rd, wr));
        let mut st = shared.lock();
        if let Some(p) = st.election.get_mut(&sid) {
            if let Some(c) = p.conn.take() {
                c.task.abort();
            }
        }
        shared.connect_election(&mut st, sid);
        return;
    }
    shared.register_election(sid, rd, wr);
}

/// How long a new connection to the leader is watched for being dropped at once.
const DROPPED_AT_ONCE_PROBE: Duration = Duration::from_millis(100);

/// Connects to every quorum address of a server at once; the first to answer wins (the
/// others are dropped), as ZooKeeper's learner connects to a multi-address leader.
async fn connect_first(addrs: &PeerAddrs) -> io::Result<(TcpStream, String)> {
    let mut tries = tokio::task::JoinSet::new();
    for (host, q, _) in addrs.all() {
        tries.spawn(async move { TcpStream::connect((host.as_str(), q)).await.map(|s| (s, host)) });
    }
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no quorum address");
    while let Some(r) = tries.join_next().await {
        match r {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => last = e,
            Err(e) => last = io::Error::other(e),
        }
    }
    Err(last)
}

/// `connectOne` + `startConnection`: connect, send our header, keep the socket only if the
/// peer's sid is smaller than ours.
async fn connect_election(shared: Arc<Shared>, to: ServerId, addrs: PeerAddrs) {
    let result = async {
        // Each election address in turn until one answers.
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no election address");
        let mut connected = None;
        for (host, _, port) in addrs.all() {
            match tokio::time::timeout(shared.limits.connect_timeout, TcpStream::connect((host.as_str(), port))).await {
                Ok(Ok(s)) => {
                    connected = Some((s, host.clone()));
                    break;
                }
                Ok(Err(e)) => last = e,
                Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, format!("connect to {host}:{port} timed out")),
            }
        }
        let Some((stream, host)) = connected else { return Err(last) };
        stream.set_nodelay(true)?;
        let sec = &shared.limits.security;
        let mut stream = sec.connect(stream, &host).await.map_err(io::Error::other)?;
        let header = ConnectionHeader {
            protocol_version: Some(PROTOCOL_VERSION_V1),
            sid: shared.my_id.0,
            addresses: shared.my_election_texts.clone(),
        };
        stream.write_all(&header.encode()).await?;
        stream.flush().await?;
        // SaslQuorumAuthLearner, whoever keeps the connection.
        sec.learner_auth(&mut stream, &host, shared.limits.handshake_timeout).await.map_err(io::Error::other)?;
        Ok::<peersec::PeerStream, io::Error>(stream)
    }
    .await;
    let stream = match result {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::Other => {
            tracing::warn!(my_id = %shared.my_id, peer = %to, error = %e, "cannot open an election connection");
            shared.lock().election.entry(to).or_default().connecting = false;
            return;
        }
        Err(e) => {
            tracing::debug!(my_id = %shared.my_id, peer = %to, error = %e, "cannot open an election connection");
            shared.lock().election.entry(to).or_default().connecting = false;
            return;
        }
    };
    if to > shared.my_id {
        // We lose the challenge: the larger sid connects back.
        let mut stream = stream;
        let _ = stream.shutdown().await;
        shared.lock().election.entry(to).or_default().connecting = false;
        return;
    }
    let (rd, wr) = peersec::split(stream);
    shared.register_election(to, BufReader::new(rd), wr);
    shared.lock().election.entry(to).or_default().connecting = false;
}

async fn run_election(shared: Arc<Shared>, peer: ServerId, id: u64, rd: BufReader<PeerRead>, wr: PeerWrite, wake: Arc<Notify>) {
    let end = tokio::select! {
        e = election_reader(&shared, peer, rd) => e,
        e = election_writer(&shared, peer, wr, &wake) => e,
    };
    match &end {
        End::Malformed(_) => tracing::warn!(%peer, "closing the election connection: {end}"),
        _ => tracing::debug!(%peer, "election connection closed: {end}"),
    }
    shared.election_closed(peer, id);
}

/// `RecvWorker`: int length (1..=512 KiB), then a notification.
async fn election_reader(shared: &Shared, peer: ServerId, mut rd: BufReader<PeerRead>) -> End {
    loop {
        let len = match rd.read_i32().await {
            Ok(n) => n,
            Err(e) => return e.into(),
        };
        if len <= 0 || len as usize > ELECTION_MESSAGE_MAX_BYTES {
            return End::Malformed(format!("election message length {len}"));
        }
        let mut b = vec![0u8; len as usize];
        if let Err(e) = rd.read_exact(&mut b).await {
            return e.into();
        }
        let n = match Notification::decode(&b) {
            Ok(n) => n,
            Err(e) => return End::Malformed(format!("notification: {e}")),
        };
        // FastLeaderElection drops a notification with an unknown state.
        let Some(vote) = Vote::from_notification(&n) else {
            tracing::debug!(%peer, state = n.state, "dropping a notification with an unknown state");
            continue;
        };
        if !n.config.is_empty() {
            let msg = Message::ElectionConfig(Bytes::from(n.config.clone()));
            if shared.events.send(NetEvent::Message { from: peer, msg }).await.is_err() {
                return End::EventsClosed;
            }
        }
        if shared.events.send(NetEvent::Message { from: peer, msg: Message::Notification(vote) }).await.is_err() {
            return End::EventsClosed;
        }
    }
}

/// `SendWorker`: the last notification again if nothing newer waits, then whatever the
/// latest-only slot holds, as it is filled.
async fn election_writer(shared: &Shared, peer: ServerId, mut wr: PeerWrite, wake: &Notify) -> End {
    let resend = {
        let mut st = shared.lock();
        let p = st.election.entry(peer).or_default();
        if p.latest.is_none() {
            p.last_sent.clone()
        } else {
            None
        }
    };
    if let Some(b) = resend {
        if let Err(e) = wr.write_all(&b).await {
            return e.into();
        }
    }
    loop {
        let next = {
            let mut st = shared.lock();
            let p = st.election.entry(peer).or_default();
            let b = p.latest.take();
            if b.is_some() {
                p.last_sent = b.clone();
            }
            b
        };
        match next {
            Some(b) => {
                if let Err(e) = wr.write_all(&b).await {
                    return e.into();
                }
            }
            None => wake.notified().await,
        }
    }
}

/// Attempts at connecting to the leader's quorum port (ZooKeeper's `Learner`: 5).
const LEADER_CONNECT_TRIES: u32 = 5;
/// The pause between them by default (ZooKeeper's `leaderConnectDelayDuringRetryMs`, 100
/// ms; `NetLimits::leader_connect_retry_delay`).
const LEADER_CONNECT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// A learner's connection to the leader's quorum port; its first queued packet is the
/// FOLLOWERINFO / OBSERVERINFO.
/// A refused connection (or one dropped as soon as it is made: a proxy in front of a leader
/// that is not listening yet, seen to livelock a mixed ensemble's election in CI) is retried
/// ([`LEADER_CONNECT_TRIES`] attempts,
/// [`LEADER_CONNECT_RETRY_DELAY`] apart), as ZooKeeper's `Learner.connectToLeader` does: a
/// ZooKeeper leader opens its quorum port only once it has decided to lead, which a follower
/// that finished the election first may beat. A connect that times out is not retried.
async fn connect_quorum(shared: Arc<Shared>, to: ServerId, id: u64, addrs: PeerAddrs, rx: QueueRx) {
    let mut tries = 0;
    let (stream, host) = loop {
        tries += 1;
        let connected = tokio::time::timeout(shared.limits.connect_timeout, connect_first(&addrs)).await;
        // A connection the far end drops at once (a proxy or balancer in front of a leader
        // that is not listening yet) is a refused connection too: probe it briefly before
        // the learner's handshake starts (the leader says nothing before FOLLOWERINFO).
        let connected = match connected {
            Ok(Ok((s, host))) => match tokio::time::timeout(DROPPED_AT_ONCE_PROBE, s.peek(&mut [0u8; 1])).await {
                Ok(Ok(0)) => Ok(Err(io::Error::new(io::ErrorKind::ConnectionReset, "closed as soon as it was made"))),
                Ok(Err(e)) => Ok(Err(e)),
                Ok(Ok(_)) | Err(_) => Ok(Ok((s, host))),
            },
            other => other,
        };
        match connected {
            Ok(Ok(s)) => break s,
            Ok(Err(e)) if tries < LEADER_CONNECT_TRIES => {
                tracing::debug!(my_id = %shared.my_id, peer = %to, tries, "connecting to the leader's quorum port: {e}; retrying");
                tokio::time::sleep(shared.limits.leader_connect_retry_delay).await;
            }
            Ok(Err(e)) => return shared.quorum_closed(to, id, &End::Io(e)).await,
            Err(_) => return shared.quorum_closed(to, id, &End::Io(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))).await,
        }
    };
    let _ = stream.set_nodelay(true);
    let sec = &shared.limits.security;
    let secured = async {
        let mut s = sec.connect(stream, &host).await?;
        sec.learner_auth(&mut s, &host, shared.limits.handshake_timeout).await?;
        Ok::<_, String>(s)
    };
    let stream = match secured.await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(my_id = %shared.my_id, peer = %to, "cannot open a quorum connection to the leader: {e}");
            return shared.quorum_closed(to, id, &End::Io(io::Error::other(e))).await;
        }
    };
    tracing::info!(my_id = %shared.my_id, peer = %to, "quorum connection to the leader");
    let (rd, wr) = peersec::split(stream);
    run_quorum(shared, to, id, rd, wr, BytesMut::new(), rx, None).await
}

/// `LearnerHandler`'s first step: the first packet must be FOLLOWERINFO / OBSERVERINFO
/// naming a known server.
async fn accept_quorum(shared: Arc<Shared>, stream: TcpStream, from: SocketAddr) {
    let sec = &shared.limits.security;
    let stream = match sec.accept(stream, from).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%from, "closing a quorum connection: {e}");
            return;
        }
    };
    let (mut rd, mut wr) = peersec::split(stream);
    let mut buf = BytesMut::with_capacity(4096);
    // LearnerHandler: SaslQuorumAuthServer before the first packet.
    match sec.server_auth(&mut rd, &mut wr, from, shared.limits.handshake_timeout).await {
        Ok(ahead) => buf.extend_from_slice(&ahead),
        Err(e) => {
            tracing::error!(%from, "Server failed to authenticate quorum learner, closing connection: {e}");
            return;
        }
    }
    let first = async {
        loop {
            match decode_quorum_packet(&buf, shared.limits.packet_bytes_max) {
                Ok(PacketStatus::Packet { packet, len }) => {
                    buf.advance(len);
                    return Ok(packet);
                }
                Ok(PacketStatus::Incomplete) => {}
                Err(e) => return Err(End::Malformed(e.to_string())),
            }
            if rd.read_buf(&mut buf).await? == 0 {
                return Err(End::Eof);
            }
        }
    };
    let packet = match tokio::time::timeout(shared.limits.handshake_timeout, first).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            tracing::warn!(%from, "closing a quorum connection before its first packet: {e}");
            return;
        }
        Err(_) => {
            tracing::warn!(%from, "closing a quorum connection: no first packet in time");
            return;
        }
    };
    if packet.ty != pt::FOLLOWERINFO && packet.ty != pt::OBSERVERINFO {
        tracing::warn!(%from, ty = packet.ty, "closing a quorum connection: the first packet is not FOLLOWERINFO or OBSERVERINFO");
        return;
    }
    let (msg, sid) = match Message::from_packet(&packet, None) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(%from, "closing a quorum connection: {e}");
            return;
        }
    };
    let Some(sid) = sid.map(ServerId) else {
        tracing::warn!(%from, "closing a quorum connection: LearnerInfo without a server id");
        return;
    };
    if sid == shared.my_id {
        tracing::warn!(%from, %sid, "closing a quorum connection that claims my own id");
        return;
    }
    if !shared.knows(sid) {
        // ZooKeeper's leader takes learners outside its configuration (a joining server);
        // they vote in nothing until a reconfig names them.
        tracing::info!(%from, %sid, "a quorum connection from a server not in my configuration");
    }
    shared.register_quorum(sid, rd, wr, buf, NetEvent::Message { from: sid, msg });
}

#[allow(clippy::too_many_arguments)]
async fn run_quorum(
    shared: Arc<Shared>,
    peer: ServerId,
    id: u64,
    rd: PeerRead,
    wr: PeerWrite,
    buf: BytesMut,
    rx: QueueRx,
    first: Option<NetEvent>,
) {
    let end = tokio::select! {
        e = quorum_reader(&shared, peer, rd, buf, first) => e,
        e = quorum_writer(wr, rx, &shared.drained) => e,
    };
    shared.quorum_closed(peer, id, &end).await;
}

/// Writes queued packets, flushing whenever the queue is momentarily empty.
async fn quorum_writer(wr: PeerWrite, q: QueueRx, drained: &Notify) -> End {
    let QueueRx { mut rx, bytes } = q;
    let mut w = BufWriter::with_capacity(64 * 1024, wr);
    loop {
        let Some(mut out) = rx.recv().await else { return End::Dropped };
        loop {
            let r = match &out {
                Outbound::Packet(b) => w.write_all(b).await,
                Outbound::Snap(p, s) => match w.write_all(p).await {
                    Ok(()) => w.write_all(s).await,
                    Err(e) => Err(e),
                },
                Outbound::Raw(s) => w.write_all(s).await,
            };
            if let Err(e) = r {
                return e.into();
            }
            bytes.fetch_sub(out.counted_bytes(), Ordering::Relaxed);
            match rx.try_recv() {
                Ok(o) => out = o,
                Err(_) => break,
            }
        }
        if let Err(e) = w.flush().await {
            return e.into();
        }
        drained.notify_one();
    }
}

/// Reads packets (and SNAP streams) and hands them to the driver.
async fn quorum_reader(shared: &Shared, peer: ServerId, mut rd: PeerRead, mut buf: BytesMut, first: Option<NetEvent>) -> End {
    if let Some(ev) = first {
        if shared.events.send(ev).await.is_err() {
            return End::EventsClosed;
        }
    }
    loop {
        loop {
            let packet = match decode_quorum_packet(&buf, shared.limits.packet_bytes_max) {
                Ok(PacketStatus::Packet { packet, len }) => {
                    buf.advance(len);
                    packet
                }
                Ok(PacketStatus::Incomplete) => break,
                Err(e) => return End::Malformed(e.to_string()),
            };
            let snapshot = if packet.ty == pt::SNAP {
                match read_snap_stream(shared, &mut rd, &mut buf, packet.zxid).await {
                    Ok(s) => Some(s),
                    Err(e) => return e,
                }
            } else {
                None
            };
            let ev = match PeerMsg::from_packet(&packet, snapshot) {
                Ok((PeerMsg::Zab(msg), sid)) => {
                    if let Some(sid) = sid {
                        if sid != peer.0 {
                            return End::Malformed(format!("LearnerInfo names server {sid} on the connection with {peer}"));
                        }
                    }
                    NetEvent::Message { from: peer, msg }
                }
                Ok((msg, _)) => NetEvent::Member { from: peer, msg },
                Err(PeerMsgError::Zab(MessageError::UnsupportedType(ty))) => {
                    // As ZooKeeper's LearnerHandler and Learner: logged and skipped.
                    tracing::warn!(%peer, ty, "skipping a quorum packet of an unknown type");
                    continue;
                }
                Err(e) => return End::Malformed(e.to_string()),
            };
            if shared.events.send(ev).await.is_err() {
                return End::EventsClosed;
            }
        }
        buf.reserve(64 * 1024);
        match rd.read_buf(&mut buf).await {
            Ok(0) => return End::Eof,
            Ok(_) => {}
            Err(e) => return e.into(),
        }
    }
}

/// Why a SNAP's sink gave up (it stops reading at the first error).
async fn sink_failed(sink: SnapSink) -> End {
    drop(sink.chunks);
    match sink.done.await {
        Ok(Err(e)) => End::Malformed(format!("snapshot stream: {e}")),
        Ok(Ok(_)) => End::Malformed("snapshot stream: the decoder finished before the stream's end".into()),
        Err(_) => End::Malformed("snapshot stream: the decoder stopped".into()),
    }
}

/// Reads the serialized database after a SNAP packet at `zxid`: until the scanner finds
/// its end. Returns those bytes, or with a sink what the sink made of them; whatever
/// follows stays in `buf`. A stream cut short drops the sink (its decoder then fails and
/// removes what it wrote).
async fn read_snap_stream(shared: &Shared, rd: &mut PeerRead, buf: &mut BytesMut, zxid: rzk_proto::Zxid) -> Result<SnapData, End> {
    let (mut scanner, mut sink) = (shared.limits.snap_scanner)(zxid);
    let max = shared.limits.snapshot_bytes_max;
    let mut scanned_len: Option<usize> = None;
    let mut scan_now = true;
    loop {
        if scan_now {
            match scanner.scan(buf) {
                Ok(Some(n)) if n <= buf.len() => {
                    let last = buf.split_to(n).freeze();
                    let Some(s) = sink.take() else { return Ok(SnapData::Stream(last)) };
                    if !last.is_empty() && s.chunks.send(last).await.is_err() {
                        return Err(sink_failed(s).await);
                    }
                    drop(s.chunks);
                    return match s.done.await {
                        Ok(Ok(data)) => Ok(data),
                        Ok(Err(e)) => Err(End::Malformed(format!("snapshot stream: {e}"))),
                        Err(_) => Err(End::Malformed("snapshot stream: the decoder stopped".into())),
                    };
                }
                Ok(Some(n)) => return Err(End::Malformed(format!("snapshot scanner claimed {n} bytes of {}", buf.len()))),
                Ok(None) => {
                    let k = scanner.scanned();
                    if k >= SNAP_SINK_CHUNK_BYTES {
                        if let Some(s) = sink.as_ref() {
                            assert!(k <= buf.len(), "snapshot scanner passed {k} bytes of {}", buf.len());
                            let chunk = buf.split_to(k).freeze();
                            scanner.dropped(k);
                            if s.chunks.send(chunk).await.is_err() {
                                return Err(sink_failed(sink.take().expect("checked")).await);
                            }
                        }
                    }
                    scanned_len = Some(buf.len());
                }
                Err(e) => return Err(End::Malformed(format!("snapshot stream: {e}"))),
            }
        }
        // A stream handed on as it arrives is not held: no bound on its length but the
        // tree's own (the receiver's memory).
        if sink.is_none() && buf.len() > max {
            return Err(End::Malformed(format!("snapshot stream longer than {max} bytes")));
        }
        buf.reserve(256 * 1024);
        // Take what the socket has without waiting; scan again once the buffer grew by an
        // eighth, or when the socket has nothing more for now.
        match read_now(rd, buf).await {
            Ok(Some(0)) => return Err(End::Eof),
            Ok(Some(_)) => {
                let last = scanned_len.unwrap_or(0);
                scan_now = buf.len() > last + last / 8;
            }
            Ok(None) => {
                if scanned_len != Some(buf.len()) {
                    scan_now = true;
                } else {
                    // Nothing new since the last scan: wait for more.
                    match rd.read_buf(buf).await {
                        Ok(0) => return Err(End::Eof),
                        Ok(_) => {
                            let last = scanned_len.unwrap_or(0);
                            scan_now = buf.len() > last + last / 8;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads what `rd` has without waiting: `None` when nothing is there now (a TLS stream
/// may have nothing to give even when its socket is readable). Cancel-safe, as `read_buf`.
async fn read_now(rd: &mut PeerRead, buf: &mut BytesMut) -> io::Result<Option<usize>> {
    use std::future::Future;
    use std::task::Poll;
    std::future::poll_fn(|cx| {
        let read = std::pin::pin!(rd.read_buf(buf));
        match read.poll(cx) {
            Poll::Ready(r) => Poll::Ready(r.map(Some)),
            Poll::Pending => Poll::Ready(Ok(None)),
        }
    })
    .await
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_observer_reaches_a_multi_address_voter_at_its_master_port_on_every_address() {
        let a = PeerAddrs { host: "10.0.0.1".into(), quorum_port: 2888, election_port: 3888, also: vec![("10.0.1.1".into(), 2889, 3889)] };
        let m = a.at_learner_master_port(2191);
        assert_eq!(m.all(), vec![("10.0.0.1".to_string(), 2191, 3888), ("10.0.1.1".to_string(), 2191, 3889)]);
    }

    use super::*;
    use rzk_proto::quorum::{
        sync_packet, ForwardedRequest, LearnerInfo, RevalidateReply, ServerState, NOTIFICATION_VERSION, ZAB_PROTOCOL_VERSION,
    };
    use rzk_proto::{Id, SessionId, Zxid};
    use rzk_zab::Entry;
    use tokio::time::timeout;

    const WAIT: Duration = Duration::from_secs(10);

    /// Free loopback ports, all chosen before any is released so that they differ.
    /// Free ports below Linux's ephemeral range (32768-60999), so that no outgoing
    /// connection of a test running in parallel can take one between choosing and binding.
    fn free_ports(n: usize) -> Vec<u16> {
        use std::sync::atomic::{AtomicU16, Ordering};
        static NEXT: AtomicU16 = AtomicU16::new(0);
        if NEXT.load(Ordering::Relaxed) == 0 {
            let start = 20_000 + (std::process::id() % 10_000) as u16;
            let _ = NEXT.compare_exchange(0, start, Ordering::Relaxed, Ordering::Relaxed);
        }
        let mut ports = Vec::with_capacity(n);
        while ports.len() < n {
            let mut p = NEXT.fetch_add(1, Ordering::Relaxed);
            if !(20_000..32_000).contains(&p) {
                NEXT.store(20_001, Ordering::Relaxed);
                p = 20_000;
            }
            if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
                ports.push(p);
            }
        }
        ports
    }

    fn addrs(ids: &[i64]) -> BTreeMap<ServerId, PeerAddrs> {
        let ports = free_ports(ids.len() * 2);
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    ServerId(*id),
                    PeerAddrs { host: "127.0.0.1".into(), quorum_port: ports[2 * i], election_port: ports[2 * i + 1], also: vec![] },
                )
            })
            .collect()
    }

    async fn start(id: i64, peers: &BTreeMap<ServerId, PeerAddrs>, limits: NetLimits) -> (PeerNet, mpsc::Receiver<NetEvent>) {
        let (tx, rx) = mpsc::channel(64);
        (PeerNet::start(ServerId(id), peers.clone(), limits, tx).await.unwrap(), rx)
    }

    /// The next event, skipping the configuration that comes before each notification
    /// (`Message::ElectionConfig`: a real ZooKeeper's notifications bring one each).
    async fn next(rx: &mut mpsc::Receiver<NetEvent>) -> NetEvent {
        loop {
            match timeout(WAIT, rx.recv()).await.expect("an event in time").expect("events open") {
                NetEvent::Message { msg: Message::ElectionConfig(_), .. } => continue,
                e => return e,
            }
        }
    }

    async fn next_message(rx: &mut mpsc::Receiver<NetEvent>) -> (ServerId, Message) {
        match next(rx).await {
            NetEvent::Message { from, msg } => (from, msg),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    async fn next_member_msg(rx: &mut mpsc::Receiver<NetEvent>) -> (ServerId, PeerMsg) {
        match next(rx).await {
            NetEvent::Member { from, msg } => (from, msg),
            other => panic!("expected a member message, got {other:?}"),
        }
    }

    async fn expect_disconnected(rx: &mut mpsc::Receiver<NetEvent>, peer: i64) {
        match next(rx).await {
            NetEvent::Disconnected { peer: p } => assert_eq!(p, ServerId(peer)),
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }

    /// Waits until the peer closes `s` (reads to EOF, discarding anything before it).
    async fn expect_closed(s: &mut TcpStream) {
        let mut b = [0u8; 1024];
        loop {
            match timeout(WAIT, s.read(&mut b)).await.expect("closed in time") {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    fn vote(leader: i64, ee: i64) -> Vote {
        Vote { state: ServerState::Looking, leader, zxid: 0x1_0000_0002, election_epoch: ee, peer_epoch: 1 }
    }

    fn send(net: &PeerNet, to: i64, msg: Message) {
        net.send(ServerId(to), &msg, net.shared.my_id, 0, b"");
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Bytes printed by ZooKeeper 3.8.0's own classes (crates/proto/testdata/quorum).
    fn golden(name: &str) -> Vec<u8> {
        let text = include_str!("../../../proto/testdata/quorum/golden.txt");
        let line = text.lines().find(|l| l.split(' ').next() == Some(name)).expect("golden line");
        unhex(line.split(' ').nth(1).unwrap())
    }

    /// The election header a server with `sid` and election address `text` sends, built by hand.
    fn header_bytes(sid: i64, text: &str) -> Vec<u8> {
        let mut b = unhex("ffffffffffff0000");
        b.extend_from_slice(&sid.to_be_bytes());
        b.extend_from_slice(&(text.len() as i32).to_be_bytes());
        b.extend_from_slice(text.as_bytes());
        b
    }

    async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        timeout(WAIT, s.read_exact(&mut b)).await.expect("bytes in time").expect("read");
        b
    }

    /// Quorum TLS with the test stores (`testdata/README`): `store` is this server's key store.
    fn tls(store: &str, ssl_quorum: bool, port_unification: bool) -> PeerSecurity {
        use rzk_config::{ClientTls, StoreConfig, StoreType};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/shell/testdata");
        let s = |name: &str| StoreConfig {
            location: dir.join(name),
            password: None,
            password_path: None,
            store_type: StoreType::Pem,
            location_key: "zookeeper.ssl.quorum.keyStore.location".into(),
        };
        let t = ClientTls {
            key_prefix: "ssl.quorum".into(),
            key_store: Some(s(store)),
            trust_store: Some(s("peer-ca.pem")),
            enabled_protocols: vec!["TLSv1.3".into(), "TLSv1.2".into()],
            ..ClientTls::default()
        };
        PeerSecurity {
            tls: Some(super::super::tls::TlsContext::for_peers(&t).unwrap()),
            ssl_quorum,
            port_unification,
            hostname_verification: true,
            allow_reverse_dns_lookup: true,
            peer_hosts: vec!["127.0.0.1".into()],
            detection_timeout: Duration::from_secs(5),
            sasl: None,
        }
    }

    /// Hostname verification: a certificate that names only a host name passes when that
    /// name is a `server.N` host resolving to the peer's address (`allowReverseDnsLookup`),
    /// and is refused without the fallback.
    #[tokio::test]
    async fn a_certificate_naming_a_server_host() {
        for allow in [true, false] {
            let mut server = tls("peer-store.pem", true, false);
            server.peer_hosts = vec!["localhost".into()];
            server.allow_reverse_dns_lookup = allow;
            let client = tls("peer-dns-store.pem", true, false);
            let l = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
            let addr = l.local_addr().unwrap();
            let (accepted, connected) = tokio::join!(
                async {
                    let (s, from) = l.accept().await.unwrap();
                    server.accept(s, from).await.map(|_| ())
                },
                async {
                    let s = TcpStream::connect(addr).await.unwrap();
                    let mut c = client.connect(s, "127.0.0.1").await?;
                    // TLS 1.3 sends the client's certificate after the client's handshake ends.
                    let _ = c.read(&mut [0u8; 1]).await;
                    Ok::<(), String>(())
                }
            );
            if allow {
                accepted.unwrap();
                connected.unwrap();
            } else {
                assert!(accepted.unwrap_err().contains("names neither its address 127.0.0.1"));
            }
        }
    }

    /// sslQuorum between 1 and 2 (2 also takes plaintext: portUnification); 3 speaks
    /// plaintext, so only 2 hears it; 4's certificate names another address, so 1 refuses it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_between_servers() {
        let peers = addrs(&[1, 2, 3, 4]);
        let with = |security: PeerSecurity| NetLimits { security, ..NetLimits::default() };
        let (n1, mut r1) = start(1, &peers, with(tls("peer-store.pem", true, false))).await;
        let (n2, mut r2) = start(2, &peers, with(tls("peer-store.pem", true, true))).await;
        let (n3, _r3) = start(3, &peers, NetLimits::default()).await;
        let (n4, _r4) = start(4, &peers, with(tls("peer-elsewhere-store.pem", true, false))).await;
        send(&n1, 2, Message::Notification(vote(1, 1)));
        send(&n2, 1, Message::Notification(vote(2, 1)));
        send(&n3, 1, Message::Notification(vote(3, 1)));
        send(&n3, 2, Message::Notification(vote(3, 1)));
        send(&n4, 1, Message::Notification(vote(4, 1)));
        let mut heard2 = BTreeMap::new();
        while heard2.len() < 2 {
            let (from, msg) = next_message(&mut r2).await;
            heard2.insert(from.0, msg);
        }
        assert_eq!(heard2.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
        let (from, _) = next_message(&mut r1).await;
        assert_eq!(from, ServerId(2));
        // Neither the plaintext server nor the misnamed certificate gets through to 1 (2's
        // notification may come again on a new connection).
        let quiet_until = tokio::time::Instant::now() + Duration::from_millis(1500);
        while let Ok(ev) = tokio::time::timeout_at(quiet_until, next(&mut r1)).await {
            assert!(matches!(ev, NetEvent::Message { from: ServerId(2), .. }), "server 1 heard {ev:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn notifications_among_three_servers() {
        let peers = addrs(&[1, 2, 3]);
        let mut nets = Vec::new();
        for id in 1..=3 {
            nets.push(start(id, &peers, NetLimits::default()).await);
        }
        // Every server sends its vote to the other two. A notification may be lost while the
        // two connections of a pair race (the smaller sid's is dropped, and with it what was
        // written on it), as in ZooKeeper: election sends again when it hears nothing for a
        // while, and so does this test.
        let send_round = |nets: &[(PeerNet, mpsc::Receiver<NetEvent>)], round: i64| {
            for (i, (net, _)) in nets.iter().enumerate() {
                let me = i as i64 + 1;
                for to in (1..=3).filter(|to| *to != me) {
                    send(net, to, Message::Notification(vote(me, round)));
                }
            }
        };
        for round in 1..=2i64 {
            send_round(&nets, round);
            for i in 0..nets.len() {
                let me = i as i64 + 1;
                let mut got = BTreeMap::new();
                let deadline = tokio::time::Instant::now() + WAIT;
                while got.len() < 2 {
                    assert!(tokio::time::Instant::now() < deadline, "server {me} heard only {got:?} in round {round}");
                    let Ok(Some(ev)) = timeout(Duration::from_millis(500), nets[i].1.recv()).await else {
                        send_round(&nets, round);
                        continue;
                    };
                    let NetEvent::Message { from, msg } = ev else { panic!("expected a message, got {ev:?}") };
                    let Message::Notification(v) = msg else { continue };
                    assert_eq!(v.leader, from.0, "vote content comes from its sender");
                    if v.election_epoch == round {
                        got.insert(from.0, v);
                    }
                }
                assert!(!got.contains_key(&me));
            }
        }
        // One connection per pair, the larger sid's (a replaced one may still be settling).
        for (i, (net, _)) in nets.iter().enumerate() {
            let deadline = std::time::Instant::now() + WAIT;
            loop {
                let missing: Vec<ServerId> =
                    net.shared.lock().election.iter().filter(|(_, p)| p.conn.is_none()).map(|(peer, _)| *peer).collect();
                if missing.is_empty() {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "server {} has no election connection with {missing:?}", i + 1);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        // A notification to myself comes straight back.
        // (A resent round-2 notification from 2 or 3 may still be on its way; skip those.)
        send(&nets[0].0, 1, Message::Notification(vote(1, 9)));
        loop {
            let NetEvent::Message { from, msg } = next(&mut nets[0].1).await else { continue };
            if from != ServerId(1) {
                assert!(matches!(&msg, Message::Notification(v) if v.election_epoch <= 2), "server 1 heard {msg:?} from {from:?}");
                continue;
            }
            assert_eq!(msg, Message::Notification(vote(1, 9)));
            break;
        }
    }

    #[tokio::test]
    async fn election_sid_rule_and_zookeeper_bytes() {
        let gcfg = b"server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nversion=0";
        let gvote = Vote { state: ServerState::Leading, leader: 3, zxid: 0x2_0000_0005, election_epoch: 7, peer_epoch: 2 };
        let mut gframe = (golden("notification").len() as i32).to_be_bytes().to_vec();
        gframe.extend_from_slice(&golden("notification"));

        // A raw server 1 against rzk server 2: 1 connects, 2 closes and connects back.
        let peers = addrs(&[1, 2]);
        let raw_listener = TcpListener::bind(("127.0.0.1", peers[&ServerId(1)].election_port)).await.unwrap();
        let (net2, mut rx2) = start(2, &peers, NetLimits::default()).await;
        let mut c = TcpStream::connect(net2.election_addr()).await.unwrap();
        c.write_all(&header_bytes(1, &format!("127.0.0.1:{}", peers[&ServerId(1)].election_port))).await.unwrap();
        expect_closed(&mut c).await;
        let (mut back, _) = timeout(WAIT, raw_listener.accept()).await.unwrap().unwrap();
        let want = header_bytes(2, &format!("127.0.0.1:{}", net2.election_addr().port()));
        assert_eq!(read_n(&mut back, want.len()).await, want);
        // Server 2's notification, byte for byte as ZooKeeper's buildMsg with a config.
        net2.send(ServerId(1), &Message::Notification(gvote), ServerId(2), 0, gcfg);
        assert_eq!(read_n(&mut back, gframe.len()).await, gframe);
        // And ZooKeeper's bytes read back as the same vote.
        back.write_all(&gframe).await.unwrap();
        assert_eq!(next_message(&mut rx2).await, (ServerId(1), Message::Notification(gvote)));
        // An unknown state is dropped silently; the connection stays.
        let mut odd = Notification::decode(&golden("notification")).unwrap();
        odd.state = 9;
        back.write_all(&odd.encode_frame()).await.unwrap();
        back.write_all(&gframe).await.unwrap();
        assert_eq!(next_message(&mut rx2).await, (ServerId(1), Message::Notification(gvote)));
        // A length above 512 KiB closes it.
        back.write_all(&(512 * 1024 + 1i32).to_be_bytes()).await.unwrap();
        expect_closed(&mut back).await;
        // The next send connects again and repeats nothing stale: the newest vote only.
        net2.send(ServerId(1), &Message::Notification(vote(2, 1)), ServerId(2), 0, b"");
        net2.send(ServerId(1), &Message::Notification(vote(2, 2)), ServerId(2), 0, b"");
        let (mut again, _) = timeout(WAIT, raw_listener.accept()).await.unwrap().unwrap();
        read_n(&mut again, want.len()).await;
        let newest = vote(2, 2).to_notification(b"").encode_frame();
        assert_eq!(read_n(&mut again, newest.len()).await, newest);
        drop(net2);

        // rzk server 1 against a raw server 2: 1 connects, says who it is and hangs up; 2
        // connects back and gets the queued notification.
        let peers = addrs(&[1, 2]);
        let raw_listener = TcpListener::bind(("127.0.0.1", peers[&ServerId(2)].election_port)).await.unwrap();
        let (net1, mut rx1) = start(1, &peers, NetLimits::default()).await;
        net1.send(ServerId(2), &Message::Notification(gvote), ServerId(1), 0, gcfg);
        let (mut s, _) = timeout(WAIT, raw_listener.accept()).await.unwrap().unwrap();
        let want = header_bytes(1, &format!("127.0.0.1:{}", net1.election_addr().port()));
        assert_eq!(read_n(&mut s, want.len()).await, want);
        expect_closed(&mut s).await;
        let mut c = TcpStream::connect(net1.election_addr()).await.unwrap();
        c.write_all(&header_bytes(2, &format!("127.0.0.1:{}", peers[&ServerId(2)].election_port))).await.unwrap();
        assert_eq!(read_n(&mut c, gframe.len()).await, gframe);
        c.write_all(&vote(2, 3).to_notification(b"").encode_frame()).await.unwrap();
        assert_eq!(next_message(&mut rx1).await, (ServerId(2), Message::Notification(vote(2, 3))));
        // A pre-3.5 header (just the sid) is accepted too; it replaces the connection, and the
        // last notification sent is sent again on it.
        let mut legacy = TcpStream::connect(net1.election_addr()).await.unwrap();
        legacy.write_all(&2i64.to_be_bytes()).await.unwrap();
        assert_eq!(read_n(&mut legacy, gframe.len()).await, gframe);
        expect_closed(&mut c).await;
        // Bad headers close the socket: unknown version, an unknown sid that gives no
        // address (the legacy header), my own sid.
        for bad in [unhex("fffffffffffffff0"), 9i64.to_be_bytes().to_vec(), header_bytes(1, "127.0.0.1:1")] {
            let mut b = TcpStream::connect(net1.election_addr()).await.unwrap();
            b.write_all(&bad).await.unwrap();
            expect_closed(&mut b).await;
        }
        assert!(rx1.try_recv().is_err(), "no events from bad connections");
        // A server outside the configuration whose header says where it listens (one that
        // joins, or that a reconfig removed) is taken, as ZooKeeper takes it: its
        // notifications reach the node, and the node's answers go back to it.
        let mut joining = TcpStream::connect(net1.election_addr()).await.unwrap();
        joining.write_all(&header_bytes(9, "127.0.0.1:1")).await.unwrap();
        joining.write_all(&gframe).await.unwrap();
        assert_eq!(next_message(&mut rx1).await, (ServerId(9), Message::Notification(gvote)));
        net1.send(ServerId(9), &Message::Notification(gvote), ServerId(1), 0, gcfg);
        let mut got = vec![0u8; 4];
        timeout(WAIT, joining.read_exact(&mut got)).await.expect("an answer in time").unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn learner_followerinfo_then_broadcast_round_trip() {
        let peers = addrs(&[1, 2]);
        let (leader, mut lrx) = start(1, &peers, NetLimits::default()).await;
        let (learner, mut frx) = start(2, &peers, NetLimits::default()).await;
        assert!(!learner.has_quorum_connection(ServerId(1)));
        send(&learner, 1, Message::LearnerInfo { accepted_epoch: 5, observer: false });
        assert_eq!(next_message(&mut lrx).await, (ServerId(2), Message::LearnerInfo { accepted_epoch: 5, observer: false }));
        assert!(leader.has_quorum_connection(ServerId(2)));
        send(&leader, 2, Message::LeaderInfo { epoch: 6 });
        assert_eq!(next_message(&mut frx).await, (ServerId(1), Message::LeaderInfo { epoch: 6 }));
        let ack_epoch = Message::AckEpoch { current_epoch: Some(5), last_zxid: Zxid::new(5, 3) };
        send(&learner, 1, ack_epoch.clone());
        assert_eq!(next_message(&mut lrx).await, (ServerId(2), ack_epoch));
        send(&leader, 2, Message::Diff { zxid: Zxid::new(5, 3) });
        send(&leader, 2, Message::NewLeader { zxid: Zxid::new(6, 0), config: Bytes::new() });
        assert_eq!(next_message(&mut frx).await, (ServerId(1), Message::Diff { zxid: Zxid::new(5, 3) }));
        assert_eq!(next_message(&mut frx).await, (ServerId(1), Message::NewLeader { zxid: Zxid::new(6, 0), config: Bytes::new() }));
        send(&leader, 2, Message::UpToDate);
        assert_eq!(next_message(&mut frx).await, (ServerId(1), Message::UpToDate));

        // PROPOSAL / ACK / COMMIT, many in a row, in order.
        for i in 1..=50u32 {
            let e = Entry { zxid: Zxid::new(6, i), data: Bytes::from(vec![i as u8; 100 + i as usize]) };
            send(&leader, 2, Message::Proposal(e.clone()));
            assert_eq!(next_message(&mut frx).await, (ServerId(1), Message::Proposal(e.clone())));
            send(&learner, 1, Message::Ack { zxid: e.zxid });
            assert_eq!(next_message(&mut lrx).await, (ServerId(2), Message::Ack { zxid: e.zxid }));
            send(&leader, 2, Message::Commit { zxid: e.zxid });
            assert_eq!(next_message(&mut frx).await, (ServerId(1), Message::Commit { zxid: e.zxid }));
        }

        // The driver's packets: REQUEST up, REVALIDATE reply and SYNC down; PING touches.
        let req =
            ForwardedRequest { session_id: SessionId(0x200), cxid: 4, op: 1, body: vec![1, 2, 3], auth: vec![Id::new("ip", "127.0.0.1")] };
        learner.send_packet(ServerId(1), req.to_packet());
        assert_eq!(next_member_msg(&mut lrx).await, (ServerId(2), PeerMsg::Request(req)));
        let rv = RevalidateReply { session_id: SessionId(0x200), valid: true };
        leader.send_packet(ServerId(2), rv.to_packet());
        leader.send_packet(ServerId(2), sync_packet());
        assert_eq!(next_member_msg(&mut frx).await, (ServerId(1), PeerMsg::RevalidateReply(rv)));
        assert_eq!(next_member_msg(&mut frx).await, (ServerId(1), PeerMsg::Sync));
        let touches = Bytes::from(rzk_proto::quorum::encode_touches(&[(SessionId(0x200), 4000)]));
        send(&learner, 1, Message::Ping { zxid: Zxid::new(6, 50), data: touches.clone() });
        assert_eq!(next_message(&mut lrx).await, (ServerId(2), Message::Ping { zxid: Zxid::new(6, 50), data: touches }));

        // A second FOLLOWERINFO (the learner retrying) replaces the connection.
        send(&learner, 1, Message::LearnerInfo { accepted_epoch: 6, observer: false });
        loop {
            match next(&mut lrx).await {
                NetEvent::Disconnected { peer } => assert_eq!(peer, ServerId(2)),
                NetEvent::Message { from, msg } => {
                    assert_eq!((from, msg), (ServerId(2), Message::LearnerInfo { accepted_epoch: 6, observer: false }));
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        send(&leader, 2, Message::LeaderInfo { epoch: 7 });
        assert_eq!(next_message(&mut frx).await, (ServerId(1), Message::LeaderInfo { epoch: 7 }));
    }

    /// A stand-in for storage's parser: an 8-byte length, then that many bytes.
    fn length_prefixed(buf: &[u8]) -> Result<Option<usize>, String> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let n = u64::from_be_bytes(buf[..8].try_into().unwrap());
        if n > 1 << 30 {
            return Err(format!("length {n}"));
        }
        Ok((buf.len() as u64 >= 8 + n).then_some(8 + n as usize))
    }

    #[tokio::test]
    async fn snap_with_its_stream() {
        let peers = addrs(&[1, 2]);
        let scanning = NetLimits { snap_scanner: Arc::new(|_| (Box::new(length_prefixed), None)), ..NetLimits::default() };
        let (leader, mut lrx) = start(1, &peers, NetLimits::default()).await;
        let (learner, mut frx) = start(2, &peers, scanning).await;
        send(&learner, 1, Message::LearnerInfo { accepted_epoch: 1, observer: true });
        assert_eq!(next_message(&mut lrx).await, (ServerId(2), Message::LearnerInfo { accepted_epoch: 1, observer: true }));
        // 3 MiB: larger than any quorum packet may be, in many reads.
        let payload: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
        let mut stream = (payload.len() as u64).to_be_bytes().to_vec();
        stream.extend_from_slice(&payload);
        let snap = Message::Snap { zxid: Zxid::new(1, 9), snapshot: Bytes::from(stream).into() };
        send(&leader, 2, snap.clone());
        send(&leader, 2, Message::NewLeader { zxid: Zxid::new(2, 0), config: Bytes::new() });
        assert_eq!(next_message(&mut frx).await, (ServerId(1), snap));
        assert_eq!(next_message(&mut frx).await, (ServerId(1), Message::NewLeader { zxid: Zxid::new(2, 0), config: Bytes::new() }));

        // A stream the scanner rejects closes the connection; both ends report it.
        let bad = Message::Snap { zxid: Zxid::new(1, 9), snapshot: Bytes::from(vec![0xff; 16]).into() };
        send(&leader, 2, bad);
        expect_disconnected(&mut frx, 1).await;
        expect_disconnected(&mut lrx, 2).await;

        // Without a parser, a SNAP cannot be read: the default closes the connection.
        let peers = addrs(&[1, 2]);
        let (leader, mut lrx) = start(1, &peers, NetLimits::default()).await;
        let (learner, mut frx) = start(2, &peers, NetLimits::default()).await;
        send(&learner, 1, Message::LearnerInfo { accepted_epoch: 1, observer: false });
        next_message(&mut lrx).await;
        send(&leader, 2, Message::Snap { zxid: Zxid::new(1, 1), snapshot: Bytes::from_static(b"whatever").into() });
        expect_disconnected(&mut frx, 1).await;
    }

    /// `length_prefixed`, for a transport that drops what it passed: it remembers where it is.
    #[derive(Default)]
    struct PassingScanner {
        end: Option<usize>,
        gone: usize,
        passed: usize,
    }

    impl SnapStreamScanner for PassingScanner {
        fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, String> {
            if self.end.is_none() {
                match length_prefixed(buf)? {
                    Some(n) => return Ok(Some(n)),
                    None if buf.len() < 8 => return Ok(None),
                    None => self.end = Some(8 + u64::from_be_bytes(buf[..8].try_into().unwrap()) as usize),
                }
            }
            let end = self.end.expect("set");
            if self.gone + buf.len() >= end {
                return Ok(Some(end - self.gone));
            }
            self.passed = buf.len();
            Ok(None)
        }
        fn scanned(&self) -> usize {
            self.passed
        }
        fn dropped(&mut self, n: usize) {
            assert!(n <= self.passed);
            self.passed -= n;
            self.gone += n;
        }
    }

    /// A sink that gathers the chunks (failing after `fail_after` bytes, if given): the
    /// stream back, and the largest chunk seen.
    fn gathering_sink(fail_after: Option<usize>, largest: Arc<AtomicUsize>) -> SnapSink {
        let (tx, mut rx) = mpsc::channel::<Bytes>(2);
        let (done_tx, done) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut all = Vec::new();
            while let Some(c) = rx.recv().await {
                largest.fetch_max(c.len(), Ordering::Relaxed);
                all.extend_from_slice(&c);
                if fail_after.is_some_and(|n| all.len() > n) {
                    let _ = done_tx.send(Err("the decoder gave up".to_string()));
                    return;
                }
            }
            let _ = done_tx.send(Ok(SnapData::Stream(Bytes::from(all))));
        });
        SnapSink { chunks: tx, done }
    }

    #[tokio::test]
    async fn a_snap_handed_on_as_it_arrives() {
        let largest = Arc::new(AtomicUsize::new(0));
        let l2 = largest.clone();
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let f2 = fail.clone();
        let limits = NetLimits {
            snap_scanner: Arc::new(move |_| {
                let fail_after = f2.load(Ordering::Relaxed).then_some(1 << 20);
                (Box::new(PassingScanner::default()), Some(gathering_sink(fail_after, l2.clone())))
            }),
            ..NetLimits::default()
        };
        let peers = addrs(&[1, 2]);
        let (leader, mut lrx) = start(1, &peers, NetLimits::default()).await;
        let (learner, mut frx) = start(2, &peers, limits).await;
        send(&learner, 1, Message::LearnerInfo { accepted_epoch: 1, observer: true });
        next_message(&mut lrx).await;
        // 5 MiB, in many chunks: the sink gets it all, in order, never much at once.
        let payload: Vec<u8> = (0..5 << 20).map(|i: u32| (i % 241) as u8).collect();
        let mut stream = (payload.len() as u64).to_be_bytes().to_vec();
        stream.extend_from_slice(&payload);
        let snap = Message::Snap { zxid: Zxid::new(1, 9), snapshot: Bytes::from(stream.clone()).into() };
        send(&leader, 2, snap.clone());
        send(&leader, 2, Message::UpToDate);
        assert_eq!(next_message(&mut frx).await, (ServerId(1), snap.clone()));
        assert_eq!(next_message(&mut frx).await, (ServerId(1), Message::UpToDate));
        let big = largest.load(Ordering::Relaxed);
        assert!((SNAP_SINK_CHUNK_BYTES..1 << 20).contains(&big), "largest chunk {big}");
        // A sink that fails mid-stream closes the connection.
        fail.store(true, Ordering::Relaxed);
        send(&leader, 2, snap);
        expect_disconnected(&mut frx, 1).await;
        expect_disconnected(&mut lrx, 2).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_learner_retries_a_leader_that_is_not_listening_yet() {
        // A ZooKeeper leader opens its quorum port only after its election ends; a learner
        // that got there first must retry (ZooKeeper's Learner does), not give up at once.
        let peers = addrs(&[1, 2]);
        let (learner, mut frx) = start(2, &peers, NetLimits::default()).await;
        send(&learner, 1, Message::LearnerInfo { accepted_epoch: 4, observer: false });
        tokio::time::sleep(LEADER_CONNECT_RETRY_DELAY + Duration::from_millis(50)).await;
        let (_leader, mut lrx) = start(1, &peers, NetLimits::default()).await;
        assert_eq!(next_message(&mut lrx).await, (ServerId(2), Message::LearnerInfo { accepted_epoch: 4, observer: false }));
        assert!(frx.try_recv().is_err(), "the learner reported its connection as lost");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn disconnects_are_reported() {
        let peers = addrs(&[1, 2]);
        let (leader, mut lrx) = start(1, &peers, NetLimits::default()).await;
        // Nothing to send on: reported at once.
        send(&leader, 2, Message::Commit { zxid: Zxid::new(1, 1) });
        expect_disconnected(&mut lrx, 2).await;
        // A learner that cannot connect hears about it.
        let peers3 = addrs(&[1, 2, 3]);
        let (lonely, mut orx) = start(2, &peers3, NetLimits::default()).await;
        send(&lonely, 3, Message::LearnerInfo { accepted_epoch: 1, observer: false });
        expect_disconnected(&mut orx, 3).await;
        assert!(!lonely.has_quorum_connection(ServerId(3)));
        drop(lonely);

        // The learner goes away: the leader hears about it.
        let (learner, mut frx) = start(2, &peers, NetLimits::default()).await;
        send(&learner, 1, Message::LearnerInfo { accepted_epoch: 1, observer: false });
        next_message(&mut lrx).await;
        learner.shutdown().await;
        expect_disconnected(&mut lrx, 2).await;
        assert!(!leader.has_quorum_connection(ServerId(2)));
        drop(frx.try_recv());

        // disconnect() is not reported locally, but the other end sees the close.
        let (learner, mut frx) = start(2, &peers, NetLimits::default()).await;
        send(&learner, 1, Message::LearnerInfo { accepted_epoch: 1, observer: false });
        next_message(&mut lrx).await;
        leader.disconnect(ServerId(2));
        expect_disconnected(&mut frx, 1).await;
        assert!(lrx.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_connection() {
        let by_count = NetLimits { quorum_queue_max: 4, ..NetLimits::default() };
        let by_bytes = NetLimits { quorum_queue_bytes_max: 1 << 20, ..NetLimits::default() };
        for limits in [by_count, by_bytes] {
            // A "leader" that accepts and never reads.
            let peers = addrs(&[1, 2]);
            let sink = TcpListener::bind(("127.0.0.1", peers[&ServerId(1)].quorum_port)).await.unwrap();
            let (learner, mut frx) = start(2, &peers, limits).await;
            send(&learner, 1, Message::LearnerInfo { accepted_epoch: 1, observer: false });
            let (_held, _) = timeout(WAIT, sink.accept()).await.unwrap().unwrap();
            let big = Bytes::from(vec![7u8; 256 * 1024]);
            let mut sent = 0;
            while learner.has_quorum_connection(ServerId(1)) {
                // Each send returns at once, however stuck the socket is.
                let t = std::time::Instant::now();
                send(&learner, 1, Message::Proposal(Entry { zxid: Zxid::new(1, sent + 1), data: big.clone() }));
                assert!(t.elapsed() < Duration::from_secs(1));
                sent += 1;
                assert!(sent < 10_000, "the queue never filled");
                tokio::task::yield_now().await;
            }
            expect_disconnected(&mut frx, 1).await;
        }
    }

    #[tokio::test]
    async fn malformed_quorum_input_closes_the_connection() {
        let peers = addrs(&[1, 2]);
        let (leader, mut lrx) = start(1, &peers, NetLimits::default()).await;
        let info = |sid: i64, ty: i32| {
            let li = LearnerInfo { serverid: sid, protocol_version: ZAB_PROTOCOL_VERSION, config_version: 0 };
            encode(&QuorumPacket::with_data(ty, Zxid::new(1, 0), li.to_bytes()))
        };
        let hostile_len = {
            let mut b = unhex("00000002"); // PROPOSAL
            b.extend_from_slice(&1i64.to_be_bytes());
            b.extend_from_slice(&i32::MAX.to_be_bytes());
            b
        };
        // First packets that are not a learner's FOLLOWERINFO / OBSERVERINFO.
        for first in [
            encode(&QuorumPacket::new(pt::PING, Zxid(1))),
            info(1, pt::FOLLOWERINFO),
            encode(&QuorumPacket::with_data(pt::FOLLOWERINFO, Zxid(0), vec![1, 2])),
            hostile_len.clone(),
            unhex("0000000b0000000000000000fffffff9"),
        ] {
            let mut c = TcpStream::connect(leader.quorum_addr()).await.unwrap();
            c.write_all(&first).await.unwrap();
            expect_closed(&mut c).await;
        }
        assert!(lrx.try_recv().is_err(), "nothing reaches the driver");
        // A server outside the configuration may follow (a joining one): ZAB decides.
        let mut c9 = TcpStream::connect(leader.quorum_addr()).await.unwrap();
        c9.write_all(&info(9, pt::FOLLOWERINFO)).await.unwrap();
        assert_eq!(next_message(&mut lrx).await, (ServerId(9), Message::LearnerInfo { accepted_epoch: 1, observer: false }));
        drop(c9);
        expect_disconnected(&mut lrx, 9).await;

        // On an established connection: bad packets close it, and it is reported.
        for bad in [
            hostile_len,
            unhex("00000003000000000000000000000000fffffffb"),
            info(3, pt::FOLLOWERINFO),
            encode(&QuorumPacket::with_data(pt::ACKEPOCH, Zxid(0), vec![0])),
        ] {
            let mut c = TcpStream::connect(leader.quorum_addr()).await.unwrap();
            c.write_all(&info(2, pt::OBSERVERINFO)).await.unwrap();
            assert_eq!(next_message(&mut lrx).await, (ServerId(2), Message::LearnerInfo { accepted_epoch: 1, observer: true }));
            c.write_all(&bad).await.unwrap();
            expect_closed(&mut c).await;
            expect_disconnected(&mut lrx, 2).await;
        }
        // An unknown packet type is skipped, as ZooKeeper does; the connection stays.
        let mut c = TcpStream::connect(leader.quorum_addr()).await.unwrap();
        c.write_all(&info(2, pt::FOLLOWERINFO)).await.unwrap();
        next_message(&mut lrx).await;
        let odd = QuorumPacket::with_data(77, Zxid(5), vec![1]);
        c.write_all(&encode(&odd)).await.unwrap();
        c.write_all(&encode(&sync_packet())).await.unwrap();
        assert_eq!(next_member_msg(&mut lrx).await, (ServerId(2), PeerMsg::Sync));
        let _ = NOTIFICATION_VERSION;
    }

    /// A real Apache ZooKeeper 3.8 server, killed (and its directory removed) when dropped.
    struct ZooKeeperPeer {
        child: std::process::Child,
        dir: std::path::PathBuf,
        client_port: u16,
    }

    impl Drop for ZooKeeperPeer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            if std::env::var_os("RZK_KEEP_ZK_DIR").is_none() {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }

    const ZK_JARS: [&str; 5] = [
        "/usr/share/java/zookeeper.jar",
        "/usr/share/java/zookeeper-jute.jar",
        "/usr/share/java/slf4j-api.jar",
        "/usr/share/java/slf4j-log4j12.jar",
        "/usr/share/java/log4j-1.2.jar",
    ];

    /// Starts ZooKeeper as server `sid` of the ensemble `peers`, or `None` if it is not
    /// installed.
    fn start_zookeeper(sid: i64, peers: &BTreeMap<ServerId, PeerAddrs>, extra_jvm: &[&str]) -> Option<ZooKeeperPeer> {
        if !ZK_JARS.iter().all(|j| std::path::Path::new(j).exists()) {
            eprintln!("Apache ZooKeeper is not installed; skipping");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("rzk-peer-zk-{}-{}", std::process::id(), free_ports(1)[0]));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("data/myid"), format!("{sid}\n")).unwrap();
        let client_port = free_ports(1)[0];
        let mut cfg =
            format!("tickTime=500\ninitLimit=20\nsyncLimit=10\ndataDir={}\nclientPort={client_port}\n", dir.join("data").display());
        for (id, a) in peers {
            cfg += &format!("server.{id}=127.0.0.1:{}:{}\n", a.quorum_port, a.election_port);
        }
        std::fs::write(dir.join("zoo.cfg"), cfg).unwrap();
        std::fs::write(
            dir.join("log4j.properties"),
            format!(
                "log4j.rootLogger=INFO, F\nlog4j.appender.F=org.apache.log4j.FileAppender\nlog4j.appender.F.File={}\n\
                 log4j.appender.F.layout=org.apache.log4j.PatternLayout\nlog4j.appender.F.layout.ConversionPattern=%d %-5p [%t:%C{{1}}@%L] - %m%n\n",
                dir.join("zookeeper.log").display()
            ),
        )
        .unwrap();
        let mut cmd = std::process::Command::new("java");
        cmd.args(["-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData"])
            .arg(format!("-Dlog4j.configuration=file:{}", dir.join("log4j.properties").display()))
            .args(["-Dzookeeper.admin.enableServer=false", "-Dzookeeper.jmx.log4j.disable=true"])
            .args(extra_jvm)
            .arg("-cp")
            .arg(ZK_JARS.join(":"))
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(dir.join("zoo.cfg"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let child = cmd.spawn().ok()?;
        Some(ZooKeeperPeer { child, dir, client_port })
    }

    /// ZooKeeper's `QuorumVerifier.toString()` for `peers` (what its notifications carry).
    fn zk_config_text(peers: &BTreeMap<ServerId, PeerAddrs>) -> String {
        let mut t = String::new();
        for (id, a) in peers {
            t += &format!("server.{id}=127.0.0.1:{}:{}:participant\n", a.quorum_port, a.election_port);
        }
        t + "version=0"
    }

    impl NetEvent {
        fn message(self) -> Option<(ServerId, Message)> {
            match self {
                NetEvent::Message { from, msg } => Some((from, msg)),
                _ => None,
            }
        }
    }

    async fn next_zk(rx: &mut mpsc::Receiver<NetEvent>) -> NetEvent {
        loop {
            match timeout(Duration::from_secs(60), rx.recv()).await {
                // The configuration each ZooKeeper notification carries.
                Ok(Some(NetEvent::Message { msg: Message::ElectionConfig(_), .. })) => continue,
                Ok(Some(ev)) => return ev,
                other => panic!("no event from ZooKeeper in time ({other:?}); set RZK_KEEP_ZK_DIR=1 to keep its log"),
            }
        }
    }

    /// The next event that is not an election notification.
    async fn next_quorum(rx: &mut mpsc::Receiver<NetEvent>) -> NetEvent {
        loop {
            match next_zk(rx).await {
                NetEvent::Message { msg: Message::Notification(_), .. } => continue,
                ev => return ev,
            }
        }
    }

    /// Where ZooKeeper's SNAP stream ends: its `"BenWasHere"` signature (a jute string).
    fn find_signature(buf: &[u8]) -> Result<Option<usize>, String> {
        let sig = [&10i32.to_be_bytes()[..], b"BenWasHere"].concat();
        Ok(buf.windows(sig.len()).position(|w| w == sig.as_slice()).map(|p| p + sig.len()))
    }

    /// rzk's transport as server 2 of a two-server ensemble with a real ZooKeeper 3.8 as
    /// server 1: election (ZooKeeper connects to the larger sid and hangs up; we connect back),
    /// then we vote for ZooKeeper, follow it, and get LEADERINFO, a SNAP with its stream,
    /// NEWLEADER, UPTODATE and PINGs in ZooKeeper's own bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn follows_a_real_zookeeper_leader() {
        let peers = addrs(&[1, 2]);
        let Some(zk) = start_zookeeper(1, &peers, &["-Dzookeeper.forceSnapshotSync=true"]) else { return };
        let limits = NetLimits { snap_scanner: Arc::new(|_| (Box::new(find_signature), None)), ..NetLimits::default() };
        let (net, mut rx) = start(2, &peers, limits).await;
        let cfg = zk_config_text(&peers);
        // ZooKeeper's first vote: for itself.
        let zv = loop {
            if let NetEvent::Message { from, msg: Message::Notification(v) } = next_zk(&mut rx).await {
                assert_eq!(from, ServerId(1));
                break v;
            }
        };
        assert_eq!((zv.state, zv.leader), (ServerState::Looking, 1));
        // We agree: with both votes ZooKeeper leads (after its 200 ms finalize wait), and we
        // follow it: FOLLOWERINFO opens the quorum connection.
        let mine = Vote { state: ServerState::Looking, ..zv };
        net.send(ServerId(1), &Message::Notification(mine), ServerId(2), 0, cfg.as_bytes());
        let mut leader_info = None;
        for _ in 0..40 {
            net.send(ServerId(1), &Message::LearnerInfo { accepted_epoch: 0, observer: false }, ServerId(2), 0, b"");
            match timeout(Duration::from_millis(2000), rx.recv()).await {
                Ok(Some(NetEvent::Message { from, msg: m @ Message::LeaderInfo { .. } })) => {
                    assert_eq!(from, ServerId(1));
                    leader_info = Some(m);
                    break;
                }
                // The leader may not accept learners yet.
                Ok(Some(
                    NetEvent::Disconnected { .. } | NetEvent::Message { msg: Message::Notification(_) | Message::ElectionConfig(_), .. },
                ))
                | Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                other => panic!("{other:?}"),
            }
        }
        let Some(Message::LeaderInfo { epoch }) = leader_info else { panic!("no LEADERINFO from ZooKeeper") };
        assert_eq!(epoch, 1);
        net.send(ServerId(1), &Message::AckEpoch { current_epoch: Some(0), last_zxid: Zxid(0) }, ServerId(2), 0, b"");
        // A FOLLOWERINFO sent again (a slow LEADERINFO under load) opened a new connection
        // whose LEADERINFO may come after the first.
        let snap = loop {
            match next_quorum(&mut rx).await {
                NetEvent::Message { msg: Message::LeaderInfo { epoch: 1 }, .. } => continue,
                NetEvent::Message { from, msg: Message::Snap { zxid, snapshot } } => {
                    assert_eq!((from, zxid), (ServerId(1), Zxid(0)));
                    break snapshot.stream().expect("this transport buffers the stream").clone();
                }
                other => panic!("expected SNAP, got {other:?}"),
            }
        };
        assert!(snap.ends_with(b"BenWasHere"));
        if std::env::var_os("RZK_PRINT_ZK_SNAP").is_some() {
            eprintln!("zk snap stream: {}", snap.iter().map(|b| format!("{b:02x}")).collect::<String>());
        }
        let nl = match next_quorum(&mut rx).await {
            NetEvent::Message { msg: Message::NewLeader { zxid, .. }, .. } => zxid,
            other => panic!("expected NEWLEADER, got {other:?}"),
        };
        assert_eq!(nl, Zxid::new(1, 0));
        net.send(ServerId(1), &Message::Ack { zxid: nl }, ServerId(2), 0, b"");
        let mut got_uptodate = false;
        loop {
            match next_zk(&mut rx).await {
                NetEvent::Message { msg: Message::Notification(_), .. } => {}
                NetEvent::Message { msg: Message::UpToDate, .. } => got_uptodate = true,
                NetEvent::Message { msg: Message::Ping { zxid, .. }, .. } if got_uptodate => {
                    // Answer as a ZooKeeper learner does, with (empty) touches.
                    net.send_packet(ServerId(1), QuorumPacket { ty: pt::PING, zxid, data: Some(vec![]), authinfo: None });
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(net.has_quorum_connection(ServerId(1)));
        // A LOOKING notification now gets ZooKeeper's answer: it leads, in epoch 1.
        net.send(
            ServerId(1),
            &Message::Notification(Vote { election_epoch: zv.election_epoch + 1, ..mine }),
            ServerId(2),
            0,
            cfg.as_bytes(),
        );
        loop {
            match next_zk(&mut rx).await {
                NetEvent::Message { from, msg: Message::Notification(v) } => {
                    assert_eq!(from, ServerId(1));
                    assert_eq!((v.state, v.leader, v.peer_epoch), (ServerState::Leading, 1, 1));
                    break;
                }
                NetEvent::Message { msg: Message::Ping { .. }, .. } => {}
                other => panic!("{other:?}"),
            }
        }
        drop(zk);
        // ZooKeeper is gone: the connection breaks and is reported.
        loop {
            match next_zk(&mut rx).await {
                NetEvent::Disconnected { peer } => {
                    assert_eq!(peer, ServerId(1));
                    break;
                }
                NetEvent::Message { .. } => {}
                other => panic!("{other:?}"),
            }
        }
    }

    /// A four-letter word to a ZooKeeper client port.
    async fn four_letter(port: u16, word: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(word.as_bytes()).await.unwrap();
        let mut out = String::new();
        timeout(WAIT, s.read_to_string(&mut out)).await.unwrap().unwrap();
        out
    }

    /// rzk's transport as server 1 leading a real ZooKeeper 3.8 as server 2: ZooKeeper (the
    /// larger sid) connects to our election port and keeps the connection, adopts our vote
    /// (a newer history), follows us, takes our SNAP (ZooKeeper's own stream bytes), NEWLEADER
    /// and UPTODATE, logs and ACKs our PROPOSAL, applies our COMMIT and answers our PING.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leads_a_real_zookeeper_follower() {
        use rzk_proto::txn::{CreateTxn, Txn, TxnHeader, TxnRecord};
        use rzk_proto::{Acl, OpCode};
        let peers = addrs(&[1, 2]);
        let Some(zk) = start_zookeeper(2, &peers, &[]) else { return };
        let (net, mut rx) = start(1, &peers, NetLimits::default()).await;
        let cfg = zk_config_text(&peers);
        let send = |msg: Message| net.send(ServerId(2), &msg, ServerId(1), 0, cfg.as_bytes());
        let zv = loop {
            if let NetEvent::Message { from, msg: Message::Notification(v) } = next_zk(&mut rx).await {
                assert_eq!(from, ServerId(2));
                break v;
            }
        };
        assert_eq!((zv.state, zv.leader), (ServerState::Looking, 2));
        send(Message::Notification(Vote {
            state: ServerState::Looking,
            leader: 1,
            zxid: Zxid::new(1, 0).0,
            election_epoch: zv.election_epoch,
            peer_epoch: 1,
        }));
        // ZooKeeper adopts it, decides, follows: its FOLLOWERINFO arrives.
        assert_eq!(next_quorum(&mut rx).await.message(), Some((ServerId(2), Message::LearnerInfo { accepted_epoch: 0, observer: false })));
        send(Message::LeaderInfo { epoch: 2 });
        assert_eq!(
            next_quorum(&mut rx).await.message(),
            Some((ServerId(2), Message::AckEpoch { current_epoch: Some(0), last_zxid: Zxid(0) }))
        );
        let stream: String =
            include_str!("../../../proto/testdata/quorum/zk38_snap_stream_empty.hex").lines().filter(|l| !l.starts_with('#')).collect();
        send(Message::Snap { zxid: Zxid::new(1, 0), snapshot: Bytes::from(unhex(stream.trim())).into() });
        send(Message::NewLeader { zxid: Zxid::new(2, 0), config: Bytes::new() });
        assert_eq!(next_quorum(&mut rx).await.message(), Some((ServerId(2), Message::Ack { zxid: Zxid::new(2, 0) })));
        send(Message::UpToDate);
        let zxid = Zxid::new(2, 1);
        let rec = TxnRecord {
            header: TxnHeader { client_id: SessionId(0), cxid: 0, zxid, time: 1_700_000_000_000, op: OpCode::Create.code() },
            txn: Txn::Create {
                txn: CreateTxn {
                    path: "/rzk".into(),
                    data: Some(b"hi".to_vec()),
                    acl: vec![Acl { perms: 31, id: Id::new("world", "anyone") }],
                    ephemeral: false,
                    parent_cversion: -1,
                },
                create2: false,
            },
            digest: None,
        };
        send(Message::Proposal(Entry { zxid, data: Bytes::from(rec.to_bytes()) }));
        loop {
            match next_quorum(&mut rx).await.message() {
                Some((_, Message::Ack { zxid: z })) if z == zxid => break,
                Some((_, Message::Ack { .. })) => {}
                other => panic!("expected the proposal's ACK, got {other:?}"),
            }
        }
        send(Message::Commit { zxid });
        send(Message::Ping { zxid, data: Bytes::new() });
        match next_quorum(&mut rx).await {
            NetEvent::Message { from, msg: Message::Ping { data, .. } } => {
                assert_eq!(from, ServerId(2));
                assert!(rzk_proto::quorum::decode_touches(&data).is_ok());
            }
            other => panic!("expected a PING reply, got {other:?}"),
        }
        let srvr = four_letter(zk.client_port, "srvr").await;
        assert!(srvr.contains("Mode: follower"), "{srvr}");
        assert!(srvr.contains("Zxid: 0x200000001"), "{srvr}");
        drop(zk);
    }
}
