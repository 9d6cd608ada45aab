//! `sprig compress --budget`: the device-fitting search, its printed summary, JSON and HTML
//! report. Nothing is written to `-o` unless the budget was met; the reports are written either
//! way (they say why a budget could not be met).

use super::compress::Args;
use crate::budget::report::BudgetReport;
use crate::budget::{fit, search::parse_budget, FitInput};
use crate::compile::write_atomic;
use crate::import::{import_onnx_file_bytes, ImportOptions};
use crate::npy::{check_samples, read_f32};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

fn kib(b: u64) -> String {
    format!("{:.1} KiB", b as f64 / 1024.0)
}

fn print_summary(r: &BudgetReport) {
    let b = &r.budget;
    let lim = |v: Option<u64>| v.map_or("-".to_string(), kib);
    println!(
        "budget on {}: flash {}, file {}, RAM {}, MACs {}, max error {}",
        r.target,
        lim(b.flash),
        lim(b.file),
        lim(b.ram),
        b.macs.map_or("-".into(), |m| m.to_string()),
        b.max_error.map_or("-".into(), |e| e.to_string())
    );
    for (i, c) in r.explored.iter().enumerate() {
        println!(
            "  {} MACs kept {:>3.0} %: flash {:>10}, file {:>10}, RAM {:>10}, {} codebook layers, predicted error {:.2e}, measured {}{}",
            if Some(i) == r.chosen { "*" } else { " " },
            100.0 * c.macs_kept,
            kib(c.flash),
            kib(c.file),
            kib(c.ram),
            c.layer_bits.len(),
            c.predicted_error,
            c.measured_error.map_or("-".into(), |e| format!("{e:.4}")),
            c.note.as_ref().map_or(String::new(), |n| format!(" ({n})"))
        );
    }
    let d = &r.before;
    let acc = |a: Option<f64>| a.map_or("-".into(), |a| format!("{:.2} %", 100.0 * a));
    match &r.after {
        Some(a) => {
            println!("                 dense       ->  fitted");
            println!("  file     {:>12}  -> {:>12}", kib(d.file_bytes), kib(a.file_bytes));
            println!("  flash    {:>12}  -> {:>12}", kib(d.flash), kib(a.flash));
            println!("  RAM      {:>12}  -> {:>12}", kib(d.ram), kib(a.ram));
            println!("  MACs     {:>12}  -> {:>12}", d.macs, a.macs);
            println!(
                "  latency  {:>9.1} µs  -> {:>9.1} µs (predicted {:.1} µs), host, one thread",
                d.latency_us_measured,
                a.latency_us_measured,
                a.latency_us_predicted.unwrap_or(f64::NAN)
            );
            println!("  accuracy {:>12}  -> {:>12}  ({})", acc(d.accuracy), acc(a.accuracy), r.eval_on);
            println!(
                "  vs the ONNX model (tract): top-1 agreement {:.2} %, max error {:.3e}, relative error {:.4}",
                100.0 * a.vs_onnx.top1_agreement,
                a.vs_onnx.max_abs_error,
                a.vs_onnx.relative_error
            );
        }
        None => {
            println!("the budget cannot be met:");
            if let Some(l) = &r.limits {
                for why in &l.reasons {
                    println!("  {why}");
                }
                println!("  smallest flash reached {} ({} B); largest parts:", kib(l.min_flash), l.min_flash);
                for (what, bytes) in l.flash_parts.iter().take(4) {
                    println!("    {:>10}  {what}", kib(*bytes));
                }
                println!("  smallest RAM reached {} ({} B):", kib(l.min_ram), l.min_ram);
                for (what, bytes) in &l.ram_parts {
                    println!("    {:>10}  {what}", kib(*bytes));
                }
            }
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    let budget = parse_budget(a.budget.as_deref().unwrap_or_default(), a.max_error)?;
    let table = crate::size::table()?;
    let Some(target) = table.targets.iter().find(|t| t.target == a.target).cloned() else {
        let known: Vec<&str> = table.targets.iter().map(|t| t.target.as_str()).collect();
        bail!("--target {}: no measured sizes for it (known: {})", a.target, known.join(", "));
    };
    let bytes = std::fs::read(&a.onnx).with_context(|| format!("reading {}", a.onnx.display()))?;
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    let opts = ImportOptions { input_shapes: super::parse_input_shapes(&a.input_shape)? };
    let graph = import_onnx_file_bytes(&bytes, &a.onnx, &opts).with_context(|| format!("importing {}", a.onnx.display()))?;
    if graph.inputs.len() != 1 {
        bail!("compress needs a single-input model; this one has {} inputs", graph.inputs.len());
    }
    let in_shape = graph.tensors[graph.inputs[0]].shape.clone();
    let x = read_f32(&a.calib)?;
    check_samples(&x, &in_shape, &a.calib.display().to_string())?;
    let n = x.samples().min(a.calib_samples.max(1));
    let samples: Vec<&[f32]> = (0..n).map(|i| x.sample(i)).collect();
    let eval = a.eval.as_ref().map(|p| -> Result<_> {
        let e = read_f32(p)?;
        check_samples(&e, &in_shape, &p.display().to_string())?;
        Ok(e)
    });
    let eval = eval.transpose()?;
    let labels = a.labels.as_ref().map(|p| read_f32(p)).transpose()?;
    if let (Some(e), Some(l)) = (&eval, &labels) {
        if l.data.len() < e.samples().min(a.eval_samples) {
            bail!("--labels {}: {} labels for {} eval samples", a.labels.as_ref().unwrap().display(), l.data.len(), e.samples());
        }
        if let Some(bad) = l.data.iter().position(|v| !(v.is_finite() && *v >= 0.0 && v.fract() == 0.0)) {
            bail!("--labels: entry {bad} ({}) is not a class index", l.data[bad]);
        }
    }
    let pb = ProgressBar::with_draw_target(None, if a.quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() });
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").expect("a valid progress template").tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
    );
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    let progress = |m: &str| pb.set_message(m.to_string());
    let input = FitInput {
        onnx: &a.onnx,
        output: a.output.display().to_string(),
        graph: &graph,
        sha,
        calib: &samples,
        eval: eval.as_ref(),
        labels: labels.as_ref().map(|l| l.data.as_slice()),
        eval_limit: a.eval_samples.max(1),
        budget,
        target,
        progress: &progress,
        latency_iters: 200,
        strip_names: a.strip_names,
    };
    let result = fit(&input);
    pb.finish_and_clear();
    let (rep, out) = result?;
    if let Some(j) = &a.json {
        write_atomic(j, serde_json::to_string_pretty(&rep)?.as_bytes())?;
    }
    if let Some(h) = &a.report {
        write_atomic(h, crate::budget::html::render(&rep).as_bytes())?;
    }
    if !a.quiet {
        print_summary(&rep);
    }
    match out {
        Some(bytes) => {
            write_atomic(&a.output, &bytes)?;
            println!("wrote {} ({} bytes) in {:.1} s", a.output.display(), bytes.len(), rep.seconds);
            Ok(())
        }
        None => {
            let why = rep.limits.as_ref().map(|l| l.reasons.join("; ")).unwrap_or_default();
            bail!("the budget cannot be met: {why} ({} not written)", a.output.display())
        }
    }
}
