//! The session tracker: ZooKeeper's `SessionTrackerImpl` with its `ExpiryQueue`, as a pure
//! structure over time given by the caller.
//!
//! A session's expiry time is rounded up to the next multiple of `tickTime` (the expiry
//! interval), so sessions expire in buckets, one check per tick. Touching a session moves it
//! to a later bucket. Nothing here reads a clock: `now_ms` is always an argument.

use rzk_proto::SessionId;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone)]
pub struct Session {
    pub id: SessionId,
    pub timeout_ms: i32,
    /// The bucket (an absolute time in ms) the session expires in.
    pub expires_at_ms: i64,
    /// Set once a closeSession has been prepped for it; no more requests are accepted.
    pub closing: bool,
}

#[derive(Debug)]
pub struct SessionTracker {
    interval_ms: i64,
    next_session_id: i64,
    sessions: HashMap<SessionId, Session, rustc_hash::FxBuildHasher>,
    /// Expiry buckets: time → sessions that expire then. A BTreeMap so the scan is ordered.
    buckets: BTreeMap<i64, BTreeSet<SessionId>>,
}

impl SessionTracker {
    /// `SessionTrackerImpl.initializeNextSessionId`: the top byte is the server id, the next
    /// 40 bits the (wall-clock) time the tracker started, so ids from different runs do not
    /// collide. `now_ms` is the monotonic clock expiry is measured on.
    pub fn new(server_id: u8, tick_ms: i64, _now_ms: i64, wall_ms: i64) -> Self {
        let mut next = ((wall_ms << 24) as u64 >> 8) as i64;
        next |= (server_id as i64) << 56;
        if next == i64::MIN {
            next += 1; // never the container owner marker
        }
        SessionTracker { interval_ms: tick_ms.max(1), next_session_id: next, sessions: HashMap::default(), buckets: BTreeMap::new() }
    }

    fn round_to_next_interval(&self, t: i64) -> i64 {
        (t / self.interval_ms + 1) * self.interval_ms
    }

    /// Allocates the id for a new session (not yet tracked; see [`Self::add`]).
    pub fn next_id(&mut self) -> SessionId {
        let id = SessionId(self.next_session_id);
        self.next_session_id += 1;
        id
    }

    /// Tracks a session (a new one, or one loaded from a snapshot or learned from the leader).
    pub fn add(&mut self, id: SessionId, timeout_ms: i32, now_ms: i64) {
        let expires = self.round_to_next_interval(now_ms + timeout_ms as i64);
        if let Some(old) = self.sessions.insert(id, Session { id, timeout_ms, expires_at_ms: expires, closing: false }) {
            self.unbucket(old.id, old.expires_at_ms);
        }
        self.buckets.entry(expires).or_default().insert(id);
    }

    fn unbucket(&mut self, id: SessionId, at: i64) {
        if let Some(b) = self.buckets.get_mut(&at) {
            b.remove(&id);
            if b.is_empty() {
                self.buckets.remove(&at);
            }
        }
    }

    /// Moves a live session's expiry to `now + timeout`. False if it is unknown or closing.
    pub fn touch(&mut self, id: SessionId, now_ms: i64) -> bool {
        let Some(s) = self.sessions.get(&id) else { return false };
        if s.closing {
            return false;
        }
        let expires = self.round_to_next_interval(now_ms + s.timeout_ms as i64);
        let old = s.expires_at_ms;
        if expires == old {
            return true;
        }
        self.unbucket(id, old);
        self.buckets.entry(expires).or_default().insert(id);
        self.sessions.get_mut(&id).expect("present").expires_at_ms = expires;
        true
    }

    /// `SessionTrackerImpl.touchSession(id, timeout)` as a leader runs it for a learner's
    /// PING or REVALIDATE: the expiry moves to `now + timeout` (the timeout the learner
    /// reports; the session's own stays). False if it is unknown or closing.
    pub fn touch_for(&mut self, id: SessionId, timeout_ms: i32, now_ms: i64) -> bool {
        let Some(s) = self.sessions.get(&id) else { return false };
        if s.closing {
            return false;
        }
        let expires = self.round_to_next_interval(now_ms + timeout_ms as i64);
        let old = s.expires_at_ms;
        if expires != old {
            self.unbucket(id, old);
            self.buckets.entry(expires).or_default().insert(id);
            self.sessions.get_mut(&id).expect("present").expires_at_ms = expires;
        }
        true
    }

    /// Forgets every session (a snapshot from the leader replaces the table); the id
    /// counter goes on, so ids handed out before are never reused.
    pub fn clear(&mut self) {
        self.sessions.clear();
        self.buckets.clear();
    }

    pub fn get(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub fn is_live(&self, id: SessionId) -> bool {
        self.sessions.get(&id).is_some_and(|s| !s.closing)
    }

    /// Marks a session closing: it accepts no more requests and will not expire again.
    pub fn set_closing(&mut self, id: SessionId) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.closing = true;
            let at = s.expires_at_ms;
            self.unbucket(id, at);
        }
    }

    /// Undoes [`Self::set_closing`] / [`Self::expire`] (the closeSession could not be
    /// logged): the session is live again and expires `timeout` after `now_ms`.
    pub fn reopen(&mut self, id: SessionId, now_ms: i64) {
        let Some(s) = self.sessions.get_mut(&id) else { return };
        let at = s.expires_at_ms;
        s.closing = false;
        let timeout = s.timeout_ms;
        self.unbucket(id, at);
        let expires = self.round_to_next_interval(now_ms + timeout as i64);
        self.sessions.get_mut(&id).expect("present").expires_at_ms = expires;
        self.buckets.entry(expires).or_default().insert(id);
    }

    /// Moves a session into the bucket at `now_ms`, so the next [`Self::expire`] takes it.
    pub fn expire_now(&mut self, id: SessionId, now_ms: i64) {
        let Some(s) = self.sessions.get(&id) else { return };
        let old = s.expires_at_ms;
        let first = now_ms;
        self.unbucket(id, old);
        self.buckets.entry(first).or_default().insert(id);
        self.sessions.get_mut(&id).expect("present").expires_at_ms = first;
    }

    pub fn remove(&mut self, id: SessionId) {
        if let Some(s) = self.sessions.remove(&id) {
            self.unbucket(id, s.expires_at_ms);
        }
    }

    /// Sessions whose bucket is at or before `now_ms`; they are marked closing.
    pub fn expire(&mut self, now_ms: i64) -> Vec<SessionId> {
        self.expire_at_most(now_ms, usize::MAX)
    }

    /// At most `max` of the sessions whose bucket is at or before `now_ms` (oldest bucket
    /// first, by id within one); they are marked closing. The rest stay in their buckets for
    /// the next call (a touch meanwhile still saves one).
    pub fn expire_at_most(&mut self, now_ms: i64, max: usize) -> Vec<SessionId> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some(mut entry) = self.buckets.first_entry() else { break };
            if *entry.key() > now_ms {
                break;
            }
            while out.len() < max {
                let Some(id) = entry.get_mut().pop_first() else { break };
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.closing = true;
                }
                out.push(id);
            }
            if entry.get().is_empty() {
                entry.remove();
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// All sessions, ordered by id (for `dump`, snapshots and tests).
    pub fn sessions(&self) -> Vec<&Session> {
        let mut v: Vec<&Session> = self.sessions.values().collect();
        v.sort_by_key(|s| s.id);
        v
    }

    /// The expiry buckets, for `dump`.
    pub fn buckets(&self) -> &BTreeMap<i64, BTreeSet<SessionId>> {
        &self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expire_at_most_leaves_the_rest_for_the_next_call() {
        let mut t = SessionTracker::new(0, 2000, 0, 1_700_000_000_000);
        let ids: Vec<SessionId> = (0..5).map(|_| t.next_id()).collect();
        for (i, id) in ids.iter().enumerate() {
            // Two buckets: 4000 (ids 0, 1, 2) and 6000 (ids 3, 4).
            t.add(*id, if i < 3 { 2000 } else { 4000 }, 100);
        }
        assert_eq!(t.expire_at_most(6000, 2), ids[..2].to_vec());
        assert!(t.get(ids[0]).unwrap().closing);
        assert!(!t.get(ids[2]).unwrap().closing);
        // One left in the older bucket, then the next one.
        assert_eq!(t.expire_at_most(6000, 2), ids[2..4].to_vec());
        // A touch still saves one that has waited.
        assert!(t.touch(ids[4], 5000));
        assert!(t.expire_at_most(6000, 2).is_empty());
        assert_eq!(t.expire(10_000), vec![ids[4]]);
        assert!(t.buckets().is_empty());
    }

    #[test]
    fn expiry_in_tick_buckets() {
        let mut t = SessionTracker::new(0, 2000, 0, 1_700_000_000_000);
        let a = t.next_id();
        t.add(a, 4000, 100);
        assert_eq!(t.get(a).unwrap().expires_at_ms, 6000);
        assert!(t.expire(5999).is_empty());
        assert!(t.touch(a, 3000)); // → 8000
        assert!(t.expire(6000).is_empty());
        assert_eq!(t.expire(8000), vec![a]);
        assert!(!t.is_live(a));
        assert!(!t.touch(a, 9000));
    }

    #[test]
    fn session_ids_carry_server_id() {
        let mut t = SessionTracker::new(3, 2000, 0, 1_700_000_000_000);
        let id = t.next_id();
        assert_eq!(id.0 >> 56, 3);
        assert_ne!(id.0 & 0x00ff_ffff_ffff_ffff, 0);
    }
}
