//! model: the native CLIP model the proxy and its commands share.
//!
//! Loads a model (local directory or Hugging Face repository, downloaded once into the HF cache),
//! encodes query text for server-side search and eval ([`TextEncoder`]), and says which
//! [`CollectionSpec`] its vectors belong to.

use std::sync::Arc;

use clip::load::{self, DownloadProgress, Loaded, ModelSource};
use clip::{ClipModel, ClipTokenizer, DType, Device};

use crate::store::CollectionSpec;

/// Encodes query text natively (server-side text search, the frontend's fallback, and eval).
pub trait TextEncoder: Send + Sync {
    fn embed_text(&self, text: &str) -> Result<Vec<f32>, EncodeError>;
}

/// The text encoder failed (tokenizer or model).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EncodeError(pub String);

/// Resolve (download if needed) and load a model, computing in f32.
pub fn load_model(
    spec: &str,
    device: &Device,
    progress: &mut dyn DownloadProgress,
) -> anyhow::Result<Loaded> {
    load_model_as(spec, device, DType::F32, progress)
}

/// [`load_model`] computing in `dtype` (f16 for GPU ingest).
pub fn load_model_as(
    spec: &str,
    device: &Device,
    dtype: DType,
    progress: &mut dyn DownloadProgress,
) -> anyhow::Result<Loaded> {
    use anyhow::Context;
    let source = ModelSource::parse(spec);
    let files = load::resolve(&source, progress).with_context(|| format!("model {spec}"))?;
    load::load_as(&files, device, dtype).with_context(|| format!("loading model {spec}"))
}

/// The collection a model's vectors belong in (without caption vectors: ingest asks for them
/// when its TSV has captions; serving takes the collection as found).
pub fn collection_spec(collection: &str, loaded: &Loaded) -> CollectionSpec {
    CollectionSpec {
        name: collection.to_string(),
        dim: loaded.model.config.projection_dim,
        model: loaded.id.clone(),
        captions: false,
    }
}

/// Query text → unit vector, natively.
#[derive(Debug, Clone)]
pub struct NativeTextEncoder {
    pub tokenizer: ClipTokenizer,
    pub model: Arc<ClipModel>,
}

impl NativeTextEncoder {
    pub fn new(loaded: &Loaded) -> Self {
        Self {
            tokenizer: loaded.tokenizer.clone(),
            model: Arc::new(loaded.model.clone()),
        }
    }
}

impl TextEncoder for NativeTextEncoder {
    fn embed_text(&self, text: &str) -> Result<Vec<f32>, EncodeError> {
        let failed = |e: clip::ClipError| EncodeError(e.to_string());
        let ids = self.tokenizer.encode(text).map_err(failed)?;
        self.model
            .text
            .embed(&[ids])
            .map_err(failed)?
            .pop()
            .ok_or_else(|| EncodeError("the text encoder returned no vector".into()))
    }
}
