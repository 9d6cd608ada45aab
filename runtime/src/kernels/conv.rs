//! Conv (1-D / 2-D, grouped / depthwise, strided, dilated, explicitly padded, fused activation).

use super::conv_quads;
use super::dense::dot;
use super::depthwise;
use super::gemm::{self, Micro};
use super::{has_fn, sub, sub_mut, zeroed, Operand, CONV_1X1_BLOCKS_BIT, CONV_QUADS_BIT, CONV_ROWS3_BIT, CONV_ROW_BLOCKS_BIT};
use crate::op::{Activation, ConvAttrs, OpError};
use crate::shape::Shape;
use crate::view::View;

/// Geometry of one convolution, 1-D convs mapped onto 2-D with `h = kh = 1`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geom {
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) m: usize,
    pub(super) cg: usize,
    pub(super) mg: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    pub(super) sh: usize,
    pub(super) sw: usize,
    pub(super) dh: usize,
    pub(super) dw: usize,
    pub(super) pt: usize,
    pub(super) pl: usize,
}

impl Geom {
    pub(super) fn new(a: &ConvAttrs, x: &Shape, w: &Shape, y: &Shape) -> Geom {
        let two_d = x.rank() == 4;
        let g = (a.group as usize).max(1);
        let m = w.dim(0);
        let (h, kh, oh, sh, dh, pt) = if two_d {
            (x.dim(2), w.dim(2), y.dim(2), a.stride[0] as usize, a.dilation[0] as usize, a.pads[0] as usize)
        } else {
            (1, 1, 1, 1, 1, 0)
        };
        let last = if two_d { 3 } else { 2 };
        Geom {
            c: x.dim(1),
            h,
            w: x.dim(last),
            m,
            cg: w.dim(1),
            mg: m / g,
            kh,
            kw: w.dim(last),
            oh,
            ow: y.dim(last),
            sh,
            sw: a.stride[1] as usize,
            dh,
            dw: a.dilation[1] as usize,
            pt,
            pl: a.pads[1] as usize,
        }
    }

    /// Range of output columns `ox` whose input column `ox * sw + off - pl` lies in `0..w`.
    #[inline]
    pub(super) fn col_range(&self, off: usize) -> (usize, usize) {
        let lo = if off >= self.pl { 0 } else { (self.pl - off).div_ceil(self.sw) };
        let hi = if self.w + self.pl > off { (self.w + self.pl - off).div_ceil(self.sw) } else { 0 };
        (lo, hi.min(self.ow))
    }

    /// Range of output rows `oy` whose input row `oy * sh + off - pt` lies in `0..h` (the rows
    /// for which [`Geom::in_row`] at `off = ky · dh` is `Some`).
    #[inline]
    pub(super) fn row_range(&self, off: usize) -> (usize, usize) {
        let lo = if off >= self.pt { 0 } else { (self.pt - off).div_ceil(self.sh) };
        let hi = if self.h + self.pt > off { (self.h + self.pt - off).div_ceil(self.sh) } else { 0 };
        (lo.min(self.oh), hi.min(self.oh))
    }

    /// Whether [`conv_patches`] beats the row-run loop. Measured on the real models' layers
    /// (`sprig bench --per-layer`): row runs win only for stride-1 layers with output rows of 24
    /// or more, and for depthwise / few-filter groups (a gathered patch then serves too few dots).
    /// On hard-float Cortex-M (executed instructions, `cargo test -p sprig-tools --test
    /// firmware`) patches taken in pairs win on every layer with several input channels and
    /// taps (ResNet-8's 32-wide 3 × 3 layers: 4.41 → 3.63 instructions per MAC for the model),
    /// not on MNIST's one-channel stem or VWW's wide pointwise layers.
    pub(super) fn prefers_patches(&self) -> bool {
        self.mg >= 4
            && self.kh * self.kw <= PATCH
            && (self.ow < 24 || self.sw > 1 || (cfg!(target_os = "none") && PAIRS && self.cg >= 2 && self.kh * self.kw > 1))
    }

    /// Input row for output row `oy` and kernel row `ky`, if inside the input.
    #[inline]
    pub(super) fn in_row(&self, oy: usize, ky: usize) -> Option<usize> {
        let iy = oy * self.sh + ky * self.dh;
        if iy >= self.pt && iy - self.pt < self.h {
            Some(iy - self.pt)
        } else {
            None
        }
    }
}

/// Convolution; inputs `x, w[, bias]` validated by `execute`. The register-blocked kernels run
/// only where their bits ([`super::CONV_QUADS_BIT`] …) are in `OPS`; the other paths always.
pub(super) fn conv<const OPS: u128>(a: &ConvAttrs, inputs: &[Operand<'_>], out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let x = &inputs[0];
    let w = &inputs[1];
    let bias = inputs.get(2).map(|b| b.view);
    let g = Geom::new(a, &x.shape, &w.shape, y);
    let (in_len, out_len) = (x.shape.prod(1, x.shape.rank()), y.prod(1, y.rank()));
    for n in 0..x.shape.dim(0) {
        let xv = x.view.slice(n * in_len, in_len).ok_or(OpError::ShapeMismatch)?;
        let ob = sub_mut(out, n * out_len, out_len)?;
        let simd = gemm::simd();
        match (xv.as_f32(), w.view.as_f32(), simd) {
            (Some(xs), Some(ws), Some(mk)) if gemm::applies(&g) => mk.run(
                #[inline(always)]
                || conv_simd(mk, &g, xs, ws, bias, a.act, ob),
            )?,
            (Some(xs), _, Some(mk)) if depthwise::applies(mk, &g) => mk.run(
                #[inline(always)]
                || depthwise::depthwise(mk, &g, xs, w.view, bias, a.act, ob),
            )?,
            (Some(xs), _, Some(mk)) => mk.run(
                #[inline(always)]
                || conv_fast::<OPS>(&g, xs, w.view, bias, a.act, ob),
            )?,
            (Some(xs), Some(ws), None) if has_fn::<OPS>(CONV_QUADS_BIT) && conv_quads::takes(&g) => {
                conv_quads::conv_quads(&g, xs, ws, bias, a.act, ob)?
            }
            (Some(xs), Some(ws), None) if g.prefers_patches() => conv_patches(&g, xs, ws, bias, a.act, ob)?,
            (Some(xs), _, None) => conv_fast::<OPS>(&g, xs, w.view, bias, a.act, ob)?,
            (None, _, _) => conv_naive(&g, xv, w.view, bias, a.act, ob)?,
        }
    }
    Ok(())
}

/// `bias` (of `m` filters) as native f32 values: one stored otherwise (f16, as `sprig
/// compress` writes next to codebook weights) of at most [`BIAS_BUF`] values is decoded into
/// `buf` (only then made), since the tiles read it a register tile at a time and a short f16 run
/// costs more than its adds; else `bias` itself.
pub(super) fn native_bias<'b>(bias: Option<View<'b>>, m: usize, buf: &'b mut Option<[f32; BIAS_BUF]>) -> Option<View<'b>> {
    match bias {
        Some(b) if !matches!(b, View::F32(_)) && m <= BIAS_BUF && b.len() >= m => {
            let bb = buf.insert([0.0f32; BIAS_BUF]);
            b.read_into(0, &mut bb[..m]);
            let bb: &'b [f32; BIAS_BUF] = bb;
            Some(View::F32(&bb[..m]))
        }
        _ => bias,
    }
}

/// A Conv that is not depthwise ([`gemm::applies`]), f32 weights `w`, on a SIMD CPU: the
/// shared-plane kernel where it applies ([`depthwise::shared_layout`]), else the stem kernel
/// ([`depthwise::S2::stem`], [`depthwise::S2::stem1`]), else the tiled product; all three give
/// the same sums (the same fused terms in the same order). The bias is read through
/// [`native_bias`]. Forced inline so the caller's [`Micro::run`] reaches the loops.
#[inline(always)]
pub(super) fn conv_simd<M: Micro>(
    mk: M,
    g: &Geom,
    x: &[f32],
    w: &[f32],
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
) -> Result<(), OpError> {
    let mut decoded = None;
    let bias = native_bias(bias, g.m, &mut decoded);
    // Strided 1 × 1 Convs (ResNet shortcuts) read every s-th pixel: copied out once, they run
    // as the stride-1 product read in place (no per-tile gathers). Same sums: a padding pixel
    // is a 0 in both.
    let sub_len = g.c * g.oh * g.ow;
    if g.kh == 1 && g.kw == 1 && (g.sh, g.sw) != (1, 1) && sub_len <= SUB_MAX && x.len() >= g.c * g.h * g.w {
        let gs = Geom { h: g.oh, w: g.ow, sh: 1, sw: 1, pt: 0, pl: 0, ..*g };
        let run = |buf: &mut [f32]| {
            let buf = &mut buf[..sub_len];
            subsample(mk, g, x, buf);
            if direct(mk, &gs, None, buf, w, bias, act, out) {
                return Ok(());
            }
            gemm::conv(mk, &gs, buf, w, bias, act, out)
        };
        // Only as many floats cleared as the layer needs, in four sizes.
        return match sub_len {
            0..=1024 => zeroed::<1024, _>(run),
            1025..=2048 => zeroed::<2048, _>(run),
            2049..=4096 => zeroed::<4096, _>(run),
            _ => zeroed::<SUB_MAX, _>(run),
        };
    }
    // 3 × 3 stride-1 layers (ResNet-8's residual stages): Winograd F(2 × 2, 3 × 3), 2.25× fewer
    // multiply-adds, its sums in another order (equal up to rounding). Where it declines after
    // meeting a non-finite output, the kernels below write every output again.
    if f32_bias(bias).is_some_and(|b| mk.conv_winograd(g, x, w, b, act, out)) {
        return Ok(());
    }
    // Few input planes that every filter reads, through tap offsets (kws's first layer,
    // ResNet-8's stem and 16-channel layers, MNIST's second layer), unless a stem kernel takes
    // the layer and it has too few filters to share the loads. The choice does not depend on
    // the filter count otherwise, so pruned layers keep their kernel.
    let stem = depthwise::S2::stem(g).or_else(|| depthwise::S2::stem1(g)).filter(|_| mk.dw_s2_ready());
    match (depthwise::shared_layout(g).filter(|_| mk.shared_ready()), stem) {
        (Some(pl), s) if s.is_none() || g.m >= depthwise::SHARED_M => depthwise::shared(mk, g, pl, x, w, bias, act, out),
        (_, Some(s)) => depthwise::stem(mk, s, g.m, x, w, bias, act, out),
        _ => match gemm::Phases::of(g).filter(|_| x.len() >= g.c * g.h * g.w) {
            // Strided: the input's stride phases copied once, read at stride 1.
            Some(q) => {
                let len = g.c * q.channel(g);
                let mut on = |buf: &mut [f32]| {
                    if direct(mk, g, Some((q.hq, q.wq)), buf, w, bias, act, out) {
                        return Ok(());
                    }
                    gemm::conv_in(mk, g, Some(q), buf, w, bias, act, out)
                };
                // Split into memory nobody clears where the CPU's split writes every float.
                if let Some(r) = mk.with_phases(x, g.c, g.h, g.w, &mut on) {
                    return r;
                }
                let run = |buf: &mut [f32]| {
                    let buf = &mut buf[..len];
                    gemm::split_phases(mk, g, q, x, buf);
                    on(buf)
                };
                // Only as many floats cleared as the layer needs, in four sizes.
                match len {
                    0..=2048 => zeroed::<2048, _>(run),
                    2049..=4096 => zeroed::<4096, _>(run),
                    4097..=8192 => zeroed::<8192, _>(run),
                    _ => zeroed::<{ gemm::PHASES_MAX }, _>(run),
                }
            }
            None => {
                if direct(mk, g, None, x, w, bias, act, out) {
                    return Ok(());
                }
                gemm::conv(mk, g, x, w, bias, act, out)
            }
        },
    }
}

/// [`Micro::conv_direct`] with the bias as [`conv_simd`] holds it (f32 or none; other storage
/// keeps the tiled product). False when nothing ran.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn direct<M: Micro>(
    mk: M,
    g: &Geom,
    phases: Option<(usize, usize)>,
    x: &[f32],
    w: &[f32],
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
) -> bool {
    f32_bias(bias).is_some_and(|b| mk.conv_direct(g, phases, x, w, b, act, out))
}

/// The bias as the SIMD kernels take it: empty for none, the floats of an f32 one; `None` for
/// other storage (which keeps the tiled product).
fn f32_bias<'b>(bias: Option<View<'b>>) -> Option<&'b [f32]> {
    match bias {
        None => Some(&[]),
        Some(View::F32(b)) => Some(b),
        Some(_) => None,
    }
}

/// Most values [`conv_simd`] copies out of a strided 1 × 1 Conv's input (32 KiB of stack).
const SUB_MAX: usize = 8192;

/// `buf` (`[c, oh, ow]`) gets the input value under each output pixel of a 1 × 1 Conv, 0 where
/// it lies in the padding; `x` holds the `c` input planes.
#[inline(always)]
fn subsample<M: Micro>(mk: M, g: &Geom, x: &[f32], buf: &mut [f32]) {
    let (in_plane, plane) = (g.h * g.w, g.oh * g.ow);
    // Output columns `lo .. hi` read inside the row, from column `lo·sw − pl` on.
    let (lo, hi) = g.col_range(0);
    let (lo, hi) = (lo.min(g.ow), hi.min(g.ow).max(lo.min(g.ow)));
    let first = (lo * g.sw).saturating_sub(g.pl).min(g.w);
    // Every output pixel over an input pixel (no padding read): each plane's rows in one call.
    let inside = g.sw == 2 && (lo, hi, first) == (0, g.ow, 0) && g.pt == 0 && g.oh.saturating_sub(1) * g.sh < g.h;
    if inside
        && x.chunks_exact(in_plane.max(1))
            .zip(buf.chunks_exact_mut(plane.max(1)))
            .all(|(xp, bp)| mk.evens_rows(bp, xp, g.oh, g.ow, g.ow, g.sh * g.w))
    {
        return;
    }
    for (xp, bp) in x.chunks_exact(in_plane.max(1)).zip(buf.chunks_exact_mut(plane.max(1))) {
        for (oy, row) in bp.chunks_exact_mut(g.ow.max(1)).enumerate() {
            let iy = (oy * g.sh).wrapping_sub(g.pt);
            if iy >= g.h {
                row.fill(0.0);
                continue;
            }
            let xr = &xp[iy * g.w..(iy + 1) * g.w];
            row[..lo].fill(0.0);
            row[hi..].fill(0.0);
            let (seg, from) = (&mut row[lo..hi], &xr[first..]);
            if g.sw == 2 {
                mk.evens(seg, from);
            } else {
                for (v, &x) in seg.iter_mut().zip(from.iter().step_by(g.sw.max(1))) {
                    *v = x;
                }
            }
        }
    }
}

/// [`super::conv_kernel_bits`]: the kernel [`conv`] tries first of those that take the
/// geometry, and those [`conv_fast`] would (over-inclusive where the patch kernel takes the
/// layer first on the target: a few KB of flash, never a missing kernel).
pub(super) fn kernel_bits(a: &ConvAttrs, x: &Shape, w: &Shape, y: &Shape) -> u128 {
    if x.rank() < 3 || w.rank() != x.rank() || y.rank() != x.rank() {
        return 0;
    }
    let g = Geom::new(a, x, w, y);
    if conv_quads::takes(&g) {
        return 1 << CONV_QUADS_BIT;
    }
    let mut bits = 0;
    for (take, bit) in
        [(takes_3x3_rows(&g), CONV_ROWS3_BIT), (takes_row_blocks(&g), CONV_ROW_BLOCKS_BIT), (takes_1x1_blocks(&g), CONV_1X1_BLOCKS_BIT)]
    {
        if take {
            bits |= 1 << bit;
        }
    }
    bits
}

/// Most bias values [`conv_simd`] decodes to f32 up front (1 KiB of stack).
const BIAS_BUF: usize = 256;

/// Output channel by output channel: the plane starts at the bias, then each weight adds a
/// scaled, strided run of each input row (contiguous output rows, no per-element bound tests).
/// Forced inline where a SIMD caller compiles it for wider registers ([`Micro::run`]).
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
fn conv_fast<const OPS: u128>(
    g: &Geom,
    x: &[f32],
    w: View<'_>,
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
) -> Result<(), OpError> {
    if has_fn::<OPS>(CONV_ROWS3_BIT) && takes_3x3_rows(g) {
        return conv_3x3_rows(g, x, w, bias, act, out);
    }
    if let Some(ws) = w.as_f32().filter(|_| has_fn::<OPS>(CONV_ROW_BLOCKS_BIT) && takes_row_blocks(g)) {
        return conv_row_blocks(g, x, ws, bias, act, out);
    }
    if let Some(ws) = w.as_f32().filter(|_| has_fn::<OPS>(CONV_1X1_BLOCKS_BIT) && takes_1x1_blocks(g)) {
        return conv_1x1_blocks(g, x, ws, bias, act, out);
    }
    let plane = g.oh * g.ow;
    let in_plane = g.h * g.w;
    for mo in 0..g.m {
        let grp = mo.checked_div(g.mg).unwrap_or(0);
        let ob = sub_mut(out, mo * plane, plane)?;
        let b0 = bias.map_or(0.0, |b| b.get(mo));
        ob.fill(b0);
        // A 1 × 1 layer over whole planes adds four input channels a pass (each output's sum
        // still in channel order, so the same bits).
        let mut icl0 = 0;
        if ROW_BLOCKS && g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && (g.oh, g.ow) == (g.h, g.w) {
            while icl0 + 4 <= g.cg {
                let ic = grp * g.cg + icl0;
                if ic + 4 > g.c {
                    return Err(OpError::ShapeMismatch);
                }
                let xs = sub(x, ic * in_plane, 4 * in_plane)?;
                let wb = mo * g.cg + icl0;
                add_planes4(xs, in_plane, [w.get(wb), w.get(wb + 1), w.get(wb + 2), w.get(wb + 3)], ob);
                icl0 += 4;
            }
        }
        for icl in icl0..g.cg {
            let ic = grp * g.cg + icl;
            if ic >= g.c {
                return Err(OpError::ShapeMismatch);
            }
            let xp = sub(x, ic * in_plane, in_plane)?;
            let wbase = (mo * g.cg + icl) * g.kh * g.kw;
            if takes_3x3(g) {
                let mut wk = [0.0f32; 9];
                for (t, v) in wk.iter_mut().enumerate() {
                    *v = w.get(wbase + t);
                }
                add_3x3(g, xp, wk, ob)?;
                continue;
            }
            for ky in 0..g.kh {
                if ROW_BLOCKS && g.kw == 3 && g.ow >= ROW3_MIN {
                    let t = wbase + ky * 3;
                    add_row3(g, xp, [w.get(t), w.get(t + 1), w.get(t + 2)], ky, ob)?;
                    continue;
                }
                for kx in 0..g.kw {
                    add_tap(g, xp, w.get(wbase + ky * g.kw + kx), ky, kx, ob)?;
                }
            }
        }
        if act != Activation::None {
            act.apply_all(ob);
        }
    }
    Ok(())
}

/// Adds `wv` times input plane `xp`, shifted for kernel tap `(ky, kx)`, to output plane `ob`:
/// every output row whose input row is inside the input, over the output columns whose input
/// column is (contiguous for stride 1, strided otherwise; no per-element bound tests).
/// Out of line on Cortex-M with an FPU (hard-float ABI), so that its loops get registers of
/// their own rather than what is left in the operator loop it would be inlined into (vww on
/// the M4: 29.68 M instead of 30.28 M instructions per inference).
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
#[cfg_attr(all(not(any(target_arch = "x86_64", target_arch = "aarch64")), not(target_abi = "eabihf")), inline)]
#[cfg_attr(target_abi = "eabihf", inline(never))]
pub(super) fn add_tap(g: &Geom, xp: &[f32], wv: f32, ky: usize, kx: usize, ob: &mut [f32]) -> Result<(), OpError> {
    let off = kx * g.dw;
    let (ox0, ox1) = g.col_range(off);
    if ox0 >= ox1 {
        return Ok(());
    }
    let ix0 = ox0 * g.sw + off - g.pl;
    if g.sw == 1 && g.sh == 1 && ix0 == 0 && ox0 == 0 && ox1 == g.ow && g.ow == g.w {
        // Whole rows with the same pitch in and out: the rows inside the input are one run.
        let shift = ky * g.dh;
        let (lo, hi) = (g.pt.saturating_sub(shift), (g.h + g.pt).saturating_sub(shift).min(g.oh));
        if lo < hi {
            let xs = sub(xp, (lo + shift - g.pt) * g.w, (hi - lo) * g.w)?;
            for (o, xv) in sub_mut(ob, lo * g.ow, (hi - lo) * g.ow)?.iter_mut().zip(xs) {
                *o += wv * xv;
            }
        }
        return Ok(());
    }
    for oy in 0..g.oh {
        let Some(iy) = g.in_row(oy, ky) else { continue };
        let xrow = sub(xp, iy * g.w, g.w)?;
        let orow = sub_mut(ob, oy * g.ow, g.ow)?;
        let xs = xrow.get(ix0..).unwrap_or(&[]);
        let os = orow.get_mut(ox0..ox1).unwrap_or(&mut []);
        if g.sw == 1 {
            for (o, xv) in os.iter_mut().zip(xs) {
                *o += wv * xv;
            }
        } else {
            // Exactly the inputs this output run reads, so indexing is in bounds.
            let Some(need) = os.len().checked_sub(1).map(|k| k * g.sw + 1) else {
                continue;
            };
            let Some(xs) = xs.get(..need) else {
                return Err(OpError::ShapeMismatch);
            };
            for (j, o) in os.iter_mut().enumerate() {
                *o += wv * xs[j * g.sw];
            }
        }
    }
    Ok(())
}

/// `ob[j] += w[0]·x₀[j] + w[1]·x₁[j] + w[2]·x₂[j] + w[3]·x₃[j]`, added one channel after the
/// other (the bits of four [`add_tap`] calls of a 1 × 1 layer over whole planes), where `xs`
/// holds the four input planes of `plane` values one after the other; each output is loaded
/// and stored once for the four. Attributes as [`add_tap`]'s.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
#[cfg_attr(all(not(any(target_arch = "x86_64", target_arch = "aarch64")), not(target_abi = "eabihf")), inline)]
#[cfg_attr(target_abi = "eabihf", inline(never))]
fn add_planes4(xs: &[f32], plane: usize, w: [f32; 4], ob: &mut [f32]) {
    let (x0, rest) = xs.split_at(plane.min(xs.len()));
    let (x1, rest) = rest.split_at(plane.min(rest.len()));
    let (x2, x3) = rest.split_at(plane.min(rest.len()));
    let [w0, w1, w2, w3] = w;
    for ((((o, a), b), c), d) in ob.iter_mut().zip(x0).zip(x1).zip(x2).zip(x3) {
        *o = (((*o + w0 * a) + w1 * b) + w2 * c) + w3 * d;
    }
}

/// Fewest output columns [`add_row3`] takes in one pass.
const ROW3_MIN: usize = 8;

/// Whether [`conv_fast`] blocks taps and channels ([`add_row3`], [`add_planes4`]): not on the
/// soft-float M0, where each float operation is a call and the blocks cost 12 KB of flash.
const ROW_BLOCKS: bool = !cfg!(all(target_arch = "arm", not(target_abi = "eabihf")));

/// The three taps `(ky, 0)`, `(ky, 1)`, `(ky, 2)` of a kernel row of width 3: the same sums,
/// bit for bit, as [`add_tap`] for each in turn (every output adds its taps inside the input
/// in `kx` order), but where all three read inside the input row, at stride 1 or 2 and
/// dilation 1, in one pass that loads and stores each output once (and each input once)
/// instead of three times. Attributes as [`add_tap`]'s.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
#[cfg_attr(all(not(any(target_arch = "x86_64", target_arch = "aarch64")), not(target_abi = "eabihf")), inline)]
#[cfg_attr(target_abi = "eabihf", inline(never))]
pub(super) fn add_row3(g: &Geom, xp: &[f32], w: [f32; 3], ky: usize, ob: &mut [f32]) -> Result<(), OpError> {
    let (sw, dw) = (g.sw.max(1), g.dw);
    let r = [g.col_range(0), g.col_range(dw), g.col_range(2 * dw)];
    // Columns every tap reads inside the input; the others (at most a few a side) tap by tap.
    let (lo, hi) = (r[0].0.max(r[1].0).max(r[2].0), r[0].1.min(r[1].1).min(r[2].1));
    // Runs shorter than ROW3_MIN (kws_dscnn's 5-wide rows) cost more in set-up per row than
    // they save; other strides and dilations are rare.
    if hi < lo + ROW3_MIN || !matches!((sw, dw), (1, 1) | (2, 1)) {
        for (kx, &wv) in w.iter().enumerate() {
            add_tap(g, xp, wv, ky, kx, ob)?;
        }
        return Ok(());
    }
    let (first, last) = (r[0].0.min(r[1].0).min(r[2].0), r[0].1.max(r[1].1).max(r[2].1));
    // Input column of tap 0 at output column `lo` (inside: `lo ≥ r[0].0`), and the inputs the
    // interior reads.
    let base = lo * sw - g.pl;
    let need = (hi - lo - 1) * sw + 2 * dw + 1;
    for oy in 0..g.oh {
        let Some(iy) = g.in_row(oy, ky) else { continue };
        let xrow = sub(xp, iy * g.w, g.w)?;
        let orow = sub_mut(ob, oy * g.ow, g.ow)?;
        for j in (first..lo).chain(hi..last) {
            let o = orow.get_mut(j).ok_or(OpError::ShapeMismatch)?;
            for (kx, &wv) in w.iter().enumerate() {
                if (r[kx].0..r[kx].1).contains(&j) {
                    *o += wv * xrow.get(j * sw + kx * dw - g.pl).ok_or(OpError::ShapeMismatch)?;
                }
            }
        }
        let xs = sub(xrow, base, need)?;
        let os = sub_mut(orow, lo, hi - lo)?;
        let [w0, w1, w2] = w;
        match (sw, dw) {
            (1, 1) => {
                let (mut a, mut b) = (xs[0], xs[1]);
                for (o, &c) in os.iter_mut().zip(&xs[2..]) {
                    *o = ((*o + w0 * a) + w1 * b) + w2 * c;
                    (a, b) = (b, c);
                }
            }
            _ => {
                let mut a = xs[0];
                for (o, bc) in os.iter_mut().zip(xs[1..].chunks_exact(2)) {
                    *o = ((*o + w0 * a) + w1 * bc[0]) + w2 * bc[1];
                    a = bc[1];
                }
            }
        }
    }
    Ok(())
}

/// Floats of the zero-bordered plane [`add_3x3`] copies its input plane into (1 KiB of stack).
const PAD3: usize = 256;

/// Whether [`conv_fast`] takes `g`'s filters through [`add_3x3`]: 3 × 3, dilation 1, output rows
/// of at most [`ROW3_MIN`] columns (too short for [`add_row3`]'s runs), and a bordered plane
/// within [`PAD3`].
fn takes_3x3(g: &Geom) -> bool {
    let (sh, sw) = (g.sh.max(1), g.sw.max(1));
    ROW_BLOCKS
        && g.kh == 3
        && g.kw == 3
        && g.dh == 1
        && g.dw == 1
        && g.oh > 0
        && (1..=ROW3_MIN).contains(&g.ow)
        && ((g.oh - 1) * sh + 3) * ((g.ow - 1) * sw + 3) <= PAD3
}

/// A whole 3 × 3 kernel (dilation 1, any stride) over one input plane, added onto `ob`, for a
/// layer [`takes_3x3`]: the plane is copied into a zero-bordered stack plane, then each output
/// adds its nine taps in `(ky, kx)` order in one pass (each output loaded and stored once, each
/// input row read through three registers), padding taps adding `w · 0` as the SIMD kernels
/// and onnxruntime do. Against [`add_tap`] for each tap in turn (which skips padding taps) the
/// sums are equal: the bits differ only in the sign of an exactly zero sum, and where a weight
/// is not finite. For kws_dscnn's 25 × 5 depthwise layers on Cortex-M. Attributes as
/// [`add_tap`]'s.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
#[cfg_attr(all(not(any(target_arch = "x86_64", target_arch = "aarch64")), not(target_abi = "eabihf")), inline)]
#[cfg_attr(target_abi = "eabihf", inline(never))]
pub(super) fn add_3x3(g: &Geom, xp: &[f32], w: [f32; 9], ob: &mut [f32]) -> Result<(), OpError> {
    if !takes_3x3(g) {
        return Err(OpError::ShapeMismatch);
    }
    let (sh, sw) = (g.sh.max(1), g.sw.max(1));
    let (rows, pitch) = ((g.oh - 1) * sh + 3, (g.ow - 1) * sw + 3);
    let mut buf = [0.0f32; PAD3];
    let pad = &mut buf[..rows * pitch];
    // Bordered column `px` holds input column `px − pl`.
    let (p0, p1) = (g.pl.min(pitch), (g.w + g.pl).min(pitch).max(g.pl.min(pitch)));
    for (py, prow) in pad.chunks_exact_mut(pitch).enumerate() {
        let Some(iy) = py.checked_sub(g.pt).filter(|&iy| iy < g.h) else { continue };
        let xs = sub(xp, iy * g.w + p0 - g.pl.min(p0), p1 - p0)?;
        for (d, &v) in prow[p0..p1].iter_mut().zip(xs) {
            *d = v;
        }
    }
    let [w0, w1, w2, w3, w4, w5, w6, w7, w8] = w;
    for (oy, orow) in sub_mut(ob, 0, g.oh * g.ow)?.chunks_exact_mut(g.ow).enumerate() {
        let s = sub(pad, oy * sh * pitch, 3 * pitch)?;
        let (r0, rest) = s.split_at(pitch);
        let (r1, r2) = rest.split_at(pitch);
        if sw == 1 {
            let (mut x0, mut x1, mut y0, mut y1, mut z0, mut z1) = (r0[0], r0[1], r1[0], r1[1], r2[0], r2[1]);
            for (((o, &x2), &y2), &z2) in orow.iter_mut().zip(&r0[2..]).zip(&r1[2..]).zip(&r2[2..]) {
                *o = ((((((((*o + w0 * x0) + w1 * x1) + w2 * x2) + w3 * y0) + w4 * y1) + w5 * y2) + w6 * z0) + w7 * z1) + w8 * z2;
                (x0, x1, y0, y1, z0, z1) = (x1, x2, y1, y2, z1, z2);
            }
        } else {
            for (k, o) in orow.iter_mut().enumerate() {
                let i = k * sw;
                let (Some(x), Some(y), Some(z)) = (r0.get(i..i + 3), r1.get(i..i + 3), r2.get(i..i + 3)) else {
                    return Err(OpError::ShapeMismatch);
                };
                *o = ((((((((*o + w0 * x[0]) + w1 * x[1]) + w2 * x[2]) + w3 * y[0]) + w4 * y[1]) + w5 * y[2]) + w6 * z[0]) + w7 * z[1])
                    + w8 * z[2];
            }
        }
    }
    Ok(())
}

/// Whether [`conv_fast`] takes `g` through [`conv_3x3_rows`]: a layer [`takes_3x3`] at stride 1
/// with one padding row and column a side ("same": the output plane is the input plane's size).
fn takes_3x3_rows(g: &Geom) -> bool {
    takes_3x3(g) && (g.sh, g.sw, g.pt, g.pl) == (1, 1, 1, 1) && (g.h, g.w) == (g.oh, g.ow)
}

/// Zeros standing in for a padding row (an output row of at most [`ROW3_MIN`] columns).
static ZERO_ROW: [f32; ROW3_MIN] = [0.0; ROW3_MIN];

/// Every filter of a layer [`takes_3x3_rows`], one output row at a time held in registers
/// ([`row_3x3`]), reading the input rows in place: each input is loaded once and added, times
/// each of the (up to) three weights that read it, onto the outputs it reaches. Each output
/// sums `bias, then each channel's nine taps in (ky, kx) order`, padding taps adding `w · 0`,
/// so the results are [`add_3x3`]'s (on a plane started at the bias, activation after) bit for
/// bit; the bias starts the first channel's rows and the activation ends the last one's, in
/// registers. For kws_dscnn's 25 × 5 depthwise layers on Cortex-M, which took about 4
/// instructions per MAC through [`add_3x3`] on the M4F (a bordered plane cleared and filled
/// per channel, then separate bias and activation passes). Attributes as [`add_3x3`]'s.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
#[cfg_attr(all(not(any(target_arch = "x86_64", target_arch = "aarch64")), not(target_abi = "eabihf")), inline)]
#[cfg_attr(target_abi = "eabihf", inline(never))]
fn conv_3x3_rows(g: &Geom, x: &[f32], w: View<'_>, bias: Option<View<'_>>, act: Activation, out: &mut [f32]) -> Result<(), OpError> {
    if !takes_3x3_rows(g) {
        return Err(OpError::ShapeMismatch);
    }
    let (plane, in_plane) = (g.oh * g.ow, g.h * g.w);
    for mo in 0..g.m {
        let grp = mo.checked_div(g.mg).unwrap_or(0);
        let ob = sub_mut(out, mo * plane, plane)?;
        let b0 = bias.map_or(0.0, |b| b.get(mo));
        for icl in 0..g.cg {
            let ic = grp * g.cg + icl;
            if ic >= g.c {
                return Err(OpError::ShapeMismatch);
            }
            let xp = sub(x, ic * in_plane, in_plane)?;
            let wbase = (mo * g.cg + icl) * 9;
            let mut wk = [0.0f32; 9];
            match w.as_f32().and_then(|ws| ws.get(wbase..wbase + 9)) {
                Some(ws) => wk.copy_from_slice(ws),
                None => wk.iter_mut().enumerate().for_each(|(t, v)| *v = w.get(wbase + t)),
            }
            let start = (icl == 0).then_some(b0);
            let end = if icl + 1 == g.cg { act } else { Activation::None };
            match g.ow {
                1 => plane_3x3::<1>(g, xp, &wk, start, end, ob)?,
                2 => plane_3x3::<2>(g, xp, &wk, start, end, ob)?,
                3 => plane_3x3::<3>(g, xp, &wk, start, end, ob)?,
                4 => plane_3x3::<4>(g, xp, &wk, start, end, ob)?,
                5 => plane_3x3::<5>(g, xp, &wk, start, end, ob)?,
                6 => plane_3x3::<6>(g, xp, &wk, start, end, ob)?,
                7 => plane_3x3::<7>(g, xp, &wk, start, end, ob)?,
                8 => plane_3x3::<8>(g, xp, &wk, start, end, ob)?,
                _ => return Err(OpError::ShapeMismatch),
            }
        }
    }
    Ok(())
}

/// One input plane `xp` of [`conv_3x3_rows`] onto its output plane `ob`, whose rows are `OW`
/// wide, row by row through [`row_3x3`]: the three input rows under each output row roll down
/// the plane (a zero row above the first and below the last), with no index arithmetic.
#[inline(always)]
fn plane_3x3<const OW: usize>(
    g: &Geom,
    xp: &[f32],
    wk: &[f32; 9],
    start: Option<f32>,
    end: Activation,
    ob: &mut [f32],
) -> Result<(), OpError> {
    let zero = ZERO_ROW.get(..g.w).ok_or(OpError::ShapeMismatch)?;
    let mut rows = xp.chunks_exact(g.w);
    let (mut a, mut b) = (zero, rows.next().unwrap_or(zero));
    for orow in ob.chunks_exact_mut(OW) {
        let c = rows.next().unwrap_or(zero);
        row_3x3::<OW>(orow, [a, b, c], wk, start, end);
        (a, b) = (b, c);
    }
    Ok(())
}

/// One output row of `OW` columns of a 3 × 3, stride-1 kernel with one zero column either side
/// of the input rows `r` (each at least `OW` long): `o[i] = end(start.unwrap_or(o[i]) + Σ
/// w[3ky+kx] · p[ky][i+kx])` summed in `(ky, kx)` order, where `p[ky]` is `r[ky]` bordered by
/// zeros (a border tap adds `w · 0`). Input by input, each loaded once: with `OW` a constant
/// the loops unroll and the row and the weights stay in registers (9 + `OW` + a few of the
/// M4F's 32).
#[inline(always)]
fn row_3x3<const OW: usize>(o: &mut [f32], r: [&[f32]; 3], w: &[f32; 9], start: Option<f32>, end: Activation) {
    let (Some(o), Some(r0), Some(r1), Some(r2)) = (o.get_mut(..OW), r[0].get(..OW), r[1].get(..OW), r[2].get(..OW)) else {
        return;
    };
    let mut acc = [0.0f32; OW];
    match start {
        Some(b) => acc = [b; OW],
        None => acc.copy_from_slice(o),
    }
    // Bordered column j reaches output j − kx for kx = 0, 1, 2; as j grows, each output's taps
    // arrive in kx order. Constant bounds throughout, so the loops unroll and `acc` stays in
    // registers.
    let mut add_row = |row: &[f32], wr: [f32; 3]| {
        for j in 0..OW + 2 {
            let xv = if j == 0 || j == OW + 1 { 0.0 } else { row[j - 1] };
            for kx in 0..3 {
                if j >= kx && j - kx < OW {
                    acc[j - kx] += wr[kx] * xv;
                }
            }
        }
    };
    add_row(r0, [w[0], w[1], w[2]]);
    add_row(r1, [w[3], w[4], w[5]]);
    add_row(r2, [w[6], w[7], w[8]]);
    end.apply_all(&mut acc);
    o.copy_from_slice(&acc);
}

/// Filters of one register block of [`conv_1x1_blocks`].
const PW_F: usize = 4;
/// Pixels of one register block of [`conv_1x1_blocks`].
const PW_P: usize = 4;

/// Whether [`conv_fast`] takes `g` (with f32 weights) through [`conv_1x1_blocks`]: a 1 × 1,
/// stride-1, unpadded layer over whole planes of at least [`PW_P`] pixels with at least
/// [`PW_F`] filters per group (VWW's wide pointwise layers; narrower planes take patches).
fn takes_1x1_blocks(g: &Geom) -> bool {
    ROW_BLOCKS
        && (g.kh, g.kw, g.sh, g.sw, g.pt, g.pl) == (1, 1, 1, 1, 0, 0)
        && (g.oh, g.ow) == (g.h, g.w)
        && g.mg >= PW_F
        && g.oh * g.ow >= PW_P
}

/// A layer [`takes_1x1_blocks`] in register blocks of [`PW_F`] filters × [`PW_P`] pixels
/// ([`block_1x1`]): per input channel, four inputs and four weights loaded for 16
/// multiply-adds. Each output sums `bias, then the input channels in order` and is activated in
/// registers, so the results are the plane-by-plane loop's ([`add_planes4`], then
/// [`add_tap`] for the last channels, the activation after) bit for bit; the last block of
/// filters and of pixels overlaps the one before it (it recomputes a few outputs, the same
/// values). For hard-float Cortex-M, where the plane-by-plane loop loads and stores every
/// output once per four channels: VWW's 48 × 48 and 24 × 24 pointwise layers took 3.4–4.4
/// instructions per MAC. Attributes as [`add_3x3`]'s.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
#[cfg_attr(all(not(any(target_arch = "x86_64", target_arch = "aarch64")), not(target_abi = "eabihf")), inline)]
#[cfg_attr(target_abi = "eabihf", inline(never))]
fn conv_1x1_blocks(g: &Geom, x: &[f32], w: &[f32], bias: Option<View<'_>>, act: Activation, out: &mut [f32]) -> Result<(), OpError> {
    if !takes_1x1_blocks(g) {
        return Err(OpError::ShapeMismatch);
    }
    let plane = g.oh * g.ow;
    for grp in 0..g.m / g.mg {
        let xg = sub(x, grp * g.cg * plane, g.cg * plane)?;
        let mut f0 = 0;
        while f0 < g.mg {
            let mo = grp * g.mg + f0.min(g.mg - PW_F);
            let wq = sub(w, mo * g.cg, PW_F * g.cg)?;
            let b: [f32; PW_F] = core::array::from_fn(|f| bias.map_or(0.0, |b| b.get(mo + f)));
            let oq = sub_mut(out, mo * plane, PW_F * plane)?;
            let mut p0 = 0;
            while p0 < plane {
                let pa = p0.min(plane - PW_P);
                block_1x1(xg, plane, pa, wq, g.cg, b, act, oq);
                p0 = pa + PW_P;
            }
            f0 = mo - grp * g.mg + PW_F;
        }
    }
    Ok(())
}

/// Pixels `pa .. pa + PW_P` of the [`PW_F`] output planes in `oq` (each `plane` long): `o[f][p]
/// = act(b[f] + Σ_c wq[f·cg + c] · xg[c·plane + p])` summed in `c` order, in registers.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn block_1x1(xg: &[f32], plane: usize, pa: usize, wq: &[f32], cg: usize, b: [f32; PW_F], act: Activation, oq: &mut [f32]) {
    let mut acc = b.map(|v| [v; PW_P]);
    let (w0, rest) = wq.split_at(cg.min(wq.len()));
    let (w1, rest) = rest.split_at(cg.min(rest.len()));
    let (w2, w3) = rest.split_at(cg.min(rest.len()));
    for ((((xp, &u0), &u1), &u2), &u3) in xg.chunks_exact(plane).zip(w0).zip(w1).zip(w2).zip(w3) {
        let Some(xv) = xp.get(pa..pa + PW_P) else { return };
        for (f, u) in [u0, u1, u2, u3].into_iter().enumerate() {
            for p in 0..PW_P {
                acc[f][p] += u * xv[p];
            }
        }
    }
    for (f, a) in acc.iter_mut().enumerate() {
        act.apply_all(a);
        if let Some(o) = oq.get_mut(f * plane + pa..f * plane + pa + PW_P) {
            o.copy_from_slice(a);
        }
    }
}

/// Outputs per register block of [`conv_row_blocks`].
const BLOCK: usize = 8;
/// Widest bordered input row [`conv_row_blocks`] holds (floats).
const BLOCK_PITCH: usize = 64;
/// Most kernel rows [`conv_row_blocks`] takes: its ring of bordered input rows.
const BLOCK_KH: usize = 5;

/// Zeros standing in for a padding row of [`conv_row_blocks`].
static ZERO_PITCH: [f32; BLOCK_PITCH] = [0.0; BLOCK_PITCH];

/// Whether [`conv_fast`] takes `g` (with f32 weights) through [`conv_row_blocks`]: one input
/// channel per group (MNIST's stem, depthwise layers), kernels 3 or 5 wide and at most
/// [`BLOCK_KH`] tall, dilation 1, column stride 1 (any row stride), output rows of at least
/// [`BLOCK`] columns whose bordered input rows fit [`BLOCK_PITCH`]; not a layer
/// [`takes_3x3_rows`]. (At column stride 2, VWW's 48 → 24 and 24 → 12 depthwise layers ran
/// 1–2 % slower this way on the M4F than through [`add_row3`].)
#[inline(always)]
fn takes_row_blocks(g: &Geom) -> bool {
    ROW_BLOCKS
        && g.cg == 1
        && (g.dh, g.dw) == (1, 1)
        && matches!(g.kw, 3 | 5)
        && (1..=BLOCK_KH).contains(&g.kh)
        && g.sw == 1
        && g.sh >= 1
        && g.ow >= BLOCK
        && g.ow - 1 + g.kw <= BLOCK_PITCH
        && !takes_3x3_rows(g)
}

/// A layer [`takes_row_blocks`], output row by output row, in blocks of [`BLOCK`] outputs held
/// in registers ([`block_row`]): each input under a block is loaded once and added, times each
/// weight that reads it, onto the outputs it reaches. Each input row is copied once per input
/// channel into a ring of zero-bordered rows (cleared once per call), shared by the group's
/// filters. Each output sums `bias, then the taps in (ky, kx) order`, padding taps adding
/// `w · 0`, so the results equal [`add_tap`]'s tap by tap (the bits differ only in the sign of
/// an exact zero, and where a weight is not finite); the last block of a row overlaps the one
/// before it (it recomputes a few outputs, the same values). For hard-float Cortex-M, where one
/// tap at a time costs about 7 instructions per MAC on MNIST's one-channel 5 × 5 stem.
/// Attributes as [`add_3x3`]'s.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
#[cfg_attr(all(not(any(target_arch = "x86_64", target_arch = "aarch64")), not(target_abi = "eabihf")), inline)]
#[cfg_attr(target_abi = "eabihf", inline(never))]
fn conv_row_blocks(g: &Geom, x: &[f32], w: &[f32], bias: Option<View<'_>>, act: Activation, out: &mut [f32]) -> Result<(), OpError> {
    if !takes_row_blocks(g) {
        return Err(OpError::ShapeMismatch);
    }
    let pitch = g.ow - 1 + g.kw;
    let (plane, in_plane, taps) = (g.oh * g.ow, g.h * g.w, g.kh * g.kw);
    let zero = &ZERO_PITCH[..pitch];
    let mut ring = [0.0f32; BLOCK_KH * BLOCK_PITCH];
    // Bordered column `px` holds input column `px − pl`; the others stay 0.
    let (p0, p1) = (g.pl.min(pitch), (g.w + g.pl).min(pitch).max(g.pl.min(pitch)));
    for ic in 0..g.c {
        let xp = sub(x, ic * in_plane, in_plane)?;
        // Input row held by each ring slot (row `iy` in slot `iy % BLOCK_KH`: the kernel's
        // rows for one output row are consecutive, so they never share a slot).
        let mut held = [usize::MAX; BLOCK_KH];
        for oy in 0..g.oh {
            for ky in 0..g.kh {
                let Some(iy) = g.in_row(oy, ky) else { continue };
                let slot = iy % BLOCK_KH;
                if held[slot] != iy {
                    let src = sub(xp, iy * g.w + p0 - g.pl.min(p0), p1 - p0)?;
                    ring[slot * BLOCK_PITCH + p0..slot * BLOCK_PITCH + p1].copy_from_slice(src);
                    held[slot] = iy;
                }
            }
            let mut rows = [zero; BLOCK_KH];
            for (ky, r) in rows.iter_mut().enumerate().take(g.kh) {
                if let Some(iy) = g.in_row(oy, ky) {
                    *r = &ring[iy % BLOCK_KH * BLOCK_PITCH..][..pitch];
                }
            }
            let rows = &rows[..g.kh];
            for mo in ic * g.mg..(ic + 1) * g.mg {
                let b0 = bias.map_or(0.0, |b| b.get(mo));
                let wf = sub(w, mo * taps, taps)?;
                let orow = sub_mut(out, mo * plane + oy * g.ow, g.ow)?;
                match g.kw {
                    3 => block_row::<3>(orow, rows, wf, b0, act),
                    5 => block_row::<5>(orow, rows, wf, b0, act),
                    _ => return Err(OpError::ShapeMismatch),
                }
            }
        }
    }
    Ok(())
}

/// One output row `o` (at least [`BLOCK`] long) of [`conv_row_blocks`], [`BLOCK`] outputs at a
/// time, the last block ending at the row's end.
#[inline(always)]
fn block_row<const KW: usize>(o: &mut [f32], rows: &[&[f32]], wf: &[f32], b0: f32, act: Activation) {
    let n = o.len();
    let mut i0 = 0;
    while i0 < n {
        let at = i0.min(n.saturating_sub(BLOCK));
        block::<KW>(&mut o[at..], rows, at, wf, b0, act);
        i0 = at + BLOCK;
    }
}

/// Outputs `0 .. BLOCK` of `o`: `o[i] = act(b0 + Σ wf[ky·KW + kx] · rows[ky][c0 + i + kx])`
/// summed in `(ky, kx)` order. With `KW` and [`BLOCK`] constants the loops over a kernel row
/// unroll, each input is loaded once per kernel row and the block stays in registers.
#[inline(always)]
fn block<const KW: usize>(o: &mut [f32], rows: &[&[f32]], c0: usize, wf: &[f32], b0: f32, act: Activation) {
    let Some(o) = o.get_mut(..BLOCK) else { return };
    let mut acc = [b0; BLOCK];
    for (ky, row) in rows.iter().enumerate() {
        let (Some(seg), Some(wr)) = (row.get(c0..c0 + BLOCK - 1 + KW), wf.get(ky * KW..ky * KW + KW)) else {
            return;
        };
        // Each output's taps in kx order; an input read by several taps is loaded once (the
        // indices are constants once the loops unroll).
        for (kx, &wv) in wr.iter().enumerate() {
            for (i, a) in acc.iter_mut().enumerate() {
                *a += wv * seg[i + kx];
            }
        }
    }
    act.apply_all(&mut acc);
    o.copy_from_slice(&acc);
}

/// Output pixel by output pixel, two at a time: the input patches under their windows (one
/// group, in the filter's `[c, ky, kx]` order, zeros for padding) are gathered into stack
/// buffers a few whole input channels at a time, then every four filters of the group take
/// their dot products with both ([`super::dense::dot4x2`]: each weight loaded once for two
/// pixels). Each output sums exactly as [`patches_with`] with [`super::dense::dot4`] does.
/// Requires `kh * kw <= PATCH` (see [`Geom::prefers_patches`]). Never inlined: its patch
/// buffers then take stack only while it runs, not in the frame every operator of a Cortex-M
/// build shares.
#[inline(never)]
pub(super) fn conv_patches(
    g: &Geom,
    x: &[f32],
    w: &[f32],
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
) -> Result<(), OpError> {
    let patch = g.cg * g.kh * g.kw;
    let (plane, in_plane, taps) = (g.oh * g.ow, g.h * g.w, g.kh * g.kw);
    let groups = g.m.checked_div(g.mg).unwrap_or(0);
    if w.len() < g.m * patch || taps == 0 || taps > PATCH || out.len() < g.m * plane || x.len() < g.c * in_plane || groups * g.cg > g.c {
        return Err(OpError::ShapeMismatch);
    }
    for (mo, ob) in out.chunks_exact_mut(plane.max(1)).take(g.m).enumerate() {
        ob.fill(bias.map_or(0.0, |b| b.get(mo)));
    }
    // Two patches of `PATCH` floats, whole input channels each, the
    // channels split evenly over the fewest chunks ([`patch_chunk`]).
    let per_chunk = patch_chunk(g) / taps;
    let mut bufs = [[0.0f32; PATCH]; 2];
    let mut o = 0;
    while o < plane {
        let np = (plane - o).min(if PAIRS { 2 } else { 1 });
        for grp in 0..groups {
            let mut c0 = 0;
            while c0 < g.cg {
                let nc = per_chunk.min(g.cg - c0);
                let len = nc * taps;
                for (p, buf) in bufs.iter_mut().enumerate().take(np) {
                    let (oy, ox) = ((o + p) / g.ow, (o + p) % g.ow);
                    gather_patch(g, &x[(grp * g.cg + c0) * in_plane..(grp * g.cg + c0 + nc) * in_plane], oy, ox, &mut buf[..len]);
                }
                let k0 = c0 * taps;
                add_chunk_dots((grp * g.mg, (grp + 1) * g.mg), &bufs, (np, len, o, plane), (w, 0, patch, k0), out);
                c0 += nc;
            }
        }
        o += np;
    }
    if act != Activation::None {
        act.apply_all(&mut out[..g.m * plane]);
    }
    Ok(())
}

/// Adds the dot products of filters `m0 .. m1` of one group with the first `np` patches of
/// `bufs` (`len` floats each) to outputs `o .. o + np` of their planes (`plane` floats apart in
/// `out`): quads of filters through [`super::dense::dot4x2`] (two patches) or
/// [`super::dense::dot4`], the last ones one by one. Filter `m`'s weights over the chunk are
/// `w[(m - base) · stride + k0 ..][..len]`. One copy serves the dense and the decoded patch
/// Convs (flash on microcontrollers).
#[inline(never)]
fn add_chunk_dots(
    (m0, m1): (usize, usize),
    bufs: &[[f32; PATCH]; 2],
    (np, len, o, plane): (usize, usize, usize, usize),
    (w, base, stride, k0): (&[f32], usize, usize, usize),
    out: &mut [f32],
) {
    let row = |m: usize| &w[(m - base) * stride + k0..(m - base) * stride + k0 + len];
    let mut m0 = m0;
    while m0 < m1 {
        let nf = 4.min(m1 - m0);
        if nf == 4 && np == 2 {
            let d = super::dense::dot4x2([row(m0), row(m0 + 1), row(m0 + 2), row(m0 + 3)], [&bufs[0][..len], &bufs[1][..len]]);
            for (p, dp) in d.iter().enumerate() {
                for (i, v) in dp.iter().enumerate() {
                    out[(m0 + i) * plane + o + p] += v;
                }
            }
        } else {
            for (p, buf) in bufs.iter().enumerate().take(np) {
                let pb = &buf[..len];
                let d = if nf == 4 {
                    super::dense::dot4([row(m0), row(m0 + 1), row(m0 + 2), row(m0 + 3)], pb)
                } else {
                    let mut d = [0.0f32; 4];
                    for (i, v) in d.iter_mut().enumerate().take(nf) {
                        *v = dot(row(m0 + i), pb);
                    }
                    d
                };
                for (i, v) in d.iter().enumerate().take(nf) {
                    out[(m0 + i) * plane + o + p] += v;
                }
            }
        }
        m0 += nf;
    }
}

/// Floats of the longest channel chunk of [`conv_patches`]' patches: whole input channels of a
/// group, split evenly over the fewest chunks of at most `PATCH` floats (one channel when
/// its taps alone are more).
pub(super) fn patch_chunk(g: &Geom) -> usize {
    let taps = g.kh * g.kw;
    let most = (PATCH / taps.max(1)).max(1);
    g.cg.div_ceil(g.cg.div_ceil(most).max(1)).max(1) * taps
}

/// [`conv_patches`] with the weights decoded by `decode(m, k0, row)` (filter `m`'s weights
/// `k0 .. k0 + row.len()`) into `wbuf` a block at a time: for each block of a group's filters
/// (whole quads, as many as `wbuf` holds for one channel chunk) and each channel chunk, the
/// block's weights over the chunk, then every output pixel's patch over the chunk, gathered
/// again for each block. Each output gets [`conv_patches`]' sums on the decoded weights, bit
/// for bit: its chunks add in the same order and its filter quads are the same. Errors as
/// [`conv_patches`], and when `wbuf` holds fewer than four filters' chunk.
#[inline(never)]
pub(super) fn conv_patches_decoded(
    g: &Geom,
    x: &[f32],
    wbuf: &mut [f32],
    mut decode: impl FnMut(usize, usize, &mut [f32]),
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
) -> Result<(), OpError> {
    let (plane, in_plane, taps) = (g.oh * g.ow, g.h * g.w, g.kh * g.kw);
    let groups = g.m.checked_div(g.mg).unwrap_or(0);
    let per_chunk = patch_chunk(g) / taps.max(1);
    let fb = wbuf.len() / patch_chunk(g).max(1) / 4 * 4;
    if taps == 0 || taps > PATCH || fb == 0 || out.len() < g.m * plane || x.len() < g.c * in_plane || groups * g.cg > g.c {
        return Err(OpError::ShapeMismatch);
    }
    for (mo, ob) in out.chunks_exact_mut(plane.max(1)).take(g.m).enumerate() {
        ob.fill(bias.map_or(0.0, |b| b.get(mo)));
    }
    let mut bufs = [[0.0f32; PATCH]; 2];
    for grp in 0..groups {
        let end = (grp + 1) * g.mg;
        let mut mb = grp * g.mg;
        while mb < end {
            let mb1 = (mb + fb).min(end);
            let mut c0 = 0;
            while c0 < g.cg {
                let nc = per_chunk.min(g.cg - c0);
                let len = nc * taps;
                for (i, r) in wbuf.chunks_exact_mut(len).take(mb1 - mb).enumerate() {
                    decode(mb + i, c0 * taps, r);
                }
                let wb = &wbuf[..(mb1 - mb) * len];
                let xs = &x[(grp * g.cg + c0) * in_plane..(grp * g.cg + c0 + nc) * in_plane];
                let mut o = 0;
                while o < plane {
                    let np = (plane - o).min(if PAIRS { 2 } else { 1 });
                    for (p, buf) in bufs.iter_mut().enumerate().take(np) {
                        gather_patch(g, xs, (o + p) / g.ow, (o + p) % g.ow, &mut buf[..len]);
                    }
                    add_chunk_dots((mb, mb1), &bufs, (np, len, o, plane), (wb, mb, len, 0), out);
                    o += np;
                }
                c0 += nc;
            }
            mb = mb1;
        }
    }
    if act != Activation::None {
        act.apply_all(&mut out[..g.m * plane]);
    }
    Ok(())
}

/// Whether [`conv_patches`] takes output pixels in pairs: everywhere but soft-float bare-metal
/// targets (Cortex-M0: each multiply-add a library call, the pairs' extra live values cost more
/// than the loads they save: MNIST 146.6 → 149.9 instructions per MAC).
const PAIRS: bool = !(cfg!(target_os = "none") && cfg!(target_abi = "eabi"));

/// `buf` gets the patch of output pixel `(oy, ox)` over the input planes `xs` (`buf.len() /
/// (kh·kw)` of them), in `[c, ky, kx]` order, 0 for padding.
/// Where the pixel's kernel rows lie whole inside the input (dilation 1, away from the side
/// borders) each row is one run of `kw` copies, without a test per value.
#[inline]
fn gather_patch(g: &Geom, xs: &[f32], oy: usize, ox: usize, buf: &mut [f32]) {
    let in_plane = g.h * g.w;
    if g.kh == 1 && g.kw == 1 {
        return gather_1x1(g, xs, oy, ox, buf);
    }
    let start = (ox * g.sw).wrapping_sub(g.pl);
    let whole = g.dw == 1 && ox * g.sw >= g.pl && start + g.kw <= g.w;
    if whole && g.kh <= GATHER_KH && in_plane < u32::MAX as usize {
        return gather_whole(g, xs, oy, start, buf);
    }
    let mut j = 0;
    for xp in xs.chunks_exact(in_plane.max(1)) {
        for ky in 0..g.kh {
            let row = g.in_row(oy, ky).map(|iy| &xp[iy * g.w..(iy + 1) * g.w]);
            if let (true, Some(dst)) = (whole, buf.get_mut(j..j + g.kw)) {
                match row.and_then(|r| r.get(start..start + g.kw)) {
                    Some(src) => {
                        for (d, &v) in dst.iter_mut().zip(src) {
                            *d = v;
                        }
                    }
                    None => dst.fill(0.0),
                }
                j += g.kw;
                continue;
            }
            for kx in 0..g.kw {
                let ix = (ox * g.sw + kx * g.dw).wrapping_sub(g.pl);
                if let Some(v) = buf.get_mut(j) {
                    *v = row.and_then(|r| r.get(ix)).copied().unwrap_or(0.0);
                }
                j += 1;
            }
        }
    }
}

/// Floats of one patch buffer of [`conv_patches`] (two of them on the stack): 16 channels of
/// 3 × 3 taps, so that ResNet-8's 16-channel layers take one chunk (at 128 floats, two of 8
/// channels: each filter quad's dot and output update twice per pixel pair; Cortex-M4F
/// ResNet-8 35.6 M → 33.6 M instructions for 128 bytes more peak stack).
pub(super) const PATCH: usize = 144;

/// Most kernel rows [`gather_whole`] takes.
const GATHER_KH: usize = 16;

/// [`gather_patch`] where every kernel row of the pixel lies whole inside its input row (from
/// column `start`): each kernel row's plane offset worked out once for all channels, 3-, 4- and
/// 5-wide rows copied at a width known to the compiler (ResNet-8's, the KWS models' and MNIST's
/// kernels), others as slices. The caller guarantees `kh ≤ GATHER_KH` and planes of fewer than `u32::MAX`
/// floats (the offsets are held in 32 bits). Out of line, so its offsets take stack only while
/// it runs (inlined, the instruction counts were within 1 %).
#[inline(never)]
fn gather_whole(g: &Geom, xs: &[f32], oy: usize, start: usize, buf: &mut [f32]) {
    // Offset of kernel row ky's first tap in its plane; `u32::MAX` for rows in the padding.
    let mut offs = [u32::MAX; GATHER_KH];
    for (ky, o) in offs.iter_mut().enumerate().take(g.kh) {
        if let Some(iy) = g.in_row(oy, ky) {
            *o = u32::try_from(iy * g.w + start).unwrap_or(u32::MAX);
        }
    }
    let offs = &offs[..g.kh.min(GATHER_KH)];
    match g.kw {
        3 => gather_rows_of::<3>(g, xs, offs, buf),
        4 => gather_rows_of::<4>(g, xs, offs, buf),
        5 => gather_rows_of::<5>(g, xs, offs, buf),
        _ => {
            let (in_plane, kw) = (g.h * g.w, g.kw);
            for (xp, patch) in xs.chunks_exact(in_plane.max(1)).zip(buf.chunks_exact_mut((g.kh * kw).max(1))) {
                for (dst, off) in patch.chunks_exact_mut(kw.max(1)).zip(offs) {
                    match xp.get(*off as usize..(*off as usize).saturating_add(kw)) {
                        Some(src) => dst.copy_from_slice(src),
                        None => dst.fill(0.0),
                    }
                }
            }
        }
    }
}

/// [`gather_whole`]'s copies for kernels `K` taps wide.
#[inline(always)]
fn gather_rows_of<const K: usize>(g: &Geom, xs: &[f32], offs: &[u32], buf: &mut [f32]) {
    let in_plane = g.h * g.w;
    for (xp, patch) in xs.chunks_exact(in_plane.max(1)).zip(buf.chunks_exact_mut((offs.len() * K).max(1))) {
        for (dst, off) in patch.chunks_exact_mut(K).zip(offs) {
            match xp.get(*off as usize..(*off as usize).saturating_add(K)) {
                Some(src) => dst.copy_from_slice(src),
                None => dst.fill(0.0),
            }
        }
    }
}

/// [`gather_patch`] for a 1 × 1 kernel (kws_dscnn's pointwise layers): one value per input
/// plane, a strided copy instead of a kernel row's set-up per value (kws_dscnn on the M4F
/// 10.23 M → 8.31 M instructions per inference). Out of line: inlined, the patch loop of
/// MNIST's 5 × 5 layers lost registers (mnist-8 +0.7 % instead of +0.6 %).
#[inline(never)]
fn gather_1x1(g: &Geom, xs: &[f32], oy: usize, ox: usize, buf: &mut [f32]) {
    let ix = (ox * g.sw).wrapping_sub(g.pl);
    match g.in_row(oy, 0).filter(|_| ix < g.w) {
        Some(iy) => {
            let mut k = iy * g.w + ix;
            for d in buf.iter_mut() {
                *d = xs.get(k).copied().unwrap_or(0.0);
                k += g.h * g.w;
            }
        }
        None => buf.fill(0.0),
    }
}

/// [`conv_patches`] with the filter side given by `filter_dots(m0, k0, patch, dots)`: `dots[i]`
/// becomes the dot product of filter `m0 + i`'s weights `k0..k0 + patch.len()` with `patch`, for
/// up to 4 filters of one group at a time. Patch chunks hold a multiple of `align` input channels
/// (so `k0` is a multiple of `align · kh · kw`).
#[cfg(target_arch = "x86_64")]
pub(super) fn patches_with(
    g: &Geom,
    x: &[f32],
    align: usize,
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
    mut filter_dots: impl FnMut(usize, usize, &[f32], &mut [f32]),
) -> Result<(), OpError> {
    let plane = g.oh * g.ow;
    let in_plane = g.h * g.w;
    let taps = g.kh * g.kw;
    let groups = g.m.checked_div(g.mg).unwrap_or(0);
    let align = align.max(1);
    if taps == 0 || taps.saturating_mul(align) > super::CHUNK || out.len() < g.m * plane || x.len() < g.c * in_plane {
        return Err(OpError::ShapeMismatch);
    }
    for (mo, ob) in out.chunks_exact_mut(plane.max(1)).take(g.m).enumerate() {
        ob.fill(bias.map_or(0.0, |b| b.get(mo)));
    }
    let per_chunk = super::CHUNK / taps / align * align;
    let mut buf = [0.0f32; super::CHUNK];
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let o = oy * g.ow + ox;
            for grp in 0..groups {
                let mut c0 = 0;
                while c0 < g.cg {
                    let nc = per_chunk.min(g.cg - c0);
                    let len = nc * taps;
                    gather_patch(g, &x[(grp * g.cg + c0) * in_plane..(grp * g.cg + c0 + nc) * in_plane], oy, ox, &mut buf[..len]);
                    let k0 = c0 * taps;
                    let mut m0 = grp * g.mg;
                    while m0 < (grp + 1) * g.mg {
                        let nf = 4.min((grp + 1) * g.mg - m0);
                        let mut dots = [0.0f32; 4];
                        filter_dots(m0, k0, &buf[..len], &mut dots[..nf]);
                        for (i, d) in dots[..nf].iter().enumerate() {
                            out[(m0 + i) * plane + o] += d;
                        }
                        m0 += nf;
                    }
                    c0 += nc;
                }
            }
        }
    }
    if act != Activation::None {
        act.apply_all(&mut out[..g.m * plane]);
    }
    Ok(())
}

/// Direct definition, element by element; used when `x` is not a native f32 slice.
fn conv_naive(g: &Geom, x: View<'_>, w: View<'_>, bias: Option<View<'_>>, act: Activation, out: &mut [f32]) -> Result<(), OpError> {
    let plane = g.oh * g.ow;
    for mo in 0..g.m {
        let grp = mo.checked_div(g.mg).unwrap_or(0);
        let ob = sub_mut(out, mo * plane, plane)?;
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut acc = bias.map_or(0.0, |b| b.get(mo));
                for icl in 0..g.cg {
                    let ic = grp * g.cg + icl;
                    for ky in 0..g.kh {
                        let Some(iy) = g.in_row(oy, ky) else { continue };
                        for kx in 0..g.kw {
                            let ix = ox * g.sw + kx * g.dw;
                            if ix < g.pl || ix - g.pl >= g.w {
                                continue;
                            }
                            let xv = x.get((ic * g.h + iy) * g.w + ix - g.pl);
                            acc += xv * w.get(((mo * g.cg + icl) * g.kh + ky) * g.kw + kx);
                        }
                    }
                }
                if let Some(o) = ob.get_mut(oy * g.ow + ox) {
                    *o = act.apply(acc);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(unused_imports))] // its users need a SIMD tier
    use super::super::testutil::{sh as sh_of, *};
    use super::super::Operand;
    use crate::op::{Activation, ConvAttrs, Op, OpError};
    use crate::view::View;
    use proptest::prelude::*;

    /// Each register-blocked kernel's bit is set for the real models' layers it was written for,
    /// and only the first kernel `conv` tries is named where several take a layer.
    #[test]
    fn kernel_bits_name_the_kernels_of_the_real_layers() {
        use super::super::{CONV_1X1_BLOCKS_BIT as P1, CONV_QUADS_BIT as Q, CONV_ROWS3_BIT as R3, CONV_ROW_BLOCKS_BIT as RB};
        let bits = |group: usize, stride: usize, pads: usize, x: [usize; 4], m: usize, k: usize| {
            let a = conv_attrs(group, [stride; 2], [1, 1], [pads; 4], 0);
            let (oh, ow) = ((x[2] + 2 * pads - k) / stride + 1, (x[3] + 2 * pads - k) / stride + 1);
            super::kernel_bits(&a, &sh_of(&x), &sh_of(&[m, x[1] / group, k, k]), &sh_of(&[1, m, oh, ow]))
        };
        assert_eq!(bits(1, 1, 1, [1, 16, 32, 32], 16, 3), 1 << Q, "ResNet-8's 16 -> 16 3 x 3");
        assert_eq!(bits(1, 2, 1, [1, 16, 32, 32], 32, 3), 1 << Q, "ResNet-8's 16 -> 32 stride 2");
        assert_eq!(bits(64, 1, 1, [1, 64, 25, 5], 64, 3), 1 << R3, "kws_dscnn's depthwise");
        assert_eq!(bits(1, 1, 2, [1, 1, 28, 28], 8, 5), 1 << RB, "MNIST's stem");
        assert_eq!(bits(1, 1, 2, [1, 8, 14, 14], 16, 5), 1 << Q, "MNIST's second layer");
        assert_eq!(bits(1, 2, 2, [1, 8, 14, 14], 16, 5), 0, "5 x 5 at stride 2");
        assert_eq!(bits(8, 1, 1, [1, 8, 48, 48], 8, 3), 1 << RB, "VWW's 48-wide depthwise");
        assert_eq!(bits(1, 1, 0, [1, 8, 48, 48], 16, 1), 1 << P1, "VWW's first pointwise");
        assert_eq!(bits(1, 2, 0, [1, 16, 32, 32], 32, 1), 0, "ResNet-8's strided shortcut");
        assert_eq!(bits(1, 1, 1, [1, 1, 8, 8], 4, 7), 0, "7 x 7");
        let a = conv_attrs(1, [1, 1], [1, 1], [0; 4], 0);
        assert_eq!(super::kernel_bits(&a, &sh_of(&[1, 4, 8]), &sh_of(&[4, 4, 3]), &sh_of(&[1, 4, 6])), 0, "1-D");
    }

    /// Without its bit in the kernel set a layer runs the general loops, with the same outputs
    /// (equal as floats: the sums' order differs); with it, what `execute` gives.
    #[test]
    fn a_kernel_set_without_a_blocked_kernel_gives_the_same_outputs() {
        use super::super::{execute, execute_in, ops_mask, CONV_KERNEL_BITS};
        use crate::op::kind;
        const CONV: u128 = ops_mask(&[kind::CONV]);
        const NONE: u128 = CONV
            & !((1 << super::CONV_QUADS_BIT)
                | (1 << super::CONV_1X1_BLOCKS_BIT)
                | (1 << super::CONV_ROW_BLOCKS_BIT)
                | (1 << super::CONV_ROWS3_BIT));
        assert_eq!(CONV_KERNEL_BITS.iter().fold(0, |m, &(b, _)| m | (1u128 << b)), CONV & !NONE);
        for (group, stride, pads, x, m, k) in [
            (1, 1, 1, [1, 6, 9, 10], 8, 3),
            (1, 2, 1, [1, 6, 17, 18], 5, 3),
            (12, 1, 1, [1, 12, 7, 5], 12, 3),
            (1, 1, 2, [1, 1, 12, 12], 8, 5),
            (1, 1, 0, [1, 8, 20, 20], 12, 1),
        ] {
            let a = ConvAttrs { act: Activation::Relu, ..conv_attrs(group, [stride; 2], [1, 1], [pads; 4], 0) };
            let (oh, ow) = ((x[2] + 2 * pads - k) / stride + 1, (x[3] + 2 * pads - k) / stride + 1);
            let (xs, ws, bs, ys) = (sh_of(&x), sh_of(&[m, x[1] / group, k, k]), sh_of(&[m]), sh_of(&[1, m, oh, ow]));
            let (xv, wv, bv) = (data(xs.numel().unwrap(), 1), data(ws.numel().unwrap(), 2), data(m, 3));
            let ops = [
                Operand { view: View::F32(&xv), shape: xs },
                Operand { view: View::F32(&wv), shape: ws },
                Operand { view: View::F32(&bv), shape: bs },
            ];
            assert_ne!(super::kernel_bits(&a, &xs, &ws, &ys), 0, "{x:?}");
            let (mut all, mut with, mut without) =
                (vec![0.0; ys.numel().unwrap()], vec![0.0; ys.numel().unwrap()], vec![0.0; ys.numel().unwrap()]);
            execute(&Op::Conv(a), &ops, &mut all, &ys).unwrap();
            execute_in::<CONV>(&Op::Conv(a), &ops, &mut with, &ys).unwrap();
            execute_in::<NONE>(&Op::Conv(a), &ops, &mut without, &ys).unwrap();
            assert_eq!(with.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), all.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            let close = without.iter().zip(&all).all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + b.abs()));
            assert!(close, "{x:?}: {without:?} vs {all:?}");
        }
    }

    #[derive(Debug, Clone)]
    struct Case {
        two_d: bool,
        g: usize,
        cg: usize,
        mg: usize,
        h: usize,
        w: usize,
        kh: usize,
        kw: usize,
        attrs: ConvAttrs,
        bias: bool,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            any::<bool>(),
            (1usize..=4, 1usize..=3, 1usize..=3),
            (1usize..=9, 1usize..=11, 1usize..=4, 1usize..=4),
            ([1u32..=3, 1..=3], [1u32..=3, 1..=3], [0u32..=3, 0..=3, 0..=3, 0..=3]),
            (any::<bool>(), 0u8..3),
        )
            .prop_map(|(two_d, (g, cg, mg), (h, w, kh, kw), (stride, dilation, pads), (bias, act))| {
                let act = match act {
                    0 => Activation::None,
                    1 => Activation::Relu,
                    _ => Activation::Clip { min: -0.5, max: 0.75 },
                };
                let (stride, dilation, pads, h, kh) = if two_d {
                    (stride, dilation, pads, h, kh)
                } else {
                    ([1, stride[1]], [1, dilation[1]], [0, pads[1], 0, pads[3]], 1, 1)
                };
                Case { two_d, g, cg, mg, h, w, kh, kw, attrs: ConvAttrs { group: g as u32, stride, dilation, pads, act }, bias }
            })
    }

    fn dims(c: &Case) -> (Vec<usize>, Vec<usize>) {
        let (cin, m) = (c.g * c.cg, c.g * c.mg);
        if c.two_d {
            (vec![1, cin, c.h, c.w], vec![m, c.cg, c.kh, c.kw])
        } else {
            (vec![1, cin, c.w], vec![m, c.cg, c.kw])
        }
    }

    fn check(c: &Case, seed: u64) {
        let (xd, wd) = dims(c);
        let x = data(xd.iter().product(), seed);
        let w = round_f16(&data(wd.iter().product(), seed + 1));
        let b = data(wd[0], seed + 2);
        let op = Op::Conv(c.attrs);
        let mut ins: Vec<(&[f32], &[usize])> = vec![(&x, &xd), (&w, &wd)];
        let bd = [wd[0]];
        if c.bias {
            ins.push((&b, &bd));
        }
        let Ok((got, y)) = run(&op, &ins) else {
            // Window larger than the padded input: rejected by `infer`, nothing to run.
            return;
        };
        let yd: Vec<usize> = (0..y.rank()).map(|i| y.dim(i)).collect();
        let close = |got: &[f32]| assert_conv_close(got, &x, &xd, &w, &wd, c.bias.then_some(&b[..]), &c.attrs, &yd, 1e-5);
        close(&got);

        // The portable paths (what Cortex-M runs), called directly whatever this CPU has.
        let g = super::Geom::new(&c.attrs, &sh(&xd), &sh(&wd), &y);
        let bv = c.bias.then_some(View::F32(&b));
        let mut port = vec![f32::NAN; got.len()];
        super::conv_fast::<{ super::super::ALL_OPS }>(&g, &x, View::F32(&w), bv, c.attrs.act, &mut port).unwrap();
        close(&port);
        if g.kh * g.kw <= super::PATCH {
            port.fill(f32::NAN);
            super::conv_patches(&g, &x, &w, bv, c.attrs.act, &mut port).unwrap();
            close(&port);
        }

        // Weights stored as F16 / unaligned F32 bytes, and a non-native input (naive path).
        let (w16, w32) = (f16le(&w), f32le(&w));
        let mk = |xv: View<'static>, wv: View<'static>| {
            let mut v = vec![Operand { view: xv, shape: sh(&xd) }, Operand { view: wv, shape: sh(&wd) }];
            if c.bias {
                v.push(Operand { view: View::F32(Vec::leak(b.clone())), shape: sh(&bd) });
            }
            v
        };
        let xs: &'static [f32] = Vec::leak(x.clone());
        let x32: &'static [u8] = Vec::leak(f32le(&x));
        for wv in [View::F16Le(Vec::leak(w16.clone())), View::F32Le(Vec::leak(w32.clone()))] {
            let (g2, _) = run_ops(&op, &mk(View::F32(xs), wv)).unwrap();
            close(&g2);
            let (g3, _) = run_ops(&op, &mk(View::F32Le(x32), wv)).unwrap();
            close(&g3);
        }
    }

    /// The outcome check of the register-blocked Conv kernels' tests: where the kernel ran the
    /// layer (`ran`) it claims it (`takes`) and `got` is `want()`, bit for bit when `exact`, else
    /// equal as floats (a sum's zero may differ in sign); where it declined, it claims not to and
    /// left `got` alone (NaN).
    fn check_blocked(ran: bool, takes: bool, got: &[f32], exact: bool, want: impl FnOnce() -> Vec<f32>) -> Result<(), TestCaseError> {
        prop_assert_eq!(ran, takes);
        if !ran {
            prop_assert!(got.iter().all(|v| v.is_nan()));
            return Ok(());
        }
        let want = want();
        if exact {
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(got), bits(&want));
        } else {
            prop_assert!(got.len() == want.len() && got.iter().zip(&want).all(|(a, b)| a == b), "{:?} vs {:?}", got, want);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(400)))]
        /// `row_range` is exactly the set of output rows `in_row` accepts, for any geometry.
        #[test]
        fn row_range_matches_in_row(h in 1usize..40, oh in 1usize..40, sh in 1usize..4, dh in 1usize..4, ky in 0usize..6, pt in 0usize..6) {
            let g = super::Geom { c: 1, h, w: 1, m: 1, cg: 1, mg: 1, kh: ky + 1, kw: 1, oh, ow: 1, sh, sw: 1, dh, dw: 1, pt, pl: 0 };
            let (lo, hi) = g.row_range(ky * dh);
            for oy in 0..oh {
                prop_assert_eq!(g.in_row(oy, ky).is_some(), (lo..hi).contains(&oy), "oy {}", oy);
            }
        }
        /// `add_row3` gives the bits of `add_tap` for each of its three taps in turn, for any
        /// row geometry (output columns where only some taps read inside the input included).
        #[test]
        fn row_of_three_taps_is_three_add_taps(w in 1usize..20, h in 1usize..4, ky in 0usize..3, sw in 1usize..4, dw in 1usize..4,
                                               pl in 0usize..4, pr in 0usize..4, oh_cut in 0usize..2, seed in 0u64..1000) {
            let span = 2 * dw + 1;
            prop_assume!(w + pl + pr >= span);
            let ow = (w + pl + pr - span) / sw + 1;
            let oh = (h + 2).saturating_sub(oh_cut).max(1);
            let g = super::Geom { c: 1, h, w, m: 1, cg: 1, mg: 1, kh: 3, kw: 3, oh, ow, sh: 1, sw, dh: 1, dw, pt: 1, pl };
            let x = data(h * w, seed);
            let taps = [data(3, seed + 1)[0], data(3, seed + 2)[1], data(3, seed + 3)[2]];
            let start = data(oh * ow, seed + 4);
            let mut want = start.clone();
            for (kx, &t) in taps.iter().enumerate() {
                super::add_tap(&g, &x, t, ky, kx, &mut want).unwrap();
            }
            let mut got = start;
            super::add_row3(&g, &x, taps, ky, &mut got).unwrap();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&got), bits(&want));
        }

        /// `add_3x3` gives the sums of `add_tap` for each of its nine taps in turn (equal as
        /// floats: its padding taps add `w · 0`, which can only flip the sign of an exact zero),
        /// for any plane it takes, stride and padding (outputs with some taps outside the input,
        /// rows where none or all are inside, outputs cut short at the bottom and right), and
        /// leaves the outputs alone when it does not take the layer.
        #[test]
        fn three_by_three_is_nine_add_taps(w in 1usize..10, h in 1usize..12, sh in 1usize..3, sw in 1usize..4, pads in [0usize..3, 0..3, 0..3, 0..3],
                                           cut in [0usize..2, 0..2], seed in 0u64..1000) {
            let [pt, pl, pb, pr] = pads;
            prop_assume!(w + pl + pr >= 3 && h + pt + pb >= 3);
            let ow = ((w + pl + pr - 3) / sw + 1).saturating_sub(cut[1]).max(1);
            let oh = ((h + pt + pb - 3) / sh + 1).saturating_sub(cut[0]).max(1);
            let g = super::Geom { c: 1, h, w, m: 1, cg: 1, mg: 1, kh: 3, kw: 3, oh, ow, sh, sw, dh: 1, dw: 1, pt, pl };
            let x = data(h * w, seed);
            let taps: [f32; 9] = data(9, seed + 1).try_into().unwrap();
            let start = data(oh * ow, seed + 4);
            let mut want = start.clone();
            for (t, &v) in taps.iter().enumerate() {
                super::add_tap(&g, &x, v, t / 3, t % 3, &mut want).unwrap();
            }
            let mut got = start.clone();
            match super::add_3x3(&g, &x, taps, &mut got) {
                Ok(()) => {
                    prop_assert!(super::takes_3x3(&g));
                    prop_assert_eq!(got, want);
                }
                Err(_) => {
                    prop_assert!(!super::takes_3x3(&g));
                    prop_assert_eq!(got, start);
                }
            }
        }

        /// `conv_3x3_rows` gives `add_3x3`'s sums bit for bit (a plane started at the bias, each
        /// input channel's nine taps in turn, the activation after), for every row width it
        /// takes, depthwise and grouped layers, with and without a bias, weights stored or
        /// native, infinite weights included; and declines every layer it does not take,
        /// leaving the outputs alone.
        #[test]
        fn rows_3x3_are_add_3x3(h in 1usize..12, w in 1usize..10, cg in 1usize..4, mg in 1usize..4, groups in 1usize..3, stride in 1usize..3,
                                pl in 0usize..3, act in 0u8..3, bias in any::<bool>(), stored in any::<bool>(), inf in any::<bool>(), seed in 0u64..1000) {
            let (c, m) = (cg * groups, mg * groups);
            let pr = if pl == 1 { 1 } else { 2 - pl.min(2) };
            prop_assume!(w + pl + pr >= 3 && h + 2 >= 3);
            let (oh, ow) = ((h - 1) / stride + 1, (w + pl + pr - 3) / stride + 1);
            let g = super::Geom { c, h, w, m, cg, mg, kh: 3, kw: 3, oh, ow, sh: stride, sw: stride, dh: 1, dw: 1, pt: 1, pl };
            let x = data(c * h * w, seed);
            let mut wv = data(m * cg * 9, seed + 1);
            if inf {
                let at = seed as usize % wv.len();
                wv[at] = f32::INFINITY;
            }
            let b = data(m, seed + 2);
            let act = ACTS[act as usize];
            let w16 = f32le(&wv);
            let wview = if stored { View::F32Le(&w16) } else { View::F32(&wv) };
            let bview = bias.then_some(View::F32(&b));
            let mut got = vec![f32::NAN; m * oh * ow];
            let ran = super::conv_3x3_rows(&g, &x, wview, bview, act, &mut got).is_ok();
            check_blocked(ran, super::takes_3x3_rows(&g) && super::takes_3x3(&g), &got, true, || {
                let mut want = vec![0.0f32; m * oh * ow];
                for (mo, ob) in want.chunks_exact_mut(oh * ow).enumerate() {
                    ob.fill(if bias { b[mo] } else { 0.0 });
                    for icl in 0..cg {
                        let ic = mo / mg * cg + icl;
                        let taps: [f32; 9] = wv[(mo * cg + icl) * 9..][..9].try_into().unwrap();
                        super::add_3x3(&g, &x[ic * h * w..][..h * w], taps, ob).unwrap();
                    }
                    act.apply_all(ob);
                }
                want
            })?;
        }

        /// `conv_1x1_blocks` gives the plane-by-plane loop's sums bit for bit (the bias, four
        /// input channels a pass through `add_planes4`, the last ones through `add_tap`, the
        /// activation after), for groups, filter and pixel counts that are not multiples of
        /// the block (overlapping last blocks), with and without a bias and each activation;
        /// and declines every layer it does not take, leaving the outputs alone.
        #[test]
        fn one_by_one_blocks_are_plane_passes(groups in 1usize..3, cg in 1usize..11, mg in 1usize..11, h in 1usize..6, w in 1usize..9,
                                              pad in 0usize..2, act in 0u8..3, bias in any::<bool>(), seed in 0u64..1000) {
            let (c, m) = (groups * cg, groups * mg);
            let (oh, ow) = (h + 2 * pad, w + 2 * pad);
            let g = super::Geom { c, h, w, m, cg, mg, kh: 1, kw: 1, oh, ow, sh: 1, sw: 1, dh: 1, dw: 1, pt: pad, pl: pad };
            let x = data(c * h * w, seed);
            let wv = data(m * cg, seed + 1);
            let b = data(m, seed + 2);
            let act = ACTS[act as usize];
            let mut got = vec![f32::NAN; m * oh * ow];
            let ran = super::conv_1x1_blocks(&g, &x, &wv, bias.then_some(View::F32(&b)), act, &mut got).is_ok();
            check_blocked(ran, super::takes_1x1_blocks(&g), &got, true, || {
                let plane = h * w;
                let mut want = vec![0.0f32; m * plane];
                for (mo, ob) in want.chunks_exact_mut(plane).enumerate() {
                    ob.fill(if bias { b[mo] } else { 0.0 });
                    let xg = &x[mo / mg * cg * plane..][..cg * plane];
                    let mut ic = 0;
                    while ic + 4 <= cg {
                        let ww = [wv[mo * cg + ic], wv[mo * cg + ic + 1], wv[mo * cg + ic + 2], wv[mo * cg + ic + 3]];
                        super::add_planes4(&xg[ic * plane..][..4 * plane], plane, ww, ob);
                        ic += 4;
                    }
                    for ic in ic..cg {
                        super::add_tap(&g, &xg[ic * plane..][..plane], wv[mo * cg + ic], 0, 0, ob).unwrap();
                    }
                    act.apply_all(ob);
                }
                want
            })?;
        }

        /// `conv_row_blocks` gives `add_tap`'s sums tap by tap (equal as floats: its padding taps
        /// add `w · 0`), for one-channel groups of one or several filters, kernel shapes, strides
        /// and paddings on every side, rows whose last block overlaps the one before, with and
        /// without a bias and each activation; and declines every layer it does not take,
        /// leaving the outputs alone.
        #[test]
        fn row_blocks_are_add_taps(c in 1usize..4, mg in 1usize..4, h in 1usize..9, w in 1usize..70, kh in 1usize..7, kw in 2usize..6,
                                   sh in 1usize..3, sw in 1usize..3, pads in [0usize..3, 0..3, 0..3, 0..3], act in 0u8..3,
                                   bias in any::<bool>(), seed in 0u64..1000) {
            let [pt, pl, pb, pr] = pads;
            prop_assume!(h + pt + pb >= kh && w + pl + pr >= kw);
            let (oh, ow) = ((h + pt + pb - kh) / sh + 1, (w + pl + pr - kw) / sw + 1);
            let m = c * mg;
            let g = super::Geom { c, h, w, m, cg: 1, mg, kh, kw, oh, ow, sh, sw, dh: 1, dw: 1, pt, pl };
            let x = data(c * h * w, seed);
            let wv = data(m * kh * kw, seed + 1);
            let b = data(m, seed + 2);
            let act = ACTS[act as usize];
            let mut got = vec![f32::NAN; m * oh * ow];
            let ran = super::conv_row_blocks(&g, &x, &wv, bias.then_some(View::F32(&b)), act, &mut got).is_ok();
            check_blocked(ran, super::takes_row_blocks(&g), &got, false, || {
                let mut want = vec![0.0f32; m * oh * ow];
                for (mo, ob) in want.chunks_exact_mut(oh * ow).enumerate() {
                    ob.fill(if bias { b[mo] } else { 0.0 });
                    let xp = &x[mo / mg * h * w..][..h * w];
                    for t in 0..kh * kw {
                        super::add_tap(&g, xp, wv[mo * kh * kw + t], t / kw, t % kw, ob).unwrap();
                    }
                    act.apply_all(ob);
                }
                want
            })?;
        }

        /// `gather_patch` writes each pixel's patch in `[c, ky, kx]` order, 0 for padding, for
        /// any geometry (1 × 1 kernels' strided copy, whole kernel rows, borders, dilation).
        #[test]
        fn patches_are_the_windows(c in 1usize..4, h in 1usize..7, w in 1usize..7, kh in 1usize..4, kw in 1usize..4, s in 1usize..3, d in 1usize..3,
                                   pads in [0usize..3, 0..3, 0..3, 0..3], seed in 0u64..1000) {
            let [pt, pl, pb, pr] = pads;
            let (sh, sw) = ((kh - 1) * d + 1, (kw - 1) * d + 1);
            prop_assume!(h + pt + pb >= sh && w + pl + pr >= sw);
            let (oh, ow) = ((h + pt + pb - sh) / s + 1, (w + pl + pr - sw) / s + 1);
            let g = super::Geom { c, h, w, m: 1, cg: c, mg: 1, kh, kw, oh, ow, sh: s, sw: s, dh: d, dw: d, pt, pl };
            let x = data(c * h * w, seed);
            for (oy, ox) in (0..oh).flat_map(|oy| (0..ow).map(move |ox| (oy, ox))) {
                let mut got = vec![f32::NAN; c * kh * kw];
                super::gather_patch(&g, &x, oy, ox, &mut got);
                let mut want = Vec::new();
                for ch in 0..c {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let (iy, ix) = ((oy * s + ky * d) as isize - pt as isize, (ox * s + kx * d) as isize - pl as isize);
                            let inside = (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix);
                            want.push(if inside { x[ch * h * w + iy as usize * w + ix as usize] } else { 0.0 });
                        }
                    }
                }
                prop_assert_eq!(got, want);
            }
        }

        /// `add_planes4` gives the bits of `add_tap` on its four channels in turn (1 × 1 layer,
        /// whole planes).
        #[test]
        fn four_planes_are_four_add_taps(h in 1usize..6, w in 1usize..20, seed in 0u64..1000) {
            let g = super::Geom { c: 4, h, w, m: 1, cg: 4, mg: 1, kh: 1, kw: 1, oh: h, ow: w, sh: 1, sw: 1, dh: 1, dw: 1, pt: 0, pl: 0 };
            let plane = h * w;
            let x = data(4 * plane, seed);
            let taps = data(4, seed + 1);
            let start = data(plane, seed + 2);
            let mut want = start.clone();
            for (c, &t) in taps.iter().enumerate() {
                super::add_tap(&g, &x[c * plane..(c + 1) * plane], t, 0, 0, &mut want).unwrap();
            }
            let mut got = start;
            super::add_planes4(&x, plane, [taps[0], taps[1], taps[2], taps[3]], &mut got);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&got), bits(&want));
        }

        #[test]
        fn matches_naive(c in case(), seed in 0u64..1000) {
            check(&c, seed);
        }

        #[test]
        fn depthwise_matches_naive(c in case(), seed in 0u64..1000) {
            let g = c.g * 2;
            check(&Case { cg: 1, mg: 1, g, attrs: ConvAttrs { group: g as u32, ..c.attrs }, ..c.clone() }, seed);
        }

        /// Strided 1 × 1 Convs, which [`super::conv_simd`] runs on a copy of the pixels they
        /// read: bit for bit the tiled product on the input itself on every SIMD tier, and
        /// close to the f64 definition. Any stride, padding (pixels reading only padding),
        /// groups, plane sizes on both sides of 16-pixel tiles.
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        #[test]
        fn strided_pointwise_equals_the_tiled_product(g in 1usize..3, cg in 1usize..9, mg in 1usize..14, h in 1usize..20, wd in 1usize..40,
                                                       sh in 1usize..4, sw in 1usize..4, pads in [0usize..2, 0..2, 0..2, 0..2],
                                                       act in 0u8..3, seed in 0u64..1000) {
            prop_assume!((sh, sw) != (1, 1));
            let (xd, wdims) = ([1, g * cg, h, wd], [g * mg, cg, 1, 1]);
            let attrs = conv_attrs(g, [sh, sw], [1, 1], pads, act);
            strided_pointwise_check(attrs, xd, wdims, seed);
        }
    }

    /// Strided 1 × 1 Convs without padding (ResNet shortcuts: the input's planes subsampled a
    /// whole plane per call): bit for bit the tiled product on every SIMD tier, close to the f64
    /// definition; output rows of one block, a ragged tail and both, odd and even input sides.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn unpadded_strided_pointwise_equals_the_tiled_product() {
        for (c, h, wd, m, s) in [(16, 32, 32, 32, 2), (3, 9, 41, 5, 2), (4, 7, 36, 3, 2), (2, 5, 70, 17, 2), (3, 8, 9, 4, 3)] {
            let attrs = ConvAttrs { group: 1, stride: [s as u32, s as u32], dilation: [1, 1], pads: [0; 4], act: Activation::Relu };
            strided_pointwise_check(attrs, [1, c, h, wd], [m, c, 1, 1], 7);
        }
    }

    /// A 1 × 1 Conv of input `xd` and filters `wdims` (one output channel bias each) through
    /// [`super::conv_simd`] on every SIMD tier: bit for bit the tiled product on the input
    /// itself, and close to the f64 definition.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn strided_pointwise_check(attrs: ConvAttrs, xd: [usize; 4], wdims: [usize; 4], seed: u64) {
        let y = Op::Conv(attrs).infer(&[sh_of(&xd), sh_of(&wdims), sh_of(&wdims[..1])]).unwrap();
        let yd: Vec<usize> = (0..y.rank()).map(|i| y.dim(i)).collect();
        let geom = super::Geom::new(&attrs, &sh_of(&xd), &sh_of(&wdims), &y);
        let (x, w, b) = (data(xd.iter().product(), seed), data(wdims.iter().product(), seed + 1), data(wdims[0], seed + 2));
        let len: usize = yd.iter().product();
        let run = |f: &dyn Fn(&mut [f32])| {
            let mut got = vec![f32::NAN; len];
            f(&mut got);
            got
        };
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        #[cfg(target_arch = "x86_64")]
        let tiers = super::super::x86::Fma::detect().map(|f| [f, f.avx2_only()]).into_iter().flatten();
        #[cfg(target_arch = "aarch64")]
        let tiers = [super::super::neon::Neon];
        for mk in tiers {
            let bv = Some(View::F32(&b));
            let got = run(&|o| mk.run(|| super::conv_simd(mk, &geom, &x, &w, bv, attrs.act, o)).unwrap());
            let tiled = run(&|o| mk.run(|| super::super::gemm::conv(mk, &geom, &x, &w, bv, attrs.act, o)).unwrap());
            assert_eq!(bits(&got), bits(&tiled), "{xd:?} -> {wdims:?}");
            assert_conv_close(&got, &x, &xd, &w, &wdims, Some(&b), &attrs, &yd, 1e-5);
        }
    }

    /// The direct Conv ([`gemm::Micro::conv_direct`], the AVX2 tier's, and the AVX-512 tier's on
    /// pointwise layers): where it takes a layer
    /// (stride 1, group 1, no dilation, more than one tap or pointwise), bit for bit the tiled
    /// product, with and without a bias, and close to the f64 definition.
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    fn direct_conv_case(
        c: usize,
        m: usize,
        h: usize,
        wd: usize,
        kh: usize,
        kw: usize,
        pads: [usize; 4],
        act: u8,
        with_bias: bool,
        seed: u64,
    ) -> Result<(), TestCaseError> {
        prop_assume!(h + pads[0] + pads[2] >= kh && wd + pads[1] + pads[3] >= kw);
        let (xd, wdims) = ([1, c, h, wd], [m, c, kh, kw]);
        let attrs = conv_attrs(1, [1, 1], [1, 1], pads, act);
        let y = Op::Conv(attrs).infer(&[sh_of(&xd), sh_of(&wdims), sh_of(&wdims[..1])]).unwrap();
        let yd: Vec<usize> = (0..y.rank()).map(|i| y.dim(i)).collect();
        let geom = super::Geom::new(&attrs, &sh_of(&xd), &sh_of(&wdims), &y);
        let (x, w, b) = (data(xd.iter().product(), seed), data(wdims.iter().product(), seed + 1), data(m, seed + 2));
        let run = |f: &dyn Fn(&mut [f32]) -> bool| run_bits(yd.iter().product(), f);
        let Some(f) = super::super::x86::Fma::detect() else { return Ok(()) };
        let mk = f.avx2_only();
        let bs: &[f32] = if with_bias { &b } else { &[] };
        let got = run(&|o| mk.run(|| mk.conv_direct(&geom, None, &x, &w, bs, attrs.act, o)));
        let pointwise = kh * kw == 1 && pads == [0; 4];
        let takes = (kh * kw > 1 && (geom.ow >= 6 || (geom.ow == wd && geom.ow < 16)) && kw <= 8) || pointwise;
        prop_assert_eq!(got.is_some(), takes);
        let Some(got) = got else { return Ok(()) };
        let bv = with_bias.then_some(View::F32(&b));
        let tiled = run(&|o| mk.run(|| super::super::gemm::conv(mk, &geom, &x, &w, bv, attrs.act, o)).is_ok()).unwrap();
        prop_assert_eq!(&got, &tiled);
        let vals: Vec<f32> = got.iter().map(|&v| f32::from_bits(v)).collect();
        assert_conv_close(&vals, &x, &xd, &w, &wdims, with_bias.then_some(&b[..]), &attrs, &yd, 1e-5);
        // The AVX-512 tier takes pointwise layers only (the same outputs), its tiled product
        // the others.
        if f.has_avx512() {
            let wide = run(&|o| f.run(|| f.conv_direct(&geom, None, &x, &w, bs, attrs.act, o)));
            prop_assert_eq!(wide.as_ref(), pointwise.then_some(&got));
        }
        Ok(())
    }

    /// [`direct_conv_case`] where a flattened plane's last tile holds at most 8 positions (20 =
    /// 16 + 4 pointwise, 36 = 16 + 16 + 4 with 3 × 3 taps): its empty half is never addressed
    /// (Miri found `o + 8` past the output's end).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn direct_conv_short_last_tiles() {
        direct_conv_case(3, 7, 5, 4, 1, 1, [0; 4], 1, true, 3).unwrap();
        direct_conv_case(2, 5, 6, 6, 3, 3, [1; 4], 0, false, 4).unwrap();
    }

    /// [`direct_conv_case`] on hello_edge_cnn's first layer (1 → 28 filters, 10 × 4 taps, no
    /// padding on a 49 × 10 input: rows of 7 outputs, every tile one lane short).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn direct_conv_rows_of_seven() {
        direct_conv_case(1, 28, 49, 10, 10, 4, [0; 4], 1, true, 5).unwrap();
    }

    /// [`direct_conv_case`] on rows of 6 outputs (3 × 3 taps, no padding, 8 columns), small
    /// enough for CI's Miri step: the lanes past a row's end are loaded only inside the planes.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn direct_conv_rows_of_six() {
        direct_conv_case(3, 13, 9, 8, 3, 3, [0; 4], 2, false, 6).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(200)))]
        /// [`direct_conv_case`] on rows of 6–7, 8, 9–15 and 16+ outputs, filter counts across the 6-
        /// and 12-row register tiles, any padding.
        #[cfg(target_arch = "x86_64")]
        #[test]
        fn direct_conv_equals_the_tiled_product(c in 1usize..20, m in 1usize..30, h in 1usize..12, wd in 6usize..40, kh in 1usize..4, kw in 1usize..6,
                                               pads in [0usize..3, 0..3, 0..3, 0..3], act in 0u8..3, with_bias in any::<bool>(), pw in any::<bool>(),
                                               seed in 0u64..1000) {
            // Half the cases pointwise (1 × 1, no padding): plain products at any width.
            let (kh, kw, pads) = if pw { (1, 1, [0; 4]) } else { (kh, kw, pads) };
            direct_conv_case(c, m, h, wd, kh, kw, pads, act, with_bias, seed)?;
        }
    }

    /// The case CI drew on 2026-12-05: 285 terms an output, 1.03e-5 from the f64 sum near 0.4,
    /// which a bound relative to the result (instead of to Σ|w·x| + |b|) rejected.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn direct_conv_rounding_regression() {
        direct_conv_case(19, 17, 11, 11, 3, 5, [0, 0, 0, 1], 0, true, 809).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(200)))]
        /// The direct Conv on stride phases (stride 2, "same" or symmetric padding): bit for bit
        /// the tiled product on the same phases, and the whole layer through
        /// [`super::conv_simd`] bit for bit the tiled product on the planes, close to the f64
        /// definition. Rows narrower and wider than 16, filter counts across the register
        /// tiles, kernels 1 to 5 wide.
        #[cfg(target_arch = "x86_64")]
        #[test]
        fn direct_strided_conv_equals_the_tiled_product(c in 1usize..12, m in 1usize..26, h in 2usize..24, wd in 2usize..44, kh in 1usize..4, kw in 1usize..6,
                                                       split in 0usize..3, act in 0u8..3, with_bias in any::<bool>(), seed in 0u64..1000) {
            // "Same" padding: ⌈w / 2⌉ outputs per axis.
            let pad = |n: usize, k: usize| ((n.div_ceil(2) - 1) * 2 + k).saturating_sub(n);
            let (ph, pw) = (pad(h, kh), pad(wd, kw));
            let (pt, pl) = (ph * split / 2, pw * split / 2);
            let (xd, wdims) = ([1, c, h, wd], [m, c, kh, kw]);
            let attrs = ConvAttrs {
                group: 1,
                stride: [2, 2],
                dilation: [1, 1],
                pads: [pt as u32, pl as u32, (ph - pt) as u32, (pw - pl) as u32],
                act: ACTS[act as usize],
            };
            let y = Op::Conv(attrs).infer(&[sh_of(&xd), sh_of(&wdims), sh_of(&wdims[..1])]).unwrap();
            let yd: Vec<usize> = (0..y.rank()).map(|i| y.dim(i)).collect();
            let geom = super::Geom::new(&attrs, &sh_of(&xd), &sh_of(&wdims), &y);
            let q = super::gemm::Phases::of(&geom);
            prop_assume!(q.is_some());
            let q = q.unwrap();
            let (x, w, b) = (data(xd.iter().product(), seed), data(wdims.iter().product(), seed + 1), data(m, seed + 2));
            let run = |f: &dyn Fn(&mut [f32]) -> bool| run_bits(yd.iter().product(), f);
            let Some(f) = super::super::x86::Fma::detect() else { return Ok(()) };
            let mk = f.avx2_only();
            let mut ph_buf = vec![f32::NAN; c * q.channel(&geom)];
            mk.run(|| super::gemm::split_phases(mk, &geom, q, &x, &mut ph_buf));
            let bs: &[f32] = if with_bias { &b } else { &[] };
            let bv = with_bias.then_some(View::F32(&b));
            let got = run(&|o| mk.run(|| mk.conv_direct(&geom, Some((q.hq, q.wq)), &ph_buf, &w, bs, attrs.act, o)));
            let takes = kh * kw > 1 && kw <= 8;
            prop_assert_eq!(got.is_some(), takes);
            let tiled = run(&|o| mk.run(|| super::super::gemm::conv_in(mk, &geom, Some(q), &ph_buf, &w, bv, attrs.act, o)).is_ok()).unwrap();
            if let Some(got) = got {
                prop_assert_eq!(&got, &tiled);
            }
            let layer = run(&|o| mk.run(|| super::conv_simd(mk, &geom, &x, &w, bv, attrs.act, o)).is_ok()).unwrap();
            let planes = run(&|o| mk.run(|| super::super::gemm::conv(mk, &geom, &x, &w, bv, attrs.act, o)).is_ok()).unwrap();
            prop_assert_eq!(&layer, &planes);
            assert_conv_close(&layer.iter().map(|&v| f32::from_bits(v)).collect::<Vec<_>>(), &x, &xd, &w, &wdims, with_bias.then_some(&b[..]), &attrs, &yd, 1e-5);
        }
    }

    #[test]
    fn known_2d_example() {
        // ONNX Conv docs: 5x5 input 0..24, 3x3 ones kernel, pads 1.
        let x: Vec<f32> = (0..25).map(|v| v as f32).collect();
        let w = vec![1.0f32; 9];
        let a = ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [1, 1, 1, 1], act: Activation::None };
        let (y, s) = run(&Op::Conv(a), &[(&x, &[1, 1, 5, 5]), (&w, &[1, 1, 3, 3])]).unwrap();
        assert_eq!(s, sh(&[1, 1, 5, 5]));
        let want = [
            12., 21., 27., 33., 24., 33., 54., 63., 72., 51., 63., 99., 108., 117., 81., 93., 144., 153., 162., 111., 72., 111., 117.,
            123., 84.,
        ];
        assert_eq!(y, want);
        // Strided, no padding: [[54, 72], [144, 162]].
        let a2 = ConvAttrs { stride: [2, 2], pads: [0; 4], ..a };
        let (y2, _) = run(&Op::Conv(a2), &[(&x, &[1, 1, 5, 5]), (&w, &[1, 1, 3, 3])]).unwrap();
        assert_eq!(y2, [54., 72., 144., 162.]);
    }

    #[test]
    fn large_1d_with_many_channels() {
        let c = Case {
            two_d: false,
            g: 1,
            cg: 40,
            mg: 16,
            h: 1,
            w: 98,
            kh: 1,
            kw: 5,
            attrs: ConvAttrs { group: 1, stride: [1, 2], dilation: [1, 1], pads: [0, 2, 0, 2], act: Activation::Relu },
            bias: true,
        };
        check(&c, 7);
    }

    #[test]
    fn rejects_inconsistent_operands() {
        let a = ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [0; 4], act: Activation::None };
        let x = [0.0f32; 16];
        let w = [0.0f32; 4];
        let ops =
            [Operand { view: View::F32(&x[..15]), shape: sh(&[1, 1, 4, 4]) }, Operand { view: View::F32(&w), shape: sh(&[1, 1, 2, 2]) }];
        let mut out = [0.0f32; 9];
        assert_eq!(super::super::execute(&Op::Conv(a), &ops, &mut out, &sh(&[1, 1, 3, 3])), Err(OpError::ShapeMismatch));
        let ops = [Operand { view: View::F32(&x), ..ops[0] }, ops[1]];
        assert_eq!(super::super::execute(&Op::Conv(a), &ops, &mut out[..8], &sh(&[1, 1, 3, 3])), Err(OpError::ShapeMismatch));
        assert_eq!(super::super::execute(&Op::Conv(a), &ops, &mut out[..8], &sh(&[1, 1, 2, 4])), Err(OpError::ShapeMismatch));
        assert_eq!(super::super::execute(&Op::Conv(a), &ops[..1], &mut out, &sh(&[1, 1, 3, 3])), Err(OpError::BadArity));
        let g0 = ConvAttrs { group: 0, ..a };
        assert_eq!(super::super::execute(&Op::Conv(g0), &ops, &mut out, &sh(&[1, 1, 3, 3])), Err(OpError::BadAttribute));
        assert_eq!(super::super::execute(&Op::Conv(a), &ops, &mut out, &sh(&[1, 1, 3, 3])), Ok(()));
    }

    #[test]
    fn batched_input_equals_per_sample_runs() {
        let a = ConvAttrs { group: 2, stride: [2, 1], dilation: [1, 2], pads: [1, 2, 0, 1], act: Activation::Relu };
        let (xd, wd) = ([3usize, 4, 6, 7], [6usize, 2, 3, 2]);
        let x: Vec<f32> = (0..3 * 4 * 6 * 7).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        let w: Vec<f32> = (0..6 * 2 * 3 * 2).map(|i| ((i * 13 % 29) as f32 - 14.0) / 10.0).collect();
        let op = Op::Conv(a);
        let shape = |d: &[usize]| crate::shape::Shape::new(d).unwrap();
        let y = op.infer(&[shape(&xd), shape(&wd)]).unwrap();
        assert_eq!(y.dim(0), 3);
        let per = y.prod(1, 4);
        let mut out = vec![0.0; y.numel().unwrap()];
        let ins = [Operand { view: View::F32(&x), shape: shape(&xd) }, Operand { view: View::F32(&w), shape: shape(&wd) }];
        super::super::execute(&op, &ins, &mut out, &y).unwrap();
        let y1 = op.infer(&[shape(&[1, 4, 6, 7]), shape(&wd)]).unwrap();
        for n in 0..3 {
            let xn = &x[n * 168..(n + 1) * 168];
            let mut o1 = vec![0.0; per];
            let ins1 = [Operand { view: View::F32(xn), shape: shape(&[1, 4, 6, 7]) }, ins[1]];
            super::super::execute(&op, &ins1, &mut o1, &y1).unwrap();
            assert_eq!(&out[n * per..(n + 1) * per], &o1[..]);
        }
    }
}
