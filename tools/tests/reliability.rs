//! Reliability guarantees of the runtime on whole models (docs/RELIABILITY.md): identical inputs
//! give bit-identical outputs across runs and sessions, NaN / Inf inputs run without error and
//! follow the documented semantics, a long soak shows no drift, fuzz crash inputs stay fixed, and
//! every rejection rule has a test and a line in the docs.

mod common;

use std::path::{Path, PathBuf};

use sprig_runtime::{Model, Session};
use sprig_tools::compile::compile;
use sprig_tools::harness;
use sprig_tools::import::{import_onnx, ImportOptions};
use sprig_tools::writer::WeightFormat;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sprig_bytes(onnx: &Path) -> Vec<u8> {
    let g = import_onnx(onnx, &ImportOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", onnx.display()));
    compile(g, WeightFormat::F32, [0; 32]).unwrap().bytes
}

/// The repository's models dense, plus codebook, block-sparse and input-sparse variants written by
/// the CLI, plus (when present) the real models.
fn model_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let r = root();
    let mut out = Vec::new();
    let mut onnx = vec![r.join("models/digits_cnn.onnx"), r.join("models/digits_mlp.onnx")];
    let mut zoo: Vec<PathBuf> =
        std::fs::read_dir(r.join("models/zoo")).unwrap().flatten().map(|e| e.path().join("model.onnx")).filter(|p| p.exists()).collect();
    zoo.sort();
    onnx.extend(zoo);
    if let Some(shared) = common::shared_data() {
        for m in ["mnist-8.onnx", "kws_dscnn_fp32.onnx", "ic_resnet8_fp32.onnx", "vww_mobilenetv1_96_fp32.onnx"] {
            onnx.push(shared.join("models").join(m));
        }
    }
    for p in onnx {
        out.push((p.display().to_string(), sprig_bytes(&p)));
    }
    let cnn = r.join("models/digits_cnn.onnx");
    let calib = r.join("models/digits_calib.npy");
    for (name, extra) in [
        ("codebook-4", vec!["--codebook", "4"]),
        ("block-sparse", vec!["--prune", "block:1x4:0.5"]),
        ("input-sparse", vec!["--input-sparse", "all"]),
    ] {
        let o = dir.join(format!("{name}.sprig"));
        let mut args = vec!["compress", common::s(&cnn), "--calib", common::s(&calib), "-o", common::s(&o)];
        args.extend(extra);
        common::ok(&args);
        out.push((format!("digits_cnn {name}"), std::fs::read(&o).unwrap()));
    }
    out
}

/// Aligned copy of a file (the runtime reads f32 constants in place when aligned).
fn aligned(bytes: &[u8]) -> Vec<u128> {
    let mut v = vec![0u128; bytes.len().div_ceil(16)];
    bytemuck::cast_slice_mut::<u128, u8>(&mut v)[..bytes.len()].copy_from_slice(bytes);
    v
}

#[test]
fn identical_inputs_give_identical_bits_across_runs_and_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let files = model_files(dir.path());
    assert!(files.len() >= 12);
    for (name, bytes) in &files {
        let store = aligned(bytes);
        let m = Model::parse(&bytemuck::cast_slice::<u128, u8>(&store)[..bytes.len()]).unwrap();
        // The same file at an odd address: its f32 constants are decoded element by element
        // instead of read as slices, which can change the summation order, so only closeness
        // (not bits) is promised there; repeated runs of that placement are bit-identical.
        let mut odd = vec![0u8; bytes.len() + 1];
        odd[1..].copy_from_slice(bytes);
        let m_odd = Model::parse(&odd[1..]).unwrap();
        let fill: Vec<u8> = (0..4096u32).flat_map(|i| (((i * 7919) % 1000) as f32 / 250.0 - 2.0).to_le_bytes()).collect();
        // run_model asserts two runs in one session and a session over a dirty arena agree.
        let a = harness::run_model(&m, &fill).unwrap_or_else(|| panic!("{name}: did not run"));
        let b = harness::run_model(&m_odd, &fill).unwrap();
        for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
            let (x, y) = (f32::from_bits(*x), f32::from_bits(*y));
            assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0) || (x.is_nan() && y.is_nan()), "{name}: unaligned copy gave {y}, aligned {x}");
        }
    }
}

#[test]
fn nan_and_inf_inputs_run_and_follow_the_documented_semantics() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in model_files(dir.path()) {
        let store = aligned(&bytes);
        let m = Model::parse(&bytemuck::cast_slice::<u128, u8>(&store)[..bytes.len()]).unwrap();
        let mut arena = vec![0u32; m.arena_len().div_ceil(4)];
        let mut s = Session::new(&m, bytemuck::cast_slice_mut(&mut arena)).unwrap();
        for special in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            // Every input element special: the run succeeds (no error, no panic) and gives the
            // same bits twice. Outputs may be NaN, ±Inf or finite (ReLU sends NaN to 0).
            let mut outs = Vec::new();
            for _ in 0..2 {
                for i in 0..m.num_inputs() {
                    s.input_mut(i).unwrap().fill(special);
                }
                s.run().unwrap_or_else(|e| panic!("{name}: input {special}: {e}"));
                outs.push(
                    (0..m.num_outputs()).map(|i| s.output(i).unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>()).collect::<Vec<_>>(),
                );
            }
            assert_eq!(outs[0], outs[1], "{name}: input {special}: runs differ");
        }
        // One NaN in an otherwise ordinary input: an arithmetic path from it to an output gives NaN
        // unless a ReLU / Threshold cut it (NaN → 0); never an error.
        for i in 0..m.num_inputs() {
            let x = s.input_mut(i).unwrap();
            x.iter_mut().enumerate().for_each(|(k, v)| *v = (k % 13) as f32 * 0.1);
            x[x.len() / 2] = f32::NAN;
        }
        s.run().unwrap_or_else(|e| panic!("{name}: one NaN: {e}"));
    }
}

/// A model with no ReLU between input and output: a NaN input reaches every output it feeds.
#[test]
fn nan_propagates_through_arithmetic_to_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("m.onnx");
    // y = softmax(x · W + b) on a 4-vector: no ReLU, so NaN must come out.
    let py = format!(
        "import onnx, numpy as np\nfrom onnx import helper as h, TensorProto as T\n\
         w = h.make_tensor('w', T.FLOAT, [4, 3], np.linspace(-1, 1, 12).astype(np.float32))\n\
         b = h.make_tensor('b', T.FLOAT, [3], [0.1, 0.2, 0.3])\n\
         g = h.make_graph([h.make_node('MatMul', ['x', 'w'], ['m']), h.make_node('Add', ['m', 'b'], ['a']), h.make_node('Softmax', ['a'], ['y'], axis=1)],\n\
         'g', [h.make_tensor_value_info('x', T.FLOAT, [1, 4])], [h.make_tensor_value_info('y', T.FLOAT, [1, 3])], [w, b])\n\
         onnx.save(h.make_model(g, opset_imports=[h.make_opsetid('', 13)]), '{}')\n",
        onnx.display()
    );
    let st = std::process::Command::new("python3").arg("-c").arg(&py).status();
    if !st.is_ok_and(|s| s.success()) {
        eprintln!("skipping: python3 with the onnx package is needed to write the test model");
        return;
    }
    let bytes = sprig_bytes(&onnx);
    let m = Model::parse(&bytes).unwrap();
    let mut arena = vec![0u32; m.arena_len().div_ceil(4)];
    let mut s = Session::new(&m, bytemuck::cast_slice_mut(&mut arena)).unwrap();
    s.input_mut(0).unwrap().copy_from_slice(&[0.5, f32::NAN, 0.25, -1.0]);
    s.run().unwrap();
    assert!(s.output(0).unwrap().iter().all(|v| v.is_nan()), "{:?}", s.output(0).unwrap());
    s.input_mut(0).unwrap().copy_from_slice(&[0.5, 0.5, 0.25, -1.0]);
    s.run().unwrap();
    let y = s.output(0).unwrap();
    assert!(y.iter().all(|v| v.is_finite()) && (y.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{y:?}: NaN leaked into the next run");
}

/// 10⁶ inferences in one session on 16 cycling inputs: every output keeps its first bits.
#[test]
fn a_million_inferences_in_one_session_do_not_drift() {
    let bytes = sprig_bytes(&root().join("models/digits_mlp.onnx"));
    let store = aligned(&bytes);
    let m = Model::parse(&bytemuck::cast_slice::<u128, u8>(&store)[..bytes.len()]).unwrap();
    let x = sprig_tools::npy::read_f32(&root().join("models/digits_eval_flat.npy")).unwrap();
    let mut arena = vec![0u32; m.arena_len().div_ceil(4)];
    let mut s = Session::new(&m, bytemuck::cast_slice_mut(&mut arena)).unwrap();
    let mut first: Vec<Vec<u32>> = Vec::new();
    const RUNS: usize = 1_000_000;
    for k in 0..RUNS {
        let i = k % 16;
        s.input_mut(0).unwrap().copy_from_slice(x.sample(i));
        s.run().unwrap();
        let y = s.output(0).unwrap();
        if k < 16 {
            first.push(y.iter().map(|v| v.to_bits()).collect());
        } else {
            assert!(y.iter().zip(&first[i]).all(|(a, b)| a.to_bits() == *b), "inference {k} (sample {i}) drifted: {y:?}");
        }
    }
}

/// Every crash input the fuzzers found (fuzz/regressions/<target>/) replays without a panic.
#[test]
fn fuzz_regressions_stay_fixed() {
    let dir = root().join("fuzz/regressions");
    let mut n = 0;
    for (target, f) in [
        ("sprig_model", harness::sprig_model as fn(&[u8])),
        ("onnx_bytes", harness::onnx_bytes),
        ("onnx_edit", harness::onnx_edit),
        ("npy_read", harness::npy_read),
    ] {
        let Ok(rd) = std::fs::read_dir(dir.join(target)) else { continue };
        for e in rd.flatten() {
            // Some inputs were hangs (timeouts): a generous bound catches their return.
            let t = std::time::Instant::now();
            f(&std::fs::read(e.path()).unwrap());
            assert!(t.elapsed().as_secs() < 20, "{} took {:?}", e.path().display(), t.elapsed());
            n += 1;
        }
    }
    eprintln!("{n} fuzz regression inputs replayed");
}

/// Every `sprig_runtime::Error` variant (a rejection rule) is asserted by some test and listed in
/// docs/RELIABILITY.md.
#[test]
fn every_rejection_rule_has_a_test_and_a_doc_line() {
    let r = root();
    let src = std::fs::read_to_string(r.join("runtime/src/error.rs")).unwrap();
    let body = &src[src.find("pub enum Error {").unwrap()..];
    let body = &body[..body.find("\n}\n").unwrap()];
    let variants: Vec<&str> = body
        .lines()
        .filter(|l| {
            l.starts_with("    ") && !l.starts_with("     ") && !l.trim_start().starts_with("//") && !l.trim_start().starts_with('#')
        })
        .filter_map(|l| l.trim().split([' ', ',', '{']).next())
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        .collect();
    assert!(variants.len() >= 40, "{variants:?}");
    let mut tests = String::new();
    for d in ["tools/tests", "runtime/tests", "runtime/src", "runtime/src/kernels"] {
        for e in std::fs::read_dir(r.join(d)).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(e.path()).unwrap();
                // In library sources only the test modules count (the rest constructs the errors).
                tests += if d.starts_with("runtime/src") && !e.path().ends_with("tests.rs") {
                    text.find("#[cfg(test)]\nmod ").map_or("", |i| &text[i..])
                } else {
                    &text
                };
            }
        }
    }
    let doc = std::fs::read_to_string(r.join("docs/RELIABILITY.md")).unwrap();
    for v in variants {
        let used = [format!("Error::{v})"), format!("Error::{v},"), format!("Error::{v} {{"), format!("Error::{v};")];
        assert!(used.iter().any(|u| tests.contains(u.as_str())), "rejection rule `{v}` is not asserted by any test");
        assert!(doc.contains(&format!("`{v}`")), "rejection rule `{v}` is missing from docs/RELIABILITY.md");
    }
}

/// From the command line: a hostile ONNX file, a corrupted `.sprig` and a truncated `.npy` each
/// fail with a message naming the file and the rule, and no output file is left behind.
#[test]
fn the_cli_names_the_problem_and_writes_nothing() {
    use prost::Message;
    use tract_onnx::pb::{tensor_proto::DataLocation, ModelProto, StringStringEntryProto};
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("m");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(dir.path().join("secret.bin"), [0u8; 4096]).unwrap();
    // The repo's CNN with its first initializer moved to external data outside the folder.
    let mut m = ModelProto::decode(&*std::fs::read(root().join("models/digits_cnn.onnx")).unwrap()).unwrap();
    let t = &mut m.graph.as_mut().unwrap().initializer[0];
    let tname = t.name.clone();
    let raw = if t.raw_data.is_empty() { t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect() } else { t.raw_data.clone() };
    t.raw_data.clear();
    t.float_data.clear();
    t.data_location = Some(DataLocation::External as i32);
    t.external_data = vec![StringStringEntryProto { key: "location".into(), value: "../secret.bin".into() }];
    let onnx = sub.join("hostile.onnx");
    std::fs::write(&onnx, m.encode_to_vec()).unwrap();
    let out = dir.path().join("out.sprig");
    let e = common::fails(&["convert", common::s(&onnx), "-o", common::s(&out)]);
    assert!(e.contains(&format!("tensor `{tname}`")) && e.contains("../secret.bin") && e.contains("leaves the model's folder"), "{e}");
    assert!(!out.exists());
    // The same weights as external data inside the folder convert, to the same model as inline.
    std::fs::write(sub.join("w.bin"), &raw).unwrap();
    m.graph.as_mut().unwrap().initializer[0].external_data[0].value = "w.bin".into();
    std::fs::write(&onnx, m.encode_to_vec()).unwrap();
    common::ok(&["convert", common::s(&onnx), "-o", common::s(&out)]);

    // A .sprig with one flipped payload byte.
    let good = dir.path().join("good.sprig");
    common::ok(&["convert", common::s(&root().join("models/digits_cnn.onnx")), "-o", common::s(&good)]);
    let (a, b) = (
        Model::parse(&std::fs::read(&out).unwrap()).unwrap().num_tensors(),
        Model::parse(&std::fs::read(&good).unwrap()).unwrap().num_tensors(),
    );
    assert_eq!(a, b);
    let mut b = std::fs::read(&good).unwrap();
    let k = b.len() - 40;
    b[k] ^= 0x10;
    let bad = dir.path().join("bad.sprig");
    std::fs::write(&bad, &b).unwrap();
    let x = root().join("models/digits_eval.npy");
    let y = dir.path().join("y.npy");
    let e = common::fails(&["run", common::s(&bad), "--input", common::s(&x), "--output", common::s(&y)]);
    assert!(e.contains("bad.sprig") && e.contains("checksum"), "{e}");
    assert!(!y.exists());

    // A truncated .npy.
    let xb = std::fs::read(&x).unwrap();
    let short = dir.path().join("short.npy");
    std::fs::write(&short, &xb[..xb.len() / 2]).unwrap();
    let e = common::fails(&["run", common::s(&good), "--input", common::s(&short), "--output", common::s(&y)]);
    assert!(e.contains("short.npy") && e.contains("truncated or corrupt header"), "{e}");
    assert!(!y.exists());
}
