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

    /// `dst[i] = src[2·i]` for every `i` both hold: 4 values per de-interleaving load
    /// (`ld2`), the tail one at a time.
    #[inline]
    pub(crate) fn evens(self, dst: &mut [f32], src: &[f32]) {
        let quads = dst.len().min(src.len() / 2) / 4;
        for q in 0..quads {
            // SAFETY: values `8·q .. 8·q + 8` of `src` and `4·q .. 4·q + 4` of `dst`.
            unsafe { vst1q_f32(dst.as_mut_ptr().add(4 * q), vld2q_f32(src.as_ptr().add(8 * q)).0) }
        }
        super::gemm::evens_scalar(&mut dst[4 * quads..], src.get(8 * quads..).unwrap_or(&[]));
    }

    /// [`super::gemm::split2_scalar`]: 4 values of each column phase per de-interleaving load
    /// (`ld2`), row tails one at a time.
    #[inline]
    pub(crate) fn split2(self, x: &[f32], h: usize, w: usize, dst: &mut [f32]) {
        let (hq, wq) = (h.div_ceil(2), w.div_ceil(2));
        let phase = hq * wq;
        let (Some(x), Some(dst)) = (x.get(..h * w), dst.get_mut(..4 * phase)) else { return };
        let quads = w / 8;
        for (iy, row) in x.chunks_exact(w.max(1)).enumerate() {
            let (py, i) = (iy % 2, iy / 2);
            let at = 2 * py * phase + i * wq;
            let (ev, od) = dst[at..].split_at_mut(phase);
            let (ev, od) = (&mut ev[..wq], &mut od[..wq]);
            for q in 0..quads {
                // SAFETY: values `8·q .. 8·q + 8` of the row and `4·q .. 4·q + 4` of each phase row.
                unsafe {
                    let v = vld2q_f32(row.as_ptr().add(8 * q));
                    vst1q_f32(ev.as_mut_ptr().add(4 * q), v.0);
                    vst1q_f32(od.as_mut_ptr().add(4 * q), v.1);
                }
            }
            for j in 4 * quads..wq {
                ev[j] = row[2 * j];
                od[j] = row.get(2 * j + 1).copied().unwrap_or(0.0);
            }
        }
        if h % 2 == 1 {
            for px in 0..2 {
                let at = (2 + px) * phase + (hq - 1) * wq;
                dst[at..at + wq].fill(0.0);
            }
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

    /// [`super::gemm::Micro::im_1x1`] with NEON: 16 outputs × up to 4 positions in registers
    /// (the last `m mod 16` outputs one at a time).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn im_1x1(
        self,
        x: &[f32],
        hw: usize,
        c: usize,
        wt: &[f32],
        m: usize,
        bias: &[f32],
        act: crate::op::Activation,
        out: &mut [f32],
    ) -> bool {
        if !super::gemm::im_fits(x, hw, c, wt, m, bias, out) {
            return false;
        }
        let full = m / 16 * 16;
        let b = if bias.is_empty() { None } else { Some(bias.as_ptr()) };
        let mut p0 = 0;
        while p0 < hw {
            let np = 4.min(hw - p0);
            // SAFETY: positions `p0 .. p0 + np` lie inside every input and output plane, inputs
            // below `c` and outputs below `full ≤ m` inside the slices (checked above).
            unsafe {
                let (xp, op) = (x.as_ptr().add(p0), out.as_mut_ptr().add(p0));
                match np {
                    4 => im_1x1_neon::<4>(xp, hw, c, wt.as_ptr(), m, full, b, act, op),
                    3 => im_1x1_neon::<3>(xp, hw, c, wt.as_ptr(), m, full, b, act, op),
                    2 => im_1x1_neon::<2>(xp, hw, c, wt.as_ptr(), m, full, b, act, op),
                    _ => im_1x1_neon::<1>(xp, hw, c, wt.as_ptr(), m, full, b, act, op),
                }
            }
            p0 += np;
        }
        // The last outputs, one at a time (the same sums).
        for o in full..m {
            for p in 0..hw {
                let mut acc = bias.get(o).copied().unwrap_or(0.0);
                for ci in 0..c {
                    let blk = p / 4 * 4;
                    if x[ci * hw + blk..ci * hw + (blk + 4).min(hw)].iter().all(|&v| v == 0.0) {
                        continue;
                    }
                    acc = libm::fmaf(x[ci * hw + p], wt[ci * m + o], acc);
                }
                out[o * hw + p] = act.apply(acc);
            }
        }
        true
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

/// [`Neon::im_1x1`] for the `NP` positions at `x` / `out` and the outputs below `full` (a
/// multiple of 16); the caller guarantees the bounds.
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn im_1x1_neon<const NP: usize>(
    x: *const f32,
    hw: usize,
    c: usize,
    wt: *const f32,
    m: usize,
    full: usize,
    bias: Option<*const f32>,
    act: crate::op::Activation,
    out: *mut f32,
) {
    // SAFETY: the caller's guarantee.
    unsafe {
        for o0 in (0..full).step_by(16) {
            let mut start = [vdupq_n_f32(0.0); 4];
            if let Some(b) = bias {
                for (i, v) in start.iter_mut().enumerate() {
                    *v = vld1q_f32(b.add(o0 + 4 * i));
                }
            }
            let mut acc = [start; NP];
            for ci in 0..c {
                let xr = x.add(ci * hw);
                // Inputs zero at every position of the block add nothing.
                if (0..NP).all(|p| *xr.add(p) == 0.0) {
                    continue;
                }
                let wr = wt.add(ci * m + o0);
                let w = [vld1q_f32(wr), vld1q_f32(wr.add(4)), vld1q_f32(wr.add(8)), vld1q_f32(wr.add(12))];
                for (p, a) in acc.iter_mut().enumerate() {
                    let xv = vdupq_n_f32(*xr.add(p));
                    for (a, &w) in a.iter_mut().zip(&w) {
                        *a = vfmaq_f32(*a, xv, w);
                    }
                }
            }
            for (p, a) in acc.iter().enumerate() {
                let mut t = [0.0f32; 16];
                for (i, v) in a.iter().enumerate() {
                    vst1q_f32(t.as_mut_ptr().add(4 * i), *v);
                }
                for (j, &v) in t.iter().enumerate() {
                    *out.add((o0 + j) * hw + p) = act.apply(v);
                }
            }
        }
    }
}
