//! One inference, batch 1, one thread, per model: sprig's dense, pruned, codebook and combined
//! variants next to tract on the same ONNX model and the same real input
//! (`Throughput::Elements(MACs)` of each variant, so criterion reports MAC/s).
//!
//! Variants are compressed with the first 64 samples of the model's evaluation inputs as
//! calibration data; the timed input is a later sample. onnxruntime is timed by
//! `benches/scripts/latency_table.py` (the PyPI wheel, in the same run as `sprig bench`).

use clap::Parser;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sprig_benches::models;
use sprig_tools::cli::{main_with, Cli};
use sprig_tools::host::HostModel;
use sprig_tools::npy::{read_f32, write_f32, Array};
use sprig_tools::reference::TractModel;
use sprig_tools::stats::model_stats;
use std::path::Path;
use std::time::Duration;

/// Calibration samples taken from the start of the evaluation inputs.
const CALIB: usize = 64;

/// Variant name and the `sprig` arguments that build it (after the ONNX path and output).
const VARIANTS: &[(&str, &[&str])] = &[
    ("dense", &["convert"]),
    ("pruned", &["compress", "--prune", "filter:macs=0.7", "--act-sparsity", "off"]),
    ("codebook4", &["compress", "--codebook", "4", "--act-sparsity", "off"]),
    ("combined", &["compress", "--prune", "filter:macs=0.7", "--codebook", "4"]),
];

fn build(variant: &[&str], onnx: &Path, calib: &Path, out: &Path) -> anyhow::Result<()> {
    let mut args: Vec<String> = vec!["sprig".into(), variant[0].into(), onnx.display().to_string(), "-o".into(), out.display().to_string()];
    if variant[0] == "compress" {
        args.extend(["--calib".to_string(), calib.display().to_string()]);
    }
    args.extend(variant[1..].iter().map(|s| s.to_string()));
    main_with(Cli::try_parse_from(args)?)
}

fn end_to_end(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    for bm in models() {
        let x = read_f32(&bm.input).expect("input");
        let n = x.samples();
        let calib_n = CALIB.min(n.saturating_sub(1)).max(1);
        let mut shape = x.shape.clone();
        shape[0] = calib_n;
        let calib = Array { shape, data: x.data[..calib_n * x.sample_len()].to_vec() };
        let calib_path = tmp.path().join(format!("{}_calib.npy", bm.name));
        write_f32(&calib_path, &calib).expect("calibration file");
        let sample = x.sample(calib_n.min(n - 1)).to_vec();
        let mut g = c.benchmark_group(bm.name);
        g.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1)).sample_size(20);
        let mut tract_shapes = None;
        let mut dense_macs = None;
        for (name, variant) in VARIANTS {
            let path = tmp.path().join(format!("{}_{name}.sprig", bm.name));
            if let Err(e) = build(variant, &bm.onnx, &calib_path, &path) {
                eprintln!("note: {} {name}: not built ({e:#})", bm.name);
                continue;
            }
            let bytes = std::fs::read(&path).expect("read variant");
            let mut sprig = HostModel::new(&bytes).expect("parse");
            tract_shapes.get_or_insert_with(|| sprig.input_shapes());
            let macs = model_stats(&sprig.model, bytes.len() as u64).macs;
            dense_macs.get_or_insert(macs);
            g.throughput(Throughput::Elements(macs));
            g.bench_function(format!("sprig_{name}"), |b| b.iter(|| sprig.run_in_place(&[&sample]).unwrap()));
        }
        if let Some(shapes) = tract_shapes {
            let tract = TractModel::load(&bm.onnx, &shapes).expect("tract");
            g.throughput(Throughput::Elements(dense_macs.unwrap_or(0)));
            g.bench_function("tract", |b| b.iter(|| tract.run(&[(&shapes[0], &sample)]).unwrap()));
        }
        g.finish();
    }
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
