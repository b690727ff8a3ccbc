//! Weighted query terms in the browser: the page parses the box, encodes each text term in the
//! worker and sends `terms`; the proxy composes them. Typed `cat -dog` ranks exactly as the API
//! does for `unit(cat) − unit(dog)` computed natively; a bad query is refused beside the box
//! (described by it, announced, nothing sent); without Web Workers, terms with words say they
//! need the in-browser model while `similar:ID` still searches.
//!
//! Needs `cd frontend && trunk build --release --offline` first, and Chromium with chromedriver
//! (`bash .ci/setup --browser`).

use std::time::Duration;

use clip::Device;
use clip::load::load;
use serde_json::{Value, json};
use testkit::app_page::{card_ids, tiny_model_server};
use testkit::browser::{Browser, ENTER};
use testkit::{Server, ServerOptions, tiny_model_files};

/// The tiny model's vector of `text`, computed natively (f32), scaled to unit length.
fn native_unit(text: &str) -> Vec<f32> {
    let loaded = load(&tiny_model_files(), &Device::Cpu).expect("the tiny model");
    let ids = loaded.tokenizer.encode(text).expect("tokenizing");
    let v = loaded
        .model
        .text
        .embed(&[ids])
        .expect("embedding")
        .remove(0);
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// The ids the API ranks first for `body`.
fn api_ids(server: &Server, body: Value) -> Vec<String> {
    let answer: Value = ureq::post(&server.url("/api/search"))
        .send_json(body)
        .expect("a search")
        .into_json()
        .expect("JSON results");
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|h| h["id"].as_str().expect("an id").to_string())
        .collect()
}

/// Waits until the model's status line has settled and says `starts`.
fn wait_model(browser: &Browser, starts: &str) {
    let status = browser.wait_text("#status", Duration::from_secs(120), |s| {
        !s.is_empty() && !s.ends_with('…')
    });
    assert!(
        matches!(&status, Ok(s) if s.starts_with(starts)),
        "status {status:?}\nbrowser console:\n{}",
        browser.console()
    );
}

/// Empties the box, types `query` and Enter.
fn submit(browser: &Browser, query: &str) {
    browser.eval(
        "const q = document.querySelector('#query'); q.value = ''; q.dispatchEvent(new Event('input'));",
        json!([]),
    );
    browser.type_into("#query", &format!("{query}{ENTER}"));
}

/// Submits `query` and waits for its results' summary line.
fn search(browser: &Browser, query: &str) -> String {
    submit(browser, query);
    let needle = format!("for “{query}”");
    browser
        .wait_text("#summary", Duration::from_secs(60), |t| t.contains(&needle))
        .unwrap_or_else(|last| {
            panic!(
                "no results for {query:?}; summary {last:?}, errors {:?} {:?}\nconsole:\n{}",
                browser.text("#error"),
                browser.text("#query-error"),
                browser.console()
            )
        })
}

/// Submits `query` and returns the error shown beside the box.
fn query_error(browser: &Browser, query: &str) -> String {
    submit(browser, query);
    browser
        .wait_text("#query-error", Duration::from_secs(20), |t| !t.is_empty())
        .unwrap_or_else(|last| panic!("no error for {query:?}: {last:?}"))
}

#[test]
fn typed_terms_rank_as_the_natively_composed_vector() {
    let (server, _model) = tiny_model_server(ServerOptions {
        demo_data: true,
        ..ServerOptions::default()
    });
    let browser = Browser::start();
    // The f32 text tower, as native code computes it, so rankings can be compared exactly.
    browser.goto(&server.url("/"));
    browser.eval(
        "localStorage.setItem('text2img.variant', 'f32');",
        json!([]),
    );
    browser.goto(&server.url("/"));
    wait_model(&browser, "Model ready (f32, ");

    let summary = search(&browser, "cat -dog");
    assert!(
        summary.contains("2 terms encoded in this browser"),
        "{summary}"
    );
    let (cat, dog) = (native_unit("cat"), native_unit("dog"));
    let composed: Vec<f32> = cat.iter().zip(&dog).map(|(c, d)| c - d).collect();
    let want = api_ids(&server, json!({"vector": composed, "limit": 20}));
    assert_eq!(card_ids(&browser), want, "the page's ranking");
    // The terms mattered: the same words as one sentence rank otherwise.
    let sentence = api_ids(
        &server,
        json!({"vector": native_unit("cat -dog"), "limit": 20}),
    );
    assert_ne!(sentence, want, "cat -dog as a sentence ranks the same");

    // An image term: the image itself comes first.
    search(&browser, "similar:astronaut");
    assert_eq!(
        card_ids(&browser).first().map(String::as_str),
        Some("astronaut")
    );
}

#[test]
fn bad_queries_are_refused_beside_the_box_and_workerless_pages_say_what_they_can() {
    let (server, _model) = tiny_model_server(ServerOptions {
        demo_data: true,
        ..ServerOptions::default()
    });
    let browser = Browser::start();
    browser.without_workers();
    browser.goto(&server.url("/"));
    wait_model(&browser, "Searching with server-side encoding");

    let error = query_error(&browser, "cat 0:dog");
    assert_eq!(
        error,
        "“0:dog”: a weight of 0 leaves the term out; remove it, or give a weight up to 10."
    );
    assert_eq!(
        browser.attr("#query", "aria-invalid").as_deref(),
        Some("true")
    );
    let described = browser
        .attr("#query", "aria-describedby")
        .unwrap_or_default();
    assert!(
        described.split(' ').any(|id| id == "query-error"),
        "{described}"
    );
    assert_eq!(
        browser.attr("#query-error", "role").as_deref(),
        Some("alert")
    );
    assert_eq!(server.requests_for("/api/search"), 0, "nothing was sent");

    // Typing clears it.
    browser.type_into("#query", "x");
    let cleared = browser.wait_text("#query-error", Duration::from_secs(10), str::is_empty);
    assert_eq!(cleared.as_deref(), Ok(""), "the error stays after typing");
    assert_eq!(
        browser.attr("#query", "aria-invalid").as_deref(),
        Some("false")
    );

    let error = query_error(&browser, "dog +");
    assert!(error.contains("needs a term on each side"), "{error}");
    // The server-side fallback encodes one sentence: terms with words need the worker...
    let error = query_error(&browser, "cat -dog");
    assert!(error.contains("need the model in this browser"), "{error}");
    assert_eq!(server.requests_for("/api/search"), 0, "nothing was sent");
    // ...but an image term needs no model, and plain text is one sentence, as before.
    search(&browser, "similar:astronaut");
    assert_eq!(
        card_ids(&browser).first().map(String::as_str),
        Some("astronaut")
    );
    let summary = search(&browser, "a red car parked on a street");
    assert!(summary.contains("query encoded by the server"), "{summary}");
    assert_eq!(browser.text("#query-error").as_deref(), Some(""));

    // The syntax is on the page, beside the box.
    let hint = browser.text("#query-hint").unwrap_or_default();
    assert!(
        hint.contains("red car -night") && hint.contains("similar:ID"),
        "{hint}"
    );
}
