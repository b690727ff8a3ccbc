//! bundle: which browser model files does this server offer?
//!
//! The browser's model bundle is a directory written by `proxy export-model`: `manifest.json`
//! (model id, dimensions, and the sha256 and size of each file), the config, the tokenizer and
//! the text tower in one or more variants. The HTTP layer serves it; this module reads it.

use std::path::{Path, PathBuf};

/// The browser's model bundle.
#[derive(Debug, Clone)]
pub struct ModelBundle {
    pub dir: PathBuf,
    pub manifest: clip::export::Manifest,
}

impl ModelBundle {
    /// Read `dir/manifest.json`.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e} (write it with `proxy export-model`)",
                path.display()
            )
        })?;
        let manifest =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// The sha256 of a bundle file, when the manifest lists it.
    pub fn sha256_of(&self, file: &str) -> Option<&str> {
        let m = &self.manifest;
        std::iter::once(&m.config)
            .chain(std::iter::once(&m.tokenizer))
            .chain(m.variants.values())
            .chain(m.token_rows.iter().map(|r| &r.file))
            .find(|e| e.file == file)
            .map(|e| e.sha256.as_str())
    }
}
