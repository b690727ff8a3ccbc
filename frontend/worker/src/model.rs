//! The text model built from the downloaded bytes: `config.json`, `tokenizer.json` and the text
//! tower in the chosen [`Variant`] (GGUF for `q8` and `q5`, safetensors otherwise), and the one
//! thing it does, a query text to a unit-length vector. A GGUF tower's token rows arrive as its
//! queries need them ([`RowSource`]).

use std::sync::Arc;

use clip::{ClipConfig, ClipTokenizer, Device, TextEncoder, TokenRows};
use wire::Variant;

use crate::rows::{Arrived, RowSource};

/// A ready text model.
#[derive(Debug)]
pub struct Model {
    tokenizer: ClipTokenizer,
    encoder: TextEncoder,
    /// Where missing token rows come from; `None` when the weights file holds them all.
    rows: Option<RowSource>,
}

/// What the model is built from.
pub struct Files<'a> {
    pub config: &'a [u8],
    pub tokenizer: &'a [u8],
    pub weights: Vec<u8>,
    pub variant: Variant,
    /// The manifest's token rows, and where to fetch them, for a GGUF variant.
    pub rows: Option<(&'a wire::TokenRows, RowSource)>,
}

impl Model {
    /// Builds the model and checks it makes `dim`-value vectors, as the manifest says. The
    /// error says what is wrong with the files.
    pub async fn build(files: Files<'_>, dim: usize) -> Result<Model, String> {
        let text = |e: clip::ClipError| e.to_string();
        let config = ClipConfig::from_json(files.config).map_err(text)?;
        let tokenizer = ClipTokenizer::from_json(files.tokenizer)
            .and_then(|t| t.with_max_len(config.text.max_position_embeddings))
            .map_err(text)?;
        let (table, rows) = match files.rows {
            Some((manifest, source)) if clip::export::is_gguf(files.variant) => {
                let table = token_table(manifest, &config)?;
                (Some(table), Some(source))
            }
            _ => (None, None),
        };
        let encoder =
            clip::export::text_encoder(&config, files.variant, files.weights, table, &Device::Cpu)
                .map_err(text)?;
        if encoder.dim() != dim {
            return Err(format!(
                "the model makes {}-value vectors, the server says {dim}",
                encoder.dim()
            ));
        }
        let model = Model {
            tokenizer,
            encoder,
            rows,
        };
        // The first run pays for one-time set-up (the tokenizer's regex caches, allocations): do
        // it now, while the page says "loading", rather than in the user's first query.
        model.embed("a photo").await?;
        Ok(model)
    }

    /// The unit-length vector of `text`, after fetching the token rows it lacks.
    pub async fn embed(&self, text: &str) -> Result<Vec<f32>, String> {
        let ids = self.tokenizer.encode(text).map_err(|e| e.to_string())?;
        if let (Some(source), Some(table)) = (&self.rows, self.encoder.token_rows()) {
            let missing = self.encoder.missing_rows(&ids);
            if !missing.is_empty() {
                let inserted = match source.fetch(&missing).await? {
                    Arrived::Rows(rows) => missing
                        .iter()
                        .zip(rows)
                        .try_for_each(|(&id, row)| table.insert(id, &row)),
                    Arrived::Whole(file) => table.insert_all(&file),
                };
                inserted.map_err(|e| e.to_string())?;
            }
        }
        let mut rows = self.encoder.embed(&[ids]).map_err(|e| e.to_string())?;
        Ok(rows.pop().unwrap_or_default())
    }
}

/// An empty table for the manifest's token rows, refused when it does not fit the config.
fn token_table(manifest: &wire::TokenRows, config: &ClipConfig) -> Result<Arc<TokenRows>, String> {
    let table = TokenRows::new(manifest.rows, config.text.hidden_size, manifest.format)
        .map_err(|e| e.to_string())?;
    if table.row_bytes() != manifest.row_bytes {
        return Err(format!(
            "the token rows are {} bytes each, the config's width makes {}",
            manifest.row_bytes,
            table.row_bytes()
        ));
    }
    Ok(Arc::new(table))
}
