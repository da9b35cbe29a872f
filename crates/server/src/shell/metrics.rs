//! The Prometheus endpoint: ZooKeeper's `PrometheusMetricsProvider` settings
//! (`metricsProvider.className`, `metricsProvider.httpHost`, `metricsProvider.httpPort`, ...)
//! and `/metrics` in Prometheus's text format, with ZooKeeper's metric names and types.
//!
//! This module owns the provider's settings and the mapping from `monitor` (the AdminServer
//! command, answered by the driver from the core, see [`super::admin`]) to metric families:
//! ZooKeeper's counters (`ServerMetrics`) are counters, its summaries are summaries with the
//! provider's quantiles (0.5 for a basic summary; 0.5, 0.9, 0.99 for an advanced one), every
//! other number of `monitor` is a gauge, as ZooKeeper registers them. The families are
//! encoded by the `prometheus` crate's text encoder. A scrape is one request to the driver
//! over the AdminServer's bounded channel; the HTTP connection bounds are the AdminServer's.
//!
//! Settings: `httpHost` (default 0.0.0.0) and `httpPort` (7000) are honoured;
//! `exportJvmInfo` (default true) adds the `process_*` metrics of the Java client's default
//! exports (rzk has no `jvm_*` to give) and is logged; the JVM-only ones (`numWorkerThreads`,
//! `maxQueueSize`, `workerShutdownTimeoutMs`, which size a Java thread pool) are checked and
//! logged once; any other key of the provider
//! (e.g. 3.9's `httpsPort` and `ssl.*`, TLS not being served here) stops the start-up, named.
//! Another `metricsProvider.className` stops it too.

use super::admin::{self, AdminError, AdminRequest, HostSource};
use crate::core::admin::{metric_kind, MetricKind, SUMMARIES};
use hyper::{Method, StatusCode};
use prometheus::core::Collector;
use prometheus::process_collector::ProcessCollector;
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType, Quantile, Summary};
use prometheus::{Encoder, TextEncoder};
use rzk_config::ServerConfig;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// ZooKeeper's Prometheus provider class.
pub const PROMETHEUS_PROVIDER: &str = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// The Prometheus endpoint's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    pub http_host: String,
    pub http_port: u16,
    /// `exportJvmInfo` (default true): ZooKeeper then adds the Java client's default
    /// exports; rzk adds their `process_*` part (CPU, memory, file descriptors, start time).
    pub export_process: bool,
}

/// Keys of the Prometheus provider that configure the JVM only.
const JVM_ONLY_KEYS: &[&str] = &["exportJvmInfo", "numWorkerThreads", "maxQueueSize", "workerShutdownTimeoutMs"];

/// The endpoint's settings: `None` for ZooKeeper's default provider (no endpoint).
pub fn settings(cfg: &ServerConfig) -> Result<Option<MetricsSettings>, AdminError> {
    match cfg.metrics_provider_class_name.as_deref() {
        None => {
            if !cfg.metrics_provider_configuration.is_empty() {
                let keys: Vec<String> = cfg.metrics_provider_configuration.keys().map(|k| format!("metricsProvider.{k}")).collect();
                tracing::info!(keys = %keys.join(", "), "ignored: no metricsProvider.className, so ZooKeeper's default provider, which has no settings");
            }
            return Ok(None);
        }
        Some(c) if c == rzk_config::DEFAULT_METRICS_PROVIDER_CLASS_NAME => return Ok(None),
        Some(PROMETHEUS_PROVIDER) => {}
        Some(other) => return Err(AdminError::UnknownMetricsProvider(other.to_string())),
    }
    let bad = |key: &str, value: &str, message: &str| AdminError::MetricsSetting {
        key: key.into(),
        value: value.into(),
        message: message.into(),
    };
    let mut s = MetricsSettings { http_host: "0.0.0.0".into(), http_port: 7000, export_process: true };
    for (key, value) in &cfg.metrics_provider_configuration {
        let v = value.trim();
        match key.as_str() {
            "httpHost" => s.http_host = v.to_string(),
            "httpPort" => s.http_port = v.parse().map_err(|_| bad(key, value, "expected a port number (0-65535)"))?,
            "exportJvmInfo" => {
                // Java's Boolean.parseBoolean: "true" in any case, anything else false.
                s.export_process = v.eq_ignore_ascii_case("true");
                tracing::info!(key = "metricsProvider.exportJvmInfo", value = %v, "rzk has no JVM: it exports the process_* metrics of the Java client's default exports (when true), never jvm_*");
            }
            k if JVM_ONLY_KEYS.contains(&k) => {
                v.parse::<i64>().map_err(|_| bad(key, value, "expected an integer"))?;
                tracing::info!(key = %format!("metricsProvider.{k}"), value = %v, "sizes ZooKeeper's Java thread pool for summaries; rzk has none");
            }
            _ => return Err(bad(key, value, "a setting of ZooKeeper's Prometheus provider that rzk does not serve")),
        }
    }
    Ok(Some(s))
}

/// Binds `/metrics` and serves it until `shutdown`.
pub(crate) async fn start(
    s: MetricsSettings,
    tx: mpsc::Sender<AdminRequest>,
    host: Arc<HostSource>,
    idle: Duration,
    shutdown: watch::Receiver<bool>,
) -> Result<(), AdminError> {
    let addr = admin::resolve("metricsProvider.httpHost", &s.http_host, s.http_port)?;
    let listener = super::bind(addr, admin::HTTP_LISTEN_BACKLOG).map_err(|source| AdminError::Bind {
        what: "metricsProvider.httpPort",
        addr,
        source,
    })?;
    tracing::info!(%addr, "Prometheus /metrics listening");
    let process = s.export_process.then(|| Arc::new(ProcessCollector::for_self()));
    tokio::spawn(admin::serve_http(listener, admin::HttpTransport::Plain, idle, shutdown, move |req| {
        let tx = tx.clone();
        let host = host.clone();
        let process = process.clone();
        async move {
            if req.uri().path() != "/metrics" {
                return admin::plain(StatusCode::NOT_FOUND, "text/plain", "Not Found\n");
            }
            if req.method() != Method::GET && req.method() != Method::HEAD {
                return admin::plain(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "Method Not Allowed\n");
            }
            // The shell's facts and the process's (both read /proc) on a blocking thread.
            let read = move || (host.gather("monitor"), process.map(|p| p.collect()).unwrap_or_default());
            let (facts, process_families) = match tokio::task::spawn_blocking(read).await {
                Ok(f) => f,
                Err(_) => return admin::plain(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "unavailable\n"),
            };
            match admin::ask(&tx, admin::AdminAsk::Metrics, "monitor".into(), BTreeMap::new(), facts).await {
                Ok(r) => match encode(&[families(&r.body), process_families].concat()) {
                    Ok(text) => admin::plain(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", text),
                    Err(e) => admin::plain(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("{e}\n")),
                },
                Err(msg) => admin::plain(StatusCode::SERVICE_UNAVAILABLE, "text/plain", format!("{msg}\n")),
            }
        }
    }));
    Ok(())
}

fn encode(families: &[MetricFamily]) -> Result<String, prometheus::Error> {
    let mut buf = Vec::new();
    TextEncoder::new().encode(families, &mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn family(name: &str, kind: MetricType, metric: Metric) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(name.to_string());
    f.set_field_type(kind);
    f.set_metric(vec![metric]);
    f
}

/// ZooKeeper's counter set of quota refusals (`ServerMetrics.QUOTA_EXCEEDED_ERROR_PER_NAMESPACE`).
const QUOTA_EXCEEDED_SET: &str = "quota_exceeded_error_per_namespace";

/// A `monitor` key that is a member of a per-namespace set: (set name, namespace).
fn namespace_set_member(key: &str) -> Option<(&'static str, &str)> {
    let g = rzk_tree::quota::QUOTA_GAUGE_SETS;
    [g[0], g[1], g[2], g[3], QUOTA_EXCEEDED_SET]
        .into_iter()
        .find_map(|set| key.strip_suffix(set)?.strip_suffix('_').filter(|ns| !ns.is_empty()).map(|ns| (set, ns)))
}

/// The driver's metrics answer ([`crate::core::admin::metrics`]) as metric families:
/// `monitor`'s numbers in its order, then every summary.
pub fn families(answer: &Value) -> Vec<MetricFamily> {
    let Some(m) = answer.get("monitor").and_then(Value::as_object) else {
        return Vec::new();
    };
    let summaries = answer.get("summaries").and_then(Value::as_object);
    let summary_kind: HashMap<&str, MetricKind> = SUMMARIES.iter().copied().collect();
    let is_summary_key = |k: &str| {
        ["avg_", "min_", "max_", "cnt_", "sum_", "p50_", "p95_", "p99_", "p999_"]
            .iter()
            .any(|p| k.strip_prefix(p).is_some_and(|n| summary_kind.contains_key(n)))
    };
    let mut out = Vec::new();
    // ZooKeeper's per-namespace sets (`<namespace>_<set>` in `monitor`): one family per set,
    // one member per namespace, labelled `key` as its Prometheus provider labels them.
    let mut sets: Vec<(&str, MetricType, Vec<Metric>)> = Vec::new();
    for (k, v) in m {
        let Some(x) = v.as_f64() else { continue };
        if is_summary_key(k) {
            continue;
        }
        if let Some((set, ns)) = namespace_set_member(k) {
            let mut label = LabelPair::default();
            label.set_name("key".to_string());
            label.set_value(ns.to_string());
            let mut metric = Metric::default();
            metric.set_label(vec![label]);
            let kind = if set == QUOTA_EXCEEDED_SET {
                let mut c = Counter::default();
                c.set_value(x);
                metric.set_counter(c);
                MetricType::COUNTER
            } else {
                let mut g = Gauge::default();
                g.set_value(x);
                metric.set_gauge(g);
                MetricType::GAUGE
            };
            match sets.iter_mut().find(|(n, _, _)| *n == set) {
                Some(e) => e.2.push(metric),
                None => sets.push((set, kind, vec![metric])),
            }
            continue;
        }
        let mut metric = Metric::default();
        match metric_kind(k) {
            MetricKind::Counter => {
                let mut c = Counter::default();
                c.set_value(x);
                metric.set_counter(c);
                out.push(family(k, MetricType::COUNTER, metric));
            }
            _ => {
                let mut g = Gauge::default();
                g.set_value(x);
                metric.set_gauge(g);
                out.push(family(k, MetricType::GAUGE, metric));
            }
        }
    }
    for (name, kind, metrics) in sets {
        let mut f = family(name, kind, Metric::default());
        f.set_metric(metrics);
        out.push(f);
    }
    for (name, _) in SUMMARIES {
        let Some(sm) = summaries.and_then(|s| s.get(*name)) else {
            continue;
        };
        out.push(family(name, MetricType::SUMMARY, summary_metric(sm)));
    }
    // Summary sets: one summary per key, labelled `key` as ZooKeeper's provider labels them.
    if let Some(sets) = answer.get("summary_sets").and_then(Value::as_object) {
        for (name, by_key) in sets {
            let Some(by_key) = by_key.as_object() else { continue };
            let metrics: Vec<Metric> = by_key
                .iter()
                .map(|(key, sm)| {
                    let mut m = summary_metric(sm);
                    let mut l = LabelPair::default();
                    l.set_name("key".into());
                    l.set_value(key.clone());
                    m.set_label(vec![l]);
                    m
                })
                .collect();
            let mut f = family(name, MetricType::SUMMARY, Metric::default());
            f.set_metric(metrics);
            out.push(f);
        }
    }
    out
}

/// One summary of the driver's answer (`{"count", "sum", "quantiles": [[q, v|null]]}`).
fn summary_metric(sm: &Value) -> Metric {
    let mut s = Summary::default();
    s.set_sample_count(sm["count"].as_u64().unwrap_or(0));
    s.set_sample_sum(sm["sum"].as_f64().unwrap_or(0.0));
    // No observation: NaN, as Prometheus's Java client reports an empty summary.
    let quantiles = sm["quantiles"].as_array().cloned().unwrap_or_default();
    s.set_quantile(
        quantiles
            .iter()
            .map(|qv| {
                let mut x = Quantile::default();
                x.set_quantile(qv[0].as_f64().unwrap_or(0.0));
                x.set_value(qv[1].as_f64().unwrap_or(f64::NAN));
                x
            })
            .collect(),
    );
    let mut metric = Metric::default();
    metric.set_summary(s);
    metric
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(text: &str) -> ServerConfig {
        ServerConfig::parse(&format!("dataDir=/tmp/x\nclientPort=2181\n{text}")).unwrap()
    }

    #[test]
    fn provider_settings() {
        assert_eq!(settings(&cfg("")).unwrap(), None);
        let s = settings(&cfg(&format!(
            "metricsProvider.className={PROMETHEUS_PROVIDER}\nmetricsProvider.httpPort=7001\nmetricsProvider.exportJvmInfo=false\n"
        )))
        .unwrap();
        assert_eq!(s, Some(MetricsSettings { http_host: "0.0.0.0".into(), http_port: 7001, export_process: false }));
        let e = settings(&cfg(&format!("metricsProvider.className={PROMETHEUS_PROVIDER}\nmetricsProvider.httpsPort=7443\n"))).unwrap_err();
        assert!(e.to_string().contains("metricsProvider.httpsPort"), "{e}");
        let e = settings(&cfg("metricsProvider.className=com.example.Metrics\n")).unwrap_err();
        assert!(e.to_string().contains("com.example.Metrics"), "{e}");
        assert!(settings(&cfg(&format!("metricsProvider.className={PROMETHEUS_PROVIDER}\nmetricsProvider.httpPort=x\n"))).is_err());
    }

    #[test]
    fn monitor_becomes_typed_families() {
        let text = encode(&families(&json!({
            "monitor": {
                "version": "3.9.3", "znode_count": 5, "avg_latency": 0.5, "stale_requests": 2,
                "avg_fsynctime": 0.0, "cnt_fsynctime": 0, "command": "monitor", "error": null,
            },
            "summaries": {
                "fsynctime": { "count": 0, "sum": 0, "quantiles": [[0.5, null]] },
                "readlatency": { "count": 2, "sum": 3, "quantiles": [[0.5, 1], [0.9, 2], [0.99, 2]] },
            },
        })))
        .unwrap();
        assert!(text.contains("# TYPE znode_count gauge\nznode_count 5\n"), "{text}");
        assert!(text.contains("# TYPE stale_requests counter\n"), "{text}");
        assert!(text.contains("# TYPE fsynctime summary\nfsynctime{quantile=\"0.5\"} NaN\n"), "{text}");
        assert!(text.contains("readlatency{quantile=\"0.9\"} 2\n"), "{text}");
        assert!(text.contains("readlatency_count 2\n"), "{text}");
        assert!(!text.contains("version") && !text.contains("avg_fsynctime"), "{text}");
        let text = encode(&families(&json!({
            "monitor": {},
            "summaries": {},
            "summary_sets": { "ack_latency": {
                "2": { "count": 3, "sum": 6, "quantiles": [[0.5, 2], [0.9, 3], [0.99, 3]] },
                "3": { "count": 1, "sum": 9, "quantiles": [[0.5, 9], [0.9, 9], [0.99, 9]] },
            } },
        })))
        .unwrap();
        assert!(text.contains("# TYPE ack_latency summary\n"), "{text}");
        assert!(text.contains("ack_latency{key=\"2\",quantile=\"0.9\"} 3\n"), "{text}");
        assert!(text.contains("ack_latency_count{key=\"3\"} 1\n"), "{text}");
    }
}
