//! `GET /api/model`: the browser model's manifest — which files make the text model, where to
//! download each (content-addressed URLs, relative to the proxy), and the sha256 and size to
//! check it against; and where the token rows of the quantized variants are fetched one by one.

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
    /// The token embedding of the GGUF variants (`q8`, `q5`), which leave it out of their file;
    /// `null` when the bundle has none of them.
    pub token_rows: Option<TokenRows>,
}

/// The token embedding table as a file of fixed-size rows, row `i` at byte `i × row_bytes`. A
/// query needs only its own tokens' rows, so the browser fetches each with an HTTP `Range`
/// request instead of the whole table (49,408 rows for CLIP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRows {
    /// The whole file (its sha256 is the whole file's; a row is checked by its length).
    pub file: FileRef,
    /// Rows in the table: the vocabulary's size.
    pub rows: usize,
    /// Bytes per row.
    pub row_bytes: usize,
    pub format: RowFormat,
}

/// How one row of [`TokenRows`] is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RowFormat {
    /// GGUF `Q8_0` blocks: per 32 values an f16 scale and 32 `i8`s (34 bytes), little-endian.
    #[serde(rename = "q8_0")]
    Q8_0,
    /// Little-endian f32 values: for widths that do not split into blocks of 32.
    #[serde(rename = "f32")]
    F32,
}
