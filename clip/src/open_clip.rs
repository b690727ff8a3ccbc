//! OpenCLIP's own checkpoint layout (`open_clip_config.json` + `open_clip_model.safetensors`)
//! for ViT towers, i.e. the CLIP architecture under open_clip's names: what its config says in
//! [`ClipConfig`] terms, and its tensors renamed to the Hugging Face names the model code reads
//! (fused `in_proj_weight` split into q/k/v, `text_projection` and `visual.proj` transposed from
//! parameters into linear weights, `ln_pre`/`ln_post`, `c_fc`/`c_proj`). Conversion is exact: a
//! tensor keeps its values and float type.
//!
//! MobileCLIP is read too (`custom_text`; S0/S1/S2 with `no_causal_mask` and a timm FastViT
//! MCi image tower, B with timm's `vit_base_mci_224`): its text tower is this one, without the
//! causal mask where the config says so ([`TextConfig::causal`]), and its image tower keeps
//! timm's tensor names under `visual.trunk.` for [`crate::fastvit`] or [`crate::timm_vit`],
//! which read the structure from them.
//!
//! Anything else open_clip can build that is not this architecture (other timm or Hugging Face
//! towers, layer scale, attentional pooling, custom attention blocks, a text
//! tower with another pooling) is refused with the reason, from the config or from a tensor
//! name this mapping does not know.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use serde::Deserialize;

use crate::config::{
    Activation, ClipConfig, Interpolation, Preprocessing, TextConfig, TextHead, Transform,
    VisionConfig, VisionHead, VisionTower,
};
use crate::error::{ClipError, Result};
use crate::{fastvit, timm_vit};

/// The config file of the layout.
pub const CONFIG_FILE: &str = "open_clip_config.json";
/// The weights file of the layout.
pub const WEIGHTS_FILE: &str = "open_clip_model.safetensors";

#[derive(Deserialize)]
struct RawFile {
    model_cfg: RawModel,
    #[serde(default)]
    preprocess_cfg: RawPreprocess,
}

#[derive(Deserialize)]
struct RawModel {
    embed_dim: usize,
    #[serde(default)]
    quick_gelu: bool,
    vision_cfg: RawVision,
    text_cfg: RawText,
    /// SigLIP's sigmoid loss bias: another family.
    init_logit_bias: Option<f64>,
}

/// The parts of a tower's config that must keep open_clip's defaults for the CLIP architecture.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Unsupported {
    ls_init_value: Option<f64>,
    block_type: Option<String>,
    qk_norm: bool,
    scaled_cosine_attn: bool,
    scale_heads: bool,
    scale_attn_inner: bool,
    scale_attn: bool,
    scale_fc: bool,
    act_kwargs: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(default)]
struct RawVision {
    layers: serde_json::Value,
    width: usize,
    head_width: usize,
    mlp_ratio: f64,
    patch_size: usize,
    image_size: serde_json::Value,
    attentional_pool: bool,
    no_ln_pre: bool,
    pos_embed_type: String,
    pool_type: String,
    timm_model_name: Option<String>,
    timm_pool: String,
    /// `null` (the trunk's own head projects) or a string; absent means `"linear"`.
    timm_proj: serde_json::Value,
    norm_kwargs: Option<NormKwargs>,
    #[serde(flatten)]
    unsupported: Unsupported,
}

impl Default for RawVision {
    fn default() -> Self {
        // open_clip/model.py, CLIPVisionCfg
        Self {
            layers: 12.into(),
            width: 768,
            head_width: 64,
            mlp_ratio: 4.0,
            patch_size: 16,
            image_size: 224.into(),
            attentional_pool: false,
            no_ln_pre: false,
            pos_embed_type: "learnable".into(),
            pool_type: "tok".into(),
            timm_model_name: None,
            timm_pool: "avg".into(),
            timm_proj: "linear".into(),
            norm_kwargs: None,
            unsupported: Unsupported::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(default)]
struct RawText {
    context_length: usize,
    vocab_size: usize,
    width: usize,
    heads: usize,
    layers: usize,
    mlp_ratio: f64,
    embed_cls: bool,
    no_causal_mask: bool,
    pool_type: String,
    proj_bias: bool,
    proj_type: String,
    hf_model_name: Option<String>,
    hf_tokenizer_name: Option<String>,
    norm_kwargs: Option<NormKwargs>,
    #[serde(flatten)]
    unsupported: Unsupported,
}

impl Default for RawText {
    fn default() -> Self {
        // open_clip/model.py, CLIPTextCfg
        Self {
            context_length: 77,
            vocab_size: 49408,
            width: 512,
            heads: 8,
            layers: 12,
            mlp_ratio: 4.0,
            embed_cls: false,
            no_causal_mask: false,
            pool_type: "argmax".into(),
            proj_bias: false,
            proj_type: "linear".into(),
            hf_model_name: None,
            hf_tokenizer_name: None,
            norm_kwargs: None,
            unsupported: Unsupported::default(),
        }
    }
}

#[derive(Deserialize, Default)]
struct NormKwargs {
    eps: Option<f64>,
}

#[derive(Deserialize)]
#[serde(default)]
struct RawPreprocess {
    mean: Option<[f32; 3]>,
    std: Option<[f32; 3]>,
    interpolation: String,
    resize_mode: String,
}

impl Default for RawPreprocess {
    fn default() -> Self {
        // open_clip/transform.py, PreprocessCfg (mean and std default to OpenAI's)
        Self {
            mean: None,
            std: None,
            interpolation: "bicubic".into(),
            resize_mode: "shortest".into(),
        }
    }
}

fn unsupported(what: String) -> ClipError {
    ClipError::UnsupportedArchitecture(format!("open_clip model with {what}"))
}

/// Refuses a tower whose config needs more than the CLIP architecture.
fn check_plain(tower: &str, u: &Unsupported) -> Result<()> {
    let flags = [
        ("qk_norm", u.qk_norm),
        ("scaled_cosine_attn", u.scaled_cosine_attn),
        ("scale_heads", u.scale_heads),
        ("scale_attn_inner", u.scale_attn_inner),
        ("scale_attn", u.scale_attn),
        ("scale_fc", u.scale_fc),
    ];
    if let Some((name, _)) = flags.iter().find(|(_, on)| *on) {
        return Err(unsupported(format!("{tower} {name}")));
    }
    if u.ls_init_value.is_some() {
        return Err(unsupported(format!("{tower} layer scale (ls_init_value)")));
    }
    if let Some(b) = u.block_type.as_deref().filter(|b| *b != "default") {
        return Err(unsupported(format!("{tower} block_type {b:?}")));
    }
    if u.act_kwargs.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(unsupported(format!("{tower} act_kwargs")));
    }
    Ok(())
}

/// `int(width * mlp_ratio)`.
fn mlp_width(width: usize, ratio: f64) -> usize {
    (width as f64 * ratio) as usize
}

fn text_config(t: &RawText, activation: Activation) -> Result<TextConfig> {
    check_plain("text_cfg", &t.unsupported)?;
    if let Some(name) = t.hf_model_name.as_ref().or(t.hf_tokenizer_name.as_ref()) {
        return Err(unsupported(format!("the Hugging Face text model {name:?}")));
    }
    let refused = [
        (t.embed_cls, "embed_cls"),
        (t.proj_bias, "proj_bias"),
        (t.pool_type != "argmax", "a pool_type other than argmax"),
        (t.proj_type != "linear", "a proj_type other than linear"),
    ];
    if let Some((_, what)) = refused.iter().find(|(on, _)| *on) {
        return Err(unsupported(format!("text_cfg {what}")));
    }
    Ok(TextConfig {
        vocab_size: t.vocab_size,
        hidden_size: t.width,
        intermediate_size: mlp_width(t.width, t.mlp_ratio),
        num_hidden_layers: t.layers,
        num_attention_heads: t.heads,
        max_position_embeddings: t.context_length,
        activation,
        layer_norm_eps: t.norm_kwargs.as_ref().and_then(|n| n.eps).unwrap_or(1e-5),
        causal: !t.no_causal_mask,
        head: TextHead::EndToken,
    })
}

fn vision_config(
    v: &RawVision,
    activation: Activation,
    preprocessing: Preprocessing,
) -> Result<VisionConfig> {
    check_plain("vision_cfg", &v.unsupported)?;
    if let Some(name) = &v.timm_model_name {
        return timm_config(v, name, activation, preprocessing);
    }
    let refused = [
        (v.attentional_pool, "attentional_pool"),
        (v.no_ln_pre, "no_ln_pre"),
        (
            v.pos_embed_type != "learnable",
            "a pos_embed_type other than learnable",
        ),
        (v.pool_type != "tok", "a pool_type other than tok"),
    ];
    if let Some((_, what)) = refused.iter().find(|(on, _)| *on) {
        return Err(unsupported(format!("vision_cfg {what}")));
    }
    let layers = v
        .layers
        .as_u64()
        .ok_or_else(|| unsupported(format!("a ResNet vision tower (layers {})", v.layers)))?;
    let image_size = square_image_size(v)?;
    if v.head_width == 0 || !v.width.is_multiple_of(v.head_width) {
        return Err(ClipError::Config(format!(
            "vision_cfg: width {} is not a multiple of head_width {}",
            v.width, v.head_width
        )));
    }
    Ok(VisionConfig {
        hidden_size: v.width,
        intermediate_size: mlp_width(v.width, v.mlp_ratio),
        num_hidden_layers: layers as usize,
        num_attention_heads: v.width / v.head_width,
        num_channels: 3,
        image_size: image_size as usize,
        patch_size: v.patch_size,
        activation,
        layer_norm_eps: v.norm_kwargs.as_ref().and_then(|n| n.eps).unwrap_or(1e-5),
        preprocessing,
        head: VisionHead::ClassToken,
        tower: VisionTower::Vit,
    })
}

/// `image_size` as one side: a number, or `[h, w]` with `h == w`.
fn square_image_size(v: &RawVision) -> Result<usize> {
    match &v.image_size {
        serde_json::Value::Array(hw) if hw.len() == 2 && hw[0] == hw[1] => hw[0].as_u64(),
        other => other.as_u64(),
    }
    .map(|s| s as usize)
    .ok_or_else(|| unsupported(format!("a non-square image_size {}", v.image_size)))
}

/// A timm tower, as open_clip's `TimmModel` builds MobileCLIP's with `timm_proj: null` (the
/// trunk's classifier head is the projection): FastViT MCi with `timm_pool: "avg"`
/// ([`crate::fastvit`]) or the MCi ViT with `timm_pool: "token"` ([`crate::timm_vit`]). The
/// structure is read from the tensors at load, so the ViT fields are left empty.
fn timm_config(
    v: &RawVision,
    name: &str,
    activation: Activation,
    preprocessing: Preprocessing,
) -> Result<VisionConfig> {
    let timm_model_name = name.to_string();
    let (tower, pool) = if fastvit::is_supported(name) {
        (VisionTower::FastVitMci { timm_model_name }, "avg")
    } else if timm_vit::is_supported(name) {
        (VisionTower::MciVit { timm_model_name }, "token")
    } else {
        return Err(unsupported(format!("the timm vision tower {name:?}")));
    };
    if v.timm_pool != pool || !v.timm_proj.is_null() {
        return Err(unsupported(format!(
            "{name} with timm_pool {:?} and timm_proj {} (MobileCLIP's are {pool:?} and null)",
            v.timm_pool, v.timm_proj
        )));
    }
    Ok(VisionConfig {
        hidden_size: 0,
        intermediate_size: 0,
        num_hidden_layers: 0,
        num_attention_heads: 0,
        num_channels: 3,
        image_size: square_image_size(v)?,
        patch_size: 0,
        activation,
        layer_norm_eps: 0.0,
        preprocessing,
        head: VisionHead::ClassToken,
        tower,
    })
}

fn preprocessing(p: &RawPreprocess) -> Result<Preprocessing> {
    let interpolation = match p.interpolation.as_str() {
        "bicubic" => Interpolation::Bicubic,
        "bilinear" => Interpolation::Bilinear,
        other => return Err(unsupported(format!("interpolation {other:?}"))),
    };
    if p.resize_mode != "shortest" {
        return Err(unsupported(format!("resize_mode {:?}", p.resize_mode)));
    }
    let default = Preprocessing::default();
    Ok(Preprocessing {
        mean: p.mean.unwrap_or(default.mean),
        std: p.std.unwrap_or(default.std),
        transform: Transform::OpenClip,
        interpolation,
    })
}

/// Parses `open_clip_config.json` (`model_cfg` and `preprocess_cfg`, open_clip's defaults for
/// what they leave out).
pub fn config_from_json(json: &[u8]) -> Result<ClipConfig> {
    let raw: RawFile = serde_json::from_slice(json)
        .map_err(|e| ClipError::Config(format!("open_clip config: {e}")))?;
    let m = &raw.model_cfg;
    if m.init_logit_bias.is_some() {
        return Err(unsupported(
            "a sigmoid loss (SigLIP, init_logit_bias)".into(),
        ));
    }
    let activation = if m.quick_gelu {
        Activation::QuickGelu
    } else {
        Activation::Gelu
    };
    ClipConfig::validated(
        text_config(&m.text_cfg, activation)?,
        vision_config(
            &m.vision_cfg,
            activation,
            preprocessing(&raw.preprocess_cfg)?,
        )?,
        m.embed_dim,
    )
}

/// What becomes of one open_clip tensor.
#[derive(Debug, PartialEq)]
enum Target {
    /// The same values under this name.
    Rename(String),
    /// A `[in, out]` projection parameter, stored as the `[out, in]` weight of a linear layer.
    Transpose(String),
    /// A fused `[3·width, …]` attention input projection, split into `q_proj`, `k_proj` and
    /// `v_proj` under this prefix, each with this leaf (`weight` or `bias`).
    SplitQkv { prefix: String, leaf: &'static str },
    /// Not part of the embedding model (`logit_scale`).
    Drop,
}

/// The Hugging Face name of a residual block's tensor (`ln_1.weight` → `layer_norm1.weight`).
fn block_target(layer_prefix: &str, rest: &str) -> Option<Target> {
    let rename = |hf: &str| Some(Target::Rename(format!("{layer_prefix}.{hf}")));
    match rest {
        "attn.in_proj_weight" | "attn.in_proj_bias" => Some(Target::SplitQkv {
            prefix: format!("{layer_prefix}.self_attn"),
            leaf: if rest.ends_with("weight") {
                "weight"
            } else {
                "bias"
            },
        }),
        _ => {
            let (module, leaf) = rest.rsplit_once('.')?;
            let hf = match module {
                "ln_1" => "layer_norm1",
                "ln_2" => "layer_norm2",
                "attn.out_proj" => "self_attn.out_proj",
                "mlp.c_fc" => "mlp.fc1",
                "mlp.c_proj" => "mlp.fc2",
                _ => return None,
            };
            rename(&format!("{hf}.{leaf}"))
        }
    }
}

/// `transformer.resblocks.{i}.{rest}` → the tensor of `{tower}.encoder.layers.{i}`.
fn resblock_target(tower: &str, name: &str) -> Option<Target> {
    let rest = name.strip_prefix("transformer.resblocks.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    block_target(&format!("{tower}.encoder.layers.{layer}"), rest)
}

fn text_target(name: &str) -> Option<Target> {
    let rename = |hf: &str| Some(Target::Rename(hf.to_string()));
    match name {
        "token_embedding.weight" => rename("text_model.embeddings.token_embedding.weight"),
        "positional_embedding" => rename("text_model.embeddings.position_embedding.weight"),
        "ln_final.weight" => rename("text_model.final_layer_norm.weight"),
        "ln_final.bias" => rename("text_model.final_layer_norm.bias"),
        "text_projection" => Some(Target::Transpose("text_projection.weight".into())),
        _ => resblock_target("text_model", name),
    }
}

fn vision_target(name: &str) -> Option<Target> {
    let rename = |hf: &str| Some(Target::Rename(hf.to_string()));
    if name.starts_with("trunk.") {
        // A timm tower keeps timm's names (read by `crate::fastvit`); batch norms' training
        // counters play no part at inference.
        if name.ends_with(".num_batches_tracked") {
            return Some(Target::Drop);
        }
        return rename(&format!("visual.{name}"));
    }
    match name {
        "conv1.weight" => rename("vision_model.embeddings.patch_embedding.weight"),
        "class_embedding" => rename("vision_model.embeddings.class_embedding"),
        "positional_embedding" => rename("vision_model.embeddings.position_embedding.weight"),
        "ln_pre.weight" => rename("vision_model.pre_layrnorm.weight"),
        "ln_pre.bias" => rename("vision_model.pre_layrnorm.bias"),
        "ln_post.weight" => rename("vision_model.post_layernorm.weight"),
        "ln_post.bias" => rename("vision_model.post_layernorm.bias"),
        "proj" => Some(Target::Transpose("visual_projection.weight".into())),
        _ => resblock_target("vision_model", name),
    }
}

/// Where an open_clip tensor goes; `None` for a name outside the CLIP architecture.
fn target(name: &str, custom_text: bool) -> Option<Target> {
    if name == "logit_scale" {
        return Some(Target::Drop);
    }
    if let Some(rest) = name.strip_prefix("visual.") {
        return vision_target(rest);
    }
    if custom_text {
        return text_target(name.strip_prefix("text.")?);
    }
    text_target(name)
}

/// Renames (and splits, and transposes) every tensor of an open_clip safetensors checkpoint into
/// a safetensors file under the Hugging Face CLIPModel names, each tensor in its own float type.
/// The text tower sits at the root (`CLIP`) or under `text.` (`CustomTextCLIP`).
pub fn to_transformers(checkpoint: &[u8]) -> Result<Vec<u8>> {
    let st = safetensors::SafeTensors::deserialize(checkpoint)
        .map_err(|e| ClipError::Weights(format!("not a safetensors file: {e}")))?;
    let custom_text = st.names().iter().any(|n| n.starts_with("text."));
    let mut out: HashMap<String, Tensor> = HashMap::new();
    for (name, view) in st.tensors() {
        let t = target(&name, custom_text)
            .ok_or_else(|| unsupported(format!("the tensor {name:?}, which CLIP does not have")))?;
        if t == Target::Drop {
            continue;
        }
        let tensor = candle_core::safetensors::Load::load(&view, &Device::Cpu)?;
        match t {
            Target::Drop => {}
            Target::Rename(hf) => {
                out.insert(hf, tensor);
            }
            Target::Transpose(hf) => {
                out.insert(hf, tensor.t()?.contiguous()?);
            }
            Target::SplitQkv { prefix, leaf } => {
                let rows = tensor.dim(0)?;
                if rows % 3 != 0 {
                    return Err(ClipError::Weights(format!(
                        "{name}: {rows} rows do not split into q, k and v"
                    )));
                }
                for (i, part) in ["q_proj", "k_proj", "v_proj"].iter().enumerate() {
                    let piece = tensor.narrow(0, i * rows / 3, rows / 3)?.contiguous()?;
                    out.insert(format!("{prefix}.{part}.{leaf}"), piece);
                }
            }
        }
    }
    let mut named: Vec<(String, Tensor)> = out.into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    safetensors::serialize(named.iter().map(|(n, t)| (n.as_str(), t)), None)
        .map_err(|e| ClipError::Weights(format!("cannot write safetensors: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(model_cfg: &str, expected: &str) {
        let json = format!(r#"{{"model_cfg": {model_cfg}}}"#);
        let err = config_from_json(json.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(expected), "{model_cfg}: got {err:?}");
    }

    #[test]
    fn vit_b_32_defaults() {
        let c = config_from_json(
            br#"{"model_cfg": {"embed_dim": 512, "quick_gelu": true,
                 "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}}}"#,
        )
        .unwrap();
        assert_eq!(c.projection_dim, 512);
        assert_eq!(
            (
                c.vision.num_attention_heads,
                c.vision.intermediate_size,
                c.vision.grid()
            ),
            (12, 3072, 7)
        );
        assert_eq!(
            (c.text.intermediate_size, c.text.num_attention_heads),
            (2048, 8)
        );
        assert_eq!(c.text.activation, Activation::QuickGelu);
        assert_eq!(c.vision.preprocessing.transform, Transform::OpenClip);
        assert_eq!(c.vision.preprocessing.mean, crate::preprocess::CLIP_MEAN);
    }

    #[test]
    fn other_architectures_are_refused_with_the_reason() {
        let text = r#""text_cfg": {}"#;
        refused(
            &format!(
                r#"{{"embed_dim": 512, "vision_cfg": {{"timm_model_name": "convnext_base"}}, {text}}}"#
            ),
            "timm vision tower \"convnext_base\"",
        );
        refused(
            &format!(
                r#"{{"embed_dim": 512, "vision_cfg": {{"timm_model_name": "vit_base_mci_224", "timm_proj": null}}, {text}}}"#
            ),
            "vit_base_mci_224 with timm_pool \"avg\"",
        );
        refused(
            &format!(
                r#"{{"embed_dim": 512, "vision_cfg": {{"timm_model_name": "fastvit_mci3", "timm_proj": null}}, {text}}}"#
            ),
            "timm vision tower \"fastvit_mci3\"",
        );
        // FastViT with open_clip's own projection after the pooled trunk: not MobileCLIP.
        refused(
            &format!(
                r#"{{"embed_dim": 512, "vision_cfg": {{"timm_model_name": "fastvit_mci1"}}, {text}}}"#
            ),
            "timm_proj \"linear\"",
        );
        refused(
            &format!(r#"{{"embed_dim": 512, "vision_cfg": {{"layers": [3, 4, 6, 3]}}, {text}}}"#),
            "ResNet",
        );
        refused(
            r#"{"embed_dim": 512, "vision_cfg": {"ls_init_value": 0.1}, "text_cfg": {}}"#,
            "layer scale",
        );
        refused(
            r#"{"embed_dim": 768, "init_logit_bias": -10, "vision_cfg": {}, "text_cfg": {}}"#,
            "SigLIP",
        );
        refused(
            r#"{"embed_dim": 512, "vision_cfg": {}, "text_cfg": {"hf_model_name": "xlm-roberta-base"}}"#,
            "xlm-roberta-base",
        );
    }

    #[test]
    fn mobileclip_s1_is_fastvit_without_causal_mask() {
        // open_clip's MobileCLIP-S1.json with the preprocess_cfg of its pretrained entry.
        let c = config_from_json(
            br#"{"model_cfg": {"embed_dim": 512,
                 "vision_cfg": {"timm_model_name": "fastvit_mci1", "timm_model_pretrained": false,
                   "timm_pool": "avg", "timm_proj": null, "timm_drop": 0.0, "timm_drop_path": 0.0,
                   "image_size": 256},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8,
                   "layers": 12, "no_causal_mask": true},
                 "custom_text": true},
               "preprocess_cfg": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0],
                 "interpolation": "bilinear", "resize_mode": "shortest"}}"#,
        )
        .unwrap();
        assert_eq!(
            c.vision.tower,
            VisionTower::FastVitMci {
                timm_model_name: "fastvit_mci1".into()
            }
        );
        assert_eq!((c.vision.image_size, c.projection_dim), (256, 512));
        assert!(!c.text.causal);
        let p = c.vision.preprocessing;
        assert_eq!(
            (p.mean, p.std, p.interpolation),
            ([0.0; 3], [1.0; 3], Interpolation::Bilinear)
        );
    }

    #[test]
    fn mobileclip_b_is_the_mci_vit_with_a_causal_text_tower() {
        // open_clip's MobileCLIP-B.json.
        let c = config_from_json(
            br#"{"model_cfg": {"embed_dim": 512,
                 "vision_cfg": {"timm_model_name": "vit_base_mci_224", "timm_model_pretrained": false,
                   "timm_pool": "token", "timm_proj": null, "timm_drop": 0.0, "timm_drop_path": 0.0,
                   "image_size": 224},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8,
                   "layers": 12, "no_causal_mask": false},
                 "custom_text": true}}"#,
        )
        .unwrap();
        assert_eq!(
            c.vision.tower,
            VisionTower::MciVit {
                timm_model_name: "vit_base_mci_224".into()
            }
        );
        assert_eq!(c.vision.image_size, 224);
        assert!(c.text.causal);
    }

    #[test]
    fn no_causal_mask_is_a_text_tower_without_the_mask() {
        let parse = |text: &str| {
            let json = format!(
                r#"{{"model_cfg": {{"embed_dim": 512, "vision_cfg": {{}}, "text_cfg": {text}}}}}"#
            );
            config_from_json(json.as_bytes()).unwrap().text.causal
        };
        assert!(parse("{}"));
        assert!(!parse(r#"{"no_causal_mask": true}"#));
    }

    #[test]
    fn names_map_to_transformers() {
        assert_eq!(
            target("visual.transformer.resblocks.11.mlp.c_fc.bias", false),
            Some(Target::Rename(
                "vision_model.encoder.layers.11.mlp.fc1.bias".into()
            ))
        );
        assert_eq!(
            target("text.transformer.resblocks.0.attn.in_proj_weight", true),
            Some(Target::SplitQkv {
                prefix: "text_model.encoder.layers.0.self_attn".into(),
                leaf: "weight"
            })
        );
        assert_eq!(
            target("visual.proj", false),
            Some(Target::Transpose("visual_projection.weight".into()))
        );
        assert_eq!(
            target("visual.transformer.resblocks.0.ls_1.gamma", false),
            None
        );
        assert_eq!(target("text.token_embedding.weight", false), None);
        assert_eq!(
            target(
                "visual.trunk.stages.3.blocks.0.token_mixer.qkv.weight",
                true
            ),
            Some(Target::Rename(
                "visual.trunk.stages.3.blocks.0.token_mixer.qkv.weight".into()
            ))
        );
        assert_eq!(
            target("visual.trunk.stem.0.identity.num_batches_tracked", true),
            Some(Target::Drop)
        );
    }
}
