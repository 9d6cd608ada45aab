//! Constants and shape arithmetic, evaluated at import: Constant, ConstantOfShape, Shape, Size,
//! Gather, Range, Where, Cast and CastLike.

use tract_onnx::pb::tensor_proto::DataType;

use crate::import::ctx::{Ctx, NodeInfo};
use crate::import::proto::load_tensor;
use crate::import::value::{broadcast_index, broadcast_shape, norm_axis, ConstT, Data, Val};
use crate::import::ImportError;

fn int(name: String, shape: Vec<usize>, v: Vec<i64>) -> Val {
    Val::Const(ConstT::new(name, shape, Data::I(v)))
}

/// Cast: numeric conversion of constants; float → float casts of activations vanish.
pub fn cast(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let to = n.attr_i("to", 0)?;
    let dt = DataType::try_from(to as i32).map_err(|_| n.attr_err("to", format!("unknown data type {to}")))?;
    let float = matches!(dt, DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16);
    let target = if float {
        Target::Float
    } else if dt == DataType::Bool {
        Target::Bool
    } else {
        Target::Int
    };
    cast_to(n, x, target, dt.as_str_name())
}

/// CastLike: Cast to the element type of input 1. Activations are always float; constants are
/// float or integer (bool is not told apart from the integer types).
pub fn cast_like(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let target = match cx.input(n, 1)? {
        Val::Const(c) if c.data.is_int() => Target::Int,
        _ => Target::Float,
    };
    cast_to(n, x, target, "an integer type")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Float,
    Int,
    Bool,
}

fn cast_to(n: &NodeInfo, x: Val, target: Target, type_name: &str) -> Result<Vec<Val>, ImportError> {
    match x {
        Val::Const(c) => {
            let data = match target {
                Target::Float => Data::F(c.data.to_f32()),
                Target::Bool => Data::I(c.data.to_f32().iter().map(|&v| (v != 0.0) as i64).collect()),
                Target::Int => Data::I(c.data.to_i64()),
            };
            Ok(vec![Val::Const(ConstT::new(n.out(0), c.shape.clone(), data))])
        }
        x if target == Target::Float => Ok(vec![x]),
        _ => Err(n.unsupported(format!("cast of an activation to {type_name}"))),
    }
}

/// Constant (value / value_float(s) / value_int(s)).
pub fn constant(_cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let out = n.out(0);
    if let Some(a) = n.attr("value") {
        let t = a.t.as_ref().ok_or_else(|| n.attr_err("value", "missing tensor"))?;
        return Ok(vec![Val::Const(load_tensor(t, &out, None)?)]);
    }
    if let Some(a) = n.attr("value_float") {
        return Ok(vec![Val::Const(ConstT::f32(out, vec![], vec![a.f]))]);
    }
    if let Some(a) = n.attr("value_floats") {
        return Ok(vec![Val::Const(ConstT::f32(out, vec![a.floats.len()], a.floats.clone()))]);
    }
    if let Some(a) = n.attr("value_int") {
        return Ok(vec![int(out, vec![], vec![a.i])]);
    }
    if let Some(a) = n.attr("value_ints") {
        return Ok(vec![int(out, vec![a.ints.len()], a.ints.clone())]);
    }
    Err(n.unsupported("only value, value_float(s) and value_int(s) constants are supported"))
}

/// ConstantOfShape.
pub fn constant_of_shape(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let s = cx.const_input(n, 0, "shape")?.data.to_i64();
    if s.iter().any(|&d| d < 0) {
        return Err(n.shape_err(format!("invalid shape {s:?}")));
    }
    let shape: Vec<usize> = s.iter().map(|&d| d as usize).collect();
    let total: usize = shape.iter().product();
    let fill = match n.attr("value").and_then(|a| a.t.as_ref()) {
        Some(t) => load_tensor(t, &n.out(0), None)?.data,
        None => Data::F(vec![0.0]),
    };
    if fill.len() != 1 {
        return Err(n.attr_err("value", "must hold one element"));
    }
    Ok(vec![Val::Const(ConstT::new(n.out(0), shape, fill.take(&vec![0; total])))])
}

/// Shape (with opset-15 start / end).
pub fn shape(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let s: Vec<i64> = cx.shape(&x).iter().map(|&d| d as i64).collect();
    let r = s.len() as i64;
    let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clampi(n.attr_i("start", 0)?);
    let end = clampi(n.attr_i("end", r)?);
    let v = if start < end { s[start..end].to_vec() } else { vec![] };
    Ok(vec![int(n.out(0), vec![v.len()], v)])
}

/// Size.
pub fn size(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let x = cx.input(n, 0)?;
    let total: usize = cx.shape(&x).iter().product();
    Ok(vec![int(n.out(0), vec![], vec![total as i64])])
}

/// Gather of constants.
pub fn gather(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let data = cx.const_input(n, 0, "data")?;
    let idx = cx.const_input(n, 1, "indices")?;
    let r = data.shape.len();
    let a = n.attr_i("axis", 0)?;
    let axis = norm_axis(a, r).ok_or_else(|| n.attr_err("axis", format!("{a} out of range for rank {r}")))?;
    let dim = data.shape[axis] as i64;
    let mut ids = Vec::with_capacity(idx.numel());
    for &i in &idx.data.to_i64() {
        let j = if i < 0 { i + dim } else { i };
        if j < 0 || j >= dim {
            return Err(n.shape_err(format!("index {i} out of range for axis {axis} of size {dim}")));
        }
        ids.push(j as usize);
    }
    let outer: usize = data.shape[..axis].iter().product();
    let inner: usize = data.shape[axis + 1..].iter().product();
    let mut src = Vec::with_capacity(outer * ids.len() * inner);
    for o in 0..outer {
        for &j in &ids {
            for k in 0..inner {
                src.push((o * data.shape[axis] + j) * inner + k);
            }
        }
    }
    let mut shape = data.shape[..axis].to_vec();
    shape.extend_from_slice(&idx.shape);
    shape.extend_from_slice(&data.shape[axis + 1..]);
    Ok(vec![Val::Const(ConstT::new(n.out(0), shape, data.data.take(&src)))])
}

/// Range of constants.
pub fn range(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let st = cx.const_input(n, 0, "start")?;
    let li = cx.const_input(n, 1, "limit")?;
    let de = cx.const_input(n, 2, "delta")?;
    let (a, b, d) = (st.data.get_f64(0), li.data.get_f64(0), de.data.get_f64(0));
    if d == 0.0 {
        return Err(n.shape_err("delta 0"));
    }
    let count = ((b - a) / d).ceil().max(0.0) as usize;
    if count > 1 << 24 {
        return Err(n.shape_err("range too long"));
    }
    let data = if st.data.is_int() && li.data.is_int() && de.data.is_int() {
        let (a, d) = (st.data.to_i64()[0], de.data.to_i64()[0]);
        Data::I((0..count as i64).map(|i| a + i * d).collect())
    } else {
        Data::F((0..count).map(|i| (a + i as f64 * d) as f32).collect())
    };
    Ok(vec![Val::Const(ConstT::new(n.out(0), vec![count], data))])
}

/// Where of constants.
pub fn where_(cx: &mut Ctx, n: &NodeInfo) -> Result<Vec<Val>, ImportError> {
    let c = cx.const_input(n, 0, "condition")?;
    let x = cx.const_input(n, 1, "X")?;
    let y = cx.const_input(n, 2, "Y")?;
    let shape = broadcast_shape(&c.shape, &x.shape)
        .and_then(|s| broadcast_shape(&s, &y.shape))
        .ok_or_else(|| n.shape_err(format!("shapes {:?}, {:?}, {:?} do not broadcast", c.shape, x.shape, y.shape)))?;
    let (ic, ix, iy) = (broadcast_index(&c.shape, &shape), broadcast_index(&x.shape, &shape), broadcast_index(&y.shape, &shape));
    let cond = c.data.to_f32();
    let data = if x.data.is_int() && y.data.is_int() {
        let (vx, vy) = (x.data.to_i64(), y.data.to_i64());
        Data::I((0..ic.len()).map(|i| if cond[ic[i]] != 0.0 { vx[ix[i]] } else { vy[iy[i]] }).collect())
    } else {
        let (vx, vy) = (x.data.to_f32(), y.data.to_f32());
        Data::F((0..ic.len()).map(|i| if cond[ic[i]] != 0.0 { vx[ix[i]] } else { vy[iy[i]] }).collect())
    };
    Ok(vec![Val::Const(ConstT::new(n.out(0), shape, data))])
}
