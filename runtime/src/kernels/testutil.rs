//! Helpers shared by the kernel tests (host only; may allocate).

extern crate std;

pub use std::vec;
pub use std::vec::Vec;

use super::{execute, Operand};
use crate::op::{Activation, ConvAttrs, Op, OpError};
use crate::shape::Shape;
use crate::view::View;

/// Shape from dims (panics on bad input; tests only).
pub fn sh(d: &[usize]) -> Shape {
    Shape::new(d).expect("shape")
}

/// Runs `op` on native f32 inputs, inferring the output shape.
pub fn run(op: &Op, ins: &[(&[f32], &[usize])]) -> Result<(Vec<f32>, Shape), OpError> {
    let ops: Vec<Operand<'_>> = ins.iter().map(|(d, s)| Operand { view: View::F32(d), shape: sh(s) }).collect();
    run_ops(op, &ops)
}

/// Runs `op` on arbitrary operands, inferring the output shape.
pub fn run_ops(op: &Op, ops: &[Operand<'_>]) -> Result<(Vec<f32>, Shape), OpError> {
    let shapes: Vec<Shape> = ops.iter().map(|o| o.shape).collect();
    let y = op.infer(&shapes)?;
    let mut out = vec![f32::from_bits(0x7fc0_1234); y.numel().ok_or(OpError::ShapeMismatch)?];
    execute(op, ops, &mut out, &y)?;
    Ok((out, y))
}

/// Little-endian f32 bytes.
pub fn f32le(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian f16 bytes.
pub fn f16le(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect()
}

/// The values rounded to f16 precision (so F16 views hold them exactly).
pub fn round_f16(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| half::f16::from_f32(*x).to_f32()).collect()
}

/// Deterministic pseudo-random values in `[-1, 1)`.
pub fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Row-major linear index of `idx` in `dims`.
pub fn lin(dims: &[usize], idx: &[usize]) -> usize {
    dims.iter().zip(idx).fold(0, |a, (d, i)| a * d + i)
}

/// Every multi-index of `dims` in row-major order.
pub fn indices(dims: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = dims.iter().product();
    let mut all = Vec::with_capacity(n);
    for mut k in 0..n {
        let mut idx = vec![0; dims.len()];
        for i in (0..dims.len()).rev() {
            idx[i] = k % dims[i];
            k /= dims[i];
        }
        all.push(idx);
    }
    all
}

/// Asserts `got` matches `want` within `tol` relative (and `tol` absolute near zero);
/// NaN must match NaN and infinities must match exactly.
#[track_caller]
pub fn assert_close(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = g as f64;
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= tol * w.abs().max(1.0)
        };
        assert!(ok, "element {i}: got {g}, want {w}\n got: {got:?}\nwant: {want:?}");
    }
}

/// [`assert_close`] with element `i`'s bound `tol · max(scale[i], 1)`: for a dot product,
/// `scale` = Σ|w·x| bounds the rounding of an f32 sum in any order, however much its terms
/// cancel.
#[track_caller]
pub fn assert_close_scaled(got: &[f32], want: &[f64], scale: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "length");
    for (i, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        let ok = (g as f64 - w).abs() <= tol * s.abs().max(1.0) || (w.is_nan() && g.is_nan());
        assert!(ok, "element {i}: got {g}, want {w} (scale {s})");
    }
}

/// [`assert_close_scaled`] after an activation: `want` is the f64 reference, `pre` the same
/// before `act`, `scale` each output's Σ|w·x| + |b|. Relu and Clip are 1-Lipschitz, so an f32
/// sum's rounding (any order, bounded by `tol · max(scale, 1)`) carries through them unchanged;
/// where `pre` lies within that bound of Threshold's jump, either side of it is accepted.
pub fn assert_close_act(got: &[f32], want: &[f64], pre: &[f64], scale: &[f64], act: Activation, tol: f64) {
    assert_eq!(got.len(), want.len(), "length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, bound) = (g as f64, tol * scale[i].abs().max(1.0));
        let jump = matches!(act, Activation::Threshold { alpha } if (pre[i] - alpha as f64).abs() <= bound);
        let ok = (g - w).abs() <= bound || (w.is_nan() && g.is_nan()) || (jump && (g == 0.0 || (g - pre[i]).abs() <= bound));
        assert!(ok, "element {i}: got {g}, want {w} (before the activation {}, scale {})", pre[i], scale[i]);
    }
}

/// Asserts an f32 Conv's outputs `got` match [`naive_conv`] through [`assert_close_act`].
#[allow(clippy::too_many_arguments)]
pub fn assert_conv_close(
    got: &[f32],
    x: &[f32],
    xd: &[usize],
    w: &[f32],
    wd: &[usize],
    b: Option<&[f32]>,
    a: &ConvAttrs,
    yd: &[usize],
    tol: f64,
) {
    let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<f32>>();
    let plain = ConvAttrs { act: Activation::None, ..*a };
    let scale = naive_conv(&abs(x), xd, &abs(w), wd, b.map(abs).as_deref(), &plain, yd);
    let pre = naive_conv(x, xd, w, wd, b, &plain, yd);
    assert_close_act(got, &naive_conv(x, xd, w, wd, b, a, yd), &pre, &scale, a.act, tol);
}

/// Asserts an f32 Dense layer's outputs `got` match [`naive_dense`] through [`assert_close_act`].
#[allow(clippy::too_many_arguments)]
pub fn assert_dense_close(
    got: &[f32],
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[f32],
    n: usize,
    b: Option<&[f32]>,
    act: Activation,
    tol: f64,
) {
    let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<f32>>();
    let scale = naive_dense(&abs(x), rows, k, &abs(w), n, b.map(abs).as_deref(), Activation::None);
    let pre = naive_dense(x, rows, k, w, n, b, Activation::None);
    assert_close_act(got, &naive_dense(x, rows, k, w, n, b, act), &pre, &scale, act, tol);
}

/// A random codebook payload for an `n × k` matrix (`groups` codebooks, rows spread over them)
/// and its decoded values.
pub fn quantized(n: usize, k: usize, bits: u8, f16_values: bool, groups: usize, seed: u64) -> (Vec<u8>, Vec<f32>) {
    let q = 1usize << bits;
    let codebooks = data(groups * q, seed);
    let row_group: Vec<u16> = (0..n).map(|r| ((r * 7 + seed as usize) % groups) as u16).collect();
    let indices: Vec<u8> = data(n * k, seed + 1).iter().map(|v| (((v + 1.0) / 2.0 * q as f32) as usize).min(q - 1) as u8).collect();
    let payload = crate::codebook::encode_codebook(n, k, bits, f16_values, &row_group, &codebooks, &indices);
    let c = crate::codebook::Codebook::parse(&payload, n, k).expect("the encoder's payload is valid");
    let decoded = (0..n * k).map(|i| c.get(i)).collect();
    (payload, decoded)
}

/// Textbook batched convolution in f64 (1-D convs as `h = kh = 1`): the reference every conv
/// kernel (dense, block-sparse, codebook) is tested against.
pub fn naive_conv(x: &[f32], xd: &[usize], w: &[f32], wd: &[usize], b: Option<&[f32]>, a: &ConvAttrs, yd: &[usize]) -> Vec<f64> {
    let two = xd.len() == 4;
    let (nb, c, h, wi) = if two { (xd[0], xd[1], xd[2], xd[3]) } else { (xd[0], xd[1], 1, xd[2]) };
    let (m, cg, kh, kw) = if two { (wd[0], wd[1], wd[2], wd[3]) } else { (wd[0], wd[1], 1, wd[2]) };
    let (oh, ow) = if two { (yd[2], yd[3]) } else { (1, yd[2]) };
    let (sh, dh, pt) = if two { (a.stride[0], a.dilation[0], a.pads[0]) } else { (1, 1, 0) };
    let (sw, dw, pl) = (a.stride[1], a.dilation[1], a.pads[1]);
    let mg = m / a.group as usize;
    let mut y = vec![0.0f64; nb * m * oh * ow];
    for n in 0..nb {
        for mo in 0..m {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b.map_or(0.0, |b| b[mo] as f64);
                    for icl in 0..cg {
                        let ic = (mo / mg) * cg + icl;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * sh as usize + ky * dh as usize) as i64 - pt as i64;
                                let ix = (ox * sw as usize + kx * dw as usize) as i64 - pl as i64;
                                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= wi as i64 {
                                    continue;
                                }
                                let xv = x[((n * c + ic) * h + iy as usize) * wi + ix as usize] as f64;
                                acc += xv * w[((mo * cg + icl) * kh + ky) * kw + kx] as f64;
                            }
                        }
                    }
                    y[((n * m + mo) * oh + oy) * ow + ox] = match a.act {
                        Activation::None => acc,
                        Activation::Relu => acc.max(0.0),
                        Activation::Clip { min, max } => acc.max(min as f64).min(max as f64),
                        Activation::Threshold { alpha } => {
                            if acc > alpha as f64 {
                                acc
                            } else {
                                0.0
                            }
                        }
                    };
                }
            }
        }
    }
    y
}

/// The fused activations the kernel property tests draw from.
pub const ACTS: [Activation; 3] = [Activation::None, Activation::Relu, Activation::Clip { min: -0.5, max: 0.5 }];

/// Conv attributes from a property test's draws: pads top, left, bottom, right and `ACTS[act]`.
pub fn conv_attrs(group: usize, stride: [usize; 2], dilation: [usize; 2], pads: [usize; 4], act: u8) -> ConvAttrs {
    ConvAttrs {
        group: group as u32,
        stride: stride.map(|v| v as u32),
        dilation: dilation.map(|v| v as u32),
        pads: pads.map(|v| v as u32),
        act: ACTS[act as usize],
    }
}

/// The bits a kernel writes into `len` floats of NaN, or `None` when it declines (returns false).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn run_bits(len: usize, f: &dyn Fn(&mut [f32]) -> bool) -> Option<Vec<u32>> {
    let mut got = vec![f32::NAN; len];
    f(&mut got).then(|| got.iter().map(|v| v.to_bits()).collect())
}

/// Runs one f32 Conv with input dims `xd`, weight dims `wd` and a bias (random data from
/// `seed`) through [`execute`] and asserts it matches [`naive_conv`] within 1e-5 of each
/// output's Σ|w·x| + |b| (the bound of an f32 sum in any order: long filters cancel).
pub fn check_conv(xd: &[usize], wd: &[usize], attrs: ConvAttrs, seed: u64) {
    let x = data(xd.iter().product(), seed);
    let w = data(wd.iter().product(), seed + 1);
    let b = data(wd[0], seed + 2);
    let (got, y) = run(&Op::Conv(attrs), &[(&x, xd), (&w, wd), (&b, &[wd[0]])]).unwrap();
    let yd: Vec<usize> = (0..y.rank()).map(|i| y.dim(i)).collect();
    assert_conv_close(&got, &x, xd, &w, wd, Some(&b), &attrs, &yd, 1e-5);
}

/// Textbook dense layer in f64: the reference every Dense kernel is tested against.
pub fn naive_dense(x: &[f32], rows: usize, k: usize, w: &[f32], n: usize, b: Option<&[f32]>, act: Activation) -> Vec<f64> {
    let mut y = vec![0.0; rows * n];
    for r in 0..rows {
        for j in 0..n {
            let mut acc = b.map_or(0.0, |b| b[j] as f64);
            for kk in 0..k {
                acc += x[r * k + kk] as f64 * w[j * k + kk] as f64;
            }
            y[r * n + j] = match act {
                Activation::None => acc,
                Activation::Relu => acc.max(0.0),
                Activation::Clip { min, max } => acc.max(min as f64).min(max as f64),
                Activation::Threshold { alpha } => {
                    if acc > alpha as f64 {
                        acc
                    } else {
                        0.0
                    }
                }
            };
        }
    }
    y
}

/// Property-test case count: `n` natively, a few under Miri (which interprets every
/// instruction and is ~10⁴× slower), where the point is to execute each `unsafe` path.
pub const fn cases(n: u32) -> u32 {
    if cfg!(miri) {
        let k = n / 100;
        if k < 3 {
            3
        } else {
            k
        }
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3 × 3 Conv over 24 channels (216 terms an output) and its f32 result.
    fn conv_case(act: Activation) -> (Vec<f32>, Vec<f32>, Vec<f32>, ConvAttrs, Vec<f32>) {
        let (x, w, b) = (data(24 * 8 * 8, 1), data(5 * 24 * 9, 2), data(5, 3));
        let a = ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [1; 4], act };
        let got = naive_conv(&x, &[1, 24, 8, 8], &w, &[5, 24, 3, 3], Some(&b), &a, &[1, 5, 8, 8]).iter().map(|&v| v as f32).collect();
        (x, w, b, a, got)
    }

    #[test]
    fn the_conv_bound_accepts_rounding() {
        let (x, w, b, a, got) = conv_case(Activation::None);
        assert_conv_close(&got, &x, &[1, 24, 8, 8], &w, &[5, 24, 3, 3], Some(&b), &a, &[1, 5, 8, 8], 1e-5);
    }

    /// The bound relative to Σ|w·x| still sees one tap of 216 left out.
    #[test]
    #[should_panic(expected = "element 100")]
    fn the_conv_bound_rejects_a_missing_tap() {
        let (x, w, b, a, mut got) = conv_case(Activation::None);
        // Output 100 is channel 1, row 4, column 4: its centre tap of input channel 0.
        got[100] -= x[4 * 8 + 4] * w[24 * 9 + 4];
        assert_conv_close(&got, &x, &[1, 24, 8, 8], &w, &[5, 24, 3, 3], Some(&b), &a, &[1, 5, 8, 8], 1e-5);
    }

    /// At Threshold's jump a sum within the bound of alpha may land on either side; away from
    /// it, the wrong side fails.
    #[test]
    fn threshold_accepts_either_side_only_at_the_jump() {
        let act = Activation::Threshold { alpha: 0.5 };
        let (pre, scale) = ([0.5 + 1e-7, 0.9], [2.0, 2.0]);
        let want = [pre[0], pre[1]];
        assert_close_act(&[0.0, 0.9], &want, &pre, &scale, act, 1e-5);
        assert_close_act(&[0.5, 0.9], &want, &pre, &scale, act, 1e-5);
        let wrong = std::panic::catch_unwind(|| assert_close_act(&[0.0, 0.0], &want, &pre, &scale, act, 1e-5));
        assert!(wrong.is_err(), "0 for 0.9 is past the jump's bound");
    }
}
