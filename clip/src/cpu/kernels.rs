//! What does the fused CPU path compute between two matrix products? The element-wise and
//! row-wise steps of a transformer layer, each one pass over a buffer that already exists:
//! bias adds, bias + activation, layer norm (over the column-major activations of
//! [`super::vit`]) and softmax (over a row-major score matrix).
//!
//! Each step is a [`WithSimd`] whose loops `pulp` compiles for the widest instruction set the
//! CPU has (AVX-512 or AVX2 on x86-64), chosen at run time; the loops are branch-free over whole
//! runs of values so the compiler vectorises them. (A closure handed to `pulp` is not reliably
//! inlined into the dispatched function, and its loops then run in baseline SSE2: these passes
//! took 22% of a batch's time that way, 5% dispatched.) `exp` is a polynomial rather than
//! libm's so that it vectorises: within 2 ulp over the range an `f32` result can take.

use pulp::{Arch, Simd, WithSimd};

use crate::config::Activation;

/// `e^x`, branch-free (Cephes' `expf`: range reduction by ln 2 and a degree-6 polynomial).
/// Inputs below −87.3 give about 1e-38 instead of a subnormal or 0, above 88.3 about 2e38.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    /// Adding 1.5 · 2^23 rounds an f32 below 2^22 to the nearest integer, which then sits in
    /// the low bits of the sum: read from there, it needs no float-to-int conversion (whose
    /// saturating semantics in Rust compile to scalar code lane by lane).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n: n is in [-126, 127] after the clamp, so n + 127 is a normal exponent.
    let biased = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127);
    e * f32::from_bits(biased << 23)
}

/// `erf(x)` within 1.5e-7 (Abramowitz & Stegun 7.1.26), branch-free.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_7) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    (1.0 - poly * exp(-a * a)).copysign(x)
}

/// The activation of an MLP's hidden value, as the reference defines each.
#[inline(always)]
fn activate(x: f32, activation: Activation) -> f32 {
    match activation {
        // QuickGELUActivation: input * torch.sigmoid(1.702 * input)
        Activation::QuickGelu => x / (1.0 + exp(-1.702 * x)),
        // GELUActivation: 0.5 * x * (1 + erf(x / sqrt(2)))
        Activation::Gelu => 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2)),
        // gelu_pytorch_tanh: 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))),
        // with tanh(u) = 1 - 2 / (1 + e^(2u)).
        Activation::GeluTanh => {
            let u = 0.797_884_6 * (x + 0.044_715 * x * x * x);
            x - x / (1.0 + exp(2.0 * u))
        }
    }
}

/// A sum in 16 independent lanes, which vectorises (a plain fold is one serial chain).
#[inline(always)]
fn sum(xs: impl Iterator<Item = f32>) -> f32 {
    let mut lanes = [0.0f32; 16];
    for (i, x) in xs.enumerate() {
        lanes[i % 16] += x;
    }
    lanes.iter().sum()
}

/// Adds `bias` to every row of `rows` (rows of `bias.len()` values).
pub fn add_bias(rows: &mut [f32], bias: &[f32]) {
    struct Op<'a>(&'a mut [f32], &'a [f32]);
    impl WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            for row in self.0.chunks_exact_mut(self.1.len()) {
                for (v, b) in row.iter_mut().zip(self.1) {
                    *v += b;
                }
            }
        }
    }
    Arch::new().dispatch(Op(rows, bias));
}

/// Adds `bias[j]` to every value of column `j` of a column-major matrix (`bias.len()` columns).
pub fn add_column_bias(columns: &mut [f32], bias: &[f32]) {
    struct Op<'a>(&'a mut [f32], &'a [f32]);
    impl WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let rows = self.0.len() / self.1.len();
            for (column, b) in self.0.chunks_exact_mut(rows).zip(self.1) {
                for v in column.iter_mut() {
                    *v += b;
                }
            }
        }
    }
    Arch::new().dispatch(Op(columns, bias));
}

/// `x = activation(x + bias[j])` for every value `x` of column `j` of a column-major matrix.
pub fn column_bias_activation(columns: &mut [f32], bias: &[f32], activation: Activation) {
    struct Op<'a>(&'a mut [f32], &'a [f32], Activation);
    impl WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let Op(columns, bias, activation) = self;
            let rows = columns.len() / bias.len();
            // One loop per activation, so that none branches inside.
            macro_rules! each {
                ($act:expr) => {
                    for (column, b) in columns.chunks_exact_mut(rows).zip(bias) {
                        for v in column.iter_mut() {
                            *v = activate(*v + b, $act);
                        }
                    }
                };
            }
            match activation {
                Activation::QuickGelu => each!(Activation::QuickGelu),
                Activation::Gelu => each!(Activation::Gelu),
                Activation::GeluTanh => each!(Activation::GeluTanh),
            }
        }
    }
    Arch::new().dispatch(Op(columns, bias, activation));
}

/// `LayerNorm` of each row of the column-major `src` (`weight.len()` columns) into `dst`:
/// `(x − mean) / sqrt(var + eps) · weight + bias`. `stats` holds two values per row; every
/// pass runs down whole columns, so it vectorises across rows.
pub fn layer_norm_columns(
    src: &[f32],
    dst: &mut [f32],
    weight: &[f32],
    bias: &[f32],
    eps: f32,
    stats: &mut Vec<f32>,
) {
    struct Op<'a>(
        &'a [f32],
        &'a mut [f32],
        &'a [f32],
        &'a [f32],
        f32,
        &'a mut [f32],
    );
    impl WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let Op(src, dst, weight, bias, eps, stats) = self;
            let (dim, rows) = (weight.len(), src.len() / weight.len());
            let (mean, scale) = stats.split_at_mut(rows);
            mean.fill(0.0);
            scale.fill(0.0);
            for column in src.chunks_exact(rows) {
                for (m, v) in mean.iter_mut().zip(column) {
                    *m += v;
                }
            }
            mean.iter_mut().for_each(|m| *m /= dim as f32);
            for column in src.chunks_exact(rows) {
                for ((s, m), v) in scale.iter_mut().zip(&*mean).zip(column) {
                    *s += (v - m) * (v - m);
                }
            }
            scale
                .iter_mut()
                .for_each(|s| *s = 1.0 / (*s / dim as f32 + eps).sqrt());
            let columns = src.chunks_exact(rows).zip(dst.chunks_exact_mut(rows));
            for ((column, out), (w, b)) in columns.zip(weight.iter().zip(bias)) {
                for (((o, v), m), s) in out.iter_mut().zip(column).zip(&*mean).zip(&*scale) {
                    *o = (v - m) * s * w + b;
                }
            }
        }
    }
    let rows = src.len() / weight.len();
    stats.resize(2 * rows, 0.0);
    Arch::new().dispatch(Op(src, dst, weight, bias, eps, &mut stats[..2 * rows]));
}

/// Softmax of each `width`-value row of `rows`, in place.
pub fn softmax(rows: &mut [f32], width: usize) {
    struct Op<'a>(&'a mut [f32], usize);
    impl WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            for row in self.0.chunks_exact_mut(self.1) {
                let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                for v in row.iter_mut() {
                    *v = exp(*v - max);
                }
                let scale = 1.0 / sum(row.iter().copied());
                for v in row.iter_mut() {
                    *v *= scale;
                }
            }
        }
    }
    Arch::new().dispatch(Op(rows, width));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i32 - b.to_bits() as i32).unsigned_abs()
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let mut worst = 0;
        for i in -870_000..=880_000 {
            let x = i as f32 * 1e-4;
            worst = worst.max(ulps(exp(x), x.exp()));
        }
        assert!(worst <= 2, "worst {worst} ulp");
        assert!(exp(f32::NEG_INFINITY) < 1e-37 && exp(f32::INFINITY).is_finite());
    }

    /// `erf` in f64: its Maclaurin series near 0, the continued fraction of `erfc` beyond
    /// (where the series' terms cancel too much), each good to about 1e-13.
    fn reference_erf(z: f64) -> f64 {
        let a = z.abs();
        if a < 2.5 {
            let series: f64 = (0..100)
                .map(|k| {
                    let fact: f64 = (1..=k).map(f64::from).product();
                    (-1f64).powi(k) * z.powi(2 * k + 1) / (fact * f64::from(2 * k + 1))
                })
                .sum();
            return series * 2.0 / std::f64::consts::PI.sqrt();
        }
        // erfc(a) = e^(-a²) / sqrt(pi) / (a + (1/2) / (a + 1 / (a + (3/2) / (a + ...))))
        let fraction = (1..=60).rev().fold(a, |k, n| a + f64::from(n) / 2.0 / k);
        let erfc = (-a * a).exp() / std::f64::consts::PI.sqrt() / fraction;
        (1.0 - erfc).copysign(z)
    }

    #[test]
    fn activations_match_their_definitions() {
        for i in -800..=800 {
            let x = i as f32 * 0.01;
            let xd = f64::from(x);
            let quick = xd / (1.0 + (-1.702 * xd).exp());
            let tanh = 0.5 * xd * (1.0 + (0.797_884_560_8 * (xd + 0.044_715 * xd.powi(3))).tanh());
            let erf = reference_erf(xd / std::f64::consts::SQRT_2);
            let erf_gelu = 0.5 * xd * (1.0 + erf);
            for (act, want) in [
                (Activation::QuickGelu, quick),
                (Activation::GeluTanh, tanh),
                (Activation::Gelu, erf_gelu),
            ] {
                let got = f64::from(activate(x, act));
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{act:?}({x}): {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn layer_norm_and_softmax_match_the_formulas() {
        let x: Vec<f32> = (0..37)
            .map(|i| (i as f32 * 0.7).sin() * 3.0 + 1.0)
            .collect();
        let (w, b): (Vec<f32>, Vec<f32>) = (0..37)
            .map(|i| (1.0 + i as f32 * 0.01, i as f32 * 0.1))
            .unzip();
        // Three rows: x, x reversed and x + 5, stored column-major (37 columns of 3).
        let rows: [Vec<f32>; 3] = [
            x.clone(),
            x.iter().rev().copied().collect(),
            x.iter().map(|v| v + 5.0).collect(),
        ];
        let columns: Vec<f32> = (0..37)
            .flat_map(|j| rows.iter().map(move |r| r[j]))
            .collect();
        let (mut out, mut stats) = (vec![0.0; 3 * 37], Vec::new());
        layer_norm_columns(&columns, &mut out, &w, &b, 1e-5, &mut stats);
        for (i, row) in rows.iter().enumerate() {
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / 37.0;
            let var = row
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / 37.0;
            for j in 0..37 {
                let want = (f64::from(row[j]) - mean) / (var + 1e-5).sqrt() * f64::from(w[j])
                    + f64::from(b[j]);
                let got = f64::from(out[j * 3 + i]);
                assert!((got - want).abs() < 1e-5, "layer norm row {i}, column {j}");
            }
        }
        let mut row = x.clone();
        softmax(&mut row, 37);
        let total: f64 = x.iter().map(|&v| f64::from(v).exp()).sum();
        for i in 0..37 {
            let want = f64::from(x[i]).exp() / total;
            assert!((f64::from(row[i]) - want).abs() < 1e-7, "softmax {i}");
        }
    }
}
