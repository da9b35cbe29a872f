//! Java's `java.util.HashMap` / `HashSet` iteration order, reproduced exactly.
//!
//! ZooKeeper hands several `HashSet`s straight to clients: `getChildren` copies a znode's
//! children set (`DataNode.children`, a `HashSet<String>(8)`), `getEphemerals` and the
//! closeSession txn copy a session's ephemerals set (`HashSet<String>()` cloned), and the
//! four-letter words iterate `HashMap<String, _>`s. Their order is a function of the keys'
//! `hashCode`s and of the set's history (initial capacity, resizes, insertion order within a
//! bucket), so this module models the table itself:
//!
//! * `String.hashCode` over UTF-16 code units (`s[0]*31^(n-1) + ...`, wrapping `int`),
//!   `Long.hashCode` (`(int)(v ^ (v >>> 32))`);
//! * the spread `h ^ (h >>> 16)` and bucket `hash & (capacity - 1)`;
//! * the table allocated lazily at the first insertion (`tableSizeFor(initialCapacity)`, or 16);
//! * a resize (capacity × 2) when the size exceeds the threshold (0.75 × capacity), and also
//!   when a bucket already holding 8 entries receives another while the capacity is below 64
//!   (`treeifyBin`'s "resize instead" branch); a resize splits every bucket into a low and a
//!   high list that keep their relative order;
//! * new entries appended at the tail of their bucket, re-putting an existing key leaving it
//!   in place, removal unlinking in place;
//! * iteration = buckets in index order, each bucket in list order;
//! * `HashMap.clone()` / `new HashMap(map)` (JDK 17's pre-sizing `(int)(size / 0.75f + 1.0f)`)
//!   and `new HashSet(collection)` (`max((int)(size / .75f) + 1, 16)`).
//!
//! Not modelled: treeified bins. Once a single bucket holds 8 or more entries *and* the
//! table has at least 64 buckets, Java turns the bucket into a red-black tree whose linked
//! order is no longer plain insertion order (new nodes go next to their tree parent and the
//! root moves to the front). That takes ≥ 8 colliding keys in one bucket of a large table,
//! which ordinary znode names do not produce; the map keeps working, only the order inside
//! such a bucket may differ from Java's. [`JavaHashMap::has_treeified_bins`] reports it.

use std::borrow::Borrow;

/// `HashMap.MAXIMUM_CAPACITY`.
const MAXIMUM_CAPACITY: u32 = 1 << 30;
/// `HashMap.DEFAULT_INITIAL_CAPACITY`.
pub const DEFAULT_INITIAL_CAPACITY: usize = 16;
const TREEIFY_THRESHOLD: usize = 8;
const MIN_TREEIFY_CAPACITY: usize = 64;
const NIL: u32 = u32::MAX;

/// Java's `String.hashCode()`: over UTF-16 code units, wrapping 32-bit arithmetic.
pub fn string_hash_code(s: &str) -> i32 {
    let mut h: i32 = 0;
    if s.is_ascii() {
        // ASCII bytes are their own UTF-16 code units.
        for &b in s.as_bytes() {
            h = h.wrapping_mul(31).wrapping_add(b as i32);
        }
        return h;
    }
    for u in s.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(u as i32);
    }
    h
}

/// Java's `Long.hashCode(v)`.
pub fn long_hash_code(v: i64) -> i32 {
    (v ^ ((v as u64) >> 32) as i64) as i32
}

/// `HashMap.hash`: the spread applied to every `hashCode`.
fn spread(h: i32) -> i32 {
    h ^ ((h as u32) >> 16) as i32
}

/// `HashMap.tableSizeFor`: the smallest power of two ≥ `cap` (1 for cap ≤ 1).
pub fn table_size_for(cap: i64) -> u32 {
    if cap <= 1 {
        return 1;
    }
    if cap >= MAXIMUM_CAPACITY as i64 {
        return MAXIMUM_CAPACITY;
    }
    let n = (cap - 1) as u32;
    1u32 << (32 - n.leading_zeros())
}

/// A key with a Java `hashCode()`.
pub trait JavaHash {
    fn java_hash(&self) -> i32;
}

impl JavaHash for str {
    fn java_hash(&self) -> i32 {
        string_hash_code(self)
    }
}
impl JavaHash for String {
    fn java_hash(&self) -> i32 {
        string_hash_code(self)
    }
}
impl JavaHash for Box<str> {
    fn java_hash(&self) -> i32 {
        string_hash_code(self)
    }
}
impl JavaHash for i64 {
    fn java_hash(&self) -> i32 {
        long_hash_code(*self)
    }
}
impl<T: JavaHash + ?Sized> JavaHash for &T {
    fn java_hash(&self) -> i32 {
        (**self).java_hash()
    }
}

#[derive(Debug, Clone)]
struct Entry<K, V> {
    /// The spread hash, as Java's `Node.hash`.
    hash: i32,
    next: u32,
    key: K,
    value: V,
}

/// A map whose iteration order is exactly `java.util.HashMap`'s (load factor 0.75) for the
/// same sequence of operations. Entries live densely in a vector; buckets are linked lists
/// threaded through it.
#[derive(Debug, Clone)]
pub struct JavaHashMap<K, V> {
    /// Bucket heads; empty while Java's `table` is still `null`.
    table: Box<[u32]>,
    entries: Vec<Entry<K, V>>,
    /// Java's `threshold`: before the table exists, the initial capacity (0 = default).
    threshold: u32,
    treeified: bool,
}

impl<K, V> Default for JavaHashMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> JavaHashMap<K, V> {
    /// `new HashMap<>()`: capacity 16 at the first insertion.
    pub fn new() -> Self {
        JavaHashMap { table: Box::new([]), entries: Vec::new(), threshold: 0, treeified: false }
    }

    /// `new HashMap<>(initialCapacity)`.
    pub fn with_capacity(initial_capacity: usize) -> Self {
        JavaHashMap { table: Box::new([]), entries: Vec::new(), threshold: table_size_for(initial_capacity as i64), treeified: false }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of buckets (0 before the first insertion).
    pub fn capacity(&self) -> usize {
        self.table.len()
    }

    /// Whether some bucket would have been turned into a tree by Java (order inside that
    /// bucket may then differ from Java's; see the module docs).
    pub fn has_treeified_bins(&self) -> bool {
        self.treeified
    }

    /// Entries in Java's iteration order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter { map: self, bucket: 0, cur: NIL }
    }

    /// Keys in Java's iteration order.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Values in Java's iteration order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Values, mutably, in storage order (not Java's order).
    pub fn values_mut_unordered(&mut self) -> impl Iterator<Item = &mut V> + '_ {
        self.entries.iter_mut().map(|e| &mut e.value)
    }

    fn bucket_of(&self, hash: i32) -> usize {
        (hash as u32 & (self.table.len() as u32 - 1)) as usize
    }

    /// `HashMap.resize()`.
    fn resize(&mut self) {
        let old_cap = self.table.len() as u32;
        let old_thr = self.threshold;
        let new_cap: u32;
        let mut new_thr: u32 = 0;
        if old_cap > 0 {
            if old_cap >= MAXIMUM_CAPACITY {
                self.threshold = i32::MAX as u32;
                return;
            }
            new_cap = old_cap << 1;
            if new_cap < MAXIMUM_CAPACITY && old_cap >= DEFAULT_INITIAL_CAPACITY as u32 {
                new_thr = old_thr << 1;
            }
        } else if old_thr > 0 {
            new_cap = old_thr;
        } else {
            new_cap = DEFAULT_INITIAL_CAPACITY as u32;
            new_thr = 12;
        }
        if new_thr == 0 {
            let ft = new_cap as f32 * 0.75f32;
            new_thr = if new_cap < MAXIMUM_CAPACITY && ft < MAXIMUM_CAPACITY as f32 { ft as u32 } else { i32::MAX as u32 };
        }
        self.threshold = new_thr;
        let old = std::mem::replace(&mut self.table, vec![NIL; new_cap as usize].into_boxed_slice());
        if old.is_empty() {
            return;
        }
        // Walking the old buckets in order and appending keeps each bucket's relative order:
        // a new bucket only receives entries from one old bucket (its lo or hi half).
        let mut tails = vec![NIL; new_cap as usize];
        let mask = new_cap - 1;
        for &head in old.iter() {
            let mut cur = head;
            while cur != NIL {
                let e = &mut self.entries[cur as usize];
                let next = e.next;
                e.next = NIL;
                let b = (e.hash as u32 & mask) as usize;
                if tails[b] == NIL {
                    self.table[b] = cur;
                } else {
                    self.entries[tails[b] as usize].next = cur;
                }
                tails[b] = cur;
                cur = next;
            }
        }
    }

    /// `putVal` with an already spread hash. Returns the old value when the key was present
    /// (it keeps its position).
    fn put_spread(&mut self, hash: i32, key: K, value: V) -> Option<V>
    where
        K: Eq,
    {
        if self.table.is_empty() {
            self.resize();
        }
        let b = self.bucket_of(hash);
        let new_idx = self.entries.len() as u32;
        let head = self.table[b];
        if head == NIL {
            self.table[b] = new_idx;
            self.entries.push(Entry { hash, next: NIL, key, value });
        } else {
            let mut p = head;
            let mut bin_count = 0usize;
            loop {
                let e = &mut self.entries[p as usize];
                if e.hash == hash && e.key == key {
                    return Some(std::mem::replace(&mut e.value, value));
                }
                if e.next == NIL {
                    e.next = new_idx;
                    self.entries.push(Entry { hash, next: NIL, key, value });
                    if bin_count >= TREEIFY_THRESHOLD - 1 {
                        // treeifyBin: a small table is resized instead.
                        if self.table.len() < MIN_TREEIFY_CAPACITY {
                            self.resize();
                        } else {
                            self.treeified = true;
                        }
                    }
                    break;
                }
                p = e.next;
                bin_count += 1;
            }
        }
        if self.entries.len() as u64 > self.threshold as u64 {
            self.resize();
        }
        None
    }

    /// Inserts `key` whose Java `hashCode()` is `java_hash`.
    pub fn insert_with_hash(&mut self, java_hash: i32, key: K, value: V) -> Option<V>
    where
        K: Eq,
    {
        self.put_spread(spread(java_hash), key, value)
    }

    fn find<Q>(&self, hash: i32, key: &Q) -> Option<(u32, u32, usize)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.table.is_empty() {
            return None;
        }
        let b = self.bucket_of(hash);
        let mut prev = NIL;
        let mut cur = self.table[b];
        while cur != NIL {
            let e = &self.entries[cur as usize];
            if e.hash == hash && e.key.borrow() == key {
                return Some((cur, prev, b));
            }
            prev = cur;
            cur = e.next;
        }
        None
    }

    pub fn get_with_hash<Q>(&self, java_hash: i32, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.find(spread(java_hash), key).map(|(i, _, _)| &self.entries[i as usize].value)
    }

    /// The first key (in bucket order) whose Java `hashCode()` is `java_hash` and that
    /// satisfies `is_it`: a lookup by something other than the key's own equality.
    pub fn find_key_by(&self, java_hash: i32, mut is_it: impl FnMut(&K) -> bool) -> Option<&K> {
        if self.table.is_empty() {
            return None;
        }
        let hash = spread(java_hash);
        let mut cur = self.table[self.bucket_of(hash)];
        while cur != NIL {
            let e = &self.entries[cur as usize];
            if e.hash == hash && is_it(&e.key) {
                return Some(&e.key);
            }
            cur = e.next;
        }
        None
    }

    pub fn get_mut_with_hash<Q>(&mut self, java_hash: i32, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.find(spread(java_hash), key).map(|(i, _, _)| &mut self.entries[i as usize].value)
    }

    /// Removes `key` whose Java `hashCode()` is `java_hash`.
    pub fn remove_with_hash<Q>(&mut self, java_hash: i32, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let (idx, prev, b) = self.find(spread(java_hash), key)?;
        let next = self.entries[idx as usize].next;
        if prev == NIL {
            self.table[b] = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        // Keep the entry vector dense: the last entry moves into the hole; repoint its referrer.
        let last = (self.entries.len() - 1) as u32;
        if idx != last {
            let lb = self.bucket_of(self.entries[last as usize].hash);
            if self.table[lb] == last {
                self.table[lb] = idx;
            } else {
                let mut p = self.table[lb];
                while self.entries[p as usize].next != last {
                    p = self.entries[p as usize].next;
                }
                self.entries[p as usize].next = idx;
            }
        }
        let e = self.entries.swap_remove(idx as usize);
        Some((e.key, e.value))
    }

    /// `HashMap.clear()`: removes everything but keeps the table's capacity.
    pub fn clear(&mut self) {
        self.entries.clear();
        for h in self.table.iter_mut() {
            *h = NIL;
        }
    }

    /// Java's pre-sizing for `putMapEntries` into an empty map (JDK 17):
    /// `tableSizeFor((int)((float) size / 0.75f + 1.0f))`, or the default when empty.
    fn presized_for_copy(size: usize) -> Self {
        let mut m = Self::new();
        if size > 0 {
            let ft = size as f32 / 0.75f32 + 1.0f32;
            let t = if ft < MAXIMUM_CAPACITY as f32 { ft as i64 } else { MAXIMUM_CAPACITY as i64 };
            if t > 0 {
                m.threshold = table_size_for(t);
            }
        }
        m
    }

    /// `HashMap.clone()` / `new HashMap<>(map)`: a fresh table sized for the current size,
    /// filled in this map's iteration order.
    pub fn java_clone(&self) -> Self
    where
        K: Clone + Eq,
        V: Clone,
    {
        let mut m = Self::presized_for_copy(self.len());
        for e in self.iter_entries() {
            m.put_spread(e.hash, e.key.clone(), e.value.clone());
        }
        m
    }

    fn iter_entries(&self) -> impl Iterator<Item = &Entry<K, V>> + '_ {
        let mut bucket = 0usize;
        let mut cur = NIL;
        std::iter::from_fn(move || loop {
            if cur != NIL {
                let e = &self.entries[cur as usize];
                cur = e.next;
                return Some(e);
            }
            if bucket >= self.table.len() {
                return None;
            }
            cur = self.table[bucket];
            bucket += 1;
        })
    }

    /// `size()` bytes of heap this map holds (approximate).
    pub fn heap_bytes(&self) -> usize {
        self.table.len() * 4 + self.entries.capacity() * std::mem::size_of::<Entry<K, V>>()
    }
}

impl<K: JavaHash + Eq, V> JavaHashMap<K, V> {
    /// `put(key, value)`.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let h = key.java_hash();
        self.insert_with_hash(h, key, value)
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: JavaHash + Eq + ?Sized,
    {
        self.get_with_hash(key.java_hash(), key)
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: JavaHash + Eq + ?Sized,
    {
        self.get_mut_with_hash(key.java_hash(), key)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: JavaHash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: JavaHash + Eq + ?Sized,
    {
        self.remove_with_hash(key.java_hash(), key).map(|(_, v)| v)
    }
}

/// Iterator over a [`JavaHashMap`] in Java's order.
pub struct Iter<'a, K, V> {
    map: &'a JavaHashMap<K, V>,
    bucket: usize,
    cur: u32,
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.cur != NIL {
                let e = &self.map.entries[self.cur as usize];
                self.cur = e.next;
                return Some((&e.key, &e.value));
            }
            if self.bucket >= self.map.table.len() {
                return None;
            }
            self.cur = self.map.table[self.bucket];
            self.bucket += 1;
        }
    }
}

/// `java.util.HashSet`: a [`JavaHashMap`] with unit values.
#[derive(Debug, Clone, Default)]
pub struct JavaHashSet<K> {
    map: JavaHashMap<K, ()>,
}

impl<K> JavaHashSet<K> {
    /// `new HashSet<>()`.
    pub fn new() -> Self {
        JavaHashSet { map: JavaHashMap::new() }
    }

    /// `new HashSet<>(initialCapacity)`.
    pub fn with_capacity(initial_capacity: usize) -> Self {
        JavaHashSet { map: JavaHashMap::with_capacity(initial_capacity) }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.map.capacity()
    }

    pub fn has_treeified_bins(&self) -> bool {
        self.map.has_treeified_bins()
    }

    /// Elements in Java's iteration order.
    pub fn iter(&self) -> impl Iterator<Item = &K> + '_ {
        self.map.keys()
    }

    pub fn insert_with_hash(&mut self, java_hash: i32, key: K) -> bool
    where
        K: Eq,
    {
        self.map.insert_with_hash(java_hash, key, ()).is_none()
    }

    pub fn remove_with_hash<Q>(&mut self, java_hash: i32, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.map.remove_with_hash(java_hash, key).is_some()
    }

    pub fn contains_with_hash<Q>(&self, java_hash: i32, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.map.get_with_hash(java_hash, key).is_some()
    }

    /// The element whose Java `hashCode()` is `java_hash` and that satisfies `is_it`.
    pub fn find_by(&self, java_hash: i32, is_it: impl FnMut(&K) -> bool) -> Option<&K> {
        self.map.find_key_by(java_hash, is_it)
    }

    /// `HashSet.clone()`.
    pub fn java_clone(&self) -> Self
    where
        K: Clone + Eq,
    {
        JavaHashSet { map: self.map.java_clone() }
    }

    pub fn clear(&mut self) {
        self.map.clear()
    }

    pub fn heap_bytes(&self) -> usize {
        self.map.heap_bytes()
    }
}

impl<K: JavaHash + Eq> JavaHashSet<K> {
    /// `new HashSet<>(collection)`: capacity `max((int)(n / .75f) + 1, 16)`, then `add` in
    /// the collection's order.
    pub fn from_collection<I: IntoIterator<Item = K>>(items: I) -> Self
    where
        I::IntoIter: ExactSizeIterator,
    {
        let it = items.into_iter();
        let n = it.len();
        let cap = (((n as f32) / 0.75f32) as i64 + 1).max(DEFAULT_INITIAL_CAPACITY as i64);
        let mut s = JavaHashSet { map: JavaHashMap { threshold: table_size_for(cap), ..JavaHashMap::new() } };
        for k in it {
            s.insert(k);
        }
        s
    }

    /// `add(key)`: true when it was not present.
    pub fn insert(&mut self, key: K) -> bool {
        self.map.insert(key, ()).is_none()
    }

    /// `remove(key)`: true when it was present.
    pub fn remove<Q>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: JavaHash + Eq + ?Sized,
    {
        self.map.remove(key).is_some()
    }

    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: JavaHash + Eq + ?Sized,
    {
        self.map.contains_key(key)
    }
}

impl<K: JavaHash + Eq> FromIterator<K> for JavaHashSet<K> {
    /// Successive `add`s into `new HashSet<>()`.
    fn from_iter<I: IntoIterator<Item = K>>(iter: I) -> Self {
        let mut s = JavaHashSet::new();
        for k in iter {
            s.insert(k);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    //! Orders checked against real Java 17: `testdata/JavaOrder.java` printed
    //! `testdata/java_order_expected.txt` (`javac JavaOrder.java && java JavaOrder`).
    use super::*;

    const EXPECTED: &str = include_str!("../testdata/java_order_expected.txt");

    fn expected(key: &str) -> Vec<&'static str> {
        EXPECTED.lines().filter_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('='))).collect()
    }

    fn join<'a, I: IntoIterator<Item = &'a T>, T: std::fmt::Display + 'a + ?Sized>(it: I) -> String {
        it.into_iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")
    }

    fn spread_hash(s: &str) -> i32 {
        spread(string_hash_code(s))
    }

    #[test]
    fn grow_from_capacity_8() {
        let mut s = JavaHashSet::with_capacity(8);
        for i in 0..100 {
            s.insert(format!("n{i}"));
        }
        assert_eq!(join(s.iter()), expected("grow")[0]);
    }

    #[test]
    fn sequential_names_with_removals() {
        let name = |i: i32| format!("lock-{i:010}");
        let mut s = JavaHashSet::with_capacity(8);
        for i in 0..40 {
            s.insert(name(i));
        }
        for i in (0..40).step_by(3) {
            assert!(s.remove(name(i).as_str()));
        }
        for i in 0..10 {
            s.insert(format!("x{i}"));
        }
        s.insert(name(3));
        assert_eq!(join(s.iter()), expected("seq")[0]);
    }

    #[test]
    fn clone_resizes_for_current_size() {
        let mut s: JavaHashSet<String> = JavaHashSet::new();
        for i in 0..30 {
            s.insert(format!("/app/e{i}"));
        }
        for i in 0..25 {
            s.remove(format!("/app/e{i}").as_str());
        }
        assert_eq!(join(s.iter()), expected("beforeclone")[0]);
        assert_eq!(join(s.java_clone().iter()), expected("clone")[0]);
        let empty: JavaHashSet<String> = JavaHashSet::new();
        let mut c = empty.java_clone();
        for i in 0..20 {
            c.insert(format!("/q{i}"));
        }
        assert_eq!(join(c.iter()), expected("emptyclone")[0]);
    }

    #[test]
    fn from_collection() {
        let l: Vec<String> = (0..30).map(|i| format!("/c/{}", i * 7)).collect();
        let s = JavaHashSet::from_collection(l);
        assert_eq!(join(s.iter()), expected("fromcoll")[0]);
    }

    #[test]
    fn crowded_bucket_resizes_instead_of_treeifying() {
        let mut keys = Vec::new();
        let mut i = 0;
        while keys.len() < 11 {
            let k = format!("k{i}");
            if spread_hash(&k) & 31 == 5 {
                keys.push(k);
            }
            i += 1;
        }
        assert_eq!(join(keys.iter()), expected("collkeys")[0]);
        let mut s = JavaHashSet::with_capacity(8);
        let mut steps = String::new();
        for k in &keys {
            s.insert(k.clone());
            steps.push_str(&join(s.iter()));
            steps.push('|');
        }
        assert_eq!(steps, expected("treeify")[0]);
        assert_eq!(s.capacity(), 64);
        assert!(!s.has_treeified_bins());
    }

    #[test]
    fn long_keys_and_map_copy() {
        let mut m: JavaHashMap<i64, &str> = JavaHashMap::new();
        for i in 1..=40i64 {
            m.insert(i * 13, "v");
        }
        for i in (1..=40i64).step_by(2) {
            m.remove(&(i * 13));
        }
        m.insert(-5, "v");
        m.insert(1 << 40, "v");
        m.insert(17, "v");
        assert_eq!(join(m.keys()), expected("longmap")[0]);
        assert_eq!(join(m.java_clone().keys()), expected("longcopy")[0]);
    }

    #[test]
    fn string_hash_codes() {
        let strs = ["", "a", "zookeeper", "\u{e9}t\u{e9}", "\u{65e5}\u{672c}", "\u{1f600}x", "lock-0000000007"];
        let got: Vec<String> = strs.iter().map(|s| string_hash_code(s).to_string()).collect();
        assert_eq!(got, expected("hash"));
    }

    #[test]
    fn emptied_set_keeps_its_capacity() {
        let mut s = JavaHashSet::with_capacity(8);
        for i in 0..50 {
            s.insert(format!("r{i}"));
        }
        for i in 0..50 {
            s.remove(format!("r{i}").as_str());
        }
        for i in (51..=60).rev() {
            s.insert(format!("r{i}"));
        }
        assert_eq!(join(s.iter()), expected("reuse")[0]);
    }

    #[test]
    fn replace_keeps_position_and_get_works() {
        let mut m: JavaHashMap<Box<str>, i32> = JavaHashMap::new();
        for i in 0..20 {
            m.insert(format!("k{i}").into(), i);
        }
        let before: Vec<String> = m.keys().map(|k| k.to_string()).collect();
        assert_eq!(m.insert("k3".into(), 99), Some(3));
        let after: Vec<String> = m.keys().map(|k| k.to_string()).collect();
        assert_eq!(before, after);
        assert_eq!(m.get("k3"), Some(&99));
        assert_eq!(m.remove("k3"), Some(99));
        assert_eq!(m.get("k3"), None);
        assert_eq!(m.len(), 19);
        assert_eq!(table_size_for(0), 1);
        assert_eq!(table_size_for(8), 8);
        assert_eq!(table_size_for(9), 16);
    }
}

/// The iteration order of a `java.util.concurrent.ConcurrentHashMap` (or a key set made from
/// one), as a single thread sees it: a table that starts at 16 bins and doubles once the
/// count reaches `sizeCtl` (0.75 × capacity; it never shrinks), new keys appended to their
/// bin, removal unlinking in place, and ConcurrentHashMap's own transfer on resize — which
/// keeps the bin's tail run (`lastRun`) in order but prepends the nodes before it, reversing
/// them. Iteration = bins in index order. Not modelled: treeified bins and the extra
/// pre-sizing a bin of 8+ keys triggers in a small table.
#[derive(Debug, Clone)]
pub struct ConcurrentOrder<K> {
    /// Bins of (spread hash, key); empty until the first insertion.
    bins: Vec<Vec<(i32, K)>>,
    count: usize,
}

impl<K> Default for ConcurrentOrder<K> {
    fn default() -> Self {
        ConcurrentOrder { bins: Vec::new(), count: 0 }
    }
}

/// ConcurrentHashMap's `spread`: `(h ^ (h >>> 16)) & HASH_BITS`.
fn chm_spread(h: i32) -> i32 {
    spread(h) & 0x7fff_ffff
}

impl<K: Eq + JavaHash> ConcurrentOrder<K> {
    fn bin_of(&self, hash: i32) -> usize {
        (hash as u32 as usize) & (self.bins.len() - 1)
    }

    /// `add`/`put` of a new key (an existing key keeps its place). True when new.
    pub fn insert(&mut self, key: K) -> bool {
        let h = chm_spread(key.java_hash());
        if self.bins.is_empty() {
            self.bins = (0..DEFAULT_INITIAL_CAPACITY).map(|_| Vec::new()).collect();
        }
        let b = self.bin_of(h);
        if self.bins[b].iter().any(|(eh, k)| *eh == h && *k == key) {
            return false;
        }
        self.bins[b].push((h, key));
        self.count += 1;
        // addCount: transfer once the count reaches sizeCtl (n - n/4).
        let n = self.bins.len();
        if self.count >= n - (n >> 2) {
            self.transfer();
        }
        true
    }

    /// `transfer`: every bin splits into a low and a high bin.
    fn transfer(&mut self) {
        let n = self.bins.len();
        let old = std::mem::take(&mut self.bins);
        self.bins = (0..2 * n).map(|_| Vec::new()).collect();
        for (i, bin) in old.into_iter().enumerate() {
            if bin.is_empty() {
                continue;
            }
            let bit = |h: i32| (h as u32 as usize) & n;
            // lastRun: the start of the longest tail whose nodes all go the same way.
            let mut last_run = 0;
            let mut run_bit = bit(bin[0].0);
            for (j, (h, _)) in bin.iter().enumerate().skip(1) {
                if bit(*h) != run_bit {
                    run_bit = bit(*h);
                    last_run = j;
                }
            }
            let mut lo: Vec<(i32, K)> = Vec::new();
            let mut hi: Vec<(i32, K)> = Vec::new();
            let mut items = bin.into_iter();
            let head: Vec<(i32, K)> = items.by_ref().take(last_run).collect();
            let tail: Vec<(i32, K)> = items.collect();
            // The nodes before lastRun are prepended one by one: reversed.
            for e in head.into_iter().rev() {
                if bit(e.0) == 0 {
                    lo.push(e);
                } else {
                    hi.push(e);
                }
            }
            if run_bit == 0 {
                lo.extend(tail);
            } else {
                hi.extend(tail);
            }
            self.bins[i] = lo;
            self.bins[i + n] = hi;
        }
    }

    pub fn remove<Q>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + JavaHash + ?Sized,
    {
        if self.bins.is_empty() {
            return false;
        }
        let h = chm_spread(key.java_hash());
        let b = self.bin_of(h);
        match self.bins[b].iter().position(|(eh, k)| *eh == h && k.borrow() == key) {
            Some(i) => {
                self.bins[b].remove(i);
                self.count -= 1;
                true
            }
            None => false,
        }
    }

    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + JavaHash + ?Sized,
    {
        if self.bins.is_empty() {
            return false;
        }
        let h = chm_spread(key.java_hash());
        self.bins[self.bin_of(h)].iter().any(|(eh, k)| *eh == h && k.borrow() == key)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The number of bins (0 before the first insertion).
    pub fn capacity(&self) -> usize {
        self.bins.len()
    }

    /// Keys in ConcurrentHashMap iteration order.
    pub fn ordered(&self) -> Vec<&K> {
        self.bins.iter().flat_map(|b| b.iter().map(|(_, k)| k)).collect()
    }
}

#[cfg(test)]
mod chm_tests {
    use super::*;

    #[test]
    fn concurrent_order_by_bucket_then_insertion() {
        let mut c: ConcurrentOrder<i64> = ConcurrentOrder::default();
        for k in [33i64, 1, 17, 2] {
            c.insert(k);
        }
        // Buckets mod 16: 33→1, 1→1, 17→1, 2→2.
        assert_eq!(c.ordered(), vec![&33, &1, &17, &2]);
        for k in 100..110 {
            c.insert(k);
        }
        assert_eq!(c.capacity(), 32);
        c.remove(&100);
        assert_eq!(c.len(), 13);
    }
}

#[cfg(test)]
mod chm_java_tests {
    //! Against real Java 17: testdata/ChmOrder.java printed testdata/chm_order_expected.txt.
    use super::*;

    const EXPECTED: &str = include_str!("../testdata/chm_order_expected.txt");

    fn expected(key: &str) -> &'static str {
        EXPECTED.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('='))).unwrap()
    }

    #[test]
    fn sessions_and_container_sets() {
        let mut s: ConcurrentOrder<i64> = ConcurrentOrder::default();
        let base = (1i64 << 56) | (0x18b4c2d3e_i64 << 24);
        for i in 0..20 {
            s.insert(base + i * 7);
        }
        for i in (0..20).step_by(3) {
            s.remove(&(base + i * 7));
        }
        s.insert(base + 1000);
        let got: Vec<String> = s.ordered().iter().map(|k| k.to_string()).collect();
        assert_eq!(got.join(","), expected("sessions"));

        let mut c: ConcurrentOrder<Box<str>> = ConcurrentOrder::default();
        for i in 0..30 {
            c.insert(format!("/containers/c{i}").into());
        }
        for i in (0..30).step_by(4) {
            c.remove(format!("/containers/c{i}").as_str());
        }
        let got: Vec<&str> = c.ordered().iter().map(|k| &***k).collect();
        assert_eq!(got.join(","), expected("containers"));
        let copy = JavaHashSet::from_collection(c.ordered());
        let got: Vec<&str> = copy.iter().map(|k| &***k).collect();
        assert_eq!(got.join(","), expected("copy"));
    }
}
