//! The records servers of an ensemble exchange, in ZooKeeper's own formats.
//!
//! Two ports, two framings (as in ZooKeeper 3.8):
//! - **quorum port** (leader ⇄ learners): back-to-back jute [`QuorumPacket`] records with *no*
//!   length prefix (`BinaryOutputArchive.writeRecord`). [`decode_quorum_packet`] reads one from
//!   the front of a buffer, telling "need more bytes" apart from "invalid", with a cap on the
//!   `data` length so a hostile prefix cannot make a reader wait for gigabytes. The packet
//!   types are [`packet_type`]; FOLLOWERINFO / OBSERVERINFO carry a [`LearnerInfo`]. After a
//!   SNAP packet the leader streams the serialized database and the string `"BenWasHere"`;
//!   that stream is the snapshot format's business, not this module's.
//! - **election port** (FastLeaderElection, via `QuorumCnxManager`): a connection starts with a
//!   [`ConnectionHeader`] (`InitialMessage`: protocol version -65536, sid, election address),
//!   then each message is a 4-byte length (1..=512 KiB) and a [`Notification`].
//!
//! Golden bytes in the tests come from Apache ZooKeeper 3.8.0's own classes
//! (`testdata/quorum/QuorumProbe.java`).

use crate::data::{Id, SessionId, Zxid};
use crate::jute::{DecodeError, Reader, Record, Writer};
use crate::jute_record;

/// `Leader.java`'s packet type numbers.
pub mod packet_type {
    pub const REQUEST: i32 = 1;
    pub const PROPOSAL: i32 = 2;
    pub const ACK: i32 = 3;
    pub const COMMIT: i32 = 4;
    pub const PING: i32 = 5;
    pub const REVALIDATE: i32 = 6;
    pub const SYNC: i32 = 7;
    pub const INFORM: i32 = 8;
    pub const COMMITANDACTIVATE: i32 = 9;
    pub const NEWLEADER: i32 = 10;
    pub const FOLLOWERINFO: i32 = 11;
    pub const UPTODATE: i32 = 12;
    pub const DIFF: i32 = 13;
    pub const TRUNC: i32 = 14;
    pub const SNAP: i32 = 15;
    pub const OBSERVERINFO: i32 = 16;
    pub const LEADERINFO: i32 = 17;
    pub const ACKEPOCH: i32 = 18;
    pub const INFORMANDACTIVATE: i32 = 19;

    /// The name `LearnerHandler.packetToString` uses, or `None` for an unknown type.
    pub fn name(ty: i32) -> Option<&'static str> {
        Some(match ty {
            REQUEST => "REQUEST",
            PROPOSAL => "PROPOSAL",
            ACK => "ACK",
            COMMIT => "COMMIT",
            PING => "PING",
            REVALIDATE => "REVALIDATE",
            SYNC => "SYNC",
            INFORM => "INFORM",
            COMMITANDACTIVATE => "COMMITANDACTIVATE",
            NEWLEADER => "NEWLEADER",
            FOLLOWERINFO => "FOLLOWERINFO",
            UPTODATE => "UPTODATE",
            DIFF => "DIFF",
            TRUNC => "TRUNC",
            SNAP => "SNAP",
            OBSERVERINFO => "OBSERVERINFO",
            LEADERINFO => "LEADERINFO",
            ACKEPOCH => "ACKEPOCH",
            INFORMANDACTIVATE => "INFORMANDACTIVATE",
            _ => return None,
        })
    }
}

/// The Zab protocol version learners and leaders announce (`0x10000`, "Zab 1.0").
pub const ZAB_PROTOCOL_VERSION: i32 = 0x10000;

/// The string a leader writes after a SNAP's serialized database.
pub const SNAP_SIGNATURE: &str = "BenWasHere";

/// `QuorumPacket`: every message on the quorum port. `data` and `authinfo` keep null (-1)
/// apart from empty, because ZooKeeper writes null for most packet types and the bytes must
/// match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumPacket {
    pub ty: i32,
    pub zxid: Zxid,
    pub data: Option<Vec<u8>>,
    pub authinfo: Option<Vec<Id>>,
}

impl QuorumPacket {
    /// A packet with null data and null authinfo, as ZooKeeper builds most of them.
    pub fn new(ty: i32, zxid: Zxid) -> QuorumPacket {
        QuorumPacket { ty, zxid, data: None, authinfo: None }
    }

    pub fn with_data(ty: i32, zxid: Zxid, data: Vec<u8>) -> QuorumPacket {
        QuorumPacket { ty, zxid, data: Some(data), authinfo: None }
    }

    /// The data, null read as empty.
    pub fn data(&self) -> &[u8] {
        self.data.as_deref().unwrap_or(&[])
    }
}

impl Record for QuorumPacket {
    const MIN_ENCODED_BYTES: usize = 4 + 8 + 4 + 4;
    fn write(&self, w: &mut Writer) {
        w.write_i32(self.ty);
        w.write_i64(self.zxid.0);
        w.write_buffer_opt(self.data.as_deref());
        match &self.authinfo {
            None => w.write_i32(-1),
            Some(v) => w.write_vec(v),
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ty = r.read_i32()?;
        let zxid = Zxid(r.read_i64()?);
        let data = r.read_buffer_opt()?;
        // A vector's null (-1) is read before committing to allocate.
        let save = r.clone();
        let authinfo = if r.read_i32()? == -1 {
            None
        } else {
            *r = save;
            Some(r.read_vec::<Id>()?)
        };
        Ok(QuorumPacket { ty, zxid, data, authinfo })
    }
}

/// What [`decode_quorum_packet`] found at the front of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketStatus {
    /// A whole packet, which took `len` bytes.
    Packet { packet: QuorumPacket, len: usize },
    /// More bytes are needed.
    Incomplete,
}

/// Why a quorum-port stream cannot be read any further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumStreamError {
    #[error("quorum packet field length {len} exceeds the limit {max}")]
    TooLarge { len: i64, max: usize },
    #[error("malformed quorum packet: {0}")]
    Malformed(DecodeError),
}

/// Reads one [`QuorumPacket`] from the front of a stream buffer (no length prefix on this
/// port). Every length field is checked against `max_field_bytes` (ZooKeeper's
/// `jute.maxbuffer`) before waiting for its bytes.
pub fn decode_quorum_packet(buf: &[u8], max_field_bytes: usize) -> Result<PacketStatus, QuorumStreamError> {
    // Walk the fixed layout first, checking lengths, so that "truncated" means "incomplete".
    let mut pos = 12usize; // type + zxid
    let len_at = |pos: usize| -> Option<i32> { buf.get(pos..pos + 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])) };
    let Some(dlen) = len_at(pos) else { return Ok(PacketStatus::Incomplete) };
    pos += 4;
    if dlen < -1 {
        return Err(QuorumStreamError::Malformed(DecodeError::NegativeLength(dlen)));
    }
    if dlen > 0 {
        if dlen as usize > max_field_bytes {
            return Err(QuorumStreamError::TooLarge { len: dlen as i64, max: max_field_bytes });
        }
        pos += dlen as usize;
    }
    let Some(n) = len_at(pos) else { return Ok(PacketStatus::Incomplete) };
    pos += 4;
    if n < -1 {
        return Err(QuorumStreamError::Malformed(DecodeError::NegativeLength(n)));
    }
    // Each Id is two length-prefixed strings; walk them too.
    for _ in 0..n.max(0) {
        for _ in 0..2 {
            let Some(l) = len_at(pos) else { return Ok(PacketStatus::Incomplete) };
            pos += 4;
            if l < -1 {
                return Err(QuorumStreamError::Malformed(DecodeError::NegativeLength(l)));
            }
            if l > 0 {
                if l as usize > max_field_bytes {
                    return Err(QuorumStreamError::TooLarge { len: l as i64, max: max_field_bytes });
                }
                pos += l as usize;
            }
        }
        if pos > buf.len() {
            return Ok(PacketStatus::Incomplete);
        }
    }
    if pos > buf.len() {
        return Ok(PacketStatus::Incomplete);
    }
    let mut r = Reader::new(&buf[..pos]);
    let packet = QuorumPacket::read(&mut r).map_err(QuorumStreamError::Malformed)?;
    debug_assert_eq!(r.position(), pos);
    Ok(PacketStatus::Packet { packet, len: pos })
}

jute_record! {
    /// `LearnerInfo`: the data of FOLLOWERINFO / OBSERVERINFO.
    pub struct LearnerInfo {
        pub serverid: i64,
        pub protocol_version: i32,
        pub config_version: i64,
    }
}

impl LearnerInfo {
    /// Reads a learner's info as `LearnerHandler.run` does: the sid if at least 8 bytes, the
    /// protocol version if at least 12, the config version if at least 20 (older learners
    /// send less). Missing fields are `None`.
    pub fn parse_lenient(data: &[u8]) -> (Option<i64>, Option<i32>, Option<i64>) {
        let mut r = Reader::new(data);
        let sid = if data.len() >= 8 { r.read_i64().ok() } else { None };
        let ver = if data.len() >= 12 { r.read_i32().ok() } else { None };
        let cfg = if data.len() >= 20 { r.read_i64().ok() } else { None };
        (sid, ver, cfg)
    }
}

/// `QuorumPeer.ServerState`, with the ordinals FastLeaderElection puts on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerState {
    Looking = 0,
    Following = 1,
    Leading = 2,
    Observing = 3,
}

impl ServerState {
    pub fn from_i32(v: i32) -> Option<ServerState> {
        Some(match v {
            0 => ServerState::Looking,
            1 => ServerState::Following,
            2 => ServerState::Leading,
            3 => ServerState::Observing,
            _ => return None,
        })
    }
}

/// `FastLeaderElection.Notification.CURRENTVERSION`: notifications carrying a config.
pub const NOTIFICATION_VERSION: i32 = 2;

/// The largest election message `QuorumCnxManager` accepts (`PACKETMAXSIZE`).
pub const ELECTION_MESSAGE_MAX_BYTES: usize = 512 * 1024;

/// A FastLeaderElection notification: `buildMsg`'s layout. `state` is kept raw because a
/// receiver drops unknown states silently, after the sender's identity is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub state: i32,
    /// The proposed leader's sid.
    pub leader: i64,
    /// The proposed leader's last zxid.
    pub zxid: i64,
    /// The sender's logical clock (election round).
    pub election_epoch: i64,
    /// The proposed leader's current epoch.
    pub peer_epoch: i64,
    /// Message format version (2 today; 0 for the 28/40-byte forms of old servers).
    pub version: i32,
    /// The sender's quorum configuration text (`QuorumVerifier.toString()`), version > 1 only.
    pub config: Vec<u8>,
}

impl Notification {
    /// Encodes as `buildMsg` with config data: 44 bytes plus the config.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(44 + self.config.len());
        w.write_i32(self.state);
        w.write_i64(self.leader);
        w.write_i64(self.zxid);
        w.write_i64(self.election_epoch);
        w.write_i64(self.peer_epoch);
        w.write_i32(self.version);
        w.write_buffer(&self.config);
        w.into_inner()
    }

    /// Decodes one election message (the bytes after the length prefix) as FastLeaderElection's
    /// receiver does: 28 bytes are the pre-3.4 form (peer epoch taken from the zxid), exactly
    /// 40 bytes carry a peer epoch but no version, otherwise a version follows and, when it is
    /// above 1, a config of at most the message's size.
    pub fn decode(b: &[u8]) -> Result<Notification, DecodeError> {
        if b.len() < 28 {
            return Err(DecodeError::Truncated { needed: 28, remaining: b.len() });
        }
        let mut r = Reader::new(b);
        let state = r.read_i32()?;
        let leader = r.read_i64()?;
        let zxid = r.read_i64()?;
        let election_epoch = r.read_i64()?;
        let (peer_epoch, version) = if b.len() == 28 {
            (Zxid(zxid).epoch() as i64, 0)
        } else {
            let pe = r.read_i64()?;
            if b.len() == 40 {
                (pe, 0)
            } else {
                (pe, r.read_i32()?)
            }
        };
        let mut config = Vec::new();
        if version > 1 {
            let n = r.read_i32()?;
            if n < 0 || n as usize > b.len() {
                return Err(DecodeError::Invalid("config length in notification"));
            }
            config = r.read_raw(n as usize)?.to_vec();
        }
        Ok(Notification { state, leader, zxid, election_epoch, peer_epoch, version, config })
    }

    /// The 4-byte length prefix and the message, as `QuorumCnxManager.SendWorker` writes it.
    pub fn encode_frame(&self) -> Vec<u8> {
        let body = self.encode();
        let mut out = Vec::with_capacity(4 + body.len());
        out.extend_from_slice(&(body.len() as i32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }
}

/// `QuorumCnxManager.PROTOCOL_VERSION_V1`: one election address in the header.
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// `PROTOCOL_VERSION_V2`: several addresses separated by `|`.
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// `QuorumCnxManager.maxBuffer`: the longest address text a header may carry.
pub const CONNECTION_HEADER_ADDR_MAX_BYTES: usize = 2048;

/// `QuorumAuth.QUORUM_AUTH_MAGIC_NUMBER`, Java's `-0xa0dbcafecafe1234L`: the first long of
/// every [`QuorumAuthPacket`]. (Java's hex literal is already negative, so the negation
/// makes it positive, 0x5f2435013501edcc, despite ZooKeeper's comment.)
pub const QUORUM_AUTH_MAGIC: i64 = (0xa0db_cafe_cafe_1234_u64 as i64).wrapping_neg();
/// The longest SASL token of a [`QuorumAuthPacket`] rzk reads (DIGEST-MD5's are < 1 KiB).
pub const QUORUM_AUTH_TOKEN_MAX_BYTES: usize = 64 * 1024;

/// `QuorumAuth.Status`.
pub mod quorum_auth_status {
    pub const IN_PROGRESS: i32 = 0;
    pub const SUCCESS: i32 = 1;
    pub const ERROR: i32 = -1;
}

/// `QuorumAuthPacket` (jute `qpconnect`): SASL between servers, before the election
/// header's notifications and before a learner's first quorum packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumAuthPacket {
    pub magic: i64,
    /// [`quorum_auth_status`].
    pub status: i32,
    /// The SASL token; `None` is jute's null buffer (length -1).
    pub token: Option<Vec<u8>>,
}

impl QuorumAuthPacket {
    /// A packet with the magic number.
    pub fn new(status: i32, token: Option<Vec<u8>>) -> Self {
        QuorumAuthPacket { magic: QUORUM_AUTH_MAGIC, status, token }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.write_i64(self.magic);
        w.write_i32(self.status);
        w.write_buffer_opt(self.token.as_deref());
        w.into_inner()
    }

    /// The token length of a packet whose first 16 bytes are `head` (magic, status, length):
    /// `None` for a null token; an error for a negative or too long one.
    pub fn token_len(head: &[u8; 16]) -> Result<Option<usize>, DecodeError> {
        let n = i32::from_be_bytes(head[12..16].try_into().expect("4 bytes"));
        match n {
            -1 => Ok(None),
            n if n < -1 => Err(DecodeError::NegativeLength(n)),
            n if n as usize > QUORUM_AUTH_TOKEN_MAX_BYTES => Err(DecodeError::Invalid("QuorumAuthPacket token too long")),
            n => Ok(Some(n as usize)),
        }
    }

    /// Decodes a whole packet.
    pub fn decode(b: &[u8]) -> Result<QuorumAuthPacket, DecodeError> {
        let mut r = Reader::new(b);
        Ok(QuorumAuthPacket { magic: r.read_i64()?, status: r.read_i32()?, token: r.read_buffer_opt()? })
    }
}

/// The first bytes on an election connection (`InitialMessage`): protocol version, the
/// connecting server's sid and its election address(es). Servers before 3.5 sent only the
/// sid (a non-negative first long); that form decodes with `protocol_version: None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionHeader {
    pub protocol_version: Option<i64>,
    pub sid: i64,
    /// `host:port` strings (`[v6addr]:port` for IPv6).
    pub addresses: Vec<String>,
}

impl ConnectionHeader {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self.protocol_version {
            None => w.write_i64(self.sid),
            Some(v) => {
                w.write_i64(v);
                w.write_i64(self.sid);
                w.write_buffer(self.addresses.join("|").as_bytes());
            }
        }
        w.into_inner()
    }

    /// Reads a header from the front of `b`: `Ok(None)` if more bytes are needed, else the
    /// header and the bytes it took. Errors are the cases `InitialMessage.parse` rejects.
    pub fn decode(b: &[u8]) -> Result<Option<(ConnectionHeader, usize)>, DecodeError> {
        let mut r = Reader::new(b);
        let Ok(first) = r.read_i64() else { return Ok(None) };
        if first >= 0 {
            return Ok(Some((ConnectionHeader { protocol_version: None, sid: first, addresses: vec![] }, 8)));
        }
        if first != PROTOCOL_VERSION_V1 && first != PROTOCOL_VERSION_V2 {
            return Err(DecodeError::Invalid("unrecognized election protocol version"));
        }
        let Ok(sid) = r.read_i64() else { return Ok(None) };
        let Ok(n) = r.read_i32() else { return Ok(None) };
        if n <= 0 || n as usize > CONNECTION_HEADER_ADDR_MAX_BYTES {
            return Err(DecodeError::Invalid("unreasonable address length in election header"));
        }
        let Ok(raw) = r.read_raw(n as usize) else { return Ok(None) };
        let text = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
        let mut addresses = Vec::new();
        for a in text.split('|') {
            if !is_host_port(a) {
                return Err(DecodeError::Invalid("badly formed address in election header"));
            }
            addresses.push(a.to_owned());
        }
        Ok(Some((ConnectionHeader { protocol_version: Some(first), sid, addresses }, r.position())))
    }
}

/// `host:port` or `[v6]:port` with a numeric port, as `ConfigUtils.getHostAndPort` accepts.
fn is_host_port(a: &str) -> bool {
    let (host, port) = if let Some(rest) = a.strip_prefix('[') {
        match rest.split_once("]:") {
            Some((h, p)) => (h, p),
            None => return false,
        }
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, p),
            _ => return false,
        }
    };
    !host.is_empty() && !port.is_empty() && port.parse::<u16>().is_ok()
}

/// The data of a learner's REQUEST (`Learner.request`): a client request forwarded to the
/// leader. On the wire: `long sessionId, int cxid, int type`, then the request body raw (no
/// length prefix, so it runs to the end of the data); the packet's zxid is -1 and its
/// authinfo the session's auth ids. `op` is `sync` for a sync (the leader answers with SYNC),
/// `createSession` with a 4-byte timeout body for a new session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedRequest {
    pub session_id: SessionId,
    pub cxid: i32,
    pub op: i32,
    pub body: Vec<u8>,
    pub auth: Vec<Id>,
}

impl ForwardedRequest {
    /// The REQUEST packet a ZooKeeper learner would send.
    pub fn to_packet(&self) -> QuorumPacket {
        let mut w = Writer::with_capacity(16 + self.body.len());
        w.write_i64(self.session_id.0);
        w.write_i32(self.cxid);
        w.write_i32(self.op);
        w.write_raw(&self.body);
        QuorumPacket { ty: packet_type::REQUEST, zxid: Zxid(-1), data: Some(w.into_inner()), authinfo: Some(self.auth.clone()) }
    }

    /// Reads a REQUEST packet as `LearnerHandler` does (null authinfo reads as no ids).
    pub fn from_packet(p: &QuorumPacket) -> Result<ForwardedRequest, DecodeError> {
        if p.ty != packet_type::REQUEST {
            return Err(DecodeError::Invalid("not a REQUEST packet"));
        }
        let mut r = Reader::new(p.data());
        let session_id = SessionId(r.read_i64()?);
        let cxid = r.read_i32()?;
        let op = r.read_i32()?;
        let body = r.rest().to_vec();
        Ok(ForwardedRequest { session_id, cxid, op, body, auth: p.authinfo.clone().unwrap_or_default() })
    }
}

/// A learner's REVALIDATE (`Learner.validateSession`): may this session, whose client just
/// reconnected here, go on? `long sessionId, int timeout`, zxid -1, no authinfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevalidateRequest {
    pub session_id: SessionId,
    pub timeout_ms: i32,
}

impl RevalidateRequest {
    pub fn to_packet(&self) -> QuorumPacket {
        let mut w = Writer::with_capacity(12);
        w.write_i64(self.session_id.0);
        w.write_i32(self.timeout_ms);
        QuorumPacket::with_data(packet_type::REVALIDATE, Zxid(-1), w.into_inner())
    }

    pub fn from_packet(p: &QuorumPacket) -> Result<RevalidateRequest, DecodeError> {
        if p.ty != packet_type::REVALIDATE {
            return Err(DecodeError::Invalid("not a REVALIDATE packet"));
        }
        let mut r = Reader::new(p.data());
        Ok(RevalidateRequest { session_id: SessionId(r.read_i64()?), timeout_ms: r.read_i32()? })
    }
}

/// The leader's answer to a REVALIDATE (`LearnerHandler`, which rewrites the request packet's
/// data, keeping its type, zxid and authinfo): `long sessionId, boolean valid` (one byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevalidateReply {
    pub session_id: SessionId,
    pub valid: bool,
}

impl RevalidateReply {
    /// The reply to a request that came with ZooKeeper's zxid (-1) and no authinfo.
    pub fn to_packet(&self) -> QuorumPacket {
        let mut w = Writer::with_capacity(9);
        w.write_i64(self.session_id.0);
        w.write_bool(self.valid);
        QuorumPacket::with_data(packet_type::REVALIDATE, Zxid(-1), w.into_inner())
    }

    /// Reads the reply as `Learner.revalidate` does (any non-zero byte is true).
    pub fn from_packet(p: &QuorumPacket) -> Result<RevalidateReply, DecodeError> {
        if p.ty != packet_type::REVALIDATE {
            return Err(DecodeError::Invalid("not a REVALIDATE packet"));
        }
        let mut r = Reader::new(p.data());
        let session_id = SessionId(r.read_i64()?);
        let valid = r.read_u8()? != 0;
        Ok(RevalidateReply { session_id, valid })
    }
}

/// The leader's answer to a learner's sync (`Leader.sendSync`): SYNC, zxid 0, no data.
pub fn sync_packet() -> QuorumPacket {
    QuorumPacket::new(packet_type::SYNC, Zxid(0))
}

/// The data of a learner's PING reply (`Learner.ping`): the sessions its clients touched,
/// each `long sessionId, int timeout`, back to back. A learner always sends this data, empty
/// or not, never null: ZooKeeper's leader reads it without a null check.
pub fn encode_touches(touches: &[(SessionId, i32)]) -> Vec<u8> {
    let mut w = Writer::with_capacity(12 * touches.len());
    for (s, t) in touches {
        w.write_i64(s.0);
        w.write_i32(*t);
    }
    w.into_inner()
}

/// Reads PING touches as `LearnerHandler` does; a partial last pair is an error (ZooKeeper's
/// handler fails on it too).
#[allow(clippy::manual_is_multiple_of)] // is_multiple_of is newer than rust-version
pub fn decode_touches(data: &[u8]) -> Result<Vec<(SessionId, i32)>, DecodeError> {
    if data.len() % 12 != 0 {
        return Err(DecodeError::Invalid("PING touches are not whole (session id, timeout) pairs"));
    }
    let mut r = Reader::new(data);
    let mut out = Vec::with_capacity(data.len() / 12);
    while !r.is_empty() {
        out.push((SessionId(r.read_i64()?), r.read_i32()?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_auth_packet_bytes() {
        let p = QuorumAuthPacket::new(quorum_auth_status::IN_PROGRESS, Some(vec![]));
        // The magic as Java writes -0xa0dbcafecafe1234L, status 0, an empty buffer.
        assert_eq!(p.encode(), [0x5f, 0x24, 0x35, 0x01, 0x35, 0x01, 0xed, 0xcc, 0, 0, 0, 0, 0, 0, 0, 0]);
        let e = QuorumAuthPacket::new(quorum_auth_status::ERROR, None).encode();
        assert_eq!(QuorumAuthPacket::token_len(&e[..16].try_into().unwrap()), Ok(None));
        assert_eq!(QuorumAuthPacket::decode(&e).unwrap().status, -1);
    }
    use proptest::prelude::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Hex strings printed by `testdata/quorum/QuorumProbe.java` (ZooKeeper 3.8.0's classes).
    fn golden(name: &str) -> Vec<u8> {
        let text = include_str!("../testdata/quorum/golden.txt");
        let line = text.lines().find(|l| l.split(' ').next() == Some(name)).expect("golden line");
        unhex(line.split(' ').nth(1).unwrap())
    }

    fn enc(p: &QuorumPacket) -> Vec<u8> {
        let mut w = Writer::new();
        p.write(&mut w);
        w.into_inner()
    }

    #[test]
    fn packet_type_numbers_match_leader_java() {
        use packet_type::*;
        let all = [
            (REQUEST, 1),
            (PROPOSAL, 2),
            (ACK, 3),
            (COMMIT, 4),
            (PING, 5),
            (REVALIDATE, 6),
            (SYNC, 7),
            (INFORM, 8),
            (COMMITANDACTIVATE, 9),
            (NEWLEADER, 10),
            (FOLLOWERINFO, 11),
            (UPTODATE, 12),
            (DIFF, 13),
            (TRUNC, 14),
            (SNAP, 15),
            (OBSERVERINFO, 16),
            (LEADERINFO, 17),
            (ACKEPOCH, 18),
            (INFORMANDACTIVATE, 19),
        ];
        for (t, n) in all {
            assert_eq!(t, n);
            assert!(name(t).is_some());
        }
        assert_eq!(name(0), None);
        assert_eq!(name(20), None);
    }

    #[test]
    fn golden_packets_from_zookeeper() {
        // Hand-checked: type 2, zxid 0x100000001, data length 3 + 01 02 03, authinfo null (-1).
        let p = QuorumPacket::with_data(packet_type::PROPOSAL, Zxid(0x1_0000_0001), vec![1, 2, 3]);
        assert_eq!(
            enc(&p),
            unhex("00000002" /*type*/)
                .into_iter()
                .chain(unhex("0000000100000001"))
                .chain(unhex("00000003010203"))
                .chain(unhex("ffffffff"))
                .collect::<Vec<_>>()
        );
        assert_eq!(enc(&p), golden("proposal"));
        let c = QuorumPacket::new(packet_type::COMMIT, Zxid(0x1_0000_0001));
        assert_eq!(enc(&c), golden("commit"));
        let u = QuorumPacket::new(packet_type::UPTODATE, Zxid(-1));
        assert_eq!(enc(&u), golden("uptodate"));
        let r =
            QuorumPacket { ty: packet_type::REQUEST, zxid: Zxid(-1), data: Some(vec![]), authinfo: Some(vec![Id::new("digest", "u:p")]) };
        assert_eq!(enc(&r), golden("request_auth"));
        for (name, p) in [("proposal", &p), ("commit", &c), ("uptodate", &u), ("request_auth", &r)] {
            let b = golden(name);
            assert_eq!(decode_quorum_packet(&b, 1 << 20), Ok(PacketStatus::Packet { packet: p.clone(), len: b.len() }));
            for cut in 0..b.len() {
                assert_eq!(decode_quorum_packet(&b[..cut], 1 << 20), Ok(PacketStatus::Incomplete), "{name} cut {cut}");
            }
        }
    }

    #[test]
    fn golden_learner_info_and_discovery() {
        let li = LearnerInfo { serverid: 3, protocol_version: ZAB_PROTOCOL_VERSION, config_version: 0x1_0000_0000 };
        assert_eq!(li.to_bytes(), golden("learnerinfo"));
        assert_eq!(LearnerInfo::parse_lenient(&li.to_bytes()), (Some(3), Some(0x10000), Some(0x1_0000_0000)));
        assert_eq!(LearnerInfo::parse_lenient(&3i64.to_be_bytes()), (Some(3), None, None));
        let fi = QuorumPacket::with_data(packet_type::FOLLOWERINFO, Zxid::new(2, 0), li.to_bytes());
        assert_eq!(enc(&fi), golden("followerinfo"));
        let info = QuorumPacket::with_data(packet_type::LEADERINFO, Zxid::new(3, 0), ZAB_PROTOCOL_VERSION.to_be_bytes().to_vec());
        assert_eq!(enc(&info), golden("leaderinfo"));
    }

    #[test]
    fn golden_notification() {
        let cfg = b"server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nversion=0".to_vec();
        let n = Notification {
            state: ServerState::Leading as i32,
            leader: 3,
            zxid: 0x2_0000_0005,
            election_epoch: 7,
            peer_epoch: 2,
            version: NOTIFICATION_VERSION,
            config: cfg,
        };
        assert_eq!(n.encode(), golden("notification"));
        assert_eq!(Notification::decode(&golden("notification")).unwrap(), n);
        let f = n.encode_frame();
        assert_eq!(&f[..4], &(n.encode().len() as i32).to_be_bytes());
        // The 40-byte form: read as "peer epoch but no version" even though a 1 is written there.
        let old = Notification::decode(&golden("notification40")).unwrap();
        assert_eq!((old.state, old.leader, old.zxid, old.election_epoch, old.peer_epoch, old.version), (0, 1, 0, 1, 0, 0));
        // The 28-byte form: the peer epoch comes from the zxid.
        let mut b28 = golden("notification")[..28].to_vec();
        b28[12..20].copy_from_slice(&0x5_0000_0001i64.to_be_bytes());
        assert_eq!(Notification::decode(&b28).unwrap().peer_epoch, 5);
        assert!(Notification::decode(&b28[..27]).is_err());
        // A config length larger than the message is rejected, not allocated.
        let mut bad = n.encode();
        bad[40..44].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(Notification::decode(&bad).is_err());
    }

    #[test]
    fn golden_connection_header() {
        let h = ConnectionHeader { protocol_version: Some(PROTOCOL_VERSION_V1), sid: 2, addresses: vec!["127.0.0.1:3888".into()] };
        let b = golden("initial");
        assert_eq!(h.encode(), b);
        assert_eq!(ConnectionHeader::decode(&b), Ok(Some((h, b.len()))));
        for cut in 0..b.len() {
            assert_eq!(ConnectionHeader::decode(&b[..cut]), Ok(None));
        }
        let legacy = 7i64.to_be_bytes();
        assert_eq!(ConnectionHeader::decode(&legacy).unwrap().unwrap().0.sid, 7);
        let v2 = ConnectionHeader {
            protocol_version: Some(PROTOCOL_VERSION_V2),
            sid: 9,
            addresses: vec!["10.0.0.1:3888".into(), "[::1]:3889".into()],
        };
        assert_eq!(ConnectionHeader::decode(&v2.encode()).unwrap().unwrap().0, v2);
        let mut w = Writer::new();
        w.write_i64(-5);
        assert!(ConnectionHeader::decode(w.as_slice()).is_err());
        let mut w = Writer::new();
        w.write_i64(PROTOCOL_VERSION_V1);
        w.write_i64(1);
        w.write_i32(5000);
        assert!(ConnectionHeader::decode(w.as_slice()).is_err());
        let bad = ConnectionHeader { protocol_version: Some(PROTOCOL_VERSION_V1), sid: 1, addresses: vec!["nohost".into()] };
        assert!(ConnectionHeader::decode(&bad.encode()).is_err());
    }

    #[test]
    fn hostile_lengths() {
        let mut w = Writer::new();
        w.write_i32(2);
        w.write_i64(1);
        w.write_i32(i32::MAX);
        assert!(matches!(decode_quorum_packet(w.as_slice(), 1 << 20), Err(QuorumStreamError::TooLarge { .. })));
        let mut w = Writer::new();
        w.write_i32(2);
        w.write_i64(1);
        w.write_i32(-7);
        assert!(matches!(decode_quorum_packet(w.as_slice(), 1 << 20), Err(QuorumStreamError::Malformed(_))));
    }

    #[test]
    fn learner_request_revalidate_and_ping_layouts() {
        // REQUEST: Learner.request's DataOutputStream bytes (long, int, int, raw body), zxid -1,
        // the session's auth ids; the same packet layout as the golden request_auth above.
        let fr = ForwardedRequest {
            session_id: SessionId(0x0100_0000_0000_0002),
            cxid: 7,
            op: 5,
            body: vec![0xaa, 0xbb],
            auth: vec![Id::new("digest", "u:p")],
        };
        let p = fr.to_packet();
        assert_eq!(
            p.data(),
            unhex("0100000000000002" /*session*/)
                .into_iter()
                .chain(unhex("00000007"))
                .chain(unhex("00000005"))
                .chain(unhex("aabb"))
                .collect::<Vec<_>>()
        );
        assert_eq!((p.ty, p.zxid), (packet_type::REQUEST, Zxid(-1)));
        assert_eq!(ForwardedRequest::from_packet(&p), Ok(fr.clone()));
        // The golden REQUEST from ZooKeeper has empty data: too short for a request.
        let g = QuorumPacket::from_bytes(&golden("request_auth")).unwrap();
        assert!(ForwardedRequest::from_packet(&g).is_err());
        let no_auth = QuorumPacket { authinfo: None, ..p.clone() };
        assert_eq!(ForwardedRequest::from_packet(&no_auth).unwrap().auth, vec![]);
        assert!(ForwardedRequest::from_packet(&QuorumPacket { ty: packet_type::PING, ..p }).is_err());

        // REVALIDATE request: long sessionId, int timeout; zxid -1; null authinfo.
        let rq = RevalidateRequest { session_id: SessionId(0x1234), timeout_ms: 3000 };
        let p = rq.to_packet();
        assert_eq!(
            enc(&p),
            unhex("00000006" /*type*/)
                .into_iter()
                .chain(unhex("ffffffffffffffff"))
                .chain(unhex("0000000c"))
                .chain(unhex("0000000000001234"))
                .chain(unhex("00000bb8"))
                .chain(unhex("ffffffff"))
                .collect::<Vec<_>>()
        );
        assert_eq!(RevalidateRequest::from_packet(&p), Ok(rq));
        // Reply: long sessionId, boolean valid (1 byte).
        let rp = RevalidateReply { session_id: SessionId(0x1234), valid: true };
        assert_eq!(rp.to_packet().data(), unhex("000000000000123401"));
        assert_eq!(RevalidateReply::from_packet(&rp.to_packet()), Ok(rp));
        let mut odd = rp.to_packet();
        odd.data.as_mut().unwrap()[8] = 7;
        assert!(RevalidateReply::from_packet(&odd).unwrap().valid);
        let invalid = RevalidateReply { session_id: SessionId(9), valid: false };
        assert_eq!(RevalidateReply::from_packet(&invalid.to_packet()), Ok(invalid));
        assert!(RevalidateReply::from_packet(&QuorumPacket::with_data(packet_type::REVALIDATE, Zxid(-1), vec![0; 8])).is_err());

        // SYNC from the leader: type 7, zxid 0, null data and authinfo.
        assert_eq!(enc(&sync_packet()), unhex("000000070000000000000000ffffffffffffffff"));

        // PING touches.
        let t = vec![(SessionId(1), 4000), (SessionId(-2), 30000)];
        let b = encode_touches(&t);
        assert_eq!(b, unhex("000000000000000100000fa0fffffffffffffffe00007530"));
        assert_eq!(decode_touches(&b), Ok(t));
        assert_eq!(decode_touches(&[]), Ok(vec![]));
        assert!(encode_touches(&[]).is_empty());
        assert!(decode_touches(&b[..13]).is_err());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_quorum_packet(&b, 64);
            let _ = Notification::decode(&b);
            let _ = ConnectionHeader::decode(&b);
            let _ = LearnerInfo::parse_lenient(&b);
            let _ = QuorumPacket::from_bytes(&b);
            let _ = decode_touches(&b);
            for ty in [packet_type::REQUEST, packet_type::REVALIDATE] {
                let p = QuorumPacket::with_data(ty, Zxid(-1), b.clone());
                let _ = ForwardedRequest::from_packet(&p);
                let _ = RevalidateRequest::from_packet(&p);
                let _ = RevalidateReply::from_packet(&p);
            }
        }

        #[test]
        fn packets_round_trip(ty in any::<i32>(), zxid in any::<i64>(), data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
                              auth in proptest::option::of(proptest::collection::vec(("[a-z]{0,6}", "[a-z:]{0,8}"), 0..3))) {
            let p = QuorumPacket { ty, zxid: Zxid(zxid), data, authinfo: auth.map(|v| v.into_iter().map(|(s, i)| Id::new(&s, &i)).collect()) };
            let b = enc(&p);
            prop_assert_eq!(decode_quorum_packet(&b, 1 << 20), Ok(PacketStatus::Packet { packet: p, len: b.len() }));
        }

        #[test]
        fn notifications_round_trip(state in 0i32..4, leader in any::<i64>(), zxid in any::<i64>(), ee in any::<i64>(), pe in any::<i64>(), cfg in proptest::collection::vec(any::<u8>(), 0..64)) {
            let n = Notification { state, leader, zxid, election_epoch: ee, peer_epoch: pe, version: NOTIFICATION_VERSION, config: cfg };
            prop_assert_eq!(Notification::decode(&n.encode()).unwrap(), n);
        }
    }
}
