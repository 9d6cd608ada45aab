//! Fixed-capacity tensor shapes (no allocation).

/// Largest tensor rank the runtime supports.
pub const MAX_RANK: usize = 6;

/// A tensor shape of rank `0..=MAX_RANK`; dimensions beyond `rank` are always zero so that
/// derived equality compares only the meaningful part.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Shape {
    rank: u8,
    dims: [u32; MAX_RANK],
}

impl Shape {
    /// The rank-0 (scalar) shape.
    pub const SCALAR: Shape = Shape { rank: 0, dims: [0; MAX_RANK] };

    /// Builds a shape; `None` when the rank exceeds [`MAX_RANK`] or a dimension exceeds `u32`.
    pub fn new(dims: &[usize]) -> Option<Shape> {
        if dims.len() > MAX_RANK {
            return None;
        }
        let mut s = Shape { rank: dims.len() as u8, dims: [0; MAX_RANK] };
        for (slot, &d) in s.dims.iter_mut().zip(dims) {
            *slot = u32::try_from(d).ok()?;
        }
        Some(s)
    }

    /// Builds a shape from stored `u32` dimensions.
    pub fn from_u32(dims: &[u32]) -> Option<Shape> {
        if dims.len() > MAX_RANK {
            return None;
        }
        let mut s = Shape { rank: dims.len() as u8, dims: [0; MAX_RANK] };
        s.dims[..dims.len()].copy_from_slice(dims);
        Some(s)
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.rank as usize
    }

    /// The dimensions as stored.
    pub fn dims(&self) -> &[u32] {
        &self.dims[..self.rank as usize]
    }

    /// Dimension `i` (0 when `i >= rank`).
    pub fn dim(&self, i: usize) -> usize {
        if i < self.rank as usize {
            self.dims[i] as usize
        } else {
            0
        }
    }

    /// Number of elements, `None` on overflow of `usize`.
    pub fn numel(&self) -> Option<usize> {
        self.dims().iter().try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
    }

    /// Product of dimensions in `range` (saturating; shapes are validated before kernels run).
    pub fn prod(&self, from: usize, to: usize) -> usize {
        let to = to.min(self.rank as usize);
        let from = from.min(to);
        self.dims[from..to].iter().fold(1usize, |a, &d| a.saturating_mul(d as usize))
    }

    /// Row-major strides in elements.
    pub fn strides(&self) -> [usize; MAX_RANK] {
        let mut st = [0usize; MAX_RANK];
        let mut acc = 1usize;
        for i in (0..self.rank as usize).rev() {
            st[i] = acc;
            acc = acc.saturating_mul(self.dims[i] as usize);
        }
        st
    }
}

impl core::fmt::Debug for Shape {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.dims()).finish()
    }
}

impl core::fmt::Display for Shape {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.dims().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Shape {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "{=[?]}", self.dims())
    }
}
