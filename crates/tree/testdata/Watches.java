import java.util.*;
import java.util.concurrent.*;
import org.apache.zookeeper.*;
import org.apache.zookeeper.data.*;

public class Watches {
    static final List<String> events = Collections.synchronizedList(new ArrayList<>());
    static final List<ACL> OPEN = ZooDefs.Ids.OPEN_ACL_UNSAFE;
    static ZooKeeper connect(String hp, Watcher w) throws Exception {
        CountDownLatch l = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(hp, 30000, e -> { if (e.getState() == Watcher.Event.KeeperState.SyncConnected && e.getType() == Watcher.Event.EventType.None) l.countDown(); else if (w != null) w.process(e); });
        l.await();
        return zk;
    }
    static void mk(ZooKeeper z, String p) throws Exception { z.create(p, new byte[0], OPEN, CreateMode.PERSISTENT); }
    static void flush(String name, ZooKeeper x) throws Exception {
        CountDownLatch l = new CountDownLatch(1);
        x.sync("/", (rc, path, ctx) -> l.countDown(), null);
        l.await();
        Thread.sleep(100);
        synchronized (events) { System.out.println(name + "=" + String.join(",", events)); events.clear(); }
    }
    public static void main(String[] args) throws Exception {
        String hp = args[0];
        Watcher rec = e -> { if (e.getType() != Watcher.Event.EventType.None) events.add(e.getType() + ":" + e.getPath()); };
        ZooKeeper x = connect(hp, rec), y = connect(hp, null);
        Stat st = new Stat();
        // W1: data + exists + child watch on a node, child watch on the parent; node deleted
        mk(y, "/w1"); mk(y, "/w1/n");
        x.getData("/w1/n", true, st); x.exists("/w1/n", true); x.getChildren("/w1/n", true); x.getChildren("/w1", true);
        y.delete("/w1/n", -1);
        flush("w1", x);
        // W2: persistent recursive
        mk(y, "/w2");
        x.addWatch("/w2", AddWatchMode.PERSISTENT_RECURSIVE);
        mk(y, "/w2/a"); y.setData("/w2/a", new byte[1], -1); mk(y, "/w2/a/b"); y.delete("/w2/a/b", -1); y.delete("/w2/a", -1); y.setData("/w2", new byte[1], -1);
        flush("w2", x);
        // W3: persistent
        mk(y, "/w3");
        x.addWatch("/w3", AddWatchMode.PERSISTENT);
        mk(y, "/w3/a"); y.setData("/w3", new byte[1], -1); y.setData("/w3/a", new byte[1], -1); y.delete("/w3/a", -1); y.delete("/w3", -1); mk(y, "/w3"); y.setData("/w3", new byte[2], -1);
        flush("w3", x);
        // W4: persistent then a one-time data watch on the same path (3.8: mode replaced)
        mk(y, "/w4");
        x.addWatch("/w4", AddWatchMode.PERSISTENT);
        x.getData("/w4", true, st);
        y.setData("/w4", new byte[1], -1); y.setData("/w4", new byte[2], -1); mk(y, "/w4/c"); mk(y, "/w4/d");
        flush("w4", x);
        // W6: multi
        mk(y, "/w6"); mk(y, "/w6/a"); mk(y, "/w6/b");
        x.getData("/w6/a", true, st); x.getData("/w6/b", true, st); x.getChildren("/w6", true); x.exists("/w6/c", true);
        y.multi(Arrays.asList(Op.create("/w6/c", new byte[0], OPEN, CreateMode.PERSISTENT), Op.setData("/w6/a", new byte[1], -1), Op.delete("/w6/b", -1)));
        flush("w6", x);
        // W9: exists watch on a missing node
        x.exists("/w9", true);
        mk(y, "/w9"); y.delete("/w9", -1);
        flush("w9", x);
        // W10: recursive on / plus child watch
        mk(y, "/w10");
        x.getChildren("/w10", true);
        x.addWatch("/", AddWatchMode.PERSISTENT_RECURSIVE);
        mk(y, "/w10/a"); y.delete("/w10/a", -1);
        x.removeAllWatches("/", Watcher.WatcherType.Any, false);
        flush("w10", x);
        // W11: recursive watch, then one-time watch on a descendant; recursive then one-time on same path
        mk(y, "/w11"); mk(y, "/w11/a");
        x.addWatch("/w11", AddWatchMode.PERSISTENT_RECURSIVE);
        x.getData("/w11/a", true, st);
        y.setData("/w11/a", new byte[1], -1); y.setData("/w11/a", new byte[2], -1);
        x.getData("/w11", true, st);
        y.setData("/w11", new byte[1], -1); y.setData("/w11", new byte[2], -1); mk(y, "/w11/b");
        flush("w11", x);
        // W12: closeSession of a session with ephemerals, watched recursively
        ZooKeeper e = connect(hp, null);
        mk(y, "/w12");
        for (int i = 0; i < 20; i++) e.create("/w12/e" + i, new byte[0], OPEN, CreateMode.EPHEMERAL);
        x.addWatch("/w12", AddWatchMode.PERSISTENT_RECURSIVE);
        x.getChildren("/w12", true);
        e.close();
        flush("w12", x);
        // W13: removeWatches of a one-time data watch, then change
        mk(y, "/w13");
        x.getData("/w13", true, st); x.getChildren("/w13", true);
        x.removeAllWatches("/w13", Watcher.WatcherType.Data, false);
        y.setData("/w13", new byte[1], -1); mk(y, "/w13/k");
        flush("w13", x);
        x.close(); y.close();
    }
}
