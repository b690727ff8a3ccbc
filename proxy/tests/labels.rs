//! Votes over HTTP that could corrupt or flood the label log: budgets per client (votes and note
//! bytes: 429 `vote_budget` with `Retry-After`, nothing written; checked only after the vote and
//! its image are), a failed append (503, no partial line, the next vote whole), and a log driven
//! past the rewrite threshold while serving.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;

use proxy::labels::{BudgetConfig, LabelLog};
use proxy::layout::DataDir;
use proxy::store::SharedStore;
use serde_json::{Value, json};
use testkit::points::{axis, edge_store, point};
use testkit::{Answer, TestServer, app_state, get, post_json, public_stub, tiny_model, tiny_spec};

struct Fixture {
    server: TestServer,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// Three points `img0`..`img2`, served with the vote budgets `budget`.
fn fixture(budget: BudgetConfig) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = tiny_model();
    let spec = tiny_spec(&loaded);
    let points = (0..3)
        .map(|i| point(&format!("img{i}"), axis(i, spec.dim), json!({})))
        .collect();
    let store = edge_store(dir.path(), &loaded, points);
    let store: SharedStore = Arc::new(store);
    let state = app_state(store, &loaded, dir.path(), Some("admin"), None).with_vote_budget(budget);
    let server = TestServer::start(state, &public_stub(dir.path()), vec![]);
    Fixture {
        server,
        log: DataDir::new(dir.path()).labels(),
        _dir: dir,
    }
}

fn budget(client_votes: u32, client_note_bytes: u32) -> BudgetConfig {
    let nz = |n| NonZeroU32::new(n).expect("non-zero");
    BudgetConfig {
        client_votes_per_hour: nz(client_votes),
        client_note_bytes_per_hour: nz(client_note_bytes),
        ..BudgetConfig::default()
    }
}

fn vote(f: &Fixture, body: Value) -> Answer {
    post_json(&f.server.url("/api/feedback"), &body)
}

/// The log's lines, each checked to be a whole JSON line.
fn lines(f: &Fixture) -> Vec<Value> {
    let text = std::fs::read_to_string(&f.log).expect("the log");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a torn line: {text:?}"
    );
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a whole JSON line"))
        .collect()
}

fn assert_over_budget(a: &Answer, phrase: &str) {
    assert_eq!(
        (a.status, a.error_code().as_str()),
        (429, "vote_budget"),
        "{}",
        a.text()
    );
    assert!(a.text().contains(phrase), "{}", a.text());
    let retry: u64 = a
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(retry >= 1);
}

#[test]
fn votes_over_the_client_budget_are_refused_and_not_written() {
    let f = fixture(budget(3, 64 << 10));
    // Refused before the budget is charged: a bad vote, an unknown image.
    let bad = vote(
        &f,
        json!({"query": "cat", "image_id": "img0", "label": "meh"}),
    );
    assert_eq!(bad.status, 400);
    let unknown = vote(
        &f,
        json!({"query": "cat", "image_id": "nope", "label": "relevant"}),
    );
    assert_eq!(unknown.status, 404);
    // Three votes, the last two replacing the first: each writes a line, each costs.
    for label in ["relevant", "irrelevant", "relevant"] {
        let a = vote(
            &f,
            json!({"query": "cat", "image_id": "img0", "label": label}),
        );
        assert_eq!(a.status, 200, "{}", a.text());
    }
    let a = vote(
        &f,
        json!({"query": "cat", "image_id": "img1", "label": "relevant"}),
    );
    assert_over_budget(&a, "3 an hour");
    // A withdrawal writes a line too.
    let a = vote(
        &f,
        json!({"query": "cat", "image_id": "img0", "label": "none"}),
    );
    assert_over_budget(&a, "3 an hour");
    assert_eq!(lines(&f).len(), 3, "nothing written over budget");
    assert_eq!(f.server.state.labels.len(), 1);
}

#[test]
fn notes_over_the_client_budget_are_refused() {
    let f = fixture(budget(100, 100));
    let note = "n".repeat(80);
    let a = vote(
        &f,
        json!({"query": "cat", "image_id": "img0", "label": "flag", "note": note}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let a = vote(
        &f,
        json!({"query": "cat", "image_id": "img1", "label": "flag", "note": note}),
    );
    assert_over_budget(&a, "100 bytes an hour");
    // A vote without a note is still within budget.
    let a = vote(
        &f,
        json!({"query": "cat", "image_id": "img1", "label": "flag"}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(lines(&f).len(), 2);
}

#[test]
fn a_failed_append_is_503_and_leaves_no_partial_line() {
    let f = fixture(BudgetConfig::default());
    let a = vote(
        &f,
        json!({"query": "cat", "image_id": "img0", "label": "relevant"}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    // The disk fills up 20 bytes into the next line.
    f.server.state.labels.fail_next_append(20);
    let a = vote(
        &f,
        json!({"query": "dog", "image_id": "img1", "label": "flag"}),
    );
    assert_eq!(
        (a.status, a.error_code().as_str()),
        (503, "label_store_failed"),
        "{}",
        a.text()
    );
    assert_eq!(lines(&f).len(), 1, "the partial line was cut back");
    let a = vote(
        &f,
        json!({"query": "bird", "image_id": "img2", "label": "irrelevant"}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let lines = lines(&f);
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[1]["query"], "bird",
        "the next vote is on its own line"
    );
    assert_eq!(f.server.state.labels.len(), 2);
}

#[test]
fn the_log_is_rewritten_while_serving() {
    let f = fixture(budget(5000, 64 << 10));
    let a = vote(
        &f,
        json!({"query": "dog", "image_id": "img2", "label": "relevant", "client_id": "early"}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    // One client changes its mind on one image, again and again: 1,000 lines, 2 votes in force.
    let flip = |i: usize| {
        let label = if i.is_multiple_of(2) {
            "relevant"
        } else {
            "irrelevant"
        };
        let a = vote(
            &f,
            json!({"query": "cat", "image_id": "img0", "label": label}),
        );
        assert_eq!(a.status, 200, "{}", a.text());
    };
    (0..999).for_each(flip);
    let before = std::fs::metadata(&f.log).expect("meta").len();
    assert_eq!(lines(&f).len(), 1000, "not due yet");
    flip(999);
    let after = std::fs::metadata(&f.log).expect("meta").len();
    assert!(after * 100 < before, "{after} bytes after, {before} before");
    assert_eq!(lines(&f).len(), 2);
    let a = vote(
        &f,
        json!({"query": "cat", "image_id": "img1", "label": "flag"}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let export = get(
        &f.server.url("/api/labels"),
        &[("Authorization", "Bearer admin")],
    );
    assert_eq!(export.text().lines().count(), 3);
    // Read back from the file as another process would.
    let in_force = LabelLog::snapshot(&f.log).expect("snapshot");
    let mut seen: Vec<(String, String)> = in_force
        .iter()
        .map(|l| (l.image_id.clone(), format!("{:?}", l.label)))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("img0".to_string(), "Irrelevant".to_string()),
            ("img1".to_string(), "Flag".to_string()),
            ("img2".to_string(), "Relevant".to_string()),
        ]
    );
}
