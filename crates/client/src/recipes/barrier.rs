//! Barriers: a [`Barrier`] that holds everyone until it is removed, and a [`DoubleBarrier`]
//! that lets a fixed number of participants start together and finish together (the recipes
//! of ZooKeeper's documentation, as kazoo implements them).
//!
//! # Failure cases
//! - **Barrier**: its node is persistent, so it outlives the client that raised it; a
//!   waiter that is disconnected keeps its watch (re-armed on reconnection, and the server
//!   reports a removal that happened meanwhile). A waiter's session expiring ends `wait` with
//!   `SessionExpired`.
//! - **DoubleBarrier enter**: a participant's node is ephemeral, so a participant that dies
//!   before the count is reached no longer counts (the others keep waiting for a
//!   replacement, not for a ghost). The `ready` node is created by whoever sees the count
//!   reached; a lost create reply is harmless (NodeExists is success).
//! - **DoubleBarrier leave**: a participant that dies while the others leave is counted out
//!   when its ephemeral node goes, so `leave` never waits for the dead.
//! - A participant whose session expires in the middle gets `SessionExpired`; its node is
//!   gone, so the barrier proceeds without it.

use super::{delete_retrying, ensure_path, guid, retry};
use crate::path::join;
use crate::{Client, CreateOptions, Error, EventType, Result};

/// A barrier: while its node exists, [`wait`](Barrier::wait) blocks.
#[derive(Debug, Clone)]
pub struct Barrier {
    zk: Client,
    path: String,
}

impl Barrier {
    pub fn new(zk: &Client, path: &str) -> Barrier {
        Barrier { zk: zk.clone(), path: path.to_owned() }
    }

    /// Raises the barrier (creates its node; already raised is fine).
    pub async fn raise(&self) -> Result<()> {
        ensure_path(&self.zk, crate::path::parent(&self.path)).await?;
        match retry(&self.zk, || async { self.zk.create(&self.path, b"", &CreateOptions::persistent()).await }).await {
            Ok(_) | Err(Error::NodeExists) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Lifts the barrier: every waiter goes on.
    pub async fn remove(&self) -> Result<()> {
        delete_retrying(&self.zk, &self.path).await
    }

    /// Waits until the barrier is not raised.
    pub async fn wait(&self) -> Result<()> {
        loop {
            match self.zk.exists_w(&self.path).await {
                Ok((None, _)) => return Ok(()),
                Ok((Some(_), fut)) => {
                    if fut.await?.event_type == EventType::NodeDeleted {
                        return Ok(());
                    }
                }
                Err(e) if e.is_retryable() => self.zk.wait_connected().await?,
                Err(e) => return Err(e),
            }
        }
    }
}

/// A double barrier for `count` participants.
#[derive(Debug, Clone)]
pub struct DoubleBarrier {
    zk: Client,
    path: String,
    count: usize,
    node: String,
}

const READY: &str = "ready";

impl DoubleBarrier {
    pub fn new(zk: &Client, path: &str, count: usize) -> DoubleBarrier {
        DoubleBarrier { zk: zk.clone(), path: path.to_owned(), count: count.max(1), node: guid() }
    }

    fn participants(children: &[String]) -> Vec<&String> {
        children.iter().filter(|c| c.as_str() != READY).collect()
    }

    /// Joins and waits until `count` participants have joined.
    pub async fn enter(&self) -> Result<()> {
        let zk = &self.zk;
        ensure_path(zk, &self.path).await?;
        let ready = join(&self.path, READY);
        // Watch `ready` before joining, so its creation cannot be missed.
        let (_, mut ready_fut) = retry(zk, || async { zk.exists_w(&ready).await }).await?;
        match retry(zk, || async { zk.create(&join(&self.path, &self.node), b"", &CreateOptions::ephemeral()).await }).await {
            Ok(_) | Err(Error::NodeExists) => {}
            Err(e) => return Err(e),
        }
        loop {
            let children = retry(zk, || async { zk.get_children(&self.path).await }).await?;
            if children.iter().any(|c| c == READY) {
                return Ok(());
            }
            if Self::participants(&children).len() >= self.count {
                match retry(zk, || async { zk.create(&ready, b"", &CreateOptions::persistent()).await }).await {
                    Ok(_) | Err(Error::NodeExists) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            let ev = ready_fut.await?;
            if ev.event_type == EventType::NodeCreated {
                return Ok(());
            }
            ready_fut = retry(zk, || async { zk.exists_w(&ready).await }).await?.1;
        }
    }

    /// Leaves and waits until every participant has left.
    pub async fn leave(&self) -> Result<()> {
        let zk = &self.zk;
        let me = join(&self.path, &self.node);
        loop {
            let children = match retry(zk, || async { zk.get_children(&self.path).await }).await {
                Ok(c) => c,
                Err(Error::NoNode) => return Ok(()),
                Err(e) => return Err(e),
            };
            let mut others: Vec<&String> = Self::participants(&children);
            others.sort();
            if others.is_empty() {
                let _ = delete_retrying(zk, &join(&self.path, READY)).await;
                return Ok(());
            }
            let mine = others.iter().any(|c| **c == self.node);
            if mine && others.len() == 1 {
                delete_retrying(zk, &me).await?;
                let _ = delete_retrying(zk, &join(&self.path, READY)).await;
                return Ok(());
            }
            // The lowest waits for the highest to go; everyone else leaves and waits for the
            // lowest (ZooKeeper's recipe: no herd, each departure wakes one).
            let watch_on = if mine && *others[0] == self.node {
                others[others.len() - 1].clone()
            } else {
                if mine {
                    delete_retrying(zk, &me).await?;
                }
                others[0].clone()
            };
            if watch_on == self.node {
                continue;
            }
            match retry(zk, || async { zk.exists_w(&join(&self.path, &watch_on)).await }).await? {
                (None, _) => continue,
                (Some(_), fut) => {
                    fut.await?;
                }
            }
        }
    }
}
