//! The embedded usage from the README: a model compiled into the binary with an aligned
//! `include_bytes!`, a fixed-size arena, no allocation in the inference path.

use sprig_runtime::format::Role;
use sprig_runtime::{Error, Model, Session, View};

#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../tools/tests/data/digits_cnn_v1.0.sprig"));

/// A crude "1": a vertical bar in the middle columns of the 8x8 input.
fn bar(x: &mut [f32]) {
    for (i, v) in x.iter_mut().enumerate() {
        *v = if i % 8 == 3 || i % 8 == 4 { 1.0 } else { 0.0 };
    }
}

fn infer(model: &Model<'_>) -> Result<[f32; 10], Error> {
    let mut arena = [0u32; 2048];
    let mut s = Session::new(model, bytemuck::cast_slice_mut(&mut arena))?;
    bar(s.input_mut(0)?);
    s.run()?;
    let mut y = [0f32; 10];
    y.copy_from_slice(s.output(0)?);
    Ok(y)
}

#[test]
fn runs_from_an_aligned_include_bytes_with_a_static_sized_arena() -> Result<(), Error> {
    let model = Model::parse(&MODEL.0)?;
    assert!(model.arena_len() <= 2048 * 4);
    // Aligned f32 weights are borrowed in place as native slices.
    let constants: Vec<_> = (0..model.num_tensors()).filter_map(|i| model.tensor(i)).filter(|t| t.role == Role::Constant).collect();
    assert!(!constants.is_empty());
    for t in &constants {
        assert!(matches!(model.constant(t), View::F32(_)), "{} not borrowed in place", t.name);
    }
    let y = infer(&model)?;
    let sum: f32 = y.iter().sum();
    assert!((sum - 1.0).abs() < 1e-5, "softmax sums to {sum}");
    let best = (0..10).max_by(|&a, &b| y[a].total_cmp(&y[b]));
    assert_eq!(best, Some(1), "a vertical bar should read as a 1: {y:?}");

    // Bytes at an odd address still parse and give the same numbers (weights decoded on the fly).
    let mut shifted = vec![0u8; MODEL.0.len() + 1];
    shifted[1..].copy_from_slice(&MODEL.0);
    let unaligned = Model::parse(&shifted[1..])?;
    assert!(matches!(unaligned.constant(&constants[0]), View::F32Le(_)));
    for (a, b) in infer(&unaligned)?.iter().zip(&y) {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1e-3), "{a} vs {b}");
    }
    Ok(())
}
