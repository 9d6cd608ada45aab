//! Softmax / LogSoftmax along one axis (max-subtracted, so large inputs do not overflow).

use super::{fmax, sub_mut, Operand};
use crate::op::OpError;

/// Softmax over `axis` of `x`; shapes validated by `execute`.
pub(super) fn softmax(axis: usize, log: bool, x: &Operand<'_>, out: &mut [f32]) -> Result<(), OpError> {
    let s = &x.shape;
    let n = s.dim(axis);
    let inner = s.prod(axis + 1, s.rank());
    let outer = s.prod(0, axis);
    let block = n * inner;
    x.view.read_into(0, out);
    for o in 0..outer {
        let b = sub_mut(out, o * block, block)?;
        for i in 0..inner {
            let mut mx = f32::NEG_INFINITY;
            for j in 0..n {
                mx = fmax(mx, b[j * inner + i]);
            }
            let mut sum = 0.0f32;
            for j in 0..n {
                let v = &mut b[j * inner + i];
                let e = libm::expf(*v - mx);
                sum += e;
                if !log {
                    *v = e;
                }
            }
            if log {
                let l = libm::logf(sum);
                for j in 0..n {
                    let v = &mut b[j * inner + i];
                    *v = (*v - mx) - l;
                }
            } else {
                for j in 0..n {
                    b[j * inner + i] /= sum;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::op::Op;
    use proptest::prelude::*;

    fn naive(x: &[f32], d: &[usize], axis: usize, log: bool) -> Vec<f64> {
        let mut y = vec![0.0; x.len()];
        for idx in indices(d) {
            let at = |j: usize| {
                let mut i = idx.clone();
                i[axis] = j;
                x[lin(d, &i)] as f64
            };
            let mx = (0..d[axis]).map(at).fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..d[axis]).map(|j| (at(j) - mx).exp()).sum();
            let v = at(idx[axis]) - mx;
            y[lin(d, &idx)] = if log { v - sum.ln() } else { v.exp() / sum };
        }
        y
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(200)))]
        #[test]
        fn matches_naive(d in proptest::collection::vec(1usize..5, 1..5), ax in 0usize..4, log in any::<bool>(),
                         scale in prop_oneof![Just(1.0f32), Just(30.0), Just(1000.0)], seed in 0u64..1000) {
            let axis = ax % d.len();
            let x: Vec<f32> = data(d.iter().product(), seed).iter().map(|v| v * scale).collect();
            let (got, _) = run(&Op::Softmax { axis: axis as u8, log }, &[(&x, &d)]).unwrap();
            assert_close(&got, &naive(&x, &d, axis, log), 1e-5);
        }
    }

    #[test]
    fn large_values_do_not_overflow() {
        let x = [1000.0f32, 1001.0, 1002.0, -1000.0, 1e30, 3.0e38];
        let (y, _) = run(&Op::Softmax { axis: 0, log: false }, &[(&x[..3], &[3])]).unwrap();
        assert_close(&y, &[0.09003057317038046, 0.24472847105479767, 0.6652409557748219], 1e-6);
        let (y, _) = run(&Op::Softmax { axis: 0, log: true }, &[(&x[..3], &[3])]).unwrap();
        assert_close(&y, &[-2.4076059644443806, -1.4076059644443806, -0.4076059644443806], 1e-6);
        let (y, _) = run(&Op::Softmax { axis: 1, log: false }, &[(&x, &[2, 3])]).unwrap();
        assert_close(&y, &[0.09003057317038046, 0.24472847105479767, 0.6652409557748219, 0.0, 0.0, 1.0], 1e-6);
    }
}
