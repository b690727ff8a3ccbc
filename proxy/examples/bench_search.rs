//! Search latency through the proxy (HTTP + JSON) against the store called directly, in the same
//! run, on embedded Qdrant Edge (or a Qdrant server or cluster) holding random unit vectors.
//!
//! ```text
//! cargo run --release -p proxy --example bench_search -- --points 100000 --dim 512 --seconds 10
//! ```
//!
//! `--qdrant-url URL` measures a server or cluster instead (collection `bench`, made with
//! `--shards N` and `--replication-factor N` when missing; `QDRANT_API_KEY` from the
//! environment). `--load-only` writes the points and stops, so that a caller can wait for the
//! server to finish indexing before the timed run (which reuses the collection).
//!
//! For 1 and 64 concurrent clients: p50, p99 and QPS of `VectorStore::search` (tokio tasks) and
//! of `POST /api/search` (one blocking HTTP client with keep-alive per thread), limit 20. The
//! collection is optimized (HNSW) before timing; build and index times are printed too.
//! `--storage DIR` keeps the collection for another run (it is reused when it holds `--points`).
#![allow(
    clippy::print_stdout,
    reason = "the report on standard output is what a benchmark produces"
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clip::random::Rng;
use proxy::http::{AppState, Limits, RateLimits, ServeConfig, StateParts, router};
use proxy::layout::DataDir;
use proxy::store::cluster::ClusterSettings;
use proxy::store::edge::EdgeStore;
use proxy::store::remote::{RemoteConfig, RemoteStore};
use proxy::store::{CollectionSpec, Point, SearchQuery, SharedStore, point_id};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Options {
    points: usize,
    dim: usize,
    seconds: f64,
    clients: Vec<usize>,
    storage: Option<PathBuf>,
    qdrant_url: Option<String>,
    cluster: ClusterSettings,
    load_only: bool,
}

fn options() -> Res<Options> {
    let mut o = Options {
        points: 100_000,
        dim: 512,
        seconds: 10.0,
        clients: vec![1, 64],
        storage: None,
        qdrant_url: None,
        cluster: ClusterSettings::default(),
        load_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--points" => o.points = value()?.parse()?,
            "--dim" => o.dim = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--clients" => {
                o.clients = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--storage" => o.storage = Some(PathBuf::from(value()?)),
            "--qdrant-url" => o.qdrant_url = Some(value()?),
            "--shards" => o.cluster.shards = Some(value()?.parse()?),
            "--replication-factor" => o.cluster.replication_factor = Some(value()?.parse()?),
            "--load-only" => o.load_only = true,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(o)
}

struct Stats {
    p50_ms: f64,
    p99_ms: f64,
    qps: f64,
}

fn stats(mut latencies: Vec<Duration>, wall: Duration) -> Stats {
    latencies.sort();
    let at = |q: f64| {
        latencies[((latencies.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3
    };
    Stats {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        qps: latencies.len() as f64 / wall.as_secs_f64(),
    }
}

async fn direct(store: SharedStore, dim: usize, clients: usize, seconds: f64) -> Stats {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(1000 + c as u64);
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let q = SearchQuery {
                    using: proxy::store::VectorName::Image,
                    vector: rng.unit(dim),
                    limit: 20,
                    offset: 0,
                    filter: Default::default(),
                };
                let t = Instant::now();
                let hits = store.search(&q).await.expect("search");
                lat.push(t.elapsed());
                assert_eq!(hits.len(), 20);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    stats(all, started.elapsed())
}

fn through_proxy(addr: SocketAddr, dim: usize, clients: usize, seconds: f64) -> Stats {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .max_idle_connections_per_host(1)
                    .build();
                let url = format!("http://{addr}/api/search");
                let mut rng = Rng(1000 + c as u64);
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let body = format!("{{\"vector\":{:?},\"limit\":20}}", rng.unit(dim));
                    let t = Instant::now();
                    let response = agent
                        .post(&url)
                        .set("Content-Type", "application/json")
                        .send_string(&body)
                        .expect("search");
                    let text = response.into_string().expect("body");
                    lat.push(t.elapsed());
                    assert!(text.starts_with("{\"results\":["));
                }
                lat
            })
        })
        .collect();
    let all = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client"))
        .collect();
    stats(all, started.elapsed())
}

fn main() -> Res<()> {
    let o = options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let temp = tempfile::tempdir()?;
    let dir = o
        .storage
        .clone()
        .unwrap_or_else(|| temp.path().join("qdrant"));
    let spec = CollectionSpec {
        captions: false,
        name: "bench".into(),
        dim: o.dim,
        model: format!("random-{}", o.dim),
    };
    let store: SharedStore = match &o.qdrant_url {
        None => Arc::new(EdgeStore::new(&dir)),
        Some(url) => Arc::new(RemoteStore::new(RemoteConfig {
            url: url.clone(),
            api_key: std::env::var("QDRANT_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
            timeout: Duration::from_secs(60),
            cluster: o.cluster,
        })?),
    };
    runtime.block_on(store.ensure_collection(&spec))?;
    if let Some(layout) = runtime.block_on(store.layout())? {
        println!(
            "collection `bench` on {}: {layout}",
            o.qdrant_url.as_deref().unwrap_or("")
        );
    }
    let have = runtime.block_on(store.count())?;
    if have != o.points {
        let started = Instant::now();
        let mut rng = Rng(42);
        for start in (0..o.points).step_by(1000) {
            let points = (start..(start + 1000).min(o.points))
                .map(|i| Point {
                    caption: None,
                    id: point_id(&format!("p{i}")),
                    vector: rng.unit(o.dim),
                    payload: [("id".to_string(), serde_json::json!(format!("p{i}")))]
                        .into_iter()
                        .collect(),
                })
                .collect();
            runtime.block_on(store.upsert(points))?;
        }
        println!(
            "upserted {} points of {} dims in {:.1} s",
            o.points,
            o.dim,
            started.elapsed().as_secs_f64()
        );
        // A server indexes in the background by itself (the caller waits for it); Edge here.
        if o.qdrant_url.is_none() {
            let started = Instant::now();
            runtime.block_on(store.optimize())?;
            println!(
                "optimize (HNSW index) took {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    } else {
        println!("reusing {have} points");
    }
    if o.load_only {
        return Ok(());
    }
    let shared: SharedStore = store.clone();

    let public = temp.path().join("public");
    std::fs::create_dir_all(&public)?;
    std::fs::write(public.join("index.html"), "bench")?;
    let state = AppState::open(StateParts {
        store: shared.clone(),
        spec,
        encoder: None,
        data: DataDir::new(temp.path()),
        admin_token: None,
        bundle: None,
    })?;
    let app = router(
        &ServeConfig {
            public_dir: public,
            cors_origins: vec![],
            // The benchmark is one client asking as fast as it can: unlimited.
            rate_limits: RateLimits::off(),
            trusted_proxies: Default::default(),
        },
        Arc::new(state),
    );
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    runtime.spawn(async move {
        proxy::http::serve(listener, app, &Limits::default(), std::future::pending()).await
    });

    println!(
        "\n| clients | store p50 ms | store p99 ms | store QPS | proxy p50 ms | proxy p99 ms | proxy QPS | proxy adds at p50 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &c in &o.clients {
        // Warm-up, then the measurements.
        runtime.block_on(direct(shared.clone(), o.dim, c, 1.0));
        let d = runtime.block_on(direct(shared.clone(), o.dim, c, o.seconds));
        through_proxy(addr, o.dim, c, 1.0);
        let p = through_proxy(addr, o.dim, c, o.seconds);
        println!(
            "| {c} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.0} | {:+.2} ms |",
            d.p50_ms,
            d.p99_ms,
            d.qps,
            p.p50_ms,
            p.p99_ms,
            p.qps,
            p.p50_ms - d.p50_ms
        );
    }
    Ok(())
}
