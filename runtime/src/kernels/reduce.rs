//! Reductions (Mean / Sum / Max / Min) over a bit mask of axes.

use super::{dims_of, fmax, fmin, Counter, Operand};
use crate::op::{OpError, ReduceKind};
use crate::shape::MAX_RANK;

/// Reduces `x` over the axes set in `axes` into `out`, whose elements are in row-major order of
/// the kept axes (the same with or without `keepdims`); validated by `execute`.
pub(super) fn reduce(kind: ReduceKind, axes: u8, x: &Operand<'_>, out: &mut [f32]) -> Result<(), OpError> {
    let s = &x.shape;
    let r = s.rank();
    let init = match kind {
        ReduceKind::Mean | ReduceKind::Sum => 0.0,
        ReduceKind::Max => f32::NEG_INFINITY,
        ReduceKind::Min => f32::INFINITY,
    };
    out.fill(init);
    // Output strides per input axis (zero along reduced axes).
    let dims = dims_of(s);
    let mut ost = [0usize; MAX_RANK];
    let mut acc = 1usize;
    let mut count = 1usize;
    for i in (0..r).rev() {
        if axes & (1 << i) != 0 {
            count *= dims[i];
        } else {
            ost[i] = acc;
            acc *= dims[i];
        }
    }
    if !x.view.is_empty() {
        let mut cnt = Counter::new(&dims, r);
        let mut i = 0;
        loop {
            let v = x.view.get(i);
            if let Some(o) = out.get_mut(cnt.offset(&ost)) {
                *o = match kind {
                    ReduceKind::Mean | ReduceKind::Sum => *o + v,
                    ReduceKind::Max => fmax(*o, v),
                    ReduceKind::Min => fmin(*o, v),
                };
            }
            i += 1;
            if !cnt.next() {
                break;
            }
        }
    }
    if kind == ReduceKind::Mean {
        let c = count as f32;
        for o in out.iter_mut() {
            *o /= c;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::op::{Op, ReduceKind};
    use proptest::prelude::*;

    const KINDS: [ReduceKind; 4] = [ReduceKind::Mean, ReduceKind::Sum, ReduceKind::Max, ReduceKind::Min];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(300)))]
        #[test]
        fn matches_naive(d in proptest::collection::vec(1usize..5, 0..7), mask in 0u8..64, k in 0usize..4,
                         keep in any::<bool>(), seed in 0u64..1000) {
            let r = d.len();
            let axes = mask & ((1u16 << r) - 1) as u8;
            let kind = KINDS[k];
            let x = data(d.iter().product(), seed);
            let (got, y) = run(&Op::Reduce { kind, axes, keepdims: keep }, &[(&x, &d)]).unwrap();
            let kept: Vec<usize> = (0..r).filter(|i| axes & (1 << i) == 0).collect();
            let kd: Vec<usize> = kept.iter().map(|&i| d[i]).collect();
            let yd: Vec<usize> = (0..r).filter_map(|i| if axes & (1 << i) == 0 { Some(d[i]) } else if keep { Some(1) } else { None }).collect();
            prop_assert_eq!(y, sh(&yd));
            let mut groups: Vec<Vec<f64>> = vec![vec![]; kd.iter().product()];
            for idx in indices(&d) {
                let ki: Vec<usize> = kept.iter().map(|&i| idx[i]).collect();
                groups[lin(&kd, &ki)].push(x[lin(&d, &idx)] as f64);
            }
            let want: Vec<f64> = groups.iter().map(|g| match kind {
                ReduceKind::Mean => g.iter().sum::<f64>() / g.len() as f64,
                ReduceKind::Sum => g.iter().sum(),
                ReduceKind::Max => g.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                ReduceKind::Min => g.iter().copied().fold(f64::INFINITY, f64::min),
            }).collect();
            assert_close(&got, &want, 1e-5);
        }
    }

    #[test]
    fn empty_reduced_axis() {
        let x: [f32; 0] = [];
        let (y, _) = run(&Op::Reduce { kind: ReduceKind::Sum, axes: 0b10, keepdims: false }, &[(&x, &[3, 0])]).unwrap();
        assert_eq!(y, [0.0; 3]);
        let (y, _) = run(&Op::Reduce { kind: ReduceKind::Max, axes: 0b10, keepdims: true }, &[(&x, &[2, 0])]).unwrap();
        assert_eq!(y, [f32::NEG_INFINITY; 2]);
    }
}
