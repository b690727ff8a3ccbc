//! The CLIP text and vision transformers, mirroring `transformers/models/clip/modeling_clip.py`
//! (comments quote the Python lines being mirrored). Model code takes a config and a [`Weights`]
//! source and never touches disk or network.
//!
//! Written here rather than reused from `candle-transformers` because that one only knows
//! `quick_gelu`, and the text tower here must accept the trimmed, batch-padded token layout of
//! [`TextEncoder::encode`].

use std::sync::Arc;

use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::LayerNorm;

use crate::attention_pool::AttentionPool;
use crate::config::{
    Activation, ClipConfig, TextConfig, TextHead, VisionConfig, VisionHead, VisionTower,
};
use crate::error::{ClipError, Result};
use crate::fastvit::FastVit;
use crate::timm_vit::MciVit;
use crate::token_rows::TokenRows;
use crate::weights::{Embedding, Linear, Weights};

/// `CLIPAttention`: multi-head self-attention with biases on every projection.
#[derive(Debug, Clone)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
    head_dim: usize,
    scale: f64,
}

impl Attention {
    fn new(hidden: usize, heads: usize, w: &Weights) -> Result<Self> {
        let head_dim = hidden / heads;
        Ok(Self {
            q_proj: w.pp("q_proj").linear(hidden, hidden, true)?,
            k_proj: w.pp("k_proj").linear(hidden, hidden, true)?,
            v_proj: w.pp("v_proj").linear(hidden, hidden, true)?,
            out_proj: w.pp("out_proj").linear(hidden, hidden, true)?,
            heads,
            head_dim,
            // self.scale = self.head_dim**-0.5
            scale: (head_dim as f64).powf(-0.5),
        })
    }

    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, t, hidden) = xs.dims3()?;
        let split = |x: Tensor| -> candle_core::Result<Tensor> {
            x.reshape((b, t, self.heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split((self.q_proj.forward(xs)? * self.scale)?)?;
        let k = split(self.k_proj.forward(xs)?)?;
        let v = split(self.v_proj.forward(xs)?)?;
        // attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling (+ causal mask)
        let mut att = q.matmul(&k.t()?)?;
        if let Some(mask) = mask {
            att = att.broadcast_add(mask)?;
        }
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        let out = att.matmul(&v)?.transpose(1, 2)?.reshape((b, t, hidden))?;
        Ok(self.out_proj.forward(&out)?)
    }
}

/// `CLIPMLP` (and `SiglipMLP`): fc1 → activation → fc2.
#[derive(Debug, Clone)]
pub(crate) struct Mlp {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl Mlp {
    /// Reads `fc1` and `fc2` under `w`.
    pub(crate) fn new(
        hidden: usize,
        intermediate: usize,
        activation: Activation,
        w: &Weights,
    ) -> Result<Self> {
        Ok(Self {
            fc1: w.pp("fc1").linear(hidden, intermediate, true)?,
            fc2: w.pp("fc2").linear(intermediate, hidden, true)?,
            activation,
        })
    }

    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = self.fc1.forward(xs)?;
        let xs = match self.activation {
            // QuickGELUActivation: input * torch.sigmoid(1.702 * input)
            Activation::QuickGelu => (&xs * candle_nn::ops::sigmoid(&(&xs * 1.702)?)?)?,
            Activation::Gelu => xs.gelu_erf()?,
            Activation::GeluTanh => xs.gelu()?,
        };
        Ok(self.fc2.forward(&xs)?)
    }
}

/// `CLIPEncoderLayer`: pre-norm attention and MLP blocks with residuals.
#[derive(Debug, Clone)]
struct EncoderLayer {
    layer_norm1: LayerNorm,
    self_attn: Attention,
    layer_norm2: LayerNorm,
    mlp: Mlp,
}

impl EncoderLayer {
    fn new(t: &Tower, w: &Weights) -> Result<Self> {
        Ok(Self {
            layer_norm1: w.pp("layer_norm1").layer_norm(t.hidden, t.eps)?,
            self_attn: Attention::new(t.hidden, t.heads, &w.pp("self_attn"))?,
            layer_norm2: w.pp("layer_norm2").layer_norm(t.hidden, t.eps)?,
            mlp: Mlp::new(t.hidden, t.intermediate, t.activation, &w.pp("mlp"))?,
        })
    }

    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let residual = xs;
        let xs = self
            .self_attn
            .forward(&self.layer_norm1.forward(xs)?, mask)?;
        let xs = (residual + xs)?;
        let residual = &xs;
        let ys = self.mlp.forward(&self.layer_norm2.forward(&xs)?)?;
        Ok((residual + ys)?)
    }
}

/// The shape of a transformer encoder: what the text and vision towers have in common.
#[derive(Debug, Clone, Copy)]
struct Tower {
    layers: usize,
    hidden: usize,
    intermediate: usize,
    heads: usize,
    activation: Activation,
    eps: f64,
}

impl From<&TextConfig> for Tower {
    fn from(c: &TextConfig) -> Self {
        Tower {
            layers: c.num_hidden_layers,
            hidden: c.hidden_size,
            intermediate: c.intermediate_size,
            heads: c.num_attention_heads,
            activation: c.activation,
            eps: c.layer_norm_eps,
        }
    }
}

impl From<&VisionConfig> for Tower {
    fn from(c: &VisionConfig) -> Self {
        Tower {
            layers: c.num_hidden_layers,
            hidden: c.hidden_size,
            intermediate: c.intermediate_size,
            heads: c.num_attention_heads,
            activation: c.activation,
            eps: c.layer_norm_eps,
        }
    }
}

/// `encoder.layers.{i}` for every layer of the tower.
fn encoder_layers(t: Tower, w: &Weights) -> Result<Vec<EncoderLayer>> {
    (0..t.layers)
        .map(|i| EncoderLayer::new(&t, &w.pp(format!("encoder.layers.{i}"))))
        .collect()
}

/// Divides each row by its L2 norm.
pub fn l2_normalize(xs: &Tensor) -> Result<Tensor> {
    let norm = xs.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
    Ok(xs.broadcast_div(&norm)?)
}

/// Where the text tower's token rows come from: its weights file, or a [`TokenRows`] table
/// filled as queries need it.
#[derive(Debug, Clone)]
enum TokenTable {
    Whole(Embedding),
    Rows(Arc<TokenRows>),
}

/// The text tower with its projection: `CLIPTextTransformer` + `text_projection`, or
/// `SiglipTextTransformer` with its `head` (see [`TextHead`]).
#[derive(Debug, Clone)]
pub struct TextEncoder {
    token_embedding: TokenTable,
    position_embedding: Tensor,
    layers: Vec<EncoderLayer>,
    final_layer_norm: LayerNorm,
    projection: Linear,
    config: TextConfig,
    projection_dim: usize,
    device: Device,
}

impl TextEncoder {
    /// Reads `text_model.*` and `text_projection.weight` (SigLIP: `text_model.head.*`) from `w`
    /// (the root of a checkpoint, or of a text-only export).
    pub fn new(config: &TextConfig, projection_dim: usize, w: &Weights) -> Result<Self> {
        let c = config;
        let table = w
            .pp("text_model.embeddings.token_embedding")
            .embedding(c.vocab_size, c.hidden_size)?;
        Self::build(config, projection_dim, w, TokenTable::Whole(table))
    }

    /// Like [`TextEncoder::new`] for a file without the token embedding (the browser's GGUF
    /// variants): its rows come from `rows`, which must be `vocab_size` rows of `hidden_size`.
    pub fn with_token_rows(
        config: &TextConfig,
        projection_dim: usize,
        w: &Weights,
        rows: Arc<TokenRows>,
    ) -> Result<Self> {
        let c = config;
        if (rows.rows(), rows.dim()) != (c.vocab_size, c.hidden_size) {
            return Err(ClipError::ShapeMismatch {
                name: "token rows".into(),
                expected: vec![c.vocab_size, c.hidden_size],
                found: vec![rows.rows(), rows.dim()],
            });
        }
        Self::build(config, projection_dim, w, TokenTable::Rows(rows))
    }

    fn build(
        config: &TextConfig,
        projection_dim: usize,
        w: &Weights,
        token_embedding: TokenTable,
    ) -> Result<Self> {
        let c = config;
        let tm = w.pp("text_model");
        let emb = tm.pp("embeddings");
        Ok(Self {
            token_embedding,
            position_embedding: emb
                .pp("position_embedding")
                .tensor("weight", &[c.max_position_embeddings, c.hidden_size])?,
            layers: encoder_layers(Tower::from(c), &tm)?,
            final_layer_norm: tm
                .pp("final_layer_norm")
                .layer_norm(c.hidden_size, c.layer_norm_eps)?,
            projection: match c.head {
                TextHead::EndToken => {
                    w.pp("text_projection")
                        .linear(c.hidden_size, projection_dim, false)?
                }
                TextHead::LastPosition { .. } => {
                    tm.pp("head").linear(c.hidden_size, projection_dim, true)?
                }
            },
            config: c.clone(),
            projection_dim,
            device: w.device().clone(),
        })
    }

    /// The tower's configuration.
    pub fn config(&self) -> &TextConfig {
        &self.config
    }

    /// The token rows, for an encoder built [`TextEncoder::with_token_rows`]: add the rows a
    /// query lacks ([`TextEncoder::missing_rows`]) before encoding it.
    pub fn token_rows(&self) -> Option<&Arc<TokenRows>> {
        match &self.token_embedding {
            TokenTable::Rows(rows) => Some(rows),
            TokenTable::Whole(_) => None,
        }
    }

    /// Size of the output vectors.
    pub fn dim(&self) -> usize {
        self.projection_dim
    }

    /// The reference computation over every position of `ids` (`[b, t]` u32), pooled at the
    /// first occurrence of the largest id of each row (the end token, 49407, for CLIP's
    /// vocabulary): `CLIPTextTransformer.forward` with
    /// `pooled_output = last_hidden_state[arange(b), input_ids.argmax(dim=-1)]`; SigLIP pools
    /// at the last position, `last_hidden_state[:, -1, :]`.
    /// Returns unnormalised `[b, projection_dim]` f32 features (`get_text_features`).
    pub fn forward_ids(&self, ids: &Tensor) -> Result<Tensor> {
        let rows = ids.to_vec2::<u32>()?;
        let pool = rows
            .iter()
            .map(|r| match self.config.head {
                TextHead::EndToken => first_max_position(r),
                TextHead::LastPosition { .. } => r.len().saturating_sub(1),
            })
            .collect::<Vec<_>>();
        self.forward_pooled(ids, &pool)
    }

    /// Encodes token sequences (each as produced by [`crate::ClipTokenizer`]). A causal tower
    /// pooled at the end token (CLIP) computes each only up to its end token and pads the batch
    /// only to its longest member: because the end token sees nothing after it, this equals
    /// [`Self::forward_ids`] on the 77-token padded input, at a fraction of the cost for short
    /// queries. A tower without the causal mask sees the padding too, so it runs the whole
    /// context, each sequence padded as its model was trained: SigLIP with its pad id, pooled
    /// at the last position; MobileCLIP with open_clip's zeros, pooled at the end token.
    /// Returns unnormalised `[b, projection_dim]` features.
    pub fn encode(&self, sequences: &[Vec<u32>]) -> Result<Tensor> {
        if sequences.is_empty() {
            return Err(ClipError::Input("empty batch of token sequences".into()));
        }
        let Some(pad) = self.pad_id() else {
            return self.encode_trimmed(sequences);
        };
        let context = self.config.max_position_embeddings;
        let rows = sequences
            .iter()
            .map(|s| padded(s, pad, context))
            .collect::<Result<Vec<_>>>()?;
        self.forward_ids(&self.ids_tensor(rows)?)
    }

    /// The id [`Self::encode`] pads each sequence with to the whole context; `None` for a causal
    /// tower pooled at the end token, which is trimmed instead.
    fn pad_id(&self) -> Option<u32> {
        match self.config.head {
            TextHead::LastPosition { pad_id } => Some(pad_id),
            TextHead::EndToken if self.config.causal => None,
            // Not causal, pooled at the end token: MobileCLIP, padded as open_clip pads.
            TextHead::EndToken => Some(0),
        }
    }

    /// The token rows [`Self::encode`] of `sequence` needs that are not here yet: its own tokens,
    /// and the pad id where the tower pads to its context. Empty for an encoder whose weights
    /// hold the whole table; an encoder built [`TextEncoder::with_token_rows`] must be given them
    /// ([`TokenRows::insert`]) before it encodes `sequence`.
    pub fn missing_rows(&self, sequence: &[u32]) -> Vec<u32> {
        let TokenTable::Rows(rows) = &self.token_embedding else {
            return Vec::new();
        };
        let mut ids = sequence.to_vec();
        ids.extend(self.pad_id());
        rows.missing(&ids)
    }

    fn ids_tensor(&self, rows: Vec<Vec<u32>>) -> Result<Tensor> {
        let (b, t) = (rows.len(), rows.first().map_or(0, Vec::len));
        let flat = rows.into_iter().flatten().collect::<Vec<_>>();
        Ok(Tensor::from_vec(flat, (b, t), &self.device)?)
    }

    /// The causal tower's short cut: each sequence up to its end token, the batch padded to its
    /// longest member.
    fn encode_trimmed(&self, sequences: &[Vec<u32>]) -> Result<Tensor> {
        let trimmed: Vec<&[u32]> = sequences
            .iter()
            .map(|s| {
                if s.is_empty() {
                    return Err(ClipError::Input("empty token sequence".into()));
                }
                Ok(&s[..=first_max_position(s)])
            })
            .collect::<Result<_>>()?;
        let longest = trimmed.iter().map(|s| s.len()).max().unwrap_or(1);
        if longest > self.config.max_position_embeddings {
            return Err(ClipError::Input(format!(
                "token sequence of {longest} tokens is longer than the context of {}",
                self.config.max_position_embeddings
            )));
        }
        let mut flat = Vec::with_capacity(trimmed.len() * longest);
        for s in &trimmed {
            flat.extend_from_slice(s);
            // Padding sits after the end token, where the causal mask hides it from the pooled position.
            flat.extend(std::iter::repeat_n(
                *s.last().unwrap_or(&0),
                longest - s.len(),
            ));
        }
        let ids = Tensor::from_vec(flat, (trimmed.len(), longest), &self.device)?;
        let pool = trimmed.iter().map(|s| s.len() - 1).collect::<Vec<_>>();
        self.forward_pooled(&ids, &pool)
    }

    /// [`Self::encode`] followed by L2 normalisation, as plain vectors.
    pub fn embed(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        Ok(l2_normalize(&self.encode(sequences)?)?.to_vec2::<f32>()?)
    }

    fn forward_pooled(&self, ids: &Tensor, pool: &[usize]) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if t > self.config.max_position_embeddings {
            return Err(ClipError::Input(format!(
                "{t} tokens exceed the context of {}",
                self.config.max_position_embeddings
            )));
        }
        if let Some(bad) = ids
            .flatten_all()?
            .to_vec1::<u32>()?
            .into_iter()
            .find(|&id| id as usize >= self.config.vocab_size)
        {
            return Err(ClipError::Input(format!(
                "token id {bad} is outside the vocabulary of {}",
                self.config.vocab_size
            )));
        }
        // embeddings = inputs_embeds + self.position_embedding(position_ids)
        let positions = self.position_embedding.narrow(0, 0, t)?;
        let tokens = match &self.token_embedding {
            TokenTable::Whole(table) => table.forward(ids)?,
            TokenTable::Rows(rows) => rows.forward(ids, &self.device)?,
        };
        let mut xs = tokens.broadcast_add(&positions)?;
        let mask = if self.config.causal {
            // _create_4d_causal_attention_mask: -inf above the diagonal.
            let mask: Vec<f32> = (0..t)
                .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
                .collect();
            Some(Tensor::from_vec(mask, (t, t), &self.device)?.to_dtype(xs.dtype())?)
        } else {
            // SigLIP: "the text model does not use a causal mask"; no padding mask either.
            None
        };
        for layer in &self.layers {
            xs = layer.forward(&xs, mask.as_ref())?;
        }
        let xs = self.final_layer_norm.forward(&xs)?;
        let hidden = self.config.hidden_size;
        let index: Vec<u32> = pool
            .iter()
            .enumerate()
            .map(|(row, &p)| (row * t + p) as u32)
            .collect();
        let index = Tensor::from_vec(index, b, &self.device)?;
        let pooled = xs.reshape((b * t, hidden))?.index_select(&index, 0)?;
        Ok(self.projection.forward(&pooled)?.to_dtype(DType::F32)?)
    }
}

/// `ids` followed by `pad` up to `context` ids; an error for an empty or too long sequence.
fn padded(ids: &[u32], pad: u32, context: usize) -> Result<Vec<u32>> {
    if ids.is_empty() {
        return Err(ClipError::Input("empty token sequence".into()));
    }
    if ids.len() > context {
        return Err(ClipError::Input(format!(
            "token sequence of {} tokens is longer than the context of {context}",
            ids.len()
        )));
    }
    let mut row = ids.to_vec();
    row.resize(context, pad);
    Ok(row)
}

/// Position of the first occurrence of the largest id (torch's `argmax` picks the first maximum).
fn first_max_position(ids: &[u32]) -> usize {
    let mut best = 0;
    for (i, &id) in ids.iter().enumerate() {
        if id > ids[best] {
            best = i;
        }
    }
    best
}

/// How the vision tower pools (see [`VisionHead`]).
#[derive(Debug, Clone)]
enum VisionPool {
    /// CLIP: the class token, then `visual_projection`.
    ClassToken {
        class_embedding: Tensor,
        pre_layrnorm: LayerNorm,
        projection: Linear,
    },
    /// SigLIP: `vision_model.head`.
    Attention(AttentionPool),
}

/// The vision tower with its projection: CLIP's ViT (`CLIPVisionTransformer` +
/// `visual_projection`) or SigLIP's (`SiglipVisionTransformer` with its attention-pooling head,
/// see [`VisionHead`]), or MobileCLIP's FastViT ([`crate::fastvit`]) or ViT with a
/// convolutional stem ([`crate::timm_vit`]), as the config's [`VisionTower`] says.
#[derive(Debug, Clone)]
pub struct VisionEncoder {
    tower: Tower2d,
    config: VisionConfig,
    projection_dim: usize,
    /// The float type the tower computes in.
    dtype: DType,
}

#[derive(Debug, Clone)]
enum Tower2d {
    Vit(Box<Vit>),
    /// A class-token ViT with f32 weights on the CPU: [`crate::cpu::vit`].
    #[cfg(not(target_arch = "wasm32"))]
    Fused(Box<crate::cpu::vit::FusedVit>),
    FastVit(Box<FastVit>),
    MciVit(Box<MciVit>),
}

/// The transformers ViT towers: CLIP's and SigLIP's.
#[derive(Debug, Clone)]
struct Vit {
    patch_embedding: Tensor,
    patch_bias: Option<Tensor>,
    position_embedding: Tensor,
    layers: Vec<EncoderLayer>,
    post_layernorm: LayerNorm,
    pool: VisionPool,
}

impl Vit {
    /// Reads `vision_model.*` and `visual_projection.weight` from `w`.
    fn new(c: &VisionConfig, projection_dim: usize, w: &Weights) -> Result<Self> {
        let vm = w.pp("vision_model");
        let emb = vm.pp("embeddings");
        let patches = c.grid() * c.grid();
        let class_token = c.head == VisionHead::ClassToken;
        let pool = match c.head {
            VisionHead::ClassToken => VisionPool::ClassToken {
                class_embedding: emb.tensor("class_embedding", &[c.hidden_size])?,
                // (sic) the transformers attribute is spelled `pre_layrnorm`.
                pre_layrnorm: vm
                    .pp("pre_layrnorm")
                    .layer_norm(c.hidden_size, c.layer_norm_eps)?,
                projection: w.pp("visual_projection").linear(
                    c.hidden_size,
                    projection_dim,
                    false,
                )?,
            },
            VisionHead::AttentionPool => {
                if projection_dim != c.hidden_size {
                    return Err(ClipError::Config(format!(
                        "an attention-pooled vision tower makes {}-value vectors, not {projection_dim}",
                        c.hidden_size
                    )));
                }
                VisionPool::Attention(AttentionPool::new(c, &vm.pp("head"))?)
            }
        };
        let patch = emb.pp("patch_embedding");
        Ok(Self {
            patch_embedding: patch.tensor(
                "weight",
                &[c.hidden_size, c.num_channels, c.patch_size, c.patch_size],
            )?,
            patch_bias: (!class_token)
                .then(|| patch.tensor("bias", &[c.hidden_size]))
                .transpose()?,
            position_embedding: emb.pp("position_embedding").tensor(
                "weight",
                &[patches + usize::from(class_token), c.hidden_size],
            )?,
            layers: encoder_layers(Tower::from(c), &vm)?,
            post_layernorm: vm
                .pp("post_layernorm")
                .layer_norm(c.hidden_size, c.layer_norm_eps)?,
            pool,
        })
    }

    /// Preprocessed pixels in the model's float type → unnormalised features.
    fn forward(&self, c: &VisionConfig, pixels: &Tensor) -> Result<Tensor> {
        let b = pixels.dim(0)?;
        // patch_embeds = self.patch_embedding(pixel_values)  (Conv2d, stride = patch)
        let mut patches = pixels.conv2d(&self.patch_embedding, 0, c.patch_size, 1, 1)?;
        if let Some(bias) = &self.patch_bias {
            patches = patches.broadcast_add(&bias.reshape((1, c.hidden_size, 1, 1))?)?;
        }
        // patch_embeds.flatten(2).transpose(1, 2)
        let patches = patches.flatten_from(2)?.transpose(1, 2)?;
        let mut xs = match &self.pool {
            VisionPool::ClassToken {
                class_embedding,
                pre_layrnorm,
                ..
            } => {
                let class = class_embedding
                    .reshape((1, 1, c.hidden_size))?
                    .broadcast_as((b, 1, c.hidden_size))?;
                let xs =
                    Tensor::cat(&[&class, &patches], 1)?.broadcast_add(&self.position_embedding)?;
                pre_layrnorm.forward(&xs)?
            }
            VisionPool::Attention(_) => patches.broadcast_add(&self.position_embedding)?,
        };
        for layer in &self.layers {
            xs = layer.forward(&xs, None)?;
        }
        let pooled = match &self.pool {
            // pooled_output = last_hidden_state[:, 0, :]; pooled_output = self.post_layernorm(pooled_output)
            VisionPool::ClassToken { projection, .. } => projection.forward(
                &self
                    .post_layernorm
                    .forward(&xs.narrow(1, 0, 1)?.squeeze(1)?)?,
            )?,
            // last_hidden_state = self.post_layernorm(last_hidden_state); self.head(last_hidden_state)
            VisionPool::Attention(head) => head.forward(&self.post_layernorm.forward(&xs)?)?,
        };
        Ok(pooled)
    }
}

impl VisionEncoder {
    /// Reads the tower from `w`: `vision_model.*` (and `visual_projection.weight`) for a ViT,
    /// `visual.trunk.*` for MobileCLIP's timm towers. A class-token ViT with dense f32 weights
    /// on the CPU computes through the fused path ([`crate::cpu`]); everything else through
    /// candle's ops.
    pub fn new(config: &VisionConfig, projection_dim: usize, w: &Weights) -> Result<Self> {
        #[cfg(not(target_arch = "wasm32"))]
        if config.tower == VisionTower::Vit
            && config.head == VisionHead::ClassToken
            && w.device().is_cpu()
            && w.dtype() == DType::F32
            && w.is_dense()
        {
            let vit = crate::cpu::vit::FusedVit::new(config, projection_dim, w)?;
            return Ok(Self::with_tower(
                Tower2d::Fused(Box::new(vit)),
                config,
                projection_dim,
                w,
            ));
        }
        Self::with_candle_ops(config, projection_dim, w)
    }

    /// [`Self::new`] always computing through candle's ops: the reference the fused CPU path is
    /// tested and measured against.
    pub fn with_candle_ops(
        config: &VisionConfig,
        projection_dim: usize,
        w: &Weights,
    ) -> Result<Self> {
        let tower = match &config.tower {
            VisionTower::Vit => Tower2d::Vit(Box::new(Vit::new(config, projection_dim, w)?)),
            VisionTower::FastVitMci { timm_model_name } => Tower2d::FastVit(Box::new(
                FastVit::new(&w.pp("visual.trunk"), timm_model_name, projection_dim)?,
            )),
            VisionTower::MciVit { timm_model_name } => Tower2d::MciVit(Box::new(MciVit::new(
                &w.pp("visual.trunk"),
                timm_model_name,
                projection_dim,
            )?)),
        };
        Ok(Self::with_tower(tower, config, projection_dim, w))
    }

    fn with_tower(
        tower: Tower2d,
        config: &VisionConfig,
        projection_dim: usize,
        w: &Weights,
    ) -> Self {
        Self {
            tower,
            config: config.clone(),
            projection_dim,
            dtype: w.dtype(),
        }
    }

    /// The tower's configuration.
    pub fn config(&self) -> &VisionConfig {
        &self.config
    }

    /// Whether this encoder computes through the fused CPU path ([`crate::cpu`]) rather than
    /// candle's ops.
    pub fn is_fused(&self) -> bool {
        match self.tower {
            #[cfg(not(target_arch = "wasm32"))]
            Tower2d::Fused(_) => true,
            _ => false,
        }
    }

    /// Size of the output vectors.
    pub fn dim(&self) -> usize {
        self.projection_dim
    }

    /// `get_image_features`: preprocessed pixels `[b, 3, S, S]` → unnormalised
    /// `[b, projection_dim]` f32 features, whatever float type the model computes in.
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let c = &self.config;
        let (b, ch, h, w) = pixels.dims4()?;
        if (ch, h, w) != (c.num_channels, c.image_size, c.image_size) {
            return Err(ClipError::Input(format!(
                "pixels have shape [{b}, {ch}, {h}, {w}], the model needs [b, {}, {}, {}]",
                c.num_channels, c.image_size, c.image_size
            )));
        }
        // The model's float type (f32, or f16 with `Weights::with_dtype`).
        let pixels = pixels.to_dtype(self.dtype)?;
        let features = match &self.tower {
            Tower2d::Vit(vit) => vit.forward(c, &pixels)?,
            #[cfg(not(target_arch = "wasm32"))]
            Tower2d::Fused(vit) => vit.forward(&pixels)?,
            Tower2d::FastVit(fastvit) => fastvit.forward(&pixels)?,
            Tower2d::MciVit(vit) => vit.forward(&pixels)?,
        };
        Ok(features.to_dtype(DType::F32)?)
    }

    /// [`Self::forward`] followed by L2 normalisation, as plain vectors.
    pub fn embed(&self, pixels: &Tensor) -> Result<Vec<Vec<f32>>> {
        Ok(l2_normalize(&self.forward(pixels)?)?.to_vec2::<f32>()?)
    }
}

/// Both towers: a whole `CLIPModel`.
#[derive(Debug, Clone)]
pub struct ClipModel {
    pub text: TextEncoder,
    pub vision: VisionEncoder,
    pub config: ClipConfig,
}

impl ClipModel {
    /// Builds both towers from a checkpoint's weights.
    pub fn new(config: &ClipConfig, w: &Weights) -> Result<Self> {
        Ok(Self {
            text: TextEncoder::new(&config.text, config.projection_dim, w)?,
            vision: VisionEncoder::new(&config.vision, config.projection_dim, w)?,
            config: config.clone(),
        })
    }
}
