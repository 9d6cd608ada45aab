//! aarch64 NEON inner loops for f32 Dense and Conv (NEON is part of the aarch64 base ISA, so
//! no detection is needed). Each keeps the plain loop it replaces as its reference: tests
//! compare them over random shapes, ragged tails included (run under qemu-user in CI).
#![allow(unsafe_code)]

use core::arch::aarch64::*;

/// The NEON micro-kernels (always available on aarch64).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Neon;

impl Neon {
    /// Most rows [`Neon::tile`] takes.
    #[inline]
    pub(crate) fn rows(self) -> usize {
        6
    }

    /// `c[i·ldc + j] += Σ_{k<kc} a[i·lda + k] · b[k·ldb + j]` for `i < R`, `j < 16`
    /// (sums taken per `(i, j)` in `k` order, each step one fused multiply-add).
    ///
    /// # Panics
    /// When `R` is 0 or more than 6, or a slice is shorter than the indices above need.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tile<const R: usize>(self, kc: usize, a: &[f32], lda: usize, b: &[f32], ldb: usize, c: &mut [f32], ldc: usize) {
        assert!((1..=6).contains(&R), "tile: 1..=6 rows");
        if kc == 0 {
            return;
        }
        assert!(
            a.len() >= (R - 1) * lda + kc && b.len() >= (kc - 1) * ldb + 16 && c.len() >= (R - 1) * ldc + 16,
            "tile: operands too short"
        );
        // SAFETY: every index read or written is bounded by the lengths asserted above.
        unsafe { tile_neon::<R>(kc, a.as_ptr(), lda, b.as_ptr(), ldb, c.as_mut_ptr(), ldc) }
    }

    /// `Σ_k w_r[k] · x[k]` for the four rows `w_r`, each input loaded once for the four rows.
    ///
    /// # Panics
    /// When a row is shorter than `x`.
    #[inline]
    pub(crate) fn dot4(self, w: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
        assert!(w.iter().all(|r| r.len() >= x.len()), "dot4: rows shorter than x");
        let n = x.len();
        // SAFETY (loads): k + 4 <= n <= every row's length.
        unsafe {
            let mut acc = [vdupq_n_f32(0.0); 4];
            let mut k = 0;
            while k + 4 <= n {
                let xv = vld1q_f32(x.as_ptr().add(k));
                for (a, r) in acc.iter_mut().zip(&w) {
                    *a = vfmaq_f32(*a, vld1q_f32(r.as_ptr().add(k)), xv);
                }
                k += 4;
            }
            let mut out = [0.0f32; 4];
            for ((o, a), r) in out.iter_mut().zip(&acc).zip(&w) {
                *o = vaddvq_f32(*a) + x[k..].iter().zip(&r[k..n]).map(|(x, w)| x * w).sum::<f32>();
            }
            out
        }
    }

    /// `Σ_k a[k] · b[k]` over the shorter length, 4 lanes.
    #[inline]
    pub(crate) fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        // SAFETY (loads): k + 8 <= n.
        unsafe {
            let (mut a0, mut a1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
            let mut k = 0;
            while k + 8 <= n {
                a0 = vfmaq_f32(a0, vld1q_f32(a.as_ptr().add(k)), vld1q_f32(b.as_ptr().add(k)));
                a1 = vfmaq_f32(a1, vld1q_f32(a.as_ptr().add(k + 4)), vld1q_f32(b.as_ptr().add(k + 4)));
                k += 8;
            }
            vaddvq_f32(vaddq_f32(a0, a1)) + a[k..n].iter().zip(&b[k..n]).map(|(x, y)| x * y).sum::<f32>()
        }
    }

    /// `dst[j] = src[j]` for `lo ≤ j < lo + span`, `0.0` for the other `j < 16`.
    #[inline]
    pub(crate) fn window16(self, dst: &mut [f32; 16], src: &[f32; 16], lo: u32, span: u32) {
        for (j, (d, v)) in dst.iter_mut().zip(src).enumerate() {
            *d = if (j as u32).wrapping_sub(lo) < span { *v } else { 0.0 };
        }
    }

    /// [`super::gemm::gather_rows_scalar`] (NEON has no gather instruction).
    #[inline]
    pub(crate) fn gather_rows(self, dst: &mut [f32], src: &[f32], idx: &[i32; 16], rows: &[(i32, u16)]) {
        super::gemm::gather_rows_scalar(dst, src, idx, rows)
    }

    /// [`super::gemm::load_rows_scalar`].
    #[inline]
    pub(crate) fn load_rows(self, dst: &mut [f32], src: &[f32], base: i32, rows: &[(i32, u16)]) {
        super::gemm::load_rows_scalar(dst, src, base, rows)
    }

    /// [`super::depthwise::dw_taps_scalar`] (NEON has no masked loads; the compiler vectorises
    /// what it can).
    #[inline]
    pub(super) fn dw_taps(self, t: &super::depthwise::Taps, x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
        super::depthwise::dw_taps_scalar(t, x, w, b, out)
    }

    /// Runs `f` (NEON is always on, so this is a plain call).
    #[inline]
    pub(crate) fn run<T>(self, f: impl FnOnce() -> T) -> T {
        f()
    }
}

/// [`Neon::tile`] on raw pointers; the caller guarantees the bounds.
#[inline]
unsafe fn tile_neon<const R: usize>(kc: usize, a: *const f32, lda: usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize) {
    // SAFETY (all loads and stores here): bounded by the caller's length checks.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); 4]; R];
        for (i, r) in acc.iter_mut().enumerate() {
            for (q, v) in r.iter_mut().enumerate() {
                *v = vld1q_f32(c.add(i * ldc + 4 * q));
            }
        }
        for k in 0..kc {
            let bp = b.add(k * ldb);
            let bv = [vld1q_f32(bp), vld1q_f32(bp.add(4)), vld1q_f32(bp.add(8)), vld1q_f32(bp.add(12))];
            for (i, r) in acc.iter_mut().enumerate() {
                let av = *a.add(i * lda + k);
                for (v, bq) in r.iter_mut().zip(&bv) {
                    *v = vfmaq_n_f32(*v, *bq, av);
                }
            }
        }
        for (i, r) in acc.iter().enumerate() {
            for (q, v) in r.iter().enumerate() {
                vst1q_f32(c.add(i * ldc + 4 * q), *v);
            }
        }
    }
}
