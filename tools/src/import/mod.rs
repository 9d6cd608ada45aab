//! ONNX import: reads an ONNX model (protobuf structs from tract-onnx) and lowers it to the
//! compiler IR ([`crate::ir::Graph`]) with static shapes, constant folding and the runtime's
//! operators, then runs [`crate::passes::optimize`].

mod ctx;
#[cfg(test)]
mod hostile_tests;
mod ops;
mod proto;
#[cfg(test)]
pub(crate) mod tests;
mod value;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use tract_onnx::pb::ModelProto;

pub use ctx::UnsupportedNode;

/// ONNX operators (default domain) the importer handles. Some are only supported when their
/// inputs are constants (shape arithmetic) or with particular attributes; unsupported cases are
/// reported per node by [`ImportError::Unsupported`].
pub const SUPPORTED_OPS: &[&str] = &[
    // compute
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Max",
    "Min",
    "Sum",
    "PRelu",
    "Relu",
    "Clip",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "HardSigmoid",
    "HardSwish",
    "Erf",
    "Gelu",
    "Exp",
    "Log",
    "Sqrt",
    "Neg",
    "Abs",
    "Reciprocal",
    "Elu",
    "Softplus",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Sin",
    "Cos",
    "Softmax",
    "LogSoftmax",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
    "LayerNormalization",
    "ReduceMean",
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    // layout
    "Flatten",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Concat",
    "Pad",
    "Resize",
    "Upsample",
    "Slice",
    "Split",
    "Expand",
    "Identity",
    "Dropout",
    "Cast",
    "CastLike",
    // quantized models (emulated exactly in f32)
    "QuantizeLinear",
    "DequantizeLinear",
    // constant / shape arithmetic (folded at import)
    "Constant",
    "ConstantOfShape",
    "Shape",
    "Size",
    "Gather",
    "Range",
    "Equal",
    "Less",
    "Greater",
    "LessOrEqual",
    "GreaterOrEqual",
    "And",
    "Or",
    "Not",
    "Where",
];

/// Import options.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Static shapes for graph inputs by name (replace the model's declared shape).
    pub input_shapes: HashMap<String, Vec<usize>>,
}

/// Why a model could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read ONNX file {path}: {detail}")]
    Io {
        /// File path.
        path: String,
        /// OS error.
        detail: String,
    },
    /// The bytes are not a valid ONNX model.
    #[error("cannot parse ONNX model: {0}")]
    Parse(String),
    /// Nodes the importer cannot lower (every one of them is listed).
    #[error("{}", fmt_unsupported(.0))]
    Unsupported(Vec<UnsupportedNode>),
    /// A graph input has a symbolic dimension other than the batch dimension.
    #[error(
        "graph input `{input}` has symbolic dimension {dim} (`{param}`, declared shape {declared}); \
         give a static shape, e.g. `--input-shape {input}=1,3,96,96`"
    )]
    SymbolicDim {
        /// Input name.
        input: String,
        /// Axis index.
        dim: usize,
        /// The symbol.
        param: String,
        /// The declared shape, symbols shown by name.
        declared: String,
    },
    /// Operand shapes are inconsistent with a node.
    #[error("node `{node}` ({op_type}): {detail}")]
    Shape {
        /// Node name.
        node: String,
        /// ONNX op type.
        op_type: String,
        /// What is wrong.
        detail: String,
    },
    /// An attribute is missing or invalid.
    #[error("node `{node}` ({op_type}): attribute `{attr}`: {detail}")]
    Attribute {
        /// Node name.
        node: String,
        /// ONNX op type.
        op_type: String,
        /// Attribute name.
        attr: String,
        /// What is wrong.
        detail: String,
    },
    /// A weight holds NaN or infinite values.
    #[error("tensor `{tensor}` contains NaN or infinite values")]
    NonFinite {
        /// Initializer / constant name.
        tensor: String,
    },
    /// A tensor (initializer, constant attribute) cannot be read.
    #[error("tensor `{tensor}`: {detail}")]
    Tensor {
        /// Tensor name.
        tensor: String,
        /// What is wrong.
        detail: String,
    },
    /// The graph structure is invalid (missing values, constant outputs, ...).
    #[error("invalid graph: {0}")]
    Graph(String),
    /// An optimization pass failed.
    #[error("optimization failed: {0}")]
    Pass(#[from] crate::passes::PassError),
}

fn fmt_unsupported(v: &[UnsupportedNode]) -> String {
    let mut s = format!("the model has {} unsupported node(s):", v.len());
    for n in v {
        s.push_str(&format!("\n  {n}"));
    }
    s
}

impl fmt::Display for UnsupportedNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dom = if self.domain.is_empty() { "ai.onnx" } else { &self.domain };
        write!(f, "node `{}` ({} from {} opset {}): {}", self.name, self.op_type, dom, self.opset, self.reason)
    }
}

/// Largest tensor the importer accepts: 2^28 elements (1 GiB as f32), far above anything an edge
/// device runs. Bounds every allocation a hostile shape could ask for.
pub const MAX_ELEMENTS: usize = 1 << 28;

/// Elements of `shape` when that is at most [`MAX_ELEMENTS`] (and the product does not overflow).
pub(crate) fn capped_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n <= MAX_ELEMENTS)
}

/// Notes on the graph inputs and outputs of ONNX file bytes whose element type is an integer
/// type sprig carries as f32 (quantized models): `name (TYPE)` each, inputs then outputs. Empty
/// when there are none or the bytes do not parse (the import reports that).
pub fn integer_io(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    let Ok(m) = parse_bytes(bytes) else { return Default::default() };
    let Some(g) = m.graph.as_ref() else { return Default::default() };
    let list = |vs: &[tract_onnx::pb::ValueInfoProto]| -> Vec<String> {
        vs.iter()
            .filter(|v| !g.initializer.iter().any(|i| i.name == v.name))
            .filter_map(|v| match v.r#type.as_ref()?.value.as_ref()? {
                tract_onnx::pb::type_proto::Value::TensorType(t) if proto::is_small_int_type(t.elem_type) => {
                    Some(format!("`{}` ({})", v.name, proto::type_name(t.elem_type)))
                }
                _ => None,
            })
            .collect()
    };
    (list(&g.input), list(&g.output))
}

/// Imports an ONNX file.
pub fn import_onnx(path: &Path, opts: &ImportOptions) -> Result<crate::ir::Graph, ImportError> {
    use tract_onnx::tract_core::prelude::Framework;
    let p = path.to_path_buf();
    if let Err(e) = std::fs::metadata(&p) {
        return Err(ImportError::Io { path: path.display().to_string(), detail: e.to_string() });
    }
    let model = std::panic::catch_unwind(move || tract_onnx::onnx().proto_model_for_path(&p))
        .map_err(|_| ImportError::Parse(format!("{}: the protobuf parser panicked", path.display())))?
        .map_err(|e| ImportError::Parse(format!("{}: {e:#}", path.display())))?;
    let dir = path.parent().map(|d| d.to_string_lossy().into_owned());
    import_model_proto(&model, dir.as_deref(), opts)
}

/// Imports an ONNX model from its serialized bytes (external data is not available).
pub fn import_onnx_bytes(bytes: &[u8], opts: &ImportOptions) -> Result<crate::ir::Graph, ImportError> {
    import_model_proto(&parse_bytes(bytes)?, None, opts)
}

/// Imports the bytes of the ONNX file at `path` (already read, e.g. to hash them); external data
/// is resolved inside `path`'s folder.
pub fn import_onnx_file_bytes(bytes: &[u8], path: &Path, opts: &ImportOptions) -> Result<crate::ir::Graph, ImportError> {
    import_model_proto(&parse_bytes(bytes)?, Some(&model_dir(path)), opts)
}

/// [`import_onnx_file_bytes`] without the optimization passes (see
/// [`import_onnx_bytes_unoptimized`]).
pub fn import_onnx_file_bytes_unoptimized(bytes: &[u8], path: &Path, opts: &ImportOptions) -> Result<crate::ir::Graph, ImportError> {
    import_proto(&parse_bytes(bytes)?, Some(&model_dir(path)), opts)
}

/// The folder external data of the model at `path` is resolved in.
fn model_dir(path: &Path) -> String {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_string_lossy().into_owned(),
        _ => ".".to_string(),
    }
}

/// Imports an ONNX model from its serialized bytes without the optimization passes: one node per
/// ONNX node (constants folded), every ONNX tensor keeps its name, so intermediate tensors (e.g.
/// each Relu output) can be observed as the source model computes them.
pub fn import_onnx_bytes_unoptimized(bytes: &[u8], opts: &ImportOptions) -> Result<crate::ir::Graph, ImportError> {
    import_proto(&parse_bytes(bytes)?, None, opts)
}

/// The protobuf model in `bytes`; a parser panic is an error.
fn parse_bytes(bytes: &[u8]) -> Result<ModelProto, ImportError> {
    use tract_onnx::tract_core::prelude::Framework;
    std::panic::catch_unwind(|| {
        let mut r = bytes;
        tract_onnx::onnx().proto_model_for_read(&mut r)
    })
    .map_err(|_| ImportError::Parse("the protobuf parser panicked".into()))?
    .map_err(|e| ImportError::Parse(format!("{e:#}")))
}

/// Imports a decoded model. `model_dir` locates external data.
pub fn import_model_proto(model: &ModelProto, model_dir: Option<&str>, opts: &ImportOptions) -> Result<crate::ir::Graph, ImportError> {
    let mut g = import_proto(model, model_dir, opts)?;
    crate::passes::optimize(&mut g)?;
    Ok(g)
}

fn import_proto(model: &ModelProto, model_dir: Option<&str>, opts: &ImportOptions) -> Result<crate::ir::Graph, ImportError> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ctx::import(model, model_dir, opts)));
    let mut g = match r {
        Ok(r) => r?,
        Err(p) => {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            return Err(ImportError::Graph(format!("internal error while importing (panic: {msg})")));
        }
    };
    crate::ir::Graph::compact(&mut g);
    Ok(g)
}
