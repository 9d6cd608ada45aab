//! Pass tests on hand-built graphs.

use sprig_runtime::{Activation, BinaryKind, ConvAttrs, Op, Shape, UnaryKind};

use super::*;
use crate::ir::{Graph, Node};

fn node(g: &mut Graph, name: &str, op: Op, inputs: Vec<usize>, out_shape: Vec<usize>) -> usize {
    let o = g.add_tensor(format!("{name}_out"), out_shape, None);
    g.nodes.push(Node { name: name.into(), onnx_op: op.name().into(), op, inputs, outputs: vec![o] });
    o
}

fn conv_graph() -> (Graph, usize) {
    let mut g = Graph::default();
    let x = g.add_tensor("x", vec![1, 1, 2, 2], None);
    g.inputs.push(x);
    let w = g.add_tensor("w", vec![2, 1, 1, 1], Some(vec![1.0, 2.0]));
    let attrs = ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [0; 4], act: Activation::None };
    let c = node(&mut g, "conv", Op::Conv(attrs), vec![x, w], vec![1, 2, 2, 2]);
    (g, c)
}

#[test]
fn dead_nodes_are_removed() {
    let (mut g, c) = conv_graph();
    let x = g.inputs[0];
    let _dead = node(&mut g, "dead", Op::Unary(UnaryKind::Exp), vec![c], vec![1, 2, 2, 2]);
    let y = node(&mut g, "live", Op::Unary(UnaryKind::Neg), vec![x], vec![1, 1, 2, 2]);
    g.outputs.push(y);
    optimize(&mut g).unwrap();
    assert_eq!(g.nodes.len(), 1);
    assert_eq!(g.nodes[0].name, "live");
    assert_eq!(g.tensors.len(), 2);
}

#[test]
fn activation_not_fused_when_intermediate_is_shared_or_an_output() {
    // Conv output read by Relu and by another node: no fusion.
    let (mut g, c) = conv_graph();
    let r = node(&mut g, "relu", Op::Unary(UnaryKind::Relu), vec![c], vec![1, 2, 2, 2]);
    let s = node(&mut g, "add", Op::Binary(BinaryKind::Add), vec![c, r], vec![1, 2, 2, 2]);
    g.outputs.push(s);
    optimize(&mut g).unwrap();
    assert_eq!(g.nodes.len(), 3);
    // Conv output is itself a graph output: no fusion either.
    let (mut g, c) = conv_graph();
    let r = node(&mut g, "relu", Op::Unary(UnaryKind::Relu), vec![c], vec![1, 2, 2, 2]);
    g.outputs.extend([c, r]);
    optimize(&mut g).unwrap();
    assert_eq!(g.nodes.len(), 2);
    // Single consumer: fused, output name kept.
    let (mut g, c) = conv_graph();
    let r = node(&mut g, "relu6", Op::Unary(UnaryKind::Clip { min: 0.0, max: 6.0 }), vec![c], vec![1, 2, 2, 2]);
    g.outputs.push(r);
    optimize(&mut g).unwrap();
    assert_eq!(g.nodes.len(), 1);
    assert!(matches!(g.nodes[0].op, Op::Conv(a) if a.act == Activation::Clip { min: 0.0, max: 6.0 }));
    assert_eq!(g.nodes[0].onnx_op, "Conv+Clip");
    assert_eq!(g.tensors[g.outputs[0]].name, "relu6_out");
}

#[test]
fn residual_add_and_relu_fuse_into_one_operator() {
    // relu(conv(x) + x2) where the Add reads two activations: one Add+Relu node, the Relu's
    // output tensor kept; its values equal the pair's.
    let mut g = Graph::default();
    let x = g.add_tensor("x", vec![1, 2, 2, 2], None);
    g.inputs.push(x);
    let e = node(&mut g, "exp", Op::Unary(UnaryKind::Exp), vec![x], vec![1, 2, 2, 2]);
    let s = node(&mut g, "add", Op::Binary(BinaryKind::Add), vec![x, e], vec![1, 2, 2, 2]);
    let r = node(&mut g, "relu", Op::Unary(UnaryKind::Relu), vec![s], vec![1, 2, 2, 2]);
    g.outputs.push(r);
    let before = g.clone();
    optimize(&mut g).unwrap();
    assert_eq!(g.nodes.len(), 2);
    assert_eq!(g.nodes[1].op, Op::Binary(BinaryKind::AddRelu));
    assert_eq!(g.nodes[1].onnx_op, "Add+Relu");
    assert_eq!(g.tensors[g.outputs[0]].name, "relu_out");
    let xs: Vec<f32> = vec![-3.0, -1.0, -0.5, 0.0, 0.25, 1.0, -2.0, 4.0];
    let run = |g: &Graph| {
        let c = crate::compile::compile(g.clone(), crate::writer::WeightFormat::F32, [0; 32]).unwrap();
        crate::host::HostModel::new(&c.bytes).unwrap().run(&[&xs]).unwrap()
    };
    let (fused, pair) = (run(&g), run(&before));
    assert_eq!(fused, pair);
    assert!(fused[0].contains(&0.0) && fused[0].iter().any(|&v| v > 0.0));
    // An Add whose sum is also read elsewhere keeps its Relu separate.
    let mut g = before.clone();
    let t = node(&mut g, "tanh", Op::Unary(UnaryKind::Tanh), vec![s], vec![1, 2, 2, 2]);
    g.outputs.push(t);
    optimize(&mut g).unwrap();
    assert!(g.nodes.iter().any(|n| n.op == Op::Binary(BinaryKind::Add)));
    assert!(g.nodes.iter().any(|n| n.op == Op::Unary(UnaryKind::Relu)));
}

#[test]
fn dense_bias_and_scale_fold() {
    let mut g = Graph::default();
    let x = g.add_tensor("x", vec![1, 2], None);
    g.inputs.push(x);
    let w = g.add_tensor("w", vec![3, 2], Some(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]));
    let d = node(&mut g, "fc", Op::Dense { act: Activation::None }, vec![x, w], vec![1, 3]);
    let s = g.add_tensor("s", vec![3], Some(vec![2.0, 3.0, 4.0]));
    let m = node(&mut g, "mul", Op::Binary(BinaryKind::Mul), vec![s, d], vec![1, 3]);
    let b = g.add_tensor("b", vec![1, 3], Some(vec![1.0, 1.0, 1.0]));
    let y = node(&mut g, "sub", Op::Binary(BinaryKind::Sub), vec![m, b], vec![1, 3]);
    g.outputs.push(y);
    optimize(&mut g).unwrap();
    assert_eq!(g.nodes.len(), 1);
    assert_eq!(g.nodes[0].onnx_op, "Dense+Mul+Sub");
    let n = &g.nodes[0];
    assert_eq!(g.tensors[n.inputs[1]].data.as_deref(), Some(&[2.0, 0.0, 0.0, 3.0, 4.0, 4.0][..]));
    assert_eq!(g.tensors[n.inputs[2]].data.as_deref(), Some(&[-1.0, -1.0, -1.0][..]));
    // Sub with the constant first (c - x) is not a bias.
    let mut g = Graph::default();
    let x = g.add_tensor("x", vec![1, 2], None);
    g.inputs.push(x);
    let w = g.add_tensor("w", vec![3, 2], Some(vec![0.0; 6]));
    let d = node(&mut g, "fc", Op::Dense { act: Activation::None }, vec![x, w], vec![1, 3]);
    let b = g.add_tensor("b", vec![3], Some(vec![1.0; 3]));
    let y = node(&mut g, "sub", Op::Binary(BinaryKind::Sub), vec![b, d], vec![1, 3]);
    g.outputs.push(y);
    optimize(&mut g).unwrap();
    assert_eq!(g.nodes.len(), 2);
}

#[test]
fn reshapes_collapse_and_identity_reshapes_vanish() {
    let mut g = Graph::default();
    let x = g.add_tensor("x", vec![1, 2, 3], None);
    g.inputs.push(x);
    let e = node(&mut g, "exp", Op::Unary(UnaryKind::Exp), vec![x], vec![1, 2, 3]);
    let r1 = node(&mut g, "r1", Op::Reshape { shape: Shape::new(&[6]).unwrap() }, vec![e], vec![6]);
    let r2 = node(&mut g, "r2", Op::Reshape { shape: Shape::new(&[2, 3]).unwrap() }, vec![r1], vec![2, 3]);
    let r3 = node(&mut g, "r3", Op::Reshape { shape: Shape::new(&[1, 2, 3]).unwrap() }, vec![r2], vec![1, 2, 3]);
    g.outputs.push(r3);
    optimize(&mut g).unwrap();
    // r1, r2 dead after chaining; r3 is an identity reshape onto a graph output: exp writes it.
    assert_eq!(g.nodes.len(), 1, "{:?}", g.nodes);
    assert_eq!(g.nodes[0].name, "exp");
    assert_eq!(g.tensors[g.outputs[0]].name, "r3_out");
    // An identity reshape from a graph input to a graph output stays (the output needs a producer).
    let mut g = Graph::default();
    let x = g.add_tensor("x", vec![2], None);
    g.inputs.push(x);
    let y = node(&mut g, "copy", Op::Reshape { shape: Shape::new(&[2]).unwrap() }, vec![x], vec![2]);
    g.outputs.push(y);
    optimize(&mut g).unwrap();
    assert_eq!(g.nodes.len(), 1);
}

#[test]
fn unit_axis_transpose_becomes_reshape() {
    let mut g = Graph::default();
    let x = g.add_tensor("x", vec![1, 4], None);
    g.inputs.push(x);
    let t = node(&mut g, "t", Op::Transpose { perm: [1, 0, 0, 0, 0, 0] }, vec![x], vec![4, 1]);
    let y = node(&mut g, "neg", Op::Unary(UnaryKind::Neg), vec![t], vec![4, 1]);
    g.outputs.push(y);
    optimize(&mut g).unwrap();
    assert!(matches!(g.nodes[0].op, Op::Reshape { .. }));
}
