//! End-to-end over TCP: the shell and core serving a raw jute client on a loopback port.
//! (Real ZooKeeper clients — kazoo, zkCli.sh, the C client — are driven from tests/ at the
//! repository root; these tests keep the wire path covered inside `cargo test`.)

use rzk_proto::client::{
    self, ConnectRequest, ConnectResponse, Create, DeleteRequest, PathWatchRequest, ReplyHeader, Request, Response, SetDataRequest,
    WatcherEvent,
};
use rzk_proto::{Acl, OpCode, Reader, Record, SessionId, Zxid};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

struct Server {
    addr: SocketAddr,
    data_dir: std::path::PathBuf,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(extra: &str) -> Server {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let data_dir = std::env::temp_dir().join(format!("rzk-wire-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let text = format!("tickTime=200\ndataDir={}\nclientPort=2181\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n{extra}", data_dir.display());
        let cfg = rzk_config::ServerConfig::parse(&text).expect("config");
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = rzk_server::shell::bind("127.0.0.1:0".parse().unwrap(), 128).unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                rzk_server::shell::run(cfg, None, listener, stop_rx).await.unwrap();
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).expect("server started");
        Server { addr, data_dir, stop, thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

struct Client {
    s: TcpStream,
    xid: i32,
    session: SessionId,
    events: Vec<WatcherEvent>,
}

fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut b = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut b)?;
    Ok(b)
}

impl Client {
    fn connect(addr: SocketAddr, session: SessionId, passwd: Vec<u8>) -> (Client, ConnectResponse) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let req = ConnectRequest { timeout_ms: 4000, session_id: session, passwd, read_only: Some(false), ..Default::default() };
        let mut w = rzk_proto::Writer::for_frame();
        req.write(&mut w);
        s.write_all(&w.finish_frame()).unwrap();
        let resp = ConnectResponse::read(&mut Reader::new(&read_frame(&mut s).unwrap())).unwrap();
        (Client { s, xid: 0, session: resp.session_id, events: vec![] }, resp)
    }

    fn call(&mut self, req: Request) -> (i32, Response) {
        self.xid += 1;
        self.s.write_all(&client::request_frame(self.xid, &req)).unwrap();
        loop {
            let f = read_frame(&mut self.s).unwrap();
            let mut r = Reader::new(&f);
            let h = ReplyHeader::read(&mut r).unwrap();
            if h.xid == -1 {
                self.events.push(WatcherEvent::read(&mut r).unwrap());
                continue;
            }
            assert_eq!(h.xid, self.xid);
            if h.err != 0 {
                return (h.err, Response::Empty);
            }
            return (0, Response::decode(req.op(), r.rest()).unwrap());
        }
    }
}

fn create(path: &str, data: &[u8], flags: i32) -> Request {
    Request::Create(Create { op: OpCode::Create2, path: path.into(), data: Some(data.to_vec()), acl: Acl::open_unsafe(), flags, ttl: None })
}

#[test]
fn create_get_set_delete_and_watch() {
    let srv = Server::start("");
    let (mut a, resp) = Client::connect(srv.addr, SessionId(0), vec![0; 16]);
    assert_eq!(resp.timeout_ms, 4000);
    let (mut b, _) = Client::connect(srv.addr, SessionId(0), vec![0; 16]);

    let (err, r) = a.call(create("/a", b"hello", 0));
    assert_eq!(err, 0);
    let Response::Create2 { path, stat } = r else { panic!("{r:?}") };
    assert_eq!(path, "/a");
    // Two createSession txns came first.
    assert_eq!(stat.czxid, Zxid(3));

    let (err, r) = b.call(Request::GetData(PathWatchRequest { path: "/a".into(), watch: true }));
    assert_eq!(err, 0);
    assert!(matches!(r, Response::GetData { data: Some(ref data), .. } if data == b"hello"));

    let (err, _) = a.call(Request::SetData(SetDataRequest { path: "/a".into(), data: Some(b"x".to_vec()), version: 5 }));
    assert_eq!(err, -103, "bad version");
    let (err, r) = a.call(Request::SetData(SetDataRequest { path: "/a".into(), data: Some(b"x".to_vec()), version: 0 }));
    assert_eq!(err, 0);
    let Response::Stat(stat) = r else { panic!() };
    assert_eq!(stat.version, 1);
    assert_eq!(stat.mzxid, Zxid(5), "the failed setData took zxid 4");

    // b's watch fires before b's next reply.
    let (err, _) = b.call(Request::Exists(PathWatchRequest { path: "/nope".into(), watch: false }));
    assert_eq!(err, -101);
    assert_eq!(b.events.len(), 1);
    assert_eq!((b.events[0].event_type, b.events[0].path.as_str()), (3, "/a"));

    let (err, _) = a.call(create("/a", b"", 0));
    assert_eq!(err, -110, "node exists");
    let (err, _) = a.call(create("a", b"", 0));
    assert_eq!(err, -8, "bad arguments");
    let (err, _) = a.call(Request::Delete(DeleteRequest { path: "/a".into(), version: -1 }));
    assert_eq!(err, 0);
}

#[test]
fn reattach_keeps_session_and_bad_password_is_refused() {
    let srv = Server::start("");
    let (mut a, resp) = Client::connect(srv.addr, SessionId(0), vec![0; 16]);
    let (err, _) = a.call(create("/e", b"", 1));
    assert_eq!(err, 0);
    let session = a.session;
    drop(a);
    let (_, bad) = Client::connect(srv.addr, session, vec![1; 16]);
    assert_eq!(bad.session_id, SessionId(0));
    assert_eq!(bad.timeout_ms, 0);
    let (mut again, ok) = Client::connect(srv.addr, session, resp.passwd.clone());
    assert_eq!(ok.session_id, session);
    let (err, _) = again.call(Request::Exists(PathWatchRequest { path: "/e".into(), watch: false }));
    assert_eq!(err, 0, "the ephemeral survived the reconnect");
}

#[test]
fn expiry_removes_ephemerals() {
    let srv = Server::start("minSessionTimeout=400\nmaxSessionTimeout=400\n");
    let (mut a, _) = Client::connect(srv.addr, SessionId(0), vec![0; 16]);
    assert_eq!(a.call(create("/eph", b"", 1)).0, 0);
    let (mut b, _) = Client::connect(srv.addr, SessionId(0), vec![0; 16]);
    assert_eq!(b.call(Request::Exists(PathWatchRequest { path: "/eph".into(), watch: true })).0, 0);
    // a goes silent; b keeps pinging.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (err, _) = b.call(Request::Exists(PathWatchRequest { path: "/eph".into(), watch: false }));
        if err == -101 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "ephemeral never expired");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(b.events.iter().any(|e| e.event_type == 2 && e.path == "/eph"));
    drop(a);
}

#[test]
fn oversized_frame_closes_only_that_connection() {
    let srv = Server::start("");
    let mut bad = TcpStream::connect(srv.addr).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    bad.write_all(&0x7fff_ffffu32.to_be_bytes()).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(bad.read(&mut buf).unwrap_or(0), 0, "closed");
    let (mut good, _) = Client::connect(srv.addr, SessionId(0), vec![0; 16]);
    assert_eq!(good.call(Request::Ping).0, 0);
}

#[test]
fn four_letter_words() {
    let srv = Server::start("");
    let ask = |w: &str| {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(w.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert_eq!(ask("ruok"), "imok");
    assert!(ask("srvr").starts_with("Zookeeper version: 3.9"));
    assert!(ask("mntr").contains("zk_znode_count\t"));
}
