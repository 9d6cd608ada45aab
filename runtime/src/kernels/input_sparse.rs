//! Input-sparse Dense and 1×1 Conv (kernel `INPUT_SPARSE`, ALGORITHMS.md §6.6): the weight is
//! stored input-major (dims 0 and 1 swapped: Dense `[K, N]`, Conv `[C, M, 1, 1]`), so every input
//! value scales one contiguous weight row, and zero inputs are skipped.
//!
//! Guarantee: for finite weights the result equals the dense kernel's up to the order of the
//! f32 additions (a skipped term is an exact `±0 · w`). Non-finite weights facing a zero input
//! are skipped too, where the dense kernel would produce NaN; the tool never writes such weights.
//! NaN and infinite *inputs* are not zero and propagate as in the dense kernel.

use super::{chunk, Operand, CHUNK};
use crate::op::{Activation, ConvAttrs, Op, OpError};
use crate::shape::Shape;
use crate::view::View;

/// Whether the `INPUT_SPARSE` kernel applies to `op` with a weight of logical (output-major)
/// shape `w`: a Dense, or a Conv with group 1, a 1×1 kernel and no padding.
pub(crate) fn applies(op: &Op, w: &Shape) -> bool {
    match op {
        Op::Dense { .. } => w.rank() == 2,
        Op::Conv(a) => a.group == 1 && a.pads == [0; 4] && w.rank() >= 3 && (2..w.rank()).all(|d| w.dim(d) == 1),
        _ => false,
    }
}

/// `s` with dims 0 and 1 swapped (between stored input-major and logical output-major shapes).
pub(crate) fn swap01(s: Shape) -> Shape {
    if s.rank() < 2 {
        return s;
    }
    let mut d = [0u32; crate::shape::MAX_RANK];
    d[..s.rank()].copy_from_slice(s.dims());
    d.swap(0, 1);
    Shape::from_u32(&d[..s.rank()]).unwrap_or(s)
}

/// `acc[j] = bias[o0 + j] + Σ_{c : x(c) ≠ 0} x(c) · wt[c, o0 + j]` for `j < acc.len()`: one
/// block of the `n` outputs of one position with `k` inputs. Stack: one f32 and one u16 block
/// (1.5 KiB at CHUNK = 256), less than the dense kernel's, for Cortex-M stacks.
#[inline]
fn accumulate(x: impl FnMut(usize) -> f32, k: usize, wt: View<'_>, n: usize, bias: Option<View<'_>>, o0: usize, acc: &mut [f32]) {
    if let View::Codebook(cb) = wt {
        if cb.is_whole() {
            return accumulate_codebook(x, k, &cb, bias, o0, acc);
        }
    }
    let len = acc.len();
    let mut wbuf = [0.0f32; CHUNK];
    set_bias(acc, bias, o0, &mut wbuf);
    // One input's row added to every output (read through `wbuf` unless native and whole).
    let add_one = |acc: &mut [f32], wbuf: &mut [f32; CHUNK], c: usize, xv: f32| {
        let at = c * n + o0;
        let wc = match wt.as_f32().and_then(|w| w.get(at..at + len)) {
            Some(w) => w,
            None => chunk(wt, at, len, wbuf),
        };
        for (a, w) in acc.iter_mut().zip(wc) {
            *a += xv * w;
        }
    };
    let (Some(w), true) = (wt.as_f32(), ROWS4) else {
        for_each_nonzero::<CHUNK>(x, k, |c, xv| add_one(acc, &mut wbuf, c, xv));
        return;
    };
    // Native weights: the non-zero inputs four at a time, in order ([`Rows4`]: the same sums).
    let mut rows = Rows4 { w, n, o0, pend: [(0, 0.0); 4], np: 0 };
    for_each_nonzero::<CHUNK>(x, k, |c, xv| {
        rows.pend[rows.np] = (c, xv);
        rows.np += 1;
        if rows.np == 4 {
            rows.flush(acc, &mut wbuf);
        }
    });
    rows.flush(acc, &mut wbuf);
}

/// Up to four pending non-zero inputs `(c, x(c))` of [`accumulate`] over native weights `w`
/// (`[k, n]`, input-major), for outputs `o0 ..`.
struct Rows4<'w> {
    w: &'w [f32],
    n: usize,
    o0: usize,
    pend: [(usize, f32); 4],
    np: usize,
}

impl Rows4<'_> {
    /// Adds the pending inputs' rows to `acc` in input order and empties the list: four through
    /// [`add_rows4`], fewer (or rows not whole in `w`, never after parsing, read through
    /// `wbuf`) one at a time.
    /// Out of line, so that each caller of [`accumulate`] shares one copy.
    #[inline(never)]
    fn flush(&mut self, acc: &mut [f32], wbuf: &mut [f32; CHUNK]) {
        let len = acc.len();
        let row = |c: usize| self.w.get(c * self.n + self.o0..c * self.n + self.o0 + len);
        let pend = &self.pend[..self.np];
        self.np = 0;
        if let [(c0, x0), (c1, x1), (c2, x2), (c3, x3)] = *pend {
            if let (Some(r0), Some(r1), Some(r2), Some(r3)) = (row(c0), row(c1), row(c2), row(c3)) {
                return add_rows4(acc, [r0, r1, r2, r3], [x0, x1, x2, x3]);
            }
        }
        for &(c, xv) in pend {
            let wc = match row(c) {
                Some(r) => r,
                None => chunk(View::F32(self.w), c * self.n + self.o0, len, wbuf),
            };
            for (a, w) in acc.iter_mut().zip(wc) {
                *a += xv * w;
            }
        }
    }
}

/// Whether [`accumulate`] takes native rows four at a time: on Cortex-M with an FPU (and in
/// tests). Not on the soft-float M0, where each float operation is a call and the loop's code
/// would cost more flash than it saves, nor on SIMD hosts, where the plain loop is vectorised
/// inside its caller's target features and [`Rows4::flush`], out of line, would not be.
const ROWS4: bool = cfg!(any(test, target_abi = "eabihf"));

/// `acc[j] += x[0]·w[0][j]`, then `x[1]·w[1][j]`, `x[2]·w[2][j]`, `x[3]·w[3][j]` (the bits of four
/// passes, one input after the other), each output loaded and stored once for the four.
#[inline]
fn add_rows4(acc: &mut [f32], w: [&[f32]; 4], x: [f32; 4]) {
    let [x0, x1, x2, x3] = x;
    for ((((a, p), q), r), s) in acc.iter_mut().zip(w[0]).zip(w[1]).zip(w[2]).zip(w[3]) {
        *a = (((*a + x0 * p) + x1 * q) + x2 * r) + x3 * s;
    }
}

/// `acc` = `bias[o0..]` (zeros without a bias).
#[inline]
fn set_bias(acc: &mut [f32], bias: Option<View<'_>>, o0: usize, buf: &mut [f32; CHUNK]) {
    let len = acc.len();
    match bias {
        Some(b) => acc.copy_from_slice(&chunk(b, o0, len, buf)[..len]),
        None => acc.fill(0.0),
    }
}

/// Calls `f(c, x(c))` for every input `c < k` with `x(c) != 0`, in order. The non-zero inputs of
/// each block of `B` are compacted without branches first: mispredicted zero tests would cost
/// more than the skipped multiplies at mid sparsity.
#[inline(always)]
fn for_each_nonzero<const B: usize>(mut x: impl FnMut(usize) -> f32, k: usize, mut f: impl FnMut(usize, f32)) {
    let mut nz = [0u16; B];
    let mut c0 = 0;
    while c0 < k {
        let cl = B.min(k - c0);
        let mut m = 0;
        for i in 0..cl {
            nz[m] = i as u16;
            m += (x(c0 + i) != 0.0) as usize;
        }
        for &i in &nz[..m] {
            let c = c0 + i as usize;
            f(c, x(c));
        }
        c0 += cl;
    }
}

/// [`accumulate`] for a whole codebook weight (rows = inputs, ALGORITHMS.md §6.6): each
/// non-zero input scales its row group's codebook once (`2^bits` products), then adds the scaled
/// codeword of every output's index, with no further multiply. Stack: one `2^8`-entry f32 table
/// and small index buffers.
#[inline(never)]
fn accumulate_codebook(
    x: impl FnMut(usize) -> f32,
    k: usize,
    cb: &crate::codebook::Codebook<'_>,
    bias: Option<View<'_>>,
    o0: usize,
    acc: &mut [f32],
) {
    use crate::codebook::TABLE_LEN;
    let len = acc.len();
    let p = cb.parts();
    let mut table = [0.0f32; TABLE_LEN];
    {
        let mut buf = [0.0f32; CHUNK];
        set_bias(acc, bias, o0, &mut buf);
    }
    const RUN: usize = 64;
    let mut codes = [0u8; RUN];
    for_each_nonzero::<RUN>(x, k, |c, xv| {
        p.load(p.group(c), &mut table);
        for t in table[..1 << p.bits()].iter_mut() {
            *t *= xv;
        }
        let row = p.row(c);
        // 8-, 4- and 2-bit rows read codes straight from their bytes (`o0` is a multiple of
        // CHUNK, so the block starts on a byte); other widths unpack runs.
        match p.bits() {
            8 => {
                for (a, &b) in acc.iter_mut().zip(row.get(o0..).unwrap_or(&[])) {
                    *a += table[b as usize];
                }
            }
            4 => {
                let bytes = row.get(o0 / 2..).unwrap_or(&[]);
                let mut pairs = acc.chunks_exact_mut(2);
                for (a, &b) in (&mut pairs).zip(bytes) {
                    a[0] += table[(b & 15) as usize];
                    a[1] += table[(b >> 4) as usize];
                }
                if let ([a], Some(&b)) = (pairs.into_remainder(), bytes.get(len / 2)) {
                    *a += table[(b & 15) as usize];
                }
            }
            2 => {
                let bytes = row.get(o0 / 4..).unwrap_or(&[]);
                let mut quads = acc.chunks_exact_mut(4);
                for (a, &b) in (&mut quads).zip(bytes) {
                    a[0] += table[(b & 3) as usize];
                    a[1] += table[(b >> 2 & 3) as usize];
                    a[2] += table[(b >> 4 & 3) as usize];
                    a[3] += table[(b >> 6) as usize];
                }
                let rest = quads.into_remainder();
                if let Some(&b) = bytes.get(len / 4) {
                    for (q, a) in rest.iter_mut().enumerate() {
                        *a += table[(b >> (2 * q) & 3) as usize];
                    }
                }
            }
            bits => {
                let mut j0 = 0;
                while j0 < len {
                    let run = RUN.min(len - j0);
                    crate::codebook::unpack(row, bits, o0 + j0, &mut codes[..run]);
                    for (a, &code) in acc[j0..j0 + run].iter_mut().zip(&codes[..run]) {
                        *a += table[code as usize];
                    }
                    j0 += run;
                }
            }
        }
    });
}

/// Dense on inputs `x [.., K], wt [K, N][, bias [N]]` (weight stored input-major); sums build up
/// in the output row itself.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
pub(super) fn dense(act: Activation, inputs: &[Operand<'_>], out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let (x, wt) = (&inputs[0], &inputs[1]);
    let (k, n) = (wt.shape.dim(0), wt.shape.dim(1));
    let rows = y.prod(0, y.rank().saturating_sub(1));
    let bias = inputs.get(2).map(|b| b.view);
    let mut xbuf = [0.0f32; 1];
    for r in 0..rows {
        let o = out.get_mut(r * n..(r + 1) * n).ok_or(OpError::ShapeMismatch)?;
        let native = x.view.as_f32().and_then(|s| s.get(r * k..(r + 1) * k));
        for (b, block) in o.chunks_mut(CHUNK).enumerate() {
            match native {
                Some(xs) => accumulate(|c| xs[c], k, wt.view, n, bias, b * CHUNK, block),
                // Non-native input views (never activations in a session): element by element.
                None => {
                    let xv = x.view;
                    accumulate(
                        |c| chunk(xv, r * k + c, 1, &mut xbuf).first().copied().unwrap_or(0.0),
                        k,
                        wt.view,
                        n,
                        bias,
                        b * CHUNK,
                        block,
                    )
                }
            }
        }
        if act != Activation::None {
            act.apply_all(o);
        }
    }
    Ok(())
}

/// Decoded weights [`small_plane_codebook`] holds on the stack at once (128 KiB, never cleared
/// where an x86 decoder fills it: on an AVX2-only CPU VWW 4-bit ran in 324 µs against 340 with
/// 32 KiB, whose 32-output blocks ran the f32 kernel eight times on 256-filter layers; 64 and
/// 256 KiB were no faster).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const IM_DECODED: usize = 32768;

/// The small-plane kernel ([`super::gemm::Micro::im_1x1`]) on an input-major codebook weight
/// `cb` (`c` rows of `m`). 4-bit codes of at most 16 groups with AVX-512: decoded in registers
/// inside the kernel (`Books4::im_1x1`; on VWW's 6 × 6 and 3 × 3 layers 0.80–0.88 of the f32
/// kernel's speed, against 0.31–0.68 decoding blocks to the stack). Otherwise a block of
/// outputs at a time, each input's weights for the block decoded onto the stack (contiguous in
/// its row; 4-bit codes through AVX2 byte planes where there is no AVX-512, NEON byte planes
/// on aarch64), then the f32
/// tiles. Either way every weight is decoded once per call and the sums
/// are the f32 kernel's on the decoded weights, bit for bit. False (nothing
/// written) when the layer does not fit the kernel (plane, filter count, slices) or this CPU
/// has no such kernel.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[allow(clippy::too_many_arguments)]
fn small_plane_codebook(
    xs: &[f32],
    cb: &crate::codebook::Codebook<'_>,
    bias: Option<View<'_>>,
    act: Activation,
    hw: usize,
    c: usize,
    m: usize,
    batch: usize,
    out: &mut [f32],
) -> Result<bool, OpError> {
    use super::gemm::Micro;
    // Outputs per block: a multiple of 8 whose decoded block fits the stack buffer.
    let block = (IM_DECODED / c.max(1)).min(m) / 8 * 8;
    let info = cb.info();
    let Some(mk) = super::gemm::simd() else { return Ok(false) };
    if !(1..=super::gemm::IM_PLANE).contains(&hw) || m > IM_BIAS || !cb.is_whole() || info.rows != c || info.cols != m {
        return Ok(false);
    }
    let mut bb = [0.0f32; IM_BIAS];
    if let Some(bv) = bias {
        bv.read_into(0, &mut bb[..m]);
    }
    // Only the rows the x86 decoders do not take need the group tables (7 KiB to clear).
    let mut table: Option<crate::codebook::Table> = None;
    let parts = cb.parts();
    #[cfg(target_arch = "x86_64")]
    let books = super::x86::Codes::detect().and_then(|k| k.decoder4(&parts));
    // 4-bit with AVX-512: codes decoded in registers inside the kernel.
    #[cfg(target_arch = "x86_64")]
    if let Some(b) = books.as_ref().and_then(|b| b.wide()) {
        let bias = if bias.is_some() { &bb[..m] } else { &bb[..0] };
        let mut done = true;
        for n in 0..batch {
            let xn = super::sub(xs, n * c * hw, c * hw)?;
            let on = super::sub_mut(out, n * m * hw, m * hw)?;
            done &= b.im_1x1(&parts, xn, hw, c, m, bias, act, on);
        }
        if done {
            return Ok(true);
        }
    }
    if block == 0 {
        return Ok(false);
    }
    // Inputs zero at every position of every batch item: the kernel skips them, so their
    // weights are not decoded (held at zero instead).
    let mut live = [false; IM_DECODED / 8];
    #[cfg(target_arch = "x86_64")]
    let simd_live = c <= live.len()
        && (0..batch).all(|n| super::sub(xs, n * c * hw, c * hw).is_ok_and(|xn| super::x86::live_rows(xn, hw, &mut live[..c])));
    #[cfg(not(target_arch = "x86_64"))]
    let simd_live = false;
    for (ci, l) in live.iter_mut().enumerate().take(if simd_live { 0 } else { c }) {
        // A branch-free fold (it vectorises; an early-exit scan of these short planes does not).
        *l = (0..batch)
            .any(|n| xs.get((n * c + ci) * hw..(n * c + ci + 1) * hw).is_none_or(|p| p.iter().fold(false, |a, &v| a | (v != 0.0))));
    }
    // Runs outputs `o0 .. o0 + nb` on their decoded weights `w` (`cx` rows of `nb`) and the
    // planes `x` (`cx` planes a batch item); false when the kernel does not take them (the
    // per-position loop then writes every output).
    let run = |x: &[f32], cx: usize, o0: usize, nb: usize, w: &[f32], out: &mut [f32]| -> Result<bool, OpError> {
        let b = if bias.is_some() { &bb[o0..o0 + nb] } else { &bb[..0] };
        for n in 0..batch {
            let xn = super::sub(x, n * cx * hw, cx * hw)?;
            let on = super::sub_mut(out, n * m * hw + o0 * hw, nb * hw)?;
            if !mk.im_1x1(xn, hw, cx, w, nb, b, act, on) {
                return Ok(false);
            }
        }
        Ok(true)
    };
    // 4-bit on x86 with a quarter or more of the inputs dead and the live inputs' planes fitting
    // the stack: only the live rows decoded, run on those planes copied together. The kernel
    // skips the other inputs anyway (zero at every position), so the sums are the same, bit
    // for bit, without writing zero rows (on VWW's 3 × 3 layers most inputs are dead; with
    // fewer dead the copy cost more than it saved: VWW's first 6 × 6 layer 0.3 µs slower).
    #[cfg(target_arch = "x86_64")]
    if let Some(b) = books.as_ref() {
        let cl = live[..c].iter().filter(|&&l| l).count();
        if cl > 0 && 4 * cl <= 3 * c && batch * cl * hw <= IM_LIVE {
            let mut xl = [core::mem::MaybeUninit::<f32>::uninit(); IM_LIVE];
            let xl = super::x86::live_planes(xs, batch, c, hw, &live[..c], &mut xl).ok_or(OpError::ShapeMismatch)?;
            let block = (IM_DECODED / cl).min(m) / 8 * 8;
            if block > 0 {
                let mut buf = [core::mem::MaybeUninit::<f32>::uninit(); IM_DECODED];
                let mut o0 = 0;
                while o0 < m {
                    let nb = block.min(m - o0);
                    let Some(w) = b.decode_cols(&parts, o0, nb, &live[..c], true, &mut buf) else { break };
                    if !run(xl, cl, o0, nb, w, out)? {
                        return Ok(false);
                    }
                    o0 += nb;
                }
                if o0 >= m {
                    return Ok(true);
                }
            }
        }
    }
    // 4-bit on x86: each block's columns of every live row decoded in one call, into a buffer
    // nobody clears (every float of a block is written before it runs).
    #[cfg(target_arch = "x86_64")]
    if let Some(b) = books.as_ref() {
        let mut buf = [core::mem::MaybeUninit::<f32>::uninit(); IM_DECODED];
        let mut o0 = 0;
        while o0 < m {
            let nb = block.min(m - o0);
            let w = b.decode_cols(&parts, o0, nb, &live[..c], false, &mut buf).ok_or(OpError::ShapeMismatch)?;
            if !run(xs, c, o0, nb, w, out)? {
                return Ok(false);
            }
            o0 += nb;
        }
        return Ok(true);
    }
    // 4-bit on aarch64: through the NEON byte planes.
    #[cfg(target_arch = "aarch64")]
    let books = super::gemm::neon().and_then(|n| n.books4(&parts));
    let mut buf = [0.0f32; IM_DECODED];
    let mut o0 = 0;
    while o0 < m {
        let nb = block.min(m - o0);
        let w = &mut buf[..c * nb];
        for (ci, row) in w.chunks_exact_mut(nb).enumerate() {
            if !live[ci] {
                row.fill(0.0);
                continue;
            }
            #[cfg(target_arch = "aarch64")]
            if books.as_ref().is_some_and(|b| b.decode(&parts, ci, o0, row)) {
                continue;
            }
            // Short runs: the group's values, without the per-group byte tables.
            let t = table.get_or_insert_with(crate::codebook::Table::new).of_parts_row(&parts, ci);
            parts.decode(ci, o0, t, row);
        }
        if !run(xs, c, o0, nb, w, out)? {
            return Ok(false);
        }
        o0 += nb;
    }
    Ok(true)
}

/// Floats of live input planes [`small_plane_codebook`] copies together (32 KiB).
#[cfg(target_arch = "x86_64")]
const IM_LIVE: usize = 8192;

/// Most filters of a 1×1 Conv the blocked small-plane kernel takes (its bias on the stack).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const IM_BIAS: usize = 1024;

/// 1×1 Conv (group 1, no padding, any stride) on `x [N, C, H, W]`, `wt [C, M, 1, 1]` (input-major),
/// `bias [M]`, output `[N, M, OH, OW]`; 1-D convolutions are `[N, C, L]`.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
pub(super) fn conv1x1(a: &ConvAttrs, inputs: &[Operand<'_>], out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let (x, wt) = (&inputs[0], &inputs[1]);
    let (c, m) = (wt.shape.dim(0), wt.shape.dim(1));
    let two_d = x.shape.rank() == 4;
    let (h, w) = if two_d { (x.shape.dim(2), x.shape.dim(3)) } else { (1, x.shape.dim(2)) };
    let (oh, ow) = if two_d { (y.dim(2), y.dim(3)) } else { (1, y.dim(2)) };
    let (sh, sw) = if two_d { (a.stride[0] as usize, a.stride[1] as usize) } else { (1, a.stride[1] as usize) };
    let bias = inputs.get(2).map(|b| b.view);
    let (hw, ohw) = (h * w, oh * ow);
    // Small planes at stride 1 on CPUs with SIMD: blocks of positions at once.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    if let (Some(xs), Some(wts), Some(mk), true) =
        (x.view.as_f32(), wt.view.as_f32(), super::gemm::simd(), hw == ohw && hw <= super::gemm::IM_PLANE && m <= IM_BIAS)
    {
        use super::gemm::Micro;
        let mut bb = [0.0f32; IM_BIAS];
        let b = match bias {
            Some(bv) => {
                bv.read_into(0, &mut bb[..m]);
                &bb[..m]
            }
            None => &bb[..0],
        };
        let mut done = true;
        for n in 0..x.shape.dim(0) {
            let (xn, on) = (super::sub(xs, n * c * hw, c * hw)?, super::sub_mut(out, n * m * hw, m * hw)?);
            // Every SIMD CPU has the kernel: nothing is written only when nothing fits.
            done &= mk.im_1x1(xn, hw, c, wts, m, b, a.act, on);
        }
        if done {
            return Ok(());
        }
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    if let (Some(xs), View::Codebook(cb), true) = (x.view.as_f32(), wt.view, hw == ohw) {
        if small_plane_codebook(xs, &cb, bias, a.act, hw, c, m, x.shape.dim(0), out)? {
            return Ok(());
        }
    }
    let mut acc = [0.0f32; CHUNK];
    let mut xbuf = [0.0f32; 1];
    for b in 0..x.shape.dim(0) {
        let xb = b * c * hw;
        let ob = b * m * ohw;
        for p in 0..ohw {
            let q = xb + (p / ow) * sh * w + (p % ow) * sw;
            let mut o0 = 0;
            while o0 < m {
                let block = &mut acc[..CHUNK.min(m - o0)];
                match x.view.as_f32() {
                    Some(xs) => accumulate(|ch| xs.get(q + ch * hw).copied().unwrap_or(0.0), c, wt.view, m, bias, o0, block),
                    None => {
                        let xv = x.view;
                        accumulate(
                            |ch| chunk(xv, q + ch * hw, 1, &mut xbuf).first().copied().unwrap_or(0.0),
                            c,
                            wt.view,
                            m,
                            bias,
                            o0,
                            block,
                        )
                    }
                }
                for (j, &v) in block.iter().enumerate() {
                    if let Some(o) = out.get_mut(ob + (o0 + j) * ohw + p) {
                        *o = a.act.apply(v);
                    }
                }
                o0 += block.len();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{execute_kernel_in, Operand, ALL_OPS, INPUT_SPARSE_BIT};
    use crate::format::kernel;
    use crate::op::{Activation, ConvAttrs, Op, OpError};
    use crate::view::View;
    use proptest::prelude::*;

    /// `v` with a fraction `zeros` of its elements (chosen by `seed`) set to zero.
    fn sparsify(mut v: Vec<f32>, zeros: f64, seed: u64) -> Vec<f32> {
        let r = data(v.len(), seed ^ 0x5eed);
        for (x, r) in v.iter_mut().zip(r) {
            if ((r as f64 + 1.0) / 2.0) < zeros {
                *x = if r > 0.0 { 0.0 } else { -0.0 };
            }
        }
        v
    }

    /// `[a, b, rest..]` row-major → `[b, a, rest..]`.
    fn transpose01(w: &[f32], a: usize, b: usize) -> Vec<f32> {
        let rest = w.len() / (a * b);
        let mut t = vec![0.0; w.len()];
        for i in 0..a {
            for j in 0..b {
                t[(j * a + i) * rest..(j * a + i + 1) * rest].copy_from_slice(&w[(i * b + j) * rest..(i * b + j + 1) * rest]);
            }
        }
        t
    }

    const ZEROS: [f64; 4] = [0.0, 0.5, 0.9, 1.0];

    /// The small-plane kernel called directly on every SIMD tier of this CPU (AVX-512 and AVX2
    /// on x86, NEON on aarch64) against the f64 definition: planes of 1 to 36 positions,
    /// ragged output counts, inputs zero at some or all positions, with and without bias.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    #[allow(clippy::vec_init_then_push)]
    fn small_plane_kernel_matches_naive_on_every_tier() {
        type Tier = Box<dyn Fn(&[f32], usize, usize, &[f32], usize, &[f32], Activation, &mut [f32]) -> bool>;
        let mut tiers: Vec<Tier> = Vec::new();
        #[cfg(target_arch = "x86_64")]
        if let Some(f) = super::super::x86::Fma::detect() {
            tiers.push(Box::new(move |x, hw, c, wt, m, b, act, o| f.im_1x1(x, hw, c, wt, m, b, act, o)));
            tiers.push(Box::new(move |x, hw, c, wt, m, b, act, o| f.avx2_only().im_1x1(x, hw, c, wt, m, b, act, o)));
        }
        #[cfg(target_arch = "aarch64")]
        tiers.push(Box::new(|x, hw, c, wt, m, b, act, o| super::super::neon::Neon.im_1x1(x, hw, c, wt, m, b, act, o)));
        let mut seed = 0u64;
        // Under Miri (which checks the AVX2 tier's pointer arithmetic) a few small shapes.
        let (planes, shapes): (&[usize], &[(usize, usize)]) = if cfg!(miri) {
            (&[1, 5, 7, 13], &[(3, 17), (2, 40)])
        } else {
            (&[1, 2, 3, 5, 6, 9, 12, 13, 16, 25, 36], &[(1, 1), (3, 17), (8, 16), (8, 22), (40, 33), (5, 107), (17, 100), (64, 300)])
        };
        for &hw in planes {
            for &(c, m) in shapes {
                for zeros in ZEROS {
                    seed += 1;
                    let x = sparsify(data(c * hw, seed), zeros, seed);
                    let wt = data(c * m, seed + 1);
                    let b = if seed.is_multiple_of(2) { data(m, seed + 2) } else { Vec::new() };
                    let act = ACTS[(seed % 3) as usize];
                    let mut want = vec![0.0f64; m * hw];
                    for o in 0..m {
                        for p in 0..hw {
                            let mut acc = b.get(o).map_or(0.0, |&v| v as f64);
                            for ci in 0..c {
                                acc += x[ci * hw + p] as f64 * wt[ci * m + o] as f64;
                            }
                            want[o * hw + p] = act.apply(acc as f32) as f64;
                        }
                    }
                    for (t, k) in tiers.iter().enumerate() {
                        let mut got = vec![f32::NAN; m * hw];
                        assert!(k(&x, hw, c, &wt, m, &b, act, &mut got), "tier {t} refused hw {hw}");
                        assert_close(&got, &want, 1e-5);
                    }
                }
            }
        }
        // Too large a plane, or short slices: refused, nothing written.
        for k in &tiers {
            let mut o = vec![1.0f32; 37];
            assert!(!k(&[0.0; 37], 37, 1, &[0.0], 1, &[], Activation::None, &mut o));
            assert!(!k(&[0.0; 4], 4, 2, &[0.0; 4], 2, &[], Activation::None, &mut o[..8]));
            assert!(o.iter().all(|&v| v == 1.0));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(200)))]
        /// `accumulate` adds the non-zero inputs' rows in input order, each as its own pass
        /// would (the four-at-a-time loop included): the bits of the plain loop.
        #[test]
        fn accumulate_is_the_plain_loop_bit_for_bit(k in 1usize..40, n in 1usize..50, o0 in 0usize..8, zeros in 0u32..4, bias in any::<bool>(), seed in 0u64..1000) {
            let (n, o0) = (n + o0, o0.min(n));
            let len = n - o0;
            let x: Vec<f32> = data(k, seed).iter().enumerate().map(|(i, &v)| if (i as u32 * 7 + seed as u32) % 4 < zeros { 0.0 } else { v }).collect();
            let w = data(k * n, seed + 1);
            let b = data(n, seed + 2);
            let bv = bias.then_some(View::F32(&b));
            let mut want: Vec<f32> = (0..len).map(|j| if bias { b[o0 + j] } else { 0.0 }).collect();
            for (c, &xv) in x.iter().enumerate().filter(|(_, &v)| v != 0.0) {
                for (j, a) in want.iter_mut().enumerate() {
                    *a += xv * w[c * n + o0 + j];
                }
            }
            let mut got = vec![f32::NAN; len];
            super::accumulate(|c| x[c], k, View::F32(&w), n, bv, o0, &mut got);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&got), bits(&want));
        }

        #[test]
        fn dense_matches_naive(lead in proptest::collection::vec(1usize..4, 0..3), k in 1usize..300, n in 1usize..600,
                               zi in 0usize..4, f16 in any::<bool>(), bias in any::<bool>(), act in 0usize..3, seed in 0u64..1000) {
            let rows: usize = lead.iter().product();
            let mut xd = lead.clone();
            xd.push(k);
            let x = sparsify(data(rows * k, seed), ZEROS[zi], seed);
            let w = round_f16(&data(n * k, seed + 1));
            let b = data(n, seed + 2);
            let op = Op::Dense { act: ACTS[act] };
            let wt = transpose01(&w, n, k);
            let wt16 = f16le(&wt);
            let wview = if f16 { View::F16Le(&wt16) } else { View::F32(&wt) };
            let mut ops = vec![Operand { view: View::F32(&x), shape: sh(&xd) }, Operand { view: wview, shape: sh(&[k, n]) }];
            if bias {
                ops.push(Operand { view: View::F32(&b), shape: sh(&[n]) });
            }
            let mut yd = lead.clone();
            yd.push(n);
            let y = sh(&yd);
            let mut got = vec![f32::NAN; rows * n];
            prop_assert_eq!(execute_kernel_in::<ALL_OPS>(&op, kernel::INPUT_SPARSE, &ops, &mut got, &y), Ok(()));
            assert_dense_close(&got, &x, rows, k, &w, n, bias.then_some(&b[..]), ACTS[act], 1e-5);
        }

        #[test]
        fn conv1x1_matches_naive(batch in 1usize..3, c in 1usize..40, m in 1usize..300, h in 1usize..7, w in 1usize..7, one_d in any::<bool>(),
                                 stride in 1u32..3, zi in 0usize..4, bias in any::<bool>(), act in 0usize..3, seed in 0u64..1000) {
            let (xd, wd): (Vec<usize>, Vec<usize>) = if one_d { (vec![batch, c, w], vec![m, c, 1]) } else { (vec![batch, c, h, w], vec![m, c, 1, 1]) };
            let a = ConvAttrs { group: 1, stride: [if one_d { 1 } else { stride }, stride], dilation: [1, 1], pads: [0; 4], act: ACTS[act] };
            let op = Op::Conv(a);
            let x = sparsify(data(xd.iter().product(), seed), ZEROS[zi], seed);
            let wv = data(m * c, seed + 1);
            let b = data(m, seed + 2);
            let y = op.infer(&[sh(&xd), sh(&wd)]).unwrap();
            let yd: Vec<usize> = y.dims().iter().map(|&d| d as usize).collect();
            let wt = transpose01(&wv, m, c);
            let mut wtd = wd.clone();
            wtd.swap(0, 1);
            let mut ops = vec![Operand { view: View::F32(&x), shape: sh(&xd) }, Operand { view: View::F32(&wt), shape: sh(&wtd) }];
            if bias {
                ops.push(Operand { view: View::F32(&b), shape: sh(&[m]) });
            }
            let mut got = vec![f32::NAN; y.numel().unwrap()];
            prop_assert_eq!(execute_kernel_in::<ALL_OPS>(&op, kernel::INPUT_SPARSE, &ops, &mut got, &y), Ok(()));
            assert_conv_close(&got, &x, &xd, &wv, &wd, bias.then_some(&b[..]), &a, &yd, 1e-5);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(150)))]
        #[test]
        fn codebook_dense_matches_naive(rows in 1usize..3, k in 1usize..200, n in 1usize..300, bits in 1u8..=8, f16_values in any::<bool>(),
                                        groups in 1usize..=4, zi in 0usize..4, bias in any::<bool>(), act in 0usize..3, seed in 0u64..1000) {
            // The stored matrix is input-major: K rows (row groups over inputs) of N indices.
            let (payload, wt) = quantized(k, n, bits, f16_values, groups, seed);
            let w = transpose01(&wt, k, n);
            let x = sparsify(data(rows * k, seed + 5), ZEROS[zi], seed);
            let b = data(n, seed + 6);
            let op = Op::Dense { act: ACTS[act] };
            let cb = crate::codebook::Codebook::parse(&payload, k, n).unwrap();
            let mut ops = vec![Operand { view: View::F32(&x), shape: sh(&[rows, k]) }, Operand { view: View::Codebook(cb), shape: sh(&[k, n]) }];
            if bias {
                ops.push(Operand { view: View::F32(&b), shape: sh(&[n]) });
            }
            let mut got = vec![f32::NAN; rows * n];
            prop_assert_eq!(execute_kernel_in::<ALL_OPS>(&op, kernel::INPUT_SPARSE, &ops, &mut got, &sh(&[rows, n])), Ok(()));
            assert_dense_close(&got, &x, rows, k, &w, n, bias.then_some(&b[..]), ACTS[act], 1e-5);
        }

        #[test]
        fn codebook_conv1x1_matches_naive(c in 1usize..30, m in 1usize..80, h in 1usize..5, w in 1usize..5, bits in 1u8..=8,
                                          groups in 1usize..=4, zi in 0usize..4, seed in 0u64..1000) {
            let (xd, wd) = (vec![1, c, h, w], vec![m, c, 1, 1]);
            let a = ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [0; 4], act: Activation::Relu };
            let x = sparsify(data(c * h * w, seed), ZEROS[zi], seed);
            let (payload, wt) = quantized(c, m, bits, true, groups, seed);
            let wv = transpose01(&wt, c, m);
            let b = data(m, seed + 2);
            let y = Op::Conv(a).infer(&[sh(&xd), sh(&wd)]).unwrap();
            let yd: Vec<usize> = y.dims().iter().map(|&d| d as usize).collect();
            let cb = crate::codebook::Codebook::parse(&payload, c, m).unwrap();
            let ops = [Operand { view: View::F32(&x), shape: sh(&xd) }, Operand { view: View::Codebook(cb), shape: sh(&[c, m, 1, 1]) },
                       Operand { view: View::F32(&b), shape: sh(&[m]) }];
            let mut got = vec![f32::NAN; y.numel().unwrap()];
            prop_assert_eq!(execute_kernel_in::<ALL_OPS>(&Op::Conv(a), kernel::INPUT_SPARSE, &ops, &mut got, &y), Ok(()));
            assert_conv_close(&got, &x, &xd, &wv, &wd, Some(&b), &a, &yd, 1e-5);
        }
    }

    /// On small planes an input-major codebook weight runs the f32 small-plane kernel a block of
    /// outputs at a time: bit for bit the f32 kernel's result on the decoded weights, for several
    /// blocks with a ragged last one, every width (4-bit in registers on AVX-512), batches,
    /// and zero inputs skipped. Shapes the kernel cannot take fall back to the per-position loop.
    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn small_plane_codebook_equals_the_f32_kernel_on_decoded_weights() {
        let cases: &[(usize, usize, [usize; 2], u8, usize)] = if cfg!(miri) {
            &[(20, 24, [2, 2], 4, 1)]
        } else {
            &[
                (300, 100, [3, 3], 4, 2),
                (40, 37, [6, 6], 3, 1),
                (1024, 16, [2, 2], 4, 1),
                (7, 8, [1, 1], 8, 1),
                (64, 130, [3, 1], 2, 1),
                (1100, 8, [2, 2], 4, 1),
            ]
        };
        for (i, &(c, m, [h, w], bits, batch)) in cases.iter().enumerate() {
            let seed = 40 + i as u64;
            let (payload, wt) = quantized(c, m, bits, true, 3, seed);
            let x = sparsify(data(batch * c * h * w, seed + 1), 0.3, seed);
            let mut x = x;
            // Whole zero channels, which the kernel skips.
            for n in 0..batch {
                for ch in (0..c).step_by(3) {
                    x[(n * c + ch) * h * w..(n * c + ch + 1) * h * w].fill(0.0);
                }
            }
            let b = data(m, seed + 2);
            let a = ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [0; 4], act: Activation::Relu };
            let y = sh(&[batch, m, h, w]);
            let cb = crate::codebook::Codebook::parse(&payload, c, m).unwrap();
            let run = |wv: View<'_>| {
                let ops = [
                    Operand { view: View::F32(&x), shape: sh(&[batch, c, h, w]) },
                    Operand { view: wv, shape: sh(&[c, m, 1, 1]) },
                    Operand { view: View::F32(&b), shape: sh(&[m]) },
                ];
                let mut got = vec![f32::NAN; batch * m * h * w];
                assert_eq!(execute_kernel_in::<ALL_OPS>(&Op::Conv(a), kernel::INPUT_SPARSE, &ops, &mut got, &y), Ok(()));
                got
            };
            let (coded, plain) = (run(View::Codebook(cb)), run(View::F32(&wt)));
            // 1100 inputs leave no block of 8 outputs within the stack buffer: the fallback,
            // unless 4-bit codes run in registers (AVX-512).
            #[cfg(target_arch = "x86_64")]
            let in_registers = bits == 4 && crate::kernels::x86::Codes::detect().is_some_and(|k| k.wide());
            #[cfg(not(target_arch = "x86_64"))]
            let in_registers = false;
            if c * 8 <= super::IM_DECODED || in_registers {
                assert_eq!(
                    coded.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    plain.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "case {i}"
                );
            }
            let wv = transpose01(&wt, c, m);
            let want = naive_conv(&x, &[batch, c, h, w], &wv, &[m, c, 1, 1], Some(&b), &a, &[batch, m, h, w]);
            assert_close(&coded, &want, 1e-4);
        }
    }

    #[test]
    fn nan_and_infinite_inputs_propagate() {
        let x = [0.0, f32::NAN, 0.0, f32::INFINITY];
        let w = [1.0f32; 8]; // [K=4, N=2]
        let ops = [Operand { view: View::F32(&x), shape: sh(&[1, 4]) }, Operand { view: View::F32(&w), shape: sh(&[4, 2]) }];
        let mut out = [0.0; 2];
        assert_eq!(
            execute_kernel_in::<ALL_OPS>(&Op::Dense { act: Activation::None }, kernel::INPUT_SPARSE, &ops, &mut out, &sh(&[1, 2])),
            Ok(())
        );
        assert!(out.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn refused_where_it_does_not_apply() {
        let x = data(2 * 9, 1);
        let w = data(3 * 2 * 9, 2);
        let y = sh(&[1, 3, 1, 1]);
        let mut out = [0.0; 3];
        // A 3×3 kernel is not 1×1.
        let conv = Op::Conv(ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [0; 4], act: Activation::None });
        let ops = [Operand { view: View::F32(&x), shape: sh(&[1, 2, 3, 3]) }, Operand { view: View::F32(&w), shape: sh(&[2, 3, 3, 3]) }];
        assert_eq!(execute_kernel_in::<ALL_OPS>(&conv, kernel::INPUT_SPARSE, &ops, &mut out, &y), Err(OpError::BadAttribute));
        // Padding.
        let padded = Op::Conv(ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [1, 1, 1, 1], act: Activation::None });
        let w1 = data(6, 3);
        let ops =
            [Operand { view: View::F32(&x[..2]), shape: sh(&[1, 2, 1, 1]) }, Operand { view: View::F32(&w1), shape: sh(&[2, 3, 1, 1]) }];
        let mut o9 = [0.0; 27];
        assert_eq!(
            execute_kernel_in::<ALL_OPS>(&padded, kernel::INPUT_SPARSE, &ops, &mut o9, &sh(&[1, 3, 3, 3])),
            Err(OpError::BadAttribute)
        );
        // A unary operator.
        let relu = Op::Unary(crate::op::UnaryKind::Relu);
        let one = [Operand { view: View::F32(&x[..3]), shape: sh(&[3]) }];
        assert_eq!(execute_kernel_in::<ALL_OPS>(&relu, kernel::INPUT_SPARSE, &one, &mut out, &sh(&[3])), Err(OpError::BadAttribute));
        // Without the sparse kernels in the set.
        let dense = Op::Dense { act: Activation::None };
        let wd = data(6, 4);
        let ops = [Operand { view: View::F32(&x[..2]), shape: sh(&[1, 2]) }, Operand { view: View::F32(&wd), shape: sh(&[2, 3]) }];
        const NO_SPARSE: u128 = !(1u128 << INPUT_SPARSE_BIT);
        assert!(matches!(
            execute_kernel_in::<NO_SPARSE>(&dense, kernel::INPUT_SPARSE, &ops, &mut out, &sh(&[1, 3])),
            Err(OpError::UnknownKind(_))
        ));
        assert_eq!(execute_kernel_in::<ALL_OPS>(&dense, kernel::INPUT_SPARSE, &ops, &mut out, &sh(&[1, 3])), Ok(()));
    }
}
