//! *Which rows of the token embedding does this text tower hold, and what values are they?* The
//! browser's GGUF text towers leave the token embedding out of their file: it is a third of the
//! 8-bit tower's bytes, and a query needs only its own few of its 49,408 rows. [`TokenRows`]
//! holds the rows fetched so far, each as published (a [`RowFormat`] row: `Q8_0` blocks, or f32
//! where the width does not split into blocks of 32), and gives the model their values, equal
//! bit for bit to candle's lookup in the same `Q8_0` table. Native callers load the whole file at
//! once ([`TokenRows::from_file`]); the browser adds rows as queries need them.

use std::collections::HashMap;
use std::sync::RwLock;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use crate::error::{ClipError, Result};

pub use wire::RowFormat;

/// Values per `Q8_0` block, and the block's bytes (an f16 scale, then 32 `i8`s).
const BLOCK: usize = 32;
const BLOCK_BYTES: usize = 2 + BLOCK;

/// The format a table `dim` values wide is published in: `Q8_0` when its rows split into whole
/// blocks, else f32.
pub fn format_for(dim: usize) -> RowFormat {
    if dim > 0 && dim.is_multiple_of(BLOCK) {
        RowFormat::Q8_0
    } else {
        RowFormat::F32
    }
}

/// Bytes of one row of `dim` values in `format`.
pub fn row_bytes(format: RowFormat, dim: usize) -> usize {
    match format {
        RowFormat::Q8_0 => dim / BLOCK * BLOCK_BYTES,
        RowFormat::F32 => dim * 4,
    }
}

/// The published file of a `[rows, dim]` f32 table: its rows one after another, in
/// [`format_for`]`(dim)`.
pub fn encode_table(table: &Tensor) -> Result<(Vec<u8>, RowFormat)> {
    let (_, dim) = table.dims2()?;
    let format = format_for(dim);
    let bytes = match format {
        // Quantized by candle, as the GGUF variants' matrices are: the same rounding.
        RowFormat::Q8_0 => QTensor::quantize(table, GgmlDType::Q8_0)?
            .data()?
            .into_owned(),
        RowFormat::F32 => table
            .flatten_all()?
            .to_vec1::<f32>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    };
    Ok((bytes, format))
}

/// A token embedding table of which some rows are present.
#[derive(Debug)]
pub struct TokenRows {
    rows: usize,
    dim: usize,
    format: RowFormat,
    present: RwLock<HashMap<u32, Box<[u8]>>>,
}

impl TokenRows {
    /// An empty table of `rows` rows of `dim` values in `format`.
    pub fn new(rows: usize, dim: usize, format: RowFormat) -> Result<Self> {
        if format == RowFormat::Q8_0 && !dim.is_multiple_of(BLOCK) {
            return Err(ClipError::Weights(format!(
                "token rows of {dim} values cannot be Q8_0 blocks of {BLOCK}"
            )));
        }
        Ok(Self {
            rows,
            dim,
            format,
            present: RwLock::default(),
        })
    }

    /// Every row, from the whole published file.
    pub fn from_file(bytes: &[u8], rows: usize, dim: usize, format: RowFormat) -> Result<Self> {
        let table = Self::new(rows, dim, format)?;
        table.insert_all(bytes)?;
        Ok(table)
    }

    /// Adds every row from the whole published file.
    pub fn insert_all(&self, bytes: &[u8]) -> Result<()> {
        let size = self.row_bytes();
        if bytes.len() != self.rows * size {
            return Err(ClipError::Weights(format!(
                "the token rows file has {} bytes, expected {} rows of {size}",
                bytes.len(),
                self.rows
            )));
        }
        for (id, row) in bytes.chunks_exact(size).enumerate() {
            self.insert(id as u32, row)?;
        }
        Ok(())
    }

    /// Rows in the whole table (the vocabulary).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes of one row as published.
    pub fn row_bytes(&self) -> usize {
        row_bytes(self.format, self.dim)
    }

    /// The ids among `ids` whose rows are not here yet, each once, in first-seen order.
    pub fn missing(&self, ids: &[u32]) -> Vec<u32> {
        let present = self.present.read().unwrap_or_else(|e| e.into_inner());
        let mut missing = Vec::new();
        for &id in ids {
            if !present.contains_key(&id) && !missing.contains(&id) {
                missing.push(id);
            }
        }
        missing
    }

    /// Adds row `id` as published. A row of the wrong size or outside the table is refused.
    pub fn insert(&self, id: u32, row: &[u8]) -> Result<()> {
        if id as usize >= self.rows {
            return Err(ClipError::Input(format!(
                "token id {id} is outside the table of {} rows",
                self.rows
            )));
        }
        if row.len() != self.row_bytes() {
            return Err(ClipError::Weights(format!(
                "token row {id} has {} bytes, expected {}",
                row.len(),
                self.row_bytes()
            )));
        }
        self.present
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, row.into());
        Ok(())
    }

    /// Rows for `ids` (`[b, t]` u32) as `[b, t, dim]` f32. A row not yet added is an error that
    /// names it.
    pub fn forward(&self, ids: &Tensor, device: &Device) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let present = self.present.read().unwrap_or_else(|e| e.into_inner());
        let mut values = Vec::with_capacity(b * t * self.dim);
        for id in ids.flatten_all()?.to_vec1::<u32>()? {
            let row = present.get(&id).ok_or_else(|| {
                ClipError::Input(format!("the row of token {id} has not been fetched"))
            })?;
            self.decode(row, &mut values);
        }
        Ok(Tensor::from_vec(values, (b, t, self.dim), device)?)
    }

    /// Appends one row's values: a `Q8_0` value is its block's scale times its `i8`, as candle
    /// dequantizes it.
    fn decode(&self, row: &[u8], out: &mut Vec<f32>) {
        match self.format {
            RowFormat::Q8_0 => {
                for block in row.chunks_exact(BLOCK_BYTES) {
                    let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
                    out.extend(block[2..].iter().map(|&q| f32::from(q as i8) * d));
                }
            }
            RowFormat::F32 => out.extend(
                row.chunks_exact(4)
                    .map(|v| f32::from_le_bytes([v[0], v[1], v[2], v[3]])),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: usize, dim: usize) -> Tensor {
        let values: Vec<f32> = (0..rows * dim)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 333.0)
            .collect();
        Tensor::from_vec(values, (rows, dim), &Device::Cpu).unwrap()
    }

    /// The rows give what candle's own `Q8_0` lookup gives, bit for bit, whatever order they
    /// arrived in; f32 rows give the table itself.
    #[test]
    fn rows_equal_the_table() {
        for dim in [64, 24] {
            let t = table(10, dim);
            let (bytes, format) = encode_table(&t).unwrap();
            let rows = TokenRows::new(10, dim, format).unwrap();
            let size = rows.row_bytes();
            assert_eq!(bytes.len(), 10 * size);
            for id in [7u32, 2, 3, 9] {
                let start = id as usize * size;
                rows.insert(id, &bytes[start..start + size]).unwrap();
            }
            let ids = Tensor::new(&[[2u32, 9, 3], [7, 7, 2]], &Device::Cpu).unwrap();
            let got = rows.forward(&ids, &Device::Cpu).unwrap();
            let expected = match format {
                RowFormat::Q8_0 => QTensor::quantize(&t, GgmlDType::Q8_0)
                    .unwrap()
                    .dequantize(&Device::Cpu)
                    .unwrap(),
                RowFormat::F32 => t.clone(),
            }
            .index_select(&ids.flatten_all().unwrap(), 0)
            .unwrap()
            .reshape((2, 3, dim))
            .unwrap();
            let diff = (got - expected)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert_eq!(diff, 0.0, "dim {dim}");
            let whole = TokenRows::from_file(&bytes, 10, dim, format).unwrap();
            assert!(whole.missing(&[0, 9]).is_empty());
        }
    }

    #[test]
    fn missing_rows_are_named() {
        let rows = TokenRows::new(10, 64, RowFormat::Q8_0).unwrap();
        rows.insert(4, &[0; 68]).unwrap();
        assert_eq!(rows.missing(&[3, 4, 3, 8]), vec![3, 8]);
        let ids = Tensor::new(&[[4u32, 8]], &Device::Cpu).unwrap();
        let err = rows.forward(&ids, &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("token 8"), "{err}");
        assert!(rows.insert(10, &[0; 68]).is_err(), "outside the table");
        assert!(rows.insert(1, &[0; 67]).is_err(), "short row");
        assert!(TokenRows::new(10, 24, RowFormat::Q8_0).is_err());
        assert!(TokenRows::from_file(&[0; 67], 1, 64, RowFormat::Q8_0).is_err());
    }
}
