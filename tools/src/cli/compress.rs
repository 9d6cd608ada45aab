use crate::compile::{compile, write_atomic};
use crate::compress::actsparse::{
    choose_thresholds, input_major_codebook_layers, select_input_sparse, InputSparse, LayerChoice, ThresholdMode, ThresholdReport,
};
use crate::compress::codebook::{quantize, BiasStore, CodebookMethod, CodebookOptions, CodebookReport, GroupCount, LayerBits, LutChoice};
use crate::compress::prune::{prune, remove_dead_channels, Amount, Method, PruneOptions, PruneReport};
use crate::compress::sparsify::{sparsify, BreakEvenTable, Pattern, SparsifyOptions, SparsifyReport, StorageChoice};
use crate::import::{import_onnx_file_bytes, ImportOptions};
use crate::npy::{check_samples, read_f32};
use crate::stats::model_stats;
use crate::writer::WeightFormat;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Source ONNX model.
    pub(super) onnx: PathBuf,
    /// Output .sprig file (written only when everything succeeded).
    #[arg(short, long)]
    pub(super) output: PathBuf,
    /// Unlabeled calibration data (.npy, samples on the first axis).
    #[arg(long)]
    pub(super) calib: PathBuf,
    /// Calibration samples to use at most (the first N).
    #[arg(long, default_value_t = 128)]
    pub(super) calib_samples: usize,
    /// Pruning GROUP:AMOUNT (repeatable; applied in order, each on the previous result).
    /// GROUP `filter` (output channels, coupled with their consumers' input channels, depthwise
    /// filters and residual partners; physically removed) or `channel` (the same coupled set, seen
    /// from the consumer); or in-layer groups stored block-sparse: `shape` (a kernel position
    /// across all filters), `block:RxC` (an R×C tile of the layer matrix), `weight` (single
    /// weights). AMOUNT: the fraction of each layer's groups to remove, e.g. `filter:0.5`; or a
    /// global budget, the fraction of the model's MACs or weight parameters kept
    /// (`filter:macs=0.7`, `weight:params=0.3`), allocated across layers by least marginal
    /// reconstruction error.
    #[arg(long)]
    prune: Vec<String>,
    /// Channel ranking: `envelope` (WGSEF prox-gradient on the layer loss), `magnitude` (filter
    /// L1 norm), `magnitude-norefit` (filter L1 norm, weights not refit).
    #[arg(long, default_value = "envelope", value_parser = ["envelope", "magnitude", "magnitude-norefit"])]
    prune_method: String,
    /// Storage of layers with in-layer groups: `auto` (block-sparse where the measured
    /// break-even table for this machine predicts a speedup), `sparse`, or `dense`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "sparse", "dense"])]
    sparse_storage: String,
    /// Codebook quantization: every Conv / Dense weight becomes a BITS-bit index (1 to 8) into
    /// a small codebook of its row group, learnt on the calibration data (after any pruning;
    /// pruned weights stay exactly zero).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=8))]
    codebook: Option<u8>,
    /// Codebooks per layer (row groups): a number, or `auto` (as many as cost at most 5 % of the
    /// index bytes, up to 16).
    #[arg(long, default_value = "auto")]
    codebook_groups: String,
    /// Codebook value type.
    #[arg(long, default_value = "f16", value_parser = ["f16", "f32"])]
    codebook_values: String,
    /// Codebook method: `jlcm` (row groups, data-driven joint refit of codebooks and
    /// assignments), or the per-tensor baselines `kmeans` (Deep Compression) and `linear`
    /// (TF-MOT-style linear init).
    #[arg(long, default_value = "jlcm", value_parser = ["jlcm", "kmeans", "linear"])]
    codebook_method: String,
    /// Bias storage of codebook layers: `auto` (8-bit codes on a uniform grid, u8-affine, where
    /// that raises the layer's calibration error by at most 1 %, next to f16 codebooks), `f16`
    /// (Conv biases f16, Dense ones f32), `u8` (u8-affine everywhere).
    #[arg(long, default_value = "auto", value_parser = ["auto", "f16", "u8"])]
    codebook_bias: String,
    /// Kernel for codebook Dense layers: `auto` (from the measured cost table), `decode`, `lut`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "decode", "lut"])]
    codebook_kernel: String,
    /// Per-layer codebook bits: NODE=BITS, or NODE=f32 to keep a layer dense (repeatable).
    #[arg(long = "layer-bits")]
    layer_bits: Vec<String>,
    /// Activation sparsity (ReLU zeros on the calibration data): `auto` removes channels that are
    /// zero on every calibration sample and picks input-sparse kernels (see --input-sparse);
    /// `off` does neither.
    #[arg(long, default_value = "auto", value_parser = ["auto", "off"])]
    act_sparsity: String,
    /// FATReLU thresholds (changes the model): `auto` replaces each fused ReLU whose output
    /// feeds only Conv / Dense layers by `x > t ? x : 0` with the largest candidate t whose
    /// output-error bound (CETT over its consumers, ALGORITHMS.md §6.5) stays within
    /// --act-threshold-eps on the calibration data; a number T uses T on every such layer. The
    /// thresholds and their effect on the calibration outputs are reported.
    #[arg(long)]
    act_threshold: Option<String>,
    /// The CETT bound of `--act-threshold auto`.
    #[arg(long, default_value_t = 0.01)]
    act_threshold_eps: f64,
    /// Input-sparse kernels for Dense / 1×1 Conv layers (with --act-sparsity auto): `auto` where
    /// this machine's measured kernel costs predict a speedup at the layer's calibration input
    /// sparsity, `all` on every eligible layer, `never`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "all", "never"])]
    input_sparse: String,
    /// Skip the final pass that refits every layer against the dense model's outputs.
    #[arg(long)]
    no_polish: bool,
    /// Weight storage: f32 (exact) or f16 (half the bytes).
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16"])]
    weights: String,
    /// Drop operator and internal tensor names from the output (smaller file; graph inputs and
    /// outputs keep theirs). The report still names the layers.
    #[arg(long)]
    pub(super) strip_names: bool,
    /// Write fixed-size tensor and operator tables and 16-byte aligned sections (format 1.5, or
    /// 1.7 / 1.8 where u8-affine constants / QuantizeDequantize need it) for runtimes older than
    /// 1.9; the file is larger (64 bytes per tensor, 128 per operator).
    #[arg(long)]
    fixed_tables: bool,
    /// Static shape for an input with symbolic dimensions: NAME=D0,D1,... (repeatable).
    #[arg(long = "input-shape")]
    pub(super) input_shape: Vec<String>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub(super) json: Option<PathBuf>,
    /// Fit a device instead of applying given methods:
    /// `flash=256KiB,ram=64KiB[,macs=2M][,file=20KB]` (sizes in B, KB, KiB, MB, MiB; MACs with
    /// k, M, G). Chooses the pruning level, per-layer
    /// codebook bits and kernels with the least calibration-output error within the budget
    /// (flash: the file plus the runtime code of the kernels used; RAM: arena plus stack, as
    /// `sprig size` estimates them for --target; file: the .sprig file alone, names stripped
    /// with --strip-names).
    /// (The search chooses pruning, bits and kernels itself and writes f32 / codebook weights
    /// with compact tables: the options that set those are refused beside it, never ignored.)
    #[arg(long, conflicts_with_all = [
        "prune", "codebook", "layer_bits", "act_threshold", "act_threshold_eps", "prune_method", "sparse_storage",
        "codebook_groups", "codebook_values", "codebook_method", "codebook_kernel", "codebook_bias", "act_sparsity",
        "input_sparse", "no_polish", "weights", "fixed_tables",
    ])]
    pub(super) budget: Option<String>,
    /// With --budget: largest relative output error (‖y − y_dense‖ / ‖y_dense‖ on the
    /// calibration data) accepted.
    #[arg(long, requires = "budget")]
    pub(super) max_error: Option<f64>,
    /// With --budget: eval inputs (.npy) for the accuracy and fidelity figures (default: the
    /// calibration data).
    #[arg(long, requires = "budget")]
    pub(super) eval: Option<PathBuf>,
    /// With --eval: integer class labels (N,) for top-1 accuracy.
    #[arg(long, requires = "eval")]
    pub(super) labels: Option<PathBuf>,
    /// With --budget: eval samples used at most.
    #[arg(long, default_value_t = 500)]
    pub(super) eval_samples: usize,
    /// With --budget: write the report as one self-contained HTML file.
    #[arg(long, requires = "budget")]
    pub(super) report: Option<PathBuf>,
    /// With --budget: target triple the flash / RAM budget is for.
    #[arg(long, default_value = "thumbv7em-none-eabihf")]
    pub(super) target: String,
    /// No progress display.
    #[arg(long, short)]
    pub(super) quiet: bool,
}

#[derive(serde::Serialize)]
struct Summary {
    onnx: String,
    output: String,
    macs_before: u64,
    macs_after: u64,
    params_before: u64,
    params_after: u64,
    bytes_before: usize,
    bytes_after: usize,
    calib_samples: usize,
    seconds: f64,
    onnx_bytes: u64,
    prune: Vec<PruneReport>,
    sparsify: Vec<SparsifyReport>,
    codebook: Option<CodebookReport>,
    dead_channels: Option<PruneReport>,
    thresholds: Option<ThresholdReport>,
    input_sparse: Vec<LayerChoice>,
}

/// One `--layer-bits NODE=BITS|f32`.
fn parse_layer_bits(s: &str) -> Result<(String, LayerBits)> {
    let (node, v) = s.rsplit_once('=').with_context(|| format!("--layer-bits {s}: expected NODE=BITS or NODE=f32"))?;
    let b = match v {
        "f32" => LayerBits::Keep,
        v => match v.parse::<u8>() {
            Ok(b) if (1..=8).contains(&b) => LayerBits::Bits(b),
            _ => bail!("--layer-bits {s}: `{v}` is not 1 to 8 bits or f32"),
        },
    };
    Ok((node.to_string(), b))
}

/// What one `--prune` asks for.
enum Spec {
    Channels(Amount),
    InLayer(Pattern, Amount),
}

fn parse_prune(s: &str) -> Result<Spec> {
    let (group, amount) = s.rsplit_once(':').with_context(|| format!("--prune {s}: expected GROUP:AMOUNT, e.g. filter:0.5"))?;
    let pattern = match group {
        "filter" | "channel" => None,
        "shape" => Some(Pattern::Shape),
        "weight" => Some(Pattern::Weight),
        g if g.starts_with("block:") => {
            let dims = &g["block:".len()..];
            let parsed = dims.split_once('x').and_then(|(r, c)| Some((r.parse::<usize>().ok()?, c.parse::<usize>().ok()?)));
            match parsed {
                Some((r, c)) if (1..=256).contains(&r) && (1..=256).contains(&c) => Some(Pattern::Block(r, c)),
                _ => bail!("--prune {s}: `{g}` is not a block shape RxC with 1 <= R, C <= 256, e.g. block:4x1"),
            }
        }
        g => bail!("--prune {s}: unknown group `{g}` (filter, channel, shape, block:RxC, weight)"),
    };
    let amount = parse_amount(s, amount)?;
    Ok(match pattern {
        None => Spec::Channels(amount),
        Some(p) => Spec::InLayer(p, amount),
    })
}

fn parse_amount(s: &str, amount: &str) -> Result<Amount> {
    let budget = |v: &str| -> Result<f64> {
        let f: f64 = v.parse().with_context(|| format!("--prune {s}: `{v}` is not a fraction"))?;
        if !(f > 0.0 && f <= 1.0) {
            bail!("--prune {s}: the fraction kept must be in (0, 1]");
        }
        Ok(f)
    };
    if let Some(v) = amount.strip_prefix("macs=") {
        return Ok(Amount::Macs(budget(v)?));
    }
    if let Some(v) = amount.strip_prefix("params=") {
        return Ok(Amount::Params(budget(v)?));
    }
    let f: f64 = amount.parse().with_context(|| format!("--prune {s}: `{amount}` is not a fraction"))?;
    if !(0.0..1.0).contains(&f) {
        bail!("--prune {s}: the fraction to remove must be in [0, 1)");
    }
    Ok(Amount::Fraction(f))
}

pub fn run(a: Args) -> Result<()> {
    if a.budget.is_some() {
        return super::fit::run(a);
    }
    let t0 = Instant::now();
    let specs = a.prune.iter().map(|s| parse_prune(s)).collect::<Result<Vec<_>>>()?;
    if specs.is_empty() && a.codebook.is_none() && a.act_sparsity == "off" && a.act_threshold.is_none() {
        bail!("nothing to do: give --prune, --codebook, --act-threshold, or --act-sparsity auto");
    }
    let bytes = std::fs::read(&a.onnx).with_context(|| format!("reading {}", a.onnx.display()))?;
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    let opts = ImportOptions { input_shapes: super::parse_input_shapes(&a.input_shape)? };
    let graph = import_onnx_file_bytes(&bytes, &a.onnx, &opts).with_context(|| format!("importing {}", a.onnx.display()))?;
    let weights = if a.weights == "f16" { WeightFormat::F16 } else { WeightFormat::F32 };
    let dense = compile(graph.clone(), weights, sha)?;
    let dense_model = sprig_runtime::Model::parse(&dense.bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let before = model_stats(&dense_model, dense.bytes.len() as u64);

    let x = read_f32(&a.calib)?;
    if graph.inputs.len() != 1 {
        bail!("compress needs a single-input model; this one has {} inputs", graph.inputs.len());
    }
    let in_shape = graph.tensors[graph.inputs[0]].shape.clone();
    check_samples(&x, &in_shape, &a.calib.display().to_string())?;
    let n = x.samples().min(a.calib_samples.max(1));
    let samples: Vec<&[f32]> = (0..n).map(|i| x.sample(i)).collect();

    let method = match a.prune_method.as_str() {
        "magnitude" => Method::Magnitude,
        "magnitude-norefit" => Method::MagnitudeNoRefit,
        _ => Method::Envelope,
    };
    let storage = match a.sparse_storage.as_str() {
        "sparse" => StorageChoice::Sparse,
        "dense" => StorageChoice::Dense,
        _ => StorageChoice::Auto,
    };
    let table = BreakEvenTable::builtin();
    if storage == StorageChoice::Auto && table.is_none() && specs.iter().any(|s| matches!(s, Spec::InLayer(..))) {
        eprintln!(
            "note: no sparse-kernel cost table for {}; in-layer sparse layers are stored dense (use --sparse-storage sparse to force)",
            std::env::consts::ARCH
        );
    }
    let (mut prune_reports, mut sparse_reports) = (Vec::new(), Vec::new());
    let mut pruned = graph.clone();
    let act_sparsity = a.act_sparsity != "off";
    let dead_report = if act_sparsity {
        let (g, r) = remove_dead_channels(&pruned, &samples).context("removing dead channels")?;
        pruned = g;
        Some(r)
    } else {
        None
    };
    let thresholds = match &a.act_threshold {
        None => None,
        Some(v) => {
            let mode = match v.as_str() {
                "auto" => {
                    if !(a.act_threshold_eps > 0.0 && a.act_threshold_eps < 1.0) {
                        bail!("--act-threshold-eps {}: expected a bound in (0, 1)", a.act_threshold_eps);
                    }
                    ThresholdMode::Auto { eps: a.act_threshold_eps }
                }
                v => match v.parse::<f32>() {
                    Ok(t) if t > 0.0 && t.is_finite() => ThresholdMode::Fixed(t),
                    _ => bail!("--act-threshold {v}: expected `auto` or a positive threshold"),
                },
            };
            let r = choose_thresholds(&mut pruned, &samples, mode).context("choosing activation thresholds")?;
            Some(r)
        }
    };
    for spec in specs {
        match spec {
            Spec::Channels(amount) => {
                let popts = PruneOptions { method, amount, polish: !a.no_polish, ..PruneOptions::default() };
                let (g, r) = prune(&pruned, &samples, &popts)?;
                pruned = g;
                prune_reports.push(r);
            }
            Spec::InLayer(pattern, amount) => {
                let sopts = SparsifyOptions { pattern, method, amount, storage, table: table.clone(), ..SparsifyOptions::default() };
                let (g, r) = sparsify(&pruned, &samples, &sopts)?;
                pruned = g;
                sparse_reports.push(r);
            }
        }
    }
    let mut codebook_choices = Vec::new();
    let codebook_report = match a.codebook {
        None => None,
        Some(bits) => {
            let in_layer = !sparse_reports.is_empty();
            // Pruned in-layer weights are quantized too (zeros kept exactly): codebook storage
            // replaces block-sparse storage.
            for t in &mut pruned.tensors {
                if matches!(t.storage, crate::ir::Storage::Bsr { .. }) {
                    t.storage = crate::ir::Storage::Dense;
                }
            }
            let copts = CodebookOptions {
                bits,
                groups: match a.codebook_groups.as_str() {
                    "auto" => GroupCount::Auto,
                    v => GroupCount::Fixed(
                        v.parse()
                            .ok()
                            .filter(|&g: &usize| g >= 1)
                            .with_context(|| format!("--codebook-groups {v}: expected a positive number or `auto`"))?,
                    ),
                },
                f16_values: a.codebook_values == "f16",
                layer_bits: a.layer_bits.iter().map(|s| parse_layer_bits(s)).collect::<Result<_>>()?,
                method: match a.codebook_method.as_str() {
                    "kmeans" => CodebookMethod::KMeans,
                    "linear" => CodebookMethod::Linear,
                    _ => CodebookMethod::Jlcm,
                },
                keep_zeros: in_layer,
                lut: match a.codebook_kernel.as_str() {
                    "decode" => LutChoice::Never,
                    "lut" => LutChoice::Always,
                    _ => LutChoice::Auto,
                },
                bias: match a.codebook_bias.as_str() {
                    "f16" => BiasStore::F16,
                    "u8" => BiasStore::U8,
                    _ => BiasStore::Auto,
                },
                ..CodebookOptions::default()
            };
            // Layers whose inputs are sparse enough get input-major codebooks (input-sparse
            // kernel) instead; pruned zeros need the output-major layout.
            let mut copts = copts;
            if act_sparsity && a.input_sparse != "never" && !in_layer {
                let mode = if a.input_sparse == "all" { InputSparse::All } else { InputSparse::Auto };
                let layer_bits: Vec<&String> = copts.layer_bits.iter().map(|(n, _)| n).collect();
                let chosen = input_major_codebook_layers(&pruned, &samples, table.as_ref(), mode)?;
                copts.input_major =
                    chosen.iter().filter(|c| c.input_sparse && !layer_bits.contains(&&c.node)).map(|c| c.node.clone()).collect();
                codebook_choices = chosen;
            }
            // Pointwise layers on small planes run the small-plane kernel, which reads its
            // weight input-major, whatever their input sparsity. The input-major quantizer is
            // JLCM's: the k-means and linear baselines keep their own, output-major.
            if !in_layer && copts.method == CodebookMethod::Jlcm {
                let layer_bits: Vec<&String> = copts.layer_bits.iter().map(|(n, _)| n).collect();
                for n in 0..pruned.nodes.len() {
                    let name = &pruned.nodes[n].name;
                    if crate::compile::small_plane(&pruned, n) && !copts.input_major.contains(name) && !layer_bits.contains(&name) {
                        copts.input_major.push(name.clone());
                    }
                }
            }
            let (g, r) = quantize(&pruned, &samples, &copts)?;
            pruned = g;
            Some(r)
        }
    };
    let input_sparse = match (act_sparsity, a.input_sparse.as_str()) {
        (false, _) | (_, "never") => Vec::new(),
        (true, mode) => {
            let mode = if mode == "all" { InputSparse::All } else { InputSparse::Auto };
            let mut v = select_input_sparse(&mut pruned, &samples, table.as_ref(), mode)?;
            // Codebook layers: the decision taken before quantization.
            let coded: Vec<LayerChoice> = codebook_choices.into_iter().filter(|c| !v.iter().any(|p| p.node == c.node)).collect();
            v.extend(coded);
            v
        }
    };
    if a.strip_names {
        crate::compile::strip_names(&mut pruned);
    }
    let mut out = compile(pruned, weights, sha)?;
    if a.fixed_tables {
        out.bytes = crate::writer::unpack_tables(&out.bytes).map_err(|e| anyhow::anyhow!("internal error: {e}"))?;
    }
    let model = sprig_runtime::Model::parse(&out.bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let after = model_stats(&model, out.bytes.len() as u64);
    write_atomic(&a.output, &out.bytes)?;
    let summary = Summary {
        onnx: a.onnx.display().to_string(),
        output: a.output.display().to_string(),
        macs_before: before.macs,
        macs_after: after.macs,
        params_before: before.params,
        params_after: after.params,
        bytes_before: dense.bytes.len(),
        bytes_after: out.bytes.len(),
        calib_samples: n,
        seconds: t0.elapsed().as_secs_f64(),
        onnx_bytes: bytes.len() as u64,
        prune: prune_reports,
        sparsify: sparse_reports,
        codebook: codebook_report,
        dead_channels: dead_report,
        thresholds,
        input_sparse,
    };
    for s in summary.dead_channels.iter().flat_map(|r| &r.spaces) {
        println!(
            "  {:<40} {:>4} -> {:>4} channels: {} zero on every calibration sample, removed",
            super::short(&s.producers.join("+"), 40),
            s.channels,
            s.kept,
            s.dead
        );
    }
    if let Some(r) = &summary.thresholds {
        for l in &r.layers {
            match (l.threshold, &l.skipped) {
                (Some(t), _) => println!(
                    "  {:<40} threshold {t:.4}: zeros {:5.1} % -> {:5.1} %, CETT {:.4}",
                    super::short(&l.node, 40),
                    100.0 * l.zero_before,
                    100.0 * l.zero_after,
                    l.cett.unwrap_or(f64::NAN)
                ),
                (None, Some(why)) => println!("  {:<40} kept ReLU: {why}", super::short(&l.node, 40)),
                _ => {}
            }
        }
        println!(
            "  thresholds change the calibration outputs by at most {:.2e} (relative to max |output|); top-1 agreement {:.2} %",
            r.output_relative_max_error,
            100.0 * r.top1_agreement
        );
    }
    for l in &summary.input_sparse {
        println!(
            "  {:<40} inputs {:5.1} % zero: {} kernel (predicted {})",
            super::short(&l.node, 40),
            100.0 * l.input_zero_fraction,
            match (l.input_sparse, l.family.ends_with("-codebook")) {
                (true, false) => "input-sparse",
                (true, true) => "input-sparse codebook",
                (false, false) => "dense",
                (false, true) => "codebook decode",
            },
            l.predicted_speedup.map_or("nothing: no measured cost table".to_string(), |s| format!("{s:.2}x"))
        );
    }
    for s in summary.prune.iter().flat_map(|r| &r.spaces) {
        println!(
            "  {:<40} {:>4} -> {:>4} channels ({} dead), relative error {:.4}",
            super::short(&s.producers.join("+"), 40),
            s.channels,
            s.kept,
            s.dead,
            s.relative_error
        );
    }
    for (name, why) in summary.prune.iter().flat_map(|r| &r.skipped) {
        println!("  {:<40} kept whole: {}", super::short(name, 40), why);
    }
    for r in &summary.sparsify {
        for l in &r.layers {
            let ratio = l.predicted_time_ratio.map_or("not measured".to_string(), |x| format!("{x:.2}x dense time"));
            println!(
                "  {:<40} {} groups: {:>6} -> {:>6} kept, density {:.3}, relative error {:.4}, {} ({})",
                super::short(&l.node, 40),
                r.pattern,
                l.groups,
                l.kept,
                l.density,
                l.relative_error,
                l.storage,
                ratio
            );
        }
        for (name, why) in &r.skipped {
            println!("  {:<40} kept whole: {}", super::short(name, 40), why);
        }
    }
    if let Some(r) = &summary.codebook {
        for l in &r.layers {
            println!(
                "  {:<40} codebook {} bits x {} groups ({:?}): {:>7} -> {:>6} bytes ({:.2} bits/weight), relative error {:.4} (nearest-codeword init {:.4}), {} kernel, {} bias",
                super::short(&l.node, 40),
                l.bits,
                l.groups,
                r.method,
                l.f32_bytes,
                l.bytes,
                l.bits_per_weight,
                l.relative_error,
                l.relative_error_init,
                l.kernel,
                l.bias
            );
        }
        for (name, why) in &r.skipped {
            println!("  {:<40} not quantized: {}", super::short(name, 40), why);
        }
        println!(
            "file {} bytes: {:.2}x smaller than the ONNX file ({} bytes)",
            summary.bytes_after,
            summary.onnx_bytes as f64 / summary.bytes_after.max(1) as f64,
            summary.onnx_bytes
        );
    }
    println!(
        "{} -> {}: MACs {} -> {} ({:.2}x fewer), params {} -> {}, {} -> {} bytes, {} calibration samples, {:.1} s",
        summary.onnx,
        summary.output,
        summary.macs_before,
        summary.macs_after,
        summary.macs_before as f64 / summary.macs_after.max(1) as f64,
        summary.params_before,
        summary.params_after,
        summary.bytes_before,
        summary.bytes_after,
        n,
        summary.seconds
    );
    if let Some(j) = &a.json {
        write_atomic(j, serde_json::to_string_pretty(&summary)?.as_bytes())?;
    }
    Ok(())
}
