//! `POST /api/search` and `POST /api/similar`: what a client asks (a vector, a text, weighted
//! terms or examples to be like and unlike; or an image id; a page of results; a payload filter)
//! and the page of results it gets back.
//!
//! Request fields the client leaves out are omitted, not sent as `null`; the proxy treats both
//! alike. Answers always carry every field: `caption` and `next_offset` are `null` when absent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `"filter"`: payload field → the value it must equal (a string, an integer or a boolean; every
/// entry must match). The proxy's `PayloadFilter` is this type.
pub type Filter = BTreeMap<String, Value>;

/// `POST /api/search`. The query is one of `vector` (encoded by the client), `text` (encoded by
/// the proxy) or `terms` (weighted, composed into one vector); `positive` and `negative` examples
/// may come with it (relevance feedback: the query counts as one more positive) or alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A composed query: `Σ weight × unit(term)`, searched as one vector (`red car -night`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<Term>,
    /// Results should be like these (relevance feedback, "more like these").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub positive: Vec<Example>,
    /// Results should be unlike these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub negative: Vec<Example>,
    /// How examples make one ranking; `average_vector` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// Results per page: 1–100, 20 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Results to skip: at most 10000, 0 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    #[serde(default, skip_serializing_if = "Filter::is_empty")]
    pub filter: Filter,
    /// Which stored vectors the query is compared with; when absent, `fused` where the
    /// collection has caption vectors, else `image`. Examples (`positive`/`negative`) compare
    /// image vectors only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vectors: Option<Vectors>,
}

/// The stored vectors a query is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vectors {
    /// The image tower's embeddings of the pictures.
    Image,
    /// The text tower's embeddings of the rows' captions.
    Caption,
    /// Both rankings fused into one (the proxy's fusion rule).
    Fused,
}

/// An indexed image (by its row id) or a vector: `{"id":"cat"}` or `{"vector":[…]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Example {
    Id(String),
    Vector(Vec<f32>),
}

/// One weighted term of a composed query: `{"weight":-1.0,"vector":[…]}` (`-night`, encoded in
/// the browser) or `{"weight":1.0,"id":"cat"}` (`+similar:cat`). Each term's vector is scaled to
/// unit length before it is weighted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    pub weight: f32,
    #[serde(flatten)]
    pub example: Example,
}

/// How positive and negative examples become one ranking (Qdrant's recommend strategies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// One vector: the positives' mean, moved away from the negatives' mean.
    #[default]
    AverageVector,
    /// Each candidate scored by its best positive, penalised by its best negative.
    BestScore,
}

/// `POST /api/similar`: the images nearest to the indexed image `id` (itself left out).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimilarRequest {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    #[serde(default, skip_serializing_if = "Filter::is_empty")]
    pub filter: Filter,
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The row id from the ingested TSV.
    pub id: String,
    /// Cosine similarity to the query (of the image or the caption), or the fused score: see
    /// [`Results::vectors`].
    pub score: f32,
    /// The original, relative to the proxy: `/images/{id}` (see [`crate::join_url`]).
    pub url: String,
    /// The ≤256 px JPEG: `/thumbs/{id}`.
    pub thumbnail_url: String,
    /// `null` when the row has no caption.
    pub caption: Option<String>,
    /// The row's other columns (and the original `url` as written in the TSV).
    pub payload: Map<String, Value>,
    /// Scored below the learned "no good match" cut-off ([`Results::cutoff`]); `false` when
    /// there is none.
    pub weak: bool,
}

/// A page of results (search and similar alike).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub results: Vec<Hit>,
    /// Milliseconds the proxy took.
    pub took_ms: f64,
    pub limit: usize,
    pub offset: usize,
    /// The offset of the next page when this page was full; `null` otherwise.
    pub next_offset: Option<usize>,
    /// The learned "no good match" score this ranking was cut at: hits below it are `weak`.
    /// `null` when the cut-off is off (too few labels) or does not apply to the query.
    pub cutoff: Option<f32>,
    /// The vectors the ranking compared the query with, which says what a score is: a cosine
    /// similarity to the image or the caption, or the fusion's score (`fused`).
    pub vectors: Vectors,
}
