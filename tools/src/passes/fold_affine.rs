//! Folds a per-channel affine map into the Conv / Dense before it: a ChannelAffine (unfused
//! BatchNormalization, channel axis 1) or a Binary Mul by a constant that varies only along the
//! output-channel axis. `w[m, ..] *= scale[m]`, `bias[m] = bias[m] * scale[m] + shift[m]`.

use sprig_runtime::{BinaryKind, Op};

use super::{absorb, affine_producer, channel_values, fresh_name, producer, single_internal_use};
use crate::ir::Graph;

/// Folds every eligible ChannelAffine / channel Mul.
pub fn fold_channel_affine(g: &mut Graph) {
    while let Some((p, a, scale, shift)) = find(g) {
        let pn = g.nodes[p].clone();
        let w = &g.tensors[pn.inputs[1]];
        let m = w.shape[0];
        let per = w.numel() / m.max(1);
        let mut wd = w.data.clone().unwrap_or_default();
        for (i, v) in wd.iter_mut().enumerate() {
            *v *= scale[i / per];
        }
        let bias: Vec<f32> = match pn.inputs.get(2) {
            Some(&b) => g.tensors[b].data.clone().unwrap_or_default(),
            None => vec![0.0; m],
        };
        let nb: Vec<f32> = (0..m).map(|i| bias[i] * scale[i] + shift[i]).collect();
        let wname = fresh_name(g, &format!("{}/weight_scaled", pn.name));
        let wshape = w.shape.clone();
        let wt = g.add_tensor(wname, wshape, Some(wd));
        let bname = fresh_name(g, &format!("{}/bias_scaled", pn.name));
        let bt = g.add_tensor(bname, vec![m], Some(nb));
        g.nodes[p].inputs = vec![pn.inputs[0], wt, bt];
        absorb(g, p, a);
    }
}

type Hit = (usize, usize, Vec<f32>, Vec<f32>);

fn find(g: &Graph) -> Option<Hit> {
    for (a, an) in g.nodes.iter().enumerate() {
        let slots: &[usize] = match an.op {
            Op::ChannelAffine => &[0],
            Op::Binary(BinaryKind::Mul) => &[0, 1],
            _ => continue,
        };
        for &slot in slots {
            let x = an.inputs[slot];
            let Some(p) = producer(g, x) else { continue };
            let Some(ch) = affine_producer(g, p) else { continue };
            if !single_internal_use(g, x) {
                continue;
            }
            let m = g.tensors[g.nodes[p].inputs[1]].shape[0];
            let found = if an.op == Op::ChannelAffine {
                let (s, t) = (an.inputs[1], an.inputs[2]);
                if ch != 1 || !g.is_const(s) || !g.is_const(t) || g.tensors[s].numel() != m || g.tensors[t].numel() != m {
                    continue;
                }
                (g.tensors[s].data.clone()?, g.tensors[t].data.clone()?)
            } else {
                let c = an.inputs[1 - slot];
                if !g.is_const(c) || g.is_const(x) || g.tensors[an.outputs[0]].shape != g.tensors[x].shape {
                    continue;
                }
                let Some(s) = channel_values(g, x, c, ch, m) else { continue };
                (s, vec![0.0; m])
            };
            return Some((p, a, found.0, found.1));
        }
    }
    None
}
