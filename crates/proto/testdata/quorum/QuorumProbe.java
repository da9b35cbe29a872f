// Prints, as hex, records encoded by Apache ZooKeeper's own classes (3.8.0 jars), for the
// golden tests in crates/proto/src/quorum.rs. Run: ./run.sh  (needs java and the Debian zookeeper package)
package org.apache.zookeeper.server.quorum;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.nio.ByteBuffer;
import java.util.Arrays;
import org.apache.jute.BinaryOutputArchive;
import org.apache.jute.Record;
import org.apache.zookeeper.data.Id;

public class QuorumProbe {
    static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) s.append(String.format("%02x", x));
        return s.toString();
    }
    static String rec(Record r) throws Exception {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        BinaryOutputArchive.getArchive(bos).writeRecord(r, "r");
        return hex(bos.toByteArray());
    }
    public static void main(String[] a) throws Exception {
        System.out.println("proposal " + rec(new QuorumPacket(Leader.PROPOSAL, 0x100000001L, new byte[] {1, 2, 3}, null)));
        System.out.println("commit " + rec(new QuorumPacket(Leader.COMMIT, 0x100000001L, null, null)));
        System.out.println("uptodate " + rec(new QuorumPacket(Leader.UPTODATE, -1, null, null)));
        System.out.println("request_auth " + rec(new QuorumPacket(1, -1, new byte[0], Arrays.asList(new Id("digest", "u:p")))));
        ByteArrayOutputStream li = new ByteArrayOutputStream();
        BinaryOutputArchive.getArchive(li).writeRecord(new LearnerInfo(3, 0x10000, 0x100000000L), "LearnerInfo");
        System.out.println("learnerinfo " + hex(li.toByteArray()));
        System.out.println("followerinfo " + rec(new QuorumPacket(Leader.FOLLOWERINFO, 0x200000000L, li.toByteArray(), null)));
        byte[] ver = new byte[4];
        ByteBuffer.wrap(ver).putInt(0x10000);
        System.out.println("leaderinfo " + rec(new QuorumPacket(Leader.LEADERINFO, 0x300000000L, ver, null)));
        byte[] cfg = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nversion=0".getBytes("UTF-8");
        System.out.println("notification " + hex(FastLeaderElection.buildMsg(2, 3L, 0x200000005L, 7L, 2L, cfg).array()));
        System.out.println("notification40 " + hex(FastLeaderElection.buildMsg(0, 1L, 0L, 1L, 0L).array()));
        // The connection header as QuorumCnxManager.startConnection writes it (PROTOCOL_VERSION_V1),
        // then parsed back by the real InitialMessage.parse.
        ByteArrayOutputStream hb = new ByteArrayOutputStream();
        DataOutputStream d = new DataOutputStream(hb);
        d.writeLong(QuorumCnxManager.PROTOCOL_VERSION_V1);
        d.writeLong(2);
        byte[] addr = "127.0.0.1:3888".getBytes();
        d.writeInt(addr.length);
        d.write(addr);
        d.flush();
        System.out.println("initial " + hex(hb.toByteArray()));
        DataInputStream din = new DataInputStream(new ByteArrayInputStream(hb.toByteArray()));
        long pv = din.readLong();
        QuorumCnxManager.InitialMessage m = QuorumCnxManager.InitialMessage.parse(pv, din);
        System.out.println("initial_parsed sid=" + m.sid + " addrs=" + m.electionAddr);
    }
}
