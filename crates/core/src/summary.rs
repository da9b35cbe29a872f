//! A bounded summary of observed values, as ZooKeeper's `AvgMinMaxPercentileCounter` keeps
//! one for `readlatency` / `updatelatency`: count, sum, min, max since the last reset, and
//! percentiles over the most recent [`WINDOW_SAMPLES_MAX`] observations (ZooKeeper samples a
//! reservoir of about a thousand; a window of the latest keeps the core deterministic and
//! its memory fixed).

use std::collections::VecDeque;

/// Observations the percentiles are computed over, at most.
pub const WINDOW_SAMPLES_MAX: usize = 1024;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub sum: i64,
    pub min: i64,
    pub max: i64,
    window: VecDeque<i64>,
}

impl Summary {
    pub fn observe(&mut self, v: i64) {
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        if self.count == 0 || v > self.max {
            self.max = v;
        }
        self.count += 1;
        self.sum += v;
        if self.window.len() == WINDOW_SAMPLES_MAX {
            self.window.pop_front();
        }
        self.window.push_back(v);
        debug_assert!(self.window.len() <= WINDOW_SAMPLES_MAX);
    }

    /// The mean rounded to four decimals (ZooKeeper's `getAvg`); 0 with no observation.
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            ((self.sum as f64 / self.count as f64) * 10000.0).round() / 10000.0
        }
    }

    /// The `q` quantile (0 < q ≤ 1) of the window, nearest rank; `None` with no observation.
    pub fn quantile(&self, q: f64) -> Option<i64> {
        if self.window.is_empty() {
            return None;
        }
        let mut v: Vec<i64> = self.window.iter().copied().collect();
        v.sort_unstable();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_quantiles() {
        let mut s = Summary::default();
        assert_eq!((s.quantile(0.5), s.avg()), (None, 0.0));
        for v in 1..=100 {
            s.observe(v);
        }
        assert_eq!((s.count, s.sum, s.min, s.max), (100, 5050, 1, 100));
        assert_eq!(s.avg(), 50.5);
        assert_eq!(s.quantile(0.5), Some(50));
        assert_eq!(s.quantile(0.99), Some(99));
        assert_eq!(s.quantile(1.0), Some(100));
    }

    #[test]
    fn the_window_is_bounded_and_keeps_the_latest() {
        let mut s = Summary::default();
        for v in 0..(WINDOW_SAMPLES_MAX as i64 * 3) {
            s.observe(v);
        }
        assert_eq!(s.window.len(), WINDOW_SAMPLES_MAX);
        assert_eq!(s.quantile(0.0001), Some(WINDOW_SAMPLES_MAX as i64 * 2));
        assert_eq!(s.min, 0);
    }
}
