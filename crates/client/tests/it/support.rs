//! Test support: the servers the client's tests run against, and a fault-injecting proxy.
//!
//! Every test runs against both servers: rzk (started in this process on a loopback port, as
//! crates/server/tests/wire.rs does) and Apache ZooKeeper 3.8 (the Debian jars run with java
//! from a temporary zoo.cfg, as tests/zkharness.py does). One server of each kind serves the
//! whole test binary; each test works under its own chroot. `RZK_CLIENT_TEST_SERVERS=rzk`
//! (or `zookeeper`) runs one kind only. If ZooKeeper is not installed its half is skipped
//! with a message.
//!
//! The ZooKeeper JVM runs under `sh`, reading our stdin: when this process exits, however it
//! exits, the pipe closes and the shell kills the JVM. Nothing outlives the test binary.
//!
//! [`Proxy`] sits between a client and a server and can refuse or black-hole connections,
//! kill them, or swallow the next reply and then kill the connection (a request applied by
//! the server whose reply the client never sees).

#![allow(dead_code)]

use rzk_client::{Client, Config, CreateOptions, SessionInfo};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rzk,
    ZooKeeper,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rzk => "rzk",
            Kind::ZooKeeper => "zookeeper",
        }
    }
}

type SwallowSpec = Arc<Mutex<Option<(i32, Option<i32>)>>>;

/// Both servers: tickTime 200, so session timeouts from 1 s are granted.
const ZOO_CFG: &str = "tickTime=200\ninitLimit=10\nsyncLimit=5\nminSessionTimeout=1000\nmaxSessionTimeout=60000\n\
admin.enableServer=false\n4lw.commands.whitelist=*\nextendedTypesEnabled=true\nznode.container.checkIntervalMs=500\n";

pub struct Server {
    pub kind: Kind,
    pub addr: SocketAddr,
    _guard: Option<Mutex<Child>>,
}

impl Server {
    pub fn hosts(&self) -> String {
        self.addr.to_string()
    }
}

static RZK: OnceLock<Server> = OnceLock::new();
static ZK: OnceLock<Option<Server>> = OnceLock::new();

fn init_tracing() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if let Ok(f) = tracing_subscriber::EnvFilter::try_from_env("RZK_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(f).with_test_writer().try_init();
        }
    });
}

fn enabled(kind: Kind) -> bool {
    match std::env::var("RZK_CLIENT_TEST_SERVERS") {
        Ok(v) => v.split(',').any(|k| k.trim() == kind.name()),
        Err(_) => true,
    }
}

/// The shared server of this kind, or `None` (with a message) when it cannot run here.
pub fn server(kind: Kind) -> Option<&'static Server> {
    init_tracing();
    if !enabled(kind) {
        return None;
    }
    match kind {
        Kind::Rzk => Some(RZK.get_or_init(start_rzk)),
        Kind::ZooKeeper => {
            let s = ZK.get_or_init(|| {
                if !zookeeper_installed() {
                    // Straight to stderr, past the test harness's capture, so it is seen.
                    let _ = writeln!(
                        std::io::stderr(),
                        "SKIPPED: Apache ZooKeeper is not installed (apt-get install zookeeper java): \
                         the client tests run against rzk only"
                    );
                    return None;
                }
                Some(start_zookeeper())
            });
            s.as_ref()
        }
    }
}

fn start_rzk() -> Server {
    let text = format!("{ZOO_CFG}dataDir={}\nclientPort=2181\nclientPortAddress=127.0.0.1\n", workdir("rzk").display());
    let cfg = rzk_config::ServerConfig::parse(&text).expect("config");
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("rzk-server".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = rzk_server::shell::bind("127.0.0.1:0".parse().unwrap(), 128).unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                // Never stopped: the server lives as long as the test binary.
                let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
                let _keep = _stop_tx;
                rzk_server::shell::run(cfg, None, listener, stop_rx).await.unwrap();
            });
        })
        .unwrap();
    let addr = addr_rx.recv_timeout(Duration::from_secs(10)).expect("rzk started");
    Server { kind: Kind::Rzk, addr, _guard: None }
}

const ZK_JARS: &[&str] = &[
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/zookeeper-jute.jar",
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
];

fn java() -> Option<PathBuf> {
    if let Ok(j) = std::env::var("ZK_JAVA") {
        return Some(PathBuf::from(j));
    }
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join("java")).find(|j| j.is_file()))
}

fn zookeeper_installed() -> bool {
    Path::new(ZK_JARS[0]).is_file() && java().is_some()
}

/// A fresh directory for this test process's server of `kind`. The servers live as long as
/// the test binary (statics are never dropped), so their directories are removed here, by
/// the next run: those of test processes that are gone.
fn workdir(kind: &str) -> PathBuf {
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.strip_prefix("rzk-client-test-").and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let d = std::env::temp_dir().join(format!("rzk-client-test-{}-{kind}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_zookeeper() -> Server {
    let dir = workdir("zookeeper");
    let port = free_port();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(&cfg, format!("{ZOO_CFG}dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n", dir.join("data").display()))
        .unwrap();
    std::fs::write(
        dir.join("log4j.properties"),
        format!(
            "log4j.rootLogger=INFO, F\nlog4j.appender.F=org.apache.log4j.FileAppender\nlog4j.appender.F.File={}\n\
             log4j.appender.F.layout=org.apache.log4j.PatternLayout\nlog4j.appender.F.layout.ConversionPattern=%d %-5p [%t] - %m%n\n",
            dir.join("zookeeper.log").display()
        ),
    )
    .unwrap();
    let cp = std::iter::once(dir.display().to_string()).chain(ZK_JARS.iter().map(|s| s.to_string())).collect::<Vec<_>>().join(":");
    let java = java().unwrap();
    // sh runs the JVM in the background and kills it when its stdin (our pipe) closes.
    let script = r#"java="$1"; shift; "$java" "$@" & pid=$!; trap 'kill $pid 2>/dev/null' EXIT INT TERM; read _ignored; kill $pid 2>/dev/null; wait $pid"#;
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(&java)
        .args(["-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", "-Djava.awt.headless=true"])
        .arg(format!("-Dlog4j.configuration=file:{}", dir.join("log4j.properties").display()))
        .args([
            "-Dzookeeper.admin.enableServer=false",
            "-Dzookeeper.extendedTypesEnabled=true",
            "-Dzookeeper.4lw.commands.whitelist=*",
            "-Dznode.container.checkIntervalMs=500",
            "-Dzookeeper.jmx.log4j.disable=true",
        ])
        .arg("-cp")
        .arg(cp)
        .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
        .arg(&cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(std::fs::File::create(dir.join("stdout.log")).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(dir.join("stderr.log")).unwrap()))
        .spawn()
        .expect("start java");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(s) = four_letter(addr, "srvr") {
            if s.starts_with("Zookeeper version") {
                break;
            }
        }
        assert!(Instant::now() < deadline, "ZooKeeper did not start; see {}", dir.display());
        std::thread::sleep(Duration::from_millis(100));
    }
    Server { kind: Kind::ZooKeeper, addr, _guard: Some(Mutex::new(child)) }
}

pub fn four_letter(addr: SocketAddr, word: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(word.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The paths the server says a session watches (`wchc`), sorted.
pub fn watched_paths(addr: SocketAddr, session: rzk_client::SessionId) -> Vec<String> {
    let out = four_letter(addr, "wchc").unwrap_or_default();
    let mut cur = false;
    let mut paths = Vec::new();
    for line in out.lines() {
        if let Some(p) = line.strip_prefix('\t') {
            if cur {
                paths.push(p.trim().to_owned());
            }
        } else if !line.trim().is_empty() {
            cur = line.trim() == session.to_string();
        }
    }
    paths.sort();
    paths
}

/// What a test gets: its server and its own chroot (created fresh).
pub struct Ctx {
    pub kind: Kind,
    pub server: &'static Server,
    /// e.g. `/t-lock_basic-3f2a`; every client from [`Ctx::connect`] is rooted here.
    pub root: String,
}

impl Ctx {
    pub async fn new(kind: Kind, name: &str) -> Option<Ctx> {
        let server = server(kind)?;
        let root = format!("/t-{}-{:08x}", name.replace("::", "-"), fastrand::u32(..));
        let admin = Client::connect(&server.hosts()).await.expect("connect");
        admin.create(&root, b"", &CreateOptions::persistent()).await.expect("test root");
        admin.close().await;
        Some(Ctx { kind, server, root })
    }

    pub fn connect_string(&self) -> String {
        format!("{}{}", self.server.hosts(), self.root)
    }

    pub fn config(&self) -> Config {
        Config { session_timeout: Duration::from_secs(10), connect_timeout: Duration::from_secs(20), ..Config::default() }
    }

    pub async fn connect(&self) -> Client {
        Client::connect_with(&self.connect_string(), self.config()).await.expect("connect")
    }

    pub async fn connect_with(&self, cfg: Config) -> Client {
        Client::connect_with(&self.connect_string(), cfg).await.expect("connect")
    }

    /// A client with a short session through a new proxy.
    pub async fn connect_via(&self, proxy: &Proxy, session_timeout: Duration) -> Client {
        let cfg = Config { session_timeout, connect_timeout: Duration::from_secs(20), ..Config::default() };
        Client::connect_with(&format!("{}{}", proxy.addr, self.root), cfg).await.expect("connect via proxy")
    }

    /// Expires a session the way Curator's tests do: attach a second connection to it with
    /// its id and password, then close that one. The server closes the session.
    pub async fn expire(&self, session: &SessionInfo) {
        let cfg = Config { session: Some(session.clone()), connect_timeout: Duration::from_secs(10), ..Config::default() };
        let other = Client::connect_with(&self.server.hosts(), cfg).await.expect("attach to the session");
        other.close().await;
    }
}

// ------------------------------------------------------------------------------- proxy

const OPEN: u8 = 0;
const REFUSE: u8 = 1;
const BLACKHOLE: u8 = 2;

/// A TCP proxy to a server with faults on demand.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Bumped to kill every live connection.
    generation: Arc<AtomicUsize>,
    /// `(op, xid)`: the reply to the next request of op `op` (its xid, once seen) is
    /// swallowed and its connection killed.
    swallow: SwallowSpec,
    pub connections: Arc<AtomicUsize>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let p = Proxy {
            addr,
            mode: Arc::new(AtomicU8::new(OPEN)),
            generation: Arc::new(AtomicUsize::new(0)),
            swallow: Arc::new(Mutex::new(None)),
            connections: Arc::new(AtomicUsize::new(0)),
        };
        let (mode, gen, swallow, conns) = (p.mode.clone(), p.generation.clone(), p.swallow.clone(), p.connections.clone());
        tokio::spawn(async move {
            loop {
                let Ok((down, _)) = listener.accept().await else { return };
                match mode.load(Ordering::SeqCst) {
                    REFUSE => {
                        drop(down);
                        continue;
                    }
                    BLACKHOLE => {
                        // Accept and say nothing until the mode changes or the generation does.
                        let gen = gen.clone();
                        let mode = mode.clone();
                        tokio::spawn(async move {
                            let g = gen.load(Ordering::SeqCst);
                            while gen.load(Ordering::SeqCst) == g && mode.load(Ordering::SeqCst) == BLACKHOLE {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            drop(down);
                        });
                        continue;
                    }
                    _ => {}
                }
                let Ok(up) = tokio::net::TcpStream::connect(upstream).await else { continue };
                conns.fetch_add(1, Ordering::SeqCst);
                let g = gen.load(Ordering::SeqCst);
                let (gen, mode, swallow) = (gen.clone(), mode.clone(), swallow.clone());
                tokio::spawn(pipe(down, up, g, gen, mode, swallow));
            }
        });
        p
    }

    /// New connections are closed at once; live ones are killed.
    pub fn refuse(&self) {
        self.mode.store(REFUSE, Ordering::SeqCst);
        self.kill_all();
    }

    /// Live connections go silent (nothing passes either way); new ones are accepted and
    /// never answered. The client notices only through its own timeouts.
    pub fn blackhole(&self) {
        self.mode.store(BLACKHOLE, Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.mode.store(OPEN, Ordering::SeqCst);
    }

    pub fn kill_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The reply to the next request of kind `op` is dropped and its connection killed: the
    /// server applied the request, the client never hears so (ConnectionLoss).
    pub fn swallow_reply_to(&self, op: rzk_client::OpCode) {
        *self.swallow.lock().unwrap() = Some((op.code(), None));
    }
}

async fn pipe(
    down: tokio::net::TcpStream,
    up: tokio::net::TcpStream,
    g: usize,
    gen: Arc<AtomicUsize>,
    mode: Arc<AtomicU8>,
    swallow: SwallowSpec,
) {
    let (mut dr, mut dw) = down.into_split();
    let (mut ur, mut uw) = up.into_split();
    // Forward while open; in black-hole mode hold the connection silently; die when the
    // generation changes or the proxy refuses.
    let alive = {
        let gen = gen.clone();
        let mode = mode.clone();
        move || {
            let (gen, mode) = (gen.clone(), mode.clone());
            async move {
                loop {
                    if gen.load(Ordering::SeqCst) != g {
                        return false;
                    }
                    match mode.load(Ordering::SeqCst) {
                        OPEN => return true,
                        BLACKHOLE => tokio::time::sleep(Duration::from_millis(20)).await,
                        _ => return false,
                    }
                }
            }
        }
    };
    let alive2 = alive.clone();
    let swallow2 = swallow.clone();
    let c2s = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut acc: Vec<u8> = Vec::new();
        let mut first = true;
        loop {
            let n = tokio::select! {
                r = dr.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
                _ = tokio::time::sleep(Duration::from_millis(20)) => { if !alive().await { return } else { continue } }
            };
            if !alive().await {
                return;
            }
            // Note the xid of a request whose reply is to be swallowed.
            acc.extend_from_slice(&buf[..n]);
            while acc.len() >= 4 {
                let len = u32::from_be_bytes([acc[0], acc[1], acc[2], acc[3]]) as usize;
                if acc.len() < 4 + len {
                    break;
                }
                let frame: Vec<u8> = acc.drain(..4 + len).collect();
                if !first && len >= 8 {
                    let xid = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                    let op = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
                    let mut sw = swallow2.lock().unwrap();
                    if let Some((want, seen @ None)) = sw.as_mut() {
                        if *want == op {
                            *seen = Some(xid);
                        }
                    }
                }
                first = false;
            }
            if uw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let s2c = async move {
        // Split the server's stream into frames, so a reply can be swallowed whole.
        let mut acc: Vec<u8> = Vec::new();
        let mut handshake_done = false;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = tokio::select! {
                r = ur.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
                _ = tokio::time::sleep(Duration::from_millis(20)) => { if !alive2().await { return } else { continue } }
            };
            if !alive2().await {
                return;
            }
            acc.extend_from_slice(&buf[..n]);
            let mut out = Vec::new();
            while acc.len() >= 4 {
                let len = u32::from_be_bytes([acc[0], acc[1], acc[2], acc[3]]) as usize;
                if acc.len() < 4 + len {
                    break;
                }
                let frame: Vec<u8> = acc.drain(..4 + len).collect();
                if handshake_done && len >= 4 {
                    let xid = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                    let hit = {
                        let mut sw = swallow.lock().unwrap();
                        let hit = matches!(*sw, Some((_, Some(x))) if x == xid);
                        if hit {
                            *sw = None;
                        }
                        hit
                    };
                    if hit {
                        let _ = dw.write_all(&out).await;
                        return; // the reply and the connection are gone
                    }
                }
                handshake_done = true;
                out.extend_from_slice(&frame);
            }
            if dw.write_all(&out).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = c2s => {}
        _ = s2c => {}
    }
}

/// Polls `f` until it returns true or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// Declares one test per server kind: `both!(name)` runs `async fn name(ctx: Ctx)`.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rzk() {
                if let Some(ctx) = $crate::support::Ctx::new($crate::support::Kind::Rzk, stringify!($name)).await {
                    tokio::time::timeout(std::time::Duration::from_secs(60), super::$name(ctx)).await.expect("test timed out");
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn zookeeper() {
                if let Some(ctx) = $crate::support::Ctx::new($crate::support::Kind::ZooKeeper, stringify!($name)).await {
                    tokio::time::timeout(std::time::Duration::from_secs(60), super::$name(ctx)).await.expect("test timed out");
                }
            }
        }
    )*};
}
