//! MobileCLIP's image tower: timm's FastViT with the MCi recipe (`fastvit_mci0/1/2`,
//! `timm/models/fastvit.py`), as open_clip's `TimmModel` runs it (`timm_pool: "avg"`,
//! `timm_proj: null`: the classifier head is the projection). Comments name the timm modules
//! being mirrored.
//!
//! The architecture is read from the checkpoint's tensors, not from a table of variants: the
//! number of stages and their depths from the block indices, widths and kernel sizes from
//! shapes, the token mixer of a block (RepMixer or attention) and the presence of a positional
//! encoding, a squeeze-excite or a batch-norm identity branch from which tensors exist. So the
//! real `fastvit_mci1/2` and the tiny test model take the same code path; a known variant's
//! depths and widths are then checked against the config's `timm_model_name`
//! ([`check_variant`]). What tensors cannot tell is the MCi recipe itself: GELU everywhere,
//! strides (stem 2, 2, 1; each downsampling 2), an activation after the large-kernel
//! downsampling convolution (`lkc_use_act`) and timm's fixed attention head width of 32.
//!
//! open_clip's checkpoints hold the training-time form: MobileOne blocks with several
//! convolution + batch-norm branches and a batch-norm identity, RepMixer as
//! `x + γ·(mixer(x) − norm(x))`, the positional encoding as `x + conv(x)`. Each is folded at
//! load into the one convolution timm's `reparameterize()` would give (batch norm in eval
//! mode: `γ/√(var + ε)` into the kernel, `β − mean·γ/√(var + ε)` into the bias), computed in
//! f32, so the forward pass runs one convolution per block. Batch norms that stand alone (the
//! attention blocks' `norm`) are per-channel scale and shift.

use candle_core::{DType, Device, Module, Tensor};

use crate::error::{ClipError, Result};
use crate::weights::{Linear, Weights};

/// `nn.BatchNorm2d`'s default epsilon (every batch norm of the MCi towers).
const BN_EPS: f64 = 1e-5;
/// timm's FastViT `Attention(head_dim=32)`: the head width is fixed, the count follows.
const HEAD_DIM: usize = 32;

/// A convolution with bias, as timm's `create_conv2d` pads it: `((stride − 1) + (k − 1)) / 2`.
#[derive(Debug, Clone)]
struct Conv {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    groups: usize,
}

impl Conv {
    fn new(weight: Tensor, bias: Tensor, stride: usize, in_chs: usize) -> Result<Self> {
        let per_group = weight.dim(1)?;
        if per_group == 0 || !in_chs.is_multiple_of(per_group) {
            return Err(ClipError::Weights(format!(
                "a convolution with {per_group} inputs per group over {in_chs} channels"
            )));
        }
        Ok(Self {
            weight,
            bias,
            stride,
            groups: in_chs / per_group,
        })
    }

    fn out_chs(&self) -> usize {
        self.bias.dims1().unwrap_or(0)
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let k = self.weight.dim(2)?;
        let padding = ((self.stride - 1) + (k - 1)) / 2;
        let bias = self.bias.reshape((1, (), 1, 1))?;
        if self.groups > 1 && self.weight.dim(1)? == 1 {
            if xs.device().is_cpu() && xs.dtype() == DType::F32 {
                return self.depthwise_cpu(xs, padding);
            }
            return Ok(self.depthwise(xs, padding)?.broadcast_add(&bias)?);
        }
        if k == 1 && self.stride == 1 && self.groups == 1 {
            return Ok(self.pointwise(xs)?.broadcast_add(&bias)?);
        }
        let ys = xs.conv2d(&self.weight, padding, self.stride, 1, self.groups)?;
        Ok(ys.broadcast_add(&bias)?)
    }

    /// A 1×1 convolution as one matrix product per image, `[out, in] · [in, h·w]`, without
    /// candle's unfolding copy.
    fn pointwise(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = xs.dims4()?;
        let out = self.weight.dim(0)?;
        let weight = self
            .weight
            .reshape((1, out, c))?
            .broadcast_as((b, out, c))?;
        let ys = weight.matmul(&xs.reshape((b, c, h * w))?)?;
        Ok(ys.reshape((b, out, h, w))?)
    }

    /// A convolution with one input channel per group (depthwise, possibly with several
    /// outputs per channel) as `k²` shifted multiply-adds over the whole tensor: candle's
    /// grouped convolution runs one small convolution per group, hundreds per layer here.
    /// Computed at stride 1, then every `stride`-th row and column kept.
    fn depthwise(&self, xs: &Tensor, padding: usize) -> Result<Tensor> {
        let (b, c, h, w) = xs.dims4()?;
        let (out, k) = (self.weight.dim(0)?, self.weight.dim(2)?);
        let per_channel = out / c;
        let xs = if per_channel > 1 {
            // Output channel g·m + j reads input channel g.
            xs.unsqueeze(2)?
                .broadcast_as((b, c, per_channel, h, w))?
                .reshape((b, out, h, w))?
        } else {
            xs.clone()
        };
        let xs = xs
            .pad_with_zeros(2, padding, padding)?
            .pad_with_zeros(3, padding, padding)?;
        let (h1, w1) = (h + 2 * padding + 1 - k, w + 2 * padding + 1 - k);
        let mut acc: Option<Tensor> = None;
        for dy in 0..k {
            for dx in 0..k {
                let tap = self.weight.narrow(2, dy, 1)?.narrow(3, dx, 1)?;
                let term = xs
                    .narrow(2, dy, h1)?
                    .narrow(3, dx, w1)?
                    .broadcast_mul(&tap.reshape((1, out, 1, 1))?)?;
                acc = Some(match acc {
                    Some(a) => (a + term)?,
                    None => term,
                });
            }
        }
        let acc = acc.ok_or_else(|| ClipError::Weights("an empty convolution kernel".into()))?;
        subsample(&acc, self.stride)
    }
}

impl Conv {
    /// [`Self::depthwise`] on the CPU in f32, in plain loops (bias first, then the taps in
    /// row-major order), a plane at a time.
    fn depthwise_cpu(&self, xs: &Tensor, padding: usize) -> Result<Tensor> {
        let (b, c, h, w) = xs.dims4()?;
        let (out, k, s) = (self.weight.dim(0)?, self.weight.dim(2)?, self.stride);
        let per_channel = out / c;
        let (ho, wo) = ((h + 2 * padding - k) / s + 1, (w + 2 * padding - k) / s + 1);
        let x = xs.flatten_all()?.to_vec1::<f32>()?;
        let weight = self.weight.flatten_all()?.to_vec1::<f32>()?;
        let bias = self.bias.to_vec1::<f32>()?;
        // The outputs `o` whose input `o·s + d − padding` lies in `0..n`.
        let valid = |d: usize, n: usize, len: usize| {
            let first = padding.saturating_sub(d).div_ceil(s);
            let end = ((n + padding).saturating_sub(d)).div_ceil(s).min(len);
            first..end.max(first)
        };
        let mut y = vec![0f32; b * out * ho * wo];
        for (plane, o) in y.chunks_exact_mut(ho * wo).enumerate() {
            let (bi, oc) = (plane / out, plane % out);
            let input = &x[(bi * c + oc / per_channel) * h * w..][..h * w];
            let kernel = &weight[oc * k * k..][..k * k];
            o.fill(bias[oc]);
            for dy in 0..k {
                for dx in 0..k {
                    let tap = kernel[dy * k + dx];
                    let cols = valid(dx, w, wo);
                    for oy in valid(dy, h, ho) {
                        let row = &input[(oy * s + dy - padding) * w..][..w];
                        let out_row = &mut o[oy * wo..][..wo];
                        for ox in cols.clone() {
                            out_row[ox] += tap * row[ox * s + dx - padding];
                        }
                    }
                }
            }
        }
        Ok(Tensor::from_vec(y, (b, out, ho, wo), xs.device())?)
    }
}

/// Every `stride`-th row and column, from the first.
fn subsample(xs: &Tensor, stride: usize) -> Result<Tensor> {
    if stride == 1 {
        return Ok(xs.clone());
    }
    let (b, c, h, w) = xs.dims4()?;
    let (ho, wo) = (h.div_ceil(stride), w.div_ceil(stride));
    let xs = xs
        .pad_with_zeros(2, 0, ho * stride - h)?
        .pad_with_zeros(3, 0, wo * stride - w)?
        .reshape((b, c, ho, stride, wo, stride))?;
    Ok(xs
        .narrow(3, 0, 1)?
        .narrow(5, 0, 1)?
        .reshape((b, c, ho, wo))?)
}

/// Reads tensors in f32 for folding, and hands the folded ones back in the model's type.
struct Reader<'a> {
    w: Weights<'a>,
    dtype: DType,
}

impl Reader<'_> {
    fn pp(&self, name: impl std::fmt::Display) -> Self {
        Self {
            w: self.w.pp(name),
            dtype: self.dtype,
        }
    }

    fn has(&self, name: &str) -> bool {
        self.w.contains(name)
    }

    fn get(&self, name: &str) -> Result<Tensor> {
        Ok(self.w.tensor_any(name)?.to_dtype(DType::F32)?)
    }

    fn out(&self, t: Tensor) -> Result<Tensor> {
        Ok(t.to_dtype(self.dtype)?)
    }

    /// Eval-mode batch norm as `(scale, shift)`: `y = x·scale + shift`.
    fn batch_norm(&self) -> Result<(Tensor, Tensor)> {
        let (gamma, beta) = (self.get("weight")?, self.get("bias")?);
        let (mean, var) = (self.get("running_mean")?, self.get("running_var")?);
        let scale = (gamma / (var + BN_EPS)?.sqrt()?)?;
        let shift = (beta - (mean * &scale)?)?;
        Ok((scale, shift))
    }

    /// `ConvNormAct` without activation (`conv` + `bn`), folded: (kernel, bias).
    fn conv_bn(&self) -> Result<(Tensor, Tensor)> {
        let kernel = self.get("conv.weight")?;
        let (scale, shift) = self.pp("bn").batch_norm()?;
        Ok((kernel.broadcast_mul(&scale.reshape(((), 1, 1, 1))?)?, shift))
    }

    /// An eval-mode batch norm as per-channel `[1, C, 1, 1]` tensors in the model's type.
    fn affine(&self) -> Result<Affine> {
        let (scale, shift) = self.batch_norm()?;
        Ok(Affine {
            scale: self.out(scale.reshape((1, (), 1, 1))?)?,
            shift: self.out(shift.reshape((1, (), 1, 1))?)?,
        })
    }

    /// `LayerScale2d.gamma` (`[C, 1, 1]`) as `[1, C, 1, 1]`.
    fn layer_scale(&self) -> Result<Tensor> {
        let gamma = self.get("gamma")?;
        self.out(gamma.reshape((1, (), 1, 1))?)
    }
}

/// The kernel of the identity as a convolution over `channels` inputs, `per_group` of them per
/// group, `k`×`k` (timm's `id_tensor`).
fn identity_kernel(channels: usize, per_group: usize, k: usize, device: &Device) -> Result<Tensor> {
    let mut data = vec![0f32; channels * per_group * k * k];
    for i in 0..channels {
        data[((i * per_group + i % per_group) * k + k / 2) * k + k / 2] = 1.0;
    }
    Ok(Tensor::from_vec(data, (channels, per_group, k, k), device)?)
}

/// A `k0`×`k0` kernel zero-padded to `k`×`k`, centred.
fn pad_kernel(kernel: &Tensor, k: usize) -> Result<Tensor> {
    let p = (k - kernel.dim(2)?) / 2;
    Ok(kernel.pad_with_zeros(2, p, p)?.pad_with_zeros(3, p, p)?)
}

/// timm's `SqueezeExcite` (`SEModule`): mean over the plane → 1×1 conv → ReLU → 1×1 conv →
/// sigmoid gate.
#[derive(Debug, Clone)]
struct SqueezeExcite {
    fc1: Linear,
    fc2: Linear,
}

impl SqueezeExcite {
    fn load(r: &Reader) -> Result<Option<Self>> {
        if !r.has("se.fc1.weight") {
            return Ok(None);
        }
        let linear = |name: &str| -> Result<Linear> {
            let w = r.get(&format!("se.{name}.weight"))?;
            let (out, inp) = (w.dim(0)?, w.dim(1)?);
            let bias = r.out(r.get(&format!("se.{name}.bias"))?)?;
            Ok(Linear::Dense(candle_nn::Linear::new(
                r.out(w.reshape((out, inp))?)?,
                Some(bias),
            )))
        };
        Ok(Some(Self {
            fc1: linear("fc1")?,
            fc2: linear("fc2")?,
        }))
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let pooled = xs.mean((2, 3))?;
        let gate = self.fc2.forward(&self.fc1.forward(&pooled)?.relu()?)?;
        let gate = candle_nn::ops::sigmoid(&gate)?.unsqueeze(2)?.unsqueeze(3)?;
        Ok(xs.broadcast_mul(&gate)?)
    }
}

/// A reparameterised conv block: convolution, then squeeze-excite, then GELU where the block has
/// them (`MobileOneBlock` and `ReparamLargeKernelConv` after folding).
#[derive(Debug, Clone)]
struct ConvBlock {
    conv: Conv,
    se: Option<SqueezeExcite>,
    gelu: bool,
}

impl ConvBlock {
    /// `MobileOneBlock(in_chs, stride)`: the sum of its `conv_kxk.{i}` branches, its 1×1
    /// `conv_scale` branch and its batch-norm `identity`, whichever exist.
    fn mobile_one(r: &Reader, in_chs: usize, stride: usize, gelu: bool) -> Result<Self> {
        let mut branches = Vec::new();
        let mut i = 0;
        while r.has(&format!("conv_kxk.{i}.conv.weight")) {
            branches.push(r.pp(format!("conv_kxk.{i}")).conv_bn()?);
            i += 1;
        }
        if r.has("conv_scale.conv.weight") {
            branches.push(r.pp("conv_scale").conv_bn()?);
        }
        let k = branches
            .iter()
            .map(|(w, _)| w.dim(2))
            .try_fold(1, |a, k| k.map(|k| a.max(k)))?;
        if r.has("identity.running_mean") {
            let (scale, shift) = r.pp("identity").batch_norm()?;
            let per_group = match branches.first() {
                Some((w, _)) => w.dim(1)?,
                None => 1,
            };
            let id = identity_kernel(in_chs, per_group, k, r.w.device())?
                .to_device(scale.device())?
                .broadcast_mul(&scale.reshape(((), 1, 1, 1))?)?;
            branches.push((id, shift));
        }
        let Some((first, rest)) = branches.split_first() else {
            return Err(ClipError::MissingTensor {
                name: format!("{:?} conv_kxk.0.conv.weight", r.w),
            });
        };
        let (mut kernel, mut bias) = (pad_kernel(&first.0, k)?, first.1.clone());
        for (w, b) in rest {
            kernel = (kernel + pad_kernel(w, k)?)?;
            bias = (bias + b)?;
        }
        Ok(Self {
            conv: Conv::new(r.out(kernel)?, r.out(bias)?, stride, in_chs)?,
            se: SqueezeExcite::load(r)?,
            gelu,
        })
    }

    /// `ReparamLargeKernelConv` (stride 2): `large_conv` + `small_conv`, both conv + batch norm;
    /// with the MCi recipe's GELU after it (`lkc_use_act`).
    fn large_kernel(r: &Reader, in_chs: usize) -> Result<Self> {
        let (large, large_bias) = r.pp("large_conv").conv_bn()?;
        let k = large.dim(2)?;
        let (kernel, bias) = if r.has("small_conv.conv.weight") {
            let (small, small_bias) = r.pp("small_conv").conv_bn()?;
            (
                (large + pad_kernel(&small, k)?)?,
                (large_bias + small_bias)?,
            )
        } else {
            (large, large_bias)
        };
        Ok(Self {
            conv: Conv::new(r.out(kernel)?, r.out(bias)?, 2, in_chs)?,
            se: SqueezeExcite::load(r)?,
            gelu: true,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut ys = self.conv.forward(xs)?;
        if let Some(se) = &self.se {
            ys = se.forward(&ys)?;
        }
        Ok(if self.gelu { ys.gelu_erf()? } else { ys })
    }
}

/// Per-channel `x·scale + shift` (an eval-mode `BatchNorm2d`).
#[derive(Debug, Clone)]
struct Affine {
    scale: Tensor,
    shift: Tensor,
}

impl Affine {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        Ok(xs.broadcast_mul(&self.scale)?.broadcast_add(&self.shift)?)
    }
}

/// `ConvMlp`: depthwise 7×7 conv + batch norm → 1×1 `fc1` → GELU → 1×1 `fc2`.
#[derive(Debug, Clone)]
struct ConvMlp {
    conv: Conv,
    fc1: Conv,
    fc2: Conv,
}

impl ConvMlp {
    fn load(r: &Reader, dim: usize) -> Result<Self> {
        let (kernel, bias) = r.pp("conv").conv_bn()?;
        let conv = Conv::new(r.out(kernel)?, r.out(bias)?, 1, dim)?;
        let one = |name: &str, in_chs: usize| -> Result<Conv> {
            let w = r.get(&format!("{name}.weight"))?;
            Conv::new(
                r.out(w)?,
                r.out(r.get(&format!("{name}.bias"))?)?,
                1,
                in_chs,
            )
        };
        let fc1 = one("fc1", dim)?;
        let fc2 = one("fc2", fc1.out_chs())?;
        Ok(Self { conv, fc1, fc2 })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let ys = self.fc1.forward(&self.conv.forward(xs)?)?.gelu_erf()?;
        self.fc2.forward(&ys)
    }
}

/// timm's FastViT `Attention` over the plane's positions: fused `qkv` (no bias), softmax
/// attention, `proj` (with bias).
#[derive(Debug, Clone)]
struct Attention {
    qkv: Linear,
    proj: Linear,
    heads: usize,
}

impl Attention {
    fn load(r: &Reader, dim: usize) -> Result<Self> {
        if !dim.is_multiple_of(HEAD_DIM) {
            return Err(ClipError::UnsupportedArchitecture(format!(
                "a FastViT attention stage {dim} wide (heads are {HEAD_DIM} wide)"
            )));
        }
        Ok(Self {
            qkv: r.w.pp("qkv").linear(dim, 3 * dim, false)?,
            proj: r.w.pp("proj").linear(dim, dim, true)?,
            heads: dim / HEAD_DIM,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = xs.dims4()?;
        let n = h * w;
        // x = x.flatten(2).transpose(-2, -1)  (B, N, C)
        let tokens = xs.flatten_from(2)?.transpose(1, 2)?.contiguous()?;
        // qkv.reshape(B, N, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
        let qkv = self
            .qkv
            .forward(&tokens)?
            .reshape((b, n, 3, self.heads, HEAD_DIM))?
            .permute((2, 0, 3, 1, 4))?;
        let part = |i: usize| qkv.get(i)?.contiguous();
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let scale = (HEAD_DIM as f64).powf(-0.5);
        let att = candle_nn::ops::softmax_last_dim(&((q * scale)?.matmul(&k.t()?)?))?;
        // x.transpose(1, 2).reshape(B, N, C) → proj → transpose(-2, -1).reshape(B, C, H, W)
        let ys = att.matmul(&v)?.transpose(1, 2)?.reshape((b, n, c))?;
        let ys = self.proj.forward(&ys)?;
        Ok(ys.transpose(1, 2)?.reshape((b, c, h, w))?)
    }
}

/// One block of a stage.
#[derive(Debug, Clone)]
enum Block {
    /// `RepMixerBlock`: the folded `RepMixer` (a depthwise conv), then
    /// `x + layer_scale·mlp(x)`.
    RepMixer {
        mixer: Conv,
        mlp: ConvMlp,
        layer_scale: Tensor,
    },
    /// `AttentionBlock`: `x + ls1·attn(norm(x))`, then `x + ls2·mlp(x)`.
    Attention {
        norm: Affine,
        attn: Attention,
        layer_scale_1: Tensor,
        mlp: ConvMlp,
        layer_scale_2: Tensor,
    },
}

impl Block {
    fn load(r: &Reader, dim: usize) -> Result<Self> {
        if r.has("token_mixer.qkv.weight") {
            return Ok(Block::Attention {
                norm: r.pp("norm").affine()?,
                attn: Attention::load(&r.pp("token_mixer"), dim)?,
                layer_scale_1: r.pp("layer_scale_1").layer_scale()?,
                mlp: ConvMlp::load(&r.pp("mlp"), dim)?,
                layer_scale_2: r.pp("layer_scale_2").layer_scale()?,
            });
        }
        Ok(Block::RepMixer {
            mixer: rep_mixer(&r.pp("token_mixer"), dim)?,
            mlp: ConvMlp::load(&r.pp("mlp"), dim)?,
            layer_scale: r.pp("layer_scale").layer_scale()?,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Block::RepMixer {
                mixer,
                mlp,
                layer_scale,
            } => {
                let xs = mixer.forward(xs)?;
                Ok((&xs + mlp.forward(&xs)?.broadcast_mul(layer_scale)?)?)
            }
            Block::Attention {
                norm,
                attn,
                layer_scale_1,
                mlp,
                layer_scale_2,
            } => {
                let ys = attn.forward(&norm.forward(xs)?)?;
                let xs = (xs + ys.broadcast_mul(layer_scale_1)?)?;
                Ok((&xs + mlp.forward(&xs)?.broadcast_mul(layer_scale_2)?)?)
            }
        }
    }
}

/// `RepMixer.reparameterize()`: `x + γ·(mixer(x) − norm(x))` as one depthwise convolution,
/// `id + γ·(W_mixer − W_norm)` with bias `γ·(b_mixer − b_norm)`; `norm` is a batch-norm
/// identity alone.
fn rep_mixer(r: &Reader, dim: usize) -> Result<Conv> {
    let mixer = ConvBlock::mobile_one(&r.pp("mixer"), dim, 1, false)?.conv;
    let (w_mixer, b_mixer) = (
        mixer.weight.to_dtype(DType::F32)?,
        mixer.bias.to_dtype(DType::F32)?,
    );
    let k = w_mixer.dim(2)?;
    let (scale, shift) = r.pp("norm.identity").batch_norm()?;
    let device = w_mixer.device();
    let id = identity_kernel(dim, 1, k, device)?;
    let w_norm = id.broadcast_mul(&scale.reshape(((), 1, 1, 1))?)?;
    let gamma = r.get("layer_scale.gamma")?.reshape(((), 1, 1, 1))?;
    let kernel = (id + (w_mixer - w_norm)?.broadcast_mul(&gamma)?)?;
    let bias = ((b_mixer - shift)? * gamma.flatten_all()?)?;
    Conv::new(r.out(kernel)?, r.out(bias)?, 1, dim)
}

/// `RepConditionalPosEnc.reparameterize()`: `x + pos_enc(x)` as one depthwise convolution.
fn pos_enc(r: &Reader, dim: usize) -> Result<Conv> {
    let w = r.get("pos_enc.weight")?;
    let (per_group, k) = (w.dim(1)?, w.dim(2)?);
    let kernel = (identity_kernel(dim, per_group, k, w.device())? + w)?;
    Conv::new(r.out(kernel)?, r.out(r.get("pos_enc.bias")?)?, 1, dim)
}

/// `FastVitStage`: optional downsampling (`PatchEmbed`: large-kernel conv, then a 1×1
/// MobileOne block), optional positional encoding, blocks.
#[derive(Debug, Clone)]
struct Stage {
    downsample: Option<(ConvBlock, ConvBlock)>,
    pos_emb: Option<Conv>,
    blocks: Vec<Block>,
}

impl Stage {
    /// Returns the stage and its width.
    fn load(r: &Reader, in_chs: usize) -> Result<(Self, usize)> {
        let mut dim = in_chs;
        let downsample = if r.has("downsample.proj.0.large_conv.conv.weight") {
            let large = ConvBlock::large_kernel(&r.pp("downsample.proj.0"), in_chs)?;
            dim = large.conv.out_chs();
            let one = ConvBlock::mobile_one(&r.pp("downsample.proj.1"), dim, 1, true)?;
            Some((large, one))
        } else {
            None
        };
        let pos_emb = if r.has("pos_emb.pos_enc.weight") {
            Some(pos_enc(&r.pp("pos_emb"), dim)?)
        } else {
            None
        };
        let mut blocks = Vec::new();
        while r.has(&format!("blocks.{}.mlp.fc1.weight", blocks.len())) {
            blocks.push(Block::load(&r.pp(format!("blocks.{}", blocks.len())), dim)?);
        }
        let stage = Self {
            downsample,
            pos_emb,
            blocks,
        };
        Ok((stage, dim))
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut xs = xs.clone();
        if let Some((large, one)) = &self.downsample {
            xs = one.forward(&large.forward(&xs)?)?;
        }
        if let Some(pos) = &self.pos_emb {
            xs = pos.forward(&xs)?;
        }
        for block in &self.blocks {
            xs = block.forward(&xs)?;
        }
        Ok(xs)
    }

    fn kind(&self) -> &'static str {
        match self.blocks.first() {
            Some(Block::Attention { .. }) => "attention",
            _ => "repmixer",
        }
    }
}

/// What the checkpoint's tensors say the tower is: per stage its depth, width and token mixer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    pub stages: Vec<(usize, usize, &'static str)>,
}

/// The depths and widths of the MCi variants timm registers (`fastvit_mci0/1/2`), or `None`
/// for a name timm does not know.
fn known_variant(name: &str) -> Option<([usize; 4], [usize; 4])> {
    match name {
        "fastvit_mci0" => Some(([2, 6, 10, 2], [64, 128, 256, 512])),
        "fastvit_mci1" => Some(([4, 12, 20, 4], [64, 128, 256, 512])),
        "fastvit_mci2" => Some(([4, 12, 24, 4], [80, 160, 320, 640])),
        _ => None,
    }
}

/// Whether `name` is a FastViT MCi tower this module runs: `fastvit_mci0/1/2`, or another name
/// of that family (a locally registered variant such as the tests' `fastvit_mci_tiny`).
/// `fastvit_mci3/4` (MobileCLIP2-S3/S4) have a fifth stage with layer-norm attention blocks and
/// no stem scale branch: not implemented.
pub fn is_supported(name: &str) -> bool {
    name.starts_with("fastvit_mci") && !matches!(name, "fastvit_mci3" | "fastvit_mci4")
}

/// Refuses a checkpoint whose tensors disagree with a known `timm_model_name`, and any tower
/// that is not four stages of RepMixer blocks ending in attention.
fn check_variant(name: &str, s: &Structure) -> Result<()> {
    let kinds: Vec<&str> = s.stages.iter().map(|st| st.2).collect();
    if kinds != ["repmixer", "repmixer", "repmixer", "attention"] {
        return Err(ClipError::UnsupportedArchitecture(format!(
            "{name}: stages {kinds:?} (MCi has three RepMixer stages and an attention stage)"
        )));
    }
    if let Some((depths, widths)) = known_variant(name) {
        let found: Vec<(usize, usize)> = s.stages.iter().map(|st| (st.0, st.1)).collect();
        let expected: Vec<(usize, usize)> = depths.into_iter().zip(widths).collect();
        if found != expected {
            return Err(ClipError::Weights(format!(
                "{name} has (depth, width) {expected:?} per stage, the checkpoint {found:?}"
            )));
        }
    }
    Ok(())
}

/// The whole tower: `FastVit` with its classifier head as the projection.
#[derive(Debug, Clone)]
pub struct FastVit {
    stem: Vec<ConvBlock>,
    stages: Vec<Stage>,
    final_conv: ConvBlock,
    head: Linear,
    structure: Structure,
}

impl FastVit {
    /// Reads `trunk.*` (open_clip's `visual.trunk`) from `w`, the structure from its tensors,
    /// and checks it against `timm_model_name`; the head must give `projection_dim` values.
    pub fn new(w: &Weights, timm_model_name: &str, projection_dim: usize) -> Result<Self> {
        let r = Reader {
            w: w.clone(),
            dtype: w.dtype(),
        };
        // convolutional_stem: 3×3 stride 2, depthwise 3×3 stride 2, 1×1.
        let stem0 = ConvBlock::mobile_one(&r.pp("stem.0"), 3, 2, true)?;
        let width = stem0.conv.out_chs();
        let stem = vec![
            stem0,
            ConvBlock::mobile_one(&r.pp("stem.1"), width, 2, true)?,
            ConvBlock::mobile_one(&r.pp("stem.2"), width, 1, true)?,
        ];
        let (mut stages, mut dim) = (Vec::new(), width);
        while r.has(&format!("stages.{}.blocks.0.mlp.fc1.weight", stages.len())) {
            let (stage, out) = Stage::load(&r.pp(format!("stages.{}", stages.len())), dim)?;
            stages.push(stage);
            dim = out;
        }
        let structure = Structure {
            stages: stages
                .iter()
                .zip(stage_widths(&stages, width))
                .map(|(s, w)| (s.blocks.len(), w, s.kind()))
                .collect(),
        };
        check_variant(timm_model_name, &structure)?;
        let final_conv = ConvBlock::mobile_one(&r.pp("final_conv"), dim, 1, true)?;
        let features = final_conv.conv.out_chs();
        Ok(Self {
            stem,
            stages,
            head: w.pp("head.fc").linear(features, projection_dim, true)?,
            final_conv,
            structure,
        })
    }

    /// The structure read from the tensors.
    pub fn structure(&self) -> &Structure {
        &self.structure
    }

    /// `trunk(pixels)`: `[b, 3, S, S]` → `[b, projection_dim]` (stem, stages, final conv,
    /// average pool, head).
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let mut xs = pixels.clone();
        for block in &self.stem {
            xs = block.forward(&xs)?;
        }
        for stage in &self.stages {
            xs = stage.forward(&xs)?;
        }
        let xs = self.final_conv.forward(&xs)?;
        // ClassifierHead(pool_type="avg"): adaptive average pool, flatten, fc.
        let pooled = xs.mean((2, 3))?;
        Ok(self.head.forward(&pooled)?)
    }
}

/// Each stage's width: its downsampling's output, or the width it was given.
fn stage_widths(stages: &[Stage], stem_width: usize) -> Vec<usize> {
    let mut dim = stem_width;
    stages
        .iter()
        .map(|s| {
            if let Some((large, _)) = &s.downsample {
                dim = large.conv.out_chs();
            }
            dim
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two depthwise paths equal candle's grouped convolution, for strides 1 and 2, one or
    /// two outputs per channel, odd and even sizes.
    #[test]
    fn depthwise_paths_equal_the_grouped_convolution() {
        let dev = Device::Cpu;
        for (c, per_channel, k, stride, h, w) in [
            (3, 1, 3, 1, 7, 6),
            (4, 2, 7, 2, 9, 8),
            (5, 1, 3, 2, 8, 7),
            (2, 2, 3, 1, 4, 5),
        ] {
            let out = c * per_channel;
            let xs = Tensor::randn(0f32, 1.0, (2, c, h, w), &dev).unwrap();
            let weight = Tensor::randn(0f32, 1.0, (out, 1, k, k), &dev).unwrap();
            let bias = Tensor::randn(0f32, 1.0, out, &dev).unwrap();
            let conv = Conv::new(weight.clone(), bias.clone(), stride, c).unwrap();
            let padding = ((stride - 1) + (k - 1)) / 2;
            let expected = xs
                .conv2d(&weight, padding, stride, 1, c)
                .unwrap()
                .broadcast_add(&bias.reshape((1, out, 1, 1)).unwrap())
                .unwrap();
            let tensor_ops = conv
                .depthwise(&xs, padding)
                .unwrap()
                .broadcast_add(&bias.reshape((1, out, 1, 1)).unwrap())
                .unwrap();
            let loops = conv.depthwise_cpu(&xs, padding).unwrap();
            for got in [tensor_ops, loops] {
                assert_eq!(got.dims(), expected.dims());
                let diff = (got - &expected)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .max(0)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(
                    diff < 1e-5,
                    "c {c} x{per_channel} k {k} stride {stride}: {diff}"
                );
            }
        }
    }
}
