//! Transpose, Concat and Expand.

use sprig_runtime::{BinaryKind, Op, MAX_RANK};

use crate::import::ctx::{Ctx, NodeInfo};
use crate::import::value::{self, norm_axis, ConstT, Data, Val};
use crate::import::ImportError;

/// Transpose (default perm reverses the axes).
pub fn transpose(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let r = cx.shape(&x).len();
    let perm: Vec<usize> = match n.attr_ints("perm")? {
        Some(p) => {
            let mut seen = vec![false; r];
            let mut v = Vec::with_capacity(r);
            for &a in &p {
                let i = usize::try_from(a)
                    .ok()
                    .filter(|&i| i < r && !seen[i])
                    .ok_or_else(|| n.attr_err("perm", format!("{p:?} is not a permutation of {r} axes")))?;
                seen[i] = true;
                v.push(i);
            }
            if v.len() != r {
                return Err(n.attr_err("perm", format!("{p:?} is not a permutation of {r} axes")));
            }
            v
        }
        None => (0..r).rev().collect(),
    };
    if let Val::Const(c) = &x {
        return Ok(vec![Val::Const(value::transpose(c, &perm))]);
    }
    if r > MAX_RANK {
        return Err(n.unsupported(format!("rank {r} > {MAX_RANK}")));
    }
    let mut p = [0u8; MAX_RANK];
    for (i, &a) in perm.iter().enumerate() {
        p[i] = a as u8;
    }
    Ok(vec![cx.emit(n, Op::Transpose { perm: p }, &[x], &n.out(0))?])
}

/// Concatenates constants along `axis`.
pub fn concat_consts(cs: &[ConstT], axis: usize, name: &str) -> Option<ConstT> {
    let mut shape = cs[0].shape.clone();
    shape[axis] = cs.iter().map(|c| c.shape[axis]).sum();
    let outer: usize = shape[..axis].iter().product();
    let int = cs.iter().all(|c| c.data.is_int());
    let mut fi = Vec::new();
    let mut ii = Vec::new();
    for o in 0..outer {
        for c in cs {
            let chunk: usize = c.shape[axis..].iter().product();
            let range = o * chunk..(o + 1) * chunk;
            if int {
                ii.extend_from_slice(&c.data.to_i64()[range]);
            } else {
                fi.extend_from_slice(&c.data.to_f32()[range]);
            }
        }
    }
    Some(ConstT::new(name, shape, if int { Data::I(ii) } else { Data::F(fi) }))
}

/// Concat (negative axis normalised); empty inputs are dropped.
pub fn concat(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let mut ins = Vec::new();
    for i in 0..n.proto.input.len() {
        if n.has_input(i) {
            ins.push(cx.input(n, i)?);
        }
    }
    if ins.is_empty() {
        return Err(n.shape_err("no inputs"));
    }
    let r = cx.shape(&ins[0]).len();
    if n.opset >= 4 && n.attr("axis").is_none() {
        return Err(n.attr_err("axis", "required"));
    }
    let a = n.attr_i("axis", 1)?;
    let axis = norm_axis(a, r).ok_or_else(|| n.attr_err("axis", format!("{a} out of range for rank {r}")))?;
    let shapes: Vec<Vec<usize>> = ins.iter().map(|v| cx.shape(v)).collect();
    for s in &shapes {
        if s.len() != r || (0..r).any(|i| i != axis && s[i] != shapes[0][i]) {
            return Err(n.shape_err(format!("input shapes {shapes:?} do not concatenate along axis {axis}")));
        }
    }
    let nonempty: Vec<Val> = ins.iter().zip(&shapes).filter(|(_, s)| s[axis] > 0).map(|(v, _)| v.clone()).collect();
    let ins = if nonempty.is_empty() { vec![ins[0].clone()] } else { nonempty };
    if ins.iter().all(|v| matches!(v, Val::Const(_))) {
        let cs: Vec<ConstT> = ins.iter().map(|v| if let Val::Const(c) = v { c.clone() } else { unreachable!() }).collect();
        return Ok(vec![Val::Const(concat_consts(&cs, axis, &n.out(0)).ok_or_else(|| n.shape_err("cannot concatenate"))?)]);
    }
    if ins.len() == 1 {
        return Ok(ins);
    }
    // Concatenation is associative along one axis: wide Concats become a tree of narrower ones.
    let mut ins = ins;
    let mut round = 0;
    while ins.len() > sprig_runtime::op::MAX_OP_INPUTS {
        let mut next = Vec::new();
        for (k, part) in ins.chunks(sprig_runtime::op::MAX_OP_INPUTS).enumerate() {
            if part.len() == 1 {
                next.push(part[0].clone());
            } else {
                let name = cx.tmp(n, &format!("concat{round}_{k}"));
                next.push(cx.emit(n, Op::Concat { axis: axis as u8 }, part, &name)?);
            }
        }
        ins = next;
        round += 1;
    }
    Ok(vec![cx.emit(n, Op::Concat { axis: axis as u8 }, &ins, &n.out(0))?])
}

/// Expand: broadcast to a shape (constant folded; on activations an Add of zeros).
pub fn expand(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let target = cx.const_input(n, 1, "shape")?.data.to_i64();
    if target.iter().any(|&d| d < 0) {
        return Err(n.shape_err(format!("invalid shape {target:?}")));
    }
    let target: Vec<usize> = target.iter().map(|&d| d as usize).collect();
    let s = cx.shape(&x);
    let out = value::broadcast_shape(&s, &target).ok_or_else(|| n.shape_err(format!("{s:?} does not broadcast to {target:?}")))?;
    if crate::import::capped_numel(&out).is_none() {
        return Err(n.shape_err(format!("expanding {s:?} to {target:?} gives more elements than the limit of 2^28")));
    }
    match x {
        Val::Const(c) => Ok(vec![Val::Const(ConstT { name: n.out(0), ..value::expand(&c, &out) })]),
        x if out == s => Ok(vec![x]),
        x => {
            let zeros = Val::Const(ConstT::f32(cx.tmp(n, "zeros"), target.clone(), vec![0.0; target.iter().product()]));
            Ok(vec![cx.emit(n, Op::Binary(BinaryKind::Add), &[x, zeros], &n.out(0))?])
        }
    }
}
