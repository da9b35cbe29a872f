//! A distributed FIFO queue.
//!
//! # How
//! [`Queue::put`] creates a persistent sequential node `path/_c_<guid>-<guid>-entry<seq>` holding
//! the item. [`Queue::take`] lists the entries, orders them by sequence, and claims the first
//! by deleting it (after reading it); whoever's delete succeeds owns that item, the others
//! move on to the next. An empty queue is waited on with a child watch.
//!
//! # Failure cases
//! - **Put's reply lost**: protection mode finds the entry, so the item is queued once.
//! - **Take's delete reply lost**: we cannot know whether the delete was ours, so `take`
//!   treats the item as *not* ours and moves on. If it was ours after all, that item is lost.
//!   Delivery is therefore **at most once**; a consumer that dies after `take` returns but
//!   before it has processed the item loses the item too. Use a lock plus an explicit
//!   "processing" marker if you need at-least-once.
//! - **Two consumers race for an entry**: exactly one delete succeeds (NoNode for the rest).
//! - Order is FIFO by the server's sequence numbers, i.e. by the order the creates were
//!   applied, not by the order `put` was called on different clients.

use super::{create_protected, ensure_path, guid, retry, sequence_of};
use crate::path::join;
use crate::{Client, Error, Result};

#[derive(Debug, Clone)]
pub struct Queue {
    zk: Client,
    path: String,
    guid: String,
}

impl Queue {
    pub fn new(zk: &Client, path: &str) -> Queue {
        Queue { zk: zk.clone(), path: path.to_owned(), guid: guid() }
    }

    /// Adds an item at the tail.
    pub async fn put(&self, item: &[u8]) -> Result<()> {
        ensure_path(&self.zk, &self.path).await?;
        // A fresh guid per item: a retried put must find this item, not an earlier one.
        let prefix = format!("_c_{}-{}-entry", self.guid, guid());
        create_protected(&self.zk, &self.path, &prefix, item, false).await.map(|_| ())
    }

    async fn entries(&self) -> Result<Vec<String>> {
        let mut c: Vec<(i64, String)> = match retry(&self.zk, || async { self.zk.get_children(&self.path).await }).await {
            Ok(c) => c.into_iter().filter_map(|n| sequence_of(&n).map(|s| (s, n))).collect(),
            Err(Error::NoNode) => vec![],
            Err(e) => return Err(e),
        };
        c.sort();
        Ok(c.into_iter().map(|(_, n)| n).collect())
    }

    /// Takes the head item if there is one.
    pub async fn try_take(&self) -> Result<Option<Vec<u8>>> {
        for name in self.entries().await? {
            let p = join(&self.path, &name);
            let (data, stat) = match retry(&self.zk, || async { self.zk.get_data(&p).await }).await {
                Ok(r) => r,
                Err(Error::NoNode) => continue,
                Err(e) => return Err(e),
            };
            match self.zk.delete(&p, stat.version).await {
                Ok(()) => return Ok(Some(data)),
                Err(Error::NoNode) => continue,
                Err(e) if e.is_retryable() => {
                    // Unknown whether we took it: assume not (at most once).
                    self.zk.wait_connected().await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Waits for an item and takes it.
    pub async fn take(&self) -> Result<Vec<u8>> {
        ensure_path(&self.zk, &self.path).await?;
        loop {
            if let Some(item) = self.try_take().await? {
                return Ok(item);
            }
            let (children, changed) = match self.zk.get_children_w(&self.path).await {
                Ok(r) => r,
                Err(e) if e.is_retryable() => {
                    self.zk.wait_connected().await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if children.iter().all(|c| sequence_of(c).is_none()) {
                changed.await?;
            }
        }
    }

    /// The number of items queued.
    pub async fn len(&self) -> Result<usize> {
        Ok(self.entries().await?.len())
    }

    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }
}
