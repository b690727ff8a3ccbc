//! Random checkpoints at real shapes, for benchmarks and tests: the cost of a forward pass does
//! not depend on the values, and no real weights can be downloaded where those run.
//!
//! Values are drawn from a seeded generator so runs are repeatable: matrices with standard
//! deviation `1/sqrt(fan_in)` (activations stay of order one through the layers), embeddings
//! with 1, layer-norm weights near 1.

use candle_core::{Device, Tensor};

use crate::config::ClipConfig;
use crate::error::{ClipError, Result};

/// Every tensor of a `CLIPModel` checkpoint with its shape, in Hugging Face naming.
pub fn tensor_shapes(config: &ClipConfig, text_only: bool) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    let mut layers = |prefix: &str, n: usize, h: usize, i: usize| {
        for l in 0..n {
            let p = format!("{prefix}.encoder.layers.{l}");
            for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                out.push((format!("{p}.self_attn.{proj}.weight"), vec![h, h]));
                out.push((format!("{p}.self_attn.{proj}.bias"), vec![h]));
            }
            for ln in ["layer_norm1", "layer_norm2"] {
                out.push((format!("{p}.{ln}.weight"), vec![h]));
                out.push((format!("{p}.{ln}.bias"), vec![h]));
            }
            out.push((format!("{p}.mlp.fc1.weight"), vec![i, h]));
            out.push((format!("{p}.mlp.fc1.bias"), vec![i]));
            out.push((format!("{p}.mlp.fc2.weight"), vec![h, i]));
            out.push((format!("{p}.mlp.fc2.bias"), vec![h]));
        }
    };
    let t = &config.text;
    layers(
        "text_model",
        t.num_hidden_layers,
        t.hidden_size,
        t.intermediate_size,
    );
    if !text_only {
        let v = &config.vision;
        layers(
            "vision_model",
            v.num_hidden_layers,
            v.hidden_size,
            v.intermediate_size,
        );
    }
    out.push((
        "text_model.embeddings.token_embedding.weight".into(),
        vec![t.vocab_size, t.hidden_size],
    ));
    out.push((
        "text_model.embeddings.position_embedding.weight".into(),
        vec![t.max_position_embeddings, t.hidden_size],
    ));
    out.push((
        "text_model.final_layer_norm.weight".into(),
        vec![t.hidden_size],
    ));
    out.push((
        "text_model.final_layer_norm.bias".into(),
        vec![t.hidden_size],
    ));
    out.push((
        "text_projection.weight".into(),
        vec![config.projection_dim, t.hidden_size],
    ));
    if !text_only {
        let v = &config.vision;
        let (h, p) = (v.hidden_size, v.patch_size);
        out.push(("vision_model.embeddings.class_embedding".into(), vec![h]));
        out.push((
            "vision_model.embeddings.patch_embedding.weight".into(),
            vec![h, v.num_channels, p, p],
        ));
        out.push((
            "vision_model.embeddings.position_embedding.weight".into(),
            vec![v.grid() * v.grid() + 1, h],
        ));
        for ln in ["pre_layrnorm", "post_layernorm"] {
            out.push((format!("vision_model.{ln}.weight"), vec![h]));
            out.push((format!("vision_model.{ln}.bias"), vec![h]));
        }
        out.push((
            "visual_projection.weight".into(),
            vec![config.projection_dim, h],
        ));
    }
    out
}

/// SplitMix64: tiny, seeded, good enough for test weights and benchmark vectors.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// A vector of length one in `dim` dimensions (uniform values, normalised): a stand-in
    /// embedding.
    pub fn unit(&mut self, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim)
            .map(|_| (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }
}

/// Random tensors for every name of [`tensor_shapes`].
pub fn random_tensors(
    config: &ClipConfig,
    text_only: bool,
    seed: u64,
) -> Result<Vec<(String, Tensor)>> {
    let mut rng = Rng(seed);
    tensor_shapes(config, text_only)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let (mean, std) = if name.contains("norm") && name.ends_with("weight") {
                (1.0, 0.1)
            } else if name.ends_with("bias") || name.contains("norm") {
                (0.0, 0.02)
            } else if name.contains("embedding") {
                (0.0, 1.0)
            } else {
                // Matrices (and the patch convolution): 1/sqrt(fan_in).
                let fan_in: usize = shape[1..].iter().product();
                (0.0, 1.0 / (fan_in as f32).sqrt())
            };
            let values: Vec<f32> = (0..n).map(|_| mean + std * rng.normal()).collect();
            Ok((name, Tensor::from_vec(values, shape, &Device::Cpu)?))
        })
        .collect()
}

/// A random checkpoint serialised as safetensors (f32).
pub fn random_checkpoint(config: &ClipConfig, text_only: bool, seed: u64) -> Result<Vec<u8>> {
    let tensors = random_tensors(config, text_only, seed)?;
    safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None)
        .map_err(|e| ClipError::Weights(format!("cannot write safetensors: {e}")))
}
