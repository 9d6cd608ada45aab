//! MatMul: batched matrix product with numpy broadcasting of the leading (batch) dimensions.

use super::{bcast_strides, chunk, dims_of, sub_mut, Counter, Operand, CHUNK};
use crate::op::OpError;
use crate::shape::Shape;

/// Matrix product `a [.., M, K] x b [.., K, N]`, validated by `execute`.
pub(super) fn matmul(a: &Operand<'_>, b: &Operand<'_>, out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let (ra, rb, ry) = (a.shape.rank(), b.shape.rank(), y.rank());
    let (m, k) = (a.shape.dim(ra - 2), a.shape.dim(ra - 1));
    let n = b.shape.dim(rb - 1);
    let nb = ry - 2;
    // Batch shapes (all but the last two axes) and their strides in units of whole matrices.
    let batch = |s: &Shape| Shape::from_u32(&s.dims()[..s.rank() - 2]).ok_or(OpError::ShapeMismatch);
    let (ba, bb) = (batch(&a.shape)?, batch(&b.shape)?);
    let sa = bcast_strides(&ba, nb);
    let sb = bcast_strides(&bb, nb);
    let dims = dims_of(&batch(y)?);
    let mut cnt = Counter::new(&dims, nb);
    let (mat_a, mat_b, mat_y) = (m * k, k * n, m * n);
    let mut abuf = [0.0f32; CHUNK];
    let mut bbuf = [0.0f32; CHUNK];
    let mut t = 0;
    loop {
        let oa = cnt.offset(&sa) * mat_a;
        let ob = cnt.offset(&sb) * mat_b;
        let yb = sub_mut(out, t * mat_y, mat_y)?;
        yb.fill(0.0);
        for i in 0..m {
            let yr = sub_mut(yb, i * n, n)?;
            let mut k0 = 0;
            while k0 < k {
                let kl = CHUNK.min(k - k0);
                let ac = chunk(a.view, oa + i * k + k0, kl, &mut abuf);
                for (kk, &av) in ac.iter().enumerate() {
                    let row = ob + (k0 + kk) * n;
                    let mut n0 = 0;
                    while n0 < n {
                        let nl = CHUNK.min(n - n0);
                        let bc = chunk(b.view, row + n0, nl, &mut bbuf);
                        for (o, bv) in yr.get_mut(n0..).unwrap_or(&mut []).iter_mut().zip(bc) {
                            *o += av * bv;
                        }
                        n0 += nl;
                    }
                }
                k0 += kl;
            }
        }
        t += 1;
        if !cnt.next() {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::Operand;
    use crate::op::Op;
    use crate::view::View;
    use proptest::prelude::*;

    /// Naive batched matmul over output index tuples, broadcasting batch axes.
    fn naive(a: &[f32], ad: &[usize], b: &[f32], bd: &[usize], yd: &[usize]) -> Vec<f64> {
        let r = yd.len();
        let k = ad[ad.len() - 1];
        let mut y = vec![0.0; yd.iter().product()];
        for idx in indices(yd) {
            let pick = |d: &[usize]| -> Vec<usize> {
                let off = r - d.len();
                (0..d.len() - 2).map(|i| if d[i] == 1 { 0 } else { idx[i + off] }).collect()
            };
            let (ia, ib) = (pick(ad), pick(bd));
            let (i, j) = (idx[r - 2], idx[r - 1]);
            let mut acc = 0.0;
            for kk in 0..k {
                let mut ai = ia.clone();
                ai.extend([i, kk]);
                let mut bi = ib.clone();
                bi.extend([kk, j]);
                acc += a[lin(ad, &ai)] as f64 * b[lin(bd, &bi)] as f64;
            }
            y[lin(yd, &idx)] = acc;
        }
        y
    }

    fn batch() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
        proptest::collection::vec((1usize..4, 0u8..3), 0..3).prop_flat_map(|full| {
            let a: Vec<usize> = full.iter().map(|&(d, s)| if s == 1 { 1 } else { d }).collect();
            let b: Vec<usize> = full.iter().map(|&(d, s)| if s == 2 { 1 } else { d }).collect();
            (0..=a.len(), 0..=b.len()).prop_map(move |(ca, cb)| (a[a.len() - ca..].to_vec(), b[b.len() - cb..].to_vec()))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(150)))]
        #[test]
        fn matches_naive((ba, bb) in batch(), m in 1usize..5, k in 1usize..7, n in 1usize..6, seed in 0u64..1000) {
            let mut ad = ba.clone();
            ad.extend([m, k]);
            let mut bd = bb.clone();
            bd.extend([k, n]);
            let a = data(ad.iter().product(), seed);
            let b = round_f16(&data(bd.iter().product(), seed + 1));
            let (got, y) = run(&Op::MatMul, &[(&a, &ad), (&b, &bd)]).unwrap();
            let yd: Vec<usize> = y.dims().iter().map(|&d| d as usize).collect();
            assert_close(&got, &naive(&a, &ad, &b, &bd, &yd), 1e-5);
            let b16 = f16le(&b);
            let ops = [Operand { view: View::F32(&a), shape: sh(&ad) }, Operand { view: View::F16Le(&b16), shape: sh(&bd) }];
            prop_assert_eq!(run_ops(&Op::MatMul, &ops).unwrap().0, got);
        }
    }

    #[test]
    fn large_inner_and_outer_dims() {
        // Under Miri (~10⁴× slower) the outer dim shrinks to 17: still over one 16-lane tile with
        // a ragged tail, and the inner dim keeps its 300.
        let n = if cfg!(miri) { 17 } else { 270 };
        let (ad, bd) = ([2, 3, 300], [300, n]);
        let a = data(1800, 3);
        let b = data(300 * n, 4);
        let (got, y) = run(&Op::MatMul, &[(&a, &ad), (&b, &bd)]).unwrap();
        assert_eq!(y, sh(&[2, 3, n]));
        assert_close(&got, &naive(&a, &ad, &b, &bd, &[2, 3, n]), 1e-4);
    }
}
