//! The firmware (`firmware/`) runs real models under QEMU on Cortex-M4F, M33 and M0-class
//! (Armv6-M, soft-float) cores, and its defmt-decoded outputs match the host runtime's outputs for
//! the same input (<= 1e-5 relative). A model too large for a board fails the build with the
//! bytes needed and available.
//!
//! Needs `qemu-system-arm`, `defmt-print`, the thumb targets and `../shared/data`; skips with a
//! message when one is missing, unless `SPRIG_REQUIRE_FIRMWARE=1` (set by `.ci/run`), which makes
//! a missing tool a failure.

mod common;

use sprig_runtime::Model;
use sprig_tools::compile::{convert_file, ConvertOptions};
use sprig_tools::host::HostModel;
use sprig_tools::npy::{read_f32, write_f32, Array};
use sprig_tools::stats::model_stats;
use std::path::{Path, PathBuf};
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

fn ready() -> Option<PathBuf> {
    let required = std::env::var("SPRIG_REQUIRE_FIRMWARE").is_ok_and(|v| v == "1");
    for tool in ["qemu-system-arm", "defmt-print"] {
        if !have(tool) {
            assert!(!required, "SPRIG_REQUIRE_FIRMWARE=1 but {tool} is not installed");
            eprintln!("skipping: {tool} not found (see firmware/README.md for the set-up)");
            return None;
        }
    }
    let data = common::shared_data();
    assert!(data.is_some() || !required, "SPRIG_REQUIRE_FIRMWARE=1 but ../shared/data is absent");
    data
}

/// One firmware build at a time: the tests share `firmware/target`, and a case reads the ELF it
/// just built.
static FIRMWARE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn firmware_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../firmware")
}

/// `cargo run --release` inside `firmware/` with the given environment; (success, stdout, stderr).
fn cargo_firmware(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(firmware_dir()).args(args);
    // Flags meant for the host build must not reach the firmware (they replace its linker args).
    for k in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR"] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running cargo for the firmware");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The values of the firmware's `output [v0, v1, …]` line.
fn parse_output(log: &str) -> Option<Vec<f32>> {
    let line = log.lines().find(|l| l.contains("output ["))?;
    let list = line.split_once("output [")?.1.rsplit_once(']')?.0;
    list.split(',').map(|v| v.trim().parse::<f32>().ok()).collect()
}

fn field(log: &str, key: &str) -> Option<u64> {
    let rest = log.split_once(key)?.1;
    rest.trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

struct Case {
    name: &'static str,
    onnx: &'static str,
    eval: &'static str,
    /// Elements of one eval sample the model takes (its first ones), when fewer than a sample.
    take: Option<usize>,
    target: &'static str,
    board: &'static str,
}

fn sizes(elf: &Path) -> String {
    let Ok(out) = Command::new("arm-none-eabi-size").arg("-A").arg(elf).output() else {
        return "sizes: arm-none-eabi-size not found".into();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let sec = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let flash = sec(".vector_table") + sec(".text") + sec(".rodata") + sec(".data");
    format!("flash {flash} B (text {} + rodata {}), RAM data+bss {} B", sec(".text"), sec(".rodata"), sec(".data") + sec(".bss"))
}

/// Builds and runs one case; returns a one-line summary.
fn run_case(data: &Path, tmp: &Path, c: &Case) -> String {
    let conv = convert_file(&data.join("models").join(c.onnx), &ConvertOptions::default()).unwrap_or_else(|e| panic!("{}: {e:#}", c.name));
    let sprig = tmp.join(format!("{}.sprig", c.name));
    std::fs::write(&sprig, &conv.bytes).unwrap();
    let eval = read_f32(&data.join("eval").join(c.eval)).unwrap();
    let x = eval.sample(0)[..c.take.unwrap_or(eval.sample_len())].to_vec();
    let host_model = Model::parse(&conv.bytes).unwrap();
    let in_shape: Vec<usize> = host_model.input(0).unwrap().shape.dims().iter().map(|&d| d as usize).collect();
    let input = tmp.join(format!("{}_x.npy", c.name));
    write_f32(&input, &Array { shape: in_shape, data: x.clone() }).unwrap();

    let mut host = HostModel::new(&conv.bytes).unwrap();
    let want: Vec<f32> = host.run(&[&x]).unwrap().concat();

    let (ok, stdout, stderr) = cargo_firmware(
        &["run", "--release", "--target", c.target],
        &[
            ("SPRIG_MODEL", sprig.to_str().unwrap()),
            ("SPRIG_INPUT", input.to_str().unwrap()),
            ("SPRIG_BOARD", c.board),
            ("SPRIG_RUNS", "2"),
            ("SPRIG_TIMEOUT", "600"),
        ],
    );
    assert!(ok, "{}: firmware run failed on {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}", c.name, c.board);
    let got = parse_output(&stdout).unwrap_or_else(|| panic!("{}: no `output [..]` line in\n{stdout}", c.name));
    assert_eq!(got.len(), want.len(), "{}: output length", c.name);
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    let max_diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(max_diff <= 1e-5 * scale, "{}: firmware output differs from the host by {max_diff:e} (scale {scale:e})", c.name);
    let identical = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
    let macs = model_stats(&host_model, conv.bytes.len() as u64).macs;
    let insns = stdout.split_once("that is about").and_then(|(_, r)| field(r, ""));
    let elf = firmware_dir().join("target").join(c.target).join("release/sprig-firmware");
    format!(
        "{}: {} ({}), {} outputs {} (max diff {max_diff:.1e}); {} MACs; ~{} instructions/inference ({:.2}/MAC); peak stack {} B; arena {} B; {}",
        c.name,
        c.board,
        c.target,
        got.len(),
        if identical { "bit-identical to the host" } else { "within 1e-5" },
        macs,
        insns.map_or("?".into(), |v| v.to_string()),
        insns.map_or(f64::NAN, |v| v as f64 / macs.max(1) as f64),
        field(&stdout, "stack: peak").map_or("?".into(), |v| v.to_string()),
        host_model.arena_len(),
        sizes(&elf)
    )
}

#[test]
fn real_models_on_cortex_m_match_the_host() {
    let Some(data) = ready() else { return };
    let _lock = FIRMWARE.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let m4 = "thumbv7em-none-eabihf";
    let m33 = "thumbv8m.main-none-eabihf";
    let m0 = "thumbv6m-none-eabi";
    let cases = [
        Case { name: "mnist_m4", onnx: "mnist-8.onnx", eval: "mnist/inputs.npy", take: None, target: m4, board: "mps2-an386" },
        Case { name: "kws_dscnn_m4", onnx: "kws_dscnn_fp32.onnx", eval: "kws01/inputs.npy", take: None, target: m4, board: "mps2-an386" },
        Case { name: "ic_resnet8_m4", onnx: "ic_resnet8_fp32.onnx", eval: "ic01/inputs.npy", take: None, target: m4, board: "mps2-an386" },
        Case {
            name: "vww_m4",
            onnx: "vww_mobilenetv1_96_fp32.onnx",
            eval: "vww01/inputs.npy",
            take: None,
            target: m4,
            board: "mps2-an386",
        },
        Case {
            name: "ad_autoencoder_m4",
            onnx: "ad_autoencoder_fp32.onnx",
            eval: "ad01/inputs.npy",
            take: None,
            target: m4,
            board: "mps2-an386",
        },
        Case {
            name: "hello_edge_dnn_m4",
            onnx: "hello_edge_dnn_s.onnx",
            eval: "kws01_hello_edge/inputs.npy",
            take: Some(250),
            target: m4,
            board: "mps2-an386",
        },
        Case { name: "mnist_m33", onnx: "mnist-8.onnx", eval: "mnist/inputs.npy", take: None, target: m33, board: "mps2-an505" },
        Case {
            name: "hello_edge_dnn_m33",
            onnx: "hello_edge_dnn_s.onnx",
            eval: "kws01_hello_edge/inputs.npy",
            take: Some(250),
            target: m33,
            board: "mps2-an505",
        },
        Case { name: "mnist_m0", onnx: "mnist-8.onnx", eval: "mnist/inputs.npy", take: None, target: m0, board: "mps2-an385" },
        Case {
            name: "ad_autoencoder_m0",
            onnx: "ad_autoencoder_fp32.onnx",
            eval: "ad01/inputs.npy",
            take: None,
            target: m0,
            board: "mps2-an385",
        },
    ];
    for c in &cases {
        let line = run_case(&data, tmp.path(), c);
        eprintln!("{line}");
    }
}

#[test]
fn the_default_model_runs_on_a_real_m0_part_and_a_large_model_is_refused_with_sizes() {
    let Some(data) = ready() else { return };
    let _lock = FIRMWARE.lock().unwrap_or_else(|e| e.into_inner());
    // The built-in example (the repository's digits CNN) fits the micro:bit's 16 KiB of RAM.
    let (ok, stdout, stderr) = cargo_firmware(&["run", "--release", "--target", "thumbv6m-none-eabi"], &[("SPRIG_BOARD", "microbit")]);
    assert!(ok, "default model on microbit failed\n{stdout}\n{stderr}");
    let y = parse_output(&stdout).expect("output line");
    assert_eq!(y.len(), 10);
    assert!((y.iter().sum::<f32>() - 1.0).abs() < 1e-4, "softmax outputs sum to 1: {y:?}");

    // MNIST's 25 KiB arena does not: the build stops before linking, naming both sizes.
    let tmp = tempfile::tempdir().unwrap();
    let conv = convert_file(&data.join("models/mnist-8.onnx"), &ConvertOptions::default()).unwrap();
    let sprig = tmp.path().join("mnist.sprig");
    std::fs::write(&sprig, &conv.bytes).unwrap();
    let (ok, stdout, stderr) = cargo_firmware(
        &["build", "--release", "--target", "thumbv6m-none-eabi"],
        &[("SPRIG_BOARD", "microbit"), ("SPRIG_MODEL", sprig.to_str().unwrap()), ("SPRIG_INPUT", "")],
    );
    assert!(!ok, "mnist-8 must not fit the micro:bit\n{stdout}");
    assert!(stderr.contains("does not fit board `microbit`"), "{stderr}");
    let line = stderr.lines().find(|l| l.contains("RAM: needs")).unwrap_or_else(|| panic!("no RAM line in\n{stderr}"));
    assert!(line.contains(&format!("arena {} B", conv.plan.arena_len.div_ceil(16) * 16)), "{line}");
    assert!(line.contains("has 16384 B"), "{line}");
    // A board name that does not exist is refused with the list of boards.
    let (ok, _, stderr) = cargo_firmware(&["build", "--release"], &[("SPRIG_BOARD", "no-such-board")]);
    assert!(!ok && stderr.contains("unknown SPRIG_BOARD `no-such-board`") && stderr.contains("mps2-an386"), "{stderr}");
}
