//! Model configuration: the Hugging Face `config.json` of a `CLIPModel`, with the same defaults as
//! `transformers.CLIPTextConfig` / `CLIPVisionConfig`, validated once when parsed.
//!
//! Hub configs are written with `to_diff_dict`, so a sub-config often lists only the fields that
//! differ from those defaults (LAION checkpoints list `hidden_act: "gelu"` and the sizes); every
//! field therefore has the transformers default.

use serde::Deserialize;

use crate::error::{ClipError, Result};

/// The non-linearity used in the MLP blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`, used by the OpenAI checkpoints.
    QuickGelu,
    /// Exact GELU (`0.5 x (1 + erf(x / sqrt 2))`), used by LAION / OpenCLIP checkpoints.
    Gelu,
    /// The tanh approximation of GELU (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
}

impl Activation {
    /// Parses the `hidden_act` string of a transformers config.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "quick_gelu" => Ok(Self::QuickGelu),
            "gelu" => Ok(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Self::GeluTanh),
            other => Err(ClipError::UnsupportedActivation(other.to_string())),
        }
    }
}

/// The text tower (`transformers.CLIPTextConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Context length: 77 for every released CLIP.
    pub max_position_embeddings: usize,
    pub activation: Activation,
    pub layer_norm_eps: f64,
    /// Whether each position sees only itself and the positions before it (CLIP). Without the
    /// causal mask (SigLIP; MobileCLIP's text tower, open_clip's `no_causal_mask`) every
    /// position sees the whole padded context, so the tower runs it all:
    /// [`crate::TextEncoder::encode`] cannot stop at the end token (MobileCLIP pads with 0 as
    /// open_clip's tokenizer does, and still pools at the end token).
    pub causal: bool,
    /// Which position becomes the text's vector, and through which projection.
    pub head: TextHead,
}

/// How the text tower turns its last hidden states into one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextHead {
    /// CLIP: the first position of the largest id (the end token), then `text_projection`
    /// (no bias).
    EndToken,
    /// SigLIP: the last position of the whole context (`max_position_embeddings` ids, padded
    /// with `pad_id` after the end token), then `text_model.head` (with bias).
    LastPosition { pad_id: u32 },
}

/// How the vision tower turns its last hidden states into one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisionHead {
    /// CLIP: a class token before the patches (`class_embedding`), `pre_layrnorm`, a patch
    /// convolution without bias; the class token's state after `post_layernorm`, then
    /// `visual_projection` (no bias).
    ClassToken,
    /// SigLIP: patches only (convolution with bias), no layer norm before the encoder;
    /// `post_layernorm` on every state, then multi-head attention pooling
    /// (`vision_model.head`, see [`crate::attention_pool`]); its output is the vector.
    AttentionPool,
}

/// Which reference the image preprocessing follows where model families differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// transformers' `CLIPImageProcessor` (PIL backend): center crop offset
    /// `(size - crop) // 2`, rescale `x * (1/255)`.
    Transformers,
    /// open_clip's val transform (torchvision): center crop offset
    /// `round((size - crop) / 2)` with halves to even, rescale `x / 255`.
    OpenClip,
    /// transformers' `SiglipImageProcessor` (PIL backend): resized straight to `size`×`size`
    /// (aspect not kept, nothing cropped), rescale `x * (1/255)`.
    Siglip,
}

/// Pillow's resampling filter for the shortest-edge resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// `Image.BICUBIC` (CLIP, OpenCLIP's default).
    Bicubic,
    /// `Image.BILINEAR` (MobileCLIP's `preprocess_cfg`).
    Bilinear,
}

/// What the vision tower expects of its input pixels besides their size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocessing {
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub transform: Transform,
    pub interpolation: Interpolation,
}

impl Default for Preprocessing {
    /// OpenAI CLIP's normalisation, the transformers way.
    fn default() -> Self {
        Self {
            mean: crate::preprocess::CLIP_MEAN,
            std: crate::preprocess::CLIP_STD,
            transform: Transform::Transformers,
            interpolation: Interpolation::Bicubic,
        }
    }
}

/// Which network the vision tower is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VisionTower {
    /// CLIP's ViT, as the other fields of [`VisionConfig`] describe it.
    #[default]
    Vit,
    /// timm's FastViT MCi (MobileCLIP's image tower) under its `timm_model_name`: the structure
    /// comes from the checkpoint's tensors ([`crate::fastvit`]); of [`VisionConfig`] only
    /// `image_size`, `num_channels` and `preprocessing` apply.
    FastVitMci { timm_model_name: String },
    /// timm's `vit_base_mci_224` (MobileCLIP-B: a ViT behind a convolutional stem), likewise
    /// read from the tensors ([`crate::timm_vit`]).
    MciVit { timm_model_name: String },
}

/// The vision tower (`transformers.CLIPVisionConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub activation: Activation,
    pub layer_norm_eps: f64,
    /// How images become its input (the family's reference preprocessing).
    pub preprocessing: Preprocessing,
    /// Which state becomes the image's vector, and how.
    pub head: VisionHead,
    /// The network; ViT unless the checkpoint says otherwise.
    pub tower: VisionTower,
}

impl VisionConfig {
    /// Patches along one side of the image.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }
}

/// A whole `CLIPModel`: both towers and the shared embedding size.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipConfig {
    pub text: TextConfig,
    pub vision: VisionConfig,
    /// Size of the joint embedding space (the output vectors).
    pub projection_dim: usize,
}

// Raw serde mirrors of the JSON, with the transformers defaults. Kept private: callers only ever
// see validated configs.
#[derive(Deserialize)]
#[serde(default)]
struct RawText {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    max_position_embeddings: usize,
    hidden_act: String,
    layer_norm_eps: f64,
    /// Not a transformers key: written by [`ClipConfig::to_json`] for a text tower without the
    /// causal mask, so the browser export says how its tower runs.
    causal: bool,
}

impl Default for RawText {
    fn default() -> Self {
        // transformers/models/clip/configuration_clip.py, CLIPTextConfig.__init__
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
            causal: true,
        }
    }
}

#[derive(Deserialize)]
#[serde(default)]
struct RawVision {
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_channels: usize,
    image_size: usize,
    patch_size: usize,
    hidden_act: String,
    layer_norm_eps: f64,
}

impl Default for RawVision {
    fn default() -> Self {
        // transformers/models/clip/configuration_clip.py, CLIPVisionConfig.__init__
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
        }
    }
}

#[derive(Deserialize)]
struct RawClip {
    architectures: Option<Vec<String>>,
    #[serde(default)]
    text_config: Option<RawText>,
    #[serde(default)]
    vision_config: Option<RawVision>,
    projection_dim: Option<usize>,
}

fn check_heads(tower: &str, hidden: usize, heads: usize) -> Result<()> {
    if heads == 0 || !hidden.is_multiple_of(heads) {
        return Err(ClipError::Config(format!(
            "{tower}: hidden_size {hidden} is not divisible by num_attention_heads {heads}"
        )));
    }
    Ok(())
}

impl ClipConfig {
    /// Parses a Hugging Face `config.json` of a `CLIPModel`, or of a `SiglipModel` (`model_type`
    /// `"siglip"`, see [`crate::siglip`]).
    pub fn from_json(json: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct ModelType {
            model_type: Option<String>,
        }
        let parse_err = |e: serde_json::Error| ClipError::Config(e.to_string());
        let kind: ModelType = serde_json::from_slice(json).map_err(parse_err)?;
        match kind.model_type.as_deref() {
            None | Some("clip") => {}
            Some(crate::siglip::MODEL_TYPE) => return crate::siglip::config_from_json(json),
            Some(t) => {
                return Err(ClipError::UnsupportedArchitecture(format!(
                    "model_type {t:?} (\"clip\" and \"siglip\" are implemented)"
                )));
            }
        }
        let raw: RawClip = serde_json::from_slice(json).map_err(parse_err)?;
        if let Some(archs) = &raw.architectures
            && let Some(a) = archs.iter().find(|a| !a.starts_with("CLIP"))
        {
            return Err(ClipError::UnsupportedArchitecture(format!(
                "{a:?} (only CLIPModel is implemented)"
            )));
        }
        let t = raw.text_config.unwrap_or_default();
        let v = raw.vision_config.unwrap_or_default();
        let text = TextConfig {
            vocab_size: t.vocab_size,
            hidden_size: t.hidden_size,
            intermediate_size: t.intermediate_size,
            num_hidden_layers: t.num_hidden_layers,
            num_attention_heads: t.num_attention_heads,
            max_position_embeddings: t.max_position_embeddings,
            activation: Activation::parse(&t.hidden_act)?,
            layer_norm_eps: t.layer_norm_eps,
            causal: t.causal,
            head: TextHead::EndToken,
        };
        let vision = VisionConfig {
            hidden_size: v.hidden_size,
            intermediate_size: v.intermediate_size,
            num_hidden_layers: v.num_hidden_layers,
            num_attention_heads: v.num_attention_heads,
            num_channels: v.num_channels,
            image_size: v.image_size,
            patch_size: v.patch_size,
            activation: Activation::parse(&v.hidden_act)?,
            layer_norm_eps: v.layer_norm_eps,
            preprocessing: Preprocessing::default(),
            head: VisionHead::ClassToken,
            tower: VisionTower::Vit,
        };
        Self::validated(text, vision, raw.projection_dim.unwrap_or(512))
    }

    /// A config from its towers, checked as [`Self::from_json`] checks a parsed one (for the
    /// other families' config files, see [`crate::layout`]).
    pub fn validated(
        text: TextConfig,
        vision: VisionConfig,
        projection_dim: usize,
    ) -> Result<Self> {
        check_heads("text_config", text.hidden_size, text.num_attention_heads)?;
        let vit = vision.tower == VisionTower::Vit;
        if vit {
            check_heads(
                "vision_config",
                vision.hidden_size,
                vision.num_attention_heads,
            )?;
        }
        // CLIP's grid must tile the image; SigLIP's convolution drops what is left over
        // (so400m-patch14-384: 27 patches of 14 cover 378 of the 384 pixels).
        let tiles = vision.head == VisionHead::AttentionPool
            || vision.image_size.is_multiple_of(vision.patch_size);
        if vit && (vision.patch_size == 0 || vision.patch_size > vision.image_size || !tiles) {
            return Err(ClipError::Config(format!(
                "vision_config: image_size {} is not a multiple of patch_size {}",
                vision.image_size, vision.patch_size
            )));
        }
        if vision.num_channels != 3 {
            return Err(ClipError::Config(format!(
                "vision_config: num_channels {} (only RGB models are supported)",
                vision.num_channels
            )));
        }
        Ok(Self {
            text,
            vision,
            projection_dim,
        })
    }

    /// ViT-B/32's shapes (`openai/clip-vit-base-patch32`, and the default model's).
    pub fn vit_base_patch32() -> Self {
        Self::from_json(br#"{"model_type":"clip","projection_dim":512}"#)
            .expect("built-in config is valid")
    }

    /// Serialises back to a transformers-compatible `config.json` (used by the text-only export):
    /// a `CLIPModel`'s, or a `SiglipModel`'s for SigLIP's heads. A vision tower other than ViT
    /// has no transformers config: it is left out (the parser's default stands in; the export
    /// has no vision tower anyway).
    pub fn to_json(&self) -> serde_json::Value {
        fn act(a: Activation) -> &'static str {
            match a {
                Activation::QuickGelu => "quick_gelu",
                Activation::Gelu => "gelu",
                Activation::GeluTanh => "gelu_pytorch_tanh",
            }
        }
        let (t, v) = (&self.text, &self.vision);
        if let TextHead::LastPosition { pad_id } = t.head {
            return crate::siglip::config_json(self, pad_id, act(t.activation), act(v.activation));
        }
        let mut json = serde_json::json!({
            "model_type": "clip",
            "architectures": ["CLIPModel"],
            "projection_dim": self.projection_dim,
            "text_config": {
                "vocab_size": t.vocab_size, "hidden_size": t.hidden_size,
                "intermediate_size": t.intermediate_size, "num_hidden_layers": t.num_hidden_layers,
                "num_attention_heads": t.num_attention_heads,
                "max_position_embeddings": t.max_position_embeddings,
                "hidden_act": act(t.activation), "layer_norm_eps": t.layer_norm_eps,
                "causal": t.causal,
            },
            "vision_config": {
                "hidden_size": v.hidden_size, "intermediate_size": v.intermediate_size,
                "num_hidden_layers": v.num_hidden_layers, "num_attention_heads": v.num_attention_heads,
                "num_channels": v.num_channels, "image_size": v.image_size, "patch_size": v.patch_size,
                "hidden_act": act(v.activation), "layer_norm_eps": v.layer_norm_eps,
            },
        });
        if v.tower != VisionTower::Vit
            && let Some(map) = json.as_object_mut()
        {
            map.remove("vision_config");
        }
        json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_err(json: &str, expected: &str) {
        let err = ClipConfig::from_json(json.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(expected),
            "{json}: got {err:?}, expected it to contain {expected:?}"
        );
    }

    #[test]
    fn defaults_are_vit_b32() {
        let c = ClipConfig::vit_base_patch32();
        assert_eq!(
            (
                c.text.hidden_size,
                c.text.num_hidden_layers,
                c.text.num_attention_heads
            ),
            (512, 12, 8)
        );
        assert_eq!(
            (c.vision.hidden_size, c.vision.patch_size, c.vision.grid()),
            (768, 32, 7)
        );
        assert_eq!(c.text.activation, Activation::QuickGelu);
        assert_eq!(c.projection_dim, 512);
    }

    #[test]
    fn partial_sub_configs_keep_other_defaults() {
        // The shape of a LAION ViT-H/14 config: only the differences are listed.
        let c = ClipConfig::from_json(
            br#"{"model_type":"clip","projection_dim":1024,
                 "text_config":{"hidden_act":"gelu","hidden_size":1024,"intermediate_size":4096,"num_attention_heads":16,"num_hidden_layers":24},
                 "vision_config":{"hidden_act":"gelu","hidden_size":1280,"intermediate_size":5120,"num_attention_heads":16,"num_hidden_layers":32,"patch_size":14}}"#,
        )
        .unwrap();
        assert_eq!(c.text.activation, Activation::Gelu);
        assert_eq!(c.text.vocab_size, 49408);
        assert_eq!(c.vision.grid(), 16);
        assert_eq!(c.projection_dim, 1024);
        // Round trip through the exporter's JSON.
        assert_eq!(
            ClipConfig::from_json(c.to_json().to_string().as_bytes()).unwrap(),
            c
        );
    }

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        check_err(r#"{"model_type":"blip"}"#, "model_type \"blip\"");
        check_err(r#"{"architectures":["BertModel"]}"#, "BertModel");
        check_err(
            r#"{"text_config":{"hidden_act":"relu"}}"#,
            "unsupported activation function \"relu\"",
        );
        check_err(
            r#"{"text_config":{"hidden_size":100,"num_attention_heads":8}}"#,
            "not divisible",
        );
        check_err(
            r#"{"vision_config":{"image_size":224,"patch_size":30}}"#,
            "not a multiple",
        );
        check_err(r#"{"vision_config":{"num_channels":1}}"#, "only RGB");
        check_err("{not json", "invalid model config");
    }
}
