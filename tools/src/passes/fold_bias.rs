//! Folds `Conv/Dense → Add/Sub constant` into the bias when the constant varies only along the
//! output-channel axis (axis 1 for Conv, the last axis for Dense).

use sprig_runtime::{BinaryKind, Op};

use super::{absorb, affine_producer, channel_values, fresh_name, producer, single_internal_use};
use crate::ir::Graph;

/// Folds every eligible bias Add / Sub.
pub fn fold_bias_add(g: &mut Graph) {
    while let Some((p, a, cv)) = find(g) {
        let pn = g.nodes[p].clone();
        let m = cv.len();
        let bias: Vec<f32> = match pn.inputs.get(2) {
            Some(&b) => g.tensors[b].data.clone().unwrap_or_default(),
            None => vec![0.0; m],
        };
        let nb: Vec<f32> = (0..m).map(|i| bias[i] + cv[i]).collect();
        let name = fresh_name(g, &format!("{}/bias", pn.name));
        let bt = g.add_tensor(name, vec![m], Some(nb));
        g.nodes[p].inputs = vec![pn.inputs[0], pn.inputs[1], bt];
        absorb(g, p, a);
    }
}

fn find(g: &Graph) -> Option<(usize, usize, Vec<f32>)> {
    for (a, an) in g.nodes.iter().enumerate() {
        let sub = match an.op {
            Op::Binary(BinaryKind::Add) => false,
            Op::Binary(BinaryKind::Sub) => true,
            _ => continue,
        };
        for (slot, &x) in an.inputs.iter().enumerate() {
            let c = an.inputs[1 - slot];
            if (sub && slot != 0) || !g.is_const(c) || g.is_const(x) {
                continue;
            }
            let Some(p) = producer(g, x) else { continue };
            let Some(ch) = affine_producer(g, p) else { continue };
            if !single_internal_use(g, x) || g.tensors[an.outputs[0]].shape != g.tensors[x].shape {
                continue;
            }
            let m = g.tensors[g.nodes[p].inputs[1]].shape[0];
            if let Some(v) = channel_values(g, x, c, ch, m) {
                let sign = if sub { -1.0 } else { 1.0 };
                return Some((p, a, v.into_iter().map(|x| sign * x).collect()));
            }
        }
    }
    None
}
