//! Loading the text model, in order: the manifest, the variant to use, each file from the cache
//! or the network, the model. What can go wrong is a [`LoadError`] that names the URL at fault.

use std::collections::BTreeSet;
use std::fmt;

use web_sys::Cache;
use wire::worker::{FromWorker, VariantInfo};
use wire::{FileRef, ModelManifest, Variant};

use crate::cache;
use crate::download::{self, Progress};
use crate::model::{Files, Model};
use crate::rows::RowSource;
use crate::scope::{now_ms, post};

/// Why the model could not be loaded. Each message names the URL at fault and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// No model on the server (404 from `/api/model`), or no server.
    NoModel { url: String, reason: String },
    /// A file could not be downloaded, or the download broke off.
    Fetch { url: String, reason: String },
    /// A downloaded file differs from the manifest.
    Integrity { url: String, reason: String },
    /// The files arrived but do not make a working model.
    Model(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NoModel { url, reason } => write!(
                f,
                "no model found: {url} {reason}. Export one with `proxy export-model` and restart the proxy."
            ),
            LoadError::Fetch { url, reason } => write!(f, "cannot download {url}: {reason}"),
            LoadError::Integrity { url, reason } => {
                write!(f, "{url} does not match the model manifest: {reason}")
            }
            LoadError::Model(reason) => write!(f, "cannot build the model: {reason}"),
        }
    }
}

/// Manifest → files (cache or network, checked) → model, and the `Ready` report for the page.
pub async fn load(
    api_base: &str,
    wanted: Option<Variant>,
) -> Result<(Model, FromWorker), LoadError> {
    let start = now_ms();
    let manifest = download::manifest(api_base).await?;
    let variant = choose_variant(&manifest, wanted)?;
    post(&FromWorker::Manifest {
        model_id: manifest.model_id.clone(),
        variants: manifest
            .variants
            .iter()
            .map(|(&name, f)| VariantInfo {
                name,
                bytes: f.bytes,
            })
            .collect(),
        variant,
    });
    let files = [
        &manifest.config,
        &manifest.tokenizer,
        &manifest.variants[&variant],
    ];
    let fetched = fetch_files(api_base, &manifest, files).await?;
    let [config, tokenizer, weights] = fetched.contents;
    let files = Files {
        config: &config,
        tokenizer: &tokenizer,
        weights,
        variant,
        rows: manifest
            .token_rows
            .as_ref()
            .map(|rows| (rows, RowSource::new(api_base, rows))),
    };
    let model = Model::build(files, manifest.dim)
        .await
        .map_err(LoadError::Model)?;
    let ready = FromWorker::Ready {
        model_id: manifest.model_id,
        variant,
        dim: manifest.dim,
        downloaded: fetched.downloaded,
        cached: fetched.cached,
        millis: now_ms() - start,
    };
    Ok((model, ready))
}

/// The variant asked for when the server has it, else the server's default, else its first.
fn choose_variant(manifest: &ModelManifest, wanted: Option<Variant>) -> Result<Variant, LoadError> {
    let offered = |v: &Variant| manifest.variants.contains_key(v);
    wanted
        .filter(offered)
        .or(manifest.default_variant.filter(offered))
        .or_else(|| manifest.variants.keys().next().copied())
        .ok_or_else(|| LoadError::Model("the server's model lists no text-model variant".into()))
}

/// The model's files (config, tokenizer, weights) and where their bytes came from.
#[derive(Debug)]
struct Fetched {
    contents: [Vec<u8>; 3],
    /// Bytes that came over the network.
    downloaded: u64,
    /// Bytes that came from Cache Storage.
    cached: u64,
}

/// Each of `files` from the cache when it holds it whole, else downloaded, checked and cached.
/// Files of other models are pruned from the cache first.
async fn fetch_files(
    api_base: &str,
    manifest: &ModelManifest,
    files: [&FileRef; 3],
) -> Result<Fetched, LoadError> {
    let cache = cache::open().await;
    if let Some(cache) = &cache {
        cache::prune(cache, &listed(manifest)).await;
    }
    let mut progress = Progress::new(files.iter().map(|f| f.bytes).sum());
    let mut fetched = Fetched {
        contents: Default::default(),
        downloaded: 0,
        cached: 0,
    };
    for (file, contents) in files.into_iter().zip(&mut fetched.contents) {
        if let Some(bytes) = cached(cache.as_ref(), file).await {
            progress.advance(file.bytes);
            fetched.cached += file.bytes;
            *contents = bytes;
            continue;
        }
        let bytes = download::checked(api_base, file, &mut progress).await?;
        if let Some(cache) = &cache {
            cache::store(cache, &file.sha256, &bytes).await;
        }
        fetched.downloaded += file.bytes;
        *contents = bytes;
    }
    progress.post(true);
    Ok(fetched)
}

async fn cached(cache: Option<&Cache>, file: &FileRef) -> Option<Vec<u8>> {
    cache::lookup(cache?, file).await
}

/// The sha256 of every file the manifest lists, all variants included.
fn listed(manifest: &ModelManifest) -> BTreeSet<&str> {
    [&manifest.config, &manifest.tokenizer]
        .into_iter()
        .chain(manifest.variants.values())
        .map(|f| f.sha256.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn manifest(variants: &[Variant], default_variant: Option<Variant>) -> ModelManifest {
        let file = |name: &str| FileRef {
            url: format!("/model/{name}"),
            sha256: name.into(),
            bytes: 1,
        };
        ModelManifest {
            model_id: "m".into(),
            dim: 16,
            context_length: 77,
            config: file("config"),
            tokenizer: file("tokenizer"),
            variants: variants
                .iter()
                .map(|&v| (v, file(v.as_str())))
                .collect::<BTreeMap<_, _>>(),
            default_variant,
            token_rows: None,
        }
    }

    #[test]
    fn the_variant_asked_for_unless_the_server_lacks_it() {
        use Variant::*;
        let m = manifest(&[Q8, F16, F32], Some(Q8));
        assert_eq!(choose_variant(&m, Some(F32)), Ok(F32));
        assert_eq!(choose_variant(&m, None), Ok(Q8));
        let m = manifest(&[Q8, F16], Some(Q8));
        assert_eq!(choose_variant(&m, Some(F32)), Ok(Q8));
        // No usable default: the first variant by name.
        let m = manifest(&[F32, F16], None);
        assert_eq!(choose_variant(&m, None), Ok(F16));
        let m = manifest(&[F32], Some(Q8));
        assert_eq!(choose_variant(&m, None), Ok(F32));
        assert!(choose_variant(&manifest(&[], None), None).is_err());
    }

    #[test]
    fn every_listed_file_is_kept() {
        let m = manifest(&[Variant::Q8, Variant::F32], Some(Variant::Q8));
        assert_eq!(
            listed(&m),
            BTreeSet::from(["config", "tokenizer", "f32", "q8"])
        );
    }
}
