//! Conv with a codebook weight: each output channel's filter is decoded once, a chunk at a time,
//! and run with the dense convolution's tap loop.

use super::conv::{self, add_tap, Geom};
#[cfg(target_arch = "x86_64")]
use super::uninit;
use super::{sub, sub_mut, zeroed, Operand, CHUNK};
use crate::codebook::{Codebook, Table};
use crate::op::{Activation, ConvAttrs, OpError};
use crate::shape::Shape;
use crate::view::View;
#[cfg(target_arch = "x86_64")]
use core::mem::MaybeUninit;

/// Filter weights [`conv_codebook`] decodes onto the stack at once for the dense Conv kernel
/// (160 KiB, on SIMD hosts only). Every Conv of the real models that is not input-major fits
/// whole: ResNet-8's 64 → 64 3 × 3 (36 864 weights) and hello_edge_cnn's 28 → 30 10 × 4 (33 600)
/// ran at 0.81–0.82 of the dense speed in two blocks or K chunks with 72 KiB, 0.86–0.94 whole
/// (4-bit, AVX-512, the same layer interleaved with its dense twin); with 32 KiB they took the
/// chunked decoder at 0.53–0.68.
const WHOLE: usize = 40960;

/// Writes filters `m0 ..` of `w` (`kdim` weights each) into `buf` (whole filters) through
/// `decode(m, 0, filter)` (the 4-bit x86 decoders write their own buffers, see
/// `Decoder4::decode_rows`).
fn decode_filters(m0: usize, kdim: usize, buf: &mut [f32], decode: &mut impl FnMut(usize, usize, &mut [f32])) {
    for (i, f) in buf.chunks_exact_mut(kdim.max(1)).enumerate() {
        decode(m0 + i, 0, f);
    }
}

/// Convolution with weight `w` (`[M, C/g, kh, kw]` as the `M × (C/g·kh·kw)` matrix); inputs
/// `x, w[, bias]` validated by `execute`. For each output channel `m`, the filter is decoded into
/// a stack buffer (`CHUNK` values at a time, once for the whole batch), and each weight
/// `w[m, c, ky, kx]` adds its multiple of the shifted input plane of channel `group(m) · C/g + c`
/// to output plane `m` of every sample ([`add_tap`], in the dense kernel's order). Operands the
/// fast path cannot take (a non-native input, a window of a constant) run the dense kernels,
/// which read the weight element-wise.
pub(super) fn conv_codebook(a: &ConvAttrs, inputs: &[Operand<'_>], w: &Codebook<'_>, out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let x = &inputs[0];
    let bias = inputs.get(2).map(|b| b.view);
    let g = Geom::new(a, &x.shape, &inputs[1].shape, y);
    let taps = g.kh * g.kw;
    let info = w.info();
    let fits = w.is_whole() && info.rows == g.m && Some(info.cols) == g.cg.checked_mul(taps) && taps > 0 && g.mg > 0;
    // SIMD CPUs: the register-tiled Conv with each filter chunk decoded once per inference.
    if let (Some(xs), Some(mk)) = (x.view.as_f32().filter(|_| fits && super::gemm::decoded_applies(&g)), super::gemm::simd()) {
        use super::gemm::Micro;
        let batch = x.shape.dim(0);
        let (in_len, out_len) = (x.shape.prod(1, x.shape.rank()), y.prod(1, y.rank()));
        // Built on first use (7 KiB to clear): the x86 decoders of 4-bit rows need none.
        let mut table: Option<Table> = None;
        let parts = w.parts();
        // Whole filters decoded onto the stack, a block of them at a time, run the dense Conv
        // kernel itself (in-place and row-table tiles, register pairs): every filter at once
        // when they fit, else blocks of a group-1 Conv. The same sums as the dense kernel on the
        // decoded weights.
        let kdim = info.cols;
        // Whole register tiles of filters per block; more than two blocks, or a block of fewer
        // than two register tiles, would gather every input panel again for too few filters,
        // where the chunked decoder gathers each once per K chunk for every filter, unless the
        // output plane is one pixel pair (its panels are small, and the chunked decoder's K
        // chunks would be shallow). Measured (`sprig bench --per-layer`, 4-bit): ResNet-8's 64
        // filters of 576 in two blocks of 32 at 0.82 of dense (chunked: 1.23× the blocks' time);
        // hello_edge_cnn's 30 filters of 1120 chunked at 0.86–0.88 of dense, and pruned to 30 of
        // 720, chunked in 0.74 of the time of blocks of 24 and 6.
        let most = WHOLE / kdim.max(1);
        let blocks = g.m.div_ceil(most.max(1));
        // Whole register tiles per block where that takes no more blocks, else equal blocks.
        let tiled = most / super::gemm::MR * super::gemm::MR;
        let block = if tiled > 0 && g.m.div_ceil(tiled) == blocks { tiled } else { g.m.div_ceil(blocks.max(1)) };
        let smallest = g.m.saturating_sub(blocks.saturating_sub(1) * block);
        let rows = if g.m * kdim <= WHOLE {
            g.m
        } else if g.mg == g.m && most > 0 && ((blocks <= 2 && smallest >= 2 * super::gemm::MR) || g.oh * g.ow <= 2 * super::gemm::NR) {
            block
        } else {
            0
        };
        if rows > 0 {
            // Runs filters `m0 .. m0 + r`, decoded in `wb`, over every sample.
            let mut block = |m0: usize, r: usize, wb: &[f32]| -> Result<(), OpError> {
                // A block of a group-1 Conv is a group-1 Conv of `r` filters.
                let gb = if r == g.m { g } else { Geom { m: r, mg: r, ..g } };
                let bias_b = match bias {
                    Some(b) => Some(b.slice(m0, r).ok_or(OpError::ShapeMismatch)?),
                    None => None,
                };
                for n in 0..batch {
                    let xn = sub(xs, n * in_len, in_len)?;
                    let on = sub_mut(out, n * out_len + m0 * g.oh * g.ow, r * g.oh * g.ow)?;
                    mk.run(
                        #[inline(always)]
                        || super::conv::conv_simd(mk, &gb, xn, wb, bias_b, a.act, on),
                    )?;
                }
                Ok(())
            };
            // 4-bit codes on x86 (AVX-512 registers, or AVX2 byte planes): decoded into a buffer
            // nobody clears (every float of a block is written before the block runs).
            #[cfg(target_arch = "x86_64")]
            if let Some(books) = super::x86::Codes::detect().and_then(|c| c.decoder4(&parts)) {
                let mut go = |buf: &mut [MaybeUninit<f32>]| -> Result<(), OpError> {
                    for m0 in (0..g.m).step_by(rows) {
                        let r = rows.min(g.m - m0);
                        let wb = buf.get_mut(..r * kdim).and_then(|b| books.decode_rows(&parts, m0, kdim, b));
                        block(m0, r, wb.ok_or(OpError::ShapeMismatch)?)?;
                    }
                    Ok(())
                };
                return match rows * kdim {
                    0..=4096 => uninit::<4096, _>(|b| go(b)),
                    4097..=18432 => uninit::<18432, _>(|b| go(b)),
                    _ => uninit::<WHOLE, _>(|b| go(b)),
                };
            }
            // 4-bit codes on aarch64: through the NEON byte planes.
            #[cfg(target_arch = "aarch64")]
            let books = super::gemm::neon().and_then(|n| n.books4(&parts));
            let mut decode = |m: usize, k0: usize, buf: &mut [f32]| {
                #[cfg(target_arch = "aarch64")]
                if books.as_ref().is_some_and(|b| b.decode(&parts, m, k0, buf)) {
                    return;
                }
                table.get_or_insert_with(Table::new).decode_parts(&parts, m, k0, buf)
            };
            let mut run = |wbuf: &mut [f32]| -> Result<(), OpError> {
                for m0 in (0..g.m).step_by(rows) {
                    let r = rows.min(g.m - m0);
                    let wb = wbuf.get_mut(..r * kdim).ok_or(OpError::ShapeMismatch)?;
                    decode_filters(m0, kdim, wb, &mut decode);
                    block(m0, r, wb)?;
                }
                Ok(())
            };
            // Only as many floats cleared as the largest block needs, in five sizes.
            return match rows * kdim {
                0..=1024 => zeroed::<1024, _>(|b| run(b)),
                1025..=4096 => zeroed::<4096, _>(|b| run(b)),
                4097..=8192 => zeroed::<8192, _>(|b| run(b)),
                8193..=18432 => zeroed::<18432, _>(|b| run(b)),
                _ => zeroed::<WHOLE, _>(|b| run(b)),
            };
        }
        // Filter chunks decoded per K chunk: 4-bit codes through the x86 decoders (codebooks of
        // at most 16 groups in AVX-512 registers, of at most 16 as AVX2 byte planes), else
        // through every group's byte table, kept for the whole call (32 KiB to clear, so only
        // then).
        #[cfg(target_arch = "x86_64")]
        let books = super::x86::Codes::detect().and_then(|c| c.decoder4(&parts));
        #[cfg(target_arch = "aarch64")]
        let books = super::gemm::neon().and_then(|n| n.books4(&parts));
        #[cfg(all(not(any(target_arch = "x86_64", target_arch = "aarch64")), not(target_os = "none")))]
        let books: Option<()> = None;
        #[cfg(not(target_os = "none"))]
        let mut pairs = (books.is_none() && crate::codebook::PairTables::apply(&parts)).then(crate::codebook::PairTables::new);
        let mut decode = |m: usize, k0: usize, buf: &mut [f32]| {
            // 4-bit on x86: 16 weights per permute (AVX-512) or 64 per 29 shuffles (AVX2); on
            // aarch64 32 per eight table lookups; the chunks start on even `k0`.
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            if books.as_ref().is_some_and(|b| b.decode(&parts, m, k0, buf)) {
                return;
            }
            #[cfg(not(target_os = "none"))]
            if let Some(pairs) = pairs.as_mut() {
                return pairs.decode(&parts, m, k0, buf);
            }
            table.get_or_insert_with(Table::new).decode_parts(&parts, m, k0, buf);
        };
        // (The block path's `conv_simd` does the same with each block's bias.)
        let mut decoded = None;
        let bias = super::conv::native_bias(bias, g.m, &mut decoded);
        for n in 0..batch {
            let xn = sub(xs, n * in_len, in_len)?;
            let on = sub_mut(out, n * out_len, out_len)?;
            mk.run(
                #[inline(always)]
                || super::gemm::conv_decoded(mk, &g, xn, &mut decode, bias, a.act, on),
            )?;
        }
        return Ok(());
    }
    // SIMD CPUs, depthwise: the whole (small) filter bank decoded once, then the dense
    // depthwise kernel.
    const DW_MAX: usize = 4096;
    if let (Some(xs), Some(mk)) = (
        x.view.as_f32().filter(|_| fits && g.cg == 1 && g.mg == 1 && g.m * taps <= DW_MAX),
        super::gemm::simd().filter(|&mk| super::depthwise::applies(mk, &g)),
    ) {
        use super::gemm::Micro;
        // Built on first use, as above.
        let mut table: Option<Table> = None;
        let parts = w.parts();
        let mut decode = |m: usize, k0: usize, buf: &mut [f32]| table.get_or_insert_with(Table::new).decode_parts(&parts, m, k0, buf);
        let batch = x.shape.dim(0);
        let (in_len, out_len) = (x.shape.prod(1, x.shape.rank()), y.prod(1, y.rank()));
        let mut filters = |wb: &[f32]| -> Result<(), OpError> {
            let wv = View::F32(wb);
            for n in 0..batch {
                let xn = sub(xs, n * in_len, in_len)?;
                let on = sub_mut(out, n * out_len, out_len)?;
                mk.run(
                    #[inline(always)]
                    || super::depthwise::depthwise(mk, &g, xn, wv, bias, a.act, on),
                )?;
            }
            Ok(())
        };
        // 4-bit codes on x86: decoded into a buffer nobody clears, as above.
        #[cfg(target_arch = "x86_64")]
        if let Some(books) = super::x86::Codes::detect().and_then(|c| c.decoder4(&parts)) {
            let mut go = |buf: &mut [MaybeUninit<f32>]| {
                let wb = buf.get_mut(..g.m * taps).and_then(|b| books.decode_rows(&parts, 0, taps, b));
                filters(wb.ok_or(OpError::ShapeMismatch)?)
            };
            return match g.m * taps {
                0..=1024 => uninit::<1024, _>(|b| go(b)),
                _ => uninit::<DW_MAX, _>(|b| go(b)),
            };
        }
        let mut run = |wbuf: &mut [f32]| -> Result<(), OpError> {
            let wb = wbuf.get_mut(..g.m * taps).ok_or(OpError::ShapeMismatch)?;
            decode_filters(0, taps, wb, &mut decode);
            filters(wb)
        };
        return match g.m * taps {
            0..=1024 => zeroed::<1024, _>(|b| run(b)),
            _ => zeroed::<DW_MAX, _>(|b| run(b)),
        };
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(xs) = x.view.as_f32().filter(|_| fits) {
        if fused_patches(&g, xs, x.shape.dim(0), w, bias, a.act, out, y)? {
            return Ok(());
        }
    }
    let Some(xs) = x.view.as_f32().filter(|_| fits) else {
        return conv::conv::<0>(a, inputs, out, y);
    };
    let batch = x.shape.dim(0);
    if PATCH_BLOCKS && super::gemm::simd().is_none() && g.prefers_patches() {
        return patch_blocks(&g, xs, batch, w, bias, a.act, out, y);
    }
    let (in_len, out_len) = (x.shape.prod(1, x.shape.rank()), y.prod(1, y.rank()));
    let (plane, in_plane) = (g.oh * g.ow, g.h * g.w);
    let mut table = Table::new();
    let mut wbuf = [0.0f32; CHUNK];
    let parts = w.parts();
    for mo in 0..g.m {
        let grp = mo / g.mg;
        let b0 = bias.map_or(0.0, |b| b.get(mo));
        for n in 0..batch {
            sub_mut(out, n * out_len + mo * plane, plane)?.fill(b0);
        }
        let t = table.of_parts_row(&parts, mo);
        let mut c0 = 0;
        while c0 < info.cols {
            let len = CHUNK.min(info.cols - c0);
            let wc = &mut wbuf[..len];
            parts.decode(mo, c0, t, wc);
            for n in 0..batch {
                let xn = sub(xs, n * in_len, in_len)?;
                let op = sub_mut(out, n * out_len + mo * plane, plane)?;
                for (col, &wv) in (c0..).zip(wc.iter()) {
                    let (icl, tap) = (col / taps, col % taps);
                    let xp = sub(xn, (grp * g.cg + icl) * in_plane, in_plane)?;
                    add_tap(&g, xp, wv, tap / g.kw, tap % g.kw, op)?;
                }
            }
            c0 += len;
        }
        if a.act != Activation::None {
            for n in 0..batch {
                a.act.apply_all(sub_mut(out, n * out_len + mo * plane, plane)?);
            }
        }
    }
    Ok(())
}

/// Most decoded weights [`patch_blocks`] keeps on the stack (16 KiB): blocks of filters over
/// one channel chunk of at most 128 weights, so at least 32 filters a block. Each block gathers
/// the input patches again, so blocks are as large as this allows. On Cortex-M4F (exact
/// instructions per MAC for the model at 4 bits): blocks of whole filters instead of chunks
/// took ResNet-8 5.59 instead of 3.84 (its 576-weight filters four to a block); blocks of 8 KiB
/// kws_dscnn 5.45, of 4 KiB 7.08 instead of 4.65 (its pointwise layers in two and four blocks).
const PATCH_BLOCK: usize = 4096;

/// Whether [`patch_blocks`] runs: everywhere but soft-float bare-metal targets (Cortex-M0,
/// whose multiply-adds are library calls that dwarf the decode, and whose RAM is the smallest).
const PATCH_BLOCKS: bool = !(cfg!(target_os = "none") && cfg!(target_abi = "eabi"));

/// Without SIMD kernels (Cortex-M), a Conv the dense kernel runs as patches
/// ([`Geom::prefers_patches`]): blocks of filters decoded onto the stack a channel chunk at a
/// time, once per call ([`conv::conv_patches_decoded`]). The same sums, bit for bit, as the
/// dense patch Conv on the decoded weights. Cortex-M4F, exact instructions per MAC at 4 bits
/// (the per-weight plane loop before; dense f32 in brackets): kws_dscnn 8.84 → 4.65 (4.55),
/// MNIST 7.87 → 4.73 (4.64), ResNet-8 9.35 → 3.84 (3.57), VWW 5.33 → 4.71 (4.01).
#[allow(clippy::too_many_arguments)]
fn patch_blocks(
    g: &Geom,
    xs: &[f32],
    batch: usize,
    w: &Codebook<'_>,
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
    y: &Shape,
) -> Result<(), OpError> {
    let (in_len, out_len) = (g.c * g.h * g.w, y.prod(1, y.rank()));
    let parts = w.parts();
    let mut table = Table::new();
    let run = |buf: &mut [f32]| -> Result<(), OpError> {
        for n in 0..batch {
            let xn = sub(xs, n * in_len, in_len)?;
            conv::conv_patches_decoded(
                g,
                xn,
                buf,
                |m, k0, r: &mut [f32]| table.decode_parts(&parts, m, k0, r),
                bias,
                act,
                sub_mut(out, n * out_len, out_len)?,
            )?;
        }
        Ok(())
    };
    // One frame size for every layer, so that `sprig size` knows the stack (16 KiB beside the
    // other kernels' frames) and one copy of the loop is linked.
    zeroed::<PATCH_BLOCK, _>(run)
}

/// On x86-64 with AVX2 + FMA, 2-, 4- and 8-bit codes, at most 16 groups, and layers where the
/// dense kernel gathers patches: the dense patch loop with every filter dot taken straight from
/// the packed codes ([`super::x86::Codes::dot`]; nothing decoded to memory but the groups'
/// codebooks). False when it does not apply.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn fused_patches(
    g: &Geom,
    xs: &[f32],
    batch: usize,
    w: &Codebook<'_>,
    bias: Option<View<'_>>,
    act: Activation,
    out: &mut [f32],
    y: &Shape,
) -> Result<bool, OpError> {
    use crate::codebook::TABLE_LEN;
    const MAX_GROUPS: usize = 16;
    let info = w.info();
    let bits = info.bits as usize;
    let per = 8 / bits.max(1);
    if !(matches!(bits, 2 | 4 | 8) && info.groups <= MAX_GROUPS && g.prefers_patches() && g.kh * g.kw * per <= CHUNK) {
        return Ok(false);
    }
    let Some(codes) = super::x86::Codes::detect() else {
        return Ok(false);
    };
    let p = w.parts();
    let mut tables = [[0.0f32; TABLE_LEN]; MAX_GROUPS];
    for (gi, t) in tables.iter_mut().enumerate().take(info.groups) {
        p.load(gi, t);
    }
    let (in_len, out_len) = (g.c * g.h * g.w, y.prod(1, y.rank()));
    for n in 0..batch {
        let xn = sub(xs, n * in_len, in_len)?;
        let on = sub_mut(out, n * out_len, out_len)?;
        conv::patches_with(g, xn, per, bias, act, on, |m0, k0, patch, dots| {
            for (i, d) in dots.iter_mut().enumerate() {
                let t = &tables[p.group(m0 + i).min(MAX_GROUPS - 1)];
                let row = p.row(m0 + i).get(k0 / per..).unwrap_or(&[]);
                *d = codes.dot(bits, t, row, patch);
            }
        })?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{execute_in, ops_mask, Operand, CODEBOOK_BIT, SPARSE_BIT};
    use crate::codebook::Codebook;
    use crate::op::{kind, Activation, ConvAttrs, Op, OpError};
    use crate::view::View;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    struct Case {
        two_d: bool,
        batch: usize,
        g: usize,
        cg: usize,
        mg: usize,
        h: usize,
        w: usize,
        kh: usize,
        kw: usize,
        attrs: ConvAttrs,
        bias: bool,
        bits: u8,
        f16_values: bool,
        groups: usize,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            (any::<bool>(), 1usize..=3),
            (1usize..=3, 1usize..=4, 1usize..=4),
            (1usize..=8, 1usize..=10, 1usize..=3, 1usize..=3),
            ([1u32..=3, 1..=3], [1u32..=2, 1..=2], [0u32..=2, 0..=2, 0..=2, 0..=2]),
            (any::<bool>(), 0u8..3, 1u8..=8, any::<bool>(), 1usize..=4),
        )
            .prop_map(
                |((two_d, batch), (g, cg, mg), (h, w, kh, kw), (stride, dilation, pads), (bias, act, bits, f16_values, groups))| {
                    let act = match act {
                        0 => Activation::None,
                        1 => Activation::Relu,
                        _ => Activation::Clip { min: -0.5, max: 0.75 },
                    };
                    let (stride, dilation, pads, h, kh) = if two_d {
                        (stride, dilation, pads, h, kh)
                    } else {
                        ([1, stride[1]], [1, dilation[1]], [0, pads[1], 0, pads[3]], 1, 1)
                    };
                    let attrs = ConvAttrs { group: g as u32, stride, dilation, pads, act };
                    Case { two_d, batch, g, cg, mg, h, w, kh, kw, attrs, bias, bits, f16_values, groups }
                },
            )
    }

    fn check(c: &Case, seed: u64) {
        let (cin, m) = (c.g * c.cg, c.g * c.mg);
        let (xd, wd) = if c.two_d {
            (vec![c.batch, cin, c.h, c.w], vec![m, c.cg, c.kh, c.kw])
        } else {
            (vec![c.batch, cin, c.w], vec![m, c.cg, c.kw])
        };
        let x = data(xd.iter().product(), seed);
        let cols = wd[1..].iter().product();
        let (payload, w) = quantized(m, cols, c.bits, c.f16_values, c.groups, seed + 1);
        let b = data(m, seed + 2);
        // f32 sums drift from the f64 reference by their rounding, bounded relative to the sum of
        // the terms' magnitudes (a cancelling sum's result can be far smaller): Σ|w·x| + |b|.
        let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<f32>>();
        let (xa, wa, ba) = (abs(&x), abs(&w), abs(&b));
        let op = Op::Conv(c.attrs);
        let unaligned = [&[0u8][..], &payload].concat();
        for bytes in [&payload[..], &unaligned[1..]] {
            let cb = Codebook::parse(bytes, m, cols).unwrap();
            let mut ops = vec![Operand { view: View::F32(&x), shape: sh(&xd) }, Operand { view: View::Codebook(cb), shape: sh(&wd) }];
            if c.bias {
                ops.push(Operand { view: View::F32(&b), shape: sh(&[m]) });
            }
            let Ok((got, y)) = run_ops(&op, &ops) else {
                // Window larger than the padded input: rejected by `infer`.
                return;
            };
            let yd: Vec<usize> = y.dims().iter().map(|&d| d as usize).collect();
            let plain = ConvAttrs { act: Activation::None, ..c.attrs };
            let scale = naive_conv(&xa, &xd, &wa, &wd, c.bias.then_some(&ba[..]), &plain, &yd);
            assert_close_scaled(&got, &naive_conv(&x, &xd, &w, &wd, c.bias.then_some(&b[..]), &c.attrs, &yd), &scale, 1e-5);
            // The dense kernels on the same weights, stored and native, agree within rounding:
            // the fused AVX2 patch loop sums in 8 lanes, the SIMD tiles fuse their multiply-adds,
            // and the portable patch kernel sums four filters at a time in `k` order.
            let w32 = f32le(&w);
            ops[1].view = View::F32Le(&w32);
            let (dense, _) = run_ops(&op, &ops).unwrap();
            assert_close_scaled(&got, &dense.iter().map(|&v| v as f64).collect::<Vec<_>>(), &scale, 1e-5);
            ops[1].view = View::F32(&w);
            let (native, _) = run_ops(&op, &ops).unwrap();
            assert_close_scaled(&got, &native.iter().map(|&v| v as f64).collect::<Vec<_>>(), &scale, 1e-5);
            if c.bias {
                // An f16 bias (as `sprig compress` writes next to codebook weights), decoded up
                // front or a tile at a time, gives exactly the sums of its f32 values.
                let (b16, b16f) = (f16le(&b), round_f16(&b));
                ops[1].view = View::Codebook(cb);
                ops[2].view = View::F16Le(&b16);
                let (half, _) = run_ops(&op, &ops).unwrap();
                ops[2].view = View::F32(&b16f);
                let (full, _) = run_ops(&op, &ops).unwrap();
                assert_eq!(half.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), full.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(300)))]
        #[test]
        fn matches_naive(c in case(), seed in 0u64..1000) {
            check(&c, seed);
        }

        #[test]
        fn depthwise_matches_naive(c in case(), seed in 0u64..1000) {
            let g = c.g * 2;
            check(&Case { cg: 1, mg: 1, g, attrs: ConvAttrs { group: g as u32, ..c.attrs }, ..c.clone() }, seed);
        }
    }

    #[test]
    fn filters_longer_than_the_decode_buffer() {
        // 40 channels × 3 × 3 = 360 weights a filter: two chunks.
        let c = Case {
            two_d: true,
            batch: 2,
            g: 1,
            cg: 40,
            mg: 3,
            h: 5,
            w: 6,
            kh: 3,
            kw: 3,
            attrs: ConvAttrs { group: 1, stride: [2, 1], dilation: [1, 1], pads: [1, 1, 1, 1], act: Activation::Relu },
            bias: true,
            bits: 3,
            f16_values: false,
            groups: 2,
        };
        check(&c, 5);
    }

    /// Layers too large to decode at once (160 KiB): blocks of whole filters (group 1), and the
    /// chunked decoder (more than two blocks on a larger plane, grouped Convs).
    #[test]
    fn filter_banks_larger_than_the_stack_block() {
        // (groups, channels per group, filters per group, output rows of 6 pixels, kernel): 96
        // filters of 576 weights in blocks of 60 and 36; 40 filters of 1152 (blocks of 24 and 16
        // would leave one under two register tiles: chunked); 80 such filters (three blocks:
        // chunked on a 42-pixel plane, blocked on a 30-pixel one); two groups of 24 filters of
        // 1728 (chunked); 12 filters of 4608 (two blocks of 6 on a 30-pixel plane); 36 filters of
        // 1440 (blocks of 24 and 12: chunked); and as 1 × 1 Convs (read in place, chunked: 40
        // filters of 1280 channels; blocked: 96 of 576).
        let cases = [(1, 64, 96, 7, 3), (1, 128, 40, 7, 3), (1, 128, 80, 7, 3), (1, 128, 80, 5, 3), (2, 192, 24, 7, 3), (1, 512, 12, 5, 3)];
        for (g, cg, mg, h, k) in cases.into_iter().chain([(1, 160, 36, 7, 3), (1, 1280, 40, 7, 1), (1, 576, 96, 7, 1)]) {
            assert!(g * mg * cg * k * k > super::WHOLE);
            let p = if k == 3 { 1 } else { 0 };
            let c = Case {
                two_d: true,
                batch: 2,
                g,
                cg,
                mg,
                h,
                w: 6,
                kh: k,
                kw: k,
                attrs: ConvAttrs { group: g as u32, stride: [1, 1], dilation: [1, 1], pads: [p; 4], act: Activation::Relu },
                bias: true,
                bits: 4,
                f16_values: true,
                groups: 3,
            };
            check(&c, 7);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(200)))]
        /// The Cortex-M block path (reached here directly: this host has SIMD kernels) gives
        /// the dense patch Conv's sums on the decoded weights, bit for bit: through
        /// `patch_blocks`, and with a buffer of `quads` quads of filters (blocks of 4 to 12
        /// filters, a last one short; one to three channel chunks; one or two groups).
        #[test]
        fn patch_blocks_equal_the_dense_patches(mg in 4usize..14, groups in 1usize..=2, cg in prop_oneof![1usize..=6, Just(40)], hw in 1usize..=7,
                                                 k in 1usize..=3, stride in 1u32..=2, batch in 1usize..=2, bits in 1u8..=8, bias in any::<bool>(),
                                                 quads in 1usize..=3, seed in 0u64..1000) {
            let p = (k / 2) as u32;
            let m = groups * mg;
            let attrs = ConvAttrs { group: groups as u32, stride: [stride; 2], dilation: [1, 1], pads: [p; 4], act: Activation::Relu };
            let (xd, wd) = ([batch, groups * cg, hw, hw + 1], [m, cg, k, k]);
            let y = Op::Conv(attrs).infer(&[sh(&xd), sh(&wd), sh(&[m])]).unwrap();
            let g = super::Geom::new(&attrs, &sh(&xd), &sh(&wd), &y);
            prop_assume!(g.prefers_patches());
            let cols = cg * k * k;
            let (payload, w) = quantized(m, cols, bits, true, 3, seed);
            let (x, b) = (data(xd.iter().product(), seed + 1), data(m, seed + 2));
            let cb = Codebook::parse(&payload, m, cols).unwrap();
            let bias = bias.then_some(View::F32(&b));
            let len = y.prod(1, y.rank());
            let in_len = x.len() / batch;
            let mut want = vec![f32::NAN; batch * len];
            for (xn, on) in x.chunks_exact(in_len).zip(want.chunks_exact_mut(len)) {
                super::conv::conv_patches(&g, xn, &w, bias, attrs.act, on).unwrap();
            }
            let bits_of = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let mut got = vec![f32::NAN; batch * len];
            super::patch_blocks(&g, &x, batch, &cb, bias, attrs.act, &mut got, &y).unwrap();
            prop_assert_eq!(bits_of(&got), bits_of(&want));
            let mut wbuf = vec![0.0f32; 4 * quads * super::conv::patch_chunk(&g) + 3];
            let mut table = crate::codebook::Table::new();
            let parts = cb.parts();
            for (xn, on) in x.chunks_exact(in_len).zip(got.chunks_exact_mut(len)) {
                on.fill(f32::NAN);
                super::conv::conv_patches_decoded(&g, xn, &mut wbuf, |m, k0, r: &mut [f32]| table.decode_parts(&parts, m, k0, r), bias, attrs.act, on).unwrap();
            }
            prop_assert_eq!(bits_of(&got), bits_of(&want));
        }
    }

    #[test]
    fn the_set_needs_the_codebook_bit() {
        let a = ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [1, 1, 1, 1], act: Activation::None };
        let x = data(2 * 3 * 5 * 5, 1);
        let (payload, _) = quantized(4, 27, 4, true, 2, 3);
        let cb = Codebook::parse(&payload, 4, 27).unwrap();
        let ops =
            [Operand { view: View::F32(&x), shape: sh(&[2, 3, 5, 5]) }, Operand { view: View::Codebook(cb), shape: sh(&[4, 3, 3, 3]) }];
        let (y, s) = run_ops(&Op::Conv(a), &ops).unwrap();
        const CONV_ONLY: u128 = ops_mask(&[kind::CONV]);
        let mut out = vec![0.0; 200];
        assert_eq!(execute_in::<CONV_ONLY>(&Op::Conv(a), &ops, &mut out, &s), Err(OpError::UnknownKind(kind::CONV)));
        assert_eq!(execute_in::<{ CONV_ONLY | 1 << SPARSE_BIT }>(&Op::Conv(a), &ops, &mut out, &s), Err(OpError::UnknownKind(kind::CONV)));
        assert_eq!(out, [0.0; 200], "nothing written");
        assert_eq!(execute_in::<{ CONV_ONLY | 1 << CODEBOOK_BIT }>(&Op::Conv(a), &ops, &mut out, &s), Ok(()));
        assert_eq!(out, y);
    }
}
