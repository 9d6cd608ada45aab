//! Structured (channel/filter) pruning of a graph, post-training, with unlabeled calibration data
//! (ALGORITHMS.md §6.1–6.3): for each channel space in graph order, statistics of its consumers'
//! inputs from the already-pruned prefix and targets from the dense model; exactly k channels
//! kept (envelope ranking or magnitude ranking); the consumers refit by least squares, with a
//! bias column that absorbs the mean of what was removed; then the channels are physically
//! removed. Channels that are zero on every calibration sample are removed first, exactly.

use super::calib::split_samples;
use super::calib::{activations, row_subset, RowLayout};
use super::channels::{channel_spaces, remove_channels, ChannelSpace};
use super::layer::{envelope_select, refit_all, top_k, EnvelopeOptions, Problem, Stats, REFIT_DAMP};
use super::sparsify::DAMPS;
use crate::ir::{Graph, TensorId};
use anyhow::{bail, Context, Result};
use nalgebra::DMatrix;
use sprig_runtime::Op;

/// How channels are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Method {
    /// WGSEF prox-gradient ranking on the layer-wise loss, then least-squares refit.
    Envelope,
    /// L1 norm of the producers' filters, then the same refit.
    Magnitude,
    /// L1 norm of the producers' filters, no refit (the classic baseline).
    MagnitudeNoRefit,
}

/// How much to prune.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Amount {
    /// Remove this fraction of every space's channels (0..1).
    Fraction(f64),
    /// Keep this fraction of the model's MACs, allocated across spaces by least marginal
    /// reconstruction error per MAC (ALGORITHMS.md §6.3).
    Macs(f64),
    /// Keep this fraction of the model's weight parameters, allocated the same way.
    Params(f64),
    /// Bring the static arena (activation memory, [`crate::plan::plan`]) to at most this many
    /// bytes: steps that shrink the arena are taken by least error increase per byte saved, so
    /// only the spaces whose tensors make the peak lose channels.
    Arena(u64),
}

/// Pruning settings.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Selection method.
    pub method: Method,
    /// How much.
    pub amount: Amount,
    /// Calibration rows per consumer at most (positions are subsampled evenly).
    pub max_rows: usize,
    /// Envelope settings.
    pub envelope: EnvelopeOptions,
    /// After pruning, refit every Conv/Dense layer in graph order on the pruned prefix's inputs
    /// against the dense model's outputs (corrects the error that accumulates downstream).
    pub polish: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            method: Method::Envelope,
            amount: Amount::Fraction(0.5),
            max_rows: 20_000,
            envelope: EnvelopeOptions::default(),
            polish: true,
        }
    }
}

/// What happened to one channel space.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SpaceReport {
    /// Names of the nodes producing the space.
    pub producers: Vec<String>,
    /// Channels before.
    pub channels: usize,
    /// Channels zero on every calibration sample (removed exactly).
    pub dead: usize,
    /// Channels kept.
    pub kept: usize,
    /// Mean relative reconstruction error of the consumers after refit (0 = exact).
    pub relative_error: f64,
}

/// The result of [`prune`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct PruneReport {
    /// Method used.
    pub method: Method,
    /// Per pruned space.
    pub spaces: Vec<SpaceReport>,
    /// Spaces left alone, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// A weight layer's matrix `[rows, width + 1]` (bias last) and the tensors holding it.
pub(super) fn layer_matrix(g: &Graph, n: usize) -> Result<DMatrix<f64>> {
    let node = &g.nodes[n];
    let w = g.tensors[node.inputs[1]].data.as_ref().with_context(|| format!("node `{}` has non-constant weights", node.name))?;
    let rows = match node.op {
        Op::Conv(_) => g.tensors[node.inputs[1]].shape[0],
        Op::Dense { .. } => g.tensors[node.inputs[1]].shape[0],
        _ => bail!("node `{}` is not a weight layer", node.name),
    };
    let width = w.len() / rows.max(1);
    let bias = node.inputs.get(2).and_then(|&b| g.tensors[b].data.as_ref());
    Ok(DMatrix::from_fn(rows, width + 1, |r, c| if c < width { w[r * width + c] as f64 } else { bias.map_or(0.0, |b| b[r] as f64) }))
}

/// Writes `m` (`[rows, width + 1]`, bias last) back into node `n`, adding a bias input when the
/// node had none and the bias column is not zero.
pub(super) fn set_layer_matrix(g: &mut Graph, n: usize, m: &DMatrix<f64>) {
    let rows = m.nrows();
    let width = m.ncols() - 1;
    let w: Vec<f32> = (0..rows).flat_map(|r| (0..width).map(move |c| (r, c))).map(|(r, c)| m[(r, c)] as f32).collect();
    let b: Vec<f32> = (0..rows).map(|r| m[(r, width)] as f32).collect();
    let wt = g.nodes[n].inputs[1];
    g.tensors[wt].data = Some(w);
    match g.nodes[n].inputs.get(2).copied() {
        Some(bt) => g.tensors[bt].data = Some(b),
        None if b.iter().any(|&v| v != 0.0) => {
            let name = format!("{}.bias", g.nodes[n].name);
            let bt = g.add_tensor(name, vec![rows], Some(b));
            g.nodes[n].inputs.push(bt);
        }
        None => {}
    }
}

/// L1 norm of each channel's filters over the space's producers.
fn filter_l1(g: &Graph, s: &ChannelSpace) -> Vec<f64> {
    let mut score = vec![0.0; s.channels];
    for &p in &s.producers {
        let node = &g.nodes[p];
        if let Some(w) = g.tensors[node.inputs[1]].data.as_ref() {
            let per = w.len() / s.channels.max(1);
            for (c, sc) in score.iter_mut().enumerate() {
                *sc += w[c * per..(c + 1) * per].iter().map(|v| v.abs() as f64).sum::<f64>();
            }
        }
    }
    score
}

fn space_name(g: &Graph, s: &ChannelSpace) -> String {
    s.producers.iter().map(|&p| g.nodes[p].name.clone()).collect::<Vec<_>>().join("+")
}

/// Prunes `g` (an optimised graph) with calibration samples `calib` (one input each).
pub fn prune(g: &Graph, calib: &[&[f32]], opts: &PruneOptions) -> Result<(Graph, PruneReport)> {
    if calib.is_empty() {
        bail!("no calibration samples");
    }
    match opts.amount {
        Amount::Fraction(f) => {
            if !(0.0..1.0).contains(&f) {
                bail!("prune fraction {f} is outside [0, 1)");
            }
            run(g, calib, opts, &|c, _| ((c as f64) * (1.0 - f)).round().max(1.0) as usize)
        }
        Amount::Macs(f) | Amount::Params(f) => {
            if !(f > 0.0 && f <= 1.0) {
                bail!("the budget {f} (fraction kept) is outside (0, 1]");
            }
            // Dead channels first (exact), then the allocation on what is left.
            let (g1, _) = run(g, calib, opts, &|c, _| c)?;
            let plan = allocate(g, &g1, calib, opts)?;
            run(g, calib, opts, &|c, key| plan.get(&key).copied().unwrap_or(c))
        }
        Amount::Arena(_) => {
            let (g1, _) = run(g, calib, opts, &|c, _| c)?;
            let plan = allocate(g, &g1, calib, opts)?;
            run(g, calib, opts, &|c, key| plan.get(&key).copied().unwrap_or(c))
        }
    }
}

/// Arena bytes of `g` with each space's channel count set (shapes only: `light` is `g` without
/// constant payloads, `spaces[i]` = (tensors, axes) of curve i, `counts[i]` its channels), and the
/// excess: the sum over operators of the bytes live during it beyond `limit`. The excess falls
/// with every step that shrinks a buffer live where memory is over the limit, even while another
/// operator still sets the arena.
fn arena_with(light: &Graph, spaces: &[(Vec<TensorId>, Vec<usize>)], counts: &[usize], limit: u64) -> (usize, u64) {
    let mut g = light.clone();
    for ((ts, axes), &k) in spaces.iter().zip(counts) {
        for (&t, &ax) in ts.iter().zip(axes) {
            if let Some(d) = g.tensors[t].shape.get_mut(ax) {
                *d = k;
            }
        }
    }
    let p = crate::plan::plan(&g);
    let mut live = vec![0u64; g.nodes.len().max(1)];
    for t in 0..g.tensors.len() {
        if p.offsets[t].is_some() && p.alias[t].is_none() {
            let bytes = (4 * g.tensors[t].numel() as u64).div_ceil(16) * 16;
            let end = p.last[t].min(live.len() - 1);
            for l in &mut live[p.first[t]..=end] {
                *l += bytes;
            }
        }
    }
    (p.arena_len, live.iter().map(|&l| l.saturating_sub(limit)).sum())
}

/// Arena-driven allocation: from every curve at its top level, repeatedly takes the one-level
/// step that shrinks the arena with the least error increase per byte, until the arena is at
/// most `limit` or no step shrinks it. Returns the arena reached.
fn greedy_arena(g1: &Graph, curves: &mut [Curve], counts: &[Vec<usize>], spaces: &[(Vec<TensorId>, Vec<usize>)], limit: u64) -> usize {
    let mut light = g1.clone();
    for t in &mut light.tensors {
        if t.data.is_some() {
            t.data = Some(Vec::new());
        }
    }
    let at = |curves: &[Curve]| -> Vec<usize> { curves.iter().zip(counts).map(|(c, k)| k[c.level]).collect() };
    let (mut cur, mut excess) = arena_with(&light, spaces, &at(curves), limit);
    while cur as u64 > limit {
        let mut best: Option<(usize, f64, usize, u64)> = None;
        for i in 0..curves.len() {
            let c = &curves[i];
            if c.level == 0 {
                continue;
            }
            let mut ks = at(curves);
            ks[i] = counts[i][c.level - 1];
            let (a, x) = arena_with(&light, spaces, &ks, limit);
            let gain = cur.saturating_sub(a) as u64 + excess.saturating_sub(x);
            if gain == 0 {
                continue;
            }
            let r = (c.err[c.level - 1] - c.err[c.level]).max(0.0) / gain as f64;
            if best.is_none_or(|b| r < b.1) {
                best = Some((i, r, a, x));
            }
        }
        let Some((i, _, a, x)) = best else { break };
        curves[i].level -= 1;
        (cur, excess) = (a, x);
    }
    cur
}

/// Removes exactly the channels that are zero at every consumer input on every calibration
/// sample (dead ReLU channels, ALGORITHMS.md §6.5), with the same coupled surgery as [`prune`]
/// and no refit: on the calibration data the outputs are unchanged.
pub fn remove_dead_channels(g: &Graph, calib: &[&[f32]]) -> Result<(Graph, PruneReport)> {
    if calib.is_empty() {
        bail!("no calibration samples");
    }
    let opts = PruneOptions { polish: false, ..PruneOptions::default() };
    run(g, calib, &opts, &|c, _| c)
}

/// Total MACs and weight parameters of the Conv/Dense layers of `g`.
pub fn layer_costs(g: &Graph) -> (u64, u64) {
    let (mut macs, mut params) = (0u64, 0u64);
    for n in &g.nodes {
        if let Op::Conv(_) | Op::Dense { .. } = n.op {
            let w = g.tensors[n.inputs[1]].numel() as u64;
            let out = &g.tensors[n.outputs[0]].shape;
            let rows = g.tensors[n.inputs[1]].shape[0].max(1) as u64;
            let positions = out.iter().product::<usize>() as u64 / rows;
            macs += w * positions;
            params += w + n.inputs.get(2).map_or(0, |&b| g.tensors[b].numel() as u64);
        }
    }
    (macs, params)
}

/// Channels to keep per space (keyed by its first producer) so the pruned model meets the
/// budget: per-space error curves (the relative error at the model's outputs, [`OutputProbe`],
/// when only that space keeps the top j/8 of its live channels by the method's ranking, with its
/// consumers refit), then greedy steps with the least error increase per MAC (or parameter)
/// saved until the budget is met.
fn allocate(dense: &Graph, g1: &Graph, calib: &[&[f32]], opts: &PruneOptions) -> Result<std::collections::HashMap<usize, usize>> {
    const LEVELS: usize = 8;
    let (by_macs, frac) = match opts.amount {
        Amount::Macs(f) => (true, f),
        Amount::Params(f) => (false, f),
        Amount::Arena(_) => (true, 1.0),
        Amount::Fraction(_) => bail!("internal: allocation needs a budget"),
    };
    let (m0, p0) = layer_costs(dense);
    let budget = frac * if by_macs { m0 } else { p0 } as f64;
    let (m1, p1) = layer_costs(g1);
    let total = if by_macs { m1 } else { p1 } as f64;
    let mut plan = std::collections::HashMap::new();
    let arena_limit = match opts.amount {
        Amount::Arena(b) => Some(b),
        _ => None,
    };
    if arena_limit.is_none() && total <= budget {
        return Ok(plan);
    }
    if arena_limit.is_some_and(|b| crate::plan::plan(g1).arena_len as u64 <= b) {
        return Ok(plan);
    }
    let mut space_tensors = Vec::new();
    let alive = all_rows(g1);
    let mut curves = Vec::new();
    let probe = OutputProbe::new(g1, calib)?;
    for s in channel_spaces(g1) {
        if s.prunable.is_err() || s.channels < 2 {
            continue;
        }
        let key = s.producers.iter().copied().min().unwrap_or(usize::MAX);
        let live: Vec<usize> = (0..s.channels).collect();
        let inputs: Vec<TensorId> = s.consumers.iter().map(|q| g1.nodes[q.node].inputs[0]).collect();
        let acts = activations(g1, &inputs, calib)?;
        let lp = build_problems(g1, g1, &alive, &s, &live, &acts, &acts, opts.max_rows)?;
        let score = ranking(g1, &s, &live, &lp.problems, &lp.starts, &lp.cols, (s.channels / 2).max(1), opts)?;
        // Per fold: the consumers' problems on the other folds' samples (to refit) and on the
        // fold's own (to pick the ridge), so each level's error is measured on samples its refit
        // never saw. A refit scored on its own samples looks best exactly where it overfits (a
        // classifier refit on few samples).
        let folds: Vec<(Vec<usize>, LayerProblems, LayerProblems)> = cv_folds(calib.len())
            .into_iter()
            .map(|(fit, held)| -> Result<_> {
                let pick = |idx: &[usize]| -> Vec<Samples> { acts.iter().map(|a| idx.iter().map(|&i| a[i].clone()).collect()).collect() };
                let (fa, ha) = (pick(&fit), pick(&held));
                let f = build_problems(g1, g1, &alive, &s, &live, &fa, &fa, opts.max_rows)?;
                let h = build_problems(g1, g1, &alive, &s, &live, &ha, &ha, opts.max_rows)?;
                Ok((held, f, h))
            })
            .collect::<Result<_>>()?;
        let mut counts = Vec::new();
        let mut err = Vec::new();
        for j in 1..=LEVELS {
            let k = (s.channels * j).div_ceil(LEVELS).max(1);
            let keep = top_k(&score, k);
            counts.push(k);
            if k == s.channels {
                err.push(0.0);
                continue;
            }
            // The error this level causes at the model's outputs, not in the consumers alone: a
            // space feeding the classifier costs more per unit of local error than one early in
            // the network (ALGORITHMS.md §6.3, allocation by marginal loss).
            let remove: Vec<usize> = (0..s.channels).filter(|ch| keep.binary_search(ch).is_err()).collect();
            let mut e = 0.0;
            for (held, fit, val) in &folds {
                // The refit whose ridge has the least held-out layer loss.
                let refit = |dm: f64| refit_all(&fit.problems, &fit.cols, &keep, &fit.always, &fit.starts, dm);
                let w = DAMPS
                    .iter()
                    .map(|&dm| {
                        let w = refit(dm);
                        (val.problems.iter().zip(&w).map(|(p, w)| p.loss(w)).sum::<f64>(), w)
                    })
                    .min_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal))
                    .map_or_else(|| refit(REFIT_DAMP), |x| x.1);
                let mut trial = g1.clone();
                for (q, w) in s.consumers.iter().zip(&w) {
                    set_layer_matrix(&mut trial, q.node, w);
                }
                remove_channels(&mut trial, &s, &remove).with_context(|| format!("trial pruning of `{}`", space_name(g1, &s)))?;
                e += probe.error(&trial, calib, held)? / folds.len() as f64;
            }
            err.push(e);
        }
        let (mc, pc) = super::channels::channel_cost(g1, &s);
        let unit = if by_macs { mc } else { pc } as f64;
        let cost = counts.iter().map(|&k| k as f64 * unit).collect();
        curves.push((key, s.channels, counts, Curve { cost, err, level: LEVELS - 1 }));
        space_tensors.push((s.tensors.clone(), s.axes.clone()));
    }
    let mut cs: Vec<Curve> = curves.iter().map(|c| c.3.clone()).collect();
    match arena_limit {
        Some(limit) => {
            let counts: Vec<Vec<usize>> = curves.iter().map(|c| c.2.clone()).collect();
            greedy_arena(g1, &mut cs, &counts, &space_tensors, limit);
        }
        None => {
            greedy(&mut cs, total, budget);
            refine(&mut cs, &|lv: &[usize]| exact_cost(g1, &curves, lv, by_macs), budget)?;
        }
    }
    for (c, lv) in curves.iter().zip(&cs) {
        if c.2[lv.level] < c.1 {
            plan.insert(c.0, c.2[lv.level]);
        }
    }
    Ok(plan)
}

/// The exact MACs (or parameters) of `g1` with the space of each curve `(key, channels, counts,
/// _)` cut to `counts[levels[i]]` channels. Spaces shrink each other's layers (a Conv between two
/// pruned spaces loses rows and columns), which the per-space costs of [`greedy`] miss.
fn exact_cost(g1: &Graph, curves: &[(usize, usize, Vec<usize>, Curve)], levels: &[usize], by_macs: bool) -> Result<f64> {
    let mut t = g1.clone();
    for ((key, c, counts, _), &lv) in curves.iter().zip(levels) {
        let k = counts[lv];
        if k >= *c {
            continue;
        }
        let Some(s) = channel_spaces(&t).into_iter().find(|s| s.producers.iter().copied().min() == Some(*key)) else { continue };
        // Costs do not depend on which channels go.
        let remove: Vec<usize> = (k.min(s.channels)..s.channels).collect();
        remove_channels(&mut t, &s, &remove).context("costing an allocation")?;
    }
    let (m, p) = layer_costs(&t);
    Ok(if by_macs { m } else { p } as f64)
}

/// Corrects an allocation from [`greedy`] with the exact `cost` of a choice of levels: lowers
/// levels (least error increase per unit of exact cost saved) while over `budget`, then raises
/// them (largest error decrease per unit of exact cost added) while one more step fits. Returns
/// the exact cost reached.
fn refine(cs: &mut [Curve], cost: &dyn Fn(&[usize]) -> Result<f64>, budget: f64) -> Result<f64> {
    let levels = |cs: &[Curve]| cs.iter().map(|c| c.level).collect::<Vec<_>>();
    let mut t = cost(&levels(cs))?;
    while t > budget {
        let mut best: Option<(usize, f64, f64)> = None;
        for i in 0..cs.len() {
            if cs[i].level == 0 {
                continue;
            }
            let mut lv = levels(cs);
            lv[i] -= 1;
            let ti = cost(&lv)?;
            if ti >= t {
                continue;
            }
            let r = (cs[i].err[lv[i]] - cs[i].err[cs[i].level]).max(0.0) / (t - ti);
            if best.is_none_or(|b| r < b.1) {
                best = Some((i, r, ti));
            }
        }
        let Some((i, _, ti)) = best else { return Ok(t) };
        cs[i].level -= 1;
        t = ti;
    }
    loop {
        let mut best: Option<(usize, f64, f64)> = None;
        for i in 0..cs.len() {
            let c = &cs[i];
            if c.level + 1 >= c.err.len() || c.err[c.level] <= c.err[c.level + 1] {
                continue;
            }
            let mut lv = levels(cs);
            lv[i] += 1;
            let ti = cost(&lv)?;
            if ti > budget {
                continue;
            }
            let r = (c.err[c.level] - c.err[c.level + 1]) / (ti - t).max(f64::MIN_POSITIVE);
            if best.is_none_or(|b| r > b.1) {
                best = Some((i, r, ti));
            }
        }
        let Some((i, _, ti)) = best else { return Ok(t) };
        cs[i].level += 1;
        t = ti;
    }
}

/// The outputs an allocation compares against the model before pruning. A Softmax output is
/// read at its input (the logits), where a change to a confident sample still registers.
pub(super) struct OutputProbe {
    tensors: Vec<TensorId>,
    reference: Vec<Samples>,
}

impl OutputProbe {
    /// The probe of `g`'s outputs and their values on `calib`.
    pub(super) fn new(g: &Graph, calib: &[&[f32]]) -> Result<OutputProbe> {
        let tensors: Vec<TensorId> = g
            .outputs
            .iter()
            .map(|&t| match g.nodes.iter().find(|n| n.outputs.contains(&t)) {
                Some(n) if matches!(n.op, Op::Softmax { .. }) => n.inputs[0],
                _ => t,
            })
            .collect();
        let reference = activations(g, &tensors, calib)?;
        Ok(OutputProbe { tensors, reference })
    }

    /// Σ over the probed tensors of ‖y − y_ref‖² / ‖y_ref‖² on the samples `idx` of `calib`, for
    /// a graph `g` with the same outputs (shapes included) as the probe's.
    pub(super) fn error(&self, g: &Graph, calib: &[&[f32]], idx: &[usize]) -> Result<f64> {
        let samples: Vec<&[f32]> = idx.iter().map(|&i| calib[i]).collect();
        let got = activations(g, &self.tensors, &samples)?;
        let mut total = 0.0;
        for (y, r) in got.iter().zip(&self.reference) {
            let (mut num, mut den) = (0.0f64, 0.0f64);
            for (ys, &i) in y.iter().zip(idx) {
                for (&a, &b) in ys.iter().zip(&r[i]) {
                    num += (a as f64 - b as f64).powi(2);
                    den += (b as f64).powi(2);
                }
            }
            total += if num.is_finite() { num / den.max(f64::MIN_POSITIVE) } else { f64::MAX };
        }
        Ok(total)
    }
}

/// Four cross-validation folds of `n` samples as (fit, held-out) index lists, sample i held out
/// in fold i mod 4; below 8 samples one fold that fits and scores on everything.
pub(super) fn cv_folds(n: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
    if n < 8 {
        return vec![((0..n).collect(), (0..n).collect())];
    }
    (0..4).map(|f| ((0..n).filter(|i| i % 4 != f).collect(), (0..n).filter(|i| i % 4 == f).collect())).collect()
}

/// One layer's (or space's) error curve for [`greedy`]: at level l it costs `cost[l]` (MACs or
/// parameters, ascending in l) with relative error `err[l]`; `level` is the chosen level.
#[derive(Clone, Debug)]
pub(super) struct Curve {
    pub cost: Vec<f64>,
    pub err: Vec<f64>,
    pub level: usize,
}

/// Lowers levels one step at a time, always the step with the least error increase per unit of
/// cost saved, until `total` (the summed cost at the current levels, plus anything fixed) is at
/// most `budget` or no step is left; then gives back what the last coarse steps overshot: raises
/// levels, the step with the largest error decrease per unit of cost first, while the total stays
/// within the budget. Returns the final total (at most `budget` whenever the first phase got
/// there).
pub(super) fn greedy(curves: &mut [Curve], total: f64, budget: f64) -> f64 {
    let total = lower(curves, total, budget);
    if total > budget {
        return total;
    }
    // The give-back is [`refine`]'s, on the additive cost: what is fixed plus each curve's
    // cost at its level.
    let costs: Vec<Vec<f64>> = curves.iter().map(|c| c.cost.clone()).collect();
    let fixed = total - curves.iter().map(|c| c.cost[c.level]).sum::<f64>();
    let additive = |lv: &[usize]| -> Result<f64> { Ok(fixed + costs.iter().zip(lv).map(|(c, &l)| c[l]).sum::<f64>()) };
    refine(curves, &additive, budget).unwrap_or(total)
}

/// The first phase of [`greedy`].
fn lower(curves: &mut [Curve], mut total: f64, budget: f64) -> f64 {
    while total > budget {
        let best = curves
            .iter()
            .enumerate()
            .filter(|(_, c)| c.level > 0 && c.cost[c.level] > c.cost[c.level - 1])
            .map(|(i, c)| {
                let saved = c.cost[c.level] - c.cost[c.level - 1];
                (i, (c.err[c.level - 1] - c.err[c.level]).max(0.0) / saved, saved)
            })
            .min_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
        let Some((i, _, saved)) = best else { break };
        curves[i].level -= 1;
        total -= saved;
    }
    total
}

/// Score per live channel (higher = keep): the envelope ranking or the filters' L1 norm.
#[allow(clippy::too_many_arguments)]
fn ranking(
    g: &Graph,
    s: &ChannelSpace,
    live: &[usize],
    problems: &[Problem],
    starts: &[DMatrix<f64>],
    cols: &super::layer::ChannelColumns,
    k: usize,
    opts: &PruneOptions,
) -> Result<Vec<f64>> {
    Ok(match opts.method {
        Method::Envelope => envelope_select(problems, starts, cols, &vec![1.0; live.len()], k.clamp(1, live.len()), &opts.envelope)?.score,
        Method::Magnitude | Method::MagnitudeNoRefit => {
            let l1 = filter_l1(g, s);
            live.iter().map(|&ch| l1[ch]).collect()
        }
    })
}

/// The alive output rows of every weight layer of `g`: all of them.
pub(super) fn all_rows(g: &Graph) -> Vec<Vec<usize>> {
    g.nodes
        .iter()
        .map(|n| match n.op {
            Op::Conv(_) | Op::Dense { .. } => (0..g.tensors[n.inputs[1]].shape[0]).collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// Weight layer `node`'s problem: its inputs in `cur` (`acts`, one per sample) against the dense
/// model's output rows `rows` computed from the dense inputs (`acts_dense`).
pub(super) fn layer_problem(
    cur: &Graph,
    dense: &Graph,
    rows: &[usize],
    node: usize,
    acts: &[Vec<f32>],
    acts_dense: &[Vec<f32>],
    max_rows: usize,
) -> Result<Problem> {
    let lay = RowLayout::of(cur, node)?;
    let lay_d = RowLayout::of(dense, node)?;
    let subset = row_subset(lay.rows(), acts.len(), max_rows);
    let mut st = Stats::new(lay.width() + 1, lay_d.width() + 1);
    let (mut x, mut xd) = (Vec::new(), Vec::new());
    for (a, ad) in acts.iter().zip(acts_dense) {
        x.clear();
        xd.clear();
        for &r in &subset {
            lay.push_row(a, r, &mut x);
            lay_d.push_row(ad, r, &mut xd);
        }
        st.add(&x, &xd, subset.len());
    }
    let w0_full = layer_matrix(dense, node)?;
    let w0 = DMatrix::from_fn(rows.len(), w0_full.ncols(), |r, cc| w0_full[(rows[r], cc)]);
    st.problem(&w0)
}

/// A tensor's values on each calibration sample.
type Samples = Vec<Vec<f32>>;

/// The consumers' layer problems over the live channels of `s`.
struct LayerProblems {
    problems: Vec<Problem>,
    starts: Vec<DMatrix<f64>>,
    cols: super::layer::ChannelColumns,
    always: Vec<Vec<usize>>,
}

#[allow(clippy::too_many_arguments)]
fn build_problems(
    cur: &Graph,
    dense: &Graph,
    alive: &[Vec<usize>],
    s: &ChannelSpace,
    live: &[usize],
    acts: &[Vec<Vec<f32>>],
    acts_dense: &[Vec<Vec<f32>>],
    max_rows: usize,
) -> Result<LayerProblems> {
    let mut lp = LayerProblems { problems: Vec::new(), starts: Vec::new(), cols: Vec::new(), always: Vec::new() };
    for (j, q) in s.consumers.iter().enumerate() {
        let lay = RowLayout::of(cur, q.node)?;
        lp.problems.push(layer_problem(cur, dense, &alive[q.node], q.node, &acts[j], &acts_dense[j], max_rows)?);
        lp.starts.push(layer_matrix(cur, q.node)?);
        // Columns per channel in the layer's row layout (kh·kw taps for a Conv, the flatten
        // block for a Dense).
        let per = lay.width() / s.channels.max(1);
        lp.cols.push(live.iter().map(|&ch| (ch * per..(ch + 1) * per).collect()).collect());
        lp.always.push(vec![lay.width()]);
    }
    Ok(lp)
}

/// One sequential pass; `keep(c, key)` gives the channels to keep of a space of `c` channels
/// whose first producer is node `key`.
fn run(g: &Graph, calib: &[&[f32]], opts: &PruneOptions, keep_of: &dyn Fn(usize, usize) -> usize) -> Result<(Graph, PruneReport)> {
    let dense = g.clone();
    let mut cur = g.clone();
    let mut report = PruneReport { method: opts.method, spaces: Vec::new(), skipped: Vec::new() };
    // Original output channels still alive, per weight node (to pick the dense targets' rows).
    let mut alive = all_rows(&cur);
    let mut order: Vec<ChannelSpace> = channel_spaces(&cur);
    order.sort_by_key(|s| s.producers.iter().copied().min().unwrap_or(usize::MAX));
    let keys: Vec<usize> = order.iter().map(|s| s.producers.iter().copied().min().unwrap_or(usize::MAX)).collect();
    for key in keys {
        // Re-derive the space on the current graph (shapes change as earlier spaces shrink).
        let Some(s) = channel_spaces(&cur).into_iter().find(|s| s.producers.iter().copied().min() == Some(key)) else { continue };
        let name = space_name(&cur, &s);
        if let Err(reason) = &s.prunable {
            report.skipped.push((name, reason.clone()));
            continue;
        }
        let c = s.channels;
        let k_target = keep_of(c, key);
        let inputs: Vec<TensorId> = s.consumers.iter().map(|q| cur.nodes[q.node].inputs[0]).collect();
        let acts = activations(&cur, &inputs, calib).with_context(|| format!("calibrating `{name}`"))?;
        let acts_dense = activations(&dense, &inputs, calib).with_context(|| format!("calibrating `{name}` (dense)"))?;

        // Dead channels: zero at every consumer input on every sample.
        let mut dead = vec![true; c];
        for (j, q) in s.consumers.iter().enumerate() {
            let lay = RowLayout::of(&cur, q.node)?;
            let spatial = lay_channel_len(&lay, &cur, q.node, c);
            for x in &acts[j] {
                for (ch, d) in dead.iter_mut().enumerate() {
                    if *d && x[ch * spatial..(ch + 1) * spatial].iter().any(|&v| v != 0.0) {
                        *d = false;
                    }
                }
            }
        }
        let n_dead = dead.iter().filter(|&&d| d).count();
        let live: Vec<usize> = (0..c).filter(|&ch| !dead[ch]).collect();
        let k = k_target.min(live.len()).max(1.min(live.len()));

        let (keep, rel_err) = if k == live.len() || live.is_empty() {
            (live.clone(), 0.0)
        } else {
            let lp = build_problems(&cur, &dense, &alive, &s, &live, &acts, &acts_dense, opts.max_rows)?;
            // Fit / held-out problems for the choices the fit data cannot make (path stage, ridge).
            let split = |v: &[Samples]| -> Option<(Vec<Samples>, Vec<Samples>)> {
                let parts: Vec<_> = v.iter().map(|a| split_samples(a)).collect::<Option<_>>()?;
                Some(parts.into_iter().unzip())
            };
            let held = match (split(&acts), split(&acts_dense)) {
                (Some((fa, va)), Some((fd, vd))) => Some((
                    build_problems(&cur, &dense, &alive, &s, &live, &fa, &fd, opts.max_rows)?,
                    build_problems(&cur, &dense, &alive, &s, &live, &va, &vd, opts.max_rows)?,
                )),
                _ => None,
            };
            let (fit, val) = match &held {
                Some((f, v)) => (f, v),
                None => (&lp, &lp),
            };
            let val_loss = |w: &[DMatrix<f64>]| -> f64 { val.problems.iter().zip(w).map(|(p, w)| p.loss(w)).sum() };
            let score = match opts.method {
                // The envelope's continuation path on the fit samples; the stage whose top-k
                // refit has the least held-out loss (ALGORITHMS.md §2.6).
                Method::Envelope => {
                    let sel = envelope_select(
                        &fit.problems,
                        &fit.starts,
                        &fit.cols,
                        &vec![1.0; live.len()],
                        k.clamp(1, live.len()),
                        &opts.envelope,
                    )?;
                    let mut best = (f64::INFINITY, sel.score.clone());
                    for sc in sel.path {
                        let l = val_loss(&refit_all(&fit.problems, &fit.cols, &top_k(&sc, k), &fit.always, &fit.starts, REFIT_DAMP));
                        if l < best.0 {
                            best = (l, sc);
                        }
                    }
                    best.1
                }
                _ => ranking(&cur, &s, &live, &lp.problems, &lp.starts, &lp.cols, k, opts)?,
            };
            let LayerProblems { problems, starts, cols, always } = &lp;
            let chosen = top_k(&score, k);
            let keep: Vec<usize> = chosen.iter().map(|&i| live[i]).collect();
            let new_w: Vec<DMatrix<f64>> = if opts.method == Method::MagnitudeNoRefit {
                starts
                    .iter()
                    .zip(cols)
                    .map(|(w, cs)| {
                        let mut w = w.clone();
                        for (i, group) in cs.iter().enumerate() {
                            if !chosen.contains(&i) {
                                for &col in group {
                                    w.column_mut(col).fill(0.0);
                                }
                            }
                        }
                        w
                    })
                    .collect()
            } else {
                // The same refit for every ranking: the ridge with the least held-out loss.
                let damp = DAMPS
                    .iter()
                    .map(|&dm| (val_loss(&refit_all(&fit.problems, &fit.cols, &chosen, &fit.always, &fit.starts, dm)), dm))
                    .min_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal))
                    .map_or(REFIT_DAMP, |x| x.1);
                refit_all(problems, cols, &chosen, always, starts, damp)
            };
            let err = problems.iter().zip(&new_w).map(|(p, w): (&Problem, _)| p.relative_error(w)).sum::<f64>() / problems.len() as f64;
            for (q, w) in s.consumers.iter().zip(&new_w) {
                set_layer_matrix(&mut cur, q.node, w);
            }
            (keep, err)
        };
        let remove: Vec<usize> = (0..c).filter(|ch| !keep.contains(ch)).collect();
        if remove.is_empty() {
            continue;
        }
        remove_channels(&mut cur, &s, &remove).with_context(|| format!("removing channels of `{name}`"))?;
        for &p in &s.producers {
            let before = std::mem::take(&mut alive[p]);
            alive[p] = before.into_iter().enumerate().filter(|(i, _)| !remove.contains(i)).map(|(_, v)| v).collect();
        }
        report.spaces.push(SpaceReport {
            producers: name_list(&cur, &s),
            channels: c,
            dead: n_dead,
            kept: keep.len(),
            relative_error: rel_err,
        });
    }
    if opts.polish && opts.method != Method::MagnitudeNoRefit && !report.spaces.is_empty() {
        polish(&dense, &mut cur, &alive, calib, opts.max_rows)?;
    }
    Ok((cur, report))
}

/// Refits every Conv (group 1) and Dense layer of `cur`, in graph order, on its inputs from the
/// pruned prefix against the dense model's outputs (all columns kept, ridge toward the current
/// weights).
fn polish(dense: &Graph, cur: &mut Graph, alive: &[Vec<usize>], calib: &[&[f32]], max_rows: usize) -> Result<()> {
    for (n, rows) in alive.iter().enumerate().take(cur.nodes.len()) {
        let ok = match &cur.nodes[n].op {
            Op::Dense { .. } => true,
            Op::Conv(a) => a.group == 1,
            _ => false,
        };
        if !ok || cur.tensors[cur.nodes[n].inputs[1]].data.is_none() {
            continue;
        }
        let input = cur.nodes[n].inputs[0];
        let acts = activations(cur, &[input], calib)?;
        let acts_dense = activations(dense, &[input], calib)?;
        let start = layer_matrix(cur, n)?;
        let all: Vec<usize> = (0..start.ncols()).collect();
        let p = layer_problem(cur, dense, rows, n, &acts[0], &acts_dense[0], max_rows)?;
        // Refit only when it helps on held-out samples, with the ridge that helps most there.
        let w = match (split_samples(&acts[0]), split_samples(&acts_dense[0])) {
            (Some((fa, va)), Some((fd, vd))) => {
                let fit = layer_problem(cur, dense, rows, n, &fa, &fd, max_rows)?;
                let val = layer_problem(cur, dense, rows, n, &va, &vd, max_rows)?;
                let best = DAMPS
                    .iter()
                    .map(|&dm| (val.loss(&fit.refit_toward(&all, Some(&start), dm)), dm))
                    .min_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
                match best {
                    Some((l, dm)) if l < val.loss(&start) => Some(p.refit_toward(&all, Some(&start), dm)),
                    _ => None,
                }
            }
            _ => Some(p.refit_toward(&all, Some(&start), REFIT_DAMP)).filter(|w| p.loss(w) < p.loss(&start)),
        };
        if let Some(w) = w {
            set_layer_matrix(cur, n, &w);
        }
    }
    Ok(())
}

fn name_list(g: &Graph, s: &ChannelSpace) -> Vec<String> {
    s.producers.iter().map(|&p| g.nodes[p].name.clone()).collect()
}

/// Values per channel in a consumer's input tensor (H·W for NCHW, 1 for [N, C], the flatten
/// block for a Dense reading a flattened map).
fn lay_channel_len(_lay: &RowLayout, g: &Graph, node: usize, channels: usize) -> usize {
    let x = &g.tensors[g.nodes[node].inputs[0]];
    (x.numel() / channels.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Node;
    use sprig_runtime::op::Activation;

    #[test]
    fn every_sample_is_held_out_exactly_once_and_never_fits_its_own_fold() {
        for n in [0usize, 1, 7, 8, 9, 50, 128] {
            let folds = cv_folds(n);
            let mut held = vec![0; n];
            for (fit, h) in &folds {
                for &i in h {
                    held[i] += 1;
                    if n >= 8 {
                        assert!(!fit.contains(&i), "n = {n}: sample {i} fits the fold it scores");
                    }
                }
                assert!(fit.iter().chain(h).all(|&i| i < n));
            }
            assert!(held.iter().all(|&c| c == 1), "n = {n}: {held:?}");
        }
    }

    #[test]
    fn the_allocation_meets_the_budget_and_gives_back_what_coarse_steps_overshoot() {
        // A fine set whose top four steps are nearly free, and a big set whose one step saves
        // 60 at small error. For a budget of 50 the first phase takes the four free steps
        // (100 → 80), then the big one (→ 20): 30 under the budget. The second phase raises
        // the fine set back to the top (→ 40); raising the big set would break the budget.
        let fine_err = |l: usize| if l >= 4 { (8 - l) as f64 * 1e-4 } else { 4e-4 + (4 - l) as f64 };
        let mut curves = vec![
            Curve { cost: vec![0.0, 60.0], err: vec![0.01, 0.0], level: 1 },
            Curve { cost: (0..=8).map(|l| 5.0 * l as f64).collect(), err: (0..=8).map(fine_err).collect(), level: 8 },
        ];
        let total = greedy(&mut curves, 100.0, 50.0);
        assert_eq!((curves[0].level, curves[1].level, total), (0, 8, 40.0));
        assert_eq!(lower(&mut [Curve { level: 1, ..curves[0].clone() }, Curve { level: 8, ..curves[1].clone() }], 100.0, 50.0), 20.0);
        // Out of reach: everything at its lowest level, total above the budget.
        let mut curves = vec![Curve { cost: vec![10.0, 20.0], err: vec![1.0, 0.0], level: 1 }];
        assert_eq!(greedy(&mut curves, 20.0, 5.0), 10.0);
        assert_eq!(curves[0].level, 0);
    }

    /// x [1, 3] → Dense (2 rows) → Softmax.
    fn classifier(w: Vec<f32>) -> Graph {
        let mut g = Graph::default();
        let x = g.add_tensor("x", vec![1, 3], None);
        g.inputs.push(x);
        let wt = g.add_tensor("w", vec![2, 3], Some(w));
        let z = g.add_tensor("z", vec![1, 2], None);
        let y = g.add_tensor("y", vec![1, 2], None);
        g.nodes.push(Node {
            name: "fc".into(),
            onnx_op: "Gemm".into(),
            op: Op::Dense { act: Activation::None },
            inputs: vec![x, wt],
            outputs: vec![z],
        });
        g.nodes.push(Node {
            name: "sm".into(),
            onnx_op: "Softmax".into(),
            op: Op::Softmax { axis: 1, log: false },
            inputs: vec![z],
            outputs: vec![y],
        });
        g.outputs.push(y);
        g
    }

    #[test]
    fn the_output_probe_reads_logits_and_measures_relative_error() {
        let xs: Vec<Vec<f32>> = (0..6).map(|i| vec![i as f32, 1.0, -(i as f32) / 2.0]).collect();
        let calib: Vec<&[f32]> = xs.iter().map(|v| v.as_slice()).collect();
        let w = vec![1.0, 2.0, -1.0, 0.5, -0.5, 3.0];
        let g = classifier(w.clone());
        let probe = OutputProbe::new(&g, &calib).unwrap();
        assert_eq!(probe.tensors, vec![g.nodes[0].outputs[0]], "a Softmax is read at its input");
        let all: Vec<usize> = (0..6).collect();
        assert_eq!(probe.error(&g, &calib, &all).unwrap(), 0.0);
        // Scaling every logit by 1.1 is a relative error of exactly 0.01.
        let g2 = classifier(w.iter().map(|v| v * 1.1).collect());
        let e = probe.error(&g2, &calib, &all).unwrap();
        assert!((e - 0.01).abs() < 1e-5, "{e}");
        // On a subset of samples, still relative to those samples' reference values.
        let e = probe.error(&g2, &calib, &[1, 4]).unwrap();
        assert!((e - 0.01).abs() < 1e-5, "{e}");
    }
}
