//! MaxPool / AveragePool (1-D or 2-D) and the global pools.

use sprig_runtime::{Op, PoolAttrs};

use super::conv::{pack2, pack_pads, resolve_pads, spatial_attr};
use crate::import::ctx::{Ctx, NodeInfo};
use crate::import::value::Val;
use crate::import::ImportError;

/// MaxPool / AveragePool.
pub fn pool(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    if n.op_type == "MaxPool" && cx.output_used(n, 1) {
        return Err(n.unsupported("the Indices output is not supported"));
    }
    let x = cx.input(n, 0)?;
    let xs = cx.shape(&x);
    if xs.len() == 5 {
        return Err(n.unsupported("3-D pooling"));
    }
    if !(3..=4).contains(&xs.len()) {
        return Err(n.shape_err(format!("input {xs:?} is not [N, C, L] or [N, C, H, W]")));
    }
    let sp = xs.len() - 2;
    let k = n.attr_ints("kernel_shape")?.ok_or_else(|| n.attr_err("kernel_shape", "required"))?;
    if k.len() != sp || k.iter().any(|&v| v < 1 || v > u32::MAX as i64) {
        return Err(n.attr_err("kernel_shape", format!("expected {sp} positive values, got {k:?}")));
    }
    let k: Vec<usize> = k.iter().map(|&v| v as usize).collect();
    let strides = spatial_attr(n, "strides", sp)?;
    let dil = spatial_attr(n, "dilations", sp)?;
    let ceil_mode = n.attr_i("ceil_mode", 0)? != 0;
    let count_include_pad = n.attr_i("count_include_pad", 0)? != 0;
    let spans: Vec<usize> = (0..sp).map(|i| (k[i] - 1) * dil[i] + 1).collect();
    let (pb, pe) = resolve_pads(n, &xs[2..], &spans, &strides)?;
    for i in 0..sp {
        if pb[i] >= k[i] || pe[i] >= k[i] {
            return Err(n.unsupported(format!("padding {}/{} not smaller than the window {}", pb[i], pe[i], k[i])));
        }
    }
    let attrs = PoolAttrs {
        kernel: pack2(&k, 1),
        stride: pack2(&strides, 1),
        dilation: pack2(&dil, 1),
        pads: pack_pads(&pb, &pe),
        ceil_mode,
        count_include_pad,
    };
    let op = if n.op_type == "MaxPool" { Op::MaxPool(attrs) } else { Op::AveragePool(attrs) };
    Ok(vec![cx.emit(n, op, &[x], &n.out(0))?])
}

/// GlobalAveragePool / GlobalMaxPool.
pub fn global_pool(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let op = if n.op_type == "GlobalMaxPool" { Op::GlobalMaxPool } else { Op::GlobalAveragePool };
    Ok(vec![cx.emit(n, op, &[x], &n.out(0))?])
}
