//! Import state and the per-node driver: values by name, materialization of constants,
//! emission of runtime nodes with shape inference and constant folding.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};

use sprig_runtime::kernels::{execute, Operand};
use sprig_runtime::{Op, Shape, View, MAX_RANK};
use tract_onnx::pb::{attribute_proto::AttributeType, tensor_shape_proto::dimension, type_proto, AttributeProto, ModelProto, NodeProto};

use super::value::{ConstT, Data, Val};
use super::{ops, proto, ImportError, ImportOptions};
use crate::ir::{Graph, Node, TensorId};

/// One node the importer cannot lower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedNode {
    /// Node name (or `op_type_index` when the model leaves it empty).
    pub name: String,
    /// ONNX op type.
    pub op_type: String,
    /// Operator domain (empty = default ONNX domain).
    pub domain: String,
    /// Opset version of that domain in the model.
    pub opset: i64,
    /// Why it is unsupported.
    pub reason: String,
}

/// One ONNX node being lowered.
pub struct NodeInfo<'a> {
    /// The protobuf node.
    pub proto: &'a NodeProto,
    /// Node name (never empty).
    pub name: String,
    /// ONNX op type.
    pub op_type: &'a str,
    /// Opset of the node's domain.
    pub opset: i64,
    emitted: Cell<usize>,
}

impl<'a> NodeInfo<'a> {
    /// Attribute by name.
    pub fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.proto.attribute.iter().find(|a| a.name == name)
    }

    /// Error about attribute `attr`.
    pub fn attr_err(&self, attr: &str, detail: impl Into<String>) -> ImportError {
        ImportError::Attribute { node: self.name.clone(), op_type: self.op_type.to_string(), attr: attr.to_string(), detail: detail.into() }
    }

    /// Shape / operand error.
    pub fn shape_err(&self, detail: impl Into<String>) -> ImportError {
        ImportError::Shape { node: self.name.clone(), op_type: self.op_type.to_string(), detail: detail.into() }
    }

    /// Unsupported-node error.
    pub fn unsupported(&self, reason: impl Into<String>) -> ImportError {
        ImportError::Unsupported(vec![UnsupportedNode {
            name: self.name.clone(),
            op_type: self.op_type.to_string(),
            domain: self.proto.domain.clone(),
            opset: self.opset,
            reason: reason.into(),
        }])
    }

    /// Integer attribute.
    pub fn attr_i(&self, name: &str, default: i64) -> Result<i64, ImportError> {
        match self.attr(name) {
            None => Ok(default),
            Some(a) if a.r#type == AttributeType::Int as i32 || (a.r#type == 0 && a.ints.is_empty()) => Ok(a.i),
            Some(a) => Err(self.attr_err(name, format!("expected an integer, found type {}", attr_type_name(a.r#type)))),
        }
    }

    /// Float attribute.
    pub fn attr_f(&self, name: &str, default: f32) -> Result<f32, ImportError> {
        match self.attr(name) {
            None => Ok(default),
            Some(a) if a.r#type == AttributeType::Float as i32 || a.r#type == 0 => Ok(a.f),
            Some(a) if a.r#type == AttributeType::Int as i32 => Ok(a.i as f32),
            Some(a) => Err(self.attr_err(name, format!("expected a float, found type {}", attr_type_name(a.r#type)))),
        }
    }

    /// String attribute.
    pub fn attr_s(&self, name: &str, default: &str) -> Result<String, ImportError> {
        match self.attr(name) {
            None => Ok(default.to_string()),
            Some(a) if a.r#type == AttributeType::String as i32 || a.r#type == 0 => {
                String::from_utf8(a.s.clone()).map_err(|_| self.attr_err(name, "not valid UTF-8"))
            }
            Some(a) => Err(self.attr_err(name, format!("expected a string, found type {}", attr_type_name(a.r#type)))),
        }
    }

    /// Integer-list attribute.
    /// A single INT is read as a one-element list; any other declared type is an error.
    pub fn attr_ints(&self, name: &str) -> Result<Option<Vec<i64>>, ImportError> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) if a.r#type == AttributeType::Ints as i32 || (a.r#type == 0 && a.i == 0) => Ok(Some(a.ints.clone())),
            Some(a) if a.r#type == AttributeType::Int as i32 => Ok(Some(vec![a.i])),
            Some(a) => Err(self.attr_err(name, format!("expected a list of integers, found type {}", attr_type_name(a.r#type)))),
        }
    }

    /// True when input `i` is given (present and not the empty name).
    pub fn has_input(&self, i: usize) -> bool {
        self.proto.input.get(i).is_some_and(|s| !s.is_empty())
    }

    /// Name of output `i` (derived when absent).
    pub fn out(&self, i: usize) -> String {
        match self.proto.output.get(i) {
            Some(s) if !s.is_empty() => s.clone(),
            _ => format!("{}/out{i}", self.name),
        }
    }

    fn next_node_name(&self) -> String {
        let k = self.emitted.get();
        self.emitted.set(k + 1);
        if k == 0 {
            self.name.clone()
        } else {
            format!("{}/{k}", self.name)
        }
    }
}

/// Import state.
pub struct Ctx {
    /// The graph being built.
    pub g: Graph,
    values: HashMap<String, Val>,
    /// ONNX names (reserved: derived names avoid them).
    reserved: HashSet<String>,
    /// Names read by some node or graph output.
    used: HashSet<String>,
    taken: HashSet<String>,
    node_names: HashSet<String>,
    const_cache: HashMap<String, TensorId>,
    /// Activation QuantizeLinear outputs by ONNX name (see [`QdqRecord`]).
    qdq: HashMap<String, QdqRecord>,
}

/// An activation QuantizeLinear with one zero point: `rel` = `clip(round(x / scale), qmin − zp,
/// qmax − zp)`, i.e. the quantized value less its zero point. A DequantizeLinear with the same
/// scale, zero point and axis is `rel · scale`, or with one scale the fused
/// `QuantizeDequantize` of `src`.
#[derive(Clone, Debug)]
pub struct QdqRecord {
    /// The QuantizeLinear's input `x`.
    pub src: Val,
    /// `qmin − zp` and `qmax − zp`.
    pub range: (f32, f32),
    /// The value `q − zp`.
    pub rel: Val,
    /// Scales (one, or one per channel of `axis`).
    pub scale: Vec<f32>,
    /// The zero point.
    pub zp: i64,
    /// Axis of per-axis scales.
    pub axis: Option<usize>,
}

impl Ctx {
    /// Remembers the QuantizeLinear that produced ONNX value `name`.
    pub fn record_qdq(&mut self, name: &str, r: QdqRecord) {
        self.qdq.insert(name.to_string(), r);
    }

    /// The QuantizeLinear that produced ONNX value `name`, if it was one.
    pub fn qdq_record(&self, name: &str) -> Option<&QdqRecord> {
        self.qdq.get(name)
    }

    /// True when an ONNX value is read by a node or is a graph output.
    pub fn is_used(&self, name: &str) -> bool {
        !name.is_empty() && self.used.contains(name)
    }

    /// True when output `i` of `n` exists and is read by someone.
    pub fn output_used(&self, n: &NodeInfo, i: usize) -> bool {
        n.proto.output.get(i).is_some_and(|s| self.is_used(s))
    }

    /// Input `i` of `n`.
    pub fn input(&self, n: &NodeInfo, i: usize) -> Result<Val, ImportError> {
        match n.proto.input.get(i) {
            Some(s) if !s.is_empty() => self.values.get(s).cloned().ok_or_else(|| {
                ImportError::Graph(format!("node `{}` ({}) reads `{s}`, which no earlier node produces", n.name, n.op_type))
            }),
            _ => Err(n.shape_err(format!("input {i} is required"))),
        }
    }

    /// Optional input `i` of `n`.
    pub fn opt_input(&self, n: &NodeInfo, i: usize) -> Result<Option<Val>, ImportError> {
        if n.has_input(i) {
            self.input(n, i).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Input `i` that must be a constant (`what` names it in the error).
    pub fn const_input(&self, n: &NodeInfo, i: usize, what: &str) -> Result<ConstT, ImportError> {
        match self.input(n, i)? {
            Val::Const(c) => Ok(c),
            _ => Err(n.unsupported(format!("input {i} ({what}) must be a constant"))),
        }
    }

    /// Shape of a value.
    pub fn shape(&self, v: &Val) -> Vec<usize> {
        match v {
            Val::Act(t) => self.g.tensors[*t].shape.clone(),
            Val::Const(c) => c.shape.clone(),
            Val::Unknown => Vec::new(),
        }
    }

    fn unique(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while self.taken.contains(&name) || (self.reserved.contains(&name) && name != base) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    fn unique_derived(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while self.taken.contains(&name) || self.reserved.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    /// Puts a constant in the graph (once per shared name); rejects NaN/Inf and ranks above the runtime's.
    pub fn materialize(&mut self, n: &NodeInfo, c: &ConstT) -> Result<TensorId, ImportError> {
        if c.shared {
            if let Some(&t) = self.const_cache.get(&c.name) {
                return Ok(t);
            }
        }
        if c.shape.len() > MAX_RANK {
            return Err(n.unsupported(format!("constant `{}` has rank {} > {MAX_RANK}", c.name, c.shape.len())));
        }
        let v = c.data.to_f32();
        if v.iter().any(|x| !x.is_finite()) {
            return Err(ImportError::NonFinite { tensor: c.name.clone() });
        }
        let name = if c.shared && !self.taken.contains(&c.name) {
            self.taken.insert(c.name.clone());
            c.name.clone()
        } else {
            self.unique_derived(&c.name)
        };
        let t = self.g.add_tensor(name, c.shape.clone(), Some(v));
        if c.shared {
            self.const_cache.insert(c.name.clone(), t);
        }
        Ok(t)
    }

    /// Emits `op` on `inputs` (folded when every input is a constant and the reference kernel
    /// runs). `out` names the result (an ONNX output name, or a derived name).
    pub fn emit(&mut self, n: &NodeInfo, op: Op, inputs: &[Val], out: &str) -> Result<Val, ImportError> {
        if inputs.iter().all(|v| matches!(v, Val::Const(_))) {
            let cs: Vec<&ConstT> = inputs.iter().filter_map(|v| if let Val::Const(c) = v { Some(c) } else { None }).collect();
            if let Some(c) = fold(&op, &cs, out) {
                return Ok(Val::Const(c));
            }
        }
        let mut ids = Vec::with_capacity(inputs.len());
        for v in inputs {
            ids.push(match v {
                Val::Act(t) => *t,
                Val::Const(c) => self.materialize(n, c)?,
                Val::Unknown => return Err(n.unsupported("input comes from an unsupported node")),
            });
        }
        for &t in &ids {
            if self.g.tensors[t].shape.len() > MAX_RANK {
                return Err(n.unsupported(format!("rank {} > {MAX_RANK}", self.g.tensors[t].shape.len())));
            }
        }
        let shape = self.g.infer(&op, &ids).map_err(|e| {
            let shapes: Vec<String> = ids.iter().map(|&t| format!("{:?}", self.g.tensors[t].shape)).collect();
            n.shape_err(format!("{} rejects input shapes {} ({e:?})", op.name(), shapes.join(", ")))
        })?;
        if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_none_or(|k| k > super::MAX_ELEMENTS) {
            return Err(n.shape_err(format!("output shape {shape:?} has more elements than the limit of {} (2^28)", super::MAX_ELEMENTS)));
        }
        let name = if self.reserved.contains(out) { self.unique(out) } else { self.unique_derived(out) };
        let t = self.g.add_tensor(name, shape, None);
        let mut node_name = n.next_node_name();
        if self.node_names.contains(&node_name) {
            let mut k = 1;
            while self.node_names.contains(&format!("{node_name}_{k}")) {
                k += 1;
            }
            node_name = format!("{node_name}_{k}");
        }
        self.node_names.insert(node_name.clone());
        self.g.nodes.push(Node { name: node_name, onnx_op: n.op_type.to_string(), op, inputs: ids, outputs: vec![t] });
        Ok(Val::Act(t))
    }

    /// Derived name for an intermediate value of `n`.
    pub fn tmp(&self, n: &NodeInfo, what: &str) -> String {
        format!("{}/{what}", n.name)
    }
}

/// Evaluates `op` on constants with the reference kernels; `None` when they cannot.
fn fold(op: &Op, cs: &[&ConstT], out: &str) -> Option<ConstT> {
    let shapes: Vec<Shape> = cs.iter().map(|c| Shape::new(&c.shape)).collect::<Option<_>>()?;
    let out_shape = op.infer(&shapes).ok()?;
    let datas: Vec<Vec<f32>> = cs.iter().map(|c| c.data.to_f32()).collect();
    let n = out_shape.numel()?;
    if n > super::MAX_ELEMENTS {
        return None;
    }
    let r = std::panic::catch_unwind(|| {
        let operands: Vec<Operand> = datas.iter().zip(&shapes).map(|(d, s)| Operand { view: View::F32(d), shape: *s }).collect();
        let mut o = vec![0f32; n];
        execute(op, &operands, &mut o, &out_shape).ok().map(|_| o)
    })
    .ok()??;
    Some(ConstT::f32(out, out_shape.dims().iter().map(|&d| d as usize).collect(), r))
}

/// ONNX name of an attribute type code.
fn attr_type_name(code: i32) -> String {
    AttributeType::try_from(code).map_or_else(|_| format!("code {code}"), |t| t.as_str_name().to_string())
}

/// Newest default-domain opset the importer knows the semantics of (the newest in the
/// conformance cases it is tested on); a newer model may use operator versions it would misread.
pub const MAX_OPSET: i64 = 27;

/// Refuses models without a usable default-domain opset, or with one newer than [`MAX_OPSET`].
fn check_opset(model: &ModelProto) -> Result<(), ImportError> {
    let v = model.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map(|o| o.version);
    match v {
        None => Err(ImportError::Graph("the model declares no opset for the default ONNX domain (opset_import)".into())),
        Some(v) if v < 1 => Err(ImportError::Graph(format!("the model declares opset {v} for the default ONNX domain; opsets start at 1"))),
        Some(v) if v > MAX_OPSET => Err(ImportError::Graph(format!(
            "the model uses opset {v}, newer than the newest sprig knows ({MAX_OPSET}); re-export it with opset {MAX_OPSET} or older"
        ))),
        Some(_) => Ok(()),
    }
}

fn declared_shape(vi: &tract_onnx::pb::ValueInfoProto) -> (i32, Option<Vec<Result<usize, String>>>) {
    match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(tt)) => {
            let shape = tt.shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(dimension::Value::DimValue(v)) if *v >= 0 => Ok(*v as usize),
                        Some(dimension::Value::DimParam(p)) => Err(p.clone()),
                        _ => Err("?".to_string()),
                    })
                    .collect()
            });
            (tt.elem_type, shape)
        }
        None => (0, None),
    }
}

/// Imports a model (without the optimization passes).
pub fn import(model: &ModelProto, model_dir: Option<&str>, opts: &ImportOptions) -> Result<Graph, ImportError> {
    let graph = model.graph.as_ref().ok_or_else(|| ImportError::Parse("the model has no graph".into()))?;
    let opset_of = |domain: &str| -> i64 {
        let d = if domain == "ai.onnx" { "" } else { domain };
        model.opset_import.iter().find(|o| o.domain == d || (d.is_empty() && o.domain == "ai.onnx")).map(|o| o.version).unwrap_or(0)
    };
    let mut cx = Ctx {
        g: Graph::default(),
        values: HashMap::new(),
        reserved: HashSet::new(),
        used: HashSet::new(),
        taken: HashSet::new(),
        node_names: HashSet::new(),
        const_cache: HashMap::new(),
        qdq: HashMap::new(),
    };
    check_opset(model)?;
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for i in graph.input.iter().map(|v| v.name.as_str()).chain(graph.initializer.iter().map(|t| t.name.as_str())) {
        producer.insert(i, usize::MAX);
    }
    for (idx, n) in graph.node.iter().enumerate() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            if let Some(prev) = producer.insert(o, idx) {
                let by = |i: usize| match graph.node.get(i) {
                    Some(p) if !p.name.is_empty() => format!("node `{}`", p.name),
                    Some(p) => format!("node {i} ({})", p.op_type),
                    None => "a graph input or initializer".to_string(),
                };
                return Err(ImportError::Graph(format!("value `{o}` is produced more than once (by {} and {})", by(prev), by(idx))));
            }
        }
        cx.reserved.extend(n.output.iter().cloned());
        cx.used.extend(n.input.iter().filter(|s| !s.is_empty()).cloned());
    }
    cx.reserved.extend(graph.input.iter().map(|i| i.name.clone()));
    cx.reserved.extend(graph.initializer.iter().map(|i| i.name.clone()));
    cx.used.extend(graph.output.iter().map(|o| o.name.clone()));

    for init in &graph.initializer {
        let c = proto::load_tensor(init, &init.name, model_dir)?;
        cx.values.insert(init.name.clone(), Val::Const(c));
    }
    if !graph.sparse_initializer.is_empty() {
        return Err(ImportError::Graph("sparse initializers are not supported".into()));
    }
    for unknown in opts.input_shapes.keys() {
        if !graph.input.iter().any(|i| &i.name == unknown) {
            let names: Vec<&str> = graph.input.iter().filter(|i| !cx.values.contains_key(&i.name)).map(|i| i.name.as_str()).collect();
            return Err(ImportError::Graph(format!(
                "--input-shape names `{unknown}`, which is not a graph input (inputs: {})",
                names.join(", ")
            )));
        }
    }
    for vi in &graph.input {
        if cx.values.contains_key(&vi.name) {
            continue; // initializer listed as an input: a constant
        }
        if let Some(type_proto::Value::TensorType(tt)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            let dims = tt.shape.iter().flat_map(|s| s.dim.iter());
            for (axis, d) in dims.enumerate() {
                if let Some(dimension::Value::DimValue(v)) = d.value {
                    if v < 0 {
                        return Err(ImportError::Graph(format!("graph input `{}` has negative dimension {v} at axis {axis}", vi.name)));
                    }
                }
            }
        }
        let (elem, declared) = declared_shape(vi);
        if elem != 0 && !proto::is_float_type(elem) && !proto::is_small_int_type(elem) {
            return Err(ImportError::Graph(format!(
                "graph input `{}` has element type {}; only float inputs and int8 / uint8 / int16 / uint16 inputs (carried as f32) are supported",
                vi.name,
                proto::type_name(elem)
            )));
        }
        let shape: Vec<usize> = if let Some(s) = opts.input_shapes.get(&vi.name) {
            if let Some(d) = &declared {
                let ok = d.len() == s.len() && d.iter().zip(s).all(|(a, b)| a.as_ref().map_or(true, |a| a == b));
                if !ok {
                    return Err(ImportError::Graph(format!(
                        "--input-shape {}={s:?} does not match the declared shape {}",
                        vi.name,
                        fmt_declared(d)
                    )));
                }
            }
            s.clone()
        } else {
            let d = declared.ok_or_else(|| {
                ImportError::Graph(format!("graph input `{}` has no declared shape; pass --input-shape {}=...", vi.name, vi.name))
            })?;
            let mut s = Vec::with_capacity(d.len());
            for (i, x) in d.iter().enumerate() {
                match x {
                    Ok(v) => s.push(*v),
                    Err(_) if i == 0 => s.push(1),
                    Err(p) => {
                        return Err(ImportError::SymbolicDim {
                            input: vi.name.clone(),
                            dim: i,
                            param: p.clone(),
                            declared: fmt_declared(&d),
                        });
                    }
                }
            }
            s
        };
        if shape.len() > MAX_RANK {
            return Err(ImportError::Graph(format!("graph input `{}` has rank {} > {MAX_RANK}", vi.name, shape.len())));
        }
        if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_none_or(|n| n > super::MAX_ELEMENTS) {
            return Err(ImportError::Graph(format!(
                "graph input `{}` has shape {shape:?}: more elements than the limit of {} (2^28)",
                vi.name,
                super::MAX_ELEMENTS
            )));
        }
        cx.taken.insert(vi.name.clone());
        let t = cx.g.add_tensor(vi.name.clone(), shape, None);
        cx.g.inputs.push(t);
        cx.values.insert(vi.name.clone(), Val::Act(t));
    }
    if cx.g.inputs.is_empty() {
        return Err(ImportError::Graph("the model has no (non-constant) input".into()));
    }

    let mut unsupported = Vec::new();
    for (idx, np) in graph.node.iter().enumerate() {
        let name = if np.name.is_empty() { format!("{}_{idx}", np.op_type) } else { np.name.clone() };
        let domain_default = np.domain.is_empty() || np.domain == "ai.onnx";
        let info = NodeInfo { proto: np, name, op_type: &np.op_type, opset: opset_of(&np.domain), emitted: Cell::new(0) };
        let unknown_input = np.input.iter().any(|s| matches!(cx.values.get(s), Some(Val::Unknown)));
        let result = if !domain_default {
            Err(info.unsupported(format!("operator domain `{}` is not supported", np.domain)))
        } else if let Some(h) = ops::handler(&np.op_type) {
            if unknown_input {
                Ok(vec![])
            } else {
                h(&mut cx, &info)
            }
        } else {
            Err(info.unsupported("operator not supported by sprig"))
        };
        match result {
            Ok(vals) => {
                for (i, o) in np.output.iter().enumerate() {
                    if o.is_empty() {
                        continue;
                    }
                    let v = match vals.get(i) {
                        Some(Val::Const(c)) => Val::Const(ConstT { name: o.clone(), shared: true, ..c.clone() }),
                        Some(v) => v.clone(),
                        None if unknown_input => Val::Unknown,
                        None if cx.is_used(o) => return Err(info.unsupported(format!("output {i} (`{o}`) is not supported"))),
                        None => continue,
                    };
                    cx.values.insert(o.clone(), v);
                }
            }
            Err(ImportError::Unsupported(v)) => {
                unsupported.extend(v);
                for o in &np.output {
                    cx.values.insert(o.clone(), Val::Unknown);
                }
            }
            Err(e) => return Err(e),
        }
    }
    if !unsupported.is_empty() {
        return Err(ImportError::Unsupported(unsupported));
    }

    for vo in &graph.output {
        let v = cx
            .values
            .get(&vo.name)
            .cloned()
            .ok_or_else(|| ImportError::Graph(format!("graph output `{}` is not produced by any node", vo.name)))?;
        let t = match v {
            Val::Act(t) => t,
            Val::Const(_) => {
                return Err(ImportError::Graph(format!("graph output `{}` is a constant (it does not depend on the inputs)", vo.name)))
            }
            Val::Unknown => unreachable!("unsupported nodes were reported"),
        };
        let t = if cx.g.tensors[t].name == vo.name {
            t
        } else if cx.g.inputs.contains(&t) || cx.g.outputs.contains(&t) {
            // An input or another output passed through Identity: copy it under the output's name.
            let shape = cx.g.tensors[t].shape.clone();
            let rt = sprig_runtime::Shape::new(&shape).expect("rank checked");
            let o = cx.g.add_tensor(vo.name.clone(), shape, None);
            cx.g.nodes.push(Node {
                name: vo.name.clone(),
                onnx_op: "Identity".into(),
                op: Op::Reshape { shape: rt },
                inputs: vec![t],
                outputs: vec![o],
            });
            o
        } else {
            cx.g.tensors[t].name = vo.name.clone();
            t
        };
        cx.g.outputs.push(t);
    }
    Ok(cx.g)
}

fn fmt_declared(d: &[Result<usize, String>]) -> String {
    let parts: Vec<String> = d
        .iter()
        .map(|x| match x {
            Ok(v) => v.to_string(),
            Err(p) => p.clone(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Convenience: a scalar f32 constant.
pub fn scalar(name: &str, v: f32) -> Val {
    Val::Const(ConstT::new(name, vec![], Data::F(vec![v])))
}
