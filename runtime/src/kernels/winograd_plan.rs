//! What the Winograd F(2 × 2, 3 × 3) kernels of every SIMD target share (x86-64:
//! `winograd`, aarch64: `winograd_neon`): which layers they take, how a layer is split into
//! chunks of tiles and blocks of filters, the weight transform and the tile rows of a chunk.
//! The buffers' sizes are the same on both targets, so a layer takes the same split and its
//! stack use is the same (docs/ARCHITECTURE.md, host stack).
use super::conv::Geom;

/// Floats of transformed input one chunk of tiles holds: `16 · c · tc`.
pub(super) const V_MAX: usize = 16384;
/// Floats of transformed weights one block of filters holds: `16 · fb · c`.
pub(super) const U_MAX: usize = 16384;
/// Most tiles in a chunk (a multiple of 16: the products run 16 tiles per register tile).
pub(super) const TC_MAX: usize = 64;
/// Filters per register tile of the products (6 × 16 tiles: 12 AVX2 registers, 24 NEON ones).
pub(super) const SUB: usize = 6;
/// Floats between one position's transformed input and the next beyond `c · np`.
pub(super) const SKEW: usize = 16;

/// How a kernel splits one layer: tiles in chunks of `tc` (the last one `t − (chunks − 1)·tc`
/// tiles, zero-padded to a multiple of 16), filters in blocks of `fb`. Every input is
/// transformed once per call, every weight once per call when one block holds all filters,
/// else once per chunk.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    /// Tiles per tile row (`⌈ow / 2⌉`).
    pub(super) tw: usize,
    /// Tiles of the layer.
    pub(super) t: usize,
    /// Most tiles per chunk.
    pub(super) tc: usize,
    /// Filters per block.
    pub(super) fb: usize,
}

/// The split of a layer the kernels take, or `None`: group 1, 3 × 3, stride 1, no dilation,
/// at most 64 channels (a chunk of 16 tiles must fit [`V_MAX`]). The choice depends on the
/// channel count, not on the filter count.
pub(super) fn plan(g: &Geom) -> Option<Plan> {
    let ok = g.cg == g.c
        && g.mg == g.m
        && (g.kh, g.kw, g.sh, g.sw, g.dh, g.dw) == (3, 3, 1, 1, 1, 1)
        && (1..=64).contains(&g.c)
        && g.m > 0
        && g.oh > 0
        && g.ow > 0
        && g.w < 1 << 20
        && g.oh < 1 << 20
        && g.h < 1 << 20
        && g.pt < 1 << 20
        && g.pl < 1 << 20;
    if !ok {
        return None;
    }
    let tw = g.ow.div_ceil(2);
    let t = g.oh.div_ceil(2) * tw;
    let fit = V_MAX / (16 * g.c) / 16 * 16;
    let tc = t.div_ceil(16).saturating_mul(16).min(TC_MAX).min(fit);
    let fb = if 16 * g.m * g.c <= U_MAX { g.m } else { U_MAX / (16 * g.c) / SUB * SUB };
    (tc >= 16 && fb > 0).then_some(Plan { tw, t, tc, fb })
}

/// `G g Gᵀ` of one 3 × 3 kernel `g` (row-major taps), lanes or scalars alike, with
/// `G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]`: each entry is `½ · ((a + b) + c)`, `½ · ((a − b) + c)`
/// or a tap, first down the columns, then along the rows; entry `ξ = 4·row + column`.
#[inline(always)]
pub(super) fn kernel_transform<T: Copy>(
    g: [T; 9],
    half: T,
    add: impl Fn(T, T) -> T,
    sub: impl Fn(T, T) -> T,
    mul: impl Fn(T, T) -> T,
) -> [T; 16] {
    let four = |a: T, b: T, c: T| [a, mul(half, add(add(a, b), c)), mul(half, add(sub(a, b), c)), c];
    // `col[x]` = G times column x of g: rows 0..4 of the 4 × 3 product.
    let col: [[T; 4]; 3] = core::array::from_fn(|kx| four(g[kx], g[3 + kx], g[6 + kx]));
    let mut u = [g[0]; 16];
    for k in 0..4 {
        let row = four(col[0][k], col[1][k], col[2][k]);
        u[4 * k..4 * k + 4].copy_from_slice(&row);
    }
    u
}

/// The tile rows a chunk `t0 .. t0 + nt` crosses, each as `(ty, first tile, end tile)`.
pub(super) fn segments(tw: usize, t0: usize, nt: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    let (first, last) = (t0 / tw, (t0 + nt - 1) / tw);
    (first..=last).map(move |ty| {
        let a = if ty == first { t0 % tw } else { 0 };
        let b = if ty == last { (t0 + nt - 1) % tw + 1 } else { tw };
        (ty, a, b)
    })
}
