//! # rzk-proto: ZooKeeper's records, byte for byte
//!
//! This crate owns the encoding of everything rzk exchanges with the outside world in
//! ZooKeeper's own formats: the jute primitives ([`jute`]), the records of `zookeeper.jute`
//! (data, client protocol, transactions), op codes ([`OpCode`]), error codes ([`ErrorCode`]),
//! and the frame splitter that cuts length-prefixed frames out of a byte stream ([`frame`]).
//!
//! It is pure: no I/O, no clock, no global state. Decoding never panics and never allocates
//! more than the input could hold; every failure is a [`DecodeError`].
//!
//! # Layout
//! - [`jute`]: `Reader` / `Writer` and the `Record` trait for jute's int, long, boolean,
//!   ustring, buffer and vector.
//! - [`data`]: `Id`, `Acl`, `Stat`, `StatPersisted`, permission bits, ZooKeeper's newtypes.
//! - [`codes`]: op codes, error codes, watcher event types and keeper states, create modes.
//! - [`client`]: connect handshake, request/reply headers, every request and response.
//! - [`txn`]: `TxnHeader` and the transaction records written to the log and sent in PROPOSALs.
//! - [`frame`]: `Incomplete | Invalid | Frame` splitting of a length-prefixed stream.
//! - [`path`]: ZooKeeper's path rules (`PathUtils.validatePath`), for server and client.
//! - [`rng`]: the one seeded PRNG (SplitMix64) of the simulator, the log worker and the bench.
//! - [`time`]: epoch milliseconds as ZooKeeper prints them (Java's `Date.toString()`).
//! - [`quorum`]: the ensemble's records: `QuorumPacket` and `LearnerInfo` (quorum port), the
//!   FastLeaderElection notification and connection header (election port).
#![forbid(unsafe_code)]

pub mod client;
pub mod codes;
pub mod data;
pub mod frame;
pub mod jute;
pub mod path;
pub mod quorum;
pub mod rng;
pub mod sasl;
pub mod time;
pub mod txn;

pub use codes::{AddWatchMode, CreateMode, ErrorCode, EventType, KeeperState, OpCode, WatcherType};
pub use data::{perms, Acl, Id, SessionId, Stat, StatPersisted, Zxid};
pub use jute::{DecodeError, Reader, Record, Writer};
