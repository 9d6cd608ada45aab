//! Transpose: output axis `i` is input axis `perm[i]`.

use super::{copy_strided, Operand};
use crate::op::OpError;
use crate::shape::{Shape, MAX_RANK};

/// Permutes the axes of `x` into `out` (shape `y`), validated by `execute`.
pub(super) fn transpose(perm: &[u8; MAX_RANK], x: &Operand<'_>, out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let r = y.rank();
    let xs = x.shape.strides();
    // Input stride of each output axis.
    let mut st = [0usize; MAX_RANK];
    for (i, s) in st.iter_mut().enumerate().take(r) {
        *s = xs[perm[i] as usize % MAX_RANK];
    }
    copy_strided(x.view, 0, &st, out, y)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::Operand;
    use crate::op::Op;
    use crate::view::View;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(200)))]
        #[test]
        fn matches_naive(d in proptest::collection::vec(1usize..5, 0..7), keys in proptest::collection::vec(any::<u32>(), 6)) {
            let r = d.len();
            let mut order: Vec<usize> = (0..r).collect();
            order.sort_by_key(|&i| keys[i]);
            let mut perm = [0u8; 6];
            for (p, &o) in perm.iter_mut().zip(&order) {
                *p = o as u8;
            }
            let x = data(d.iter().product(), keys[0] as u64);
            let op = Op::Transpose { perm };
            let (got, y) = run(&op, &[(&x, &d)]).unwrap();
            let yd: Vec<usize> = order.iter().map(|&p| d[p]).collect();
            prop_assert_eq!(y, sh(&yd));
            let want: Vec<f64> = indices(&yd)
                .iter()
                .map(|oi| {
                    let mut ii = vec![0; r];
                    for k in 0..r {
                        ii[order[k]] = oi[k];
                    }
                    x[lin(&d, &ii)] as f64
                })
                .collect();
            assert_close(&got, &want, 0.0);
            let b = f32le(&x);
            let (g2, _) = run_ops(&op, &[Operand { view: View::F32Le(&b), shape: sh(&d) }]).unwrap();
            prop_assert_eq!(g2, got);
        }
    }

    #[test]
    fn nchw_to_nhwc() {
        let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let (y, s) = run(&Op::Transpose { perm: [0, 2, 3, 1, 0, 0] }, &[(&x, &[1, 3, 2, 2])]).unwrap();
        assert_eq!(s, sh(&[1, 2, 2, 3]));
        assert_eq!(y, [0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.]);
    }
}
