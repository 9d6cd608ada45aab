//! Codebook (`CODEBOOK`) constants in a whole `.sprig` file: the digits CNN with its weights
//! re-stored as codebooks runs like the same model with the same decoded weights stored as f32,
//! with either Dense kernel, and every payload and kernel-code rule is enforced by `Model::parse`.

mod common;

use common::{parse, placed, run, weights, with_constants, with_kernel, DIGITS};
use proptest::prelude::*;
use sprig_runtime::format::{encode_codebook, encoding, kernel};
use sprig_runtime::kernels::{ops_mask, ALL_OPS, CODEBOOK_BIT, CONV_KERNEL_BITS, SPARSE_BIT};
use sprig_runtime::op::kind;
use sprig_runtime::{CodebookInfo, Error, Model, View};

/// Weights of the digits CNN (tensor id) and their index width, f16 values, and groups.
const WEIGHTS: [(usize, u8, bool, usize); 4] = [(15, 4, false, 2), (2, 3, true, 4), (5, 7, false, 3), (11, 5, true, 2)];

/// The Dense operator (weight: tensor 11) and the first Conv (weight: tensor 15).
const DENSE_OP: usize = 6;
const CONV_OP: usize = 0;

const CNN: u128 = ops_mask(&[kind::CONV, kind::DENSE, kind::MAXPOOL, kind::RESHAPE, kind::SOFTMAX, kind::GLOBAL_AVGPOOL]);

/// Codebook files declare minor version 2, the first with the encoding.
const MINOR: u16 = 2;

/// `w` (`rows` rows) quantized to `bits`-bit indices: rows in `groups` contiguous groups, each
/// group's codebook `2^bits` evenly spaced levels over its weights' range; the payload and the
/// weights it decodes to.
fn quantize(w: &[f32], rows: usize, bits: u8, f16_values: bool, groups: usize) -> (Vec<u8>, Vec<f32>) {
    let cols = w.len() / rows;
    let q = 1usize << bits;
    let row_group: Vec<u16> = (0..rows).map(|r| (r * groups / rows) as u16).collect();
    let mut codebooks = vec![0.0f32; groups * q];
    for (g, cb) in codebooks.chunks_exact_mut(q).enumerate() {
        let vals = (0..rows).filter(|&r| row_group[r] as usize == g).flat_map(|r| &w[r * cols..(r + 1) * cols]);
        let (lo, hi) = vals.fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        for (i, c) in cb.iter_mut().enumerate() {
            *c = lo + (hi - lo) * i as f32 / (q - 1).max(1) as f32;
        }
    }
    let indices: Vec<u8> = (0..rows * cols)
        .map(|i| {
            let cb = &codebooks[row_group[i / cols] as usize * q..][..q];
            (0..q).min_by(|&a, &b| (cb[a] - w[i]).abs().total_cmp(&(cb[b] - w[i]).abs())).unwrap() as u8
        })
        .collect();
    let payload = encode_codebook(rows, cols, bits, f16_values, &row_group, &codebooks, &indices);
    let round = |v: f32| if f16_values { half::f16::from_f32(v).to_f32() } else { v };
    let decoded = indices.iter().enumerate().map(|(i, &k)| round(codebooks[row_group[i / cols] as usize * q + k as usize])).collect();
    (payload, decoded)
}

/// The dense twin (decoded weights stored as f32) and the codebook model.
fn twins() -> (Vec<u8>, Vec<u8>) {
    let model = Model::parse(DIGITS).unwrap();
    let mut dense = Vec::new();
    let mut coded = Vec::new();
    for (t, bits, f16_values, groups) in WEIGHTS {
        let rows = model.tensor(t).unwrap().shape.dim(0);
        let (payload, w) = quantize(&weights(&model, t), rows, bits, f16_values, groups);
        dense.push((t, encoding::F32, w.iter().flat_map(|v| v.to_le_bytes()).collect()));
        coded.push((t, encoding::CODEBOOK, payload));
    }
    (with_constants(DIGITS, 0, &dense), with_constants(DIGITS, MINOR, &coded))
}

#[track_caller]
fn assert_close(got: &[f32], want: &[f32]) {
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "{a} vs {b}");
    }
}

#[test]
fn codebook_weights_run_like_their_dense_twin() {
    let (dense, coded) = twins();
    let db = placed(&dense, 0);
    let dm = parse(&db).unwrap();
    let want = run::<ALL_OPS>(&dm).unwrap();
    assert_eq!(dm.ops_mask() & (1 << CODEBOOK_BIT | 1 << SPARSE_BIT), 0);
    let lut_file = with_kernel(&coded, DENSE_OP, kernel::CODEBOOK_LUT);
    for shift in [0, 1, 4] {
        let cb = placed(&coded, shift);
        let cm = parse(&cb).unwrap();
        assert_eq!(cm.minor_version(), 2);
        // Codebook Convs run their own kernels, not the register-blocked f32 ones.
        let blocked = CONV_KERNEL_BITS.iter().fold(0u128, |m, &(b, _)| m | 1 << b);
        assert_eq!(cm.ops_mask() & !blocked, (dm.ops_mask() & !blocked) | 1 << CODEBOOK_BIT);
        assert_eq!(cm.ops_mask() & blocked & !dm.ops_mask(), 0);
        for (t, bits, f16_values, groups) in WEIGHTS {
            let info = cm.tensor(t).unwrap();
            assert_eq!(encoding::name(info.encoding), "codebook");
            assert!(matches!(cm.constant(&info), View::Codebook(_)), "tensor {t} not read in place");
            let ci = cm.codebook_info(&info).unwrap();
            let (rows, cols) = (info.shape.dim(0), info.shape.numel().unwrap() / info.shape.dim(0));
            assert_eq!(ci, CodebookInfo { rows, cols, bits, f16_values, groups, bytes: info.len as usize });
            assert_eq!(ci.bits_per_weight(), (info.len as f64 * 8.0 / (rows * cols) as f64) as f32);
            assert!(ci.bits_per_weight() > bits as f32);
            assert_eq!(weights(&cm, t), weights(&dm, t));
        }
        assert_eq!(cm.codebook_info(&cm.tensor(3).unwrap()), None);
        assert_eq!(cm.bsr_info(&cm.tensor(11).unwrap()), None);
        let got = run::<ALL_OPS>(&cm).unwrap();
        assert_close(&got, &want);
        assert_eq!(run::<{ CNN | 1 << CODEBOOK_BIT }>(&cm).unwrap(), got);
        assert_eq!(run::<CNN>(&cm), Err(Error::UnsupportedOp { op: 0, kind: kind::CONV }));
        assert_eq!(run::<{ CNN | 1 << SPARSE_BIT }>(&cm), Err(Error::UnsupportedOp { op: 0, kind: kind::CONV }));
        // The per-codeword-sums Dense kernel, chosen in the operator record.
        let lb = placed(&lut_file, shift);
        let lm = parse(&lb).unwrap();
        assert_eq!(lm.op(DENSE_OP).unwrap().kernel, kernel::CODEBOOK_LUT);
        let lut = run::<{ CNN | 1 << CODEBOOK_BIT }>(&lm).unwrap();
        assert_close(&lut, &want);
    }
}

#[test]
fn the_lut_kernel_is_refused_where_it_does_not_apply() {
    let (dense, coded) = twins();
    let err = |file: &[u8]| parse(&placed(file, 0)).err();
    let e = Error::KernelNotApplicable { op: DENSE_OP as u32, kernel: kernel::CODEBOOK_LUT };
    assert_eq!(err(&with_kernel(&dense, DENSE_OP, kernel::CODEBOOK_LUT)), Some(e));
    assert_eq!(e.to_string(), "operator 6: kernel 1 (codebook-lut) does not apply: it needs a Dense whose weight is a codebook constant");
    // A Conv with a codebook weight, and an operator without weight.
    let conv = Error::KernelNotApplicable { op: CONV_OP as u32, kernel: kernel::CODEBOOK_LUT };
    assert_eq!(err(&with_kernel(&coded, CONV_OP, kernel::CODEBOOK_LUT)), Some(conv));
    assert_eq!(err(&with_kernel(&coded, 3, kernel::CODEBOOK_LUT)), Some(Error::KernelNotApplicable { op: 3, kernel: 1 }));
    assert_eq!(err(&with_kernel(&coded, DENSE_OP, 3)), Some(Error::UnsupportedKernel { op: DENSE_OP as u32, kernel: 3 }));
    // The input-sparse kernel reads its weight input-major: this output-major one does not fit,
    // and on a Conv with a 3x3 kernel it does not apply at all.
    assert_eq!(err(&with_kernel(&coded, DENSE_OP, kernel::INPUT_SPARSE)), Some(Error::ShapeMismatch { op: DENSE_OP as u32 }));
    let is = Error::KernelNotApplicable { op: CONV_OP as u32, kernel: kernel::INPUT_SPARSE };
    assert_eq!(err(&with_kernel(&coded, CONV_OP, kernel::INPUT_SPARSE)), Some(is));
    assert!(is.to_string().contains("input-major"));
    assert_eq!(err(&with_kernel(&coded, DENSE_OP, kernel::CODEBOOK_LUT)), None);
}

/// The digits CNN with the first Conv's weight (tensor 15, 8 × 9) stored with 3-bit indices into
/// 2 f32 codebooks, payload edited by `edit`: row groups at 16..32, codebooks at 32..96, rows of
/// indices (4 bytes, 27 bits used) from 96.
fn conv_file(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let model = Model::parse(DIGITS).unwrap();
    // 8 rows of 9 weights, 3 groups: header 0..16, 2-bit row groups 16..18, padding, codebooks
    // 20..116, indices 116..148 (4 bytes a row).
    let (mut p, _) = quantize(&weights(&model, 15), 8, 3, false, 3);
    assert_eq!(p.len(), 148);
    edit(&mut p);
    with_constants(DIGITS, MINOR, &[(15, encoding::CODEBOOK, p)])
}

fn conv_with(edit: impl FnOnce(&mut Vec<u8>)) -> Result<(), Error> {
    parse(&placed(&conv_file(edit), 0)).map(|_| ())
}

fn set(p: &mut [u8], at: usize, bytes: &[u8]) {
    p[at..at + bytes.len()].copy_from_slice(bytes);
}

#[test]
fn model_parse_names_each_broken_payload_rule() {
    assert_eq!(conv_with(|_| {}), Ok(()));
    type Edit = Box<dyn FnOnce(&mut Vec<u8>)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("payload shorter than its 16-byte header", Box::new(|p| p.truncate(12))),
        ("bits is not in 1..=8", Box::new(|p| p[0] = 0)),
        ("bits is not in 1..=8", Box::new(|p| p[0] = 9)),
        ("value type is not 0 (f32) or 1 (f16)", Box::new(|p| p[1] = 2)),
        ("reserved header field is not 0", Box::new(|p| p[3] = 1)),
        ("groups is 0", Box::new(|p| set(p, 4, &0u32.to_le_bytes()))),
        ("groups exceeds 65536", Box::new(|p| set(p, 4, &65537u32.to_le_bytes()))),
        ("rows is not the matrix rows", Box::new(|p| set(p, 8, &9u32.to_le_bytes()))),
        ("cols is not the matrix cols", Box::new(|p| set(p, 12, &8u32.to_le_bytes()))),
        ("byte length is not the end of the indices", Box::new(|p| p.push(0))),
        ("byte length is not the end of the indices", Box::new(|p| p.truncate(p.len() - 4))),
        ("byte length is not the end of the indices", Box::new(|p| p[1] = 1)),
        // Row 5 (group 1) becomes group 3.
        ("row_group entry not below groups", Box::new(|p| p[17] |= 0x0C)),
        ("padding before the codebooks is not zero", Box::new(|p| p[19] = 1)),
        ("codebook value is not finite", Box::new(|p| set(p, 20 + 4 * 9, &f32::INFINITY.to_le_bytes()))),
        ("unused trailing index bits of a row are not zero", Box::new(|p| p[116 + 4 * 7 + 3] |= 0x20)),
    ];
    for (rule, edit) in cases {
        let e = conv_with(edit).unwrap_err();
        assert_eq!(e, Error::BadCodebook { tensor: 15, rule });
        assert_eq!(e.to_string(), format!("tensor 15: bad codebook payload: {rule}"));
    }
    // The last used index bit of a row may be set.
    assert_eq!(conv_with(|p| p[116 + 3] |= 0x04), Ok(()));
    // Weight shapes decide the matrix: the same payload under another record shape is refused.
    let model = Model::parse(DIGITS).unwrap();
    let (p, _) = quantize(&weights(&model, 11), 10, 2, false, 1);
    let file = with_constants(DIGITS, MINOR, &[(15, encoding::CODEBOOK, p)]);
    assert_eq!(parse(&placed(&file, 0)).err(), Some(Error::BadCodebook { tensor: 15, rule: "rows is not the matrix rows" }));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn mutated_payloads_in_a_file_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in 0usize..3,
                                              lut in any::<bool>()) {
        let model = Model::parse(DIGITS).unwrap();
        let (fc, _) = quantize(&weights(&model, 11), 10, 6, true, 3);
        let file = conv_file(|p| {
            for (at, v) in edits {
                let n = p.len();
                p[at % n] = v;
            }
            let n = p.len();
            p.truncate(n - cut.min(n));
        });
        let file = with_constants(&file, MINOR, &[(11, encoding::CODEBOOK, fc)]);
        let file = if lut { with_kernel(&file, DENSE_OP, kernel::CODEBOOK_LUT) } else { file };
        let b = placed(&file, 0);
        if let Ok(m) = parse(&b) {
            // Accepted edits (indices or finite values only, or a consistent header) still run.
            prop_assert!(run::<ALL_OPS>(&m).is_ok());
        }
    }
}
