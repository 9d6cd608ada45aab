//! Shared helpers for the benchmarks: locating models and preparing inputs.

use std::path::PathBuf;

/// A model to benchmark: its ONNX path and one real input sample file.
pub struct BenchModel {
    /// Short name used as the criterion group name.
    pub name: &'static str,
    /// ONNX file.
    pub onnx: PathBuf,
    /// `.npy` file whose first sample is the benchmark input.
    pub input: PathBuf,
}

/// The repository's example model plus every real fp32 model in `../shared/data` (when present).
pub fn models() -> Vec<BenchModel> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut v =
        vec![BenchModel { name: "digits_cnn", onnx: root.join("models/digits_cnn.onnx"), input: root.join("models/digits_eval.npy") }];
    let shared = std::env::var_os("SPRIG_SHARED_DATA").map(PathBuf::from).unwrap_or_else(|| root.join("../shared/data"));
    if shared.join("models").is_dir() {
        for (name, file, eval) in [
            ("mnist_8", "mnist-8.onnx", "mnist"),
            ("kws_dscnn", "kws_dscnn_fp32.onnx", "kws01"),
            ("ic_resnet8", "ic_resnet8_fp32.onnx", "ic01"),
            ("vww_mobilenetv1_96", "vww_mobilenetv1_96_fp32.onnx", "vww01"),
            ("ad_autoencoder", "ad_autoencoder_fp32.onnx", "ad01"),
            ("hello_edge_ds_cnn", "hello_edge_ds_cnn_s.onnx", "kws01_hello_edge"),
        ] {
            v.push(BenchModel { name, onnx: shared.join("models").join(file), input: shared.join("eval").join(eval).join("inputs.npy") });
        }
    } else {
        eprintln!("note: {} not found; benchmarking the repository's example model only", shared.display());
    }
    v
}
