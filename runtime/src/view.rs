//! Read-only element views over activations (`&[f32]`) and stored weight payloads.

use crate::codebook::Codebook;
use crate::sparse::Bsr;
use half::f16;

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
                Some(w) => f16::from_le_bytes([w[0], w[1]]).to_f32(),
                None => 0.0,
            },
            View::Bsr(b) => b.get(i),
            View::Codebook(c) => c.get(i),
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
            View::Bsr(b) => b.read_into(start, out),
            View::Codebook(c) => c.read_into(start, out),
            _ => {
                for (k, o) in out.iter_mut().enumerate() {
                    *o = self.get(start + k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::View;

    #[test]
    fn a_view_stays_a_slice_and_five_words() {
        // The block-sparse and codebook views are a slice and four counts, plus the tag.
        assert_eq!(core::mem::size_of::<View<'_>>(), 7 * core::mem::size_of::<usize>());
    }
}
