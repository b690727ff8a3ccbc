//! The serving loop's limits, through the real loop on 127.0.0.1 with small limits: connections
//! that send too slowly or nothing at all are closed, the connection cap holds, and each
//! client's request rates are kept (by peer address, or by `X-Forwarded-For` from a trusted
//! proxy only). Every wait is bounded; raw sockets, so the test controls every byte.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use proxy::http::{Limits, RateLimits, TrustedProxies};
use proxy::store::SharedStore;
use proxy::store::edge::EdgeStore;
use serde_json::Value;
use testkit::server::serve_config;
use testkit::{TestServer, app_state, public_stub, tiny_model};

/// How long a test waits for something that should happen within a second or two.
const PATIENCE: Duration = Duration::from_secs(10);

struct Fixture {
    server: TestServer,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

/// A server over an empty store with `rates`, `trusted` proxies and connection `limits`.
fn serve(limits: Limits, rates: RateLimits, trusted: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: SharedStore = Arc::new(EdgeStore::new(dir.path().join("qdrant")));
    let state = app_state(store, &tiny_model(), dir.path(), None, None);
    let mut config = serve_config(&public_stub(dir.path()), vec![]);
    config.rate_limits = rates;
    config.trusted_proxies = trusted.parse::<TrustedProxies>().expect("trusted proxies");
    Fixture {
        server: TestServer::start_with(state, config, limits),
        _dir: dir,
    }
}

fn limits(header: u64, idle: u64, body: u64, connections: usize) -> Limits {
    Limits {
        header_timeout: Duration::from_secs(header),
        idle_timeout: Duration::from_secs(idle),
        body_timeout: Duration::from_secs(body),
        max_connections: connections,
        ..Limits::default()
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    stream
}

/// Whether the server closed the connection (EOF or reset) within [`PATIENCE`]; panics if it
/// sent anything instead.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!(
            "expected a close, got {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(_) => true,
    }
}

/// An HTTP answer read off a socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// A 429 the way the API promises it: a JSON error and a `Retry-After` of a second or more.
    fn assert_rate_limited(&self) {
        assert_eq!(self.status, 429, "{self:?}");
        assert_eq!(self.json()["error"]["code"], "rate_limited", "{self:?}");
        assert!(self.json()["error"]["message"].is_string(), "{self:?}");
        let retry: u64 = self
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no Retry-After in {self:?}"));
        assert!(retry >= 1, "{self:?}");
    }
}

/// Read one answer (with a `Content-Length`) off `stream`.
fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).expect("reading an answer");
        assert!(n > 0, "closed before an answer: {data:?}");
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let mut answer = Answer {
        status,
        head,
        body: Vec::new(),
    };
    let length: usize = answer
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).expect("reading a body");
        assert!(n > 0, "closed mid-body");
        body.extend_from_slice(&buf[..n]);
    }
    answer.body = body;
    answer
}

/// One request on a new connection, with extra header lines.
fn request(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> Answer {
    let mut stream = connect(addr);
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(raw.as_bytes()).expect("writing a request");
    read_answer(&mut stream)
}

fn healthz(addr: SocketAddr, headers: &str) -> Answer {
    request(addr, "GET", "/healthz", headers, "")
}

fn vote(addr: SocketAddr, headers: &str) -> Answer {
    let vote = r#"{"query":"a red bus","image_id":"img0","label":"relevant"}"#;
    request(addr, "POST", "/api/feedback", headers, vote)
}

fn text_search(addr: SocketAddr) -> Answer {
    request(addr, "POST", "/api/search", "", r#"{"text":"a red bus"}"#)
}

fn vector_search(addr: SocketAddr) -> Answer {
    let vector = serde_json::to_string(&vec![0.25f32; 16]).expect("json");
    request(
        addr,
        "POST",
        "/api/search",
        "",
        &format!(r#"{{"vector":{vector}}}"#),
    )
}

fn similar(addr: SocketAddr) -> Answer {
    request(addr, "POST", "/api/similar", "", r#"{"id":"img0"}"#)
}

#[test]
fn a_half_sent_header_is_closed_after_the_header_timeout() {
    let f = serve(limits(1, 30, 30, 16), RateLimits::off(), "");
    let mut half = connect(f.addr());
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: te")
        .expect("half a head");
    // A connection that sends nothing at all gets the same deadline.
    let mut silent = connect(f.addr());
    assert!(closed_by_server(&mut half), "a half-sent head was kept");
    assert!(
        closed_by_server(&mut silent),
        "a silent connection was kept"
    );
    // The server still answers.
    assert_eq!(healthz(f.addr(), "").status, 200);
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    // The head timeout is longer than the test waits: only the idle timeout can close it.
    let f = serve(limits(60, 1, 30, 16), RateLimits::off(), "");
    let mut stream = connect(f.addr());
    // Let the watchdog settle on the (long) head deadline first: the request, then the idle
    // wait, must each move it sooner.
    std::thread::sleep(Duration::from_millis(200));
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .expect("a request");
    assert_eq!(read_answer(&mut stream).status, 200);
    assert!(closed_by_server(&mut stream), "an idle connection was kept");
}

#[test]
fn a_trickling_body_is_answered_408() {
    let f = serve(limits(30, 30, 1, 16), RateLimits::off(), "");
    let mut stream = connect(f.addr());
    stream
        .write_all(
            b"POST /api/search HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
              Content-Length: 200\r\n\r\n{\"text\":",
        )
        .expect("a head");
    // One byte every 100 ms: always progress, never done (200 bytes would take 20 s).
    let mut writer = stream.try_clone().expect("clone");
    let trickle = std::thread::spawn(move || {
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(100));
            if writer.write_all(b" ").is_err() {
                return;
            }
        }
    });
    let answer = read_answer(&mut stream);
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.json()["error"]["code"], "body_timeout");
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(closed_by_server(&mut stream));
    drop(stream);
    trickle.join().expect("the writer");
}

#[test]
fn the_connection_cap_holds() {
    let f = serve(limits(30, 30, 30, 2), RateLimits::off(), "");
    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
    let mut open: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = connect(f.addr());
            stream.write_all(request).expect("a request");
            assert_eq!(read_answer(&mut stream).status, 200);
            stream
        })
        .collect();
    // A third connects (the kernel's backlog takes it) but is not served while two are open.
    let mut third = connect(f.addr());
    third.write_all(request).expect("a request");
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .expect("read timeout");
    let mut buf = [0u8; 64];
    let early = third.read(&mut buf);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "the third connection was served while two were open: {early:?}"
    );
    // One closes: the third is served.
    drop(open.pop());
    third
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    assert_eq!(read_answer(&mut third).status, 200);
    // And the one still open is served too.
    open[0].write_all(request).expect("a request");
    assert_eq!(read_answer(&mut open[0]).status, 200);
}

/// A connection to `to` from the loopback address `from` (127.0.0.0/8 is all loopback).
fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((from, 0)))?;
            socket.connect(to).await?.into_std()
        })
        .expect("connecting from another loopback address");
    stream.set_nonblocking(false).expect("blocking");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    stream
}

#[test]
fn one_client_cannot_hold_every_connection() {
    let f = serve(
        Limits {
            max_connections_per_client: 2,
            ..limits(30, 30, 30, 100)
        },
        RateLimits::off(),
        "",
    );
    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
    let served = |stream: &mut TcpStream| {
        stream.write_all(request).expect("a request");
        read_answer(stream).status
    };
    let mut first = connect_from([127, 0, 0, 5], f.addr());
    let mut second = connect_from([127, 0, 0, 5], f.addr());
    assert_eq!((served(&mut first), served(&mut second)), (200, 200));
    // A third from the same client is closed unanswered; another client is served.
    let mut third = connect_from([127, 0, 0, 5], f.addr());
    let _ = third.write_all(request);
    assert!(closed_by_server(&mut third), "a third connection was kept");
    let mut other = connect_from([127, 0, 0, 6], f.addr());
    assert_eq!(served(&mut other), 200);
    // Once one closes, the client may open another.
    drop(first);
    std::thread::sleep(Duration::from_millis(200));
    let mut again = connect_from([127, 0, 0, 5], f.addr());
    assert_eq!(served(&mut again), 200);
    assert_eq!(served(&mut second), 200);
}

#[test]
fn a_trusted_proxy_is_not_capped_per_client() {
    let f = serve(
        Limits {
            max_connections_per_client: 1,
            uncapped: "127.0.0.7".parse().expect("trusted proxies"),
            ..limits(30, 30, 30, 100)
        },
        RateLimits::off(),
        "127.0.0.7",
    );
    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
    let mut open: Vec<TcpStream> = (0..3)
        .map(|_| connect_from([127, 0, 0, 7], f.addr()))
        .collect();
    for stream in &mut open {
        stream.write_all(request).expect("a request");
        assert_eq!(read_answer(stream).status, 200);
    }
}

fn tight_rates() -> RateLimits {
    RateLimits {
        feedback: "1/h:3".parse().expect("rate"),
        text_search: "1/h:2".parse().expect("rate"),
        vector_search: "1/h:4".parse().expect("rate"),
        similar: "1/h:2".parse().expect("rate"),
        ..RateLimits::default()
    }
}

#[test]
fn a_burst_over_a_rate_is_refused_and_health_still_answers() {
    let f = serve(Limits::default(), tight_rates(), "");
    let addr = f.addr();
    for i in 0..3 {
        let a = vote(addr, "");
        assert_ne!(a.status, 429, "vote {i} was refused: {a:?}");
    }
    vote(addr, "").assert_rate_limited();

    // Text and vector searches count apart: text is out after two, vectors go on.
    for _ in 0..2 {
        assert_ne!(text_search(addr).status, 429);
    }
    text_search(addr).assert_rate_limited();
    for _ in 0..4 {
        let a = vector_search(addr);
        assert_ne!(a.status, 429, "{a:?}");
    }
    vector_search(addr).assert_rate_limited();
    // A body that is not JSON counts as a text search (the stricter rate).
    request(addr, "POST", "/api/search", "", "{not json").assert_rate_limited();

    for _ in 0..2 {
        assert_ne!(similar(addr).status, 429);
    }
    similar(addr).assert_rate_limited();
    // `/api/cutoff` (which may start a refit) shares the similar-image bucket.
    request(addr, "GET", "/api/cutoff", "", "").assert_rate_limited();

    // Never limited: health, readiness, the site.
    for path in ["/healthz", "/readyz", "/", "/index.html"] {
        for _ in 0..5 {
            let a = request(addr, "GET", path, "", "");
            assert_ne!(a.status, 429, "{path}: {a:?}");
        }
    }
    assert_eq!(healthz(addr, "").status, 200);
}

#[test]
fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    // No trusted proxies: every request counts against 127.0.0.1 whatever it claims.
    let f = serve(Limits::default(), tight_rates(), "");
    for i in 0..3 {
        let claim = format!("X-Forwarded-For: 198.51.100.{i}\r\n");
        assert_ne!(vote(f.addr(), &claim).status, 429);
    }
    vote(f.addr(), "X-Forwarded-For: 198.51.100.77\r\n").assert_rate_limited();
}

#[test]
fn x_forwarded_for_from_a_trusted_peer_names_the_client() {
    let f = serve(Limits::default(), tight_rates(), "127.0.0.1");
    let addr = f.addr();
    let alice = "X-Forwarded-For: 203.0.113.9, 198.51.100.1\r\n";
    for _ in 0..3 {
        assert_ne!(vote(addr, alice).status, 429);
    }
    vote(addr, alice).assert_rate_limited();
    // Alice spoofing another address to the left of what the proxy appended changes nothing.
    vote(addr, "X-Forwarded-For: 192.0.2.200, 198.51.100.1\r\n").assert_rate_limited();
    // Another client behind the same proxy is not affected, and Alice's health check answers.
    assert_ne!(vote(addr, "X-Forwarded-For: 198.51.100.2\r\n").status, 429);
    assert_eq!(healthz(addr, alice).status, 200);

    // Garbage is not trusted: these count against the proxy itself, whatever they say.
    for garbage in ["garbage", "198.51.100.3 x", "999.0.0.1"] {
        let header = format!("X-Forwarded-For: {garbage}\r\n");
        assert_ne!(vote(addr, &header).status, 429, "{garbage:?}");
    }
    vote(addr, "X-Forwarded-For: ,,,\r\n").assert_rate_limited();
    vote(addr, "").assert_rate_limited();
    // Alice's neighbour still is not.
    assert_ne!(vote(addr, "X-Forwarded-For: 198.51.100.2\r\n").status, 429);
}

#[test]
fn shutdown_finishes_the_request_in_progress_and_closes_the_rest() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (entered_tx, entered) = std::sync::mpsc::channel::<()>();
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let gate = release.clone();
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(
            "/slow",
            axum::routing::get(move || {
                let (entered_tx, gate) = (entered_tx.clone(), gate.clone());
                async move {
                    let _ = entered_tx.send(());
                    let _permit = gate.acquire().await;
                    "done"
                }
            }),
        );
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(async move {
        proxy::http::serve(listener, app, &Limits::default(), async {
            let _ = stopped.await;
        })
        .await
    });

    let mut idle = connect(addr);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .expect("a request");
    assert_eq!(read_answer(&mut idle).status, 200);
    let mut busy = connect(addr);
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
        .expect("a request");
    entered
        .recv_timeout(PATIENCE)
        .expect("the slow request began");

    stop.send(()).expect("the server is running");
    assert!(closed_by_server(&mut idle), "an idle connection was kept");
    assert!(
        TcpStream::connect(addr).is_err(),
        "a new connection was accepted after shutdown"
    );
    release.add_permits(1);
    let answer = read_answer(&mut busy);
    assert_eq!((answer.status, answer.body.as_slice()), (200, &b"done"[..]));
    let finished = runtime.block_on(async { tokio::time::timeout(PATIENCE, server).await });
    assert!(
        matches!(finished, Ok(Ok(Ok(())))),
        "serve did not return: {finished:?}"
    );
}
