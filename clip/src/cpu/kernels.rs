//! What does the fused CPU path compute between two matrix products? The element-wise and
//! row-wise steps of a transformer layer, each one pass over a buffer that already exists:
//! bias adds, bias + activation, layer norm and softmax.
//!
//! Each step is a [`WithSimd`] whose loops `pulp` compiles for the widest instruction set the
//! CPU has (AVX-512 or AVX2 on x86-64), chosen at run time; the loops are branch-free over whole
//! rows so the compiler vectorises them. (A closure handed to `pulp` is not reliably inlined
//! into the dispatched function, and its loops then run in baseline SSE2: measured 22% of a
//! batch's time, against the few percent below.) `exp` is a polynomial rather than libm's so
//! that it vectorises: within 2 ulp over the range an `f32` result can take.

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

/// `rows = activation(rows + bias)`, row by row.
pub fn bias_activation(rows: &mut [f32], bias: &[f32], activation: Activation) {
    struct Op<'a>(&'a mut [f32], &'a [f32], Activation);
    impl WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let Op(rows, bias, activation) = self;
            // One loop per activation, so that none branches inside.
            macro_rules! each {
                ($act:expr) => {
                    for row in rows.chunks_exact_mut(bias.len()) {
                        for (v, b) in row.iter_mut().zip(bias) {
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
    Arch::new().dispatch(Op(rows, bias, activation));
}

/// `LayerNorm` of each row of `src` into the same row of `dst`: `(x − mean) / sqrt(var + eps)
/// · weight + bias` (rows of `weight.len()` values).
pub fn layer_norm(src: &[f32], dst: &mut [f32], weight: &[f32], bias: &[f32], eps: f32) {
    struct Op<'a>(&'a [f32], &'a mut [f32], &'a [f32], &'a [f32], f32);
    impl WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let Op(src, dst, weight, bias, eps) = self;
            let dim = weight.len();
            for (x, out) in src.chunks_exact(dim).zip(dst.chunks_exact_mut(dim)) {
                let n = dim as f32;
                let mean = sum(x.iter().copied()) / n;
                let var = sum(x.iter().map(|v| (v - mean) * (v - mean))) / n;
                let inv = 1.0 / (var + eps).sqrt();
                for (((o, v), w), b) in out.iter_mut().zip(x).zip(weight).zip(bias) {
                    *o = (v - mean) * inv * w + b;
                }
            }
        }
    }
    Arch::new().dispatch(Op(src, dst, weight, bias, eps));
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
        let mut out = vec![0.0; 37];
        layer_norm(&x, &mut out, &w, &b, 1e-5);
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / 37.0;
        let var = x
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / 37.0;
        for i in 0..37 {
            let want =
                (f64::from(x[i]) - mean) / (var + 1e-5).sqrt() * f64::from(w[i]) + f64::from(b[i]);
            assert!((f64::from(out[i]) - want).abs() < 1e-5, "layer norm {i}");
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
