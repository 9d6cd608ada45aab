//! Channel-blocked kernels (AVX-512 hosts only): a chain of pointwise and depthwise Convs kept
//! in "NCHW16c" layout between its layers, so that a depthwise layer's taps are whole vectors of
//! 16 channels at one position (no lane masks, no shifted windows) and a pointwise layer's
//! outputs are stored as they are summed.
//!
//! A blocked tensor of `c` channels over `hw` positions holds, per batch item, block `b` (channels
//! `16b .. 16b + w_b`, `w_b = min(16, c − 16b)`) from `16b·hw`, position-major: channel `ch` at
//! position `p` at `16b·hw + p·w_b + ch − 16b`. Only the last block can be narrower than 16 (a
//! pruned layer's channels); the tensor has the planar one's length, so it lives in the same
//! arena range. Only [`crate::Plan`] lays tensors out
//! this way ([`crate::session`]), and only between operators that all run these kernels; a
//! session without a plan runs every operator planar.
#![allow(unsafe_code)]

use super::conv::Geom;
use super::x86::{act_zmm, transpose16};
use crate::op::{Activation, OpError};
use core::arch::x86_64::*;
use core::mem::MaybeUninit;

/// Channels per block.
pub(crate) const LANES: usize = 16;

/// Channels of block `b` of a `c`-channel tensor.
#[inline(always)]
fn width(c: usize, b: usize) -> usize {
    (c - LANES * b).min(LANES)
}

/// The lanes of a block `w` channels wide.
#[inline(always)]
fn lanes(w: usize) -> __mmask16 {
    ((1u32 << w) - 1) as __mmask16
}

/// Most weights of a pointwise layer [`pointwise`] transposes onto the stack (64 KiB).
pub(crate) const PW_WEIGHTS: usize = 16384;

/// Whether this CPU runs the blocked kernels: AVX-512 F with the SIMD kernels on.
pub(crate) fn ready() -> bool {
    use super::gemm::Micro;
    super::gemm::simd().is_some_and(|f| f.rows() > 6) && avx512()
}

/// AVX-512 F, whatever the SIMD switches say (the kernels' own precondition).
#[inline]
fn avx512() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "avx512f")
    }
}

/// Where a pointwise layer's input lies: planar (`c·hw + p`) or blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    Planar,
    Blocked,
}

/// Floats aligned to a cache line.
#[repr(C, align(64))]
struct Lines<T>(T);

/// A pointwise layer's weights as [`pointwise`] takes them.
pub(crate) enum Weights<'a> {
    /// The `m × c` matrix in f32, filter-major (as stored).
    Rows(&'a [f32]),
    /// 4-bit codes over the `m × c` matrix, decoded straight into the transposed matrix.
    Codes4(super::x86::Codes, &'a crate::codebook::Parts<'a>),
}

/// 1×1 Conv (group 1, stride 1, no padding) of `c` inputs to `m` outputs over `hw` positions of
/// `n` batch items: input `x` in `layout`, weight `w`, `bias` empty or `m` long; writes `out`
/// blocked. Each output is `act(bias + Σ_ch x·w)` summed in channel order with fused
/// multiply-adds. The weights are transposed (or decoded transposed) onto the stack once per
/// call, rows padded to whole blocks. `Err(ShapeMismatch)` with nothing written when a slice is
/// too short or the padded weight exceeds [`PW_WEIGHTS`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn pointwise(
    x: &[f32],
    layout: Layout,
    n: usize,
    c: usize,
    hw: usize,
    w: Weights<'_>,
    m: usize,
    bias: &[f32],
    act: Activation,
    out: &mut [f32],
) -> Result<(), OpError> {
    let mp = m.div_ceil(LANES) * LANES;
    let fits = avx512()
        && c > 0
        && m > 0
        && m <= 1024
        && c.checked_mul(mp).is_some_and(|cm| cm <= PW_WEIGHTS)
        && (bias.is_empty() || bias.len() >= m)
        && n.checked_mul(c).and_then(|v| v.checked_mul(hw)).is_some_and(|len| x.len() >= len)
        && n.checked_mul(m).and_then(|v| v.checked_mul(hw)).is_some_and(|len| out.len() >= len);
    if !fits {
        return Err(OpError::ShapeMismatch);
    }
    // Cache-line aligned: each 16-weight row of a block is one line to store and to load (4-byte
    // aligned, every store of the transpose split across two lines, a quarter of a kws layer).
    let mut store = Lines([MaybeUninit::<f32>::uninit(); PW_WEIGHTS]);
    let buf = &mut store.0;
    let wt: &[f32] = match w {
        Weights::Rows(w) => {
            if w.len() < c * m {
                return Err(OpError::ShapeMismatch);
            }
            // SAFETY: AVX-512 F detected; `w` holds `m·c` weights, `buf` `c·mp ≤ PW_WEIGHTS`
            // floats; the transpose writes every one of them (each of the `mp / 16` row blocks
            // stores all `c` of its columns, 16 lanes each), so they are initialized.
            unsafe {
                transpose_core(w.as_ptr(), m, c, buf.as_mut_ptr().cast());
                core::slice::from_raw_parts(buf.as_ptr().cast::<f32>(), c * mp)
            }
        }
        Weights::Codes4(codes, p) => codes.decode_transposed4(p, m, c, buf).ok_or(OpError::ShapeMismatch)?,
    };
    // Zeros cleared only without a bias (4 KiB cleared per call was 1.5 % of kws).
    let bz;
    let b: &[f32] = if bias.is_empty() {
        bz = [0.0f32; 1024];
        &bz[..m]
    } else {
        &bias[..m]
    };
    // SAFETY: AVX-512 F detected; `wt` holds the `c × m` transposed weights; the tiles read `x`
    // and write `out` inside the lengths checked above.
    unsafe {
        for s in 0..n {
            let (xs, os) = (x.as_ptr().add(s * c * hw), out.as_mut_ptr().add(s * m * hw));
            pw_core(xs, layout == Layout::Blocked, c, hw, wt.as_ptr(), m, b.as_ptr(), act, os);
        }
    }
    Ok(())
}

/// `wt[j·mp + i] = w[i·c + j]` for the `m × c` matrix at `w`, `mp` = `m` rounded up to whole
/// blocks of 16 (rows past `m` zero): 16 × 16 blocks transposed in registers, the last columns
/// of a row masked.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn transpose_core(w: *const f32, m: usize, c: usize, wt: *mut f32) {
    let mp = m.div_ceil(LANES) * LANES;
    // SAFETY: rows `i0 + i < m` read columns `j0 .. j0 + nj ≤ c`; writes rows `j0 .. j0 + nj`
    // of `wt`, columns `i0 .. i0 + 16 ≤ mp` (the caller's bounds).
    unsafe {
        for i0 in (0..m).step_by(LANES) {
            let mut j0 = 0;
            while j0 < c {
                let nj = (c - j0).min(LANES);
                let mask = lanes(nj);
                // Whole blocks of rows and columns without a test per row (one kept the rows in
                // memory).
                let r: [__m512; 16] = if i0 + LANES <= m && nj == LANES {
                    core::array::from_fn(|i| _mm512_loadu_ps(w.add((i0 + i) * c + j0)))
                } else if i0 + LANES <= m {
                    core::array::from_fn(|i| _mm512_maskz_loadu_ps(mask, w.add((i0 + i) * c + j0)))
                } else {
                    core::array::from_fn(|i| {
                        if i0 + i < m {
                            _mm512_maskz_loadu_ps(mask, w.add((i0 + i) * c + j0))
                        } else {
                            _mm512_setzero_ps()
                        }
                    })
                };
                let t = transpose16(r);
                // Whole blocks stored unrolled (a loop bounded at run time kept `t` in memory).
                if nj == LANES {
                    for (j, v) in t.iter().enumerate() {
                        _mm512_storeu_ps(wt.add((j0 + j) * mp + i0), *v);
                    }
                } else {
                    for (j, v) in t.iter().enumerate().take(nj) {
                        _mm512_storeu_ps(wt.add((j0 + j) * mp + i0), *v);
                    }
                }
                j0 += LANES;
            }
        }
    }
}

/// The tiles of [`pointwise`] for one batch item: input channel `ch` at position `p` planar
/// (`ch·hw + p`) or blocked; transposed weights `wt` (`c` rows of `mp`), bias `b` (`m`). Tiles of
/// 64 outputs × 5 positions (20 sums, 4 weight registers and 5 broadcasts fit the 32 registers),
/// then 32 × 8 and 16 × 12 for the last outputs.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn pw_core(
    x: *const f32,
    blocked: bool,
    c: usize,
    hw: usize,
    wt: *const f32,
    m: usize,
    b: *const f32,
    act: Activation,
    out: *mut f32,
) {
    let mut mb = 0;
    while mb < m {
        let nb = (m - mb).div_ceil(LANES).min(4);
        let nb = if nb == 3 { 2 } else { nb };
        let most = match nb {
            4 => 5,
            2 => 8,
            _ => 12,
        };
        let mut p0 = 0;
        while p0 < hw {
            let np = most.min(hw - p0);
            let k = (x, blocked, c, hw, wt, m, b, act, out, mb, p0);
            // SAFETY: the caller's bounds; positions `p0 .. p0 + np ≤ hw`, output blocks `mb /
            // 16 .. mb / 16 + nb` inside the `⌈m/16⌉`.
            unsafe {
                match (nb, np) {
                    (4, 5) => pw_tile::<4, 5>(k),
                    (4, 4) => pw_tile::<4, 4>(k),
                    (4, 3) => pw_tile::<4, 3>(k),
                    (4, 2) => pw_tile::<4, 2>(k),
                    (4, _) => pw_tile::<4, 1>(k),
                    (2, 8) => pw_tile::<2, 8>(k),
                    (2, 7) => pw_tile::<2, 7>(k),
                    (2, 6) => pw_tile::<2, 6>(k),
                    (2, 5) => pw_tile::<2, 5>(k),
                    (2, 4) => pw_tile::<2, 4>(k),
                    (2, 3) => pw_tile::<2, 3>(k),
                    (2, 2) => pw_tile::<2, 2>(k),
                    (2, _) => pw_tile::<2, 1>(k),
                    (_, 12) => pw_tile::<1, 12>(k),
                    (_, 11) => pw_tile::<1, 11>(k),
                    (_, 10) => pw_tile::<1, 10>(k),
                    (_, 9) => pw_tile::<1, 9>(k),
                    (_, 8) => pw_tile::<1, 8>(k),
                    (_, 7) => pw_tile::<1, 7>(k),
                    (_, 6) => pw_tile::<1, 6>(k),
                    (_, 5) => pw_tile::<1, 5>(k),
                    (_, 4) => pw_tile::<1, 4>(k),
                    (_, 3) => pw_tile::<1, 3>(k),
                    (_, 2) => pw_tile::<1, 2>(k),
                    (_, _) => pw_tile::<1, 1>(k),
                }
            }
            p0 += np;
        }
        mb += nb * LANES;
    }
}

type PwArgs = (*const f32, bool, usize, usize, *const f32, usize, *const f32, Activation, *mut f32, usize, usize);

/// Output blocks `mb / 16 ..` (`NB` of them, the last possibly narrower) at positions `p0 .. p0
/// + N`: from the bias, each input channel's `N` values times its `NB` weight registers, stored
/// blocked through `act`.
#[inline(always)]
unsafe fn pw_tile<const NB: usize, const N: usize>((x, blocked, c, hw, wt, m, b, act, out, mb, p0): PwArgs) {
    let mp = m.div_ceil(LANES) * LANES;
    // Output block widths: 16 but for the layer's last block.
    let ow: [usize; NB] = core::array::from_fn(|h| (m - mb - LANES * h).min(LANES));
    // SAFETY: the caller's bounds; bias lanes and stores past `m` are masked off.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); NB]; N];
        for h in 0..NB {
            let bv = _mm512_maskz_loadu_ps(lanes(ow[h]), b.add(mb + LANES * h));
            for a in acc.iter_mut() {
                a[h] = bv;
            }
        }
        for ch in 0..c {
            // Channel `ch`'s value at position `p0` and the step to the next position.
            let (at, ps) = if blocked {
                let b0 = ch & !(LANES - 1);
                (b0 * hw + p0 * (c - b0).min(LANES) + (ch - b0), (c - b0).min(LANES))
            } else {
                (ch * hw + p0, 1)
            };
            let xb = x.add(at);
            let wv: [__m512; NB] = core::array::from_fn(|h| _mm512_loadu_ps(wt.add(ch * mp + mb + LANES * h)));
            for (i, a) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*xb.add(i * ps));
                for h in 0..NB {
                    a[h] = _mm512_fmadd_ps(wv[h], xv, a[h]);
                }
            }
        }
        for (i, a) in acc.iter().enumerate() {
            for (h, v) in a.iter().enumerate() {
                let o = out.add((mb + LANES * h) * hw + (p0 + i) * ow[h]);
                if ow[h] == LANES {
                    _mm512_storeu_ps(o, act_zmm(Some(act), *v));
                } else {
                    _mm512_mask_storeu_ps(o, lanes(ow[h]), act_zmm(Some(act), *v));
                }
            }
        }
    }
}

/// Whether [`depthwise`] takes layer `g`: a depthwise 3 × 3 Conv (one channel per group, any
/// row stride, column stride 1 or 2, any padding, no dilation).
pub(super) fn depthwise_applies(g: &Geom) -> bool {
    g.c == g.m && g.cg == 1 && g.mg == 1 && g.m > 0 && g.kh == 3 && g.kw == 3 && g.dh == 1 && g.dw == 1 && matches!(g.sw, 1 | 2) && g.sh > 0
}

/// Depthwise layer `g` ([`depthwise_applies`]) on `n` batch items, blocked input to blocked
/// output: weights `w` (`m × 9`, as stored), `bias` empty or `m` long. Each output is `act(bias +
/// Σ_t x·w)` over the taps inside the input, in tap order with fused multiply-adds (the planar
/// kernels add `w·0` for the others). `Err(ShapeMismatch)`, nothing written, when a slice is
/// too short or the layer is not one [`depthwise_applies`] takes.
pub(super) fn depthwise(x: &[f32], n: usize, g: &Geom, w: &[f32], bias: &[f32], act: Activation, out: &mut [f32]) -> Result<(), OpError> {
    let (inl, outl) = (g.c * g.h * g.w, g.m * g.oh * g.ow);
    let fits = avx512()
        && depthwise_applies(g)
        && w.len() >= g.m * 9
        && (bias.is_empty() || bias.len() >= g.m)
        && g.sh > 0
        && g.sw > 0
        && n.checked_mul(inl).is_some_and(|l| x.len() >= l)
        && n.checked_mul(outl).is_some_and(|l| out.len() >= l)
        && g.m <= 1024;
    if !fits {
        return Err(OpError::ShapeMismatch);
    }
    let bz;
    let b = if bias.is_empty() {
        bz = [0.0f32; 1024];
        &bz[..g.m]
    } else {
        &bias[..g.m]
    };
    for s in 0..n {
        // SAFETY: AVX-512 F detected; item `s`'s planes lie inside the slices (checked above).
        unsafe { dw_core(x.as_ptr().add(s * inl), g, w.as_ptr(), b.as_ptr(), act, out.as_mut_ptr().add(s * outl)) };
    }
    Ok(())
}

/// Most output positions per [`dw_tile`].
const DW_T: usize = 8;

/// One run of output columns of a depthwise row: `n` outputs from column `ox0`, `edges` the
/// taps they skip (bit 0: output 0's column 0, bit 1: output `n − 1`'s column 2), or `CHECKED`:
/// one output whose taps are each checked.
#[derive(Clone, Copy, Default)]
struct Cols {
    ox0: usize,
    n: usize,
    edges: u8,
}

const CHECKED: u8 = 4;

/// Most runs [`dw_core`] splits a row into.
const RUNS: usize = 16;

/// The runs of output columns of layer `g`'s rows (the same for every row), or `None` when a
/// row needs more than [`RUNS`]: tiles of at most [`DW_T`] outputs, each of whose taps outside
/// the input are only output 0's column 0 and the last output's column 2, else single checked
/// outputs.
fn col_runs(g: &Geom) -> Option<([Cols; RUNS], usize)> {
    let inside = |ox: usize, kx: usize| {
        let ix = (ox * g.sw + kx) as isize - g.pl as isize;
        ix >= 0 && (ix as usize) < g.w
    };
    let (mut runs, mut k, mut ox) = ([Cols::default(); RUNS], 0, 0);
    while ox < g.ow {
        // The longest tile from `ox` whose only outside taps are its edges'.
        let mut best = None;
        for n in (1..=DW_T.min(g.ow - ox)).rev() {
            let mut edges = 0u8;
            let mut fits = true;
            for i in 0..n {
                for kx in 0..3 {
                    if !inside(ox + i, kx) {
                        match (i, kx) {
                            (0, 0) => edges |= 1,
                            (i, 2) if i == n - 1 => edges |= 2,
                            _ => fits = false,
                        }
                    }
                }
            }
            if fits {
                best = Some(Cols { ox0: ox, n, edges });
                break;
            }
        }
        let run = best.unwrap_or(Cols { ox0: ox, n: 1, edges: CHECKED });
        *runs.get_mut(k)? = run;
        k += 1;
        ox += run.n;
    }
    Some((runs, k))
}

#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn dw_core(x: *const f32, g: &Geom, w: *const f32, b: *const f32, act: Activation, out: *mut f32) {
    // Lane `l` of tap `t`'s register: weight `(cb·16 + l)·9 + t`.
    let idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(9));
    let (runs, nruns) = col_runs(g).unwrap_or(([Cols::default(); RUNS], 0));
    // SAFETY: the caller's bounds: block `cb`'s filters of 9 weights, its bias, and its input
    // and output planes (lanes past the block's width are masked off).
    unsafe {
        for cb in 0..g.m.div_ceil(LANES) {
            let wd = width(g.m, cb);
            let mk = lanes(wd);
            let wv: [__m512; 9] =
                core::array::from_fn(|t| _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mk, idx, w.add(cb * LANES * 9 + t)));
            let bv = _mm512_maskz_loadu_ps(mk, b.add(cb * LANES));
            let (xc, oc) = (x.add(cb * LANES * g.h * g.w), out.add(cb * LANES * g.oh * g.ow));
            let k = (g, &wv, bv, act, &runs[..nruns]);
            if wd == LANES {
                dw_block::<true>(xc, oc, LANES, k);
            } else {
                dw_block::<false>(xc, oc, wd, k);
            }
        }
    }
}

type BlockArgs<'a> = (&'a Geom, &'a [__m512; 9], __m512, Activation, &'a [Cols]);

/// One channel block of [`dw_core`], `wd` channels wide (16 when `FULL`; loads and stores of a
/// narrower block masked to its lanes): every output row through the column runs (`runs`, or
/// every output checked when empty).
#[inline(always)]
unsafe fn dw_block<const FULL: bool>(xc: *const f32, oc: *mut f32, wd: usize, (g, wv, bv, act, runs): BlockArgs<'_>) {
    let (sw, pl) = (g.sw, g.pl);
    let mk = lanes(wd);
    // SAFETY: the caller's bounds; every load is of a position inside the input plane
    // (`col_runs`' tiles skip exactly their outside taps).
    unsafe {
        for oy in 0..g.oh {
            // Kernel rows inside the input.
            let top = (oy * g.sh) as isize - g.pt as isize;
            let ky0 = (-top).clamp(0, 3) as usize;
            let ky1 = (g.h as isize - top).clamp(0, 3) as usize;
            let xrow = xc.wrapping_offset(top * (g.w * wd) as isize);
            let orow = oc.add(oy * g.ow * wd);
            let c = (xrow, g, wv, bv, act, orow, ky0, ky1, wd);
            if runs.is_empty() {
                for ox in 0..g.ow {
                    dw_checked::<FULL>(c, ox);
                }
                continue;
            }
            for r in runs {
                if r.edges == CHECKED {
                    dw_checked::<FULL>(c, r.ox0);
                    continue;
                }
                // Input column of tap column 0 of output `ox0` (one before the plane's first
                // column when output 0 skips its column 0).
                let xr = xrow.wrapping_add((r.ox0 * sw) * wd).wrapping_sub(pl * wd);
                let k = (xr, g.w * wd, wv, bv, act, orow.add(r.ox0 * wd), ky0, ky1, wd, mk);
                macro_rules! go {
                    ($s:literal, $l:literal, $r:literal) => {
                        match r.n {
                            8 => dw_tile::<8, $s, $l, $r, FULL>(k),
                            7 => dw_tile::<7, $s, $l, $r, FULL>(k),
                            6 => dw_tile::<6, $s, $l, $r, FULL>(k),
                            5 => dw_tile::<5, $s, $l, $r, FULL>(k),
                            4 => dw_tile::<4, $s, $l, $r, FULL>(k),
                            3 => dw_tile::<3, $s, $l, $r, FULL>(k),
                            2 => dw_tile::<2, $s, $l, $r, FULL>(k),
                            _ => dw_tile::<1, $s, $l, $r, FULL>(k),
                        }
                    };
                }
                match (sw, r.edges) {
                    (1, 0) => go!(1, false, false),
                    (1, 1) => go!(1, true, false),
                    (1, 2) => go!(1, false, true),
                    (1, _) => go!(1, true, true),
                    (_, 0) => go!(2, false, false),
                    (_, 1) => go!(2, true, false),
                    (_, 2) => go!(2, false, true),
                    (_, _) => go!(2, true, true),
                }
            }
        }
    }
}

/// `wd` lanes at `p`: a plain load for a full block, masked otherwise.
#[inline(always)]
unsafe fn load<const FULL: bool>(p: *const f32, mk: __mmask16) -> __m512 {
    // SAFETY: the caller's bounds (the block's `wd` lanes at `p`).
    unsafe {
        if FULL {
            _mm512_loadu_ps(p)
        } else {
            _mm512_maskz_loadu_ps(mk, p)
        }
    }
}

/// Stores `v` to the block's lanes at `p`.
#[inline(always)]
unsafe fn store<const FULL: bool>(p: *mut f32, mk: __mmask16, v: __m512) {
    // SAFETY: the caller's bounds.
    unsafe {
        if FULL {
            _mm512_storeu_ps(p, v)
        } else {
            _mm512_mask_storeu_ps(p, mk, v)
        }
    }
}

type CheckedArgs<'a> = (*const f32, &'a Geom, &'a [__m512; 9], __m512, Activation, *mut f32, usize, usize, usize);

/// Output `ox` of a row, each tap checked against the input columns.
#[inline(always)]
unsafe fn dw_checked<const FULL: bool>((xrow, g, wv, bv, act, orow, ky0, ky1, wd): CheckedArgs<'_>, ox: usize) {
    let mk = lanes(wd);
    // SAFETY: the caller's bounds; only columns inside the input are loaded.
    unsafe {
        let mut acc = bv;
        for ky in ky0..ky1 {
            let xr = xrow.wrapping_add(ky * g.w * wd);
            for kx in 0..3 {
                let ix = (ox * g.sw + kx) as isize - g.pl as isize;
                if ix >= 0 && (ix as usize) < g.w {
                    acc = _mm512_fmadd_ps(wv[ky * 3 + kx], load::<FULL>(xr.add(ix as usize * wd), mk), acc);
                }
            }
        }
        store::<FULL>(orow.add(ox * wd), mk, act_zmm(Some(act), acc));
    }
}

type DwArgs<'a> = (*const f32, usize, &'a [__m512; 9], __m512, Activation, *mut f32, usize, usize, usize, __mmask16);

/// `T` consecutive outputs of a row: kernel rows `ky0 .. ky1`, input row `ky` at `xr +
/// ky·pitch`, output `i`'s tap column `kx` at `(i·S + kx)·wd` floats along it; with `L`, output
/// 0 skips column 0, with `R` output `T − 1` skips column 2 (the taps outside the input).
#[inline(always)]
unsafe fn dw_tile<const T: usize, const S: usize, const L: bool, const R: bool, const FULL: bool>(
    (xr, pitch, wv, bv, act, o, ky0, ky1, wd, mk): DwArgs<'_>,
) {
    // A full block's width is a constant.
    let wd = if FULL { LANES } else { wd };
    // SAFETY: the caller's bounds; the skipped taps are the only ones outside the input.
    unsafe {
        let mut acc = [bv; T];
        // Every kernel row unrolled, those outside the input skipped: with a constant row the
        // nine weight registers stay in registers (a row loop bounded at run time read each
        // from memory, a second load per multiply-add).
        for ky in 0..3 {
            if ky < ky0 || ky >= ky1 {
                continue;
            }
            let r = xr.wrapping_add(ky * pitch);
            for kx in 0..3 {
                let wt = wv[ky * 3 + kx];
                for (i, a) in acc.iter_mut().enumerate() {
                    if (L && i == 0 && kx == 0) || (R && i == T - 1 && kx == 2) {
                        continue;
                    }
                    *a = _mm512_fmadd_ps(wt, load::<FULL>(r.wrapping_add((i * S + kx) * wd), mk), *a);
                }
            }
        }
        for (i, a) in acc.iter().enumerate() {
            store::<FULL>(o.add(i * wd), mk, act_zmm(Some(act), *a));
        }
    }
}

/// Average over each whole plane of a blocked tensor of `c` channels over `hw` positions, `n`
/// batch items: `out[s·c + ch]` (planar: one value per channel), the sum over positions in order
/// divided by `hw`. `Err(ShapeMismatch)` when a slice is too short.
pub(crate) fn average_planes(x: &[f32], n: usize, c: usize, hw: usize, out: &mut [f32]) -> Result<(), OpError> {
    let fits = avx512()
        && c > 0
        && hw > 0
        && n.checked_mul(c).and_then(|v| v.checked_mul(hw)).is_some_and(|l| x.len() >= l)
        && n.checked_mul(c).is_some_and(|l| out.len() >= l);
    if !fits {
        return Err(OpError::ShapeMismatch);
    }
    for s in 0..n {
        // SAFETY: AVX-512 F detected; item `s` inside the lengths checked above.
        unsafe { avg_core(x.as_ptr().add(s * c * hw), c, hw, out.as_mut_ptr().add(s * c)) };
    }
    Ok(())
}

#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn avg_core(x: *const f32, c: usize, hw: usize, out: *mut f32) {
    let d = _mm512_set1_ps(hw as f32);
    // SAFETY: the blocks of `c` channels over `hw` positions at `x`, `c` outputs at `out`.
    unsafe {
        for cb in 0..c.div_ceil(LANES) {
            let (wd, xb) = (width(c, cb), x.add(cb * hw * LANES));
            let mk = lanes(wd);
            let mut s = _mm512_maskz_loadu_ps(mk, xb);
            for p in 1..hw {
                s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(mk, xb.add(p * wd)));
            }
            _mm512_mask_storeu_ps(out.add(cb * LANES), mk, _mm512_div_ps(s, d));
        }
    }
}

/// Where channel `ch` of `c` at position `p` lies in a blocked item of `hw` positions.
#[cfg(test)]
fn at(c: usize, hw: usize, ch: usize, p: usize) -> usize {
    let b = ch / LANES;
    b * LANES * hw + p * width(c, b) + ch % LANES
}

/// Planar `x` (`c` channels over `hw` positions, `n` items) written blocked, and back
/// ([`unblock`]): the definition of the layout the kernels are tested against.
#[cfg(test)]
pub(crate) fn block(x: &[f32], n: usize, c: usize, hw: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for s in 0..n {
        for ch in 0..c {
            for p in 0..hw {
                out[s * c * hw + at(c, hw, ch, p)] = x[s * c * hw + ch * hw + p];
            }
        }
    }
    out
}

/// The inverse of [`block`].
#[cfg(test)]
pub(crate) fn unblock(x: &[f32], n: usize, c: usize, hw: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for s in 0..n {
        for ch in 0..c {
            for p in 0..hw {
                out[s * c * hw + ch * hw + p] = x[s * c * hw + at(c, hw, ch, p)];
            }
        }
    }
    out
}

/// Most floats of a planar input a depthwise layer blocks onto the stack (64 KiB).
pub(crate) const BLOCK_IN: usize = 16384;

/// Writes one item of `c` planar channels of `hw` positions at `x` blocked to `out`: 16
/// positions of a block at a time transposed in registers, the last positions masked, a narrower
/// last block's lanes masked.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn block_core(x: *const f32, c: usize, hw: usize, out: *mut f32) {
    // SAFETY: block `b` reads its `wd` channels, positions below `hw`, and writes its `wd·hw`
    // floats (the caller's bounds).
    unsafe {
        for b in 0..c.div_ceil(LANES) {
            let (xb, ob, wd) = (x.add(b * LANES * hw), out.add(b * LANES * hw), width(c, b));
            let mk = lanes(wd);
            let mut p0 = 0;
            while p0 < hw {
                let np = (hw - p0).min(LANES);
                let pm = lanes(np);
                let t = transpose16(core::array::from_fn(|ch| {
                    if ch < wd {
                        _mm512_maskz_loadu_ps(pm, xb.add(ch * hw + p0))
                    } else {
                        _mm512_setzero_ps()
                    }
                }));
                if wd == LANES && np == LANES {
                    for (p, v) in t.iter().enumerate() {
                        _mm512_storeu_ps(ob.add((p0 + p) * LANES), *v);
                    }
                } else {
                    for (p, v) in t.iter().enumerate().take(np) {
                        _mm512_mask_storeu_ps(ob.add((p0 + p) * wd), mk, *v);
                    }
                }
                p0 += LANES;
            }
        }
    }
}

/// Layout bits of a plan step ([`crate::session`]): input 0 is blocked.
pub(crate) const IN: u8 = 1;
/// Layout bits of a plan step: the output is blocked.
pub(crate) const OUT: u8 = 2;

/// What an operator does in a blocked chain, from its operator, kernel and operand shapes (the
/// plan's analysis, before any layout is chosen): `Some(Pointwise)` for a 1×1 Conv [`pointwise`]
/// takes (planar or blocked input, blocked output), `Some(Depthwise)` for one [`depthwise`] takes
/// (blocked output; a planar input is blocked onto the stack first when it fits [`BLOCK_IN`],
/// else `DepthwiseBlockedOnly`), `Some(Average)` for an average over each whole plane of a multiple of 16
/// channels (blocked input, planar output); `None` for anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Pointwise,
    /// A depthwise layer whose input, when planar, fits [`BLOCK_IN`].
    Depthwise,
    /// A depthwise layer that runs blocked only on a blocked input.
    DepthwiseBlockedOnly,
    Average,
}

/// The [`Role`] of `op` (run with `kernel`) on operands of `shapes`, the weight and bias (when
/// present) constants `consts`.
pub(crate) fn role(
    op: &crate::op::Op,
    kernel: u16,
    shapes: &[crate::shape::Shape],
    consts: &[bool],
    out: &crate::shape::Shape,
) -> Option<Role> {
    use crate::op::Op;
    let x = shapes.first()?;
    if x.rank() != 4 || out.rank() != 4 || kernel != crate::format::kernel::DEFAULT {
        return None;
    }
    let (c, hw) = (x.dim(1), x.dim(2) * x.dim(3));
    match op {
        Op::Conv(a) => {
            let w = shapes.get(1)?;
            // The weight (and bias) constants, read in place or decoded.
            if w.rank() != 4 || !consts.get(1..).is_some_and(|k| k.iter().all(|&k| k)) || shapes.len() > 3 {
                return None;
            }
            let g = Geom::new(a, x, w, out);
            if a.group == 1 && g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && a.pads == [0; 4] && g.oh * g.ow == hw {
                (g.m > 0 && g.m <= 1024 && c * g.m.div_ceil(LANES) * LANES <= PW_WEIGHTS && hw > 0).then_some(Role::Pointwise)
            } else if a.group as usize == c && depthwise_applies(&g) {
                Some(if x.numel().is_some_and(|l| l <= BLOCK_IN) { Role::Depthwise } else { Role::DepthwiseBlockedOnly })
            } else {
                None
            }
        }
        Op::AveragePool(p) => {
            let whole = p.kernel == [x.dim(2) as u32, x.dim(3) as u32] && p.pads == [0; 4] && p.dilation == [1, 1];
            (whole && out.dim(2) == 1 && out.dim(3) == 1 && c > 0 && hw > 0).then_some(Role::Average)
        }
        Op::GlobalAveragePool => (c > 0 && hw > 0).then_some(Role::Average),
        _ => None,
    }
}

/// Runs `op` (of [`Role`] per [`role`]) with layout bits `layout` ([`IN`], [`OUT`]) on
/// `inputs`. `Err` (nothing written) for an operator or layout these kernels do not take.
pub(crate) fn run(
    op: &crate::op::Op,
    layout: u8,
    inputs: &[super::Operand<'_>],
    out: &mut [f32],
    y: &crate::shape::Shape,
) -> Result<(), OpError> {
    use crate::op::Op;
    use crate::view::View;
    let x = inputs.first().ok_or(OpError::BadArity)?;
    let xs = x.view.as_f32().ok_or(OpError::ShapeMismatch)?;
    let (n, c, hw) = (x.shape.dim(0), x.shape.dim(1), x.shape.dim(2) * x.shape.dim(3));
    let blocked_in = layout & IN != 0;
    match op {
        Op::AveragePool(_) | Op::GlobalAveragePool if blocked_in && layout & OUT == 0 => average_planes(xs, n, c, hw, out),
        Op::Conv(a) if layout & OUT != 0 => {
            let w = inputs.get(1).ok_or(OpError::BadArity)?;
            let g = Geom::new(a, &x.shape, &w.shape, y);
            let (rows, cols) = (g.m, g.cg * g.kh * g.kw);
            let mut bb;
            let bias: &[f32] = match inputs.get(2).map(|b| b.view) {
                None => &[],
                Some(View::F32(b)) => b,
                Some(v) => {
                    bb = [0.0f32; 1024];
                    let bb = bb.get_mut(..g.m).ok_or(OpError::ShapeMismatch)?;
                    v.read_into(0, bb);
                    bb
                }
            };
            // A 1×1 Conv with strides or padding is neither layer kind (refused below).
            let pointwise_layer = a.group == 1 && g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && a.pads == [0; 4] && g.oh * g.ow == hw;
            let layout = if blocked_in { Layout::Blocked } else { Layout::Planar };
            // 4-bit codes (at most 16 groups) decoded straight into the transposed weights.
            if let (true, View::Codebook(cb)) = (pointwise_layer, w.view) {
                let (parts, info) = (cb.parts(), cb.info());
                let fits = |k: &super::x86::Codes| {
                    k.wide() && parts.bits() == 4 && parts.groups() <= 16 && cb.is_whole() && info.rows == rows && info.cols == cols
                };
                if let Some(codes) = super::x86::Codes::detect().filter(fits) {
                    return pointwise(xs, layout, n, c, hw, Weights::Codes4(codes, &parts), g.m, bias, a.act, out);
                }
            }
            with_weights(w.view, rows, cols, |wv| {
                if pointwise_layer {
                    pointwise(xs, layout, n, c, hw, Weights::Rows(wv), g.m, bias, a.act, out)
                } else if blocked_in {
                    depthwise(xs, n, &g, wv, bias, a.act, out)
                } else {
                    // A planar input (the first layer of a chain) blocked onto the stack.
                    let len = xs.len();
                    if len > BLOCK_IN || n * c * hw != len || !avx512() {
                        return Err(OpError::ShapeMismatch);
                    }
                    let mut store = Lines([MaybeUninit::<f32>::uninit(); BLOCK_IN]);
                    // SAFETY: AVX-512 F detected; `block_core` writes every one of each item's
                    // `c·hw` floats, so all `len` are initialized.
                    let xb = unsafe {
                        let o = store.0.as_mut_ptr().cast::<f32>();
                        for s in 0..n {
                            block_core(xs.as_ptr().add(s * c * hw), c, hw, o.add(s * c * hw));
                        }
                        core::slice::from_raw_parts(store.0.as_ptr().cast::<f32>(), len)
                    };
                    depthwise(xb, n, &g, wv, bias, a.act, out)
                }
            })
        }
        _ => Err(OpError::ShapeMismatch),
    }
}

/// Runs `f` on the `rows × cols` weights of `view` as f32: in place when stored so, else decoded
/// onto the stack (at most [`PW_WEIGHTS`]).
fn with_weights(
    view: crate::view::View<'_>,
    rows: usize,
    cols: usize,
    f: impl FnOnce(&[f32]) -> Result<(), OpError>,
) -> Result<(), OpError> {
    use crate::view::View;
    let len = rows.checked_mul(cols).filter(|&l| l <= PW_WEIGHTS).ok_or(OpError::ShapeMismatch)?;
    match view {
        View::F32(w) => f(w.get(..len).ok_or(OpError::ShapeMismatch)?),
        View::Codebook(cb) => {
            let info = cb.info();
            if !cb.is_whole() || info.rows != rows || info.cols != cols {
                return Err(OpError::ShapeMismatch);
            }
            let parts = cb.parts();
            let mut buf = [MaybeUninit::<f32>::uninit(); PW_WEIGHTS];
            if let Some(codes) = super::x86::Codes::detect().filter(|c| c.wide() && parts.bits() == 4 && parts.groups() <= 16) {
                let w = codes.decode_rows4(&parts, 0, cols, &mut buf[..len]).ok_or(OpError::ShapeMismatch)?;
                return f(w);
            }
            if let Some(books) = super::x86::Codes::detect().and_then(|c| c.decoder4(&parts)) {
                let w = books.decode_rows(&parts, 0, cols, &mut buf[..len]).ok_or(OpError::ShapeMismatch)?;
                return f(w);
            }
            let mut wb = [0.0f32; PW_WEIGHTS];
            let mut table = crate::codebook::Table::new();
            for (r, row) in wb[..len].chunks_exact_mut(cols.max(1)).enumerate() {
                table.decode_parts(&parts, r, 0, row);
            }
            f(&wb[..len])
        }
        v => {
            let mut wb = [0.0f32; PW_WEIGHTS];
            v.read_into(0, &mut wb[..len]);
            f(&wb[..len])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::*;
    use crate::kernels::Operand;
    use crate::op::Op;
    use crate::view::View;
    use proptest::prelude::*;

    /// Output dims of a Conv of `xd` by `wd` under `a`.
    fn out_dims(xd: &[usize], wd: &[usize], a: &crate::op::ConvAttrs) -> Vec<usize> {
        let (s, p) = (a.stride.map(|v| v as usize), a.pads.map(|v| v as usize));
        vec![xd[0], wd[0], (xd[2] + p[0] + p[2] - wd[2]) / s[0] + 1, (xd[3] + p[1] + p[3] - wd[3]) / s[1] + 1]
    }

    /// Runs Conv `a` through [`run`] with `layout`, the input given planar (blocked first when
    /// the layout says so), and returns the output planar.
    fn conv(
        a: &crate::op::ConvAttrs,
        layout: u8,
        x: &[f32],
        xd: &[usize],
        w: View<'_>,
        wd: &[usize],
        b: Option<&[f32]>,
    ) -> Result<Vec<f32>, OpError> {
        let yd = out_dims(xd, wd, a);
        let hw = xd[2] * xd[3];
        let xin = if layout & IN != 0 { block(x, xd[0], xd[1], hw) } else { x.to_vec() };
        let mut ops = vec![Operand { view: View::F32(&xin), shape: sh(xd) }, Operand { view: w, shape: sh(wd) }];
        let bd = [wd[0]];
        if let Some(b) = b {
            ops.push(Operand { view: View::F32(b), shape: sh(&bd) });
        }
        let mut out = vec![f32::NAN; yd.iter().product()];
        super::run(&Op::Conv(*a), layout, &ops, &mut out, &sh(&yd))?;
        Ok(unblock(&out, yd[0], yd[1], yd[2] * yd[3]))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(64)))]
        /// The blocked 1×1 Conv from a planar or blocked input, f32, 4- or 3-bit weights, matches
        /// the naive Conv for every output tile shape (64, 32 and 16 outputs; ragged positions)
        /// and channel counts that leave a narrower last block on either side.
        #[test]
        fn pointwise_matches_naive(n in 1usize..3, c in 1usize..50, m in 1usize..90, h in 1usize..6, wd in 1usize..14, bias in any::<bool>(),
                                   act in 0u8..3, blocked_in in any::<bool>(), coded in any::<bool>(), bits in prop_oneof![Just(4u8), Just(3)],
                                   seed in 0u64..1000) {
            if !ready() {
                return Ok(());
            }
            let xd = [n, c, h, wd];
            let x = data(n * c * h * wd, seed);
            // 4-bit codes decode straight into the transposed weights, 3-bit ones row by row.
            let (payload, wq) = quantized(m, c, bits, false, 3, seed + 1);
            let w = if coded { wq.clone() } else { data(m * c, seed + 1) };
            let cb = crate::codebook::Codebook::parse(&payload, m, c).unwrap();
            let wv = if coded { View::Codebook(cb) } else { View::F32(&w) };
            let b = data(m, seed + 2);
            let a = conv_attrs(1, [1, 1], [1, 1], [0; 4], act);
            let wdims = [m, c, 1, 1];
            let layout = OUT | if blocked_in { IN } else { 0 };
            let got = conv(&a, layout, &x, &xd, wv, &wdims, bias.then_some(&b[..])).unwrap();
            let yd = out_dims(&xd, &wdims, &a);
            assert_conv_close(&got, &x, &xd, &w, &wdims, bias.then_some(&b[..]), &a, &yd, 1e-5);
        }

        /// The blocked depthwise 3 × 3 Conv matches the naive Conv at strides 1 and 2, every
        /// padding up to 2, rows of 1 to 20 outputs (tiles, edges and checked columns), whole
        /// and narrower last channel blocks.
        #[test]
        fn depthwise_matches_naive(n in 1usize..3, c in 1usize..40, h in 1usize..9, wd in 1usize..21, s in (1usize..3, 1usize..3),
                                   pads in proptest::array::uniform4(0usize..3), bias in any::<bool>(), act in 0u8..3, seed in 0u64..1000) {
            if !ready() || h + pads[0] + pads[2] < 3 || wd + pads[1] + pads[3] < 3 {
                return Ok(());
            }
            let xd = [n, c, h, wd];
            let x = data(n * c * h * wd, seed);
            let w = data(c * 9, seed + 1);
            let b = data(c, seed + 2);
            let a = conv_attrs(c, [s.0, s.1], [1, 1], pads, act);
            let wdims = [c, 1, 3, 3];
            let yd = out_dims(&xd, &wdims, &a);
            for layout in [IN | OUT, OUT] {
                // A planar input is blocked onto the stack first.
                let got = conv(&a, layout, &x, &xd, View::F32(&w), &wdims, bias.then_some(&b[..])).unwrap();
                assert_conv_close(&got, &x, &xd, &w, &wdims, bias.then_some(&b[..]), &a, &yd, 1e-5);
            }
        }

        /// The blocked whole-plane average is each channel's mean, planar.
        #[test]
        fn averages_are_the_plane_means(n in 1usize..3, c in 1usize..50, hw in 1usize..130, seed in 0u64..1000) {
            if !ready() {
                return Ok(());
            }
            let x = data(n * c * hw, seed);
            let mut out = vec![f32::NAN; n * c];
            average_planes(&block(&x, n, c, hw), n, c, hw, &mut out).unwrap();
            for (i, &v) in out.iter().enumerate() {
                let want = x[i * hw..(i + 1) * hw].iter().map(|&v| v as f64).sum::<f64>() / hw as f64;
                prop_assert!((v as f64 - want).abs() <= 1e-5 * (1.0 + x[i * hw..(i + 1) * hw].iter().map(|v| v.abs() as f64).sum::<f64>() / hw as f64));
            }
        }
    }

    /// Lane `j` of result `i` is lane `i` of input `j`.
    #[test]
    fn transpose16_transposes() {
        if !ready() {
            return;
        }
        let rows: Vec<[f32; 16]> = (0..16).map(|j| core::array::from_fn(|i| (j * 16 + i) as f32)).collect();
        // SAFETY: AVX-512 F detected.
        let got: [[f32; 16]; 16] =
            unsafe { core::mem::transmute(transpose16(core::array::from_fn(|j| _mm512_loadu_ps(rows[j].as_ptr())))) };
        for (i, r) in got.iter().enumerate() {
            for (j, &v) in r.iter().enumerate() {
                assert_eq!(v, rows[j][i], "result {i} lane {j}");
            }
        }
    }

    /// Layouts the kernels do not take are refused before anything is written: a depthwise
    /// layer to a planar output or from a planar input too large for the stack, a pointwise
    /// layer to a planar output or with too many weights.
    #[test]
    fn other_layouts_are_refused() {
        if !ready() {
            return;
        }
        let x = data(2 * 16 * 9, 1);
        let dw = data(16 * 9, 2);
        let a = conv_attrs(16, [1, 1], [1, 1], [1; 4], 1);
        assert!(conv(&a, IN, &x, &[2, 16, 3, 3], View::F32(&dw), &[16, 1, 3, 3], None).is_err());
        let n = BLOCK_IN / (16 * 9) + 1;
        let big = data(n * 16 * 9, 6);
        assert!(conv(&a, OUT, &big, &[n, 16, 3, 3], View::F32(&dw), &[16, 1, 3, 3], None).is_err());
        assert!(conv(&a, OUT, &big[..(n - 1) * 16 * 9], &[n - 1, 16, 3, 3], View::F32(&dw), &[16, 1, 3, 3], None).is_ok());
        let pw = data(16 * 16, 3);
        let a1 = conv_attrs(1, [1, 1], [1, 1], [0; 4], 1);
        assert!(conv(&a1, IN, &x, &[2, 16, 3, 3], View::F32(&pw), &[16, 16, 1, 1], None).is_err());
        // A padded or strided 1×1 Conv is not a pointwise layer of these kernels.
        for a in [conv_attrs(1, [1, 1], [1, 1], [1; 4], 1), conv_attrs(1, [2, 2], [1, 1], [0; 4], 1)] {
            assert!(conv(&a, OUT, &x, &[2, 16, 3, 3], View::F32(&pw), &[16, 16, 1, 1], None).is_err());
        }
        // 200 inputs to 90 outputs: 200 × 96 padded weights, more than the stack takes.
        let x200 = data(200 * 9, 4);
        let pw200 = data(90 * 200, 5);
        assert!(conv(&a1, IN | OUT, &x200, &[1, 200, 3, 3], View::F32(&pw200), &[90, 200, 1, 1], None).is_err());
    }
}
