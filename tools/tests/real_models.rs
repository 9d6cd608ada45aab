//! Every fp32 model in `../shared/data/models` converts, runs on all of its real eval data, and
//! matches tract: max abs error <= 1e-4 x max |reference|, identical top-1, same accuracy; the
//! planned arena stays within 1.1 x its lower bound. The anomaly-detection autoencoder (ten
//! stacked Dense layers) is also held to its exact result, evaluated in f64: there tract's own
//! f32 error is about 1e-4 of the output range, so the comparison with tract allows 2e-4.

mod common;

use sprig_tools::compile::{convert_file, ConvertOptions};
use sprig_tools::npy::{read_f32, Array};
use sprig_tools::validate::compare;
use std::time::Instant;

enum Metric {
    /// Top-1 accuracy against integer labels.
    Accuracy(&'static str),
    /// Anomaly detection: AUC over clips of the mean reconstruction error.
    ClipAuc,
}

fn auc(scores: &[f64], labels: &[f32]) -> f64 {
    let (mut pairs, mut wins) = (0f64, 0f64);
    for (i, &si) in scores.iter().enumerate() {
        for (j, &sj) in scores.iter().enumerate() {
            if labels[i] == 1.0 && labels[j] == 0.0 {
                pairs += 1.0;
                wins += if si > sj {
                    1.0
                } else if si == sj {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    wins / pairs.max(1.0)
}

fn check(model: &str, eval: &str, inputs: &str, metric: Metric) {
    let Some(data) = common::shared_data() else { return };
    let x = read_f32(&data.join("eval").join(eval).join(inputs)).unwrap();
    check_on(&data, model, eval, x, metric, 1e-4);
}

/// Checks `model` on `x` against tract (max abs error at most `tol` × max |reference|) and
/// returns sprig's outputs.
fn check_on(data: &std::path::Path, model: &str, eval: &str, x: Array, metric: Metric, tol: f64) -> Vec<Vec<f32>> {
    let onnx = data.join("models").join(model);
    let t0 = Instant::now();
    let c = convert_file(&onnx, &ConvertOptions::default()).unwrap_or_else(|e| panic!("{model}: conversion failed: {e:#}"));
    let convert_s = t0.elapsed().as_secs_f64();
    let labels = match metric {
        Metric::Accuracy(l) => Some(read_f32(&data.join("eval").join(eval).join(l)).unwrap().data),
        _ => None,
    };
    let (rep, outs) =
        compare(&c.bytes, &onnx, std::slice::from_ref(&x), labels.as_deref(), None, tol).unwrap_or_else(|e| panic!("{model}: {e:#}"));
    let onnx_bytes = std::fs::metadata(&onnx).unwrap().len();
    let ratio = c.plan.arena_len as f64 / c.plan.lower_bound.max(1) as f64;
    let mut line = format!(
        "{model}: {} samples, convert {:.2} s, .sprig {} B vs ONNX {} B, max abs err {:.2e} (rel {:.2e}), top-1 agreement {:.2} %, arena {} B vs lower bound {} B ({:.3}x)",
        rep.samples, convert_s, c.bytes.len(), onnx_bytes, rep.max_abs_error, rep.relative_max_error, 100.0 * rep.top1_agreement, c.plan.arena_len, c.plan.lower_bound, ratio
    );
    if let (Some(s), Some(r)) = (rep.sprig_accuracy, rep.reference_accuracy) {
        line += &format!(", accuracy sprig {:.2} % / tract {:.2} %", 100.0 * s, 100.0 * r);
        assert_eq!(s, r, "{model}: accuracy differs");
    }
    if let Metric::ClipAuc = metric {
        let clip = read_f32(&data.join("eval").join(eval).join("clip.npy")).unwrap().data;
        let clip_labels = read_f32(&data.join("eval").join(eval).join("clip_labels.npy")).unwrap().data;
        let score = |outs: &[Vec<f32>]| -> Vec<f64> {
            let mut sum = vec![0f64; clip_labels.len()];
            let mut cnt = vec![0f64; clip_labels.len()];
            for (i, o) in outs.iter().enumerate() {
                let xi = x.sample(i);
                let mse = o.iter().zip(xi).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / o.len() as f64;
                sum[clip[i] as usize] += mse;
                cnt[clip[i] as usize] += 1.0;
            }
            sum.iter().zip(&cnt).map(|(s, c)| s / c.max(1.0)).collect()
        };
        let (a_s, a_r) = (auc(&score(&outs.sprig), &clip_labels), auc(&score(&outs.reference), &clip_labels));
        line += &format!(", AUC sprig {a_s:.4} / tract {a_r:.4}");
        assert!((a_s - a_r).abs() < 1e-9, "{model}: AUC differs");
    } else {
        assert_eq!(rep.top1_agreement, 1.0, "{model}: top-1 differs on some samples");
    }
    println!("{line}");
    assert!(rep.pass, "{model}: relative max error {:.3e} > {tol:e}", rep.relative_max_error);
    assert!(ratio <= 1.1, "{model}: arena {} is {:.3}x the lower bound {}", c.plan.arena_len, ratio, c.plan.lower_bound);
    outs.sprig
}

#[test]
fn mnist_8() {
    check("mnist-8.onnx", "mnist", "inputs.npy", Metric::Accuracy("labels.npy"));
}

#[test]
fn kws_dscnn() {
    check("kws_dscnn_fp32.onnx", "kws01", "inputs.npy", Metric::Accuracy("labels.npy"));
}

#[test]
fn ic_resnet8() {
    check("ic_resnet8_fp32.onnx", "ic01", "inputs.npy", Metric::Accuracy("labels.npy"));
}

#[test]
fn vww_mobilenetv1() {
    check("vww_mobilenetv1_96_fp32.onnx", "vww01", "inputs.npy", Metric::Accuracy("labels.npy"));
}

#[test]
fn ad_autoencoder() {
    let Some(data) = common::shared_data() else { return };
    let onnx = data.join("models/ad_autoencoder_fp32.onnx");
    let x = read_f32(&data.join("eval/ad01/inputs.npy")).unwrap();
    let exact = exact_f64(&onnx, &x);
    let got = check_on(&data, "ad_autoencoder_fp32.onnx", "ad01", x, Metric::ClipAuc, 2e-4);
    // Measured: sprig 1.1e-5 of the output range, onnxruntime 9.8e-5, tract about 1e-4.
    let range = exact.iter().flatten().fold(0f64, |m, v| m.max(v.abs()));
    let err = got.iter().flatten().zip(exact.iter().flatten()).fold(0f64, |m, (&g, &e)| m.max((g as f64 - e).abs()));
    println!("ad_autoencoder: max abs error vs the f64 evaluation {err:.3e} (rel {:.3e})", err / range);
    assert!(err <= 3e-5 * range, "ad_autoencoder: error {err:.3e} vs f64 > 3e-5 x {range:.3e}");
}

/// The ad_autoencoder graph (MatMul, Add, Relu only) evaluated in f64 on every sample of `x`,
/// from the ONNX file's initializers.
fn exact_f64(onnx: &std::path::Path, x: &Array) -> Vec<Vec<f64>> {
    use std::collections::HashMap;
    use tract_onnx::prelude::Framework;
    let m = tract_onnx::onnx().proto_model_for_path(onnx).unwrap();
    let g = m.graph.unwrap();
    // Tensors as (rows, cols, values); vectors are one row.
    let mut init: HashMap<String, (usize, usize, Vec<f64>)> = HashMap::new();
    for t in &g.initializer {
        let v: Vec<f64> = if t.raw_data.is_empty() {
            t.float_data.iter().map(|&v| v as f64).collect()
        } else {
            t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64).collect()
        };
        let (r, c) = match t.dims.as_slice() {
            [r, c] => (*r as usize, *c as usize),
            _ => (1, v.len()),
        };
        init.insert(t.name.clone(), (r, c, v));
    }
    (0..x.samples())
        .map(|i| {
            let mut env: HashMap<String, Vec<f64>> = HashMap::new();
            env.insert(g.input[0].name.clone(), x.sample(i).iter().map(|&v| v as f64).collect());
            for n in &g.node {
                let a = &env[&n.input[0]];
                let r = match n.op_type.as_str() {
                    "MatMul" => {
                        let (k, cols, w) = &init[&n.input[1]];
                        (0..*cols).map(|j| (0..*k).map(|kk| a[kk] * w[kk * cols + j]).sum()).collect()
                    }
                    "Add" => a.iter().zip(&init[&n.input[1]].2).map(|(a, b)| a + b).collect(),
                    "Relu" => a.iter().map(|v| v.max(0.0)).collect(),
                    op => panic!("ad_autoencoder: unexpected operator {op}"),
                };
                env.insert(n.output[0].clone(), r);
            }
            env.remove(&g.output[0].name).unwrap()
        })
        .collect()
}

#[test]
fn hello_edge_ds_cnn() {
    check("hello_edge_ds_cnn_s.onnx", "kws01_hello_edge", "inputs.npy", Metric::Accuracy("labels.npy"));
}

#[test]
fn hello_edge_cnn() {
    check("hello_edge_cnn_s.onnx", "kws01_hello_edge", "inputs.npy", Metric::Accuracy("labels.npy"));
}

#[test]
fn hello_edge_dnn() {
    // The DNN takes 25 of the 49 MFCC frames: its eval data is the same clips' first 25 frames.
    let Some(data) = common::shared_data() else { return };
    let full = read_f32(&data.join("eval/kws01_hello_edge/inputs.npy")).unwrap();
    let n = full.samples();
    let cut = (0..n).flat_map(|i| full.sample(i)[..250].to_vec()).collect();
    check_on(
        &data,
        "hello_edge_dnn_s.onnx",
        "kws01_hello_edge",
        Array { shape: vec![n, 25, 10], data: cut },
        Metric::Accuracy("labels.npy"),
        1e-4,
    );
}
