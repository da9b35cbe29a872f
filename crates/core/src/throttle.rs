//! Connection and large-request throttling, as ZooKeeper's `BlueThrottle` and
//! `ZooKeeperServer`'s large-request accounting do them, as pure structures: the time and the
//! random draws are arguments.
//!
//! - [`BlueThrottle`]: a token bucket every new connection request takes tokens from
//!   (`connection_throttle_tokens`, refilled `fill_count` per `fill_time` ms), with BLUE's
//!   random early drop when `freeze_time` is set: the drop chance rises by `drop_increase`
//!   each freeze period the bucket is empty and falls by `drop_decrease` each period it is
//!   at most `decrease_ratio` used. With `weight_enabled`, a new global session takes
//!   `global_weight` tokens, a local one `local_weight`, a reconnection `renew_weight`.
//! - [`LargeRequests`]: requests over `largeRequestThreshold` bytes may together hold at
//!   most `largeRequestMaxBytes` while they are in process; a connection whose large request
//!   would go over is closed (ZooKeeper's "Rejecting large request").

use rzk_proto::rng::Rng;

/// `zookeeper.connection_throttle_*`, as ZooKeeper reads them (weights already applied to
/// the token counts, as its static initialiser does).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionThrottleConfig {
    /// `connection_throttle_tokens` (0: off); times `global_weight` with weights on.
    pub max_tokens: i64,
    /// `connection_throttle_fill_time` (ms, default 1).
    pub fill_time_ms: i64,
    /// `connection_throttle_fill_count` (default 1); times `global_weight` with weights on.
    pub fill_count: i64,
    /// `connection_throttle_freeze_time` (ms; -1, the default, turns BLUE's random drop off).
    pub freeze_time_ms: i64,
    pub drop_increase: f64,
    pub drop_decrease: f64,
    pub decrease_ratio: f64,
    /// `connection_throttle_weight_enabled` with its (global, local, renew) weights.
    pub weights: Option<(i64, i64, i64)>,
}

impl Default for ConnectionThrottleConfig {
    fn default() -> Self {
        ConnectionThrottleConfig {
            max_tokens: 0,
            fill_time_ms: 1,
            fill_count: 1,
            freeze_time_ms: -1,
            drop_increase: 0.02,
            drop_decrease: 0.002,
            decrease_ratio: 0.0,
            weights: None,
        }
    }
}

/// What kind of connection request asks for tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectKind {
    NewGlobal,
    NewLocal,
    Renew,
}

/// ZooKeeper's `BlueThrottle`.
#[derive(Debug)]
pub struct BlueThrottle {
    cfg: ConnectionThrottleConfig,
    tokens: i64,
    last_ms: i64,
    last_freeze_ms: i64,
    drop: f64,
    rng: Rng,
}

impl BlueThrottle {
    pub fn new(cfg: ConnectionThrottleConfig, now_ms: i64, seed: u64) -> BlueThrottle {
        BlueThrottle { tokens: cfg.max_tokens, last_ms: now_ms, last_freeze_ms: now_ms, drop: 0.0, rng: Rng::new(seed), cfg }
    }

    pub fn enabled(&self) -> bool {
        self.cfg.max_tokens != 0
    }

    /// Tokens a connection request of this kind needs.
    pub fn tokens_for(&self, kind: ConnectKind) -> i64 {
        match (self.cfg.weights, kind) {
            (None, _) => 1,
            (Some((g, _, _)), ConnectKind::NewGlobal) => g,
            (Some((_, l, _)), ConnectKind::NewLocal) => l,
            (Some((_, _, r)), ConnectKind::Renew) => r,
        }
    }

    /// `checkLimit`: whether a connection request needing `need` tokens may go on.
    pub fn check_limit(&mut self, need: i64, now_ms: i64) -> bool {
        if self.cfg.max_tokens == 0 {
            return true;
        }
        let diff = now_ms - self.last_ms;
        if diff > self.cfg.fill_time_ms {
            let refill = diff * self.cfg.fill_count / self.cfg.fill_time_ms.max(1);
            self.tokens = (self.tokens + refill).min(self.cfg.max_tokens);
            self.last_ms = now_ms;
        }
        if self.cfg.freeze_time_ms != -1 && !self.check_blue(now_ms) {
            return false;
        }
        if self.tokens < need {
            return false;
        }
        self.tokens -= need;
        true
    }

    /// `checkBlue`: adjusts the drop chance once per freeze period, then draws.
    fn check_blue(&mut self, now_ms: i64) -> bool {
        let used = self.cfg.max_tokens - self.tokens;
        let threshold = (self.cfg.max_tokens as f64 * self.cfg.decrease_ratio).round() as i64;
        if now_ms - self.last_freeze_ms > self.cfg.freeze_time_ms {
            if used == self.cfg.max_tokens && self.drop < 1.0 {
                self.drop = (self.drop + self.cfg.drop_increase).min(1.0);
            } else if used <= threshold && self.drop > 0.0 {
                self.drop = (self.drop - self.cfg.drop_decrease).max(0.0);
            }
            self.last_freeze_ms = now_ms;
        }
        let draw = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        draw >= self.drop
    }

    /// `getDeficit`: tokens used and not yet refilled.
    #[cfg(test)]
    fn deficit(&self) -> i64 {
        self.cfg.max_tokens - self.tokens
    }
}

/// ZooKeeper's large-request accounting (`largeRequestThreshold`, `largeRequestMaxBytes`).
#[derive(Debug, Clone)]
pub struct LargeRequests {
    /// Requests of more than this many bytes are large (-1: none is).
    pub threshold: i64,
    /// Bytes large requests in process may hold together.
    pub max_bytes: i64,
    /// Bytes of the large requests in process.
    pub current: i64,
}

impl LargeRequests {
    pub fn new(threshold: i64, max_bytes: i64) -> LargeRequests {
        LargeRequests { threshold, max_bytes, current: 0 }
    }

    pub fn is_large(&self, len: usize) -> bool {
        self.threshold != -1 && len as i64 > self.threshold
    }

    /// `checkRequestSizeWhenReceivingMessage`: whether a frame of `len` bytes may be taken.
    pub fn admits(&self, len: usize) -> bool {
        !self.is_large(len) || self.current + len as i64 <= self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(tokens: i64) -> ConnectionThrottleConfig {
        ConnectionThrottleConfig { max_tokens: tokens, fill_time_ms: 100, fill_count: 1, ..Default::default() }
    }

    #[test]
    fn token_bucket_refills_by_fill_count_per_fill_time() {
        let mut t = BlueThrottle::new(cfg(3), 0, 1);
        assert!(t.check_limit(1, 0) && t.check_limit(1, 0) && t.check_limit(1, 0));
        assert!(!t.check_limit(1, 50), "empty until a fill time has passed");
        assert_eq!(t.deficit(), 3);
        assert!(t.check_limit(1, 101), "one token back after 101 ms");
        assert!(!t.check_limit(1, 150));
        assert!(t.check_limit(2, 400), "two back after another 299 ms (whole fill times only)");
        assert_eq!(t.deficit(), 3);
        assert!(t.check_limit(1, 1000), "capped at the maximum after a long pause");
        assert_eq!(t.deficit(), 1);
    }

    #[test]
    fn zero_tokens_is_off_and_weights_set_what_a_request_takes() {
        let mut t = BlueThrottle::new(cfg(0), 0, 1);
        assert!(!t.enabled());
        assert!((0..1000).all(|_| t.check_limit(1, 0)));
        let w = BlueThrottle::new(ConnectionThrottleConfig { weights: Some((3, 1, 2)), ..cfg(9) }, 0, 1);
        assert_eq!(w.tokens_for(ConnectKind::NewGlobal), 3);
        assert_eq!(w.tokens_for(ConnectKind::NewLocal), 1);
        assert_eq!(w.tokens_for(ConnectKind::Renew), 2);
    }

    #[test]
    fn blue_drops_at_random_once_the_bucket_stays_empty() {
        let c = ConnectionThrottleConfig { freeze_time_ms: 10, drop_increase: 0.5, ..cfg(1) };
        let mut t = BlueThrottle::new(c, 0, 7);
        assert!(t.check_limit(1, 0));
        // Empty for two freeze periods: the drop chance reaches 1, so even with a token
        // back the request is refused.
        assert!(!t.check_limit(1, 11));
        assert!(!t.check_limit(1, 22));
        assert!(t.drop >= 1.0);
    }

    #[test]
    fn large_requests_share_a_byte_budget() {
        let mut l = LargeRequests::new(100, 250);
        assert!(!l.is_large(100) && l.is_large(101));
        assert!(l.admits(200));
        l.current = 200;
        assert!(!l.admits(101) && l.admits(50));
        assert!(LargeRequests::new(-1, 0).admits(1 << 30));
    }
}
