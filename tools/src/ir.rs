//! The compiler's graph IR: static-shaped f32 tensors and runtime operators.
//!
//! Operators are the runtime's own [`sprig_runtime::Op`], so shape inference and attribute
//! encoding are shared with the reader. Constants carry their f32 data; everything else is an
//! activation placed in the arena by the planner.

use sprig_runtime::{Op, Shape};
use std::sync::Arc;

/// Index of a tensor in [`Graph::tensors`].
pub type TensorId = usize;

/// One tensor of the graph.
#[derive(Clone, Debug)]
pub struct Tensor {
    /// ONNX tensor name (unique in the graph).
    pub name: String,
    /// Static shape (batch 1).
    pub shape: Vec<usize>,
    /// Values of a constant (row-major), `None` for activations and graph inputs.
    pub data: Option<Vec<f32>>,
    /// How a constant is stored in the file.
    pub storage: Storage,
}

/// Storage of a constant weight.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Storage {
    /// Every element (f32, or f16 under `WeightFormat::F16`).
    #[default]
    Dense,
    /// Block-sparse rows with `br × bc` blocks over the `[dim0, rest]` matrix: all-zero blocks
    /// are not stored (`encoding::BSR_F32`).
    Bsr {
        /// Block rows.
        br: usize,
        /// Block columns.
        bc: usize,
    },
    /// Indices into per-row-group codebooks (`encoding::CODEBOOK`); the tensor's `data` holds
    /// exactly the decoded values.
    Codebook(Arc<CodebookData>),
    /// Every element (f32, or f16 under `WeightFormat::F16`), written input-major (dims 0 and 1
    /// swapped); the consuming Dense or 1×1 Conv runs the input-sparse kernel
    /// (`format::kernel::INPUT_SPARSE`). `data` and `shape` stay output-major.
    InputMajor,
    /// Codebook indices over the input-major matrix (`[dim1, dim0]`: rows are the layer's
    /// inputs, row groups over inputs), run by the input-sparse kernel; `data` (output-major)
    /// holds exactly the decoded values.
    InputMajorCodebook(Arc<CodebookData>),
    /// 8-bit codes on the grid `lo + step · q` (`encoding::U8_AFFINE`); `data` holds exactly grid
    /// values (`format::u8_affine_value`), so the file decodes to it bit for bit.
    U8Affine {
        /// Value of code 0.
        lo: f32,
        /// Grid step (≥ 0).
        step: f32,
    },
}

/// A codebook-quantized `[rows, cols]` weight matrix (rows = dim 0).
#[derive(Clone, Debug, PartialEq)]
pub struct CodebookData {
    /// Bits per index, 1 to 8.
    pub bits: u8,
    /// Codebook values stored as f16 (every value is exactly representable in f16).
    pub f16_values: bool,
    /// Group (codebook) of each row.
    pub row_group: Vec<u16>,
    /// `groups · 2^bits` values, group after group.
    pub codebooks: Vec<f32>,
    /// One index per weight, row-major.
    pub indices: Vec<u8>,
    /// Run the consuming Dense layer with the lookup-table kernel (`format::kernel::CODEBOOK_LUT`).
    pub lut: bool,
}

impl CodebookData {
    /// Number of codebooks.
    pub fn groups(&self) -> usize {
        self.codebooks.len() >> self.bits
    }

    /// The weight values the indices decode to.
    pub fn decode(&self) -> Vec<f32> {
        let rows = self.row_group.len().max(1);
        let cols = self.indices.len() / rows;
        let k = 1usize << self.bits;
        self.indices.iter().enumerate().map(|(i, &ix)| self.codebooks[self.row_group[i / cols.max(1)] as usize * k + ix as usize]).collect()
    }
}

impl Tensor {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The runtime shape (rank checked at import).
    pub fn rt_shape(&self) -> Shape {
        Shape::new(&self.shape).expect("IR shapes are checked to fit the runtime's rank at import")
    }
}

/// One operator application.
#[derive(Clone, Debug)]
pub struct Node {
    /// Name of the ONNX node it came from (or a derived name for nodes made by passes).
    pub name: String,
    /// ONNX op type it came from (e.g. `Conv`, or `Conv+Relu` after fusion), for reports.
    pub onnx_op: String,
    /// The runtime operator.
    pub op: Op,
    /// Input tensors, in the operator's operand order.
    pub inputs: Vec<TensorId>,
    /// Output tensors (exactly one for every operator today).
    pub outputs: Vec<TensorId>,
}

/// A whole model: nodes in execution (topological) order.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// All tensors.
    pub tensors: Vec<Tensor>,
    /// Nodes in a valid execution order.
    pub nodes: Vec<Node>,
    /// Graph inputs (activations written by the caller).
    pub inputs: Vec<TensorId>,
    /// Graph outputs.
    pub outputs: Vec<TensorId>,
}

impl Graph {
    /// Adds a tensor and returns its id.
    pub fn add_tensor(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Option<Vec<f32>>) -> TensorId {
        self.tensors.push(Tensor { name: name.into(), shape, data, storage: Storage::Dense });
        self.tensors.len() - 1
    }

    /// True when `t` is a constant.
    pub fn is_const(&self, t: TensorId) -> bool {
        self.tensors[t].data.is_some()
    }

    /// Nodes that read `t`.
    pub fn consumers(&self, t: TensorId) -> Vec<usize> {
        self.nodes.iter().enumerate().filter(|(_, n)| n.inputs.contains(&t)).map(|(i, _)| i).collect()
    }

    /// Infers the output shape of `op` on `inputs` with the runtime's rules.
    pub fn infer(&self, op: &Op, inputs: &[TensorId]) -> Result<Vec<usize>, sprig_runtime::OpError> {
        let shapes: Vec<Shape> = inputs
            .iter()
            .map(|&t| Shape::new(&self.tensors[t].shape).ok_or(sprig_runtime::OpError::ShapeMismatch))
            .collect::<Result<_, _>>()?;
        let s = op.infer(&shapes)?;
        Ok(s.dims().iter().map(|&d| d as usize).collect())
    }

    /// Removes tensors no node, input or output refers to, renumbering ids.
    pub fn compact(&mut self) {
        let mut used = vec![false; self.tensors.len()];
        for n in &self.nodes {
            for &t in n.inputs.iter().chain(&n.outputs) {
                used[t] = true;
            }
        }
        for &t in self.inputs.iter().chain(&self.outputs) {
            used[t] = true;
        }
        let mut map = vec![usize::MAX; self.tensors.len()];
        let mut kept = Vec::new();
        for (i, t) in std::mem::take(&mut self.tensors).into_iter().enumerate() {
            if used[i] {
                map[i] = kept.len();
                kept.push(t);
            }
        }
        self.tensors = kept;
        for n in &mut self.nodes {
            for t in n.inputs.iter_mut().chain(n.outputs.iter_mut()) {
                *t = map[*t];
            }
        }
        for t in self.inputs.iter_mut().chain(self.outputs.iter_mut()) {
            *t = map[*t];
        }
    }
}
