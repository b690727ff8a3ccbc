//! Where the model's tensors come from: a dense safetensors file (through candle's `VarBuilder`),
//! or a GGUF file whose linear layers and token embedding may be 8-bit quantized (the browser's
//! default download). Model code asks this module for tensors, linear layers and embeddings by
//! their Hugging Face names and never learns which file format it reads.
//!
//! Every lookup checks presence and shape, so a wrong checkpoint fails with the tensor's name and
//! both shapes instead of a matmul error deep in the forward pass.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor, gguf_file};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use crate::error::{ClipError, Result};
use crate::q8::Q8Matrix;

/// A source of named tensors, scoped to a prefix like `text_model.encoder.layers.3`.
#[derive(Clone)]
pub struct Weights<'a> {
    inner: Inner<'a>,
    prefix: String,
    device: Device,
    /// The float type dense tensors are given in (f32 unless [`Weights::with_dtype`]).
    dtype: DType,
}

#[derive(Clone)]
enum Inner<'a> {
    Dense(VarBuilder<'a>),
    Quantized(Arc<HashMap<String, Arc<QTensor>>>),
}

impl std::fmt::Debug for Weights<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Inner::Dense(_) => "dense",
            Inner::Quantized(_) => "gguf",
        };
        write!(f, "Weights({kind}, prefix {:?})", self.prefix)
    }
}

impl<'a> Weights<'a> {
    /// Weights from a safetensors file in memory (f32, f16 or bf16; computed in f32).
    pub fn from_safetensors(bytes: Vec<u8>, device: &Device) -> Result<Weights<'static>> {
        // Validate the header first: candle's error for a non-safetensors file is terse.
        safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| ClipError::Weights(format!("not a safetensors file: {e}")))?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, device)?;
        Ok(Weights {
            inner: Inner::Dense(vb),
            prefix: String::new(),
            device: device.clone(),
            dtype: DType::F32,
        })
    }

    /// Weights from a candle `VarBuilder` (memory-mapped files, or random tensors in benchmarks).
    pub fn from_var_builder(vb: VarBuilder<'a>) -> Self {
        let (device, dtype) = (vb.device().clone(), vb.dtype());
        Weights {
            inner: Inner::Dense(vb),
            prefix: String::new(),
            device,
            dtype,
        }
    }

    /// Weights from a GGUF file in memory (as written by [`crate::export`]).
    pub fn from_gguf(bytes: &[u8], device: &Device) -> Result<Weights<'static>> {
        let mut cursor = std::io::Cursor::new(bytes);
        let content = gguf_file::Content::read(&mut cursor)
            .map_err(|e| ClipError::Weights(format!("not a GGUF file: {e}")))?;
        let mut tensors = HashMap::new();
        for name in content.tensor_infos.keys() {
            let t = content
                .tensor(&mut cursor, name, device)
                .map_err(|e| ClipError::Weights(format!("tensor {name:?}: {e}")))?;
            tensors.insert(name.clone(), Arc::new(t));
        }
        Ok(Weights {
            inner: Inner::Quantized(Arc::new(tensors)),
            prefix: String::new(),
            device: device.clone(),
            dtype: DType::F32,
        })
    }

    /// The same weights computed in `dtype`: `F16` halves memory and, on a GPU, runs the matrix
    /// products on tensor cores (embeddings then differ from f32 by rounding, cosine ≈ 0.9999).
    /// f32 (the default) is what the reference equality is tested in. Only for dense weights:
    /// GGUF files keep their own types.
    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// The device tensors are placed on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The float type dense tensors are given in.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Whether the tensors are plain float arrays (safetensors), not quantized blocks (GGUF).
    pub fn is_dense(&self) -> bool {
        matches!(self.inner, Inner::Dense(_))
    }

    /// Whether the tensor `name` exists (for models whose structure is read from their tensors).
    pub fn contains(&self, name: &str) -> bool {
        match &self.inner {
            Inner::Dense(vb) => vb.contains_tensor(name),
            Inner::Quantized(map) => map.contains_key(&self.full_name(name)),
        }
    }

    /// The tensor `name` whatever its shape (the caller reads the structure from it), in the
    /// dtype of [`Self::with_dtype`].
    pub fn tensor_any(&self, name: &str) -> Result<Tensor> {
        match &self.inner {
            Inner::Dense(vb) => {
                if !vb.contains_tensor(name) {
                    return Err(ClipError::MissingTensor {
                        name: self.full_name(name),
                    });
                }
                Ok(vb.get_unchecked_dtype(name, self.dtype)?)
            }
            Inner::Quantized(map) => Ok(self.qtensor(name, map)?.dequantize(&self.device)?),
        }
    }

    /// The same source, scoped one level deeper (`pp("encoder")`).
    pub fn pp(&self, name: impl std::fmt::Display) -> Self {
        let prefix = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        };
        let inner = match &self.inner {
            Inner::Dense(vb) => Inner::Dense(vb.pp(name.to_string())),
            Inner::Quantized(map) => Inner::Quantized(map.clone()),
        };
        Weights {
            inner,
            prefix,
            device: self.device.clone(),
            dtype: self.dtype,
        }
    }

    fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn check_shape(&self, name: &str, found: &[usize], expected: &[usize]) -> Result<()> {
        if found != expected {
            return Err(ClipError::ShapeMismatch {
                name: self.full_name(name),
                expected: expected.to_vec(),
                found: found.to_vec(),
            });
        }
        Ok(())
    }

    fn qtensor(&self, name: &str, map: &HashMap<String, Arc<QTensor>>) -> Result<Arc<QTensor>> {
        let full = self.full_name(name);
        map.get(&full)
            .cloned()
            .ok_or(ClipError::MissingTensor { name: full })
    }

    /// A dense tensor of the given shape, in the dtype of [`Self::with_dtype`] (f32 from GGUF
    /// files).
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.tensor_any(name)?;
        self.check_shape(name, t.dims(), shape)?;
        Ok(t)
    }

    /// `nn.Linear(in_dim, out_dim, bias)`: weight `[out_dim, in_dim]` under `name.weight`.
    pub fn linear(&self, in_dim: usize, out_dim: usize, bias: bool) -> Result<Linear> {
        let bias = if bias {
            Some(self.tensor("bias", &[out_dim])?)
        } else {
            None
        };
        match &self.inner {
            Inner::Dense(_) => {
                let weight = self.tensor("weight", &[out_dim, in_dim])?;
                Ok(Linear::Dense(candle_nn::Linear::new(weight, bias)))
            }
            Inner::Quantized(map) => {
                let q = self.qtensor("weight", map)?;
                self.check_shape("weight", q.shape().dims(), &[out_dim, in_dim])?;
                if let Some(matrix) = Q8Matrix::from_qtensor(&q)? {
                    return Ok(Linear::Q8 {
                        weight: Arc::new(matrix),
                        bias,
                    });
                }
                Ok(Linear::Quantized {
                    weight: QMatMul::from_arc(q)?,
                    bias,
                })
            }
        }
    }

    /// `nn.Embedding(rows, dim)` under `name.weight`.
    pub fn embedding(&self, rows: usize, dim: usize) -> Result<Embedding> {
        if let Inner::Quantized(map) = &self.inner {
            let q = self.qtensor("weight", map)?;
            self.check_shape("weight", q.shape().dims(), &[rows, dim])?;
            if !matches!(q.dtype(), GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16) {
                return Ok(Embedding::Quantized(q));
            }
        }
        Ok(Embedding::Dense(self.tensor("weight", &[rows, dim])?))
    }

    /// `nn.LayerNorm(dim, eps)`.
    pub fn layer_norm(&self, dim: usize, eps: f64) -> Result<candle_nn::LayerNorm> {
        Ok(candle_nn::LayerNorm::new(
            self.tensor("weight", &[dim])?,
            self.tensor("bias", &[dim])?,
            eps,
        ))
    }
}

/// A linear layer, dense or with 8- or 4-bit weights.
#[derive(Debug, Clone)]
pub enum Linear {
    Dense(candle_nn::Linear),
    /// `Q8_0` or `Q4_0` weights (the browser's downloads): [`Q8Matrix`].
    Q8 {
        weight: Arc<Q8Matrix>,
        bias: Option<Tensor>,
    },
    /// Other GGUF types, through candle.
    Quantized {
        weight: QMatMul,
        bias: Option<Tensor>,
    },
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Linear::Dense(l) => {
                // One (rows × in) · (in × out) product over every token of the batch rather than
                // candle's per-sample batched matmul against a broadcast weight: one large GEMM
                // keeps the kernel busy where a batch of small ones does not.
                let dims = xs.dims();
                if dims.len() > 2 {
                    let (lead, inner) = dims.split_at(dims.len() - 1);
                    let rows: usize = lead.iter().product();
                    let ys = l.forward(&xs.reshape((rows, inner[0]))?)?;
                    let mut out_dims = lead.to_vec();
                    out_dims.push(ys.dim(1)?);
                    ys.reshape(out_dims)
                } else {
                    l.forward(xs)
                }
            }
            Linear::Q8 { weight, bias } => {
                let dims = xs.dims();
                let (lead, inner) = dims.split_at(dims.len() - 1);
                let rows: usize = lead.iter().product();
                let (n, k) = weight.dims();
                if inner != [k] {
                    candle_core::bail!("a linear layer of {k} inputs got {dims:?}");
                }
                let x = xs.flatten_all()?.to_vec1::<f32>()?;
                let ys = Tensor::from_vec(weight.matmul(&x, rows), (rows, n), xs.device())?;
                let ys = match bias {
                    Some(b) => ys.broadcast_add(b)?,
                    None => ys,
                };
                let mut out_dims = lead.to_vec();
                out_dims.push(n);
                ys.reshape(out_dims)
            }
            Linear::Quantized { weight, bias } => {
                let ys = weight.forward(xs)?;
                match bias {
                    Some(b) => ys.broadcast_add(b),
                    None => Ok(ys),
                }
            }
        }
    }
}

/// A lookup table, dense or with 8- or 4-bit rows.
#[derive(Debug, Clone)]
pub enum Embedding {
    Dense(Tensor),
    Quantized(Arc<QTensor>),
}

impl Embedding {
    /// Rows for `ids` (`[b, t]` u32) as `[b, t, dim]` f32.
    pub fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Embedding::Dense(table) => {
                let (b, t) = ids.dims2()?;
                let dim = table.dim(1)?;
                table
                    .index_select(&ids.flatten_all()?, 0)?
                    .reshape((b, t, dim))
            }
            Embedding::Quantized(q) => q.embedding(ids),
        }
    }
}
