//! Serialises a planned [`Graph`] into `.sprig` v1 bytes (layout in `docs/FORMAT.md`).

use crate::ir::Graph;
use crate::plan::Plan;
use byteorder::{WriteBytesExt, LE};
use half::f16;
use sprig_runtime::format::{self, encoding, section, Role};
use sprig_runtime::Op;

/// How constant weights are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WeightFormat {
    /// Dense f32.
    #[default]
    F32,
    /// Dense f16 for Conv / Dense weight matrices (biases and other constants stay f32).
    F16,
}

/// Writer settings.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// Weight storage.
    pub weights: WeightFormat,
    /// SHA-256 of the source ONNX file.
    pub source_sha256: [u8; 32],
    /// Producer string.
    pub producer: String,
}

/// Errors the writer reports.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A tensor is both a graph input and a graph output, or otherwise has no valid role.
    #[error("tensor `{0}` is both a graph input and a graph output; sprig needs at least one operator between them")]
    InputIsOutput(String),
    /// A field exceeds the format's 32-bit limits.
    #[error("model too large for the .sprig v1 format ({0})")]
    TooLarge(&'static str),
    /// A codebook tensor whose indices, groups or codebooks are malformed or do not decode to
    /// its values.
    #[error("codebook tensor `{0}` is inconsistent (its indices and codebooks do not decode to its values, or an f16 codebook value is not exact in f16)")]
    Codebook(String),
    /// A u8-affine tensor with a value off its grid, or a grid that is not finite.
    #[error("u8-affine tensor `{0}` is inconsistent (a value is not exactly on its grid lo + step * q, or the grid is not finite)")]
    U8Affine(String),
    /// An input-major weight not used exactly as the weight of Dense / 1×1 Conv layers.
    #[error("tensor `{0}` is stored input-major but is not only the weight of Dense or 1x1 Conv (group 1, no padding) layers")]
    InputMajor(String),
    /// A tensor has more dimensions than the runtime supports.
    #[error("tensor `{0}` has rank {1}; the runtime supports at most 6")]
    Rank(String, usize),
}

fn u32_of(x: usize, what: &'static str) -> Result<u32, WriteError> {
    u32::try_from(x).map_err(|_| WriteError::TooLarge(what))
}

fn pad_to(buf: &mut Vec<u8>, align: usize) {
    while !buf.len().is_multiple_of(align) {
        buf.push(0);
    }
}

/// Which constants are stored as f16: under `WeightFormat::F16` those used only as the weight
/// operand (index 1) of Conv / Dense; in any case those used only as the bias (operand 2) of
/// Conv layers whose weights are codebooks with f16 values, when every value is exact in f16
/// (lossless: `sprig compress --codebook` rounds those biases).
pub fn f16_tensors(g: &Graph, weights: WeightFormat) -> Vec<bool> {
    let mut use_ok = vec![weights == WeightFormat::F16; g.tensors.len()];
    let mut bias_ok = vec![true; g.tensors.len()];
    let mut used = vec![false; g.tensors.len()];
    for n in &g.nodes {
        let layer = matches!(n.op, Op::Conv(_) | Op::Dense { .. });
        let f16_book = matches!(n.op, Op::Conv(_))
            && n.inputs.get(1).is_some_and(|&w| {
                matches!(&g.tensors[w].storage, crate::ir::Storage::Codebook(cb) | crate::ir::Storage::InputMajorCodebook(cb) if cb.f16_values)
            });
        for (k, &t) in n.inputs.iter().enumerate() {
            used[t] = true;
            if !(k == 1 && layer) {
                use_ok[t] = false;
            }
            if !(k == 2 && f16_book) {
                bias_ok[t] = false;
            }
        }
    }
    (0..g.tensors.len())
        .map(|t| {
            let data = g.tensors[t].data.as_ref();
            used[t]
                && ((use_ok[t] && data.is_some_and(|d| d.iter().all(|v| f16::from_f32(*v).is_finite())))
                    || (bias_ok[t] && data.is_some_and(|d| d.iter().all(|&v| f16::from_f32(v).to_f32().to_bits() == v.to_bits()))))
        })
        .collect()
}

/// The row-major `[a, b, rest..]` values as `[b, a, rest..]`.
pub fn swap01_values(values: &[f32], a: usize, b: usize) -> Vec<f32> {
    let rest = values.len() / (a * b).max(1);
    let mut out = Vec::with_capacity(values.len());
    for j in 0..b {
        for i in 0..a {
            out.extend_from_slice(&values[(i * b + j) * rest..(i * b + j + 1) * rest]);
        }
    }
    out
}

/// Whether constant `t` may be stored input-major: a rank-2+ tensor read only as the weight
/// (operand 1) of Dense layers, or of Conv layers with group 1, a 1×1 kernel and no padding.
pub fn input_major_ok(g: &Graph, t: usize) -> bool {
    let shape = &g.tensors[t].shape;
    let mut used = false;
    for n in &g.nodes {
        for (k, &i) in n.inputs.iter().enumerate() {
            if i != t {
                continue;
            }
            let ok = k == 1
                && match n.op {
                    Op::Dense { .. } => shape.len() == 2,
                    Op::Conv(a) => a.group == 1 && a.pads == [0; 4] && shape.len() >= 3 && shape[2..].iter().all(|&d| d == 1),
                    _ => false,
                };
            if !ok {
                return false;
            }
            used = true;
        }
    }
    used && !g.outputs.contains(&t)
}

/// Produces the file bytes.
pub fn write(g: &Graph, plan: &Plan, opts: &WriteOptions) -> Result<Vec<u8>, WriteError> {
    let nt = g.tensors.len();
    let mut strings: Vec<u8> = Vec::new();
    let mut add_str = |s: &str| -> Result<(u32, u32), WriteError> {
        let off = u32_of(strings.len(), "strings")?;
        strings.extend_from_slice(s.as_bytes());
        Ok((off, u32_of(s.len(), "string")?))
    };
    let producer = add_str(&opts.producer)?;
    let half = f16_tensors(g, opts.weights);

    let mut data: Vec<u8> = Vec::new();
    let mut tensors: Vec<u8> = Vec::with_capacity(nt * format::TENSOR_RECORD_LEN);
    for (i, t) in g.tensors.iter().enumerate() {
        if t.shape.len() > sprig_runtime::MAX_RANK {
            return Err(WriteError::Rank(t.name.clone(), t.shape.len()));
        }
        let is_in = g.inputs.contains(&i);
        let is_out = g.outputs.contains(&i);
        if is_in && is_out {
            return Err(WriteError::InputIsOutput(t.name.clone()));
        }
        let role = match (&t.data, is_in, is_out) {
            (Some(_), _, _) => Role::Constant,
            (None, true, _) => Role::Input,
            (None, _, true) => Role::Output,
            _ => Role::Activation,
        };
        let (name_off, name_len) = add_str(&t.name)?;
        let (enc, offset, len) = match &t.data {
            Some(values) => {
                // f32 payloads start on 16 bytes, for the SIMD loads; the rest on what their
                // views need (format 1.9).
                let f32_payload = matches!(t.storage, crate::ir::Storage::Bsr { .. })
                    || (matches!(t.storage, crate::ir::Storage::Dense | crate::ir::Storage::InputMajor) && !half[i]);
                pad_to(&mut data, if f32_payload { format::ALIGN } else { format::COMPACT_CONST_ALIGN });
                let off = data.len();
                let input_major_cb = match &t.storage {
                    crate::ir::Storage::InputMajorCodebook(cb) => Some(cb),
                    _ => None,
                };
                let codebook = match &t.storage {
                    crate::ir::Storage::Codebook(cb) | crate::ir::Storage::InputMajorCodebook(cb) => Some(cb),
                    _ => None,
                };
                let enc = if let Some(cb) = codebook {
                    let mut dims: Vec<u32> = t.shape.iter().map(|&d| u32_of(d, "dimension")).collect::<Result<_, _>>()?;
                    // Input-major payloads are over the matrix with dims 0 and 1 swapped.
                    let transposed;
                    let values = if input_major_cb.is_some() {
                        if dims.len() < 2 {
                            return Err(WriteError::InputMajor(t.name.clone()));
                        }
                        dims.swap(0, 1);
                        transposed = swap01_values(values, t.shape[0], t.shape[1]);
                        &transposed
                    } else {
                        values
                    };
                    let (rows, cols) = sprig_runtime::format::bsr_matrix(&dims);
                    let consistent = cb.row_group.len() == rows
                        && cb.indices.len() == rows * cols
                        && (1..=format::CODEBOOK_MAX_BITS).contains(&cb.bits)
                        && cb.codebooks.len() == cb.groups() << cb.bits
                        && (1..=format::CODEBOOK_MAX_GROUPS).contains(&cb.groups())
                        && cb.row_group.iter().all(|&g| (g as usize) < cb.groups())
                        && cb.indices.iter().all(|&i| (i as usize) < 1 << cb.bits)
                        && (!cb.f16_values || cb.codebooks.iter().all(|&v| f16::from_f32(v).to_f32() == v))
                        && cb.decode() == *values;
                    if !consistent {
                        return Err(WriteError::Codebook(t.name.clone()));
                    }
                    data.extend_from_slice(&sprig_runtime::format::encode_codebook(
                        rows,
                        cols,
                        cb.bits,
                        cb.f16_values,
                        &cb.row_group,
                        &cb.codebooks,
                        &cb.indices,
                    ));
                    encoding::CODEBOOK
                } else if let crate::ir::Storage::Bsr { br, bc } = t.storage {
                    let dims: Vec<u32> = t.shape.iter().map(|&d| u32_of(d, "dimension")).collect::<Result<_, _>>()?;
                    let (rows, cols) = sprig_runtime::format::bsr_matrix(&dims);
                    if br == 0
                        || bc == 0
                        || br > 65535
                        || bc > 65535
                        || cols.div_ceil(bc) > format::BSR_MAX_BLOCK_COLS
                        || values.len() != rows * cols
                    {
                        return Err(WriteError::TooLarge(
                            "block-sparse tensor: blocks of 1..=65535 rows/columns and at most 65536 block columns",
                        ));
                    }
                    data.extend_from_slice(&sprig_runtime::format::encode_bsr(rows, cols, br, bc, values));
                    encoding::BSR_F32
                } else if let crate::ir::Storage::U8Affine { lo, step } = t.storage {
                    let payload = sprig_runtime::format::encode_u8_affine(lo, step, values)
                        .filter(|_| sprig_runtime::view::Affine8 { lo, step, q: &[] }.grid_ok())
                        .ok_or_else(|| WriteError::U8Affine(t.name.clone()))?;
                    data.extend_from_slice(&payload);
                    encoding::U8_AFFINE
                } else if t.storage == crate::ir::Storage::InputMajor {
                    let (rows, cols) = (t.shape.first().copied().unwrap_or(0), t.shape.get(1).copied().unwrap_or(0));
                    for v in swap01_values(values, rows, cols) {
                        if half[i] {
                            data.extend_from_slice(&f16::from_f32(v).to_le_bytes());
                        } else {
                            data.extend_from_slice(&v.to_le_bytes());
                        }
                    }
                    if half[i] {
                        encoding::F16
                    } else {
                        encoding::F32
                    }
                } else if half[i] {
                    for v in values {
                        data.extend_from_slice(&f16::from_f32(*v).to_le_bytes());
                    }
                    encoding::F16
                } else {
                    for v in values {
                        data.extend_from_slice(&v.to_le_bytes());
                    }
                    encoding::F32
                };
                (enc, off, data.len() - off)
            }
            None => (encoding::NONE, plan.offsets[i].unwrap_or(0), t.numel() * 4),
        };
        let mut shape = t.shape.clone();
        if matches!(t.storage, crate::ir::Storage::InputMajor | crate::ir::Storage::InputMajorCodebook(_)) {
            if !input_major_ok(g, i) {
                return Err(WriteError::InputMajor(t.name.clone()));
            }
            shape.swap(0, 1);
        }
        let r = &mut tensors;
        r.write_u32::<LE>(name_off).unwrap();
        r.write_u32::<LE>(name_len).unwrap();
        r.extend_from_slice(&[role as u8, format::DTYPE_F32, shape.len() as u8, enc]);
        for k in 0..sprig_runtime::MAX_RANK {
            r.write_u32::<LE>(u32_of(shape.get(k).copied().unwrap_or(0), "dimension")?).unwrap();
        }
        r.write_u32::<LE>(u32_of(offset, "offset")?).unwrap();
        r.write_u32::<LE>(u32_of(len, "tensor bytes")?).unwrap();
        let (first, last) = if role == Role::Constant { (0, 0) } else { (plan.first[i], plan.last[i]) };
        r.write_u32::<LE>(u32_of(first, "ops")?).unwrap();
        r.write_u32::<LE>(u32_of(last, "ops")?).unwrap();
        let alias = if role == Role::Constant { format::NO_TENSOR } else { plan.alias[i].map(|a| a as u32).unwrap_or(format::NO_TENSOR) };
        r.write_u32::<LE>(alias).unwrap();
        r.extend_from_slice(&[0u8; 8]);
    }

    let mut ops: Vec<u8> = Vec::with_capacity(g.nodes.len() * format::OP_RECORD_LEN);
    let mut operands: Vec<u8> = Vec::new();
    for n in &g.nodes {
        let (name_off, name_len) = add_str(&n.name)?;
        let start = u32_of(operands.len() / 4, "operands")?;
        for &t in n.inputs.iter().chain(&n.outputs) {
            operands.write_u32::<LE>(t as u32).unwrap();
        }
        ops.write_u16::<LE>(n.op.kind_code()).unwrap();
        let lut = matches!(n.op, Op::Dense { .. })
            && n.inputs.get(1).is_some_and(|&w| matches!(&g.tensors[w].storage, crate::ir::Storage::Codebook(cb) if cb.lut));
        let input_sparse = n
            .inputs
            .get(1)
            .is_some_and(|&w| matches!(g.tensors[w].storage, crate::ir::Storage::InputMajor | crate::ir::Storage::InputMajorCodebook(_)));
        let kernel = match (lut, input_sparse) {
            (true, _) => format::kernel::CODEBOOK_LUT,
            (_, true) => format::kernel::INPUT_SPARSE,
            _ => format::kernel::DEFAULT,
        };
        ops.write_u16::<LE>(kernel).unwrap();
        ops.write_u16::<LE>(n.inputs.len() as u16).unwrap();
        ops.write_u16::<LE>(n.outputs.len() as u16).unwrap();
        ops.write_u32::<LE>(start).unwrap();
        ops.write_u32::<LE>(name_off).unwrap();
        ops.write_u32::<LE>(name_len).unwrap();
        ops.write_u32::<LE>(0).unwrap();
        for w in n.op.encode() {
            ops.write_u32::<LE>(w).unwrap();
        }
    }

    let mut meta: Vec<u8> = Vec::new();
    meta.write_u32::<LE>(producer.0).unwrap();
    meta.write_u32::<LE>(producer.1).unwrap();
    meta.extend_from_slice(&opts.source_sha256);
    meta.write_u32::<LE>(u32_of(plan.arena_len, "arena")?).unwrap();
    meta.write_u32::<LE>(u32_of(plan.lower_bound, "arena")?).unwrap();
    meta.write_u32::<LE>(g.inputs.len() as u32).unwrap();
    meta.write_u32::<LE>(g.outputs.len() as u32).unwrap();
    for &t in g.inputs.iter().chain(&g.outputs) {
        meta.write_u32::<LE>(t as u32).unwrap();
    }

    let (tensors, ops) = compact_tables(&tensors, &ops, &operands)?;
    let sections: [(u32, &[u8]); 5] = [
        (section::META, &meta),
        (section::STRINGS, &strings),
        (section::TENSORS_COMPACT, &tensors),
        (section::OPS_COMPACT, &ops),
        (section::DATA, &data),
    ];
    // Compact tables need 1.9, the compact section table 1.10; `unpack_tables` rewrites a file
    // for older readers.
    Ok(assemble(&sections, format::SECTION_TABLE_MINOR))
}

fn put_values(out: &mut Vec<u8>, values: impl IntoIterator<Item = u32>) {
    let mut b = [0u8; 5];
    for v in values {
        let n = format::packed::encode(v, &mut b);
        out.extend_from_slice(&b[..n]);
    }
}

/// A packed table (`docs/FORMAT.md`, packed tables) of `records`, with 2-byte starts when they
/// fit.
fn packed_table(records: &[Vec<u8>]) -> Result<Vec<u8>, WriteError> {
    let starts: Vec<usize> = records.iter().scan(0, |at, r| Some(std::mem::replace(at, *at + r.len()))).collect();
    let width: u8 = if starts.last().is_none_or(|&s| s <= u16::MAX as usize) { 2 } else { 4 };
    let mut out = Vec::new();
    out.write_u32::<LE>(u32_of(records.len(), "records")?).unwrap();
    out.extend_from_slice(&[width, 0, 0, 0]);
    for &s in &starts {
        if width == 2 {
            out.write_u16::<LE>(s as u16).unwrap();
        } else {
            out.write_u32::<LE>(u32_of(s, "packed table")?).unwrap();
        }
    }
    for r in records {
        out.extend_from_slice(r);
    }
    Ok(out)
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le16(b: &[u8], at: usize) -> u32 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as u32
}

/// Bodies of the TENSORS_PACKED, OPS_PACKED and OPERANDS16 sections.
pub type PackedTables = (Vec<u8>, Vec<u8>, Vec<u8>);

/// The packed forms (format 1.6) of fixed-size TENSORS, OPS and OPERANDS tables: the same
/// values, so a reader decodes identical tensors and operators from either.
pub fn pack_tables(tensors: &[u8], ops: &[u8], operands: &[u8]) -> Result<PackedTables, WriteError> {
    let [trecs, orecs] = table_records(tensors, ops, false, |r, rec| {
        put_values(rec, [le32(r, 8)]);
        Ok(())
    })?;
    let mut ids = Vec::with_capacity(operands.len() / 2);
    for id in operands.chunks_exact(4).map(|b| le32(b, 0)) {
        ids.write_u16::<LE>(u16::try_from(id).map_err(|_| WriteError::TooLarge("tensor ids above 65535"))?).unwrap();
    }
    Ok((packed_table(&trecs)?, packed_table(&orecs)?, ids))
}

/// The compact forms (format 1.9) of fixed-size TENSORS, OPS and OPERANDS tables: the values of
/// [`pack_tables`], with each operator's operand ids inside its record, and constants' payload
/// offsets in units of 4 without their (fixed) lifetime and alias.
pub fn compact_tables(tensors: &[u8], ops: &[u8], operands: &[u8]) -> Result<(Vec<u8>, Vec<u8>), WriteError> {
    let [trecs, orecs] = table_records(tensors, ops, true, |r, rec| {
        let (start, n_ids) = (le32(r, 8) as usize, le16(r, 4) as usize + le16(r, 6) as usize);
        let ids = operands.get(4 * start..4 * (start + n_ids)).ok_or(WriteError::TooLarge("operand table"))?;
        put_values(rec, ids.chunks_exact(4).map(|b| le32(b, 0)));
        Ok(())
    })?;
    Ok((packed_table(&trecs)?, packed_table(&orecs)?))
}

/// The LEB128 records of packed (`compact` false) or compact tables from fixed-size TENSORS and
/// OPS records; `operands` writes what follows an operator's four leading values (its first
/// operand index, or its ids).
fn table_records(
    tensors: &[u8],
    ops: &[u8],
    compact: bool,
    operands: impl Fn(&[u8], &mut Vec<u8>) -> Result<(), WriteError>,
) -> Result<[Vec<Vec<u8>>; 2], WriteError> {
    let mut trecs = Vec::new();
    for r in tensors.chunks_exact(format::TENSOR_RECORD_LEN) {
        let rank = r[10] as usize;
        // Compact constants drop their lifetime and alias, which are fixed.
        let short = compact && r[8] == Role::Constant as u8;
        let (offset, alias) = (le32(r, 36), le32(r, 52));
        let unit = if short { format::packed::COMPACT_CONST_UNIT } else { format::packed::OFFSET_UNIT };
        let fixed_life = le32(r, 44) == 0 && le32(r, 48) == 0 && alias == format::NO_TENSOR;
        if !offset.is_multiple_of(unit) || r[9] != format::DTYPE_F32 || rank > sprig_runtime::MAX_RANK || (short && !fixed_life) {
            return Err(WriteError::TooLarge("a tensor record that packed tables cannot hold"));
        }
        let mut v = vec![le32(r, 0), le32(r, 4), r[8] as u32, r[11] as u32, rank as u32];
        v.extend((0..rank).map(|k| le32(r, 12 + 4 * k)));
        v.extend([offset / unit, le32(r, 40)]);
        if !short {
            v.extend([le32(r, 44), le32(r, 48), if alias == format::NO_TENSOR { 0 } else { alias + 1 }]);
        }
        let mut rec = Vec::new();
        put_values(&mut rec, v);
        trecs.push(rec);
    }
    let mut orecs = Vec::new();
    for r in ops.chunks_exact(format::OP_RECORD_LEN) {
        let words: Vec<u32> = (0..sprig_runtime::op::ATTR_WORDS).map(|k| le32(r, format::OP_ATTRS_AT + 4 * k)).collect();
        let n_words = words.iter().rposition(|&w| w != 0).map_or(0, |k| k + 1);
        let mut rec = Vec::new();
        put_values(&mut rec, [le16(r, 0), le16(r, 2), le16(r, 4), le16(r, 6)]);
        operands(r, &mut rec)?;
        put_values(&mut rec, [le32(r, 12), le32(r, 16), n_words as u32]);
        put_values(&mut rec, words[..n_words].iter().copied());
        orecs.push(rec);
    }
    Ok([trecs, orecs])
}

/// True for the fused QuantizeLinear → DequantizeLinear operator (format 1.8).
fn is_quantize_dequantize(op: &sprig_runtime::Op) -> bool {
    matches!(op, sprig_runtime::Op::Unary(sprig_runtime::UnaryKind::QuantizeDequantize { .. }))
}

/// `file` (a valid `.sprig`) with packed tables rewritten as fixed-size ones, declaring format
/// 1.5 (the newest without packed tables), for readers older than 1.6; a file with u8-affine
/// constants declares 1.7, one with QuantizeDequantize operators 1.8, which they need (older
/// readers reject them by name either way).
/// Files whose tables are already fixed come back unchanged.
pub fn unpack_tables(file: &[u8]) -> Result<Vec<u8>, sprig_runtime::Error> {
    let model = sprig_runtime::Model::parse(file)?;
    let mut secs = sections_of(file, model.minor_version())?;
    let unpacked = |k: u32| {
        !matches!(k, section::TENSORS_PACKED | section::OPS_PACKED | section::OPERANDS16 | section::TENSORS_COMPACT | section::OPS_COMPACT)
    };
    if secs.iter().all(|s| unpacked(s.0)) {
        return Ok(file.to_vec());
    }
    // Compact constants may start on 4 bytes: fixed records need 16, so their payloads move to
    // a new DATA, in tensor order.
    let old_data = secs.iter().find(|s| s.0 == section::DATA).map(|s| s.1.clone()).unwrap_or_default();
    let mut new_data: Option<Vec<u8>> = None;
    let mut operands_out: Option<Vec<u8>> = None;
    let fixed_tensor = |out: &mut Vec<u8>, v: &[u32], offset: u32, life: [u32; 3]| {
        let rank = v[4] as usize;
        out.write_u32::<LE>(v[0]).unwrap();
        out.write_u32::<LE>(v[1]).unwrap();
        out.extend_from_slice(&[v[2] as u8, format::DTYPE_F32, rank as u8, v[3] as u8]);
        for k in 0..sprig_runtime::MAX_RANK {
            out.write_u32::<LE>(if k < rank { v[5 + k] } else { 0 }).unwrap();
        }
        out.write_u32::<LE>(offset).unwrap();
        out.write_u32::<LE>(v[6 + rank]).unwrap();
        out.write_u32::<LE>(life[0]).unwrap();
        out.write_u32::<LE>(life[1]).unwrap();
        out.write_u32::<LE>(life[2].checked_sub(1).unwrap_or(format::NO_TENSOR)).unwrap();
        out.extend_from_slice(&[0u8; 8]);
    };
    let fixed_op = |out: &mut Vec<u8>, head: &[u32], start: u32, name: [u32; 2], words: &[u32]| {
        for &x in head {
            out.write_u16::<LE>(x as u16).unwrap();
        }
        out.write_u32::<LE>(start).unwrap();
        out.write_u32::<LE>(name[0]).unwrap();
        out.write_u32::<LE>(name[1]).unwrap();
        out.write_u32::<LE>(0).unwrap();
        for k in 0..sprig_runtime::op::ATTR_WORDS {
            out.write_u32::<LE>(words.get(k).copied().unwrap_or(0)).unwrap();
        }
    };
    let records = |body: &[u8]| -> Vec<Vec<u32>> {
        let t = format::packed::Table::parse(body, usize::MAX).expect("validated by parse");
        (0..t.len())
            .map(|i| {
                let mut v = format::packed::Values::new(t.record(i).unwrap());
                std::iter::from_fn(|| v.next()).collect()
            })
            .collect()
    };
    let mut u8_affine = false;
    for (kind, body) in secs.iter_mut() {
        match *kind {
            section::TENSORS_PACKED => {
                let mut out = Vec::new();
                for v in records(body) {
                    u8_affine |= v[3] == encoding::U8_AFFINE as u32;
                    let t = &v[5 + v[4] as usize..];
                    fixed_tensor(&mut out, &v, t[0] * format::packed::OFFSET_UNIT, [t[2], t[3], t[4]]);
                }
                *kind = section::TENSORS;
                *body = out;
            }
            section::TENSORS_COMPACT => {
                let (mut out, mut data) = (Vec::new(), Vec::new());
                for v in records(body) {
                    u8_affine |= v[3] == encoding::U8_AFFINE as u32;
                    let t = &v[5 + v[4] as usize..];
                    if v[2] == Role::Constant as u32 {
                        let (off, len) = ((t[0] * format::packed::COMPACT_CONST_UNIT) as usize, t[1] as usize);
                        pad_to(&mut data, format::ALIGN);
                        fixed_tensor(&mut out, &v, data.len() as u32, [0, 0, 0]);
                        data.extend_from_slice(&old_data[off..off + len]);
                    } else {
                        fixed_tensor(&mut out, &v, t[0] * format::packed::OFFSET_UNIT, [t[2], t[3], t[4]]);
                    }
                }
                *kind = section::TENSORS;
                *body = out;
                new_data = Some(data);
            }
            section::OPS_PACKED => {
                let mut out = Vec::new();
                for v in records(body) {
                    fixed_op(&mut out, &v[..4], v[4], [v[5], v[6]], v.get(8..).unwrap_or(&[]));
                }
                *kind = section::OPS;
                *body = out;
            }
            section::OPS_COMPACT => {
                let (mut out, mut ids) = (Vec::new(), Vec::new());
                for v in records(body) {
                    let at = 5 + v[2] as usize;
                    fixed_op(&mut out, &v[..4], (ids.len() / 4) as u32, [v[at], v[at + 1]], v.get(at + 3..).unwrap_or(&[]));
                    for &id in &v[4..at] {
                        ids.write_u32::<LE>(id).unwrap();
                    }
                }
                *kind = section::OPS;
                *body = out;
                operands_out = Some(ids);
            }
            section::OPERANDS16 => {
                *body = body.chunks_exact(2).flat_map(|b| (le16(b, 0)).to_le_bytes()).collect();
                *kind = section::OPERANDS;
            }
            _ => {}
        }
    }
    if let Some(data) = new_data {
        secs.iter_mut().filter(|s| s.0 == section::DATA).for_each(|s| s.1 = data.clone());
    }
    if let Some(ids) = operands_out {
        // Before DATA, where the writer put the operand table.
        let at = secs.iter().position(|s| s.0 == section::DATA).unwrap_or(secs.len());
        secs.insert(at, (section::OPERANDS, ids));
    }
    let refs: Vec<(u32, &[u8])> = secs.iter().map(|(k, b)| (*k, b.as_slice())).collect();
    // 1.5 (fixed tables), unless a u8-affine constant needs 1.7 or a QuantizeDequantize 1.8
    // (whose readers take fixed tables).
    let qdq = (0..model.num_ops()).filter_map(|i| model.op(i)).any(|o| is_quantize_dequantize(&o.op));
    let minor = if qdq {
        format::QUANTIZE_DEQUANTIZE_MINOR
    } else if u8_affine {
        format::U8_AFFINE_MINOR
    } else {
        format::PACKED_MINOR - 1
    };
    let out = assemble(&refs, minor);
    debug_assert_eq!(sprig_runtime::Model::parse(&out).map(|m| m.num_ops()), Ok(model.num_ops()));
    Ok(out)
}

/// The sections of `file` (a valid `.sprig` of format 1.`minor`), kind and bytes, in table order.
pub fn sections_of(file: &[u8], minor: u16) -> Result<Vec<(u32, Vec<u8>)>, sprig_runtime::Error> {
    let table = format::SectionTable::read(file, minor)?;
    Ok(table.iter().map(|s| (s.kind, file[s.offset as usize..(s.offset + s.len) as usize].to_vec())).collect())
}

/// Lays out header (format version 1.`minor`, at least 1.4 since every file now carries the
/// header checksum), section table and sections, and fills in the checksums. Sections are
/// 16-byte aligned, and so is the file's length; from 1.9 only DATA is aligned and nothing
/// follows the last section; from 1.10 the section table is compact (no offsets or section
/// CRCs; 1.9's fixed table instead if a section is longer than `u32::MAX` bytes).
pub fn assemble(sections: &[(u32, &[u8])], minor: u16) -> Vec<u8> {
    let minor = minor.max(format::HEADER_CRC_MINOR);
    let lens: Vec<(u32, usize)> = sections.iter().map(|(k, b)| (*k, b.len())).collect();
    let compact_table = if minor >= format::SECTION_TABLE_MINOR { format::encode_section_table(&lens) } else { None };
    let minor = if compact_table.is_none() { minor.min(format::SECTION_TABLE_MINOR - 1) } else { minor };
    let compact = minor >= format::COMPACT_MINOR;
    let fixed = if compact_table.is_some() { 0 } else { sections.len() };
    let mut out = vec![0u8; format::HEADER_LEN + fixed * format::SECTION_ENTRY_LEN];
    out.extend_from_slice(compact_table.as_deref().unwrap_or(&[]));
    let mut entries = Vec::new();
    for (kind, body) in sections {
        if !compact || *kind == section::DATA {
            pad_to(&mut out, format::ALIGN);
        }
        entries.push((*kind, format::crc32(body), out.len() as u64, body.len() as u64));
        out.extend_from_slice(body);
    }
    if !compact {
        pad_to(&mut out, format::ALIGN);
    }
    entries.truncate(fixed);
    out[..8].copy_from_slice(&format::MAGIC);
    out[8..10].copy_from_slice(&format::VERSION_MAJOR.to_le_bytes());
    out[10..12].copy_from_slice(&minor.to_le_bytes());
    out[12..16].copy_from_slice(&(fixed as u32).to_le_bytes());
    let file_len = out.len() as u64;
    out[16..24].copy_from_slice(&file_len.to_le_bytes());
    for (i, (kind, crc, off, len)) in entries.into_iter().enumerate() {
        let e = format::HEADER_LEN + i * format::SECTION_ENTRY_LEN;
        out[e..e + 4].copy_from_slice(&kind.to_le_bytes());
        out[e + 4..e + 8].copy_from_slice(&crc.to_le_bytes());
        out[e + 8..e + 16].copy_from_slice(&off.to_le_bytes());
        out[e + 16..e + 24].copy_from_slice(&len.to_le_bytes());
    }
    let crc = format::crc32(&out[format::HEADER_LEN..]);
    out[24..28].copy_from_slice(&crc.to_le_bytes());
    let crc = format::crc32(&out[..28]);
    out[28..32].copy_from_slice(&crc.to_le_bytes());
    out
}
