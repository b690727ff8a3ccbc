//! `GET /api/model`: the browser model's manifest — which files make the text model, where to
//! download each (content-addressed URLs, relative to the proxy), and the sha256 and size to
//! check it against.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Variant;

/// One file of the browser model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// `/model/{file}?sha256={sha256}`: a new model is a new URL.
    pub url: String,
    /// Lowercase hex.
    pub sha256: String,
    pub bytes: u64,
}

/// The answer to `GET /api/model`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelManifest {
    /// Where the weights came from (hub repo id or directory name).
    pub model_id: String,
    /// Length of the output vectors.
    pub dim: usize,
    /// Context length of the text tower.
    pub context_length: usize,
    /// `config.json`.
    pub config: FileRef,
    /// `tokenizer.json`.
    pub tokenizer: FileRef,
    /// The text tower, one file per exported precision.
    pub variants: BTreeMap<Variant, FileRef>,
    /// [`Variant::preferred`] among `variants`; `null` when there is none.
    pub default_variant: Option<Variant>,
}
