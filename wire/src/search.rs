//! `POST /api/search` and `POST /api/similar`: what a client asks (a vector or a text, or an
//! image id; a page of results; a payload filter) and the page of results it gets back.
//!
//! Request fields the client leaves out are omitted, not sent as `null`; the proxy treats both
//! alike. Answers always carry every field: `caption` and `next_offset` are `null` when absent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `"filter"`: payload field → the value it must equal (a string, an integer or a boolean; every
/// entry must match). The proxy's `PayloadFilter` is this type.
pub type Filter = BTreeMap<String, Value>;

/// `POST /api/search`: `vector` (encoded by the client) or `text` (encoded by the proxy).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Results per page: 1–100, 20 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Results to skip: at most 10000, 0 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    #[serde(default, skip_serializing_if = "Filter::is_empty")]
    pub filter: Filter,
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
    /// Cosine similarity to the query.
    pub score: f32,
    /// The original, relative to the proxy: `/images/{id}` (see [`crate::join_url`]).
    pub url: String,
    /// The ≤256 px JPEG: `/thumbs/{id}`.
    pub thumbnail_url: String,
    /// `null` when the row has no caption.
    pub caption: Option<String>,
    /// The row's other columns (and the original `url` as written in the TSV).
    pub payload: Map<String, Value>,
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
}
