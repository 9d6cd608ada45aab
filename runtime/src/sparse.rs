//! Block-sparse rows (`encoding::BSR_F32`): validation of a payload, a borrowed view of it, and
//! (behind `std`) the encoder the tools write with.
//!
//! A constant of shape `[d0, d1, ..]` is the matrix of `rows = d0` by `cols = numel / d0`
//! ([`bsr_matrix`]) cut into `br × bc` blocks. The payload (layout and rules in
//! `docs/FORMAT.md`, "Block-sparse payload") is a 16-byte header `br u16, bc u16, nnzb u32,
//! nbr u32, ncb u32`, then `row_ptr` (`nbr + 1` × u32), `col_idx` (`nnzb` × u16), zero padding to
//! a multiple of 4, and the `nnzb · br · bc` f32 values, block after block, row-major in a block.

use crate::format::{BSR_HEADER_LEN, BSR_MAX_BLOCK_COLS};
use crate::span::Span;
use byteorder::{ByteOrder, LE};

/// The matrix `(rows, cols)` a constant of shape `dims` is stored as.
pub fn bsr_matrix(dims: &[u32]) -> (usize, usize) {
    let rows = dims.first().map_or(1, |&d| d as usize);
    let numel = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d as usize)).unwrap_or(0);
    (rows, numel.checked_div(rows).unwrap_or(0))
}

/// Byte offset of `values` in a payload with `nbr` block rows and `nnzb` stored blocks.
fn values_offset(nbr: usize, nnzb: usize) -> Option<usize> {
    let idx_end = BSR_HEADER_LEN.checked_add(nbr.checked_add(1)?.checked_mul(4)?)?.checked_add(nnzb.checked_mul(2)?)?;
    idx_end.checked_next_multiple_of(4)
}

/// Exact byte length of a payload with `br × bc` blocks, `nnzb` stored blocks and `nbr` block
/// rows; `None` on arithmetic overflow.
pub fn bsr_len(br: usize, bc: usize, nnzb: usize, nbr: usize) -> Option<usize> {
    values_offset(nbr, nnzb)?.checked_add(nnzb.checked_mul(br)?.checked_mul(bc)?.checked_mul(4)?)
}

/// Header of a block-sparse constant (for density reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BsrInfo {
    /// Matrix rows (`d0`).
    pub rows: usize,
    /// Matrix columns (`numel / d0`).
    pub cols: usize,
    /// Block rows.
    pub br: usize,
    /// Block columns.
    pub bc: usize,
    /// Stored blocks.
    pub nnzb: usize,
    /// Block rows of the matrix, `ceil(rows / br)`.
    pub nbr: usize,
    /// Block columns of the matrix, `ceil(cols / bc)`.
    pub ncb: usize,
}

impl BsrInfo {
    /// Stored f32 values (including the zeros inside stored blocks).
    pub fn stored_values(&self) -> usize {
        self.nnzb.saturating_mul(self.br).saturating_mul(self.bc)
    }

    /// Fraction of the `nbr × ncb` blocks that are stored (1.0 for an empty matrix).
    pub fn block_density(&self) -> f32 {
        match self.nbr.saturating_mul(self.ncb) {
            0 => 1.0,
            all => self.nnzb as f32 / all as f32,
        }
    }
}

/// A validated block-sparse payload, borrowed in place, seen as the logical dense elements
/// `start..start + len` of the row-major matrix (a whole constant, or a [`Bsr::window`] of it).
/// Small (a slice and four counts, so `View` stays small on the stack); the payload's parts are
/// located from its header when used.
#[derive(Clone, Copy, Debug)]
pub struct Bsr<'a> {
    payload: &'a [u8],
    span: Span,
}

/// The parts of a payload, located from its header.
#[derive(Clone, Copy)]
struct Parts<'a> {
    br: usize,
    bc: usize,
    nbr: usize,
    row_ptr: &'a [u8],
    col_idx: &'a [u8],
    /// `nnzb · br · bc` little-endian f32.
    values: &'a [u8],
}

impl<'a> Parts<'a> {
    /// `row_ptr[i]` as stored, `None` past the end.
    #[inline]
    fn row_ptr_raw(&self, i: usize) -> Option<usize> {
        self.row_ptr.get(4 * i..4 * i + 4).map(|b| LE::read_u32(b) as usize)
    }

    /// `row_ptr[i]`, `None` past the end or above the stored block count: every block index
    /// this yields has its `col_idx` entry in the payload, so index arithmetic on it cannot
    /// overflow even on 32-bit targets (a `split` payload's values fit in memory).
    #[inline]
    fn row_ptr_at(&self, i: usize) -> Option<usize> {
        self.row_ptr_raw(i).filter(|&v| v <= self.col_idx.len() / 2)
    }

    #[inline]
    fn block_col(&self, b: usize) -> Option<usize> {
        self.col_idx.get(2 * b..2 * b + 2).map(|c| LE::read_u16(c) as usize)
    }

    /// Stored blocks `s..e` of block row `bi`.
    #[inline]
    fn block_range(&self, bi: usize) -> Option<(usize, usize)> {
        Some((self.row_ptr_at(bi)?, self.row_ptr_at(bi + 1)?)).filter(|(s, e)| s <= e)
    }

    /// Stored value `i` (0.0 when out of range).
    #[inline]
    fn value(&self, i: usize) -> f32 {
        self.values.get(4 * i..4 * i + 4).map_or(0.0, LE::read_f32)
    }

    /// The values as native f32, when aligned on a little-endian target.
    fn values_f32(&self) -> Option<&'a [f32]> {
        #[cfg(target_endian = "little")]
        return bytemuck::try_cast_slice(self.values).ok();
        #[cfg(not(target_endian = "little"))]
        None
    }

    /// The stored block holding matrix element `(row, col)`, by binary search of its block row.
    fn find(&self, row: usize, col: usize) -> Option<usize> {
        let bj = col / self.bc;
        let (mut lo, mut hi) = self.block_range(row / self.br)?;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.block_col(mid)?.cmp(&bj) {
                core::cmp::Ordering::Less => lo = mid + 1,
                core::cmp::Ordering::Greater => hi = mid,
                core::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

impl<'a> Bsr<'a> {
    /// Validates `payload` as the `rows × cols` matrix (every rule of the layout) and borrows it.
    /// The error names the first rule broken.
    pub fn parse(payload: &'a [u8], rows: usize, cols: usize) -> Result<Bsr<'a>, &'static str> {
        let b = Bsr::split(payload, rows, cols)?;
        b.check_indices()?;
        b.check_edges()?;
        Ok(b)
    }

    /// The header and length checks of [`Bsr::parse`] only (constant time), for payloads
    /// [`Bsr::parse`] already accepted. Indices that break the remaining rules give wrong
    /// values, never a panic.
    pub(crate) fn split(payload: &'a [u8], rows: usize, cols: usize) -> Result<Bsr<'a>, &'static str> {
        if payload.len() < BSR_HEADER_LEN {
            return Err("payload shorter than its 16-byte header");
        }
        let br = LE::read_u16(&payload[0..2]) as usize;
        let bc = LE::read_u16(&payload[2..4]) as usize;
        let nnzb = LE::read_u32(&payload[4..8]) as usize;
        let nbr = LE::read_u32(&payload[8..12]) as usize;
        let ncb = LE::read_u32(&payload[12..16]) as usize;
        if br == 0 {
            return Err("block rows (br) is 0");
        }
        if bc == 0 {
            return Err("block columns (bc) is 0");
        }
        if nbr != rows.div_ceil(br) {
            return Err("nbr is not ceil(rows / br)");
        }
        if ncb != cols.div_ceil(bc) {
            return Err("ncb is not ceil(cols / bc)");
        }
        if ncb > BSR_MAX_BLOCK_COLS {
            return Err("ncb exceeds 65536");
        }
        let len_rule = "byte length is not the end of the values";
        if bsr_len(br, bc, nnzb, nbr) != Some(payload.len()) {
            return Err(len_rule);
        }
        Ok(Bsr { payload, span: Span::whole(rows, cols).ok_or(len_rule)? })
    }

    /// The payload's parts. `split` checked the header and the length, so they are in range;
    /// a payload that was not checked gives empty parts rather than a panic.
    #[inline]
    fn parts(&self) -> Parts<'a> {
        let p = self.payload;
        let rd16 = |at: usize| p.get(at..at + 2).map_or(0, LE::read_u16) as usize;
        let rd32 = |at: usize| p.get(at..at + 4).map_or(0, LE::read_u32) as usize;
        let (br, bc, nnzb, nbr) = (rd16(0).max(1), rd16(2).max(1), rd32(4), rd32(8));
        let rp = BSR_HEADER_LEN..BSR_HEADER_LEN.saturating_add(nbr.saturating_add(1).saturating_mul(4));
        let ci = rp.end..rp.end.saturating_add(nnzb.saturating_mul(2));
        let voff = values_offset(nbr, nnzb).unwrap_or(usize::MAX);
        Parts { br, bc, nbr, row_ptr: p.get(rp).unwrap_or(&[]), col_idx: p.get(ci).unwrap_or(&[]), values: p.get(voff..).unwrap_or(&[]) }
    }

    fn check_indices(&self) -> Result<(), &'static str> {
        let (info, p) = (self.info(), self.parts());
        if p.row_ptr_raw(0) != Some(0) {
            return Err("row_ptr[0] is not 0");
        }
        let mut prev = 0;
        for i in 1..=info.nbr {
            let ptr = p.row_ptr_raw(i).ok_or("row_ptr truncated")?;
            if ptr < prev {
                return Err("row_ptr decreases");
            }
            prev = ptr;
        }
        if prev != info.nnzb {
            return Err("row_ptr[nbr] is not nnzb");
        }
        for i in 0..info.nbr {
            let (s, e) = p.block_range(i).ok_or("row_ptr truncated")?;
            let mut last: Option<u16> = None;
            for c in p.col_idx.get(2 * s..2 * e).ok_or("row_ptr truncated")?.chunks_exact(2) {
                let c = LE::read_u16(c);
                if c as usize >= info.ncb {
                    return Err("col_idx not below ncb");
                }
                if last.is_some_and(|l| c <= l) {
                    return Err("col_idx not strictly increasing within a block row");
                }
                last = Some(c);
            }
        }
        let idx_end = BSR_HEADER_LEN + 4 * (info.nbr + 1) + 2 * info.nnzb;
        let voff = values_offset(info.nbr, info.nnzb).unwrap_or(idx_end);
        if self.payload.get(idx_end..voff).is_none_or(|pad| pad.iter().any(|&b| b != 0)) {
            return Err("padding before the values is not zero");
        }
        Ok(())
    }

    /// Positions of ragged edge blocks outside the matrix must hold 0.0.
    fn check_edges(&self) -> Result<(), &'static str> {
        let p = self.parts();
        let (br, bc) = (p.br, p.bc);
        let (rr, rc) = (self.span.rows % br, self.span.cols % bc);
        if rr == 0 && rc == 0 {
            return Ok(());
        }
        let ncb = self.span.cols.div_ceil(bc);
        let rule = "edge block padding outside the matrix is not 0.0";
        for bi in 0..p.nbr {
            let (s, e) = p.block_range(bi).ok_or(rule)?;
            let last_row = bi + 1 == p.nbr;
            for b in s..e {
                let last_col = p.block_col(b).is_some_and(|c| c + 1 == ncb);
                for i in 0..br {
                    for j in 0..bc {
                        let outside = (last_row && rr != 0 && i >= rr) || (last_col && rc != 0 && j >= rc);
                        if outside && p.value(b * br * bc + i * bc + j) != 0.0 {
                            return Err(rule);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The header: block shape, stored blocks and the block grid.
    pub fn info(&self) -> BsrInfo {
        let p = self.parts();
        BsrInfo {
            rows: self.span.rows,
            cols: self.span.cols,
            br: p.br,
            bc: p.bc,
            nnzb: p.col_idx.len() / 2,
            nbr: p.nbr,
            ncb: self.span.cols.div_ceil(p.bc),
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

    /// True when the view is the whole matrix (not a [`Bsr::window`]).
    #[inline]
    pub fn is_whole(&self) -> bool {
        self.span.is_whole()
    }

    /// Logical elements `start..start + len` of this view, `None` when out of range.
    pub fn window(&self, start: usize, len: usize) -> Option<Bsr<'a>> {
        Some(Bsr { span: self.span.sub(start, len)?, ..*self })
    }

    /// Logical element `i` of the view (0.0 for absent blocks and out of range).
    pub fn get(&self, i: usize) -> f32 {
        let Some((row, col)) = self.span.locate(i) else { return 0.0 };
        let p = self.parts();
        match p.find(row, col) {
            Some(b) => p.value((b * p.br + row % p.br) * p.bc + col % p.bc),
            None => 0.0,
        }
    }

    /// Writes logical elements `start..start + out.len()` into `out` (0.0 past the end), walking
    /// the stored blocks of each matrix row touched rather than searching per element.
    pub fn read_into(&self, start: usize, out: &mut [f32]) {
        out.fill(0.0);
        let p = self.parts();
        let n = out.len();
        for (row, c0, c1, at) in self.span.segments(start, n) {
            let seg = &mut out[at..at + (c1 - c0)];
            if let Some((s, e)) = p.block_range(row / p.br) {
                for b in s..e {
                    let Some(bj) = p.block_col(b) else { break };
                    let (k0, k1) = (bj * p.bc, bj * p.bc + p.bc);
                    if k1 <= c0 {
                        continue;
                    }
                    if k0 >= c1 {
                        break;
                    }
                    let base = (b * p.br + row % p.br) * p.bc;
                    for k in k0.max(c0)..k1.min(c1) {
                        seg[k - c0] = p.value(base + k - k0);
                    }
                }
            }
        }
    }

    /// Calls `f(block_row, col_idx, values)` on runs of whole stored blocks (`col_idx` as stored:
    /// 2 bytes per block; `values`: `br · bc` f32 per block), block row by block row. Values are
    /// borrowed in place when aligned, else decoded into `buf` a few blocks at a time; `false`
    /// (nothing called) when they are not aligned and one block exceeds `buf`.
    pub(crate) fn for_each_run<E>(&self, buf: &mut [f32], mut f: impl FnMut(usize, &[u8], &[f32]) -> Result<(), E>) -> Result<bool, E> {
        let p = self.parts();
        let bs = p.br * p.bc;
        let native = p.values_f32();
        let per = match native {
            Some(_) => usize::MAX,
            None if bs > buf.len() => return Ok(false),
            None => buf.len() / bs,
        };
        for bi in 0..p.nbr {
            let Some((s, e)) = p.block_range(bi) else { continue };
            let mut b = s;
            while b < e {
                let n = per.min(e - b);
                let (Some(cols), Some((v0, v1))) = (p.col_idx.get(2 * b..2 * (b + n)), b.checked_mul(bs).zip((b + n).checked_mul(bs)))
                else {
                    break;
                };
                match native {
                    Some(v) => match v.get(v0..v1) {
                        Some(vals) => f(bi, cols, vals)?,
                        None => break,
                    },
                    None => {
                        let Some(src) = p.values.get(4 * v0..4 * v1) else { break };
                        let dst = &mut buf[..n * bs];
                        for (d, s) in dst.iter_mut().zip(src.chunks_exact(4)) {
                            *d = LE::read_f32(s);
                        }
                        f(bi, cols, dst)?;
                    }
                }
                b += n;
            }
        }
        Ok(true)
    }
}

/// Encodes the row-major `rows × cols` matrix `dense` as a `BSR_F32` payload with `br × bc`
/// blocks.
///
/// Guarantees: the result satisfies every rule [`Bsr::parse`] checks (so
/// `Bsr::parse(&out, rows, cols)` accepts it and reads back `dense`, with -0.0 in a dropped block
/// read as 0.0); a block is stored exactly when one of its elements inside the matrix is not
/// `== 0.0` (NaN is kept); positions of edge blocks outside the matrix are stored as 0.0; its
/// length is [`bsr_len`] of its header.
///
/// # Panics
/// When `dense.len() != rows * cols`, `br` or `bc` is 0 or above 65535, `ceil(cols / bc)`
/// exceeds 65536, or a count does not fit the header's `u32`s.
#[cfg(feature = "std")]
pub fn encode_bsr(rows: usize, cols: usize, br: usize, bc: usize, dense: &[f32]) -> std::vec::Vec<u8> {
    assert_eq!(Some(dense.len()), rows.checked_mul(cols), "encode_bsr: {} values for a {rows} x {cols} matrix", dense.len());
    assert!((1..=u16::MAX as usize).contains(&br) && (1..=u16::MAX as usize).contains(&bc), "encode_bsr: block {br} x {bc}");
    let (nbr, ncb) = (rows.div_ceil(br), cols.div_ceil(bc));
    assert!(ncb <= BSR_MAX_BLOCK_COLS, "encode_bsr: {ncb} block columns (at most {BSR_MAX_BLOCK_COLS})");
    let u32_of = |v: usize| u32::try_from(v).expect("encode_bsr: count exceeds u32");
    let mut row_ptr = std::vec![0u32];
    let mut col_idx = std::vec::Vec::new();
    let mut values = std::vec::Vec::new();
    for bi in 0..nbr {
        let (r0, r1) = (bi * br, (bi * br + br).min(rows));
        for bj in 0..ncb {
            let (c0, c1) = (bj * bc, (bj * bc + bc).min(cols));
            if (r0..r1).all(|r| dense[r * cols + c0..r * cols + c1].iter().all(|&v| v == 0.0)) {
                continue;
            }
            col_idx.push(bj as u16);
            for r in r0..r0 + br {
                for c in c0..c0 + bc {
                    values.push(if r < r1 && c < c1 { dense[r * cols + c] } else { 0.0 });
                }
            }
        }
        row_ptr.push(u32_of(col_idx.len()));
    }
    let nnzb = col_idx.len();
    let len = bsr_len(br, bc, nnzb, nbr).expect("encode_bsr: payload length overflows");
    let mut out = std::vec::Vec::with_capacity(len);
    out.extend_from_slice(&(br as u16).to_le_bytes());
    out.extend_from_slice(&(bc as u16).to_le_bytes());
    for v in [u32_of(nnzb), u32_of(nbr), u32_of(ncb)] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    row_ptr.iter().for_each(|p| out.extend_from_slice(&p.to_le_bytes()));
    col_idx.iter().for_each(|c| out.extend_from_slice(&c.to_le_bytes()));
    out.resize(out.len().next_multiple_of(4), 0);
    values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    debug_assert_eq!(out.len(), len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{execute, Operand};
    use crate::op::{Activation, ConvAttrs, Op};
    use crate::shape::Shape;
    use crate::view::View;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// A `rows × cols` matrix whose `br × bc` blocks are non-zero with probability `density`.
    fn matrix(rows: usize, cols: usize, br: usize, bc: usize, density: f64, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let ncb = cols.div_ceil(bc);
        let keep: Vec<bool> = (0..rows.div_ceil(br) * ncb).map(|_| (next() % 1000) as f64 / 1000.0 < density).collect();
        (0..rows * cols)
            .map(|i| {
                let v = ((next() % 2001) as f32 - 1000.0) / 997.0;
                if keep[(i / cols) / br * ncb + (i % cols) / bc] {
                    v
                } else {
                    0.0
                }
            })
            .collect()
    }

    fn block_shape(rows: usize) -> impl Strategy<Value = (usize, usize)> {
        prop_oneof![Just((1, 1)), Just((1, 4)), Just((4, 1)), Just((4, 4)), Just((2, 3)), Just((rows.max(1), 1)), (1usize..7, 1usize..7)]
    }

    fn density() -> impl Strategy<Value = f64> {
        prop_oneof![Just(0.0), Just(0.1), Just(0.5), Just(1.0)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(400)))]
        #[test]
        fn encode_then_read_gives_the_dense_matrix(((rows, cols), (br, bc)) in (0usize..20, 0usize..40).prop_flat_map(|(r, c)| (Just((r, c)), block_shape(r))),
                                                   d in density(), seed in any::<u64>(), win in (0usize..1000, 0usize..1000)) {
            let dense = matrix(rows, cols, br, bc, d, seed);
            let encoded = encode_bsr(rows, cols, br, bc, &dense);
            // A u32-backed copy at byte offsets 0 and 1: 4-byte aligned and not, whatever address
            // the allocator (or Miri, which randomises them) gave the encoder's Vec<u8>.
            let mut store = vec![0u32; encoded.len().div_ceil(4) + 1];
            let n_bytes = encoded.len();
            bytemuck::cast_slice_mut::<u32, u8>(&mut store)[..n_bytes].copy_from_slice(&encoded);
            let mut store1 = vec![0u32; encoded.len().div_ceil(4) + 1];
            bytemuck::cast_slice_mut::<u32, u8>(&mut store1)[1..=n_bytes].copy_from_slice(&encoded);
            let payload = &bytemuck::cast_slice::<u32, u8>(&store)[..n_bytes];
            let b = Bsr::parse(payload, rows, cols).unwrap();
            let info = b.info();
            let nonzero_blocks = (0..rows.div_ceil(br) * cols.div_ceil(bc))
                .filter(|&blk| {
                    let (bi, bj) = (blk / cols.div_ceil(bc), blk % cols.div_ceil(bc));
                    (bi * br..(bi * br + br).min(rows)).any(|r| (bj * bc..(bj * bc + bc).min(cols)).any(|c| dense[r * cols + c] != 0.0))
                })
                .count();
            prop_assert_eq!(info, BsrInfo { rows, cols, br, bc, nnzb: nonzero_blocks, nbr: rows.div_ceil(br), ncb: cols.div_ceil(bc) });
            prop_assert_eq!(Some(payload.len()), bsr_len(br, bc, info.nnzb, info.nbr));
            prop_assert_eq!(b.len(), rows * cols);
            prop_assert!(b.is_whole());
            for (i, &v) in dense.iter().enumerate() {
                prop_assert_eq!(b.get(i), v, "element {}", i);
            }
            prop_assert_eq!(b.get(rows * cols), 0.0);
            let mut all = vec![f32::NAN; rows * cols + 3];
            b.read_into(0, &mut all);
            prop_assert_eq!(&all[..rows * cols], &dense[..]);
            prop_assert_eq!(&all[rows * cols..], &[0.0; 3]);
            // A window reads the same elements, through `View` too.
            let n = rows * cols;
            let (s, l) = (win.0 % (n + 1), win.1 % (n + 1));
            let l = l.min(n - s);
            let w = View::Bsr(b).slice(s, l).unwrap();
            prop_assert_eq!(w.len(), l);
            let mut part = vec![f32::NAN; l];
            w.read_into(0, &mut part);
            prop_assert_eq!(&part[..], &dense[s..s + l]);
            for i in 0..l {
                prop_assert_eq!(w.get(i), dense[s + i]);
            }
            prop_assert!(View::Bsr(b).slice(s, n - s + 1).is_none());
            // Unaligned bytes read the same.
            let u = Bsr::parse(&bytemuck::cast_slice::<u32, u8>(&store1)[1..=n_bytes], rows, cols).unwrap();
            prop_assert!(u.parts().values_f32().is_none());
            prop_assert!(b.parts().values_f32().is_some(), "the encoder's buffer is 4-byte aligned");
            for (i, &v) in dense.iter().enumerate() {
                prop_assert_eq!(u.get(i), v);
            }
        }

        #[test]
        fn mutated_payloads_are_rejected_or_read_without_panic(rows in 1usize..9, cols in 1usize..13, (br, bc) in block_shape(4),
                                                                 d in density(), seed in any::<u64>(),
                                                                 edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
                                                                 resize in prop_oneof![Just(0isize), -20isize..20]) {
            let dense = matrix(rows, cols, br, bc, d, seed);
            let mut p = encode_bsr(rows, cols, br, bc, &dense);
            for (at, v) in edits {
                let n = p.len();
                p[at % n] = v;
            }
            let len = (p.len() as isize + resize).max(0) as usize;
            p.resize(len, 0);
            let parsed = Bsr::parse(&p, rows, cols);
            // The constant-time split used for validated payloads must not panic either.
            for b in parsed.ok().into_iter().chain(Bsr::split(&p, rows, cols).ok()) {
                let mut buf = vec![0.0; rows * cols + 1];
                b.read_into(0, &mut buf);
                for i in 0..=rows * cols {
                    let _ = b.get(i);
                }
                let x: Vec<f32> = (0..2 * cols).map(|i| i as f32 / 7.0).collect();
                let ops = [
                    Operand { view: View::F32(&x), shape: Shape::new(&[2, cols]).unwrap() },
                    Operand { view: View::Bsr(b), shape: Shape::new(&[rows, cols]).unwrap() },
                ];
                let mut y = vec![0.0; 2 * rows];
                let _ = execute(&Op::Dense { act: Activation::None }, &ops, &mut y, &Shape::new(&[2, rows]).unwrap());
                let xc: Vec<f32> = (0..2 * cols * 3).map(|i| i as f32 / 7.0).collect();
                let a = ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [0, 1, 0, 1], act: Activation::None };
                let ops = [
                    Operand { view: View::F32(&xc), shape: Shape::new(&[2, cols, 3]).unwrap() },
                    Operand { view: View::Bsr(b), shape: Shape::new(&[rows, cols, 1]).unwrap() },
                ];
                let mut y = vec![0.0; 2 * rows * 5];
                let _ = execute(&Op::Conv(a), &ops, &mut y, &Shape::new(&[2, rows, 5]).unwrap());
            }
        }
    }

    /// A valid 5 × 7 payload with 2 × 3 blocks: block rows hold blocks {0, 2}, {1}, {0, 1}.
    fn sample() -> Vec<u8> {
        let mut m = vec![0.0f32; 35];
        for (r, c) in [(0, 0), (1, 6), (2, 4), (4, 0), (4, 3)] {
            m[r * 7 + c] = 1.0 + (r * 7 + c) as f32;
        }
        let p = encode_bsr(5, 7, 2, 3, &m);
        let b = Bsr::parse(&p, 5, 7).unwrap();
        assert_eq!(b.info(), BsrInfo { rows: 5, cols: 7, br: 2, bc: 3, nnzb: 5, nbr: 3, ncb: 3 });
        p
    }

    const ROW_PTR: usize = 16;
    const COL_IDX: usize = 16 + 4 * 4;
    const PAD: usize = COL_IDX + 2 * 5;
    const VALUES: usize = PAD.next_multiple_of(4);

    fn rule(p: &[u8]) -> &'static str {
        Bsr::parse(p, 5, 7).err().unwrap_or("accepted")
    }

    fn with(at: usize, bytes: &[u8]) -> Vec<u8> {
        let mut p = sample();
        p[at..at + bytes.len()].copy_from_slice(bytes);
        p
    }

    #[test]
    fn every_layout_rule_is_checked() {
        let p = sample();
        assert_eq!((PAD, VALUES), (42, 44));
        assert_eq!(rule(&p), "accepted");
        assert_eq!(rule(&p[..15]), "payload shorter than its 16-byte header");
        assert_eq!(rule(&with(0, &0u16.to_le_bytes())), "block rows (br) is 0");
        assert_eq!(rule(&with(2, &0u16.to_le_bytes())), "block columns (bc) is 0");
        assert_eq!(rule(&with(8, &4u32.to_le_bytes())), "nbr is not ceil(rows / br)");
        assert_eq!(rule(&with(12, &2u32.to_le_bytes())), "ncb is not ceil(cols / bc)");
        assert_eq!(rule(&with(4, &6u32.to_le_bytes())), "byte length is not the end of the values");
        assert_eq!(rule(&with(4, &u32::MAX.to_le_bytes())), "byte length is not the end of the values");
        assert_eq!(rule(&p[..p.len() - 1]), "byte length is not the end of the values");
        assert_eq!(rule(&[&p[..], &[0; 4]].concat()), "byte length is not the end of the values");
        assert_eq!(rule(&with(ROW_PTR, &1u32.to_le_bytes())), "row_ptr[0] is not 0");
        assert_eq!(rule(&with(ROW_PTR + 8, &1u32.to_le_bytes())), "row_ptr decreases");
        assert_eq!(rule(&with(ROW_PTR + 12, &4u32.to_le_bytes())), "row_ptr[nbr] is not nnzb");
        assert_eq!(rule(&with(COL_IDX + 2, &3u16.to_le_bytes())), "col_idx not below ncb");
        assert_eq!(rule(&with(COL_IDX + 2, &0u16.to_le_bytes())), "col_idx not strictly increasing within a block row");
        assert_eq!(rule(&with(COL_IDX + 8, &0u16.to_le_bytes())), "col_idx not strictly increasing within a block row");
        assert_eq!(rule(&with(PAD, &[0, 1])), "padding before the values is not zero");
        // Block (2, 0) covers matrix row 5, outside the 5 rows; block (0, 2) covers column 8.
        let row5 = VALUES + 4 * (3 * 6 + 3);
        assert_eq!(rule(&with(row5, &1.0f32.to_le_bytes())), "edge block padding outside the matrix is not 0.0");
        let col8 = VALUES + 4 * (6 + 2);
        assert_eq!(rule(&with(col8, &1.0f32.to_le_bytes())), "edge block padding outside the matrix is not 0.0");
        assert_eq!(rule(&with(col8, &(-0.0f32).to_le_bytes())), "accepted");
        // A value inside the matrix may be anything.
        assert_eq!(rule(&with(VALUES, &f32::NAN.to_le_bytes())), "accepted");
    }

    #[test]
    fn at_most_65536_block_columns() {
        let header = |ncb: u32| {
            let mut p = std::vec![1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0];
            p.extend_from_slice(&ncb.to_le_bytes());
            p.extend_from_slice(&[0; 8]);
            p
        };
        assert!(Bsr::parse(&header(65536), 1, 65536).is_ok());
        assert_eq!(Bsr::parse(&header(65537), 1, 65537).err(), Some("ncb exceeds 65536"));
        let p = encode_bsr(1, 65536, 1, 1, &vec![0.0; 65536]);
        assert_eq!(p, header(65536));
    }

    #[test]
    fn empty_and_scalar_matrices() {
        assert_eq!(bsr_matrix(&[]), (1, 1));
        assert_eq!(bsr_matrix(&[0, 5]), (0, 0));
        assert_eq!(bsr_matrix(&[4, 3, 2]), (4, 6));
        for (rows, cols) in [(0, 0), (3, 0), (1, 1)] {
            let p = encode_bsr(rows, cols, 2, 2, &vec![2.5; rows * cols]);
            let b = Bsr::parse(&p, rows, cols).unwrap();
            assert_eq!(b.len(), rows * cols);
            assert_eq!(b.info().block_density(), 1.0);
        }
        let p = encode_bsr(4, 4, 2, 2, &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let info = Bsr::parse(&p, 4, 4).unwrap().info();
        assert_eq!((info.nnzb, info.stored_values(), info.block_density()), (1, 4, 0.25));
    }

    #[test]
    #[should_panic(expected = "block columns")]
    fn the_encoder_refuses_too_many_block_columns() {
        encode_bsr(1, 65537, 1, 1, &vec![0.0; 65537]);
    }
}
