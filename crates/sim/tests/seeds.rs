//! The simulator as a test: determinism, and a batch of seeds with every checker on.
//!
//! `cargo test -p rzk-sim` (debug) runs a small batch; CI runs the big one with
//! `cargo test --release --locked -p rzk-sim -- --nocapture` (a few thousand seeds, about a
//! minute on two cores; one seed in five runs the dynamic reconfig workload, as `rzk-sim`
//! does). `RZK_SIM_SEEDS=N` overrides the count, `RZK_SIM_START=S` the first
//! seed; any failure prints the seed and the command that replays it.

use rzk_sim::{run, run_many, summarize, SimConfig};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 17, 123] {
        let a = run(SimConfig::from_seed(seed)).expect("seed passes");
        let b = run(SimConfig::from_seed(seed)).expect("seed passes");
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed} is not deterministic");
        assert_eq!((a.ticks, a.committed, a.acked_writes), (b.ticks, b.committed, b.acked_writes));
    }
    let x = run(SimConfig::from_seed(5)).unwrap().trace_hash;
    let y = run(SimConfig::from_seed(6)).unwrap().trace_hash;
    assert_ne!(x, y, "different seeds should give different traces");
}

#[test]
fn every_ensemble_size_survives_heavy_faults() {
    // Fixed sizes with the heaviest fault mix, so 3, 5 and 7 are always covered.
    for (voters, seed) in [(3usize, 1000u64), (5, 1001), (7, 1002)] {
        let mut cfg = SimConfig::from_seed(seed);
        cfg.voters = voters;
        cfg.observers = 1;
        let f = &mut cfg.faults;
        f.election_loss = 0.1;
        f.election_dup = 0.1;
        f.conn_reset = 0.004;
        f.crash = 0.004;
        f.partition = 0.008;
        f.slow_disk = 0.004;
        let r = run(cfg).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.committed > 0 && r.crashes > 0, "{r:?}");
    }
}

#[test]
fn many_seeds() {
    let default = if cfg!(debug_assertions) { 120 } else { 4000 };
    let n = env_u64("RZK_SIM_SEEDS").unwrap_or(default);
    let start = env_u64("RZK_SIM_START").unwrap_or(1);
    let t = std::time::Instant::now();
    // Two threads (CI has two cores); each seed is independent and deterministic.
    let mid = start + n / 2;
    let (a, b) = std::thread::scope(|s| {
        let h1 = s.spawn(|| run_many(start..mid, |_| {}));
        let h2 = s.spawn(|| run_many(mid..start + n, |_| {}));
        (h1.join().expect("thread"), h2.join().expect("thread"))
    });
    let mut reports = a.unwrap_or_else(|f| panic!("FAILED {f}"));
    reports.extend(b.unwrap_or_else(|f| panic!("FAILED {f}")));
    println!("{}", summarize(&reports));
    println!(
        "fault mix: each seed scales the base mix by one of {:?} (per message / per server-tick): {}",
        rzk_sim::FAULT_INTENSITIES,
        rzk_sim::Faults::base().summary()
    );
    println!("({} seeds from {start} in {:.1}s)", reports.len(), t.elapsed().as_secs_f64());
    assert_eq!(reports.len() as u64, n);
}
