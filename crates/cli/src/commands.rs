//! zkCli's commands over an [`rzk_client::Client`]: argument parsing (zkCli's flags and
//! usage lines), the operation, and the output as zkCli prints it, or as JSON.

use crate::format::{acl_json, acl_lines, error_message, error_name, list, parse_acl, stat_json, stat_lines};
use rzk_client::{AddWatchMode, Client, CreateMode, CreateOptions, Error, WatchFuture, WatchStream, WatcherType};
use serde_json::{json, Value};
use std::time::Duration;

/// zkCli's usage line of `reconfig`.
pub const RECONFIG_USAGE: &str = "reconfig [-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | \
                                  [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]";

/// Every command with its usage line, in zkCli's order.
pub const USAGE: &[(&str, &str)] = &[
    ("addWatch", "addWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE"),
    ("addauth", "addauth scheme auth"),
    ("close", "close "),
    ("config", "config [-c] [-w] [-s]"),
    ("connect", "connect host:port"),
    ("create", "create [-s] [-e] [-c] [-t ttl] path [data] [acl]"),
    ("delete", "delete [-v version] path"),
    ("deleteall", "deleteall path [-b batch size]"),
    ("delquota", crate::quota::DELQUOTA_USAGE),
    ("get", "get [-s] [-w] path"),
    ("getAcl", "getAcl [-s] path"),
    ("getAllChildrenNumber", "getAllChildrenNumber path"),
    ("getEphemerals", "getEphemerals path"),
    ("history", "history "),
    ("listquota", crate::quota::LISTQUOTA_USAGE),
    ("ls", "ls [-s] [-w] [-R] path"),
    ("printwatches", "printwatches on|off"),
    ("quit", "quit "),
    ("reconfig", RECONFIG_USAGE),
    ("redo", "redo cmdno"),
    ("removewatches", "removewatches path [-c|-d|-a] [-l]"),
    ("set", "set [-s] [-v version] path data"),
    ("setAcl", "setAcl [-s] [-v version] [-R] path acl"),
    ("setquota", crate::quota::SETQUOTA_USAGE),
    ("stat", "stat [-w] path"),
    ("sync", "sync path"),
    ("version", "version "),
    ("whoami", "whoami "),
];

pub fn usage_text() -> String {
    let mut s = String::from("ZooKeeper -server host:port -client-configuration properties-file cmd args\n");
    for (_, u) in USAGE {
        s.push('\t');
        s.push_str(u);
        s.push('\n');
    }
    s
}

fn usage_of(cmd: &str) -> String {
    USAGE.iter().find(|(c, _)| *c == cmd).map(|(_, u)| u.to_string()).unwrap_or_default()
}

/// What a command produced.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    pub json: Value,
    /// 0 ok, 1 failed, 127 unknown command (zkCli's exit codes).
    pub code: u8,
    /// One-time watches left by the command (printed when they fire, interactively).
    pub watches: Vec<WatchFuture>,
    pub streams: Vec<WatchStream>,
}

impl Outcome {
    fn ok(json: Value) -> Outcome {
        Outcome { json, ..Default::default() }
    }
    fn out(mut self, line: impl Into<String>) -> Outcome {
        self.stdout.push(line.into());
        self
    }
    pub(crate) fn fail(msg: String, name: &str) -> Outcome {
        Outcome { stderr: vec![msg.clone()], json: json!({"error": {"code": name, "message": msg}}), code: 1, ..Default::default() }
    }
    fn zk_error(e: &Error, path: &str) -> Outcome {
        Outcome::fail(error_message(e, path), &error_name(e))
    }
    fn usage(cmd: &str) -> Outcome {
        Outcome::fail(usage_of(cmd), "Usage")
    }
}

/// Splits a command line as zkCli does: on spaces, with '…' or "…" quoting.
pub fn split_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut has = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                has = true;
            }
            None if c.is_whitespace() => {
                if has || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            None => cur.push(c),
        }
    }
    if has || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Flags (`-s`, `-v 3`) and positional arguments of one command.
struct Args {
    flags: Vec<(char, Option<String>)>,
    pos: Vec<String>,
}

impl Args {
    /// `with_value` lists the flags that take a value.
    fn parse(args: &[String], allowed: &str, with_value: &str) -> Option<Args> {
        let mut flags = Vec::new();
        let mut pos = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if a.len() == 2 && a.starts_with('-') && a.as_bytes()[1].is_ascii_alphabetic() {
                let f = a.as_bytes()[1] as char;
                if !allowed.contains(f) {
                    return None;
                }
                let v = if with_value.contains(f) { Some(it.next()?.clone()) } else { None };
                flags.push((f, v));
            } else {
                pos.push(a.clone());
            }
        }
        Some(Args { flags, pos })
    }
    fn has(&self, f: char) -> bool {
        self.flags.iter().any(|(c, _)| *c == f)
    }
    fn value(&self, f: char) -> Option<&str> {
        self.flags.iter().find(|(c, _)| *c == f).and_then(|(_, v)| v.as_deref())
    }
}

fn data_string(d: &Option<Vec<u8>>) -> String {
    match d {
        None => "null".into(),
        Some(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// Runs one ZooKeeper command (not the shell's own: history, redo, connect, close, quit).
pub async fn run(zk: &Client, argv: &[String]) -> Outcome {
    let Some(cmd) = argv.first() else { return Outcome::default() };
    let rest = &argv[1..];
    match cmd.as_str() {
        "ls" => ls(zk, rest).await,
        "get" => get(zk, rest).await,
        "set" => set(zk, rest).await,
        "create" => create(zk, rest).await,
        "delete" => delete(zk, rest).await,
        "deleteall" | "rmr" => deleteall(zk, rest).await,
        "stat" => stat(zk, rest).await,
        "getAcl" => get_acl(zk, rest).await,
        "setAcl" => set_acl(zk, rest).await,
        "addauth" => match rest {
            [scheme, auth, ..] => match zk.add_auth(scheme, auth.as_bytes()).await {
                Ok(()) => Outcome::ok(json!({"ok": true})),
                Err(e) => Outcome::zk_error(&e, ""),
            },
            _ => Outcome::usage("addauth"),
        },
        "sync" => match rest {
            [path] => match zk.sync(path).await {
                Ok(_) => Outcome::ok(json!({"ok": true})).out("Sync is OK"),
                Err(e @ Error::InvalidPath { .. }) => Outcome::zk_error(&e, path),
                Err(e) => Outcome::fail(format!("Sync has failed rc={}", e.code()), &error_name(&e)),
            },
            _ => Outcome::usage("sync"),
        },
        "config" => config(zk, rest).await,
        "reconfig" => reconfig(zk, rest).await,
        "addWatch" => add_watch(zk, rest).await,
        "removewatches" => remove_watches(zk, rest).await,
        "setquota" => crate::quota::setquota(zk, rest).await,
        "listquota" => crate::quota::listquota(zk, rest).await,
        "delquota" => crate::quota::delquota(zk, rest).await,
        "getEphemerals" => {
            let path = rest.first().map(String::as_str).unwrap_or("/");
            match zk.get_ephemerals(path).await {
                Ok(mut v) => {
                    v.sort();
                    Outcome::ok(json!({"ephemerals": v})).out(list(&v))
                }
                Err(e) => Outcome::zk_error(&e, path),
            }
        }
        "getAllChildrenNumber" => match rest {
            [path] => match zk.get_all_children_number(path).await {
                Ok(n) => Outcome::ok(json!({"path": path, "count": n})).out(n.to_string()),
                Err(e) => Outcome::zk_error(&e, path),
            },
            _ => Outcome::usage("getAllChildrenNumber"),
        },
        "whoami" => match zk.who_am_i().await {
            Ok(v) => {
                let mut o = Outcome::ok(
                    json!({"identities": v.iter().map(|c| json!({"scheme": c.auth_scheme, "user": c.user})).collect::<Vec<_>>()}),
                )
                .out("Auth scheme: User");
                for c in &v {
                    o = o.out(format!("{}: {}", c.auth_scheme, c.user));
                }
                o
            }
            Err(e) => Outcome::zk_error(&e, ""),
        },
        "version" => Outcome::ok(json!({"version": env!("CARGO_PKG_VERSION")}))
            .out(format!("rzk cli {} (ZooKeeper 3.9 client protocol)", env!("CARGO_PKG_VERSION"))),
        _ => unknown(cmd),
    }
}

/// zkCli's answer to a command it does not know: the usage, then the complaint; status 127.
pub fn unknown(cmd: &str) -> Outcome {
    let mut o = Outcome::fail(format!("Command not found: Command not found {cmd}"), "CommandNotFound");
    o.stderr.insert(0, usage_text().trim_end().to_owned());
    o.code = 127;
    o
}

async fn ls(zk: &Client, rest: &[String]) -> Outcome {
    let Some(a) = Args::parse(rest, "swR", "") else { return Outcome::usage("ls") };
    let [path] = a.pos.as_slice() else { return Outcome::usage("ls") };
    if a.has('R') {
        let all = match visit_subtree_dfs(zk, path).await {
            Ok(all) => all,
            Err((e, at)) => return Outcome::zk_error(&e, &at),
        };
        let mut o = Outcome::ok(json!({"path": path, "paths": all}));
        o.stdout = all;
        return o;
    }
    let (mut children, stat, w) = if a.has('w') {
        match zk.get_children2_w(path).await {
            Ok((c, s, w)) => (c, s, Some(w)),
            Err(e) => return Outcome::zk_error(&e, path),
        }
    } else {
        match zk.get_children2(path).await {
            Ok((c, s)) => (c, s, None),
            Err(e) => return Outcome::zk_error(&e, path),
        }
    };
    children.sort();
    let mut j = json!({"path": path, "children": children});
    let mut o = Outcome::default().out(list(&children));
    if a.has('s') {
        j["stat"] = stat_json(&stat);
        o.stdout.extend(stat_lines(&stat));
    }
    o.json = j;
    o.watches.extend(w);
    o
}

/// `ZKUtil.visitSubTreeDFS`'s order (what `ls -R` prints): the root, then a node's children
/// (sorted) all before the subtree of the first of them, and so on. A node that goes meanwhile
/// is skipped; a missing root is the error.
pub(crate) async fn visit_subtree_dfs(zk: &Client, root: &str) -> Result<Vec<String>, (Error, String)> {
    let mut all = vec![root.to_string()];
    let mut stack = vec![root.to_string()];
    while let Some(node) = stack.pop() {
        match zk.get_children(&node).await {
            Ok(mut c) => {
                c.sort();
                let paths: Vec<String> = c.iter().map(|c| rzk_client::path::join(&node, c)).collect();
                all.extend(paths.iter().cloned());
                stack.extend(paths.into_iter().rev());
            }
            Err(Error::NoNode) if node != root => {}
            Err(e) => return Err((e, node)),
        }
    }
    Ok(all)
}

async fn get(zk: &Client, rest: &[String]) -> Outcome {
    let Some(a) = Args::parse(rest, "sw", "") else { return Outcome::usage("get") };
    let [path] = a.pos.as_slice() else { return Outcome::usage("get") };
    match zk.get_data_nullable(path, a.has('w')).await {
        Ok((data, stat, w)) => {
            let mut o = Outcome::default().out(data_string(&data));
            let mut j = json!({"path": path, "data": data.as_ref().map(|d| String::from_utf8_lossy(d).into_owned())});
            if a.has('s') {
                o.stdout.extend(stat_lines(&stat));
                j["stat"] = stat_json(&stat);
            }
            o.json = j;
            o.watches.extend(w);
            o
        }
        Err(e) => Outcome::zk_error(&e, path),
    }
}

async fn set(zk: &Client, rest: &[String]) -> Outcome {
    let Some(a) = Args::parse(rest, "sv", "v") else { return Outcome::usage("set") };
    let [path, data] = a.pos.as_slice() else { return Outcome::usage("set") };
    let version = match a.value('v').map(str::parse::<i32>) {
        None => -1,
        Some(Ok(v)) => v,
        Some(Err(_)) => return Outcome::usage("set"),
    };
    match zk.set_data(path, data.as_bytes(), version).await {
        Ok(stat) => {
            let mut o = Outcome::ok(json!({"path": path, "stat": stat_json(&stat)}));
            if a.has('s') {
                o.stdout.extend(stat_lines(&stat));
            }
            o
        }
        Err(e) => Outcome::zk_error(&e, path),
    }
}

async fn create(zk: &Client, rest: &[String]) -> Outcome {
    let Some(a) = Args::parse(rest, "sect", "t") else { return Outcome::usage("create") };
    let (path, data, acl) = match a.pos.as_slice() {
        [p] => (p, None, None),
        [p, d] => (p, Some(d), None),
        [p, d, acl] => (p, Some(d), Some(acl)),
        _ => return Outcome::usage("create"),
    };
    let (s, e, c) = (a.has('s'), a.has('e'), a.has('c'));
    let ttl = match a.value('t').map(str::parse::<u64>) {
        None => None,
        Some(Ok(t)) => Some(Duration::from_millis(t)),
        Some(Err(_)) => return Outcome::usage("create"),
    };
    if c && (s || e || ttl.is_some()) {
        return Outcome::fail("-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.".into(), "Usage");
    }
    if ttl.is_some() && e {
        return Outcome::fail("TTLs cannot be used with Ephemeral znodes".into(), "Usage");
    }
    let mode = match (s, e, c, ttl.is_some()) {
        (_, _, true, _) => CreateMode::Container,
        (true, _, _, true) => CreateMode::PersistentSequentialWithTtl,
        (false, _, _, true) => CreateMode::PersistentWithTtl,
        (true, true, _, _) => CreateMode::EphemeralSequential,
        (true, false, _, _) => CreateMode::PersistentSequential,
        (false, true, _, _) => CreateMode::Ephemeral,
        _ => CreateMode::Persistent,
    };
    let mut opts = CreateOptions { ttl, ..CreateOptions::new(mode) };
    if let Some(acl) = acl {
        match parse_acl(acl) {
            Some(v) => opts.acl = v,
            None => return Outcome::fail(format!("Acl is not valid : {path}"), "InvalidACL"),
        }
    }
    match zk.create2_nullable(path, data.map(|d| d.as_bytes()), &opts).await {
        Ok((created, _)) => Outcome { stderr: vec![format!("Created {created}")], json: json!({"created": created}), ..Default::default() },
        Err(e) => Outcome::zk_error(&e, path),
    }
}

async fn delete(zk: &Client, rest: &[String]) -> Outcome {
    let Some(a) = Args::parse(rest, "v", "v") else { return Outcome::usage("delete") };
    let [path] = a.pos.as_slice() else { return Outcome::usage("delete") };
    let version = match a.value('v').map(str::parse::<i32>) {
        None => -1,
        Some(Ok(v)) => v,
        Some(Err(_)) => return Outcome::usage("delete"),
    };
    match zk.delete(path, version).await {
        Ok(()) => Outcome::ok(json!({"deleted": path})),
        Err(e) => Outcome::zk_error(&e, path),
    }
}

async fn deleteall(zk: &Client, rest: &[String]) -> Outcome {
    let Some(a) = Args::parse(rest, "b", "b") else { return Outcome::usage("deleteall") };
    let [path] = a.pos.as_slice() else { return Outcome::usage("deleteall") };
    // The subtree breadth-first, then deleted deepest first (ZKUtil.deleteRecursive).
    let mut all = vec![path.clone()];
    let mut i = 0;
    while i < all.len() {
        match zk.get_children(&all[i]).await {
            Ok(c) => {
                let base = all[i].clone();
                all.extend(c.iter().map(|c| rzk_client::path::join(&base, c)));
            }
            Err(Error::NoNode) if i > 0 => {}
            Err(e) => return Outcome::zk_error(&e, &all[i]),
        }
        i += 1;
    }
    for p in all.iter().rev() {
        match zk.delete(p, -1).await {
            Ok(()) | Err(Error::NoNode) => {}
            Err(e) => return Outcome::zk_error(&e, p),
        }
    }
    Outcome::ok(json!({"deleted": all}))
}

async fn stat(zk: &Client, rest: &[String]) -> Outcome {
    let Some(a) = Args::parse(rest, "w", "") else { return Outcome::usage("stat") };
    let [path] = a.pos.as_slice() else { return Outcome::usage("stat") };
    let (st, w) = if a.has('w') {
        match zk.exists_w(path).await {
            Ok((s, w)) => (s, Some(w)),
            Err(e) => return Outcome::zk_error(&e, path),
        }
    } else {
        match zk.exists(path).await {
            Ok(s) => (s, None),
            Err(e) => return Outcome::zk_error(&e, path),
        }
    };
    let mut o = match st {
        Some(s) => {
            let mut o = Outcome::ok(json!({"path": path, "stat": stat_json(&s)}));
            o.stdout = stat_lines(&s);
            o
        }
        None => Outcome::zk_error(&Error::NoNode, path),
    };
    o.watches.extend(w);
    o
}

async fn get_acl(zk: &Client, rest: &[String]) -> Outcome {
    let Some(a) = Args::parse(rest, "s", "") else { return Outcome::usage("getAcl") };
    let [path] = a.pos.as_slice() else { return Outcome::usage("getAcl") };
    match zk.get_acl(path).await {
        Ok((acl, stat)) => {
            let mut o = Outcome::ok(json!({"path": path, "acl": acl_json(&acl)}));
            o.stdout = acl_lines(&acl);
            if a.has('s') {
                o.stdout.extend(stat_lines(&stat));
                o.json["stat"] = stat_json(&stat);
            }
            o
        }
        Err(e) => Outcome::zk_error(&e, path),
    }
}

async fn set_acl(zk: &Client, rest: &[String]) -> Outcome {
    let Some(a) = Args::parse(rest, "svR", "v") else { return Outcome::usage("setAcl") };
    let [path, acl] = a.pos.as_slice() else { return Outcome::usage("setAcl") };
    let Some(acl) = parse_acl(acl) else { return Outcome::fail(format!("Acl is not valid : {path}"), "InvalidACL") };
    let version = match a.value('v').map(str::parse::<i32>) {
        None => -1,
        Some(Ok(v)) => v,
        Some(Err(_)) => return Outcome::usage("setAcl"),
    };
    let mut targets = vec![path.clone()];
    if a.has('R') {
        let mut i = 0;
        while i < targets.len() {
            if let Ok(c) = zk.get_children(&targets[i]).await {
                let base = targets[i].clone();
                targets.extend(c.iter().map(|c| rzk_client::path::join(&base, c)));
            }
            i += 1;
        }
    }
    let mut last = None;
    for t in &targets {
        match zk.set_acl(t, &acl, if t == path { version } else { -1 }).await {
            Ok(s) => last = Some(s),
            Err(e) => return Outcome::zk_error(&e, t),
        }
    }
    let mut o = Outcome::ok(json!({"path": path, "updated": targets}));
    if a.has('s') {
        if let Some(s) = last {
            o.stdout = stat_lines(&s);
        }
    }
    o
}

async fn config(zk: &Client, rest: &[String]) -> Outcome {
    let Some(a) = Args::parse(rest, "cws", "") else { return Outcome::usage("config") };
    let got = if a.has('w') {
        zk.get_config_w().await.map(|(d, s, w)| (d, s, Some(w)))
    } else {
        zk.get_config().await.map(|(d, s)| (d, s, None))
    };
    match got {
        Ok((data, stat, w)) => {
            let text = String::from_utf8_lossy(&data).into_owned();
            let mut o = Outcome::ok(json!({"config": text}));
            if a.has('c') {
                o.stdout.push(client_config_str(&text));
            } else {
                // println of the text: an empty configuration is one empty line.
                o.stdout.push(text);
            }
            if a.has('s') {
                o.stdout.extend(stat_lines(&stat));
            }
            o.watches.extend(w);
            o
        }
        Err(e) => Outcome::zk_error(&e, "/zookeeper/config"),
    }
}

/// What `reconfig`'s arguments ask for (zkCli's `ReconfigCommand.parse`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReconfigArgs {
    pub stats: bool,
    /// `-v`, in hex; -1 when not given.
    pub from_config: i64,
    pub joining: Option<String>,
    pub leaving: Option<String>,
    pub members: Option<String>,
    /// `-file`: the path whose membership becomes `members`.
    pub file: Option<String>,
}

/// Parses `reconfig`'s arguments; `Err` is zkCli's message.
pub fn parse_reconfig(rest: &[String]) -> Result<ReconfigArgs, String> {
    let mut a = ReconfigArgs { from_config: -1, ..Default::default() };
    let mut version = None;
    let mut it = rest.iter();
    while let Some(opt) = it.next() {
        let slot = match opt.as_str() {
            "-s" => {
                a.stats = true;
                continue;
            }
            "-v" => &mut version,
            "-file" => &mut a.file,
            "-members" => &mut a.members,
            "-add" => &mut a.joining,
            "-remove" => &mut a.leaving,
            o if o.starts_with('-') => return Err(format!("Unrecognized option: {o}")),
            _ => continue,
        };
        let Some(v) = it.next() else { return Err(format!("Missing argument for option: {}", &opt[1..])) };
        // commons-cli's getOptionValue: the first occurrence.
        slot.get_or_insert_with(|| v.clone());
    }
    if a.file.is_none() && a.members.is_none() && a.joining.is_none() && a.leaving.is_none() {
        return Err(RECONFIG_USAGE.to_string());
    }
    if let Some(v) = version {
        a.from_config = i64::from_str_radix(&v, 16).map_err(|_| "-v must be followed by a long (configuration version)".to_string())?;
    }
    if (a.file.is_some() || a.members.is_some()) && (a.joining.is_some() || a.leaving.is_some()) {
        return Err(
            "Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental modes is not allowed)"
                .to_string(),
        );
    }
    if a.file.is_some() && a.members.is_some() {
        return Err("Can't use -file and -members together (conflicting non-incremental modes)".to_string());
    }
    // zkCli lower-cases what it sends.
    for s in [&mut a.joining, &mut a.leaving, &mut a.members].into_iter().flatten() {
        *s = s.to_lowercase();
    }
    Ok(a)
}

/// `-file`: the membership of a dynamic config file as `QuorumMaj.toString()` prints it
/// (`server.N` lines in id order, then `version=`). Hierarchical files are refused.
pub fn members_of_file(text: &str) -> Result<String, String> {
    let entries = rzk_config::properties::parse(text).map_err(|e| e.to_string())?;
    let mut servers = std::collections::BTreeMap::new();
    let mut version = "0".to_string();
    for e in entries {
        if e.key.starts_with("server.") {
            let spec = rzk_config::parse_server_line(&e.key, &e.value)?;
            servers.insert(spec.id, spec.to_zk_string());
        } else if e.key == "version" {
            version = format!("{:x}", u64::from_str_radix(&e.value, 16).map_err(|_| format!("bad version {}", e.value))?);
        } else if e.key.starts_with("group") || e.key.starts_with("weight") {
            return Err(" (rzk cli: hierarchical membership files are not supported; use -members)".to_string());
        }
    }
    let mut out: Vec<String> = servers.into_iter().map(|(id, s)| format!("server.{id}={s}")).collect();
    out.push(format!("version={version}"));
    Ok(out.join("\n"))
}

async fn reconfig(zk: &Client, rest: &[String]) -> Outcome {
    let mut a = match parse_reconfig(rest) {
        Ok(a) => a,
        Err(m) => return Outcome::fail(m, "Usage"),
    };
    if let Some(path) = &a.file {
        match std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|t| members_of_file(&t)) {
            Ok(m) => a.members = Some(m),
            Err(e) => return Outcome::fail(format!("Error processing {path}{e}"), "Usage"),
        }
    }
    match zk.reconfig(a.joining.as_deref(), a.leaving.as_deref(), a.members.as_deref(), a.from_config).await {
        Ok((data, stat)) => {
            let text = String::from_utf8_lossy(&data).into_owned();
            let mut o = Outcome::ok(json!({"config": text, "stat": stat_json(&stat)})).out("Committed new configuration:");
            o.stdout.push(text);
            if a.stats {
                o.stdout.extend(stat_lines(&stat));
            }
            o
        }
        Err(e) => Outcome::fail(reconfig_error_message(&e), &error_name(&e)),
    }
}

/// `CliWrapperException`'s message for a failed reconfig (its KeeperException has no path).
fn reconfig_error_message(e: &Error) -> String {
    match e {
        Error::ReconfigInProgress => "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)".into(),
        Error::NewConfigNoQuorum => "No quorum of new config is connected and up-to-date with the leader of last commmitted config - \
                                     try invoking reconfiguration after new servers are connected and synced"
            .into(),
        // zkCli prints the (absent) path as nothing.
        Error::NoNode | Error::NoAuth | Error::BadArguments | Error::BadVersion => error_message(e, ""),
        other => other.to_string(),
    }
}

/// `ConfigUtils.getClientConfigStr`: `<version> <host:port>,...`, the client address of each
/// `server.N` (empty for a server without one), in the order Java's `Properties` (a
/// `ConcurrentHashMap` of 16 bins) iterates its keys.
pub fn client_config_str(text: &str) -> String {
    let mut keys: rzk_tree::ConcurrentOrder<String> = rzk_tree::ConcurrentOrder::default();
    let mut values = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            let k = k.trim().to_string();
            keys.insert(k.clone());
            values.insert(k, v.trim().to_string());
        }
    }
    let version = values.get("version").cloned().unwrap_or_default();
    let hosts: Vec<String> = keys
        .ordered()
        .into_iter()
        .filter(|k| k.starts_with("server."))
        .map(|k| match values[k.as_str()].split_once(';').map(|(_, c)| c.trim()) {
            // `;port` alone: the wildcard address, as InetSocketAddress(port) prints it.
            Some(c) if !c.contains(':') => format!("0.0.0.0:{c}"),
            Some(c) => c.to_string(),
            None => String::new(),
        })
        .collect();
    format!("{version} {}", hosts.join(","))
}

async fn add_watch(zk: &Client, rest: &[String]) -> Outcome {
    let Some(a) = Args::parse(rest, "m", "m") else { return Outcome::usage("addWatch") };
    let [path] = a.pos.as_slice() else { return Outcome::usage("addWatch") };
    let mode = match a.value('m') {
        None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
        Some("PERSISTENT") => AddWatchMode::Persistent,
        Some(other) => {
            return Outcome::fail(format!("Unsupported mode: {other}"), "Usage");
        }
    };
    match zk.add_watch(path, mode).await {
        Ok(s) => {
            let mut o = Outcome::ok(json!({"ok": true}));
            o.streams.push(s);
            o
        }
        Err(e) => Outcome::zk_error(&e, path),
    }
}

async fn remove_watches(zk: &Client, rest: &[String]) -> Outcome {
    let Some(a) = Args::parse(rest, "cdal", "") else { return Outcome::usage("removewatches") };
    let [path] = a.pos.as_slice() else { return Outcome::usage("removewatches") };
    let kind = if a.has('c') {
        WatcherType::Children
    } else if a.has('d') {
        WatcherType::Data
    } else {
        WatcherType::Any
    };
    match zk.remove_watches(path, kind, a.has('l')).await {
        Ok(()) => Outcome::ok(json!({"ok": true})),
        Err(e) => Outcome::zk_error(&e, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconfig_arguments_as_zkcli_parses_them() {
        let p = |s: &str| parse_reconfig(&split_line(s));
        let a = p("-s -v 1a -add server.4=H:1:2;3,server.5=h:4:5:observer;6").unwrap();
        assert!(a.stats);
        assert_eq!(a.from_config, 0x1a);
        assert_eq!(a.joining.as_deref(), Some("server.4=h:1:2;3,server.5=h:4:5:observer;6"));
        assert_eq!((a.leaving, a.members), (None, None));
        let a = p("-remove 1,2").unwrap();
        assert_eq!((a.from_config, a.leaving.as_deref()), (-1, Some("1,2")));
        assert_eq!(p("-s").unwrap_err(), RECONFIG_USAGE);
        assert_eq!(p("-v x -remove 1").unwrap_err(), "-v must be followed by a long (configuration version)");
        assert!(p("-members server.1=h:1:2 -remove 1").unwrap_err().starts_with("Can't use -file or -members together with -add"));
        assert!(p("-members a -file b").unwrap_err().starts_with("Can't use -file and -members together"));
        assert_eq!(p("-remove").unwrap_err(), "Missing argument for option: remove");
        assert_eq!(p("-x 1").unwrap_err(), "Unrecognized option: -x");
    }

    #[test]
    fn membership_files_read_as_quorum_maj_prints_them() {
        let text = "server.2=127.0.0.1:2889:3889;2182\nserver.1=127.0.0.1:2888:3888:observer;127.0.0.1:2181\n";
        assert_eq!(
            members_of_file(text).unwrap(),
            "server.1=127.0.0.1:2888:3888:observer;127.0.0.1:2181\nserver.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\nversion=0"
        );
        assert!(members_of_file("group.1=1:2\n").is_err());
        assert!(members_of_file("server.1=nonsense\n").is_err());
    }

    #[test]
    fn client_config_string_is_zookeepers() {
        let text = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
                    server.2=127.0.0.1:2889:3889:participant;2182\n\
                    server.3=127.0.0.1:2890:3890:observer\n\
                    version=100000002";
        // Properties order: server.2 before server.1 (their hashes' bins), as zkCli prints it.
        assert_eq!(client_config_str(text), "100000002 0.0.0.0:2182,127.0.0.1:2181,");
        assert_eq!(client_config_str(""), " ");
    }

    #[test]
    fn lines_split_like_zkcli() {
        assert_eq!(split_line("create /a 'hello world' "), ["create", "/a", "hello world"]);
        assert_eq!(split_line("set /a \"\""), ["set", "/a", ""]);
        assert_eq!(split_line("  ls   /  "), ["ls", "/"]);
    }

    #[test]
    fn flags() {
        let v = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let a = Args::parse(&v("-s -v 3 /a data"), "sv", "v").unwrap();
        assert!(a.has('s'));
        assert_eq!(a.value('v'), Some("3"));
        assert_eq!(a.pos, ["/a", "data"]);
        assert!(Args::parse(&v("-x /a"), "sv", "v").is_none());
        // a data argument that looks like a number stays positional
        let a = Args::parse(&v("/a -1"), "sv", "v").unwrap();
        assert_eq!(a.pos, ["/a", "-1"]);
    }
}
