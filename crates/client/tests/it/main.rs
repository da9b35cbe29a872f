//! The client's integration tests, each run against rzk and against Apache ZooKeeper 3.8
//! (see `support.rs`). One test binary, so each server starts once.

mod support;

mod ops;
mod recipes;
mod sessions;
