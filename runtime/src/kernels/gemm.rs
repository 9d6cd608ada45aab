//! Register-blocked f32 Conv and Dense on CPUs with a SIMD micro-kernel (x86-64 AVX2 + FMA,
//! aarch64 NEON): a Conv group is the product `out[m, p] = Σ_k W[m, k] · B[k, p]` with
//! `k = (c, ky, kx)` and `p` the output pixel, computed in tiles of [`MR`] filters × [`NR`]
//! pixels held in registers.
//!
//! `B` is never built whole: a 1×1, stride-1, unpadded Conv reads it straight from the input
//! planes; otherwise the `KC × NR` panel of one pixel tile is gathered on the stack (zeros for
//! padding) and serves every filter of the group. Weights are read in place, row-major as the
//! file stores them. Results equal the plain loops up to summation order (each `(m, p)` sums
//! its products in `k` order with fused multiply-adds, starting from the bias).

use super::conv::Geom;
use crate::op::{Activation, OpError};
use crate::view::View;

/// Pixels per tile (two 8-lane or four 4-lane registers per filter row).
pub(super) const NR: usize = 16;
/// Most filters per tile (each [`Micro`] says how many it takes).
pub(super) const MR: usize = 12;
/// Reduction depth of one gathered panel (`KC × NR` floats = 16 KiB on the stack).
const KC: usize = 256;

/// The SIMD micro-kernels of one CPU: a detected capability, `Copy` so it is checked once per
/// kernel call.
pub(super) trait Micro: Copy {
    /// Most rows `tile` takes (at most [`MR`]).
    fn rows(self) -> usize;
    /// `c[i·ldc + j] += Σ_{k<kc} a[i·lda + k] · b[k·ldb + j]` for `i < R ≤ MR`, `j < NR`.
    #[allow(clippy::too_many_arguments)]
    fn tile<const R: usize>(self, kc: usize, a: &[f32], lda: usize, b: &[f32], ldb: usize, c: &mut [f32], ldc: usize);
    /// [`Micro::tile`] over `2·NR` columns, the first `NR` of `b` from `b0`, the next from `b1`
    /// (both at pitch `ldb`): the same sums, one pass over `a` where the CPU has the registers.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn tile2<const R: usize>(self, kc: usize, a: &[f32], lda: usize, b: [&[f32]; 2], ldb: usize, c: &mut [f32], ldc: usize) {
        self.tile::<R>(kc, a, lda, b[0], ldb, c, ldc);
        self.tile::<R>(kc, a, lda, b[1], ldb, c.get_mut(NR..).unwrap_or(&mut []), ldc);
    }
    /// Whether pixel-tile pairs go through a [`RowTab`] (read in place by
    /// [`Micro::tile_out`]) rather than a gathered panel, and a direct Conv's partial pairs are
    /// read in place too (masked loads).
    #[inline]
    fn tabbed(self) -> bool {
        false
    }
    /// A whole tile in registers, where the CPU can: rows `i < R` of `out` (pitch `ldo`),
    /// columns `j < np ≤ 2·NR`, become `post(start + Σ_{k<kc} a[i·lda + k] · B[k][j])`, with
    /// `start` = `bias[i]` when given (the first K chunk) or `out`'s value, and `post` = `act`
    /// when given (the last chunk); `B` as [`TileAt::run`] reads it. The same sums and the same
    /// activation as the buffered tile. False (nothing written) when this CPU has no such kernel
    /// for the operand.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn tile_out<const R: usize>(
        self,
        _kc: usize,
        _a: &[f32],
        _lda: usize,
        _b: Bop<'_>,
        _out: &mut [f32],
        _ldo: usize,
        _np: usize,
        _bias: Option<&[f32]>,
        _act: Option<Activation>,
    ) -> bool {
        false
    }
    /// Four dot products of rows with the same `x`.
    fn dot4(self, w: [&[f32]; 4], x: &[f32]) -> [f32; 4];
    /// Eight dot products of rows with the same `x`, each row's sum exactly [`Micro::dot4`]'s
    /// (so a row's result does not depend on which rows share its call).
    #[inline]
    fn dot8(self, w: [&[f32]; 8], x: &[f32]) -> [f32; 8] {
        let (a, b) = (self.dot4([w[0], w[1], w[2], w[3]], x), self.dot4([w[4], w[5], w[6], w[7]], x));
        [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
    }
    /// One dot product over the shorter length.
    fn dot(self, a: &[f32], b: &[f32]) -> f32;
    /// `dst[j] = src[j]` for `lo ≤ j < lo + span`, `0.0` for the other `j < NR`.
    fn window16(self, dst: &mut [f32; NR], src: &[f32; NR], lo: u32, span: u32);
    /// `dst[i] = src[2·i]` for every `i` both hold: [`evens_scalar`].
    #[inline]
    fn evens(self, dst: &mut [f32], src: &[f32]) {
        evens_scalar(dst, src)
    }
    /// [`Micro::evens`] on `rows` rows in one call: `dst[r·ds + i] = src[r·ss + 2·i]` for
    /// `i < n`. False (nothing written) where the tier has no such loop or a row would reach past
    /// either slice.
    #[inline]
    fn evens_rows(self, _dst: &mut [f32], _src: &[f32], _rows: usize, _n: usize, _ds: usize, _ss: usize) -> bool {
        false
    }
    /// The four stride-2 phases of the `h × w` plane `x` into `dst`: [`split2_scalar`].
    fn split2(self, x: &[f32], h: usize, w: usize, dst: &mut [f32]) {
        split2_scalar(x, h, w, dst)
    }
    /// `f` on the stride-2 phases of the `c` planes `x` (`h × w` each; [`split_phases`]'s
    /// layout, `4·⌈h/2⌉·⌈w/2⌉` floats a plane, exactly `c` planes' worth) where this CPU splits
    /// into stack memory nobody clears (its split writes every float). `None`, `f` not run,
    /// where it has no such split, `x` is shorter or the phases exceed [`PHASES_MAX`] floats.
    #[inline]
    fn with_phases<R>(self, _x: &[f32], _c: usize, _h: usize, _w: usize, _f: impl FnOnce(&mut [f32]) -> R) -> Option<R> {
        None
    }
    /// Row `r` of `dst` ([`NR`] values each) gets `src[idx[j] + off]` in the lanes `j` set in
    /// `mask`, `(off, mask) = rows[r]`, when that index lies in `src`; 0 elsewhere:
    /// [`gather_rows_scalar`].
    fn gather_rows(self, dst: &mut [f32], src: &[f32], idx: &[i32; NR], rows: &[(i32, u16)]);
    /// [`Micro::gather_rows`] with consecutive indices `idx[j] = base + j`, as masked
    /// contiguous loads: [`load_rows_scalar`].
    fn load_rows(self, dst: &mut [f32], src: &[f32], base: i32, rows: &[(i32, u16)]);
    /// [`Micro::gather_rows`] with indices two apart, `idx[j] = base + 2·j` (a tile of one
    /// output row at column stride 2), as masked loads of the even floats: the same rows. False
    /// (nothing written) when this CPU has no such kernel.
    fn load_rows2(self, _dst: &mut [f32], _src: &[f32], _base: i32, _rows: &[(i32, u16)]) -> bool {
        false
    }
    /// [`Micro::gather_rows`] with indices in four runs of four, `idx[j] = base + (j / 4)·stride
    /// + j % 4` (a tile of four output rows four pixels wide, column stride 1), as four masked
    /// 4-float loads per row: the same rows. False (nothing written) when this CPU has no such
    /// kernel or some row's runs are not all inside `src`.
    fn load_rows4(self, _dst: &mut [f32], _src: &[f32], _base: i32, _stride: i32, _rows: &[(i32, u16)]) -> bool {
        false
    }
    /// One depthwise position group over every channel: [`super::depthwise::dw_taps_scalar`].
    fn dw_taps(self, t: &super::depthwise::Taps, x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]);
    /// A 3 × 3, stride-1 depthwise layer padded by one on every side (outputs `h × wd` as the
    /// input) over `n` channels where this CPU has such a kernel:
    /// [`super::depthwise::dw_taps_scalar`]'s sums and activation. False (nothing written)
    /// where it has none.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn dw3_same(
        self,
        _h: usize,
        _wd: usize,
        _x: &[f32],
        _w: &[f32],
        _b: Option<&[f32]>,
        _act: Activation,
        _out: &mut [f32],
        _n: usize,
    ) -> bool {
        false
    }
    /// Whether [`Micro::dw_s2`] has a kernel on this CPU (else stride-2 depthwise layers go
    /// through their stride phases).
    #[inline]
    fn dw_s2_ready(self) -> bool {
        false
    }
    /// A group-1 Conv read straight from its input planes (stride 1) or their stride phases
    /// (`phases = Some((hq, wq))`, stride 2, [`split_phases`]) where this CPU has such a kernel:
    /// the sums and activation of [`conv_in`] (bias, or 0 when `bias` is empty, then every `B`
    /// row fused in `(c, ky, kx)` order). False (nothing written) where it has none or the layer
    /// does not fit it.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn conv_direct(
        self,
        _g: &super::conv::Geom,
        _phases: Option<(usize, usize)>,
        _x: &[f32],
        _w: &[f32],
        _bias: &[f32],
        _act: Activation,
        _out: &mut [f32],
    ) -> bool {
        false
    }
    /// A group-1 3 × 3 Conv at stride 1 through Winograd F(2 × 2, 3 × 3) (`super::winograd`):
    /// the Conv up to rounding, `bias` empty or `m` long. False where this CPU has no such
    /// kernel or the layer does not fit it (nothing written), or when an output before the
    /// activation is not finite (written; the caller runs another kernel, which writes every
    /// output with the definition's IEEE semantics).
    #[inline]
    fn conv_winograd(self, _g: &super::conv::Geom, _x: &[f32], _w: &[f32], _bias: &[f32], _act: Activation, _out: &mut [f32]) -> bool {
        false
    }
    /// Whether [`Micro::dw_s1`] has a kernel on this CPU for the layer `s` (else stride-1
    /// depthwise layers go through position groups).
    #[inline]
    fn dw_s1_ready(self, _s: &super::depthwise::S2) -> bool {
        false
    }
    /// A stride-1 depthwise layer ([`super::depthwise::S2::dw1`]) over every channel the slices
    /// hold, read in place: [`super::depthwise::dw_s1_scalar`].
    #[inline]
    fn dw_s1(self, s: &super::depthwise::S2, x: &[f32], w: &[f32], b: &[f32], act: Activation, out: &mut [f32]) {
        super::depthwise::dw_s1_scalar(s, x, w, b, act, out)
    }
    /// Whether [`Micro::conv_taps`] has a kernel on this CPU (else shared-plane layers keep the
    /// tiled product).
    #[inline]
    fn shared_ready(self) -> bool {
        false
    }
    /// A stride-2 depthwise layer over every channel the slices hold, read in place:
    /// [`super::depthwise::dw_s2_scalar`].
    #[inline]
    fn dw_s2(self, s: &super::depthwise::S2, x: &[f32], w: &[f32], b: &[f32], act: Activation, out: &mut [f32]) {
        super::depthwise::dw_s2_scalar(s, x, w, b, act, out)
    }
    /// A stride-2 stem Conv ([`super::depthwise::S2::stem`]) over every filter the slices
    /// hold, read in place: [`super::depthwise::conv_s2_scalar`]. Only called when
    /// [`Micro::dw_s2_ready`].
    #[inline]
    fn conv_s2(self, s: &super::depthwise::S2, x: &[f32], w: &[f32], b: &[f32], act: Activation, out: &mut [f32]) {
        super::depthwise::conv_s2_scalar(s, x, w, b, act, out)
    }
    /// One position group of a Conv whose filters all read the same few input planes
    /// ([`super::depthwise::shared_layout`]), over every filter the slices hold:
    /// [`super::depthwise::conv_taps_scalar`]. Only called when [`Micro::shared_ready`].
    #[inline]
    fn conv_taps(self, t: &super::depthwise::Taps, x: &[f32], cin: usize, w: &[f32], b: &[f32], out: &mut [f32]) {
        super::depthwise::conv_taps_scalar(t, x, cin, w, b, out)
    }
    /// An input-major 1×1 Conv at stride 1 over a whole plane of at most [`IM_PLANE`]
    /// positions, on one batch item: `out[o·hw + p] = act(bias[o] + Σ_c x[c·hw + p] · wt[c·m + o])`
    /// summed in `c` order with fused multiply-adds, inputs `c` that are zero at every position
    /// skipped (an exact `±0 · w` for finite weights). `bias` is empty or `m` long. False (nothing
    /// written) when this CPU has no such kernel or a slice is too short.
    #[allow(clippy::too_many_arguments)]
    #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
    #[inline]
    fn im_1x1(self, _x: &[f32], _hw: usize, _c: usize, _wt: &[f32], _m: usize, _bias: &[f32], _act: Activation, _out: &mut [f32]) -> bool {
        false
    }
    /// Runs `f` where the compiler may use this CPU's vector registers.
    fn run<T>(self, f: impl FnOnce() -> T) -> T;
}

/// Most positions [`Micro::im_1x1`] takes.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(super) const IM_PLANE: usize = 36;

/// Whether an [`Micro::im_1x1`] call's plane is small enough and its slices long enough (the
/// bounds every tier's kernel relies on).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline]
pub(super) fn im_fits(x: &[f32], hw: usize, c: usize, wt: &[f32], m: usize, bias: &[f32], out: &[f32]) -> bool {
    (1..=IM_PLANE).contains(&hw) && x.len() >= c * hw && wt.len() >= c * m && out.len() >= m * hw && (bias.is_empty() || bias.len() >= m)
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! impl_micro {
    ($t:ty $(, { $($extra:item)* })?) => {
        impl Micro for $t {
            $($($extra)*)?
            #[inline]
            fn rows(self) -> usize {
                <$t>::rows(self)
            }
            #[inline]
            fn tile<const R: usize>(self, kc: usize, a: &[f32], lda: usize, b: &[f32], ldb: usize, c: &mut [f32], ldc: usize) {
                <$t>::tile::<R>(self, kc, a, lda, b, ldb, c, ldc)
            }
            #[inline]
            fn dot4(self, w: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
                <$t>::dot4(self, w, x)
            }
            #[inline]
            fn dot(self, a: &[f32], b: &[f32]) -> f32 {
                <$t>::dot(self, a, b)
            }
            #[inline]
            fn window16(self, dst: &mut [f32; NR], src: &[f32; NR], lo: u32, span: u32) {
                <$t>::window16(self, dst, src, lo, span)
            }
            #[inline]
            fn gather_rows(self, dst: &mut [f32], src: &[f32], idx: &[i32; NR], rows: &[(i32, u16)]) {
                <$t>::gather_rows(self, dst, src, idx, rows)
            }
            #[inline]
            fn load_rows(self, dst: &mut [f32], src: &[f32], base: i32, rows: &[(i32, u16)]) {
                <$t>::load_rows(self, dst, src, base, rows)
            }
            #[inline]
            fn dw_taps(self, t: &super::depthwise::Taps, x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
                <$t>::dw_taps(self, t, x, w, b, out)
            }
            #[inline]
            fn run<T>(self, f: impl FnOnce() -> T) -> T {
                <$t>::run(self, f)
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
impl_micro!(super::x86::Fma, {
    #[inline]
    fn tabbed(self) -> bool {
        super::x86::Fma::tabbed(self)
    }
    #[inline]
    fn dw_s2_ready(self) -> bool {
        super::x86::Fma::dw_s2_ready(self)
    }
    #[inline]
    fn shared_ready(self) -> bool {
        super::x86::Fma::shared_ready(self)
    }
    #[inline]
    fn dw_s1_ready(self, s: &super::depthwise::S2) -> bool {
        super::x86::Fma::dw_s1_ready(self, s)
    }
    #[inline]
    fn dw3_same(self, h: usize, wd: usize, x: &[f32], w: &[f32], b: Option<&[f32]>, act: Activation, out: &mut [f32], n: usize) -> bool {
        super::x86::Fma::dw3_same(self, h, wd, x, w, b, act, out, n)
    }
    #[inline]
    fn conv_direct(
        self,
        g: &super::conv::Geom,
        phases: Option<(usize, usize)>,
        x: &[f32],
        w: &[f32],
        bias: &[f32],
        act: Activation,
        out: &mut [f32],
    ) -> bool {
        super::x86::Fma::conv_direct(self, g, phases, x, w, bias, act, out)
    }
    #[inline]
    fn conv_winograd(self, g: &super::conv::Geom, x: &[f32], w: &[f32], bias: &[f32], act: Activation, out: &mut [f32]) -> bool {
        super::x86::Fma::conv_winograd(self, g, x, w, bias, act, out)
    }
    #[inline]
    fn dw_s1(self, s: &super::depthwise::S2, x: &[f32], w: &[f32], b: &[f32], act: Activation, out: &mut [f32]) {
        super::x86::Fma::dw_s1(self, s, x, w, b, act, out)
    }
    #[inline]
    fn dot8(self, w: [&[f32]; 8], x: &[f32]) -> [f32; 8] {
        super::x86::Fma::dot8(self, w, x)
    }
    #[inline]
    fn evens(self, dst: &mut [f32], src: &[f32]) {
        super::x86::Fma::evens(self, dst, src)
    }
    #[inline]
    fn evens_rows(self, dst: &mut [f32], src: &[f32], rows: usize, n: usize, ds: usize, ss: usize) -> bool {
        super::x86::Fma::evens_rows(self, dst, src, rows, n, ds, ss)
    }
    #[inline]
    fn split2(self, x: &[f32], h: usize, w: usize, dst: &mut [f32]) {
        super::x86::Fma::split2(self, x, h, w, dst)
    }
    #[inline]
    fn with_phases<R>(self, x: &[f32], c: usize, h: usize, w: usize, f: impl FnOnce(&mut [f32]) -> R) -> Option<R> {
        super::x86::Fma::with_phases(self, x, c, h, w, f)
    }
    #[inline]
    fn load_rows2(self, dst: &mut [f32], src: &[f32], base: i32, rows: &[(i32, u16)]) -> bool {
        super::x86::Fma::load_rows2(self, dst, src, base, rows)
    }
    #[inline]
    fn load_rows4(self, dst: &mut [f32], src: &[f32], base: i32, stride: i32, rows: &[(i32, u16)]) -> bool {
        super::x86::Fma::load_rows4(self, dst, src, base, stride, rows)
    }
    #[inline]
    fn dw_s2(self, s: &super::depthwise::S2, x: &[f32], w: &[f32], b: &[f32], act: Activation, out: &mut [f32]) {
        super::x86::Fma::dw_s2(self, s, x, w, b, act, out)
    }
    #[inline]
    fn conv_s2(self, s: &super::depthwise::S2, x: &[f32], w: &[f32], b: &[f32], act: Activation, out: &mut [f32]) {
        super::x86::Fma::conv_s2(self, s, x, w, b, act, out)
    }
    #[inline]
    fn conv_taps(self, t: &super::depthwise::Taps, x: &[f32], cin: usize, w: &[f32], b: &[f32], out: &mut [f32]) {
        super::x86::Fma::conv_taps(self, t, x, cin, w, b, out)
    }
    #[inline]
    fn im_1x1(self, x: &[f32], hw: usize, c: usize, wt: &[f32], m: usize, bias: &[f32], act: Activation, out: &mut [f32]) -> bool {
        super::x86::Fma::im_1x1(self, x, hw, c, wt, m, bias, act, out)
    }
    #[inline]
    fn tile_out<const R: usize>(
        self,
        kc: usize,
        a: &[f32],
        lda: usize,
        b: Bop<'_>,
        out: &mut [f32],
        ldo: usize,
        np: usize,
        bias: Option<&[f32]>,
        act: Option<Activation>,
    ) -> bool {
        super::x86::Fma::tile_out::<R>(self, kc, a, lda, b, out, ldo, np, bias, act)
    }
});
#[cfg(target_arch = "aarch64")]
impl_micro!(super::neon::Neon, {
    #[inline]
    fn conv_winograd(self, g: &super::conv::Geom, x: &[f32], w: &[f32], bias: &[f32], act: Activation, out: &mut [f32]) -> bool {
        super::neon::Neon::conv_winograd(self, g, x, w, bias, act, out)
    }
    #[inline]
    fn evens(self, dst: &mut [f32], src: &[f32]) {
        super::neon::Neon::evens(self, dst, src)
    }
    #[inline]
    fn split2(self, x: &[f32], h: usize, w: usize, dst: &mut [f32]) {
        super::neon::Neon::split2(self, x, h, w, dst)
    }
    #[inline]
    fn im_1x1(self, x: &[f32], hw: usize, c: usize, wt: &[f32], m: usize, bias: &[f32], act: Activation, out: &mut [f32]) -> bool {
        super::neon::Neon::im_1x1(self, x, hw, c, wt, m, bias, act, out)
    }
});

/// Whether the SIMD kernels may run (host builds can turn them off to measure the portable
/// loops beside them; see [`crate::kernels::set_simd`]).
#[cfg(feature = "std")]
pub(super) static SIMD_ON: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);

#[inline]
fn simd_on() -> bool {
    #[cfg(feature = "std")]
    {
        SIMD_ON.load(core::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(feature = "std"))]
    {
        true
    }
}

/// This CPU's micro-kernels, if it has any.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn simd() -> Option<impl Micro> {
    super::x86::Fma::detect().filter(|_| simd_on())
}

/// This CPU's micro-kernels, if it has any.
#[cfg(target_arch = "aarch64")]
#[inline]
pub(super) fn simd() -> Option<impl Micro> {
    simd_on().then_some(super::neon::Neon)
}

/// The NEON kernels, unless SIMD kernels are switched off (for kernels outside [`Micro`]).
#[cfg(target_arch = "aarch64")]
#[inline]
pub(super) fn neon() -> Option<super::neon::Neon> {
    simd_on().then_some(super::neon::Neon)
}

/// Name of the f32 Conv / Dense kernels this CPU runs: `avx512`, `avx2+fma`, `neon` or `portable`.
pub fn simd_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if let Some(f) = super::x86::Fma::detect().filter(|_| simd_on()) {
        return if f.rows() > 6 { "avx512" } else { "avx2+fma" };
    }
    #[cfg(target_arch = "aarch64")]
    if simd_on() {
        return "neon";
    }
    "portable"
}

/// This CPU's micro-kernels, if it has any.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline]
pub(super) fn simd() -> Option<NoSimd> {
    let _ = simd_on;
    None
}

/// Stand-in on targets without micro-kernels (never constructed).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[derive(Clone, Copy)]
pub(super) enum NoSimd {}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
impl Micro for NoSimd {
    fn rows(self) -> usize {
        match self {}
    }
    fn tile<const R: usize>(self, _: usize, _: &[f32], _: usize, _: &[f32], _: usize, _: &mut [f32], _: usize) {
        match self {}
    }
    fn dot4(self, _: [&[f32]; 4], _: &[f32]) -> [f32; 4] {
        match self {}
    }
    fn dot(self, _: &[f32], _: &[f32]) -> f32 {
        match self {}
    }
    fn window16(self, _: &mut [f32; NR], _: &[f32; NR], _: u32, _: u32) {
        match self {}
    }
    fn gather_rows(self, _: &mut [f32], _: &[f32], _: &[i32; NR], _: &[(i32, u16)]) {
        match self {}
    }
    fn load_rows(self, _: &mut [f32], _: &[f32], _: i32, _: &[(i32, u16)]) {
        match self {}
    }
    fn dw_taps(self, _: &super::depthwise::Taps, _: &[f32], _: &[f32], _: &[f32], _: &mut [f32]) {
        match self {}
    }
    fn run<T>(self, _: impl FnOnce() -> T) -> T {
        match self {}
    }
}

/// Whether a Conv runs as the tiled product: every Conv but depthwise ones (one filter per
/// input channel). The choice does not depend on the filter count, so removing filters or
/// channels that are exactly zero (pruning surgery) leaves every other output bit unchanged.
pub(super) fn applies(g: &Geom) -> bool {
    !(g.cg == 1 && g.mg == 1)
}

/// One `R`-row tile, `R` chosen at run time.
#[inline]
#[allow(clippy::too_many_arguments)]
fn tile_rows<M: Micro>(mk: M, r: usize, kc: usize, a: &[f32], lda: usize, b: &[f32], ldb: usize, c: &mut [f32], ldc: usize) {
    match r {
        12 => mk.tile::<12>(kc, a, lda, b, ldb, c, ldc),
        11 => mk.tile::<11>(kc, a, lda, b, ldb, c, ldc),
        10 => mk.tile::<10>(kc, a, lda, b, ldb, c, ldc),
        9 => mk.tile::<9>(kc, a, lda, b, ldb, c, ldc),
        8 => mk.tile::<8>(kc, a, lda, b, ldb, c, ldc),
        7 => mk.tile::<7>(kc, a, lda, b, ldb, c, ldc),
        6 => mk.tile::<6>(kc, a, lda, b, ldb, c, ldc),
        5 => mk.tile::<5>(kc, a, lda, b, ldb, c, ldc),
        4 => mk.tile::<4>(kc, a, lda, b, ldb, c, ldc),
        3 => mk.tile::<3>(kc, a, lda, b, ldb, c, ldc),
        2 => mk.tile::<2>(kc, a, lda, b, ldb, c, ldc),
        _ => mk.tile::<1>(kc, a, lda, b, ldb, c, ldc),
    }
}

/// [`tile_rows`] over `2·NR` columns.
#[inline]
#[allow(clippy::too_many_arguments)]
fn tile_rows2<M: Micro>(mk: M, r: usize, kc: usize, a: &[f32], lda: usize, b: [&[f32]; 2], ldb: usize, c: &mut [f32], ldc: usize) {
    match r {
        12 => mk.tile2::<12>(kc, a, lda, b, ldb, c, ldc),
        11 => mk.tile2::<11>(kc, a, lda, b, ldb, c, ldc),
        10 => mk.tile2::<10>(kc, a, lda, b, ldb, c, ldc),
        9 => mk.tile2::<9>(kc, a, lda, b, ldb, c, ldc),
        8 => mk.tile2::<8>(kc, a, lda, b, ldb, c, ldc),
        7 => mk.tile2::<7>(kc, a, lda, b, ldb, c, ldc),
        6 => mk.tile2::<6>(kc, a, lda, b, ldb, c, ldc),
        5 => mk.tile2::<5>(kc, a, lda, b, ldb, c, ldc),
        4 => mk.tile2::<4>(kc, a, lda, b, ldb, c, ldc),
        3 => mk.tile2::<3>(kc, a, lda, b, ldb, c, ldc),
        2 => mk.tile2::<2>(kc, a, lda, b, ldb, c, ldc),
        _ => mk.tile2::<1>(kc, a, lda, b, ldb, c, ldc),
    }
}

/// The `B` operand of a tile: its first [`NR`] columns from `b[0]`, the next `NR` (a pair of
/// pixel tiles) from `b[1]`, both at pitch `ldb`; or a pair's rows read in place from `src`
/// through a [`RowTab`].
#[derive(Clone, Copy)]
pub(super) enum Bop<'a> {
    Panel { b: [&'a [f32]; 2], ldb: usize },
    Tab { src: &'a [f32], t: &'a RowTab },
}

/// [`Micro::tile_out`] with `R = r` chosen at run time.
#[inline]
#[allow(clippy::too_many_arguments)]
fn tile_rows_out<M: Micro>(
    mk: M,
    r: usize,
    kc: usize,
    a: &[f32],
    lda: usize,
    b: Bop<'_>,
    out: &mut [f32],
    ldo: usize,
    np: usize,
    bias: Option<&[f32]>,
    act: Option<Activation>,
) -> bool {
    match r {
        12 => mk.tile_out::<12>(kc, a, lda, b, out, ldo, np, bias, act),
        11 => mk.tile_out::<11>(kc, a, lda, b, out, ldo, np, bias, act),
        10 => mk.tile_out::<10>(kc, a, lda, b, out, ldo, np, bias, act),
        9 => mk.tile_out::<9>(kc, a, lda, b, out, ldo, np, bias, act),
        8 => mk.tile_out::<8>(kc, a, lda, b, out, ldo, np, bias, act),
        7 => mk.tile_out::<7>(kc, a, lda, b, out, ldo, np, bias, act),
        6 => mk.tile_out::<6>(kc, a, lda, b, out, ldo, np, bias, act),
        5 => mk.tile_out::<5>(kc, a, lda, b, out, ldo, np, bias, act),
        4 => mk.tile_out::<4>(kc, a, lda, b, out, ldo, np, bias, act),
        3 => mk.tile_out::<3>(kc, a, lda, b, out, ldo, np, bias, act),
        2 => mk.tile_out::<2>(kc, a, lda, b, out, ldo, np, bias, act),
        _ => mk.tile_out::<1>(kc, a, lda, b, out, ldo, np, bias, act),
    }
}

/// Most `B` rows (`cg·kh·kw`) a [`RowTab`] holds.
const TABK: usize = 1024;

/// Where each row of a pixel-tile pair's `B` lies in the group's input planes, for the rows of
/// one K chunk: `rows()[k][h] = (start, mask)`, half `h`'s lane `j` being
/// `src[shift() + start + j]` when bit `j` of `mask` is set, 0 otherwise (masks use bits
/// `0 .. 16`; 32-bit so the table has no padding and clears as one block).
///
/// Guarantee (what makes the in-place kernels sound): every lane set in a mask has
/// `0 ≤ shift() + start + j < len()`. Only [`RowTab::pair`] and [`RowTab::chunk`] write the
/// table: the first clears lanes that would leave their input plane, and keeps the rows of the
/// previous pair (with a new shift) only when every tap moved by the same offset with the same
/// lanes; the second builds rows inside `len`.
pub(super) struct RowTab {
    rows: [[(i32, u32); 2]; TABK],
    /// Rows built (0: to build), and the chunk `k0 .. k0 + kc` that `rows()` shows.
    built: usize,
    k0: usize,
    kc: usize,
    shift: isize,
    /// Per tap and half, lane 0's offset from its plane and the lanes inside the plane, for the
    /// current pair.
    taps: [[(i32, u32); 2]; MAX_TAPS],
    ntaps: usize,
    in_plane: usize,
    len: usize,
}

impl RowTab {
    /// An empty table.
    fn new() -> RowTab {
        RowTab { rows: [[(0, 0); 2]; TABK], built: 0, k0: 0, kc: 0, shift: 0, taps: [[(0, 0); 2]; MAX_TAPS], ntaps: 0, in_plane: 0, len: 0 }
    }

    /// Takes the taps of the first `halves` (1 or 2) tiles of a pixel-tile pair whose panel rows
    /// are contiguous masked runs ([`Source::Window`], or [`Source::Index`] with consecutive
    /// pixels; a missing second tile reads nothing), for `kdim` rows of
    /// `B` over input planes of `in_plane` floats, `len` floats in all. False when a source is
    /// not of that kind, `kdim` is over [`TABK`] or offsets do not fit `i32`.
    fn pair(&mut self, srcs: &[Source; 2], halves: usize, ntaps: usize, kdim: usize, in_plane: usize, len: usize) -> bool {
        if ntaps == 0 || ntaps > MAX_TAPS || kdim > TABK || len > i32::MAX as usize / 2 {
            return false;
        }
        let plane = in_plane as i64;
        let mut same = self.built == kdim && (self.ntaps, self.in_plane, self.len) == (ntaps, in_plane, len);
        let mut delta = None;
        for (h, src) in srcs.iter().enumerate() {
            for t in 0..ntaps {
                let (start, mask) = match src {
                    // No second tile: no lanes.
                    _ if h >= halves => (0, 0),
                    Source::Window(tab) => {
                        let (ws, lo, span) = tab[t];
                        let (lo, hi) = (lo.min(16), (lo + span).min(16));
                        (ws as i64, if hi > lo { ((1u32 << hi) - (1u32 << lo)) as u16 } else { 0 })
                    }
                    Source::Index(ix) if ix.step => (ix.idx[0] as i64 + ix.off[t] as i64, ix.mask[t]),
                    _ => {
                        self.built = 0;
                        return false;
                    }
                };
                // Lanes leaving the plane cleared (none do for these sources; the table's
                // guarantee does not rest on that).
                let (lo, hi) = ((-start).clamp(0, 16), (plane - start).clamp(0, 16));
                let m = mask & if hi > lo { ((1u32 << hi) - (1u32 << lo)) as u16 } else { 0 };
                let new = if m == 0 { (0, 0) } else { (start as i32, m as u32) };
                let old = self.taps[t][h];
                if m as u32 != old.1 {
                    same = false;
                } else if m != 0 {
                    let d = new.0 as i64 - old.0 as i64;
                    same &= *delta.get_or_insert(d) == d;
                }
                self.taps[t][h] = new;
            }
        }
        (self.ntaps, self.in_plane, self.len) = (ntaps, in_plane, len);
        match (same, delta) {
            (true, Some(d)) => self.shift += d as isize,
            (true, None) => {}
            _ => self.build(kdim),
        }
        true
    }

    /// Rows `0 .. kdim` from the current taps: `B` row `k` is tap `k % ntaps` of input plane
    /// `k / ntaps`; planes past `len` read nothing.
    fn build(&mut self, kdim: usize) {
        let (ntaps, in_plane, len) = (self.ntaps.max(1), self.in_plane, self.len);
        let kdim = kdim.min(TABK);
        let (mut ic, mut t) = (0, 0);
        for row in self.rows.iter_mut().take(kdim) {
            let base = if (ic + 1) * in_plane <= len { Some((ic * in_plane) as i32) } else { None };
            for (r, &(start, m)) in row.iter_mut().zip(&self.taps[t]) {
                *r = match base {
                    Some(b) if m != 0 => (b + start, m),
                    _ => (0, 0),
                };
            }
            t += 1;
            if t == ntaps {
                (t, ic) = (0, ic + 1);
            }
        }
        (self.built, self.shift) = (kdim, 0);
    }

    /// Shows rows `k0 .. k0 + kc` (clamped to the rows built) through [`RowTab::rows`].
    fn chunk(&mut self, k0: usize, kc: usize) {
        self.k0 = k0.min(self.built);
        self.kc = kc.min(self.built - self.k0);
    }

    /// The rows of the current chunk.
    #[inline]
    #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
    pub(super) fn rows(&self) -> &[[(i32, u32); 2]] {
        &self.rows[self.k0..self.k0 + self.kc]
    }

    /// What every row's `start` is relative to.
    #[inline]
    #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
    pub(super) fn shift(&self) -> isize {
        self.shift
    }

    /// Floats the source must hold (every lane read lies below).
    #[inline]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

/// Rows `0 .. kc` of the pair read through `t` (half `h` at columns `h·NR ..`), written into
/// `panel` at pitch `2·NR`: for CPUs without [`Micro::tile_out`] for the operand.
fn tab_panel(src: &[f32], t: &RowTab, kc: usize, panel: &mut [f32; KC * 2 * NR]) {
    for (row, r) in panel.chunks_exact_mut(2 * NR).zip(t.rows().iter().take(kc)) {
        for (h, &(start, mask)) in r.iter().enumerate() {
            for (j, v) in row[h * NR..(h + 1) * NR].iter_mut().enumerate() {
                let at = t.shift() as i64 + start as i64 + j as i64;
                *v = match src.get(at as usize) {
                    Some(&x) if mask >> j & 1 == 1 && at >= 0 => x,
                    _ => 0.0,
                };
            }
        }
    }
}

/// The geometry both tiled Convs share, checked against the slices once per call.
struct Plan<'g> {
    g: &'g Geom,
    /// Rows of `B` (`cg·kh·kw`), pixels per output plane, floats per input plane, groups.
    kdim: usize,
    plane: usize,
    in_plane: usize,
    groups: usize,
    /// A 1×1, stride-1, unpadded Conv: `B` is the input planes themselves.
    direct: bool,
    /// Per kernel column `kx`, the output columns whose input column lies inside the input.
    cols: [(usize, usize); MAX_TAPS],
    /// The input is in stride phases ([`Phases`]), not planes.
    phases: Option<Phases>,
    /// Whether pixel-tile pairs may be read in place through a [`RowTab`] on `tabbed` CPUs.
    tab_ok: bool,
}

/// A stride-2 Conv's input rewritten as stride phases ([`Micro::split2`]): input channel `c`
/// becomes 4 planes of `hq × wq` floats (`hq = ⌈h / 2⌉`, `wq = ⌈w / 2⌉`), phase `(py, px)` (at
/// `c·4·hq·wq + (2·py + px)·hq·wq`) holding input pixel `(2·i + py, 2·j + px)` at `(i, j)` and
/// 0 where that lies past the input (the layout of [`super::depthwise`]'s phases when `wq =
/// ow`). Each tap of the strided
/// Conv then reads one phase at stride 1, and with `wq = ow` a tile's pixels are consecutive
/// floats there: every panel row is one masked contiguous run ([`RowTab`], [`Micro::load_rows`])
/// instead of a strided gather. Same sums as the Conv on the planes (padding is 0 in both).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Phases {
    pub(super) hq: usize,
    pub(super) wq: usize,
}

/// Most floats of a group's stride phases read in place through a [`RowTab`] (32 KiB); larger
/// ones are gathered into panels (contiguous masked runs), which every filter tile then reads
/// from L1.
const TAB_PHASES: usize = 16384;

/// Most floats of stride phases [`super::conv::conv_simd`] copies to the stack (64 KiB).
pub(super) const PHASES_MAX: usize = 16384;

impl Phases {
    /// `Some` for a Conv the tiled product takes ([`applies`]) at stride 2 × 2, with more than
    /// one and at most [`MAX_TAPS`] taps, whose phase rows are exactly as wide as its output rows
    /// (`⌈w / 2⌉ = ow`: "same" or symmetric padding of an odd kernel) and whose phases fit
    /// [`PHASES_MAX`].
    pub(super) fn of(g: &Geom) -> Option<Phases> {
        let taps = g.kh * g.kw;
        if !applies(g) || (g.sh, g.sw) != (2, 2) || !(2..=MAX_TAPS).contains(&taps) || g.oh == 0 {
            return None;
        }
        let (hq, wq) = (g.h.div_ceil(g.sh), g.w.div_ceil(g.sw));
        let len = g.c.checked_mul(g.sh * g.sw)?.checked_mul(hq)?.checked_mul(wq)?;
        (wq == g.ow && hq > 0 && len <= PHASES_MAX).then_some(Phases { hq, wq })
    }

    /// Floats of one input channel's phases.
    pub(super) fn channel(&self, g: &Geom) -> usize {
        g.sh * g.sw * self.hq * self.wq
    }
}

/// Writes the [`Phases`] of the `c` input planes `x` into `buf` (`c · q.channel(g)` floats,
/// every one written). Forced inline so the caller's [`Micro::run`] reaches the loops.
#[inline(always)]
pub(super) fn split_phases<M: Micro>(mk: M, g: &Geom, q: Phases, x: &[f32], buf: &mut [f32]) {
    for (xp, bp) in x.chunks_exact((g.h * g.w).max(1)).zip(buf.chunks_exact_mut(q.channel(g).max(1))) {
        mk.split2(xp, g.h, g.w, bp);
    }
}

impl<'g> Plan<'g> {
    /// Errors when `x` (`x_len` floats) or `out` (`out_len`) is shorter than `g` needs, the
    /// groups ask for more channels than there are, or the kernel has no taps.
    fn new(g: &'g Geom, x_len: usize, out_len: usize) -> Result<Self, OpError> {
        Self::with(g, x_len, out_len, None)
    }

    /// [`Plan::new`] for an input in stride `phases` (`None`: planes); errors as it does, and
    /// when the phases do not match `g` ([`Phases::of`]).
    fn with(g: &'g Geom, x_len: usize, out_len: usize, phases: Option<Phases>) -> Result<Self, OpError> {
        let taps = g.kh * g.kw;
        if phases.is_some() && phases != Phases::of(g) {
            return Err(OpError::ShapeMismatch);
        }
        let (plane, in_plane) = (g.oh * g.ow, phases.map_or(g.h * g.w, |q| q.channel(g)));
        let groups = g.m.checked_div(g.mg).unwrap_or(0);
        if x_len < g.c * in_plane || out_len < g.m * plane || groups * g.cg > g.c || taps == 0 {
            return Err(OpError::ShapeMismatch);
        }
        let direct = phases.is_none() && taps == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.oh == g.h && g.ow == g.w;
        let mut cols = [(0, 0); MAX_TAPS];
        for (kx, c) in cols.iter_mut().enumerate().take(g.kw) {
            *c = g.col_range(kx * g.dw);
        }
        let tab_ok = phases.is_none() || g.cg * in_plane <= TAB_PHASES;
        Ok(Plan { g, kdim: g.cg * taps, plane, in_plane, groups, direct, cols, phases, tab_ok })
    }

    /// Group `grp`'s input planes and its filters' range.
    fn group<'x>(&self, x: &'x [f32], grp: usize) -> (&'x [f32], usize, usize) {
        let n = self.g.cg * self.in_plane;
        (&x[grp * n..(grp + 1) * n], grp * self.g.mg, (grp + 1) * self.g.mg)
    }

    /// How the panel of the pixel tile at `p0` (`np` pixels) is gathered: nothing to plan for a
    /// full tile of a direct Conv read `in_place`; otherwise its window or index table.
    fn source_in(&self, p0: usize, np: usize, in_place: bool) -> Source {
        if self.direct && np.is_multiple_of(NR) && in_place {
            // Read in place ([`Plan::b`]): nothing to plan.
            return Source::Runs;
        }
        if let Some(q) = self.phases {
            return Source::Index(Indices::phased(self.g, q, p0, np));
        }
        let ow = self.g.ow.max(1);
        if !self.direct && np == NR && p0 % ow + NR <= ow && self.g.sw == 1 {
            if let Some(w) = windows(self.g, p0 / ow, p0 % ow) {
                return Source::Window(w);
            }
        }
        Indices::new(self.g, p0, np, &self.cols).map_or(Source::Runs, Source::Index)
    }

    /// Rows `k0 .. k0 + kc` of `B` for pixels `p0 .. p0 + np`, with their pitch: the input
    /// planes in place when `in_place`, direct and full, else `panel` gathered.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn b<'a, M: Micro>(
        &self,
        mk: M,
        xg: &'a [f32],
        k0: usize,
        kc: usize,
        p0: usize,
        np: usize,
        src: &Source,
        panel: &'a mut [f32; KC * NR],
        in_place: bool,
    ) -> (&'a [f32], usize) {
        if in_place && self.direct && np.is_multiple_of(NR) {
            (&xg[k0 * self.in_plane + p0..], self.in_plane)
        } else {
            gather(mk, self.g, self.in_plane, xg, k0, kc, p0, np, src, panel);
            (&panel[..], NR)
        }
    }

    /// Adds one K chunk (`kc` deep, the first and/or last of the sum) to filters `m_lo ..
    /// m_hi` at pixels `p0 .. p0 + np`, tile by tile: `a` holds filter `m_lo + i`'s chunk at
    /// `a[i·lda ..]`, `b` the panel at pitch `ldb`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn tiles<M: Micro>(
        &self,
        mk: M,
        (m_lo, m_hi): (usize, usize),
        (p0, np): (usize, usize),
        (kc, first, last): (usize, bool, bool),
        (a, lda): (&[f32], usize),
        b: Bop<'_>,
        bias: Option<View<'_>>,
        act: Activation,
        cbuf: &mut [f32; MR * 2 * NR],
        out: &mut [f32],
    ) {
        // Rows split evenly over the fewest tiles: a short last tile would hold too few
        // independent sums to hide the multiply-add latency (16 filters run as 8 + 8, not 12 + 4).
        let mr = mk.rows().min(MR);
        let tiles = (m_hi - m_lo).div_ceil(mr);
        let (mut m0, mut done) = (m_lo, 0);
        while m0 < m_hi {
            let r = (m_hi - m0).div_ceil(tiles.saturating_sub(done).max(1)).min(mr);
            done += 1;
            let t = TileAt { m0, r, p0, np, plane: self.plane, first, last };
            t.run(mk, kc, &a[(m0 - m_lo) * lda..], lda, b, bias, act, cbuf, out);
            m0 += r;
        }
    }
}

/// Conv of one batch item with f32 weights `w` (`[m, cg, kh, kw]`): `out` (`[m, oh, ow]`)
/// becomes `act(bias + W ∗ x)`. Errors when a slice is shorter than the geometry needs. Forced
/// inline so the caller's [`Micro::run`] compiles its loops for the SIMD registers.
#[inline(always)]
pub(super) fn conv<M: Micro>(
    mk: M,
    g: &Geom,
    x: &[f32],
    w: &[f32],
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
) -> Result<(), OpError> {
    conv_in(mk, g, None, x, w, bias, act, out)
}

/// [`conv`] on an input in stride `phases` ([`split_phases`]), or in planes (`None`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn conv_in<M: Micro>(
    mk: M,
    g: &Geom,
    phases: Option<Phases>,
    x: &[f32],
    w: &[f32],
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
) -> Result<(), OpError> {
    let pl = Plan::with(g, x.len(), out.len(), phases)?;
    let kdim = pl.kdim;
    if w.len() < g.m * kdim {
        return Err(OpError::ShapeMismatch);
    }
    let mut tab = None;
    let wt = Weights { w, lda: kdim, m_at: 0, k_lo: 0, k_hi: kdim };
    // The panels (32 KiB to clear) only once a pixel tile needs one.
    if let Some(at) = conv_loop(mk, &pl, x, wt, pl.groups, bias, act, out, &mut tab, (0, 0), None) {
        let mut panels = [[0.0f32; KC * NR]; 2];
        conv_loop(mk, &pl, x, wt, pl.groups, bias, act, out, &mut tab, at, Some(&mut panels));
    }
    Ok(())
}

/// The filter weights [`conv_loop`] reads, for `B` rows `k_lo .. k_hi`: weight `k` of filter
/// `m` at `w[(m - m_at)·lda + k - k_lo]`.
#[derive(Clone, Copy)]
struct Weights<'w> {
    w: &'w [f32],
    lda: usize,
    m_at: usize,
    k_lo: usize,
    k_hi: usize,
}

impl<'w> Weights<'w> {
    /// The rows of filters `m_lo ..` from weight `k0` on, and their pitch.
    #[inline(always)]
    fn at(&self, m_lo: usize, k0: usize) -> (&'w [f32], usize) {
        (&self.w[(m_lo - self.m_at) * self.lda + k0 - self.k_lo..], self.lda)
    }
}

/// The pixel tiles of [`conv`] from group `grp`, pixel `p0` on (`(grp, p0)` = `from`), up to
/// group `grp_end`, each read in place (direct Convs, [`RowTab`] pairs) or through `panels`,
/// adding the products of `B` rows `wt.k_lo .. wt.k_hi` (the first rows start at the bias, the
/// last leave through `act`). Without panels, stops at the first tile that needs them and
/// returns where it stopped; `None` once done. The slices were checked by [`Plan::new`] and the
/// caller (`wt` holds every filter of the groups run, for its rows).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn conv_loop<M: Micro>(
    mk: M,
    pl: &Plan<'_>,
    x: &[f32],
    wt: Weights<'_>,
    grp_end: usize,
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
    tab: &mut Option<RowTab>,
    from: (usize, usize),
    mut panels: Option<&mut [[f32; KC * NR]; 2]>,
) -> Option<(usize, usize)> {
    let (g, kdim) = (pl.g, pl.kdim);
    let ntaps = g.kh * g.kw;
    let mut cbuf = [0.0f32; MR * 2 * NR];
    for grp in from.0..grp_end.min(pl.groups) {
        let (xg, m_lo, m_hi) = pl.group(x, grp);
        let mut p0 = if grp == from.0 { from.1 } else { 0 };
        while p0 < pl.plane {
            let rest = pl.plane - p0;
            // Full tiles of a direct Conv read the input planes in place; so do partial ones
            // where the CPU's kernels load masked lanes (the `tabbed` CPUs: [`Micro::tile_out`]
            // reads any `np ≤ 2·NR` columns of a panel).
            let in_place = pl.direct && (rest >= NR || mk.tabbed());
            // Otherwise up to two pixel tiles at a time (one pass over the weights), read in
            // place through `tab` when their rows are contiguous masked runs.
            let np = if mk.tabbed() || rest >= 2 * NR { rest.min(2 * NR) } else { NR.min(rest) };
            let pair = np > NR;
            if in_place {
                // Read in place: no source to plan (and no tables to copy per tile).
                let mut k0 = wt.k_lo;
                while k0 < wt.k_hi {
                    let kc = KC.min(wt.k_hi - k0);
                    let a = wt.at(m_lo, k0);
                    let at = k0 * pl.in_plane + p0;
                    let b = Bop::Panel { b: [&xg[at..], &xg[at + if pair { NR } else { 0 }..]], ldb: pl.in_plane };
                    pl.tiles(mk, (m_lo, m_hi), (p0, np), (kc, k0 == 0, k0 + kc == kdim), a, b, bias, act, &mut cbuf, out);
                    k0 += kc;
                }
                p0 += np;
                continue;
            }
            let srcs = [pl.source_in(p0, np.min(NR), false), if pair { pl.source_in(p0 + NR, np - NR, false) } else { Source::Runs }];
            // (The table, 17 KiB to clear, made the first time a pair can use it.)
            let mut tabbed = None;
            if mk.tabbed() && pl.tab_ok {
                let t = tab.get_or_insert_with(RowTab::new);
                tabbed = t.pair(&srcs, 1 + pair as usize, ntaps, kdim, pl.in_plane, xg.len()).then_some(t);
            }
            if tabbed.is_none() && panels.is_none() {
                return Some((grp, p0));
            }
            let mut k0 = wt.k_lo;
            while k0 < wt.k_hi {
                let kc = KC.min(wt.k_hi - k0);
                let a = wt.at(m_lo, k0);
                let chunk = (kc, k0 == 0, k0 + kc == kdim);
                if let Some(t) = tabbed.as_deref_mut() {
                    t.chunk(k0, kc);
                    let b = Bop::Tab { src: xg, t };
                    pl.tiles(mk, (m_lo, m_hi), (p0, np), chunk, a, b, bias, act, &mut cbuf, out);
                } else {
                    // (Present: checked before the first chunk.)
                    let Some([p, p1]) = panels.as_deref_mut() else { return Some((grp, p0)) };
                    let (b0, ldb) = pl.b(mk, xg, k0, kc, p0, np.min(NR), &srcs[0], p, false);
                    let b1 = if pair { pl.b(mk, xg, k0, kc, p0 + NR, np - NR, &srcs[1], p1, false).0 } else { b0 };
                    let b = Bop::Panel { b: [b0, b1], ldb };
                    pl.tiles(mk, (m_lo, m_hi), (p0, np), chunk, a, b, bias, act, &mut cbuf, out);
                }
                k0 += kc;
            }
            p0 += np;
        }
    }
    None
}

/// Where one register tile sits in the output: filters `m0 .. m0 + r`, pixels `p0 .. p0 + np`
/// of planes of `plane` pixels; whether its K chunk is the first and the last.
struct TileAt {
    m0: usize,
    r: usize,
    p0: usize,
    np: usize,
    plane: usize,
    first: bool,
    last: bool,
}

impl TileAt {
    /// Adds one K chunk (`a`: `r` rows at pitch `lda`; `b`: the panel at pitch `ldb`) to the
    /// tile: it starts at the bias (first chunk) or the partial sums in `out`, and leaves
    /// through the activation (last chunk), so `out` is written once per chunk.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn run<M: Micro>(
        &self,
        mk: M,
        kc: usize,
        a: &[f32],
        lda: usize,
        b: Bop<'_>,
        bias: Option<View<'_>>,
        act: Activation,
        cbuf: &mut [f32; MR * 2 * NR],
        out: &mut [f32],
    ) {
        let (np, plane) = (self.np, self.plane);
        let mut b0 = [0.0f32; MR];
        if let (true, Some(b)) = (self.first, bias) {
            b.read_into(self.m0, &mut b0[..self.r]);
        }
        // Straight into `out` where the CPU has the kernel.
        let at0 = self.m0 * plane + self.p0;
        let ends = (self.first.then_some(&b0[..self.r]), self.last.then_some(act));
        if tile_rows_out(mk, self.r, kc, a, lda, b, &mut out[at0..], plane, np, ends.0, ends.1) {
            return;
        }
        // Columns of the tile: two register tiles side by side for a pair.
        let w = if np > NR || matches!(b, Bop::Tab { .. }) { 2 * NR } else { NR };
        for i in 0..self.r {
            let row = &mut cbuf[i * w..(i + 1) * w];
            let at = (self.m0 + i) * plane + self.p0;
            if self.first {
                row.fill(b0[i]);
            } else if np == w {
                row.copy_from_slice(&out[at..at + w]);
            } else {
                row[..np].copy_from_slice(&out[at..at + np]);
            }
        }
        match b {
            Bop::Panel { b, ldb } if w > NR => tile_rows2(mk, self.r, kc, a, lda, b, ldb, cbuf, w),
            Bop::Panel { b, ldb } => tile_rows(mk, self.r, kc, a, lda, b[0], ldb, cbuf, w),
            Bop::Tab { src, t } => {
                let mut panel = [0.0f32; KC * 2 * NR];
                tab_panel(src, t, kc, &mut panel);
                tile_rows2(mk, self.r, kc.min(t.rows().len()), a, lda, [&panel[..], &panel[NR..]], 2 * NR, cbuf, w)
            }
        }
        let post = if self.last { act } else { Activation::None };
        for i in 0..self.r {
            let at = (self.m0 + i) * plane + self.p0;
            let src = &cbuf[i * w..(i + 1) * w];
            // Constant lengths for full tiles, so the copy is a few vector moves.
            if np == NR {
                post.apply_to(&mut out[at..at + NR], &src[..NR]);
            } else if np == 2 * NR {
                post.apply_to(&mut out[at..at + 2 * NR], src);
            } else {
                post.apply_to(&mut out[at..at + np], &src[..np]);
            }
        }
    }
}

/// Floats of decoded weights [`conv_decoded`] keeps on the stack (32 KiB).
const ABUF: usize = 8192;

/// Whether [`conv_decoded`] takes this Conv: not depthwise, and a 16-deep chunk of every
/// filter of a group fits [`ABUF`].
pub(super) fn decoded_applies(g: &Geom) -> bool {
    applies(g) && g.mg.max(1) * 16 <= ABUF
}

/// [`conv`] with weights decoded on the fly: `decode(m, k0, buf)` writes filter `m`'s weights
/// `k0 .. k0 + buf.len()` (flattened `[cg, kh, kw]`) into `buf`. Each weight is decoded once per
/// call: per K chunk (sized so the whole group's chunk fits [`ABUF`]), every filter's chunk is
/// decoded, then the pixel tiles run as in [`conv`] (pairs, read in place or through
/// [`RowTab`] where it does, else each panel gathered once for every filter tile). Same sums
/// as [`conv`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn conv_decoded<M: Micro>(
    mk: M,
    g: &Geom,
    x: &[f32],
    mut decode: impl FnMut(usize, usize, &mut [f32]),
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
) -> Result<(), OpError> {
    let pl = Plan::new(g, x.len(), out.len())?;
    let kdim = pl.kdim;
    // Chunk depth: a multiple of 16 up to KC whose whole-group chunk fits the buffer.
    let kcd = (ABUF / g.mg.max(1)).min(KC) / 16 * 16;
    if kcd == 0 {
        return Err(OpError::ShapeMismatch);
    }
    let mut abuf = [0.0f32; ABUF];
    let mut tab = None;
    // The panels (32 KiB to clear) only once a pixel tile needs one.
    let mut panels: Option<[[f32; KC * NR]; 2]> = None;
    for grp in 0..pl.groups {
        let (m_lo, m_hi) = (grp * g.mg, (grp + 1) * g.mg);
        let mut k0 = 0;
        while k0 < kdim {
            let kc = kcd.min(kdim - k0);
            for (i, m) in (m_lo..m_hi).enumerate() {
                decode(m, k0, &mut abuf[i * kc..(i + 1) * kc]);
            }
            let wt = Weights { w: &abuf, lda: kc, m_at: m_lo, k_lo: k0, k_hi: k0 + kc };
            let mut from = (grp, 0);
            while let Some(at) = conv_loop(mk, &pl, x, wt, grp + 1, bias, act, out, &mut tab, from, panels.as_mut()) {
                panels.get_or_insert([[0.0f32; KC * NR]; 2]);
                from = at;
            }
            k0 += kc;
        }
    }
    Ok(())
}

/// [`conv`] with a block-sparse weight (`w`: the `m × cg·kh·kw` matrix in `br × bc` blocks),
/// group 1: per pixel tile and K chunk (whole blocks), the panel is gathered once (or read in
/// place), and each stored block adds its product with the panel's rows under it to its
/// filters' outputs (register tiles of up to [`MR`] rows, loaded from and stored to `out`), so
/// the multiply-adds are the stored blocks' only. `out` starts at the bias and leaves through
/// `act`. `Ok(false)`, with nothing written, when the values are not native f32 (unaligned), a
/// block is wider than a K chunk, or the Conv is grouped. The same sums as [`conv`] on the
/// weights with the missing blocks zero, up to the order of the additions.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn conv_bsr<M: Micro>(
    mk: M,
    g: &Geom,
    x: &[f32],
    w: &crate::sparse::Bsr<'_>,
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
) -> Result<bool, OpError> {
    let pl = Plan::new(g, x.len(), out.len())?;
    let info = w.info();
    let (br, bc, kdim, plane) = (info.br, info.bc, pl.kdim, pl.plane);
    // K chunks of whole blocks (a block's columns start at a multiple of `bc`).
    let kcb = KC / bc.max(1) * bc;
    let native = w.for_each_run::<OpError>(&mut [], |_, _, _| Ok(()))?;
    if pl.groups != 1 || br == 0 || kcb == 0 || info.rows != g.m || info.cols != kdim || !native {
        return Ok(false);
    }
    for (mo, p) in out.chunks_exact_mut(plane.max(1)).take(g.m).enumerate() {
        p.fill(bias.map_or(0.0, |b| b.get(mo)));
    }
    let mr = mk.rows().min(MR);
    let mut panel = [0.0f32; KC * NR];
    let mut cbuf = [0.0f32; MR * NR];
    let mut p0 = 0;
    while p0 < plane {
        let np = NR.min(plane - p0);
        let src = pl.source_in(p0, np, true);
        let mut k0 = 0;
        while k0 < kdim {
            let kc = kcb.min(kdim - k0);
            let (b, ldb) = pl.b(mk, x, k0, kc, p0, np, &src, &mut panel, true);
            w.for_each_run::<OpError>(&mut [], |bi, cols, vals| {
                let m0 = bi * br;
                let rows = br.min(g.m.saturating_sub(m0));
                for (c, blk) in cols.chunks_exact(2).zip(vals.chunks_exact(br * bc)) {
                    let c0 = u16::from_le_bytes([c[0], c[1]]) as usize * bc;
                    if c0 < k0 || c0 >= k0 + kc {
                        continue;
                    }
                    let (kb, bb) = (bc.min(k0 + kc - c0), &b[(c0 - k0) * ldb..]);
                    let mut i = 0;
                    while i < rows {
                        let r = (rows - i).min(mr);
                        let (a, at) = (&blk[i * bc..], (m0 + i) * plane + p0);
                        if np == NR {
                            tile_rows(mk, r, kb, a, bc, bb, ldb, &mut out[at..], plane);
                        } else {
                            // A partial tile through `cbuf` (the panel's lanes past `np` are 0).
                            for j in 0..r {
                                let row = &mut cbuf[j * NR..(j + 1) * NR];
                                row[..np].copy_from_slice(&out[at + j * plane..at + j * plane + np]);
                                row[np..].fill(0.0);
                            }
                            tile_rows(mk, r, kb, a, bc, bb, ldb, &mut cbuf, NR);
                            for j in 0..r {
                                out[at + j * plane..at + j * plane + np].copy_from_slice(&cbuf[j * NR..j * NR + np]);
                            }
                        }
                        i += r;
                    }
                }
                Ok(())
            })?;
            k0 += kc;
        }
        p0 += np;
    }
    if act != Activation::None {
        act.apply_all(&mut out[..g.m * plane]);
    }
    Ok(true)
}

/// Fills `panel[kk·NR + j]` with `B[k0 + kk, p0 + j]` for `kk < kc`, `j < np` (the input value
/// under tap `k` of output pixel `p`, 0 in the padding) and 0 for `j ≥ np`. `xg` holds the
/// group's `cg` input planes; `k0 + kc ≤ cg·kh·kw` and `p0 + np ≤ oh·ow`. Inline into the
/// SIMD caller.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gather<M: Micro>(
    mk: M,
    g: &Geom,
    in_plane: usize,
    xg: &[f32],
    k0: usize,
    kc: usize,
    p0: usize,
    np: usize,
    src: &Source,
    panel: &mut [f32; KC * NR],
) {
    let taps = g.kh * g.kw;
    let (mut ic, mut t) = (k0 / taps, k0 % taps);
    let next = |t: &mut usize, ic: &mut usize| {
        *t += 1;
        if *t == taps {
            *t = 0;
            *ic += 1;
        }
    };
    match src {
        Source::Window(tab) => {
            for kk in 0..kc {
                let xp = &xg[ic * in_plane..(ic + 1) * in_plane];
                let Ok(row) = <&mut [f32; NR]>::try_from(&mut panel[kk * NR..(kk + 1) * NR]) else { continue };
                let (ws, lo, span) = tab[t];
                if span == 0 {
                    *row = [0.0; NR];
                } else if let Ok(win) = <&[f32; NR]>::try_from(&xp[ws..ws + NR]) {
                    mk.window16(row, win, lo, span);
                }
                next(&mut t, &mut ic);
            }
            return;
        }
        Source::Index(ix) => {
            // Offsets from the group's first plane (they fit i32: `Indices::new`), a few rows
            // at a time (a short table to fill).
            let mut rows = [(0i32, 0u16); 32];
            let mut k = 0;
            while k < kc {
                let n = rows.len().min(kc - k);
                // Runs of taps of one input plane.
                let mut f = 0;
                while f < n {
                    let run = (taps - t).min(n - f);
                    let base = (ic * in_plane) as i32;
                    for ((r, &off), &mask) in rows[f..f + run].iter_mut().zip(&ix.off[t..t + run]).zip(&ix.mask[t..t + run]) {
                        *r = (base + off, mask);
                    }
                    f += run;
                    t += run;
                    if t == taps {
                        (t, ic) = (0, ic + 1);
                    }
                }
                let dst = &mut panel[k * NR..(k + n) * NR];
                if ix.step {
                    mk.load_rows(dst, xg, ix.idx[0], &rows[..n]);
                } else {
                    // Stride-2 rows, then four-run rows, where this CPU has the kernels; else
                    // the index gather.
                    let done = (ix.step2 && mk.load_rows2(dst, xg, ix.idx[0], &rows[..n]))
                        || (ix.quad > 0 && mk.load_rows4(dst, xg, ix.idx[0], ix.quad, &rows[..n]));
                    if !done {
                        mk.gather_rows(dst, xg, &ix.idx, &rows[..n]);
                    }
                }
                k += n;
            }
            return;
        }
        Source::Runs => {}
    }
    // The tile's pixels as runs within one output row: (first j, length, output row, first
    // output column).
    let mut runs = [(0usize, 0usize, 0usize, 0usize); NR];
    let mut nruns = 0;
    let (mut j, ow) = (0, g.ow.max(1));
    while j < np {
        let (oy, ox) = ((p0 + j) / ow, (p0 + j) % ow);
        let len = (ow - ox).min(np - j);
        runs[nruns] = (j, len, oy, ox);
        nruns += 1;
        j += len;
    }
    let runs = &runs[..nruns];
    let (mut ky, mut kx) = (t / g.kw, t % g.kw);
    for kk in 0..kc {
        let xp = &xg[ic * in_plane..(ic + 1) * in_plane];
        let row = &mut panel[kk * NR..(kk + 1) * NR];
        let mut done = false;
        if nruns == 1 && np == NR && g.sw == 1 {
            let (_, _, oy, ox) = runs[0];
            let iy = (oy * g.sh + ky * g.dh).wrapping_sub(g.pt);
            let ix = (ox + kx * g.dw).wrapping_sub(g.pl);
            if iy < g.h && ix < g.w && ix + NR <= g.w {
                // The common interior case, constant length: a few vector moves.
                let at = iy * g.w + ix;
                row.copy_from_slice(&xp[at..at + NR]);
                done = true;
            }
        }
        for &(j0, len, oy, ox) in runs.iter().filter(|_| !done) {
            let seg = &mut row[j0..j0 + len];
            let iy = (oy * g.sh + ky * g.dh).wrapping_sub(g.pt);
            if iy >= g.h {
                seg.fill(0.0);
                continue;
            }
            let xr = &xp[iy * g.w..(iy + 1) * g.w];
            // Input column of seg[i] is `base + i·sw` (signed); the in-input `i` form lo..hi.
            let base = (ox * g.sw + kx * g.dw) as isize - g.pl as isize;
            let sw = g.sw as isize;
            let w = g.w as isize;
            // No division for stride 1 (this runs per tap and run).
            let (lo, hi) = if sw == 1 {
                ((-base).max(0) as usize, (w - base).max(0) as usize)
            } else {
                (
                    if base >= 0 { 0 } else { ((-base + sw - 1) / sw) as usize },
                    if base >= w { 0 } else { ((w - base + sw - 1) / sw) as usize },
                )
            };
            let hi = hi.min(len);
            let lo = lo.min(hi);
            for v in &mut seg[..lo] {
                *v = 0.0;
            }
            for v in &mut seg[hi..] {
                *v = 0.0;
            }
            if lo < hi {
                let start = (base + lo as isize * sw) as usize;
                if g.sw == 1 {
                    // Short runs (narrow planes): inline moves, not a `memcpy` call each.
                    super::depthwise::copy_short(&mut seg[lo..hi], &xr[start..start + (hi - lo)]);
                } else {
                    for (d, v) in seg[lo..hi].iter_mut().zip(xr[start..].iter().step_by(g.sw)) {
                        *d = *v;
                    }
                }
            }
        }
        row[np..].fill(0.0);
        t += 1;
        kx += 1;
        if kx == g.kw {
            kx = 0;
            ky += 1;
        }
        if t == taps {
            (t, ky, kx) = (0, 0, 0);
            ic += 1;
        }
    }
}

/// Most kernel taps [`windows`] tabulates.
const MAX_TAPS: usize = 64;

/// Per kernel tap of one full tile (one output row, [`NR`] pixels, stride 1): `(ws, lo, span)`:
/// tile pixel `j` reads input-plane element `ws + j` when `lo ≤ j < lo + span`, padding (0)
/// otherwise; `span == 0` for a tap whose input row is padding.
type Windows = [(usize, u32, u32); MAX_TAPS];

/// [`Windows`] of the tile in output row `oy` from column `ox`; `None` when the stride is not 1,
/// the kernel has more than [`MAX_TAPS`] taps or some window `ws .. ws + NR` would leave the
/// plane.
fn windows(g: &Geom, oy: usize, ox: usize) -> Option<Windows> {
    if g.kh * g.kw > MAX_TAPS || g.sw != 1 {
        return None;
    }
    let mut tab = [(0, 0, 0); MAX_TAPS];
    let in_plane = (g.h * g.w) as isize;
    let w = g.w as isize;
    for (t, e) in tab.iter_mut().enumerate().take(g.kh * g.kw) {
        let (ky, kx) = (t / g.kw, t % g.kw);
        let iy = (oy * g.sh + ky * g.dh).wrapping_sub(g.pt);
        if iy >= g.h {
            continue;
        }
        let base = (ox + kx * g.dw) as isize - g.pl as isize;
        let ws = iy as isize * w + base;
        if ws < 0 || ws + NR as isize > in_plane {
            return None;
        }
        let lo = (-base).max(0);
        let hi = (w - base).clamp(0, NR as isize);
        *e = (ws as usize, lo.min(hi) as u32, (hi - lo).max(0) as u32);
    }
    Some(tab)
}

/// Per pixel tile (any shape: several output rows, any stride, dilation or padding), the panel
/// row of tap `t` is `x[idx[j] + off[t]]` for the lanes `j` set in `mask[t]` and 0 elsewhere:
/// lane `j` is a pixel of the tile whose input under tap `t` lies inside the plane.
struct Indices {
    idx: [i32; NR],
    off: [i32; MAX_TAPS],
    mask: [u16; MAX_TAPS],
    /// `idx[j] = idx[0] + j` for every pixel of the tile (stride 1, output rows as wide as the
    /// input's): each panel row is one masked contiguous load.
    step: bool,
    /// `idx[j] = idx[0] + 2·j` (the tile lies in one output row, column stride 2): each panel
    /// row is the even floats of a masked contiguous run ([`Micro::load_rows2`]).
    step2: bool,
    /// `idx[j] = idx[0] + (j / 4)·quad + j % 4` for a full tile, `quad > 4` (four output rows of
    /// four pixels at column stride 1): [`Micro::load_rows4`]; 0 otherwise.
    quad: i32,
}

impl Indices {
    /// The table of pixels `p0 .. p0 + np` over the [`Phases`] `q` of `g` (`Phases::of(g) ==
    /// Some(q)`, so `wq = ow` and the pixels are consecutive floats of a phase: `step`). Lane
    /// `j` of tap `(ky, kx)` is inside when its phase row and column hold input pixels.
    fn phased(g: &Geom, q: Phases, p0: usize, np: usize) -> Indices {
        let (ow, np, phase) = (g.ow.max(1), np.min(NR), (q.hq * q.wq) as i64);
        let mut tab = Indices { idx: [0; NR], off: [0; MAX_TAPS], mask: [0; MAX_TAPS], step: true, step2: false, quad: 0 };
        for (j, v) in tab.idx.iter_mut().enumerate() {
            // (In `i32`: the output plane is no larger than the phases.)
            *v = (p0 + j) as i32;
        }
        // Per kernel row / column: its phase, offset in phase rows / columns, and the lanes
        // whose phase row / column holds input.
        let axis = |k: usize, d: usize, pad: usize, s: usize, n: usize| {
            let a = (k * d) as i64 - pad as i64;
            let (p, o) = (a.rem_euclid(s as i64), a.div_euclid(s as i64));
            // Phase rows (columns) `0 .. inside` hold input.
            let inside = ((n as i64 - p).max(0) as u64).div_ceil(s as u64) as i64;
            (p, o, inside)
        };
        // The tile's runs of lanes along one output row: lanes `lo .. hi` are output row `y`,
        // columns `x ..` (at most `NR` runs; lanes past `np` are in none, so never inside).
        let mut runs = [(0usize, 0usize, 0i64, 0i64); NR];
        let mut nruns = 0;
        let (mut j, mut oy, mut ox) = (0, p0 / ow, p0 % ow);
        while j < np {
            let n = (ow - ox).min(np - j);
            runs[nruns] = (j, j + n, oy as i64, ox as i64);
            (nruns, j, oy, ox) = (nruns + 1, j + n, oy + 1, 0);
        }
        let runs = &runs[..nruns];
        let bits = |lo: i64, hi: i64| if hi > lo { ((1u32 << hi) - (1u32 << lo)) as u16 } else { 0 };
        // Lanes whose output row `y` has `0 ≤ y + o < inside`: whole runs.
        let row_lanes = |o: i64, inside: i64| {
            runs.iter().fold(0u16, |m, &(lo, hi, y, _)| if (0..inside).contains(&(y + o)) { m | bits(lo as i64, hi as i64) } else { m })
        };
        // Lanes whose output column `x` has `0 ≤ x + o < inside`: one sub-run of each run.
        let col_lanes = |o: i64, inside: i64| {
            runs.iter().fold(0u16, |m, &(lo, hi, _, x)| {
                let (lo, hi) = (lo as i64, hi as i64);
                m | bits((lo - x - o).max(lo), (lo + inside - x - o).min(hi))
            })
        };
        let mut rows = [(0i64, 0i64, 0u16); MAX_TAPS];
        let mut cols = [(0i64, 0i64, 0u16); MAX_TAPS];
        for (ky, r) in rows.iter_mut().enumerate().take(g.kh) {
            let (p, o, inside) = axis(ky, g.dh, g.pt, g.sh, g.h);
            *r = (p, o, row_lanes(o, inside));
        }
        for (kx, c) in cols.iter_mut().enumerate().take(g.kw) {
            let (p, o, inside) = axis(kx, g.dw, g.pl, g.sw, g.w);
            *c = (p, o, col_lanes(o, inside));
        }
        let wq = q.wq as i64;
        for (ky, &(py, oy, rm)) in rows.iter().enumerate().take(g.kh) {
            for (kx, &(px, ox, cm)) in cols.iter().enumerate().take(g.kw) {
                let t = ky * g.kw + kx;
                // Inside `i32`: the phases fit [`PHASES_MAX`] floats.
                tab.off[t] = ((py * g.sw as i64 + px) * phase + oy * wq + ox) as i32;
                tab.mask[t] = rm & cm;
            }
        }
        tab
    }

    /// The table of pixels `p0 .. p0 + np`; `None` when the kernel has more than [`MAX_TAPS`]
    /// taps or offsets in the group's planes do not fit `i32`.
    fn new(g: &Geom, p0: usize, np: usize, col_ranges: &[(usize, usize); MAX_TAPS]) -> Option<Indices> {
        let taps = g.kh * g.kw;
        if taps > MAX_TAPS || g.cg.checked_mul(g.h)?.checked_mul(g.w)? > i32::MAX as usize / 4 {
            return None;
        }
        let (w, ow, np) = (g.w as i64, g.ow.max(1), np.min(NR));
        let mut tab = Indices { idx: [0; NR], off: [0; MAX_TAPS], mask: [0; MAX_TAPS], step: false, step2: false, quad: 0 };
        // Per kernel row / column, the lanes whose input row / column lies inside the input,
        // one run of lanes along an output row at a time.
        let (mut rows, mut cols) = ([0u16; MAX_TAPS], [0u16; MAX_TAPS]);
        let bits = |lo: usize, hi: usize| if hi > lo { ((1u32 << hi) - (1u32 << lo)) as u16 } else { 0 };
        let (mut a, mut oy, mut ox) = (0, p0 / ow, p0 % ow);
        while a < np {
            let n = (ow - ox).min(np - a);
            let run = bits(a, a + n);
            let iy0 = (oy * g.sh) as i64 - g.pt as i64;
            for j in a..a + n {
                tab.idx[j] = i32::try_from(iy0 * w + ((ox + j - a) * g.sw) as i64 - g.pl as i64).ok()?;
            }
            for (ky, r) in rows.iter_mut().enumerate().take(g.kh) {
                if g.in_row(oy, ky).is_some() {
                    *r |= run;
                }
            }
            for (c, &(lo, hi)) in cols.iter_mut().zip(col_ranges).take(g.kw) {
                *c |= bits(a + lo.saturating_sub(ox), (a + hi.saturating_sub(ox)).min(a + n));
            }
            (a, oy, ox) = (a + n, oy + 1, 0);
        }
        tab.step = (0..np).all(|j| tab.idx[j] == tab.idx[0].wrapping_add(j as i32));
        tab.step2 = (0..np).all(|j| tab.idx[j] == tab.idx[0].wrapping_add(2 * j as i32));
        let quad = tab.idx[4].wrapping_sub(tab.idx[0]);
        if np == NR && quad > 4 && (0..NR).all(|j| tab.idx[j] == tab.idx[0].wrapping_add((j / 4) as i32 * quad + (j % 4) as i32)) {
            tab.quad = quad;
        }
        // A lane is inside under tap (ky, kx) when its row is inside under ky and its column
        // under kx.
        for (ky, &r) in rows.iter().enumerate().take(g.kh) {
            let dy = (ky * g.dh) as i64;
            for (kx, &c) in cols.iter().enumerate().take(g.kw) {
                let t = ky * g.kw + kx;
                tab.off[t] = i32::try_from(dy * w + (kx * g.dw) as i64).ok()?;
                tab.mask[t] = r & c;
            }
        }
        Some(tab)
    }
}

/// How a pixel tile's panel is gathered. Lives on the stack for one pixel tile (no allocation
/// to box the larger variant into).
#[allow(clippy::large_enum_variant)]
enum Source {
    /// One output row at stride 1: a masked 16-wide window per tap.
    Window(Windows),
    /// A masked index gather per tap.
    Index(Indices),
    /// Row runs, one copy each (kernels with more than [`MAX_TAPS`] taps, huge planes).
    Runs,
}

/// [`Micro::split2`]'s definition: `dst` (`4·hq·wq` floats, `hq = ⌈h / 2⌉`, `wq = ⌈w / 2⌉`)
/// gets the stride-2 phases of the `h × w` plane `x`, phase `(py, px)` at `(2·py + px)·hq·wq`,
/// its row `i` holding `x[(2·i + py)·w + 2·j + px]` at column `j` and 0 where that lies past the
/// plane. Every float of `dst`'s first `4·hq·wq` is written; nothing when `x` or `dst` is short.
pub(super) fn split2_scalar(x: &[f32], h: usize, w: usize, dst: &mut [f32]) {
    let (hq, wq) = (h.div_ceil(2), w.div_ceil(2));
    let phase = hq * wq;
    let (Some(x), Some(dst)) = (x.get(..h * w), dst.get_mut(..4 * phase)) else { return };
    for (ph, d) in dst.chunks_exact_mut(phase.max(1)).enumerate() {
        let (py, px) = (ph / 2, ph % 2);
        for (i, row) in d.chunks_exact_mut(wq.max(1)).enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                let (iy, ix) = (2 * i + py, 2 * j + px);
                *v = if iy < h && ix < w { x[iy * w + ix] } else { 0.0 };
            }
        }
    }
}

/// [`Micro::evens`]'s definition, and the tail of its SIMD loops.
#[inline]
pub(super) fn evens_scalar(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src.iter().step_by(2)) {
        *d = *s;
    }
}

/// [`Micro::gather_rows`]'s definition, and the loop of CPUs without a gather instruction.
#[cfg(any(target_arch = "aarch64", test))]
#[inline]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))] // its tests need a SIMD tier
pub(super) fn gather_rows_scalar(dst: &mut [f32], src: &[f32], idx: &[i32; NR], rows: &[(i32, u16)]) {
    for (row, &(off, mask)) in dst.chunks_exact_mut(NR).zip(rows) {
        for (j, (d, &i)) in row.iter_mut().zip(idx).enumerate() {
            let at = i.wrapping_add(off);
            *d = match src.get(at as usize) {
                Some(&v) if mask >> j & 1 == 1 && at >= 0 => v,
                _ => 0.0,
            };
        }
    }
}

/// [`gather_rows_scalar`] with `idx[j] = base + j`.
#[cfg(any(target_arch = "aarch64", test))]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))] // its tests need a SIMD tier
pub(super) fn load_rows_scalar(dst: &mut [f32], src: &[f32], base: i32, rows: &[(i32, u16)]) {
    let mut idx = [0i32; NR];
    for (j, v) in idx.iter_mut().enumerate() {
        *v = base.wrapping_add(j as i32);
    }
    gather_rows_scalar(dst, src, &idx, rows)
}

/// Dense with f32 weights `w` (`[n, k]`) on `rows` input rows `x` (`[rows, k]`): `out`
/// (`[rows, n]`) becomes `act(bias + x · Wᵀ)`. Errors when a slice is too short.
#[allow(clippy::too_many_arguments)]
pub(super) fn dense<M: Micro>(
    mk: M,
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[f32],
    n: usize,
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
) -> Result<(), OpError> {
    if w.len() < n * k || x.len() < rows * k || out.len() < rows * n {
        return Err(OpError::ShapeMismatch);
    }
    for r in 0..rows {
        let xr = &x[r * k..(r + 1) * k];
        let or = &mut out[r * n..(r + 1) * n];
        let mut j = 0;
        while j + 8 <= n {
            let d = mk.dot8(core::array::from_fn(|i| &w[(j + i) * k..]), xr);
            or[j..j + 8].copy_from_slice(&d);
            j += 8;
        }
        while j + 4 <= n {
            let d = mk.dot4([&w[j * k..], &w[(j + 1) * k..], &w[(j + 2) * k..], &w[(j + 3) * k..]], xr);
            or[j..j + 4].copy_from_slice(&d);
            j += 4;
        }
        for (jj, o) in or.iter_mut().enumerate().skip(j) {
            *o = mk.dot(&w[jj * k..(jj + 1) * k], xr);
        }
        // Bias read a run at a time (one `View::get` per output costs more than its add).
        let mut bb = [0.0f32; 64];
        for (c, chunk) in or.chunks_mut(bb.len()).enumerate() {
            let bb = &mut bb[..chunk.len()];
            match bias {
                Some(b) => b.read_into(c * 64, bb),
                None => bb.fill(0.0),
            }
            for (o, &bv) in chunk.iter_mut().zip(bb.iter()) {
                *o = act.apply(*o + bv);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::Operand;
    use crate::op::{Activation, ConvAttrs, Op};
    use crate::view::View;
    use proptest::prelude::*;

    /// Conv `g` (group 1, no dilation, padding `pt`, `pl` on both sides) with activation
    /// `ACTS[act]` (or a Threshold for 3) through this CPU's AVX-512 tiles: bit-identical to the
    /// buffered AVX2 tiles, and both to the f64 definition within 1e-5.
    #[cfg(target_arch = "x86_64")]
    fn fast_matches_buffered(g: &super::super::conv::Geom, act: usize, seed: u64) -> Result<(), TestCaseError> {
        let (c, h, w, m, k) = (g.c, g.h, g.w, g.m, g.kh);
        let x = data(c * h * w, seed);
        let wt = data(m * c * k * g.kw, seed + 1);
        let b = data(m, seed + 2);
        let act = [ACTS[0], ACTS[1], ACTS[2], Activation::Threshold { alpha: 0.1 }][act];
        if let Some(f) = super::super::x86::Fma::detect() {
            let run = |mk: super::super::x86::Fma| {
                let mut out = vec![f32::NAN; m * g.oh * g.ow];
                super::conv(mk, g, &x, &wt, Some(View::F32(&b)), act, &mut out).unwrap();
                out
            };
            let (fast, buffered) = (run(f), run(f.avx2_only()));
            prop_assert_eq!(fast.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), buffered.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            let (pt, pl) = (g.pt as u32, g.pl as u32);
            let attrs = ConvAttrs { group: 1, stride: [g.sh as u32, g.sw as u32], dilation: [1; 2], pads: [pt, pl, pt, pl], act };
            assert_conv_close(&fast, &x, &[1, c, h, w], &wt, &[m, c, k, g.kw], Some(&b), &attrs, &[1, m, g.oh, g.ow], 1e-5);
        }
        Ok(())
    }

    /// Every SIMD tier's [`Micro::gather_rows`] on `src`, `idx`, `rows`: bit for bit
    /// [`gather_rows_scalar`].
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn gathers_match_scalar(src: &[f32], idx: &[i32; 16], rows: &[(i32, u16)]) -> Result<(), TestCaseError> {
        let mut want = vec![f32::NAN; 16 * rows.len()];
        super::gather_rows_scalar(&mut want, src, idx, rows);
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        #[cfg(target_arch = "x86_64")]
        if let Some(f) = super::super::x86::Fma::detect() {
            for mk in [f, f.avx2_only()] {
                let mut got = vec![f32::NAN; 16 * rows.len()];
                mk.gather_rows(&mut got, src, idx, rows);
                prop_assert_eq!(bits(&got), bits(&want));
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            let mut got = vec![f32::NAN; 16 * rows.len()];
            super::super::neon::Neon.gather_rows(&mut got, src, idx, rows);
            prop_assert_eq!(bits(&got), bits(&want));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(200)))]
        /// The tiled Conv (used whenever a group has 4+ filters on a SIMD CPU) against the
        /// f64 definition: ragged pixel and filter tails, K over one panel, strides, dilation,
        /// padding, groups, 1-D.
        #[test]
        fn tiled_conv_matches_naive(c_per in 1usize..40, mg in 4usize..15, groups in 1usize..3, h in 1usize..12, wd in 1usize..21,
                                   k in 1usize..4, s in 1usize..3, d in 1usize..3, p in 0usize..3, one_d in any::<bool>(),
                                   act in 0u8..3, seed in 0u64..1000) {
            let (kh, sh, dh, ph, hh) = if one_d { (1, 1, 1, 0, 1) } else { (k, s, d, p, h) };
            prop_assume!(hh + 2 * ph > (kh - 1) * dh && wd + 2 * p > (k - 1) * d);
            let (c, m) = (c_per * groups, mg * groups);
            let attrs = ConvAttrs {
                group: groups as u32,
                stride: [sh as u32, s as u32],
                dilation: [dh as u32, d as u32],
                pads: [ph as u32, p as u32, ph as u32, p as u32],
                act: ACTS[act as usize],
            };
            if one_d {
                check_conv(&[1, c, wd], &[m, c_per, k], attrs, seed);
            } else {
                check_conv(&[1, c, hh, wd], &[m, c_per, kh, k], attrs, seed);
            }
        }

        /// The gathers (x86: AVX-512 and AVX2 masked gathers; NEON: rows inside the source
        /// without per-lane bounds tests) against their definition, with lanes masked off,
        /// negative and past the end; `near` keeps the indices close, so whole rows lie inside.
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        #[test]
        fn gather_rows_match_scalar(len in 0usize..200, idx in proptest::array::uniform16(-50i32..250), near in any::<bool>(),
                                    rows in proptest::collection::vec((-100i32..100, any::<u16>()), 0..5), seed in 0u64..1000) {
            let src = data(len, seed);
            let idx = if near { idx.map(|i| i.rem_euclid(40)) } else { idx };
            let rows: Vec<(i32, u16)> = if near { rows.iter().map(|&(o, m)| (o.abs(), m)).collect() } else { rows };
            gathers_match_scalar(&src, &idx, &rows)?;
        }

        /// The gathers on tiles of a few runs of consecutive indices (a stride-1 Conv whose
        /// output rows are narrower than a tile; AVX-512 loads each run), runs partly or wholly
        /// outside the source included.
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        #[test]
        fn gather_rows_in_runs_match_scalar(len in 0usize..200, runs in proptest::collection::vec((1usize..9, -40i32..220), 1..9),
                                            rows in proptest::collection::vec((-60i32..60, any::<u16>()), 0..5), seed in 0u64..1000) {
            let src = data(len, seed);
            let mut idx = [0i32; 16];
            let mut j = 0;
            for &(n, start) in runs.iter().cycle().take(16) {
                for k in 0..n {
                    if j < 16 {
                        idx[j] = start + k as i32;
                        j += 1;
                    }
                }
            }
            gathers_match_scalar(&src, &idx, &rows)?;
        }

        /// Every SIMD tier's even-lane copy against its definition, with ragged lengths on
        /// both sides.
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        #[test]
        fn evens_match_scalar(n in 0usize..80, len in 0usize..170, seed in 0u64..1000) {
            let src = data(len, seed);
            let mut want = vec![f32::NAN; n];
            super::evens_scalar(&mut want, &src);
            #[cfg(target_arch = "x86_64")]
            let tiers = super::super::x86::Fma::detect().map(|f| [f, f.avx2_only()]).into_iter().flatten();
            #[cfg(target_arch = "aarch64")]
            let tiers = [super::super::neon::Neon];
            for mk in tiers {
                let mut got = vec![f32::NAN; n];
                mk.evens(&mut got, &src);
                prop_assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
        }

        /// The masked contiguous loads (x86: AVX-512 and AVX2 masks; NEON: whole loads and lane
        /// selects) against their definition, with lanes masked off, before the start and past
        /// the end.
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        #[test]
        fn load_rows_match_scalar(len in 0usize..200, base in -50i32..250,
                                  rows in proptest::collection::vec((-100i32..100, any::<u16>()), 0..5), seed in 0u64..1000) {
            let src = data(len, seed);
            let mut want = vec![f32::NAN; 16 * rows.len()];
            super::load_rows_scalar(&mut want, &src, base, &rows);
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            #[cfg(target_arch = "x86_64")]
            if let Some(f) = super::super::x86::Fma::detect() {
                for mk in [f, f.avx2_only()] {
                    let mut got = vec![f32::NAN; 16 * rows.len()];
                    mk.load_rows(&mut got, &src, base, &rows);
                    prop_assert_eq!(bits(&got), bits(&want));
                }
            }
            #[cfg(target_arch = "aarch64")]
            {
                let mut got = vec![f32::NAN; 16 * rows.len()];
                super::super::neon::Neon.load_rows(&mut got, &src, base, &rows);
                prop_assert_eq!(bits(&got), bits(&want));
            }
        }

        /// The AVX-512 stride-2 row loads against the gather's definition (indices two apart),
        /// with lanes masked off, before the start and past the end; CPUs without the kernel
        /// write nothing.
        #[cfg(target_arch = "x86_64")]
        #[test]
        fn load_rows2_match_scalar(len in 0usize..200, base in -50i32..250,
                                   rows in proptest::collection::vec((-100i32..100, any::<u16>()), 0..40), seed in 0u64..1000) {
            let src = data(len, seed);
            let idx: [i32; 16] = core::array::from_fn(|j| base.wrapping_add(2 * j as i32));
            let mut want = vec![f32::NAN; 16 * rows.len()];
            super::gather_rows_scalar(&mut want, &src, &idx, &rows);
            if let Some(f) = super::super::x86::Fma::detect() {
                let mut got = vec![f32::NAN; 16 * rows.len()];
                if f.load_rows2(&mut got, &src, base, &rows) {
                    prop_assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
                } else {
                    prop_assert!(got.iter().all(|v| v.is_nan()));
                }
                let mut none = vec![f32::NAN; 16 * rows.len()];
                prop_assert!(!f.avx2_only().load_rows2(&mut none, &src, base, &rows) && none.iter().all(|v| v.is_nan()));
            }
        }

        /// The four-run row loads (AVX-512 and AVX2 tiers) against the gather's definition
        /// (`idx[j] = base + (j / 4)·stride + j % 4`), bit for bit, with lanes masked off (over
        /// NaN-free data whose masked-off floats must come out +0.0); a batch with a row whose
        /// runs leave `src` is refused with nothing written.
        #[cfg(target_arch = "x86_64")]
        #[test]
        fn load_rows4_match_scalar(len in 0usize..300, base in -20i32..150, stride in 5i32..40,
                                   rows in proptest::collection::vec((-30i32..100, prop_oneof![Just(u16::MAX), any::<u16>()]), 0..40),
                                   seed in 0u64..1000) {
            let src = data(len, seed);
            let idx: [i32; 16] = core::array::from_fn(|j| base + (j / 4) as i32 * stride + (j % 4) as i32);
            let mut want = vec![f32::NAN; 16 * rows.len()];
            super::gather_rows_scalar(&mut want, &src, &idx, &rows);
            if let Some(f) = super::super::x86::Fma::detect() {
                let inside = rows.iter().all(|&(off, _)| base + off >= 0 && ((base + off + 3 * stride + 4) as usize) <= len);
                for f in [f, f.avx2_only()] {
                    let mut got = vec![f32::NAN; 16 * rows.len()];
                    let done = f.load_rows4(&mut got, &src, base, stride, &rows);
                    prop_assert_eq!(done, inside);
                    if done {
                        prop_assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
                    } else {
                        prop_assert!(got.iter().all(|v| v.is_nan()));
                    }
                }
            }
        }

        /// [`Micro::evens_rows`] against [`evens_scalar`] row by row: row tails of every length,
        /// rows longer than a block, strides at and past the rows' reach; it writes nothing when it
        /// declines (a row past either slice, or a tier without the loop), and only the rows'
        /// values otherwise.
        #[cfg(target_arch = "x86_64")]
        #[test]
        fn evens_rows_match_scalar(rows in 1usize..6, n in 1usize..40, dgap in 0usize..5, sgap in 0usize..9, short in 0usize..3, seed in 0u64..1000) {
            let (ds, ss) = (n + dgap, 2 * n - 1 + sgap);
            let src = data(((rows - 1) * ss + 2 * n - 1).saturating_sub(short), seed);
            let mut want = vec![f32::NAN; (rows - 1) * ds + n];
            for r in 0..rows {
                super::evens_scalar(&mut want[r * ds..r * ds + n], &src[(r * ss).min(src.len())..]);
            }
            if let Some(f) = super::super::x86::Fma::detect() {
                for mk in [f, f.avx2_only()] {
                    let mut got = vec![f32::NAN; want.len()];
                    let done = mk.evens_rows(&mut got, &src, rows, n, ds, ss);
                    prop_assert_eq!(done, mk.has_avx512() && short == 0);
                    if done {
                        prop_assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
                    } else {
                        prop_assert!(got.iter().all(|v| v.is_nan()));
                    }
                }
            }
        }

        /// Every SIMD tier's stride-2 phase split against its definition: odd and even sides,
        /// rows longer than a block, every float written.
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        #[test]
        fn split2_matches_scalar(h in 1usize..9, w in 1usize..75, seed in 0u64..1000) {
            let x = data(h * w, seed);
            let n = 4 * h.div_ceil(2) * w.div_ceil(2);
            let mut want = vec![f32::NAN; n];
            super::split2_scalar(&x, h, w, &mut want);
            prop_assert!(want.iter().all(|v| !v.is_nan()));
            #[cfg(target_arch = "x86_64")]
            let tiers = super::super::x86::Fma::detect().map(|f| [f, f.avx2_only()]).into_iter().flatten();
            #[cfg(target_arch = "aarch64")]
            let tiers = [super::super::neon::Neon];
            for mk in tiers {
                let mut got = vec![f32::NAN; n];
                mk.split2(&x, h, w, &mut got);
                prop_assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
        }

        /// Stride-2 Convs on their input's stride phases ([`super::Phases`]: odd and even
        /// sides, symmetric and "same" padding, dilation, filters and channels past a tile,
        /// planes past a panel): every SIMD tier bit-identical to the same tier on the planes,
        /// and to the f64 definition within 1e-6 of the terms' summed magnitudes.
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        #[test]
        fn phases_match_planes(c in 1usize..24, m in 1usize..30, h in 1usize..20, w in 1usize..40, k in 2usize..6,
                               one_row in any::<bool>(), same in any::<bool>(), d in 1usize..3, act in 0usize..3, seed in 0u64..1000) {
            // "Same" padding (`⌈w / 2⌉` outputs, the extra pad at the end) or symmetric padding
            // of an odd kernel; one kernel row (1 × k kernels) or square.
            let s = 2;
            let (kh, sh, dh) = if one_row { (1, s, 1) } else { (k, s, d) };
            let span = |k: usize, d: usize| (k - 1) * d + 1;
            let pads = |n: usize, k: usize, d: usize, s: usize| -> (usize, usize) {
                if same {
                    let total = ((n.div_ceil(s) - 1) * s + span(k, d)).saturating_sub(n);
                    (total / 2, total - total / 2)
                } else {
                    (span(k, d) / 2, span(k, d) / 2)
                }
            };
            let ((pt, pb), (pl, pr)) = (pads(h, kh, dh, sh), pads(w, k, d, s));
            prop_assume!(h + pt + pb >= span(kh, dh) && w + pl + pr >= span(k, d));
            let (oh, ow) = ((h + pt + pb - span(kh, dh)) / sh + 1, (w + pl + pr - span(k, d)) / s + 1);
            let g = super::super::conv::Geom { c, h, w, m, cg: c, mg: m, kh, kw: k, oh, ow, sh, sw: s, dh, dw: d, pt, pl };
            let q = super::Phases::of(&g);
            prop_assume!(q.is_some() && pb < span(kh, dh) && pr < span(k, d));
            let q = q.unwrap();
            let x = data(c * h * w, seed);
            let wt = data(m * c * kh * k, seed + 1);
            let b = data(m, seed + 2);
            let act = [ACTS[0], ACTS[1], Activation::Threshold { alpha: 0.1 }][act];
            let attrs = ConvAttrs { group: 1, stride: [sh as u32, s as u32], dilation: [dh as u32, d as u32], pads: [pt as u32, pl as u32, pb as u32, pr as u32], act };
            #[cfg(target_arch = "x86_64")]
            let tiers = super::super::x86::Fma::detect().map(|f| [f, f.avx2_only()]).into_iter().flatten();
            #[cfg(target_arch = "aarch64")]
            let tiers = [super::super::neon::Neon];
            for mk in tiers {
                let mut buf = vec![0.0f32; c * q.channel(&g)];
                super::split_phases(mk, &g, q, &x, &mut buf);
                let mut got = vec![f32::NAN; m * oh * ow];
                super::conv_in(mk, &g, Some(q), &buf, &wt, Some(View::F32(&b)), act, &mut got).unwrap();
                let mut planes = vec![f32::NAN; m * oh * ow];
                super::conv(mk, &g, &x, &wt, Some(View::F32(&b)), act, &mut planes).unwrap();
                prop_assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), planes.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
                // Rounding grows with the sum of the terms' magnitudes (up to 23 · 25 of them here).
                assert_conv_close(&got, &x, &[1, c, h, w], &wt, &[m, c, kh, k], Some(&b), &attrs, &[1, m, oh, ow], 1e-6);
            }
        }

        /// Convs with four-pixel-wide output rows at column stride 1 (hello_edge_cnn's 10 × 4
        /// stride-2 × 1 layer: panels from the four-run row loads), any row stride and padding:
        /// AVX-512 bit-identical to the buffered AVX2 tiles, and both to the f64 definition.
        #[cfg(target_arch = "x86_64")]
        #[test]
        fn four_wide_tiles_match(c in 1usize..24, m in 1usize..20, h in 1usize..30, k in 1usize..5, sh in 1usize..3,
                                 p in 0usize..2, act in 0usize..4, seed in 0u64..1000) {
            prop_assume!(3 + k > 2 * p && h + 2 * p >= k);
            let w = 3 + k - 2 * p;
            let (oh, ow) = ((h + 2 * p - k) / sh + 1, 4);
            let g = super::super::conv::Geom { c, h, w, m, cg: c, mg: m, kh: k, kw: k, oh, ow, sh, sw: 1, dh: 1, dw: 1, pt: p, pl: p };
            fast_matches_buffered(&g, act, seed)?;
        }

        /// Convs whose output rows hold whole pixel tiles at column stride 2 (panels from the
        /// stride-2 row loads) and 1 × 1 stride-1 Convs with a partial last pair (read in place,
        /// masked): AVX-512 bit-identical to the buffered AVX2 tiles, and both to the f64
        /// definition.
        #[cfg(target_arch = "x86_64")]
        #[test]
        fn wide_stride2_and_direct_tails_match(c in 1usize..24, m in 1usize..20, h in 1usize..6, w in 31usize..80, k in 1usize..4,
                                                p in 0usize..2, direct in any::<bool>(), act in 0usize..4, seed in 0u64..1000) {
            let (k, s, p) = if direct { (1, 1, 0) } else { (k, 2, p) };
            prop_assume!(h + 2 * p >= k);
            let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
            let g = super::super::conv::Geom { c, h, w, m, cg: c, mg: m, kh: k, kw: k, oh, ow, sh: s, sw: s, dh: 1, dw: 1, pt: p, pl: p };
            fast_matches_buffered(&g, act, seed)?;
        }

        /// The AVX-512 tiles (pairs read through a `RowTab` or in place, bias and activation
        /// in registers, partial pairs masked) against the buffered AVX2 tiles on gathered
        /// panels: bit-identical outputs on stride-1 Convs with padding and dilation (1×1
        /// unpadded ones are direct), planes of several pairs (rows reused with a shift, rebuilt
        /// where the padding changes the lanes), K over one chunk, every activation.
        #[cfg(target_arch = "x86_64")]
        #[test]
        fn tab_pairs_match_panels(c in 1usize..40, m in 1usize..20, h in 1usize..20, w in 1usize..40, k in 1usize..4,
                                  d in 1usize..3, p in 0usize..3, act in 0usize..4, bias in any::<bool>(), seed in 0u64..1000) {
            prop_assume!(h + 2 * p > (k - 1) * d && w + 2 * p > (k - 1) * d);
            let (oh, ow) = (h + 2 * p - (k - 1) * d, w + 2 * p - (k - 1) * d);
            let g = super::super::conv::Geom { c, h, w, m, cg: c, mg: m, kh: k, kw: k, oh, ow, sh: 1, sw: 1, dh: d, dw: d, pt: p, pl: p };
            let x = data(c * h * w, seed);
            let wt = data(m * c * k * k, seed + 1);
            let b = data(m, seed + 2);
            if let Some(f) = super::super::x86::Fma::detect() {
                let act = [ACTS[0], ACTS[1], ACTS[2], Activation::Threshold { alpha: 0.1 }][act];
                let run = |mk: super::super::x86::Fma| {
                    let mut out = vec![f32::NAN; m * oh * ow];
                    super::conv(mk, &g, &x, &wt, bias.then_some(View::F32(&b)), act, &mut out).unwrap();
                    out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                };
                prop_assert_eq!(run(f), run(f.avx2_only()));
            }
        }

        /// Dense through the SIMD dot products against the f64 definition (ragged rows and K).
        #[test]
        fn simd_dense_matches_naive(rows in 1usize..4, k in 1usize..300, n in 1usize..11, seed in 0u64..1000) {
            let x = data(rows * k, seed);
            let w = data(n * k, seed + 1);
            let b = data(n, seed + 2);
            let op = Op::Dense { act: Activation::Relu };
            let ops = [
                Operand { view: View::F32(&x), shape: sh(&[rows, k]) },
                Operand { view: View::F32(&w), shape: sh(&[n, k]) },
                Operand { view: View::F32(&b), shape: sh(&[n]) },
            ];
            let (got, _) = run_ops(&op, &ops).unwrap();
            assert_dense_close(&got, &x, rows, k, &w, n, Some(&b), Activation::Relu, 1e-5);
        }
    }
}
