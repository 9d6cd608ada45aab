//! Transpose: output axis `i` is input axis `perm[i]`.

use super::{copy_strided, dims_of, Operand};
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
    if let (Some(xs), Some((b, p, q))) = (x.view.as_f32(), planar(&dims_of(y), &st, r)) {
        if let (Some(xs), Some(out)) = (xs.get(..b * p * q), out.get_mut(..b * p * q)) {
            swap_planes(xs, p, q, out);
            return Ok(());
        }
    }
    copy_strided(x.view, 0, &st, out, y)
}

/// `Some((b, p, q))` when the output (dims `d`, input stride `st[i]` along output axis `i`,
/// rank `r`) is `b` planes of a `q × p` input matrix transposed to `p × q` (`b·p·q` floats each
/// side, `p, q > 1`): NCHW → NHWC and the like, once axes of length 1 are dropped and axes
/// that stay adjacent in the input are merged.
fn planar(d: &[usize; MAX_RANK], st: &[usize; MAX_RANK], r: usize) -> Option<(usize, usize, usize)> {
    // (length, input stride) of the merged axes, outermost first.
    let mut ax = [(0usize, 0usize); MAX_RANK];
    let mut n = 0usize;
    for i in 0..r {
        if d[i] == 1 {
            continue;
        }
        match n.checked_sub(1).map(|k| ax[k]) {
            Some((len, s)) if s == st[i] * d[i] => ax[n - 1] = (len * d[i], st[i]),
            _ => {
                ax[n] = (d[i], st[i]);
                n += 1;
            }
        }
    }
    // Output axes [b?, p, q] with input strides [p·q, 1, p].
    let (b, (p, sp), (q, sq)) = match ax[..n] {
        [p, q] => ((1, 0), p, q),
        [b, p, q] => (b, p, q),
        _ => return None,
    };
    (sp == 1 && sq == p && (b.0 == 1 || b.1 == p * q)).then_some((b.0, p, q))
}

/// `out[k·p·q + i·q + j] = x[k·p·q + j·p + i]` for every plane `k`: 8 × 8 blocks (eight runs
/// of eight floats read, eight written), the edges one float at a time.
fn swap_planes(x: &[f32], p: usize, q: usize, out: &mut [f32]) {
    for (xp, op) in x.chunks_exact(p * q).zip(out.chunks_exact_mut(p * q)) {
        for i0 in (0..p).step_by(8) {
            for j0 in (0..q).step_by(8) {
                if i0 + 8 <= p && j0 + 8 <= q {
                    let mut t = [[0.0f32; 8]; 8];
                    for (jj, row) in t.iter_mut().enumerate() {
                        if let Some(src) = xp.get((j0 + jj) * p + i0..(j0 + jj) * p + i0 + 8) {
                            row.copy_from_slice(src);
                        }
                    }
                    let tt: [[f32; 8]; 8] = core::array::from_fn(|ii| core::array::from_fn(|jj| t[jj][ii]));
                    for (ii, col) in tt.iter().enumerate() {
                        if let Some(dst) = op.get_mut((i0 + ii) * q + j0..(i0 + ii) * q + j0 + 8) {
                            dst.copy_from_slice(col);
                        }
                    }
                    continue;
                }
                for j in j0..(j0 + 8).min(q) {
                    for i in i0..(i0 + 8).min(p) {
                        op[i * q + j] = xp[j * p + i];
                    }
                }
            }
        }
    }
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

    /// hello_edge_cnn's NCHW → NHWC Transpose (30 channels of 16 × 4) and a batch of two, by
    /// the two-plane path, against the strided copy's definition.
    #[test]
    fn planes_swap_as_the_strided_copy() {
        for d in [[1usize, 30, 16, 4], [2, 5, 3, 7]] {
            let x = data(d.iter().product(), 3);
            let (got, _) = run(&Op::Transpose { perm: [0, 2, 3, 1, 0, 0] }, &[(&x, &d)]).unwrap();
            let mut want = Vec::new();
            for n in 0..d[0] {
                for h in 0..d[2] {
                    for w in 0..d[3] {
                        for c in 0..d[1] {
                            want.push(x[((n * d[1] + c) * d[2] + h) * d[3] + w]);
                        }
                    }
                }
            }
            assert_eq!(got, want);
        }
        assert_eq!(super::planar(&[1, 16, 4, 30, 0, 0], &[1920, 4, 1, 64, 0, 0], 4), Some((1, 64, 30)));
        assert_eq!(super::planar(&[3, 4, 0, 0, 0, 0], &[4, 1, 0, 0, 0, 0], 2), None);
    }

    #[test]
    fn nchw_to_nhwc() {
        let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let (y, s) = run(&Op::Transpose { perm: [0, 2, 3, 1, 0, 0] }, &[(&x, &[1, 3, 2, 2])]).unwrap();
        assert_eq!(s, sh(&[1, 2, 2, 3]));
        assert_eq!(y, [0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.]);
    }
}
