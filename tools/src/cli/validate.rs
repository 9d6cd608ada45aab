use crate::host::HostModel;
use crate::reference::TractModel;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .sprig model.
    model: PathBuf,
    /// The source ONNX model (run by tract as the reference).
    #[arg(long)]
    onnx: PathBuf,
    /// Input samples: FILE.npy, or NAME=FILE.npy per input.
    #[arg(long, required = true)]
    input: Vec<String>,
    /// Integer class labels (N,), to report both accuracies.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Largest accepted max-abs error relative to max |reference output|.
    #[arg(long, default_value_t = 1e-4)]
    tolerance: f64,
    /// Validate at most this many samples.
    #[arg(long)]
    limit: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Agreement between sprig and the reference over a data set.
#[derive(Debug, Serialize)]
pub struct Report {
    pub samples: usize,
    pub max_abs_error: f64,
    pub mean_abs_error: f64,
    pub max_abs_reference: f64,
    pub relative_max_error: f64,
    pub cosine_similarity: f64,
    pub min_sample_cosine: f64,
    pub top1_agreement: f64,
    pub sprig_accuracy: Option<f64>,
    pub reference_accuracy: Option<f64>,
    pub tolerance: f64,
    pub pass: bool,
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        ab += x as f64 * y as f64;
        aa += x as f64 * x as f64;
        bb += y as f64 * y as f64;
    }
    if aa == 0.0 && bb == 0.0 {
        1.0
    } else {
        ab / (aa.sqrt() * bb.sqrt()).max(f64::MIN_POSITIVE)
    }
}

pub fn run(a: Args) -> Result<()> {
    let bytes = std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    let mut m = HostModel::new(&bytes).with_context(|| format!("loading {}", a.model.display()))?;
    let shapes = m.input_shapes();
    let names: Vec<(String, Vec<usize>)> = m.model.inputs().map(|io| io.name.to_string()).zip(shapes.clone()).collect();
    let xs = super::load_inputs(&a.input, &names)?;
    let tract = TractModel::load(&a.onnx, &shapes)?;
    let mut n = xs[0].samples();
    if let Some(l) = a.limit {
        n = n.min(l);
    }
    let labels = match &a.labels {
        Some(p) => {
            let l = crate::npy::read_f32(p)?;
            if l.data.len() < n {
                bail!("{}: {} labels for {} samples", p.display(), l.data.len(), n);
            }
            Some(l.data)
        }
        None => None,
    };
    let (mut max_err, mut sum_err, mut count, mut max_ref) = (0f64, 0f64, 0usize, 0f64);
    let (mut dot, mut ss, mut rr, mut min_cos) = (0f64, 0f64, 0f64, 1f64);
    let (mut agree, mut ok_s, mut ok_r) = (0usize, 0usize, 0usize);
    for i in 0..n {
        let ins: Vec<&[f32]> = xs.iter().map(|x| x.sample(i)).collect();
        let s = m.run(&ins).with_context(|| format!("sprig, sample {i}"))?;
        let tin: Vec<(&[usize], &[f32])> = shapes.iter().map(|s| s.as_slice()).zip(ins.iter().copied()).collect();
        let r = tract.run(&tin).with_context(|| format!("tract, sample {i}"))?;
        let (so, ro) = (&s[0], &r[0]);
        if so.len() != ro.len() {
            bail!("output size differs: sprig {} values, tract {}", so.len(), ro.len());
        }
        for (&x, &y) in so.iter().zip(ro.iter()) {
            let e = (x as f64 - y as f64).abs();
            max_err = max_err.max(if e.is_nan() { f64::INFINITY } else { e });
            sum_err += e;
            max_ref = max_ref.max((y as f64).abs());
            dot += x as f64 * y as f64;
            ss += x as f64 * x as f64;
            rr += y as f64 * y as f64;
        }
        count += so.len();
        min_cos = min_cos.min(cosine(so, ro));
        let (ps, pr) = (super::argmax(so), super::argmax(ro));
        agree += (ps == pr) as usize;
        if let Some(l) = &labels {
            ok_s += (ps == l[i] as usize) as usize;
            ok_r += (pr == l[i] as usize) as usize;
        }
    }
    let nf = n.max(1) as f64;
    let rel = max_err / max_ref.max(f64::MIN_POSITIVE);
    let rep = Report {
        samples: n,
        max_abs_error: max_err,
        mean_abs_error: sum_err / count.max(1) as f64,
        max_abs_reference: max_ref,
        relative_max_error: rel,
        cosine_similarity: if ss == 0.0 && rr == 0.0 { 1.0 } else { dot / (ss.sqrt() * rr.sqrt()).max(f64::MIN_POSITIVE) },
        min_sample_cosine: min_cos,
        top1_agreement: agree as f64 / nf,
        sprig_accuracy: labels.as_ref().map(|_| ok_s as f64 / nf),
        reference_accuracy: labels.as_ref().map(|_| ok_r as f64 / nf),
        tolerance: a.tolerance,
        pass: rel <= a.tolerance,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        println!("validated {} samples of {} against tract ({})", n, a.model.display(), a.onnx.display());
        println!(
            "  max abs error   {:.3e}  (relative to max |ref| {:.3e}: {:.3e}, tolerance {:.1e})",
            rep.max_abs_error, max_ref, rel, a.tolerance
        );
        println!("  mean abs error  {:.3e}", rep.mean_abs_error);
        println!("  cosine          {:.8}  (worst sample {:.8})", rep.cosine_similarity, rep.min_sample_cosine);
        println!("  top-1 agreement {:.2} %", 100.0 * rep.top1_agreement);
        if let (Some(s), Some(r)) = (rep.sprig_accuracy, rep.reference_accuracy) {
            println!("  accuracy        sprig {:.2} %   tract {:.2} %", 100.0 * s, 100.0 * r);
        }
        println!("  {}", if rep.pass { "PASS" } else { "FAIL" });
    }
    if !rep.pass {
        bail!("sprig output differs from the reference: relative max error {rel:.3e} > {:.1e}", a.tolerance);
    }
    Ok(())
}
