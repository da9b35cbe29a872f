//! # rzk-tree: ZooKeeper's DataTree
//!
//! This crate owns the in-memory state a ZooKeeper server applies transactions to, with
//! ZooKeeper's names and ZooKeeper's exact observable behaviour:
//!
//! - [`tree`]: [`DataTree`] — the znodes, `processTxn` as [`DataTree::apply`], the read
//!   accessors the request pipeline needs, setWatches, snapshot order and loading.
//! - [`acl_cache`]: `ReferenceCountedACLCache` (ACL list ⇄ `long` id, reference counted).
//! - [`watch`]: `WatchManager` and `WatcherMode` — trigger rules, one-time / persistent /
//!   persistent-recursive watches, 3.8 and 3.9 flavours.
//! - [`digest`]: `DigestCalculator` (digest version 2) and CRC32.
//! - [`ephemeral`]: `EphemeralType` — container and TTL owner encodings.
//! - [`java`]: `java.util.HashMap` / `HashSet` iteration order, which ZooKeeper leaks to
//!   clients through getChildren, getEphemerals and closeSession, and `ConcurrentHashMap`
//!   order (sessions with ephemerals, containers, TTL nodes → ContainerManager's order).
//! - [`quota`]: the quota path trie and `StatsTrack` text.
//! - [`slab`]: the node slab, a vector in fixed-size chunks (no doubling copies).
//!
//! It is pure: no I/O, no clock, no randomness, no threads or locks. The same sequence of
//! calls always produces the same results, in the same order.
#![forbid(unsafe_code)]

pub mod acl_cache;
pub mod digest;
pub mod ephemeral;
pub mod java;
pub mod quota;
pub mod slab;
pub mod tree;
pub mod watch;

pub use acl_cache::{AclCache, OPEN_UNSAFE_ACL_ID};
pub use ephemeral::{EphemeralType, CONTAINER_EPHEMERAL_OWNER, TTL_MAX};
pub use java::{ConcurrentOrder, JavaHashMap, JavaHashSet};
pub use tree::{ApplyOutcome, DataTree, NodeHint, NodeRef, SnapshotError, SnapshotLoader, TreeOptions, TxnResult, WatchKind, CONFIG_NODE};
pub use watch::{Flavor, WatchManager, WatcherId, WatcherMode, WatchesSummary};

#[cfg(test)]
mod tests;
