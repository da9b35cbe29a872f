//! Leader election: a latch ([`LeaderElection::campaign`]) and "run while leader"
//! ([`LeaderElection::run`]).
//!
//! # How
//! An election is a [`Lock`] on the election path, exactly as kazoo's `Election` is a kazoo
//! `Lock` on it: the contender whose `__lock__` node has the lowest sequence leads; the others
//! each watch the node just below theirs. So rzk and kazoo processes can stand in the same
//! election. The identifier in each node is what [`LeaderElection::contenders`] lists.
//!
//! # Failure cases, and what the leader is told
//! [`Leadership::status`] / [`Leadership::changed`] report a [`Holding`]:
//! - `Held`: connected; our node is the lowest.
//! - `InDoubt` as soon as the connection drops: the session may expire while we cannot hear
//!   of it, and another contender may then lead. A leader should stop acting as one
//!   (stop accepting writes, stop issuing commands) until `Held` again.
//! - `Lost` once the session has expired (as the server says, or as this client concludes
//!   after the session timeout without a server), the client was closed, or our node was
//!   deleted. Leadership will not come back; campaign again with a new client.
//!
//! [`run`](LeaderElection::run) cancels the leader's future (drops it) when leadership is
//! lost, and returns `Ok(None)`. It does not cancel it on `InDoubt`; the future gets a
//! [`Leadership`] to check or wait on for that. Every leadership term has a fencing token
//! (the czxid of the leader's node), increasing from term to term.
//!
//! Other cases are the lock's: a lost create reply is recovered by protection mode, a
//! contender that gives up or dies removes its node and wakes only the next one.

use super::lock::{contenders, Lock, LockGuard};
use super::Holding;
use crate::{Client, Result};
use tokio::sync::watch;

/// One contender in an election.
#[derive(Debug, Clone)]
pub struct LeaderElection {
    zk: Client,
    lock: Lock,
}

impl LeaderElection {
    pub fn new(zk: &Client, path: &str, identifier: &str) -> LeaderElection {
        LeaderElection { zk: zk.clone(), lock: Lock::new(zk, path, identifier) }
    }

    /// Waits until we lead.
    pub async fn campaign(&self) -> Result<Leadership> {
        let guard = self.lock.acquire().await?;
        Ok(Leadership { state: self.zk.state_watch(), zk: self.zk.clone(), guard })
    }

    /// Waits to lead, then runs `leader` while we lead. `Ok(Some(v))` if `leader` finished
    /// (leadership is then given up), `Ok(None)` if leadership was lost first (`leader` was
    /// dropped mid-way).
    pub async fn run<F, Fut, T>(&self, leader: F) -> Result<Option<T>>
    where
        F: FnOnce(Leadership) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let lead = self.campaign().await?;
        let node = lead.guard.node_path().to_owned();
        let out = tokio::select! {
            v = leader(lead) => Some(v),
            _ = super::lock::lost(&self.zk, &node) => None,
        };
        // Whether the leader function resigned already or not, our node goes.
        let _ = super::delete_retrying(&self.zk, &node).await;
        Ok(out)
    }

    /// The identifiers of all contenders, the leader first.
    pub async fn contenders(&self) -> Result<Vec<String>> {
        contenders(&self.zk, self.lock.path()).await
    }

    /// The leader's identifier, if anyone leads.
    pub async fn leader(&self) -> Result<Option<String>> {
        Ok(self.contenders().await?.into_iter().next())
    }
}

/// Our term as leader. Dropping it (or [`resign`](Self::resign)) gives leadership up.
#[derive(Debug)]
pub struct Leadership {
    zk: Client,
    state: watch::Receiver<crate::SessionState>,
    guard: LockGuard,
}

impl Leadership {
    /// What we may assume now.
    pub fn status(&self) -> Holding {
        Holding::from_state(*self.state.borrow())
    }

    /// Waits for the status to change from `last`, and returns the new one (`Lost` is final).
    pub async fn changed(&mut self, last: Holding) -> Holding {
        loop {
            let now = self.status();
            if now != last || now == Holding::Lost {
                return now;
            }
            tokio::select! {
                r = self.state.changed() => if r.is_err() { return Holding::Lost },
                _ = super::lock::lost(&self.zk, self.guard.node_path()) => return Holding::Lost,
            }
        }
    }

    /// Resolves once leadership is certainly lost.
    pub async fn lost(&self) {
        self.guard.lost().await
    }

    /// Increases with every term.
    pub fn fencing_token(&self) -> i64 {
        self.guard.fencing_token()
    }

    /// Gives leadership up (deletes our node).
    pub async fn resign(self) -> Result<()> {
        self.guard.release().await
    }
}
