//! Depthwise Conv (one filter per input channel) on CPUs with SIMD.
//!
//! - **Same-pitch layers** (stride 1, output rows as wide as the input's: "same" padding along
//!   rows, the usual depthwise layer): every tap of an output position reads one fixed offset
//!   away in the flattened input plane, so [`planes`] sums straight from the input with
//!   masked loads (lanes whose tap falls in the padding are masked off), 64 positions × every
//!   channel per mask set, with no copies.
//! - **Other layers**: each channel's plane is split into its `s × s` stride phases (`s` the
//!   stride), each a zero-bordered stack plane whose row pitch is also the extended output's;
//!   every kernel tap is then one contiguous pass over one phase plane, with no per-row or
//!   per-border work and no strided loads. Columns past the output width are computed into
//!   the buffer and dropped.
//!
//! Each output sums the bias, then the taps in `(ky, kx)` order (padding taps add `w · 0`), as
//! the row-run loop does.

use super::conv::Geom;
use super::gemm::Micro;
use super::{sub_mut, zeroed};
use crate::op::{Activation, OpError};
use crate::view::View;

/// Floats in each of the two stack buffers (phase planes, extended output plane).
const BUF: usize = 4096;

/// Where tap `(ky, kx)` reads: phase `(ky·dh mod s, kx·dw mod s)`, shifted by
/// `(ky·dh / s, kx·dw / s)` phase rows and columns.
#[derive(Clone, Copy)]
struct Layout {
    /// The stride (both axes).
    s: usize,
    /// Row pitch of the phase planes and the extended output.
    pitch: usize,
    /// Rows of a phase plane.
    rows: usize,
    /// Floats per phase plane (its rows plus the zero tail the last taps run into).
    phase_len: usize,
}

/// The [`Layout`] for `g`, when it fits the stack buffers.
fn layout(g: &Geom) -> Option<Layout> {
    if g.cg != 1 || g.mg != 1 || g.sh != g.sw || g.sw == 0 || g.kh * g.kw == 0 || g.oh == 0 || g.ow == 0 || g.h == 0 || g.w == 0 {
        return None;
    }
    let s = g.sw;
    let (qy, qx) = ((g.kh - 1) * g.dh / s, (g.kw - 1) * g.dw / s);
    // Output column `ox < ow` reads phase column `ox + kx·dw / s < ow + qx`.
    let pitch = g.ow + qx;
    let rows = g.oh + qy;
    // Zero tail: the last taps' runs end `qx` past the rows, the blocked kernel's `PX - 1`.
    let phase_len = rows * pitch + qx.max(PX - 1);
    (s * s * phase_len <= BUF && g.oh * pitch <= BUF).then_some(Layout { s, pitch, rows, phase_len })
}

/// Whether [`depthwise`] takes this layer on `mk`: depthwise multiplier 1, equal strides, and
/// phase planes small enough for the stack buffers, or a stride-2 layer `mk` reads in place.
pub(super) fn applies<M: Micro>(mk: M, g: &Geom) -> bool {
    layout(g).is_some() || plane_layout(g).is_some() || (mk.dw_s2_ready() && S2::of(g).is_some())
}

/// How the plane kernel ([`planes`]) reads a layer's input: at stride 1, the input planes in
/// place (output rows as wide as the input's); at stride `s ≥ 2`, each channel split into its
/// `s × s` stride phases, each `rows × ow` at the output's pitch, so that at either stride
/// every tap of an output position reads one fixed offset away.
#[derive(Clone, Copy)]
pub(super) struct PlaneLayout {
    s: usize,
    /// Floats per phase plane (`⌈h / s⌉` rows of `ow`) and per channel.
    phase_len: usize,
    in_plane: usize,
}

/// The [`PlaneLayout`] of `g`: depthwise multiplier 1, equal strides, at most [`MAX_TAPS`]
/// taps; at stride 1 output rows as wide as the input's, at stride `s ≥ 2` every phase row
/// no wider than an output row (`⌈w / s⌉ ≤ ow`, "same" padding) and one channel's phases
/// within [`PHASE_BUF`].
fn plane_layout(g: &Geom) -> Option<PlaneLayout> {
    if g.cg != 1 || g.mg != 1 {
        return None;
    }
    geom_layout(g)
}

/// The [`PlaneLayout`] of `g`'s geometry, whatever its channels: equal strides, at most
/// [`MAX_TAPS`] taps, and the conditions of [`plane_layout`] on rows and phases.
fn geom_layout(g: &Geom) -> Option<PlaneLayout> {
    let (s, taps) = (g.sw, g.kh * g.kw);
    if g.sh != s || s == 0 || taps == 0 || taps > MAX_TAPS || g.oh == 0 || g.ow == 0 || g.w == 0 || g.h == 0 {
        return None;
    }
    if s == 1 {
        return (g.ow == g.w).then_some(PlaneLayout { s, phase_len: g.h * g.w, in_plane: g.h * g.w });
    }
    let rows = g.h.div_ceil(s);
    let phase_len = rows * g.ow;
    let in_plane = s.checked_mul(s)?.checked_mul(phase_len)?;
    (g.w.div_ceil(s) <= g.ow && in_plane <= PHASE_BUF).then_some(PlaneLayout { s, phase_len, in_plane })
}

/// Floats of phase planes [`planes`] keeps on the stack (32 KiB).
const PHASE_BUF: usize = 8192;

/// Most taps per filter (larger kernels keep the row-run loop).
pub(super) const MAX_TAPS: usize = 64;
/// Extended-output floats summed in registers at a time (four AVX2 or two AVX-512 registers).
const CB: usize = 32;

/// Channels the blocked kernel sums together, interleaved (one AVX-512 register, two AVX2 or
/// four NEON registers).
const LANES: usize = 16;
/// Floats of interleaved phase planes the blocked kernel keeps on the stack (32 KiB).
const BUF_BLOCK: usize = 8192;
/// Output positions of one row the blocked kernel sums together.
const PX: usize = 4;

/// What both depthwise kernels share: the layout, per tap where its run starts in a phase
/// plane buffer (in phase positions), and per phase column `px` the phase columns `lo .. hi`
/// inside the input with the input column of `lo` (phase column `rx` holds input column
/// `rx·s + px - pl`).
struct Setup {
    l: Layout,
    taps: usize,
    in_plane: usize,
    off: [usize; MAX_TAPS],
    cols: [(usize, usize, usize); MAX_STRIDE],
}

/// Largest stride the kernels take.
const MAX_STRIDE: usize = 16;

impl Setup {
    /// Errors when `g` does not fit the buffers or a slice is shorter than `g` needs.
    fn new(g: &Geom, x_len: usize, w_len: usize) -> Result<Setup, OpError> {
        let l = layout(g).ok_or(OpError::ShapeMismatch)?;
        let taps = g.kh * g.kw;
        if x_len < g.c * g.h * g.w || g.m > g.c || w_len < g.m * taps || taps > MAX_TAPS || l.s > MAX_STRIDE {
            return Err(OpError::ShapeMismatch);
        }
        let s = l.s;
        let mut off = [0usize; MAX_TAPS];
        for (t, o) in off.iter_mut().enumerate().take(taps) {
            let (dy, dx) = ((t / g.kw) * g.dh, (t % g.kw) * g.dw);
            *o = ((dy % s) * s + dx % s) * l.phase_len + (dy / s) * l.pitch + dx / s;
        }
        let mut cols = [(0usize, 0usize, 0usize); MAX_STRIDE];
        for (px, c) in cols.iter_mut().enumerate().take(s) {
            let lo = g.pl.saturating_sub(px).div_ceil(s);
            let hi = (g.w + g.pl).saturating_sub(px).div_ceil(s).min(l.pitch);
            *c = (lo, hi.max(lo), (lo * s + px).saturating_sub(g.pl));
        }
        Ok(Setup { l, taps, in_plane: g.h * g.w, off, cols })
    }

    /// Writes channel plane `src` into the phase planes `ph`, leaving the padding cells as
    /// they are (zero).
    #[inline(always)]
    fn phases(&self, g: &Geom, src: &[f32], ph: &mut [f32]) {
        let (s, l) = (self.l.s, &self.l);
        for p in 0..s * s {
            let (py, (lo, hi, ix0)) = (p / s, self.cols[p % s]);
            for ry in 0..l.rows {
                let Some(iy) = (ry * s + py).checked_sub(g.pt).filter(|&iy| iy < g.h) else { continue };
                let row = &src[iy * g.w..(iy + 1) * g.w];
                let dst = &mut ph[p * l.phase_len + ry * l.pitch + lo..p * l.phase_len + ry * l.pitch + hi];
                if s == 1 {
                    copy_short(dst, &row[ix0..ix0 + dst.len()]);
                } else {
                    for (i, d) in dst.iter_mut().enumerate() {
                        *d = row[ix0 + i * s];
                    }
                }
            }
        }
    }

    /// Whether the blocked kernel takes this layer: its interleaved phase planes fit
    /// [`BUF_BLOCK`] and a block's planes are indexable by `i32` (the gathers).
    fn blocks(&self) -> bool {
        self.l.s * self.l.s * self.l.phase_len * LANES <= BUF_BLOCK && self.in_plane.saturating_mul(LANES) <= i32::MAX as usize / 2
    }

    /// Writes the `nl ≤ LANES` channel planes `xb` into the interleaved phase planes `ph`
    /// (position `i`, channel `lane` at `ph[i·LANES + lane]`; lanes past `nl` zero), leaving the
    /// padding cells as they are (zero): one masked gather of the block's channels per position.
    #[inline(always)]
    fn gather_block<M: Micro>(&self, mk: M, g: &Geom, xb: &[f32], nl: usize, ph: &mut [f32]) {
        let (s, l) = (self.l.s, &self.l);
        let mut idx = [0i32; LANES];
        for (lane, v) in idx.iter_mut().enumerate().take(nl) {
            *v = (lane * self.in_plane) as i32;
        }
        let mask = if nl >= LANES { u16::MAX } else { (1u16 << nl) - 1 };
        let mut rows = [(0i32, 0u16); GATHER_ROWS];
        for p in 0..s * s {
            let (py, (lo, hi, ix0)) = (p / s, self.cols[p % s]);
            for ry in 0..l.rows {
                let Some(iy) = (ry * s + py).checked_sub(g.pt).filter(|&iy| iy < g.h) else { continue };
                let at = p * l.phase_len + ry * l.pitch + lo;
                let mut i = 0;
                while i < hi - lo {
                    let n = GATHER_ROWS.min(hi - lo - i);
                    for (k, r) in rows.iter_mut().enumerate().take(n) {
                        *r = ((iy * g.w + ix0 + (i + k) * s) as i32, mask);
                    }
                    mk.gather_rows(&mut ph[(at + i) * LANES..(at + i + n) * LANES], xb, &idx, &rows[..n]);
                    i += n;
                }
            }
        }
    }
}

/// Positions [`Setup::gather_block`] gathers per call.
const GATHER_ROWS: usize = 64;

/// Depthwise Conv of one batch item; `w` holds `m · kh · kw` weights (any storage). Blocks of
/// [`LANES`] channels run interleaved when their phase planes fit [`BUF_BLOCK`], single
/// channels otherwise; both give the same sums. Forced inline so a SIMD caller's target
/// features reach its loops.
#[inline(always)]
pub(super) fn depthwise<M: Micro>(
    mk: M,
    g: &Geom,
    x: &[f32],
    w: View<'_>,
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
) -> Result<(), OpError> {
    let a = Args { x, w, bias, act };
    if let Some(s2) = S2::of(g).filter(|_| mk.dw_s2_ready()) {
        return in_place(mk, g, s2, &a, out);
    }
    if let Some(s1) = S2::dw1(g).filter(|s1| mk.dw_s1_ready(s1)) {
        return in_place(mk, g, s1, &a, out);
    }
    if let Some(pl) = plane_layout(g) {
        return planes(mk, g, pl, &a, out);
    }
    let st = Setup::new(g, x.len(), w.len())?;
    if st.blocks() {
        blocked(mk, g, &st, &a, out)
    } else {
        per_channel(g, &st, &a, out)
    }
}

/// The operands of one depthwise call.
struct Args<'a> {
    x: &'a [f32],
    w: View<'a>,
    bias: Option<View<'a>>,
    act: Activation,
}

/// [`depthwise`] one channel at a time: one contiguous pass per tap over its phase plane.
#[inline(always)]
fn per_channel(g: &Geom, st: &Setup, a: &Args<'_>, out: &mut [f32]) -> Result<(), OpError> {
    let (l, taps, off, plane) = (&st.l, st.taps, &st.off[..st.taps], g.oh * g.ow);
    let (x, w, bias, act, in_plane) = (a.x, a.w, a.bias, a.act, st.in_plane);
    let mut wt = [0.0f32; MAX_TAPS];
    let mut ph = [0.0f32; BUF];
    let mut op = [0.0f32; BUF];
    let ph = &mut ph[..l.s * l.s * l.phase_len];
    let out_len = g.oh * l.pitch;
    let op = &mut op[..out_len];
    for c in 0..g.m {
        ph.fill(0.0);
        st.phases(g, &x[c * in_plane..(c + 1) * in_plane], ph);
        w.read_into(c * taps, &mut wt[..taps]);
        // Blocks of the extended output held in registers while every tap adds its contiguous
        // run (the compiler vectorises the block), then the activation over the whole plane.
        let b0 = bias.map_or(0.0, |b| b.get(c));
        let wt = &wt[..taps];
        let mut j = 0;
        while j < out_len {
            let n = CB.min(out_len - j);
            if n == CB {
                let mut acc = [b0; CB];
                for (&o, &wv) in off.iter().zip(wt) {
                    let Ok(xs) = <&[f32; CB]>::try_from(&ph[o + j..o + j + CB]) else { continue };
                    for (a, v) in acc.iter_mut().zip(xs) {
                        *a += wv * v;
                    }
                }
                op[j..j + CB].copy_from_slice(&acc);
            } else {
                let acc = &mut op[j..j + n];
                acc.fill(b0);
                for (&o, &wv) in off.iter().zip(wt) {
                    for (a, v) in acc.iter_mut().zip(&ph[o + j..o + j + n]) {
                        *a += wv * v;
                    }
                }
            }
            j += n;
        }
        act.apply_all(op);
        let ob = sub_mut(out, c * plane, plane)?;
        for (orow, erow) in ob.chunks_exact_mut(g.ow).zip(op.chunks_exact(l.pitch)) {
            copy_short(orow, &erow[..g.ow]);
        }
    }
    Ok(())
}

/// [`depthwise`] on [`LANES`] channels at a time, interleaved: every output position sums
/// the bias and then each tap as one vector of channels, and is scattered back to the planes.
#[inline(always)]
fn blocked<M: Micro>(mk: M, g: &Geom, st: &Setup, a: &Args<'_>, out: &mut [f32]) -> Result<(), OpError> {
    let (l, taps, off, plane) = (&st.l, st.taps, &st.off[..st.taps], g.oh * g.ow);
    let (x, w, bias, act, in_plane) = (a.x, a.w, a.bias, a.act, st.in_plane);
    let mut wt = [[0.0f32; LANES]; MAX_TAPS];
    let mut ph = [0.0f32; BUF_BLOCK];
    let ph = &mut ph[..l.s * l.s * l.phase_len * LANES];
    let out = out.get_mut(..g.m * plane).ok_or(OpError::ShapeMismatch)?;
    let mut c0 = 0;
    while c0 < g.m {
        let nl = LANES.min(g.m - c0);
        ph.fill(0.0);
        let mut b = [0.0f32; LANES];
        st.gather_block(mk, g, &x[c0 * in_plane..(c0 + nl) * in_plane], nl, ph);
        if let Some(bv) = bias {
            bv.read_into(c0, &mut b[..nl]);
        }
        // The block's filters decoded in one call, then laid out tap-major.
        let mut wb = [0.0f32; LANES * MAX_TAPS];
        w.read_into(c0 * taps, &mut wb[..nl * taps]);
        for (t, wv) in wt.iter_mut().enumerate().take(taps) {
            for (lane, v) in wv.iter_mut().enumerate() {
                *v = if lane < nl { wb[lane * taps + t] } else { 0.0 };
            }
        }
        for oy in 0..g.oh {
            // PX positions of the row at a time: independent sums, so the adds overlap.
            let mut ox = 0;
            while ox < g.ow {
                let np = PX.min(g.ow - ox);
                let j = oy * l.pitch + ox;
                // From zero plus the bias (exactly the bias) so the sums start in registers.
                let mut acc = [[0.0f32; LANES]; PX];
                for a in acc.iter_mut() {
                    for (a, bv) in a.iter_mut().zip(&b) {
                        *a += bv;
                    }
                }
                for (&o, wv) in off.iter().zip(&wt[..taps]) {
                    let Ok(xs) = <&[f32; PX * LANES]>::try_from(&ph[(o + j) * LANES..(o + j + PX) * LANES]) else { continue };
                    for (a, xv) in acc.iter_mut().zip(xs.chunks_exact(LANES)) {
                        for ((a, wl), v) in a.iter_mut().zip(wv).zip(xv) {
                            *a += wl * v;
                        }
                    }
                }
                let tile = acc;
                for (i, a) in tile.iter().enumerate().take(np) {
                    let at = c0 * plane + oy * g.ow + ox + i;
                    for (lane, &v) in a.iter().enumerate().take(nl) {
                        out[at + lane * plane] = v;
                    }
                }
                ox += np;
            }
        }
        act.apply_all(&mut out[c0 * plane..(c0 + nl) * plane]);
        c0 += nl;
    }
    Ok(())
}

/// Blocks of 16 output positions one [`Taps`] group covers.
pub(super) const TB: usize = 4;

/// One group of `TB · 16` consecutive positions `j0 ..` of a depthwise layer's flattened
/// output plane, for a layer whose output rows have the input's pitch: tap `t` of position `j`
/// reads input position `j + d[t]` of the same channel, in the lanes of `mask(k, t)` (block
/// `k`, lane `i` = position `j0 + 16k + i`); the other lanes add `w · 0`. Only `store[k]`'s lanes
/// are output positions.
///
/// Guarantees (by construction, and checked again when a group's masks are worked out, or for
/// a group given masks worked out for another, on all its lanes): every masked-in lane reads
/// inside `0 .. in_plane` and every stored lane lies inside `0 .. out_plane`, so the SIMD
/// kernels may load and store them without bounds tests.
pub(super) struct Taps {
    taps: usize,
    /// Applied to each output as it is stored.
    act: Activation,
    j0: usize,
    d: [isize; MAX_TAPS],
    /// Per kernel column, the output columns whose input column lies inside the input.
    cols: [(u32, u32); MAX_TAPS],
    /// When output rows are at most [`PAT_OW`] wide and there are at most [`PAT_KW`] kernel
    /// columns: per kernel column, bit `i` set when output column `i mod ow` lies in its
    /// `cols` range, so a block starting at column `ox` has column mask `pattern >> ox`.
    colpat: Option<[u128; PAT_KW]>,
    /// Per kernel row, the output positions (of the flattened plane) whose input row lies
    /// inside the input: whole output rows, one run.
    rows: [(u32, u32); MAX_TAPS],
    in_plane: usize,
    out_plane: usize,
    /// Groups' masks, one entry of [`Taps::entry`] values per slot: `TB · taps` tap masks
    /// (block-major) then `TB` store masks. The last slot holds a group no key shares; the
    /// others cache groups by key, filled in turn.
    pool: [u16; POOL],
    keys: [Option<Key>; CACHED],
    /// Slots that cache (below [`CACHED`], the pool's slots but the last).
    slots: usize,
    next: usize,
    /// Where the current group's entry starts in `pool`.
    cur: usize,
    /// Least and greatest tap offset.
    dmin: isize,
    dmax: isize,
    /// Taps per kernel row when each row's taps read consecutive input positions (stride 1,
    /// dilation 1 along rows) and their number is one of [`RUNS`], else 0. Then each group's
    /// entry also holds the [`Taps::windows`] masks.
    run: usize,
}

/// Widest output rows and most kernel columns [`Taps`] keeps column patterns for (a group's 64
/// lanes from any starting column lie in the pattern's 128 bits).
const PAT_OW: usize = 48;
const PAT_KW: usize = 16;

/// Kernel widths the window kernel (x86-64 AVX-512) has: a row's taps are shifts of two 16-lane
/// windows, at most 7 lanes.
const RUNS: [usize; 2] = [3, 5];

/// Which groups share masks: `(true, r)` every interior group starting at column `r` of an
/// output row; `(false, b)` group `b` itself.
type Key = (bool, usize);

/// Group masks a [`Taps`] caches at most: the interior groups of a layer come in at most a few
/// column phases, and a small plane (the stride-2 layers, split into small channel chunks) has
/// few groups in all.
const CACHED: usize = 16;
/// Mask values of a [`Taps`]' pool (2 KiB): 17 slots at 3 × 3, 3 at [`MAX_TAPS`] taps. Small,
/// since a `Taps` is built for every depthwise call.
const POOL: usize = 1024;
/// Groups [`Taps::key`] keys by their index.
const FIRST: usize = 9;

impl Taps {
    /// Layer `g` read through `pl`, its outputs passed through `act`; not positioned at a
    /// group (every mask empty) until [`Taps::at`]. Built in place, not moved: a `Taps` is
    /// 4 KiB and made per call.
    fn new(g: &Geom, pl: PlaneLayout, act: Activation) -> Taps {
        let (taps, s) = (g.kh * g.kw, pl.s as isize);
        let mut d = [0isize; MAX_TAPS];
        let pitch = if pl.s == 1 { g.w } else { g.ow } as isize;
        // Input row `oy·s + dy` lies in phase row `oy + dy div s` of phase `dy mod s` (and
        // likewise for columns): per kernel row and column, not per tap (kws's first layer
        // has 40 taps, and a Taps is built per call).
        let split = |k: usize, step: usize, pad: usize| {
            let v = (k * step) as isize - pad as isize;
            // No division at stride 1 (two per tap were a third of a kws layer's set-up).
            if s == 1 {
                (0, v)
            } else {
                (v.rem_euclid(s), v.div_euclid(s))
            }
        };
        let kw = g.kw.max(1);
        for (ky, row) in d[..taps].chunks_exact_mut(kw).enumerate() {
            let (py, ry) = split(ky, g.dh, g.pt);
            for (kx, dt) in row.iter_mut().enumerate() {
                let (px, rx) = split(kx, g.dw, g.pl);
                *dt = (py * s + px) * pl.phase_len as isize + ry * pitch + rx;
            }
        }
        let mut cols = [(0, 0); MAX_TAPS];
        for (kx, c) in cols.iter_mut().enumerate().take(g.kw) {
            let (lo, hi) = g.col_range(kx * g.dw);
            // Output columns fit `u32`: a plane's positions fit the arena.
            *c = (lo as u32, hi as u32);
        }
        let colpat = (g.ow >= 1 && g.ow <= PAT_OW && g.kw <= PAT_KW).then(|| {
            let mut pat = [0u128; PAT_KW];
            // One row's lanes, repeated every `ow` bits.
            for (p, &(lo, hi)) in pat.iter_mut().zip(&cols).take(g.kw) {
                *p = if hi > lo { ((1u128 << hi) - 1) & !((1u128 << lo) - 1) } else { 0 };
                let mut period = g.ow;
                while period < 128 {
                    *p |= *p << period;
                    period *= 2;
                }
            }
            pat
        });
        let mut rows = [(0, 0); MAX_TAPS];
        for (ky, r) in rows.iter_mut().enumerate().take(g.kh) {
            let (lo, hi) = g.row_range(ky * g.dh);
            *r = ((lo * g.ow) as u32, (hi.max(lo) * g.ow) as u32);
        }
        let (in_plane, out_plane) = (pl.in_plane, g.oh * g.ow);
        let (dmin, dmax) = (d[..taps].iter().copied().min().unwrap_or(0), d[..taps].iter().copied().max().unwrap_or(0));
        let consecutive = d[..taps].chunks_exact(kw).all(|r| r.iter().enumerate().all(|(kx, &v)| v == r[0] + kx as isize));
        // Only the x86-64 AVX-512 kernel reads the windows: elsewhere they are not worked out.
        let run = if cfg!(target_arch = "x86_64") && RUNS.contains(&g.kw) && consecutive { g.kw } else { 0 };
        let entry = TB * (taps + 1) + if run > 0 { (TB + 1) * g.kh } else { 0 };
        let all = POOL / entry;
        Taps {
            taps,
            act,
            j0: 0,
            d,
            cols,
            colpat,
            rows,
            in_plane,
            out_plane,
            pool: [0; POOL],
            keys: [None; CACHED],
            slots: all.saturating_sub(1).min(CACHED),
            next: 0,
            cur: 0,
            dmin,
            dmax,
            run,
        }
    }

    /// Mask values per pool slot.
    #[inline]
    fn entry(&self) -> usize {
        TB * (self.taps + 1) + self.taps.checked_div(self.run).map_or(0, |kh| (TB + 1) * kh)
    }

    /// Moves to the group at `j0` (the masks of `g`, the layer this `Taps` was made for).
    fn at(&mut self, g: &Geom, j0: usize) {
        self.j0 = j0;
        let key = self.key(g, j0);
        let e = self.entry();
        if let Some(k) = key {
            if let Some(i) = self.keys[..self.slots].iter().position(|&c| c == Some(k)) {
                self.cur = i * e;
                return;
            }
        }
        let slot = match key {
            Some(k) if self.slots > 0 => {
                let i = self.next;
                self.keys[i] = Some(k);
                self.next = (i + 1) % self.slots;
                i
            }
            _ => self.slots,
        };
        self.cur = slot * e;
        self.work_out(g, j0);
    }

    /// The cache key of the group at `j0`, if its masks may be shared. An interior group (every
    /// position an output position, every kernel row of its output rows inside the input, and
    /// every tap of every lane inside the input plane whatever the masks) has the masks of any
    /// other starting at the same output column: each lane's kernel rows are all in, and its
    /// kernel columns depend on its output column only.
    fn key(&self, g: &Geom, j0: usize) -> Option<Key> {
        let (span, ow) = (16 * TB, g.ow.max(1));
        if j0 + span <= self.out_plane {
            // Each kernel row's inside positions are one run of whole output rows.
            let rows = self.rows[..g.kh].iter().all(|&(lo, hi)| lo as usize <= j0 && j0 + span <= hi as usize);
            let inside = j0 as isize + self.dmin >= 0 && (j0 + span - 1) as isize + self.dmax < self.in_plane as isize;
            if rows && inside {
                return Some((true, j0 % ow));
            }
        }
        (j0.is_multiple_of(span) && j0 / span < FIRST).then_some((false, j0 / span))
    }

    /// Works out the masks of the group at `j0` into the current slot: each kernel row's and
    /// column's lanes as one 64-lane mask for the group's `TB` blocks, every tap's the `and` of
    /// its row's and column's, then split into blocks; the same values as block by block
    /// ([`Taps::work_out_blocks`], property-tested).
    fn work_out(&mut self, g: &Geom, j0: usize) {
        const LANES: usize = 16 * TB;
        const _: () = assert!(LANES == 64, "one u64 lane mask per group");
        let (taps, in_plane, out_plane) = (self.taps, self.in_plane, self.out_plane);
        // Lanes `lo .. hi` (at most 64) of the group.
        let bits = |lo: usize, hi: usize| if hi > lo { (u64::MAX >> (64 - (hi - lo))) << lo } else { 0 };
        let lane = |v: u32| (v as usize).clamp(j0, j0 + LANES) - j0;
        let (ow, e, kw) = (g.ow.max(1), self.entry(), g.kw.max(1));
        let ent = &mut self.pool[self.cur..self.cur + e];
        let (masks, rest) = ent.split_at_mut(TB * taps);
        let store = &mut rest[..TB];
        let st = bits(0, out_plane.saturating_sub(j0).min(LANES));
        // Kernel column `kx`: the lanes whose output column is in its range (lanes past the
        // plane are left to the row masks, empty there).
        let ox0 = j0 % ow;
        let (colpat, col_runs) = (self.colpat.as_ref(), &self.cols);
        let col = |kx: usize| match colpat {
            Some(pat) => (pat[kx] >> ox0) as u64,
            None => {
                let (lo, hi) = (col_runs[kx].0 as usize, col_runs[kx].1 as usize);
                let (mut c, mut p, mut ox, end) = (0, 0, ox0, out_plane.saturating_sub(j0).min(LANES));
                while p < end {
                    let n = (ow - ox).min(end - p);
                    c |= bits(p + lo.saturating_sub(ox), (p + hi.saturating_sub(ox)).min(p + n));
                    p += n;
                    ox = 0;
                }
                c
            }
        };
        // The guarantee, checked on the lowest and highest lane of a mask: once for the whole
        // group (which covers each block's lanes), and block by block only if that fails.
        let inside = |m: u64, base: isize, len: usize| {
            m == 0 || {
                let (lo, hi) = (base + m.trailing_zeros() as isize, base + 63 - m.leading_zeros() as isize);
                lo >= 0 && (hi as usize) < len
            }
        };
        let blocks = |v: u64, base: isize, len: usize| {
            if inside(v, base, len) {
                return v;
            }
            (0..TB).fold(0, |a, k| {
                let b = v & 0xffff << (16 * k);
                if inside(b, base, len) {
                    a | b
                } else {
                    a
                }
            })
        };
        let st = blocks(st, j0 as isize, out_plane);
        for (k, s) in store.iter_mut().enumerate() {
            *s = (st >> (16 * k)) as u16;
        }
        let run = self.run;
        let win = &mut rest[TB..];
        for (ky, (dr, &(lo, hi))) in self.d[..taps].chunks_exact(kw).zip(&self.rows).enumerate() {
            // Kernel row `ky` is inside for the positions of one run of whole output rows.
            let row = bits(lane(lo), lane(hi));
            let mut need = 0u128;
            for (kx, &dt) in dr.iter().enumerate() {
                let v = blocks(row & col(kx), j0 as isize + dt, in_plane);
                let t = ky * kw + kx;
                for k in 0..TB {
                    masks[k * taps + t] = (v >> (16 * k)) as u16;
                }
                need |= u128::from(v) << kx;
            }
            // Window `q` of kernel row `ky` is the 16 input positions from `j0 + 16q +
            // d[ky·run]`: block `k`'s tap `(ky, kx)` reads lanes `kx ..` of windows `k` and
            // `k + 1` (its lane `i` is lane `i + kx` of the pair). A window loads exactly the
            // lanes some masked-in tap reads, so the tap masks' guarantee covers its loads.
            if run > 0 {
                for (q, w) in win[ky * (TB + 1)..(ky + 1) * (TB + 1)].iter_mut().enumerate() {
                    *w = (need >> (16 * q)) as u16;
                }
            }
        }
    }

    /// [`Taps::work_out`] block by block: the definition its 64-lane masks are tested against.
    #[cfg(test)]
    fn work_out_blocks(&mut self, g: &Geom, j0: usize) {
        let (taps, in_plane, out_plane) = (self.taps, self.in_plane, self.out_plane);
        // Lanes `lo .. hi` of a block.
        let bits = |lo: usize, hi: usize| if hi > lo { ((1u32 << hi) - (1u32 << lo)) as u16 } else { 0 };
        let (ow, e) = (g.ow.max(1), self.entry());
        let ent = &mut self.pool[self.cur..self.cur + e];
        let (masks, store) = ent.split_at_mut(TB * taps);
        // Output column of the block's first position, advanced block by block.
        let mut ox = j0 % ow;
        for k in 0..TB {
            // Lanes whose kernel row `ky` / column `kx` lies inside the input, one run of
            // lanes along an output row at a time.
            let (mut rows, mut cols) = ([0u16; MAX_TAPS], [0u16; MAX_TAPS]);
            let (start, end) = (j0 + 16 * k, (j0 + 16 * k + 16).min(out_plane));
            let st = bits(0, end.saturating_sub(start));
            // Kernel row `ky` is inside for the positions of one run of whole output rows.
            let lane = |v: u32| (v as usize).clamp(start, end.max(start)) - start;
            for (r, &(lo, hi)) in rows.iter_mut().zip(&self.rows).take(g.kh) {
                *r = bits(lane(lo), lane(hi));
            }
            // Lanes past `end` are left to the row masks (empty there).
            if let Some(pat) = &self.colpat {
                for (c, &p) in cols.iter_mut().zip(pat).take(g.kw) {
                    *c = (p >> ox) as u16;
                }
                ox = (ox + 16) % ow;
            } else {
                let mut p = start;
                while p < end {
                    let (a, n) = (p - start, (ow - ox).min(end - p));
                    for (c, &(lo, hi)) in cols.iter_mut().zip(&self.cols).take(g.kw) {
                        *c |= bits(a + (lo as usize).saturating_sub(ox), (a + (hi as usize).saturating_sub(ox)).min(a + n));
                    }
                    p += n;
                    ox += n;
                    if ox == ow {
                        ox = 0;
                    }
                }
            }
            // The guarantee, checked on the lowest and highest lane of every mask.
            let inside = |m: u16, base: isize, len: usize| {
                m == 0 || {
                    let (lo, hi) = (base + m.trailing_zeros() as isize, base + 15 - m.leading_zeros() as isize);
                    lo >= 0 && (hi as usize) < len
                }
            };
            let at = (j0 + 16 * k) as isize;
            store[k] = if inside(st, at, out_plane) { st } else { 0 };
            // Tap `t` is kernel row `t div kw`, column `t mod kw`. When every lane of the block
            // reads inside the plane under every tap, the check holds for every mask.
            let kw = g.kw.max(1);
            let all_in = at + self.dmin >= 0 && at + 15 + self.dmax < in_plane as isize;
            for ((mr, dr), &r) in masks[k * taps..(k + 1) * taps].chunks_exact_mut(kw).zip(self.d[..taps].chunks_exact(kw)).zip(&rows) {
                for ((m, &dt), &c) in mr.iter_mut().zip(dr).zip(&cols) {
                    let v = r & c;
                    *m = if all_in || inside(v, at + dt, in_plane) { v } else { 0 };
                }
            }
        }
        // Window `q` of kernel row `r` is the 16 input positions from `j0 + 16q + d[r·run]`:
        // block `k`'s tap `(r, kx)` reads lanes `kx ..` of windows `k` and `k + 1` (its lane
        // `i` is lane `i + kx` of the pair). A window loads exactly the lanes some masked-in tap
        // reads, so the tap masks' guarantee covers its loads.
        let run = self.run;
        if run > 0 {
            let (masks, rest) = ent.split_at_mut(TB * taps);
            let win = &mut rest[TB..];
            win.fill(0);
            for (r, wr) in win.chunks_exact_mut(TB + 1).enumerate() {
                for k in 0..TB {
                    let need = (0..run).fold(0u32, |a, kx| a | (masks[k * taps + r * run + kx] as u32) << kx);
                    wr[k] |= need as u16;
                    wr[k + 1] |= (need >> 16) as u16;
                }
            }
        }
    }

    /// Taps per filter.
    #[inline]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(super) fn taps(&self) -> usize {
        self.taps
    }

    /// The activation each output goes through as it is stored.
    #[inline]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(super) fn act(&self) -> Activation {
        self.act
    }

    /// First position of the group.
    #[inline]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(super) fn j0(&self) -> usize {
        self.j0
    }

    /// Input offset of each tap.
    #[inline]
    pub(super) fn d(&self) -> &[isize] {
        &self.d[..self.taps]
    }

    /// Lanes of block `k` that tap `t` reads.
    #[inline]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(super) fn mask(&self, k: usize, t: usize) -> u16 {
        self.masks()[k * self.taps + t]
    }

    /// Every block's tap masks, block-major: `TB · taps` values, block `k`'s tap `t` at
    /// `k · taps + t`.
    #[inline]
    pub(super) fn masks(&self) -> &[u16] {
        &self.pool[self.cur..self.cur + TB * self.taps]
    }

    /// Taps per kernel row when [`Taps::windows`] applies, else 0.
    #[inline]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(super) fn run(&self) -> usize {
        self.run
    }

    /// When [`Taps::run`] is not 0: per kernel row `r`, the lanes to load of its `TB + 1`
    /// windows (window `q` at `r · (TB + 1) + q`, starting at input position
    /// `j0 + 16q + d[r · run]`); every loaded lane lies inside the input plane. Block `k`'s tap
    /// `(r, kx)` is then lanes `kx .. kx + 16` of windows `k`, `k + 1`, in its mask's lanes.
    #[inline]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(super) fn windows(&self) -> &[u16] {
        let at = self.cur + TB * (self.taps + 1);
        &self.pool[at..at + self.taps.checked_div(self.run).map_or(0, |kh| (TB + 1) * kh)]
    }

    /// Lanes of each block that are output positions.
    #[inline]
    pub(super) fn store(&self) -> [u16; TB] {
        let at = self.cur + TB * self.taps;
        let mut st = [0; TB];
        st.copy_from_slice(&self.pool[at..at + TB]);
        st
    }

    /// Floats per input and per output channel plane.
    #[inline]
    pub(super) fn planes(&self) -> (usize, usize) {
        (self.in_plane, self.out_plane)
    }

    /// Filters a [`Micro::conv_taps`] call on these slices covers (every slice long enough
    /// for all of them; none when `x` holds fewer than `cin` input planes).
    #[inline]
    pub(super) fn filters(&self, x: &[f32], cin: usize, w: &[f32], b: &[f32], out: &[f32]) -> usize {
        if x.len() < cin * self.in_plane {
            return 0;
        }
        let n = b.len().min(w.len().checked_div(cin * self.taps).unwrap_or(0));
        n.min(out.len().checked_div(self.out_plane).unwrap_or(0))
    }

    /// Channels a call on these slices covers (every slice long enough for all of them).
    #[inline]
    pub(super) fn channels(&self, x: &[f32], w: &[f32], b: &[f32], out: &[f32]) -> usize {
        let n = b.len().min(w.len() / self.taps.max(1));
        let n = n.min(x.len().checked_div(self.in_plane).unwrap_or(0));
        n.min(out.len().checked_div(self.out_plane).unwrap_or(0))
    }
}

/// The definition the SIMD versions of [`Micro::dw_taps`] follow: for channel `c` below
/// [`Taps::channels`] and each stored lane, `out = act(b[c] + Σ_t w[c·taps + t] · v_t)` in `t`
/// order, each term fused into the sum (one rounding: `fma(w, v, sum)`), with `v_t` the input
/// value of tap `t` in its masked-in lanes and 0 in the others, and `act` the [`Taps`]'
/// activation.
#[cfg_attr(not(test), allow(dead_code))]
pub(super) fn dw_taps_scalar(t: &Taps, x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
    let n = t.channels(x, w, b, out);
    let (taps, (ip, op)) = (t.taps, t.planes());
    for c in 0..n {
        let (xc, wc) = (&x[c * ip..(c + 1) * ip], &w[c * taps..(c + 1) * taps]);
        for (k, &st) in t.store().iter().enumerate() {
            for i in (0..16).filter(|i| st >> i & 1 == 1) {
                let j = t.j0 + 16 * k + i;
                let mut acc = b[c];
                for (tp, (&wv, &dt)) in wc.iter().zip(t.d()).enumerate() {
                    let v = if t.mask(k, tp) >> i & 1 == 1 { xc.get((j as isize + dt) as usize).copied().unwrap_or(0.0) } else { 0.0 };
                    acc = libm::fmaf(wv, v, acc);
                }
                out[c * op + j] = t.act.apply(acc);
            }
        }
    }
}

/// Floats of filters [`planes`] decodes at a time.
const PLANE_W: usize = 1024;

/// [`depthwise`] for layers with a [`PlaneLayout`]: groups of `TB · 16` output positions, each
/// summed over every channel with masked loads, from the input planes in place (stride 1) or
/// from their stride phases copied to the stack a few channels at a time.
#[inline(always)]
fn planes<M: Micro>(mk: M, g: &Geom, pl: PlaneLayout, a: &Args<'_>, out: &mut [f32]) -> Result<(), OpError> {
    let (taps, in_plane, plane) = (g.kh * g.kw, g.h * g.w, g.oh * g.ow);
    if a.x.len() < g.m * in_plane || a.w.len() < g.m * taps || out.len() < g.m * plane || g.m > g.c {
        return Err(OpError::ShapeMismatch);
    }
    // 3 × 3 "same" layers at stride 1 with f32 filters (the codebook path decodes its own):
    // a kernel for the whole planes where the CPU has one, the bias read as f32 (f16 ones, as
    // `sprig compress` writes beside codebooks, decoded first).
    let same3 = (g.kh, g.kw, g.dh, g.dw, g.sh, g.sw, g.pt, g.pl, g.oh, g.ow) == (3, 3, 1, 1, 1, 1, 1, 1, g.h, g.w);
    if let (true, View::F32(w)) = (same3 && pl.s == 1, a.w) {
        let mut decoded = None;
        let b = match super::conv::native_bias(a.bias, g.m, &mut decoded) {
            None => Some(None),
            Some(View::F32(b)) => Some(Some(b)),
            _ => None,
        };
        if let Some(b) = b {
            if mk.dw3_same(g.h, g.w, a.x, w, b, a.act, out, g.m) {
                return Ok(());
            }
        }
    }
    // f32 filters and biases are read in place; others are decoded a chunk at a time into
    // buffers cleared only then (4 KiB cleared and copied per call was 6 % of a kws layer).
    let (mut wb, mut bb) = (None, None);
    const NO_BIAS: [f32; PLANE_W / 16] = [0.0; PLANE_W / 16];
    // The phase buffer (32 KiB to clear) only for strided layers.
    let mut ph_store;
    let ph: &mut [f32] = if pl.s == 1 {
        &mut []
    } else {
        ph_store = [0.0f32; PHASE_BUF];
        &mut ph_store
    };
    // Channels per chunk: their filters fit `wb`, and at stride ≥ 2 their phases fit `ph`.
    let per = (PLANE_W / taps).min(NO_BIAS.len());
    let per = if pl.s == 1 { per } else { per.min(PHASE_BUF / pl.in_plane.max(1)) };
    // The activation is applied as each output is stored.
    let mut t = Taps::new(g, pl, a.act);
    let mut c0 = 0;
    while c0 < g.m {
        let n = per.min(g.m - c0);
        let wc: &[f32] = match a.w {
            View::F32(w) => w.get(c0 * taps..(c0 + n) * taps).ok_or(OpError::ShapeMismatch)?,
            _ => {
                let wb = wb.get_or_insert([0.0f32; PLANE_W]);
                a.w.read_into(c0 * taps, &mut wb[..n * taps]);
                &wb[..n * taps]
            }
        };
        let bc: &[f32] = match a.bias {
            None => &NO_BIAS[..n],
            Some(View::F32(b)) => b.get(c0..c0 + n).ok_or(OpError::ShapeMismatch)?,
            Some(bv) => {
                let bb = bb.get_or_insert([0.0f32; PLANE_W / 16]);
                bv.read_into(c0, &mut bb[..n]);
                &bb[..n]
            }
        };
        let xc = &a.x[c0 * in_plane..(c0 + n) * in_plane];
        let x = if pl.s == 1 {
            xc
        } else {
            for (src, dst) in xc.chunks_exact(in_plane).zip(ph.chunks_exact_mut(pl.in_plane)) {
                split_planes(mk, g, pl, src, dst);
            }
            &ph[..n * pl.in_plane]
        };
        let o = &mut out[c0 * plane..(c0 + n) * plane];
        let mut j0 = 0;
        while j0 < plane {
            t.at(g, j0);
            mk.dw_taps(&t, x, wc, bc, o);
            j0 += 16 * TB;
        }
        c0 += n;
    }
    Ok(())
}

/// Most input channels of a strided Conv [`shared`] takes: measured against the tiled product
/// on the real models' layers (A/B in one process, bit-identical outputs), it wins up to 16
/// input channels (ResNet-8's 16 → 16 3 × 3 layers 0.95 of the time, MNIST's 8 → 16 5 × 5
/// layer 0.81) and loses on ResNet-8's 32 → 64 stride-2 layer (1.09).
const SHARED_CG: usize = 16;
/// [`SHARED_CG`] for stride-1 Convs. Since full lane masks load without a mask register
/// (`x86::masked_load`), [`shared`] also wins on ResNet-8's 32 → 32 and 64 → 64 3 × 3 layers
/// (criterion A/B on an AMD EPYC Zen 4, five rounds: 0.88 and 0.96 of the tiled product's time;
/// the whole model 0.96). Before that change it lost there (1.08 on another AVX-512 VM).
const SHARED_CG_S1: usize = 64;
/// Fewest filters for which [`shared`] beats the stem kernels ([`S2::stem`], [`S2::stem1`])
/// where those apply too: with fewer, each tap's loads serve too few multiply-adds. Measured
/// (A/B in one process): MNIST's 1-channel 5 × 5 stem with 8 filters 1.16× the stem kernel's
/// time, with 12 0.97×; ResNet-8's 3-channel 3 × 3 stem with 11 filters 0.85×, 12 0.68×, 16
/// 0.63–0.68×.
pub(super) const SHARED_M: usize = 11;

/// The [`PlaneLayout`] of a Conv of one group (every filter reads every input channel) of at
/// most [`SHARED_CG`] input channels ([`SHARED_CG_S1`] at stride 1) and more than one tap,
/// whose input channels' phases (at stride ≥ 2) fit [`PHASE_BUF`] together: kws_dscnn's 10 × 4
/// stride-2 first layer (5-wide output rows leave most lanes of a row kernel empty, and a
/// gathered panel per pixel tile costs more than the products), ResNet-8's stem and 16-channel
/// layers. Its filters all read the same planes, so [`Micro::conv_taps`] loads each tap's
/// values once for several filters.
pub(super) fn shared_layout(g: &Geom) -> Option<PlaneLayout> {
    let most = if (g.sh, g.sw) == (1, 1) { SHARED_CG_S1 } else { SHARED_CG };
    if g.cg != g.c || g.mg != g.m || g.c == 0 || g.c > most || g.m == 0 || g.kh * g.kw < 2 {
        return None;
    }
    let pl = geom_layout(g)?;
    (pl.s == 1 || g.c * pl.in_plane <= PHASE_BUF).then_some(pl)
}

/// Filters [`shared`] decodes the bias of at a time.
const SHARED_F: usize = 256;

/// A Conv of one group read through `pl` ([`shared_layout`]) with f32 weights `w`
/// (`[m, c, kh, kw]`): groups of `TB · 16` output positions, every filter's sum over the input
/// channels' taps, from the input planes in place (stride 1) or from their stride phases copied
/// to the stack.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn shared<M: Micro>(
    mk: M,
    g: &Geom,
    pl: PlaneLayout,
    x: &[f32],
    w: &[f32],
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
) -> Result<(), OpError> {
    let (k, in_plane, plane) = (g.c * g.kh * g.kw, g.h * g.w, g.oh * g.ow);
    let (Some(x), Some(w), Some(out)) = (x.get(..g.c * in_plane), w.get(..g.m * k), out.get_mut(..g.m * plane)) else {
        return Err(OpError::ShapeMismatch);
    };
    if pl.s == 1 {
        return shared_in(mk, g, pl, x, w, bias, act, out);
    }
    // The phases on the stack, only as many floats cleared as the layer needs (in five sizes).
    let len = g.c * pl.in_plane;
    let run = |buf: &mut [f32]| {
        let buf = &mut buf[..len];
        for (src, dst) in x.chunks_exact(in_plane).zip(buf.chunks_exact_mut(pl.in_plane)) {
            split_planes(mk, g, pl, src, dst);
        }
        shared_in(mk, g, pl, buf, w, bias, act, out)
    };
    match len {
        0..=512 => zeroed::<512, _>(run),
        513..=1024 => zeroed::<1024, _>(run),
        1025..=2048 => zeroed::<2048, _>(run),
        2049..=4096 => zeroed::<4096, _>(run),
        _ => zeroed::<PHASE_BUF, _>(run),
    }
}

/// [`shared`] on its input planes or phases `x`, `w` and `out` already cut to the layer.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn shared_in<M: Micro>(
    mk: M,
    g: &Geom,
    pl: PlaneLayout,
    x: &[f32],
    w: &[f32],
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
) -> Result<(), OpError> {
    let (k, plane) = (g.c * g.kh * g.kw, g.oh * g.ow);
    let mut t = Taps::new(g, pl, act);
    let mut bb = [0.0f32; SHARED_F];
    let mut f0 = 0;
    while f0 < g.m {
        let n = SHARED_F.min(g.m - f0);
        match bias {
            Some(bv) => bv.read_into(f0, &mut bb[..n]),
            None => bb.fill(0.0),
        }
        let (wf, o) = (&w[f0 * k..(f0 + n) * k], &mut out[f0 * plane..(f0 + n) * plane]);
        let mut j0 = 0;
        while j0 < plane {
            t.at(g, j0);
            mk.conv_taps(&t, x, g.c, wf, &bb[..n], o);
            j0 += 16 * TB;
        }
        f0 += n;
    }
    Ok(())
}

/// The definition the SIMD versions of [`Micro::conv_taps`] follow: for filter `f` below
/// [`Taps::filters`] and each stored lane, `out = act(b[f] + Σ_{c, t} w[f·k + c·taps + t] · v_{c,t})`
/// (`k = cin · taps`) in `(c, t)` order, each term fused into the sum, with `v_{c,t}` the value
/// of tap `t` in input plane `c` (at `c · in_plane`) in its masked-in lanes and 0 in the others.
pub(super) fn conv_taps_scalar(t: &Taps, x: &[f32], cin: usize, w: &[f32], b: &[f32], out: &mut [f32]) {
    let n = t.filters(x, cin, w, b, out);
    let (taps, (ip, op)) = (t.taps, t.planes());
    let k = cin * taps;
    for f in 0..n {
        for (blk, &st) in t.store().iter().enumerate() {
            for i in (0..16).filter(|i| st >> i & 1 == 1) {
                let j = t.j0 + 16 * blk + i;
                let mut acc = b[f];
                for c in 0..cin {
                    for (tp, &dt) in t.d().iter().enumerate() {
                        let v = if t.mask(blk, tp) >> i & 1 == 1 {
                            x.get(((c * ip + j) as isize + dt) as usize).copied().unwrap_or(0.0)
                        } else {
                            0.0
                        };
                        acc = libm::fmaf(w[f * k + c * taps + tp], v, acc);
                    }
                }
                out[f * op + j] = t.act.apply(acc);
            }
        }
    }
}

/// Geometry of a layer read in place by [`Micro::dw_s2`] (a stride-2 depthwise layer:
/// multiplier 1, no dilation, at most [`MAX_TAPS`] taps) or [`Micro::conv_s2`] (a stem, at
/// stride 2 or 1): output `(oy, ox)` of a channel reads input `(s·oy + ky - pt, s·ox + kx - pl)`
/// for tap `(ky, kx)`, `s` the stride, 0 outside the plane.
#[derive(Clone, Copy, Debug)]
pub(super) struct S2 {
    /// The stride (both axes): 2, or 1 for stride-1 stems ([`S2::stem1`]).
    pub(super) s: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) pt: usize,
    pub(super) pl: usize,
    /// Input channels each filter reads (1 for depthwise layers).
    pub(super) cg: usize,
}

/// Most input channels of a Conv that [`Micro::conv_s2`] takes (network stems: RGB or grey
/// images); wider layers have enough reduction depth for the tiled product.
const STEM_CG: usize = 4;
/// Widest kernel of a stride-1 stem ([`S2::stem1`]).
const STEM1_KW: usize = 7;
/// Narrowest output rows of a stride-1 stem: rows fill at least 12 of a register's 16 lanes
/// (narrower ones, hello_edge_cnn's 7, stay with the tiled product's pixel tiles).
const STEM1_OW: usize = 12;

impl S2 {
    /// `Some` for stride-2 depthwise layers whose offsets fit `isize` comfortably.
    pub(super) fn of(g: &Geom) -> Option<S2> {
        let taps = g.kh * g.kw;
        let fits = [g.h, g.w, g.oh, g.ow, g.pt, g.pl, g.kh, g.kw].iter().all(|&v| v < 1 << 24) && g.h * g.w < 1 << 30;
        (g.cg == 1
            && g.mg == 1
            && (g.sh, g.sw, g.dh, g.dw) == (2, 2, 1, 1)
            && taps > 0
            && taps <= MAX_TAPS
            && g.oh > 0
            && g.ow > 0
            && g.h > 0
            && g.w > 0
            && fits)
            .then_some(S2 { s: 2, h: g.h, w: g.w, oh: g.oh, ow: g.ow, kh: g.kh, kw: g.kw, pt: g.pt, pl: g.pl, cg: 1 })
    }

    /// `Some` for stride-2, group-1 Convs of at most [`STEM_CG`] input channels and kernels
    /// at most 3 wide (the stems of image networks), whose offsets fit `isize` comfortably.
    pub(super) fn stem(g: &Geom) -> Option<S2> {
        let fits = [g.h, g.w, g.oh, g.ow, g.pt, g.pl, g.kh].iter().all(|&v| v < 1 << 24) && g.h * g.w < 1 << 30;
        (g.mg == g.m
            && g.cg == g.c
            && super::gemm::applies(g)
            && (1..=STEM_CG).contains(&g.cg)
            && (g.sh, g.sw, g.dh, g.dw) == (2, 2, 1, 1)
            && (1..=3).contains(&g.kw)
            && g.kh > 0
            && g.kh * g.kw <= MAX_TAPS
            && g.m > 0
            && g.oh > 0
            && g.ow > 0
            && g.h > 0
            && g.w > 0
            && fits)
            .then_some(S2 { s: 2, h: g.h, w: g.w, oh: g.oh, ow: g.ow, kh: g.kh, kw: g.kw, pt: g.pt, pl: g.pl, cg: g.cg })
    }

    /// `Some` for stride-1, group-1 Convs of at most [`STEM_CG`] input channels, no dilation,
    /// kernels at most [`STEM1_KW`] wide and output rows at least [`STEM1_OW`] wide (MNIST's
    /// and ResNet-8's first layers), whose offsets fit `isize` comfortably: few input channels
    /// give the tiled product a shallow reduction over a gathered panel per pixel tile, while
    /// these read each input row once per 16 outputs for eight filters and two output rows.
    pub(super) fn stem1(g: &Geom) -> Option<S2> {
        let fits = [g.h, g.w, g.oh, g.ow, g.pt, g.pl, g.kh, g.kw].iter().all(|&v| v < 1 << 24) && g.h * g.w < 1 << 30;
        (g.mg == g.m
            && g.cg == g.c
            && super::gemm::applies(g)
            && (1..=STEM_CG).contains(&g.cg)
            && (g.sh, g.sw, g.dh, g.dw) == (1, 1, 1, 1)
            && (1..=STEM1_KW).contains(&g.kw)
            && g.kh > 0
            && g.kh * g.kw <= MAX_TAPS
            && g.m > 0
            && g.oh > 0
            && g.ow >= STEM1_OW
            && g.h > 0
            && g.w > 0
            && fits)
            .then_some(S2 { s: 1, h: g.h, w: g.w, oh: g.oh, ow: g.ow, kh: g.kh, kw: g.kw, pt: g.pt, pl: g.pl, cg: g.cg })
    }

    /// `Some` for stride-1 depthwise layers (multiplier 1, no dilation, at most [`MAX_TAPS`]
    /// taps) whose offsets fit `isize` comfortably: read in place by [`Micro::dw_s1`].
    pub(super) fn dw1(g: &Geom) -> Option<S2> {
        let fits = [g.h, g.w, g.oh, g.ow, g.pt, g.pl, g.kh, g.kw].iter().all(|&v| v < 1 << 24) && g.h * g.w < 1 << 30;
        (g.cg == 1
            && g.mg == 1
            && (g.sh, g.sw, g.dh, g.dw) == (1, 1, 1, 1)
            && g.kh * g.kw > 0
            && g.kh * g.kw <= MAX_TAPS
            && g.oh > 0
            && g.ow > 0
            && g.h > 0
            && g.w > 0
            && fits)
            .then_some(S2 { s: 1, h: g.h, w: g.w, oh: g.oh, ow: g.ow, kh: g.kh, kw: g.kw, pt: g.pt, pl: g.pl, cg: 1 })
    }

    /// Filters a [`Micro::conv_s2`] call on these slices covers (every slice long enough).
    #[inline]
    pub(super) fn filters(&self, x: &[f32], w: &[f32], b: &[f32], out: &[f32]) -> usize {
        if x.len() < self.cg * self.h * self.w {
            return 0;
        }
        let n = b.len().min(w.len() / (self.cg * self.kh * self.kw).max(1));
        n.min(out.len().checked_div(self.oh * self.ow).unwrap_or(0))
    }

    /// Channels a call on these slices covers (every slice long enough for all of them).
    #[inline]
    pub(super) fn channels(&self, x: &[f32], w: &[f32], b: &[f32], out: &[f32]) -> usize {
        let n = b.len().min(w.len() / (self.kh * self.kw).max(1));
        let n = n.min(x.len().checked_div(self.h * self.w).unwrap_or(0));
        n.min(out.len().checked_div(self.oh * self.ow).unwrap_or(0))
    }
}

/// The definition the SIMD versions of [`Micro::dw_s2`] follow: for channel `c` below
/// [`S2::channels`] and each output, `out = act(b[c] + Σ w[c·taps + t] · v_t)` summed in tap
/// order `(ky, kx)` (multiply, then add), `v_t` the input value or 0 in the padding.
#[cfg_attr(not(test), allow(dead_code))]
pub(super) fn dw_s2_scalar(s: &S2, x: &[f32], w: &[f32], b: &[f32], act: Activation, out: &mut [f32]) {
    let n = s.channels(x, w, b, out);
    let (taps, ip, op) = (s.kh * s.kw, s.h * s.w, s.oh * s.ow);
    for c in 0..n {
        let (xc, wc) = (&x[c * ip..(c + 1) * ip], &w[c * taps..(c + 1) * taps]);
        for oy in 0..s.oh {
            for ox in 0..s.ow {
                let mut acc = b[c];
                for (t, &wv) in wc.iter().enumerate() {
                    let (iy, ix) = ((2 * oy + t / s.kw).checked_sub(s.pt), (2 * ox + t % s.kw).checked_sub(s.pl));
                    let v = match (iy, ix) {
                        (Some(iy), Some(ix)) if iy < s.h && ix < s.w => xc[iy * s.w + ix],
                        _ => 0.0,
                    };
                    acc += wv * v;
                }
                out[c * op + oy * s.ow + ox] = act.apply(acc);
            }
        }
    }
}

/// The definition the SIMD versions of [`Micro::dw_s1`] follow: for channel `c` below
/// [`S2::channels`] and each output, `out = act(b[c] + Σ w[c·taps + t] · v_t)` in tap order
/// `(ky, kx)`, each term fused into the sum (`fma(w, v, sum)`), `v_t` the input value or 0 in
/// the padding: [`dw_taps_scalar`]'s sums, so a layer's outputs do not depend on which of the
/// two kernels runs it.
#[cfg_attr(not(test), allow(dead_code))]
pub(super) fn dw_s1_scalar(s: &S2, x: &[f32], w: &[f32], b: &[f32], act: Activation, out: &mut [f32]) {
    let n = s.channels(x, w, b, out);
    let (taps, ip, op) = (s.kh * s.kw, s.h * s.w, s.oh * s.ow);
    for c in 0..n {
        let (xc, wc) = (&x[c * ip..(c + 1) * ip], &w[c * taps..(c + 1) * taps]);
        for oy in 0..s.oh {
            for ox in 0..s.ow {
                let mut acc = b[c];
                for (t, &wv) in wc.iter().enumerate() {
                    let (iy, ix) = ((oy + t / s.kw).checked_sub(s.pt), (ox + t % s.kw).checked_sub(s.pl));
                    let v = match (iy, ix) {
                        (Some(iy), Some(ix)) if iy < s.h && ix < s.w => xc[iy * s.w + ix],
                        _ => 0.0,
                    };
                    acc = libm::fmaf(wv, v, acc);
                }
                out[c * op + oy * s.ow + ox] = act.apply(acc);
            }
        }
    }
}

/// The definition the SIMD versions of [`Micro::conv_s2`] follow: for filter `f` below
/// [`S2::filters`] and each output, `out = act(b[f] + Σ w[f, c, ky, kx] · v)` summed in
/// `(c, ky, kx)` order with fused multiply-adds, `v` the input value or 0 in the padding: the
/// sums of the tiled product ([`super::gemm::conv`]), bit for bit.
#[cfg_attr(not(test), allow(dead_code))]
pub(super) fn conv_s2_scalar(s: &S2, x: &[f32], w: &[f32], b: &[f32], act: Activation, out: &mut [f32]) {
    let n = s.filters(x, w, b, out);
    let (taps, ip, op) = (s.kh * s.kw, s.h * s.w, s.oh * s.ow);
    for f in 0..n {
        for oy in 0..s.oh {
            for ox in 0..s.ow {
                let mut acc = b[f];
                for c in 0..s.cg {
                    for t in 0..taps {
                        let (iy, ix) = ((s.s * oy + t / s.kw).checked_sub(s.pt), (s.s * ox + t % s.kw).checked_sub(s.pl));
                        let v = match (iy, ix) {
                            (Some(iy), Some(ix)) if iy < s.h && ix < s.w => x[c * ip + iy * s.w + ix],
                            _ => 0.0,
                        };
                        acc = libm::fmaf(w[(f * s.cg + c) * taps + t], v, acc);
                    }
                }
                out[f * op + oy * s.ow + ox] = act.apply(acc);
            }
        }
    }
}

/// A stem Conv ([`S2::stem`], [`S2::stem1`]) of one batch item with f32 weights, on CPUs with
/// [`Micro::conv_s2`]: the input planes read in place, 256 filters at a time.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn stem<M: Micro>(
    mk: M,
    s: S2,
    m: usize,
    x: &[f32],
    w: &[f32],
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
) -> Result<(), OpError> {
    let (k, plane) = (s.cg * s.kh * s.kw, s.oh * s.ow);
    if x.len() < s.cg * s.h * s.w || w.len() < m * k || out.len() < m * plane {
        return Err(OpError::ShapeMismatch);
    }
    let mut bb = [0.0f32; 256];
    let mut f0 = 0;
    while f0 < m {
        let n = bb.len().min(m - f0);
        match bias {
            Some(bv) => bv.read_into(f0, &mut bb[..n]),
            None => bb.fill(0.0),
        }
        mk.conv_s2(&s, x, &w[f0 * k..(f0 + n) * k], &bb[..n], act, &mut out[f0 * plane..(f0 + n) * plane]);
        f0 += n;
    }
    Ok(())
}

/// [`depthwise`] for stride-2 layers on CPUs with [`Micro::dw_s2`] and stride-1 ones
/// ([`S2::dw1`]) on CPUs with [`Micro::dw_s1`]: the input planes read in place, no phase copies;
/// filters decoded a chunk of channels at a time.
#[inline(always)]
fn in_place<M: Micro>(mk: M, g: &Geom, s: S2, a: &Args<'_>, out: &mut [f32]) -> Result<(), OpError> {
    let (taps, in_plane, plane) = (s.kh * s.kw, s.h * s.w, s.oh * s.ow);
    if a.x.len() < g.m * in_plane || a.w.len() < g.m * taps || out.len() < g.m * plane || g.m > g.c {
        return Err(OpError::ShapeMismatch);
    }
    let mut wb = [0.0f32; PLANE_W];
    let mut bb = [0.0f32; PLANE_W / 16];
    let per = (PLANE_W / taps).min(bb.len());
    let mut c0 = 0;
    while c0 < g.m {
        let n = per.min(g.m - c0);
        a.w.read_into(c0 * taps, &mut wb[..n * taps]);
        match a.bias {
            Some(bv) => bv.read_into(c0, &mut bb[..n]),
            None => bb.fill(0.0),
        }
        let (xc, o) = (&a.x[c0 * in_plane..(c0 + n) * in_plane], &mut out[c0 * plane..(c0 + n) * plane]);
        if s.s == 1 {
            mk.dw_s1(&s, xc, &wb[..n * taps], &bb[..n], a.act, o);
        } else {
            mk.dw_s2(&s, xc, &wb[..n * taps], &bb[..n], a.act, o);
        }
        c0 += n;
    }
    Ok(())
}

/// Narrowest output rows the AVX2 tier's row kernel takes at stride 1 ([`Micro::dw_s1_ready`]):
/// narrower planes keep [`planes`], whose position groups span rows (VWW's 12 × 12 layer, AVX2:
/// 9.6 µs there against 13.3 µs in rows).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(super) const DW1_OW: usize = 16;
/// The same for the AVX-512 3 × 3 row kernel (criterion, the two kernels on the same layer:
/// 64 × 12 × 12 4.2 against 6.4 µs in position groups; rows of 6 and 5 outputs, a third of a
/// register, 3.04 against 2.92 and 5.65 against 3.91 µs).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(super) const DW1_OW_AVX512: usize = 12;

/// [`split_phases`] on `mk`: at stride 2 with phase rows as wide as the input's halves
/// (`ow = ⌈w / 2⌉`, "same" padding), the same layout as [`Micro::split2`]'s, which this CPU
/// may run in SIMD (kws's first layer: 49 rows of 10 split one value at a time were a tenth of
/// the layer); it also writes zeros in the cells past the input, which no kernel reads.
#[inline(always)]
fn split_planes<M: Micro>(mk: M, g: &Geom, pl: PlaneLayout, src: &[f32], dst: &mut [f32]) {
    if pl.s == 2 && g.ow == g.w.div_ceil(2) && pl.phase_len == g.h.div_ceil(2) * g.ow {
        mk.split2(src, g.h, g.w, dst);
    } else {
        split_phases(g, pl, src, dst);
    }
}

/// Writes channel plane `src` (`h × w`) as its `s × s` stride phases into `dst`: phase
/// `(py, px)` row `ry` column `rx` holds input `(ry·s + py, rx·s + px)`, at
/// `(py·s + px)·phase_len + ry·ow + rx`. Cells outside the input are left as they are (the
/// kernel never reads them).
#[inline(always)]
fn split_phases(g: &Geom, pl: PlaneLayout, src: &[f32], dst: &mut [f32]) {
    let s = pl.s;
    // Values of phase column `px` per row for the first few phases, worked out once: no
    // division per row (a Taps layer is split per call).
    let mut lens = [0usize; 4];
    for (px, n) in lens.iter_mut().enumerate().take(s.min(g.w)) {
        *n = (g.w - px).div_ceil(s);
    }
    // Row `iy` lies in row `ry` of phase row `py` (`iy = ry·s + py`), counted along.
    let (mut py, mut ry) = (0, 0);
    for row in src.chunks_exact(g.w).take(g.h) {
        for px in 0..s.min(g.w) {
            let n = lens.get(px).copied().unwrap_or_else(|| (g.w - px).div_ceil(s));
            let at = (py * s + px) * pl.phase_len + ry * g.ow;
            let Some(d) = dst.get_mut(at..at + n) else { continue };
            if let (2, Some((last, body))) = (s, d.split_last_mut()) {
                // Pairs of a checked slice: no per-value bound test.
                for (v, p) in body.iter_mut().zip(row[px..].chunks_exact(2)) {
                    *v = p[0];
                }
                *last = row[px + 2 * body.len()];
            } else {
                for (i, v) in d.iter_mut().enumerate() {
                    *v = row[px + i * s];
                }
            }
        }
        (py, ry) = if py + 1 == s { (0, ry + 1) } else { (py + 1, ry) };
    }
}

/// `dst.copy_from_slice(src)` for the short rows of small planes, inline (a `memcpy` call per
/// row of a few values would cost more than the copy).
#[inline(always)]
pub(super) fn copy_short(dst: &mut [f32], src: &[f32]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (a, b) in (&mut d).zip(&mut s) {
        let b: [f32; 8] = b.try_into().unwrap_or([0.0; 8]);
        a.copy_from_slice(&b);
    }
    let (d, s) = (d.into_remainder(), s.remainder());
    let mut d = d.chunks_exact_mut(4);
    let mut s = s.chunks_exact(4);
    for (a, b) in (&mut d).zip(&mut s) {
        let b: [f32; 4] = b.try_into().unwrap_or([0.0; 4]);
        a.copy_from_slice(&b);
    }
    match (d.into_remainder(), s.remainder()) {
        ([a], [b]) => *a = *b,
        ([a0, a1], [b0, b1]) => (*a0, *a1) = (*b0, *b1),
        ([a0, a1, a2], [b0, b1, b2]) => (*a0, *a1, *a2) = (*b0, *b1, *b2),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::conv::Geom;
    use super::super::testutil::*;
    use crate::op::{ConvAttrs, Op};
    use crate::view::View;
    use proptest::prelude::*;

    /// [`super::split_planes`] through [`Micro::split2`] (stride 2, phase rows as wide as the
    /// input's halves) on every SIMD tier of this CPU: the phases
    /// [`super::split_phases`] writes, and zeros in the cells past the input, on every such
    /// plane up to 24 × 40.
    #[test]
    fn split_planes_equal_their_definition() {
        let Some(simd) = super::super::gemm::simd() else { return };
        let mut checked = 0;
        for h in 1usize..=24 {
            for wd in 1usize..=40 {
                for pads in [[1, 1, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 1]] {
                    let (xd, wdims) = ([1, 1, h, wd], [1, 1, 3, 3]);
                    if h + pads[0] + pads[2] < 3 || wd + pads[1] + pads[3] < 3 {
                        continue;
                    }
                    let attrs = conv_attrs(1, [2, 2], [1, 1], pads, 0);
                    let y = Op::Conv(attrs).infer(&[sh(&xd), sh(&wdims), sh(&wdims[..1])]).unwrap();
                    let g = Geom::new(&attrs, &sh(&xd), &sh(&wdims), &y);
                    let Some(pl) = super::geom_layout(&g).filter(|_| g.ow == wd.div_ceil(2)) else { continue };
                    let x = data(h * wd, (h * 100 + wd) as u64);
                    let mut want = vec![0.0f32; pl.in_plane];
                    super::split_phases(&g, pl, &x, &mut want);
                    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    let run = |f: &dyn Fn(&mut [f32])| {
                        let mut got = vec![f32::NAN; pl.in_plane];
                        f(&mut got);
                        bits(&got)
                    };
                    assert_eq!(run(&|o| super::split_planes(simd, &g, pl, &x, o)), bits(&want), "{h} × {wd} {pads:?}");
                    #[cfg(target_arch = "x86_64")]
                    if let Some(f) = super::super::x86::Fma::detect() {
                        assert_eq!(run(&|o| super::split_planes(f.avx2_only(), &g, pl, &x, o)), bits(&want), "{h} × {wd} {pads:?}");
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 500, "{checked} planes");
    }

    /// 3 × 3 depthwise layers at stride 2 and 1, which the AVX-512 kernels run through copies
    /// shaped at compile time (`dw_s2_narrow`, `dw_s2_packed`, `dw_s1_avx512`): every plane of
    /// 1–20 rows by 1–40 columns (rows of one, two and four per register, and one or more
    /// 16-output segments) and five paddings of up to 1 per side give the scalar definition's
    /// bits, on every SIMD tier.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn depthwise_3x3_equals_its_definition_on_every_small_plane() {
        let Some(f) = super::super::x86::Fma::detect() else { return };
        for stride in [1usize, 2] {
            for h in 1usize..=20 {
                for wd in 1usize..=40 {
                    for pads in [[0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1], [0, 1, 1, 0]] {
                        if h + pads[0] + pads[2] < 3 || wd + pads[1] + pads[3] < 3 {
                            continue;
                        }
                        let c = 3;
                        let (xd, wdims) = ([1, c, h, wd], [c, 1, 3, 3]);
                        let attrs = conv_attrs(c, [stride; 2], [1, 1], pads, (h + wd) as u8 % 3);
                        let y = Op::Conv(attrs).infer(&[sh(&xd), sh(&wdims), sh(&wdims[..1])]).unwrap();
                        let g = Geom::new(&attrs, &sh(&xd), &sh(&wdims), &y);
                        let seed = (h * 100 + wd) as u64;
                        let (x, w, b) = (data(xd.iter().product(), seed), data(9 * c, seed + 1), data(c, seed + 2));
                        let n = y.numel().unwrap();
                        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                        let mut want = vec![f32::NAN; n];
                        let s = if stride == 2 { super::S2::of(&g) } else { super::S2::dw1(&g) }.expect("a depthwise layer");
                        if stride == 2 {
                            super::dw_s2_scalar(&s, &x, &w, &b, attrs.act, &mut want);
                        } else {
                            super::dw_s1_scalar(&s, &x, &w, &b, attrs.act, &mut want);
                        }
                        for mk in [f, f.avx2_only()] {
                            let mut got = vec![f32::NAN; n];
                            if stride == 2 {
                                mk.dw_s2(&s, &x, &w, &b, attrs.act, &mut got);
                            } else {
                                mk.dw_s1(&s, &x, &w, &b, attrs.act, &mut got);
                            }
                            assert_eq!(bits(&got), bits(&want), "stride {stride}, {h} × {wd}, pads {pads:?}");
                        }
                    }
                }
            }
        }
    }

    /// The whole-plane 3 × 3 "same" kernel ([`Micro::dw3_same`]) against the stride-1
    /// definition bit for bit on every plane up to 20 × 16, with infinities and NaNs in the
    /// input (a side column's wrapped lanes must not leak them into a neighbour row).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn dw3_same_equals_its_definition_on_every_small_plane() {
        let Some(f) = super::super::x86::Fma::detect() else { return };
        // Under Miri (which checks every load stays inside the planes) a few planes with
        // interior and end halves; natively every plane up to 20 × 16.
        let (hs, wds, cs): (&[usize], &[usize], &[usize]) = if cfg!(miri) {
            (&[1, 3, 7], &[1, 5, 8, 15], &[2])
        } else {
            (
                &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
                &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
                &[1, 2, 5],
            )
        };
        for &h in hs {
            for &wd in wds {
                for &c in cs {
                    let (xd, wdims) = ([1, c, h, wd], [c, 1, 3, 3]);
                    let attrs = conv_attrs(c, [1, 1], [1, 1], [1, 1, 1, 1], (h + wd + c) as u8 % 3);
                    let y = Op::Conv(attrs).infer(&[sh(&xd), sh(&wdims), sh(&wdims[..1])]).unwrap();
                    let g = Geom::new(&attrs, &sh(&xd), &sh(&wdims), &y);
                    let seed = (h * 100 + wd + 7 * c) as u64;
                    let (mut x, w, b) = (data(xd.iter().product(), seed), data(9 * c, seed + 1), data(c, seed + 2));
                    if wd >= 3 && h >= 2 {
                        // First and last columns of some rows: read only through masked lanes
                        // of their neighbours' side taps.
                        x[wd - 1] = f32::INFINITY;
                        x[(h - 1) * wd] = f32::NAN;
                    }
                    let n = y.numel().unwrap();
                    // Every NaN as one (a NaN's sign and payload are not specified: Miri varies them).
                    let bits = |v: &[f32]| v.iter().map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() }).collect::<Vec<_>>();
                    let s = super::S2::dw1(&g).expect("a depthwise layer");
                    let mut want = vec![f32::NAN; n];
                    super::dw_s1_scalar(&s, &x, &w, &b, attrs.act, &mut want);
                    let mut want_nb = vec![f32::NAN; n];
                    super::dw_s1_scalar(&s, &x, &w, &vec![0.0; c], attrs.act, &mut want_nb);
                    for mk in [f, f.avx2_only()] {
                        let mut got = vec![f32::NAN; n];
                        if !mk.dw3_same(h, wd, &x, &w, Some(&b), attrs.act, &mut got, c) {
                            continue;
                        }
                        assert_eq!(bits(&got), bits(&want), "{h} × {wd}, {c} channels");
                        assert!(mk.dw3_same(h, wd, &x, &w, None, attrs.act, &mut got, c));
                        assert_eq!(bits(&got), bits(&want_nb), "{h} × {wd}, {c} channels, no bias");
                        // Short slices: refused, nothing written.
                        let mut short = vec![f32::NAN; n - 1];
                        assert!(!mk.dw3_same(h, wd, &x, &w, Some(&b), attrs.act, &mut short, c));
                        assert!(short.iter().all(|v| v.is_nan()));
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(300)))]
        /// Against the f64 definition over random depthwise geometries (the kernel runs when
        /// the CPU has SIMD micro-kernels; elsewhere this checks the row-run loop).
        #[test]
        fn depthwise_matches_naive(c in 1usize..6, h in 1usize..30, wd in 1usize..30, k in 1usize..6, s in 1usize..4, d in 1usize..3,
                                   pads in [0usize..3, 0..3, 0..3, 0..3], act in 0u8..3, seed in 0u64..1000) {
            prop_assume!(h + pads[0] + pads[2] > (k - 1) * d && wd + pads[1] + pads[3] > (k - 1) * d);
            let attrs = conv_attrs(c, [s, s], [d, d], pads, act);
            check_conv(&[1, c, h, wd], &[c, 1, k, k], attrs, seed);
        }

        /// The plane kernel ("same" padding along rows, stride 1), called directly on every
        /// SIMD tier of this CPU, against the f64 definition; each tier's groups equal the
        /// scalar definition bit for bit. Channel counts past one weight chunk, planes of one
        /// to many blocks, dilation, uneven row padding; kernel rows of 1 to 6 taps (3 and 5
        /// at dilation 1 take the window kernel, [`super::Taps::windows`]).
        #[test]
        fn planes_match_naive(c in 1usize..80, h in 1usize..14, wd in 1usize..14, kh in 1usize..4, kw in 1usize..7, d in 1usize..3,
                              pt in 0usize..3, pb in 0usize..3, pl in 0usize..8, act in 0u8..3, seed in 0u64..1000) {
            let pl = pl % ((kw - 1) * d + 1);
            let pr = (kw - 1) * d - pl;
            prop_assume!(h + pt + pb > (kh - 1) * d);
            let attrs = ConvAttrs {
                group: c as u32,
                stride: [1, 1],
                dilation: [d as u32, d as u32],
                pads: [pt as u32, pl as u32, pb as u32, pr as u32],
                act: ACTS[act as usize],
            };
            prop_assert!(check_plane_layer(attrs, [1, c, h, wd], [c, 1, kh, kw], seed));
        }

        /// The plane kernel on planes of many position groups, so interior groups share masks
        /// worked out once for another group (rows as narrow as 3 and as wide as 48, "same"
        /// padding, strides 1 and 2), on every SIMD tier, against the f64 definition.
        #[test]
        fn large_planes_match_naive(c in 1usize..4, h in 20usize..60, wi in 0usize..7, k in 1usize..4, s in 1usize..3,
                                    act in 0u8..3, seed in 0u64..1000) {
            let wd = [3, 5, 8, 12, 16, 24, 48][wi];
            let pad = |n: usize| ((n.div_ceil(s) - 1) * s + k).saturating_sub(n);
            let (ph, pw) = (pad(h), pad(wd));
            let attrs = ConvAttrs {
                group: c as u32,
                stride: [s as u32, s as u32],
                dilation: [1, 1],
                pads: [(ph / 2) as u32, (pw / 2) as u32, (ph - ph / 2) as u32, (pw - pw / 2) as u32],
                act: ACTS[act as usize],
            };
            prop_assert!(check_plane_layer(attrs, [1, c, h, wd], [c, 1, k, k], seed));
        }

        /// The plane kernel on strided layers with "same" padding (each channel read through
        /// its stride phases), called directly on every SIMD tier, against the f64 definition.
        #[test]
        fn strided_planes_match_naive(c in 1usize..40, h in 1usize..30, wd in 1usize..30, k in 1usize..5, s in 2usize..4, d in 1usize..3,
                                      split in 0usize..3, act in 0u8..3, seed in 0u64..1000) {
            // SAME padding: ⌈w / s⌉ outputs per axis, the padding split `split`-wise.
            let pad = |n: usize| ((n.div_ceil(s) - 1) * s + (k - 1) * d + 1).saturating_sub(n);
            let (ph, pw) = (pad(h), pad(wd));
            let (pt, pl) = (ph * split / 2, pw * split / 2);
            let attrs = ConvAttrs {
                group: c as u32,
                stride: [s as u32, s as u32],
                dilation: [d as u32, d as u32],
                pads: [pt as u32, pl as u32, (ph - pt) as u32, (pw - pl) as u32],
                act: ACTS[act as usize],
            };
            prop_assume!(check_plane_layer(attrs, [1, c, h, wd], [c, 1, k, k], seed));
        }

        /// Both kernels, called directly, against the f64 definition (the dispatch picks one by
        /// plane size): channel counts around the block width, strides, dilation, padding.
        #[test]
        fn both_kernels_match_naive(c in 1usize..40, h in 1usize..12, wd in 1usize..12, k in 1usize..4, s in 1usize..4, d in 1usize..3,
                                    p in 0usize..3, act in 0u8..3, seed in 0u64..1000) {
            prop_assume!(h + 2 * p > (k - 1) * d && wd + 2 * p > (k - 1) * d);
            let attrs = ConvAttrs {
                group: c as u32,
                stride: [s as u32, s as u32],
                dilation: [d as u32, d as u32],
                pads: [p as u32; 4],
                act: ACTS[act as usize],
            };
            let (xd, wdims) = ([1, c, h, wd], [c, 1, k, k]);
            let y = Op::Conv(attrs).infer(&[sh(&xd), sh(&wdims), sh(&[c])]).unwrap();
            let yd: Vec<usize> = (0..y.rank()).map(|i| y.dim(i)).collect();
            let g = Geom::new(&attrs, &sh(&xd), &sh(&wdims), &y);
            let (x, w, b) = (data(c * h * wd, seed), data(c * k * k, seed + 1), data(c, seed + 2));
            let want = naive_conv(&x, &xd, &w, &wdims, Some(&b), &attrs, &yd);
            let st = super::Setup::new(&g, x.len(), w.len()).unwrap();
            let simd = super::super::gemm::simd().filter(|_| st.blocks());
            let mut got = vec![f32::NAN; want.len()];
            let a = super::Args { x: &x, w: View::F32(&w), bias: Some(View::F32(&b)), act: attrs.act };
            super::per_channel(&g, &st, &a, &mut got).unwrap();
            assert_close(&got, &want, 1e-5);
            if let Some(mk) = simd {
                let mut got = vec![f32::NAN; want.len()];
                super::blocked(mk, &g, &st, &a, &mut got).unwrap();
                assert_close(&got, &want, 1e-5);
            }
        }

        /// The stride-2 kernels that read the input in place, on every SIMD tier of this CPU:
        /// depthwise layers and stems (group 1, at most 4 input channels) equal their scalar
        /// definitions bit for bit, the definitions agree with the f64 one, and the stem's sums
        /// equal the tiled product's bit for bit. Rows of one to several 16-output segments,
        /// any padding (windows starting before the row), kernels 1 to 4 wide.
        #[test]
        fn stride2_kernels_match_their_definitions(c in 1usize..40, cg in 1usize..5, m in 1usize..20, h in 1usize..30, wd in 1usize..70,
                                                  kh in 1usize..4, kw in 1usize..5, pads in [0usize..3, 0..3, 0..3, 0..3],
                                                  act in 0u8..3, stem in any::<bool>(), seed in 0u64..1000) {
            let kw = if stem { kw.min(3) } else { kw };
            prop_assume!(h + pads[0] + pads[2] >= kh && wd + pads[1] + pads[3] >= kw);
            let (xd, wdims, group) = if stem { ([1, cg, h, wd], [m, cg, kh, kw], 1) } else { ([1, c, h, wd], [c, 1, kh, kw], c) };
            let attrs = conv_attrs(group, [2, 2], [1, 1], pads, act);
            let y = Op::Conv(attrs).infer(&[sh(&xd), sh(&wdims), sh(&wdims[..1])]).unwrap();
            let yd: Vec<usize> = (0..y.rank()).map(|i| y.dim(i)).collect();
            let g = Geom::new(&attrs, &sh(&xd), &sh(&wdims), &y);
            let s2 = if stem { super::S2::stem(&g) } else { super::S2::of(&g) };
            prop_assume!(s2.is_some() && !(stem && cg == 1 && m == 1));
            let s2 = s2.unwrap();
            let (x, w, b) = (data(xd.iter().product(), seed), data(wdims.iter().product(), seed + 1), data(wdims[0], seed + 2));
            let want = naive_conv(&x, &xd, &w, &wdims, Some(&b), &attrs, &yd);
            let run = |f: &dyn Fn(&mut [f32])| {
                let mut got = vec![f32::NAN; want.len()];
                f(&mut got);
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            let def = run(&|o| if stem { super::conv_s2_scalar(&s2, &x, &w, &b, attrs.act, o) } else { super::dw_s2_scalar(&s2, &x, &w, &b, attrs.act, o) });
            assert_close(&def.iter().map(|&v| f32::from_bits(v)).collect::<Vec<_>>(), &want, 1e-5);
            #[cfg(target_arch = "x86_64")]
            if let Some(f) = super::super::x86::Fma::detect() {
                for mk in [f, f.avx2_only()] {
                    let got = run(&|o| if stem { mk.conv_s2(&s2, &x, &w, &b, attrs.act, o) } else { mk.dw_s2(&s2, &x, &w, &b, attrs.act, o) });
                    prop_assert_eq!(&got, &def);
                    if stem {
                        let tiled = run(&|o| mk.run(|| super::super::gemm::conv(mk, &g, &x, &w, Some(View::F32(&b)), attrs.act, o)).unwrap());
                        prop_assert_eq!(&tiled, &def);
                    }
                }
            }
        }

        /// The stride-1 depthwise row kernel ([`super::S2::dw1`]) on every SIMD tier of this
        /// CPU equals its definition bit for bit, the definition agrees with the f64 one, and
        /// where the position-group kernel ([`super::planes`]) takes the layer too, the whole
        /// layer through either kernel gives the same bits (the dispatch picks one by row
        /// width). Rows of one to several 8-output blocks and ragged tails, any padding, kernels
        /// 1 to 9 wide (past the AVX2 kernel's 8: the definition itself).
        #[test]
        fn stride1_depthwise_rows_match_their_definition(c in 1usize..20, h in 1usize..24, wd in 1usize..40, kh in 1usize..6, kw in 1usize..10,
                                                         pads in [0usize..4, 0..4, 0..4, 0..4], act in 0u8..3, seed in 0u64..1000) {
            prop_assume!(h + pads[0] + pads[2] >= kh && wd + pads[1] + pads[3] >= kw);
            let (xd, wdims) = ([1, c, h, wd], [c, 1, kh, kw]);
            let attrs = conv_attrs(c, [1, 1], [1, 1], pads, act);
            let y = Op::Conv(attrs).infer(&[sh(&xd), sh(&wdims), sh(&wdims[..1])]).unwrap();
            let yd: Vec<usize> = (0..y.rank()).map(|i| y.dim(i)).collect();
            let g = Geom::new(&attrs, &sh(&xd), &sh(&wdims), &y);
            let s1 = super::S2::dw1(&g).unwrap();
            let (x, w, b) = (data(xd.iter().product(), seed), data(wdims.iter().product(), seed + 1), data(c, seed + 2));
            let want = naive_conv(&x, &xd, &w, &wdims, Some(&b), &attrs, &yd);
            let run = |f: &dyn Fn(&mut [f32])| {
                let mut got = vec![f32::NAN; want.len()];
                f(&mut got);
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            let def = run(&|o| super::dw_s1_scalar(&s1, &x, &w, &b, attrs.act, o));
            assert_close(&def.iter().map(|&v| f32::from_bits(v)).collect::<Vec<_>>(), &want, 1e-5);
            #[cfg(target_arch = "x86_64")]
            if let Some(f) = super::super::x86::Fma::detect() {
                let a = super::Args { x: &x, w: View::F32(&w), bias: Some(View::F32(&b)), act: attrs.act };
                for mk in [f, f.avx2_only()] {
                    prop_assert_eq!(&run(&|o| mk.dw_s1(&s1, &x, &w, &b, attrs.act, o)), &def);
                    prop_assert_eq!(&run(&|o| mk.run(|| super::in_place(mk, &g, s1, &a, o)).unwrap()), &def);
                    if let Some(pl) = super::plane_layout(&g) {
                        prop_assert_eq!(&run(&|o| mk.run(|| super::planes(mk, &g, pl, &a, o)).unwrap()), &def);
                    }
                }
            }
        }

        /// The stride-1 stem kernel ([`super::S2::stem1`]) on every SIMD tier of this CPU: its
        /// sums equal the definition's and the tiled product's bit for bit (so the choice
        /// between them, which depends on no filter count, changes no output bit), and the
        /// definition agrees with the f64 one. Rows of one to several 16-output segments, filter
        /// counts around the 8-filter block, any padding, kernels 1 to 7 wide.
        #[test]
        fn stride1_stems_match_their_definition(cg in 1usize..5, m in 1usize..20, h in 1usize..24, wd in 12usize..60,
                                                kh in 1usize..6, kw in 1usize..8, pads in [0usize..4, 0..4, 0..4, 0..4],
                                                act in 0u8..3, seed in 0u64..1000) {
            prop_assume!(h + pads[0] + pads[2] >= kh && wd + pads[1] + pads[3] >= kw);
            let (xd, wdims) = ([1, cg, h, wd], [m, cg, kh, kw]);
            let attrs = conv_attrs(1, [1, 1], [1, 1], pads, act);
            let y = Op::Conv(attrs).infer(&[sh(&xd), sh(&wdims), sh(&wdims[..1])]).unwrap();
            let yd: Vec<usize> = (0..y.rank()).map(|i| y.dim(i)).collect();
            let g = Geom::new(&attrs, &sh(&xd), &sh(&wdims), &y);
            let s1 = super::S2::stem1(&g);
            prop_assume!(s1.is_some() && !(cg == 1 && m == 1));
            let s1 = s1.unwrap();
            let (x, w, b) = (data(xd.iter().product(), seed), data(wdims.iter().product(), seed + 1), data(m, seed + 2));
            let want = naive_conv(&x, &xd, &w, &wdims, Some(&b), &attrs, &yd);
            let run = |f: &dyn Fn(&mut [f32])| {
                let mut got = vec![f32::NAN; want.len()];
                f(&mut got);
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            let def = run(&|o| super::conv_s2_scalar(&s1, &x, &w, &b, attrs.act, o));
            assert_close(&def.iter().map(|&v| f32::from_bits(v)).collect::<Vec<_>>(), &want, 1e-5);
            #[cfg(target_arch = "x86_64")]
            if let Some(f) = super::super::x86::Fma::detect() {
                for mk in [f, f.avx2_only()] {
                    prop_assert_eq!(&run(&|o| mk.conv_s2(&s1, &x, &w, &b, attrs.act, o)), &def);
                    let tiled = run(&|o| mk.run(|| super::super::gemm::conv(mk, &g, &x, &w, Some(View::F32(&b)), attrs.act, o)).unwrap());
                    prop_assert_eq!(&tiled, &def);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(500)))]
        /// [`super::Taps::work_out`] (64-lane masks per group) writes every mask, store mask and
        /// window of every group as [`super::Taps::work_out_blocks`] does block by block: strides
        /// 1 to 3, dilation, uneven padding, rows wider than the column patterns (50 to 70
        /// columns), kernel widths with and without row windows, depthwise and shared layouts.
        #[test]
        fn group_masks_equal_block_masks(h in 1usize..40, wd in prop_oneof![1usize..14, 50usize..70], kh in 1usize..6, kw in 1usize..7,
                                         s in 1usize..4, d in 1usize..3, pt in 0usize..3, pb in 0usize..3, pl in 0usize..8, shared in proptest::bool::ANY) {
            let span = (kw - 1) * d;
            let pl = pl % (span + 1);
            let pr = if s == 1 { span - pl } else { (span + 1).saturating_sub(pl) };
            prop_assume!(h + pt + pb > (kh - 1) * d && wd + pl + pr > span);
            let attrs = ConvAttrs {
                group: if shared { 1 } else { 3 },
                stride: [s as u32, s as u32],
                dilation: [d as u32, d as u32],
                pads: [pt as u32, pl as u32, pb as u32, pr as u32],
                act: ACTS[0],
            };
            let (xd, wdim) = ([1, 3, h, wd], if shared { [2, 3, kh, kw] } else { [3, 1, kh, kw] });
            let y = Op::Conv(attrs).infer(&[sh(&xd), sh(&wdim), sh(&[wdim[0]])]).unwrap();
            let g = Geom::new(&attrs, &sh(&xd), &sh(&wdim), &y);
            let lay = if shared { super::shared_layout(&g) } else { super::plane_layout(&g) };
            prop_assume!(lay.is_some());
            let mut t = super::Taps::new(&g, lay.unwrap(), attrs.act);
            let e = t.entry();
            for j0 in (0..g.oh * g.ow).step_by(16 * super::TB) {
                t.cur = 0;
                t.pool[..e].fill(0xa5a5);
                t.work_out(&g, j0);
                let got = t.pool[..e].to_vec();
                t.pool[..e].fill(0x5a5a);
                t.work_out_blocks(&g, j0);
                prop_assert_eq!(&got[..], &t.pool[..e], "group at {}", j0);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(200)))]
        /// The shared-plane Conv ([`super::shared`]: one group, few input channels, one filter to
        /// past one bias chunk, register tiles and ragged tails, strides 1 and 2, dilation, uneven
        /// padding, planes of one to many position groups) on every SIMD tier of this CPU
        /// against the f64 definition, each of its groups equal to
        /// [`super::conv_taps_scalar`] bit for bit, and the whole layer equal to the tiled
        /// product's bits (the same fused sums in the same order).
        #[test]
        #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(unused_variables))] // the kernels under test need a SIMD tier
        fn shared_planes_match_naive(c in 1usize..65, m in 1usize..40, many in proptest::bool::ANY, h in 1usize..30, wd in 1usize..14,
                                     kh in 1usize..5, kw in 1usize..5, s in 1usize..3, d in 1usize..3,
                                     pt in 0usize..3, pb in 0usize..3, pl in 0usize..8, act in 0u8..3, seed in 0u64..1000) {
            let m = if many { m + 250 } else { m };
            // Stride 1: "same" padding along rows (output rows as wide as the input's); stride
            // 2: every phase row no wider than an output row.
            let span = (kw - 1) * d;
            let pl = pl % (span + 1);
            let pr = if s == 1 { span - pl } else { (span + 1).saturating_sub(pl) };
            prop_assume!(kh * kw > 1 && h + pt + pb > (kh - 1) * d && wd + pl + pr > span);
            let attrs = ConvAttrs {
                group: 1,
                stride: [s as u32, s as u32],
                dilation: [d as u32, d as u32],
                pads: [pt as u32, pl as u32, pb as u32, pr as u32],
                act: ACTS[act as usize],
            };
            let (xd, wdim) = ([1, c, h, wd], [m, c, kh, kw]);
            let y = Op::Conv(attrs).infer(&[sh(&xd), sh(&wdim), sh(&[m])]).unwrap();
            let yd: Vec<usize> = (0..y.rank()).map(|i| y.dim(i)).collect();
            let g = Geom::new(&attrs, &sh(&xd), &sh(&wdim), &y);
            let lay = super::shared_layout(&g);
            prop_assume!(lay.is_some());
            let lay = lay.unwrap();
            let (x, w, b) = (data(xd.iter().product(), seed), data(wdim.iter().product(), seed + 1), data(m, seed + 2));
            let want = naive_conv(&x, &xd, &w, &wdim, Some(&b), &attrs, &yd);
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let run = |f: &dyn Fn(&mut [f32])| {
                let mut got = vec![f32::NAN; want.len()];
                f(&mut got);
                got
            };
            // The groups' definition, over the kernel's own input (planes or phases).
            let xin = if lay.s == 1 {
                x.clone()
            } else {
                let mut ph = vec![0.0f32; c * lay.in_plane];
                for (src, dst) in x.chunks_exact(h * wd).zip(ph.chunks_exact_mut(lay.in_plane)) {
                    super::split_phases(&g, lay, src, dst);
                }
                ph
            };
            let def = run(&|o| {
                let mut t = super::Taps::new(&g, lay, attrs.act);
                for j0 in (0..g.oh * g.ow).step_by(16 * super::TB) {
                    t.at(&g, j0);
                    super::conv_taps_scalar(&t, &xin, c, &w, &b, o);
                }
            });
            // f32 sums of up to 64 · 16 terms, which may cancel: the bound of any summation
            // order is relative to Σ|w·x| + |b| (the activations are 1-Lipschitz).
            let abs = |v: &[f32]| v.iter().map(|v| v.abs()).collect::<Vec<_>>();
            let scale = naive_conv(&abs(&x), &xd, &abs(&w), &wdim, Some(&abs(&b)), &ConvAttrs { act: crate::op::Activation::None, ..attrs }, &yd);
            assert_close_scaled(&def, &want, &scale, 1e-5 * ((c * kh * kw) as f64 / 256.0).max(1.0));
            #[cfg(target_arch = "x86_64")]
            if let Some(f) = super::super::x86::Fma::detect() {
                for mk in [f, f.avx2_only()] {
                    let got = run(&|o| mk.run(|| super::shared(mk, &g, lay, &x, &w, Some(View::F32(&b)), attrs.act, o)).unwrap());
                    prop_assert_eq!(bits(&got), bits(&def));
                    let tiled = run(&|o| mk.run(|| super::super::gemm::conv(mk, &g, &x, &w, Some(View::F32(&b)), attrs.act, o)).unwrap());
                    prop_assert_eq!(bits(&tiled), bits(&def));
                }
            }
            #[cfg(target_arch = "aarch64")]
            {
                let mk = super::super::neon::Neon;
                let tiled = run(&|o| mk.run(|| super::super::gemm::conv(mk, &g, &x, &w, Some(View::F32(&b)), attrs.act, o)).unwrap());
                prop_assert_eq!(bits(&tiled), bits(&def));
            }
        }
    }

    /// "Same" padded stride-1 depthwise attributes of a `k × k` kernel.
    fn same(k: usize, act: crate::op::Activation) -> ConvAttrs {
        let (lo, hi) = (((k - 1) / 2) as u32, (k / 2) as u32);
        ConvAttrs { group: 0, stride: [1, 1], dilation: [1, 1], pads: [lo, lo, hi, hi], act }
    }

    /// Kernels of more than 9 and more than 25 taps (the tiers' larger tap tables) and the
    /// Threshold activation through the plane kernel on every tier of this CPU, on narrow,
    /// square and wide planes: against the f64 definition, each group equal to the scalar
    /// definition bit for bit.
    #[test]
    fn plane_kernel_takes_large_kernels_and_threshold() {
        use crate::op::Activation::{Relu, Threshold};
        for (k, act) in [(5, Threshold { alpha: 0.1 }), (7, Threshold { alpha: -0.2 }), (7, Relu), (1, Threshold { alpha: 0.0 })] {
            for (c, h, w) in [(6, 25, 5), (3, 12, 12), (2, 7, 48)] {
                let attrs = ConvAttrs { group: c as u32, ..same(k, act) };
                assert!(check_plane_layer(attrs, [1, c, h, w], [c, 1, k, k], 11), "{k}x{k} on {h}x{w}");
            }
        }
    }

    /// Infinities and NaN in the input planes reach only the outputs whose taps read them: each
    /// tier's groups equal the scalar definition bit for bit (SIMD tiers that load whole
    /// vectors and select lanes away must not let a masked-out value through).
    #[test]
    fn plane_kernel_keeps_non_finite_inputs_to_their_taps() {
        for (c, h, w, k) in [(5, 25, 5, 3), (4, 9, 9, 5), (3, 6, 20, 3)] {
            let attrs = ConvAttrs { group: c as u32, ..same(k, crate::op::Activation::None) };
            let (xd, wd) = ([1, c, h, w], [c, 1, k, k]);
            let mut x = data(c * h * w, 3);
            for (i, v) in x.iter_mut().enumerate() {
                // Every plane's first and last rows and columns, and a few inner values.
                let (p, r, col) = (i % (h * w), i % (h * w) / w, i % w);
                if r == 0 || r == h - 1 || col == 0 || col == w - 1 || p % 7 == 3 {
                    *v = [f32::INFINITY, f32::NAN, f32::NEG_INFINITY][i % 3];
                }
            }
            let (wt, b) = (data(c * k * k, 4), data(c, 5));
            let y = Op::Conv(attrs).infer(&[sh(&xd), sh(&wd), sh(&[c])]).unwrap();
            let g = Geom::new(&attrs, &sh(&xd), &sh(&wd), &y);
            let a = super::Args { x: &x, w: View::F32(&wt), bias: Some(View::F32(&b)), act: attrs.act };
            #[cfg(target_arch = "x86_64")]
            if let Some(f) = super::super::x86::Fma::detect() {
                check_groups(f, &g, &a, c * g.oh * g.ow);
                check_groups(f.avx2_only(), &g, &a, c * g.oh * g.ow);
            }
            #[cfg(target_arch = "aarch64")]
            check_groups(super::super::neon::Neon, &g, &a, c * g.oh * g.ow);
            let _ = (&g, &a);
        }
    }

    /// Window masks exist exactly for layers whose kernel rows read consecutive positions
    /// (stride 1, dilation 1 along rows, 3 or 5 taps a row; on x86-64, whose kernel reads them), and the kws_dscnn layer
    /// (64 channels, 25 × 5, 3 × 3, "same") runs them against the scalar definition.
    #[test]
    fn window_masks_where_rows_are_consecutive() {
        let run = |k: [usize; 2], d: u32, xd: [usize; 4]| {
            let c = xd[1];
            let pw = (k[1] - 1) * d as usize;
            let ph = (k[0] - 1) * d as usize;
            let attrs = ConvAttrs {
                group: c as u32,
                stride: [1, 1],
                dilation: [d, d],
                pads: [(ph / 2) as u32, (pw / 2) as u32, (ph - ph / 2) as u32, (pw - pw / 2) as u32],
                act: crate::op::Activation::None,
            };
            let wd = [c, 1, k[0], k[1]];
            let y = Op::Conv(attrs).infer(&[sh(&xd), sh(&wd), sh(&[c])]).unwrap();
            let g = Geom::new(&attrs, &sh(&xd), &sh(&wd), &y);
            let t = super::Taps::new(&g, super::plane_layout(&g).unwrap(), attrs.act);
            assert_eq!(t.windows().len(), if t.run() > 0 { (super::TB + 1) * k[0] } else { 0 });
            (t.run(), check_plane_layer(attrs, xd, wd, 7))
        };
        let x86 = |k: usize| if cfg!(target_arch = "x86_64") { k } else { 0 };
        assert_eq!(run([3, 3], 1, [1, 64, 25, 5]), (x86(3), true));
        assert_eq!(run([5, 5], 1, [1, 3, 12, 12]), (x86(5), true));
        assert_eq!(run([3, 1], 1, [1, 3, 12, 12]), (0, true));
        assert_eq!(run([3, 3], 2, [1, 3, 12, 12]), (0, true));
        assert_eq!(run([3, 9], 1, [1, 3, 12, 12]), (0, true));
    }

    /// The depthwise layer `attrs` on input `xd` and filters `wd` (random data from `seed`)
    /// through [`check_planes`] on every SIMD tier of this CPU; false when the plane kernel
    /// does not take the layer.
    #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(unused_variables))] // the kernels under test need a SIMD tier
    fn check_plane_layer(attrs: ConvAttrs, xd: [usize; 4], wd: [usize; 4], seed: u64) -> bool {
        let c = xd[1];
        let y = Op::Conv(attrs).infer(&[sh(&xd), sh(&wd), sh(&[c])]).unwrap();
        let yd: Vec<usize> = (0..y.rank()).map(|i| y.dim(i)).collect();
        let g = Geom::new(&attrs, &sh(&xd), &sh(&wd), &y);
        if super::plane_layout(&g).is_none() {
            return false;
        }
        let (x, w, b) = (data(xd.iter().product(), seed), data(wd.iter().product(), seed + 1), data(c, seed + 2));
        let want = naive_conv(&x, &xd, &w, &wd, Some(&b), &attrs, &yd);
        let a = super::Args { x: &x, w: View::F32(&w), bias: Some(View::F32(&b)), act: attrs.act };
        #[cfg(target_arch = "x86_64")]
        if let Some(f) = super::super::x86::Fma::detect() {
            check_planes(f, &g, &a, &want);
            check_planes(f.avx2_only(), &g, &a, &want);
        }
        #[cfg(target_arch = "aarch64")]
        check_planes(super::super::neon::Neon, &g, &a, &want);
        // Filters and biases that are not native f32 slices (decoded a chunk at a time into
        // buffers), and no bias (zeros): the same bits as the f32 slices read in place.
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        {
            #[cfg(target_arch = "x86_64")]
            let mk = super::super::x86::Fma::detect();
            #[cfg(target_arch = "aarch64")]
            let mk = Some(super::super::neon::Neon);
            let le = |v: &[f32]| v.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
            let (wl, bl, zeros) = (le(&w), le(&b), vec![0.0f32; c]);
            let pl = super::plane_layout(&g).unwrap();
            let run = |a: &super::Args<'_>| {
                let mut got = vec![f32::NAN; want.len()];
                if let Some(mk) = mk {
                    super::planes(mk, &g, pl, a, &mut got).unwrap();
                }
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            let bytes = super::Args { x: &x, w: View::F32Le(&wl), bias: Some(View::F32Le(&bl)), act: attrs.act };
            assert_eq!(run(&bytes), run(&a));
            let none = super::Args { x: &x, w: View::F32(&w), bias: None, act: attrs.act };
            let zero = super::Args { x: &x, w: View::F32(&w), bias: Some(View::F32(&zeros)), act: attrs.act };
            assert_eq!(run(&none), run(&zero));
        }
        true
    }

    /// [`super::planes`] on tier `mk` against `want`, and each of its groups against
    /// [`super::dw_taps_scalar`] bit for bit.
    #[allow(dead_code)]
    fn check_planes<M: super::super::gemm::Micro>(mk: M, g: &Geom, a: &super::Args<'_>, want: &[f64]) {
        let pl = super::plane_layout(g).unwrap();
        let mut got = vec![f32::NAN; want.len()];
        super::planes(mk, g, pl, a, &mut got).unwrap();
        assert_close(&got, want, 1e-5);
        check_groups(mk, g, a, want.len());
    }

    /// Each group of [`super::planes`]' kernel on tier `mk` equal to [`super::dw_taps_scalar`]
    /// bit for bit (`len` output floats).
    #[allow(dead_code)]
    fn check_groups<M: super::super::gemm::Micro>(mk: M, g: &Geom, a: &super::Args<'_>, len: usize) {
        let pl = super::plane_layout(g).unwrap();
        let (w, b) = (
            match a.w {
                View::F32(w) => w,
                _ => unreachable!(),
            },
            match a.bias {
                Some(View::F32(b)) => b,
                _ => unreachable!(),
            },
        );
        // The kernel's input: the planes themselves, or their phases.
        let x = if pl.s == 1 {
            a.x.to_vec()
        } else {
            let mut ph = vec![0.0f32; g.m * pl.in_plane];
            for (src, dst) in a.x.chunks_exact(g.h * g.w).zip(ph.chunks_exact_mut(pl.in_plane)) {
                super::split_phases(g, pl, src, dst);
            }
            ph
        };
        let mut t = super::Taps::new(g, pl, a.act);
        let (mut tier, mut scalar) = (vec![f32::NAN; len], vec![f32::NAN; len]);
        for j0 in (0..g.oh * g.ow).step_by(16 * super::TB) {
            t.at(g, j0);
            mk.dw_taps(&t, &x, w, b, &mut tier);
            super::dw_taps_scalar(&t, &x, w, b, &mut scalar);
        }
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&tier), bits(&scalar));
    }
}
