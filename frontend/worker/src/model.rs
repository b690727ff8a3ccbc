//! The text model built from the downloaded bytes: `config.json`, `tokenizer.json` and the text
//! tower in the chosen [`Variant`] (GGUF for `q8` and `q5`, safetensors otherwise), and the one
//! thing it does, a query text to a unit-length vector.

use clip::{ClipConfig, ClipTokenizer, Device, TextEncoder};
use wire::Variant;

/// A ready text model.
#[derive(Debug)]
pub struct Model {
    tokenizer: ClipTokenizer,
    encoder: TextEncoder,
}

impl Model {
    /// Builds the model and checks it makes `dim`-value vectors, as the manifest says. The
    /// error says what is wrong with the files.
    pub fn build(
        config: &[u8],
        tokenizer: &[u8],
        weights: Vec<u8>,
        variant: Variant,
        dim: usize,
    ) -> Result<Model, String> {
        let text = |e: clip::ClipError| e.to_string();
        let config = ClipConfig::from_json(config).map_err(text)?;
        let tokenizer = ClipTokenizer::from_json(tokenizer)
            .and_then(|t| t.with_max_len(config.text.max_position_embeddings))
            .map_err(text)?;
        let weights = clip::export::read_weights(variant, weights, &Device::Cpu).map_err(text)?;
        let encoder =
            TextEncoder::new(&config.text, config.projection_dim, &weights).map_err(text)?;
        if encoder.dim() != dim {
            return Err(format!(
                "the model makes {}-value vectors, the server says {dim}",
                encoder.dim()
            ));
        }
        let model = Model { tokenizer, encoder };
        // The first run pays for one-time set-up (the tokenizer's regex caches, allocations): do
        // it now, while the page says "loading", rather than in the user's first query.
        model.embed("a photo").map_err(text)?;
        Ok(model)
    }

    /// The unit-length vector of `text`.
    pub fn embed(&self, text: &str) -> clip::Result<Vec<f32>> {
        let ids = self.tokenizer.encode(text)?;
        let mut rows = self.encoder.embed(&[ids])?;
        Ok(rows.pop().unwrap_or_default())
    }
}
