//! Golden wire vectors: frames recorded between real clients (kazoo, zkCli.sh, the C client)
//! and a real Apache ZooKeeper 3.8.0 (see tests/golden/README.md). Every frame must decode
//! with rzk's codec and re-encode to exactly the bytes ZooKeeper or its client sent.

use rzk_proto::client::{ConnectRequest, ConnectResponse, ReplyHeader, Request, RequestHeader, Response, WatcherEvent};
use rzk_proto::codes::OpCode;
use rzk_proto::jute::{Reader, Record, Writer};
use std::collections::HashMap;
use std::path::PathBuf;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

#[derive(Default, Debug)]
struct Counts {
    connect: usize,
    requests: usize,
    replies: usize,
    notifications: usize,
}

/// Decodes and re-encodes every frame of one capture file.
fn check_file(name: &str) -> Counts {
    let path = golden_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    let mut counts = Counts::default();
    for conn in doc["connections"].as_array().expect("connections") {
        // Replies name their op by the request's xid on the same connection.
        let mut op_of_xid: HashMap<i32, i32> = HashMap::new();
        for f in conn["frames"].as_array().expect("frames") {
            let bytes = unhex(f["hex"].as_str().expect("hex"));
            assert_eq!(bytes.len() as u64, f["len"].as_u64().unwrap(), "{name} seq {}: len", f["seq"]);
            let ctx = format!("{name} seq {} ({})", f["seq"], f["kind"]);
            let mut w = Writer::new();
            match f["kind"].as_str().unwrap() {
                "ConnectRequest" => {
                    let mut r = Reader::new(&bytes);
                    let req = ConnectRequest::read(&mut r).expect(&ctx);
                    assert_eq!(r.remaining(), 0, "{ctx}: trailing bytes");
                    req.write(&mut w);
                    counts.connect += 1;
                }
                "ConnectResponse" => {
                    let mut r = Reader::new(&bytes);
                    let resp = ConnectResponse::read(&mut r).expect(&ctx);
                    assert_eq!(r.remaining(), 0, "{ctx}: trailing bytes");
                    resp.write(&mut w);
                    counts.connect += 1;
                }
                "request" => {
                    let mut r = Reader::new(&bytes);
                    let h = RequestHeader::read(&mut r).expect(&ctx);
                    assert_eq!(h.op as i64, f["opcode"].as_i64().unwrap(), "{ctx}");
                    op_of_xid.insert(h.xid, h.op);
                    let body = &bytes[bytes.len() - r.remaining()..];
                    let req = Request::decode(h.op, body).expect(&ctx);
                    assert_eq!(req.op().code(), h.op, "{ctx}: op");
                    h.write(&mut w);
                    req.write(&mut w);
                    counts.requests += 1;
                }
                "reply" => {
                    let mut r = Reader::new(&bytes);
                    let h = ReplyHeader::read(&mut r).expect(&ctx);
                    assert_eq!(h.xid as i64, f["xid"].as_i64().unwrap(), "{ctx}");
                    assert_eq!(h.zxid.0, f["zxid"].as_i64().unwrap(), "{ctx}");
                    assert_eq!(h.err as i64, f["err"].as_i64().unwrap(), "{ctx}");
                    let op = op_of_xid.get(&h.xid).copied().unwrap_or_else(|| f["opcode"].as_i64().unwrap() as i32);
                    let op = OpCode::from_code(op).unwrap_or_else(|| panic!("{ctx}: unknown op {op}"));
                    let body = &bytes[bytes.len() - r.remaining()..];
                    // Errors carry no body, except multi, whose body lists per-op results.
                    let resp = if h.err != 0 && !matches!(op, OpCode::Multi | OpCode::MultiRead) {
                        assert!(body.is_empty(), "{ctx}: error reply with a body");
                        Response::Empty
                    } else {
                        Response::decode(op, body).expect(&ctx)
                    };
                    h.write(&mut w);
                    resp.write(&mut w);
                    counts.replies += 1;
                }
                "notification" => {
                    let mut r = Reader::new(&bytes);
                    let h = ReplyHeader::read(&mut r).expect(&ctx);
                    assert_eq!(h.xid, -1, "{ctx}");
                    let ev = WatcherEvent::read(&mut r).expect(&ctx);
                    assert_eq!(r.remaining(), 0, "{ctx}: trailing bytes");
                    if let Some(p) = f["path"].as_str() {
                        assert_eq!(ev.path, p, "{ctx}");
                    }
                    h.write(&mut w);
                    ev.write(&mut w);
                    counts.notifications += 1;
                }
                other => panic!("{ctx}: unknown kind {other}"),
            }
            assert_eq!(w.into_inner(), bytes, "{ctx}: re-encoding differs");
        }
    }
    counts
}

#[test]
fn kazoo_session_round_trips() {
    let c = check_file("kazoo_session.json");
    assert!(c.requests >= 40 && c.replies >= 40 && c.notifications >= 8, "{c:?}");
}

#[test]
fn zkcli_session_round_trips() {
    let c = check_file("zkcli_session.json");
    assert!(c.requests >= 10 && c.notifications >= 1, "{c:?}");
}

#[test]
fn cli_mt_session_round_trips() {
    let c = check_file("cli_mt_session.json");
    assert!(c.requests >= 9 && c.connect == 2, "{c:?}");
}
