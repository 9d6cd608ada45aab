//! Winograd F(2 × 2, 3 × 3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016) for group-1 3 × 3 Convs at stride 1 without dilation, on the AVX2 tier.
//!
//! Every 2 × 2 block of outputs ("tile") of one filter is `Aᵀ [Σ_c U_c ⊙ V_c] A`, where
//! `U_c = G g_c Gᵀ` is filter channel `c` (3 × 3) transformed to 4 × 4 and `V_c = Bᵀ d_c B` is the
//! tile's 4 × 4 input patch of channel `c` (zeros in the padding) transformed: 16 products
//! per tile and channel instead of the direct Conv's 36, i.e. 2.25× fewer multiply-adds, plus
//! transforms whose cost falls with the channel and filter counts.
//!
//! Guarantees:
//! - The outputs are the Conv's up to rounding (the sums are taken in another order than the
//!   direct Conv's and pass through the transforms' additions), tested against the f64
//!   definition. They do not depend on the filter count, on which filters run together or
//!   on how tiles are chunked: filter `f`'s outputs are a function of its own weights, the
//!   input and its bias only, each of its 16 per-tile sums taken over `c` in order. Removing
//!   filters, or input channels whose weights are all 0, therefore leaves the other outputs
//!   bit for bit as they were (on finite inputs).
//! - No allocation: the transformed input of a chunk of tiles, the transformed weights of a
//!   block of filters and the products of six filters live on the stack (at most
//!   [`STACK_BYTES`] together), which bounds the channel count ([`plan`]).
// The SIMD loops are unsafe code, each use with its SAFETY note (as in `kernels::x86`).
#![allow(unsafe_code)]
use super::conv::Geom;
use super::winograd_plan::{for_rows, kernel_transform, plan, segments, Plan, SKEW, SUB, TC_MAX, U_MAX, V_MAX};
use super::x86::{act_ymm, store_first, transpose8, Fma};
use crate::op::Activation;
use core::arch::x86_64::*;
use core::mem::MaybeUninit;

/// Most input channels for which the AVX-512 tier keeps its direct Conv: measured on an AMD
/// Zen 4 (two 256-bit FMA pipes, 512-bit operations in two halves), one layer of 16 filters on
/// 32 × 32, median µs direct / Winograd: 3 channels 9.3 / 13.4, 6: 17.5 / 18.7, 8: 23.1 / 23.7,
/// 12: 34.1 / 30.9, 16: 47.8 / 38.5; ResNet-8's 16-, 32- and 64-channel layers 47–48 / 31–38.
/// A CPU with two 512-bit FMA pipes (Intel server parts) has not been measured.
pub(super) const AVX512_MAX_DIRECT_C: usize = 8;

/// A buffer on cache-line boundaries (its vectors never split a line).
#[repr(C, align(64))]
struct Lines<const N: usize>([MaybeUninit<f32>; N]);

/// The stack the buffers take (bytes): 153 KiB (docs/ARCHITECTURE.md, host stack).
const STACK_BYTES: usize = 4 * (V_MAX + U_MAX + 32 * SKEW + SUB * 16 * TC_MAX);
const _: () = assert!(STACK_BYTES <= 156 * 1024, "the buffers outgrow the documented stack");

impl Fma {
    /// A group-1 3 × 3 Conv at stride 1 without dilation, on the AVX2 tier, through Winograd
    /// F(2 × 2, 3 × 3) (the module's guarantees): `x` holds the `c` input planes, `w` the
    /// filters (`m × c × 3 × 3`), `bias` is empty or `m` long, `act` is applied to each output.
    /// False on the AVX-512 tier for layers of at most [`AVX512_MAX_DIRECT_C`] channels (its
    /// direct Conv is faster there), and on layers or slice lengths it does not take (nothing
    /// written); also false, after writing `out`, when an output before
    /// the activation is not finite (an infinite or NaN input or weight, or an overflow): the
    /// transforms' subtractions can turn ±Inf into NaN or reach outputs the definition keeps
    /// finite, so the caller then runs a kernel that follows the definition's IEEE semantics
    /// and writes every output again.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn conv_winograd(self, g: &Geom, x: &[f32], w: &[f32], bias: &[f32], act: Activation, out: &mut [f32]) -> bool {
        let Some(p) = plan(g) else { return false };
        if (self.has_avx512() && g.c <= AVX512_MAX_DIRECT_C)
            || x.len() < g.c * g.h * g.w
            || w.len() < g.m * g.c * 9
            || out.len() < g.m * g.oh * g.ow
            || !(bias.is_empty() || bias.len() >= g.m)
        {
            return false;
        }
        // SAFETY: AVX2 + FMA detected (`self`); the slices hold the layer (checked above).
        unsafe { conv3x3(&p, g, x, w, bias, act, out) }
    }
}

/// [`Fma::conv_winograd`]'s body: chunks of tiles, each transformed once, then per block of
/// filters the products and the output transform. True when every output before the
/// activation is finite. The caller guarantees the bounds.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn conv3x3(p: &Plan, g: &Geom, x: &[f32], w: &[f32], bias: &[f32], act: Activation, out: &mut [f32]) -> bool {
    let c = g.c;
    let mut vbuf = Lines([MaybeUninit::<f32>::uninit(); V_MAX + 16 * SKEW]);
    let mut ubuf = Lines([MaybeUninit::<f32>::uninit(); U_MAX + 16 * SKEW]);
    let mut mbuf = Lines([MaybeUninit::<f32>::uninit(); SUB * 16 * TC_MAX]);
    let (v, u, mm) = (vbuf.0.as_mut_ptr().cast::<f32>(), ubuf.0.as_mut_ptr().cast::<f32>(), mbuf.0.as_mut_ptr().cast::<f32>());
    let split_filters = p.fb < g.m;
    // 0 in every lane while every output before the activation is finite, else NaN.
    let mut finite = _mm256_setzero_ps();
    if !split_filters {
        // SAFETY: 16 · (m · c + SKEW) ≤ U_MAX + 16 · SKEW floats (`plan`); the weights hold m · c · 9.
        unsafe { transform_weights(w.as_ptr(), g.m * c, g.m * c + SKEW, u) };
    }
    let mut t0 = 0;
    while t0 < p.t {
        let nt = (p.t - t0).min(p.tc);
        let np = nt.div_ceil(16) * 16;
        // Positions `vs` floats apart: a multiple of 4 KiB would alias the rows' stores.
        let vs = c * np + SKEW;
        // SAFETY: 16 · (c · np + SKEW) ≤ V_MAX + 16 · SKEW floats; `x` holds the layer.
        unsafe { transform_input(p, g, x.as_ptr(), t0, nt, np, vs, v) };
        let mut f0 = 0;
        while f0 < g.m {
            let nf = (g.m - f0).min(p.fb);
            if split_filters {
                // SAFETY: 16 · (nf · c + SKEW) ≤ U_MAX + 16 · SKEW; filters f0 .. f0 + nf exist.
                unsafe { transform_weights(w.as_ptr().add(f0 * c * 9), nf * c, nf * c + SKEW, u) };
            }
            let mut s = 0;
            while s < nf {
                let r = (nf - s).min(SUB);
                // SAFETY: the block's weights (pitch nf · c per position) and the chunk's
                // input (rows of np, positions vs apart) are written above; `mm` holds 16 · SUB · np floats.
                unsafe {
                    products(r, c, u.add(s * c), nf * c + SKEW, v, np, vs, mm);
                    let fi = f0 + s;
                    let b = if bias.is_empty() { None } else { Some(&bias[fi..fi + r]) };
                    let f = outputs(p, g, r, b, act, mm, np, t0, nt, out.as_mut_ptr().add(fi * g.oh * g.ow));
                    finite = _mm256_add_ps(finite, f);
                }
                s += r;
            }
            f0 += nf;
        }
        t0 += nt;
    }
    _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(finite, finite)) == 0
}

/// `u[ξ · up + q] = (G g_q Gᵀ)[ξ]` for the `n` consecutive 3 × 3 kernels `g_q` at `w` (9 floats
/// each), `ξ = 4·row + column`, `G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]`: eight kernels at a time
/// transposed into registers, the rest one by one with the same operations in the same order.
/// The caller guarantees `9n` floats at `w`, `up ≥ n` and `16 · up` writable at `u`.
#[target_feature(enable = "avx2,fma")]
unsafe fn transform_weights(w: *const f32, n: usize, up: usize, u: *mut f32) {
    let mut q = 0;
    while q + 8 <= n {
        // SAFETY: kernels q .. q + 8 lie in the `9n` floats (taps 0–7 loaded as 8 floats, tap 8
        // one by one).
        let g: [__m256; 9] = unsafe {
            let b = w.add(9 * q);
            let r: [__m256; 8] = core::array::from_fn(|j| _mm256_loadu_ps(b.add(9 * j)));
            let t = transpose8(r);
            let g8 = _mm256_setr_ps(*b.add(8), *b.add(17), *b.add(26), *b.add(35), *b.add(44), *b.add(53), *b.add(62), *b.add(71));
            [t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], g8]
        };
        let uv =
            kernel_transform(g, _mm256_set1_ps(0.5), |a, b| _mm256_add_ps(a, b), |a, b| _mm256_sub_ps(a, b), |a, b| _mm256_mul_ps(a, b));
        for (xi, v) in uv.iter().enumerate() {
            // SAFETY: `ξ · up + q + 8 ≤ 15 · up + n ≤ 16 · up`.
            unsafe { _mm256_storeu_ps(u.add(xi * up + q), *v) };
        }
        q += 8;
    }
    while q < n {
        // SAFETY: kernel q lies in the `9n` floats.
        let g: [f32; 9] = core::array::from_fn(|k| unsafe { *w.add(9 * q + k) });
        let uv = kernel_transform(g, 0.5, |a, b| a + b, |a, b| a - b, |a, b| a * b);
        for (xi, v) in uv.iter().enumerate() {
            // SAFETY: `ξ · up + q < 16 · up`.
            unsafe { *u.add(xi * up + q) = *v };
        }
        q += 1;
    }
}

/// `v[ξ · vs + ch · np + i] = (Bᵀ d B)[ξ]` for tile `t0 + i` (`i < nt`) of channel `ch`, `d` its
/// 4 × 4 input patch (0 outside the planes), `Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]`; 0 for
/// `nt ≤ i < np`. Eight tiles of a tile row at a time, all in registers: the 24 input columns
/// under them from each of the four input rows (masked where they leave the row), the row
/// transform, its even and odd columns and those one tile on, then the column transform.
/// The caller guarantees the bounds (`x` holds the layer's input, `16 · vs` floats at `v`,
/// `vs ≥ c · np`).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn transform_input(p: &Plan, g: &Geom, x: *const f32, t0: usize, nt: usize, np: usize, vs: usize, v: *mut f32) {
    let (c, tw) = (g.c, p.tw);
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let (wv, neg) = (_mm256_set1_epi32(g.w as i32), _mm256_set1_epi32(-1));
    let next = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0);
    for (ty, a, bnd) in segments(tw, t0, nt) {
        let mut tx = a;
        while tx < bnd {
            let cnt = (bnd - tx).min(8);
            let tt = ty * tw + tx - t0;
            // Input column of lane 0 of each of the three vectors.
            let col0 = (2 * tx) as isize - g.pl as isize;
            let masks: [__m256i; 3] = core::array::from_fn(|q| {
                let at = _mm256_add_epi32(_mm256_set1_epi32(col0 as i32 + 8 * q as i32), lanes);
                _mm256_and_si256(_mm256_cmpgt_epi32(at, neg), _mm256_cmpgt_epi32(wv, at))
            });
            let iy0 = (2 * ty) as isize - g.pt as isize;
            // Patch row `i` of channel `ch` starts at `src[i] + ch · step[i]`: the input row, or
            // the zeros for rows outside the plane (read at the same offsets, any mask).
            let mut src = [ZEROS.0.as_ptr(); 4];
            let mut step = [0usize; 4];
            for i in 0..4 {
                let iy = iy0 + i as isize;
                if (0..g.h as isize).contains(&iy) {
                    src[i] = x.wrapping_offset(iy * g.w as isize + col0);
                    step[i] = g.h * g.w;
                }
            }
            let zero_rows = src.map(|s| s == ZEROS.0.as_ptr());
            // Whole-vector loads where the 8 columns lie in the row; the third vector's two
            // columns through a mask. Zero rows read the zeros through the same masks.
            let whole = [0, 1].map(|q| col0 + 8 * q >= 0 && col0 + 8 * q + 8 <= g.w as isize);
            let last = _mm256_and_si256(masks[2], _mm256_cmpgt_epi32(_mm256_set1_epi32(2), lanes));
            let grp = Group { src, step, masks: [masks[0], masks[1], last], next, c, vs, np, tt, cnt };
            // SAFETY: the rows' lanes under the masks (or whole vectors where `whole`) lie in
            // their input rows or in the zeros; tiles `tt .. tt + cnt ≤ nt` of each row of `v`.
            unsafe {
                match (whole[0] && !zero_rows.iter().any(|&z| z), whole[1] && !zero_rows.iter().any(|&z| z)) {
                    (true, true) => group_input::<true, true>(&grp, v),
                    (false, true) => group_input::<false, true>(&grp, v),
                    (true, false) => group_input::<true, false>(&grp, v),
                    (false, false) => group_input::<false, false>(&grp, v),
                }
            }
            tx += cnt;
        }
    }
    // Only a chunk shorter than its 16-tile rounding has padding tiles (a call per row else).
    if np > nt {
        for xi in 0..16 {
            for ch in 0..c {
                // SAFETY: the padding tiles `nt .. np` of each row.
                unsafe { core::ptr::write_bytes(v.add(xi * vs + ch * np + nt), 0, np - nt) };
            }
        }
    }
}

/// Zeros that patch rows outside the plane read (24 floats from any of them).
static ZEROS: Lines32 = Lines32([0.0; 32]);

/// [`ZEROS`]' storage.
#[repr(C, align(64))]
struct Lines32([f32; 32]);

/// One group of up to 8 tiles of a tile row for [`group_input`]: patch row `i` of channel `ch`
/// at `src[i] + ch · step[i]` (24 columns, the vectors' lane masks `masks`), the output rows
/// `vs` apart per position, `np` per channel, its tiles at `tt .. tt + cnt`.
struct Group {
    src: [*const f32; 4],
    step: [usize; 4],
    masks: [__m256i; 3],
    next: __m256i,
    c: usize,
    vs: usize,
    np: usize,
    tt: usize,
    cnt: usize,
}

/// [`transform_input`] for one [`Group`], every channel: vector `q < 2` of each patch row read
/// whole when `Wq`, else through its mask; the third always through its mask. The caller
/// guarantees the bounds.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn group_input<const W0: bool, const W1: bool>(gr: &Group, v: *mut f32) {
    // SAFETY: the caller's guarantee.
    unsafe {
        let load = |i: usize, ch: usize| -> [__m256; 3] {
            let s = gr.src[i].wrapping_add(ch * gr.step[i]);
            [
                if W0 { _mm256_loadu_ps(s) } else { _mm256_maskload_ps(s, gr.masks[0]) },
                if W1 { _mm256_loadu_ps(s.wrapping_add(8)) } else { _mm256_maskload_ps(s.wrapping_add(8), gr.masks[1]) },
                _mm256_maskload_ps(s.wrapping_add(16), gr.masks[2]),
            ]
        };
        // Row `k` of `Bᵀ d` (`t`): its even and odd columns, those one tile on, the column
        // transform, stored at position `4k + l` of channel `ch`.
        let emit = |k: usize, ch: usize, t: [__m256; 3]| {
            let e0 = _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(_mm256_shuffle_ps::<0x88>(t[0], t[1]))));
            let o0 = _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(_mm256_shuffle_ps::<0xDD>(t[0], t[1]))));
            let e1 = _mm256_permutevar8x32_ps(_mm256_blend_ps::<1>(e0, t[2]), gr.next);
            let o1 = _mm256_permutevar8x32_ps(_mm256_blend_ps::<1>(o0, _mm256_permute_ps::<1>(t[2])), gr.next);
            let col = [_mm256_sub_ps(e0, e1), _mm256_add_ps(o0, e1), _mm256_sub_ps(e1, o0), _mm256_sub_ps(o0, o1)];
            let o = v.add(4 * k * gr.vs + ch * gr.np + gr.tt);
            for (l, cv) in col.iter().enumerate() {
                store_first(o.add(l * gr.vs), *cv, gr.cnt);
            }
        };
        for ch in 0..gr.c {
            // Bᵀ rows: d0 − d2, d1 + d2, d2 − d1, d1 − d3.
            let (r0, r2) = (load(0, ch), load(2, ch));
            emit(0, ch, core::array::from_fn(|j| _mm256_sub_ps(r0[j], r2[j])));
            let r1 = load(1, ch);
            emit(1, ch, core::array::from_fn(|j| _mm256_add_ps(r1[j], r2[j])));
            emit(2, ch, core::array::from_fn(|j| _mm256_sub_ps(r2[j], r1[j])));
            let r3 = load(3, ch);
            emit(3, ch, core::array::from_fn(|j| _mm256_sub_ps(r1[j], r3[j])));
        }
    }
}

/// `mm[(ξ · SUB + i) · np + j] = Σ_ch u[ξ · up + i · c + ch] · v[ξ · vs + ch · np + j]` for the
/// `r ≤ SUB` filters at `u` (pitch `up` per position `ξ`) and every tile `j < np` (a multiple of
/// 16), each sum over `ch` in order from 0. The caller guarantees the bounds.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn products(r: usize, c: usize, u: *const f32, up: usize, v: *const f32, np: usize, vs: usize, mm: *mut f32) {
    // SAFETY: the caller's guarantee.
    unsafe { for_rows!(r, products_r(c, u, up, v, np, vs, mm)) }
}

/// [`products`] for `R` filters: register tiles of `R` filters × 16 tiles.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn products_r<const R: usize>(c: usize, u: *const f32, up: usize, v: *const f32, np: usize, vs: usize, mm: *mut f32) {
    for xi in 0..16 {
        // SAFETY: the caller's guarantee: position ξ's weights and inputs and products.
        unsafe {
            let (uw, vx) = (u.add(xi * up), v.add(xi * vs));
            let mut j = 0;
            while j < np {
                let mut acc = [[_mm256_setzero_ps(); 2]; R];
                for ch in 0..c {
                    let vp = vx.add(ch * np + j);
                    let b = [_mm256_loadu_ps(vp), _mm256_loadu_ps(vp.add(8))];
                    for (i, a) in acc.iter_mut().enumerate() {
                        let w = _mm256_broadcast_ss(&*uw.add(i * c + ch));
                        a[0] = _mm256_fmadd_ps(w, b[0], a[0]);
                        a[1] = _mm256_fmadd_ps(w, b[1], a[1]);
                    }
                }
                for (i, a) in acc.iter().enumerate() {
                    let o = mm.add((xi * SUB + i) * np + j);
                    _mm256_storeu_ps(o, a[0]);
                    _mm256_storeu_ps(o.add(8), a[1]);
                }
                j += 16;
            }
        }
    }
}

/// The first `cnt ≤ 8` floats at `p` in the low lanes, 0 above (nothing past them read).
#[inline(always)]
unsafe fn load_first(p: *const f32, cnt: usize) -> __m256 {
    // SAFETY: the caller guarantees `cnt` readable floats; masked-off lanes are not accessed.
    unsafe {
        if cnt >= 8 {
            return _mm256_loadu_ps(p);
        }
        let m = _mm256_cmpgt_epi32(_mm256_set1_epi32(cnt as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        _mm256_maskload_ps(p, m)
    }
}

/// Filters `0 .. r` of the products `mm` (tiles `t0 .. t0 + nt` of the layer) to the output
/// planes at `out` (pitch `oh · ow`): `Y = Aᵀ M A` with `Aᵀ = [1 1 1 0; 0 1 −1 −1]`, plus the
/// bias, through `act`, outputs past the plane's last row or column not written. Returns 0 in
/// every lane when every output before the activation is finite, NaN in some lane otherwise.
/// The caller guarantees the bounds.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn outputs(
    p: &Plan,
    g: &Geom,
    r: usize,
    bias: Option<&[f32]>,
    act: Activation,
    mm: *const f32,
    np: usize,
    t0: usize,
    nt: usize,
    out: *mut f32,
) -> __m256 {
    let plane = g.oh * g.ow;
    let mut finite = _mm256_setzero_ps();
    for i in 0..r {
        let bv = _mm256_set1_ps(bias.map_or(0.0, |b| b[i]));
        for (ty, a, bnd) in segments(p.tw, t0, nt) {
            let mut tx = a;
            while tx < bnd {
                let cnt = (bnd - tx).min(8);
                let tt = ty * p.tw + tx - t0;
                // SAFETY: tiles `tt .. tt + cnt ≤ nt` of filter i's 16 rows of products.
                let m: [__m256; 16] = core::array::from_fn(|xi| unsafe { load_first(mm.add((xi * SUB + i) * np + tt), cnt) });
                let s0: [__m256; 4] = core::array::from_fn(|l| _mm256_add_ps(_mm256_add_ps(m[l], m[4 + l]), m[8 + l]));
                let s1: [__m256; 4] = core::array::from_fn(|l| _mm256_sub_ps(_mm256_sub_ps(m[4 + l], m[8 + l]), m[12 + l]));
                for (dy, s) in [s0, s1].iter().enumerate() {
                    let oy = 2 * ty + dy;
                    if oy >= g.oh {
                        continue;
                    }
                    let y0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[0], s[1]), s[2]), bv);
                    let y1 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s[1], s[2]), s[3]), bv);
                    // `y − y` is 0 for a finite `y`, NaN for ±Inf and NaN.
                    finite = _mm256_add_ps(finite, _mm256_add_ps(_mm256_sub_ps(y0, y0), _mm256_sub_ps(y1, y1)));
                    let (y0, y1) = (act_ymm(act, y0), act_ymm(act, y1));
                    let (lo, hi) = (_mm256_unpacklo_ps(y0, y1), _mm256_unpackhi_ps(y0, y1));
                    let first = _mm256_permute2f128_ps::<0x20>(lo, hi);
                    let second = _mm256_permute2f128_ps::<0x31>(lo, hi);
                    let ncols = (2 * cnt).min(g.ow - 2 * tx);
                    // SAFETY: columns `2tx .. 2tx + ncols ≤ ow` of output row `oy` of filter i.
                    unsafe {
                        let o = out.add(i * plane + oy * g.ow + 2 * tx);
                        store_first(o, first, ncols.min(8));
                        if ncols > 8 {
                            store_first(o.add(8), second, ncols - 8);
                        }
                    }
                }
                tx += cnt;
            }
        }
    }
    finite
}

#[cfg(test)]
mod tests {
    use super::super::winograd_plan::checks;
    use super::super::x86::Fma;
    use super::AVX512_MAX_DIRECT_C;
    use proptest::prelude::*;

    /// [`checks::case`] on the tier `f`.
    #[allow(clippy::too_many_arguments)]
    fn case_on(f: Fma, c: usize, m: usize, h: usize, wd: usize, pads: [usize; 4], act: u8, with_bias: bool, seed: u64) -> Option<Vec<f32>> {
        checks::case(&|g, x, w, b, a, o| f.run(|| f.conv_winograd(g, x, w, b, a, o)), c, m, h, wd, pads, act, with_bias, seed)
    }

    /// The AVX2 tier, when this CPU has it.
    fn avx2() -> Option<Fma> {
        Fma::detect().map(Fma::avx2_only)
    }

    /// [`checks::fixed_layers`] on the AVX2 tier; the AVX-512 tier keeps its direct Conv up to
    /// [`AVX512_MAX_DIRECT_C`] channels and takes more.
    #[test]
    fn matches_the_definition_on_fixed_layers() {
        let Some(f) = avx2() else {
            eprintln!("skipped: no AVX2 + FMA");
            return;
        };
        checks::fixed_layers(&|g, x, w, b, a, o| f.run(|| f.conv_winograd(g, x, w, b, a, o)));
        if let Some(f) = Fma::detect().filter(|f| f.has_avx512()) {
            for c in [1, AVX512_MAX_DIRECT_C] {
                assert!(case_on(f, c, 8, 9, 9, [1; 4], 1, true, 5).is_none(), "AVX-512 tier took c={c}");
            }
            for c in [AVX512_MAX_DIRECT_C + 1, 16, 64] {
                assert!(case_on(f, c, 8, 9, 9, [1; 4], 1, true, 5).is_some(), "AVX-512 tier declined c={c}");
            }
        }
    }

    /// Small layers for Miri (CI's list): masked loads at both edges of a row, rows of the
    /// patch outside the plane, odd planes, a group of fewer than 8 tiles.
    #[test]
    fn small_layers_match_the_definition() {
        let Some(f) = avx2() else {
            eprintln!("skipped: no AVX2 + FMA");
            return;
        };
        for (c, m, h, wd, pads, act) in [(2, 3, 5, 19, [1; 4], 1), (1, 2, 3, 4, [0, 1, 0, 0], 0)] {
            assert!(case_on(f, c, m, h, wd, pads, act, true, 3).is_some(), "declined c={c} m={m} {h}x{wd}");
        }
    }

    /// [`checks::independent_of_other_filters_and_zero_channels`] on the AVX2 tier.
    #[test]
    fn outputs_do_not_depend_on_the_other_filters_or_zero_channels() {
        let Some(f) = avx2() else { return };
        checks::independent_of_other_filters_and_zero_channels(&|g, x, w, b, a, o| f.run(|| f.conv_winograd(g, x, w, b, a, o)));
    }

    /// [`checks::non_finite_inputs_fall_back`] on the AVX2 tier.
    #[test]
    fn non_finite_inputs_fall_back_to_the_definition() {
        let Some(f) = avx2() else { return };
        checks::non_finite_inputs_fall_back(&|g, x, w, b, a, o| f.run(|| f.conv_winograd(g, x, w, b, a, o)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Random layers: channel and filter counts across the register tiles and filter
        /// blocks, planes from 1 × 1 to wider than a chunk of tiles, any padding.
        #[test]
        fn matches_the_definition(c in 1usize..=64, m in 1usize..20, h in 1usize..14, wd in 1usize..40,
                                  pads in proptest::array::uniform4(0usize..3), act in 0u8..3, with_bias in any::<bool>(), seed in 0u64..1000) {
            prop_assume!(h + pads[0] + pads[2] >= 3 && wd + pads[1] + pads[3] >= 3);
            if let Some(f) = avx2() {
                prop_assert!(case_on(f, c, m, h, wd, pads, act, with_bias, seed).is_some());
            }
        }
    }
}
