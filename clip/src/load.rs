//! The only module that reads model files: from a local directory (any Hugging Face model
//! snapshot) or, with the `hub` feature, from the Hugging Face hub by repository id, cached in
//! the standard HF cache (`$HF_HOME/hub`, default `~/.cache/huggingface/hub`) so later runs and
//! offline machines need no network. Which files a checkpoint has, and so its family, is
//! [`crate::layout`]'s question; this module only looks for them and reads them. Also writes the
//! browser's model bundle.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device};

use crate::config::ClipConfig;
use crate::error::{ClipError, Result};
use crate::export::{self, FileEntry, Manifest, Variant};
use crate::layout::{Family, Layout};
use crate::model::ClipModel;
use crate::token_rows::TokenRows;
use crate::tokenizer::ClipTokenizer;
use crate::weights::Weights;

/// The default model: OpenCLIP's ViT-B/32 trained on LAION-2B, OpenAI ViT-B/32's shapes with
/// better retrieval (BENCHMARKS.md, "Models", says why).
pub const DEFAULT_MODEL: &str = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K";

/// Files of a transformers model snapshot (other families: [`crate::layout`]).
pub use crate::layout::{CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A directory holding a checkpoint of one of [`crate::layout`]'s families.
    Dir(PathBuf),
    /// A Hugging Face hub repository id such as `openai/clip-vit-base-patch32`.
    Hub { repo: String, revision: String },
}

impl ModelSource {
    /// An existing directory is a `Dir`; anything else is a hub repository id (`repo[@revision]`).
    pub fn parse(spec: &str) -> Self {
        let path = Path::new(spec);
        if path.is_dir() {
            return ModelSource::Dir(path.to_path_buf());
        }
        match spec.split_once('@') {
            Some((repo, rev)) => ModelSource::Hub {
                repo: repo.to_string(),
                revision: rev.to_string(),
            },
            None => ModelSource::Hub {
                repo: spec.to_string(),
                revision: "main".to_string(),
            },
        }
    }

    /// A short name for manifests and logs.
    pub fn id(&self) -> String {
        match self {
            ModelSource::Dir(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string()),
            ModelSource::Hub { repo, .. } => repo.clone(),
        }
    }
}

/// Paths of a resolved model's files.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub id: String,
    /// The layout the files are in.
    pub family: Family,
    pub config: PathBuf,
    pub weights: PathBuf,
    /// `tokenizer.json`, or a slow tokenizer's `vocab.json` when [`Self::merges`] is set.
    pub tokenizer: PathBuf,
    /// `merges.txt` of a slow tokenizer (a snapshot without `tokenizer.json`).
    pub merges: Option<PathBuf>,
}

/// Reports download progress (the binaries draw a progress bar; this crate never prints).
pub trait DownloadProgress {
    /// A download of `file` with `size` bytes starts.
    fn start(&mut self, file: &str, size: u64);
    /// `bytes` more have arrived.
    fn advance(&mut self, bytes: u64);
    /// The current file is complete.
    fn finish(&mut self);
}

/// Ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl DownloadProgress for NoProgress {
    fn start(&mut self, _file: &str, _size: u64) {}
    fn advance(&mut self, _bytes: u64) {}
    fn finish(&mut self) {}
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| ClipError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Finds (and, for the hub, downloads once into the HF cache) the model's files, in the first
/// layout of [`crate::layout`] that is there.
pub fn resolve(source: &ModelSource, progress: &mut dyn DownloadProgress) -> Result<ModelFiles> {
    resolve_in(source, None, progress)
}

/// [`resolve`] with an explicit hub cache directory (the `hub` folder of `HF_HOME`) instead of
/// the environment's.
pub fn resolve_in(
    source: &ModelSource,
    hub_cache: Option<&Path>,
    progress: &mut dyn DownloadProgress,
) -> Result<ModelFiles> {
    match source {
        ModelSource::Dir(dir) => resolve_dir(dir, source.id()),
        ModelSource::Hub { repo, revision } => hub::resolve(repo, revision, hub_cache, progress),
    }
}

fn not_found(path: PathBuf, what: &str) -> ClipError {
    ClipError::Io {
        path,
        source: std::io::Error::new(std::io::ErrorKind::NotFound, what.to_string()),
    }
}

/// The files of the model in `dir`, in the first layout whose files are there.
fn resolve_dir(dir: &Path, id: String) -> Result<ModelFiles> {
    let layout = Layout::detect(&mut |name| dir.join(name).is_file(), &mut |name| {
        read(&dir.join(name))
    })?
    .ok_or_else(|| {
        not_found(
            dir.join(CONFIG_FILE),
            "no model here: neither config.json with model.safetensors (transformers), nor \
             open_clip_config.json with open_clip_model.safetensors (OpenCLIP), nor modules.json \
             (sentence-transformers)",
        )
    })?;
    let file = |name: &str| {
        let p = dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(not_found(p, "model file not found"))
        }
    };
    Ok(ModelFiles {
        id,
        family: layout.family,
        config: file(&layout.config)?,
        weights: file(&layout.weights)?,
        tokenizer: file(&layout.tokenizer)?,
        merges: layout.merges.as_deref().map(file).transpose()?,
    })
}

#[cfg(feature = "hub")]
mod hub {
    use super::*;
    use hf_hub::{Cache, Repo, RepoType, api::sync::ApiBuilder};

    struct Adapter<'a>(&'a mut dyn DownloadProgress);

    impl hf_hub::api::Progress for Adapter<'_> {
        fn init(&mut self, size: usize, filename: &str) {
            self.0.start(filename, size as u64);
        }
        fn update(&mut self, size: usize) {
            self.0.advance(size as u64);
        }
        fn finish(&mut self) {
            self.0.finish();
        }
    }

    pub(super) fn resolve(
        repo_id: &str,
        revision: &str,
        hub_cache: Option<&Path>,
        progress: &mut dyn DownloadProgress,
    ) -> Result<ModelFiles> {
        let repo = Repo::with_revision(repo_id.to_string(), RepoType::Model, revision.to_string());
        let cache = match hub_cache {
            Some(dir) => Cache::new(dir.to_path_buf()),
            None => Cache::from_env(),
        };
        let mut builder = Some(ApiBuilder::from_cache(cache.clone()));
        let cache = cache.repo(repo.clone());
        let mut api = None;
        let mut get = |name: &str| -> Result<PathBuf> {
            // The cache first: a model downloaded once works offline.
            if let Some(p) = cache.get(name) {
                return Ok(p);
            }
            if let Some(mut b) = builder.take() {
                // The same mirror setting as the Python client.
                if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
                    b = b.with_endpoint(endpoint);
                }
                api = Some(
                    b.with_progress(false)
                        .build()
                        .map_err(|e| ClipError::Download(e.to_string()))?,
                );
            }
            let api = api.as_ref().expect("set above");
            api.repo(repo.clone())
                .download_with_progress(name, Adapter(progress))
                .map_err(|e| {
                    ClipError::Download(format!("{repo_id}/{name} (revision {revision}): {e}"))
                })
        };
        let layout = match detect_cached(&cache)? {
            Some(layout) => layout,
            None => detect_online(repo_id, &mut get)?,
        };
        Ok(ModelFiles {
            id: repo_id.to_string(),
            family: layout.family,
            config: get(&layout.config)?,
            weights: get(&layout.weights)?,
            tokenizer: get(&layout.tokenizer)?,
            merges: layout.merges.as_deref().map(&mut get).transpose()?,
        })
    }

    /// The layout whose marker files are all in the cache already: no network (offline
    /// machines, and every later run).
    fn detect_cached(cache: &hf_hub::CacheRepo) -> Result<Option<Layout>> {
        Layout::detect(
            &mut |name| cache.get(name).is_some(),
            &mut |name| match cache.get(name) {
                Some(path) => read(&path),
                None => Err(ClipError::Download(format!("{name} is not cached"))),
            },
        )
    }

    /// The layout by asking the hub: a file exists when it downloads. The first error is kept
    /// for when no layout's files are there.
    fn detect_online(
        repo_id: &str,
        get: &mut dyn FnMut(&str) -> Result<PathBuf>,
    ) -> Result<Layout> {
        let mut first_error = None;
        let found = std::cell::RefCell::new(std::collections::HashMap::new());
        let mut exists = |name: &str| match get(name) {
            Ok(path) => {
                found.borrow_mut().insert(name.to_string(), path);
                true
            }
            Err(e) => {
                first_error.get_or_insert(e);
                false
            }
        };
        let mut fetched = |name: &str| match found.borrow().get(name) {
            Some(path) => read(path),
            None => Err(ClipError::Download(format!("{name} was not fetched"))),
        };
        match Layout::detect(&mut exists, &mut fetched)? {
            Some(layout) => Ok(layout),
            None => Err(first_error
                .unwrap_or_else(|| ClipError::Download(format!("{repo_id}: no model files")))),
        }
    }
}

#[cfg(not(feature = "hub"))]
mod hub {
    use super::*;

    pub(super) fn resolve(
        repo_id: &str,
        _revision: &str,
        _hub_cache: Option<&Path>,
        _progress: &mut dyn DownloadProgress,
    ) -> Result<ModelFiles> {
        Err(ClipError::Download(format!(
            "{repo_id:?} is not a local directory, and this build has no hub support (feature \"hub\")"
        )))
    }
}

/// A loaded model with its tokenizer.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub id: String,
    pub model: ClipModel,
    pub tokenizer: ClipTokenizer,
}

/// Reads and builds the model and tokenizer on `device`, computing in f32.
pub fn load(files: &ModelFiles, device: &Device) -> Result<Loaded> {
    load_as(files, device, DType::F32)
}

/// The model's config, parsed the way of its family.
fn read_config(files: &ModelFiles) -> Result<ClipConfig> {
    files
        .family
        .config(&read(&files.config)?)
        .map_err(|e| in_file(&files.config, e))
}

/// The model's `tokenizer.json` (made from `vocab.json` and `merges.txt`, or from SigLIP's
/// `spiece.model`, where it has those).
fn read_tokenizer(files: &ModelFiles) -> Result<Vec<u8>> {
    let vocab = read(&files.tokenizer)?;
    if files.tokenizer.file_name() == Some(crate::layout::SPIECE_FILE.as_ref()) {
        return crate::spiece::siglip_tokenizer_json(&vocab)
            .map_err(|e| in_file(&files.tokenizer, e));
    }
    match &files.merges {
        None => Ok(vocab),
        Some(merges) => crate::tokenizer::json_from_vocab_merges(&vocab, &read(merges)?)
            .map_err(|e| in_file(merges, e)),
    }
}

/// The model's safetensors weights under transformers' CLIPModel names.
fn read_weights(files: &ModelFiles) -> Result<Vec<u8>> {
    files
        .family
        .weights(read(&files.weights)?)
        .map_err(|e| in_file(&files.weights, e))
}

/// [`load`] computing in `dtype` (f32, or f16 for GPUs: see [`Weights::with_dtype`]).
pub fn load_as(files: &ModelFiles, device: &Device, dtype: DType) -> Result<Loaded> {
    let config = read_config(files)?;
    let tokenizer = ClipTokenizer::from_json(&read_tokenizer(files)?)
        .and_then(|t| t.with_max_len(config.text.max_position_embeddings))
        .map_err(|e| in_file(&files.tokenizer, e))?;
    let weights = Weights::from_safetensors(read_weights(files)?, device)
        .map_err(|e| in_file(&files.weights, e))?
        .with_dtype(dtype);
    let model = ClipModel::new(&config, &weights).map_err(|e| in_file(&files.weights, e))?;
    Ok(Loaded {
        id: files.id.clone(),
        model,
        tokenizer,
    })
}

/// Names the file an error came from.
fn in_file(path: &Path, e: ClipError) -> ClipError {
    match e {
        ClipError::Io { .. } => e,
        other => ClipError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// The text encoder of `variant` in the browser bundle written to `dir` by
/// [`write_browser_bundle`], every token row loaded (tests, benchmarks, native checks).
pub fn bundle_text_encoder(dir: &Path, variant: Variant) -> Result<crate::TextEncoder> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|source| ClipError::Io { path, source })
    };
    let manifest: Manifest = serde_json::from_slice(&read("manifest.json")?)
        .map_err(|e| ClipError::Input(format!("{}: {e}", dir.join("manifest.json").display())))?;
    let config = ClipConfig::from_json(&read(&manifest.config.file)?)?;
    let entry = manifest.variants.get(&variant).ok_or_else(|| {
        ClipError::Input(format!(
            "the bundle in {} has no {variant} variant",
            dir.display()
        ))
    })?;
    let rows = match &manifest.token_rows {
        Some(r) => Some(Arc::new(TokenRows::from_file(
            &read(&r.file.file)?,
            r.rows,
            r.dim,
            r.format,
        )?)),
        None => None,
    };
    export::text_encoder(&config, variant, read(&entry.file)?, rows, &Device::Cpu)
}

/// Writes the browser bundle into `out`: `config.json`, `tokenizer.json`, one text-tower file per
/// variant and `manifest.json` (written last, so a reader never sees a manifest whose files are
/// missing). Returns the manifest. Whatever the family, the bundle is in transformers' layout:
/// its `config.json` is the checkpoint's own (CLIP, SigLIP) or [`ClipConfig::to_json`]
/// (OpenCLIP), its `tokenizer.json` the checkpoint's or the one made from its slow tokenizer's
/// files, and its tensors have the Hugging Face names.
pub fn write_browser_bundle(
    files: &ModelFiles,
    variants: &[Variant],
    out: &Path,
) -> Result<Manifest> {
    let config = read_config(files)?;
    let config_bytes = match files.family {
        Family::Transformers | Family::SentenceTransformers | Family::Siglip => {
            read(&files.config)?
        }
        Family::OpenClip => serde_json::to_vec_pretty(&config.to_json())
            .map_err(|e| ClipError::Input(e.to_string()))?,
    };
    let tokenizer_bytes = read_tokenizer(files)?;
    ClipTokenizer::from_json(&tokenizer_bytes).map_err(|e| in_file(&files.tokenizer, e))?;
    let checkpoint = read_weights(files)?;
    std::fs::create_dir_all(out).map_err(|source| ClipError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let write = |name: &str, data: &[u8]| -> Result<FileEntry> {
        let path = out.join(name);
        let tmp = out.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, data)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| ClipError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(FileEntry::describe(name, data))
    };
    let mut variant_entries = std::collections::BTreeMap::new();
    for &v in variants {
        let data = export::export_text(&checkpoint, v).map_err(|e| in_file(&files.weights, e))?;
        variant_entries.insert(v, write(export::file_name(v), &data)?);
    }
    let token_rows = if variants.iter().any(|&v| export::is_gguf(v)) {
        let rows =
            export::export_token_rows(&checkpoint).map_err(|e| in_file(&files.weights, e))?;
        let entry = export::RowsEntry::describe(&rows);
        write(export::TOKEN_ROWS_FILE, &rows.bytes)?;
        Some(entry)
    } else {
        None
    };
    let manifest = Manifest {
        model_id: files.id.clone(),
        dim: config.projection_dim,
        context_length: config.text.max_position_embeddings,
        config: write(CONFIG_FILE, &config_bytes)?,
        tokenizer: write(TOKENIZER_FILE, &tokenizer_bytes)?,
        variants: variant_entries,
        token_rows,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| ClipError::Input(e.to_string()))?;
    write("manifest.json", &json)?;
    Ok(manifest)
}
