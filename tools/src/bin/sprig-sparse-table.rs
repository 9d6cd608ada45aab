//! Regenerates this machine's entry of `tools/data/sparse_table.json`: the time of the
//! block-sparse Dense / Conv kernels relative to the dense ones, per tile shape and density, on
//! layer shapes taken from the real models. `sprig compress` stores a layer block-sparse only
//! where this table says it is faster.
//!
//! Each point times a one-layer model stored dense and the same weights stored block-sparse,
//! interleaved, and keeps the ratio of the medians. About a minute in a release build:
//! `cargo run --release -p sprig-tools --bin sprig-sparse-table` (from the repository root);
//! `-- --input-sparse` re-measures only the input-sparse kernels (ALGORITHMS.md §6.6);
//! `-- --codebook-fc [NAME]` only prints the 4-bit codebook Dense kernel against dense f32 on
//! every fully connected shape of the real models (those whose source contains NAME; the table
//! is not written).

use anyhow::{Context, Result};
use sprig_runtime::op::{Activation, ConvAttrs};
use sprig_runtime::Op;
use sprig_tools::compile::compile;
use sprig_tools::compress::sparsify::{table_tile, tiles, BreakEvenEntry, BreakEvenTable, CodebookCost, Pattern};
use sprig_tools::host::HostModel;
use sprig_tools::ir::{CodebookData, Graph, Node, Storage};
use sprig_tools::writer::WeightFormat;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// A layer shape from a real model.
struct Family {
    name: &'static str,
    /// Where the shape comes from.
    from: &'static str,
    /// Input shape and weight shape.
    x: Vec<usize>,
    w: Vec<usize>,
    pad: u32,
}

fn families() -> Vec<Family> {
    vec![
        Family { name: "dense", from: "ad_autoencoder dense 640->128", x: vec![1, 640], w: vec![128, 640], pad: 0 },
        Family { name: "conv1x1", from: "kws_dscnn pointwise 64->64 on 25x5", x: vec![1, 64, 25, 5], w: vec![64, 64, 1, 1], pad: 0 },
        Family { name: "conv", from: "ic_resnet8 3x3 32->32 on 16x16", x: vec![1, 32, 16, 16], w: vec![32, 32, 3, 3], pad: 1 },
    ]
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The one-layer graph of `f` with weights `w`, stored as `storage`.
fn layer(f: &Family, w: Vec<f32>, storage: Storage) -> Graph {
    let mut g = Graph::default();
    let x = g.add_tensor("x", f.x.clone(), None);
    let m = f.w[0];
    let wt = g.add_tensor("w", f.w.clone(), Some(w));
    g.tensors[wt].storage = storage;
    let b = g.add_tensor("b", vec![m], Some((0..m).map(|i| 0.01 * i as f32).collect()));
    let (op, yshape) = if f.x.len() == 2 {
        (Op::Dense { act: Activation::Relu }, vec![1, m])
    } else {
        let (h, wd) = (f.x[2], f.x[3]);
        let (kh, kw) = (f.w[2], f.w[3]);
        let p = f.pad as usize;
        let a = ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [f.pad; 4], act: Activation::Relu };
        (Op::Conv(a), vec![1, m, h + 2 * p - kh + 1, wd + 2 * p - kw + 1])
    };
    let y = g.add_tensor("y", yshape, None);
    g.nodes.push(Node { name: "layer".into(), onnx_op: "layer".into(), op, inputs: vec![x, wt, b], outputs: vec![y] });
    g.inputs = vec![x];
    g.outputs = vec![y];
    g
}

/// Median seconds per inference of each model, measured interleaved.
fn time_pair(a: &[u8], b: &[u8], x: &[f32]) -> Result<(f64, f64)> {
    let mut ma = HostModel::new(a)?;
    let mut mb = HostModel::new(b)?;
    // Iterations per sample so one sample takes about 5 ms.
    let t = Instant::now();
    ma.run_in_place(&[x])?;
    let iters = ((5e-3 / t.elapsed().as_secs_f64().max(1e-7)) as usize).clamp(1, 100_000);
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        for (m, out) in [(&mut ma, &mut ta), (&mut mb, &mut tb)] {
            let t = Instant::now();
            for _ in 0..iters {
                m.run_in_place(&[x])?;
            }
            out.push(t.elapsed().as_secs_f64() / iters as f64);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|p, q| p.partial_cmp(q).unwrap());
        v[v.len() / 2]
    };
    Ok((med(&mut ta), med(&mut tb)))
}

/// Codebook Dense kernels (decode and lookup table) against dense f32 on the `dense` family's
/// shape, at 2, 4 and 8 bits with 4 row groups.
fn codebook_costs(rng: &mut Rng) -> Result<Vec<CodebookCost>> {
    let f = &families()[0];
    let (rows, cols) = (f.w[0], f.w[1]);
    let x: Vec<f32> = (0..cols).map(|_| rng.next() as f32 - 0.3).collect();
    let mut out = Vec::new();
    for bits in [2u8, 4, 8] {
        let k = 1usize << bits;
        let groups = 4;
        let codebooks: Vec<f32> = (0..groups * k).map(|_| half::f16::from_f64(rng.next() - 0.5).to_f32()).collect();
        let row_group: Vec<u16> = (0..rows).map(|r| (r % groups) as u16).collect();
        let indices: Vec<u8> = (0..rows * cols).map(|_| (rng.next() * k as f64) as u8).collect();
        let cb = |lut| CodebookData {
            bits,
            f16_values: true,
            row_group: row_group.clone(),
            codebooks: codebooks.clone(),
            indices: indices.clone(),
            lut,
        };
        let w = cb(false).decode();
        let dense = compile(layer(f, w.clone(), Storage::Dense), WeightFormat::F32, [0; 32])?;
        let mut times = Vec::new();
        for lut in [false, true] {
            let c = compile(layer(f, w.clone(), Storage::Codebook(Arc::new(cb(lut)))), WeightFormat::F32, [0; 32])?;
            let yd = HostModel::new(&dense.bytes)?.run(&[&x])?;
            let yc = HostModel::new(&c.bytes)?.run(&[&x])?;
            let err = yd[0].iter().zip(&yc[0]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            anyhow::ensure!(err < 1e-3, "codebook {bits} bits (lut {lut}): outputs differ from dense by {err}");
            let (td, tc) = time_pair(&dense.bytes, &c.bytes, &x)?;
            times.push(tc / td);
            eprintln!(
                "dense codebook {bits} bits {}: dense {:>8.1} us, codebook {:>8.1} us",
                if lut { "lut   " } else { "decode" },
                td * 1e6,
                tc * 1e6
            );
        }
        println!("dense ({}) codebook {bits} bits: decode {:.2}x, lut {:.2}x dense f32 time", f.from, times[0], times[1]);
        out.push(CodebookCost { bits, decode_ratio: times[0], lut_ratio: times[1] });
    }
    Ok(out)
}

/// The input-sparse kernel against dense, on layer shapes whose inputs follow a ReLU in the real
/// models, at input densities (fraction of non-zero inputs) from 0 to 1; one entry per shape,
/// looked up by output count.
fn input_sparse_costs(rng: &mut Rng) -> Result<Vec<BreakEvenEntry>> {
    let shapes = [
        Family { name: "dense", from: "ad_autoencoder dense 128->8", x: vec![1, 128], w: vec![8, 128], pad: 0 },
        Family { name: "dense", from: "hello_edge_dnn dense 144->12", x: vec![1, 144], w: vec![12, 144], pad: 0 },
        Family { name: "dense", from: "mnist dense 256->10", x: vec![1, 256], w: vec![10, 256], pad: 0 },
        Family { name: "dense", from: "kws_dscnn dense 64->12", x: vec![1, 64], w: vec![12, 64], pad: 0 },
        Family { name: "dense", from: "ad_autoencoder dense 8->128", x: vec![1, 8], w: vec![128, 8], pad: 0 },
        Family { name: "dense", from: "ad_autoencoder dense 128->128", x: vec![1, 128], w: vec![128, 128], pad: 0 },
        Family { name: "dense", from: "ad_autoencoder dense 640->128", x: vec![1, 640], w: vec![128, 640], pad: 0 },
        Family { name: "dense", from: "hello_edge_dnn dense 144->144", x: vec![1, 144], w: vec![144, 144], pad: 0 },
        Family { name: "dense", from: "ad_autoencoder dense 128->640", x: vec![1, 128], w: vec![640, 128], pad: 0 },
        Family { name: "conv1x1", from: "kws_dscnn pointwise 64->64 on 25x5", x: vec![1, 64, 25, 5], w: vec![64, 64, 1, 1], pad: 0 },
        Family { name: "conv1x1", from: "vww pointwise 32->64 on 48x48", x: vec![1, 32, 48, 48], w: vec![64, 32, 1, 1], pad: 0 },
        Family { name: "conv1x1", from: "vww pointwise 128->128 on 12x12", x: vec![1, 128, 12, 12], w: vec![128, 128, 1, 1], pad: 0 },
        Family { name: "conv1x1", from: "vww pointwise 256->256 on 3x3", x: vec![1, 256, 3, 3], w: vec![256, 256, 1, 1], pad: 0 },
    ];
    let densities = [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
    let mut out: Vec<BreakEvenEntry> = Vec::new();
    for f in &shapes {
        let w: Vec<f32> = (0..f.w.iter().product::<usize>()).map(|_| rng.next() as f32 - 0.5).collect();
        let dense = compile(layer(f, w.clone(), Storage::Dense), WeightFormat::F32, [0; 32])?;
        let sparse = compile(layer(f, w, Storage::InputMajor), WeightFormat::F32, [0; 32])?;
        let mut ratio = Vec::new();
        for &d in &densities {
            let x: Vec<f32> =
                (0..f.x.iter().product::<usize>()).map(|_| if rng.next() < d { rng.next() as f32 + 0.01 } else { 0.0 }).collect();
            let yd = HostModel::new(&dense.bytes)?.run(&[&x])?;
            let ys = HostModel::new(&sparse.bytes)?.run(&[&x])?;
            let err = yd[0].iter().zip(&ys[0]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            anyhow::ensure!(err < 1e-3, "{}: input-sparse and dense outputs differ by {err}", f.from);
            let (td, ts) = time_pair(&dense.bytes, &sparse.bytes, &x)?;
            eprintln!(
                "input-sparse {:<40} density {d:.2}: dense {:>8.2} us, sparse {:>8.2} us, ratio {:.3}",
                f.from,
                td * 1e6,
                ts * 1e6,
                ts / td
            );
            ratio.push(ts / td);
        }
        let e = BreakEvenEntry {
            family: f.name.into(),
            tile: [1, 1],
            density: densities.to_vec(),
            ratio,
            outputs: f.w[0],
            positions: f.x[2..].iter().product(),
        };
        println!("input-sparse {:<8} ({}) break-even input density {:.2}", f.name, f.from, e.break_even());
        out.push(e);

        // 4-bit codebooks, 4 groups: input-major (input-sparse kernel) against output-major
        // (the codebook decode kernel), each checked against dense f32 on its decoded weights.
        let (m, k) = (f.w[0], f.w[1]);
        let random_codebook = |rows: usize, cols: usize, rng: &mut Rng| CodebookData {
            bits: 4,
            f16_values: true,
            row_group: (0..rows).map(|r| (r % 4) as u16).collect(),
            codebooks: (0..64).map(|_| half::f16::from_f64(rng.next() - 0.5).to_f32()).collect(),
            indices: (0..rows * cols).map(|_| (rng.next() * 16.0) as u8).collect(),
            lut: false,
        };
        let out_major = random_codebook(m, k, rng);
        let in_major = random_codebook(k, m, rng);
        let w_out = out_major.decode();
        let w_in = sprig_tools::writer::swap01_values(&in_major.decode(), k, m);
        let cb_out = compile(layer(f, w_out.clone(), Storage::Codebook(Arc::new(out_major))), WeightFormat::F32, [0; 32])?;
        let cb_in = compile(layer(f, w_in.clone(), Storage::InputMajorCodebook(Arc::new(in_major))), WeightFormat::F32, [0; 32])?;
        let dense_out = compile(layer(f, w_out, Storage::Dense), WeightFormat::F32, [0; 32])?;
        let dense_in = compile(layer(f, w_in, Storage::Dense), WeightFormat::F32, [0; 32])?;
        let mut ratio = Vec::new();
        for &d in &densities {
            let x: Vec<f32> =
                (0..f.x.iter().product::<usize>()).map(|_| if rng.next() < d { rng.next() as f32 + 0.01 } else { 0.0 }).collect();
            for (c, dn) in [(&cb_out, &dense_out), (&cb_in, &dense_in)] {
                let yc = HostModel::new(&c.bytes)?.run(&[&x])?;
                let yd = HostModel::new(&dn.bytes)?.run(&[&x])?;
                let err = yd[0].iter().zip(&yc[0]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                anyhow::ensure!(err < 1e-3, "{}: codebook and dense outputs differ by {err}", f.from);
            }
            let (to, ti) = time_pair(&cb_out.bytes, &cb_in.bytes, &x)?;
            eprintln!(
                "input-sparse codebook {:<40} density {d:.2}: decode {:>8.2} us, input-sparse {:>8.2} us, ratio {:.3}",
                f.from,
                to * 1e6,
                ti * 1e6,
                ti / to
            );
            ratio.push(ti / to);
        }
        let fam = format!("{}-codebook", f.name);
        let e = BreakEvenEntry {
            family: fam.clone(),
            tile: [1, 1],
            density: densities.to_vec(),
            ratio,
            outputs: m,
            positions: f.x[2..].iter().product(),
        };
        println!("input-sparse {fam:<16} ({}) break-even input density {:.2}", f.from, e.break_even());
        out.push(e);
    }
    Ok(out)
}

/// Every fully connected layer shape of the real models (inputs, outputs, source).
const FC_SHAPES: [(usize, usize, &str); 10] = [
    (250, 144, "hello_edge_dnn fc1"),
    (144, 144, "hello_edge_dnn fc2/fc3"),
    (144, 12, "hello_edge_dnn fc4"),
    (640, 128, "ad_autoencoder enc1"),
    (128, 128, "ad_autoencoder enc2-4/dec1-3"),
    (128, 8, "ad_autoencoder bottleneck"),
    (8, 128, "ad_autoencoder dec0"),
    (128, 640, "ad_autoencoder out"),
    (256, 10, "mnist-8 fc"),
    (64, 12, "kws_dscnn fc"),
];

/// 4-bit codebook Dense (the decode kernel, as many row groups as `sprig compress` picks, rows
/// assigned to groups at random) against dense f32 on the same decoded weights, on every FC
/// shape of the real models; prints one line per shape.
fn codebook_fc(rng: &mut Rng, only: Option<&str>) -> Result<()> {
    println!("{:<32} {:>9} {:>6} {:>10} {:>12} {:>8}", "layer (inputs -> outputs)", "groups", "bits", "dense us", "codebook us", "ratio");
    for (k, m, from) in FC_SHAPES {
        if only.is_some_and(|o| !from.contains(o)) {
            continue;
        }
        let f = Family { name: "dense", from, x: vec![1, k], w: vec![m, k], pad: 0 };
        let bits = 4u8;
        let groups = sprig_tools::compress::codebook::auto_groups(m, k, bits, true);
        let data = CodebookData {
            bits,
            f16_values: true,
            row_group: (0..m).map(|_| ((rng.next() * groups as f64) as usize).min(groups - 1) as u16).collect(),
            codebooks: (0..groups << bits).map(|_| half::f16::from_f64(rng.next() - 0.5).to_f32()).collect(),
            indices: (0..m * k).map(|_| (rng.next() * 16.0) as u8).collect(),
            lut: false,
        };
        let w = data.decode();
        let x: Vec<f32> = (0..k).map(|_| rng.next() as f32 - 0.3).collect();
        let dense = compile(layer(&f, w.clone(), Storage::Dense), WeightFormat::F32, [0; 32])?;
        let cb = compile(layer(&f, w, Storage::Codebook(Arc::new(data))), WeightFormat::F32, [0; 32])?;
        let yd = HostModel::new(&dense.bytes)?.run(&[&x])?;
        let yc = HostModel::new(&cb.bytes)?.run(&[&x])?;
        let err = yd[0].iter().zip(&yc[0]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        anyhow::ensure!(err < 1e-3, "{from}: codebook and dense outputs differ by {err}");
        let (td, tc) = time_pair(&dense.bytes, &cb.bytes, &x)?;
        println!("{:<32} {groups:>9} {bits:>6} {:>10.2} {:>12.2} {:>8.2}", format!("{from} ({k} -> {m})"), td * 1e6, tc * 1e6, tc / td);
    }
    Ok(())
}

fn main() -> Result<()> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/sparse_table.json");
    let mut all: Vec<BreakEvenTable> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|_| "[]".into())).context("reading the table")?;
    let target = std::env::consts::ARCH.to_string();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--codebook-fc") {
        return codebook_fc(&mut Rng(0x5eed_1234_abcd_0003), args.get(i + 1).map(String::as_str));
    }
    if std::env::args().any(|a| a == "--input-sparse") {
        // Only the input-sparse rows of this target's entry.
        let mut rng = Rng(0x5eed_1234_abcd_0002);
        let rows = input_sparse_costs(&mut rng)?;
        let t = all.iter_mut().find(|t| t.target == target).context("no entry for this target yet: run without --input-sparse first")?;
        t.input_sparse = rows;
        sprig_tools::compile::write_atomic(&path, serde_json::to_string_pretty(&all)?.as_bytes())?;
        println!("wrote {}", path.display());
        return Ok(());
    }
    let densities = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
    let patterns =
        [Pattern::Weight, Pattern::Block(1, 4), Pattern::Block(4, 1), Pattern::Block(4, 4), Pattern::Block(8, 1), Pattern::Shape];
    let mut entries = Vec::new();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for f in families() {
        let rows = f.w[0];
        let width: usize = f.w.iter().skip(1).product();
        let x: Vec<f32> = (0..f.x.iter().product::<usize>()).map(|_| rng.next() as f32 - 0.3).collect();
        for p in patterns {
            let tl = tiles(rows, width, p);
            let (br, bc) = p.tile(rows);
            let mut ratio = Vec::new();
            for &d in &densities {
                // Keep a random round(d · tiles) tiles; every kept weight non-zero.
                let mut order: Vec<(f64, usize)> = (0..tl.len()).map(|i| (rng.next(), i)).collect();
                order.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
                let keep = ((d * tl.len() as f64).round() as usize).max(1);
                let mut w = vec![0f32; rows * width];
                for &(_, i) in order.iter().take(keep) {
                    for &(r, c) in &tl[i] {
                        w[r * width + c] = (rng.next() as f32 - 0.5) + if rng.next() < 0.5 { -0.1 } else { 0.1 };
                    }
                }
                let dense = compile(layer(&f, w.clone(), Storage::Dense), WeightFormat::F32, [0; 32])?;
                let sparse = compile(layer(&f, w, Storage::Bsr { br, bc }), WeightFormat::F32, [0; 32])?;
                // The two must agree before their times mean anything.
                let yd = HostModel::new(&dense.bytes)?.run(&[&x])?;
                let ys = HostModel::new(&sparse.bytes)?.run(&[&x])?;
                let err = yd[0].iter().zip(&ys[0]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                anyhow::ensure!(err < 1e-3, "{} {}: sparse and dense outputs differ by {err}", f.name, p.name());
                let (td, ts) = time_pair(&dense.bytes, &sparse.bytes, &x)?;
                ratio.push(ts / td);
                eprintln!(
                    "{:<8} {:<10} density {:.2}: dense {:>9.1} us, sparse {:>9.1} us, ratio {:.3}",
                    f.name,
                    p.name(),
                    d,
                    td * 1e6,
                    ts * 1e6,
                    ts / td
                );
            }
            let e =
                BreakEvenEntry { family: f.name.into(), tile: table_tile(p), density: densities.to_vec(), ratio, outputs: 0, positions: 0 };
            println!("{:<8} ({}) {:<10} break-even density {:.2}", f.name, f.from, p.name(), e.break_even());
            entries.push(e);
        }
    }
    let codebook = codebook_costs(&mut rng)?;
    let input_sparse = input_sparse_costs(&mut rng)?;
    all.retain(|t| t.target != target);
    all.push(BreakEvenTable { target, entries, codebook, input_sparse });
    all.sort_by(|a, b| a.target.cmp(&b.target));
    sprig_tools::compile::write_atomic(&path, serde_json::to_string_pretty(&all)?.as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}
