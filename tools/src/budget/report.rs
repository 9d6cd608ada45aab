//! The result of a budget search (`sprig compress --budget`), as written to `--json` and rendered
//! by [`super::html::render`]. Every figure is measured or computed by the search; none is
//! hard-coded.

use serde::{Deserialize, Serialize};

/// What the user asked for. `None` = no limit on that figure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Flash bytes: the `.sprig` file plus the runtime code for the kernels it uses.
    pub flash: Option<u64>,
    /// RAM bytes: arena plus the stack estimate of the target.
    pub ram: Option<u64>,
    /// Multiply-accumulates per inference.
    pub macs: Option<u64>,
    /// `.sprig` file bytes alone (storage or download size; the runtime code not counted).
    #[serde(default)]
    pub file: Option<u64>,
    /// Largest allowed relative output error on the calibration data (see
    /// [`Fidelity::relative_error`]).
    pub max_error: Option<f64>,
}

/// How close a model's outputs are to the dense model's, over a set of samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fidelity {
    /// Samples compared.
    pub samples: usize,
    /// `sqrt(Σ‖y − y_dense‖² / Σ‖y_dense‖²)` over all samples' first output.
    pub relative_error: f64,
    /// Largest |y − y_dense| over all outputs.
    pub max_abs_error: f64,
    /// Fraction of samples with the same arg-max as the dense model.
    pub top1_agreement: f64,
}

/// Whole-model figures of one side (dense or compressed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// `.sprig` file bytes.
    pub file_bytes: u64,
    /// Flash estimate on the target (file + runtime code for the kernels used).
    pub flash: u64,
    /// RAM estimate on the target (arena + stack).
    pub ram: u64,
    /// Arena bytes.
    pub arena: u64,
    /// MACs per inference.
    pub macs: u64,
    /// Weight parameters (stored values).
    pub params: u64,
    /// Host latency predicted before measuring (µs, release build, one thread): the dense
    /// measured latency scaled by the MAC ratio. `None` for the dense side.
    pub latency_us_predicted: Option<f64>,
    /// Host latency measured (median µs per inference, release build, one thread).
    pub latency_us_measured: f64,
    /// Top-1 accuracy on the eval data with labels, when given (dense: tract on the ONNX file).
    pub accuracy: Option<f64>,
    /// Agreement with tract running the source ONNX model on the eval (or calibration) data.
    pub vs_onnx: Fidelity,
}

/// One operator of the result, in execution order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerRow {
    /// Node name.
    pub name: String,
    /// Operator (`Conv`, `Dense`, `Add`, ...).
    pub op: String,
    /// Kernel the runtime runs.
    pub kernel: String,
    /// Weight parameters after compression (stored values).
    pub params: u64,
    /// Weight parameters of the same layer in the dense model (0 when it has none or the layer
    /// is new).
    pub params_dense: u64,
    /// Payload bits per weight (32 for dense f32, index + codebook bits for codebook layers).
    /// `None` for layers without weights.
    pub bits_per_weight: Option<f64>,
    /// Codebook index bits, when the layer is codebook-quantized.
    pub codebook_bits: Option<u8>,
    /// Fraction of the dense layer's output channels removed by pruning (0 when none).
    pub pruned_fraction: f64,
    /// Fraction of exact zeros in the layer's input on the calibration data (after the
    /// producing ReLU), when the input comes from a ReLU-family activation.
    pub input_zero_fraction: Option<f64>,
    /// Layer reconstruction error of the codebook fit (0 = the best dense refit, 1 = all zero).
    pub reconstruction_error: Option<f64>,
    /// Multiply-accumulates per inference.
    pub macs: u64,
    /// Fraction of the model's MACs.
    pub mac_share: f64,
    /// Median measured host time of this operator (µs).
    pub latency_us: f64,
    /// Fraction of the summed operator times.
    pub latency_share: f64,
    /// Weight bytes stored.
    pub weight_bytes: u64,
}

/// One configuration the search evaluated or rejected.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Fraction of the MACs kept by filter pruning (1 = no pruning).
    pub macs_kept: f64,
    /// Codebook bits per quantized layer, by node name (layers absent stay f32).
    pub layer_bits: Vec<(String, u8)>,
    /// Flash estimate (bytes).
    pub flash: u64,
    /// `.sprig` file bytes (0 when no file was built at this step).
    #[serde(default)]
    pub file: u64,
    /// RAM estimate (bytes).
    pub ram: u64,
    /// MACs per inference.
    pub macs: u64,
    /// Sum of the per-layer reconstruction errors the allocation minimised.
    pub predicted_error: f64,
    /// Measured relative output error on the calibration data (`None`: not built, see `note`).
    pub measured_error: Option<f64>,
    /// Top-1 agreement with the dense model on the calibration data, when built.
    pub top1_agreement: Option<f64>,
    /// Meets every limit of the budget.
    pub feasible: bool,
    /// Why it was rejected or not built, if so.
    pub note: Option<String>,
}

/// One point of the error-vs-size curve of an allocation: the least predicted error at a flash
/// size, as the per-layer allocation found it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FrontierPoint {
    /// Fraction of MACs kept by pruning, for which the curve was computed.
    pub macs_kept: f64,
    /// Flash bytes.
    pub flash: u64,
    /// Least sum of per-layer reconstruction errors at that flash.
    pub predicted_error: f64,
}

/// Why a budget cannot be met: the smallest figures the search reached.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Smallest flash reached (bytes), and its largest parts (what, bytes).
    pub min_flash: u64,
    pub flash_parts: Vec<(String, u64)>,
    /// Smallest `.sprig` file reached (bytes; 0 when no file limit was given).
    #[serde(default)]
    pub min_file: u64,
    /// Smallest RAM reached (bytes), and its parts.
    pub min_ram: u64,
    pub ram_parts: Vec<(String, u64)>,
    /// Smallest MACs reached.
    pub min_macs: u64,
    /// Smallest measured relative output error among configurations within flash/RAM/MACs.
    pub min_error: Option<f64>,
    /// One sentence per limit that could not be met.
    pub reasons: Vec<String>,
}

/// The whole report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetReport {
    /// Source ONNX model (as given).
    pub model: String,
    /// Output `.sprig` (as given; written only when the budget was met).
    pub output: String,
    /// Target triple the flash / RAM figures are for.
    pub target: String,
    /// The budget.
    pub budget: Budget,
    /// Whether a configuration met it.
    pub met: bool,
    /// Calibration samples used.
    pub calib_samples: usize,
    /// What the eval figures were measured on (`eval data, N samples` or `calibration data`).
    pub eval_on: String,
    /// Dense model.
    pub before: Side,
    /// Chosen configuration (equal to `before` in shape when nothing was chosen).
    pub after: Option<Side>,
    /// Per operator of the chosen result.
    pub layers: Vec<LayerRow>,
    /// Every configuration the search looked at, in the order it did.
    pub explored: Vec<Candidate>,
    /// Index into `explored` of the chosen one.
    pub chosen: Option<usize>,
    /// The per-layer allocation's error-vs-flash curves, one per pruning level allocated.
    pub frontier: Vec<FrontierPoint>,
    /// When not met: why.
    pub limits: Option<Limits>,
    /// Wall time of the search (s).
    pub seconds: f64,
}
