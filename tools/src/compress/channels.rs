//! Channel spaces for structured pruning: which activation channels can be removed physically,
//! and the surgery that removes them.
//!
//! A *space* is a set of activation tensors sharing one channel axis, such that channel `c` of
//! every tensor in it is computed only from channel `c` of the others. Channels are created by
//! *producers* (Conv with `group == 1`, Dense: one weight row per channel), carried unchanged
//! through *passthrough* nodes (element-wise ops, pools, Pad, Resize, depthwise Conv,
//! ChannelAffine, channel-preserving Reshapes, residual Adds), and eaten by *consumers* (Conv with
//! `group == 1`, Dense, possibly behind a flattening Reshape: one block of weight columns per
//! channel). Removing channel `c` deletes producer row `c`, the channel-`c` entries of every
//! per-channel constant on the way, and the consumers' columns of `c`; nothing outside the
//! space changes shape.

use anyhow::{anyhow, bail, Result};
use sprig_runtime::{Op, Shape, MAX_RANK};

use crate::ir::{Graph, Node, TensorId};

/// How a consumer's weight columns are laid out per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumerKind {
    /// Conv with `group == 1`: weight `[M, C, k..]`, channel `c` owns `w[:, c, ..]`.
    Conv,
    /// Dense: weight `[N, K]`, channel `c` owns columns `c * per_channel .. (c + 1) * per_channel`.
    Dense,
}

/// A node eating the channels of a space through its weight columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    /// Node index.
    pub node: usize,
    /// Columns of the consumer weight owned by channel `c`: `c * per_channel .. (c + 1) * per_channel`
    /// of the flattened input dimension (1 for Conv and for a Dense reading the channels directly).
    pub per_channel: usize,
    /// Weight layout.
    pub kind: ConsumerKind,
    /// The Reshape that flattens `[.., C, rest..]` into the Dense input `[.., C * rest]`, whose
    /// target shape shrinks with the space.
    pub flatten: Option<usize>,
}

/// Tensors whose channels must be removed together.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelSpace {
    /// Number of channels (the size of every tensor of the space on its channel axis).
    pub channels: usize,
    /// Conv (`group == 1`) / Dense nodes creating the channels, one weight row each; several after
    /// residual merges.
    pub producers: Vec<usize>,
    /// Nodes carrying the channels unchanged from an input of the space to an output of the space;
    /// those with per-channel constants (depthwise Conv, ChannelAffine, Binary with a per-channel
    /// constant) or channel-count attributes (Reshape, depthwise `group`) shrink with the space.
    pub passthrough: Vec<usize>,
    /// Nodes eating the channels, sorted by node.
    pub consumers: Vec<Consumer>,
    /// Activation tensors carrying the channels.
    pub tensors: Vec<TensorId>,
    /// Channel axis of each tensor of `tensors`.
    pub axes: Vec<usize>,
    /// `Err(reason)` when the channels cannot be removed physically; the reason names the nodes.
    pub prunable: Result<(), String>,
}

/// The channel spaces of `g` that contain at least one producer, ordered by first producer.
///
/// A space is not prunable when any of its tensors is a graph output, is read by a node other
/// than a passthrough or a consumer (Softmax, Transpose, Concat, Reduce, Slice, LayerNorm, MatMul,
/// a Reshape that mixes channels…), is read along another axis, or is combined with an operand
/// that does not carry the same channels (a graph input, a tensor of another layout…). A graph
/// with out-of-range tensor ids or nodes out of execution order has no spaces.
pub fn channel_spaces(g: &Graph) -> Vec<ChannelSpace> {
    if !well_formed(g) {
        return Vec::new();
    }
    let nt = g.tensors.len();
    let mut a = Analysis { g, parent: (0..nt).collect(), axis: vec![None; nt], acc: (0..nt).map(|_| Acc::default()).collect() };
    for i in 0..g.nodes.len() {
        a.visit(i);
    }
    for &t in &g.outputs {
        a.bad(t, format!("`{}` is a graph output", g.tensors[t].name));
    }
    let mut spaces = Vec::new();
    for t in 0..nt {
        if a.axis[t].is_none() || a.find(t) != t || a.acc[t].producers.is_empty() {
            continue;
        }
        let acc = std::mem::take(&mut a.acc[t]);
        spaces.push(acc.finish(g));
    }
    spaces.sort_by_key(|s| s.producers.first().copied());
    spaces
}

/// MACs and weight parameters that disappear with each removed channel of `s`: the producer
/// rows (and biases), the per-channel constants and depthwise filters of passthrough nodes, and
/// the consumer columns, counted from the current tensor shapes. MACs count Conv / Dense
/// multiply-accumulates and ChannelAffine multiply-adds. Entries that do not match the graph
/// count zero.
pub fn channel_cost(g: &Graph, s: &ChannelSpace) -> (u64, u64) {
    if !well_formed(g) {
        return (0, 0);
    }
    let c = s.channels.max(1) as u64;
    let numel = |t: Option<&TensorId>| t.and_then(|&t| g.tensors.get(t)).map_or(0, |t| t.numel() as u64);
    let rows = |t: Option<&TensorId>| t.and_then(|&t| g.tensors.get(t)).and_then(|t| t.shape.first().copied()).unwrap_or(0) as u64;
    let (mut macs, mut params) = (0u64, 0u64);
    let mut add = |m: u64, p: u64| {
        macs = macs.saturating_add(m);
        params = params.saturating_add(p);
    };
    for n in s.producers.iter().filter_map(|&p| g.nodes.get(p)) {
        let (w, m) = (numel(n.inputs.get(1)), rows(n.inputs.get(1)).max(1));
        let per = w / m;
        let bias = u64::from(n.inputs.len() > 2);
        add(per.saturating_mul(numel(n.outputs.first()) / m), per + bias);
    }
    for n in s.passthrough.iter().filter_map(|&p| g.nodes.get(p)) {
        let y = numel(n.outputs.first());
        match n.op {
            Op::Conv(_) => {
                let per = numel(n.inputs.get(1)) / c;
                add(per.saturating_mul(y / c), per + numel(n.inputs.get(2)) / c);
            }
            Op::ChannelAffine => add(y / c, (numel(n.inputs.get(1)) + numel(n.inputs.get(2))) / c),
            Op::Binary(_) => {
                let per_channel: u64 =
                    n.inputs.iter().filter(|&&t| g.is_const(t) && carries_channels(g, s, n, t)).map(|t| numel(Some(t)) / c).sum();
                add(0, per_channel);
            }
            _ => {}
        }
    }
    for con in &s.consumers {
        let Some(n) = g.nodes.get(con.node) else { continue };
        let y = numel(n.outputs.first());
        match con.kind {
            ConsumerKind::Conv => {
                let per = numel(n.inputs.get(1)) / c;
                add(per.saturating_mul(y / rows(n.inputs.get(1)).max(1)), per);
            }
            ConsumerKind::Dense => {
                let per = rows(n.inputs.get(1)).saturating_mul(con.per_channel as u64);
                add((con.per_channel as u64).saturating_mul(y), per);
            }
        }
    }
    (macs, params)
}

/// Whether constant operand `t` of Binary node `n` in space `s` varies along the channel axis.
fn carries_channels(g: &Graph, s: &ChannelSpace, n: &Node, t: TensorId) -> bool {
    let Some(y) = n.outputs.first() else { return false };
    let Some(&ax) = s.tensors.iter().position(|u| u == y).and_then(|i| s.axes.get(i)) else { return false };
    const_channel_axis(&g.tensors[*y].shape, ax, &g.tensors[t].shape, s.channels).is_some()
}

/// The axis of constant shape `cs` aligned (numpy broadcasting) with channel axis `ax` of
/// `ys`, when the constant has `c` entries there.
fn const_channel_axis(ys: &[usize], ax: usize, cs: &[usize], c: usize) -> Option<usize> {
    let off = ys.len().checked_sub(cs.len())?;
    let j = ax.checked_sub(off)?;
    (cs.get(j) == Some(&c) && c > 1).then_some(j)
}

/// Removes channels `remove` (unique, each `< s.channels`, not all of them) of space `s` from
/// `g`: producer weight rows and bias entries, passthrough per-channel constants and depthwise
/// filters (whose `group` follows), consumer weight columns, flattening / channel-preserving
/// Reshape targets and the shapes of the space's tensors. Constants shared with other operands
/// are copied rather than changed in place (the originals may become unused; see
/// [`Graph::compact`]).
///
/// On success every node's output shape equals [`Graph::infer`] of its operands; on error `g` is
/// left unchanged. Removing no channel is a no-op. The function of the graph changes unless the
/// removed channels are zero wherever the consumers read them.
pub fn remove_channels(g: &mut Graph, s: &ChannelSpace, remove: &[usize]) -> Result<()> {
    if let Err(why) = &s.prunable {
        bail!("the space is not prunable: {why}");
    }
    let c = s.channels;
    let mut sorted = remove.to_vec();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        bail!("channel {} is listed twice", w[0]);
    }
    if let Some(&r) = sorted.last().filter(|&&r| r >= c) {
        bail!("channel {r} is out of range: the space has {c} channels");
    }
    if remove.is_empty() {
        return Ok(());
    }
    if remove.len() == c {
        bail!("cannot remove all {c} channels of a space");
    }
    if !well_formed(g) {
        bail!("the graph has out-of-range tensor ids or nodes out of execution order");
    }
    check_matches(g, s)?;
    let keep: Vec<usize> = (0..c).filter(|i| sorted.binary_search(i).is_err()).collect();
    let mut h = g.clone();
    Surgery { g: &mut h, c, keep }.run(s)?;
    verify(&h)?;
    *g = h;
    Ok(())
}

// ---------------------------------------------------------------- analysis

/// What is known about one union-find root.
#[derive(Default)]
struct Acc {
    producers: Vec<usize>,
    passthrough: Vec<usize>,
    consumers: Vec<Consumer>,
    tensors: Vec<(TensorId, usize)>,
    reasons: Vec<String>,
}

impl Acc {
    fn absorb(&mut self, o: Acc) {
        self.producers.extend(o.producers);
        self.passthrough.extend(o.passthrough);
        self.consumers.extend(o.consumers);
        self.tensors.extend(o.tensors);
        self.reasons.extend(o.reasons);
    }

    fn finish(mut self, g: &Graph) -> ChannelSpace {
        self.producers.sort_unstable();
        self.producers.dedup();
        self.passthrough.sort_unstable();
        self.passthrough.dedup();
        self.consumers.sort_by_key(|c| (c.node, c.flatten));
        self.consumers.dedup();
        self.tensors.sort_unstable();
        let mut reasons: Vec<String> = Vec::new();
        for r in self.reasons {
            if !reasons.contains(&r) {
                reasons.push(r);
            }
        }
        const SHOWN: usize = 4;
        let prunable = if reasons.is_empty() {
            Ok(())
        } else {
            let more = reasons.len().saturating_sub(SHOWN);
            let mut why = reasons.into_iter().take(SHOWN).collect::<Vec<_>>().join("; ");
            if more > 0 {
                why.push_str(&format!(" (and {more} more)"));
            }
            Err(why)
        };
        let channels = self.tensors.first().map_or(0, |&(t, ax)| g.tensors[t].shape[ax]);
        ChannelSpace {
            channels,
            producers: self.producers,
            passthrough: self.passthrough,
            consumers: self.consumers,
            tensors: self.tensors.iter().map(|&(t, _)| t).collect(),
            axes: self.tensors.iter().map(|&(_, a)| a).collect(),
            prunable,
        }
    }
}

/// Union-find over tensor ids; `axis[t]` is `Some` for tensors of a space.
struct Analysis<'g> {
    g: &'g Graph,
    parent: Vec<usize>,
    axis: Vec<Option<usize>>,
    acc: Vec<Acc>,
}

/// How a node refers to itself in reasons.
fn who(n: &Node) -> String {
    format!("node `{}` ({})", n.name, n.op.name())
}

fn prod(d: &[usize]) -> Option<usize> {
    d.iter().try_fold(1usize, |a, &x| a.checked_mul(x))
}

/// Every id in range, and every node reads only graph inputs, constants and earlier outputs.
fn well_formed(g: &Graph) -> bool {
    let nt = g.tensors.len();
    let mut ready: Vec<bool> = g.tensors.iter().map(|t| t.data.is_some()).collect();
    for &t in g.inputs.iter().chain(&g.outputs) {
        if t >= nt {
            return false;
        }
    }
    for &t in &g.inputs {
        ready[t] = true;
    }
    for n in &g.nodes {
        if n.inputs.iter().chain(&n.outputs).any(|&t| t >= nt) || n.inputs.iter().any(|&t| !ready[t]) {
            return false;
        }
        for &t in &n.outputs {
            ready[t] = true;
        }
    }
    true
}

/// `t` is a constant whose data matches its shape.
fn const_ok(g: &Graph, t: TensorId) -> bool {
    g.tensors[t].data.as_ref().is_some_and(|d| d.len() == g.tensors[t].numel())
}

impl Analysis<'_> {
    fn find(&mut self, mut t: usize) -> usize {
        while self.parent[t] != t {
            self.parent[t] = self.parent[self.parent[t]];
            t = self.parent[t];
        }
        t
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[rb] = ra;
            let moved = std::mem::take(&mut self.acc[rb]);
            self.acc[ra].absorb(moved);
        }
    }

    fn root_acc(&mut self, t: TensorId) -> &mut Acc {
        let r = self.find(t);
        &mut self.acc[r]
    }

    /// `t` joins the tensors of spaces with channel axis `axis`, in a space of its own.
    fn start(&mut self, t: TensorId, axis: usize) {
        self.axis[t] = Some(axis);
        self.acc[t].tensors.push((t, axis));
    }

    /// Marks the space of `t` (if any) not prunable.
    fn bad(&mut self, t: TensorId, reason: String) {
        if self.axis[t].is_some() {
            self.root_acc(t).reasons.push(reason);
        }
    }

    /// Node `i` reads its operands in a way the analysis does not model.
    fn unknown(&mut self, i: usize) {
        let n = &self.g.nodes[i];
        let reason = format!("read by {}", who(n));
        for &t in &n.inputs {
            self.bad(t, reason.clone());
        }
    }

    /// Node `i` creates a space at `y` with channel axis `axis`.
    fn produce(&mut self, i: usize, y: TensorId, axis: usize) {
        if axis < self.g.tensors[y].shape.len() {
            self.start(y, axis);
            self.acc[y].producers.push(i);
        }
    }

    /// Node `i` eats the channels of `x`, which must lie on axis `want`.
    fn consume(&mut self, x: TensorId, want: usize, con: Consumer) {
        let Some(ax) = self.axis[x] else { return };
        if ax == want {
            self.root_acc(x).consumers.push(con);
        } else {
            let why = format!("read along another axis by {}", who(&self.g.nodes[con.node]));
            self.bad(x, why);
        }
    }

    /// Node `i` carries the channels of `x` to `y`; `rule` gives `y`'s channel axis from `x`'s,
    /// or why the channels do not pass unchanged.
    fn pass(&mut self, i: usize, x: TensorId, y: TensorId, rule: impl FnOnce(usize) -> Result<usize, &'static str>) {
        let Some(ax) = self.axis[x] else { return };
        match rule(ax) {
            Ok(ay) if ay < self.g.tensors[y].shape.len() => {
                self.start(y, ay);
                self.union(x, y);
                self.root_acc(x).passthrough.push(i);
            }
            Ok(_) => self.unknown(i),
            Err(why) => {
                let reason = format!("{} by {}", why, who(&self.g.nodes[i]));
                self.bad(x, reason);
            }
        }
    }

    fn visit(&mut self, i: usize) {
        let g = self.g;
        let n = &g.nodes[i];
        let &[y] = &n.outputs[..] else { return self.unknown(i) };
        let ins = &n.inputs;
        let Some(&x) = ins.first() else { return };
        let shape = |t: TensorId| &g.tensors[t].shape;
        // Weights, biases and per-channel parameters must be constants matching their shapes.
        let params_const = ins[1..].iter().all(|&t| const_ok(g, t));
        let (xs, ys) = (shape(x), shape(y));
        match n.op {
            Op::Conv(a) if params_const && ins.len() >= 2 && xs.len() == shape(ins[1]).len() && (3..=4).contains(&xs.len()) => {
                let ws = shape(ins[1]);
                if a.group == 1 && ws[1] == xs[1] {
                    self.consume(x, 1, Consumer { node: i, per_channel: 1, kind: ConsumerKind::Conv, flatten: None });
                    self.produce(i, y, 1);
                } else if a.group as usize == xs[1] && ws[0] == xs[1] && ws[1] == 1 {
                    self.pass(i, x, y, |ax| if ax == 1 { Ok(1) } else { Err("convolved along another axis") });
                } else {
                    self.unknown(i);
                }
            }
            Op::Dense { .. } if params_const && ins.len() >= 2 && shape(ins[1]).len() == 2 && !xs.is_empty() && !ys.is_empty() => {
                self.consume(x, xs.len() - 1, Consumer { node: i, per_channel: 1, kind: ConsumerKind::Dense, flatten: None });
                self.produce(i, y, ys.len() - 1);
            }
            Op::Unary(_) => self.pass(i, x, y, Ok),
            Op::ChannelAffine if params_const => self.pass(i, x, y, |ax| if ax == 1 { Ok(1) } else { Err("scaled along another axis") }),
            Op::Binary(_) if ins.len() == 2 => {
                let (a, b) = (ins[0], ins[1]);
                match (g.is_const(a), g.is_const(b)) {
                    (true, true) => {}
                    (false, true) | (true, false) => {
                        let (x, k) = if g.is_const(b) { (a, b) } else { (b, a) };
                        if !const_ok(g, k) {
                            return self.unknown(i);
                        }
                        let (xs, ks) = (shape(x), shape(k));
                        self.pass(i, x, y, |ax| {
                            let off = ys.len().checked_sub(ks.len());
                            let kd = off.and_then(|o| ax.checked_sub(o)).and_then(|j| ks.get(j)).copied().unwrap_or(1);
                            if xs != ys {
                                Err("broadcast to another shape")
                            } else if kd != 1 && kd != xs[ax] {
                                Err("combined with a constant of another layout")
                            } else {
                                Ok(ax)
                            }
                        });
                    }
                    (false, false) => self.merge(i, a, b, y),
                }
            }
            Op::MaxPool(_) | Op::AveragePool(_) | Op::Resize(_) => {
                self.pass(
                    i,
                    x,
                    y,
                    |ax| if (3..=4).contains(&xs.len()) && ax < 2 { Ok(ax) } else { Err("resampled along its channel axis") },
                )
            }
            Op::GlobalAveragePool | Op::GlobalMaxPool => {
                self.pass(i, x, y, |ax| if xs.len() >= 3 && ax < 2 { Ok(ax) } else { Err("pooled along its channel axis") })
            }
            Op::Pad { pads, .. } => self.pass(i, x, y, |ax| {
                if ax < MAX_RANK && pads[ax] == 0 && pads[MAX_RANK + ax] == 0 {
                    Ok(ax)
                } else {
                    Err("padded along its channel axis")
                }
            }),
            Op::Reshape { .. } => self.reshape(i, x, y),
            _ => self.unknown(i),
        }
    }

    /// Binary node `i` combining two activations: their spaces merge when both carry the same
    /// channels on aligned axes.
    fn merge(&mut self, i: usize, a: TensorId, b: TensorId, y: TensorId) {
        let g = self.g;
        let (as_, bs, ys) = (&g.tensors[a].shape, &g.tensors[b].shape, &g.tensors[y].shape);
        let aligned = |t_shape: &Vec<usize>, ax: usize| (ax + ys.len()).checked_sub(t_shape.len());
        let ok = match (self.axis[a], self.axis[b]) {
            (Some(xa), Some(xb)) => {
                let (oa, ob) = (aligned(as_, xa), aligned(bs, xb));
                match (oa, ob) {
                    (Some(oa), Some(ob)) if oa == ob && as_[xa] == bs[xb] && ys.get(oa) == Some(&as_[xa]) => Some(oa),
                    _ => None,
                }
            }
            _ => None,
        };
        match ok {
            Some(ay) => {
                self.start(y, ay);
                self.union(a, y);
                self.union(b, y);
                self.root_acc(y).passthrough.push(i);
            }
            None => {
                let n = &g.nodes[i];
                let (na, nb) = (&g.tensors[a].name, &g.tensors[b].name);
                self.bad(a, format!("combined by {} with `{nb}`, which does not carry the same channels", who(n)));
                self.bad(b, format!("combined by {} with `{na}`, which does not carry the same channels", who(n)));
            }
        }
    }

    /// Reshape node `i`: channel-preserving (the channel block keeps its place in memory), or a
    /// flatten into Dense consumers, or else the end of prunability.
    fn reshape(&mut self, i: usize, x: TensorId, y: TensorId) {
        let Some(ax) = self.axis[x] else { return };
        let g = self.g;
        let (xs, ys) = (&g.tensors[x].shape, &g.tensors[y].shape);
        let c = xs[ax];
        let lead = prod(&xs[..ax]);
        if c > 1 && !xs.contains(&0) {
            // Unique: the leading product grows strictly past `lead` once it includes `c`.
            let mut p = Some(1usize);
            let mut found = None;
            for (b, &d) in ys.iter().enumerate() {
                if p == lead && d == c {
                    found = Some(b);
                    break;
                }
                p = p.and_then(|p| p.checked_mul(d));
            }
            if let Some(b) = found {
                return self.pass(i, x, y, |_| Ok(b));
            }
            let flat = ys.split_last().is_some_and(|(&k, front)| prod(front) == lead && Some(k) == prod(&xs[ax..]));
            let readers = g.consumers(y);
            let into_dense = readers.iter().all(|&d| {
                let n = &g.nodes[d];
                matches!(n.op, Op::Dense { .. })
                    && n.inputs.len() >= 2
                    && n.inputs[0] == y
                    && n.inputs[1..].iter().all(|&t| t != y && const_ok(g, t))
                    && g.tensors[n.inputs[1]].shape.get(1) == ys.last()
            });
            if flat && into_dense && !g.outputs.contains(&y) {
                let per_channel = prod(&xs[ax + 1..]).unwrap_or(0);
                let acc = self.root_acc(x);
                for d in readers {
                    acc.consumers.push(Consumer { node: d, per_channel, kind: ConsumerKind::Dense, flatten: Some(i) });
                }
                return;
            }
        }
        let reason = format!("reshaped by {} in a way that mixes channels", who(&g.nodes[i]));
        self.bad(x, reason);
    }
}

// ---------------------------------------------------------------- surgery

struct Surgery<'g> {
    g: &'g mut Graph,
    c: usize,
    keep: Vec<usize>,
}

impl Surgery<'_> {
    fn node(&self, i: usize) -> Result<&Node> {
        self.g.nodes.get(i).ok_or_else(|| anyhow!("node index {i} is out of range: the space does not match the graph"))
    }

    /// Applies every edit of space `s` (checked by [`check_matches`]).
    fn run(&mut self, s: &ChannelSpace) -> Result<()> {
        for &p in &s.producers {
            let n = self.node(p)?;
            if !matches!(n.op, Op::Conv(_) | Op::Dense { .. }) {
                bail!("producer {} is neither Conv nor Dense", who(n));
            }
            let has_bias = n.inputs.len() > 2;
            self.shrink(p, 1, 0, 1)?;
            if has_bias {
                self.shrink_vec(p, 2)?;
            }
        }
        for &i in &s.passthrough {
            let n = self.node(i)?.clone();
            match n.op {
                Op::Conv(mut a) => {
                    self.shrink(i, 1, 0, 1)?;
                    if n.inputs.len() > 2 {
                        self.shrink_vec(i, 2)?;
                    }
                    a.group = u32::try_from(self.keep.len())?;
                    self.g.nodes[i].op = Op::Conv(a);
                }
                Op::ChannelAffine => {
                    self.shrink_vec(i, 1)?;
                    self.shrink_vec(i, 2)?;
                }
                Op::Binary(_) => {
                    let ax = space_axis(s, &n)?;
                    let ys = self.g.tensors[n.outputs[0]].shape.clone();
                    for slot in 0..n.inputs.len() {
                        let t = n.inputs[slot];
                        if self.g.is_const(t) {
                            if let Some(j) = const_channel_axis(&ys, ax, &self.g.tensors[t].shape, self.c) {
                                self.shrink(i, slot, j, 1)?;
                            }
                        }
                    }
                }
                Op::Reshape { .. } => {
                    let ax = space_axis(s, &n)?;
                    let mut dims = self.g.tensors[n.outputs[0]].shape.clone();
                    dims[ax] = self.keep.len();
                    self.g.nodes[i].op = Op::Reshape { shape: rt_shape(&dims, &n)? };
                }
                _ => {}
            }
        }
        let mut flattened = Vec::new();
        for con in &s.consumers {
            let n = self.node(con.node)?;
            match (con.kind, n.op) {
                (ConsumerKind::Conv, Op::Conv(_)) => self.shrink(con.node, 1, 1, 1)?,
                (ConsumerKind::Dense, Op::Dense { .. }) => self.shrink(con.node, 1, 1, con.per_channel)?,
                _ => bail!("consumer {} is not a {:?}", who(n), con.kind),
            }
            if let Some(r) = con.flatten.filter(|r| !flattened.contains(r)) {
                flattened.push(r);
                let n = self.node(r)?.clone();
                let y = *n.outputs.first().ok_or_else(|| anyhow!("{} has no output", who(&n)))?;
                let mut dims = self.g.tensors[y].shape.clone();
                let Some(last) = dims.last_mut() else { bail!("{} flattens into a scalar", who(&n)) };
                *last = self.keep.len().saturating_mul(con.per_channel);
                self.g.nodes[r].op = Op::Reshape { shape: rt_shape(&dims, &n)? };
                self.g.tensors[y].shape = dims;
            }
        }
        for (&t, &ax) in s.tensors.iter().zip(&s.axes) {
            self.g.tensors[t].shape[ax] = self.keep.len();
        }
        Ok(())
    }

    /// Keeps, in constant operand `slot` of node `i` viewed as `[outer, c, per * inner]` around
    /// `axis` (which must hold `c * per` entries), the blocks of the kept channels.
    fn shrink(&mut self, i: usize, slot: usize, axis: usize, per: usize) -> Result<()> {
        let n = self.node(i)?;
        let t = *n.inputs.get(slot).ok_or_else(|| anyhow!("{} has no operand {slot}", who(n)))?;
        let tensor = &self.g.tensors[t];
        let data = tensor.data.as_ref().filter(|d| d.len() == tensor.numel());
        let want = self.c.checked_mul(per);
        let (Some(data), true) = (data, want.is_some() && tensor.shape.get(axis).copied() == want) else {
            bail!(
                "{}: operand `{}` (shape {:?}) is not a constant with {} × {per} entries on axis {axis}",
                who(n),
                tensor.name,
                tensor.shape,
                self.c
            );
        };
        let outer = prod(&tensor.shape[..axis]).unwrap_or(0);
        let inner = prod(&tensor.shape[axis + 1..]).unwrap_or(0) * per;
        let mut out = Vec::with_capacity(outer * self.keep.len() * inner);
        for o in 0..outer {
            for &k in &self.keep {
                let start = (o * self.c + k) * inner;
                out.extend_from_slice(
                    data.get(start..start + inner).ok_or_else(|| anyhow!("{}: operand `{}` is too short", who(n), tensor.name))?,
                );
            }
        }
        let mut shape = tensor.shape.clone();
        shape[axis] = self.keep.len() * per;
        let uses = self.g.nodes.iter().flat_map(|n| &n.inputs).chain(&self.g.inputs).chain(&self.g.outputs).filter(|&&u| u == t).count();
        if uses > 1 {
            let name = crate::passes::fresh_name(self.g, &format!("{}/pruned", tensor.name));
            let nt = self.g.add_tensor(name, shape, Some(out));
            self.g.nodes[i].inputs[slot] = nt;
        } else {
            let tensor = &mut self.g.tensors[t];
            tensor.shape = shape;
            tensor.data = Some(out);
        }
        Ok(())
    }

    /// Shrinks a per-channel vector operand (`c` entries, any shape with one axis of size `c`).
    fn shrink_vec(&mut self, i: usize, slot: usize) -> Result<()> {
        let n = self.node(i)?;
        let t = *n.inputs.get(slot).ok_or_else(|| anyhow!("{} has no operand {slot}", who(n)))?;
        let tensor = &self.g.tensors[t];
        match tensor.shape.iter().position(|&d| d == self.c) {
            Some(axis) if tensor.numel() == self.c => self.shrink(i, slot, axis, 1),
            _ => bail!("{}: operand `{}` (shape {:?}) is not a vector of {} entries", who(n), tensor.name, tensor.shape, self.c),
        }
    }
}

/// The tensors of `s` are activations of `g` carrying `s.channels` channels on their axes.
fn check_matches(g: &Graph, s: &ChannelSpace) -> Result<()> {
    if s.tensors.is_empty() || s.tensors.len() != s.axes.len() {
        bail!("the space lists {} tensors and {} axes: it does not match the graph", s.tensors.len(), s.axes.len());
    }
    for (&t, &ax) in s.tensors.iter().zip(&s.axes) {
        let tensor = g.tensors.get(t).ok_or_else(|| anyhow!("tensor id {t} is out of range: the space does not match the graph"))?;
        if tensor.data.is_some() || tensor.shape.get(ax) != Some(&s.channels) {
            bail!(
                "tensor `{}` (shape {:?}) does not carry {} channels on axis {ax}: the space does not match the graph",
                tensor.name,
                tensor.shape,
                s.channels
            );
        }
    }
    Ok(())
}

/// The channel axis of the output of passthrough node `n` in `s`.
fn space_axis(s: &ChannelSpace, n: &Node) -> Result<usize> {
    n.outputs
        .first()
        .and_then(|y| s.tensors.iter().position(|t| t == y))
        .map(|k| s.axes[k])
        .ok_or_else(|| anyhow!("the output of {} is not in the space", who(n)))
}

fn rt_shape(dims: &[usize], n: &Node) -> Result<Shape> {
    Shape::new(dims).ok_or_else(|| anyhow!("{}: shape {dims:?} does not fit the runtime", who(n)))
}

/// Every node's output shape equals the runtime's inference on its operands, and every constant
/// holds as many values as its shape.
fn verify(g: &Graph) -> Result<()> {
    for t in &g.tensors {
        if t.data.as_ref().is_some_and(|d| d.len() != t.numel()) {
            bail!("constant `{}` holds {} values for shape {:?}", t.name, t.data.as_ref().map_or(0, Vec::len), t.shape);
        }
    }
    for n in &g.nodes {
        let &[y] = &n.outputs[..] else { bail!("{} has {} outputs", who(n), n.outputs.len()) };
        let inferred = g.infer(&n.op, &n.inputs).map_err(|e| anyhow!("after removing channels, {} rejects its operands: {e:?}", who(n)))?;
        if inferred != g.tensors[y].shape {
            bail!(
                "after removing channels, {} infers shape {inferred:?} but its output `{}` has {:?}",
                who(n),
                g.tensors[y].name,
                g.tensors[y].shape
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use sprig_runtime::kernels::{execute, Operand};
    use sprig_runtime::{Activation, BinaryKind, ConvAttrs, UnaryKind, View};

    use super::*;
    use crate::compile::compile;
    use crate::host::HostModel;
    use crate::writer::WeightFormat;

    use crate::import::tests::lcg;

    /// Hand-built graphs with random constants; output shapes come from the runtime's inference.
    #[derive(Default)]
    struct Builder {
        g: Graph,
        seed: u64,
    }

    impl Builder {
        fn input(&mut self, name: &str, shape: &[usize]) -> TensorId {
            let t = self.g.add_tensor(name, shape.to_vec(), None);
            self.g.inputs.push(t);
            t
        }

        fn rand(&mut self, name: &str, shape: &[usize]) -> TensorId {
            self.seed += 1;
            let data = lcg(shape.iter().product(), self.seed);
            self.g.add_tensor(name, shape.to_vec(), Some(data))
        }

        fn op(&mut self, name: &str, op: Op, inputs: &[TensorId]) -> TensorId {
            let shape = self.g.infer(&op, inputs).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let y = self.g.add_tensor(format!("{name}_out"), shape, None);
            self.g.nodes.push(Node { name: name.into(), onnx_op: op.name().into(), op, inputs: inputs.to_vec(), outputs: vec![y] });
            y
        }

        /// Conv with random weights and bias: `m` filters of `k × k`, `group` groups.
        #[allow(clippy::too_many_arguments)]
        fn conv(&mut self, name: &str, x: TensorId, m: usize, k: usize, group: usize, stride: u32, pad: u32, act: Activation) -> TensorId {
            let c = self.g.tensors[x].shape[1];
            let w = self.rand(&format!("{name}_w"), &[m, c / group, k, k]);
            let b = self.rand(&format!("{name}_b"), &[m]);
            let a = ConvAttrs { group: group as u32, stride: [stride; 2], dilation: [1; 2], pads: [pad; 4], act };
            self.op(name, Op::Conv(a), &[x, w, b])
        }

        fn dense(&mut self, name: &str, x: TensorId, n: usize) -> TensorId {
            let k = *self.g.tensors[x].shape.last().unwrap();
            let w = self.rand(&format!("{name}_w"), &[n, k]);
            let b = self.rand(&format!("{name}_b"), &[n]);
            self.op(name, Op::Dense { act: Activation::None }, &[x, w, b])
        }

        fn reshape(&mut self, name: &str, x: TensorId, shape: &[usize]) -> TensorId {
            self.op(name, Op::Reshape { shape: Shape::new(shape).unwrap() }, &[x])
        }

        fn finish(mut self, outputs: &[TensorId]) -> Graph {
            self.g.outputs = outputs.to_vec();
            self.g
        }
    }

    fn node_index(g: &Graph, name: &str) -> usize {
        g.nodes.iter().position(|n| n.name == name).unwrap_or_else(|| panic!("no node `{name}`"))
    }

    /// The space whose producers are exactly the named nodes.
    fn space_of(g: &Graph, producers: &[&str]) -> ChannelSpace {
        let want: Vec<usize> = producers.iter().map(|p| node_index(g, p)).collect();
        channel_spaces(g).into_iter().find(|s| s.producers == want).unwrap_or_else(|| panic!("no space produced by {producers:?}"))
    }

    /// Makes channel `ch` of `s` exactly zero everywhere: zero producer rows and biases, zero
    /// depthwise biases and ChannelAffine shifts (the activations on the way map 0 to 0).
    fn kill(g: &mut Graph, s: &ChannelSpace, ch: usize) {
        let zero = |g: &mut Graph, t: TensorId, ch: usize| {
            let per = g.tensors[t].numel() / s.channels;
            g.tensors[t].data.as_mut().unwrap()[ch * per..(ch + 1) * per].fill(0.0);
        };
        for &p in &s.producers {
            let ins = g.nodes[p].inputs.clone();
            for &t in &ins[1..] {
                zero(g, t, ch);
            }
        }
        for &i in &s.passthrough {
            let ins = g.nodes[i].inputs.clone();
            match g.nodes[i].op {
                Op::Conv(_) if ins.len() > 2 => zero(g, ins[2], ch),
                Op::ChannelAffine => zero(g, ins[2], ch),
                _ => {}
            }
        }
    }

    /// Compiles `g` and runs it on each input.
    fn run(g: &Graph, xs: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let c = compile(g.clone(), WeightFormat::F32, [0; 32]).unwrap();
        let mut m = HostModel::new(&c.bytes).unwrap();
        xs.iter().flat_map(|x| m.run(&[x]).unwrap()).collect()
    }

    fn inputs(g: &Graph, n: usize) -> Vec<Vec<f32>> {
        let len = g.tensors[g.inputs[0]].numel();
        (0..n).map(|i| lcg(len, 1000 + i as u64)).collect()
    }

    fn assert_bits(a: &[Vec<f32>], b: &[Vec<f32>]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            let (xb, yb): (Vec<u32>, Vec<u32>) = (x.iter().map(|v| v.to_bits()).collect(), y.iter().map(|v| v.to_bits()).collect());
            assert_eq!(xb, yb, "outputs differ: {x:?} vs {y:?}");
        }
    }

    fn shape(g: &Graph, t: TensorId) -> &[usize] {
        &g.tensors[t].shape
    }

    /// Conv(3→8, 3×3, relu) → depthwise Conv(8) → ChannelAffine → Conv(8→4, 1×1) →
    /// GlobalAveragePool → Reshape → Dense(4→3).
    fn chain() -> Graph {
        let mut b = Builder::default();
        let x = b.input("x", &[1, 3, 26, 26]);
        let c1 = b.conv("c1", x, 8, 3, 1, 1, 0, Activation::Relu);
        let dw = b.conv("dw", c1, 8, 3, 8, 1, 1, Activation::Clip { min: 0.0, max: 6.0 });
        let (sc, sh) = (b.rand("scale", &[8]), b.rand("shift", &[1, 8, 1, 1]));
        let af = b.op("affine", Op::ChannelAffine, &[dw, sc, sh]);
        let c2 = b.conv("c2", af, 4, 1, 1, 1, 0, Activation::None);
        let gp = b.op("gap", Op::GlobalAveragePool, &[c2]);
        let r = b.reshape("flat", gp, &[1, 4]);
        let y = b.dense("fc", r, 3);
        b.finish(&[y])
    }

    #[test]
    fn channels_exact_rewrite_of_a_conv_chain() {
        let mut g = chain();
        let spaces = channel_spaces(&g);
        assert_eq!(spaces.len(), 3);
        let (a, b, c) = (&spaces[0], &spaces[1], &spaces[2]);
        let conv = |node, per_channel, kind| Consumer { node, per_channel, kind, flatten: None };
        assert_eq!((a.channels, &a.producers, &a.passthrough), (8, &vec![0], &vec![1, 2]));
        assert_eq!(a.consumers, [conv(3, 1, ConsumerKind::Conv)]);
        assert_eq!((a.tensors.len(), a.axes.clone(), a.prunable.clone()), (3, vec![1; 3], Ok(())));
        assert_eq!((b.channels, &b.producers, &b.passthrough), (4, &vec![3], &vec![4, 5]));
        assert_eq!(b.consumers, [conv(6, 1, ConsumerKind::Dense)]);
        assert_eq!((b.axes.clone(), b.prunable.clone()), (vec![1, 1, 1], Ok(())));
        assert!(c.prunable.as_ref().unwrap_err().contains("graph output"), "{:?}", c.prunable);
        // Per channel: c1 filter 27 + bias, dw filter 9 + bias, scale + shift, c2 column of 4,
        // each over the 24 × 24 plane.
        assert_eq!(channel_cost(&g, a), ((27 + 9 + 1 + 4) * 576, 28 + 10 + 2 + 4));

        let xs = inputs(&g, 3);
        let dead = [6, 1, 4];
        for &ch in &dead {
            kill(&mut g, a, ch);
        }
        let want = run(&g, &xs);
        let before = g.clone();
        remove_channels(&mut g, a, &dead).unwrap();
        assert_eq!(g.tensors.len(), before.tensors.len(), "no constant is shared: all shrink in place");
        let n = |name| &g.nodes[node_index(&g, name)];
        assert_eq!(shape(&g, n("c1").inputs[1]), [5, 3, 3, 3]);
        assert_eq!(shape(&g, n("dw").inputs[1]), [5, 1, 3, 3]);
        assert!(matches!(n("dw").op, Op::Conv(a) if a.group == 5));
        assert_eq!(shape(&g, n("affine").inputs[2]), [1, 5, 1, 1]);
        assert_eq!(shape(&g, n("c2").inputs[1]), [4, 5, 1, 1]);
        // Kept entries keep their values, in order.
        let kept_rows = |t: TensorId, per: usize| -> Vec<f32> {
            let d = before.tensors[t].data.as_ref().unwrap();
            [0, 2, 3, 5, 7].iter().flat_map(|&k| d[k * per..(k + 1) * per].to_vec()).collect()
        };
        assert_eq!(g.tensors[n("c1").inputs[1]].data.as_deref(), Some(&kept_rows(n("c1").inputs[1], 27)[..]));
        assert_eq!(g.tensors[n("affine").inputs[1]].data.as_deref(), Some(&kept_rows(n("affine").inputs[1], 1)[..]));
        // The zero channels contributed exact zeros to every sum of c2 (its row loop adds them
        // one by one), so the outputs are bit-identical.
        assert_bits(&run(&g, &xs), &want);

        // The second space ends in GlobalAveragePool → Reshape → Dense(4 → 3). Removing the last
        // channel keeps the Dense dot's association ((a0 + a1) + a2), hence bit-identity again.
        let b = space_of(&g, &["c2"]);
        kill(&mut g, &b, 3);
        let want = run(&g, &xs);
        remove_channels(&mut g, &b, &[3]).unwrap();
        let n = |name| &g.nodes[node_index(&g, name)];
        assert_eq!(shape(&g, n("fc").inputs[1]), [3, 3]);
        assert!(matches!(n("flat").op, Op::Reshape { shape } if shape.dims() == [1, 3]));
        assert_bits(&run(&g, &xs), &want);
    }

    #[test]
    fn channels_exact_rewrite_through_a_flatten_into_dense() {
        let mut b = Builder::default();
        let x = b.input("x", &[1, 3, 10, 10]);
        let c1 = b.conv("c1", x, 8, 3, 1, 1, 0, Activation::Relu);
        let c2 = b.conv("c2", c1, 6, 3, 1, 2, 1, Activation::Relu);
        let r = b.reshape("flatten", c2, &[1, 96]);
        let y = b.dense("fc", r, 5);
        let mut g = b.finish(&[y]);
        let s2 = space_of(&g, &["c2"]);
        assert_eq!(s2.consumers, [Consumer { node: 3, per_channel: 16, kind: ConsumerKind::Dense, flatten: Some(2) }]);
        assert_eq!(s2.passthrough, Vec::<usize>::new());
        assert_eq!(channel_cost(&g, &s2), (72 * 16 + 16 * 5, 73 + 16 * 5));
        let xs = inputs(&g, 3);

        // Blocks of 16 columns keep every kept column's lane in the Dense dot (K = 96 is one chunk).
        for ch in [0, 3] {
            kill(&mut g, &s2, ch);
        }
        let want = run(&g, &xs);
        remove_channels(&mut g, &s2, &[3, 0]).unwrap();
        assert_eq!(shape(&g, g.nodes[3].inputs[1]), [5, 64]);
        assert_eq!(shape(&g, r), [1, 64]);
        assert!(matches!(g.nodes[2].op, Op::Reshape { shape } if shape.dims() == [1, 64]));
        assert_bits(&run(&g, &xs), &want);

        // c2 (stride 2, few output columns) takes one 4-lane dot per filter over the gathered
        // `[channel, ky, kx]` patch; four removed consecutive channels (36 entries) keep the lanes.
        let s1 = space_of(&g, &["c1"]);
        assert_eq!(s1.consumers, [Consumer { node: 1, per_channel: 1, kind: ConsumerKind::Conv, flatten: None }]);
        for ch in 1..5 {
            kill(&mut g, &s1, ch);
        }
        let want = run(&g, &xs);
        remove_channels(&mut g, &s1, &[1, 2, 3, 4]).unwrap();
        assert_eq!(shape(&g, g.nodes[1].inputs[1]), [4, 4, 3, 3]);
        assert_bits(&run(&g, &xs), &want);
    }

    #[test]
    fn channels_residual_add_merges_producers() {
        let mut b = Builder::default();
        let x = b.input("x", &[1, 3, 24, 24]);
        let a = b.conv("a", x, 8, 3, 1, 1, 1, Activation::Relu);
        let c = b.conv("b", a, 8, 3, 1, 1, 1, Activation::None);
        let s = b.op("add", Op::Binary(BinaryKind::Add), &[a, c]);
        let r = b.op("relu", Op::Unary(UnaryKind::Relu), &[s]);
        let y = b.conv("c", r, 4, 1, 1, 1, 0, Activation::None);
        let mut g = b.finish(&[y]);
        let spaces = channel_spaces(&g);
        assert_eq!(spaces.len(), 2);
        let sp = &spaces[0];
        assert_eq!((sp.channels, &sp.producers, &sp.passthrough), (8, &vec![0, 1], &vec![2, 3]));
        assert_eq!(sp.consumers.iter().map(|c| (c.node, c.kind)).collect::<Vec<_>>(), [(1, ConsumerKind::Conv), (4, ConsumerKind::Conv)]);
        assert_eq!(sp.tensors, [a, c, s, r]);
        assert_eq!(sp.prunable, Ok(()));

        let xs = inputs(&g, 2);
        for ch in [0, 5] {
            kill(&mut g, sp, ch);
        }
        let want = run(&g, &xs);
        remove_channels(&mut g, sp, &[5, 0]).unwrap();
        // `b` is both a producer (rows) and a consumer (columns) of the space.
        assert_eq!(shape(&g, g.nodes[0].inputs[1]), [6, 3, 3, 3]);
        assert_eq!(shape(&g, g.nodes[1].inputs[1]), [6, 6, 3, 3]);
        assert_eq!(shape(&g, g.nodes[4].inputs[1]), [4, 6, 1, 1]);
        assert_eq!(shape(&g, r), [1, 6, 24, 24]);
        assert_bits(&run(&g, &xs), &want);
    }

    #[test]
    fn channels_per_channel_constants_and_squeezes_follow() {
        // Dense → [1, C] → PRelu(per-channel slopes) → Reshape [1, C, 1, 1] → Mul(x) (SE-style
        // channel gate over a conv output) → Conv: one space with two producers.
        let mut b = Builder::default();
        let x = b.input("x", &[1, 2, 6, 6]);
        let f = b.conv("f", x, 4, 3, 1, 1, 1, Activation::Relu);
        let gp = b.op("gap", Op::GlobalAveragePool, &[f]);
        let sq = b.reshape("squeeze", gp, &[1, 4]);
        let e = b.dense("excite", sq, 4);
        let slope = b.rand("slope", &[4]);
        let p = b.op("prelu", Op::Binary(BinaryKind::PRelu), &[e, slope]);
        let u = b.reshape("unsqueeze", p, &[1, 4, 1, 1]);
        let m = b.op("gate", Op::Binary(BinaryKind::Mul), &[f, u]);
        let half = b.g.add_tensor("half", vec![], Some(vec![0.5]));
        let h = b.op("halve", Op::Binary(BinaryKind::Mul), &[half, m]);
        let y = b.conv("out", h, 3, 1, 1, 1, 0, Activation::None);
        let mut g = b.finish(&[y]);
        let sp = space_of(&g, &["f", "excite"]);
        assert_eq!(sp.prunable, Ok(()));
        assert_eq!(sp.consumers.iter().map(|c| c.node).collect::<Vec<_>>(), [3, 8]);
        // prelu shrinks its slopes, the reshapes their targets; the scalar stays.
        remove_channels(&mut g, &sp, &[2]).unwrap();
        assert_eq!(shape(&g, slope), [3]);
        assert_eq!(shape(&g, half), [] as [usize; 0]);
        assert!(matches!(g.nodes[node_index(&g, "unsqueeze")].op, Op::Reshape { shape } if shape.dims() == [1, 3, 1, 1]));
        assert_eq!(shape(&g, g.nodes[node_index(&g, "excite")].inputs[1]), [3, 3]);
        run(&g, &inputs(&g, 1));
    }

    #[test]
    fn channels_unsupported_readers_make_spaces_not_prunable() {
        let reason = |g: &Graph| space_of(g, &["conv"]).prunable.unwrap_err();
        let base = || {
            let mut b = Builder::default();
            let x = b.input("x", &[1, 4, 8, 8]);
            let c = b.conv("conv", x, 4, 3, 1, 1, 1, Activation::None);
            (b, x, c)
        };
        // A graph output.
        let (b, _, c) = base();
        let g = b.finish(&[c]);
        assert!(reason(&g).contains("graph output"), "{}", reason(&g));
        // Softmax, Transpose.
        let (mut b, _, c) = base();
        let y = b.op("sm", Op::Softmax { axis: 1, log: false }, &[c]);
        let g = b.finish(&[y]);
        assert!(reason(&g).contains("`sm` (Softmax)"), "{}", reason(&g));
        let (mut b, _, c) = base();
        let t = b.op("tr", Op::Transpose { perm: [0, 2, 3, 1, 0, 0] }, &[c]);
        let y = b.op("neg", Op::Unary(UnaryKind::Neg), &[t]);
        let g = b.finish(&[y]);
        assert!(reason(&g).contains("`tr` (Transpose)"), "{}", reason(&g));
        // Concat: both inputs.
        let (mut b, x, c) = base();
        let d = b.conv("conv2", x, 4, 1, 1, 1, 0, Activation::None);
        let cat = b.op("cat", Op::Concat { axis: 1 }, &[c, d]);
        let y = b.conv("after", cat, 2, 1, 1, 1, 0, Activation::None);
        let g = b.finish(&[y]);
        assert!(reason(&g).contains("`cat` (Concat)"));
        assert!(space_of(&g, &["conv2"]).prunable.unwrap_err().contains("`cat`"));
        // A residual with the graph input: the input's channels cannot be removed.
        let (mut b, x, c) = base();
        let s = b.op("add", Op::Binary(BinaryKind::Add), &[x, c]);
        let y = b.conv("after", s, 2, 1, 1, 1, 0, Activation::None);
        let g = b.finish(&[y]);
        assert!(reason(&g).contains("`add` (Add) with `x`"), "{}", reason(&g));
        // A Reshape that mixes channels; a Dense reading the width axis of an NCHW tensor.
        let (mut b, _, c) = base();
        let r = b.reshape("mix", c, &[1, 8, 32]);
        let y = b.dense("fc", r, 2);
        let g = b.finish(&[y]);
        assert!(reason(&g).contains("`mix` (Reshape)"), "{}", reason(&g));
        let (mut b, _, c) = base();
        let y = b.dense("fc", c, 2);
        let g = b.finish(&[y]);
        assert!(reason(&g).contains("another axis by node `fc`"), "{}", reason(&g));
        // Removing channels of a non-prunable space is refused, and leaves the graph alone.
        let mut h = g.clone();
        assert!(remove_channels(&mut h, &space_of(&g, &["conv"]), &[0]).is_err());
        assert_eq!(format!("{h:?}"), format!("{g:?}"));
    }

    #[test]
    fn channels_bad_requests_are_errors() {
        let mut g = chain();
        let s = space_of(&g, &["c1"]);
        let before = format!("{g:?}");
        for bad in [&[8][..], &[1, 1], &[0, 1, 2, 3, 4, 5, 6, 7]] {
            let e = remove_channels(&mut g, &s, bad).unwrap_err();
            assert!(!e.to_string().is_empty());
            assert_eq!(format!("{g:?}"), before);
        }
        remove_channels(&mut g, &s, &[]).unwrap();
        assert_eq!(format!("{g:?}"), before);
        // A stale space (already applied) no longer matches the graph.
        remove_channels(&mut g, &s, &[0]).unwrap();
        let e = remove_channels(&mut g, &s, &[1]).unwrap_err().to_string();
        assert!(e.contains("does not match"), "{e}");
        // Garbage spaces and graphs are errors, not panics; the graph stays as it was.
        let fresh = space_of(&g, &["c1"]);
        let before = format!("{g:?}");
        type Edit = fn(&mut ChannelSpace);
        let cases: [(&str, Edit); 5] = [
            ("out of range", |s| s.producers = vec![99]),
            ("neither Conv nor Dense", |s| s.producers = vec![2]),
            ("is not a Dense", |s| s.consumers[0].kind = ConsumerKind::Dense),
            ("does not match", |s| s.axes.clear()),
            ("not a constant with", |s| s.consumers.push(s.consumers[0].clone())),
        ];
        for (want, edit) in cases {
            let mut junk = fresh.clone();
            edit(&mut junk);
            let e = remove_channels(&mut g, &junk, &[1]).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
            assert_eq!(format!("{g:?}"), before);
        }
        let mut broken = g.clone();
        broken.nodes[3].inputs[1] = 10_000;
        assert!(channel_spaces(&broken).is_empty());
        assert_eq!(channel_cost(&broken, &fresh), (0, 0));
        assert!(remove_channels(&mut broken, &fresh, &[1]).is_err());
        let mut unordered = g.clone();
        unordered.nodes.swap(0, 1);
        assert!(channel_spaces(&unordered).is_empty());
    }

    // ------------------------------------------------------------ real models

    fn models() -> Option<PathBuf> {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/models");
        if p.is_dir() {
            Some(p)
        } else {
            eprintln!("skipping: shared models not found at {}", p.display());
            None
        }
    }

    /// Every tensor's values on input `x`, with the runtime's kernels.
    fn activations(g: &Graph, x: &[f32]) -> Vec<Option<Vec<f32>>> {
        let mut vals: Vec<Option<Vec<f32>>> = g.tensors.iter().map(|t| t.data.clone()).collect();
        vals[g.inputs[0]] = Some(x.to_vec());
        for n in &g.nodes {
            let ops: Vec<Operand> = n
                .inputs
                .iter()
                .map(|&t| Operand { view: View::F32(vals[t].as_deref().unwrap()), shape: g.tensors[t].rt_shape() })
                .collect();
            let y = n.outputs[0];
            let mut out = vec![0f32; g.tensors[y].numel()];
            execute(&n.op, &ops, &mut out, &g.tensors[y].rt_shape()).unwrap();
            vals[y] = Some(out);
        }
        vals
    }

    #[test]
    fn channels_on_real_models() {
        let Some(dir) = models() else { return };
        let load = |m: &str| crate::import::import_onnx(&dir.join(m), &Default::default()).unwrap();

        let resnet = load("ic_resnet8_fp32.onnx");
        let spaces = channel_spaces(&resnet);
        assert!(spaces.iter().any(|s| s.producers.len() >= 2 && s.prunable.is_ok()), "residual spaces merged");
        assert!(spaces.iter().all(|s| s.producers.iter().all(|&p| matches!(resnet.nodes[p].op, Op::Conv(_) | Op::Dense { .. }))));

        let mut vww = load("vww_mobilenetv1_96_fp32.onnx");
        let spaces = channel_spaces(&vww);
        let prunable: Vec<&ChannelSpace> = spaces.iter().filter(|s| s.prunable.is_ok()).collect();
        assert!(prunable.len() >= 10, "{} prunable spaces", prunable.len());
        assert!(spaces.iter().any(|s| s.prunable.as_ref().is_err_and(|e| e.contains("Softmax"))));
        let before = format!("{vww:?}");
        remove_channels(&mut vww, prunable[3], &[]).unwrap();
        assert_eq!(format!("{vww:?}"), before);

        // Channels that are zero in every tensor of their space on a few inputs: removing them
        // leaves the outputs on those inputs unchanged up to summation order.
        let xs = inputs(&vww, 3);
        let acts: Vec<_> = xs.iter().map(|x| activations(&vww, x)).collect();
        let dead_in = |s: &ChannelSpace| -> Vec<usize> {
            (0..s.channels)
                .filter(|&ch| {
                    s.tensors.iter().zip(&s.axes).all(|(&t, &ax)| {
                        let sh = &vww.tensors[t].shape;
                        let inner: usize = sh[ax + 1..].iter().product();
                        let outer: usize = sh[..ax].iter().product();
                        acts.iter().all(|v| {
                            let v = v[t].as_ref().unwrap();
                            (0..outer).all(|o| v[(o * s.channels + ch) * inner..][..inner].iter().all(|&e| e == 0.0))
                        })
                    })
                })
                .collect()
        };
        let dead: Vec<Vec<usize>> = spaces.iter().map(|s| if s.prunable.is_ok() { dead_in(s) } else { Vec::new() }).collect();
        let want = run(&vww, &xs);
        let mut removed = 0;
        for (k, mut dead) in dead.into_iter().enumerate() {
            // Spaces are recomputed after each surgery: other spaces keep their order, tensors and
            // channel counts.
            let s = channel_spaces(&vww).swap_remove(k);
            assert_eq!(s.producers, spaces[k].producers);
            if dead.is_empty() {
                continue;
            }
            dead.truncate(s.channels - 1);
            let (macs, params) = channel_cost(&vww, &s);
            assert!(macs > 0 && params > 0);
            remove_channels(&mut vww, &s, &dead).unwrap();
            removed += dead.len();
        }
        eprintln!("vww: removed {removed} channels dead on {} random inputs", xs.len());
        let got = run(&vww, &xs);
        for (a, b) in got.iter().zip(&want) {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() <= 1e-5, "{x} vs {y}");
            }
        }
    }
}
