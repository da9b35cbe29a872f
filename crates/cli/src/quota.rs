//! zkCli's quota commands: `setquota -n|-b|-N|-B val path`, `listquota path`,
//! `delquota [-n|-b|-N|-B] path`. A quota is two nodes under `/zookeeper/quota<path>`: the
//! limits (`zookeeper_limits`, StatsTrack text: `count` / `bytes` soft limits,
//! `countHardLimit` / `byteHardLimit` hard ones, -1 for none) and the usage the server keeps
//! (`zookeeper_stats`). The steps, checks, messages and exit statuses are zkCli.sh's
//! (`SetQuotaCommand`, `ListQuotaCommand`, `DelQuotaCommand`), including its option parsing
//! errors, which are Apache commons-cli's.

use crate::commands::Outcome;
use crate::format::{error_message, error_name};
use rzk_client::{Client, CreateMode, CreateOptions, Error};
use rzk_tree::quota::{limit_path, StatsTrack, LIMIT_NODE, QUOTA_ZOOKEEPER, STAT_NODE};
use serde_json::json;

pub const SETQUOTA_USAGE: &str = "setquota -n|-b|-N|-B val path";
pub const LISTQUOTA_USAGE: &str = "listquota path";
pub const DELQUOTA_USAGE: &str = "delquota [-n|-b|-N|-B] path";

/// The quota options' one group, in commons-cli's order, with their descriptions.
const GROUP: [(char, &str); 4] = [('n', "num soft quota"), ('b', "bytes soft quota"), ('N', "num hard quota"), ('B', "bytes hard quota")];

/// What commons-cli's `DefaultParser` makes of a command line whose options are `GROUP`'s
/// (taking a value or not) or none: the selected option and its value, and the arguments.
#[derive(Debug)]
struct Parsed {
    selected: Option<(char, Option<String>)>,
    args: Vec<String>,
}

/// commons-cli's exceptions as zkCli prints them.
fn parse(rest: &[String], group: bool, with_value: bool, required: bool) -> Result<Parsed, String> {
    let mut p = Parsed { selected: None, args: Vec::new() };
    let mut it = rest.iter().peekable();
    while let Some(tok) = it.next() {
        if !tok.starts_with('-') || tok == "-" {
            p.args.push(tok.clone());
            continue;
        }
        let body = &tok[1..];
        let opt = body.chars().next().filter(|c| group && GROUP.iter().any(|(o, _)| o == c));
        let Some(o) = opt else {
            return Err(format!("org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {tok}"));
        };
        let tail = &body[o.len_utf8()..];
        if !tail.is_empty() && !with_value {
            return Err(format!("org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {tok}"));
        }
        let value = if !with_value {
            None
        } else if !tail.is_empty() {
            Some(tail.to_string())
        } else {
            // The next token is the value unless it is itself an option (a negative number
            // is a value).
            match it.peek() {
                Some(v) if !v.starts_with('-') || v.len() == 1 || v[1..].parse::<f64>().is_ok() => it.next().cloned(),
                _ => return Err(format!("org.apache.commons.cli.MissingArgumentException: Missing argument for option: {o}")),
            }
        };
        match &p.selected {
            Some((s, _)) if *s != o => {
                return Err(format!(
                    "org.apache.commons.cli.AlreadySelectedException: The option '{o}' was specified but an option from this group has already been selected: '{s}'"
                ));
            }
            Some(_) => {}
            None => p.selected = Some((o, value)),
        }
    }
    if required && p.selected.is_none() {
        let names: Vec<String> = GROUP.iter().map(|(o, d)| format!("-{o} {d}")).collect();
        return Err(format!("org.apache.commons.cli.MissingOptionException: Missing required option: [{}]", names.join(", ")));
    }
    Ok(p)
}

fn fail(msg: impl Into<String>, name: &str) -> Outcome {
    Outcome::fail(msg.into(), name)
}

/// zkCli prints some refusals and returns normally: status 0, the message on stderr.
fn refused(msg: impl Into<String>) -> Outcome {
    let msg = msg.into();
    Outcome { stderr: vec![msg.clone()], json: json!({"error": {"code": "Refused", "message": msg}}), ..Default::default() }
}

fn zk_fail(e: &Error, path: &str) -> Outcome {
    fail(error_message(e, path), &error_name(e))
}

/// The failures of the steps of setquota, boxed (an `Outcome` is large).
fn zk_failed(e: &Error, path: &str) -> Box<Outcome> {
    Box::new(zk_fail(e, path))
}

fn failed(msg: impl Into<String>, name: &str) -> Box<Outcome> {
    Box::new(fail(msg, name))
}

/// `Quotas.quotaPath`.
fn quota_path(path: &str) -> String {
    format!("{QUOTA_ZOOKEEPER}{path}")
}

/// `Quotas.trimQuotaPath`.
fn trim_quota_path(path: &str) -> &str {
    path.get(QUOTA_ZOOKEEPER.len()..).unwrap_or("")
}

/// Java's `String.split("/")`: trailing empty strings dropped.
fn java_split(path: &str) -> Vec<&str> {
    let mut v: Vec<&str> = path.split('/').collect();
    while v.last().is_some_and(|s| s.is_empty()) {
        v.pop();
    }
    v
}

pub async fn setquota(zk: &Client, rest: &[String]) -> Outcome {
    let p = match parse(rest, true, true, true) {
        Ok(p) => p,
        Err(m) => return fail(m, "Usage"),
    };
    let Some(path) = p.args.first() else { return fail(SETQUOTA_USAGE, "Usage") };
    if path.starts_with(QUOTA_ZOOKEEPER) {
        return refused(format!("cannot set a quota under the path: {QUOTA_ZOOKEEPER}"));
    }
    let mut quota = StatsTrack::default();
    quota.set_count(-1);
    quota.set_bytes(-1);
    quota.set_count_hard_limit(-1);
    quota.set_byte_hard_limit(-1);
    let (opt, value) = p.selected.expect("the group is required");
    let value = value.unwrap_or_default();
    // checkOptionValue: -n / -N are ints above zero, -b / -B longs of zero or more.
    let parsed: Option<i64> = if matches!(opt, 'n' | 'N') { value.parse::<i32>().ok().map(i64::from) } else { value.parse::<i64>().ok() };
    let Some(v) = parsed else { return refused("NumberFormatException happens when parsing the option value") };
    match opt {
        'n' | 'N' if v <= 0 => return refused("the num quota must be greater than zero"),
        'b' | 'B' if v < 0 => return refused("the bytes quota must be greater than or equal to zero"),
        'n' => quota.set_count(v),
        'b' => quota.set_bytes(v),
        'N' => quota.set_count_hard_limit(v),
        _ => quota.set_byte_hard_limit(v),
    }
    match create_quota(zk, path, &quota).await {
        Ok((warnings, limits)) => Outcome { stdout: warnings, json: json!({"path": path, "quota": limits}), ..Default::default() },
        Err(o) => *o,
    }
}

/// `SetQuotaCommand.createQuota`: the warnings it prints and the limits written, or the
/// failure.
async fn create_quota(zk: &Client, path: &str, quota: &StatsTrack) -> Result<(Vec<String>, String), Box<Outcome>> {
    match zk.exists(path).await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(failed(format!("{path} does not exist."), "NoNode")),
        Err(e) => return Err(zk_failed(&e, path)),
    }
    check_if_child_quota(zk, path).await?;
    check_if_parent_quota(zk, path).await?;
    let persistent = CreateOptions::new(CreateMode::Persistent);
    let ignore_exists = |r: Result<(String, rzk_client::Stat), Error>, p: &str| match r {
        Ok(_) | Err(Error::NodeExists) => Ok(()),
        Err(e) => Err(zk_failed(&e, p)),
    };
    if zk.exists(QUOTA_ZOOKEEPER).await.map_err(|e| zk_failed(&e, QUOTA_ZOOKEEPER))?.is_none() {
        // (zkCli creates both in one try: an existing /zookeeper skips the second.)
        let r = match zk.create2_nullable("/zookeeper", None, &persistent).await {
            Ok(_) => zk.create2_nullable(QUOTA_ZOOKEEPER, None, &persistent).await,
            Err(e) => Err(e),
        };
        ignore_exists(r, QUOTA_ZOOKEEPER)?;
    }
    let mut quota_path = QUOTA_ZOOKEEPER.to_string();
    for part in java_split(path).into_iter().skip(1) {
        quota_path = format!("{quota_path}/{part}");
        if zk.exists(&quota_path).await.map_err(|e| zk_failed(&e, &quota_path))?.is_none() {
            ignore_exists(zk.create2_nullable(&quota_path, None, &persistent).await, &quota_path)?;
        }
    }
    let stat_path = format!("{quota_path}/{STAT_NODE}");
    let limit = format!("{quota_path}/{LIMIT_NODE}");
    let read = |p: String| async move {
        match zk.get_data(&p).await {
            Ok((d, _)) => Ok(StatsTrack::parse(&d)),
            Err(e) => Err(zk_failed(&e, &p)),
        }
    };
    let exists = zk.exists(&limit).await.map_err(|e| zk_failed(&e, &limit))?.is_some();
    if !exists {
        zk.create2_nullable(&limit, Some(quota.to_text().as_bytes()), &persistent).await.map_err(|e| zk_failed(&e, &limit))?;
        let mut stats = StatsTrack::default();
        stats.set_count(0);
        stats.set_bytes(0);
        zk.create2_nullable(&stat_path, Some(stats.to_text().as_bytes()), &persistent).await.map_err(|e| zk_failed(&e, &stat_path))?;
        let limits = read(limit.clone()).await?;
        let usage = read(stat_path.clone()).await?;
        Ok((warnings(&limits, &usage), limits.to_text()))
    } else {
        let mut limits = read(limit.clone()).await?;
        if quota.count() > -1 {
            limits.set_count(quota.count());
        }
        if quota.bytes() > -1 {
            limits.set_bytes(quota.bytes());
        }
        if quota.count_hard_limit() > -1 {
            limits.set_count_hard_limit(quota.count_hard_limit());
        }
        if quota.byte_hard_limit() > -1 {
            limits.set_byte_hard_limit(quota.byte_hard_limit());
        }
        let usage = read(stat_path.clone()).await?;
        let w = warnings(&limits, &usage);
        zk.set_data(&limit, limits.to_text().as_bytes(), -1).await.map_err(|e| zk_failed(&e, &limit))?;
        Ok((w, limits.to_text()))
    }
}

/// `SetQuotaCommand.checkQuota`: a limit below the usage is set, with a warning.
fn warnings(limits: &StatsTrack, usage: &StatsTrack) -> Vec<String> {
    let mut out = Vec::new();
    let below = |limit: i64, used: i64| limit > -1 && limit < used;
    if below(limits.count(), usage.count()) || below(limits.count_hard_limit(), usage.count()) {
        out.push(format!("[Warning]: the count quota you create is less than the existing count:{}", usage.count()));
    }
    if below(limits.bytes(), usage.bytes()) || below(limits.byte_hard_limit(), usage.bytes()) {
        out.push(format!("[Warning]: the bytes quota you create is less than the existing bytes:{}", usage.bytes()));
    }
    out
}

/// `checkIfChildQuota`: no node under the path's quota path may hold a limit node; the
/// subtree is visited as `ZKUtil.visitSubTreeDFS` does, so the first found is zkCli's.
async fn check_if_child_quota(zk: &Client, path: &str) -> Result<(), Box<Outcome>> {
    let real = quota_path(path);
    let nodes = match crate::commands::visit_subtree_dfs(zk, &real).await {
        Ok(n) => n,
        Err((Error::NoNode, _)) => return Ok(()),
        Err((e, at)) => return Err(zk_failed(&e, &at)),
    };
    for node in nodes {
        let children = match zk.get_children(&node).await {
            Ok(c) => c,
            Err(Error::NoNode) => continue,
            Err(e) => return Err(zk_failed(&e, &node)),
        };
        if node != real && children.iter().any(|c| c == LIMIT_NODE) {
            return Err(failed(format!("{path} has a child {} which has a quota", trim_quota_path(&node)), "BadArguments"));
        }
    }
    Ok(())
}

/// `checkIfParentQuota`: no proper ancestor's quota path may hold a limit node.
async fn check_if_parent_quota(zk: &Client, path: &str) -> Result<(), Box<Outcome>> {
    let splits = java_split(path);
    let own = quota_path(path);
    let mut quota_path = QUOTA_ZOOKEEPER.to_string();
    for part in splits.iter().take(splits.len().saturating_sub(1)).skip(1) {
        quota_path = format!("{quota_path}/{part}");
        let children = match zk.get_children(&quota_path).await {
            Ok(c) => c,
            Err(Error::NoNode) => return Ok(()),
            Err(e) => return Err(zk_failed(&e, &quota_path)),
        };
        if children.is_empty() {
            return Ok(());
        }
        if quota_path != own && children.iter().any(|c| c == LIMIT_NODE) {
            return Err(failed(format!("{path} has a parent {} which has a quota", trim_quota_path(&quota_path)), "BadArguments"));
        }
    }
    Ok(())
}

pub async fn listquota(zk: &Client, rest: &[String]) -> Outcome {
    let p = match parse(rest, false, false, false) {
        Ok(p) => p,
        Err(m) => return fail(m, "Usage"),
    };
    let Some(path) = p.args.first() else { return fail(LISTQUOTA_USAGE, "Usage") };
    let limit = limit_path(path);
    let mut o = Outcome { stderr: vec![format!("absolute path is {limit}")], ..Default::default() };
    let mut tracks = Vec::new();
    for node in [limit.clone(), rzk_tree::quota::stat_path(path)] {
        match zk.get_data(&node).await {
            Ok((d, _)) => tracks.push(StatsTrack::parse(&d).to_text()),
            Err(Error::NoNode) => {
                o.stderr.push(format!("quota for {path} does not exist."));
                o.json = json!({"path": path, "quota": null});
                return o;
            }
            Err(e) => {
                let mut f = zk_fail(&e, &node);
                f.stderr.insert(0, o.stderr.remove(0));
                return f;
            }
        }
    }
    o.stdout.push(format!("Output quota for {path} {}", tracks[0]));
    o.stdout.push(format!("Output stat for {path} {}", tracks[1]));
    o.json = json!({"path": path, "quota": tracks[0], "stat": tracks[1]});
    o
}

pub async fn delquota(zk: &Client, rest: &[String]) -> Outcome {
    let p = match parse(rest, true, false, false) {
        Ok(p) => p,
        Err(m) => return fail(m, "Usage"),
    };
    let Some(path) = p.args.first() else { return fail(DELQUOTA_USAGE, "Usage") };
    let parent = quota_path(path);
    let limit = limit_path(path);
    match zk.exists(&limit).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Outcome {
                stdout: vec![format!("Quota does not exist for {path}")],
                json: json!({"path": path, "deleted": false}),
                ..Default::default()
            };
        }
        Err(e) => return zk_fail(&e, &limit),
    }
    let not_found = || refused(format!("quota for {path} does not exist."));
    let data = match zk.get_data(&limit).await {
        Ok((d, _)) => d,
        Err(Error::NoNode) => return not_found(),
        Err(e) => return zk_fail(&e, &limit),
    };
    let mut limits = StatsTrack::parse(&data);
    let result = match p.selected {
        None => delete_all(zk, &parent).await,
        Some((o, _)) => {
            match o {
                'n' => limits.set_count(-1),
                'b' => limits.set_bytes(-1),
                'N' => limits.set_count_hard_limit(-1),
                _ => limits.set_byte_hard_limit(-1),
            }
            zk.set_data(&limit, limits.to_text().as_bytes(), -1).await.map(|_| ()).map_err(|e| (e, limit.clone()))
        }
    };
    match result {
        Ok(()) => Outcome { json: json!({"path": path, "deleted": true}), ..Default::default() },
        Err((Error::NoNode, _)) => not_found(),
        Err((e, at)) => zk_fail(&e, &at),
    }
}

/// The quota's nodes go, then its quota path up to the first ancestor with other children
/// (`trimProcQuotas`).
async fn delete_all(zk: &Client, parent: &str) -> Result<(), (Error, String)> {
    let children = zk.get_children(parent).await.map_err(|e| (e, parent.to_string()))?;
    for c in children {
        let p = format!("{parent}/{c}");
        zk.delete(&p, -1).await.map_err(|e| (e, p.clone()))?;
    }
    let mut path = parent.to_string();
    while path != QUOTA_ZOOKEEPER {
        let children = zk.get_children(&path).await.map_err(|e| (e, path.clone()))?;
        if !children.is_empty() {
            break;
        }
        zk.delete(&path, -1).await.map_err(|e| (e, path.clone()))?;
        path.truncate(path.rfind('/').unwrap_or(0));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_parse_as_commons_cli() {
        let p = parse(&args(&["-n", "5", "/q"]), true, true, true).unwrap();
        assert_eq!((p.selected, p.args), (Some(('n', Some("5".into()))), vec!["/q".to_string()]));
        let p = parse(&args(&["/q", "-b", "-1"]), true, true, true).unwrap();
        assert_eq!(p.selected, Some(('b', Some("-1".into()))));
        assert_eq!(parse(&args(&["-N3", "/q"]), true, true, true).unwrap().selected, Some(('N', Some("3".into()))));
        assert!(parse(&args(&["/q"]), true, true, true)
            .unwrap_err()
            .contains("Missing required option: [-n num soft quota, -b bytes soft quota"));
        assert!(parse(&args(&["-n", "1", "-N", "2", "/q"]), true, true, true)
            .unwrap_err()
            .ends_with("The option 'N' was specified but an option from this group has already been selected: 'n'"));
        assert!(parse(&args(&["-x", "/q"]), true, true, true).unwrap_err().ends_with("Unrecognized option: -x"));
        assert!(parse(&args(&["-n", "/q"]), false, false, false).unwrap_err().ends_with("Unrecognized option: -n"));
        assert_eq!(parse(&args(&["-N", "/q"]), true, false, false).unwrap().selected, Some(('N', None)));
    }

    #[test]
    fn quota_paths() {
        assert_eq!(java_split("/a/b/"), vec!["", "a", "b"]);
        assert_eq!(trim_quota_path("/zookeeper/quota/a/b"), "/a/b");
        let w =
            warnings(&StatsTrack::parse(b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2"), &StatsTrack::parse(b"count=3,bytes=3"));
        assert_eq!(w, vec!["[Warning]: the count quota you create is less than the existing count:3".to_string()]);
    }
}
