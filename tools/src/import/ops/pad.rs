//! Pad (modes constant, reflect, edge): pads from the attribute (opset < 11) or the constant input (>= 11).

use sprig_runtime::{Op, PadMode, MAX_RANK};

use super::norm_axes;
use crate::import::ctx::{Ctx, NodeInfo};
use crate::import::value::{ConstT, Data, Val};
use crate::import::ImportError;

/// Pad.
pub fn pad(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let s = cx.shape(&x);
    let r = s.len();
    let mode = n.attr_s("mode", "constant")?;
    let mode = match mode.as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        _ => return Err(n.unsupported(format!("mode `{mode}` (only `constant`, `reflect`, `edge`)"))),
    };
    let (raw, value) = if n.opset < 11 {
        let p = match n.attr_ints("pads")? {
            Some(p) => p,
            None => n.attr_ints("paddings")?.ok_or_else(|| n.attr_err("pads", "required"))?,
        };
        (p, n.attr_f("value", 0.0)?)
    } else {
        let p = cx.const_input(n, 1, "pads")?.data.to_i64();
        let v = if n.has_input(2) {
            let c = cx.const_input(n, 2, "constant_value")?;
            if c.numel() != 1 {
                return Err(n.shape_err("constant_value must be a scalar"));
            }
            c.data.get_f64(0) as f32
        } else {
            0.0
        };
        (p, v)
    };
    // Optional axes input (opset 18).
    let axes: Vec<usize> = if n.opset >= 18 && n.has_input(3) {
        let a = cx.const_input(n, 3, "axes")?.data.to_i64();
        let v = norm_axes(n, "axes", &a, r)?;
        if v.len() != a.len() {
            return Err(n.attr_err("axes", "duplicate axes"));
        }
        a.iter().map(|&x| if x < 0 { (x + r as i64) as usize } else { x as usize }).collect()
    } else {
        (0..r).collect()
    };
    if raw.len() != 2 * axes.len() {
        return Err(n.shape_err(format!("pads has {} values for {} axes", raw.len(), axes.len())));
    }
    if raw.iter().any(|&p| p < 0) {
        return Err(n.unsupported("negative pads (cropping)"));
    }
    if value.is_nan() {
        return Err(n.attr_err("value", "NaN pad value"));
    }
    let mut begin = vec![0usize; r];
    let mut end = vec![0usize; r];
    for (k, &a) in axes.iter().enumerate() {
        begin[a] = raw[k] as usize;
        end[a] = raw[axes.len() + k] as usize;
    }
    if begin.iter().chain(&end).all(|&p| p == 0) {
        return Ok(vec![x]);
    }
    for i in 0..r {
        let ok = match mode {
            PadMode::Constant => true,
            PadMode::Reflect => begin[i] < s[i] && end[i] < s[i],
            PadMode::Edge => s[i] > 0 || begin[i] + end[i] == 0,
        };
        if !ok {
            let what =
                if mode == PadMode::Reflect { "reflect pads must be smaller than the axis" } else { "edge padding of an empty axis" };
            return Err(n.unsupported(format!("{what} (axis {i} of {s:?}, pads {} / {})", begin[i], end[i])));
        }
    }
    let out: Option<Vec<usize>> = (0..r).map(|i| s.get(i)?.checked_add(begin[i])?.checked_add(end[i])).collect();
    if out.as_deref().and_then(crate::import::capped_numel).is_none() {
        return Err(n.shape_err(format!("pads {raw:?} on {s:?} give more elements than the limit of 2^28 (or are negative)")));
    }
    if let Val::Const(c) = &x {
        return Ok(vec![Val::Const(pad_const(c, &begin, &end, value, mode, &n.out(0)))]);
    }
    if r > MAX_RANK || begin.iter().chain(&end).any(|&p| p > u32::MAX as usize) {
        return Err(n.unsupported(format!("rank {r} or pads too large")));
    }
    let mut pads = [0u32; 2 * MAX_RANK];
    for i in 0..r {
        pads[i] = begin[i] as u32;
        pads[MAX_RANK + i] = end[i] as u32;
    }
    Ok(vec![cx.emit(n, Op::Pad { pads, value, mode }, &[x], &n.out(0))?])
}

fn pad_const(c: &ConstT, begin: &[usize], end: &[usize], value: f32, mode: PadMode, name: &str) -> ConstT {
    let out: Vec<usize> = (0..c.shape.len()).map(|i| c.shape[i] + begin[i] + end[i]).collect();
    let total: usize = out.iter().product();
    let src = c.data.to_f32();
    let mut v = vec![value; total];
    let ost = crate::import::value::strides(&out);
    let ist = crate::import::value::strides(&c.shape);
    if mode == PadMode::Constant {
        for (i, &x) in src.iter().enumerate() {
            let mut o = 0;
            for k in 0..c.shape.len() {
                o += ((i / ist[k]) % c.shape[k] + begin[k]) * ost[k];
            }
            v[o] = x;
        }
    } else {
        // Validated: reflect pads < dim, edge-padded axes non-empty.
        for (o, slot) in v.iter_mut().enumerate() {
            let mut i = 0;
            for k in 0..c.shape.len() {
                let d = c.shape[k] as i64;
                let j = ((o / ost[k]) % out[k]) as i64 - begin[k] as i64;
                let j = match mode {
                    PadMode::Reflect if j < 0 => -j,
                    PadMode::Reflect if j >= d => 2 * (d - 1) - j,
                    _ => j.clamp(0, d - 1),
                };
                i += j as usize * ist[k];
            }
            *slot = src[i];
        }
    }
    let data = if c.data.is_int() { Data::I(v.iter().map(|&x| x as i64).collect()) } else { Data::F(v) };
    ConstT::new(name, out, data)
}
