//! Winograd F(2 × 2, 3 × 3) (Lavin and Gray 2016) for group-1 3 × 3 Convs at stride 1 without
//! dilation, on aarch64 NEON: the algorithm of the x86-64 kernel (`winograd`), with 4-lane
//! registers. Every 2 × 2 block of outputs ("tile") of one filter is `Aᵀ [Σ_c U_c ⊙ V_c] A`,
//! `U_c = G g_c Gᵀ` (filter channel `c`, 3 × 3 → 4 × 4), `V_c = Bᵀ d_c B` (the tile's 4 × 4
//! input patch, zeros in the padding): 16 products per tile and channel instead of 36.
//!
//! Guarantees (as the x86-64 kernel's):
//! - The outputs are the Conv's up to rounding (another summation order, through the
//!   transforms' additions), tested against the f64 definition.
//! - Filter `f`'s outputs are a function of its own weights, the input and its bias only: each
//!   of its 16 per-tile sums is taken over `c` in order, whichever filters run beside it and
//!   however tiles are chunked. Removing filters, or input channels whose weights are all 0,
//!   leaves the other outputs bit for bit as they were (on finite inputs).
//! - No allocation: the buffers live on the stack (at most [`STACK_BYTES`]).
//! - Where an output before the activation is not finite, the kernel reports it (after
//!   writing) and the caller runs the definition's kernel again.
// The SIMD loops are unsafe code, each use with its SAFETY note (as in `kernels::neon`).
#![allow(unsafe_code)]
use super::conv::Geom;
use super::neon::{act_q, Neon};
use super::winograd_plan::{for_rows, kernel_transform, plan, segments, Plan, SKEW, SUB, TC_MAX, U_MAX, V_MAX};
use crate::op::Activation;
use core::arch::aarch64::*;
use core::mem::MaybeUninit;

/// Floats of one patch row buffer: input columns `−pl .. 2·tw + 8 − pl` of one input row (zeros
/// outside the plane), what the de-interleaving loads of a row's last group of 4 tiles reach,
/// plus the 4 that its last vector store may write past them.
const ROW_MAX: usize = 1040;

/// The stack the buffers take (bytes): the x86-64 kernel's 153 KiB plus four patch rows, 170 KiB
/// (docs/ARCHITECTURE.md).
const STACK_BYTES: usize = 4 * (V_MAX + U_MAX + 32 * SKEW + SUB * 16 * TC_MAX + 4 * ROW_MAX);
const _: () = assert!(STACK_BYTES <= 172 * 1024, "the buffers outgrow the documented stack");

/// A buffer on cache-line boundaries.
#[repr(C, align(64))]
struct Lines<const N: usize>([MaybeUninit<f32>; N]);

impl Neon {
    /// A group-1 3 × 3 Conv at stride 1 without dilation through Winograd F(2 × 2, 3 × 3)
    /// (the module's guarantees): `x` holds the `c` input planes, `w` the filters
    /// (`m × c × 3 × 3`), `bias` is empty or `m` long, `act` is applied to each output. False
    /// on layers or slice lengths it does not take (nothing written); also false, after
    /// writing `out`, when an output before the activation is not finite (the transforms'
    /// subtractions can turn ±Inf into NaN), so that the caller runs a kernel with the
    /// definition's IEEE semantics, which writes every output again.
    pub(super) fn conv_winograd(self, g: &Geom, x: &[f32], w: &[f32], bias: &[f32], act: Activation, out: &mut [f32]) -> bool {
        let Some(p) = plan(g) else { return false };
        // Filters per block: the transformed weights of six filters take `6c` floats per
        // position even when fewer remain, so a block holds at most ⌊1024 / 6c⌋ groups (≥ 2:
        // c ≤ 64) unless all of them fit.
        let fb = if 6 * g.m.div_ceil(6) * g.c <= U_MAX / 16 { g.m } else { U_MAX / 16 / (6 * g.c) * 6 };
        let p = Plan { fb, ..p };
        if 2 * p.tw + 12 > ROW_MAX
            || x.len() < g.c * g.h * g.w
            || w.len() < g.m * g.c * 9
            || out.len() < g.m * g.oh * g.ow
            || !(bias.is_empty() || bias.len() >= g.m)
        {
            return false;
        }
        // SAFETY: the slices hold the layer (checked above); NEON is part of the base ISA.
        unsafe { conv3x3(&p, g, x, w, bias, act, out) }
    }
}

/// Floats between one position's transformed weights of `nf` filters and the next.
fn up(nf: usize, c: usize) -> usize {
    6 * nf.div_ceil(6) * c + SKEW
}

/// [`Neon::conv_winograd`]'s body: chunks of tiles, each transformed once, then per block of
/// filters the products and the output transform. True when every output before the
/// activation is finite. The caller guarantees the bounds.
#[allow(clippy::too_many_arguments)]
unsafe fn conv3x3(p: &Plan, g: &Geom, x: &[f32], w: &[f32], bias: &[f32], act: Activation, out: &mut [f32]) -> bool {
    let c = g.c;
    let mut vbuf = Lines([MaybeUninit::<f32>::uninit(); V_MAX + 16 * SKEW]);
    let mut ubuf = Lines([MaybeUninit::<f32>::uninit(); U_MAX + 16 * SKEW]);
    let mut mbuf = Lines([MaybeUninit::<f32>::uninit(); SUB * 16 * TC_MAX]);
    let mut rows = Lines([MaybeUninit::<f32>::uninit(); 4 * ROW_MAX]);
    let (v, u, mm) = (vbuf.0.as_mut_ptr().cast::<f32>(), ubuf.0.as_mut_ptr().cast::<f32>(), mbuf.0.as_mut_ptr().cast::<f32>());
    let split_filters = p.fb < g.m;
    // 0 in every lane while every output before the activation is finite, else NaN.
    // SAFETY (intrinsics without memory access here and below): NEON is always present.
    let mut finite = unsafe { vdupq_n_f32(0.0) };
    if !split_filters {
        // SAFETY: 16 · up(m, c) ≤ U_MAX + 16 · SKEW floats (`fb`); the weights hold m · c · 9.
        unsafe { transform_weights(w.as_ptr(), g.m, c, up(g.m, c), u) };
    }
    let mut t0 = 0;
    while t0 < p.t {
        let nt = (p.t - t0).min(p.tc);
        let np = nt.div_ceil(16) * 16;
        let vs = c * np + SKEW;
        // SAFETY: 16 · (c · np + SKEW) ≤ V_MAX + 16 · SKEW floats; `x` holds the layer; the
        // row buffers hold 4 · ROW_MAX ≥ 4 · (2 · tw + 12) floats (checked by the caller).
        unsafe { transform_input(p, g, x, t0, nt, np, vs, v, rows.0.as_mut_ptr().cast::<f32>()) };
        let mut f0 = 0;
        while f0 < g.m {
            let nf = (g.m - f0).min(p.fb);
            if split_filters {
                // SAFETY: 16 · up(nf, c) ≤ U_MAX + 16 · SKEW (`fb`); filters f0 .. f0 + nf exist.
                unsafe { transform_weights(w.as_ptr().add(f0 * c * 9), nf, c, up(nf, c), u) };
            }
            let mut s = 0;
            while s < nf {
                let r = (nf - s).min(SUB);
                // SAFETY: the block's weights (pitch nf · c per position) and the chunk's input
                // (rows of np, positions vs apart) are written above; `mm` holds 16 · SUB · np.
                unsafe {
                    products(r, c, u.add(s * c), up(nf, c), v, np, vs, mm);
                    let fi = f0 + s;
                    let b = if bias.is_empty() { None } else { Some(&bias[fi..fi + r]) };
                    let f = outputs(p, g, r, b, act, mm, np, t0, nt, out.as_mut_ptr().add(fi * g.oh * g.ow));
                    finite = vaddq_f32(finite, f);
                }
                s += r;
            }
            f0 += nf;
        }
        t0 += nt;
    }
    // SAFETY: register operations only.
    unsafe { vminvq_u32(vceqq_f32(finite, finite)) == u32::MAX }
}

/// `u[ξ · up + (f / 6) · 6c + 6 · ch + f % 6] = (G g_{f,ch} Gᵀ)[ξ]` for the `nf` filters at `w`
/// (`c` channels of 3 × 3 taps each): per position, the filters in groups of six, each
/// channel's six weights side by side (0 for filters past `nf`), so that the products load
/// one channel's weights of six filters in two registers. A group's six kernels of one
/// channel are transformed together, in the lanes of a 4- and a 2-lane register. The caller guarantees `9 · nf · c` floats at
/// `w`, `up ≥ 6 · ⌈nf / 6⌉ · c` and `16 · up` writable at `u`.
unsafe fn transform_weights(w: *const f32, nf: usize, c: usize, up: usize, u: *mut f32) {
    let zeros = [0.0f32; 9];
    for g6 in 0..nf.div_ceil(6) {
        // Lane l: channel `ch` of filter 6·g6 + l at `at[l]`, or zeros past the last filter.
        let mut at: [*const f32; 6] = core::array::from_fn(|l| {
            let f = 6 * g6 + l;
            // SAFETY (the pointer): filter f < nf lies in the `9 · nf · c` floats.
            if f < nf {
                unsafe { w.add(f * c * 9) }
            } else {
                zeros.as_ptr()
            }
        });
        let step: [usize; 6] = core::array::from_fn(|l| if 6 * g6 + l < nf { 9 } else { 0 });
        for ch in 0..c {
            // SAFETY: 9 taps at each pointer (channel ch < c of a filter, or the zeros); the
            // stores end at `ξ · up + 6 · ⌈nf / 6⌉ · c ≤ 16 · up`.
            unsafe {
                let tq: [float32x4_t; 9] = core::array::from_fn(|k| {
                    let v = vld1q_lane_f32::<0>(at[0].add(k), vdupq_n_f32(0.0));
                    let v = vld1q_lane_f32::<1>(at[1].add(k), v);
                    let v = vld1q_lane_f32::<2>(at[2].add(k), v);
                    vld1q_lane_f32::<3>(at[3].add(k), v)
                });
                let td: [float32x2_t; 9] = core::array::from_fn(|k| {
                    let v = vld1_lane_f32::<0>(at[4].add(k), vdup_n_f32(0.0));
                    vld1_lane_f32::<1>(at[5].add(k), v)
                });
                let uq = kernel_transform(tq, vdupq_n_f32(0.5), |a, b| vaddq_f32(a, b), |a, b| vsubq_f32(a, b), |a, b| vmulq_f32(a, b));
                let ud = kernel_transform(td, vdup_n_f32(0.5), |a, b| vadd_f32(a, b), |a, b| vsub_f32(a, b), |a, b| vmul_f32(a, b));
                let mut o = u.add(g6 * 6 * c + 6 * ch);
                for (q, d) in uq.iter().zip(&ud) {
                    vst1q_f32(o, *q);
                    vst1_f32(o.add(4), *d);
                    o = o.wrapping_add(up);
                }
            }
            for (p, st) in at.iter_mut().zip(&step) {
                *p = p.wrapping_add(*st);
            }
        }
    }
}

/// `v[ξ · vs + ch · np + i] = (Bᵀ d B)[ξ]` for tile `t0 + i` (`i < nt`) of channel `ch`, `d` its
/// 4 × 4 input patch (0 outside the planes), `Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]`; 0 for
/// `nt ≤ i < np`. Per channel and tile row the input rows under it are copied into the four
/// buffers at `rows` (zeros outside the plane; two rows per tile row after the first), then
/// four tiles at a time: each patch row's even and odd
/// columns and those one tile on through de-interleaving loads, the transform along the row,
/// then across the rows. The caller guarantees the bounds (`x` holds the layer, `16 · vs`
/// floats at `v`, `vs ≥ c · np`, `4 · ROW_MAX` at `rows`, `2 · tw + 12 ≤ ROW_MAX`).
#[allow(clippy::too_many_arguments)]
unsafe fn transform_input(p: &Plan, g: &Geom, x: &[f32], t0: usize, nt: usize, np: usize, vs: usize, v: *mut f32, rows: *mut f32) {
    let len = 2 * p.tw + 8;
    for ch in 0..g.c {
        // Patch row `i` of the current tile row is buffer `at[i]`; the next tile row's first
        // two patch rows are this one's last two, so each tile row after the first fills two.
        let mut at = [0, 1, 2, 3];
        let mut filled: Option<usize> = None;
        for (ty, a, bnd) in segments(p.tw, t0, nt) {
            let fresh = if filled == Some(ty.wrapping_sub(1)) {
                at = [at[2], at[3], at[0], at[1]];
                2
            } else {
                0
            };
            for (r, &b) in at.iter().enumerate().skip(fresh) {
                let iy = (2 * ty + r) as isize - g.pt as isize;
                let src = (0..g.h as isize).contains(&iy).then(|| &x[(ch * g.h + iy as usize) * g.w..][..g.w]);
                // SAFETY: buffer b's `len + 4 ≤ ROW_MAX` floats (checked by the caller).
                unsafe { fill_row(rows.add(b * ROW_MAX), len, src, g.pl) };
            }
            filled = Some(ty);
            let bufs = at.map(|b| rows.wrapping_add(b * ROW_MAX).cast_const());
            let mut tx = a;
            while tx < bnd {
                let cnt = (bnd - tx).min(4);
                let tt = ty * p.tw + tx - t0;
                // SAFETY: the reads end at 2·tx + 10 ≤ 2·tw + 8 = len (tx ≤ tw − 1); tiles
                // `tt .. tt + cnt ≤ nt` of each row of `v`.
                unsafe { tile_group(bufs, 2 * tx, v.add(ch * np + tt), vs, cnt) };
                tx += cnt;
            }
        }
    }
    if np > nt {
        for xi in 0..16 {
            for ch in 0..g.c {
                // SAFETY: the padding tiles `nt .. np` of each row.
                unsafe { core::ptr::write_bytes(v.add(xi * vs + ch * np + nt), 0, np - nt) };
            }
        }
    }
}

/// `dst[k] = src[k − pl]` for `k < len` where that index lies in `src`, else 0 (all 0 without
/// `src`), in vector loads and stores (no library calls: rows are short and many); floats
/// `len .. len + 4` may be written too. The caller guarantees `len + 4` writable floats.
#[inline(always)]
unsafe fn fill_row(dst: *mut f32, len: usize, src: Option<&[f32]>, pl: usize) {
    // SAFETY: every store below starts before `len` and writes 4 floats; loads stay in `src`.
    unsafe {
        let zero = vdupq_n_f32(0.0);
        let (lo, n) = match src {
            Some(s) => (pl.min(len), s.len().min(len - pl.min(len))),
            None => (0, 0),
        };
        let mut k = 0;
        while k < lo {
            vst1q_f32(dst.add(k), zero);
            k += 4;
        }
        if let Some(s) = src {
            let mut j = 0;
            while j + 4 <= n {
                vst1q_f32(dst.add(lo + j), vld1q_f32(s.as_ptr().add(j)));
                j += 4;
            }
            while j < n {
                *dst.add(lo + j) = s[j];
                j += 1;
            }
        }
        let mut k = lo + n;
        while k < len {
            vst1q_f32(dst.add(k), zero);
            k += 4;
        }
    }
}

/// The 16 transformed values of `cnt ≤ 4` tiles whose patches start at column `k0` of the four
/// patch rows `rows`, stored at `o + ξ · vs + i` for tile `i < cnt`. The caller guarantees 10
/// readable floats from `k0` in each row and the stores.
#[inline(always)]
unsafe fn tile_group(rows: [*const f32; 4], k0: usize, o: *mut f32, vs: usize, cnt: usize) {
    // SAFETY: the caller's guarantee.
    unsafe {
        // Row `i` of `d B`: columns d0 − d2, d1 + d2, d2 − d1, d1 − d3 of the four tiles.
        let q: [[float32x4_t; 4]; 4] = core::array::from_fn(|i| {
            let s = rows[i].add(k0);
            let (a, b) = (vld2q_f32(s), vld2q_f32(s.add(2)));
            let (e0, o0, e1, o1) = (a.0, a.1, b.0, b.1);
            [vsubq_f32(e0, e1), vaddq_f32(o0, e1), vsubq_f32(e1, o0), vsubq_f32(o0, o1)]
        });
        // Column l of `Bᵀ (d B)`: positions l, 4 + l, 8 + l, 12 + l.
        let [q0, q1, q2, q3] = q;
        for (l, (((a0, a1), a2), a3)) in q0.iter().zip(&q1).zip(&q2).zip(&q3).enumerate() {
            let col = [vsubq_f32(*a0, *a2), vaddq_f32(*a1, *a2), vsubq_f32(*a2, *a1), vsubq_f32(*a1, *a3)];
            for (k, cv) in col.iter().enumerate() {
                store_first(o.add((4 * k + l) * vs), *cv, cnt);
            }
        }
    }
}

/// The first `cnt ≤ 4` lanes of `v` at `p` (nothing past them written), in lane and pair
/// stores (no library call, so the caller's values stay in registers).
#[inline(always)]
unsafe fn store_first(p: *mut f32, v: float32x4_t, cnt: usize) {
    // SAFETY: the caller guarantees `cnt` writable floats at `p`.
    unsafe {
        match cnt {
            0 => {}
            1 => vst1q_lane_f32::<0>(p, v),
            2 => vst1_f32(p, vget_low_f32(v)),
            3 => {
                vst1_f32(p, vget_low_f32(v));
                vst1q_lane_f32::<2>(p.add(2), v);
            }
            _ => vst1q_f32(p, v),
        }
    }
}

/// The first `cnt ≤ 4` floats at `p` in the low lanes, 0 above (nothing past them read).
#[inline(always)]
unsafe fn load_first(p: *const f32, cnt: usize) -> float32x4_t {
    // SAFETY: the caller guarantees `cnt` readable floats at `p`.
    unsafe {
        let low = |p: *const f32| vcombine_f32(vld1_f32(p), vdup_n_f32(0.0));
        match cnt {
            0 => vdupq_n_f32(0.0),
            1 => vld1q_lane_f32::<0>(p, vdupq_n_f32(0.0)),
            2 => low(p),
            3 => vld1q_lane_f32::<2>(p.add(2), low(p)),
            _ => vld1q_f32(p),
        }
    }
}

/// `mm[(ξ · SUB + i) · np + j] = Σ_ch u[ξ · up + 6 · ch + i] · v[ξ · vs + ch · np + j]` for the
/// `r ≤ SUB` filters of the group of six at `u` (pitch `up` per position `ξ`, six weights per
/// channel: [`transform_weights`]) and every tile `j < np` (a multiple of 16), each sum over
/// `ch` in order from 0. The caller guarantees the bounds.
#[allow(clippy::too_many_arguments)]
unsafe fn products(r: usize, c: usize, u: *const f32, up: usize, v: *const f32, np: usize, vs: usize, mm: *mut f32) {
    // SAFETY: the caller's guarantee.
    unsafe { for_rows!(r, products_r(c, u, up, v, np, vs, mm)) }
}

/// [`products`] for `R` filters: register tiles of `R` filters × 16 tiles (4 · R accumulators).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn products_r<const R: usize>(c: usize, u: *const f32, up: usize, v: *const f32, np: usize, vs: usize, mm: *mut f32) {
    for xi in 0..16 {
        // SAFETY: the caller's guarantee: position ξ's weights, inputs and products.
        unsafe {
            let (uw, vx) = (u.add(xi * up), v.add(xi * vs));
            let mut j = 0;
            while j < np {
                let mut acc = [[vdupq_n_f32(0.0); 4]; R];
                for ch in 0..c {
                    let vp = vx.add(ch * np + j);
                    let b = [vld1q_f32(vp), vld1q_f32(vp.add(4)), vld1q_f32(vp.add(8)), vld1q_f32(vp.add(12))];
                    // Filters 0–3 in the lanes of `w0`, 4–5 in those of `w1`.
                    let (w0, w1) = (vld1q_f32(uw.add(6 * ch)), vld1_f32(uw.add(6 * ch + 4)));
                    for (i, a) in acc.iter_mut().enumerate() {
                        for (aq, bq) in a.iter_mut().zip(&b) {
                            *aq = match i {
                                0 => vfmaq_laneq_f32::<0>(*aq, *bq, w0),
                                1 => vfmaq_laneq_f32::<1>(*aq, *bq, w0),
                                2 => vfmaq_laneq_f32::<2>(*aq, *bq, w0),
                                3 => vfmaq_laneq_f32::<3>(*aq, *bq, w0),
                                4 => vfmaq_lane_f32::<0>(*aq, *bq, w1),
                                _ => vfmaq_lane_f32::<1>(*aq, *bq, w1),
                            };
                        }
                    }
                }
                for (i, a) in acc.iter().enumerate() {
                    let o = mm.add((xi * SUB + i) * np + j);
                    for (k, aq) in a.iter().enumerate() {
                        vst1q_f32(o.add(4 * k), *aq);
                    }
                }
                j += 16;
            }
        }
    }
}

/// Filters `0 .. r` of the products `mm` (tiles `t0 .. t0 + nt` of the layer) to the output
/// planes at `out` (pitch `oh · ow`): `Y = Aᵀ M A` with `Aᵀ = [1 1 1 0; 0 1 −1 −1]`, plus the
/// bias, through `act`, outputs past the plane's last row or column not written. Returns 0 in
/// every lane when every output before the activation is finite, NaN in some lane otherwise.
/// The caller guarantees the bounds.
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
) -> float32x4_t {
    // SAFETY: the caller's guarantee. The activation is matched once: its selects then run
    // without branches (the same selects as `act_q`).
    unsafe {
        match act {
            Activation::None => outputs_with(p, g, r, bias, mm, np, t0, nt, out, |v| v),
            Activation::Relu => outputs_with(p, g, r, bias, mm, np, t0, nt, out, |v| act_q(Activation::Relu, v)),
            _ => outputs_with(p, g, r, bias, mm, np, t0, nt, out, |v| act_q(act, v)),
        }
    }
}

/// [`outputs`] with the activation `f`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn outputs_with(
    p: &Plan,
    g: &Geom,
    r: usize,
    bias: Option<&[f32]>,
    mm: *const f32,
    np: usize,
    t0: usize,
    nt: usize,
    out: *mut f32,
    f: impl Fn(float32x4_t) -> float32x4_t,
) -> float32x4_t {
    let plane = g.oh * g.ow;
    // SAFETY (here and in the loop): register operations, and loads / stores the caller
    // guarantees (tiles `tt .. tt + cnt ≤ nt` of filter i's 16 rows of products, `SUB · np`
    // apart; columns `2tx .. 2tx + ncols ≤ ow` of output row `oy` of filter i).
    unsafe {
        let mut finite = vdupq_n_f32(0.0);
        for i in 0..r {
            let bv = vdupq_n_f32(bias.map_or(0.0, |b| b[i]));
            for (ty, a, bnd) in segments(p.tw, t0, nt) {
                let mut tx = a;
                while tx < bnd {
                    let cnt = (bnd - tx).min(4);
                    let src = mm.add(i * np + ty * p.tw + tx - t0);
                    let m: [float32x4_t; 16] = if cnt == 4 {
                        core::array::from_fn(|xi| vld1q_f32(src.add(xi * SUB * np)))
                    } else {
                        core::array::from_fn(|xi| load_first(src.add(xi * SUB * np), cnt))
                    };
                    let s0: [float32x4_t; 4] = core::array::from_fn(|l| vaddq_f32(vaddq_f32(m[l], m[4 + l]), m[8 + l]));
                    let s1: [float32x4_t; 4] = core::array::from_fn(|l| vsubq_f32(vsubq_f32(m[4 + l], m[8 + l]), m[12 + l]));
                    let ncols = (2 * cnt).min(g.ow - 2 * tx);
                    for (dy, s) in [s0, s1].iter().enumerate() {
                        let oy = 2 * ty + dy;
                        if oy >= g.oh {
                            continue;
                        }
                        let y0 = vaddq_f32(vaddq_f32(vaddq_f32(s[0], s[1]), s[2]), bv);
                        let y1 = vaddq_f32(vsubq_f32(vsubq_f32(s[1], s[2]), s[3]), bv);
                        // `y − y` is 0 for a finite `y`, NaN for ±Inf and NaN.
                        finite = vaddq_f32(finite, vaddq_f32(vsubq_f32(y0, y0), vsubq_f32(y1, y1)));
                        let (y0, y1) = (f(y0), f(y1));
                        let (first, second) = (vzip1q_f32(y0, y1), vzip2q_f32(y0, y1));
                        let o = out.add(i * plane + oy * g.ow + 2 * tx);
                        if ncols == 8 {
                            vst1q_f32(o, first);
                            vst1q_f32(o.add(4), second);
                        } else {
                            store_first(o, first, ncols.min(4));
                            store_first(o.add(4), second, ncols.saturating_sub(4));
                        }
                    }
                    tx += cnt;
                }
            }
        }
        finite
    }
}

#[cfg(test)]
mod tests {
    use super::super::neon::Neon;
    use super::super::winograd_plan::checks;
    use proptest::prelude::*;

    /// `Neon::conv_winograd` as the checks call it.
    fn run(g: &super::Geom, x: &[f32], w: &[f32], b: &[f32], a: crate::op::Activation, o: &mut [f32]) -> bool {
        Neon.conv_winograd(g, x, w, b, a, o)
    }

    /// [`checks::fixed_layers`]; rows wider than the patch row buffers are declined.
    #[test]
    fn matches_the_definition_on_fixed_layers() {
        checks::fixed_layers(&run);
        assert!(checks::case(&run, 1, 1, 3, 1100, [1; 4], 0, true, 1).is_none());
    }

    #[test]
    fn outputs_do_not_depend_on_the_other_filters_or_zero_channels() {
        checks::independent_of_other_filters_and_zero_channels(&run);
    }

    #[test]
    fn non_finite_inputs_fall_back_to_the_definition() {
        checks::non_finite_inputs_fall_back(&run);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Random layers: channel and filter counts across the register tiles and filter
        /// blocks, planes from 1 × 1 to wider than a chunk of tiles, any padding.
        #[test]
        fn matches_the_definition(c in 1usize..=64, m in 1usize..20, h in 1usize..14, wd in 1usize..40,
                                  pads in proptest::array::uniform4(0usize..3), act in 0u8..3, with_bias in any::<bool>(), seed in 0u64..1000) {
            prop_assume!(h + pads[0] + pads[2] >= 3 && wd + pads[1] + pads[3] >= 3);
            prop_assert!(checks::case(&run, c, m, h, wd, pads, act, with_bias, seed).is_some());
        }
    }
}
