//! The pipelined closed-loop workloads: create, set, get, mixed, exists, children, multi and
//! the `load` step.
//!
//! Each session keeps `--inflight` requests outstanding: it writes every request it may send
//! in one write, reads whatever replies have arrived, and refills. ZooKeeper answers a
//! session's requests in order, so the outstanding requests are a FIFO and a reply must carry
//! the xid at its front (anything else fails the run). One clock reading stamps each batch of
//! requests and each batch of replies.
//!
//! Phases: setup (one session creates the znodes the workload needs, ignoring NodeExists so
//! runs can be repeated against one server), connect (every session, before the clock
//! starts), warm-up (the same load, not recorded), measured.

use crate::conn::{req, Incoming, Session};
use crate::report::{CpuClock, ProgressLine, RunResult, Tally};
use crate::{BenchError, Settings, Workload};
use rzk_proto::rng::Rng;
use rzk_proto::{ErrorCode, OpCode};
use serde_json::{json, Map};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// When measuring starts and ends, shared by every session of a run.
pub(crate) struct Clock {
    pub measure_start: Instant,
    pub deadline: Option<Instant>,
    ops_max: Option<u64>,
    admitted: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    Warmup,
    Measured,
    Stop,
}

impl Clock {
    pub fn new(warmup: Duration, duration: Option<Duration>, ops_max: Option<u64>) -> Clock {
        let measure_start = Instant::now() + warmup;
        Clock { measure_start, deadline: duration.map(|d| measure_start + d), ops_max, admitted: AtomicU64::new(0) }
    }

    /// May another operation start at `now`, and does it count?
    pub fn admit(&self, now: Instant) -> Admit {
        if now < self.measure_start {
            return Admit::Warmup;
        }
        if self.deadline.is_some_and(|d| now >= d) {
            return Admit::Stop;
        }
        match self.ops_max {
            Some(max) if self.admitted.fetch_add(1, Ordering::Relaxed) >= max => Admit::Stop,
            _ => Admit::Measured,
        }
    }
}

/// The znodes a workload works on, made by setup.
pub(crate) struct Spec {
    kind: Workload,
    keys: Vec<String>,
    parents: Vec<String>,
    value: Vec<u8>,
    /// One parent per session for create and multi.
    client_dirs: Vec<String>,
    /// Reads below this threshold out of 2^32 (mixed).
    read_threshold: u64,
    multi_size: usize,
    load: Option<LoadSpec>,
}

struct LoadSpec {
    prefix: String,
    nodes: u64,
    fanout: u64,
    next: AtomicU64,
}

impl LoadSpec {
    fn path(&self, i: u64) -> String {
        format!("{}/d{:06}/n{:06}", self.prefix, i / self.fanout, i % self.fanout)
    }
}

/// One session's request generator.
struct Gen {
    spec: Arc<Spec>,
    client: usize,
    rng: Rng,
    seq: u64,
}

impl Gen {
    /// Pushes the next request; returns its xid and, for mixed, which kind it was. `None`
    /// when the workload has nothing more to send (load: the tree is full).
    fn push(&mut self, s: &mut Session) -> Option<(i32, Option<&'static str>)> {
        let spec = &*self.spec;
        Some(match spec.kind {
            Workload::Get => {
                let k = &spec.keys[self.rng.index(spec.keys.len())];
                (s.push(OpCode::GetData, |w| req::path_watch(w, k, false)), None)
            }
            Workload::Exists => {
                let k = &spec.keys[self.rng.index(spec.keys.len())];
                (s.push(OpCode::Exists, |w| req::path_watch(w, k, false)), None)
            }
            Workload::Set => {
                let k = &spec.keys[self.rng.index(spec.keys.len())];
                (s.push(OpCode::SetData, |w| req::set_data(w, k, &spec.value, -1)), None)
            }
            Workload::Mixed => {
                let k = &spec.keys[self.rng.index(spec.keys.len())];
                if self.rng.next_u64() >> 32 < spec.read_threshold {
                    (s.push(OpCode::GetData, |w| req::path_watch(w, k, false)), Some("get"))
                } else {
                    (s.push(OpCode::SetData, |w| req::set_data(w, k, &spec.value, -1)), Some("set"))
                }
            }
            Workload::Children => {
                let p = &spec.parents[self.rng.index(spec.parents.len())];
                (s.push(OpCode::GetChildren, |w| req::path_watch(w, p, false)), None)
            }
            Workload::Create => {
                self.seq += 1;
                let path = format!("{}/n{:010}", spec.client_dirs[self.client], self.seq);
                (s.push(OpCode::Create, |w| req::create(w, &path, &spec.value, 0)), None)
            }
            Workload::Multi => {
                let dir = &spec.client_dirs[self.client];
                let first = self.seq;
                self.seq += spec.multi_size as u64;
                let xid = s.push(OpCode::Multi, |w| {
                    for i in 0..spec.multi_size as u64 {
                        req::multi_header(w, OpCode::Create);
                        req::create(w, &format!("{dir}/n{:010}", first + i), &spec.value, 0);
                    }
                    req::multi_end(w);
                });
                (xid, None)
            }
            Workload::Load => {
                let l = spec.load.as_ref().expect("load spec");
                let i = l.next.fetch_add(1, Ordering::Relaxed);
                if i >= l.nodes {
                    return None;
                }
                let path = l.path(i);
                (s.push(OpCode::Create, |w| req::create(w, &path, &spec.value, 0)), None)
            }
            Workload::Watch | Workload::Churn | Workload::Expiry | Workload::Sessions | Workload::Watches => {
                unreachable!("not a pipelined workload")
            }
        })
    }
}

/// Creates `path` unless it exists.
pub(crate) async fn ensure(s: &mut Session, path: &str, data: &[u8]) -> Result<(), BenchError> {
    let (h, _) = s.call(OpCode::Create, |w| req::create(w, path, data, 0), |_| {}).await?;
    if h.err == 0 || h.err == ErrorCode::NodeExists.code() {
        Ok(())
    } else {
        Err(BenchError::Server { what: format!("create {path}"), code: h.err })
    }
}

/// Creates every path (pipelined, `window` at a time); existing ones are left as they are.
pub(crate) async fn create_many(
    s: &mut Session,
    paths: impl Iterator<Item = String>,
    data: &[u8],
    flags: i32,
    window: usize,
) -> Result<u64, BenchError> {
    let mut paths = paths.peekable();
    let mut pending: VecDeque<(i32, String)> = VecDeque::new();
    let mut created = 0u64;
    while paths.peek().is_some() || !pending.is_empty() {
        while pending.len() < window {
            let Some(p) = paths.next() else { break };
            let xid = s.push(OpCode::Create, |w| req::create(w, &p, data, flags));
            pending.push_back((xid, p));
        }
        s.flush().await?;
        s.read_more().await?;
        while let Some(inc) = s.next_incoming()? {
            let Incoming::Reply { header, .. } = inc else { continue };
            if header.xid == rzk_proto::codes::xid::PING {
                continue;
            }
            let (xid, path) = pending.pop_front().ok_or_else(|| BenchError::Protocol(format!("unexpected reply xid {}", header.xid)))?;
            if header.xid != xid {
                return Err(BenchError::Protocol(format!("reply xid {} while {xid} was next", header.xid)));
            }
            match header.err {
                0 => created += 1,
                e if e == ErrorCode::NodeExists.code() => {}
                e => return Err(BenchError::Server { what: format!("create {path}"), code: e }),
            }
        }
    }
    Ok(created)
}

/// Setup: the znodes the workload needs.
async fn setup(st: &Settings) -> Result<Spec, BenchError> {
    let a = &st.args;
    let mut s = Session::connect(&st.dial, 0, a.session_timeout).await?;
    let root = a.root.as_str();
    ensure(&mut s, root, b"").await?;
    let value = vec![b'x'; a.value_size];
    let mut spec = Spec {
        kind: a.workload,
        keys: Vec::new(),
        parents: Vec::new(),
        value: value.clone(),
        client_dirs: Vec::new(),
        read_threshold: (a.read_ratio * (1u64 << 32) as f64) as u64,
        multi_size: a.multi_size,
        load: None,
    };
    match a.workload {
        Workload::Get | Workload::Set | Workload::Mixed | Workload::Exists => {
            let dir = format!("{root}/keys");
            ensure(&mut s, &dir, b"").await?;
            spec.keys = (0..a.keys).map(|i| format!("{dir}/k{i:07}")).collect();
            create_many(&mut s, spec.keys.iter().cloned(), &value, 0, 512).await?;
        }
        Workload::Children => {
            let dir = format!("{root}/wide");
            ensure(&mut s, &dir, b"").await?;
            spec.parents = (0..a.parents).map(|j| format!("{dir}/p{j}")).collect();
            create_many(&mut s, spec.parents.iter().cloned(), b"", 0, 512).await?;
            let width = a.width;
            let kids = spec.parents.iter().flat_map(|p| (0..width).map(move |i| format!("{p}/c{i:06}")));
            create_many(&mut s, kids, b"", 0, 512).await?;
        }
        Workload::Create | Workload::Multi => {
            let dir = format!("{root}/{}", a.workload.name());
            ensure(&mut s, &dir, b"").await?;
            let run = format!("{dir}/{}", crate::run_token());
            ensure(&mut s, &run, b"").await?;
            spec.client_dirs = (0..a.clients).map(|c| format!("{run}/c{c}")).collect();
            create_many(&mut s, spec.client_dirs.iter().cloned(), b"", 0, 512).await?;
        }
        Workload::Load => {
            let prefix = format!("{root}/load");
            ensure(&mut s, &prefix, b"").await?;
            let dirs = a.nodes.div_ceil(a.fanout);
            create_many(&mut s, (0..dirs).map(|j| format!("{prefix}/d{j:06}")), b"", 0, 512).await?;
            spec.load = Some(LoadSpec { prefix, nodes: a.nodes, fanout: a.fanout, next: AtomicU64::new(0) });
        }
        Workload::Watch | Workload::Churn | Workload::Expiry | Workload::Sessions | Workload::Watches => {
            unreachable!("not a pipelined workload")
        }
    }
    s.close().await?;
    Ok(spec)
}

/// One session's closed loop.
async fn drive(
    mut s: Session,
    mut gen: Gen,
    clock: Arc<Clock>,
    inflight: usize,
    progress: Arc<crate::report::Progress>,
) -> Result<Tally, BenchError> {
    let mut t = Tally::default();
    // (xid, sent at, measured?, kind)
    let mut q: VecDeque<(i32, Instant, bool, Option<&'static str>)> = VecDeque::with_capacity(inflight);
    let mut stopping = false;
    loop {
        let now = Instant::now();
        while !stopping && q.len() < inflight {
            let measured = match clock.admit(now) {
                Admit::Stop => {
                    stopping = true;
                    break;
                }
                Admit::Warmup => false,
                Admit::Measured => true,
            };
            match gen.push(&mut s) {
                Some((xid, op)) => q.push_back((xid, now, measured, op)),
                None => stopping = true,
            }
        }
        if q.is_empty() {
            break;
        }
        s.flush().await?;
        s.read_more().await?;
        let at = Instant::now();
        let mut n = 0;
        while let Some(inc) = s.next_incoming()? {
            let Incoming::Reply { header, .. } = inc else { continue };
            if header.xid == rzk_proto::codes::xid::PING {
                continue;
            }
            let (xid, sent, measured, op) =
                q.pop_front().ok_or_else(|| BenchError::Protocol(format!("{}: unexpected reply xid {}", s.addr(), header.xid)))?;
            if header.xid != xid {
                return Err(BenchError::Protocol(format!(
                    "{}: reply xid {} while {xid} was next (replies out of order)",
                    s.addr(),
                    header.xid
                )));
            }
            if measured {
                t.record(op, at - sent, header.err, at);
                n += 1;
            }
        }
        progress.add(n);
    }
    // A session that is not closed lingers on the server until it expires.
    s.close().await?;
    Ok(t)
}

/// Runs a pipelined workload: setup, then `--clients` sessions over `--threads` runtimes.
pub fn pipelined(st: &Settings) -> Result<RunResult, BenchError> {
    let a = &st.args;
    let spec = Arc::new(crate::runtime()?.block_on(setup(st))?);
    let server_before = (a.workload == Workload::Load).then(|| crate::scale::ServerProbe::take(st));
    let threads = a.threads.min(a.clients);
    let cpu = CpuClock::start();
    let line = ProgressLine::start(a.workload.name().into(), a.quiet, st.duration, "ops");
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), BenchError>>();
    let mut go = Vec::new();
    let mut handles = Vec::new();
    for t in 0..threads {
        let (go_tx, go_rx) = mpsc::channel::<Arc<Clock>>();
        go.push(go_tx);
        let (spec, ready_tx, progress) = (spec.clone(), ready_tx.clone(), line.progress());
        let st = st.clone();
        handles.push(std::thread::spawn(move || -> Result<Tally, BenchError> {
            let rt = crate::runtime()?;
            let a = &st.args;
            let mine: Vec<usize> = (t..a.clients).step_by(threads).collect();
            let sessions = rt.block_on(async {
                let mut v = Vec::new();
                for &c in &mine {
                    v.push(Session::connect(&st.dial, c, a.session_timeout).await?);
                }
                Ok::<_, BenchError>(v)
            });
            let sessions = match sessions {
                Ok(s) => {
                    let _ = ready_tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(BenchError::Protocol(format!("connecting: {e}"))));
                    return Err(e);
                }
            };
            let Ok(clock) = go_rx.recv() else { return Ok(Tally::default()) };
            rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for (s, c) in sessions.into_iter().zip(mine) {
                    let gen = Gen { spec: spec.clone(), client: c, rng: Rng::new(c as u64 * 7919 + 1), seq: 0 };
                    set.spawn(drive(s, gen, clock.clone(), a.inflight, progress.clone()));
                }
                let mut total = Tally::default();
                while let Some(r) = set.join_next().await {
                    total.merge(r.map_err(|e| BenchError::Protocol(format!("session task failed: {e}")))??);
                }
                Ok(total)
            })
        }));
    }
    drop(ready_tx);
    let mut failed = None;
    for _ in 0..threads {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = Some(e),
            Err(_) => failed = failed.or(Some(BenchError::Protocol("a bench thread died while connecting".into()))),
        }
    }
    if let Some(e) = failed {
        drop(go);
        for h in handles {
            let _ = h.join();
        }
        return Err(e);
    }
    let clock = Arc::new(Clock::new(st.warmup, st.duration, a.ops));
    for g in &go {
        let _ = g.send(clock.clone());
    }
    let mut tally = Tally::default();
    let mut err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(t)) => tally.merge(t),
            Ok(Err(e)) => err = err.or(Some(e)),
            Err(_) => err = err.or(Some(BenchError::Protocol("a bench thread panicked".into()))),
        }
    }
    drop(line);
    if let Some(e) = err {
        return Err(e);
    }
    let cpu = cpu.stop();
    let elapsed = tally.last.map(|l| l.saturating_duration_since(clock.measure_start)).unwrap_or_default();
    let mut extra = Map::new();
    match a.workload {
        Workload::Multi => {
            let secs = elapsed.as_secs_f64().max(1e-9);
            extra.insert("creates_per_sec".into(), json!(tally.ops as f64 * a.multi_size as f64 / secs));
            extra.insert("multi_size".into(), json!(a.multi_size));
        }
        Workload::Load => {
            let l = spec.load.as_ref().expect("load spec");
            let failed: u64 = tally.errors.values().sum();
            extra.insert("nodes".into(), json!(a.nodes));
            extra.insert("nodes_created".into(), json!(tally.ops - failed));
            extra.insert("fanout".into(), json!(a.fanout));
            extra.insert("last_path".into(), json!(l.path(a.nodes - 1)));
            let after = crate::scale::ServerProbe::take(st);
            if let Some(before) = &server_before {
                after.report(&mut extra, before, "znode", tally.ops - failed);
            }
        }
        Workload::Mixed => {
            extra.insert("read_ratio".into(), json!(a.read_ratio));
        }
        Workload::Children => {
            extra.insert("width".into(), json!(a.width));
        }
        _ => {}
    }
    Ok(RunResult { workload: a.workload, tally, elapsed, cpu, latency_of: "latency", extra, extra_hists: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_warmup_then_ops_budget() {
        let c = Clock::new(Duration::ZERO, None, Some(2));
        let now = Instant::now();
        assert_eq!(c.admit(now), Admit::Measured);
        assert_eq!(c.admit(now), Admit::Measured);
        assert_eq!(c.admit(now), Admit::Stop);
        let c = Clock::new(Duration::from_secs(60), Some(Duration::from_secs(1)), None);
        assert_eq!(c.admit(Instant::now()), Admit::Warmup);
        assert_eq!(c.admit(Instant::now() + Duration::from_secs(120)), Admit::Stop);
    }

    #[test]
    fn load_paths() {
        let l = LoadSpec { prefix: "/bench/load".into(), nodes: 10, fanout: 1000, next: AtomicU64::new(0) };
        assert_eq!(l.path(0), "/bench/load/d000000/n000000");
        assert_eq!(l.path(1_234_567), "/bench/load/d001234/n000567");
    }
}
