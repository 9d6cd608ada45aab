//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and their regression tests
//! (`tools/tests/fuzz_regressions.rs`), so a crash input found by fuzzing replays through exactly
//! the code that found it.
//!
//! Each function accepts any bytes. It returns normally when sprig behaved (accepted the input, or
//! rejected it with an error); it panics only when a guarantee is broken, and the panic message
//! names the guarantee:
//! - the reader, importer and writer never panic and never allocate without bound;
//! - a file the writer produces is accepted by the reader and runs;
//! - identical inputs give bit-identical outputs across runs and across sessions;
//! - an arena one byte smaller than the model states is refused.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use sprig_runtime::{format, Error, Model, Session};
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataLocation, tensor_shape_proto::dimension, type_proto, AttributeProto, ModelProto,
    StringStringEntryProto,
};

use crate::compile::compile;
use crate::import::{import_model_proto, import_onnx_bytes, ImportOptions};
use crate::writer::WeightFormat;

/// Largest arena (bytes) a harness run allocates; bigger models are parsed but not run.
pub const MAX_ARENA: usize = 64 << 20;

/// Most multiply-accumulates per inference a harness run executes (the largest real model,
/// ic_resnet8, has 12.5 M): a structural edit that multiplies the batch by 1000 is valid, only
/// slow, and under the sanitizers would read as a hang.
pub const MAX_MACS: u64 = 32_000_000;

/// `.sprig` bytes: parse, and run whatever parses.
///
/// `data[0]` selects variants: bit 0 recomputes every section CRC and the header CRC and bit 1
/// the header's file length (so mutations reach the structural checks behind the checksums),
/// bit 2 places the file at an odd address (unaligned constants), bit 3 fills inputs with the
/// bytes after the file instead of a fixed pattern. With bit 0 set, the first 4 bytes of the rest
/// give the file length, so that input bytes can follow it.
pub fn sprig_model(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (file, tail) = if mode & 8 != 0 && rest.len() >= 4 {
        let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let body = &rest[4..];
        body.split_at(n.min(body.len()))
    } else {
        (rest, &[][..])
    };
    let mut file = file.to_vec();
    if mode & 2 != 0 && file.len() >= format::HEADER_LEN {
        let n = file.len() as u64;
        file[16..24].copy_from_slice(&n.to_le_bytes());
    }
    if mode & 1 != 0 {
        refix_checksums(&mut file);
    }
    // A u128-backed buffer gives 16-byte alignment; offset 1 gives none.
    let shift = usize::from(mode & 4 != 0);
    let mut store = vec![0u128; (file.len() + shift).div_ceil(16)];
    let buf: &mut [u8] = bytemuck_bytes(&mut store);
    buf[shift..shift + file.len()].copy_from_slice(&file);
    let bytes = &buf[shift..shift + file.len()];
    let Ok(model) = Model::parse(bytes) else { return };
    run_model(&model, tail);
}

/// Recomputes the section CRCs of every in-bounds section and the header CRC, as the writer
/// would; leaves everything else (including impossible tables) as it is.
pub fn refix_checksums(file: &mut [u8]) {
    if file.len() < format::HEADER_LEN {
        return;
    }
    let n = u32::from_le_bytes(file[12..16].try_into().unwrap()) as usize;
    for i in 0..n.min(format::MAX_SECTIONS) {
        let e = format::HEADER_LEN + i * format::SECTION_ENTRY_LEN;
        if e + format::SECTION_ENTRY_LEN > file.len() {
            break;
        }
        let off = u64::from_le_bytes(file[e + 8..e + 16].try_into().unwrap());
        let len = u64::from_le_bytes(file[e + 16..e + 24].try_into().unwrap());
        let end = off.checked_add(len);
        if let Some(end) = end.filter(|&end| end <= file.len() as u64) {
            let crc = format::crc32(&file[off as usize..end as usize]);
            file[e + 4..e + 8].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let crc = format::crc32(&file[format::HEADER_LEN..]);
    file[24..28].copy_from_slice(&crc.to_le_bytes());
    if u16::from_le_bytes([file[10], file[11]]) >= format::HEADER_CRC_MINOR {
        let crc = format::crc32(&file[..28]);
        file[28..32].copy_from_slice(&crc.to_le_bytes());
    }
}

fn bytemuck_bytes(store: &mut [u128]) -> &mut [u8] {
    bytemuck::cast_slice_mut(store)
}

/// Runs a parsed model twice in one session and once in a fresh one, with inputs taken from
/// `fill` (a fixed pattern when empty, cycled otherwise, read as f32 bit patterns so NaN and Inf
/// occur); every run that succeeds must give bit-identical outputs. Returns the output bits of
/// the first session, or `None` when the model was not run (arena over [`MAX_ARENA`] or work over
/// [`MAX_MACS`]) or a run was refused.
pub fn run_model(model: &Model<'_>, fill: &[u8]) -> Option<Vec<Vec<u32>>> {
    let need = model.arena_len();
    if need > MAX_ARENA || crate::stats::model_stats(model, 0).macs > MAX_MACS {
        return None;
    }
    let mut arena = vec![0u32; need.div_ceil(4) + 1];
    let arena_bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut arena);
    if need > 0 {
        match Session::new(model, &mut arena_bytes[..need - 1]) {
            Err(Error::ArenaTooSmall { .. }) => {}
            Err(e) => panic!("an arena one byte short was refused with {e:?}, not ArenaTooSmall"),
            Ok(_) => panic!("an arena one byte short of {need} B was accepted"),
        }
    }
    let first = run_once(model, &mut arena_bytes[..need], fill, 2);
    // Dirty the arena: a second session must not depend on what the first left behind.
    for w in arena.iter_mut() {
        *w = 0x7fc0_0001;
    }
    let arena_bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut arena);
    let second = run_once(model, &mut arena_bytes[..need], fill, 1);
    if let (Some(a), Some(b)) = (&first, &second) {
        assert!(a == b, "a fresh session over a dirty arena gave different output bits than the first session");
    }
    first
}

/// Output bits of `runs` runs in one session (asserted identical); `None` if the session or a run
/// was refused.
fn run_once(model: &Model<'_>, arena: &mut [u8], fill: &[u8], runs: usize) -> Option<Vec<Vec<u32>>> {
    let mut s = Session::new(model, arena).ok()?;
    let mut last: Option<Vec<Vec<u32>>> = None;
    for _ in 0..runs {
        let mut k = 0usize;
        for i in 0..model.num_inputs() {
            let x = s.input_mut(i).ok()?;
            for v in x.iter_mut() {
                *v = if fill.len() >= 4 {
                    let j = (4 * k) % (fill.len() - 3);
                    f32::from_le_bytes([fill[j], fill[j + 1], fill[j + 2], fill[j + 3]])
                } else {
                    ((k % 17) as f32 - 8.0) * 0.25
                };
                k += 1;
            }
        }
        s.run().ok()?;
        let outs: Vec<Vec<u32>> =
            (0..model.num_outputs()).map(|i| s.output(i).map(|o| o.iter().map(|v| v.to_bits()).collect()).unwrap_or_default()).collect();
        if let Some(prev) = &last {
            assert!(prev == &outs, "two runs of one session on identical inputs gave different output bits");
        }
        last = Some(outs);
    }
    last
}

/// ONNX bytes: import; whatever imports must compile to a file the reader accepts and that runs.
pub fn onnx_bytes(data: &[u8]) {
    if let Ok(g) = import_onnx_bytes(data, &ImportOptions::default()) {
        compile_and_run(g);
    }
}

fn compile_and_run(g: crate::ir::Graph) {
    let Ok(conv) = compile(g, WeightFormat::F32, [0; 32]) else { return };
    let bytes = conv.bytes;
    let model = match Model::parse(&bytes) {
        Ok(m) => m,
        Err(e) => panic!("the writer produced a file the reader rejects: {e:?}"),
    };
    run_model(&model, &[]);
}

/// The models [`onnx_edit`] mutates: the repository's own (`models/`, `models/zoo/`) and, when
/// `../shared/data/models` is present, the small real ones. Decoded once.
pub fn edit_bases() -> &'static [(PathBuf, ModelProto)] {
    static BASES: OnceLock<Vec<(PathBuf, ModelProto)>> = OnceLock::new();
    BASES.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut paths = vec![root.join("models/digits_cnn.onnx"), root.join("models/digits_mlp.onnx")];
        if let Ok(rd) = std::fs::read_dir(root.join("models/zoo")) {
            let mut zoo: Vec<PathBuf> = rd.flatten().map(|e| e.path().join("model.onnx")).filter(|p| p.exists()).collect();
            zoo.sort();
            paths.extend(zoo);
        }
        for name in ["mnist-8.onnx", "kws_dscnn_fp32.onnx", "hello_edge_ds_cnn_s.onnx"] {
            let p = root.join("../shared/data/models").join(name);
            if p.exists() {
                paths.push(p);
            }
        }
        paths
            .into_iter()
            .filter_map(|p| {
                use tract_onnx::tract_core::prelude::Framework;
                let m = tract_onnx::onnx().proto_model_for_path(&p).ok()?;
                Some((p, m))
            })
            .collect()
    })
}

/// One structural edit of an ONNX model, of the kinds hostile files carry.
#[derive(Arbitrary, Debug)]
enum Edit {
    /// Graph input dimension `dim` set to `v` (may be negative or huge), or made symbolic.
    InputDim { input: u8, dim: u8, v: i64, symbolic: bool },
    /// Initializer dimension set to `v`.
    InitDim { init: u16, dim: u8, v: i64 },
    /// Initializer raw data cut to `len` bytes.
    InitTruncate { init: u16, len: u16 },
    /// Initializer element type code changed.
    InitType { init: u16, code: i32 },
    /// Initializer removed (its consumers lose their weight).
    InitRemove { init: u16 },
    /// Initializer moved to external data at `location`.
    InitExternal { init: u16, location: String, offset: Option<i64>, length: Option<i64> },
    /// Node input `k` renamed to another node's output, a missing name, or "".
    NodeInput { node: u16, k: u8, to: Rename },
    /// Node operator type replaced by a supported one.
    NodeOp { node: u16, op: u8 },
    /// Node removed.
    NodeRemove { node: u16 },
    /// Node duplicated.
    NodeDup { node: u16 },
    /// Attribute changed.
    Attr { node: u16, attr: u8, change: AttrChange },
    /// Opset of the default domain set to `v`.
    Opset { v: i64 },
    /// Graph output renamed to a node's output or a missing name.
    Output { to: Rename },
    /// IR version changed.
    IrVersion { v: i64 },
}

#[derive(Arbitrary, Debug)]
enum Rename {
    /// The `i`-th output of node `node`.
    NodeOutput { node: u16, i: u8 },
    /// A name nothing produces.
    Missing,
    /// The empty name (optional input absent).
    Empty,
}

#[derive(Arbitrary, Debug)]
enum AttrChange {
    /// Declared type code changed, values kept.
    Type(i32),
    /// Integer value.
    Int(i64),
    /// Integer list.
    Ints(Vec<i64>),
    /// Float value.
    Float(f32),
    /// String value.
    Str(Vec<u8>),
    /// Removed.
    Remove,
    /// Added under a name the op may read.
    Add { name: u8, v: i64 },
}

const ATTR_NAMES: [&str; 12] =
    ["axis", "kernel_shape", "strides", "pads", "dilations", "group", "perm", "axes", "keepdims", "auto_pad", "mode", "to"];

fn pick<T>(v: &mut [T], i: usize) -> Option<&mut T> {
    let n = v.len();
    if n == 0 {
        None
    } else {
        v.get_mut(i % n)
    }
}

/// A real model with structural edits: import (external data resolved against the model's
/// folder); whatever imports must compile and run as in [`onnx_bytes`].
pub fn onnx_edit(data: &[u8]) {
    let bases = edit_bases();
    if bases.is_empty() {
        return;
    }
    let mut u = Unstructured::new(data);
    let Ok(which) = u.int_in_range(0..=bases.len() - 1) else { return };
    let Ok(edits) = u.arbitrary::<Vec<Edit>>() else { return };
    let (path, base) = &bases[which];
    let debug = std::env::var_os("SPRIG_FUZZ_DEBUG").is_some();
    if debug {
        eprintln!("base {}\nedits {edits:#?}", path.display());
    }
    let mut m = base.clone();
    apply_edits(&mut m, edits);
    let dir = path.parent().map(|d| d.to_string_lossy().into_owned());
    let r = import_model_proto(&m, dir.as_deref(), &ImportOptions::default());
    if debug {
        match &r {
            Ok(g) => g.nodes.iter().for_each(|n| {
                eprintln!("{} {:?} -> {:?}", n.name, n.op, n.outputs.iter().map(|&t| &g.tensors[t].shape).collect::<Vec<_>>())
            }),
            Err(e) => eprintln!("import error: {e}"),
        }
    }
    if let Ok(g) = r {
        compile_and_run(g);
    }
}

fn apply_edits(m: &mut ModelProto, edits: Vec<Edit>) {
    for e in edits.into_iter().take(8) {
        match e {
            Edit::Opset { v } => {
                if let Some(o) = pick(&mut m.opset_import, 0) {
                    o.version = v;
                }
            }
            Edit::IrVersion { v } => m.ir_version = v,
            _ => {}
        }
        let Some(g) = m.graph.as_mut() else { return };
        let outputs: Vec<Vec<String>> = g.node.iter().map(|n| n.output.clone()).collect();
        let rename = |r: Rename| match r {
            Rename::NodeOutput { node, i } => {
                if outputs.is_empty() {
                    return "missing".to_string();
                }
                let o = &outputs[node as usize % outputs.len()];
                o.get(i as usize % o.len().max(1)).cloned().unwrap_or_default()
            }
            Rename::Missing => "no_such_value".to_string(),
            Rename::Empty => String::new(),
        };
        match e {
            Edit::InputDim { input, dim, v, symbolic } => {
                let Some(vi) = pick(&mut g.input, input as usize) else { continue };
                if let Some(type_proto::Value::TensorType(tt)) = vi.r#type.as_mut().and_then(|t| t.value.as_mut()) {
                    if let Some(d) = tt.shape.as_mut().and_then(|s| pick(&mut s.dim, dim as usize)) {
                        d.value = Some(if symbolic { dimension::Value::DimParam(format!("d{v}")) } else { dimension::Value::DimValue(v) });
                    }
                }
            }
            Edit::InitDim { init, dim, v } => {
                if let Some(d) = pick(&mut g.initializer, init as usize).and_then(|t| pick(&mut t.dims, dim as usize)) {
                    *d = v;
                }
            }
            Edit::InitTruncate { init, len } => {
                if let Some(t) = pick(&mut g.initializer, init as usize) {
                    let n = (len as usize).min(t.raw_data.len());
                    t.raw_data.truncate(n);
                    t.float_data.truncate(n / 4);
                }
            }
            Edit::InitType { init, code } => {
                if let Some(t) = pick(&mut g.initializer, init as usize) {
                    t.data_type = code;
                }
            }
            Edit::InitRemove { init } => {
                let n = g.initializer.len();
                if n > 0 {
                    g.initializer.remove(init as usize % n);
                }
            }
            Edit::InitExternal { init, location, offset, length } => {
                if let Some(t) = pick(&mut g.initializer, init as usize) {
                    t.data_location = Some(DataLocation::External as i32);
                    t.raw_data.clear();
                    t.float_data.clear();
                    let kv = |k: &str, v: String| StringStringEntryProto { key: k.into(), value: v };
                    t.external_data = vec![kv("location", location)];
                    if let Some(o) = offset {
                        t.external_data.push(kv("offset", o.to_string()));
                    }
                    if let Some(l) = length {
                        t.external_data.push(kv("length", l.to_string()));
                    }
                }
            }
            Edit::NodeInput { node, k, to } => {
                let name = rename(to);
                if let Some(s) = pick(&mut g.node, node as usize).and_then(|n| pick(&mut n.input, k as usize)) {
                    *s = name;
                }
            }
            Edit::NodeOp { node, op } => {
                let ops = crate::import::SUPPORTED_OPS;
                if let Some(n) = pick(&mut g.node, node as usize) {
                    n.op_type = ops[op as usize % ops.len()].to_string();
                }
            }
            Edit::NodeRemove { node } => {
                let n = g.node.len();
                if n > 0 {
                    g.node.remove(node as usize % n);
                }
            }
            Edit::NodeDup { node } => {
                if let Some(n) = pick(&mut g.node, node as usize).cloned() {
                    g.node.push(n);
                }
            }
            Edit::Attr { node, attr, change } => {
                let Some(n) = pick(&mut g.node, node as usize) else { continue };
                if let AttrChange::Add { name, v } = change {
                    let name = ATTR_NAMES[name as usize % ATTR_NAMES.len()];
                    n.attribute.push(AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: v, ..Default::default() });
                    continue;
                }
                if let AttrChange::Remove = change {
                    let k = n.attribute.len();
                    if k > 0 {
                        n.attribute.remove(attr as usize % k);
                    }
                    continue;
                }
                let Some(a) = pick(&mut n.attribute, attr as usize) else { continue };
                match change {
                    AttrChange::Type(t) => a.r#type = t,
                    AttrChange::Int(v) => {
                        a.r#type = AttributeType::Int as i32;
                        a.i = v;
                    }
                    AttrChange::Ints(v) => {
                        a.r#type = AttributeType::Ints as i32;
                        a.ints = v;
                    }
                    AttrChange::Float(v) => {
                        a.r#type = AttributeType::Float as i32;
                        a.f = v;
                    }
                    AttrChange::Str(v) => {
                        a.r#type = AttributeType::String as i32;
                        a.s = v;
                    }
                    AttrChange::Remove | AttrChange::Add { .. } => {}
                }
            }
            Edit::Output { to } => {
                let name = rename(to);
                if let Some(o) = pick(&mut g.output, 0) {
                    o.name = name;
                }
            }
            Edit::Opset { .. } | Edit::IrVersion { .. } => {}
        }
    }
}

/// `.npy` bytes: whatever reads has exactly as many values as its shape says.
pub fn npy_read(data: &[u8]) {
    if let Ok(a) = crate::npy::read_f32_bytes(data, "fuzz input") {
        let n: usize = a.shape.iter().product();
        assert_eq!(a.data.len(), n, "an accepted .npy holds {} values for shape {:?}", a.data.len(), a.shape);
    }
}
