//! Read-only element views over activations (`&[f32]`) and stored weight payloads.

use crate::codebook::Codebook;
use crate::format::{u8_affine_value, U8_AFFINE_HEADER_LEN};
use crate::sparse::Bsr;

/// A read-only run of f32 values, whatever its storage.
///
/// Constants are read in place from the model bytes: aligned little-endian f32 payloads become
/// `F32`, others are decoded element by element, so no tensor is ever copied into RAM.
/// Every variant reads as the same logical dense elements; only Dense and Conv have kernels
/// that use the block-sparse structure of `Bsr` or decode `Codebook` in their loops, other
/// kernels see their elements.
#[derive(Clone, Copy, Debug)]
pub enum View<'a> {
    /// Native f32 slice (activations, or aligned f32 weights on little-endian targets).
    F32(&'a [f32]),
    /// Little-endian f32 bytes that could not be borrowed as `&[f32]` (unaligned).
    F32Le(&'a [u8]),
    /// Little-endian IEEE binary16 bytes.
    F16Le(&'a [u8]),
    /// Block-sparse f32 payload (`encoding::BSR_F32`), read as its dense elements.
    Bsr(Bsr<'a>),
    /// Codebook-quantized payload (`encoding::CODEBOOK`), read as its decoded dense elements.
    Codebook(Codebook<'a>),
    /// 8-bit codes on a uniform grid (`encoding::U8_AFFINE`), read as `lo + step · q`.
    U8(Affine8<'a>),
}

/// The codes of a `U8_AFFINE` payload and its grid: element `i` is
/// [`u8_affine_value`]`(lo, step, q[i])`. The reader checks that every value is finite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine8<'a> {
    /// Value of code 0.
    pub lo: f32,
    /// Distance between neighbouring codes' values.
    pub step: f32,
    /// One code per element.
    pub q: &'a [u8],
}

impl<'a> Affine8<'a> {
    /// Splits a payload (header, then codes) without checking the grid (`Model::parse` does).
    pub fn split(payload: &'a [u8]) -> Option<Affine8<'a>> {
        let head = payload.get(..U8_AFFINE_HEADER_LEN)?;
        let lo = f32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let step = f32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        Some(Affine8 { lo, step, q: &payload[U8_AFFINE_HEADER_LEN..] })
    }

    /// Whether every value of the grid is finite: `lo`, `step ≥ 0` and `lo + 255 · step` finite
    /// (the values lie between `lo` and that, each rounded from an exact value in the range).
    pub fn grid_ok(&self) -> bool {
        self.lo.is_finite() && self.step.is_finite() && self.step >= 0.0 && u8_affine_value(self.lo, self.step, 255).is_finite()
    }

    #[inline]
    fn at(&self, q: u8) -> f32 {
        u8_affine_value(self.lo, self.step, q)
    }
}

impl Default for View<'_> {
    fn default() -> Self {
        View::F32(&[])
    }
}

impl<'a> View<'a> {
    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            View::F32(s) => s.len(),
            View::F32Le(b) => b.len() / 4,
            View::F16Le(b) => b.len() / 2,
            View::Bsr(b) => b.len(),
            View::Codebook(c) => c.len(),
            View::U8(a) => a.q.len(),
        }
    }

    /// True when the view holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i`; 0.0 when out of range (callers index within validated shapes).
    #[inline]
    pub fn get(&self, i: usize) -> f32 {
        match self {
            View::F32(s) => s.get(i).copied().unwrap_or(0.0),
            View::F32Le(b) => match b.get(4 * i..4 * i + 4) {
                Some(w) => f32::from_le_bytes([w[0], w[1], w[2], w[3]]),
                None => 0.0,
            },
            View::F16Le(b) => match b.get(2 * i..2 * i + 2) {
                Some(w) => f16_to_f32(u16::from_le_bytes([w[0], w[1]])),
                None => 0.0,
            },
            View::Bsr(b) => b.get(i),
            View::Codebook(c) => c.get(i),
            View::U8(a) => a.q.get(i).map_or(0.0, |&q| a.at(q)),
        }
    }

    /// Elements `start..start + len`, `None` when out of range.
    pub fn slice(&self, start: usize, len: usize) -> Option<View<'a>> {
        let end = start.checked_add(len)?;
        Some(match self {
            View::F32(s) => View::F32(s.get(start..end)?),
            View::F32Le(b) => View::F32Le(b.get(start.checked_mul(4)?..end.checked_mul(4)?)?),
            View::F16Le(b) => View::F16Le(b.get(start.checked_mul(2)?..end.checked_mul(2)?)?),
            View::Bsr(b) => View::Bsr(b.window(start, len)?),
            View::Codebook(c) => View::Codebook(c.window(start, len)?),
            View::U8(a) => View::U8(Affine8 { q: a.q.get(start..end)?, ..*a }),
        })
    }

    /// The values as a native slice when the storage is native f32.
    #[inline]
    pub fn as_f32(&self) -> Option<&'a [f32]> {
        match self {
            View::F32(s) => Some(s),
            _ => None,
        }
    }

    /// Copies elements `start..start + out.len()` into `out` (decoding as needed).
    pub fn read_into(&self, start: usize, out: &mut [f32]) {
        match self {
            View::F32(s) => {
                if let Some(src) = s.get(start..start + out.len()) {
                    out.copy_from_slice(src);
                } else {
                    for (k, o) in out.iter_mut().enumerate() {
                        *o = self.get(start + k);
                    }
                }
            }
            View::F32Le(b) if b.len() / 4 >= start.saturating_add(out.len()) => {
                for (o, w) in out.iter_mut().zip(b[4 * start..].chunks_exact(4)) {
                    *o = f32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                }
            }
            View::F16Le(b) if b.len() / 2 >= start.saturating_add(out.len()) => {
                for (o, w) in out.iter_mut().zip(b[2 * start..].chunks_exact(2)) {
                    *o = f16_to_f32(u16::from_le_bytes([w[0], w[1]]));
                }
            }
            View::Bsr(b) => b.read_into(start, out),
            View::Codebook(c) => c.read_into(start, out),
            View::U8(a) if a.q.len() >= start.saturating_add(out.len()) => {
                for (o, &q) in out.iter_mut().zip(&a.q[start..]) {
                    *o = a.at(q);
                }
            }
            _ => {
                for (k, o) in out.iter_mut().enumerate() {
                    *o = self.get(start + k);
                }
            }
        }
    }
}

/// IEEE binary16 bits to f32, exactly as `half::f16::to_f32` (every value, NaN payloads
/// included), without branches, so that loops over f16 payloads vectorise.
#[inline(always)]
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let (sign, em) = (((h & 0x8000) as u32) << 16, (h & 0x7fff) as u32);
    // Normal numbers: the exponent rebiased (127 - 15) and the mantissa moved up.
    let normal = (em << 13) + ((127 - 15) << 23);
    // Infinity and NaN: all-ones exponent, the payload moved up, NaNs made quiet.
    let special = (em << 13) | 0x7f80_0000 | if em > 0x7c00 { 0x0040_0000 } else { 0 };
    // Zero and subnormals: the mantissa times 2^-24, exact in f32.
    let small = (em as f32 * f32::from_bits((127 - 24) << 23)).to_bits();
    let bits = if em >= 0x7c00 {
        special
    } else if em < 0x0400 {
        small
    } else {
        normal
    };
    f32::from_bits(sign | bits)
}

#[cfg(test)]
mod tests {
    use super::View;

    /// The branch-free conversion equals `half`'s on all 65 536 bit patterns.
    #[test]
    fn f16_to_f32_matches_half_everywhere() {
        for h in 0..=u16::MAX {
            let want = half::f16::from_bits(h).to_f32();
            let got = super::f16_to_f32(h);
            assert_eq!(got.to_bits(), want.to_bits(), "{h:#06x}: {got:?} vs {want:?}");
        }
    }

    #[test]
    fn a_view_stays_a_slice_and_five_words() {
        // The block-sparse and codebook views are a slice and four counts, plus the tag.
        assert_eq!(core::mem::size_of::<View<'_>>(), 7 * core::mem::size_of::<usize>());
    }
}
