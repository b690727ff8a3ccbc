//! End to end through the real binaries on the tiny fixture model: ingest the demo TSV → search
//! over HTTP → feedback → `kill -9` → restart → labels still there → eval gives the metrics a hand
//! computation gives. Also: a killed ingest is finished by the next run, and the Qdrant API key
//! never shows in a response or a log line.
//!
//! Every child starts through `testkit::command`: none of the developer's settings (`QDRANT_URL`
//! exported for the remote store suite, `RUST_LOG`, …) reaches it; each test passes its settings
//! in an env file of its own, or sets them on the command.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::{command, free_port, get, post_json, public_stub, tiny_model_dir, workspace};

const PROXY: &str = env!("CARGO_BIN_EXE_proxy");
const INGEST: &str = env!("CARGO_BIN_EXE_ingest");

/// A settings file (so the repository's qdrant.env is never read by a test).
fn env_file(dir: &Path, lines: &str) -> PathBuf {
    let path = dir.join("test.env");
    std::fs::write(&path, lines).expect("env file");
    path
}

fn ingest(args: &[&str]) -> (bool, String) {
    let out = command(INGEST).args(args).output().expect("running ingest");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Proxy {
    child: Child,
    port: u16,
}

impl Proxy {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let port = free_port();
        let child = command(PROXY)
            .arg("serve")
            .args(["--port", &port.to_string()])
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the proxy");
        let proxy = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the proxy did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `kill -9`, and what it logged.
    fn kill(mut self) -> String {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
        let mut log = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut log);
        }
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut log);
        }
        log
    }
}

/// Hand computation of the eval metrics, independent of `proxy::eval::metrics`.
fn hand_metrics(ranked: &[String], relevant: &BTreeSet<String>) -> (f64, f64, f64, f64, f64) {
    let recall = |k: usize| {
        ranked
            .iter()
            .take(k)
            .filter(|id| relevant.contains(*id))
            .count() as f64
            / relevant.len() as f64
    };
    let rr = ranked
        .iter()
        .position(|id| relevant.contains(id))
        .map_or(0.0, |p| 1.0 / (p + 1) as f64);
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .filter(|(_, id)| relevant.contains(*id))
        .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
        .sum();
    let idcg: f64 = (0..relevant.len().min(10))
        .map(|i| 1.0 / ((i + 2) as f64).log2())
        .sum();
    (recall(1), recall(5), recall(10), rr, dcg / idcg)
}

#[test]
fn ingest_search_label_restart_eval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = dir.path().join("storage");
    let storage_arg = storage.display().to_string();
    let model = tiny_model_dir().display().to_string();
    let public = public_stub(dir.path());
    let env = env_file(dir.path(), "QDRANT_URL=\nTEXT2IMG_ADMIN_TOKEN=admin-tok\n");
    let env_arg = env.display().to_string();
    let tsv = workspace().join("data/images.tsv");
    let queries_tsv = workspace().join("data/queries.tsv");

    // Ingest the demo data.
    let (ok, log) = ingest(&[
        "--tsv",
        &tsv.display().to_string(),
        "--model",
        &model,
        "--storage",
        &storage_arg,
        "--env-file",
        &env_arg,
    ]);
    assert!(ok, "ingest failed:\n{log}");
    let rows = std::fs::read_to_string(&tsv)
        .expect("tsv")
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    assert!(
        log.contains(&format!("{rows} indexed, 0 updated, 0 unchanged, 0 failed")),
        "{log}"
    );

    let serve_args = [
        "--storage",
        storage_arg.as_str(),
        "--model",
        model.as_str(),
        "--public",
        public.to_str().unwrap_or("."),
        "--env-file",
        env_arg.as_str(),
        // One client asks every labelled query at once, faster than a person would.
        "--rate-text-search",
        "off",
    ];
    let proxy = Proxy::start(&serve_args, &[]);
    let ready = get(&proxy.url("/readyz"), &[]);
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["points"], rows);

    // Search every labelled query over HTTP (text, server-side encoding).
    let queries: Vec<(String, BTreeSet<String>)> = std::fs::read_to_string(&queries_tsv)
        .expect("queries")
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (q, ids) = l.split_once('\t').expect("two columns");
            (
                q.to_string(),
                ids.split(',').map(|s| s.trim().to_string()).collect(),
            )
        })
        .collect();
    let mut ranked: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (q, _) in &queries {
        let a = post_json(&proxy.url("/api/search"), &json!({"text": q, "limit": 20}));
        assert_eq!(a.status, 200, "{q}: {}", a.text());
        let ids: Vec<String> = a.json()["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["id"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(ids.len(), 20);
        ranked.insert(q.clone(), ids);
    }
    // Feedback on the first query: the top result relevant, a labelled-relevant image flagged.
    let (q_label, relevant0) = &queries[0];
    let top = ranked[q_label][0].clone();
    let flagged = relevant0.iter().next().expect("a relevant id").clone();
    for (image, label, client) in [
        (&top, "relevant", "alice"),
        (&top, "relevant", "bob"),
        (&flagged, "flag", "alice"),
    ] {
        let a = post_json(
            &proxy.url("/api/feedback"),
            &json!({"query": q_label, "image_id": image, "label": label, "client_id": client, "note": "e2e"}),
        );
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(a.json()["ok"], true);
    }
    // Acknowledged: now kill -9 and restart.
    let _ = proxy.kill();
    let proxy = Proxy::start(&serve_args, &[]);
    let export = get(
        &proxy.url("/api/labels?format=jsonl"),
        &[("Authorization", "Bearer admin-tok")],
    );
    assert_eq!(export.status, 200, "{}", export.text());
    let labels: Vec<Value> = export
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl"))
        .collect();
    assert_eq!(
        labels.len(),
        3,
        "every acknowledged label survived kill -9: {labels:?}"
    );
    assert!(
        labels
            .iter()
            .any(|l| l["image_id"] == flagged.as_str() && l["label"] == "flag")
    );
    let _ = proxy.kill();

    // Eval (the proxy is stopped: embedded Qdrant serves one process at a time).
    let out = dir.path().join("eval");
    let status = command(PROXY)
        .args([
            "eval",
            "--queries",
            &queries_tsv.display().to_string(),
            "--out",
            &out.display().to_string(),
        ])
        .args([
            "--storage",
            &storage_arg,
            "--model",
            &model,
            "--env-file",
            &env_arg,
        ])
        .stdout(Stdio::null())
        .status()
        .expect("eval");
    assert!(status.success());
    assert!(out.join("report.html").is_file(), "eval writes report.html");
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report.json"),
    )
    .expect("json");
    assert!(
        std::fs::read_to_string(out.join("report.md"))
            .expect("md")
            .contains("Recall@10")
    );
    assert!(
        std::fs::read_to_string(out.join("recall.svg"))
            .expect("svg")
            .starts_with("<svg")
    );

    // The judgments by hand: the TSV, plus the top result (two votes), minus the flagged image.
    let mut sums = [0.0f64; 5];
    let mut n = 0;
    for (q, relevant) in &queries {
        let mut relevant = relevant.clone();
        if q == q_label {
            relevant.insert(top.clone());
            relevant.remove(&flagged);
        }
        if relevant.is_empty() {
            continue;
        }
        let m = hand_metrics(&ranked[q], &relevant);
        for (s, v) in sums.iter_mut().zip([m.0, m.1, m.2, m.3, m.4]) {
            *s += v;
        }
        n += 1;
    }
    let summary = &report["summary"];
    assert_eq!(summary["queries"], n);
    let got = [
        &summary["recall"]["recall@1"],
        &summary["recall"]["recall@5"],
        &summary["recall"]["recall@10"],
        &summary["mrr"],
        &summary["ndcg@10"],
    ];
    for ((name, got), want) in ["R@1", "R@5", "R@10", "MRR", "nDCG@10"]
        .iter()
        .zip(got)
        .zip(sums)
    {
        let got = got.as_f64().expect("a number");
        assert!(
            (got - want / n as f64).abs() < 1e-9,
            "{name}: eval says {got}, by hand {}",
            want / n as f64
        );
    }
}

#[test]
fn a_killed_ingest_is_finished_by_the_next_run() {
    use axum::routing::get as route_get;
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // Every image takes 150 ms to serve: the run is still going when it is killed.
    let app = axum::Router::new().route(
        "/img/{n}",
        route_get(
            |axum::extract::Path(n): axum::extract::Path<u8>| async move {
                tokio::time::sleep(Duration::from_millis(150)).await;
                let img = image::RgbImage::from_pixel(
                    16,
                    16,
                    image::Rgb([n.wrapping_mul(17), 0, 255 - n]),
                );
                let mut out = std::io::Cursor::new(Vec::new());
                img.write_to(&mut out, image::ImageFormat::Png)
                    .expect("png");
                (
                    [(axum::http::header::CONTENT_TYPE, "image/png")],
                    out.into_inner(),
                )
            },
        ),
    );
    let addr = testkit::server::serve_app(&runtime, app);

    let total = 30;
    let mut tsv = String::from("id\turl\n");
    for n in 0..total {
        tsv.push_str(&format!("row{n}\thttp://{addr}/img/{n}\n"));
    }
    let tsv_path = dir.path().join("images.tsv");
    std::fs::write(&tsv_path, tsv).expect("tsv");
    let storage = dir.path().join("storage").display().to_string();
    let env = env_file(dir.path(), "");
    let args = [
        "--tsv",
        tsv_path.to_str().unwrap_or(""),
        "--model",
        &tiny_model_dir().display().to_string(),
        "--storage",
        &storage,
        "--env-file",
        env.to_str().unwrap_or(""),
        "--fetch-workers",
        "1",
        "--batch-size",
        "1",
        // The image server is on loopback.
        "--allow-private-urls",
    ];
    let mut child = command(INGEST)
        .args(args)
        .stderr(Stdio::null())
        .spawn()
        .expect("ingest");
    std::thread::sleep(Duration::from_millis(2500));
    child.kill().expect("kill -9");
    child.wait().expect("reaped");

    let (ok, log) = ingest(&args);
    assert!(ok, "{log}");
    let counts = |word: &str| -> usize {
        log.split(", ")
            .flat_map(|part| part.split(": "))
            .find_map(|part| {
                part.trim()
                    .strip_suffix(&format!(" {word}"))
                    .and_then(|n| n.rsplit(' ').next())
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or_else(|| panic!("no `{word}` count in: {log}"))
    };
    let (indexed, unchanged) = (counts("indexed"), counts("unchanged"));
    assert!(
        unchanged > 0,
        "the killed run had written some points before it died: {log}"
    );
    assert_eq!(indexed + unchanged, total, "no gap: {log}");
    assert!(
        log.contains(&format!("{total} points in `images`")),
        "no duplicate: {log}"
    );
}

#[test]
fn the_api_key_never_shows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = "k3y-that-must-never-leak-91c2";
    let closed = free_port();
    let env = env_file(
        dir.path(),
        &format!("QDRANT_URL=http://127.0.0.1:{closed}\nQDRANT_API_KEY={key}\n"),
    );
    let public = public_stub(dir.path());
    let proxy = Proxy::start(
        &[
            "--storage",
            &dir.path().join("s").display().to_string(),
            "--model",
            &tiny_model_dir().display().to_string(),
            "--public",
            public.to_str().unwrap_or("."),
            "--env-file",
            env.to_str().unwrap_or(""),
        ],
        &[("RUST_LOG", "trace")],
    );
    let mut seen = String::new();
    for (path, body) in [
        ("/api/search", json!({"text": "a cat"})),
        ("/api/search", json!({"vector": vec![0.25f32; 16]})),
        ("/api/similar", json!({"id": "x"})),
    ] {
        let a = post_json(&proxy.url(path), &body);
        assert_eq!(a.status, 503, "{}", a.text());
        seen.push_str(&a.text());
    }
    for path in ["/readyz", "/healthz", "/", "/api/model"] {
        let a = get(&proxy.url(path), &[]);
        seen.push_str(&a.text());
        seen.push_str(&format!("{:?}", a.headers));
    }
    let log = proxy.kill();
    assert!(
        log.contains("store_unavailable") || log.contains("unavailable"),
        "the log says what failed: {log}"
    );
    assert!(!seen.contains(key), "a response leaked the key");
    assert!(!log.contains(key), "the log leaked the key");
}
