//! The budget search: per pruning level, per-layer error curves over codebook bits, then an exact
//! allocation (multiple-choice knapsack by dynamic programming) of bits to layers under the flash
//! budget; every allocated configuration is built, measured on the calibration data, and the
//! feasible one with the least measured output error is chosen.
//!
//! Guarantees:
//! - a configuration is reported feasible only when its *built* `.sprig` file's flash and RAM
//!   estimates ([`crate::size::estimate`]), its MACs and its measured calibration-output error
//!   are all within the budget;
//! - the allocation is exact for its proxy: among the per-layer options it was given, no other
//!   assignment whose rounded-up byte counts fit has a smaller sum of per-layer errors
//!   (tested against brute force);
//! - pruning levels only remove MACs (`filter:macs=P` of the dead-channel-free model), so RAM and
//!   MACs are judged before any codebook work is spent on a level.

use super::report::{Budget, Candidate, Fidelity, FrontierPoint, Limits};
use crate::compress::actsparse::{select_input_sparse, InputSparse};
use crate::compress::codebook::{quantize, CodebookMethod, CodebookOptions, CodebookReport, LayerBits};
use crate::compress::prune::{prune, Amount, Method, PruneOptions};
use crate::compress::sparsify::BreakEvenTable;
use crate::host::HostModel;
use crate::ir::Graph;
use crate::size::{estimate, Estimate, TargetSizes};
use anyhow::{anyhow, Context, Result};

/// Fractions of the MACs kept that the search tries, in order (1 = no pruning).
pub const LEVELS: [f64; 8] = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3];

/// Codebook index widths the per-layer curves are measured at.
pub const BITS: [u8; 6] = [8, 6, 5, 4, 3, 2];

/// Flash bytes allowed per layer for alignment padding the payload byte counts do not include.
const PAD_PER_LAYER: u64 = 16;

/// One layer's choices: `(bits, payload bytes, relative error)`; bits 32 = kept f32.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerCurve {
    /// Node name.
    pub node: String,
    /// Options, the first the kept-f32 one.
    pub options: Vec<(u8, u64, f64)>,
}

/// The exact allocation of [`allocate`]: per layer the index of its chosen option, with the
/// summed bytes and error, and the least error per capacity (the frontier).
#[derive(Clone, Debug, PartialEq)]
pub struct Allocation {
    pub choice: Vec<usize>,
    pub bytes: u64,
    pub error: f64,
    /// `(capacity bytes, least summed error)` at evenly spaced capacities up to the one given.
    pub frontier: Vec<(u64, f64)>,
}

/// Least summed error with summed (rounded-up) bytes within `capacity`: dynamic programming over
/// capacity in units of `unit` bytes, option bytes rounded up to whole units (so the true bytes
/// never exceed the capacity). `None` when even the smallest options do not fit.
pub fn allocate(curves: &[LayerCurve], capacity: u64, unit: u64) -> Option<Allocation> {
    let unit = unit.max(1);
    let cap = (capacity / unit) as usize;
    let units = |b: u64| b.div_ceil(unit) as usize;
    const INF: f64 = f64::INFINITY;
    // best[c]: least error of the layers so far within c units; pick[l][c]: option chosen for
    // layer l at capacity c.
    let mut best = vec![0.0f64; cap + 1];
    let mut pick: Vec<Vec<u8>> = Vec::with_capacity(curves.len());
    for l in curves {
        let mut next = vec![INF; cap + 1];
        let mut p = vec![u8::MAX; cap + 1];
        for c in 0..=cap {
            for (k, &(_, b, e)) in l.options.iter().enumerate() {
                let w = units(b);
                if w <= c && best[c - w] + e < next[c] {
                    next[c] = best[c - w] + e;
                    p[c] = k as u8;
                }
            }
        }
        best = next;
        pick.push(p);
    }
    if !best[cap].is_finite() {
        return None;
    }
    let mut choice = vec![0usize; curves.len()];
    let mut c = cap;
    for l in (0..curves.len()).rev() {
        let k = pick[l][c] as usize;
        choice[l] = k;
        c -= units(curves[l].options[k].1);
    }
    let bytes = curves.iter().zip(&choice).map(|(l, &k)| l.options[k].1).sum();
    let error = curves.iter().zip(&choice).map(|(l, &k)| l.options[k].2).sum();
    let steps = 48usize;
    let mut frontier = Vec::new();
    for s in 1..=steps {
        let c = cap * s / steps;
        if best[c].is_finite() && frontier.last().is_none_or(|&(_, e): &(u64, f64)| best[c] < e) {
            frontier.push((c as u64 * unit, best[c]));
        }
    }
    Some(Allocation { choice, bytes, error, frontier })
}

/// Parses `flash=256KiB,ram=64KiB,macs=2M,file=20KB`: sizes in B, KiB, MiB, KB, MB (or plain
/// bytes); MACs as a count with an optional k, M or G suffix. `file` limits the `.sprig` file
/// alone (storage or download size), `flash` the file plus the runtime code.
pub fn parse_budget(s: &str, max_error: Option<f64>) -> Result<Budget> {
    let mut b = Budget { max_error, ..Budget::default() };
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, v) = part.split_once('=').with_context(|| format!("--budget `{part}`: expected KEY=VALUE (flash, ram, macs, file)"))?;
        let (num, mult) = split_unit(v, key)?;
        let x: f64 = num
            .trim()
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite() && *x > 0.0)
            .with_context(|| format!("--budget `{part}`: `{num}` is not a positive number"))?;
        let val = (x * mult as f64).round() as u64;
        match key {
            "flash" => b.flash = Some(val),
            "ram" => b.ram = Some(val),
            "macs" => b.macs = Some(val),
            "file" => b.file = Some(val),
            k => anyhow::bail!("--budget `{part}`: unknown limit `{k}` (flash, ram, macs, file)"),
        }
    }
    if b.flash.is_none() && b.ram.is_none() && b.macs.is_none() && b.file.is_none() {
        anyhow::bail!("--budget `{s}`: give at least one of flash=, ram=, macs=, file=");
    }
    if let Some(e) = max_error {
        if !(e > 0.0 && e.is_finite()) {
            anyhow::bail!("--max-error {e}: expected a positive relative error, e.g. 0.05");
        }
    }
    Ok(b)
}

fn split_unit<'a>(v: &'a str, key: &str) -> Result<(&'a str, u64)> {
    let units: &[(&str, u64)] = if key == "macs" {
        &[("G", 1_000_000_000), ("M", 1_000_000), ("k", 1000), ("K", 1000)]
    } else {
        &[("KiB", 1024), ("MiB", 1 << 20), ("KB", 1000), ("kB", 1000), ("MB", 1_000_000), ("B", 1)]
    };
    for &(u, m) in units {
        if let Some(n) = v.strip_suffix(u) {
            return Ok((n, m));
        }
    }
    Ok((v, 1))
}

/// Output error of `bytes` against reference outputs on `samples` (first output only).
pub fn fidelity(bytes: &[u8], samples: &[&[f32]], reference: &[Vec<f32>]) -> Result<Fidelity> {
    let got = outputs(bytes, samples)?;
    if let Some((y, r)) = got.iter().zip(reference).find(|(y, r)| y.len() != r.len()) {
        anyhow::bail!("output size changed: {} values, dense model {}", y.len(), r.len());
    }
    Ok(fidelity_of(&got, reference))
}

/// Relative L2 error `sqrt(Σ‖y − r‖² / Σ‖r‖²)`, max |y − r| (∞ for NaN) and top-1 agreement of
/// `got` against `want`.
pub fn fidelity_of(got: &[Vec<f32>], want: &[Vec<f32>]) -> Fidelity {
    let (mut num, mut den, mut max, mut agree) = (0f64, 0f64, 0f64, 0usize);
    for (y, r) in got.iter().zip(want) {
        for (&a, &b) in y.iter().zip(r) {
            let d = a as f64 - b as f64;
            num += d * d;
            den += b as f64 * b as f64;
            max = max.max(if d.is_nan() { f64::INFINITY } else { d.abs() });
        }
        agree += (crate::validate::argmax(y) == crate::validate::argmax(r)) as usize;
    }
    let rel = if num == 0.0 { 0.0 } else { (num / den.max(f64::MIN_POSITIVE)).sqrt() };
    Fidelity {
        samples: got.len(),
        relative_error: if rel.is_nan() { f64::INFINITY } else { rel },
        max_abs_error: max,
        top1_agreement: agree as f64 / got.len().max(1) as f64,
    }
}

/// First output of `bytes` on every sample.
pub fn outputs(bytes: &[u8], samples: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
    let mut m = HostModel::new(bytes)?;
    samples.iter().enumerate().map(|(i, x)| Ok(m.run(&[x]).with_context(|| format!("calibration sample {i}"))?.swap_remove(0))).collect()
}

/// Settings of [`search`].
pub struct SearchOptions<'a> {
    pub budget: Budget,
    pub target: TargetSizes,
    pub sha: [u8; 32],
    /// Kernel cost table for input-sparse and LUT choices.
    pub table: Option<BreakEvenTable>,
    /// Called with a short message before each step (progress display).
    pub progress: &'a dyn Fn(&str),
    /// Pruning levels tried (fractions of MACs kept, 1 first).
    pub levels: Vec<f64>,
    /// Codebook bits the curves are measured at.
    pub bits: Vec<u8>,
    /// Drop operator and internal tensor names from every file built (`--strip-names`): the
    /// file and flash figures are then those of the stripped file.
    pub strip_names: bool,
}

/// A built configuration.
pub struct Built {
    pub graph: Graph,
    pub bytes: Vec<u8>,
    pub estimate: Estimate,
    pub macs: u64,
    pub codebook: Option<CodebookReport>,
    pub fidelity: Fidelity,
    pub macs_kept: f64,
}

/// What [`search`] found.
pub struct Outcome {
    pub explored: Vec<Candidate>,
    pub frontier: Vec<FrontierPoint>,
    /// The chosen configuration and its index in `explored`.
    pub chosen: Option<(usize, Built)>,
    /// Filled when nothing met the budget.
    pub limits: Option<Limits>,
}

/// Number of progress messages [`search`] sends at most with `levels` ladder levels and `bits`
/// widths (two bisection levels included).
pub fn max_steps(levels: usize, bits: usize) -> usize {
    (levels + 2) * (2 + bits + 2 * 3)
}

fn kept_input_sparse(g: &mut Graph, samples: &[&[f32]], table: Option<&BreakEvenTable>) -> Result<()> {
    select_input_sparse(g, samples, table, InputSparse::Auto).map(|_| ())
}

/// Compiles `g` (names stripped from the file with `opts.strip_names`, kept in the graph) and
/// estimates it on the target.
fn build(g: Graph, opts: &SearchOptions) -> Result<(Graph, Vec<u8>, Estimate, u64)> {
    let c = super::compile_f32(g, opts.strip_names, opts.sha)?;
    let m = sprig_runtime::Model::parse(&c.bytes).map_err(|e| anyhow!("{e}"))?;
    let est = estimate(&m, c.bytes.len() as u64, &opts.target)?;
    let macs = crate::stats::model_stats(&m, c.bytes.len() as u64).macs;
    Ok((c.graph, c.bytes, est, macs))
}

/// Refit rounds and calibration rows of the per-layer curve fits: a quarter of a full fit's
/// rows and rounds. The curves only rank options; the allocation chosen is then fitted in full.
const CURVE_ITER: usize = 10;
const CURVE_ROWS: usize = 1024;

fn codebook_opts(layer_bits: Vec<(String, LayerBits)>, bits: u8) -> CodebookOptions {
    CodebookOptions { bits, layer_bits, method: CodebookMethod::Jlcm, f16_values: true, ..CodebookOptions::default() }
}

/// Bytes of node `node`'s bias kept in f32 and with its weight codebook-quantized: the search's
/// codebooks (f16 values, `BiasStore::Auto`) store it as u8-affine codes, 8 + one byte per value,
/// unless that costs the layer accuracy (then f16 for a Conv, f32 for a Dense; the allocation's
/// build is measured and shrunk if it overshoots). Counting it in the per-layer options lets the
/// allocation spend what the smaller biases free.
fn bias_bytes(g: &Graph, node: &str) -> (usize, usize) {
    let Some(n) = g.nodes.iter().find(|n| n.name == node) else { return (0, 0) };
    let Some(&b) = n.inputs.get(2) else { return (0, 0) };
    let len = g.tensors[b].data.as_ref().map_or(0, |d| d.len());
    (4 * len, sprig_runtime::format::U8_AFFINE_HEADER_LEN + len)
}

/// Runs the search on `base` (the imported model with dead channels already removed), with
/// `dense_out` the dense model's outputs on `samples`.
pub fn search(base: &Graph, samples: &[&[f32]], dense_out: &[Vec<f32>], opts: &SearchOptions) -> Result<Outcome> {
    let b = &opts.budget;
    let mut explored: Vec<Candidate> = Vec::new();
    let mut frontier = Vec::new();
    let mut best: Option<(usize, Built)> = None;
    let mut worse_in_a_row = 0usize;
    // The smallest flash and RAM reached, with the estimate they came from.
    let mut min_flash: Option<(u64, Estimate)> = None;
    let mut min_ram: Option<(u64, Estimate)> = None;
    let mut min_file: Option<u64> = None;
    let mut min_macs = u64::MAX;
    let mut min_error: Option<f64> = None;
    let within = |v: u64, lim: Option<u64>| lim.is_none_or(|l| v <= l);
    // Ladder levels (`Amount::Macs`), then refinements (kept by `retain`): when a level meets the
    // RAM / MAC limits and a larger one did not, up to two bisection steps look for the least
    // pruning that meets them; an `Amount::Arena` step when the full model is over RAM.
    let mut queue: std::collections::VecDeque<(Amount, bool)> = opts.levels.iter().map(|&l| (Amount::Macs(l), false)).collect();
    let (mut bad, mut good, mut refinements): (Option<f64>, Option<f64>, usize) = (None, None, 0);
    let mut refine = |queue: &mut std::collections::VecDeque<(Amount, bool)>, bad: Option<f64>, good: Option<f64>| {
        if let (Some(u), Some(l)) = (bad, good) {
            if refinements < 2 && u - l > 0.02 {
                queue.push_front((Amount::Macs((u + l) / 2.0), true));
                refinements += 1;
            }
        }
    };
    let base_macs = crate::compress::prune::layer_costs(base).0.max(1) as f64;
    let mut arena_tried = false;
    while let Some((amount, _)) = queue.pop_front() {
        let arena_step = matches!(amount, Amount::Arena(_));
        let g = if amount == Amount::Macs(1.0) {
            base.clone()
        } else {
            (opts.progress)(&match amount {
                Amount::Arena(a) => format!("pruning the peak activations to a {a} B arena"),
                Amount::Macs(l) => format!("pruning to {:.0} % of the MACs", l * 100.0),
                a => format!("pruning ({a:?})"),
            });
            let popts = PruneOptions { method: Method::Envelope, amount, ..PruneOptions::default() };
            match prune(base, samples, &popts) {
                Ok((g, _)) => g,
                Err(e) => {
                    let kept = if let Amount::Macs(l) = amount { l } else { 0.0 };
                    explored.push(Candidate { macs_kept: kept, note: Some(format!("pruning failed: {e:#}")), ..Candidate::default() });
                    continue;
                }
            }
        };
        let level = match amount {
            Amount::Macs(l) => l,
            _ => crate::compress::prune::layer_costs(&g).0 as f64 / base_macs,
        };
        (opts.progress)(&format!("{:.0} % MACs: dense build", level * 100.0));
        let mut keep = g.clone();
        kept_input_sparse(&mut keep, samples, opts.table.as_ref())?;
        let (_, keep_bytes, keep_est, macs) = build(keep, opts)?;
        let keep_file = keep_bytes.len() as u64;
        min_macs = min_macs.min(macs);
        if min_ram.as_ref().is_none_or(|(r, _)| keep_est.ram < *r) {
            min_ram = Some((keep_est.ram, keep_est.clone()));
        }
        let mut cand =
            Candidate { macs_kept: level, flash: keep_est.flash, file: keep_file, ram: keep_est.ram, macs, ..Candidate::default() };
        if !within(macs, b.macs) || !within(keep_est.ram, b.ram) {
            let mut why = Vec::new();
            if !within(macs, b.macs) {
                why.push(format!("{macs} MACs over the budget"));
            }
            if !within(keep_est.ram, b.ram) {
                why.push(format!("RAM {} B over the budget (arena {} B)", keep_est.ram, keep_est.ram_parts[0].bytes));
            }
            cand.note = Some(why.join("; "));
            if arena_step {
                cand.note = Some(format!("pruned for the arena: {}", why.join("; ")));
            } else {
                bad = Some(bad.map_or(level, |b: f64| b.min(level)));
                refine(&mut queue, bad, good);
            }
            // RAM over at the full model: first try removing channels only where the arena
            // peaks (the MAC ladder prunes everywhere).
            if let (Some(limit), false, false) = (b.ram, within(keep_est.ram, b.ram), arena_tried) {
                let stack = keep_est.ram.saturating_sub(keep_est.ram_parts[0].bytes);
                if limit > stack + 64 {
                    queue.push_front((Amount::Arena(limit - stack - 64), true));
                }
                arena_tried = true;
            }
            if min_flash.as_ref().is_none_or(|(f, _)| keep_est.flash < *f) {
                min_flash = Some((keep_est.flash, keep_est.clone()));
            }
            min_file = Some(min_file.map_or(keep_file, |f: u64| f.min(keep_file)));
            explored.push(cand);
            continue;
        }
        if !arena_step {
            good = Some(good.map_or(level, |g: f64| g.max(level)));
            refine(&mut queue, bad, good);
        }
        // Kept f32 everywhere already fits: no codebook error is needed at this level.
        let built = if within(keep_est.flash, b.flash) && within(keep_file, b.file) {
            (opts.progress)(&format!("{:.0} % MACs: measuring", level * 100.0));
            let fid = fidelity(&keep_bytes, samples, dense_out)?;
            cand.predicted_error = 0.0;
            Some(Built {
                graph: g.clone(),
                bytes: keep_bytes,
                estimate: keep_est.clone(),
                macs,
                codebook: None,
                fidelity: fid,
                macs_kept: level,
            })
        } else {
            // Per-layer curves: the codebook fit of every layer at each width.
            let mut curves: Vec<LayerCurve> = Vec::new();
            for &bits in &opts.bits {
                (opts.progress)(&format!("{:.0} % MACs: {bits}-bit codebook curves", level * 100.0));
                let copts = CodebookOptions { max_iter: CURVE_ITER, max_rows: CURVE_ROWS, ..codebook_opts(Vec::new(), bits) };
                let (_, rep) = quantize(&g, samples, &copts)?;
                for l in &rep.layers {
                    let (bias_f32, bias_cb) = bias_bytes(&g, &l.node);
                    let i = match curves.iter().position(|c| c.node == l.node) {
                        Some(i) => i,
                        None => {
                            curves.push(LayerCurve { node: l.node.clone(), options: vec![(32, (l.f32_bytes + bias_f32) as u64, 0.0)] });
                            curves.len() - 1
                        }
                    };
                    curves[i].options.push((bits, (l.bytes + bias_cb) as u64, l.relative_error.max(0.0)));
                }
            }
            let f32_total: u64 = curves.iter().map(|c| c.options[0].1).sum();
            let code = opts.target.codebook.unwrap_or(0);
            let fixed = keep_est.flash.saturating_sub(f32_total) + code + PAD_PER_LAYER * curves.len() as u64;
            let fixed_file = keep_file.saturating_sub(f32_total) + PAD_PER_LAYER * curves.len() as u64;
            let least: u64 = curves.iter().map(|c| c.options.iter().map(|o| o.1).min().unwrap_or(0)).sum();
            let smallest = fixed + least;
            let smallest_file = fixed_file + least;
            min_file = Some(min_file.map_or(smallest_file, |f: u64| f.min(smallest_file)));
            if min_flash.as_ref().is_none_or(|(f, _)| smallest < *f) {
                let mut e = keep_est.clone();
                e.flash = smallest;
                e.flash_parts.push(crate::size::Part {
                    what: format!(
                        "(at {} bits everywhere: weights {least} B, codebook kernels {code} B)",
                        opts.bits.iter().min().unwrap_or(&2)
                    ),
                    bytes: 0,
                });
                min_flash = Some((smallest, e));
            }
            let narrowest = opts.bits.iter().min().unwrap_or(&2);
            if !within(smallest, b.flash) || !within(smallest_file, b.file) {
                cand.flash = smallest;
                cand.file = smallest_file;
                cand.note = Some(if !within(smallest, b.flash) {
                    format!("flash: even {narrowest}-bit codebooks everywhere need {smallest} B")
                } else {
                    format!("file: even {narrowest}-bit codebooks everywhere make a {smallest_file} B file")
                });
                explored.push(cand);
                continue;
            }
            // The weight bytes both limits leave (at least one is given: the kept-f32 build
            // broke one of them).
            let mut capacity = [b.flash.map(|l| l - fixed), b.file.map(|l| l - fixed_file)]
                .into_iter()
                .flatten()
                .min()
                .expect("a flash or file limit, or the kept-f32 build would have fitted");
            let mut built = None;
            for attempt in 0..3 {
                let unit = (capacity / 4000).max(8);
                let Some(alloc) = allocate(&curves, capacity, unit) else { break };
                if attempt == 0 {
                    frontier.extend(alloc.frontier.iter().map(|&(c, e)| FrontierPoint {
                        macs_kept: level,
                        flash: fixed + c,
                        predicted_error: e,
                    }));
                }
                let layer_bits: Vec<(String, LayerBits)> = curves
                    .iter()
                    .zip(&alloc.choice)
                    .map(|(c, &k)| (c.node.clone(), if c.options[k].0 == 32 { LayerBits::Keep } else { LayerBits::Bits(c.options[k].0) }))
                    .collect();
                (opts.progress)(&format!("{:.0} % MACs: building the allocation", level * 100.0));
                let (mut q, rep) = quantize(&g, samples, &codebook_opts(layer_bits.clone(), 8))?;
                kept_input_sparse(&mut q, samples, opts.table.as_ref())?;
                let (q, bytes, est, macs) = build(q, opts)?;
                cand.layer_bits = layer_bits
                    .iter()
                    .filter_map(|(n, lb)| if let LayerBits::Bits(x) = lb { Some((n.clone(), *x)) } else { None })
                    .collect();
                cand.predicted_error = alloc.error;
                cand.flash = est.flash;
                cand.file = bytes.len() as u64;
                cand.ram = est.ram;
                let over = [b.flash.map(|l| est.flash.saturating_sub(l)), b.file.map(|l| cand.file.saturating_sub(l))]
                    .into_iter()
                    .flatten()
                    .max()
                    .unwrap_or(0);
                if over > 0 {
                    // Padding beyond the per-layer allowance: shrink by the overshoot and redo.
                    capacity = capacity.saturating_sub(over + unit);
                    continue;
                }
                (opts.progress)(&format!("{:.0} % MACs: measuring", level * 100.0));
                let fid = fidelity(&bytes, samples, dense_out)?;
                built = Some(Built { graph: q, bytes, estimate: est, macs, codebook: Some(rep), fidelity: fid, macs_kept: level });
                break;
            }
            if built.is_none() && cand.note.is_none() {
                cand.note = Some("flash / file: the allocation did not fit once padding was counted".into());
            }
            built
        };
        let Some(built) = built else {
            explored.push(cand);
            continue;
        };
        cand.flash = built.estimate.flash;
        cand.file = built.bytes.len() as u64;
        cand.ram = built.estimate.ram;
        cand.macs = built.macs;
        cand.measured_error = Some(built.fidelity.relative_error);
        cand.top1_agreement = Some(built.fidelity.top1_agreement);
        let err = built.fidelity.relative_error;
        min_error = Some(min_error.map_or(err, |m: f64| m.min(err)));
        cand.feasible = within(built.estimate.flash, b.flash)
            && within(cand.file, b.file)
            && within(built.estimate.ram, b.ram)
            && within(built.macs, b.macs)
            && b.max_error.is_none_or(|m| err <= m);
        if !cand.feasible {
            cand.note = Some(format!("output error {err:.4} over --max-error"));
        }
        let idx = explored.len();
        let feasible = cand.feasible;
        let all_kept = cand.layer_bits.is_empty();
        explored.push(cand);
        if feasible {
            let better = best.as_ref().is_none_or(|(_, bb)| err < bb.fidelity.relative_error);
            if better {
                best = Some((idx, built));
                worse_in_a_row = 0;
            } else {
                worse_in_a_row += 1;
            }
            // Pruning more only removes MACs: once nothing is quantized, or a level measured
            // worse than the best, further levels are not expected to win.
            if all_kept || worse_in_a_row >= 1 {
                queue.retain(|q| q.1);
            }
        }
    }
    let limits = if best.is_some() {
        None
    } else {
        let mut reasons = Vec::new();
        let (fl, fe) = min_flash.map_or((0, None), |(f, e)| (f, Some(e)));
        let (rl, re) = min_ram.map_or((0, None), |(r, e)| (r, Some(e)));
        if let Some(lim) = b.flash.filter(|&l| fl > l) {
            reasons.push(format!("flash: the smallest configuration needs {fl} B, {} B over the {lim} B budget", fl - lim));
        }
        let file_least = min_file.unwrap_or(0);
        if let Some(lim) = b.file.filter(|&l| file_least > l) {
            reasons.push(format!("file: the smallest configuration is {file_least} B, {} B over the {lim} B budget", file_least - lim));
        }
        if let Some(lim) = b.ram.filter(|&l| rl > l) {
            reasons.push(format!("RAM: the smallest arena plus stack is {rl} B, {} B over the {lim} B budget", rl - lim));
        }
        if let Some(lim) = b.macs.filter(|&l| min_macs > l) {
            reasons
                .push(format!("MACs: pruning to {:.0} % still leaves {min_macs}, over {lim}", opts.levels.last().unwrap_or(&1.0) * 100.0));
        }
        if let (Some(m), Some(e)) = (b.max_error, min_error) {
            if reasons.is_empty() && e > m {
                reasons.push(format!("error: the least output error within the size budget is {e:.4}, over --max-error {m}"));
            }
        }
        if reasons.is_empty() {
            reasons.push("no configuration could be built within the budget".into());
        }
        let top = |e: Option<Estimate>, ram: bool| -> Vec<(String, u64)> {
            let mut p: Vec<(String, u64)> = e
                .map(|e| if ram { e.ram_parts } else { e.flash_parts })
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.what, p.bytes))
                .collect();
            p.sort_by_key(|x| std::cmp::Reverse(x.1));
            p
        };
        Some(Limits {
            min_flash: fl,
            flash_parts: top(fe, false),
            min_file: if b.file.is_some() { file_least } else { 0 },
            min_ram: rl,
            ram_parts: top(re, true),
            min_macs: if min_macs == u64::MAX { 0 } else { min_macs },
            min_error,
            reasons,
        })
    };
    Ok(Outcome { explored, frontier, chosen: best, limits })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute(curves: &[LayerCurve], capacity: u64, unit: u64) -> Option<f64> {
        let mut best: Option<f64> = None;
        let n = curves.len();
        let mut idx = vec![0usize; n];
        loop {
            let bytes: u64 = (0..n).map(|l| curves[l].options[idx[l]].1.div_ceil(unit) * unit).sum();
            if bytes <= capacity / unit * unit {
                let e: f64 = (0..n).map(|l| curves[l].options[idx[l]].2).sum();
                best = Some(best.map_or(e, |b: f64| b.min(e)));
            }
            let mut l = 0;
            loop {
                if l == n {
                    return best;
                }
                idx[l] += 1;
                if idx[l] < curves[l].options.len() {
                    break;
                }
                idx[l] = 0;
                l += 1;
            }
        }
    }

    proptest! {
        #[test]
        fn allocation_is_the_least_error_that_fits(
            layers in proptest::collection::vec(proptest::collection::vec((1u64..400, 0.0f64..1.0), 1..5), 1..5),
            capacity in 0u64..1500,
            unit in 1u64..20,
        ) {
            let curves: Vec<LayerCurve> = layers
                .iter()
                .enumerate()
                .map(|(i, o)| LayerCurve { node: format!("l{i}"), options: o.iter().map(|&(b, e)| (4, b, e)).collect() })
                .collect();
            let got = allocate(&curves, capacity, unit);
            let want = brute(&curves, capacity, unit);
            match (got, want) {
                (None, None) => {}
                (Some(a), Some(w)) => {
                    prop_assert!((a.error - w).abs() < 1e-9, "dp {} brute {}", a.error, w);
                    prop_assert!(a.bytes <= capacity);
                    let e: f64 = curves.iter().zip(&a.choice).map(|(l, &k)| l.options[k].2).sum();
                    prop_assert!((e - a.error).abs() < 1e-9);
                    for w in a.frontier.windows(2) {
                        prop_assert!(w[0].0 < w[1].0 && w[1].1 < w[0].1);
                    }
                }
                (g, w) => prop_assert!(false, "dp {:?} brute {:?}", g.map(|a| a.error), w),
            }
        }
    }

    #[test]
    fn budgets_parse_with_units_and_reject_nonsense() {
        let b = parse_budget("flash=256KiB, ram=64KiB,macs=2.5M", Some(0.05)).unwrap();
        assert_eq!(b.flash, Some(256 * 1024));
        assert_eq!(b.ram, Some(64 * 1024));
        assert_eq!(b.macs, Some(2_500_000));
        assert_eq!(b.max_error, Some(0.05));
        assert_eq!(parse_budget("flash=1MB", None).unwrap().flash, Some(1_000_000));
        assert_eq!(parse_budget("ram=5000", None).unwrap().ram, Some(5000));
        assert_eq!(parse_budget("file=20KB", None).unwrap().file, Some(20_000));
        for bad in ["", "flash", "flash=-1KiB", "flash=abc", "disk=1KiB", "flash=0", "ram=NaN"] {
            let e = parse_budget(bad, None).unwrap_err().to_string();
            assert!(e.contains("--budget"), "{bad}: {e}");
        }
        assert!(parse_budget("flash=1KiB", Some(-1.0)).unwrap_err().to_string().contains("--max-error"));
    }
}
