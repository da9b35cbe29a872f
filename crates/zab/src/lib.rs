//! # rzk-zab: ZooKeeper's election and atomic broadcast, as a pure state machine
//!
//! This crate owns the replication protocol of an rzk ensemble: FastLeaderElection and ZAB
//! (discovery, synchronisation, broadcast), with ZooKeeper's names, message types and wire
//! formats (through `rzk_proto::quorum`). It does no I/O and reads no clock. A host (the
//! server's driver, or the simulator) feeds a [`Node`] with messages ([`Node::step`]), time
//! ([`Node::tick`]), txns to replicate ([`Node::propose`]) and storage completions
//! ([`Node::persisted`]), and carries out the [`Action`]s it returns
//! ([`Node::take_actions`]), in order.
//!
//! # Durability contract
//! Writes come out as [`Action::Persist`] with a sequence number; the host applies them in
//! order and reports `persisted(seq)` when everything up to `seq` survives a crash. The node
//! withholds every message whose meaning depends on a write (a follower's ACK of a txn, the
//! ACKEPOCH after a new accepted epoch, the ACK of NEWLEADER after the current epoch, the
//! leader's LEADERINFO after its accepted epoch, the leader's own ACK) until that write is
//! reported durable. Sends may happen immediately and may be lost.
//!
//! # What the host provides
//! - a transport per peer: the election port carries [`Message::Notification`]; the quorum
//!   port carries the rest as ZooKeeper `QuorumPacket`s ([`Message::to_packet`]), in order
//!   per connection; a broken connection is reported with [`Node::disconnected`];
//! - storage for the log, the two epoch files and snapshots ([`StorageOp`]);
//! - a state machine: [`Action::Deliver`] applies a committed txn (always in zxid order);
//!   [`Action::SendSnapshot`] serializes it for a learner; `StorageOp::InstallSnapshot`
//!   replaces it; `StorageOp::Checkpoint` stores it as it is (an observer with
//!   `syncEnabled=false`, which logs nothing, before it logs in another role).
//!
//! Not here: REQUEST (a learner forwarding a client write to the leader), REVALIDATE and SYNC,
//! and the session touches carried by learners' PINGs are the request pipeline's business;
//! `rzk_core::member` composes the two and speaks them (`PeerMsg`). `Message::from_packet`
//! reports them as unsupported types.
//!
//! A standalone server is [`Node::standalone`]: one voter, no election and no epoch files; a
//! proposal is delivered once its append is durable (see `standalone.rs`).
//!
//! # Layout
//! - [`types`]: ids, entries, [`Config`], [`Action`], [`StorageOp`].
//! - [`message`]: [`Message`], [`Vote`] and their ZooKeeper wire mapping.
//! - [`node`]: [`Node`], the inputs and the plumbing shared by the roles.
//! - `election`, `leader`, `learner`: LOOKING, LEADING, FOLLOWING / OBSERVING.
//! - [`observer_master`]: observers syncing from a follower (`observerMasterPort`): the
//!   protocol as ZooKeeper speaks it, the observer's list of learner masters and the
//!   follower's side (ZooKeeper's `ObserverMaster`).
#![forbid(unsafe_code)]

mod election;
mod leader;
mod learner;
pub mod message;
pub mod node;
pub mod observer_master;
mod standalone;
pub mod types;

pub use leader::{LearnerSummary, LogRead};
pub use message::{Message, MessageError, SnapData, Vote};
pub use node::{Node, Restored, Stats};
pub use rzk_proto::quorum::ServerState;
pub use rzk_proto::Zxid;
pub use types::{
    Action, Config, ConfigError, Entry, Epoch, Hierarchy, LearnerType, Membership, MembershipError, ProposeError, ServerId, StorageOp,
};

#[cfg(test)]
mod tests;
