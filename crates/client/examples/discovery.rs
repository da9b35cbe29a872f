//! Service discovery: register an instance and watch the live set.
//!
//! ```sh
//! cargo run --example discovery -p rzk-client -- --server 127.0.0.1:2181 --port 8080
//! ```
//! Each run registers one instance of service `api` (an ephemeral node with a JSON payload)
//! and prints the live set whenever it changes; start several, stop some (Ctrl-C) and watch
//! them come and go. `--seconds N` exits after N seconds.

mod common;

use rzk_client::recipes::discovery::{register, ServiceInstance, ServiceWatcher};
use rzk_client::{Client, Error};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = common::Args::parse();
    let server = args.get("server", "127.0.0.1:2181");
    let base = args.get("base", "/rzk-examples/services");
    let port = args.num("port", 8080) as u16;
    let zk = Client::connect(&server).await?;
    let me = ServiceInstance {
        name: "api".into(),
        id: args.get("id", &format!("api-{}", std::process::id())),
        address: "127.0.0.1".into(),
        port,
        payload: serde_json::json!({"version": env!("CARGO_PKG_VERSION")}),
    };
    let registration = register(&zk, &base, &me).await?;
    let mut watcher = ServiceWatcher::start(&zk, &base, "api").await?;
    let show = |v: &[ServiceInstance]| {
        let live: Vec<String> = v.iter().map(|i| format!("{}@{}:{}", i.id, i.address, i.port)).collect();
        println!("LIVE {}", live.join(" "));
    };
    show(&watcher.instances());
    let stop = tokio::time::sleep(Duration::from_secs(args.num("seconds", u64::MAX / 4)));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            v = watcher.changed() => show(&v?),
            _ = registration.lost() => { println!("registration lost (session ended)"); break; }
            _ = tokio::signal::ctrl_c() => break,
            _ = &mut stop => break,
        }
    }
    registration.unregister().await.ok();
    zk.close().await;
    Ok(())
}
