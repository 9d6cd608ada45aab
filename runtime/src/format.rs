//! Byte layout of `.sprig` v1 files (see `docs/FORMAT.md`). Shared by the reader here and the
//! writer in `sprig-tools`; every multi-byte field is little-endian.

/// File magic.
pub const MAGIC: [u8; 8] = *b"SPRIG\0\r\n";
/// Major version: bumped when a v1 reader could misread a file. Readers reject other majors.
pub const VERSION_MAJOR: u16 = 1;
/// Minor version: bumped for additions a v1 reader detects and reports (new sections it may
/// ignore, new encodings / operator kinds / kernels it rejects by name).
pub const VERSION_MINOR: u16 = 10;
/// First minor version with the compact section table ([`SectionTable`]): the header declares no
/// fixed entries (a 1.9 reader then reports `MissingSection` for META), and after it each
/// section is its kind and length, the sections laid end to end (DATA on 16 bytes) with no
/// offsets or per-section CRCs, 15 bytes instead of 120 on a five-section file.
pub const SECTION_TABLE_MINOR: u16 = 10;
/// First minor version with compact framing: only DATA need be 16-byte aligned (a 1.8 reader
/// rejects other misaligned sections with `SectionMisaligned`), and the compact tables
/// [`section::TENSORS_COMPACT`] (constant payloads 4-byte aligned) and [`section::OPS_COMPACT`]
/// (operand ids inside the operator records, no operand section), which a 1.8 reader skips as
/// unknown and then reports `MissingSection` for `TENSORS`.
pub const COMPACT_MINOR: u16 = 9;
/// First minor version with unary function 24, QuantizeDequantize (a 1.7 reader rejects it with
/// `BadAttribute`).
pub const QUANTIZE_DEQUANTIZE_MINOR: u16 = 8;
/// First minor version with weight encoding [`encoding::U8_AFFINE`] (a 1.6 reader rejects it with
/// `UnsupportedEncoding`).
pub const U8_AFFINE_MINOR: u16 = 7;
/// First minor version whose tensor, operator and operand tables may be packed (sections
/// [`section::TENSORS_PACKED`], [`section::OPS_PACKED`], [`section::OPERANDS16`]). Earlier files
/// have only the fixed-size tables; a 1.5 reader skips the packed sections and reports the fixed
/// ones missing.
pub const PACKED_MINOR: u16 = 6;
/// First minor version with binary function 8, Add+Relu (a 1.4 reader rejects it with
/// `BadAttribute`).
pub const ADD_RELU_MINOR: u16 = 5;
/// First minor version whose header carries its own CRC-32 (bytes 28..32, over bytes 0..28), so
/// that with the payload CRC every byte of the file is covered. Earlier files hold 0 there.
pub const HEADER_CRC_MINOR: u16 = 4;

/// Header size in bytes: magic, major, minor, section count, file length, payload CRC-32, header
/// CRC-32 (reserved and zero before 1.4).
pub const HEADER_LEN: usize = 32;
/// Fixed section table entry size (before 1.10): kind u32, crc32 u32, offset u64, length u64.
pub const SECTION_ENTRY_LEN: usize = 24;
/// Most sections a file may declare.
pub const MAX_SECTIONS: usize = 64;
/// Alignment of sections (from 1.9: of DATA only), constant payloads (from 1.9 with
/// [`section::TENSORS_COMPACT`]: [`COMPACT_CONST_ALIGN`]) and arena offsets.
pub const ALIGN: usize = 16;
/// Alignment of constant payloads in files with [`section::TENSORS_COMPACT`] (1.9): enough for
/// in-place f32 and f16 views; writers may align more.
pub const COMPACT_CONST_ALIGN: usize = 4;

/// Section kinds.
pub mod section {
    #![allow(missing_docs)]
    pub const META: u32 = 1;
    pub const STRINGS: u32 = 2;
    pub const TENSORS: u32 = 3;
    pub const OPS: u32 = 4;
    pub const OPERANDS: u32 = 5;
    pub const DATA: u32 = 6;
    /// Packed tensor records (from 1.6; instead of `TENSORS`): see [`super::packed`].
    pub const TENSORS_PACKED: u32 = 7;
    /// Packed operator records (from 1.6; instead of `OPS`).
    pub const OPS_PACKED: u32 = 8;
    /// `u16` tensor ids (from 1.6; instead of `OPERANDS`).
    pub const OPERANDS16: u32 = 9;
    /// Compact tensor records (from 1.9; instead of `TENSORS` / `TENSORS_PACKED`): see
    /// [`super::packed`].
    pub const TENSORS_COMPACT: u32 = 10;
    /// Compact operator records with their operand ids inline (from 1.9; instead of `OPS` /
    /// `OPS_PACKED` and `OPERANDS` / `OPERANDS16`, which must then be absent).
    pub const OPS_COMPACT: u32 = 11;
    /// One more than the largest kind this reader knows.
    pub const KINDS_END: usize = 12;
}

/// META section fixed part: producer (string ref), sha256 of the source model, arena length,
/// arena lower bound, input count, output count; followed by the input then output tensor ids.
pub const META_FIXED_LEN: usize = 56;

/// Tensor record size.
pub const TENSOR_RECORD_LEN: usize = 64;
/// Operator record size.
pub const OP_RECORD_LEN: usize = 128;
/// Byte offset of the attribute words in an operator record.
pub const OP_ATTRS_AT: usize = 24;

/// "No tensor" in the alias field.
pub const NO_TENSOR: u32 = u32::MAX;

/// Largest number of tensors a file may declare (bounds the quadratic overlap check).
pub const MAX_TENSORS: usize = 16384;
/// Largest number of operators.
pub const MAX_OPS: usize = 16384;

/// What a tensor is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Role {
    /// Intermediate value in the arena.
    Activation = 0,
    /// Graph input in the arena, written by the caller.
    Input = 1,
    /// Graph output in the arena.
    Output = 2,
    /// Constant stored in the DATA section.
    Constant = 3,
}

impl Role {
    /// Decodes a stored role byte.
    pub fn from_u8(b: u8) -> Option<Role> {
        Some(match b {
            0 => Role::Activation,
            1 => Role::Input,
            2 => Role::Output,
            3 => Role::Constant,
            _ => return None,
        })
    }

    /// True when the tensor lives in the arena.
    pub fn in_arena(self) -> bool {
        self != Role::Constant
    }
}

/// Element type codes. Only f32 exists in v1.
pub const DTYPE_F32: u8 = 1;

/// Weight payload encodings.
pub mod encoding {
    #![allow(missing_docs)]
    /// Arena tensors (no payload).
    pub const NONE: u8 = 0;
    /// Dense little-endian f32.
    pub const F32: u8 = 1;
    /// Dense little-endian IEEE binary16.
    pub const F16: u8 = 2;
    /// Block-sparse rows of f32 blocks over the `[d0, numel / d0]` matrix (minor 1; layout in
    /// [`crate::sparse`] and `docs/FORMAT.md`).
    pub const BSR_F32: u8 = 3;
    /// Packed `bits`-bit indices into per-group codebooks over the `[d0, numel / d0]` matrix
    /// (minor 2; layout in [`crate::codebook`] and `docs/FORMAT.md`).
    pub const CODEBOOK: u8 = 4;
    /// Dense 8-bit codes on a uniform grid (minor 7): f32 `lo`, f32 `step`, then one `u8` code
    /// `q` per element, value `lo + step · q` ([`crate::format::u8_affine_value`]).
    pub const U8_AFFINE: u8 = 5;

    /// Human-readable name of an encoding code.
    pub fn name(code: u8) -> &'static str {
        match code {
            NONE => "none",
            F32 => "f32",
            F16 => "f16",
            BSR_F32 => "bsr-f32",
            CODEBOOK => "codebook",
            U8_AFFINE => "u8-affine",
            _ => "unknown",
        }
    }
}

/// Fixed header of a `BSR_F32` payload: `u16 br`, `u16 bc`, `u32 nnzb`, `u32 nbr`, `u32 ncb`.
pub const BSR_HEADER_LEN: usize = 16;
/// Most block columns a `BSR_F32` payload may have (block column indices are `u16`).
pub const BSR_MAX_BLOCK_COLS: usize = 65536;

#[cfg(feature = "std")]
pub use crate::sparse::encode_bsr;
pub use crate::sparse::{bsr_len, bsr_matrix};

/// Fixed header of a `CODEBOOK` payload: `u8 bits`, `u8 value_type`, `u16 reserved`,
/// `u32 groups`, `u32 rows`, `u32 cols`.
pub const CODEBOOK_HEADER_LEN: usize = 16;
/// Most codebooks (row groups) a `CODEBOOK` payload may have (row groups are `u16`).
pub const CODEBOOK_MAX_GROUPS: usize = 65536;
/// Widest index of a `CODEBOOK` payload, in bits (indices are 1 to 8 bits wide).
pub const CODEBOOK_MAX_BITS: u8 = 8;

/// Codebook value types of a `CODEBOOK` payload (its `value_type` header byte).
pub mod codebook_value {
    /// Little-endian f32.
    pub const F32: u8 = 0;
    /// Little-endian IEEE binary16.
    pub const F16: u8 = 1;
}

pub use crate::codebook::codebook_len;
#[cfg(feature = "std")]
pub use crate::codebook::encode_codebook;

/// Header of a `U8_AFFINE` payload: f32 `lo`, f32 `step`.
pub const U8_AFFINE_HEADER_LEN: usize = 8;

/// Value of code `q` of a `U8_AFFINE` payload with grid `lo`, `step`: `lo + step · q`, rounded
/// once after the product and once after the sum (never fused), so that the writer's values and
/// every reader's agree bit for bit.
#[inline(always)]
pub fn u8_affine_value(lo: f32, step: f32, q: u8) -> f32 {
    lo + step * q as f32
}

/// The `U8_AFFINE` grid `(lo, step)` spanning `values`: their least and largest values, 255 steps
/// apart (`(0, 0)` for none). `None` when a value is not finite or the grid overflows.
pub fn u8_affine_fit(values: &[f32]) -> Option<(f32, f32)> {
    if values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let lo = values.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if values.is_empty() {
        return Some((0.0, 0.0));
    }
    let step = (hi - lo) / 255.0;
    (step.is_finite() && u8_affine_value(lo, step, 255).is_finite()).then_some((lo, step))
}

/// The code of `v` on the grid `(lo, step)`: the one whose value is nearest (ties to the lower).
pub fn u8_affine_code(lo: f32, step: f32, v: f32) -> u8 {
    if step.is_nan() || step <= 0.0 {
        return 0;
    }
    // Nearest code of the exact quotient (truncation of a non-negative value + 0.5; NaN gives 0).
    let guess = ((v - lo) / step + 0.5).clamp(0.0, 255.0) as u8;
    // The division may land one code off the nearest value; look at the neighbours.
    let mut best = guess;
    for q in [guess.saturating_sub(1), guess.saturating_add(1)] {
        if (u8_affine_value(lo, step, q) - v).abs() < (u8_affine_value(lo, step, best) - v).abs() {
            best = q;
        }
    }
    best
}

/// The grid value nearest `v` on `(lo, step)`: what `v` is stored as.
pub fn u8_affine_nearest(lo: f32, step: f32, v: f32) -> f32 {
    u8_affine_value(lo, step, u8_affine_code(lo, step, v))
}

/// The `U8_AFFINE` payload of `values` on the grid `(lo, step)`, or `None` when a value is not
/// exactly a grid value (the payload would decode to other values).
#[cfg(feature = "std")]
pub fn encode_u8_affine(lo: f32, step: f32, values: &[f32]) -> Option<std::vec::Vec<u8>> {
    let mut out = std::vec::Vec::with_capacity(U8_AFFINE_HEADER_LEN + values.len());
    out.extend_from_slice(&lo.to_le_bytes());
    out.extend_from_slice(&step.to_le_bytes());
    for &v in values {
        let q = u8_affine_code(lo, step, v);
        if u8_affine_value(lo, step, q).to_bits() != v.to_bits() {
            return None;
        }
        out.push(q);
    }
    Some(out)
}

/// Kernel codes (which implementation runs an operator).
pub mod kernel {
    #![allow(missing_docs)]
    /// The operator's default kernel: dense, on this CPU's SIMD path where it has one (the
    /// runtime picks it; the file does not).
    pub const DEFAULT: u16 = 0;
    /// Dense with a codebook weight (minor 2): per output row, the inputs are summed per
    /// codeword, then multiplied once by each codeword (`2^bits` products instead of one per
    /// weight). Only valid on a Dense whose weight is a `CODEBOOK` constant.
    pub const CODEBOOK_LUT: u16 = 1;
    /// Input-sparse Dense or 1×1 Conv (minor 3): the weight constant is stored input-major, its
    /// dims 0 and 1 swapped (Dense `[K, N]`, Conv `[C, M, 1, 1]`), and zero inputs are skipped.
    /// Only valid on a Dense, or a Conv with group 1, a 1×1 kernel and no padding, whose weight is
    /// an f32, f16 or codebook constant (a codebook's rows are then the inputs).
    pub const INPUT_SPARSE: u16 = 2;

    /// Human-readable name of a kernel code.
    pub fn name(code: u16) -> &'static str {
        match code {
            DEFAULT => "default",
            CODEBOOK_LUT => "codebook-lut",
            INPUT_SPARSE => "input-sparse",
            _ => "unknown",
        }
    }
}

/// Packed tables (format 1.6): variable-length records of LEB128 values behind an offset index,
/// so that a small model's tables take a few hundred bytes instead of 64 per tensor and 128 per
/// operator, while any record is still found in constant time.
///
/// A packed section is `u32 count`, `u8 index width` (2 or 4), three zero bytes, `count` little-
/// endian start offsets of that width, then the record area. Record `i` spans from its start to
/// the next record's start (the last to the end of the section); starts begin at 0 and never
/// decrease. Every value in a record is an unsigned LEB128 of at most 5 bytes, at most `u32::MAX`,
/// in its shortest form, and a record holds exactly its values (see `docs/FORMAT.md` for the
/// fields).
pub mod packed {
    /// Bytes before the index: count, width, three zero bytes.
    pub const HEADER_LEN: usize = 8;
    /// Constant payload and arena offsets are stored divided by this (they are 16-aligned).
    pub const OFFSET_UNIT: u32 = super::ALIGN as u32;
    /// In compact tensor records (1.9), constant payload offsets are stored divided by this;
    /// arena offsets still by [`OFFSET_UNIT`].
    pub const COMPACT_CONST_UNIT: u32 = super::COMPACT_CONST_ALIGN as u32;

    /// A checked packed section: `count` records behind an index of `width`-byte starts.
    #[derive(Clone, Copy, Debug)]
    pub struct Table<'a> {
        index: &'a [u8],
        area: &'a [u8],
        count: usize,
        width: usize,
    }

    impl<'a> Table<'a> {
        /// Checks the header and the index (width, zero padding, lengths, starts beginning at 0,
        /// non-decreasing and inside the area); `None` names none of these, the caller reports the
        /// section.
        pub fn parse(body: &'a [u8], max_count: usize) -> Option<Table<'a>> {
            let head = body.get(..HEADER_LEN)?;
            let count = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let width = head[4] as usize;
            if !(width == 2 || width == 4) || head[5..].iter().any(|&b| b != 0) || count > max_count {
                return None;
            }
            let end = count.checked_mul(width)?.checked_add(HEADER_LEN)?;
            let index = body.get(HEADER_LEN..end)?;
            let area = &body[end..];
            let t = Table { index, area, count, width };
            if count == 0 && !area.is_empty() {
                return None;
            }
            let mut prev = 0;
            for i in 0..count {
                let s = t.start(i);
                if (i == 0 && s != 0) || s < prev || s > area.len() {
                    return None;
                }
                prev = s;
            }
            Some(t)
        }

        fn start(&self, i: usize) -> usize {
            let b = &self.index[i * self.width..(i + 1) * self.width];
            match *b {
                [a, b] => u16::from_le_bytes([a, b]) as usize,
                [a, b, c, d] => u32::from_le_bytes([a, b, c, d]) as usize,
                _ => usize::MAX,
            }
        }

        /// Number of records.
        pub fn len(&self) -> usize {
            self.count
        }

        /// True when the table has no records.
        pub fn is_empty(&self) -> bool {
            self.count == 0
        }

        /// Where record `i` starts in the record area (`None` when `i` is out of range).
        pub fn record_start(&self, i: usize) -> Option<usize> {
            (i < self.count).then(|| self.start(i))
        }

        /// The record area: every record, one after the other.
        pub fn area(&self) -> &'a [u8] {
            self.area
        }

        /// The bytes of record `i`, or `None` when `i` is out of range.
        pub fn record(&self, i: usize) -> Option<&'a [u8]> {
            if i >= self.count {
                return None;
            }
            let end = if i + 1 == self.count { self.area.len() } else { self.start(i + 1) };
            self.area.get(self.start(i)..end)
        }
    }

    /// Reads the LEB128 values of one record in order.
    #[derive(Clone, Debug)]
    pub struct Values<'a> {
        bytes: &'a [u8],
    }

    impl<'a> Values<'a> {
        /// Values of `record`.
        pub fn new(record: &'a [u8]) -> Self {
            Values { bytes: record }
        }

        /// The next value; `None` when the record ends inside or before it, or it is longer than
        /// 5 bytes, above `u32::MAX`, or not in its shortest form.
        /// Inline: the operator loop reads every record through it (a call per multi-byte
        /// value was 20 k of vww's 30 M instructions per inference on the M4).
        #[allow(clippy::should_implement_trait)]
        #[inline]
        pub fn next(&mut self) -> Option<u32> {
            let mut v: u64 = 0;
            for (k, &b) in self.bytes.iter().enumerate().take(5) {
                v |= u64::from(b & 0x7f) << (7 * k);
                if b & 0x80 == 0 {
                    if (k > 0 && b == 0) || v > u64::from(u32::MAX) {
                        return None;
                    }
                    self.bytes = &self.bytes[k + 1..];
                    return Some(v as u32);
                }
            }
            None
        }

        /// True when every byte of the record has been read.
        pub fn is_done(&self) -> bool {
            self.bytes.is_empty()
        }

        /// The bytes not read yet.
        pub fn rest(&self) -> &'a [u8] {
            self.bytes
        }
    }

    /// Bytes of `v` as LEB128 (1 to 5).
    pub fn encoded_len(v: u32) -> usize {
        (32 - (v | 1).leading_zeros() as usize).div_ceil(7)
    }

    /// Writes `v` as LEB128 into `out`; returns the number of bytes (1 to 5).
    pub fn encode(mut v: u32, out: &mut [u8; 5]) -> usize {
        let mut n = 0;
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out[n] = b;
                return n + 1;
            }
            out[n] = b | 0x80;
            n += 1;
        }
    }
}

/// CRC-32 lookup tables: slice-by-16 (16 KiB) on hosts; one 1 KiB table without `std`, where
/// flash is scarce and the checksum runs once per parse.
#[cfg(feature = "std")]
type CrcTable = crc::Table<16>;
#[cfg(not(feature = "std"))]
type CrcTable = crc::Table<1>;
static CRC32: crc::Crc<u32, CrcTable> = crc::Crc::<u32, CrcTable>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32 (IEEE 802.3, as zlib and PNG) used for the payload and section checksums.
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC32.checksum(bytes)
}

/// One section of a file: its kind, where its bytes lie, and (fixed tables, before 1.10) the
/// CRC-32 its entry declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    /// Section kind ([`section`]).
    pub kind: u32,
    /// First byte, from the start of the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// The CRC-32 of the section's bytes the fixed table declares; `None` in compact tables,
    /// whose sections the header's CRC covers.
    pub crc: Option<u32>,
}

/// A file's section table, read without allocating: the fixed table of 24-byte entries before
/// 1.10, or the compact one from 1.10.
///
/// The compact table follows the header (whose section count is then 0): the number of
/// sections, then each one's kind and length, all unsigned LEB128 (shortest form, at most
/// `u32::MAX`). The sections follow the table end to end in table order, except that DATA
/// starts on the next 16-byte boundary of the file, after zero bytes; the last one ends at the
/// end of the file. [`SectionTable::read`] checks all of that, so a compact table's entries
/// always lie inside the file; a fixed table's entries are as declared, for the reader to check.
#[derive(Clone, Copy, Debug)]
pub struct SectionTable<'a> {
    bytes: &'a [u8],
    n: usize,
    /// Where the compact entries start (after the count); 0 for a fixed table.
    entries: usize,
    end: usize,
}

impl<'a> SectionTable<'a> {
    /// The section table of `bytes`, a file whose header (at least [`HEADER_LEN`] bytes) declares
    /// format 1.`minor`. Errors: `TooManySections`, `Truncated` (a fixed table past the end),
    /// and for compact tables `BadSectionTable` (a malformed entry, a non-zero fixed count, or
    /// sections that end before the file does), `SectionOutOfBounds` (a section past the end of
    /// the file) and `NonZeroPadding` (before DATA).
    pub fn read(bytes: &'a [u8], minor: u16) -> Result<SectionTable<'a>, crate::Error> {
        use crate::Error;
        let fixed = bytes.get(12..16).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok_or(Error::Truncated)? as usize;
        if minor < SECTION_TABLE_MINOR {
            if fixed > MAX_SECTIONS {
                return Err(Error::TooManySections);
            }
            let end = HEADER_LEN + fixed * SECTION_ENTRY_LEN;
            if end > bytes.len() {
                return Err(Error::Truncated);
            }
            return Ok(SectionTable { bytes, n: fixed, entries: 0, end });
        }
        if fixed != 0 {
            return Err(Error::BadSectionTable { entry: 0 });
        }
        let rest = bytes.get(HEADER_LEN..).ok_or(Error::Truncated)?;
        let mut v = packed::Values::new(rest);
        let n = v.next().ok_or(Error::BadSectionTable { entry: 0 })? as usize;
        if n > MAX_SECTIONS {
            return Err(Error::TooManySections);
        }
        let entries = bytes.len() - v.rest().len();
        // Two walks over the entries (no buffer): their values, then where each section lies.
        for i in 0..n {
            let bad = Error::BadSectionTable { entry: i as u32 };
            v.next().ok_or(bad)?;
            v.next().ok_or(bad)?;
        }
        let end = bytes.len() - v.rest().len();
        let mut v = packed::Values::new(&bytes[entries..end]);
        let mut at = end;
        while let (Some(kind), Some(len)) = (v.next(), v.next()) {
            if kind == section::DATA {
                let start = at.next_multiple_of(ALIGN);
                let pad = bytes.get(at..start).ok_or(Error::SectionOutOfBounds { kind })?;
                if pad.iter().any(|&b| b != 0) {
                    return Err(Error::NonZeroPadding { kind });
                }
                at = start;
            }
            at = at.checked_add(len as usize).filter(|&e| e <= bytes.len()).ok_or(Error::SectionOutOfBounds { kind })?;
        }
        if at != bytes.len() {
            return Err(Error::BadSectionTable { entry: n as u32 });
        }
        Ok(SectionTable { bytes, n, entries, end })
    }

    /// Number of sections.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when the table declares no section.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Where the table ends (the first byte a section may use).
    pub fn end(&self) -> usize {
        self.end
    }

    /// The sections in table order.
    pub fn iter(&self) -> impl Iterator<Item = Section> + 'a {
        let (bytes, n, entries) = (self.bytes, self.n, self.entries);
        let mut v = packed::Values::new(bytes.get(entries..).unwrap_or(&[]));
        let mut at = self.end;
        (0..n).map(move |i| {
            if entries == 0 {
                let e = HEADER_LEN + i * SECTION_ENTRY_LEN;
                let u32_at = |k: usize| u32::from_le_bytes([bytes[e + k], bytes[e + k + 1], bytes[e + k + 2], bytes[e + k + 3]]);
                let u64_at = |k: usize| u64::from(u32_at(k)) | u64::from(u32_at(k + 4)) << 32;
                return Section { kind: u32_at(0), crc: Some(u32_at(4)), offset: u64_at(8), len: u64_at(16) };
            }
            // `read` walked these entries: every value is there.
            let (kind, len) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
            if kind == section::DATA {
                at = at.next_multiple_of(ALIGN);
            }
            let s = Section { kind, crc: None, offset: at as u64, len: u64::from(len) };
            at += len as usize;
            s
        })
    }
}

/// The bytes of the compact section table (1.10) of sections `(kind, length)`: the count, then
/// each kind and length, as [`SectionTable::read`] reads them. `None` when a length is above
/// `u32::MAX` or there are more than [`MAX_SECTIONS`].
#[cfg(feature = "std")]
pub fn encode_section_table(sections: &[(u32, usize)]) -> Option<std::vec::Vec<u8>> {
    if sections.len() > MAX_SECTIONS {
        return None;
    }
    let mut out = std::vec::Vec::new();
    let mut put = |v: u32| {
        let mut b = [0u8; 5];
        let n = packed::encode(v, &mut b);
        out.extend_from_slice(&b[..n]);
    };
    put(sections.len() as u32);
    for &(kind, len) in sections {
        put(kind);
        put(u32::try_from(len).ok()?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::crc32;
    use super::packed::{encode, Table, Values};

    #[test]
    fn leb128_round_trips_and_rejects_overlong_truncated_and_oversized_values() {
        for v in [0u32, 1, 127, 128, 300, 16383, 16384, 1 << 21, 1 << 28, u32::MAX - 1, u32::MAX] {
            let mut b = [0u8; 5];
            let n = encode(v, &mut b);
            assert_eq!(super::packed::encoded_len(v), n, "{v}");
            let mut r = Values::new(&b[..n]);
            assert_eq!(r.next(), Some(v), "{v}");
            assert!(r.is_done());
            assert_eq!(Values::new(&b[..n - 1]).next(), None, "truncated {v}");
        }
        // 0 written in two bytes, 2^32 in five, and a sixth continuation byte.
        for bad in [&[0x80u8, 0x00][..], &[0x80, 0x80, 0x80, 0x80, 0x10], &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], &[]] {
            assert_eq!(Values::new(bad).next(), None, "{bad:?}");
        }
    }

    #[test]
    fn packed_table_index_is_checked() {
        // Two records, 2-byte starts 0 and 2, area "abcde": records "ab" and "cde".
        let good = [2u8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 2, 0, b'a', b'b', b'c', b'd', b'e'];
        let t = Table::parse(&good, 16).unwrap();
        assert_eq!((t.len(), t.record(0), t.record(1), t.record(2)), (2, Some(&b"ab"[..]), Some(&b"cde"[..]), None));
        let mut bad = std::vec::Vec::new();
        for (at, v) in [(4, 3u8), (5, 1), (8, 1), (10, 6), (0, 9)] {
            let mut b = good;
            b[at] = v;
            bad.push(b.to_vec());
        }
        bad.push(good[..11].to_vec());
        for b in &bad {
            assert!(Table::parse(b, 16).is_none(), "{b:?}");
        }
        assert!(Table::parse(&good, 1).is_none(), "count above the cap");
        assert!(Table::parse(&[0, 0, 0, 0, 2, 0, 0, 0], 16).unwrap().is_empty());
        assert!(Table::parse(&[0, 0, 0, 0, 2, 0, 0, 0, 1], 16).is_none(), "bytes outside every record");
    }

    #[test]
    fn crc32_is_the_ieee_check_value_and_every_table_size_agrees() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let small = crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISO_HDLC);
        let mut x = 0x1234_5678u32;
        let data: std::vec::Vec<u8> = (0..4099)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for n in [0, 1, 3, 15, 16, 17, 255, 4099] {
            assert_eq!(crc32(&data[..n]), small.checksum(&data[..n]), "length {n}");
        }
    }
}
