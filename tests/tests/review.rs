//! The admin review queue end to end, in headless Chromium over the built site: a visitor flags a
//! result on the search page (and other clients vote through the API), the reviewer opens
//! `#review` with the admin token (a wrong one is refused and asked for again), sees the flagged
//! and disputed results with thumbnails, vote counts and notes, sets verdicts by mouse and by
//! keyboard on a phone-width screen, and exports `queries.tsv`; the eval library, reading the
//! storage as `proxy eval` does, takes the reviewer's verdicts over the crowd's majority.
//!
//! Needs `cd frontend && trunk build --release --offline` first, and Chromium with chromedriver
//! (`bash .ci/setup --browser`).

use std::collections::BTreeSet;
use std::time::Duration;

use proxy::eval::{Judged, judgments, judgments_reviewed};
use proxy::labels::LabelLog;
use proxy::review::ReviewLog;
use serde_json::json;
use testkit::app_page::tiny_model_server;
use testkit::browser::{Browser, ENTER};
use testkit::page_checks::assert_accessible;
use testkit::{Server, ServerOptions, artifacts};

const ADMIN_TOKEN: &str = "review-test-admin";
const QUERY: &str = "a photo of a cat";
const WAIT: Duration = Duration::from_secs(30);

fn wait_text(browser: &Browser, css: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    browser.wait_text(css, WAIT, done).unwrap_or_else(|last| {
        panic!(
            "{what}: {css} says {last:?}; error line {:?}\nbrowser console:\n{}",
            browser
                .text("#review-error")
                .or_else(|| browser.text("#error")),
            browser.console()
        )
    })
}

/// A vote through the API, as another visitor.
fn vote(server: &Server, client: &str, image: &str, label: &str) {
    let answer = ureq::post(&server.url("/api/feedback"))
        .send_json(json!({"query": QUERY, "image_id": image, "label": label, "client_id": client}))
        .expect("a vote");
    assert_eq!(answer.status(), 200);
}

/// The images judged relevant to `QUERY`.
fn relevant(judged: &[Judged]) -> BTreeSet<String> {
    judged
        .iter()
        .find(|j| j.query == QUERY)
        .map(|j| j.relevant.clone())
        .unwrap_or_default()
}

/// The visitor's part: search on the page, flag the first result with a note; its id.
fn flag_first_result(browser: &Browser, server: &Server) -> Vec<String> {
    browser.goto(&server.url("/"));
    wait_text(browser, "#status", "the model", |s| {
        s.starts_with("Model ready")
    });
    browser.type_into("#query", &format!("{QUERY}{ENTER}"));
    wait_text(browser, "#summary", "the results", |t| {
        t.contains(&format!("for “{QUERY}”"))
    });
    browser.click("#grid > li:nth-child(1) button.flag");
    wait_text(browser, "#grid > li:nth-child(1) .vote", "the flag", |t| {
        t == "Saved: flagged"
    });
    browser.type_into(
        "#grid > li:nth-child(1) .note input",
        &format!("not a cat{ENTER}"),
    );
    wait_text(browser, "#grid > li:nth-child(1) .vote", "the note", |t| {
        t == "Saved: flagged, with note"
    });
    let ids = browser.eval(
        "return [...document.querySelectorAll('#grid > li.card')].map(c => c.dataset.id);",
        json!([]),
    );
    serde_json::from_value(ids).expect("card ids")
}

/// The queue's items on screen: (image id, vote counts line, notes).
fn queue_on_screen(browser: &Browser) -> Vec<(String, String, Vec<String>)> {
    let items = browser.eval(
        "return [...document.querySelectorAll('#queue > li.review-item')].map(li => [
           li.dataset.id,
           li.querySelector('.counts').textContent,
           [...li.querySelectorAll('.notes li')].map(n => n.textContent)]);",
        json!([]),
    );
    serde_json::from_value(items).unwrap_or_else(|e| panic!("{e}"))
}

fn wait_gone(browser: &Browser, image: &str) {
    let gone = browser.wait_for(
        "return !document.querySelector(`#queue li[data-id=\"${arguments[0]}\"]`);",
        json!([image]),
        WAIT,
    );
    assert!(
        gone,
        "{image} is still in the queue; error line {:?}",
        browser.text("#review-error")
    );
}

#[test]
fn flag_review_eval_and_export() {
    let (server, _model) = tiny_model_server(ServerOptions {
        demo_data: true,
        admin_token: Some(ADMIN_TOKEN),
        ..ServerOptions::default()
    });
    let browser = Browser::start();

    // The crowd: the visitor flags `flagged` on the page; through the API, `disputed` gets two
    // relevant votes and an irrelevant one, `skipped` a flag, `agreed` two relevant votes.
    let ids = flag_first_result(&browser, &server);
    let [flagged, disputed, skipped, agreed] = [0, 1, 2, 3].map(|i| ids[i].clone());
    vote(&server, "x", &disputed, "relevant");
    vote(&server, "y", &disputed, "relevant");
    vote(&server, "z", &disputed, "irrelevant");
    vote(&server, "x", &skipped, "flag");
    vote(&server, "x", &agreed, "relevant");
    vote(&server, "y", &agreed, "relevant");

    // The reviewer, on a phone-width screen. The hash alone switches the page.
    browser.set_window(390, 844);
    browser.goto(&server.url("/#review"));
    wait_text(&browser, "#token-form", "the token form", |_| true);
    browser.type_into("#admin-token", &format!("wrong{ENTER}"));
    wait_text(&browser, "#review-error", "a wrong token", |t| {
        t.contains("admin token")
    });
    assert_eq!(
        browser.count("#admin-token"),
        1,
        "asked for the token again"
    );
    browser.type_into("#admin-token", &format!("{ADMIN_TOKEN}{ENTER}"));
    wait_text(&browser, "#review-status", "the queue", |t| {
        t.starts_with("3 results to review")
    });
    let stored = browser.eval(
        "return sessionStorage.getItem('text2img.admin_token');",
        json!([]),
    );
    assert_eq!(stored, json!(ADMIN_TOKEN), "the token is kept in this tab");
    let local = browser.eval("return Object.keys(localStorage);", json!([]));
    assert!(
        !local.to_string().contains("admin_token"),
        "the token is not in localStorage: {local}"
    );

    // Flagged first, then the split vote; the unanimous one is not there.
    let queue = queue_on_screen(&browser);
    let order: Vec<&str> = queue.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(order.len(), 3, "{queue:?}");
    assert_eq!(order[2], disputed, "{queue:?}");
    assert!(!order.contains(&agreed.as_str()), "{queue:?}");
    let first = queue
        .iter()
        .find(|(id, _, _)| *id == flagged)
        .expect("flagged");
    assert_eq!(first.1, "0 relevant · 0 not relevant · 1 flagged");
    assert_eq!(first.2, ["not a cat"]);
    assert_eq!(queue[2].1, "2 relevant · 1 not relevant · 0 flagged");
    assert!(
        browser.wait_for(
            "return [...document.querySelectorAll('#queue img')].every(i => i.complete && i.naturalWidth > 0);",
            json!([]),
            WAIT
        ),
        "the thumbnails did not load"
    );
    assert_accessible(&browser);
    let shot = artifacts().join("review.png");
    std::fs::write(&shot, browser.screenshot())
        .unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
    let layout = browser.eval(
        "return [document.documentElement.scrollWidth, window.innerWidth];",
        json!([]),
    );
    let [scroll, inner] = serde_json::from_value::<[u64; 2]>(layout).expect("widths");
    assert!(
        scroll <= inner,
        "the page scrolls sideways: {scroll} > {inner}"
    );

    // Verdicts: by click, by keyboard (Enter on the focused button) with a note, and a skip.
    let item = |id: &str| format!("#queue li[data-id=\"{id}\"]");
    browser.click(&format!("{} button.relevant", item(&flagged)));
    wait_gone(&browser, &flagged);
    browser.type_into(&format!("{} input", item(&disputed)), "only a cat toy");
    browser.type_into(
        &format!("{} button.irrelevant", item(&disputed)),
        &ENTER.to_string(),
    );
    wait_gone(&browser, &disputed);
    browser.click(&format!("{} button.skip", item(&skipped)));
    wait_text(&browser, "#review-status", "an empty queue", |t| {
        t.starts_with("Nothing to review")
    });

    // Eval, reading the storage as `proxy eval` does: the reviewer wins over the majority
    // (`flagged` was voted out, `disputed` in); a skip leaves the crowd's word.
    let data = server.data_dir();
    let labels = LabelLog::snapshot(&data.labels()).expect("the label log");
    let reviews = ReviewLog::snapshot(&data.reviews()).expect("the review log");
    assert_eq!(reviews.len(), 3);
    assert!(
        reviews
            .iter()
            .any(|r| r.note.as_deref() == Some("only a cat toy"))
    );
    let crowd = relevant(&judgments(&[], &labels).0);
    assert_eq!(crowd, [disputed.clone(), agreed.clone()].into());
    let reviewed = relevant(&judgments_reviewed(&[], &labels, &reviews).0);
    assert_eq!(reviewed, [flagged.clone(), agreed.clone()].into());

    // The export: on the page and from the API, the reviewed relevant judgment only.
    let expected = format!("query\trelevant_ids\n{QUERY}\t{flagged}\n");
    browser.click("#export");
    wait_text(&browser, "#export-text", "the export", |t| t == expected);
    let href = browser.attr("#export-link", "href").unwrap_or_default();
    assert!(href.starts_with("data:text/tab-separated-values"), "{href}");
    assert_eq!(
        browser.attr("#export-link", "download").as_deref(),
        Some("queries.tsv")
    );
    let api = ureq::get(&server.url("/api/review/export"))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .expect("the export")
        .into_string()
        .expect("text");
    assert_eq!(api, expected);
    let parsed = proxy::eval::parse_queries(&api, "export").expect("a valid queries.tsv");
    assert_eq!(relevant(&parsed), [flagged.clone()].into());

    // A reload keeps the token for this tab; "forget" drops it.
    browser.goto(&server.url("/?again#review"));
    wait_text(
        &browser,
        "#review-status",
        "the queue after a reload",
        |t| t.starts_with("Nothing to review"),
    );
    browser.click("#forget");
    wait_text(&browser, "#token-form", "the token form again", |_| true);
    let stored = browser.eval(
        "return sessionStorage.getItem('text2img.admin_token');",
        json!([]),
    );
    assert_eq!(stored, json!(null));
}
