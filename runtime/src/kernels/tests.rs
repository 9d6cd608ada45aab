//! Cross-kernel robustness: random operators (decoded from random attribute words) on random,
//! loosely related shapes, each operand stored in any view (block-sparse and codebook included). Whenever
//! `Op::infer` accepts the shapes, `execute` must succeed and write every output element;
//! inconsistent lengths must be rejected, never panic.

use super::testutil::*;
use super::{execute, Operand};
use crate::codebook::Codebook;
use crate::op::{Op, OpError, ATTR_WORDS};
use crate::shape::Shape;
use crate::sparse::{bsr_matrix, encode_bsr, Bsr};
use crate::view::View;
use proptest::prelude::*;

fn derive(base: &[usize], how: u8, r: &[usize]) -> Vec<usize> {
    let last = base.last().copied().unwrap_or(1);
    match how % 8 {
        0 => base.to_vec(),
        1 => base.iter().zip(r).map(|(&d, &x)| if x % 2 == 0 { 1 } else { d }).collect(),
        2 => base[base.len().min(r[0] % 4)..].to_vec(),
        3 => vec![base.get(1).copied().unwrap_or(1)],
        4 => vec![r[1] % 3 + 1, last],
        5 => {
            // Conv weight: [M, C / g, k.., k..] for g = r[2] (the group passed in).
            let g = r[2].max(1);
            let c = base.get(1).copied().unwrap_or(1);
            let mut w = vec![g * (r[3] % 3 + 1), c / g];
            w.extend(base.iter().skip(2).zip(&r[4..]).map(|(_, &k)| k % 3 + 1));
            w
        }
        6 => r[..r[0] % 5].iter().map(|&x| x % 4).collect(),
        _ => {
            let mut m = base.to_vec();
            if m.len() >= 2 {
                let n = m.len();
                m[n - 2] = last;
                m[n - 1] = r[5] % 4 + 1;
            }
            m
        }
    }
}

/// View kinds: 0 F32, 1 F32Le, 2 F16Le, 3 Bsr, 4 Codebook, 5 U8 (u8-affine).
const VIEW_KINDS: u8 = 6;
const CODEBOOK_VIEW: u8 = 4;
const U8_VIEW: u8 = 5;

/// `d` rounded onto its u8-affine grid: the payload and the values it decodes to.
fn u8_of(d: &[f32]) -> (Vec<u8>, Vec<f32>) {
    let (lo, step) = crate::format::u8_affine_fit(d).expect("finite test data");
    let vals: Vec<f32> = d.iter().map(|&v| crate::format::u8_affine_nearest(lo, step, v)).collect();
    (crate::format::encode_u8_affine(lo, step, &vals).expect("grid values encode"), vals)
}

#[allow(clippy::too_many_arguments)]
fn view_of<'a>(
    kind: u8,
    f: &'a [f32],
    b32: &'a [u8],
    b16: &'a [u8],
    bsr: &'a [u8],
    cb: &'a [u8],
    u8p: &'a [u8],
    shape: &[usize],
) -> View<'a> {
    let dims: Vec<u32> = shape.iter().map(|&d| d as u32).collect();
    let (rows, cols) = bsr_matrix(&dims);
    match kind % VIEW_KINDS {
        0 => View::F32(f),
        1 => View::F32Le(b32),
        2 => View::F16Le(b16),
        3 => View::Bsr(Bsr::parse(bsr, rows, cols).expect("the encoder's payload is valid")),
        5 => View::U8(crate::view::Affine8::split(u8p).expect("the encoder's payload has a header")),
        _ => View::Codebook(Codebook::parse(cb, rows, cols).expect("the encoder's payload is valid")),
    }
}

/// A codebook payload of the shape's matrix with a width, value type and group count picked by
/// `pick`, and its decoded values.
fn codebook_of(shape: &[usize], pick: usize, seed: u64) -> (Vec<u8>, Vec<f32>) {
    let dims: Vec<u32> = shape.iter().map(|&d| d as u32).collect();
    let (rows, cols) = bsr_matrix(&dims);
    quantized(rows, cols, (pick % 8) as u8 + 1, (pick / 8).is_multiple_of(2), pick / 16 % 3 + 1, seed)
}

/// `d` (of shape `shape`) as a block-sparse payload with a block shape picked by `pick`.
fn bsr_of(d: &[f32], shape: &[usize], pick: usize) -> Vec<u8> {
    let dims: Vec<u32> = shape.iter().map(|&d| d as u32).collect();
    let (rows, cols) = bsr_matrix(&dims);
    encode_bsr(rows, cols, pick % 4 + 1, pick / 4 % 5 + 1, d)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(3000)))]
    #[test]
    fn accepted_shapes_always_execute(
        code in 1u16..=19,
        words in proptest::collection::vec(0u32..4, ATTR_WORDS),
        mut base in proptest::collection::vec(0usize..5, 0..7),
        hows in proptest::collection::vec(any::<u8>(), 3),
        r in proptest::collection::vec(0usize..1000, 10),
        views in proptest::collection::vec(any::<u8>(), 3),
    ) {
        let mut w = [0u32; ATTR_WORDS];
        w.copy_from_slice(&words);
        match code {
            1 => w[0..5].iter_mut().for_each(|v| *v = (*v).max(1)), // group, strides, dilations
            7 | 8 => w[0..6].iter_mut().for_each(|v| *v = (*v).max(1)), // kernel, strides, dilations
            4 => w[0] = (r[6] % 8) as u32,
            5 => w[0] = (r[6] % 24) as u32,
            14 if r[8] % 4 != 0 => {
                // Pad: neutral entries beyond the rank; every mode (word 13: 0..=2, 3 is rejected),
                // reflect pads mostly below the axis length.
                for i in 0..6 {
                    let d = base.get(i).copied().unwrap_or(0) as u32;
                    for k in [i, 6 + i] {
                        if i >= base.len() {
                            w[k] = 0;
                        } else if w[13] == 1 {
                            w[k] %= d.max(1);
                        }
                    }
                }
            }
            18 if r[8] % 4 != 0 => {
                // Slice: neutral entries beyond the rank, windows mostly inside the input.
                for i in 0..6 {
                    let d = base.get(i).copied().unwrap_or(0) as u32;
                    if i >= base.len() {
                        (w[i], w[6 + i], w[12 + i]) = (0, 1, 0);
                    } else {
                        w[6 + i] = w[6 + i].max(1);
                        w[i] %= d + 1;
                        w[12 + i] = w[12 + i].min((d - w[i]).div_ceil(w[6 + i]));
                    }
                }
            }
            _ => {}
        }
        if matches!(code, 1 | 7 | 8) {
            // Windowed ops: an NCHW / NCL input, attributes consistent with its rank.
            let two_d = r[8] % 2 == 0;
            base = vec![if code == 1 { 1 } else { r[7] % 2 + 1 }, r[7] % 4 + 1, r[6] % 7, r[5] % 9];
            if !two_d {
                base.remove(2);
            }
            if code == 1 {
                w[0] = w[0].min(3);
                base[1] = w[0] as usize * (r[7] % 3 + 1);
                if !two_d {
                    (w[1], w[3], w[5], w[7]) = (1, 1, 0, 0);
                }
            } else {
                if !two_d {
                    (w[0], w[2], w[6], w[8]) = (1, 1, 0, 0);
                }
                for i in 6..10 {
                    w[i] %= w[i % 2];
                }
            }
        }
        if code == 19 && r[8] % 4 != 0 {
            // Resize: an NCHW / NCL input, mostly sensible scales (0 = from the sizes), every mode.
            let two_d = r[8] % 2 == 0;
            base = vec![r[7] % 2 + 1, r[6] % 3 + 1, r[5] % 5, r[4] % 6];
            w[0] = (r[3] % 8) as u32;
            w[1] = (r[2] % 8) as u32;
            for k in 0..2 {
                w[2 + k] = match r[1 + k] % 4 {
                    0 | 1 => 0,
                    2 => (0.5 + (r[k] % 6) as f32 * 0.75).to_bits(),
                    _ => w[2 + k], // tiny denormal scales: coordinates far outside the input
                };
            }
            w[4] %= 2;
            if w[4] == 1 {
                w[5] = 0;
            }
            if !two_d {
                base.remove(2);
                (w[0], w[2]) = (1, 0);
            }
        }
        let Ok(op) = Op::decode(code, &w) else { return Ok(()) };
        let (lo, hi) = op.arity();
        let n = lo + r[9] % (hi - lo + 1).min(3);
        let shapes: Vec<Vec<usize>> =
            (0..n)
                .map(|i| match (i, op) {
                    (0, _) => base.clone(),
                    (1, Op::Conv(c)) => {
                        let mut rc = r.clone();
                        rc[2] = c.group as usize;
                        derive(&base, 5, &rc)
                    }
                    (2, Op::Conv(c)) => vec![c.group as usize * (r[3] % 3 + 1)],
                    _ => derive(&base, hows[i % 3], &r),
                })
                .collect();
        let Some(sh_) = shapes.iter().map(|s| Shape::new(s)).collect::<Option<Vec<Shape>>>() else { return Ok(()) };
        let Ok(y) = op.infer(&sh_) else { return Ok(()) };
        let Some(numel) = y.numel().filter(|&k| k < 100_000) else { return Ok(()) };
        let cbs: Vec<(Vec<u8>, Vec<f32>)> = shapes.iter().enumerate().map(|(i, s)| codebook_of(s, r[3], i as u64)).collect();
        let u8s: Vec<(Vec<u8>, Vec<f32>)> = shapes.iter().enumerate().map(|(i, s)| u8_of(&data(s.iter().product(), i as u64))).collect();
        // Codebook and u8-affine operands hold values their payloads represent exactly.
        let datas: Vec<Vec<f32>> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| match views[i % 3] % VIEW_KINDS {
                CODEBOOK_VIEW => cbs[i].1.clone(),
                U8_VIEW => u8s[i].1.clone(),
                _ => round_f16(&data(s.iter().product(), i as u64)),
            })
            .collect();
        let b32: Vec<Vec<u8>> = datas.iter().map(|d| f32le(d)).collect();
        let b16: Vec<Vec<u8>> = datas.iter().map(|d| f16le(d)).collect();
        let bsr: Vec<Vec<u8>> = datas.iter().zip(&shapes).map(|(d, s)| bsr_of(d, s, r[4])).collect();
        let ops: Vec<Operand<'_>> = (0..n)
            .map(|i| Operand { view: view_of(views[i % 3], &datas[i], &b32[i], &b16[i], &bsr[i], &cbs[i].0, &u8s[i].0, &shapes[i]), shape: sh_[i] })
            .collect();
        let mut out = vec![f32::from_bits(0x7fc0_dead); numel];
        prop_assert_eq!(execute(&op, &ops, &mut out, &y), Ok(()));
        prop_assert!(out.iter().all(|v| v.to_bits() != 0x7fc0_dead), "{:?} left an output unwritten", op);
        // All-native views give the same result.
        let native: Vec<Operand<'_>> = (0..n).map(|i| Operand { view: View::F32(&datas[i]), shape: sh_[i] }).collect();
        let mut out2 = vec![0.0f32; numel];
        prop_assert_eq!(execute(&op, &native, &mut out2, &y), Ok(()));
        for (a, b) in out.iter().zip(&out2) {
            prop_assert!(a.to_bits() == b.to_bits() || (a - b).abs() <= 1e-5 * a.abs().max(1.0) || (a.is_nan() && b.is_nan()), "{:?}: {} vs {}", op, a, b);
        }
        // Inconsistent output length or input length: an error, no panic.
        if numel > 0 {
            prop_assert_eq!(execute(&op, &ops, &mut out[..numel - 1], &y), Err(OpError::ShapeMismatch));
        }
        let mut bad = ops.clone();
        if let Some(View::F32(d)) = bad.first().map(|o| o.view) {
            if !d.is_empty() {
                bad[0].view = View::F32(&d[1..]);
                prop_assert_eq!(execute(&op, &bad, &mut out, &y), Err(OpError::ShapeMismatch));
            }
        }
    }
}

#[test]
fn wrong_output_shape_is_rejected() {
    let x = [1.0f32; 6];
    let ops = [Operand { view: View::F32(&x), shape: sh(&[2, 3]) }];
    let mut out = [0.0f32; 6];
    let op = Op::Unary(crate::op::UnaryKind::Relu);
    assert_eq!(execute(&op, &ops, &mut out, &sh(&[3, 2])), Err(OpError::ShapeMismatch));
    assert_eq!(execute(&op, &ops, &mut out, &sh(&[2, 3])), Ok(()));
    assert_eq!(execute(&op, &[], &mut out, &sh(&[2, 3])), Err(OpError::BadArity));
}

/// NaN and ±Inf follow IEEE 754 arithmetic through every kernel, with the documented choices
/// (docs/RELIABILITY.md): ReLU and Threshold are `maxNum(x, 0)`-like (NaN → 0), Clip keeps NaN,
/// max/min pooling and reductions propagate NaN (numpy `maximum`), and no kernel fails or panics.
/// Checked on every dispatch path the host takes (scalar, AVX2, AVX-512 / NEON).
#[test]
fn nan_and_inf_follow_the_documented_ieee_semantics() {
    use crate::op::{Activation, BinaryKind, PoolAttrs, UnaryKind};
    let (nan, inf) = (f32::NAN, f32::INFINITY);
    // Specials and exact results compare by bits; other finite values within 1e-6 relative,
    // since the expectations' `exp` / `tanh` come from the platform (and Miri perturbs them).
    let same = |got: &[f32], want: &[f32], what: &str| {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let close = w.is_finite() && *w != 0.0 && (g - w).abs() <= 1e-6 * w.abs();
            assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()) || close, "{what}[{i}]: got {g}, want {w}");
        }
    };
    // 37 values so SIMD bodies and scalar tails both see every special.
    let base = [nan, inf, -inf, 1.0, -2.0, 0.0, -0.0];
    let x: Vec<f32> = (0..37).map(|i| base[i % 7]).collect();
    let n = [x.len()];
    let map = |f: &dyn Fn(f32) -> f32| x.iter().map(|&v| f(v)).collect::<Vec<f32>>();

    let (y, _) = run(&Op::Unary(UnaryKind::Relu), &[(&x, &n)]).unwrap();
    same(&y, &map(&|v| if v > 0.0 { v } else { 0.0 }), "relu");
    let (y, _) = run(&Op::Unary(UnaryKind::Clip { min: -1.0, max: 1.0 }), &[(&x, &n)]).unwrap();
    same(&y, &map(&|v| if v.is_nan() { v } else { v.clamp(-1.0, 1.0) }), "clip");
    let (y, _) = run(&Op::Unary(UnaryKind::Sigmoid), &[(&x, &n)]).unwrap();
    same(
        &y,
        &map(&|v| {
            if v.is_nan() {
                v
            } else if v == inf {
                1.0
            } else if v == -inf {
                0.0
            } else {
                1.0 / (1.0 + (-v).exp())
            }
        }),
        "sigmoid",
    );
    let (y, _) = run(&Op::Unary(UnaryKind::Tanh), &[(&x, &n)]).unwrap();
    same(&y, &map(&|v| if v.is_nan() { v } else { v.tanh() }), "tanh");

    let one = [1.0f32];
    let (y, _) = run(&Op::Binary(BinaryKind::Add), &[(&x, &n), (&one, &[1])]).unwrap();
    same(&y, &map(&|v| v + 1.0), "add");
    let zero = [0.0f32];
    let (y, _) = run(&Op::Binary(BinaryKind::Mul), &[(&x, &n), (&zero, &[1])]).unwrap();
    same(&y, &map(&|v| v * 0.0), "mul by zero (inf * 0 = NaN)");

    // Dense: a NaN or an infinity times a zero weight poisons the sum; +inf and -inf cancel to NaN.
    let dense = Op::Dense { act: Activation::None };
    let xs = [[inf, 1.0], [inf, -inf], [nan, 1.0], [1.0, 2.0]];
    for (k, row) in xs.iter().enumerate() {
        for (w, want) in [([0.0f32, 1.0], [row[0] * 0.0 + row[1]]), ([1.0, 1.0], [row[0] + row[1]])] {
            let (y, _) = run(&dense, &[(row, &[1, 2]), (&w, &[1, 2])]).unwrap();
            same(&y, &want, &format!("dense x{k} w{w:?}"));
        }
    }
    let (y, _) = run(&Op::Dense { act: Activation::Relu }, &[(&[nan, 1.0], &[1, 2]), (&[1.0, 1.0], &[1, 2])]).unwrap();
    same(&y, &[0.0], "dense + fused relu of NaN");

    // Pools: max propagates NaN wherever it is in the window; average of +inf and -inf is NaN.
    let p = PoolAttrs { kernel: [1, 3], stride: [1, 3], dilation: [1, 1], pads: [0; 4], ceil_mode: false, count_include_pad: false };
    let px = [1.0, nan, 3.0, nan, 1.0, 2.0, 1.0, 2.0, nan, inf, 1.0, 2.0, inf, -inf, 0.0, -inf, -inf, -inf];
    let (y, _) = run(&Op::MaxPool(p), &[(&px, &[1, 1, 1, 18])]).unwrap();
    same(&y, &[nan, nan, nan, inf, inf, -inf], "maxpool");
    let (y, _) = run(&Op::AveragePool(p), &[(&px, &[1, 1, 1, 18])]).unwrap();
    same(&y, &[nan, nan, nan, inf, nan, -inf], "avgpool");
    let (y, _) = run(&Op::GlobalMaxPool, &[(&x, &[1, 1, 37])]).unwrap();
    same(&y, &[nan], "global max pool");

    // Softmax: an infinite logit makes the row NaN (inf - inf); -inf logits get probability 0.
    let sm = Op::Softmax { axis: 1, log: false };
    let (y, _) = run(&sm, &[(&[inf, 1.0, 2.0], &[1, 3])]).unwrap();
    same(&y, &[nan, nan, nan], "softmax +inf");
    let (y, _) = run(&sm, &[(&[-inf, 0.0, 0.0], &[1, 3])]).unwrap();
    same(&y, &[0.0, 0.5, 0.5], "softmax -inf");
    let (y, _) = run(&sm, &[(&[nan, 0.0, 0.0], &[1, 3])]).unwrap();
    same(&y, &[nan, nan, nan], "softmax NaN");
}
