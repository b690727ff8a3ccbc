//! How does the fused CPU path multiply two matrices? Through the `gemm` crate (the kernels
//! candle itself uses, AVX-512 included), called directly so that a product can write into a
//! buffer that lives across layers, accumulate into it (a residual add for free), scale its
//! result (attention's 1/√d) and read operands with any row and column stride (attention heads
//! and transposed weights without a copy). This file is the only `unsafe` of the path: it checks
//! every shape and bound before the call.

pub use gemm::Parallelism;

/// Where element `(i, j)` of a `rows × cols` matrix sits in its slice: `i * rs + j * cs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl View {
    /// A row-major matrix whose rows are `stride` values apart.
    pub fn rows(rows: usize, cols: usize, stride: usize) -> Self {
        View {
            rows,
            cols,
            rs: stride,
            cs: 1,
        }
    }

    /// A column-major matrix whose columns are `stride` values apart.
    pub fn columns(rows: usize, cols: usize, stride: usize) -> Self {
        View {
            rows,
            cols,
            rs: 1,
            cs: stride,
        }
    }

    /// The transpose of a row-major `[cols, rows]` matrix (a linear layer's `[out, in]` weight
    /// read as the `in × out` right operand).
    pub fn transposed(rows: usize, cols: usize) -> Self {
        View {
            rows,
            cols,
            rs: 1,
            cs: rows,
        }
    }

    /// One past the largest offset the view reaches (0 when empty).
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            return 0;
        }
        (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
    }
}

/// `dst = scale · lhs · rhs`, or `dst += scale · lhs · rhs` when `accumulate`.
///
/// # Panics
///
/// When the shapes disagree or a view reaches past its slice: a bug in the caller, never a
/// property of the input.
pub fn matmul(
    dst: (&mut [f32], View),
    accumulate: bool,
    lhs: (&[f32], View),
    rhs: (&[f32], View),
    scale: f32,
    parallelism: Parallelism,
) {
    let ((dst, d), (lhs, l), (rhs, r)) = (dst, lhs, rhs);
    assert!(
        l.rows == d.rows && r.cols == d.cols && l.cols == r.rows,
        "matmul shapes: dst {d:?}, lhs {l:?}, rhs {r:?}"
    );
    assert!(
        d.extent() <= dst.len() && l.extent() <= lhs.len() && r.extent() <= rhs.len(),
        "matmul bounds: dst {d:?} in {}, lhs {l:?} in {}, rhs {r:?} in {}",
        dst.len(),
        lhs.len(),
        rhs.len()
    );
    if d.rows == 0 || d.cols == 0 {
        return;
    }
    let stride = |s: usize| isize::try_from(s).expect("stride fits isize");
    #[allow(
        unsafe_code,
        reason = "gemm takes raw pointers; the views were checked against their slices above, \
                  and `dst` is a unique borrow, so it overlaps neither operand"
    )]
    // SAFETY: every offset the kernel reads or writes is below the extent checked above.
    unsafe {
        gemm::gemm(
            d.rows,
            d.cols,
            l.cols,
            dst.as_mut_ptr(),
            stride(d.cs),
            stride(d.rs),
            accumulate,
            lhs.as_ptr(),
            stride(l.cs),
            stride(l.rs),
            rhs.as_ptr(),
            stride(r.cs),
            stride(r.rs),
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naive triple loop over the same views.
    fn naive(lhs: (&[f32], View), rhs: (&[f32], View)) -> Vec<f32> {
        let ((a, l), (b, r)) = (lhs, rhs);
        let mut out = vec![0.0; l.rows * r.cols];
        for i in 0..l.rows {
            for j in 0..r.cols {
                out[i * r.cols + j] = (0..l.cols)
                    .map(|k| a[i * l.rs + k * l.cs] * b[k * r.rs + j * r.cs])
                    .sum();
            }
        }
        out
    }

    #[test]
    fn strided_products_equal_the_naive_loop() {
        let a: Vec<f32> = (0..7 * 5).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..3 * 5).map(|i| (i as f32 * 0.11).cos()).collect();
        // a: 7 × 5 row-major; w: a [3, 5] weight read as the 5 × 3 operand.
        let (l, r) = (View::rows(7, 5, 5), View::transposed(5, 3));
        let expected = naive((&a, l), (&w, r));
        let mut got = vec![1.0; 7 * 3];
        matmul(
            (&mut got, View::rows(7, 3, 3)),
            true,
            (&a, l),
            (&w, r),
            0.5,
            Parallelism::None,
        );
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - (1.0 + 0.5 * e)).abs() < 1e-5, "{g} vs 1 + {e} / 2");
        }
    }

    #[test]
    #[should_panic(expected = "matmul bounds")]
    fn a_view_past_its_slice_panics_before_the_kernel() {
        let (a, w, mut out) = (vec![0.0; 10], vec![0.0; 15], vec![0.0; 21]);
        let l = View::rows(7, 5, 5);
        matmul(
            (&mut out, View::rows(7, 3, 3)),
            false,
            (&a, l),
            (&w, View::transposed(5, 3)),
            1.0,
            Parallelism::None,
        );
    }
}
