//! Downloads from the proxy: the manifest (`GET /api/model`) and each model file, streamed chunk
//! by chunk so the page's progress bar moves, stopped as soon as it is longer than the manifest
//! says, and checked against the manifest's size and sha256 before anyone uses it. Requests
//! bypass the HTTP cache: the files live in Cache Storage, and a second copy in the HTTP cache
//! would only double the disk they take.

use clip::export::sha256_hex;
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, RequestCache, RequestInit, Response};
use wire::worker::FromWorker;
use wire::{FileRef, ModelManifest, join_url};

use crate::load::LoadError;
use crate::scope::{JsError, global, now_ms, post};

/// Progress messages at most this often (a 68 MB download arrives in ~1000 chunks).
const PROGRESS_EVERY_MS: f64 = 100.0;

/// Bytes of the model's files seen so far (from the cache or the network), posted to the page
/// now and then.
#[derive(Debug)]
pub struct Progress {
    loaded: u64,
    total: u64,
    last_post: f64,
}

impl Progress {
    pub fn new(total: u64) -> Self {
        Progress {
            loaded: 0,
            total,
            last_post: f64::NEG_INFINITY,
        }
    }

    pub fn advance(&mut self, bytes: u64) {
        self.loaded += bytes;
        self.post(false);
    }

    /// Posts the count; unless `force`, only when the last post is old enough.
    pub fn post(&mut self, force: bool) {
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

/// `GET /api/model`.
pub async fn manifest(api_base: &str) -> Result<ModelManifest, LoadError> {
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

/// A model file from the network, with its size and sha256 checked against `file`.
pub async fn checked(
    api_base: &str,
    file: &FileRef,
    progress: &mut Progress,
) -> Result<Vec<u8>, LoadError> {
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
    Ok(bytes)
}

/// A GET that bypasses the HTTP cache.
async fn fetch(url: &str) -> Result<Response, JsError> {
    let init = RequestInit::new();
    init.set_cache(RequestCache::NoStore);
    let response = JsFuture::from(global().fetch_with_str_and_init(url, &init)).await?;
    Ok(response.unchecked_into())
}

/// The body, read chunk by chunk. With `expect` (the manifest's size), progress moves and an
/// over-long body stops early.
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
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let capacity = expect.as_ref().map_or(0, |(n, _)| *n as usize);
    let mut bytes = Vec::with_capacity(capacity);
    while let Some(chunk) = next_chunk(&reader).await.map_err(broke)? {
        let start = bytes.len();
        bytes.resize(start + chunk.length() as usize, 0);
        chunk.copy_to(&mut bytes[start..]);
        if let Some((expected, progress)) = expect.as_mut() {
            if bytes.len() as u64 > *expected {
                let _ = reader.cancel();
                return Err(LoadError::Integrity {
                    url: url.to_string(),
                    reason: format!("more than the {expected} bytes the manifest lists"),
                });
            }
            progress.advance(u64::from(chunk.length()));
        }
    }
    Ok(bytes)
}

/// The stream's next chunk, or `None` at its end.
async fn next_chunk(reader: &ReadableStreamDefaultReader) -> Result<Option<Uint8Array>, JsError> {
    let chunk = JsFuture::from(reader.read()).await?;
    let done = Reflect::get(&chunk, &"done".into())?
        .as_bool()
        .unwrap_or(true);
    if done {
        return Ok(None);
    }
    Ok(Some(
        Reflect::get(&chunk, &"value".into())?.unchecked_into(),
    ))
}
