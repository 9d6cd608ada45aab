//! Structured pruning end to end: exactly k channels survive per space, budgets are met, dead
//! channels are removed exactly, and the envelope ranking is at least as faithful as the
//! magnitude baselines.

mod common;
mod digits;

use digits::{agreement, digits, outputs};

use sprig_tools::compress::prune::{layer_costs, prune, Amount, Method, PruneOptions};
use sprig_tools::import::{import_onnx, ImportOptions};
use sprig_tools::npy::read_f32;

#[test]
fn exactly_k_channels_survive_in_every_pruned_space() {
    let (g, calib, _) = digits();
    let samples: Vec<&[f32]> = (0..64).map(|i| calib.sample(i)).collect();
    let opts = PruneOptions { amount: Amount::Fraction(0.5), ..PruneOptions::default() };
    let (p, report) = prune(&g, &samples, &opts).unwrap();
    assert!(!report.spaces.is_empty());
    for s in &report.spaces {
        let live = s.channels - s.dead;
        assert_eq!(s.kept, ((s.channels as f64) * 0.5).round().min(live as f64) as usize, "{:?}", s.producers);
        // The producers physically have `kept` filters now.
        for name in &s.producers {
            let n = p.nodes.iter().find(|n| &n.name == name).unwrap();
            assert_eq!(p.tensors[n.inputs[1]].shape[0], s.kept, "{name}");
        }
    }
    assert!(layer_costs(&p).0 < layer_costs(&g).0);
}

#[test]
fn a_mac_budget_is_met() {
    let (g, calib, _) = digits();
    let samples: Vec<&[f32]> = (0..64).map(|i| calib.sample(i)).collect();
    let opts = PruneOptions { amount: Amount::Macs(0.6), ..PruneOptions::default() };
    let (p, _) = prune(&g, &samples, &opts).unwrap();
    let (before, after) = (layer_costs(&g).0, layer_costs(&p).0);
    assert!(after as f64 <= 0.6 * before as f64 * 1.05, "MACs {after} vs budget 0.6 x {before}");
    assert!(after as f64 >= 0.3 * before as f64, "pruned far past the budget: {after} of {before}");
}

#[test]
fn an_arena_budget_is_met_by_pruning_where_memory_peaks() {
    let Some(data) = common::shared_data() else { return };
    let g = import_onnx(&data.join("models/kws_dscnn_fp32.onnx"), &ImportOptions::default()).unwrap();
    let x = read_f32(&data.join("eval/kws01/inputs.npy")).unwrap();
    let samples: Vec<&[f32]> = (0..32).map(|i| x.sample(i)).collect();
    let arena = |g: &sprig_tools::ir::Graph| sprig_tools::plan::plan(g).arena_len as u64;
    let limit = arena(&g) * 9 / 10;
    let (p, _) = prune(&g, &samples, &PruneOptions { amount: Amount::Arena(limit), ..PruneOptions::default() }).unwrap();
    assert!(arena(&p) <= limit, "arena {} over {limit}", arena(&p));
    // kws holds two equal 64-channel buffers at every layer: each space shrinks about as much as
    // the arena must, far less than a MAC budget reaching the same arena.
    let (before, after) = (layer_costs(&g).0, layer_costs(&p).0);
    assert!(after as f64 >= 0.7 * before as f64, "MACs {before} -> {after}");
    let (m, _) = prune(&g, &samples, &PruneOptions { amount: Amount::Macs(0.9), ..PruneOptions::default() }).unwrap();
    eprintln!(
        "kws: arena {} -> {} B keeps {after} of {before} MACs; a 0.9 MAC budget leaves the arena at {} B",
        arena(&g),
        arena(&p),
        arena(&m)
    );
    // Already within the limit: nothing is removed.
    let (same, report) = prune(&g, &samples, &PruneOptions { amount: Amount::Arena(arena(&g)), ..PruneOptions::default() }).unwrap();
    assert_eq!(layer_costs(&same).0, before);
    assert!(report.spaces.iter().all(|s| s.kept == s.channels - s.dead), "{:?}", report.spaces);
}

#[test]
fn the_envelope_is_at_least_as_faithful_as_magnitude_and_refit_beats_no_refit() {
    let (g, calib, eval) = digits();
    let samples: Vec<&[f32]> = (0..128).map(|i| calib.sample(i)).collect();
    let dense = outputs(&g, &eval, 0..eval.samples());
    let mut agree = Vec::new();
    for method in [Method::Envelope, Method::Magnitude, Method::MagnitudeNoRefit] {
        let opts = PruneOptions { method, amount: Amount::Fraction(0.25), ..PruneOptions::default() };
        let (p, _) = prune(&g, &samples, &opts).unwrap();
        agree.push(agreement(&outputs(&p, &eval, 0..eval.samples()), &dense));
    }
    eprintln!(
        "top-1 agreement with the dense model at 25 % of channels removed: envelope {:.3}, magnitude {:.3}, no refit {:.3}",
        agree[0], agree[1], agree[2]
    );
    assert!(agree[0] >= agree[1], "{agree:?}");
    assert!(agree[1] > agree[2], "{agree:?}");
}

#[test]
fn bad_amounts_and_empty_calibration_are_errors() {
    let (g, calib, _) = digits();
    let samples: Vec<&[f32]> = (0..4).map(|i| calib.sample(i)).collect();
    for amount in [Amount::Fraction(1.0), Amount::Fraction(-0.1), Amount::Macs(0.0), Amount::Params(1.5)] {
        assert!(prune(&g, &samples, &PruneOptions { amount, ..PruneOptions::default() }).is_err(), "{amount:?}");
    }
    assert!(prune(&g, &[], &PruneOptions::default()).is_err());
}

#[test]
fn dead_channels_of_vww_are_removed_exactly() {
    let Some(data) = common::shared_data() else { return };
    let g = import_onnx(&data.join("models/vww_mobilenetv1_96_fp32.onnx"), &ImportOptions::default()).unwrap();
    let x = read_f32(&data.join("eval/vww01/inputs.npy")).unwrap();
    // Calibrate on the first 32 images, check on the other 68.
    let samples: Vec<&[f32]> = (0..32).map(|i| x.sample(i)).collect();
    let (p, report) = prune(&g, &samples, &PruneOptions { amount: Amount::Fraction(0.0), ..PruneOptions::default() }).unwrap();
    let dead: usize = report.spaces.iter().map(|s| s.dead).sum();
    let (before, after) = (layer_costs(&g).0, layer_costs(&p).0);
    eprintln!("vww: {dead} dead channels removed, MACs {before} -> {after} ({:.2}x fewer)", before as f64 / after as f64);
    assert!(before as f64 >= 1.7 * after as f64);
    let (a, b) = (outputs(&g, &x, 32..x.samples()), outputs(&p, &x, 32..x.samples()));
    assert_eq!(agreement(&a, &b), 1.0);
    let max_diff = a.iter().flatten().zip(b.iter().flatten()).map(|(u, v)| (u - v).abs()).fold(0f32, f32::max);
    assert!(max_diff <= 1e-3, "max output difference {max_diff} on held-out images");
}
