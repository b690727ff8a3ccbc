//! The learned "no good match" line on the page, on a phone-sized screen: while it is off, a
//! line under the summary says how many more labels it needs; once enough votes are in, a
//! "Weaker matches" heading stands before the first weak result, every card above it strong
//! and every card below it weak.
//!
//! Needs `cd frontend && trunk build --release --offline` first, and Chromium with chromedriver
//! (`bash .ci/setup --browser`).

use std::time::Duration;

use serde_json::{Value, json};
use testkit::app_page::tiny_model_server;
use testkit::browser::{Browser, ENTER};
use testkit::{Server, ServerOptions};

/// The queries voted on over HTTP: each one's best three results relevant, the next five not.
const VOTED: [&str; 6] = [
    "a photo of a cat",
    "a dog on the grass",
    "a red car",
    "a beach at sunset",
    "snowy mountains",
    "a city street at night",
];

fn wait_model(browser: &Browser) {
    browser
        .wait_text("#status", Duration::from_secs(120), |s| {
            !s.is_empty() && !s.ends_with('…')
        })
        .unwrap_or_else(|last| panic!("the model never loaded: {last:?}\n{}", browser.console()));
}

fn search(browser: &Browser, query: &str) {
    browser.eval(
        "const q = document.querySelector('#query'); q.value = ''; q.dispatchEvent(new Event('input'));",
        json!([]),
    );
    browser.type_into("#query", &format!("{query}{ENTER}"));
    let needle = format!("for “{query}”");
    browser
        .wait_text("#summary", Duration::from_secs(60), |t| t.contains(&needle))
        .unwrap_or_else(|last| panic!("no results for {query:?}: {last:?}\n{}", browser.console()));
}

fn post(server: &Server, path: &str, body: &Value) -> Value {
    ureq::post(&server.url(path))
        .send_json(body.clone())
        .unwrap_or_else(|e| panic!("{path} {body}: {e}"))
        .into_json()
        .expect("a JSON answer")
}

/// 48 votes over six queries, as a client that lets the server encode its text.
fn cast_votes(server: &Server) {
    for query in VOTED {
        let page = post(server, "/api/search", &json!({"text": query, "limit": 8}));
        let ids: Vec<&str> = page["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|h| h["id"].as_str().expect("id"))
            .collect();
        assert_eq!(ids.len(), 8, "{page}");
        for (rank, id) in ids.iter().enumerate() {
            let label = if rank < 3 { "relevant" } else { "irrelevant" };
            post(
                server,
                "/api/feedback",
                &json!({"query": query, "image_id": id, "label": label}),
            );
        }
    }
}

#[test]
fn off_line_then_weaker_matches_divider() {
    let (server, _model) = tiny_model_server(ServerOptions {
        demo_data: true,
        ..ServerOptions::default()
    });
    let browser = Browser::start();
    browser.set_window(390, 844);
    browser.goto(&server.url("/"));
    wait_model(&browser);

    // No labels: no divider, and the page says what the line needs.
    search(&browser, "a photo of a cat");
    let note = browser
        .wait_text("#cutoff-note", Duration::from_secs(20), |t| !t.is_empty())
        .unwrap_or_else(|last| panic!("no off-state line: {last:?}\n{}", browser.console()));
    assert_eq!(
        note, "No “no good match” line yet: needs 30 more labels.",
        "{note}"
    );
    assert_eq!(
        browser.attr("#cutoff-note", "role").as_deref(),
        Some("note")
    );
    assert_eq!(browser.count("#weak-divider"), 0);
    assert_eq!(browser.count("#grid > li.card.weak"), 0);

    cast_votes(&server);
    let state: Value = ureq::get(&server.url("/api/cutoff"))
        .call()
        .expect("/api/cutoff")
        .into_json()
        .expect("JSON");
    assert_eq!(state["state"], "on", "{state}");

    // A voted query again: the divider stands before its first weak card.
    search(&browser, "a dog on the grass");
    assert!(
        browser.wait_for(
            "return document.querySelector('#weak-divider') !== null && !document.querySelector('#cutoff-note');",
            json!([]),
            Duration::from_secs(20),
        ),
        "no divider, or the off-state line stayed; state {state}\n{}",
        browser.console()
    );
    let layout = browser.eval(
        "const items = [...document.querySelectorAll('#grid > li')];
         const at = items.findIndex(li => li.classList.contains('weak-divider'));
         const cards = items.filter(li => li.classList.contains('card'));
         const divider = items[at].getBoundingClientRect();
         const grid = document.querySelector('#grid').getBoundingClientRect();
         return {
           dividers: items.filter(li => li.classList.contains('weak-divider')).length,
           before: items.slice(0, at).map(li => li.classList.contains('weak')),
           after: items.slice(at + 1).map(li => li.classList.contains('weak')),
           cards: cards.length,
           heading: items[at].querySelector('h2').textContent,
           width: divider.width, grid: grid.width, height: divider.height,
         };",
        json!([]),
    );
    assert_eq!(layout["dividers"], 1, "{layout}");
    assert_eq!(layout["heading"], "Weaker matches", "{layout}");
    let flags = |key: &str| -> Vec<bool> {
        serde_json::from_value(layout[key].clone()).expect("a list of flags")
    };
    let (before, after) = (flags("before"), flags("after"));
    assert!(!before.is_empty(), "weak from the first result: {layout}");
    assert!(
        !after.is_empty(),
        "a divider with nothing after it: {layout}"
    );
    assert!(
        before.iter().all(|weak| !weak),
        "a weak card above: {layout}"
    );
    assert!(
        after.iter().all(|weak| *weak),
        "a strong card below: {layout}"
    );
    // On a phone the heading spans the grid and is drawn.
    let (width, grid) = (layout["width"].as_f64(), layout["grid"].as_f64());
    assert!(width.is_some() && width == grid, "{layout}");
    assert!(layout["height"].as_f64() > Some(0.0), "{layout}");
}
