//! ChannelAffine: `y = x * scale[c] + shift[c]` along axis 1 (unfused BatchNormalization).

use super::{sub, sub_mut, Operand};
use crate::op::OpError;
use crate::view::View;

/// Per-channel affine map of `x` (rank >= 2) into `out`, validated by `execute`.
pub(super) fn channel_affine(x: &Operand<'_>, scale: &View<'_>, shift: &View<'_>, out: &mut [f32]) -> Result<(), OpError> {
    let s = &x.shape;
    let c = s.dim(1);
    let inner = s.prod(2, s.rank());
    for n in 0..s.dim(0) {
        for ch in 0..c {
            let (a, b) = (scale.get(ch), shift.get(ch));
            let start = (n * c + ch) * inner;
            let ob = sub_mut(out, start, inner)?;
            match x.view.as_f32() {
                Some(xs) => {
                    for (o, v) in ob.iter_mut().zip(sub(xs, start, inner)?) {
                        *o = v * a + b;
                    }
                }
                None => {
                    for (i, o) in ob.iter_mut().enumerate() {
                        *o = x.view.get(start + i) * a + b;
                    }
                }
            }
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

    #[test]
    fn per_channel_scale_and_shift() {
        for d in [vec![1usize, 3], vec![2, 3, 5], vec![1, 3, 4, 4], vec![2, 3, 1, 2, 3]] {
            let x = data(d.iter().product(), 5);
            let sc = round_f16(&data(3, 6));
            let shf = data(3, 7);
            let (got, _) = run(&Op::ChannelAffine, &[(&x, &d), (&sc, &[3]), (&shf, &[3, 1, 1])]).unwrap();
            let want: Vec<f64> = indices(&d).iter().map(|i| x[lin(&d, i)] as f64 * sc[i[1]] as f64 + shf[i[1]] as f64).collect();
            assert_close(&got, &want, 1e-6);
            let (b16, x32) = (f16le(&sc), f32le(&x));
            let ops = [
                Operand { view: View::F32Le(&x32), shape: sh(&d) },
                Operand { view: View::F16Le(&b16), shape: sh(&[3]) },
                Operand { view: View::F32(&shf), shape: sh(&[3]) },
            ];
            assert_eq!(run_ops(&Op::ChannelAffine, &ops).unwrap().0, got);
        }
    }
}
