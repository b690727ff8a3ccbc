//! The browser's model files: the text tower alone (the browser never encodes images), as f32 or
//! f16 safetensors, or as GGUF with 8-bit (`Q8_0`) or 5-bit (`Q5_0`) matrices, plus a manifest
//! with each file's sha256 so the browser can verify what it downloaded and cache it by content.
//! The GGUF variants leave the token embedding out: it is published once as a file of rows
//! ([`export_token_rows`], `Q8_0` where the width allows), which the browser fetches a row at a
//! time as its queries need them.
//!
//! Only `text_model.*` and `text_projection.weight` are kept (SigLIP's text projection is
//! `text_model.head`); tensor names stay the Hugging Face ones, so [`crate::TextEncoder::new`] reads every variant through [`crate::Weights`].

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::ClipConfig;
use crate::error::{ClipError, Result};
use crate::model::TextEncoder;
use crate::token_rows::{self, RowFormat, TokenRows};

/// The tensor the GGUF variants publish apart, as [`export_token_rows`].
pub const TOKEN_EMBEDDING: &str = "text_model.embeddings.token_embedding.weight";
/// The file name of the token rows.
pub const TOKEN_ROWS_FILE: &str = "token-rows.bin";

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

/// The text encoder of a file published as `variant`. A GGUF variant takes its token rows from
/// `rows` when the bundle publishes them apart (bundles written before that keep them inside).
pub fn text_encoder(
    config: &ClipConfig,
    variant: Variant,
    bytes: Vec<u8>,
    rows: Option<std::sync::Arc<TokenRows>>,
    device: &Device,
) -> Result<TextEncoder> {
    let w = read_weights(variant, bytes, device)?;
    match rows {
        Some(rows) if is_gguf(variant) => {
            TextEncoder::with_token_rows(&config.text, config.projection_dim, &w, rows)
        }
        _ => TextEncoder::new(&config.text, config.projection_dim, &w),
    }
}

/// `checkpoint`'s text tower exported as `variant` and read back, every token row present: what
/// the browser runs once it has fetched the rows (tests and benchmarks).
pub fn exported_text_encoder(
    config: &ClipConfig,
    checkpoint: &[u8],
    variant: Variant,
    device: &Device,
) -> Result<TextEncoder> {
    let rows = if is_gguf(variant) {
        Some(export_token_rows(checkpoint)?.table()?)
    } else {
        None
    };
    text_encoder(
        config,
        variant,
        export_text(checkpoint, variant)?,
        rows,
        device,
    )
}

/// The token embedding as published apart from the GGUF variants.
#[derive(Debug, Clone)]
pub struct RowsFile {
    pub bytes: Vec<u8>,
    pub format: RowFormat,
    pub rows: usize,
    pub dim: usize,
}

impl RowsFile {
    /// The whole table, every row present (native callers).
    pub fn table(&self) -> Result<std::sync::Arc<TokenRows>> {
        TokenRows::from_file(&self.bytes, self.rows, self.dim, self.format).map(Into::into)
    }
}

/// The token embedding of a CLIPModel (or SiglipModel) safetensors checkpoint as a file of rows.
pub fn export_token_rows(checkpoint: &[u8]) -> Result<RowsFile> {
    let table = text_tensors(checkpoint)?
        .into_iter()
        .find(|(name, _)| name == TOKEN_EMBEDDING)
        .map(|(_, t)| t)
        .ok_or_else(|| ClipError::MissingTensor {
            name: TOKEN_EMBEDDING.into(),
        })?;
    let (rows, dim) = table.dims2()?;
    let (bytes, format) = token_rows::encode_table(&table)?;
    Ok(RowsFile {
        bytes,
        format,
        rows,
        dim,
    })
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
    /// The GGUF variants' token embedding, published apart; absent from bundles written before
    /// it was (their GGUF files hold it) and from bundles without a GGUF variant.
    #[serde(default)]
    pub token_rows: Option<RowsEntry>,
}

/// [`Manifest::token_rows`]: the file, and its rows' size and format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowsEntry {
    #[serde(flatten)]
    pub file: FileEntry,
    pub rows: usize,
    pub dim: usize,
    pub row_bytes: usize,
    pub format: RowFormat,
}

impl RowsEntry {
    /// Describes `rows` published as [`TOKEN_ROWS_FILE`].
    pub fn describe(rows: &RowsFile) -> Self {
        Self {
            file: FileEntry::describe(TOKEN_ROWS_FILE, &rows.bytes),
            rows: rows.rows,
            dim: rows.dim,
            row_bytes: token_rows::row_bytes(rows.format, rows.dim),
            format: rows.format,
        }
    }
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

/// Exports the text tower of a CLIPModel (or SiglipModel) safetensors checkpoint as `variant`
/// (GGUF without the token embedding: see [`export_token_rows`]).
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
            for (name, t) in tensors.iter().filter(|(n, _)| n != TOKEN_EMBEDDING) {
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

/// The block type of each tensor in a GGUF variant. The matrices of the linear layers hold nearly
/// all the bytes; they are quantized when their rows split into whole blocks of 32. Biases,
/// layer norms and position embeddings are tiny and stay f32 (they also matter most for
/// accuracy).
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
