//! Inference over a caller-owned arena.

use crate::error::Error;
use crate::format::Role;
use crate::kernels::{self, Operand};
use crate::model::Model;
use crate::op::{Op, MAX_OP_INPUTS};
use crate::view::View;

/// An inference session: a validated model plus the caller's arena. Allocation-free.
pub struct Session<'m, 'a> {
    model: &'m Model<'m>,
    arena: &'a mut [f32],
}

impl<'m, 'a> Session<'m, 'a> {
    /// Binds `arena` (at least [`Model::arena_len`] bytes, 4-byte aligned) to `model`.
    pub fn new(model: &'m Model<'m>, arena: &'a mut [u8]) -> Result<Self, Error> {
        let got = arena.len();
        if got < model.arena_len() {
            return Err(Error::ArenaTooSmall { needed: model.arena_len() as u32, got: got.min(u32::MAX as usize) as u32 });
        }
        let usable = &mut arena[..model.arena_len() & !3];
        let arena: &mut [f32] = bytemuck::try_cast_slice_mut(usable).map_err(|_| Error::ArenaNotAligned)?;
        Ok(Session { model, arena })
    }

    fn range(&self, tensor: u32) -> core::ops::Range<usize> {
        self.model.tensor_unnamed(tensor as usize).map_or(0..0, |t| Self::range_of(&t))
    }

    /// The arena floats of `t` (empty for constants).
    fn range_of(t: &crate::model::TensorInfo<'_>) -> core::ops::Range<usize> {
        if t.role.in_arena() {
            let start = t.offset as usize / 4;
            start..start + t.len as usize / 4
        } else {
            0..0
        }
    }

    /// Mutable view of graph input `i`, to be filled before [`Session::run`].
    pub fn input_mut(&mut self, i: usize) -> Result<&mut [f32], Error> {
        let io = self.model.input(i).ok_or(Error::NoSuchTensor { index: i as u32 })?;
        let r = self.range(io.tensor);
        Ok(&mut self.arena[r])
    }

    /// Graph output `i` as computed by the last [`Session::run`].
    pub fn output(&self, i: usize) -> Result<&[f32], Error> {
        let io = self.model.output(i).ok_or(Error::NoSuchTensor { index: i as u32 })?;
        Ok(&self.arena[self.range(io.tensor)])
    }

    /// Runs every operator in order.
    pub fn run(&mut self) -> Result<(), Error> {
        self.run_with(|_, _| {})
    }

    /// Runs every operator, calling `hook(op_index, after)` before (`after == false`) and after
    /// (`after == true`) each one (for per-layer timing).
    pub fn run_with(&mut self, hook: impl FnMut(usize, bool)) -> Result<(), Error> {
        self.run_with_in::<{ kernels::ALL_OPS }>(hook)
    }

    /// [`Session::run_with`] with only the kernels of the operator kinds in the bit set `OPS`
    /// linked in (see [`kernels::execute_in`]; [`Model::ops_mask`] gives a model's set), each
    /// operator with the kernel its record names. An operator outside `OPS`, or a Dense / Conv
    /// with a block-sparse (codebook) weight when `OPS` lacks [`kernels::SPARSE_BIT`]
    /// ([`kernels::CODEBOOK_BIT`]), is `Err(Error::UnsupportedOp)`, before it writes anything.
    pub fn run_with_in<const OPS: u128>(&mut self, mut hook: impl FnMut(usize, bool)) -> Result<(), Error> {
        let model = self.model;
        for i in 0..model.num_ops() {
            let o = model.op_unnamed(i).ok_or(Error::BadOperand { op: i as u32 })?;
            let out_id = model.op_output(&o);
            let out_t = model.tensor_unnamed(out_id as usize).ok_or(Error::BadOperand { op: i as u32 })?;
            let out_r = Self::range_of(&out_t);
            hook(i, false);
            if let Op::Reshape { .. } = o.op {
                let in_id = model.op_operand(&o, 0).unwrap_or(u32::MAX);
                let in_r = self.range(in_id);
                if in_r == out_r {
                    hook(i, true);
                    continue;
                }
            }
            let mut ranges: [(usize, usize); MAX_OP_INPUTS] = [(0, 0); MAX_OP_INPUTS];
            let mut consts = [View::default(); MAX_OP_INPUTS];
            let mut shapes = [crate::shape::Shape::SCALAR; MAX_OP_INPUTS];
            let mut is_const = [false; MAX_OP_INPUTS];
            for k in 0..o.n_inputs {
                let id = model.op_operand(&o, k).unwrap_or(u32::MAX);
                let t = model.tensor_unnamed(id as usize).ok_or(Error::BadOperand { op: i as u32 })?;
                shapes[k] = t.shape;
                if t.role == Role::Constant {
                    consts[k] = model.constant(&t);
                    is_const[k] = true;
                } else {
                    let r = Self::range_of(&t);
                    ranges[k] = (r.start, r.end);
                }
            }
            let (head, rest) = self.arena.split_at_mut(out_r.start);
            let (out, tail) = rest.split_at_mut(out_r.end - out_r.start);
            let mut operands = [Operand::default(); MAX_OP_INPUTS];
            for k in 0..o.n_inputs {
                let view = if is_const[k] {
                    consts[k]
                } else {
                    let r = ranges[k].0..ranges[k].1;
                    let s = if r.end <= out_r.start {
                        head.get(r)
                    } else if r.start >= out_r.end {
                        tail.get(r.start - out_r.end..r.end - out_r.end)
                    } else {
                        None
                    };
                    View::F32(s.ok_or(Error::OperandOverlap { op: i as u32 })?)
                };
                operands[k] = Operand { view, shape: shapes[k] };
            }
            // The operator and its operands passed `Model::parse`'s checks (those
            // `execute_kernel_in` repeats on every call).
            kernels::run_kernel_in::<OPS>(&o.op, o.kernel, &operands[..o.n_inputs], out, &out_t.shape)
                .map_err(|e| Error::from_op(i as u32, e))?;
            hook(i, true);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::kind;

    #[repr(C, align(16))]
    struct Aligned<T: ?Sized>(T);
    static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../tools/tests/data/digits_cnn_v1.0.sprig"));

    fn run<const OPS: u128>(model: &Model<'_>) -> Result<[f32; 10], Error> {
        let mut arena = [0u32; 4096];
        let mut s = Session::new(model, bytemuck::cast_slice_mut(&mut arena))?;
        s.input_mut(0)?.iter_mut().enumerate().for_each(|(i, v)| *v = (i % 7) as f32 / 7.0);
        s.run_with_in::<OPS>(|_, _| {})?;
        let mut y = [0f32; 10];
        y.copy_from_slice(s.output(0)?);
        Ok(y)
    }

    #[test]
    fn a_restricted_kernel_set_gives_the_same_outputs_or_names_the_missing_op() {
        let model = Model::parse(&MODEL.0).unwrap();
        let mask = model.ops_mask();
        assert_ne!(mask & kernels::ops_mask(&[kind::CONV]), 0);
        const CNN: u128 = kernels::ops_mask(&[
            kind::CONV,
            kind::DENSE,
            kind::MAXPOOL,
            kind::RESHAPE,
            kind::SOFTMAX,
            kind::BINARY,
            kind::UNARY,
            kind::GLOBAL_AVGPOOL,
        ]);
        assert_eq!(mask & !CNN, 0, "digits_cnn uses kinds outside the test's set: {mask:#x}");
        let all = run::<{ kernels::ALL_OPS }>(&model).unwrap();
        assert_eq!(run::<CNN>(&model).unwrap(), all);
        const NO_CONV: u128 = CNN & !kernels::ops_mask(&[kind::CONV]);
        assert!(matches!(run::<NO_CONV>(&model), Err(Error::UnsupportedOp { kind: kind::CONV, .. })));
    }

    #[test]
    fn element_wise_functions_outside_the_set_are_refused() {
        use crate::kernels::{execute_in, ops_mask, Operand, UNARY_BITS};
        use crate::op::{OpError, UnaryKind};
        use crate::shape::Shape;
        let x = [-1.0f32, 2.0];
        let shape = Shape::new(&[2]).unwrap();
        let operand = [Operand { view: View::F32(&x), shape }];
        let mut y = [0f32; 2];
        const RELU_ONLY: u128 = (ops_mask(&[kind::UNARY]) & ((1u128 << UNARY_BITS) - 1)) | (1u128 << UNARY_BITS);
        assert_eq!(Op::Unary(UnaryKind::Relu).feature_bits(), RELU_ONLY);
        execute_in::<RELU_ONLY>(&Op::Unary(UnaryKind::Relu), &operand, &mut y, &shape).unwrap();
        assert_eq!(y, [0.0, 2.0]);
        let r = execute_in::<RELU_ONLY>(&Op::Unary(UnaryKind::Sin), &operand, &mut y, &shape);
        assert_eq!(r, Err(OpError::UnknownKind(kind::UNARY)));
        assert_eq!(y, [0.0, 2.0], "nothing written");
    }
}
