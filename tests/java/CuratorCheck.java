// Apache Curator (Debian's libcurator-*-java) as a client of a ZooKeeper-compatible server:
// the framework's CRUD, transactions and watches, the recipes most applications use, and
// the reconfig API. Prints one line per observation, with nothing in them that depends on
// the server's own identity (session ids, ports), so that tests/test_curator.py can compare
// a run against Apache ZooKeeper with a run against rzk line for line.
//
// usage: java -cp <classes>:<curator and zookeeper jars> CuratorCheck <connect string> basics|recipes
//        java ... CuratorCheck <connect string> reconfig <sid to remove> <its server.N line>

import java.util.Collections;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.CuratorWatcher;
import org.apache.curator.framework.api.transaction.CuratorTransactionResult;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

public class CuratorCheck {
    static CuratorFramework client(String cs) throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.builder()
                .connectString(cs)
                .sessionTimeoutMs(15000)
                .connectionTimeoutMs(10000)
                .retryPolicy(new RetryNTimes(30, 200))
                .build();
        c.start();
        if (!c.blockUntilConnected(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException("not connected to " + cs);
        }
        return c;
    }

    static void out(String s) {
        System.out.println(s);
        System.out.flush();
    }

    static String code(Exception e) {
        return e instanceof KeeperException ? ((KeeperException) e).code().name() : e.getClass().getSimpleName();
    }

    public static void main(String[] a) throws Exception {
        switch (a[1]) {
            case "basics": basics(a[0]); break;
            case "recipes": recipes(a[0]); break;
            case "reconfig": reconfig(a[0], a[2], a[3]); break;
            default: throw new IllegalArgumentException(a[1]);
        }
        // Curator's background threads would keep the JVM alive.
        System.exit(0);
    }

    static void basics(String cs) throws Exception {
        try (CuratorFramework c = client(cs)) {
            out("create " + c.create().creatingParentsIfNeeded().forPath("/cur/a/b", "x".getBytes()));
            out("sequential " + c.create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath("/cur/seq-"));
            out("ephemeral " + c.create().withMode(CreateMode.EPHEMERAL).forPath("/cur/eph"));
            Stat st = c.checkExists().forPath("/cur/a/b");
            out("stat version=" + st.getVersion() + " dataLength=" + st.getDataLength() + " numChildren="
                    + st.getNumChildren() + " ephemeral=" + (st.getEphemeralOwner() != 0));
            long owner = c.checkExists().forPath("/cur/eph").getEphemeralOwner();
            out("ephemeral owner is my session " + (owner == c.getZookeeperClient().getZooKeeper().getSessionId()));
            try {
                c.setData().withVersion(5).forPath("/cur/a/b", "y".getBytes());
                out("set version 5 ok");
            } catch (Exception e) {
                out("set version 5 " + code(e));
            }
            out("set version 0 -> " + c.setData().withVersion(0).forPath("/cur/a/b", "y".getBytes()).getVersion());
            out("get " + new String(c.getData().forPath("/cur/a/b")));
            try {
                c.create().forPath("/cur/a/b");
            } catch (Exception e) {
                out("create again " + code(e));
            }
            try {
                c.create().forPath("/nope/x");
            } catch (Exception e) {
                out("create without parent " + code(e));
            }
            try {
                c.delete().forPath("/cur/a");
            } catch (Exception e) {
                out("delete a parent " + code(e));
            }
            List<CuratorTransactionResult> r = c.transaction().forOperations(
                    c.transactionOp().create().forPath("/cur/t1", "1".getBytes()),
                    c.transactionOp().setData().forPath("/cur/a/b", "z".getBytes()),
                    c.transactionOp().check().withVersion(2).forPath("/cur/a/b"),
                    c.transactionOp().delete().forPath("/cur/t1"));
            for (CuratorTransactionResult x : r) {
                out("transaction " + x.getType() + " " + x.getForPath() + " " + x.getResultPath()
                        + (x.getResultStat() != null ? " version=" + x.getResultStat().getVersion() : ""));
            }
            try {
                c.transaction().forOperations(
                        c.transactionOp().create().forPath("/cur/t2"),
                        c.transactionOp().create().forPath("/cur/a/b"));
                out("failing transaction ok");
            } catch (Exception e) {
                out("failing transaction " + code(e));
            }
            out("its first op undone " + (c.checkExists().forPath("/cur/t2") == null));
            List<String> kids = c.getChildren().forPath("/cur");
            Collections.sort(kids);
            out("children " + kids);
            CountDownLatch fired = new CountDownLatch(1);
            String[] event = new String[1];
            c.getData().usingWatcher((CuratorWatcher) e -> {
                event[0] = e.getType() + " " + e.getPath();
                fired.countDown();
            }).forPath("/cur/a/b");
            c.setData().forPath("/cur/a/b", "w".getBytes());
            out("watch fired " + fired.await(10, TimeUnit.SECONDS) + " " + event[0]);
            c.create().withMode(CreateMode.CONTAINER).forPath("/cur/box");
            out("container " + (c.checkExists().forPath("/cur/box") != null));
            c.delete().deletingChildrenIfNeeded().forPath("/cur");
            out("deleted with children " + (c.checkExists().forPath("/cur") == null));
        }
    }

    static void recipes(String cs) throws Exception {
        try (CuratorFramework c1 = client(cs); CuratorFramework c2 = client(cs)) {
            InterProcessMutex m1 = new InterProcessMutex(c1, "/rec/lock");
            InterProcessMutex m2 = new InterProcessMutex(c2, "/rec/lock");
            m1.acquire();
            out("lock: first holds it " + m1.isAcquiredInThisProcess());
            out("lock: second while held " + m2.acquire(300, TimeUnit.MILLISECONDS));
            m1.release();
            out("lock: second after release " + m2.acquire(10, TimeUnit.SECONDS));
            m2.release();
            out("lock: no lock nodes left " + c1.getChildren().forPath("/rec/lock").isEmpty());

            LeaderLatch l1 = new LeaderLatch(c1, "/rec/leader", "one");
            LeaderLatch l2 = new LeaderLatch(c2, "/rec/leader", "two");
            l1.start();
            out("leader: first elected " + l1.await(10, TimeUnit.SECONDS));
            l2.start();
            Thread.sleep(300);
            out("leader: " + l1.hasLeadership() + " " + l2.hasLeadership() + " leader id " + l2.getLeader().getId());
            l1.close();
            out("leader: second takes over " + l2.await(10, TimeUnit.SECONDS));
            l2.close();

            DistributedAtomicLong n = new DistributedAtomicLong(c1, "/rec/counter", new RetryNTimes(10, 10));
            for (int i = 0; i < 10; i++) {
                n.increment();
            }
            out("atomic long " + n.get().postValue());
            SharedCount sc = new SharedCount(c2, "/rec/shared", 5);
            sc.start();
            out("shared count " + sc.getCount() + " set " + sc.trySetCount(sc.getVersionedValue(), 7));
            long until = System.currentTimeMillis() + 10000;
            while (sc.getCount() != 7 && System.currentTimeMillis() < until) {
                Thread.sleep(20);
            }
            out("shared count now " + sc.getCount());
            sc.close();

            // CuratorCache (a persistent recursive watch): another client's changes, in order.
            c1.create().creatingParentsIfNeeded().forPath("/rec/cache");
            BlockingQueue<String> events = new LinkedBlockingQueue<>();
            CuratorCache cache = CuratorCache.build(c1, "/rec/cache");
            cache.listenable().addListener(CuratorCacheListener.builder()
                    .forCreates(x -> events.add("created " + x.getPath() + " " + new String(x.getData())))
                    .forChanges((o, x) -> events.add("changed " + x.getPath() + " " + new String(x.getData())))
                    .forDeletes(o -> events.add("deleted " + o.getPath()))
                    .forInitialized(() -> events.add("initialized"))
                    .build());
            cache.start();
            out("cache " + events.poll(10, TimeUnit.SECONDS));
            out("cache " + events.poll(10, TimeUnit.SECONDS));
            c2.create().forPath("/rec/cache/x", "1".getBytes());
            out("cache " + events.poll(10, TimeUnit.SECONDS));
            c2.setData().forPath("/rec/cache/x", "2".getBytes());
            out("cache " + events.poll(10, TimeUnit.SECONDS));
            c2.delete().forPath("/rec/cache/x");
            out("cache " + events.poll(10, TimeUnit.SECONDS));
            cache.close();
            c1.delete().deletingChildrenIfNeeded().forPath("/rec");
            out("recipes cleaned up " + (c1.checkExists().forPath("/rec") == null));
        }
    }

    /** How many servers a configuration names, and whether `sid` is one of them. */
    static String members(byte[] conf, String sid) {
        int n = 0;
        boolean in = false;
        for (String l : new String(conf).split("\n")) {
            if (l.startsWith("server.")) {
                n++;
                in |= l.substring("server.".length(), l.indexOf('=')).equals(sid);
            }
        }
        return n + " servers, the one removed " + (in ? "in" : "out");
    }

    static void reconfig(String cs, String sid, String line) throws Exception {
        try (CuratorFramework c = client(cs)) {
            Stat st = new Stat();
            byte[] conf = c.getConfig().storingStatIn(st).forEnsemble();
            out("config " + members(conf, sid));
            long version = st.getMzxid();
            byte[] after = c.reconfig().leaving(sid).fromConfig(version).forEnsemble();
            out("after leaving: " + members(after, sid));
            try {
                c.reconfig().leaving(sid).fromConfig(version).forEnsemble();
                out("stale fromConfig ok");
            } catch (Exception e) {
                out("stale fromConfig " + code(e));
            }
            c.create().forPath("/reconfigured", "x".getBytes());
            out("write with it gone ok");
            byte[] back = c.reconfig().joining(line).fromConfig(-1).forEnsemble();
            out("after joining: " + members(back, sid));
            c.setData().forPath("/reconfigured", "y".getBytes());
            out("write after joining ok");
            Stat now = new Stat();
            c.getConfig().storingStatIn(now).forEnsemble();
            out("config version moved " + (now.getMzxid() > version));
        }
    }
}
