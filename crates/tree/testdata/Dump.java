import java.util.*;
import java.util.concurrent.*;
import org.apache.zookeeper.*;
import org.apache.zookeeper.data.*;

public class Dump {
    static StringBuilder out = new StringBuilder();
    static String hex(byte[] b) { StringBuilder s = new StringBuilder(); if (b != null) for (byte x : b) s.append(String.format("%02x", x)); return s.toString(); }
    static void walk(ZooKeeper zk, String path) throws Exception {
        Stat st = new Stat();
        byte[] d = zk.getData(path, false, st);
        List<String> kids = zk.getChildren(path, false);
        List<ACL> acl = zk.getACL(path, new Stat());
        StringBuilder a = new StringBuilder();
        for (ACL x : acl) a.append(x.getPerms()).append(':').append(x.getId().getScheme()).append(':').append(x.getId().getId()).append(';');
        out.append(path).append(' ').append(st.getCzxid()).append(' ').append(st.getMzxid()).append(' ').append(st.getPzxid())
           .append(' ').append(st.getCtime()).append(' ').append(st.getMtime()).append(' ').append(st.getVersion())
           .append(' ').append(st.getCversion()).append(' ').append(st.getAversion()).append(' ').append(st.getEphemeralOwner())
           .append(' ').append(st.getDataLength()).append(' ').append(st.getNumChildren()).append(' ').append(hex(d)).append(' ').append(a)
           .append(' ').append(String.join(",", kids)).append('\n');
        for (String k : kids) walk(zk, path.equals("/") ? "/" + k : path + "/" + k);
    }
    public static void main(String[] args) throws Exception {
        CountDownLatch l = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(args[0], 30000, e -> { if (e.getState() == Watcher.Event.KeeperState.SyncConnected) l.countDown(); });
        l.await();
        zk.addAuthInfo("digest", "u:p".getBytes());
        walk(zk, "/");
        System.out.print(out);
        zk.close();
    }
}
