use crate::host::HostModel;
use crate::reference::TractModel;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .sprig model.
    model: PathBuf,
    /// Also time the source ONNX model with tract, on the same input, in the same run.
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// Also time another .sprig model of the same inputs (e.g. the dense model beside a pruned
    /// one), interleaved run by run; reports the speedup over it.
    #[arg(long, conflicts_with = "onnx")]
    baseline: Option<PathBuf>,
    /// Input samples; a deterministic pattern when absent.
    #[arg(long)]
    input: Vec<String>,
    /// Cycle through the first N samples of --input, one per timed run (activation sparsity,
    /// and so input-sparse kernels, depend on the data).
    #[arg(long, default_value_t = 1)]
    samples: usize,
    /// Timed iterations (after warm-up).
    #[arg(long, default_value_t = 200)]
    iters: usize,
    /// Also time each layer (median per operator) and list them with their share of the
    /// inference; with --baseline, the baseline's layers too (interleaved in rounds), matched
    /// by position and name, with the speedup.
    #[arg(long, visible_alias = "profile")]
    per_layer: bool,
    /// Run the portable loops instead of this CPU's SIMD kernels (to measure what they gain).
    #[arg(long)]
    no_simd: bool,
    /// Run the AVX2 + FMA kernels on an AVX-512 CPU (to time the tier an x86 CPU without
    /// AVX-512 runs); no effect elsewhere.
    #[arg(long)]
    no_avx512: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct LayerTime {
    name: String,
    op: String,
    macs: u64,
    kernel: String,
    median_us: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_kernel: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    iters: usize,
    kernels: &'static str,
    release_build: bool,
    sprig_median_us: f64,
    sprig_p90_us: f64,
    tract_median_us: Option<f64>,
    tract_p90_us: Option<f64>,
    ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_median_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    speedup_over_baseline: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    layers: Option<Vec<LayerTime>>,
}

pub fn run(a: Args) -> Result<()> {
    if a.no_simd {
        sprig_runtime::kernels::set_simd(false);
    }
    if a.no_avx512 {
        sprig_runtime::kernels::set_avx512(false);
    }
    let bytes = crate::host::map_file(&a.model)?;
    let mut m = HostModel::new(&bytes).with_context(|| format!("loading {}", a.model.display()))?;
    let shapes = m.input_shapes();
    let names: Vec<(String, Vec<usize>)> = m.model.inputs().map(|io| io.name.to_string()).zip(shapes.clone()).collect();
    // sets[k][i]: input i of sample k.
    let sets: Vec<Vec<Vec<f32>>> = if a.input.is_empty() {
        vec![shapes.iter().map(|s| (0..s.iter().product::<usize>()).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect()).collect()]
    } else {
        let arrays = super::load_inputs(&a.input, &names)?;
        let n = arrays.iter().map(|x| x.samples()).min().unwrap_or(0).min(a.samples.max(1));
        if n == 0 {
            anyhow::bail!("--input has no samples");
        }
        (0..n).map(|k| arrays.iter().map(|x| x.sample(k).to_vec()).collect()).collect()
    };
    let set_refs: Vec<Vec<&[f32]>> = sets.iter().map(|s| s.iter().map(|v| v.as_slice()).collect()).collect();
    let ins: Vec<&[f32]> = set_refs[0].clone();
    let tract = a.onnx.as_ref().map(|p| TractModel::load(p, &shapes)).transpose()?;
    let tin: Vec<(&[usize], &[f32])> = shapes.iter().map(|s| s.as_slice()).zip(ins.iter().copied()).collect();
    let mut run_tract = || -> Result<()> { tract.as_ref().map_or(Ok(()), |t| t.run(&tin).map(|_| ())) };
    let base_bytes = a.baseline.as_ref().map(|p| crate::host::map_file(p)).transpose()?;
    let mut base = match &base_bytes {
        Some(b) => {
            let h = HostModel::new(b)
                .with_context(|| format!("loading {}", a.baseline.as_ref().map(|p| p.display().to_string()).unwrap_or_default()))?;
            if h.input_shapes() != shapes {
                anyhow::bail!("the baseline's inputs {:?} differ from the model's {:?}", h.input_shapes(), shapes);
            }
            Some(h)
        }
        None => None,
    };
    let base_k = std::cell::Cell::new(0usize);
    let mut run_base = || -> Result<()> {
        let k = base_k.get();
        base_k.set(k + 1);
        base.as_mut().map_or(Ok(()), |b| b.run_in_place(&set_refs[k % set_refs.len()]))
    };
    let other: Option<&mut dyn FnMut() -> Result<()>> = if tract.is_some() {
        Some(&mut run_tract)
    } else if base_bytes.is_some() {
        Some(&mut run_base)
    } else {
        None
    };
    let mut k = 0usize;
    let ((sm, sp), t) = crate::host::time_interleaved(
        a.iters,
        || {
            k += 1;
            m.run_in_place(&set_refs[(k - 1) % set_refs.len()])
        },
        other,
    )?;
    let (bm, t) = if a.baseline.is_some() { (t.map(|t| t.0), None) } else { (None, t) };
    let (tm, tp) = (t.map(|t| t.0), t.map(|t| t.1));
    let layers = if a.per_layer {
        // Rounds alternate between the model and the baseline so both see the same conditions.
        let rounds = 10;
        let per = (a.iters / rounds).max(1);
        let mut mt: Vec<Vec<f64>> = vec![Vec::new(); m.model.num_ops()];
        let mut bt: Vec<Vec<f64>> = vec![Vec::new(); base.as_ref().map_or(0, |b| b.model.num_ops())];
        for _ in 0..rounds {
            for (acc, t) in mt.iter_mut().zip(m.profile_runs(&set_refs, per)?) {
                acc.extend(t);
            }
            if let Some(b) = base.as_mut() {
                for (acc, t) in bt.iter_mut().zip(b.profile_runs(&set_refs, per)?) {
                    acc.extend(t);
                }
            }
        }
        let st = crate::stats::model_stats(&m.model, bytes.len() as u64);
        let bst = base.as_ref().map(|b| crate::stats::model_stats(&b.model, 0));
        // The baseline's layer at the same position with the same name and op (the same graph
        // compiled differently), if any.
        let matching = |i: usize, name: &str, op: &str| -> Option<usize> {
            let b = bst.as_ref()?;
            b.layers.get(i).filter(|l| l.name == name && l.op == op).map(|_| i)
        };
        Some(
            st.layers
                .into_iter()
                .zip(mt)
                .enumerate()
                .map(|(i, (l, t))| {
                    let j = matching(i, &l.name, &l.op);
                    LayerTime {
                        baseline_us: j.map(|j| crate::host::median(bt[j].clone())),
                        baseline_kernel: j.and_then(|j| bst.as_ref().map(|b| b.layers[j].kernel.clone())),
                        name: l.name,
                        op: l.op,
                        macs: l.macs,
                        // Chains of pointwise and depthwise layers kept in blocks of 16
                        // channels on this host.
                        kernel: if m.blocked(i) { format!("{}+blocked", l.kernel) } else { l.kernel },
                        median_us: crate::host::median(t),
                    }
                })
                .collect::<Vec<_>>(),
        )
    } else {
        None
    };
    let rep = Report {
        iters: a.iters,
        kernels: sprig_runtime::kernels::simd_name(),
        release_build: !cfg!(debug_assertions),
        sprig_median_us: sm,
        sprig_p90_us: sp,
        tract_median_us: tm,
        tract_p90_us: tp,
        ratio: tm.map(|t| sm / t),
        baseline_median_us: bm,
        speedup_over_baseline: bm.map(|b| b / sm),
        layers,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
        return Ok(());
    }
    if cfg!(debug_assertions) {
        println!("warning: this is a debug build; build with --release for meaningful timings");
    }
    println!(
        "sprig: median {:.1} us, p90 {:.1} us ({} iterations, one thread, {} kernels, interleaved with tract when given)",
        sm,
        sp,
        a.iters,
        sprig_runtime::kernels::simd_name()
    );
    if let (Some(m), Some(p)) = (tm, tp) {
        println!("tract: median {:.1} us, p90 {:.1} us", m, p);
        println!("ratio sprig/tract: {:.2}", sm / m);
    }
    if let Some(b) = bm {
        println!("baseline: median {:.1} us; speedup {:.2}x", b, b / sm);
    }
    if let Some(layers) = &rep.layers {
        println!();
        let with_base = layers.iter().any(|l| l.baseline_us.is_some());
        let total: f64 = layers.iter().map(|l| l.median_us).sum::<f64>().max(1e-9);
        print!("{:<36} {:<10} {:<14} {:>10} {:>10} {:>6} {:>8}", "layer", "op", "kernel", "MACs", "median us", "share", "MMAC/s");
        println!("{}", if with_base { format!(" {:>12} {:>8}", "baseline us", "speedup") } else { String::new() });
        for (i, l) in layers.iter().enumerate() {
            let rate = if l.median_us > 0.0 { l.macs as f64 / l.median_us } else { 0.0 };
            let name = if l.name.is_empty() { format!("#{i}") } else { super::short(&l.name, 36) };
            let share = format!("{:.1}%", 100.0 * l.median_us / total);
            print!("{:<36} {:<10} {:<14} {:>10} {:>10.2} {:>6} {:>8.0}", name, l.op, l.kernel, l.macs, l.median_us, share, rate);
            match l.baseline_us {
                Some(b) => println!(" {:>12.2} {:>7.2}x", b, b / l.median_us.max(1e-9)),
                None => println!(),
            }
        }
    }
    Ok(())
}
