//! BatchNormalization (inference) → ChannelAffine, LayerNormalization → LayerNorm.

use sprig_runtime::Op;

use crate::import::ctx::{Ctx, NodeInfo};
use crate::import::value::{self, norm_axis, ConstT, Val};
use crate::import::ImportError;

/// BatchNormalization with running statistics: `y = x * scale + shift` per channel (axis 1).
pub fn batch_norm(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    if n.attr_i("training_mode", 0)? != 0 {
        return Err(n.unsupported("training_mode = 1"));
    }
    for i in 1..5 {
        if cx.output_used(n, i) {
            return Err(n.unsupported(format!("training output {i} is used")));
        }
    }
    let x = cx.input(n, 0)?;
    let eps = n.attr_f("epsilon", 1e-5)?;
    let names = ["scale", "B", "input_mean", "input_var"];
    let mut p = Vec::with_capacity(4);
    for (i, what) in names.iter().enumerate() {
        p.push(cx.const_input(n, i + 1, what)?.data.to_f32());
    }
    let xs = cx.shape(&x);
    if xs.len() < 2 {
        return Err(n.shape_err(format!("input {xs:?} has no channel axis")));
    }
    let c = xs[1];
    for (v, what) in p.iter().zip(names) {
        if v.len() != c {
            return Err(n.shape_err(format!("{what} has {} values for {c} channels", v.len())));
        }
    }
    let scale: Vec<f32> = (0..c).map(|i| p[0][i] / (p[3][i] + eps).sqrt()).collect();
    let shift: Vec<f32> = (0..c).map(|i| p[1][i] - p[2][i] * scale[i]).collect();
    let sc = Val::Const(ConstT::f32(cx.tmp(n, "scale"), vec![c], scale));
    let sh = Val::Const(ConstT::f32(cx.tmp(n, "shift"), vec![c], shift));
    Ok(vec![cx.emit(n, Op::ChannelAffine, &[x, sc, sh], &n.out(0))?])
}

/// LayerNormalization over axes `axis..rank` (only the first output).
pub fn layer_norm(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    if cx.output_used(n, 1) || cx.output_used(n, 2) {
        return Err(n.unsupported("Mean / InvStdDev outputs are used"));
    }
    let x = cx.input(n, 0)?;
    let xs = cx.shape(&x);
    let a = n.attr_i("axis", -1)?;
    let axis = norm_axis(a, xs.len()).ok_or_else(|| n.attr_err("axis", format!("{a} out of range for rank {}", xs.len())))?;
    let eps = n.attr_f("epsilon", 1e-5)?;
    if n.attr_i("stash_type", 1)? != 1 {
        return Err(n.unsupported("stash_type other than float"));
    }
    let norm_shape = xs[axis..].to_vec();
    let numel: usize = norm_shape.iter().product();
    let mut ins = vec![x];
    for (i, what) in [(1, "Scale"), (2, "B")] {
        if !n.has_input(i) {
            continue;
        }
        let v = cx.input(n, i)?;
        let v = match v {
            Val::Const(c) if c.numel() != numel => {
                if value::broadcast_shape(&c.shape, &norm_shape).as_deref() != Some(&norm_shape[..]) {
                    return Err(n.shape_err(format!("{what} {:?} does not broadcast to {norm_shape:?}", c.shape)));
                }
                Val::Const(ConstT { name: cx.tmp(n, what), ..value::expand(&c, &norm_shape) })
            }
            v => v,
        };
        ins.push(v);
    }
    if ins.len() == 1 {
        return Err(n.shape_err("Scale is required"));
    }
    Ok(vec![cx.emit(n, Op::LayerNorm { axis: axis as u8, epsilon: eps }, &ins, &n.out(0))?])
}
