//! The client's side of watches (ZooKeeper's `ZKWatchManager`): which application waiters
//! hear of which server notification, and the SetWatches2 that re-arms them after a
//! reconnection. Owned by the session task; no I/O.
//!
//! One-time watches are `oneshot` senders (the application holds a [`WatchFuture`]);
//! persistent and persistent-recursive watches are bounded `broadcast` senders (the
//! application holds a [`WatchStream`]). Keys are server paths (chroot included).
//!
//! Routing follows `ZKWatchManager.materialize`: NodeCreated and NodeDataChanged go to data
//! and exist watches; NodeChildrenChanged to child watches; NodeDeleted to data, exist and
//! child watches. Persistent watches on the path hear every type; recursive watches on the
//! path or any ancestor hear every type except NodeChildrenChanged.

use crate::error::Error;
use crate::path::strip_chroot;
use crate::types::{SessionState, WatchedEvent};
use rzk_proto::client::SetWatches2;
use rzk_proto::{EventType, KeeperState, WatcherType, Zxid};
use std::collections::HashMap;
use tokio::sync::{broadcast, oneshot, watch};

/// Where a one-time watch is registered once its request succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OneTimeKind {
    Data,
    /// exists(): a data watch if the node exists, an exist watch if not.
    Exists,
    Child,
}

/// A watch waiting for its request's reply.
#[derive(Debug)]
pub(crate) enum WatchReg {
    OneTime { kind: OneTimeKind, path: String, tx: oneshot::Sender<WatchedEvent> },
    Persistent { recursive: bool, path: String, tx: broadcast::Sender<WatchedEvent> },
}

#[derive(Default)]
pub(crate) struct Watches {
    data: HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    exist: HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    child: HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    persistent: HashMap<String, Vec<broadcast::Sender<WatchedEvent>>>,
    recursive: HashMap<String, Vec<broadcast::Sender<WatchedEvent>>>,
}

/// SetWatches2 packets are kept under this many bytes of paths, as the Java client does.
const SET_WATCHES_BYTES_MAX: usize = 128 * 1024;

impl Watches {
    /// Registers a watch whose request succeeded (`exists` = the node was there, for
    /// `OneTimeKind::Exists`).
    pub fn register(&mut self, reg: WatchReg, node_exists: bool) {
        match reg {
            WatchReg::OneTime { kind, path, tx } => {
                let map = match kind {
                    OneTimeKind::Data => &mut self.data,
                    OneTimeKind::Exists if node_exists => &mut self.data,
                    OneTimeKind::Exists => &mut self.exist,
                    OneTimeKind::Child => &mut self.child,
                };
                map.entry(path).or_default().push(tx);
            }
            WatchReg::Persistent { recursive, path, tx } => {
                let map = if recursive { &mut self.recursive } else { &mut self.persistent };
                map.entry(path).or_default().push(tx);
            }
        }
    }

    /// Delivers a server notification (its path is a server path).
    pub fn deliver(&mut self, event_type: EventType, state: KeeperState, server_path: &str, chroot: Option<&str>) {
        let ev = WatchedEvent { event_type, state, path: strip_chroot(chroot, server_path) };
        let mut once = Vec::new();
        match event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                once.extend(self.data.remove(server_path).unwrap_or_default());
                once.extend(self.exist.remove(server_path).unwrap_or_default());
            }
            EventType::NodeChildrenChanged => {
                once.extend(self.child.remove(server_path).unwrap_or_default());
            }
            EventType::NodeDeleted => {
                once.extend(self.data.remove(server_path).unwrap_or_default());
                once.extend(self.exist.remove(server_path).unwrap_or_default());
                once.extend(self.child.remove(server_path).unwrap_or_default());
            }
            _ => {}
        }
        for tx in once {
            let _ = tx.send(ev.clone());
        }
        send_all(&mut self.persistent, server_path, &ev);
        if event_type != EventType::NodeChildrenChanged {
            let mut p = server_path;
            loop {
                send_all(&mut self.recursive, p, &ev);
                if p == "/" {
                    break;
                }
                p = crate::path::parent(p);
            }
        }
    }

    /// Removes the watches of `kind` on a path locally and tells their waiters
    /// (DataWatchRemoved / ChildWatchRemoved / PersistentWatchRemoved). Returns whether any
    /// was there.
    pub fn remove(&mut self, kind: WatcherType, server_path: &str, chroot: Option<&str>) -> bool {
        let path = strip_chroot(chroot, server_path);
        let ev = |t| WatchedEvent { event_type: t, state: KeeperState::SyncConnected, path: path.clone() };
        let mut found = false;
        let data = matches!(kind, WatcherType::Data | WatcherType::Any);
        let child = matches!(kind, WatcherType::Children | WatcherType::Any);
        if data {
            for tx in self.data.remove(server_path).into_iter().chain(self.exist.remove(server_path)).flatten() {
                found = true;
                let _ = tx.send(ev(EventType::DataWatchRemoved));
            }
        }
        if child {
            for tx in self.child.remove(server_path).into_iter().flatten() {
                found = true;
                let _ = tx.send(ev(EventType::ChildWatchRemoved));
            }
        }
        let persistent = matches!(kind, WatcherType::Persistent | WatcherType::Any);
        let recursive = matches!(kind, WatcherType::PersistentRecursive | WatcherType::Any);
        for (on, map) in [(persistent, &mut self.persistent), (recursive, &mut self.recursive)] {
            if on {
                for tx in map.remove(server_path).into_iter().flatten() {
                    found = true;
                    let _ = tx.send(ev(EventType::PersistentWatchRemoved));
                }
            }
        }
        found
    }

    /// Drops watches nobody waits for any more, then builds the SetWatches2 packets that
    /// re-arm the rest on a new connection, relative to the last zxid the client saw.
    pub fn set_watches(&mut self, relative_zxid: Zxid) -> Vec<SetWatches2> {
        for m in [&mut self.data, &mut self.exist, &mut self.child] {
            m.retain(|_, v| {
                v.retain(|tx| !tx.is_closed());
                !v.is_empty()
            });
        }
        for m in [&mut self.persistent, &mut self.recursive] {
            m.retain(|_, v| {
                v.retain(|tx| tx.receiver_count() > 0);
                !v.is_empty()
            });
        }
        let mut out = Vec::new();
        let mut cur = SetWatches2 { relative_zxid, ..Default::default() };
        let mut bytes = 0;
        let lists: [(&HashMap<String, Vec<_>>, usize); 3] = [(&self.data, 0), (&self.exist, 1), (&self.child, 2)];
        let mut all: Vec<(usize, String)> = Vec::new();
        for (m, i) in lists {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            all.extend(keys.into_iter().map(|k| (i, k.clone())));
        }
        for (m, i) in [(&self.persistent, 3), (&self.recursive, 4)] {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            all.extend(keys.into_iter().map(|k| (i, k.clone())));
        }
        for (i, path) in all {
            if bytes + path.len() > SET_WATCHES_BYTES_MAX && bytes > 0 {
                out.push(std::mem::replace(&mut cur, SetWatches2 { relative_zxid, ..Default::default() }));
                bytes = 0;
            }
            bytes += path.len();
            match i {
                0 => cur.data_watches.push(path),
                1 => cur.exist_watches.push(path),
                2 => cur.child_watches.push(path),
                3 => cur.persistent_watches.push(path),
                _ => cur.persistent_recursive_watches.push(path),
            }
        }
        if bytes > 0 {
            out.push(cur);
        }
        out
    }

    /// The session ended: every waiter learns it from the session state (senders dropped).
    pub fn clear(&mut self) {
        *self = Watches::default();
    }
}

fn send_all(map: &mut HashMap<String, Vec<broadcast::Sender<WatchedEvent>>>, path: &str, ev: &WatchedEvent) {
    if let Some(v) = map.get_mut(path) {
        v.retain(|tx| tx.send(ev.clone()).is_ok());
        if v.is_empty() {
            map.remove(path);
        }
    }
}

/// A one-time watch: resolves with the event that fired it, or with the error that ended the
/// session (SessionExpired, AuthFailed, Closed) before it fired. Disconnections do not end
/// it: the watch is re-armed on the next connection.
pub struct WatchFuture {
    pub(crate) rx: oneshot::Receiver<WatchedEvent>,
    pub(crate) state: watch::Receiver<SessionState>,
}

impl std::future::Future for WatchFuture {
    type Output = Result<WatchedEvent, Error>;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        match std::pin::Pin::new(&mut self.rx).poll(cx) {
            std::task::Poll::Ready(Ok(ev)) => std::task::Poll::Ready(Ok(ev)),
            std::task::Poll::Ready(Err(_)) => {
                let st = *self.state.borrow();
                std::task::Poll::Ready(Err(st.terminal_error()))
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl std::fmt::Debug for WatchFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatchFuture")
    }
}

/// A persistent (or persistent-recursive) watch: every matching event, in order, until the
/// watch is removed (a final PersistentWatchRemoved event) or the session ends (`None`).
#[derive(Debug)]
pub struct WatchStream {
    pub(crate) rx: broadcast::Receiver<WatchedEvent>,
}

impl WatchStream {
    /// The next event; `Some(Err(Error::Lagged))` if the buffer overflowed (events were
    /// dropped: re-read the watched state), `None` once the watch is gone.
    pub async fn next(&mut self) -> Option<Result<WatchedEvent, Error>> {
        match self.rx.recv().await {
            Ok(ev) => Some(Ok(ev)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(Err(Error::Lagged { missed })),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn once(w: &mut Watches, kind: OneTimeKind, path: &str, exists: bool) -> oneshot::Receiver<WatchedEvent> {
        let (tx, rx) = oneshot::channel();
        w.register(WatchReg::OneTime { kind, path: path.into(), tx }, exists);
        rx
    }

    #[test]
    fn routing_follows_zookeeper() {
        let mut w = Watches::default();
        let mut d = once(&mut w, OneTimeKind::Data, "/r/a", true);
        let mut e = once(&mut w, OneTimeKind::Exists, "/r/a", false);
        let mut c = once(&mut w, OneTimeKind::Child, "/r/a", true);
        let (ptx, mut prx) = broadcast::channel(8);
        w.register(WatchReg::Persistent { recursive: true, path: "/r".into(), tx: ptx }, true);
        w.deliver(EventType::NodeChildrenChanged, KeeperState::SyncConnected, "/r/a", Some("/r"));
        assert_eq!(c.try_recv().unwrap().path, "/a");
        assert!(d.try_recv().is_err() && e.try_recv().is_err());
        assert!(prx.try_recv().is_err(), "recursive watches do not hear child events");
        w.deliver(EventType::NodeCreated, KeeperState::SyncConnected, "/r/a", Some("/r"));
        assert_eq!(d.try_recv().unwrap().event_type, EventType::NodeCreated);
        assert_eq!(e.try_recv().unwrap().event_type, EventType::NodeCreated);
        assert_eq!(prx.try_recv().unwrap().path, "/a");
        // one-time watches fired once; the recursive one keeps going
        w.deliver(EventType::NodeDeleted, KeeperState::SyncConnected, "/r/a/b", Some("/r"));
        assert_eq!(prx.try_recv().unwrap().path, "/a/b");
        assert!(w.set_watches(Zxid(5)).iter().all(|s| s.data_watches.is_empty()));
    }

    #[test]
    fn set_watches_lists_live_watches_only() {
        let mut w = Watches::default();
        let _keep = once(&mut w, OneTimeKind::Data, "/a", true);
        drop(once(&mut w, OneTimeKind::Child, "/gone", true));
        let _e = once(&mut w, OneTimeKind::Exists, "/b", false);
        let (ptx, _prx) = broadcast::channel(8);
        w.register(WatchReg::Persistent { recursive: false, path: "/p".into(), tx: ptx }, true);
        let sw = w.set_watches(Zxid(7));
        assert_eq!(sw.len(), 1);
        assert_eq!(sw[0].relative_zxid, Zxid(7));
        assert_eq!(sw[0].data_watches, vec!["/a".to_string()]);
        assert_eq!(sw[0].exist_watches, vec!["/b".to_string()]);
        assert!(sw[0].child_watches.is_empty());
        assert_eq!(sw[0].persistent_watches, vec!["/p".to_string()]);
    }

    #[test]
    fn set_watches_splits_big_sets() {
        let mut w = Watches::default();
        let mut keep = Vec::new();
        for i in 0..3000 {
            keep.push(once(&mut w, OneTimeKind::Data, &format!("/{:0100}", i), true));
        }
        let sw = w.set_watches(Zxid(1));
        assert!(sw.len() >= 2);
        assert_eq!(sw.iter().map(|s| s.data_watches.len()).sum::<usize>(), 3000);
        for s in &sw {
            assert!(s.data_watches.iter().map(|p| p.len()).sum::<usize>() <= SET_WATCHES_BYTES_MAX);
        }
    }

    #[test]
    fn remove_tells_the_waiters() {
        let mut w = Watches::default();
        let mut d = once(&mut w, OneTimeKind::Data, "/a", true);
        let mut c = once(&mut w, OneTimeKind::Child, "/a", true);
        assert!(w.remove(WatcherType::Data, "/a", None));
        assert_eq!(d.try_recv().unwrap().event_type, EventType::DataWatchRemoved);
        assert!(c.try_recv().is_err());
        assert!(!w.remove(WatcherType::Data, "/a", None));
        assert!(w.remove(WatcherType::Any, "/a", None));
        assert_eq!(c.try_recv().unwrap().event_type, EventType::ChildWatchRemoved);
    }
}
