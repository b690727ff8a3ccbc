//! The browser app end to end: the trunk build in `public/`, served by the proxy's router with the
//! tiny fixture CLIP as the model and the demo collection ingested, driven in headless Chromium.
//! A user's path: the model loads (with progress, from the cache on a reload), a query is
//! encoded in the worker to the same vector as native code, results come back, labels are cast,
//! changed and withdrawn, and the proxy's labels export holds exactly what was clicked. The tiny
//! OpenCLIP and sentence-transformers fixtures (their own layouts) run the same way.
//!
//! Needs `cd frontend && trunk build --release --offline` first, and Chromium with chromedriver
//! (`bash .ci/setup --browser`).

use std::time::Duration;

use clip::Device;
use clip::export::{Variant, file_name};
use clip::load::{ModelSource, NoProgress, load, resolve, write_browser_bundle};
use serde_json::{Value, json};
use testkit::app_page::{card_ids, exported_labels, tiny_model_server, wait_vote};
use testkit::browser::{ARROW_RIGHT, Browser, ENTER};
use testkit::page_checks::{assert_accessible, assert_not_blank};
use testkit::{
    Server, ServerOptions, artifacts, public_dir, tiny_model_dir, tiny_model_files, workspace,
};

const ADMIN_TOKEN: &str = "browser-test-admin";
const QUERY: &str = "a photo of a cat";

/// The model's status line when loading has ended, one way or the other.
fn settled(status: &str) -> bool {
    !status.is_empty() && !status.ends_with('…')
}

/// The query vector of the tiny model, computed natively.
fn native_embedding(query: &str) -> Vec<f32> {
    let files = tiny_model_files();
    let loaded = load(&files, &Device::Cpu).expect("the tiny model");
    let ids = loaded.tokenizer.encode(query).expect("tokenizing");
    loaded
        .model
        .text
        .embed(&[ids])
        .expect("embedding")
        .remove(0)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

fn save_screenshot(browser: &Browser, name: &str) {
    let png = browser.screenshot();
    let shot = artifacts().join(name);
    std::fs::write(&shot, &png).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
    assert_not_blank(&png);
}

/// Waits for the model's status to settle and returns it; panics with the console otherwise.
fn wait_model(browser: &Browser) -> String {
    browser
        .wait_text("#status", Duration::from_secs(120), settled)
        .unwrap_or_else(|last| {
            panic!(
                "the model never finished loading; status {last:?}\nbrowser console:\n{}",
                browser.console()
            )
        })
}

/// Searches for `query` and waits for the summary line of its results.
fn search(browser: &Browser, query: &str) -> String {
    browser.eval(
        "const q = document.querySelector('#query'); q.value = ''; q.dispatchEvent(new Event('input'));",
        json!([]),
    );
    browser.type_into("#query", &format!("{query}{ENTER}"));
    let needle = format!("for “{query}”");
    browser
        .wait_text("#summary", Duration::from_secs(60), |t| t.contains(&needle))
        .unwrap_or_else(|last| {
            panic!(
                "no results for {query:?}; summary {last:?}, error {:?}\nbrowser console:\n{}",
                browser.text("#error"),
                browser.console()
            )
        })
}

fn label_of<'a>(labels: &'a [Value], image: &str) -> &'a Value {
    labels
        .iter()
        .find(|l| l["image_id"] == image)
        .unwrap_or_else(|| panic!("no label for {image} in {labels:#?}"))
}

/// The browser's query vector (sent with the label) equals the native one.
fn assert_native_vector(label: &Value, query: &str) {
    let vector: Vec<f32> =
        serde_json::from_value(label["query_vector"].clone()).expect("a query vector");
    let native = native_embedding(query);
    assert_eq!(vector.len(), native.len(), "vector length");
    let cos = cosine(&vector, &native);
    assert!(cos >= 0.9999, "browser vs native cosine {cos}");
}

#[test]
fn search_label_and_reload_from_cache() {
    let (server, _model) = tiny_model_server(ServerOptions {
        demo_data: true,
        admin_token: Some(ADMIN_TOKEN),
        ..ServerOptions::default()
    });
    let browser = Browser::start();
    browser.goto(&server.url("/"));

    // The model: downloaded once, each file checked, then ready.
    let status = wait_model(&browser);
    assert!(
        status.starts_with(&format!("Model ready ({}, ", Variant::Q5))
            && status.contains("downloaded"),
        "status {status:?}\nbrowser console:\n{}",
        browser.console()
    );
    for file in ["config.json", "tokenizer.json", file_name(Variant::Q5)] {
        assert_eq!(server.requests_for(&format!("/model/{file}")), 1, "{file}");
    }
    let f32_file = format!("/model/{}", file_name(Variant::F32));
    assert_eq!(server.requests_for(&f32_file), 0);
    // Chromium has relaxed SIMD: the loader chose the worker built with it.
    assert_eq!(server.requests_for("/worker_relaxed_bg.wasm"), 1);
    assert_eq!(server.requests_for("/worker_bg.wasm"), 0);
    // The worker's files keep their names across builds: the browser must revalidate them.
    let loader = ureq::get(&server.url("/worker_loader.js"))
        .call()
        .expect("the worker's loader");
    assert_eq!(loader.header("cache-control"), Some("no-cache"));

    // Search: 20 results, "more" brings the other 4 of the 24 demo photos.
    let summary = search(&browser, QUERY);
    assert!(
        summary.contains("query encoded in this browser"),
        "{summary}"
    );
    assert_eq!(browser.count("#grid > li.card"), 20, "first page");
    // The q5 file leaves out the token embedding: the rows of the warm-up's and the query's
    // tokens came one `Range` request each, never the whole table.
    let rows_file = format!("/model/{}", clip::export::TOKEN_ROWS_FILE);
    let tokens = distinct_tokens(&["a photo", QUERY]);
    let row_requests = server.requests_for(&rows_file);
    assert!(
        (1..=tokens).contains(&row_requests),
        "{row_requests} token row requests for {tokens} distinct tokens"
    );
    // Thumbnails load (a broken image has no natural width).
    assert!(
        browser.wait_for(
            "return [...document.querySelectorAll('#grid img')].slice(0, 8).every(i => i.complete && i.naturalWidth > 0);",
            json!([]),
            Duration::from_secs(20)
        ),
        "the first thumbnails did not load"
    );
    save_screenshot(&browser, "results.png");
    assert_accessible(&browser);
    browser.click("#more");
    assert!(
        browser.wait_for(
            "return document.querySelectorAll('#grid > li.card').length === 24 && !document.querySelector('#more');",
            json!([]),
            Duration::from_secs(20)
        ),
        "after `more`: {} cards",
        browser.count("#grid > li.card")
    );
    let ids = card_ids(&browser);
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 24, "duplicate results: {ids:?}");

    // Labels: relevant on the first, flag (then a note) on the second, "n" on the third.
    browser.click("#grid > li:nth-child(1) button.relevant");
    wait_vote(&browser, 1, "Saved: relevant");
    assert_eq!(
        browser
            .attr("#grid > li:nth-child(1) button.relevant", "aria-pressed")
            .as_deref(),
        Some("true")
    );
    browser.click("#grid > li:nth-child(2) button.flag");
    wait_vote(&browser, 2, "Saved: flagged");
    browser.type_into(
        "#grid > li:nth-child(2) .note input",
        &format!("not a cat{ENTER}"),
    );
    wait_vote(&browser, 2, "Saved: flagged, with note");
    browser.type_into("#grid > li:nth-child(3)", "n");
    wait_vote(&browser, 3, "Saved: not relevant");
    browser.type_into("#grid > li:nth-child(3)", &ARROW_RIGHT.to_string());
    let focused = browser.eval("return document.activeElement.dataset.id;", json!([]));
    assert_eq!(
        focused,
        json!(ids[3]),
        "the right arrow moves to the next result"
    );

    let labels = exported_labels(&server, ADMIN_TOKEN);
    assert_eq!(labels.len(), 3, "{labels:#?}");
    let first = label_of(&labels, &ids[0]);
    assert_eq!(first["label"], "relevant");
    assert_eq!(first["query"], QUERY);
    assert_native_vector(first, QUERY);
    let second = label_of(&labels, &ids[1]);
    assert_eq!(second["label"], "flag");
    assert_eq!(second["note"], "not a cat");
    assert_eq!(label_of(&labels, &ids[2])["label"], "irrelevant");
    let client = first["client_id"].as_str().unwrap_or_default();
    assert!(!client.is_empty());
    assert!(labels.iter().all(|l| l["client_id"] == client));

    // Clicking the same label again withdraws it.
    browser.click("#grid > li:nth-child(1) button.relevant");
    wait_vote(&browser, 1, "Vote withdrawn");
    let labels = exported_labels(&server, ADMIN_TOKEN);
    assert_eq!(labels.len(), 2, "{labels:#?}");
    assert!(labels.iter().all(|l| l["image_id"] != ids[0].as_str()));

    // Similar to the first: it is left out, labels are off, and "back" returns.
    browser.click("#grid > li:nth-child(1) button.similar");
    browser
        .wait_text("#summary", Duration::from_secs(20), |t| {
            t.contains("images similar to")
        })
        .unwrap_or_else(|last| panic!("no similar images; summary {last:?}"));
    assert!(!card_ids(&browser).contains(&ids[0]));
    assert_eq!(browser.count("#grid button.relevant"), 0);
    browser.click("#back");
    browser
        .wait_text("#summary", Duration::from_secs(20), |t| {
            t.contains(&format!("for “{QUERY}”"))
        })
        .unwrap_or_else(|last| panic!("back did not return; summary {last:?}"));

    // A reload takes the model from Cache Storage: no second download; the warm-up's token rows
    // come from the HTTP cache.
    let rows_before_reload = server.requests_for(&rows_file);
    browser.goto(&server.url("/"));
    let status = wait_model(&browser);
    assert_eq!(
        server.requests_for(&rows_file),
        rows_before_reload,
        "token rows fetched again after a reload"
    );
    assert!(
        status.contains("from this browser's cache"),
        "status after reload {status:?}"
    );
    for file in ["config.json", "tokenizer.json", file_name(Variant::Q5)] {
        assert_eq!(
            server.requests_for(&format!("/model/{file}")),
            1,
            "{file} downloaded again on reload"
        );
    }
    assert_eq!(server.requests_for("/api/model"), 2);

    // Another precision, chosen on the page: f32 is downloaded and gives the same vector.
    browser.eval(
        "const s = document.querySelector('#variant'); s.value = arguments[0]; s.dispatchEvent(new Event('change'));",
        json!([Variant::F32]),
    );
    browser
        .wait_text("#status", Duration::from_secs(60), |t| {
            t.starts_with(&format!("Model ready ({}", Variant::F32))
        })
        .unwrap_or_else(|last| panic!("f32 did not load; status {last:?}"));
    assert_eq!(server.requests_for(&f32_file), 1);
    let f32_query = "a dog on the grass";
    search(&browser, f32_query);
    browser.click("#grid > li:nth-child(1) button.relevant");
    wait_vote(&browser, 1, "Saved: relevant");
    let labels = exported_labels(&server, ADMIN_TOKEN);
    let f32_label = labels
        .iter()
        .find(|l| l["query"] == f32_query)
        .expect("the f32 query's label");
    assert_native_vector(f32_label, f32_query);
}

/// The distinct token ids of `texts`, start and end tokens included.
fn distinct_tokens(texts: &[&str]) -> usize {
    let tokenizer = clip::ClipTokenizer::from_json(
        &std::fs::read(tiny_model_dir().join("tokenizer.json")).expect("tokenizer.json"),
    )
    .expect("tokenizer");
    let mut ids = std::collections::BTreeSet::new();
    for text in texts {
        ids.extend(tokenizer.encode(text).expect("tokens"));
    }
    ids.len()
}

/// A token row that cannot be fetched fails the load with the URL at fault, and retry loads.
#[test]
fn a_failed_token_row_says_so_and_retry_loads_the_model() {
    let rows_file = format!("/model/{}", clip::export::TOKEN_ROWS_FILE);
    let (server, _model) = failed_then_retried(&rows_file, "cannot download token row");
    assert!(server.requests_for(&rows_file) >= 2);
}

/// Behind a host that ignores `Range`, the token rows file arrives whole, once, checked; later
/// queries fetch nothing more and search as usual.
#[test]
fn a_host_without_range_requests_sends_the_token_rows_once() {
    let rows_file = format!("/model/{}", clip::export::TOKEN_ROWS_FILE);
    let (server, _model) = tiny_model_server(ServerOptions {
        demo_data: true,
        ignore_range: true,
        ..ServerOptions::default()
    });
    let browser = Browser::start();
    browser.goto(&server.url("/"));
    let status = wait_model(&browser);
    assert!(
        status.starts_with("Model ready"),
        "status {status:?}\nbrowser console:\n{}",
        browser.console()
    );
    let after_load = server.requests_for(&rows_file);
    assert!(after_load >= 1);
    let summary = search(&browser, QUERY);
    assert!(
        summary.contains("query encoded in this browser"),
        "{summary}"
    );
    assert_eq!(server.requests_for(&rows_file), after_load);
}

#[test]
fn a_failed_download_says_so_and_retry_loads_the_model() {
    let default_file = format!("/model/{}", file_name(Variant::Q5));
    let (server, _model) = failed_then_retried(&default_file, "cannot download");
    assert_eq!(server.requests_for(&default_file), 2);
}

/// Loads the page while `path`'s first request fails (HTTP 500): the status says the model did
/// not load, with `says` and `path`, and Retry loads it. The server and its model directory.
fn failed_then_retried(path: &str, says: &str) -> (Server, tempfile::TempDir) {
    let (server, model) = tiny_model_server(ServerOptions {
        fail_once: &[path],
        ..ServerOptions::default()
    });
    let browser = Browser::start();
    browser.goto(&server.url("/"));
    let status = wait_model(&browser);
    assert!(
        status.starts_with("The model did not load")
            && status.contains(says)
            && status.contains(path)
            && status.contains("HTTP 500"),
        "status {status:?}"
    );
    browser.click("#retry");
    browser
        .wait_text("#status", Duration::from_secs(60), |t| {
            t.starts_with("Model ready")
        })
        .unwrap_or_else(|last| panic!("retry did not load the model; status {last:?}"));
    (server, model)
}

#[test]
fn the_page_says_when_there_is_no_model() {
    let empty = tempfile::tempdir().expect("a temporary model directory");
    let server = Server::start(public_dir(), Some(empty.path()));
    let browser = Browser::start();
    browser.goto(&server.url("/"));

    let status = wait_model(&browser);
    assert!(
        status.contains("no model found") && status.contains("/api/model"),
        "status {status:?}"
    );
    assert_eq!(browser.count("#retry"), 1, "a retry button");
    browser.type_into("#query", &format!("{QUERY}{ENTER}"));
    let error = browser.wait_text("#error", Duration::from_secs(10), |t| !t.is_empty());
    assert!(
        matches!(&error, Ok(e) if e.starts_with("Cannot encode the query") && e.contains("no model")),
        "error line {error:?}"
    );
}

#[test]
fn without_workers_the_server_encodes_and_the_page_says_so() {
    let (server, _model) = tiny_model_server(ServerOptions {
        demo_data: true,
        ..ServerOptions::default()
    });
    let browser = Browser::start();
    browser.without_workers();
    // A phone-sized screen.
    browser.set_window(390, 844);
    browser.goto(&server.url("/"));
    let status = wait_model(&browser);
    assert!(
        status.starts_with("Searching with server-side encoding")
            && status.contains("Your query text is sent to the search server"),
        "status {status:?}"
    );
    assert_eq!(server.requests_for("/api/model"), 0, "no model download");

    let summary = search(&browser, QUERY);
    assert!(summary.contains("query encoded by the server"), "{summary}");
    assert_eq!(browser.count("#grid > li.card"), 20);
    // Usable on a phone: nothing wider than the screen, two columns of results.
    let layout = browser.eval(
        "const cards = [...document.querySelectorAll('#grid > li.card')];
         const top = cards[0].offsetTop;
         return [document.documentElement.scrollWidth, window.innerWidth,
                 cards.filter(c => c.offsetTop === top).length];",
        json!([]),
    );
    let [scroll, inner, columns] = serde_json::from_value::<[u64; 3]>(layout.clone())
        .unwrap_or_else(|e| panic!("{layout}: {e}"));
    assert!(
        scroll <= inner,
        "the page scrolls sideways: {scroll} > {inner}"
    );
    assert_eq!(columns, 2, "columns on a phone");
    save_screenshot(&browser, "phone.png");
}

#[test]
fn without_webassembly_a_plain_page_searches_on_the_server() {
    let server = Server::with(
        public_dir(),
        &ServerOptions {
            demo_data: true,
            admin_token: Some(ADMIN_TOKEN),
            ..ServerOptions::default()
        },
    );
    let browser = Browser::start();
    browser.cdp(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": "delete window.WebAssembly;"}),
    );
    browser.goto(&server.url("/"));
    let status = browser
        .wait_text("#status", Duration::from_secs(30), |t| {
            t.contains("cannot run WebAssembly")
        })
        .unwrap_or_else(|last| {
            panic!(
                "no fallback page; status {last:?}\nbrowser console:\n{}",
                browser.console()
            )
        });
    assert!(status.contains("Your query text is sent to the search server"));
    let summary = search(&browser, QUERY);
    assert!(summary.contains("query encoded by the server"), "{summary}");
    assert_eq!(browser.count("#grid > li.card"), 20);
    let first = card_ids(&browser).remove(0);
    browser.click("#grid > li:nth-child(1) button.relevant");
    wait_vote(&browser, 1, "Saved: relevant");
    let labels = exported_labels(&server, ADMIN_TOKEN);
    assert_eq!(labels.len(), 1, "{labels:#?}");
    assert_eq!(labels[0]["image_id"], first.as_str());
    assert_eq!(labels[0]["query"], QUERY);
}

#[test]
fn the_site_hosted_elsewhere_reaches_the_proxy_named_in_settings() {
    // The API on one origin, allowing the site's origin (known only once the site listens).
    let site_dir = tempfile::tempdir().expect("a site directory");
    let site = Server::start(site_dir.path().to_path_buf(), None);
    let site_origin = [site.url("")];
    let (api, _model) = tiny_model_server(ServerOptions {
        demo_data: true,
        admin_token: Some(ADMIN_TOKEN),
        cors_origins: &site_origin,
        ..ServerOptions::default()
    });
    // The static site: the built files, with settings.json pointing at the API.
    for entry in std::fs::read_dir(public_dir()).expect("public/") {
        let path = entry.expect("an entry").path();
        if path.is_file() {
            let to = site_dir.path().join(path.file_name().expect("a name"));
            std::fs::copy(&path, &to).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    std::fs::write(
        site_dir.path().join("settings.json"),
        json!({"api_base": api.url("")}).to_string(),
    )
    .expect("settings.json");

    let browser = Browser::start();
    browser.goto(&site.url("/"));
    let status = wait_model(&browser);
    assert!(
        status.starts_with("Model ready"),
        "status {status:?}\nbrowser console:\n{}",
        browser.console()
    );
    assert_eq!(api.requests_for("/api/model"), 1);
    assert_eq!(site.requests_for("/api/model"), 0);
    search(&browser, QUERY);
    assert_eq!(browser.count("#grid > li.card"), 20);
    let thumb = browser
        .attr("#grid > li:nth-child(1) img", "src")
        .unwrap_or_default();
    assert!(thumb.starts_with(&api.url("/thumbs/")), "thumbnail {thumb}");
    browser.click("#grid > li:nth-child(1) button.relevant");
    wait_vote(&browser, 1, "Saved: relevant");
    assert_eq!(exported_labels(&api, ADMIN_TOKEN).len(), 1);
}

/// A checkpoint in another family's layout (a fixture folder of `clip/tests/fixtures`) runs in
/// the browser like transformers' CLIP: its bundle, written by the same export, loads in the
/// worker; a query encoded there equals the native vector of that family's model; the server
/// ingested the demo photos with it and answers with them.
fn family_searches_in_the_browser(fixture: &str) {
    let model = workspace().join("clip/tests/fixtures").join(fixture);
    let files = resolve(&ModelSource::Dir(model.clone()), &mut NoProgress).expect("the model");
    let bundle = tempfile::tempdir().expect("a bundle directory");
    write_browser_bundle(&files, &Variant::ALL, bundle.path()).expect("the bundle");
    let server = Server::with(
        public_dir(),
        &ServerOptions {
            model_dir: Some(bundle.path()),
            native_model: Some(model.as_path()),
            demo_data: true,
            admin_token: Some(ADMIN_TOKEN),
            ..ServerOptions::default()
        },
    );
    let browser = Browser::start();
    browser.goto(&server.url("/"));
    let status = wait_model(&browser);
    assert!(
        status.starts_with(&format!("Model ready ({}, ", Variant::Q5)),
        "{fixture}: status {status:?}\nbrowser console:\n{}",
        browser.console()
    );
    let summary = search(&browser, QUERY);
    assert!(
        summary.contains("query encoded in this browser"),
        "{fixture}: {summary}"
    );
    assert_eq!(
        browser.count("#grid > li.card"),
        20,
        "{fixture}: first page"
    );

    // The browser's query vector, sent with a label, is the native one of this model.
    browser.click("#grid > li:nth-child(1) button.relevant");
    wait_vote(&browser, 1, "Saved: relevant");
    let ids = card_ids(&browser);
    let labels = exported_labels(&server, ADMIN_TOKEN);
    let label = label_of(&labels, &ids[0]);
    let vector: Vec<f32> =
        serde_json::from_value(label["query_vector"].clone()).expect("a query vector");
    let loaded = load(&files, &Device::Cpu).expect("the model");
    let native = loaded
        .model
        .text
        .embed(&[loaded.tokenizer.encode(QUERY).expect("tokenizing")])
        .expect("embedding")
        .remove(0);
    let cos = cosine(&vector, &native);
    assert!(cos >= 0.9999, "{fixture}: browser vs native cosine {cos}");
}

/// The tiny OpenCLIP checkpoint, in open_clip's own files.
#[test]
fn an_open_clip_model_searches_in_the_browser() {
    family_searches_in_the_browser("tiny-open-clip");
}

/// The tiny MobileCLIP (open_clip's files, a FastViT image tower on the server): its text tower
/// has no causal mask, so the worker encodes at the full context, as the bundle's config says.
#[test]
fn a_mobileclip_model_searches_in_the_browser() {
    family_searches_in_the_browser("tiny-mobileclip");
}

/// The tiny MobileCLIP-B (a ViT with a convolutional stem on the server, a causal text tower).
#[test]
fn a_mobileclip_b_model_searches_in_the_browser() {
    family_searches_in_the_browser("tiny-mobileclip-b");
}

/// The tiny sentence-transformers CLIP (`modules.json` + `0_CLIPModel/`).
#[test]
fn a_sentence_transformers_model_searches_in_the_browser() {
    family_searches_in_the_browser("tiny-st-clip");
}

/// The tiny SigLIP (`model_type: "siglip"`, its tokenizer made from `spiece.model`): the worker
/// runs its text tower over the whole 64-token context, without a causal mask.
#[test]
fn a_siglip_model_searches_in_the_browser() {
    family_searches_in_the_browser("tiny-siglip");
}
