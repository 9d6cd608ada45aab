//! 3 × 3 Convs at stride 1 or 2 and 5 × 5 Convs at stride 1 of several input channels per group
//! (ResNet-8's stages, MNIST's second layer) on scalar FPUs, in register blocks of 4 filters × 4
//! output pixels: for each input channel and kernel row, the block's input strip (6 values at
//! stride 1, 9 at stride 2, 8 for 5 × 5) is loaded once and serves 48 (80) multiply-adds,
//! against two loads per multiply-add pair for [`super::conv::conv_patches`]' gathered patches.
//! Blocks whose input lies whole inside the planes read it in place; the others (borders, the
//! last block of a row) read zero-padded copies of their strips, a few channels at a time.
//!
//! Every output is its bias, then each input channel's taps in `[ky, kx]` order, each step a
//! product rounded and then added (`vmla.f32` on hard-float Arm, `a += w · x` elsewhere), then
//! the activation: [`super::conv`]'s plain definition, except that taps reading padding add
//! `w · 0` there (which can only change the sign of an exact zero, or give NaN for an infinite
//! weight, as the SIMD kernels do).

use super::conv::Geom;
use crate::op::{Activation, OpError};
use crate::view::View;

/// Output pixels per register block (one output row's consecutive columns).
const QP: usize = 4;
/// Filters per register block.
const QF: usize = 4;
/// Input columns a block reads per kernel row at stride `s` with kernels `k` wide.
const fn strip(s: usize, k: usize) -> usize {
    (QP - 1) * s + k
}
/// Floats of copied strips (864 bytes of stack): 8 channels of 3 × 3 strips at stride 2, 12 at
/// stride 1, 5 channels of 5 × 5 strips.
const STRIPS: usize = 8 * 3 * strip(2, 3);
/// Most kernel rows.
const KMAX: usize = 5;
/// Filters whose block sums are held on the stack at once (512 bytes).
const MF: usize = 32;

/// Whether [`conv_quads`] takes `g` (with f32 weights): a 3 × 3 Conv at stride 1 or 2 (the same
/// both ways) or a 5 × 5 Conv at stride 1 (MNIST's second layer), dilation 1, whose groups read
/// at least 2 input channels and write at least [`QF`] filters, with output rows of at least
/// [`QP`] pixels. Not on the soft-float M0 (each float operation there is a
/// call; its flash is better spent elsewhere).
pub(super) fn takes(g: &Geom) -> bool {
    !cfg!(all(target_arch = "arm", not(target_abi = "eabihf")))
        && (g.dh, g.dw) == (1, 1)
        && g.sh == g.sw
        && matches!((g.kh, g.kw, g.sw), (3, 3, 1) | (3, 3, 2) | (5, 5, 1))
        && g.cg >= 2
        && g.mg >= QF
        && g.ow >= QP
        && g.oh >= 1
}

/// A layer [`takes`]: for each output row and block of [`QP`] pixels, every filter's block sums
/// (all filters of a group, [`MF`] at a time), stored with the activation applied. Filters past
/// the last whole block of [`QF`] repeat the group's last filter (its sums computed twice,
/// stored once). Errors, leaving `out` alone, when the layer is not one it takes or the
/// operands are too short for `g`. Out of line, so that its buffers take stack only while it
/// runs.
#[inline(never)]
pub(super) fn conv_quads(g: &Geom, x: &[f32], w: &[f32], bias: Option<View<'_>>, act: Activation, out: &mut [f32]) -> Result<(), OpError> {
    let (kk, taps) = (g.kh, g.kh * g.kw);
    let st = strip(g.sw, kk);
    // Channels per chunk of copied strips.
    let ch = STRIPS / (kk * st);
    let (plane, in_plane, k) = (g.oh * g.ow, g.h * g.w, g.cg * taps);
    let groups = g.m.checked_div(g.mg).unwrap_or(0);
    if !takes(g) || w.len() < g.m * k || x.len() < g.c * in_plane || out.len() < g.m * plane || groups * g.cg > g.c || groups * g.mg != g.m
    {
        return Err(OpError::ShapeMismatch);
    }
    if bias.is_some_and(|b| b.len() < g.m) {
        return Err(OpError::ShapeMismatch);
    }
    let mut acc = [[0.0f32; QF * QP]; MF / QF];
    let mut bs = [0.0f32; MF];
    let mut strips = [0.0f32; STRIPS];
    for grp in 0..groups {
        let xg = &x[grp * g.cg * in_plane..(grp + 1) * g.cg * in_plane];
        let end = (grp + 1) * g.mg;
        let mut fb = grp * g.mg;
        while fb < end {
            let fe = (fb + MF).min(end);
            let quads = (fe - fb).div_ceil(QF);
            // Filter `i` of block `q`: the batch's filter, or the group's last one past it.
            let filter = |q: usize, i: usize| (fb + q * QF + i).min(end - 1);
            for (q, b) in bs.iter_mut().enumerate().take(fe - fb) {
                *b = bias.map_or(0.0, |v| v.get(fb + q));
            }
            for oy in 0..g.oh {
                let rows: [Option<usize>; KMAX] = core::array::from_fn(|ky| g.in_row(oy, ky));
                let rows = &rows[..kk];
                let mut ox0 = 0;
                while ox0 < g.ow {
                    let np = QP.min(g.ow - ox0);
                    for (q, a) in acc.iter_mut().enumerate().take(quads) {
                        for (i, r) in a.chunks_exact_mut(QP).enumerate() {
                            r.fill(bs[filter(q, i) - fb]);
                        }
                    }
                    let first = (ox0 * g.sw) as isize - g.pl as isize;
                    // The strip's columns inside the input: `j0 .. j1`.
                    let j0 = (-first).clamp(0, st as isize) as usize;
                    let j1 = (g.w as isize - first).clamp(j0 as isize, st as isize) as usize;
                    match rows[0] {
                        Some(iy) if np == QP && first >= 0 && first as usize + st <= g.w && rows.iter().all(Option::is_some) => {
                            // In place: rows `iy .. iy + kk` (dilation 1) of every channel.
                            let xs = &xg[iy * g.w + first as usize..];
                            for (q, a) in acc.iter_mut().enumerate().take(quads) {
                                let wr = core::array::from_fn(|i| &w[filter(q, i) * k..filter(q, i) * k + k]);
                                block((g.sw, kk), xs, in_plane, g.w, g.cg, wr, a);
                            }
                        }
                        _ => {
                            let mut c0 = 0;
                            while c0 < g.cg {
                                let nc = ch.min(g.cg - c0);
                                let fill = match st {
                                    6 => fill_strips::<6>,
                                    8 => fill_strips::<8>,
                                    _ => fill_strips::<9>,
                                };
                                fill(&mut strips, &xg[c0 * in_plane..(c0 + nc) * in_plane], (in_plane, g.w), rows, first, (j0, j1));
                                for (q, a) in acc.iter_mut().enumerate().take(quads) {
                                    let wr =
                                        core::array::from_fn(|i| &w[filter(q, i) * k + c0 * taps..filter(q, i) * k + (c0 + nc) * taps]);
                                    block((g.sw, kk), &strips, kk * st, st, nc, wr, a);
                                }
                                c0 += nc;
                            }
                        }
                    }
                    for (q, a) in acc.iter_mut().enumerate().take(quads) {
                        act.apply_all(a);
                        for (i, r) in a.chunks_exact(QP).enumerate() {
                            let m = fb + q * QF + i;
                            if m < fe {
                                let o = m * plane + oy * g.ow + ox0;
                                // Four stores, not a `memcpy` call, for whole blocks.
                                match <&mut [f32; QP]>::try_from(&mut out[o..o + np]) {
                                    Ok(d) => *d = [r[0], r[1], r[2], r[3]],
                                    Err(_) => {
                                        for (d, v) in out[o..o + np].iter_mut().zip(r) {
                                            *d = *v;
                                        }
                                    }
                                }
                            }
                        }
                    }
                    ox0 += np;
                }
            }
            fb = fe;
        }
    }
    Ok(())
}

/// The zero-padded strips of one block, `ST` columns from input column `first` (those of
/// `j0 .. j1` inside the input) of kernel rows `rows` (`None`: padding), for each input plane of
/// `xs` (planes `in_plane` floats apart, rows `w` apart), into `strips` (`rows.len() · ST`
/// floats a plane). Rows inside the input whole are copied as arrays; only border strips test each
/// column.
#[inline(always)]
fn fill_strips<const ST: usize>(
    strips: &mut [f32],
    xs: &[f32],
    (in_plane, w): (usize, usize),
    rows: &[Option<usize>],
    first: isize,
    (j0, j1): (usize, usize),
) {
    for (s, xp) in strips.chunks_exact_mut((rows.len() * ST).max(1)).zip(xs.chunks_exact(in_plane.max(1))) {
        for (row, &iy) in s.chunks_exact_mut(ST).zip(rows) {
            let Ok(row) = <&mut [f32; ST]>::try_from(row) else { continue };
            *row = match iy {
                None => [0.0; ST],
                Some(iy) => {
                    let src = xp.get(iy * w + (first + j0 as isize) as usize..).unwrap_or(&[]);
                    match <&[f32; ST]>::try_from(src.get(..ST).unwrap_or(&[])) {
                        Ok(whole) if j0 == 0 && j1 == ST => *whole,
                        _ => {
                            let src = src.get(..j1 - j0).unwrap_or(&[]);
                            core::array::from_fn(|j| src.get(j.wrapping_sub(j0)).copied().unwrap_or(0.0))
                        }
                    }
                }
            };
        }
    }
}

/// `acc[4 i + p] += Σ w[i][k² c + k ky + kx] · xs[c · cs + ky · rs + s · p + kx]` over `c < nc`,
/// `ky, kx < k`, in that order, each step a product rounded and then added, at stride `s` with
/// kernels `k` wide (`(s, k)` one of (1, 3), (2, 3), (1, 5)). Out of line on hard-float Arm: one
/// copy of each assembly loop serves every call.
///
/// # Panics
/// When `(s, k)` is none of those, a weight row holds fewer than `k² · nc` floats or `xs` ends
/// before the last strip.
#[cfg_attr(all(target_arch = "arm", target_abi = "eabihf"), inline(never))]
fn block((s, k): (usize, usize), xs: &[f32], cs: usize, rs: usize, nc: usize, w: [&[f32]; QF], acc: &mut [f32; QF * QP]) {
    let st = strip(s, k);
    if nc == 0 {
        return;
    }
    assert!(
        matches!((s, k), (1, 3) | (2, 3) | (1, 5))
            && w.iter().all(|r| r.len() >= k * k * nc)
            && rs >= st
            && cs >= k * rs
            && xs.len() >= (nc - 1) * cs + (k - 1) * rs + st,
        "conv_quads: operands too short"
    );
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    {
        vfp::block((s, k), xs, cs, rs, nc, w, acc);
    }
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
    for c in 0..nc {
        for ky in 0..k {
            let r = &xs[c * cs + ky * rs..c * cs + ky * rs + st];
            for (i, wi) in w.iter().enumerate() {
                let t = &wi[k * k * c + k * ky..k * k * c + k * ky + k];
                for (kx, &wv) in t.iter().enumerate() {
                    for (p, a) in acc[i * QP..(i + 1) * QP].iter_mut().enumerate() {
                        *a += wv * r[s * p + kx];
                    }
                }
            }
        }
    }
}

/// [`block`]'s loop on hard-float Arm.
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
mod vfp {
    use super::{QF, QP};

    /// One kernel row of one channel at stride 1: the strip at `{xp}` into s16–s21, filters 0
    /// and 1's three weights into s22–s24 / s25–s27, their 24 multiply-adds onto s0–s7, then
    /// filters 2 and 3 onto s8–s15; each output's three taps in `kx` order.
    macro_rules! kernel_row_s1 {
        () => {
            concat!(
                "vldmia {xp}, {{s16-s21}}\n",
                "vldmia {w0}!, {{s22-s24}}\n",
                "vldmia {w1}!, {{s25-s27}}\n",
                "vmla.f32 s0, s22, s16\n",
                "vmla.f32 s1, s22, s17\n",
                "vmla.f32 s2, s22, s18\n",
                "vmla.f32 s3, s22, s19\n",
                "vmla.f32 s4, s25, s16\n",
                "vmla.f32 s5, s25, s17\n",
                "vmla.f32 s6, s25, s18\n",
                "vmla.f32 s7, s25, s19\n",
                "vmla.f32 s0, s23, s17\n",
                "vmla.f32 s1, s23, s18\n",
                "vmla.f32 s2, s23, s19\n",
                "vmla.f32 s3, s23, s20\n",
                "vmla.f32 s4, s26, s17\n",
                "vmla.f32 s5, s26, s18\n",
                "vmla.f32 s6, s26, s19\n",
                "vmla.f32 s7, s26, s20\n",
                "vmla.f32 s0, s24, s18\n",
                "vmla.f32 s1, s24, s19\n",
                "vmla.f32 s2, s24, s20\n",
                "vmla.f32 s3, s24, s21\n",
                "vmla.f32 s4, s27, s18\n",
                "vmla.f32 s5, s27, s19\n",
                "vmla.f32 s6, s27, s20\n",
                "vmla.f32 s7, s27, s21\n",
                "vldmia {w2}!, {{s22-s24}}\n",
                "vldmia {w3}!, {{s25-s27}}\n",
                "vmla.f32 s8, s22, s16\n",
                "vmla.f32 s9, s22, s17\n",
                "vmla.f32 s10, s22, s18\n",
                "vmla.f32 s11, s22, s19\n",
                "vmla.f32 s12, s25, s16\n",
                "vmla.f32 s13, s25, s17\n",
                "vmla.f32 s14, s25, s18\n",
                "vmla.f32 s15, s25, s19\n",
                "vmla.f32 s8, s23, s17\n",
                "vmla.f32 s9, s23, s18\n",
                "vmla.f32 s10, s23, s19\n",
                "vmla.f32 s11, s23, s20\n",
                "vmla.f32 s12, s26, s17\n",
                "vmla.f32 s13, s26, s18\n",
                "vmla.f32 s14, s26, s19\n",
                "vmla.f32 s15, s26, s20\n",
                "vmla.f32 s8, s24, s18\n",
                "vmla.f32 s9, s24, s19\n",
                "vmla.f32 s10, s24, s20\n",
                "vmla.f32 s11, s24, s21\n",
                "vmla.f32 s12, s27, s18\n",
                "vmla.f32 s13, s27, s19\n",
                "vmla.f32 s14, s27, s20\n",
                "vmla.f32 s15, s27, s21\n",
            )
        };
    }

    /// [`kernel_row_s1`] at stride 2: the 9-value strip into s16–s24, each filter's three
    /// weights in turn into s25–s27 and its 12 multiply-adds (output `p`, tap `kx` reads
    /// s(16 + 2p + kx)).
    macro_rules! kernel_row_s2 {
        () => {
            concat!(
                "vldmia {xp}, {{s16-s24}}\n",
                "vldmia {w0}!, {{s25-s27}}\n",
                "vmla.f32 s0, s25, s16\n",
                "vmla.f32 s1, s25, s18\n",
                "vmla.f32 s2, s25, s20\n",
                "vmla.f32 s3, s25, s22\n",
                "vmla.f32 s0, s26, s17\n",
                "vmla.f32 s1, s26, s19\n",
                "vmla.f32 s2, s26, s21\n",
                "vmla.f32 s3, s26, s23\n",
                "vmla.f32 s0, s27, s18\n",
                "vmla.f32 s1, s27, s20\n",
                "vmla.f32 s2, s27, s22\n",
                "vmla.f32 s3, s27, s24\n",
                "vldmia {w1}!, {{s25-s27}}\n",
                "vmla.f32 s4, s25, s16\n",
                "vmla.f32 s5, s25, s18\n",
                "vmla.f32 s6, s25, s20\n",
                "vmla.f32 s7, s25, s22\n",
                "vmla.f32 s4, s26, s17\n",
                "vmla.f32 s5, s26, s19\n",
                "vmla.f32 s6, s26, s21\n",
                "vmla.f32 s7, s26, s23\n",
                "vmla.f32 s4, s27, s18\n",
                "vmla.f32 s5, s27, s20\n",
                "vmla.f32 s6, s27, s22\n",
                "vmla.f32 s7, s27, s24\n",
                "vldmia {w2}!, {{s25-s27}}\n",
                "vmla.f32 s8, s25, s16\n",
                "vmla.f32 s9, s25, s18\n",
                "vmla.f32 s10, s25, s20\n",
                "vmla.f32 s11, s25, s22\n",
                "vmla.f32 s8, s26, s17\n",
                "vmla.f32 s9, s26, s19\n",
                "vmla.f32 s10, s26, s21\n",
                "vmla.f32 s11, s26, s23\n",
                "vmla.f32 s8, s27, s18\n",
                "vmla.f32 s9, s27, s20\n",
                "vmla.f32 s10, s27, s22\n",
                "vmla.f32 s11, s27, s24\n",
                "vldmia {w3}!, {{s25-s27}}\n",
                "vmla.f32 s12, s25, s16\n",
                "vmla.f32 s13, s25, s18\n",
                "vmla.f32 s14, s25, s20\n",
                "vmla.f32 s15, s25, s22\n",
                "vmla.f32 s12, s26, s17\n",
                "vmla.f32 s13, s26, s19\n",
                "vmla.f32 s14, s26, s21\n",
                "vmla.f32 s15, s26, s23\n",
                "vmla.f32 s12, s27, s18\n",
                "vmla.f32 s13, s27, s20\n",
                "vmla.f32 s14, s27, s22\n",
                "vmla.f32 s15, s27, s24\n",
            )
        };
    }

    /// One kernel row of one channel of a 5 × 5 kernel at stride 1: the 8-value strip into
    /// s16–s23, each filter's five weights in turn into s24–s28 and its 20 multiply-adds.
    macro_rules! kernel_row_k5 {
        () => {
            concat!(
                "vldmia {xp}, {{s16-s23}}\n",
                "vldmia {w0}!, {{s24-s28}}\n",
                "vmla.f32 s0, s24, s16\n",
                "vmla.f32 s1, s24, s17\n",
                "vmla.f32 s2, s24, s18\n",
                "vmla.f32 s3, s24, s19\n",
                "vmla.f32 s0, s25, s17\n",
                "vmla.f32 s1, s25, s18\n",
                "vmla.f32 s2, s25, s19\n",
                "vmla.f32 s3, s25, s20\n",
                "vmla.f32 s0, s26, s18\n",
                "vmla.f32 s1, s26, s19\n",
                "vmla.f32 s2, s26, s20\n",
                "vmla.f32 s3, s26, s21\n",
                "vmla.f32 s0, s27, s19\n",
                "vmla.f32 s1, s27, s20\n",
                "vmla.f32 s2, s27, s21\n",
                "vmla.f32 s3, s27, s22\n",
                "vmla.f32 s0, s28, s20\n",
                "vmla.f32 s1, s28, s21\n",
                "vmla.f32 s2, s28, s22\n",
                "vmla.f32 s3, s28, s23\n",
                "vldmia {w1}!, {{s24-s28}}\n",
                "vmla.f32 s4, s24, s16\n",
                "vmla.f32 s5, s24, s17\n",
                "vmla.f32 s6, s24, s18\n",
                "vmla.f32 s7, s24, s19\n",
                "vmla.f32 s4, s25, s17\n",
                "vmla.f32 s5, s25, s18\n",
                "vmla.f32 s6, s25, s19\n",
                "vmla.f32 s7, s25, s20\n",
                "vmla.f32 s4, s26, s18\n",
                "vmla.f32 s5, s26, s19\n",
                "vmla.f32 s6, s26, s20\n",
                "vmla.f32 s7, s26, s21\n",
                "vmla.f32 s4, s27, s19\n",
                "vmla.f32 s5, s27, s20\n",
                "vmla.f32 s6, s27, s21\n",
                "vmla.f32 s7, s27, s22\n",
                "vmla.f32 s4, s28, s20\n",
                "vmla.f32 s5, s28, s21\n",
                "vmla.f32 s6, s28, s22\n",
                "vmla.f32 s7, s28, s23\n",
                "vldmia {w2}!, {{s24-s28}}\n",
                "vmla.f32 s8, s24, s16\n",
                "vmla.f32 s9, s24, s17\n",
                "vmla.f32 s10, s24, s18\n",
                "vmla.f32 s11, s24, s19\n",
                "vmla.f32 s8, s25, s17\n",
                "vmla.f32 s9, s25, s18\n",
                "vmla.f32 s10, s25, s19\n",
                "vmla.f32 s11, s25, s20\n",
                "vmla.f32 s8, s26, s18\n",
                "vmla.f32 s9, s26, s19\n",
                "vmla.f32 s10, s26, s20\n",
                "vmla.f32 s11, s26, s21\n",
                "vmla.f32 s8, s27, s19\n",
                "vmla.f32 s9, s27, s20\n",
                "vmla.f32 s10, s27, s21\n",
                "vmla.f32 s11, s27, s22\n",
                "vmla.f32 s8, s28, s20\n",
                "vmla.f32 s9, s28, s21\n",
                "vmla.f32 s10, s28, s22\n",
                "vmla.f32 s11, s28, s23\n",
                "vldmia {w3}!, {{s24-s28}}\n",
                "vmla.f32 s12, s24, s16\n",
                "vmla.f32 s13, s24, s17\n",
                "vmla.f32 s14, s24, s18\n",
                "vmla.f32 s15, s24, s19\n",
                "vmla.f32 s12, s25, s17\n",
                "vmla.f32 s13, s25, s18\n",
                "vmla.f32 s14, s25, s19\n",
                "vmla.f32 s15, s25, s20\n",
                "vmla.f32 s12, s26, s18\n",
                "vmla.f32 s13, s26, s19\n",
                "vmla.f32 s14, s26, s20\n",
                "vmla.f32 s15, s26, s21\n",
                "vmla.f32 s12, s27, s19\n",
                "vmla.f32 s13, s27, s20\n",
                "vmla.f32 s14, s27, s21\n",
                "vmla.f32 s15, s27, s22\n",
                "vmla.f32 s12, s28, s20\n",
                "vmla.f32 s13, s28, s21\n",
                "vmla.f32 s14, s28, s22\n",
                "vmla.f32 s15, s28, s23\n",
            )
        };
    }

    /// One channel's kernel rows, one per macro named (`$first` and then each of `$more`, the
    /// strip pointer a row further before each), then on to the next channel, `{n}` times; the
    /// sums in s0–s15 from and back to `{pa}`, d0–d14 saved and restored around it.
    macro_rules! channel_loop {
        ($first:ident $(, $more:ident)*) => {
            concat!(
                "vpush {{d0-d14}}\n",
                "vldmia {pa}, {{s0-s15}}\n",
                "2:\n",
                $first!(),
                $("add {xp}, {xp}, {rs}\n", $more!(),)*
                "add {xp}, {xp}, {cs}\n",
                "subs {n}, {n}, #1\n",
                "bne 2b\n",
                "vstmia {pa}, {{s0-s15}}\n",
                "vpop {{d0-d14}}\n",
            )
        };
    }

    /// [`super::block`] with its operands checked by the caller: per channel and 3-wide kernel
    /// row 5 loads and 48 multiply-adds, per channel 5 more instructions (164 per 144 MACs; 5 × 5:
    /// 5 loads and 80 multiply-adds a row, 432 per 400 MACs). The FPU registers it uses are saved
    /// and restored inside the block (stable Rust cannot name them as operands on these targets),
    /// so the sums pass through memory once per call.
    #[allow(unsafe_code)]
    #[inline(always)]
    pub(super) fn block((s, k): (usize, usize), xs: &[f32], cs: usize, rs: usize, nc: usize, w: [&[f32]; QF], acc: &mut [f32; QF * QP]) {
        // The loop over channels on these operands, one kernel-row macro per row.
        macro_rules! run {
            ($acc:ident, $xs:ident, $rs:ident, $cs:ident, $nc:ident, $w:ident, $k:ident; $($row:ident),+) => {
                core::arch::asm!(
                    channel_loop!($($row),+),
                    pa = in(reg) $acc.as_mut_ptr(),
                    xp = inout(reg) $xs.as_ptr() => _,
                    rs = in(reg) $rs * 4,
                    cs = in(reg) ($cs - ($k - 1) * $rs) * 4,
                    n = inout(reg) $nc => _,
                    w0 = inout(reg) $w[0].as_ptr() => _,
                    w1 = inout(reg) $w[1].as_ptr() => _,
                    w2 = inout(reg) $w[2].as_ptr() => _,
                    w3 = inout(reg) $w[3].as_ptr() => _,
                )
            };
        }
        // SAFETY: channel `c`'s kernel row `ky` reads `xs[c · cs + ky · rs ..][..strip(s, k)]`
        // and the next `k` floats of each weight row, `nc ≥ 1` channels of `k` rows: inside the
        // slices (the caller asserts `k² · nc` weights per row and `xs` to the last strip); the
        // sums are read from and written to `acc` (16 floats). d0–d14 are pushed first and
        // popped last.
        unsafe {
            match (s, k) {
                (1, 3) => run!(acc, xs, rs, cs, nc, w, k; kernel_row_s1, kernel_row_s1, kernel_row_s1),
                (2, 3) => run!(acc, xs, rs, cs, nc, w, k; kernel_row_s2, kernel_row_s2, kernel_row_s2),
                _ => run!(acc, xs, rs, cs, nc, w, k; kernel_row_k5, kernel_row_k5, kernel_row_k5, kernel_row_k5, kernel_row_k5),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::op::Activation;
    use crate::view::View;
    use proptest::prelude::*;

    /// The plain definition: bias, then `[c, ky, kx]` over the taps inside the input.
    fn reference(g: &super::Geom, x: &[f32], w: &[f32], b: Option<&[f32]>, act: Activation) -> Vec<f32> {
        let mut out = vec![0.0f32; g.m * g.oh * g.ow];
        for mo in 0..g.m {
            let grp = mo / g.mg;
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut a = b.map_or(0.0, |b| b[mo]);
                    for icl in 0..g.cg {
                        let ic = grp * g.cg + icl;
                        for ky in 0..g.kh {
                            let Some(iy) = g.in_row(oy, ky) else { continue };
                            for kx in 0..g.kw {
                                let ix = ox * g.sw + kx;
                                if ix < g.pl || ix - g.pl >= g.w {
                                    continue;
                                }
                                a += w[((mo * g.cg + icl) * g.kh + ky) * g.kw + kx] * x[(ic * g.h + iy) * g.w + ix - g.pl];
                            }
                        }
                    }
                    out[(mo * g.oh + oy) * g.ow + ox] = act.apply(a);
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(300)))]
        /// `conv_quads` gives the plain definition's sums (equal as floats; bit for bit where no
        /// output reads padding), for 3 × 3 kernels at strides 1 and 2 and 5 × 5 ones at stride
        /// 1 (others declined), planes narrower and wider than a block, up to two rows and
        /// columns of padding on each side, channel counts across the strip chunks,
        /// filter counts that are not multiples of 4 and beyond the 32-filter batch, groups,
        /// with and without a bias, each activation; and declines what it does not take,
        /// leaving the outputs alone.
        #[test]
        fn quads_are_the_definition(h in 1usize..12, w in 1usize..20, cg in 1usize..20, mg in 1usize..11, groups in 1usize..3,
                                    pads in [0usize..3, 0..3, 0..3, 0..3], stride in 1usize..4, five in any::<bool>(), wide in any::<bool>(), act in 0u8..3,
                                    bias in any::<bool>(), seed in 0u64..1000) {
            let [pt, pl, pb, pr] = pads;
            let kk = if five { 5 } else { 3 };
            prop_assume!(h + pt + pb >= kk && w + pl + pr >= kk);
            let mg = if wide { mg + 60 } else { mg };
            let (c, m) = (cg * groups, mg * groups);
            let (oh, ow) = ((h + pt + pb - kk) / stride + 1, (w + pl + pr - kk) / stride + 1);
            let g = super::Geom { c, h, w, m, cg, mg, kh: kk, kw: kk, oh, ow, sh: stride, sw: stride, dh: 1, dw: 1, pt, pl };
            let x = data(c * h * w, seed);
            let wv = data(m * cg * kk * kk, seed + 1);
            let b = data(m, seed + 2);
            let act = ACTS[act as usize];
            let mut got = vec![f32::NAN; m * oh * ow];
            let ran = super::conv_quads(&g, &x, &wv, bias.then_some(View::F32(&b)), act, &mut got).is_ok();
            prop_assert_eq!(ran, super::takes(&g));
            if ran {
                let want = reference(&g, &x, &wv, bias.then_some(&b[..]), act);
                prop_assert!(got.iter().zip(&want).all(|(a, b)| a == b), "{:?} vs {:?}", got, want);
                if pads == [0; 4] {
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    prop_assert_eq!(bits(&got), bits(&want));
                }
            } else {
                prop_assert!(got.iter().all(|v| v.is_nan()));
            }
        }
    }

    /// Operands shorter than the geometry are an error, not a panic.
    #[test]
    fn short_operands_are_an_error() {
        let g = super::Geom { c: 2, h: 4, w: 4, m: 4, cg: 2, mg: 4, kh: 3, kw: 3, oh: 4, ow: 4, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1 };
        let (x, w) = (data(32, 1), data(72, 2));
        let mut out = vec![0.0f32; 64];
        assert!(super::conv_quads(&g, &x[..31], &w, None, Activation::None, &mut out).is_err());
        assert!(super::conv_quads(&g, &x, &w[..71], None, Activation::None, &mut out).is_err());
        assert!(super::conv_quads(&g, &x, &w, None, Activation::None, &mut out[..63]).is_err());
        assert!(super::conv_quads(&g, &x, &w, Some(View::F32(&w[..3])), Activation::None, &mut out).is_err());
        assert!(super::conv_quads(&g, &x, &w, None, Activation::None, &mut out).is_ok());
    }
}
