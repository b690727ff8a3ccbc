//! MobileCLIP-B's image tower: timm's `vit_base_mci_224` (`timm/models/vision_transformer_hybrid.py`),
//! a ViT-B/16 whose patch embedding is a convolutional stem, as open_clip's `TimmModel` runs it
//! (`timm_pool: "token"`, `timm_proj: null`: the classifier head is the projection).
//!
//! * `ConvStem`: conv 4×4/4 → batch norm → GELU, conv 2×2/2 → batch norm → GELU, conv 2×2/2
//!   with bias (no padding, each stride equal to its kernel: patchify convolutions); the batch
//!   norms (eval mode) are folded into the convolutions at load;
//! * `no_embed_class`: the position embedding is added to the patch tokens only, then the
//!   class token is put in front;
//! * pre-norm blocks (`norm1` → fused-`qkv` attention → `proj`, `norm2` → `fc1` → GELU →
//!   `fc2`), layer norms with ε = 1e-6, no layer scale;
//! * the final `norm`, the class token, `head` (with bias).
//!
//! As for FastViT, the shape comes from the tensors (width from the class token, depth from the
//! block indices, the MLP width and stem from the shapes). The head count cannot: it is 12 for
//! `vit_base_mci_224`, and one head per 64 channels (ViT-B's head width) for another name.

use candle_core::{DType, Module, Tensor};
use candle_nn::LayerNorm;

use crate::error::{ClipError, Result};
use crate::weights::{Linear, Weights};

/// timm's ViT layer norms (`partial(nn.LayerNorm, eps=1e-6)`).
const LN_EPS: f64 = 1e-6;
/// `nn.BatchNorm2d`'s default epsilon.
const BN_EPS: f64 = 1e-5;
/// The head width assumed for names other than `vit_base_mci_224`.
const HEAD_DIM: usize = 64;

/// Whether `name` is a MobileCLIP ViT this module runs: `vit_base_mci_224`, or another name of
/// that family (a locally registered variant such as the tests' `vit_mci_tiny`).
pub fn is_supported(name: &str) -> bool {
    name.starts_with("vit_") && name.contains("mci")
}

/// One convolution of the stem, batch norm folded in: weight, bias and whether GELU follows.
#[derive(Debug, Clone)]
struct StemConv {
    weight: Tensor,
    bias: Tensor,
    gelu: bool,
}

impl StemConv {
    /// `ConvNormAct`: with `bn` (no conv bias) and GELU, or the last one, a conv with bias.
    fn load(w: &Weights) -> Result<Self> {
        let f32 = |name: &str| -> Result<Tensor> { Ok(w.tensor_any(name)?.to_dtype(DType::F32)?) };
        let kernel = f32("conv.weight")?;
        let (weight, bias, gelu) = if w.contains("bn.running_mean") {
            let scale = (f32("bn.weight")? / (f32("bn.running_var")? + BN_EPS)?.sqrt()?)?;
            let shift = (f32("bn.bias")? - (f32("bn.running_mean")? * &scale)?)?;
            let weight = kernel.broadcast_mul(&scale.reshape(((), 1, 1, 1))?)?;
            (weight, shift, true)
        } else {
            (kernel, f32("conv.bias")?, false)
        };
        Ok(Self {
            weight: weight.to_dtype(w.dtype())?,
            bias: bias.to_dtype(w.dtype())?,
            gelu,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let k = self.weight.dim(2)?;
        let ys = xs
            .conv2d(&self.weight, 0, k, 1, 1)?
            .broadcast_add(&self.bias.reshape((1, (), 1, 1))?)?;
        Ok(if self.gelu { ys.gelu_erf()? } else { ys })
    }
}

/// timm's `Block`: pre-norm attention and MLP with residuals.
#[derive(Debug, Clone)]
struct Block {
    norm1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    heads: usize,
}

impl Block {
    fn load(w: &Weights, dim: usize, heads: usize) -> Result<Self> {
        let hidden = w.pp("mlp.fc1").tensor_any("weight")?.dim(0)?;
        Ok(Self {
            norm1: w.pp("norm1").layer_norm(dim, LN_EPS)?,
            qkv: w.pp("attn.qkv").linear(dim, 3 * dim, true)?,
            proj: w.pp("attn.proj").linear(dim, dim, true)?,
            norm2: w.pp("norm2").layer_norm(dim, LN_EPS)?,
            fc1: w.pp("mlp.fc1").linear(dim, hidden, true)?,
            fc2: w.pp("mlp.fc2").linear(hidden, dim, true)?,
            heads,
        })
    }

    fn attention(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, n, c) = xs.dims3()?;
        let hd = c / self.heads;
        // qkv.reshape(B, N, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
        let qkv = self
            .qkv
            .forward(xs)?
            .reshape((b, n, 3, self.heads, hd))?
            .permute((2, 0, 3, 1, 4))?;
        let part = |i: usize| qkv.get(i)?.contiguous();
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let att = (q * (hd as f64).powf(-0.5))?.matmul(&k.t()?)?;
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        let ys = att.matmul(&v)?.transpose(1, 2)?.reshape((b, n, c))?;
        Ok(self.proj.forward(&ys)?)
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = (xs + self.attention(&self.norm1.forward(xs)?)?)?;
        let ys = self.fc1.forward(&self.norm2.forward(&xs)?)?.gelu_erf()?;
        Ok((&xs + self.fc2.forward(&ys)?)?)
    }
}

/// The whole tower: stem, class token and position embedding, blocks, norm, head.
#[derive(Debug, Clone)]
pub struct MciVit {
    stem: Vec<StemConv>,
    cls_token: Tensor,
    pos_embed: Tensor,
    blocks: Vec<Block>,
    norm: LayerNorm,
    head: Linear,
}

impl MciVit {
    /// Reads `trunk.*` (open_clip's `visual.trunk`) from `w`; the head must give
    /// `projection_dim` values.
    pub fn new(w: &Weights, timm_model_name: &str, projection_dim: usize) -> Result<Self> {
        let mut stem = Vec::new();
        while w.contains(&format!("patch_embed.backbone.{}.conv.weight", stem.len())) {
            stem.push(StemConv::load(
                &w.pp(format!("patch_embed.backbone.{}", stem.len())),
            )?);
        }
        let cls_token = w.tensor_any("cls_token")?;
        let dim = cls_token.dim(2)?;
        let heads = match timm_model_name {
            "vit_base_mci_224" => 12,
            _ => dim / HEAD_DIM,
        };
        if heads == 0 || !dim.is_multiple_of(heads) {
            return Err(ClipError::UnsupportedArchitecture(format!(
                "{timm_model_name}: a ViT {dim} wide with {heads} heads"
            )));
        }
        let mut blocks = Vec::new();
        while w.contains(&format!("blocks.{}.norm1.weight", blocks.len())) {
            blocks.push(Block::load(
                &w.pp(format!("blocks.{}", blocks.len())),
                dim,
                heads,
            )?);
        }
        if timm_model_name == "vit_base_mci_224" && (dim, blocks.len()) != (768, 12) {
            return Err(ClipError::Weights(format!(
                "vit_base_mci_224 is 768 wide and 12 deep, the checkpoint {dim} and {}",
                blocks.len()
            )));
        }
        Ok(Self {
            stem,
            cls_token: cls_token.reshape((1, 1, dim))?,
            pos_embed: w.tensor_any("pos_embed")?,
            blocks,
            norm: w.pp("norm").layer_norm(dim, LN_EPS)?,
            head: w.pp("head").linear(dim, projection_dim, true)?,
        })
    }

    /// `trunk(pixels)`: `[b, 3, S, S]` → `[b, projection_dim]`.
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let mut xs = pixels.clone();
        for conv in &self.stem {
            xs = conv.forward(&xs)?;
        }
        let b = xs.dim(0)?;
        // HybridEmbed: x.flatten(2).transpose(1, 2)
        let patches = xs.flatten_from(2)?.transpose(1, 2)?;
        let (n, dim) = (patches.dim(1)?, patches.dim(2)?);
        if self.pos_embed.dims() != [1, n, dim] {
            return Err(ClipError::Input(format!(
                "{n} patches of {dim}, the position embedding has {:?}",
                self.pos_embed.dims()
            )));
        }
        // no_embed_class: x = x + pos_embed, then the class token in front.
        let patches = patches.broadcast_add(&self.pos_embed)?;
        let cls = self.cls_token.broadcast_as((b, 1, dim))?;
        let mut xs = Tensor::cat(&[&cls, &patches], 1)?;
        for block in &self.blocks {
            xs = block.forward(&xs)?;
        }
        // norm → pool "token" (the class token) → head
        let pooled = self.norm.forward(&xs.narrow(1, 0, 1)?.squeeze(1)?)?;
        Ok(self.head.forward(&pooled)?)
    }
}
