//! Pad: constant padding before and after each axis.

use super::{dims_of, sub_mut, Counter, Operand};
use crate::op::OpError;
use crate::shape::{Shape, MAX_RANK};

/// Fills `out` (shape `y`) with `value` and copies `x` to offset `pads[..rank]`.
pub(super) fn pad(pads: &[u32; 2 * MAX_RANK], value: f32, x: &Operand<'_>, out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    out.fill(value);
    let r = x.shape.rank();
    if x.view.is_empty() {
        return Ok(());
    }
    if r == 0 {
        x.view.read_into(0, out);
        return Ok(());
    }
    let ys = y.strides();
    let xd = dims_of(&x.shape);
    let last = xd[r - 1];
    let begin: usize = (0..r).map(|i| pads[i] as usize * ys[i]).sum();
    let mut cnt = Counter::new(&xd, r - 1);
    let mut row = 0;
    loop {
        let at = begin + cnt.offset(&ys);
        x.view.read_into(row * last, sub_mut(out, at, last)?);
        row += 1;
        if !cnt.next() {
            break;
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
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn matches_naive(d in proptest::collection::vec(0usize..4, 0..7), p in proptest::collection::vec(0u32..3, 12), seed in 0u64..1000) {
            let r = d.len();
            let mut pads = [0u32; 12];
            pads[..r].copy_from_slice(&p[..r]);
            pads[6..6 + r].copy_from_slice(&p[6..6 + r]);
            let x = data(d.iter().product(), seed);
            let (got, y) = run(&Op::Pad { pads, value: 0.5 }, &[(&x, &d)]).unwrap();
            let yd: Vec<usize> = (0..r).map(|i| d[i] + (pads[i] + pads[6 + i]) as usize).collect();
            prop_assert_eq!(y, sh(&yd));
            let want: Vec<f64> = indices(&yd).iter().map(|idx| {
                let ii: Option<Vec<usize>> = (0..r).map(|i| idx[i].checked_sub(pads[i] as usize).filter(|&v| v < d[i])).collect();
                ii.map_or(0.5, |ii| x[lin(&d, &ii)] as f64)
            }).collect();
            assert_close(&got, &want, 0.0);
        }
    }
}
