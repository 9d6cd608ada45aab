//! Operators as stored in a `.sprig` file: kinds, attributes, their fixed-width encoding and
//! output-shape inference. The same definitions serve the reader (validation) and the writer in
//! `sprig-tools` (shape inference at import), so the two cannot disagree.

use crate::shape::{Shape, MAX_RANK};

/// Number of `u32` attribute words in an operator record.
pub const ATTR_WORDS: usize = 26;

/// Largest number of input operands an operator may have.
pub const MAX_OP_INPUTS: usize = 16;

/// Why an operator record or its operand shapes were rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OpError {
    /// The operator kind code is not known to this runtime.
    UnknownKind(u16),
    /// An attribute word holds a value outside its domain.
    BadAttribute,
    /// The number of input operands is wrong for this operator.
    BadArity,
    /// The operand shapes are inconsistent with the operator.
    ShapeMismatch,
}

/// Activation fused into the output of Conv / Dense.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, min), max)`.
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// `x` where `x > alpha`, else 0 (ONNX ThresholdedRelu; FATReLU, ALGORITHMS.md §4.2 step
    /// 3, §6.5): written by `sprig compress --act-threshold` in place of a fused ReLU. Format 1.3.
    Threshold {
        /// Threshold (finite).
        alpha: f32,
    },
}

impl Activation {
    /// Applies the activation to every value of `xs`: the same result as [`Activation::apply`]
    /// on each, with the kind matched once so the loop is branch-free and vectorises.
    #[inline]
    pub fn apply_all(&self, xs: &mut [f32]) {
        match *self {
            Activation::None => {}
            Activation::Relu => xs.iter_mut().for_each(|v| *v = relu(*v)),
            Activation::Clip { min, max } => xs.iter_mut().for_each(|v| *v = clip(*v, min, max)),
            Activation::Threshold { alpha } => xs.iter_mut().for_each(|v| *v = threshold(*v, alpha)),
        }
    }

    /// `dst[i] = apply(src[i])` over the shorter length: one branch-free loop per kind (a
    /// select between two buffers vectorises to a blend).
    #[inline]
    pub fn apply_to(&self, dst: &mut [f32], src: &[f32]) {
        let pairs = dst.iter_mut().zip(src);
        match *self {
            Activation::None => pairs.for_each(|(d, &s)| *d = s),
            Activation::Relu => pairs.for_each(|(d, &s)| *d = relu(s)),
            Activation::Clip { min, max } => pairs.for_each(|(d, &s)| *d = clip(s, min, max)),
            Activation::Threshold { alpha } => pairs.for_each(|(d, &s)| *d = threshold(s, alpha)),
        }
    }

    /// Applies the activation to one value.
    #[inline]
    pub fn apply(&self, x: f32) -> f32 {
        match *self {
            Activation::None => x,
            Activation::Relu => relu(x),
            Activation::Clip { min, max } => clip(x, min, max),
            Activation::Threshold { alpha } => threshold(x, alpha),
        }
    }
}

// The one definition of each kind, written as selects so loops over them vectorise. NaN maps
// to 0 through ReLU and Threshold and stays NaN through Clip.
#[inline(always)]
fn relu(x: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

#[inline(always)]
fn clip(x: f32, min: f32, max: f32) -> f32 {
    let y = if x < min { min } else { x };
    if y > max {
        max
    } else {
        y
    }
}

#[inline(always)]
fn threshold(x: f32, alpha: f32) -> f32 {
    if x > alpha {
        x
    } else {
        0.0
    }
}

/// Convolution attributes (1-D convs use the `[1]` (width) entries; the height entries are then 1 / 0).
/// Operands: `x [N, C, H, W]` or `[N, C, L]`, `w [M, C/group, kh, kw]` or `[M, C/group, k]`, optional `bias [M]`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConvAttrs {
    /// Number of groups (C and M divisible by it; depthwise when `group == C`).
    pub group: u32,
    /// Strides `[h, w]`, each >= 1.
    pub stride: [u32; 2],
    /// Dilations `[h, w]`, each >= 1.
    pub dilation: [u32; 2],
    /// Explicit zero padding `[top, left, bottom, right]` (auto_pad is resolved offline).
    pub pads: [u32; 4],
    /// Fused output activation.
    pub act: Activation,
}

/// Pooling attributes (MaxPool / AveragePool); same layout conventions as [`ConvAttrs`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PoolAttrs {
    /// Window `[kh, kw]` (kh = 1 for 1-D).
    pub kernel: [u32; 2],
    /// Strides `[h, w]`.
    pub stride: [u32; 2],
    /// Dilations `[h, w]`.
    pub dilation: [u32; 2],
    /// Padding `[top, left, bottom, right]`.
    pub pads: [u32; 4],
    /// Output size rounds up (ONNX `ceil_mode`); windows starting in the right/bottom padding are dropped.
    pub ceil_mode: bool,
    /// AveragePool divides by the full window including padding.
    pub count_include_pad: bool,
}

/// Element-wise binary operators with numpy (multidirectional) broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum BinaryKind {
    /// `a + b`
    Add = 0,
    /// `a - b`
    Sub = 1,
    /// `a * b`
    Mul = 2,
    /// `a / b`
    Div = 3,
    /// `a < 0 ? a * b : a` (b is the slope).
    PRelu = 4,
    /// `a ^ b`
    Pow = 5,
    /// `max(a, b)`
    Max = 6,
    /// `min(a, b)`
    Min = 7,
    /// `max(a + b, 0)`: a residual Add followed by a Relu, fused by the tool (one pass over the
    /// tensor and one record fewer than the pair). NaN propagates as it does through Relu.
    AddRelu = 8,
}

/// Element-wise unary operators; `a` and `b` are the parameters named per variant.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UnaryKind {
    /// `max(x, 0)`
    Relu,
    /// `min(max(x, min), max)`
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// `x < 0 ? alpha * x : x`
    LeakyRelu {
        /// Negative slope.
        alpha: f32,
    },
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// `tanh(x)`
    Tanh,
    /// `max(0, min(1, alpha * x + beta))`
    HardSigmoid {
        /// Slope.
        alpha: f32,
        /// Offset.
        beta: f32,
    },
    /// `x * max(0, min(1, x / 6 + 1 / 2))`
    HardSwish,
    /// Gauss error function.
    Erf,
    /// `0.5 x (1 + erf(x / sqrt 2))`, or the tanh approximation when `tanh_approx`.
    Gelu {
        /// Use `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
        tanh_approx: bool,
    },
    /// `e^x`
    Exp,
    /// Natural logarithm.
    Log,
    /// Square root.
    Sqrt,
    /// `-x`
    Neg,
    /// `|x|`
    Abs,
    /// `1 / x`
    Reciprocal,
    /// `x < 0 ? alpha (e^x - 1) : x`
    Elu {
        /// Scale of the negative part.
        alpha: f32,
    },
    /// `ln(1 + e^x)`
    Softplus,
    /// `x / (1 + e^-x)` (SiLU / swish).
    Silu,
    /// Largest integer `<= x`.
    Floor,
    /// Smallest integer `>= x`.
    Ceil,
    /// Nearest integer, halves to even (ONNX Round).
    Round,
    /// `-1`, `0` or `1` by the sign of `x` (NaN stays NaN).
    Sign,
    /// `sin(x)`
    Sin,
    /// `cos(x)`
    Cos,
    /// A QuantizeLinear → DequantizeLinear pair with one zero point (format 1.8):
    /// `clip(round_half_even(x / scale), min, max) * scale`, with the IEEE division, where
    /// `[min, max]` is the integer type's range less the zero point. Bit-identical to Div, Round,
    /// Clip and Mul applied in turn.
    QuantizeDequantize {
        /// Quantization step (finite, > 0).
        scale: f32,
        /// Smallest quantized value less the zero point (an integer).
        min: f32,
        /// Largest quantized value less the zero point (an integer, >= `min`).
        max: f32,
    },
}

/// How Pad fills the border (ONNX Pad `mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum PadMode {
    /// Fill with the constant value.
    #[default]
    Constant = 0,
    /// Mirror without repeating the edge element (numpy `reflect`); each pad must be smaller
    /// than its axis.
    Reflect = 1,
    /// Repeat the edge element (numpy `edge`); padded axes must be non-empty.
    Edge = 2,
}

/// How Resize rounds a source coordinate to an input index in nearest mode (ONNX `nearest_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum NearestMode {
    /// Round halves down.
    RoundPreferFloor = 0,
    /// Round halves up.
    RoundPreferCeil = 1,
    /// Largest integer `<=` the coordinate.
    Floor = 2,
    /// Smallest integer `>=` the coordinate.
    Ceil = 3,
}

/// Resize interpolation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ResizeMode {
    /// Nearest input element.
    Nearest(NearestMode),
    /// (Bi)linear interpolation between the two (four) neighbours, clamped at the border.
    Linear,
}

/// How Resize maps an output coordinate `x` to an input coordinate (ONNX
/// `coordinate_transformation_mode`); `scale` is the axis scale and `len_out = scale * len_in`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum CoordMode {
    /// `(x + 0.5) / scale - 0.5`.
    HalfPixel = 0,
    /// `x / scale`.
    Asymmetric = 1,
    /// `x * (len_in - 1) / (len_out - 1)`, or 0 when `len_out == 1`.
    AlignCorners = 2,
    /// `(x + 0.5) / scale - 0.5`, or -0.5 when `len_out == 1`.
    PytorchHalfPixel = 3,
}

/// Resize attributes: the last one (`[N, C, L]`) or two (`[N, C, H, W]`) axes are resized; 1-D
/// uses the `[1]` entries (then `size[0] = 1`, `scale[0] = 0`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResizeAttrs {
    /// Output spatial size `[h, w]`.
    pub size: [u32; 2],
    /// Scale per axis as given in the model (`> 0`), or 0 for `size / input size`.
    pub scale: [f32; 2],
    /// Interpolation.
    pub mode: ResizeMode,
    /// Coordinate transformation.
    pub coord: CoordMode,
}

/// Reductions over a set of axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum ReduceKind {
    /// Arithmetic mean.
    Mean = 0,
    /// Sum.
    Sum = 1,
    /// Maximum.
    Max = 2,
    /// Minimum.
    Min = 3,
}

/// One operator with its attributes. Operands are tensors listed in the operator record.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Op {
    /// 1-D / 2-D convolution: inputs `x, w[, bias]`.
    Conv(ConvAttrs),
    /// Fully connected: `y[.., n] = act(sum_k x[.., k] * w[n, k] + bias[n])`; inputs `x, w [N, K][, bias [N]]`.
    Dense {
        /// Fused activation.
        act: Activation,
    },
    /// Batched matrix product of two tensors with numpy broadcasting of leading dims (ONNX MatMul).
    MatMul,
    /// Element-wise binary operator with broadcasting.
    Binary(BinaryKind),
    /// Element-wise unary operator.
    Unary(UnaryKind),
    /// Softmax (or log-softmax) along one axis.
    Softmax {
        /// Axis (non-negative, < rank).
        axis: u8,
        /// Log-softmax.
        log: bool,
    },
    /// Max pooling over the last one or two axes.
    MaxPool(PoolAttrs),
    /// Average pooling over the last one or two axes.
    AveragePool(PoolAttrs),
    /// Mean over all axes after the channel axis, keeping them as size 1.
    GlobalAveragePool,
    /// Max over all axes after the channel axis, keeping them as size 1.
    GlobalMaxPool,
    /// Same elements, new shape (also Flatten / Squeeze / Unsqueeze); free when planned in place.
    Reshape {
        /// Target shape.
        shape: Shape,
    },
    /// Axis permutation: output axis `i` is input axis `perm[i]`.
    Transpose {
        /// Permutation (first `rank` entries used).
        perm: [u8; MAX_RANK],
    },
    /// Concatenation of all inputs along `axis`.
    Concat {
        /// Axis (non-negative).
        axis: u8,
    },
    /// Padding: `pads[i]` before and `pads[MAX_RANK + i]` after axis `i`, filled per `mode`.
    Pad {
        /// Pads as in ONNX (begins then ends), non-negative.
        pads: [u32; 2 * MAX_RANK],
        /// Fill value (constant mode; kept but unused otherwise).
        value: f32,
        /// Border mode.
        mode: PadMode,
    },
    /// Per-channel affine map on axis 1 (unfused BatchNormalization): inputs `x, scale [C], shift [C]`.
    ChannelAffine,
    /// Layer normalization over axes `axis..rank`: inputs `x, gamma[, beta]` (shaped like those axes).
    LayerNorm {
        /// First normalized axis.
        axis: u8,
        /// Added to the variance.
        epsilon: f32,
    },
    /// Reduction over the axes set in `axes` (bit i = axis i).
    Reduce {
        /// Kind of reduction.
        kind: ReduceKind,
        /// Bit mask of reduced axes.
        axes: u8,
        /// Keep reduced axes as size 1.
        keepdims: bool,
    },
    /// Strided window: output axis `i` has `lens[i]` elements, element `j` taken from input index
    /// `starts[i] + j * steps[i]` (every index inside the input). Entries beyond the rank are
    /// `starts = 0`, `steps = 1`, `lens = 0`.
    Slice {
        /// First input index per axis.
        starts: [u32; MAX_RANK],
        /// Positive step per axis.
        steps: [u32; MAX_RANK],
        /// Output extent per axis.
        lens: [u32; MAX_RANK],
    },
    /// Spatial resize (ONNX Resize / Upsample, modes nearest and linear).
    Resize(ResizeAttrs),
}

/// Stable operator kind codes used in the file. Never renumber; append only.
pub mod kind {
    #![allow(missing_docs)]
    pub const CONV: u16 = 1;
    pub const DENSE: u16 = 2;
    pub const MATMUL: u16 = 3;
    pub const BINARY: u16 = 4;
    pub const UNARY: u16 = 5;
    pub const SOFTMAX: u16 = 6;
    pub const MAXPOOL: u16 = 7;
    pub const AVGPOOL: u16 = 8;
    pub const GLOBAL_AVGPOOL: u16 = 9;
    pub const GLOBAL_MAXPOOL: u16 = 10;
    pub const RESHAPE: u16 = 11;
    pub const TRANSPOSE: u16 = 12;
    pub const CONCAT: u16 = 13;
    pub const PAD: u16 = 14;
    pub const CHANNEL_AFFINE: u16 = 15;
    pub const LAYER_NORM: u16 = 16;
    pub const REDUCE: u16 = 17;
    pub const SLICE: u16 = 18;
    pub const RESIZE: u16 = 19;
}

fn enc_act(a: &Activation, w: &mut [u32]) {
    match *a {
        Activation::None => w[0] = 0,
        Activation::Relu => w[0] = 1,
        Activation::Clip { min, max } => {
            w[0] = 2;
            w[1] = min.to_bits();
            w[2] = max.to_bits();
        }
        Activation::Threshold { alpha } => {
            w[0] = 3;
            w[1] = alpha.to_bits();
        }
    }
}

fn dec_act(w: &[u32]) -> Result<Activation, OpError> {
    Ok(match w[0] {
        0 => Activation::None,
        1 => Activation::Relu,
        2 => Activation::Clip { min: f32::from_bits(w[1]), max: f32::from_bits(w[2]) },
        3 if f32::from_bits(w[1]).is_finite() => Activation::Threshold { alpha: f32::from_bits(w[1]) },
        _ => return Err(OpError::BadAttribute),
    })
}

fn enc_pool(p: &PoolAttrs, w: &mut [u32]) {
    w[0..2].copy_from_slice(&p.kernel);
    w[2..4].copy_from_slice(&p.stride);
    w[4..6].copy_from_slice(&p.dilation);
    w[6..10].copy_from_slice(&p.pads);
    w[10] = p.ceil_mode as u32 | (p.count_include_pad as u32) << 1;
}

fn dec_bool(w: u32) -> Result<bool, OpError> {
    match w {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(OpError::BadAttribute),
    }
}

fn dec_pool(w: &[u32]) -> Result<PoolAttrs, OpError> {
    let p = PoolAttrs {
        kernel: [w[0], w[1]],
        stride: [w[2], w[3]],
        dilation: [w[4], w[5]],
        pads: [w[6], w[7], w[8], w[9]],
        ceil_mode: w[10] & 1 != 0,
        count_include_pad: w[10] & 2 != 0,
    };
    if w[10] > 3 || p.kernel.contains(&0) || p.stride.contains(&0) || p.dilation.contains(&0) {
        return Err(OpError::BadAttribute);
    }
    Ok(p)
}

fn finite(x: f32) -> Result<f32, OpError> {
    if x.is_nan() {
        Err(OpError::BadAttribute)
    } else {
        Ok(x)
    }
}

impl UnaryKind {
    /// Number of unary function codes (`code()` is in `0..COUNT`).
    pub const COUNT: u32 = 25;

    /// The file's code for this function (attribute word 0).
    pub fn code(&self) -> u32 {
        match self {
            UnaryKind::Relu => 0,
            UnaryKind::Clip { .. } => 1,
            UnaryKind::LeakyRelu { .. } => 2,
            UnaryKind::Sigmoid => 3,
            UnaryKind::Tanh => 4,
            UnaryKind::HardSigmoid { .. } => 5,
            UnaryKind::HardSwish => 6,
            UnaryKind::Erf => 7,
            UnaryKind::Gelu { .. } => 8,
            UnaryKind::Exp => 9,
            UnaryKind::Log => 10,
            UnaryKind::Sqrt => 11,
            UnaryKind::Neg => 12,
            UnaryKind::Abs => 13,
            UnaryKind::Reciprocal => 14,
            UnaryKind::Elu { .. } => 15,
            UnaryKind::Softplus => 16,
            UnaryKind::Silu => 17,
            UnaryKind::Floor => 18,
            UnaryKind::Ceil => 19,
            UnaryKind::Round => 20,
            UnaryKind::Sign => 21,
            UnaryKind::Sin => 22,
            UnaryKind::Cos => 23,
            UnaryKind::QuantizeDequantize { .. } => 24,
        }
    }
}

impl Op {
    /// The file's kind code.
    pub fn kind_code(&self) -> u16 {
        match self {
            Op::Conv(_) => kind::CONV,
            Op::Dense { .. } => kind::DENSE,
            Op::MatMul => kind::MATMUL,
            Op::Binary(_) => kind::BINARY,
            Op::Unary(_) => kind::UNARY,
            Op::Softmax { .. } => kind::SOFTMAX,
            Op::MaxPool(_) => kind::MAXPOOL,
            Op::AveragePool(_) => kind::AVGPOOL,
            Op::GlobalAveragePool => kind::GLOBAL_AVGPOOL,
            Op::GlobalMaxPool => kind::GLOBAL_MAXPOOL,
            Op::Reshape { .. } => kind::RESHAPE,
            Op::Transpose { .. } => kind::TRANSPOSE,
            Op::Concat { .. } => kind::CONCAT,
            Op::Pad { .. } => kind::PAD,
            Op::ChannelAffine => kind::CHANNEL_AFFINE,
            Op::LayerNorm { .. } => kind::LAYER_NORM,
            Op::Reduce { .. } => kind::REDUCE,
            Op::Slice { .. } => kind::SLICE,
            Op::Resize(_) => kind::RESIZE,
        }
    }

    /// This operator's bits in a kernel set (see [`crate::kernels::execute_in`]): its kind, plus
    /// its function for element-wise kinds.
    pub fn feature_bits(&self) -> u128 {
        let sub = match self {
            Op::Unary(k) => 1u128 << (crate::kernels::UNARY_BITS + k.code()),
            Op::Binary(k) => 1u128 << (crate::kernels::BINARY_BITS + *k as u32),
            _ => 0,
        };
        (1u128 << (self.kind_code() % 64)) | sub
    }

    /// A short human-readable name of the operator kind.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv(a) if a.group > 1 => "ConvGrouped",
            Op::Conv(_) => "Conv",
            Op::Dense { .. } => "Dense",
            Op::MatMul => "MatMul",
            Op::Binary(k) => match k {
                BinaryKind::Add => "Add",
                BinaryKind::Sub => "Sub",
                BinaryKind::Mul => "Mul",
                BinaryKind::Div => "Div",
                BinaryKind::PRelu => "PRelu",
                BinaryKind::Pow => "Pow",
                BinaryKind::Max => "Max",
                BinaryKind::Min => "Min",
                BinaryKind::AddRelu => "Add+Relu",
            },
            Op::Unary(k) => match k {
                UnaryKind::Relu => "Relu",
                UnaryKind::Clip { .. } => "Clip",
                UnaryKind::LeakyRelu { .. } => "LeakyRelu",
                UnaryKind::Sigmoid => "Sigmoid",
                UnaryKind::Tanh => "Tanh",
                UnaryKind::HardSigmoid { .. } => "HardSigmoid",
                UnaryKind::HardSwish => "HardSwish",
                UnaryKind::Erf => "Erf",
                UnaryKind::Gelu { .. } => "Gelu",
                UnaryKind::Exp => "Exp",
                UnaryKind::Log => "Log",
                UnaryKind::Sqrt => "Sqrt",
                UnaryKind::Neg => "Neg",
                UnaryKind::Abs => "Abs",
                UnaryKind::Reciprocal => "Reciprocal",
                UnaryKind::Elu { .. } => "Elu",
                UnaryKind::Softplus => "Softplus",
                UnaryKind::Silu => "Silu",
                UnaryKind::Floor => "Floor",
                UnaryKind::Ceil => "Ceil",
                UnaryKind::Round => "Round",
                UnaryKind::Sign => "Sign",
                UnaryKind::Sin => "Sin",
                UnaryKind::Cos => "Cos",
                UnaryKind::QuantizeDequantize { .. } => "QuantizeDequantize",
            },
            Op::Softmax { log: false, .. } => "Softmax",
            Op::Softmax { log: true, .. } => "LogSoftmax",
            Op::MaxPool(_) => "MaxPool",
            Op::AveragePool(_) => "AveragePool",
            Op::GlobalAveragePool => "GlobalAveragePool",
            Op::GlobalMaxPool => "GlobalMaxPool",
            Op::Reshape { .. } => "Reshape",
            Op::Transpose { .. } => "Transpose",
            Op::Concat { .. } => "Concat",
            Op::Pad { .. } => "Pad",
            Op::ChannelAffine => "ChannelAffine",
            Op::LayerNorm { .. } => "LayerNorm",
            Op::Reduce { kind, .. } => match kind {
                ReduceKind::Mean => "ReduceMean",
                ReduceKind::Sum => "ReduceSum",
                ReduceKind::Max => "ReduceMax",
                ReduceKind::Min => "ReduceMin",
            },
            Op::Slice { .. } => "Slice",
            Op::Resize(_) => "Resize",
        }
    }

    /// Encodes the attributes into the record's attribute words (unused words are zero).
    pub fn encode(&self) -> [u32; ATTR_WORDS] {
        let mut w = [0u32; ATTR_WORDS];
        match self {
            Op::Conv(c) => {
                w[0] = c.group;
                w[1..3].copy_from_slice(&c.stride);
                w[3..5].copy_from_slice(&c.dilation);
                w[5..9].copy_from_slice(&c.pads);
                enc_act(&c.act, &mut w[9..12]);
            }
            Op::Dense { act } => enc_act(act, &mut w[0..3]),
            Op::MatMul | Op::GlobalAveragePool | Op::GlobalMaxPool | Op::ChannelAffine => {}
            Op::Binary(k) => w[0] = *k as u32,
            Op::Unary(k) => {
                let (a, b) = match *k {
                    UnaryKind::Clip { min, max } => (min, max),
                    UnaryKind::LeakyRelu { alpha } | UnaryKind::Elu { alpha } => (alpha, 0.0),
                    UnaryKind::HardSigmoid { alpha, beta } => (alpha, beta),
                    UnaryKind::Gelu { tanh_approx } => (if tanh_approx { 1.0 } else { 0.0 }, 0.0),
                    _ => (0.0, 0.0),
                };
                let code = k.code();
                w[0] = code;
                w[1] = f32::to_bits(a);
                w[2] = f32::to_bits(b);
                if let UnaryKind::QuantizeDequantize { scale, min, max } = *k {
                    w[1..4].copy_from_slice(&[scale.to_bits(), min.to_bits(), max.to_bits()]);
                }
            }
            Op::Softmax { axis, log } => {
                w[0] = *axis as u32;
                w[1] = *log as u32;
            }
            Op::MaxPool(p) | Op::AveragePool(p) => enc_pool(p, &mut w),
            Op::Reshape { shape } => {
                w[0] = shape.rank() as u32;
                w[1..1 + shape.rank()].copy_from_slice(shape.dims());
            }
            Op::Transpose { perm } => {
                for (i, p) in perm.iter().enumerate() {
                    w[i] = *p as u32;
                }
            }
            Op::Concat { axis } => w[0] = *axis as u32,
            Op::Pad { pads, value, mode } => {
                w[0..2 * MAX_RANK].copy_from_slice(pads);
                w[2 * MAX_RANK] = value.to_bits();
                w[2 * MAX_RANK + 1] = *mode as u32;
            }
            Op::LayerNorm { axis, epsilon } => {
                w[0] = *axis as u32;
                w[1] = epsilon.to_bits();
            }
            Op::Reduce { kind, axes, keepdims } => {
                w[0] = *kind as u32;
                w[1] = *axes as u32;
                w[2] = *keepdims as u32;
            }
            Op::Slice { starts, steps, lens } => {
                w[0..MAX_RANK].copy_from_slice(starts);
                w[MAX_RANK..2 * MAX_RANK].copy_from_slice(steps);
                w[2 * MAX_RANK..3 * MAX_RANK].copy_from_slice(lens);
            }
            Op::Resize(a) => {
                w[0..2].copy_from_slice(&a.size);
                w[2] = a.scale[0].to_bits();
                w[3] = a.scale[1].to_bits();
                match a.mode {
                    ResizeMode::Nearest(m) => w[5] = m as u32,
                    ResizeMode::Linear => w[4] = 1,
                }
                w[6] = a.coord as u32;
            }
        }
        w
    }

    /// Decodes an operator record; rejects unknown kinds and out-of-domain attributes.
    pub fn decode(code: u16, w: &[u32; ATTR_WORDS]) -> Result<Op, OpError> {
        let small = |x: u32| -> Result<u8, OpError> {
            if (x as usize) < MAX_RANK {
                Ok(x as u8)
            } else {
                Err(OpError::BadAttribute)
            }
        };
        Ok(match code {
            kind::CONV => {
                let c = ConvAttrs {
                    group: w[0],
                    stride: [w[1], w[2]],
                    dilation: [w[3], w[4]],
                    pads: [w[5], w[6], w[7], w[8]],
                    act: dec_act(&w[9..12])?,
                };
                if c.group == 0 || c.stride.contains(&0) || c.dilation.contains(&0) {
                    return Err(OpError::BadAttribute);
                }
                Op::Conv(c)
            }
            kind::DENSE => Op::Dense { act: dec_act(&w[0..3])? },
            kind::MATMUL => Op::MatMul,
            kind::BINARY => Op::Binary(match w[0] {
                0 => BinaryKind::Add,
                1 => BinaryKind::Sub,
                2 => BinaryKind::Mul,
                3 => BinaryKind::Div,
                4 => BinaryKind::PRelu,
                5 => BinaryKind::Pow,
                6 => BinaryKind::Max,
                7 => BinaryKind::Min,
                8 => BinaryKind::AddRelu,
                _ => return Err(OpError::BadAttribute),
            }),
            kind::UNARY => {
                let a = finite(f32::from_bits(w[1]))?;
                let b = finite(f32::from_bits(w[2]))?;
                Op::Unary(match w[0] {
                    0 => UnaryKind::Relu,
                    1 => UnaryKind::Clip { min: a, max: b },
                    2 => UnaryKind::LeakyRelu { alpha: a },
                    3 => UnaryKind::Sigmoid,
                    4 => UnaryKind::Tanh,
                    5 => UnaryKind::HardSigmoid { alpha: a, beta: b },
                    6 => UnaryKind::HardSwish,
                    7 => UnaryKind::Erf,
                    8 => UnaryKind::Gelu { tanh_approx: a != 0.0 },
                    9 => UnaryKind::Exp,
                    10 => UnaryKind::Log,
                    11 => UnaryKind::Sqrt,
                    12 => UnaryKind::Neg,
                    13 => UnaryKind::Abs,
                    14 => UnaryKind::Reciprocal,
                    15 => UnaryKind::Elu { alpha: a },
                    16 => UnaryKind::Softplus,
                    17 => UnaryKind::Silu,
                    18 => UnaryKind::Floor,
                    19 => UnaryKind::Ceil,
                    20 => UnaryKind::Round,
                    21 => UnaryKind::Sign,
                    22 => UnaryKind::Sin,
                    23 => UnaryKind::Cos,
                    24 => {
                        let max = finite(f32::from_bits(w[3]))?;
                        let whole = |v: f32| libm::truncf(v) == v;
                        let ok = [a, b, max].iter().all(|v| v.is_finite());
                        if !(ok && a > 0.0 && b <= max && whole(b) && whole(max)) {
                            return Err(OpError::BadAttribute);
                        }
                        UnaryKind::QuantizeDequantize { scale: a, min: b, max }
                    }
                    _ => return Err(OpError::BadAttribute),
                })
            }
            kind::SOFTMAX => Op::Softmax { axis: small(w[0])?, log: dec_bool(w[1])? },
            kind::MAXPOOL => Op::MaxPool(dec_pool(w)?),
            kind::AVGPOOL => Op::AveragePool(dec_pool(w)?),
            kind::GLOBAL_AVGPOOL => Op::GlobalAveragePool,
            kind::GLOBAL_MAXPOOL => Op::GlobalMaxPool,
            kind::RESHAPE => {
                let r = w[0] as usize;
                if r > MAX_RANK {
                    return Err(OpError::BadAttribute);
                }
                Op::Reshape { shape: Shape::from_u32(&w[1..1 + r]).ok_or(OpError::BadAttribute)? }
            }
            kind::TRANSPOSE => {
                let mut perm = [0u8; MAX_RANK];
                for (p, &x) in perm.iter_mut().zip(w.iter()) {
                    *p = small(x)?;
                }
                Op::Transpose { perm }
            }
            kind::CONCAT => Op::Concat { axis: small(w[0])? },
            kind::PAD => {
                let mut pads = [0u32; 2 * MAX_RANK];
                pads.copy_from_slice(&w[0..2 * MAX_RANK]);
                let mode = match w[2 * MAX_RANK + 1] {
                    0 => PadMode::Constant,
                    1 => PadMode::Reflect,
                    2 => PadMode::Edge,
                    _ => return Err(OpError::BadAttribute),
                };
                Op::Pad { pads, value: finite(f32::from_bits(w[2 * MAX_RANK]))?, mode }
            }
            kind::CHANNEL_AFFINE => Op::ChannelAffine,
            kind::LAYER_NORM => {
                let epsilon = finite(f32::from_bits(w[1]))?;
                Op::LayerNorm { axis: small(w[0])?, epsilon }
            }
            kind::REDUCE => Op::Reduce {
                kind: match w[0] {
                    0 => ReduceKind::Mean,
                    1 => ReduceKind::Sum,
                    2 => ReduceKind::Max,
                    3 => ReduceKind::Min,
                    _ => return Err(OpError::BadAttribute),
                },
                axes: if w[1] < (1 << MAX_RANK) { w[1] as u8 } else { return Err(OpError::BadAttribute) },
                keepdims: dec_bool(w[2])?,
            },
            kind::SLICE => {
                let mut starts = [0u32; MAX_RANK];
                let mut steps = [0u32; MAX_RANK];
                let mut lens = [0u32; MAX_RANK];
                starts.copy_from_slice(&w[0..MAX_RANK]);
                steps.copy_from_slice(&w[MAX_RANK..2 * MAX_RANK]);
                lens.copy_from_slice(&w[2 * MAX_RANK..3 * MAX_RANK]);
                if steps.contains(&0) {
                    return Err(OpError::BadAttribute);
                }
                Op::Slice { starts, steps, lens }
            }
            kind::RESIZE => {
                let scale = [f32::from_bits(w[2]), f32::from_bits(w[3])];
                if scale.iter().any(|s| !s.is_finite() || *s < 0.0) {
                    return Err(OpError::BadAttribute);
                }
                let mode = match (w[4], w[5]) {
                    (0, 0) => ResizeMode::Nearest(NearestMode::RoundPreferFloor),
                    (0, 1) => ResizeMode::Nearest(NearestMode::RoundPreferCeil),
                    (0, 2) => ResizeMode::Nearest(NearestMode::Floor),
                    (0, 3) => ResizeMode::Nearest(NearestMode::Ceil),
                    (1, 0) => ResizeMode::Linear,
                    _ => return Err(OpError::BadAttribute),
                };
                let coord = match w[6] {
                    0 => CoordMode::HalfPixel,
                    1 => CoordMode::Asymmetric,
                    2 => CoordMode::AlignCorners,
                    3 => CoordMode::PytorchHalfPixel,
                    _ => return Err(OpError::BadAttribute),
                };
                Op::Resize(ResizeAttrs { size: [w[0], w[1]], scale, mode, coord })
            }
            other => return Err(OpError::UnknownKind(other)),
        })
    }

    /// Allowed numbers of input operands `(min, max)`.
    pub fn arity(&self) -> (usize, usize) {
        match self {
            Op::Conv(_) | Op::Dense { .. } | Op::LayerNorm { .. } => (2, 3),
            Op::MatMul | Op::Binary(_) => (2, 2),
            Op::ChannelAffine => (3, 3),
            Op::Concat { .. } => (1, MAX_OP_INPUTS),
            _ => (1, 1),
        }
    }

    /// Output shape for the given input shapes, or why they are inconsistent with this operator.
    pub fn infer(&self, inputs: &[Shape]) -> Result<Shape, OpError> {
        let (lo, hi) = self.arity();
        if inputs.len() < lo || inputs.len() > hi {
            return Err(OpError::BadArity);
        }
        let x = inputs[0];
        let bad = Err(OpError::ShapeMismatch);
        match self {
            Op::Conv(c) => {
                let w = inputs[1];
                let spatial = match (x.rank(), w.rank()) {
                    (3, 3) => 1,
                    (4, 4) => 2,
                    _ => return bad,
                };
                let g = c.group as usize;
                if g == 0 {
                    return Err(OpError::BadAttribute);
                }
                let (cin, m) = (x.dim(1), w.dim(0));
                if cin % g != 0 || m % g != 0 || w.dim(1) * g != cin {
                    return bad;
                }
                if let Some(b) = inputs.get(2) {
                    if b.numel() != Some(m) {
                        return bad;
                    }
                }
                if spatial == 1 && (c.stride[0] != 1 || c.dilation[0] != 1 || c.pads[0] != 0 || c.pads[2] != 0) {
                    return Err(OpError::BadAttribute);
                }
                let mut out = [x.dim(0), m, 0, 0];
                for s in 0..spatial {
                    let ax = 2 + s;
                    let hw = if spatial == 1 { 1 } else { s }; // index into the [h, w] attribute pairs
                    let k = w.dim(ax);
                    let o = conv_out(x.dim(ax), k, c.stride[hw], c.dilation[hw], c.pads[hw], c.pads[hw + 2], false)
                        .ok_or(OpError::ShapeMismatch)?;
                    out[ax] = o;
                }
                Shape::new(&out[..2 + spatial]).ok_or(OpError::ShapeMismatch)
            }
            Op::Dense { .. } => {
                let w = inputs[1];
                if x.rank() == 0 || w.rank() != 2 || x.dim(x.rank() - 1) != w.dim(1) {
                    return bad;
                }
                if let Some(b) = inputs.get(2) {
                    if b.numel() != Some(w.dim(0)) {
                        return bad;
                    }
                }
                let mut d = [0usize; MAX_RANK];
                for (i, v) in d.iter_mut().enumerate().take(x.rank()) {
                    *v = x.dim(i);
                }
                d[x.rank() - 1] = w.dim(0);
                Shape::new(&d[..x.rank()]).ok_or(OpError::ShapeMismatch)
            }
            Op::MatMul => {
                let b = inputs[1];
                if x.rank() < 2 || b.rank() < 2 {
                    return bad;
                }
                let (m, k) = (x.dim(x.rank() - 2), x.dim(x.rank() - 1));
                let (k2, n) = (b.dim(b.rank() - 2), b.dim(b.rank() - 1));
                if k != k2 {
                    return bad;
                }
                let xa = Shape::from_u32(&x.dims()[..x.rank() - 2]).ok_or(OpError::ShapeMismatch)?;
                let ba = Shape::from_u32(&b.dims()[..b.rank() - 2]).ok_or(OpError::ShapeMismatch)?;
                let batch = broadcast(&xa, &ba)?;
                let mut d = [0u32; MAX_RANK + 2];
                d[..batch.rank()].copy_from_slice(batch.dims());
                d[batch.rank()] = m as u32;
                d[batch.rank() + 1] = n as u32;
                Shape::from_u32(&d[..batch.rank() + 2]).ok_or(OpError::ShapeMismatch)
            }
            Op::Binary(_) => broadcast(&x, &inputs[1]),
            Op::Unary(_) => Ok(x),
            Op::Softmax { axis, .. } => {
                if (*axis as usize) < x.rank() {
                    Ok(x)
                } else {
                    bad
                }
            }
            Op::MaxPool(p) | Op::AveragePool(p) => {
                let spatial = match x.rank() {
                    3 => 1,
                    4 => 2,
                    _ => return bad,
                };
                if spatial == 1 && (p.kernel[0] != 1 || p.stride[0] != 1 || p.pads[0] != 0 || p.pads[2] != 0) {
                    return Err(OpError::BadAttribute);
                }
                let mut out = [x.dim(0), x.dim(1), 0, 0];
                for s in 0..spatial {
                    let ax = 2 + s;
                    let hw = if spatial == 1 { 1 } else { s };
                    let pb = p.pads[hw] as usize;
                    let pe = p.pads[hw + 2] as usize;
                    let k = p.kernel[hw] as usize;
                    if pb >= k || pe >= k {
                        return Err(OpError::BadAttribute);
                    }
                    let mut o = conv_out(x.dim(ax), k, p.stride[hw], p.dilation[hw], p.pads[hw], p.pads[hw + 2], p.ceil_mode)
                        .ok_or(OpError::ShapeMismatch)?;
                    // ceil_mode: the last window must start inside the input or the leading padding.
                    if p.ceil_mode && o > 1 && (o - 1) * p.stride[hw] as usize >= x.dim(ax) + pb {
                        o -= 1;
                    }
                    out[ax] = o;
                }
                Shape::new(&out[..2 + spatial]).ok_or(OpError::ShapeMismatch)
            }
            Op::GlobalAveragePool | Op::GlobalMaxPool => {
                if x.rank() < 3 {
                    return bad;
                }
                let mut d = [1u32; MAX_RANK];
                d[0] = x.dims()[0];
                d[1] = x.dims()[1];
                Shape::from_u32(&d[..x.rank()]).ok_or(OpError::ShapeMismatch)
            }
            Op::Reshape { shape } => {
                if shape.numel() == x.numel() {
                    Ok(*shape)
                } else {
                    bad
                }
            }
            Op::Transpose { perm } => {
                let r = x.rank();
                let mut seen = 0u8;
                let mut d = [0u32; MAX_RANK];
                for i in 0..r {
                    let p = perm[i] as usize;
                    if p >= r || seen & (1 << p) != 0 {
                        return Err(OpError::BadAttribute);
                    }
                    seen |= 1 << p;
                    d[i] = x.dims()[p];
                }
                Shape::from_u32(&d[..r]).ok_or(OpError::ShapeMismatch)
            }
            Op::Concat { axis } => {
                let a = *axis as usize;
                if a >= x.rank() {
                    return bad;
                }
                let mut total = 0u64;
                for s in inputs {
                    if s.rank() != x.rank() {
                        return bad;
                    }
                    for i in 0..x.rank() {
                        if i != a && s.dim(i) != x.dim(i) {
                            return bad;
                        }
                    }
                    total += s.dim(a) as u64;
                }
                let mut d = [0u32; MAX_RANK];
                d[..x.rank()].copy_from_slice(x.dims());
                d[a] = u32::try_from(total).map_err(|_| OpError::ShapeMismatch)?;
                Shape::from_u32(&d[..x.rank()]).ok_or(OpError::ShapeMismatch)
            }
            Op::Pad { pads, mode, .. } => {
                let r = x.rank();
                if pads[r..MAX_RANK].iter().any(|&p| p != 0) || pads[MAX_RANK + r..].iter().any(|&p| p != 0) {
                    return Err(OpError::BadAttribute);
                }
                let mut d = [0u32; MAX_RANK];
                for i in 0..r {
                    let (dim, pb, pe) = (x.dims()[i], pads[i], pads[MAX_RANK + i]);
                    let ok = match mode {
                        PadMode::Constant => true,
                        // ONNX reflect: every pad smaller than the axis (one mirror image suffices).
                        PadMode::Reflect => pb < dim.max(1) && pe < dim.max(1),
                        // Edge: something to repeat on every padded axis.
                        PadMode::Edge => dim > 0 || (pb == 0 && pe == 0),
                    };
                    if !ok {
                        return Err(OpError::BadAttribute);
                    }
                    d[i] =
                        x.dims()[i].checked_add(pads[i]).and_then(|v| v.checked_add(pads[MAX_RANK + i])).ok_or(OpError::ShapeMismatch)?;
                }
                Shape::from_u32(&d[..r]).ok_or(OpError::ShapeMismatch)
            }
            Op::ChannelAffine => {
                let c = x.dim(1);
                if x.rank() < 2 || inputs[1].numel() != Some(c) || inputs[2].numel() != Some(c) {
                    return bad;
                }
                Ok(x)
            }
            Op::LayerNorm { axis, .. } => {
                let a = *axis as usize;
                if a >= x.rank() {
                    return bad;
                }
                let n = x.prod(a, x.rank());
                for s in &inputs[1..] {
                    if s.numel() != Some(n) {
                        return bad;
                    }
                }
                Ok(x)
            }
            Op::Reduce { axes, keepdims, .. } => {
                if (*axes as usize) >> x.rank() != 0 {
                    return Err(OpError::BadAttribute);
                }
                let mut d = [0u32; MAX_RANK];
                let mut r = 0;
                for i in 0..x.rank() {
                    if axes & (1 << i) != 0 {
                        if *keepdims {
                            d[r] = 1;
                            r += 1;
                        }
                    } else {
                        d[r] = x.dims()[i];
                        r += 1;
                    }
                }
                Shape::from_u32(&d[..r]).ok_or(OpError::ShapeMismatch)
            }
            Op::Slice { starts, steps, lens } => {
                let r = x.rank();
                for i in r..MAX_RANK {
                    if starts[i] != 0 || steps[i] != 1 || lens[i] != 0 {
                        return Err(OpError::BadAttribute);
                    }
                }
                for i in 0..r {
                    if steps[i] == 0 {
                        return Err(OpError::BadAttribute);
                    }
                    // The last index read (or the start, for an empty axis) must lie inside the input.
                    let (s, n, d) = (starts[i] as u64, lens[i] as u64, x.dims()[i] as u64);
                    let ok = if n == 0 { s <= d } else { s.saturating_add((n - 1).saturating_mul(steps[i] as u64)) < d };
                    if !ok {
                        return bad;
                    }
                }
                Shape::from_u32(&lens[..r]).ok_or(OpError::ShapeMismatch)
            }
            Op::Resize(a) => {
                if a.scale.iter().any(|s| !s.is_finite() || *s < 0.0) {
                    return Err(OpError::BadAttribute);
                }
                let spatial = match x.rank() {
                    3 => 1,
                    4 => 2,
                    _ => return bad,
                };
                if spatial == 1 && (a.size[0] != 1 || a.scale[0] != 0.0) {
                    return Err(OpError::BadAttribute);
                }
                let mut d = [0u32; 4];
                d[..x.rank()].copy_from_slice(x.dims());
                for s in 0..spatial {
                    let hw = if spatial == 1 { 1 } else { s };
                    // Something to sample from.
                    if a.size[hw] > 0 && d[2 + s] == 0 {
                        return bad;
                    }
                    d[2 + s] = a.size[hw];
                }
                Shape::from_u32(&d[..x.rank()]).ok_or(OpError::ShapeMismatch)
            }
        }
    }
}

/// Output length of a convolution / pooling window along one axis; `None` when the window does
/// not fit or the attributes are degenerate.
pub fn conv_out(len: usize, k: usize, stride: u32, dilation: u32, pad_begin: u32, pad_end: u32, ceil: bool) -> Option<usize> {
    let padded = len.checked_add(pad_begin as usize)?.checked_add(pad_end as usize)?;
    let span = (k.checked_sub(1)?).checked_mul(dilation as usize)?.checked_add(1)?;
    if span > padded || stride == 0 {
        return None;
    }
    let s = stride as usize;
    let num = padded - span;
    Some(if ceil { num.div_ceil(s) } else { num / s } + 1)
}

/// numpy multidirectional broadcast of two shapes.
pub fn broadcast(a: &Shape, b: &Shape) -> Result<Shape, OpError> {
    let r = a.rank().max(b.rank());
    let mut d = [0u32; MAX_RANK];
    for (i, slot) in d.iter_mut().enumerate().take(r) {
        let da = if i + a.rank() >= r { a.dims()[i + a.rank() - r] } else { 1 };
        let db = if i + b.rank() >= r { b.dims()[i + b.rank() - r] } else { 1 };
        *slot = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(OpError::ShapeMismatch);
        };
    }
    Shape::from_u32(&d[..r]).ok_or(OpError::ShapeMismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &[usize]) -> Shape {
        Shape::new(d).unwrap()
    }

    #[test]
    fn threshold_keeps_values_above_alpha_only_and_needs_a_finite_alpha() {
        let t = Activation::Threshold { alpha: 0.5 };
        assert_eq!([t.apply(0.75), t.apply(0.5), t.apply(0.25), t.apply(-1.0), t.apply(f32::NAN)], [0.75, 0.0, 0.0, 0.0, 0.0]);
        // alpha 0 is a ReLU.
        for x in [-2.0f32, -0.0, 0.0, 1e-30, 3.5] {
            assert_eq!(Activation::Threshold { alpha: 0.0 }.apply(x).to_bits(), Activation::Relu.apply(x).to_bits());
        }
        let mut w = [0u32; ATTR_WORDS];
        w[0] = 3;
        for bad in [f32::NAN, f32::INFINITY] {
            w[1] = bad.to_bits();
            assert_eq!(Op::decode(kind::DENSE, &w), Err(OpError::BadAttribute));
        }
        w[1] = 0.25f32.to_bits();
        assert_eq!(Op::decode(kind::DENSE, &w), Ok(Op::Dense { act: Activation::Threshold { alpha: 0.25 } }));
    }

    #[test]
    fn quantize_dequantize_attributes_are_checked() {
        let enc = |scale: f32, min: f32, max: f32| Op::Unary(UnaryKind::QuantizeDequantize { scale, min, max }).encode();
        assert!(Op::decode(kind::UNARY, &enc(0.5, -128.0, 127.0)).is_ok());
        for (scale, min, max) in
            [(0.0, 0.0, 1.0), (-1.0, 0.0, 1.0), (f32::NAN, 0.0, 1.0), (1.0, 2.0, 1.0), (1.0, 0.5, 1.0), (1.0, 0.0, f32::INFINITY)]
        {
            assert_eq!(Op::decode(kind::UNARY, &enc(scale, min, max)), Err(OpError::BadAttribute), "{scale} {min} {max}");
        }
    }

    #[test]
    fn encode_decode_round_trips_every_kind() {
        let pool =
            PoolAttrs { kernel: [3, 3], stride: [2, 2], dilation: [1, 1], pads: [1, 0, 1, 0], ceil_mode: true, count_include_pad: false };
        let ops = [
            Op::Conv(ConvAttrs {
                group: 4,
                stride: [2, 1],
                dilation: [1, 2],
                pads: [1, 2, 3, 4],
                act: Activation::Clip { min: 0.0, max: 6.0 },
            }),
            Op::Dense { act: Activation::Relu },
            Op::Dense { act: Activation::Threshold { alpha: 0.125 } },
            Op::MatMul,
            Op::Binary(BinaryKind::PRelu),
            Op::Unary(UnaryKind::HardSigmoid { alpha: 0.2, beta: 0.5 }),
            Op::Unary(UnaryKind::Gelu { tanh_approx: true }),
            Op::Softmax { axis: 3, log: true },
            Op::MaxPool(pool),
            Op::AveragePool(pool),
            Op::GlobalAveragePool,
            Op::GlobalMaxPool,
            Op::Reshape { shape: s(&[1, 64]) },
            Op::Transpose { perm: [0, 2, 3, 1, 0, 0] },
            Op::Concat { axis: 1 },
            Op::Pad { pads: [0, 0, 1, 1, 0, 0, 0, 0, 2, 2, 0, 0], value: 0.5, mode: PadMode::Constant },
            Op::Pad { pads: [0, 0, 1, 1, 0, 0, 0, 0, 2, 2, 0, 0], value: 0.0, mode: PadMode::Reflect },
            Op::Pad { pads: [0, 1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0], value: 0.0, mode: PadMode::Edge },
            Op::ChannelAffine,
            Op::LayerNorm { axis: 2, epsilon: 1e-5 },
            Op::Reduce { kind: ReduceKind::Mean, axes: 0b1100, keepdims: true },
            Op::Slice { starts: [0, 1, 2, 0, 0, 0], steps: [1, 2, 3, 1, 1, 1], lens: [1, 4, 2, 0, 0, 0] },
            Op::Unary(UnaryKind::Floor),
            Op::Unary(UnaryKind::Ceil),
            Op::Unary(UnaryKind::Round),
            Op::Unary(UnaryKind::Sign),
            Op::Unary(UnaryKind::Sin),
            Op::Unary(UnaryKind::Cos),
            Op::Unary(UnaryKind::QuantizeDequantize { scale: 0.0039, min: 0.0, max: 255.0 }),
            Op::Resize(ResizeAttrs {
                size: [7, 9],
                scale: [0.0, 2.5],
                mode: ResizeMode::Nearest(NearestMode::Ceil),
                coord: CoordMode::PytorchHalfPixel,
            }),
            Op::Resize(ResizeAttrs { size: [1, 4], scale: [0.0, 0.0], mode: ResizeMode::Linear, coord: CoordMode::AlignCorners }),
            Op::Resize(ResizeAttrs {
                size: [2, 3],
                scale: [1.0, 0.5],
                mode: ResizeMode::Nearest(NearestMode::RoundPreferFloor),
                coord: CoordMode::HalfPixel,
            }),
        ];
        for op in ops {
            assert_eq!(Op::decode(op.kind_code(), &op.encode()), Ok(op));
        }
        assert_eq!(Op::decode(999, &[0; ATTR_WORDS]), Err(OpError::UnknownKind(999)));
    }

    #[test]
    fn conv_shapes_follow_onnx() {
        let c = ConvAttrs { group: 1, stride: [2, 2], dilation: [1, 1], pads: [1, 1, 1, 1], act: Activation::None };
        assert_eq!(Op::Conv(c).infer(&[s(&[1, 3, 32, 32]), s(&[8, 3, 3, 3])]), Ok(s(&[1, 8, 16, 16])));
        let dw = ConvAttrs { group: 8, ..c };
        assert_eq!(Op::Conv(dw).infer(&[s(&[1, 8, 16, 16]), s(&[8, 1, 3, 3]), s(&[8])]), Ok(s(&[1, 8, 8, 8])));
        assert_eq!(Op::Conv(dw).infer(&[s(&[1, 8, 16, 16]), s(&[8, 2, 3, 3])]), Err(OpError::ShapeMismatch));
        let c1 = ConvAttrs { group: 1, stride: [1, 2], dilation: [1, 1], pads: [0, 2, 0, 2], act: Activation::None };
        assert_eq!(Op::Conv(c1).infer(&[s(&[1, 40, 98]), s(&[16, 40, 5])]), Ok(s(&[1, 16, 49])));
    }

    #[test]
    fn pool_ceil_mode_drops_windows_starting_in_padding() {
        let p = PoolAttrs { kernel: [3, 3], stride: [2, 2], dilation: [1, 1], pads: [0; 4], ceil_mode: true, count_include_pad: false };
        assert_eq!(Op::MaxPool(p).infer(&[s(&[1, 1, 32, 32])]), Ok(s(&[1, 1, 16, 16])));
        let q = PoolAttrs { ceil_mode: false, ..p };
        assert_eq!(Op::MaxPool(q).infer(&[s(&[1, 1, 32, 32])]), Ok(s(&[1, 1, 15, 15])));
    }

    #[test]
    fn broadcast_and_matmul() {
        assert_eq!(broadcast(&s(&[1, 8, 4, 4]), &s(&[8, 1, 1])), Ok(s(&[1, 8, 4, 4])));
        assert_eq!(broadcast(&s(&[3]), &s(&[4])), Err(OpError::ShapeMismatch));
        assert_eq!(Op::MatMul.infer(&[s(&[1, 2, 16, 16]), s(&[2, 16, 8])]), Ok(s(&[1, 2, 16, 8])));
        assert_eq!(Op::Dense { act: Activation::None }.infer(&[s(&[1, 16, 32]), s(&[96, 32])]), Ok(s(&[1, 16, 96])));
    }

    #[test]
    fn reduce_and_transpose() {
        let r = Op::Reduce { kind: ReduceKind::Mean, axes: 0b1100, keepdims: false };
        assert_eq!(r.infer(&[s(&[1, 8, 4, 4])]), Ok(s(&[1, 8])));
        let t = Op::Transpose { perm: [0, 2, 1, 3, 0, 0] };
        assert_eq!(t.infer(&[s(&[1, 2, 3, 4])]), Ok(s(&[1, 3, 2, 4])));
        let bad = Op::Transpose { perm: [0, 0, 1, 3, 0, 0] };
        assert_eq!(bad.infer(&[s(&[1, 2, 3, 4])]), Err(OpError::BadAttribute));
    }

    #[test]
    fn resize_shapes_and_domain() {
        let a = ResizeAttrs { size: [1, 6], scale: [0.0, 0.0], mode: ResizeMode::Linear, coord: CoordMode::Asymmetric };
        assert_eq!(Op::Resize(a).infer(&[s(&[2, 3, 4])]), Ok(s(&[2, 3, 6])));
        assert_eq!(Op::Resize(ResizeAttrs { size: [5, 6], ..a }).infer(&[s(&[2, 3, 4, 4])]), Ok(s(&[2, 3, 5, 6])));
        // 1-D needs neutral height entries; nothing to sample from an empty axis.
        assert_eq!(Op::Resize(ResizeAttrs { size: [2, 6], ..a }).infer(&[s(&[2, 3, 4])]), Err(OpError::BadAttribute));
        assert_eq!(Op::Resize(a).infer(&[s(&[2, 3, 0])]), Err(OpError::ShapeMismatch));
        assert_eq!(Op::Resize(ResizeAttrs { size: [1, 0], ..a }).infer(&[s(&[2, 3, 0])]), Ok(s(&[2, 3, 0])));
        assert_eq!(Op::Resize(a).infer(&[s(&[2, 3])]), Err(OpError::ShapeMismatch));
        let mut w = Op::Resize(a).encode();
        w[5] = 1; // a nearest mode with linear interpolation
        assert_eq!(Op::decode(kind::RESIZE, &w), Err(OpError::BadAttribute));
        let mut w = Op::Resize(a).encode();
        w[3] = (-1.0f32).to_bits();
        assert_eq!(Op::decode(kind::RESIZE, &w), Err(OpError::BadAttribute));
        w[3] = f32::NAN.to_bits();
        assert_eq!(Op::decode(kind::RESIZE, &w), Err(OpError::BadAttribute));
        w[3] = 0;
        w[6] = 4;
        assert_eq!(Op::decode(kind::RESIZE, &w), Err(OpError::BadAttribute));
    }

    #[test]
    fn pad_modes_domain() {
        let op = |mode, b: u32, e: u32| {
            let mut pads = [0u32; 12];
            pads[1] = b;
            pads[7] = e;
            Op::Pad { pads, value: 0.0, mode }
        };
        assert_eq!(op(PadMode::Reflect, 2, 2).infer(&[s(&[2, 3])]), Ok(s(&[2, 7])));
        assert_eq!(op(PadMode::Reflect, 3, 0).infer(&[s(&[2, 3])]), Err(OpError::BadAttribute));
        assert_eq!(op(PadMode::Reflect, 0, 3).infer(&[s(&[2, 3])]), Err(OpError::BadAttribute));
        assert_eq!(op(PadMode::Reflect, 1, 0).infer(&[s(&[2, 1])]), Err(OpError::BadAttribute));
        assert_eq!(op(PadMode::Reflect, 0, 0).infer(&[s(&[2, 0])]), Ok(s(&[2, 0])));
        assert_eq!(op(PadMode::Edge, 5, 4).infer(&[s(&[2, 1])]), Ok(s(&[2, 10])));
        assert_eq!(op(PadMode::Edge, 1, 0).infer(&[s(&[2, 0])]), Err(OpError::BadAttribute));
        assert_eq!(op(PadMode::Constant, 1, 0).infer(&[s(&[2, 0])]), Ok(s(&[2, 1])));
        // Word 13 holds the mode; old files (word 13 = 0) decode as constant.
        let mut w = op(PadMode::Edge, 1, 1).encode();
        assert_eq!(w[13], 2);
        w[13] = 0;
        assert_eq!(Op::decode(kind::PAD, &w), Ok(op(PadMode::Constant, 1, 1)));
        w[13] = 3;
        assert_eq!(Op::decode(kind::PAD, &w), Err(OpError::BadAttribute));
    }

    #[test]
    fn slice_shapes_and_domain() {
        let op = |starts: [u32; 6], steps: [u32; 6], lens: [u32; 6]| Op::Slice { starts, steps, lens };
        // x[0:1, 1:9:2, 2:8:3]
        let a = op([0, 1, 2, 0, 0, 0], [1, 2, 3, 1, 1, 1], [1, 4, 2, 0, 0, 0]);
        assert_eq!(a.infer(&[s(&[2, 9, 8])]), Ok(s(&[1, 4, 2])));
        // The last index read must be inside the input: 1 + 3 * 2 = 7 < 8, but 7 >= 7.
        assert_eq!(a.infer(&[s(&[2, 8, 8])]), Ok(s(&[1, 4, 2])));
        assert_eq!(a.infer(&[s(&[2, 7, 8])]), Err(OpError::ShapeMismatch));
        // Empty axes: the start may be the end of the axis, not beyond.
        let e = op([3, 0, 0, 0, 0, 0], [1; 6], [0, 2, 0, 0, 0, 0]);
        assert_eq!(e.infer(&[s(&[3, 2])]), Ok(s(&[0, 2])));
        assert_eq!(e.infer(&[s(&[2, 2])]), Err(OpError::ShapeMismatch));
        // Entries beyond the rank must be neutral; steps must be positive.
        assert_eq!(a.infer(&[s(&[2, 9])]), Err(OpError::BadAttribute));
        let mut w = a.encode();
        w[7] = 0;
        assert_eq!(Op::decode(kind::SLICE, &w), Err(OpError::BadAttribute));
        assert_eq!(op([0; 6], [0, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]).infer(&[s(&[4])]), Err(OpError::BadAttribute));
        // Rank 0: a scalar passes through.
        assert_eq!(op([0; 6], [1; 6], [0; 6]).infer(&[s(&[])]), Ok(s(&[])));
        // Huge starts or lengths do not overflow.
        assert_eq!(
            op([u32::MAX, 0, 0, 0, 0, 0], [u32::MAX, 1, 1, 1, 1, 1], [u32::MAX, 0, 0, 0, 0, 0]).infer(&[s(&[4])]),
            Err(OpError::ShapeMismatch)
        );
    }
}
