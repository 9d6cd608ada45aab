//! Flatten, Reshape, Squeeze, Unsqueeze (all → runtime Reshape), Identity and Dropout (vanish).

use super::{axes_attr_or_input, norm_axes, reshape_to};
use crate::import::ctx::{Ctx, NodeInfo};
use crate::import::value::{norm_axis, Val};
use crate::import::ImportError;

/// Flatten to `[prod(..axis), prod(axis..)]`.
pub fn flatten(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let s = cx.shape(&x);
    let a = n.attr_i("axis", 1)?;
    let axis = if a == s.len() as i64 {
        s.len()
    } else {
        norm_axis(a, s.len()).ok_or_else(|| n.attr_err("axis", format!("{a} out of range for rank {}", s.len())))?
    };
    let shape = vec![s[..axis].iter().product(), s[axis..].iter().product()];
    Ok(vec![reshape_to(cx, n, x, shape, &n.out(0))?])
}

/// Resolves an ONNX Reshape target (0 copies the input dim unless `allowzero`, -1 is inferred).
pub fn resolve_reshape(n: &NodeInfo, input: &[usize], target: &[i64], allowzero: bool) -> Result<Vec<usize>, ImportError> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => {
                out.push(*input.get(i).ok_or_else(|| n.shape_err(format!("shape {target:?}: 0 at axis {i} beyond the input rank")))?)
            }
            d if d >= 0 => out.push(d as usize),
            _ => return Err(n.shape_err(format!("invalid target shape {target:?}"))),
        }
    }
    let too_big = || n.shape_err(format!("target shape {target:?} has more elements than the limit of 2^28"));
    if let Some(i) = infer {
        let rest = crate::import::capped_numel(&out).ok_or_else(too_big)?;
        if rest == 0 || !total.is_multiple_of(rest) {
            return Err(n.shape_err(format!("cannot reshape {input:?} to {target:?}")));
        }
        out[i] = total / rest;
    }
    if crate::import::capped_numel(&out).ok_or_else(too_big)? != total {
        return Err(n.shape_err(format!("cannot reshape {input:?} ({total} elements) to {target:?}")));
    }
    Ok(out)
}

/// Reshape with the target from the constant second input (or the `shape` attribute before opset 5).
pub fn reshape(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let target = if n.has_input(1) {
        cx.const_input(n, 1, "shape")?.data.to_i64()
    } else {
        n.attr_ints("shape")?.ok_or_else(|| n.attr_err("shape", "required (no shape input)"))?
    };
    let allowzero = n.attr_i("allowzero", 0)? != 0;
    let s = cx.shape(&x);
    let shape = resolve_reshape(n, &s, &target, allowzero)?;
    Ok(vec![reshape_to(cx, n, x, shape, &n.out(0))?])
}

/// Squeeze: removes the given axes (or every size-1 axis).
pub fn squeeze(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let s = cx.shape(&x);
    let axes = match axes_attr_or_input(cx, n, 1)? {
        Some(a) => norm_axes(n, "axes", &a, s.len())?,
        None => (0..s.len()).filter(|&i| s[i] == 1).collect(),
    };
    for &a in &axes {
        if s[a] != 1 {
            return Err(n.shape_err(format!("cannot squeeze axis {a} of size {} in {s:?}", s[a])));
        }
    }
    let shape: Vec<usize> = (0..s.len()).filter(|i| !axes.contains(i)).map(|i| s[i]).collect();
    Ok(vec![reshape_to(cx, n, x, shape, &n.out(0))?])
}

/// Unsqueeze: inserts size-1 axes (axes relative to the output rank).
pub fn unsqueeze(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let s = cx.shape(&x);
    let axes = axes_attr_or_input(cx, n, 1)?.ok_or_else(|| n.attr_err("axes", "required"))?;
    let r = s.len() + axes.len();
    let axes = norm_axes(n, "axes", &axes, r)?;
    if axes.len() + s.len() != r {
        return Err(n.attr_err("axes", "duplicate axes"));
    }
    let mut it = s.iter();
    let shape: Vec<usize> = (0..r).map(|i| if axes.contains(&i) { 1 } else { *it.next().unwrap_or(&1) }).collect();
    Ok(vec![reshape_to(cx, n, x, shape, &n.out(0))?])
}

/// Identity and inference-mode Dropout: the output is the input.
pub fn identity(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    if n.op_type == "Dropout" {
        if cx.output_used(n, 1) {
            return Err(n.unsupported("the mask output is used"));
        }
        if n.has_input(2) {
            if let Val::Const(c) = cx.input(n, 2)? {
                if c.data.to_i64().iter().any(|&v| v != 0) {
                    return Err(n.unsupported("training_mode = true"));
                }
            } else {
                return Err(n.unsupported("training_mode is not a constant"));
            }
        }
    }
    Ok(vec![x])
}
