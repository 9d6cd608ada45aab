//! Element-wise operators: binary (Add, Sub, Mul, Div, Pow, Max, Min, Sum, PRelu, comparisons)
//! and unary (Relu, Clip, Sigmoid, ...).

use sprig_runtime::{BinaryKind, Op, UnaryKind};

use crate::import::ctx::{Ctx, NodeInfo};
use crate::import::value::{self, BinOp, ConstT, Data, Val};
use crate::import::ImportError;

fn bin_op(op_type: &str) -> BinOp {
    match op_type {
        "Add" | "Sum" => BinOp::Add,
        "Sub" => BinOp::Sub,
        "Mul" => BinOp::Mul,
        "Div" => BinOp::Div,
        "Pow" => BinOp::Pow,
        "Max" => BinOp::Max,
        "Min" => BinOp::Min,
        "PRelu" => BinOp::PRelu,
        "Equal" => BinOp::Equal,
        "Less" => BinOp::Less,
        "Greater" => BinOp::Greater,
        "LessOrEqual" => BinOp::LessOrEqual,
        "GreaterOrEqual" => BinOp::GreaterOrEqual,
        "And" => BinOp::And,
        _ => BinOp::Or,
    }
}

fn runtime_kind(op: BinOp) -> Option<BinaryKind> {
    Some(match op {
        BinOp::Add => BinaryKind::Add,
        BinOp::Sub => BinaryKind::Sub,
        BinOp::Mul => BinaryKind::Mul,
        BinOp::Div => BinaryKind::Div,
        BinOp::Pow => BinaryKind::Pow,
        BinOp::Max => BinaryKind::Max,
        BinOp::Min => BinaryKind::Min,
        BinOp::PRelu => BinaryKind::PRelu,
        _ => return None,
    })
}

/// Binary (and variadic Sum / Max / Min) operators.
pub fn binary(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let op = bin_op(n.op_type);
    let count = n.proto.input.len();
    if count == 0 {
        return Err(n.shape_err("needs at least one input"));
    }
    let variadic = matches!(n.op_type, "Sum" | "Max" | "Min");
    if !variadic && count != 2 {
        return Err(n.shape_err(format!("expects 2 inputs, got {count}")));
    }
    let mut acc = cx.input(n, 0)?;
    for i in 1..count {
        let mut b = cx.input(n, i)?;
        if op == BinOp::PRelu && n.opset < 7 {
            // Before opset 7 a 1-D slope of length C applies per channel (axis 1).
            let (sa, sb) = (cx.shape(&acc), cx.shape(&b));
            if let Val::Const(c) = &b {
                if sb.len() == 1 && sa.len() > 2 && sa[1] == sb[0] {
                    let mut shape = vec![1; sa.len() - 1];
                    shape[0] = sb[0];
                    b = Val::Const(c.reshaped(shape));
                }
            }
        }
        let last = i + 1 == count;
        let out = if last { n.out(0) } else { cx.tmp(n, &format!("acc{i}")) };
        let (sa, sb) = (cx.shape(&acc), cx.shape(&b));
        if value::broadcast_shape(&sa, &sb).is_none() {
            return Err(n.shape_err(format!("shapes {sa:?} and {sb:?} do not broadcast")));
        }
        acc = match (&acc, &b) {
            (Val::Const(ca), Val::Const(cb)) => Val::Const(
                value::binary(ca, cb, op, &out)
                    .ok_or_else(|| n.shape_err("cannot evaluate on constants (integer division by zero or overflow?)"))?,
            ),
            _ => {
                let kind = runtime_kind(op).ok_or_else(|| n.unsupported("only supported on constants"))?;
                if op == BinOp::PRelu {
                    // ONNX PRelu broadcasts the slope to X only (unidirectional).
                    if value::broadcast_shape(&sa, &sb).as_deref() != Some(&sa[..]) {
                        return Err(n.shape_err(format!("slope {sb:?} does not broadcast to {sa:?}")));
                    }
                }
                cx.emit(n, Op::Binary(kind), &[acc.clone(), b], &out)?
            }
        };
    }
    Ok(vec![acc])
}

fn unary_kind(n: &NodeInfo) -> Result<UnaryKind, ImportError> {
    Ok(match n.op_type {
        "Relu" => UnaryKind::Relu,
        "LeakyRelu" => UnaryKind::LeakyRelu { alpha: n.attr_f("alpha", 0.01)? },
        "Sigmoid" => UnaryKind::Sigmoid,
        "Tanh" => UnaryKind::Tanh,
        "HardSigmoid" => UnaryKind::HardSigmoid { alpha: n.attr_f("alpha", 0.2)?, beta: n.attr_f("beta", 0.5)? },
        "HardSwish" => UnaryKind::HardSwish,
        "Erf" => UnaryKind::Erf,
        "Gelu" => match n.attr_s("approximate", "none")?.as_str() {
            "none" => UnaryKind::Gelu { tanh_approx: false },
            "tanh" => UnaryKind::Gelu { tanh_approx: true },
            other => return Err(n.attr_err("approximate", format!("unknown value `{other}`"))),
        },
        "Exp" => UnaryKind::Exp,
        "Log" => UnaryKind::Log,
        "Sqrt" => UnaryKind::Sqrt,
        "Neg" => UnaryKind::Neg,
        "Abs" => UnaryKind::Abs,
        "Reciprocal" => UnaryKind::Reciprocal,
        "Elu" => UnaryKind::Elu { alpha: n.attr_f("alpha", 1.0)? },
        "Softplus" => UnaryKind::Softplus,
        "Floor" => UnaryKind::Floor,
        "Ceil" => UnaryKind::Ceil,
        "Round" => UnaryKind::Round,
        "Sign" => UnaryKind::Sign,
        "Sin" => UnaryKind::Sin,
        "Cos" => UnaryKind::Cos,
        _ => return Err(n.unsupported("only supported on constants")),
    })
}

/// Direct evaluation of simple unary functions on constants (others go through the kernels).
fn eval_const(op_type: &str, c: &ConstT, name: &str) -> Option<ConstT> {
    if let Data::I(v) = &c.data {
        let r: Vec<i64> = match op_type {
            "Neg" => v.iter().map(|x| x.wrapping_neg()).collect(),
            "Abs" => v.iter().map(|x| x.wrapping_abs()).collect(),
            "Relu" => v.iter().map(|&x| x.max(0)).collect(),
            "Not" => v.iter().map(|&x| (x == 0) as i64).collect(),
            "Floor" | "Ceil" | "Round" => v.clone(),
            "Sign" => v.iter().map(|x| x.signum()).collect(),
            _ => return None,
        };
        return Some(ConstT::new(name, c.shape.clone(), Data::I(r)));
    }
    let f: fn(f32) -> f32 = match op_type {
        "Neg" => |x| -x,
        "Abs" => f32::abs,
        "Relu" => |x| x.max(0.0),
        "Sqrt" => f32::sqrt,
        "Exp" => f32::exp,
        "Log" => f32::ln,
        "Reciprocal" => |x| 1.0 / x,
        "Sigmoid" => |x| 1.0 / (1.0 + (-x).exp()),
        "Tanh" => f32::tanh,
        "Floor" => f32::floor,
        "Ceil" => f32::ceil,
        "Not" => |x| (x == 0.0) as i32 as f32,
        _ => return None,
    };
    Some(ConstT::f32(name, c.shape.clone(), c.data.to_f32().into_iter().map(f).collect()))
}

/// Unary operators.
pub fn unary(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    if let Val::Const(c) = &x {
        if let Some(r) = eval_const(n.op_type, c, &n.out(0)) {
            return Ok(vec![Val::Const(r)]);
        }
    }
    let k = unary_kind(n)?;
    Ok(vec![cx.emit(n, Op::Unary(k), &[x], &n.out(0))?])
}

/// Clip: bounds from attributes (opset < 11) or constant inputs (opset >= 11).
pub fn clip(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let (min, max) = if n.opset < 11 {
        (n.attr_f("min", f32::NEG_INFINITY)?, n.attr_f("max", f32::INFINITY)?)
    } else {
        let bound = |i: usize, what: &str, dflt: f32| -> Result<f32, ImportError> {
            if !n.has_input(i) {
                return Ok(dflt);
            }
            let c = cx.const_input(n, i, what)?;
            if c.numel() != 1 {
                return Err(n.shape_err(format!("{what} must be a scalar, got shape {:?}", c.shape)));
            }
            Ok(c.data.get_f64(0) as f32)
        };
        (bound(1, "min", f32::NEG_INFINITY)?, bound(2, "max", f32::INFINITY)?)
    };
    if min.is_nan() || max.is_nan() {
        return Err(n.attr_err("min/max", "NaN bound"));
    }
    if let Val::Const(c) = &x {
        let v = c.data.to_f32().into_iter().map(|v| v.max(min).min(max)).collect();
        return Ok(vec![Val::Const(ConstT::f32(n.out(0), c.shape.clone(), v))]);
    }
    let k = if min == 0.0 && max == f32::INFINITY { UnaryKind::Relu } else { UnaryKind::Clip { min, max } };
    Ok(vec![cx.emit(n, Op::Unary(k), &[x], &n.out(0))?])
}
