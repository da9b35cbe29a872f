//! The coordinated workloads, measured in rounds rather than as a stream of requests:
//!
//! - **watch** fan-out: K sessions each set a data watch on one znode (getData with watch),
//!   a writer session sets it, and the round's time is from sending the setData until the
//!   last of the K notifications arrived (each notification's own delay is kept too).
//! - **churn**: each of `--clients` workers connects, opens a session, closes it (waiting for
//!   the closeSession reply), and starts over; latency is one whole cycle.
//! - **expiry**: M sessions create `--ephemerals` each, then vanish without closing (their
//!   sockets are dropped); an observer watches the parent and the round's time is from the
//!   drop until the last ephemeral is gone. The server cannot beat the negotiated timeout;
//!   what is compared is how long after it the ephemerals disappear.

use crate::conn::{req, Incoming, Session};
use crate::report::{new_hist, record, CpuClock, ProgressLine, RunResult, Tally};
use crate::workload::{create_many, ensure, Admit, Clock};
use crate::{BenchError, Settings, Workload};
use rzk_proto::{EventType, OpCode, Reader};
use serde_json::{json, Map};
use std::time::{Duration, Instant};

/// Reads frames until a watch notification for `path` of type `ty` arrives (pings' replies
/// skipped; any other reply fails the run). Also the scale workloads'.
pub(crate) async fn wait_event(s: &mut Session, path: &str, ty: EventType) -> Result<Instant, BenchError> {
    loop {
        while let Some(inc) = s.next_incoming()? {
            match inc {
                Incoming::Notification(ev) if ev.path == path && ev.event_type == ty.code() => return Ok(Instant::now()),
                Incoming::Notification(_) => {}
                Incoming::Reply { header, .. } if header.xid == rzk_proto::codes::xid::PING => {}
                Incoming::Reply { header, .. } => {
                    return Err(BenchError::Protocol(format!(
                        "{}: unexpected reply xid {} while waiting for a watch event",
                        s.addr(),
                        header.xid
                    )))
                }
            }
        }
        s.read_more().await?;
    }
}

/// Reads frames until the reply to `xid`; notifications are ignored.
async fn wait_reply(s: &mut Session, xid: i32) -> Result<i32, BenchError> {
    loop {
        while let Some(inc) = s.next_incoming()? {
            if let Incoming::Reply { header, .. } = inc {
                if header.xid == xid {
                    return Ok(header.err);
                }
            }
        }
        s.read_more().await?;
    }
}

enum WatcherMsg {
    Armed,
    Notified(Instant),
}

/// Watch fan-out: rounds of "K watches set, one setData, K notifications".
pub fn watch(st: &Settings) -> Result<RunResult, BenchError> {
    let a = &st.args;
    let rt = crate::runtime()?;
    let line = ProgressLine::start("watch".into(), a.quiet, st.duration, "rounds");
    let progress = line.progress();
    let cpu_and = rt.block_on(async {
        let mut writer = Session::connect(&st.dial, 0, a.session_timeout).await?;
        ensure(&mut writer, &a.root, b"").await?;
        let dir = format!("{}/watch", a.root);
        ensure(&mut writer, &dir, b"").await?;
        let path = format!("{dir}/{}", crate::run_token());
        let value = vec![b'x'; a.value_size];
        ensure(&mut writer, &path, &value).await?;

        let (arm_tx, arm_rx) = tokio::sync::watch::channel(0u64);
        let (msg_tx, mut msg_rx) = tokio::sync::mpsc::channel::<Result<WatcherMsg, BenchError>>(2 * a.clients + 1);
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..a.clients {
            let mut s = Session::connect(&st.dial, c, a.session_timeout).await?;
            let (mut arm_rx, msg_tx, path) = (arm_rx.clone(), msg_tx.clone(), path.clone());
            tasks.spawn(async move {
                let r: Result<(), BenchError> = async {
                    while arm_rx.changed().await.is_ok() {
                        if *arm_rx.borrow_and_update() == u64::MAX {
                            break;
                        }
                        let (h, _) = s.call(OpCode::GetData, |w| req::path_watch(w, &path, true), |_| {}).await?;
                        if h.err != 0 {
                            return Err(BenchError::Server { what: format!("getData {path} (watch)"), code: h.err });
                        }
                        let _ = msg_tx.send(Ok(WatcherMsg::Armed)).await;
                        let at = wait_event(&mut s, &path, EventType::NodeDataChanged).await?;
                        let _ = msg_tx.send(Ok(WatcherMsg::Notified(at))).await;
                    }
                    s.close().await
                }
                .await;
                if let Err(e) = r {
                    let _ = msg_tx.send(Err(e)).await;
                }
            });
        }
        drop(msg_tx);
        let mut recv = async || -> Result<WatcherMsg, BenchError> {
            match msg_rx.recv().await {
                Some(m) => m,
                None => Err(BenchError::Protocol("every watcher session is gone".into())),
            }
        };

        let cpu = CpuClock::start();
        let clock = Clock::new(st.warmup, st.duration, a.ops);
        let mut tally = Tally::default();
        let mut each = new_hist();
        let mut round = 0u64;
        loop {
            let measured = match clock.admit(Instant::now()) {
                Admit::Stop => break,
                Admit::Warmup => false,
                Admit::Measured => true,
            };
            round += 1;
            let _ = arm_tx.send(round);
            for _ in 0..a.clients {
                match recv().await? {
                    WatcherMsg::Armed => {}
                    WatcherMsg::Notified(_) => return Err(BenchError::Protocol("a notification before the data changed".into())),
                }
            }
            let xid = writer.push(OpCode::SetData, |w| req::set_data(w, &path, &value, -1));
            let t0 = Instant::now();
            writer.flush().await?;
            let mut last = t0;
            let mut delays = Vec::with_capacity(a.clients);
            for _ in 0..a.clients {
                match recv().await? {
                    WatcherMsg::Notified(at) => {
                        last = last.max(at);
                        delays.push(at.saturating_duration_since(t0));
                    }
                    WatcherMsg::Armed => return Err(BenchError::Protocol("a watcher armed twice in one round".into())),
                }
            }
            let err = wait_reply(&mut writer, xid).await?;
            if err != 0 {
                return Err(BenchError::Server { what: format!("setData {path}"), code: err });
            }
            if measured {
                tally.record(None, last - t0, 0, last);
                for d in delays {
                    record(&mut each, d);
                }
                progress.add(1);
            }
        }
        let _ = arm_tx.send(u64::MAX);
        while let Some(r) = tasks.join_next().await {
            r.map_err(|e| BenchError::Protocol(format!("watcher task failed: {e}")))?;
        }
        while let Ok(m) = msg_rx.try_recv() {
            m?;
        }
        writer.close().await?;
        Ok::<_, BenchError>((cpu.stop(), clock, tally, each))
    });
    drop(line);
    let (cpu, clock, tally, each) = cpu_and?;
    let elapsed = tally.last.map(|l| l.saturating_duration_since(clock.measure_start)).unwrap_or_default();
    let mut extra = Map::new();
    extra.insert("watchers".into(), json!(a.clients));
    extra.insert("notifications_per_sec".into(), json!(tally.ops as f64 * a.clients as f64 / elapsed.as_secs_f64().max(1e-9)));
    Ok(RunResult {
        workload: Workload::Watch,
        tally,
        elapsed,
        cpu,
        latency_of: "fan-out",
        extra,
        extra_hists: vec![("notification", each)],
    })
}

/// Session churn: connect, handshake, closeSession, again, on `--clients` workers.
pub fn churn(st: &Settings) -> Result<RunResult, BenchError> {
    let a = &st.args;
    let rt = crate::runtime()?;
    let line = ProgressLine::start("churn".into(), a.quiet, st.duration, "sessions");
    let progress = line.progress();
    let out = rt.block_on(async {
        let cpu = CpuClock::start();
        let clock = std::sync::Arc::new(Clock::new(st.warmup, st.duration, a.ops));
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..a.clients {
            let (clock, progress, dial, timeout) = (clock.clone(), progress.clone(), st.dial.clone(), a.session_timeout);
            tasks.spawn(async move {
                let mut t = Tally::default();
                let mut handshake = new_hist();
                let mut i = c;
                loop {
                    let start = Instant::now();
                    let measured = match clock.admit(start) {
                        Admit::Stop => break,
                        Admit::Warmup => false,
                        Admit::Measured => true,
                    };
                    let s = Session::connect(&dial, i, timeout).await?;
                    let connected = Instant::now();
                    s.close().await?;
                    let done = Instant::now();
                    i += 1;
                    if measured {
                        t.record(None, done - start, 0, done);
                        record(&mut handshake, connected - start);
                        progress.add(1);
                    }
                }
                Ok::<_, BenchError>((t, handshake))
            });
        }
        let mut tally = Tally::default();
        let mut handshake = new_hist();
        while let Some(r) = tasks.join_next().await {
            let (t, h) = r.map_err(|e| BenchError::Protocol(format!("churn task failed: {e}")))??;
            tally.merge(t);
            handshake.add(&h).expect("same histogram bounds");
        }
        Ok::<_, BenchError>((cpu.stop(), clock, tally, handshake))
    });
    drop(line);
    let (cpu, clock, tally, handshake) = out?;
    let elapsed = tally.last.map(|l| l.saturating_duration_since(clock.measure_start)).unwrap_or_default();
    Ok(RunResult {
        workload: Workload::Churn,
        tally,
        elapsed,
        cpu,
        latency_of: "session",
        extra: Map::new(),
        extra_hists: vec![("handshake", handshake)],
    })
}

/// The number of children in a getChildren reply body.
fn children_count(body: &[u8]) -> Result<i32, BenchError> {
    Reader::new(body).read_i32().map_err(|e| BenchError::Protocol(format!("bad getChildren reply: {e}")))
}

/// Ephemeral expiry: rounds of "M sessions with E ephemerals each vanish; time until all gone".
pub fn expiry(st: &Settings) -> Result<RunResult, BenchError> {
    let a = &st.args;
    let rounds = a.ops.unwrap_or(1).max(1);
    let rt = crate::runtime()?;
    let line = ProgressLine::start("expiry".into(), a.quiet, st.duration, "rounds");
    let progress = line.progress();
    let out = rt.block_on(async {
        let mut obs = Session::connect(&st.dial, 0, a.session_timeout).await?;
        ensure(&mut obs, &a.root, b"").await?;
        let dir = format!("{}/expiry", a.root);
        ensure(&mut obs, &dir, b"").await?;
        let run = format!("{dir}/{}", crate::run_token());
        ensure(&mut obs, &run, b"").await?;
        let value = vec![b'x'; a.value_size];
        let cpu = CpuClock::start();
        let clock = Clock::new(Duration::ZERO, st.duration, None);
        let mut tally = Tally::default();
        let mut first = new_hist();
        let mut negotiated = 0i32;
        for r in 0..rounds {
            if r > 0 && clock.admit(Instant::now()) == Admit::Stop {
                break;
            }
            let parent = format!("{run}/r{r}");
            ensure(&mut obs, &parent, b"").await?;
            let mut sessions = Vec::with_capacity(a.clients);
            for c in 0..a.clients {
                let mut s = Session::connect(&st.dial, c, a.expiry_timeout).await?;
                negotiated = s.timeout_ms;
                let paths = (0..a.ephemerals).map(|k| format!("{parent}/s{c}-e{k}"));
                create_many(&mut s, paths, &value, 1, 64).await?;
                sessions.push(s);
            }
            let want = (a.clients * a.ephemerals) as i32;
            let (h, body) = obs.call(OpCode::GetChildren, |w| req::path_watch(w, &parent, true), |_| {}).await?;
            if h.err != 0 {
                return Err(BenchError::Server { what: format!("getChildren {parent}"), code: h.err });
            }
            let n = children_count(&body)?;
            if n != want {
                return Err(BenchError::Protocol(format!("{parent} has {n} ephemerals, expected {want}")));
            }
            // Vanish: drop every connection without closing the sessions.
            let t0 = Instant::now();
            drop(sessions);
            let mut first_at = None;
            let bound = Duration::from_millis(negotiated.max(0) as u64) + Duration::from_secs(60);
            let gone_at = loop {
                let wait = bound.saturating_sub(t0.elapsed());
                let at = match tokio::time::timeout(wait, wait_event(&mut obs, &parent, EventType::NodeChildrenChanged)).await {
                    Ok(r) => r?,
                    Err(_) => {
                        return Err(BenchError::Protocol(format!(
                            "ephemerals under {parent} still there {:.0} s after their sessions vanished",
                            bound.as_secs_f64()
                        )))
                    }
                };
                first_at.get_or_insert(at);
                let (h, body) = obs.call(OpCode::GetChildren, |w| req::path_watch(w, &parent, true), |_| {}).await?;
                if h.err != 0 {
                    return Err(BenchError::Server { what: format!("getChildren {parent}"), code: h.err });
                }
                if children_count(&body)? == 0 {
                    break Instant::now();
                }
            };
            tally.record(None, gone_at - t0, 0, gone_at);
            record(&mut first, first_at.unwrap_or(gone_at) - t0);
            progress.add(1);
        }
        obs.close().await?;
        Ok::<_, BenchError>((cpu.stop(), clock, tally, first, negotiated))
    });
    drop(line);
    let (cpu, clock, tally, first, negotiated) = out?;
    let elapsed = tally.last.map(|l| l.saturating_duration_since(clock.measure_start)).unwrap_or_default();
    let mut extra = Map::new();
    extra.insert("sessions".into(), json!(a.clients));
    extra.insert("ephemerals_per_session".into(), json!(a.ephemerals));
    extra.insert("negotiated_timeout_ms".into(), json!(negotiated));
    let gone_ms = tally.hist.max() as f64 / 1000.0;
    extra.insert("gone_after_timeout_ms".into(), json!(gone_ms - negotiated as f64));
    Ok(RunResult {
        workload: Workload::Expiry,
        tally,
        elapsed,
        cpu,
        latency_of: "all gone",
        extra,
        extra_hists: vec![("first gone", first)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_count_reads_the_vector_length() {
        let mut w = rzk_proto::Writer::new();
        w.write_vec(&["a".to_string(), "b".to_string()]);
        assert_eq!(children_count(w.as_slice()).unwrap(), 2);
        assert!(children_count(&[0, 0]).is_err());
    }
}
