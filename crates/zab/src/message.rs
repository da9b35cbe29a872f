//! The messages of election and ZAB, typed, and their mapping onto ZooKeeper's wire records
//! (`rzk_proto::quorum`): [`Message::to_packet`] / [`Message::from_packet`] for the quorum
//! port, [`Vote`] ⇄ `quorum::Notification` for the election port.

use bytes::Bytes;
use rzk_proto::quorum::{
    packet_type as pt, LearnerInfo, Notification, QuorumPacket, ServerState, NOTIFICATION_VERSION, ZAB_PROTOCOL_VERSION,
};
use rzk_proto::{DecodeError, Record, Zxid};
use std::any::Any;
use std::sync::Arc;

use crate::types::{Entry, Epoch, ServerId};

/// The state machine a SNAP carries, as the host's transport hands it over: opaque to the
/// node, which passes it on to `StorageOp::InstallSnapshot` unopened.
#[derive(Clone)]
pub enum SnapData {
    /// The serialized database, exactly as on the wire (what a leader sends, and what a
    /// learner whose transport buffers the stream receives).
    Stream(Bytes),
    /// A stream the host's transport took apart while it arrived (a learner that decodes
    /// it in bounded memory): the host's own type, shared; the state machine and the
    /// storage each take their part of it out.
    Received(Arc<dyn Any + Send + Sync>),
}

impl SnapData {
    /// The wire bytes, if this is a stream (only a stream can be sent).
    pub fn stream(&self) -> Option<&Bytes> {
        match self {
            SnapData::Stream(b) => Some(b),
            SnapData::Received(_) => None,
        }
    }
}

impl From<Bytes> for SnapData {
    fn from(b: Bytes) -> SnapData {
        SnapData::Stream(b)
    }
}

impl PartialEq for SnapData {
    fn eq(&self, other: &SnapData) -> bool {
        match (self, other) {
            (SnapData::Stream(a), SnapData::Stream(b)) => a == b,
            (SnapData::Received(a), SnapData::Received(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for SnapData {}

impl std::fmt::Debug for SnapData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapData::Stream(b) => write!(f, "Stream({} bytes)", b.len()),
            SnapData::Received(_) => f.write_str("Received"),
        }
    }
}

/// A FastLeaderElection notification without its config text: what a server proposes (or
/// follows), in which election round, and its own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    pub state: ServerState,
    /// Proposed leader (`Long.MIN_VALUE` for an observer's initial vote).
    pub leader: i64,
    pub zxid: i64,
    pub election_epoch: i64,
    pub peer_epoch: i64,
}

impl Vote {
    /// The election-port record; `config` is `Config::config_data`.
    pub fn to_notification(&self, config: &[u8]) -> Notification {
        Notification {
            state: self.state as i32,
            leader: self.leader,
            zxid: self.zxid,
            election_epoch: self.election_epoch,
            peer_epoch: self.peer_epoch,
            version: NOTIFICATION_VERSION,
            config: config.to_vec(),
        }
    }

    /// `None` for an unknown state, which FastLeaderElection drops.
    pub fn from_notification(n: &Notification) -> Option<Vote> {
        Some(Vote {
            state: ServerState::from_i32(n.state)?,
            leader: n.leader,
            zxid: n.zxid,
            election_epoch: n.election_epoch,
            peer_epoch: n.peer_epoch,
        })
    }
}

/// Everything servers say to each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Election port.
    Notification(Vote),
    /// The configuration a notification carried (its `config` bytes): the transport hands
    /// it to the node just before the notification itself, and the node sends one before
    /// each of its notifications when reconfig is enabled (a transport that puts the
    /// configuration in every notification, as ZooKeeper's, drops these). A LOOKING node
    /// takes a newer configuration from it (FastLeaderElection's `processReconfig`).
    ElectionConfig(Bytes),
    /// FOLLOWERINFO / OBSERVERINFO: a learner's first packet, with its accepted epoch.
    LearnerInfo {
        accepted_epoch: Epoch,
        observer: bool,
    },
    /// LEADERINFO: the epoch the leader proposes.
    LeaderInfo {
        epoch: Epoch,
    },
    /// ACKEPOCH: the learner's current epoch (`None` = it had already accepted this epoch and
    /// this reply does not count as an ack, ZooKeeper's -1) and its last logged zxid.
    AckEpoch {
        current_epoch: Option<Epoch>,
        last_zxid: Zxid,
    },
    Diff {
        zxid: Zxid,
    },
    Trunc {
        zxid: Zxid,
    },
    /// SNAP and the serialized state machine that follows it on the wire.
    Snap {
        zxid: Zxid,
        snapshot: SnapData,
    },
    Proposal(Entry),
    Commit {
        zxid: Zxid,
    },
    /// INFORM: a committed txn, to observers.
    Inform(Entry),
    /// COMMITANDACTIVATE: the commit of a reconfig txn; every follower activates the new
    /// configuration, with `leader` as the designated leader. (rzk leaders never send it:
    /// they carry no reconfig out; a ZooKeeper leader does.)
    CommitAndActivate {
        zxid: Zxid,
        leader: ServerId,
    },
    /// INFORMANDACTIVATE: COMMITANDACTIVATE for observers, with the committed txn.
    InformAndActivate {
        entry: Entry,
        leader: ServerId,
    },
    /// `config`: the leader's configuration text (ZooKeeper's leader sends its
    /// QuorumVerifier); when sent empty, the configuration in force goes out.
    NewLeader {
        zxid: Zxid,
        config: Bytes,
    },
    Ack {
        zxid: Zxid,
    },
    UpToDate,
    /// PING: from the leader with its last proposed zxid; echoed by learners with their
    /// session touches (`long sessionId, int timeout` pairs).
    Ping {
        zxid: Zxid,
        data: Bytes,
    },
}

/// Why a quorum packet is not a message this core understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("unknown or unsupported quorum packet type {0}")]
    UnsupportedType(i32),
    #[error("malformed {0} packet")]
    Malformed(&'static str),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl Message {
    /// The ZooKeeper name of the message (`PROPOSAL`, `NEWLEADER`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Message::Notification(_) => "NOTIFICATION",
            Message::ElectionConfig(_) => "NOTIFICATION(config)",
            Message::LearnerInfo { observer: false, .. } => "FOLLOWERINFO",
            Message::LearnerInfo { observer: true, .. } => "OBSERVERINFO",
            Message::LeaderInfo { .. } => "LEADERINFO",
            Message::AckEpoch { .. } => "ACKEPOCH",
            Message::Diff { .. } => "DIFF",
            Message::Trunc { .. } => "TRUNC",
            Message::Snap { .. } => "SNAP",
            Message::Proposal(_) => "PROPOSAL",
            Message::Commit { .. } => "COMMIT",
            Message::Inform(_) => "INFORM",
            Message::CommitAndActivate { .. } => "COMMITANDACTIVATE",
            Message::InformAndActivate { .. } => "INFORMANDACTIVATE",
            Message::NewLeader { .. } => "NEWLEADER",
            Message::Ack { .. } => "ACK",
            Message::UpToDate => "UPTODATE",
            Message::Ping { .. } => "PING",
        }
    }

    /// The quorum packet ZooKeeper would send for this message; `None` for election
    /// notifications. `my_id` and `config_version` fill LearnerInfo; `config` fills NEWLEADER.
    /// A SNAP's snapshot bytes are not part of the packet: they follow it on the stream.
    pub fn to_packet(&self, my_id: ServerId, config_version: i64, config: &[u8]) -> Option<QuorumPacket> {
        let z = QuorumPacket::new;
        Some(match self {
            Message::Notification(_) | Message::ElectionConfig(_) => return None,
            Message::LearnerInfo { accepted_epoch, observer } => {
                let li = LearnerInfo { serverid: my_id.0, protocol_version: ZAB_PROTOCOL_VERSION, config_version };
                QuorumPacket::with_data(
                    if *observer { pt::OBSERVERINFO } else { pt::FOLLOWERINFO },
                    Zxid::new(*accepted_epoch, 0),
                    li.to_bytes(),
                )
            }
            Message::LeaderInfo { epoch } => {
                QuorumPacket::with_data(pt::LEADERINFO, Zxid::new(*epoch, 0), ZAB_PROTOCOL_VERSION.to_be_bytes().to_vec())
            }
            Message::AckEpoch { current_epoch, last_zxid } => {
                let e: i32 = current_epoch.map(|e| e as i32).unwrap_or(-1);
                QuorumPacket::with_data(pt::ACKEPOCH, *last_zxid, e.to_be_bytes().to_vec())
            }
            Message::Diff { zxid } => z(pt::DIFF, *zxid),
            Message::Trunc { zxid } => z(pt::TRUNC, *zxid),
            Message::Snap { zxid, .. } => z(pt::SNAP, *zxid),
            Message::Proposal(e) => QuorumPacket::with_data(pt::PROPOSAL, e.zxid, e.data.to_vec()),
            Message::Commit { zxid } => z(pt::COMMIT, *zxid),
            Message::Inform(e) => QuorumPacket::with_data(pt::INFORM, e.zxid, e.data.to_vec()),
            // Leader.commitAndActivate: the designated leader as a long.
            Message::CommitAndActivate { zxid, leader } => {
                QuorumPacket::with_data(pt::COMMITANDACTIVATE, *zxid, leader.0.to_be_bytes().to_vec())
            }
            // Leader.buildInformAndActivePacket: the designated leader, then the txn.
            Message::InformAndActivate { entry, leader } => {
                let mut d = leader.0.to_be_bytes().to_vec();
                d.extend_from_slice(&entry.data);
                QuorumPacket::with_data(pt::INFORMANDACTIVATE, entry.zxid, d)
            }
            Message::NewLeader { zxid, config: own } => {
                // The leader's own text (a versioned initial configuration), else the one in force.
                let data = if own.is_empty() { config } else { own };
                QuorumPacket::with_data(pt::NEWLEADER, *zxid, data.to_vec())
            }
            Message::Ack { zxid } => z(pt::ACK, *zxid),
            Message::UpToDate => z(pt::UPTODATE, Zxid(-1)),
            Message::Ping { zxid, data } => {
                if data.is_empty() {
                    z(pt::PING, *zxid)
                } else {
                    QuorumPacket::with_data(pt::PING, *zxid, data.to_vec())
                }
            }
        })
    }

    /// Reads a quorum packet. For SNAP, `snapshot` is the serialized database the transport
    /// read after the packet. Returns the sender's LearnerInfo sid for FOLLOWERINFO /
    /// OBSERVERINFO as the second value when present.
    pub fn from_packet(p: &QuorumPacket, snapshot: Option<SnapData>) -> Result<(Message, Option<i64>), MessageError> {
        let data = || Bytes::copy_from_slice(p.data());
        let m = match p.ty {
            pt::FOLLOWERINFO | pt::OBSERVERINFO => {
                let (sid, _, _) = LearnerInfo::parse_lenient(p.data());
                return Ok((Message::LearnerInfo { accepted_epoch: p.zxid.epoch(), observer: p.ty == pt::OBSERVERINFO }, sid));
            }
            pt::LEADERINFO => Message::LeaderInfo { epoch: p.zxid.epoch() },
            pt::ACKEPOCH => {
                let d = p.data();
                if d.len() < 4 {
                    return Err(MessageError::Malformed("ACKEPOCH"));
                }
                let e = i32::from_be_bytes([d[0], d[1], d[2], d[3]]);
                Message::AckEpoch { current_epoch: if e < 0 { None } else { Some(e as u32) }, last_zxid: p.zxid }
            }
            pt::DIFF => Message::Diff { zxid: p.zxid },
            pt::TRUNC => Message::Trunc { zxid: p.zxid },
            pt::SNAP => Message::Snap { zxid: p.zxid, snapshot: snapshot.ok_or(MessageError::Malformed("SNAP without snapshot"))? },
            pt::PROPOSAL => Message::Proposal(Entry { zxid: p.zxid, data: data() }),
            pt::COMMIT => Message::Commit { zxid: p.zxid },
            pt::INFORM => Message::Inform(Entry { zxid: p.zxid, data: data() }),
            pt::COMMITANDACTIVATE | pt::INFORMANDACTIVATE => {
                let d = p.data();
                let Some(sid) = d.get(..8) else {
                    return Err(MessageError::Malformed(if p.ty == pt::COMMITANDACTIVATE {
                        "COMMITANDACTIVATE"
                    } else {
                        "INFORMANDACTIVATE"
                    }));
                };
                let leader = ServerId(i64::from_be_bytes(sid.try_into().expect("8 bytes")));
                if p.ty == pt::COMMITANDACTIVATE {
                    Message::CommitAndActivate { zxid: p.zxid, leader }
                } else {
                    Message::InformAndActivate { entry: Entry { zxid: p.zxid, data: Bytes::copy_from_slice(&d[8..]) }, leader }
                }
            }
            pt::NEWLEADER => Message::NewLeader { zxid: p.zxid, config: Bytes::from(p.data.clone().unwrap_or_default()) },
            pt::ACK => Message::Ack { zxid: p.zxid },
            pt::UPTODATE => Message::UpToDate,
            pt::PING => Message::Ping { zxid: p.zxid, data: data() },
            t => return Err(MessageError::UnsupportedType(t)),
        };
        Ok((m, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::Writer;

    fn bytes_of(p: &QuorumPacket) -> Vec<u8> {
        let mut w = Writer::new();
        p.write(&mut w);
        w.into_inner()
    }

    #[test]
    fn messages_map_to_zookeeper_packets_and_back() {
        let e = Entry { zxid: Zxid::new(2, 5), data: Bytes::from_static(b"txn") };
        let msgs = vec![
            Message::LearnerInfo { accepted_epoch: 2, observer: false },
            Message::LearnerInfo { accepted_epoch: 0, observer: true },
            Message::LeaderInfo { epoch: 3 },
            Message::AckEpoch { current_epoch: Some(2), last_zxid: Zxid::new(2, 9) },
            Message::AckEpoch { current_epoch: None, last_zxid: Zxid::new(2, 9) },
            Message::Diff { zxid: Zxid::new(2, 9) },
            Message::Trunc { zxid: Zxid::new(2, 7) },
            Message::Snap { zxid: Zxid::new(2, 7), snapshot: SnapData::Stream(Bytes::from_static(b"snap")) },
            Message::Proposal(e.clone()),
            Message::Commit { zxid: e.zxid },
            Message::Inform(e.clone()),
            Message::CommitAndActivate { zxid: e.zxid, leader: ServerId(2) },
            Message::InformAndActivate { entry: e.clone(), leader: ServerId(2) },
            Message::NewLeader { zxid: Zxid::new(3, 0), config: Bytes::new() },
            Message::Ack { zxid: e.zxid },
            Message::UpToDate,
            Message::Ping { zxid: e.zxid, data: Bytes::new() },
        ];
        for m in msgs {
            let p = m.to_packet(ServerId(3), 0, b"").unwrap();
            let snap = if let Message::Snap { snapshot, .. } = &m { Some(snapshot.clone()) } else { None };
            let (back, sid) = Message::from_packet(&p, snap).unwrap();
            assert_eq!(back, m);
            if matches!(m, Message::LearnerInfo { .. }) {
                assert_eq!(sid, Some(3));
            }
        }
    }

    #[test]
    fn packet_bytes_are_zookeepers() {
        // Same bytes as ZooKeeper 3.8.0's `new QuorumPacket(Leader.COMMIT, 0x100000001L, null, null)`.
        let p = Message::Commit { zxid: Zxid(0x1_0000_0001) }.to_packet(ServerId(1), 0, b"").unwrap();
        assert_eq!(bytes_of(&p), [0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        // ACKEPOCH data is the current epoch as a 4-byte int, -1 for "already accepted".
        let p = Message::AckEpoch { current_epoch: None, last_zxid: Zxid(7) }.to_packet(ServerId(1), 0, b"").unwrap();
        assert_eq!(p.data(), &[0xff, 0xff, 0xff, 0xff]);
        assert!(Message::from_packet(&QuorumPacket::new(pt::ACKEPOCH, Zxid(1)), None).is_err());
        // Leader.commitAndActivate(0x100000002L, 3): type 9, the zxid, data = the long 3.
        let p = Message::CommitAndActivate { zxid: Zxid(0x1_0000_0002), leader: ServerId(3) }.to_packet(ServerId(1), 0, b"").unwrap();
        assert_eq!(bytes_of(&p), [0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]);
        // INFORMANDACTIVATE: the long, then the txn bytes.
        let e = Entry { zxid: Zxid(5), data: Bytes::from_static(b"tx") };
        let p = Message::InformAndActivate { entry: e, leader: ServerId(1) }.to_packet(ServerId(1), 0, b"").unwrap();
        assert_eq!(p.data(), &[0, 0, 0, 0, 0, 0, 0, 1, b't', b'x']);
        assert!(Message::from_packet(&QuorumPacket::with_data(pt::COMMITANDACTIVATE, Zxid(1), vec![0; 7]), None).is_err());
        assert!(Message::from_packet(&QuorumPacket::new(99, Zxid(1)), None).is_err());
    }
}
