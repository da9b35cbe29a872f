//! # rzk-bench: `rzk bench`, a ZooKeeper-protocol load generator
//!
//! Speaks the client wire protocol directly with rzk-proto's codec to any ZooKeeper-compatible
//! server (rzk, Apache ZooKeeper), so the same numbers can be taken from both. It is built to
//! stay out of the way of the server it measures on a small machine: by default every session
//! runs on one current-thread tokio runtime (one OS thread, no work stealing, no cross-thread
//! wake-ups), requests are pipelined (`--inflight` per session) and written in one syscall per
//! batch, and one clock reading stamps a whole batch. The run reports its own CPU use, so a
//! saturated client is visible instead of silently capping the server's numbers; `--threads`
//! spreads the sessions over more runtimes when one core is not enough.
//!
//! # Layout
//! - [`conn`]: one session over one TCP connection (handshake, pipelined frames, replies).
//! - [`workload`]: the pipelined closed-loop workloads (create, set, get, mixed, exists,
//!   children, multi, load) and their setup.
//! - [`scenario`]: the coordinated ones: watch fan-out, session churn, ephemeral expiry.
//! - [`scale`]: the scale ones (many idle sessions, many watches) and the server probes
//!   (`/proc/PID` memory and CPU, `mntr`) that the load workload reports too.
//! - [`report`]: HDR histograms, CPU from `getrusage`, the progress line, text and JSON output.

pub mod conn;
pub mod report;
pub mod scale;
pub mod scenario;
pub mod workload;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;
use thiserror::Error;

/// What a run measures.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Persistent creates of new znodes with `--value-size` bytes (one parent per session).
    Create,
    /// setData on `--keys` existing znodes, chosen at random.
    Set,
    /// getData on `--keys` existing znodes, chosen at random.
    Get,
    /// getData or setData on `--keys` znodes; `--read-ratio` of the requests are reads.
    Mixed,
    /// exists on `--keys` existing znodes.
    Exists,
    /// getChildren on `--parents` wide parents of `--width` children each.
    Children,
    /// multi requests of `--multi-size` creates each.
    Multi,
    /// `--clients` sessions watch one znode; one more session sets it; the time until all
    /// are notified, round after round.
    Watch,
    /// Session churn: each of `--clients` workers connects, opens a session, closes it, again.
    Churn,
    /// `--clients` sessions with `--ephemerals` each vanish without closing; the time until
    /// all their ephemerals are gone.
    Expiry,
    /// Fills a tree of `--nodes` znodes (`--fanout` per parent) as fast as the server takes them;
    /// with `--server-pid`, the server's resident bytes per znode.
    Load,
    /// Opens `--clients` sessions and holds them idle (pinging) for `--duration` seconds: the
    /// server's memory per session and CPU for the pings; then `--expire` of them (one
    /// ephemeral each) vanish at once: the time until their ephemerals are gone. With
    /// `--detached`, that many more sessions live without connections and expire together.
    Sessions,
    /// `--clients` sessions each watch all of `--keys` znodes (exists with a watch): the
    /// server's memory per watch; then `--ops` rounds (default 1) of one change to the first
    /// znode, notifying every session: the fan-out time.
    Watches,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::Set => "set",
            Workload::Get => "get",
            Workload::Mixed => "mixed",
            Workload::Exists => "exists",
            Workload::Children => "children",
            Workload::Multi => "multi",
            Workload::Watch => "watch",
            Workload::Churn => "churn",
            Workload::Expiry => "expiry",
            Workload::Load => "load",
            Workload::Sessions => "sessions",
            Workload::Watches => "watches",
        }
    }
}

/// `rzk bench` options.
#[derive(clap::Args, Debug, Clone)]
#[command(about = "Load generator for ZooKeeper-compatible servers (rzk, Apache ZooKeeper)")]
pub struct BenchArgs {
    /// The workload to run.
    #[arg(value_enum)]
    pub workload: Workload,
    /// Servers, host:port, comma separated; sessions are spread over them round-robin.
    #[arg(long, default_value = "127.0.0.1:2181", value_delimiter = ',')]
    pub servers: Vec<String>,
    /// Sessions (connections). For watch: watching sessions; for expiry: expiring sessions.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Requests in flight per session (pipelining depth).
    #[arg(long, default_value_t = 16)]
    pub inflight: usize,
    /// Measured seconds (default 10 when --ops is not given).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Stop after this many measured operations (rounds for watch and expiry, sessions for churn).
    #[arg(long)]
    pub ops: Option<u64>,
    /// Seconds of the same load before measuring starts (JIT and caches warm up).
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Bytes of data per created or set znode.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Fraction of reads in the mixed workload.
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Existing znodes that set, get, mixed and exists pick from.
    #[arg(long, default_value_t = 10_000)]
    pub keys: usize,
    /// Wide parents for the children workload.
    #[arg(long, default_value_t = 4)]
    pub parents: usize,
    /// Children per wide parent.
    #[arg(long, default_value_t = 1000)]
    pub width: usize,
    /// Creates per multi request.
    #[arg(long, default_value_t = 5)]
    pub multi_size: usize,
    /// Znodes the load workload creates.
    #[arg(long, default_value_t = 100_000)]
    pub nodes: u64,
    /// Children per parent in the load workload's tree.
    #[arg(long, default_value_t = 1000)]
    pub fanout: u64,
    /// Ephemerals created by each expiring session.
    #[arg(long, default_value_t = 10)]
    pub ephemerals: usize,
    /// Session timeout (ms) asked for by ordinary sessions.
    #[arg(long, default_value_t = 30_000)]
    pub session_timeout: i32,
    /// Session timeout (ms) asked for by the expiring sessions of the expiry workload.
    #[arg(long, default_value_t = 4_000)]
    pub expiry_timeout: i32,
    /// The znode everything is created under.
    #[arg(long, default_value = "/bench")]
    pub root: String,
    /// OS threads, each with its own single-threaded runtime; sessions are spread over them.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Connect over TLS: the CA certificates (PEM) the servers' certificates must chain to
    /// (and match the `--servers` host), as zkCli.sh with `zookeeper.client.secure=true`.
    #[arg(long, value_name = "CA_PEM")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// With `--tls-ca`: the client certificate chain (PEM) to present (`ssl.clientAuth=need`).
    #[arg(long, value_name = "CERT_PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// With `--tls-cert`: its private key (PEM, unencrypted).
    #[arg(long, value_name = "KEY_PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// SASL DIGEST-MD5 login of every session: the user (a JAAS `user_NAME` of the server).
    #[arg(long, value_name = "NAME", requires = "sasl_password")]
    pub sasl_user: Option<String>,
    /// With `--sasl-user`: its password.
    #[arg(long, value_name = "PASSWORD", requires = "sasl_user")]
    pub sasl_password: Option<String>,
    /// SASL GSSAPI (Kerberos) login of every session, from the ticket cache (`kinit`'s), or
    /// with `--kerberos-principal` and `--kerberos-keytab` (needs the `kerberos` cargo feature).
    #[arg(long, conflicts_with = "sasl_user")]
    pub kerberos: bool,
    /// Kerberos: whom to log in as (with `--kerberos-keytab`).
    #[arg(long, value_name = "PRINCIPAL", requires = "kerberos_keytab", conflicts_with = "sasl_user")]
    pub kerberos_principal: Option<String>,
    /// Kerberos: the keytab to get tickets from.
    #[arg(long, value_name = "FILE", requires = "kerberos_principal")]
    pub kerberos_keytab: Option<std::path::PathBuf>,
    /// The server's process id (same machine): its resident memory (`/proc/PID/status`) and
    /// CPU are reported before and after the load, sessions and watches workloads.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Source addresses 127.0.0.1 .. 127.0.0.N for the connections (round-robin), for more
    /// connections to one loopback server than one address has ephemeral ports.
    #[arg(long, default_value_t = 1)]
    pub local_addrs: u8,
    /// For sessions: how many of the sessions create one ephemeral each and then vanish at
    /// once (their connections dropped without closing).
    #[arg(long, default_value_t = 0)]
    pub expire: usize,
    /// For sessions: sessions opened before the others that create one ephemeral each and
    /// drop their connections at once (not closed), so more sessions live on the server than
    /// it or this client has file descriptors. They all ask for timeouts that end at one
    /// moment, `--detached-timeout` ms after the first opens, and expire together then.
    #[arg(long, default_value_t = 0)]
    pub detached: usize,
    /// For sessions with `--detached`: ms from the start until every detached session's
    /// timeout ends (the server's maxSessionTimeout must allow it).
    #[arg(long, default_value_t = 180_000)]
    pub detached_timeout: i32,
    /// Seconds without any reply after which a session's read fails the run.
    #[arg(long, default_value_t = 30.0)]
    pub io_timeout: f64,
    /// Print one JSON object on stdout instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Why a run failed.
#[derive(Debug, Error)]
pub enum BenchError {
    #[error("{addr}: {what} failed: {source}")]
    Io { addr: SocketAddr, what: &'static str, source: std::io::Error },
    #[error("{addr}: {what} timed out")]
    Timeout { addr: SocketAddr, what: &'static str },
    #[error("{addr}: the server closed the connection")]
    Closed { addr: SocketAddr },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("{what}: the server answered error {code} ({name})", name = error_name(*code))]
    Server { what: String, code: i32 },
    #[error("invalid options: {0}")]
    Usage(String),
}

/// ZooKeeper's name for an error code, for messages and reports.
pub fn error_name(code: i32) -> String {
    match rzk_proto::ErrorCode::from_code(code) {
        Some(c) => format!("{c:?}"),
        None => format!("error {code}"),
    }
}

/// The validated settings of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub args: BenchArgs,
    /// How sessions connect (addresses, host names, timeout, TLS).
    pub dial: conn::Dial,
    /// How long the measured phase may last (None: until --ops or the workload's own end).
    pub duration: Option<Duration>,
    pub warmup: Duration,
}

impl Settings {
    pub fn from_args(args: BenchArgs) -> Result<Settings, BenchError> {
        let (mut addrs, mut hosts) = (Vec::new(), Vec::new());
        for s in &args.servers {
            hosts.push(s.rsplit_once(':').map_or(s.as_str(), |(h, _)| h).trim_start_matches('[').trim_end_matches(']').to_string());
            let a = s
                .to_socket_addrs()
                .map_err(|e| BenchError::Usage(format!("--servers {s:?}: {e}")))?
                .next()
                .ok_or_else(|| BenchError::Usage(format!("--servers {s:?} resolves to nothing")))?;
            addrs.push(a);
        }
        if addrs.is_empty() {
            return Err(BenchError::Usage("--servers is empty".into()));
        }
        let positive = |name: &str, v: usize| if v == 0 { Err(BenchError::Usage(format!("{name} must be at least 1"))) } else { Ok(()) };
        positive("--clients", args.clients)?;
        positive("--inflight", args.inflight)?;
        positive("--threads", args.threads)?;
        positive("--keys", args.keys)?;
        positive("--parents", args.parents)?;
        positive("--multi-size", args.multi_size)?;
        if args.expire > args.clients {
            return Err(BenchError::Usage("--expire cannot exceed --clients".into()));
        }
        if args.detached > 0 && args.detached_timeout < 10_000 {
            return Err(BenchError::Usage("--detached-timeout must be at least 10000 ms".into()));
        }
        if args.fanout == 0 || args.nodes == 0 {
            return Err(BenchError::Usage("--nodes and --fanout must be at least 1".into()));
        }
        if !(0.0..=1.0).contains(&args.read_ratio) {
            return Err(BenchError::Usage("--read-ratio must be between 0 and 1".into()));
        }
        if args.value_size > 1 << 20 {
            return Err(BenchError::Usage("--value-size above jute.maxbuffer (1 MiB)".into()));
        }
        if !args.root.starts_with('/') || args.root.len() < 2 || args.root.ends_with('/') {
            return Err(BenchError::Usage("--root must be an absolute znode path other than /".into()));
        }
        let secs = |name: &str, v: f64| {
            if (0.0..1e7).contains(&v) {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(BenchError::Usage(format!("{name} must be a non-negative number of seconds")))
            }
        };
        let warmup = secs("--warmup", args.warmup)?;
        let io_timeout = secs("--io-timeout", args.io_timeout)?.max(Duration::from_millis(100));
        let duration = match (args.duration, args.ops, args.workload) {
            (Some(d), _, _) => Some(secs("--duration", d)?),
            // These end by themselves (a tree filled, rounds done) unless a duration is given.
            (None, _, Workload::Load | Workload::Expiry | Workload::Watches) => None,
            (None, Some(_), _) => None,
            (None, None, _) => Some(Duration::from_secs(10)),
        };
        let tls = match (&args.tls_ca, &args.tls_cert) {
            (None, None) => None,
            (None, Some(_)) => return Err(BenchError::Usage("--tls-cert and --tls-key need --tls-ca".into())),
            (Some(ca), _) => {
                let settings = rzk_client::TlsSettings { ca: ca.clone(), cert: args.tls_cert.clone(), key: args.tls_key.clone() };
                Some(settings.client_config().map_err(|e| BenchError::Usage(e.to_string()))?)
            }
        };
        let login = match (&args.sasl_user, &args.sasl_password) {
            (Some(u), Some(p)) => {
                Some(rzk_client::sasl::SaslLogin::DigestMd5(rzk_client::SaslCredentials { username: u.clone(), password: p.clone() }))
            }
            _ if args.kerberos || args.kerberos_principal.is_some() => {
                Some(rzk_client::sasl::SaslLogin::Kerberos(rzk_client::KerberosLogin {
                    principal: args.kerberos_principal.clone(),
                    keytab: args.kerberos_keytab.clone(),
                    use_ticket_cache: args.kerberos_keytab.is_none(),
                    ..rzk_client::KerberosLogin::default()
                }))
            }
            _ => None,
        };
        let scale = matches!(args.workload, Workload::Sessions | Workload::Watches);
        if args.local_addrs == 0 {
            return Err(BenchError::Usage("--local-addrs must be at least 1".into()));
        }
        if args.local_addrs > 1 && !addrs.iter().all(|a| a.ip().is_loopback() && a.is_ipv4()) {
            return Err(BenchError::Usage("--local-addrs needs IPv4 loopback --servers (127.0.0.x)".into()));
        }
        let read_chunk_bytes = if scale { 512 } else { conn::READ_CHUNK_BYTES };
        let dial = conn::Dial { addrs, hosts, io_timeout, tls, login, local_addrs: args.local_addrs, read_chunk_bytes };
        Ok(Settings { args, dial, duration, warmup })
    }
}

/// Runs `rzk bench` with parsed options and prints the report.
pub fn run_cli(args: BenchArgs) -> ExitCode {
    let json = args.json;
    let settings = match Settings::from_args(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rzk bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&settings) {
        Ok(result) => {
            if json {
                println!("{}", result.to_json(&settings));
            } else {
                print!("{}", result.to_text(&settings));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rzk bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the workload the settings name and returns its measurements.
pub fn run(s: &Settings) -> Result<report::RunResult, BenchError> {
    match s.args.workload {
        Workload::Watch => scenario::watch(s),
        Workload::Churn => scenario::churn(s),
        Workload::Expiry => scenario::expiry(s),
        Workload::Sessions => scale::sessions(s),
        Workload::Watches => scale::watches(s),
        _ => workload::pipelined(s),
    }
}

/// A single-threaded tokio runtime, the kind every bench thread runs.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Protocol(format!("cannot start a runtime: {e}")))
}

/// A token that keeps the znodes of different runs against the same server apart.
pub(crate) fn run_token() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{:08x}", (nanos as u64 ^ ((std::process::id() as u64) << 32)) as u32)
}
