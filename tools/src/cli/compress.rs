use crate::compile::{compile, write_atomic};
use crate::compress::prune::{prune, Amount, Method, PruneOptions, PruneReport};
use crate::import::{import_onnx_bytes, ImportOptions};
use crate::npy::{check_samples, read_f32};
use crate::stats::model_stats;
use crate::writer::WeightFormat;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Source ONNX model.
    onnx: PathBuf,
    /// Output .sprig file (written only when everything succeeded).
    #[arg(short, long)]
    output: PathBuf,
    /// Unlabeled calibration data (.npy, samples on the first axis).
    #[arg(long)]
    calib: PathBuf,
    /// Calibration samples to use at most (the first N).
    #[arg(long, default_value_t = 128)]
    calib_samples: usize,
    /// Structured pruning GROUP:AMOUNT. GROUP `filter` (output channels, coupled with their
    /// consumers' input channels, depthwise filters and residual partners) or `channel` (the same
    /// coupled set, seen from the consumer). AMOUNT: the fraction of each layer's channels to
    /// remove, e.g. `filter:0.5`; or a global budget, the fraction of the model's MACs or weight
    /// parameters kept (`filter:macs=0.7`, `filter:params=0.5`), allocated across layers by least
    /// marginal reconstruction error.
    #[arg(long)]
    prune: String,
    /// Channel ranking: `envelope` (WGSEF prox-gradient on the layer loss), `magnitude` (filter
    /// L1 norm), `magnitude-norefit` (filter L1 norm, weights not refit).
    #[arg(long, default_value = "envelope", value_parser = ["envelope", "magnitude", "magnitude-norefit"])]
    prune_method: String,
    /// Skip the final pass that refits every layer against the dense model's outputs.
    #[arg(long)]
    no_polish: bool,
    /// Weight storage: f32 (exact) or f16 (half the bytes).
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16"])]
    weights: String,
    /// Static shape for an input with symbolic dimensions: NAME=D0,D1,... (repeatable).
    #[arg(long = "input-shape")]
    input_shape: Vec<String>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(serde::Serialize)]
struct Summary {
    onnx: String,
    output: String,
    macs_before: u64,
    macs_after: u64,
    params_before: u64,
    params_after: u64,
    bytes_before: usize,
    bytes_after: usize,
    calib_samples: usize,
    seconds: f64,
    prune: PruneReport,
}

fn parse_prune(s: &str) -> Result<Amount> {
    let (group, amount) = s.split_once(':').with_context(|| format!("--prune {s}: expected GROUP:AMOUNT, e.g. filter:0.5"))?;
    match group {
        "filter" | "channel" => {}
        "shape" | "weight" => bail!("--prune {s}: `{group}` groups need the sparse kernels, which are not implemented yet"),
        g if g.starts_with("block:") => bail!("--prune {s}: block groups need the sparse kernels, which are not implemented yet"),
        g => bail!("--prune {s}: unknown group `{g}` (filter, channel)"),
    }
    let budget = |v: &str| -> Result<f64> {
        let f: f64 = v.parse().with_context(|| format!("--prune {s}: `{v}` is not a fraction"))?;
        if !(f > 0.0 && f <= 1.0) {
            bail!("--prune {s}: the fraction kept must be in (0, 1]");
        }
        Ok(f)
    };
    if let Some(v) = amount.strip_prefix("macs=") {
        return Ok(Amount::Macs(budget(v)?));
    }
    if let Some(v) = amount.strip_prefix("params=") {
        return Ok(Amount::Params(budget(v)?));
    }
    let f: f64 = amount.parse().with_context(|| format!("--prune {s}: `{amount}` is not a fraction"))?;
    if !(0.0..1.0).contains(&f) {
        bail!("--prune {s}: the fraction to remove must be in [0, 1)");
    }
    Ok(Amount::Fraction(f))
}

pub fn run(a: Args) -> Result<()> {
    let t0 = Instant::now();
    let amount = parse_prune(&a.prune)?;
    let bytes = std::fs::read(&a.onnx).with_context(|| format!("reading {}", a.onnx.display()))?;
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    let opts = ImportOptions { input_shapes: super::parse_input_shapes(&a.input_shape)? };
    let graph = import_onnx_bytes(&bytes, &opts).with_context(|| format!("importing {}", a.onnx.display()))?;
    let weights = if a.weights == "f16" { WeightFormat::F16 } else { WeightFormat::F32 };
    let dense = compile(graph.clone(), weights, sha)?;
    let dense_model = sprig_runtime::Model::parse(&dense.bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let before = model_stats(&dense_model, dense.bytes.len() as u64);

    let x = read_f32(&a.calib)?;
    if graph.inputs.len() != 1 {
        bail!("compress needs a single-input model; this one has {} inputs", graph.inputs.len());
    }
    let in_shape = graph.tensors[graph.inputs[0]].shape.clone();
    check_samples(&x, &in_shape, &a.calib.display().to_string())?;
    let n = x.samples().min(a.calib_samples.max(1));
    let samples: Vec<&[f32]> = (0..n).map(|i| x.sample(i)).collect();

    let method = match a.prune_method.as_str() {
        "magnitude" => Method::Magnitude,
        "magnitude-norefit" => Method::MagnitudeNoRefit,
        _ => Method::Envelope,
    };
    let popts = PruneOptions { method, amount, polish: !a.no_polish, ..PruneOptions::default() };
    let (pruned, report) = prune(&graph, &samples, &popts)?;
    let out = compile(pruned, weights, sha)?;
    let model = sprig_runtime::Model::parse(&out.bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let after = model_stats(&model, out.bytes.len() as u64);
    write_atomic(&a.output, &out.bytes)?;
    let summary = Summary {
        onnx: a.onnx.display().to_string(),
        output: a.output.display().to_string(),
        macs_before: before.macs,
        macs_after: after.macs,
        params_before: before.params,
        params_after: after.params,
        bytes_before: dense.bytes.len(),
        bytes_after: out.bytes.len(),
        calib_samples: n,
        seconds: t0.elapsed().as_secs_f64(),
        prune: report,
    };
    for s in &summary.prune.spaces {
        println!(
            "  {:<40} {:>4} -> {:>4} channels ({} dead), relative error {:.4}",
            super::short(&s.producers.join("+"), 40),
            s.channels,
            s.kept,
            s.dead,
            s.relative_error
        );
    }
    for (name, why) in &summary.prune.skipped {
        println!("  {:<40} kept whole: {}", super::short(name, 40), why);
    }
    println!(
        "{} -> {}: MACs {} -> {} ({:.2}x fewer), params {} -> {}, {} -> {} bytes, {} calibration samples, {:.1} s",
        summary.onnx,
        summary.output,
        summary.macs_before,
        summary.macs_after,
        summary.macs_before as f64 / summary.macs_after.max(1) as f64,
        summary.params_before,
        summary.params_after,
        summary.bytes_before,
        summary.bytes_after,
        n,
        summary.seconds
    );
    if let Some(j) = &a.json {
        write_atomic(j, serde_json::to_string_pretty(&summary)?.as_bytes())?;
    }
    Ok(())
}
