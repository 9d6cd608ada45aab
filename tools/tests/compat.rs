//! Files written by earlier format versions stay readable and give the same results.

mod common;

use sprig_tools::host::HostModel;
use sprig_tools::npy::read_f32;
use sprig_tools::reference::TractModel;

/// The firmware's built-in example is what the current writer makes of `models/digits_cnn.onnx`
/// (the firmware reads the tables of format 1.9 and later only). Regenerate it with
/// `cargo run -p sprig-tools --bin sprig -- convert models/digits_cnn.onnx -o firmware/digits_cnn.sprig`.
#[test]
fn the_firmware_example_is_the_current_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.sprig");
    let onnx = common::repo_models().join("digits_cnn.onnx");
    common::ok(&["convert", common::s(&onnx), "-o", common::s(&out)]);
    let want = std::fs::read(&out).unwrap();
    let got = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/digits_cnn.sprig")).unwrap();
    assert!(got == want, "firmware/digits_cnn.sprig is stale: regenerate it (see this test's comment)");
}

/// `digits_cnn_v1.0.sprig` was written by sprig-tools 0.1.0 (format 1.0) from
/// `models/digits_cnn.onnx`; never regenerate it.
#[test]
fn reads_format_1_0_files() {
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/digits_cnn_v1.0.sprig")).unwrap();
    let mut m = HostModel::new(&bytes).unwrap();
    assert_eq!(m.model.minor_version(), 0);
    let onnx = common::repo_models().join("digits_cnn.onnx");
    let tract = TractModel::load(&onnx, &m.input_shapes()).unwrap();
    let x = read_f32(&common::repo_models().join("digits_eval.npy")).unwrap();
    for i in 0..20 {
        let y = m.run(&[x.sample(i)]).unwrap().swap_remove(0);
        let r = tract.run(&[(&[1, 1, 8, 8], x.sample(i))]).unwrap().swap_remove(0);
        for (a, b) in y.iter().zip(&r) {
            assert!((a - b).abs() <= 1e-5, "sample {i}: {a} vs {b}");
        }
    }
}

/// `digits_cnn_v1.9.sprig` was written by sprig-tools at format 1.9 (fixed section table, compact
/// tables) from `models/digits_cnn.onnx`; never regenerate it. It reads as the same model, with
/// bit-identical outputs, as the current (1.10) conversion, whose section table is smaller.
#[test]
fn reads_format_1_9_files() {
    let old = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/digits_cnn_v1.9.sprig")).unwrap();
    let new = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/digits_cnn.sprig")).unwrap();
    let (mut a, mut b) = (HostModel::new(&old).unwrap(), HostModel::new(&new).unwrap());
    assert_eq!((a.model.minor_version(), b.model.minor_version()), (9, sprig_runtime::format::SECTION_TABLE_MINOR));
    assert!(new.len() < old.len(), "{} vs {}", new.len(), old.len());
    common::assert_same_model(&a.model, &b.model);
    let x = read_f32(&common::repo_models().join("digits_eval.npy")).unwrap();
    for i in 0..20 {
        let (ya, yb) = (a.run(&[x.sample(i)]).unwrap(), b.run(&[x.sample(i)]).unwrap());
        assert_eq!(ya, yb, "sample {i}");
    }
}
