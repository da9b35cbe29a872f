//! The simulator's only source of randomness: rzk's one PRNG (`rzk_proto::rng`, SplitMix64)
//! seeded from the run's seed. Its output is pinned there, so a seed replays the same trace.

pub use rzk_proto::rng::Rng;
