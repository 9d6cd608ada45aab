//! Depthwise Conv (one filter per input channel) on CPUs with SIMD. Each channel's plane is
//! split into its `s × s` stride phases (`s` the stride; one phase at stride 1), each a
//! zero-bordered stack plane whose row pitch is also the extended output's; every kernel tap
//! is then one contiguous pass over one phase plane that the compiler vectorises, with no
//! per-row or per-border work and no strided loads. Columns past the output width are
//! computed into the buffer and dropped.
//!
//! Each output sums the bias, then the taps in `(ky, kx)` order (padding taps add `w · 0`), as
//! the row-run loop does.

use super::conv::Geom;
use super::gemm::Micro;
use super::sub_mut;
use crate::op::{Activation, OpError};
use crate::view::View;

/// Floats in each of the two stack buffers (phase planes, extended output plane).
const BUF: usize = 4096;

/// Where tap `(ky, kx)` reads: phase `(ky·dh mod s, kx·dw mod s)`, shifted by
/// `(ky·dh / s, kx·dw / s)` phase rows and columns.
#[derive(Clone, Copy)]
struct Layout {
    /// The stride (both axes).
    s: usize,
    /// Row pitch of the phase planes and the extended output.
    pitch: usize,
    /// Rows of a phase plane.
    rows: usize,
    /// Floats per phase plane (its rows plus the zero tail the last taps run into).
    phase_len: usize,
}

/// The [`Layout`] for `g`, when it fits the stack buffers.
fn layout(g: &Geom) -> Option<Layout> {
    if g.cg != 1 || g.mg != 1 || g.sh != g.sw || g.sw == 0 || g.kh * g.kw == 0 || g.oh == 0 || g.ow == 0 || g.h == 0 || g.w == 0 {
        return None;
    }
    let s = g.sw;
    let (qy, qx) = ((g.kh - 1) * g.dh / s, (g.kw - 1) * g.dw / s);
    // Output column `ox < ow` reads phase column `ox + kx·dw / s < ow + qx`.
    let pitch = g.ow + qx;
    let rows = g.oh + qy;
    // Zero tail: the last taps' runs end `qx` past the rows, the blocked kernel's `PX - 1`.
    let phase_len = rows * pitch + qx.max(PX - 1);
    (s * s * phase_len <= BUF && g.oh * pitch <= BUF).then_some(Layout { s, pitch, rows, phase_len })
}

/// Whether [`depthwise`] takes this layer: depthwise multiplier 1, equal strides, and phase
/// planes small enough for the stack buffers.
pub(super) fn applies(g: &Geom) -> bool {
    layout(g).is_some()
}

/// Most taps per filter (larger kernels keep the row-run loop).
const MAX_TAPS: usize = 64;
/// Extended-output floats summed in registers at a time (four AVX2 or two AVX-512 registers).
const CB: usize = 32;

/// Channels the blocked kernel sums together, interleaved (one AVX-512 register, two AVX2 or
/// four NEON registers).
const LANES: usize = 16;
/// Floats of interleaved phase planes the blocked kernel keeps on the stack (32 KiB).
const BUF_BLOCK: usize = 8192;
/// Output positions of one row the blocked kernel sums together.
const PX: usize = 4;

/// What both depthwise kernels share: the layout, per tap where its run starts in a phase
/// plane buffer (in phase positions), and per phase column `px` the phase columns `lo .. hi`
/// inside the input with the input column of `lo` (phase column `rx` holds input column
/// `rx·s + px - pl`).
struct Setup {
    l: Layout,
    taps: usize,
    in_plane: usize,
    off: [usize; MAX_TAPS],
    cols: [(usize, usize, usize); MAX_STRIDE],
}

/// Largest stride the kernels take.
const MAX_STRIDE: usize = 16;

impl Setup {
    /// Errors when `g` does not fit the buffers or a slice is shorter than `g` needs.
    fn new(g: &Geom, x_len: usize, w_len: usize) -> Result<Setup, OpError> {
        let l = layout(g).ok_or(OpError::ShapeMismatch)?;
        let taps = g.kh * g.kw;
        if x_len < g.c * g.h * g.w || g.m > g.c || w_len < g.m * taps || taps > MAX_TAPS || l.s > MAX_STRIDE {
            return Err(OpError::ShapeMismatch);
        }
        let s = l.s;
        let mut off = [0usize; MAX_TAPS];
        for (t, o) in off.iter_mut().enumerate().take(taps) {
            let (dy, dx) = ((t / g.kw) * g.dh, (t % g.kw) * g.dw);
            *o = ((dy % s) * s + dx % s) * l.phase_len + (dy / s) * l.pitch + dx / s;
        }
        let mut cols = [(0usize, 0usize, 0usize); MAX_STRIDE];
        for (px, c) in cols.iter_mut().enumerate().take(s) {
            let lo = g.pl.saturating_sub(px).div_ceil(s);
            let hi = (g.w + g.pl).saturating_sub(px).div_ceil(s).min(l.pitch);
            *c = (lo, hi.max(lo), (lo * s + px).saturating_sub(g.pl));
        }
        Ok(Setup { l, taps, in_plane: g.h * g.w, off, cols })
    }

    /// Writes channel plane `src` into the phase planes `ph`, leaving the padding cells as
    /// they are (zero).
    #[inline(always)]
    fn phases(&self, g: &Geom, src: &[f32], ph: &mut [f32]) {
        let (s, l) = (self.l.s, &self.l);
        for p in 0..s * s {
            let (py, (lo, hi, ix0)) = (p / s, self.cols[p % s]);
            for ry in 0..l.rows {
                let Some(iy) = (ry * s + py).checked_sub(g.pt).filter(|&iy| iy < g.h) else { continue };
                let row = &src[iy * g.w..(iy + 1) * g.w];
                let dst = &mut ph[p * l.phase_len + ry * l.pitch + lo..p * l.phase_len + ry * l.pitch + hi];
                if s == 1 {
                    copy_short(dst, &row[ix0..ix0 + dst.len()]);
                } else {
                    for (i, d) in dst.iter_mut().enumerate() {
                        *d = row[ix0 + i * s];
                    }
                }
            }
        }
    }

    /// Whether the blocked kernel takes this layer: its interleaved phase planes fit
    /// [`BUF_BLOCK`] and a block's planes are indexable by `i32` (the gathers).
    fn blocks(&self) -> bool {
        self.l.s * self.l.s * self.l.phase_len * LANES <= BUF_BLOCK && self.in_plane.saturating_mul(LANES) <= i32::MAX as usize / 2
    }

    /// Writes the `nl ≤ LANES` channel planes `xb` into the interleaved phase planes `ph`
    /// (position `i`, channel `lane` at `ph[i·LANES + lane]`; lanes past `nl` zero), leaving the
    /// padding cells as they are (zero): one masked gather of the block's channels per position.
    #[inline(always)]
    fn gather_block<M: Micro>(&self, mk: M, g: &Geom, xb: &[f32], nl: usize, ph: &mut [f32]) {
        let (s, l) = (self.l.s, &self.l);
        let mut idx = [0i32; LANES];
        for (lane, v) in idx.iter_mut().enumerate().take(nl) {
            *v = (lane * self.in_plane) as i32;
        }
        let mask = if nl >= LANES { u16::MAX } else { (1u16 << nl) - 1 };
        let mut rows = [(0i32, 0u16); GATHER_ROWS];
        for p in 0..s * s {
            let (py, (lo, hi, ix0)) = (p / s, self.cols[p % s]);
            for ry in 0..l.rows {
                let Some(iy) = (ry * s + py).checked_sub(g.pt).filter(|&iy| iy < g.h) else { continue };
                let at = p * l.phase_len + ry * l.pitch + lo;
                let mut i = 0;
                while i < hi - lo {
                    let n = GATHER_ROWS.min(hi - lo - i);
                    for (k, r) in rows.iter_mut().enumerate().take(n) {
                        *r = ((iy * g.w + ix0 + (i + k) * s) as i32, mask);
                    }
                    mk.gather_rows(&mut ph[(at + i) * LANES..(at + i + n) * LANES], xb, &idx, &rows[..n]);
                    i += n;
                }
            }
        }
    }
}

/// Positions [`Setup::gather_block`] gathers per call.
const GATHER_ROWS: usize = 64;

/// Depthwise Conv of one batch item; `w` holds `m · kh · kw` weights (any storage). Blocks of
/// [`LANES`] channels run interleaved when their phase planes fit [`BUF_BLOCK`], single
/// channels otherwise; both give the same sums. Forced inline so a SIMD caller's target
/// features reach its loops.
#[inline(always)]
pub(super) fn depthwise<M: Micro>(
    mk: M,
    g: &Geom,
    x: &[f32],
    w: View<'_>,
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
) -> Result<(), OpError> {
    let st = Setup::new(g, x.len(), w.len())?;
    let a = Args { x, w, bias, act };
    if st.blocks() {
        blocked(mk, g, &st, &a, out)
    } else {
        per_channel(g, &st, &a, out)
    }
}

/// The operands of one depthwise call.
struct Args<'a> {
    x: &'a [f32],
    w: View<'a>,
    bias: Option<View<'a>>,
    act: Activation,
}

/// [`depthwise`] one channel at a time: one contiguous pass per tap over its phase plane.
#[inline(always)]
fn per_channel(g: &Geom, st: &Setup, a: &Args<'_>, out: &mut [f32]) -> Result<(), OpError> {
    let (l, taps, off, plane) = (&st.l, st.taps, &st.off[..st.taps], g.oh * g.ow);
    let (x, w, bias, act, in_plane) = (a.x, a.w, a.bias, a.act, st.in_plane);
    let mut wt = [0.0f32; MAX_TAPS];
    let mut ph = [0.0f32; BUF];
    let mut op = [0.0f32; BUF];
    let ph = &mut ph[..l.s * l.s * l.phase_len];
    let out_len = g.oh * l.pitch;
    let op = &mut op[..out_len];
    for c in 0..g.m {
        ph.fill(0.0);
        st.phases(g, &x[c * in_plane..(c + 1) * in_plane], ph);
        w.read_into(c * taps, &mut wt[..taps]);
        // Blocks of the extended output held in registers while every tap adds its contiguous
        // run (the compiler vectorises the block), then the activation over the whole plane.
        let b0 = bias.map_or(0.0, |b| b.get(c));
        let wt = &wt[..taps];
        let mut j = 0;
        while j < out_len {
            let n = CB.min(out_len - j);
            if n == CB {
                let mut acc = [b0; CB];
                for (&o, &wv) in off.iter().zip(wt) {
                    let Ok(xs) = <&[f32; CB]>::try_from(&ph[o + j..o + j + CB]) else { continue };
                    for (a, v) in acc.iter_mut().zip(xs) {
                        *a += wv * v;
                    }
                }
                op[j..j + CB].copy_from_slice(&acc);
            } else {
                let acc = &mut op[j..j + n];
                acc.fill(b0);
                for (&o, &wv) in off.iter().zip(wt) {
                    for (a, v) in acc.iter_mut().zip(&ph[o + j..o + j + n]) {
                        *a += wv * v;
                    }
                }
            }
            j += n;
        }
        act.apply_all(op);
        let ob = sub_mut(out, c * plane, plane)?;
        for (orow, erow) in ob.chunks_exact_mut(g.ow).zip(op.chunks_exact(l.pitch)) {
            copy_short(orow, &erow[..g.ow]);
        }
    }
    Ok(())
}

/// [`depthwise`] on [`LANES`] channels at a time, interleaved: every output position sums
/// the bias and then each tap as one vector of channels, and is scattered back to the planes.
#[inline(always)]
fn blocked<M: Micro>(mk: M, g: &Geom, st: &Setup, a: &Args<'_>, out: &mut [f32]) -> Result<(), OpError> {
    let (l, taps, off, plane) = (&st.l, st.taps, &st.off[..st.taps], g.oh * g.ow);
    let (x, w, bias, act, in_plane) = (a.x, a.w, a.bias, a.act, st.in_plane);
    let mut wt = [[0.0f32; LANES]; MAX_TAPS];
    let mut ph = [0.0f32; BUF_BLOCK];
    let ph = &mut ph[..l.s * l.s * l.phase_len * LANES];
    let out = out.get_mut(..g.m * plane).ok_or(OpError::ShapeMismatch)?;
    let mut c0 = 0;
    while c0 < g.m {
        let nl = LANES.min(g.m - c0);
        ph.fill(0.0);
        let mut b = [0.0f32; LANES];
        st.gather_block(mk, g, &x[c0 * in_plane..(c0 + nl) * in_plane], nl, ph);
        if let Some(bv) = bias {
            bv.read_into(c0, &mut b[..nl]);
        }
        // The block's filters decoded in one call, then laid out tap-major.
        let mut wb = [0.0f32; LANES * MAX_TAPS];
        w.read_into(c0 * taps, &mut wb[..nl * taps]);
        for (t, wv) in wt.iter_mut().enumerate().take(taps) {
            for (lane, v) in wv.iter_mut().enumerate() {
                *v = if lane < nl { wb[lane * taps + t] } else { 0.0 };
            }
        }
        for oy in 0..g.oh {
            // PX positions of the row at a time: independent sums, so the adds overlap.
            let mut ox = 0;
            while ox < g.ow {
                let np = PX.min(g.ow - ox);
                let j = oy * l.pitch + ox;
                // From zero plus the bias (exactly the bias) so the sums start in registers.
                let mut acc = [[0.0f32; LANES]; PX];
                for a in acc.iter_mut() {
                    for (a, bv) in a.iter_mut().zip(&b) {
                        *a += bv;
                    }
                }
                for (&o, wv) in off.iter().zip(&wt[..taps]) {
                    let Ok(xs) = <&[f32; PX * LANES]>::try_from(&ph[(o + j) * LANES..(o + j + PX) * LANES]) else { continue };
                    for (a, xv) in acc.iter_mut().zip(xs.chunks_exact(LANES)) {
                        for ((a, wl), v) in a.iter_mut().zip(wv).zip(xv) {
                            *a += wl * v;
                        }
                    }
                }
                let tile = acc;
                for (i, a) in tile.iter().enumerate().take(np) {
                    let at = c0 * plane + oy * g.ow + ox + i;
                    for (lane, &v) in a.iter().enumerate().take(nl) {
                        out[at + lane * plane] = v;
                    }
                }
                ox += np;
            }
        }
        act.apply_all(&mut out[c0 * plane..(c0 + nl) * plane]);
        c0 += nl;
    }
    Ok(())
}

/// `dst.copy_from_slice(src)` for the short rows of small planes, inline (a `memcpy` call per
/// row of a few values would cost more than the copy).
#[inline(always)]
pub(super) fn copy_short(dst: &mut [f32], src: &[f32]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (a, b) in (&mut d).zip(&mut s) {
        let b: [f32; 8] = b.try_into().unwrap_or([0.0; 8]);
        a.copy_from_slice(&b);
    }
    let (d, s) = (d.into_remainder(), s.remainder());
    let mut d = d.chunks_exact_mut(4);
    let mut s = s.chunks_exact(4);
    for (a, b) in (&mut d).zip(&mut s) {
        let b: [f32; 4] = b.try_into().unwrap_or([0.0; 4]);
        a.copy_from_slice(&b);
    }
    match (d.into_remainder(), s.remainder()) {
        ([a], [b]) => *a = *b,
        ([a0, a1], [b0, b1]) => (*a0, *a1) = (*b0, *b1),
        ([a0, a1, a2], [b0, b1, b2]) => (*a0, *a1, *a2) = (*b0, *b1, *b2),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::conv::Geom;
    use super::super::testutil::*;
    use crate::op::{ConvAttrs, Op};
    use crate::view::View;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Against the f64 definition over random depthwise geometries (the kernel runs when
        /// the CPU has SIMD micro-kernels; elsewhere this checks the row-run loop).
        #[test]
        fn depthwise_matches_naive(c in 1usize..6, h in 1usize..30, wd in 1usize..30, k in 1usize..6, s in 1usize..4, d in 1usize..3,
                                   pads in [0usize..3, 0..3, 0..3, 0..3], act in 0u8..3, seed in 0u64..1000) {
            prop_assume!(h + pads[0] + pads[2] > (k - 1) * d && wd + pads[1] + pads[3] > (k - 1) * d);
            let attrs = ConvAttrs {
                group: c as u32,
                stride: [s as u32, s as u32],
                dilation: [d as u32, d as u32],
                pads: [pads[0] as u32, pads[1] as u32, pads[2] as u32, pads[3] as u32],
                act: ACTS[act as usize],
            };
            check_conv(&[1, c, h, wd], &[c, 1, k, k], attrs, seed);
        }

        /// Both kernels, called directly, against the f64 definition (the dispatch picks one by
        /// plane size): channel counts around the block width, strides, dilation, padding.
        #[test]
        fn both_kernels_match_naive(c in 1usize..40, h in 1usize..12, wd in 1usize..12, k in 1usize..4, s in 1usize..4, d in 1usize..3,
                                    p in 0usize..3, act in 0u8..3, seed in 0u64..1000) {
            prop_assume!(h + 2 * p > (k - 1) * d && wd + 2 * p > (k - 1) * d);
            let attrs = ConvAttrs {
                group: c as u32,
                stride: [s as u32, s as u32],
                dilation: [d as u32, d as u32],
                pads: [p as u32; 4],
                act: ACTS[act as usize],
            };
            let (xd, wdims) = ([1, c, h, wd], [c, 1, k, k]);
            let y = Op::Conv(attrs).infer(&[sh(&xd), sh(&wdims), sh(&[c])]).unwrap();
            let yd: Vec<usize> = (0..y.rank()).map(|i| y.dim(i)).collect();
            let g = Geom::new(&attrs, &sh(&xd), &sh(&wdims), &y);
            let (x, w, b) = (data(c * h * wd, seed), data(c * k * k, seed + 1), data(c, seed + 2));
            let want = naive_conv(&x, &xd, &w, &wdims, Some(&b), &attrs, &yd);
            let st = super::Setup::new(&g, x.len(), w.len()).unwrap();
            let simd = super::super::gemm::simd().filter(|_| st.blocks());
            let mut got = vec![f32::NAN; want.len()];
            let a = super::Args { x: &x, w: View::F32(&w), bias: Some(View::F32(&b)), act: attrs.act };
            super::per_channel(&g, &st, &a, &mut got).unwrap();
            assert_close(&got, &want, 1e-5);
            if let Some(mk) = simd {
                let mut got = vec![f32::NAN; want.len()];
                super::blocked(mk, &g, &st, &a, &mut got).unwrap();
                assert_close(&got, &want, 1e-5);
            }
        }
    }
}
