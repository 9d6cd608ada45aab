//! Block-sparse (`BSR_F32`) constants in a whole `.sprig` file: the digits CNN with its weights
//! re-stored block-sparse runs like the same model with the same (pruned) weights stored dense,
//! and every payload rule is enforced by `Model::parse`.

mod common;

use common::{parse, placed, run, u32_at, weights, with_constants, DIGITS};
use proptest::prelude::*;
use sprig_runtime::format::{encode_bsr, encoding};
use sprig_runtime::kernels::{ops_mask, ALL_OPS, CONV_KERNEL_BITS, SPARSE_BIT};
use sprig_runtime::op::kind;
use sprig_runtime::{BsrInfo, Error, Model, View};

/// Weights of the digits CNN (tensor id) and the block shape each is stored with.
const WEIGHTS: [(usize, usize, usize); 4] = [(15, 2, 3), (2, 1, 1), (5, 4, 4), (11, 4, 1)];

const CNN: u128 = ops_mask(&[kind::CONV, kind::DENSE, kind::MAXPOOL, kind::RESHAPE, kind::SOFTMAX, kind::GLOBAL_AVGPOOL]);

/// Block-sparse files declare minor version 1, the first with the encoding.
const MINOR: u16 = 1;

/// Zeroes about half of the `br × bc` blocks of the `[d0, rest]` matrix (a fixed pattern).
fn prune(w: &[f32], rows: usize, br: usize, bc: usize) -> Vec<f32> {
    let cols = w.len() / rows;
    let ncb = cols.div_ceil(bc);
    w.iter().enumerate().map(|(i, &v)| if ((i / cols) / br * ncb + (i % cols) / bc) % 7 < 3 { 0.0 } else { v }).collect()
}

/// The dense twin and the block-sparse model, both with the pruned weights.
fn twins() -> (Vec<u8>, Vec<u8>) {
    let model = Model::parse(DIGITS).unwrap();
    let mut dense = Vec::new();
    let mut sparse = Vec::new();
    for (t, br, bc) in WEIGHTS {
        let info = model.tensor(t).unwrap();
        let rows = info.shape.dim(0);
        let w = prune(&weights(&model, t), rows, br, bc);
        dense.push((t, encoding::F32, w.iter().flat_map(|v| v.to_le_bytes()).collect()));
        sparse.push((t, encoding::BSR_F32, encode_bsr(rows, w.len() / rows, br, bc, &w)));
    }
    (with_constants(DIGITS, MINOR, &dense), with_constants(DIGITS, MINOR, &sparse))
}

#[test]
fn block_sparse_weights_run_like_their_dense_twin() {
    let (dense, sparse) = twins();
    let db = placed(&dense, 0);
    let dm = parse(&db).unwrap();
    let want = run::<ALL_OPS>(&dm).unwrap();
    assert_eq!(dm.ops_mask() & 1 << SPARSE_BIT, 0);
    for shift in [0, 1, 4] {
        let sb = placed(&sparse, shift);
        let sm = parse(&sb).unwrap();
        assert_eq!(sm.minor_version(), 1);
        // Block-sparse Convs run their own kernels, not the register-blocked f32 ones.
        let blocked = CONV_KERNEL_BITS.iter().fold(0u128, |m, &(b, _)| m | 1 << b);
        assert_eq!(sm.ops_mask() & !blocked, (dm.ops_mask() & !blocked) | 1 << SPARSE_BIT);
        assert_eq!(sm.ops_mask() & blocked & !dm.ops_mask(), 0);
        for (t, br, bc) in WEIGHTS {
            let info = sm.tensor(t).unwrap();
            assert_eq!(encoding::name(info.encoding), "bsr-f32");
            assert!(matches!(sm.constant(&info), View::Bsr(_)), "tensor {t} not read in place");
            let bi = sm.bsr_info(&info).unwrap();
            let (rows, cols) = (info.shape.dim(0), info.shape.numel().unwrap() / info.shape.dim(0));
            assert_eq!((bi.rows, bi.cols, bi.br, bi.bc, bi.nbr, bi.ncb), (rows, cols, br, bc, rows.div_ceil(br), cols.div_ceil(bc)));
            assert!(bi.nnzb < bi.nbr * bi.ncb, "tensor {t}: pruning dropped no block");
            assert_eq!(weights(&sm, t), weights(&dm, t));
        }
        assert_eq!(sm.bsr_info(&sm.tensor(3).unwrap()), None::<BsrInfo>);
        let got = run::<ALL_OPS>(&sm).unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "{a} vs {b} (shift {shift})");
        }
        assert_eq!(run::<{ CNN | 1 << SPARSE_BIT }>(&sm).unwrap(), got);
        assert_eq!(run::<CNN>(&sm), Err(Error::UnsupportedOp { op: 0, kind: kind::CONV }));
    }
}

/// The digits CNN with the fc weight (tensor 11, 10 × 16) stored with 4 × 3 blocks, payload
/// edited by `edit`.
fn fc_file(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let model = Model::parse(DIGITS).unwrap();
    let w = prune(&weights(&model, 11), 10, 4, 3);
    let mut p = encode_bsr(10, 16, 4, 3, &w);
    edit(&mut p);
    with_constants(DIGITS, MINOR, &[(11, encoding::BSR_F32, p)])
}

fn fc_with(edit: impl FnOnce(&mut Vec<u8>)) -> Result<(), Error> {
    parse(&placed(&fc_file(edit), 0)).map(|_| ())
}

fn set(p: &mut [u8], at: usize, bytes: &[u8]) {
    p[at..at + bytes.len()].copy_from_slice(bytes);
}

#[test]
fn model_parse_names_each_broken_payload_rule() {
    assert_eq!(fc_with(|_| {}), Ok(()));
    // Header 16 bytes, row_ptr 4 × 4 at 16, col_idx from 32.
    let nnzb = |p: &[u8]| u32_at(p, 4) as usize;
    type Edit = Box<dyn FnOnce(&mut Vec<u8>)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("payload shorter than its 16-byte header", Box::new(|p| p.truncate(12))),
        ("block rows (br) is 0", Box::new(|p| set(p, 0, &[0, 0]))),
        ("block columns (bc) is 0", Box::new(|p| set(p, 2, &[0, 0]))),
        ("nbr is not ceil(rows / br)", Box::new(|p| set(p, 8, &4u32.to_le_bytes()))),
        ("ncb is not ceil(cols / bc)", Box::new(|p| set(p, 12, &5u32.to_le_bytes()))),
        ("byte length is not the end of the values", Box::new(|p| p.push(0))),
        ("byte length is not the end of the values", Box::new(|p| p.truncate(p.len() - 4))),
        ("row_ptr[0] is not 0", Box::new(|p| set(p, 16, &1u32.to_le_bytes()))),
        (
            "row_ptr decreases",
            Box::new(|p| {
                let end = u32_at(p, 28);
                set(p, 20, &end.to_le_bytes())
            }),
        ),
        (
            "row_ptr[nbr] is not nnzb",
            Box::new(|p| {
                let end = u32_at(p, 28);
                set(p, 28, &(end - 1).to_le_bytes())
            }),
        ),
        ("col_idx not below ncb", Box::new(|p| set(p, 32, &6u16.to_le_bytes()))),
        ("col_idx not strictly increasing within a block row", Box::new(|p| set(p, 34, &0u16.to_le_bytes()))),
    ];
    for (rule, edit) in cases {
        let e = fc_with(edit).unwrap_err();
        assert_eq!(e, Error::BadSparse { tensor: 11, rule });
        assert_eq!(e.to_string(), format!("tensor 11: bad block-sparse payload: {rule}"));
    }
    // Block (2, 5) covers matrix rows 10, 11 and column 16: outside the 10 × 16 matrix.
    let e = fc_with(|p| {
        let n = nnzb(p);
        let voff = (16 + 16 + 2 * n).next_multiple_of(4);
        let last = p.len() - 4;
        assert!(voff < last);
        set(p, last, &1.0f32.to_le_bytes());
    });
    assert_eq!(e, Err(Error::BadSparse { tensor: 11, rule: "edge block padding outside the matrix is not 0.0" }));
    // 9 of the 18 blocks are stored: col_idx ends at 50, padded to 52.
    let e = fc_with(|p| {
        assert_eq!(nnzb(p), 9);
        set(p, 50, &[0, 7]);
    });
    assert_eq!(e, Err(Error::BadSparse { tensor: 11, rule: "padding before the values is not zero" }));
    // Weight shapes decide the matrix: the same payload under another record shape is refused.
    let model = Model::parse(DIGITS).unwrap();
    let p = encode_bsr(16, 8, 4, 4, &weights(&model, 5));
    let file = with_constants(DIGITS, MINOR, &[(11, encoding::BSR_F32, p)]);
    assert_eq!(parse(&placed(&file, 0)).err(), Some(Error::BadSparse { tensor: 11, rule: "nbr is not ceil(rows / br)" }));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn mutated_payloads_in_a_file_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in 0usize..3) {
        let file = fc_file(|p| {
            for (at, v) in edits {
                let n = p.len();
                p[at % n] = v;
            }
            let n = p.len();
            p.truncate(n - cut.min(n));
        });
        let b = placed(&file, 0);
        if let Ok(m) = parse(&b) {
            // Accepted edits (values only, or a consistent header) still run.
            prop_assert!(run::<ALL_OPS>(&m).is_ok());
        }
    }
}
