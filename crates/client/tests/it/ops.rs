//! Every operation of the protocol, with the errors ZooKeeper gives, through a chroot.

use crate::both;
use crate::support::Ctx;
use rzk_client::{
    perms, Acl, AddWatchMode, Client, CreateMode, CreateOptions, Error, EventType, Op, OpResult, ReadOp, ReadResult, WatcherType,
};
use std::time::Duration;

both!(crud, create_modes, children, acls_and_auth, multi_and_check, multi_read, one_time_watches);
both!(persistent_watches, remove_and_check_watches, sync_and_config, bad_paths_fail_before_sending, close_ends_the_session);

async fn crud(ctx: Ctx) {
    let zk = ctx.connect().await;
    assert_eq!(zk.create("/a", b"hello", &CreateOptions::persistent()).await.unwrap(), "/a");
    let (data, stat) = zk.get_data("/a").await.unwrap();
    assert_eq!(data, b"hello");
    assert_eq!((stat.version, stat.data_length, stat.num_children), (0, 5, 0));
    assert_eq!(zk.create("/a", b"", &CreateOptions::persistent()).await, Err(Error::NodeExists));
    let st = zk.set_data("/a", b"v1", 0).await.unwrap();
    assert_eq!(st.version, 1);
    assert_eq!(zk.set_data("/a", b"v2", 0).await, Err(Error::BadVersion));
    assert_eq!(zk.exists("/a").await.unwrap().map(|s| s.version), Some(1));
    assert_eq!(zk.exists("/nope").await.unwrap(), None);
    assert_eq!(zk.get_data("/nope").await, Err(Error::NoNode));
    zk.create("/a/b", b"", &CreateOptions::persistent()).await.unwrap();
    assert_eq!(zk.delete("/a", -1).await, Err(Error::NotEmpty));
    assert_eq!(zk.delete("/a/b", 5).await, Err(Error::BadVersion));
    zk.delete("/a/b", 0).await.unwrap();
    zk.delete("/a", -1).await.unwrap();
    assert_eq!(zk.create("/x/y", b"", &CreateOptions::persistent()).await, Err(Error::NoNode));
    // null data is not empty data
    zk.create2_nullable("/null", None, &CreateOptions::persistent()).await.unwrap();
    assert_eq!(zk.get_data_nullable("/null", false).await.unwrap().0, None);
    zk.create("/empty", b"", &CreateOptions::persistent()).await.unwrap();
    assert_eq!(zk.get_data_nullable("/empty", false).await.unwrap().0, Some(vec![]));
    // the chroot is invisible, and real on the server
    let root = Client::connect(&ctx.server.hosts()).await.unwrap();
    assert!(root.exists(&format!("{}/empty", ctx.root)).await.unwrap().is_some());
    root.close().await;
    zk.close().await;
}

async fn create_modes(ctx: Ctx) {
    let zk = ctx.connect().await;
    let (p, stat) = zk.create2("/seq-", b"", &CreateOptions::persistent_sequential()).await.unwrap();
    assert_eq!(p, "/seq-0000000000");
    assert_eq!(stat.ephemeral_owner, 0);
    let p2 = zk.create("/seq-", b"", &CreateOptions::persistent_sequential()).await.unwrap();
    assert_eq!(p2, "/seq-0000000001");
    let (_, st) = zk.create2("/eph", b"", &CreateOptions::ephemeral()).await.unwrap();
    assert_eq!(st.ephemeral_owner, zk.session_info().id.0);
    assert_eq!(zk.create("/eph/child", b"", &CreateOptions::persistent()).await, Err(Error::NoChildrenForEphemerals));
    let es = zk.create("/es-", b"", &CreateOptions::ephemeral_sequential()).await.unwrap();
    assert!(es.starts_with("/es-") && es.len() == "/es-".len() + 10, "{es}");
    // container: deleted by the server once its last child goes
    let (c, _) = zk.create2("/box", b"", &CreateOptions::container()).await.unwrap();
    assert_eq!(c, "/box");
    zk.create("/box/item", b"", &CreateOptions::persistent()).await.unwrap();
    zk.delete("/box/item", -1).await.unwrap();
    assert!(
        crate::support::eventually(Duration::from_secs(10), || async { zk.exists("/box").await.unwrap().is_none() }).await,
        "empty container not deleted"
    );
    // TTL nodes
    let (t, st) = zk.create2("/ttl", b"x", &CreateOptions::with_ttl(Duration::from_secs(60), false)).await.unwrap();
    assert_eq!(t, "/ttl");
    assert_eq!(st.data_length, 1);
    let ts = zk.create("/ttls-", b"", &CreateOptions::with_ttl(Duration::from_secs(60), true)).await.unwrap();
    assert!(ts.starts_with("/ttls-"));
    // TTL rules are checked before sending
    let bad = CreateOptions { ttl: Some(Duration::from_secs(1)), ..CreateOptions::persistent() };
    assert_eq!(zk.create("/bad", b"", &bad).await, Err(Error::BadArguments));
    let bad = CreateOptions { ttl: None, ..CreateOptions::new(CreateMode::PersistentWithTtl) };
    assert_eq!(zk.create("/bad", b"", &bad).await, Err(Error::BadArguments));
    zk.close().await;
}

async fn children(ctx: Ctx) {
    let zk = ctx.connect().await;
    zk.create("/p", b"", &CreateOptions::persistent()).await.unwrap();
    for c in ["a", "b", "c"] {
        zk.create(&format!("/p/{c}"), b"", &CreateOptions::persistent()).await.unwrap();
    }
    zk.create("/p/a/deep", b"", &CreateOptions::persistent()).await.unwrap();
    let mut kids = zk.get_children("/p").await.unwrap();
    kids.sort();
    assert_eq!(kids, ["a", "b", "c"]);
    let (kids2, stat) = zk.get_children2("/p").await.unwrap();
    assert_eq!(kids2.len(), 3);
    assert_eq!((stat.num_children, stat.cversion), (3, 3));
    assert_eq!(zk.get_all_children_number("/p").await.unwrap(), 4);
    assert_eq!(zk.get_children("/none").await, Err(Error::NoNode));
    zk.create("/p/e1", b"", &CreateOptions::ephemeral()).await.unwrap();
    zk.create("/e2", b"", &CreateOptions::ephemeral()).await.unwrap();
    let mut eph = zk.get_ephemerals("/").await.unwrap();
    eph.sort();
    assert_eq!(eph, ["/e2", "/p/e1"]);
    assert_eq!(zk.get_ephemerals("/p").await.unwrap(), ["/p/e1"]);
    zk.close().await;
}

async fn acls_and_auth(ctx: Ctx) {
    let zk = ctx.connect().await;
    let who = zk.who_am_i().await.unwrap();
    assert!(who.iter().any(|c| c.auth_scheme == "ip"), "{who:?}");
    zk.add_auth("digest", b"alice:secret").await.unwrap();
    assert!(zk.who_am_i().await.unwrap().iter().any(|c| c.auth_scheme == "digest" && c.user == "alice"));
    zk.create("/private", b"s", &CreateOptions::persistent().acl(Acl::creator_all())).await.unwrap();
    let (acl, stat) = zk.get_acl("/private").await.unwrap();
    assert_eq!(acl.len(), 1);
    assert_eq!(acl[0].id.scheme, "digest");
    assert!(acl[0].id.id.starts_with("alice:"));
    assert_eq!(stat.aversion, 0);
    let other = ctx.connect().await;
    assert_eq!(other.get_data("/private").await, Err(Error::NoAuth));
    other.add_auth("digest", b"alice:secret").await.unwrap();
    assert_eq!(other.get_data("/private").await.unwrap().0, b"s");
    // setACL with a version check
    zk.create("/open", b"", &CreateOptions::persistent()).await.unwrap();
    let read_only = vec![Acl::new(perms::READ, "world", "anyone")];
    assert_eq!(zk.set_acl("/open", &read_only, 3).await, Err(Error::BadVersion));
    let st = zk.set_acl("/open", &read_only, 0).await.unwrap();
    assert_eq!(st.aversion, 1);
    assert_eq!(zk.set_data("/open", b"x", -1).await, Err(Error::NoAuth));
    assert_eq!(zk.create("/bad-acl", b"", &CreateOptions::persistent().acl(vec![])).await, Err(Error::InvalidAcl));
    other.close().await;
    zk.close().await;
}

async fn multi_and_check(ctx: Ctx) {
    let zk = ctx.connect().await;
    let res = zk
        .multi(&[
            Op::create("/m", b"1".to_vec(), CreateOptions::persistent()),
            Op::create("/m/s-", b"".to_vec(), CreateOptions::persistent_sequential()),
            Op::set_data("/m", b"2".to_vec(), 0),
            Op::check("/m", 1),
        ])
        .await
        .unwrap();
    assert!(matches!(&res[0], OpResult::Create { path, .. } if path == "/m"));
    assert!(matches!(&res[1], OpResult::Create { path, stat } if path == "/m/s-0000000000" && stat.is_none()));
    assert!(matches!(&res[2], OpResult::SetData { stat } if stat.version == 1));
    assert_eq!(res[3], OpResult::Check);
    // one failing op: nothing is applied, the error names it
    let err = zk
        .multi(&[Op::create("/m/new", b"".to_vec(), CreateOptions::persistent()), Op::check("/m", 7), Op::delete("/m", -1)])
        .await
        .unwrap_err();
    assert_eq!(err, Error::Multi { index: 1, source: Box::new(Error::BadVersion) });
    assert!(zk.exists("/m/new").await.unwrap().is_none());
    // container and TTL creates inside a multi come back with their Stat
    let res = zk
        .multi(&[
            Op::create("/mc", b"".to_vec(), CreateOptions::container()),
            Op::create("/mt", b"".to_vec(), CreateOptions::with_ttl(Duration::from_secs(30), false)),
        ])
        .await
        .unwrap();
    assert!(matches!(&res[0], OpResult::Create { path, stat } if path == "/mc" && stat.as_ref().is_some_and(|s| s.czxid.0 > 0)));
    assert!(matches!(&res[1], OpResult::Create { path, .. } if path == "/mt"));
    assert_eq!(zk.multi(&[]).await.unwrap(), vec![]);
    zk.check("/m", 1).await.unwrap();
    assert_eq!(zk.check("/m", 0).await, Err(Error::BadVersion));
    zk.close().await;
}

async fn multi_read(ctx: Ctx) {
    let zk = ctx.connect().await;
    zk.create("/r", b"data", &CreateOptions::persistent()).await.unwrap();
    zk.create("/r/k", b"", &CreateOptions::persistent()).await.unwrap();
    let res =
        zk.multi_read(&[ReadOp::GetData("/r".into()), ReadOp::GetChildren("/r".into()), ReadOp::GetData("/missing".into())]).await.unwrap();
    assert!(matches!(&res[0], ReadResult::Data { data, stat } if data == b"data" && stat.num_children == 1));
    assert_eq!(res[1], ReadResult::Children(vec!["k".into()]));
    assert_eq!(res[2], ReadResult::Error(Error::NoNode));
    zk.close().await;
}

async fn one_time_watches(ctx: Ctx) {
    let zk = ctx.connect().await;
    let writer = ctx.connect().await;
    // exists on a missing node: fires on creation
    let (st, created) = zk.exists_w("/w").await.unwrap();
    assert!(st.is_none());
    writer.create("/w", b"", &CreateOptions::persistent()).await.unwrap();
    let ev = created.await.unwrap();
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeCreated, "/w"));
    // data watch: one change, one event
    let (_, _, changed) = zk.get_data_w("/w").await.unwrap();
    let (_, children) = zk.get_children_w("/w").await.unwrap();
    writer.set_data("/w", b"1", -1).await.unwrap();
    writer.set_data("/w", b"2", -1).await.unwrap();
    assert_eq!(changed.await.unwrap().event_type, EventType::NodeDataChanged);
    writer.create("/w/c", b"", &CreateOptions::persistent()).await.unwrap();
    let ev = children.await.unwrap();
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeChildrenChanged, "/w"));
    // deletion reaches data and child watches
    let (_, _, d) = zk.get_data_w("/w/c").await.unwrap();
    let (_, _, c) = zk.get_children2_w("/w/c").await.unwrap();
    writer.delete("/w/c", -1).await.unwrap();
    assert_eq!(d.await.unwrap().event_type, EventType::NodeDeleted);
    assert_eq!(c.await.unwrap().event_type, EventType::NodeDeleted);
    // a failed read leaves no watch
    assert_eq!(zk.get_data_w("/w/none").await.err(), Some(Error::NoNode));
    writer.close().await;
    zk.close().await;
}

async fn persistent_watches(ctx: Ctx) {
    // (A server keeps one watch mode per session and path: a recursive watch added on the
    // path of a persistent one replaces it. So the two live on different paths here.)
    let zk = ctx.connect().await;
    let writer = ctx.connect().await;
    writer.create("/pw", b"", &CreateOptions::persistent()).await.unwrap();
    writer.create("/tree", b"", &CreateOptions::persistent()).await.unwrap();
    let mut one = zk.add_watch("/pw", AddWatchMode::Persistent).await.unwrap();
    let mut tree = zk.add_watch("/tree", AddWatchMode::PersistentRecursive).await.unwrap();
    for base in ["/pw", "/tree"] {
        writer.set_data(base, b"1", -1).await.unwrap();
        writer.create(&format!("{base}/a"), b"", &CreateOptions::persistent()).await.unwrap();
        writer.create(&format!("{base}/a/b"), b"", &CreateOptions::persistent()).await.unwrap();
        writer.set_data(base, b"2", -1).await.unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        let e = next(&mut one).await;
        got.push((e.event_type, e.path));
    }
    assert_eq!(
        got,
        [
            (EventType::NodeDataChanged, "/pw".to_string()),
            (EventType::NodeChildrenChanged, "/pw".to_string()),
            (EventType::NodeDataChanged, "/pw".to_string())
        ]
    );
    let mut got = Vec::new();
    for _ in 0..4 {
        let e = next(&mut tree).await;
        got.push((e.event_type, e.path));
    }
    assert_eq!(
        got,
        [
            (EventType::NodeDataChanged, "/tree".to_string()),
            (EventType::NodeCreated, "/tree/a".to_string()),
            (EventType::NodeCreated, "/tree/a/b".to_string()),
            (EventType::NodeDataChanged, "/tree".to_string())
        ]
    );
    zk.check_watches("/tree", WatcherType::Any).await.unwrap();
    zk.remove_watches("/pw", WatcherType::Any, false).await.unwrap();
    assert_eq!(next(&mut one).await.event_type, EventType::PersistentWatchRemoved);
    assert!(one.next().await.is_none(), "stream ends after removal");
    writer.delete("/tree/a/b", -1).await.unwrap();
    assert_eq!(next(&mut tree).await.event_type, EventType::NodeDeleted);
    writer.close().await;
    zk.close().await;
}

async fn next(s: &mut rzk_client::WatchStream) -> rzk_client::WatchedEvent {
    tokio::time::timeout(Duration::from_secs(5), s.next()).await.expect("event").expect("open").expect("not lagged")
}

async fn remove_and_check_watches(ctx: Ctx) {
    let zk = ctx.connect().await;
    zk.create("/rw", b"", &CreateOptions::persistent()).await.unwrap();
    assert_eq!(zk.check_watches("/rw", WatcherType::Data).await, Err(Error::NoWatcher));
    let (_, _, data) = zk.get_data_w("/rw").await.unwrap();
    let (_, child) = zk.get_children_w("/rw").await.unwrap();
    zk.check_watches("/rw", WatcherType::Data).await.unwrap();
    zk.remove_watches("/rw", WatcherType::Data, false).await.unwrap();
    assert_eq!(data.await.unwrap().event_type, EventType::DataWatchRemoved);
    assert_eq!(zk.check_watches("/rw", WatcherType::Data).await, Err(Error::NoWatcher));
    // local removal: the server keeps its watch, the waiter hears of the removal
    zk.remove_watches("/rw", WatcherType::Children, true).await.unwrap();
    assert_eq!(child.await.unwrap().event_type, EventType::ChildWatchRemoved);
    assert_eq!(zk.remove_watches("/rw", WatcherType::Children, true).await, Err(Error::NoWatcher));
    zk.close().await;
}

async fn sync_and_config(ctx: Ctx) {
    let zk = ctx.connect().await;
    assert_eq!(zk.sync("/").await.unwrap(), "/");
    // /zookeeper/config exists on both servers (empty for a standalone one)
    let r = zk.get_config().await;
    assert!(matches!(r, Ok(_) | Err(Error::NoNode)), "{r:?}");
    zk.close().await;
}

async fn bad_paths_fail_before_sending(ctx: Ctx) {
    let zk = ctx.connect().await;
    for p in ["", "a", "/a/", "/a//b", "/a/./b", "/a/../b"] {
        assert!(matches!(zk.exists(p).await, Err(Error::InvalidPath { .. })), "{p:?}");
    }
    // a sequential create may end in /
    zk.create("/s", b"", &CreateOptions::persistent()).await.unwrap();
    assert_eq!(zk.create("/s/", b"", &CreateOptions::persistent_sequential()).await.unwrap(), "/s/0000000000");
    zk.close().await;
}

async fn close_ends_the_session(ctx: Ctx) {
    let zk = ctx.connect().await;
    let watcher = ctx.connect().await;
    zk.create("/mine", b"", &CreateOptions::ephemeral()).await.unwrap();
    let (_, gone) = watcher.exists_w("/mine").await.unwrap();
    let (_, _, pending) = zk.get_data_w("/mine").await.unwrap();
    zk.close().await;
    assert_eq!(gone.await.unwrap().event_type, EventType::NodeDeleted);
    assert_eq!(zk.exists("/").await, Err(Error::Closed));
    // Either the server told us of our own ephemeral's deletion before the close reply, or
    // the watch ended with the session.
    match pending.await {
        Ok(ev) => assert_eq!(ev.event_type, EventType::NodeDeleted),
        Err(e) => assert_eq!(e, Error::Closed),
    }
    assert_eq!(zk.state(), rzk_client::SessionState::Closed);
    watcher.close().await;
}
