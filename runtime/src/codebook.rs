//! Codebook-quantized weights (`encoding::CODEBOOK`): validation of a payload, a borrowed view of
//! it, the bit unpacking the kernels decode with, and (behind `std`) the encoder the tools write
//! with.
//!
//! A constant of shape `[d0, d1, ..]` is the matrix of `rows = d0` by `cols = numel / d0`
//! ([`bsr_matrix`](crate::sparse::bsr_matrix)). Each row belongs to one of `G` groups, and each
//! weight is a `bits`-bit index into its row's group codebook of `2^bits` values. The payload
//! (layout and rules in `docs/FORMAT.md`, "Codebook payload") is a 16-byte header `bits u8,
//! value_type u8, reserved u16, groups u32, rows u32, cols u32`, then `row_group` (`rows` ids of
//! `⌈log2 G⌉` bits, packed least significant bit first; none for one group),
//! zero padding to a multiple of 4, the `G · 2^bits` codebook values (f32 or f16) group after
//! group (always a multiple of 4 bytes), and the rows of packed indices, `ceil(cols · bits / 8)`
//! bytes each: index `j` of a row is bits `j · bits ..` of the row, least significant bit first.

use crate::format::{codebook_value, CODEBOOK_HEADER_LEN, CODEBOOK_MAX_BITS, CODEBOOK_MAX_GROUPS};
use crate::span::Span;
use byteorder::{ByteOrder, LE};
use half::f16;

/// Entries of a decoded codebook: `2^bits` for the widest indices.
pub(crate) const TABLE_LEN: usize = 1 << CODEBOOK_MAX_BITS;

/// Indices unpacked at a time when decoding (a multiple of 8, so runs stay byte-aligned).
const DECODE_RUN: usize = 64;

/// Bytes of one stored codebook value.
fn value_len(f16_values: bool) -> usize {
    if f16_values {
        2
    } else {
        4
    }
}

/// Bits of one row's group id: `⌈log2 G⌉` (0 for a single group, 16 for 65536).
pub(crate) fn group_bits(groups: usize) -> usize {
    if groups <= 1 {
        0
    } else {
        (usize::BITS - (groups - 1).leading_zeros()) as usize
    }
}

/// Bytes of the packed row-group ids of `rows` rows.
fn row_groups_len(rows: usize, groups: usize) -> Option<usize> {
    Some(rows.checked_mul(group_bits(groups))?.div_ceil(8))
}

/// Byte offset of the codebooks in a payload with `rows` rows and `groups` groups.
fn codebooks_offset(rows: usize, groups: usize) -> Option<usize> {
    CODEBOOK_HEADER_LEN.checked_add(row_groups_len(rows, groups)?)?.checked_next_multiple_of(4)
}

/// Byte offset of the indices (`bits <= 8`).
fn indices_offset(rows: usize, bits: usize, value_len: usize, groups: usize) -> Option<usize> {
    codebooks_offset(rows, groups)?.checked_add(groups.checked_mul(value_len << bits)?)?.checked_next_multiple_of(4)
}

/// The f32 value of the binary16 `h`, exact for every finite half (normal or subnormal): the
/// magnitude bits shifted into an f32 are the value scaled by 2^-112, and scaling back by 2^112
/// is exact. A few instructions where `half`'s portable conversion branches per value. Infinities
/// and NaNs (refused by the parser) give large finite values.
#[inline]
pub(crate) fn finite_f16_to_f32(h: u16) -> f32 {
    let v = f32::from_bits(((h & 0x7fff) as u32) << 13) * f32::from_bits(0x7780_0000);
    if h & 0x8000 != 0 {
        -v
    } else {
        v
    }
}

/// Codeword `code` of the stored codebook bytes `cb` (f16 or f32 little-endian; 0.0 past its
/// bytes).
#[inline]
pub(crate) fn codeword(cb: &[u8], f16: bool, code: usize) -> f32 {
    if f16 {
        cb.get(2 * code..2 * code + 2).map_or(0.0, |b| f16::from_bits(LE::read_u16(b)).to_f32())
    } else {
        cb.get(4 * code..4 * code + 4).map_or(0.0, LE::read_f32)
    }
}

/// Value `i` of a packed array of `width`-bit values (0 to 16 bits, least significant bit first;
/// 0 past the bytes).
#[inline]
fn packed_at(bytes: &[u8], width: usize, i: usize) -> usize {
    if width == 0 {
        return 0;
    }
    let Some(p) = i.checked_mul(width) else { return 0 };
    let (at, shift) = (p / 8, p % 8);
    if width <= 9 {
        // Within two bytes (every group id of up to 512 groups): one read fewer per row.
        let lo = bytes.get(at).copied().unwrap_or(0) as u32;
        let hi = if shift + width > 8 { bytes.get(at + 1).copied().unwrap_or(0) as u32 } else { 0 };
        return (((lo | hi << 8) >> shift) & ((1u32 << width) - 1)) as usize;
    }
    let mut v = 0u32;
    for k in 0..3 {
        v |= (bytes.get(at + k).copied().unwrap_or(0) as u32) << (8 * k);
    }
    ((v >> shift) & ((1u32 << width) - 1)) as usize
}

/// Exact byte length of a payload for a `rows × cols` matrix with `bits`-bit indices into `groups`
/// codebooks of f16 (`f16_values`) or f32 values; `None` when `bits` is not in `1..=8` or on
/// arithmetic overflow.
pub fn codebook_len(rows: usize, cols: usize, bits: u8, f16_values: bool, groups: usize) -> Option<usize> {
    if !(1..=CODEBOOK_MAX_BITS).contains(&bits) {
        return None;
    }
    let b = bits as usize;
    let stride = cols.checked_mul(b)?.div_ceil(8);
    indices_offset(rows, b, value_len(f16_values), groups)?.checked_add(rows.checked_mul(stride)?)
}

/// Header of a codebook constant (for size reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CodebookInfo {
    /// Matrix rows (`d0`).
    pub rows: usize,
    /// Matrix columns (`numel / d0`).
    pub cols: usize,
    /// Bits per index, 1 to 8.
    pub bits: u8,
    /// Codebook values are f16 (`value_type` 1), else f32.
    pub f16_values: bool,
    /// Number of codebooks (row groups).
    pub groups: usize,
    /// Payload length in bytes (header, row groups, codebooks, indices and padding).
    pub bytes: usize,
}

impl CodebookInfo {
    /// Stored codebook values, `groups · 2^bits`.
    pub fn codebook_values(&self) -> usize {
        self.groups.saturating_mul(1 << self.bits.min(CODEBOOK_MAX_BITS))
    }

    /// Payload bits per weight, everything included (0.0 for an empty matrix).
    pub fn bits_per_weight(&self) -> f32 {
        match self.rows.saturating_mul(self.cols) {
            0 => 0.0,
            n => (self.bytes as f64 * 8.0 / n as f64) as f32,
        }
    }
}

/// A validated codebook payload, borrowed in place, seen as the logical dense elements
/// `start..start + len` of the row-major matrix (a whole constant, or a [`Codebook::window`] of
/// it). As small as [`Bsr`](crate::sparse::Bsr) (a slice and four counts, so `View` does not
/// grow); the payload's parts are located from its header when used.
#[derive(Clone, Copy, Debug)]
pub struct Codebook<'a> {
    payload: &'a [u8],
    span: Span,
}

/// The parts of a payload, located from its header.
#[derive(Clone, Copy)]
pub(crate) struct Parts<'a> {
    /// 1 to 8 (clamped, so shifts never overflow on unchecked payloads).
    bits: usize,
    f16: bool,
    groups: usize,
    /// Bytes per row of indices.
    stride: usize,
    row_group: &'a [u8],
    /// Bits per row-group id.
    group_bits: usize,
    /// `groups · 2^bits` values.
    codebooks: &'a [u8],
    indices: &'a [u8],
}

impl<'a> Parts<'a> {
    /// Bits per index.
    #[inline]
    pub(crate) fn bits(&self) -> usize {
        self.bits
    }

    /// Group of matrix row `row` (0 when out of range).
    #[inline]
    pub(crate) fn group(&self, row: usize) -> usize {
        packed_at(self.row_group, self.group_bits, row)
    }

    /// The packed indices of matrix row `row` (empty when out of range).
    #[inline]
    pub(crate) fn row(&self, row: usize) -> &'a [u8] {
        let at = row.saturating_mul(self.stride);
        self.indices.get(at..at.saturating_add(self.stride)).unwrap_or(&[])
    }

    /// Number of codebooks (row groups).
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[inline]
    pub(crate) fn groups(&self) -> usize {
        self.groups
    }

    /// Bytes per row of indices.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[inline]
    pub(crate) fn stride(&self) -> usize {
        self.stride
    }

    /// The packed indices, row after row ([`Parts::stride`] bytes each).
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[inline]
    pub(crate) fn indices(&self) -> &'a [u8] {
        self.indices
    }

    /// Every group's stored codebook, group after group.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub(crate) fn codebooks(&self) -> &'a [u8] {
        self.codebooks
    }

    /// Whether codewords are stored as f16 (else f32), little-endian.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub(crate) fn f16(&self) -> bool {
        self.f16
    }

    /// The stored bytes of the codebook of group `g` (empty when out of range).
    #[inline]
    pub(crate) fn codebook(&self, g: usize) -> &'a [u8] {
        let n = value_len(self.f16) << self.bits;
        let at = g.saturating_mul(n);
        self.codebooks.get(at..at.saturating_add(n)).unwrap_or(&[])
    }

    /// Codeword `code` of group `g` (0.0 when out of range).
    #[inline]
    fn value(&self, g: usize, code: usize) -> f32 {
        codeword(self.codebook(g), self.f16, code)
    }

    /// Fills the first `2^bits` entries of `t` with the codebook of group `g` (missing values
    /// are 0.0).
    pub(crate) fn load(&self, g: usize, t: &mut [f32; TABLE_LEN]) {
        // Entries past 2^bits are never written, so they keep the 0.0 of `Table::new`.
        t[..1 << self.bits].fill(0.0);
        let cb = self.codebook(g);
        if self.f16 {
            for (v, b) in t.iter_mut().zip(cb.chunks_exact(2)) {
                *v = finite_f16_to_f32(LE::read_u16(b));
            }
        } else {
            for (v, b) in t.iter_mut().zip(cb.chunks_exact(4)) {
                *v = LE::read_f32(b);
            }
        }
    }

    /// Writes weights `c0..c0 + out.len()` of matrix row `row` to `out`, through `table` (the
    /// codebook of the row's group).
    pub(crate) fn decode(&self, row: usize, c0: usize, table: &[f32; TABLE_LEN], out: &mut [f32]) {
        let r = self.row(row);
        let mut codes = [0u8; DECODE_RUN];
        let mut c = c0;
        for o in out.chunks_mut(DECODE_RUN) {
            let cs = &mut codes[..o.len()];
            unpack(r, self.bits, c, cs);
            for (v, &k) in o.iter_mut().zip(cs.iter()) {
                *v = table[k as usize];
            }
            c = c.saturating_add(o.len());
        }
    }
}

/// Index `c` of a packed row of `bits`-bit indices (0 past the row's bytes).
#[inline]
fn index_at(row: &[u8], bits: usize, c: usize) -> u8 {
    let Some(p) = c.checked_mul(bits) else { return 0 };
    let (byte, shift) = (p / 8, p % 8);
    let lo = row.get(byte).copied().unwrap_or(0) as u16;
    let hi = row.get(byte + 1).copied().unwrap_or(0) as u16;
    (((lo | hi << 8) >> shift) & ((1 << bits) - 1)) as u8
}

/// Writes indices `c0..c0 + out.len()` of the packed row `row` (`bits` wide, 1 to 8, least
/// significant bit first) to `out`; indices past the row's bytes are 0. Widths 8, 4, 2 and 1 take
/// whole bytes, others groups of 8 indices (`bits` bytes) as one word, from a byte-aligned start;
/// the ragged head or tail goes index by index.
pub(crate) fn unpack(row: &[u8], bits: usize, c0: usize, out: &mut [u8]) {
    let done = match bits {
        8 => {
            let src = row.get(c0..).unwrap_or(&[]);
            let n = src.len().min(out.len());
            out[..n].copy_from_slice(&src[..n]);
            n
        }
        4 => unpack_aligned::<4>(row, c0, out),
        2 => unpack_aligned::<2>(row, c0, out),
        1 => unpack_aligned::<1>(row, c0, out),
        _ => unpack_groups(row, bits, c0, out),
    };
    for (i, o) in out.iter_mut().enumerate().skip(done) {
        *o = index_at(row, bits, c0.saturating_add(i));
    }
}

/// `B` = 1, 2 or 4: each byte holds `8 / B` whole indices. Fills the leading indices whose bytes
/// are in `row` when index `c0` starts a byte; returns how many.
#[inline]
fn unpack_aligned<const B: usize>(row: &[u8], c0: usize, out: &mut [u8]) -> usize {
    let per = 8 / B;
    if !c0.is_multiple_of(per) {
        return 0;
    }
    let src = row.get(c0 / per..).unwrap_or(&[]);
    let mask = ((1u16 << B) - 1) as u8;
    let mut n = 0;
    for (o, &byte) in out.chunks_exact_mut(per).zip(src) {
        for (j, v) in o.iter_mut().enumerate() {
            *v = (byte >> (j * B)) & mask;
        }
        n += per;
    }
    n
}

/// Widths 3, 5, 6 and 7: 8 indices fill exactly `bits` bytes, read as one little-endian word.
/// Fills the leading whole groups in `row` when `c0` starts a group; returns how many indices.
#[inline]
fn unpack_groups(row: &[u8], bits: usize, c0: usize, out: &mut [u8]) -> usize {
    if !c0.is_multiple_of(8) || !(1..8).contains(&bits) {
        return 0;
    }
    let src = (c0 / 8).checked_mul(bits).and_then(|at| row.get(at..)).unwrap_or(&[]);
    let mask = (1u64 << bits) - 1;
    let mut n = 0;
    for (o, b) in out.chunks_exact_mut(8).zip(src.chunks_exact(bits)) {
        let mut w = [0u8; 8];
        w[..bits].copy_from_slice(b);
        let v = u64::from_le_bytes(w);
        for (j, c) in o.iter_mut().enumerate() {
            *c = ((v >> (j * bits)) & mask) as u8;
        }
        n += 8;
    }
    n
}

/// One group's codebook decoded to f32 (entries past `2^bits` are 0.0), reloaded only when the
/// group changes. Serves one [`Codebook`] at a time.
pub(crate) struct Table {
    values: [f32; TABLE_LEN],
    group: Option<usize>,
    /// Hosts only (bare-metal stacks are small): for 4- and 2-bit indices, the 2 or 4 weights
    /// every byte value decodes to, for [`Table::decode`].
    #[cfg(not(target_os = "none"))]
    bytes: ByteTables,
}

/// Per-byte decode tables of one group's codebook.
#[cfg(not(target_os = "none"))]
struct ByteTables {
    pairs: Pairs4,
    quads: [[f32; 4]; 256],
    /// Group and width the tables hold.
    key: Option<(usize, usize)>,
}

/// Writes the weights of whole bytes `src` through `table` (byte → `P` weights) to the leading
/// whole `P`-chunks of `out`; returns how many weights.
#[cfg(not(target_os = "none"))]
#[inline]
fn spread<const P: usize>(table: &[[f32; P]; 256], src: &[u8], out: &mut [f32]) -> usize {
    let mut n = 0;
    for (o, &b) in out.chunks_exact_mut(P).zip(src) {
        o.copy_from_slice(&table[b as usize]);
        n += P;
    }
    n
}

/// A pair table of a 4-bit codebook: entry `b` holds the two weights of code byte `b`
/// (`[table[b & 15], table[b >> 4]]`), so that one lookup reads two weights (2 KiB).
pub(crate) type Pairs4 = [[f32; 2]; 256];

/// Fills `pairs` from the 4-bit codebook `table` (the first 16 values). The one builder of
/// every 4-bit pair table: [`PairTables`], the byte tables of [`Table`], and the portable
/// 4-bit Dense loop (`kernels::dense_codebook`).
#[inline(never)]
pub(crate) fn fill_pairs4(table: &[f32; TABLE_LEN], pairs: &mut Pairs4) {
    // The 16 values held in registers; entry `16·hi + lo` is `[values[lo], values[hi]]`.
    let values: [f32; 16] = core::array::from_fn(|i| table[i]);
    for (row, &high) in pairs.chunks_exact_mut(16).zip(&values) {
        for (e, &low) in row.iter_mut().zip(&values) {
            *e = [low, high];
        }
    }
}

/// Byte-pair decode tables of up to [`PAIR_GROUPS`] groups of a 4-bit payload, each built on
/// first use and kept for the whole call: filters of mixed groups (rows not sorted by group)
/// decode through them without rebuilding a table per row (32 KiB, hosts only).
#[cfg(not(target_os = "none"))]
pub(crate) struct PairTables {
    pairs: [Pairs4; PAIR_GROUPS],
    built: u32,
    values: [f32; TABLE_LEN],
}

/// Groups [`PairTables`] holds.
#[cfg(not(target_os = "none"))]
pub(crate) const PAIR_GROUPS: usize = 16;

#[cfg(not(target_os = "none"))]
impl PairTables {
    /// Empty tables.
    pub(crate) fn new() -> PairTables {
        PairTables { pairs: [[[0.0; 2]; 256]; PAIR_GROUPS], built: 0, values: [0.0; TABLE_LEN] }
    }

    /// Whether `p` decodes through these tables: 4-bit codes, at most [`PAIR_GROUPS`] groups.
    pub(crate) fn apply(p: &Parts<'_>) -> bool {
        p.bits == 4 && p.groups <= PAIR_GROUPS
    }

    /// [`Table::decode_parts`] for a payload where [`PairTables::apply`] holds: the same values.
    #[inline]
    pub(crate) fn decode(&mut self, p: &Parts<'_>, row: usize, c0: usize, out: &mut [f32]) {
        let g = p.group(row).min(PAIR_GROUPS - 1);
        if self.built & (1 << g) == 0 {
            p.load(g, &mut self.values);
            fill_pairs4(&self.values, &mut self.pairs[g]);
            self.built |= 1 << g;
        }
        let n = if c0.is_multiple_of(2) { spread(&self.pairs[g], p.row(row).get(c0 / 2..).unwrap_or(&[]), out) } else { 0 };
        if n < out.len() {
            p.load(g, &mut self.values);
            p.decode(row, c0 + n, &self.values, &mut out[n..]);
        }
    }
}

impl Table {
    /// An empty table (loads on first use).
    pub(crate) fn new() -> Table {
        Table {
            values: [0.0; TABLE_LEN],
            group: None,
            #[cfg(not(target_os = "none"))]
            bytes: ByteTables { pairs: [[0.0; 2]; 256], quads: [[0.0; 4]; 256], key: None },
        }
    }

    /// Writes weights `c0..c0 + out.len()` of matrix row `row` of `cb` to `out` (the values
    /// [`Codebook::get`] gives). On hosts, 4- and 2-bit rows from a byte-aligned `c0` decode a
    /// byte at a time through per-group byte tables (rebuilt when the row's group changes, so
    /// callers visit rows group by group).
    #[inline]
    pub(crate) fn decode(&mut self, cb: &Codebook<'_>, row: usize, c0: usize, out: &mut [f32]) {
        self.decode_parts(&cb.parts(), row, c0, out);
    }

    /// [`Table::decode`] with the payload's parts already located (hot loops locate them once).
    #[inline]
    pub(crate) fn decode_parts(&mut self, p: &Parts<'_>, row: usize, c0: usize, out: &mut [f32]) {
        let g = p.group(row);
        self.of_group(p, g);
        let t = &self.values;
        #[cfg(not(target_os = "none"))]
        if (p.bits == 4 || p.bits == 2) && c0.is_multiple_of(8 / p.bits) {
            let bt = &mut self.bytes;
            let per = 8 / p.bits;
            if bt.key != Some((g, p.bits)) {
                if per == 2 {
                    fill_pairs4(t, &mut bt.pairs);
                } else {
                    for (b, q) in bt.quads.iter_mut().enumerate() {
                        *q = [t[b & 3], t[(b >> 2) & 3], t[(b >> 4) & 3], t[(b >> 6) & 3]];
                    }
                }
                bt.key = Some((g, p.bits));
            }
            let src = p.row(row).get(c0 / per..).unwrap_or(&[]);
            let n = if per == 2 { spread(&bt.pairs, src, out) } else { spread(&bt.quads, src, out) };
            p.decode(row, c0 + n, t, &mut out[n..]);
            return;
        }
        p.decode(row, c0, t, out);
    }

    /// The codebook of matrix row `row` of `cb`.
    #[inline]
    pub(crate) fn of_row(&mut self, cb: &Codebook<'_>, row: usize) -> &[f32; TABLE_LEN] {
        let p = cb.parts();
        self.of_group(&p, p.group(row))
    }

    /// [`Table::of_row`] with the payload's parts already located (hot loops locate them once).
    pub(crate) fn of_parts_row(&mut self, p: &Parts<'_>, row: usize) -> &[f32; TABLE_LEN] {
        self.of_group(p, p.group(row))
    }

    fn of_group(&mut self, p: &Parts<'_>, g: usize) -> &[f32; TABLE_LEN] {
        if self.group != Some(g) {
            p.load(g, &mut self.values);
            self.group = Some(g);
        }
        &self.values
    }
}

impl<'a> Codebook<'a> {
    /// Validates `payload` as the `rows × cols` matrix (every rule of the layout) and borrows it.
    /// The error names the first rule broken.
    pub fn parse(payload: &'a [u8], rows: usize, cols: usize) -> Result<Codebook<'a>, &'static str> {
        let c = Codebook::split(payload, rows, cols)?;
        c.check_contents()?;
        Ok(c)
    }

    /// The header and length checks of [`Codebook::parse`] only (constant time), for payloads
    /// [`Codebook::parse`] already accepted. Contents that break the remaining rules give wrong
    /// values, never a panic.
    pub(crate) fn split(payload: &'a [u8], rows: usize, cols: usize) -> Result<Codebook<'a>, &'static str> {
        if payload.len() < CODEBOOK_HEADER_LEN {
            return Err("payload shorter than its 16-byte header");
        }
        let (bits, value_type) = (payload[0], payload[1]);
        let reserved = LE::read_u16(&payload[2..4]);
        let groups = LE::read_u32(&payload[4..8]) as usize;
        let (hrows, hcols) = (LE::read_u32(&payload[8..12]) as usize, LE::read_u32(&payload[12..16]) as usize);
        if !(1..=CODEBOOK_MAX_BITS).contains(&bits) {
            return Err("bits is not in 1..=8");
        }
        if value_type != codebook_value::F32 && value_type != codebook_value::F16 {
            return Err("value type is not 0 (f32) or 1 (f16)");
        }
        if reserved != 0 {
            return Err("reserved header field is not 0");
        }
        if groups == 0 {
            return Err("groups is 0");
        }
        if groups > CODEBOOK_MAX_GROUPS {
            return Err("groups exceeds 65536");
        }
        if hrows != rows {
            return Err("rows is not the matrix rows");
        }
        if hcols != cols {
            return Err("cols is not the matrix cols");
        }
        let len_rule = "byte length is not the end of the indices";
        if codebook_len(rows, cols, bits, value_type == codebook_value::F16, groups) != Some(payload.len()) {
            return Err(len_rule);
        }
        Ok(Codebook { payload, span: Span::whole(rows, cols).ok_or(len_rule)? })
    }

    /// The payload's parts. `split` checked the header and the length, so they are in range;
    /// a payload that was not checked gives empty parts rather than a panic.
    #[inline]
    pub(crate) fn parts(&self) -> Parts<'a> {
        let p = self.payload;
        let bits = (p.first().copied().unwrap_or(1) as usize).clamp(1, CODEBOOK_MAX_BITS as usize);
        let f16 = p.get(1) == Some(&codebook_value::F16);
        let groups = p.get(4..8).map_or(0, LE::read_u32) as usize;
        let vlen = value_len(f16);
        // Clamped so unchecked payloads never shift past 16-bit ids.
        let gb = group_bits(groups.min(CODEBOOK_MAX_GROUPS));
        let rg = CODEBOOK_HEADER_LEN..CODEBOOK_HEADER_LEN.saturating_add(self.span.rows.saturating_mul(gb).div_ceil(8));
        let cb_at = codebooks_offset(self.span.rows, groups).unwrap_or(usize::MAX);
        let cb = cb_at..cb_at.saturating_add(groups.saturating_mul(vlen << bits));
        let ix_at = indices_offset(self.span.rows, bits, vlen, groups).unwrap_or(usize::MAX);
        Parts {
            bits,
            f16,
            groups,
            stride: self.span.cols.saturating_mul(bits).div_ceil(8),
            row_group: p.get(rg).unwrap_or(&[]),
            group_bits: gb,
            codebooks: p.get(cb).unwrap_or(&[]),
            indices: p.get(ix_at..).unwrap_or(&[]),
        }
    }

    fn check_contents(&self) -> Result<(), &'static str> {
        let p = self.parts();
        if (0..self.span.rows).any(|r| p.group(r) >= p.groups) {
            return Err("row_group entry not below groups");
        }
        let zero = |s: Option<&[u8]>| s.is_some_and(|s| s.iter().all(|&b| b == 0));
        let used = (self.span.rows * p.group_bits) % 8;
        if used != 0 && p.row_group.last().is_none_or(|&b| b >> used != 0) {
            return Err("unused trailing row_group bits are not zero");
        }
        let rg_end = CODEBOOK_HEADER_LEN + p.row_group.len();
        let cb_at = codebooks_offset(self.span.rows, p.groups).unwrap_or(rg_end);
        if !zero(self.payload.get(rg_end..cb_at)) {
            return Err("padding before the codebooks is not zero");
        }
        let finite = if p.f16 {
            p.codebooks.chunks_exact(2).all(|b| f16::from_bits(LE::read_u16(b)).is_finite())
        } else {
            p.codebooks.chunks_exact(4).all(|b| LE::read_f32(b).is_finite())
        };
        if !finite {
            return Err("codebook value is not finite");
        }
        let used = (self.span.cols * p.bits) % 8;
        if used != 0 && (0..self.span.rows).any(|r| p.row(r).last().is_none_or(|&b| b >> used != 0)) {
            return Err("unused trailing index bits of a row are not zero");
        }
        Ok(())
    }

    /// The matrix's rows and columns (no header read).
    #[inline]
    pub(crate) fn dims(&self) -> (usize, usize) {
        (self.span.rows, self.span.cols)
    }

    /// The header: index width, value type, groups, and the payload length.
    pub fn info(&self) -> CodebookInfo {
        let p = self.parts();
        CodebookInfo {
            rows: self.span.rows,
            cols: self.span.cols,
            bits: p.bits as u8,
            f16_values: p.f16,
            groups: p.groups,
            bytes: self.payload.len(),
        }
    }

    /// Number of logical elements in the view.
    #[inline]
    pub fn len(&self) -> usize {
        self.span.len
    }

    /// True when the view holds no element.
    pub fn is_empty(&self) -> bool {
        self.span.len == 0
    }

    /// True when the view is the whole matrix (not a [`Codebook::window`]).
    #[inline]
    pub fn is_whole(&self) -> bool {
        self.span.is_whole()
    }

    /// Logical elements `start..start + len` of this view, `None` when out of range.
    pub fn window(&self, start: usize, len: usize) -> Option<Codebook<'a>> {
        Some(Codebook { span: self.span.sub(start, len)?, ..*self })
    }

    /// Logical element `i` of the view: `codebook[row_group[r]][index(r, c)]` (0.0 out of range).
    pub fn get(&self, i: usize) -> f32 {
        let Some((row, col)) = self.span.locate(i) else { return 0.0 };
        let p = self.parts();
        p.value(p.group(row), index_at(p.row(row), p.bits, col) as usize)
    }

    /// Writes logical elements `start..start + out.len()` into `out` (0.0 past the end), a matrix
    /// row segment at a time, through the codebook of each row's group.
    pub fn read_into(&self, start: usize, out: &mut [f32]) {
        out.fill(0.0);
        if self.span.cols == 0 {
            return;
        }
        let p = self.parts();
        let mut table = Table::new();
        let n = out.len();
        for (row, c0, c1, at) in self.span.segments(start, n) {
            let t = table.of_group(&p, p.group(row));
            p.decode(row, c0, t, &mut out[at..at + (c1 - c0)]);
        }
    }

    /// Number of codebooks (row groups).
    #[inline]
    pub(crate) fn groups(&self) -> usize {
        self.parts().groups
    }

    /// Writes indices `c0..c0 + out.len()` of matrix row `row` to `out` (each `< 2^bits`).
    #[inline]
    pub(crate) fn row_codes(&self, row: usize, c0: usize, out: &mut [u8]) {
        let p = self.parts();
        unpack(p.row(row), p.bits, c0, out);
    }
}

/// Encodes the row-major `rows × cols` matrix of `indices` (one per byte) into the codebooks
/// `codebooks` (`G · 2^bits` values, group after group) with row `r` in group `row_group[r]`, as
/// a `CODEBOOK` payload with f16 (`f16_values`) or f32 codebook values.
///
/// Guarantees: the result satisfies every rule [`Codebook::parse`] checks (so
/// `Codebook::parse(&out, rows, cols)` accepts it), element `(r, c)` reads back as
/// `codebooks[row_group[r] · 2^bits + indices[r · cols + c]]` (rounded to f16 when `f16_values`:
/// `half::f16::from_f32(v).to_f32()`), and its length is [`codebook_len`] of its header.
///
/// # Panics
/// When `bits` is not in `1..=8`; `codebooks.len()` is not `G · 2^bits` with `G` in `1..=65536`;
/// `row_group.len() != rows` or a group is not below `G`; `indices.len() != rows * cols` or an
/// index is not below `2^bits`; a codebook value is not finite (after rounding to f16, for f16
/// values); or `rows` / `cols` do not fit the header's `u32`s.
#[cfg(feature = "std")]
pub fn encode_codebook(
    rows: usize,
    cols: usize,
    bits: u8,
    f16_values: bool,
    row_group: &[u16],
    codebooks: &[f32],
    indices: &[u8],
) -> std::vec::Vec<u8> {
    assert!((1..=CODEBOOK_MAX_BITS).contains(&bits), "encode_codebook: {bits} bits (1..=8)");
    let (b, n) = (bits as usize, 1usize << bits);
    let groups = codebooks.len() / n;
    assert!(
        codebooks.len().is_multiple_of(n) && (1..=CODEBOOK_MAX_GROUPS).contains(&groups),
        "encode_codebook: {} codebook values are not 1..=65536 codebooks of {n}",
        codebooks.len()
    );
    assert_eq!(row_group.len(), rows, "encode_codebook: {} row groups for {rows} rows", row_group.len());
    assert!(row_group.iter().all(|&g| (g as usize) < groups), "encode_codebook: a row group is not below {groups}");
    assert_eq!(Some(indices.len()), rows.checked_mul(cols), "encode_codebook: {} indices for a {rows} x {cols} matrix", indices.len());
    assert!(indices.iter().all(|&i| (i as usize) < n), "encode_codebook: an index is not below {n}");
    let u32_of = |v: usize| u32::try_from(v).expect("encode_codebook: count exceeds u32");
    let len = codebook_len(rows, cols, bits, f16_values, groups).expect("encode_codebook: payload length overflows");
    let mut out = std::vec::Vec::with_capacity(len);
    out.extend_from_slice(&[bits, if f16_values { codebook_value::F16 } else { codebook_value::F32 }, 0, 0]);
    for v in [u32_of(groups), u32_of(rows), u32_of(cols)] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let gb = group_bits(groups);
    let at = out.len();
    out.resize(at + (rows * gb).div_ceil(8), 0);
    for (r, &g) in row_group.iter().enumerate() {
        let (byte, shift) = (r * gb / 8, r * gb % 8);
        let v = (g as u32) << shift;
        for k in 0..3 {
            if let Some(b) = out.get_mut(at + byte + k) {
                *b |= (v >> (8 * k)) as u8;
            }
        }
    }
    out.resize(out.len().next_multiple_of(4), 0);
    for &v in codebooks {
        if f16_values {
            let h = f16::from_f32(v);
            assert!(h.is_finite(), "encode_codebook: codebook value {v} is not finite as f16");
            out.extend_from_slice(&h.to_le_bytes());
        } else {
            assert!(v.is_finite(), "encode_codebook: codebook value {v} is not finite");
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out.resize(out.len().next_multiple_of(4), 0);
    let stride = (cols * b).div_ceil(8);
    for r in 0..rows {
        let at = out.len();
        out.resize(at + stride, 0);
        let row = &mut out[at..];
        for (c, &i) in indices[r * cols..(r + 1) * cols].iter().enumerate() {
            let (byte, shift) = (c * b / 8, c * b % 8);
            let v = (i as u16) << shift;
            row[byte] |= v as u8;
            if shift + b > 8 {
                row[byte + 1] |= (v >> 8) as u8;
            }
        }
    }
    debug_assert_eq!(out.len(), len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::kernel;
    use crate::kernels::{execute, execute_kernel_in, Operand, ALL_OPS};
    use crate::op::{Activation, ConvAttrs, Op};
    use crate::shape::Shape;
    use crate::view::View;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// A random `rows × cols` codebook matrix: `(row_group, codebooks, indices)`.
    fn random(rows: usize, cols: usize, bits: u8, groups: usize, seed: u64) -> (Vec<u16>, Vec<f32>, Vec<u8>) {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let n = 1usize << bits;
        let row_group = (0..rows).map(|_| (next() % groups as u64) as u16).collect();
        let codebooks = (0..groups * n).map(|_| ((next() % 4001) as f32 - 2000.0) / 999.0).collect();
        let indices = (0..rows * cols).map(|_| (next() % n as u64) as u8).collect();
        (row_group, codebooks, indices)
    }

    /// The dense matrix the payload stands for, by the definition.
    fn reference(cols: usize, bits: u8, f16_values: bool, row_group: &[u16], codebooks: &[f32], indices: &[u8]) -> Vec<f32> {
        let n = 1usize << bits;
        (0..indices.len())
            .map(|i| {
                let v = codebooks[row_group[i / cols] as usize * n + indices[i] as usize];
                if f16_values {
                    f16::from_f32(v).to_f32()
                } else {
                    v
                }
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(400)))]
        #[test]
        fn encode_then_read_gives_the_reference_decode(rows in 0usize..12, cols in 0usize..40, bits in 1u8..=8, f16_values in any::<bool>(),
                                                         groups in 1usize..=4, seed in any::<u64>(), win in (0usize..1000, 0usize..1000)) {
            let (rg, cbs, idx) = random(rows, cols, bits, groups, seed);
            let dense = reference(cols, bits, f16_values, &rg, &cbs, &idx);
            let payload = encode_codebook(rows, cols, bits, f16_values, &rg, &cbs, &idx);
            let c = Codebook::parse(&payload, rows, cols).unwrap();
            let bytes = payload.len();
            prop_assert_eq!(c.info(), CodebookInfo { rows, cols, bits, f16_values, groups, bytes });
            prop_assert_eq!(Some(bytes), codebook_len(rows, cols, bits, f16_values, groups));
            prop_assert_eq!(c.len(), rows * cols);
            prop_assert!(c.is_whole());
            let v = View::Codebook(c);
            for (i, &d) in dense.iter().enumerate() {
                prop_assert_eq!(c.get(i).to_bits(), d.to_bits(), "element {}", i);
                prop_assert_eq!(v.get(i).to_bits(), d.to_bits());
            }
            prop_assert_eq!(c.get(rows * cols), 0.0);
            let mut all = vec![f32::NAN; rows * cols + 3];
            v.read_into(0, &mut all);
            prop_assert_eq!(&all[..rows * cols], &dense[..]);
            prop_assert_eq!(&all[rows * cols..], &[0.0; 3]);
            // Indices row by row, from every start.
            for r in 0..rows {
                for c0 in 0..cols.min(17) {
                    let mut codes = vec![0xAA; cols - c0 + 2];
                    c.row_codes(r, c0, &mut codes);
                    prop_assert_eq!(&codes[..cols - c0], &idx[r * cols + c0..(r + 1) * cols]);
                }
            }
            // A window reads the same elements, through `View` too.
            let n = rows * cols;
            let (s, l) = (win.0 % (n + 1), win.1 % (n + 1));
            let l = l.min(n - s);
            let w = v.slice(s, l).unwrap();
            prop_assert_eq!(w.len(), l);
            let mut part = vec![f32::NAN; l];
            w.read_into(0, &mut part);
            prop_assert_eq!(&part[..], &dense[s..s + l]);
            for i in 0..l {
                prop_assert_eq!(w.get(i).to_bits(), dense[s + i].to_bits());
            }
            prop_assert!(v.slice(s, n - s + 1).is_none());
            // Unaligned bytes read the same.
            let shifted = [&[0u8][..], &payload].concat();
            let u = Codebook::parse(&shifted[1..], rows, cols).unwrap();
            let mut again = vec![f32::NAN; n];
            u.read_into(0, &mut again);
            prop_assert_eq!(&again[..], &dense[..]);
        }

        #[test]
        fn packed_ids_match_the_bit_definition(width in 0usize..=16, bytes in proptest::collection::vec(any::<u8>(), 0..24),
                                              i in 0usize..100) {
            // Bit `b` of value `i` is bit `i·width + b` of the array, least significant first; 0
            // past the bytes (both the two-byte and the three-byte reads, straddling or not).
            let bit = |k: usize| bytes.get(k / 8).map_or(0, |&v| (v as usize >> (k % 8)) & 1);
            let want: usize = (0..width).map(|b| bit(i * width + b) << b).sum();
            prop_assert_eq!(packed_at(&bytes, width, i), want);
        }

        #[test]
        fn unpack_matches_the_bit_definition(bits in 1usize..=8, row in proptest::collection::vec(any::<u8>(), 0..24),
                                            c0 in 0usize..40, n in 0usize..80) {
            let mut out = vec![0xAA; n];
            unpack(&row, bits, c0, &mut out);
            for (i, &o) in out.iter().enumerate() {
                let c = c0 + i;
                let want = (0..bits).fold(0u8, |v, k| {
                    let bit = c * bits + k;
                    v | row.get(bit / 8).map_or(0, |b| (b >> (bit % 8)) & 1) << k
                });
                prop_assert_eq!(o, want, "index {} of width {}", c, bits);
            }
        }

        #[test]
        fn mutated_payloads_are_rejected_or_read_without_panic(rows in 1usize..9, cols in 1usize..13, bits in 1u8..=8, f16_values in any::<bool>(),
                                                                 groups in 1usize..=3, seed in any::<u64>(),
                                                                 edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
                                                                 resize in prop_oneof![Just(0isize), -20isize..20]) {
            let (rg, cbs, idx) = random(rows, cols, bits, groups, seed);
            let mut p = encode_codebook(rows, cols, bits, f16_values, &rg, &cbs, &idx);
            for (at, v) in edits {
                let n = p.len();
                p[at % n] = v;
            }
            let len = (p.len() as isize + resize).max(0) as usize;
            p.resize(len, 0);
            let parsed = Codebook::parse(&p, rows, cols);
            // The constant-time split used for validated payloads must not panic either.
            for c in parsed.ok().into_iter().chain(Codebook::split(&p, rows, cols).ok()) {
                let mut buf = vec![0.0; rows * cols + 1];
                c.read_into(0, &mut buf);
                for i in 0..=rows * cols {
                    let _ = c.get(i);
                }
                let _ = c.info().bits_per_weight();
                let x: Vec<f32> = (0..2 * cols).map(|i| i as f32 / 7.0).collect();
                let ops = [
                    Operand { view: View::F32(&x), shape: Shape::new(&[2, cols]).unwrap() },
                    Operand { view: View::Codebook(c), shape: Shape::new(&[rows, cols]).unwrap() },
                ];
                let mut y = vec![0.0; 2 * rows];
                let dense = Op::Dense { act: Activation::None };
                let ys = Shape::new(&[2, rows]).unwrap();
                let _ = execute(&dense, &ops, &mut y, &ys);
                let _ = execute_kernel_in::<ALL_OPS>(&dense, kernel::CODEBOOK_LUT, &ops, &mut y, &ys);
                let xc: Vec<f32> = (0..2 * cols * 3).map(|i| i as f32 / 7.0).collect();
                let a = ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [0, 1, 0, 1], act: Activation::None };
                let ops = [
                    Operand { view: View::F32(&xc), shape: Shape::new(&[2, cols, 3]).unwrap() },
                    Operand { view: View::Codebook(c), shape: Shape::new(&[rows, cols, 1]).unwrap() },
                ];
                let mut y = vec![0.0; 2 * rows * 5];
                let _ = execute(&Op::Conv(a), &ops, &mut y, &Shape::new(&[2, rows, 5]).unwrap());
            }
        }
    }

    /// A valid 3 × 5 payload with 3-bit indices into 2 f32 codebooks; rows in groups 1, 0, 1.
    fn sample() -> Vec<u8> {
        let codebooks: Vec<f32> = (0..24).map(|i| i as f32 - 4.5).collect();
        let indices: Vec<u8> = (0..15).map(|i| (i * 3 % 8) as u8).collect();
        let p = encode_codebook(3, 5, 3, false, &[1, 0, 1], &codebooks, &indices);
        let c = Codebook::parse(&p, 3, 5).unwrap();
        assert_eq!(c.info(), CodebookInfo { rows: 3, cols: 5, bits: 3, f16_values: false, groups: 3, bytes: INDICES + 3 * 2 });
        assert_eq!(c.get(0), codebooks[8]);
        assert_eq!(c.get(6), codebooks[2]);
        p
    }

    // 3 rows in 3 groups: 2-bit ids, 6 bits in one byte.
    const ROW_GROUP: usize = 16;
    const PAD: usize = ROW_GROUP + 1;
    const CODEBOOKS: usize = PAD.next_multiple_of(4);
    const INDICES: usize = CODEBOOKS + 4 * 24;

    fn rule(p: &[u8]) -> &'static str {
        Codebook::parse(p, 3, 5).err().unwrap_or("accepted")
    }

    fn with(at: usize, bytes: &[u8]) -> Vec<u8> {
        let mut p = sample();
        p[at..at + bytes.len()].copy_from_slice(bytes);
        p
    }

    #[test]
    fn finite_half_conversion_is_exact() {
        for h in 0..=u16::MAX {
            let x = f16::from_bits(h);
            if x.is_finite() {
                assert_eq!(finite_f16_to_f32(h).to_bits(), x.to_f32().to_bits(), "{h:#06x}");
            }
        }
    }

    #[test]
    fn every_layout_rule_is_checked() {
        let p = sample();
        assert_eq!((PAD, CODEBOOKS, INDICES), (17, 20, 116));
        assert_eq!(rule(&p), "accepted");
        assert_eq!(rule(&p[..15]), "payload shorter than its 16-byte header");
        assert_eq!(rule(&with(0, &[0])), "bits is not in 1..=8");
        assert_eq!(rule(&with(0, &[9])), "bits is not in 1..=8");
        assert_eq!(rule(&with(1, &[2])), "value type is not 0 (f32) or 1 (f16)");
        assert_eq!(rule(&with(2, &[0, 1])), "reserved header field is not 0");
        assert_eq!(rule(&with(4, &0u32.to_le_bytes())), "groups is 0");
        assert_eq!(rule(&with(4, &65537u32.to_le_bytes())), "groups exceeds 65536");
        assert_eq!(rule(&with(8, &4u32.to_le_bytes())), "rows is not the matrix rows");
        assert_eq!(rule(&with(12, &6u32.to_le_bytes())), "cols is not the matrix cols");
        assert_eq!(rule(&with(4, &2u32.to_le_bytes())), "byte length is not the end of the indices");
        assert_eq!(rule(&with(0, &[4])), "byte length is not the end of the indices");
        assert_eq!(rule(&with(1, &[1])), "byte length is not the end of the indices");
        assert_eq!(rule(&p[..p.len() - 1]), "byte length is not the end of the indices");
        assert_eq!(rule(&[&p[..], &[0; 4]].concat()), "byte length is not the end of the indices");
        // Ids 1, 0, 1 are 0b01_00_01; row 1 set to 3 is not below 3 groups.
        assert_eq!(p[ROW_GROUP], 0x11);
        assert_eq!(rule(&with(ROW_GROUP, &[0x1D])), "row_group entry not below groups");
        assert_eq!(rule(&with(ROW_GROUP, &[0x31])), "row_group entry not below groups");
        assert_eq!(rule(&with(ROW_GROUP, &[0x51])), "unused trailing row_group bits are not zero");
        assert_eq!(rule(&with(ROW_GROUP, &[0x12])), "accepted");
        assert_eq!(rule(&with(PAD, &[0, 1])), "padding before the codebooks is not zero");
        assert_eq!(rule(&with(CODEBOOKS + 4 * 7, &f32::NAN.to_le_bytes())), "codebook value is not finite");
        assert_eq!(rule(&with(CODEBOOKS + 4 * 15, &f32::NEG_INFINITY.to_le_bytes())), "codebook value is not finite");
        // 3 × 5 bits = 15 bits a row, in 2 bytes: bit 7 of each row's second byte is unused.
        assert_eq!(rule(&with(INDICES + 3, &[p[INDICES + 3] | 0x80])), "unused trailing index bits of a row are not zero");
        assert_eq!(rule(&with(INDICES + 3, &[p[INDICES + 3] ^ 0x40])), "accepted");
        assert_eq!(rule(&with(CODEBOOKS, &f32::MAX.to_le_bytes())), "accepted");
    }

    #[test]
    fn f16_values_and_where_the_indices_start() {
        // 1 row: row groups 16..18, padding 18..20, 3 f16 codebooks of 2 values 20..32, indices 32.
        let p = encode_codebook(1, 3, 1, true, &[2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[1, 0, 1]);
        assert_eq!(p.len(), 33);
        let c = Codebook::parse(&p, 1, 3).unwrap();
        assert_eq!((0..3).map(|i| c.get(i)).collect::<Vec<_>>(), [6.0, 5.0, 6.0]);
        assert_eq!(c.info().bits_per_weight(), 88.0);
        let mut bad = p.clone();
        bad[30..32].copy_from_slice(&f16::INFINITY.to_le_bytes());
        assert_eq!(Codebook::parse(&bad, 1, 3).err(), Some("codebook value is not finite"));
        bad[30..32].copy_from_slice(&f16::NAN.to_le_bytes());
        assert_eq!(Codebook::parse(&bad, 1, 3).err(), Some("codebook value is not finite"));
        bad[18] = 1;
        assert_eq!(Codebook::parse(&bad, 1, 3).err(), Some("padding before the codebooks is not zero"));
        // Codebooks are `G · 2^bits` values of 2 or 4 bytes: always a multiple of 4 bytes, so the
        // padding before the indices is always empty.
        for (bits, f16_values, groups, rows) in (1..=8).flat_map(|b| [(b, false, 1, 0), (b, true, 3, 1), (b, true, 2, 2), (b, false, 5, 3)])
        {
            let at = codebooks_offset(rows, groups).unwrap() + groups * (value_len(f16_values) << bits);
            assert_eq!(indices_offset(rows, bits, value_len(f16_values), groups), Some(at));
        }
    }

    #[test]
    fn empty_and_scalar_matrices() {
        for (rows, cols) in [(0, 0), (3, 0), (1, 1)] {
            let p = encode_codebook(rows, cols, 2, false, &vec![0; rows], &[1.0, 2.0, 3.0, 4.0], &vec![3; rows * cols]);
            let c = Codebook::parse(&p, rows, cols).unwrap();
            assert_eq!(c.len(), rows * cols);
            assert_eq!(c.info().codebook_values(), 4);
            if rows * cols == 1 {
                assert_eq!(c.get(0), 4.0);
            } else {
                assert_eq!(c.info().bits_per_weight(), 0.0);
            }
        }
        assert_eq!(codebook_len(1, 1, 0, false, 1), None);
        assert_eq!(codebook_len(1, 1, 9, false, 1), None);
        assert_eq!(codebook_len(usize::MAX, 1, 8, false, 1), None);
    }

    #[test]
    #[should_panic(expected = "index is not below 4")]
    fn the_encoder_refuses_an_index_outside_the_codebook() {
        encode_codebook(1, 2, 2, false, &[0], &[0.0; 4], &[0, 4]);
    }

    #[test]
    #[should_panic(expected = "not finite as f16")]
    fn the_encoder_refuses_a_value_that_overflows_f16() {
        encode_codebook(1, 1, 1, true, &[0], &[1.0, 70000.0], &[0]);
    }

    #[test]
    #[should_panic(expected = "row group is not below 2")]
    fn the_encoder_refuses_a_row_group_without_codebook() {
        encode_codebook(2, 1, 1, false, &[0, 2], &[0.0; 4], &[0, 1]);
    }
}
