//! The proxy under attack: search latency alone, then under a vote flood plus thousands of slow
//! connections, with `/healthz` probed throughout and the proxy's memory read before and after.
//!
//! ```text
//! cargo build --release -p proxy --bin proxy --example bench_load
//! target/release/examples/bench_load --runs 3
//! ```
//!
//! The proxy is the real `proxy serve` binary (default limits, embedded store holding
//! `--points` random vectors of the tiny fixture CLIP's size, `labels.jsonl` empty at each run's
//! start), in its own process, so that its RSS is its own. Every client is in this process and
//! talks HTTP/1.1 over loopback from its own source address (127.0.0.0/8), so that per-client
//! limits see visitors, not one address:
//!
//! - *searchers*: `--searchers` clients (127.0.1.x), each `POST /api/search` with a vector 10
//!   times a second on one keep-alive connection: a few people using the site;
//! - *flood*: `--flood` connections from `--attackers` addresses (127.0.2.x), each posting votes
//!   (1,000-character note, random `client_id`) back to back, ignoring `Retry-After`;
//! - *slow*: `--slow` connections from the same attacker addresses that send half a request
//!   header and then nothing; one the server closes is opened again;
//! - *probe*: `GET /healthz` on a new connection every 200 ms from 127.0.3.1, 2 s timeout.
//!
//! The searchers and the probe run on a thread and runtime of their own, apart from the
//! attack's tasks; all share the machine's cores with the proxy.
//!
//! Each run: start the proxy, searchers alone for `--seconds`, then searchers under attack for
//! `--seconds`; the figures of each run, then their medians.
#![allow(
    clippy::print_stdout,
    reason = "the report on standard output is what a benchmark produces"
)]

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clip::random::Rng;
use proxy::store::edge::EdgeStore;
use proxy::store::{Point, VectorStore, point_id};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Options {
    runs: usize,
    seconds: f64,
    points: usize,
    searchers: u8,
    flood: usize,
    slow: usize,
    attackers: u8,
    proxy: PathBuf,
}

fn options() -> Res<Options> {
    let exe = std::env::current_exe()?;
    let mut o = Options {
        runs: 3,
        seconds: 15.0,
        points: 10_000,
        searchers: 5,
        flood: 1000,
        slow: 3000,
        attackers: 16,
        // target/release/examples/bench_load → target/release/proxy
        proxy: exe
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("proxy"))
            .unwrap_or_default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--runs" => o.runs = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--points" => o.points = value()?.parse()?,
            "--searchers" => o.searchers = value()?.parse()?,
            "--flood" => o.flood = value()?.parse()?,
            "--slow" => o.slow = value()?.parse()?,
            "--attackers" => o.attackers = value()?.parse()?,
            "--proxy" => o.proxy = PathBuf::from(value()?),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if !o.proxy.is_file() {
        return Err(format!(
            "{}: no proxy binary; build it first (`cargo build --release -p proxy --bin proxy`) \
             or pass --proxy PATH",
            o.proxy.display()
        )
        .into());
    }
    Ok(o)
}

/// The collection `proxy serve` will open: `points` random vectors of the tiny model's size,
/// in `storage`. Returns the vectors' dimension.
fn prepare_store(storage: &Path, points: usize, runtime: &tokio::runtime::Runtime) -> Res<usize> {
    let spec = testkit::model::tiny_spec(&testkit::model::tiny_model());
    let store = EdgeStore::new(storage);
    runtime.block_on(store.ensure_collection(&spec))?;
    let mut rng = Rng(42);
    for start in (0..points).step_by(1000) {
        let batch = (start..(start + 1000).min(points))
            .map(|i| Point {
                caption: None,
                id: point_id(&format!("p{i}")),
                vector: rng.unit(spec.dim),
                payload: [("id".to_string(), serde_json::json!(format!("p{i}")))]
                    .into_iter()
                    .collect(),
            })
            .collect();
        runtime.block_on(store.upsert(batch))?;
    }
    runtime.block_on(store.optimize())?;
    Ok(spec.dim)
}

/// `proxy serve` on a free port over `storage`, with a fresh label log.
struct Proxy {
    child: Child,
    addr: SocketAddr,
}

impl Proxy {
    fn start(binary: &Path, storage: &Path, public: &Path) -> Res<Self> {
        let _ = std::fs::remove_file(storage.join("labels.jsonl"));
        let port = testkit::process::free_port();
        let child = testkit::process::command(binary)
            .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--public")
            .arg(public)
            .arg("--storage")
            .arg(storage)
            .arg("--model")
            .arg(testkit::paths::tiny_model_dir())
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()?;
        Ok(Self {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        })
    }

    /// The proxy's resident memory (MiB).
    fn rss_mib(&self) -> f64 {
        rss_mib(self.child.id()).unwrap_or(f64::NAN)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A connection to `to` from the loopback address `from`.
async fn connect(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    tokio::time::timeout(Duration::from_secs(2), socket.connect(to))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// One HTTP/1.1 request on a keep-alive connection; the status (the body is read and dropped).
async fn request(
    conn: &mut BufReader<TcpStream>,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<u16> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    conn.get_mut()
        .write_all(format!("{head}{body}").as_bytes())
        .await?;
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut length = 0usize;
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut sink = vec![0; length];
    conn.read_exact(&mut sink).await?;
    Ok(status)
}

/// Latencies of one searcher: a vector search every 100 ms until `stop`.
async fn searcher(from: Ipv4Addr, to: SocketAddr, dim: usize, stop: Arc<AtomicBool>) -> Searched {
    let mut rng = Rng(u64::from(u32::from(from)));
    let mut out = Searched::default();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut conn = None;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        if conn.is_none() {
            conn = connect(from, to).await.ok().map(BufReader::new);
        }
        let Some(c) = conn.as_mut() else {
            out.failed += 1;
            continue;
        };
        let body = format!("{{\"vector\":{:?},\"limit\":20}}", rng.unit(dim));
        let started = Instant::now();
        match request(c, "POST", "/api/search", &body).await {
            Ok(200) => out.latencies.push(started.elapsed()),
            Ok(_) => out.failed += 1,
            Err(_) => {
                out.failed += 1;
                conn = None;
            }
        }
    }
    out
}

#[derive(Default)]
struct Searched {
    latencies: Vec<Duration>,
    failed: u64,
}

/// What the attack got: votes answered by status class, and connections closed by the server.
#[derive(Default)]
struct Attack {
    ok: AtomicU64,
    limited: AtomicU64,
    other: AtomicU64,
    errors: AtomicU64,
    slow_closed: AtomicU64,
}

/// One flooding connection: votes back to back, reconnecting when closed.
async fn flood(
    from: Ipv4Addr,
    to: SocketAddr,
    seed: u64,
    attack: Arc<Attack>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = Rng(seed);
    let note = "x".repeat(1000);
    let mut conn = None;
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            conn = connect(from, to).await.ok().map(BufReader::new);
            if conn.is_none() {
                attack.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        let body = format!(
            "{{\"query\":\"q{}\",\"image_id\":\"p{}\",\"label\":\"relevant\",\"note\":\"{note}\",\"client_id\":\"c{}\"}}",
            rng.next_u64() % 1000,
            rng.next_u64() % 100,
            rng.next_u64()
        );
        let Some(c) = conn.as_mut() else { continue };
        let counter = match request(c, "POST", "/api/feedback", &body).await {
            Ok(200) => &attack.ok,
            Ok(429) => &attack.limited,
            Ok(_) => &attack.other,
            Err(_) => {
                conn = None;
                &attack.errors
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One slow connection: half a request header, then silence; opened again when closed.
async fn slow(from: Ipv4Addr, to: SocketAddr, attack: Arc<Attack>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut conn) = connect(from, to).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        if conn
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Slow: ")
            .await
            .is_err()
        {
            continue;
        }
        let mut byte = [0u8; 1];
        // Held until the server closes it (or the attack ends).
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match tokio::time::timeout(Duration::from_millis(500), conn.read(&mut byte)).await {
                Err(_) => continue,
                Ok(Ok(n)) if n > 0 => continue,
                Ok(_) => break,
            }
        }
        attack.slow_closed.fetch_add(1, Ordering::Relaxed);
    }
}

/// `/healthz` on a new connection every 200 ms: (answered, asked, slowest answer).
async fn probe(to: SocketAddr, stop: Arc<AtomicBool>) -> (u64, u64, Duration) {
    let (mut answered, mut asked, mut slowest) = (0, 0, Duration::ZERO);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        asked += 1;
        let started = Instant::now();
        let once = async {
            let mut conn = BufReader::new(connect(Ipv4Addr::new(127, 0, 3, 1), to).await?);
            request(&mut conn, "GET", "/healthz", "").await
        };
        if let Ok(Ok(200)) = tokio::time::timeout(Duration::from_secs(2), once).await {
            answered += 1;
            slowest = slowest.max(started.elapsed());
        }
    }
    (answered, asked, slowest)
}

/// `work` on a runtime of its own, on its own thread: the visitors' clients are not queued
/// behind thousands of attacking tasks in this process (a visitor is not on the attacker's
/// machine), so what they measure is the server.
async fn apart<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(work)
    })
    .await
    .expect("the visitors' thread")
}

/// The searchers' p50 and p99 (ms) and failures over `seconds`.
async fn search_for(searchers: u8, seconds: f64, to: SocketAddr, dim: usize) -> (f64, f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (1..=searchers)
        .map(|i| tokio::spawn(searcher(Ipv4Addr::new(127, 0, 1, i), to, dim, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Searched::default();
    for t in tasks {
        let s = t.await.expect("searcher");
        all.latencies.extend(s.latencies);
        all.failed += s.failed;
    }
    all.latencies.sort();
    let at = |q: f64| {
        all.latencies
            .get(((all.latencies.len() as f64 - 1.0) * q).round() as usize)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    (at(0.5), at(0.99), all.failed)
}

/// The figures of one run.
struct Run {
    alone: (f64, f64, u64),
    attacked: (f64, f64, u64),
    votes: [u64; 4],
    slow_closed: u64,
    health: (u64, u64, Duration),
    rss: [f64; 3],
    log_mib: f64,
}

/// One run against a fresh `proxy serve`.
async fn run(o: &Options, storage: &Path, public: &Path, dim: usize) -> Res<Run> {
    let proxy = Proxy::start(&o.proxy, storage, public)?;
    let to = proxy.addr;
    wait_healthy(to).await?;
    let alone = apart(search_for(o.searchers, o.seconds, to, dim)).await;
    let rss_before = proxy.rss_mib();
    let attack = Arc::new(Attack::default());
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = |i: usize| Ipv4Addr::new(127, 0, 2, 1 + (i % usize::from(o.attackers)) as u8);
    let mut tasks = Vec::new();
    for i in 0..o.slow {
        tasks.push(tokio::spawn(slow(
            attacker(i),
            to,
            attack.clone(),
            stop.clone(),
        )));
    }
    for i in 0..o.flood {
        tasks.push(tokio::spawn(flood(
            attacker(i),
            to,
            i as u64,
            attack.clone(),
            stop.clone(),
        )));
    }
    let prober = tokio::spawn(apart(probe(to, stop.clone())));
    let peak = tokio::spawn(peak_rss(proxy.child.id(), stop.clone()));
    let attacked = apart(search_for(o.searchers, o.seconds, to, dim)).await;
    stop.store(true, Ordering::Relaxed);
    let health = prober.await?;
    let rss_peak = peak.await?;
    for t in tasks {
        t.abort();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log_mib = std::fs::metadata(storage.join("labels.jsonl")).map_or(0.0, |m| m.len() as f64)
        / (1 << 20) as f64;
    Ok(Run {
        alone,
        attacked,
        votes: [&attack.ok, &attack.limited, &attack.other, &attack.errors]
            .map(|c| c.load(Ordering::Relaxed)),
        slow_closed: attack.slow_closed.load(Ordering::Relaxed),
        health,
        rss: [rss_before, rss_peak, proxy.rss_mib()],
        log_mib,
    })
}

/// The peak of the proxy's RSS (MiB), sampled every 100 ms until `stop`.
async fn peak_rss(pid: u32, stop: Arc<AtomicBool>) -> f64 {
    let mut peak = 0f64;
    while !stop.load(Ordering::Relaxed) {
        if let Some(mib) = rss_mib(pid) {
            peak = peak.max(mib);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peak
}

/// The resident memory (MiB) of process `pid`, from `/proc`.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

async fn wait_healthy(to: SocketAddr) -> Res<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(stream) = connect(Ipv4Addr::LOCALHOST, to).await
            && let Ok(200) = request(&mut BufReader::new(stream), "GET", "/healthz", "").await
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("proxy on {to} did not answer /healthz within 60 s").into())
}

fn print_run(i: usize, r: &Run) {
    let [ok, limited, other, errors] = r.votes;
    let total = (ok + limited + other).max(1);
    println!(
        "| {i} | {:.2} / {:.2} | {:.2} / {:.2} | {} | {ok} | {limited} ({:.1}%) | {other} | {errors} | {} | {}/{} (slowest {:.0} ms) | {:.1} → {:.1} → {:.1} | {:.2} |",
        r.alone.0,
        r.alone.1,
        r.attacked.0,
        r.attacked.1,
        r.alone.2 + r.attacked.2,
        100.0 * limited as f64 / total as f64,
        r.slow_closed,
        r.health.0,
        r.health.1,
        r.health.2.as_secs_f64() * 1e3,
        r.rss[0],
        r.rss[1],
        r.rss[2],
        r.log_mib,
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Res<()> {
    let o = options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let temp = tempfile::tempdir()?;
    let storage = temp.path().join("storage");
    let dim = prepare_store(&storage, o.points, &runtime)?;
    let public = testkit::server::public_stub(temp.path());
    println!(
        "{} points of {dim} dims; {} searchers at 10/s; attack: {} flood + {} slow connections from {} addresses; {} s alone then {} s attacked per run\n",
        o.points, o.searchers, o.flood, o.slow, o.attackers, o.seconds, o.seconds
    );
    println!(
        "| run | search alone p50 / p99 ms | attacked p50 / p99 ms | searches failed | votes 200 | votes 429 | votes other | vote conn errors | slow conns closed | /healthz answered | RSS MiB before → peak → after | labels.jsonl MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut runs = Vec::new();
    for i in 1..=o.runs {
        let r = runtime.block_on(run(&o, &storage, &public, dim))?;
        print_run(i, &r);
        runs.push(r);
    }
    let m = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
    println!(
        "\nmedian of {} runs: search alone p50 {:.2} / p99 {:.2} ms; attacked p50 {:.2} / p99 {:.2} ms; votes answered 429: {:.1}%; RSS growth {:.1} MiB (peak {:.1} MiB over the start)",
        runs.len(),
        m(&|r| r.alone.0),
        m(&|r| r.alone.1),
        m(&|r| r.attacked.0),
        m(&|r| r.attacked.1),
        m(&|r| {
            let [ok, limited, other, _] = r.votes;
            100.0 * limited as f64 / (ok + limited + other).max(1) as f64
        }),
        m(&|r| r.rss[2] - r.rss[0]),
        m(&|r| r.rss[1] - r.rss[0]),
    );
    Ok(())
}
