//! The convert pipeline: ONNX file → IR → plan → `.sprig` bytes, checked by the runtime reader.

use crate::import::{import_onnx_file_bytes, ImportOptions};
use crate::ir::Graph;
use crate::plan::{plan, Plan};
use crate::writer::{write, WeightFormat, WriteOptions};
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Settings for [`convert_file`].
#[derive(Clone, Debug, Default)]
pub struct ConvertOptions {
    /// Import settings (static input shapes).
    pub import: ImportOptions,
    /// Weight storage.
    pub weights: WeightFormat,
    /// Drop the names of operators and internal tensors ([`strip_names`]).
    pub strip_names: bool,
}

/// Empties the names of every operator and of every tensor that is not a graph input or output
/// (graph inputs and outputs keep theirs: callers address them by name). Saves the string bytes
/// in flash; errors and reports then name operators by index.
pub fn strip_names(g: &mut Graph) {
    for (i, t) in g.tensors.iter_mut().enumerate() {
        if !g.inputs.contains(&i) && !g.outputs.contains(&i) {
            t.name.clear();
        }
    }
    for n in &mut g.nodes {
        n.name.clear();
    }
}

/// The result of a conversion.
pub struct Converted {
    /// The imported, optimised graph.
    pub graph: Graph,
    /// Its memory plan.
    pub plan: Plan,
    /// The `.sprig` file bytes (already validated by the runtime reader).
    pub bytes: Vec<u8>,
}

/// The producer string written into files.
pub fn producer() -> String {
    format!("sprig-tools {}", env!("CARGO_PKG_VERSION"))
}

/// Most output positions of a pointwise layer [`pack_small_planes`] stores input-major (the
/// runtime's `gemm::IM_PLANE`).
pub const SMALL_PLANE: usize = 36;

/// Weights laid out offline for their kernel: every stride-1 pointwise Conv (group 1, 1×1, no
/// padding) over a plane of at most [`SMALL_PLANE`] positions whose weight is plain f32 (all
/// finite, read by that layer only, at most 1024 filters) is stored input-major and runs the
/// input-major kernel (`format::kernel::INPUT_SPARSE`). There, the tiled product would fill at
/// most that many of a register's lanes per filter row (9 of 16 on a 3×3 plane); input-major
/// rows fill every lane with 16 filters at once (measured in README's speed section). Returns
/// how many layers changed.
pub fn pack_small_planes(g: &mut Graph) -> usize {
    let mut packed = 0;
    for n in 0..g.nodes.len() {
        if small_plane(g, n) {
            let w = g.nodes[n].inputs[1];
            g.tensors[w].storage = crate::ir::Storage::InputMajor;
            packed += 1;
        }
    }
    packed
}

/// Whether node `n` is a pointwise layer the small-plane kernel takes: a stride-1 Conv over a
/// plane of at most [`SMALL_PLANE`] positions, with at most 1024 filters and 1024 inputs, whose
/// plain, finite weight may be stored input-major. Codebook quantization stores these layers'
/// codebooks input-major too (the kernel decodes blocks of outputs onto the stack).
pub fn small_plane(g: &Graph, n: usize) -> bool {
    let node = &g.nodes[n];
    let sprig_runtime::op::Op::Conv(a) = node.op else { return false };
    let (Some(&w), Some(&y)) = (node.inputs.get(1), node.outputs.first()) else { return false };
    let (ws, ys) = (&g.tensors[w].shape, &g.tensors[y].shape);
    let plane: usize = ys.iter().skip(2).product();
    a.stride == [1, 1]
        && ys.len() >= 3
        && plane <= SMALL_PLANE
        && ws.first().is_some_and(|&m| m <= 1024)
        && ws.get(1).is_some_and(|&c| c <= 1024)
        && g.tensors[w].storage == crate::ir::Storage::Dense
        && g.tensors[w].data.as_ref().is_some_and(|d| d.iter().all(|v| v.is_finite()))
        && crate::writer::input_major_ok(g, w)
}

/// Plans and serialises `graph`, then parses the result with the runtime's validating reader.
/// With f32 weights, small-plane pointwise layers are stored input-major
/// ([`pack_small_planes`]).
pub fn compile(mut graph: Graph, weights: WeightFormat, source_sha256: [u8; 32]) -> Result<Converted> {
    if weights == WeightFormat::F32 {
        pack_small_planes(&mut graph);
    }
    let plan = plan(&graph);
    let opts = WriteOptions { weights, source_sha256, producer: producer() };
    let bytes = write(&graph, &plan, &opts)?;
    sprig_runtime::Model::parse(&bytes).map_err(|e| anyhow::anyhow!("internal error: the written file does not validate: {e}"))?;
    Ok(Converted { graph, plan, bytes })
}

/// Imports an ONNX file and compiles it.
pub fn convert_file(onnx: &Path, opts: &ConvertOptions) -> Result<Converted> {
    let bytes = std::fs::read(onnx).with_context(|| format!("reading {}", onnx.display()))?;
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    let mut graph = import_onnx_file_bytes(&bytes, onnx, &opts.import).with_context(|| format!("importing {}", onnx.display()))?;
    if opts.strip_names {
        strip_names(&mut graph);
    }
    compile(graph, opts.weights, sha)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder renamed into place,
/// so a failure never leaves a partial output behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.flush()?;
    // NamedTempFile is created 0600; give the result ordinary file permissions.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
