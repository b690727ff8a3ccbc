//! SigLIP (transformers' `SiglipModel`, `model_type: "siglip"`): what its `config.json` says in
//! [`ClipConfig`] terms, with transformers' defaults (`SiglipTextConfig` / `SiglipVisionConfig`)
//! for every field a hub config leaves out.
//!
//! The towers are CLIP's encoder layers with three differences the config carries: the text
//! tower has no causal mask and is pooled at the last of its 64 positions through
//! `text_model.head` ([`TextHead::LastPosition`]); the vision tower has no class token and
//! pools by multi-head attention ([`VisionHead::AttentionPool`]); images are resized to the
//! square input without cropping and normalised with mean and std 0.5 ([`Transform::Siglip`]).
//! Tensor names are SigLIP's own, read as they are.
//!
//! SigLIP scores a pair as `sigmoid(exp(logit_scale) · cos + logit_bias)`, increasing in the
//! cosine, so ranking by cosine (what the store does) orders results exactly as SigLIP's
//! probabilities do.
//!
//! Refused with the reason: SigLIP 2 (`model_type: "siglip2"`, NaFlex variable-resolution
//! patches), other heads than `SiglipModel` (classification, a vision tower alone), a vision
//! tower without its pooling head, non-square inputs, and text and image vectors of different
//! sizes.

use serde::Deserialize;

use crate::config::{
    Activation, ClipConfig, Interpolation, Preprocessing, TextConfig, TextHead, Transform,
    VisionConfig, VisionHead, VisionTower,
};
use crate::error::{ClipError, Result};

/// The `model_type` of a SigLIP `config.json`.
pub const MODEL_TYPE: &str = "siglip";

/// SigLIP's image normalisation (`IMAGENET_STANDARD_MEAN` / `_STD`): 0.5 for every channel.
pub const MEAN_STD: [f32; 3] = [0.5; 3];

#[derive(Deserialize)]
#[serde(default)]
struct RawText {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    max_position_embeddings: usize,
    hidden_act: String,
    layer_norm_eps: f64,
    pad_token_id: Option<u32>,
    projection_size: Option<usize>,
}

impl Default for RawText {
    fn default() -> Self {
        // transformers/models/siglip/configuration_siglip.py, SiglipTextConfig
        Self {
            model_type: None,
            vocab_size: 32000,
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            max_position_embeddings: 64,
            hidden_act: "gelu_pytorch_tanh".into(),
            layer_norm_eps: 1e-6,
            pad_token_id: Some(1),
            projection_size: None,
        }
    }
}

/// `image_size` / `patch_size`: one number, or `[height, width]`.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum Side {
    Square(usize),
    Pair([usize; 2]),
}

impl Side {
    fn square(self, field: &str) -> Result<usize> {
        match self {
            Side::Square(n) => Ok(n),
            Side::Pair([h, w]) if h == w => Ok(h),
            Side::Pair([h, w]) => Err(unsupported(format!(
                "vision_config.{field} {h}x{w} (only square inputs are implemented)"
            ))),
        }
    }
}

#[derive(Deserialize)]
#[serde(default)]
struct RawVision {
    model_type: Option<String>,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_channels: usize,
    image_size: Side,
    patch_size: Side,
    hidden_act: String,
    layer_norm_eps: f64,
    vision_use_head: bool,
}

impl Default for RawVision {
    fn default() -> Self {
        // transformers/models/siglip/configuration_siglip.py, SiglipVisionConfig
        Self {
            model_type: None,
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: Side::Square(224),
            patch_size: Side::Square(16),
            hidden_act: "gelu_pytorch_tanh".into(),
            layer_norm_eps: 1e-6,
            vision_use_head: true,
        }
    }
}

#[derive(Deserialize)]
struct RawSiglip {
    model_type: String,
    architectures: Option<Vec<String>>,
    #[serde(default)]
    text_config: Option<RawText>,
    #[serde(default)]
    vision_config: Option<RawVision>,
}

fn unsupported(what: String) -> ClipError {
    ClipError::UnsupportedArchitecture(what)
}

/// Refuses what is SigLIP by name but not the architecture implemented here.
fn check_family(raw: &RawSiglip, t: &RawText, v: &RawVision) -> Result<()> {
    let sub_types = [t.model_type.as_deref(), v.model_type.as_deref()];
    if raw.model_type != MODEL_TYPE || sub_types.iter().flatten().any(|s| s.contains("siglip2")) {
        return Err(unsupported(format!(
            "model_type {:?}: SigLIP 2 (NaFlex variable-resolution patches) is not implemented, \
             only SigLIP (\"siglip\")",
            raw.model_type
        )));
    }
    if let Some(archs) = &raw.architectures
        && let Some(a) = archs.iter().find(|a| *a != "SiglipModel")
    {
        return Err(unsupported(format!(
            "{a:?} (only SiglipModel, both towers with their heads, is implemented)"
        )));
    }
    if !v.vision_use_head {
        return Err(unsupported(
            "vision_config.vision_use_head false: a SigLIP vision tower without its attention \
             pooling head makes no image vector"
                .into(),
        ));
    }
    Ok(())
}

fn text_config(t: &RawText) -> Result<TextConfig> {
    Ok(TextConfig {
        vocab_size: t.vocab_size,
        hidden_size: t.hidden_size,
        intermediate_size: t.intermediate_size,
        num_hidden_layers: t.num_hidden_layers,
        num_attention_heads: t.num_attention_heads,
        max_position_embeddings: t.max_position_embeddings,
        activation: Activation::parse(&t.hidden_act)?,
        layer_norm_eps: t.layer_norm_eps,
        causal: false,
        head: TextHead::LastPosition {
            pad_id: t.pad_token_id.unwrap_or(1),
        },
    })
}

fn vision_config(v: &RawVision) -> Result<VisionConfig> {
    Ok(VisionConfig {
        hidden_size: v.hidden_size,
        intermediate_size: v.intermediate_size,
        num_hidden_layers: v.num_hidden_layers,
        num_attention_heads: v.num_attention_heads,
        num_channels: v.num_channels,
        image_size: v.image_size.square("image_size")?,
        patch_size: v.patch_size.square("patch_size")?,
        activation: Activation::parse(&v.hidden_act)?,
        layer_norm_eps: v.layer_norm_eps,
        preprocessing: Preprocessing {
            mean: MEAN_STD,
            std: MEAN_STD,
            transform: Transform::Siglip,
            interpolation: Interpolation::Bicubic,
        },
        head: VisionHead::AttentionPool,
        tower: VisionTower::Vit,
    })
}

/// The `config.json` of a transformers `SiglipModel` for `c` (see [`ClipConfig::to_json`]).
pub(crate) fn config_json(
    c: &ClipConfig,
    pad_id: u32,
    text_act: &str,
    vision_act: &str,
) -> serde_json::Value {
    let (t, v) = (&c.text, &c.vision);
    serde_json::json!({
        "model_type": MODEL_TYPE,
        "architectures": ["SiglipModel"],
        "text_config": {
            "vocab_size": t.vocab_size, "hidden_size": t.hidden_size,
            "intermediate_size": t.intermediate_size, "num_hidden_layers": t.num_hidden_layers,
            "num_attention_heads": t.num_attention_heads,
            "max_position_embeddings": t.max_position_embeddings,
            "hidden_act": text_act, "layer_norm_eps": t.layer_norm_eps,
            "pad_token_id": pad_id, "projection_size": c.projection_dim,
        },
        "vision_config": {
            "hidden_size": v.hidden_size, "intermediate_size": v.intermediate_size,
            "num_hidden_layers": v.num_hidden_layers, "num_attention_heads": v.num_attention_heads,
            "num_channels": v.num_channels, "image_size": v.image_size, "patch_size": v.patch_size,
            "hidden_act": vision_act, "layer_norm_eps": v.layer_norm_eps,
        },
    })
}

/// Parses the `config.json` of a transformers `SiglipModel`.
pub fn config_from_json(json: &[u8]) -> Result<ClipConfig> {
    let mut raw: RawSiglip =
        serde_json::from_slice(json).map_err(|e| ClipError::Config(e.to_string()))?;
    let t = raw.text_config.take().unwrap_or_default();
    let v = raw.vision_config.take().unwrap_or_default();
    check_family(&raw, &t, &v)?;
    let text = text_config(&t)?;
    let vision = vision_config(&v)?;
    // projection_size defaults to the text hidden size (SiglipTextConfig.__post_init__).
    let dim = t.projection_size.unwrap_or(t.hidden_size);
    if dim != vision.hidden_size {
        return Err(ClipError::Config(format!(
            "text_config.projection_size {dim} differs from vision_config.hidden_size {}: the \
             text and image vectors would not be comparable",
            vision.hidden_size
        )));
    }
    ClipConfig::validated(text, vision, dim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(json: &str, expected: &str) {
        let err = ClipConfig::from_json(json.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{json}: {err}");
    }

    /// google/siglip-base-patch16-224's config.json lists only what differs from the defaults.
    #[test]
    fn base_patch16_224_gets_transformers_defaults() {
        let c = ClipConfig::from_json(
            br#"{"architectures":["SiglipModel"],"initializer_factor":1.0,"model_type":"siglip",
                 "text_config":{"model_type":"siglip_text_model"},
                 "vision_config":{"model_type":"siglip_vision_model"}}"#,
        )
        .unwrap();
        let (t, v) = (&c.text, &c.vision);
        assert_eq!(
            (t.vocab_size, t.hidden_size, t.num_hidden_layers),
            (32000, 768, 12)
        );
        assert_eq!((t.max_position_embeddings, t.layer_norm_eps), (64, 1e-6));
        assert_eq!(t.activation, Activation::GeluTanh);
        assert!(!t.causal);
        assert_eq!(t.head, TextHead::LastPosition { pad_id: 1 });
        assert_eq!((v.image_size, v.patch_size, v.grid()), (224, 16, 14));
        assert_eq!(v.head, VisionHead::AttentionPool);
        assert_eq!(v.preprocessing.transform, Transform::Siglip);
        assert_eq!(c.projection_dim, 768);
    }

    /// so400m at 384: other sizes, `[h, w]` sides and an explicit projection size.
    #[test]
    fn so400m_sizes() {
        let c = config_from_json(
            br#"{"model_type":"siglip",
                 "text_config":{"hidden_size":1152,"intermediate_size":4304,"num_attention_heads":16,
                                "num_hidden_layers":27,"projection_size":1152},
                 "vision_config":{"hidden_size":1152,"image_size":[384,384],"intermediate_size":4304,
                                  "num_attention_heads":16,"num_hidden_layers":27,"patch_size":14}}"#,
        )
        .unwrap();
        assert_eq!((c.vision.image_size, c.vision.grid()), (384, 27));
        assert_eq!((c.projection_dim, c.text.hidden_size), (1152, 1152));
        // Round trip through the exporter's JSON.
        assert_eq!(
            ClipConfig::from_json(c.to_json().to_string().as_bytes()).unwrap(),
            c
        );
    }

    #[test]
    fn what_is_not_siglip_is_refused_with_the_reason() {
        refused(r#"{"model_type":"siglip2"}"#, "model_type \"siglip2\"");
        refused(
            r#"{"model_type":"siglip","architectures":["SiglipForImageClassification"]}"#,
            "only SiglipModel",
        );
        refused(
            r#"{"model_type":"siglip","vision_config":{"model_type":"siglip2_vision_model"}}"#,
            "SigLIP 2",
        );
        refused(
            r#"{"model_type":"siglip","vision_config":{"vision_use_head":false}}"#,
            "vision_use_head",
        );
        refused(
            r#"{"model_type":"siglip","vision_config":{"image_size":[224,448]}}"#,
            "only square",
        );
        refused(
            r#"{"model_type":"siglip","text_config":{"projection_size":512}}"#,
            "not be comparable",
        );
        refused(
            r#"{"model_type":"siglip","text_config":{"hidden_act":"relu"}}"#,
            "\"relu\"",
        );
        refused(
            r#"{"model_type":"siglip","vision_config":{"patch_size":0}}"#,
            "not a multiple",
        );
    }
}
