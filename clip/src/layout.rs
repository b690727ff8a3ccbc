//! Which files a checkpoint consists of, which model family they make, and how that family's
//! config and tensor names become the Hugging Face CLIPModel the model code reads. Decided by
//! the checkpoint's own files, in this order:
//!
//! 1. `config.json` + `model.safetensors`: transformers' CLIP ([`Family::Transformers`]);
//! 2. `open_clip_config.json` + `open_clip_model.safetensors`: OpenCLIP ([`Family::OpenClip`],
//!    see [`crate::open_clip`]); hub repositories of LAION models ship both layouts, and the
//!    first wins;
//! 3. `modules.json` naming one `CLIPModel` module (sentence-transformers, as
//!    `sentence-transformers/clip-ViT-B-32` ships): the transformers files inside that module's
//!    folder ([`Family::SentenceTransformers`]).
//!
//! Every family reads the tokenizer from a `tokenizer.json` beside its config; a transformers
//! folder without one may have the slow tokenizer's `vocab.json` + `merges.txt` instead (see
//! [`crate::tokenizer::json_from_vocab_merges`]). No I/O here: the caller says which files exist
//! and hands over their bytes ([`crate::load`] does, from a directory or the hub).

use serde::Deserialize;

use crate::config::ClipConfig;
use crate::error::{ClipError, Result};
use crate::open_clip;

/// A checkpoint layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// transformers' `CLIPModel` files.
    Transformers,
    /// open_clip's own files (ViT towers).
    OpenClip,
    /// A sentence-transformers model whose one module is a `CLIPModel`.
    SentenceTransformers,
}

/// The transformers layout's config file.
pub const CONFIG_FILE: &str = "config.json";
/// The transformers layout's weights file.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The tokenizer file of every layout.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The sentence-transformers layout's list of modules.
pub const MODULES_FILE: &str = "modules.json";
/// A slow tokenizer's vocabulary, used when there is no `tokenizer.json`.
pub const VOCAB_FILE: &str = "vocab.json";
/// A slow tokenizer's merges, used when there is no `tokenizer.json`.
pub const MERGES_FILE: &str = "merges.txt";

/// The files of a checkpoint, relative to its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub family: Family,
    pub config: String,
    pub weights: String,
    /// `tokenizer.json`, or `vocab.json` when [`Self::merges`] is set.
    pub tokenizer: String,
    /// `merges.txt` for a folder with the slow tokenizer's files instead of `tokenizer.json`.
    pub merges: Option<String>,
}

impl Layout {
    /// The layout of the first family whose marker files exist (`exists` answers for a path
    /// relative to the root). `modules` reads `modules.json` when it is the one found. `None`
    /// when no family's files are there.
    pub fn detect(
        exists: &mut dyn FnMut(&str) -> bool,
        modules: &mut dyn FnMut() -> Result<Vec<u8>>,
    ) -> Result<Option<Layout>> {
        if exists(CONFIG_FILE) && exists(WEIGHTS_FILE) {
            return Ok(Some(Self::transformers(Family::Transformers, "", exists)));
        }
        if exists(open_clip::CONFIG_FILE) && exists(open_clip::WEIGHTS_FILE) {
            return Ok(Some(Layout {
                family: Family::OpenClip,
                config: open_clip::CONFIG_FILE.into(),
                weights: open_clip::WEIGHTS_FILE.into(),
                tokenizer: TOKENIZER_FILE.into(),
                merges: None,
            }));
        }
        if exists(MODULES_FILE) {
            let folder = clip_module_folder(&modules()?)?;
            return Ok(Some(Self::transformers(
                Family::SentenceTransformers,
                &format!("{folder}/"),
                exists,
            )));
        }
        Ok(None)
    }

    /// The transformers files in `folder` (empty, or ending in `/`).
    fn transformers(family: Family, folder: &str, exists: &mut dyn FnMut(&str) -> bool) -> Layout {
        let path = |name: &str| format!("{folder}{name}");
        let slow = !exists(&path(TOKENIZER_FILE))
            && exists(&path(VOCAB_FILE))
            && exists(&path(MERGES_FILE));
        Layout {
            family,
            config: path(CONFIG_FILE),
            weights: path(WEIGHTS_FILE),
            tokenizer: path(if slow { VOCAB_FILE } else { TOKENIZER_FILE }),
            merges: slow.then(|| path(MERGES_FILE)),
        }
    }
}

#[derive(Deserialize)]
struct Module {
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

/// The folder of the `CLIPModel` module in a sentence-transformers `modules.json`. A
/// `Normalize` module after it is accepted (the product normalises anyway); any other module
/// (pooling, dense layers, a different text model) is another architecture.
pub fn clip_module_folder(modules_json: &[u8]) -> Result<String> {
    let modules: Vec<Module> = serde_json::from_slice(modules_json)
        .map_err(|e| ClipError::Config(format!("{MODULES_FILE}: {e}")))?;
    let is = |m: &Module, class: &str| m.kind.rsplit('.').next() == Some(class);
    if let Some(other) = modules
        .iter()
        .find(|m| !is(m, "CLIPModel") && !is(m, "Normalize"))
    {
        return Err(ClipError::UnsupportedArchitecture(format!(
            "sentence-transformers module {:?} (only a CLIPModel, optionally normalised)",
            other.kind
        )));
    }
    let clip: Vec<&Module> = modules.iter().filter(|m| is(m, "CLIPModel")).collect();
    match clip.as_slice() {
        [one] if !one.path.contains("..") => Ok(one.path.trim_end_matches('/').to_string()),
        _ => Err(ClipError::UnsupportedArchitecture(format!(
            "{MODULES_FILE} with {} CLIPModel modules (one is needed)",
            clip.len()
        ))),
    }
}

impl Family {
    /// Parses the family's config file.
    pub fn config(self, bytes: &[u8]) -> Result<ClipConfig> {
        match self {
            Family::Transformers | Family::SentenceTransformers => ClipConfig::from_json(bytes),
            Family::OpenClip => open_clip::config_from_json(bytes),
        }
    }

    /// The family's safetensors weights under transformers' CLIPModel names: the bytes
    /// themselves for the transformers layouts, a renamed copy for OpenCLIP.
    pub fn weights(self, bytes: Vec<u8>) -> Result<Vec<u8>> {
        match self {
            Family::Transformers | Family::SentenceTransformers => Ok(bytes),
            Family::OpenClip => open_clip::to_transformers(&bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(files: &[&str], modules: &str) -> Result<Option<Layout>> {
        Layout::detect(&mut |f| files.contains(&f), &mut || {
            Ok(modules.as_bytes().to_vec())
        })
    }

    #[test]
    fn families_are_told_by_their_files() {
        let st = r#"[{"idx":0,"name":"0","path":"0_CLIPModel","type":"sentence_transformers.models.CLIPModel"}]"#;
        let family = |files: &[&str]| detect(files, st).unwrap().map(|l| l.family);
        assert_eq!(
            family(&["config.json", "model.safetensors", "open_clip_config.json"]),
            Some(Family::Transformers)
        );
        assert_eq!(
            family(&[
                "config.json",
                "open_clip_config.json",
                "open_clip_model.safetensors"
            ]),
            Some(Family::OpenClip)
        );
        let layout = detect(&["modules.json"], st).unwrap().unwrap();
        assert_eq!(layout.weights, "0_CLIPModel/model.safetensors");
        assert_eq!(layout.tokenizer, "0_CLIPModel/tokenizer.json");
        assert_eq!(family(&["pytorch_model.bin"]), None);
        // The slow tokenizer's files where there is no tokenizer.json.
        let files = [
            "modules.json",
            "0_CLIPModel/vocab.json",
            "0_CLIPModel/merges.txt",
        ];
        let layout = detect(&files, st).unwrap().unwrap();
        assert_eq!(
            (layout.tokenizer.as_str(), layout.merges.as_deref()),
            ("0_CLIPModel/vocab.json", Some("0_CLIPModel/merges.txt"))
        );
    }

    #[test]
    fn other_sentence_transformers_are_refused() {
        let multilingual = r#"[{"path":"0_Transformer","type":"sentence_transformers.models.Transformer"},
            {"path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]"#;
        let err = clip_module_folder(multilingual.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sentence_transformers.models.Transformer"),
            "{err}"
        );
        let normalised = r#"[{"path":"0_CLIPModel","type":"sentence_transformers.models.CLIPModel"},
            {"path":"1_Normalize","type":"sentence_transformers.models.Normalize"}]"#;
        assert_eq!(
            clip_module_folder(normalised.as_bytes()).unwrap(),
            "0_CLIPModel"
        );
    }
}
