//! The project's own model zoo (`models/zoo`, the kinds of models users bring: MobileNetV2/V3
//! blocks, SqueezeNet fire, ResNet, 1-D conv, transformer, shape arithmetic) converts and matches
//! onnxruntime's outputs stored beside each model.

mod common;

use sprig_tools::compile::{convert_file, ConvertOptions};
use sprig_tools::host::HostModel;
use sprig_tools::npy::read_f32;
use sprig_tools::validate::argmax;
use sprig_tools::writer::WeightFormat;

fn check(name: &str) {
    let dir = common::repo_models().join("zoo").join(name);
    let c = convert_file(&dir.join("model.onnx"), &ConvertOptions::default()).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let x = read_f32(&dir.join("input.npy")).unwrap();
    let want = read_f32(&dir.join("expected.npy")).unwrap();
    let mut m = HostModel::new(&c.bytes).unwrap();
    let max_ref = want.data.iter().fold(0f32, |a, v| a.max(v.abs()));
    let mut max_err = 0f32;
    for i in 0..x.samples() {
        let y = m.run(&[x.sample(i)]).unwrap().swap_remove(0);
        let w = want.sample(i);
        assert_eq!(y.len(), w.len(), "{name}: output size");
        for (a, b) in y.iter().zip(w) {
            max_err = max_err.max((a - b).abs());
        }
        if w.len() > 1 && w.len() <= 1000 {
            assert_eq!(argmax(&y), argmax(w), "{name}: top-1 differs on sample {i}");
        }
    }
    println!(
        "{name}: {} ops, max abs err {max_err:.2e} (max |ref| {max_ref:.2e}), arena {} B (lower bound {} B)",
        c.graph.nodes.len(),
        c.plan.arena_len,
        c.plan.lower_bound
    );
    assert!(max_err <= 1e-4 * max_ref.max(1e-3), "{name}: max abs error {max_err} vs max |ref| {max_ref}");
    assert!(c.plan.arena_len as f64 <= 1.1 * c.plan.lower_bound as f64, "{name}: arena above 1.1x the lower bound");
    // f16 weights: same graph, half-size weights, close outputs.
    let opts = ConvertOptions { weights: WeightFormat::F16, ..Default::default() };
    let h = convert_file(&dir.join("model.onnx"), &opts).unwrap();
    assert!(
        h.bytes.len() < c.bytes.len()
            || c.graph.nodes.iter().all(|n| !matches!(n.op, sprig_runtime::Op::Conv(_) | sprig_runtime::Op::Dense { .. }))
    );
    let mut mh = HostModel::new(&h.bytes).unwrap();
    let y = mh.run(&[x.sample(0)]).unwrap().swap_remove(0);
    let err16 = y.iter().zip(want.sample(0)).fold(0f32, |a, (p, q)| a.max((p - q).abs()));
    assert!(err16 <= 2e-2 * max_ref.max(1.0), "{name}: f16 error {err16}");
}

#[test]
fn mobilenetv2_block() {
    check("mobilenetv2_block");
}

#[test]
fn mobilenetv3_block() {
    check("mobilenetv3_block");
}

#[test]
fn squeezenet_fire() {
    check("squeezenet_fire");
}

#[test]
fn resnet_block() {
    check("resnet_block");
}

#[test]
fn conv1d_kws() {
    check("conv1d_kws");
}

#[test]
fn transformer_block() {
    check("transformer_block");
}

#[test]
fn mlp_shape_arith() {
    check("mlp_shape_arith");
}

#[test]
fn digits_examples_convert_and_keep_accuracy() {
    let models = common::repo_models();
    for (onnx, inputs) in [("digits_cnn.onnx", "digits_eval.npy"), ("digits_mlp.onnx", "digits_eval_flat.npy")] {
        let c = convert_file(&models.join(onnx), &ConvertOptions::default()).unwrap();
        let x = read_f32(&models.join(inputs)).unwrap();
        let labels = read_f32(&models.join("digits_eval_labels.npy")).unwrap();
        let mut m = HostModel::new(&c.bytes).unwrap();
        let correct = (0..x.samples()).filter(|&i| argmax(&m.run(&[x.sample(i)]).unwrap()[0]) == labels.data[i] as usize).count();
        let acc = correct as f64 / x.samples() as f64;
        println!("{onnx}: accuracy {:.2} % on {} samples", 100.0 * acc, x.samples());
        assert!(acc > 0.9, "{onnx}: accuracy {acc}");
    }
}
