//! `sprig compress --budget`: one search over pruning, codebook bits and kernels that fits a
//! device's flash / RAM / MAC budget with the least calibration-output error, and its report.
//!
//! [`fit`] guarantees: the `.sprig` bytes it returns meet every limit of the budget by the same
//! estimates `sprig size` prints (and the measured calibration error, with `max_error`); when no
//! configuration does, it returns no bytes and a [`report::Limits`] saying which limit failed,
//! by how much, and the largest parts of the smallest configuration reached.

pub mod html;
pub mod report;
pub mod search;

use crate::analyze::analyze;
use crate::compile::{compile, strip_names, Converted};
use crate::compress::prune::remove_dead_channels;
use crate::compress::sparsify::BreakEvenTable;
use crate::host::HostModel;
use crate::ir::Graph;
use crate::npy::Array;
use crate::size::{estimate, TargetSizes};
use crate::stats::model_stats;
use crate::writer::WeightFormat;
use anyhow::{anyhow, Result};
use report::{Budget, BudgetReport, LayerRow, Side};
use std::collections::HashMap;
use std::path::Path;

/// Inputs of [`fit`].
pub struct FitInput<'a> {
    /// Source ONNX file (tract runs it as the reference for the eval figures).
    pub onnx: &'a Path,
    /// Output path, as shown in the report.
    pub output: String,
    /// The imported graph and the source file's SHA-256.
    pub graph: &'a Graph,
    pub sha: [u8; 32],
    /// Calibration samples (one input each).
    pub calib: &'a [&'a [f32]],
    /// Eval inputs and labels; the calibration samples stand in when absent.
    pub eval: Option<&'a Array>,
    pub labels: Option<&'a [f32]>,
    /// Eval samples used at most.
    pub eval_limit: usize,
    pub budget: Budget,
    pub target: TargetSizes,
    /// Called with a short message before each step.
    pub progress: &'a dyn Fn(&str),
    /// Timed inferences per model for the latency figures.
    pub latency_iters: usize,
    /// Drop operator and internal tensor names from the files (`--strip-names`), the dense one
    /// the report compares with included.
    pub strip_names: bool,
}

/// [`compile`] with f32 weights; with `strip`, the file's operator and internal tensor names are
/// dropped while the returned graph keeps them (the file's operators are the graph's nodes in
/// order, which is how the report names them).
pub(crate) fn compile_f32(g: Graph, strip: bool, sha: [u8; 32]) -> Result<Converted> {
    if !strip {
        return compile(g, WeightFormat::F32, sha);
    }
    let nodes: Vec<String> = g.nodes.iter().map(|n| n.name.clone()).collect();
    let tensors: Vec<String> = g.tensors.iter().map(|t| t.name.clone()).collect();
    let mut g = g;
    strip_names(&mut g);
    let mut c = compile(g, WeightFormat::F32, sha)?;
    for (n, name) in c.graph.nodes.iter_mut().zip(nodes) {
        n.name = name;
    }
    for (t, name) in c.graph.tensors.iter_mut().zip(tensors) {
        t.name = name;
    }
    Ok(c)
}

/// Median µs per inference of `a` and `b`, timed alternately on the same inputs.
fn latencies(a: &[u8], b: &[u8], samples: &[&[f32]], iters: usize) -> Result<(f64, f64)> {
    let (mut ma, mut mb) = (HostModel::new(a)?, HostModel::new(b)?);
    let n = samples.len().max(1);
    let (mut i, mut j) = (0usize, 0usize);
    let mut run_b = || {
        j += 1;
        mb.run_in_place(&[samples[(j - 1) % n]])
    };
    let ((ta, _), tb) = crate::host::time_interleaved(
        iters,
        || {
            i += 1;
            ma.run_in_place(&[samples[(i - 1) % n]])
        },
        Some(&mut run_b),
    )?;
    Ok((ta, tb.map_or(ta, |t| t.0)))
}

/// One side's figures: sizes, eval agreement with tract on the ONNX model, accuracy.
fn side(bytes: &[u8], inp: &FitInput, eval: &[Array], latency: f64, predicted: Option<f64>) -> Result<Side> {
    let m = sprig_runtime::Model::parse(bytes).map_err(|e| anyhow!("{e}"))?;
    let st = model_stats(&m, bytes.len() as u64);
    let est = estimate(&m, bytes.len() as u64, &inp.target)?;
    let (rep, outs) = crate::validate::compare(bytes, inp.onnx, eval, inp.labels, Some(inp.eval_limit), f64::INFINITY)?;
    Ok(Side {
        file_bytes: bytes.len() as u64,
        flash: est.flash,
        ram: est.ram,
        arena: st.arena_bytes,
        macs: st.macs,
        params: st.params,
        latency_us_predicted: predicted,
        latency_us_measured: latency,
        accuracy: rep.sprig_accuracy,
        vs_onnx: search::fidelity_of(&outs.sprig, &outs.reference),
    })
}

/// Runs the budget search and measures the result. Returns the report and, when the budget was
/// met, the `.sprig` bytes to write.
pub fn fit(inp: &FitInput) -> Result<(BudgetReport, Option<Vec<u8>>)> {
    let t0 = std::time::Instant::now();
    let dense = compile_f32(inp.graph.clone(), inp.strip_names, inp.sha)?;
    (inp.progress)("dense outputs on the calibration data");
    let dense_out = search::outputs(&dense.bytes, inp.calib)?;
    (inp.progress)("removing channels dead on every calibration sample");
    let (base, _) = remove_dead_channels(inp.graph, inp.calib)?;
    let table = BreakEvenTable::builtin();
    let opts = search::SearchOptions {
        budget: inp.budget.clone(),
        target: inp.target.clone(),
        sha: inp.sha,
        table: table.clone(),
        progress: inp.progress,
        levels: search::LEVELS.to_vec(),
        bits: search::BITS.to_vec(),
        strip_names: inp.strip_names,
    };
    let out = search::search(&base, inp.calib, &dense_out, &opts)?;
    let eval: Vec<Array> = match inp.eval {
        Some(a) => vec![a.clone()],
        None => {
            let len = inp.calib.first().map_or(0, |s| s.len());
            vec![Array { shape: vec![inp.calib.len(), len], data: inp.calib.iter().flat_map(|s| s.iter().copied()).collect() }]
        }
    };
    let eval_on = match inp.eval {
        Some(a) => format!("eval data, {} samples", a.samples().min(inp.eval_limit)),
        None => format!("calibration data, {} samples", inp.calib.len().min(inp.eval_limit)),
    };
    (inp.progress)("validating against tract and timing");
    let (before, after, layers, bytes) = match &out.chosen {
        Some((_, built)) => {
            let (ld, lc) = latencies(&dense.bytes, &built.bytes, inp.calib, inp.latency_iters)?;
            let dense_side = side(&dense.bytes, inp, &eval, ld, None)?;
            let predicted = ld * built.macs as f64 / dense_side.macs.max(1) as f64;
            let after = side(&built.bytes, inp, &eval, lc, Some(predicted))?;
            let layers = layer_rows(&dense.bytes, &dense.graph, built, inp.calib, table.as_ref())?;
            (dense_side, Some(after), layers, Some(built.bytes.clone()))
        }
        None => {
            let (ld, _) = latencies(&dense.bytes, &dense.bytes, inp.calib, inp.latency_iters)?;
            (side(&dense.bytes, inp, &eval, ld, None)?, None, Vec::new(), None)
        }
    };
    let rep = BudgetReport {
        model: inp.onnx.display().to_string(),
        output: inp.output.clone(),
        target: inp.target.target.clone(),
        budget: inp.budget.clone(),
        met: out.chosen.is_some(),
        calib_samples: inp.calib.len(),
        eval_on,
        before,
        after,
        layers,
        explored: out.explored,
        chosen: out.chosen.as_ref().map(|(i, _)| *i),
        frontier: out.frontier,
        limits: out.limits,
        seconds: t0.elapsed().as_secs_f64(),
    };
    Ok((rep, bytes))
}

/// Names each operator's stats by its graph node when the file had no name for it.
fn name_layers(layers: &mut [crate::stats::LayerStats], g: &Graph) {
    if layers.len() == g.nodes.len() {
        for (l, n) in layers.iter_mut().zip(&g.nodes) {
            if l.name.is_empty() {
                l.name = n.name.clone();
            }
        }
    }
}

/// Per-operator rows of the chosen model, named by the graphs' nodes (the files may have no
/// names).
fn layer_rows(
    dense: &[u8],
    dense_graph: &Graph,
    built: &search::Built,
    calib: &[&[f32]],
    table: Option<&BreakEvenTable>,
) -> Result<Vec<LayerRow>> {
    let dm = sprig_runtime::Model::parse(dense).map_err(|e| anyhow!("{e}"))?;
    let mut ds = model_stats(&dm, dense.len() as u64);
    name_layers(&mut ds.layers, dense_graph);
    let dense_by_name: HashMap<&str, &crate::stats::LayerStats> = ds.layers.iter().map(|l| (l.name.as_str(), l)).collect();
    let mut hm = HostModel::new(&built.bytes)?;
    let mut st = model_stats(&hm.model, built.bytes.len() as u64);
    name_layers(&mut st.layers, &built.graph);
    let sets: Vec<Vec<&[f32]>> = calib.iter().take(8).map(|s| vec![*s]).collect();
    let times: Vec<f64> = hm.profile_runs(&sets, 64)?.into_iter().map(crate::host::median).collect();
    let total_t: f64 = times.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    let total_macs = st.macs.max(1) as f64;
    // Zero fraction of every activation output, by the nodes that read it.
    let mut zeros: HashMap<String, f64> = HashMap::new();
    if let Ok(a) = analyze(&built.graph, calib, table, "") {
        for l in a.layers.iter().filter(|l| l.relu_family) {
            for c in &l.consumers {
                zeros.insert(c.node.clone(), l.zero_fraction);
            }
        }
    }
    let recon: HashMap<&str, f64> = built.codebook.iter().flat_map(|r| &r.layers).map(|l| (l.node.as_str(), l.relative_error)).collect();
    Ok(st
        .layers
        .iter()
        .zip(times)
        .map(|(l, t)| {
            let d = dense_by_name.get(l.name.as_str());
            let channels = |s: &[usize]| s.get(1).copied().unwrap_or(0);
            let pruned_fraction = match d {
                Some(d) if channels(&d.output_shape) > 0 && l.params > 0 => {
                    1.0 - channels(&l.output_shape) as f64 / channels(&d.output_shape) as f64
                }
                _ => 0.0,
            };
            LayerRow {
                name: l.name.clone(),
                op: l.op.clone(),
                kernel: l.kernel.clone(),
                params: l.params,
                params_dense: d.map_or(0, |d| d.params),
                bits_per_weight: (l.params > 0).then(|| match l.codebook {
                    Some((_, _, bpw)) => bpw,
                    None => 8.0 * l.weight_bytes as f64 / l.params as f64,
                }),
                codebook_bits: l.codebook.map(|c| c.0),
                pruned_fraction: pruned_fraction.max(0.0),
                input_zero_fraction: zeros.get(&l.name).copied(),
                reconstruction_error: recon.get(l.name.as_str()).copied(),
                macs: l.macs,
                mac_share: l.macs as f64 / total_macs,
                latency_us: t,
                latency_share: t / total_t,
                weight_bytes: l.weight_bytes,
            }
        })
        .collect())
}
