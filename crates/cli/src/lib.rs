//! # rzk cli: a shell a zkCli.sh user knows at once
//!
//! `rzk cli -server host:port[,host:port...][/chroot] [-timeout ms] [-r] [--json]
//! [--tls-ca ca.pem [--tls-cert cert.pem --tls-key key.pem]] [--sasl-user NAME --sasl-password PASSWORD]
//! [--kerberos] [--kerberos-principal NAME --kerberos-keytab FILE]
//! [-Dkey=value...] [cmd args...]`
//!
//! With `--tls-ca` it connects over TLS (what zkCli.sh does with
//! `-Dzookeeper.client.secure=true` and its key and trust stores): the server's certificate
//! must chain to the PEM CA file and match the host; `--tls-cert` / `--tls-key` (PEM) present a
//! client certificate, which authenticates the session as `x509:<subject>`.
//!
//! SASL DIGEST-MD5 as zkCli.sh does it: `-Djava.security.auth.login.config=client.jaas` (as an
//! argument, or in `CLIENT_JVMFLAGS` / `JVMFLAGS` as zkCli.sh passes it) names a JAAS file whose
//! `Client` section (`-Dzookeeper.sasl.clientconfig=...` for another) has a `DigestLoginModule`
//! with `username` and `password`; or `--sasl-user NAME --sasl-password PASSWORD`.
//!
//! Kerberos (SASL GSSAPI, with the `kerberos` cargo feature) as zkCli.sh does it: the JAAS
//! `Client` section's `com.sun.security.auth.module.Krb5LoginModule` (`useKeyTab` / `keyTab` /
//! `principal`, `useTicketCache` / `ticketCache`), `-Djava.security.krb5.conf=...` (becomes
//! `KRB5_CONFIG`), `-Dzookeeper.sasl.client.username=...` and
//! `-Dzookeeper.sasl.client.canonicalize.hostname=...`; or `--kerberos` (the ticket cache,
//! `kinit`'s), `--kerberos-principal NAME --kerberos-keytab FILE`.
//!
//! With a command, runs it and exits, printing what zkCli prints (data and listings on
//! stdout; `Created /x` and errors on stderr, worded as zkCli words them), or one JSON
//! document with `--json`. The exit status is 0 on success, 1 on failure, 127 for an unknown
//! command. Without a command, an interactive shell: zkCli's prompt, line editing and
//! history (rustyline; kept in `~/.rzk_cli_history`), tab completion of commands and of paths
//! (children are listed from the server), and watch events printed as they arrive, as zkCli
//! prints them (`WATCHER::` then `WatchedEvent state:… type:… path:…`).
//!
//! # Layout
//! - `commands.rs`: each ZooKeeper command: flags, the operation, text and JSON output.
//! - `format.rs`: Stat blocks, dates, ACLs and error messages the way zkCli prints them.
//! - `quota.rs`: setquota / listquota / delquota, as zkCli's quota commands.
//! - here: options, one-shot mode, the interactive loop and the shell's own commands
//!   (history, redo, connect, close, quit, printwatches).

mod commands;
mod format;
mod quota;

use commands::{split_line, usage_text, Outcome, USAGE};
use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, ExternalPrinter, Helper};
use rzk_client::{Client, Config, KerberosLogin, SaslCredentials, SessionState, TlsClientConfig, TlsSettings, WatchFuture, WatchStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

struct Options {
    server: String,
    timeout: Duration,
    read_only: bool,
    json: bool,
    command: Vec<String>,
    tls: Option<Arc<TlsClientConfig>>,
    sasl: Option<SaslCredentials>,
    kerberos: Option<KerberosLogin>,
}

/// The SASL login of a JAAS client section.
#[derive(Debug)]
enum JaasLogin {
    DigestMd5(SaslCredentials),
    Kerberos(KerberosLogin),
}

/// The `-D` system properties of `CLIENT_JVMFLAGS` and `JVMFLAGS` (zkCli.sh's variables).
fn env_properties() -> Vec<(String, String)> {
    ["CLIENT_JVMFLAGS", "JVMFLAGS"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .flat_map(|v| {
            v.split_whitespace()
                .filter_map(|t| t.strip_prefix("-D")?.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The login of a JAAS file's client section (`ZooKeeperSaslClient`): a `DigestLoginModule`'s
/// `username` / `password`, or a `Krb5LoginModule`'s Kerberos login. `None` when the file has
/// no such section (the Java client then goes on without SASL).
fn sasl_from_jaas(path: &str, section: &str) -> Result<Option<JaasLogin>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("JAAS file {path}: {e}"))?;
    let jaas = rzk_config::sasl::parse_jaas(&text).map_err(|e| format!("JAAS file {path}: {e}"))?;
    let Some(modules) = jaas.get(section) else {
        eprintln!("JAAS file {path} has no section '{section}': not attempting SASL authentication");
        return Ok(None);
    };
    for m in modules {
        if m.class == rzk_config::sasl::KRB5_LOGIN_MODULE {
            return krb5_client_login(m)
                .map(|k| Some(JaasLogin::Kerberos(k)))
                .map_err(|e| format!("JAAS file {path}: section {section}: {e}"));
        }
        if m.class != rzk_config::sasl::DIGEST_LOGIN_MODULE {
            return Err(format!(
                "JAAS file {path}: section {section}: {} is not supported by rzk cli (only {} for DIGEST-MD5 and {} for Kerberos)",
                m.class,
                rzk_config::sasl::DIGEST_LOGIN_MODULE,
                rzk_config::sasl::KRB5_LOGIN_MODULE
            ));
        }
        let opt = |k: &str| m.options.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if let (Some(username), Some(password)) = (opt("username"), opt("password")) {
            return Ok(Some(JaasLogin::DigestMd5(SaslCredentials { username, password })));
        }
    }
    Err(format!("JAAS file {path}: section {section} has no username and password"))
}

/// A client's `Krb5LoginModule`: principal, keytab and ticket cache, as Java reads them;
/// an option rzk cannot honour is an error naming it.
fn krb5_client_login(m: &rzk_config::sasl::LoginModule) -> Result<KerberosLogin, String> {
    let yes = |v: &str| v.trim().eq_ignore_ascii_case("true");
    let mut k = KerberosLogin { use_ticket_cache: false, ..KerberosLogin::default() };
    let mut use_keytab = false;
    let mut keytab = None;
    for (name, v) in &m.options {
        match name.as_str() {
            "principal" => k.principal = Some(v.trim().to_string()),
            "useKeyTab" => use_keytab = yes(v),
            "keyTab" => keytab = Some(std::path::PathBuf::from(v.trim())),
            "useTicketCache" => k.use_ticket_cache = yes(v),
            "ticketCache" => k.ticket_cache = Some(v.trim().to_string()),
            // Prompting, keys kept in the JAAS subject, and debugging mean nothing here.
            "storeKey" | "doNotPrompt" | "debug" | "refreshKrb5Config" | "renewTGT" => {}
            "isInitiator" if yes(v) => {}
            _ => return Err(format!("{} option {name}={v} is not supported by rzk cli", m.class)),
        }
    }
    if use_keytab {
        if k.principal.is_none() {
            return Err("useKeyTab=true needs the principal to log in as".into());
        }
        // Java's default keytab is krb5.conf's; MIT's client keytab default is the same idea.
        k.keytab = Some(keytab.ok_or("useKeyTab=true without keyTab: give the keytab's path")?);
    } else if !k.use_ticket_cache {
        return Err("neither useKeyTab=true nor useTicketCache=true: rzk cli does not prompt for a Kerberos password".into());
    }
    Ok(k)
}

/// Client-side Kerberos properties, as the Java client reads them.
fn kerberos_properties(k: &mut KerberosLogin, prop: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
    if let Some(u) = prop("zookeeper.sasl.client.username") {
        k.service = u;
    }
    if let Some(c) = prop("zookeeper.sasl.client.canonicalize.hostname") {
        k.canonicalize_hostname = c.trim().eq_ignore_ascii_case("true");
    }
    for p in ["zookeeper.server.principal", "zookeeper.server.realm"] {
        if prop(p).is_some() {
            return Err(format!("-D{p} is not supported by rzk cli (the server's principal is zookeeper.sasl.client.username/<host>)"));
        }
    }
    Ok(())
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        server: "localhost:2181".into(),
        timeout: Duration::from_secs(30),
        read_only: false,
        json: false,
        command: vec![],
        tls: None,
        sasl: None,
        kerberos: None,
    };
    let mut tls = TlsSettings::default();
    let mut props = env_properties();
    let (mut sasl_user, mut sasl_password) = (None, None);
    let (mut krb, mut krb_principal, mut krb_keytab) = (false, None, None);
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let value = |i: usize| args.get(i + 1).cloned().ok_or_else(|| format!("{a} needs a value"));
        match a {
            "-server" | "--server" => {
                o.server = value(i)?;
                i += 1;
            }
            "-timeout" | "--timeout" => {
                let v = value(i)?;
                o.timeout = Duration::from_millis(v.parse().map_err(|_| format!("bad -timeout {v}"))?);
                i += 1;
            }
            "-client-configuration" => i += 1,
            "-r" => o.read_only = true,
            "-waitforconnection" => {}
            "--json" | "-json" => o.json = true,
            "--tls-ca" => {
                tls.ca = value(i)?.into();
                i += 1;
            }
            "--tls-cert" => {
                tls.cert = Some(value(i)?.into());
                i += 1;
            }
            "--tls-key" => {
                tls.key = Some(value(i)?.into());
                i += 1;
            }
            "--sasl-user" => {
                sasl_user = Some(value(i)?);
                i += 1;
            }
            "--sasl-password" => {
                sasl_password = Some(value(i)?);
                i += 1;
            }
            "--kerberos" => krb = true,
            "--kerberos-principal" => {
                krb_principal = Some(value(i)?);
                i += 1;
            }
            "--kerberos-keytab" => {
                krb_keytab = Some(std::path::PathBuf::from(value(i)?));
                i += 1;
            }
            d if d.starts_with("-D") => match d[2..].split_once('=') {
                Some((k, v)) => props.push((k.to_string(), v.to_string())),
                None => return Err(format!("{d}: expected -Dkey=value")),
            },
            _ => {
                o.command = args[i..].to_vec();
                break;
            }
        }
        i += 1;
    }
    if tls != TlsSettings::default() {
        if tls.ca.as_os_str().is_empty() {
            return Err("--tls-cert and --tls-key need --tls-ca (the CA file the server's certificate must chain to)".into());
        }
        o.tls = Some(tls.client_config().map_err(|e| e.to_string())?);
    }
    let prop = |k: &str| props.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let jaas = match prop("java.security.auth.login.config") {
        Some(_) if prop("zookeeper.sasl.client").is_some_and(|v| v.eq_ignore_ascii_case("false")) => None,
        Some(path) => sasl_from_jaas(&path, &prop("zookeeper.sasl.clientconfig").unwrap_or_else(|| "Client".into()))?,
        None => None,
    };
    let flags_krb = krb || krb_principal.is_some() || krb_keytab.is_some();
    match (sasl_user, sasl_password) {
        (Some(_), Some(_)) if flags_krb => return Err("--sasl-user and --kerberos... are two logins: choose one".into()),
        (Some(username), Some(password)) => o.sasl = Some(SaslCredentials { username, password }),
        (None, None) if flags_krb => {
            if krb_keytab.is_some() && krb_principal.is_none() {
                return Err("--kerberos-keytab needs --kerberos-principal (whom to log in as)".into());
            }
            let use_ticket_cache = krb_keytab.is_none();
            o.kerberos = Some(KerberosLogin { principal: krb_principal, keytab: krb_keytab, use_ticket_cache, ..KerberosLogin::default() });
        }
        (None, None) => match jaas {
            Some(JaasLogin::DigestMd5(c)) => o.sasl = Some(c),
            Some(JaasLogin::Kerberos(k)) => o.kerberos = Some(k),
            None => {}
        },
        _ => return Err("--sasl-user and --sasl-password go together".into()),
    }
    if let Some(k) = o.kerberos.as_mut() {
        kerberos_properties(k, &prop)?;
        // Java reads krb5.conf from this property; the Kerberos library reads KRB5_CONFIG.
        // Set before the runtime starts its threads.
        if let Some(conf) = prop("java.security.krb5.conf") {
            std::env::set_var("KRB5_CONFIG", conf);
        }
    }
    Ok(o)
}

/// `rzk cli ARGS...` (the arguments after `cli`).
pub fn main(args: Vec<String>) -> ExitCode {
    let opts = match parse_options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n{}", usage_text());
            return ExitCode::from(2);
        }
    };
    if matches!(opts.command.first().map(String::as_str), Some("-h" | "--help" | "help")) {
        print!("{}", usage_text());
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rzk cli: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = if opts.command.is_empty() { interactive(&rt, opts) } else { one_shot(&rt, &opts) };
    rt.shutdown_timeout(Duration::from_millis(100));
    ExitCode::from(code)
}

fn config(opts: &Options) -> Config {
    Config {
        session_timeout: opts.timeout,
        connect_timeout: opts.timeout,
        read_only: opts.read_only,
        tls: opts.tls.clone(),
        sasl: opts.sasl.clone(),
        kerberos: opts.kerberos.clone(),
        ..Config::default()
    }
}

fn one_shot(rt: &tokio::runtime::Runtime, opts: &Options) -> u8 {
    let cmd = opts.command[0].as_str();
    if matches!(cmd, "quit" | "close" | "history" | "printwatches") {
        return 0;
    }
    if !USAGE.iter().any(|(c, _)| *c == cmd) && cmd != "rmr" {
        // Unknown: fail before connecting, as zkCli does.
        return emit(&commands::unknown(cmd), opts.json);
    }
    let zk = match rt.block_on(Client::connect_with(&opts.server, config(opts))) {
        Ok(zk) => zk,
        Err(e) => {
            let msg = format!("Unable to connect to {}: {e}", opts.server);
            if opts.json {
                println!("{}", serde_json::json!({"error": {"code": format::error_name(&e), "message": msg}}));
            } else {
                eprintln!("{msg}");
            }
            return 1;
        }
    };
    let out = rt.block_on(commands::run(&zk, &opts.command));
    rt.block_on(zk.close());
    emit(&out, opts.json)
}

fn emit(out: &Outcome, json: bool) -> u8 {
    if json {
        let doc = if out.json.is_null() { serde_json::json!({"ok": out.code == 0}) } else { out.json.clone() };
        println!("{doc}");
    } else {
        for l in &out.stdout {
            println!("{l}");
        }
        for l in &out.stderr {
            eprintln!("{l}");
        }
    }
    out.code
}

// ------------------------------------------------------------------------ interactive

/// Prints asynchronously arriving text (watch events) above the prompt.
#[derive(Clone)]
struct Printer {
    tx: mpsc::SyncSender<String>,
    enabled: Arc<AtomicBool>,
}

impl Printer {
    fn event(&self, text: String) {
        if self.enabled.load(Ordering::Relaxed) {
            // A full queue drops the line rather than stall the client.
            let _ = self.tx.try_send(format!("\nWATCHER::\n\n{text}"));
        }
    }
}

fn state_name(s: SessionState) -> &'static str {
    match s {
        // ZooKeeper.States, as zkCli.sh's prompt prints them.
        SessionState::Connected => "CONNECTED",
        SessionState::ConnectedReadOnly => "CONNECTEDREADONLY",
        SessionState::Connecting | SessionState::Disconnected => "CONNECTING",
        SessionState::AuthFailed => "AUTH_FAILED",
        SessionState::Expired | SessionState::Closed => "CLOSED",
    }
}

struct Shell<'rt> {
    rt: &'rt tokio::runtime::Runtime,
    opts: Options,
    zk: Arc<Mutex<Option<Client>>>,
    history: Vec<String>,
    printer: Printer,
}

impl Shell<'_> {
    fn client(&self) -> Option<Client> {
        self.zk.lock().expect("client").clone()
    }

    fn connect(&mut self, server: &str) {
        if let Some(old) = self.zk.lock().expect("client").take() {
            self.rt.block_on(old.close());
        }
        self.opts.server = server.to_owned();
        let _guard = self.rt.enter();
        match Client::start(server, config(&self.opts)) {
            Ok(zk) => {
                let mut events = zk.session_events();
                let p = self.printer.clone();
                self.rt.spawn(async move {
                    while let Ok(s) = events.recv().await {
                        p.event(format!("WatchedEvent state:{:?} type:None path:null", s.keeper_state()));
                        if s.is_terminal() {
                            break;
                        }
                    }
                });
                // Wait a little for the session, so the first prompt says CONNECTED.
                let _ = self.rt.block_on(tokio::time::timeout(self.opts.timeout.min(Duration::from_secs(5)), zk.wait_connected()));
                *self.zk.lock().expect("client") = Some(zk);
            }
            Err(e) => eprintln!("{e}"),
        }
    }

    fn prompt(&self) -> String {
        let st = self.client().map(|c| state_name(c.state())).unwrap_or("CLOSED");
        format!("[zk: {}({}) {}] ", self.opts.server, st, self.history.len())
    }

    /// Runs one line; false to quit.
    fn process(&mut self, line: &str) -> bool {
        let argv = split_line(line);
        let Some(cmd) = argv.first() else { return true };
        match cmd.as_str() {
            "quit" => return false,
            "history" => {
                let from = self.history.len().saturating_sub(11);
                for (i, h) in self.history.iter().enumerate().skip(from) {
                    println!("{i} - {h}");
                }
            }
            "redo" => match argv.get(1).and_then(|n| n.parse::<usize>().ok()).and_then(|n| self.history.get(n).cloned()) {
                Some(again) => {
                    self.history.push(again.clone());
                    return self.process(&again);
                }
                None => eprintln!("Command index out of range"),
            },
            "connect" => match argv.get(1) {
                Some(s) => {
                    let s = s.clone();
                    self.connect(&s);
                }
                None => eprintln!("connect host:port"),
            },
            "close" => {
                if let Some(zk) = self.zk.lock().expect("client").take() {
                    self.rt.block_on(zk.close());
                }
            }
            "printwatches" => match argv.get(1).map(String::as_str) {
                Some("on") => self.printer.enabled.store(true, Ordering::Relaxed),
                Some("off") => self.printer.enabled.store(false, Ordering::Relaxed),
                _ => println!("printwatches is {}", if self.printer.enabled.load(Ordering::Relaxed) { "on" } else { "off" }),
            },
            "help" | "h" => eprint!("{}", usage_text()),
            _ => {
                let Some(zk) = self.client() else {
                    eprintln!("Not connected (use connect host:port)");
                    return true;
                };
                let mut out = self.rt.block_on(commands::run(&zk, &argv));
                emit(&out, self.opts.json);
                for w in out.watches.drain(..) {
                    self.rt.spawn(print_watch(w, self.printer.clone()));
                }
                for s in out.streams.drain(..) {
                    self.rt.spawn(print_stream(s, self.printer.clone()));
                }
            }
        }
        true
    }
}

async fn print_watch(w: WatchFuture, p: Printer) {
    if let Ok(ev) = w.await {
        p.event(ev.to_string());
    }
}

async fn print_stream(mut s: WatchStream, p: Printer) {
    while let Some(ev) = s.next().await {
        match ev {
            Ok(ev) => p.event(ev.to_string()),
            Err(e) => p.event(format!("({e})")),
        }
    }
}

/// Tab completion: command names first, then znode paths (children listed from the server).
struct ZkHelper {
    zk: Arc<Mutex<Option<Client>>>,
    handle: tokio::runtime::Handle,
}

impl Completer for ZkHelper {
    type Candidate = String;
    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<String>)> {
        let start = line[..pos].rfind(' ').map(|i| i + 1).unwrap_or(0);
        let word = &line[start..pos];
        if start == 0 {
            let mut c: Vec<String> = USAGE.iter().map(|(c, _)| c.to_string()).filter(|c| c.starts_with(word)).collect();
            c.sort();
            return Ok((start, c));
        }
        if !word.starts_with('/') {
            return Ok((pos, vec![]));
        }
        let (dir, partial) = match word.rfind('/') {
            Some(0) => ("/", &word[1..]),
            Some(i) => (&word[..i], &word[i + 1..]),
            None => return Ok((pos, vec![])),
        };
        let Some(zk) = self.zk.lock().expect("client").clone() else { return Ok((pos, vec![])) };
        let children = self
            .handle
            .block_on(async { tokio::time::timeout(Duration::from_secs(2), zk.get_children(dir)).await })
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        let mut c: Vec<String> = children.into_iter().filter(|c| c.starts_with(partial)).map(|c| rzk_client::path::join(dir, &c)).collect();
        c.sort();
        Ok((start, c))
    }
}

impl Hinter for ZkHelper {
    type Hint = String;
}
impl Highlighter for ZkHelper {}
impl Validator for ZkHelper {}
impl Helper for ZkHelper {}

fn interactive(rt: &tokio::runtime::Runtime, opts: Options) -> u8 {
    let mut rl: Editor<ZkHelper, DefaultHistory> = match Editor::new() {
        Ok(rl) => rl,
        Err(e) => {
            eprintln!("rzk cli: {e}");
            return 1;
        }
    };
    let zk = Arc::new(Mutex::new(None));
    rl.set_helper(Some(ZkHelper { zk: zk.clone(), handle: rt.handle().clone() }));
    let history_file = std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".rzk_cli_history"));
    if let Some(f) = &history_file {
        let _ = rl.load_history(f);
    }
    // Events are printed by one thread, above the prompt when the terminal allows it.
    let (tx, rx) = mpsc::sync_channel::<String>(1024);
    let external = rl.create_external_printer().ok();
    std::thread::spawn(move || {
        let mut external = external;
        while let Ok(line) = rx.recv() {
            match external.as_mut() {
                Some(p) => {
                    let _ = p.print(format!("{line}\n"));
                }
                None => println!("{line}"),
            }
        }
    });
    let server = opts.server.clone();
    let mut shell = Shell { rt, opts, zk, history: Vec::new(), printer: Printer { tx, enabled: Arc::new(AtomicBool::new(true)) } };
    println!("Connecting to {server}");
    shell.connect(&server);
    loop {
        let prompt = shell.prompt();
        match rl.readline(&prompt) {
            Ok(line) => {
                let line = line.trim().to_owned();
                if line.is_empty() {
                    continue;
                }
                let _ = rl.add_history_entry(line.as_str());
                if !line.starts_with("redo") {
                    shell.history.push(line.clone());
                }
                if !shell.process(&line) {
                    break;
                }
            }
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(_) => break,
        }
    }
    if let Some(f) = &history_file {
        let _ = rl.save_history(f);
    }
    if let Some(zk) = shell.zk.lock().expect("client").take() {
        rt.block_on(zk.close());
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krb(opts: &str) -> Result<KerberosLogin, String> {
        let j =
            rzk_config::sasl::parse_jaas(&format!("Client {{ com.sun.security.auth.module.Krb5LoginModule required {opts}; }};")).unwrap();
        krb5_client_login(&j["Client"][0])
    }

    #[test]
    fn jaas_client_kerberos_logins() {
        let k = krb(r#"useKeyTab=true keyTab="/k" principal="bob@R" storeKey=false useTicketCache=false"#).unwrap();
        assert_eq!(
            (k.principal.as_deref(), k.keytab.as_deref(), k.use_ticket_cache),
            (Some("bob@R"), Some(std::path::Path::new("/k")), false)
        );
        assert_eq!((k.service.as_str(), k.canonicalize_hostname), ("zookeeper", true));
        let k = krb(r#"useTicketCache=true ticketCache="/tmp/cc""#).unwrap();
        assert_eq!((k.keytab, k.use_ticket_cache, k.ticket_cache.as_deref()), (None, true, Some("/tmp/cc")));
        for (opts, want) in [
            (r#"useKeyTab=true keyTab="/k""#, "needs the principal"),
            (r#"useKeyTab=true principal="bob""#, "without keyTab"),
            ("doNotPrompt=true", "does not prompt"),
            (r#"useTicketCache=true krb5.conf="/x""#, "krb5.conf=/x is not supported"),
            ("useTicketCache=true isInitiator=false", "isInitiator"),
        ] {
            let e = krb(opts).unwrap_err();
            assert!(e.contains(want), "{opts}: {e}");
        }
    }

    #[test]
    fn kerberos_properties_as_the_java_client_reads_them() {
        let mut k = KerberosLogin::default();
        let props = [("zookeeper.sasl.client.username", "zk"), ("zookeeper.sasl.client.canonicalize.hostname", "false")];
        kerberos_properties(&mut k, &|n| props.iter().find(|(p, _)| *p == n).map(|(_, v)| v.to_string())).unwrap();
        assert_eq!((k.service.as_str(), k.canonicalize_hostname), ("zk", false));
        let e = kerberos_properties(&mut k, &|n| (n == "zookeeper.server.principal").then(|| "zookeeper/h@R".to_string())).unwrap_err();
        assert!(e.contains("zookeeper.server.principal"), "{e}");
    }
}
