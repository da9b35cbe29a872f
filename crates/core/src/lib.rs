//! The pure core of a server: everything between a decoded frame and the bytes to send back,
//! with no I/O and no clock. Time comes in with each input; actions come out.
//!
//! - [`server`]: `ZooKeeperServer`, the one owner of the tree, sessions, connections and the
//!   request pipeline (prep → append → persisted → apply → reply).
//! - [`prep`]: validation and txn building over the outstanding changes.
//! - [`session`]: the session tracker with tick-bucketed expiry.
//! - [`auth`]: auth providers, ACL checks, session passwords.
//! - [`path`]: ZooKeeper's path rules.
//! - [`fourlw`]: the four-letter words' output.
//! - [`member`]: `Member`, one server (standalone or ensemble member): the request pipeline
//!   composed with the ZAB node, with the protocol between servers.
//! - [`summary`]: a bounded latency summary (count, sum, min, max, percentiles).
//! - [`admin`]: the AdminServer's commands as JSON (ZooKeeper's `/commands/<name>`).
//! - [`audit`]: which writes the audit log records, and its lines' fields (ZooKeeper's `AuditHelper`).
//! - [`throttle`]: connection throttling (BlueThrottle) and large-request accounting.

#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod auth;
pub mod fourlw;
pub mod gssapi;
pub mod member;
pub mod path;
pub mod prep;
pub mod sasl;
pub mod server;
pub mod session;
pub mod summary;
pub mod throttle;

pub use server::{Action, ConnId, CoreConfig, Input, PeerId, Role, ZooKeeperServer};
