//! Leader election: run while leader, told when leadership is in doubt or lost.
//!
//! ```sh
//! cargo run --example election -p rzk-client -- --server 127.0.0.1:2181 --path /demo/election
//! ```
//! Start several; one leads (for `--hold-ms`, then resigns, `--rounds` times), the others
//! wait their turn. Compatible with kazoo's `Election` on the same path.
//!
//! Options: `--server`, `--path`, `--id`, `--hold-ms`, `--rounds`.

mod common;

use rzk_client::recipes::election::LeaderElection;
use rzk_client::recipes::Holding;
use rzk_client::{Client, Error};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = common::Args::parse();
    let server = args.get("server", "127.0.0.1:2181");
    let path = args.get("path", "/rzk-examples/election");
    let id = args.get("id", &format!("rzk-{}", std::process::id()));
    let hold = Duration::from_millis(args.num("hold-ms", 3000));
    let zk = Client::connect(&server).await?;
    let election = LeaderElection::new(&zk, &path, &id);
    for _ in 0..args.num("rounds", 1) {
        let id2 = id.clone();
        let outcome = election
            .run(|mut lead| async move {
                println!("LEADING {id2} token={} at={}", lead.fencing_token(), common::now_ms());
                let until = tokio::time::Instant::now() + hold;
                let mut status = Holding::Held;
                // Do the leader's work, watching for doubt.
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => break,
                        s = lead.changed(status) => {
                            status = s;
                            println!("STATUS {id2} {s:?}");
                        }
                    }
                }
                println!("RESIGNED {id2} at={}", common::now_ms());
            })
            .await?;
        if outcome.is_none() {
            println!("LOST {id} at={}", common::now_ms());
        }
    }
    zk.close().await;
    Ok(())
}
