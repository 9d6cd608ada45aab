//! Values flowing between ONNX nodes during import, and direct evaluation helpers for
//! constants (int64 shape arithmetic and f32 data movement).

use crate::ir::TensorId;

/// Elements of a constant: float or integer (int64 shape arithmetic, bools as 0/1).
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// Float values (any ONNX float type, widened or narrowed to f32).
    F(Vec<f32>),
    /// Integer values (any ONNX integer type or bool).
    I(Vec<i64>),
}

impl Data {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::F(v) => v.len(),
            Data::I(v) => v.len(),
        }
    }

    /// True for integer data.
    pub fn is_int(&self) -> bool {
        matches!(self, Data::I(_))
    }

    /// The values as f32.
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Data::F(v) => v.clone(),
            Data::I(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as i64 (floats truncated toward zero).
    pub fn to_i64(&self) -> Vec<i64> {
        match self {
            Data::F(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I(v) => v.clone(),
        }
    }

    /// Element `i` as f64.
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            Data::F(v) => v[i] as f64,
            Data::I(v) => v[i] as f64,
        }
    }

    /// Elements picked by source index (data movement: gather, transpose, broadcast, slice).
    pub fn take(&self, idx: &[usize]) -> Data {
        match self {
            Data::F(v) => Data::F(idx.iter().map(|&i| v[i]).collect()),
            Data::I(v) => Data::I(idx.iter().map(|&i| v[i]).collect()),
        }
    }
}

/// A constant known at import time.
#[derive(Clone, Debug)]
pub struct ConstT {
    /// Name (ONNX value name, or derived name for values made by the importer).
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Elements, row-major.
    pub data: Data,
    /// Materialize at most once under this name (ONNX values read by several nodes).
    pub shared: bool,
    /// ONNX element type code of a tensor read from the model (0: made by the importer).
    /// QuantizeLinear takes its integer range from its zero point's type.
    pub elem: i32,
}

impl ConstT {
    /// A new, unshared constant.
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: Data) -> ConstT {
        ConstT { name: name.into(), shape, data, shared: false, elem: 0 }
    }

    /// A float constant.
    pub fn f32(name: impl Into<String>, shape: Vec<usize>, v: Vec<f32>) -> ConstT {
        ConstT::new(name, shape, Data::F(v))
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Same data, new shape.
    pub fn reshaped(&self, shape: Vec<usize>) -> ConstT {
        ConstT::new(self.name.clone(), shape, self.data.clone())
    }
}

/// A value during import.
#[derive(Clone, Debug)]
pub enum Val {
    /// An activation (or graph input) tensor of the graph.
    Act(TensorId),
    /// A constant.
    Const(ConstT),
    /// Output of an unsupported node (only used to keep scanning the graph).
    Unknown,
}

/// Row-major strides.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// numpy broadcast of two shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
        let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
        *o = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(out)
}

/// For each element of `out` (a broadcast of `src`), the index of its source element in `src`.
pub fn broadcast_index(src: &[usize], out: &[usize]) -> Vec<usize> {
    let n: usize = out.iter().product();
    let r = out.len();
    let off = r - src.len();
    let ss = strides(src);
    let mut idx = Vec::with_capacity(n);
    let mut coord = vec![0usize; r];
    for _ in 0..n {
        let mut s = 0;
        for k in 0..src.len() {
            if src[k] != 1 {
                s += coord[k + off] * ss[k];
            }
        }
        idx.push(s);
        for k in (0..r).rev() {
            coord[k] += 1;
            if coord[k] < out[k] {
                break;
            }
            coord[k] = 0;
        }
    }
    idx
}

/// Broadcasts a constant to `out` shape.
pub fn expand(c: &ConstT, out: &[usize]) -> ConstT {
    let idx = broadcast_index(&c.shape, out);
    ConstT::new(c.name.clone(), out.to_vec(), c.data.take(&idx))
}

/// Source indices of a transposition (`out[i] = in[perm[i]]`) and the output shape.
pub fn permute_index(shape: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let st = strides(shape);
    let pst: Vec<usize> = perm.iter().map(|&p| st[p]).collect();
    let n: usize = out.iter().product();
    let mut idx = Vec::with_capacity(n);
    let mut coord = vec![0usize; out.len()];
    for _ in 0..n {
        idx.push(coord.iter().zip(&pst).map(|(c, s)| c * s).sum());
        for k in (0..out.len()).rev() {
            coord[k] += 1;
            if coord[k] < out[k] {
                break;
            }
            coord[k] = 0;
        }
    }
    (out, idx)
}

/// Transposes a constant.
pub fn transpose(c: &ConstT, perm: &[usize]) -> ConstT {
    let (shape, idx) = permute_index(&c.shape, perm);
    ConstT::new(c.name.clone(), shape, c.data.take(&idx))
}

/// Binary operators evaluated on constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    PRelu,
    Equal,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
    And,
    Or,
}

/// Element-wise binary operation with broadcasting; integer inputs give integer results
/// (integer division truncates, as in ONNX), comparisons give 0/1 integers.
pub fn binary(a: &ConstT, b: &ConstT, op: BinOp, name: &str) -> Option<ConstT> {
    let shape = broadcast_shape(&a.shape, &b.shape)?;
    let ia = broadcast_index(&a.shape, &shape);
    let ib = broadcast_index(&b.shape, &shape);
    let cmp =
        matches!(op, BinOp::Equal | BinOp::Less | BinOp::Greater | BinOp::LessOrEqual | BinOp::GreaterOrEqual | BinOp::And | BinOp::Or);
    let data = if a.data.is_int() && b.data.is_int() {
        let (va, vb) = (a.data.to_i64(), b.data.to_i64());
        let mut out = Vec::with_capacity(ia.len());
        for (&i, &j) in ia.iter().zip(&ib) {
            let (x, y) = (va[i], vb[j]);
            out.push(match op {
                BinOp::Add => x.wrapping_add(y),
                BinOp::Sub => x.wrapping_sub(y),
                BinOp::Mul => x.wrapping_mul(y),
                BinOp::Div => x.checked_div(y)?,
                BinOp::Pow => x.checked_pow(u32::try_from(y).ok()?)?,
                BinOp::Max => x.max(y),
                BinOp::Min => x.min(y),
                BinOp::PRelu => {
                    if x < 0 {
                        x.wrapping_mul(y)
                    } else {
                        x
                    }
                }
                BinOp::Equal => (x == y) as i64,
                BinOp::Less => (x < y) as i64,
                BinOp::Greater => (x > y) as i64,
                BinOp::LessOrEqual => (x <= y) as i64,
                BinOp::GreaterOrEqual => (x >= y) as i64,
                BinOp::And => (x != 0 && y != 0) as i64,
                BinOp::Or => (x != 0 || y != 0) as i64,
            });
        }
        Data::I(out)
    } else {
        let (va, vb) = (a.data.to_f32(), b.data.to_f32());
        let f = |x: f32, y: f32| -> f32 {
            match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                BinOp::Pow => x.powf(y),
                BinOp::Max => x.max(y),
                BinOp::Min => x.min(y),
                BinOp::PRelu => {
                    if x < 0.0 {
                        x * y
                    } else {
                        x
                    }
                }
                BinOp::Equal => (x == y) as i32 as f32,
                BinOp::Less => (x < y) as i32 as f32,
                BinOp::Greater => (x > y) as i32 as f32,
                BinOp::LessOrEqual => (x <= y) as i32 as f32,
                BinOp::GreaterOrEqual => (x >= y) as i32 as f32,
                BinOp::And => (x != 0.0 && y != 0.0) as i32 as f32,
                BinOp::Or => (x != 0.0 || y != 0.0) as i32 as f32,
            }
        };
        let v: Vec<f32> = ia.iter().zip(&ib).map(|(&i, &j)| f(va[i], vb[j])).collect();
        if cmp {
            Data::I(v.iter().map(|&x| x as i64).collect())
        } else {
            Data::F(v)
        }
    };
    Some(ConstT::new(name, shape, data))
}

/// Normalizes a possibly negative axis for rank `r`.
pub fn norm_axis(axis: i64, r: usize) -> Option<usize> {
    let a = if axis < 0 { axis + r as i64 } else { axis };
    if a < 0 || a >= r as i64 {
        None
    } else {
        Some(a as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_and_permute() {
        let a = ConstT::new("a", vec![2, 1], Data::I(vec![1, 2]));
        let b = ConstT::new("b", vec![3], Data::I(vec![10, 20, 30]));
        let c = binary(&a, &b, BinOp::Add, "c").unwrap();
        assert_eq!(c.shape, vec![2, 3]);
        assert_eq!(c.data, Data::I(vec![11, 21, 31, 12, 22, 32]));
        let t = transpose(&c, &[1, 0]);
        assert_eq!(t.shape, vec![3, 2]);
        assert_eq!(t.data, Data::I(vec![11, 12, 21, 22, 31, 32]));
        let d =
            binary(&ConstT::new("x", vec![1], Data::I(vec![-7])), &ConstT::new("y", vec![], Data::I(vec![2])), BinOp::Div, "d").unwrap();
        assert_eq!(d.data, Data::I(vec![-3]));
    }
}
