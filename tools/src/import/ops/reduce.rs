//! ReduceMean / ReduceSum / ReduceMax / ReduceMin.

use sprig_runtime::{Op, ReduceKind};

use super::{axes_attr_or_input, norm_axes};
use crate::import::ctx::{Ctx, NodeInfo};
use crate::import::value::Val;
use crate::import::ImportError;

/// Reductions; axes from the attribute (older opsets) or the constant second input.
pub fn reduce(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let r = cx.shape(&x).len();
    let kind = match n.op_type {
        "ReduceMean" => ReduceKind::Mean,
        "ReduceSum" => ReduceKind::Sum,
        "ReduceMax" => ReduceKind::Max,
        _ => ReduceKind::Min,
    };
    let keepdims = n.attr_i("keepdims", 1)? != 0;
    let noop = n.attr_i("noop_with_empty_axes", 0)? != 0;
    let axes = axes_attr_or_input(cx, n, 1)?.unwrap_or_default();
    let axes = if axes.is_empty() {
        if noop {
            return Ok(vec![x]);
        }
        (0..r).collect()
    } else {
        norm_axes(n, "axes", &axes, r)?
    };
    if r > sprig_runtime::MAX_RANK {
        return Err(n.unsupported(format!("rank {r} > {}", sprig_runtime::MAX_RANK)));
    }
    let mask = axes.iter().fold(0u8, |m, &a| m | (1 << a));
    Ok(vec![cx.emit(n, Op::Reduce { kind, axes: mask, keepdims }, &[x], &n.out(0))?])
}
