//! Sessions under faults: reconnection keeping the session and its watches, failover across
//! hosts, server-side and client-side expiry, request timeouts, lost replies, auth failure.

use crate::both;
use crate::support::{eventually, Ctx, Proxy};
use rzk_client::{Client, Config, CreateOptions, Error, EventType, SessionState};
use std::time::Duration;

both!(reconnect_keeps_session_and_watches, failover_across_hosts, server_expiry, client_declares_expiry);
both!(silent_server_is_noticed, request_timeout, queued_while_disconnected_then_sent, lost_reply_is_connection_loss);
both!(auth_failed_ends_session, read_only_allowed_connects_read_write, connect_timeout_when_nothing_listens);
both!(update_server_list_moves_the_session);

/// A read-only server (a minority partition in an ensemble) cannot be had from a standalone
/// server, so a scripted one answers the handshake as ZooKeeper's ReadOnlyZooKeeperServer does.
#[tokio::test]
async fn read_only_server_gives_connected_read_only() {
    use rzk_proto::client::{ConnectRequest, ConnectResponse};
    use rzk_proto::{Reader, Writer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await.unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).await.unwrap();
        let req = ConnectRequest::read(&mut Reader::new(&body)).unwrap();
        let mut w = Writer::for_frame();
        ConnectResponse {
            protocol_version: 0,
            timeout_ms: 4000,
            session_id: rzk_client::SessionId(0x42),
            passwd: vec![1; 16],
            read_only: Some(true),
        }
        .write(&mut w);
        s.write_all(&w.finish_frame()).await.unwrap();
        let mut sink = vec![0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut sink)).await;
        req
    });
    let cfg = Config { read_only: true, connect_timeout: Duration::from_secs(5), ..Config::default() };
    let zk = Client::connect_with(&addr.to_string(), cfg).await.unwrap();
    assert_eq!(zk.state(), SessionState::ConnectedReadOnly);
    assert_eq!(zk.session_info().id, rzk_client::SessionId(0x42));
    let req = server.await.unwrap();
    assert_eq!(req.read_only, Some(true), "the client says it accepts a read-only server");
    assert_eq!(req.passwd.len(), 16);
}

async fn wait_state(zk: &Client, want: SessionState, limit: Duration) {
    let mut rx = zk.state_watch();
    let ok = tokio::time::timeout(limit, async {
        loop {
            if *rx.borrow_and_update() == want {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(ok.is_ok() && zk.state() == want, "state {:?}, wanted {want:?}", zk.state());
}

async fn reconnect_keeps_session_and_watches(ctx: Ctx) {
    let proxy = Proxy::start(ctx.server.addr).await;
    let zk = ctx.connect_via(&proxy, Duration::from_secs(6)).await;
    let writer = ctx.connect().await;
    let mut events = zk.session_events();
    let id = zk.session_info().id;
    zk.create("/eph", b"", &CreateOptions::ephemeral()).await.unwrap();
    writer.create("/watched", b"", &CreateOptions::persistent()).await.unwrap();
    let (_, _, changed) = zk.get_data_w("/watched").await.unwrap();
    let (_, created) = zk.exists_w("/later").await.unwrap();
    let mut tree = zk.add_watch("/", rzk_client::AddWatchMode::PersistentRecursive).await.unwrap();

    proxy.refuse();
    wait_state(&zk, SessionState::Disconnected, Duration::from_secs(5)).await;
    // Changes while the client is away: SetWatches2 (relative to the last zxid it saw)
    // makes the server report them on reconnection.
    writer.set_data("/watched", b"new", -1).await.unwrap();
    writer.create("/later", b"", &CreateOptions::persistent()).await.unwrap();
    proxy.heal();
    wait_state(&zk, SessionState::Connected, Duration::from_secs(10)).await;
    assert_eq!(zk.session_info().id, id, "same session after reconnecting");
    assert_eq!(tokio::time::timeout(Duration::from_secs(5), changed).await.unwrap().unwrap().event_type, EventType::NodeDataChanged);
    assert_eq!(tokio::time::timeout(Duration::from_secs(5), created).await.unwrap().unwrap().event_type, EventType::NodeCreated);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(5), tree.next()).await.unwrap().unwrap().unwrap();
        seen.push((ev.event_type, ev.path));
    }
    assert!(seen.contains(&(EventType::NodeCreated, "/later".into())), "{seen:?}");
    assert!(zk.exists("/eph").await.unwrap().is_some(), "ephemeral survives a reconnection");
    assert_eq!(events.recv().await.unwrap(), SessionState::Disconnected);
    assert_eq!(events.recv().await.unwrap(), SessionState::Connected);
    writer.close().await;
    zk.close().await;
}

async fn failover_across_hosts(ctx: Ctx) {
    let a = Proxy::start(ctx.server.addr).await;
    let b = Proxy::start(ctx.server.addr).await;
    // Also a host where nothing listens: skipped over.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let cs = format!("{dead},{},{}{}", a.addr, b.addr, ctx.root);
    let zk = Client::connect_with(&cs, Config { session_timeout: Duration::from_secs(8), ..Config::default() }).await.unwrap();
    let id = zk.session_info().id;
    zk.create("/e", b"", &CreateOptions::ephemeral()).await.unwrap();
    for (round, (down, up)) in [(&a, &b), (&b, &a), (&a, &b)].into_iter().enumerate() {
        // Take one way away, leave the other: the session moves over, whichever it was on.
        up.heal();
        down.refuse();
        assert!(eventually(Duration::from_secs(10), || async { zk.exists("/e").await.is_ok() }).await, "round {round}");
        assert_eq!(zk.session_info().id, id);
    }
    zk.close().await;
}

async fn server_expiry(ctx: Ctx) {
    let zk = ctx.connect().await;
    let mut events = zk.session_events();
    zk.create("/e", b"", &CreateOptions::ephemeral()).await.unwrap();
    let (_, _, watch) = zk.get_data_w("/e").await.unwrap();
    ctx.expire(&zk.session_info()).await;
    wait_state(&zk, SessionState::Expired, Duration::from_secs(15)).await;
    let mut seen = Vec::new();
    while let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
        seen.push(s);
    }
    assert_eq!(seen.last(), Some(&SessionState::Expired), "{seen:?}");
    assert_eq!(zk.exists("/").await, Err(Error::SessionExpired));
    // The watch may have seen the ephemeral's deletion first; otherwise it ends with the session.
    match watch.await {
        Ok(ev) => assert_eq!(ev.event_type, EventType::NodeDeleted),
        Err(e) => assert_eq!(e, Error::SessionExpired),
    }
    let other = ctx.connect().await;
    assert!(other.exists("/e").await.unwrap().is_none());
    other.close().await;
}

async fn client_declares_expiry(ctx: Ctx) {
    let proxy = Proxy::start(ctx.server.addr).await;
    let zk = ctx.connect_via(&proxy, Duration::from_millis(1500)).await;
    let timeout = zk.session_info().timeout;
    assert!(timeout >= Duration::from_secs(1) && timeout <= Duration::from_millis(1500), "{timeout:?}");
    let started = std::time::Instant::now();
    proxy.refuse();
    wait_state(&zk, SessionState::Expired, Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert!(took >= timeout, "declared expired after {took:?}, before the session timeout {timeout:?}");
    assert!(took < timeout * 3, "took {took:?}");
    // The server agrees (or will shortly): the session's requests are refused from now on.
    assert_eq!(zk.exists("/").await, Err(Error::SessionExpired));
    proxy.heal();
}

async fn silent_server_is_noticed(ctx: Ctx) {
    let proxy = Proxy::start(ctx.server.addr).await;
    let zk = ctx.connect_via(&proxy, Duration::from_secs(3)).await;
    let id = zk.session_info().id;
    proxy.blackhole();
    // Nothing comes back; after 2/3 of the timeout the client drops the connection.
    wait_state(&zk, SessionState::Disconnected, Duration::from_secs(4)).await;
    proxy.heal();
    wait_state(&zk, SessionState::Connected, Duration::from_secs(5)).await;
    assert_eq!(zk.session_info().id, id);
    zk.close().await;
}

async fn request_timeout(ctx: Ctx) {
    let proxy = Proxy::start(ctx.server.addr).await;
    let zk = ctx.connect_via(&proxy, Duration::from_secs(10)).await;
    proxy.blackhole();
    let quick = zk.with_timeout(Duration::from_millis(300));
    let t = std::time::Instant::now();
    assert_eq!(quick.exists("/").await, Err(Error::RequestTimeout));
    assert!(t.elapsed() < Duration::from_secs(2));
    proxy.heal();
    proxy.kill_all();
    assert!(eventually(Duration::from_secs(10), || async { zk.exists("/").await.is_ok() }).await);
    zk.close().await;
}

async fn queued_while_disconnected_then_sent(ctx: Ctx) {
    let proxy = Proxy::start(ctx.server.addr).await;
    let zk = ctx.connect_via(&proxy, Duration::from_secs(8)).await;
    proxy.refuse();
    wait_state(&zk, SessionState::Disconnected, Duration::from_secs(5)).await;
    let z2 = zk.clone();
    let pending = tokio::spawn(async move { z2.create("/queued", b"", &CreateOptions::persistent()).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "a request made while disconnected waits for the next connection");
    proxy.heal();
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), pending).await.unwrap().unwrap().unwrap(), "/queued");
    zk.close().await;
}

async fn lost_reply_is_connection_loss(ctx: Ctx) {
    let proxy = Proxy::start(ctx.server.addr).await;
    let zk = ctx.connect_via(&proxy, Duration::from_secs(8)).await;
    proxy.swallow_reply_to(rzk_client::OpCode::Create);
    // The server applies the create; the client never hears so.
    assert_eq!(zk.create("/applied", b"", &CreateOptions::persistent()).await, Err(Error::ConnectionLoss));
    assert!(eventually(Duration::from_secs(10), || async { zk.exists("/applied").await.ok().flatten().is_some() }).await);
    zk.close().await;
}

async fn auth_failed_ends_session(ctx: Ctx) {
    let zk = ctx.connect().await;
    let r = zk.add_auth("no-such-scheme", b"x").await;
    assert!(matches!(r, Err(Error::AuthFailed)), "{r:?}");
    wait_state(&zk, SessionState::AuthFailed, Duration::from_secs(5)).await;
    assert_eq!(zk.exists("/").await, Err(Error::AuthFailed));
}

async fn read_only_allowed_connects_read_write(ctx: Ctx) {
    let cfg = Config { read_only: true, ..ctx.config() };
    let zk = ctx.connect_with(cfg).await;
    assert_eq!(zk.state(), SessionState::Connected);
    zk.create("/rw", b"", &CreateOptions::persistent()).await.unwrap();
    zk.close().await;
}

async fn connect_timeout_when_nothing_listens(_ctx: Ctx) {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let cfg = Config { connect_timeout: Duration::from_millis(500), ..Config::default() };
    let t = std::time::Instant::now();
    assert_eq!(Client::connect_with(&dead.to_string(), cfg).await.unwrap_err(), Error::ConnectionLoss);
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(matches!(Client::connect("nohost:x").await, Err(Error::BadConnectString(..))));
}

/// `updateServerList` without the current server: the session moves to a listed one (the
/// same session, its ephemeral kept), as ZooKeeper's client does. Two proxies to the same
/// server stand for two servers.
async fn update_server_list_moves_the_session(ctx: Ctx) {
    let a = Proxy::start(ctx.server.addr).await;
    let b = Proxy::start(ctx.server.addr).await;
    let zk = ctx.connect_via(&a, Duration::from_secs(10)).await;
    let id = zk.session_info().id;
    zk.create("/eph", b"", &CreateOptions::ephemeral()).await.unwrap();
    // The same list: nothing moves.
    zk.update_server_list(&a.addr.to_string()).await.unwrap();
    assert_eq!(b.connections.load(std::sync::atomic::Ordering::SeqCst), 0);
    zk.update_server_list(&b.addr.to_string()).await.unwrap();
    let moved = eventually(Duration::from_secs(20), || async {
        b.connections.load(std::sync::atomic::Ordering::SeqCst) > 0 && zk.state() == SessionState::Connected
    })
    .await;
    assert!(moved, "the session did not move to the new list's server");
    assert_eq!(zk.session_info().id, id, "the same session");
    assert!(zk.exists("/eph").await.unwrap().is_some(), "its ephemeral is still there");
    zk.close().await;
}
