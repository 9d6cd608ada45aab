//! Dead-node elimination: drops nodes none of whose outputs reaches a graph output.

use crate::ir::Graph;

/// Removes nodes whose outputs reach no graph output.
pub fn eliminate_dead_nodes(g: &mut Graph) {
    let mut live = vec![false; g.tensors.len()];
    for &t in &g.outputs {
        live[t] = true;
    }
    let mut keep = vec![false; g.nodes.len()];
    for (i, n) in g.nodes.iter().enumerate().rev() {
        if n.outputs.iter().any(|&t| live[t]) {
            keep[i] = true;
            for &t in &n.inputs {
                live[t] = true;
            }
        }
    }
    let mut it = keep.into_iter();
    g.nodes.retain(|_| it.next().unwrap_or(true));
}
