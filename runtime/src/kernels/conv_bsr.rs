//! Conv with a block-sparse weight: a direct convolution that scatters each stored weight.

use super::conv::{self, add_tap, Geom};
use super::{sub, sub_mut, Operand, CHUNK};
use crate::op::{Activation, ConvAttrs, OpError};
use crate::shape::Shape;
use crate::sparse::Bsr;

/// Convolution with weight `w` (`[M, C/g, kh, kw]` as the `M × (C/g·kh·kw)` matrix); inputs
/// `x, w[, bias]` validated by `execute`. Each stored non-zero weight `w[m, c, ky, kx]` adds its
/// multiple of the shifted input plane of channel `group(m) · C/g + c` to output plane `m`
/// ([`add_tap`]), so the cost is the stored weights times the output plane. Operands the fast
/// path cannot take (a non-native input, a window of a constant, unaligned values in blocks
/// larger than the decode buffer) run the dense kernels, which read the weight element-wise.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
pub(super) fn conv_bsr(a: &ConvAttrs, inputs: &[Operand<'_>], w: &Bsr<'_>, out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let x = &inputs[0];
    let bias = inputs.get(2).map(|b| b.view);
    let g = Geom::new(a, &x.shape, &inputs[1].shape, y);
    let taps = g.kh * g.kw;
    let info = w.info();
    let fits = w.is_whole() && info.rows == g.m && Some(info.cols) == g.cg.checked_mul(taps) && taps > 0 && g.mg > 0;
    let Some(xs) = x.view.as_f32().filter(|_| fits) else {
        return conv::conv::<0>(a, inputs, out, y);
    };
    let (in_len, out_len) = (x.shape.prod(1, x.shape.rank()), y.prod(1, y.rank()));
    // SIMD CPUs, group 1, blocks of at least 4 × 4: the tiled product over the stored blocks,
    // each block a register tile of its filters over 16 pixels. Measured (kernels bench, one
    // 4 × 4 block in ten): 0.08–0.6 of the time of the scatter below on the real models' Conv
    // shapes, except channels too few to fill a block row (1 × 28 × 28 5 × 5: 2×, 8 → 16 1 × 1:
    // 1.24×); narrower or shorter blocks would load and store their outputs every 1–3
    // multiply-adds, so they scatter.
    let tiled = info.br >= 4 && info.bc >= 4 && g.cg * taps >= 32;
    if let Some(mk) = super::gemm::simd().filter(|_| tiled && g.mg == g.m && super::gemm::applies(&g)) {
        use super::gemm::Micro;
        let mut ran = true;
        for n in 0..x.shape.dim(0) {
            let xn = sub(xs, n * in_len, in_len)?;
            let on = sub_mut(out, n * out_len, out_len)?;
            // (False only for the first sample: nothing written then.)
            ran = mk.run(
                #[inline(always)]
                || super::gemm::conv_bsr(mk, &g, xn, w, bias, a.act, on),
            )?;
            if !ran {
                break;
            }
        }
        if ran {
            return Ok(());
        }
    }
    let (plane, in_plane) = (g.oh * g.ow, g.h * g.w);
    let (br, bc) = (info.br, info.bc);
    let mut buf = [0.0f32; CHUNK];
    for n in 0..x.shape.dim(0) {
        let xn = sub(xs, n * in_len, in_len)?;
        let ob = sub_mut(out, n * out_len, out_len)?;
        for (mo, p) in ob.chunks_exact_mut(plane.max(1)).take(g.m).enumerate() {
            p.fill(bias.map_or(0.0, |b| b.get(mo)));
        }
        let ran = w.for_each_run(&mut buf, |bi, cols, vals| {
            for (c, blk) in cols.chunks_exact(2).zip(vals.chunks_exact(br * bc)) {
                let k0 = u16::from_le_bytes([c[0], c[1]]) as usize * bc;
                for (i, mo) in (bi * br..g.m.min(bi * br + br)).enumerate() {
                    let grp = mo / g.mg;
                    let op = sub_mut(ob, mo * plane, plane)?;
                    let wrow = blk.get(i * bc..i * bc + bc).unwrap_or(&[]);
                    for (col, &wv) in (k0..info.cols).zip(wrow) {
                        if wv == 0.0 {
                            continue;
                        }
                        let (icl, t) = (col / taps, col % taps);
                        let xp = sub(xn, (grp * g.cg + icl) * in_plane, in_plane)?;
                        add_tap(&g, xp, wv, t / g.kw, t % g.kw, op)?;
                    }
                }
            }
            Ok(())
        })?;
        if !ran {
            return conv::conv::<0>(a, inputs, out, y);
        }
        if a.act != Activation::None {
            a.act.apply_all(ob);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{execute, execute_in, ops_mask, Operand, SPARSE_BIT};
    use crate::op::{kind, Activation, ConvAttrs, Op, OpError};
    use crate::sparse::{encode_bsr, Bsr};
    use crate::view::View;
    use proptest::prelude::*;

    /// `w` with the `br × bc` blocks of its `[M, rest]` matrix zeroed where `keep` says so.
    fn mask_blocks(w: &[f32], m: usize, br: usize, bc: usize, keep: &[bool]) -> Vec<f32> {
        let cols = w.len() / m.max(1);
        let ncb = cols.div_ceil(bc);
        w.iter().enumerate().map(|(i, &v)| if keep[((i / cols) / br * ncb + (i % cols) / bc) % keep.len()] { v } else { 0.0 }).collect()
    }

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
        block: (usize, usize),
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            (any::<bool>(), 1usize..=2),
            (1usize..=3, 1usize..=4, 1usize..=4),
            (1usize..=8, 1usize..=10, 1usize..=3, 1usize..=3),
            ([1u32..=3, 1..=3], [1u32..=2, 1..=2], [0u32..=2, 0..=2, 0..=2, 0..=2]),
            (any::<bool>(), 0u8..3, 0usize..7),
        )
            .prop_map(|((two_d, batch), (g, cg, mg), (h, w, kh, kw), (stride, dilation, pads), (bias, act, blk))| {
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
                let m = g * mg;
                let block = [(1, 1), (1, 4), (4, 1), (4, 4), (2, 3), (m, 1), (3, 5)][blk];
                let attrs = ConvAttrs { group: g as u32, stride, dilation, pads, act };
                Case { two_d, batch, g, cg, mg, h, w, kh, kw, attrs, bias, block }
            })
    }

    fn check(c: &Case, keep: &[bool], seed: u64) {
        let (cin, m) = (c.g * c.cg, c.g * c.mg);
        let (xd, wd) = if c.two_d {
            (vec![c.batch, cin, c.h, c.w], vec![m, c.cg, c.kh, c.kw])
        } else {
            (vec![c.batch, cin, c.w], vec![m, c.cg, c.kw])
        };
        let x = data(xd.iter().product(), seed);
        let (br, bc) = c.block;
        let w = mask_blocks(&data(wd.iter().product(), seed + 1), m, br, bc, keep);
        let b = data(m, seed + 2);
        let op = Op::Conv(c.attrs);
        let cols = w.len() / m;
        let payload = encode_bsr(m, cols, br, bc, &w);
        let unaligned = [&[0u8][..], &payload].concat();
        for bytes in [&payload[..], &unaligned[1..]] {
            let bsr = Bsr::parse(bytes, m, cols).unwrap();
            let mut ops = vec![Operand { view: View::F32(&x), shape: sh(&xd) }, Operand { view: View::Bsr(bsr), shape: sh(&wd) }];
            if c.bias {
                ops.push(Operand { view: View::F32(&b), shape: sh(&[m]) });
            }
            let Ok((got, y)) = run_ops(&op, &ops) else {
                // Window larger than the padded input: rejected by `infer`.
                return;
            };
            let yd: Vec<usize> = y.dims().iter().map(|&d| d as usize).collect();
            assert_conv_close(&got, &x, &xd, &w, &wd, c.bias.then_some(&b[..]), &c.attrs, &yd, 1e-5);
            // The dense kernels on the same weights agree.
            ops[1].view = View::F32(&w);
            let (dense, _) = run_ops(&op, &ops).unwrap();
            assert_conv_close(&dense, &x, &xd, &w, &wd, c.bias.then_some(&b[..]), &c.attrs, &yd, 1e-5);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(300)))]
        #[test]
        fn matches_naive(c in case(), keep in proptest::collection::vec(proptest::bool::weighted(0.4), 1..40), seed in 0u64..1000) {
            check(&c, &keep, seed);
        }

        #[test]
        fn depthwise_matches_naive(c in case(), keep in proptest::collection::vec(any::<bool>(), 1..40), seed in 0u64..1000) {
            let g = c.g * 2;
            check(&Case { cg: 1, mg: 1, g, attrs: ConvAttrs { group: g as u32, ..c.attrs }, block: (c.block.0.min(g), 1), ..c.clone() }, &keep, seed);
        }
    }

    /// Deeper filters than the random cases (360 and 300 weights), block rows taller than the
    /// filters left, blocks that do not divide the filter, and 1 × 1 Convs.
    #[test]
    fn deep_filters_and_tall_blocks() {
        let keep: Vec<bool> = (0..37).map(|i| (i * 7) % 5 < 3).collect();
        for (cg, mg, k, block) in
            [(40, 20, 3, (16, 3)), (40, 20, 3, (4, 4)), (40, 13, 3, (1, 1)), (300, 24, 1, (4, 4)), (300, 17, 1, (13, 8))]
        {
            let p = if k == 3 { 1 } else { 0 };
            let attrs = ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [p; 4], act: Activation::Relu };
            let c = Case { two_d: true, batch: 2, g: 1, cg, mg, h: 7, w: 6, kh: k, kw: k, attrs, bias: true, block };
            check(&c, &keep, 11);
        }
    }

    #[test]
    fn all_zero_weights_give_the_bias_and_the_set_needs_the_sparse_bit() {
        let a = ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [1, 1, 1, 1], act: Activation::None };
        let x = data(2 * 3 * 5 * 5, 1);
        let payload = encode_bsr(4, 27, 2, 3, &[0.0; 108]);
        let bsr = Bsr::parse(&payload, 4, 27).unwrap();
        assert_eq!(bsr.info().nnzb, 0);
        let b = [0.5f32, -1.0, f32::MIN_POSITIVE, 3.0];
        let ops = [
            Operand { view: View::F32(&x), shape: sh(&[2, 3, 5, 5]) },
            Operand { view: View::Bsr(bsr), shape: sh(&[4, 3, 3, 3]) },
            Operand { view: View::F32(&b), shape: sh(&[4]) },
        ];
        let (y, s) = run_ops(&Op::Conv(a), &ops).unwrap();
        assert_eq!(s, sh(&[2, 4, 5, 5]));
        for (i, v) in y.iter().enumerate() {
            assert_eq!(v.to_bits(), b[(i / 25) % 4].to_bits());
        }
        const DENSE_ONLY: u128 = ops_mask(&[kind::CONV]);
        let mut out = vec![0.0; 200];
        assert_eq!(execute_in::<DENSE_ONLY>(&Op::Conv(a), &ops, &mut out, &s), Err(OpError::UnknownKind(kind::CONV)));
        assert_eq!(execute_in::<{ DENSE_ONLY | 1 << SPARSE_BIT }>(&Op::Conv(a), &ops, &mut out, &s), Ok(()));
        assert_eq!(out, y);
        assert_eq!(execute(&Op::Conv(a), &ops, &mut out, &s), Ok(()));
    }
}
