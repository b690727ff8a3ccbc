//! 8-, 5- and 4-bit linear layers (GGUF `Q8_0`, `Q5_0` and `Q4_0`, the browser's downloads)
//! computed the way a short query needs them.
//!
//! A query has 7–77 token rows, and every product multiplies them with a whole weight matrix.
//! candle's quantized path calls a block dot product per (row, column, block): each call reloads
//! and widens the weight block and converts two f16 scales in software (wasm has no f16 unit),
//! which is most of its time in the browser. Here the weights are unpacked once at load into `i8`
//! values and `f32` scales (a `Q5_0` value becomes -16..=15, a `Q4_0` one -8..=7), and each
//! weight block is widened once and then dotted with every row while it sits in registers. The
//! arithmetic is llama.cpp's `ggml_vec_dot_q8_0_q8_0` (and its `q5_0` and `q4_0` twins): rows
//! are quantized to 8 bits per block of 32 with scale `max|x| / 127`, products are summed
//! exactly in `i32` and scaled in `f32` (the row scale stays `f32` here, where ggml rounds it to
//! f16). The smaller downloads take the same memory and time as the 8-bit one once unpacked.
//!
//! The loops are written with fixed-size arrays and independent partial sums so that the compiler
//! emits SIMD (SSE/AVX natively, SIMD128 in wasm) without `unsafe` intrinsics.

use candle_core::quantized::{GgmlDType, QTensor};

use crate::error::{ClipError, Result};

/// Values per `Q8_0`, `Q5_0` or `Q4_0` block.
const BLOCK: usize = 32;

/// A `[rows, cols]` matrix of `Q8_0`, `Q5_0` or `Q4_0` blocks, unpacked.
#[derive(Debug, Clone)]
pub struct Q8Matrix {
    rows: usize,
    cols: usize,
    /// What makes every value non-negative, so that it fits relaxed SIMD's 7-bit operand (16 for
    /// `Q5_0`, 8 for `Q4_0`); 0 for `Q8_0`, whose values need all 8 bits. Where the relaxed-SIMD kernel is built, `quants`
    /// holds the values with it added.
    #[cfg_attr(
        not(all(target_arch = "wasm32", target_feature = "relaxed-simd")),
        allow(dead_code, reason = "only the relaxed-SIMD kernel reads it")
    )]
    offset: i8,
    /// `rows * cols` values, row-major.
    quants: Vec<i8>,
    /// One scale per block: `rows * cols / 32`.
    scales: Vec<f32>,
}

impl Q8Matrix {
    /// The matrix of a 2-D `Q8_0`, `Q5_0` or `Q4_0` tensor; `None` for any other type or shape.
    pub fn from_qtensor(q: &QTensor) -> Result<Option<Q8Matrix>> {
        let &[rows, cols] = q.shape().dims() else {
            return Ok(None);
        };
        let dtype = q.dtype();
        let block_types = [GgmlDType::Q8_0, GgmlDType::Q5_0, GgmlDType::Q4_0];
        if !block_types.contains(&dtype) || !cols.is_multiple_of(BLOCK) {
            return Ok(None);
        }
        let data = q.data()?;
        let blocks = rows * cols / BLOCK;
        let block_bytes = dtype.type_size();
        if data.len() != blocks * block_bytes {
            return Err(ClipError::Weights(format!(
                "a {dtype:?} tensor of shape [{rows}, {cols}] has {} bytes, expected {}",
                data.len(),
                blocks * block_bytes
            )));
        }
        let mut quants = Vec::with_capacity(rows * cols);
        let mut scales = Vec::with_capacity(blocks);
        for block in data.chunks_exact(block_bytes) {
            scales.push(half::f16::from_le_bytes([block[0], block[1]]).to_f32());
            unpack(dtype, &block[2..], &mut quants);
        }
        let offset = match dtype {
            GgmlDType::Q5_0 => 16,
            GgmlDType::Q4_0 => 8,
            _ => 0,
        };
        // The relaxed-SIMD kernel reads the values with the offset added: add it once here.
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        quants.iter_mut().for_each(|q| *q += offset);
        Ok(Some(Q8Matrix {
            rows,
            cols,
            offset,
            quants,
            scales,
        }))
    }

    /// `[rows, cols]`.
    pub fn dims(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// `x · selfᵀ` for `x` of `m` rows of `cols` values, row-major; `m × rows` values out.
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        if self.offset > 0 {
            return self.matmul_narrow(x, m);
        }
        let (n, k) = (self.rows, self.cols);
        debug_assert_eq!(x.len(), m * k);
        let (xq, xs) = quantize_rows(x, m, k);
        let mut out = vec![0f32; m * n];
        let mut acc = vec![0f32; m];
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        for j in 0..n {
            let (wq, ws) = self.row(j);
            row_dots(wq, ws, &xq, &xs, &mut acc);
            for (i, a) in acc.iter().enumerate() {
                out[i * n + j] = *a;
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            // Whole groups of `ROWS` weight rows, then the rest one by one.
            let grouped = n - n % simd::ROWS;
            let mut lanes = Vec::new();
            for j in (0..grouped).step_by(simd::ROWS) {
                let rows = std::array::from_fn(|r| self.row(j + r));
                simd::row_dots::<{ simd::ROWS }>(rows, &xq, &xs, &mut acc, &mut lanes);
                self.scatter(&acc, j, simd::ROWS, &mut out);
            }
            for j in grouped..n {
                simd::row_dots::<1>([self.row(j)], &xq, &xs, &mut acc, &mut lanes);
                self.scatter(&acc, j, 1, &mut out);
            }
        }
        out
    }

    /// [`Self::matmul`] for 5- and 4-bit values, with relaxed SIMD's 8-bit dot product.
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    fn matmul_narrow(&self, x: &[f32], m: usize) -> Vec<f32> {
        let (n, k) = (self.rows, self.cols);
        let input = relaxed::Input::quantize(x, m, k, self.offset);
        let mut out = vec![0f32; m * n];
        let (mut acc, mut lanes) = (Vec::new(), Vec::new());
        let grouped = n - n % simd::ROWS;
        for j in (0..grouped).step_by(simd::ROWS) {
            let rows = std::array::from_fn(|r| self.row(j + r));
            relaxed::row_dots::<{ simd::ROWS }>(rows, &input, &mut acc, &mut lanes);
            self.scatter(&acc, j, simd::ROWS, &mut out);
        }
        for j in grouped..n {
            relaxed::row_dots::<1>([self.row(j)], &input, &mut acc, &mut lanes);
            self.scatter(&acc, j, 1, &mut out);
        }
        out
    }

    /// Weight row `j`: its `cols` values and its block scales.
    fn row(&self, j: usize) -> (&[i8], &[f32]) {
        let (k, blocks) = (self.cols, self.cols / BLOCK);
        (
            &self.quants[j * k..(j + 1) * k],
            &self.scales[j * blocks..(j + 1) * blocks],
        )
    }

    /// Writes `acc` (for each input row, `group` outputs from weight row `j` on) into `out`.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn scatter(&self, acc: &[f32], j: usize, group: usize, out: &mut [f32]) {
        let n = self.rows;
        for (i, outputs) in acc.chunks_exact(group).enumerate() {
            out[i * n + j..i * n + j + group].copy_from_slice(outputs);
        }
    }
}

/// Appends the 32 values of one block (after its f16 scale) as `i8`, in order.
fn unpack(dtype: GgmlDType, block: &[u8], out: &mut Vec<i8>) {
    match dtype {
        GgmlDType::Q5_0 => {
            // 32 fifth bits, then byte j holds the low four bits of value j in its low nibble and
            // those of value j + 16 in its high one.
            let high = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
            let low = &block[4..];
            let value =
                |j: usize, nibble: u8| ((nibble | (((high >> j) & 1) << 4) as u8) as i8) - 16;
            out.extend((0..16).map(|j| value(j, low[j] & 0x0f)));
            out.extend((0..16).map(|j| value(j + 16, low[j] >> 4)));
        }
        GgmlDType::Q4_0 => {
            out.extend(block.iter().map(|&b| (b & 0x0f) as i8 - 8));
            out.extend(block.iter().map(|&b| (b >> 4) as i8 - 8));
        }
        _ => out.extend(block.iter().map(|&b| b as i8)),
    }
}

/// `acc[i]` = the dot product of one weight row (`wq`, `ws`) with input row `i` (`xq`, `xs`).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn row_dots(wq: &[i8], ws: &[f32], xq: &[i16], xs: &[f32], acc: &mut [f32]) {
    let blocks = ws.len();
    acc.fill(0.0);
    for (b, (w, &w_scale)) in wq.as_chunks::<BLOCK>().0.iter().zip(ws).enumerate() {
        let w = widen(w);
        for (i, a) in acc.iter_mut().enumerate() {
            let row = &xq[(i * blocks + b) * BLOCK..][..BLOCK];
            let row: &[i16; BLOCK] = row.try_into().unwrap_or(&[0; BLOCK]);
            *a += dot(&w, row) as f32 * (w_scale * xs[i * blocks + b]);
        }
    }
}

/// The product in wasm's SIMD128: the compiler does not turn the portable loops into
/// `i32x4.dot_i16x8_s`, which does 8 multiply-adds at once, so they are written out; and each
/// token row's block, once loaded, is dotted with `R` weight rows, so that 77 token rows (79 to
/// 315 KB of activations, beyond the L1 cache) are streamed once per `R` weight rows instead of
/// once per row. The arithmetic is the portable version's: exact `i32` block sums, then one
/// `f32` multiply-add per block, in block order, for every output.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use core::arch::wasm32::*;

    use super::BLOCK;

    /// Weight rows per pass.
    pub const ROWS: usize = 8;

    /// The first 16 values of `a`, with one load.
    pub fn i8x16_of(a: &[i8]) -> v128 {
        bytemuck::cast(*a.first_chunk::<16>().expect("16 values"))
    }

    /// The first 8 values of `a`, with one load.
    fn i16x8_of(a: &[i16]) -> v128 {
        bytemuck::cast(*a.first_chunk::<8>().expect("8 values"))
    }

    /// One weight block widened to four `i16x8`.
    fn widen(w: &[i8]) -> [v128; 4] {
        let (lo, hi) = (i8x16_of(&w[..16]), i8x16_of(&w[16..BLOCK]));
        [
            i16x8_extend_low_i8x16(lo),
            i16x8_extend_high_i8x16(lo),
            i16x8_extend_low_i8x16(hi),
            i16x8_extend_high_i8x16(hi),
        ]
    }

    /// `acc[i * R + r]` = the dot product of weight row `rows[r]` (values, block scales) with
    /// input row `i` (`xq`, `xs`).
    pub fn row_dots<const R: usize>(
        rows: [(&[i8], &[f32]); R],
        xq: &[i16],
        xs: &[f32],
        acc: &mut Vec<f32>,
        lanes: &mut Vec<v128>,
    ) {
        let blocks = rows[0].1.len();
        let m = xs.len() / blocks;
        lanes.clear();
        lanes.resize(m * R, f32x4_splat(0.0));
        for b in 0..blocks {
            let w: [[v128; 4]; R] =
                std::array::from_fn(|r| widen(&rows[r].0[b * BLOCK..(b + 1) * BLOCK]));
            for (i, lanes) in lanes.chunks_exact_mut(R).enumerate() {
                let x = &xq[(i * blocks + b) * BLOCK..][..BLOCK];
                let x = [
                    i16x8_of(&x[..8]),
                    i16x8_of(&x[8..16]),
                    i16x8_of(&x[16..24]),
                    i16x8_of(&x[24..]),
                ];
                let x_scale = xs[i * blocks + b];
                for (r, lane) in lanes.iter_mut().enumerate() {
                    let mut sum = i32x4_dot_i16x8(w[r][0], x[0]);
                    sum = i32x4_add(sum, i32x4_dot_i16x8(w[r][1], x[1]));
                    sum = i32x4_add(sum, i32x4_dot_i16x8(w[r][2], x[2]));
                    sum = i32x4_add(sum, i32x4_dot_i16x8(w[r][3], x[3]));
                    let scale = f32x4_splat(rows[r].1[b] * x_scale);
                    *lane = f32x4_add(*lane, f32x4_mul(f32x4_convert_i32x4(sum), scale));
                }
            }
        }
        acc.clear();
        acc.extend(lanes.iter().map(|lane| {
            f32x4_extract_lane::<0>(*lane)
                + f32x4_extract_lane::<1>(*lane)
                + f32x4_extract_lane::<2>(*lane)
                + f32x4_extract_lane::<3>(*lane)
        }));
    }
}

/// The 5- and 4-bit kernel where the browser has relaxed SIMD (the worker's second build):
/// `i32x4.relaxed_dot_i8x16_i7x16_add_s` does 16 multiply-adds of a signed byte by a 7-bit one
/// and adds them into four `i32` lanes, twice the work of `i32x4.dot_i16x8_s` and without
/// widening. Its second operand must have its top bit clear for every engine to give the same
/// exact result, so the weights are stored with the matrix's offset added (`Q5_0`'s -16..=15
/// become 0..=31), and the offset times the input block's sum is taken away again in the
/// accumulator the dot products start from. The sums are the same exact `i32`s as the other
/// kernels'; only how they are spread over the four lanes before the `f32` scaling differs.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
mod relaxed {
    use core::arch::wasm32::*;

    use super::BLOCK;
    use super::simd::i8x16_of;

    /// The input rows in 8-bit blocks: values, the accumulator each block's dot products start
    /// from (the offset times the block's sum, taken away) and its scale.
    pub struct Input {
        values: Vec<i8>,
        starts: Vec<v128>,
        scales: Vec<f32>,
    }

    impl Input {
        /// `m` rows of `k` values, quantized as [`super::quantize_rows`] does, for weights stored
        /// with `offset` added.
        pub fn quantize(x: &[f32], m: usize, k: usize, offset: i8) -> Input {
            let (wide, scales) = super::quantize_rows(x, m, k);
            let values: Vec<i8> = wide.iter().map(|&v| v as i8).collect();
            let starts = values
                .chunks_exact(BLOCK)
                .map(|b| {
                    let sum: i32 = b.iter().map(|&v| i32::from(v)).sum();
                    i32x4(-i32::from(offset) * sum, 0, 0, 0)
                })
                .collect();
            Input {
                values,
                starts,
                scales,
            }
        }
    }

    /// `acc[i * R + r]` = the dot product of weight row `rows[r]` (values with the offset added,
    /// block scales) with input row `i`. Each weight block is loaded once and dotted with every
    /// input row, as in the SIMD128 kernel.
    pub fn row_dots<const R: usize>(
        rows: [(&[i8], &[f32]); R],
        input: &Input,
        acc: &mut Vec<f32>,
        lanes: &mut Vec<v128>,
    ) {
        let blocks = rows[0].1.len();
        let m = input.scales.len() / blocks;
        lanes.clear();
        lanes.resize(m * R, f32x4_splat(0.0));
        for b in 0..blocks {
            let w: [[v128; 2]; R] = std::array::from_fn(|r| {
                let q = &rows[r].0[b * BLOCK..(b + 1) * BLOCK];
                [i8x16_of(&q[..16]), i8x16_of(&q[16..])]
            });
            let w_scales: [v128; R] = std::array::from_fn(|r| f32x4_splat(rows[r].1[b]));
            for (i, lanes) in lanes.chunks_exact_mut(R).enumerate() {
                let at = i * blocks + b;
                let x = &input.values[at * BLOCK..][..BLOCK];
                let x = [i8x16_of(&x[..16]), i8x16_of(&x[16..])];
                let (start, x_scale) = (input.starts[at], f32x4_splat(input.scales[at]));
                for (r, lane) in lanes.iter_mut().enumerate() {
                    let sum = i32x4_relaxed_dot_i8x16_i7x16_add(x[0], w[r][0], start);
                    let sum = i32x4_relaxed_dot_i8x16_i7x16_add(x[1], w[r][1], sum);
                    let scale = f32x4_mul(w_scales[r], x_scale);
                    *lane = f32x4_add(*lane, f32x4_mul(f32x4_convert_i32x4(sum), scale));
                }
            }
        }
        acc.clear();
        acc.extend(lanes.iter().map(|lane| {
            f32x4_extract_lane::<0>(*lane)
                + f32x4_extract_lane::<1>(*lane)
                + f32x4_extract_lane::<2>(*lane)
                + f32x4_extract_lane::<3>(*lane)
        }));
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn widen(w: &[i8; BLOCK]) -> [i16; BLOCK] {
    let mut out = [0i16; BLOCK];
    for (o, &v) in out.iter_mut().zip(w) {
        *o = i16::from(v);
    }
    out
}

/// The exact integer dot product of two blocks (|sum| ≤ 32·127·127, far inside `i32`).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
fn dot(w: &[i16; BLOCK], x: &[i16; BLOCK]) -> i32 {
    const LANES: usize = 8;
    let mut sums = [0i32; LANES];
    for (wc, xc) in w
        .as_chunks::<LANES>()
        .0
        .iter()
        .zip(x.as_chunks::<LANES>().0)
    {
        for l in 0..LANES {
            sums[l] += i32::from(wc[l]) * i32::from(xc[l]);
        }
    }
    sums.iter().sum()
}

/// Each row in blocks of 32: `round(x / d)` as `i16` (values in -127..=127) and `d = max|x| / 127`
/// per block, as ggml's `quantize_row_q8_0` (with `d` kept in f32).
fn quantize_rows(x: &[f32], m: usize, k: usize) -> (Vec<i16>, Vec<f32>) {
    let mut q = Vec::with_capacity(m * k);
    let mut scales = Vec::with_capacity(m * k / BLOCK);
    for block in x.chunks_exact(BLOCK) {
        let amax = block.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let inv = if d == 0.0 { 0.0 } else { 1.0 / d };
        q.extend(block.iter().map(|v| (v * inv).round() as i16));
        scales.push(d);
    }
    (q, scales)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// Against candle's own `Q8_0`, `Q5_0` and `Q4_0` products on the same tensor: the same
    /// arithmetic up to the f16 rounding of the row scales and the order of the f32 sums.
    #[test]
    fn equals_candles_block_products() {
        let device = Device::Cpu;
        // candle's Q5_0 product wants an even number of blocks per row.
        let (n, k) = (48, 128);
        let w = Tensor::randn(0f32, 0.05, (n, k), &device).unwrap();
        let types = [
            (GgmlDType::Q8_0, 0.05),
            (GgmlDType::Q5_0, 0.1),
            (GgmlDType::Q4_0, 0.2),
        ];
        for (dtype, to_f32) in types {
            let q = QTensor::quantize(&w, dtype).unwrap();
            let matrix = Q8Matrix::from_qtensor(&q).unwrap().expect("a block matrix");
            assert_eq!(matrix.dims(), (n, k));
            for m in [1, 7, 20] {
                let x = Tensor::randn(0f32, 1.0, (m, k), &device).unwrap();
                let ours = matrix.matmul(&x.flatten_all().unwrap().to_vec1().unwrap(), m);
                let theirs = candle_core::quantized::QMatMul::from_qtensor(
                    QTensor::quantize(&w, dtype).unwrap(),
                )
                .unwrap();
                let theirs = candle_core::Module::forward(&theirs, &x)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                let exact = x
                    .matmul(&w.t().unwrap())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                for ((o, t), e) in ours.iter().zip(&theirs).zip(&exact) {
                    assert!(
                        (o - t).abs() <= 2e-3 * (1.0 + t.abs()),
                        "{dtype:?}, m={m}: {o} vs candle {t}"
                    );
                    assert!(
                        (o - e).abs() <= to_f32 * (1.0 + e.abs()),
                        "{dtype:?}, m={m}: {o} vs f32 {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn other_types_are_left_to_candle() {
        let w = Tensor::zeros((4, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::F16).unwrap();
        assert!(Q8Matrix::from_qtensor(&q).unwrap().is_none());
    }
}
