//! Slice and Split: strided windows, evaluated on constants and lowered to the runtime's Slice
//! on activations (Split becomes one Slice per output).

use sprig_runtime::{Op, MAX_RANK};

use crate::import::ctx::{Ctx, NodeInfo};
use crate::import::value::{norm_axis, strides, ConstT, Val};
use crate::import::ImportError;

/// One axis of a window: element `j` is input index `start + j * step`, for `j < len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    start: usize,
    step: i64,
    len: usize,
}

impl Window {
    fn full(d: usize) -> Window {
        Window { start: 0, step: 1, len: d }
    }

    /// The ONNX rule: negative `start` / `end` count from the end, then are clamped to
    /// `[0, d]` (positive steps) or `[0, d - 1]` / `[-1, d - 1]` (negative steps).
    fn onnx(start: i64, end: i64, step: i64, d: usize) -> Window {
        let di = d as i64;
        let fix = |v: i64, lo: i64, hi: i64| (if v < 0 { v.saturating_add(di) } else { v }).clamp(lo, hi);
        if d == 0 {
            return Window { start: 0, step, len: 0 };
        }
        if step > 0 {
            let (s, e) = (fix(start, 0, di), fix(end, 0, di));
            let len = if e > s { ((e - s - 1) as u64 / step as u64 + 1) as usize } else { 0 };
            Window { start: s as usize, step, len }
        } else {
            let (s, e) = (fix(start, 0, di - 1), fix(end, -1, di - 1));
            let len = if s > e { ((s - e - 1) as u64 / step.unsigned_abs() + 1) as usize } else { 0 };
            Window { start: s as usize, step, len }
        }
    }

    fn index(&self, j: usize) -> usize {
        (self.start as i64 + j as i64 * self.step) as usize
    }
}

/// Applies per-axis windows to `x`: evaluated on constants; a no-op on activations when every
/// window is the full axis; otherwise a runtime Slice (positive steps only).
fn window(cx: &mut Ctx, n: &NodeInfo, x: Val, win: &[Window], out: &str) -> Result<Val, ImportError> {
    let s = cx.shape(&x);
    let r = s.len();
    let shape: Vec<usize> = win.iter().map(|w| w.len).collect();
    match x {
        Val::Const(c) => {
            let st = strides(&s);
            let total: usize = shape.iter().product();
            let mut idx = Vec::with_capacity(total);
            let mut coord = vec![0usize; r];
            for _ in 0..total {
                idx.push((0..r).map(|k| win[k].index(coord[k]) * st[k]).sum());
                for k in (0..r).rev() {
                    coord[k] += 1;
                    if coord[k] < shape[k] {
                        break;
                    }
                    coord[k] = 0;
                }
            }
            Ok(Val::Const(ConstT::new(out, shape, c.data.take(&idx))))
        }
        x if win.iter().zip(&s).all(|(w, &d)| w.len == d && (0..d).all(|j| w.index(j) == j)) => Ok(x),
        x => {
            if r > MAX_RANK {
                return Err(n.unsupported(format!("rank {r} > {MAX_RANK}")));
            }
            let (mut starts, mut steps, mut lens) = ([0u32; MAX_RANK], [1u32; MAX_RANK], [0u32; MAX_RANK]);
            for (k, w) in win.iter().enumerate() {
                let too_big = || n.unsupported(format!("window {w:?} on axis {k} exceeds the runtime's u32 attributes"));
                // A window of at most one element reads no second index: any step will do.
                let step = if w.len <= 1 { 1 } else { w.step };
                if step < 0 {
                    return Err(n.unsupported(format!(
                        "negative step {step} on axis {k} of an activation (reversing slices are not supported by the runtime)"
                    )));
                }
                starts[k] = u32::try_from(w.start.min(s[k])).map_err(|_| too_big())?;
                steps[k] = u32::try_from(step).map_err(|_| too_big())?;
                lens[k] = u32::try_from(w.len).map_err(|_| too_big())?;
            }
            cx.emit(n, Op::Slice { starts, steps, lens }, &[x], out)
        }
    }
}

/// Slice: opset 1 attributes `starts`, `ends`, `axes`; opset >= 10 constant inputs
/// `starts`, `ends`, `axes`, `steps`.
pub fn slice(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let s = cx.shape(&x);
    let r = s.len();
    let (starts, ends, axes, steps) = if n.opset < 10 {
        let st = n.attr_ints("starts")?.ok_or_else(|| n.attr_err("starts", "required"))?;
        let en = n.attr_ints("ends")?.ok_or_else(|| n.attr_err("ends", "required"))?;
        (st, en, n.attr_ints("axes")?, None)
    } else {
        let st = cx.const_input(n, 1, "starts")?.data.to_i64();
        let en = cx.const_input(n, 2, "ends")?.data.to_i64();
        let ax = if n.has_input(3) { Some(cx.const_input(n, 3, "axes")?.data.to_i64()) } else { None };
        let sp = if n.has_input(4) { Some(cx.const_input(n, 4, "steps")?.data.to_i64()) } else { None };
        (st, en, ax, sp)
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(n.shape_err("starts, ends, axes and steps differ in length"));
    }
    let mut win: Vec<Window> = s.iter().map(|&d| Window::full(d)).collect();
    let mut seen = vec![false; r];
    for k in 0..starts.len() {
        let a = norm_axis(axes[k], r).ok_or_else(|| n.attr_err("axes", format!("{} out of range for rank {r}", axes[k])))?;
        if std::mem::replace(&mut seen[a], true) {
            return Err(n.attr_err("axes", format!("axis {a} appears twice in {axes:?}")));
        }
        if steps[k] == 0 {
            return Err(n.shape_err(format!("step 0 on axis {a}")));
        }
        win[a] = Window::onnx(starts[k], ends[k], steps[k], s[a]);
    }
    Ok(vec![window(cx, n, x, &win, &n.out(0))?])
}

/// Split along `axis`: sizes from the `split` attribute (opset < 13) or input (opset >= 13),
/// else `num_outputs` parts (opset 18; the last one smaller), else equal parts.
pub fn split(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let s = cx.shape(&x);
    let r = s.len();
    let a = n.attr_i("axis", 0)?;
    let axis = norm_axis(a, r).ok_or_else(|| n.attr_err("axis", format!("{a} out of range for rank {r}")))?;
    let d = s[axis];
    let outs = n.proto.output.len();
    if outs == 0 {
        return Err(n.shape_err("no outputs"));
    }
    let given = if n.opset >= 13 {
        if n.has_input(1) {
            Some(cx.const_input(n, 1, "split")?.data.to_i64())
        } else {
            None
        }
    } else {
        n.attr_ints("split")?
    };
    let sizes: Vec<i64> = match given {
        Some(v) => v,
        None if n.opset >= 18 && n.attr("num_outputs").is_some() => {
            let k = n.attr_i("num_outputs", 0)?;
            if k < 1 || k as usize != outs {
                return Err(n.attr_err("num_outputs", format!("{k} does not match the {outs} outputs")));
            }
            let chunk = d.div_ceil(outs) as i64;
            let mut v = vec![chunk; outs];
            v[outs - 1] = d as i64 - chunk * (outs as i64 - 1);
            v
        }
        None => {
            if !d.is_multiple_of(outs) {
                return Err(n.shape_err(format!("axis {axis} of size {d} does not split into {outs} equal parts")));
            }
            vec![(d / outs) as i64; outs]
        }
    };
    if sizes.len() != outs || sizes.iter().any(|&v| v < 0) || sizes.iter().sum::<i64>() != d as i64 {
        return Err(n.shape_err(format!("split sizes {sizes:?} do not divide axis {axis} of size {d} into {outs} outputs")));
    }
    let mut vals = Vec::with_capacity(outs);
    let mut at = 0usize;
    for (i, &len) in sizes.iter().enumerate() {
        let len = len as usize;
        if cx.output_used(n, i) {
            let mut win: Vec<Window> = s.iter().map(|&d| Window::full(d)).collect();
            win[axis] = Window { start: at, step: 1, len };
            vals.push(window(cx, n, x.clone(), &win, &n.out(i))?);
        } else {
            // Not read by anyone: nothing to compute.
            vals.push(Val::Unknown);
        }
        at += len;
    }
    Ok(vals)
}

#[cfg(test)]
mod tests {
    use super::Window;

    fn idx(w: Window) -> Vec<usize> {
        (0..w.len).map(|j| w.index(j)).collect()
    }

    #[test]
    fn onnx_window_rules() {
        assert_eq!(idx(Window::onnx(1, 4, 1, 5)), [1, 2, 3]);
        assert_eq!(idx(Window::onnx(-3, i64::MAX, 2, 5)), [2, 4]);
        assert_eq!(idx(Window::onnx(0, -1, 1, 5)), [0, 1, 2, 3]);
        assert_eq!(idx(Window::onnx(4, 1, 1, 5)), Vec::<usize>::new());
        assert_eq!(idx(Window::onnx(i64::MIN, i64::MAX, i64::MAX, 5)), [0]);
        assert_eq!(idx(Window::onnx(-1, i64::MIN, -1, 5)), [4, 3, 2, 1, 0]);
        assert_eq!(idx(Window::onnx(20, 1, -2, 5)), [4, 2]);
        assert_eq!(idx(Window::onnx(2, 0, i64::MIN, 5)), [2]);
        assert_eq!(idx(Window::onnx(0, 3, -1, 0)), Vec::<usize>::new());
        assert_eq!(idx(Window::onnx(0, 3, 1, 0)), Vec::<usize>::new());
    }
}
