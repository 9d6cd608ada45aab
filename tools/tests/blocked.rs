//! Channel-blocked chains: a plan keeps pointwise / depthwise chains in blocks of 16 channels
//! on AVX-512 hosts, only where every reader of a tensor runs blocked kernels, and the outputs
//! agree with a session without a plan (which runs every operator planar).

use sprig_runtime::{Activation, ConvAttrs, Model, Op, Plan, Session, Shape, Step, UnaryKind};
use sprig_tools::compile::compile;
use sprig_tools::ir::{Graph, Node};
use sprig_tools::writer::WeightFormat;

fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| (((i * 7919 + seed * 104_729) % 201) as f32 - 100.0) / 400.0).collect()
}

/// x[1,24,12,14] → pw 24→32 → dw 3×3 → pw 32→48 (= c) → dw 3×3 stride 2 → pw 48→64 → global
/// average → reshape → Dense 64→10; with `side`, `c` is also read by a Sigmoid (a second
/// graph output), so it must stay planar.
fn chain(side: bool) -> Graph {
    let mut g = Graph::default();
    let x = g.add_tensor("x", vec![1, 24, 12, 14], None);
    g.inputs = vec![x];
    let mut seed = 0;
    let mut next = |g: &mut Graph, name: &str, shape: Vec<usize>| {
        seed += 1;
        let n = shape.iter().product();
        g.add_tensor(name, shape, Some(values(n, seed)))
    };
    let pw =
        |group: u32, pads: [u32; 4], stride: u32| ConvAttrs { group, stride: [stride; 2], dilation: [1, 1], pads, act: Activation::Relu };
    let mut layers: Vec<(&str, Op, Vec<usize>, Vec<usize>)> = Vec::new();
    let (w1, b1) = (next(&mut g, "w1", vec![32, 24, 1, 1]), next(&mut g, "b1", vec![32]));
    let (w2, b2) = (next(&mut g, "w2", vec![32, 1, 3, 3]), next(&mut g, "b2", vec![32]));
    let (w3, b3) = (next(&mut g, "w3", vec![48, 32, 1, 1]), next(&mut g, "b3", vec![48]));
    let (w4, b4) = (next(&mut g, "w4", vec![48, 1, 3, 3]), next(&mut g, "b4", vec![48]));
    let (w5, b5) = (next(&mut g, "w5", vec![64, 48, 1, 1]), next(&mut g, "b5", vec![64]));
    let wd = next(&mut g, "wd", vec![10, 64]);
    layers.push(("pw1", Op::Conv(pw(1, [0; 4], 1)), vec![x, w1, b1], vec![1, 32, 12, 14]));
    layers.push(("dw1", Op::Conv(pw(32, [1; 4], 1)), vec![usize::MAX, w2, b2], vec![1, 32, 12, 14]));
    layers.push(("pw2", Op::Conv(pw(1, [0; 4], 1)), vec![usize::MAX, w3, b3], vec![1, 48, 12, 14]));
    layers.push(("dw2", Op::Conv(pw(48, [1; 4], 2)), vec![usize::MAX, w4, b4], vec![1, 48, 6, 7]));
    layers.push(("pw3", Op::Conv(pw(1, [0; 4], 1)), vec![usize::MAX, w5, b5], vec![1, 64, 6, 7]));
    layers.push(("gap", Op::GlobalAveragePool, vec![usize::MAX], vec![1, 64, 1, 1]));
    layers.push(("flat", Op::Reshape { shape: Shape::new(&[1, 64]).unwrap() }, vec![usize::MAX], vec![1, 64]));
    layers.push(("fc", Op::Dense { act: Activation::None }, vec![usize::MAX, wd], vec![1, 10]));
    let mut prev = x;
    let mut outs = Vec::new();
    for (name, op, mut inputs, shape) in layers {
        if inputs[0] == usize::MAX {
            inputs[0] = prev;
        }
        let y = g.add_tensor(format!("{name}_out"), shape.clone(), None);
        g.nodes.push(Node { name: name.into(), onnx_op: name.into(), op, inputs, outputs: vec![y] });
        if side && name == "pw2" {
            let s = g.add_tensor("side", shape, None);
            g.nodes.push(Node {
                name: "sig".into(),
                onnx_op: "Sigmoid".into(),
                op: Op::Unary(UnaryKind::Sigmoid),
                inputs: vec![y],
                outputs: vec![s],
            });
            outs.push(s);
        }
        prev = y;
    }
    outs.insert(0, prev);
    g.outputs = outs;
    g
}

/// Every output of `model` on `x`, with a plan (and which operators it blocked) and without.
fn run_both(bytes: &[u8], x: &[f32]) -> (Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<bool>) {
    let model = Model::parse(bytes).unwrap();
    let mut arena = vec![0u32; model.arena_len().div_ceil(4)];
    let mut steps = vec![Step::EMPTY; model.num_ops()];
    let outs = |s: &Session<'_, '_>| (0..model.num_outputs()).map(|i| s.output(i).unwrap().to_vec()).collect::<Vec<_>>();
    let plain = {
        let mut s = Session::new(&model, bytemuck::cast_slice_mut(&mut arena)).unwrap();
        s.input_mut(0).unwrap().copy_from_slice(x);
        s.run().unwrap();
        outs(&s)
    };
    let plan = Plan::new(&model, &mut steps).unwrap();
    let blocked = (0..model.num_ops()).map(|i| plan.blocked(i)).collect();
    let mut s = Session::with_plan(&model, bytemuck::cast_slice_mut(&mut arena), &plan).unwrap();
    // Twice: a blocked run leaves nothing behind that changes the next.
    for _ in 0..2 {
        s.input_mut(0).unwrap().copy_from_slice(x);
        s.run().unwrap();
    }
    (plain, outs(&s), blocked)
}

fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[test]
fn chains_run_blocked_where_every_reader_can_and_agree_with_planar_runs() {
    let x = values(24 * 12 * 14, 99);
    // Operators: pw1 dw1 pw2 dw2 pw3 gap flat fc (and sig after pw2 with the side output).
    for (side, want) in [
        (false, vec![true, true, true, true, true, true, false, false]),
        // `c` read by the Sigmoid: pw2 and everything before it stay planar; dw2 blocks its
        // planar input on the stack, and pw3 writes blocked for the average.
        (true, vec![false, false, false, false, true, true, true, false, false]),
    ] {
        let bytes = compile(chain(side), WeightFormat::F32, [0; 32]).unwrap().bytes;
        let (plain, planned, blocked) = run_both(&bytes, &x);
        if avx512() {
            assert_eq!(blocked, want, "side output: {side}");
        } else {
            assert!(blocked.iter().all(|&b| !b), "no blocked kernels without AVX-512");
        }
        for (p, q) in plain.iter().zip(&planned) {
            let scale = p.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
            for (a, b) in p.iter().zip(q) {
                assert!((a - b).abs() <= 1e-5 * scale, "{a} against {b} (side output: {side})");
            }
        }
    }
}
