//! Recipes, with their failure cases: the holder is killed or its session expires, a create
//! reply is lost, waiters give up, connections drop.

use crate::both;
use crate::support::{eventually, Ctx, Proxy};
use rzk_client::recipes::barrier::{Barrier, DoubleBarrier};
use rzk_client::recipes::cache::{NodeCache, TreeCache};
use rzk_client::recipes::counter::Counter;
use rzk_client::recipes::discovery::{register, ServiceInstance, ServiceWatcher};
use rzk_client::recipes::election::LeaderElection;
use rzk_client::recipes::lock::{Lock, ReadWriteLock};
use rzk_client::recipes::queue::Queue;
use rzk_client::recipes::semaphore::Semaphore;
use rzk_client::recipes::Holding;
use rzk_client::{CreateOptions, Error};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

both!(lock_mutual_exclusion_and_fencing, lock_waiters_watch_only_their_predecessor, lock_kill_the_holder, lock_expire_the_holder);
both!(lock_create_reply_lost_leaves_no_orphan, lock_try_and_timeout_leave_nothing, read_write_lock, semaphore_limits_holders);
both!(election_follows_the_session, election_run_is_cancelled_on_loss, barriers, queue_fifo_once_each, counter_concurrent_adds);
both!(discovery_tracks_live_instances, caches_follow_changes);

async fn lock_mutual_exclusion_and_fencing(ctx: Ctx) {
    let inside = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let zk = ctx.connect().await;
        let (inside, tokens) = (inside.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let lock = Lock::new(&zk, "/locks/a", &format!("c{i}"));
            for _ in 0..3 {
                let g = lock.acquire().await.unwrap();
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                tokens.lock().unwrap().push(g.fencing_token());
                tokio::time::sleep(Duration::from_millis(5)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                g.release().await.unwrap();
            }
            zk.close().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let tokens = tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 12);
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "fencing tokens increase with each grant: {tokens:?}");
    let zk = ctx.connect().await;
    assert!(zk.get_children("/locks/a").await.unwrap().is_empty(), "every lock node released");
    zk.close().await;
}

async fn lock_waiters_watch_only_their_predecessor(ctx: Ctx) {
    let (a, b, c) = (ctx.connect().await, ctx.connect().await, ctx.connect().await);
    let ga = Lock::new(&a, "/l", "a").acquire().await.unwrap();
    let lb = Lock::new(&b, "/l", "b");
    let lc = Lock::new(&c, "/l", "c");
    let wb = tokio::spawn(async move { lb.acquire().await });
    assert!(eventually(Duration::from_secs(5), || async { a.get_children("/l").await.unwrap().len() == 2 }).await);
    let wc = tokio::spawn(async move { lc.acquire().await });
    assert!(eventually(Duration::from_secs(5), || async { a.get_children("/l").await.unwrap().len() == 3 }).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut nodes = a.get_children("/l").await.unwrap();
    nodes.sort_by_key(|n| n[n.len() - 10..].to_string());
    let (na, nb) = (format!("/l/{}", nodes[0]), format!("/l/{}", nodes[1]));
    // c watches b's node, not the holder's: a release wakes one waiter only. (`wchc`: the
    // server's own list of watched paths per session.)
    let watched = |z: &rzk_client::Client| crate::support::watched_paths(ctx.server.addr, z.session_info().id);
    let full = |p: &str| format!("{}{}", ctx.root, p);
    assert_eq!(watched(&c), vec![full(&nb)]);
    assert_eq!(watched(&b), vec![full(&na)]);
    assert!(watched(&a).is_empty());
    assert!(ga.fencing_token() < a.exists(&nb).await.unwrap().unwrap().czxid.0);
    ga.release().await.unwrap();
    let gb = tokio::time::timeout(Duration::from_secs(5), wb).await.unwrap().unwrap().unwrap();
    assert!(!wc.is_finished());
    gb.release().await.unwrap();
    let gc = tokio::time::timeout(Duration::from_secs(5), wc).await.unwrap().unwrap().unwrap();
    gc.release().await.unwrap();
    for z in [a, b, c] {
        z.close().await;
    }
}

async fn lock_kill_the_holder(ctx: Ctx) {
    let holder = ctx.connect().await;
    let waiter = ctx.connect().await;
    let g = Lock::new(&holder, "/k", "holder").acquire().await.unwrap();
    let lw = Lock::new(&waiter, "/k", "waiter");
    let w = tokio::spawn(async move { lw.acquire().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!w.is_finished());
    // The holder's process dies: its session closes, its ephemeral node goes.
    std::mem::forget(g);
    holder.close().await;
    let gw = tokio::time::timeout(Duration::from_secs(5), w).await.expect("waiter got the lock").unwrap().unwrap();
    assert_eq!(gw.holding(), Holding::Held);
    gw.release().await.unwrap();
    waiter.close().await;
}

async fn lock_expire_the_holder(ctx: Ctx) {
    let holder = ctx.connect().await;
    let waiter = ctx.connect().await;
    let g = Lock::new(&holder, "/x", "holder").acquire().await.unwrap();
    let lw = Lock::new(&waiter, "/x", "waiter");
    let w = tokio::spawn(async move { lw.acquire().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    ctx.expire(&holder.session_info()).await;
    tokio::time::timeout(Duration::from_secs(10), g.lost()).await.expect("holder learns the lock is lost");
    let gw = tokio::time::timeout(Duration::from_secs(10), w).await.expect("waiter got the lock").unwrap().unwrap();
    assert!(eventually(Duration::from_secs(10), || async { g.holding() == Holding::Lost }).await);
    assert_eq!(g.release().await, Err(Error::SessionExpired), "release tells the old holder its lock had expired");
    assert!(gw.fencing_token() > 0);
    gw.release().await.unwrap();
    waiter.close().await;
}

async fn lock_create_reply_lost_leaves_no_orphan(ctx: Ctx) {
    let proxy = Proxy::start(ctx.server.addr).await;
    let zk = ctx.connect_via(&proxy, Duration::from_secs(8)).await;
    let admin = ctx.connect().await;
    for round in 0..2 {
        let lock = Lock::new(&zk, "/p", &format!("me{round}"));
        // The server creates the lock node; its reply never arrives (ConnectionLoss).
        proxy.swallow_reply_to(rzk_client::OpCode::Create2);
        let g = tokio::time::timeout(Duration::from_secs(15), lock.acquire()).await.unwrap().unwrap();
        let children = admin.get_children("/p").await.unwrap();
        assert_eq!(children.len(), 1, "exactly one lock node, ours: {children:?}");
        assert!(children[0].starts_with("_c_") && children[0].contains("__lock__"), "{children:?}");
        assert_eq!(format!("/p/{}", children[0]), g.node_path());
        g.release().await.unwrap();
        assert!(admin.get_children("/p").await.unwrap().is_empty());
    }
    admin.close().await;
    zk.close().await;
}

async fn lock_try_and_timeout_leave_nothing(ctx: Ctx) {
    let a = ctx.connect().await;
    let b = ctx.connect().await;
    let g = Lock::new(&a, "/t", "a").acquire().await.unwrap();
    let lb = Lock::new(&b, "/t", "b");
    assert!(lb.try_acquire().await.unwrap().is_none());
    assert!(lb.acquire_timeout(Duration::from_millis(300)).await.unwrap().is_none());
    // A dropped acquire future cleans up too.
    let _ = tokio::time::timeout(Duration::from_millis(200), lb.acquire()).await;
    assert!(eventually(Duration::from_secs(5), || async { a.get_children("/t").await.unwrap().len() == 1 }).await);
    assert_eq!(lb.contenders().await.unwrap(), ["a"]);
    g.release().await.unwrap();
    let gb = lb.try_acquire().await.unwrap().expect("free now");
    gb.release().await.unwrap();
    a.close().await;
    b.close().await;
}

async fn read_write_lock(ctx: Ctx) {
    let (a, b, c, d) = (ctx.connect().await, ctx.connect().await, ctx.connect().await, ctx.connect().await);
    let r1 = ReadWriteLock::new(&a, "/rw", "r1").read_lock().acquire().await.unwrap();
    let r2 = ReadWriteLock::new(&b, "/rw", "r2").read_lock().acquire().await.unwrap();
    let wl = ReadWriteLock::new(&c, "/rw", "w");
    assert!(wl.write_lock().try_acquire().await.unwrap().is_none(), "readers exclude a writer");
    let w = tokio::spawn(async move { wl.write_lock().acquire().await });
    assert!(eventually(Duration::from_secs(5), || async { a.get_children("/rw").await.unwrap().len() == 3 }).await);
    // A reader arriving after a waiting writer waits behind it.
    let late = ReadWriteLock::new(&d, "/rw", "r3");
    assert!(late.read_lock().try_acquire().await.unwrap().is_none());
    r1.release().await.unwrap();
    assert!(!w.is_finished());
    r2.release().await.unwrap();
    let gw = tokio::time::timeout(Duration::from_secs(5), w).await.unwrap().unwrap().unwrap();
    assert!(late.read_lock().try_acquire().await.unwrap().is_none(), "the writer excludes readers");
    gw.release().await.unwrap();
    late.read_lock().try_acquire().await.unwrap().expect("free for readers").release().await.unwrap();
    for z in [a, b, c, d] {
        z.close().await;
    }
}

async fn semaphore_limits_holders(ctx: Ctx) {
    let inside = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let zk = ctx.connect().await;
        let (inside, max_seen) = (inside.clone(), max_seen.clone());
        tasks.push(tokio::spawn(async move {
            let sem = Semaphore::new(&zk, "/sem", &format!("s{i}"), 2);
            for _ in 0..2 {
                let lease = sem.acquire().await.unwrap();
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(n, Ordering::SeqCst);
                assert!(n <= 2, "{n} holders of a 2-lease semaphore");
                assert!(lease.fencing_token() > 0);
                tokio::time::sleep(Duration::from_millis(30)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                lease.release().await.unwrap();
            }
            zk.close().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(max_seen.load(Ordering::SeqCst), 2);
    // A contender with another idea of the limit is refused.
    let zk = ctx.connect().await;
    assert_eq!(Semaphore::new(&zk, "/sem", "odd", 3).acquire().await.unwrap_err(), Error::BadArguments);
    zk.close().await;
}

async fn election_follows_the_session(ctx: Ctx) {
    let proxy = Proxy::start(ctx.server.addr).await;
    let a = ctx.connect_via(&proxy, Duration::from_secs(3)).await;
    let b = ctx.connect().await;
    let ea = LeaderElection::new(&a, "/election", "alpha");
    let eb = LeaderElection::new(&b, "/election", "beta");
    let mut lead = ea.campaign().await.unwrap();
    assert_eq!(lead.status(), Holding::Held);
    let t1 = lead.fencing_token();
    let eb2 = eb.clone();
    let follower = tokio::spawn(async move { eb2.campaign().await });
    assert!(eventually(Duration::from_secs(5), || async { eb.contenders().await.unwrap() == ["alpha", "beta"] }).await);
    assert_eq!(eb.leader().await.unwrap().as_deref(), Some("alpha"));
    // Cut the leader off: first in doubt, then (after the session timeout) lost.
    proxy.refuse();
    let s = tokio::time::timeout(Duration::from_secs(5), lead.changed(Holding::Held)).await.unwrap();
    assert_eq!(s, Holding::InDoubt);
    let s = tokio::time::timeout(Duration::from_secs(10), lead.changed(Holding::InDoubt)).await.unwrap();
    assert_eq!(s, Holding::Lost);
    let lb = tokio::time::timeout(Duration::from_secs(10), follower).await.unwrap().unwrap().unwrap();
    assert!(lb.fencing_token() > t1, "a new term has a larger token");
    assert_eq!(eb.leader().await.unwrap().as_deref(), Some("beta"));
    lb.resign().await.unwrap();
    b.close().await;
}

async fn election_run_is_cancelled_on_loss(ctx: Ctx) {
    let a = ctx.connect().await;
    let e = LeaderElection::new(&a, "/run", "a");
    // The leader function finishes: its value comes back, leadership is given up.
    assert_eq!(e.run(|_lead| async { 7 }).await.unwrap(), Some(7));
    assert!(e.contenders().await.unwrap().is_empty());
    // Leadership lost mid-way (the session expires): the function is dropped.
    let started = Arc::new(tokio::sync::Notify::new());
    let s2 = started.clone();
    let run = e.run(move |_lead| async move {
        s2.notify_one();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        1
    });
    let expire = async {
        started.notified().await;
        ctx.expire(&a.session_info()).await;
    };
    let (r, ()) = tokio::join!(run, expire);
    assert_eq!(r.unwrap(), None);
}

async fn barriers(ctx: Ctx) {
    let a = ctx.connect().await;
    let b = ctx.connect().await;
    let barrier = Barrier::new(&a, "/gate");
    barrier.raise().await.unwrap();
    let bb = Barrier::new(&b, "/gate");
    let w = tokio::spawn(async move { bb.wait().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!w.is_finished());
    barrier.remove().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), w).await.unwrap().unwrap().unwrap();

    let entered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let zk = ctx.connect().await;
        let entered = entered.clone();
        tasks.push(tokio::spawn(async move {
            let db = DoubleBarrier::new(&zk, "/double", 3);
            db.enter().await.unwrap();
            assert!(entered.fetch_add(1, Ordering::SeqCst) < 3);
            assert!(eventually(Duration::from_secs(5), || async { entered.load(Ordering::SeqCst) == 3 }).await);
            db.leave().await.unwrap();
            zk.close().await;
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(20), t).await.unwrap().unwrap();
    }
    assert!(a.get_children("/double").await.unwrap().is_empty());
    a.close().await;
    b.close().await;
}

async fn queue_fifo_once_each(ctx: Ctx) {
    let zk = ctx.connect().await;
    let q = Queue::new(&zk, "/q");
    for i in 0..10 {
        q.put(format!("item{i}").as_bytes()).await.unwrap();
    }
    assert_eq!(q.len().await.unwrap(), 10);
    assert_eq!(q.take().await.unwrap(), b"item0");
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let c = ctx.connect().await;
        let got = got.clone();
        tasks.push(tokio::spawn(async move {
            let q = Queue::new(&c, "/q");
            while let Some(item) = q.try_take().await.unwrap() {
                got.lock().unwrap().push(String::from_utf8(item).unwrap());
            }
            c.close().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut got = got.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, (1..10).map(|i| format!("item{i}")).collect::<Vec<_>>(), "every item taken exactly once");
    // take() waits for a put.
    let q2 = q.clone();
    let t = tokio::spawn(async move { q2.take().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    q.put(b"late").await.unwrap();
    assert_eq!(tokio::time::timeout(Duration::from_secs(5), t).await.unwrap().unwrap().unwrap(), b"late");
    zk.close().await;
}

async fn counter_concurrent_adds(ctx: Ctx) {
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let zk = ctx.connect().await;
        tasks.push(tokio::spawn(async move {
            let c = Counter::new(&zk, "/count");
            for _ in 0..10 {
                c.add(1).await.unwrap();
            }
            zk.close().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let zk = ctx.connect().await;
    let c = Counter::new(&zk, "/count");
    assert_eq!(c.get().await.unwrap().0, 30);
    assert_eq!(c.add(-5).await.unwrap(), 25);
    let (v, ver) = c.get().await.unwrap();
    assert!(!c.compare_and_set(ver - 1, 0).await.unwrap());
    assert!(c.compare_and_set(ver, v + 1).await.unwrap());
    zk.set_data("/count", b"not a number", -1).await.unwrap();
    assert_eq!(c.add(1).await, Err(Error::BadArguments));
    zk.close().await;
}

async fn discovery_tracks_live_instances(ctx: Ctx) {
    let w = ctx.connect().await;
    let mut watcher = ServiceWatcher::start(&w, "/services", "api").await.unwrap();
    assert!(watcher.instances().is_empty());
    let s1 = ctx.connect().await;
    let s2 = ctx.connect().await;
    let inst = |id: &str, port| ServiceInstance {
        name: "api".into(),
        id: id.into(),
        address: "10.0.0.1".into(),
        port,
        payload: serde_json::json!({"zone": "a"}),
    };
    let _r1 = register(&s1, "/services", &inst("one", 8001)).await.unwrap();
    let r2 = register(&s2, "/services", &inst("two", 8002)).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || async { watcher.instances().len() == 2 }).await);
    assert_eq!(watcher.instances()[0].payload["zone"], "a");
    // The same id from another session is refused.
    let s3 = ctx.connect().await;
    assert!(matches!(register(&s3, "/services", &inst("one", 9)).await, Err(Error::NodeExists)));
    // An instance that dies drops out.
    s1.close().await;
    let now = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let v = watcher.changed().await.unwrap();
            if v.len() == 1 {
                return v;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(now[0].id, "two");
    r2.unregister().await.unwrap();
    assert!(eventually(Duration::from_secs(5), || async { watcher.instances().is_empty() }).await);
    for z in [w, s2, s3] {
        z.close().await;
    }
}

async fn caches_follow_changes(ctx: Ctx) {
    let proxy = Proxy::start(ctx.server.addr).await;
    let zk = ctx.connect_via(&proxy, Duration::from_secs(8)).await;
    let writer = ctx.connect().await;
    let mut node = NodeCache::start(&zk, "/cfg").await.unwrap();
    assert_eq!(node.get(), None);
    writer.create("/cfg", b"v1", &CreateOptions::persistent()).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || async { node.get().map(|(d, _)| d) == Some(b"v1".to_vec()) }).await);
    writer.set_data("/cfg", b"v2", -1).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some((d, _)) = node.changed().await.unwrap() {
                if d == b"v2" {
                    return d;
                }
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(got, b"v2");

    // (A separate session: ZooKeeper 3.8 keeps one watch mode per session and path, so the
    // NodeCache's one-time watch on /cfg would replace a recursive watch there.)
    let zk2 = ctx.connect_via(&proxy, Duration::from_secs(8)).await;
    let tree = TreeCache::start(&zk2, "/cfg").await.unwrap();
    writer.create("/cfg/a", b"1", &CreateOptions::persistent()).await.unwrap();
    writer.create("/cfg/a/b", b"2", &CreateOptions::persistent()).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || async { tree.data("/cfg/a/b") == Some(b"2".to_vec()) }).await);
    writer.set_data("/cfg/a", b"1b", -1).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || async { tree.data("/cfg/a") == Some(b"1b".to_vec()) }).await);
    // Changes made while the cache's client is away show up after it reconnects.
    proxy.refuse();
    tokio::time::sleep(Duration::from_millis(200)).await;
    writer.delete("/cfg/a/b", -1).await.unwrap();
    writer.create("/cfg/c", b"3", &CreateOptions::persistent()).await.unwrap();
    writer.set_data("/cfg", b"v3", -1).await.unwrap();
    assert_eq!(tree.data("/cfg/a/b"), Some(b"2".to_vec()), "stale while away, not emptied");
    proxy.heal();
    assert!(
        eventually(Duration::from_secs(10), || async { tree.data("/cfg/c") == Some(b"3".to_vec()) && tree.data("/cfg/a/b").is_none() })
            .await,
        "{:?}",
        tree.get().keys().collect::<Vec<_>>()
    );
    assert!(eventually(Duration::from_secs(10), || async { node.get().map(|(d, _)| d) == Some(b"v3".to_vec()) }).await);
    writer.close().await;
    zk2.close().await;
    zk.close().await;
}
