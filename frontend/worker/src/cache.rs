//! The model files in Cache Storage, keyed by sha256: `<origin>/.text2img-model/<sha256>`, so
//! the same file is found whatever URL served it and a new model is a new key. Only files whose
//! size and sha256 matched the manifest are stored, so a cached file is checked by its length
//! alone; keys the current manifest does not list (an older model) are deleted.

use std::collections::BTreeSet;

use js_sys::{Array, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Request, Response};
use wire::FileRef;

use crate::scope::{JsError, global, warn};

/// The Cache Storage bucket of model files. Bump the suffix if the key scheme ever changes.
const CACHE_NAME: &str = "text2img-model-v1";
/// Cache keys are `<origin>/.text2img-model/<sha256>`: never fetched, only looked up.
const CACHE_PREFIX: &str = "/.text2img-model/";

fn key(sha256: &str) -> String {
    let origin = global().location().origin();
    format!("{origin}{CACHE_PREFIX}{sha256}")
}

/// The model cache, or `None` where the browser has no Cache Storage (e.g. a non-secure origin
/// other than localhost): then every start downloads.
pub async fn open() -> Option<Cache> {
    let storage = global().caches().ok()?;
    let cache = JsFuture::from(storage.open(CACHE_NAME)).await.ok()?;
    cache.dyn_into().ok()
}

/// `file`'s bytes when the cache holds it whole. A truncated entry is deleted.
pub async fn lookup(cache: &Cache, file: &FileRef) -> Option<Vec<u8>> {
    let key = key(&file.sha256);
    let bytes = read(cache, &key).await?;
    // Only checked files are ever put in the cache, under their sha256: the length is enough to
    // catch a truncated entry without hashing 68 MB on every start.
    if bytes.len() as u64 == file.bytes {
        return Some(bytes);
    }
    let _ = JsFuture::from(cache.delete_with_str(&key)).await;
    None
}

async fn read(cache: &Cache, key: &str) -> Option<Vec<u8>> {
    let found = JsFuture::from(cache.match_with_str(key)).await.ok()?;
    let response: Response = found.dyn_into().ok()?;
    let buffer = JsFuture::from(response.array_buffer().ok()?).await.ok()?;
    Some(Uint8Array::new(&buffer).to_vec())
}

/// Keeps a checked file. A full quota only costs the next start a download.
pub async fn store(cache: &Cache, sha256: &str, bytes: &[u8]) {
    let body = Uint8Array::from(bytes);
    let stored = match Response::new_with_opt_buffer_source(Some(&body)) {
        Ok(response) => JsFuture::from(cache.put_with_str(&key(sha256), &response))
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        warn(&format!(
            "text2img worker: cannot cache the model file ({}); the next start downloads it again",
            JsError::from(e)
        ));
    }
}

/// Drops cached files whose sha256 is not in `keep` (an older model's).
pub async fn prune(cache: &Cache, keep: &BTreeSet<&str>) {
    let Ok(keys) = JsFuture::from(cache.keys()).await else {
        return;
    };
    for request in Array::from(&keys).iter() {
        let Some(url) = request.dyn_ref::<Request>().map(Request::url) else {
            continue;
        };
        if stale(&url, keep) {
            let _ = JsFuture::from(cache.delete_with_str(&url)).await;
        }
    }
}

/// Whether the cache key `url` is a model file outside `keep`.
fn stale(url: &str, keep: &BTreeSet<&str>) -> bool {
    let sha = url.rsplit('/').next().unwrap_or_default();
    url.contains(CACHE_PREFIX) && !keep.contains(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_other_models_files_are_stale() {
        let keep = BTreeSet::from(["aa", "bb"]);
        assert!(!stale("https://x.org/.text2img-model/aa", &keep));
        assert!(stale("https://x.org/.text2img-model/cc", &keep));
        assert!(!stale("https://x.org/other/cc", &keep));
    }
}
