//! [`Client`]: the application's handle on one ZooKeeper session.
//!
//! A handle is cheap to clone; all clones share the session. Each operation validates its
//! path, applies the chroot, hands the request to the session task over the bounded request
//! channel and waits for the reply (bounded by the request timeout, if one is set). Paths in
//! replies come back through the chroot. Dropping the last handle closes the session.

use crate::error::{Error, Result};
use crate::path::{prepend_chroot, strip_chroot, validate_path, ConnectString};
use crate::session::{Command, Handles, SessionTask};
use crate::types::{Config, CreateOptions, Op, OpResult, ReadOp, ReadResult, SessionInfo, SessionState};
use crate::watch::{OneTimeKind, WatchFuture, WatchReg, WatchStream};
use rzk_proto::client::{
    AddWatchRequest, AuthPacket, CheckVersionRequest, ClientInfo, Create, DeleteRequest, OpResult as WireResult, PathRequest,
    PathWatchRequest, ReconfigRequest, Request, Response, SetAclRequest, SetDataRequest, WatchesRequest,
};
use rzk_proto::{Acl, AddWatchMode, ErrorCode, OpCode, Stat, WatcherType};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// The largest TTL ZooKeeper accepts (`EphemeralType.TTL.maxValue()`, 40 bits of milliseconds).
pub const TTL_MS_MAX: i64 = 0xFF_FFFF_FFFF;

/// A handle on a ZooKeeper session. See the [crate docs](crate) for an example.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    request_timeout: Option<Duration>,
}

struct Inner {
    cmd_tx: mpsc::Sender<Command>,
    close_tx: mpsc::Sender<oneshot::Sender<()>>,
    state_rx: watch::Receiver<SessionState>,
    events_tx: broadcast::Sender<SessionState>,
    info: Arc<Mutex<SessionInfo>>,
    chroot: Option<String>,
    watch_stream_events_max: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("session", &self.session_info().id).field("state", &self.state()).finish()
    }
}

impl Client {
    /// Connects with default settings and waits for the session (up to the connect timeout).
    pub async fn connect(connect_string: &str) -> Result<Client> {
        Self::connect_with(connect_string, Config::default()).await
    }

    /// Connects and waits until the session is established (or `cfg.connect_timeout` passes:
    /// ConnectionLoss, and the client is closed).
    pub async fn connect_with(connect_string: &str, cfg: Config) -> Result<Client> {
        let limit = cfg.connect_timeout;
        let client = Self::start(connect_string, cfg)?;
        match tokio::time::timeout(limit, client.wait_connected()).await {
            Ok(Ok(())) => Ok(client),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                client.close().await;
                Err(Error::ConnectionLoss)
            }
        }
    }

    /// Starts the session task and returns at once (state `Connecting`). Must be called
    /// inside a tokio runtime.
    pub fn start(connect_string: &str, cfg: Config) -> Result<Client> {
        let cs = ConnectString::parse(connect_string)?;
        let (cmd_tx, cmd_rx) = mpsc::channel(cfg.queue_requests_max.max(1));
        let (close_tx, close_rx) = mpsc::channel(8);
        let (state_tx, state_rx) = watch::channel(SessionState::Connecting);
        let (events_tx, _) = broadcast::channel(64);
        let info = Arc::new(Mutex::new(cfg.session.clone().unwrap_or_default()));
        let handles = Handles { cmd_rx, close_rx, state_tx, events_tx: events_tx.clone(), info: info.clone() };
        let request_timeout = cfg.request_timeout;
        let watch_stream_events_max = cfg.watch_stream_events_max.max(1);
        let task = SessionTask::new(cfg, cs.hosts, cs.chroot.clone(), handles);
        tokio::spawn(task.run());
        Ok(Client {
            inner: Arc::new(Inner { cmd_tx, close_tx, state_rx, events_tx, info, chroot: cs.chroot, watch_stream_events_max }),
            request_timeout,
        })
    }

    /// Waits until connected (read-write or read-only); fails once the session has ended.
    pub async fn wait_connected(&self) -> Result<()> {
        let mut rx = self.inner.state_rx.clone();
        loop {
            let s = *rx.borrow_and_update();
            if s.is_connected() {
                return Ok(());
            }
            if s.is_terminal() {
                return Err(s.terminal_error());
            }
            if rx.changed().await.is_err() {
                return Err(self.ended());
            }
        }
    }

    /// A handle on the same session whose requests time out after `d` (RequestTimeout).
    pub fn with_timeout(&self, d: Duration) -> Client {
        Client { inner: self.inner.clone(), request_timeout: Some(d) }
    }

    /// The session's current state.
    pub fn state(&self) -> SessionState {
        *self.inner.state_rx.borrow()
    }

    /// A receiver that always holds the current state (`changed().await` to follow it).
    pub fn state_watch(&self) -> watch::Receiver<SessionState> {
        self.inner.state_rx.clone()
    }

    /// Every state change from now on (Connected, Disconnected, Expired, ...).
    pub fn session_events(&self) -> broadcast::Receiver<SessionState> {
        self.inner.events_tx.subscribe()
    }

    /// Session id, password and negotiated timeout.
    pub fn session_info(&self) -> SessionInfo {
        self.inner.info.lock().expect("session info").clone()
    }

    /// The chroot from the connect string, if any.
    pub fn chroot(&self) -> Option<&str> {
        self.inner.chroot.as_deref()
    }

    /// Closes the session (closeSession if a server is reachable) and waits for the task to
    /// end. Later requests fail with `Error::Closed`.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.close_tx.send(tx).await.is_ok() {
            let _ = rx.await;
        }
    }

    // ---------------------------------------------------------------- plumbing

    fn ended(&self) -> Error {
        let s = *self.inner.state_rx.borrow();
        if s.is_terminal() {
            s.terminal_error()
        } else {
            Error::ConnectionLoss
        }
    }

    fn server_path(&self, path: &str) -> Result<String> {
        validate_path(path, false)?;
        Ok(prepend_chroot(self.chroot(), path))
    }

    fn client_path(&self, path: &str) -> String {
        strip_chroot(self.chroot(), path)
    }

    async fn with_deadline<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        match self.request_timeout {
            Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| Error::RequestTimeout)?,
            None => fut.await,
        }
    }

    async fn call_with(&self, req: Request, watch: Option<WatchReg>, then_remove: Option<(WatcherType, String)>) -> Result<Response> {
        let (tx, rx) = oneshot::channel();
        let cmd = Command::Request { req, watch, then_remove, reply: tx };
        self.with_deadline(async {
            self.inner.cmd_tx.send(cmd).await.map_err(|_| self.ended())?;
            rx.await.map_err(|_| self.ended())?
        })
        .await
    }

    async fn call(&self, req: Request) -> Result<Response> {
        self.call_with(req, None, None).await
    }

    fn one_time(&self, kind: OneTimeKind, server_path: &str) -> (WatchReg, WatchFuture) {
        let (tx, rx) = oneshot::channel();
        (WatchReg::OneTime { kind, path: server_path.to_owned(), tx }, WatchFuture { rx, state: self.inner.state_rx.clone() })
    }

    fn create_request(&self, path: &str, data: Option<&[u8]>, opts: &CreateOptions, want_stat: bool) -> Result<Request> {
        validate_path(path, opts.mode.is_sequential())?;
        let op = if opts.mode.is_container() {
            OpCode::CreateContainer
        } else if opts.mode.is_ttl() {
            OpCode::CreateTtl
        } else if want_stat {
            OpCode::Create2
        } else {
            OpCode::Create
        };
        let ttl = match (opts.mode.is_ttl(), opts.ttl) {
            (true, Some(d)) => {
                let ms = d.as_millis();
                if ms == 0 || ms > TTL_MS_MAX as u128 {
                    return Err(Error::BadArguments);
                }
                Some(ms as i64)
            }
            (true, None) | (false, Some(_)) => return Err(Error::BadArguments),
            (false, None) => None,
        };
        Ok(Request::Create(Create {
            op,
            path: prepend_chroot(self.chroot(), path),
            data: data.map(<[u8]>::to_vec),
            acl: opts.acl.clone(),
            flags: opts.mode.code(),
            ttl,
        }))
    }

    // ---------------------------------------------------------------- operations

    /// Creates a znode; returns its path (with the sequence number for sequential modes).
    pub async fn create(&self, path: &str, data: &[u8], opts: &CreateOptions) -> Result<String> {
        let req = self.create_request(path, Some(data), opts, false)?;
        match self.call(req).await? {
            Response::Path(p) | Response::Create2 { path: p, .. } => Ok(self.client_path(&p)),
            other => Err(unexpected(other)),
        }
    }

    /// Creates a znode and returns its path and Stat (create2; containers and TTL nodes use
    /// their own op codes, which also return the Stat).
    pub async fn create2(&self, path: &str, data: &[u8], opts: &CreateOptions) -> Result<(String, Stat)> {
        self.create2_nullable(path, Some(data), opts).await
    }

    /// As [`create2`](Self::create2), but `None` creates the node with null data, which
    /// ZooKeeper keeps apart from empty data (zkCli's `create /a` does this).
    pub async fn create2_nullable(&self, path: &str, data: Option<&[u8]>, opts: &CreateOptions) -> Result<(String, Stat)> {
        let req = self.create_request(path, data, opts, true)?;
        match self.call(req).await? {
            Response::Create2 { path: p, stat } => Ok((self.client_path(&p), stat)),
            other => Err(unexpected(other)),
        }
    }

    /// Deletes a znode; `version` -1 matches any version.
    pub async fn delete(&self, path: &str, version: i32) -> Result<()> {
        let path = self.server_path(path)?;
        self.call(Request::Delete(DeleteRequest { path, version })).await.map(|_| ())
    }

    /// The Stat of a znode, or `None` if there is none.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        let path = self.server_path(path)?;
        stat_or_none(self.call(Request::Exists(PathWatchRequest { path, watch: false })).await)
    }

    /// As [`exists`](Self::exists), leaving a watch that fires on the node's creation,
    /// deletion or data change.
    pub async fn exists_w(&self, path: &str) -> Result<(Option<Stat>, WatchFuture)> {
        let path = self.server_path(path)?;
        let (reg, fut) = self.one_time(OneTimeKind::Exists, &path);
        let st = stat_or_none(self.call_with(Request::Exists(PathWatchRequest { path, watch: true }), Some(reg), None).await)?;
        Ok((st, fut))
    }

    /// A znode's data (null data reads as empty) and Stat.
    pub async fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat)> {
        let path = self.server_path(path)?;
        data_of(self.call(Request::GetData(PathWatchRequest { path, watch: false })).await?)
    }

    /// As [`get_data`](Self::get_data), leaving a watch for the node's next change or deletion.
    pub async fn get_data_w(&self, path: &str) -> Result<(Vec<u8>, Stat, WatchFuture)> {
        let path = self.server_path(path)?;
        let (reg, fut) = self.one_time(OneTimeKind::Data, &path);
        let (d, s) = data_of(self.call_with(Request::GetData(PathWatchRequest { path, watch: true }), Some(reg), None).await?)?;
        Ok((d, s, fut))
    }

    /// getData keeping null data apart from empty (`None`), with a watch if `watch`.
    pub async fn get_data_nullable(&self, path: &str, watch: bool) -> Result<(Option<Vec<u8>>, Stat, Option<WatchFuture>)> {
        let path = self.server_path(path)?;
        let (reg, fut) = if watch {
            let (r, f) = self.one_time(OneTimeKind::Data, &path);
            (Some(r), Some(f))
        } else {
            (None, None)
        };
        match self.call_with(Request::GetData(PathWatchRequest { path, watch }), reg, None).await? {
            Response::GetData { data, stat } => Ok((data, stat, fut)),
            other => Err(unexpected(other)),
        }
    }

    /// Sets a znode's data if its version is `version` (-1: any); returns the new Stat.
    pub async fn set_data(&self, path: &str, data: &[u8], version: i32) -> Result<Stat> {
        let path = self.server_path(path)?;
        match self.call(Request::SetData(SetDataRequest { path, data: Some(data.to_vec()), version })).await? {
            Response::Stat(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// A znode's children (names, in the server's order).
    pub async fn get_children(&self, path: &str) -> Result<Vec<String>> {
        let path = self.server_path(path)?;
        match self.call(Request::GetChildren(PathWatchRequest { path, watch: false })).await? {
            Response::Children(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// As [`get_children`](Self::get_children), leaving a watch for the next change of the
    /// child list (or the node's deletion).
    pub async fn get_children_w(&self, path: &str) -> Result<(Vec<String>, WatchFuture)> {
        let path = self.server_path(path)?;
        let (reg, fut) = self.one_time(OneTimeKind::Child, &path);
        match self.call_with(Request::GetChildren(PathWatchRequest { path, watch: true }), Some(reg), None).await? {
            Response::Children(c) => Ok((c, fut)),
            other => Err(unexpected(other)),
        }
    }

    /// getChildren2: the children and the parent's Stat.
    pub async fn get_children2(&self, path: &str) -> Result<(Vec<String>, Stat)> {
        let path = self.server_path(path)?;
        match self.call(Request::GetChildren2(PathWatchRequest { path, watch: false })).await? {
            Response::Children2 { children, stat } => Ok((children, stat)),
            other => Err(unexpected(other)),
        }
    }

    /// getChildren2 with a child watch.
    pub async fn get_children2_w(&self, path: &str) -> Result<(Vec<String>, Stat, WatchFuture)> {
        let path = self.server_path(path)?;
        let (reg, fut) = self.one_time(OneTimeKind::Child, &path);
        match self.call_with(Request::GetChildren2(PathWatchRequest { path, watch: true }), Some(reg), None).await? {
            Response::Children2 { children, stat } => Ok((children, stat, fut)),
            other => Err(unexpected(other)),
        }
    }

    /// A znode's ACL and Stat.
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        let path = self.server_path(path)?;
        match self.call(Request::GetAcl(PathRequest { path })).await? {
            Response::GetAcl { acl, stat } => Ok((acl, stat)),
            other => Err(unexpected(other)),
        }
    }

    /// Sets a znode's ACL if its ACL version is `aversion` (-1: any).
    pub async fn set_acl(&self, path: &str, acl: &[Acl], aversion: i32) -> Result<Stat> {
        let path = self.server_path(path)?;
        match self.call(Request::SetAcl(SetAclRequest { path, acl: acl.to_vec(), version: aversion })).await? {
            Response::Stat(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Fails with BadVersion (or NoNode) unless the znode's version is `version`.
    ///
    /// Sent as a one-op multi: ZooKeeper 3.8 never answers a bare check request (op 13
    /// outside a multi), so a bare one would hang against it.
    pub async fn check(&self, path: &str, version: i32) -> Result<()> {
        match self.multi(&[Op::check(path, version)]).await {
            Ok(_) => Ok(()),
            Err(Error::Multi { source, .. }) => Err(*source),
            Err(e) => Err(e),
        }
    }

    /// Applies all ops atomically, or none. On failure the error is `Error::Multi` naming
    /// the first op that failed and why.
    pub async fn multi(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        let mut reqs = Vec::with_capacity(ops.len());
        for op in ops {
            reqs.push(match op {
                // Plain creates go as op `create`: ZooKeeper 3.8 answers a create2 inside a
                // multi with a `create` result anyway (no Stat).
                Op::Create { path, data, options } => self.create_request(path, Some(data), options, false)?,
                Op::Delete { path, version } => Request::Delete(DeleteRequest { path: self.server_path(path)?, version: *version }),
                Op::SetData { path, data, version } => {
                    Request::SetData(SetDataRequest { path: self.server_path(path)?, data: Some(data.clone()), version: *version })
                }
                Op::Check { path, version } => Request::Check(CheckVersionRequest { path: self.server_path(path)?, version: *version }),
            });
        }
        let results = match self.call(Request::Multi(reqs)).await? {
            Response::Multi(r) => r,
            other => return Err(unexpected(other)),
        };
        let failed = results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r {
                WireResult::Error { err } if *err != 0 => Some((i, *err)),
                _ => None,
            })
            .min_by_key(|(i, err)| (*err == ErrorCode::RuntimeInconsistency.code(), *i));
        if let Some((index, err)) = failed {
            return Err(Error::Multi { index, source: Box::new(Error::from_code(err)) });
        }
        results
            .into_iter()
            .map(|r| match r {
                WireResult::Create { path } => Ok(OpResult::Create { path: self.client_path(&path), stat: None }),
                WireResult::Create2 { path, stat } => Ok(OpResult::Create { path: self.client_path(&path), stat: Some(stat) }),
                WireResult::Delete => Ok(OpResult::Delete),
                WireResult::SetData { stat } => Ok(OpResult::SetData { stat }),
                WireResult::Check => Ok(OpResult::Check),
                other => Err(unexpected(Response::Multi(vec![other]))),
            })
            .collect()
    }

    /// Several reads in one round trip; each succeeds or fails on its own (multiRead).
    pub async fn multi_read(&self, ops: &[ReadOp]) -> Result<Vec<ReadResult>> {
        let mut reqs = Vec::with_capacity(ops.len());
        for op in ops {
            reqs.push(match op {
                ReadOp::GetData(p) => Request::GetData(PathWatchRequest { path: self.server_path(p)?, watch: false }),
                ReadOp::GetChildren(p) => Request::GetChildren(PathWatchRequest { path: self.server_path(p)?, watch: false }),
            });
        }
        match self.call(Request::MultiRead(reqs)).await? {
            Response::Multi(rs) => Ok(rs
                .into_iter()
                .map(|r| match r {
                    WireResult::GetData { data, stat } => ReadResult::Data { data: data.unwrap_or_default(), stat },
                    WireResult::GetChildren { children } => ReadResult::Children(children),
                    WireResult::Error { err } => ReadResult::Error(Error::from_code(err)),
                    _ => ReadResult::Error(Error::MarshallingError),
                })
                .collect()),
            other => Err(unexpected(other)),
        }
    }

    /// Waits until the server this client is connected to has caught up with the leader.
    pub async fn sync(&self, path: &str) -> Result<String> {
        let path = self.server_path(path)?;
        match self.call(Request::Sync(PathRequest { path })).await? {
            Response::Path(p) => Ok(self.client_path(&p)),
            other => Err(unexpected(other)),
        }
    }

    /// Adds a persistent watch (or a persistent recursive one, on the whole subtree); the
    /// stream yields every event until it is removed or the session ends.
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<WatchStream> {
        let path = self.server_path(path)?;
        let (tx, rx) = broadcast::channel(self.inner.watch_stream_events_max);
        let reg = WatchReg::Persistent { recursive: mode == AddWatchMode::PersistentRecursive, path: path.clone(), tx };
        self.call_with(Request::AddWatch(AddWatchRequest { path, mode: mode.code() }), Some(reg), None).await?;
        Ok(WatchStream { rx })
    }

    /// Removes this session's watches of `kind` on a path. With `local`, only the client's
    /// own table is cleared (works while disconnected); otherwise the server removes them
    /// first. Their waiters get a ...WatchRemoved event. NoWatcher if there was none.
    pub async fn remove_watches(&self, path: &str, kind: WatcherType, local: bool) -> Result<()> {
        let sp = self.server_path(path)?;
        if local {
            let (tx, rx) = oneshot::channel();
            let cmd = Command::RemoveLocal { kind, path: sp, reply: tx };
            let found = self
                .with_deadline(async {
                    self.inner.cmd_tx.send(cmd).await.map_err(|_| self.ended())?;
                    rx.await.map_err(|_| self.ended())
                })
                .await?;
            return if found { Ok(()) } else { Err(Error::NoWatcher) };
        }
        self.call_with(Request::RemoveWatches(WatchesRequest { path: sp.clone(), watcher_type: kind.code() }), None, Some((kind, sp)))
            .await
            .map(|_| ())
    }

    /// NoWatcher unless the server holds a watch of `kind` on the path for this session.
    pub async fn check_watches(&self, path: &str, kind: WatcherType) -> Result<()> {
        let path = self.server_path(path)?;
        self.call(Request::CheckWatches(WatchesRequest { path, watcher_type: kind.code() })).await.map(|_| ())
    }

    /// This session's ephemeral nodes whose paths start with `prefix` (`/` for all).
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        let sp = self.server_path(prefix)?;
        match self.call(Request::GetEphemerals(PathRequest { path: sp })).await? {
            Response::Paths(ps) => Ok(match self.chroot() {
                None => ps,
                Some(root) => {
                    ps.into_iter().filter(|p| p == root || p.starts_with(&format!("{root}/"))).map(|p| self.client_path(&p)).collect()
                }
            }),
            other => Err(unexpected(other)),
        }
    }

    /// The number of descendants of a znode (not counting itself).
    pub async fn get_all_children_number(&self, path: &str) -> Result<i32> {
        let path = self.server_path(path)?;
        match self.call(Request::GetAllChildrenNumber(PathRequest { path })).await? {
            Response::AllChildrenNumber(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    /// The identities the server has authenticated this session as.
    pub async fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        match self.call(Request::WhoAmI).await? {
            Response::WhoAmI(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    }

    /// ZooKeeper's `updateServerList`: the session goes on with the servers of
    /// `connect_string` (its chroot, if any, is ignored). To keep the load even, the session
    /// may move: always if its server is no longer listed, and with probability
    /// 1 - old/new to one of the added servers if the list grew (`StaticHostProvider`'s
    /// rule). A move is a reconnection of the same session (requests in flight get
    /// ConnectionLoss, as on any reconnection).
    pub async fn update_server_list(&self, connect_string: &str) -> Result<()> {
        let cs = crate::path::ConnectString::parse(connect_string)?;
        let (tx, rx) = oneshot::channel();
        let cmd = Command::UpdateServerList { hosts: cs.hosts, reply: tx };
        self.with_deadline(async {
            self.inner.cmd_tx.send(cmd).await.map_err(|_| self.ended())?;
            rx.await.map_err(|_| self.ended())
        })
        .await
    }

    /// Adds credentials (e.g. `digest`, `user:password`). They are also sent again on every
    /// reconnection. A refusal (AuthFailed) ends the session, as in ZooKeeper.
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let cmd = Command::Auth { packet: AuthPacket { auth_type: 0, scheme: scheme.to_owned(), auth: auth.to_vec() }, reply: tx };
        self.with_deadline(async {
            self.inner.cmd_tx.send(cmd).await.map_err(|_| self.ended())?;
            rx.await.map_err(|_| self.ended())?
        })
        .await
    }

    /// The ensemble configuration (`/zookeeper/config`, read outside any chroot).
    pub async fn get_config(&self) -> Result<(Vec<u8>, Stat)> {
        data_of(self.call(Request::GetData(PathWatchRequest { path: CONFIG_NODE.into(), watch: false })).await?)
    }

    /// `ZooKeeperAdmin.reconfigure`: incremental (`joining` server lines
    /// `server.N=host:q:e[:role][;client]` and/or `leaving` server ids, each comma-separated)
    /// or non-incremental (`new_members`, the whole new membership), applied only if the
    /// configuration is still at version `from_config` (-1: whatever it is). Returns the new
    /// configuration text and the Stat of `/zookeeper/config`. The server refuses it without
    /// `reconfigEnabled`, and allows it only to a super user or a client with WRITE on
    /// `/zookeeper/config`.
    pub async fn reconfig(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        from_config: i64,
    ) -> Result<(Vec<u8>, Stat)> {
        let req = ReconfigRequest {
            joining_servers: joining.map(str::to_owned),
            leaving_servers: leaving.map(str::to_owned),
            new_members: new_members.map(str::to_owned),
            cur_config_id: from_config,
        };
        data_of(self.call(Request::Reconfig(req)).await?)
    }

    /// As [`get_config`](Self::get_config), leaving a watch for the configuration's next
    /// change (ZooKeeper's `getConfig(true, stat)`).
    pub async fn get_config_w(&self) -> Result<(Vec<u8>, Stat, WatchFuture)> {
        let (reg, fut) = self.one_time(OneTimeKind::Data, CONFIG_NODE);
        let req = Request::GetData(PathWatchRequest { path: CONFIG_NODE.into(), watch: true });
        let (d, s) = data_of(self.call_with(req, Some(reg), None).await?)?;
        Ok((d, s, fut))
    }
}

/// `ZooDefs.CONFIG_NODE`, which `getConfig` reads whatever the chroot.
const CONFIG_NODE: &str = "/zookeeper/config";

fn unexpected(r: Response) -> Error {
    tracing::warn!(?r, "reply of an unexpected kind");
    Error::MarshallingError
}

fn stat_or_none(r: Result<Response>) -> Result<Option<Stat>> {
    match r {
        Ok(Response::Stat(s)) => Ok(Some(s)),
        Ok(other) => Err(unexpected(other)),
        Err(Error::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}

fn data_of(r: Response) -> Result<(Vec<u8>, Stat)> {
    match r {
        Response::GetData { data, stat } => Ok((data.unwrap_or_default(), stat)),
        other => Err(unexpected(other)),
    }
}
