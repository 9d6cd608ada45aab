//! The `sprig` binary end to end: happy paths, JSON keys, and bad input (clear error, non-zero
//! exit, no output file left behind).

mod common;

use common::{fails, ok, s, sprig};

use sprig_tools::npy::{read_f32, write_f32, Array};
use std::path::PathBuf;

struct Fixture {
    dir: tempfile::TempDir,
    onnx: PathBuf,
    model: PathBuf,
    eval: PathBuf,
    labels: PathBuf,
}

fn converted() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let models = common::repo_models();
    let model = dir.path().join("cnn.sprig");
    let onnx = models.join("digits_cnn.onnx");
    ok(&["convert", s(&onnx), "-o", s(&model)]);
    Fixture { onnx, model, eval: models.join("digits_eval.npy"), labels: models.join("digits_eval_labels.npy"), dir }
}

#[test]
fn run_writes_one_output_row_per_sample() {
    let f = converted();
    let out = f.dir.path().join("y.npy");
    ok(&["run", s(&f.model), "--input", s(&f.eval), "--output", s(&out)]);
    let y = read_f32(&out).unwrap();
    assert_eq!(y.shape, vec![500, 10]);
    for i in 0..y.samples() {
        let sum: f32 = y.sample(i).iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "softmax row {i} sums to {sum}");
    }
}

#[test]
fn validate_reports_agreement_and_accuracy() {
    let f = converted();
    let out = ok(&["validate", s(&f.model), "--onnx", s(&f.onnx), "--input", s(&f.eval), "--labels", s(&f.labels), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["samples"], 500);
    assert_eq!(v["pass"], true);
    assert_eq!(v["top1_agreement"], 1.0);
    assert_eq!(v["sprig_accuracy"], v["reference_accuracy"]);
    assert!(v["sprig_accuracy"].as_f64().unwrap() > 0.9);
}

#[test]
fn inspect_json_has_the_documented_keys() {
    let f = converted();
    let v: serde_json::Value = serde_json::from_str(&ok(&["inspect", s(&f.model), "--json"])).unwrap();
    for k in ["file_bytes", "weight_bytes", "params", "macs", "arena_bytes", "arena_lower_bound_bytes", "layers"] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    let layers = v["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    for k in ["name", "op", "macs", "weight_bytes", "encoding", "kernel"] {
        assert!(layers[0].get(k).is_some(), "layer missing {k}");
    }
    // Conv(1→8,3x3)+Conv dw(8,3x3)+Conv(8→16,1x1) on 8x8, Dense 16→10.
    assert_eq!(v["macs"], 64 * (8 * 9 + 8 * 9 + 16 * 8) + 160);
    assert_eq!(v["file_bytes"], std::fs::metadata(&f.model).unwrap().len());
}

#[test]
fn bench_json_has_sprig_tract_and_ratio() {
    let f = converted();
    let out = ok(&["bench", s(&f.model), "--onnx", s(&f.onnx), "--iters", "5", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["sprig_median_us"].as_f64().unwrap() > 0.0);
    assert!(v["tract_median_us"].as_f64().unwrap() > 0.0);
    assert!(v["ratio"].as_f64().unwrap() > 0.0);
}

#[test]
fn fixed_tables_write_format_1_5_with_identical_outputs() {
    let f = converted();
    let fixed = f.dir.path().join("fixed.sprig");
    ok(&["convert", s(&f.onnx), "-o", s(&fixed), "--fixed-tables"]);
    let (p, x) = (std::fs::read(&f.model).unwrap(), std::fs::read(&fixed).unwrap());
    assert_eq!((u16::from_le_bytes([p[10], p[11]]), u16::from_le_bytes([x[10], x[11]])), (10, 5));
    assert!(x.len() > p.len(), "{} vs {}", x.len(), p.len());
    let run = |m: &PathBuf, out: &str| {
        let o = f.dir.path().join(out);
        ok(&["run", s(m), "--input", s(&f.eval), "--output", s(&o)]);
        read_f32(&o).unwrap().data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    assert_eq!(run(&f.model, "p.npy"), run(&fixed, "x.npy"));
}

#[test]
fn f16_weights_are_smaller_and_still_accurate() {
    let f = converted();
    let half = f.dir.path().join("h.sprig");
    ok(&["convert", s(&f.onnx), "-o", s(&half), "--weights", "f16"]);
    let v: serde_json::Value = serde_json::from_str(&ok(&["inspect", s(&half), "--json"])).unwrap();
    assert!(v["layers"].as_array().unwrap().iter().any(|l| l["encoding"] == "f16"));
    let o = sprig(&[
        "validate",
        s(&half),
        "--onnx",
        s(&f.onnx),
        "--input",
        s(&f.eval),
        "--labels",
        s(&f.labels),
        "--json",
        "--tolerance",
        "1e-2",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["top1_agreement"].as_f64().unwrap() > 0.99, "{v}");
    // At the default (exact-storage) tolerance it fails, and says why the outputs differ.
    let err = fails(&["validate", s(&half), "--onnx", s(&f.onnx), "--input", s(&f.eval)]);
    assert!(err.contains("relative max error") && err.contains("f16") && err.contains("--tolerance"), "{err}");
    // An f32 model that fails (a tolerance of 0 with rounding differences) gets no such note.
    let err = fails(&["validate", s(&f.model), "--onnx", s(&f.onnx), "--input", s(&f.eval), "--tolerance", "0"]);
    assert!(!err.contains("lossily"), "{err}");
}

#[test]
fn malformed_onnx_fails_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.onnx");
    std::fs::write(&bad, b"\x08\x07this is not a protobuf model at all \xff\xff\xff").unwrap();
    let out = dir.path().join("o.sprig");
    let err = fails(&["convert", s(&bad), "-o", s(&out)]);
    assert!(err.contains("bad.onnx"), "{err}");
    assert!(!out.exists());
    let truncated = dir.path().join("trunc.onnx");
    let full = std::fs::read(common::repo_models().join("digits_cnn.onnx")).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    let err = fails(&["convert", s(&truncated), "-o", s(&out)]);
    assert!(err.contains("trunc.onnx"), "{err}");
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "a temporary file was left behind");
}

#[test]
fn missing_onnx_names_the_file() {
    let err = fails(&["convert", "/nonexistent/model.onnx", "-o", "/tmp/never.sprig"]);
    assert!(err.contains("/nonexistent/model.onnx"), "{err}");
}

#[test]
fn corrupt_sprig_is_rejected_by_name() {
    let f = converted();
    let mut b = std::fs::read(&f.model).unwrap();
    let n = b.len();
    b[n - 40] ^= 0xff;
    let bad = f.dir.path().join("bad.sprig");
    std::fs::write(&bad, &b).unwrap();
    assert!(fails(&["inspect", s(&bad)]).contains("checksum"));
    std::fs::write(&bad, &b[..n / 2]).unwrap();
    assert!(fails(&["inspect", s(&bad)]).contains("truncated"));
    std::fs::write(&bad, b"").unwrap();
    assert!(fails(&["inspect", s(&bad)]).contains("empty"));
}

#[test]
fn wrong_input_shape_and_nan_are_clear_errors() {
    let f = converted();
    let wrong = f.dir.path().join("wrong.npy");
    write_f32(&wrong, &Array { shape: vec![3, 1, 7, 7], data: vec![0.5; 3 * 49] }).unwrap();
    let out = f.dir.path().join("y.npy");
    let err = fails(&["run", s(&f.model), "--input", s(&wrong), "--output", s(&out)]);
    assert!(err.contains("[1, 1, 8, 8]") && err.contains("wrong.npy"), "{err}");
    assert!(!out.exists());
    let nan = f.dir.path().join("nan.npy");
    let mut data = vec![0.5; 2 * 64];
    data[64 + 5] = f32::NAN;
    write_f32(&nan, &Array { shape: vec![2, 1, 8, 8], data }).unwrap();
    let err = fails(&["run", s(&f.model), "--input", s(&nan), "--output", s(&out)]);
    assert!(err.contains("sample 1") && err.contains("NaN"), "{err}");
    assert!(!out.exists());
}

#[test]
fn int8_qdq_models_convert_with_notes_on_their_integer_inputs_and_size_on_every_target() {
    let Some(data) = common::shared_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q.sprig");
    let log = ok(&["convert", s(&data.join("models/kws_dscnn_int8_qdq.onnx")), "-o", s(&out)]);
    assert!(log.contains("note: integer input `input_1` (INT8)"), "{log}");
    assert!(log.contains("note: integer output `Identity` (INT8)"), "{log}");
    let inspect = ok(&["inspect", s(&out)]);
    assert!(inspect.contains("QuantizeDequantize"), "{inspect}");
    // The fused operator's kernel has a measured flash size on every target.
    let v: serde_json::Value = serde_json::from_str(&ok(&["size", s(&out), "--target", "all", "--json"])).unwrap();
    for r in v.as_array().unwrap() {
        let parts = r["estimate"]["flash_parts"].as_array().unwrap();
        let qdq = parts.iter().find(|p| p["what"].as_str().unwrap().contains("QuantizeDequantize"));
        assert!(qdq.is_some_and(|p| p["bytes"].as_u64().unwrap() > 0), "{r}");
    }
    // Integer-valued input in, class scores as int8 values out.
    let x = dir.path().join("x.npy");
    let y = dir.path().join("y.npy");
    let data_in: Vec<f32> = (0..490).map(|i| ((i * 37) % 256) as f32 - 128.0).collect();
    write_f32(&x, &Array { shape: vec![1, 49, 10, 1], data: data_in }).unwrap();
    ok(&["run", s(&out), "--input", s(&x), "--output", s(&y)]);
    let y = read_f32(&y).unwrap();
    assert_eq!(y.shape, vec![1, 12]);
    assert!(y.data.iter().all(|v| v.fract() == 0.0 && (-128.0..=127.0).contains(v)), "{:?}", y.data);
}

#[test]
fn multi_input_models_take_named_inputs() {
    use sprig_runtime::{BinaryKind, Op};
    use sprig_tools::ir::{Graph, Node};
    let mut g = Graph::default();
    let a = g.add_tensor("a", vec![1, 3], None);
    let b = g.add_tensor("b", vec![1, 3], None);
    let y = g.add_tensor("y", vec![1, 3], None);
    g.inputs = vec![a, b];
    g.outputs = vec![y];
    g.nodes.push(Node { name: "sub".into(), onnx_op: "Sub".into(), op: Op::Binary(BinaryKind::Sub), inputs: vec![a, b], outputs: vec![y] });
    let c = sprig_tools::compile::compile(g, sprig_tools::writer::WeightFormat::F32, [0; 32]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("sub.sprig");
    std::fs::write(&model, &c.bytes).unwrap();
    let (pa, pb, out) = (dir.path().join("a.npy"), dir.path().join("b.npy"), dir.path().join("y.npy"));
    write_f32(&pa, &Array { shape: vec![2, 3], data: vec![1., 2., 3., 4., 5., 6.] }).unwrap();
    write_f32(&pb, &Array { shape: vec![2, 3], data: vec![6., 5., 4., 3., 2., 1.] }).unwrap();
    let (ia, ib) = (format!("a={}", s(&pa)), format!("b={}", s(&pb)));
    ok(&["run", s(&model), "--input", &ib, "--input", &ia, "--output", s(&out)]);
    assert_eq!(read_f32(&out).unwrap().data, vec![-5., -3., -1., 1., 3., 5.]);
    let err = fails(&["run", s(&model), "--input", &ia, "--output", s(&out)]);
    assert!(err.contains("input `b`"), "{err}");
}

#[test]
fn size_estimates_flash_and_ram_for_every_target_from_the_model_and_its_kernels() {
    let f = converted();
    let v: serde_json::Value = serde_json::from_str(&ok(&["size", s(&f.model), "--target", "all", "--json"])).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let file = std::fs::metadata(&f.model).unwrap().len();
    let inspect: serde_json::Value = serde_json::from_str(&ok(&["inspect", s(&f.model), "--json"])).unwrap();
    let arena = inspect["arena_bytes"].as_u64().unwrap().div_ceil(16) * 16;
    for r in rows {
        let e = &r["estimate"];
        let parts = e["flash_parts"].as_array().unwrap();
        let sum: u64 = parts.iter().map(|p| p["bytes"].as_u64().unwrap()).sum();
        assert_eq!(e["flash"].as_u64().unwrap(), sum);
        assert_eq!(parts[0]["bytes"].as_u64().unwrap(), file, "the model file is embedded as is");
        // Only the kernels this model uses: the digits CNN has Conv and Dense, and no Resize.
        let names: Vec<&str> = parts.iter().map(|p| p["what"].as_str().unwrap()).collect();
        assert!(names.contains(&"kernel Conv") && names.contains(&"kernel Dense"), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("Resize")), "{names:?}");
        // Under Conv, the register-blocked Conv kernels its shapes use (its 3 x 3 depthwise rows
        // and 1 x 1 layers; none of several channels): code only where the core has an FPU.
        let conv = names.iter().position(|n| *n == "kernel Conv").unwrap();
        let blocked: Vec<&str> = names[conv + 1..].iter().take_while(|n| n.starts_with("  kernel Conv ")).copied().collect();
        assert_eq!(blocked, ["  kernel Conv 1x1, 4 filters x 4 pixels", "  kernel Conv 3x3 short rows"], "{names:?}");
        let soft = e["target"].as_str().unwrap().starts_with("thumbv6m");
        assert!(parts[conv + 1..conv + 3].iter().all(|p| (p["bytes"].as_u64().unwrap() == 0) == soft), "{parts:?}");
        let ram = e["ram_parts"].as_array().unwrap();
        assert_eq!(ram[0]["bytes"].as_u64().unwrap(), arena);
        assert!(ram[1]["bytes"].as_u64().unwrap() > 1024, "a stack estimate");
        assert!(r["measured"].is_null());
    }
    let text = ok(&["size", s(&f.model)]);
    assert!(text.contains("thumbv7em-none-eabihf") && text.contains("flash") && text.contains("RAM"), "{text}");
    assert!(fails(&["size", s(&f.model), "--target", "riscv32imc-unknown-none-elf"]).contains("unknown target"));
    assert!(ok(&["inspect", s(&f.model)]).contains("device (thumbv7em-none-eabihf): flash"));
}

#[test]
fn compress_prunes_with_calibration_data_and_refuses_bad_specs_without_output() {
    let f = converted();
    let models = common::repo_models();
    let calib = models.join("digits_calib.npy");
    let out = f.dir.path().join("pruned.sprig");
    let json = f.dir.path().join("r.json");
    let text = ok(&["compress", s(&f.onnx), "-o", s(&out), "--calib", s(&calib), "--prune", "filter:macs=0.7", "--json", s(&json)]);
    assert!(text.contains("fewer"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let (before, after) = (v["macs_before"].as_u64().unwrap(), v["macs_after"].as_u64().unwrap());
    assert!(after < before && after as f64 <= 0.75 * before as f64, "{before} -> {after}");
    assert_eq!(v["prune"][0]["method"], "Envelope");
    assert!(!v["prune"][0]["spaces"].as_array().unwrap().is_empty());
    // The result runs and validates against the source model on real data (loosely: it is pruned).
    ok(&["validate", s(&out), "--onnx", s(&f.onnx), "--input", s(&f.eval), "--tolerance", "10"]);
    for (spec, msg) in [
        ("filter", "GROUP:AMOUNT"),
        ("filter:1.5", "[0, 1)"),
        ("filter:macs=0", "(0, 1]"),
        ("block:0x4:0.5", "block shape"),
        ("weight:macs=2", "(0, 1]"),
        ("rows:0.5", "unknown group"),
    ] {
        let bad = f.dir.path().join("bad.sprig");
        let err = fails(&["compress", s(&f.onnx), "-o", s(&bad), "--calib", s(&calib), "--prune", spec]);
        assert!(err.contains(msg), "{spec}: {err}");
        assert!(!bad.exists(), "{spec}: no output on failure");
    }
    // In-layer groups: stored block-sparse (forced here), shown by inspect, and still valid.
    let sparse = f.dir.path().join("sparse.sprig");
    let text = ok(&[
        "compress",
        s(&f.onnx),
        "-o",
        s(&sparse),
        "--calib",
        s(&calib),
        "--prune",
        "block:4x1:0.5",
        "--sparse-storage",
        "sparse",
        "--json",
        s(&json),
    ]);
    assert!(text.contains("bsr 4x1"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(!v["sparsify"][0]["layers"].as_array().unwrap().is_empty());
    assert!(ok(&["inspect", s(&sparse)]).contains("bsr-f32"));
    ok(&["validate", s(&sparse), "--onnx", s(&f.onnx), "--input", s(&f.eval), "--tolerance", "10"]);
    // Calibration data of the wrong shape names the file.
    let err =
        fails(&["compress", s(&f.onnx), "-o", s(&out), "--calib", s(&models.join("digits_eval_labels.npy")), "--prune", "filter:0.5"]);
    assert!(err.contains("digits_eval_labels.npy"), "{err}");
}

#[test]
fn compress_codebook_writes_a_smaller_valid_file_shown_by_inspect() {
    let f = converted();
    let models = common::repo_models();
    let calib = models.join("digits_calib.npy");
    let out = f.dir.path().join("cb.sprig");
    let json = f.dir.path().join("cb.json");
    let text = ok(&["compress", s(&f.onnx), "-o", s(&out), "--calib", s(&calib), "--codebook", "4", "--json", s(&json)]);
    assert!(text.contains("codebook 4 bits") && text.contains("smaller than the ONNX file"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let layers = v["codebook"]["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    for l in layers {
        assert_eq!(l["bits"], 4);
        // Header, row groups and codebooks dominate only tiny layers.
        if l["rows"].as_u64().unwrap() * l["cols"].as_u64().unwrap() >= 1000 {
            assert!(l["bits_per_weight"].as_f64().unwrap() < 5.0, "{l}");
        }
    }
    let (before, after) = (v["bytes_before"].as_u64().unwrap(), v["bytes_after"].as_u64().unwrap());
    assert!(after < before, "{before} -> {after} bytes");
    let (cb, f32b): (u64, u64) =
        layers.iter().map(|l| (l["bytes"].as_u64().unwrap(), l["f32_bytes"].as_u64().unwrap())).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!(cb * 3 < f32b, "codebook payloads {cb} B for {f32b} B of f32 weights");
    let bytes = std::fs::read(&out).unwrap();
    // Compact tables (1.9) and, at 4 bits, u8-affine biases, named per layer in the report; for
    // older readers the fixed tables declare 1.7, the least minor with u8-affine constants.
    assert!(layers.iter().any(|l| l["bias"] == "u8"), "{layers:?}");
    assert!(text.contains("u8 bias"), "{text}");
    assert_eq!(u16::from_le_bytes([bytes[10], bytes[11]]), 10, "format 1.10 (compact tables and section table)");
    let fixed = sprig_tools::writer::unpack_tables(&bytes).unwrap();
    assert_eq!(u16::from_le_bytes([fixed[10], fixed[11]]), 7, "format 1.7 (u8-affine biases)");
    let shown = ok(&["inspect", s(&out)]);
    assert!(shown.contains("codebook 4b"), "{shown}");
    let val: serde_json::Value =
        serde_json::from_str(&ok(&["validate", s(&out), "--onnx", s(&f.onnx), "--input", s(&f.eval), "--tolerance", "10", "--json"]))
            .unwrap();
    assert!(val["top1_agreement"].as_f64().unwrap() >= 0.95, "{val}");
    // Without names the file is smaller and still runs; inspect shows operator indices.
    let bare = f.dir.path().join("bare.sprig");
    ok(&["compress", s(&f.onnx), "-o", s(&bare), "--calib", s(&calib), "--codebook", "4", "--strip-names"]);
    assert!(std::fs::metadata(&bare).unwrap().len() < std::fs::metadata(&out).unwrap().len());
    assert!(ok(&["inspect", s(&bare)]).contains("#0 "));
    ok(&["validate", s(&bare), "--onnx", s(&f.onnx), "--input", s(&f.eval), "--tolerance", "10"]);
    // Pruning then codebooks; bad widths and layer names are refused without output.
    let both = f.dir.path().join("both.sprig");
    ok(&["compress", s(&f.onnx), "-o", s(&both), "--calib", s(&calib), "--prune", "filter:macs=0.7", "--codebook", "3"]);
    assert!(std::fs::metadata(&both).unwrap().len() < std::fs::metadata(&out).unwrap().len());
    for (args, msg) in [
        (vec!["--codebook", "9"], "9"),
        (vec!["--codebook", "4", "--layer-bits", "nope=4"], "nope"),
        (vec!["--codebook", "4", "--layer-bits", "x"], "NODE=BITS"),
        (vec!["--codebook", "4", "--codebook-groups", "0"], "--codebook-groups"),
    ] {
        let bad = f.dir.path().join("bad.sprig");
        let mut a = vec!["compress", s(&f.onnx), "-o", s(&bad), "--calib", s(&calib)];
        a.extend(args.iter().copied());
        let err = fails(&a);
        assert!(err.contains(msg), "{args:?}: {err}");
        assert!(!bad.exists());
    }
}

#[test]
fn analyze_reports_zero_fractions_as_text_json_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let models = common::repo_models();
    let onnx = models.join("digits_mlp.onnx");
    let calib = models.join("digits_eval_flat.npy");
    let (json, html) = (dir.path().join("a.json"), dir.path().join("a.html"));
    let text = ok(&["analyze", s(&onnx), "--calib", s(&calib), "--json", s(&json), "--html", s(&html)]);
    assert!(text.contains("exactly zero") && text.contains("Relu_0"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let overall = v["overall_zero_fraction"].as_f64().unwrap();
    assert!(overall > 0.0 && overall < 1.0, "{overall}");
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    let l = &layers[0];
    for key in
        ["node", "op", "output", "zero_fraction", "channels", "channel_zero_fraction", "dead_channels", "consumers", "predicted_speedup"]
    {
        assert!(l.get(key).is_some(), "layer lacks `{key}`: {l}");
    }
    assert_eq!(l["op"], "Relu");
    let ch = l["channel_zero_fraction"].as_array().unwrap();
    assert_eq!(ch.len() as u64, l["channels"].as_u64().unwrap());
    // The layer fraction is the mean of the channel fractions (every channel has as many elements).
    let mean = ch.iter().map(|c| c.as_f64().unwrap()).sum::<f64>() / ch.len() as f64;
    assert!((mean - l["zero_fraction"].as_f64().unwrap()).abs() < 1e-9);
    for d in l["dead_channels"].as_array().unwrap() {
        assert_eq!(ch[d.as_u64().unwrap() as usize].as_f64().unwrap(), 1.0);
    }
    assert_eq!(l["consumers"][0]["kernel"], "input-sparse");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("Relu_0") && !page.contains("https://"));
    // A calibration file of the wrong shape names the problem and writes nothing.
    let bad = dir.path().join("bad.json");
    let err = fails(&["analyze", s(&onnx), "--calib", s(&models.join("digits_eval_labels.npy")), "--json", s(&bad)]);
    assert!(err.contains("digits_eval_labels.npy"), "{err}");
    assert!(!bad.exists());
}

#[test]
fn compress_act_sparsity_removes_dead_channels_and_picks_input_sparse_kernels() {
    let dir = tempfile::tempdir().unwrap();
    let models = common::repo_models();
    let onnx = models.join("digits_mlp.onnx");
    let data = models.join("digits_eval_flat.npy");
    let (all, never, json) = (dir.path().join("all.sprig"), dir.path().join("never.sprig"), dir.path().join("r.json"));
    // Calibrated on the data it is validated on: removing channels dead on it changes nothing there.
    ok(&["compress", s(&onnx), "-o", s(&all), "--calib", s(&data), "--input-sparse", "all", "--json", s(&json)]);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let dead: u64 = v["dead_channels"]["spaces"].as_array().unwrap().iter().map(|s| s["dead"].as_u64().unwrap()).sum();
    assert!(dead > 0, "{v}");
    let chosen = v["input_sparse"].as_array().unwrap();
    assert_eq!(chosen.len(), 2);
    assert!(chosen.iter().all(|c| c["input_sparse"] == true));
    let bytes = std::fs::read(&all).unwrap();
    assert_eq!(u16::from_le_bytes([bytes[10], bytes[11]]), 10, "format 1.10 (compact tables and section table)");
    assert_eq!(ok(&["inspect", s(&all)]).matches("input-sparse").count(), 2);
    ok(&["validate", s(&all), "--onnx", s(&onnx), "--input", s(&data), "--tolerance", "1e-5"]);
    ok(&["compress", s(&onnx), "-o", s(&never), "--calib", s(&data), "--input-sparse", "never"]);
    assert!(!ok(&["inspect", s(&never)]).contains("input-sparse"));
    let y_all = dir.path().join("all.npy");
    let y_never = dir.path().join("never.npy");
    ok(&["run", s(&all), "--input", s(&data), "--output", s(&y_all)]);
    ok(&["run", s(&never), "--input", s(&data), "--output", s(&y_never)]);
    let (a, b) = (sprig_tools::npy::read_f32(&y_all).unwrap(), sprig_tools::npy::read_f32(&y_never).unwrap());
    let worst = a.data.iter().zip(&b.data).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-5, "input-sparse and dense kernels differ by {worst}");
    // Codebooks quantized input-major for the input-sparse kernel.
    let cb = dir.path().join("cb.sprig");
    ok(&["compress", s(&onnx), "-o", s(&cb), "--calib", s(&data), "--codebook", "4", "--input-sparse", "all"]);
    let shown = ok(&["inspect", s(&cb)]);
    assert_eq!(shown.matches("input-sparse").count(), 2, "{shown}");
    assert_eq!(shown.matches("codebook 4b").count(), 2, "{shown}");
    ok(&["validate", s(&cb), "--onnx", s(&onnx), "--input", s(&data), "--tolerance", "10"]);
    // Nothing asked for.
    let err = fails(&["compress", s(&onnx), "-o", s(&dir.path().join("x.sprig")), "--calib", s(&data), "--act-sparsity", "off"]);
    assert!(err.contains("nothing to do"), "{err}");
    // FATReLU thresholds: reported per layer within the bound, and their effect on the outputs.
    let (thr, tj) = (dir.path().join("thr.sprig"), dir.path().join("thr.json"));
    let text = ok(&[
        "compress",
        s(&onnx),
        "-o",
        s(&thr),
        "--calib",
        s(&data),
        "--act-threshold",
        "auto",
        "--act-threshold-eps",
        "0.02",
        "--json",
        s(&tj),
    ]);
    assert!(text.contains("thresholds change the calibration outputs"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&tj).unwrap()).unwrap();
    let layers = v["thresholds"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{v}");
    let l = &layers[0];
    assert!(l["threshold"].as_f64().unwrap() > 0.0 && l["cett"].as_f64().unwrap() <= 0.02, "{l}");
    assert!(l["zero_after"].as_f64().unwrap() >= l["zero_before"].as_f64().unwrap());
    assert!(v["thresholds"]["top1_agreement"].as_f64().unwrap() > 0.9);
    let val: serde_json::Value =
        serde_json::from_str(&ok(&["validate", s(&thr), "--onnx", s(&onnx), "--input", s(&data), "--tolerance", "10", "--json"])).unwrap();
    assert!((val["top1_agreement"].as_f64().unwrap() - v["thresholds"]["top1_agreement"].as_f64().unwrap()).abs() < 1e-9, "{val}");
    for bad in ["-1", "nope", "inf"] {
        let out = dir.path().join("bad.sprig");
        let arg = format!("--act-threshold={bad}");
        let err = fails(&["compress", s(&onnx), "-o", s(&out), "--calib", s(&data), &arg]);
        assert!(err.contains("--act-threshold"), "{err}");
        assert!(!out.exists());
    }
}
