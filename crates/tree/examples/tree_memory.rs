//! Resident bytes per znode of a `DataTree` alone, for the tree `rzk bench load` builds
//! (`/bench/load/dNNNNNN/nNNNNNN`, 1,000 children per parent, 100-byte values), with the
//! server's allocator (mimalloc). `cargo run --release -p rzk-tree --example tree_memory [N]`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use rzk_proto::txn::{CreateTxn, Txn, TxnHeader};
use rzk_proto::{Acl, OpCode, SessionId, Zxid};
use rzk_tree::DataTree;

fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 4096
}

fn create(t: &mut DataTree, zxid: &mut i64, path: &str, data: &[u8]) {
    *zxid += 1;
    let txn = Txn::Create {
        txn: CreateTxn { path: path.into(), data: Some(data.to_vec()), acl: Acl::open_unsafe(), ephemeral: false, parent_cversion: -1 },
        create2: false,
    };
    let h = TxnHeader { client_id: SessionId(1), cxid: 1, zxid: Zxid(*zxid), time: *zxid, op: OpCode::Create.code() };
    t.apply(&h, &txn);
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let value = vec![b'x'; 100];
    let mut t = DataTree::new();
    let mut zxid = 0;
    create(&mut t, &mut zxid, "/bench", b"");
    create(&mut t, &mut zxid, "/bench/load", b"");
    let before = rss();
    let t0 = std::time::Instant::now();
    for i in 0..n {
        if i % 1000 == 0 {
            create(&mut t, &mut zxid, &format!("/bench/load/d{:06}", i / 1000), b"");
        }
        create(&mut t, &mut zxid, &format!("/bench/load/d{:06}/n{:06}", i / 1000, i % 1000), &value);
    }
    let load = t0.elapsed();
    let after = rss();
    // Stat every znode once, in a scattered order (as a server's reads would).
    let paths: Vec<String> = (0..n).map(|i| (i * 7_919) % n).map(|i| format!("/bench/load/d{:06}/n{:06}", i / 1000, i % 1000)).collect();
    let t1 = std::time::Instant::now();
    let mut found = 0u64;
    for p in &paths {
        found += t.stat(p).is_some() as u64;
    }
    let reads = t1.elapsed();
    assert_eq!(found, n);
    println!("apply {:.0} ns per create, stat {:.0} ns per lookup", load.as_nanos() as f64 / n as f64, reads.as_nanos() as f64 / n as f64);
    println!(
        "{} znodes: RSS {} -> {} MiB, {:.1} resident bytes per znode; tree's own estimate {:.1}",
        n,
        before >> 20,
        after >> 20,
        (after - before) as f64 / n as f64,
        t.approximate_heap_bytes() as f64 / n as f64
    );
}
