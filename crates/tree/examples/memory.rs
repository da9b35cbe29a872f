//! Measures heap bytes per znode: `cargo run --release -p rzk-tree --example memory [N]`.
//!
//! Creates N znodes (100-char-ish paths are not used: names like ZooKeeper sequential nodes,
//! `/app/p<i % 100>/node-<seq>`, 10 bytes of data each, OPEN_ACL_UNSAFE) and reports the
//! heap growth per znode, minus the path and data bytes themselves.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use rzk_proto::txn::{CreateTxn, Txn, TxnHeader};
use rzk_proto::{Acl, SessionId, Zxid};
use rzk_tree::DataTree;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let mut t = DataTree::new();
    let mut zxid = 1i64;
    let mut apply = |t: &mut DataTree, path: String| {
        zxid += 1;
        let txn = Txn::Create {
            txn: CreateTxn { path, data: Some(b"0123456789".to_vec()), acl: Acl::open_unsafe(), ephemeral: false, parent_cversion: -1 },
            create2: false,
        };
        let h = TxnHeader { client_id: SessionId(1), cxid: 0, zxid: Zxid(zxid), time: zxid, op: txn.op().code() };
        t.apply(&h, &txn);
    };
    apply(&mut t, "/app".into());
    for p in 0..100 {
        apply(&mut t, format!("/app/p{p}"));
    }
    let before = LIVE.load(Ordering::Relaxed);
    let mut payload = 0usize;
    for i in 0..n {
        let path = format!("/app/p{}/node-{:010}", i % 100, i);
        payload += path.len() + 10;
        apply(&mut t, path);
    }
    let after = LIVE.load(Ordering::Relaxed);
    let total = after - before;
    println!(
        "{n} znodes: {:.1} heap bytes/znode, {:.1} of it overhead beyond path+data",
        total as f64 / n as f64,
        (total - payload) as f64 / n as f64
    );
    println!("node_count {} digest {:#x}", t.node_count(), t.digest());
}
