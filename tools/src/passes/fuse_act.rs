//! Fuses a Relu / Clip that follows a Conv / Dense into the operator's `act`, and a Relu that
//! follows an Add into one `Add+Relu` (residual blocks).

use sprig_runtime::{Activation, BinaryKind, Op, UnaryKind};

use super::{absorb, producer, single_internal_use};
use crate::ir::Graph;

/// Fuses every eligible activation.
pub fn fuse_activations(g: &mut Graph) {
    loop {
        let mut hit = None;
        for (a, an) in g.nodes.iter().enumerate() {
            let act = match an.op {
                Op::Unary(UnaryKind::Relu) => Activation::Relu,
                Op::Unary(UnaryKind::Clip { min, max }) => Activation::Clip { min, max },
                _ => continue,
            };
            let x = an.inputs[0];
            let Some(p) = producer(g, x) else { continue };
            let free = match g.nodes[p].op {
                Op::Conv(c) => c.act == Activation::None,
                Op::Dense { act } => act == Activation::None,
                Op::Binary(BinaryKind::Add) => act == Activation::Relu,
                _ => false,
            };
            if free && single_internal_use(g, x) {
                hit = Some((p, a, act));
                break;
            }
        }
        let Some((p, a, act)) = hit else { break };
        match &mut g.nodes[p].op {
            Op::Conv(c) => c.act = act,
            Op::Dense { act: slot } => *slot = act,
            Op::Binary(k) => *k = BinaryKind::AddRelu,
            _ => unreachable!(),
        }
        absorb(g, p, a);
    }
}
