//! In-layer sparsity (ALGORITHMS.md §6.1–6.3 with the groups inside one weight matrix): a
//! `shape` group is one kernel position across all filters (a column of the layer matrix
//! `[rows, C·kh·kw]`), a `block:RxC` group an R×C tile of it, a `weight` group a single entry.
//!
//! Per Conv (group 1) and Dense layer, in graph order: the layer problem from the
//! already-sparsified prefix against the dense model's outputs; the groups ranked by the WGSEF
//! prox-gradient (group weights = their share of the layer's MACs) or by magnitude; exactly k
//! groups kept; every row refit by least squares on its kept columns plus the bias. A layer is
//! then stored block-sparse when the measured break-even table says the sparse kernel is faster
//! at its density on the target, dense (with exact zeros) otherwise.

use super::calib::{activations, split_samples};
use super::layer::{envelope_rank, top_k, EnvelopeOptions, Problem, REFIT_DAMP};
use super::prune::{greedy, layer_matrix, layer_problem, set_layer_matrix, Amount, Curve, Method};
use super::wgsef::Groups;
use crate::ir::{Graph, Storage};
use anyhow::{bail, Context, Result};
use nalgebra::DMatrix;
use sprig_runtime::Op;

/// The group pattern inside a layer matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Pattern {
    /// One column (a kernel position `(c, ky, kx)`, or an input feature) across every row.
    Shape,
    /// R×C tiles (edge tiles are smaller).
    Block(usize, usize),
    /// Single weights.
    Weight,
}

impl Pattern {
    /// The tile of a `rows`-row matrix.
    pub fn tile(self, rows: usize) -> (usize, usize) {
        match self {
            Pattern::Shape => (rows.max(1), 1),
            Pattern::Block(r, c) => (r.max(1), c.max(1)),
            Pattern::Weight => (1, 1),
        }
    }

    /// CLI spelling.
    pub fn name(self) -> String {
        match self {
            Pattern::Shape => "shape".into(),
            Pattern::Block(r, c) => format!("block:{r}x{c}"),
            Pattern::Weight => "weight".into(),
        }
    }
}

/// How a layer's weights are stored after sparsification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum StorageChoice {
    /// Block-sparse where the break-even table predicts a speedup, dense otherwise.
    Auto,
    /// Always block-sparse.
    Sparse,
    /// Always dense (zeros stored).
    Dense,
}

/// Settings of [`sparsify`].
#[derive(Clone, Debug)]
pub struct SparsifyOptions {
    /// Group pattern.
    pub pattern: Pattern,
    /// Ranking method.
    pub method: Method,
    /// Fraction of groups removed per layer, or a global MAC / parameter budget (counted on
    /// non-zero weights).
    pub amount: Amount,
    /// Calibration rows per layer at most.
    pub max_rows: usize,
    /// Envelope settings.
    pub envelope: EnvelopeOptions,
    /// Storage decision.
    pub storage: StorageChoice,
    /// Measured dense-vs-sparse costs for the target (used by `Auto`).
    pub table: Option<BreakEvenTable>,
}

impl Default for SparsifyOptions {
    fn default() -> Self {
        SparsifyOptions {
            pattern: Pattern::Weight,
            method: Method::Envelope,
            amount: Amount::Fraction(0.5),
            max_rows: 20_000,
            envelope: EnvelopeOptions { schedule: vec![0.001, 0.01, 0.03, 0.1, 0.3, 1.0], max_iter: 150, tol: 1e-6 },
            storage: StorageChoice::Auto,
            table: None,
        }
    }
}

/// What happened to one layer.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SparseLayer {
    /// Node name.
    pub node: String,
    /// Kernel family in the break-even table (`dense`, `conv1x1`, `conv`, `conv_strided`).
    pub kind: String,
    /// Groups before and kept.
    pub groups: usize,
    /// Groups kept (exactly this many may hold non-zero weights).
    pub kept: usize,
    /// Fraction of the weights that are non-zero after the refit.
    pub density: f64,
    /// Relative reconstruction error of the layer after the refit (0 = exact).
    pub relative_error: f64,
    /// Storage chosen: `dense` or `bsr RxC`.
    pub storage: String,
    /// Sparse-over-dense time ratio the table predicts at this density (None: not measured).
    pub predicted_time_ratio: Option<f64>,
}

/// The result of [`sparsify`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct SparsifyReport {
    /// Method.
    pub method: Method,
    /// Pattern (CLI spelling).
    pub pattern: String,
    /// Per sparsified layer.
    pub layers: Vec<SparseLayer>,
    /// Layers left alone, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// The break-even family of a weight layer.
pub fn kernel_family(g: &Graph, n: usize) -> &'static str {
    let node = &g.nodes[n];
    match node.op {
        Op::Dense { .. } => "dense",
        // Strided convolutions are their own family: the table measures stride 1, and the
        // scatter kernel's strided loads make them much slower per stored weight.
        Op::Conv(a) if a.stride != [1, 1] => "conv_strided",
        Op::Conv(_) => {
            let w = &g.tensors[node.inputs[1]].shape;
            if w.iter().skip(2).product::<usize>() == 1 {
                "conv1x1"
            } else {
                "conv"
            }
        }
        _ => "other",
    }
}

/// Measured sparse / dense kernel times on one target (produced by `sprig-sparse-table`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BreakEvenTable {
    /// Target the figures were measured on (e.g. `x86_64`).
    pub target: String,
    /// One row per kernel family and tile.
    pub entries: Vec<BreakEvenEntry>,
    /// Codebook Dense kernels against dense f32, per index width (the `dense` family's shape).
    #[serde(default)]
    pub codebook: Vec<CodebookCost>,
    /// Input-sparse kernels against dense: family `dense` or `conv1x1`, tile `[1, 1]`, density
    /// = fraction of non-zero inputs, one entry per measured layer shape (`outputs` set).
    #[serde(default)]
    pub input_sparse: Vec<BreakEvenEntry>,
}

/// Codebook Dense kernel times relative to dense f32 at one index width.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CodebookCost {
    /// Bits per index.
    pub bits: u8,
    /// Decode-and-dot kernel time / dense f32 time.
    pub decode_ratio: f64,
    /// Lookup-table kernel time / dense f32 time.
    pub lut_ratio: f64,
}

/// One kernel family and tile: sparse time / dense time at each measured density.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BreakEvenEntry {
    /// `dense`, `conv1x1` or `conv`.
    pub family: String,
    /// Tile: `[br, bc]`; `[0, 1]` stands for a whole column (shape groups).
    pub tile: [usize; 2],
    /// Densities measured (ascending, fraction of stored weights).
    pub density: Vec<f64>,
    /// Sparse time / dense time at each density (median of repeated runs).
    pub ratio: Vec<f64>,
    /// Input-sparse entries: outputs per position of the measured layer (0 elsewhere).
    #[serde(default)]
    pub outputs: usize,
    /// Input-sparse entries: output positions of the measured layer (1 for Dense; 0 elsewhere).
    #[serde(default)]
    pub positions: usize,
}

impl BreakEvenEntry {
    /// The ratio at `density`, linearly interpolated (clamped to the measured range).
    pub fn ratio_at(&self, density: f64) -> Option<f64> {
        let (d, r) = (&self.density, &self.ratio);
        if d.is_empty() || d.len() != r.len() {
            return None;
        }
        if density <= d[0] {
            return Some(r[0]);
        }
        for i in 1..d.len() {
            if density <= d[i] {
                let t = (density - d[i - 1]) / (d[i] - d[i - 1]).max(1e-12);
                return Some(r[i - 1] + t * (r[i] - r[i - 1]));
            }
        }
        r.last().copied()
    }

    /// The largest density at which sparse is still faster (ratio < 1), interpolated.
    pub fn break_even(&self) -> f64 {
        let (d, r) = (&self.density, &self.ratio);
        let mut best = 0.0;
        for i in 0..d.len().min(r.len()) {
            if r[i] < 1.0 {
                best = d[i];
                if let (Some(&d1), Some(&r1)) = (d.get(i + 1), r.get(i + 1)) {
                    if r1 >= 1.0 {
                        best = d[i] + (1.0 - r[i]) / (r1 - r[i]).max(1e-12) * (d1 - d[i]);
                    }
                }
            }
        }
        best
    }
}

/// Tile key of the table for `pattern` (shape groups are whole columns whatever the row count).
pub fn table_tile(pattern: Pattern) -> [usize; 2] {
    match pattern {
        Pattern::Shape => [0, 1],
        Pattern::Block(r, c) => [r, c],
        Pattern::Weight => [1, 1],
    }
}

impl BreakEvenTable {
    /// The table shipped with sprig for the machine running the tool, if measured.
    pub fn builtin() -> Option<BreakEvenTable> {
        let all: Vec<BreakEvenTable> = serde_json::from_str(include_str!("../../data/sparse_table.json")).ok()?;
        all.into_iter().find(|t| t.target == std::env::consts::ARCH)
    }

    /// Whether the lookup-table kernel measured faster than decoding at the measured width
    /// nearest to `bits` (`None` when nothing was measured).
    pub fn codebook_lut(&self, bits: u8) -> Option<bool> {
        self.codebook.iter().min_by_key(|c| (c.bits as i32 - bits as i32).abs()).map(|c| c.lut_ratio < c.decode_ratio)
    }

    /// Predicted input-sparse time / dense time for a `family` (`dense` or `conv1x1`) layer with
    /// `outputs` outputs at each of `positions` positions whose inputs are non-zero with
    /// probability `density`: the measured shape nearest in output count and positions (log
    /// scale; the worst of ties), `None` when the family was not measured. The kernel's
    /// per-input cost is one pass over the outputs, so the output count sets the overhead's
    /// share; positions set how well the dense kernel amortises its own.
    pub fn input_sparse_ratio(&self, family: &str, outputs: usize, positions: usize, density: f64) -> Option<f64> {
        let ln = |v: usize| (v.max(1) as f64).ln();
        let dist = |e: &BreakEvenEntry| (ln(e.outputs) - ln(outputs)).abs() + (ln(e.positions) - ln(positions)).abs();
        let fam = self.input_sparse.iter().filter(|e| e.family == family);
        let best = fam.clone().map(dist).min_by(|a, b| a.total_cmp(b))?;
        fam.filter(|e| dist(e) <= best + 1e-9).filter_map(|e| e.ratio_at(density)).max_by(|a, b| a.total_cmp(b))
    }

    /// The entry for `family` and `pattern`.
    pub fn entry(&self, family: &str, pattern: Pattern) -> Option<&BreakEvenEntry> {
        let tile = table_tile(pattern);
        self.entries.iter().find(|e| e.family == family && e.tile == tile)
    }
}

/// The tiles of a `rows × width` matrix: group g holds the entries `(r, c)` of tile g, tiles in
/// row-major order of the tile grid.
pub fn tiles(rows: usize, width: usize, pattern: Pattern) -> Vec<Vec<(usize, usize)>> {
    let (br, bc) = pattern.tile(rows);
    let mut out = Vec::new();
    for r0 in (0..rows).step_by(br) {
        for c0 in (0..width).step_by(bc) {
            let mut g = Vec::with_capacity(br * bc);
            for r in r0..(r0 + br).min(rows) {
                for c in c0..(c0 + bc).min(width) {
                    g.push((r, c));
                }
            }
            out.push(g);
        }
    }
    out
}

/// A layer's problem on every calibration sample, and on a fit / held-out split of them (every
/// fourth sample held out when there are at least 8): choices that the fit data alone cannot make
/// honestly (the path stage, the ridge) are made on the held-out samples.
pub(super) struct Split {
    pub all: Problem,
    pub fit: Problem,
    pub val: Problem,
}

impl Split {
    /// The split problems of weight node `n` of `cur`, with dense targets from `dense`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cur: &Graph,
        dense: &Graph,
        rows: &[usize],
        n: usize,
        acts: &[Vec<f32>],
        acts_dense: &[Vec<f32>],
        max_rows: usize,
    ) -> Result<Split> {
        let all = layer_problem(cur, dense, rows, n, acts, acts_dense, max_rows)?;
        let (Some((fa, va)), Some((fd, vd))) = (split_samples(acts), split_samples(acts_dense)) else {
            return Ok(Split { fit: all.clone(), val: all.clone(), all });
        };
        let fit = layer_problem(cur, dense, rows, n, &fa, &fd, max_rows)?;
        let val = layer_problem(cur, dense, rows, n, &va, &vd, max_rows)?;
        Ok(Split { all, fit, val })
    }
}

/// Ridge strengths tried for the refit (relative to the mean diagonal of H, toward the trained
/// weights); the one with the least held-out loss is used.
pub(super) const DAMPS: [f64; 4] = [REFIT_DAMP, 0.1, 1.0, 10.0];

/// Score per tile (higher = keep) for the layer matrix `w` (`rows × (width + 1)`, bias last).
/// The envelope ranking is taken along its continuation path (ALGORITHMS.md §2.6): FISTA on the
/// fit samples; at each λ the top-k support is refit on them, and the stage whose refit has the
/// least loss on the held-out samples wins.
fn rank_tiles(sp: &Split, w: &DMatrix<f64>, tl: &[Vec<(usize, usize)>], k: usize, opts: &SparsifyOptions) -> Result<Vec<f64>> {
    match opts.method {
        Method::Envelope => {
            let rows = w.nrows();
            let groups = Groups { members: tl.iter().map(|g| g.iter().map(|&(r, c)| c * rows + r).collect()).collect() };
            let full = tl.iter().map(Vec::len).max().unwrap_or(1).max(1) as f64;
            // Group weight = the tile's share of the layer's MACs (edge tiles are cheaper).
            let d: Vec<f64> = tl.iter().map(|g| g.len() as f64 / full).collect();
            let k = k.clamp(1, tl.len());
            let sel = envelope_rank(std::slice::from_ref(&sp.fit), std::slice::from_ref(w), &groups, &d, k, &opts.envelope)?;
            let mut best = (f64::INFINITY, sel.score.clone());
            for s in sel.path {
                let loss = sp.val.loss(&apply(&sp.fit, w, tl, &top_k(&s, k), Some(REFIT_DAMP)));
                if loss < best.0 {
                    best = (loss, s);
                }
            }
            Ok(best.1)
        }
        Method::Magnitude | Method::MagnitudeNoRefit => Ok(tl.iter().map(|g| g.iter().map(|&(r, c)| w[(r, c)].abs()).sum()).collect()),
    }
}

/// The weights after keeping tiles `keep` (same procedure for every ranking): refit on all
/// samples with the ridge of [`DAMPS`] whose fit-sample refit has the least held-out loss, or
/// `start` masked for the no-refit baseline.
fn refit_kept(sp: &Split, start: &DMatrix<f64>, tl: &[Vec<(usize, usize)>], keep: &[usize], refit: bool) -> DMatrix<f64> {
    if !refit {
        return apply(&sp.all, start, tl, keep, None);
    }
    let damp = DAMPS
        .iter()
        .map(|&dm| (sp.val.loss(&apply(&sp.fit, start, tl, keep, Some(dm))), dm))
        .min_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal))
        .map_or(REFIT_DAMP, |x| x.1);
    apply(&sp.all, start, tl, keep, Some(damp))
}

/// The weights after keeping tiles `keep`: refit on each row's kept columns plus the bias with
/// ridge `damp` toward `start`, or (`None`) `start` masked.
fn apply(problem: &Problem, start: &DMatrix<f64>, tl: &[Vec<(usize, usize)>], keep: &[usize], damp: Option<f64>) -> DMatrix<f64> {
    let (rows, width) = (start.nrows(), start.ncols() - 1);
    let mut mask = vec![false; rows * width];
    for &g in keep {
        for &(r, c) in &tl[g] {
            mask[r * width + c] = true;
        }
    }
    let Some(damp) = damp else {
        let mut w = start.clone();
        for r in 0..rows {
            for c in 0..width {
                if !mask[r * width + c] {
                    w[(r, c)] = 0.0;
                }
            }
        }
        return w;
    };
    let support: Vec<Vec<usize>> = (0..rows).map(|r| (0..width).filter(|&c| mask[r * width + c]).chain([width]).collect()).collect();
    problem.refit_masked(&support, start, damp)
}

/// Weight layers `sparsify` handles: Dense, and Conv with one group.
fn eligible(g: &Graph, n: usize) -> Result<(), String> {
    let node = &g.nodes[n];
    match &node.op {
        Op::Dense { .. } => {}
        Op::Conv(a) if a.group == 1 => {}
        Op::Conv(_) => return Err("grouped / depthwise convolution (prune it with filter groups)".into()),
        _ => return Err("not a weight layer".into()),
    }
    if g.tensors[node.inputs[1]].data.is_none() {
        return Err("weights are not constant".into());
    }
    Ok(())
}

/// MACs and weight parameters of the layer's non-zero weights.
fn nnz_cost(g: &Graph, n: usize) -> (f64, f64) {
    let node = &g.nodes[n];
    let w = g.tensors[node.inputs[1]].data.as_deref().unwrap_or(&[]);
    let nnz = w.iter().filter(|&&v| v != 0.0).count() as f64;
    let rows = g.tensors[node.inputs[1]].shape[0].max(1);
    let positions = g.tensors[node.outputs[0]].numel() / rows;
    (nnz * positions as f64, nnz)
}

/// Sparsifies every eligible layer of `g` with calibration samples `calib`.
pub fn sparsify(g: &Graph, calib: &[&[f32]], opts: &SparsifyOptions) -> Result<(Graph, SparsifyReport)> {
    if calib.is_empty() {
        bail!("no calibration samples");
    }
    let layers: Vec<usize> = (0..g.nodes.len()).filter(|&n| eligible(g, n).is_ok()).collect();
    let mut report = SparsifyReport { method: opts.method, pattern: opts.pattern.name(), layers: Vec::new(), skipped: Vec::new() };
    for n in 0..g.nodes.len() {
        if let (Err(why), true) = (eligible(g, n), matches!(g.nodes[n].op, Op::Conv(_) | Op::Dense { .. })) {
            report.skipped.push((g.nodes[n].name.clone(), why));
        }
    }
    // Groups kept per layer.
    let keep_of: Vec<Option<usize>> = match opts.amount {
        Amount::Fraction(f) => {
            if !(0.0..1.0).contains(&f) {
                bail!("prune fraction {f} is outside [0, 1)");
            }
            (0..g.nodes.len())
                .map(|n| {
                    layers.contains(&n).then(|| {
                        let (rows, width) = dims(g, n);
                        let m = tiles(rows, width, opts.pattern).len();
                        ((m as f64) * (1.0 - f)).round().max(1.0) as usize
                    })
                })
                .collect()
        }
        Amount::Macs(f) | Amount::Params(f) => {
            if !(f > 0.0 && f <= 1.0) {
                bail!("the budget {f} (fraction kept) is outside (0, 1]");
            }
            allocate(g, &layers, calib, opts, f)?
        }
        Amount::Arena(_) => bail!("an arena budget applies to filter pruning (in-layer groups do not shrink activations)"),
    };
    let dense = g.clone();
    let mut cur = g.clone();
    let all_rows = super::prune::all_rows(g);
    for &n in &layers {
        let Some(k) = keep_of[n] else { continue };
        let (rows, width) = dims(&cur, n);
        let tl = tiles(rows, width, opts.pattern);
        let name = cur.nodes[n].name.clone();
        let input = cur.nodes[n].inputs[0];
        let acts = activations(&cur, &[input], calib).with_context(|| format!("calibrating `{name}`"))?;
        let acts_dense = activations(&dense, &[input], calib).with_context(|| format!("calibrating `{name}` (dense)"))?;
        let sp = Split::new(&cur, &dense, &all_rows[n], n, &acts[0], &acts_dense[0], opts.max_rows)?;
        let start = layer_matrix(&cur, n)?;
        let k = k.clamp(1, tl.len());
        let w = if k < tl.len() {
            let keep = top_k(&rank_tiles(&sp, &start, &tl, k, opts)?, k);
            refit_kept(&sp, &start, &tl, &keep, opts.method != Method::MagnitudeNoRefit)
        } else {
            start.clone()
        };
        set_layer_matrix(&mut cur, n, &w);
        let wt = cur.nodes[n].inputs[1];
        let (br, bc) = opts.pattern.tile(rows);
        let (nnz, numel, stored) = {
            let values = cur.tensors[wt].data.as_deref().unwrap_or(&[]);
            (values.iter().filter(|&&v| v != 0.0).count(), values.len(), stored_fraction(values, rows, width, br, bc))
        };
        let family = kernel_family(&cur, n);
        let ratio = opts.table.as_ref().and_then(|t| t.entry(family, opts.pattern)).and_then(|e| e.ratio_at(stored));
        // The format's limits (docs/FORMAT.md): blocks up to 65535 rows, 65536 block columns.
        let fits = br <= 65535 && width.div_ceil(bc) <= 65536;
        let sparse = fits
            && match opts.storage {
                StorageChoice::Sparse => true,
                StorageChoice::Dense => false,
                StorageChoice::Auto => ratio.is_some_and(|r| r < 1.0),
            };
        cur.tensors[wt].storage = if sparse { Storage::Bsr { br, bc } } else { Storage::Dense };
        report.layers.push(SparseLayer {
            node: name,
            kind: family.into(),
            groups: tl.len(),
            kept: k,
            density: nnz as f64 / numel.max(1) as f64,
            relative_error: sp.all.relative_error(&w),
            storage: if sparse { format!("bsr {br}x{bc}") } else { "dense".into() },
            predicted_time_ratio: ratio,
        });
    }
    Ok((cur, report))
}

/// Rows and width (`C·kh·kw` or K) of weight layer `n`.
fn dims(g: &Graph, n: usize) -> (usize, usize) {
    let t = &g.tensors[g.nodes[n].inputs[1]];
    let rows = t.shape[0].max(1);
    (rows, t.numel() / rows)
}

/// Fraction of the weights inside stored (not all-zero) `br × bc` tiles.
pub fn stored_fraction(values: &[f32], rows: usize, width: usize, br: usize, bc: usize) -> f64 {
    let mut stored = 0usize;
    for r0 in (0..rows).step_by(br.max(1)) {
        for c0 in (0..width).step_by(bc.max(1)) {
            let any = (r0..(r0 + br).min(rows)).any(|r| (c0..(c0 + bc).min(width)).any(|c| values[r * width + c] != 0.0));
            if any {
                stored += br * bc;
            }
        }
    }
    stored as f64 / (rows * width).max(1) as f64
}

/// Groups kept per layer under a global budget: per-layer error curves at 8 levels (the top j/8
/// of the groups by the method's ranking, refit), then the greedy least-error-per-cost descent
/// shared with channel pruning.
fn allocate(g: &Graph, layers: &[usize], calib: &[&[f32]], opts: &SparsifyOptions, frac: f64) -> Result<Vec<Option<usize>>> {
    const LEVELS: usize = 8;
    let by_macs = matches!(opts.amount, Amount::Macs(_));
    let all_rows = super::prune::all_rows(g);
    let mut total = 0.0;
    for n in 0..g.nodes.len() {
        if matches!(g.nodes[n].op, Op::Conv(_) | Op::Dense { .. }) && g.tensors[g.nodes[n].inputs[1]].data.is_some() {
            let (m, p) = nnz_cost(g, n);
            total += if by_macs { m } else { p };
        }
    }
    let budget = frac * total;
    let mut curves = Vec::new();
    let mut counts = Vec::new();
    for &n in layers {
        let (rows, width) = dims(g, n);
        let tl = tiles(rows, width, opts.pattern);
        let m = tl.len();
        let acts = activations(g, &[g.nodes[n].inputs[0]], calib)?;
        let sp = Split::new(g, g, &all_rows[n], n, &acts[0], &acts[0], opts.max_rows)?;
        let start = layer_matrix(g, n)?;
        let score = rank_tiles(&sp, &start, &tl, (m / 2).max(1), opts)?;
        let (mc, pc) = nnz_cost(g, n);
        let unit = if by_macs { mc } else { pc } / (rows * width).max(1) as f64;
        let (mut cost, mut err, mut cnt) = (Vec::new(), Vec::new(), Vec::new());
        for j in 1..=LEVELS {
            let k = (m * j).div_ceil(LEVELS).max(1);
            let keep = top_k(&score, k);
            let size: usize = keep.iter().map(|&i| tl[i].len()).sum();
            let e = if k == m {
                0.0
            } else {
                let damp = (opts.method != Method::MagnitudeNoRefit).then_some(REFIT_DAMP);
                sp.all.relative_error(&apply(&sp.all, &start, &tl, &keep, damp))
            };
            cost.push(size as f64 * unit);
            err.push(e);
            cnt.push(k);
        }
        curves.push(Curve { cost, err, level: LEVELS - 1 });
        counts.push((n, cnt));
    }
    greedy(&mut curves, total, budget);
    let mut out = vec![None; g.nodes.len()];
    for (c, (n, cnt)) in curves.iter().zip(counts) {
        out[n] = Some(cnt[c.level]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_matrix_once_with_ragged_edges() {
        for (rows, width, p) in
            [(5, 7, Pattern::Block(2, 3)), (4, 9, Pattern::Shape), (3, 3, Pattern::Weight), (1, 10, Pattern::Block(4, 4))]
        {
            let t = tiles(rows, width, p);
            let mut seen = vec![0; rows * width];
            for g in &t {
                for &(r, c) in g {
                    seen[r * width + c] += 1;
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "{p:?}");
            let (br, bc) = p.tile(rows);
            assert_eq!(t.len(), rows.div_ceil(br) * width.div_ceil(bc));
        }
    }

    #[test]
    fn break_even_interpolates_the_crossing() {
        let e = BreakEvenEntry {
            family: "dense".into(),
            tile: [1, 1],
            density: vec![0.1, 0.3, 0.5],
            ratio: vec![0.4, 0.8, 1.2],
            outputs: 0,
            positions: 0,
        };
        assert!((e.break_even() - 0.4).abs() < 1e-9);
        assert!((e.ratio_at(0.2).unwrap() - 0.6).abs() < 1e-9);
        assert_eq!(e.ratio_at(0.9), Some(1.2));
        let never = BreakEvenEntry { ratio: vec![1.1, 1.3, 1.5], ..e.clone() };
        assert_eq!(never.break_even(), 0.0);
    }

    #[test]
    fn stored_fraction_counts_whole_tiles() {
        // 2x4 matrix, one non-zero in the first 2x2 tile.
        let v = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(stored_fraction(&v, 2, 4, 2, 2), 0.5);
        assert_eq!(stored_fraction(&v, 2, 4, 1, 1), 0.125);
    }
}
