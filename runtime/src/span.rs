//! The logical window a compressed weight view exposes over its row-major `rows × cols` matrix,
//! shared by the block-sparse ([`crate::sparse::Bsr`]) and codebook ([`crate::codebook::Codebook`])
//! views.

/// Logical elements `start..start + len` of a row-major `rows × cols` matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub rows: usize,
    pub cols: usize,
    pub start: usize,
    pub len: usize,
}

impl Span {
    /// The whole matrix; `None` when `rows · cols` overflows.
    pub fn whole(rows: usize, cols: usize) -> Option<Span> {
        Some(Span { rows, cols, start: 0, len: rows.checked_mul(cols)? })
    }

    /// True when the span is the whole matrix.
    #[inline]
    pub fn is_whole(&self) -> bool {
        self.start == 0 && Some(self.len) == self.rows.checked_mul(self.cols)
    }

    /// Elements `start..start + len` of this span, `None` when out of range.
    pub fn sub(&self, start: usize, len: usize) -> Option<Span> {
        if start.checked_add(len)? > self.len {
            return None;
        }
        Some(Span { start: self.start + start, len, ..*self })
    }

    /// Matrix `(row, col)` of element `i`, `None` out of range.
    #[inline]
    pub fn locate(&self, i: usize) -> Option<(usize, usize)> {
        if i >= self.len || self.cols == 0 {
            return None;
        }
        let g = self.start + i;
        Some((g / self.cols, g % self.cols))
    }

    /// Elements `start..start + n` (clipped to the span) as matrix-row segments
    /// `(row, c0, c1, at)`: columns `c0..c1` of `row` are elements `at..at + (c1 - c0)` counted
    /// from `start`.
    pub fn segments(&self, start: usize, n: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> + '_ {
        let end = start.saturating_add(n).min(self.len);
        let mut i = start;
        core::iter::from_fn(move || {
            if i >= end || self.cols == 0 {
                return None;
            }
            let g = self.start + i;
            let (row, c0) = (g / self.cols, g % self.cols);
            let c1 = (c0 + (end - i)).min(self.cols);
            let at = i - start;
            i += c1 - c0;
            Some((row, c0, c1, at))
        })
    }
}
