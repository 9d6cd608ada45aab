//! Graph optimization passes over the IR, run in a fixed order by [`optimize`]. Every pass keeps
//! the graph outputs' names and shapes.

mod dce;
mod fold_affine;
mod fold_bias;
mod fuse_act;
mod reshape;

use crate::ir::{Graph, TensorId};

pub use dce::eliminate_dead_nodes;
pub use fold_affine::fold_channel_affine;
pub use fold_bias::fold_bias_add;
pub use fuse_act::fuse_activations;
pub use reshape::simplify_reshapes;

/// A pass broke an invariant (a bug in the pass).
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// Graph outputs changed name or shape.
    #[error("pass `{pass}` changed graph output {index}: {detail}")]
    OutputChanged {
        /// Pass name.
        pass: &'static str,
        /// Output index.
        index: usize,
        /// Before / after.
        detail: String,
    },
}

/// Runs every pass in order: dead-node elimination, BatchNorm (ChannelAffine) folding, bias
/// folding, activation fusion, Reshape simplification, then [`Graph::compact`].
pub fn optimize(g: &mut Graph) -> Result<(), PassError> {
    let sig = |g: &Graph| -> Vec<(String, Vec<usize>)> {
        g.outputs.iter().map(|&t| (g.tensors[t].name.clone(), g.tensors[t].shape.clone())).collect()
    };
    let before = sig(g);
    type Pass = (&'static str, fn(&mut Graph));
    let passes: [Pass; 6] = [
        ("dead-node elimination", eliminate_dead_nodes),
        ("fold ChannelAffine", fold_channel_affine),
        ("fold bias", fold_bias_add),
        ("fuse activations", fuse_activations),
        ("simplify reshapes", simplify_reshapes),
        ("compact", Graph::compact),
    ];
    for (name, pass) in passes {
        pass(g);
        let after = sig(g);
        for (i, (a, b)) in before.iter().zip(&after).enumerate() {
            if a != b {
                return Err(PassError::OutputChanged { pass: name, index: i, detail: format!("{a:?} became {b:?}") });
            }
        }
        if after.len() != before.len() {
            return Err(PassError::OutputChanged { pass: name, index: after.len(), detail: "output count changed".into() });
        }
    }
    Ok(())
}

/// The node producing `t`, if any.
pub(crate) fn producer(g: &Graph, t: TensorId) -> Option<usize> {
    g.nodes.iter().position(|n| n.outputs.contains(&t))
}

/// True when `t` is read by exactly one node and is not a graph output.
pub(crate) fn single_internal_use(g: &Graph, t: TensorId) -> bool {
    !g.outputs.contains(&t)
        && g.consumers(t).len() == 1
        && g.nodes.iter().filter(|n| n.inputs.contains(&t)).all(|n| n.inputs.iter().filter(|&&i| i == t).count() == 1)
}

/// Node `p` takes over the outputs of node `a` (which read p's output), and `a` is removed.
pub(crate) fn absorb(g: &mut Graph, p: usize, a: usize) {
    let an = g.nodes.remove(a);
    let p = if a < p { p - 1 } else { p };
    g.nodes[p].outputs = an.outputs;
    g.nodes[p].onnx_op = format!("{}+{}", g.nodes[p].onnx_op, an.onnx_op);
}

/// Per-output-channel values of constant `c` combined element-wise with the output `x` of a
/// Conv (channel axis 1) or Dense (last axis) with `m` channels: `Some` when `c` is constant
/// along every other axis and does not change the shape of `x`.
pub(crate) fn channel_values(g: &Graph, x: TensorId, c: TensorId, ch: usize, m: usize) -> Option<Vec<f32>> {
    let out = &g.tensors[x].shape;
    let cs = &g.tensors[c].shape;
    if cs.len() > out.len() {
        return None;
    }
    let off = out.len() - cs.len();
    if !cs.iter().enumerate().all(|(j, &d)| d == 1 || (j + off == ch && d == m)) {
        return None;
    }
    let v = g.tensors[c].data.as_ref()?;
    Some(if v.len() == 1 { vec![v[0]; m] } else { v.clone() })
}

/// The channel axis of a Conv / Dense output, when the node has no fused activation and
/// constant weights (and bias).
pub(crate) fn affine_producer(g: &Graph, p: usize) -> Option<usize> {
    let pn = &g.nodes[p];
    let x = pn.outputs[0];
    let ch = match pn.op {
        sprig_runtime::Op::Conv(c) if c.act == sprig_runtime::Activation::None => 1,
        sprig_runtime::Op::Dense { act: sprig_runtime::Activation::None } => g.tensors[x].shape.len() - 1,
        _ => return None,
    };
    if !g.is_const(pn.inputs[1]) || pn.inputs.get(2).is_some_and(|&b| !g.is_const(b)) {
        return None;
    }
    Some(ch)
}

/// A tensor name not used yet, derived from `base`.
pub(crate) fn fresh_name(g: &Graph, base: &str) -> String {
    let mut name = base.to_string();
    let mut k = 1;
    while g.tensors.iter().any(|t| t.name == name) {
        name = format!("{base}_{k}");
        k += 1;
    }
    name
}

#[cfg(test)]
mod tests;
