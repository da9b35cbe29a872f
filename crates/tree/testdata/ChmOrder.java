import java.util.*;
import java.util.concurrent.*;

public class ChmOrder {
    static String join(Iterable<?> it) { StringBuilder sb = new StringBuilder(); for (Object o : it) { if (sb.length() > 0) sb.append(','); sb.append(o); } return sb.toString(); }
    public static void main(String[] a) {
        // session-like ids: server id 1 in the top byte, time-based middle, counter
        ConcurrentHashMap<Long, Boolean> s = new ConcurrentHashMap<>();
        long base = (1L << 56) | (0x18b4c2d3eL << 24);
        for (int i = 0; i < 20; i++) s.put(base + i * 7, true);
        for (int i = 0; i < 20; i += 3) s.remove(base + i * 7);
        s.put(base + 1000, true);
        System.out.println("sessions=" + join(s.keySet()));
        Set<String> c = Collections.newSetFromMap(new ConcurrentHashMap<>());
        for (int i = 0; i < 30; i++) c.add("/containers/c" + i);
        for (int i = 0; i < 30; i += 4) c.remove("/containers/c" + i);
        System.out.println("containers=" + join(c));
        System.out.println("copy=" + join(new HashSet<>(c)));
    }
}
