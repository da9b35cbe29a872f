//! # rzk-client: an async ZooKeeper client, and recipes that get the failure cases right
//!
//! Speaks ZooKeeper's client protocol (3.9: every op, including TTL and container nodes,
//! multi and multiRead, persistent and recursive watches, getEphemerals, whoAmI) to rzk or
//! to Apache ZooKeeper.
//!
//! ```no_run
//! use rzk_client::{Client, CreateOptions};
//! # async fn demo() -> rzk_client::Result<()> {
//! let zk = Client::connect("127.0.0.1:2181,127.0.0.1:2182/myapp").await?;
//! zk.create("/config", b"v1", &CreateOptions::persistent()).await?;
//! let (data, stat, changed) = zk.get_data_w("/config").await?;
//! zk.set_data("/config", b"v2", stat.version).await?;
//! let event = changed.await?; // NodeDataChanged on /config
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`Client`] (`client.rs`): the handle applications hold; validates paths, applies the
//!   chroot, sends requests to the session task over a bounded channel.
//! - `session.rs`: the session task, sole owner of the socket: handshake, reconnection across
//!   the listed servers in random order with backoff and jitter (keeping session id and
//!   password), credential replay, SetWatches2, pings at a third of the session timeout,
//!   the client-side expiry after being cut off for longer than the session timeout.
//! - `watch.rs`: which waiters hear which notification ([`WatchFuture`] for one-time
//!   watches, [`WatchStream`] for persistent ones) and what SetWatches2 re-arms.
//! - [`path`]: connect strings, chroot, ZooKeeper's path rules.
//! - [`Error`] (`error.rs`): one error enum mirroring `KeeperException.Code`.
//! - [`recipes`]: locks with fencing tokens, leader election, barriers, queue, counter,
//!   service discovery, config cache. Their module docs list the failure cases each handles.
//!
//! # Sessions and failures
//! [`SessionState`] events tell the application what it may assume: `Disconnected` means
//! ephemerals (and so locks and leadership) are *in doubt*; `Expired` means they are *gone*.
//! Requests in flight when a connection drops fail with [`Error::ConnectionLoss`] (the write
//! may or may not have happened); requests issued while disconnected wait for the next
//! connection, bounded by the request timeout if one is set ([`Client::with_timeout`]).
//! Unlike Apache ZooKeeper's Java client, which keeps answering ConnectionLoss until a server
//! tells it the session expired, this client declares the session expired itself once it has
//! heard from no server for longer than the session timeout — by then the ensemble has expired
//! it, or will, so acting on it early is safe.
#![forbid(unsafe_code)]

mod client;
pub mod error;
pub mod kerberos;
pub mod path;
pub mod recipes;
pub mod sasl;
mod session;
pub mod tls;
mod types;
mod watch;

pub use client::{Client, TTL_MS_MAX};
pub use error::{Error, Result};
pub use kerberos::KerberosLogin;
pub use rustls::ClientConfig as TlsClientConfig;
pub use rzk_proto::client::ClientInfo;
pub use rzk_proto::{perms, Acl, AddWatchMode, CreateMode, EventType, Id, KeeperState, OpCode, SessionId, Stat, WatcherType, Zxid};
pub use sasl::SaslCredentials;
pub use tls::TlsSettings;
pub use types::{Config, CreateOptions, Op, OpResult, ReadOp, ReadResult, SessionInfo, SessionState, WatchedEvent};
pub use watch::{WatchFuture, WatchStream};
