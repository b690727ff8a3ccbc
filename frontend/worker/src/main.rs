//! The model worker: runs in a Web Worker (trunk builds this binary with `data-type="worker"`)
//! so that downloading, hashing and running the CLIP text tower never freezes typing or
//! scrolling. It asks the proxy's `GET /api/model` for the model's files, takes each from Cache
//! Storage when it is there ([`cache`]) or downloads it with progress ([`download`]), checks its
//! size and sha256 against the manifest, builds the tokenizer and text encoder ([`model`]), and
//! answers `Embed` messages with unit-length vectors ([`messages`]), fetching the token rows a
//! query needs first ([`rows`]).
//!
//! It speaks only [`wire::worker`]; it knows nothing of the page, and the page (another crate)
//! knows nothing of `clip`.

mod cache;
mod download;
mod load;
mod messages;
mod model;
mod rows;
mod scope;

fn main() {
    messages::run();
}
