//! The scale workloads and the server probes they report with.
//!
//! - **sessions**: `--clients` sessions are opened (at most [`CONNECTING_MAX`] handshakes at a
//!   time) and held idle for `--duration` seconds, each pinging as the Java client does (every
//!   third of its negotiated timeout, spread evenly); the server's resident bytes per session,
//!   its CPU while only pings arrive, and the ping round trips are reported. Then `--expire`
//!   of them, which created one ephemeral each, vanish at once (connections dropped, sessions
//!   not closed) and an observer times until their ephemerals are gone, and how long after
//!   each one's last packet (ZooKeeper expires a session `timeout` after the last packet it
//!   heard, rounded up to the next multiple of tickTime). With `--detached N`, N sessions are
//!   first opened that each create an ephemeral and drop their connection at once: they live
//!   on the server without a file descriptor (more sessions than either side may have open
//!   files), each asking for the timeout that ends at one shared deadline; the server's
//!   resident bytes per detached session are reported, and at the deadline they all expire
//!   together while a getData probe on their parent times the server's answers (and counts
//!   their ephemerals in its Stat).
//! - **watches**: `--clients` sessions each set a data watch (exists with watch) on every one
//!   of `--keys` znodes: the server's resident bytes per watch; then `--ops` rounds (one by
//!   default) of one setData on the first znode, whose notification goes to every session: the
//!   fan-out time (from the setData sent until the last notification read) and each one's.
//!
//! [`ServerProbe`] reads the server's `/proc/PID` (with `--server-pid`: resident and peak
//! memory, CPU seconds) and its `mntr` (ZooKeeper's counters: znode_count,
//! approximate_data_size, watch_count, ...), so the same numbers come from rzk and from
//! ZooKeeper. One runtime thread runs every session of these workloads: with 100,000 sessions
//! the client itself may be what limits the fan-out (its CPU is in the report).

use crate::conn::{req, Incoming, Session};
use crate::report::{new_hist, record, CpuClock, ProgressLine, RunResult, Tally};
use crate::scenario::wait_event;
use crate::workload::{create_many, ensure};
use crate::{BenchError, Settings, Workload};
use rzk_proto::{EventType, OpCode, Reader};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Handshakes in progress at once while a scale workload opens its sessions.
pub const CONNECTING_MAX: usize = 128;
/// Messages from session tasks waiting for the coordinator.
const MESSAGES_MAX: usize = 4096;
/// Requests in flight per session while it arms its watches.
const ARM_WINDOW: usize = 128;
/// Phase values sent to session tasks (a round number otherwise).
const VANISH: u64 = u64::MAX - 1;
const CLOSE: u64 = u64::MAX;
/// How often the coordinator's own session pings while it waits for the others.
const KEEPALIVE: Duration = Duration::from_secs(1);
/// The `mntr` counters reported, as ZooKeeper names them.
const MNTR_KEYS: [&str; 7] = [
    "zk_znode_count",
    "zk_approximate_data_size",
    "zk_watch_count",
    "zk_num_alive_connections",
    "zk_ephemerals_count",
    "zk_open_file_descriptor_count",
    "zk_global_sessions",
];

/// What the server looked like at one moment.
#[derive(Debug, Clone)]
pub struct ServerProbe {
    pub rss_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    pub cpu_s: Option<f64>,
    pub at: Instant,
    pub mntr: BTreeMap<String, i64>,
}

/// A `kB` line of `/proc/PID/status`, in bytes.
fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))?;
    line[key.len() + 1..].split_whitespace().next()?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// User plus system CPU seconds of a process, from `/proc/PID/stat`.
fn proc_cpu_s(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

/// `mntr` on the client port (plaintext only): its numeric lines. Empty when the server does
/// not answer it (not whitelisted, TLS-only port).
fn mntr(st: &Settings) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    if st.dial.tls.is_some() {
        return out;
    }
    let ask = || -> std::io::Result<String> {
        let mut c = std::net::TcpStream::connect_timeout(&st.dial.addrs[0], Duration::from_secs(5))?;
        c.set_read_timeout(Some(Duration::from_secs(30)))?;
        c.write_all(b"mntr")?;
        let mut s = String::new();
        c.take(1 << 20).read_to_string(&mut s)?;
        Ok(s)
    };
    if let Ok(text) = ask() {
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('\t') {
                if let Ok(n) = v.trim().parse::<i64>() {
                    out.insert(k.to_string(), n);
                }
            }
        }
    }
    out
}

impl ServerProbe {
    pub fn take(st: &Settings) -> ServerProbe {
        let pid = st.args.server_pid;
        ServerProbe {
            rss_bytes: pid.and_then(|p| proc_status(p, "VmRSS")),
            peak_rss_bytes: pid.and_then(|p| proc_status(p, "VmHWM")),
            cpu_s: pid.and_then(proc_cpu_s),
            at: Instant::now(),
            mntr: mntr(st),
        }
    }

    /// Adds this probe (taken after `count` `unit`s were added since `before`) to a report:
    /// `server_rss_bytes`, `server_rss_before_bytes`, `server_bytes_per_<unit>`,
    /// `server_peak_rss_bytes`, and the `mntr` counters.
    pub fn report(&self, extra: &mut Map<String, Value>, before: &ServerProbe, unit: &str, count: u64) {
        if let (Some(a), Some(b)) = (self.rss_bytes, before.rss_bytes) {
            extra.insert("server_rss_before_bytes".into(), json!(b));
            extra.insert("server_rss_bytes".into(), json!(a));
            extra.insert(format!("server_bytes_per_{unit}"), json!((a as f64 - b as f64) / count.max(1) as f64));
        }
        if let Some(p) = self.peak_rss_bytes {
            extra.insert("server_peak_rss_bytes".into(), json!(p));
        }
        let m: Map<String, Value> = MNTR_KEYS.iter().filter_map(|k| self.mntr.get(*k).map(|v| ((*k).to_string(), json!(v)))).collect();
        extra.insert("mntr".into(), Value::Object(m));
    }

    /// The server's CPU use between two probes, percent of one core.
    fn cpu_percent_since(&self, before: &ServerProbe) -> Option<f64> {
        let secs = self.at.saturating_duration_since(before.at).as_secs_f64();
        Some(100.0 * (self.cpu_s? - before.cpu_s?) / secs.max(1e-9))
    }
}

/// Raises this process's open-file limit to `want` if it is lower (up to the hard limit, or
/// beyond it when privileged); a failure is left for `connect` to report.
fn raise_nofile(want: usize) {
    // SAFETY: getrlimit / setrlimit read and write a plain struct we own.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 || lim.rlim_cur as usize >= want {
            return;
        }
        let want = want as libc::rlim_t;
        let raised = libc::rlimit { rlim_cur: want, rlim_max: lim.rlim_max.max(want) };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            let capped = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            libc::setrlimit(libc::RLIMIT_NOFILE, &capped);
        }
    }
}

/// Sends a ping and reads until its reply. A notification for `watched` (NodeDataChanged)
/// that arrives meanwhile is kept in `stash`; other notifications are dropped.
async fn ping(s: &mut Session, watched: Option<&str>, stash: &mut Option<Instant>) -> Result<Duration, BenchError> {
    let t0 = Instant::now();
    s.push_ping();
    s.flush().await?;
    loop {
        while let Some(inc) = s.next_incoming()? {
            match inc {
                Incoming::Reply { header, .. } if header.xid == rzk_proto::codes::xid::PING => return Ok(t0.elapsed()),
                Incoming::Reply { header, .. } => {
                    return Err(BenchError::Protocol(format!("{}: reply xid {} while waiting for a ping", s.addr(), header.xid)))
                }
                Incoming::Notification(ev) => {
                    if Some(ev.path.as_str()) == watched && ev.event_type == EventType::NodeDataChanged.code() {
                        stash.get_or_insert_with(Instant::now);
                    }
                }
            }
        }
        s.read_more().await?;
    }
}

/// Pings the coordinator's own session if [`KEEPALIVE`] has passed since `last`.
async fn keepalive(s: &mut Session, last: &mut Instant) -> Result<(), BenchError> {
    if last.elapsed() >= KEEPALIVE {
        ping(s, None, &mut None).await?;
        *last = Instant::now();
    }
    Ok(())
}

/// Sets a data watch on every path (exists with watch, `ARM_WINDOW` in flight); each must exist.
async fn arm_all(s: &mut Session, paths: &[String]) -> Result<(), BenchError> {
    let mut pending: VecDeque<i32> = VecDeque::with_capacity(ARM_WINDOW);
    let mut next = 0;
    while next < paths.len() || !pending.is_empty() {
        while pending.len() < ARM_WINDOW && next < paths.len() {
            pending.push_back(s.push(OpCode::Exists, |w| req::path_watch(w, &paths[next], true)));
            next += 1;
        }
        s.flush().await?;
        s.read_more().await?;
        while let Some(inc) = s.next_incoming()? {
            let Incoming::Reply { header, .. } = inc else { continue };
            if header.xid == rzk_proto::codes::xid::PING {
                continue;
            }
            let want = pending.pop_front().ok_or_else(|| BenchError::Protocol(format!("unexpected reply xid {}", header.xid)))?;
            if header.xid != want {
                return Err(BenchError::Protocol(format!("reply xid {} while {want} was next", header.xid)));
            }
            if header.err != 0 {
                return Err(BenchError::Server { what: "exists (watch)".into(), code: header.err });
            }
        }
    }
    Ok(())
}

/// The number of children in a getChildren reply body.
fn children_count(body: &[u8]) -> Result<i32, BenchError> {
    Reader::new(body).read_i32().map_err(|e| BenchError::Protocol(format!("bad getChildren reply: {e}")))
}

async fn get_children(s: &mut Session, path: &str) -> Result<i32, BenchError> {
    let (h, body) = s.call(OpCode::GetChildren, |w| req::path_watch(w, path, true), |_| {}).await?;
    if h.err != 0 {
        return Err(BenchError::Server { what: format!("getChildren {path}"), code: h.err });
    }
    children_count(&body)
}

/// What a session task tells the coordinator.
enum Msg {
    /// Connected (and its ephemeral created, or its watches armed).
    Ready,
    /// A vanishing session dropped its connection; the last reply it read came at this instant.
    Vanished(Instant),
    Pinged(Duration),
    Notified(Instant),
}

/// The next message, or an error if a session failed or every task is gone.
async fn recv(rx: &mut tokio::sync::mpsc::Receiver<Result<Msg, BenchError>>) -> Result<Msg, BenchError> {
    match rx.recv().await {
        Some(m) => m,
        None => Err(BenchError::Protocol("every session task is gone".into())),
    }
}

/// Waits for `n` `Ready` messages, keeping the coordinator's session `obs` alive meanwhile.
async fn gather_ready(
    rx: &mut tokio::sync::mpsc::Receiver<Result<Msg, BenchError>>,
    n: usize,
    obs: &mut Session,
    progress: &crate::report::Progress,
) -> Result<(), BenchError> {
    let mut last = Instant::now();
    let mut ready = 0;
    while ready < n {
        match tokio::time::timeout(KEEPALIVE, recv(rx)).await {
            Ok(Ok(Msg::Ready)) => {
                ready += 1;
                progress.add(1);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {}
        }
        keepalive(obs, &mut last).await?;
    }
    Ok(())
}

/// Milliseconds from `a` to `b` (negative when `b` came first).
fn ms_between(a: Instant, b: Instant) -> f64 {
    if b >= a {
        (b - a).as_secs_f64() * 1000.0
    } else {
        -((a - b).as_secs_f64() * 1000.0)
    }
}

/// The least a detached session may still have to live when it opens; a slower opening
/// fails the run (`--detached-timeout` too short for this server's opening rate).
const DETACHED_LEFT_MIN_MS: i32 = 10_000;
/// How long before the detached sessions' deadline the getData probe starts.
const DETACHED_PROBE_LEAD: Duration = Duration::from_secs(2);
/// The pause between two probes while the detached sessions expire.
const DETACHED_PROBE_EVERY: Duration = Duration::from_millis(5);

/// Opens `--detached` sessions (at most [`CONNECTING_MAX`] handshakes at a time), each asking
/// for the timeout that ends at `deadline`, creating one ephemeral under `dir` and then
/// dropping its connection without closing the session.
async fn open_detached(
    st: &Settings,
    dir: &str,
    deadline: Instant,
    obs: &mut Session,
    progress: &crate::report::Progress,
) -> Result<(), BenchError> {
    let a = &st.args;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Msg, BenchError>>(MESSAGES_MAX);
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECTING_MAX));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..a.detached {
        let (dial, gate, tx) = (st.dial.clone(), gate.clone(), tx.clone());
        let eph = format!("{dir}/d{i:07}");
        tasks.spawn(async move {
            let r: Result<(), BenchError> = async {
                let _permit = gate.acquire().await.map_err(|_| BenchError::Protocol("gate closed".into()))?;
                let left = deadline.saturating_duration_since(Instant::now()).as_millis().min(i32::MAX as u128) as i32;
                if left < DETACHED_LEFT_MIN_MS {
                    return Err(BenchError::Protocol(format!(
                        "opening the detached sessions took too long: session {i} would live {left} ms; raise --detached-timeout"
                    )));
                }
                let mut s = Session::connect(&dial, i, left).await?;
                if s.timeout_ms != left {
                    return Err(BenchError::Protocol(format!(
                        "{}: the server granted {} ms for the {left} ms asked (raise its maxSessionTimeout)",
                        s.addr(),
                        s.timeout_ms
                    )));
                }
                let (h, _) = s.call(OpCode::Create, |w| req::create(w, &eph, b"", 1), |_| {}).await?;
                if h.err != 0 {
                    return Err(BenchError::Server { what: format!("create {eph} (ephemeral)"), code: h.err });
                }
                Ok(()) // `s` dropped: the connection closes, the session stays
            }
            .await;
            let _ = tx.send(r.map(|()| Msg::Ready)).await;
        });
    }
    drop(tx);
    gather_ready(&mut rx, a.detached, obs, progress).await?;
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| BenchError::Protocol(format!("session task failed: {e}")))?;
    }
    Ok(())
}

/// The detached sessions' mass expiry: waits (keeping `obs` alive, tallying the held
/// sessions' pings) until shortly before `deadline`, then sends getData on `dir` one after
/// another until its Stat counts no children: when the first and the last ephemeral went
/// (from the deadline) and the probe's round trips meanwhile.
async fn expire_detached(
    st: &Settings,
    dir: &str,
    deadline: Instant,
    obs: &mut Session,
    rx: &mut tokio::sync::mpsc::Receiver<Result<Msg, BenchError>>,
    tally: &mut Tally,
) -> Result<(Map<String, Value>, hdrhistogram::Histogram<u64>), BenchError> {
    let a = &st.args;
    if Instant::now() + DETACHED_PROBE_LEAD > deadline {
        return Err(BenchError::Protocol(format!(
            "the detached sessions' deadline came before their expiry could be watched: raise --detached-timeout ({} ms)",
            a.detached_timeout
        )));
    }
    let mut last = Instant::now();
    let drain = |rx: &mut tokio::sync::mpsc::Receiver<Result<Msg, BenchError>>, tally: &mut Tally| -> Result<(), BenchError> {
        while let Ok(m) = rx.try_recv() {
            if let Msg::Pinged(rtt) = m? {
                tally.record(None, rtt, 0, Instant::now());
            }
        }
        Ok(())
    };
    while Instant::now() + DETACHED_PROBE_LEAD < deadline {
        let left = (deadline - DETACHED_PROBE_LEAD).saturating_duration_since(Instant::now());
        match tokio::time::timeout(KEEPALIVE.min(left), recv(rx)).await {
            Ok(Ok(Msg::Pinged(rtt))) => tally.record(None, rtt, 0, Instant::now()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {}
        }
        keepalive(obs, &mut last).await?;
    }
    let n = a.detached as i32;
    let bound = deadline + Duration::from_millis(a.detached_timeout as u64) + Duration::from_secs(120);
    let mut probe = new_hist();
    let (mut first, mut left_at_deadline) = (None, None);
    let all = loop {
        drain(rx, tally)?;
        let t = Instant::now();
        let (h, body) = obs.call(OpCode::GetData, |w| req::path_watch(w, dir, false), |_| {}).await?;
        record(&mut probe, t.elapsed());
        if h.err != 0 {
            return Err(BenchError::Server { what: format!("getData {dir}"), code: h.err });
        }
        let left = num_children(&body)?;
        if t >= deadline && left_at_deadline.is_none() {
            left_at_deadline = Some(left);
        }
        if left < n && first.is_none() {
            first = Some(Instant::now());
        }
        if left == 0 {
            break Instant::now();
        }
        if Instant::now() > bound {
            return Err(BenchError::Protocol(format!("{left} ephemerals under {dir} still there long after their sessions' deadline")));
        }
        tokio::time::sleep(DETACHED_PROBE_EVERY).await;
    };
    let mut out = Map::new();
    out.insert("first_gone_after_deadline_ms".into(), json!(ms_between(deadline, first.unwrap_or(all))));
    out.insert("all_gone_after_deadline_ms".into(), json!(ms_between(deadline, all)));
    out.insert("left_at_deadline".into(), json!(left_at_deadline));
    out.insert("probe_count".into(), json!(probe.len()));
    out.insert("probe_p50_us".into(), json!(probe.value_at_quantile(0.5)));
    out.insert("probe_p99_us".into(), json!(probe.value_at_quantile(0.99)));
    out.insert("probe_max_us".into(), json!(probe.max()));
    Ok((out, probe))
}

/// numChildren of the Stat that ends a getData reply (data, then the Stat's 68 bytes).
fn num_children(body: &[u8]) -> Result<i32, BenchError> {
    let bad = |e: rzk_proto::DecodeError| BenchError::Protocol(format!("bad getData reply: {e}"));
    let mut r = Reader::new(body);
    r.read_buffer_opt().map_err(bad)?;
    // czxid, mzxid, ctime, mtime, version, cversion, aversion, ephemeralOwner, dataLength
    r.read_raw(8 * 4 + 4 * 3 + 8 + 4).map_err(bad)?;
    r.read_i32().map_err(bad)
}

/// Many idle sessions: memory per session, ping load, then mass expiry.
pub fn sessions(st: &Settings) -> Result<RunResult, BenchError> {
    let a = &st.args;
    raise_nofile(a.clients + 256);
    let hold = st.duration.unwrap_or(Duration::from_secs(10));
    let rt = crate::runtime()?;
    let line = ProgressLine::start("sessions".into(), a.quiet, None, "sessions");
    let progress = line.progress();
    let out = rt.block_on(async {
        let mut obs = Session::connect(&st.dial, 0, a.session_timeout).await?;
        ensure(&mut obs, &a.root, b"").await?;
        let dir = format!("{}/sessions", a.root);
        ensure(&mut obs, &dir, b"").await?;
        let run = format!("{dir}/{}", crate::run_token());
        ensure(&mut obs, &run, b"").await?;
        let before = ServerProbe::take(st);
        let cpu = CpuClock::start();
        let dead = format!("{run}-detached");
        let (deadline, detached_probe, detached_open_s) = if a.detached > 0 {
            ensure(&mut obs, &dead, b"").await?;
            let t0 = Instant::now();
            let deadline = t0 + Duration::from_millis(a.detached_timeout as u64);
            open_detached(st, &dead, deadline, &mut obs, &progress).await?;
            (Some(deadline), Some(ServerProbe::take(st)), t0.elapsed().as_secs_f64())
        } else {
            (None, None, 0.0)
        };
        let base = detached_probe.clone().unwrap_or_else(|| before.clone());

        let (phase_tx, phase_rx) = tokio::sync::watch::channel(0u64);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Msg, BenchError>>(MESSAGES_MAX);
        let gate = Arc::new(tokio::sync::Semaphore::new(CONNECTING_MAX));
        let mut tasks = tokio::task::JoinSet::new();
        let opening = Instant::now();
        for i in 0..a.clients {
            let (dial, gate, tx, mut phase) = (st.dial.clone(), gate.clone(), tx.clone(), phase_rx.clone());
            let vanishes = i < a.expire;
            let timeout = if vanishes { a.expiry_timeout } else { a.session_timeout };
            let eph = format!("{run}/e{i:07}");
            let spread = (i as f64 + 0.5) / a.clients as f64;
            tasks.spawn(async move {
                let tx2 = tx.clone();
                let r: Result<(), BenchError> = async move {
                    let permit = gate.acquire().await.map_err(|_| BenchError::Protocol("gate closed".into()))?;
                    let mut s = Session::connect(&dial, i, timeout).await?;
                    if vanishes {
                        let (h, _) = s.call(OpCode::Create, |w| req::create(w, &eph, b"", 1), |_| {}).await?;
                        if h.err != 0 {
                            return Err(BenchError::Server { what: format!("create {eph} (ephemeral)"), code: h.err });
                        }
                    }
                    drop(permit);
                    let mut heard = Instant::now();
                    let _ = tx.send(Ok(Msg::Ready)).await;
                    let interval = Duration::from_millis((s.timeout_ms / 3).max(50) as u64);
                    let mut next = tokio::time::Instant::now() + interval.mul_f64(spread);
                    loop {
                        tokio::select! {
                            changed = phase.changed() => {
                                let p = if changed.is_ok() { *phase.borrow_and_update() } else { CLOSE };
                                if p == VANISH && vanishes {
                                    // The connection is dropped, the session left to expire.
                                    let _ = tx.send(Ok(Msg::Vanished(heard))).await;
                                    return Ok(());
                                }
                                if p == CLOSE {
                                    return s.close().await;
                                }
                            }
                            _ = tokio::time::sleep_until(next) => {
                                let rtt = ping(&mut s, None, &mut None).await?;
                                heard = Instant::now();
                                let _ = tx.send(Ok(Msg::Pinged(rtt))).await;
                                next += interval;
                            }
                        }
                    }
                }
                .await;
                if let Err(e) = r {
                    let _ = tx2.send(Err(e)).await;
                }
            });
        }
        drop(tx);
        gather_ready(&mut rx, a.clients, &mut obs, &progress).await?;
        let open_s = opening.elapsed().as_secs_f64();
        let opened = ServerProbe::take(st);

        // Hold: only pings.
        let mut tally = Tally::default();
        let hold_start = Instant::now();
        let mut last = hold_start;
        while hold_start.elapsed() < hold {
            match tokio::time::timeout(KEEPALIVE.min(hold.saturating_sub(hold_start.elapsed())), recv(&mut rx)).await {
                Ok(Ok(Msg::Pinged(rtt))) => tally.record(None, rtt, 0, Instant::now()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {}
            }
            keepalive(&mut obs, &mut last).await?;
        }
        let held = ServerProbe::take(st);
        let hold_s = hold_start.elapsed().as_secs_f64();

        // Mass expiry: drop the connections of the sessions that own an ephemeral.
        let mut expiry = Map::new();
        let mut first = new_hist();
        if a.expire > 0 {
            let n = get_children(&mut obs, &run).await?;
            if n != a.expire as i32 {
                return Err(BenchError::Protocol(format!("{run} has {n} ephemerals, expected {}", a.expire)));
            }
            let t0 = Instant::now();
            let _ = phase_tx.send(VANISH);
            let bound = Duration::from_millis(a.expiry_timeout.max(0) as u64 * 2) + Duration::from_secs(120);
            let mut first_at = None;
            let (mut heard_first, mut heard_last): (Option<Instant>, Option<Instant>) = (None, None);
            let mut vanished = |at: Instant| {
                heard_first = Some(heard_first.map_or(at, |h| h.min(at)));
                heard_last = Some(heard_last.map_or(at, |h| h.max(at)));
            };
            let gone_at = loop {
                let event = async {
                    loop {
                        // Pings of the held sessions keep arriving meanwhile.
                        while let Ok(m) = rx.try_recv() {
                            match m? {
                                Msg::Pinged(rtt) => tally.record(None, rtt, 0, Instant::now()),
                                Msg::Vanished(at) => vanished(at),
                                _ => {}
                            }
                        }
                        match tokio::time::timeout(KEEPALIVE, wait_event(&mut obs, &run, EventType::NodeChildrenChanged)).await {
                            Ok(r) => return r,
                            Err(_) if t0.elapsed() > bound => {
                                return Err(BenchError::Protocol(format!(
                                    "ephemerals under {run} still there {:.0} s after their sessions vanished",
                                    bound.as_secs_f64()
                                )))
                            }
                            Err(_) => {}
                        }
                    }
                };
                let at = event.await?;
                first_at.get_or_insert(at);
                if get_children(&mut obs, &run).await? == 0 {
                    break Instant::now();
                }
            };
            record(&mut first, first_at.unwrap_or(gone_at) - t0);
            expiry.insert("expired_sessions".into(), json!(a.expire));
            expiry.insert("requested_timeout_ms".into(), json!(a.expiry_timeout));
            expiry.insert("all_gone_ms".into(), json!((gone_at - t0).as_secs_f64() * 1000.0));
            expiry.insert("first_gone_ms".into(), json!((first_at.unwrap_or(gone_at) - t0).as_secs_f64() * 1000.0));
            // Messages still queued (all vanished before the last ephemeral went).
            while let Ok(m) = rx.try_recv() {
                if let Msg::Vanished(at) = m? {
                    vanished(at);
                }
            }
            // ZooKeeper's rule: each one goes between `timeout` and `timeout + tickTime` after
            // the last packet the server heard from it (here: the last reply its client read).
            if let (Some(hf), Some(hl)) = (heard_first, heard_last) {
                let first = first_at.unwrap_or(gone_at);
                expiry.insert("first_gone_after_earliest_last_packet_ms".into(), json!(ms_between(hf, first)));
                expiry.insert("all_gone_after_latest_last_packet_ms".into(), json!(ms_between(hl, gone_at)));
                expiry.insert("last_packets_spread_ms".into(), json!(ms_between(hf, hl)));
            }
        }
        let mut detached = (Map::new(), None);
        if let Some(deadline) = deadline {
            let (m, h) = expire_detached(st, &dead, deadline, &mut obs, &mut rx, &mut tally).await?;
            detached = (m, Some(h));
        }
        let _ = phase_tx.send(CLOSE);
        while let Some(r) = tasks.join_next().await {
            r.map_err(|e| BenchError::Protocol(format!("session task failed: {e}")))?;
        }
        while let Ok(m) = rx.try_recv() {
            m?;
        }
        obs.close().await?;
        Ok::<_, BenchError>((
            cpu.stop(),
            tally,
            first,
            (before, base, detached_probe, detached_open_s),
            opened,
            held,
            open_s,
            hold_s,
            (expiry, detached),
        ))
    });
    drop(line);
    let (cpu, tally, first, (before, base, detached_probe, detached_open_s), opened, held, open_s, hold_s, (expiry, detached)) = out?;
    let mut extra = Map::new();
    extra.insert("sessions".into(), json!(a.clients));
    extra.insert("open_s".into(), json!(open_s));
    extra.insert("sessions_opened_per_sec".into(), json!(a.clients as f64 / open_s.max(1e-9)));
    extra.insert("hold_s".into(), json!(hold_s));
    extra.insert("pings_per_sec".into(), json!(tally.ops as f64 / hold_s.max(1e-9)));
    // Connected sessions: the growth since the detached ones were open (or since the start).
    opened.report(&mut extra, &base, "session", a.clients as u64);
    let detached_hist = detached.1;
    if let Some(d) = detached_probe {
        let mut dx = detached.0;
        dx.insert("sessions".into(), json!(a.detached));
        dx.insert("open_s".into(), json!(detached_open_s));
        dx.insert("sessions_opened_per_sec".into(), json!(a.detached as f64 / detached_open_s.max(1e-9)));
        if let (Some(x), Some(b)) = (d.rss_bytes, before.rss_bytes) {
            dx.insert("server_rss_bytes".into(), json!(x));
            dx.insert("server_bytes_per_session".into(), json!((x as f64 - b as f64) / a.detached as f64));
        }
        if let Some(x) = opened.rss_bytes {
            let total = (a.detached + a.clients) as f64;
            extra.insert("server_rss_all_open_bytes".into(), json!(x));
            if let Some(b) = before.rss_bytes {
                extra.insert("server_bytes_per_session_all".into(), json!((x as f64 - b as f64) / total));
            }
        }
        extra.insert("detached".into(), Value::Object(dx));
    }
    if let Some(p) = held.cpu_percent_since(&opened) {
        extra.insert("server_cpu_percent_idle".into(), json!(p));
    }
    if let Some(r) = held.rss_bytes {
        extra.insert("server_rss_after_hold_bytes".into(), json!(r));
    }
    extra.insert("expiry".into(), Value::Object(expiry));
    let elapsed = Duration::from_secs_f64(hold_s);
    let mut extra_hists = if a.expire > 0 { vec![("first ephemeral gone", first)] } else { Vec::new() };
    if let Some(h) = detached_hist {
        extra_hists.push(("getData probe while the detached sessions expire", h));
    }
    Ok(RunResult { workload: Workload::Sessions, tally, elapsed, cpu, latency_of: "ping", extra, extra_hists })
}

/// Many watches: memory per watch, then the fan-out of one change to every session.
pub fn watches(st: &Settings) -> Result<RunResult, BenchError> {
    let a = &st.args;
    raise_nofile(a.clients + 256);
    let rounds = a.ops.unwrap_or(1).max(1);
    let rt = crate::runtime()?;
    let line = ProgressLine::start("watches".into(), a.quiet, None, "sessions armed");
    let progress = line.progress();
    let out = rt.block_on(async {
        let mut writer = Session::connect(&st.dial, 0, a.session_timeout).await?;
        ensure(&mut writer, &a.root, b"").await?;
        let dir = format!("{}/watches", a.root);
        ensure(&mut writer, &dir, b"").await?;
        let value = vec![b'x'; a.value_size];
        let keys: Arc<Vec<String>> = Arc::new((0..a.keys).map(|i| format!("{dir}/k{i:07}")).collect());
        create_many(&mut writer, keys.iter().cloned(), &value, 0, 512).await?;
        let before = ServerProbe::take(st);
        let cpu = CpuClock::start();

        let (phase_tx, phase_rx) = tokio::sync::watch::channel(0u64);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Msg, BenchError>>(MESSAGES_MAX);
        let gate = Arc::new(tokio::sync::Semaphore::new(CONNECTING_MAX));
        let mut tasks = tokio::task::JoinSet::new();
        let arming = Instant::now();
        for i in 0..a.clients {
            let (dial, gate, tx, mut phase, keys) = (st.dial.clone(), gate.clone(), tx.clone(), phase_rx.clone(), keys.clone());
            let timeout = a.session_timeout;
            let spread = (i as f64 + 0.5) / a.clients as f64;
            tasks.spawn(async move {
                let tx2 = tx.clone();
                let r: Result<(), BenchError> = async move {
                    let hot = keys[0].as_str();
                    let permit = gate.acquire().await.map_err(|_| BenchError::Protocol("gate closed".into()))?;
                    let mut s = Session::connect(&dial, i, timeout).await?;
                    arm_all(&mut s, &keys).await?;
                    drop(permit);
                    let _ = tx.send(Ok(Msg::Ready)).await;
                    let interval = Duration::from_millis((s.timeout_ms / 3).max(50) as u64);
                    let mut next = tokio::time::Instant::now() + interval.mul_f64(spread);
                    let mut stash = None;
                    loop {
                        tokio::select! {
                            changed = phase.changed() => {
                                let p = if changed.is_ok() { *phase.borrow_and_update() } else { CLOSE };
                                if p == CLOSE {
                                    return s.close().await;
                                }
                                let at = match stash.take() {
                                    Some(at) => at,
                                    None => wait_event(&mut s, hot, EventType::NodeDataChanged).await?,
                                };
                                let _ = tx.send(Ok(Msg::Notified(at))).await;
                                arm_all(&mut s, std::slice::from_ref(&keys[0])).await?;
                                let _ = tx.send(Ok(Msg::Ready)).await;
                            }
                            _ = tokio::time::sleep_until(next) => {
                                ping(&mut s, Some(hot), &mut stash).await?;
                                next += interval;
                            }
                        }
                    }
                }
                .await;
                if let Err(e) = r {
                    let _ = tx2.send(Err(e)).await;
                }
            });
        }
        drop(tx);
        gather_ready(&mut rx, a.clients, &mut writer, &progress).await?;
        let arm_s = arming.elapsed().as_secs_f64();
        let armed = ServerProbe::take(st);

        let mut tally = Tally::default();
        let mut each = new_hist();
        let hot = keys[0].clone();
        for round in 1..=rounds {
            let xid = writer.push(OpCode::SetData, |w| req::set_data(w, &hot, &value, -1));
            let _ = phase_tx.send(round);
            let t0 = Instant::now();
            writer.flush().await?;
            let mut last = t0;
            // A session re-arms as soon as it is notified, so some are ready again before
            // others are notified.
            let (mut notified, mut rearmed) = (0, 0);
            while notified < a.clients {
                match recv(&mut rx).await? {
                    Msg::Notified(at) => {
                        notified += 1;
                        last = last.max(at);
                        record(&mut each, at.saturating_duration_since(t0));
                    }
                    Msg::Ready => rearmed += 1,
                    Msg::Pinged(_) | Msg::Vanished(_) => {}
                }
            }
            let (h, _) = loop {
                let mut got = None;
                while let Some(inc) = writer.next_incoming()? {
                    if let Incoming::Reply { header, .. } = inc {
                        if header.xid == xid {
                            got = Some((header, ()));
                        }
                    }
                }
                if let Some(g) = got {
                    break g;
                }
                writer.read_more().await?;
            };
            if h.err != 0 {
                return Err(BenchError::Server { what: format!("setData {hot}"), code: h.err });
            }
            tally.record(None, last - t0, 0, last);
            gather_ready(&mut rx, a.clients - rearmed, &mut writer, &crate::report::Progress::default()).await?;
        }
        let _ = phase_tx.send(CLOSE);
        while let Some(r) = tasks.join_next().await {
            r.map_err(|e| BenchError::Protocol(format!("session task failed: {e}")))?;
        }
        while let Ok(m) = rx.try_recv() {
            m?;
        }
        writer.close().await?;
        Ok::<_, BenchError>((cpu.stop(), tally, each, before, armed, arm_s))
    });
    drop(line);
    let (cpu, tally, each, before, armed, arm_s) = out?;
    let watches = a.clients as u64 * a.keys as u64;
    let mut extra = Map::new();
    extra.insert("sessions".into(), json!(a.clients));
    extra.insert("keys".into(), json!(a.keys));
    extra.insert("watches".into(), json!(watches));
    extra.insert("arm_s".into(), json!(arm_s));
    extra.insert("watches_set_per_sec".into(), json!(watches as f64 / arm_s.max(1e-9)));
    armed.report(&mut extra, &before, "watch", watches);
    let elapsed = tally.hist.max();
    Ok(RunResult {
        workload: Workload::Watches,
        tally,
        elapsed: Duration::from_micros(elapsed),
        cpu,
        latency_of: "fan-out",
        extra,
        extra_hists: vec![("notification", each)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_probes_read_this_process() {
        let me = std::process::id();
        assert!(proc_status(me, "VmRSS").unwrap() > 0);
        assert!(proc_status(me, "NoSuchKey").is_none());
        assert!(proc_cpu_s(me).unwrap() >= 0.0);
    }
}
