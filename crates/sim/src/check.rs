//! The checkers: what must hold after every step of a simulation, and the client history.
//!
//! - **one leader per epoch**: a server whose epoch a quorum acknowledged owns that epoch;
//!   no other server may ever own it.
//! - **committed history**: every delivery of every server, in order, must continue the one
//!   global committed sequence (same zxid, same bytes, nothing skipped or reordered); a
//!   server's deliveries are thus always a prefix of it.
//! - **logs**: every log entry (durable or in memory) whose zxid is committed holds the
//!   committed bytes; an established leader holds every committed txn.
//! - **digests**: equal zxid ⇒ equal `DataTree` digest, for every server, after every apply
//!   and snapshot install.
//! - **clients**: every acknowledged write is committed; writes are linearizable (if one
//!   ended before another started, its zxid is lower); each session's reads and own writes
//!   never go back in zxid.

use std::collections::{BTreeMap, HashMap};

use rzk_proto::Zxid;

/// One client write as the history checker sees it.
#[derive(Debug, Clone)]
pub struct WriteRec {
    pub session: i64,
    pub cxid: i32,
    pub start: u64,
    /// When the client got its reply; `None` if it never did (timed out or lost).
    pub end: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Checker {
    /// epoch → the server that owns it.
    pub epoch_owner: BTreeMap<u32, i64>,
    /// The committed sequence: zxid → hash of the txn bytes.
    pub committed: BTreeMap<Zxid, u64>,
    /// zxid → tree digest after applying it.
    pub digests: HashMap<Zxid, i64>,
    /// (session, cxid) → the first zxid that carried it.
    pub txn_of_op: HashMap<(i64, i32), Zxid>,
    pub writes: Vec<WriteRec>,
    /// session → last zxid it observed (reads and own acked writes).
    pub session_zxid: HashMap<i64, Zxid>,
    pub reads: u64,
    pub digest_checks: u64,
    pub log_checks: u64,
}

pub fn hash_bytes(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in b {
        h ^= *x as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Checker {
    pub fn leader_owns_epoch(&mut self, epoch: u32, sid: i64) -> Result<(), String> {
        match self.epoch_owner.get(&epoch) {
            Some(&o) if o != sid => Err(format!("two leaders for epoch {epoch}: servers {o} and {sid}")),
            _ => {
                self.epoch_owner.insert(epoch, sid);
                Ok(())
            }
        }
    }

    /// A server that had applied up to `prev` delivers `zxid` with bytes hashing to `h`.
    pub fn delivered(&mut self, server: i64, prev: Zxid, zxid: Zxid, h: u64) -> Result<(), String> {
        if zxid <= prev {
            return Err(format!("server {server} delivered {zxid} after {prev}"));
        }
        let next = self.committed.range((std::ops::Bound::Excluded(prev), std::ops::Bound::Unbounded)).next().map(|(z, h)| (*z, *h));
        match next {
            Some((nz, nh)) => {
                if nz != zxid {
                    return Err(format!("server {server} delivered {zxid} after {prev}, but the committed history continues with {nz}"));
                }
                if nh != h {
                    return Err(format!("server {server} delivered different bytes for committed {zxid}"));
                }
            }
            None => {
                // The history grows. A server can only extend it from its end.
                if let Some((&last, _)) = self.committed.iter().next_back() {
                    if prev < last {
                        return Err(format!("server {server} at {prev} delivered {zxid} beyond the history's end {last}"));
                    }
                }
                self.committed.insert(zxid, h);
            }
        }
        Ok(())
    }

    pub fn digest(&mut self, server: i64, zxid: Zxid, digest: i64) -> Result<(), String> {
        self.digest_checks += 1;
        match self.digests.get(&zxid) {
            Some(&d) if d != digest => Err(format!("server {server} has tree digest {digest:#x} at {zxid}, another server had {d:#x}")),
            Some(_) => Ok(()),
            None => {
                self.digests.insert(zxid, digest);
                Ok(())
            }
        }
    }

    /// A log entry seen on a server (durable or in memory).
    pub fn log_entry(&mut self, server: i64, zxid: Zxid, h: u64) -> Result<(), String> {
        self.log_checks += 1;
        match self.committed.get(&zxid) {
            Some(&c) if c != h => Err(format!("server {server}'s log holds different bytes at committed {zxid}")),
            _ => Ok(()),
        }
    }

    pub fn last_committed(&self) -> Zxid {
        self.committed.keys().next_back().copied().unwrap_or(Zxid::ZERO)
    }

    /// A session observed `zxid` (a read, or its own acknowledged write).
    pub fn session_saw(&mut self, session: i64, zxid: Zxid, what: &str) -> Result<(), String> {
        let e = self.session_zxid.entry(session).or_insert(Zxid::ZERO);
        if zxid < *e {
            return Err(format!("session {session} {what} at {zxid} after having seen {}", *e));
        }
        *e = zxid;
        Ok(())
    }

    /// Linearizable writes over the whole history; every acked write committed.
    pub fn check_history(&self) -> Result<(usize, usize), String> {
        let mut done: Vec<(u64, u64, Zxid)> = Vec::new(); // (start, end, zxid)
        let mut open: Vec<(u64, Zxid)> = Vec::new();
        for w in &self.writes {
            let z = self.txn_of_op.get(&(w.session, w.cxid)).copied();
            match (w.end, z) {
                (Some(_), None) => return Err(format!("acknowledged write {}/{} is not in the committed history", w.session, w.cxid)),
                (Some(end), Some(z)) => {
                    if !self.committed.contains_key(&z) {
                        return Err(format!("acknowledged write {}/{} at {z} is not committed", w.session, w.cxid));
                    }
                    done.push((w.start, end, z))
                }
                (None, Some(z)) => open.push((w.start, z)),
                (None, None) => {}
            }
        }
        // For each write w2 (acked or not), every acked w1 that ended before w2 started
        // must have a lower zxid: sweep acked writes by end time with a running max zxid.
        let mut by_end = done.clone();
        by_end.sort_by_key(|d| d.1);
        let mut prefix_max: Vec<(u64, Zxid)> = Vec::with_capacity(by_end.len());
        let mut m = Zxid(i64::MIN);
        for (_, end, z) in &by_end {
            m = m.max(*z);
            prefix_max.push((*end, m));
        }
        let all: Vec<(u64, Zxid)> = done.iter().map(|d| (d.0, d.2)).chain(open.iter().copied()).collect();
        for (start, z) in &all {
            let i = prefix_max.partition_point(|(end, _)| end < start);
            if i > 0 {
                let (_, mz) = prefix_max[i - 1];
                if mz >= *z {
                    return Err(format!("writes not linearizable: a write ended before one started at tick {start} with zxid {z}, yet has zxid {mz}"));
                }
            }
        }
        Ok((done.len(), open.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_rejects_reordered_writes() {
        let mut c = Checker::default();
        c.committed.insert(Zxid(1), 0);
        c.committed.insert(Zxid(2), 0);
        c.writes.push(WriteRec { session: 1, cxid: 1, start: 0, end: Some(5) });
        c.writes.push(WriteRec { session: 2, cxid: 1, start: 6, end: Some(9) });
        c.txn_of_op.insert((1, 1), Zxid(2));
        c.txn_of_op.insert((2, 1), Zxid(1));
        assert!(c.check_history().is_err());
        c.txn_of_op.insert((1, 1), Zxid(1));
        c.txn_of_op.insert((2, 1), Zxid(2));
        assert_eq!(c.check_history(), Ok((2, 0)));
    }

    #[test]
    fn delivery_must_continue_the_history() {
        let mut c = Checker::default();
        c.delivered(1, Zxid(0), Zxid(1), 11).unwrap();
        c.delivered(1, Zxid(1), Zxid(2), 22).unwrap();
        assert!(c.delivered(2, Zxid(0), Zxid(2), 22).is_err(), "skipped 1");
        assert!(c.delivered(2, Zxid(0), Zxid(1), 99).is_err(), "different bytes");
        c.delivered(2, Zxid(0), Zxid(1), 11).unwrap();
        assert!(c.delivered(3, Zxid(0), Zxid(5), 1).is_err(), "beyond the end from behind");
    }
}
