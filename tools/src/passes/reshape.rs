//! Reshape simplification: chains collapse into one Reshape; Reshapes that keep the shape vanish.

use sprig_runtime::Op;

use super::{eliminate_dead_nodes, producer};
use crate::ir::Graph;

/// Turns order-preserving Transposes (moving only size-1 axes) into Reshapes, collapses
/// Reshape chains and removes identity Reshapes.
pub fn simplify_reshapes(g: &mut Graph) {
    for i in 0..g.nodes.len() {
        let Op::Transpose { perm } = g.nodes[i].op else { continue };
        let xs = &g.tensors[g.nodes[i].inputs[0]].shape;
        let moved: Vec<u8> = perm[..xs.len()].iter().copied().filter(|&p| xs[p as usize] != 1).collect();
        if moved.windows(2).all(|w| w[0] < w[1]) {
            let ys = &g.tensors[g.nodes[i].outputs[0]].shape;
            if let Some(shape) = sprig_runtime::Shape::new(ys) {
                g.nodes[i].op = Op::Reshape { shape };
            }
        }
    }
    // Chains: a Reshape reading a Reshape reads the first one's input instead.
    for i in 0..g.nodes.len() {
        if !matches!(g.nodes[i].op, Op::Reshape { .. }) {
            continue;
        }
        while let Some(p) = producer(g, g.nodes[i].inputs[0]) {
            if matches!(g.nodes[p].op, Op::Reshape { .. }) {
                g.nodes[i].inputs[0] = g.nodes[p].inputs[0];
            } else {
                break;
            }
        }
    }
    eliminate_dead_nodes(g);
    // Identity reshapes.
    let mut i = 0;
    while i < g.nodes.len() {
        let n = &g.nodes[i];
        let (x, y) = (n.inputs[0], n.outputs[0]);
        if !matches!(n.op, Op::Reshape { .. }) || g.tensors[x].shape != g.tensors[y].shape {
            i += 1;
            continue;
        }
        if g.outputs.contains(&y) {
            let x_fixed = g.inputs.contains(&x) || g.outputs.contains(&x) || g.is_const(x);
            let Some(p) = producer(g, x).filter(|_| !x_fixed) else {
                i += 1;
                continue;
            };
            // The producer writes y directly; other readers of x read y.
            for o in g.nodes[p].outputs.iter_mut() {
                if *o == x {
                    *o = y;
                }
            }
            for n in g.nodes.iter_mut() {
                for t in n.inputs.iter_mut() {
                    if *t == x {
                        *t = y;
                    }
                }
            }
        } else {
            for n in g.nodes.iter_mut() {
                for t in n.inputs.iter_mut() {
                    if *t == y {
                        *t = x;
                    }
                }
            }
        }
        g.nodes.remove(i);
    }
}
