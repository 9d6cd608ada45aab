//! The layer-wise problem behind structured pruning (ALGORITHMS.md §6.1–6.2): for each consumer
//! j of a channel space, f_j(W) = ½ E||W x − W0 x_dense||² over calibration positions, with x the
//! input from the already-compressed prefix (plus a constant 1, so a refit absorbs the mean of
//! removed channels into the bias) and x_dense the dense model's input. In matrix form
//! f_j(W) = ½ tr(W H Wᵀ) − tr(W Bᵀ) + const with H = E[x xᵀ] and B = W0 E[x_dense xᵀ].
//!
//! A group is one input channel across every consumer (its columns in each W_j). Selection keeps
//! exactly k groups: by the WGSEF prox-gradient ranking (FISTA on the convex f + λΦ_{k,d}, with
//! continuation in λ), or by a given score (magnitude baseline); the kept weights are then refit
//! by least squares.

use super::wgsef::{prox, Groups};
use anyhow::{bail, Result};
use nalgebra::DMatrix;

/// Accumulates H = E[x xᵀ] and C = E[x_dense xᵀ] from calibration rows (f64).
#[derive(Clone, Debug)]
pub struct Stats {
    /// E[x xᵀ], `d × d`.
    pub h: DMatrix<f64>,
    /// E[x_dense xᵀ], `d_dense × d`.
    pub c: DMatrix<f64>,
    n: f64,
}

impl Stats {
    /// Empty statistics for inputs of `d` values (`d_dense` for the dense model's input).
    pub fn new(d: usize, d_dense: usize) -> Stats {
        Stats { h: DMatrix::zeros(d, d), c: DMatrix::zeros(d_dense, d), n: 0.0 }
    }

    /// Adds rows: `x` is `rows × d` and `x_dense` is `rows × d_dense`, both row-major.
    pub fn add(&mut self, x: &[f64], x_dense: &[f64], rows: usize) {
        let d = self.h.nrows();
        let dd = self.c.nrows();
        if rows == 0 || x.len() != rows * d || x_dense.len() != rows * dd {
            return;
        }
        let xm = DMatrix::from_row_slice(rows, d, x);
        let xd = DMatrix::from_row_slice(rows, dd, x_dense);
        self.h.gemm_tr(1.0, &xm, &xm, 1.0);
        self.c.gemm_tr(1.0, &xd, &xm, 1.0);
        self.n += rows as f64;
    }

    /// The layer problem for the dense weights `w0` (`rows × d_dense`).
    pub fn problem(&self, w0: &DMatrix<f64>) -> Result<Problem> {
        if self.n == 0.0 {
            bail!("no calibration rows");
        }
        if w0.ncols() != self.c.nrows() {
            bail!("weights have {} columns but the dense input has {}", w0.ncols(), self.c.nrows());
        }
        let h = &self.h / self.n;
        let b = w0 * (&self.c / self.n);
        Ok(Problem { h, b, rows: w0.nrows() })
    }
}

/// f(W) = ½ tr(W H Wᵀ) − tr(W Bᵀ) for one consumer.
#[derive(Clone, Debug)]
pub struct Problem {
    /// `d × d`, symmetric positive semi-definite.
    pub h: DMatrix<f64>,
    /// `rows × d`.
    pub b: DMatrix<f64>,
    /// Output rows.
    pub rows: usize,
}

impl Problem {
    /// f(W).
    pub fn loss(&self, w: &DMatrix<f64>) -> f64 {
        0.5 * (w * &self.h).component_mul(w).sum() - w.component_mul(&self.b).sum()
    }

    /// ∇f(W) = W H − B.
    pub fn grad(&self, w: &DMatrix<f64>) -> DMatrix<f64> {
        w * &self.h - &self.b
    }

    /// The unconstrained least-squares solution's loss (the floor any selection sits above) and
    /// f(0) = 0: the relative error of W is (f(W) − f*) / (0 − f*).
    ///
    /// The denominator is the explainable output energy around its mean (½ E||W* x − E[W* x]||²,
    /// the last input being the constant 1), so a layer whose outputs are mostly a constant offset
    /// does not look robust.
    pub fn relative_error(&self, w: &DMatrix<f64>) -> f64 {
        let d = self.h.nrows();
        let all: Vec<usize> = (0..d).collect();
        let opt = self.refit(&all);
        let best = self.loss(&opt);
        let mean = &opt * self.h.column(d - 1);
        let denom = (-best - 0.5 * mean.norm_squared()).max(1e-12 * (-best).max(1e-300));
        ((self.loss(w) - best) / denom).max(0.0)
    }

    /// argmin f over W supported on `cols` (other columns zero): W_S = B_S (H_SS + δI)⁻¹ with
    /// δ = 1e-6 · mean diag H_SS (dampening for rank-deficient calibration data).
    pub fn refit(&self, cols: &[usize]) -> DMatrix<f64> {
        self.refit_toward(cols, None, 1e-6)
    }

    /// argmin over W supported on `cols` of f(W) + (δ/2)||W_S − P_S||², δ = `damp` · mean diag
    /// H_SS: W_S = (B_S + δ P_S)(H_SS + δI)⁻¹. The ridge pulls toward the prior `p` (the weights
    /// before the refit; zero when `None`), so directions the calibration data does not excite
    /// (a Dense layer with fewer samples than inputs) keep their trained values.
    pub fn refit_toward(&self, cols: &[usize], prior: Option<&DMatrix<f64>>, damp: f64) -> DMatrix<f64> {
        let d = self.h.nrows();
        let mut w = DMatrix::zeros(self.rows, d);
        if cols.is_empty() {
            return w;
        }
        let s = cols.len();
        let mut hs = DMatrix::from_fn(s, s, |i, j| self.h[(cols[i], cols[j])]);
        let delta = damp * (hs.trace() / s as f64).max(1e-12);
        for i in 0..s {
            hs[(i, i)] += delta;
        }
        let bs = DMatrix::from_fn(self.rows, s, |r, j| self.b[(r, cols[j])] + prior.map_or(0.0, |p| delta * p[(r, cols[j])]));
        // W_S H_SS = B_S  <=>  H_SS W_Sᵀ = B_Sᵀ (H symmetric).
        let sol = match hs.clone().cholesky() {
            Some(ch) => ch.solve(&bs.transpose()),
            None => hs.lu().solve(&bs.transpose()).unwrap_or_else(|| DMatrix::zeros(s, self.rows)),
        };
        for (j, &c) in cols.iter().enumerate() {
            for r in 0..self.rows {
                w[(r, c)] = sol[(j, r)];
            }
        }
        w
    }
}

impl Problem {
    /// argmin f(W) + (δ/2)||W − P||² over W whose row r is supported on `support[r]` (any other
    /// entry exactly zero), δ = `damp` · mean diag of each support's H_SS: rows are independent
    /// given their supports, so rows sharing a support are solved together (one factorisation per
    /// distinct support).
    pub fn refit_masked(&self, support: &[Vec<usize>], prior: &DMatrix<f64>, damp: f64) -> DMatrix<f64> {
        let d = self.h.nrows();
        let mut w = DMatrix::zeros(self.rows, d);
        let mut by_support: std::collections::BTreeMap<&[usize], Vec<usize>> = std::collections::BTreeMap::new();
        for (r, s) in support.iter().enumerate().take(self.rows) {
            by_support.entry(s.as_slice()).or_default().push(r);
        }
        for (cols, rows) in by_support {
            if cols.is_empty() {
                continue;
            }
            let s = cols.len();
            let mut hs = DMatrix::from_fn(s, s, |i, j| self.h[(cols[i], cols[j])]);
            let delta = damp * (hs.trace() / s as f64).max(1e-12);
            for i in 0..s {
                hs[(i, i)] += delta;
            }
            let bs = DMatrix::from_fn(s, rows.len(), |j, r| self.b[(rows[r], cols[j])] + delta * prior[(rows[r], cols[j])]);
            let sol = match hs.clone().cholesky() {
                Some(ch) => ch.solve(&bs),
                None => hs.lu().solve(&bs).unwrap_or_else(|| DMatrix::zeros(s, rows.len())),
            };
            for (j, &c) in cols.iter().enumerate() {
                for (ri, &r) in rows.iter().enumerate() {
                    w[(r, c)] = sol[(j, ri)];
                }
            }
        }
        w
    }
}

/// Largest eigenvalue of a symmetric PSD matrix (power iteration).
fn lambda_max(h: &DMatrix<f64>) -> f64 {
    let n = h.nrows();
    if n == 0 {
        return 0.0;
    }
    let mut v = DMatrix::from_element(n, 1, 1.0 / (n as f64).sqrt());
    let mut l = 0.0;
    for _ in 0..100 {
        let w = h * &v;
        let norm = w.norm();
        if norm == 0.0 {
            return 0.0;
        }
        let next = norm;
        v = w / norm;
        if (next - l).abs() <= 1e-9 * next {
            l = next;
            break;
        }
        l = next;
    }
    l
}

/// Channel `g`'s columns in each consumer: `cols[j][g]`.
pub type ChannelColumns = Vec<Vec<Vec<usize>>>;

/// Settings of the envelope ranking.
#[derive(Clone, Debug)]
pub struct EnvelopeOptions {
    /// Continuation schedule of t = step·λ·L (dimensionless; ALGORITHMS.md §2.3).
    pub schedule: Vec<f64>,
    /// FISTA iterations per stage at most.
    pub max_iter: usize,
    /// Stop a stage when ||ΔW|| ≤ tol·||W0||.
    pub tol: f64,
}

impl Default for EnvelopeOptions {
    fn default() -> Self {
        EnvelopeOptions { schedule: vec![0.01, 0.03, 0.1, 0.3, 1.0, 3.0], max_iter: 300, tol: 1e-7 }
    }
}

/// Which groups to keep and how the envelope ranked them.
#[derive(Clone, Debug)]
pub struct Selection {
    /// Kept group indices, ascending; exactly k of them.
    pub keep: Vec<usize>,
    /// Score per group (higher = more important).
    pub score: Vec<f64>,
    /// The scores at each stage of the continuation path (the last one is `score`).
    pub path: Vec<Vec<f64>>,
}

/// Keeps the k groups with the highest `score` (ties: lower index first).
pub fn top_k(score: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[b].partial_cmp(&score[a]).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b)));
    let mut keep: Vec<usize> = idx.into_iter().take(k).collect();
    keep.sort_unstable();
    keep
}

/// The WGSEF prox-gradient ranking of `groups` channels over all consumers, from the dense
/// weights `w0[j]` (`rows_j × d_j`, the inputs' layout of `problems[j]`): FISTA on
/// Σ_j f_j(W_j) + λ Φ_{k,d}(W) for each λ of the schedule (warm-started), then the score of a
/// group is its multiplier u at the last stage, ties broken by r / sqrt(d) (ALGORITHMS.md §2.6:
/// the envelope ranks; exactly k are then kept).
pub fn envelope_select(
    problems: &[Problem],
    w0: &[DMatrix<f64>],
    cols: &ChannelColumns,
    d: &[f64],
    k: usize,
    opts: &EnvelopeOptions,
) -> Result<Selection> {
    let m = d.len();
    if problems.len() != w0.len() || cols.len() != problems.len() || cols.iter().any(|c| c.len() != m) {
        bail!("inconsistent layer problem: {} problems, {} weights, {} column maps", problems.len(), w0.len(), cols.len());
    }
    if k == 0 || k > m {
        bail!("cannot keep {k} of {m} channels");
    }
    // One flat vector over all consumers; group g = its columns in every consumer.
    let mut offsets = Vec::with_capacity(problems.len());
    let mut n = 0;
    for w in w0 {
        offsets.push(n);
        n += w.len();
    }
    let mut members = vec![Vec::new(); m];
    for (j, w) in w0.iter().enumerate() {
        for (g, cs) in cols[j].iter().enumerate() {
            for &c in cs {
                for r in 0..w.nrows() {
                    // nalgebra is column-major: element (r, c) at c * nrows + r.
                    members[g].push(offsets[j] + c * w.nrows() + r);
                }
            }
        }
    }
    envelope_rank(problems, w0, &Groups { members }, d, k, opts)
}

/// The WGSEF prox-gradient ranking of arbitrary `groups` of the flat vector of every consumer's
/// weights (consumer j's `w0[j]` column-major, after those before it): FISTA on
/// Σ_j f_j(W_j) + λ Φ_{k,d}(W) for each λ of the schedule (warm-started); the score of a group is
/// its multiplier u at the last stage, ties broken by r / sqrt(d) (ALGORITHMS.md §2.6). Elements
/// in no group (the bias column) are not penalised.
pub fn envelope_rank(
    problems: &[Problem],
    w0: &[DMatrix<f64>],
    groups: &Groups,
    d: &[f64],
    k: usize,
    opts: &EnvelopeOptions,
) -> Result<Selection> {
    let m = d.len();
    if groups.len() != m || problems.len() != w0.len() {
        bail!("inconsistent layer problem: {} groups, {} weights", groups.len(), m);
    }
    if k == 0 || k > m {
        bail!("cannot keep {k} of {m} groups");
    }
    let mut offsets = Vec::with_capacity(problems.len());
    let mut n = 0;
    for w in w0 {
        offsets.push(n);
        n += w.len();
    }
    let lip = problems.iter().map(|p| lambda_max(&p.h)).fold(0.0, f64::max).max(1e-300);
    let alpha = 1.0 / lip;
    let flat = |ws: &[DMatrix<f64>]| -> Vec<f64> { ws.iter().flat_map(|w| w.as_slice().to_vec()).collect() };
    let unflat = |x: &[f64]| -> Vec<DMatrix<f64>> {
        w0.iter().zip(&offsets).map(|(w, &o)| DMatrix::from_column_slice(w.nrows(), w.ncols(), &x[o..o + w.len()])).collect()
    };
    let norm0 = flat(w0).iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
    let mut x = flat(w0);
    let mut u = vec![1.0; m];
    let mut path = Vec::with_capacity(opts.schedule.len());
    let score_of = |x: &[f64], u: &[f64]| -> Vec<f64> {
        let r = groups.norms(x);
        (0..m).map(|g| u[g] + 1e-3 * (r[g] / d[g].sqrt()) / (1.0 + r[g] / d[g].sqrt())).collect()
    };
    for &t in &opts.schedule {
        let mut v = x.clone();
        let mut tk = 1.0f64;
        for _ in 0..opts.max_iter {
            let vw = unflat(&v);
            let mut y = v.clone();
            for (j, p) in problems.iter().enumerate() {
                let g = p.grad(&vw[j]);
                for (yi, gi) in y[offsets[j]..offsets[j] + g.len()].iter_mut().zip(g.as_slice()) {
                    *yi -= alpha * gi;
                }
            }
            // prox of alpha·λ·Φ with alpha·λ = t / L · L = t (λ = t·L).
            let info = prox(&mut y, groups, d, t, k);
            u = info.u;
            let tn = 0.5 * (1.0 + (1.0 + 4.0 * tk * tk).sqrt());
            let diff = y.iter().zip(&x).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
            v = y.iter().zip(&x).map(|(yn, xo)| yn + ((tk - 1.0) / tn) * (yn - xo)).collect();
            x = y;
            tk = tn;
            if diff <= opts.tol * norm0 {
                break;
            }
        }
        path.push(score_of(&x, &u));
    }
    let score = path.last().cloned().unwrap_or_else(|| score_of(&x, &u));
    Ok(Selection { keep: top_k(&score, k), score, path })
}

/// Dampening of the refits, relative to the mean diagonal of H (as SparseGPT's 0.01).
pub const REFIT_DAMP: f64 = 0.01;

/// Refits every consumer on the kept channels plus the `always` columns (the bias column),
/// pulled toward `priors` (the consumers' current weights) by `damp` (e.g. [`REFIT_DAMP`]): returns the new
/// weights in the same (unreduced) layout, with removed columns exactly zero.
pub fn refit_all(
    problems: &[Problem],
    cols: &ChannelColumns,
    keep: &[usize],
    always: &[Vec<usize>],
    priors: &[DMatrix<f64>],
    damp: f64,
) -> Vec<DMatrix<f64>> {
    problems
        .iter()
        .enumerate()
        .map(|(j, p)| {
            let mut c: Vec<usize> = keep.iter().flat_map(|&g| cols[j][g].iter().copied()).collect();
            c.extend(always.get(j).into_iter().flatten().copied());
            c.sort_unstable();
            c.dedup();
            p.refit_toward(&c, priors.get(j), damp)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        }
    }

    /// A consumer of `m` channels of `per` columns each (plus a bias column), whose dense
    /// weights only use the `true_support` channels strongly, with correlated inputs.
    fn synthetic(m: usize, per: usize, rows: usize, true_support: &[usize], seed: u64) -> (Problem, DMatrix<f64>, ChannelColumns) {
        let mut rng = Rng(seed);
        let d = m * per + 1;
        let n = 400;
        let mut st = Stats::new(d, d);
        let mut x = vec![0.0; n * d];
        for s in 0..n {
            let common = rng.next();
            for i in 0..d - 1 {
                x[s * d + i] = 0.6 * rng.next() + 0.4 * common + 0.3;
            }
            x[s * d + d - 1] = 1.0;
        }
        st.add(&x, &x, n);
        let w0 = DMatrix::from_fn(rows, d, |_, c| {
            let ch = c / per;
            if c == d - 1 {
                0.5
            } else if true_support.contains(&ch) {
                1.0 + 0.5 * (ch as f64).sin()
            } else {
                0.02 * ((c * 7) as f64).cos()
            }
        });
        let p = st.problem(&w0).unwrap();
        let cols = vec![(0..m).map(|g| (g * per..(g + 1) * per).collect()).collect()];
        (p, w0, cols)
    }

    #[test]
    fn the_envelope_keeps_exactly_k_and_finds_the_true_support() {
        let support = [1, 4, 6];
        let (p, w0, cols) = synthetic(8, 3, 4, &support, 7);
        let d = vec![1.0; 8];
        let sel = envelope_select(std::slice::from_ref(&p), std::slice::from_ref(&w0), &cols, &d, 3, &EnvelopeOptions::default()).unwrap();
        assert_eq!(sel.keep, support.to_vec());
        assert_eq!(sel.keep.len(), 3);
    }

    #[test]
    fn refit_never_loses_to_keeping_the_dense_weights_and_absorbs_removed_means() {
        let (p, w0, cols) = synthetic(8, 3, 4, &[0, 2, 5], 11);
        let keep = vec![0, 2, 5];
        let bias = vec![vec![24]];
        let w = refit_all(std::slice::from_ref(&p), &cols, &keep, &bias, std::slice::from_ref(&w0), REFIT_DAMP).remove(0);
        // Removed columns are exactly zero.
        for g in [1, 3, 4, 6, 7] {
            for &c in &cols[0][g] {
                assert!(w.column(c).iter().all(|&v| v == 0.0));
            }
        }
        // Keeping the dense weights on the support (no refit) is worse.
        let mut naive = w0.clone();
        for g in [1, 3, 4, 6, 7] {
            for &c in &cols[0][g] {
                naive.column_mut(c).fill(0.0);
            }
        }
        assert!(p.loss(&w) <= p.loss(&naive) + 1e-12);
        // The bias moved to compensate the removed channels' (non-zero) mean contribution.
        assert!((w[(0, 24)] - w0[(0, 24)]).abs() > 1e-3);
        // With every column kept, the refit reproduces the dense weights' loss (the optimum).
        let all: Vec<usize> = (0..25).collect();
        assert!(p.loss(&p.refit(&all)) <= p.loss(&w0) + 1e-6 * p.loss(&w0).abs());
        assert!(p.relative_error(&w) > 0.0 && p.relative_error(&p.refit(&all)) < 1e-6);
    }

    #[test]
    fn heavier_channels_lose_ties() {
        // Two identical channels: the one with the larger cost weight is dropped.
        let (p, w0, cols) = synthetic(2, 2, 3, &[0, 1], 5);
        let sel = envelope_select(std::slice::from_ref(&p), std::slice::from_ref(&w0), &cols, &[1.0, 4.0], 1, &EnvelopeOptions::default())
            .unwrap();
        assert_eq!(sel.keep, vec![0]);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let (p, w0, cols) = synthetic(4, 1, 2, &[0], 3);
        let o = EnvelopeOptions::default();
        assert!(envelope_select(std::slice::from_ref(&p), std::slice::from_ref(&w0), &cols, &[1.0; 4], 0, &o).is_err());
        assert!(envelope_select(std::slice::from_ref(&p), std::slice::from_ref(&w0), &cols, &[1.0; 4], 5, &o).is_err());
        assert!(envelope_select(std::slice::from_ref(&p), &[], &cols, &[1.0; 4], 2, &o).is_err());
        assert!(Stats::new(3, 3).problem(&DMatrix::zeros(2, 3)).is_err());
    }
}
