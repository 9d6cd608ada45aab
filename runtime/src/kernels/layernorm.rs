//! LayerNorm over the trailing axes `axis..rank`.

use super::{sub_mut, Operand};
use crate::op::OpError;
use crate::view::View;

/// `y = (x - mean) / sqrt(var + epsilon) * gamma + beta` per row of the trailing axes
/// (population variance, two-pass); shapes validated by `execute`.
pub(super) fn layer_norm(
    axis: usize,
    epsilon: f32,
    x: &Operand<'_>,
    gamma: &View<'_>,
    beta: Option<&Operand<'_>>,
    out: &mut [f32],
) -> Result<(), OpError> {
    let s = &x.shape;
    let n = s.prod(axis, s.rank());
    let rows = s.prod(0, axis);
    if n == 0 {
        return Ok(());
    }
    x.view.read_into(0, out);
    for r in 0..rows {
        let row = sub_mut(out, r * n, n)?;
        let mean = row.iter().sum::<f32>() / n as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
        let inv = 1.0 / libm::sqrtf(var + epsilon);
        for (j, v) in row.iter_mut().enumerate() {
            let b = beta.map_or(0.0, |b| b.view.get(j));
            *v = (*v - mean) * inv * gamma.get(j) + b;
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
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(150)))]
        #[test]
        fn matches_naive(d in proptest::collection::vec(1usize..6, 1..5), ax in 0usize..4, beta in any::<bool>(), seed in 0u64..1000) {
            let axis = ax % d.len();
            let n: usize = d[axis..].iter().product();
            let x: Vec<f32> = data(d.iter().product(), seed).iter().map(|v| v * 3.0 + 1.0).collect();
            let g = data(n, seed + 1);
            let b = data(n, seed + 2);
            let eps = 1e-5f32;
            let mut ins: Vec<(&[f32], &[usize])> = vec![(&x, &d), (&g, &d[axis..])];
            if beta {
                ins.push((&b, &d[axis..]));
            }
            let (got, _) = run(&Op::LayerNorm { axis: axis as u8, epsilon: eps }, &ins).unwrap();
            let mut want = vec![];
            for row in x.chunks(n) {
                let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
                let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
                for (j, &v) in row.iter().enumerate() {
                    let bj = if beta { b[j] as f64 } else { 0.0 };
                    want.push((v as f64 - mean) / (var + eps as f64).sqrt() * g[j] as f64 + bj);
                }
            }
            assert_close(&got, &want, 2e-4);
        }
    }
}
