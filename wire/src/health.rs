//! `GET /healthz` (the process answers) and `GET /readyz` (the collection is open: its size, the
//! model that made it, the labels on disk).

use serde::{Deserialize, Serialize};

/// `GET /healthz`: `{"status":"ok"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
}

impl Health {
    pub fn ok() -> Self {
        Self {
            status: "ok".into(),
        }
    }
}

/// `GET /readyz` when the store answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Always `true` (an unready proxy answers with an error body).
    pub ready: bool,
    /// Points in the collection.
    pub points: usize,
    /// The model that made the vectors.
    pub model: String,
    pub dim: usize,
    pub collection: String,
    /// Votes in force.
    pub labels: usize,
}
