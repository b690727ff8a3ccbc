//! The browser's model files: the text tower alone (the browser never encodes images), as f32 or
//! f16 safetensors, or as GGUF with 8-bit (`Q8_0`) or 5-bit (`Q5_0`) matrices, plus a manifest
//! with each file's sha256 so the browser can verify what it downloaded and cache it by content.
//!
//! Only `text_model.*` and `text_projection.weight` are kept (SigLIP's text projection is
//! `text_model.head`); tensor names stay the Hugging Face ones, so [`crate::TextEncoder::new`] reads every variant through [`crate::Weights`].

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ClipError, Result};

/// Precision of an exported text tower: `f32`, `f16`, `q8` or `q5`. The type and its names live in
/// the `wire` crate (the proxy's manifest and the browser speak them too); the files are clip's.
pub use wire::{UnknownVariant, Variant};

/// The file name `variant` is published under.
pub fn file_name(variant: Variant) -> &'static str {
    match variant {
        Variant::F32 => "text-f32.safetensors",
        Variant::F16 => "text-f16.safetensors",
        Variant::Q8 => "text-q8.gguf",
        Variant::Q5 => "text-q5.gguf",
    }
}

/// Whether `variant` is published as GGUF (otherwise safetensors).
pub fn is_gguf(variant: Variant) -> bool {
    matches!(variant, Variant::Q8 | Variant::Q5)
}

/// The weights of a file published as `variant`.
pub fn read_weights(
    variant: Variant,
    bytes: Vec<u8>,
    device: &Device,
) -> Result<crate::Weights<'static>> {
    if is_gguf(variant) {
        crate::Weights::from_gguf(&bytes, device)
    } else {
        crate::Weights::from_safetensors(bytes, device)
    }
}

/// One published file: what the browser downloads and checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
}

impl FileEntry {
    /// Describes `data` published as `file`.
    pub fn describe(file: &str, data: &[u8]) -> Self {
        Self {
            file: file.to_string(),
            bytes: data.len() as u64,
            sha256: sha256_hex(data),
        }
    }
}

/// `manifest.json` beside the exported files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Where the weights came from (hub repo id or directory name).
    pub model_id: String,
    /// Length of the output vectors.
    pub dim: usize,
    /// Context length of the text tower.
    pub context_length: usize,
    pub config: FileEntry,
    pub tokenizer: FileEntry,
    /// One entry per exported variant (keyed by its name in JSON).
    pub variants: std::collections::BTreeMap<Variant, FileEntry>,
}

/// Lowercase hex sha256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn is_text_tensor(name: &str) -> bool {
    name.starts_with("text_model.") || name == "text_projection.weight"
}

/// The text tower's tensors of a CLIPModel (or SiglipModel) safetensors file, as f32, sorted by
/// name.
fn text_tensors(checkpoint: &[u8]) -> Result<Vec<(String, Tensor)>> {
    let st = safetensors::SafeTensors::deserialize(checkpoint)
        .map_err(|e| ClipError::Weights(format!("not a safetensors file: {e}")))?;
    let mut names: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| is_text_tensor(n))
        .map(str::to_string)
        .collect();
    names.sort();
    if !names
        .iter()
        .any(|n| n == "text_projection.weight" || n == "text_model.head.weight")
    {
        return Err(ClipError::MissingTensor {
            name: "text_projection.weight".into(),
        });
    }
    names
        .into_iter()
        .map(|name| {
            let view = st
                .tensor(&name)
                .map_err(|e| ClipError::Weights(format!("{name}: {e}")))?;
            let t =
                candle_core::safetensors::Load::load(&view, &Device::Cpu)?.to_dtype(DType::F32)?;
            Ok((name, t))
        })
        .collect()
}

/// Exports the text tower of a CLIPModel (or SiglipModel) safetensors checkpoint as `variant`.
pub fn export_text(checkpoint: &[u8], variant: Variant) -> Result<Vec<u8>> {
    let tensors = text_tensors(checkpoint)?;
    match variant {
        Variant::F32 | Variant::F16 => {
            let dtype = if variant == Variant::F16 {
                DType::F16
            } else {
                DType::F32
            };
            let converted = tensors
                .into_iter()
                .map(|(n, t)| Ok((n, t.to_dtype(dtype)?)))
                .collect::<Result<Vec<_>>>()?;
            safetensors::serialize(converted.iter().map(|(n, t)| (n.as_str(), t)), None)
                .map_err(|e| ClipError::Weights(format!("cannot write safetensors: {e}")))
        }
        Variant::Q8 | Variant::Q5 => {
            let mut q = Vec::with_capacity(tensors.len());
            for (name, t) in &tensors {
                q.push((
                    name.as_str(),
                    QTensor::quantize(t, block_dtype(name, t, variant))?,
                ));
            }
            let refs: Vec<(&str, &QTensor)> = q.iter().map(|(n, t)| (*n, t)).collect();
            let mut out = std::io::Cursor::new(Vec::new());
            gguf_file::write(&mut out, &[], &refs)?;
            Ok(out.into_inner())
        }
    }
}

/// The block type of each tensor in a GGUF variant. The matrices of the linear layers and the
/// token embedding hold nearly all the bytes; they are quantized when their rows split into
/// whole blocks of 32. Biases, layer norms and position embeddings are tiny and stay f32 (they
/// also matter most for accuracy).
fn block_dtype(name: &str, t: &Tensor, variant: Variant) -> GgmlDType {
    let dims = t.dims();
    let matrix =
        dims.len() == 2 && name.ends_with(".weight") && !name.contains("position_embedding");
    let block = if variant == Variant::Q5 {
        GgmlDType::Q5_0
    } else {
        GgmlDType::Q8_0
    };
    if matrix && dims[1].is_multiple_of(block.block_size()) {
        block
    } else {
        GgmlDType::F32
    }
}
