//! Concat: all inputs joined along one axis.

use super::{sub_mut, Operand};
use crate::op::OpError;
use crate::shape::Shape;

/// Concatenates `inputs` along `axis` into `out` (shape `y`), validated by `execute`.
pub(super) fn concat(axis: usize, inputs: &[Operand<'_>], out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let outer = y.prod(0, axis);
    let inner = y.prod(axis + 1, y.rank());
    let row = y.dim(axis) * inner;
    for o in 0..outer {
        let mut at = o * row;
        for x in inputs {
            let len = x.shape.dim(axis) * inner;
            x.view.read_into(o * len, sub_mut(out, at, len)?);
            at += len;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::op::Op;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(200)))]
        #[test]
        fn matches_naive(d in proptest::collection::vec(1usize..4, 1..5), ax in 0usize..4,
                         sizes in proptest::collection::vec(0usize..4, 1..5), seed in 0u64..1000) {
            let axis = ax % d.len();
            let shapes: Vec<Vec<usize>> = sizes.iter().map(|&n| { let mut s = d.clone(); s[axis] = n; s }).collect();
            let xs: Vec<Vec<f32>> = shapes.iter().enumerate().map(|(i, s)| data(s.iter().product(), seed + i as u64)).collect();
            let ins: Vec<(&[f32], &[usize])> = xs.iter().zip(&shapes).map(|(x, s)| (&x[..], &s[..])).collect();
            let (got, y) = run(&Op::Concat { axis: axis as u8 }, &ins).unwrap();
            let mut yd = d.clone();
            yd[axis] = sizes.iter().sum();
            prop_assert_eq!(y, sh(&yd));
            let want: Vec<f64> = indices(&yd).iter().map(|idx| {
                let (mut j, mut i) = (0, idx[axis]);
                while i >= sizes[j] { i -= sizes[j]; j += 1; }
                let mut ii = idx.clone();
                ii[axis] = i;
                xs[j][lin(&shapes[j], &ii)] as f64
            }).collect();
            assert_close(&got, &want, 0.0);
        }
    }
}
