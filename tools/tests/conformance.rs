//! ONNX conformance harness: runs the ONNX backend test suites from the shared data folder
//! (`$SPRIG_SHARED_DATA`, else `<repo>/../shared/data`) through import → compile → runtime and
//! compares every output with the reference `output_N.pb` (ONNX backend tolerance:
//! `|a - b| <= 1e-5 + 1e-3 * |b|`, NaN equals NaN).
//!
//! Each case ends as
//! - **pass**: every output matches;
//! - **unsupported**: an input/output is not an f32 tensor, the input shapes are outside what the
//!   runtime accepts, or the importer reports an error (an unsupported op or attribute).
//!   Integer / bool inputs (shapes, axes, pads, indices: constants in a deployed model) are not a
//!   reason: they are baked into the model as initializers from the test data, and so are f32
//!   inputs read only as QuantizeLinear / DequantizeLinear scales. int8 / uint8 / int16 / uint16
//!   data read by a DequantizeLinear, and outputs of those types, are fed and compared as f32
//!   values (how sprig carries quantized tensors);
//! - **fail**: anything after a successful import goes wrong (compile/plan error, invalid file,
//!   runtime error, wrong values), or something panics (including inside the importer).
//!
//! `tests/conformance/expected_pass.txt` lists the cases (`suite/case`) that must pass: a listed
//! case that does not pass fails the test. Newly passing cases are printed.
//!
//! Environment:
//! - `SPRIG_CONFORMANCE_BLESS=1` rewrites this suite's part of `expected_pass.txt` and
//!   `results.md` (per-op table, failures, unsupported reasons) from the current results;
//! - `SPRIG_CONFORMANCE_FILTER=substr` runs only the cases whose name contains `substr`
//!   (blessing is disabled then);
//! - `SPRIG_CONFORMANCE_VERBOSE=1` prints every case's outcome.
//!
//! Run: `cargo test -p sprig-tools --test conformance -- --nocapture`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::time::Instant;

use sprig_runtime::MAX_RANK;
use sprig_tools::compile::compile;
use sprig_tools::host::HostModel;
use sprig_tools::import::{import_model_proto, ImportError, ImportOptions, SUPPORTED_OPS};
use sprig_tools::writer::WeightFormat;
use tract_onnx::pb::{type_proto, ModelProto, TensorProto, ValueInfoProto};
use tract_onnx::tract_core::prelude::Framework;

const ATOL: f32 = 1e-5;
const RTOL: f32 = 1e-3;
/// ONNX `TensorProto.DataType.FLOAT`.
const ONNX_FLOAT: i32 = 1;

// ---------------------------------------------------------------------------------------------
// Tests: one per suite so that they run in parallel.

#[test]
fn onnx_node_tests() {
    run_suite("onnx-node-tests");
}

#[test]
fn onnx_pytorch_converted_tests() {
    run_suite("onnx-pytorch-converted-tests");
}

#[test]
fn onnx_simple_tests() {
    run_suite("onnx-simple-tests");
}

// ---------------------------------------------------------------------------------------------
// Outcomes.

#[derive(Clone, Debug)]
enum Outcome {
    Pass,
    /// Detail, root-cause stage.
    Fail {
        stage: &'static str,
        detail: String,
    },
    /// Grouping key, full message.
    Unsupported {
        key: String,
        detail: String,
    },
}

struct CaseResult {
    /// `suite/case`.
    name: String,
    /// Distinct op types of the model (domain-qualified when not the default domain).
    ops: Vec<String>,
    outcome: Outcome,
    /// Integer inputs were baked into the model as initializers.
    baked: bool,
    /// Remarks on a passing case (output shape differs with the same element count).
    notes: Vec<String>,
}

fn unsupported(key: impl Into<String>, detail: impl Into<String>) -> Outcome {
    Outcome::Unsupported { key: key.into(), detail: detail.into() }
}

fn fail(stage: &'static str, detail: impl Into<String>) -> Outcome {
    Outcome::Fail { stage, detail: detail.into() }
}

// ---------------------------------------------------------------------------------------------
// Locations.

fn data_root() -> PathBuf {
    match std::env::var_os("SPRIG_SHARED_DATA") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    }
}

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).map(|v| !v.is_empty() && v != "0").unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// Panics: a quiet hook while a case runs (the payload and location become the failure message).

thread_local! {
    static IN_CASE: Cell<bool> = const { Cell::new(false) };
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_CASE.with(|c| c.get()) {
                let loc = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
                PANIC_AT.with(|p| *p.borrow_mut() = Some(loc));
            } else {
                default(info);
            }
        }));
    });
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "<non-string payload>".into())
}

// ---------------------------------------------------------------------------------------------
// Reading TensorProto files.

struct F32Tensor {
    dims: Vec<usize>,
    data: Vec<f32>,
}

fn read_proto(path: &Path) -> Result<TensorProto, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    tract_onnx::tensor::proto_from_reader(f).map_err(|e| format!("{}: {e:#}", path.display()))
}

fn dtype_name(code: i32) -> String {
    tract_onnx::pb::tensor_proto::DataType::try_from(code).map(|d| d.as_str_name().to_string()).unwrap_or_else(|_| format!("type {code}"))
}

/// Integer element types sprig carries in f32 (quantized tensors): outputs of these types are
/// compared as f32 values.
fn is_small_int_type(t: i32) -> bool {
    use tract_onnx::pb::tensor_proto::DataType as D;
    matches!(D::try_from(t), Ok(D::Int8 | D::Uint8 | D::Int16 | D::Uint16))
}

/// Decodes an f32 tensor, or an int8 / uint8 / int16 / uint16 one as f32; `Err` carries the
/// reason it is not one.
fn f32_tensor(t: &TensorProto) -> Result<F32Tensor, String> {
    use tract_onnx::pb::tensor_proto::DataType as D;
    if t.data_type != ONNX_FLOAT && !is_small_int_type(t.data_type) {
        return Err(format!("element type {}", dtype_name(t.data_type)));
    }
    let dims: Vec<usize> = t.dims.iter().map(|&d| usize::try_from(d).map_err(|_| format!("negative dim {d}"))).collect::<Result<_, _>>()?;
    let numel: usize = dims.iter().product();
    let raw = &t.raw_data;
    let data: Vec<f32> = match D::try_from(t.data_type) {
        Ok(D::Float) if !raw.is_empty() => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Ok(D::Float) => t.float_data.clone(),
        _ if raw.is_empty() => t.int32_data.iter().map(|&v| v as f32).collect(),
        Ok(D::Int8) => raw.iter().map(|&b| b as i8 as f32).collect(),
        Ok(D::Uint8) => raw.iter().map(|&b| b as f32).collect(),
        Ok(D::Int16) => raw.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32).collect(),
        _ => raw.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as f32).collect(),
    };
    if data.len() != numel {
        return Err(format!("{} values for dims {dims:?} (external data?)", data.len()));
    }
    Ok(F32Tensor { dims, data })
}

/// `prefix_0.pb`, `prefix_1.pb`, ... in `dir`.
fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..).map(|i| dir.join(format!("{prefix}_{i}.pb"))).take_while(|p| p.is_file()).collect()
}

/// Element type of a value info; `None` when it is not a tensor (sequence, map, optional) or
/// has no type.
fn elem_type(vi: &ValueInfoProto) -> Option<i32> {
    match vi.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => Some(t.elem_type),
    }
}

// ---------------------------------------------------------------------------------------------
// One case.

fn model_ops(model: &ModelProto) -> Vec<String> {
    let mut ops = Vec::new();
    if let Some(g) = &model.graph {
        for n in &g.node {
            let op = if n.domain.is_empty() || n.domain == "ai.onnx" { n.op_type.clone() } else { format!("{}::{}", n.domain, n.op_type) };
            if !ops.contains(&op) {
                ops.push(op);
            }
        }
    }
    ops
}

/// Grouping key for an import error: the error kind and the reason, with names and numbers
/// abstracted away.
fn import_error_key(e: &ImportError) -> String {
    match e {
        ImportError::Unsupported(nodes) => {
            let n = &nodes[0];
            let dom = if n.domain.is_empty() { String::new() } else { format!("{}::", n.domain) };
            format!("unsupported node {dom}{}: {}", n.op_type, normalize(&n.reason))
        }
        other => normalize(other.to_string().lines().next().unwrap_or("")),
    }
}

/// First line of an error, plus the first listed node for "unsupported node(s)" errors.
fn import_error_detail(e: &ImportError) -> String {
    let s = e.to_string();
    let mut lines = s.lines();
    let first = lines.next().unwrap_or("").to_string();
    match (e, lines.next()) {
        (ImportError::Unsupported(_), Some(l)) => format!("{first} {}", l.trim()),
        _ => first,
    }
}

/// Replaces `quoted names` and numbers so that similar messages group together.
fn normalize(s: &str) -> String {
    let mut out = String::new();
    let mut in_tick = false;
    let mut prev_digit = false;
    for c in s.chars() {
        if c == '`' {
            if !in_tick {
                out.push_str("`…`");
            }
            in_tick = !in_tick;
            continue;
        }
        if in_tick {
            continue;
        }
        if c.is_ascii_digit() {
            if !prev_digit {
                out.push('N');
            }
            prev_digit = true;
            continue;
        }
        prev_digit = false;
        out.push(c);
    }
    out
}

fn run_case(dir: &Path) -> (Vec<String>, Outcome, CaseCx) {
    let model = match tract_onnx::onnx().proto_model_for_path(dir.join("model.onnx")) {
        Ok(m) => m,
        Err(e) => return (vec![], unsupported("cannot parse model.onnx", format!("{e:#}")), CaseCx::default()),
    };
    let ops = model_ops(&model);
    install_panic_hook();
    IN_CASE.with(|c| c.set(true));
    PANIC_AT.with(|p| *p.borrow_mut() = None);
    let cx = CaseCx::default();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_case(dir, &model, &cx)));
    IN_CASE.with(|c| c.set(false));
    let outcome = match r {
        Ok(o) => o,
        Err(p) => {
            let at = PANIC_AT.with(|p| p.borrow_mut().take()).unwrap_or_default();
            fail("panic", format!("panicked at {at}: {}", panic_message(&*p)))
        }
    };
    (ops, outcome, cx)
}

/// Side results of a case.
#[derive(Default)]
struct CaseCx {
    /// Integer inputs were baked into the model as initializers.
    baked: Cell<bool>,
    /// Remarks that do not fail the case (output shape differs with the same element count).
    notes: RefCell<Vec<String>>,
}

/// Integer and bool element types: inputs of these types are parameters (shapes, axes, pads,
/// indices, ...) and get baked into the model as initializers from the test data.
fn is_param_type(t: i32) -> bool {
    use tract_onnx::pb::tensor_proto::DataType as D;
    matches!(D::try_from(t), Ok(D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::Uint8 | D::Uint16 | D::Uint32 | D::Uint64 | D::Bool))
}

/// Runs one case; sets `cx.baked` when integer inputs were turned into initializers.
fn check_case(dir: &Path, model: &ModelProto, cx: &CaseCx) -> Outcome {
    let Some(data_dir) =
        std::fs::read_dir(dir).ok().and_then(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).min())
    else {
        return unsupported("no test data", "no test_data_set_* folder");
    };
    let Some(graph) = model.graph.as_ref() else { return unsupported("no graph", "the model has no graph") };
    let inits: BTreeSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let all_inputs: Vec<&ValueInfoProto> = graph.input.iter().filter(|i| !inits.contains(i.name.as_str())).collect();
    let in_files = numbered(&data_dir, "input");
    let out_files = numbered(&data_dir, "output");
    if in_files.len() != all_inputs.len() {
        return unsupported(
            "input count mismatch (optional inputs?)",
            format!("{} input files for {} graph inputs", in_files.len(), all_inputs.len()),
        );
    }
    if out_files.len() != graph.output.len() {
        return unsupported("output count mismatch", format!("{} output files for {} graph outputs", out_files.len(), graph.output.len()));
    }
    for vo in &graph.output {
        match elem_type(vo) {
            Some(ONNX_FLOAT) | None => {}
            Some(t) if is_small_int_type(t) => {}
            Some(t) => {
                return unsupported(format!("non-f32 output ({})", dtype_name(t)), format!("output `{}` is {}", vo.name, dtype_name(t)))
            }
        }
    }
    // Inputs: f32 ones are fed at run time; integer / bool ones (shape, axes, pads, indices
    // parameters, constants in any deployed model) are baked into the model as initializers, and
    // so are f32 inputs read only as the scale of QuantizeLinear / DequantizeLinear nodes (a
    // quantized model's scales are constants).
    // Quantized data read by a DequantizeLinear stays a run-time input (sprig carries int8 /
    // uint8 / int16 / uint16 graph inputs as f32 values).
    let dq_data = |name: &str| graph.node.iter().any(|n| n.op_type == "DequantizeLinear" && n.input.first().is_some_and(|i| i == name));
    let qdq_scale_only = |name: &str| {
        let readers: Vec<_> = graph.node.iter().filter(|n| n.input.iter().any(|i| i == name)).collect();
        !readers.is_empty()
            && readers.iter().all(|n| {
                matches!(n.op_type.as_str(), "QuantizeLinear" | "DequantizeLinear")
                    && n.input.iter().enumerate().all(|(k, i)| i != name || k == 1)
            })
    };
    let mut g_inputs: Vec<&ValueInfoProto> = Vec::new();
    let mut inputs: Vec<F32Tensor> = Vec::new();
    let mut bake: Vec<TensorProto> = Vec::new();
    for (vi, path) in all_inputs.iter().zip(&in_files) {
        let declared = elem_type(vi);
        if declared.is_none() && vi.r#type.as_ref().is_some_and(|t| t.value.is_none()) {
            return unsupported("non-tensor input", format!("input `{}` is not a tensor (sequence/map/optional)", vi.name));
        }
        let mut t = match read_proto(path) {
            Ok(t) => t,
            Err(e) => return unsupported("unreadable input .pb", e),
        };
        if declared.is_some_and(|d| d != t.data_type) {
            return unsupported("input .pb type differs from the declared one", format!("input `{}`", vi.name));
        }
        let run_time_int = is_small_int_type(t.data_type) && dq_data(&vi.name);
        if (is_param_type(t.data_type) && !run_time_int) || (t.data_type == ONNX_FLOAT && qdq_scale_only(&vi.name)) {
            t.name = vi.name.clone();
            bake.push(t);
            continue;
        }
        match f32_tensor(&t) {
            Ok(x) => {
                g_inputs.push(vi);
                inputs.push(x);
            }
            Err(e) => return unsupported(format!("non-f32 input ({})", dtype_name(t.data_type)), format!("input `{}`: {e}", vi.name)),
        }
    }
    let mut expected = Vec::new();
    for p in &out_files {
        match read_proto(p).map(|t| f32_tensor(&t)) {
            Ok(Ok(x)) => expected.push(x),
            Ok(Err(e)) => return unsupported("non-f32 output data", format!("{}: {e}", p.display())),
            Err(e) => return unsupported("unreadable output .pb", e),
        }
    }
    let baked_model;
    let model = if bake.is_empty() {
        model
    } else {
        cx.baked.set(true);
        let mut m = model.clone();
        m.graph.as_mut().unwrap().initializer.extend(bake);
        baked_model = m;
        &baked_model
    };
    let graph = model.graph.as_ref().unwrap();
    // Input shapes come from the data; check them against what the runtime can hold.
    let mut opts = ImportOptions::default();
    for (vi, t) in g_inputs.iter().zip(&inputs) {
        if t.dims.len() > MAX_RANK {
            return unsupported("input rank > 6", format!("input `{}` has dims {:?}", vi.name, t.dims));
        }
        if t.dims.contains(&0) {
            return unsupported("empty input tensor", format!("input `{}` has dims {:?}", vi.name, t.dims));
        }
        opts.input_shapes.insert(vi.name.clone(), t.dims.clone());
    }
    for (vi, t) in graph.output.iter().zip(&expected) {
        if t.dims.len() > MAX_RANK {
            return unsupported("output rank > 6", format!("output `{}` has dims {:?}", vi.name, t.dims));
        }
        if t.dims.contains(&0) {
            return unsupported("empty output tensor", format!("output `{}` has dims {:?}", vi.name, t.dims));
        }
    }

    let model_dir = dir.to_string_lossy().into_owned();
    let g = match import_model_proto(model, Some(&model_dir), &opts) {
        Ok(g) => g,
        Err(e) => {
            let detail = import_error_detail(&e);
            if detail.contains("internal error") || detail.contains("panic") {
                let at = PANIC_AT.with(|p| p.borrow_mut().take()).map(|l| format!(" at {l}")).unwrap_or_default();
                return fail("import panic", format!("{detail}{at}"));
            }
            if matches!(e, ImportError::Pass(_)) {
                return fail("import pass", detail);
            }
            return unsupported(import_error_key(&e), detail);
        }
    };
    let lowered: Vec<String> =
        g.nodes.iter().map(|n| format!("{:?}", n.op).split(['(', ' ', '{']).next().unwrap_or("").to_string()).collect();
    let lowered = format!("[{}]", lowered.join(","));
    let conv = match compile(g, WeightFormat::F32, [0u8; 32]) {
        Ok(c) => c,
        Err(e) => return fail("compile", format!("{e:#} (lowered: {lowered})")),
    };
    let mut m = match HostModel::new(&conv.bytes) {
        Ok(m) => m,
        Err(e) => return fail("load", format!("{e:#} (lowered: {lowered})")),
    };
    // Inputs by name (an unused input may have been dropped), else by position.
    let in_names: Vec<String> = m.model.inputs().map(|io| io.name.to_string()).collect();
    let in_shapes = m.input_shapes();
    let mut feed: Vec<&[f32]> = Vec::new();
    for (i, name) in in_names.iter().enumerate() {
        let k = g_inputs.iter().position(|vi| &vi.name == name).unwrap_or(i);
        let Some(t) = inputs.get(k) else { return fail("io", format!("runtime input {i} `{name}` has no data")) };
        let need: usize = in_shapes[i].iter().product();
        if need != t.data.len() {
            return fail("io", format!("input `{name}`: runtime shape {:?}, data dims {:?}", in_shapes[i], t.dims));
        }
        feed.push(&t.data);
    }
    let outs = match m.run(&feed) {
        Ok(o) => o,
        Err(e) => return fail("run", format!("{e:#} (lowered: {lowered})")),
    };
    let out_names: Vec<String> = m.model.outputs().map(|io| io.name.to_string()).collect();
    let out_shapes = m.output_shapes();
    if outs.len() != graph.output.len() {
        return fail("io", format!("{} runtime outputs for {} graph outputs", outs.len(), graph.output.len()));
    }
    let mut problems = Vec::new();
    for (i, got) in outs.iter().enumerate() {
        let k = graph.output.iter().position(|vo| vo.name == out_names[i]).unwrap_or(i);
        let exp = &expected[k];
        let name = &graph.output[k].name;
        if got.len() != exp.data.len() {
            problems.push(format!("output `{name}`: shape {:?}, expected {:?}", out_shapes[i], exp.dims));
            continue;
        }
        if out_shapes[i] != exp.dims {
            cx.notes.borrow_mut().push(format!("output `{name}` has shape {:?}, expected {:?}", out_shapes[i], exp.dims));
        }
        let mut worst: Option<(f32, usize)> = None;
        let mut bad = 0usize;
        for (j, (&a, &b)) in got.iter().zip(&exp.data).enumerate() {
            let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= ATOL + RTOL * b.abs();
            if !ok {
                bad += 1;
                let err = if (a - b).is_nan() { f32::INFINITY } else { (a - b).abs() };
                if worst.is_none_or(|(w, _)| err > w) {
                    worst = Some((err, j));
                }
            }
        }
        if let Some((err, j)) = worst {
            problems.push(format!(
                "output `{name}` {:?}: {bad}/{} values off, max |err| {err:.3e} at {j} (got {}, expected {})",
                exp.dims,
                got.len(),
                got[j],
                exp.data[j]
            ));
        }
    }
    if problems.is_empty() {
        Outcome::Pass
    } else {
        fail("mismatch", format!("{} (lowered: {lowered})", problems.join("; ")))
    }
}

// ---------------------------------------------------------------------------------------------
// A suite.

fn run_suite(suite: &str) {
    let root = data_root();
    let sdir = root.join(suite);
    if !sdir.is_dir() {
        println!("conformance {suite}: skipping: shared data not found at {}", sdir.display());
        report_total(0, 0, 0);
        return;
    }
    let filter = std::env::var("SPRIG_CONFORMANCE_FILTER").ok().filter(|f| !f.is_empty());
    let verbose = env_flag("SPRIG_CONFORMANCE_VERBOSE");
    let bless = env_flag("SPRIG_CONFORMANCE_BLESS") && filter.is_none();
    let t0 = Instant::now();

    let mut cases: Vec<PathBuf> = std::fs::read_dir(&sdir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", sdir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    cases.sort();

    let mut results = Vec::new();
    for dir in &cases {
        let case = dir.file_name().unwrap().to_string_lossy().into_owned();
        let name = format!("{suite}/{case}");
        if let Some(f) = &filter {
            if !name.contains(f.as_str()) {
                continue;
            }
        }
        let (ops, outcome, cx) = run_case(dir);
        let (baked, notes) = (cx.baked.get(), cx.notes.into_inner());
        if verbose {
            match &outcome {
                Outcome::Pass => println!("  PASS {name}"),
                Outcome::Fail { stage, detail } => println!("  FAIL {name} [{stage}]: {detail}"),
                Outcome::Unsupported { detail, .. } => println!("  UNSUPPORTED {name}: {detail}"),
            }
        }
        results.push(CaseResult { name, ops, outcome, baked, notes });
    }

    let passed: BTreeSet<&str> = results.iter().filter(|r| matches!(r.outcome, Outcome::Pass)).map(|r| r.name.as_str()).collect();
    let n_fail = results.iter().filter(|r| matches!(r.outcome, Outcome::Fail { .. })).count();
    let n_unsup = results.iter().filter(|r| matches!(r.outcome, Outcome::Unsupported { .. })).count();

    // Manifest.
    let _guard = FILES.lock().unwrap_or_else(|e| e.into_inner());
    let manifest_path = conformance_dir().join("expected_pass.txt");
    let manifest_text = std::fs::read_to_string(&manifest_path).unwrap_or_default();
    let prefix = format!("{suite}/");
    let expected: BTreeSet<String> = manifest_text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && l.starts_with(&prefix))
        .map(str::to_string)
        .collect();
    let ran: BTreeSet<&str> = results.iter().map(|r| r.name.as_str()).collect();
    let regressions: Vec<String> = expected
        .iter()
        .filter(|c| !passed.contains(c.as_str()) && (filter.is_none() || ran.contains(c.as_str())))
        .map(|c| {
            let why = results.iter().find(|r| &r.name == c).map(|r| match &r.outcome {
                Outcome::Fail { stage, detail } => format!("fail [{stage}]: {detail}"),
                Outcome::Unsupported { detail, .. } => format!("unsupported: {detail}"),
                Outcome::Pass => unreachable!(),
            });
            format!("{c}: {}", why.unwrap_or_else(|| "case not found".into()))
        })
        .collect();
    let new_passes: Vec<&str> = passed.iter().filter(|c| !expected.contains(**c)).copied().collect();

    // Report.
    println!("conformance {suite}: {} cases in {:.1}s", results.len(), t0.elapsed().as_secs_f64());
    let mut fails: Vec<&CaseResult> = results.iter().filter(|r| matches!(r.outcome, Outcome::Fail { .. })).collect();
    fails.sort_by_key(|r| if let Outcome::Fail { stage, .. } = r.outcome { stage } else { "" });
    for r in &fails {
        if let Outcome::Fail { stage, detail } = &r.outcome {
            println!("  FAIL {} [{stage}]: {detail}", r.name);
        }
    }
    if !new_passes.is_empty() {
        println!("  {} newly passing case(s) not in {} (bless with SPRIG_CONFORMANCE_BLESS=1):", new_passes.len(), manifest_path.display());
        for c in &new_passes {
            println!("    {c}");
        }
    }
    for r in results.iter().filter(|r| !r.notes.is_empty()) {
        println!("  note {}: {}", r.name, r.notes.join("; "));
    }
    let n_baked = results.iter().filter(|r| r.baked && matches!(r.outcome, Outcome::Pass)).count();
    println!("conformance {suite}: {n_baked} of the passing cases had integer inputs baked in as constants");
    println!("conformance {suite}: {} passed, {n_fail} failed, {n_unsup} unsupported", passed.len());

    if bless {
        let mut lines: Vec<String> = manifest_text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        lines.extend(passed.iter().map(|s| s.to_string()));
        lines.sort();
        let mut text = String::from(
            "# ONNX conformance cases that must pass (suite/case), generated by\n\
             # SPRIG_CONFORMANCE_BLESS=1 cargo test -p sprig-tools --test conformance -- --nocapture\n",
        );
        for l in lines {
            text.push_str(&l);
            text.push('\n');
        }
        std::fs::create_dir_all(conformance_dir()).expect("creating tests/conformance");
        std::fs::write(&manifest_path, text).expect("writing expected_pass.txt");
        write_results_md(suite, &results);
        println!("conformance {suite}: blessed {} passing case(s) into {}", passed.len(), manifest_path.display());
    }
    drop(_guard);

    report_total(passed.len(), n_fail, n_unsup);

    if !bless && !regressions.is_empty() {
        panic!(
            "conformance {suite}: {} case(s) listed in expected_pass.txt no longer pass:\n  {}",
            regressions.len(),
            regressions.join("\n  ")
        );
    }
}

const SUITES: usize = 3;

/// Adds a suite's counts; the last suite to finish prints the closing line over all suites.
fn report_total(p: usize, f: usize, u: usize) {
    static TOTAL: Mutex<(usize, usize, usize, usize)> = Mutex::new((0, 0, 0, 0));
    let mut t = TOTAL.lock().unwrap_or_else(|e| e.into_inner());
    *t = (t.0 + 1, t.1 + p, t.2 + f, t.3 + u);
    if t.0 == SUITES {
        println!("conformance: {} passed, {} failed, {} unsupported", t.1, t.2, t.3);
    }
}

/// Serialises manifest / results.md updates between the suites' tests (threads of one process).
static FILES: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------------------------
// results.md: one section per suite between markers, so each suite's test rewrites its own.

fn write_results_md(suite: &str, results: &[CaseResult]) {
    let path = conformance_dir().join("results.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let begin = |s: &str| format!("<!-- suite:{s} -->");
    let end = |s: &str| format!("<!-- /suite:{s} -->");
    // Existing sections of the other suites.
    let mut sections: BTreeMap<String, String> = BTreeMap::new();
    let mut rest = old.as_str();
    while let Some(i) = rest.find("<!-- suite:") {
        let after = &rest[i + "<!-- suite:".len()..];
        let Some(j) = after.find(" -->") else { break };
        let name = after[..j].to_string();
        let e = end(&name);
        let Some(k) = rest.find(&e) else { break };
        sections.insert(name, rest[i..k + e.len()].to_string());
        rest = &rest[k + e.len()..];
    }
    let mut s = String::new();
    writeln!(s, "{}", begin(suite)).unwrap();
    s.push_str(&suite_section(suite, results));
    write!(s, "{}", end(suite)).unwrap();
    sections.insert(suite.to_string(), s);

    let mut out = String::from(
        "# ONNX conformance results\n\n\
         Generated by `SPRIG_CONFORMANCE_BLESS=1 cargo test -p sprig-tools --test conformance -- --nocapture`; \
         do not edit by hand. Tolerance: `|a - b| <= 1e-5 + 1e-3 * |b|` (NaN equals NaN).\n\n\
         *unsupported*: a non-f32 input/output, input shapes the runtime cannot hold, or an import error. \
         Integer / bool inputs (shapes, axes, pads, indices) are not a reason: they are baked into the model as \
         initializers from the test data, as they would be constants in a deployed model, and so are f32 inputs read only as \
         QuantizeLinear / DequantizeLinear scales. int8 / uint8 / int16 / uint16 data read by a DequantizeLinear, and \
         outputs of those types, are fed and compared as f32 values (how sprig carries quantized tensors). \
         *fail*: anything going wrong after a successful import (compile, load, run, wrong values) or a panic.\n\n\
         In the per-op tables a case counts once for every distinct op type of its model.\n",
    );
    let mut totals = (0, 0, 0);
    for sec in sections.values() {
        // Totals from the "counts" line of each section.
        if let Some(line) = sec.lines().find(|l| l.starts_with("conformance: ")) {
            let nums: Vec<usize> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|x| x.parse().ok()).collect();
            if nums.len() == 3 {
                totals.0 += nums[0];
                totals.1 += nums[1];
                totals.2 += nums[2];
            }
        }
    }
    writeln!(out, "\nAll suites: {} passed, {} failed, {} unsupported.\n", totals.0, totals.1, totals.2).unwrap();
    for sec in sections.values() {
        out.push('\n');
        out.push_str(sec);
        out.push('\n');
    }
    std::fs::write(&path, out).expect("writing results.md");
}

fn suite_section(suite: &str, results: &[CaseResult]) -> String {
    let mut s = String::new();
    let n_pass = results.iter().filter(|r| matches!(r.outcome, Outcome::Pass)).count();
    let n_fail = results.iter().filter(|r| matches!(r.outcome, Outcome::Fail { .. })).count();
    let n_unsup = results.len() - n_pass - n_fail;
    writeln!(s, "## {suite}\n").unwrap();
    writeln!(s, "conformance: {n_pass} passed, {n_fail} failed, {n_unsup} unsupported\n").unwrap();

    let baked: Vec<&str> =
        results.iter().filter(|r| r.baked && matches!(r.outcome, Outcome::Pass)).map(|r| r.name.rsplit('/').next().unwrap()).collect();
    if !baked.is_empty() {
        writeln!(s, "Passing cases whose integer inputs were baked in as constants ({}): {}\n", baked.len(), baked.join(", ")).unwrap();
    }

    let noted: Vec<String> = results
        .iter()
        .filter(|r| !r.notes.is_empty())
        .map(|r| format!("- `{}`: {}", r.name.rsplit('/').next().unwrap(), r.notes.join("; ")))
        .collect();
    if !noted.is_empty() {
        writeln!(s, "Passing cases whose output shape differs from the reference (same element count):\n\n{}\n", noted.join("\n")).unwrap();
    }

    // Per-op table.
    let mut per_op: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for r in results {
        let k = match r.outcome {
            Outcome::Pass => 0,
            Outcome::Fail { .. } => 1,
            Outcome::Unsupported { .. } => 2,
        };
        for op in &r.ops {
            per_op.entry(op.as_str()).or_default()[k] += 1;
        }
    }
    writeln!(s, "| op | in SUPPORTED_OPS | cases | pass | fail | unsupported |").unwrap();
    writeln!(s, "|---|---|---:|---:|---:|---:|").unwrap();
    for (op, c) in &per_op {
        let sup = if SUPPORTED_OPS.contains(op) { "yes" } else { "" };
        writeln!(s, "| {op} | {sup} | {} | {} | {} | {} |", c[0] + c[1] + c[2], c[0], c[1], c[2]).unwrap();
    }

    // Failures.
    writeln!(s, "\n### Failures ({n_fail})\n").unwrap();
    let mut fails: Vec<(&str, &str, &str)> = results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Fail { stage, detail } => Some((*stage, r.name.as_str(), detail.as_str())),
            _ => None,
        })
        .collect();
    fails.sort();
    for (stage, name, detail) in fails {
        writeln!(s, "- `{name}` [{stage}]: {}", detail.replace('\n', " ")).unwrap();
    }

    // Unsupported reasons, for the cases whose ops are all in SUPPORTED_OPS and for the rest.
    for (title, all_supported) in [("all ops in SUPPORTED_OPS", true), ("other ops", false)] {
        let mut reasons: HashMap<&str, Vec<&str>> = HashMap::new();
        for r in results {
            if let Outcome::Unsupported { key, .. } = &r.outcome {
                let sup = !r.ops.is_empty() && r.ops.iter().all(|o| SUPPORTED_OPS.contains(&o.as_str()));
                if sup == all_supported {
                    reasons.entry(key.as_str()).or_default().push(r.name.as_str());
                }
            }
        }
        let mut v: Vec<_> = reasons.into_iter().collect();
        v.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
        let n: usize = v.iter().map(|x| x.1.len()).sum();
        writeln!(s, "\n### Unsupported reasons, {title} ({n} cases)\n").unwrap();
        for (key, names) in v {
            let shown: Vec<&str> = names.iter().take(if all_supported { 40 } else { 4 }).map(|n| n.rsplit('/').next().unwrap()).collect();
            let more = if names.len() > shown.len() { format!(", … {} more", names.len() - shown.len()) } else { String::new() };
            writeln!(s, "- {} × {}: {}{more}", names.len(), key.replace('|', "\\|"), shown.join(", ")).unwrap();
        }
    }
    s
}
