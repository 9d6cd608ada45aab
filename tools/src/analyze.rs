//! Activation-sparsity analysis (ALGORITHMS.md §6.5, after ProSparse §4): how often each
//! ReLU-family output of the *source* model is exactly zero on real data, per layer and per
//! channel; dead and always-active channels; the near-zero curve; for k×k convolution consumers
//! the rate of all-zero windows; and for Dense / 1×1 Conv consumers the speedup the input-sparse
//! kernel is predicted to give at that sparsity on this machine (from the measured cost table,
//! never a guess). Other activations (LeakyRelu, HardSwish, GELU, SiLU) get the same statistics,
//! plus the fraction of values a ReLU would zero (report only: swapping changes the model).
//!
//! Guarantee: every fraction is an exact count over all elements of the named ONNX tensor over
//! all samples given, computed by sprig's runtime on the unoptimized import of the model (one
//! node per ONNX node), so it can be checked against any other ONNX runtime.

use crate::compile::compile;
use crate::compress::sparsify::BreakEvenTable;
use crate::host::HostModel;
use crate::ir::{Graph, TensorId};
use crate::writer::WeightFormat;
use anyhow::{bail, Context, Result};
use sprig_runtime::op::{Activation, UnaryKind};
use sprig_runtime::Op;

/// Absolute thresholds of the near-zero curve (`|a| <= t`).
pub const NEAR_ZERO: [f64; 7] = [1e-3, 1e-2, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Predicted speedups below this are not worth a kernel switch (noise margin of the cost table);
/// `sprig compress` uses the same margin.
pub const MIN_SPEEDUP: f64 = 1.1;

/// The whole report.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ActivationReport {
    /// Source model path (as given).
    pub model: String,
    /// Calibration samples used.
    pub samples: usize,
    /// Target whose measured kernel costs give the predicted speedups (`None`: none measured).
    pub target: Option<String>,
    /// Exact zeros over all elements of all ReLU-family outputs, over all samples.
    pub overall_zero_fraction: f64,
    /// The mean of the per-layer zero fractions over ReLU-family outputs (ProSparse's average).
    pub mean_layer_zero_fraction: f64,
    /// One entry per activation output, in graph order.
    pub layers: Vec<LayerReport>,
}

/// One activation output.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LayerReport {
    /// ONNX node name.
    pub node: String,
    /// ONNX operator (`Relu`, `Clip`, `LeakyRelu`, ...).
    pub op: String,
    /// The ONNX tensor the statistics are about.
    pub output: String,
    /// True for Relu and Clip with min 0 (exact zeros by construction); false for activations
    /// reported as near-zero statistics only.
    pub relu_family: bool,
    /// Tensor shape (batch 1).
    pub shape: Vec<usize>,
    /// Fraction of exact zeros over all elements and samples.
    pub zero_fraction: f64,
    /// Channel axis used for the per-channel figures.
    pub channel_axis: usize,
    /// Number of channels.
    pub channels: usize,
    /// Per channel: fraction of exact zeros.
    pub channel_zero_fraction: Vec<f64>,
    /// Per channel: mean |a|.
    pub channel_mean_abs: Vec<f64>,
    /// Per channel: max a.
    pub channel_max: Vec<f64>,
    /// Channels zero on every element of every sample.
    pub dead_channels: Vec<usize>,
    /// Channels never zero.
    pub always_active_channels: Vec<usize>,
    /// `(t, P(|a| <= t))` over [`NEAR_ZERO`].
    pub near_zero: Vec<(f64, f64)>,
    /// Fraction of values `<= 0`: what a ReLU in place of this activation would zero.
    pub relu_swap_zero_fraction: f64,
    /// Operators reading the tensor (through Reshape / Flatten).
    pub consumers: Vec<ConsumerReport>,
    /// Predicted speedup of the layer's input-sparse-capable consumers (MAC-weighted), when any.
    pub predicted_speedup: Option<f64>,
}

/// One consumer of an activation.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ConsumerReport {
    /// ONNX node name.
    pub node: String,
    /// ONNX operator.
    pub op: String,
    /// `input-sparse` (Dense, 1×1 Conv: the runtime has an input-sparse kernel), `window` (a k×k
    /// Conv: only all-zero windows could be skipped), or `none`.
    pub kernel: String,
    /// Multiply-accumulates per inference.
    pub macs: u64,
    /// For `window` consumers: fraction of (channel, output position) windows that are all zero
    /// (padding counts as zero).
    pub window_zero_fraction: Option<f64>,
    /// For `input-sparse` consumers: dense time / input-sparse time predicted at the measured
    /// input density.
    pub predicted_speedup: Option<f64>,
}

/// How an activation node produces zeros.
fn activation_kind(op: &Op) -> Option<bool> {
    let relu_act = |a: &Activation| match a {
        Activation::Relu => true,
        Activation::Clip { min, .. } => *min == 0.0,
        Activation::Threshold { alpha } => *alpha >= 0.0,
        Activation::None => false,
    };
    match op {
        Op::Unary(UnaryKind::Relu) => Some(true),
        Op::Unary(UnaryKind::Clip { min, .. }) if *min == 0.0 => Some(true),
        Op::Conv(a) if relu_act(&a.act) => Some(true),
        Op::Dense { act } if relu_act(act) => Some(true),
        Op::Unary(
            UnaryKind::LeakyRelu { .. } | UnaryKind::HardSwish | UnaryKind::Gelu { .. } | UnaryKind::Silu | UnaryKind::Elu { .. },
        ) => Some(false),
        _ => None,
    }
}

/// The nodes reading `t`, looking through Reshape (Flatten): `(node, reads t directly)`.
fn consumers_through_reshape(g: &Graph, t: TensorId) -> Vec<(usize, bool)> {
    let mut out = Vec::new();
    let mut stack = vec![(t, true)];
    while let Some((t, direct)) = stack.pop() {
        for c in g.consumers(t) {
            if matches!(g.nodes[c].op, Op::Reshape { .. }) {
                stack.push((g.nodes[c].outputs[0], false));
            } else if !out.iter().any(|&(n, _)| n == c) {
                out.push((c, direct));
            }
        }
    }
    out.sort();
    out
}

/// Multiply-accumulates of node `n` (Conv, Dense, MatMul; 0 otherwise).
fn node_macs(g: &Graph, n: usize) -> u64 {
    let node = &g.nodes[n];
    let out: u64 = g.tensors[node.outputs[0]].numel() as u64;
    match node.op {
        Op::Conv(_) => out * g.tensors[node.inputs[1]].shape[1..].iter().product::<usize>() as u64,
        Op::Dense { .. } | Op::MatMul => out * g.tensors[node.inputs[0]].shape.last().copied().unwrap_or(0) as u64,
        _ => 0,
    }
}

/// Which input-sparse family (`dense`, `conv1x1`) node `n` belongs to when reading `t` as its
/// data input, if any.
pub fn input_sparse_family(g: &Graph, n: usize, t: TensorId) -> Option<&'static str> {
    let node = &g.nodes[n];
    if node.inputs.first() != Some(&t) || !node.inputs.get(1).is_some_and(|&w| g.is_const(w)) {
        return None;
    }
    let w = &g.tensors[node.inputs[1]].shape;
    match node.op {
        Op::Dense { .. } => Some("dense"),
        Op::MatMul if w.len() == 2 => Some("dense"),
        Op::Conv(a) if a.group == 1 && a.pads == [0; 4] && w[2..].iter().all(|&d| d == 1) => Some("conv1x1"),
        _ => None,
    }
}

/// Outputs per position (Dense / Conv: weight dim 0; MatMul: weight dim 1) and output positions
/// (product of the output dims after the first two, 1 for Dense) of weight layer `n`.
pub fn layer_shape(g: &Graph, n: usize) -> (usize, usize) {
    let node = &g.nodes[n];
    let w = node.inputs.get(1).map(|&w| &g.tensors[w].shape);
    let outputs = match (&node.op, w) {
        (Op::MatMul, Some(w)) => w.last().copied().unwrap_or(0),
        (_, Some(w)) => w.first().copied().unwrap_or(0),
        _ => 0,
    };
    let y = &g.tensors[node.outputs[0]].shape;
    let positions = if matches!(node.op, Op::Conv(_)) { y.get(2..).map_or(1, |s| s.iter().product()) } else { 1 };
    (outputs, positions)
}

/// Running counts for one activation tensor.
struct Acc {
    axis: usize,
    channels: usize,
    /// Elements per channel per sample, and the stride pattern (outer, channels, inner).
    outer: usize,
    inner: usize,
    n: u64,
    zeros: u64,
    nonpos: u64,
    near: [u64; NEAR_ZERO.len()],
    ch_zeros: Vec<u64>,
    ch_abs: Vec<f64>,
    ch_max: Vec<f64>,
    /// Per window consumer: (skippable windows, windows).
    windows: Vec<(u64, u64)>,
}

impl Acc {
    fn new(shape: &[usize], axis: usize, windows: usize) -> Acc {
        let channels = shape.get(axis).copied().unwrap_or(1).max(1);
        let outer = shape[..axis.min(shape.len())].iter().product();
        let inner = shape.get(axis + 1..).map_or(1, |s| s.iter().product());
        Acc {
            axis,
            channels,
            outer,
            inner,
            n: 0,
            zeros: 0,
            nonpos: 0,
            near: [0; NEAR_ZERO.len()],
            ch_zeros: vec![0; channels],
            ch_abs: vec![0.0; channels],
            ch_max: vec![f64::NEG_INFINITY; channels],
            windows: vec![(0, 0); windows],
        }
    }

    fn add(&mut self, a: &[f32]) {
        for o in 0..self.outer {
            for c in 0..self.channels {
                let base = (o * self.channels + c) * self.inner;
                for &v in &a[base..base + self.inner] {
                    let z = v == 0.0;
                    self.ch_zeros[c] += z as u64;
                    self.nonpos += (v <= 0.0) as u64;
                    let av = v.abs() as f64;
                    self.ch_abs[c] += av;
                    if (v as f64) > self.ch_max[c] || self.ch_max[c].is_nan() {
                        self.ch_max[c] = v as f64;
                    }
                    for (k, &t) in NEAR_ZERO.iter().enumerate() {
                        self.near[k] += (av <= t) as u64;
                    }
                }
            }
        }
        self.n += a.len() as u64;
        self.zeros = self.ch_zeros.iter().sum();
    }
}

/// All-zero windows of a k×k convolution reading `a` (shape `[N, C, H, W]` or `[N, C, L]`):
/// `(skippable, total)` over (channel, output position) pairs.
fn zero_windows(a: &[f32], xs: &[usize], w: &[usize], at: &sprig_runtime::op::ConvAttrs, ys: &[usize]) -> (u64, u64) {
    let two = xs.len() == 4;
    let (nb, c, h, wi) = if two { (xs[0], xs[1], xs[2], xs[3]) } else { (xs[0], xs[1], 1, xs[2]) };
    let (kh, kw) = if two { (w[2], w[3]) } else { (1, w[2]) };
    let (oh, ow) = if two { (ys[2], ys[3]) } else { (1, ys[2]) };
    let (sh, dh, pt) = if two { (at.stride[0] as i64, at.dilation[0] as i64, at.pads[0] as i64) } else { (1, 1, 0) };
    let (sw, dw, pl) = (at.stride[1] as i64, at.dilation[1] as i64, at.pads[1] as i64);
    let (mut skip, mut total) = (0u64, 0u64);
    for n in 0..nb {
        for ch in 0..c {
            let plane = &a[(n * c + ch) * h * wi..(n * c + ch + 1) * h * wi];
            for oy in 0..oh as i64 {
                for ox in 0..ow as i64 {
                    let mut zero = true;
                    'win: for ky in 0..kh as i64 {
                        let iy = oy * sh + ky * dh - pt;
                        if iy < 0 || iy >= h as i64 {
                            continue;
                        }
                        for kx in 0..kw as i64 {
                            let ix = ox * sw + kx * dw - pl;
                            if ix >= 0 && ix < wi as i64 && plane[iy as usize * wi + ix as usize] != 0.0 {
                                zero = false;
                                break 'win;
                            }
                        }
                    }
                    skip += zero as u64;
                    total += 1;
                }
            }
        }
    }
    (skip, total)
}

/// Analyzes `g` (the unoptimized import, see
/// [`import_onnx_bytes_unoptimized`](crate::import::import_onnx_bytes_unoptimized)) on
/// `samples` (one per inference, single-input models).
pub fn analyze(g: &Graph, samples: &[&[f32]], table: Option<&BreakEvenTable>, model: &str) -> Result<ActivationReport> {
    if g.inputs.len() != 1 {
        bail!("analyze needs a single-input model (this one has {} inputs)", g.inputs.len());
    }
    if samples.is_empty() {
        bail!("no calibration samples");
    }
    // The activation outputs and their consumers.
    struct Site {
        node: usize,
        t: TensorId,
        relu: bool,
        consumers: Vec<(usize, bool)>,
    }
    let mut sites = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if let Some(relu) = activation_kind(&n.op) {
            let t = n.outputs[0];
            sites.push(Site { node: i, t, relu, consumers: consumers_through_reshape(g, t) });
        }
    }
    let windows_of = |s: &Site| -> Vec<usize> {
        s.consumers
            .iter()
            .filter(|&&(c, direct)| direct && matches!(g.nodes[c].op, Op::Conv(_)) && input_sparse_family(g, c, s.t).is_none())
            .map(|&(c, _)| c)
            .collect()
    };
    let mut accs: Vec<Acc> = sites
        .iter()
        .map(|s| {
            let shape = &g.tensors[s.t].shape;
            let dense_reader =
                !s.consumers.is_empty() && s.consumers.iter().all(|&(c, _)| matches!(g.nodes[c].op, Op::Dense { .. } | Op::MatMul));
            let axis = match shape.len() {
                0 | 1 => 0,
                3 if dense_reader => 2,
                _ => 1,
            };
            Acc::new(shape, axis, windows_of(s).len())
        })
        .collect();

    // One probe model with every site as an output.
    let mut probe = g.clone();
    let mut slot = Vec::new();
    for s in &sites {
        match probe.outputs.iter().position(|&o| o == s.t) {
            Some(i) => slot.push(i),
            None => {
                probe.outputs.push(s.t);
                slot.push(probe.outputs.len() - 1);
            }
        }
    }
    let c = compile(probe, WeightFormat::F32, [0; 32]).context("compiling the analysis probe")?;
    let mut m = HostModel::new(&c.bytes)?;
    for (k, x) in samples.iter().enumerate() {
        let y = m.run(&[x]).with_context(|| format!("sample {k}"))?;
        for ((s, acc), &i) in sites.iter().zip(&mut accs).zip(&slot) {
            acc.add(&y[i]);
            for (wi, c) in windows_of(s).into_iter().enumerate() {
                let node = &g.nodes[c];
                let Op::Conv(at) = node.op else { continue };
                let (sk, tot) =
                    zero_windows(&y[i], &g.tensors[s.t].shape, &g.tensors[node.inputs[1]].shape, &at, &g.tensors[node.outputs[0]].shape);
                acc.windows[wi].0 += sk;
                acc.windows[wi].1 += tot;
            }
        }
    }

    let mut layers = Vec::new();
    for (s, acc) in sites.iter().zip(&accs) {
        let n = acc.n.max(1) as f64;
        let per_ch = (acc.n / acc.channels as u64).max(1) as f64;
        let zero_fraction = acc.zeros as f64 / n;
        let win = windows_of(s);
        let mut consumers = Vec::new();
        let (mut macs_sum, mut time_sum) = (0.0, 0.0);
        for &(c, _) in &s.consumers {
            let node = &g.nodes[c];
            let macs = node_macs(g, c);
            // Through a Reshape the consumer reads the reshaped tensor (same zeros).
            let (kernel, window, speedup) = if let Some(fam) = input_sparse_family(g, c, node.inputs[0]) {
                let ratio = table.and_then(|t| {
                    let (o, p) = layer_shape(g, c);
                    t.input_sparse_ratio(fam, o, p, 1.0 - zero_fraction)
                });
                if let Some(r) = ratio {
                    macs_sum += macs as f64;
                    time_sum += macs as f64 * r;
                }
                ("input-sparse", None, ratio.map(|r| 1.0 / r.max(1e-9)))
            } else if let Some(wi) = win.iter().position(|&w| w == c) {
                let (sk, tot) = acc.windows[wi];
                ("window", Some(sk as f64 / tot.max(1) as f64), None)
            } else {
                ("none", None, None)
            };
            consumers.push(ConsumerReport {
                node: node.name.clone(),
                op: node.onnx_op.clone(),
                kernel: kernel.into(),
                macs,
                window_zero_fraction: window,
                predicted_speedup: speedup,
            });
        }
        let t = &g.tensors[s.t];
        let node = &g.nodes[s.node];
        layers.push(LayerReport {
            node: node.name.clone(),
            op: node.onnx_op.clone(),
            output: t.name.clone(),
            relu_family: s.relu,
            shape: t.shape.clone(),
            zero_fraction,
            channel_axis: acc.axis,
            channels: acc.channels,
            channel_zero_fraction: acc.ch_zeros.iter().map(|&z| z as f64 / per_ch).collect(),
            channel_mean_abs: acc.ch_abs.iter().map(|&a| a / per_ch).collect(),
            channel_max: acc.ch_max.clone(),
            dead_channels: (0..acc.channels).filter(|&c| acc.ch_zeros[c] as f64 == per_ch).collect(),
            always_active_channels: (0..acc.channels).filter(|&c| acc.ch_zeros[c] == 0).collect(),
            near_zero: NEAR_ZERO.iter().zip(&acc.near).map(|(&t, &k)| (t, k as f64 / n)).collect(),
            relu_swap_zero_fraction: acc.nonpos as f64 / n,
            consumers,
            predicted_speedup: (macs_sum > 0.0).then(|| macs_sum / time_sum.max(1e-12)),
        });
    }
    let relu: Vec<&LayerReport> = layers.iter().filter(|l| l.relu_family).collect();
    let (z, e) = sites.iter().zip(&accs).filter(|(s, _)| s.relu).fold((0u64, 0u64), |(z, e), (_, a)| (z + a.zeros, e + a.n));
    Ok(ActivationReport {
        model: model.to_string(),
        samples: samples.len(),
        target: table.map(|t| t.target.clone()),
        overall_zero_fraction: z as f64 / e.max(1) as f64,
        mean_layer_zero_fraction: if relu.is_empty() { 0.0 } else { relu.iter().map(|l| l.zero_fraction).sum::<f64>() / relu.len() as f64 },
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Node;
    use sprig_runtime::op::ConvAttrs;

    fn relu_dense_graph() -> Graph {
        // x[1,4] -> Dense(3) -> Relu -> Dense(2)
        let mut g = Graph::default();
        let x = g.add_tensor("x", vec![1, 4], None);
        let w1 = g.add_tensor("w1", vec![3, 4], Some(vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, -1.0, -1.0, -1.0, -1.0]));
        let h = g.add_tensor("h", vec![1, 3], None);
        let r = g.add_tensor("r", vec![1, 3], None);
        let w2 = g.add_tensor("w2", vec![2, 3], Some(vec![1.0; 6]));
        let y = g.add_tensor("y", vec![1, 2], None);
        let dense = |name: &str, i, w, o| Node {
            name: name.into(),
            onnx_op: "Gemm".into(),
            op: Op::Dense { act: Activation::None },
            inputs: vec![i, w],
            outputs: vec![o],
        };
        g.nodes.push(dense("fc1", x, w1, h));
        g.nodes.push(Node {
            name: "relu".into(),
            onnx_op: "Relu".into(),
            op: Op::Unary(UnaryKind::Relu),
            inputs: vec![h],
            outputs: vec![r],
        });
        g.nodes.push(dense("fc2", r, w2, y));
        g.inputs = vec![x];
        g.outputs = vec![y];
        g
    }

    #[test]
    fn counts_exact_zeros_per_layer_and_channel() {
        let g = relu_dense_graph();
        // Channel 0 = x0, channel 1 = x1, channel 2 = -(sum) : with positive inputs always dead.
        let s1 = [1.0f32, -2.0, 0.5, 0.5];
        let s2 = [-1.0f32, 3.0, 0.0, 0.0];
        let rep = analyze(&g, &[&s1, &s2], None, "t").unwrap();
        assert_eq!(rep.layers.len(), 1);
        let l = &rep.layers[0];
        assert_eq!((l.node.as_str(), l.op.as_str(), l.output.as_str()), ("relu", "Relu", "r"));
        assert_eq!(l.channels, 3);
        // s1: [1, 0, 0], s2: [0, 3, 0] (s2's third channel is -2 -> 0).
        assert_eq!(l.channel_zero_fraction, vec![0.5, 0.5, 1.0]);
        assert_eq!(l.dead_channels, vec![2]);
        assert!(l.always_active_channels.is_empty());
        assert!((l.zero_fraction - 4.0 / 6.0).abs() < 1e-12);
        assert!((rep.overall_zero_fraction - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(l.consumers.len(), 1);
        assert_eq!(l.consumers[0].kernel, "input-sparse");
        assert_eq!(l.consumers[0].macs, 6);
        assert_eq!(l.consumers[0].predicted_speedup, None, "no cost table, no prediction");
    }

    #[test]
    fn windows_count_padding_as_zero() {
        // A 1x1x3x3 plane with one non-zero in the corner; 3x3 conv, pad 1: of the 9 windows,
        // those covering (0,0) are the 4 around the corner.
        let mut a = vec![0.0f32; 9];
        a[0] = 1.0;
        let at = ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [1, 1, 1, 1], act: Activation::None };
        assert_eq!(zero_windows(&a, &[1, 1, 3, 3], &[1, 1, 3, 3], &at, &[1, 1, 3, 3]), (5, 9));
        let s2 = ConvAttrs { stride: [2, 2], pads: [0; 4], ..at };
        assert_eq!(zero_windows(&a, &[1, 1, 3, 3], &[1, 1, 2, 2], &s2, &[1, 1, 1, 1]), (0, 1));
    }
}
