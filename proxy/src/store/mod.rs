//! store/: where do vectors live?
//!
//! One trait, [`VectorStore`], with two implementations that behave the same: embedded Qdrant
//! Edge ([`edge::EdgeStore`], the default: a directory, no server) and a Qdrant server or cluster
//! over gRPC ([`remote::RemoteStore`], when `QDRANT_URL` is set). Search, ingest, the HTTP layer
//! and eval see only the trait; `tests/store.rs` runs one conformance suite against both.
//!
//! Architecture Invariant: nothing outside this module names a `qdrant_edge` or `qdrant_client`
//! type. Points are identified by [`Uuid`]s (UUIDv5 of the TSV row id, see [`point_id`]) and carry
//! a JSON object payload.

pub mod cluster;
pub mod edge;
mod failure;
pub mod remote;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// A JSON object stored with a point.
pub type Payload = Map<String, Value>;

/// The namespace of point ids: `point_id(row id) = UUIDv5(NAMESPACE, row id)`, so the same row
/// always lands on the same point (re-runs upsert instead of duplicating).
pub const NAMESPACE: Uuid = Uuid::from_u128(0x6d1c_5a4e_2f0b_4c3a_9e57_7a41_3b2d_8f10);

/// The point id of a TSV row id.
pub fn point_id(row_id: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, row_id.as_bytes())
}

/// What a collection holds: which model made its vectors, and whether each point may carry a
/// caption vector besides its image vector. A collection made by another model or with another
/// dimension is refused, never mixed; whether it has caption vectors is decided when it is
/// created and kept (opening returns the spec found).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionSpec {
    /// The collection's name (`QDRANT_COLLECTION`, default `images`).
    pub name: String,
    /// The embedding dimension (the model's projection size).
    pub dim: usize,
    /// The model that made the vectors (a repository id or a directory name).
    pub model: String,
    /// Whether the collection has the named vector [`CAPTION_VECTOR`] (the text tower's
    /// embedding of each row's caption) beside the unnamed image vector. Collections made before
    /// caption vectors existed have none.
    #[serde(default)]
    pub captions: bool,
}

/// The name of the caption vector in Qdrant; the image vector is the unnamed (default) one, so
/// collections without captions look as they always did.
pub const CAPTION_VECTOR: &str = "caption";

/// Which of a point's vectors a query is compared with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorName {
    /// The image tower's embedding of the picture.
    #[default]
    Image,
    /// The text tower's embedding of the row's caption (points without a caption have none).
    Caption,
}

impl VectorName {
    /// The vector's name in Qdrant (`""` is the default vector).
    pub fn qdrant_name(self) -> &'static str {
        match self {
            VectorName::Image => "",
            VectorName::Caption => CAPTION_VECTOR,
        }
    }
}

impl CollectionSpec {
    /// Whether a collection found with spec `found` can hold this model's vectors: the same
    /// model and dimension, or a [`StoreError::Mismatch`] that says what it holds.
    pub fn accepts(&self, found: &CollectionSpec) -> Result<()> {
        if found.dim != self.dim || found.model != self.model {
            return Err(StoreError::Mismatch {
                collection: self.name.clone(),
                found: format!("{}-d vectors of `{}`", found.dim, found.model),
                expected: format!("`{}` ({}-d)", self.model, self.dim),
            });
        }
        Ok(())
    }
}

/// A point to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub id: Uuid,
    /// The image vector.
    pub vector: Vec<f32>,
    /// The caption vector, written only to a collection with [`CollectionSpec::captions`].
    pub caption: Option<Vec<f32>>,
    pub payload: Payload,
}

/// A search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: Uuid,
    /// Cosine similarity.
    pub score: f32,
    pub payload: Payload,
}

/// A stored point read back by id or by scrolling.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: Uuid,
    pub payload: Payload,
    /// The image vector, present when asked for.
    pub vector: Option<Vec<f32>>,
    /// The caption vector, present when asked for and the point has one.
    pub caption: Option<Vec<f32>>,
}

/// Exact-match conditions on payload fields, all of which must hold. Values are strings,
/// integers or booleans (what Qdrant's `match` accepts).
pub type PayloadFilter = BTreeMap<String, Value>;

/// A nearest-neighbour query.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub vector: Vec<f32>,
    /// The stored vector compared with (points without it are not found).
    pub using: VectorName,
    pub limit: usize,
    pub offset: usize,
    pub filter: PayloadFilter,
}

/// How positive and negative examples become one ranking (Qdrant's recommend strategies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    /// One query vector, `avg(pos) + (avg(pos) − avg(neg))` (just `avg(pos)` without negatives),
    /// searched like any other: scores are cosine similarities.
    #[default]
    AverageVector,
    /// Each candidate scored against every example: its best positive cosine `p` and best
    /// negative `n`; `sigmoid(p)` when `p > n`, else `−sigmoid(n)`.
    BestScore,
}

/// A recommend query: results like the positives and unlike the negatives (relevance feedback).
/// Examples are compared by direction only: each is scaled to unit length first, as cosine
/// distance does with stored vectors, so a vector given by a client and one read from the store
/// weigh the same.
#[derive(Debug, Clone, PartialEq)]
pub struct RecommendQuery {
    /// At least one.
    pub positive: Vec<Vec<f32>>,
    pub negative: Vec<Vec<f32>>,
    pub strategy: Strategy,
    /// Points left out of the results (the examples that are indexed images).
    pub exclude: Vec<Uuid>,
    pub limit: usize,
    pub offset: usize,
    pub filter: PayloadFilter,
}

impl RecommendQuery {
    /// The examples scaled to unit length; an empty positive set or a zero-length example is
    /// [`StoreError::Invalid`].
    pub fn unit_examples(&self) -> Result<UnitExamples> {
        if self.positive.is_empty() {
            return Err(StoreError::Invalid(
                "a recommend query needs at least one positive example".into(),
            ));
        }
        let unit = |v: &Vec<f32>| {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 && norm.is_finite() {
                Ok(v.iter().map(|x| x / norm).collect())
            } else {
                Err(StoreError::Invalid(
                    "an example vector has no direction (its length is zero)".into(),
                ))
            }
        };
        let positive = self.positive.iter().map(unit).collect::<Result<_>>()?;
        let negative = self.negative.iter().map(unit).collect::<Result<_>>()?;
        Ok(UnitExamples { positive, negative })
    }
}

/// A recommend query's examples, each of unit length.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitExamples {
    pub positive: Vec<Vec<f32>>,
    pub negative: Vec<Vec<f32>>,
}

/// Store errors, by class: the HTTP layer maps each class to one status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot answer now: a server or cluster node down or unreachable, a shard
    /// without a live replica, a timeout, the embedded store held by another process. Retry
    /// later (503). The message is for the log: it may name internal addresses and paths.
    #[error("the vector store is unavailable: {0}")]
    Unavailable(String),
    /// The collection was made by another model or with another dimension.
    #[error(
        "collection `{collection}` holds {found}, but the model is {expected}; \
         use another collection (QDRANT_COLLECTION) or storage directory, or re-ingest"
    )]
    Mismatch {
        collection: String,
        found: String,
        expected: String,
    },
    /// The collection exists on the server but text2img did not make it: no model is recorded in
    /// it. `ingest --adopt` records one after checking that its vectors fit.
    #[error(
        "collection `{collection}` was not made by text2img: it records no model (it holds \
         {holds}); if they are this model's vectors, adopt it once with `ingest --adopt`, \
         else use another collection (QDRANT_COLLECTION)"
    )]
    NotOurs { collection: String, holds: String },
    /// The request is wrong (bad filter, wrong vector length). The message is this crate's own
    /// words about the client's input, never a store's message: clients see it.
    #[error("{0}")]
    Invalid(String),
    /// The collection does not exist yet (nothing ingested).
    #[error("collection `{0}` does not exist yet: run `ingest` first")]
    NoCollection(String),
    /// Anything else the store reported. The message is for the log (internal details).
    #[error("vector store error: {0}")]
    Internal(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The operations text2img needs from Qdrant.
#[async_trait::async_trait]
pub trait VectorStore: Send + Sync + std::fmt::Debug {
    /// Create the collection (cosine distance, payload indexes, the spec as metadata) or check
    /// that the existing one matches `spec`. Returns the spec of the collection as it is: an
    /// existing one keeps its own [`CollectionSpec::captions`].
    async fn ensure_collection(&self, spec: &CollectionSpec) -> Result<CollectionSpec>;
    /// Open an existing collection for reading and check it against `spec`; returns its spec.
    async fn open_collection(&self, spec: &CollectionSpec) -> Result<CollectionSpec>;
    /// Take over a collection made by hand on a server (`ingest --adopt`): check that its vectors
    /// fit `spec` (one unnamed cosine vector of the dimension, no other model recorded), then
    /// record `spec` in it and index the payload fields. The embedded store refuses: it only
    /// holds collections that ingest made.
    async fn adopt(&self, spec: &CollectionSpec) -> Result<()>;
    /// How the open collection is laid out on a server (shards, replicas, storage); `None` for
    /// the embedded store.
    async fn layout(&self) -> Result<Option<cluster::Layout>>;
    /// Index a payload field for exact-match filtering (keyword); indexing an indexed field again
    /// is a no-op.
    async fn index_field(&self, field: &str) -> Result<()>;
    /// Insert or replace points (same id ⇒ replaced). Returns once the write is durable.
    async fn upsert(&self, points: Vec<Point>) -> Result<()>;
    /// Replace the payload of existing points, keeping their vectors.
    async fn set_payload(&self, id: Uuid, payload: Payload) -> Result<()>;
    /// Delete points by id (unknown ids are ignored).
    async fn delete(&self, ids: &[Uuid]) -> Result<()>;
    /// Nearest neighbours by cosine similarity, best first.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Hit>>;
    /// Results like `query.positive` and unlike `query.negative` (Qdrant's recommend), best
    /// first, `query.exclude` left out. Both backends rank alike (the conformance suite checks it
    /// against a brute-force ranking).
    async fn recommend(&self, query: &RecommendQuery) -> Result<Vec<Hit>>;
    /// Points by id, in the order asked, unknown ids left out; with their image and caption
    /// vectors when `with_vector`.
    async fn get(&self, ids: &[Uuid], with_vector: bool) -> Result<Vec<Record>>;
    /// One page of every point (payload only), ordered by id; the next page starts after the
    /// returned id.
    async fn scroll(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<Record>, Option<Uuid>)>;
    /// Number of points.
    async fn count(&self) -> Result<usize>;
    /// Build the search index (Edge searches new points by brute force until this runs); a no-op
    /// where the server indexes by itself.
    async fn optimize(&self) -> Result<()>;
    /// Whether the store answers (readiness).
    async fn ping(&self) -> Result<()>;
}

/// `records` in the order `ids` asks for them (both backends answer a `get` in their own order).
fn in_asked_order(mut records: Vec<Record>, ids: &[Uuid]) -> Vec<Record> {
    records.sort_by_key(|r| ids.iter().position(|id| *id == r.id));
    records
}

/// Every point's payload, page by page.
pub async fn all_records(store: &dyn VectorStore) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = store.scroll(after, 512).await?;
        out.extend(page);
        match next {
            Some(id) => after = Some(id),
            None => return Ok(out),
        }
    }
}

/// Collection names become file names (Edge) and URL parts (a server): keep them plain.
pub fn validate_collection_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "collection name `{name}`: use 1-64 letters, digits, `_` or `-`"
        ))
    }
}

/// Check a query vector: the right length, finite values.
pub fn check_vector(vector: &[f32], dim: usize) -> Result<()> {
    if vector.len() != dim {
        return Err(StoreError::Invalid(format!(
            "vector has {} values, the model needs {dim}",
            vector.len()
        )));
    }
    if let Some(i) = vector.iter().position(|v| !v.is_finite()) {
        return Err(StoreError::Invalid(format!(
            "vector value {i} is not a finite number"
        )));
    }
    Ok(())
}

/// Check a filter's values: strings, integers or booleans.
pub fn check_filter(filter: &PayloadFilter) -> Result<()> {
    for (key, value) in filter {
        if key.is_empty() {
            return Err(StoreError::Invalid("filter has an empty field name".into()));
        }
        match value {
            Value::String(_) | Value::Bool(_) => {}
            Value::Number(n) if n.is_i64() => {}
            _ => {
                return Err(StoreError::Invalid(format!(
                    "filter field `{key}`: only a string, integer or boolean can be matched"
                )));
            }
        }
    }
    Ok(())
}

/// A shared store handle.
pub type SharedStore = Arc<dyn VectorStore>;
