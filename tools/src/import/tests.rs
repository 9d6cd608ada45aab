//! Import tests: models built in-test from protobuf structs, and smoke tests on the real models.

use std::collections::HashMap;
use std::path::PathBuf;

use sprig_runtime::kernels::{execute, Operand};
use sprig_runtime::{Activation, Op, Shape, View};
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

use super::*;
use crate::ir::Graph;

// ---------------------------------------------------------------- test interpreter

/// Runs a graph with the runtime's reference kernels; returns the graph outputs.
pub(crate) fn run_graph(g: &Graph, inputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let mut vals: Vec<Option<Vec<f32>>> = g.tensors.iter().map(|t| t.data.clone()).collect();
    for (&t, v) in g.inputs.iter().zip(inputs) {
        assert_eq!(v.len(), g.tensors[t].numel(), "input size");
        vals[t] = Some(v.clone());
    }
    for n in &g.nodes {
        let shapes: Vec<Shape> = n.inputs.iter().map(|&t| g.tensors[t].rt_shape()).collect();
        let ops: Vec<Operand> = n
            .inputs
            .iter()
            .zip(&shapes)
            .map(|(&t, s)| Operand {
                view: View::F32(vals[t].as_deref().unwrap_or_else(|| panic!("`{}` not computed", g.tensors[t].name))),
                shape: *s,
            })
            .collect();
        let o = n.outputs[0];
        let mut out = vec![0f32; g.tensors[o].numel()];
        execute(&n.op, &ops, &mut out, &g.tensors[o].rt_shape()).unwrap_or_else(|e| panic!("node {} ({:?}): {e:?}", n.name, n.op));
        vals[o] = Some(out);
    }
    g.outputs.iter().map(|&t| vals[t].clone().expect("output computed")).collect()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}: element {i}: {x} vs {y}");
    }
}

/// Deterministic values in [-1, 1).
pub(crate) fn lcg(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        })
        .collect()
}

// ---------------------------------------------------------------- model builder

pub(super) fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: v, ..Default::default() }
}
pub(super) fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Float as i32, f: v, ..Default::default() }
}
pub(super) fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: v.to_vec(), ..Default::default() }
}
pub(super) fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::String as i32, s: v.as_bytes().to_vec(), ..Default::default() }
}
pub(super) fn node(op: &str, name: &str, ins: &[&str], outs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: outs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}
pub(super) fn init_f(name: &str, shape: &[i64], v: Vec<f32>) -> TensorProto {
    TensorProto { name: name.into(), dims: shape.to_vec(), data_type: DataType::Float as i32, float_data: v, ..Default::default() }
}
pub(super) fn init_i(name: &str, shape: &[i64], v: Vec<i64>) -> TensorProto {
    TensorProto { name: name.into(), dims: shape.to_vec(), data_type: DataType::Int64 as i32, int64_data: v, ..Default::default() }
}
pub(super) enum D {
    V(i64),
    P(&'static str),
}
pub(super) fn vi(name: &str, dims: &[D]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tract_onnx::pb::tensor_shape_proto::Dimension {
            denotation: String::new(),
            value: Some(match d {
                D::V(v) => dimension::Value::DimValue(*v),
                D::P(p) => dimension::Value::DimParam(p.to_string()),
            }),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            denotation: String::new(),
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
        doc_string: String::new(),
    }
}
pub(super) fn vis(name: &str, dims: &[i64]) -> ValueInfoProto {
    vi(name, &dims.iter().map(|&d| D::V(d)).collect::<Vec<_>>())
}
pub(super) fn model(
    opset: i64,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: &[&str],
) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: opset }],
        graph: Some(GraphProto {
            node: nodes,
            name: "test".into(),
            initializer: inits,
            input: inputs,
            output: outputs.iter().map(|o| vis(o, &[])).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}
pub(super) fn imp(m: &ModelProto) -> Result<Graph, ImportError> {
    import_model_proto(m, None, &ImportOptions::default())
}
fn imp_raw(m: &ModelProto) -> Graph {
    ctx::import(m, None, &ImportOptions::default()).expect("raw import")
}

// ---------------------------------------------------------------- unit tests

#[test]
fn supported_ops_all_have_handlers() {
    for op in SUPPORTED_OPS {
        assert!(ops::handler(op).is_some(), "{op}");
    }
}

#[test]
fn unsupported_model_lists_every_node() {
    let mut ms = node("Relu", "r", &["x"], &["a"], vec![]);
    ms.domain = "com.microsoft".into();
    let m = model(
        13,
        vec![
            node("LSTM", "lstm1", &["x"], &["y"], vec![]),
            node("Relu", "relu_ok", &["y"], &["z"], vec![]),
            node("TopK", "", &["z"], &["w"], vec![]),
            ms,
            node("Pad", "wrap_pad", &["x", "pads"], &["p"], vec![attr_s("mode", "wrap")]),
            node("Add", "sum", &["w", "a"], &["s"], vec![]),
            node("Add", "sum2", &["s", "p"], &["out"], vec![]),
        ],
        vec![init_i("pads", &[8], vec![0, 0, 1, 1, 0, 0, 1, 1])],
        vec![vis("x", &[1, 2, 4, 4])],
        &["out"],
    );
    let e = imp(&m).unwrap_err();
    let ImportError::Unsupported(list) = &e else { panic!("{e}") };
    let names: Vec<&str> = list.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["lstm1", "TopK_2", "r", "wrap_pad"]);
    let msg = e.to_string();
    assert_eq!(msg.lines().count(), 5, "{msg}");
    assert!(msg.contains("LSTM") && msg.contains("com.microsoft") && msg.contains("wrap"), "{msg}");
}

fn conv_bn_relu_model(opset: i64) -> ModelProto {
    let c = 3;
    let m = 4;
    model(
        opset,
        vec![
            node("Conv", "conv", &["x", "w", "b"], &["c"], vec![attr_ints("pads", &[1, 1, 1, 1]), attr_ints("kernel_shape", &[3, 3])]),
            node("BatchNormalization", "bn", &["c", "g", "beta", "mean", "var"], &["n"], vec![attr_f("epsilon", 1e-3)]),
            node("Relu", "relu", &["n"], &["y"], vec![]),
        ],
        vec![
            init_f("w", &[m, c, 3, 3], lcg((m * c * 9) as usize, 1)),
            init_f("b", &[m], lcg(m as usize, 2)),
            init_f("g", &[m], vec![0.5, 1.5, -1.0, 2.0]),
            init_f("beta", &[m], vec![0.1, -0.2, 0.3, 0.0]),
            init_f("mean", &[m], vec![0.05, -0.1, 0.2, 0.0]),
            init_f("var", &[m], vec![0.5, 1.0, 2.0, 0.25]),
        ],
        vec![vis("x", &[1, c, 5, 5])],
        &["y"],
    )
}

#[test]
fn bn_folding_preserves_function() {
    let m = conv_bn_relu_model(13);
    let raw = imp_raw(&m);
    let g = imp(&m).unwrap();
    assert_eq!(raw.nodes.len(), 3);
    assert_eq!(g.nodes.len(), 1);
    assert_eq!(g.nodes[0].onnx_op, "Conv+BatchNormalization+Relu");
    assert_eq!(g.nodes[0].name, "conv");
    assert!(matches!(g.nodes[0].op, Op::Conv(c) if c.act == Activation::Relu));
    assert_eq!(g.tensors[g.outputs[0]].name, "y");
    let x = lcg(75, 7);
    assert_close(&run_graph(&g, std::slice::from_ref(&x))[0], &run_graph(&raw, &[x])[0], 1e-5, "folded vs unfolded");
}

fn gemm_model(alpha: f32, beta: f32, trans_a: bool, trans_b: bool, c_shape: Option<&[i64]>) -> (ModelProto, Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mm, k, n) = (1usize, 3usize, 4usize);
    let a = lcg(mm * k, 11);
    let b = lcg(k * n, 12); // logical B [K, N]
    let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
    let mut inits = vec![init_f("B", if trans_b { &[4, 3] } else { &[3, 4] }, if trans_b { bt } else { b.clone() })];
    let mut ins = vec!["A", "B"];
    let cdata = c_shape.map(|s| lcg(s.iter().product::<i64>() as usize, 13));
    if let (Some(s), Some(d)) = (c_shape, &cdata) {
        inits.push(init_f("C", s, d.clone()));
        ins.push("C");
    }
    let m = model(
        13,
        vec![node(
            "Gemm",
            "gemm",
            &ins,
            &["Y"],
            vec![attr_f("alpha", alpha), attr_f("beta", beta), attr_i("transA", trans_a as i64), attr_i("transB", trans_b as i64)],
        )],
        inits,
        vec![vis("A", if trans_a { &[3, 1] } else { &[1, 3] })],
        &["Y"],
    );
    // Expected: alpha * A B + beta * C (C broadcast to [1, N]).
    let mut y = vec![0f32; n];
    for (j, v) in y.iter_mut().enumerate() {
        *v = alpha * (0..k).map(|p| a[p] * b[p * n + j]).sum::<f32>();
        if let Some(c) = &cdata {
            *v += beta * if c.len() == 1 { c[0] } else { c[j] };
        }
    }
    (m, a, y, cdata.unwrap_or_default())
}

#[test]
fn gemm_alpha_beta_trans_variants() {
    type Case<'a> = (f32, f32, bool, bool, Option<&'a [i64]>, usize);
    let cases: &[Case] = &[
        (1.0, 1.0, false, true, Some(&[4]), 1),
        (0.5, 2.0, false, false, Some(&[1, 4]), 1),
        (2.0, 0.5, false, true, Some(&[]), 1),
        (1.0, 1.0, false, false, None, 1),
        (1.5, 1.0, true, true, Some(&[4]), 2),
    ];
    for &(alpha, beta, ta, tb, cs, nodes) in cases {
        let (m, a, y, _) = gemm_model(alpha, beta, ta, tb, cs);
        let g = imp(&m).unwrap();
        assert_eq!(g.nodes.len(), nodes, "alpha {alpha} beta {beta} transA {ta} transB {tb} C {cs:?}: {:?}", g.nodes);
        assert!(g.nodes.iter().any(|n| matches!(n.op, Op::Dense { .. })));
        assert_close(&run_graph(&g, &[a])[0], &y, 1e-5, "gemm");
    }
}

#[test]
fn gemm_with_full_c_is_dense_plus_add() {
    // C [M, N] with M = 2 cannot be a bias.
    let b = lcg(12, 3);
    let c = lcg(8, 4);
    let m = model(
        13,
        vec![node("Gemm", "g", &["A", "B", "C"], &["Y"], vec![attr_i("transB", 0)])],
        vec![init_f("B", &[3, 4], b.clone()), init_f("C", &[2, 4], c.clone())],
        vec![vis("A", &[2, 3])],
        &["Y"],
    );
    let g = imp(&m).unwrap();
    assert_eq!(g.nodes.len(), 2);
    let a = lcg(6, 5);
    let mut y = vec![0f32; 8];
    for i in 0..2 {
        for j in 0..4 {
            y[i * 4 + j] = (0..3).map(|p| a[i * 3 + p] * b[p * 4 + j]).sum::<f32>() + c[i * 4 + j];
        }
    }
    assert_close(&run_graph(&g, &[a])[0], &y, 1e-5, "gemm C[M,N]");
}

#[test]
fn auto_pad_same_upper_and_lower() {
    for (mode, expect_pads) in [("SAME_UPPER", [0u32, 0, 1, 1]), ("SAME_LOWER", [1, 1, 0, 0]), ("VALID", [0, 0, 0, 0])] {
        let m = model(
            13,
            vec![node("Conv", "c", &["x", "w"], &["y"], vec![attr_s("auto_pad", mode), attr_ints("strides", &[2, 2])])],
            vec![init_f("w", &[2, 1, 2, 2], lcg(8, 1))],
            vec![vis("x", &[1, 1, 5, 5])],
            &["y"],
        );
        let g = imp(&m).unwrap();
        let Op::Conv(c) = g.nodes[0].op else { panic!() };
        // in 5, stride 2 -> out 3, span 2: total pad = (3-1)*2+2-5 = 1.
        assert_eq!(c.pads, expect_pads, "{mode}");
        let want = if mode == "VALID" { vec![1, 2, 2, 2] } else { vec![1, 2, 3, 3] };
        assert_eq!(g.tensors[g.outputs[0]].shape, want, "{mode}");
    }
    // Pooling with SAME_UPPER, 1-D.
    let m = model(
        13,
        vec![node(
            "MaxPool",
            "p",
            &["x"],
            &["y"],
            vec![attr_s("auto_pad", "SAME_UPPER"), attr_ints("kernel_shape", &[3]), attr_ints("strides", &[2])],
        )],
        vec![],
        vec![vis("x", &[1, 2, 8])],
        &["y"],
    );
    let g = imp(&m).unwrap();
    let Op::MaxPool(p) = g.nodes[0].op else { panic!() };
    assert_eq!(p.pads, [0, 0, 0, 1]);
    assert_eq!(g.tensors[g.outputs[0]].shape, vec![1, 2, 4]);
}

fn softmax_ref(x: &[f32], rows: usize) -> Vec<f32> {
    let cols = x.len() / rows;
    let mut y = vec![0f32; x.len()];
    for r in 0..rows {
        let s = &x[r * cols..(r + 1) * cols];
        let mx = s.iter().cloned().fold(f32::MIN, f32::max);
        let e: Vec<f32> = s.iter().map(|v| (v - mx).exp()).collect();
        let t: f32 = e.iter().sum();
        for c in 0..cols {
            y[r * cols + c] = e[c] / t;
        }
    }
    y
}

#[test]
fn softmax_opset_11_vs_13() {
    let x = lcg(12, 9);
    let mk = |opset| {
        model(opset, vec![node("Softmax", "sm", &["x"], &["y"], vec![attr_i("axis", 1)])], vec![], vec![vis("x", &[1, 3, 4])], &["y"])
    };
    // Opset 11: normalise over the flattened [3 * 4] row.
    let g11 = imp(&mk(11)).unwrap();
    assert_close(&run_graph(&g11, std::slice::from_ref(&x))[0], &softmax_ref(&x, 1), 1e-5, "opset 11");
    // Opset 13: normalise along axis 1 (size 3) only.
    let g13 = imp(&mk(13)).unwrap();
    assert_eq!(g13.nodes.len(), 1);
    let xt: Vec<f32> = (0..12).map(|i| x[(i % 3) * 4 + i / 3]).collect(); // [4, 3]
    let yt = softmax_ref(&xt, 4);
    let y: Vec<f32> = (0..12).map(|i| yt[(i % 4) * 3 + i / 4]).collect();
    assert_close(&run_graph(&g13, std::slice::from_ref(&x))[0], &y, 1e-5, "opset 13");
    // Opset 11 with trailing dims of size 1 is a plain single-axis softmax.
    let m = model(11, vec![node("Softmax", "sm", &["x"], &["y"], vec![])], vec![], vec![vis("x", &[1, 10])], &["y"]);
    let g = imp(&m).unwrap();
    assert_eq!(g.nodes.len(), 1);
    assert!(matches!(g.nodes[0].op, Op::Softmax { axis: 1, log: false }));
}

#[test]
fn shape_arithmetic_folds_to_one_reshape() {
    let m = model(
        13,
        vec![
            node("Shape", "shape", &["x"], &["s"], vec![]),
            node("Gather", "gather", &["s", "zero"], &["n"], vec![attr_i("axis", 0)]),
            node("Unsqueeze", "unsq", &["n", "axes"], &["n1"], vec![]),
            node("Concat", "cat", &["n1", "minus1"], &["shp"], vec![attr_i("axis", 0)]),
            node("Reshape", "reshape", &["x", "shp"], &["y"], vec![]),
            node("Relu", "relu", &["y"], &["z"], vec![]),
        ],
        vec![init_i("zero", &[], vec![0]), init_i("axes", &[1], vec![0]), init_i("minus1", &[1], vec![-1])],
        vec![vis("x", &[1, 2, 3, 4])],
        &["z"],
    );
    let g = imp(&m).unwrap();
    assert_eq!(g.nodes.len(), 2, "{:?}", g.nodes);
    assert!(matches!(g.nodes[0].op, Op::Reshape { shape } if shape.dims() == [1, 24]));
    assert_eq!(g.tensors[g.outputs[0]].shape, vec![1, 24]);
    // Only the graph input, the reshaped tensor and the output remain.
    assert_eq!(g.tensors.len(), 3);
}

#[test]
fn symbolic_dims() {
    let mk = |dims: Vec<D>| model(13, vec![node("Relu", "r", &["x"], &["y"], vec![])], vec![], vec![vi("x", &dims)], &["y"]);
    let g = imp(&mk(vec![D::P("batch"), D::V(3)])).unwrap();
    assert_eq!(g.tensors[g.inputs[0]].shape, vec![1, 3]);
    let e = imp(&mk(vec![D::P("N"), D::V(3), D::P("H")])).unwrap_err();
    assert!(matches!(&e, ImportError::SymbolicDim { input, dim: 2, .. } if input == "x"), "{e}");
    assert!(e.to_string().contains("--input-shape x="), "{e}");
    let mut opts = ImportOptions::default();
    opts.input_shapes.insert("x".into(), vec![1, 3, 7]);
    let g = import_model_proto(&mk(vec![D::P("N"), D::V(3), D::P("H")]), None, &opts).unwrap();
    assert_eq!(g.tensors[g.outputs[0]].shape, vec![1, 3, 7]);
}

#[test]
fn non_finite_weights_are_rejected() {
    let m = model(
        13,
        vec![node("Add", "a", &["x", "bad"], &["y"], vec![])],
        vec![init_f("bad", &[2], vec![1.0, f32::NAN])],
        vec![vis("x", &[1, 2])],
        &["y"],
    );
    let e = imp(&m).unwrap_err();
    assert!(matches!(&e, ImportError::NonFinite { tensor } if tensor == "bad"), "{e}");
}

#[test]
fn clip_attribute_and_input_forms_fuse_into_conv() {
    for opset in [6, 13] {
        let (clip, inits_extra) = if opset < 11 {
            (node("Clip", "clip", &["c"], &["y"], vec![attr_f("min", 0.0), attr_f("max", 6.0)]), vec![])
        } else {
            (node("Clip", "clip", &["c", "lo", "hi"], &["y"], vec![]), vec![init_f("lo", &[], vec![0.0]), init_f("hi", &[], vec![6.0])])
        };
        let mut inits = vec![init_f("w", &[2, 1, 1, 1], vec![10.0, -3.0])];
        inits.extend(inits_extra);
        let m = model(opset, vec![node("Conv", "conv", &["x", "w"], &["c"], vec![]), clip], inits, vec![vis("x", &[1, 1, 1, 2])], &["y"]);
        let g = imp(&m).unwrap();
        assert_eq!(g.nodes.len(), 1, "opset {opset}");
        assert!(matches!(g.nodes[0].op, Op::Conv(c) if c.act == Activation::Clip { min: 0.0, max: 6.0 }));
        assert_eq!(g.nodes[0].onnx_op, "Conv+Clip");
        assert_close(&run_graph(&g, &[vec![0.5, -1.0]])[0], &[5.0, 0.0, 0.0, 3.0], 1e-6, "clip");
    }
}

#[test]
fn conv_then_channel_bias_add_folds() {
    // mnist-8 style: Conv without bias, then Add of a [C, 1, 1] constant.
    let m = model(
        8,
        vec![
            node("Conv", "conv", &["x", "w"], &["c"], vec![attr_ints("kernel_shape", &[1, 1])]),
            node("Add", "add", &["c", "bias"], &["y"], vec![]),
        ],
        vec![init_f("w", &[2, 1, 1, 1], vec![1.0, 2.0]), init_f("bias", &[2, 1, 1], vec![0.5, -0.5])],
        vec![vis("x", &[1, 1, 2, 2])],
        &["y"],
    );
    let g = imp(&m).unwrap();
    assert_eq!(g.nodes.len(), 1);
    assert_eq!(g.nodes[0].onnx_op, "Conv+Add");
    assert_close(&run_graph(&g, &[vec![1.0, 2.0, 3.0, 4.0]])[0], &[1.5, 2.5, 3.5, 4.5, 1.5, 3.5, 5.5, 7.5], 1e-6, "bias");
    // A [1, 1, 2, 2] constant varies along space: not a bias.
    let m = model(
        13,
        vec![node("Conv", "conv", &["x", "w"], &["c"], vec![]), node("Add", "add", &["c", "bias"], &["y"], vec![])],
        vec![init_f("w", &[2, 1, 1, 1], vec![1.0, 2.0]), init_f("bias", &[1, 1, 2, 2], vec![0.5, -0.5, 1.0, 2.0])],
        vec![vis("x", &[1, 1, 2, 2])],
        &["y"],
    );
    assert_eq!(imp(&m).unwrap().nodes.len(), 2);
}

#[test]
fn pad_attribute_and_input_forms() {
    let x = vec![1.0, 2.0, 3.0, 4.0];
    let want = vec![0.5, 0.5, 0.5, 0.5, 0.5, 1.0, 2.0, 0.5, 0.5, 3.0, 4.0, 0.5];
    let m2 = model(
        2,
        vec![node("Pad", "p", &["x"], &["y"], vec![attr_ints("pads", &[0, 0, 1, 1, 0, 0, 0, 1]), attr_f("value", 0.5)])],
        vec![],
        vec![vis("x", &[1, 1, 2, 2])],
        &["y"],
    );
    let m13 = model(
        13,
        vec![node("Pad", "p", &["x", "pads", "v"], &["y"], vec![])],
        vec![init_i("pads", &[8], vec![0, 0, 1, 1, 0, 0, 0, 1]), init_f("v", &[], vec![0.5])],
        vec![vis("x", &[1, 1, 2, 2])],
        &["y"],
    );
    for m in [m2, m13] {
        let g = imp(&m).unwrap();
        assert_eq!(g.tensors[g.outputs[0]].shape, vec![1, 1, 3, 4]);
        assert_close(&run_graph(&g, std::slice::from_ref(&x))[0], &want, 0.0, "pad");
    }
}

#[test]
fn pad_reflect_and_edge_modes() {
    // np.pad([[1, 2, 3], [4, 5, 6]], ((1, 0), (2, 1)), mode)
    let x = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let reflect = vec![6.0, 5.0, 4.0, 5.0, 6.0, 5.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 6.0, 5.0, 4.0, 5.0, 6.0, 5.0];
    let edge = vec![1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 4.0, 4.0, 4.0, 5.0, 6.0, 6.0];
    for (mode, want) in [("reflect", &reflect), ("edge", &edge)] {
        let m2 = model(
            2,
            vec![node("Pad", "p", &["x"], &["y"], vec![attr_ints("pads", &[1, 2, 0, 1]), attr_s("mode", mode)])],
            vec![],
            vec![vis("x", &[2, 3])],
            &["y"],
        );
        let m13 = model(
            13,
            vec![node("Pad", "p", &["x", "pads"], &["y"], vec![attr_s("mode", mode)])],
            vec![init_i("pads", &[4], vec![1, 2, 0, 1])],
            vec![vis("x", &[2, 3])],
            &["y"],
        );
        // Constant input: folded at import.
        let mc = model(
            13,
            vec![node("Pad", "p", &["c", "pads"], &["q"], vec![attr_s("mode", mode)]), node("Add", "a", &["x", "q"], &["y"], vec![])],
            vec![init_i("pads", &[4], vec![1, 2, 0, 1]), init_f("c", &[2, 3], x.clone())],
            vec![vis("x", &[3, 6])],
            &["y"],
        );
        for m in [m2, m13] {
            let g = imp(&m).unwrap();
            assert_eq!(g.tensors[g.outputs[0]].shape, vec![3, 6]);
            assert_close(&run_graph(&g, std::slice::from_ref(&x))[0], want, 0.0, mode);
        }
        let g = imp(&mc).unwrap();
        assert_close(&run_graph(&g, &[vec![0.0; 18]])[0], want, 0.0, mode);
    }
    // Reflect needs every pad below the axis length.
    let bad = model(
        13,
        vec![node("Pad", "p", &["x", "pads"], &["y"], vec![attr_s("mode", "reflect")])],
        vec![init_i("pads", &[4], vec![0, 3, 0, 0])],
        vec![vis("x", &[2, 3])],
        &["y"],
    );
    assert!(matches!(imp(&bad), Err(ImportError::Unsupported(_))));
}

#[test]
fn identity_dropout_vanish_and_outputs_keep_names() {
    let m = model(
        13,
        vec![
            node("Identity", "id", &["x"], &["a"], vec![]),
            node("Dropout", "drop", &["a"], &["b"], vec![]),
            node("Relu", "relu", &["b"], &["c"], vec![]),
            node("Identity", "id2", &["c"], &["out"], vec![]),
            node("Identity", "id3", &["x"], &["copy"], vec![]),
        ],
        vec![],
        vec![vis("x", &[1, 4])],
        &["out", "copy"],
    );
    let g = imp(&m).unwrap();
    let names: Vec<&str> = g.outputs.iter().map(|&t| g.tensors[t].name.as_str()).collect();
    assert_eq!(names, ["out", "copy"]);
    assert_eq!(g.nodes.len(), 2, "{:?}", g.nodes);
    let r = run_graph(&g, &[vec![-1.0, 2.0, -3.0, 4.0]]);
    assert_eq!(r[0], vec![0.0, 2.0, 0.0, 4.0]);
    assert_eq!(r[1], vec![-1.0, 2.0, -3.0, 4.0]);
}

#[test]
fn reshape_chains_collapse() {
    let m = model(
        13,
        vec![
            node("Flatten", "f", &["x"], &["a"], vec![]),
            node("Unsqueeze", "u", &["a"], &["b"], vec![attr_ints("axes", &[0])]),
            node("Squeeze", "s", &["b"], &["c"], vec![attr_ints("axes", &[0])]),
            node("Sigmoid", "sig", &["c"], &["y"], vec![]),
        ],
        vec![],
        vec![vis("x", &[1, 2, 3])],
        &["y"],
    );
    let m = ModelProto { opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 11 }], ..m };
    let g = imp(&m).unwrap();
    assert_eq!(g.nodes.len(), 2, "{:?}", g.nodes);
    assert!(matches!(g.nodes[0].op, Op::Reshape { shape } if shape.dims() == [1, 6]));
}

#[test]
fn matmul_constant_weights_become_dense() {
    let w = lcg(6, 1);
    let m = model(
        13,
        vec![node("MatMul", "mm", &["x", "w"], &["y"], vec![])],
        vec![init_f("w", &[3, 2], w.clone())],
        vec![vis("x", &[1, 4, 3])],
        &["y"],
    );
    let g = imp(&m).unwrap();
    assert!(matches!(g.nodes[0].op, Op::Dense { .. }));
    assert_eq!(g.tensors[g.nodes[0].inputs[1]].shape, vec![2, 3]);
    let x = lcg(12, 2);
    let mut y = vec![0f32; 8];
    for r in 0..4 {
        for j in 0..2 {
            y[r * 2 + j] = (0..3).map(|p| x[r * 3 + p] * w[p * 2 + j]).sum();
        }
    }
    assert_close(&run_graph(&g, &[x])[0], &y, 1e-5, "matmul");
}

#[test]
fn garbage_bytes_are_a_parse_error() {
    let e = import_onnx_bytes(&[0xff, 0xff, 0xff, 0x12, 0x00, 0x99], &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, ImportError::Parse(_) | ImportError::Graph(_)), "{e}");
    let e = import_onnx(std::path::Path::new("/nonexistent/model.onnx"), &ImportOptions::default()).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/model.onnx"), "{e}");
}

// ---------------------------------------------------------------- real models

fn shared_data() -> Option<PathBuf> {
    let p = std::env::var_os("SPRIG_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    if p.join("models").is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: shared data folder {} not found (set SPRIG_SHARED_DATA)", p.display());
        None
    }
}

/// Compares the imported graph against tract on a deterministic random input.
fn check_against_tract(path: &std::path::Path, g: &Graph) {
    use tract_onnx::prelude::*;
    let shape = g.tensors[g.inputs[0]].shape.clone();
    let x = lcg(shape.iter().product(), 42);
    let plan = tract_onnx::onnx()
        .model_for_path(path)
        .and_then(|m| m.with_input_fact(0, f32::fact(&shape).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .unwrap_or_else(|e| panic!("tract {}: {e:#}", path.display()));
    let t = Tensor::from_shape(&shape, &x).unwrap();
    let out = plan.run(tvec![t.into()]).unwrap();
    let want = out[0].cast_to::<f32>().unwrap().try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec();
    let got = &run_graph(g, &[x])[0];
    assert_close(got, &want, 2e-3, &path.display().to_string());
}

#[test]
fn real_models_import_and_match_tract() {
    let Some(dir) = shared_data() else { return };
    // (file, nodes after passes, output shape)
    let cases: &[(&str, usize, &[usize])] = &[
        ("mnist-8.onnx", 6, &[1, 10]),
        ("kws_dscnn_fp32.onnx", 13, &[1, 12]),
        ("ic_resnet8_fp32.onnx", 16, &[1, 10]),
        ("vww_mobilenetv1_96_fp32.onnx", 31, &[1, 2]),
        ("ad_autoencoder_fp32.onnx", 10, &[1, 640]),
        ("hello_edge_ds_cnn_s.onnx", 14, &[1, 12]),
        ("hello_edge_cnn_s.onnx", 9, &[1, 12]),
        ("hello_edge_dnn_s.onnx", 6, &[1, 12]),
    ];
    for &(file, nodes, out) in cases {
        let p = dir.join("models").join(file);
        if !p.exists() {
            eprintln!("skipping {}: not found", p.display());
            continue;
        }
        let g = import_onnx(&p, &ImportOptions::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(g.outputs.len(), 1, "{file}");
        assert_eq!(g.tensors[g.outputs[0]].shape, out, "{file}");
        assert_eq!(g.nodes.len(), nodes, "{file}: {:#?}", g.nodes.iter().map(|n| &n.onnx_op).collect::<Vec<_>>());
        check_against_tract(&p, &g);
    }
}

fn read_npy(p: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(p).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    (shape, npy.into_vec::<f32>().unwrap())
}

#[test]
fn zoo_models_import_and_match_expected() {
    let zoo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/zoo");
    let Ok(rd) = std::fs::read_dir(&zoo) else {
        eprintln!("skipping: {} not found", zoo.display());
        return;
    };
    let mut dirs: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("model.onnx").exists()).collect();
    dirs.sort();
    let mut failures = HashMap::new();
    for d in &dirs {
        let g = match import_onnx(&d.join("model.onnx"), &ImportOptions::default()) {
            Ok(g) => g,
            Err(e) => {
                failures.insert(d.display().to_string(), e.to_string());
                continue;
            }
        };
        let (xin, xe) = (d.join("input.npy"), d.join("expected.npy"));
        if !(xin.exists() && xe.exists()) {
            continue;
        }
        let (is, x) = read_npy(&xin);
        let (_, e) = read_npy(&xe);
        let per_in = x.len() / is[0];
        let per_out = e.len() / is[0];
        for s in 0..is[0] {
            let got = &run_graph(&g, &[x[s * per_in..(s + 1) * per_in].to_vec()])[0];
            assert_close(got, &e[s * per_out..(s + 1) * per_out], 2e-3, &format!("{} sample {s}", d.display()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn wide_concat_becomes_a_tree() {
    // 40 branches (Sigmoid of x scaled differently) concatenated along channels.
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let mut outs: Vec<String> = Vec::new();
    for i in 0..40 {
        inits.push(init_f(&format!("k{i}"), &[], vec![i as f32 * 0.1 - 2.0]));
        nodes.push(node("Mul", &format!("m{i}"), &["x", &format!("k{i}")], &[&format!("b{i}")], vec![]));
        outs.push(format!("b{i}"));
    }
    let refs: Vec<&str> = outs.iter().map(|s| s.as_str()).collect();
    nodes.push(node("Concat", "cat", &refs, &["y"], vec![attr_i("axis", 1)]));
    let m = model(13, nodes, inits, vec![vis("x", &[1, 2, 3])], &["y"]);
    let g = imp(&m).unwrap();
    assert!(g.nodes.iter().all(|n| n.inputs.len() <= sprig_runtime::op::MAX_OP_INPUTS));
    let x = lcg(6, 3);
    let y = run_graph(&g, std::slice::from_ref(&x)).swap_remove(0);
    assert_eq!(y.len(), 240);
    for i in 0..40 {
        for j in 0..6 {
            let want = x[j] * (i as f32 * 0.1 - 2.0);
            assert!((y[i * 6 + j] - want).abs() < 1e-6);
        }
    }
}

/// numpy-style reference slice of a row-major tensor: per axis, the list of source indices.
fn take_nd(x: &[f32], shape: &[usize], sel: &[Vec<usize>]) -> Vec<f32> {
    let st = value::strides(shape);
    let out: Vec<usize> = sel.iter().map(|v| v.len()).collect();
    let total: usize = out.iter().product();
    let mut y = Vec::with_capacity(total);
    for mut k in 0..total {
        let mut off = 0;
        for a in (0..shape.len()).rev() {
            off += sel[a][k % out[a]] * st[a];
            k /= out[a];
        }
        y.push(x[off]);
    }
    y
}

#[test]
fn slice_of_activation_attribute_and_input_forms() {
    let x = lcg(2 * 5 * 6, 7);
    let shape = [2usize, 5, 6];
    // axis 1: [-4, 100) step 2 → 1, 3; axis 2: [1, -1) → 1..5; axis 0 untouched.
    let want_sel = vec![vec![0, 1], vec![1, 3], vec![1, 2, 3, 4]];
    let want = take_nd(&x, &shape, &want_sel);
    let m13 = model(
        13,
        vec![node("Slice", "s", &["x", "st", "en", "ax", "sp"], &["y"], vec![])],
        vec![
            init_i("st", &[2], vec![-4, 1]),
            init_i("en", &[2], vec![100, -1]),
            init_i("ax", &[2], vec![-2, 2]),
            init_i("sp", &[2], vec![2, 1]),
        ],
        vec![vis("x", &[2, 5, 6])],
        &["y"],
    );
    let g = imp(&m13).unwrap();
    assert_eq!(g.nodes.len(), 1);
    assert!(matches!(g.nodes[0].op, Op::Slice { .. }), "{:?}", g.nodes[0].op);
    assert_eq!(g.tensors[g.outputs[0]].shape, vec![2, 2, 4]);
    assert_close(&run_graph(&g, std::slice::from_ref(&x))[0], &want, 0.0, "slice opset 13");

    // Opset 1: attributes, unit steps, clamped ends, default axes.
    let m1 = model(
        1,
        vec![node("Slice", "s", &["x"], &["y"], vec![attr_ints("starts", &[1, -3]), attr_ints("ends", &[2, i64::MAX])])],
        vec![],
        vec![vis("x", &[2, 5, 6])],
        &["y"],
    );
    let g = imp(&m1).unwrap();
    let want = take_nd(&x, &shape, &[vec![1], vec![2, 3, 4], (0..6).collect()]);
    assert_close(&run_graph(&g, std::slice::from_ref(&x))[0], &want, 0.0, "slice opset 1");

    // A reversing slice of an activation is unsupported, with the reason.
    let neg = model(
        13,
        vec![node("Slice", "rev", &["x", "st", "en", "ax", "sp"], &["y"], vec![])],
        vec![init_i("st", &[1], vec![-1]), init_i("en", &[1], vec![i64::MIN]), init_i("ax", &[1], vec![1]), init_i("sp", &[1], vec![-1])],
        vec![vis("x", &[2, 5, 6])],
        &["y"],
    );
    let e = imp(&neg).unwrap_err();
    let ImportError::Unsupported(list) = &e else { panic!("{e}") };
    assert_eq!(list[0].name, "rev");
    assert!(list[0].reason.contains("negative step"), "{e}");

    // A full slice vanishes; a one-element reversing window is a plain Slice.
    let one = model(
        13,
        vec![node("Slice", "s", &["x", "st", "en", "ax", "sp"], &["y"], vec![]), node("Relu", "r", &["y"], &["z"], vec![])],
        vec![
            init_i("st", &[2], vec![3, 0]),
            init_i("en", &[2], vec![2, 99]),
            init_i("ax", &[2], vec![1, 2]),
            init_i("sp", &[2], vec![-1, 1]),
        ],
        vec![vis("x", &[2, 5, 6])],
        &["z"],
    );
    let g = imp(&one).unwrap();
    let want: Vec<f32> = take_nd(&x, &shape, &[vec![0, 1], vec![3], (0..6).collect()]).iter().map(|v| v.max(0.0)).collect();
    assert_close(&run_graph(&g, std::slice::from_ref(&x))[0], &want, 0.0, "one-element reversed slice");
}

#[test]
fn split_forms_become_slices() {
    let x = lcg(3 * 7, 11);
    let shape = [3usize, 7];
    let cols = |r: std::ops::Range<usize>| take_nd(&x, &shape, &[vec![0, 1, 2], r.collect()]);
    let outs = ["a", "b", "c"];
    let cases: Vec<(ModelProto, Vec<Vec<f32>>)> = vec![
        // opset 2 attribute.
        (
            model(
                2,
                vec![node("Split", "sp", &["x"], &outs, vec![attr_i("axis", 1), attr_ints("split", &[2, 4, 1])])],
                vec![],
                vec![vis("x", &[3, 7])],
                &outs,
            ),
            vec![cols(0..2), cols(2..6), cols(6..7)],
        ),
        // opset 13 input, negative axis.
        (
            model(
                13,
                vec![node("Split", "sp", &["x", "s"], &outs, vec![attr_i("axis", -1)])],
                vec![init_i("s", &[3], vec![1, 0, 6])],
                vec![vis("x", &[3, 7])],
                &outs,
            ),
            vec![cols(0..1), cols(1..1), cols(1..7)],
        ),
        // opset 18 num_outputs: ceil(7 / 3) = 3, the last part smaller.
        (
            model(
                18,
                vec![node("Split", "sp", &["x"], &outs, vec![attr_i("axis", 1), attr_i("num_outputs", 3)])],
                vec![],
                vec![vis("x", &[3, 7])],
                &outs,
            ),
            vec![cols(0..3), cols(3..6), cols(6..7)],
        ),
    ];
    for (k, (m, want)) in cases.iter().enumerate() {
        let g = imp(m).unwrap_or_else(|e| panic!("case {k}: {e}"));
        assert!(g.nodes.iter().all(|n| matches!(n.op, Op::Slice { .. })), "case {k}: {:?}", g.nodes);
        let got = run_graph(&g, std::slice::from_ref(&x));
        for (i, (gv, wv)) in got.iter().zip(want).enumerate() {
            assert_close(gv, wv, 0.0, &format!("case {k} output {i}"));
        }
    }
    // Equal parts along axis 0, one output unused (not computed).
    let m = model(13, vec![node("Split", "sp", &["x"], &outs, vec![])], vec![], vec![vis("x", &[3, 7])], &["a", "c"]);
    let g = imp(&m).unwrap();
    assert_eq!(g.nodes.len(), 2);
    let got = run_graph(&g, std::slice::from_ref(&x));
    assert_eq!(got, vec![x[0..7].to_vec(), x[14..21].to_vec()]);
    // Sizes that do not add up are an error.
    let bad = model(
        13,
        vec![node("Split", "sp", &["x", "s"], &outs, vec![])],
        vec![init_i("s", &[3], vec![1, 1, 2])],
        vec![vis("x", &[3, 7])],
        &outs,
    );
    assert!(matches!(imp(&bad), Err(ImportError::Shape { .. })));
}

#[test]
fn rounding_sign_and_trig_on_activations() {
    let x = vec![-2.5f32, -1.5, -0.7, -0.5, 0.0, 0.5, 1.2, 1.5, 2.5, 3.7];
    type F = fn(f32) -> f32;
    let cases: [(&str, F); 6] = [
        ("Floor", f32::floor),
        ("Ceil", f32::ceil),
        ("Round", f32::round_ties_even),
        ("Sign", |v| if v == 0.0 { 0.0 } else { v.signum() }),
        ("Sin", f32::sin),
        ("Cos", f32::cos),
    ];
    for (op, f) in cases {
        let m = model(13, vec![node(op, "u", &["x"], &["y"], vec![])], vec![], vec![vis("x", &[10])], &["y"]);
        let g = imp(&m).unwrap_or_else(|e| panic!("{op}: {e}"));
        assert!(matches!(g.nodes[0].op, Op::Unary(_)), "{op}");
        let want: Vec<f32> = x.iter().map(|&v| f(v)).collect();
        assert_close(&run_graph(&g, std::slice::from_ref(&x))[0], &want, 1e-6, op);
        // On constants the node is evaluated at import.
        let mc = model(
            13,
            vec![node(op, "u", &["c"], &["k"], vec![]), node("Add", "add", &["x", "k"], &["y"], vec![])],
            vec![init_f("c", &[10], x.clone())],
            vec![vis("x", &[10])],
            &["y"],
        );
        let g = imp(&mc).unwrap();
        assert_eq!(g.nodes.len(), 1, "{op}");
        let want: Vec<f32> = x.iter().map(|&v| v + f(v)).collect();
        assert_close(&run_graph(&g, std::slice::from_ref(&x))[0], &want, 1e-6, op);
    }
}

#[test]
fn castlike_to_float_is_identity() {
    let m = model(
        15,
        vec![node("CastLike", "cl", &["x", "like"], &["a"], vec![]), node("Relu", "r", &["a"], &["y"], vec![])],
        vec![init_f("like", &[1], vec![0.0])],
        vec![vis("x", &[4])],
        &["y"],
    );
    let g = imp(&m).unwrap();
    assert_eq!(g.nodes.len(), 1);
    assert_eq!(run_graph(&g, &[vec![-1.0, 2.0, -3.0, 4.0]])[0], vec![0.0, 2.0, 0.0, 4.0]);
    let to_int = model(
        15,
        vec![node("CastLike", "cl", &["x", "like"], &["y"], vec![])],
        vec![init_i("like", &[1], vec![0])],
        vec![vis("x", &[4])],
        &["y"],
    );
    assert!(matches!(imp(&to_int), Err(ImportError::Unsupported(_))));
}

#[test]
fn matmul_with_1d_operands() {
    fn mm(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                y[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        y
    }
    let (a, b) = (lcg(4, 1), lcg(2 * 4 * 3, 2));
    // [K] x [2, K, N] (activation B) → [2, N].
    let m = model(13, vec![node("MatMul", "mm", &["a", "b"], &["y"], vec![])], vec![], vec![vis("a", &[4]), vis("b", &[2, 4, 3])], &["y"]);
    let g = imp(&m).unwrap();
    assert_eq!(g.tensors[g.outputs[0]].shape, vec![2, 3]);
    let want: Vec<f32> = (0..2).flat_map(|s| mm(&a, &b[s * 12..(s + 1) * 12], 1, 4, 3)).collect();
    assert_close(&run_graph(&g, &[a.clone(), b.clone()])[0], &want, 1e-5, "1-D A");
    // [2, 3, K] x [K] (constant B) → [2, 3]: a Dense.
    let x = lcg(2 * 3 * 4, 3);
    let m = model(
        13,
        vec![node("MatMul", "mm", &["x", "w"], &["y"], vec![])],
        vec![init_f("w", &[4], a.clone())],
        vec![vis("x", &[2, 3, 4])],
        &["y"],
    );
    let g = imp(&m).unwrap();
    assert_eq!(g.tensors[g.outputs[0]].shape, vec![2, 3]);
    assert!(g.nodes.iter().any(|n| matches!(n.op, Op::Dense { .. })), "{:?}", g.nodes);
    assert_close(&run_graph(&g, std::slice::from_ref(&x))[0], &mm(&x, &a, 6, 4, 1), 1e-5, "1-D B");
    // [K] x [K] (both activations) → a scalar.
    let m = model(13, vec![node("MatMul", "mm", &["a", "c"], &["y"], vec![])], vec![], vec![vis("a", &[4]), vis("c", &[4])], &["y"]);
    let g = imp(&m).unwrap();
    assert_eq!(g.tensors[g.outputs[0]].shape, Vec::<usize>::new());
    let c = lcg(4, 9);
    assert_close(&run_graph(&g, &[a.clone(), c.clone()])[0], &mm(&a, &c, 1, 4, 1), 1e-5, "dot");
    // Mismatched K is a shape error.
    let m = model(13, vec![node("MatMul", "mm", &["a", "c"], &["y"], vec![])], vec![], vec![vis("a", &[4]), vis("c", &[5])], &["y"]);
    assert!(matches!(imp(&m), Err(ImportError::Shape { .. })));
}

/// Expected outputs from the ONNX node tests that take float scales (graph inputs there, so the
/// conformance suite cannot import them; here the scales are constants).
#[test]
fn resize_and_upsample_with_constant_scales() {
    let x22 = vec![1.0, 2.0, 3.0, 4.0];
    let x24: Vec<f32> = (1..=8).map(|v| v as f32).collect();
    let third = 1.0 / 3.0;
    let align: Vec<f32> = (0..16).map(|k| 1.0 + 2.0 * (k / 4) as f32 * third + (k % 4) as f32 * third).collect();
    let r13 = |attrs: Vec<AttributeProto>, scales: Vec<f32>, xs: &[i64]| {
        model(
            13,
            vec![node("Resize", "rs", &["x", "", "scales"], &["y"], attrs)],
            vec![init_f("scales", &[4], scales)],
            vec![vis("x", xs)],
            &["y"],
        )
    };
    // (model, input, output shape, expected output)
    type Case<'a> = (ModelProto, &'a Vec<f32>, Vec<usize>, Vec<f32>);
    let cases: Vec<Case> = vec![
        // test_resize_upsample_scales_linear
        (
            r13(vec![attr_s("mode", "linear")], vec![1.0, 1.0, 2.0, 2.0], &[1, 1, 2, 2]),
            &x22,
            vec![1, 1, 4, 4],
            vec![1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0],
        ),
        // test_resize_upsample_scales_linear_align_corners
        (
            r13(
                vec![attr_s("mode", "linear"), attr_s("coordinate_transformation_mode", "align_corners")],
                vec![1.0, 1.0, 2.0, 2.0],
                &[1, 1, 2, 2],
            ),
            &x22,
            vec![1, 1, 4, 4],
            align,
        ),
        // test_resize_downsample_scales_linear
        (r13(vec![attr_s("mode", "linear")], vec![1.0, 1.0, 0.6, 0.6], &[1, 1, 2, 4]), &x24, vec![1, 1, 1, 2], vec![2.6666665, 4.3333335]),
        // test_resize_downsample_scales_linear_align_corners: the given scale, not 2 / 4, sets the
        // coordinates (x * 3 / (2.4 - 1)).
        (
            r13(
                vec![attr_s("mode", "linear"), attr_s("coordinate_transformation_mode", "align_corners")],
                vec![1.0, 1.0, 0.6, 0.6],
                &[1, 1, 2, 4],
            ),
            &x24,
            vec![1, 1, 1, 2],
            vec![1.0, 3.142857],
        ),
        // test_resize_downsample_scales_nearest
        (r13(vec![attr_s("mode", "nearest")], vec![1.0, 1.0, 0.6, 0.6], &[1, 1, 2, 4]), &x24, vec![1, 1, 1, 2], vec![1.0, 3.0]),
        // test_upsample_nearest (opset 9: scales input) and the opset 7 attribute form.
        (
            model(
                9,
                vec![node("Upsample", "up", &["x", "scales"], &["y"], vec![])],
                vec![init_f("scales", &[4], vec![1.0, 1.0, 2.0, 3.0])],
                vec![vis("x", &[1, 1, 2, 2])],
                &["y"],
            ),
            &x22,
            vec![1, 1, 4, 6],
            [[1.0, 1.0, 1.0, 2.0, 2.0, 2.0]; 2].concat().into_iter().chain([[3.0, 3.0, 3.0, 4.0, 4.0, 4.0]; 2].concat()).collect(),
        ),
        (
            model(
                7,
                vec![node(
                    "Upsample",
                    "up",
                    &["x"],
                    &["y"],
                    vec![AttributeProto {
                        name: "scales".into(),
                        r#type: AttributeType::Floats as i32,
                        floats: vec![1.0, 1.0, 2.0, 3.0],
                        ..Default::default()
                    }],
                )],
                vec![],
                vec![vis("x", &[1, 1, 2, 2])],
                &["y"],
            ),
            &x22,
            vec![1, 1, 4, 6],
            [[1.0, 1.0, 1.0, 2.0, 2.0, 2.0]; 2].concat().into_iter().chain([[3.0, 3.0, 3.0, 4.0, 4.0, 4.0]; 2].concat()).collect(),
        ),
        // Opset 10 Resize: asymmetric linear, 1-D.
        (
            model(
                10,
                vec![node("Resize", "rs", &["x", "scales"], &["y"], vec![attr_s("mode", "linear")])],
                vec![init_f("scales", &[3], vec![1.0, 1.0, 2.0])],
                vec![vis("x", &[1, 1, 4])],
                &["y"],
            ),
            &x24,
            vec![1, 1, 8],
            vec![1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.0],
        ),
    ];
    for (k, (m, x, shape, want)) in cases.into_iter().enumerate() {
        let g = imp(&m).unwrap_or_else(|e| panic!("case {k}: {e}"));
        assert_eq!(g.tensors[g.outputs[0]].shape, shape, "case {k}");
        let xin: Vec<f32> = x[..g.tensors[g.inputs[0]].numel()].to_vec();
        assert_close(&run_graph(&g, &[xin])[0], &want, 1e-6, &format!("case {k}"));
    }
    // Scaling N or C, cubic and non-constant scales are unsupported.
    let bad = [
        r13(vec![], vec![2.0, 1.0, 2.0, 2.0], &[1, 1, 2, 2]),
        r13(vec![attr_s("mode", "cubic")], vec![1.0, 1.0, 2.0, 2.0], &[1, 1, 2, 2]),
        model(
            13,
            vec![node("Resize", "rs", &["x", "", "s"], &["y"], vec![])],
            vec![],
            vec![vis("x", &[1, 1, 2, 2]), vis("s", &[4])],
            &["y"],
        ),
    ];
    for m in bad {
        assert!(matches!(imp(&m), Err(ImportError::Unsupported(_))));
    }
}

fn init_typed(name: &str, shape: &[i64], dt: DataType, v: Vec<i32>) -> TensorProto {
    TensorProto { name: name.into(), dims: shape.to_vec(), data_type: dt as i32, int32_data: v, ..Default::default() }
}

/// `clip(round_half_even(x / s) + zp, lo, hi)`, the ONNX QuantizeLinear definition.
fn quantize_ref(x: f32, s: f32, zp: i64, lo: i64, hi: i64) -> f32 {
    ((x / s).round_ties_even() as i64 + zp).clamp(lo, hi) as f32
}

#[test]
fn quantize_dequantize_on_activations_match_the_definition() {
    // Ties (x / s = ±0.5, 1.5, 2.5), saturation at both ends, and an int8 and a uint8 zero point.
    let x: Vec<f32> = vec![-300.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.5, 3.0, 7.0, 250.0, 1e9, -0.25, 0.75, 5.5, -5.5];
    for (dt, zp, lo, hi) in [(DataType::Int8, -3i64, -128i64, 127i64), (DataType::Uint8, 128, 0, 255), (DataType::Int8, 0, -128, 127)] {
        let s = 0.5f32;
        let m = model(
            13,
            vec![
                node("QuantizeLinear", "q", &["x", "s", "z"], &["q"], vec![]),
                node("DequantizeLinear", "dq", &["q", "s", "z"], &["y"], vec![]),
                node("Add", "add", &["q", "one"], &["q1"], vec![]),
            ],
            vec![init_f("s", &[], vec![s]), init_typed("z", &[], dt, vec![zp as i32]), init_f("one", &[], vec![0.0])],
            vec![vis("x", &[16])],
            &["y", "q1"],
        );
        let g = imp(&m).unwrap();
        let out = run_graph(&g, std::slice::from_ref(&x));
        let q: Vec<f32> = x.iter().map(|&v| quantize_ref(v, s, zp, lo, hi)).collect();
        let y: Vec<f32> = q.iter().map(|&v| (v - zp as f32) * s).collect();
        assert_eq!(out[1], q, "{dt:?} zp {zp}: QuantizeLinear");
        assert_eq!(out[0], y, "{dt:?} zp {zp}: DequantizeLinear of it");
    }
    // A Q → DQ pair alone is one fused QuantizeDequantize (the Div, Round, Clip and zero-point
    // Add of the quantized value are dead).
    let m = model(
        13,
        vec![
            node("QuantizeLinear", "q", &["x", "s", "z"], &["q"], vec![]),
            node("DequantizeLinear", "dq", &["q", "s", "z"], &["y"], vec![]),
        ],
        vec![init_f("s", &[], vec![0.25]), init_typed("z", &[], DataType::Int8, vec![5])],
        vec![vis("x", &[16])],
        &["y"],
    );
    let g = imp(&m).unwrap();
    let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(kinds, ["QuantizeDequantize"]);
    assert!(matches!(g.nodes[0].op, Op::Unary(sprig_runtime::UnaryKind::QuantizeDequantize { scale: 0.25, min: -133.0, max: 122.0 })));
}

#[test]
fn dequantize_constants_per_tensor_and_per_axis_fold() {
    // int8 weights [2, 3] per output channel (axis 0), int32 bias per tensor: folded to f32.
    let m = model(
        13,
        vec![
            node("DequantizeLinear", "dw", &["wq", "ws", "wz"], &["w"], vec![attr_i("axis", 0)]),
            node("DequantizeLinear", "db", &["bq", "bs"], &["b"], vec![]),
            node("Transpose", "t", &["w"], &["wt"], vec![]),
            node("MatMul", "mm", &["x", "wt"], &["h"], vec![]),
            node("Add", "add", &["h", "b"], &["y"], vec![]),
        ],
        vec![
            init_typed("wq", &[2, 3], DataType::Int8, vec![-128, 0, 127, 5, -6, 7]),
            init_f("ws", &[2], vec![0.5, 0.25]),
            init_typed("wz", &[2], DataType::Int8, vec![1, -2]),
            init_typed("bq", &[2], DataType::Int32, vec![1000, -3]),
            init_f("bs", &[], vec![0.001]),
        ],
        vec![vis("x", &[1, 3])],
        &["y"],
    );
    let g = imp(&m).unwrap();
    let x = vec![1.0f32, 2.0, -1.0];
    let w = [
        [(-128 - 1) as f32 * 0.5, (0 - 1) as f32 * 0.5, (127 - 1) as f32 * 0.5],
        [(5 + 2) as f32 * 0.25, (-6 + 2) as f32 * 0.25, (7 + 2) as f32 * 0.25],
    ];
    let b = [1000.0f32 * 0.001, -3.0 * 0.001];
    let want: Vec<f32> = (0..2).map(|m| (0..3).map(|k| x[k] * w[m][k]).sum::<f32>() + b[m]).collect();
    assert_close(&run_graph(&g, std::slice::from_ref(&x))[0], &want, 1e-6, "per-axis dequantized weights");
    assert_eq!(g.nodes.len(), 1, "the weights and bias fold into one Dense");
}

#[test]
fn int8_graph_inputs_are_carried_as_f32() {
    let mut input = vis("x", &[4]);
    if let Some(type_proto::Value::TensorType(t)) = input.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        t.elem_type = DataType::Int8 as i32;
    }
    let m = model(
        13,
        vec![node("DequantizeLinear", "dq", &["x", "s", "z"], &["y"], vec![])],
        vec![init_f("s", &[], vec![0.1]), init_typed("z", &[], DataType::Int8, vec![-128])],
        vec![input.clone()],
        &["y"],
    );
    let g = imp(&m).unwrap();
    let x = vec![-128.0f32, -1.0, 0.0, 127.0];
    let want: Vec<f32> = x.iter().map(|&v| (v + 128.0) * 0.1).collect();
    assert_eq!(run_graph(&g, std::slice::from_ref(&x))[0], want);
    // int64 inputs stay refused, with the input named.
    if let Some(type_proto::Value::TensorType(t)) = input.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        t.elem_type = DataType::Int64 as i32;
    }
    let m = model(13, vec![node("Relu", "r", &["x"], &["y"], vec![])], vec![], vec![input], &["y"]);
    let e = imp(&m).unwrap_err().to_string();
    assert!(e.contains("`x`") && e.contains("INT64"), "{e}");
}

#[test]
fn bad_quantization_parameters_are_named_errors() {
    let q = |inits: Vec<TensorProto>, attrs: Vec<AttributeProto>| {
        let m = model(13, vec![node("QuantizeLinear", "q", &["x", "s", "z"], &["y"], attrs)], inits, vec![vis("x", &[1, 2, 2])], &["y"]);
        imp(&m).unwrap_err().to_string()
    };
    let z8 = || init_typed("z", &[], DataType::Int8, vec![0]);
    let e = q(vec![init_f("s", &[], vec![0.0]), z8()], vec![]);
    assert!(e.contains("scale `s`") && e.contains("> 0"), "{e}");
    let e = q(vec![init_f("s", &[], vec![f32::NAN]), z8()], vec![]);
    assert!(e.contains("scale `s`"), "{e}");
    let e = q(vec![init_f("s", &[], vec![1.0]), init_typed("z", &[], DataType::Int32, vec![0])], vec![]);
    assert!(e.contains("INT32"), "{e}");
    let e = q(vec![init_f("s", &[3], vec![1.0; 3]), init_typed("z", &[3], DataType::Int8, vec![0; 3])], vec![]);
    assert!(e.contains("3 per-axis scales"), "{e}");
    let e = q(vec![init_f("s", &[2], vec![1.0; 2]), z8()], vec![]);
    assert!(e.contains("zero point `z` has 1 values"), "{e}");
    // A scale computed at run time is refused (quantized models have constant scales).
    let m = model(13, vec![node("QuantizeLinear", "q", &["x", "x"], &["y"], vec![])], vec![], vec![vis("x", &[4])], &["y"]);
    let e = imp(&m).unwrap_err().to_string();
    assert!(e.contains("scale") && e.contains("constant"), "{e}");
}
