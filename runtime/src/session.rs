//! Inference over a caller-owned arena.

use crate::error::Error;
use crate::format::Role;
use crate::kernels::{self, Operand};
use crate::model::Model;
use crate::op::{Op, MAX_OP_INPUTS};
use crate::shape::Shape;
use crate::view::View;

/// An inference session: a validated model plus the caller's arena. Allocation-free.
pub struct Session<'m, 'a> {
    model: &'m Model<'m>,
    arena: &'a mut [f32],
    /// One per operator when made by [`Session::with_plan`], else empty (each run decodes
    /// the operator and tensor records).
    steps: &'a [Step<'m>],
}

/// Inputs a [`Step`] holds decoded; operators with more (a Concat of many tensors) are
/// decoded from their records on every run, as without a plan.
pub const STEP_INPUTS: usize = 3;

/// One operator as [`Session::run`] needs it, decoded once by [`Plan::new`]: the
/// operator, its kernel, where each input lies (a constant's view into the model, or an arena
/// range) and the output's range and shape. A session with a plan runs the same kernels on the
/// same operands, without re-reading the packed operator and tensor tables on every inference.
#[derive(Clone, Copy, Debug)]
pub struct Step<'m> {
    /// The model ([`Model::ident`]) and operator index it was decoded from.
    from: ((usize, usize), u32),
    op: Op,
    kernel: u16,
    /// Inputs, at most [`STEP_INPUTS`]; `None` for an operator decoded on every run.
    n_inputs: Option<u8>,
    /// An in-place Reshape: nothing to run.
    skip: bool,
    /// Channel-blocked layout of input 0 and of the output (`kernels::blocked::IN`, `OUT`),
    /// chosen by [`Plan::new`] on AVX-512 hosts; 0 (planar) elsewhere.
    layout: u8,
    out: (u32, u32),
    out_shape: Shape,
    inputs: [StepInput<'m>; STEP_INPUTS],
}

#[derive(Clone, Copy, Debug)]
struct StepInput<'m> {
    /// A constant's elements, else `None` and the arena floats `range`.
    view: Option<View<'m>>,
    range: (u32, u32),
    shape: Shape,
}

impl Step<'static> {
    /// A blank step, to fill an array for [`Plan::new`].
    pub const EMPTY: Step<'static> = Step {
        from: ((0, 0), u32::MAX),
        op: Op::Softmax { axis: 0, log: false },
        kernel: 0,
        n_inputs: None,
        skip: false,
        layout: 0,
        out: (0, 0),
        out_shape: Shape::SCALAR,
        inputs: [StepInput { view: None, range: (0, 0), shape: Shape::SCALAR }; STEP_INPUTS],
    };
}

/// A model's operators decoded once into caller memory ([`Step`]s), for any number of
/// sessions on that model ([`Session::with_plan`]): a session with a plan does not re-read
/// the packed operator and tensor tables on every inference (on a 2-layer fully connected
/// model that was a fifth of its time). Allocation-free like the rest of the runtime.
#[derive(Clone, Copy, Debug)]
pub struct Plan<'m, 's> {
    id: (usize, usize),
    steps: &'s [Step<'m>],
}

impl<'m, 's> Plan<'m, 's> {
    /// Decodes every operator of `model` into `steps` (at least [`Model::num_ops`] of them,
    /// e.g. `[Step::EMPTY; N]`, `size_of::<Step>()` bytes each; `Error::StepsTooFew`
    /// otherwise).
    pub fn new(model: &Model<'m>, steps: &'s mut [Step<'m>]) -> Result<Self, Error> {
        let (n, got) = (model.num_ops(), steps.len());
        let steps = steps.get_mut(..n).ok_or(Error::StepsTooFew { needed: n as u32, got: got.min(u32::MAX as usize) as u32 })?;
        for (i, st) in steps.iter_mut().enumerate() {
            *st = Session::step(model, i)?;
        }
        #[cfg(target_arch = "x86_64")]
        if kernels::blocked::ready() {
            blocked_layouts(model, steps);
        }
        Ok(Plan { id: model.ident(), steps })
    }

    /// Whether operator `op` runs channel-blocked kernels in this plan (its input or output
    /// laid out in blocks of 16 channels: chains of pointwise and depthwise Convs on AVX-512
    /// hosts, `kernels::blocked`); false for other operators and other hosts.
    pub fn blocked(&self, op: usize) -> bool {
        self.steps.get(op).is_some_and(|st| st.layout != 0)
    }

    /// A plan over steps [`Plan::new`] filled earlier for `model` (kept, say, beside the
    /// model): checks that step `i` was decoded from this model's operator `i`, one step per
    /// operator (`Error::PlanMismatch` otherwise), without decoding anything.
    pub fn from_steps(model: &Model<'m>, steps: &'s [Step<'m>]) -> Result<Self, Error> {
        let id = model.ident();
        if steps.len() != model.num_ops() || steps.iter().enumerate().any(|(i, st)| st.from != (id, i as u32)) {
            return Err(Error::PlanMismatch);
        }
        Ok(Plan { id, steps })
    }
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
        Ok(Session { model, arena, steps: &[] })
    }

    /// [`Session::new`] running `plan`'s decoded operators (a plan made for this model by
    /// [`Plan::new`]; one for another model is `Error::PlanMismatch`), so that
    /// [`Session::run`] does not decode the model's records on every inference. Same outputs
    /// as a session without a plan, bit for bit, except where the plan keeps a chain of
    /// pointwise and depthwise Convs in blocks of 16 channels ([`Plan::blocked`], AVX-512 hosts):
    /// those layers sum in another order, so their outputs agree to rounding.
    pub fn with_plan(model: &'m Model<'m>, arena: &'a mut [u8], plan: &Plan<'m, 'a>) -> Result<Self, Error> {
        if plan.id != model.ident() || plan.steps.len() != model.num_ops() {
            return Err(Error::PlanMismatch);
        }
        let mut s = Self::new(model, arena)?;
        s.steps = plan.steps;
        Ok(s)
    }

    /// Operator `i` of `model` decoded as a [`Step`].
    fn step(model: &Model<'m>, i: usize) -> Result<Step<'m>, Error> {
        let bad = Error::BadOperand { op: i as u32 };
        let o = model.op_unnamed(i).ok_or(bad)?;
        let out_t = model.tensor_unnamed(model.op_output(&o) as usize).ok_or(bad)?;
        let out_r = Self::range_of(&out_t);
        let mut st = Step {
            from: (model.ident(), i as u32),
            op: o.op,
            kernel: o.kernel,
            out: (out_r.start as u32, out_r.end as u32),
            out_shape: out_t.shape,
            ..Step::EMPTY
        };
        if let Op::Reshape { .. } = o.op {
            let in_t = model.tensor_unnamed(model.op_operand(&o, 0).unwrap_or(u32::MAX) as usize).ok_or(bad)?;
            st.skip = Self::range_of(&in_t) == out_r;
        }
        if o.n_inputs <= STEP_INPUTS {
            for (k, inp) in st.inputs.iter_mut().enumerate().take(o.n_inputs) {
                let t = model.tensor_unnamed(model.op_operand(&o, k).unwrap_or(u32::MAX) as usize).ok_or(bad)?;
                *inp = Self::input_of(model, &t);
            }
            st.n_inputs = Some(o.n_inputs as u8);
        }
        Ok(st)
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
        let (model, steps) = (self.model, self.steps);
        for i in 0..model.num_ops() {
            let bad = Error::BadOperand { op: i as u32 };
            hook(i, false);
            // Each input's constant view or arena range, and its shape: read in place from the
            // plan's step, else worked out from the records into `srcs`.
            let mut srcs;
            let decoded;
            let (op, kernel, inputs, out_r, out_shape, layout) = match steps.get(i).and_then(|st| Some((st, st.n_inputs? as usize))) {
                Some((st, n)) => {
                    if st.skip {
                        hook(i, true);
                        continue;
                    }
                    (&st.op, st.kernel, st.inputs.get(..n).ok_or(bad)?, st.out.0 as usize..st.out.1 as usize, st.out_shape, st.layout)
                }
                None => {
                    let o = model.op_unnamed(i).ok_or(bad)?;
                    let out_t = model.tensor_unnamed(model.op_output(&o) as usize).ok_or(bad)?;
                    let out_r = Self::range_of(&out_t);
                    if let Op::Reshape { .. } = o.op {
                        if self.range(model.op_operand(&o, 0).unwrap_or(u32::MAX)) == out_r {
                            hook(i, true);
                            continue;
                        }
                    }
                    srcs = [StepInput { view: None, range: (0, 0), shape: Shape::SCALAR }; MAX_OP_INPUTS];
                    for (k, src) in srcs.iter_mut().enumerate().take(o.n_inputs) {
                        let t = model.tensor_unnamed(model.op_operand(&o, k).unwrap_or(u32::MAX) as usize).ok_or(bad)?;
                        *src = Self::input_of(model, &t);
                    }
                    decoded = o;
                    (&decoded.op, decoded.kernel, srcs.get(..decoded.n_inputs).ok_or(bad)?, out_r, out_t.shape, 0)
                }
            };
            if out_r.start > out_r.end || out_r.end > self.arena.len() {
                return Err(bad);
            }
            let (head, rest) = self.arena.split_at_mut(out_r.start);
            let (out, tail) = rest.split_at_mut(out_r.end - out_r.start);
            let mut operands = [Operand::default(); MAX_OP_INPUTS];
            let n = inputs.len();
            for (o, src) in operands.iter_mut().zip(inputs) {
                let view = match src.view {
                    Some(v) => v,
                    None => {
                        let r = src.range.0 as usize..src.range.1 as usize;
                        let s = if r.end <= out_r.start {
                            head.get(r)
                        } else if r.start >= out_r.end {
                            tail.get(r.start - out_r.end..r.end - out_r.end)
                        } else {
                            None
                        };
                        View::F32(s.ok_or(Error::OperandOverlap { op: i as u32 })?)
                    }
                };
                // Field by field: a whole `Operand` built on the stack and copied was read back
                // across two of its own stores (28-byte shapes), a stalled forward per operand.
                o.view = view;
                o.shape = src.shape;
            }
            // The operator and its operands passed `Model::parse`'s checks (those
            // `execute_kernel_in` repeats on every call).
            #[cfg(target_arch = "x86_64")]
            if layout != 0 {
                kernels::blocked::run(op, layout, &operands[..n], out, &out_shape).map_err(|e| Error::from_op(i as u32, e))?;
                hook(i, true);
                continue;
            }
            let _ = layout;
            kernels::run_kernel_in::<OPS>(op, kernel, &operands[..n], out, &out_shape).map_err(|e| Error::from_op(i as u32, e))?;
            hook(i, true);
        }
        Ok(())
    }

    /// How a session reads tensor `t` as an operand.
    fn input_of(model: &Model<'m>, t: &crate::model::TensorInfo<'m>) -> StepInput<'m> {
        let r = Self::range_of(t);
        StepInput { view: (t.role == Role::Constant).then(|| model.constant(t)), range: (r.start as u32, r.end as u32), shape: t.shape }
    }
}

/// Chooses the channel-blocked layout ([`kernels::blocked`]) for every tensor whose producer
/// and every reader run blocked kernels: pointwise Convs (any input, blocked output), depthwise
/// Convs (blocked output; a planar input blocked on the stack when small enough) and whole-plane
/// averages (blocked input, planar output). A tensor
/// read by anything else, read past another input slot than the first, or a graph output stays
/// planar, and so do the operators around it, until nothing changes. A tensor is its producer's
/// arena range, read by the operators after it until an output overlaps that range.
#[cfg(target_arch = "x86_64")]
fn blocked_layouts(model: &Model<'_>, steps: &mut [Step<'_>]) {
    use kernels::blocked::{role, Role, IN, OUT};
    type Range = (u32, u32);
    let overlaps = |a: Range, b: Range| a.0 < b.1 && b.0 < a.1;
    let role_of = |st: &Step<'_>| -> Option<Role> {
        let n = st.n_inputs? as usize;
        let mut shapes = [Shape::SCALAR; STEP_INPUTS];
        let mut consts = [false; STEP_INPUTS];
        for (k, inp) in st.inputs.iter().enumerate().take(n) {
            shapes[k] = inp.shape;
            consts[k] = inp.view.is_some();
        }
        // Input 0 must be an arena tensor.
        if consts[0] {
            return None;
        }
        role(&st.op, st.kernel, &shapes[..n], &consts[..n], &st.out_shape)
    };
    // Arena ranges read by operator `j`, with their input slots (decoded from the records for
    // operators the plan does not hold decoded).
    let reads = |steps: &[Step<'_>], j: usize, f: &mut dyn FnMut(usize, Range)| {
        let st = &steps[j];
        match st.n_inputs {
            Some(n) => {
                for (k, inp) in st.inputs.iter().enumerate().take(n as usize) {
                    if inp.view.is_none() {
                        f(k, inp.range);
                    }
                }
            }
            None => {
                if let Some(o) = model.op_unnamed(j) {
                    for k in 0..o.n_inputs {
                        if let Some(t) = model.op_operand(&o, k).and_then(|t| model.tensor_unnamed(t as usize)) {
                            let r = Session::range_of(&t);
                            if !r.is_empty() {
                                f(k, (r.start as u32, r.end as u32));
                            }
                        }
                    }
                }
            }
        }
    };
    let output = |r: Range| {
        model
            .outputs()
            .any(|io| model.tensor_unnamed(io.tensor as usize).is_some_and(|t| Session::range_of(&t) == (r.0 as usize..r.1 as usize)))
    };
    // The operator whose output is the tensor operator `j` reads at `r`, if one wrote exactly it.
    let producer =
        |steps: &[Step<'_>], j: usize, r: Range| (0..j).rev().find(|&p| overlaps(steps[p].out, r)).filter(|&p| steps[p].out == r);
    for st in steps.iter_mut() {
        st.layout = if matches!(role_of(st), Some(Role::Pointwise | Role::Depthwise | Role::DepthwiseBlockedOnly)) { OUT } else { 0 };
    }
    loop {
        let mut changed = false;
        for i in 0..steps.len() {
            if steps[i].layout & OUT == 0 {
                continue;
            }
            let r = steps[i].out;
            let (mut ok, mut read) = (r.0 < r.1 && !output(r), false);
            for j in i + 1..steps.len() {
                reads(steps, j, &mut |k, ir| {
                    if overlaps(ir, r) {
                        read = true;
                        let blocked_reader = match role_of(&steps[j]) {
                            Some(Role::Pointwise | Role::Depthwise | Role::DepthwiseBlockedOnly) => steps[j].layout & OUT != 0,
                            Some(Role::Average) => true,
                            None => false,
                        };
                        ok &= ir == r && k == 0 && blocked_reader;
                    }
                });
                if overlaps(steps[j].out, r) {
                    break;
                }
            }
            // A depthwise layer too large to block its input on the stack runs blocked only on
            // a blocked input.
            if role_of(&steps[i]) == Some(Role::DepthwiseBlockedOnly) {
                let input = steps[i].inputs[0].range;
                ok &= producer(steps, i, input).is_some_and(|p| steps[p].layout & OUT != 0);
            }
            if !(ok && read) {
                steps[i].layout = 0;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    for j in 0..steps.len() {
        if role_of(&steps[j]).is_none() {
            continue;
        }
        let input = steps[j].inputs[0].range;
        if producer(steps, j, input).is_some_and(|p| steps[p].layout & OUT != 0) {
            steps[j].layout |= IN;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::kind;

    #[repr(C, align(16))]
    struct Aligned<T: ?Sized>(T);
    static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../tools/tests/data/digits_cnn_v1.0.sprig"));

    #[cfg(feature = "legacy-tables")]
    fn run<const OPS: u128>(model: &Model<'_>) -> Result<[f32; 10], Error> {
        let mut arena = [0u32; 4096];
        let mut s = Session::new(model, bytemuck::cast_slice_mut(&mut arena))?;
        s.input_mut(0)?.iter_mut().enumerate().for_each(|(i, v)| *v = (i % 7) as f32 / 7.0);
        s.run_with_in::<OPS>(|_, _| {})?;
        let mut y = [0f32; 10];
        y.copy_from_slice(s.output(0)?);
        Ok(y)
    }

    /// Without `legacy-tables` (the Cortex-M build) a file of format 1.0 to 1.8 is refused by
    /// name; `sprig` writes 1.9.
    #[cfg(not(feature = "legacy-tables"))]
    #[test]
    fn legacy_tables_are_refused_by_name() {
        let err = Model::parse(&MODEL.0).err();
        assert_eq!(err, Some(Error::LegacyTables { kind: crate::format::section::TENSORS }));
    }

    /// A session with a plan gives the bits of one without, on every run; a plan is refused
    /// for another model, with too few steps, or with its steps out of order.
    #[cfg(feature = "legacy-tables")]
    #[test]
    fn a_plan_runs_the_same_operators() {
        let model = Model::parse(&MODEL.0).unwrap();
        let n = model.num_ops();
        let want = run::<{ kernels::ALL_OPS }>(&model).unwrap();
        let mut steps = [Step::EMPTY; 32];
        assert!(n <= steps.len());
        let plan = Plan::new(&model, &mut steps).unwrap();
        let mut arena = [0u32; 4096];
        let mut s = Session::with_plan(&model, bytemuck::cast_slice_mut(&mut arena), &plan).unwrap();
        for _ in 0..2 {
            s.input_mut(0).unwrap().iter_mut().enumerate().for_each(|(i, v)| *v = (i % 7) as f32 / 7.0);
            s.run().unwrap();
            assert_eq!(
                s.output(0).unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
        // The same steps again, checked without decoding.
        assert!(Plan::from_steps(&model, &steps[..n]).is_ok());
        assert_eq!(Plan::from_steps(&model, &steps[..n - 1]).err(), Some(Error::PlanMismatch));
        let mut swapped = steps;
        swapped.swap(0, 1);
        assert_eq!(Plan::from_steps(&model, &swapped[..n]).err(), Some(Error::PlanMismatch));
        let mut few = [Step::EMPTY; 1];
        assert_eq!(Plan::new(&model, &mut few).err(), Some(Error::StepsTooFew { needed: n as u32, got: 1 }));
        // A copy of the file is another model.
        let copy = Aligned(*include_bytes!("../../tools/tests/data/digits_cnn_v1.0.sprig"));
        let other = Model::parse(&copy.0).unwrap();
        let plan = Plan::new(&model, &mut steps).unwrap();
        assert_eq!(Session::with_plan(&other, bytemuck::cast_slice_mut(&mut arena), &plan).err(), Some(Error::PlanMismatch));
        assert_eq!(Plan::from_steps(&other, &steps[..n]).err(), Some(Error::PlanMismatch));
    }

    #[cfg(feature = "legacy-tables")]
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
