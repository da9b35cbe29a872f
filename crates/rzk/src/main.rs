//! The `rzk` binary: `rzk server [--config zoo.cfg]` runs a server. With no config it runs a
//! standalone server on port 2181 with its data under ./data.

mod ensemble;
mod status;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

// mimalloc rather than glibc malloc: the server allocates and frees many small buffers per
// request (frames, child names); with glibc, getChildren of 1,000 children ran 3-10x slower
// (numbers in docs/BENCH.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "rzk", version, about = "A ZooKeeper-compatible coordination service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a server (standalone on port 2181 with data under ./data when no config is given).
    Server {
        /// A zoo.cfg in Apache ZooKeeper's format.
        #[arg(long, short = 'c', value_name = "zoo.cfg")]
        config: Option<PathBuf>,
        /// A Java system property as ZooKeeper takes it (`-Dzookeeper.ssl.keyStore.location=…`);
        /// `-D` options in SERVER_JVMFLAGS and JVMFLAGS (as zkServer.sh passes them) count too.
        /// zoo.cfg keys win, as in ZooKeeper.
        #[arg(short = 'D', value_name = "key=value")]
        system_properties: Vec<String>,
    },
    /// What `zkServer.sh status` answers: the client port found in zoo.cfg, then the
    /// server's `Mode:` (exit 0), or "Error contacting service" (exit 1).
    Status {
        /// The zoo.cfg (default: rzk server's own defaults, port 2181).
        #[arg(long, short = 'c', value_name = "zoo.cfg")]
        config: Option<PathBuf>,
        /// zoo.cfg as zkServer.sh takes it: `rzk status zoo.cfg`.
        #[arg(value_name = "zoo.cfg", conflicts_with = "config")]
        file: Option<PathBuf>,
        /// A system property (`-Dzookeeper.ssl.trustStore.location=ca.pem` for a secure
        /// port); `-D` options in CLIENT_JVMFLAGS and JVMFLAGS count too.
        #[arg(short = 'D', value_name = "key=value")]
        system_properties: Vec<String>,
    },
    /// A local ensemble from one command: writes a zoo.cfg and myid per server under --dir
    /// and runs them all until Ctrl-C (clients connect to 127.0.0.1:2181,2182,2183).
    Ensemble {
        /// Voting servers.
        #[arg(long, default_value_t = 3)]
        servers: u16,
        /// Observers (numbered after the voters).
        #[arg(long, default_value_t = 0)]
        observers: u16,
        /// Where each server gets its directory (N/zoo.cfg, N/data).
        #[arg(long, default_value = "./ensemble")]
        dir: PathBuf,
        /// The first server's client port; the others follow.
        #[arg(long, default_value_t = 2181)]
        client_port: u16,
        /// The first server's quorum port; the others follow.
        #[arg(long, default_value_t = 2888)]
        quorum_port: u16,
        /// The first server's election port; the others follow.
        #[arg(long, default_value_t = 3888)]
        election_port: u16,
        #[arg(long, default_value_t = 2000)]
        tick_time: u32,
    },
    /// Load generator for ZooKeeper-compatible servers (see `rzk bench --help`).
    Bench(Box<rzk_bench::BenchArgs>),
    /// A zkCli.sh-style shell: `rzk cli -server host:port [--json] [cmd args...]`.
    #[command(disable_help_flag = true)]
    Cli {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Transaction log tools.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Snapshot tools.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Verify a data directory: every snapshot and log file, then a dry-run recovery.
    Check {
        #[arg(long, short = 'c', value_name = "zoo.cfg")]
        config: Option<PathBuf>,
        /// dataDir (or its version-2 directory) when no --config is given.
        dir: Option<PathBuf>,
    },
    /// Delete old snapshots and logs, keeping COUNT snapshots and the logs they need.
    Purge {
        #[arg(long, short = 'c', value_name = "zoo.cfg")]
        config: Option<PathBuf>,
        /// dataLogDir (or dataDir) when no --config is given.
        dir: Option<PathBuf>,
        /// The snapshot directory, if not the same.
        snap_dir: Option<PathBuf>,
        /// Snapshots to keep (at least 3); default autopurge.snapRetainCount.
        #[arg(short = 'n', long)]
        count: Option<usize>,
    },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Print every txn of a log file (like zkTxnLogToolkit.sh).
    Dump { file: PathBuf },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Print a snapshot's znodes and sessions (like zkSnapShotToolkit.sh).
    Dump {
        file: PathBuf,
        /// Also print each znode's data.
        #[arg(long, short = 'd')]
        data: bool,
    },
}

/// Logs to stderr, or (a server with `zookeeper.log.dir`) to its rolling log file.
fn init_logging(file: Option<rzk_server::shell::rolling::RollingFile>) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RZK_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    match file {
        Some(f) => fmt.with_ansi(false).with_writer(std::sync::Mutex::new(f)).init(),
        None => fmt.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).with_writer(std::io::stderr).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server may log to a file its configuration names; it starts its logging itself.
    if !matches!(cli.command, Command::Server { .. }) {
        init_logging(None);
    }
    match cli.command {
        Command::Server { config, system_properties } => server(config, system_properties),
        Command::Cli { args } => rzk_cli::main(args),
        Command::Status { config, file, system_properties } => status(config.or(file), system_properties),
        Command::Log { command: LogCommand::Dump { file } } => tool(|out| rzk_storage::tools::dump_log(&file, out)),
        Command::Snapshot { command: SnapshotCommand::Dump { file, data } } => {
            tool(|out| rzk_storage::tools::dump_snapshot(&file, data, out))
        }
        Command::Check { config, dir } => match rzk_server::shell::durable::tool_config(config.as_deref(), dir.as_deref(), None) {
            Ok((sc, t)) => tool(|out| rzk_storage::tools::check(&sc.snap_dir, &sc.log_dir, t, sc.max_record_bytes, out)),
            Err(e) => fail(e),
        },
        Command::Purge { config, dir, snap_dir, count } => {
            match rzk_server::shell::durable::tool_config(config.as_deref(), dir.as_deref(), snap_dir.as_deref()) {
                Ok((sc, _)) => match rzk_storage::purge::purge(&sc.snap_dir, &sc.log_dir, count.unwrap_or(sc.snap_retain_count)) {
                    Ok(r) => {
                        r.removed.iter().for_each(|p| println!("removed {}", p.display()));
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(e.to_string()),
                },
                Err(e) => fail(e),
            }
        }
        Command::Bench(args) => rzk_bench::run_cli(*args),
        Command::Ensemble { servers, observers, dir, client_port, quorum_port, election_port, tick_time } => {
            ensemble::run(ensemble::EnsembleArgs { servers, observers, dir, client_port, quorum_port, election_port, tick_time })
        }
    }
}

/// Runs a data tool writing to stdout: exit 0 if it found everything in order, 1 if not.
fn tool(f: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<bool>) -> ExitCode {
    match f(&mut std::io::stdout().lock()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => fail(e.to_string()),
    }
}

fn fail(msg: String) -> ExitCode {
    eprintln!("rzk: {msg}");
    ExitCode::from(2)
}

/// The Java system properties a ZooKeeper server would have: `-D` options from
/// SERVER_JVMFLAGS and JVMFLAGS (zkServer.sh's variables), then the command line's.
fn system_properties(args: &[String]) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut props = std::collections::BTreeMap::new();
    let from_env = ["SERVER_JVMFLAGS", "JVMFLAGS"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .flat_map(|v| v.split_whitespace().filter_map(|t| t.strip_prefix("-D").map(str::to_string)).collect::<Vec<_>>());
    for kv in from_env.chain(args.iter().cloned()) {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => props.insert(k.to_string(), v.to_string()),
            // `-Dflag` alone is "flag=" in Java.
            _ if !kv.is_empty() && !kv.contains('=') => props.insert(kv.clone(), String::new()),
            _ => return Err(format!("-D{kv}: expected -Dkey=value")),
        };
    }
    Ok(props)
}

fn status(config: Option<PathBuf>, mut system_property_args: Vec<String>) -> ExitCode {
    // zkServer.sh status runs its client with CLIENT_JVMFLAGS and JVMFLAGS.
    for var in ["CLIENT_JVMFLAGS", "JVMFLAGS"] {
        if let Ok(v) = std::env::var(var) {
            system_property_args.extend(v.split_whitespace().filter_map(|f| f.strip_prefix("-D")).map(str::to_string));
        }
    }
    let props = match system_properties(&system_property_args) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let (mut cfg, name) = match &config {
        None => (rzk_config::ServerConfig::default_standalone(), "(none: rzk server's defaults)".to_string()),
        Some(path) => match rzk_config::load_with(path, props.clone()) {
            Ok(c) => (c, path.display().to_string()),
            Err(e) => {
                eprintln!("rzk: invalid configuration: {e}");
                return ExitCode::from(2);
            }
        },
    };
    for (k, v) in props {
        cfg.system_properties.entry(k).or_insert(v);
    }
    let my_id = std::fs::read_to_string(cfg.data_dir.join("myid")).ok().and_then(|s| s.trim().parse().ok());
    status::run(&cfg, &name, my_id)
}

fn server(config: Option<PathBuf>, system_property_args: Vec<String>) -> ExitCode {
    let props = match system_properties(&system_property_args) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let cfg = match &config {
        None if !system_property_args.is_empty() => return fail("-D system properties need --config zoo.cfg".into()),
        None => rzk_config::ServerConfig::default_standalone(),
        Some(path) => match rzk_config::load_with(path, props) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("rzk: invalid configuration: {e}");
                return ExitCode::from(2);
            }
        },
    };
    match &cfg.log_dir {
        None => init_logging(None),
        Some(dir) => {
            let path = dir.join(&cfg.log_file);
            let file = std::fs::create_dir_all(dir)
                .and_then(|_| rzk_server::shell::rolling::RollingFile::open(path.clone(), cfg.log_max_file_bytes, cfg.log_max_backups));
            match file {
                Ok(f) => init_logging(Some(f)),
                Err(e) => {
                    // As log4j, whose file appender failing leaves ZooKeeper running: the
                    // server's own log is not its data; it goes to stderr instead.
                    eprintln!("rzk: cannot open the log file {} (zookeeper.log.dir): {e}; logging to stderr", path.display());
                    init_logging(None);
                }
            }
        }
    }
    for (key, line, reason) in &cfg.ignored {
        tracing::info!(key = %key, line, "zoo.cfg key ignored: {reason}");
    }
    for (key, line, reason) in &cfg.warnings {
        tracing::warn!(key = %key, line, "zoo.cfg: {reason}");
    }
    if let (Some(k), Some(file)) = (&cfg.sasl.kerberos, &cfg.sasl.jaas_file) {
        tracing::info!(
            jaas = %file.display(),
            section = %cfg.sasl.server_section,
            principal = %k.principal,
            sasl_acl_scheme = cfg.sasl.provider,
            "SASL GSSAPI (Kerberos) login for clients"
        );
    } else if let (Some(users), Some(file)) = (&cfg.sasl.credentials, &cfg.sasl.jaas_file) {
        tracing::info!(
            jaas = %file.display(),
            section = %cfg.sasl.server_section,
            users = users.len(),
            sasl_acl_scheme = cfg.sasl.provider,
            "SASL DIGEST-MD5 login for clients"
        );
    }
    if cfg.enforce_auth.enabled {
        tracing::info!(schemes = ?cfg.enforce_auth.schemes, "clients must authenticate before any request (enforce.auth)");
    }
    if let Err(e) = std::fs::create_dir_all(&cfg.data_dir) {
        eprintln!("rzk: cannot create dataDir {}: {e}", cfg.data_dir.display());
        return ExitCode::FAILURE;
    }
    // Quorum mode, as ZooKeeper decides it: server.N lines (more than one participant, or
    // standaloneEnabled=false) and the server's id in dataDir/myid.
    let my_id = if cfg.is_standalone() {
        None
    } else {
        let path = cfg.data_dir.join("myid");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => return fail(format!("{} is missing or unreadable ({e}); an ensemble member needs its id there", path.display())),
        };
        let id = match rzk_config::parse_myid(&text) {
            Ok(id) => id,
            Err(e) => return fail(format!("{}: {e}", path.display())),
        };
        if let Err(e) = cfg.check_myid(id) {
            return fail(format!("invalid configuration: {e}"));
        }
        Some(id)
    };
    // The plaintext client address; none when only secureClientPort is set, as ZooKeeper
    // then opens the secure port alone.
    let secure_only = cfg.secure_client_port.is_some();
    let addr = match my_id {
        None if cfg.client_port.is_none() && secure_only => Ok(None),
        None => rzk_server::shell::client_addr(&cfg).map(Some),
        Some(id) => match cfg.client_listen_address(Some(id)) {
            Ok(Some(hp)) => {
                let mut c = cfg.clone();
                c.client_port = Some(hp.port);
                c.client_port_address = Some(hp.host);
                rzk_server::shell::client_addr(&c).map(Some)
            }
            Ok(None) if secure_only => Ok(None),
            Ok(None) => Err("no clientPort (and no client address on this server's server.N line)".to_string()),
            Err(e) => Err(format!("invalid configuration: {e}")),
        },
    };
    let addr = match addr {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rzk: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rzk: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The audit log first: a start-up that fails from here on (a client port in use, say)
    // is audited as `serverStart` failure, as ZooKeeper does.
    let audit = match rzk_server::shell::open_audit(&cfg) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rzk: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(async move {
        let listener = match rzk_server::shell::listen::ClientListeners::bind(&cfg, addr, cfg.client_port_listen_backlog.max(50) as u32) {
            Ok(l) => l,
            Err(e @ rzk_server::shell::listen::ListenError::Bind { .. }) => {
                eprintln!("rzk: {e}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("rzk: invalid configuration: {e}");
                return ExitCode::from(2);
            }
        };
        let secure = listener.secure_port();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            let _ = stop_tx.send(true);
        });
        let result = match my_id {
            None => {
                tracing::info!(addr = ?addr, secure_port = ?secure, data_dir = %cfg.data_dir.display(), "rzk standalone server listening");
                rzk_server::shell::run_with_audit(cfg, None, listener, stop_rx, audit).await
            }
            Some(id) => {
                tracing::info!(addr = ?addr, secure_port = ?secure, myid = id, servers = cfg.servers.len(), data_dir = %cfg.data_dir.display(), "rzk ensemble member listening for clients");
                rzk_server::shell::run_with_audit(cfg, Some(id), listener, stop_rx, audit).await
            }
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rzk: {e}");
                ExitCode::FAILURE
            }
        }
    });
    // Connection tasks may still be parked on sockets; do not wait for them.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
