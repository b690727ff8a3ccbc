//! The admin review queue over HTTP: the token guards every route (checked before the request is
//! read), votes that disagree or flag show up with their counts and notes, a verdict takes its
//! pair out of the queue and lands in the export, bad input is refused with a clear code and
//! writes nothing, and verdicts are on disk when answered (a failed append is 503 and cut back;
//! a reopened server has them all).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proxy::layout::DataDir;
use proxy::review::{Decision, ReviewLog};
use proxy::store::SharedStore;
use serde_json::{Value, json};
use testkit::points::{axis, edge_store, point};
use testkit::{
    Answer, TestServer, app_state, get, post_json, post_with, public_stub, tiny_model, tiny_spec,
};

const TOKEN: &str = "review-secret";
const BEARER: (&str, &str) = ("Authorization", "Bearer review-secret");

struct Fixture {
    server: TestServer,
    reviews: PathBuf,
    dir: tempfile::TempDir,
}

/// Points `img0`..`img4` (captions `picture <i>`), served with the admin token `admin`.
fn fixture(admin: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(dir.path(), admin);
    Fixture {
        server,
        reviews: DataDir::new(dir.path()).reviews(),
        dir,
    }
}

/// A server over the store in `dir` (the points written if they are not there yet).
fn serve(dir: &Path, admin: Option<&str>) -> TestServer {
    let loaded = tiny_model();
    let spec = tiny_spec(&loaded);
    let points = (0..5)
        .map(|i| {
            let caption = format!("picture {i}");
            point(
                &format!("img{i}"),
                axis(i, spec.dim),
                json!({ "caption": caption }),
            )
        })
        .collect();
    let store = edge_store(dir, &loaded, points);
    let store: SharedStore = Arc::new(store);
    let state = app_state(store, &loaded, dir, admin, None);
    TestServer::start(state, &public_stub(dir), vec![])
}

fn vote(f: &Fixture, client: &str, query: &str, image: &str, label: &str, note: &str) {
    let mut body = json!({"query": query, "image_id": image, "label": label, "client_id": client});
    if !note.is_empty() {
        body["note"] = json!(note);
    }
    let a = post_json(&f.server.url("/api/feedback"), &body);
    assert_eq!(a.status, 200, "{}", a.text());
}

fn queue(f: &Fixture, query: &str) -> Answer {
    get(&f.server.url(&format!("/api/review{query}")), &[BEARER])
}

fn review(f: &Fixture, body: &Value) -> Answer {
    post_with(&f.server.url("/api/review"), &body.to_string(), &[BEARER])
}

fn pairs(queue: &Value) -> Vec<(String, String)> {
    queue["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["query"].as_str().unwrap_or("").to_string(),
                i["image_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn pair(query: &str, image: &str) -> (String, String) {
    (query.to_string(), image.to_string())
}

/// The review log's lines, each checked to be a whole JSON line.
fn lines(f: &Fixture) -> Vec<Value> {
    let text = std::fs::read_to_string(&f.reviews).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a torn line: {text:?}"
    );
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a whole JSON line"))
        .collect()
}

fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(
        (a.status, a.error_code().as_str()),
        (status, code),
        "{}",
        a.text()
    );
}

#[test]
fn every_review_route_needs_the_admin_token() {
    let f = fixture(Some(TOKEN));
    let verdict = json!({"query": "cat", "image_id": "img0", "verdict": "relevant"}).to_string();
    let wrong = ("Authorization", "Bearer not-the-token");
    for headers in [&[][..], &[wrong][..]] {
        assert_error(
            &get(&f.server.url("/api/review"), headers),
            401,
            "unauthorized",
        );
        assert_error(
            &get(&f.server.url("/api/review/export"), headers),
            401,
            "unauthorized",
        );
        assert_error(
            &post_with(&f.server.url("/api/review"), &verdict, headers),
            401,
            "unauthorized",
        );
        // The token is checked before the body or the paging is read.
        assert_error(
            &post_with(&f.server.url("/api/review"), "{not json", headers),
            401,
            "unauthorized",
        );
        assert_error(
            &get(&f.server.url("/api/review?limit=0"), headers),
            401,
            "unauthorized",
        );
    }
    assert!(lines(&f).is_empty(), "nothing written without the token");
    // No token configured: the routes are off.
    let off = fixture(None);
    assert_error(
        &get(&off.server.url("/api/review"), &[BEARER]),
        403,
        "export_disabled",
    );
    assert_error(
        &post_with(&off.server.url("/api/review"), &verdict, &[BEARER]),
        403,
        "export_disabled",
    );
}

#[test]
fn flagged_and_disputed_pairs_are_queued_reviewed_and_exported() {
    let f = fixture(Some(TOKEN));
    vote(&f, "a", "cat", "img0", "relevant", "");
    vote(&f, "b", "cat", "img0", "relevant", "");
    vote(&f, "a", "cat", "img1", "flag", "not a cat");
    vote(&f, "b", "cat", "img1", "flag", "");
    vote(&f, "a", "cat", "img2", "relevant", "");
    vote(&f, "b", "cat", "img2", "irrelevant", "");
    vote(&f, "a", "dog", "img3", "flag", "broken");

    let a = queue(&f, "");
    assert_eq!(a.status, 200, "{}", a.text());
    let q = a.json();
    // Unanimous `img0` is not there; most flags first.
    assert_eq!(
        pairs(&q),
        [
            pair("cat", "img1"),
            pair("dog", "img3"),
            pair("cat", "img2")
        ]
    );
    assert_eq!(
        (q["total"].clone(), q["next_offset"].clone()),
        (json!(3), json!(null))
    );
    let first = &q["items"][0];
    assert_eq!(
        first["votes"],
        json!({"relevant": 0, "irrelevant": 0, "flag": 2})
    );
    assert_eq!(first["notes"], json!(["not a cat"]));
    assert_eq!(first["caption"], "picture 1");
    assert_eq!(first["thumbnail_url"], "/thumbs/img1");
    // Pages.
    let page = queue(&f, "?offset=1&limit=1").json();
    assert_eq!(pairs(&page), [pair("dog", "img3")]);
    assert_eq!(page["next_offset"], 2);

    // Verdicts: each answered once on disk, each takes its pair out of the queue.
    let a = review(
        &f,
        &json!({"query": "cat", "image_id": "img1", "verdict": "relevant", "note": "a cat after all"}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        a.json(),
        json!({"ok": true, "query": "cat", "image_id": "img1", "verdict": "relevant"})
    );
    assert_eq!(lines(&f).len(), 1);
    let a = review(
        &f,
        &json!({"query": " dog ", "image_id": "img3", "verdict": "skip"}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(pairs(&queue(&f, "").json()), [pair("cat", "img2")]);
    // A pair nobody voted on can be judged too; the latest verdict on a pair wins.
    for verdict in ["irrelevant", "relevant"] {
        let a = review(
            &f,
            &json!({"query": "bird", "image_id": "img4", "verdict": verdict}),
        );
        assert_eq!(a.status, 200, "{}", a.text());
    }

    let a = get(&f.server.url("/api/review/export"), &[BEARER]);
    assert_eq!(a.status, 200);
    assert!(a.content_type.starts_with("text/tab-separated-values"));
    assert_eq!(
        a.header("content-disposition"),
        Some("attachment; filename=\"queries.tsv\"")
    );
    // Reviewed relevant only: the skip and the crowd's unanimous `img0` are not in it.
    assert_eq!(a.text(), "query\trelevant_ids\nbird\timg4\ncat\timg1\n");
}

#[test]
fn bad_review_input_is_refused_with_a_clear_code_and_writes_nothing() {
    let f = fixture(Some(TOKEN));
    let long = "q".repeat(1001);
    let cases: [(&str, String, u16, &str); 9] = [
        (
            "unknown verdict",
            json!({"query": "cat", "image_id": "img0", "verdict": "maybe"}).to_string(),
            400,
            "bad_verdict",
        ),
        (
            "a vote's label as a verdict",
            json!({"query": "cat", "image_id": "img0", "verdict": "flag"}).to_string(),
            400,
            "bad_verdict",
        ),
        (
            "empty query",
            json!({"query": "  ", "image_id": "img0", "verdict": "relevant"}).to_string(),
            400,
            "bad_query",
        ),
        (
            "oversized query",
            json!({"query": long, "image_id": "img0", "verdict": "relevant"}).to_string(),
            400,
            "bad_query",
        ),
        (
            "unknown image",
            json!({"query": "cat", "image_id": "nope", "verdict": "relevant"}).to_string(),
            404,
            "unknown_id",
        ),
        (
            "oversized note",
            json!({"query": "cat", "image_id": "img0", "verdict": "skip", "note": "n".repeat(2001)})
                .to_string(),
            400,
            "bad_note",
        ),
        (
            "unknown field",
            json!({"query": "cat", "image_id": "img0", "verdict": "skip", "label": "x"}).to_string(),
            400,
            "bad_request",
        ),
        (
            "missing verdict",
            json!({"query": "cat", "image_id": "img0"}).to_string(),
            400,
            "bad_request",
        ),
        ("not JSON", "{\"query\":".to_string(), 400, "malformed_json"),
    ];
    for (what, body, status, code) in cases {
        let a = post_with(&f.server.url("/api/review"), &body, &[BEARER]);
        assert_eq!(
            (a.status, a.error_code()),
            (status, code.to_string()),
            "{what}: {}",
            a.text()
        );
    }
    for (paging, code) in [
        ("?limit=0", "bad_limit"),
        ("?limit=101", "bad_limit"),
        ("?limit=ten", "bad_limit"),
        ("?offset=-1", "bad_offset"),
        ("?offset=10001", "bad_offset"),
        ("?offset=1&offset=2", "bad_request"),
    ] {
        assert_error(&queue(&f, paging), 400, code);
    }
    assert!(lines(&f).is_empty(), "nothing written for bad input");
}

#[test]
fn verdicts_are_durable_a_failed_append_is_503_and_a_reopen_keeps_them() {
    let f = fixture(Some(TOKEN));
    vote(&f, "a", "cat", "img0", "flag", "");
    vote(&f, "a", "cat", "img1", "flag", "");
    let a = review(
        &f,
        &json!({"query": "cat", "image_id": "img0", "verdict": "irrelevant"}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    // The disk fills up 10 bytes into the next line.
    f.server.state.reviews.fail_next_append(10);
    let a = review(
        &f,
        &json!({"query": "cat", "image_id": "img1", "verdict": "relevant"}),
    );
    assert_error(&a, 503, "label_store_failed");
    assert_eq!(lines(&f).len(), 1, "the partial line was cut back");
    assert_eq!(pairs(&queue(&f, "").json()), [pair("cat", "img1")]);

    // Another server on the same storage, after this one is gone.
    let Fixture { server, dir, .. } = f;
    drop(server);
    let again = serve(dir.path(), Some(TOKEN));
    let kept = again.state.reviews.all();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].verdict, Decision::Irrelevant);
    assert_eq!(
        ReviewLog::snapshot(&DataDir::new(dir.path()).reviews()).expect("snapshot"),
        kept
    );
    let q = get(&again.url("/api/review"), &[BEARER]).json();
    assert_eq!(pairs(&q), [pair("cat", "img1")]);
}
