//! Agreement of a `.sprig` model with its source ONNX model run by tract, on real data.

use crate::host::HostModel;
use crate::npy::Array;
use crate::reference::TractModel;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::Path;

/// Agreement between sprig and the reference over a data set (first output).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Samples compared.
    pub samples: usize,
    /// Largest |sprig - tract| over all output values.
    pub max_abs_error: f64,
    /// Mean |sprig - tract|.
    pub mean_abs_error: f64,
    /// Largest |tract| output value.
    pub max_abs_reference: f64,
    /// `max_abs_error / max_abs_reference`.
    pub relative_max_error: f64,
    /// Cosine similarity of all outputs taken together.
    pub cosine_similarity: f64,
    /// Worst per-sample cosine similarity.
    pub min_sample_cosine: f64,
    /// Fraction of samples with the same arg-max.
    pub top1_agreement: f64,
    /// sprig's accuracy against the labels.
    pub sprig_accuracy: Option<f64>,
    /// tract's accuracy against the labels.
    pub reference_accuracy: Option<f64>,
    /// The accepted relative error.
    pub tolerance: f64,
    /// `relative_max_error <= tolerance`.
    pub pass: bool,
}

/// Per-sample first outputs of both engines, for task-specific metrics.
pub struct Outputs {
    /// sprig's first output per sample.
    pub sprig: Vec<Vec<f32>>,
    /// tract's first output per sample.
    pub reference: Vec<Vec<f32>>,
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

/// Index of the largest value (first on ties).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Runs both engines on the first `limit` samples of `inputs` (one array per model input).
pub fn compare(
    sprig_bytes: &[u8],
    onnx: &Path,
    inputs: &[Array],
    labels: Option<&[f32]>,
    limit: Option<usize>,
    tolerance: f64,
) -> Result<(Report, Outputs)> {
    let mut m = HostModel::new(sprig_bytes)?;
    let shapes = m.input_shapes();
    let tract = TractModel::load(onnx, &shapes)?;
    let mut n = inputs.first().map(|a| a.samples()).unwrap_or(0);
    if let Some(l) = limit {
        n = n.min(l);
    }
    if let Some(l) = labels {
        if l.len() < n {
            bail!("{} labels for {} samples", l.len(), n);
        }
    }
    let (mut max_err, mut sum_err, mut count, mut max_ref) = (0f64, 0f64, 0usize, 0f64);
    let (mut dot, mut ss, mut rr, mut min_cos) = (0f64, 0f64, 0f64, 1f64);
    let (mut agree, mut ok_s, mut ok_r) = (0usize, 0usize, 0usize);
    let mut outs = Outputs { sprig: Vec::with_capacity(n), reference: Vec::with_capacity(n) };
    for i in 0..n {
        let ins: Vec<&[f32]> = inputs.iter().map(|x| x.sample(i)).collect();
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
        let (ps, pr) = (argmax(so), argmax(ro));
        agree += (ps == pr) as usize;
        if let Some(l) = labels {
            ok_s += (ps == l[i] as usize) as usize;
            ok_r += (pr == l[i] as usize) as usize;
        }
        outs.sprig.push(s.into_iter().next().unwrap_or_default());
        outs.reference.push(r.into_iter().next().unwrap_or_default());
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
        sprig_accuracy: labels.map(|_| ok_s as f64 / nf),
        reference_accuracy: labels.map(|_| ok_r as f64 / nf),
        tolerance,
        pass: rel <= tolerance,
    };
    Ok((rep, outs))
}
