//! Dense (fully connected) with a block-sparse weight: only stored blocks are touched.

use super::dense::{self, dot};
use super::{Operand, CHUNK};
use crate::op::{Activation, OpError};
use crate::shape::Shape;
use crate::sparse::Bsr;

/// Rows of the problem: `rows` input rows of `k` values, `n` outputs per row.
#[derive(Clone, Copy)]
struct Dims {
    rows: usize,
    k: usize,
    n: usize,
}

/// Dense layer with weight `w` (`[N, K]`); inputs `x [.., K], w[, bias [N]]` validated by
/// `execute`. Block shapes 1×1, 1×4, 4×1 and 4×4 have fixed-size kernels, block widths 2, 3, 4
/// and 8 an unrolled row loop, others a general one.
/// Operands the fast path cannot take (a non-native input, a window of a constant, unaligned
/// values in blocks larger than the decode buffer) run the dense kernel, which reads the weight
/// element-wise.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
pub(super) fn dense_bsr(act: Activation, inputs: &[Operand<'_>], w: &Bsr<'_>, out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let d = Dims { rows: y.prod(0, y.rank().saturating_sub(1)), k: inputs[1].shape.dim(1), n: inputs[1].shape.dim(0) };
    let info = w.info();
    let fits = w.is_whole() && info.rows == d.n && info.cols == d.k;
    let Some(xs) = inputs[0].view.as_f32().filter(|_| fits) else {
        return dense::dense(act, inputs, out, y);
    };
    if d.n == 0 {
        return Ok(());
    }
    super::bias_rows(inputs.get(2), d.n, out);
    let mut buf = [0.0f32; CHUNK];
    let ran = match (info.br, info.bc) {
        (1, 1) => w.for_each_run(&mut buf, |bi, cols, vals| f32_csr_gemv(d, bi, cols, vals, xs, out))?,
        (1, 4) => w.for_each_run(&mut buf, |bi, cols, vals| f32_bsr_gemv_fixed::<1, 4>(d, bi, cols, vals, xs, out))?,
        (4, 1) => w.for_each_run(&mut buf, |bi, cols, vals| f32_bsr_gemv_fixed::<4, 1>(d, bi, cols, vals, xs, out))?,
        (4, 4) => w.for_each_run(&mut buf, |bi, cols, vals| f32_bsr_gemv_fixed::<4, 4>(d, bi, cols, vals, xs, out))?,
        (br, 2) => w.for_each_run(&mut buf, |bi, cols, vals| f32_bsr_gemv::<2>(d, br, 2, bi, cols, vals, xs, out))?,
        (br, 3) => w.for_each_run(&mut buf, |bi, cols, vals| f32_bsr_gemv::<3>(d, br, 3, bi, cols, vals, xs, out))?,
        (br, 4) => w.for_each_run(&mut buf, |bi, cols, vals| f32_bsr_gemv::<4>(d, br, 4, bi, cols, vals, xs, out))?,
        (br, 8) => w.for_each_run(&mut buf, |bi, cols, vals| f32_bsr_gemv::<8>(d, br, 8, bi, cols, vals, xs, out))?,
        (br, bc) => w.for_each_run(&mut buf, |bi, cols, vals| f32_bsr_gemv::<0>(d, br, bc, bi, cols, vals, xs, out))?,
    };
    if !ran {
        return dense::dense(act, inputs, out, y);
    }
    if act != Activation::None {
        act.apply_all(out);
    }
    Ok(())
}

#[inline(always)]
fn col_of(c: &[u8]) -> usize {
    u16::from_le_bytes([c[0], c[1]]) as usize
}

/// 1×1 blocks (CSR): output `bi` of each input row is a gathered dot product, four partial sums.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
fn f32_csr_gemv(d: Dims, bi: usize, cols: &[u8], vals: &[f32], xs: &[f32], out: &mut [f32]) -> Result<(), OpError> {
    for r in 0..d.rows {
        let xr = xs.get(r * d.k..(r + 1) * d.k).ok_or(OpError::ShapeMismatch)?;
        let x_at = |c: &[u8]| xr.get(col_of(c)).copied().unwrap_or(0.0);
        let mut acc = [0.0f32; 4];
        let (mut c8, mut v4) = (cols.chunks_exact(8), vals.chunks_exact(4));
        for (c, v) in (&mut c8).zip(&mut v4) {
            for j in 0..4 {
                acc[j] += v[j] * x_at(&c[2 * j..2 * j + 2]);
            }
        }
        let mut tail = 0.0;
        for (c, v) in c8.remainder().chunks_exact(2).zip(v4.remainder()) {
            tail += v * x_at(c);
        }
        *out.get_mut(r * d.n + bi).ok_or(OpError::ShapeMismatch)? += (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail;
    }
    Ok(())
}

/// `BR × BC` blocks: per input row, `BR × BC` independent partial sums live across the whole
/// block row and are reduced once (two such sets, even and odd blocks, when `BR · BC <= 4`, so
/// short blocks do not wait on one another). Ragged edge blocks take the same loop: columns past
/// `k` are skipped, rows past `n` are not written (their stored values are 0.0).
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
fn f32_bsr_gemv_fixed<const BR: usize, const BC: usize>(
    d: Dims,
    bi: usize,
    cols: &[u8],
    vals: &[f32],
    xs: &[f32],
    out: &mut [f32],
) -> Result<(), OpError> {
    let blocks: &[[f32; BC]] = bytemuck::try_cast_slice(vals).map_err(|_| OpError::ShapeMismatch)?;
    let n0 = bi * BR;
    let nr = BR.min(d.n.saturating_sub(n0));
    for r in 0..d.rows {
        let xr = xs.get(r * d.k..(r + 1) * d.k).ok_or(OpError::ShapeMismatch)?;
        let mut acc = [[0.0f32; BC]; BR];
        let (mut c, mut b) = (cols, blocks);
        if BR * BC <= 4 {
            let mut odd = [[0.0f32; BC]; BR];
            let (mut c4, mut b2) = (cols.chunks_exact(4), blocks.chunks_exact(2 * BR));
            for (cc, bb) in (&mut c4).zip(&mut b2) {
                let (b0, b1) = bb.split_at(BR);
                accumulate(&mut acc, col_of(cc) * BC, b0, xr);
                accumulate(&mut odd, col_of(&cc[2..]) * BC, b1, xr);
            }
            for (a, o) in acc.iter_mut().zip(&odd) {
                for (aj, oj) in a.iter_mut().zip(o) {
                    *aj += oj;
                }
            }
            (c, b) = (c4.remainder(), b2.remainder());
        }
        for (cc, blk) in c.chunks_exact(2).zip(b.chunks_exact(BR)) {
            accumulate(&mut acc, col_of(cc) * BC, blk, xr);
        }
        let yb = out.get_mut(r * d.n + n0..r * d.n + n0 + nr).ok_or(OpError::ShapeMismatch)?;
        for (yv, a) in yb.iter_mut().zip(&acc) {
            *yv += a.iter().sum::<f32>();
        }
    }
    Ok(())
}

/// `acc[i][j] += blk[i][j] * xr[k0 + j]`, skipping columns past the end of `xr`.
#[inline(always)]
fn accumulate<const BR: usize, const BC: usize>(acc: &mut [[f32; BC]; BR], k0: usize, blk: &[[f32; BC]], xr: &[f32]) {
    match xr.get(k0..k0 + BC).and_then(|s| <&[f32; BC]>::try_from(s).ok()) {
        Some(xb) => {
            for (a, wr) in acc.iter_mut().zip(blk) {
                for j in 0..BC {
                    a[j] += wr[j] * xb[j];
                }
            }
        }
        None => {
            let xb = xr.get(k0..).unwrap_or(&[]);
            for (a, wr) in acc.iter_mut().zip(blk) {
                for ((aj, wj), xj) in a.iter_mut().zip(wr).zip(xb) {
                    *aj += wj * xj;
                }
            }
        }
    }
}

/// Any block shape, clipped to the matrix at ragged edges. `bc == 1` (e.g. a whole-column block):
/// each block adds a scaled column to the outputs (axpy). Otherwise each output row of the block
/// row keeps its sum in a register across the blocks, one short dot product per block, unrolled
/// when `BC == bc` (`BC == 0`: any `bc`; ragged blocks take that loop too).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), inline(always))]
fn f32_bsr_gemv<const BC: usize>(
    d: Dims,
    br: usize,
    bc: usize,
    bi: usize,
    cols: &[u8],
    vals: &[f32],
    xs: &[f32],
    out: &mut [f32],
) -> Result<(), OpError> {
    let n0 = bi * br;
    let nr = br.min(d.n.saturating_sub(n0));
    let bs = br * bc;
    for r in 0..d.rows {
        let xr = xs.get(r * d.k..(r + 1) * d.k).ok_or(OpError::ShapeMismatch)?;
        let yb = out.get_mut(r * d.n + n0..r * d.n + n0 + nr).ok_or(OpError::ShapeMismatch)?;
        if bc == 1 {
            for (c, blk) in cols.chunks_exact(2).zip(vals.chunks_exact(bs)) {
                let xv = xr.get(col_of(c)).copied().unwrap_or(0.0);
                for (yv, wv) in yb.iter_mut().zip(blk) {
                    *yv += wv * xv;
                }
            }
            continue;
        }
        for (i, yv) in yb.iter_mut().enumerate() {
            let mut acc = 0.0f32;
            for (c, blk) in cols.chunks_exact(2).zip(vals.chunks_exact(bs)) {
                let k0 = col_of(c) * bc;
                if BC > 0 {
                    if let (Some(xb), Some(wr)) = (array::<BC>(xr, k0), array::<BC>(blk, i * BC)) {
                        let mut s = 0.0;
                        for j in 0..BC {
                            s += wr[j] * xb[j];
                        }
                        acc += s;
                        continue;
                    }
                }
                let xb = xr.get(k0..(k0 + bc).min(d.k)).unwrap_or(&[]);
                let wr = blk.get(i * bc..i * bc + xb.len()).unwrap_or(&[]);
                acc += if bc >= 16 { dot(wr, xb) } else { wr.iter().zip(xb).map(|(w, x)| w * x).sum::<f32>() };
            }
            *yv += acc;
        }
    }
    Ok(())
}

/// `s[at..at + N]` as an array, `None` when it does not fit.
#[inline(always)]
fn array<const N: usize>(s: &[f32], at: usize) -> Option<&[f32; N]> {
    s.get(at..at.checked_add(N)?).and_then(|s| s.try_into().ok())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{execute_in, ops_mask, Operand, SPARSE_BIT};
    use crate::op::{kind, Activation, Op, OpError};
    use crate::sparse::{encode_bsr, Bsr};
    use crate::view::View;
    use proptest::prelude::*;

    const BLOCKS: [(usize, usize); 8] = [(1, 1), (1, 4), (4, 1), (4, 4), (2, 3), (0, 1), (1, 8), (3, 2)];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(300)))]
        #[test]
        fn matches_naive(lead in proptest::collection::vec(1usize..4, 0..3), k in 1usize..300, n in 1usize..12,
                         blk in 0usize..BLOCKS.len(), density in prop_oneof![Just(0.0), Just(0.1), Just(0.5), Just(1.0)],
                         bias in any::<bool>(), act in 0u8..3, seed in 0u64..1000) {
            let rows: usize = lead.iter().product();
            let mut xd = lead.clone();
            xd.push(k);
            let (br, bc) = match BLOCKS[blk] { (0, bc) => (n, bc), b => b };
            let x = data(rows * k, seed);
            let mut w = data(n * k, seed + 1);
            let ncb = k.div_ceil(bc);
            let keep = data(n.div_ceil(br) * ncb, seed + 3);
            for (i, v) in w.iter_mut().enumerate() {
                let blk = (i / k) / br * ncb + (i % k) / bc;
                if (keep[blk] as f64 + 1.0) / 2.0 >= density {
                    *v = 0.0;
                }
            }
            let b = data(n, seed + 2);
            let act = ACTS[act as usize];
            let op = Op::Dense { act };
            let payload = encode_bsr(n, k, br, bc, &w);
            let unaligned = [&[0u8][..], &payload].concat();
            for bytes in [&payload[..], &unaligned[1..]] {
                let bsr = Bsr::parse(bytes, n, k).unwrap();
                let mut ops = vec![Operand { view: View::F32(&x), shape: sh(&xd) }, Operand { view: View::Bsr(bsr), shape: sh(&[n, k]) }];
                if bias {
                    ops.push(Operand { view: View::F32(&b), shape: sh(&[n]) });
                }
                let (got, y) = run_ops(&op, &ops).unwrap();
                let mut yd = lead.clone();
                yd.push(n);
                prop_assert_eq!(y, sh(&yd));
                assert_dense_close(&got, &x, rows, k, &w, n, bias.then_some(&b[..]), act, 1e-5);
            }
        }
    }

    #[test]
    fn all_zero_weights_give_the_bias_and_the_set_needs_the_sparse_bit() {
        let x = data(3 * 10, 4);
        let payload = encode_bsr(5, 10, 4, 4, &[0.0; 50]);
        let bsr = Bsr::parse(&payload, 5, 10).unwrap();
        let b = [1.5f32, -0.25, 0.0, -0.0, 7.0];
        let op = Op::Dense { act: Activation::None };
        let ops = [
            Operand { view: View::F32(&x), shape: sh(&[3, 10]) },
            Operand { view: View::Bsr(bsr), shape: sh(&[5, 10]) },
            Operand { view: View::F32(&b), shape: sh(&[5]) },
        ];
        let (y, s) = run_ops(&op, &ops).unwrap();
        assert_eq!(s, sh(&[3, 5]));
        for (i, v) in y.iter().enumerate() {
            assert_eq!(v.to_bits(), b[i % 5].to_bits());
        }
        let mut out = vec![0.0; 15];
        const DENSE_ONLY: u128 = ops_mask(&[kind::DENSE]);
        assert_eq!(execute_in::<DENSE_ONLY>(&op, &ops, &mut out, &s), Err(OpError::UnknownKind(kind::DENSE)));
        assert_eq!(out, [0.0; 15], "nothing written");
        assert_eq!(execute_in::<{ DENSE_ONLY | 1 << SPARSE_BIT }>(&op, &ops, &mut out, &s), Ok(()));
        assert_eq!(out, y);
    }

    #[test]
    fn a_window_or_a_non_native_input_takes_the_generic_path() {
        let (n, k) = (6, 7);
        let w: Vec<f32> = (0..n * k).map(|i| if i % 3 == 0 { (i as f32) / 10.0 } else { 0.0 }).collect();
        let payload = encode_bsr(n, k, 2, 2, &w);
        let bsr = Bsr::parse(&payload, n, k).unwrap();
        let x = data(k, 9);
        let x32 = f32le(&x);
        let op = Op::Dense { act: Activation::Relu };
        let want = naive_dense(&x, 1, k, &w, n, None, Activation::Relu);
        for xv in [View::F32(&x), View::F32Le(&x32)] {
            let (got, _) =
                run_ops(&op, &[Operand { view: xv, shape: sh(&[k]) }, Operand { view: View::Bsr(bsr), shape: sh(&[n, k]) }]).unwrap();
            assert_close(&got, &want, 1e-5);
        }
        // Rows 2..4 of the weight, as a window of the constant.
        let win = View::Bsr(bsr).slice(2 * k, 2 * k).unwrap();
        let (got, _) =
            run_ops(&op, &[Operand { view: View::F32(&x), shape: sh(&[k]) }, Operand { view: win, shape: sh(&[2, k]) }]).unwrap();
        assert_close(&got, &want[2..4], 1e-5);
    }
}
