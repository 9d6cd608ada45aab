//! One benchmark per f32 kernel kind on layer shapes taken from the real models, batch 1, one
//! thread: this CPU's SIMD kernels (`simd`: AVX-512 / AVX2+FMA / NEON, see
//! `sprig_runtime::kernels::simd_name`) beside the portable loops they replace (`portable`),
//! with `Throughput::Elements(MACs)` so criterion reports MAC/s. Each weighted case also runs
//! with the same weights as a 4-bit codebook (`codebook4`: two groups of 16 f16 codewords, the
//! layout `sprig compress --codebook 4` writes), decoded inside the kernel, beside the dense f32
//! weights: the price of decoding. Two sparse kernels run beside them on the same shapes: the
//! block-sparse one (`bsr4x4_tenth`: one 4 × 4 block in ten kept, stored `BSR_F32`; `sprig
//! compress` stores a layer block-sparse only below the break-even density that
//! `tools/data/sparse_table.json` measured, about this one for 4 × 4 blocks) and, for Dense and
//! 1 × 1 Convs, the input-sparse one (`input_sparse_half`: weights stored input-major, half of
//! the inputs zero as after a ReLU; the tool uses it on planes of at most 36 positions, and
//! the dense kernels' time does not depend on the values). Pointwise and depthwise cases of a
//! multiple of 16 channels also run the channel-blocked kernels (`blocked`, `blocked_codebook4`)
//! that a plan keeps chains of such layers in on AVX-512 hosts.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sprig_runtime::codebook::{encode_codebook, Codebook};
use sprig_runtime::format::kernel;
use sprig_runtime::kernels::{execute, execute_blocked, execute_kernel_in, set_simd, Operand, ALL_OPS, BLOCKED_IN, BLOCKED_OUT};
use sprig_runtime::op::{Activation, ConvAttrs, Op};
use sprig_runtime::shape::Shape;
use sprig_runtime::sparse::{encode_bsr, Bsr};
use sprig_runtime::view::View;
use std::time::Duration;

/// Deterministic values in [-1, 1).
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// `w` (`rows × cols`) as a 4-bit codebook payload: rows alternate between two groups, each
/// with 16 evenly spaced f16 codewords over `[-1, 1]` (the range of [`data`]), every weight the
/// nearest codeword.
fn codebook4(w: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    let books: Vec<f32> = (0..32).map(|i| (i % 16) as f32 * (2.0 / 15.0) - 1.0 + (i / 16) as f32 * 0.01).collect();
    let row_group: Vec<u16> = (0..rows).map(|r| (r % 2) as u16).collect();
    let indices: Vec<u8> = w.iter().map(|&v| ((v + 1.0) * 7.5).round().clamp(0.0, 15.0) as u8).collect();
    encode_codebook(rows, cols, 4, true, &row_group, &books, &indices)
}

struct Case {
    name: &'static str,
    op: Op,
    x: Vec<usize>,
    w: Vec<usize>,
    y: Vec<usize>,
    macs: u64,
}

#[allow(clippy::too_many_arguments)]
fn conv(name: &'static str, c: usize, h: usize, w: usize, m: usize, k: usize, s: usize, pad: usize, group: usize) -> Case {
    let oh = (h + 2 * pad - k) / s + 1;
    let ow = (w + 2 * pad - k) / s + 1;
    let cg = c / group;
    let attrs = ConvAttrs { group: group as u32, stride: [s as u32; 2], dilation: [1; 2], pads: [pad as u32; 4], act: Activation::Relu };
    Case {
        name,
        op: Op::Conv(attrs),
        x: vec![1, c, h, w],
        w: vec![m, cg, k, k],
        y: vec![1, m, oh, ow],
        macs: (m * cg * k * k * oh * ow) as u64,
    }
}

/// A Dense layer of `k` inputs and `n` outputs, batch 1.
fn dense(name: &'static str, k: usize, n: usize, act: Activation) -> Case {
    Case { name, op: Op::Dense { act }, x: vec![1, k], w: vec![n, k], y: vec![1, n], macs: (k * n) as u64 }
}

fn cases() -> Vec<Case> {
    vec![
        // ic_resnet8 stages 1–3, kws_dscnn and vww pointwise, vww / kws depthwise, ad_autoencoder Dense.
        conv("conv3x3_16x32x32_to16", 16, 32, 32, 16, 3, 1, 1, 1),
        conv("conv3x3_s2_16x32x32_to32", 16, 32, 32, 32, 3, 2, 1, 1),
        // ResNet-8's strided shortcuts (1 × 1 at stride 2).
        conv("conv1x1_s2_16x32x32_to32", 16, 32, 32, 32, 1, 2, 0, 1),
        conv("conv1x1_s2_32x16x16_to64", 32, 16, 16, 64, 1, 2, 0, 1),
        conv("conv3x3_s2_32x16x16_to64", 32, 16, 16, 64, 3, 2, 1, 1),
        conv("conv3x3_32x16x16_to32", 32, 16, 16, 32, 3, 1, 1, 1),
        conv("conv3x3_64x8x8_to64", 64, 8, 8, 64, 3, 1, 1, 1),
        conv("conv1x1_64x25x5_to64", 64, 25, 5, 64, 1, 1, 0, 1),
        conv("conv1x1_128x12x12_to128", 128, 12, 12, 128, 1, 1, 0, 1),
        // VWW's small-plane pointwise layers (stored input-major by the tool).
        conv("conv1x1_128x6x6_to128", 128, 6, 6, 128, 1, 1, 0, 1),
        conv("conv1x1_256x3x3_to256", 256, 3, 3, 256, 1, 1, 0, 1),
        // vww's stem and first pointwise, mnist's first Conv (few channels, large planes).
        conv("conv3x3_s2_3x96x96_to8", 3, 96, 96, 8, 3, 2, 1, 1),
        conv("conv1x1_8x48x48_to16", 8, 48, 48, 16, 1, 1, 0, 1),
        conv("conv5x5_1x28x28_to8", 1, 28, 28, 8, 5, 1, 2, 1),
        // hello_edge_cnn's second layer: 10 × 4 taps of 28 channels (K = 1120), stride 2 × 1.
        Case {
            name: "conv10x4_s2x1_28x40x7_to30",
            op: Op::Conv(ConvAttrs { group: 1, stride: [2, 1], dilation: [1; 2], pads: [0; 4], act: Activation::Relu }),
            x: vec![1, 28, 40, 7],
            w: vec![30, 28, 10, 4],
            y: vec![1, 30, 16, 4],
            macs: 30 * 1120 * 64,
        },
        // kws_dscnn's and hello_edge_ds_cnn's first layer: a 10 × 4 window at stride 2 over the
        // 49 × 10 MFCC plane ("same" padding).
        Case {
            name: "conv10x4_s2_1x49x10_to64",
            op: Op::Conv(ConvAttrs { group: 1, stride: [2, 2], dilation: [1; 2], pads: [4, 1, 5, 2], act: Activation::Relu }),
            x: vec![1, 1, 49, 10],
            w: vec![64, 1, 10, 4],
            y: vec![1, 64, 25, 5],
            macs: 64 * 40 * 125,
        },
        // hello_edge_cnn's first layer: a 10 × 4 window at stride 1, no padding (40 × 7 out).
        Case {
            name: "conv10x4_1x49x10_to28",
            op: Op::Conv(ConvAttrs { group: 1, stride: [1, 1], dilation: [1; 2], pads: [0; 4], act: Activation::Relu }),
            x: vec![1, 1, 49, 10],
            w: vec![28, 1, 10, 4],
            y: vec![1, 28, 40, 7],
            macs: 28 * 40 * 280,
        },
        conv("depthwise3x3_64x25x5", 64, 25, 5, 64, 3, 1, 1, 64),
        conv("depthwise3x3_s2_64x24x24", 64, 24, 24, 64, 3, 2, 1, 64),
        // vww's depthwise layers on its larger and smallest planes.
        conv("depthwise3x3_8x48x48", 8, 48, 48, 8, 3, 1, 1, 8),
        conv("depthwise3x3_32x24x24", 32, 24, 24, 32, 3, 1, 1, 32),
        conv("depthwise3x3_64x12x12", 64, 12, 12, 64, 3, 1, 1, 64),
        conv("depthwise3x3_s2_16x48x48", 16, 48, 48, 16, 3, 2, 1, 16),
        conv("depthwise3x3_128x6x6", 128, 6, 6, 128, 3, 1, 1, 128),
        // vww's last two stride-2 depthwise layers (rows of 6 and 3 outputs).
        conv("depthwise3x3_s2_64x12x12", 64, 12, 12, 64, 3, 2, 1, 64),
        conv("depthwise3x3_s2_128x6x6", 128, 6, 6, 128, 3, 2, 1, 128),
        // hello_edge_dnn's hidden and output layers, kws_dscnn's classifier: Dense layers small
        // enough that a call's set-up shows beside its multiply-adds.
        dense("dense_144_to_144", 144, 144, Activation::Relu),
        dense("dense_144_to_12", 144, 12, Activation::None),
        dense("dense_64_to_12", 64, 12, Activation::None),
        dense("dense_640_to_128", 640, 128, Activation::Relu),
    ]
}

fn kernels(c: &mut Criterion) {
    for case in cases() {
        let numel = |d: &[usize]| d.iter().product::<usize>();
        let x = data(numel(&case.x), 1);
        let w = data(numel(&case.w), 2);
        let b = data(case.w[0], 3);
        let shape = |d: &[usize]| Shape::new(d).expect("shape");
        let ops = [
            Operand { view: View::F32(&x), shape: shape(&case.x) },
            Operand { view: View::F32(&w), shape: shape(&case.w) },
            Operand { view: View::F32(&b), shape: shape(&case.w[..1]) },
        ];
        let y_shape = shape(&case.y);
        let mut out = vec![0.0f32; numel(&case.y)];
        let (rows, cols) = (case.w[0], numel(&case.w[1..]));
        let payload = codebook4(&w, rows, cols);
        let book = Codebook::parse(&payload, rows, cols).expect("codebook payload");
        let coded = [ops[0], Operand { view: View::Codebook(book), shape: ops[1].shape }, ops[2]];
        let mut g = c.benchmark_group(case.name);
        g.throughput(Throughput::Elements(case.macs));
        g.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1)).sample_size(30);
        for (label, on) in [("simd", true), ("portable", false)] {
            set_simd(on);
            g.bench_function(label, |bch| bch.iter(|| execute(&case.op, &ops, &mut out, &y_shape).expect("kernel")));
        }
        set_simd(true);
        g.bench_function("codebook4", |bch| bch.iter(|| execute(&case.op, &coded, &mut out, &y_shape).expect("kernel")));
        // One 4 × 4 block of the weight matrix in ten kept.
        let ncb = cols.div_ceil(4);
        let tenth: Vec<f32> =
            w.iter().enumerate().map(|(i, &v)| if (i / cols / 4 * ncb + i % cols / 4) % 10 == 0 { v } else { 0.0 }).collect();
        let bsr_bytes = encode_bsr(rows, cols, 4, 4, &tenth);
        let bsr = Bsr::parse(&bsr_bytes, rows, cols).expect("BSR payload");
        let sparse = [ops[0], Operand { view: View::Bsr(bsr), shape: ops[1].shape }, ops[2]];
        if execute(&case.op, &sparse, &mut out, &y_shape).is_ok() {
            g.bench_function("bsr4x4_tenth", |bch| bch.iter(|| execute(&case.op, &sparse, &mut out, &y_shape).expect("kernel")));
        }
        // Input-major weights (dims 0 and 1 swapped) and every other input zero.
        let wt: Vec<f32> = (0..cols * rows).map(|i| w[(i % rows) * cols + i / rows]).collect();
        let xz: Vec<f32> = x.iter().enumerate().map(|(i, &v)| if i % 2 == 0 { v } else { 0.0 }).collect();
        let mut swapped = case.w.clone();
        swapped.swap(0, 1);
        let im = [Operand { view: View::F32(&xz), shape: ops[0].shape }, Operand { view: View::F32(&wt), shape: shape(&swapped) }, ops[2]];
        if execute_kernel_in::<ALL_OPS>(&case.op, kernel::INPUT_SPARSE, &im, &mut out, &y_shape).is_ok() {
            g.bench_function("input_sparse_half", |bch| {
                bch.iter(|| execute_kernel_in::<ALL_OPS>(&case.op, kernel::INPUT_SPARSE, &im, &mut out, &y_shape).expect("kernel"))
            });
        }
        // The channel-blocked kernels a plan runs chains of pointwise and depthwise layers with
        // on AVX-512 hosts (blocked input and output: the same floats, another order).
        let blocked = BLOCKED_IN | BLOCKED_OUT;
        if execute_blocked(&case.op, blocked, &ops, &mut out, &y_shape).is_ok() {
            g.bench_function("blocked", |bch| bch.iter(|| execute_blocked(&case.op, blocked, &ops, &mut out, &y_shape).expect("kernel")));
            g.bench_function("blocked_codebook4", |bch| {
                bch.iter(|| execute_blocked(&case.op, blocked, &coded, &mut out, &y_shape).expect("kernel"))
            });
        }
        g.finish();
    }
    eprintln!("note: `simd` ran the {} kernels", sprig_runtime::kernels::simd_name());
}

criterion_group!(benches, kernels);
criterion_main!(benches);
