//! Slice: a strided window of the input (positive steps).

use super::{copy_strided, Operand};
use crate::op::OpError;
use crate::shape::{Shape, MAX_RANK};

/// Copies input elements `starts[i] + j * steps[i]` into `out` (shape `y`), validated by `execute`.
pub(super) fn slice(starts: &[u32; MAX_RANK], steps: &[u32; MAX_RANK], x: &Operand<'_>, out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let r = y.rank();
    let xs = x.shape.strides();
    // Input offset of the first element, and input stride of each output axis.
    let mut base = 0usize;
    let mut st = [0usize; MAX_RANK];
    for i in 0..r {
        base += starts[i] as usize * xs[i];
        st[i] = steps[i] as usize * xs[i];
    }
    copy_strided(x.view, base, &st, out, y)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::Operand;
    use crate::op::{Op, OpError};
    use crate::view::View;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(300)))]
        #[test]
        fn matches_naive(d in proptest::collection::vec(0usize..6, 0..7), p in proptest::collection::vec(any::<u32>(), 18), seed in 0u64..1000) {
            let r = d.len();
            let (mut starts, mut steps, mut lens) = ([0u32; 6], [1u32; 6], [0u32; 6]);
            for i in 0..r {
                steps[i] = p[6 + i] % 3 + 1;
                starts[i] = p[i] % (d[i] as u32 + 1);
                // Largest length that stays inside the axis, then any length up to it.
                let room = (d[i] as u32 - starts[i]).div_ceil(steps[i]);
                lens[i] = p[12 + i] % (room + 1);
            }
            let x = data(d.iter().product(), seed);
            let op = Op::Slice { starts, steps, lens };
            let (got, y) = run(&op, &[(&x, &d)]).unwrap();
            let yd: Vec<usize> = lens[..r].iter().map(|&v| v as usize).collect();
            prop_assert_eq!(y, sh(&yd));
            let want: Vec<f64> = indices(&yd)
                .iter()
                .map(|oi| {
                    let ii: Vec<usize> = (0..r).map(|k| (starts[k] + oi[k] as u32 * steps[k]) as usize).collect();
                    x[lin(&d, &ii)] as f64
                })
                .collect();
            assert_close(&got, &want, 0.0);
            let xh = round_f16(&x);
            let (b32, b16) = (f32le(&x), f16le(&xh));
            let (g32, _) = run_ops(&op, &[Operand { view: View::F32Le(&b32), shape: sh(&d) }]).unwrap();
            prop_assert_eq!(&g32, &got);
            let (g16, _) = run_ops(&op, &[Operand { view: View::F16Le(&b16), shape: sh(&d) }]).unwrap();
            let (n16, _) = run(&op, &[(&xh, &d)]).unwrap();
            prop_assert_eq!(g16, n16);
        }
    }

    #[test]
    fn strided_rows_and_columns() {
        let x: Vec<f32> = (0..20).map(|v| v as f32).collect();
        // x[1:4:2, 0:5:2] of a 4x5 matrix.
        let op = Op::Slice { starts: [1, 0, 0, 0, 0, 0], steps: [2, 2, 1, 1, 1, 1], lens: [2, 3, 0, 0, 0, 0] };
        let (y, s) = run(&op, &[(&x, &[4, 5])]).unwrap();
        assert_eq!(s, sh(&[2, 3]));
        assert_eq!(y, [5., 7., 9., 15., 17., 19.]);
        // A window reaching past the input is rejected, not read out of bounds.
        let past = Op::Slice { starts: [3, 0, 0, 0, 0, 0], steps: [2, 1, 1, 1, 1, 1], lens: [2, 5, 0, 0, 0, 0] };
        assert_eq!(run(&past, &[(&x, &[4, 5])]), Err(OpError::ShapeMismatch));
    }
}
