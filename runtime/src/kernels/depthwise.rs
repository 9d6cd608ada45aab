//! Depthwise Conv (one filter per input channel) on CPUs with SIMD: each channel's plane is
//! copied into a zero-bordered stack buffer whose row pitch is also the output's, so every
//! kernel tap is one contiguous (stride 1) or evenly strided run over the whole plane that the
//! compiler vectorises, with no per-row or per-border work. Columns past the output width are
//! computed into the buffer and dropped.
//!
//! Each output sums the bias, then the taps in `(ky, kx)` order (padding taps add `w · 0`), as
//! the row-run loop does.

use super::conv::Geom;
use super::sub_mut;
use crate::op::{Activation, OpError};
use crate::view::View;

/// Floats in each of the two stack buffers (padded input plane, extended output plane).
const BUF: usize = 4096;

/// Padded input pitch and the buffer lengths `(pitch, input_len, output_len)` for `g`.
fn layout(g: &Geom) -> Option<(usize, usize, usize)> {
    if g.cg != 1 || g.mg != 1 || g.sh != g.sw || g.kh * g.kw == 0 || g.oh == 0 || g.ow == 0 || g.h == 0 || g.w == 0 {
        return None;
    }
    let pitch = (g.w + g.pl).max((g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1);
    let max_off = (g.kh - 1) * g.dh * pitch + (g.kw - 1) * g.dw;
    let out_len = g.oh * pitch;
    let in_len = g.sw * (out_len - 1) + max_off + 1;
    let rows_needed = (g.h + g.pt) * pitch;
    (in_len <= BUF && out_len <= BUF && rows_needed <= BUF).then_some((pitch, in_len.max(rows_needed), out_len))
}

/// Whether [`depthwise`] takes this layer: depthwise multiplier 1, equal strides, and planes
/// small enough for the stack buffers.
pub(super) fn applies(g: &Geom) -> bool {
    layout(g).is_some()
}

/// Most taps per filter (larger kernels keep the row-run loop).
const MAX_TAPS: usize = 64;

/// Depthwise Conv of one batch item; `w` holds `m · kh · kw` weights (any storage). Forced
/// inline so a SIMD caller's target features reach its loops.
#[inline(always)]
pub(super) fn depthwise(g: &Geom, x: &[f32], w: View<'_>, bias: Option<View<'_>>, act: Activation, out: &mut [f32]) -> Result<(), OpError> {
    let (pitch, in_len, out_len) = layout(g).ok_or(OpError::ShapeMismatch)?;
    let taps = g.kh * g.kw;
    let in_plane = g.h * g.w;
    let plane = g.oh * g.ow;
    if x.len() < g.c * in_plane || g.m > g.c || w.len() < g.m * taps || taps > MAX_TAPS {
        return Err(OpError::ShapeMismatch);
    }
    let mut off = [0usize; MAX_TAPS];
    for (t, o) in off.iter_mut().enumerate().take(taps) {
        *o = (t / g.kw) * g.dh * pitch + (t % g.kw) * g.dw;
    }
    let off = &off[..taps];
    let mut wt = [0.0f32; MAX_TAPS];
    let mut xp = [0.0f32; BUF];
    let mut op = [0.0f32; BUF];
    let xp = &mut xp[..in_len];
    let op = &mut op[..out_len];
    let sw = g.sw;
    let n_run = sw * (out_len - 1) + 1;
    for c in 0..g.m {
        xp.fill(0.0);
        let src = &x[c * in_plane..(c + 1) * in_plane];
        for (iy, row) in src.chunks_exact(g.w).enumerate() {
            let d = (iy + g.pt) * pitch + g.pl;
            copy_short(&mut xp[d..d + g.w], row);
        }
        for (t, v) in wt.iter_mut().enumerate().take(taps) {
            *v = w.get(c * taps + t);
        }
        // One pass per tap over the whole extended plane (the compiler vectorises each pass).
        op.fill(bias.map_or(0.0, |b| b.get(c)));
        for (&o, &wv) in off.iter().zip(&wt[..taps]) {
            let xs = &xp[o..o + n_run];
            if sw == 1 {
                for (a, v) in op.iter_mut().zip(xs) {
                    *a += wv * v;
                }
            } else {
                for (a, v) in op.iter_mut().zip(xs.iter().step_by(sw)) {
                    *a += wv * v;
                }
            }
        }
        let ob = sub_mut(out, c * plane, plane)?;
        for (orow, erow) in ob.chunks_exact_mut(g.ow).zip(op.chunks_exact(pitch)) {
            act.apply_to(orow, &erow[..g.ow]);
        }
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
    use super::super::testutil::*;
    use crate::op::ConvAttrs;
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
    }
}
