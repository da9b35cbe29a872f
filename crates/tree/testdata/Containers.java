import java.util.*;
import java.util.concurrent.*;
import org.apache.zookeeper.*;
import org.apache.zookeeper.data.*;

public class Containers {
    public static void main(String[] args) throws Exception {
        CountDownLatch l = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(args[0], 30000, e -> { if (e.getState() == Watcher.Event.KeeperState.SyncConnected) l.countDown(); });
        l.await();
        List<ACL> open = ZooDefs.Ids.OPEN_ACL_UNSAFE;
        zk.create("/cc", new byte[0], open, CreateMode.PERSISTENT);
        for (int i = 0; i < 40; i++) {
            zk.create("/cc/c" + i, new byte[0], open, CreateMode.CONTAINER);
            zk.create("/cc/c" + i + "/x", new byte[0], open, CreateMode.PERSISTENT);
        }
        for (int i = 0; i < 8; i++) zk.create("/t" + i, new byte[0], open, CreateMode.PERSISTENT_WITH_TTL, null, 1);
        for (int i = 0; i < 40; i++) if (i % 7 != 3) zk.delete("/cc/c" + i + "/x", -1);
        zk.close();
        Thread.sleep(4000);
    }
}
