//! Activation sparsity in `sprig compress` (ALGORITHMS.md §6.5–6.6): dead channels are removed
//! exactly ([`super::prune::remove_dead_channels`]), and each Dense / 1×1 Conv layer whose inputs
//! are zero often enough on the calibration data — judged by the measured input-sparse cost
//! table of this machine — stores its weight input-major and runs the input-sparse kernel.
//!
//! Guarantee: a layer is switched only when the table predicts at least
//! [`MIN_SPEEDUP`](crate::analyze::MIN_SPEEDUP) at its measured input density (never without a
//! measured table, unless forced with [`InputSparse::All`]); the switch changes no value beyond
//! f32 summation order.

use super::calib::activations;
use super::sparsify::BreakEvenTable;
use crate::analyze::{input_sparse_family, layer_shape, MIN_SPEEDUP};
use crate::ir::{Graph, Storage};
use crate::writer::input_major_ok;
use anyhow::{Context, Result};

/// Which layers get the input-sparse kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputSparse {
    /// Where the measured table predicts a speedup of at least `MIN_SPEEDUP`.
    Auto,
    /// Every eligible layer (for measurements).
    All,
}

/// The decision for one eligible layer.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerChoice {
    /// Node name.
    pub node: String,
    /// Kernel family of the cost table (`dense`, `conv1x1`).
    pub family: String,
    /// Fraction of the layer's inputs that are exactly zero over the calibration samples.
    pub input_zero_fraction: f64,
    /// Dense time / input-sparse time predicted from the table at that density.
    pub predicted_speedup: Option<f64>,
    /// Whether the layer now runs the input-sparse kernel.
    pub input_sparse: bool,
}

/// Chooses input-sparse kernels for the eligible layers of `g` (weights stored plain dense, read
/// by that layer only) and marks the chosen weights [`Storage::InputMajor`].
pub fn select_input_sparse(g: &mut Graph, calib: &[&[f32]], table: Option<&BreakEvenTable>, mode: InputSparse) -> Result<Vec<LayerChoice>> {
    let eligible: Vec<(usize, &'static str)> = (0..g.nodes.len())
        .filter_map(|n| {
            let node = &g.nodes[n];
            let w = *node.inputs.get(1)?;
            let fam = input_sparse_family(g, n, node.inputs[0])?;
            let plain =
                g.tensors[w].storage == Storage::Dense && matches!(node.op, sprig_runtime::Op::Dense { .. } | sprig_runtime::Op::Conv(_));
            (plain && input_major_ok(g, w)).then_some((n, fam))
        })
        .collect();
    if eligible.is_empty() {
        return Ok(Vec::new());
    }
    let inputs: Vec<usize> = eligible.iter().map(|&(n, _)| g.nodes[n].inputs[0]).collect();
    let acts = activations(g, &inputs, calib).context("measuring the layers' input sparsity")?;
    let mut out = Vec::new();
    for (&(n, fam), a) in eligible.iter().zip(&acts) {
        let (z, total) = a.iter().fold((0usize, 0usize), |(z, t), s| (z + s.iter().filter(|&&v| v == 0.0).count(), t + s.len()));
        let zero = z as f64 / total.max(1) as f64;
        let speedup = table
            .and_then(|t| {
                let (o, p) = layer_shape(g, n);
                t.input_sparse_ratio(fam, o, p, 1.0 - zero)
            })
            .map(|r| 1.0 / r.max(1e-9));
        let chosen = match mode {
            InputSparse::All => true,
            InputSparse::Auto => speedup.is_some_and(|s| s >= MIN_SPEEDUP),
        };
        if chosen {
            let w = g.nodes[n].inputs[1];
            g.tensors[w].storage = Storage::InputMajor;
        }
        out.push(LayerChoice {
            node: g.nodes[n].name.clone(),
            family: fam.to_string(),
            input_zero_fraction: zero,
            predicted_speedup: speedup,
            input_sparse: chosen,
        });
    }
    Ok(out)
}
