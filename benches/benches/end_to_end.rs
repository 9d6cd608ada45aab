//! One inference, batch 1, one thread: sprig (reference kernels) next to tract on the same ONNX
//! model and the same real input.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sprig_benches::models;
use sprig_tools::compile::{convert_file, ConvertOptions};
use sprig_tools::host::HostModel;
use sprig_tools::npy::read_f32;
use sprig_tools::reference::TractModel;
use sprig_tools::stats::model_stats;
use std::time::Duration;

fn end_to_end(c: &mut Criterion) {
    for bm in models() {
        let conv = convert_file(&bm.onnx, &ConvertOptions::default()).expect("convert");
        let x = read_f32(&bm.input).expect("input");
        let sample = x.sample(0).to_vec();
        let mut sprig = HostModel::new(&conv.bytes).expect("parse");
        let shapes = sprig.input_shapes();
        let macs = model_stats(&sprig.model, conv.bytes.len() as u64).macs;
        let tract = TractModel::load(&bm.onnx, &shapes).expect("tract");
        let mut g = c.benchmark_group(bm.name);
        g.throughput(Throughput::Elements(macs));
        g.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1)).sample_size(20);
        g.bench_function("sprig_reference", |b| b.iter(|| sprig.run_in_place(&[&sample]).unwrap()));
        g.bench_function("tract", |b| b.iter(|| tract.run(&[(&shapes[0], &sample)]).unwrap()));
        g.finish();
    }
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
