//! What a browser test reads from the web app's search page, and the server it is served by:
//! the tiny model's bundle beside the built site, the cards on screen, a card's vote line, and
//! the votes in force as the labels export gives them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::browser::Browser;
use crate::http::get;
use crate::model::write_tiny_bundle;
use crate::paths::public_dir;
use crate::server::{Server, ServerOptions};

/// A server of the built site with the tiny model's browser bundle (written to the directory
/// returned with it) and `options` otherwise.
pub fn tiny_model_server(options: ServerOptions<'_>) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary model directory");
    write_tiny_bundle(dir.path());
    let server = Server::with(
        public_dir(),
        &ServerOptions {
            model_dir: Some(dir.path()),
            ..options
        },
    );
    (server, dir)
}

/// The ids of the result cards on screen, in order.
pub fn card_ids(browser: &Browser) -> Vec<String> {
    let ids = browser.eval(
        "return [...document.querySelectorAll('#grid > li.card')].map(c => c.dataset.id);",
        json!([]),
    );
    serde_json::from_value(ids).expect("card ids")
}

/// Waits until card `n` (1-based) says `words` under its buttons.
pub fn wait_vote(browser: &Browser, n: usize, words: &str) {
    let css = format!("#grid > li:nth-child({n}) .vote");
    browser
        .wait_text(&css, Duration::from_secs(20), |t| t == words)
        .unwrap_or_else(|last| {
            panic!(
                "card {n} should say {words:?}, says {last:?}\nbrowser console:\n{}",
                browser.console()
            )
        });
}

/// The votes in force, from the proxy's labels export (behind the admin token `token`).
pub fn exported_labels(server: &Server, token: &str) -> Vec<Value> {
    let bearer = format!("Bearer {token}");
    let answer = get(
        &server.url("/api/labels?format=jsonl"),
        &[("Authorization", &bearer)],
    );
    assert_eq!(answer.status, 200, "the labels export: {}", answer.text());
    answer
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}
