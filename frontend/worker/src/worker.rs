//! The model worker: runs in a Web Worker so that downloading, hashing and running the CLIP text
//! tower never freezes typing or scrolling. It asks the proxy's `GET /api/model` for the model's
//! files, takes each from Cache Storage when it is there (keyed by the file's sha256, so a new
//! model is a new key and an old one is pruned) or downloads it with progress, checks its size and
//! sha256 against the manifest, builds the tokenizer and text encoder, and answers `Embed`
//! messages with unit-length vectors.
//!
//! It speaks only [`wire::worker`]; it knows nothing of the page, and the page (another crate)
//! knows nothing of `clip`.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::rc::Rc;

use clip::export::sha256_hex;
use clip::{ClipConfig, ClipTokenizer, Device, TextEncoder, Weights};
use js_sys::{Array, Reflect, Uint8Array};
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{
    Cache, DedicatedWorkerGlobalScope, MessageEvent, Request, RequestCache, RequestInit, Response,
};

use wire::worker::{FromWorker, ToWorker, VariantInfo};
use wire::{FileRef, ModelManifest, Variant, join_url};

/// The Cache Storage bucket of model files. Bump the suffix if the key scheme ever changes.
const CACHE_NAME: &str = "text2img-model-v1";
/// Cache keys are `<origin>/.text2img-model/<sha256>`: never fetched, only looked up.
const CACHE_PREFIX: &str = "/.text2img-model/";
/// Progress messages at most this often (a 68 MB download arrives in ~1000 chunks).
const PROGRESS_EVERY_MS: f64 = 100.0;

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

/// A ready text model.
#[derive(Debug)]
struct Model {
    tokenizer: ClipTokenizer,
    encoder: TextEncoder,
}

impl Model {
    fn embed(&self, text: &str) -> clip::Result<Vec<f32>> {
        let ids = self.tokenizer.encode(text)?;
        let mut rows = self.encoder.embed(&[ids])?;
        Ok(rows.pop().unwrap_or_default())
    }
}

/// The worker's state between messages (the worker has one thread).
#[derive(Debug, Default)]
struct State {
    /// Bumped by every `Load`; a load that finds a newer one started drops its result.
    generation: u32,
    model: Option<Rc<Model>>,
    loading: bool,
    /// The last load's error, for `Embed`s that arrive after it.
    failed: Option<String>,
    /// `Embed`s that arrived before the first model was ready.
    queue: Vec<(u32, String)>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn post(message: &FromWorker) {
    // Posting a string to the page cannot fail while the worker runs.
    let _ = scope().post_message(&JsValue::from_str(&message.to_json()));
}

fn now_ms() -> f64 {
    scope().performance().map(|p| p.now()).unwrap_or(0.0)
}

/// The worker's entry point: listen for the page's messages and say so.
pub fn run() {
    console_error_panic_hook::set_once();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        let Some(text) = event.data().as_string() else {
            return;
        };
        match serde_json::from_str::<ToWorker>(&text) {
            Ok(message) => handle(message),
            // Only the page talks to this worker: a bad message is a bug worth seeing.
            Err(e) => web_sys_log(&format!(
                "text2img worker: unreadable message {text:?}: {e}"
            )),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    post(&FromWorker::Started);
}

fn web_sys_log(message: &str) {
    // `console.warn` without pulling in web-sys's Console feature for one call.
    if let Ok(console) = Reflect::get(&js_sys::global(), &"console".into())
        && let Ok(warn) = Reflect::get(&console, &"warn".into())
        && let Some(warn) = warn.dyn_ref::<js_sys::Function>()
    {
        let _ = warn.call1(&console, &message.into());
    }
}

fn handle(message: ToWorker) {
    match message {
        ToWorker::Load { api_base, variant } => {
            let generation = STATE.with_borrow_mut(|s| {
                s.generation += 1;
                s.loading = true;
                s.failed = None;
                s.generation
            });
            spawn_local(async move {
                let result = load(&api_base, variant).await;
                if STATE.with_borrow(|s| s.generation) != generation {
                    return;
                }
                match result {
                    Ok((model, ready)) => {
                        let queued = STATE.with_borrow_mut(|s| {
                            s.model = Some(Rc::new(model));
                            s.loading = false;
                            std::mem::take(&mut s.queue)
                        });
                        post(&ready);
                        for (id, text) in queued {
                            embed(id, &text);
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        let queued = STATE.with_borrow_mut(|s| {
                            s.loading = false;
                            s.failed = Some(message.clone());
                            std::mem::take(&mut s.queue)
                        });
                        post(&FromWorker::LoadFailed {
                            message: message.clone(),
                        });
                        for (id, _) in queued {
                            post(&FromWorker::EmbedFailed {
                                id,
                                message: message.clone(),
                            });
                        }
                    }
                }
            });
        }
        ToWorker::Embed { id, text } => {
            // A loaded model answers at once, even while another variant loads.
            let waiting = STATE.with_borrow_mut(|s| {
                if s.model.is_none() && s.loading {
                    s.queue.push((id, text.clone()));
                    true
                } else {
                    false
                }
            });
            if !waiting {
                embed(id, &text);
            }
        }
    }
}

fn embed(id: u32, text: &str) {
    let (model, failed) = STATE.with_borrow(|s| (s.model.clone(), s.failed.clone()));
    let Some(model) = model else {
        let message = failed.unwrap_or_else(|| "the model is not loaded".into());
        post(&FromWorker::EmbedFailed { id, message });
        return;
    };
    let start = now_ms();
    match model.embed(text) {
        Ok(vector) => post(&FromWorker::Embedded {
            id,
            vector,
            millis: now_ms() - start,
        }),
        Err(e) => post(&FromWorker::EmbedFailed {
            id,
            message: e.to_string(),
        }),
    }
}

/// Manifest → files (cache or network, checked) → model.
async fn load(api_base: &str, wanted: Option<Variant>) -> Result<(Model, FromWorker), LoadError> {
    let start = now_ms();
    let info = fetch_model_info(api_base).await?;
    let offered = |v: &Variant| info.variants.contains_key(v);
    let variant = wanted
        .filter(offered)
        .or(info.default_variant.filter(offered))
        .or_else(|| info.variants.keys().next().copied())
        .ok_or_else(|| LoadError::Model("the server's model lists no text-model variant".into()))?;
    let weights_ref = info.variants[&variant].clone();
    post(&FromWorker::Manifest {
        model_id: info.model_id.clone(),
        variants: info
            .variants
            .iter()
            .map(|(&name, f)| VariantInfo {
                name,
                bytes: f.bytes,
            })
            .collect(),
        variant,
    });

    let cache = open_cache().await;
    if let Some(cache) = &cache {
        let keep: BTreeSet<&str> = [&info.config, &info.tokenizer]
            .into_iter()
            .chain(info.variants.values())
            .map(|f| f.sha256.as_str())
            .collect();
        prune_cache(cache, &keep).await;
    }
    let files = [&info.config, &info.tokenizer, &weights_ref];
    let mut progress = Progress {
        loaded: 0,
        total: files.iter().map(|f| f.bytes).sum(),
        last_post: f64::NEG_INFINITY,
    };
    let (mut downloaded, mut cached) = (0, 0);
    let mut contents = Vec::with_capacity(files.len());
    for file in files {
        let (bytes, from_cache) =
            fetch_checked(api_base, file, cache.as_ref(), &mut progress).await?;
        if from_cache {
            cached += file.bytes;
        } else {
            downloaded += file.bytes;
        }
        contents.push(bytes);
    }
    progress.post(true);
    let weights = contents.pop().unwrap_or_default();
    let tokenizer = contents.pop().unwrap_or_default();
    let config = contents.pop().unwrap_or_default();

    let model = build(&config, &tokenizer, weights, variant, info.dim)?;
    let ready = FromWorker::Ready {
        model_id: info.model_id,
        variant,
        dim: info.dim,
        downloaded,
        cached,
        millis: now_ms() - start,
    };
    Ok((model, ready))
}

fn build(
    config: &[u8],
    tokenizer: &[u8],
    weights: Vec<u8>,
    variant: Variant,
    dim: usize,
) -> Result<Model, LoadError> {
    let model_err = |e: clip::ClipError| LoadError::Model(e.to_string());
    let config = ClipConfig::from_json(config).map_err(model_err)?;
    let tokenizer = ClipTokenizer::from_json(tokenizer)
        .and_then(|t| t.with_max_len(config.text.max_position_embeddings))
        .map_err(model_err)?;
    let weights = if variant == Variant::Q8 {
        Weights::from_gguf(&weights, &Device::Cpu)
    } else {
        Weights::from_safetensors(weights, &Device::Cpu)
    }
    .map_err(model_err)?;
    let encoder =
        TextEncoder::new(&config.text, config.projection_dim, &weights).map_err(model_err)?;
    if encoder.dim() != dim {
        return Err(LoadError::Model(format!(
            "the model makes {}-value vectors, the server says {dim}",
            encoder.dim()
        )));
    }
    let model = Model { tokenizer, encoder };
    // The first run pays for one-time set-up (the tokenizer's regex caches, allocations): do it
    // now, while the page says "loading", rather than in the user's first query.
    model.embed("a photo").map_err(model_err)?;
    Ok(model)
}

/// Bytes of the model's files seen so far, posted to the page now and then.
#[derive(Debug)]
struct Progress {
    loaded: u64,
    total: u64,
    last_post: f64,
}

impl Progress {
    fn advance(&mut self, bytes: u64) {
        self.loaded += bytes;
        self.post(false);
    }

    fn post(&mut self, force: bool) {
        let now = now_ms();
        if force || now - self.last_post >= PROGRESS_EVERY_MS {
            self.last_post = now;
            post(&FromWorker::Progress {
                loaded: self.loaded,
                total: self.total,
            });
        }
    }
}

async fn fetch_model_info(api_base: &str) -> Result<ModelManifest, LoadError> {
    let url = join_url(api_base, "/api/model");
    let no_model = |reason: String| LoadError::NoModel {
        url: url.clone(),
        reason,
    };
    let response = fetch(&url).await.map_err(|e| no_model(e.to_string()))?;
    let status = response.status();
    if status == 404 {
        return Err(no_model(
            "answered 404: the proxy has no browser model".into(),
        ));
    }
    if !response.ok() {
        return Err(no_model(format!("answered HTTP {status}")));
    }
    let bytes = read_body(&response, &url, None)
        .await
        .map_err(|e| no_model(e.to_string()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| no_model(format!("did not answer with a model description ({e})")))
}

/// A file of the model: from the cache when it holds it whole, else downloaded, checked, and
/// put in the cache. The second value says whether it came from the cache.
async fn fetch_checked(
    api_base: &str,
    file: &FileRef,
    cache: Option<&Cache>,
    progress: &mut Progress,
) -> Result<(Vec<u8>, bool), LoadError> {
    let key = cache_key(&file.sha256);
    if let Some(cache) = cache
        && let Some(bytes) = cached(cache, &key).await
    {
        // Only checked files are ever put in the cache, under their sha256: the length is enough
        // to catch a truncated entry without hashing 68 MB on every start.
        if bytes.len() as u64 == file.bytes {
            progress.advance(file.bytes);
            return Ok((bytes, true));
        }
        let _ = JsFuture::from(cache.delete_with_str(&key)).await;
    }
    let url = join_url(api_base, &file.url);
    let fetch_err = |reason: String| LoadError::Fetch {
        url: url.clone(),
        reason,
    };
    let response = fetch(&url).await.map_err(|e| fetch_err(e.to_string()))?;
    if !response.ok() {
        return Err(fetch_err(format!("HTTP {}", response.status())));
    }
    let bytes = read_body(&response, &url, Some((file.bytes, progress))).await?;
    if bytes.len() as u64 != file.bytes {
        return Err(LoadError::Integrity {
            url,
            reason: format!(
                "{} bytes, expected {} (the download broke off?)",
                bytes.len(),
                file.bytes
            ),
        });
    }
    let sha = sha256_hex(&bytes);
    if sha != file.sha256 {
        return Err(LoadError::Integrity {
            url,
            reason: format!("sha256 {sha}, expected {}", file.sha256),
        });
    }
    if let Some(cache) = cache {
        store_in_cache(cache, &key, &bytes).await;
    }
    Ok((bytes, false))
}

#[derive(Debug)]
struct JsError(String);

impl fmt::Display for JsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<JsValue> for JsError {
    fn from(value: JsValue) -> Self {
        let text = value
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .or_else(|| value.as_string())
            .unwrap_or_else(|| format!("{value:?}"));
        JsError(text)
    }
}

/// A GET that bypasses the HTTP cache: the model files live in Cache Storage, and a second copy
/// in the HTTP cache would only double the disk they take.
async fn fetch(url: &str) -> Result<Response, JsError> {
    let init = RequestInit::new();
    init.set_cache(RequestCache::NoStore);
    let response = JsFuture::from(scope().fetch_with_str_and_init(url, &init)).await?;
    Ok(response.unchecked_into())
}

/// The body, read chunk by chunk so that progress moves and an over-long body stops early.
async fn read_body(
    response: &Response,
    url: &str,
    mut expect: Option<(u64, &mut Progress)>,
) -> Result<Vec<u8>, LoadError> {
    let broke = |e: JsError| LoadError::Fetch {
        url: url.to_string(),
        reason: format!("the download broke off: {e}"),
    };
    let Some(body) = response.body() else {
        return Ok(Vec::new());
    };
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let capacity = expect.as_ref().map_or(0, |(n, _)| *n as usize);
    let mut bytes = Vec::with_capacity(capacity);
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|e| broke(e.into()))?;
        let done = Reflect::get(&chunk, &"done".into())
            .map_err(|e| broke(e.into()))?
            .as_bool()
            .unwrap_or(true);
        if done {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into())
            .map_err(|e| broke(e.into()))?
            .unchecked_into();
        let start = bytes.len();
        bytes.resize(start + value.length() as usize, 0);
        value.copy_to(&mut bytes[start..]);
        if let Some((expected, progress)) = expect.as_mut() {
            if bytes.len() as u64 > *expected {
                let _ = reader.cancel();
                return Err(LoadError::Integrity {
                    url: url.to_string(),
                    reason: format!("more than the {expected} bytes the manifest lists"),
                });
            }
            progress.advance(u64::from(value.length()));
        }
    }
    Ok(bytes)
}

fn cache_key(sha256: &str) -> String {
    let origin = scope().location().origin();
    format!("{origin}{CACHE_PREFIX}{sha256}")
}

/// The model cache, or `None` where the browser has no Cache Storage (e.g. a non-secure origin
/// other than localhost): then every start downloads.
async fn open_cache() -> Option<Cache> {
    let storage = scope().caches().ok()?;
    let cache = JsFuture::from(storage.open(CACHE_NAME)).await.ok()?;
    cache.dyn_into().ok()
}

async fn cached(cache: &Cache, key: &str) -> Option<Vec<u8>> {
    let found = JsFuture::from(cache.match_with_str(key)).await.ok()?;
    let response: Response = found.dyn_into().ok()?;
    let buffer = JsFuture::from(response.array_buffer().ok()?).await.ok()?;
    Some(Uint8Array::new(&buffer).to_vec())
}

async fn store_in_cache(cache: &Cache, key: &str, bytes: &[u8]) {
    let body = Uint8Array::from(bytes);
    let stored = match Response::new_with_opt_buffer_source(Some(&body)) {
        Ok(response) => JsFuture::from(cache.put_with_str(key, &response))
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    // A full quota only costs the next start a download.
    if let Err(e) = stored {
        web_sys_log(&format!(
            "text2img worker: cannot cache the model file ({}); the next start downloads it again",
            JsError::from(e)
        ));
    }
}

/// Drops cached files that the server's model no longer lists (an older model).
async fn prune_cache(cache: &Cache, keep: &BTreeSet<&str>) {
    let Ok(keys) = JsFuture::from(cache.keys()).await else {
        return;
    };
    for request in Array::from(&keys).iter() {
        let Some(url) = request.dyn_ref::<Request>().map(Request::url) else {
            continue;
        };
        let sha = url.rsplit('/').next().unwrap_or_default();
        if url.contains(CACHE_PREFIX) && !keep.contains(sha) {
            let _ = JsFuture::from(cache.delete_with_str(&url)).await;
        }
    }
}
