//! `sprig analyze` against an independent computation: for every float model in `../shared/data/models`
//! the zero fraction of each ReLU-family ONNX tensor, counted on tract's outputs for the same
//! tensors and samples, agrees with the analysis to 0.1 percentage point per layer.

mod common;

use sprig_tools::analyze::analyze;
use sprig_tools::import::{import_onnx_bytes_unoptimized, ImportOptions};
use sprig_tools::npy::read_f32;
use sprig_tools::reference::TractModel;

/// Model, eval folder, number of leading values of a sample the model reads (None: all).
/// (The int8 QDQ models take int8 inputs, which sprig does not import.)
const MODELS: [(&str, &str, Option<usize>); 8] = [
    ("mnist-8.onnx", "mnist", None),
    ("kws_dscnn_fp32.onnx", "kws01", None),
    ("ic_resnet8_fp32.onnx", "ic01", None),
    ("vww_mobilenetv1_96_fp32.onnx", "vww01", None),
    ("ad_autoencoder_fp32.onnx", "ad01", None),
    ("hello_edge_ds_cnn_s.onnx", "kws01_hello_edge", None),
    ("hello_edge_cnn_s.onnx", "kws01_hello_edge", None),
    ("hello_edge_dnn_s.onnx", "kws01_hello_edge", Some(250)),
];

#[test]
fn zero_fractions_match_tract_on_every_real_model() {
    let Some(data) = common::shared_data() else { return };
    let samples_per_model = 12;
    let mut checked = 0;
    for (file, eval, cut) in MODELS {
        let path = data.join("models").join(file);
        if !path.exists() {
            eprintln!("skipping {file}: not in {}", data.display());
            continue;
        }
        let g = import_onnx_bytes_unoptimized(&std::fs::read(&path).unwrap(), &ImportOptions::default()).unwrap();
        let shape = g.tensors[g.inputs[0]].shape.clone();
        let x = read_f32(&data.join("eval").join(eval).join("inputs.npy")).unwrap();
        // Samples spread over the eval set (the AD set is ordered by clip).
        let step = (x.samples() / samples_per_model).max(1);
        let n: usize = shape.iter().product();
        let samples: Vec<Vec<f32>> = (0..samples_per_model).map(|i| x.sample(i * step)[..cut.unwrap_or(n)].to_vec()).collect();
        let refs: Vec<&[f32]> = samples.iter().map(|s| &s[..]).collect();
        let rep = analyze(&g, &refs, None, file).unwrap();
        let relu: Vec<_> = rep.layers.iter().filter(|l| l.relu_family).collect();
        assert!(!relu.is_empty(), "{file}: no ReLU-family output found");
        let names: Vec<String> = relu.iter().map(|l| l.output.clone()).collect();
        let tract = TractModel::load_with_outputs(&path, std::slice::from_ref(&shape), &names).unwrap();
        let (mut zeros, mut total) = (vec![0u64; names.len()], vec![0u64; names.len()]);
        for s in &samples {
            let ys = tract.run(&[(&shape, s)]).unwrap();
            assert_eq!(ys.len(), names.len());
            for (k, y) in ys.iter().enumerate() {
                zeros[k] += y.iter().filter(|&&v| v == 0.0).count() as u64;
                total[k] += y.len() as u64;
            }
        }
        for (k, l) in relu.iter().enumerate() {
            let want = zeros[k] as f64 / total[k] as f64;
            let diff = 100.0 * (l.zero_fraction - want).abs();
            assert!(
                diff <= 0.1,
                "{file} {}: sprig {:.3} % zero, tract {:.3} % ({diff:.3} pt apart)",
                l.output,
                100.0 * l.zero_fraction,
                100.0 * want
            );
            assert_eq!(total[k] as usize, l.shape.iter().product::<usize>() * samples.len(), "{file} {}: element count", l.output);
        }
        eprintln!("{file}: {} ReLU-family tensors agree with tract (overall {:.2} % zero)", relu.len(), 100.0 * rep.overall_zero_fraction);
        checked += 1;
    }
    assert!(checked > 0);
}
