//! Reshape (also Flatten / Squeeze / Unsqueeze): the elements are copied unchanged.

use crate::view::View;

/// Copies `x` into `out` (same length, validated by `execute`).
pub(super) fn reshape(x: &View<'_>, out: &mut [f32]) {
    x.read_into(0, out);
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::Operand;
    use crate::op::{Op, OpError};
    use crate::view::View;

    #[test]
    fn copies_elements_from_any_view() {
        let x = data(24, 1);
        let op = Op::Reshape { shape: sh(&[4, 6]) };
        let (y, s) = run(&op, &[(&x, &[1, 2, 3, 4])]).unwrap();
        assert_eq!((y.as_slice(), s), (x.as_slice(), sh(&[4, 6])));
        let h = round_f16(&x);
        let b = f16le(&h);
        let (y, _) = run_ops(&op, &[Operand { view: View::F16Le(&b), shape: sh(&[24]) }]).unwrap();
        assert_eq!(y, h);
        assert_eq!(run(&op, &[(&x, &[25])]).unwrap_err(), OpError::ShapeMismatch);
    }
}
