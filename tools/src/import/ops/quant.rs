//! QuantizeLinear / DequantizeLinear (QDQ models, e.g. the int8 exports of TFLite models).
//!
//! Guarantees:
//! - DequantizeLinear of a constant (int8 / uint8 weights, int32 biases) folds to the f32 constant
//!   `f32(x − zp) · scale`, the value onnxruntime computes, per tensor or per axis.
//! - On activations both ops are emulated exactly in f32: integer tensors are carried as f32 holding
//!   integers (exact up to 2^24, so int8 / uint8 / int16 / uint16 only), `QuantizeLinear` is
//!   `clip(round_half_even(x / scale) + zp, qmin, qmax)` with an IEEE division, and a
//!   `DequantizeLinear` reading a `QuantizeLinear` of the same scale and zero point multiplies the
//!   clipped, rounded value by the scale (`(q − zp) · s` with `q − zp` formed before the zero point is
//!   added; the intermediate Add is removed by dead-node elimination). With one scale the pair is
//!   the runtime's fused `QuantizeDequantize` (one pass, bit-identical to the four ops).

use sprig_runtime::{BinaryKind, Op, UnaryKind};
use tract_onnx::pb::tensor_proto::DataType;

use crate::import::ctx::{Ctx, NodeInfo, QdqRecord};
use crate::import::value::{ConstT, Data, Val};
use crate::import::ImportError;

/// Integer range of a quantized element type, or `None` for types f32 cannot carry exactly.
fn qrange(elem: i32) -> Option<(i64, i64)> {
    match DataType::try_from(elem).ok()? {
        DataType::Int8 => Some((-128, 127)),
        DataType::Uint8 => Some((0, 255)),
        DataType::Int16 => Some((-32768, 32767)),
        DataType::Uint16 => Some((0, 65535)),
        _ => None,
    }
}

/// Scale and zero point of one Q / DQ node, validated and laid out for broadcasting against an
/// input of shape `xs`.
struct QParams {
    scale: Vec<f32>,
    zp: Vec<i64>,
    /// Broadcast shape of `scale` / `zp` against the input (`[]` per tensor).
    bshape: Vec<usize>,
    /// Axis of per-axis parameters (`None` per tensor).
    axis: Option<usize>,
}

impl QParams {
    /// Reads inputs 1 (scale) and 2 (zero point, optional) of `n` for an input of shape `xs`.
    fn read(cx: &Ctx, n: &NodeInfo, xs: &[usize]) -> Result<(QParams, Option<i32>), ImportError> {
        if n.attr_i("block_size", 0)? != 0 {
            return Err(n.unsupported("blocked quantization (block_size ≠ 0)"));
        }
        let s = cx.const_input(n, 1, "scale")?;
        let scale = s.data.to_f32();
        if scale.is_empty() || scale.iter().any(|v| !v.is_finite() || *v <= 0.0) {
            return Err(n.shape_err(format!("scale `{}` must hold finite values > 0", s.name)));
        }
        let (zp, zp_elem) = match cx.opt_input(n, 2)? {
            None => (vec![0; scale.len()], None),
            Some(Val::Const(z)) => {
                if !z.data.is_int() {
                    return Err(n.unsupported(format!("zero point `{}` of a float type (float8 quantization)", z.name)));
                }
                if z.numel() != s.numel() {
                    return Err(n.shape_err(format!("zero point `{}` has {} values, scale `{}` {}", z.name, z.numel(), s.name, s.numel())));
                }
                (z.data.to_i64(), Some(z.elem))
            }
            Some(_) => return Err(n.unsupported("input 2 (zero point) must be a constant")),
        };
        let per_axis = s.shape.len() == 1 && scale.len() > 1;
        if s.shape.len() > 1 || (s.shape.len() == 1 && !per_axis && s.shape[0] != 1) {
            return Err(n.unsupported(format!("scale of shape {:?} (only scalars and 1-D per-axis scales)", s.shape)));
        }
        let (bshape, axis) = if per_axis {
            let r = xs.len() as i64;
            let a = n.attr_i("axis", 1)?;
            let a = if a < 0 { a + r } else { a };
            if !(0..r).contains(&a) {
                return Err(n.attr_err("axis", format!("{} out of range for rank {r}", n.attr_i("axis", 1)?)));
            }
            let a = a as usize;
            if xs[a] != scale.len() {
                return Err(n.shape_err(format!("{} per-axis scales for axis {a} of size {}", scale.len(), xs[a])));
            }
            let mut b = vec![1; xs.len()];
            b[a] = scale.len();
            (b, Some(a))
        } else {
            (Vec::new(), None)
        };
        Ok((QParams { scale, zp, bshape, axis }, zp_elem))
    }

    /// Index into `scale` / `zp` of element `i` of an input of shape `xs`.
    fn index(&self, xs: &[usize], i: usize) -> usize {
        match self.axis {
            None => 0,
            Some(a) => (i / xs[a + 1..].iter().product::<usize>()) % xs[a],
        }
    }

    fn scale_val(&self, name: String) -> Val {
        Val::Const(ConstT::f32(name, self.bshape.clone(), self.scale.clone()))
    }

    fn zp_val(&self, name: String) -> Val {
        Val::Const(ConstT::f32(name, self.bshape.clone(), self.zp.iter().map(|&z| z as f32).collect()))
    }

    /// The single zero point when every channel shares it.
    fn uniform_zp(&self) -> Option<i64> {
        self.zp.iter().all(|&z| z == self.zp[0]).then_some(self.zp[0])
    }
}

/// QuantizeLinear.
pub fn quantize_linear(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let xs = cx.shape(&x);
    let (p, zp_elem) = QParams::read(cx, n, &xs)?;
    let elem = match zp_elem {
        Some(e) => e,
        None => match n.attr_i("output_dtype", 0)? {
            0 => DataType::Uint8 as i32,
            t => t as i32,
        },
    };
    let (qmin, qmax) = qrange(elem).ok_or_else(|| {
        n.unsupported(format!(
            "quantization to {} (sprig carries integers in f32: int8, uint8, int16 and uint16 only)",
            crate::import::proto::type_name(elem)
        ))
    })?;
    let out = n.out(0);
    if let Val::Const(c) = &x {
        let v = c.data.to_f32();
        let q = v
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let k = p.index(&xs, i);
                ((x / p.scale[k]).round_ties_even() as i64 + p.zp[k]).clamp(qmin, qmax)
            })
            .collect();
        return Ok(vec![Val::Const(ConstT { elem, ..ConstT::new(out, xs, Data::I(q)) })]);
    }
    let d = cx.emit(n, Op::Binary(BinaryKind::Div), &[x.clone(), p.scale_val(cx.tmp(n, "scale"))], &cx.tmp(n, "div"))?;
    let r = cx.emit(n, Op::Unary(UnaryKind::Round), &[d], &cx.tmp(n, "round"))?;
    let q = match p.uniform_zp() {
        Some(z) => {
            let range = ((qmin - z) as f32, (qmax - z) as f32);
            let clip = UnaryKind::Clip { min: range.0, max: range.1 };
            let rel_name = if z == 0 { out.clone() } else { cx.tmp(n, "rel") };
            let rel = cx.emit(n, Op::Unary(clip), &[r], &rel_name)?;
            cx.record_qdq(&n.proto.output[0], QdqRecord { src: x, range, rel: rel.clone(), scale: p.scale.clone(), zp: z, axis: p.axis });
            if z == 0 {
                rel
            } else {
                cx.emit(n, Op::Binary(BinaryKind::Add), &[rel, p.zp_val(cx.tmp(n, "zero_point"))], &out)?
            }
        }
        None => {
            let a = cx.emit(n, Op::Binary(BinaryKind::Add), &[r, p.zp_val(cx.tmp(n, "zero_point"))], &cx.tmp(n, "shifted"))?;
            cx.emit(n, Op::Unary(UnaryKind::Clip { min: qmin as f32, max: qmax as f32 }), &[a], &out)?
        }
    };
    Ok(vec![q])
}

/// DequantizeLinear.
pub fn dequantize_linear(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let xs = cx.shape(&x);
    let (p, _) = QParams::read(cx, n, &xs)?;
    let out = n.out(0);
    if let Val::Const(c) = &x {
        if !c.data.is_int() {
            return Err(n.unsupported(format!("input `{}` of a float type (float8 dequantization)", c.name)));
        }
        let v = c.data.to_i64();
        let y = v
            .iter()
            .enumerate()
            .map(|(i, &q)| {
                let k = p.index(&xs, i);
                (q - p.zp[k]) as f32 * p.scale[k]
            })
            .collect();
        return Ok(vec![Val::Const(ConstT::f32(out, xs, y))]);
    }
    let src = &n.proto.input[0];
    if let Some(rec) = cx.qdq_record(src) {
        if rec.scale == p.scale && p.uniform_zp() == Some(rec.zp) && rec.axis == p.axis {
            if let [scale] = rec.scale[..] {
                // One pass instead of four; the Div, Round and Clip above go unused and are
                // removed unless something else reads the quantized value.
                let (src, (min, max)) = (rec.src.clone(), rec.range);
                return Ok(vec![cx.emit(n, Op::Unary(UnaryKind::QuantizeDequantize { scale, min, max }), &[src], &out)?]);
            }
            let rel = rec.rel.clone();
            return Ok(vec![cx.emit(n, Op::Binary(BinaryKind::Mul), &[rel, p.scale_val(cx.tmp(n, "scale"))], &out)?]);
        }
    }
    let t = if p.zp.iter().all(|&z| z == 0) {
        x
    } else {
        cx.emit(n, Op::Binary(BinaryKind::Sub), &[x, p.zp_val(cx.tmp(n, "zero_point"))], &cx.tmp(n, "centred"))?
    };
    Ok(vec![cx.emit(n, Op::Binary(BinaryKind::Mul), &[t, p.scale_val(cx.tmp(n, "scale"))], &out)?])
}
