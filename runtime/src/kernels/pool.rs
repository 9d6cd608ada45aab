//! MaxPool / AveragePool (1-D / 2-D, padded, dilated, ceil_mode) and the global pools.
//!
//! Window positions are taken in padded coordinates `p = o * stride + k * dilation`; position
//! `p` reads input `p - pad_begin` when that lies inside the input. MaxPool ignores padding.
//! AveragePool divides by the number of in-input positions, or with `count_include_pad` by the
//! number of positions inside the *padded* input (positions past `pad_end` that only exist
//! because of `ceil_mode` are never counted, as in onnxruntime and PyTorch). A window with no
//! position to count yields NaN (average) or -inf (max).

use super::{fmax, sub_mut, Operand};
use crate::op::{OpError, PoolAttrs};
use crate::shape::Shape;

/// One spatial axis of a pooling window.
#[derive(Clone, Copy)]
struct Axis {
    len: usize,
    k: usize,
    s: usize,
    d: usize,
    pb: usize,
    pe: usize,
}

impl Axis {
    /// Input index of window position `k` of output `o`, if inside the input.
    #[inline]
    fn input(&self, o: usize, k: usize) -> Option<usize> {
        let p = o * self.s + k * self.d;
        if p >= self.pb && p - self.pb < self.len {
            Some(p - self.pb)
        } else {
            None
        }
    }

    /// Input range `lo..hi` read by output `o`'s window when undilated (`d == 1`): the
    /// positions of [`Axis::input`] that lie inside the input (empty when none do).
    #[inline]
    fn inside(&self, o: usize) -> (usize, usize) {
        let start = o * self.s;
        let lo = start.max(self.pb) - self.pb;
        let hi = (start + self.k).min(self.pb + self.len).saturating_sub(self.pb);
        (lo.min(hi), hi)
    }

    /// Outputs `lo .. hi` whose window position `k` lies inside the input.
    fn outputs_inside(&self, k: usize) -> (usize, usize) {
        let off = k * self.d;
        let lo = if off >= self.pb { 0 } else { (self.pb - off).div_ceil(self.s) };
        let hi = if self.pb + self.len > off { (self.pb + self.len - off).div_ceil(self.s) } else { 0 };
        (lo, hi)
    }

    /// Number of window positions of output `o` counted by the average.
    fn count(&self, o: usize, include_pad: bool) -> usize {
        (0..self.k)
            .filter(|&k| {
                let p = o * self.s + k * self.d;
                if include_pad {
                    p < self.pb + self.len + self.pe
                } else {
                    self.input(o, k).is_some()
                }
            })
            .count()
    }
}

/// MaxPool (`avg == false`) or AveragePool; shapes validated by `execute`.
pub(super) fn pool(p: &PoolAttrs, avg: bool, x: &Operand<'_>, out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let s = &x.shape;
    let two_d = s.rank() == 4;
    let last = s.rank() - 1;
    let ay = if two_d {
        Axis {
            len: s.dim(2),
            k: p.kernel[0] as usize,
            s: p.stride[0] as usize,
            d: p.dilation[0] as usize,
            pb: p.pads[0] as usize,
            pe: p.pads[2] as usize,
        }
    } else {
        Axis { len: 1, k: 1, s: 1, d: 1, pb: 0, pe: 0 }
    };
    let ax = Axis {
        len: s.dim(last),
        k: p.kernel[1] as usize,
        s: p.stride[1] as usize,
        d: p.dilation[1] as usize,
        pb: p.pads[1] as usize,
        pe: p.pads[3] as usize,
    };
    let (oh, ow) = if two_d { (y.dim(2), y.dim(3)) } else { (1, y.dim(2)) };
    let planes = s.dim(0) * s.dim(1);
    let in_plane = ay.len * ax.len;
    // Per window column (the first MAX_K), the outputs it reads inside the input.
    let mut cols = [(0, 0); MAX_K];
    for (kx, c) in cols.iter_mut().enumerate().take(ax.k) {
        *c = ax.outputs_inside(kx);
    }
    // One window over each whole plane (the pool before a classifier): one slice per plane,
    // the same sums and division as below.
    let whole = |a: &Axis| a.k == a.len && a.d == 1 && a.pb == 0 && a.pe == 0;
    if let (1, 1, true, true, Some(xs)) = (oh, ow, whole(&ay), whole(&ax), x.view.as_f32()) {
        for (pl, o) in sub_mut(out, 0, planes)?.iter_mut().enumerate() {
            let seg = xs.get(pl * in_plane..(pl + 1) * in_plane).ok_or(OpError::ShapeMismatch)?;
            *o = if avg { lanes(seg, 0.0, |a, v| a + v) / in_plane as f32 } else { lanes(seg, f32::NEG_INFINITY, fmax) };
        }
        return Ok(());
    }
    // MaxPool with windows that tile the rows (2 × 2 or 3 × 3 at their own stride, MNIST's):
    // AVX-512 or AVX2, the same values bit for bit.
    #[cfg(target_arch = "x86_64")]
    if let (false, true, Some(xs), true) = (avg, two_d, x.view.as_f32(), super::gemm::simd().is_some()) {
        let tiles = |a: &Axis| a.k == a.s && a.d == 1 && a.pb == 0;
        if tiles(&ay)
            && tiles(&ax)
            && ay.k == ax.k
            && super::x86::max_pool_tiled(xs, planes, ay.len, ax.len, ax.k, oh, ow, sub_mut(out, 0, planes * oh * ow)?)
        {
            return Ok(());
        }
    }
    for pl in 0..planes {
        let ob = sub_mut(out, pl * oh * ow, oh * ow)?;
        let base = pl * in_plane;
        for oy in 0..oh {
            let orow = &mut ob[oy * ow..(oy + 1) * ow];
            // Passes across the row (one per window position) or one window at a time
            // (one slice per window row): whichever makes fewer, longer runs (8: about what
            // starting a run costs, in elements).
            let by_row = ax.k * (8 + ow) <= ow * (8 + ax.k) || ax.d != 1;
            match x.view.as_f32() {
                Some(xs) if by_row => pool_row(xs, base, &ay, &ax, &cols, oy, avg, orow)?,
                Some(xs) => {
                    for (ox, o) in orow.iter_mut().enumerate() {
                        let mut acc = if avg { 0.0 } else { f32::NEG_INFINITY };
                        let (lo, hi) = ax.inside(ox);
                        // A window of whole rows (global-like pools) is one contiguous slice.
                        if lo == 0 && hi == ax.len && ay.d == 1 {
                            let rows = (0..ay.k).filter_map(|ky| ay.input(oy, ky));
                            if let (Some(first), Some(last)) = (rows.clone().next(), rows.clone().next_back()) {
                                let seg = xs.get(base + first * ax.len..base + (last + 1) * ax.len).ok_or(OpError::ShapeMismatch)?;
                                *o = if avg { lanes(seg, 0.0, |a, v| a + v) } else { lanes(seg, f32::NEG_INFINITY, fmax) };
                                continue;
                            }
                        }
                        // Narrow windows: one running sum (or max) per window column, so the
                        // rows' adds are independent; combined across columns at the end.
                        let mut colv = [acc; COLS];
                        let narrow = hi - lo <= COLS;
                        for ky in 0..ay.k {
                            let Some(iy) = ay.input(oy, ky) else { continue };
                            let row = base + iy * ax.len;
                            let seg = xs.get(row + lo..row + hi).ok_or(OpError::ShapeMismatch)?;
                            if narrow {
                                for (c, &v) in colv.iter_mut().zip(seg) {
                                    *c = if avg { *c + v } else { fmax(*c, v) };
                                }
                            } else {
                                acc = if avg { seg.iter().fold(acc, |a, v| a + v) } else { seg.iter().copied().fold(acc, fmax) };
                            }
                        }
                        if narrow {
                            let cols = &colv[..hi - lo];
                            acc = if avg { cols.iter().sum() } else { cols.iter().copied().fold(acc, fmax) };
                        }
                        *o = acc;
                    }
                }
                None => {
                    for (ox, o) in orow.iter_mut().enumerate() {
                        let mut acc = if avg { 0.0 } else { f32::NEG_INFINITY };
                        for ky in 0..ay.k {
                            let Some(iy) = ay.input(oy, ky) else { continue };
                            for kx in 0..ax.k {
                                let Some(ix) = ax.input(ox, kx) else { continue };
                                let v = x.view.get(base + iy * ax.len + ix);
                                acc = if avg { acc + v } else { fmax(acc, v) };
                            }
                        }
                        *o = acc;
                    }
                }
            }
            if avg {
                let cy = ay.count(oy, p.count_include_pad);
                for (ox, o) in orow.iter_mut().enumerate() {
                    let cnt = cy * ax.count(ox, p.count_include_pad);
                    *o = if cnt == 0 { f32::NAN } else { *o / cnt as f32 };
                }
            }
        }
    }
    Ok(())
}

/// `f` folded over `xs` in eight interleaved lanes from `init`, then across the lanes: the
/// sum or max of a long run without one long dependency chain.
#[inline]
fn lanes(xs: &[f32], init: f32, f: impl Fn(f32, f32) -> f32 + Copy) -> f32 {
    let mut acc = [init; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = f(*a, v);
        }
    }
    let tail = chunks.remainder().iter().fold(init, |a, &v| f(a, v));
    acc.iter().fold(tail, |a, &v| f(a, v))
}

/// Output columns [`pool_row`] keeps in registers / on the stack at a time.
const CH: usize = 64;
/// Widest window whose columns the one-window-at-a-time path sums separately.
const COLS: usize = 16;
/// Window columns whose output ranges `pool` tabulates.
const MAX_K: usize = 16;

/// Output row `oy` of one plane (input plane at `xs[base..]`) before the average's division:
/// the sum or max over the window positions inside the input, in window order (rows, then
/// columns) — what the element-wise definition gives — taken one window position at a time
/// across a run of output columns. `cols[kx]` is `ax.outputs_inside(kx)` for `kx < MAX_K`.
#[allow(clippy::too_many_arguments)]
fn pool_row(
    xs: &[f32],
    base: usize,
    ay: &Axis,
    ax: &Axis,
    cols: &[(usize, usize); MAX_K],
    oy: usize,
    avg: bool,
    orow: &mut [f32],
) -> Result<(), OpError> {
    let ow = orow.len();
    let mut ox0 = 0;
    while ox0 < ow {
        let n = CH.min(ow - ox0);
        let mut acc = [if avg { 0.0 } else { f32::NEG_INFINITY }; CH];
        // Windows that tile the row exactly (kernel = stride, no padding or dilation, every
        // window inside the input): one pass per window row over consecutive chunks.
        let tiled = ax.k == ax.s && ax.d == 1 && ax.pb == 0 && ow * ax.s <= ax.len;
        for ky in 0..ay.k {
            let Some(iy) = ay.input(oy, ky) else { continue };
            let row = xs.get(base + iy * ax.len..base + (iy + 1) * ax.len).ok_or(OpError::ShapeMismatch)?;
            if tiled {
                let src = &row[ox0 * ax.s..(ox0 + n) * ax.s];
                let dst = &mut acc[..n];
                match (avg, ax.s) {
                    (true, 2) => chunks::<2>(dst, src, |a, v| a + v),
                    (false, 2) => chunks::<2>(dst, src, fmax),
                    (true, 3) => chunks::<3>(dst, src, |a, v| a + v),
                    (false, 3) => chunks::<3>(dst, src, fmax),
                    (true, _) => chunks_n(dst, src, ax.s, |a, v| a + v),
                    (false, _) => chunks_n(dst, src, ax.s, fmax),
                }
                continue;
            }
            for kx in 0..ax.k {
                let off = kx * ax.d;
                let (lo, hi) = cols.get(kx).copied().unwrap_or_else(|| ax.outputs_inside(kx));
                let (lo, hi) = (lo.max(ox0), hi.min(ox0 + n));
                if lo >= hi {
                    continue;
                }
                let first = lo * ax.s + off - ax.pb;
                // Indexed, not `step_by`: its length costs a division per call.
                let src = &row[first..=first + (hi - lo - 1) * ax.s];
                let dst = &mut acc[lo - ox0..hi - ox0];
                if avg {
                    strided(dst, src, ax.s, |a, v| a + v);
                } else {
                    strided(dst, src, ax.s, fmax);
                }
            }
        }
        orow[ox0..ox0 + n].copy_from_slice(&acc[..n]);
        ox0 += n;
    }
    Ok(())
}

/// `dst[i] = f(…f(dst[i], src[i·S])…, src[i·S + S - 1])` for `i < dst.len()` (`src` holds
/// `S·dst.len()` values): windows of a constant width, so the compiler unrolls and vectorises.
#[inline(always)]
fn chunks<const S: usize>(dst: &mut [f32], src: &[f32], f: impl Fn(f32, f32) -> f32) {
    for (a, w) in dst.iter_mut().zip(src.chunks_exact(S)) {
        let Ok(w) = <&[f32; S]>::try_from(w) else { continue };
        for &v in w {
            *a = f(*a, v);
        }
    }
}

/// [`chunks`] for a width known at run time.
#[inline(always)]
fn chunks_n(dst: &mut [f32], src: &[f32], s: usize, f: impl Fn(f32, f32) -> f32) {
    for (a, w) in dst.iter_mut().zip(src.chunks_exact(s.max(1))) {
        for &v in w {
            *a = f(*a, v);
        }
    }
}

/// `dst[i] = f(dst[i], src[i·s])` for `i < dst.len()`, where `src` holds `(dst.len() - 1)·s + 1`
/// values. Strides 1 and 2 (nearly every pool) run without per-value bound tests, so the
/// compiler vectorises them where the target has vectors.
#[inline(always)]
fn strided(dst: &mut [f32], src: &[f32], s: usize, f: impl Fn(f32, f32) -> f32) {
    match (s, dst.split_last_mut()) {
        (_, None) => {}
        (1, _) => {
            for (a, &v) in dst.iter_mut().zip(src) {
                *a = f(*a, v);
            }
        }
        (2, Some((last, body))) => {
            for (a, p) in body.iter_mut().zip(src.chunks_exact(2)) {
                *a = f(*a, p[0]);
            }
            if let Some(&v) = src.get(2 * body.len()) {
                *last = f(*last, v);
            }
        }
        _ => dst.iter_mut().enumerate().for_each(|(i, a)| *a = f(*a, src[i * s])),
    }
}

/// GlobalAveragePool (`avg`) / GlobalMaxPool over all axes after the channel axis (the same
/// sums as a window over the whole plane).
pub(super) fn global(avg: bool, x: &Operand<'_>, out: &mut [f32]) -> Result<(), OpError> {
    let s = &x.shape;
    let plane = s.prod(2, s.rank());
    for (pl, o) in out.iter_mut().enumerate() {
        let base = pl * plane;
        let v = match x.view.as_f32().and_then(|xs| xs.get(base..base + plane)) {
            Some(xs) if avg => lanes(xs, 0.0, |a, v| a + v),
            Some(xs) => lanes(xs, f32::NEG_INFINITY, fmax),
            None if avg => (0..plane).map(|i| x.view.get(base + i)).sum::<f32>(),
            None => (0..plane).map(|i| x.view.get(base + i)).fold(f32::NEG_INFINITY, fmax),
        };
        *o = if avg { v / plane as f32 } else { v };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::op::{Op, PoolAttrs};
    use proptest::prelude::*;

    fn attrs(k: u32, s: u32, pads: [u32; 4], ceil: bool, incl: bool) -> PoolAttrs {
        PoolAttrs { kernel: [k, k], stride: [s, s], dilation: [1, 1], pads, ceil_mode: ceil, count_include_pad: incl }
    }

    /// Builds the padded plane explicitly: `Some(x)` inside the input, `Some(None)` in the
    /// declared padding, and nothing (`None`) beyond it (positions only `ceil_mode` reaches).
    #[allow(clippy::type_complexity)]
    fn naive(x: &[f32], d: &[usize], p: &PoolAttrs, avg: bool, od: &[usize]) -> Vec<f64> {
        let two = d.len() == 4;
        let (h, w) = if two { (d[2], d[3]) } else { (1, d[2]) };
        let (kh, sh, dh, pt, pb) = if two { (p.kernel[0], p.stride[0], p.dilation[0], p.pads[0], p.pads[2]) } else { (1, 1, 1, 0, 0) };
        let (kw, sw, dw, pl, pr) = (p.kernel[1], p.stride[1], p.dilation[1], p.pads[1], p.pads[3]);
        let (oh, ow) = if two { (od[2], od[3]) } else { (1, od[2]) };
        let (hp, wp) = (h + (pt + pb) as usize, w + (pl + pr) as usize);
        let mut y = vec![];
        for plane in 0..d[0] * d[1] {
            let cell = |py: usize, px: usize| -> Option<Option<f64>> {
                if py >= hp || px >= wp {
                    return None;
                }
                let (iy, ix) = (py as i64 - pt as i64, px as i64 - pl as i64);
                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                    return Some(None);
                }
                Some(Some(x[plane * h * w + iy as usize * w + ix as usize] as f64))
            };
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut vals = vec![];
                    let mut padded = 0;
                    for ky in 0..kh as usize {
                        for kx in 0..kw as usize {
                            match cell(oy * sh as usize + ky * dh as usize, ox * sw as usize + kx * dw as usize) {
                                Some(Some(v)) => vals.push(v),
                                Some(None) => padded += 1,
                                None => {}
                            }
                        }
                    }
                    y.push(if avg {
                        let n = if p.count_include_pad { vals.len() + padded } else { vals.len() };
                        if n == 0 {
                            f64::NAN
                        } else {
                            vals.iter().sum::<f64>() / n as f64
                        }
                    } else {
                        vals.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                    });
                }
            }
        }
        y
    }

    fn iota(n: usize) -> Vec<f32> {
        (1..=n).map(|v| v as f32).collect()
    }

    #[test]
    fn onnx_examples() {
        let x = iota(16);
        // maxpool_2d_ceil / averagepool_2d_ceil.
        let p = attrs(3, 2, [0; 4], true, false);
        let (y, s) = run(&Op::MaxPool(p), &[(&x, &[1, 1, 4, 4])]).unwrap();
        assert_eq!(s, sh(&[1, 1, 2, 2]));
        assert_eq!(y, [11.0, 12.0, 15.0, 16.0]);
        let (y, _) = run(&Op::AveragePool(p), &[(&x, &[1, 1, 4, 4])]).unwrap();
        assert_eq!(y, [6.0, 7.5, 12.0, 13.5]);
        // maxpool_2d_pads / averagepool_2d_pads: 5x5, kernel 5, pads 2.
        let x = iota(25);
        let p = attrs(5, 1, [2; 4], false, false);
        let (y, _) = run(&Op::MaxPool(p), &[(&x, &[1, 1, 5, 5])]).unwrap();
        let want =
            [13., 14., 15., 15., 15., 18., 19., 20., 20., 20., 23., 24., 25., 25., 25., 23., 24., 25., 25., 25., 23., 24., 25., 25., 25.];
        assert_eq!(y, want);
        let (y, _) = run(&Op::AveragePool(p), &[(&x, &[1, 1, 5, 5])]).unwrap();
        let want = [
            7., 7.5, 8., 8.5, 9., 9.5, 10., 10.5, 11., 11.5, 12., 12.5, 13., 13.5, 14., 14.5, 15., 15.5, 16., 16.5, 17., 17.5, 18., 18.5,
            19.,
        ];
        assert_eq!(y, want);
        // averagepool_2d_pads_count_include_pad (kernel 3, pads 2): corners divide by 9.
        let p = attrs(3, 1, [2; 4], false, true);
        let (y, s) = run(&Op::AveragePool(p), &[(&x, &[1, 1, 5, 5])]).unwrap();
        assert_eq!(s, sh(&[1, 1, 7, 7]));
        assert_close(&y[..3], &[1.0 / 9.0, 3.0 / 9.0, 6.0 / 9.0], 1e-6);
        // maxpool_2d_dilations: 4x4, kernel 2, dilation 2 -> [[11, 12], [15, 16]].
        let p = PoolAttrs { dilation: [2, 2], ..attrs(2, 1, [0; 4], false, false) };
        let (y, _) = run(&Op::MaxPool(p), &[(&iota(16), &[1, 1, 4, 4])]).unwrap();
        assert_eq!(y, [11.0, 12.0, 15.0, 16.0]);
    }

    #[test]
    fn ceil_mode_divisor_stops_at_padded_input() {
        // 1-D [1, 2, 3, 4], kernel 3, stride 2, pads 1/1, ceil: windows [-1..1], [1..3], [3..5]
        // where position 5 lies beyond the padded input (as onnxruntime / PyTorch).
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let p =
            PoolAttrs { kernel: [1, 3], stride: [1, 2], dilation: [1, 1], pads: [0, 1, 0, 1], ceil_mode: true, count_include_pad: true };
        let (y, s) = run(&Op::AveragePool(p), &[(&x, &[1, 1, 4])]).unwrap();
        assert_eq!(s, sh(&[1, 1, 3]));
        assert_eq!(y, [1.0, 3.0, 2.0]);
        let p = PoolAttrs { count_include_pad: false, ..p };
        let (y, _) = run(&Op::AveragePool(p), &[(&x, &[1, 1, 4])]).unwrap();
        assert_eq!(y, [1.5, 3.0, 4.0]);
        let (y, _) = run(&Op::MaxPool(p), &[(&x, &[1, 1, 4])]).unwrap();
        assert_eq!(y, [2.0, 4.0, 4.0]);
    }

    #[test]
    fn global_pools() {
        let x = data(2 * 3 * 4 * 5, 9);
        let (y, s) = run(&Op::GlobalAveragePool, &[(&x, &[2, 3, 4, 5])]).unwrap();
        assert_eq!(s, sh(&[2, 3, 1, 1]));
        let want: Vec<f64> = x.chunks(20).map(|c| c.iter().map(|&v| v as f64).sum::<f64>() / 20.0).collect();
        assert_close(&y, &want, 1e-5);
        let (y, _) = run(&Op::GlobalMaxPool, &[(&x, &[2, 3, 20])]).unwrap();
        let want: Vec<f64> = x.chunks(20).map(|c| c.iter().map(|&v| v as f64).fold(f64::MIN, f64::max)).collect();
        assert_close(&y, &want, 0.0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(100)))]
        /// A window over each whole plane (the fast path before classifiers) against the naive
        /// pool, and bit for bit against the global pool.
        #[test]
        fn whole_plane_windows(two in any::<bool>(), nc in (1usize..3, 1usize..5), hw in (1usize..30, 1usize..30), avg in any::<bool>(), seed in 0u64..1000) {
            let (h, w) = if two { hw } else { (1, hw.1) };
            let p = PoolAttrs { kernel: [h as u32, w as u32], stride: [1, 1], dilation: [1, 1], pads: [0; 4], ceil_mode: false, count_include_pad: false };
            let d: Vec<usize> = if two { vec![nc.0, nc.1, h, w] } else { vec![nc.0, nc.1, w] };
            let x = data(d.iter().product(), seed);
            let (got, y) = run(&if avg { Op::AveragePool(p) } else { Op::MaxPool(p) }, &[(&x, &d)]).unwrap();
            let od: Vec<usize> = y.dims().iter().map(|&v| v as usize).collect();
            assert_close(&got, &naive(&x, &d, &p, avg, &od), 1e-5);
            let (global, _) = run(&if avg { Op::GlobalAveragePool } else { Op::GlobalMaxPool }, &[(&x, &d)]).unwrap();
            prop_assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), global.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(400)))]
        /// MaxPools whose windows tile the rows (the AVX-512 kernel where the CPU has it, the
        /// AVX2 one for 2 × 2 windows on the AVX2 tier): bit
        /// for bit `fmax` folded over each window in window order (elsewhere equal values), with
        /// NaN, infinities and signed zeros among the inputs; rows longer than one 16-output
        /// step, and columns or rows past the last window.
        #[test]
        fn tiled_max_pools_match_the_window_fold(nc in (1usize..3, 1usize..5), h in 2usize..40, w in 2usize..80, k in 2usize..4,
                                                 specials in proptest::collection::vec((0usize..4000, 0usize..5), 0..40), seed in 0u64..1000) {
            prop_assume!(h >= k && w >= k);
            let p = PoolAttrs { kernel: [k as u32; 2], stride: [k as u32; 2], dilation: [1; 2], pads: [0; 4], ceil_mode: false, count_include_pad: false };
            let d = vec![nc.0, nc.1, h, w];
            let mut x = data(d.iter().product(), seed);
            // Specials packed into the first rows, so windows meet several (ties of ±0 included).
            let n = x.len().min(3 * w);
            for (at, v) in specials {
                x[at % n] = [f32::NAN, -0.0, 0.0, f32::NEG_INFINITY, f32::INFINITY][v];
            }
            let (got, y) = run(&Op::MaxPool(p), &[(&x, &d)]).unwrap();
            let (oh, ow) = (y.dim(2), y.dim(3));
            let mut want = vec![0.0f32; got.len()];
            for pl in 0..nc.0 * nc.1 {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = f32::NEG_INFINITY;
                        for ky in 0..k {
                            for kx in 0..k {
                                acc = super::fmax(acc, x[pl * h * w + (oy * k + ky) * w + ox * k + kx]);
                            }
                        }
                        want[(pl * oh + oy) * ow + ox] = acc;
                    }
                }
            }
            // The AVX-512 kernel folds in window order, bit for bit; the portable loop may take a
            // window column by column (`fmax` keeps its first operand on ties, so ±0 may come
            // out either way, and NaN payloads may differ): equal values there.
            #[cfg(target_arch = "x86_64")]
            let exact = crate::kernels::x86::avx512vl() || crate::kernels::x86::avx2_fma();
            #[cfg(not(target_arch = "x86_64"))]
            let exact = false;
            if exact {
                prop_assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            } else {
                for (g, w) in got.iter().zip(&want) {
                    prop_assert!(g == w || (g.is_nan() && w.is_nan()), "{} vs {}", g, w);
                }
            }
        }

        #[test]
        fn matches_naive(two in any::<bool>(), nc in (1usize..3, 1usize..4), hw in (1usize..9, prop_oneof![1usize..9, 60usize..140]),
                         k in (1u32..4, 1u32..4), s in (1u32..4, 1u32..4), dil in (1u32..3, 1u32..3),
                         pads in (0u32..3, 0u32..3, 0u32..3, 0u32..3), ceil in any::<bool>(), incl in any::<bool>(),
                         avg in any::<bool>(), seed in 0u64..1000) {
            let pads = (pads.0 % k.0, pads.1 % k.1, pads.2 % k.0, pads.3 % k.1);
            let p = if two {
                PoolAttrs { kernel: [k.0, k.1], stride: [s.0, s.1], dilation: [dil.0, dil.1], pads: [pads.0, pads.1, pads.2, pads.3], ceil_mode: ceil, count_include_pad: incl }
            } else {
                PoolAttrs { kernel: [1, k.1], stride: [1, s.1], dilation: [1, dil.1], pads: [0, pads.1, 0, pads.3], ceil_mode: ceil, count_include_pad: incl }
            };
            let d: Vec<usize> = if two { vec![nc.0, nc.1, hw.0, hw.1] } else { vec![nc.0, nc.1, hw.1] };
            let x = data(d.iter().product(), seed);
            let op = if avg { Op::AveragePool(p) } else { Op::MaxPool(p) };
            if let Ok((got, y)) = run(&op, &[(&x, &d)]) {
                let od: Vec<usize> = y.dims().iter().map(|&v| v as usize).collect();
                assert_close(&got, &naive(&x, &d, &p, avg, &od), 1e-5);
            }
        }
    }
}
