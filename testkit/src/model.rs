//! The model the tests run: the tiny fixture CLIP, loaded natively (for the server's text
//! encoder and ingest), as the collection spec it implies, and written out as the browser's
//! bundle (every text-tower variant and the manifest).

use std::path::Path;

use clip::export::Variant;
use clip::load::{Loaded, ModelFiles, ModelSource, NoProgress, resolve, write_browser_bundle};
use proxy::model::{collection_spec, load_model};
use proxy::store::CollectionSpec;

use crate::paths::tiny_model_dir;

/// The tiny fixture CLIP, loaded on the CPU.
pub fn tiny_model() -> Loaded {
    load_model_dir(&tiny_model_dir())
}

/// The model in the directory `dir`, loaded on the CPU.
pub fn load_model_dir(dir: &Path) -> Loaded {
    load_model(
        &dir.display().to_string(),
        &clip::Device::Cpu,
        &mut NoProgress,
    )
    .unwrap_or_else(|e| panic!("the model in {}: {e}", dir.display()))
}

/// The collection spec (`images`) of a loaded model.
pub fn tiny_spec(loaded: &Loaded) -> CollectionSpec {
    collection_spec("images", loaded)
}

/// The tiny fixture CLIP's files.
pub fn tiny_model_files() -> ModelFiles {
    resolve(&ModelSource::Dir(tiny_model_dir()), &mut NoProgress).expect("the tiny fixture model")
}

/// Writes the browser bundle of the tiny fixture CLIP (every variant) into `out`.
pub fn write_tiny_bundle(out: &Path) {
    write_browser_bundle(&tiny_model_files(), &Variant::ALL, out)
        .unwrap_or_else(|e| panic!("writing the tiny model bundle: {e}"));
}
