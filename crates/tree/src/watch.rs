//! ZooKeeper's `WatchManager`: one table of watches (the tree owns two, `dataWatches` and
//! `childWatches`), the watch modes of `WatcherMode`, and `triggerWatch`'s rules.
//!
//! A watch is a (path, watcher, mode) triple; the watcher is an opaque [`WatcherId`] (the
//! server uses its connection id, as ZooKeeper uses the `ServerCnxn`).
//!
//! `triggerWatch(path, type)` walks from `path` up to `/` (only `path` itself while no
//! recursive watch exists). At `path` itself every watcher fires; one-time (standard)
//! watches are removed, persistent ones stay. At an ancestor only persistent-recursive
//! watches fire, and never for `NodeChildrenChanged`. Each watcher gets the event once per
//! trigger however many of its watches match, and a trigger can be told to skip the
//! watchers an earlier trigger already served (NodeDeleted is sent once to a watcher that
//! had both a data and a child watch).
//!
//! ZooKeeper 3.8 and 3.9 differ here, and [`Flavor`] picks which one to reproduce:
//!
//! * 3.8 keeps one mode per (watcher, path): setting a one-time watch where the same
//!   connection has a persistent one replaces it (and so drops the persistent watch when it
//!   fires); `containsWatcher` answers whether *any* watcher watches the path (checkWatches
//!   quirk); `removeWatcher(path, watcher)` removes the entry whatever its mode.
//! * 3.9 keeps a set of modes per (watcher, path) (`WatchStats`), fires a standard watch by
//!   removing only that mode, and lets checkWatches/removeWatches name a mode.
//!
//! Orders: the path table iterates like Java's `HashMap<String, _>` (`wchp`), each watcher's
//! path set like Java's `HashSet<String>`/`HashMap<String, _>` (`wchc`). Java orders watchers
//! by identity hash (unpredictable); here watchers come in first-registration order per path,
//! by id in per-watcher listings, and deliveries of one trigger in first-matched order (the
//! order between different connections is not observable by any one client).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher};

use rzk_proto::EventType;

use crate::java::{string_hash_code, JavaHashMap};

type DetHashMap<K, V> = HashMap<K, V, BuildHasherDefault<DefaultHasher>>;

/// An opaque watcher identity (the server's connection id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct WatcherId(pub u64);

/// Which ZooKeeper release's watch-manager behaviour to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Flavor {
    /// ZooKeeper 3.8.x.
    #[default]
    V3_8,
    /// ZooKeeper 3.9.x.
    V3_9,
}

/// `WatcherMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherMode {
    /// A one-time watch.
    Standard,
    Persistent,
    PersistentRecursive,
}

impl WatcherMode {
    /// The `WatchStats` bit of the mode.
    pub(crate) fn bit(self) -> u8 {
        match self {
            WatcherMode::Standard => 1,
            WatcherMode::Persistent => 2,
            WatcherMode::PersistentRecursive => 4,
        }
    }
    pub fn is_persistent(self) -> bool {
        self != WatcherMode::Standard
    }
    pub fn is_recursive(self) -> bool {
        self == WatcherMode::PersistentRecursive
    }
    fn from_single_bit(b: u8) -> WatcherMode {
        match b {
            4 => WatcherMode::PersistentRecursive,
            2 => WatcherMode::Persistent,
            _ => WatcherMode::Standard,
        }
    }
}

const STANDARD: u8 = 1;
const RECURSIVE: u8 = 4;

/// `WatchesSummary`: what `wchs` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchesSummary {
    /// Watchers with an entry (ZooKeeper keeps an entry after its last one-time watch fired).
    pub connections: usize,
    /// Watched paths.
    pub paths: usize,
    /// Watches, counted per watcher.
    pub total: usize,
}

/// One watch table.
#[derive(Debug, Clone)]
pub struct WatchManager {
    flavor: Flavor,
    /// path → watchers (`watchTable`).
    table: JavaHashMap<Box<str>, Vec<WatcherId>>,
    /// watcher → path → mode bits (`watch2Paths`; in 3.8 also the `WatcherModeManager`,
    /// holding exactly one mode bit).
    by_watcher: DetHashMap<WatcherId, JavaHashMap<Box<str>, u8>>,
    /// (watcher, path) entries with the recursive mode.
    recursive_qty: usize,
}

/// Paths from `path` up to `/` (`PathParentIterator.forAll`), or just `path`.
fn parents(path: &str, all: bool) -> impl Iterator<Item = (&str, bool)> {
    let mut cur = Some(path);
    let mut level = 0usize;
    std::iter::from_fn(move || {
        let p = cur?;
        if p.is_empty() || (!all && level > 0) {
            return None;
        }
        cur = if p == "/" {
            None
        } else {
            match p.rfind('/') {
                Some(0) => Some("/"),
                Some(i) => Some(&p[..i]),
                None => None,
            }
        };
        let at_parent = level > 0;
        level += 1;
        Some((p, at_parent))
    })
}

impl WatchManager {
    pub fn new(flavor: Flavor) -> WatchManager {
        WatchManager { flavor, table: JavaHashMap::new(), by_watcher: DetHashMap::default(), recursive_qty: 0 }
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// `size()`: the number of (path, watcher) pairs in the path table.
    pub fn size(&self) -> usize {
        self.table.values().map(|v| v.len()).sum()
    }

    /// `addWatch(path, watcher, mode)`; true when something changed.
    pub fn add_watch(&mut self, path: &str, watcher: WatcherId, mode: WatcherMode) -> bool {
        let h = string_hash_code(path);
        let paths = self.by_watcher.entry(watcher).or_default();
        let old = paths.get_with_hash(h, path).copied();
        // The watcher is in the path's list exactly when the path is in its own set: that
        // answers "already there?" without scanning the list (quadratic for a path with
        // 100,000 watchers).
        match self.table.get_mut_with_hash(h, path) {
            Some(list) => {
                if old.is_none() {
                    list.push(watcher);
                }
            }
            None => {
                debug_assert!(old.is_none(), "the two watch tables disagree on {path}");
                self.table.insert_with_hash(h, path.into(), vec![watcher]);
            }
        }
        match self.flavor {
            Flavor::V3_8 => {
                let was_recursive = old == Some(RECURSIVE);
                if paths.insert_with_hash(h, path.into(), mode.bit()).is_some() && old == Some(mode.bit()) {
                    return false;
                }
                match (was_recursive, mode.is_recursive()) {
                    (false, true) => self.recursive_qty += 1,
                    (true, false) => self.recursive_qty -= 1,
                    _ => {}
                }
                old.is_none()
            }
            Flavor::V3_9 => {
                let stats = old.unwrap_or(0);
                let new = stats | mode.bit();
                if new == stats {
                    return false;
                }
                paths.insert_with_hash(h, path.into(), new);
                if mode.is_recursive() {
                    self.recursive_qty += 1;
                }
                true
            }
        }
    }

    /// `removeWatcher(watcher)`: the connection is gone.
    pub fn remove_watcher(&mut self, watcher: WatcherId) {
        let Some(paths) = self.by_watcher.remove(&watcher) else { return };
        for (p, &bits) in paths.iter() {
            let h = string_hash_code(p);
            if let Some(list) = self.table.get_mut_with_hash(h, &**p) {
                list.retain(|w| *w != watcher);
                if list.is_empty() {
                    self.table.remove_with_hash(h, &**p);
                }
            }
            if bits & RECURSIVE != 0 {
                self.recursive_qty -= 1;
            }
        }
    }

    /// `triggerWatch(path, type, suppress)`: appends `(watcher, type)` for every watcher to
    /// notify to `out` (skipping those in `suppress`) and returns every watcher that matched,
    /// suppressed or not (ZooKeeper's `WatcherOrBitSet`).
    pub fn trigger(&mut self, path: &str, event: EventType, suppress: Option<&[WatcherId]>, out: &mut Vec<WatcherId>) -> Vec<WatcherId> {
        let mut matched: Vec<WatcherId> = Vec::new();
        let walk_all = self.recursive_qty > 0;
        // Linear in the watchers, whatever their number (a fan-out to 100,000 sessions was
        // quadratic: a `contains` per match and a `Vec::remove` per fired watch). A list
        // holds each watcher once (add_watch), so only a walk over several paths can match
        // one twice: then a set says which have matched.
        let mut seen: Option<std::collections::HashSet<WatcherId>> = walk_all.then(Default::default);
        let mut first_match = |w: WatcherId, matched: &mut Vec<WatcherId>| {
            if seen.as_mut().is_none_or(|s| s.insert(w)) {
                matched.push(w);
            }
        };
        let flavor = self.flavor;
        let WatchManager { table, by_watcher, .. } = self;
        for (local, at_parent) in parents(path, walk_all) {
            let h = string_hash_code(local);
            let Some(list) = table.get_mut_with_hash(h, local) else { continue };
            list.retain(|&w| match flavor {
                Flavor::V3_8 => {
                    let bits = by_watcher.get(&w).and_then(|m| m.get_with_hash(h, local)).copied().unwrap_or(STANDARD);
                    let mode = WatcherMode::from_single_bit(bits);
                    if mode.is_recursive() {
                        if event != EventType::NodeChildrenChanged {
                            first_match(w, &mut matched);
                        }
                        true
                    } else if !at_parent {
                        first_match(w, &mut matched);
                        if !mode.is_persistent() {
                            if let Some(m) = by_watcher.get_mut(&w) {
                                m.remove_with_hash(h, local);
                            }
                            return false;
                        }
                        true
                    } else {
                        true
                    }
                }
                Flavor::V3_9 => {
                    let Some(paths) = by_watcher.get_mut(&w) else { return true };
                    let Some(&stats) = paths.get_with_hash(h, local) else { return true };
                    if !at_parent {
                        first_match(w, &mut matched);
                        let new = stats & !STANDARD;
                        if new == 0 {
                            paths.remove_with_hash(h, local);
                            return false;
                        } else if new != stats {
                            paths.insert_with_hash(h, local.into(), new);
                        }
                    } else if stats & RECURSIVE != 0 {
                        first_match(w, &mut matched);
                    }
                    true
                }
            });
            if list.is_empty() {
                table.remove_with_hash(h, local);
            }
        }
        // `suppress` (the watchers an earlier trigger served) as a set once it is large.
        let suppressed: Option<std::collections::HashSet<WatcherId>> =
            suppress.filter(|s| s.len() > 16).map(|s| s.iter().copied().collect());
        for w in &matched {
            let skip = match (&suppressed, suppress) {
                (Some(set), _) => set.contains(w),
                (None, Some(s)) => s.contains(w),
                (None, None) => false,
            };
            if !skip {
                out.push(*w);
            }
        }
        matched
    }

    /// `containsWatcher(path, watcher, mode)`; `mode` None = any mode. In 3.8 only the
    /// two-argument form exists and it reports whether the path has any watcher at all.
    pub fn contains_watcher(&self, path: &str, watcher: WatcherId, mode: Option<WatcherMode>) -> bool {
        let h = string_hash_code(path);
        match self.flavor {
            Flavor::V3_8 => self.table.get_with_hash(h, path).is_some(),
            Flavor::V3_9 => {
                let Some(paths) = self.by_watcher.get(&watcher) else { return false };
                match paths.get_with_hash(h, path) {
                    None => false,
                    Some(&stats) => match mode {
                        None => true,
                        Some(m) => stats & m.bit() != 0,
                    },
                }
            }
        }
    }

    /// `removeWatcher(path, watcher, mode)`; `mode` None = every mode. In 3.8 the mode is
    /// ignored: the (path, watcher) entry goes whatever its mode.
    pub fn remove_watch(&mut self, path: &str, watcher: WatcherId, mode: Option<WatcherMode>) -> bool {
        let h = string_hash_code(path);
        match self.flavor {
            Flavor::V3_8 => {
                let Some(paths) = self.by_watcher.get_mut(&watcher) else { return false };
                let Some((_, bits)) = paths.remove_with_hash(h, path) else { return false };
                let Some(list) = self.table.get_mut_with_hash(h, path) else { return false };
                let Some(pos) = list.iter().position(|w| *w == watcher) else { return false };
                list.remove(pos);
                if list.is_empty() {
                    self.table.remove_with_hash(h, path);
                }
                if bits & RECURSIVE != 0 {
                    self.recursive_qty -= 1;
                }
                true
            }
            Flavor::V3_9 => {
                if !self.by_watcher.contains_key(&watcher) || self.table.get_with_hash(h, path).is_none() {
                    return false;
                }
                let old = self.by_watcher.get(&watcher).and_then(|p| p.get_with_hash(h, path)).copied().unwrap_or(0);
                let new = match mode {
                    Some(m) => old & !m.bit(),
                    None => 0,
                };
                if new != 0 {
                    if new != old {
                        if let Some(p) = self.by_watcher.get_mut(&watcher) {
                            p.insert_with_hash(h, path.into(), new);
                        }
                    }
                } else if old != 0 {
                    self.unwatch(h, path, watcher);
                }
                if old & RECURSIVE != 0 && new & RECURSIVE == 0 {
                    self.recursive_qty -= 1;
                }
                old != new
            }
        }
    }

    /// 3.9's `removeWatcher(path, watcher, mode)` for its persistent and persistent-recursive
    /// removal, in either flavor: a 3.8 entry holds one mode, so there the entry goes when
    /// its mode is `mode` (with 3.8's bookkeeping), in 3.9 `mode` is taken off the entry.
    pub fn remove_watch_mode(&mut self, path: &str, watcher: WatcherId, mode: WatcherMode) -> bool {
        match self.flavor {
            Flavor::V3_8 => self.contains_watch_mode(path, watcher, mode) && self.remove_watch(path, watcher, None),
            Flavor::V3_9 => self.remove_watch(path, watcher, Some(mode)),
        }
    }

    /// 3.9's `containsWatcher(path, watcher, mode)`, in either flavor: the watcher's entry
    /// for `path` holds `mode`.
    pub fn contains_watch_mode(&self, path: &str, watcher: WatcherId, mode: WatcherMode) -> bool {
        let h = string_hash_code(path);
        let Some(paths) = self.by_watcher.get(&watcher) else { return false };
        paths.get_with_hash(h, path).is_some_and(|stats| stats & mode.bit() != 0)
    }

    /// 3.9's `unwatch`: drops the (path, watcher) entry from both maps.
    fn unwatch(&mut self, h: i32, path: &str, watcher: WatcherId) {
        if let Some(paths) = self.by_watcher.get_mut(&watcher) {
            paths.remove_with_hash(h, path);
            if paths.is_empty() {
                self.by_watcher.remove(&watcher);
            }
        }
        if let Some(list) = self.table.get_mut_with_hash(h, path) {
            list.retain(|w| *w != watcher);
            if list.is_empty() {
                self.table.remove_with_hash(h, path);
            }
        }
    }

    /// `getWatchesSummary()`.
    pub fn summary(&self) -> WatchesSummary {
        WatchesSummary {
            connections: self.by_watcher.len(),
            paths: self.table.len(),
            total: self.by_watcher.values().map(|p| p.len()).sum(),
        }
    }

    /// Watcher → its watched paths (`wchc`): watchers by id, paths in Java order.
    pub fn by_watcher(&self) -> Vec<(WatcherId, Vec<String>)> {
        let mut ws: Vec<_> = self.by_watcher.iter().collect();
        ws.sort_by_key(|(w, _)| **w);
        ws.into_iter().map(|(w, p)| (*w, p.keys().map(|k| k.to_string()).collect())).collect()
    }

    /// Path → its watchers (`wchp`): paths in Java order.
    pub fn by_path(&self) -> Vec<(String, Vec<WatcherId>)> {
        self.table.iter().map(|(p, ws)| (p.to_string(), ws.clone())).collect()
    }

    /// The modes `watcher` holds on `path` (empty when none).
    pub fn modes(&self, path: &str, watcher: WatcherId) -> Vec<WatcherMode> {
        let bits = self.by_watcher.get(&watcher).and_then(|p| p.get_with_hash(string_hash_code(path), path)).copied().unwrap_or(0);
        [WatcherMode::Standard, WatcherMode::Persistent, WatcherMode::PersistentRecursive]
            .into_iter()
            .filter(|m| bits & m.bit() != 0)
            .collect()
    }

    /// Whether `watcher` has any watch in this table.
    pub fn has_watcher(&self, watcher: WatcherId) -> bool {
        self.by_watcher.get(&watcher).is_some_and(|p| !p.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_walk() {
        let v: Vec<_> = parents("/a/b/c", true).collect();
        assert_eq!(v, vec![("/a/b/c", false), ("/a/b", true), ("/a", true), ("/", true)]);
        let v: Vec<_> = parents("/", true).collect();
        assert_eq!(v, vec![("/", false)]);
        let v: Vec<_> = parents("/a/b", false).collect();
        assert_eq!(v, vec![("/a/b", false)]);
    }

    /// A fan-out to 100,000 watchers of one path (quadratic before: 5e9 steps, minutes in a
    /// debug build; about a second now): in registration order, each watcher once, and the
    /// one-time watches gone after.
    #[test]
    fn wide_fan_out_is_linear_and_ordered() {
        const N: u64 = 100_000;
        for flavor in [Flavor::V3_8, Flavor::V3_9] {
            let mut m = WatchManager::new(flavor);
            for w in 0..N {
                assert!(m.add_watch("/a", WatcherId(w), WatcherMode::Standard));
            }
            // Again: already there, nothing added.
            assert!(!m.add_watch("/a", WatcherId(7), WatcherMode::Standard));
            // A recursive watch elsewhere makes the trigger walk the parents (the set path).
            m.add_watch("/", WatcherId(N), WatcherMode::PersistentRecursive);
            let mut out = Vec::new();
            let matched = m.trigger("/a", EventType::NodeDataChanged, Some(&[WatcherId(3)]), &mut out);
            let expected: Vec<WatcherId> = (0..=N).map(WatcherId).collect();
            assert_eq!(matched, expected);
            assert_eq!(out.len(), N as usize);
            assert!(!out.contains(&WatcherId(3)));
            let mut out = Vec::new();
            m.trigger("/a", EventType::NodeDataChanged, None, &mut out);
            assert_eq!(out, vec![WatcherId(N)], "the one-time watches fired once");
        }
    }
}
