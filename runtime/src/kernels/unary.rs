//! Element-wise unary operators (activations and elementary functions, via `libm`).

use super::{has_fn, UNARY_BITS};
use crate::op::{OpError, UnaryKind};
use crate::view::View;

/// Logistic function, without overflow for large `|x|`.
#[inline]
pub(crate) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + libm::expf(-x))
    } else {
        let e = libm::expf(x);
        e / (1.0 + e)
    }
}

/// `ln(1 + e^x)` without overflow for large `x`.
#[inline]
fn softplus(x: f32) -> f32 {
    if x > 0.0 {
        x + libm::log1pf(libm::expf(-x))
    } else {
        libm::log1pf(libm::expf(x))
    }
}

/// Exact GELU: `0.5 x (1 + erf(x / sqrt 2))`.
#[inline]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * core::f32::consts::FRAC_1_SQRT_2))
}

/// Tanh-approximated GELU.
#[inline]
fn gelu_tanh(x: f32) -> f32 {
    // sqrt(2 / pi)
    const K: f32 = 0.797_884_6;
    0.5 * x * (1.0 + libm::tanhf(K * (x + 0.044715 * x * x * x)))
}

/// `out[i] = f(x[i])`; lengths validated by `execute`.
pub(super) fn unary<const OPS: u128>(kind: UnaryKind, x: &View<'_>, out: &mut [f32]) -> Result<(), OpError> {
    match kind {
        // The same definition as the fused activation (NaN and -0 map to +0), so fusing a Relu into
        // its producer never changes a bit.
        UnaryKind::Relu if const { has_fn::<OPS>(UNARY_BITS) } => map(x, out, |v| crate::op::Activation::Relu.apply(v)),
        UnaryKind::Clip { min, max } if const { has_fn::<OPS>(UNARY_BITS + 1) } => map(x, out, |v| {
            if v < min {
                min
            } else if v > max {
                max
            } else {
                v
            }
        }),
        UnaryKind::LeakyRelu { alpha } if const { has_fn::<OPS>(UNARY_BITS + 2) } => map(x, out, |v| if v < 0.0 { alpha * v } else { v }),
        UnaryKind::Sigmoid if const { has_fn::<OPS>(UNARY_BITS + 3) } => map(x, out, sigmoid),
        UnaryKind::Tanh if const { has_fn::<OPS>(UNARY_BITS + 4) } => map(x, out, libm::tanhf),
        UnaryKind::HardSigmoid { alpha, beta } if const { has_fn::<OPS>(UNARY_BITS + 5) } => map(x, out, |v| clamp01(alpha * v + beta)),
        UnaryKind::HardSwish if const { has_fn::<OPS>(UNARY_BITS + 6) } => map(x, out, |v| v * clamp01(v / 6.0 + 0.5)),
        UnaryKind::Erf if const { has_fn::<OPS>(UNARY_BITS + 7) } => map(x, out, libm::erff),
        UnaryKind::Gelu { tanh_approx: false } if const { has_fn::<OPS>(UNARY_BITS + 8) } => map(x, out, gelu),
        UnaryKind::Gelu { tanh_approx: true } if const { has_fn::<OPS>(UNARY_BITS + 8) } => map(x, out, gelu_tanh),
        UnaryKind::Exp if const { has_fn::<OPS>(UNARY_BITS + 9) } => map(x, out, libm::expf),
        UnaryKind::Log if const { has_fn::<OPS>(UNARY_BITS + 10) } => map(x, out, libm::logf),
        UnaryKind::Sqrt if const { has_fn::<OPS>(UNARY_BITS + 11) } => map(x, out, libm::sqrtf),
        UnaryKind::Neg if const { has_fn::<OPS>(UNARY_BITS + 12) } => map(x, out, |v| -v),
        UnaryKind::Abs if const { has_fn::<OPS>(UNARY_BITS + 13) } => map(x, out, libm::fabsf),
        UnaryKind::Reciprocal if const { has_fn::<OPS>(UNARY_BITS + 14) } => map(x, out, |v| 1.0 / v),
        UnaryKind::Elu { alpha } if const { has_fn::<OPS>(UNARY_BITS + 15) } => {
            map(x, out, |v| if v < 0.0 { alpha * libm::expm1f(v) } else { v })
        }
        UnaryKind::Softplus if const { has_fn::<OPS>(UNARY_BITS + 16) } => map(x, out, softplus),
        UnaryKind::Silu if const { has_fn::<OPS>(UNARY_BITS + 17) } => map(x, out, |v| v * sigmoid(v)),
        UnaryKind::Floor if const { has_fn::<OPS>(UNARY_BITS + 18) } => map(x, out, libm::floorf),
        UnaryKind::Ceil if const { has_fn::<OPS>(UNARY_BITS + 19) } => map(x, out, libm::ceilf),
        UnaryKind::Round if const { has_fn::<OPS>(UNARY_BITS + 20) } => map(x, out, round_half_even),
        UnaryKind::Sign if const { has_fn::<OPS>(UNARY_BITS + 21) } => map(x, out, sign),
        UnaryKind::Sin if const { has_fn::<OPS>(UNARY_BITS + 22) } => map(x, out, libm::sinf),
        UnaryKind::Cos if const { has_fn::<OPS>(UNARY_BITS + 23) } => map(x, out, libm::cosf),
        UnaryKind::QuantizeDequantize { scale, min, max } if const { has_fn::<OPS>(UNARY_BITS + 24) } => {
            #[cfg(target_arch = "x86_64")]
            if let Some(s) = x.as_f32() {
                if super::x86::quantize_dequantize(s, out, scale, min, max) {
                    return Ok(());
                }
            }
            map(x, out, |v| quantize_dequantize(v, scale, min, max))
        }
        _ => return Err(OpError::UnknownKind(crate::op::kind::UNARY)),
    }
    Ok(())
}

/// Nearest integer with ties to even (ONNX Round, numpy `round`), the sign of zero kept; NaN and
/// infinities unchanged. Branch-free, so the loop over a tensor vectorizes (quantized models run
/// one Round per activation).
#[inline(always)]
fn round_half_even(v: f32) -> f32 {
    // Every f32 of magnitude >= 2^23 is an integer. Below it, `|v| + 2^23` lies in [2^23, 2^24),
    // where the f32 spacing is 1: the addition rounds |v| to an integer, ties to even (2^23 is
    // even), in the default rounding mode, and subtracting 2^23 again is exact.
    const M: f32 = 8_388_608.0;
    let bits = v.to_bits();
    let a = f32::from_bits(bits & 0x7fff_ffff);
    let r = f32::from_bits(((a + M) - M).to_bits() | (bits & 0x8000_0000));
    if a < M {
        r
    } else {
        v
    }
}

/// `clip(round_half_even(v / scale), min, max) * scale` with the Clip kernel's comparisons (NaN
/// passes through), so it equals Div, Round, Clip and Mul in turn bit for bit.
#[inline(always)]
pub(super) fn quantize_dequantize(v: f32, scale: f32, min: f32, max: f32) -> f32 {
    let r = round_half_even(v / scale);
    (if r < min {
        min
    } else if r > max {
        max
    } else {
        r
    }) * scale
}

/// `-1`, `0` or `1` by the sign of `v`; NaN stays NaN, `-0` becomes `0`.
#[inline]
fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else if v.is_nan() {
        v
    } else {
        0.0
    }
}

/// `max(0, min(1, v))`, NaN propagating.
#[inline]
fn clamp01(v: f32) -> f32 {
    v.clamp(0.0, 1.0)
}

#[inline]
fn map<F: Fn(f32) -> f32>(x: &View<'_>, out: &mut [f32], f: F) {
    match x.as_f32() {
        Some(s) => {
            for (o, v) in out.iter_mut().zip(s) {
                *o = f(*v);
            }
        }
        None => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = f(x.get(i));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::Operand;
    use crate::op::{Op, UnaryKind};
    use crate::view::View;

    /// erf in f64: Maclaurin series for |x| < 3, asymptotic erfc expansion beyond.
    fn erf64(x: f64) -> f64 {
        if x.abs() >= 3.0 {
            let a = x.abs();
            let t = 1.0 / (2.0 * a * a);
            let erfc = (-a * a).exp() / (a * core::f64::consts::PI.sqrt()) * (1.0 - t + 3.0 * t * t - 15.0 * t * t * t);
            return x.signum() * (1.0 - erfc);
        }
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / core::f64::consts::PI.sqrt()
    }

    fn reference(k: UnaryKind, x: f64) -> f64 {
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        match k {
            UnaryKind::Relu => {
                if x > 0.0 {
                    x
                } else {
                    0.0
                }
            }
            UnaryKind::Clip { min, max } => x.max(min as f64).min(max as f64),
            UnaryKind::QuantizeDequantize { scale, min, max } => {
                let s = scale as f64;
                let q = (x / s).round_ties_even();
                q.max(min as f64).min(max as f64) * s
            }
            UnaryKind::LeakyRelu { alpha } => {
                if x < 0.0 {
                    alpha as f64 * x
                } else {
                    x
                }
            }
            UnaryKind::Sigmoid => sig(x),
            UnaryKind::Tanh => x.tanh(),
            UnaryKind::HardSigmoid { alpha, beta } => (alpha as f64 * x + beta as f64).clamp(0.0, 1.0),
            UnaryKind::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            UnaryKind::Erf => erf64(x),
            UnaryKind::Gelu { tanh_approx: false } => 0.5 * x * (1.0 + erf64(x / 2f64.sqrt())),
            UnaryKind::Gelu { tanh_approx: true } => {
                0.5 * x * (1.0 + ((2.0 / core::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
            }
            UnaryKind::Exp => x.exp(),
            UnaryKind::Log => x.ln(),
            UnaryKind::Sqrt => x.sqrt(),
            UnaryKind::Neg => -x,
            UnaryKind::Abs => x.abs(),
            UnaryKind::Reciprocal => 1.0 / x,
            UnaryKind::Elu { alpha } => {
                if x < 0.0 {
                    alpha as f64 * (x.exp() - 1.0)
                } else {
                    x
                }
            }
            UnaryKind::Softplus => (1.0 + x.exp()).ln(),
            UnaryKind::Silu => x * sig(x),
            UnaryKind::Floor => x.floor(),
            UnaryKind::Ceil => x.ceil(),
            UnaryKind::Round => {
                let f = x.floor();
                match (x - f).partial_cmp(&0.5) {
                    Some(core::cmp::Ordering::Less) => f,
                    Some(core::cmp::Ordering::Greater) => f + 1.0,
                    _ if f % 2.0 == 0.0 => f,
                    _ => f + 1.0,
                }
            }
            UnaryKind::Sign => {
                if x.is_nan() {
                    x
                } else if x == 0.0 {
                    0.0
                } else {
                    x.signum()
                }
            }
            UnaryKind::Sin => x.sin(),
            UnaryKind::Cos => x.cos(),
        }
    }

    const KINDS: [UnaryKind; 26] = [
        UnaryKind::Relu,
        UnaryKind::Clip { min: -0.5, max: 2.0 },
        UnaryKind::QuantizeDequantize { scale: 0.25, min: -20.0, max: 11.0 },
        UnaryKind::LeakyRelu { alpha: 0.1 },
        UnaryKind::Sigmoid,
        UnaryKind::Tanh,
        UnaryKind::HardSigmoid { alpha: 0.2, beta: 0.5 },
        UnaryKind::HardSwish,
        UnaryKind::Erf,
        UnaryKind::Gelu { tanh_approx: false },
        UnaryKind::Gelu { tanh_approx: true },
        UnaryKind::Exp,
        UnaryKind::Log,
        UnaryKind::Sqrt,
        UnaryKind::Neg,
        UnaryKind::Abs,
        UnaryKind::Reciprocal,
        UnaryKind::Elu { alpha: 1.5 },
        UnaryKind::Softplus,
        UnaryKind::Silu,
        UnaryKind::Floor,
        UnaryKind::Ceil,
        UnaryKind::Round,
        UnaryKind::Sign,
        UnaryKind::Sin,
        UnaryKind::Cos,
    ];

    #[test]
    fn every_kind_matches_f64_reference() {
        let mut x: Vec<f32> = (-400..=400).map(|i| i as f32 * 0.02).collect();
        x.extend([-30.0, -12.0, 12.0, 30.0, 80.0, -80.0, 1e-3, -1e-3]);
        for k in KINDS {
            let xs: Vec<f32> = match k {
                UnaryKind::Log | UnaryKind::Sqrt => x.iter().map(|v| v.abs() + 1e-3).collect(),
                UnaryKind::Reciprocal => x.iter().filter(|v| v.abs() > 1e-2).copied().collect(),
                _ => x.clone(),
            };
            let (got, _) = run(&Op::Unary(k), &[(&xs, &[xs.len()])]).unwrap();
            let want: Vec<f64> = xs.iter().map(|&v| reference(k, v as f64)).collect();
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                let err = (g as f64 - w).abs();
                assert!(err <= 4e-6 * w.abs().max(1.0) || (w.is_infinite() && g as f64 == w), "{k:?} x={} got {g} want {w}", xs[i]);
            }
            // Non-native view.
            let b = f32le(&xs);
            let (g2, _) = run_ops(&Op::Unary(k), &[Operand { view: View::F32Le(&b), shape: sh(&[xs.len()]) }]).unwrap();
            assert_eq!(g2, got);
        }
    }

    proptest::proptest! {
        /// The branch-free rounding equals std's ties-to-even rounding on every f32 bit
        /// pattern drawn (NaN payloads aside), and on every half-integer tie near zero.
        #[test]
        fn round_half_even_equals_std(bits in proptest::prelude::any::<u32>(), k in -100_000i32..100_000) {
            let v = f32::from_bits(bits);
            let (got, want) = (super::round_half_even(v), v.round_ties_even());
            proptest::prop_assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{v:e}: {got} vs {want}");
            let tie = k as f32 + 0.5;
            proptest::prop_assert_eq!(super::round_half_even(tie).to_bits(), tie.round_ties_even().to_bits());
        }
    }

    proptest::proptest! {
        /// QuantizeDequantize equals Div, Round, Clip and Mul run one after another, bit for bit
        /// (ties, saturation, NaN and infinities included).
        #[test]
        fn quantize_dequantize_equals_the_chain(
            xs in proptest::collection::vec(-1000.0f32..1000.0, 1..40),
            ties in proptest::collection::vec(-300i32..300, 1..10),
            exp in -12i32..4,
            frac in 1.0f32..2.0,
            zp in -128i32..=127,
        ) {
            let scale = frac * (2f32).powi(exp);
            let (min, max) = ((-128 - zp) as f32, (127 - zp) as f32);
            let mut x = xs;
            x.extend(ties.iter().map(|&k| (k as f32 + 0.5) * scale));
            x.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0]);
            let n = [x.len()];
            let (fused, _) = run(&Op::Unary(UnaryKind::QuantizeDequantize { scale, min, max }), &[(&x, &n)]).unwrap();
            let s = vec![scale];
            let (d, _) = run(&Op::Binary(crate::op::BinaryKind::Div), &[(&x, &n), (&s, &[1])]).unwrap();
            let (r, _) = run(&Op::Unary(UnaryKind::Round), &[(&d, &n)]).unwrap();
            let (c, _) = run(&Op::Unary(UnaryKind::Clip { min, max }), &[(&r, &n)]).unwrap();
            let (y, _) = run(&Op::Binary(crate::op::BinaryKind::Mul), &[(&c, &n), (&s, &[1])]).unwrap();
            for (i, (a, b)) in fused.iter().zip(&y).enumerate() {
                proptest::prop_assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "x = {}: {a} vs {b}", x[i]);
            }
        }
    }

    #[test]
    fn round_halves_to_even_and_sign_of_specials() {
        let x = [-2.5f32, -1.5, -0.5, 0.5, 1.5, 2.5, 0.499_999_97, -3.7, 8_388_609.0, 1e30, -0.0, f32::NAN, f32::INFINITY];
        let (y, _) = run(&Op::Unary(UnaryKind::Round), &[(&x, &[x.len()])]).unwrap();
        let want = [-2.0, -2.0, -0.0, 0.0, 2.0, 2.0, 0.0, -4.0, 8_388_609.0, 1e30f32 as f64, -0.0, f64::NAN, f64::INFINITY];
        assert_close(&y, &want, 0.0);
        let (y, _) = run(&Op::Unary(UnaryKind::Sign), &[(&x, &[x.len()])]).unwrap();
        let want = [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0, 1.0, 0.0, f64::NAN, 1.0];
        assert_close(&y, &want, 0.0);
        for k in [UnaryKind::Floor, UnaryKind::Ceil] {
            let (y, _) = run(&Op::Unary(k), &[(&x, &[x.len()])]).unwrap();
            let want: Vec<f64> = x.iter().map(|&v| if k == UnaryKind::Floor { v.floor() } else { v.ceil() } as f64).collect();
            assert_close(&y, &want, 0.0);
        }
    }

    #[test]
    fn erf_known_values() {
        let x = [0.0f32, 0.5, 1.0, 2.0, -0.3, 3.5, -6.0];
        let want = [0.0, 0.5204998778130465, 0.8427007929497149, 0.9953222650189527, -0.3286267594591112, 0.9999992569016276, -1.0];
        let (y, _) = run(&Op::Unary(UnaryKind::Erf), &[(&x, &[7])]).unwrap();
        assert_close(&y, &want, 1e-6);
    }
}
