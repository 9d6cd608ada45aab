//! The repository's digits CNN with its calibration and eval data, and output comparisons (shared
//! by the pruning and sparsification tests).

use super::common;
use sprig_tools::compile::compile;
use sprig_tools::host::HostModel;
use sprig_tools::import::{import_onnx, ImportOptions};
use sprig_tools::ir::Graph;
use sprig_tools::npy::{read_f32, Array};
use sprig_tools::writer::WeightFormat;

pub fn outputs(g: &Graph, x: &Array, range: std::ops::Range<usize>) -> Vec<Vec<f32>> {
    let c = compile(g.clone(), WeightFormat::F32, [0; 32]).unwrap();
    let mut m = HostModel::new(&c.bytes).unwrap();
    range.map(|i| m.run(&[x.sample(i)]).unwrap().concat()).collect()
}

pub fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |b, (i, &x)| if x > v[b] { i } else { b })
}

pub fn agreement(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    a.iter().zip(b).filter(|(p, q)| argmax(p) == argmax(q)).count() as f64 / a.len() as f64
}

pub fn digits() -> (Graph, Array, Array) {
    let m = common::repo_models();
    let g = import_onnx(&m.join("digits_cnn.onnx"), &ImportOptions::default()).unwrap();
    (g, read_f32(&m.join("digits_calib.npy")).unwrap(), read_f32(&m.join("digits_eval.npy")).unwrap())
}
