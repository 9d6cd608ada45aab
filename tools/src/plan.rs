//! Static memory planning: tensor lifetimes, in-place Reshape aliasing, a greedy-by-size offset
//! assignment, and the lower bound (largest sum of simultaneously live buffers) it is judged by.

use crate::ir::{Graph, TensorId};
use sprig_runtime::{format::ALIGN, Op};

/// Where every arena tensor lives and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Arena byte offset per tensor (`None` for constants).
    pub offsets: Vec<Option<usize>>,
    /// First operator index during which each tensor's buffer is live.
    pub first: Vec<usize>,
    /// Last operator index during which each tensor's buffer is live.
    pub last: Vec<usize>,
    /// The tensor whose buffer each tensor shares (in-place Reshape), if any.
    pub alias: Vec<Option<TensorId>>,
    /// Arena bytes needed.
    pub arena_len: usize,
    /// Largest sum of aligned sizes of buffers live at the same operator.
    pub lower_bound: usize,
}

fn aligned(bytes: usize) -> usize {
    bytes.div_ceil(ALIGN) * ALIGN
}

#[derive(Clone, Copy, Debug)]
enum Strategy {
    /// Largest buffers first, each at the lowest free offset.
    LargestFirst,
    /// Largest buffers first, each in the tightest gap that fits (lowest offset on ties).
    LargestBestFit,
    /// Buffers in order of first use, each at the lowest free offset.
    EarliestFirst,
    /// Longest-lived buffers first, each at the lowest free offset.
    LongestFirst,
}

impl Strategy {
    const ALL: [Strategy; 4] = [Strategy::LargestFirst, Strategy::LargestBestFit, Strategy::EarliestFirst, Strategy::LongestFirst];
}

/// Places every root buffer with one strategy; returns offsets (indexed by tensor) and arena length.
fn place(
    roots: &[TensorId],
    first: &[usize],
    last: &[usize],
    size: &dyn Fn(TensorId) -> usize,
    strategy: Strategy,
) -> (Vec<Option<usize>>, usize) {
    let mut order = roots.to_vec();
    match strategy {
        Strategy::LargestFirst | Strategy::LargestBestFit => {
            order.sort_by(|&a, &b| size(b).cmp(&size(a)).then(first[a].cmp(&first[b])).then(a.cmp(&b)))
        }
        Strategy::EarliestFirst => order.sort_by(|&a, &b| first[a].cmp(&first[b]).then(size(b).cmp(&size(a))).then(a.cmp(&b))),
        Strategy::LongestFirst => {
            order.sort_by(|&a, &b| (last[b] - first[b]).cmp(&(last[a] - first[a])).then(size(b).cmp(&size(a))).then(a.cmp(&b)))
        }
    }
    let n = first.len();
    let mut offsets = vec![None; n];
    let mut placed: Vec<(usize, usize, usize, usize)> = Vec::new(); // (offset, size, first, last)
    let mut arena_len = 0usize;
    for &t in &order {
        let sz = size(t);
        let mut busy: Vec<(usize, usize)> = placed.iter().filter(|p| p.2 <= last[t] && first[t] <= p.3).map(|p| (p.0, p.0 + p.1)).collect();
        busy.sort();
        // Candidate gaps between busy ranges (the last one is unbounded).
        let mut gaps: Vec<(usize, usize)> = Vec::new();
        let mut cur = 0usize;
        for (s, e) in busy {
            if s > cur {
                gaps.push((cur, s - cur));
            }
            cur = cur.max(e);
        }
        gaps.push((cur, usize::MAX));
        let fits = gaps.iter().filter(|g| g.1 >= sz);
        let off = match strategy {
            Strategy::LargestBestFit => fits.min_by_key(|g| (g.1, g.0)).map(|g| g.0),
            _ => fits.map(|g| g.0).next(),
        }
        .unwrap_or(cur);
        placed.push((off, sz, first[t], last[t]));
        offsets[t] = Some(off);
        arena_len = arena_len.max(off + sz);
    }
    (offsets, arena_len)
}

/// Plans the arena for `g` (nodes must be in execution order).
pub fn plan(g: &Graph) -> Plan {
    let nt = g.tensors.len();
    let n_ops = g.nodes.len().max(1);
    let mut first = vec![usize::MAX; nt];
    let mut last = vec![0usize; nt];
    for &t in &g.inputs {
        first[t] = 0;
    }
    for (i, n) in g.nodes.iter().enumerate() {
        for &t in &n.outputs {
            first[t] = first[t].min(i);
            last[t] = last[t].max(i);
        }
        for &t in &n.inputs {
            last[t] = last[t].max(i);
        }
    }
    for &t in &g.outputs {
        last[t] = n_ops - 1;
    }
    for t in 0..nt {
        if first[t] == usize::MAX {
            first[t] = 0;
        }
        last[t] = last[t].max(first[t]);
    }

    // Union Reshape outputs with their input's buffer.
    let mut alias: Vec<Option<TensorId>> = vec![None; nt];
    for n in &g.nodes {
        if let Op::Reshape { .. } = n.op {
            let (x, y) = (n.inputs[0], n.outputs[0]);
            if !g.is_const(x) {
                let root = alias[x].unwrap_or(x);
                alias[y] = Some(root);
            }
        }
    }
    // A group's lifetime is the union of its members'.
    let mut g_first = first.clone();
    let mut g_last = last.clone();
    for t in 0..nt {
        if let Some(r) = alias[t] {
            g_first[r] = g_first[r].min(first[t]);
            g_last[r] = g_last[r].max(last[t]);
        }
    }
    let size = |t: TensorId| aligned(g.tensors[t].numel() * 4);
    let roots: Vec<TensorId> = (0..nt).filter(|&t| !g.is_const(t) && alias[t].is_none()).collect();

    let mut offsets: Vec<Option<usize>> = vec![None; nt];
    let mut arena_len = usize::MAX;
    for strategy in Strategy::ALL {
        let (offs, len) = place(&roots, &g_first, &g_last, &size, strategy);
        if len < arena_len {
            arena_len = len;
            offsets = offs;
        }
    }
    if roots.is_empty() {
        arena_len = 0;
    }
    for t in 0..nt {
        if let Some(r) = alias[t] {
            offsets[t] = offsets[r];
        }
    }
    // The runtime validates each tensor's own lifetime; widen aliased members to their group's
    // so the recorded lifetimes are exactly what the offsets were planned against.
    for t in 0..nt {
        if let Some(r) = alias[t] {
            first[t] = first[t].max(g_first[r]);
            last[t] = last[t].min(g_last[r]);
        }
    }
    let mut lower_bound = 0;
    for i in 0..n_ops {
        let live: usize = roots.iter().filter(|&&r| g_first[r] <= i && i <= g_last[r]).map(|&r| size(r)).sum();
        lower_bound = lower_bound.max(live);
    }
    Plan { offsets, first, last, alias, arena_len, lower_bound }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Node;
    use sprig_runtime::{Shape, UnaryKind};

    fn chain(sizes: &[usize]) -> Graph {
        let mut g = Graph::default();
        let mut prev = g.add_tensor("x", vec![sizes[0]], None);
        g.inputs.push(prev);
        for (i, &s) in sizes.iter().enumerate().skip(1) {
            let y = g.add_tensor(format!("t{i}"), vec![s], None);
            let op = if s == sizes[i - 1] { Op::Unary(UnaryKind::Relu) } else { Op::Reshape { shape: Shape::new(&[s]).unwrap() } };
            g.nodes.push(Node { name: format!("n{i}"), onnx_op: "Relu".into(), op, inputs: vec![prev], outputs: vec![y] });
            prev = y;
        }
        g.outputs.push(prev);
        g
    }

    #[test]
    fn chain_ping_pongs_two_buffers() {
        let g = chain(&[64, 64, 64, 64, 64]);
        let p = plan(&g);
        assert_eq!(p.arena_len, 2 * 256);
        assert_eq!(p.lower_bound, 2 * 256);
        for w in g.nodes.windows(1) {
            let (a, b) = (w[0].inputs[0], w[0].outputs[0]);
            assert_ne!(p.offsets[a], p.offsets[b]);
        }
    }

    #[test]
    fn live_buffers_never_overlap() {
        let g = chain(&[10, 10, 100, 7, 7, 33, 33, 33]);
        let p = plan(&g);
        let nt = g.tensors.len();
        for a in 0..nt {
            for b in a + 1..nt {
                let ra = p.alias[a].unwrap_or(a);
                let rb = p.alias[b].unwrap_or(b);
                if ra == rb {
                    continue;
                }
                let live = p.first[a] <= p.last[b] && p.first[b] <= p.last[a];
                let (oa, ob) = (p.offsets[a].unwrap(), p.offsets[b].unwrap());
                let (sa, sb) = (aligned(g.tensors[a].numel() * 4), aligned(g.tensors[b].numel() * 4));
                assert!(!(live && oa < ob + sb && ob < oa + sa), "{a} and {b} overlap");
            }
        }
        assert!(p.arena_len >= p.lower_bound);
    }
}
