//! How a test fills a store: points named by their row id, each with its payload and vector,
//! written into an embedded store made for the tiny model's collection, before any server starts.

use std::path::Path;

use proxy::store::edge::EdgeStore;
use proxy::store::{Point, VectorStore, point_id};
use serde_json::{Value, json};

use clip::load::Loaded;

use crate::model::tiny_spec;

/// The point of row `id`: its payload (a JSON object; `id` is added) and its vector.
pub fn point(id: &str, vector: Vec<f32>, payload: Value) -> Point {
    let mut payload = match payload {
        Value::Object(map) => map,
        Value::Null => serde_json::Map::new(),
        other => panic!("a payload is a JSON object, not {other}"),
    };
    payload.insert("id".into(), json!(id));
    Point {
        id: point_id(id),
        vector,
        caption: None,
        payload,
    }
}

/// The unit vector along axis `i` (modulo `dim`).
pub fn axis(i: usize, dim: usize) -> Vec<f32> {
    let mut v = vec![0.0; dim];
    v[i % dim] = 1.0;
    v
}

/// A unit vector of its own for each `i`, spread over every axis (no two of the first hundred
/// alike).
pub fn spread(i: usize, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim)
        .map(|d| ((i * 31 + d * 7) % 11) as f32 - 5.0)
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// The embedded store in `data/qdrant` with the collection of `loaded` (the tiny model; created
/// if it is not there) holding `points` (upserted: a second call with the same points changes
/// nothing).
pub fn edge_store(data: &Path, loaded: &Loaded, points: Vec<Point>) -> EdgeStore {
    let store = EdgeStore::new(data.join("qdrant"));
    let spec = tiny_spec(loaded);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        store.ensure_collection(&spec).await.expect("collection");
        store.upsert(points).await.expect("upsert");
    });
    store
}

/// The proxy's app over an embedded store holding `points` (the tiny model's collection in
/// `data`), with the site stub and no admin token or bundle: what a test of the search API needs.
pub fn serve_points(data: &Path, loaded: &Loaded, points: Vec<Point>) -> crate::TestServer {
    let store: proxy::store::SharedStore = std::sync::Arc::new(edge_store(data, loaded, points));
    crate::TestServer::start(
        crate::app_state(store, loaded, data, None, None),
        &crate::public_stub(data),
        vec![],
    )
}
