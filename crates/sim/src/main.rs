//! `rzk-sim`: run simulator seeds from the command line.
//!
//! ```text
//! rzk-sim --seed 42                 # replay one seed, print its report and trace hash
//! rzk-sim --seeds 10000 --start 1   # a long run: seeds 1..=10000
//! rzk-sim --seeds 500 --voters 7    # force the ensemble size
//! rzk-sim --seeds 200 --no-reconfig  # without the dynamic reconfig workload (on in one seed in five)
//! ```

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Deterministic simulation of rzk ensembles (ZAB + DataTree) under faults")]
struct Args {
    /// Run exactly this seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Run this many seeds, starting at --start.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    #[arg(long, default_value_t = 1)]
    start: u64,
    /// Force the number of voters (3, 5, 7...).
    #[arg(long)]
    voters: Option<usize>,
    /// Force the length of the safety phase, in ticks.
    #[arg(long)]
    safety_ticks: Option<u64>,
    /// Turn the dynamic reconfig workload off (it is on in one seed in five, as in the CI
    /// seeds: see SimConfig::reconfig).
    #[arg(long)]
    no_reconfig: bool,
    /// Accepted for compatibility: the reconfig workload is on by default now.
    #[arg(long, hide = true)]
    reconfig: bool,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let seeds: Vec<u64> = match a.seed {
        Some(s) => vec![s],
        None => (a.start..a.start + a.seeds).collect(),
    };
    let t = std::time::Instant::now();
    let r = rzk_sim::run_many(seeds, |c| {
        if let Some(v) = a.voters {
            c.voters = v;
        }
        if let Some(s) = a.safety_ticks {
            c.safety_ticks = s;
        }
        if a.no_reconfig {
            c.reconfig = false;
        }
    });
    match r {
        Ok(reports) => {
            if a.seed.is_some() {
                println!("{:#?}", reports[0]);
            }
            println!("{}", rzk_sim::summarize(&reports));
            println!("({:.1}s)", t.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("FAILED {f}");
            ExitCode::FAILURE
        }
    }
}
