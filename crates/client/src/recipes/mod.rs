//! Coordination recipes on top of [`Client`](crate::Client), each with its failure cases
//! written down in its module docs.
//!
//! - [`lock`]: mutex [`Lock`](lock::Lock), shared [`ReadWriteLock`](lock::ReadWriteLock),
//!   [`Semaphore`](semaphore::Semaphore); every grant carries a fencing token (the czxid of
//!   the node that won it). Compatible with kazoo's `Lock`, `ReadLock` and `WriteLock` on the
//!   same path.
//! - [`election`]: leader election (latch and run-while-leader) that tells the leader when
//!   its leadership is in doubt and when it is lost. Compatible with kazoo's `Election`.
//! - [`barrier`]: [`Barrier`](barrier::Barrier) and [`DoubleBarrier`](barrier::DoubleBarrier).
//! - [`queue`]: a distributed FIFO queue. [`counter`]: an atomic counter (versioned CAS).
//! - [`discovery`]: service registration (ephemeral nodes with a JSON payload) and a watcher
//!   keeping the live set. [`cache`]: a watched node or subtree kept current in memory.
//!
//! # Protection mode
//! Every sequential node a recipe creates is named `_c_<guid>-<name><sequence>`, with a guid
//! unique to the recipe object (as Curator and kazoo do). If the create's reply is lost
//! (ConnectionLoss), the server may or may not have created the node; the recipe lists the
//! parent, finds its own node by the guid and carries on with it, instead of creating a
//! second one and leaving the first as an orphan that would block everyone else until the
//! session ends.

pub mod barrier;
pub mod cache;
pub mod counter;
pub mod discovery;
pub mod election;
pub mod lock;
pub mod queue;
pub mod semaphore;

use crate::{Client, CreateOptions, Error, Result, SessionState, Stat};

/// A guid for protection-mode names: 128 random bits in hex (uuid4().hex's shape).
pub(crate) fn guid() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// Creates `path` and any missing parents as persistent nodes with empty data.
pub async fn ensure_path(zk: &Client, path: &str) -> Result<()> {
    if path == "/" || zk.exists(path).await?.is_some() {
        return Ok(());
    }
    let mut cur = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        cur.push('/');
        cur.push_str(part);
        retry(zk, || async {
            match zk.create(&cur, b"", &CreateOptions::persistent()).await {
                Ok(_) | Err(Error::NodeExists) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await?;
    }
    Ok(())
}

/// Runs an idempotent operation until it stops failing with ConnectionLoss (waiting for the
/// client to reconnect between attempts). Session loss ends it.
pub(crate) async fn retry<T, F, Fut>(zk: &Client, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    loop {
        match f().await {
            Err(e) if e.is_retryable() => zk.wait_connected().await?,
            r => return r,
        }
    }
}

/// The sequence number at the end of a sequential node's name (10 digits, maybe negative
/// after the counter wraps).
pub(crate) fn sequence_of(name: &str) -> Option<i64> {
    let digits = name.len().checked_sub(10)?;
    let (head, tail) = name.split_at(digits);
    if !tail.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = tail.parse().ok()?;
    Some(if head.ends_with('-') { -n } else { n })
}

/// Creates a protected sequential node `parent/<prefix><seq>`, where `prefix` holds the
/// caller's guid; after a ConnectionLoss it looks for the node among the parent's children
/// before trying again. Returns the node's name (not path) and Stat.
pub(crate) async fn create_protected(zk: &Client, parent: &str, prefix: &str, data: &[u8], ephemeral: bool) -> Result<(String, Stat)> {
    let opts = if ephemeral { CreateOptions::ephemeral_sequential() } else { CreateOptions::persistent_sequential() };
    let path = crate::path::join(parent, prefix);
    let mut tried = false;
    loop {
        if tried {
            zk.wait_connected().await?;
            match find_own(zk, parent, prefix).await {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(e) if e.is_retryable() => continue,
                Err(Error::NoNode) => {}
                Err(e) => return Err(e),
            }
        }
        tried = true;
        match zk.create2(&path, data, &opts).await {
            Ok((p, stat)) => return Ok((crate::path::basename(&p).to_owned(), stat)),
            Err(Error::NoNode) => ensure_path(zk, parent).await?,
            Err(e) if e.is_retryable() => {
                tracing::debug!(%path, error = %e, "protected create: outcome unknown, looking for our node");
            }
            Err(e) => return Err(e),
        }
    }
}

async fn find_own(zk: &Client, parent: &str, prefix: &str) -> Result<Option<(String, Stat)>> {
    for child in zk.get_children(parent).await? {
        if child.starts_with(prefix) {
            if let Some(stat) = zk.exists(&crate::path::join(parent, &child)).await? {
                return Ok(Some((child, stat)));
            }
        }
    }
    Ok(None)
}

/// Deletes a node, retrying through ConnectionLoss; NoNode counts as done.
pub(crate) async fn delete_retrying(zk: &Client, path: &str) -> Result<()> {
    retry(zk, || async {
        match zk.delete(path, -1).await {
            Ok(()) | Err(Error::NoNode) => Ok(()),
            Err(e) => Err(e),
        }
    })
    .await
}

/// Best-effort delete from a destructor: spawned if a runtime is there.
pub(crate) fn delete_in_background(zk: &Client, path: String) {
    if let Ok(h) = tokio::runtime::Handle::try_current() {
        let zk = zk.clone();
        h.spawn(async move {
            if !zk.state().is_terminal() {
                let _ = delete_retrying(&zk, &path).await;
            }
        });
    }
}

/// What a holder of a lock or leadership may assume now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    /// Connected, and the node that grants it is ours.
    Held,
    /// Disconnected: the session may expire at any moment, or may already have, and another
    /// client may hold it. Stop doing anything that needs exclusivity until `Held` again.
    InDoubt,
    /// Certainly lost: the session ended or the node was deleted.
    Lost,
}

impl Holding {
    pub(crate) fn from_state(s: SessionState) -> Holding {
        match s {
            SessionState::Connected | SessionState::ConnectedReadOnly => Holding::Held,
            SessionState::Connecting | SessionState::Disconnected => Holding::InDoubt,
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed => Holding::Lost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences() {
        assert_eq!(sequence_of("_c_ab-__lock__0000000042"), Some(42));
        assert_eq!(sequence_of("x__lock__-0000000003"), Some(-3));
        assert_eq!(sequence_of("lock"), None);
        assert_eq!(sequence_of("abc__lock__00000000x1"), None);
        assert_eq!(guid().len(), 32);
        assert_ne!(guid(), guid());
    }
}
