//! Hostile ONNX models: each malformed or malicious construct is refused with an error that names
//! the offending input, tensor, node or attribute. (Random mutations of real models are covered by
//! the `onnx_edit` fuzz target; these pin one clear message per rule.)

use std::path::Path;

use prost::Message;
use tract_onnx::pb::{
    tensor_proto::DataLocation, tensor_proto::DataType, tensor_shape_proto::dimension, type_proto, ModelProto, StringStringEntryProto,
    TensorProto,
};

use super::tests::{attr_f, attr_ints, init_f, model, node, vis};
use super::*;

/// x[1,1,5,5] → Conv(w[2,1,3,3], b[2]) → Relu → y.
fn conv_model() -> ModelProto {
    let w = init_f("w", &[2, 1, 3, 3], (0..18).map(|i| i as f32 * 0.1).collect());
    let b = init_f("b", &[2], vec![0.5, -0.5]);
    model(
        13,
        vec![
            node("Conv", "conv", &["x", "w", "b"], &["c"], vec![attr_ints("pads", &[1, 1, 1, 1]), attr_ints("strides", &[1, 1])]),
            node("Relu", "relu", &["c"], &["y"], vec![]),
        ],
        vec![w, b],
        vec![vis("x", &[1, 1, 5, 5])],
        &["y"],
    )
}

fn import_err(m: &ModelProto) -> String {
    match import_model_proto(m, None, &ImportOptions::default()) {
        Ok(_) => panic!("the hostile model was accepted"),
        Err(e) => e.to_string(),
    }
}

fn assert_names(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error `{msg}` does not mention `{p}`");
    }
}

#[test]
fn the_base_model_imports() {
    import_model_proto(&conv_model(), None, &ImportOptions::default()).expect("base model");
}

fn set_input_dim(m: &mut ModelProto, axis: usize, v: i64) {
    let g = m.graph.as_mut().unwrap();
    if let Some(type_proto::Value::TensorType(tt)) = g.input[0].r#type.as_mut().unwrap().value.as_mut() {
        tt.shape.as_mut().unwrap().dim[axis].value = Some(dimension::Value::DimValue(v));
    }
}

#[test]
fn negative_input_dimension() {
    let mut m = conv_model();
    set_input_dim(&mut m, 2, -5);
    assert_names(&import_err(&m), &["graph input `x`", "negative dimension -5", "axis 2"]);
}

#[test]
fn huge_input_dimensions() {
    for v in [1i64 << 40, i64::MAX] {
        let mut m = conv_model();
        set_input_dim(&mut m, 3, v);
        assert_names(&import_err(&m), &["graph input `x`", "elements"]);
    }
    // Each dimension fits, their product does not.
    let mut m = conv_model();
    set_input_dim(&mut m, 2, 1 << 31);
    set_input_dim(&mut m, 3, 1 << 31);
    assert_names(&import_err(&m), &["graph input `x`", "elements"]);
}

#[test]
fn huge_or_negative_initializer_dimensions() {
    let mut m = conv_model();
    m.graph.as_mut().unwrap().initializer[0].dims = vec![1 << 40, 1 << 40, 1, 1];
    assert_names(&import_err(&m), &["tensor `w`"]);
    let mut m = conv_model();
    m.graph.as_mut().unwrap().initializer[0].dims = vec![2, -1, 3, 3];
    assert_names(&import_err(&m), &["tensor `w`", "negative dimension -1"]);
    // Declares far more values than it carries.
    let mut m = conv_model();
    m.graph.as_mut().unwrap().initializer[0].dims = vec![2, 1, 3, 3000];
    assert_names(&import_err(&m), &["tensor `w`", "values for shape"]);
    // Raw data whose length is not the shape's.
    let mut m = conv_model();
    let t = &mut m.graph.as_mut().unwrap().initializer[0];
    t.float_data.clear();
    t.raw_data = vec![0u8; 17];
    assert_names(&import_err(&m), &["tensor `w`"]);
}

#[test]
fn cycles_and_unsorted_nodes() {
    // conv reads relu's output and relu reads conv's: a cycle.
    let mut m = conv_model();
    m.graph.as_mut().unwrap().node[0].input[0] = "y".into();
    assert_names(&import_err(&m), &["node `conv`", "reads `y`", "no earlier node produces"]);
    // Nodes listed out of topological order.
    let mut m = conv_model();
    m.graph.as_mut().unwrap().node.swap(0, 1);
    assert_names(&import_err(&m), &["node `relu`", "reads `c`"]);
    // A node reading its own output.
    let mut m = conv_model();
    m.graph.as_mut().unwrap().node[1].input[0] = "y".into();
    assert_names(&import_err(&m), &["node `relu`", "reads `y`"]);
}

#[test]
fn missing_initializer() {
    let mut m = conv_model();
    m.graph.as_mut().unwrap().initializer.remove(0);
    assert_names(&import_err(&m), &["node `conv`", "reads `w`"]);
}

#[test]
fn two_producers_of_one_value() {
    let mut m = conv_model();
    let g = m.graph.as_mut().unwrap();
    let mut dup = g.node[1].clone();
    dup.name = "relu2".into();
    dup.input[0] = "x".into();
    g.node.push(dup);
    assert_names(&import_err(&m), &["`y`", "more than once"]);
}

#[test]
fn wrong_attribute_types() {
    // strides given as a float.
    let mut m = conv_model();
    m.graph.as_mut().unwrap().node[0].attribute[1] = attr_f("strides", 2.0);
    assert_names(&import_err(&m), &["node `conv`", "attribute `strides`"]);
    // pads given as a string.
    let mut m = conv_model();
    m.graph.as_mut().unwrap().node[0].attribute[0] = super::tests::attr_s("pads", "1");
    assert_names(&import_err(&m), &["node `conv`", "attribute `pads`"]);
    // An int attribute declared as INTS with no values.
    let mut m = conv_model();
    m.graph.as_mut().unwrap().node[0].attribute.push(attr_ints("group", &[]));
    assert_names(&import_err(&m), &["node `conv`", "attribute `group`"]);
    // Values out of their domain.
    let mut m = conv_model();
    m.graph.as_mut().unwrap().node[0].attribute[1] = attr_ints("strides", &[0, 1]);
    assert_names(&import_err(&m), &["node `conv`", "strides"]);
    let mut m = conv_model();
    m.graph.as_mut().unwrap().node[0].attribute[0] = attr_ints("pads", &[-1, 0, 0, 0]);
    assert_names(&import_err(&m), &["node `conv`", "pads"]);
}

#[test]
fn opsets_from_the_future_and_the_past() {
    let mut m = conv_model();
    m.opset_import[0].version = 99;
    assert_names(&import_err(&m), &["opset 99", "newer"]);
    let mut m = conv_model();
    m.opset_import.clear();
    assert_names(&import_err(&m), &["opset"]);
    let mut m = conv_model();
    m.opset_import[0].version = -3;
    assert_names(&import_err(&m), &["opset -3"]);
}

/// Writes `m` with initializer `w` moved to external data at `location`, next to `data.bin`.
fn external(dir: &Path, location: &str) -> std::path::PathBuf {
    let mut m = conv_model();
    let t: &mut TensorProto = &mut m.graph.as_mut().unwrap().initializer[0];
    let raw: Vec<u8> = t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("data.bin"), &raw).unwrap();
    t.float_data.clear();
    t.data_location = Some(DataLocation::External as i32);
    t.external_data = vec![StringStringEntryProto { key: "location".into(), value: location.into() }];
    let p = dir.join("model.onnx");
    std::fs::write(&p, m.encode_to_vec()).unwrap();
    p
}

#[test]
fn external_data_inside_the_folder_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = external(dir.path(), "data.bin");
    import_onnx(&p, &ImportOptions::default()).expect("external data next to the model");
}

#[test]
fn external_data_paths_that_leave_the_folder_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("m");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(outer.path().join("secret.bin"), [0u8; 72]).unwrap();
    let abs = outer.path().join("secret.bin");
    for loc in ["../secret.bin", "sub/../../secret.bin", abs.to_str().unwrap(), "/etc/passwd", ""] {
        let p = external(&dir, loc);
        let e = import_onnx(&p, &ImportOptions::default()).expect_err(loc).to_string();
        assert_names(&e, &["tensor `w`", "external data"]);
        if !loc.is_empty() {
            assert!(e.contains(loc), "`{e}` does not name the location `{loc}`");
        }
    }
    // A symlink inside the folder that points outside it.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(outer.path().join("secret.bin"), dir.join("link.bin")).unwrap();
        let p = external(&dir, "link.bin");
        let e = import_onnx(&p, &ImportOptions::default()).unwrap_err().to_string();
        assert_names(&e, &["tensor `w`", "link.bin", "outside"]);
    }
    // From bytes there is no folder: external data is refused.
    let p = external(&dir, "data.bin");
    let bytes = std::fs::read(p).unwrap();
    let e = import_onnx_bytes(&bytes, &ImportOptions::default()).unwrap_err().to_string();
    assert_names(&e, &["tensor `w`", "external data"]);
}

#[test]
fn external_data_offsets_beyond_the_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = external(dir.path(), "data.bin");
    let mut m = ModelProto::decode(&*std::fs::read(&p).unwrap()).unwrap();
    let t = &mut m.graph.as_mut().unwrap().initializer[0];
    t.external_data.push(StringStringEntryProto { key: "offset".into(), value: "1000000".into() });
    std::fs::write(&p, m.encode_to_vec()).unwrap();
    let e = import_onnx(&p, &ImportOptions::default()).unwrap_err().to_string();
    assert_names(&e, &["tensor `w`"]);
}

#[test]
fn unknown_element_types() {
    let mut m = conv_model();
    m.graph.as_mut().unwrap().initializer[0].data_type = 1234;
    assert_names(&import_err(&m), &["tensor `w`", "1234"]);
    let mut m = conv_model();
    m.graph.as_mut().unwrap().initializer[0].data_type = DataType::String as i32;
    assert_names(&import_err(&m), &["tensor `w`", "STRING"]);
}

#[test]
fn garbage_protobuf_is_a_parse_error_not_a_panic() {
    let good = conv_model().encode_to_vec();
    for n in [0, 1, 7, good.len() / 2, good.len() - 1] {
        let _ = import_onnx_bytes(&good[..n], &ImportOptions::default());
    }
    let e = import_onnx_bytes(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, ImportError::Parse(_)), "{e}");
}
