//! `GET /readyz` when the proxy is not ready (503): which part is not, by a fixed word, beside the
//! usual error body. A ready proxy answers [`crate::Readiness`].

use serde::{Deserialize, Serialize};

use crate::ErrorDetail;

/// `GET /readyz` with status 503: `{"ready":false,"store":"unavailable","labels":"ok",
/// "error":{"code","message"}}`. The `error` object is the one every error answer has, so a
/// client that reads only that still understands it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unready {
    /// Always `false`.
    pub ready: bool,
    /// The vector store (server, cluster or embedded).
    pub store: PartState,
    /// The label log (opened at start; a proxy that could not open it does not start).
    pub labels: PartState,
    /// The first failure's code and a short message without internals (the log has the rest).
    pub error: ErrorDetail,
}

/// How one part stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartState {
    Ok,
    /// Down, unreachable, or missing a live shard replica: retry shortly.
    Unavailable,
    /// The collection does not exist yet: run `ingest`.
    NotIngested,
    /// The collection was made by another model.
    ModelMismatch,
    /// Failed otherwise (the server log has the details).
    Failed,
}
