//! Pad: constant, reflect or edge padding before and after each axis.

use super::{dims_of, sub_mut, Counter, Operand};
use crate::op::{OpError, PadMode};
use crate::shape::{Shape, MAX_RANK};

/// Input index along one axis of length `d` (> 0) for output index `i` with `pb` leading pads.
/// `Op::infer` guarantees `pb, pe < d` for reflect, so one mirror image suffices.
#[inline]
fn source(i: usize, pb: usize, d: usize, mode: PadMode) -> usize {
    let last = d.saturating_sub(1);
    match i.checked_sub(pb) {
        None => match mode {
            PadMode::Reflect => (pb - i).min(last),
            _ => 0,
        },
        Some(j) if j > last => match mode {
            PadMode::Reflect => (2 * last).saturating_sub(j),
            _ => last,
        },
        Some(j) => j,
    }
}

/// Reflect / edge padding of `x` into `out` (shape `y`), validated by `execute` (`out` non-empty,
/// so every padded axis of `x` is non-empty).
pub(super) fn pad_border(pads: &[u32; 2 * MAX_RANK], mode: PadMode, x: &Operand<'_>, out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let r = x.shape.rank();
    if r == 0 {
        x.view.read_into(0, out);
        return Ok(());
    }
    let xs = x.shape.strides();
    let xd = dims_of(&x.shape);
    let yd = dims_of(y);
    let (last, ylast) = (xd[r - 1], yd[r - 1]);
    let (pb, pe) = (pads[r - 1] as usize, pads[MAX_RANK + r - 1] as usize);
    let mut cnt = Counter::new(&yd, r - 1);
    let mut row = 0;
    loop {
        let mut at = 0;
        for i in 0..r - 1 {
            at += source(cnt.idx[i], pads[i] as usize, xd[i], mode) * xs[i];
        }
        let orow = sub_mut(out, row * ylast, ylast)?;
        // The input row goes to the middle; the borders are copied from it.
        x.view.read_into(at, sub_mut(orow, pb, last)?);
        for k in (0..pb).chain(pb + last..pb + last + pe) {
            let src = pb + source(k, pb, last, mode);
            let v = *orow.get(src).ok_or(OpError::ShapeMismatch)?;
            *orow.get_mut(k).ok_or(OpError::ShapeMismatch)? = v;
        }
        row += 1;
        if !cnt.next() {
            break;
        }
    }
    Ok(())
}

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
    use crate::op::{Op, OpError, PadMode};
    use proptest::prelude::*;

    /// numpy `np.pad` index rule for one axis (mode 'reflect' or 'edge'), by repeated folding.
    fn np_index(i: i64, d: i64, reflect: bool) -> i64 {
        if !reflect {
            return i.clamp(0, d - 1);
        }
        if d == 1 {
            return 0;
        }
        let mut j = i;
        while j < 0 || j >= d {
            j = if j < 0 { -j } else { 2 * (d - 1) - j };
        }
        j
    }

    #[test]
    fn reflect_and_edge_examples() {
        // np.pad([[1, 2, 3], [4, 5, 6]], ((1, 0), (2, 1)), 'reflect') and 'edge'.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut pads = [0u32; 12];
        (pads[0], pads[1], pads[7]) = (1, 2, 1);
        let (got, y) = run(&Op::Pad { pads, value: 0.0, mode: PadMode::Reflect }, &[(&x, &[2, 3])]).unwrap();
        assert_eq!(y, sh(&[3, 6]));
        assert_eq!(got, [6.0, 5.0, 4.0, 5.0, 6.0, 5.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 6.0, 5.0, 4.0, 5.0, 6.0, 5.0]);
        let (got, _) = run(&Op::Pad { pads, value: 0.0, mode: PadMode::Edge }, &[(&x, &[2, 3])]).unwrap();
        assert_eq!(got, [1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 4.0, 4.0, 4.0, 5.0, 6.0, 6.0]);
        (pads[1], pads[7]) = (3, 0);
        assert_eq!(run(&Op::Pad { pads, value: 0.0, mode: PadMode::Reflect }, &[(&x, &[2, 3])]), Err(OpError::BadAttribute));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(200)))]
        #[test]
        fn matches_naive(d in proptest::collection::vec(0usize..4, 0..7), p in proptest::collection::vec(0u32..3, 12), seed in 0u64..1000) {
            let r = d.len();
            let mut pads = [0u32; 12];
            pads[..r].copy_from_slice(&p[..r]);
            pads[6..6 + r].copy_from_slice(&p[6..6 + r]);
            let x = data(d.iter().product(), seed);
            let (got, y) = run(&Op::Pad { pads, value: 0.5, mode: PadMode::Constant }, &[(&x, &d)]).unwrap();
            let yd: Vec<usize> = (0..r).map(|i| d[i] + (pads[i] + pads[6 + i]) as usize).collect();
            prop_assert_eq!(y, sh(&yd));
            let want: Vec<f64> = indices(&yd).iter().map(|idx| {
                let ii: Option<Vec<usize>> = (0..r).map(|i| idx[i].checked_sub(pads[i] as usize).filter(|&v| v < d[i])).collect();
                ii.map_or(0.5, |ii| x[lin(&d, &ii)] as f64)
            }).collect();
            assert_close(&got, &want, 0.0);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(300)))]
        #[test]
        fn reflect_and_edge_match_numpy(d in proptest::collection::vec(1usize..5, 0..6), p in proptest::collection::vec(0u32..6, 12), reflect: bool, seed in 0u64..1000) {
            let r = d.len();
            let mut pads = [0u32; 12];
            for i in 0..r {
                let cap = if reflect { d[i] as u32 } else { 6 };
                pads[i] = p[i] % cap;
                pads[6 + i] = p[6 + i] % cap;
            }
            let mode = if reflect { PadMode::Reflect } else { PadMode::Edge };
            let x = data(d.iter().product(), seed);
            let (got, y) = run(&Op::Pad { pads, value: 0.5, mode }, &[(&x, &d)]).unwrap();
            let yd: Vec<usize> = (0..r).map(|i| d[i] + (pads[i] + pads[6 + i]) as usize).collect();
            prop_assert_eq!(y, sh(&yd));
            let want: Vec<f64> = indices(&yd).iter().map(|idx| {
                let ii: Vec<usize> = (0..r).map(|i| np_index(idx[i] as i64 - pads[i] as i64, d[i] as i64, reflect) as usize).collect();
                x[lin(&d, &ii)] as f64
            }).collect();
            assert_close(&got, &want, 0.0);
        }
    }
}
