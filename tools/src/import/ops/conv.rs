//! Conv (1-D / 2-D, groups, strides, dilations, explicit or automatic padding).

use sprig_runtime::{Activation, ConvAttrs, Op};

use crate::import::ctx::{Ctx, NodeInfo};
use crate::import::value::Val;
use crate::import::ImportError;

/// Resolves ONNX padding for `spatial` axes: explicit `pads` or `auto_pad`. Returns
/// `(begins, ends)`. `spans` are the effective (dilated) window extents.
pub fn resolve_pads(n: &NodeInfo, in_dims: &[usize], spans: &[usize], strides: &[usize]) -> Result<(Vec<usize>, Vec<usize>), ImportError> {
    let sp = in_dims.len();
    let auto = n.attr_s("auto_pad", "NOTSET")?;
    match auto.as_str() {
        "NOTSET" | "" => {
            let pads = n.attr_ints("pads")?.unwrap_or_else(|| vec![0; 2 * sp]);
            if pads.len() != 2 * sp {
                return Err(n.attr_err("pads", format!("expected {} values, got {}", 2 * sp, pads.len())));
            }
            if pads.iter().any(|&p| p < 0) {
                return Err(n.unsupported("negative pads"));
            }
            let p: Vec<usize> = pads.iter().map(|&p| p as usize).collect();
            Ok((p[..sp].to_vec(), p[sp..].to_vec()))
        }
        "VALID" => Ok((vec![0; sp], vec![0; sp])),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut b = Vec::with_capacity(sp);
            let mut e = Vec::with_capacity(sp);
            for i in 0..sp {
                let out = in_dims[i].div_ceil(strides[i]);
                let total = ((out.saturating_sub(1)) * strides[i] + spans[i]).saturating_sub(in_dims[i]);
                let small = total / 2;
                let big = total - small;
                if auto == "SAME_UPPER" {
                    b.push(small);
                    e.push(big);
                } else {
                    b.push(big);
                    e.push(small);
                }
            }
            Ok((b, e))
        }
        other => Err(n.attr_err("auto_pad", format!("unknown value `{other}`"))),
    }
}

/// Reads a per-spatial-axis attribute (strides, dilations) with default 1.
pub fn spatial_attr(n: &NodeInfo, name: &str, sp: usize) -> Result<Vec<usize>, ImportError> {
    match n.attr_ints(name)? {
        None => Ok(vec![1; sp]),
        Some(v) if v.len() == sp && v.iter().all(|&x| x >= 1 && x <= u32::MAX as i64) => Ok(v.iter().map(|&x| x as usize).collect()),
        Some(v) => Err(n.attr_err(name, format!("expected {sp} positive values, got {v:?}"))),
    }
}

/// Packs per-axis values of 1-D / 2-D windows into the runtime's `[h, w]` / `[t, l, b, r]` layout.
pub fn pack2(v: &[usize], fill: u32) -> [u32; 2] {
    if v.len() == 1 {
        [fill, v[0] as u32]
    } else {
        [v[0] as u32, v[1] as u32]
    }
}

/// Packs begins/ends into `[top, left, bottom, right]`.
pub fn pack_pads(b: &[usize], e: &[usize]) -> [u32; 4] {
    if b.len() == 1 {
        [0, b[0] as u32, 0, e[0] as u32]
    } else {
        [b[0] as u32, b[1] as u32, e[0] as u32, e[1] as u32]
    }
}

/// ONNX Conv.
pub fn conv(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let w = cx.input(n, 1)?;
    let b = cx.opt_input(n, 2)?;
    let xs = cx.shape(&x);
    let ws = cx.shape(&w);
    if xs.len() != ws.len() || !(3..=4).contains(&xs.len()) {
        return Err(if xs.len() == 5 || ws.len() == 5 {
            n.unsupported("3-D convolution")
        } else {
            n.shape_err(format!("input {xs:?} and weight {ws:?} are not a 1-D or 2-D convolution"))
        });
    }
    let sp = xs.len() - 2;
    if let Some(k) = n.attr_ints("kernel_shape")? {
        if k.len() != sp || k.iter().zip(&ws[2..]).any(|(&a, &b)| a as usize != b) {
            return Err(n.attr_err("kernel_shape", format!("{k:?} does not match the weight shape {ws:?}")));
        }
    }
    let group = n.attr_i("group", 1)?;
    if group < 1 || group > u32::MAX as i64 {
        return Err(n.attr_err("group", format!("invalid value {group}")));
    }
    let strides = spatial_attr(n, "strides", sp)?;
    let dil = spatial_attr(n, "dilations", sp)?;
    let spans: Vec<usize> = (0..sp).map(|i| (ws[2 + i].max(1) - 1) * dil[i] + 1).collect();
    let (pb, pe) = resolve_pads(n, &xs[2..], &spans, &strides)?;
    if pb.iter().chain(&pe).any(|&p| p > u32::MAX as usize) {
        return Err(n.attr_err("pads", "too large"));
    }
    let attrs = ConvAttrs {
        group: group as u32,
        stride: pack2(&strides, 1),
        dilation: pack2(&dil, 1),
        pads: pack_pads(&pb, &pe),
        act: Activation::None,
    };
    let mut ins = vec![x, w];
    if let Some(b) = b {
        ins.push(b);
    }
    Ok(vec![cx.emit(n, Op::Conv(attrs), &ins, &n.out(0))?])
}
