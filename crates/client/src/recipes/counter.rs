//! An atomic counter: a node whose data is a decimal integer (as kazoo's `Counter` stores
//! it), changed by versioned compare-and-set.
//!
//! # Failure cases
//! - **Concurrent updates**: `setData` with the version read fails with BadVersion for all
//!   but one writer; the others re-read and retry. No update is lost.
//! - **Reply lost** (ConnectionLoss on the setData): the add may or may not have happened,
//!   and re-reading cannot tell (another writer may have moved the value the same way). So
//!   [`Counter::add`] returns `ConnectionLoss` instead of guessing or adding twice; a caller
//!   that must know uses [`Counter::get`] and [`Counter::compare_and_set`] with its own
//!   bookkeeping.
//! - Data that is not a number fails with `BadArguments` (nothing is overwritten).

use super::{ensure_path, retry};
use crate::{Client, CreateOptions, Error, Result};

#[derive(Debug, Clone)]
pub struct Counter {
    zk: Client,
    path: String,
}

impl Counter {
    pub fn new(zk: &Client, path: &str) -> Counter {
        Counter { zk: zk.clone(), path: path.to_owned() }
    }

    /// The value and the node's version (for [`compare_and_set`](Self::compare_and_set)).
    pub async fn get(&self) -> Result<(i64, i32)> {
        loop {
            match retry(&self.zk, || async { self.zk.get_data(&self.path).await }).await {
                Ok((data, stat)) => return Ok((parse(&data)?, stat.version)),
                Err(Error::NoNode) => {
                    ensure_path(&self.zk, crate::path::parent(&self.path)).await?;
                    match retry(&self.zk, || async { self.zk.create(&self.path, b"0", &CreateOptions::persistent()).await }).await {
                        Ok(_) | Err(Error::NodeExists) => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sets the value if the node's version is still `version`; `Ok(false)` if it moved on.
    pub async fn compare_and_set(&self, version: i32, value: i64) -> Result<bool> {
        match self.zk.set_data(&self.path, value.to_string().as_bytes(), version).await {
            Ok(_) => Ok(true),
            Err(Error::BadVersion) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds `delta` atomically and returns the new value.
    pub async fn add(&self, delta: i64) -> Result<i64> {
        loop {
            let (v, version) = self.get().await?;
            let new = v.checked_add(delta).ok_or(Error::BadArguments)?;
            if self.compare_and_set(version, new).await? {
                return Ok(new);
            }
        }
    }
}

fn parse(data: &[u8]) -> Result<i64> {
    if data.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(data).ok().and_then(|s| s.trim().parse().ok()).ok_or(Error::BadArguments)
}
