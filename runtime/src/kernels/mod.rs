//! Reference kernels: plain, obviously-correct loops, one module per kind of operator.
//!
//! Contract: [`execute`] is called only with operand shapes accepted by [`Op::infer`] and an
//! output slice of exactly `out_shape.numel()` elements; under that precondition no kernel
//! panics or reads out of bounds. [`execute`] re-checks the precondition itself (element counts
//! of every view, and `Op::infer` against `out_shape`) and returns an error instead of running a
//! kernel on inconsistent operands.
//!
//! All arithmetic is f32; transcendental functions come from `libm` (the crate is `no_std`).

mod affine;
mod binary;
#[cfg(target_arch = "x86_64")]
pub(crate) mod blocked;
mod concat;
mod conv;
mod conv_bsr;
mod conv_codebook;
mod conv_quads;
mod dense;
mod dense_bsr;
mod dense_codebook;
mod depthwise;
pub(crate) mod gemm;
pub(crate) mod input_sparse;
mod layernorm;
mod matmul;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
mod pad;
mod pool;
mod reduce;
mod reshape;
mod resize;
mod slice;
mod softmax;
mod transpose;
mod unary;
#[cfg(target_arch = "x86_64")]
mod winograd;
#[cfg(target_arch = "aarch64")]
mod winograd_neon;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod winograd_plan;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

use crate::format::kernel;
use crate::op::{kind, Op, OpError, PadMode, MAX_OP_INPUTS};
use crate::shape::{Shape, MAX_RANK};
use crate::view::View;

pub use gemm::simd_name;

/// Runs `f`, compiled for this CPU's SIMD registers where it has a micro-kernel set (the
/// block-sparse and input-sparse kernels are written as plain loops the compiler vectorises;
/// they are forced inline on those targets so this reaches them). A plain call elsewhere.
#[inline(always)]
fn with_simd<T>(f: impl FnOnce() -> T) -> T {
    use gemm::Micro;
    match gemm::simd() {
        Some(mk) => mk.run(f),
        None => f(),
    }
}

/// Turns the SIMD f32 Conv / Dense / depthwise kernels on or off for the whole process (on by
/// default where the CPU has them). Off, every layer runs the portable loops: benchmarks use
/// this to time both on the same model. Results differ only by summation order.
#[cfg(feature = "std")]
pub fn set_simd(on: bool) {
    gemm::SIMD_ON.store(on, core::sync::atomic::Ordering::Relaxed);
}

/// Turns the AVX-512 kernels on or off for the whole process (on by default where the CPU has
/// them). Off, an AVX-512 CPU runs the AVX2 + FMA kernels, as a CPU without AVX-512 does:
/// benchmarks use this to time that tier. A no-op on other architectures.
#[cfg(feature = "std")]
pub fn set_avx512(on: bool) {
    #[cfg(target_arch = "x86_64")]
    x86::AVX512_ON.store(on, core::sync::atomic::Ordering::Relaxed);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = on;
}

/// One input operand: its elements and shape.
#[derive(Clone, Copy, Debug, Default)]
pub struct Operand<'a> {
    /// The elements (activation slice or stored constant).
    pub view: View<'a>,
    /// The shape.
    pub shape: Shape,
}

/// Runs `op` on `inputs`, writing every element of `out`.
///
/// Returns `Err(OpError::BadArity)` for a wrong number of inputs, `Err(OpError::BadAttribute)`
/// for degenerate attributes, and `Err(OpError::ShapeMismatch)` when an input view's length
/// differs from its shape's element count, when `Op::infer` rejects the input shapes or infers a
/// shape other than `out_shape`, or when `out.len() != out_shape.numel()`. It never panics.
pub fn execute(op: &Op, inputs: &[Operand<'_>], out: &mut [f32], out_shape: &Shape) -> Result<(), OpError> {
    execute_in::<{ ALL_OPS }>(op, inputs, out, out_shape)
}

/// [`execute`] restricted to the kernel set `OPS`: bit `k < 64` = operator kind code `k` (see
/// [`ops_mask`]), bit `UNARY_BITS + c` = unary function code `c`, bit `BINARY_BITS + c` = binary
/// function code `c` ([`Op::feature_bits`]), bit [`SPARSE_BIT`] = the block-sparse Dense / Conv
/// kernels, bit [`CODEBOOK_BIT`] = the codebook Dense / Conv kernels (`Model::ops_mask` gives a
/// model's set). Kernels outside `OPS` are never referenced, so the linker drops them: a firmware
/// built with its model's set carries only that model's kernels (and, for element-wise ops, only
/// the functions it uses: no `sin` for a ReLU network). An operator outside the set, or a Dense /
/// Conv whose weight is [`View::Bsr`] without [`SPARSE_BIT`] (or [`View::Codebook`] without
/// [`CODEBOOK_BIT`]) in the set, is `Err(OpError::UnknownKind(kind))`, before anything is written.
pub fn execute_in<const OPS: u128>(op: &Op, inputs: &[Operand<'_>], out: &mut [f32], out_shape: &Shape) -> Result<(), OpError> {
    execute_kernel_in::<OPS>(op, kernel::DEFAULT, inputs, out, out_shape)
}

/// [`execute_in`] with the kernel chosen by the operator record's kernel code (see
/// [`format::kernel`](crate::format::kernel)): `DEFAULT` runs what [`execute_in`] runs;
/// `CODEBOOK_LUT` runs the per-codeword-sums Dense kernel and applies only to a Dense whose weight
/// is [`View::Codebook`]; `INPUT_SPARSE` runs the input-sparse kernel and applies only to a Dense
/// or a 1×1 Conv (group 1, no padding) whose weight, f32, f16 or codebook, is stored input-major
/// (its shape has dims 0 and 1 swapped), and needs [`INPUT_SPARSE_BIT`] in `OPS`. Any other
/// pairing of code and operator is `Err(OpError::BadAttribute)`, before anything is written
/// (`Model::parse` refuses such records).
pub fn execute_kernel_in<const OPS: u128>(
    op: &Op,
    kernel: u16,
    inputs: &[Operand<'_>],
    out: &mut [f32],
    out_shape: &Shape,
) -> Result<(), OpError> {
    check(op, kernel == kernel::INPUT_SPARSE, inputs, out, out_shape)?;
    run_kernel_in::<OPS>(op, kernel, inputs, out, out_shape)
}

/// Layout bit of [`execute_blocked`]: input 0 is channel-blocked (16 channels per position).
pub const BLOCKED_IN: u8 = 1;
/// Layout bit of [`execute_blocked`]: the output is channel-blocked.
pub const BLOCKED_OUT: u8 = 2;

/// Runs `op` with the channel-blocked kernels a [`Plan`](crate::Plan) uses on AVX-512 hosts
/// (a tensor of `c` channels, a multiple of 16, over `hw` positions holds channel `ch` at
/// position `p` at `(ch / 16)·16·hw + p·16 + ch mod 16` per batch item): a 1×1 Conv (group 1,
/// stride 1, no padding, a multiple of 16 filters) from a planar or blocked input to a blocked
/// output, a depthwise 3 × 3 Conv to a blocked output, or an AveragePool over whole planes /
/// GlobalAveragePool from a blocked input, with `layout` the [`BLOCKED_IN`] / [`BLOCKED_OUT`]
/// bits. After [`execute`]'s operand checks; `Err` before anything is written for any other
/// operator or layout, or on a CPU without AVX-512 (every target but x86-64).
pub fn execute_blocked(op: &Op, layout: u8, inputs: &[Operand<'_>], out: &mut [f32], out_shape: &Shape) -> Result<(), OpError> {
    check(op, false, inputs, out, out_shape)?;
    #[cfg(target_arch = "x86_64")]
    if blocked::ready() {
        return blocked::run(op, layout, inputs, out, out_shape);
    }
    let _ = layout;
    Err(OpError::UnknownKind(op.kind_code()))
}

/// [`execute_kernel_in`] without its operand checks (arity, attributes, operand lengths against
/// their shapes, the output shape [`Op::infer`] gives): for operators of a parsed
/// [`Model`](crate::model::Model) on operands taken from it, which `Model::parse` checked
/// (a session runs them every inference). Anything else must go through
/// [`execute_kernel_in`].
pub(crate) fn run_kernel_in<const OPS: u128>(
    op: &Op,
    kernel: u16,
    inputs: &[Operand<'_>],
    out: &mut [f32],
    out_shape: &Shape,
) -> Result<(), OpError> {
    let input_sparse = kernel == kernel::INPUT_SPARSE;
    let lut = match kernel {
        kernel::DEFAULT | kernel::INPUT_SPARSE => false,
        kernel::CODEBOOK_LUT if matches!(op, Op::Dense { .. }) && matches!(inputs.get(1).map(|w| w.view), Some(View::Codebook(_))) => true,
        _ => return Err(OpError::BadAttribute),
    };
    if out.is_empty() {
        return Ok(());
    }
    if input_sparse {
        return match op {
            Op::Dense { act } if const { has::<OPS>(kind::DENSE) && has_fn::<OPS>(INPUT_SPARSE_BIT) } => with_simd(
                #[inline(always)]
                || input_sparse::dense(*act, inputs, out, out_shape),
            ),
            Op::Conv(a) if const { has::<OPS>(kind::CONV) && has_fn::<OPS>(INPUT_SPARSE_BIT) } => with_simd(
                #[inline(always)]
                || input_sparse::conv1x1(a, inputs, out, out_shape),
            ),
            _ => Err(OpError::UnknownKind(op.kind_code())),
        };
    }
    match op {
        Op::Conv(a) if const { has::<OPS>(kind::CONV) } => match inputs[1].view {
            View::Bsr(w) if const { has_fn::<OPS>(SPARSE_BIT) } => with_simd(
                #[inline(always)]
                || conv_bsr::conv_bsr(a, inputs, &w, out, out_shape),
            ),
            View::Codebook(w) if const { has_fn::<OPS>(CODEBOOK_BIT) } => conv_codebook::conv_codebook(a, inputs, &w, out, out_shape),
            View::Bsr(_) | View::Codebook(_) => Err(OpError::UnknownKind(kind::CONV)),
            _ => conv::conv::<OPS>(a, inputs, out, out_shape),
        },
        Op::Dense { act } if const { has::<OPS>(kind::DENSE) } => match inputs[1].view {
            View::Bsr(w) if const { has_fn::<OPS>(SPARSE_BIT) } => with_simd(
                #[inline(always)]
                || dense_bsr::dense_bsr(*act, inputs, &w, out, out_shape),
            ),
            View::Codebook(w) if const { has_fn::<OPS>(CODEBOOK_BIT) } => {
                dense_codebook::dense_codebook(*act, lut, inputs, &w, out, out_shape)
            }
            View::Bsr(_) | View::Codebook(_) => Err(OpError::UnknownKind(kind::DENSE)),
            _ => dense::dense(*act, inputs, out, out_shape),
        },
        Op::MatMul if const { has::<OPS>(kind::MATMUL) } => matmul::matmul(&inputs[0], &inputs[1], out, out_shape),
        Op::Binary(k) if const { has::<OPS>(kind::BINARY) } => binary::binary::<OPS>(*k, &inputs[0], &inputs[1], out, out_shape),
        Op::Unary(k) if const { has::<OPS>(kind::UNARY) } => unary::unary::<OPS>(*k, &inputs[0].view, out),
        Op::Softmax { axis, log } if const { has::<OPS>(kind::SOFTMAX) } => softmax::softmax(*axis as usize, *log, &inputs[0], out),
        Op::MaxPool(p) if const { has::<OPS>(kind::MAXPOOL) } => pool::pool(p, false, &inputs[0], out, out_shape),
        Op::AveragePool(p) if const { has::<OPS>(kind::AVGPOOL) } => pool::pool(p, true, &inputs[0], out, out_shape),
        Op::GlobalAveragePool if const { has::<OPS>(kind::GLOBAL_AVGPOOL) } => pool::global(true, &inputs[0], out),
        Op::GlobalMaxPool if const { has::<OPS>(kind::GLOBAL_MAXPOOL) } => pool::global(false, &inputs[0], out),
        Op::Reshape { .. } if const { has::<OPS>(kind::RESHAPE) } => {
            reshape::reshape(&inputs[0].view, out);
            Ok(())
        }
        Op::Transpose { perm } if const { has::<OPS>(kind::TRANSPOSE) } => transpose::transpose(perm, &inputs[0], out, out_shape),
        Op::Concat { axis } if const { has::<OPS>(kind::CONCAT) } => concat::concat(*axis as usize, inputs, out, out_shape),
        Op::Pad { pads, value, mode: PadMode::Constant } if const { has::<OPS>(kind::PAD) } => {
            pad::pad(pads, *value, &inputs[0], out, out_shape)
        }
        Op::Pad { pads, value: _, mode } if const { has::<OPS>(kind::PAD) } => pad::pad_border(pads, *mode, &inputs[0], out, out_shape),
        Op::ChannelAffine if const { has::<OPS>(kind::CHANNEL_AFFINE) } => {
            affine::channel_affine(&inputs[0], &inputs[1].view, &inputs[2].view, out)
        }
        Op::LayerNorm { axis, epsilon } if const { has::<OPS>(kind::LAYER_NORM) } => {
            layernorm::layer_norm(*axis as usize, *epsilon, &inputs[0], &inputs[1].view, inputs.get(2), out)
        }
        Op::Reduce { kind, axes, keepdims: _ } if const { has::<OPS>(kind::REDUCE) } => reduce::reduce(*kind, *axes, &inputs[0], out),
        Op::Slice { starts, steps, lens: _ } if const { has::<OPS>(kind::SLICE) } => {
            slice::slice(starts, steps, &inputs[0], out, out_shape)
        }
        Op::Resize(a) if const { has::<OPS>(kind::RESIZE) } => resize::resize(a, &inputs[0], out, out_shape),
        _ => Err(OpError::UnknownKind(op.kind_code())),
    }
}

/// Every kernel this runtime has.
pub const ALL_OPS: u128 = u128::MAX;
/// First bit of the unary function codes in a kernel set.
pub const UNARY_BITS: u32 = 64;
/// First bit of the binary function codes in a kernel set (codes `0..30`, bits 96 to 125).
pub const BINARY_BITS: u32 = 96;
/// Bit of the codebook Dense and Conv kernels (both the decode-and-dot and the
/// `CODEBOOK_LUT` kernels) in a kernel set: without it a Dense / Conv with a [`View::Codebook`]
/// weight is refused (`UnknownKind`), and firmware for models without codebook constants does
/// not link those kernels. [`ops_mask`] never sets it; `Model::ops_mask` does when a constant is
/// codebook-quantized.
pub const CODEBOOK_BIT: u32 = 126;
/// Bit of the block-sparse Dense and Conv kernels in a kernel set: without it a Dense / Conv
/// with a [`View::Bsr`] weight is refused (`UnknownKind`) instead of running the slow generic
/// path, and firmware for models without block-sparse constants does not link those kernels.
/// [`ops_mask`] never sets it; `Model::ops_mask` does when a constant is block-sparse.
pub const SPARSE_BIT: u32 = 127;
/// Bit of the input-sparse Dense / 1×1 Conv kernels (kernel code `INPUT_SPARSE`) in a kernel
/// set: without it an operator whose record names that kernel is refused (`UnknownKind`), and
/// firmware for models that do not use it does not link it. It is the last operator-kind bit:
/// kind code 63 is reserved for it. [`ops_mask`] never sets it; `Model::ops_mask` does when an
/// operator uses the kernel.
pub const INPUT_SPARSE_BIT: u32 = 63;

/// Bit of [`conv`]'s register-blocked kernel for 3 × 3 Convs at stride 1 or 2 and 5 × 5 Convs at
/// stride 1 of several input channels per group (4 filters × 4 pixels; ResNet-8's stages,
/// MNIST's second layer) in a kernel set. This and the
/// next three bits name Conv kernels that only scalar FPUs (Cortex-M4F/M7/M33, 32-bit Arm Linux)
/// run, each several KB of code: a firmware built with its model's set (`Model::ops_mask` sets a
/// bit when one of the model's Convs has a shape the kernel takes) links only those its Convs
/// use; without the bit a Conv runs the general loops instead, with the same results up to
/// rounding. Kind codes 59–62 are reserved for these bits.
pub const CONV_QUADS_BIT: u32 = 59;
/// Bit of [`conv`]'s 1 × 1 stride-1 kernel in register blocks of 4 filters × 4 pixels (VWW's
/// wide pointwise layers); see [`CONV_QUADS_BIT`].
pub const CONV_1X1_BLOCKS_BIT: u32 = 60;
/// Bit of [`conv`]'s kernel for one-channel groups with 3- or 5-wide kernels in blocks of 8
/// outputs of a row (MNIST's stem, VWW's wide depthwise layers); see [`CONV_QUADS_BIT`].
pub const CONV_ROW_BLOCKS_BIT: u32 = 61;
/// Bit of [`conv`]'s 3 × 3 stride-1 "same" kernel for rows of at most 8 outputs held whole in
/// registers (kws_dscnn's depthwise layers); see [`CONV_QUADS_BIT`].
pub const CONV_ROWS3_BIT: u32 = 62;
/// Every register-blocked Conv kernel bit, with what the kernel is for.
pub const CONV_KERNEL_BITS: [(u32, &str); 4] = [
    (CONV_QUADS_BIT, "Conv 3x3/5x5, 4 filters x 4 pixels"),
    (CONV_1X1_BLOCKS_BIT, "Conv 1x1, 4 filters x 4 pixels"),
    (CONV_ROW_BLOCKS_BIT, "Conv one-channel rows, 8 outputs"),
    (CONV_ROWS3_BIT, "Conv 3x3 short rows"),
];

/// The register-blocked Conv kernel bits (see [`CONV_QUADS_BIT`]) a Conv with these attributes
/// and operand shapes (input, weight, output) can run: the kernels' own conditions on the
/// geometry, evaluated as on a target with an FPU (on others those kernels are never linked,
/// whatever the bits).
pub fn conv_kernel_bits(a: &crate::op::ConvAttrs, x: &Shape, w: &Shape, y: &Shape) -> u128 {
    conv::kernel_bits(a, x, w, y)
}

/// The kernel set (for [`execute_in`]) holding the given kind codes, with every function of the
/// element-wise kinds among them and every Conv kernel when Conv is one (add [`SPARSE_BIT`] for
/// block-sparse weights, [`CODEBOOK_BIT`] for codebook weights).
pub const fn ops_mask(kinds: &[u16]) -> u128 {
    let mut m = 0;
    let mut i = 0;
    while i < kinds.len() {
        if kinds[i] < 64 {
            m |= 1 << kinds[i];
        }
        if kinds[i] == kind::CONV {
            m |= (1 << CONV_QUADS_BIT) | (1 << CONV_1X1_BLOCKS_BIT) | (1 << CONV_ROW_BLOCKS_BIT) | (1 << CONV_ROWS3_BIT);
        }
        if kinds[i] == kind::UNARY {
            m |= (u32::MAX as u128) << UNARY_BITS;
        }
        if kinds[i] == kind::BINARY {
            m |= ((1u128 << (CODEBOOK_BIT - BINARY_BITS)) - 1) << BINARY_BITS;
        }
        i += 1;
    }
    m
}

#[inline(always)]
const fn has<const OPS: u128>(kind: u16) -> bool {
    kind < 64 && OPS & (1 << kind) != 0
}

/// Whether function bit `bit` (`UNARY_BITS + code` or `BINARY_BITS + code`) is in `OPS`.
#[inline(always)]
pub(crate) const fn has_fn<const OPS: u128>(bit: u32) -> bool {
    bit < 128 && OPS & (1 << bit) != 0
}

/// Validates arity, attributes, view lengths and the output shape before any kernel runs; with
/// `input_sparse`, also that the `INPUT_SPARSE` kernel applies and that its weight (stored
/// input-major) is a dense or codebook tensor.
fn check(op: &Op, input_sparse: bool, inputs: &[Operand<'_>], out: &[f32], out_shape: &Shape) -> Result<(), OpError> {
    let (lo, hi) = op.arity();
    if inputs.len() < lo || inputs.len() > hi || inputs.len() > MAX_OP_INPUTS {
        return Err(OpError::BadArity);
    }
    // Attributes that `Op::decode` rejects but a hand-built `Op` might carry (and that would make
    // `Op::infer` or a kernel divide by zero).
    match op {
        Op::Conv(c) if c.group == 0 || c.stride.contains(&0) || c.dilation.contains(&0) => return Err(OpError::BadAttribute),
        Op::MaxPool(p) | Op::AveragePool(p) if p.kernel.contains(&0) || p.stride.contains(&0) || p.dilation.contains(&0) => {
            return Err(OpError::BadAttribute)
        }
        _ => {}
    }
    let mut shapes = [Shape::SCALAR; MAX_OP_INPUTS];
    for (s, i) in shapes.iter_mut().zip(inputs) {
        if i.shape.numel() != Some(i.view.len()) {
            return Err(OpError::ShapeMismatch);
        }
        *s = i.shape;
    }
    if out_shape.numel() != Some(out.len()) {
        return Err(OpError::ShapeMismatch);
    }
    if input_sparse {
        shapes[1] = input_sparse::swap01(shapes[1]);
        let plain = matches!(inputs.get(1).map(|w| w.view), Some(View::F32(_) | View::F32Le(_) | View::F16Le(_) | View::Codebook(_)));
        if !plain || !input_sparse::applies(op, &shapes[1]) {
            return Err(OpError::BadAttribute);
        }
    }
    if op.infer(&shapes[..inputs.len()])? != *out_shape {
        return Err(OpError::ShapeMismatch);
    }
    Ok(())
}

/// Number of elements decoded at a time from non-native views into a stack buffer.
pub(crate) const CHUNK: usize = 256;

/// Elements `start..start + len` of `v` as a slice: borrowed in place from native f32 views,
/// otherwise decoded into `buf` (`len <= buf.len()`; shorter when out of range).
#[inline]
pub(crate) fn chunk<'r>(v: View<'r>, start: usize, len: usize, buf: &'r mut [f32]) -> &'r [f32] {
    if let Some(s) = v.as_f32().and_then(|s| s.get(start..start.saturating_add(len))) {
        return s;
    }
    let n = len.min(buf.len());
    let b: &'r mut [f32] = buf;
    let (head, _) = b.split_at_mut(n);
    let bytes = |w: usize, raw: &'r [u8]| raw.get(start.checked_mul(w)?..start.checked_add(n)?.checked_mul(w)?);
    match v {
        View::F16Le(raw) => match bytes(2, raw) {
            Some(src) => {
                for (o, c) in head.iter_mut().zip(src.chunks_exact(2)) {
                    *o = half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
                }
            }
            None => v.read_into(start, head),
        },
        View::F32Le(raw) => match bytes(4, raw) {
            Some(src) => {
                for (o, c) in head.iter_mut().zip(src.chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            None => v.read_into(start, head),
        },
        View::F32(_) | View::Bsr(_) | View::Codebook(_) | View::U8(_) => v.read_into(start, head),
    }
    head
}

/// `Err(ShapeMismatch)` helper for sub-slicing that should never fail after [`check`].
#[inline]
pub(crate) fn sub(s: &[f32], start: usize, len: usize) -> Result<&[f32], OpError> {
    s.get(start..start.checked_add(len).ok_or(OpError::ShapeMismatch)?).ok_or(OpError::ShapeMismatch)
}

/// Mutable counterpart of [`sub`].
#[inline]
pub(crate) fn sub_mut(s: &mut [f32], start: usize, len: usize) -> Result<&mut [f32], OpError> {
    s.get_mut(start..start.checked_add(len).ok_or(OpError::ShapeMismatch)?).ok_or(OpError::ShapeMismatch)
}

/// Fills `out[i] = v[start + i * step]`; `ShapeMismatch` when a read falls outside `v`.
pub(crate) fn read_strided(v: View<'_>, start: usize, step: usize, out: &mut [f32]) -> Result<(), OpError> {
    let last = match out.len().checked_sub(1) {
        Some(n) => start.checked_add(n.checked_mul(step).ok_or(OpError::ShapeMismatch)?).ok_or(OpError::ShapeMismatch)?,
        None => return Ok(()),
    };
    if last >= v.len() {
        return Err(OpError::ShapeMismatch);
    }
    match (step, v.as_f32()) {
        (1, _) => v.read_into(start, out),
        (_, Some(s)) => {
            for (o, x) in out.iter_mut().zip(s[start..].iter().step_by(step)) {
                *o = *x;
            }
        }
        (_, None) => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = v.get(start + i * step);
            }
        }
    }
    Ok(())
}

/// Copies the strided view of `x` starting at element `base`, with input stride `st[i]` along
/// output axis `i`, into `out` laid out as `y` (row-major). Slice and Transpose are such views.
pub(crate) fn copy_strided(x: View<'_>, base: usize, st: &[usize; MAX_RANK], out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let r = y.rank();
    if r == 0 {
        return read_strided(x, base, 1, out.get_mut(..1).unwrap_or(&mut []));
    }
    let dims = dims_of(y);
    let last = dims[r - 1];
    let mut cnt = Counter::new(&dims, r - 1);
    let mut row = 0;
    loop {
        read_strided(x, base + cnt.offset(st), st[r - 1], sub_mut(out, row * last, last)?)?;
        row += 1;
        if !cnt.next() {
            return Ok(());
        }
    }
}

/// Runs `f` on `N` uninitialised floats in a stack frame of its own: a kernel that needs a
/// small buffer (or none) neither reserves nor probes the largest of its sizes (with the
/// 160 KiB buffer in `conv_codebook`'s own frame, kws_dscnn's 4-bit depthwise layer ran at 0.88
/// of its dense twin's speed; 0.93–0.94 this way).
#[cfg(target_arch = "x86_64")]
#[inline(never)]
pub(super) fn uninit<const N: usize, R>(f: impl FnOnce(&mut [core::mem::MaybeUninit<f32>]) -> R) -> R {
    f(&mut [core::mem::MaybeUninit::<f32>::uninit(); N])
}

/// Runs `f` on `N` zeroed floats in a stack frame of its own (as [`uninit`]).
#[inline(never)]
pub(super) fn zeroed<const N: usize, R>(f: impl FnOnce(&mut [f32]) -> R) -> R {
    f(&mut [0.0f32; N])
}

/// Sets every `n`-wide row of `out` to `bias` (zeros without one): where a Dense sum starts.
pub(super) fn bias_rows(bias: Option<&Operand<'_>>, n: usize, out: &mut [f32]) {
    for row in out.chunks_mut(n.max(1)) {
        match bias {
            Some(b) => b.view.read_into(0, row),
            None => row.fill(0.0),
        }
    }
}

/// `max` that propagates NaN from either side (numpy `maximum`).
#[inline]
pub(crate) fn fmax(a: f32, b: f32) -> f32 {
    if a >= b || a.is_nan() {
        a
    } else {
        b
    }
}

/// `min` that propagates NaN from either side (numpy `minimum`).
#[inline]
pub(crate) fn fmin(a: f32, b: f32) -> f32 {
    if a <= b || a.is_nan() {
        a
    } else {
        b
    }
}

/// Strides of `s` (right-aligned to rank `r`) as seen from a broadcast output of rank `r`:
/// zero along broadcast (size-1 or missing) axes.
pub(crate) fn bcast_strides(s: &Shape, r: usize) -> [usize; MAX_RANK] {
    let mut out = [0usize; MAX_RANK];
    let st = s.strides();
    let k = s.rank();
    for i in 0..k.min(r) {
        let src = k - 1 - i;
        let dst = r - 1 - i;
        if s.dim(src) != 1 {
            out[dst] = st[src];
        }
    }
    out
}

/// Row-major odometer over the first `rank` dimensions of `dims`; `next` advances it and
/// returns false after the last index.
pub(crate) struct Counter {
    /// Current index.
    pub idx: [usize; MAX_RANK],
    dims: [usize; MAX_RANK],
    rank: usize,
}

impl Counter {
    /// A counter at the zero index.
    pub fn new(dims: &[usize; MAX_RANK], rank: usize) -> Counter {
        Counter { idx: [0; MAX_RANK], dims: *dims, rank: rank.min(MAX_RANK) }
    }

    /// Advances to the next index; false when wrapped around (done).
    pub fn next(&mut self) -> bool {
        for i in (0..self.rank).rev() {
            self.idx[i] += 1;
            if self.idx[i] < self.dims[i] {
                return true;
            }
            self.idx[i] = 0;
        }
        false
    }

    /// Dot product of the current index with `strides`.
    #[inline]
    pub fn offset(&self, strides: &[usize; MAX_RANK]) -> usize {
        self.idx[..self.rank].iter().zip(strides).map(|(i, s)| i * s).sum()
    }
}

/// The dimensions of `s` as a fixed array of `usize`.
pub(crate) fn dims_of(s: &Shape) -> [usize; MAX_RANK] {
    let mut d = [0usize; MAX_RANK];
    for (i, v) in d.iter_mut().enumerate() {
        *v = s.dim(i);
    }
    d
}
