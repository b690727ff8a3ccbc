//! `POST /api/search` with positive and negative examples (relevance feedback): the ranking each
//! strategy gives, computed here by brute force, and the bad-input table for examples.

use serde_json::{Value, json};
use testkit::points::{point, serve_points};
use testkit::{TestServer, post_json, tiny_model};

const DIM: usize = 16;
const POINTS: usize = 16;

/// Deterministic, distinct vectors (not unit length: the proxy and store must not care).
fn vector(i: usize) -> Vec<f32> {
    (0..DIM)
        .map(|d| {
            let base = (((i * 7 + d * 13) % 17) as f32 - 8.0) / 8.0;
            (base + if d == i { 2.0 } else { 0.0 }) * (1.0 + i as f32 / 10.0)
        })
        .collect()
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    unit(a).iter().zip(unit(b)).map(|(x, y)| x * y).sum()
}

struct Fixture {
    _dir: tempfile::TempDir,
    server: TestServer,
}

/// `img0`..`img15`, each with a `parity` column.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = tiny_model();
    let points = (0..POINTS)
        .map(|i| {
            let parity = ["even", "odd"][i % 2];
            point(&format!("img{i}"), vector(i), json!({ "parity": parity }))
        })
        .collect();
    let server = serve_points(dir.path(), &loaded, points);
    Fixture { _dir: dir, server }
}

fn search(f: &Fixture, body: &Value) -> Vec<String> {
    let a = post_json(&f.server.url("/api/search"), body);
    assert_eq!(a.status, 200, "{body}: {}", a.text());
    a.json()["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|h| h["id"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The expected ranking by brute force: Qdrant's `average_vector` (`2·avg(pos) − avg(neg)`) or
/// `best_score` order, over the points not given as examples by id.
fn expected(
    positive: &[Vec<f32>],
    negative: &[Vec<f32>],
    best_score: bool,
    left_out: &[usize],
    keep: impl Fn(usize) -> bool,
) -> Vec<String> {
    let avg = |vs: &[Vec<f32>]| {
        let mut out = vec![0.0f32; DIM];
        for v in vs {
            for (o, x) in out.iter_mut().zip(unit(v)) {
                *o += x / vs.len() as f32;
            }
        }
        out
    };
    let query: Vec<f32> = if negative.is_empty() {
        avg(positive)
    } else {
        let (p, n) = (avg(positive), avg(negative));
        p.iter().zip(&n).map(|(p, n)| 2.0 * p - n).collect()
    };
    let key = |c: &[f32]| {
        if !best_score {
            return cosine(&query, c);
        }
        let best = |vs: &[Vec<f32>]| {
            vs.iter()
                .map(|v| cosine(c, v))
                .fold(f32::NEG_INFINITY, f32::max)
        };
        let (p, n) = (best(positive), best(negative));
        if p > n { 3.0 + p } else { -3.0 - n }
    };
    let mut scored: Vec<(f32, usize)> = (0..POINTS)
        .filter(|i| !left_out.contains(i) && keep(*i))
        .map(|i| (key(&vector(i)), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.iter().map(|(_, i)| format!("img{i}")).collect()
}

#[test]
fn examples_rank_as_qdrant_recommends() {
    let f = fixture();
    let query = vector(3);
    let all = POINTS as u64;

    // The query alone: plain nearest neighbours.
    let plain = search(&f, &json!({"vector": query, "limit": all}));
    assert_eq!(
        plain,
        expected(std::slice::from_ref(&query), &[], false, &[], |_| true)
    );

    for (strategy, best) in [("average_vector", false), ("best_score", true)] {
        // The query plus one liked and one disliked image: the query counts as a positive, the
        // two images are left out.
        let body = json!({
            "vector": query, "limit": all, "strategy": strategy,
            "positive": [{"id": "img7"}], "negative": [{"id": "img12"}],
        });
        let got = search(&f, &body);
        let want = expected(
            &[query.clone(), vector(7)],
            &[vector(12)],
            best,
            &[7, 12],
            |_| true,
        );
        assert_eq!(got, want, "{strategy}");
        assert_ne!(
            got,
            plain[..got.len()],
            "{strategy}: feedback changed nothing"
        );

        // Examples alone (ids and a vector), a filter and a second page.
        let body = json!({
            "limit": 3, "offset": 2, "strategy": strategy, "filter": {"parity": "odd"},
            "positive": [{"id": "img1"}, {"vector": vector(8)}],
            "negative": [{"id": "img5"}, {"id": "img9"}],
        });
        let got = search(&f, &body);
        let want = expected(
            &[vector(1), vector(8)],
            &[vector(5), vector(9)],
            best,
            &[1, 5, 9],
            |i| i % 2 == 1,
        );
        assert_eq!(got, want[2..5], "{strategy}, page 2 with a filter");
    }

    // No strategy means average_vector; a strategy without examples changes nothing.
    let body = |strategy: Option<&str>| {
        let mut b = json!({"vector": query, "positive": [{"id": "img2"}]});
        if let Some(s) = strategy {
            b["strategy"] = json!(s);
        }
        b
    };
    assert_eq!(
        search(&f, &body(None)),
        search(&f, &body(Some("average_vector")))
    );
    assert_eq!(
        search(
            &f,
            &json!({"vector": query, "limit": all, "strategy": "best_score"})
        ),
        plain
    );
    // A vector example counts by its direction only.
    let scaled: Vec<f32> = vector(8).iter().map(|x| x * 40.0).collect();
    assert_eq!(
        search(
            &f,
            &json!({"vector": query, "positive": [{"vector": vector(8)}]})
        ),
        search(
            &f,
            &json!({"vector": query, "positive": [{"vector": scaled}]})
        ),
    );
}

/// Every bad example gets a clear 4xx naming what is wrong.
#[test]
fn bad_examples_are_refused() {
    let f = fixture();
    let q = vector(0);
    let many = |n: usize| vec![json!({"id": "img1"}); n];
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"negative": [{"id": "img1"}]}),
            400,
            "bad_examples",
            "negative examples alone",
        ),
        (
            json!({"vector": q, "positive": many(65)}),
            400,
            "bad_examples",
            "`positive` has 65 examples; at most 64",
        ),
        (
            json!({"vector": q, "negative": many(65)}),
            400,
            "bad_examples",
            "`negative` has 65 examples",
        ),
        (
            json!({"vector": q, "positive": [{"id": "img1"}, {"id": "nope"}]}),
            404,
            "unknown_id",
            "no image with id `nope`",
        ),
        (
            json!({"positive": [{"id": "img1"}], "negative": [{"id": "gone"}]}),
            404,
            "unknown_id",
            "`gone`",
        ),
        (
            json!({"vector": q, "positive": [{"vector": [1.0, 2.0]}]}),
            400,
            "bad_vector",
            "`positive[0]`: vector has 2 values, the model needs 16",
        ),
        (
            json!({"positive": [{"id": "img1"}], "negative": [{"id": "img2"}, {"vector": vec![0.0; DIM]}]}),
            400,
            "bad_vector",
            "`negative[1]`: the vector is all zeros",
        ),
        (
            json!({"positive": [{"id": "img1"}], "negative": [{"id": "img1"}]}),
            400,
            "bad_examples",
            "`img1` is both a positive and a negative example",
        ),
        (
            json!({"vector": q, "positive": [{"id": "img1"}], "strategy": "sum_scores"}),
            400,
            "bad_request",
            "unknown variant `sum_scores`",
        ),
        (
            json!({"vector": q, "positive": [{"id": "img1", "vector": q}]}),
            400,
            "malformed_json",
            "positive[0]",
        ),
        (
            json!({"vector": q, "positive": [{"image": "img1"}]}),
            400,
            "bad_request",
            "unknown variant `image`",
        ),
        (
            json!({"limit": 5}),
            400,
            "bad_request",
            "give `vector` (the query embedding), `text`, `terms` or `positive` examples",
        ),
    ];
    for (body, status, code, says) in cases {
        let a = post_json(&f.server.url("/api/search"), &body);
        let text = a.text();
        assert_eq!(
            (a.status, a.error_code().as_str()),
            (status, code),
            "{body}: {text}"
        );
        assert!(text.contains(says), "{body}: {text}");
    }
    // 64 of each is allowed.
    assert_eq!(
        post_json(
            &f.server.url("/api/search"),
            &json!({"vector": q, "positive": many(64), "negative": vec![json!({"id": "img2"}); 64]})
        )
        .status,
        200
    );
}

/// `proxy eval --feedback` on the demo data (the tiny random model): a section per strategy in
/// report.md and report.json, every judged query counted, and the "before" figures equal to the
/// residual of the plain eval's own ranking, computed here by hand.
#[test]
fn eval_feedback_reports_before_and_after() {
    use std::collections::HashSet;
    use testkit::{command, tiny_model_dir, workspace};
    let dir = tempfile::tempdir().expect("tempdir");
    let env = dir.path().join("empty.env");
    std::fs::write(&env, "").expect("env file");
    let storage = dir.path().join("storage");
    let model = tiny_model_dir();
    let common = |c: &mut std::process::Command| {
        c.arg("--storage")
            .arg(&storage)
            .arg("--model")
            .arg(&model)
            .arg("--env-file")
            .arg(&env);
    };
    let mut ingest = command(env!("CARGO_BIN_EXE_ingest"));
    ingest.arg("--tsv").arg(workspace().join("data/images.tsv"));
    common(&mut ingest);
    assert!(ingest.output().expect("ingest").status.success());
    let out = dir.path().join("eval");
    let mut eval = command(env!("CARGO_BIN_EXE_proxy"));
    eval.args(["eval", "--feedback", "--queries"])
        .arg(workspace().join("data/queries.tsv"))
        .arg("--out")
        .arg(&out);
    common(&mut eval);
    let run = eval.output().expect("eval");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("## Relevance feedback (one round)"),
        "{stdout}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(md.contains("| average_vector |") && md.contains("| best_score |"));

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("json"))
            .expect("report.json");
    let judged = report["summary"]["queries"].as_u64().expect("queries");
    let per_query = report["per_query"].as_array().expect("per_query");
    let feedback = report["feedback"].as_array().expect("feedback");
    assert_eq!(feedback.len(), 2);
    for strategy in feedback {
        let rounds = strategy["per_query"].as_array().expect("rounds");
        let counted = rounds.len() as u64 + strategy["all_found_on_first_page"].as_u64().unwrap();
        assert_eq!(
            counted, judged,
            "every judged query is measured or counted out"
        );
        for round in rounds {
            let q = per_query
                .iter()
                .find(|p| p["query"] == round["query"])
                .expect("the query in the plain eval");
            let ranked: Vec<&str> = q["ranked"]
                .as_array()
                .expect("ranked")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            // The relevant ids are those queries.tsv names (no labels here).
            let tsv = std::fs::read_to_string(workspace().join("data/queries.tsv")).unwrap();
            let relevant: HashSet<&str> = tsv
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{}\t", round["query"].as_str().unwrap())))
                .expect("in queries.tsv")
                .split(',')
                .map(str::trim)
                .collect();
            let left: Vec<&str> = relevant
                .iter()
                .copied()
                .filter(|id| !ranked[..10].contains(id))
                .collect();
            assert_eq!(round["relevant_left"], left.len());
            let found = ranked[10..15].iter().filter(|id| left.contains(id)).count();
            let recall = found as f64 / left.len() as f64;
            let got = round["before"]["recall@5"].as_f64().unwrap();
            assert!((got - recall).abs() < 1e-9, "{round}: recall@5 {recall}");
            for side in ["before", "after"] {
                for metric in ["recall@5", "ndcg@10"] {
                    let v = round[side][metric].as_f64().unwrap();
                    assert!((0.0..=1.0).contains(&v), "{round}");
                }
            }
        }
    }
}
