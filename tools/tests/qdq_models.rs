//! The int8 QuantizeLinear / DequantizeLinear models in `../shared/data/models` convert and run on
//! all of their real eval data (quantized as each model's input DequantizeLinear prescribes,
//! NCHW → NHWC where the model takes NHWC). Their accuracy is that of the fp32 model within the
//! data's stated ±0.5 point per 100 samples (one image of 100), and they match tract where tract
//! evaluates the model soundly.

mod common;

use prost::Message;
use sprig_tools::compile::{convert_file, ConvertOptions};
use sprig_tools::npy::{read_f32, Array};
use sprig_tools::validate::compare;
use tract_onnx::pb::{ModelProto, TensorProto};

/// The single f32 (scale) or integer (zero point) value of an initializer.
fn scalar(t: &TensorProto) -> f64 {
    if let Some(&v) = t.float_data.first() {
        return v as f64;
    }
    if let Some(&v) = t.int32_data.first() {
        return v as f64;
    }
    match t.data_type {
        1 => f32::from_le_bytes(t.raw_data[..4].try_into().unwrap()) as f64,
        2 => t.raw_data[0] as f64,
        3 => t.raw_data[0] as i8 as f64,
        d => panic!("initializer `{}` of type {d}", t.name),
    }
}

/// Input quantization of a QDQ model: (shape of the graph input, scale, zero point).
fn input_quantization(onnx: &std::path::Path) -> (Vec<usize>, f32, f32) {
    let m = ModelProto::decode(&*std::fs::read(onnx).unwrap()).unwrap();
    let g = m.graph.unwrap();
    let vi = &g.input[0];
    let Some(tract_onnx::pb::type_proto::Value::TensorType(tt)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        panic!("no tensor type")
    };
    let shape = tt
        .shape
        .as_ref()
        .unwrap()
        .dim
        .iter()
        .map(|d| match d.value {
            Some(tract_onnx::pb::tensor_shape_proto::dimension::Value::DimValue(v)) => v as usize,
            _ => 1,
        })
        .collect();
    let mut name = vi.name.clone();
    loop {
        let n = g.node.iter().find(|n| n.input.first() == Some(&name)).expect("input consumer");
        match n.op_type.as_str() {
            "Transpose" | "Reshape" => name = n.output[0].clone(),
            "DequantizeLinear" => {
                let init = |k: usize| g.initializer.iter().find(|t| t.name == n.input[k]).expect("constant scale / zero point");
                return (shape, scalar(init(1)) as f32, scalar(init(2)) as f32);
            }
            op => panic!("unexpected {op} after the input"),
        }
    }
}

/// Output quantization of a QDQ model whose output is a QuantizeLinear: (scale, zero point).
fn output_quantization(onnx: &std::path::Path) -> (f32, f32) {
    let m = ModelProto::decode(&*std::fs::read(onnx).unwrap()).unwrap();
    let g = m.graph.unwrap();
    let n = g.node.iter().find(|n| n.output.first() == Some(&g.output[0].name)).expect("output producer");
    assert_eq!(n.op_type, "QuantizeLinear");
    let init = |k: usize| g.initializer.iter().find(|t| t.name == n.input[k]).expect("constant scale / zero point");
    (scalar(init(1)) as f32, scalar(init(2)) as f32)
}

/// `x` (f32, NCHW samples) quantized to int8 as the model's input DequantizeLinear prescribes,
/// transposed to NHWC where the model's input is NHWC.
fn quantize_input(x: &Array, shape: &[usize], scale: f32, zp: f32) -> Array {
    let sample: Vec<usize> = x.shape[1..].to_vec();
    let nhwc = sample.len() == 3 && shape.len() == 4 && shape[3] == sample[0] && sample[0] > 1;
    let mut data = Vec::with_capacity(x.data.len());
    for i in 0..x.samples() {
        let s = x.sample(i);
        let q = |v: f32| ((v / scale).round_ties_even() + zp).clamp(-128.0, 127.0);
        if nhwc {
            let (c, h, w) = (sample[0], sample[1], sample[2]);
            for y in 0..h {
                for xx in 0..w {
                    for ch in 0..c {
                        data.push(q(s[(ch * h + y) * w + xx]));
                    }
                }
            }
        } else {
            data.extend(s.iter().map(|&v| q(v)));
        }
    }
    let mut out_shape = vec![x.samples()];
    out_shape.extend_from_slice(&shape[1..]);
    Array { shape: out_shape, data }
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

/// Outputs per sample.
type Outs = Vec<Vec<f32>>;

/// Converts `qdq` and `fp32`, runs both on the eval data; returns (int8 outputs, tract's outputs
/// for the int8 model, fp32 outputs, int8 inputs).
fn run_pair(data: &std::path::Path, qdq: &str, fp32: &str, eval: &str) -> (Outs, Outs, Outs, Array) {
    let x = read_f32(&data.join("eval").join(eval).join("inputs.npy")).unwrap();
    let q_onnx = data.join("models").join(qdq);
    let (shape, scale, zp) = input_quantization(&q_onnx);
    let xq = quantize_input(&x, &shape, scale, zp);
    let cq = convert_file(&q_onnx, &ConvertOptions::default()).unwrap_or_else(|e| panic!("{qdq}: conversion failed: {e:#}"));
    // The Q → DQ pairs run as the fused operator of format 1.8; the file declares 1.9 (compact
    // tables), and 1.8 when rewritten with fixed tables for older readers.
    let m = sprig_runtime::Model::parse(&cq.bytes).unwrap();
    let fused = (0..m.num_ops()).filter(|&i| m.op(i).unwrap().op.name() == "QuantizeDequantize").count();
    assert!(fused > 0, "{qdq}: no fused QuantizeDequantize");
    assert_eq!(m.minor_version(), sprig_runtime::format::SECTION_TABLE_MINOR);
    let fixed = sprig_tools::writer::unpack_tables(&cq.bytes).unwrap();
    assert_eq!(sprig_runtime::Model::parse(&fixed).unwrap().minor_version(), sprig_runtime::format::QUANTIZE_DEQUANTIZE_MINOR);
    let (_, q) = compare(&cq.bytes, &q_onnx, std::slice::from_ref(&xq), None, None, f64::INFINITY).unwrap();
    let f_onnx = data.join("models").join(fp32);
    let cf = convert_file(&f_onnx, &ConvertOptions::default()).unwrap();
    let (_, f) = compare(&cf.bytes, &f_onnx, std::slice::from_ref(&x), None, None, 1e-4).unwrap();
    println!(
        "{qdq}: {} samples, input scale {scale} zero point {zp}, .sprig {} B, {} operators ({fused} fused Q → DQ pairs), arena {} B",
        x.samples(),
        cq.bytes.len(),
        cq.graph.nodes.len(),
        cq.plan.arena_len
    );
    (q.sprig, q.reference, f.sprig, xq)
}

/// Top-1 accuracy of outputs against labels.
fn accuracy(outs: &[Vec<f32>], labels: &[f32]) -> f64 {
    outs.iter().zip(labels).filter(|(o, &l)| argmax(o) == l as usize).count() as f64 / outs.len() as f64
}

fn classifier(qdq: &str, fp32: &str, eval: &str) {
    let Some(data) = common::shared_data() else { return };
    let (q, t, f, _) = run_pair(&data, qdq, fp32, eval);
    let labels = read_f32(&data.join("eval").join(eval).join("labels.npy")).unwrap().data;
    let (aq, af, at) = (accuracy(&q, &labels), accuracy(&f, &labels), accuracy(&t, &labels));
    let agree = q.iter().zip(&f).filter(|(a, b)| argmax(a) == argmax(b)).count() as f64 / q.len() as f64;
    let in_range = q.iter().flatten().all(|&v| v == v.round() && (-128.0..=127.0).contains(&v));
    println!(
        "{qdq}: accuracy int8 {:.2} % / fp32 {:.2} % (tract on the int8 model {:.2} %), top-1 agreement with fp32 {:.2} %",
        100.0 * aq,
        100.0 * af,
        100.0 * at,
        100.0 * agree
    );
    assert!(in_range, "{qdq}: outputs are not int8 values");
    let slack = (0.005f64).max(1.0 / q.len() as f64) + 1e-12;
    assert!((aq - af).abs() <= slack, "{qdq}: int8 accuracy {aq} vs fp32 {af}");
}

#[test]
fn ic_resnet8_int8() {
    classifier("ic_resnet8_int8_qdq.onnx", "ic_resnet8_fp32.onnx", "ic01");
}

#[test]
fn kws_dscnn_int8() {
    classifier("kws_dscnn_int8_qdq.onnx", "kws_dscnn_fp32.onnx", "kws01");
}

#[test]
fn vww_mobilenetv1_int8() {
    classifier("vww_mobilenetv1_96_int8_qdq.onnx", "vww_mobilenetv1_96_fp32.onnx", "vww01");
}

/// AUC over clips of the mean squared reconstruction error (inputs and outputs in one unit).
fn clip_auc(data: &std::path::Path, x: &[Vec<f32>], outs: &[Vec<f32>]) -> f64 {
    let clip = read_f32(&data.join("eval/ad01/clip.npy")).unwrap().data;
    let labels = read_f32(&data.join("eval/ad01/clip_labels.npy")).unwrap().data;
    let (mut sum, mut cnt) = (vec![0f64; labels.len()], vec![0f64; labels.len()]);
    for ((o, xi), &c) in outs.iter().zip(x).zip(&clip) {
        sum[c as usize] += o.iter().zip(xi).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / o.len() as f64;
        cnt[c as usize] += 1.0;
    }
    let score: Vec<f64> = sum.iter().zip(&cnt).map(|(s, c)| s / c).collect();
    let (mut pairs, mut wins) = (0f64, 0f64);
    for (i, &si) in score.iter().enumerate() {
        for (j, &sj) in score.iter().enumerate() {
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
    wins / pairs
}

#[test]
fn ad_autoencoder_int8() {
    // Dense layers only, where tract evaluates the int8 model soundly: sprig's int8 outputs equal
    // tract's but for rounding ties of the requantization (tract's fixed-point rescale against
    // sprig's f32 one), by one or two steps, on about one value in a thousand.
    let Some(data) = common::shared_data() else { return };
    let (q, t, f, xq) = run_pair(&data, "ad_autoencoder_int8_qdq.onnx", "ad_autoencoder_fp32.onnx", "ad01");
    let (mut diff, mut worst) = (0usize, 0f32);
    for (a, b) in q.iter().flatten().zip(t.iter().flatten()) {
        if a != b {
            diff += 1;
            worst = worst.max((a - b).abs());
        }
    }
    let total = q.len() * q[0].len();
    let x = read_f32(&data.join("eval/ad01/inputs.npy")).unwrap();
    let xs: Vec<Vec<f32>> = (0..x.samples()).map(|i| x.sample(i).to_vec()).collect();
    let onnx = data.join("models/ad_autoencoder_int8_qdq.onnx");
    let ((_, si, zi), (so, zo)) = (input_quantization(&onnx), output_quantization(&onnx));
    let deq = |v: &[f32], s: f32, z: f32| -> Vec<f32> { v.iter().map(|&q| (q - z) * s).collect() };
    let xqs: Vec<Vec<f32>> = (0..xq.samples()).map(|i| deq(xq.sample(i), si, zi)).collect();
    let qs: Vec<Vec<f32>> = q.iter().map(|o| deq(o, so, zo)).collect();
    let ts: Vec<Vec<f32>> = t.iter().map(|o| deq(o, so, zo)).collect();
    let (auc_q, auc_t, auc_f) = (clip_auc(&data, &xqs, &qs), clip_auc(&data, &xqs, &ts), clip_auc(&data, &xs, &f));
    println!(
        "ad_autoencoder_int8_qdq.onnx: {diff} of {total} output values differ from tract (by at most {worst}), AUC int8 {auc_q:.4} (tract {auc_t:.4}) / fp32 {auc_f:.4}"
    );
    assert!(worst <= 2.0 && diff * 1000 <= total, "{diff} values differ from tract, by up to {worst}");
    // 12 clips: the int8 model ranks three more of the 36 anomaly / normal pairs right than the
    // fp32 one (onnxruntime gives the same 0.7778 on the int8 model).
    assert!((auc_q - auc_t).abs() < 1e-9, "AUC int8 {auc_q} vs tract {auc_t}");
}
