//! A distributed lock with a fencing token.
//!
//! ```sh
//! cargo run --example lock -p rzk-client -- --server 127.0.0.1:2181 --path /demo/lock --hold-ms 2000
//! ```
//! Run it in two terminals: the second waits for the first. Each grant prints its fencing
//! token (the lock node's czxid), which grows with every grant. While holding, the example
//! writes its id to `<path>-owner` and checks nobody overwrote it (the kazoo interop test
//! runs this next to kazoo's Lock on the same path).
//!
//! Options: `--server`, `--path`, `--id`, `--hold-ms`, `--rounds`.

mod common;

use rzk_client::recipes::lock::Lock;
use rzk_client::{Client, CreateOptions, Error};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = common::Args::parse();
    let server = args.get("server", "127.0.0.1:2181");
    let path = args.get("path", "/rzk-examples/lock");
    let id = args.get("id", &format!("rzk-{}", std::process::id()));
    let hold = Duration::from_millis(args.num("hold-ms", 2000));
    let owner = format!("{path}-owner");
    let zk = Client::connect(&server).await?;
    match zk.create(&owner, b"", &CreateOptions::persistent()).await {
        Ok(_) | Err(Error::NodeExists) => {}
        Err(Error::NoNode) => {
            rzk_client::recipes::ensure_path(&zk, rzk_client::path::parent(&owner)).await?;
            let _ = zk.create(&owner, b"", &CreateOptions::persistent()).await;
        }
        Err(e) => return Err(e),
    }
    let lock = Lock::new(&zk, &path, &id);
    for _ in 0..args.num("rounds", 1) {
        let guard = lock.acquire().await?;
        println!("ACQUIRED {id} token={} at={}", guard.fencing_token(), common::now_ms());
        zk.set_data(&owner, id.as_bytes(), -1).await?;
        tokio::time::sleep(hold).await;
        let (who, _) = zk.get_data(&owner).await?;
        if who != id.as_bytes() {
            println!("VIOLATION {id} saw {}", String::from_utf8_lossy(&who));
        }
        println!("RELEASED {id} at={}", common::now_ms());
        guard.release().await?;
    }
    zk.close().await;
    Ok(())
}
