import java.util.*;
import java.util.concurrent.*;
import org.apache.zookeeper.*;
import org.apache.zookeeper.data.*;
import org.apache.zookeeper.server.auth.DigestAuthenticationProvider;

public class Workload {
    static ZooKeeper connect(String hp) throws Exception {
        CountDownLatch l = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(hp, 30000, e -> { if (e.getState() == Watcher.Event.KeeperState.SyncConnected) l.countDown(); });
        l.await();
        return zk;
    }
    static final List<ACL> OPEN = ZooDefs.Ids.OPEN_ACL_UNSAFE;
    public static void main(String[] args) throws Exception {
        String hp = args[0];
        Random rnd = new Random(7);
        ZooKeeper a = connect(hp), b = connect(hp);
        a.create("/app", "root-data".getBytes(), OPEN, CreateMode.PERSISTENT);
        a.create("/zookeeper/quota/app", new byte[0], OPEN, CreateMode.PERSISTENT);
        a.create("/zookeeper/quota/app/zookeeper_limits", "count=1000,bytes=-1".getBytes(), OPEN, CreateMode.PERSISTENT);
        a.create("/zookeeper/quota/app/zookeeper_stats", "count=0,bytes=0".getBytes(), OPEN, CreateMode.PERSISTENT);
        for (int i = 0; i < 50; i++) { byte[] d = new byte[rnd.nextInt(40)]; rnd.nextBytes(d); a.create("/app/n" + i, d, OPEN, CreateMode.PERSISTENT); }
        for (int i = 0; i < 50; i += 4) a.delete("/app/n" + i, -1);
        for (int i = 0; i < 20; i++) a.create("/app/seq-", "s".getBytes(), OPEN, CreateMode.PERSISTENT_SEQUENTIAL);
        for (int i = 0; i < 30; i++) b.create("/app/eph-" + i, ("e" + i).getBytes(), OPEN, CreateMode.EPHEMERAL);
        for (int i = 0; i < 30; i += 5) b.delete("/app/eph-" + i, -1);
        for (int i = 0; i < 10; i++) b.create("/app/eseq-", new byte[0], OPEN, CreateMode.EPHEMERAL_SEQUENTIAL);
        a.create("/cont", "c".getBytes(), OPEN, CreateMode.CONTAINER);
        a.create("/cont/c1", new byte[0], OPEN, CreateMode.PERSISTENT);
        a.delete("/cont/c1", -1);
        a.create("/cont2", new byte[0], OPEN, CreateMode.CONTAINER);
        a.create("/ttl1", "t".getBytes(), OPEN, CreateMode.PERSISTENT_WITH_TTL, null, 100000);
        a.create("/ttl2", "t".getBytes(), OPEN, CreateMode.PERSISTENT_WITH_TTL, null, 5);
        for (int i = 0; i < 5; i++) a.setData("/app/n1", ("v" + i).getBytes(), -1);
        a.setData("/", "rootdata".getBytes(), -1);
        a.setACL("/app/n2", Collections.singletonList(new ACL(ZooDefs.Perms.ALL, new Id("digest", DigestAuthenticationProvider.generateDigest("u:p")))), -1);
        a.setACL("/app/n3", OPEN, -1);
        a.setACL("/app/n5", ZooDefs.Ids.READ_ACL_UNSAFE, -1);
        a.setACL("/app/n3", OPEN, -1);
        a.multi(Arrays.asList(Op.create("/app/m1", "m".getBytes(), OPEN, CreateMode.PERSISTENT), Op.setData("/app/n1", "mm".getBytes(), -1), Op.delete("/app/n6", -1)));
        try { a.multi(Arrays.asList(Op.create("/app/m2", "m".getBytes(), OPEN, CreateMode.PERSISTENT), Op.check("/app/n7", 99), Op.create("/app/m3", new byte[0], OPEN, CreateMode.PERSISTENT))); } catch (KeeperException e) { System.out.println("multi failed: " + e.code()); }
        try { a.create("/app/n1", new byte[0], OPEN, CreateMode.PERSISTENT); } catch (KeeperException e) { System.out.println(e.code()); }
        try { a.delete("/app/nope", -1); } catch (KeeperException e) { System.out.println(e.code()); }
        for (int i = 0; i < 40; i++) a.create("/r" + i, new byte[0], OPEN, CreateMode.PERSISTENT);
        for (int i = 0; i < 40; i += 3) a.delete("/r" + i, -1);
        a.create("/deep", new byte[0], OPEN, CreateMode.PERSISTENT);
        a.create("/deep/a", "x".getBytes(), OPEN, CreateMode.PERSISTENT);
        a.create("/app/n30/under-quota", "1234567".getBytes(), OPEN, CreateMode.PERSISTENT);
        a.setData("/app/n30/under-quota", "12".getBytes(), -1);
        System.out.println("b ephemerals: " + b.getEphemerals("/"));
        b.close();
        Thread.sleep(500);
        a.close();
    }
}
