//! Activation sparsity in `sprig compress` (ALGORITHMS.md §6.5–6.6): dead channels are removed
//! exactly ([`super::prune::remove_dead_channels`]), and each Dense / 1×1 Conv layer whose inputs
//! are zero often enough on the calibration data — judged by the measured input-sparse cost
//! table of this machine — stores its weight input-major and runs the input-sparse kernel.
//!
//! Guarantee: a layer is switched only when the table predicts at least
//! [`MIN_SPEEDUP`](crate::analyze::MIN_SPEEDUP) at its measured input density (never without a
//! measured table, unless forced with [`InputSparse::All`]); the switch changes no value beyond
//! f32 summation order.

use super::calib::activations;
use super::sparsify::BreakEvenTable;
use crate::analyze::{input_sparse_family, layer_shape, MIN_SPEEDUP};
use crate::ir::{Graph, Storage};
use crate::writer::input_major_ok;
use anyhow::{Context, Result};

/// Which layers get the input-sparse kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputSparse {
    /// Where the measured table predicts a speedup of at least `MIN_SPEEDUP`.
    Auto,
    /// Every eligible layer (for measurements).
    All,
}

/// The decision for one eligible layer.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerChoice {
    /// Node name.
    pub node: String,
    /// Kernel family of the cost table (`dense`, `conv1x1`).
    pub family: String,
    /// Fraction of the layer's inputs that are exactly zero over the calibration samples.
    pub input_zero_fraction: f64,
    /// Dense time / input-sparse time predicted from the table at that density.
    pub predicted_speedup: Option<f64>,
    /// Whether the layer now runs the input-sparse kernel.
    pub input_sparse: bool,
}

/// Chooses input-sparse kernels for the eligible layers of `g` (weights stored plain dense, read
/// by that layer only) and marks the chosen weights [`Storage::InputMajor`].
pub fn select_input_sparse(g: &mut Graph, calib: &[&[f32]], table: Option<&BreakEvenTable>, mode: InputSparse) -> Result<Vec<LayerChoice>> {
    let out = choose(g, calib, table, mode, "")?;
    for c in out.iter().filter(|c| c.input_sparse) {
        if let Some(n) = g.nodes.iter().position(|n| n.name == c.node) {
            let w = g.nodes[n].inputs[1];
            g.tensors[w].storage = Storage::InputMajor;
        }
    }
    Ok(out)
}

/// The layers of `g` (before codebook quantization) worth quantizing input-major for the
/// input-sparse codebook kernel: judged against the codebook decode kernel by the table's
/// `dense-codebook` / `conv1x1-codebook` rows (measured at 4 bits).
pub fn input_major_codebook_layers(
    g: &Graph,
    calib: &[&[f32]],
    table: Option<&BreakEvenTable>,
    mode: InputSparse,
) -> Result<Vec<LayerChoice>> {
    choose(g, calib, table, mode, "-codebook")
}

/// Input zero fraction, predicted speedup (table family + `suffix`) and the decision for every
/// Dense / 1×1 Conv whose plain weight is read by that layer only.
fn choose(g: &Graph, calib: &[&[f32]], table: Option<&BreakEvenTable>, mode: InputSparse, suffix: &str) -> Result<Vec<LayerChoice>> {
    let eligible: Vec<(usize, &'static str)> = (0..g.nodes.len())
        .filter_map(|n| {
            let node = &g.nodes[n];
            let w = *node.inputs.get(1)?;
            let fam = input_sparse_family(g, n, node.inputs[0])?;
            let plain =
                g.tensors[w].storage == Storage::Dense && matches!(node.op, sprig_runtime::Op::Dense { .. } | sprig_runtime::Op::Conv(_));
            (plain && input_major_ok(g, w)).then_some((n, fam))
        })
        .collect();
    if eligible.is_empty() {
        return Ok(Vec::new());
    }
    let inputs: Vec<usize> = eligible.iter().map(|&(n, _)| g.nodes[n].inputs[0]).collect();
    let acts = activations(g, &inputs, calib).context("measuring the layers' input sparsity")?;
    let mut out = Vec::new();
    for (&(n, fam), a) in eligible.iter().zip(&acts) {
        let (z, total) = a.iter().fold((0usize, 0usize), |(z, t), s| (z + s.iter().filter(|&&v| v == 0.0).count(), t + s.len()));
        let zero = z as f64 / total.max(1) as f64;
        let family = format!("{fam}{suffix}");
        let speedup = table
            .and_then(|t| {
                let (o, p) = layer_shape(g, n);
                t.input_sparse_ratio(&family, o, p, 1.0 - zero)
            })
            .map(|r| 1.0 / r.max(1e-9));
        let chosen = match mode {
            InputSparse::All => true,
            InputSparse::Auto => speedup.is_some_and(|s| s >= MIN_SPEEDUP),
        };
        out.push(LayerChoice {
            node: g.nodes[n].name.clone(),
            family,
            input_zero_fraction: zero,
            predicted_speedup: speedup,
            input_sparse: chosen,
        });
    }
    Ok(out)
}

/// How `--act-threshold` picks each layer's threshold.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThresholdMode {
    /// Per layer, the largest candidate whose CETT stays within `eps` (ALGORITHMS.md §6.5).
    Auto {
        /// CETT bound.
        eps: f64,
    },
    /// The same threshold on every eligible layer.
    Fixed(f32),
}

/// The threshold chosen for one ReLU layer.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ThresholdChoice {
    /// Node whose fused ReLU became a threshold (or was left alone).
    pub node: String,
    /// Threshold written (`None`: left a ReLU).
    pub threshold: Option<f32>,
    /// CETT of the threshold over the layer's consumers on the calibration data:
    /// ‖W (a ⊙ 1[0 < a ≤ t])‖ / ‖W a‖ summed over consumer rows.
    pub cett: Option<f64>,
    /// Zero fraction of the layer's output before and after.
    pub zero_before: f64,
    /// Zero fraction after (values at or below the threshold).
    pub zero_after: f64,
    /// Why the layer was left a ReLU, when it was.
    pub skipped: Option<String>,
}

/// The thresholds and what they did to the model's outputs on the calibration data.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ThresholdReport {
    /// How thresholds were chosen.
    pub mode: ThresholdMode,
    /// One entry per fused-ReLU layer, in graph order.
    pub layers: Vec<ThresholdChoice>,
    /// Largest |Δ output| over the calibration samples, relative to the largest |output|.
    pub output_relative_max_error: f64,
    /// Samples whose arg-max output is unchanged (first graph output).
    pub top1_agreement: f64,
}

/// One consumer's calibration rows: per row its group and values, and the group's weight rows.
struct ConsumerRows {
    rows: Vec<(usize, Vec<f64>)>,
    /// Per group: `[outputs][width]`.
    w: Vec<Vec<Vec<f64>>>,
}

fn consumer_rows(g: &Graph, n: usize, acts: &[Vec<f32>], max_rows: usize) -> Result<ConsumerRows> {
    let node = &g.nodes[n];
    let lay = super::calib::RowLayout::of_group(g, n)?;
    let groups = match node.op {
        sprig_runtime::Op::Conv(a) => a.group.max(1) as usize,
        _ => 1,
    };
    let wt = g.tensors[node.inputs[1]].data.as_ref().context("non-constant weight")?;
    let outputs = g.tensors[node.inputs[1]].shape[0];
    let width = lay.width();
    let per_group = outputs / groups;
    let w: Vec<Vec<Vec<f64>>> = (0..groups)
        .map(|gi| {
            (gi * per_group..(gi + 1) * per_group).map(|o| wt[o * width..(o + 1) * width].iter().map(|&v| v as f64).collect()).collect()
        })
        .collect();
    let in_len = acts.first().map_or(0, |a| a.len()) / groups;
    let subset = super::calib::row_subset(lay.rows(), acts.len() * groups, max_rows);
    let mut rows = Vec::new();
    for a in acts {
        for gi in 0..groups {
            for &r in &subset {
                let mut v = Vec::with_capacity(width + 1);
                lay.push_row(&a[gi * in_len..(gi + 1) * in_len], r, &mut v);
                v.pop();
                rows.push((gi, v));
            }
        }
    }
    Ok(ConsumerRows { rows, w })
}

/// (Σ ‖W (a ⊙ 1[0 < a ≤ t])‖², Σ ‖W a‖²) over the rows of `c`.
fn cett_parts(c: &ConsumerRows, t: f64) -> (f64, f64) {
    let (mut num, mut den) = (0.0, 0.0);
    for (gi, x) in &c.rows {
        for wr in &c.w[*gi] {
            let (mut small, mut all) = (0.0, 0.0);
            for (w, &v) in wr.iter().zip(x) {
                all += w * v;
                if v > 0.0 && v <= t {
                    small += w * v;
                }
            }
            num += small * small;
            den += all * all;
        }
    }
    (num, den)
}

/// Replaces the fused ReLU of Conv / Dense layers whose output only feeds Conv / Dense layers by
/// a threshold (FATReLU, ALGORITHMS.md §4.2 step 3, §6.5), layer by layer in graph order on the
/// already-thresholded prefix. `Auto { eps }` takes, per layer, the largest of the candidate
/// thresholds (quantiles 1 % to 50 % of the layer's positive outputs) whose CETT over its
/// consumers stays within `eps`; `Fixed(t)` writes `t` everywhere. This changes the model: the
/// report gives the effect on the calibration outputs.
pub fn choose_thresholds(g: &mut Graph, calib: &[&[f32]], mode: ThresholdMode) -> Result<ThresholdReport> {
    use sprig_runtime::op::Activation;
    use sprig_runtime::Op;
    const QUANTILES: [f64; 9] = [0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5];
    const MAX_ROWS: usize = 2048;
    let before = g.clone();
    let mut layers = Vec::new();
    for p in 0..g.nodes.len() {
        let node = &g.nodes[p];
        let relu = match node.op {
            Op::Conv(a) => a.act == Activation::Relu,
            Op::Dense { act } => act == Activation::Relu,
            _ => false,
        };
        if !relu {
            continue;
        }
        let t = node.outputs[0];
        let consumers = g.consumers(t);
        let eligible = !g.outputs.contains(&t)
            && !consumers.is_empty()
            && consumers.iter().all(|&c| {
                let cn = &g.nodes[c];
                cn.inputs[0] == t
                    && !cn.inputs[1..].contains(&t)
                    && cn.inputs.get(1).is_some_and(|&w| g.is_const(w))
                    && (matches!(cn.op, Op::Dense { .. }) || matches!(cn.op, Op::Conv(_)) && g.tensors[t].shape.len() == 4)
            });
        let acts = activations(g, &[t], calib).with_context(|| format!("calibrating `{}`", g.nodes[p].name))?.remove(0);
        let total: usize = acts.iter().map(|a| a.len()).sum();
        let zeros = acts.iter().flatten().filter(|&&v| v == 0.0).count();
        let zero_before = zeros as f64 / total.max(1) as f64;
        let mut choice = ThresholdChoice {
            node: g.nodes[p].name.clone(),
            threshold: None,
            cett: None,
            zero_before,
            zero_after: zero_before,
            skipped: None,
        };
        if !eligible {
            choice.skipped = Some("its output is not read only by Conv / Dense layers".into());
            layers.push(choice);
            continue;
        }
        let rows: Vec<ConsumerRows> = consumers.iter().map(|&c| consumer_rows(g, c, &acts, MAX_ROWS)).collect::<Result<_>>()?;
        let cett = |t: f64| {
            let (n, d) = rows.iter().map(|r| cett_parts(r, t)).fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
            (n / d.max(1e-300)).sqrt()
        };
        let mut pos: Vec<f32> = acts.iter().flatten().copied().filter(|&v| v > 0.0).collect();
        pos.sort_by(|a, b| a.total_cmp(b));
        let picked = match mode {
            ThresholdMode::Fixed(t) => Some((t, cett(t as f64))),
            ThresholdMode::Auto { eps } => {
                let mut best = None;
                for q in QUANTILES {
                    let Some(&t) = pos.get(((pos.len() as f64 * q) as usize).min(pos.len().saturating_sub(1))) else { break };
                    let c = cett(t as f64);
                    if c > eps {
                        break;
                    }
                    best = Some((t, c));
                }
                best
            }
        };
        match picked {
            Some((t, c)) if t > 0.0 && t.is_finite() => {
                let act = Activation::Threshold { alpha: t };
                match &mut g.nodes[p].op {
                    Op::Conv(a) => a.act = act,
                    Op::Dense { act: a } => *a = act,
                    _ => {}
                }
                let at_or_below = acts.iter().flatten().filter(|&&v| v <= t).count();
                choice.threshold = Some(t);
                choice.cett = Some(c);
                choice.zero_after = at_or_below as f64 / total.max(1) as f64;
            }
            _ => choice.skipped = Some("no candidate threshold keeps the CETT within the bound".into()),
        }
        layers.push(choice);
    }
    // The end-to-end effect on the calibration data.
    let out = before.outputs[0];
    let y0 = activations(&before, &[out], calib)?.remove(0);
    let y1 = activations(g, &[out], calib)?.remove(0);
    let scale = y0.iter().flatten().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE) as f64;
    let err = y0.iter().flatten().zip(y1.iter().flatten()).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
    let argmax = |v: &[f32]| v.iter().enumerate().fold(0, |b, (i, &x)| if x > v[b] { i } else { b });
    let agree = y0.iter().zip(&y1).filter(|(a, b)| argmax(a) == argmax(b)).count() as f64 / y0.len().max(1) as f64;
    Ok(ThresholdReport { mode, layers, output_relative_max_error: err / scale, top1_agreement: agree })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Node;
    use sprig_runtime::op::Activation;
    use sprig_runtime::Op;

    /// x[1,6] -> Dense(8)+ReLU -> Dense(3): deterministic weights.
    fn mlp() -> Graph {
        let mut g = Graph::default();
        let x = g.add_tensor("x", vec![1, 6], None);
        let w1: Vec<f32> = (0..48).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect();
        let w1 = g.add_tensor("w1", vec![8, 6], Some(w1));
        let b1 = g.add_tensor("b1", vec![8], Some((0..8).map(|i| 0.1 * i as f32 - 0.3).collect()));
        let h = g.add_tensor("h", vec![1, 8], None);
        let w2: Vec<f32> = (0..24).map(|i| ((i * 11 % 13) as f32 - 6.0) / 6.0).collect();
        let w2 = g.add_tensor("w2", vec![3, 8], Some(w2));
        let y = g.add_tensor("y", vec![1, 3], None);
        g.nodes.push(Node {
            name: "fc1".into(),
            onnx_op: "Gemm".into(),
            op: Op::Dense { act: Activation::Relu },
            inputs: vec![x, w1, b1],
            outputs: vec![h],
        });
        g.nodes.push(Node {
            name: "fc2".into(),
            onnx_op: "Gemm".into(),
            op: Op::Dense { act: Activation::None },
            inputs: vec![h, w2],
            outputs: vec![y],
        });
        g.inputs = vec![x];
        g.outputs = vec![y];
        g
    }

    fn samples() -> Vec<Vec<f32>> {
        (0..40).map(|s| (0..6).map(|i| (((s * 7 + i * 13) % 23) as f32 - 11.0) / 7.0).collect()).collect()
    }

    #[test]
    fn a_fixed_threshold_zeroes_exactly_the_values_at_or_below_it() {
        let xs = samples();
        let refs: Vec<&[f32]> = xs.iter().map(|v| &v[..]).collect();
        let g0 = mlp();
        let h0 = activations(&g0, &[3], &refs).unwrap().remove(0);
        let mut g = mlp();
        let r = choose_thresholds(&mut g, &refs, ThresholdMode::Fixed(0.4)).unwrap();
        assert_eq!(g.nodes[0].op, Op::Dense { act: Activation::Threshold { alpha: 0.4 } });
        assert_eq!(r.layers.len(), 1);
        let h1 = activations(&g, &[3], &refs).unwrap().remove(0);
        for (a, b) in h0.iter().flatten().zip(h1.iter().flatten()) {
            assert_eq!(*b, if *a > 0.4 { *a } else { 0.0 });
        }
        let z = |h: &[Vec<f32>]| h.iter().flatten().filter(|&&v| v == 0.0).count() as f64 / (h.len() * 8) as f64;
        assert!((r.layers[0].zero_before - z(&h0)).abs() < 1e-12 && (r.layers[0].zero_after - z(&h1)).abs() < 1e-12);
        assert!(r.layers[0].zero_after > r.layers[0].zero_before);
    }

    #[test]
    fn auto_thresholds_respect_the_bound_and_grow_with_it() {
        let xs = samples();
        let refs: Vec<&[f32]> = xs.iter().map(|v| &v[..]).collect();
        let mut last = 0.0f32;
        for eps in [1e-3, 1e-2, 0.1, 0.5] {
            let mut g = mlp();
            let r = choose_thresholds(&mut g, &refs, ThresholdMode::Auto { eps }).unwrap();
            let l = &r.layers[0];
            let t = l.threshold.unwrap_or(0.0);
            assert!(l.cett.is_none_or(|c| c <= eps), "eps {eps}: CETT {:?}", l.cett);
            assert!(t >= last, "eps {eps}: threshold {t} below {last} of a tighter bound");
            last = t;
            // The CETT reported is the relative change of the consumer's linear part.
            if let Some(c) = l.cett {
                let h0 = activations(&mlp(), &[3], &refs).unwrap().remove(0);
                let w2 = mlp().tensors[4].data.clone().unwrap();
                let (mut num, mut den) = (0.0f64, 0.0f64);
                for h in &h0 {
                    for o in 0..3 {
                        let all: f64 = (0..8).map(|i| w2[o * 8 + i] as f64 * h[i] as f64).sum();
                        let small: f64 = (0..8).filter(|&i| h[i] > 0.0 && h[i] <= t).map(|i| w2[o * 8 + i] as f64 * h[i] as f64).sum();
                        num += small * small;
                        den += all * all;
                    }
                }
                assert!((c - (num / den).sqrt()).abs() < 1e-9);
            }
        }
        assert!(last > 0.0, "the loosest bound allows some threshold");
    }
}
