//! Per-operator lowering from ONNX nodes to runtime operators (one file per operator family).

mod conv;
mod elementwise;
mod gemm;
mod layout;
mod norm;
mod pad;
mod pool;
mod quant;
mod reduce;
mod reshape;
mod resize;
mod shape_arith;
mod slice;
mod softmax;

use super::ctx::{Ctx, NodeInfo};
use super::value::Val;
use super::ImportError;

/// Lowers one ONNX node; returns the values of its outputs in order.
pub type Handler = fn(&mut Ctx, &NodeInfo) -> Result<Vec<Val>, ImportError>;

/// The handler of an ONNX op type (default domain).
pub fn handler(op_type: &str) -> Option<Handler> {
    Some(match op_type {
        "Conv" => conv::conv,
        "Gemm" => gemm::gemm,
        "MatMul" => gemm::matmul,
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Max" | "Min" | "Sum" | "PRelu" => elementwise::binary,
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" => elementwise::binary,
        "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" | "HardSigmoid" | "HardSwish" | "Erf" | "Gelu" | "Exp" | "Log" | "Sqrt" | "Neg"
        | "Abs" | "Reciprocal" | "Elu" | "Softplus" | "Not" | "Floor" | "Ceil" | "Round" | "Sign" | "Sin" | "Cos" => elementwise::unary,
        "Clip" => elementwise::clip,
        "Softmax" | "LogSoftmax" => softmax::softmax,
        "MaxPool" | "AveragePool" => pool::pool,
        "GlobalAveragePool" | "GlobalMaxPool" => pool::global_pool,
        "BatchNormalization" => norm::batch_norm,
        "LayerNormalization" => norm::layer_norm,
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" => reduce::reduce,
        "Flatten" => reshape::flatten,
        "Reshape" => reshape::reshape,
        "Squeeze" => reshape::squeeze,
        "Unsqueeze" => reshape::unsqueeze,
        "Identity" | "Dropout" => reshape::identity,
        "Transpose" => layout::transpose,
        "Concat" => layout::concat,
        "Expand" => layout::expand,
        "Pad" => pad::pad,
        "Resize" | "Upsample" => resize::resize,
        "Cast" => shape_arith::cast,
        "CastLike" => shape_arith::cast_like,
        "Constant" => shape_arith::constant,
        "ConstantOfShape" => shape_arith::constant_of_shape,
        "Shape" => shape_arith::shape,
        "Size" => shape_arith::size,
        "Gather" => shape_arith::gather,
        "Slice" => slice::slice,
        "Split" => slice::split,
        "Range" => shape_arith::range,
        "Where" => shape_arith::where_,
        "QuantizeLinear" => quant::quantize_linear,
        "DequantizeLinear" => quant::dequantize_linear,
        _ => return None,
    })
}

/// Reads an axes list from attribute `axes` (older opsets) or input `input_idx` (newer), which
/// must then be constant. `None` when neither is given.
pub fn axes_attr_or_input(cx: &Ctx, n: &NodeInfo, input_idx: usize) -> Result<Option<Vec<i64>>, ImportError> {
    if let Some(a) = n.attr_ints("axes")? {
        return Ok(Some(a));
    }
    if n.has_input(input_idx) {
        let c = cx.const_input(n, input_idx, "axes")?;
        return Ok(Some(c.data.to_i64()));
    }
    Ok(None)
}

/// Normalizes a list of possibly negative axes for rank `r` (sorted, deduplicated).
pub fn norm_axes(n: &NodeInfo, attr: &str, axes: &[i64], r: usize) -> Result<Vec<usize>, ImportError> {
    let mut v = Vec::with_capacity(axes.len());
    for &a in axes {
        v.push(super::value::norm_axis(a, r).ok_or_else(|| n.attr_err(attr, format!("axis {a} out of range for rank {r}")))?);
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// A runtime shape, or an unsupported-node error when the rank is too large.
pub fn rt_shape(n: &NodeInfo, s: &[usize]) -> Result<sprig_runtime::Shape, ImportError> {
    sprig_runtime::Shape::new(s).ok_or_else(|| n.unsupported(format!("shape {s:?} exceeds the runtime's rank {}", sprig_runtime::MAX_RANK)))
}

/// Emits a Reshape (or reshapes a constant) to `shape`.
pub fn reshape_to(cx: &mut Ctx, n: &NodeInfo, x: Val, shape: Vec<usize>, out: &str) -> Result<Val, ImportError> {
    let have = cx.shape(&x);
    if Some(have.iter().product::<usize>()) != crate::import::capped_numel(&shape) {
        return Err(n.shape_err(format!("cannot reshape {have:?} to {shape:?}")));
    }
    match x {
        Val::Const(c) => Ok(Val::Const(c.reshaped(shape))),
        x => {
            let s = rt_shape(n, &shape)?;
            cx.emit(n, sprig_runtime::Op::Reshape { shape: s }, &[x], out)
        }
    }
}
