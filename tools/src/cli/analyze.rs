use crate::analyze::{analyze, ActivationReport};
use crate::compile::write_atomic;
use crate::compress::sparsify::BreakEvenTable;
use crate::import::{import_onnx_file_bytes_unoptimized, ImportOptions};
use crate::npy::{check_samples, read_f32};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Source ONNX model.
    onnx: PathBuf,
    /// Unlabeled calibration data (.npy, samples on the first axis).
    #[arg(long)]
    calib: PathBuf,
    /// Calibration samples to use at most (the first N).
    #[arg(long, default_value_t = 128)]
    calib_samples: usize,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the report as a self-contained HTML page (inline SVG charts) to this file.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Static shape for an input with symbolic dimensions: NAME=D0,D1,... (repeatable).
    #[arg(long = "input-shape")]
    input_shape: Vec<String>,
}

pub fn run(a: Args) -> Result<()> {
    let bytes = std::fs::read(&a.onnx).with_context(|| format!("reading {}", a.onnx.display()))?;
    let opts = ImportOptions { input_shapes: super::parse_input_shapes(&a.input_shape)? };
    let g = import_onnx_file_bytes_unoptimized(&bytes, &a.onnx, &opts).with_context(|| format!("importing {}", a.onnx.display()))?;
    if g.inputs.len() != 1 {
        bail!("analyze needs a single-input model; this one has {} inputs", g.inputs.len());
    }
    let x = read_f32(&a.calib)?;
    check_samples(&x, &g.tensors[g.inputs[0]].shape, &a.calib.display().to_string())?;
    let n = x.samples().min(a.calib_samples.max(1));
    let samples: Vec<&[f32]> = (0..n).map(|i| x.sample(i)).collect();
    let table = BreakEvenTable::builtin();
    let rep = analyze(&g, &samples, table.as_ref(), &a.onnx.display().to_string())?;
    print_report(&rep);
    if let Some(p) = &a.json {
        write_atomic(p, serde_json::to_string_pretty(&rep)?.as_bytes())?;
        println!("wrote {}", p.display());
    }
    if let Some(p) = &a.html {
        write_atomic(p, crate::analyze_html::render(&rep).as_bytes())?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

fn print_report(rep: &ActivationReport) {
    println!("activation sparsity of {} on {} samples", rep.model, rep.samples);
    println!(
        "  ReLU-family outputs: {:.2} % of all elements are exactly zero (mean over layers {:.2} %)",
        100.0 * rep.overall_zero_fraction,
        100.0 * rep.mean_layer_zero_fraction
    );
    match &rep.target {
        Some(t) => println!("  predicted speedups: input-sparse kernel costs measured on {t}"),
        None => println!("  predicted speedups: none (no measured input-sparse kernel costs for {})", std::env::consts::ARCH),
    }
    println!();
    println!("{:<36} {:<10} {:>8} {:>10} {:>8} {:>9}  consumers", "node", "op", "zero %", "dead", "active", "|a|<=.01");
    for l in &rep.layers {
        let near = l.near_zero.iter().find(|(t, _)| *t == 0.01).map_or(0.0, |&(_, f)| f);
        let consumers: Vec<String> = l
            .consumers
            .iter()
            .map(|c| {
                let node = super::short(&c.node, 32);
                match (c.kernel.as_str(), c.predicted_speedup, c.window_zero_fraction) {
                    ("input-sparse", Some(s), _) => format!("{node} input-sparse {s:.2}x"),
                    ("input-sparse", None, _) => format!("{node} input-sparse"),
                    ("window", _, Some(w)) => format!("{node} {:.1} % zero windows", 100.0 * w),
                    _ => node,
                }
            })
            .collect();
        println!(
            "{:<36} {:<10} {:>8.2} {:>10} {:>8} {:>8.2}%  {}{}",
            super::short(&l.node, 36),
            l.op,
            100.0 * l.zero_fraction,
            format!("{}/{}", l.dead_channels.len(), l.channels),
            l.always_active_channels.len(),
            100.0 * near,
            consumers.join(", "),
            if l.relu_family {
                String::new()
            } else {
                format!("  (not ReLU: a ReLU would zero {:.1} %)", 100.0 * l.relu_swap_zero_fraction)
            }
        );
    }
}
