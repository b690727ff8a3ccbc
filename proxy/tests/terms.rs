//! Weighted query terms on `POST /api/search` (`terms`: vectors and image ids, composed by
//! `proxy::compose`): each composed query ranks exactly as a plain vector search with the vector
//! computed here by hand, and every bad set of terms gets a clear 4xx with its code.

use serde_json::{Value, json};
use testkit::points::{point, serve_points};
use testkit::{TestServer, post_json, tiny_model, tiny_spec};

const DIM: usize = 16;
const POINTS: usize = 8;

/// A fixed direction for point `i` (not unit length: the server scales each term itself).
fn raw(i: usize) -> Vec<f32> {
    (0..DIM)
        .map(|d| ((i * 37 + d * 11) % 13) as f32 - 6.0)
        .collect()
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// `Σ weight × unit(vector)`, the composition written out.
fn by_hand(terms: &[(f32, Vec<f32>)]) -> Vec<f32> {
    let mut sum = vec![0.0; DIM];
    for (w, v) in terms {
        for (s, x) in sum.iter_mut().zip(unit(v)) {
            *s += w * x;
        }
    }
    sum
}

struct Fixture {
    _dir: tempfile::TempDir,
    server: TestServer,
}

/// Points `img0`..`img7` at the directions [`raw`].
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = tiny_model();
    assert_eq!(tiny_spec(&loaded).dim, DIM, "the tiny model's dimension");
    let points = (0..POINTS)
        .map(|i| point(&format!("img{i}"), raw(i), json!({})))
        .collect();
    let server = serve_points(dir.path(), &loaded, points);
    Fixture { _dir: dir, server }
}

/// The (id, score) ranking of a search body; panics on an error answer.
fn ranking(f: &Fixture, body: &Value) -> Vec<(String, f32)> {
    testkit::ranking(&f.server.url("/api/search"), body)
}

/// Same ids in the same order, scores equal to 1e-4.
fn assert_same(got: &[(String, f32)], want: &[(String, f32)]) {
    let ids = |r: &[(String, f32)]| r.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(got), ids(want), "ranking");
    for ((id, a), (_, b)) in got.iter().zip(want) {
        assert!((a - b).abs() < 1e-4, "{id}: score {a} vs {b}");
    }
}

fn search_vector(f: &Fixture, v: &[f32]) -> Vec<(String, f32)> {
    ranking(f, &json!({"vector": v, "limit": POINTS}))
}

#[test]
fn weighted_terms_rank_as_their_hand_computed_vector() {
    let f = fixture();
    // `2:a + b`, with `a` long and `b` short: without each term scaled to unit length first, `a`
    // would outweigh `b` far more than 2 to 1 and the scores would differ.
    let a: Vec<f32> = raw(1).iter().map(|x| x * 50.0).collect();
    let b: Vec<f32> = raw(5).iter().map(|x| x * 0.01).collect();
    let got = ranking(
        &f,
        &json!({"terms": [{"weight": 2.0, "vector": a}, {"weight": 1.0, "vector": b}], "limit": POINTS}),
    );
    let want = search_vector(&f, &by_hand(&[(2.0, a.clone()), (1.0, b.clone())]));
    assert_same(&got, &want);
    let raw_sum: Vec<f32> = a.iter().zip(&b).map(|(x, y)| 2.0 * x + y).collect();
    let unscaled = search_vector(&f, &raw_sum);
    assert!(
        got.iter()
            .zip(&unscaled)
            .any(|((_, s), (_, t))| (s - t).abs() > 1e-3),
        "the unscaled sum scores alike: the test would not notice a missing unit()"
    );
}

#[test]
fn a_negative_term_moves_results_away() {
    let f = fixture();
    let (near, away) = (raw(2), raw(3));
    let plain = search_vector(&f, &near);
    let got = ranking(
        &f,
        &json!({"terms": [{"weight": 1.0, "vector": near}, {"weight": -1.0, "vector": away}], "limit": POINTS}),
    );
    assert_same(
        &got,
        &search_vector(&f, &by_hand(&[(1.0, near), (-1.0, away)])),
    );
    let score = |r: &[(String, f32)], id: &str| {
        r.iter()
            .find(|(i, _)| i == id)
            .map(|(_, s)| *s)
            .expect("in the results")
    };
    let rank = |r: &[(String, f32)], id: &str| r.iter().position(|(i, _)| i == id);
    assert!(score(&got, "img3") < score(&plain, "img3") - 0.1);
    assert!(
        rank(&got, "img3") > rank(&plain, "img3"),
        "{plain:?} → {got:?}"
    );
    assert_eq!(
        got.last().map(|(id, _)| id.as_str()),
        Some("img3"),
        "{got:?}"
    );
}

#[test]
fn an_image_term_is_its_stored_vector() {
    let f = fixture();
    let alone = ranking(
        &f,
        &json!({"terms": [{"weight": 1.0, "id": "img4"}], "limit": 3}),
    );
    assert_eq!(alone[0].0, "img4", "{alone:?}");
    assert!((alone[0].1 - 1.0).abs() < 1e-4, "{alone:?}");
    // `similar:img6 -0.5:<vector>` and the same written out.
    let v = raw(0);
    let got = ranking(
        &f,
        &json!({"terms": [{"weight": 1.0, "id": "img6"}, {"weight": -0.5, "vector": v}], "limit": POINTS}),
    );
    assert_same(
        &got,
        &search_vector(&f, &by_hand(&[(1.0, raw(6)), (-0.5, v)])),
    );
}

#[test]
fn bad_terms_are_refused_with_codes() {
    let f = fixture();
    let v = |i: usize| json!(raw(i));
    let term = |w: f32, i: usize| json!({"weight": w, "vector": raw(i)});
    let nine: Vec<Value> = (0..9).map(|i| term(1.0, i % POINTS)).collect();
    let table: Vec<(&str, Value, u16, &str, &str)> = vec![
        (
            "terms and vector",
            json!({"terms": [term(1.0, 0)], "vector": v(1)}),
            400,
            "bad_request",
            "`terms` alone",
        ),
        (
            "terms and text",
            json!({"terms": [term(1.0, 0)], "text": "cat"}),
            400,
            "bad_request",
            "`terms` alone",
        ),
        (
            "no terms",
            json!({"terms": []}),
            400,
            "bad_request",
            "`terms`",
        ),
        (
            "nine terms",
            json!({"terms": nine}),
            400,
            "bad_terms",
            "9 terms",
        ),
        (
            "weight 0",
            json!({"terms": [term(1.0, 0), term(0.0, 1)]}),
            400,
            "bad_terms",
            "term 2: weight 0",
        ),
        (
            "weight over 10",
            json!({"terms": [term(10.5, 0)]}),
            400,
            "bad_terms",
            "term 1: weight 10.5",
        ),
        (
            "weight under -10",
            json!({"terms": [term(1.0, 0), term(-11.0, 1)]}),
            400,
            "bad_terms",
            "term 2: weight -11",
        ),
        (
            "weight beyond f32",
            json!({"terms": [{"weight": 1e39, "vector": raw(0)}]}),
            400,
            "bad_terms",
            "term 1: weight inf",
        ),
        (
            "all negative",
            json!({"terms": [term(-1.0, 0), term(-2.0, 1)]}),
            400,
            "bad_terms",
            "every term's weight is negative",
        ),
        (
            "short vector",
            json!({"terms": [term(1.0, 0), {"weight": 1.0, "vector": [1.0, 2.0]}]}),
            400,
            "bad_terms",
            "term 2: vector has 2 values",
        ),
        (
            "zero vector",
            json!({"terms": [term(1.0, 0), {"weight": 1.0, "vector": vec![0.0; DIM]}]}),
            400,
            "bad_terms",
            "term 2: the vector is all zeros",
        ),
        (
            "cancelling terms",
            json!({"terms": [term(1.0, 3), term(-1.0, 3)]}),
            400,
            "bad_terms",
            "cancel out",
        ),
        (
            "empty id",
            json!({"terms": [{"weight": 1.0, "id": ""}]}),
            400,
            "bad_terms",
            "term 1: the image id is empty",
        ),
        (
            "unknown id",
            json!({"terms": [term(1.0, 0), {"weight": 1.0, "id": "nope"}]}),
            404,
            "unknown_id",
            "term 2: no image with id `nope`",
        ),
        (
            "neither vector nor id",
            json!({"terms": [{"weight": 1.0}]}),
            400,
            "bad_request",
            "",
        ),
        (
            "no weight",
            json!({"terms": [{"vector": raw(0)}]}),
            400,
            "bad_request",
            "weight",
        ),
    ];
    for (what, body, status, code, says) in table {
        let a = post_json(&f.server.url("/api/search"), &body);
        assert_eq!(a.status, status, "{what}: {}", a.text());
        assert_eq!(a.error_code(), code, "{what}: {}", a.text());
        let message = a.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(message.contains(says), "{what}: {message}");
    }
}
