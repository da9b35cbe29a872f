//! Service discovery: instances register themselves as ephemeral nodes with a JSON payload;
//! a [`ServiceWatcher`] keeps the live set of a service current.
//!
//! # Layout (Curator's `ServiceDiscovery` shape)
//! `<base>/<service>/<instance id>`, data: `{"name":…,"id":…,"address":…,"port":…,
//! "payload":…,"registrationTimeUTC":…}`.
//!
//! # Failure cases
//! - **Instance dies or its session expires**: its ephemeral node goes; watchers drop it.
//!   An instance whose session expired must register again with a new client (the old
//!   client is finished); [`Registration::lost`] tells it when.
//! - **Registration's reply lost**: the create is retried; NodeExists with our own session
//!   as the owner counts as success (a node of the same id owned by another live session is
//!   `NodeExists`: two instances must not share an id).
//! - **Watcher disconnected**: the live set is kept as last seen (stale but not emptied);
//!   watches are re-armed on reconnection and the set is re-read. **Watcher's session
//!   expired**: [`ServiceWatcher::changed`] returns the error; the set is no longer updated.
//! - **Undecodable node data**: that instance is skipped (logged), not fatal.

use super::{delete_retrying, ensure_path};
use crate::path::join;
use crate::{Client, CreateOptions, Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::SystemTime;
use tokio::sync::watch;

/// One instance of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInstance {
    pub name: String,
    pub id: String,
    pub address: String,
    pub port: u16,
    pub payload: Value,
}

impl ServiceInstance {
    fn to_json(&self) -> Vec<u8> {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        json!({
            "name": self.name,
            "id": self.id,
            "address": self.address,
            "port": self.port,
            "payload": self.payload,
            "registrationTimeUTC": now,
        })
        .to_string()
        .into_bytes()
    }

    fn from_json(data: &[u8]) -> Option<ServiceInstance> {
        let v: Value = serde_json::from_slice(data).ok()?;
        Some(ServiceInstance {
            name: v.get("name")?.as_str()?.to_owned(),
            id: v.get("id")?.as_str()?.to_owned(),
            address: v.get("address").and_then(Value::as_str).unwrap_or_default().to_owned(),
            port: v.get("port").and_then(Value::as_u64).unwrap_or(0) as u16,
            payload: v.get("payload").cloned().unwrap_or(Value::Null),
        })
    }
}

/// Registers `instance` under `base`. The registration lasts as long as the client's session.
pub async fn register(zk: &Client, base: &str, instance: &ServiceInstance) -> Result<Registration> {
    let dir = join(base, &instance.name);
    ensure_path(zk, &dir).await?;
    let path = join(&dir, &instance.id);
    loop {
        match zk.create(&path, &instance.to_json(), &CreateOptions::ephemeral()).await {
            Ok(_) => break,
            Err(Error::NodeExists) => {
                // Ours from an attempt whose reply was lost, or someone else's?
                match zk.exists(&path).await {
                    Ok(Some(st)) if st.ephemeral_owner == zk.session_info().id.0 => break,
                    Ok(Some(_)) => return Err(Error::NodeExists),
                    Ok(None) => continue,
                    Err(e) if e.is_retryable() => zk.wait_connected().await?,
                    Err(e) => return Err(e),
                }
            }
            Err(e) if e.is_retryable() => zk.wait_connected().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(Registration { zk: zk.clone(), path })
}

/// A live registration.
#[derive(Debug)]
pub struct Registration {
    zk: Client,
    path: String,
}

impl Registration {
    /// Resolves once the registration is gone (session over, or the node deleted).
    pub async fn lost(&self) {
        super::lock::lost(&self.zk, &self.path).await
    }
    /// Removes the instance.
    pub async fn unregister(self) -> Result<()> {
        delete_retrying(&self.zk, &self.path).await
    }
}

/// The live instances of one service, kept current by a background task.
#[derive(Debug)]
pub struct ServiceWatcher {
    rx: watch::Receiver<Result<BTreeMap<String, ServiceInstance>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ServiceWatcher {
    /// Starts watching `base/<service>`; returns once the first set has been read.
    pub async fn start(zk: &Client, base: &str, service: &str) -> Result<ServiceWatcher> {
        let dir = join(base, service);
        let (tx, mut rx) = watch::channel(Ok(BTreeMap::new()));
        let zk = zk.clone();
        let task = tokio::spawn(async move {
            let mut first = true;
            loop {
                match read_set(&zk, &dir).await {
                    Ok((set, changed)) => {
                        tx.send_if_modified(|cur| {
                            let new = Ok(set);
                            if *cur != new || first {
                                *cur = new;
                                true
                            } else {
                                false
                            }
                        });
                        first = false;
                        tokio::select! {
                            r = changed => if let Err(e) = r { let _ = tx.send(Err(e)); return; },
                            _ = tx.closed() => return,
                        }
                    }
                    Err(e) if e.is_retryable() => {
                        if let Err(e) = zk.wait_connected().await {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        rx.changed().await.map_err(|_| Error::Closed)?;
        if let Err(e) = &*rx.borrow() {
            return Err(e.clone());
        }
        Ok(ServiceWatcher { rx, task })
    }

    /// The live instances, by id.
    pub fn instances(&self) -> Vec<ServiceInstance> {
        match &*self.rx.borrow() {
            Ok(m) => m.values().cloned().collect(),
            Err(_) => vec![],
        }
    }

    /// Waits for the set to change; the error that stopped the watcher if it stopped.
    pub async fn changed(&mut self) -> Result<Vec<ServiceInstance>> {
        self.rx.changed().await.map_err(|_| Error::Closed)?;
        match &*self.rx.borrow_and_update() {
            Ok(m) => Ok(m.values().cloned().collect()),
            Err(e) => Err(e.clone()),
        }
    }
}

impl Drop for ServiceWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the set, leaving a watch that fires on the next membership change (or on the
/// service node's creation, if there is none yet).
async fn read_set(zk: &Client, dir: &str) -> Result<(BTreeMap<String, ServiceInstance>, crate::WatchFuture)> {
    loop {
        let (children, fut) = match zk.get_children_w(dir).await {
            Ok(r) => r,
            Err(Error::NoNode) => match zk.exists_w(dir).await? {
                (None, fut) => return Ok((BTreeMap::new(), fut)),
                (Some(_), _) => continue,
            },
            Err(e) => return Err(e),
        };
        let mut set = BTreeMap::new();
        for c in children {
            match zk.get_data(&join(dir, &c)).await {
                Ok((data, _)) => match ServiceInstance::from_json(&data) {
                    Some(inst) => {
                        set.insert(c, inst);
                    }
                    None => tracing::warn!(node = %join(dir, &c), "service instance with undecodable data skipped"),
                },
                Err(Error::NoNode) => {}
                Err(e) => return Err(e),
            }
        }
        return Ok((set, fut));
    }
}
