//! A counting semaphore: at most `max_leases` holders at once, each with a fencing token.
//!
//! # How (kazoo's and Curator's layout)
//! `path` holds `max_leases` as its data (decimal); `path/lock` is a [`Lock`]; `path/leases`
//! holds one ephemeral sequential node per lease, `_c_<guid>-__lease__<seq>`, whose data is
//! the holder's identifier. To take a lease, a contender takes the lock, and while holding it
//! counts the leases: if fewer than `max_leases` it creates its lease node and releases the
//! lock; if not, it watches the lease list (only the lock holder does: no herd) and counts
//! again when it changes. Releasing deletes the lease node.
//!
//! # Failure cases
//! - **Lease create reply lost**: protection mode finds the node (no phantom lease).
//! - **Holder dies / its session expires**: its ephemeral lease goes, the waiting lock
//!   holder's watch fires and it takes the freed lease.
//! - **Disconnected while holding**: the lease is in doubt ([`Lease::holding`]); expired:
//!   lost ([`Lease::lost`]), and another contender may get it.
//! - **Contenders disagree on `max_leases`**: acquiring fails with `BadArguments` rather
//!   than silently over- or under-granting; delete `path` to change the limit.
//! - **More leases than the limit** (the limit was lowered by deleting and re-creating
//!   `path` while leases were held): new contenders wait until the count is below it.

use super::lock::Lock;
use super::{create_protected, delete_in_background, delete_retrying, ensure_path, guid, retry, Holding};
use crate::path::join;
use crate::{Client, CreateOptions, Error, Result};

#[derive(Debug, Clone)]
pub struct Semaphore {
    zk: Client,
    path: String,
    max_leases: u32,
    data: Vec<u8>,
    prefix: String,
    lock: Lock,
}

impl Semaphore {
    pub fn new(zk: &Client, path: &str, identifier: &str, max_leases: u32) -> Semaphore {
        Semaphore {
            zk: zk.clone(),
            path: path.to_owned(),
            max_leases: max_leases.max(1),
            data: identifier.as_bytes().to_vec(),
            prefix: format!("_c_{}-__lease__", guid()),
            lock: Lock::new(zk, &join(path, "lock"), identifier),
        }
    }

    async fn check_limit(&self) -> Result<()> {
        let zk = &self.zk;
        ensure_path(zk, crate::path::parent(&self.path)).await?;
        let want = self.max_leases.to_string();
        match retry(zk, || async { zk.create(&self.path, want.as_bytes(), &CreateOptions::persistent()).await }).await {
            Ok(_) | Err(Error::NodeExists) => {}
            Err(e) => return Err(e),
        }
        let (data, stat) = retry(zk, || async { zk.get_data(&self.path).await }).await?;
        if data.is_empty() && stat.version == 0 {
            // Made by ensure_path or an older tool: claim it for our limit.
            match zk.set_data(&self.path, want.as_bytes(), 0).await {
                Ok(_) | Err(Error::BadVersion) => {}
                Err(e) if e.is_retryable() => {}
                Err(e) => return Err(e),
            }
            return Box::pin(self.check_limit_once()).await;
        }
        if String::from_utf8_lossy(&data) != want {
            return Err(Error::BadArguments);
        }
        Ok(())
    }

    async fn check_limit_once(&self) -> Result<()> {
        let (data, _) = retry(&self.zk, || async { self.zk.get_data(&self.path).await }).await?;
        if String::from_utf8_lossy(&data) != self.max_leases.to_string() {
            return Err(Error::BadArguments);
        }
        Ok(())
    }

    /// Waits for a lease.
    pub async fn acquire(&self) -> Result<Lease> {
        self.check_limit().await?;
        let zk = &self.zk;
        let leases = join(&self.path, "leases");
        ensure_path(zk, &leases).await?;
        let lock = self.lock.acquire().await?;
        let result = async {
            loop {
                let (children, changed) = match zk.get_children_w(&leases).await {
                    Ok(r) => r,
                    Err(e) if e.is_retryable() => {
                        zk.wait_connected().await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if children.iter().any(|c| c.starts_with(&self.prefix)) || children.len() < self.max_leases as usize {
                    let (node, stat) = create_protected(zk, &leases, &self.prefix, &self.data, true).await?;
                    return Ok(Lease { zk: zk.clone(), node_path: join(&leases, &node), token: stat.czxid.0, released: false });
                }
                changed.await?;
            }
        }
        .await;
        let _ = lock.release().await;
        result
    }

    /// The identifiers of the current lease holders.
    pub async fn holders(&self) -> Result<Vec<String>> {
        let leases = join(&self.path, "leases");
        let mut out = Vec::new();
        let children = match retry(&self.zk, || async { self.zk.get_children(&leases).await }).await {
            Ok(c) => c,
            Err(Error::NoNode) => return Ok(out),
            Err(e) => return Err(e),
        };
        for c in children {
            if let Ok((d, _)) = self.zk.get_data(&join(&leases, &c)).await {
                out.push(String::from_utf8_lossy(&d).into_owned());
            }
        }
        Ok(out)
    }
}

/// A held lease. Release with [`release`](Self::release); dropping releases in the background.
#[derive(Debug)]
pub struct Lease {
    zk: Client,
    node_path: String,
    token: i64,
    released: bool,
}

impl Lease {
    /// The czxid of our lease node.
    pub fn fencing_token(&self) -> i64 {
        self.token
    }
    pub fn holding(&self) -> Holding {
        Holding::from_state(self.zk.state())
    }
    pub async fn lost(&self) {
        super::lock::lost(&self.zk, &self.node_path).await
    }
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        if self.zk.state().is_terminal() {
            return Err(self.zk.state().terminal_error());
        }
        delete_retrying(&self.zk, &self.node_path).await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.released {
            delete_in_background(&self.zk, self.node_path.clone());
        }
    }
}
