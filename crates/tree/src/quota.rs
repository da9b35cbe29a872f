//! ZooKeeper's quota bookkeeping inside the tree: the `PathTrie` of paths that have a quota
//! (a `/zookeeper/quota<path>/zookeeper_limits` node) and the `StatsTrack` text kept in
//! `/zookeeper/quota<path>/zookeeper_stats`.
//!
//! Creating a `zookeeper_limits` node under `/zookeeper/quota` registers its path; creating a
//! `zookeeper_stats` node fills it with the subtree's current count and bytes; afterwards
//! every create/delete/setData below a quota path adjusts the deepest such path's stats node
//! in place (its data changes, its stat does not, no watch fires, and — as in ZooKeeper —
//! the cached approximate data size is not adjusted for it). Quotas are not enforced here;
//! enforcement (3.7+ hard limits) belongs to the request pipeline.

use crate::java::ConcurrentOrder;
use crate::DataTree;
use std::collections::{HashMap, HashSet};

/// `Quotas.quotaZookeeper`.
pub const QUOTA_ZOOKEEPER: &str = "/zookeeper/quota";
/// `Quotas.limitNode`.
pub const LIMIT_NODE: &str = "zookeeper_limits";
/// `Quotas.statNode`.
pub const STAT_NODE: &str = "zookeeper_stats";

/// `Quotas.statPath(path)`.
pub fn stat_path(path: &str) -> String {
    format!("{QUOTA_ZOOKEEPER}{path}/{STAT_NODE}")
}

/// `Quotas.limitPath(path)`.
pub fn limit_path(path: &str) -> String {
    format!("{QUOTA_ZOOKEEPER}{path}/{LIMIT_NODE}")
}

/// `PathTrie.split`: components of `path`, skipping blank ones (Java's `trim().isEmpty()`).
fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.trim_matches(|ch: char| ch <= ' ').is_empty()).collect()
}

/// `PathTrie`, reduced to what the tree asks of it: the set of paths with the property.
#[derive(Debug, Clone, Default)]
pub struct PathTrie {
    paths: HashSet<Vec<Box<str>>>,
}

impl PathTrie {
    pub fn add_path(&mut self, path: &str) {
        let c = components(path);
        self.paths.insert(c.into_iter().map(Box::from).collect());
    }

    pub fn delete_path(&mut self, path: &str) {
        let c: Vec<Box<str>> = components(path).into_iter().map(Box::from).collect();
        self.paths.remove(&c);
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    pub fn clear(&mut self) {
        self.paths.clear();
    }

    /// `findMaxPrefix`: the deepest registered path that is a component-wise prefix of
    /// `path`, or `"/"`.
    pub fn find_max_prefix(&self, path: &str) -> String {
        let c = components(path);
        let mut key: Vec<Box<str>> = Vec::with_capacity(c.len());
        let mut best = 0usize;
        for (i, part) in c.iter().enumerate() {
            key.push((*part).into());
            if self.paths.contains(&key) {
                best = i + 1;
            }
        }
        if best == 0 {
            return "/".to_string();
        }
        format!("/{}", c[..best].join("/"))
    }
}

/// `StatsTrack`: `count=N,bytes=M` plus optional `;key=value` pairs (3.7+ hard limits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    stats: Vec<(String, i64)>,
}

impl StatsTrack {
    /// Parses the text; malformed pairs are skipped (ZooKeeper would throw).
    pub fn parse(bytes: &[u8]) -> StatsTrack {
        let s = String::from_utf8_lossy(bytes);
        let mut t = StatsTrack::default();
        for pair in s.split([',', ';']).filter(|p| !p.is_empty()) {
            // Java's split("=") drops trailing empty strings: "bytes=5=" is ["bytes", "5"].
            let mut kv = pair.split('=');
            let (Some(k), Some(v)) = (kv.next(), kv.next()) else { continue };
            let v = if v.is_empty() { Some(-1) } else { v.parse::<i64>().ok() };
            if let Some(v) = v {
                t.set(k, v);
            }
        }
        t
    }

    fn get(&self, key: &str) -> i64 {
        self.stats.iter().find(|(k, _)| k == key).map_or(-1, |(_, v)| *v)
    }

    fn set(&mut self, key: &str, v: i64) {
        match self.stats.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = v,
            None => self.stats.push((key.to_string(), v)),
        }
    }

    pub fn count(&self) -> i64 {
        self.get("count")
    }
    pub fn bytes(&self) -> i64 {
        self.get("bytes")
    }
    pub fn set_count(&mut self, v: i64) {
        self.set("count", v)
    }
    pub fn set_bytes(&mut self, v: i64) {
        self.set("bytes", v)
    }
    pub fn set_count_hard_limit(&mut self, v: i64) {
        self.set("countHardLimit", v)
    }
    pub fn set_byte_hard_limit(&mut self, v: i64) {
        self.set("byteHardLimit", v)
    }
    pub fn count_hard_limit(&self) -> i64 {
        self.get("countHardLimit")
    }
    pub fn byte_hard_limit(&self) -> i64 {
        self.get("byteHardLimit")
    }

    /// `toString()`: `count=..,bytes=..` first, then `=` and the other keys sorted, each as
    /// `;key=value`.
    pub fn to_text(&self) -> String {
        let mut out = format!("count={},bytes={}", self.count(), self.bytes());
        let mut rest: Vec<&(String, i64)> = self.stats.iter().filter(|(k, _)| k != "count" && k != "bytes").collect();
        if !rest.is_empty() {
            out.push('=');
            rest.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            for (k, v) in rest {
                out.push_str(&format!(";{k}={v}"));
            }
        }
        out
    }
}

/// ZooKeeper's quota gauge sets (`QuotaMetricsUtils`, 3.8+), in the order its default metrics
/// provider prints them in `mntr`.
pub const QUOTA_GAUGE_SETS: [&str; 4] = [
    "quota_bytes_limit_per_namespace",
    "quota_count_usage_per_namespace",
    "quota_count_limit_per_namespace",
    "quota_bytes_usage_per_namespace",
];

/// One gauge set's members: (namespace, value), in ZooKeeper's `ConcurrentHashMap` order.
pub type NamespaceValues = Vec<(String, i64)>;

/// `QuotaMetricsUtils.getQuota{BytesLimit,CountUsage,CountLimit,BytesUsage}`, in the order of
/// [`QUOTA_GAUGE_SETS`]: every leaf under `/zookeeper/quota` that is a limit node (limits: the
/// hard limit if set, else the soft one) or a stats node (usage), summed by the top-level
/// namespace of the quota path.
pub fn namespace_metrics(tree: &DataTree) -> [NamespaceValues; 4] {
    let mut leaves: Vec<(String, StatsTrack, bool)> = Vec::new();
    let mut stack = vec![QUOTA_ZOOKEEPER.to_string()];
    while let Some(path) = stack.pop() {
        let Some(children) = tree.get_children(&path) else { continue };
        if children.is_empty() {
            let is_limit = path.ends_with(&format!("/{LIMIT_NODE}"));
            let is_stat = path.ends_with(&format!("/{STAT_NODE}"));
            // Quotas.trimQuotaPath, then PathUtils.getTopNamespace.
            let ns = path[QUOTA_ZOOKEEPER.len()..].split('/').nth(1).map(str::to_string);
            if let (true, Some(ns), Some(n)) = (is_limit || is_stat, ns, tree.get(&path)) {
                leaves.push((ns, StatsTrack::parse(n.data), is_limit));
            }
            continue;
        }
        // Depth first in the children's order, as the recursion visits them.
        for c in children.into_iter().rev() {
            stack.push(format!("{path}/{c}"));
        }
    }
    // QuotaMetricsUtils.getQuotaLimit: the hard limit takes precedence if set.
    fn hard_or_soft(hard: i64, soft: i64) -> i64 {
        if hard > -1 {
            hard
        } else {
            soft
        }
    }
    type Pick = fn(&StatsTrack, bool) -> Option<i64>;
    let pick: [Pick; 4] = [
        |t, limit| limit.then(|| hard_or_soft(t.byte_hard_limit(), t.bytes())),
        |t, limit| (!limit).then(|| t.count()),
        |t, limit| limit.then(|| hard_or_soft(t.count_hard_limit(), t.count())),
        |t, limit| (!limit).then(|| t.bytes()),
    ];
    pick.map(|f| {
        let mut order: ConcurrentOrder<String> = ConcurrentOrder::default();
        let mut sums: HashMap<String, i64> = HashMap::new();
        for (ns, t, limit) in &leaves {
            if let Some(v) = f(t, *limit) {
                order.insert(ns.clone());
                *sums.entry(ns.clone()).or_default() += v;
            }
        }
        order.ordered().into_iter().map(|ns| (ns.clone(), sums[ns])).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trie_prefixes() {
        let mut t = PathTrie::default();
        assert_eq!(t.find_max_prefix("/a/b"), "/");
        t.add_path("/a");
        t.add_path("/a/b/c");
        assert_eq!(t.find_max_prefix("/a/b"), "/a");
        assert_eq!(t.find_max_prefix("/a/b/c/d"), "/a/b/c");
        assert_eq!(t.find_max_prefix("/ab"), "/");
        t.delete_path("/a");
        assert_eq!(t.find_max_prefix("/a/b"), "/");
    }

    #[test]
    fn stats_text() {
        let mut s = StatsTrack::parse(b"count=1,bytes=5");
        assert_eq!((s.count(), s.bytes()), (1, 5));
        s.set_count(3);
        assert_eq!(s.to_text(), "count=3,bytes=5");
        let s = StatsTrack::parse(b"count=-1,bytes=-1=;countHardLimit=10;byteHardLimit=7");
        assert_eq!(s.count_hard_limit(), 10);
        assert_eq!(s.to_text(), "count=-1,bytes=-1=;byteHardLimit=7;countHardLimit=10");
        assert_eq!(StatsTrack::default().to_text(), "count=-1,bytes=-1");
    }
}
