//! u8-affine (`U8_AFFINE`) constants in a whole `.sprig` file: the digits CNN with every rank-1
//! constant (its biases) re-stored as 8-bit codes runs like the same model with the same
//! decoded values stored as f32, and every payload rule is enforced by `Model::parse`.

mod common;

use common::{parse, placed, run, weights, with_constants, DIGITS};
use sprig_runtime::format::{
    encode_u8_affine, encoding, u8_affine_code, u8_affine_fit, u8_affine_nearest, u8_affine_value, U8_AFFINE_MINOR,
};
use sprig_runtime::kernels::ALL_OPS;
use sprig_runtime::{Error, Model, View};

/// The rank-1 constants of the digits CNN (its biases).
fn biases(model: &Model<'_>) -> Vec<usize> {
    (0..model.num_tensors())
        .filter(|&t| model.tensor(t).is_some_and(|i| i.role == sprig_runtime::format::Role::Constant && i.shape.rank() == 1))
        .collect()
}

/// `w` rounded onto its u8-affine grid: the payload and the values it decodes to.
fn affine(w: &[f32]) -> (Vec<u8>, Vec<f32>) {
    let (lo, step) = u8_affine_fit(w).unwrap();
    let vals: Vec<f32> = w.iter().map(|&v| u8_affine_nearest(lo, step, v)).collect();
    (encode_u8_affine(lo, step, &vals).unwrap(), vals)
}

/// The dense twin (decoded biases stored as f32) and the u8-affine model.
fn twins() -> (Vec<u8>, Vec<u8>, Vec<usize>) {
    let model = Model::parse(DIGITS).unwrap();
    let ids = biases(&model);
    let (mut dense, mut coded) = (Vec::new(), Vec::new());
    for &t in &ids {
        let (payload, vals) = affine(&weights(&model, t));
        dense.push((t, encoding::F32, vals.iter().flat_map(|v| v.to_le_bytes()).collect()));
        coded.push((t, encoding::U8_AFFINE, payload));
    }
    (with_constants(DIGITS, 0, &dense), with_constants(DIGITS, U8_AFFINE_MINOR, &coded), ids)
}

#[test]
fn u8_affine_biases_run_like_their_f32_twin() {
    let (dense, coded, ids) = twins();
    assert!(ids.len() >= 3, "the digits CNN has a bias per layer: {ids:?}");
    let dm_b = placed(&dense, 0);
    let dm = parse(&dm_b).unwrap();
    let want = run::<ALL_OPS>(&dm).unwrap();
    for shift in [0, 1, 4] {
        let cb = placed(&coded, shift);
        let cm = parse(&cb).unwrap();
        assert_eq!(cm.minor_version(), U8_AFFINE_MINOR);
        for &t in &ids {
            let info = cm.tensor(t).unwrap();
            assert_eq!(encoding::name(info.encoding), "u8-affine");
            assert_eq!(info.len as usize, 8 + info.shape.numel().unwrap());
            assert!(matches!(cm.constant(&info), View::U8(_)), "tensor {t} not read in place");
            assert_eq!(weights(&cm, t), weights(&dm, t));
        }
        // The same values (kernels may take another path for a non-native bias: the same sums up
        // to rounding).
        for (a, b) in run::<ALL_OPS>(&cm).unwrap().iter().zip(&want) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "{a} vs {b}");
        }
    }
}

/// The digits CNN with its first bias re-stored as u8-affine, payload edited by `edit`.
fn with_first_bias(edit: impl FnOnce(&mut Vec<u8>)) -> (Result<(), Error>, u32) {
    let model = Model::parse(DIGITS).unwrap();
    let t = biases(&model)[0];
    let (mut p, _) = affine(&weights(&model, t));
    edit(&mut p);
    let file = with_constants(DIGITS, U8_AFFINE_MINOR, &[(t, encoding::U8_AFFINE, p)]);
    (parse(&placed(&file, 0)).map(|_| ()), t as u32)
}

#[test]
fn model_parse_names_each_broken_u8_affine_rule() {
    assert_eq!(with_first_bias(|_| {}).0, Ok(()));
    fn set(at: usize, v: f32) -> impl Fn(&mut Vec<u8>) {
        move |p: &mut Vec<u8>| p[at..at + 4].copy_from_slice(&v.to_le_bytes())
    }
    type Edit = Box<dyn FnOnce(&mut Vec<u8>)>;
    let length: Vec<Edit> = vec![Box::new(|p| p.truncate(7)), Box::new(|p| p.truncate(p.len() - 1)), Box::new(|p| p.push(0))];
    for edit in length {
        let (r, t) = with_first_bias(edit);
        assert_eq!(r, Err(Error::BadDataLength { tensor: t }));
    }
    let grid: Vec<Edit> = vec![
        Box::new(set(0, f32::NAN)),
        Box::new(set(0, f32::INFINITY)),
        Box::new(set(4, f32::NAN)),
        Box::new(set(4, f32::NEG_INFINITY)),
        Box::new(set(4, -1.0)),
        // Finite ends, but code 255 overflows.
        Box::new(|p: &mut Vec<u8>| {
            set(0, 3.0e38)(p);
            set(4, 1.0e37)(p);
        }),
    ];
    for edit in grid {
        let (r, t) = with_first_bias(edit);
        assert_eq!(r, Err(Error::BadAffine { tensor: t }));
        assert!(r.unwrap_err().to_string().contains("u8-affine grid"));
    }
    // Any code names a grid value: every byte pattern of the codes is accepted.
    assert_eq!(with_first_bias(|p| p[8..].iter_mut().for_each(|q| *q = 255)).0, Ok(()));
    // A zero step (every value equal) is a valid grid.
    assert_eq!(with_first_bias(set(4, 0.0)).0, Ok(()));
}

#[test]
fn the_grid_helpers_agree_with_each_other() {
    let vals = [-1.5f32, 0.25, 3.0, 3.0, -1.5, 0.0, 1e-3];
    let (lo, step) = u8_affine_fit(&vals).unwrap();
    assert_eq!((lo, step), (-1.5, 4.5 / 255.0));
    for &v in &vals {
        let q = u8_affine_code(lo, step, v);
        // The nearest grid value (the ends are exact).
        let err = (u8_affine_value(lo, step, q) - v).abs();
        assert!(err <= step / 2.0 * 1.0001, "{v}: code {q}, error {err}");
        for n in [q.saturating_sub(1), q.saturating_add(1)] {
            assert!((u8_affine_value(lo, step, n) - v).abs() >= err);
        }
    }
    assert_eq!(u8_affine_code(lo, step, -1.5), 0);
    assert_eq!(u8_affine_code(lo, step, 3.0), 255);
    // Values off the grid are refused by the encoder; grid values round-trip.
    assert_eq!(encode_u8_affine(lo, step, &[0.3]), None);
    let on: Vec<f32> = (0..=255u8).map(|q| u8_affine_value(lo, step, q)).collect();
    let p = encode_u8_affine(lo, step, &on).unwrap();
    assert_eq!(&p[8..], &(0..=255u8).collect::<Vec<u8>>()[..]);
    assert_eq!(u8_affine_fit(&[1.0, f32::NAN]), None);
    assert_eq!(u8_affine_fit(&[-3e38, 3e38]), None);
    assert_eq!(u8_affine_fit(&[]), Some((0.0, 0.0)));
    assert_eq!(u8_affine_fit(&[2.0, 2.0]), Some((2.0, 0.0)));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
    /// Any edit of a u8-affine bias payload (its grid bytes or its codes) or a cut of its last
    /// bytes is refused with an error or runs to a finite output: never a panic, never a NaN or
    /// infinity from the grid.
    #[test]
    fn mutated_u8_affine_payloads_never_panic(edits in proptest::collection::vec((0usize..64, proptest::prelude::any::<u8>()), 1..4),
                                              cut in 0usize..3) {
        let model = Model::parse(DIGITS).unwrap();
        let t = biases(&model)[0];
        let (mut p, _) = affine(&weights(&model, t));
        for (at, v) in edits {
            let n = p.len();
            p[at % n] = v;
        }
        let n = p.len();
        p.truncate(n - cut.min(n));
        let file = with_constants(DIGITS, U8_AFFINE_MINOR, &[(t, encoding::U8_AFFINE, p)]);
        let b = placed(&file, 0);
        match parse(&b) {
            Ok(m) => {
                let bias = weights(&m, t);
                proptest::prop_assert!(bias.iter().all(|v| v.is_finite()), "{bias:?}");
                proptest::prop_assert!(run::<ALL_OPS>(&m).is_ok());
            }
            Err(e) => proptest::prop_assert!(
                matches!(e, Error::BadAffine { .. } | Error::BadDataLength { .. }),
                "{e:?}"
            ),
        }
    }
}
