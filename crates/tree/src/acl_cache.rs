//! ZooKeeper's `ReferenceCountedACLCache`: every distinct ACL list is stored once and
//! referenced from znodes by a `long` id, with a reference count per id.
//!
//! Ids are handed out from 1 upwards (`++aclIndex`) and never reused; `-1` always stands for
//! `OPEN_ACL_UNSAFE` without an entry (the built-in nodes use it). An entry is dropped as
//! soon as its count falls to 0 — so a node that is the only user of a list and sets the
//! same list again gets a fresh id, exactly as in ZooKeeper. The id ⇄ list table is what a
//! snapshot stores; [`AclCache::snapshot_entries`] gives it in the order ZooKeeper writes it
//! (iteration order of `new HashMap<>(longKeyMap)`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use rzk_proto::Acl;

use crate::java::JavaHashMap;

/// The id standing for `ZooDefs.Ids.OPEN_ACL_UNSAFE` (no cache entry, no reference count).
pub const OPEN_UNSAFE_ACL_ID: i64 = -1;

type DetHashMap<K, V> = HashMap<K, V, BuildHasherDefault<DefaultHasher>>;

/// An ACL list as a hash key (by content, as `List<ACL>.equals`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct AclKey(Arc<[Acl]>);

impl Hash for AclKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.len());
        for a in self.0.iter() {
            state.write_i32(a.perms);
            state.write(a.id.scheme.as_bytes());
            state.write_u8(0xff);
            state.write(a.id.id.as_bytes());
            state.write_u8(0xff);
        }
    }
}

/// `ReferenceCountedACLCache`.
#[derive(Debug, Clone)]
pub struct AclCache {
    long_key_map: JavaHashMap<i64, Arc<[Acl]>>,
    acl_key_map: DetHashMap<AclKey, i64>,
    reference_counter: DetHashMap<i64, i64>,
    acl_index: i64,
    open_unsafe: Arc<[Acl]>,
}

impl Default for AclCache {
    fn default() -> Self {
        Self::new()
    }
}

impl AclCache {
    pub fn new() -> AclCache {
        AclCache {
            long_key_map: JavaHashMap::new(),
            acl_key_map: DetHashMap::default(),
            reference_counter: DetHashMap::default(),
            acl_index: 0,
            open_unsafe: Acl::open_unsafe().into(),
        }
    }

    /// `convertAcls`: the id of `acls` (a new one if the list is not cached), with its
    /// reference count incremented.
    pub fn convert_acls(&mut self, acls: &[Acl]) -> i64 {
        let key = AclKey(acls.into());
        let id = match self.acl_key_map.get(&key) {
            Some(&id) => id,
            None => {
                self.acl_index += 1;
                let id = self.acl_index;
                self.long_key_map.insert(id, key.0.clone());
                self.acl_key_map.insert(key, id);
                id
            }
        };
        self.add_usage(id);
        id
    }

    /// `convertLong`: the list behind an id (`-1` is `OPEN_ACL_UNSAFE`). ZooKeeper throws for
    /// an unknown id; here it is `None`.
    pub fn convert_long(&self, id: i64) -> Option<&Arc<[Acl]>> {
        if id == OPEN_UNSAFE_ACL_ID {
            return Some(&self.open_unsafe);
        }
        self.long_key_map.get(&id)
    }

    /// `addUsage`: one more reference (ignored for `-1` and unknown ids).
    pub fn add_usage(&mut self, id: i64) {
        if id == OPEN_UNSAFE_ACL_ID || !self.long_key_map.contains_key(&id) {
            return;
        }
        *self.reference_counter.entry(id).or_insert(0) += 1;
    }

    /// `removeUsage`: one reference less; the entry goes away at 0.
    pub fn remove_usage(&mut self, id: i64) {
        if id == OPEN_UNSAFE_ACL_ID || !self.long_key_map.contains_key(&id) {
            return;
        }
        let c = self.reference_counter.entry(id).or_insert(0);
        *c -= 1;
        if *c <= 0 {
            self.reference_counter.remove(&id);
            if let Some(list) = self.long_key_map.remove(&id) {
                self.acl_key_map.remove(&AclKey(list));
            }
        }
    }

    /// `purgeUnused`: drops entries whose count is ≤ 0 (after loading a snapshot).
    pub fn purge_unused(&mut self) {
        let dead: Vec<i64> = self.reference_counter.iter().filter(|(_, &c)| c <= 0).map(|(&id, _)| id).collect();
        for id in dead {
            self.reference_counter.remove(&id);
            if let Some(list) = self.long_key_map.remove(&id) {
                self.acl_key_map.remove(&AclKey(list));
            }
        }
    }

    /// `size()`: the number of distinct cached lists.
    pub fn len(&self) -> usize {
        self.acl_key_map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.acl_key_map.is_empty()
    }

    /// The reference count of an id (0 when unknown).
    pub fn ref_count(&self, id: i64) -> i64 {
        self.reference_counter.get(&id).copied().unwrap_or(0)
    }

    /// The last id handed out (`aclIndex`).
    pub fn acl_index(&self) -> i64 {
        self.acl_index
    }

    /// The id → list table in the order a ZooKeeper snapshot lists it.
    pub fn snapshot_entries(&self) -> Vec<(i64, Arc<[Acl]>)> {
        self.long_key_map.java_clone().iter().map(|(&id, l)| (id, l.clone())).collect()
    }

    /// `deserialize`: replaces the cache with a snapshot's table (in file order); counts start
    /// at 0 and are rebuilt with [`AclCache::add_usage`] as nodes load; `aclIndex` becomes the
    /// largest id.
    pub fn load(&mut self, entries: impl IntoIterator<Item = (i64, Vec<Acl>)>) {
        self.long_key_map = JavaHashMap::new();
        self.acl_key_map.clear();
        self.reference_counter.clear();
        // ZooKeeper reads into a LinkedHashMap first: a repeated id keeps its first position
        // and its last list.
        let mut order: Vec<i64> = Vec::new();
        let mut lists: HashMap<i64, Vec<Acl>> = HashMap::new();
        for (id, list) in entries {
            if lists.insert(id, list).is_none() {
                order.push(id);
            }
        }
        for id in order {
            let list: Arc<[Acl]> = lists.remove(&id).unwrap_or_default().into();
            if self.acl_index < id {
                self.acl_index = id;
            }
            self.long_key_map.insert(id, list.clone());
            self.acl_key_map.insert(AclKey(list), id);
            self.reference_counter.insert(id, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::perms;

    #[test]
    fn ids_and_refcounts() {
        let mut c = AclCache::new();
        let open = Acl::open_unsafe();
        let read = Acl::read_unsafe();
        assert_eq!(c.convert_acls(&read), 1);
        assert_eq!(c.convert_acls(&open), 2);
        assert_eq!(c.convert_acls(&open), 2);
        assert_eq!(c.ref_count(2), 2);
        assert_eq!(c.len(), 2);
        c.remove_usage(2);
        c.remove_usage(2);
        assert_eq!(c.len(), 1);
        assert!(c.convert_long(2).is_none());
        // A list seen again after its entry went away gets a fresh id.
        assert_eq!(c.convert_acls(&open), 3);
        assert_eq!(&**c.convert_long(-1).unwrap(), &open[..]);
        assert_eq!(c.convert_long(1).unwrap()[0].perms, perms::READ);
    }

    #[test]
    fn load_and_purge() {
        let mut c = AclCache::new();
        c.load(vec![(5, Acl::open_unsafe()), (9, Acl::read_unsafe())]);
        assert_eq!(c.acl_index(), 9);
        c.add_usage(9);
        c.purge_unused();
        assert_eq!(c.len(), 1);
        assert_eq!(c.convert_acls(&Acl::read_unsafe()), 9);
        assert_eq!(c.convert_acls(&Acl::open_unsafe()), 10);
    }
}
