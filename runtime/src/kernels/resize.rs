//! Resize: nearest / (bi)linear resize of the last one or two axes with ONNX's coordinate
//! transformations (coordinates in f64, as the ONNX reference computes them).

use super::{sub_mut, Operand};
use crate::op::{CoordMode, NearestMode, OpError, ResizeAttrs, ResizeMode};
use crate::shape::Shape;

/// Input coordinate of output index `o` along an axis of `len_in` (> 0) elements resized to
/// `len_out`; `scale` is the model's scale, or 0 for `len_out / len_in`.
fn coord(o: usize, len_in: usize, len_out: usize, scale: f32, mode: CoordMode) -> f64 {
    let s = if scale > 0.0 { scale as f64 } else { len_out as f64 / len_in as f64 };
    let out_w = s * len_in as f64;
    let x = o as f64;
    match mode {
        CoordMode::HalfPixel => (x + 0.5) / s - 0.5,
        CoordMode::Asymmetric => x / s,
        CoordMode::AlignCorners if out_w == 1.0 => 0.0,
        CoordMode::AlignCorners => x * (len_in as f64 - 1.0) / (out_w - 1.0),
        CoordMode::PytorchHalfPixel if out_w == 1.0 => -0.5,
        CoordMode::PytorchHalfPixel => (x + 0.5) / s - 0.5,
    }
}

/// `v` clamped to an index in `[0, n)` (`n > 0`); NaN gives 0.
#[inline]
fn clamp_index(v: f64, n: usize) -> usize {
    let last = n.saturating_sub(1);
    if v.is_nan() || v <= 0.0 {
        0
    } else if v >= last as f64 {
        last
    } else {
        v as usize
    }
}

/// The two input indices and the weight of the second one for output index `o` along an axis
/// (the value is `(1 - w) * x[i0] + w * x[i1]`; nearest gives `i0 == i1`, `w = 0`).
fn taps(o: usize, len_in: usize, len_out: usize, scale: f32, a: &ResizeAttrs) -> (usize, usize, f32) {
    let x = coord(o, len_in, len_out, scale, a.coord);
    let fl = libm::floor(x);
    let r = x - fl;
    let r = if r.is_finite() { r } else { 0.0 };
    match a.mode {
        ResizeMode::Nearest(m) => {
            let up = r != 0.0
                && match m {
                    NearestMode::RoundPreferFloor => r > 0.5,
                    NearestMode::RoundPreferCeil => r >= 0.5,
                    NearestMode::Floor => false,
                    NearestMode::Ceil => true,
                };
            let i = clamp_index(if up { fl + 1.0 } else { fl }, len_in);
            (i, i, 0.0)
        }
        ResizeMode::Linear => (clamp_index(fl, len_in), clamp_index(fl + 1.0, len_in), r as f32),
    }
}

/// Resizes `x` (`[N, C, H, W]` or `[N, C, L]`) into `out` (shape `y`), validated by `execute`
/// (`out` non-empty, so every resized input axis is non-empty).
pub(super) fn resize(a: &ResizeAttrs, x: &Operand<'_>, out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let two_d = x.shape.rank() == 4;
    let (ih, iw) = if two_d { (x.shape.dim(2), x.shape.dim(3)) } else { (1, x.shape.dim(2)) };
    let (oh, ow) = if two_d { (y.dim(2), y.dim(3)) } else { (1, y.dim(2)) };
    let planes = x.shape.dim(0) * x.shape.dim(1);
    let (sh, sw) = if two_d { (a.scale[0], a.scale[1]) } else { (0.0, a.scale[1]) };
    for p in 0..planes {
        let src = p * ih * iw;
        let dst = sub_mut(out, p * oh * ow, oh * ow)?;
        for (oy, row) in dst.chunks_exact_mut(ow).enumerate() {
            let (y0, y1, wy) = taps(oy, ih, oh, sh, a);
            for (ox, o) in row.iter_mut().enumerate() {
                let (x0, x1, wx) = taps(ox, iw, ow, sw, a);
                let at = |yy: usize, xx: usize| x.view.get(src + yy * iw + xx);
                *o = if y0 == y1 && x0 == x1 {
                    at(y0, x0)
                } else {
                    let left = (1.0 - wy) * at(y0, x0) + wy * at(y1, x0);
                    let right = (1.0 - wy) * at(y0, x1) + wy * at(y1, x1);
                    (1.0 - wx) * left + wx * right
                };
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::op::{CoordMode, NearestMode, Op, ResizeAttrs, ResizeMode};
    use proptest::prelude::*;

    /// ONNX reference `_interpolate_1d_with_x` for nearest / linear, literally: coefficients from
    /// the ratio, neighbours from the edge-padded data by distance (ties to the smaller index).
    fn onnx_1d(data: &[f64], scale: f64, x: f64, mode: ResizeMode, coord: CoordMode) -> f64 {
        let input_width = data.len() as f64;
        let output_width = scale * input_width;
        let x_ori = match coord {
            CoordMode::AlignCorners => {
                if output_width == 1.0 {
                    0.0
                } else {
                    x * (input_width - 1.0) / (output_width - 1.0)
                }
            }
            CoordMode::Asymmetric => x / scale,
            CoordMode::PytorchHalfPixel => {
                if output_width == 1.0 {
                    -0.5
                } else {
                    (x + 0.5) / scale - 0.5
                }
            }
            CoordMode::HalfPixel => (x + 0.5) / scale - 0.5,
        };
        let ratio = if x_ori.fract() == 0.0 { 1.0 } else { x_ori - x_ori.floor() };
        let coeffs = match mode {
            ResizeMode::Linear => [1.0 - ratio, ratio],
            ResizeMode::Nearest(_) if ratio == 1.0 => [0.0, 1.0],
            ResizeMode::Nearest(m) => {
                let up = match m {
                    NearestMode::RoundPreferFloor => ratio > 0.5,
                    NearestMode::RoundPreferCeil => ratio >= 0.5,
                    NearestMode::Floor => false,
                    NearestMode::Ceil => true,
                };
                if up {
                    [0.0, 1.0]
                } else {
                    [1.0, 0.0]
                }
            }
        };
        let mut padded = vec![data[0]];
        padded.extend_from_slice(data);
        padded.push(data[data.len() - 1]);
        let xp = x_ori + 1.0;
        let mut idx: Vec<usize> = (0..padded.len()).collect();
        idx.sort_by(|&a, &b| ((xp - a as f64).abs(), a).partial_cmp(&((xp - b as f64).abs(), b)).unwrap());
        let mut two = [idx[0], idx[1]];
        two.sort();
        coeffs[0] * padded[two[0]] + coeffs[1] * padded[two[1]]
    }

    fn naive(x: &[f32], d: &[usize], a: &ResizeAttrs, out: &[usize]) -> Vec<f64> {
        let two_d = d.len() == 4;
        let (ih, iw) = if two_d { (d[2], d[3]) } else { (1, d[2]) };
        let (oh, ow) = if two_d { (out[2], out[3]) } else { (1, out[2]) };
        let scale = |s: f32, o: usize, i: usize| if s > 0.0 { s as f64 } else { o as f64 / i as f64 };
        let (sh, sw) = (scale(if two_d { a.scale[0] } else { 0.0 }, oh, ih), scale(a.scale[1], ow, iw));
        let mut res = Vec::new();
        for p in 0..d[0] * d[1] {
            for oy in 0..oh {
                for ox in 0..ow {
                    // Separable as in the reference: along H first (per input column), then W.
                    let cols: Vec<f64> = (0..iw)
                        .map(|c| {
                            let col: Vec<f64> = (0..ih).map(|r| x[p * ih * iw + r * iw + c] as f64).collect();
                            if ih == oh && sh == 1.0 {
                                col[oy]
                            } else {
                                onnx_1d(&col, sh, oy as f64, a.mode, a.coord)
                            }
                        })
                        .collect();
                    res.push(if iw == ow && sw == 1.0 { cols[ox] } else { onnx_1d(&cols, sw, ox as f64, a.mode, a.coord) });
                }
            }
        }
        res
    }

    fn attrs(m: u8, c: u8, size: [u32; 2], scale: [f32; 2]) -> ResizeAttrs {
        let mode = match m % 5 {
            0 => ResizeMode::Nearest(NearestMode::RoundPreferFloor),
            1 => ResizeMode::Nearest(NearestMode::RoundPreferCeil),
            2 => ResizeMode::Nearest(NearestMode::Floor),
            3 => ResizeMode::Nearest(NearestMode::Ceil),
            _ => ResizeMode::Linear,
        };
        let coord = [CoordMode::HalfPixel, CoordMode::Asymmetric, CoordMode::AlignCorners, CoordMode::PytorchHalfPixel][c as usize % 4];
        ResizeAttrs { size, scale, mode, coord }
    }

    #[test]
    fn onnx_examples() {
        // test_resize_upsample_scales_linear: 2x2 -> 4x4, half_pixel.
        let x = [1.0, 2.0, 3.0, 4.0];
        let a = ResizeAttrs { size: [4, 4], scale: [2.0, 2.0], mode: ResizeMode::Linear, coord: CoordMode::HalfPixel };
        let (got, _) = run(&Op::Resize(a), &[(&x, &[1, 1, 2, 2])]).unwrap();
        let want = [1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0];
        assert_eq!(got, want);
        // align_corners: 2x2 -> 4x4.
        let a = ResizeAttrs { coord: CoordMode::AlignCorners, ..a };
        let (got, _) = run(&Op::Resize(a), &[(&x, &[1, 1, 2, 2])]).unwrap();
        let third = 1.0 / 3.0;
        let want: Vec<f64> = (0..16).map(|k| 1.0 + 2.0 * ((k / 4) as f64 * third) + ((k % 4) as f64 * third)).collect();
        assert_close(&got, &want, 1e-6);
        // test_resize_upsample_scales_nearest: [1, 1, 2, 2] x (2, 3), asymmetric-free default half_pixel.
        let a = ResizeAttrs {
            size: [4, 6],
            scale: [2.0, 3.0],
            mode: ResizeMode::Nearest(NearestMode::RoundPreferFloor),
            coord: CoordMode::HalfPixel,
        };
        let (got, _) = run(&Op::Resize(a), &[(&x, &[1, 1, 2, 2])]).unwrap();
        let r1 = [1.0, 1.0, 1.0, 2.0, 2.0, 2.0];
        let r2 = [3.0, 3.0, 3.0, 4.0, 4.0, 4.0];
        assert_eq!(got, [r1, r1, r2, r2].concat());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(400)))]
        #[test]
        fn matches_onnx_reference(
            two_d: bool, n in 1usize..3, c in 1usize..3, ih in 1usize..6, iw in 1usize..6,
            oh in 0usize..9, ow in 0usize..9, m in 0u8..5, co in 0u8..4, given: bool, seed in 0u64..1000,
        ) {
            let (d, out, size) = if two_d {
                (vec![n, c, ih, iw], vec![n, c, oh, ow], [oh as u32, ow as u32])
            } else {
                (vec![n, c, iw], vec![n, c, ow], [1, ow as u32])
            };
            // A given scale: one whose floor(in * scale) is the output size.
            let sc = |o: usize, i: usize| if given && o > 0 { (o as f32 + 0.25) / i as f32 } else { 0.0 };
            let scale = if two_d { [sc(oh, ih), sc(ow, iw)] } else { [0.0, sc(ow, iw)] };
            let a = attrs(m, co, size, scale);
            let x = data(d.iter().product(), seed);
            let (got, y) = run(&Op::Resize(a), &[(&x, &d)]).unwrap();
            prop_assert_eq!(y, sh(&out));
            assert_close(&got, &naive(&x, &d, &a, &out), 1e-5);
        }
    }
}
