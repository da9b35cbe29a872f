import java.util.*;

public class JavaOrder {
    static int spread(int h) { return h ^ (h >>> 16); }
    static String join(Iterable<?> it) { StringBuilder sb = new StringBuilder(); for (Object o : it) { if (sb.length() > 0) sb.append(','); sb.append(o); } return sb.toString(); }
    public static void main(String[] a) {
        // 1: children set growing from capacity 8
        HashSet<String> s1 = new HashSet<>(8);
        for (int i = 0; i < 100; i++) s1.add("n" + i);
        System.out.println("grow=" + join(s1));
        // 2: sequential names, removals, re-adds
        HashSet<String> s2 = new HashSet<>(8);
        for (int i = 0; i < 40; i++) s2.add(String.format("lock-%010d", i));
        for (int i = 0; i < 40; i += 3) s2.remove(String.format("lock-%010d", i));
        for (int i = 0; i < 10; i++) s2.add("x" + i);
        s2.add(String.format("lock-%010d", 3));
        System.out.println("seq=" + join(s2));
        // 3: clone after shrinking (ephemerals set, default capacity)
        HashSet<String> s3 = new HashSet<>();
        for (int i = 0; i < 30; i++) s3.add("/app/e" + i);
        for (int i = 0; i < 25; i++) s3.remove("/app/e" + i);
        System.out.println("beforeclone=" + join(s3));
        @SuppressWarnings("unchecked") HashSet<String> c3 = (HashSet<String>) s3.clone();
        System.out.println("clone=" + join(c3));
        HashSet<String> e3 = new HashSet<>();
        @SuppressWarnings("unchecked") HashSet<String> ce = (HashSet<String>) e3.clone();
        for (int i = 0; i < 20; i++) ce.add("/q" + i);
        System.out.println("emptyclone=" + join(ce));
        // 4: new HashSet<>(collection)
        List<String> l4 = new ArrayList<>();
        for (int i = 0; i < 30; i++) l4.add("/c/" + (i * 7));
        System.out.println("fromcoll=" + join(new HashSet<>(l4)));
        // 5: low-bit collisions: treeifyBin resize
        List<String> coll = new ArrayList<>();
        for (int i = 0; coll.size() < 11; i++) { String k = "k" + i; if ((spread(k.hashCode()) & 31) == 5) coll.add(k); }
        System.out.println("collkeys=" + join(coll));
        HashSet<String> s5 = new HashSet<>(8);
        StringBuilder steps = new StringBuilder();
        for (String k : coll) { s5.add(k); steps.append(join(s5)).append('|'); }
        System.out.println("treeify=" + steps);
        // 6: Long keys, HashMap copy
        HashMap<Long, String> m6 = new HashMap<>();
        for (long i = 1; i <= 40; i++) m6.put(i * 13, "v");
        for (long i = 1; i <= 40; i += 2) m6.remove(i * 13);
        m6.put(-5L, "v"); m6.put(1L << 40, "v"); m6.put(17L, "v");
        System.out.println("longmap=" + join(m6.keySet()));
        System.out.println("longcopy=" + join(new HashMap<>(m6).keySet()));
        // 7: string hashes
        for (String s : new String[]{"", "a", "zookeeper", "\u00e9t\u00e9", "\u65e5\u672c", "\ud83d\ude00x", "lock-0000000007"})
            System.out.println("hash=" + s.hashCode());
        // 8: remove-all then reuse keeps capacity
        HashSet<String> s8 = new HashSet<>(8);
        for (int i = 0; i < 50; i++) s8.add("r" + i);
        for (int i = 0; i < 50; i++) s8.remove("r" + i);
        for (int i = 60; i > 50; i--) s8.add("r" + i);
        System.out.println("reuse=" + join(s8));
    }
}
