//! Helpers shared by the kernel tests (host only; may allocate).

extern crate std;

pub use std::vec;
pub use std::vec::Vec;

use super::{execute, Operand};
use crate::op::{Op, OpError};
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
