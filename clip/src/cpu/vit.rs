//! How does a batch of images go through a CLIP ViT on the CPU at the speed of its matrix
//! products? The same computation as [`crate::model`]'s tower (`CLIPVisionTransformer` +
//! `visual_projection`), without a tensor per op:
//!
//! - **Buffers that outlive the op.** Each thread keeps one set of buffers (the residual
//!   stream, the normed input, q/k/v, the attention output, the MLP's hidden layer) and every
//!   layer writes into them: no allocation, no fresh zeroed page, per op.
//! - **Fused steps.** q, k and v are one product; a bias rides with the next pass (with the
//!   activation after `fc1`, into the residual stream before `out_proj` and `fc2`, whose
//!   products then accumulate into that stream: the residual add costs nothing); attention reads
//!   its heads in place and scales inside the product.
//! - **Activations column-major** (feature by feature, each feature's values for every token
//!   row in a run): `gemm` then packs the activations, small panels, instead of the weights
//!   on every product (ViT-B/32: 7% faster at batch 32 than row-major, 2.7× at batch 1), and a
//!   bias is one value per run.
//! - **One slice of the batch per thread.** The batch is cut into one slice per core and each
//!   slice runs the whole tower with single-threaded products: no barrier per op. A batch too
//!   small to cut runs as one slice whose products use every core.

use std::cell::RefCell;

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use super::gemm::{Parallelism, View, matmul};
use super::kernels::{
    add_bias, add_column_bias, column_bias_activation, layer_norm_columns, softmax,
};
use crate::config::{Activation, VisionConfig};
use crate::error::Result;
use crate::weights::Weights;

/// At most this many token rows per slice: bounds each thread's buffers (about 31 MB for
/// ViT-B/32's 20 images) whatever the batch size.
const MAX_ROWS: usize = 1024;

/// A linear layer's `[out, in]` weight (row-major, as checkpoints store it) and its bias.
#[derive(Debug, Clone)]
struct Dense {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Dense {
    fn read(w: &Weights, inputs: usize, outputs: usize) -> Result<Self> {
        Ok(Dense {
            weight: values(w, "weight", &[outputs, inputs])?,
            bias: values(w, "bias", &[outputs])?,
            inputs,
            outputs,
        })
    }

    /// q, k and v as one layer of `3 × hidden` outputs.
    fn qkv(w: &Weights, hidden: usize) -> Result<Self> {
        let parts =
            ["q_proj", "k_proj", "v_proj"].map(|name| Dense::read(&w.pp(name), hidden, hidden));
        let mut qkv = Dense {
            weight: Vec::with_capacity(3 * hidden * hidden),
            bias: Vec::with_capacity(3 * hidden),
            inputs: hidden,
            outputs: 3 * hidden,
        };
        for part in parts {
            let part = part?;
            qkv.weight.extend(part.weight);
            qkv.bias.extend(part.bias);
        }
        Ok(qkv)
    }

    /// The weight as the `inputs × outputs` right operand.
    fn operand(&self) -> (&[f32], View) {
        (&self.weight, View::transposed(self.inputs, self.outputs))
    }
}

/// A `LayerNorm`'s weight and bias.
#[derive(Debug, Clone)]
struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Norm {
    fn read(w: &Weights, dim: usize) -> Result<Self> {
        Ok(Norm {
            weight: values(w, "weight", &[dim])?,
            bias: values(w, "bias", &[dim])?,
        })
    }

    /// Normalises each row of the column-major `src` into `dst`.
    fn rows(&self, src: &[f32], dst: &mut [f32], eps: f32, stats: &mut Vec<f32>) {
        layer_norm_columns(src, dst, &self.weight, &self.bias, eps, stats);
    }
}

/// `CLIPEncoderLayer`'s weights.
#[derive(Debug, Clone)]
struct Layer {
    norm1: Norm,
    qkv: Dense,
    out: Dense,
    norm2: Norm,
    fc1: Dense,
    fc2: Dense,
}

/// The tower's sizes.
#[derive(Debug, Clone, Copy)]
struct Shape {
    hidden: usize,
    heads: usize,
    intermediate: usize,
    channels: usize,
    image: usize,
    patch: usize,
    /// Patches per image.
    patches: usize,
    /// Token rows per image: the class token and the patches.
    tokens: usize,
    projection: usize,
}

/// A class-token ViT (CLIP's, OpenCLIP's) with f32 weights, ready for [`FusedVit::forward`].
#[derive(Debug, Clone)]
pub struct FusedVit {
    shape: Shape,
    activation: Activation,
    eps: f32,
    /// The patch convolution as a `[hidden, channels · patch²]` matrix.
    patch: Vec<f32>,
    class: Vec<f32>,
    /// The position embedding transposed, `[hidden, tokens]`: one run of `tokens` values per
    /// feature, as the column-major stream needs them.
    position: Vec<f32>,
    pre_norm: Norm,
    layers: Vec<Layer>,
    post_norm: Norm,
    projection: Dense,
}

/// The buffers one slice of the batch runs in, kept by each thread between calls.
#[derive(Default)]
struct Buffers {
    stream: Vec<f32>,
    normed: Vec<f32>,
    qkv: Vec<f32>,
    attention: Vec<f32>,
    hidden: Vec<f32>,
    scores: Vec<f32>,
    /// Layer norm's per-row mean and scale.
    stats: Vec<f32>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// A tensor of `w` as f32 values, its shape checked.
fn values(w: &Weights, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    Ok(w.tensor(name, shape)?.flatten_all()?.to_vec1::<f32>()?)
}

/// A row-major matrix of `cols` columns, column-major.
fn transposed(values: &[f32], cols: usize) -> Vec<f32> {
    let rows = values.len() / cols;
    (0..cols)
        .flat_map(|j| (0..rows).map(move |i| values[i * cols + j]))
        .collect()
}

/// `buffer` resized to `len` values; what it held before is garbage the caller overwrites.
fn sized(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    buffer.resize(len, 0.0);
    &mut buffer[..len]
}

impl FusedVit {
    /// Reads the tower as [`crate::model`] does (`vision_model.*`, `visual_projection.weight`).
    pub fn new(c: &VisionConfig, projection_dim: usize, w: &Weights) -> Result<Self> {
        let (hidden, patches) = (c.hidden_size, c.grid() * c.grid());
        let shape = Shape {
            hidden,
            heads: c.num_attention_heads,
            intermediate: c.intermediate_size,
            channels: c.num_channels,
            image: c.image_size,
            patch: c.patch_size,
            patches,
            tokens: patches + 1,
            projection: projection_dim,
        };
        let vm = w.pp("vision_model");
        let emb = vm.pp("embeddings");
        let projection = w.pp("visual_projection");
        Ok(FusedVit {
            shape,
            activation: c.activation,
            eps: c.layer_norm_eps as f32,
            patch: values(
                &emb.pp("patch_embedding"),
                "weight",
                &[hidden, c.num_channels, c.patch_size, c.patch_size],
            )?,
            class: values(&emb, "class_embedding", &[hidden])?,
            position: transposed(
                &values(
                    &emb.pp("position_embedding"),
                    "weight",
                    &[patches + 1, hidden],
                )?,
                hidden,
            ),
            // (sic) the transformers attribute is spelled `pre_layrnorm`.
            pre_norm: Norm::read(&vm.pp("pre_layrnorm"), hidden)?,
            layers: (0..c.num_hidden_layers)
                .map(|i| Self::layer(c, &vm.pp(format!("encoder.layers.{i}"))))
                .collect::<Result<_>>()?,
            post_norm: Norm::read(&vm.pp("post_layernorm"), hidden)?,
            projection: Dense {
                weight: values(&projection, "weight", &[projection_dim, hidden])?,
                bias: vec![0.0; projection_dim],
                inputs: hidden,
                outputs: projection_dim,
            },
        })
    }

    fn layer(c: &VisionConfig, w: &Weights) -> Result<Layer> {
        let (hidden, inter) = (c.hidden_size, c.intermediate_size);
        Ok(Layer {
            norm1: Norm::read(&w.pp("layer_norm1"), hidden)?,
            qkv: Dense::qkv(&w.pp("self_attn"), hidden)?,
            out: Dense::read(&w.pp("self_attn.out_proj"), hidden, hidden)?,
            norm2: Norm::read(&w.pp("layer_norm2"), hidden)?,
            fc1: Dense::read(&w.pp("mlp.fc1"), hidden, inter)?,
            fc2: Dense::read(&w.pp("mlp.fc2"), inter, hidden)?,
        })
    }

    /// Preprocessed pixels `[b, channels, S, S]` (f32, checked by the caller) → unnormalised
    /// `[b, projection_dim]` features.
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let s = self.shape;
        let b = pixels.dim(0)?;
        if b == 0 {
            return Ok(Tensor::zeros((0, s.projection), DType::F32, &Device::Cpu)?);
        }
        let pixels = pixels.flatten_all()?.to_vec1::<f32>()?;
        let per_image = s.channels * s.image * s.image;
        let threads = rayon::current_num_threads().max(1);
        // As many slices as threads, or a multiple of that where a slice would pass MAX_ROWS,
        // all of about the same size so that no thread waits for another.
        let most = (MAX_ROWS / s.tokens).max(1);
        let slices = threads * b.div_ceil(threads * most);
        let slice = b.div_ceil(slices).max(1);
        let parallelism = if slice >= b && threads > 1 {
            Parallelism::Rayon(threads)
        } else {
            Parallelism::None
        };
        let features: Vec<Vec<f32>> = pixels
            .par_chunks(slice * per_image)
            .map(|images| {
                BUFFERS.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut buffers) => self.slice(images, &mut buffers, parallelism),
                    // A thread that picked up a second slice while waiting inside the first.
                    Err(_) => self.slice(images, &mut Buffers::default(), parallelism),
                })
            })
            .collect();
        Ok(Tensor::from_vec(
            features.concat(),
            (b, s.projection),
            &Device::Cpu,
        )?)
    }

    /// The whole tower over a few images: their features, `projection` values each.
    fn slice(&self, pixels: &[f32], buf: &mut Buffers, par: Parallelism) -> Vec<f32> {
        let s = self.shape;
        let images = pixels.len() / (s.channels * s.image * s.image);
        self.embed(pixels, images, buf, par);
        for layer in &self.layers {
            self.attention_block(layer, images, buf, par);
            self.mlp_block(layer, images, buf, par);
        }
        self.pool(images, buf, par)
    }

    /// Patches, class token and positions, then `pre_layrnorm`, into the residual stream.
    fn embed(&self, pixels: &[f32], images: usize, buf: &mut Buffers, par: Parallelism) {
        let s = self.shape;
        let (h, p, cpp) = (s.hidden, s.patch, s.channels * s.patch * s.patch);
        let patch_rows = images * s.patches;
        // The stride-`patch` convolution as a product: each patch's values in (channel, y, x)
        // order, the order of the kernel's weights.
        let patches = sized(&mut buf.hidden, patch_rows * cpp);
        let grid = s.image / p;
        let mut at = 0;
        for image in pixels.chunks_exact(s.channels * s.image * s.image) {
            for (gy, gx) in (0..grid).flat_map(|gy| (0..grid).map(move |gx| (gy, gx))) {
                for channel in image.chunks_exact(s.image * s.image) {
                    for y in gy * p..(gy + 1) * p {
                        let from = y * s.image + gx * p;
                        patches[at..at + p].copy_from_slice(&channel[from..from + p]);
                        at += p;
                    }
                }
            }
        }
        let embedded = sized(&mut buf.attention, patch_rows * h);
        let weight = (&self.patch[..], View::transposed(cpp, h));
        let lhs = (&patches[..], View::rows(patch_rows, cpp, cpp));
        let dst = (&mut *embedded, View::columns(patch_rows, h, patch_rows));
        matmul(dst, false, lhs, weight, 1.0, par);
        // embeddings = cat(class, patches) + position, then pre_layrnorm; feature by feature.
        let rows = images * s.tokens;
        let tokens = sized(&mut buf.normed, rows * h);
        let features = tokens
            .chunks_exact_mut(rows)
            .zip(embedded.chunks_exact(patch_rows));
        for (j, (column, patch_values)) in features.enumerate() {
            let per_image = column
                .chunks_exact_mut(s.tokens)
                .zip(patch_values.chunks_exact(s.patches));
            for (own, values) in per_image {
                own[0] = self.class[j];
                own[1..].copy_from_slice(values);
            }
            add_bias(column, &self.position[j * s.tokens..(j + 1) * s.tokens]);
        }
        let stream = sized(&mut buf.stream, rows * h);
        self.pre_norm.rows(tokens, stream, self.eps, &mut buf.stats);
    }

    /// `stream += out_proj(attention(layer_norm1(stream)))`.
    fn attention_block(&self, layer: &Layer, images: usize, buf: &mut Buffers, par: Parallelism) {
        let s = self.shape;
        let (h, rows) = (s.hidden, images * s.tokens);
        let normed = sized(&mut buf.normed, rows * h);
        layer
            .norm1
            .rows(&buf.stream, normed, self.eps, &mut buf.stats);
        let qkv = sized(&mut buf.qkv, rows * 3 * h);
        let lhs = (&normed[..], View::columns(rows, h, rows));
        let dst = (&mut *qkv, View::columns(rows, 3 * h, rows));
        matmul(dst, false, lhs, layer.qkv.operand(), 1.0, par);
        add_column_bias(qkv, &layer.qkv.bias);
        let heads = sized(&mut buf.attention, rows * h);
        let scores = sized(&mut buf.scores, s.tokens * s.tokens);
        for image in 0..images {
            self.heads(qkv, heads, image * s.tokens, scores);
        }
        add_column_bias(&mut buf.stream, &layer.out.bias);
        let lhs = (&heads[..], View::columns(rows, h, rows));
        let dst = (&mut buf.stream[..], View::columns(rows, h, rows));
        matmul(dst, true, lhs, layer.out.operand(), 1.0, par);
    }

    /// One image's multi-head attention, `softmax(q kᵀ / √d) v` per head. Its tokens are the
    /// rows `first..first + tokens` of the column-major q/k/v; each head is read in place and
    /// written in place into the column-major concatenated output.
    fn heads(&self, qkv: &[f32], out: &mut [f32], first: usize, scores: &mut [f32]) {
        let s = self.shape;
        let (h, t) = (s.hidden, s.tokens);
        let (d, rows) = (h / s.heads, out.len() / h);
        let scale = (d as f32).powf(-0.5);
        // Where feature `f` of the image's first token sits.
        let at = |f: usize| f * rows + first;
        for head in 0..s.heads {
            let q = (&qkv[at(head * d)..], View::columns(t, d, rows));
            let k = (&qkv[at(h + head * d)..], View::rows(d, t, rows));
            let dst = (&mut *scores, View::rows(t, t, t));
            matmul(dst, false, q, k, scale, Parallelism::None);
            softmax(scores, t);
            let v = (&qkv[at(2 * h + head * d)..], View::columns(t, d, rows));
            let p = (&scores[..], View::rows(t, t, t));
            let dst = (&mut out[at(head * d)..], View::columns(t, d, rows));
            matmul(dst, false, p, v, 1.0, Parallelism::None);
        }
    }

    /// `stream += fc2(activation(fc1(layer_norm2(stream))))`.
    fn mlp_block(&self, layer: &Layer, images: usize, buf: &mut Buffers, par: Parallelism) {
        let s = self.shape;
        let (h, rows, inter) = (s.hidden, images * s.tokens, s.intermediate);
        let normed = sized(&mut buf.normed, rows * h);
        layer
            .norm2
            .rows(&buf.stream, normed, self.eps, &mut buf.stats);
        let hidden = sized(&mut buf.hidden, rows * inter);
        let lhs = (&normed[..], View::columns(rows, h, rows));
        let dst = (&mut *hidden, View::columns(rows, inter, rows));
        matmul(dst, false, lhs, layer.fc1.operand(), 1.0, par);
        column_bias_activation(hidden, &layer.fc1.bias, self.activation);
        add_column_bias(&mut buf.stream, &layer.fc2.bias);
        let lhs = (&hidden[..], View::columns(rows, inter, rows));
        let dst = (&mut buf.stream[..], View::columns(rows, h, rows));
        matmul(dst, true, lhs, layer.fc2.operand(), 1.0, par);
    }

    /// Each image's class token through `post_layernorm` and `visual_projection`.
    fn pool(&self, images: usize, buf: &mut Buffers, par: Parallelism) -> Vec<f32> {
        let s = self.shape;
        let (h, rows) = (s.hidden, images * s.tokens);
        let class = sized(&mut buf.attention, images * h);
        let features = class
            .chunks_exact_mut(images)
            .zip(buf.stream.chunks_exact(rows));
        for (column, stream) in features {
            for (v, token) in column.iter_mut().zip(stream.iter().step_by(s.tokens)) {
                *v = *token;
            }
        }
        let pooled = sized(&mut buf.normed, images * h);
        self.post_norm.rows(class, pooled, self.eps, &mut buf.stats);
        let mut features = vec![0.0; images * s.projection];
        let dst = (
            &mut features[..],
            View::rows(images, s.projection, s.projection),
        );
        let lhs = (&pooled[..], View::columns(images, h, images));
        matmul(dst, false, lhs, self.projection.operand(), 1.0, par);
        features
    }
}
