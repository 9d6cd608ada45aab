//! Softmax / LogSoftmax, including the opset < 13 "flatten at axis" semantics.

use sprig_runtime::Op;

use super::reshape_to;
use crate::import::ctx::{Ctx, NodeInfo};
use crate::import::value::{norm_axis, Val};
use crate::import::ImportError;

/// Softmax / LogSoftmax.
pub fn softmax(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let log = n.op_type == "LogSoftmax";
    let s = cx.shape(&x);
    let r = s.len();
    if r == 0 {
        return Err(n.shape_err("scalar input"));
    }
    let default_axis = if n.opset < 13 { 1 } else { -1 };
    let a = n.attr_i("axis", default_axis)?;
    let axis = norm_axis(a, r).ok_or_else(|| n.attr_err("axis", format!("{a} out of range for rank {r}")))?;
    if n.opset >= 13 {
        return Ok(vec![cx.emit(n, Op::Softmax { axis: axis as u8, log }, &[x], &n.out(0))?]);
    }
    // Opset < 13: the input is viewed as [prod(..axis), prod(axis..)] and normalised per row.
    let last = (axis..r - 1).all(|i| s[i] == 1);
    if last {
        return Ok(vec![cx.emit(n, Op::Softmax { axis: (r - 1) as u8, log }, &[x], &n.out(0))?]);
    }
    // Not a single-axis softmax: reshape to 2-D, normalise the second axis, reshape back.
    let rows: usize = s[..axis].iter().product();
    let cols: usize = s[axis..].iter().product();
    let flat = reshape_to(cx, n, x, vec![rows, cols], &cx.tmp(n, "flat"))?;
    let y = cx.emit(n, Op::Softmax { axis: 1, log }, &[flat], &cx.tmp(n, "softmax2d"))?;
    Ok(vec![reshape_to(cx, n, y, s, &n.out(0))?])
}
