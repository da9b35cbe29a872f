//! Writes a data directory holding one snapshot of a tree of N znodes (for restart-time
//! benchmarks; Apache ZooKeeper and rzk both start from it):
//! `cargo run --release -p rzk-storage --example gen_tree -- DATADIR N [DATA_BYTES]`.
//! Layout: /bench/d<i/1000>/n<i%1000>, DATA_BYTES (default 100) of data each.

use rzk_proto::txn::{CreateTxn, Txn, TxnHeader};
use rzk_proto::{Acl, OpCode, SessionId, Zxid};
use rzk_tree::{DataTree, TreeOptions};
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: gen_tree DATADIR N [DATA_BYTES]");
        std::process::exit(2);
    }
    let dir = PathBuf::from(&args[1]).join("version-2");
    let n: u64 = args[2].parse().expect("N");
    let bytes: usize = args.get(3).map(|s| s.parse().expect("DATA_BYTES")).unwrap_or(100);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut t = DataTree::with_options(TreeOptions { extended_types_enabled: true, ..Default::default() });
    let mut zxid = 0i64;
    let mut create = |t: &mut DataTree, path: String| {
        zxid += 1;
        let h = TxnHeader { client_id: SessionId(0), cxid: 0, zxid: Zxid(zxid), time: 1_700_000_000_000 + zxid, op: OpCode::Create.code() };
        let txn = CreateTxn { path, data: Some(vec![b'x'; bytes]), acl: Acl::open_unsafe(), ephemeral: false, parent_cversion: -1 };
        t.apply(&h, &Txn::Create { txn, create2: false });
    };
    create(&mut t, "/bench".into());
    for i in 0..n {
        if i % 1000 == 0 {
            create(&mut t, format!("/bench/d{}", i / 1000));
        }
        create(&mut t, format!("/bench/d{}/n{}", i / 1000, i % 1000));
    }
    let p = rzk_storage::snapshot::write_snapshot(&dir, &t, &[], rzk_storage::Compression::Checked).expect("snapshot");
    println!("{} ({} znodes)", p.display(), t.node_count() - 1);
}
