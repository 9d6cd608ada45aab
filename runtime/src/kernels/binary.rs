//! Element-wise binary operators with full numpy (multidirectional) broadcasting.

use super::{bcast_strides, dims_of, fmax, fmin, has_fn, sub_mut, Counter, Operand, BINARY_BITS};
use crate::op::{BinaryKind, OpError};
use crate::shape::Shape;
use crate::view::View;

/// `out = a (op) b` with broadcasting; shapes validated by `execute`.
pub(super) fn binary<const OPS: u128>(
    kind: BinaryKind,
    a: &Operand<'_>,
    b: &Operand<'_>,
    out: &mut [f32],
    y: &Shape,
) -> Result<(), OpError> {
    match kind {
        BinaryKind::Add if const { has_fn::<OPS>(BINARY_BITS) } => run(|p, q| p + q, a, b, out, y),
        BinaryKind::Sub if const { has_fn::<OPS>(BINARY_BITS + 1) } => run(|p, q| p - q, a, b, out, y),
        BinaryKind::Mul if const { has_fn::<OPS>(BINARY_BITS + 2) } => run(|p, q| p * q, a, b, out, y),
        BinaryKind::Div if const { has_fn::<OPS>(BINARY_BITS + 3) } => run(|p, q| p / q, a, b, out, y),
        BinaryKind::PRelu if const { has_fn::<OPS>(BINARY_BITS + 4) } => run(|p, q| if p < 0.0 { p * q } else { p }, a, b, out, y),
        BinaryKind::Pow if const { has_fn::<OPS>(BINARY_BITS + 5) } => run(libm::powf, a, b, out, y),
        BinaryKind::Max if const { has_fn::<OPS>(BINARY_BITS + 6) } => run(fmax, a, b, out, y),
        BinaryKind::Min if const { has_fn::<OPS>(BINARY_BITS + 7) } => run(fmin, a, b, out, y),
        BinaryKind::AddRelu if const { has_fn::<OPS>(BINARY_BITS + 8) } => {
            run(|p, q| crate::op::Activation::Relu.apply(p + q), a, b, out, y)
        }
        _ => Err(OpError::UnknownKind(crate::op::kind::BINARY)),
    }
}

/// If `s`, right-aligned to rank `r`, has exactly one axis of size > 1, that axis.
fn single_axis(s: &Shape, r: usize) -> Option<usize> {
    let mut found = None;
    for i in 0..s.rank() {
        if s.dim(i) != 1 {
            if found.is_some() {
                return None;
            }
            found = Some(i + r - s.rank());
        }
    }
    found
}

fn run<F: Fn(f32, f32) -> f32>(f: F, a: &Operand<'_>, b: &Operand<'_>, out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let n = out.len();
    let (la, lb) = (a.view.len(), b.view.len());
    // A side with as many elements as the output is laid out exactly like it (broadcasting only
    // ever inserts size-1 axes or expands them).
    if la == n && lb == n {
        match (a.view.as_f32(), b.view.as_f32()) {
            (Some(xa), Some(xb)) => {
                for ((o, p), q) in out.iter_mut().zip(xa).zip(xb) {
                    *o = f(*p, *q);
                }
            }
            _ => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = f(a.view.get(i), b.view.get(i));
                }
            }
        }
        return Ok(());
    }
    if la == n && lb == 1 {
        let q = b.view.get(0);
        map_side(a.view, out, |p| f(p, q));
        return Ok(());
    }
    if la == 1 && lb == n {
        let p = a.view.get(0);
        map_side(b.view, out, |q| f(p, q));
        return Ok(());
    }
    let r = y.rank();
    // Per-channel vector: b varies along a single axis j of the output.
    if la == n {
        if let Some(j) = single_axis(&b.shape, r) {
            let c = y.dim(j);
            let inner = y.prod(j + 1, r);
            let outer = y.prod(0, j);
            for o in 0..outer {
                for ch in 0..c {
                    let q = b.view.get(ch);
                    let start = (o * c + ch) * inner;
                    let ob = sub_mut(out, start, inner)?;
                    match a.view.as_f32().and_then(|s| s.get(start..start + inner)) {
                        Some(xa) => {
                            for (v, p) in ob.iter_mut().zip(xa) {
                                *v = f(*p, q);
                            }
                        }
                        None => {
                            for (i, v) in ob.iter_mut().enumerate() {
                                *v = f(a.view.get(start + i), q);
                            }
                        }
                    }
                }
            }
            return Ok(());
        }
    }
    // General case: odometer over all but the last axis, strided inner loop over the last one.
    if r == 0 {
        if let Some(o) = out.first_mut() {
            *o = f(a.view.get(0), b.view.get(0));
        }
        return Ok(());
    }
    let sa = bcast_strides(&a.shape, r);
    let sb = bcast_strides(&b.shape, r);
    let dims = dims_of(y);
    let last = dims[r - 1];
    let (ia, ib) = (sa[r - 1], sb[r - 1]);
    let mut cnt = Counter::new(&dims, r - 1);
    let mut row = 0;
    loop {
        let (oa, ob) = (cnt.offset(&sa), cnt.offset(&sb));
        let orow = sub_mut(out, row * last, last)?;
        for (i, o) in orow.iter_mut().enumerate() {
            *o = f(a.view.get(oa + i * ia), b.view.get(ob + i * ib));
        }
        row += 1;
        if !cnt.next() {
            break;
        }
    }
    Ok(())
}

/// `out[i] = g(v[i])` with a native-slice fast path.
#[inline]
fn map_side<G: Fn(f32) -> f32>(v: View<'_>, out: &mut [f32], g: G) {
    match v.as_f32() {
        Some(s) => {
            for (o, p) in out.iter_mut().zip(s) {
                *o = g(*p);
            }
        }
        None => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = g(v.get(i));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::Operand;
    use crate::op::{BinaryKind, Op};
    use crate::view::View;
    use proptest::prelude::*;

    const KINDS: [BinaryKind; 9] = [
        BinaryKind::Add,
        BinaryKind::Sub,
        BinaryKind::Mul,
        BinaryKind::Div,
        BinaryKind::PRelu,
        BinaryKind::Pow,
        BinaryKind::Max,
        BinaryKind::Min,
        BinaryKind::AddRelu,
    ];

    fn f(k: BinaryKind, a: f64, b: f64) -> f64 {
        match k {
            BinaryKind::Add => a + b,
            BinaryKind::Sub => a - b,
            BinaryKind::Mul => a * b,
            BinaryKind::Div => a / b,
            BinaryKind::PRelu => {
                if a < 0.0 {
                    a * b
                } else {
                    a
                }
            }
            BinaryKind::Pow => a.powf(b),
            BinaryKind::Max => a.max(b),
            BinaryKind::Min => a.min(b),
            BinaryKind::AddRelu => (a + b).max(0.0),
        }
    }

    /// Naive numpy broadcasting over output index tuples.
    fn naive(k: BinaryKind, a: &[f32], ad: &[usize], b: &[f32], bd: &[usize], yd: &[usize]) -> Vec<f64> {
        let r = yd.len();
        let pick = |d: &[usize], idx: &[usize]| -> usize {
            let off = r - d.len();
            let i: Vec<usize> = (0..d.len()).map(|j| if d[j] == 1 { 0 } else { idx[j + off] }).collect();
            lin(d, &i)
        };
        indices(yd).iter().map(|idx| f(k, a[pick(ad, idx)] as f64, b[pick(bd, idx)] as f64)).collect()
    }

    fn check(k: BinaryKind, ad: &[usize], bd: &[usize], seed: u64) {
        let mut a = data(ad.iter().product(), seed);
        let mut b = data(bd.iter().product(), seed + 1);
        if k == BinaryKind::Pow {
            a.iter_mut().for_each(|v| *v = v.abs() + 0.1);
        }
        if k == BinaryKind::Div {
            b.iter_mut().for_each(|v| *v = if *v < 0.0 { *v - 0.25 } else { *v + 0.25 });
        }
        let (got, y) = run(&Op::Binary(k), &[(&a, ad), (&b, bd)]).unwrap();
        let yd: Vec<usize> = y.dims().iter().map(|&d| d as usize).collect();
        let want = naive(k, &a, ad, &b, bd, &yd);
        assert_close(&got, &want, 1e-5);
        // Non-native views take the generic paths and must agree.
        let (a32, b16) = (f32le(&a), f16le(&round_f16(&b)));
        let br = round_f16(&b);
        let want16 = naive(k, &a, ad, &br, bd, &yd);
        let ops = [Operand { view: View::F32Le(&a32), shape: sh(ad) }, Operand { view: View::F16Le(&b16), shape: sh(bd) }];
        assert_close(&run_ops(&Op::Binary(k), &ops).unwrap().0, &want16, 1e-5);
    }

    fn shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
        proptest::collection::vec((1usize..5, 0u8..4), 0..6).prop_flat_map(|full| {
            let a: Vec<usize> = full.iter().map(|&(d, s)| if s == 1 { 1 } else { d }).collect();
            let b: Vec<usize> = full.iter().map(|&(d, s)| if s == 2 { 1 } else { d }).collect();
            (0..=a.len(), 0..=b.len()).prop_map(move |(ca, cb)| (a[a.len() - ca..].to_vec(), b[b.len() - cb..].to_vec()))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(300)))]
        #[test]
        fn broadcasting_matches_naive((ad, bd) in shapes(), k in 0usize..8, seed in 0u64..1000, swap in any::<bool>()) {
            if swap {
                check(KINDS[k], &bd, &ad, seed);
            } else {
                check(KINDS[k], &ad, &bd, seed);
            }
        }
    }

    #[test]
    fn edge_cases() {
        for k in KINDS {
            check(k, &[2, 3], &[2, 3], 1); // equal
            check(k, &[1, 4, 3, 3], &[], 2); // rank-0 scalar
            check(k, &[], &[1, 4, 3, 3], 3);
            check(k, &[1, 4, 3, 3], &[1], 4); // one-element vector
            check(k, &[1, 4, 3, 3], &[4, 1, 1], 5); // per channel
            check(k, &[4, 1, 1], &[1, 4, 3, 3], 6);
            check(k, &[2, 4, 3, 5], &[5], 7); // last axis
            check(k, &[3, 1], &[1, 4], 8); // both broadcast
            check(k, &[1, 4], &[3, 1], 9);
            check(k, &[2, 1, 3, 1, 2, 1], &[1, 3, 1, 4, 1, 2], 10); // rank 6
            check(k, &[], &[], 11);
        }
    }

    #[test]
    fn prelu_max_min_values() {
        let a = [-2.0f32, -0.5, 0.0, 3.0];
        let s = [0.1f32, 0.2, 0.3, 0.4];
        let (y, _) = run(&Op::Binary(BinaryKind::PRelu), &[(&a, &[1, 4, 1]), (&s, &[4, 1])]).unwrap();
        assert_close(&y, &[-0.2, -0.1, 0.0, 3.0], 1e-6);
        let (y, _) = run(&Op::Binary(BinaryKind::Max), &[(&[f32::NAN, 1.0], &[2]), (&[0.0], &[])]).unwrap();
        assert!(y[0].is_nan() && y[1] == 1.0);
    }
}
