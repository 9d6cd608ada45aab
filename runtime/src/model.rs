//! Zero-copy, fully validated view of a `.sprig` file.

use crate::codebook::{Codebook, CodebookInfo};
use crate::error::Error;
use crate::format::packed::{self, Values};
use crate::format::{self, encoding, kernel, section, Role};
use crate::op::{Op, ATTR_WORDS, MAX_OP_INPUTS};
use crate::shape::{Shape, MAX_RANK};
use crate::sparse::{self, Bsr, BsrInfo};
use crate::view::{Affine8, View};
use byteorder::{ByteOrder, LE};

fn rd_u16(b: &[u8], at: usize) -> Result<u16, Error> {
    b.get(at..at + 2).map(LE::read_u16).ok_or(Error::Truncated)
}

fn rd_u32(b: &[u8], at: usize) -> Result<u32, Error> {
    b.get(at..at + 4).map(LE::read_u32).ok_or(Error::Truncated)
}

fn rd_u64(b: &[u8], at: usize) -> Result<u64, Error> {
    b.get(at..at + 8).map(LE::read_u64).ok_or(Error::Truncated)
}

/// One tensor record, decoded.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TensorInfo<'a> {
    /// ONNX tensor name.
    pub name: &'a str,
    /// What the tensor is for.
    pub role: Role,
    /// Shape.
    pub shape: Shape,
    /// Weight encoding (`encoding::NONE` for arena tensors).
    pub encoding: u8,
    /// Arena byte offset (arena tensors) or DATA-relative payload offset (constants).
    pub offset: u32,
    /// Byte length of the buffer or payload.
    pub len: u32,
    /// First operator index during which the buffer is live.
    pub first_op: u32,
    /// Last operator index during which the buffer is live.
    pub last_op: u32,
    /// Tensor whose arena buffer this one shares, if any.
    pub alias: Option<u32>,
}

/// One operator record, decoded.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OpInfo<'a> {
    /// Name of the source node.
    pub name: &'a str,
    /// The operator.
    pub op: Op,
    /// Kernel code (see [`format::kernel`]).
    pub kernel: u16,
    /// Number of input operands.
    pub n_inputs: usize,
    /// Index of the first operand in the operand table (inputs, then outputs); with compact
    /// operator records, where the record's operand ids start in the table's record area.
    operand_start: usize,
}

/// A table of records: fixed-size (format 1.0 to 1.5, and 1.6 files that keep them), packed
/// (1.6, [`format::packed`]) or compact (1.9: packed, with the differences `docs/FORMAT.md`
/// lists).
#[derive(Clone, Copy, Debug)]
enum Records<'a> {
    #[cfg(feature = "legacy-tables")]
    Fixed(&'a [u8], usize),
    #[cfg(feature = "legacy-tables")]
    Packed(packed::Table<'a>),
    Compact(packed::Table<'a>),
}

impl<'a> Records<'a> {
    /// The table in section `kind` (one of the tensor or operator table kinds).
    fn of(body: &'a [u8], kind: u32, max: usize) -> Result<Self, Error> {
        let bad = Error::BadSectionLength { kind };
        let r = match kind {
            section::TENSORS_COMPACT | section::OPS_COMPACT => Records::Compact(packed::Table::parse(body, usize::MAX).ok_or(bad)?),
            #[cfg(feature = "legacy-tables")]
            section::TENSORS | section::OPS => {
                let rec = if kind == section::TENSORS { format::TENSOR_RECORD_LEN } else { format::OP_RECORD_LEN };
                if !body.len().is_multiple_of(rec) {
                    return Err(bad);
                }
                Records::Fixed(body, rec)
            }
            #[cfg(feature = "legacy-tables")]
            _ => Records::Packed(packed::Table::parse(body, usize::MAX).ok_or(bad)?),
            #[cfg(not(feature = "legacy-tables"))]
            _ => return Err(Error::LegacyTables { kind }),
        };
        if r.len() > max {
            return Err(Error::TooManyRecords);
        }
        Ok(r)
    }

    fn len(&self) -> usize {
        match self {
            #[cfg(feature = "legacy-tables")]
            Records::Fixed(b, rec) => b.len() / rec,
            #[cfg(feature = "legacy-tables")]
            Records::Packed(t) => t.len(),
            Records::Compact(t) => t.len(),
        }
    }

    fn get(&self, i: usize) -> Option<&'a [u8]> {
        match self {
            #[cfg(feature = "legacy-tables")]
            Records::Fixed(b, rec) => b.get(i.checked_mul(*rec)?..(i + 1).checked_mul(*rec)?),
            #[cfg(feature = "legacy-tables")]
            Records::Packed(t) => t.record(i),
            Records::Compact(t) => t.record(i),
        }
    }

    /// True for fixed-size records (never without `legacy-tables`, so that the compiler drops
    /// their decoders).
    fn is_fixed(&self) -> bool {
        #[cfg(feature = "legacy-tables")]
        return matches!(self, Records::Fixed(..));
        #[cfg(not(feature = "legacy-tables"))]
        false
    }

    /// The table when it is compact (always without `legacy-tables`).
    fn compact(&self) -> Option<&packed::Table<'a>> {
        match self {
            Records::Compact(t) => Some(t),
            #[cfg(feature = "legacy-tables")]
            _ => None,
        }
    }
}

/// Reads every value of packed record `r` (record `index` of section `kind`) into `out`; returns
/// how many there are, or `BadRecord` when one is malformed or there are more than `out` holds.
/// One decoder for every field keeps the reader small on microcontrollers.
#[inline(never)]
fn packed_values(r: &[u8], out: &mut [u32], kind: u32, index: usize) -> Result<usize, Error> {
    let bad = Error::BadRecord { kind, index: index as u32 };
    let mut v = Values::new(r);
    let mut n = 0;
    while let Some(&b) = v.rest().first() {
        let slot = out.get_mut(n).ok_or(bad)?;
        // Most values are one byte: read those without the general decoder.
        if b < 0x80 {
            *slot = u32::from(b);
            v = Values::new(&v.rest()[1..]);
        } else {
            *slot = v.next().ok_or(bad)?;
        }
        n += 1;
    }
    Ok(n)
}

/// A validated model borrowing the file bytes. Every accessor is infallible for in-range
/// indices because [`Model::parse`] checked every record first.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    strings: &'a [u8],
    tensors: Records<'a>,
    ops: Records<'a>,
    operands: &'a [u8],
    /// Bytes per operand id: 4 (`OPERANDS`) or 2 (`OPERANDS16`); 0 with compact operator
    /// records, which hold their operand ids.
    operand_width: usize,
    data: &'a [u8],
    meta: &'a [u8],
    n_tensors: usize,
    n_ops: usize,
    n_inputs: usize,
    n_outputs: usize,
    arena_len: u32,
    arena_lower_bound: u32,
    minor: u16,
}

/// A graph input or output: name and shape.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IoInfo<'a> {
    /// ONNX name.
    pub name: &'a str,
    /// Shape (batch 1).
    pub shape: Shape,
    /// Tensor index.
    pub tensor: u32,
}

impl<'a> Model<'a> {
    /// Parses and validates a whole file. Never panics; any byte sequence yields `Ok` or the
    /// error naming the first rule broken.
    pub fn parse(bytes: &'a [u8]) -> Result<Model<'a>, Error> {
        let model = Self::read_sections(bytes)?;
        model.validate()?;
        Ok(model)
    }

    /// Header, section table and table forms (the first two steps of `Model::parse`). Not
    /// inlined: its locals must not stay on the stack while `validate` runs (the Cortex-M stack
    /// budget is measured).
    #[inline(never)]
    fn read_sections(bytes: &'a [u8]) -> Result<Model<'a>, Error> {
        if bytes.len() < format::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if bytes[..8] != format::MAGIC {
            return Err(Error::BadMagic);
        }
        let major = rd_u16(bytes, 8)?;
        let minor = rd_u16(bytes, 10)?;
        if major != format::VERSION_MAJOR {
            return Err(Error::UnsupportedVersion { major, minor });
        }
        let header_crc = rd_u32(bytes, 28)?;
        if minor >= format::HEADER_CRC_MINOR {
            if format::crc32(&bytes[..28]) != header_crc {
                return Err(Error::HeaderChecksumMismatch);
            }
        } else if header_crc != 0 {
            return Err(Error::NonZeroReserved);
        }
        let file_len = rd_u64(bytes, 16)?;
        if file_len != bytes.len() as u64 {
            if file_len > bytes.len() as u64 {
                return Err(Error::Truncated);
            }
            return Err(Error::LengthMismatch { declared: file_len, actual: bytes.len() as u64 });
        }
        if format::crc32(&bytes[format::HEADER_LEN..]) != rd_u32(bytes, 24)? {
            return Err(Error::ChecksumMismatch);
        }
        let table = format::SectionTable::read(bytes, minor)?;
        let table_end = table.end();
        let mut found: [Option<&[u8]>; section::KINDS_END] = [None; section::KINDS_END];
        let packed_ok = minor >= format::PACKED_MINOR;
        let compact_ok = minor >= format::COMPACT_MINOR;
        for s in table.iter() {
            let (kind, off, len) = (s.kind, s.offset, s.len);
            let end = off.checked_add(len).ok_or(Error::SectionOutOfBounds { kind })?;
            if off < table_end as u64 || end > bytes.len() as u64 {
                return Err(Error::SectionOutOfBounds { kind });
            }
            // From 1.9 only DATA is aligned: the other sections are read byte by byte.
            if (!compact_ok || kind == section::DATA) && off % format::ALIGN as u64 != 0 {
                return Err(Error::SectionMisaligned { kind });
            }
            let body = &bytes[off as usize..end as usize];
            // Compact tables (1.10) hold no section CRCs: the header's covers every byte.
            if s.crc.is_some_and(|crc| format::crc32(body) != crc) {
                return Err(Error::SectionChecksumMismatch { kind });
            }
            let known = match kind {
                0 => false,
                k if k < section::TENSORS_PACKED => true,
                k if k < section::TENSORS_COMPACT => packed_ok,
                _ => compact_ok,
            };
            if let Some(slot) = found.get_mut(kind as usize).filter(|_| known) {
                if slot.is_some() {
                    return Err(Error::DuplicateSection { kind });
                }
                *slot = Some(body);
            }
            // Unknown section kinds are skipped: minor versions may add optional sections.
        }
        let need = |kind: u32| found[kind as usize].ok_or(Error::MissingSection { kind });
        let meta = need(section::META)?;
        let strings = need(section::STRINGS)?;
        // Each table is in exactly one of its forms: fixed, packed (1.6) or compact (1.9); a
        // second form is `DuplicateSection` naming it, none `MissingSection` naming the fixed one.
        let one_of = |kinds: &[u32]| -> Result<(&'a [u8], u32), Error> {
            let mut got = None;
            for &k in kinds {
                if let Some(b) = found[k as usize] {
                    if got.is_some() {
                        return Err(Error::DuplicateSection { kind: k });
                    }
                    got = Some((b, k));
                }
            }
            got.ok_or(Error::MissingSection { kind: kinds[0] })
        };
        let (tensors, tensors_kind) = one_of(&[section::TENSORS, section::TENSORS_PACKED, section::TENSORS_COMPACT])?;
        let (ops, ops_kind) = one_of(&[section::OPS, section::OPS_PACKED, section::OPS_COMPACT])?;
        let tensors = Records::of(tensors, tensors_kind, format::MAX_TENSORS)?;
        let ops = Records::of(ops, ops_kind, format::MAX_OPS)?;
        // Compact operator records hold their operand ids: an operand table beside them is one
        // form too many.
        let (operands, operand_width) = if ops_kind == section::OPS_COMPACT {
            if let Some(k) = [section::OPERANDS, section::OPERANDS16].into_iter().find(|&k| found[k as usize].is_some()) {
                return Err(Error::DuplicateSection { kind: k });
            }
            (&[][..], 0)
        } else {
            let (b, k) = one_of(&[section::OPERANDS, section::OPERANDS16])?;
            let width = if k == section::OPERANDS16 { 2 } else { 4 };
            if !b.len().is_multiple_of(width) {
                return Err(Error::BadSectionLength { kind: k });
            }
            (b, width)
        };
        let data = need(section::DATA)?;

        if meta.len() < format::META_FIXED_LEN {
            return Err(Error::BadSectionLength { kind: section::META });
        }
        let n_inputs = rd_u32(meta, 48)? as usize;
        let n_outputs = rd_u32(meta, 52)? as usize;
        let io_len = n_inputs.checked_add(n_outputs).and_then(|n| n.checked_mul(4));
        if io_len.and_then(|l| l.checked_add(format::META_FIXED_LEN)) != Some(meta.len()) {
            return Err(Error::BadSectionLength { kind: section::META });
        }
        let (n_tensors, n_ops) = (tensors.len(), ops.len());
        let model = Model {
            strings,
            tensors,
            ops,
            operands,
            operand_width,
            data,
            meta,
            n_tensors,
            n_ops,
            n_inputs,
            n_outputs,
            arena_len: rd_u32(meta, 40)?,
            arena_lower_bound: rd_u32(meta, 44)?,
            minor,
        };
        Ok(model)
    }

    fn string(&self, off: u32, len: u32) -> Result<&'a str, Error> {
        let end = (off as usize).checked_add(len as usize).ok_or(Error::BadString)?;
        let b = self.strings.get(off as usize..end).ok_or(Error::BadString)?;
        core::str::from_utf8(b).map_err(|_| Error::BadString)
    }

    // Not inlined: its locals must not stay on the stack of the operator loop while a kernel
    // runs (the Cortex-M stack budget is measured).
    #[inline(never)]
    fn decode_tensor(&self, i: usize) -> Result<TensorInfo<'a>, Error> {
        self.decode_tensor_named(i, true)
    }

    /// [`Model::decode_tensor`]; without `named`, the name is left empty (not read or checked
    /// again: `Model::parse` checked every name).
    #[inline(never)]
    fn decode_tensor_named(&self, i: usize, named: bool) -> Result<TensorInfo<'a>, Error> {
        let t = i as u32;
        let r = self.tensors.get(i).ok_or(Error::Truncated)?;
        let bad = Error::BadTensor { tensor: t };
        let mut dims = [0u32; MAX_RANK];
        let (name, role, rank, enc, offset, len, first_op, last_op, alias);
        if !self.tensors.is_fixed() {
            // name offset, name length, role, encoding, rank, dims, offset / 16, length, first
            // op, last op, alias + 1 (0: none). Compact constants (1.9) end after the length
            // (live from operator 0 to 0, no alias) and store offset / 4.
            let compact = self.tensors.compact().is_some();
            let kind = if compact { section::TENSORS_COMPACT } else { section::TENSORS_PACKED };
            let mut a = [0u32; 10 + MAX_RANK];
            let n = packed_values(r, &mut a, kind, i)?;
            let rec = Error::BadRecord { kind, index: t };
            rank = a[4] as usize;
            if n < 5 {
                return Err(rec);
            }
            if rank > MAX_RANK {
                return Err(bad);
            }
            role = u8::try_from(a[2]).ok().and_then(Role::from_u8).ok_or(bad)?;
            let short = compact && role == Role::Constant;
            if n != if short { 7 + rank } else { 10 + rank } {
                return Err(rec);
            }
            name = if named { self.string(a[0], a[1])? } else { "" };
            enc = u8::try_from(a[3]).map_err(|_| bad)?;
            dims[..rank].copy_from_slice(&a[5..5 + rank]);
            let tail = &a[5 + rank..10 + rank];
            let unit = if short { packed::COMPACT_CONST_UNIT } else { packed::OFFSET_UNIT };
            offset = tail[0].checked_mul(unit).ok_or(bad)?;
            (len, first_op, last_op, alias) =
                if short { (tail[1], 0, 0, None) } else { (tail[1], tail[2], tail[3], tail[4].checked_sub(1)) };
        } else {
            name = if named { self.string(rd_u32(r, 0)?, rd_u32(r, 4)?)? } else { "" };
            role = Role::from_u8(r[8]).ok_or(bad)?;
            let dtype;
            (dtype, rank, enc) = (r[9], r[10] as usize, r[11]);
            if dtype != format::DTYPE_F32 || rank > MAX_RANK {
                return Err(bad);
            }
            for (k, d) in dims.iter_mut().enumerate().take(rank) {
                *d = rd_u32(r, 12 + 4 * k)?;
            }
            (offset, len, first_op, last_op) = (rd_u32(r, 36)?, rd_u32(r, 40)?, rd_u32(r, 44)?, rd_u32(r, 48)?);
            alias = Some(rd_u32(r, 52)?).filter(|&a| a != format::NO_TENSOR);
        }
        let shape = Shape::from_u32(&dims[..rank]).ok_or(bad)?;
        Ok(TensorInfo { name, role, shape, encoding: enc, offset, len, first_op, last_op, alias })
    }

    // Not inlined: its locals must not stay on the stack of the operator loop while a kernel
    // runs (the Cortex-M stack budget is measured).
    #[inline(never)]
    fn decode_op(&self, i: usize) -> Result<OpInfo<'a>, Error> {
        self.decode_op_named(i, true)
    }

    /// [`Model::decode_op`]; without `named`, the name is left empty (as for tensors).
    #[inline(never)]
    fn decode_op_named(&self, i: usize, named: bool) -> Result<OpInfo<'a>, Error> {
        let o = i as u32;
        let r = self.ops.get(i).ok_or(Error::Truncated)?;
        let mut words = [0u32; ATTR_WORDS];
        let (kind, kernel, n_inputs, n_outputs, operand_start, name);
        if let Some(t) = self.ops.compact() {
            // kind, kernel, inputs, outputs, the operand ids (inputs, then the output), name
            // offset, name length, number of attribute words given, the words.
            let bad = Error::BadRecord { kind: section::OPS_COMPACT, index: o };
            let mut a = [0u32; 8 + MAX_OP_INPUTS + ATTR_WORDS];
            let n = packed_values(r, &mut a, section::OPS_COMPACT, i)?;
            if n < 4 {
                return Err(bad);
            }
            (n_inputs, n_outputs) = (a[2] as usize, a[3] as usize);
            if n_outputs != 1 || n_inputs > MAX_OP_INPUTS {
                return Err(Error::BadArity { op: o });
            }
            let at = 5 + n_inputs;
            let n_words = a[at + 2] as usize;
            if n < at + 3 || n_words > ATTR_WORDS || n != at + 3 + n_words {
                return Err(bad);
            }
            kind = u16::try_from(a[0]).map_err(|_| bad)?;
            kernel = u16::try_from(a[1]).map_err(|_| bad)?;
            name = if named { self.string(a[at], a[at + 1])? } else { "" };
            // Words past the given ones stay 0.
            words.copy_from_slice(&a[at + 3..at + 3 + ATTR_WORDS]);
            // The ids start after the first four values, each of which is one byte here unless
            // the kind or kernel is 128 or more.
            let head: usize = a[..4].iter().map(|&x| packed::encoded_len(x)).sum();
            operand_start = t.record_start(i).ok_or(bad)? + head;
        } else if !self.ops.is_fixed() {
            // kind, kernel, inputs, outputs, first operand, name offset, name length, number of
            // attribute words given (the rest are 0), the words.
            let bad = Error::BadRecord { kind: section::OPS_PACKED, index: o };
            let mut a = [0u32; 8 + ATTR_WORDS];
            let n = packed_values(r, &mut a, section::OPS_PACKED, i)?;
            if n < 8 || n != 8 + a[7] as usize {
                return Err(bad);
            }
            kind = u16::try_from(a[0]).map_err(|_| bad)?;
            kernel = u16::try_from(a[1]).map_err(|_| bad)?;
            (n_inputs, n_outputs, operand_start) = (a[2] as usize, a[3] as usize, a[4] as usize);
            name = if named { self.string(a[5], a[6])? } else { "" };
            // Words past the given ones stay 0.
            words.copy_from_slice(&a[8..]);
        } else {
            kind = rd_u16(r, 0)?;
            kernel = rd_u16(r, 2)?;
            n_inputs = rd_u16(r, 4)? as usize;
            n_outputs = rd_u16(r, 6)? as usize;
            operand_start = rd_u32(r, 8)? as usize;
            name = if named { self.string(rd_u32(r, 12)?, rd_u32(r, 16)?)? } else { "" };
            for (k, w) in words.iter_mut().enumerate() {
                *w = rd_u32(r, format::OP_ATTRS_AT + 4 * k)?;
            }
        }
        let op = Op::decode(kind, &words).map_err(|e| Error::from_op(o, e))?;
        if !matches!(kernel, kernel::DEFAULT | kernel::CODEBOOK_LUT | kernel::INPUT_SPARSE) {
            return Err(Error::UnsupportedKernel { op: o, kernel });
        }
        let (lo, hi) = op.arity();
        if n_outputs != 1 || n_inputs < lo || n_inputs > hi || n_inputs > MAX_OP_INPUTS {
            return Err(Error::BadArity { op: o });
        }
        let end = operand_start.checked_add(n_inputs + n_outputs).ok_or(Error::BadOperand { op: o })?;
        if self.operand_width != 0 && end > self.operands.len() / self.operand_width {
            return Err(Error::BadOperand { op: o });
        }
        Ok(OpInfo { name, op, kernel, n_inputs, operand_start })
    }

    // Not inlined, as `decode_op`: the compact ids' reader must not grow the frame of the
    // operator loop (the Cortex-M stack budget is measured).
    #[inline(never)]
    fn operand(&self, op: &OpInfo<'_>, k: usize) -> u32 {
        if let Some(t) = self.ops.compact() {
            // `operand_start` is where the record's ids start in the area.
            // Ids below 128 (most) are one byte; the record was checked by `Model::parse`.
            let ids = t.area().get(op.operand_start..).unwrap_or(&[]);
            let mut at = 0;
            for _ in 0..k {
                while ids.get(at).is_some_and(|&b| b >= 0x80) {
                    at += 1;
                }
                at += 1;
            }
            return match ids.get(at) {
                Some(&b) if b < 0x80 => u32::from(b),
                _ => Values::new(ids.get(at..).unwrap_or(&[])).next().unwrap_or(u32::MAX),
            };
        }
        let at = self.operand_width * (op.operand_start + k);
        if self.operand_width == 2 {
            rd_u16(self.operands, at).map(u32::from).unwrap_or(u32::MAX)
        } else {
            rd_u32(self.operands, at).unwrap_or(u32::MAX)
        }
    }

    #[inline(never)]
    fn validate(&self) -> Result<(), Error> {
        if self.n_ops == 0 {
            return Err(Error::NoOperators);
        }
        rd_u32(self.meta, 0).and_then(|o| self.string(o, rd_u32(self.meta, 4)?))?;
        let last = self.n_ops as u32 - 1;
        // Tensor records on their own.
        let const_align = if self.tensors.compact().is_some() { format::COMPACT_CONST_ALIGN } else { format::ALIGN };
        for i in 0..self.n_tensors {
            let t = self.decode_tensor(i)?;
            let ti = i as u32;
            let numel = t.shape.numel().ok_or(Error::BadTensor { tensor: ti })?;
            if t.role == Role::Constant {
                let elem = match t.encoding {
                    encoding::F32 => Some(4),
                    encoding::F16 => Some(2),
                    encoding::BSR_F32 | encoding::CODEBOOK | encoding::U8_AFFINE => None,
                    encoding::NONE => return Err(Error::BadTensor { tensor: ti }),
                    e => return Err(Error::UnsupportedEncoding { tensor: ti, encoding: e }),
                };
                if elem.is_some_and(|e| numel.checked_mul(e) != Some(t.len as usize)) {
                    return Err(Error::BadDataLength { tensor: ti });
                }
                if !(t.offset as usize).is_multiple_of(const_align) {
                    return Err(Error::DataMisaligned { tensor: ti });
                }
                if t.offset as u64 + t.len as u64 > self.data.len() as u64 {
                    return Err(Error::DataOutOfBounds { tensor: ti });
                }
                if t.encoding == encoding::BSR_F32 {
                    let (rows, cols) = sparse::bsr_matrix(t.shape.dims());
                    Bsr::parse(self.payload(&t), rows, cols).map_err(|rule| Error::BadSparse { tensor: ti, rule })?;
                }
                if t.encoding == encoding::CODEBOOK {
                    let (rows, cols) = sparse::bsr_matrix(t.shape.dims());
                    Codebook::parse(self.payload(&t), rows, cols).map_err(|rule| Error::BadCodebook { tensor: ti, rule })?;
                }
                if t.encoding == encoding::U8_AFFINE {
                    if numel.checked_add(format::U8_AFFINE_HEADER_LEN) != Some(t.len as usize) {
                        return Err(Error::BadDataLength { tensor: ti });
                    }
                    if !Affine8::split(self.payload(&t)).is_some_and(|a| a.grid_ok()) {
                        return Err(Error::BadAffine { tensor: ti });
                    }
                }
                if t.alias.is_some() {
                    return Err(Error::BadAlias { tensor: ti });
                }
            } else {
                if t.encoding != encoding::NONE {
                    return Err(Error::BadTensor { tensor: ti });
                }
                if numel.checked_mul(4) != Some(t.len as usize) {
                    return Err(Error::BadDataLength { tensor: ti });
                }
                if !(t.offset as usize).is_multiple_of(format::ALIGN) {
                    return Err(Error::ArenaMisaligned { tensor: ti });
                }
                if t.offset as u64 + t.len as u64 > self.arena_len as u64 {
                    return Err(Error::ArenaOutOfBounds { tensor: ti });
                }
                let lifetime_ok = t.first_op <= t.last_op
                    && t.last_op <= last
                    && (t.role != Role::Input || t.first_op == 0)
                    && (t.role != Role::Output || t.last_op == last);
                if !lifetime_ok {
                    return Err(Error::BadLifetime { tensor: ti });
                }
                if let Some(a) = t.alias {
                    let root = if (a as usize) < self.n_tensors { Some(self.decode_tensor(a as usize)?) } else { None };
                    match root {
                        Some(r) if r.role.in_arena() && r.alias.is_none() && r.offset == t.offset && r.len == t.len && a != ti => {}
                        _ => return Err(Error::BadAlias { tensor: ti }),
                    }
                }
            }
        }
        // Input / output lists: exactly the tensors with those roles, each once.
        let mut n_in_role = 0usize;
        let mut n_out_role = 0usize;
        for i in 0..self.n_tensors {
            match self.decode_tensor(i)?.role {
                Role::Input => n_in_role += 1,
                Role::Output => n_out_role += 1,
                _ => {}
            }
        }
        if n_in_role != self.n_inputs || n_out_role != self.n_outputs || self.n_outputs == 0 {
            return Err(Error::BadIo);
        }
        for k in 0..self.n_inputs + self.n_outputs {
            let id = rd_u32(self.meta, format::META_FIXED_LEN + 4 * k)? as usize;
            let want = if k < self.n_inputs { Role::Input } else { Role::Output };
            if id >= self.n_tensors || self.decode_tensor(id)?.role != want {
                return Err(Error::BadIo);
            }
            let (lo, hi) = if k < self.n_inputs { (0, self.n_inputs) } else { (self.n_inputs, self.n_inputs + self.n_outputs) };
            for j in lo..k {
                if rd_u32(self.meta, format::META_FIXED_LEN + 4 * j)? as usize == id {
                    return Err(Error::BadIo);
                }
            }
            let _ = hi;
        }
        // Operators: decoding, operands, shapes, producer order, lifetimes, in/out disjointness.
        for i in 0..self.n_ops {
            let o = self.decode_op(i)?;
            let oi = i as u32;
            let mut shapes = [Shape::SCALAR; MAX_OP_INPUTS];
            for (k, s) in shapes.iter_mut().enumerate().take(o.n_inputs) {
                let id = self.operand(&o, k) as usize;
                if id >= self.n_tensors {
                    return Err(Error::BadOperand { op: oi });
                }
                let t = self.decode_tensor(id)?;
                match t.role {
                    Role::Constant | Role::Input => {}
                    Role::Activation | Role::Output => {
                        if t.first_op >= oi {
                            return Err(Error::BadOperand { op: oi });
                        }
                    }
                }
                if t.role.in_arena() && t.last_op < oi {
                    return Err(Error::BadLifetime { tensor: id as u32 });
                }
                *s = t.shape;
            }
            let out_id = self.operand(&o, o.n_inputs) as usize;
            if out_id >= self.n_tensors {
                return Err(Error::BadOperand { op: oi });
            }
            let out = self.decode_tensor(out_id)?;
            if !matches!(out.role, Role::Activation | Role::Output) {
                return Err(Error::BadOperand { op: oi });
            }
            if out.first_op != oi {
                return Err(Error::BadLifetime { tensor: out_id as u32 });
            }
            if o.kernel == kernel::CODEBOOK_LUT {
                let weight = self.tensor(self.operand(&o, 1) as usize).filter(|_| o.n_inputs > 1);
                let codebook = weight.is_some_and(|w| w.role == Role::Constant && w.encoding == encoding::CODEBOOK);
                if !(matches!(o.op, Op::Dense { .. }) && codebook) {
                    return Err(Error::KernelNotApplicable { op: oi, kernel: o.kernel });
                }
            }
            if o.kernel == kernel::INPUT_SPARSE {
                let weight = self.tensor(self.operand(&o, 1) as usize).filter(|_| o.n_inputs > 1);
                let plain = weight
                    .is_some_and(|w| w.role == Role::Constant && matches!(w.encoding, encoding::F32 | encoding::F16 | encoding::CODEBOOK));
                shapes[1] = crate::kernels::input_sparse::swap01(shapes[1]);
                if !(plain && crate::kernels::input_sparse::applies(&o.op, &shapes[1])) {
                    return Err(Error::KernelNotApplicable { op: oi, kernel: o.kernel });
                }
            }
            let inferred = o.op.infer(&shapes[..o.n_inputs]).map_err(|e| Error::from_op(oi, e))?;
            if inferred != out.shape {
                return Err(Error::ShapeMismatch { op: oi });
            }
            for k in 0..o.n_inputs {
                let id = self.operand(&o, k) as usize;
                let t = self.decode_tensor(id)?;
                if !t.role.in_arena() {
                    continue;
                }
                let disjoint = t.offset as u64 + t.len as u64 <= out.offset as u64 || out.offset as u64 + out.len as u64 <= t.offset as u64;
                let aliased_reshape =
                    matches!(o.op, Op::Reshape { .. }) && t.offset == out.offset && self.root(id)? == self.root(out_id)?;
                if !(disjoint || aliased_reshape || t.len == 0 || out.len == 0) {
                    return Err(Error::OperandOverlap { op: oi });
                }
            }
        }
        // Every activation / output is produced by the operator its lifetime starts at.
        for i in 0..self.n_tensors {
            let t = self.decode_tensor(i)?;
            if matches!(t.role, Role::Activation | Role::Output) {
                let o = self.decode_op(t.first_op as usize)?;
                if self.operand(&o, o.n_inputs) as usize != i {
                    return Err(Error::BadLifetime { tensor: i as u32 });
                }
            }
        }
        // No two simultaneously live buffers overlap, unless they share one buffer by alias.
        for i in 0..self.n_tensors {
            let a = self.decode_tensor(i)?;
            if !a.role.in_arena() || a.len == 0 {
                continue;
            }
            let ra = self.root(i)?;
            for j in i + 1..self.n_tensors {
                let b = self.decode_tensor(j)?;
                if !b.role.in_arena() || b.len == 0 || self.root(j)? == ra {
                    continue;
                }
                let live = a.first_op <= b.last_op && b.first_op <= a.last_op;
                let mem = (a.offset as u64) < b.offset as u64 + b.len as u64 && (b.offset as u64) < a.offset as u64 + a.len as u64;
                if live && mem {
                    return Err(Error::ArenaOverlap { a: i as u32, b: j as u32 });
                }
            }
        }
        Ok(())
    }

    fn root(&self, i: usize) -> Result<usize, Error> {
        Ok(self.decode_tensor(i)?.alias.map(|a| a as usize).unwrap_or(i))
    }

    /// The kernel set this model needs, for [`crate::Session::run_with_in`]: bit `k` = operator
    /// kind `k`, the element-wise function bits ([`Op::feature_bits`]), and
    /// [`kernels::SPARSE_BIT`](crate::kernels::SPARSE_BIT) when a constant is block-sparse,
    /// [`kernels::CODEBOOK_BIT`](crate::kernels::CODEBOOK_BIT) when one is codebook-quantized,
    /// [`kernels::INPUT_SPARSE_BIT`](crate::kernels::INPUT_SPARSE_BIT) when an operator runs the
    /// input-sparse kernel.
    pub fn ops_mask(&self) -> u128 {
        let ops = (0..self.num_ops()).filter_map(|i| self.op(i)).fold(0, |m, o| m | o.op.feature_bits());
        let uses = |enc: u8| (0..self.n_tensors).filter_map(|i| self.tensor(i)).any(|t| t.role == Role::Constant && t.encoding == enc);
        let sparse = if uses(encoding::BSR_F32) { 1 << crate::kernels::SPARSE_BIT } else { 0 };
        let input_sparse = (0..self.num_ops()).filter_map(|i| self.op(i)).any(|o| o.kernel == kernel::INPUT_SPARSE);
        let input_sparse = if input_sparse { 1 << crate::kernels::INPUT_SPARSE_BIT } else { 0 };
        let codebook = if uses(encoding::CODEBOOK) { 1 << crate::kernels::CODEBOOK_BIT } else { 0 };
        ops | sparse | codebook | input_sparse | self.conv_kernel_bits()
    }

    /// The register-blocked Conv kernel bits ([`kernels::CONV_QUADS_BIT`](crate::kernels::CONV_QUADS_BIT)
    /// …) of this model's Convs whose weights are plain (block-sparse and codebook weights run
    /// kernels of their own).
    fn conv_kernel_bits(&self) -> u128 {
        let shape = |o: &OpInfo<'_>, k: usize| self.op_operand(o, k).and_then(|t| self.tensor(t as usize));
        (0..self.num_ops()).filter_map(|i| self.op(i)).fold(0, |m, o| match o.op {
            Op::Conv(ref a) if o.kernel == kernel::DEFAULT => match (shape(&o, 0), shape(&o, 1), shape(&o, o.n_inputs)) {
                (Some(x), Some(w), Some(y)) if w.encoding != encoding::BSR_F32 && w.encoding != encoding::CODEBOOK => {
                    m | crate::kernels::conv_kernel_bits(a, &x.shape, &w.shape, &y.shape)
                }
                _ => m,
            },
            _ => m,
        })
    }

    /// Arena bytes a [`Session`](crate::Session) needs.
    pub fn arena_len(&self) -> usize {
        self.arena_len as usize
    }

    /// The planner's lower bound on the arena (largest sum of simultaneously live buffers).
    pub fn arena_lower_bound(&self) -> usize {
        self.arena_lower_bound as usize
    }

    /// The file's minor version.
    pub fn minor_version(&self) -> u16 {
        self.minor
    }

    /// The producer string (tool and version).
    pub fn producer(&self) -> &'a str {
        rd_u32(self.meta, 0).and_then(|o| self.string(o, rd_u32(self.meta, 4)?)).unwrap_or("")
    }

    /// SHA-256 of the source model file.
    pub fn source_sha256(&self) -> [u8; 32] {
        let mut h = [0u8; 32];
        if let Some(s) = self.meta.get(8..40) {
            h.copy_from_slice(s);
        }
        h
    }

    /// Number of tensors.
    pub fn num_tensors(&self) -> usize {
        self.n_tensors
    }

    /// Number of operators.
    pub fn num_ops(&self) -> usize {
        self.n_ops
    }

    /// Where this model's META and DATA sections lie in memory: models parsed from the same
    /// bytes share it, models of other bytes do not (for [`crate::Plan`]).
    pub(crate) fn ident(&self) -> (usize, usize) {
        (self.meta.as_ptr() as usize, self.data.as_ptr() as usize)
    }

    /// Tensor `i` (`None` when out of range).
    pub fn tensor(&self, i: usize) -> Option<TensorInfo<'a>> {
        if i < self.n_tensors {
            self.decode_tensor(i).ok()
        } else {
            None
        }
    }

    /// [`Model::tensor`] with an empty name (for the operator loop, which does not read names:
    /// decoding them cost a few per cent of a small model's inference).
    pub(crate) fn tensor_unnamed(&self, i: usize) -> Option<TensorInfo<'a>> {
        if i < self.n_tensors {
            self.decode_tensor_named(i, false).ok()
        } else {
            None
        }
    }

    /// [`Model::op`] with an empty name (as [`Model::tensor_unnamed`]).
    pub(crate) fn op_unnamed(&self, i: usize) -> Option<OpInfo<'a>> {
        if i < self.n_ops {
            self.decode_op_named(i, false).ok()
        } else {
            None
        }
    }

    /// Operator `i` (`None` when out of range).
    pub fn op(&self, i: usize) -> Option<OpInfo<'a>> {
        if i < self.n_ops {
            self.decode_op(i).ok()
        } else {
            None
        }
    }

    /// Tensor id of operand `k` of operator `op` (inputs first, then the output).
    pub fn op_operand(&self, op: &OpInfo<'_>, k: usize) -> Option<u32> {
        if k <= op.n_inputs {
            Some(self.operand(op, k))
        } else {
            None
        }
    }

    /// Tensor id of the output of `op`.
    pub fn op_output(&self, op: &OpInfo<'_>) -> u32 {
        self.operand(op, op.n_inputs)
    }

    fn io(&self, k: usize) -> Option<IoInfo<'a>> {
        let id = rd_u32(self.meta, format::META_FIXED_LEN + 4 * k).ok()?;
        let t = self.tensor(id as usize)?;
        Some(IoInfo { name: t.name, shape: t.shape, tensor: id })
    }

    /// Number of graph inputs.
    pub fn num_inputs(&self) -> usize {
        self.n_inputs
    }

    /// Number of graph outputs.
    pub fn num_outputs(&self) -> usize {
        self.n_outputs
    }

    /// Graph input `i`.
    pub fn input(&self, i: usize) -> Option<IoInfo<'a>> {
        if i < self.n_inputs {
            self.io(i)
        } else {
            None
        }
    }

    /// Graph output `i`.
    pub fn output(&self, i: usize) -> Option<IoInfo<'a>> {
        if i < self.n_outputs {
            self.io(self.n_inputs + i)
        } else {
            None
        }
    }

    /// Graph inputs in order.
    pub fn inputs(&self) -> impl Iterator<Item = IoInfo<'a>> + '_ {
        (0..self.n_inputs).filter_map(move |i| self.input(i))
    }

    /// Graph outputs in order.
    pub fn outputs(&self) -> impl Iterator<Item = IoInfo<'a>> + '_ {
        (0..self.n_outputs).filter_map(move |i| self.output(i))
    }

    fn payload(&self, t: &TensorInfo<'_>) -> &'a [u8] {
        let end = (t.offset as usize).saturating_add(t.len as usize);
        self.data.get(t.offset as usize..end).unwrap_or(&[])
    }

    /// The header of a block-sparse constant (`None` for other tensors), e.g. for its density.
    pub fn bsr_info(&self, t: &TensorInfo<'_>) -> Option<BsrInfo> {
        match self.constant(t) {
            View::Bsr(b) if t.role == Role::Constant => Some(b.info()),
            _ => None,
        }
    }

    /// The header of a codebook constant (`None` for other tensors), e.g. for its bits per weight.
    pub fn codebook_info(&self, t: &TensorInfo<'_>) -> Option<CodebookInfo> {
        match self.constant(t) {
            View::Codebook(c) if t.role == Role::Constant => Some(c.info()),
            _ => None,
        }
    }

    /// Read-only view of a constant's payload, decoded lazily.
    pub fn constant(&self, t: &TensorInfo<'_>) -> View<'a> {
        let bytes = self.payload(t);
        match t.encoding {
            encoding::F16 => View::F16Le(bytes),
            encoding::U8_AFFINE => Affine8::split(bytes).map_or(View::F32(&[]), View::U8),
            encoding::BSR_F32 => {
                let (rows, cols) = sparse::bsr_matrix(t.shape.dims());
                Bsr::split(bytes, rows, cols).map_or(View::F32(&[]), View::Bsr)
            }
            encoding::CODEBOOK => {
                let (rows, cols) = sparse::bsr_matrix(t.shape.dims());
                Codebook::split(bytes, rows, cols).map_or(View::F32(&[]), View::Codebook)
            }
            _ => {
                #[cfg(target_endian = "little")]
                if let Ok(s) = bytemuck::try_cast_slice::<u8, f32>(bytes) {
                    return View::F32(s);
                }
                View::F32Le(bytes)
            }
        }
    }
}
