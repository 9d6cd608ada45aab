//! Resize (opset 10, 11+) and Upsample (opset 7, 9): nearest / linear resize of the last one or
//! two axes of an `[N, C, L]` / `[N, C, H, W]` tensor, with constant scales or sizes.

use sprig_runtime::{CoordMode, NearestMode, Op, ResizeAttrs, ResizeMode};

use crate::import::ctx::{Ctx, NodeInfo};
use crate::import::value::Val;
use crate::import::ImportError;

/// Resize and Upsample.
pub fn resize(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let s = cx.shape(&x);
    let r = s.len();
    let upsample = n.op_type == "Upsample";
    // Opset < 11 (and Upsample): asymmetric coordinates; nearest rounds like onnxruntime's
    // "simple" mode (floor when enlarging, ceil when shrinking).
    let legacy = upsample || n.opset < 11;
    let mode = n.attr_s("mode", "nearest")?;
    let linear = match mode.as_str() {
        "nearest" => false,
        "linear" | "bilinear" => true,
        _ => return Err(n.unsupported(format!("mode `{mode}` (only `nearest`, `linear`)"))),
    };
    // Scales (per axis, as f32) or output sizes.
    let mut scales: Option<Vec<f32>> = None;
    let mut sizes: Option<Vec<usize>> = None;
    if upsample && n.opset < 9 {
        let a = n.attr("scales").ok_or_else(|| n.attr_err("scales", "required"))?;
        scales = Some(a.floats.clone());
    } else {
        let si = if upsample || n.opset < 11 { 1 } else { 2 };
        if n.has_input(si) {
            let c = cx.const_input(n, si, "scales")?;
            if c.numel() > 0 {
                scales = Some(c.data.to_f32());
            }
        }
        if !legacy && scales.is_none() && n.has_input(3) {
            let c = cx.const_input(n, 3, "sizes")?;
            let v = c.data.to_i64();
            if v.iter().any(|&d| d < 0) {
                return Err(n.attr_err("sizes", format!("negative size in {v:?}")));
            }
            sizes = Some(v.iter().map(|&d| d as usize).collect());
        }
    }
    if !legacy {
        if n.attr_i("antialias", 0)? != 0 {
            return Err(n.unsupported("antialias"));
        }
        // Opset 18 `axes`: scales / sizes name only these axes; the others keep their size.
        if let Some(axes) = n.attr_ints("axes")? {
            let norm: Vec<usize> = axes
                .iter()
                .map(|&a| crate::import::value::norm_axis(a, r).ok_or_else(|| n.attr_err("axes", format!("axis {a} out of range"))))
                .collect::<Result<_, _>>()?;
            let mut seen = norm.clone();
            seen.sort_unstable();
            seen.dedup();
            if seen.len() != norm.len() {
                return Err(n.attr_err("axes", "duplicate axes"));
            }
            let given = scales.as_ref().map_or(0, |v| v.len()).max(sizes.as_ref().map_or(0, |v| v.len()));
            if given != norm.len() {
                return Err(n.shape_err(format!("{given} scales / sizes for {} axes", norm.len())));
            }
            if let Some(v) = &mut scales {
                let mut full = vec![1.0f32; r];
                for (k, &a) in norm.iter().enumerate() {
                    full[a] = v[k];
                }
                *v = full;
            }
            if let Some(v) = &mut sizes {
                let mut full = s.clone();
                for (k, &a) in norm.iter().enumerate() {
                    full[a] = v[k];
                }
                *v = full;
            }
        }
        let policy = n.attr_s("keep_aspect_ratio_policy", "stretch")?;
        if sizes.is_some() && policy != "stretch" {
            return Err(n.unsupported(format!("keep_aspect_ratio_policy `{policy}`")));
        }
    }
    let given = scales.as_ref().map_or(0, |v| v.len()).max(sizes.as_ref().map_or(0, |v| v.len()));
    if scales.is_none() && sizes.is_none() {
        return Err(n.shape_err("neither scales nor sizes given"));
    }
    if given != r {
        return Err(n.shape_err(format!("{given} scales / sizes for rank {r}")));
    }
    if r != 3 && r != 4 {
        return Err(n.unsupported(format!("rank {r} (only [N, C, L] and [N, C, H, W])")));
    }
    // Output sizes: floor(input * scale) (in f64, as the ONNX reference).
    let out: Vec<usize> = match (&scales, &sizes) {
        (Some(sc), _) => {
            if sc.iter().any(|v| !v.is_finite() || *v <= 0.0) {
                return Err(n.attr_err("scales", format!("scales must be positive: {sc:?}")));
            }
            s.iter().zip(sc).map(|(&d, &k)| (d as f64 * k as f64).floor() as usize).collect()
        }
        (None, Some(sz)) => sz.clone(),
        (None, None) => unreachable!("checked above"),
    };
    let unit_nc = match &scales {
        Some(sc) => sc[0] == 1.0 && sc[1] == 1.0,
        None => out[0] == s[0] && out[1] == s[1],
    };
    if !unit_nc {
        return Err(n.unsupported("resizing the batch or channel axis"));
    }
    let coord = if legacy {
        CoordMode::Asymmetric
    } else {
        match n.attr_s("coordinate_transformation_mode", "half_pixel")?.as_str() {
            "half_pixel" => CoordMode::HalfPixel,
            "asymmetric" => CoordMode::Asymmetric,
            "align_corners" => CoordMode::AlignCorners,
            "pytorch_half_pixel" => CoordMode::PytorchHalfPixel,
            other => return Err(n.unsupported(format!("coordinate_transformation_mode `{other}`"))),
        }
    };
    let spatial_scale = |i: usize| scales.as_ref().map_or(0.0, |v| v[i]);
    let mode = if linear {
        ResizeMode::Linear
    } else if legacy {
        let shrink = (2..r).map(|i| spatial_scale(i) < 1.0).collect::<Vec<_>>();
        if shrink.iter().any(|&b| b) && !shrink.iter().all(|&b| b) {
            return Err(n.unsupported("nearest resize that enlarges one axis and shrinks another (opset < 11)"));
        }
        ResizeMode::Nearest(if shrink[0] { NearestMode::Ceil } else { NearestMode::Floor })
    } else {
        ResizeMode::Nearest(match n.attr_s("nearest_mode", "round_prefer_floor")?.as_str() {
            "round_prefer_floor" => NearestMode::RoundPreferFloor,
            "round_prefer_ceil" => NearestMode::RoundPreferCeil,
            "floor" => NearestMode::Floor,
            "ceil" => NearestMode::Ceil,
            other => return Err(n.unsupported(format!("nearest_mode `{other}`"))),
        })
    };
    if out.iter().any(|&d| d > u32::MAX as usize) {
        return Err(n.unsupported(format!("output size {out:?}")));
    }
    let (size, scale) = if r == 4 {
        ([out[2] as u32, out[3] as u32], [spatial_scale(2), spatial_scale(3)])
    } else {
        ([1, out[2] as u32], [0.0, spatial_scale(2)])
    };
    if out == s && scale.iter().all(|&k| k == 0.0 || k == 1.0) {
        return Ok(vec![x]);
    }
    Ok(vec![cx.emit(n, Op::Resize(ResizeAttrs { size, scale, mode, coord }), &[x], &n.out(0))?])
}
