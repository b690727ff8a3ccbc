//! The learned "no good match" line over HTTP: off with few labels (`cutoff: null`, nothing
//! weak, `/api/cutoff` says what is missing); on once enough votes came in (each hit below the
//! query's line marked weak, on every page and under a filter alike); never on example-based or
//! similar-image rankings; labels the store cannot score are left out.

use std::sync::Arc;

use proxy::labels::{Label, Verdict, label_id};
use serde_json::{Value, json};
use testkit::points::{point, serve_points};
use testkit::{TestServer, app_state, get, post_json, public_stub, tiny_model};

const DIM: usize = 16;
const POINTS: usize = 12;

fn unit(i: usize) -> Vec<f32> {
    testkit::points::spread(i, DIM)
}

struct Fixture {
    server: TestServer,
    _dir: tempfile::TempDir,
}

/// `img0`..`img11` (captions `even`/`odd`), and the label log `labels` written before start.
fn fixture(labels: &[Label]) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = tiny_model();
    let points = (0..POINTS)
        .map(|i| {
            let parity = if i % 2 == 0 { "even" } else { "odd" };
            point(&format!("img{i}"), unit(i), json!({ "caption": parity }))
        })
        .collect();
    let lines: String = labels
        .iter()
        .map(|l| serde_json::to_string(l).expect("label") + "\n")
        .collect();
    std::fs::write(dir.path().join("labels.jsonl"), lines).expect("labels");
    let server = serve_points(dir.path(), &loaded, points);
    Fixture { server, _dir: dir }
}

fn search(f: &Fixture, body: Value) -> Value {
    let a = post_json(&f.server.url("/api/search"), &body);
    assert_eq!(a.status, 200, "{}", a.text());
    a.json()
}

fn cutoff_state(f: &Fixture) -> Value {
    let a = get(&f.server.url("/api/cutoff"), &[]);
    assert_eq!(a.status, 200, "{}", a.text());
    a.json()
}

/// The ids of a search with `vector`, best first.
fn ranking(f: &Fixture, vector: &[f32]) -> Vec<String> {
    search(f, json!({"vector": vector, "limit": POINTS}))["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|h| h["id"].as_str().expect("id").to_owned())
        .collect()
}

/// A vote on (query `q`, `image`) as `POST /api/feedback` takes it.
fn vote(query: &str, vector: Option<&[f32]>, image: &str, relevant: bool) -> Value {
    let label = if relevant { "relevant" } else { "irrelevant" };
    let mut body = json!({"query": query, "image_id": image, "label": label, "client_id": "c"});
    if let Some(v) = vector {
        body["query_vector"] = json!(v);
    }
    body
}

fn cast(f: &Fixture, votes: &[Value]) {
    for body in votes {
        let a = post_json(&f.server.url("/api/feedback"), body);
        assert_eq!(a.status, 200, "{body}: {}", a.text());
    }
}

/// For query `q<k>` (the vector of `img<k>`): its best three results relevant, the next five not.
fn votes_for(f: &Fixture, k: usize) -> Vec<Value> {
    let vector = unit(k);
    ranking(f, &vector)
        .iter()
        .take(8)
        .enumerate()
        .map(|(rank, id)| vote(&format!("q{k}"), Some(&vector), id, rank < 3))
        .collect()
}

/// Every hit is weak exactly when it scores below `cutoff`.
fn assert_marked(page: &Value, cutoff: f64) {
    for hit in page["results"].as_array().expect("results") {
        let score = hit["score"].as_f64().expect("score");
        assert_eq!(
            hit["weak"].as_bool(),
            Some(score < cutoff),
            "{hit} against {cutoff}"
        );
    }
}

fn assert_unmarked(page: &Value) {
    assert_eq!(page["cutoff"], Value::Null, "{page}");
    for hit in page["results"].as_array().expect("results") {
        assert_eq!(hit["weak"], false, "{hit}");
    }
}

#[test]
fn off_with_few_labels_then_on_after_enough_votes() {
    let f = fixture(&[]);
    // Ten votes: off, and the page learns how many more are needed.
    let mut votes = votes_for(&f, 0);
    votes.extend(votes_for(&f, 1).into_iter().take(2));
    cast(&f, &votes);
    let state = cutoff_state(&f);
    assert_eq!(state["state"], "off", "{state}");
    assert_eq!(state["labels"], 10);
    assert_eq!(state["queries"], 2);
    assert_eq!(state["needed"], 30);
    let reason = state["reason"].as_str().expect("reason");
    assert!(reason.contains("20 more judged results"), "{reason}");
    assert!(reason.contains("3 more judged queries"), "{reason}");
    assert_unmarked(&search(&f, json!({"vector": unit(0), "limit": POINTS})));
    assert_unmarked(&search(&f, json!({"text": "a red square"})));

    // Six queries of eight votes, and one voted on without a vector (the server's encoder
    // gives it one): 51 judged results over 7 queries.
    let mut votes: Vec<Value> = votes_for(&f, 1).into_iter().skip(2).collect();
    for k in 2..6 {
        votes.extend(votes_for(&f, k));
    }
    for (i, image) in ["img3", "img7", "img9"].iter().enumerate() {
        votes.push(vote("a red square", None, image, i == 0));
    }
    cast(&f, &votes);
    let state = cutoff_state(&f);
    assert_eq!(state["state"], "on", "{state}");
    assert_eq!(state["labels"], 51, "{state}");
    assert_eq!(state["queries"], 7, "{state}");
    let compared = state["compared"].as_array().expect("compared");
    assert_eq!(compared.len(), 2);
    assert_eq!(compared[0]["rule"], "flat");
    assert_eq!(compared[1]["rule"], "below_top");
    let chosen = compared
        .iter()
        .find(|c| c["rule"] == state["rule"])
        .expect("the chosen rule is among those compared");
    assert_eq!(chosen["f1"], state["f1"]);
    for c in compared {
        assert!(state["f1"].as_f64() >= c["f1"].as_f64(), "{state}");
        for figure in ["precision", "recall", "f1"] {
            let v = c[figure].as_f64().expect("a number");
            assert!((0.0..=1.0).contains(&v), "{figure}: {v}");
        }
    }

    // The line of query q0: flat, or its top score less δ.
    let value = state["value"].as_f64().expect("value");
    let first = search(&f, json!({"vector": unit(0), "limit": POINTS}));
    let top = first["results"][0]["score"].as_f64().expect("top");
    let expected = if state["rule"] == "flat" {
        value
    } else {
        top - value
    };
    let cutoff = first["cutoff"].as_f64().expect("a cutoff");
    assert!((cutoff - expected).abs() < 1e-5, "{cutoff} vs {expected}");
    assert_marked(&first, cutoff);
    let weak = |page: &Value| {
        page["results"]
            .as_array()
            .expect("results")
            .iter()
            .filter(|h| h["weak"] == true)
            .count()
    };
    assert!(weak(&first) > 0 && weak(&first) < POINTS, "{first}");
    assert_eq!(first["results"][0]["weak"], false);

    // A later page and a filtered search are cut at the same line: the query's top score is
    // its best over the whole collection.
    let later = search(&f, json!({"vector": unit(0), "limit": 4, "offset": 8}));
    assert!((later["cutoff"].as_f64().expect("cutoff") - cutoff).abs() < 1e-6);
    assert_marked(&later, cutoff);
    let filtered = search(
        &f,
        json!({"vector": unit(0), "filter": {"caption": "odd"}, "limit": POINTS}),
    );
    assert!((filtered["cutoff"].as_f64().expect("cutoff") - cutoff).abs() < 1e-6);
    assert_marked(&filtered, cutoff);
    // Text searches are plain queries too.
    let text = search(&f, json!({"text": "a red square"}));
    assert_marked(&text, text["cutoff"].as_f64().expect("cutoff"));

    // Rankings whose scores are not a query's cosine are never marked.
    assert_unmarked(&search(
        &f,
        json!({"vector": unit(0), "positive": [{"id": "img1"}]}),
    ));
    let similar = post_json(&f.server.url("/api/similar"), &json!({"id": "img0"}));
    assert_eq!(similar.status, 200, "{}", similar.text());
    assert_unmarked(&similar.json());
}

/// A hand-written label at (client, query, image).
fn label(query: &str, vector: Option<Vec<f32>>, image: &str, relevant: bool) -> Label {
    Label {
        label_id: label_id("c", query, image),
        query: query.into(),
        query_vector: vector,
        image_id: image.into(),
        label: if relevant {
            Verdict::Relevant
        } else {
            Verdict::Irrelevant
        },
        note: None,
        client_id: "c".into(),
        time_ms: 1,
    }
}

/// Votes the store cannot score are left out of the count: images no longer indexed; a query
/// vector of another model's length is replaced by the encoder's, so it still counts; ties
/// between clients are no judgment.
#[test]
fn labels_that_cannot_be_scored_are_left_out() {
    let mut labels = Vec::new();
    for q in 0..5 {
        let query = format!("q{q}");
        for i in 0..6 {
            // Image 5 of every query is gone from the index.
            let image = if i == 5 {
                format!("gone{q}")
            } else {
                format!("img{i}")
            };
            // Query q4's votes carry an 8-d vector (an older model).
            let vector = if q == 4 { vec![0.5; 8] } else { unit(q) };
            labels.push(label(&query, Some(vector), &image, i < 2));
        }
    }
    // A tie: one client says relevant, another not.
    labels.push(label("q0", Some(unit(0)), "img9", true));
    let mut other = label("q0", Some(unit(0)), "img9", false);
    other.client_id = "d".into();
    other.label_id = label_id("d", "q0", "img9");
    labels.push(other);

    let f = fixture(&labels);
    let state = cutoff_state(&f);
    assert_eq!(state["state"], "off", "{state}");
    assert_eq!(state["labels"], 25, "{state}");
    assert_eq!(state["queries"], 5, "{state}");
    let reason = state["reason"].as_str().expect("reason");
    assert!(
        reason.contains("5 more judged results (has 25 of 30)"),
        "{reason}"
    );
    assert!(!reason.contains("queries"), "{reason}");
}

/// A store that cannot be reached: `/api/cutoff` answers 503 like every route that needs it.
#[test]
fn unreachable_store_is_503() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = testkit::qdrant::unreachable_store(testkit::free_port(), None);
    let server = TestServer::start(
        app_state(Arc::new(store), &tiny_model(), dir.path(), None, None),
        &public_stub(dir.path()),
        vec![],
    );
    let a = get(&server.url("/api/cutoff"), &[]);
    assert_eq!(a.status, 503, "{}", a.text());
    assert_eq!(a.error_code(), "store_unavailable", "{}", a.text());
}
