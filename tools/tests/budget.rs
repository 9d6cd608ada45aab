//! `sprig compress --budget` end to end: the result meets the budget by the same estimates
//! `sprig size` prints, the choice is the least-error feasible one the search measured, and a
//! budget that cannot be met fails with the reason and no output file.

mod common;

use common::{fails, ok, s};

use serde_json::Value;
use std::path::Path;

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Checks what every met budget must satisfy; returns the report.
fn check_met(out: &Path, report: &Path, budget: &[(&str, u64)]) -> Value {
    let r = json(report);
    assert_eq!(r["met"], true);
    let after = &r["after"];
    for &(key, lim) in budget {
        assert!(after[key].as_u64().unwrap() <= lim, "{key}: {} > {lim}", after[key]);
    }
    // The figures are `sprig size`'s own for the written file.
    let size: Value = serde_json::from_str(&ok(&["size", s(out), "--json"])).unwrap();
    assert_eq!(size[0]["estimate"]["flash"], after["flash"]);
    assert_eq!(size[0]["estimate"]["ram"], after["ram"]);
    assert_eq!(std::fs::metadata(out).unwrap().len(), after["file_bytes"].as_u64().unwrap());
    // The chosen configuration is feasible and has the least measured error of the feasible ones.
    let explored = r["explored"].as_array().unwrap();
    let chosen = &explored[r["chosen"].as_u64().unwrap() as usize];
    assert_eq!(chosen["feasible"], true);
    let best = chosen["measured_error"].as_f64().unwrap();
    for c in explored.iter().filter(|c| c["feasible"] == true) {
        assert!(c["measured_error"].as_f64().unwrap() >= best, "{c}");
    }
    for c in explored.iter().filter(|c| c["feasible"] == false) {
        assert!(c["note"].is_string(), "a rejected configuration says why: {c}");
    }
    // Per-layer rows cover every operator with shares that add up.
    let layers = r["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    let share: f64 = layers.iter().map(|l| l["mac_share"].as_f64().unwrap()).sum();
    assert!((share - 1.0).abs() < 1e-6, "{share}");
    let lat: f64 = layers.iter().map(|l| l["latency_share"].as_f64().unwrap()).sum();
    assert!((lat - 1.0).abs() < 1e-6, "{lat}");
    r
}

#[test]
fn a_ram_budget_is_met_by_pruning_the_least_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    let m = common::repo_models();
    let (out, rep, html) = (dir.path().join("fit.sprig"), dir.path().join("r.json"), dir.path().join("r.html"));
    let (onnx, calib) = (m.join("digits_cnn.onnx"), m.join("digits_calib.npy"));
    let text = ok(&[
        "compress",
        s(&onnx),
        "--calib",
        s(&calib),
        "--budget",
        "ram=13000",
        "-o",
        s(&out),
        "--json",
        s(&rep),
        "--report",
        s(&html),
        "--eval",
        s(&m.join("digits_eval.npy")),
        "--labels",
        s(&m.join("digits_eval_labels.npy")),
        "--quiet",
    ]);
    assert!(text.contains("wrote"), "{text}");
    let r = check_met(&out, &rep, &[("ram", 13000)]);
    assert!(r["before"]["ram"].as_u64().unwrap() > 13000, "the dense model must not fit for this test to mean anything");
    assert!(r["after"]["macs"].as_u64().unwrap() < r["before"]["macs"].as_u64().unwrap());
    // Every level that kept more MACs than the chosen one was over the RAM budget.
    let explored = r["explored"].as_array().unwrap();
    let kept = explored[r["chosen"].as_u64().unwrap() as usize]["macs_kept"].as_f64().unwrap();
    for c in explored.iter().filter(|c| c["macs_kept"].as_f64().unwrap() > kept) {
        assert!(c["ram"].as_u64().unwrap() > 13000, "{c}");
    }
    let (b, a) = (r["before"]["accuracy"].as_f64().unwrap(), r["after"]["accuracy"].as_f64().unwrap());
    assert!(b > 0.9 && a > 0.5, "accuracy {b} -> {a}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<svg"), "the HTML report was written");
    ok(&["validate", s(&out), "--onnx", s(&onnx), "--input", s(&calib), "--tolerance", "10"]);
}

#[test]
fn a_file_budget_is_met_on_the_stripped_file_and_the_report_still_names_layers() {
    let dir = tempfile::tempdir().unwrap();
    let m = common::repo_models();
    let (out, rep) = (dir.path().join("fit.sprig"), dir.path().join("r.json"));
    let (onnx, calib) = (m.join("digits_cnn.onnx"), m.join("digits_calib.npy"));
    let limit = 1500;
    #[rustfmt::skip]
    ok(&["compress", s(&onnx), "--calib", s(&calib), "--budget", "file=1500B", "--strip-names", "-o", s(&out), "--json", s(&rep),
        "--eval", s(&m.join("digits_eval.npy")), "--labels", s(&m.join("digits_eval_labels.npy")), "-q"]);
    let r = check_met(&out, &rep, &[("file_bytes", limit)]);
    assert_eq!(r["budget"]["file"], limit);
    // The dense side is the stripped dense file, and it does not fit.
    let plain = dir.path().join("plain.sprig");
    ok(&["convert", s(&onnx), "-o", s(&plain), "--strip-names"]);
    assert_eq!(r["before"]["file_bytes"].as_u64().unwrap(), std::fs::metadata(&plain).unwrap().len());
    assert!(r["before"]["file_bytes"].as_u64().unwrap() > limit);
    // Every built candidate records its file; the written one has no operator names, while the
    // report names every layer as the source model does.
    for c in r["explored"].as_array().unwrap().iter().filter(|c| c["feasible"] == true) {
        assert!(c["file"].as_u64().unwrap() <= limit, "{c}");
    }
    let bytes = std::fs::read(&out).unwrap();
    let layers = r["layers"].as_array().unwrap();
    assert!(layers.iter().any(|l| l["codebook_bits"].is_u64()), "1500 B needs codebooks");
    for l in layers {
        let name = l["name"].as_str().unwrap();
        assert!(!name.is_empty(), "{l}");
        assert!(!bytes.windows(name.len()).any(|w| w == name.as_bytes()), "{name} is in the stripped file");
    }
    assert!(layers.iter().any(|l| l["params_dense"].as_u64().unwrap() > 0), "rows matched the dense model by name");
    let (b, a) = (r["before"]["accuracy"].as_f64().unwrap(), r["after"]["accuracy"].as_f64().unwrap());
    assert!(a >= b - 0.05, "accuracy {b} -> {a}");
    // A file limit below what 2-bit codebooks everywhere need fails, saying so.
    let err = fails(&["compress", s(&onnx), "--calib", s(&calib), "--budget", "file=400", "--strip-names", "-o", s(&out), "-q"]);
    assert!(err.contains("cannot be met") && err.contains("file: the smallest configuration is"), "{err}");
}

#[test]
fn a_budget_that_cannot_be_met_says_which_limit_and_writes_no_model() {
    let dir = tempfile::tempdir().unwrap();
    let m = common::repo_models();
    let (onnx, calib) = (m.join("digits_cnn.onnx"), m.join("digits_calib.npy"));
    let (out, rep) = (dir.path().join("fit.sprig"), dir.path().join("r.json"));
    let err = fails(&["compress", s(&onnx), "--calib", s(&calib), "--budget", "flash=20KiB", "-o", s(&out), "--json", s(&rep), "-q"]);
    assert!(err.contains("cannot be met") && err.contains("flash") && err.contains("smallest configuration needs"), "{err}");
    assert!(!out.exists(), "no model is written when the budget is not met");
    let r = json(&rep);
    assert_eq!(r["met"], false);
    let l = &r["limits"];
    assert!(l["min_flash"].as_u64().unwrap() > 20 * 1024);
    let parts = l["flash_parts"].as_array().unwrap();
    assert!(parts.windows(2).all(|w| w[0][1].as_u64() >= w[1][1].as_u64()), "largest part first: {parts:?}");
    // An error bound no configuration meets.
    let err = fails(&["compress", s(&onnx), "--calib", s(&calib), "--budget", "ram=13000", "--max-error", "1e-9", "-o", s(&out), "-q"]);
    assert!(err.contains("--max-error"), "{err}");
    assert!(!out.exists());
    // Bad requests are refused before any work, naming the flag.
    for (args, msg) in [
        (vec!["--budget", "disk=1KiB"], "unknown limit"),
        (vec!["--budget", "flash=-3KiB"], "not a positive number"),
        (vec!["--budget", "flash=64KiB", "--target", "riscv32imc-unknown-none-elf"], "no measured sizes"),
        (vec!["--budget", "flash=64KiB", "--prune", "filter:0.5"], "cannot be used with"),
        // Options the search sets itself are refused, not ignored.
        (vec!["--budget", "file=2KB", "--fixed-tables"], "cannot be used with"),
        (vec!["--budget", "flash=64KiB", "--weights", "f16"], "cannot be used with"),
        (vec!["--budget", "flash=64KiB", "--codebook-values", "f32"], "cannot be used with"),
        (vec!["--budget", "flash=64KiB", "--max-error=-1"], "--max-error"),
    ] {
        let mut a = vec!["compress", s(&onnx), "--calib", s(&calib), "-o", s(&out)];
        a.extend(args.iter().copied());
        let err = fails(&a);
        assert!(err.contains(msg), "{args:?}: {err}");
        assert!(!out.exists());
    }
}

#[test]
fn a_flash_budget_on_a_real_model_is_met_with_codebooks() {
    let Some(data) = common::shared_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (out, rep) = (dir.path().join("fit.sprig"), dir.path().join("r.json"));
    let onnx = data.join("models/kws_dscnn_fp32.onnx");
    let x = data.join("eval/kws01/inputs.npy");
    // 150 KiB until 2026-12-07, when the Cortex-M4F runtime grew by 14 KiB of register-blocked
    // Conv kernels: the model keeps the same room (about 26 KB of weights and tables).
    let budget = 164 * 1024;
    ok(&[
        "compress",
        s(&onnx),
        "--calib",
        s(&x),
        "--calib-samples",
        "32",
        "--budget",
        "flash=164KiB",
        "-o",
        s(&out),
        "--json",
        s(&rep),
        "--eval",
        s(&x),
        "--labels",
        s(&data.join("eval/kws01/labels.npy")),
        "--eval-samples",
        "200",
        "-q",
    ]);
    let r = check_met(&out, &rep, &[("flash", budget)]);
    assert!(r["before"]["flash"].as_u64().unwrap() > budget);
    let coded = r["layers"].as_array().unwrap().iter().filter(|l| l["codebook_bits"].is_u64()).count();
    assert!(coded > 0, "meeting this budget needs codebook layers");
    let (b, a) = (r["before"]["accuracy"].as_f64().unwrap(), r["after"]["accuracy"].as_f64().unwrap());
    assert!(a >= b - 0.02, "accuracy {b} -> {a}");
}
