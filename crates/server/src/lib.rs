//! # rzk-server
//!
//! A ZooKeeper server as a pure core and a thin shell.
//!
//! # Layout
//! - [`core`]: no I/O, no clock. `ZooKeeperServer` takes inputs (frames, ticks, durability
//!   completions) and returns actions (send, close, append). Prep, sessions, auth, paths and
//!   the four-letter words live here.
//! - [`shell`]: tokio. The listener, one task per connection, and the one driver task that
//!   owns the core and executes its actions.
#![forbid(unsafe_code)]

/// The pure core lives in its own crate (`rzk-core`), so that nothing in it can reach tokio,
/// the file system or a clock.
pub use rzk_core as core;
pub mod shell;
