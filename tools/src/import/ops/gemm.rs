//! Gemm and MatMul → Dense (constant weights, stored `[N, K]`) or MatMul (two activations).

use sprig_runtime::{Activation, BinaryKind, Op};

use super::reshape_to;
use crate::import::ctx::{Ctx, NodeInfo};
use crate::import::value::{self, ConstT, Data, Val};
use crate::import::ImportError;

fn transpose2(cx: &mut Ctx, n: &NodeInfo, v: Val, out: &str) -> Result<Val, ImportError> {
    match v {
        Val::Const(c) => Ok(Val::Const(value::transpose(&c, &[1, 0]))),
        v => cx.emit(n, Op::Transpose { perm: [1, 0, 2, 3, 4, 5] }, &[v], out),
    }
}

fn scale(c: &ConstT, s: f32, name: String) -> ConstT {
    if s == 1.0 {
        return ConstT { name, ..c.clone() };
    }
    ConstT::f32(name, c.shape.clone(), c.data.to_f32().iter().map(|x| x * s).collect())
}

/// ONNX Gemm: `alpha * A' B' + beta * C`.
pub fn gemm(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let a = cx.input(n, 0)?;
    let b = cx.input(n, 1)?;
    let c = cx.opt_input(n, 2)?;
    let alpha = n.attr_f("alpha", 1.0)?;
    let beta = n.attr_f("beta", 1.0)?;
    let trans_a = n.attr_i("transA", 0)? != 0;
    let trans_b = n.attr_i("transB", 0)? != 0;
    let (sa, sb) = (cx.shape(&a), cx.shape(&b));
    if sa.len() != 2 || sb.len() != 2 {
        return Err(n.shape_err(format!("A {sa:?} and B {sb:?} must be 2-D")));
    }
    let nn = if trans_b { sb[0] } else { sb[1] };
    let c = c.filter(|_| beta != 0.0);
    let a = if trans_a { transpose2(cx, n, a, &cx.tmp(n, "A_T"))? } else { a };
    let mut y;
    match b {
        Val::Const(bc) => {
            // Dense: W [N, K] = alpha * B' (transposed when transB = 0).
            let wt = if trans_b { bc.clone() } else { value::transpose(&bc, &[1, 0]) };
            let w = scale(&wt, alpha, if alpha == 1.0 && trans_b { bc.name.clone() } else { cx.tmp(n, "weight") });
            let w = if alpha == 1.0 && trans_b { ConstT { shared: bc.shared, ..w } } else { w };
            // Bias folded when C broadcasts only along N.
            let bias_ok = match &c {
                Some(Val::Const(cc)) => cc.shape.len() <= 2 && (cc.numel() == 1 || (cc.numel() == nn && cc.shape.last() == Some(&nn))),
                _ => false,
            };
            let (bias, rest) = match c {
                Some(Val::Const(cc)) if bias_ok => {
                    let v = cc.data.to_f32();
                    let full: Vec<f32> = if v.len() == 1 { vec![v[0] * beta; nn] } else { v.iter().map(|x| x * beta).collect() };
                    let keep_name = beta == 1.0 && v.len() == nn && cc.shape.len() == 1;
                    let mut bias = ConstT::f32(if keep_name { cc.name.clone() } else { cx.tmp(n, "bias") }, vec![nn], full);
                    bias.shared = keep_name && cc.shared;
                    (Some(Val::Const(bias)), None)
                }
                other => (None, other),
            };
            let mut ins = vec![a, Val::Const(w)];
            ins.extend(bias);
            let out = if rest.is_some() { cx.tmp(n, "dense") } else { n.out(0) };
            y = cx.emit(n, Op::Dense { act: Activation::None }, &ins, &out)?;
            if let Some(cv) = rest {
                let cv = scaled_val(cx, n, cv, beta)?;
                y = cx.emit(n, Op::Binary(BinaryKind::Add), &[y, cv], &n.out(0))?;
            }
        }
        b => {
            let b = if trans_b { transpose2(cx, n, b, &cx.tmp(n, "B_T"))? } else { b };
            let tail = alpha != 1.0 || c.is_some();
            let out = if tail { cx.tmp(n, "matmul") } else { n.out(0) };
            y = cx.emit(n, Op::MatMul, &[a, b], &out)?;
            if alpha != 1.0 {
                let out = if c.is_some() { cx.tmp(n, "alpha") } else { n.out(0) };
                let s = crate::import::ctx::scalar(&cx.tmp(n, "alpha_c"), alpha);
                y = cx.emit(n, Op::Binary(BinaryKind::Mul), &[y, s], &out)?;
            }
            if let Some(cv) = c {
                let cv = scaled_val(cx, n, cv, beta)?;
                y = cx.emit(n, Op::Binary(BinaryKind::Add), &[y, cv], &n.out(0))?;
            }
        }
    }
    Ok(vec![y])
}

fn scaled_val(cx: &mut Ctx, n: &NodeInfo, v: Val, beta: f32) -> Result<Val, ImportError> {
    Ok(match v {
        Val::Const(c) if beta != 1.0 => Val::Const(scale(&c, beta, cx.tmp(n, "C_scaled"))),
        Val::Act(_) if beta != 1.0 => {
            let s = crate::import::ctx::scalar(&cx.tmp(n, "beta_c"), beta);
            cx.emit(n, Op::Binary(BinaryKind::Mul), &[v, s], &cx.tmp(n, "beta"))?
        }
        v => v,
    })
}

/// ONNX MatMul: Dense when the second operand is a constant matrix, MatMul otherwise. 1-D
/// operands follow numpy: `A [K]` is multiplied as `[1, K]` and `B [K]` as `[K, 1]`, and the
/// added axis is removed from the result (Reshapes around the product).
pub fn matmul(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let a = cx.input(n, 0)?;
    let b = cx.input(n, 1)?;
    let (sa, sb) = (cx.shape(&a), cx.shape(&b));
    if sa.is_empty() || sb.is_empty() {
        return Err(n.shape_err(format!("MatMul operands must have rank >= 1, got {sa:?} and {sb:?}")));
    }
    if sa.len() < 2 || sb.len() < 2 {
        if let (Val::Const(ca), Val::Const(cb)) = (&a, &b) {
            if sa.len() <= 2 && sb.len() <= 2 {
                let c = const_matmul(ca, cb).ok_or_else(|| n.shape_err(format!("cannot multiply {sa:?} by {sb:?}")))?;
                return Ok(vec![Val::Const(ConstT { name: n.out(0), ..c })]);
            }
        }
        let (ka, kb) = (sa[sa.len() - 1], sb[sb.len().saturating_sub(2)]);
        if ka != kb {
            return Err(n.shape_err(format!("cannot multiply {sa:?} by {sb:?}")));
        }
        let a2 = if sa.len() == 1 { reshape_to(cx, n, a, vec![1, sa[0]], &cx.tmp(n, "A_2d"))? } else { a };
        let b2 = if sb.len() == 1 { reshape_to(cx, n, b, vec![sb[0], 1], &cx.tmp(n, "B_2d"))? } else { b };
        let y = matmul2(cx, n, a2, b2, &cx.tmp(n, "matmul"))?;
        // y is [.., M, N]: drop N (= 1) for a 1-D B, then M (= 1) for a 1-D A.
        let mut out = cx.shape(&y);
        let r = out.len();
        if sb.len() == 1 {
            out.remove(r - 1);
        }
        if sa.len() == 1 {
            out.remove(r - 2);
        }
        return Ok(vec![reshape_to(cx, n, y, out, &n.out(0))?]);
    }
    Ok(vec![matmul2(cx, n, a, b, &n.out(0))?])
}

/// MatMul of operands of rank >= 2.
fn matmul2(cx: &mut Ctx, n: &NodeInfo, a: Val, b: Val, out: &str) -> Result<Val, ImportError> {
    if let (Val::Act(_), Val::Const(bc)) = (&a, &b) {
        if bc.shape.len() == 2 {
            let w = value::transpose(bc, &[1, 0]);
            let w = ConstT { name: format!("{}_T", bc.name), ..w };
            return cx.emit(n, Op::Dense { act: Activation::None }, &[a, Val::Const(w)], out);
        }
    }
    cx.emit(n, Op::MatMul, &[a, b], out)
}

/// Plain matrix product of small constants (1-D operands promoted as in numpy).
fn const_matmul(a: &ConstT, b: &ConstT) -> Option<ConstT> {
    let (m, k) = match a.shape.len() {
        1 => (1, a.shape[0]),
        2 => (a.shape[0], a.shape[1]),
        _ => return None,
    };
    let (k2, nn) = match b.shape.len() {
        1 => (b.shape[0], 1),
        2 => (b.shape[0], b.shape[1]),
        _ => return None,
    };
    if k != k2 {
        return None;
    }
    let (va, vb) = (a.data.to_f32(), b.data.to_f32());
    let mut o = vec![0f32; m * nn];
    for i in 0..m {
        for j in 0..nn {
            o[i * nn + j] = (0..k).map(|p| va[i * k + p] * vb[p * nn + j]).sum();
        }
    }
    let mut shape = Vec::new();
    if a.shape.len() == 2 {
        shape.push(m);
    }
    if b.shape.len() == 2 {
        shape.push(nn);
    }
    Some(ConstT::new("matmul", shape, Data::F(o)))
}
