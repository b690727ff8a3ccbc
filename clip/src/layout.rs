//! Which files a checkpoint consists of, which model family they make, and how that family's
//! config and tensor names become the Hugging Face CLIPModel the model code reads. Decided by
//! the checkpoint's own files, in this order:
//!
//! 1. `config.json` + `model.safetensors`: transformers' CLIP ([`Family::Transformers`]), or
//!    SigLIP where the config says `model_type: "siglip"` ([`Family::Siglip`], see
//!    [`crate::siglip`]);
//! 2. `open_clip_config.json` + `open_clip_model.safetensors`: OpenCLIP ([`Family::OpenClip`],
//!    see [`crate::open_clip`]); hub repositories of LAION models ship both layouts, and the
//!    first wins;
//! 3. `modules.json` naming one `CLIPModel` module (sentence-transformers, as
//!    `sentence-transformers/clip-ViT-B-32` ships): the transformers files inside that module's
//!    folder ([`Family::SentenceTransformers`]).
//!
//! Every family reads the tokenizer from a `tokenizer.json` beside its config; a transformers
//! folder without one may have the slow tokenizer's `vocab.json` + `merges.txt` instead (see
//! [`crate::tokenizer::json_from_vocab_merges`]), a SigLIP folder `spiece.model` (what hub SigLIP
//! checkpoints ship; see [`crate::spiece`]). No I/O here: the caller says which files exist
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
    /// transformers' `SiglipModel` files.
    Siglip,
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
/// A SentencePiece model (SigLIP's tokenizer), used when there is no `tokenizer.json`.
pub const SPIECE_FILE: &str = "spiece.model";

/// The files of a checkpoint, relative to its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub family: Family,
    pub config: String,
    pub weights: String,
    /// `tokenizer.json`; `vocab.json` when [`Self::merges`] is set; or `spiece.model`.
    pub tokenizer: String,
    /// `merges.txt` for a folder with the slow tokenizer's files instead of `tokenizer.json`.
    pub merges: Option<String>,
}

impl Layout {
    /// The layout of the first family whose marker files exist (`exists` answers for a path
    /// relative to the root). `read` reads `config.json` or `modules.json` (files `exists`
    /// found) where the family depends on what they say. `None` when no family's files are
    /// there.
    pub fn detect(
        exists: &mut dyn FnMut(&str) -> bool,
        read: &mut dyn FnMut(&str) -> Result<Vec<u8>>,
    ) -> Result<Option<Layout>> {
        if exists(CONFIG_FILE) && exists(WEIGHTS_FILE) {
            let family = if is_siglip(&read(CONFIG_FILE)?)? {
                Family::Siglip
            } else {
                Family::Transformers
            };
            return Ok(Some(Self::transformers(family, "", exists)));
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
            let folder = clip_module_folder(&read(MODULES_FILE)?)?;
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
        let fast = exists(&path(TOKENIZER_FILE));
        // SigLIP's hub files: spiece.model (named as the missing file when neither is there).
        let spiece = !fast && family == Family::Siglip;
        let slow = !fast && !spiece && exists(&path(VOCAB_FILE)) && exists(&path(MERGES_FILE));
        let tokenizer = match (slow, spiece) {
            (true, _) => VOCAB_FILE,
            (_, true) => SPIECE_FILE,
            _ => TOKENIZER_FILE,
        };
        Layout {
            family,
            config: path(CONFIG_FILE),
            weights: path(WEIGHTS_FILE),
            tokenizer: path(tokenizer),
            merges: slow.then(|| path(MERGES_FILE)),
        }
    }
}

/// Whether a transformers `config.json` is SigLIP's (`model_type: "siglip"`).
fn is_siglip(config_json: &[u8]) -> Result<bool> {
    #[derive(Deserialize)]
    struct ModelType {
        model_type: Option<String>,
    }
    let t: ModelType = serde_json::from_slice(config_json)
        .map_err(|e| ClipError::Config(format!("{CONFIG_FILE}: {e}")))?;
    Ok(t.model_type.as_deref() == Some(crate::siglip::MODEL_TYPE))
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
            Family::Siglip => crate::siglip::config_from_json(bytes),
            Family::OpenClip => open_clip::config_from_json(bytes),
        }
    }

    /// The family's safetensors weights under transformers' names (CLIPModel's; SiglipModel's
    /// for SigLIP): the bytes themselves for the transformers layouts, a renamed copy for
    /// OpenCLIP.
    pub fn weights(self, bytes: Vec<u8>) -> Result<Vec<u8>> {
        match self {
            Family::Transformers | Family::SentenceTransformers | Family::Siglip => Ok(bytes),
            Family::OpenClip => open_clip::to_transformers(&bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(files: &[&str], modules: &str) -> Result<Option<Layout>> {
        Layout::detect(&mut |f| files.contains(&f), &mut |name| {
            Ok(match name {
                MODULES_FILE => modules.as_bytes().to_vec(),
                _ => br#"{"model_type":"clip"}"#.to_vec(),
            })
        })
    }

    #[test]
    fn siglip_is_told_by_its_config() {
        let detect = |files: &[&str], config: &str| {
            Layout::detect(&mut |f| files.contains(&f), &mut |_| {
                Ok(config.as_bytes().to_vec())
            })
            .unwrap()
            .unwrap()
        };
        let hub = ["config.json", "model.safetensors", "spiece.model"];
        let layout = detect(&hub, r#"{"model_type":"siglip"}"#);
        assert_eq!(layout.family, Family::Siglip);
        assert_eq!(layout.tokenizer, "spiece.model");
        assert_eq!(layout.merges, None);
        // A tokenizer.json beside it is used instead.
        let with_json = [
            "config.json",
            "model.safetensors",
            "spiece.model",
            "tokenizer.json",
        ];
        assert_eq!(
            detect(&with_json, r#"{"model_type":"siglip"}"#).tokenizer,
            "tokenizer.json"
        );
        // With neither, the file to look for (and to name as missing) is spiece.model.
        let bare = ["config.json", "model.safetensors"];
        assert_eq!(
            detect(&bare, r#"{"model_type":"siglip"}"#).tokenizer,
            "spiece.model"
        );
        // CLIP's config: a CLIP folder, whatever else lies there.
        let clip = detect(&hub, r#"{"model_type":"clip"}"#);
        assert_eq!(
            (clip.family, clip.tokenizer.as_str()),
            (Family::Transformers, "tokenizer.json")
        );
        let err = Layout::detect(&mut |f| hub.contains(&f), &mut |_| Ok(b"{".to_vec()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.json"), "{err}");
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
