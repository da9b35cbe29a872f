//! Config caches: a watched node ([`NodeCache`]) or subtree ([`TreeCache`]) kept current in
//! memory by a background task, readable without a round trip.
//!
//! # How
//! `NodeCache` re-reads its node with a data watch (an exists watch while the node is
//! missing) every time the watch fires. `TreeCache` adds a persistent recursive watch on the
//! root *before* reading the subtree (so no change between the read and the watch is
//! missed), then re-reads each node an event names and drops deleted subtrees.
//!
//! # Failure cases
//! - **Disconnected**: the cache keeps serving the last state it saw (stale, never emptied
//!   by a mere disconnection). One-time watches are re-armed with SetWatches2, which also
//!   reports changes made meanwhile. Persistent watches are re-armed too, but a server does
//!   not replay the changes missed while away, so `TreeCache` re-reads the whole subtree
//!   after every reconnection.
//! - **Events dropped** because the consumer side lagged (`Error::Lagged`): full re-read.
//! - **Session expired**: the cache stops; [`changed`](NodeCache::changed) returns the error
//!   and the contents are the last seen. Build a new cache on a new client.
//! - **Same session, same path, two kinds of watch**: ZooKeeper 3.8 keeps one watch mode per
//!   session and path, so a one-time watch set on a `TreeCache`'s root by the same client
//!   (a `NodeCache` on that path, say) replaces the recursive watch there. Give a
//!   `TreeCache` a client of its own if anything else watches its root.
//! - **Node deleted and re-created between two reads**: the cache reflects the final state;
//!   intermediate states may be skipped (watches are edge-triggered, caches are levels).

use crate::path::join;
use crate::{AddWatchMode, Client, Error, EventType, Result, SessionState, Stat};
use std::collections::BTreeMap;
use tokio::sync::watch;

/// A node's data and Stat, or `None` while it does not exist.
pub type NodeState = Option<(Vec<u8>, Stat)>;

/// One node, kept current.
#[derive(Debug)]
pub struct NodeCache {
    rx: watch::Receiver<Result<NodeState>>,
    task: tokio::task::JoinHandle<()>,
}

impl NodeCache {
    /// Starts caching `path`; returns once it has been read.
    pub async fn start(zk: &Client, path: &str) -> Result<NodeCache> {
        crate::path::validate_path(path, false)?;
        let (tx, mut rx) = watch::channel(Ok(None));
        let (zk, path) = (zk.clone(), path.to_owned());
        let task = tokio::spawn(async move {
            loop {
                let (state, fut) = match zk.get_data_w(&path).await {
                    Ok((d, s, fut)) => (Some((d, s)), fut),
                    Err(Error::NoNode) => match zk.exists_w(&path).await {
                        Ok((None, fut)) => (None, fut),
                        Ok((Some(_), _)) => continue,
                        Err(e) if e.is_retryable() => {
                            if zk.wait_connected().await.is_err() {
                                let _ = tx.send(Err(zk.state().terminal_error()));
                                return;
                            }
                            continue;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    },
                    Err(e) if e.is_retryable() => {
                        if zk.wait_connected().await.is_err() {
                            let _ = tx.send(Err(zk.state().terminal_error()));
                            return;
                        }
                        continue;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let _ = tx.send(Ok(state));
                tokio::select! {
                    r = fut => if let Err(e) = r { let _ = tx.send(Err(e)); return; },
                    _ = tx.closed() => return,
                }
            }
        });
        rx.changed().await.map_err(|_| Error::Closed)?;
        if let Err(e) = &*rx.borrow() {
            return Err(e.clone());
        }
        Ok(NodeCache { rx, task })
    }

    /// The node as last seen.
    pub fn get(&self) -> NodeState {
        self.rx.borrow().as_ref().ok().cloned().flatten()
    }

    /// Waits for the next change.
    pub async fn changed(&mut self) -> Result<NodeState> {
        self.rx.changed().await.map_err(|_| Error::Closed)?;
        self.rx.borrow_and_update().clone()
    }
}

impl Drop for NodeCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A subtree: each node's path (the root included) to its data and Stat.
pub type Tree = BTreeMap<String, (Vec<u8>, Stat)>;

/// Every node of a subtree, kept current.
#[derive(Debug)]
pub struct TreeCache {
    rx: watch::Receiver<Result<Tree>>,
    task: tokio::task::JoinHandle<()>,
}

impl TreeCache {
    /// Starts caching the subtree at `root`; returns once it has been read.
    pub async fn start(zk: &Client, root: &str) -> Result<TreeCache> {
        crate::path::validate_path(root, false)?;
        let (tx, mut rx) = watch::channel(Ok(BTreeMap::new()));
        let (zk, root) = (zk.clone(), root.to_owned());
        let task = tokio::spawn(async move {
            let mut states = zk.session_events();
            let fail = |e: Error| {
                let _ = tx.send(Err(e));
            };
            'resync: loop {
                let mut stream = match zk.add_watch(&root, AddWatchMode::PersistentRecursive).await {
                    Ok(s) => s,
                    Err(e) if e.is_retryable() => {
                        if let Err(e) = zk.wait_connected().await {
                            return fail(e);
                        }
                        continue;
                    }
                    Err(e) => return fail(e),
                };
                let mut tree = BTreeMap::new();
                match read_subtree(&zk, &root, &mut tree).await {
                    Ok(()) => {}
                    Err(e) if e.is_retryable() => {
                        if let Err(e) = zk.wait_connected().await {
                            return fail(e);
                        }
                        continue;
                    }
                    Err(e) => return fail(e),
                }
                let _ = tx.send(Ok(tree.clone()));
                loop {
                    tokio::select! {
                        ev = stream.next() => match ev {
                            None => return fail(zk.state().terminal_error()),
                            Some(Err(_lagged)) => continue 'resync,
                            Some(Ok(ev)) => {
                                let r = match ev.event_type {
                                    EventType::NodeDeleted => {
                                        let prefix = format!("{}/", ev.path);
                                        tree.retain(|k, _| *k != ev.path && !k.starts_with(&prefix));
                                        Ok(())
                                    }
                                    EventType::NodeCreated | EventType::NodeDataChanged => {
                                        match zk.get_data(&ev.path).await {
                                            Ok(v) => { tree.insert(ev.path.clone(), v); Ok(()) }
                                            Err(Error::NoNode) => { tree.remove(&ev.path); Ok(()) }
                                            Err(e) => Err(e),
                                        }
                                    }
                                    _ => Ok(()),
                                };
                                match r {
                                    Ok(()) => { let _ = tx.send(Ok(tree.clone())); }
                                    Err(e) if e.is_retryable() => continue 'resync,
                                    Err(e) => return fail(e),
                                }
                            }
                        },
                        s = states.recv() => match s {
                            Ok(SessionState::Connected) | Ok(SessionState::ConnectedReadOnly) => continue 'resync,
                            Ok(s) if s.is_terminal() => return fail(s.terminal_error()),
                            Ok(_) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue 'resync,
                            Err(_) => return fail(Error::Closed),
                        },
                        _ = tx.closed() => return,
                    }
                }
            }
        });
        rx.changed().await.map_err(|_| Error::Closed)?;
        if let Err(e) = &*rx.borrow() {
            return Err(e.clone());
        }
        Ok(TreeCache { rx, task })
    }

    /// The subtree as last seen.
    pub fn get(&self) -> BTreeMap<String, (Vec<u8>, Stat)> {
        self.rx.borrow().as_ref().map(|m| m.clone()).unwrap_or_default()
    }

    /// One node's data, as last seen.
    pub fn data(&self, path: &str) -> Option<Vec<u8>> {
        self.rx.borrow().as_ref().ok().and_then(|m| m.get(path).map(|(d, _)| d.clone()))
    }

    /// Waits for the next change.
    pub async fn changed(&mut self) -> Result<BTreeMap<String, (Vec<u8>, Stat)>> {
        self.rx.changed().await.map_err(|_| Error::Closed)?;
        self.rx.borrow_and_update().clone()
    }
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_subtree(zk: &Client, root: &str, out: &mut BTreeMap<String, (Vec<u8>, Stat)>) -> Result<()> {
    let mut todo = vec![root.to_owned()];
    while let Some(p) = todo.pop() {
        match zk.get_data(&p).await {
            Ok(v) => {
                out.insert(p.clone(), v);
            }
            Err(Error::NoNode) => continue,
            Err(e) => return Err(e),
        }
        match zk.get_children(&p).await {
            Ok(children) => todo.extend(children.iter().map(|c| join(&p, c))),
            Err(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
