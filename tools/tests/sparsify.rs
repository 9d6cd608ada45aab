//! In-layer sparsity end to end: exactly k tiles survive per layer, block-sparse storage computes
//! what the dense storage of the same weights computes, budgets are met, and the envelope ranking
//! with refit beats magnitude without refit.

mod common;
mod digits;

use digits::{agreement, digits, outputs};

use sprig_runtime::format::encoding;
use sprig_runtime::Op;
use sprig_tools::compile::compile;
use sprig_tools::compress::prune::{Amount, Method};
use sprig_tools::compress::sparsify::{sparsify, tiles, Pattern, SparsifyOptions, StorageChoice};
use sprig_tools::ir::{Graph, Storage};
use sprig_tools::writer::WeightFormat;

fn weight_layers(g: &Graph) -> Vec<usize> {
    (0..g.nodes.len())
        .filter(|&n| matches!(g.nodes[n].op, Op::Dense { .. }) || matches!(g.nodes[n].op, Op::Conv(a) if a.group == 1))
        .collect()
}

#[test]
fn exactly_k_tiles_survive_and_sparse_storage_matches_dense_storage() {
    let (g, calib, eval) = digits();
    let samples: Vec<&[f32]> = (0..48).map(|i| calib.sample(i)).collect();
    for pattern in [Pattern::Weight, Pattern::Block(4, 1), Pattern::Block(2, 3), Pattern::Shape] {
        let opts = SparsifyOptions { pattern, amount: Amount::Fraction(0.6), storage: StorageChoice::Sparse, ..SparsifyOptions::default() };
        let (p, report) = sparsify(&g, &samples, &opts).unwrap();
        assert!(!report.layers.is_empty());
        for l in &report.layers {
            let n = p.nodes.iter().position(|x| x.name == l.node).unwrap();
            let wt = &p.tensors[p.nodes[n].inputs[1]];
            let rows = wt.shape[0];
            let width = wt.numel() / rows;
            let w = wt.data.as_ref().unwrap();
            let tl = tiles(rows, width, pattern);
            assert_eq!(l.groups, tl.len());
            assert_eq!(l.kept, ((tl.len() as f64) * 0.4).round().max(1.0) as usize, "{}", l.node);
            let live = tl.iter().filter(|t| t.iter().any(|&(r, c)| w[r * width + c] != 0.0)).count();
            assert!(live <= l.kept, "{} {:?}: {live} non-zero tiles, {} kept", l.node, pattern, l.kept);
            let (br, bc) = pattern.tile(rows);
            assert_eq!(wt.storage, Storage::Bsr { br, bc });
        }
        // The file stores those layers block-sparse, and runs them like the dense storage.
        let c = compile(p.clone(), WeightFormat::F32, [0; 32]).unwrap();
        let m = sprig_runtime::Model::parse(&c.bytes).unwrap();
        let bsr = (0..m.num_tensors()).filter(|&i| m.tensor(i).is_some_and(|t| t.encoding == encoding::BSR_F32)).count();
        assert_eq!(bsr, report.layers.len(), "{pattern:?}");
        assert_eq!(
            m.minor_version(),
            sprig_runtime::format::SECTION_TABLE_MINOR,
            "compact tables (format 1.9), compact section table (1.10)"
        );
        // Rewritten with fixed tables for 1.5 readers, the file holds the same model.
        let fixed = sprig_tools::writer::unpack_tables(&c.bytes).unwrap();
        let fm = sprig_runtime::Model::parse(&fixed).unwrap();
        assert_eq!(fm.minor_version(), sprig_runtime::format::PACKED_MINOR - 1);
        common::assert_same_model(&m, &fm);
        let mut d = p.clone();
        for t in &mut d.tensors {
            t.storage = Storage::Dense;
        }
        assert!(c.bytes.len() < compile(d.clone(), WeightFormat::F32, [0; 32]).unwrap().bytes.len() || pattern == Pattern::Shape);
        let (ys, yd) = (outputs(&p, &eval, 0..20), outputs(&d, &eval, 0..20));
        for (a, b) in ys.iter().zip(&yd) {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{pattern:?}: {x} vs {y}");
            }
        }
    }
}

#[test]
fn a_parameter_budget_is_met_and_accuracy_holds() {
    let (g, calib, eval) = digits();
    let samples: Vec<&[f32]> = (0..64).map(|i| calib.sample(i)).collect();
    let nnz = |g: &Graph| -> usize {
        weight_layers(g).iter().map(|&n| g.tensors[g.nodes[n].inputs[1]].data.as_ref().unwrap().iter().filter(|&&v| v != 0.0).count()).sum()
    };
    let opts = SparsifyOptions { pattern: Pattern::Weight, amount: Amount::Params(0.7), ..SparsifyOptions::default() };
    let (p, _) = sparsify(&g, &samples, &opts).unwrap();
    // The budget counts non-zero weights; a tiny model (474 parameters) loses accuracy fast.
    let (before, after) = (nnz(&g), nnz(&p));
    assert!(after as f64 <= 0.72 * before as f64, "{after} of {before} weights left");
    let n = 200;
    let dense = outputs(&g, &eval, 0..n);
    let a = agreement(&outputs(&p, &eval, 0..n), &dense);
    assert!(a >= 0.9, "top-1 agreement with the dense model {a}");
}

#[test]
fn envelope_with_refit_beats_magnitude_without_refit() {
    let (g, calib, eval) = digits();
    let samples: Vec<&[f32]> = (0..64).map(|i| calib.sample(i)).collect();
    let n = 200;
    let dense = outputs(&g, &eval, 0..n);
    let err = |method| {
        let opts = SparsifyOptions { pattern: Pattern::Block(4, 1), method, amount: Amount::Fraction(0.8), ..SparsifyOptions::default() };
        let (p, _) = sparsify(&g, &samples, &opts).unwrap();
        let y = outputs(&p, &eval, 0..n);
        y.iter().zip(&dense).map(|(a, b)| a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>()).sum::<f64>()
    };
    let (env, mag) = (err(Method::Envelope), err(Method::MagnitudeNoRefit));
    assert!(env < mag, "envelope {env} vs magnitude without refit {mag}");
}
