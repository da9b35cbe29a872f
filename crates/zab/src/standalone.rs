//! A standalone server as a one-voter ZAB node: no election, no peers, no epoch files.
//!
//! ZooKeeper's standalone `ZooKeeperServer` logs a txn and applies it once the log has it;
//! here that is the same node contract as an ensemble's: `propose` → `Persist(Append)` →
//! `persisted(seq)` → `Deliver`, so the host composes a standalone server exactly as an
//! ensemble member. Zxids continue the last one logged (the epoch never changes: a standalone
//! server writes no `acceptedEpoch` / `currentEpoch`).
//!
//! A full disk is the one storage failure a standalone server survives (the writes are
//! answered ConnectionLoss and the zxids handed out again): [`Node::append_failed`] forgets
//! every proposal from the refused zxid on.

use std::collections::VecDeque;

use bytes::Bytes;
use rzk_proto::Zxid;

use crate::node::{Node, Role};
use crate::types::{Entry, ProposeError};

/// Proposals logged but not yet durable: `(storage seq, zxid)`, in order.
#[derive(Debug, Default)]
pub(crate) struct Standalone {
    pub(crate) unpersisted: VecDeque<(u64, Zxid)>,
}

impl Node {
    pub(crate) fn standalone_next_zxid(&self) -> Zxid {
        Zxid(self.last_logged().0 + 1)
    }

    pub(crate) fn standalone_propose(&mut self, zxid: Zxid, data: Bytes) -> Result<(), ProposeError> {
        let next = self.standalone_next_zxid();
        if zxid != next {
            return Err(ProposeError::WrongZxid { expected: next, got: zxid });
        }
        let seq = self.append(Entry { zxid, data });
        let Role::Standalone(s) = &mut self.role else { unreachable!("standalone_propose on a member") };
        s.unpersisted.push_back((seq, zxid));
        Ok(())
    }

    /// Delivers every proposal whose append is durable (`durable_seq`).
    pub(crate) fn standalone_release(&mut self, durable_seq: u64) {
        let Role::Standalone(s) = &mut self.role else { return };
        let mut upto = None;
        while let Some((seq, zxid)) = s.unpersisted.front().copied() {
            if seq > durable_seq {
                break;
            }
            s.unpersisted.pop_front();
            upto = Some(zxid);
        }
        if let Some(z) = upto {
            self.deliver_up_to(z);
        }
    }

    /// Standalone only: the log refused the append of `zxid` and drops everything after it
    /// (a full disk). Those proposals are forgotten; the next `propose` must carry `zxid`
    /// again. Panics on a member (a member cannot skip a txn) or if `zxid` was never proposed.
    pub fn append_failed(&mut self, zxid: Zxid) {
        let Role::Standalone(s) = &mut self.role else { panic!("append_failed({zxid}) on an ensemble member") };
        let pos = s.unpersisted.iter().position(|(_, z)| *z == zxid);
        let pos = pos.unwrap_or_else(|| panic!("the log refused {zxid}, which is not an unpersisted proposal"));
        s.unpersisted.truncate(pos);
        self.truncate_window(Zxid(zxid.0 - 1));
        assert_eq!(self.standalone_next_zxid(), zxid, "after a refused append the next zxid is the refused one");
    }
}
