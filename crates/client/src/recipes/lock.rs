//! Locks: a mutex ([`Lock`]) and a shared lock ([`ReadWriteLock`]), with fencing tokens.
//!
//! # How
//! A contender creates an ephemeral sequential node under the lock path, named as kazoo names
//! them so kazoo's `Lock` / `ReadLock` / `WriteLock` contend on the same path with us:
//! `_c_<guid>-__lock__<seq>` for a mutex or writer, `_c_<guid>-__rlock__<seq>` for a reader
//! (kazoo matches `(__lock__|__rlock__)(-?\d{10})$`, and orders by that sequence). The node's
//! data is the contender's identifier, as kazoo's `contenders()` reads it. A contender holds
//! the lock when no node it conflicts with has a lower sequence (a writer conflicts with
//! everything, a reader with writers). Otherwise it watches only the *closest* conflicting
//! node below it (no herd effect: a release wakes one waiter) and re-checks when that node
//! goes.
//!
//! # Fencing
//! [`LockGuard::fencing_token`] is the czxid of the holder's node. Successive holders have
//! strictly increasing tokens. Pass it to whatever the lock protects and have that reject a
//! token lower than one it has seen: a holder that was paused (GC, swap, a partition) past its
//! session's expiry cannot then overwrite the work of the next holder.
//!
//! # Failure cases
//! - **Create reply lost** (ConnectionLoss during the create): protection mode (see
//!   [`recipes`](super)) finds our node instead of making a second one.
//! - **Disconnected while holding**: the lock is *in doubt*; [`LockGuard::holding`] says
//!   `InDoubt` and the application must pause the protected work. If the client reconnects
//!   within the session timeout, it still holds the lock (`Held`).
//! - **Session expired while holding**: the node is gone and someone else may hold the lock;
//!   [`LockGuard::lost`] resolves and `holding` says `Lost`. Releasing then returns
//!   `SessionExpired` so the caller learns that its critical section was not protected.
//! - **Holder dies** (its process or session ends): the server deletes its ephemeral node,
//!   the next waiter's watch fires and it takes the lock.
//! - **Waiter's predecessor gives up** (timeout, cancellation): its node is deleted, the
//!   waiter re-checks and watches the next conflicting node down, if any.
//! - **Our node deleted by someone else** (an operator): a waiter re-creates its node and
//!   queues again; a holder sees `lost()` resolve.
//! - **Acquire cancelled or timed out**: the node is deleted (also when the future is
//!   dropped: a background delete), so it does not block others.
//! - Not re-entrant: acquiring twice from the same [`Lock`] waits for itself (as kazoo's).

use super::{create_protected, delete_in_background, delete_retrying, ensure_path, guid, retry, sequence_of, Holding};
use crate::path::join;
use crate::{Client, Error, EventType, Result};
use std::time::Duration;
use tokio::time::Instant;

/// kazoo's node names.
pub(crate) const WRITE_NAME: &str = "__lock__";
pub(crate) const READ_NAME: &str = "__rlock__";

/// The kind and sequence of a contender node, if `name` is one (kazoo's contender regex).
pub(crate) fn contender(name: &str) -> Option<(&'static str, i64)> {
    for kind in [READ_NAME, WRITE_NAME] {
        if let Some(i) = name.rfind(kind) {
            let rest = &name[i + kind.len()..];
            let digits = rest.strip_prefix('-').unwrap_or(rest);
            if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
                return sequence_of(name).map(|s| (kind, s));
            }
        }
    }
    None
}

/// A lock on a path: a mutex, or one side of a read/write lock.
#[derive(Debug, Clone)]
pub struct Lock {
    zk: Client,
    path: String,
    data: Vec<u8>,
    prefix: String,
    /// Contender kinds that block this one.
    blocked_by: &'static [&'static str],
}

impl Lock {
    /// A mutex (kazoo's `Lock`); `identifier` is stored in the node, for `contenders()`.
    pub fn new(zk: &Client, path: &str, identifier: &str) -> Lock {
        Self::with_kind(zk, path, identifier, WRITE_NAME, &[WRITE_NAME])
    }

    fn with_kind(zk: &Client, path: &str, identifier: &str, name: &str, blocked_by: &'static [&'static str]) -> Lock {
        Lock {
            zk: zk.clone(),
            path: path.to_owned(),
            data: identifier.as_bytes().to_vec(),
            prefix: format!("_c_{}-{name}", guid()),
            blocked_by,
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Waits until the lock is ours.
    pub async fn acquire(&self) -> Result<LockGuard> {
        Ok(self.acquire_until(None, true).await?.expect("blocking acquire returns a guard"))
    }

    /// Takes the lock if it is free now; `None` if not.
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>> {
        self.acquire_until(None, false).await
    }

    /// Waits at most `limit`; `None` if the lock was not ours by then.
    pub async fn acquire_timeout(&self, limit: Duration) -> Result<Option<LockGuard>> {
        self.acquire_until(Some(Instant::now() + limit), true).await
    }

    async fn acquire_until(&self, deadline: Option<Instant>, blocking: bool) -> Result<Option<LockGuard>> {
        let zk = &self.zk;
        ensure_path(zk, &self.path).await?;
        'create: loop {
            let (node, stat) = create_protected(zk, &self.path, &self.prefix, &self.data, true).await?;
            let node_path = join(&self.path, &node);
            // Deletes the node if we leave without the lock (error, timeout, dropped future).
            let mut cleanup = Cleanup { zk: zk.clone(), path: Some(node_path.clone()) };
            let (_, my_seq) = contender(&node).ok_or(Error::RuntimeInconsistency)?;
            loop {
                let children = retry(zk, || async { zk.get_children(&self.path).await }).await?;
                if !children.contains(&node) {
                    // Someone deleted our node: queue again.
                    cleanup.path = None;
                    continue 'create;
                }
                let predecessor = children
                    .iter()
                    .filter_map(|c| contender(c).map(|(kind, seq)| (seq, kind, c)))
                    .filter(|(seq, kind, _)| *seq < my_seq && self.blocked_by.contains(kind))
                    .max_by_key(|(seq, _, _)| *seq);
                let Some((_, _, pred)) = predecessor else {
                    cleanup.path = None;
                    return Ok(Some(LockGuard { zk: zk.clone(), node_path, token: stat.czxid.0, released: false }));
                };
                if !blocking {
                    cleanup.run().await;
                    return Ok(None);
                }
                let watched = match zk.exists_w(&join(&self.path, pred)).await {
                    Ok((None, _)) => continue,
                    Ok((Some(_), fut)) => fut,
                    Err(e) if e.is_retryable() => {
                        zk.wait_connected().await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let fired = match deadline {
                    Some(d) => match tokio::time::timeout_at(d, watched).await {
                        Ok(r) => r,
                        Err(_) => {
                            cleanup.run().await;
                            return Ok(None);
                        }
                    },
                    None => watched.await,
                };
                fired?;
            }
        }
    }

    /// The identifiers of all contenders (holders first), as kazoo's `contenders()`.
    pub async fn contenders(&self) -> Result<Vec<String>> {
        contenders(&self.zk, &self.path).await
    }
}

pub(crate) async fn contenders(zk: &Client, path: &str) -> Result<Vec<String>> {
    let children = match retry(zk, || async { zk.get_children(path).await }).await {
        Ok(c) => c,
        Err(Error::NoNode) => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let mut nodes: Vec<(i64, String)> = children.into_iter().filter_map(|c| contender(&c).map(|(_, s)| (s, c))).collect();
    nodes.sort();
    let mut out = Vec::new();
    for (_, n) in nodes {
        match retry(zk, || async { zk.get_data(&join(path, &n)).await }).await {
            Ok((d, _)) => out.push(String::from_utf8_lossy(&d).into_owned()),
            Err(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

struct Cleanup {
    zk: Client,
    path: Option<String>,
}

impl Cleanup {
    async fn run(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = delete_retrying(&self.zk, &p).await;
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            delete_in_background(&self.zk, p);
        }
    }
}

/// A held lock. Release it with [`release`](Self::release); dropping it releases in the
/// background.
#[derive(Debug)]
pub struct LockGuard {
    zk: Client,
    node_path: String,
    token: i64,
    released: bool,
}

impl LockGuard {
    /// The czxid of our lock node: increases with every grant of this lock.
    pub fn fencing_token(&self) -> i64 {
        self.token
    }

    /// Our lock node (chroot-relative).
    pub fn node_path(&self) -> &str {
        &self.node_path
    }

    /// What we may assume now (from the session state).
    pub fn holding(&self) -> Holding {
        Holding::from_state(self.zk.state())
    }

    /// Resolves once the lock is certainly lost: the session ended or our node was deleted.
    pub async fn lost(&self) {
        lost(&self.zk, &self.node_path).await
    }

    /// Deletes our node. `SessionExpired` (or `Closed`) if the session ended while we held
    /// it: the lock may have been someone else's for a while.
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        if self.zk.state().is_terminal() {
            return Err(self.zk.state().terminal_error());
        }
        delete_retrying(&self.zk, &self.node_path).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if !self.released {
            delete_in_background(&self.zk, self.node_path.clone());
        }
    }
}

/// Waits until `node_path` is deleted or the session ends.
pub(crate) async fn lost(zk: &Client, node_path: &str) {
    loop {
        if zk.state().is_terminal() {
            return;
        }
        match zk.exists_w(node_path).await {
            Ok((None, _)) => return,
            Ok((Some(_), fut)) => match fut.await {
                Ok(ev) if ev.event_type == EventType::NodeDeleted => return,
                Ok(_) => continue,
                Err(_) => return, // session over
            },
            Err(e) if e.is_retryable() => {
                if zk.wait_connected().await.is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// A shared lock: any number of readers, or one writer (kazoo's `ReadLock` / `WriteLock`).
/// Waiting writers block later readers, so writers are not starved.
#[derive(Debug, Clone)]
pub struct ReadWriteLock {
    read: Lock,
    write: Lock,
}

impl ReadWriteLock {
    pub fn new(zk: &Client, path: &str, identifier: &str) -> ReadWriteLock {
        ReadWriteLock {
            read: Lock::with_kind(zk, path, identifier, READ_NAME, &[WRITE_NAME]),
            write: Lock::with_kind(zk, path, identifier, WRITE_NAME, &[WRITE_NAME, READ_NAME]),
        }
    }
    /// The read side: held together with other readers, never with a writer.
    pub fn read_lock(&self) -> &Lock {
        &self.read
    }
    /// The write side: exclusive.
    pub fn write_lock(&self) -> &Lock {
        &self.write
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kazoo_contender_names() {
        assert_eq!(contender("0f3a__lock__0000000007"), Some((WRITE_NAME, 7)));
        assert_eq!(contender("_c_ab-__rlock__0000000012"), Some((READ_NAME, 12)));
        assert_eq!(contender("_c_ab-__lock__-0000000012"), Some((WRITE_NAME, -12)));
        assert_eq!(contender("leases"), None);
        assert_eq!(contender("x__lock__000000001"), None);
    }
}
