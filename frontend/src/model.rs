//! The browser's CLIP text model: downloads the bundle that `proxy export-model` publishes under
//! `model/` (manifest, config, tokenizer, one text-tower variant), checks every file against the
//! manifest's size and sha256, builds the tokenizer and text encoder, and turns a query into a
//! vector. It knows nothing of the page; the view reports its progress and errors.
//!
//! Downloads go through [`fetch_bytes`] alone, so a cache (by the manifest's sha256) can be added
//! there, and [`Model`] holds no browser objects, so it can move into a web worker unchanged.

use std::fmt;

use clip::export::{FileEntry, Manifest, Variant, sha256_hex};
use clip::{ClipConfig, ClipTokenizer, Device, TextEncoder, Weights};

/// Where the bundle lives, relative to the page (the proxy serves it at `/model/`).
pub const MODEL_BASE: &str = "model/";

/// Why the model could not be loaded. Each message says what the user or operator can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// No manifest: the model has not been exported or the server does not serve it.
    NoManifest { url: String, reason: String },
    /// A file listed in the manifest could not be downloaded.
    Fetch { url: String, reason: String },
    /// A downloaded file differs from the manifest (a stale cache or a partial export).
    Integrity { url: String, reason: String },
    /// The files arrived but do not make a working model.
    Model(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NoManifest { url, reason } => write!(
                f,
                "no model found: {url} {reason}. Export one with `proxy export-model` and serve it under /model/."
            ),
            LoadError::Fetch { url, reason } => write!(f, "cannot download {url}: {reason}"),
            LoadError::Integrity { url, reason } => {
                write!(f, "{url} does not match the model manifest: {reason}")
            }
            LoadError::Model(reason) => write!(f, "cannot build the model: {reason}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Loading stages, for the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Manifest,
    Tokenizer,
    Weights { variant: Variant, bytes: u64 },
    Building,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Manifest => write!(f, "loading the model manifest…"),
            Stage::Tokenizer => write!(f, "loading the tokenizer and config…"),
            Stage::Weights { variant, bytes } => {
                write!(
                    f,
                    "loading the {} text model ({})…",
                    variant_key(*variant),
                    megabytes(*bytes)
                )
            }
            Stage::Building => write!(f, "building the model…"),
        }
    }
}

/// `12.3 MB` (decimal megabytes, as download sizes are usually given).
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The manifest's key for a variant (`q8`, `f16`, `f32`).
fn variant_key(v: Variant) -> &'static str {
    match v {
        Variant::Q8 => "q8",
        Variant::F16 => "f16",
        Variant::F32 => "f32",
    }
}

/// A ready text model.
#[derive(Debug, Clone)]
pub struct Model {
    /// Bytes downloaded for config, tokenizer and weights.
    pub bytes: u64,
    tokenizer: ClipTokenizer,
    encoder: TextEncoder,
}

impl Model {
    /// Downloads and builds the model from `base` (a URL prefix ending in `/`), preferring the
    /// smallest variant the manifest lists. `progress` hears each stage as it starts.
    pub async fn load(base: &str, progress: impl Fn(Stage)) -> Result<Model, LoadError> {
        progress(Stage::Manifest);
        let manifest = fetch_manifest(&format!("{base}manifest.json")).await?;
        // Smallest download first: q8 is the default, the others stay usable when it is absent.
        let (variant, entry) = Variant::ALL
            .iter()
            .find_map(|&v| {
                manifest
                    .variants
                    .get(variant_key(v))
                    .map(|e| (v, e.clone()))
            })
            .ok_or_else(|| {
                LoadError::Model("the manifest lists no text-model variant (q8, f16 or f32)".into())
            })?;

        progress(Stage::Tokenizer);
        let config_bytes = fetch_entry(base, &manifest.config).await?;
        let tokenizer_bytes = fetch_entry(base, &manifest.tokenizer).await?;
        progress(Stage::Weights {
            variant,
            bytes: entry.bytes,
        });
        let weights_bytes = fetch_entry(base, &entry).await?;
        let bytes = (config_bytes.len() + tokenizer_bytes.len() + weights_bytes.len()) as u64;

        progress(Stage::Building);
        let model_err = |e: clip::ClipError| LoadError::Model(e.to_string());
        let config = ClipConfig::from_json(&config_bytes).map_err(model_err)?;
        let tokenizer = ClipTokenizer::from_json(&tokenizer_bytes)
            .and_then(|t| t.with_max_len(config.text.max_position_embeddings))
            .map_err(model_err)?;
        let weights = match variant {
            Variant::Q8 => Weights::from_gguf(&weights_bytes, &Device::Cpu),
            Variant::F16 | Variant::F32 => Weights::from_safetensors(weights_bytes, &Device::Cpu),
        }
        .map_err(model_err)?;
        let encoder =
            TextEncoder::new(&config.text, config.projection_dim, &weights).map_err(model_err)?;
        if encoder.dim() != manifest.dim {
            return Err(LoadError::Model(format!(
                "the model makes {}-value vectors, the manifest says {}",
                encoder.dim(),
                manifest.dim
            )));
        }
        Ok(Model {
            bytes,
            tokenizer,
            encoder,
        })
    }

    /// The unit-length vector of `text`.
    pub fn embed(&self, text: &str) -> clip::Result<Vec<f32>> {
        let ids = self.tokenizer.encode(text)?;
        let mut rows = self.encoder.embed(&[ids])?;
        Ok(rows.pop().unwrap_or_default())
    }
}

/// The manifest, or [`LoadError::NoManifest`] when the server has none.
async fn fetch_manifest(url: &str) -> Result<Manifest, LoadError> {
    let no_manifest = |reason: String| LoadError::NoManifest {
        url: url.to_string(),
        reason,
    };
    let bytes = fetch_bytes(url).await.map_err(|e| match e {
        FetchError::Status(404) => no_manifest("does not exist (HTTP 404)".into()),
        other => no_manifest(format!("could not be read ({other})")),
    })?;
    // Servers with a single-page fallback answer a missing file with the app's index.html.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
        return Err(no_manifest(
            "is not there (the server answered with a web page)".into(),
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| no_manifest(format!("is not a model manifest ({e})")))
}

/// A file of the bundle, checked against its manifest entry.
async fn fetch_entry(base: &str, entry: &FileEntry) -> Result<Vec<u8>, LoadError> {
    let url = format!("{base}{}", entry.file);
    let bytes = fetch_bytes(&url).await.map_err(|e| LoadError::Fetch {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    if bytes.len() as u64 != entry.bytes {
        let reason = format!("{} bytes, expected {}", bytes.len(), entry.bytes);
        return Err(LoadError::Integrity { url, reason });
    }
    let sha = sha256_hex(&bytes);
    if sha != entry.sha256 {
        return Err(LoadError::Integrity {
            url,
            reason: format!("sha256 {sha}, expected {}", entry.sha256),
        });
    }
    Ok(bytes)
}

#[derive(Debug)]
enum FetchError {
    Status(u16),
    Network(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Status(code) => write!(f, "HTTP {code}"),
            FetchError::Network(e) => write!(f, "{e}"),
        }
    }
}

/// The body of a successful GET.
async fn fetch_bytes(url: &str) -> Result<Vec<u8>, FetchError> {
    let response = gloo_net::http::Request::get(url)
        .send()
        .await
        .map_err(|e| FetchError::Network(e.to_string()))?;
    if !response.ok() {
        return Err(FetchError::Status(response.status()));
    }
    response
        .binary()
        .await
        .map_err(|e| FetchError::Network(e.to_string()))
}
