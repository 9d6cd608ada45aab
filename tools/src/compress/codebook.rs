//! Codebook quantization with JLCM-style neuron groups (ALGORITHMS.md §3 and §6.4), and the
//! per-tensor baselines of §5.1 (Deep Compression k-means) and §5.5 (TF-MOT linear-init
//! clustering), all in one harness.
//!
//! Every weight becomes a `bits`-bit index into the codebook of its row's group; a row's group is
//! stored once per row (`encoding::CODEBOOK`'s `row_group` table), so rows never need reordering
//! and there is no per-weight codebook id.
//!
//! The JLCM-style method, per Conv / Dense layer, in graph order, with inputs from the already
//! quantized prefix and targets from the dense model (the layer loss f of §6.1, bias included):
//! 1. rows are clustered by the sorted quantiles of their weights (k-means, G groups);
//! 2. each group's codebook starts as the exact sensitivity-weighted 1-D k-means of its weights
//!    (dynamic programming, weights diag H), every weight at its nearest codeword;
//! 3. then, until f stops decreasing: the exact least-squares codebook refit with assignments
//!    fixed, the exact bias refit, and neighbour-only reassignment (§3.2: an index moves to an
//!    adjacent codeword only when f drops). Each step is an exact minimisation or an accepted
//!    descent move, so f is monotone non-increasing (recorded in [`CodebookLayer::loss_trace`]).
//!
//! Weights that are exactly zero (pruned) stay exactly zero when `keep_zeros` is set: they index
//! a codeword fixed at 0 and never move.

use super::calib::{activations, split_samples, RowLayout};
use super::prune::{layer_matrix, set_layer_matrix};
use crate::ir::{CodebookData, Graph, Storage};
use anyhow::{bail, Context, Result};
use half::f16;
use nalgebra::DMatrix;
use sprig_runtime::Op;
use std::sync::Arc;

/// How codebooks and assignments are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum CodebookMethod {
    /// Row groups, sensitivity-weighted DP init, joint refit on calibration data (§6.4).
    Jlcm,
    /// One codebook per tensor: 1-D k-means from a linear init to convergence, no data (§5.1).
    KMeans,
    /// One codebook per tensor: evenly spaced over [min, max], nearest codeword, no data (§5.5).
    Linear,
}

/// Number of row groups (codebooks) per tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupCount {
    /// As many as keep the codebooks within [`AUTO_OVERHEAD`] of the index bits (at most 16).
    Auto,
    /// This many (at most the number of rows).
    Fixed(usize),
}

/// Ridge strengths tried for JLCM (relative to the mean diagonal of H, toward the layer's
/// weights); the one whose result has the least held-out loss is used.
pub const RIDGES: [f64; 4] = [0.0, 0.01, 0.1, 1.0];

/// Layers with fewer calibration rows than this many per input get a ridge (chosen on held-out
/// samples); better-determined layers none.
pub const RIDGE_ROWS_PER_INPUT: usize = 4;

/// Refit / reassignment rounds when trying a ridge.
const SELECT_ITER: usize = 8;

/// Codebook bytes allowed for `GroupCount::Auto`, as a fraction of the index bytes.
pub const AUTO_OVERHEAD: f64 = 0.05;

/// Per-layer setting of `--layer-bits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerBits {
    /// Indices of this width.
    Bits(u8),
    /// Left as dense f32.
    Keep,
}

/// Which Dense layers use the lookup-table kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LutChoice {
    /// Where the measured cost table says it is faster than decoding.
    Auto,
    /// Never.
    Never,
    /// Every Dense layer.
    Always,
}

/// Where codebook layers keep their biases (`--codebook-bias`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BiasStore {
    /// u8-affine where that raises the layer's calibration error by at most
    /// [`AUTO_U8_BIAS_TOLERANCE`] (relative) over `F16`'s choice, else `F16`'s choice; only next
    /// to f16 codebook values (f32 values keep `F16`'s choice).
    Auto,
    /// A Conv's bias in f16 next to f16 codebook values, else f32.
    F16,
    /// u8-affine (`encoding::U8_AFFINE`: 8-bit codes on a uniform grid over the layer's biases).
    U8,
}

/// The relative rise of a layer's calibration error that [`BiasStore::Auto`] accepts for a
/// u8-affine bias.
pub const AUTO_U8_BIAS_TOLERANCE: f64 = 0.01;

/// A layer's bias storage, as [`store_bias`] chose it.
struct BiasChoice {
    /// The storage of the bias tensor (`None`: dense, f16 or f32 as the writer picks).
    storage: Option<Storage>,
    label: &'static str,
}

/// Rounds the bias column (the last) of the layer matrix `m` to the storage `opts.bias` picks
/// for it, so that the layer's error and the next layers' calibration see the stored values.
/// Without u8: a Conv's bias goes to f16 next to f16 codebook values (the writer stores it in
/// f16 when every value is exact), a Dense one stays f32 (read per call, where converting costs
/// more than it saves). u8-affine: the grid spans the biases, each rounded to its nearest grid
/// value, which for the loss (separable over rows, quadratic in each bias) is the best value on
/// that grid.
fn store_bias(loss: &LayerLoss, m: &mut DMatrix<f64>, is_conv: bool, opts: &CodebookOptions) -> BiasChoice {
    use sprig_runtime::format::{u8_affine_fit, u8_affine_nearest};
    let (rows, width) = (m.nrows(), m.ncols() - 1);
    let mut base = m.clone();
    let half = opts.f16_values && is_conv;
    if half {
        for r in 0..rows {
            base[(r, width)] = f16::from_f64(base[(r, width)]).to_f64();
        }
    }
    let plain = BiasChoice { storage: None, label: if half { "f16" } else { "f32" } };
    let want_u8 = match opts.bias {
        BiasStore::F16 => false,
        BiasStore::U8 => true,
        BiasStore::Auto => opts.f16_values,
    };
    let biases: Vec<f32> = (0..rows).map(|r| m[(r, width)] as f32).collect();
    let grid = u8_affine_fit(&biases).filter(|_| want_u8 && rows > 0);
    let Some((lo, step)) = grid else {
        *m = base;
        return plain;
    };
    let mut coded = m.clone();
    for (r, &b) in biases.iter().enumerate() {
        coded[(r, width)] = u8_affine_nearest(lo, step, b) as f64;
    }
    let accept =
        opts.bias == BiasStore::U8 || loss.relative_error(&coded) <= loss.relative_error(&base) * (1.0 + AUTO_U8_BIAS_TOLERANCE) + 1e-12;
    if accept {
        *m = coded;
        BiasChoice { storage: Some(Storage::U8Affine { lo, step }), label: "u8" }
    } else {
        *m = base;
        plain
    }
}

/// Settings of [`quantize`].
#[derive(Clone, Debug)]
pub struct CodebookOptions {
    /// Bits per index (1 to 8).
    pub bits: u8,
    /// Row groups per tensor (JLCM only; the baselines use one codebook).
    pub groups: GroupCount,
    /// Store codebook values as f16.
    pub f16_values: bool,
    /// Per-layer overrides by node name.
    pub layer_bits: Vec<(String, LayerBits)>,
    /// Method.
    pub method: CodebookMethod,
    /// Keep exact zeros (pruned weights) exactly zero.
    pub keep_zeros: bool,
    /// Most refit / reassignment rounds per layer.
    pub max_iter: usize,
    /// Calibration rows (positions) per layer, spread over the samples.
    pub max_rows: usize,
    /// Kernel choice for Dense layers.
    pub lut: LutChoice,
    /// Layers (node names) to quantize input-major for the input-sparse kernel: row groups and
    /// codebooks over the layer's inputs ([`quantize_input_major`]).
    pub input_major: Vec<String>,
    /// Where the biases go.
    pub bias: BiasStore,
}

impl Default for CodebookOptions {
    fn default() -> Self {
        CodebookOptions {
            bits: 4,
            groups: GroupCount::Auto,
            f16_values: true,
            layer_bits: Vec::new(),
            method: CodebookMethod::Jlcm,
            keep_zeros: false,
            max_iter: 40,
            max_rows: 4096,
            lut: LutChoice::Auto,
            input_major: Vec::new(),
            bias: BiasStore::Auto,
        }
    }
}

/// One quantized layer.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CodebookLayer {
    /// Node name.
    pub node: String,
    /// Matrix rows and columns.
    pub rows: usize,
    pub cols: usize,
    /// Bits per index.
    pub bits: u8,
    /// Codebooks.
    pub groups: usize,
    /// Stored payload bytes (header, row groups, codebooks, indices) and the f32 bytes it replaces.
    pub bytes: usize,
    pub f32_bytes: usize,
    /// Payload bits per weight.
    pub bits_per_weight: f64,
    /// Layer relative error (as in pruning: 0 = the best dense refit, 1 = all zero) after
    /// nearest-codeword initialisation and at the end.
    pub relative_error_init: f64,
    pub relative_error: f64,
    /// Ridge toward the layer's weights (relative to the mean diagonal of H), chosen on held-out
    /// calibration samples (JLCM).
    pub ridge: f64,
    /// The layer loss f (with the ridge) after the init and after every step (JLCM:
    /// non-increasing).
    pub loss_trace: Vec<f64>,
    /// Kernel: "decode" or "lut".
    pub kernel: String,
    /// How the bias is stored: "f32", "f16" or "u8" (u8-affine) ([`BiasStore`]).
    pub bias: String,
}

/// What [`quantize`] did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CodebookReport {
    /// Method.
    pub method: CodebookMethod,
    /// Default bits.
    pub bits: u8,
    /// Quantized layers in graph order.
    pub layers: Vec<CodebookLayer>,
    /// Weight layers left dense, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// `Σ a_i b_i` in eight interleaved partial sums (vectorizable; the order is fixed, so equal
/// inputs give equal results).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// A layer's quadratic loss f(W) = Σ_r ½ w_r H_{h(r)} w_rᵀ − w_r · b_r, with w_r = [weights, bias].
/// Rows of a grouped convolution see different inputs, hence one H per convolution group.
pub struct LayerLoss {
    /// `(width + 1)²` each, the last input the constant 1.
    pub hs: Vec<DMatrix<f64>>,
    /// H used by each row.
    pub row_h: Vec<usize>,
    /// `rows × (width + 1)`.
    pub b: DMatrix<f64>,
    /// Calibration rows (positions over all samples) behind each H.
    pub seen: usize,
}

impl LayerLoss {
    /// Weights per row (without the bias).
    pub fn width(&self) -> usize {
        self.b.ncols() - 1
    }

    /// This loss plus (δ/2)‖W − P‖² over the weights (not the bias), δ = `damp` · mean diagonal
    /// of each H over the weights: H gains δ on its weight diagonal and B gains δ·P.
    pub fn with_ridge(&self, prior: &DMatrix<f64>, damp: f64) -> LayerLoss {
        let width = self.width();
        let mut out = LayerLoss { hs: self.hs.clone(), row_h: self.row_h.clone(), b: self.b.clone(), seen: self.seen };
        if damp <= 0.0 || width == 0 {
            return out;
        }
        let deltas: Vec<f64> = self.hs.iter().map(|h| damp * (0..width).map(|i| h[(i, i)]).sum::<f64>() / width as f64).collect();
        for (h, &d) in out.hs.iter_mut().zip(&deltas) {
            for i in 0..width {
                h[(i, i)] += d;
            }
        }
        for r in 0..out.b.nrows() {
            let d = deltas[self.row_h[r]];
            for c in 0..width {
                out.b[(r, c)] += d * prior[(r, c)];
            }
        }
        out
    }

    /// f of row `r` with weights-and-bias `w`.
    pub fn row_loss(&self, r: usize, w: &[f64]) -> f64 {
        let h = self.hs[self.row_h[r]].as_slice();
        let d = w.len();
        let mut s = 0.0;
        for i in 0..d {
            if w[i] == 0.0 {
                continue;
            }
            // H is symmetric: column i is row i.
            s += w[i] * (0.5 * dot(&h[i * d..(i + 1) * d], w) - self.b[(r, i)]);
        }
        s
    }

    /// f(W) for `w` (`rows × (width + 1)`).
    pub fn loss(&self, w: &DMatrix<f64>) -> f64 {
        (0..w.nrows()).map(|r| self.row_loss(r, &row_of(w, r))).sum()
    }

    /// (f(W) − f*) / (−f* − ½‖mean output‖²), f* the unconstrained optimum: the share of the
    /// layer's explainable output energy that `w` loses (the definition pruning reports).
    pub fn relative_error(&self, w: &DMatrix<f64>) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for (hi, h) in self.hs.iter().enumerate() {
            let rows: Vec<usize> = (0..self.row_h.len()).filter(|&r| self.row_h[r] == hi).collect();
            if rows.is_empty() {
                continue;
            }
            let d = h.nrows();
            let mut hd = h.clone();
            let damp = 1e-9 * (h.trace() / d as f64).max(1e-300);
            for i in 0..d {
                hd[(i, i)] += damp;
            }
            let Some(ch) = hd.cholesky() else { continue };
            for &r in &rows {
                let br = DMatrix::from_fn(d, 1, |i, _| self.b[(r, i)]);
                let opt = ch.solve(&br);
                let opt_v: Vec<f64> = opt.iter().copied().collect();
                let best = self.row_loss(r, &opt_v);
                let mean: f64 = (0..d).map(|i| opt_v[i] * h[(i, d - 1)]).sum();
                num += self.row_loss(r, &row_of(w, r)) - best;
                den += -best - 0.5 * mean * mean;
            }
        }
        (num / den.max(1e-300)).max(0.0)
    }
}

fn row_of(w: &DMatrix<f64>, r: usize) -> Vec<f64> {
    (0..w.ncols()).map(|c| w[(r, c)]).collect()
}

/// The state of one layer's quantization.
#[derive(Clone, Debug)]
pub struct Quantized {
    /// Bits per index.
    pub bits: u8,
    /// Group of each row.
    pub row_group: Vec<usize>,
    /// Sorted codebook of each group, `2^bits` values.
    pub codebooks: Vec<Vec<f64>>,
    /// Index per weight, `rows × width` row-major.
    pub idx: Vec<u8>,
    /// Weights pinned at an exact-zero codeword.
    pub pinned: Vec<bool>,
    /// Per group: the codeword fixed at 0, when the group holds pinned weights.
    pub zero_word: Vec<Option<usize>>,
    /// Bias per row.
    pub bias: Vec<f64>,
}

impl Quantized {
    /// `rows × (width + 1)` decoded weights with the bias last.
    pub fn matrix(&self, width: usize) -> DMatrix<f64> {
        let rows = self.row_group.len();
        DMatrix::from_fn(rows, width + 1, |r, c| if c < width { self.value(r, c, width) } else { self.bias[r] })
    }

    fn value(&self, r: usize, c: usize, width: usize) -> f64 {
        self.codebooks[self.row_group[r]][self.idx[r * width + c] as usize]
    }

    /// Sorts every codebook ascending (ties in any order), remapping the indices so that the
    /// decoded weights are unchanged.
    fn sort_codebooks(&mut self, width: usize) {
        for g in 0..self.codebooks.len() {
            let k = self.codebooks[g].len();
            let mut order: Vec<usize> = (0..k).collect();
            order.sort_by(|&a, &b| self.codebooks[g][a].total_cmp(&self.codebooks[g][b]));
            if order.iter().enumerate().all(|(i, &o)| i == o) {
                continue;
            }
            let mut new_pos = vec![0u8; k];
            for (i, &o) in order.iter().enumerate() {
                new_pos[o] = i as u8;
            }
            self.codebooks[g] = order.iter().map(|&o| self.codebooks[g][o]).collect();
            self.zero_word[g] = self.zero_word[g].map(|z| new_pos[z] as usize);
            for r in 0..self.row_group.len() {
                if self.row_group[r] == g {
                    for c in 0..width {
                        let i = &mut self.idx[r * width + c];
                        *i = new_pos[*i as usize];
                    }
                }
            }
        }
    }
}

/// Exact 1-D weighted k-means (least weighted squared distance) of `values` with `weights` into
/// at most `k` clusters, by dynamic programming over the sorted distinct values with the
/// divide-and-conquer optimisation (the optimal split points are monotone for 1-D k-means).
/// Returns `k` sorted centres (the last repeated when there are fewer distinct values).
pub fn kmeans_1d_exact(values: &[f64], weights: &[f64], k: usize) -> Vec<f64> {
    let mut pts: Vec<(f64, f64)> = values.iter().zip(weights).map(|(&v, &w)| (v, w.max(0.0))).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut xs: Vec<(f64, f64)> = Vec::new();
    for (v, w) in pts {
        match xs.last_mut() {
            Some(last) if last.0 == v => last.1 += w,
            _ => xs.push((v, w)),
        }
    }
    if xs.is_empty() {
        return vec![0.0; k.max(1)];
    }
    // A tiny floor keeps zero-weight points (inputs the data never excites) well defined.
    let total: f64 = xs.iter().map(|p| p.1).sum();
    let floor = 1e-9 * (total / xs.len() as f64).max(1e-300);
    for p in &mut xs {
        p.1 += floor;
    }
    let n = xs.len();
    if n <= k {
        let mut c: Vec<f64> = xs.iter().map(|p| p.0).collect();
        while c.len() < k {
            c.push(*c.last().unwrap());
        }
        return c;
    }
    let (mut sw, mut s1, mut s2) = (vec![0.0; n + 1], vec![0.0; n + 1], vec![0.0; n + 1]);
    for (i, &(v, w)) in xs.iter().enumerate() {
        sw[i + 1] = sw[i] + w;
        s1[i + 1] = s1[i] + w * v;
        s2[i + 1] = s2[i] + w * v * v;
    }
    // Cost of one cluster over points i..j (exclusive).
    let cost = |i: usize, j: usize| -> f64 {
        let w = sw[j] - sw[i];
        if w <= 0.0 {
            return 0.0;
        }
        let m = s1[j] - s1[i];
        (s2[j] - s2[i] - m * m / w).max(0.0)
    };
    // prev[j]: best cost of the first j points in m clusters; arg[m][j]: start of the last cluster.
    let mut prev: Vec<f64> = (0..=n).map(|j| cost(0, j)).collect();
    let mut arg: Vec<Vec<usize>> = vec![vec![0; n + 1]];
    for _m in 1..k {
        let mut cur = vec![f64::INFINITY; n + 1];
        let mut a = vec![0usize; n + 1];
        cur[0] = 0.0;
        // Solve cur[j] for j in lo..=hi knowing the split lies in [olo, ohi].
        let mut stack = vec![(1usize, n, 0usize, n - 1)];
        while let Some((lo, hi, olo, ohi)) = stack.pop() {
            if lo > hi {
                continue;
            }
            let mid = (lo + hi) / 2;
            let (mut best, mut bi) = (f64::INFINITY, olo);
            let top = ohi.min(mid - 1).max(olo).min(mid);
            for (i, &pv) in prev.iter().enumerate().take(top + 1).skip(olo) {
                let v = pv + cost(i, mid);
                if v < best {
                    best = v;
                    bi = i;
                }
            }
            cur[mid] = best;
            a[mid] = bi;
            if mid > lo {
                stack.push((lo, mid - 1, olo, bi));
            }
            stack.push((mid + 1, hi, bi, ohi));
        }
        prev = cur;
        arg.push(a);
    }
    // Walk back the splits.
    let mut centres = Vec::with_capacity(k);
    let mut j = n;
    for m in (0..k).rev() {
        let i = if m == 0 { 0 } else { arg[m][j] };
        if j > i {
            centres.push((s1[j] - s1[i]) / (sw[j] - sw[i]));
        }
        j = i;
    }
    centres.sort_by(f64::total_cmp);
    while centres.len() < k {
        centres.push(*centres.last().unwrap_or(&0.0));
    }
    centres
}

/// Lloyd's 1-D k-means (unweighted) from `init` until no assignment changes (Deep Compression).
pub fn kmeans_1d_lloyd(values: &[f64], init: &[f64]) -> Vec<f64> {
    let mut c = init.to_vec();
    c.sort_by(f64::total_cmp);
    let mut assign = vec![usize::MAX; values.len()];
    for _ in 0..300 {
        let mut changed = false;
        for (i, &v) in values.iter().enumerate() {
            let a = nearest(&c, v);
            if a != assign[i] {
                assign[i] = a;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        let (mut s, mut n) = (vec![0.0; c.len()], vec![0usize; c.len()]);
        for (i, &v) in values.iter().enumerate() {
            s[assign[i]] += v;
            n[assign[i]] += 1;
        }
        for j in 0..c.len() {
            if n[j] > 0 {
                c[j] = s[j] / n[j] as f64;
            }
        }
        // Keep the order (centres of a 1-D Lloyd step stay sorted; ties are harmless).
        c.sort_by(f64::total_cmp);
    }
    c
}

/// Index of the codeword of sorted `c` nearest to `v` (the lower one on a tie).
pub fn nearest(c: &[f64], v: f64) -> usize {
    let p = c.partition_point(|&x| x < v);
    if p == 0 {
        return 0;
    }
    if p == c.len() {
        return c.len() - 1;
    }
    if (v - c[p - 1]) <= (c[p] - v) {
        p - 1
    } else {
        p
    }
}

/// `k` evenly spaced values over [min, max] of `values`.
pub fn linear_init(values: &[f64], k: usize) -> Vec<f64> {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return vec![0.0; k];
    }
    if k == 1 {
        return vec![0.5 * (lo + hi)];
    }
    (0..k).map(|i| lo + (hi - lo) * i as f64 / (k - 1) as f64).collect()
}

/// Clusters rows into at most `g` groups by k-means on the sorted-quantile descriptor of each row
/// (16 quantiles, §6.4 step 1), farthest-point initialisation from the row with the widest
/// range. Returns the group of each row, groups numbered 0.. without gaps.
pub fn group_rows(w: &[f64], rows: usize, width: usize, g: usize) -> Vec<usize> {
    const Q: usize = 16;
    if rows == 0 {
        return Vec::new();
    }
    let g = g.clamp(1, rows);
    let desc: Vec<[f64; Q]> = (0..rows)
        .map(|r| {
            let mut v: Vec<f64> = w[r * width..(r + 1) * width].to_vec();
            v.sort_by(f64::total_cmp);
            let mut d = [0.0; Q];
            for (q, slot) in d.iter_mut().enumerate() {
                let pos = (q as f64 + 0.5) / Q as f64 * (v.len() as f64 - 1.0).max(0.0);
                let (i, f) = (pos.floor() as usize, pos.fract());
                let hi = v.get(i + 1).copied().unwrap_or(v.get(i).copied().unwrap_or(0.0));
                *slot = v.get(i).copied().unwrap_or(0.0) * (1.0 - f) + hi * f;
            }
            d
        })
        .collect();
    let dist = |a: &[f64; Q], b: &[f64; Q]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>();
    let first = (0..rows).max_by(|&a, &b| (desc[a][Q - 1] - desc[a][0]).total_cmp(&(desc[b][Q - 1] - desc[b][0]))).unwrap_or(0);
    let mut centres = vec![desc[first]];
    while centres.len() < g {
        let far = (0..rows)
            .map(|r| (r, centres.iter().map(|c| dist(&desc[r], c)).fold(f64::INFINITY, f64::min)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        if far.1 <= 0.0 {
            break;
        }
        centres.push(desc[far.0]);
    }
    let mut assign = vec![0usize; rows];
    for _ in 0..100 {
        let mut changed = false;
        for r in 0..rows {
            let a = (0..centres.len()).min_by(|&a, &b| dist(&desc[r], &centres[a]).total_cmp(&dist(&desc[r], &centres[b]))).unwrap();
            if a != assign[r] {
                assign[r] = a;
                changed = true;
            }
        }
        let mut sum = vec![[0.0; Q]; centres.len()];
        let mut n = vec![0usize; centres.len()];
        for r in 0..rows {
            n[assign[r]] += 1;
            for q in 0..Q {
                sum[assign[r]][q] += desc[r][q];
            }
        }
        for c in 0..centres.len() {
            if n[c] > 0 {
                for q in 0..Q {
                    centres[c][q] = sum[c][q] / n[c] as f64;
                }
            }
        }
        if !changed {
            break;
        }
    }
    // Renumber without gaps, in order of first appearance.
    let mut map = vec![usize::MAX; centres.len()];
    let mut next = 0;
    for a in &mut assign {
        if map[*a] == usize::MAX {
            map[*a] = next;
            next += 1;
        }
        *a = map[*a];
    }
    assign
}

/// Automatic group count: the largest power of two (at most 16 and at most rows / 2) whose
/// codebooks cost at most [`AUTO_OVERHEAD`] of the index bits.
pub fn auto_groups(rows: usize, width: usize, bits: u8, f16_values: bool) -> usize {
    let index_bits = (rows * width * bits as usize) as f64;
    let book_bits = ((1usize << bits) * if f16_values { 16 } else { 32 }) as f64;
    let mut g = 1;
    while g * 2 <= 16 && g * 2 <= rows / 2 && (g * 2) as f64 * book_bits <= AUTO_OVERHEAD * index_bits {
        g *= 2;
    }
    g
}

/// Sets up the quantization of weights `w` (`rows × (width + 1)`, bias last) with `g` groups:
/// grouping, initial codebooks (sensitivity-weighted exact k-means for JLCM, per-tensor k-means or
/// linear for the baselines) and nearest-codeword assignments.
pub fn init(loss: Option<&LayerLoss>, w: &DMatrix<f64>, bits: u8, g: usize, method: CodebookMethod, keep_zeros: bool) -> Quantized {
    let rows = w.nrows();
    let width = w.ncols() - 1;
    let k = 1usize << bits;
    let flat: Vec<f64> = (0..rows).flat_map(|r| (0..width).map(move |c| (r, c))).map(|(r, c)| w[(r, c)]).collect();
    let row_group = match method {
        CodebookMethod::Jlcm => group_rows(&flat, rows, width, g),
        _ => vec![0; rows],
    };
    let groups = row_group.iter().copied().max().map_or(1, |m| m + 1);
    let pinned: Vec<bool> = flat.iter().map(|&v| keep_zeros && v == 0.0).collect();
    let mut codebooks = Vec::with_capacity(groups);
    let mut zero_word = Vec::with_capacity(groups);
    for gi in 0..groups {
        let mut vals = Vec::new();
        let mut wts = Vec::new();
        let mut has_pinned = false;
        for r in (0..rows).filter(|&r| row_group[r] == gi) {
            for c in 0..width {
                if pinned[r * width + c] {
                    has_pinned = true;
                    continue;
                }
                vals.push(flat[r * width + c]);
                let s = loss.map_or(1.0, |l| l.hs[l.row_h[r]][(c, c)]);
                wts.push(s);
            }
        }
        let free = if has_pinned { k - 1 } else { k };
        let mut cb = if free == 0 {
            Vec::new()
        } else {
            match method {
                CodebookMethod::Jlcm => kmeans_1d_exact(&vals, &wts, free),
                CodebookMethod::KMeans => kmeans_1d_lloyd(&vals, &linear_init(&vals, free)),
                CodebookMethod::Linear => linear_init(&vals, free),
            }
        };
        if has_pinned {
            cb.push(0.0);
        }
        cb.sort_by(f64::total_cmp);
        zero_word.push(has_pinned.then(|| cb.iter().position(|&v| v == 0.0).unwrap_or(0)));
        codebooks.push(cb);
    }
    let mut idx = vec![0u8; rows * width];
    for r in 0..rows {
        let cb = &codebooks[row_group[r]];
        for c in 0..width {
            idx[r * width + c] =
                if pinned[r * width + c] { zero_word[row_group[r]].unwrap_or(0) as u8 } else { nearest(cb, flat[r * width + c]) as u8 };
        }
    }
    let bias = (0..rows).map(|r| w[(r, width)]).collect();
    Quantized { bits, row_group, codebooks, idx, pinned, zero_word, bias }
}

/// An input-major codebook quantization: the `[width, rows]` (inputs × outputs) index matrix.
pub struct InputMajor {
    /// Codebook payload data over the input-major matrix (row groups over inputs).
    pub data: CodebookData,
    /// Decoded weights and bias, `rows × (width + 1)` (output-major).
    pub matrix: DMatrix<f64>,
    /// The layer loss after each refit round (non-increasing).
    pub loss_trace: Vec<f64>,
    /// Decoded weights and bias after the initial nearest-codeword assignment (exact bias).
    pub init_matrix: DMatrix<f64>,
}

/// Quantizes the weights `w` (`rows × (width + 1)`, bias last) of a layer with one H (Dense, or
/// a Conv with group 1) **input-major** for the input-sparse kernel (ALGORITHMS.md §6.6): the
/// inputs are grouped by the quantiles of their weight columns, each input group gets one
/// codebook (sensitivity-weighted exact 1-D k-means init, weights diag H, nearest assignment),
/// then the exact least-squares refit of all `G · 2^bits` codewords jointly (the inputs of a
/// group share codewords across every output, so the groups couple through H), the exact bias
/// and neighbour-only reassignment alternate until the loss stops falling; values are rounded to
/// f16 when asked, and the bias refit once more. Every step is an exact minimiser or an accepted
/// descent move, so the recorded loss never rises.
pub fn quantize_input_major(l: &LayerLoss, w: &DMatrix<f64>, bits: u8, groups: usize, f16_values: bool, max_iter: usize) -> InputMajor {
    let rows = w.nrows();
    let width = w.ncols() - 1;
    let k = 1usize << bits;
    let h = &l.hs[0];
    // Input-major values: column c of W is row c here.
    let flat_t: Vec<f64> = (0..width).flat_map(|c| (0..rows).map(move |r| (r, c))).map(|(r, c)| w[(r, c)]).collect();
    let row_group = group_rows(&flat_t, width, rows, groups.clamp(1, width.max(1)));
    let g_count = row_group.iter().copied().max().map_or(1, |m| m + 1);
    let mut codebooks: Vec<Vec<f64>> = (0..g_count)
        .map(|gi| {
            let (mut vals, mut wts) = (Vec::new(), Vec::new());
            for c in (0..width).filter(|&c| row_group[c] == gi) {
                vals.extend_from_slice(&flat_t[c * rows..(c + 1) * rows]);
                wts.extend(std::iter::repeat_n(h[(c, c)].max(1e-12), rows));
            }
            let mut cb = if vals.is_empty() { vec![0.0] } else { kmeans_1d_exact(&vals, &wts, k) };
            cb.resize(k, *cb.last().unwrap_or(&0.0));
            cb
        })
        .collect();
    let mut idx: Vec<u8> = (0..width * rows).map(|i| nearest(&codebooks[row_group[i / rows.max(1)]], flat_t[i]) as u8).collect();
    let mut bias: Vec<f64> = (0..rows).map(|r| w[(r, width)]).collect();
    let decode = |cbs: &[Vec<f64>], idx: &[u8], bias: &[f64]| {
        DMatrix::from_fn(rows, width + 1, |r, c| if c < width { cbs[row_group[c]][idx[c * rows + r] as usize] } else { bias[r] })
    };
    let refit_bias = |m: &DMatrix<f64>, bias: &mut Vec<f64>| {
        let hb = h[(width, width)];
        if hb > 0.0 {
            for (r, b) in bias.iter_mut().enumerate() {
                let s: f64 = (0..width).map(|c| h[(width, c)] * m[(r, c)]).sum();
                *b = (l.b[(r, width)] - s) / hb;
            }
        }
    };
    refit_bias(&decode(&codebooks, &idx, &bias), &mut bias);
    let init_matrix = decode(&codebooks, &idx, &bias);
    let mut trace = vec![l.loss(&init_matrix)];
    let unknowns = g_count * k;
    for _ in 0..max_iter.max(1) {
        // A θ = r over every codeword θ_j = codebooks[j / k][j % k].
        let mut a = DMatrix::<f64>::zeros(unknowns, unknowns);
        let mut rhs = vec![0.0; unknowns];
        let slot = |c: usize, r: usize| row_group[c] * k + idx[c * rows + r] as usize;
        for (r, &br) in bias.iter().enumerate() {
            let js: Vec<usize> = (0..width).map(|c| slot(c, r)).collect();
            for c in 0..width {
                rhs[js[c]] += l.b[(r, c)] - br * h[(c, width)];
                for c2 in 0..width {
                    a[(js[c], js[c2])] += h[(c, c2)];
                }
            }
        }
        // Unused codewords (zero rows) keep their value; a tiny ridge toward the current values
        // keeps the system definite.
        let damp = 1e-9 * (0..unknowns).map(|j| a[(j, j)]).fold(0.0, f64::max).max(1e-300);
        for j in 0..unknowns {
            let cur = codebooks[j / k][j % k];
            a[(j, j)] += damp;
            rhs[j] += damp * cur;
        }
        let Some(ch) = a.cholesky() else { break };
        let theta = ch.solve(&DMatrix::from_column_slice(unknowns, 1, &rhs));
        let mut new: Vec<Vec<f64>> = (0..g_count).map(|gi| (0..k).map(|j| theta[(gi * k + j, 0)]).collect()).collect();
        let mut new_idx = idx.clone();
        sort_input_major(&mut new, &row_group, &mut new_idx, rows);
        let mut nb = bias.clone();
        refit_bias(&decode(&new, &new_idx, &nb), &mut nb);
        reassign_input_major(l, &new, &row_group, &mut new_idx, &nb, rows);
        refit_bias(&decode(&new, &new_idx, &nb), &mut nb);
        let f = l.loss(&decode(&new, &new_idx, &nb));
        let last = *trace.last().unwrap_or(&f64::INFINITY);
        if !f.is_finite() || f > last {
            break;
        }
        codebooks = new;
        idx = new_idx;
        bias = nb;
        trace.push(f);
        if last - f <= 1e-7 * last.abs().max(1e-300) {
            break;
        }
    }
    let to_stored = |v: f64| if f16_values { f16::from_f64(v).to_f64() } else { v as f32 as f64 };
    for cb in &mut codebooks {
        for v in cb.iter_mut() {
            *v = to_stored(*v);
        }
    }
    refit_bias(&decode(&codebooks, &idx, &bias), &mut bias);
    let matrix = decode(&codebooks, &idx, &bias);
    let data = CodebookData {
        bits,
        f16_values,
        row_group: row_group.iter().map(|&g| g as u16).collect(),
        codebooks: codebooks.iter().flat_map(|c| c.iter().map(|&v| v as f32)).collect(),
        indices: idx,
        lut: false,
    };
    InputMajor { data, matrix, loss_trace: trace, init_matrix }
}

/// Sorts each codebook of an input-major quantization ascending, remapping the indices
/// (`idx[c · rows + r]`) so the decoded weights are unchanged.
fn sort_input_major(codebooks: &mut [Vec<f64>], row_group: &[usize], idx: &mut [u8], rows: usize) {
    for (g, cb) in codebooks.iter_mut().enumerate() {
        let mut order: Vec<usize> = (0..cb.len()).collect();
        order.sort_by(|&a, &b| cb[a].total_cmp(&cb[b]));
        let mut pos = vec![0u8; cb.len()];
        for (i, &o) in order.iter().enumerate() {
            pos[o] = i as u8;
        }
        *cb = order.iter().map(|&o| cb[o]).collect();
        for c in (0..row_group.len()).filter(|&c| row_group[c] == g) {
            for i in &mut idx[c * rows..(c + 1) * rows] {
                *i = pos[*i as usize];
            }
        }
    }
}

/// One pass of neighbour-only reassignment for an input-major quantization (§3.2 reading, as
/// [`reassign`]): each index moves to the adjacent codeword of its (sorted) codebook only when
/// the layer loss drops, with each output row's gradient kept exact.
fn reassign_input_major(l: &LayerLoss, codebooks: &[Vec<f64>], row_group: &[usize], idx: &mut [u8], bias: &[f64], rows: usize) -> usize {
    let h = &l.hs[0];
    let width = l.width();
    let mut moves = 0;
    for r in 0..rows {
        let mut w: Vec<f64> = (0..width).map(|c| codebooks[row_group[c]][idx[c * rows + r] as usize]).collect();
        w.push(bias[r]);
        let mut grad: Vec<f64> = (0..=width).map(|c| (0..=width).map(|c2| h[(c, c2)] * w[c2]).sum::<f64>() - l.b[(r, c)]).collect();
        for c in 0..width {
            let cb = &codebooks[row_group[c]];
            let a = idx[c * rows + r] as usize;
            let hcc = h[(c, c)];
            let mut best = (0.0, a);
            for cand in [a.wrapping_sub(1), a + 1] {
                if cand >= cb.len() {
                    continue;
                }
                let d = cb[cand] - cb[a];
                let delta = d * grad[c] + 0.5 * d * d * hcc;
                if delta < best.0 - 1e-15 {
                    best = (delta, cand);
                }
            }
            if best.1 != a {
                let d = cb[best.1] - cb[a];
                idx[c * rows + r] = best.1 as u8;
                w[c] += d;
                for (c2, g) in grad.iter_mut().enumerate() {
                    *g += d * h[(c2, c)];
                }
                moves += 1;
            }
        }
    }
    moves
}

/// The exact bias minimiser of each row given its quantized weights.
fn refit_bias(l: &LayerLoss, q: &mut Quantized) {
    let width = l.width();
    for r in 0..q.row_group.len() {
        let h = &l.hs[l.row_h[r]];
        let hb = h[(width, width)];
        if hb <= 0.0 {
            continue;
        }
        let s: f64 = (0..width).map(|c| h[(width, c)] * q.value(r, c, width)).sum();
        q.bias[r] = (l.b[(r, width)] - s) / hb;
    }
}

/// The exact least-squares codebooks given the assignments and biases (§6.4 step 4a): for each
/// group, solve Q c = q over its free, used codewords; the zero codeword and unused ones stay.
fn refit_codebooks(l: &LayerLoss, q: &mut Quantized) {
    let width = l.width();
    let k = 1usize << q.bits;
    let groups = q.codebooks.len();
    let mut qm = vec![DMatrix::<f64>::zeros(k, k); groups];
    let mut qv = vec![vec![0.0; k]; groups];
    let mut free = vec![false; width];
    for r in 0..q.row_group.len() {
        let g = q.row_group[r];
        let h = &l.hs[l.row_h[r]];
        let idx = &q.idx[r * width..(r + 1) * width];
        for (c, f) in free.iter_mut().enumerate() {
            *f = !q.pinned[r * width + c] && q.zero_word[g] != Some(idx[c] as usize);
        }
        // Q[a_i, a_c] += H[c, i] over free pairs (H symmetric): column a_c of Q is contiguous.
        let qg = qm[g].as_mut_slice();
        for c in 0..width {
            if !free[c] {
                continue;
            }
            let a = idx[c] as usize;
            let col = &h.as_slice()[c * (width + 1)..c * (width + 1) + width];
            let qcol = &mut qg[a * k..(a + 1) * k];
            for ((&v, &f), &ai) in col.iter().zip(&free).zip(idx) {
                if f {
                    qcol[ai as usize] += v;
                }
            }
            qv[g][a] += l.b[(r, c)] - q.bias[r] * h[(c, width)];
        }
    }
    for g in 0..groups {
        let used: Vec<usize> = (0..k).filter(|&a| qm[g][(a, a)] > 0.0).collect();
        if used.is_empty() {
            continue;
        }
        let m = used.len();
        let mut a = DMatrix::from_fn(m, m, |i, j| qm[g][(used[i], used[j])]);
        let scale = (a.trace() / m as f64).max(1e-300);
        for i in 0..m {
            a[(i, i)] += 1e-12 * scale;
        }
        let rhs = DMatrix::from_fn(m, 1, |i, _| qv[g][used[i]]);
        let Some(sol) = a.cholesky().map(|ch| ch.solve(&rhs)) else { continue };
        if sol.iter().all(|v| v.is_finite()) {
            for (i, &u) in used.iter().enumerate() {
                q.codebooks[g][u] = sol[(i, 0)];
            }
        }
    }
}

/// Neighbour-only reassignment (§3.2, §6.4 step 4b): each free weight may move to the adjacent
/// codeword below or above, and does when that lowers f (exact coordinate descent with the row
/// gradient kept up to date). Returns the number of moves.
fn reassign(l: &LayerLoss, q: &mut Quantized) -> usize {
    let width = l.width();
    let mut moves = 0;
    let mut grad = vec![0.0; width + 1];
    let mut wr = vec![0.0; width + 1];
    for r in 0..q.row_group.len() {
        let g = q.row_group[r];
        let h = &l.hs[l.row_h[r]];
        for (c, v) in wr.iter_mut().take(width).enumerate() {
            *v = q.value(r, c, width);
        }
        wr[width] = q.bias[r];
        let hs = h.as_slice();
        for i in 0..=width {
            let hi = &hs[i * (width + 1)..(i + 1) * (width + 1)];
            grad[i] = hi.iter().zip(&wr).map(|(a, b)| a * b).sum::<f64>() - l.b[(r, i)];
        }
        let cb = &q.codebooks[g];
        for c in 0..width {
            if q.pinned[r * width + c] {
                continue;
            }
            let cur = q.idx[r * width + c] as usize;
            let mut best = (0.0, cur);
            for nb in [cur.wrapping_sub(1), cur + 1] {
                if nb >= cb.len() {
                    continue;
                }
                let delta = cb[nb] - cb[cur];
                let df = delta * grad[c] + 0.5 * delta * delta * h[(c, c)];
                // Strict decrease beyond rounding noise.
                if df < best.0 - 1e-15 * (1.0 + grad[c].abs() * delta.abs()) {
                    best = (df, nb);
                }
            }
            if best.1 != cur {
                let delta = cb[best.1] - cb[cur];
                q.idx[r * width + c] = best.1 as u8;
                let col = &hs[c * (width + 1)..(c + 1) * (width + 1)];
                for (gi, v) in grad.iter_mut().zip(col) {
                    *gi += delta * v;
                }
                moves += 1;
            }
        }
    }
    moves
}

/// Runs the JLCM-style alternation on `q` until f stops decreasing (relative change below 1e-7)
/// or `max_iter` rounds; returns f after every step, starting with f at entry.
pub fn optimise(l: &LayerLoss, q: &mut Quantized, max_iter: usize) -> Vec<f64> {
    let width = l.width();
    let f = |q: &Quantized| l.loss(&q.matrix(width));
    let mut trace = vec![f(q)];
    for _ in 0..max_iter {
        let before = *trace.last().unwrap();
        // (a) codebooks, kept only if they do not raise f (guards the solver's rounding).
        let saved = q.codebooks.clone();
        refit_codebooks(l, q);
        let fa = f(q);
        if fa > before {
            q.codebooks = saved;
            trace.push(before);
        } else {
            trace.push(fa);
        }
        q.sort_codebooks(width);
        refit_bias(l, q);
        trace.push(f(q).min(*trace.last().unwrap()));
        reassign(l, q);
        let fb = f(q);
        trace.push(fb);
        if before - fb <= 1e-7 * before.abs().max(1e-300) {
            break;
        }
    }
    trace
}

/// Rounds every codebook value to f16 (the stored precision), then lets the assignments and
/// biases settle again (monotone from the rounded point).
fn round_to_f16(l: Option<&LayerLoss>, q: &mut Quantized) {
    let width = q.idx.len() / q.row_group.len().max(1);
    for cb in &mut q.codebooks {
        for v in cb.iter_mut() {
            *v = f16::from_f64(*v).to_f64();
        }
    }
    q.sort_codebooks(width);
    if let Some(l) = l {
        refit_bias(l, q);
        reassign(l, q);
        refit_bias(l, q);
    }
}

/// Weight layers [`quantize`] handles: Conv and Dense with constant weights used by this node
/// only.
fn eligible(g: &Graph, n: usize) -> Result<(), String> {
    let node = &g.nodes[n];
    if !matches!(node.op, Op::Conv(_) | Op::Dense { .. }) {
        return Err("not a weight layer".into());
    }
    let wt = node.inputs[1];
    if g.tensors[wt].data.is_none() {
        return Err("weights are not constant".into());
    }
    if g.consumers(wt).len() != 1 {
        return Err("weights are shared with another node".into());
    }
    if g.tensors[wt].storage != Storage::Dense {
        return Err("weights are block-sparse (codebooks apply to dense weights)".into());
    }
    Ok(())
}

/// The layer loss of weight node `n` of `cur` (inputs `acts`) against the dense model's outputs
/// (inputs `acts_dense`, weights `w0` = `rows × (width + 1)`), over about `max_rows` positions.
fn layer_loss(cur: &Graph, n: usize, acts: &[Vec<f32>], acts_dense: &[Vec<f32>], w0: &DMatrix<f64>, max_rows: usize) -> Result<LayerLoss> {
    let node = &cur.nodes[n];
    let rows = w0.nrows();
    let width = w0.ncols() - 1;
    let conv_groups = match &node.op {
        Op::Conv(a) => a.group.max(1) as usize,
        _ => 1,
    };
    // Layout of one convolution group: the group-1 layout over its channel slice.
    let lay = RowLayout::of_group(cur, n)?;
    if lay.width() != width {
        bail!("node `{}`: calibration rows have {} values but the weights {}", node.name, lay.width(), width);
    }
    let slice = match &lay {
        RowLayout::Conv { c, h, w, .. } => c * h * w,
        RowLayout::Dense { k } => *k,
    };
    let per_group = rows / conv_groups;
    let subset = super::calib::row_subset(lay.rows(), acts.len(), max_rows);
    let d = width + 1;
    let mut hs = Vec::with_capacity(conv_groups);
    let mut b = DMatrix::zeros(rows, d);
    for cg in 0..conv_groups {
        let mut h = DMatrix::<f64>::zeros(d, d);
        let mut c = DMatrix::<f64>::zeros(d, d);
        let (mut x, mut xd) = (Vec::new(), Vec::new());
        let mut count = 0.0;
        for (a, ad) in acts.iter().zip(acts_dense) {
            x.clear();
            xd.clear();
            let (a, ad) = (&a[cg * slice..(cg + 1) * slice], &ad[cg * slice..(cg + 1) * slice]);
            for &r in &subset {
                lay.push_row(a, r, &mut x);
                lay.push_row(ad, r, &mut xd);
            }
            let m = subset.len();
            let xm = DMatrix::from_row_slice(m, d, &x);
            let xdm = DMatrix::from_row_slice(m, d, &xd);
            h.gemm_tr(1.0, &xm, &xm, 1.0);
            c.gemm_tr(1.0, &xdm, &xm, 1.0);
            count += m as f64;
        }
        if count == 0.0 {
            bail!("node `{}`: no calibration rows", node.name);
        }
        h /= count;
        c /= count;
        // B = W0 C for this group's rows.
        for r in cg * per_group..(cg + 1) * per_group {
            for j in 0..d {
                b[(r, j)] = (0..d).map(|i| w0[(r, i)] * c[(i, j)]).sum();
            }
        }
        hs.push(h);
    }
    let row_h = (0..rows).map(|r| r / per_group.max(1)).collect();
    Ok(LayerLoss { hs, row_h, b, seen: subset.len() * acts.len() })
}

/// Quantizes every eligible layer of `g` with calibration samples `calib`.
pub fn quantize(g: &Graph, calib: &[&[f32]], opts: &CodebookOptions) -> Result<(Graph, CodebookReport)> {
    if calib.is_empty() {
        bail!("no calibration samples");
    }
    if !(1..=8).contains(&opts.bits) {
        bail!("codebook bits must be 1 to 8, not {}", opts.bits);
    }
    for (name, _) in &opts.layer_bits {
        if !g.nodes.iter().any(|n| &n.name == name) {
            bail!("--layer-bits: no node is named `{name}`");
        }
    }
    let mut report = CodebookReport { method: opts.method, bits: opts.bits, layers: Vec::new(), skipped: Vec::new() };
    let dense = g.clone();
    let mut cur = g.clone();
    let table = super::sparsify::BreakEvenTable::builtin();
    for n in 0..g.nodes.len() {
        if let Err(why) = eligible(&cur, n) {
            if matches!(cur.nodes[n].op, Op::Conv(_) | Op::Dense { .. }) {
                report.skipped.push((cur.nodes[n].name.clone(), why));
            }
            continue;
        }
        let name = cur.nodes[n].name.clone();
        let bits = match opts.layer_bits.iter().find(|(l, _)| *l == name).map(|x| x.1) {
            Some(LayerBits::Keep) => {
                report.skipped.push((name, "--layer-bits keeps it f32".into()));
                continue;
            }
            Some(LayerBits::Bits(b)) => b,
            None => opts.bits,
        };
        if !(1..=8).contains(&bits) {
            bail!("--layer-bits {name}={bits}: bits must be 1 to 8");
        }
        let w = layer_matrix(&cur, n)?;
        let (rows, width) = (w.nrows(), w.ncols() - 1);
        let input = cur.nodes[n].inputs[0];
        let acts = activations(&cur, &[input], calib).with_context(|| format!("calibrating `{name}`"))?;
        let acts_dense = activations(&dense, &[input], calib).with_context(|| format!("calibrating `{name}` (dense)"))?;
        let w0 = layer_matrix(&dense, n)?;
        let loss = layer_loss(&cur, n, &acts[0], &acts_dense[0], &w0, opts.max_rows).with_context(|| format!("layer `{name}`"))?;
        let groups = match (opts.method, opts.groups) {
            (CodebookMethod::Jlcm, GroupCount::Auto) => auto_groups(rows, width, bits, opts.f16_values),
            (CodebookMethod::Jlcm, GroupCount::Fixed(k)) => k.clamp(1, rows.min(sprig_runtime::format::CODEBOOK_MAX_GROUPS)),
            _ => 1,
        };
        // With few calibration rows per input (Dense layers fed fewer samples than inputs), a
        // ridge toward the layer's weights keeps the directions the data does not excite; its
        // strength is the one whose fit (`fit_one` on the ridged fit loss) has the least
        // held-out loss, as in pruning.
        let select_ridge = |fit_one: &dyn Fn(&LayerLoss) -> DMatrix<f64>| -> Result<f64> {
            let few = loss.seen < RIDGE_ROWS_PER_INPUT * (width + 1);
            let (true, Some((fa, va)), Some((fd, vd))) = (few, split_samples(&acts[0]), split_samples(&acts_dense[0])) else {
                return Ok(0.0);
            };
            let fit = layer_loss(&cur, n, &fa, &fd, &w0, opts.max_rows)?;
            let val = layer_loss(&cur, n, &va, &vd, &w0, opts.max_rows)?;
            let mut best = (f64::INFINITY, 0.0);
            for &d in &RIDGES {
                let v = val.loss(&fit_one(&fit.with_ridge(&w, d)));
                if v < best.0 {
                    best = (v, d);
                }
            }
            Ok(best.1)
        };
        let wt = cur.nodes[n].inputs[1];
        if opts.input_major.contains(&name) {
            let fits = loss.hs.len() == 1
                && !opts.keep_zeros
                && crate::analyze::input_sparse_family(&cur, n, cur.nodes[n].inputs[0]).is_some()
                && matches!(cur.nodes[n].op, Op::Dense { .. } | Op::Conv(_));
            if !fits {
                bail!("layer `{name}` cannot be quantized input-major (needs a Dense or 1x1 Conv without pruned zeros)");
            }
            let g_in = match opts.groups {
                GroupCount::Auto => auto_groups(width, rows, bits, opts.f16_values),
                GroupCount::Fixed(k) => k.clamp(1, width.min(sprig_runtime::format::CODEBOOK_MAX_GROUPS)),
            };
            let ridge = select_ridge(&|l: &LayerLoss| quantize_input_major(l, &w, bits, g_in, opts.f16_values, SELECT_ITER).matrix)?;
            let im = quantize_input_major(&loss.with_ridge(&w, ridge), &w, bits, g_in, opts.f16_values, opts.max_iter.min(10));
            let mut matrix = im.matrix.clone();
            let bias = store_bias(&loss, &mut matrix, matches!(cur.nodes[n].op, Op::Conv(_)), opts);
            let relative_error = loss.relative_error(&matrix);
            set_layer_matrix(&mut cur, n, &matrix);
            if let (Some(&bt), Some(st)) = (cur.nodes[n].inputs.get(2), bias.storage) {
                cur.tensors[bt].storage = st;
            }
            // The decoded values are the weights, exactly (output-major).
            let decoded_t = im.data.decode();
            cur.tensors[wt].data = Some(crate::writer::swap01_values(&decoded_t, width, rows));
            let groups = im.data.groups();
            let bytes = sprig_runtime::format::codebook_len(width, rows, bits, opts.f16_values, groups).unwrap_or(0);
            report.layers.push(CodebookLayer {
                node: name,
                rows,
                cols: width,
                bits,
                groups,
                bytes,
                f32_bytes: rows * width * 4,
                bits_per_weight: bytes as f64 * 8.0 / (rows * width).max(1) as f64,
                relative_error_init: loss.relative_error(&im.init_matrix),
                relative_error,
                ridge,
                loss_trace: im.loss_trace,
                kernel: "input-sparse".into(),
                bias: bias.label.into(),
            });
            cur.tensors[wt].storage = Storage::InputMajorCodebook(Arc::new(im.data));
            continue;
        }
        let relative_error_init = loss.relative_error(&init(Some(&loss), &w, bits, groups, opts.method, opts.keep_zeros).matrix(width));
        let mut ridge = 0.0;
        let mut trace = Vec::new();
        let mut q = if opts.method == CodebookMethod::Jlcm {
            ridge = select_ridge(&|l: &LayerLoss| {
                let mut q = init(Some(l), &w, bits, groups, opts.method, opts.keep_zeros);
                refit_bias(l, &mut q);
                optimise(l, &mut q, SELECT_ITER);
                q.matrix(width)
            })?;
            let l = loss.with_ridge(&w, ridge);
            let mut q = init(Some(&l), &w, bits, groups, opts.method, opts.keep_zeros);
            refit_bias(&l, &mut q);
            trace = optimise(&l, &mut q, opts.max_iter);
            if opts.f16_values {
                round_to_f16(Some(&l), &mut q);
            }
            q
        } else {
            init(Some(&loss), &w, bits, groups, opts.method, opts.keep_zeros)
        };
        if opts.f16_values {
            if opts.method != CodebookMethod::Jlcm {
                round_to_f16(None, &mut q);
            }
        } else {
            for cb in &mut q.codebooks {
                for v in cb.iter_mut() {
                    *v = *v as f32 as f64;
                }
            }
        }
        let mut m = q.matrix(width);
        let bias = store_bias(&loss, &mut m, matches!(cur.nodes[n].op, Op::Conv(_)), opts);
        let relative_error = loss.relative_error(&m);
        set_layer_matrix(&mut cur, n, &m);
        if let (Some(&bt), Some(st)) = (cur.nodes[n].inputs.get(2), bias.storage) {
            cur.tensors[bt].storage = st;
        }
        let is_dense_op = matches!(cur.nodes[n].op, Op::Dense { .. });
        let lut = is_dense_op
            && match opts.lut {
                LutChoice::Always => true,
                LutChoice::Never => false,
                LutChoice::Auto => table.as_ref().and_then(|t| t.codebook_lut(bits)).unwrap_or(false),
            };
        let k = 1usize << bits;
        let cb = CodebookData {
            bits,
            f16_values: opts.f16_values,
            row_group: q.row_group.iter().map(|&g| g as u16).collect(),
            codebooks: q.codebooks.iter().flat_map(|c| c.iter().map(|&v| v as f32).chain(std::iter::repeat(0.0)).take(k)).collect(),
            indices: q.idx.clone(),
            lut,
        };
        // The decoded values are the weights, exactly.
        cur.tensors[wt].data = Some(cb.decode());
        let bytes = sprig_runtime::format::codebook_len(rows, width, bits, opts.f16_values, cb.groups()).unwrap_or(0);
        report.layers.push(CodebookLayer {
            node: name,
            rows,
            cols: width,
            bits,
            groups: cb.groups(),
            bytes,
            f32_bytes: rows * width * 4,
            bits_per_weight: bytes as f64 * 8.0 / (rows * width).max(1) as f64,
            relative_error_init,
            relative_error,
            ridge,
            loss_trace: trace,
            kernel: if lut { "lut".into() } else { "decode".into() },
            bias: bias.label.into(),
        });
        cur.tensors[wt].storage = Storage::Codebook(Arc::new(cb));
    }
    Ok((cur, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Brute force: every split of the sorted distinct values into at most k contiguous runs.
    fn brute_kmeans_cost(values: &[f64], weights: &[f64], k: usize) -> f64 {
        let mut pts: Vec<(f64, f64)> = values.iter().zip(weights).map(|(&v, &w)| (v, w)).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = pts.len();
        let run_cost = |s: &[(f64, f64)]| {
            let w: f64 = s.iter().map(|p| p.1).sum();
            let m = s.iter().map(|p| p.0 * p.1).sum::<f64>() / w;
            s.iter().map(|p| p.1 * (p.0 - m) * (p.0 - m)).sum::<f64>()
        };
        let mut best = f64::INFINITY;
        // Bitmask of cut positions between consecutive points.
        for mask in 0u32..(1 << (n - 1)) {
            if mask.count_ones() as usize + 1 > k {
                continue;
            }
            let (mut start, mut cost) = (0, 0.0);
            for i in 0..n {
                if i == n - 1 || mask & (1 << i) != 0 {
                    cost += run_cost(&pts[start..=i]);
                    start = i + 1;
                }
            }
            best = best.min(cost);
        }
        best
    }

    fn assign_cost(values: &[f64], weights: &[f64], c: &[f64]) -> f64 {
        values.iter().zip(weights).map(|(&v, &w)| w * (v - c[nearest(c, v)]).powi(2)).sum()
    }

    proptest! {
        #[test]
        fn exact_kmeans_matches_brute_force(
            values in proptest::collection::vec(-2.0f64..2.0, 1..11),
            wseed in proptest::collection::vec(0.1f64..3.0, 11),
            k in 1usize..5,
        ) {
            let weights = &wseed[..values.len()];
            let c = kmeans_1d_exact(&values, weights, k);
            prop_assert_eq!(c.len(), k);
            prop_assert!(c.windows(2).all(|p| p[0] <= p[1]));
            let got = assign_cost(&values, weights, &c);
            let want = brute_kmeans_cost(&values, weights, k);
            prop_assert!(got <= want + 1e-9 * (1.0 + want), "dp {got} brute {want}");
        }

        /// The JLCM alternation never raises the layer loss, and ends where no single
        /// neighbour move lowers it.
        #[test]
        fn optimise_is_monotone_and_neighbour_optimal(
            seed in 0u64..10_000,
            rows in 1usize..7,
            width in 1usize..9,
            bits in 1u8..4,
            groups in 1usize..4,
        ) {
            let (l, w) = random_problem(seed, rows, width);
            let mut q = init(Some(&l), &w, bits, groups, CodebookMethod::Jlcm, false);
            refit_bias(&l, &mut q);
            let trace = optimise(&l, &mut q, 50);
            for p in trace.windows(2) {
                prop_assert!(p[1] <= p[0] + 1e-9 * p[0].abs().max(1.0), "loss rose: {:?}", trace);
            }
            // No neighbour move lowers f any more (when the loop converged).
            if trace.len() < 1 + 3 * 50 {
                let f0 = l.loss(&q.matrix(width));
                for r in 0..rows {
                    for c in 0..width {
                        let cur = q.idx[r * width + c] as usize;
                        for nb in [cur.wrapping_sub(1), cur + 1] {
                            if nb < q.codebooks[q.row_group[r]].len() {
                                let mut q2 = q.clone();
                                q2.idx[r * width + c] = nb as u8;
                                let f1 = l.loss(&q2.matrix(width));
                                prop_assert!(f1 >= f0 - 1e-9 * f0.abs().max(1.0), "move ({r},{c}) -> {nb} lowers f {f0} -> {f1}");
                            }
                        }
                    }
                }
            }
            prop_assert!(q.codebooks.iter().all(|cb| cb.len() == 1 << bits));
        }

        /// Pinned (pruned) weights decode to exactly zero, before and after optimisation.
        #[test]
        fn zeros_stay_zero(seed in 0u64..10_000, rows in 1usize..6, width in 2usize..9, bits in 1u8..4) {
            let (l, mut w) = random_problem(seed, rows, width);
            for r in 0..rows {
                for c in 0..width {
                    if (r + c + seed as usize).is_multiple_of(3) {
                        w[(r, c)] = 0.0;
                    }
                }
            }
            let mut q = init(Some(&l), &w, bits, 2, CodebookMethod::Jlcm, true);
            optimise(&l, &mut q, 20);
            round_to_f16(Some(&l), &mut q);
            let m = q.matrix(width);
            for r in 0..rows {
                for c in 0..width {
                    if w[(r, c)] == 0.0 {
                        prop_assert_eq!(m[(r, c)], 0.0);
                    }
                }
            }
        }
    }

    /// A random layer loss (shared H from random inputs with a constant 1) and weights.
    fn random_problem(seed: u64, rows: usize, width: usize) -> (LayerLoss, DMatrix<f64>) {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let n = 3 * (width + 1);
        let d = width + 1;
        let x = DMatrix::from_fn(n, d, |i, j| if j == width { 1.0 } else { rnd() + 0.3 * (i % 3) as f64 });
        let h = x.transpose() * &x / n as f64;
        let w = DMatrix::from_fn(rows, d, |_, _| rnd());
        let b = &w * &h;
        (LayerLoss { hs: vec![h], row_h: vec![0; rows], b, seen: n }, w)
    }

    #[test]
    fn auto_groups_respect_the_overhead() {
        assert_eq!(auto_groups(128, 640, 4, true), 16);
        assert_eq!(auto_groups(64, 9, 4, true), 1);
        for (rows, width, bits) in [(64, 64, 4), (144, 250, 2), (32, 288, 8)] {
            let g = auto_groups(rows, width, bits, true);
            assert!(g == 1 || (g * (1 << bits) * 16) as f64 <= AUTO_OVERHEAD * (rows * width * bits as usize) as f64);
        }
    }

    #[test]
    fn grouping_separates_rows_of_different_scale() {
        let (rows, width) = (8, 20);
        let w: Vec<f64> = (0..rows * width).map(|i| ((i % width) as f64 - 10.0) * if i / width < 4 { 0.01 } else { 1.0 }).collect();
        let g = group_rows(&w, rows, width, 2);
        assert!(g[..4].iter().all(|&x| x == g[0]) && g[4..].iter().all(|&x| x == g[4]) && g[0] != g[4], "{g:?}");
    }

    #[test]
    fn sorting_codebooks_keeps_the_decoded_weights() {
        let (l, w) = random_problem(7, 4, 6);
        let mut q = init(Some(&l), &w, 2, 2, CodebookMethod::Jlcm, false);
        let before = q.matrix(6);
        for cb in &mut q.codebooks {
            cb.reverse();
        }
        // Reverse indices to match, then sort back.
        for r in 0..4 {
            for c in 0..6 {
                q.idx[r * 6 + c] = 3 - q.idx[r * 6 + c];
            }
        }
        assert_eq!(q.matrix(6), before);
        q.sort_codebooks(6);
        assert_eq!(q.matrix(6), before);
        assert!(q.codebooks.iter().all(|cb| cb.windows(2).all(|p| p[0] <= p[1])));
    }

    /// Auto takes u8-affine biases where they cost the layer almost nothing and keeps f16 where
    /// one outlying bias stretches the grid; the explicit choices are obeyed; the stored values
    /// are grid (or f16) values.
    #[test]
    fn bias_storage_follows_the_measured_error() {
        use sprig_runtime::format::u8_affine_nearest;
        let (l, w) = random_problem(11, 16, 24);
        let opts = |bias| CodebookOptions { bias, ..CodebookOptions::default() };
        let on_grid = |m: &DMatrix<f64>, st: &Option<Storage>| {
            let Some(Storage::U8Affine { lo, step }) = *st else { panic!("not u8: {st:?}") };
            (0..m.nrows()).all(|r| {
                let v = m[(r, 24)] as f32;
                u8_affine_nearest(lo, step, v).to_bits() == v.to_bits()
            })
        };
        // Biases of the weights' scale: u8 costs under 1 % of the layer error.
        let mut m = w.clone();
        for c in 0..24 {
            for r in 0..16 {
                m[(r, c)] = (m[(r, c)] * 64.0).round() / 64.0;
            }
        }
        let base = m.clone();
        let mut auto = base.clone();
        let c = store_bias(&l, &mut auto, true, &opts(BiasStore::Auto));
        assert_eq!(c.label, "u8");
        assert!(on_grid(&auto, &c.storage));
        let mut f = base.clone();
        let c = store_bias(&l, &mut f, true, &opts(BiasStore::F16));
        assert_eq!((c.label, c.storage), ("f16", None));
        assert!((0..16).all(|r| f16::from_f64(f[(r, 24)]).to_f64() == f[(r, 24)]));
        let mut d = base.clone();
        assert_eq!(store_bias(&l, &mut d, false, &opts(BiasStore::F16)).label, "f32");
        assert_eq!(d, base);
        // One optimal bias 10^4 times the others: its grid step swamps the rest, Auto falls back.
        let mut target = w.clone();
        target[(3, 24)] = 1e4;
        let l = LayerLoss { b: &target * &l.hs[0], ..l };
        let mut wide = base.clone();
        wide[(3, 24)] = 1e4;
        let mut a = wide.clone();
        let c = store_bias(&l, &mut a, true, &opts(BiasStore::Auto));
        assert_eq!((c.label, c.storage), ("f16", None));
        let mut u = wide.clone();
        let c = store_bias(&l, &mut u, false, &opts(BiasStore::U8));
        assert_eq!(c.label, "u8");
        assert!(on_grid(&u, &c.storage));
        assert!(l.relative_error(&u) > l.relative_error(&a));
        // f32 codebook values: Auto keeps the plain choice.
        let mut p = base.clone();
        let c = store_bias(&l, &mut p, false, &CodebookOptions { f16_values: false, ..opts(BiasStore::Auto) });
        assert_eq!((c.label, p), ("f32", base));
    }
}
