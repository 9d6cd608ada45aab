//! aarch64 NEON inner loops for f32 Dense and Conv (NEON is part of the aarch64 base ISA, so
//! no detection is needed). Each keeps the plain loop it replaces as its reference: tests
//! compare them over random shapes, ragged tails included (run under qemu-user in CI).
#![allow(unsafe_code)]

use super::depthwise::{Taps, TB};
use crate::op::Activation;
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

    /// `dst[j] = src[j]` for `lo ≤ j < lo + span`, `0.0` for the other `j < 16` (a lane mask
    /// per four: `j - lo < span`, unsigned, as the scalar definition).
    #[inline]
    pub(crate) fn window16(self, dst: &mut [f32; 16], src: &[f32; 16], lo: u32, span: u32) {
        // SAFETY: 16 floats in `src` and `dst`, 4 indices a step.
        unsafe {
            let (lo, span) = (vdupq_n_u32(lo), vdupq_n_u32(span));
            let idx = [0u32, 1, 2, 3];
            let mut j = vld1q_u32(idx.as_ptr());
            for q in 0..4 {
                let keep = vcltq_u32(vsubq_u32(j, lo), span);
                vst1q_f32(dst.as_mut_ptr().add(4 * q), vbslq_f32(keep, vld1q_f32(src.as_ptr().add(4 * q)), vdupq_n_f32(0.0)));
                j = vaddq_u32(j, vdupq_n_u32(4));
            }
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

    /// [`super::gemm::gather_rows_scalar`] (NEON has no gather instruction): a row whose 16
    /// positions all lie in `src` loads every lane and keeps the masked-in ones (no bounds test
    /// per lane), any other row the scalar definition.
    #[inline]
    pub(crate) fn gather_rows(self, dst: &mut [f32], src: &[f32], idx: &[i32; 16], rows: &[(i32, u16)]) {
        let (lo, hi) = (idx.iter().min().copied().unwrap_or(0), idx.iter().max().copied().unwrap_or(0));
        for (row, &(off, mask)) in dst.chunks_exact_mut(16).zip(rows) {
            let inside = lo.checked_add(off).is_some_and(|a| a >= 0) && hi.checked_add(off).is_some_and(|b| (b as usize) < src.len());
            if !inside {
                super::gemm::gather_rows_scalar(row, src, idx, &[(off, mask)]);
                continue;
            }
            for (j, (d, &i)) in row.iter_mut().zip(idx).enumerate() {
                // SAFETY: `lo + off ≤ i + off ≤ hi + off < src.len()`, and `lo + off ≥ 0`.
                let v = unsafe { *src.get_unchecked((i + off) as usize) };
                *d = if mask >> j & 1 == 1 { v } else { 0.0 };
            }
        }
    }

    /// [`super::gemm::load_rows_scalar`]: a row whose 16 positions all lie in `src` is four
    /// plain loads with the lanes outside its mask selected to 0, any other row the scalar
    /// definition.
    #[inline]
    pub(crate) fn load_rows(self, dst: &mut [f32], src: &[f32], base: i32, rows: &[(i32, u16)]) {
        for (row, &(off, mask)) in dst.chunks_exact_mut(16).zip(rows) {
            let at = base.wrapping_add(off);
            if at < 0 || at as usize + 16 > src.len() {
                super::gemm::load_rows_scalar(row, src, base, &[(off, mask)]);
                continue;
            }
            // SAFETY: floats `at .. at + 16` of `src` (checked above) and the row's 16.
            unsafe {
                let lane_bits = vld1q_u32([1u32, 2, 4, 8].as_ptr());
                for q in 0..4 {
                    let keep = vtstq_u32(vdupq_n_u32((mask >> (4 * q)) as u32 & 0xf), lane_bits);
                    let v = vld1q_f32(src.as_ptr().add(at as usize + 4 * q));
                    vst1q_f32(row.as_mut_ptr().add(4 * q), vbslq_f32(keep, v, vdupq_n_f32(0.0)));
                }
            }
        }
    }

    /// [`super::depthwise::dw_taps_scalar`] bit for bit, 4-lane quarters of each block: a tap
    /// whose quarters are all masked in is read with plain loads, one whose quarters all lie
    /// inside the input plane with plain loads and its masked-out lanes selected to 0 (NEON has
    /// no masked loads; rows that start or end inside a block mask some lanes of most taps),
    /// and the others the same way where their quarters stay inside the call's channel planes
    /// (all channels but the edge ones), else lane by lane; full quarters leave through the
    /// activation's selects and a plain store. Only the quarters up to the last one holding an
    /// output position are summed.
    #[inline]
    pub(super) fn dw_taps(self, t: &super::depthwise::Taps, x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
        let n = t.channels(x, w, b, out);
        let st = t.store();
        let nq = (0..4 * TB).rposition(|q| quarter(st[q / 4], q) != 0).map_or(0, |q| q + 1);
        // SAFETY: channels below `n` have their planes, filters and bias inside the slices
        // (`Taps::channels`), and every masked-in lane loaded and every stored lane lies inside
        // its plane (the `Taps` guarantee); other lanes are not accessed.
        unsafe {
            let (x, w, b, o) = (x.as_ptr(), w.as_ptr(), b.as_ptr(), out.as_mut_ptr());
            macro_rules! quarters {
                ($t:expr) => {
                    match nq {
                        0 => {}
                        1..=4 => dw_taps_neon::<$t, 4>(t, x, w, b, o, n),
                        5..=8 => dw_taps_neon::<$t, 8>(t, x, w, b, o, n),
                        9..=12 => dw_taps_neon::<$t, 12>(t, x, w, b, o, n),
                        _ => dw_taps_neon::<$t, { 4 * TB }>(t, x, w, b, o, n),
                    }
                };
            }
            match t.taps() {
                0..=9 => quarters!(9),
                10..=25 => quarters!(25),
                _ => quarters!({ super::depthwise::MAX_TAPS }),
            }
        }
    }

    /// [`super::gemm::Micro::im_1x1`] with NEON: 16 outputs × up to 4 positions in registers,
    /// then 4 outputs at a time, the last `m mod 4` one at a time (the same sums).
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
        let (full16, full4) = (m / 16 * 16, m / 4 * 4);
        let b = if bias.is_empty() { None } else { Some(bias.as_ptr()) };
        let mut p0 = 0;
        while p0 < hw {
            let np = 4.min(hw - p0);
            // SAFETY: positions `p0 .. p0 + np` lie inside every input and output plane, inputs
            // below `c` and outputs below `full4 ≤ m` inside the slices (checked above).
            unsafe {
                let (xp, op) = (x.as_ptr().add(p0), out.as_mut_ptr().add(p0));
                let k = (hw, c, wt.as_ptr(), m, b, act);
                macro_rules! blocks {
                    ($np:literal) => {{
                        im_1x1_neon::<$np, 4>(k, xp, op, 0..full16);
                        im_1x1_neon::<$np, 1>(k, xp, op, full16..full4);
                    }};
                }
                match np {
                    4 => blocks!(4),
                    3 => blocks!(3),
                    2 => blocks!(2),
                    _ => blocks!(1),
                }
            }
            p0 += np;
        }
        // The last outputs, one at a time (the same sums).
        for o in full4..m {
            for p in 0..hw {
                let mut acc = bias.get(o).copied().unwrap_or(0.0);
                for ci in 0..c {
                    let blk = p / 4 * 4;
                    if x[ci * hw + blk..ci * hw + (blk + 4).min(hw)].iter().all(|&v| v == 0.0) {
                        continue;
                    }
                    acc = fmaf(x[ci * hw + p], wt[ci * m + o], acc);
                }
                out[o * hw + p] = act.apply(acc);
            }
        }
        true
    }

    /// The byte planes of the 4-bit codebook `table` (its first 16 values): of their f16 forms
    /// when every value is one exactly (it survives the round trip through f16 bit for bit;
    /// f16 codebooks, the default), else of the f32 values.
    #[inline]
    pub(crate) fn planes4(self, table: &[f32; crate::codebook::TABLE_LEN]) -> Planes4 {
        // SAFETY: 16 values in `table`.
        unsafe {
            let v: [float32x4_t; 4] = core::array::from_fn(|i| vld1q_f32(table.as_ptr().add(4 * i)));
            // Values 0–7 and 8–15 as f16 bits.
            let (lo, hi) = (vcombine_u16(to_f16(v[0]), to_f16(v[1])), vcombine_u16(to_f16(v[2]), to_f16(v[3])));
            let back = [widen_low(lo), widen_high(lo), widen_low(hi), widen_high(hi)];
            let same = v
                .iter()
                .zip(&back)
                .fold(vdupq_n_u32(!0), |m, (&x, &y)| vandq_u32(m, vceqq_u32(vreinterpretq_u32_f32(x), vreinterpretq_u32_f32(y))));
            let zero = vdupq_n_u8(0);
            if vminvq_u32(same) == !0 {
                // Plane 0 the f16 values' low bytes, plane 1 the high.
                let (lo, hi) = (vreinterpretq_u8_u16(lo), vreinterpretq_u8_u16(hi));
                return Planes4 { planes: [vuzp1q_u8(lo, hi), vuzp2q_u8(lo, hi), zero, zero], half: true };
            }
            // Bytes 0 and 2, 1 and 3 of each value, then each alone.
            let r = v.map(|x| vreinterpretq_u8_f32(x));
            let (e01, e23) = (vuzp1q_u8(r[0], r[1]), vuzp1q_u8(r[2], r[3]));
            let (o01, o23) = (vuzp2q_u8(r[0], r[1]), vuzp2q_u8(r[2], r[3]));
            Planes4 { planes: [vuzp1q_u8(e01, e23), vuzp1q_u8(o01, o23), vuzp2q_u8(e01, e23), vuzp2q_u8(o01, o23)], half: false }
        }
    }

    /// `Σ_j table[code_r(j)] · x[j]` for each of the `R` 4-bit rows (two codes a byte, the
    /// low nibble first), `table` the codebook `planes` came from: 32 codes per step, each
    /// decoded by four table lookups (one per byte plane) and the byte interleaves that
    /// reassemble the floats, row by row; then a step of 16 codes if 16 are left, and the last
    /// ones from zero-padded copies (codes past a row's end meet zero inputs; codewords are
    /// finite). `None` when a row holds fewer than `⌈x.len()/2⌉` bytes.
    #[inline]
    pub(crate) fn dot_codes4<const R: usize>(self, planes: &Planes4, rows: [&[u8]; R], x: &[f32]) -> Option<[f32; R]> {
        let n = x.len();
        if rows.iter().any(|r| r.len() < n.div_ceil(2)) {
            return None;
        }
        // SAFETY: every row holds `⌈n/2⌉` code bytes (checked above).
        Some(unsafe {
            if planes.half {
                dot_codes4_core::<true, R>(planes, rows, x)
            } else {
                dot_codes4_core::<false, R>(planes, rows, x)
            }
        })
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

// f16 ↔ f32 on bit patterns (`fcvtn`, `fcvtl`, `fcvtl2`, base aarch64 instructions), written
// out because the f16 intrinsics need a newer Rust than this crate's minimum (1.94).

/// The four f32 lanes of `v` as f16 bits, rounded to nearest even (`fcvtn`).
#[inline(always)]
fn to_f16(v: float32x4_t) -> uint16x4_t {
    let out;
    // SAFETY: a register-only conversion.
    unsafe { core::arch::asm!("fcvtn {o:v}.4h, {i:v}.4s", o = out(vreg) out, i = in(vreg) v, options(pure, nomem, nostack)) };
    out
}

/// The f16 values of bit lanes 0–3 of `h` as f32 (exact, `fcvtl`).
#[inline(always)]
fn widen_low(h: uint16x8_t) -> float32x4_t {
    let out;
    // SAFETY: a register-only conversion.
    unsafe { core::arch::asm!("fcvtl {o:v}.4s, {i:v}.4h", o = out(vreg) out, i = in(vreg) h, options(pure, nomem, nostack)) };
    out
}

/// The f16 values of bit lanes 4–7 of `h` as f32 (exact, `fcvtl2`).
#[inline(always)]
fn widen_high(h: uint16x8_t) -> float32x4_t {
    let out;
    // SAFETY: a register-only conversion.
    unsafe { core::arch::asm!("fcvtl2 {o:v}.4s, {i:v}.8h", o = out(vreg) out, i = in(vreg) h, options(pure, nomem, nostack)) };
    out
}

/// A 4-bit codebook's 16 values as byte planes: plane `b` holds byte `b` (little-endian) of
/// each value, so one table lookup per plane decodes 16 codes ([`Neon::planes4`]). With `half`
/// the planes are of the values' f16 forms (two planes, exact: built only when every value is
/// one), widened after the lookups.
#[derive(Clone, Copy)]
pub(crate) struct Planes4 {
    planes: [uint8x16_t; 4],
    half: bool,
}

/// The byte planes of every group of a 4-bit payload with at most 16 groups, built once
/// ([`Neon::books4`]), for decoders that meet rows of any group (1 KiB).
pub(crate) struct Books4 {
    planes: [Planes4; 16],
}

impl Neon {
    /// [`Books4`] of `p`: `None` for other widths or more than 16 groups.
    pub(crate) fn books4(self, p: &crate::codebook::Parts<'_>) -> Option<Books4> {
        if p.bits() != 4 || p.groups() > 16 {
            return None;
        }
        let mut t = [0.0f32; crate::codebook::TABLE_LEN];
        let mut planes = [self.planes4(&t); 16];
        for (g, pl) in planes.iter_mut().enumerate().take(p.groups()) {
            p.load(g, &mut t);
            *pl = self.planes4(&t);
        }
        Some(Books4 { planes })
    }
}

impl Books4 {
    /// Writes weights `k0 .. k0 + out.len()` of row `row` of `p` (the payload these books came
    /// from) to `out`: the values [`crate::codebook::Parts::decode`] gives, 32 per step
    /// (codes interleaved back into order, then four table lookups and two rounds of byte
    /// interleaves per 16). False, with `out` untouched, for an odd `k0` or when the row
    /// holds fewer codes.
    pub(crate) fn decode(&self, p: &crate::codebook::Parts<'_>, row: usize, k0: usize, out: &mut [f32]) -> bool {
        let codes = p.row(row);
        let n = out.len();
        if !k0.is_multiple_of(2) || codes.len() < (k0 + n).div_ceil(2) {
            return false;
        }
        let (pl, codes) = (&self.planes[p.group(row).min(15)], &codes[k0 / 2..]);
        // SAFETY: the row holds `⌈n/2⌉` code bytes from `k0 / 2` (checked above).
        unsafe {
            if pl.half {
                decode_row::<true>(pl, codes, out)
            } else {
                decode_row::<false>(pl, codes, out)
            }
        }
        true
    }
}

impl Books4 {
    /// `out[j] += Σ_i codebook(group(j))[code(j, i)] · x[i]` for every row `j < out.len()` of
    /// `p` (the payload these books came from), rows in order, each through its own group's
    /// planes: the sums [`Neon::dot_codes4`] gives, bit for bit, without grouping rows by
    /// codebook first (that bookkeeping cost 4-bit Dense layers of 128 inputs about as many
    /// instructions as their multiply-adds). False, with `out` untouched, when a row holds fewer
    /// than `⌈x.len()/2⌉` code bytes or is missing.
    pub(crate) fn gemv(&self, p: &crate::codebook::Parts<'_>, x: &[f32], out: &mut [f32]) -> bool {
        let need = x.len().div_ceil(2);
        if p.stride() < need || p.indices().len() < out.len().saturating_mul(p.stride()) {
            return false;
        }
        // The last inputs zero-padded once for every row (`dot_codes4` pads them per call).
        let xt = padded_tail(x);
        for (j, o) in out.iter_mut().enumerate() {
            let pl = &self.planes[p.group(j).min(15)];
            let row = p.row(j);
            // SAFETY: every row holds `stride ≥ ⌈x.len()/2⌉` code bytes (checked above).
            let [v] = unsafe {
                if pl.half {
                    dot_codes4_padded::<true, 1>(pl, [row], x, &xt)
                } else {
                    dot_codes4_padded::<false, 1>(pl, [row], x, &xt)
                }
            };
            *o += v;
        }
        true
    }
}

/// [`Books4::decode`] of the `out.len()` codes at the start of `codes` through `pl` (f16
/// planes with `H`); the caller guarantees `⌈out.len()/2⌉` code bytes.
#[inline(always)]
unsafe fn decode_row<const H: bool>(pl: &Planes4, codes: &[u8], out: &mut [f32]) {
    let n = out.len();
    // SAFETY: steps read code bytes `j/2 .. j/2 + 16 ≤ ⌈n/2⌉` and write floats `j .. j + 32
    // ≤ n`; the last one reads and writes copies.
    unsafe {
        let step = |src: *const u8, dst: *mut f32| {
            let q = vld1q_u8(src);
            let (lo, hi) = (vandq_u8(q, vdupq_n_u8(15)), vshrq_n_u8::<4>(q));
            for (h, c) in [vzip1q_u8(lo, hi), vzip2q_u8(lo, hi)].into_iter().enumerate() {
                for (i, v) in decode16::<H>(pl, c).into_iter().enumerate() {
                    vst1q_f32(dst.add(16 * h + 4 * i), v);
                }
            }
        };
        let mut j = 0;
        while j + 32 <= n {
            step(codes.as_ptr().add(j / 2), out.as_mut_ptr().add(j));
            j += 32;
        }
        if j < n {
            let (mut src, mut dst) = ([0u8; 16], [0.0f32; 32]);
            let bytes = &codes[j / 2..n.div_ceil(2)];
            src[..bytes.len()].copy_from_slice(bytes);
            step(src.as_ptr(), dst.as_mut_ptr());
            out[j..].copy_from_slice(&dst[..n - j]);
        }
    }
}

/// The 16 values of `codes` (one code a byte, below 16) through `p`, in order, four a register
/// (`H`: `p` holds f16 planes).
#[inline(always)]
unsafe fn decode16<const H: bool>(p: &Planes4, codes: uint8x16_t) -> [float32x4_t; 4] {
    // SAFETY: NEON.
    unsafe {
        let pl = &p.planes;
        if H {
            // The two bytes of each f16 side by side, then widened (exactly) to f32.
            let (b0, b1) = (vqtbl1q_u8(pl[0], codes), vqtbl1q_u8(pl[1], codes));
            let (l, h) = (vreinterpretq_u16_u8(vzip1q_u8(b0, b1)), vreinterpretq_u16_u8(vzip2q_u8(b0, b1)));
            return [widen_low(l), widen_high(l), widen_low(h), widen_high(h)];
        }
        let b = pl.map(|plane| vqtbl1q_u8(plane, codes));
        // Bytes 0 and 1, 2 and 3 of each value side by side, then the two halves of each.
        let (l01, h01) = (vreinterpretq_u16_u8(vzip1q_u8(b[0], b[1])), vreinterpretq_u16_u8(vzip2q_u8(b[0], b[1])));
        let (l23, h23) = (vreinterpretq_u16_u8(vzip1q_u8(b[2], b[3])), vreinterpretq_u16_u8(vzip2q_u8(b[2], b[3])));
        [vzip1q_u16(l01, l23), vzip2q_u16(l01, l23), vzip1q_u16(h01, h23), vzip2q_u16(h01, h23)].map(|v| vreinterpretq_f32_u16(v))
    }
}

/// [`Neon::dot_codes4`] on planes of f16 forms (`H`) or of f32 values; the caller guarantees
/// `⌈x.len()/2⌉` code bytes in every row.
#[inline(always)]
unsafe fn dot_codes4_core<const H: bool, const R: usize>(planes: &Planes4, rows: [&[u8]; R], x: &[f32]) -> [f32; R] {
    // SAFETY: the caller's guarantee.
    unsafe { dot_codes4_padded::<H, R>(planes, rows, x, &padded_tail(x)) }
}

/// The inputs past the last step of 16 of `x` (fewer than 16), zero-padded to 16.
#[inline(always)]
fn padded_tail(x: &[f32]) -> [f32; 16] {
    let done = x.len() / 16 * 16;
    let mut xt = [0.0f32; 16];
    xt[..x.len() - done].copy_from_slice(&x[done..]);
    xt
}

/// [`dot_codes4_core`] given `xt = padded_tail(x)` (made once by callers that sum many rows
/// against the same inputs): steps of 32 codes, then one of 16 if 16 are left, then the last
/// codes from zero-padded copies against `xt` (codes past a row's end meet zero inputs). The
/// caller guarantees `⌈x.len()/2⌉` code bytes in every row.
#[inline(always)]
unsafe fn dot_codes4_padded<const H: bool, const R: usize>(planes: &Planes4, rows: [&[u8]; R], x: &[f32], xt: &[f32; 16]) -> [f32; R] {
    let n = x.len();
    let whole = n / 32 * 32;
    // SAFETY: steps read codes `j/2 .. j/2 + 16 ≤ ⌈n/2⌉` of each row and inputs `j .. j + 32
    // ≤ n`; the tail reads the padded copies.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); 2]; R];
        let ptrs = rows.map(|r| r.as_ptr());
        codes4_steps::<H, R>(planes, &ptrs, x.as_ptr(), whole, &mut acc);
        let mut done = whole;
        if n - done >= 16 {
            codes4_half::<H, R>(planes, &ptrs, x.as_ptr(), done, &mut acc);
            done += 16;
        }
        if done < n {
            // At most 8 bytes a row, copied byte by byte (a `memcpy` call per row cost more).
            let tails: [[u8; 8]; R] = core::array::from_fn(|r| {
                let mut t = [0u8; 8];
                for (d, &c) in t.iter_mut().zip(rows[r].get_unchecked(done / 2..n.div_ceil(2))) {
                    *d = c;
                }
                t
            });
            let tp: [*const u8; R] = core::array::from_fn(|r| tails[r].as_ptr());
            codes4_half::<H, R>(planes, &tp, xt.as_ptr(), 0, &mut acc);
        }
        acc.map(|[e, o]| vaddvq_f32(vaddq_f32(e, o)))
    }
}

/// The steps of [`Neon::dot_codes4`] over inputs `0 .. n` (`n` a multiple of 32): `acc[r]`
/// gains row `r`'s sums over the even inputs (`[0]`) and the odd ones (`[1]`). The caller
/// guarantees `n/2` code bytes at each row pointer and `n` inputs at `x`.
#[inline(always)]
unsafe fn codes4_steps<const H: bool, const R: usize>(
    p: &Planes4,
    rows: &[*const u8; R],
    x: *const f32,
    n: usize,
    acc: &mut [[float32x4_t; 2]; R],
) {
    // SAFETY: the caller's guarantee.
    unsafe {
        // Row by row (the inputs reloaded for each from L1): four rows' decodes at once would
        // not fit the 32 registers.
        for (a, &row) in acc.iter_mut().zip(rows) {
            let mut j = 0;
            while j < n {
                // Input pairs `j + 8t ..`: `.0` lane l is input `j + 8t + 2l`, `.1` the one after.
                let xv = [vld2q_f32(x.add(j)), vld2q_f32(x.add(j + 8)), vld2q_f32(x.add(j + 16)), vld2q_f32(x.add(j + 24))];
                add_codes::<H, 4>(p, vld1q_u8(row.add(j / 2)), &xv, a);
                j += 32;
            }
        }
    }
}

/// Adds to `a` the products of the codes in byte vector `q` with the `T` input pairs `xv`:
/// byte `i` holds the codes of inputs `2i` (low nibble, summed into `a[0]`) and `2i + 1`
/// (high nibble, into `a[1]`), input pair `t` covering bytes `4t .. 4t + 4`.
#[inline(always)]
unsafe fn add_codes<const H: bool, const T: usize>(p: &Planes4, q: uint8x16_t, xv: &[float32x4x2_t; T], a: &mut [float32x4_t; 2]) {
    // SAFETY: NEON.
    unsafe {
        let (even, odd) = (decode16::<H>(p, vandq_u8(q, vdupq_n_u8(15))), decode16::<H>(p, vshrq_n_u8::<4>(q)));
        for ((e, o), v) in even.iter().zip(&odd).zip(xv) {
            a[0] = vfmaq_f32(a[0], *e, v.0);
            a[1] = vfmaq_f32(a[1], *o, v.1);
        }
    }
}

/// One half step of [`Neon::dot_codes4`]: inputs `j .. j + 16`, the 8 code bytes from byte
/// `j / 2` of each row (the caller guarantees them and the 16 inputs).
#[inline(always)]
unsafe fn codes4_half<const H: bool, const R: usize>(
    p: &Planes4,
    rows: &[*const u8; R],
    x: *const f32,
    j: usize,
    acc: &mut [[float32x4_t; 2]; R],
) {
    // SAFETY: the caller's guarantee.
    unsafe {
        let xv = [vld2q_f32(x.add(j)), vld2q_f32(x.add(j + 8))];
        for (a, &row) in acc.iter_mut().zip(rows) {
            add_codes::<H, 2>(p, vcombine_u8(vld1_u8(row.add(j / 2)), vdup_n_u8(0)), &xv, a);
        }
    }
}

/// `a · b + c` rounded once: the `fmadd` instruction (libm's `fmaf` is a software routine).
#[inline(always)]
pub(crate) fn fmaf(a: f32, b: f32, c: f32) -> f32 {
    // SAFETY: NEON is part of the aarch64 base ISA.
    unsafe { vgetq_lane_f32::<0>(vfmaq_f32(vdupq_n_f32(c), vdupq_n_f32(a), vdupq_n_f32(b))) }
}

/// [`Neon::im_1x1`]'s operands: `hw`, `c`, the weights, `m`, the bias, the activation.
type Im1x1 = (usize, usize, *const f32, usize, Option<*const f32>, crate::op::Activation);

/// [`Neon::im_1x1`] for the `NP` positions at `x` / `out` and the outputs `outs` (`4·V` at a
/// time; `outs.len()` a multiple of that); the caller guarantees the bounds.
#[inline]
unsafe fn im_1x1_neon<const NP: usize, const V: usize>(k: Im1x1, x: *const f32, out: *mut f32, outs: core::ops::Range<usize>) {
    let (hw, c, wt, m, bias, act) = k;
    // SAFETY: the caller's guarantee.
    unsafe {
        for o0 in outs.step_by(4 * V) {
            let mut start = [vdupq_n_f32(0.0); V];
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
                let w: [float32x4_t; V] = core::array::from_fn(|i| vld1q_f32(wr.add(4 * i)));
                for (p, a) in acc.iter_mut().enumerate() {
                    let xv = vdupq_n_f32(*xr.add(p));
                    for (a, &w) in a.iter_mut().zip(&w) {
                        *a = vfmaq_f32(*a, xv, w);
                    }
                }
            }
            for (p, a) in acc.iter().enumerate() {
                for (i, v) in a.iter().enumerate() {
                    let v = act_q(act, *v);
                    let o = out.add((o0 + 4 * i) * hw + p);
                    *o = vgetq_lane_f32::<0>(v);
                    *o.add(hw) = vgetq_lane_f32::<1>(v);
                    *o.add(2 * hw) = vgetq_lane_f32::<2>(v);
                    *o.add(3 * hw) = vgetq_lane_f32::<3>(v);
                }
            }
        }
    }
}

/// Lanes `4·(q mod 4) ..` of the 16-lane block mask `m`: quarter `q` of its block.
#[inline]
fn quarter(m: u16, q: usize) -> u16 {
    (m >> (4 * (q % 4))) & 0xf
}

/// The activation's selects on four lanes: [`Activation::apply`] on each (NaN to 0 through
/// Relu and Threshold, kept through Clip).
#[inline]
pub(super) fn act_q(act: Activation, v: float32x4_t) -> float32x4_t {
    // SAFETY: NEON is part of the aarch64 base ISA.
    unsafe {
        let zero = vdupq_n_f32(0.0);
        match act {
            Activation::None => v,
            // `x > 0 ? x : 0`.
            Activation::Relu => vbslq_f32(vcgtq_f32(v, zero), v, zero),
            // `y = x < min ? min : x`, then `y > max ? max : y`.
            Activation::Clip { min, max } => {
                let (lo, hi) = (vdupq_n_f32(min), vdupq_n_f32(max));
                let y = vbslq_f32(vcltq_f32(v, lo), lo, v);
                vbslq_f32(vcgtq_f32(y, hi), hi, y)
            }
            // `x > alpha ? x : 0`.
            Activation::Threshold { alpha } => vbslq_f32(vcgtq_f32(v, vdupq_n_f32(alpha)), v, zero),
        }
    }
}

/// How [`dw_taps_neon`] reads one tap's quarters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TapRead {
    /// Every lane of every quarter masked in: plain loads.
    Full,
    /// Every quarter's four lanes inside the input plane: plain loads, the masked-out lanes
    /// selected to 0.
    Select,
    /// Some quarter reaches outside the plane: whole quarters where they stay inside the
    /// call's planes, else [`tap_lanes`].
    Lanes,
}

/// [`Neon::dw_taps`] over the first `Q` quarters for `n` channels, `T ≥ taps`: how each tap
/// is read worked out once per call, so that the quarters of a `Full` or `Select` tap run
/// without branches and the sums stay in registers. The caller guarantees the bounds.
unsafe fn dw_taps_neon<const T: usize, const Q: usize>(t: &Taps, x: *const f32, w: *const f32, b: *const f32, out: *mut f32, n: usize) {
    let (taps, (ip, op), j0, st, act) = (t.taps(), t.planes(), t.j0() as isize, t.store(), t.act());
    debug_assert!(taps <= T, "the dispatcher picks T ≥ taps");
    // SAFETY: four values.
    let lane_bits = unsafe { vld1q_u32([1u32, 2, 4, 8].as_ptr()) };
    // SAFETY: NEON is part of the aarch64 base ISA.
    let mut keep = [[unsafe { vdupq_n_u32(0) }; Q]; T];
    let mut masks = [[0u16; Q]; T];
    let mut reads = [TapRead::Full; T];
    // Per tap, the first and one past the last input position its quarters span.
    let mut reach = [(0isize, 0isize); T];
    for (tp, &dt) in t.d().iter().enumerate().take(T) {
        reach[tp] = (j0 + dt, j0 + dt + 4 * Q as isize);
        // Whole blocks first: a tap masked in on every lane needs no per-quarter masks.
        if (0..Q / 4).all(|k| t.mask(k, tp) == 0xffff) {
            reads[tp] = TapRead::Full;
            continue;
        }
        let inside = reach[tp].0 >= 0 && reach[tp].1 <= ip as isize;
        for q in 0..Q {
            let m = quarter(t.mask(q / 4, tp), q);
            let first = j0 + dt + 4 * q as isize;
            masks[tp][q] = m | if first >= 0 && first + 4 <= ip as isize { INSIDE } else { 0 };
            // SAFETY: NEON.
            keep[tp][q] = unsafe { vtstq_u32(vdupq_n_u32(m as u32), lane_bits) };
        }
        reads[tp] = if inside { TapRead::Select } else { TapRead::Lanes };
    }
    let stores: [u16; Q] = core::array::from_fn(|q| quarter(st[q / 4], q));
    // SAFETY: channel `c` below `n` (caller), so the `n` planes at `x` are readable; a `Full`
    // tap's lanes are all masked in, a `Select` tap's all inside the plane, a `Lanes` tap's
    // quarters read whole only inside the `n` planes, and `tap_lanes` reads only masked-in
    // lanes and quarters inside the plane; masked-in and stored lanes lie inside the planes
    // (the `Taps` guarantee).
    unsafe {
        let zero = vdupq_n_f32(0.0);
        for c in 0..n {
            let (xc, wc) = (x.add(c * ip), w.add(c * taps));
            let mut acc = [vdupq_n_f32(*b.add(c)); Q];
            for (tp, &dt) in t.d().iter().enumerate().take(T) {
                let wv = vdupq_n_f32(*wc.add(tp));
                let base = xc.wrapping_offset(j0 + dt);
                match reads[tp] {
                    TapRead::Full => {
                        for (q, a) in acc.iter_mut().enumerate() {
                            *a = vfmaq_f32(*a, wv, vld1q_f32(base.wrapping_add(4 * q)));
                        }
                    }
                    // A tap reaching outside its channel's plane reads whole quarters too
                    // when they stay inside the `n` planes (the masked-out lanes, from the
                    // neighbouring planes, are selected away): all channels but the edge ones.
                    TapRead::Select | TapRead::Lanes
                        if reads[tp] == TapRead::Select || {
                            let (lo, hi) = (reach[tp].0 + (c * ip) as isize, reach[tp].1 + (c * ip) as isize);
                            lo >= 0 && hi <= (n * ip) as isize
                        } =>
                    {
                        for (q, (a, &k)) in acc.iter_mut().zip(&keep[tp]).enumerate() {
                            *a = vfmaq_f32(*a, wv, vbslq_f32(k, vld1q_f32(base.wrapping_add(4 * q)), zero));
                        }
                    }
                    _ => tap_lanes(&mut acc, &masks[tp], &keep[tp], wv, base),
                }
            }
            let oc = out.add(c * op).wrapping_offset(j0);
            for (q, (a, &m)) in acc.iter().zip(&stores).enumerate() {
                let at = oc.wrapping_add(4 * q);
                let v = act_q(act, *a);
                if m == 0xf {
                    vst1q_f32(at, v);
                } else if m != 0 {
                    let mut lanes = [0.0f32; 4];
                    vst1q_f32(lanes.as_mut_ptr(), v);
                    for (i, &l) in lanes.iter().enumerate().filter(|&(i, _)| m >> i & 1 == 1) {
                        *at.add(i) = l;
                    }
                }
            }
        }
    }
}

/// Flag of a [`tap_lanes`] quarter mask: the quarter's four lanes lie inside the input plane.
const INSIDE: u16 = 0x10;

/// One tap of [`dw_taps_neon`] that reaches outside the plane: quarter `q` adds `w · v` to
/// `acc[q]`, `v` the values at `base + 4q ..` in the lanes of `masks[q]` (`keep[q]` as a lane
/// mask) and 0 in the others; a quarter [`INSIDE`] the plane is loaded whole and selected, the
/// others read lane by lane. Kept out of line (such taps are few), so the other taps' sums
/// stay in registers. The caller guarantees that the masked-in lanes, and the quarters flagged
/// inside, are readable.
#[inline(never)]
unsafe fn tap_lanes<const Q: usize>(
    acc: &mut [float32x4_t; Q],
    masks: &[u16; Q],
    keep: &[uint32x4_t; Q],
    wv: float32x4_t,
    base: *const f32,
) {
    // SAFETY: only quarters inside the plane and masked-in lanes are read (the caller's
    // guarantee).
    unsafe {
        for (q, ((a, &m), &k)) in acc.iter_mut().zip(masks).zip(keep).enumerate() {
            let at = base.wrapping_add(4 * q);
            let v = if m & INSIDE != 0 {
                vbslq_f32(k, vld1q_f32(at), vdupq_n_f32(0.0))
            } else {
                let lanes: [f32; 4] = core::array::from_fn(|i| if m >> i & 1 == 1 { *at.add(i) } else { 0.0 });
                vld1q_f32(lanes.as_ptr())
            };
            *a = vfmaq_f32(*a, wv, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::dense_codebook::dot_codes_scalar;
    use super::super::testutil::data;
    use super::Neon;
    use crate::codebook::TABLE_LEN;

    /// [`Books4::decode`](super::Books4::decode) equal to the stored weights bit for bit (f16
    /// and f32 codebooks, one to 16 groups, chunks from even offsets with and without a
    /// partial last step); an odd offset or a chunk past the row: false, nothing written.
    #[test]
    fn books4_decode_matches_the_stored_weights() {
        for (k, groups, f16_values) in [(1usize, 1usize, true), (37, 3, false), (64, 16, true), (300, 5, true), (95, 2, false)] {
            let n = 6;
            let (payload, w) = super::super::testutil::quantized(n, k, 4, f16_values, groups, k as u64);
            let cb = crate::codebook::Codebook::parse(&payload, n, k).unwrap();
            let parts = cb.parts();
            let books = Neon.books4(&parts).unwrap();
            for row in 0..n {
                for k0 in (0..k).step_by(2) {
                    for len in [k - k0, (k - k0).min(33), (k - k0) / 2] {
                        let mut got = vec![f32::NAN; len];
                        assert!(books.decode(&parts, row, k0, &mut got), "k {k} row {row} k0 {k0} len {len}");
                        let want = &w[row * k + k0..row * k + k0 + len];
                        assert_eq!(
                            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                        );
                    }
                }
                let mut out = [f32::NAN; 2];
                assert!(!books.decode(&parts, row, 1, &mut out[..1]) && out[0].is_nan(), "an odd offset");
                assert!(!books.decode(&parts, row, k.div_ceil(2) * 2, &mut out), "past the row");
            }
        }
    }

    /// [`Books4::gemv`] adds to each output, bit for bit, what [`Neon::dot_codes4`] gives for
    /// its row through its group's planes (f16 and f32 codebooks, 1 to 16 groups, lengths with
    /// every tail), and refuses inputs longer than the rows, leaving the outputs untouched.
    #[test]
    fn books4_gemv_equals_dot_codes4_row_by_row() {
        for (k, groups, f16_values) in
            [(1usize, 1usize, true), (37, 3, false), (64, 16, true), (128, 5, true), (144, 2, false), (250, 9, true)]
        {
            let n = 13;
            let (payload, _) = super::super::testutil::quantized(n, k, 4, f16_values, groups, k as u64 + 7);
            let cb = crate::codebook::Codebook::parse(&payload, n, k).unwrap();
            let parts = cb.parts();
            let books = Neon.books4(&parts).unwrap();
            let x = data(k, 3);
            let start = data(n, 5);
            let mut got = start.clone();
            assert!(books.gemv(&parts, &x, &mut got));
            let mut t = [0.0f32; TABLE_LEN];
            for j in 0..n {
                parts.load(parts.group(j), &mut t);
                let [d] = Neon.dot_codes4(&Neon.planes4(&t), [parts.row(j)], &x).unwrap();
                assert_eq!(got[j].to_bits(), (start[j] + d).to_bits(), "k {k} groups {groups} row {j}");
            }
            let long = data(k.div_ceil(2) * 2 + 1, 4);
            let mut untouched = start.clone();
            assert!(!books.gemv(&parts, &long, &mut untouched));
            assert_eq!(untouched, start);
        }
    }

    /// [`Neon::planes4`] takes f16 planes exactly when every value is an f16 value (zeros of
    /// both signs and subnormals included), and either kind decodes every code to its value
    /// bit for bit.
    #[test]
    fn planes4_decode_every_code_exactly() {
        let f16s = [0.0f32, -0.0, 1.0, -2.5, 65504.0, 6.1035156e-5, 5.9604645e-8, -3.0517578e-5, 0.33325195];
        let cases: [(Vec<f32>, bool); 4] = [
            ((0..16).map(|i| f16s[i % f16s.len()] * if i > 8 { -1.0 } else { 1.0 }).collect(), true),
            ((0..16).map(|i| f16s[i % f16s.len()] + if i == 15 { 1e-4 } else { 0.0 }).collect(), false),
            (data(16, 9), false),
            ((0..16).map(|i| if i == 3 { 1e-9 } else { 0.5 }).collect(), false),
        ];
        for (values, half) in cases {
            let mut table = [0.0f32; TABLE_LEN];
            table[..16].copy_from_slice(&values);
            let p = Neon.planes4(&table);
            assert_eq!(p.half, half, "{values:?}");
            let codes: [u8; 16] = core::array::from_fn(|i| (i * 7 % 16) as u8);
            // SAFETY: NEON; 16 codes below 16.
            let got = unsafe {
                let c = core::arch::aarch64::vld1q_u8(codes.as_ptr());
                let d = if half { super::decode16::<true>(&p, c) } else { super::decode16::<false>(&p, c) };
                let mut out = [0.0f32; 16];
                for (i, v) in d.into_iter().enumerate() {
                    core::arch::aarch64::vst1q_f32(out.as_mut_ptr().add(4 * i), v);
                }
                out
            };
            let want: [f32; 16] = core::array::from_fn(|i| values[codes[i] as usize]);
            assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits), "{values:?}");
        }
    }

    /// [`Neon::window16`] against its definition, windows wrapping around `u32` included.
    #[test]
    fn window16_matches_its_definition() {
        let src: [f32; 16] = core::array::from_fn(|j| j as f32 + 0.5);
        for lo in (0..=17).chain([u32::MAX - 2, u32::MAX]) {
            for span in (0..=17).chain([u32::MAX - 1, u32::MAX]) {
                let mut got = [f32::NAN; 16];
                Neon.window16(&mut got, &src, lo, span);
                let want: [f32; 16] = core::array::from_fn(|j| if (j as u32).wrapping_sub(lo) < span { src[j] } else { 0.0 });
                assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits), "lo {lo} span {span}");
            }
        }
    }

    /// [`Neon::dot_codes4`] on one to four rows against the scalar definition of a 4-bit row's
    /// dot product, over lengths with and without a partial last step (odd ones too, whose last
    /// byte's high nibble meets no input), rows longer than they need; rows too short: `None`.
    #[test]
    fn dot_codes4_matches_the_scalar_definition() {
        let mut table = [0.0f32; TABLE_LEN];
        table[..16].copy_from_slice(&data(16, 1));
        let planes = Neon.planes4(&table);
        for (i, n) in [0usize, 1, 2, 7, 31, 32, 33, 63, 64, 65, 100, 255, 640].into_iter().enumerate() {
            let x = data(n, 10 + i as u64);
            let bytes: Vec<Vec<u8>> = (0..4).map(|r| (0..n.div_ceil(2) + r).map(|j| (j * 37 + r * 11 + n) as u8).collect()).collect();
            let want: Vec<f32> = bytes.iter().map(|r| dot_codes_scalar(4, &table, r, &x)).collect();
            let scale: f32 = x.iter().map(|v| v.abs()).sum::<f32>() * table.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let close = |got: &[f32], want: &[f32]| {
                for (g, w) in got.iter().zip(want) {
                    assert!((g - w).abs() <= 1e-5 * scale.max(1.0), "n {n}: {g} against {w}");
                }
            };
            close(&Neon.dot_codes4(&planes, [&bytes[0][..]], &x).unwrap(), &want[..1]);
            close(&Neon.dot_codes4(&planes, [&bytes[1][..], &bytes[2][..], &bytes[3][..]], &x).unwrap(), &want[1..]);
            let four = Neon.dot_codes4(&planes, [&bytes[0][..], &bytes[1][..], &bytes[2][..], &bytes[3][..]], &x).unwrap();
            close(&four, &want);
            if n > 0 {
                let short = &bytes[0][..n.div_ceil(2) - 1];
                assert!(Neon.dot_codes4(&planes, [&bytes[1][..], short], &x).is_none(), "n {n}: a short row");
            }
        }
    }
}
