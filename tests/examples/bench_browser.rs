//! The browser's side in numbers, in headless Chromium against a local proxy: time to first
//! result on a cold start (fresh profile: page, worker, model download, checks, build, encode,
//! search) and warm (the model from Cache Storage), and the per-query encode latency of a 7-token
//! query, for the q5, q8, f16 and f32 text towers at ViT-B/32 shapes (random weights: the cost is the
//! same). The same files run natively in the same run, for the ratio.
//!
//! ```text
//! (cd frontend && trunk build --release --offline)
//! cargo run --release -p e2e --example bench_browser -- [--queries 50] [--variants q5,q8,f16,f32]
//!     [--model DIR] [--peer tests/peer [--python python3]]
//! ```
//!
//! `--model DIR` measures another checkpoint instead of ViT-B/32 (random weights at its real
//! shapes, from `clip/bench/random_checkpoints.py`): the model table's browser figures.
//!
//! `--peer` adds the peer in the same Chromium: the same random weights exported to ONNX and
//! quantized as transformers.js ships them (`tests/peer/export_onnx.py`, run with `--python`),
//! encoded by ONNX Runtime Web (`tests/peer/package.json`; `npm ci` there first) on one thread:
//! its cold time to the first vector, its warm 7- and 77-token latencies, and every byte its
//! page transferred; text2img's first visit likewise (the weights, and the model's JSON and the
//! site as sent to a browser that accepts brotli).
#![allow(
    clippy::print_stdout,
    reason = "the report on standard output is what a benchmark produces"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use clip::export::{Variant, file_name};
use clip::load::{ModelFiles, write_browser_bundle};
use clip::{ClipConfig, ClipTokenizer};
use serde_json::json;
use testkit::browser::{Browser, ENTER};
use testkit::{Server, ServerOptions, command, public_dir, tiny_model_dir};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Seven tokens with the start and end tokens: a typical short query.
const QUERY: &str = "red car parked on street";

/// Queries whose words a fresh worker has not seen: the first encode of each fetches its token
/// rows (a GGUF variant), the second finds them there.
const FRESH_QUERIES: [&str; 30] = [
    "yellow kayak on a calm lake",
    "snowy mountain cabin at dawn",
    "children flying kites on a beach",
    "vintage typewriter on an oak desk",
    "lighthouse during a violent storm",
    "bowl of ramen with chopsticks",
    "giraffe eating leaves from acacia",
    "astronaut floating near the station",
    "crowded subway platform in tokyo",
    "sunflower field under blue sky",
    "violinist performing in a cathedral",
    "broken umbrella in heavy rain",
    "tabby kitten asleep in a basket",
    "fisherman mending nets at harbour",
    "neon sign above a diner",
    "hot air balloons over desert",
    "penguins huddled on antarctic ice",
    "chess players in a park",
    "waterfall hidden in a jungle",
    "firefighters spraying a burning barn",
    "stack of pancakes with syrup",
    "skateboarder grinding a metal rail",
    "medieval castle surrounded by moat",
    "bees on lavender blossoms",
    "motorbike racing through mud",
    "wedding cake with white roses",
    "old tractor rusting in grass",
    "scuba diver beside coral reef",
    "library shelves full of books",
    "volcano erupting at night",
];

/// A query that fills the context: 77 tokens after truncation.
const LONG_QUERY: &str = "a long and very detailed description of a red car parked on a quiet \
    street at night under orange lamps, with wet cobblestones reflecting the light, a small \
    bakery with its shutters half down behind it, two bicycles leaning on a lamp post, a cat on \
    the bonnet, fog rolling in from the river, a tram passing in the distance, and three people \
    with umbrellas waiting at the corner for the last bus home";

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn p90(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() * 9 / 10).min(v.len() - 1)]
}

/// A ViT-B/32 CLIP with random weights, as a model directory.
fn random_model(dir: &Path) -> Res<ModelFiles> {
    let config_json = br#"{"model_type":"clip","projection_dim":512}"#;
    let config = ClipConfig::from_json(config_json)?;
    let files = ModelFiles {
        id: "random-vit-b-32".into(),
        family: clip::layout::Family::Transformers,
        config: dir.join("config.json"),
        weights: dir.join("model.safetensors"),
        tokenizer: dir.join("tokenizer.json"),
        merges: None,
    };
    std::fs::write(&files.config, config_json)?;
    std::fs::copy(tiny_model_dir().join("tokenizer.json"), &files.tokenizer)?;
    std::fs::write(
        &files.weights,
        clip::random::random_checkpoint(&config, false, 7)?,
    )?;
    Ok(files)
}

/// Native encode latency of the browser's own file for `variant` (ms, median of `n`).
fn native_latency(bundle: &Path, variant: Variant, ids: &[u32], n: usize) -> Res<f64> {
    let encoder = clip::load::bundle_text_encoder(bundle, variant)?;
    let input = vec![ids.to_vec()];
    encoder.embed(&input)?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        std::hint::black_box(encoder.embed(std::hint::black_box(&input))?);
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(&mut times))
}

/// Opens the page, searches, and returns the seconds from navigation to the results.
fn time_to_first_result(browser: &Browser, server: &Server) -> Res<f64> {
    let start = Instant::now();
    browser.goto(&server.url("/"));
    browser.type_into("#query", &format!("{QUERY}{ENTER}"));
    let done = browser.wait_for(
        "const s = document.querySelector('#summary'); return !!s && s.textContent.includes(arguments[0]);",
        json!([format!("for “{QUERY}”")]),
        Duration::from_secs(600),
    );
    let seconds = start.elapsed().as_secs_f64();
    if !done {
        return Err(format!(
            "no results: status {:?}, error {:?}\n{}",
            browser.text("#status"),
            browser.text("#error"),
            browser.console()
        )
        .into());
    }
    Ok(seconds)
}

/// Encode latencies of `query` measured by a second model worker in the page: (in the worker,
/// round trip).
fn browser_latency(
    browser: &Browser,
    variant: &str,
    query: &str,
    n: usize,
) -> Res<(Vec<f64>, Vec<f64>)> {
    let script = r#"
        const [variant, query, n, done] = arguments;
        const worker = new Worker('./worker_loader.js');
        const inWorker = [], roundTrip = [];
        let sent = 0, warm = false;
        const send = () => { sent = performance.now(); worker.postMessage(JSON.stringify({type: 'embed', id: 1, text: query})); };
        worker.onmessage = (e) => {
            const m = JSON.parse(e.data);
            if (m.type === 'started') worker.postMessage(JSON.stringify({type: 'load', api_base: '', variant}));
            else if (m.type === 'ready') send();
            else if (m.type === 'embedded') {
                const rt = performance.now() - sent;
                if (warm) { inWorker.push(m.millis); roundTrip.push(rt); } else { warm = true; }
                if (inWorker.length < n) send(); else { worker.terminate(); done({inWorker, roundTrip}); }
            } else if (m.type === 'load_failed' || m.type === 'embed_failed') { worker.terminate(); done({error: m.message}); }
        };
    "#;
    let answer = browser.eval_async(script, json!([variant, query, n]));
    if let Some(e) = answer["error"].as_str() {
        return Err(format!("the worker failed: {e}").into());
    }
    let list = |key: &str| -> Res<Vec<f64>> { Ok(serde_json::from_value(answer[key].clone())?) };
    Ok((list("inWorker")?, list("roundTrip")?))
}

/// In-worker encode times of each of [`FRESH_QUERIES`] in a fresh worker: (first encode, which
/// fetches the token rows it lacks, second encode of the same text).
fn fresh_latency(browser: &Browser, variant: &str) -> Res<(Vec<f64>, Vec<f64>)> {
    let script = r#"
        const [variant, queries, done] = arguments;
        const worker = new Worker('./worker_loader.js');
        const first = [], second = [];
        let i = 0;
        const send = () => worker.postMessage(JSON.stringify({type: 'embed', id: i, text: queries[i]}));
        worker.onmessage = (e) => {
            const m = JSON.parse(e.data);
            if (m.type === 'started') worker.postMessage(JSON.stringify({type: 'load', api_base: '', variant}));
            else if (m.type === 'ready') send();
            else if (m.type === 'embedded') {
                (first.length === second.length ? first : second).push(m.millis);
                if (first.length === second.length) i += 1;
                if (i < queries.length) send(); else { worker.terminate(); done({first, second}); }
            } else if (m.type === 'load_failed' || m.type === 'embed_failed') { worker.terminate(); done({error: m.message}); }
        };
    "#;
    let answer = browser.eval_async(script, json!([variant, FRESH_QUERIES]));
    if let Some(e) = answer["error"].as_str() {
        return Err(format!("the worker failed: {e}").into());
    }
    let list = |key: &str| -> Res<Vec<f64>> { Ok(serde_json::from_value(answer[key].clone())?) };
    Ok((list("first")?, list("second")?))
}

/// Native latency on one thread, like the browser's worker: this program again, with
/// `RAYON_NUM_THREADS=1` (candle reads it at every call, but it cannot be set safely in-process).
fn native_latency_one_thread(bundle: &Path, variant: Variant, n: usize) -> Res<f64> {
    let out = command(std::env::current_exe()?)
        .args(["--native-one-thread", &bundle.display().to_string()])
        .arg(file_name(variant))
        .arg(n.to_string())
        .env("RAYON_NUM_THREADS", "1")
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "the one-thread run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

/// The bytes a first visit to the site transfers besides the model bundle: the page (`/`), and
/// each file of the site the browser asked `server` for (its wasm and JavaScript, the style
/// sheet, the settings, the worker build its loader chose), each as `server` sends it to a
/// browser that accepts brotli.
fn site_bytes(public: &Path, server: &Server) -> Res<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(public)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let loaded = name == "index.html" || server.requests_for(&format!("/{name}")) > 0;
        if loaded && path.is_file() {
            total += transferred(server, &format!("/{name}"));
        }
    }
    Ok(total)
}

/// The bytes `server` sends for `path` to a browser that accepts brotli.
fn transferred(server: &Server, path: &str) -> u64 {
    let addr = server.url("").trim_start_matches("http://").to_string();
    testkit::http::raw_get(&addr, path, "gzip, br").1.len() as u64
}

/// The peer: the same weights in ONNX, 8-bit as transformers.js ships them, run by ONNX Runtime
/// Web in a fresh browser profile. Cold time to the first vector, warm latencies of `ids` and
/// `long`, and the bytes the page downloaded.
fn peer(
    dir: &Path,
    python: &str,
    model_dir: &Path,
    temp: &Path,
    (ids, long): (&[u32], &[u32]),
    n: usize,
) -> Res<serde_json::Value> {
    let site = temp.join("peer");
    std::fs::create_dir_all(&site)?;
    let exported = command(python)
        .arg(dir.join("export_onnx.py"))
        .arg(model_dir)
        .arg(&site)
        .status()?;
    if !exported.success() {
        return Err(format!("{} failed", dir.join("export_onnx.py").display()).into());
    }
    std::fs::remove_file(site.join("text_model.onnx"))?;
    let dist = dir.join("node_modules/onnxruntime-web/dist");
    for file in [
        "ort.wasm.min.js",
        "ort-wasm-simd-threaded.mjs",
        "ort-wasm-simd-threaded.wasm",
    ] {
        std::fs::copy(dist.join(file), site.join(file)).map_err(|e| {
            format!(
                "{}: {e} (run `npm ci` in {})",
                dist.join(file).display(),
                dir.display()
            )
        })?;
    }
    std::fs::copy(dir.join("peer.html"), site.join("index.html"))?;
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(model_dir.join(file), site.join(file))?;
    }
    let server = Server::start(site.clone(), None);
    let browser = Browser::start();
    browser.set_script_timeout(Duration::from_secs(600));
    let list = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    browser.goto(&server.url(&format!(
        "/index.html?model=text_model_quantized.onnx&ids={}",
        list(ids)
    )));
    let done = browser.wait_for(
        "return window.peerCold !== undefined || window.peerError !== undefined;",
        json!([]),
        Duration::from_secs(600),
    );
    let error = browser.eval("return window.peerError || null;", json!([]));
    if !done || !error.is_null() {
        return Err(format!("the peer failed: {error}\n{}", browser.console()).into());
    }
    let cold_ms = browser.eval("return window.peerCold;", json!([]));
    let bytes = browser.eval(
        "return performance.getEntries().filter((e) => 'encodedBodySize' in e)
            .reduce((sum, e) => sum + e.encodedBodySize, 0);",
        json!([]),
    );
    let warm = |ids: &[u32]| -> Res<Vec<f64>> {
        let times = browser.eval_async(
            "const [ids, n, done] = arguments;
             window.peerWarm(ids, n).then(done, (e) => done({error: String(e)}));",
            json!([ids, n]),
        );
        Ok(serde_json::from_value(times)?)
    };
    let (mut short, mut long) = (warm(ids)?, warm(long)?);
    Ok(json!({
        "cold_s": cold_ms.as_f64().unwrap_or(f64::NAN) / 1e3,
        "download_mb": bytes.as_f64().unwrap_or(f64::NAN) / 1e6,
        "model_mb": site.join("text_model_quantized.onnx").metadata()?.len() as f64 / 1e6,
        "encode_ms_median": median(&mut short),
        "encode_ms_p90": p90(&mut short),
        "encode77_ms_median": median(&mut long),
        "encode77_ms_p90": p90(&mut long),
    }))
}

fn main() -> Res<()> {
    let mut queries = 50;
    let mut variants = Variant::ALL.to_vec();
    let mut peer_dir: Option<std::path::PathBuf> = None;
    let mut python = "python3".to_string();
    let mut model: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--queries" => queries = args.next().ok_or("--queries needs a value")?.parse()?,
            "--variants" => {
                variants = args
                    .next()
                    .ok_or("--variants needs a value")?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--peer" => peer_dir = Some(args.next().ok_or("--peer needs a directory")?.into()),
            "--python" => python = args.next().ok_or("--python needs a value")?,
            "--model" => model = Some(args.next().ok_or("--model needs a directory")?.into()),
            "--native-one-thread" => {
                let mut value = || args.next().ok_or("--native-one-thread BUNDLE FILE N");
                let bundle = std::path::PathBuf::from(value()?);
                let file = value()?;
                let n: usize = value()?.parse()?;
                let variant = Variant::ALL
                    .into_iter()
                    .find(|&v| file_name(v) == file)
                    .ok_or("unknown variant file")?;
                let tokenizer =
                    ClipTokenizer::from_json(&std::fs::read(bundle.join("tokenizer.json"))?)?;
                let ids = tokenizer.encode(QUERY)?;
                println!("{}", native_latency(&bundle, variant, &ids, n)?);
                return Ok(());
            }
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if model.is_some() && peer_dir.is_some() {
        return Err("--peer compares the ViT-B/32 text tower only: leave out --model".into());
    }
    let public = public_dir();
    let temp = tempfile::tempdir()?;
    let model_dir = temp.path().join("model");
    let bundle = temp.path().join("bundle");
    let (files, model_dir) = match &model {
        // Another model (random weights at its real shapes: clip/bench/random_checkpoints.py).
        Some(dir) => {
            let source = clip::load::ModelSource::parse(&dir.display().to_string());
            let files = clip::load::resolve(&source, &mut clip::load::NoProgress)?;
            (files, dir.clone())
        }
        None => {
            std::fs::create_dir_all(&model_dir)?;
            (random_model(&model_dir)?, model_dir)
        }
    };
    let manifest = write_browser_bundle(&files, &Variant::ALL, &bundle)?;
    let tokenizer = ClipTokenizer::from_json(&std::fs::read(bundle.join("tokenizer.json"))?)?;
    let ids = tokenizer.encode(QUERY)?;
    let long_ids = tokenizer.encode(LONG_QUERY)?;
    // CLIP's vocabulary makes these 7 and 77 tokens; another model's says how many it makes.
    if model.is_none() && (ids.len(), long_ids.len()) != (7, 77) {
        return Err(format!(
            "the queries have {} and {} tokens, not 7 and 77",
            ids.len(),
            long_ids.len()
        )
        .into());
    }
    let chromium = command("chromium")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "chromium (version unknown)".into());
    println!(
        "{chromium}; {} cores; {} text tower, random weights; query {QUERY:?} ({} tokens; the long one {}); {queries} queries per variant",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        files.id,
        ids.len(),
        long_ids.len()
    );

    let mut rows = Vec::new();
    for &variant in &variants {
        let key = variant.as_str();
        // A fresh server per variant: its request counts are this variant's alone.
        let server = Server::with(
            public.clone(),
            &ServerOptions {
                model_dir: Some(&bundle),
                demo_data: true,
                native_model: Some(&model_dir),
                ..ServerOptions::default()
            },
        );
        let browser = Browser::start();
        browser.set_script_timeout(Duration::from_secs(600));
        // The variant is the page's stored choice (set on the same origin before the app runs).
        browser.goto(&server.url("/settings.json"));
        browser.eval(
            "localStorage.setItem('text2img.variant', arguments[0]);",
            json!([key]),
        );
        let cold = time_to_first_result(&browser, &server)?;
        // The token rows a first visit fetched (a GGUF variant's file leaves them out).
        let rows_path = format!("/model/{}", clip::export::TOKEN_ROWS_FILE);
        let row_bytes = match (&manifest.token_rows, clip::export::is_gguf(variant)) {
            (Some(rows), true) => server.requests_for(&rows_path) as u64 * rows.row_bytes as u64,
            _ => 0,
        };
        let warm = time_to_first_result(&browser, &server)?;
        let weights = format!("/model/{}", file_name(variant));
        if server.requests_for(&weights) != 1 {
            return Err(format!(
                "{weights} was requested {} times (cold + warm should be 1)",
                server.requests_for(&weights)
            )
            .into());
        }
        let status = browser.text("#status").unwrap_or_default();
        let (mut in_worker, mut round_trip) = browser_latency(&browser, key, QUERY, queries)?;
        let (mut long_in_worker, _) = browser_latency(&browser, key, LONG_QUERY, queries)?;
        let (mut fresh_first, mut fresh_second) = fresh_latency(&browser, key)?;
        let native = native_latency(&bundle, variant, &ids, queries)?;
        let native_one = native_latency_one_thread(&bundle, variant, queries)?;
        let entry = &manifest.variants[&variant];
        let download = entry.bytes + manifest.config.bytes + manifest.tokenizer.bytes + row_bytes;
        // As transferred: the weights as they are, the JSON compressed as the proxy sends it.
        let json = [&manifest.config.file, &manifest.tokenizer.file]
            .into_iter()
            .map(|file| transferred(&server, &format!("/model/{file}")))
            .sum::<u64>();
        let site = site_bytes(&public, &server)?;
        let row = json!({
            "variant": key,
            "download_mb": download as f64 / 1e6,
            "cold_s": cold,
            "warm_s": warm,
            "encode_ms_median": median(&mut in_worker),
            "encode_ms_p90": p90(&mut in_worker),
            "round_trip_ms_median": median(&mut round_trip),
            "encode77_ms_median": median(&mut long_in_worker),
            "encode77_ms_p90": p90(&mut long_in_worker),
            "fresh_first_ms_median": median(&mut fresh_first),
            "fresh_second_ms_median": median(&mut fresh_second),
            "first_visit_mb": (entry.bytes + json + site + row_bytes) as f64 / 1e6,
            "native_ms_median": native,
            "native_one_thread_ms_median": native_one,
        });
        println!("{row}  (status after warm start: {status:?})");
        rows.push(row);
    }

    println!();
    println!(
        "| variant | download | time to first result, cold | warm | encode (worker), median | p90 | round trip, median | new words: first encode / second, median | native, all cores | native, 1 thread | browser / native 1 thread |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {} | {:.1} MB | {:.2} s | {:.2} s | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} / {:.1} ms | {:.1} ms | {:.1} ms | {:.2}× |",
            r["variant"].as_str().unwrap_or("?"),
            f("download_mb"),
            f("cold_s"),
            f("warm_s"),
            f("encode_ms_median"),
            f("encode_ms_p90"),
            f("round_trip_ms_median"),
            f("fresh_first_ms_median"),
            f("fresh_second_ms_median"),
            f("native_ms_median"),
            f("native_one_thread_ms_median"),
            f("encode_ms_median") / f("native_one_thread_ms_median"),
        );
    }
    if let Some(dir) = peer_dir {
        let peer = peer(
            &dir,
            &python,
            &model_dir,
            temp.path(),
            (&ids, &long_ids),
            queries,
        )?;
        println!("peer (ONNX Runtime Web, 8-bit): {peer}");
        side_by_side(&rows, &peer);
    }
    Ok(())
}

/// text2img's variants beside the peer: latencies, cold start and bytes, with the ratios.
fn side_by_side(rows: &[serde_json::Value], peer: &serde_json::Value) {
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!();
    println!(
        "| engine | warm 7 tokens, median (p90) | warm 77 tokens, median (p90) | cold to first vector / result | first visit |"
    );
    println!("|---|---|---|---|---|");
    let line = |name: &str, v: &serde_json::Value, first_visit: f64| {
        println!(
            "| {name} | {:.1} ms ({:.1}) | {:.1} ms ({:.1}) | {:.2} s | {:.1} MB |",
            f(v, "encode_ms_median"),
            f(v, "encode_ms_p90"),
            f(v, "encode77_ms_median"),
            f(v, "encode77_ms_p90"),
            f(v, "cold_s"),
            first_visit,
        );
    };
    line("ONNX Runtime Web 8-bit", peer, f(peer, "download_mb"));
    for r in rows {
        let name = format!("text2img {}", r["variant"].as_str().unwrap_or("?"));
        line(&name, r, f(r, "first_visit_mb"));
        println!(
            "| speed vs the peer (peer ÷ text2img) | {:.2}× | {:.2}× | | |",
            f(peer, "encode_ms_median") / f(r, "encode_ms_median"),
            f(peer, "encode77_ms_median") / f(r, "encode77_ms_median"),
        );
    }
}
