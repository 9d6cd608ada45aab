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

/// `$f::<R>(args…)` for `R = $r` in `1..=SUB` (the products' register tiles of `R` filters);
/// nothing for other values.
macro_rules! for_rows {
    ($r:expr, $f:ident($($a:expr),* $(,)?)) => {
        match $r {
            1 => $f::<1>($($a),*),
            2 => $f::<2>($($a),*),
            3 => $f::<3>($($a),*),
            4 => $f::<4>($($a),*),
            5 => $f::<5>($($a),*),
            6 => $f::<6>($($a),*),
            _ => {}
        }
    };
}
pub(super) use for_rows;

/// The checks both kernels' tests run, on `run(g, x, w, bias, act, out)`: the kernel's
/// `conv_winograd` (true when it took the layer and every output before the activation was
/// finite).
#[cfg(test)]
pub(super) mod checks {
    use super::super::conv::Geom;
    use super::super::testutil::{sh as sh_of, *};
    use crate::op::{Activation, Op};

    /// A kernel's `conv_winograd` as the checks call it.
    pub(in crate::kernels) type Run<'a> = &'a dyn Fn(&Geom, &[f32], &[f32], &[f32], Activation, &mut [f32]) -> bool;

    /// One layer (`c` channels of `h × wd`, `m` filters, `pads` top, left, bottom, right,
    /// activation code `act`) through `run` where it takes it: close to the f64 definition
    /// (1e-5 of each output's Σ|w·x| + |b|); `None` when it declines.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::kernels) fn case(
        run: Run<'_>,
        c: usize,
        m: usize,
        h: usize,
        wd: usize,
        pads: [usize; 4],
        act: u8,
        with_bias: bool,
        seed: u64,
    ) -> Option<Vec<f32>> {
        let (xd, wdims) = ([1, c, h, wd], [m, c, 3, 3]);
        let attrs = conv_attrs(1, [1, 1], [1, 1], pads, act);
        let y = Op::Conv(attrs).infer(&[sh_of(&xd), sh_of(&wdims), sh_of(&wdims[..1])]).ok()?;
        let yd: Vec<usize> = (0..y.rank()).map(|i| y.dim(i)).collect();
        let g = Geom::new(&attrs, &sh_of(&xd), &sh_of(&wdims), &y);
        let (x, w, b) = (data(xd.iter().product(), seed), data(wdims.iter().product(), seed + 1), data(m, seed + 2));
        let bs: &[f32] = if with_bias { &b } else { &[] };
        let got = run_bits(yd.iter().product(), &|o| run(&g, &x, &w, bs, attrs.act, o))?;
        let got: Vec<f32> = got.iter().map(|&v| f32::from_bits(v)).collect();
        assert_conv_close(&got, &x, &xd, &w, &wdims, with_bias.then_some(&b[..]), &attrs, &yd, 1e-5);
        Some(got)
    }

    /// The layers a kernel must take: ResNet-8's three residual stages, odd planes (a last
    /// tile half outside the output), planes narrower than a vector of tiles, no padding,
    /// uneven padding, and split filter blocks (64 channels: the transformed weights of part of
    /// the filters at a time; 33 channels: tiles split too, the weights transformed again per
    /// chunk). More than 64 channels does not fit a chunk of 16 tiles.
    pub(in crate::kernels) fn fixed_layers(run: Run<'_>) {
        for (c, m, h, wd, pads) in [
            (16, 16, 32, 32, [1; 4]),
            (32, 32, 16, 16, [1; 4]),
            (64, 64, 8, 8, [1; 4]),
            (64, 40, 8, 8, [1; 4]),
            (5, 7, 9, 11, [1; 4]),
            (3, 13, 7, 5, [0; 4]),
            (1, 1, 3, 3, [0; 4]),
            (2, 9, 5, 40, [2, 0, 1, 2]),
            (33, 32, 9, 9, [1; 4]),
        ] {
            for (act, bias) in [(0, true), (1, false), (2, true)] {
                assert!(case(run, c, m, h, wd, pads, act, bias, (c * 31 + m) as u64).is_some(), "declined c={c} m={m} {h}x{wd}");
            }
        }
        assert!(case(run, 65, 4, 4, 4, [1; 4], 0, true, 1).is_none());
    }

    /// Filter `f`'s outputs depend on its own weights and bias only: running a subset of the
    /// filters gives their outputs bit for bit, and so does a layer with an extra input
    /// channel whose weights are all 0 (pruning surgery's exact rewrite).
    pub(in crate::kernels) fn independent_of_other_filters_and_zero_channels(run: Run<'_>) {
        let (c, m, h, wd) = (24, 30, 10, 13);
        let attrs = conv_attrs(1, [1, 1], [1, 1], [1; 4], 1);
        let layer = |c: usize, m: usize, x: &[f32], w: &[f32], b: &[f32]| {
            let (xd, wdims) = ([1, c, h, wd], [m, c, 3, 3]);
            let y = Op::Conv(attrs).infer(&[sh_of(&xd), sh_of(&wdims), sh_of(&wdims[..1])]).unwrap();
            let g = Geom::new(&attrs, &sh_of(&xd), &sh_of(&wdims), &y);
            run_bits(m * h * wd, &|o| run(&g, x, w, b, attrs.act, o)).unwrap()
        };
        let (x, w, b) = (data(c * h * wd, 5), data(m * c * 9, 6), data(m, 7));
        let all = layer(c, m, &x, &w, &b);
        // Filters 7 .. 18 alone.
        let sub = layer(c, 11, &x, &w[7 * c * 9..18 * c * 9], &b[7..18]);
        assert_eq!(&all[7 * h * wd..18 * h * wd], &sub[..]);
        // An extra channel (index 9) with zero weights and arbitrary inputs.
        let mut x2 = x[..9 * h * wd].to_vec();
        x2.extend(data(h * wd, 8));
        x2.extend_from_slice(&x[9 * h * wd..]);
        let mut w2 = Vec::new();
        for fi in 0..m {
            let k = &w[fi * c * 9..(fi + 1) * c * 9];
            w2.extend_from_slice(&k[..9 * 9]);
            w2.extend([0.0; 9]);
            w2.extend_from_slice(&k[9 * 9..]);
        }
        assert_eq!(layer(c + 1, m, &x2, &w2, &b), all);
    }

    /// An infinite or NaN input makes the kernel decline after running (the transforms would
    /// turn ±Inf into NaN); the Conv through the dispatch then follows the definition: +Inf
    /// wherever a positive weight meets the +Inf input, the f64 definition elsewhere.
    pub(in crate::kernels) fn non_finite_inputs_fall_back(run: Run<'_>) {
        let (c, m, h, wd) = (3, 4, 6, 7);
        let attrs = conv_attrs(1, [1, 1], [1, 1], [1; 4], 0);
        let (xd, wdims) = ([1, c, h, wd], [m, c, 3, 3]);
        let y = Op::Conv(attrs).infer(&[sh_of(&xd), sh_of(&wdims), sh_of(&wdims[..1])]).unwrap();
        let yd: Vec<usize> = (0..y.rank()).map(|i| y.dim(i)).collect();
        let g = Geom::new(&attrs, &sh_of(&xd), &sh_of(&wdims), &y);
        // Positive weights, so +Inf never meets -Inf in the definition.
        let w: Vec<f32> = data(m * c * 9, 2).iter().map(|v| v.abs() + 0.1).collect();
        let b = data(m, 3);
        for special in [f32::INFINITY, f32::NAN] {
            let mut x = data(c * h * wd, 1);
            x[h * wd + 2 * wd + 3] = special;
            assert!(run_bits(m * h * wd, &|o| run(&g, &x, &w, &b, attrs.act, o)).is_none());
            let (got, _) = super::super::testutil::run(&Op::Conv(attrs), &[(&x, &xd), (&w, &wdims), (&b, &[m])]).unwrap();
            let want = naive_conv(&x, &xd, &w, &wdims, Some(&b), &attrs, &yd);
            for (i, (gv, wv)) in got.iter().zip(&want).enumerate() {
                if wv.is_finite() {
                    assert!((*gv as f64 - wv).abs() <= 1e-4 * (1.0 + wv.abs()), "{special} [{i}]: {gv} vs {wv}");
                } else {
                    assert!(gv.is_nan() == wv.is_nan() && (gv.is_nan() || *gv as f64 == *wv), "{special} [{i}]: {gv} vs {wv}");
                }
            }
        }
    }
}
