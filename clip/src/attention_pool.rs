//! SigLIP's image pooling, `SiglipMultiheadAttentionPoolingHead` (`vision_model.head`): one
//! learned query (`probe`) attends over every patch state through `torch.nn.MultiheadAttention`
//! (q, k and v fused in `in_proj_weight` / `in_proj_bias`, then `out_proj`), followed by a
//! layer-normed MLP with a residual. Its output is the image's vector.

use candle_core::{Module, Tensor};
use candle_nn::LayerNorm;

use crate::config::VisionConfig;
use crate::error::Result;
use crate::model::Mlp;
use crate::weights::{Linear, Weights};

/// `vision_model.head` of a SigLIP checkpoint.
#[derive(Debug, Clone)]
pub struct AttentionPool {
    probe: Tensor,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    layernorm: LayerNorm,
    mlp: Mlp,
    heads: usize,
}

/// Rows `part * n .. (part + 1) * n` of a fused projection as a linear layer.
fn fused_part(weight: &Tensor, bias: &Tensor, part: usize, n: usize) -> Result<Linear> {
    Ok(Linear::Dense(candle_nn::Linear::new(
        weight.narrow(0, part * n, n)?.contiguous()?,
        Some(bias.narrow(0, part * n, n)?.contiguous()?),
    )))
}

impl AttentionPool {
    /// Reads `probe`, `attention.*`, `layernorm.*` and `mlp.*` under `w`.
    pub fn new(c: &VisionConfig, w: &Weights) -> Result<Self> {
        let h = c.hidden_size;
        let att = w.pp("attention");
        let in_weight = att.tensor("in_proj_weight", &[3 * h, h])?;
        let in_bias = att.tensor("in_proj_bias", &[3 * h])?;
        Ok(Self {
            probe: w.tensor("probe", &[1, 1, h])?,
            q_proj: fused_part(&in_weight, &in_bias, 0, h)?,
            k_proj: fused_part(&in_weight, &in_bias, 1, h)?,
            v_proj: fused_part(&in_weight, &in_bias, 2, h)?,
            out_proj: att.pp("out_proj").linear(h, h, true)?,
            layernorm: w.pp("layernorm").layer_norm(h, c.layer_norm_eps)?,
            mlp: Mlp::new(h, c.intermediate_size, c.activation, &w.pp("mlp"))?,
            heads: c.num_attention_heads,
        })
    }

    /// Hidden states `[b, n, h]` → pooled `[b, h]`.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, n, h) = xs.dims3()?;
        let head_dim = h / self.heads;
        let split = |x: Tensor, len: usize| -> candle_core::Result<Tensor> {
            x.reshape((b, len, self.heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        // probe = self.probe.repeat(batch_size, 1, 1)
        let probe = self.probe.broadcast_as((b, 1, h))?.contiguous()?;
        // MultiheadAttention(probe, hidden_state, hidden_state): q scaled by head_dim^-0.5
        let q = split(
            (self.q_proj.forward(&probe)? * (head_dim as f64).powf(-0.5))?,
            1,
        )?;
        let k = split(self.k_proj.forward(xs)?, n)?;
        let v = split(self.v_proj.forward(xs)?, n)?;
        let att = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?;
        let out = att.matmul(&v)?.transpose(1, 2)?.reshape((b, 1, h))?;
        let out = self.out_proj.forward(&out)?;
        // hidden_state = residual + self.mlp(self.layernorm(hidden_state)); hidden_state[:, 0]
        let out = (&out + self.mlp.forward(&self.layernorm.forward(&out)?)?)?;
        Ok(out.squeeze(1)?)
    }
}
