//! The store conformance suite: the same checks against embedded Qdrant Edge (always) and a
//! Qdrant server (when `QDRANT_URL` is set; otherwise it reports the skip through `testkit::skip`).

use proxy::store::edge::EdgeStore;
use proxy::store::remote::RemoteStore;
use proxy::store::{
    CollectionSpec, Payload, Point, RecommendQuery, SearchQuery, StoreError, Strategy, VectorName,
    VectorStore, all_records, point_id,
};
use serde_json::{Value, json};
use testkit::qdrant::unique;

const DIM: usize = 8;

fn spec(name: &str) -> CollectionSpec {
    CollectionSpec {
        captions: false,
        name: name.to_string(),
        dim: DIM,
        model: "conformance-model".to_string(),
    }
}

/// Deterministic, distinct unit-ish vectors.
fn vector(i: usize) -> Vec<f32> {
    (0..DIM)
        .map(|d| {
            (((i * 7 + d * 13) % 17) as f32 - 8.0) / 8.0 + if d == i % DIM { 2.0 } else { 0.0 }
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

fn payload(i: usize) -> Payload {
    let Value::Object(map) = json!({
        "id": format!("row{i}"),
        "caption": format!("image number {i}"),
        "parity": if i.is_multiple_of(2) { "even" } else { "odd" },
        "rank": i as i64,
        "small": i < 5,
    }) else {
        unreachable!()
    };
    map
}

fn points(range: std::ops::Range<usize>) -> Vec<Point> {
    range
        .map(|i| Point {
            caption: None,
            id: point_id(&format!("row{i}")),
            vector: vector(i),
            payload: payload(i),
        })
        .collect()
}

fn search(v: Vec<f32>, limit: usize, offset: usize) -> SearchQuery {
    SearchQuery {
        using: proxy::store::VectorName::Image,
        vector: v,
        limit,
        offset,
        filter: Default::default(),
    }
}

fn ids(hits: &[proxy::store::Hit]) -> Vec<String> {
    hits.iter()
        .map(|h| h.payload["id"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The behaviour both backends must share.
async fn conformance(store: &dyn VectorStore, name: &str) {
    let spec = spec(name);
    match store.open_collection(&spec).await {
        Err(StoreError::NoCollection(n)) => assert_eq!(n, name),
        other => panic!("opening a missing collection: {other:?}"),
    }
    store.ensure_collection(&spec).await.expect("create");
    // Idempotent.
    store.ensure_collection(&spec).await.expect("ensure again");
    assert_eq!(store.count().await.expect("count"), 0);

    store.upsert(points(0..30)).await.expect("upsert");
    assert_eq!(store.count().await.expect("count"), 30);

    // Nearest first, cosine scores.
    let q = vector(3);
    let hits = store
        .search(&search(q.clone(), 5, 0))
        .await
        .expect("search");
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0].payload["id"], "row3");
    assert!(
        (hits[0].score - 1.0).abs() < 1e-4,
        "self score {}",
        hits[0].score
    );
    for pair in hits.windows(2) {
        assert!(pair[0].score >= pair[1].score, "best first");
    }
    for hit in &hits {
        let i: usize = hit.payload["rank"].as_i64().unwrap_or(-1) as usize;
        assert!(
            (hit.score - cosine(&q, &vector(i))).abs() < 1e-4,
            "score is cosine"
        );
    }
    // The true nearest neighbours (exact, by brute force here).
    let mut truth: Vec<(f32, usize)> = (0..30).map(|i| (cosine(&q, &vector(i)), i)).collect();
    truth.sort_by(|a, b| b.0.total_cmp(&a.0));
    let expected: Vec<String> = truth
        .iter()
        .take(5)
        .map(|(_, i)| format!("row{i}"))
        .collect();
    assert_eq!(ids(&hits), expected);

    // Pagination: page 2 continues page 1.
    let all = store
        .search(&search(q.clone(), 20, 0))
        .await
        .expect("search");
    let page2 = store
        .search(&search(q.clone(), 10, 10))
        .await
        .expect("page 2");
    assert_eq!(ids(&page2), ids(&all[10..20]));

    // Filters: string, integer, boolean, combined; indexed or not (indexing twice is fine).
    store.index_field("parity").await.expect("index");
    store.index_field("parity").await.expect("index again");
    let check_filter = |filter: Value, expected: usize| {
        let q = q.clone();
        async move {
            let Value::Object(f) = filter else {
                unreachable!()
            };
            let query = SearchQuery {
                using: proxy::store::VectorName::Image,
                vector: q,
                limit: 100,
                offset: 0,
                filter: f.into_iter().collect(),
            };
            let hits = store.search(&query).await.expect("filtered search");
            assert_eq!(hits.len(), expected, "{:?}", query.filter);
            hits
        }
    };
    let even = check_filter(json!({"parity": "even"}), 15).await;
    assert!(even.iter().all(|h| h.payload["parity"] == "even"));
    check_filter(json!({"rank": 7}), 1).await;
    check_filter(json!({"small": true}), 5).await;
    check_filter(json!({"small": true, "parity": "odd"}), 2).await;
    check_filter(json!({"parity": "neither"}), 0).await;
    let bad = SearchQuery {
        using: proxy::store::VectorName::Image,
        vector: q.clone(),
        limit: 5,
        offset: 0,
        filter: [("rank".to_string(), json!(1.5))].into_iter().collect(),
    };
    assert!(matches!(
        store.search(&bad).await,
        Err(StoreError::Invalid(_))
    ));

    // Get: in the order asked, unknown ids left out, vectors when asked.
    let asked = [point_id("row9"), point_id("nope"), point_id("row2")];
    let got = store.get(&asked, true).await.expect("get");
    assert_eq!(
        got.iter().map(|r| r.id).collect::<Vec<_>>(),
        [asked[0], asked[2]]
    );
    assert_eq!(got[0].payload["caption"], "image number 9");
    let v = got[0].vector.as_ref().expect("vector asked for");
    assert!(
        cosine(v, &vector(9)) > 0.9999,
        "stored vector comes back (normalised or not)"
    );
    assert!(
        store.get(&asked, false).await.expect("get")[0]
            .vector
            .is_none()
    );

    // Upsert with the same id replaces.
    let mut changed = points(4..5);
    changed[0]
        .payload
        .insert("caption".into(), json!("changed"));
    store.upsert(changed).await.expect("re-upsert");
    assert_eq!(store.count().await.expect("count"), 30);
    let got = store.get(&[point_id("row4")], false).await.expect("get");
    assert_eq!(got[0].payload["caption"], "changed");

    // set_payload replaces the payload and keeps the vector.
    let Value::Object(newp) = json!({"id": "row5", "caption": "only this"}) else {
        unreachable!()
    };
    store
        .set_payload(point_id("row5"), newp)
        .await
        .expect("set payload");
    let got = store.get(&[point_id("row5")], true).await.expect("get");
    assert_eq!(
        got[0].payload.len(),
        2,
        "replaced, not merged: {:?}",
        got[0].payload
    );
    assert!(cosine(got[0].vector.as_ref().expect("vector"), &vector(5)) > 0.9999);

    // Scroll covers every point exactly once.
    let records = all_records(store).await.expect("scroll");
    let mut seen: Vec<_> = records.iter().map(|r| r.id).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 30);
    let (page, next) = store.scroll(None, 7).await.expect("scroll page");
    assert_eq!(page.len(), 7);
    let next = next.expect("more pages");
    let (page2, _) = store.scroll(Some(next), 7).await.expect("scroll page 2");
    assert!(
        page2.iter().all(|r| !page.iter().any(|p| p.id == r.id)),
        "pages do not overlap"
    );

    // Delete; unknown ids are ignored.
    store
        .delete(&[point_id("row0"), point_id("row1"), point_id("never")])
        .await
        .expect("delete");
    assert_eq!(store.count().await.expect("count"), 28);
    assert!(
        store
            .get(&[point_id("row0")], false)
            .await
            .expect("get")
            .is_empty()
    );

    // Optimize (Edge builds its index) and search still agrees.
    store.optimize().await.expect("optimize");
    let after = store
        .search(&search(q.clone(), 5, 0))
        .await
        .expect("search");
    assert_eq!(after[0].payload["id"], "row3");
    store.ping().await.expect("ping");
}

/// Another model or dimension is refused, never mixed.
async fn refuses_other_models(make: impl Fn() -> Box<dyn VectorStore>, name: &str) {
    let store = make();
    store.ensure_collection(&spec(name)).await.expect("create");
    drop(store);
    for other in [
        CollectionSpec {
            dim: DIM * 2,
            ..spec(name)
        },
        CollectionSpec {
            model: "another-model".into(),
            ..spec(name)
        },
    ] {
        let store = make();
        let err = store
            .open_collection(&other)
            .await
            .expect_err("mismatch refused");
        let message = err.to_string();
        assert!(matches!(err, StoreError::Mismatch { .. }), "{message}");
        assert!(message.contains("conformance-model"), "{message}");
        let store = make();
        assert!(matches!(
            store.ensure_collection(&other).await,
            Err(StoreError::Mismatch { .. })
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EdgeStore::new(dir.path());
    conformance(&store, "images").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_refuses_other_models() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    refuses_other_models(move || Box::new(EdgeStore::new(&path)), "images").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_persists_and_locks() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = EdgeStore::new(dir.path());
        store
            .ensure_collection(&spec("images"))
            .await
            .expect("create");
        store.upsert(points(0..10)).await.expect("upsert");
        // A second process (here: a second store on the same directory) is refused.
        let other = EdgeStore::new(dir.path());
        let err = other
            .open_collection(&spec("images"))
            .await
            .expect_err("locked");
        assert!(
            err.to_string().contains("in use by another process"),
            "{err}"
        );
        // Not optimized, not flushed: the write-ahead log must carry the points.
    }
    let store = EdgeStore::new(dir.path());
    store
        .open_collection(&spec("images"))
        .await
        .expect("reopen");
    assert_eq!(store.count().await.expect("count"), 10);
    let hits = store
        .search(&search(vector(2), 1, 0))
        .await
        .expect("search");
    assert_eq!(hits[0].payload["id"], "row2");
}

fn remote_url() -> Option<String> {
    testkit::qdrant::url("the Qdrant server conformance suite")
}

fn remote() -> Option<RemoteStore> {
    let url = remote_url()?;
    Some(testkit::qdrant::store(&url, Default::default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_conformance() {
    let Some(store) = remote() else { return };
    conformance(&store, &unique("text2img_conformance")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_refuses_other_models() {
    if remote_url().is_none() {
        return;
    }
    let name = unique("text2img_mismatch");
    refuses_other_models(|| Box::new(remote().expect("QDRANT_URL is set")), &name).await;
}

/// Two ingests starting at once on one cluster (`ingest --shard 1/2` and `2/2` on two machines)
/// both find the collection missing and both create it: neither fails, and both can write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_creation_by_two_at_once() {
    if remote_url().is_none() {
        return;
    }
    let name = unique("text2img_race");
    for round in 0..4 {
        let name = format!("{name}_{round}");
        let (a, b) = (remote().expect("client"), remote().expect("client"));
        let spec = spec(&name);
        let (ra, rb) = tokio::join!(a.ensure_collection(&spec), b.ensure_collection(&spec));
        ra.expect("the first creator");
        rb.expect("the second creator");
        a.upsert(points(0..1)).await.expect("upsert");
        b.upsert(points(1..2)).await.expect("upsert");
        assert_eq!(a.count().await.expect("count"), 2);
    }
}

// ---------------------------------------------------------------------------------------------
// Caption vectors: a second, named vector beside the image one, on both backends.

fn with_captions(name: &str) -> CollectionSpec {
    CollectionSpec {
        captions: true,
        ..spec(name)
    }
}

/// Rows 0..n; the even ones have a caption vector (`vector(i + 100)`), the odd ones none.
fn captioned(n: usize) -> Vec<Point> {
    points(0..n)
        .into_iter()
        .enumerate()
        .map(|(i, p)| Point {
            caption: i.is_multiple_of(2).then(|| vector(i + 100)),
            ..p
        })
        .collect()
}

fn by_caption(v: Vec<f32>, limit: usize) -> SearchQuery {
    SearchQuery {
        using: VectorName::Caption,
        ..search(v, limit, 0)
    }
}

async fn captions_conformance(store: &dyn VectorStore, name: &str) {
    let found = store
        .ensure_collection(&with_captions(name))
        .await
        .expect("create");
    assert!(
        found.captions,
        "the collection asked with captions has them"
    );
    store.upsert(captioned(10)).await.expect("upsert");
    store.optimize().await.expect("optimize");
    // The caption ranking holds only the points with a caption, best first.
    let hits = store
        .search(&by_caption(vector(104), 10))
        .await
        .expect("caption search");
    assert_eq!(ids(&hits).first().map(String::as_str), Some("row4"));
    assert_eq!(hits.len(), 5, "{:?}", ids(&hits));
    assert!(ids(&hits).iter().all(|id| {
        let i: usize = id[3..].parse().expect("row number");
        i.is_multiple_of(2)
    }));
    // The image ranking is untouched, captions or not.
    let hits = store
        .search(&search(vector(3), 3, 0))
        .await
        .expect("search");
    assert_eq!(ids(&hits)[0], "row3");
    assert!((hits[0].score - 1.0).abs() < 1e-4, "{}", hits[0].score);
    // Both vectors read back (cosine storage keeps directions).
    let records = store
        .get(&[point_id("row4"), point_id("row3")], true)
        .await
        .expect("get");
    let caption = records[0].caption.as_ref().expect("row4's caption vector");
    assert!(cosine(caption, &vector(104)) > 0.9999);
    assert!(cosine(records[0].vector.as_ref().expect("image"), &vector(4)) > 0.9999);
    assert!(records[1].caption.is_none(), "row3 has no caption");
    assert!(records[1].vector.is_some());
    // Opening again reports the captions; asking without them does not remove them.
    assert!(
        store
            .open_collection(&spec(name))
            .await
            .expect("open")
            .captions
    );
}

/// A collection made without caption vectors keeps having none when asked with them later.
async fn captions_are_decided_at_creation(make: impl Fn() -> Box<dyn VectorStore>, name: &str) {
    let store = make();
    let found = store.ensure_collection(&spec(name)).await.expect("create");
    assert!(!found.captions);
    store.upsert(points(0..3)).await.expect("upsert");
    drop(store);
    let store = make();
    let found = store
        .ensure_collection(&with_captions(name))
        .await
        .expect("reopen");
    assert!(!found.captions, "an existing collection keeps its vectors");
    assert_eq!(store.count().await.expect("count"), 3);
    let hits = store.search(&by_caption(vector(1), 3)).await;
    assert!(hits.is_err() || hits.is_ok_and(|h| h.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_captions_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    captions_conformance(&EdgeStore::new(dir.path()), "images").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    captions_are_decided_at_creation(move || Box::new(EdgeStore::new(&path)), "images").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_captions_conformance() {
    let Some(store) = remote() else { return };
    captions_conformance(&store, &unique("text2img_captions")).await;
    let name = unique("text2img_no_captions");
    captions_are_decided_at_creation(|| Box::new(remote().expect("QDRANT_URL is set")), &name)
        .await;
}

// ---------------------------------------------------------------------------------------------
// Recommend (relevance feedback): both backends rank as a brute-force computation here does.

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// Qdrant's `average_vector`: `avg(pos) + (avg(pos) − avg(neg))`, or `avg(pos)` alone.
fn average_query(positive: &[Vec<f32>], negative: &[Vec<f32>]) -> Vec<f32> {
    let avg = |vs: &[Vec<f32>]| -> Vec<f32> {
        let mut out = vec![0.0; DIM];
        for v in vs {
            for (o, x) in out.iter_mut().zip(unit(v)) {
                *o += x / vs.len() as f32;
            }
        }
        out
    };
    let pos = avg(positive);
    if negative.is_empty() {
        return pos;
    }
    let neg = avg(negative);
    pos.iter().zip(&neg).map(|(p, n)| 2.0 * p - n).collect()
}

/// Qdrant's `best_score` as an order: a candidate nearer its best positive than its best
/// negative ranks above every other, by that positive; the rest follow by their negative,
/// farthest first. Returned as one comparable number per candidate.
fn best_score_key(candidate: &[f32], positive: &[Vec<f32>], negative: &[Vec<f32>]) -> f32 {
    let best = |vs: &[Vec<f32>]| {
        vs.iter()
            .map(|v| cosine(candidate, v))
            .fold(f32::NEG_INFINITY, f32::max)
    };
    let (p, n) = (best(positive), best(negative));
    // Cosines lie in [-1, 1]: shifting by 3 keeps the two groups apart.
    if p > n { 3.0 + p } else { -3.0 - n }
}

struct Reco {
    positive: Vec<usize>,
    negative: Vec<usize>,
    strategy: Strategy,
    exclude: bool,
    parity: Option<&'static str>,
    limit: usize,
    offset: usize,
}

impl Reco {
    fn query(&self) -> RecommendQuery {
        let rows = |is: &[usize]| is.iter().map(|&i| vector(i)).collect::<Vec<_>>();
        let exclude = if self.exclude {
            self.positive
                .iter()
                .chain(&self.negative)
                .map(|i| point_id(&format!("row{i}")))
                .collect()
        } else {
            Vec::new()
        };
        let mut filter = proxy::store::PayloadFilter::new();
        if let Some(parity) = self.parity {
            filter.insert("parity".into(), json!(parity));
        }
        RecommendQuery {
            positive: rows(&self.positive),
            negative: rows(&self.negative),
            strategy: self.strategy,
            exclude,
            limit: self.limit,
            offset: self.offset,
            filter,
        }
    }

    /// The expected page by brute force: (row, key) best first.
    fn truth(&self, points: usize) -> Vec<(String, f32)> {
        let pos: Vec<Vec<f32>> = self.positive.iter().map(|&i| vector(i)).collect();
        let neg: Vec<Vec<f32>> = self.negative.iter().map(|&i| vector(i)).collect();
        let average = average_query(&pos, &neg);
        let mut scored: Vec<(String, f32)> = (0..points)
            .filter(|i| !(self.exclude && (self.positive.contains(i) || self.negative.contains(i))))
            .filter(|i| match self.parity {
                Some("even") => i % 2 == 0,
                Some(_) => i % 2 == 1,
                None => true,
            })
            .map(|i| {
                let key = match self.strategy {
                    Strategy::AverageVector => cosine(&average, &vector(i)),
                    Strategy::BestScore => best_score_key(&vector(i), &pos, &neg),
                };
                (format!("row{i}"), key)
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .collect()
    }
}

/// The page equals the brute-force one, allowing only swaps of keys within 1e-5 of each other.
fn assert_ranking(hits: &[proxy::store::Hit], truth: &[(String, f32)], what: &str) {
    let got = ids(hits);
    assert_eq!(got.len(), truth.len(), "{what}: {got:?} vs {truth:?}");
    let key = |id: &str| truth.iter().find(|(t, _)| t == id).map(|(_, k)| *k);
    for (i, id) in got.iter().enumerate() {
        let same = *id == truth[i].0 || key(id).is_some_and(|k| (k - truth[i].1).abs() < 1e-5);
        assert!(same, "{what}: position {i}: {got:?}, expected {truth:?}");
    }
}

async fn recommend_conformance(store: &dyn VectorStore, name: &str) {
    store.ensure_collection(&spec(name)).await.expect("create");
    store.upsert(points(0..30)).await.expect("upsert");
    let cases = [
        // One positive, nothing left out: the plain nearest neighbours of it.
        (vec![3], vec![], Strategy::AverageVector, false, None, 6, 0),
        (
            vec![3, 11],
            vec![5],
            Strategy::AverageVector,
            true,
            None,
            8,
            0,
        ),
        (vec![3, 11], vec![5], Strategy::BestScore, true, None, 8, 0),
        (
            vec![3, 11, 20],
            vec![5, 6],
            Strategy::AverageVector,
            true,
            Some("odd"),
            5,
            2,
        ),
        (
            vec![3, 11, 20],
            vec![5, 6],
            Strategy::BestScore,
            true,
            Some("even"),
            5,
            2,
        ),
        // Every remaining point, to reach the ones nearer a negative than any positive.
        (
            vec![3],
            vec![4, 9, 17],
            Strategy::BestScore,
            true,
            None,
            30,
            0,
        ),
    ];
    for (positive, negative, strategy, exclude, parity, limit, offset) in cases {
        let reco = Reco {
            positive,
            negative,
            strategy,
            exclude,
            parity,
            limit,
            offset,
        };
        let what = format!(
            "{:?} +{:?} -{:?}",
            reco.strategy, reco.positive, reco.negative
        );
        let hits = store.recommend(&reco.query()).await.expect(&what);
        assert_ranking(&hits, &reco.truth(30), &what);
        for pair in hits.windows(2) {
            assert!(pair[0].score >= pair[1].score, "{what}: best first");
        }
    }

    // One positive alone is a nearest-neighbour search: same ids, same (cosine) scores.
    let alone = Reco {
        positive: vec![3],
        negative: vec![],
        strategy: Strategy::AverageVector,
        exclude: false,
        parity: None,
        limit: 5,
        offset: 0,
    };
    let reco = store.recommend(&alone.query()).await.expect("alone");
    let plain = store.search(&search(vector(3), 5, 0)).await.expect("plain");
    assert_eq!(ids(&reco), ids(&plain));
    for (r, p) in reco.iter().zip(&plain) {
        assert!((r.score - p.score).abs() < 1e-4, "cosine scores");
    }

    // best_score: a candidate nearer a negative than any positive scores below zero.
    let mut scaled = alone.query();
    scaled.strategy = Strategy::BestScore;
    scaled.negative = vec![vector(4)];
    scaled.limit = 30;
    let hits = store.recommend(&scaled).await.expect("best score");
    let below = hits.iter().filter(|h| h.score < 0.0).count();
    let truth_below = (0..30)
        .filter(|&i| cosine(&vector(i), &vector(4)) >= cosine(&vector(i), &vector(3)))
        .count();
    assert_eq!(below, truth_below, "negative scores: {hits:?}");
    assert!(below > 0);

    // Examples count by direction: scaling one changes nothing.
    let mut longer = Reco {
        positive: vec![3, 11],
        negative: vec![5],
        strategy: Strategy::AverageVector,
        exclude: false,
        parity: None,
        limit: 10,
        offset: 0,
    }
    .query();
    let before = ids(&store.recommend(&longer).await.expect("before"));
    longer.positive[0].iter_mut().for_each(|x| *x *= 25.0);
    longer.negative[0].iter_mut().for_each(|x| *x *= 0.01);
    assert_eq!(
        ids(&store.recommend(&longer).await.expect("scaled")),
        before
    );

    // Refused: no positive; an example of length zero.
    let mut none = alone.query();
    none.positive.clear();
    none.negative = vec![vector(4)];
    assert!(matches!(
        store.recommend(&none).await,
        Err(StoreError::Invalid(m)) if m.contains("positive")
    ));
    let mut zero = alone.query();
    zero.negative = vec![vec![0.0; DIM]];
    assert!(matches!(
        store.recommend(&zero).await,
        Err(StoreError::Invalid(m)) if m.contains("length is zero")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_recommend_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EdgeStore::new(dir.path());
    recommend_conformance(&store, "images").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_recommend_conformance() {
    let Some(store) = remote() else { return };
    recommend_conformance(&store, &unique("text2img_recommend")).await;
}
