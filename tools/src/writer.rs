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
                pad_to(&mut data, format::ALIGN);
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
            _ => format::kernel::REFERENCE,
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

    let sections: [(u32, &[u8]); 6] = [
        (section::META, &meta),
        (section::STRINGS, &strings),
        (section::TENSORS, &tensors),
        (section::OPS, &ops),
        (section::OPERANDS, &operands),
        (section::DATA, &data),
    ];
    // The oldest minor version with every feature used, so older v1 readers still open files
    // that need nothing newer: 1.1 added block-sparse weights, 1.2 codebook weights and kernels,
    // 1.3 the input-sparse kernel and the fused threshold activation.
    let storage_minor = g
        .tensors
        .iter()
        .filter(|t| t.data.is_some())
        .map(|t| match t.storage {
            crate::ir::Storage::Dense => 0,
            crate::ir::Storage::Bsr { .. } => 1,
            crate::ir::Storage::Codebook(_) => 2,
            crate::ir::Storage::InputMajor | crate::ir::Storage::InputMajorCodebook(_) => 3,
        })
        .max()
        .unwrap_or(0);
    let threshold = g.nodes.iter().any(|n| match n.op {
        Op::Conv(a) => matches!(a.act, sprig_runtime::op::Activation::Threshold { .. }),
        Op::Dense { act } => matches!(act, sprig_runtime::op::Activation::Threshold { .. }),
        _ => false,
    });
    let add_relu = g.nodes.iter().any(|n| n.op == Op::Binary(sprig_runtime::BinaryKind::AddRelu));
    let minor: u16 = storage_minor.max(if threshold { 3 } else { 0 }).max(if add_relu { format::ADD_RELU_MINOR } else { 0 });
    Ok(assemble(&sections, minor))
}

/// Lays out header (format version 1.`minor`, at least 1.4 since every file now carries the
/// header checksum), section table and 16-byte-aligned sections, and fills in the checksums.
pub fn assemble(sections: &[(u32, &[u8])], minor: u16) -> Vec<u8> {
    let minor = minor.max(format::HEADER_CRC_MINOR);
    let table_end = format::HEADER_LEN + sections.len() * format::SECTION_ENTRY_LEN;
    let mut out = vec![0u8; table_end];
    let mut entries = Vec::new();
    for (kind, body) in sections {
        pad_to(&mut out, format::ALIGN);
        entries.push((*kind, format::crc32(body), out.len() as u64, body.len() as u64));
        out.extend_from_slice(body);
    }
    pad_to(&mut out, format::ALIGN);
    out[..8].copy_from_slice(&format::MAGIC);
    out[8..10].copy_from_slice(&format::VERSION_MAJOR.to_le_bytes());
    out[10..12].copy_from_slice(&minor.to_le_bytes());
    out[12..16].copy_from_slice(&(sections.len() as u32).to_le_bytes());
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
