//! Per-layer and whole-model statistics of a `.sprig` file (for `inspect` and reports).

use serde::Serialize;
use sprig_runtime::format::{encoding, kernel, Role};
use sprig_runtime::{Model, Op};

/// One operator's figures.
#[derive(Clone, Debug, Serialize)]
pub struct LayerStats {
    /// Node name.
    pub name: String,
    /// Operator name.
    pub op: String,
    /// Kernel name.
    pub kernel: String,
    /// Weight encoding of its constants (`none` when it has none).
    pub encoding: String,
    /// Output shape.
    pub output_shape: Vec<usize>,
    /// Parameters (elements of constant operands; stored values for block-sparse ones).
    pub params: u64,
    /// Fraction of the weight operand's elements stored (1 when dense, below 1 when block-sparse).
    pub weight_density: f64,
    /// Codebook weight operand: index bits, number of codebooks, and payload bits per weight
    /// (everything included).
    pub codebook: Option<(u8, usize, f64)>,
    /// Multiply-accumulates per inference (of stored weights, for block-sparse weights).
    pub macs: u64,
    /// Bytes of constant payloads.
    pub weight_bytes: u64,
}

/// Whole-model figures.
#[derive(Clone, Debug, Serialize)]
pub struct ModelStats {
    /// File size.
    pub file_bytes: u64,
    /// Sum of constant payload bytes.
    pub weight_bytes: u64,
    /// Parameter count.
    pub params: u64,
    /// MACs per inference.
    pub macs: u64,
    /// Arena bytes.
    pub arena_bytes: u64,
    /// Lower bound of the arena.
    pub arena_lower_bound_bytes: u64,
    /// Producer string.
    pub producer: String,
    /// SHA-256 of the source model (hex).
    pub source_sha256: String,
    /// Inputs (name, shape).
    pub inputs: Vec<(String, Vec<usize>)>,
    /// Outputs (name, shape).
    pub outputs: Vec<(String, Vec<usize>)>,
    /// Per-operator figures.
    pub layers: Vec<LayerStats>,
}

fn dims(s: &sprig_runtime::Shape) -> Vec<usize> {
    s.dims().iter().map(|&d| d as usize).collect()
}

/// Computes the statistics of a validated model.
pub fn model_stats(model: &Model<'_>, file_bytes: u64) -> ModelStats {
    let mut layers = Vec::new();
    let mut seen = vec![false; model.num_tensors()];
    let (mut tw, mut tp) = (0u64, 0u64);
    for i in 0..model.num_ops() {
        let Some(o) = model.op(i) else { continue };
        let out = model.tensor(model.op_output(&o) as usize).map(|t| t.shape).unwrap_or_default();
        let mut params = 0u64;
        let mut wbytes = 0u64;
        let mut enc = encoding::NONE;
        let mut in_shapes = Vec::new();
        let mut density = 1.0f64;
        let mut codebook = None;
        for k in 0..o.n_inputs {
            let id = model.op_operand(&o, k).unwrap_or(0) as usize;
            let Some(t) = model.tensor(id) else { continue };
            // Input-sparse weights are stored with dims 0 and 1 swapped.
            in_shapes.push(if k == 1 && o.kernel == kernel::INPUT_SPARSE { swap01(t.shape) } else { t.shape });
            if t.role == Role::Constant {
                let mut n = t.shape.numel().unwrap_or(0) as u64;
                if let Some(b) = model.bsr_info(&t) {
                    let d = b.stored_values().min(n as usize) as f64 / n.max(1) as f64;
                    if k == 1 {
                        density = d;
                    }
                    n = b.stored_values().min(n as usize) as u64;
                }
                if let (Some(c), 1) = (model.codebook_info(&t), k) {
                    codebook = Some((c.bits, c.groups, c.bits_per_weight() as f64));
                }
                params += n;
                wbytes += t.len as u64;
                if enc == encoding::NONE || k == 1 {
                    enc = t.encoding;
                }
                if !seen[id] {
                    seen[id] = true;
                    tw += t.len as u64;
                    tp += n;
                }
            }
        }
        let out_n = out.numel().unwrap_or(0) as u64;
        let dense_macs = match o.op {
            Op::Conv(_) => {
                let w = in_shapes.get(1).copied().unwrap_or_default();
                out_n * w.prod(1, w.rank()) as u64
            }
            Op::Dense { .. } => out_n * in_shapes.first().map(|s| s.dim(s.rank().saturating_sub(1))).unwrap_or(0) as u64,
            Op::MatMul => out_n * in_shapes.first().map(|s| s.dim(s.rank().saturating_sub(1))).unwrap_or(0) as u64,
            _ => 0,
        };
        let macs = (dense_macs as f64 * density).round() as u64;
        layers.push(LayerStats {
            name: o.name.to_string(),
            op: o.op.name().to_string(),
            kernel: kernel::name(o.kernel).to_string(),
            encoding: encoding::name(enc).to_string(),
            output_shape: dims(&out),
            params,
            weight_density: density,
            codebook,
            macs,
            weight_bytes: wbytes,
        });
    }
    ModelStats {
        file_bytes,
        weight_bytes: tw,
        params: tp,
        macs: layers.iter().map(|l| l.macs).sum(),
        arena_bytes: model.arena_len() as u64,
        arena_lower_bound_bytes: model.arena_lower_bound() as u64,
        producer: model.producer().to_string(),
        source_sha256: model.source_sha256().iter().map(|b| format!("{b:02x}")).collect(),
        inputs: model.inputs().map(|io| (io.name.to_string(), dims(&io.shape))).collect(),
        outputs: model.outputs().map(|io| (io.name.to_string(), dims(&io.shape))).collect(),
        layers,
    }
}

/// `s` with dims 0 and 1 swapped.
fn swap01(s: sprig_runtime::Shape) -> sprig_runtime::Shape {
    let mut d: Vec<u32> = s.dims().to_vec();
    if d.len() >= 2 {
        d.swap(0, 1);
    }
    sprig_runtime::Shape::from_u32(&d).unwrap_or(s)
}
