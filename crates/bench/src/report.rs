//! Measurements and how they are shown: HDR latency histograms (microseconds), error counts
//! by ZooKeeper error code, the client's own CPU time (`getrusage`), the progress line on
//! stderr, and the text and JSON reports.

use crate::{error_name, Settings, Workload};
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The percentiles reported in JSON (`percentiles`) and drawn in charts.
pub const PERCENTILES: [f64; 10] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 99.999, 100.0];

/// A latency histogram in microseconds, 1 µs to 1 hour, 3 significant digits.
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Records a duration in microseconds (at least 1).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_micros() as u64).max(1));
}

/// What one worker (or a whole run) counted.
pub struct Tally {
    /// Every measured operation.
    pub hist: Histogram<u64>,
    /// Per kind of operation, when a workload mixes kinds (mixed: get and set).
    pub by_op: BTreeMap<&'static str, Histogram<u64>>,
    /// Replies with a non-zero error, by code.
    pub errors: BTreeMap<i32, u64>,
    pub ops: u64,
    /// The last measured reply.
    pub last: Option<Instant>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally { hist: new_hist(), by_op: BTreeMap::new(), errors: BTreeMap::new(), ops: 0, last: None }
    }
}

impl Tally {
    pub fn record(&mut self, op: Option<&'static str>, d: Duration, err: i32, at: Instant) {
        record(&mut self.hist, d);
        if let Some(op) = op {
            record(self.by_op.entry(op).or_insert_with(new_hist), d);
        }
        if err != 0 {
            *self.errors.entry(err).or_default() += 1;
        }
        self.ops += 1;
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
    }

    pub fn merge(&mut self, o: Tally) {
        self.hist.add(&o.hist).expect("same histogram bounds");
        for (k, h) in o.by_op {
            self.by_op.entry(k).or_insert_with(new_hist).add(&h).expect("same histogram bounds");
        }
        for (k, n) in o.errors {
            *self.errors.entry(k).or_default() += n;
        }
        self.ops += o.ops;
        self.last = match (self.last, o.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// CPU time of this process, from `getrusage(RUSAGE_SELF)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    pub user_s: f64,
    pub sys_s: f64,
    pub wall_s: f64,
}

impl CpuUse {
    /// CPU time over wall time; 100 means one core busy all the time.
    pub fn percent(&self) -> f64 {
        if self.wall_s > 0.0 {
            100.0 * (self.user_s + self.sys_s) / self.wall_s
        } else {
            0.0
        }
    }
}

/// Starts measuring this process's CPU use.
pub struct CpuClock {
    user_s: f64,
    sys_s: f64,
    wall: Instant,
}

fn rusage_self() -> (f64, f64) {
    // SAFETY: getrusage writes a plain C struct we own; all-zero is a valid initial value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return (0.0, 0.0);
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

impl CpuClock {
    pub fn start() -> CpuClock {
        let (user_s, sys_s) = rusage_self();
        CpuClock { user_s, sys_s, wall: Instant::now() }
    }
    pub fn stop(&self) -> CpuUse {
        let (u, s) = rusage_self();
        CpuUse { user_s: u - self.user_s, sys_s: s - self.sys_s, wall_s: self.wall.elapsed().as_secs_f64() }
    }
}

/// Completed-operation counter shared with the progress line.
#[derive(Default)]
pub struct Progress {
    pub done: AtomicU64,
    stop: AtomicBool,
}

impl Progress {
    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}

/// The thread that prints the progress line; stops and clears the line when dropped.
pub struct ProgressLine {
    progress: Arc<Progress>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressLine {
    /// Prints `label`, elapsed seconds (of `total` when known) and the recent rate to stderr:
    /// every second on a terminal (rewriting one line), every 5 s otherwise.
    pub fn start(label: String, quiet: bool, total: Option<Duration>, unit: &'static str) -> ProgressLine {
        let progress = Arc::new(Progress::default());
        if quiet {
            return ProgressLine { progress, thread: None };
        }
        let p = progress.clone();
        let thread = std::thread::Builder::new()
            .name("bench-progress".into())
            .spawn(move || {
                let tty = std::io::stderr().is_terminal();
                let every = Duration::from_secs(if tty { 1 } else { 5 });
                let start = Instant::now();
                let (mut last_t, mut last_n) = (start, 0u64);
                let mut next = start + every;
                while !p.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let now = Instant::now();
                    if now < next {
                        continue;
                    }
                    next += every;
                    let n = p.done.load(Ordering::Relaxed);
                    let rate = (n - last_n) as f64 / (now - last_t).as_secs_f64();
                    (last_t, last_n) = (now, n);
                    let el = (now - start).as_secs_f64();
                    let of = total.map(|t| format!("/{:.0}s", t.as_secs_f64())).unwrap_or_default();
                    let line = format!("[{label}] {el:.0}s{of}  {} {unit}  {} {unit}/s", group(n), group(rate as u64));
                    let mut e = std::io::stderr().lock();
                    if tty {
                        let _ = write!(e, "\r\x1b[2K{line}");
                    } else {
                        let _ = writeln!(e, "{line}");
                    }
                    let _ = e.flush();
                }
                if tty {
                    let _ = write!(std::io::stderr(), "\r\x1b[2K");
                }
            })
            .ok();
        ProgressLine { progress, thread }
    }

    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.progress.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// 1234567 → "1,234,567".
#[allow(clippy::manual_is_multiple_of)] // is_multiple_of is newer than rust-version
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Everything a run measured.
pub struct RunResult {
    pub workload: Workload,
    pub tally: Tally,
    /// The measured phase, from its start to the last measured reply.
    pub elapsed: Duration,
    /// The client's CPU over the whole run (warm-up and measured phase, not setup).
    pub cpu: CpuUse,
    /// What the main histogram measures ("request latency", "fan-out time", ...).
    pub latency_of: &'static str,
    /// Workload-specific numbers.
    pub extra: Map<String, Value>,
    /// Workload-specific histograms (e.g. each watch notification).
    pub extra_hists: Vec<(&'static str, Histogram<u64>)>,
}

impl RunResult {
    pub fn ops_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.tally.ops as f64 / s
        } else {
            0.0
        }
    }

    pub fn to_json(&self, s: &Settings) -> Value {
        let a = &s.args;
        let mut by_op = Map::new();
        for (k, h) in &self.tally.by_op {
            by_op.insert((*k).to_string(), hist_json(h));
        }
        let mut extra_h = Map::new();
        for (k, h) in &self.extra_hists {
            extra_h.insert((*k).to_string(), hist_json(h));
        }
        let errors: Map<String, Value> = self.tally.errors.iter().map(|(c, n)| (format!("{} ({c})", error_name(*c)), json!(n))).collect();
        json!({
            "workload": self.workload.name(),
            "servers": a.servers,
            "clients": a.clients,
            "inflight": a.inflight,
            "threads": a.threads,
            "value_size": a.value_size,
            "ops": self.tally.ops,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "ops_per_sec": self.ops_per_sec(),
            "latency_of": self.latency_of,
            "latency_us": hist_json(&self.tally.hist),
            "by_op": by_op,
            "errors": errors,
            "error_count": self.tally.errors.values().sum::<u64>(),
            "client_cpu": {
                "user_s": self.cpu.user_s,
                "sys_s": self.cpu.sys_s,
                "wall_s": self.cpu.wall_s,
                "percent": self.cpu.percent(),
            },
            "extra": self.extra,
            "extra_latency_us": extra_h,
        })
    }

    pub fn to_text(&self, s: &Settings) -> String {
        let a = &s.args;
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("{k:<15} {v}\n"));
        line(
            "workload",
            format!(
                "{} ({} sessions x {} in flight, {}-byte values, {} client thread{})",
                self.workload.name(),
                a.clients,
                a.inflight,
                a.value_size,
                a.threads,
                if a.threads == 1 { "" } else { "s" }
            ),
        );
        line("servers", a.servers.join(","));
        line(
            "ops",
            format!("{} in {:.2} s = {} ops/s", group(self.tally.ops), self.elapsed.as_secs_f64(), group(self.ops_per_sec() as u64)),
        );
        line(self.latency_of, hist_text(&self.tally.hist));
        for (k, h) in &self.tally.by_op {
            line(&format!("  {k}"), hist_text(h));
        }
        for (k, h) in &self.extra_hists {
            line(k, hist_text(h));
        }
        let errors = if self.tally.errors.is_empty() {
            "none".to_string()
        } else {
            self.tally.errors.iter().map(|(c, n)| format!("{} ({c}): {}", error_name(*c), group(*n))).collect::<Vec<_>>().join(", ")
        };
        line("errors", errors);
        let pct = self.cpu.percent();
        let per_thread = pct / a.threads as f64;
        line(
            "client CPU",
            format!(
                "{pct:.0}% of one core (user {:.2} s, sys {:.2} s){}",
                self.cpu.user_s,
                self.cpu.sys_s,
                if per_thread > 85.0 { "  ** the client is saturated: numbers are a lower bound; try --threads **" } else { "" }
            ),
        );
        for (k, v) in &self.extra {
            let v = match v.as_f64() {
                Some(f) if v.is_f64() => format!("{f:.1}"),
                _ => v.to_string(),
            };
            line(k, v);
        }
        out
    }
}

fn ms(us: u64) -> String {
    format!("{:.3} ms", us as f64 / 1000.0)
}

pub fn hist_text(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".into();
    }
    format!(
        "p50 {}  p99 {}  p99.9 {}  max {}  (mean {})",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
        ms(h.mean() as u64)
    )
}

pub fn hist_json(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({ "count": 0 });
    }
    let pcts: Vec<Value> = PERCENTILES.iter().map(|p| json!([p, h.value_at_percentile(*p)])).collect();
    json!({
        "count": h.len(),
        "min": h.min(),
        "mean": h.mean(),
        "p50": h.value_at_quantile(0.5),
        "p90": h.value_at_quantile(0.9),
        "p99": h.value_at_quantile(0.99),
        "p999": h.value_at_quantile(0.999),
        "max": h.max(),
        "percentiles": pcts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
    }

    #[test]
    fn tallies_merge() {
        let now = Instant::now();
        let mut a = Tally::default();
        a.record(Some("get"), Duration::from_micros(100), 0, now);
        let mut b = Tally::default();
        b.record(Some("set"), Duration::from_micros(300), -101, now + Duration::from_millis(1));
        a.merge(b);
        assert_eq!(a.ops, 2);
        assert_eq!(a.errors.get(&-101), Some(&1));
        assert_eq!(a.by_op.len(), 2);
        assert_eq!(a.last, Some(now + Duration::from_millis(1)));
        assert!(a.hist.max() >= 299);
    }

    #[test]
    fn cpu_clock_counts_work() {
        let c = CpuClock::start();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let u = c.stop();
        assert!(u.user_s + u.sys_s > 0.0);
        assert!(u.percent() > 0.0);
    }
}
