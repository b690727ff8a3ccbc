//! "More like the ones I marked" in the browser: the button waits for a relevant mark, is
//! reached and pressed from the keyboard, and the page's new ranking is exactly the proxy's
//! answer to the same positive / negative request (the browser's own query vector, read back from
//! the labels export).
//!
//! Needs `cd frontend && trunk build --release --offline` first, and Chromium with chromedriver
//! (`bash .ci/setup --browser`).

use std::time::Duration;

use serde_json::{Value, json};
use testkit::app_page::{card_ids, exported_labels, tiny_model_server, wait_vote};
use testkit::browser::{Browser, ENTER};
use testkit::{ServerOptions, post_json};

const ADMIN_TOKEN: &str = "feedback-test-admin";
const QUERY: &str = "a photo of a cat";

fn summary_with(browser: &Browser, needle: &str) -> String {
    browser
        .wait_text("#summary", Duration::from_secs(60), |t| t.contains(needle))
        .unwrap_or_else(|last| {
            panic!(
                "summary {last:?} never said {needle:?}; error {:?}\nbrowser console:\n{}",
                browser.text("#error"),
                browser.console()
            )
        })
}

fn ids_of(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|h| h["id"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn more_like_the_ones_i_marked() {
    let (server, _model) = tiny_model_server(ServerOptions {
        demo_data: true,
        admin_token: Some(ADMIN_TOKEN),
        ..ServerOptions::default()
    });
    let browser = Browser::start();
    browser.goto(&server.url("/"));
    browser.type_into("#query", &format!("{QUERY}{ENTER}"));
    summary_with(&browser, &format!("for “{QUERY}”"));
    let first = card_ids(&browser);
    assert_eq!(first.len(), 20);

    // Unavailable until something is marked relevant, but reachable, and it says why.
    assert_eq!(
        browser.attr("#more-like", "aria-disabled").as_deref(),
        Some("true")
    );
    let hint = browser.text("#more-like-hint").unwrap_or_default();
    assert!(hint.contains("Mark at least one result Relevant"), "{hint}");
    // A native button with a name, its hint tied to it for screen readers.
    let described = browser.eval(
        "const b = document.querySelector('#more-like');
         const d = document.getElementById(b.getAttribute('aria-describedby'));
         return b.tagName === 'BUTTON' && b.textContent.trim() !== '' && !b.disabled && !!d;",
        json!([]),
    );
    assert_eq!(described, json!(true));
    browser.click("#more-like");
    assert_eq!(card_ids(&browser), first, "pressed while unavailable");

    // Marks: relevant on 1 and 3, not relevant on 2 (from the keyboard), a flag on 4.
    browser.click("#grid > li:nth-child(1) button.relevant");
    wait_vote(&browser, 1, "Saved: relevant");
    browser.type_into("#grid > li:nth-child(2)", "n");
    wait_vote(&browser, 2, "Saved: not relevant");
    browser.click("#grid > li:nth-child(3) button.relevant");
    wait_vote(&browser, 3, "Saved: relevant");
    browser.click("#grid > li:nth-child(4) button.flag");
    wait_vote(&browser, 4, "Saved: flagged");
    assert_eq!(
        browser.attr("#more-like", "aria-disabled").as_deref(),
        Some("false")
    );

    // Pressed from the keyboard: focus it, then Enter.
    browser.eval("document.querySelector('#more-like').focus();", json!([]));
    let focused = browser.eval("return document.activeElement.id;", json!([]));
    assert_eq!(focused, json!("more-like"));
    browser.type_into("#more-like", &ENTER.to_string());
    summary_with(
        &browser,
        "more like the 2 you marked relevant and unlike the 2 you did not",
    );
    let second = card_ids(&browser);

    // The same request to the API, with the vector the browser searched with.
    let labels = exported_labels(&server, ADMIN_TOKEN);
    assert_eq!(labels.len(), 4, "{labels:#?}");
    let vector = labels[0]["query_vector"].clone();
    assert!(vector.is_array(), "{labels:#?}");
    let mut positive = [first[0].clone(), first[2].clone()];
    let mut negative = [first[1].clone(), first[3].clone()];
    positive.sort();
    negative.sort();
    let body = json!({
        "vector": vector,
        "limit": 20,
        "positive": positive.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
        "negative": negative.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
    });
    let answer = post_json(&server.url("/api/search"), &body);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        second,
        ids_of(&answer.json()),
        "the page shows the API's ranking"
    );

    // The marked images are left out, and the rest is ranked anew (not the first page's order
    // with the marked ones removed).
    assert!(
        first[..4].iter().all(|id| !second.contains(id)),
        "{second:?}"
    );
    let plain = post_json(
        &server.url("/api/search"),
        &json!({"vector": vector, "limit": 24}),
    );
    let residual: Vec<String> = ids_of(&plain.json())
        .into_iter()
        .filter(|id| !first[..4].contains(id))
        .collect();
    assert_eq!(second.len(), 20);
    assert_ne!(second, residual, "feedback left the ranking as it was");

    // Votes stay with the query: the next round still knows them.
    assert_eq!(
        browser.attr("#more-like", "aria-disabled").as_deref(),
        Some("false")
    );
    let hint = browser.text("#more-like-hint").unwrap_or_default();
    assert!(
        hint.contains("the 2 you marked relevant and the 2"),
        "{hint}"
    );
}
