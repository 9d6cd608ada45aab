//! The weighted group sparse envelope Φ_{k,d} (WGSEF): its value, its proximal operator and the
//! worst-case linear root search behind both.
//!
//! The paper's exact formula is not available; this is the derivation of ALGORITHMS.md §2.2–2.4
//! (the group generalisation of Beck & Refael's sparse envelope, §1): for groups G_i with norms
//! r_i = ||x_{G_i}||_2 and weights d_i > 0, with a_i = sqrt(d_i)·r_i,
//!
//!   Φ_{k,d}(x) = ½ min_{u ∈ [0,1]^m, Σu ≤ k} Σ_i a_i² / u_i,
//!
//! the convex envelope of ½ Σ d_i r_i² restricted to at most k non-zero groups. Its prox zeroes
//! the groups with small r_i/sqrt(d_i), so a larger weight d_i makes a group easier to prune.

use std::cmp::Ordering;

/// A partition of (some of) a vector's indices into disjoint groups. Indices in no group are
/// left alone by [`prox`] and do not count in [`value`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Groups {
    /// The indices of each group.
    pub members: Vec<Vec<usize>>,
}

impl Groups {
    /// Groups of `size` consecutive indices covering `0..n` (the last one may be shorter).
    pub fn contiguous(n: usize, size: usize) -> Groups {
        let size = size.max(1);
        Groups { members: (0..n).step_by(size).map(|s| (s..(s + size).min(n)).collect()).collect() }
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there is no group.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The l2 norm of each group of `x`.
    pub fn norms(&self, x: &[f64]) -> Vec<f64> {
        self.members.iter().map(|g| g.iter().map(|&i| x[i] * x[i]).sum::<f64>().sqrt()).collect()
    }
}

/// The root η* ≥ 0 of h(η) = Σ_i clip(η·a_i − c_i, 0, 1) − k, for a_i ≥ 0, c_i ≥ 0 and
/// 0 < k < #{i : a_i > 0} (so that a root exists). h is piecewise linear and non-decreasing with
/// breakpoints c_i/a_i and (1 + c_i)/a_i; each round evaluates h at the median breakpoint and
/// discards half of them, and groups whose breakpoints all lie outside the remaining interval
/// are folded into a linear term. With `select_nth_unstable` (worst-case linear) the whole
/// search is O(m) (ALGORITHMS.md §2.4).
pub fn root(a: &[f64], c: &[f64], k: f64) -> f64 {
    let mut act: Vec<usize> = (0..a.len()).filter(|&i| a[i] > 0.0).collect();
    let mut bps: Vec<f64> = act.iter().flat_map(|&i| [c[i] / a[i], (1.0 + c[i]) / a[i]]).collect();
    let (mut lo, mut hi) = (0.0f64, f64::INFINITY);
    let (mut slope, mut cst) = (0.0f64, 0.0f64);
    while !bps.is_empty() {
        let mid = bps.len() / 2;
        let p = *bps.select_nth_unstable_by(mid, |x, y| x.partial_cmp(y).unwrap_or(Ordering::Equal)).1;
        let val = slope * p + cst + act.iter().map(|&i| (p * a[i] - c[i]).clamp(0.0, 1.0)).sum::<f64>() - k;
        if val == 0.0 {
            return p;
        }
        if val > 0.0 {
            hi = p;
            bps.retain(|&b| b < p);
        } else {
            lo = p;
            bps.retain(|&b| b > p);
        }
        act.retain(|&i| {
            let (l, h) = (c[i] / a[i], (1.0 + c[i]) / a[i]);
            if h <= lo {
                cst += 1.0; // saturated on (lo, hi)
                false
            } else if l >= hi {
                false // zero on (lo, hi)
            } else if l <= lo && h >= hi {
                slope += a[i]; // linear on (lo, hi)
                cst -= c[i];
                false
            } else {
                true
            }
        });
    }
    if slope > 0.0 {
        ((k - cst) / slope).clamp(lo, hi)
    } else if hi.is_finite() {
        0.5 * (lo + hi)
    } else {
        lo
    }
}

/// Φ_{k,d}(x) (ALGORITHMS.md §2.2): ½ Σ a_i² when at most k groups are non-zero, otherwise
/// ½ [Σ_saturated a_i² + (Σ_other a_i)² / (k − N)] with u_i = min(1, η a_i), Σ u_i = k, and N the
/// number of saturated groups.
pub fn value(x: &[f64], groups: &Groups, d: &[f64], k: usize) -> f64 {
    let a: Vec<f64> = groups.norms(x).iter().zip(d).map(|(r, d)| d.sqrt() * r).collect();
    let nnz = a.iter().filter(|&&v| v > 0.0).count();
    if nnz <= k {
        return 0.5 * a.iter().map(|v| v * v).sum::<f64>();
    }
    let eta = root(&a, &vec![0.0; a.len()], k as f64);
    let (mut sat, mut n_sat, mut rest) = (0.0, 0usize, 0.0);
    for &v in &a {
        if v > 0.0 && eta * v >= 1.0 {
            sat += v * v;
            n_sat += 1;
        } else {
            rest += v;
        }
    }
    if n_sat >= k {
        return 0.5 * sat;
    }
    0.5 * (sat + rest * rest / (k - n_sat) as f64)
}

/// Result of [`prox`]: each group's multiplier u_i ∈ [0, 1] (0 = zeroed, 1 = only ridge-shrunk).
#[derive(Clone, Debug, PartialEq)]
pub struct ProxInfo {
    /// u_i per group.
    pub u: Vec<f64>,
}

/// x ← prox_{t·Φ_{k,d}}(x) = argmin_z t·Φ_{k,d}(z) + ½||z − x||² (ALGORITHMS.md §2.3): with at
/// most k non-zero groups every group is scaled by 1/(1 + t·d_i); otherwise
/// u_i = clip(η* sqrt(d_i) r_i − t d_i, 0, 1) with Σ u_i = k, and group i is scaled by
/// u_i / (u_i + t d_i).
pub fn prox(x: &mut [f64], groups: &Groups, d: &[f64], t: f64, k: usize) -> ProxInfo {
    let r = groups.norms(x);
    let nnz = r.iter().filter(|&&v| v > 0.0).count();
    let u: Vec<f64> = if nnz <= k {
        r.iter().map(|&v| if v > 0.0 { 1.0 } else { 0.0 }).collect()
    } else {
        let a: Vec<f64> = r.iter().zip(d).map(|(r, d)| d.sqrt() * r).collect();
        let c: Vec<f64> = d.iter().map(|d| t * d).collect();
        let eta = root(&a, &c, k as f64);
        a.iter().zip(&c).map(|(a, c)| if *a > 0.0 { (eta * a - c).clamp(0.0, 1.0) } else { 0.0 }).collect()
    };
    for (g, (ui, di)) in groups.members.iter().zip(u.iter().zip(d)) {
        let s = if *ui > 0.0 { ui / (ui + t * di) } else { 0.0 };
        for &i in g {
            x[i] *= s;
        }
    }
    ProxInfo { u }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// h(η) by direct evaluation.
    fn h(a: &[f64], c: &[f64], k: f64, eta: f64) -> f64 {
        a.iter().zip(c).map(|(a, c)| if *a > 0.0 { (eta * a - c).clamp(0.0, 1.0) } else { 0.0 }).sum::<f64>() - k
    }

    fn bisect(a: &[f64], c: &[f64], k: f64) -> f64 {
        let (mut lo, mut hi) = (0.0, a.iter().zip(c).filter(|(a, _)| **a > 0.0).map(|(a, c)| (1.0 + c) / a).fold(0.0, f64::max));
        for _ in 0..200 {
            let m = 0.5 * (lo + hi);
            if h(a, c, k, m) < 0.0 {
                lo = m
            } else {
                hi = m
            }
        }
        0.5 * (lo + hi)
    }

    /// The prox objective.
    fn objective(z: &[f64], x: &[f64], g: &Groups, d: &[f64], t: f64, k: usize) -> f64 {
        t * value(z, g, d, k) + 0.5 * z.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum::<f64>()
    }

    /// A derivative-free minimiser: pattern search along coordinates and random directions with
    /// a shrinking step (converges on convex functions of a few variables).
    fn brute_min(f: impl Fn(&[f64]) -> f64, x0: &[f64], seed: u64) -> Vec<f64> {
        let n = x0.len();
        let mut x = x0.to_vec();
        let mut fx = f(&x);
        let mut s = seed | 1;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let mut step = 1.0;
        while step > 1e-10 {
            let mut improved = false;
            for dir in 0..(2 * n + 8) {
                let v: Vec<f64> = if dir < 2 * n {
                    (0..n)
                        .map(|i| {
                            if i == dir / 2 {
                                if dir % 2 == 0 {
                                    1.0
                                } else {
                                    -1.0
                                }
                            } else {
                                0.0
                            }
                        })
                        .collect()
                } else {
                    (0..n).map(|_| rnd()).collect()
                };
                let y: Vec<f64> = x.iter().zip(&v).map(|(a, b)| a + step * b).collect();
                let fy = f(&y);
                if fy < fx {
                    x = y;
                    fx = fy;
                    improved = true;
                }
            }
            if !improved {
                step *= 0.5;
            }
        }
        x
    }

    fn instance() -> impl Strategy<Value = (Vec<f64>, Vec<usize>, Vec<f64>, f64, usize)> {
        (2usize..5, 1usize..3).prop_flat_map(|(m, size)| {
            (
                proptest::collection::vec(-3.0f64..3.0, m * size),
                Just(vec![size; m]),
                proptest::collection::vec(0.2f64..3.0, m),
                0.01f64..2.0,
                1usize..m,
            )
        })
    }

    fn groups_of(sizes: &[usize]) -> Groups {
        let mut start = 0;
        Groups {
            members: sizes
                .iter()
                .map(|&s| {
                    let g = (start..start + s).collect();
                    start += s;
                    g
                })
                .collect(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn root_agrees_with_bisection(a in proptest::collection::vec(0.0f64..5.0, 2..40), cs in proptest::collection::vec(0.0f64..2.0, 40), kf in 0.05f64..0.95) {
            let c = &cs[..a.len()];
            let active = a.iter().filter(|&&v| v > 0.0).count();
            prop_assume!(active >= 2);
            let k = (kf * active as f64).max(0.5);
            let r = root(&a, c, k);
            prop_assert!(h(&a, c, k, r).abs() < 1e-9, "h(root) = {}", h(&a, c, k, r));
            let b = bisect(&a, c, k);
            prop_assert!((h(&a, c, k, b)).abs() < 1e-9);
            // h may be flat at its root: compare values of h, and the roots where it is not.
            prop_assert!(h(&a, c, k, r - 1e-6).min(0.0) <= 1e-12 && h(&a, c, k, r + 1e-6) >= -1e-12);
        }

        #[test]
        fn prox_matches_a_brute_force_minimiser((x, sizes, d, t, k) in instance(), seed in 1u64..u64::MAX) {
            let g = groups_of(&sizes);
            let mut z = x.clone();
            prox(&mut z, &g, &d, t, k);
            let f = |v: &[f64]| objective(v, &x, &g, &d, t, k);
            let b = brute_min(f, &x, seed);
            let (fz, fb) = (f(&z), f(&b));
            prop_assert!(fz <= fb + 1e-9 * (1.0 + fb.abs()), "prox objective {fz} above brute force {fb}");
            for (p, q) in z.iter().zip(&b) {
                prop_assert!((p - q).abs() < 1e-3 * (1.0 + q.abs()), "prox {z:?} vs brute force {b:?}");
            }
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(60))]

        #[test]
        fn value_is_the_variational_minimum((x, sizes, d, _t, k) in instance()) {
            // ½ min over u in D_k of Σ a_i²/u_i, by a grid over u (two or more groups, k < m).
            let g = groups_of(&sizes);
            let a: Vec<f64> = g.norms(&x).iter().zip(&d).map(|(r, d)| d.sqrt() * r).collect();
            prop_assume!(a.len() <= 3);
            let v = value(&x, &g, &d, k);
            let steps = 60;
            let mut best = f64::INFINITY;
            let grid = |i: usize| (i as f64 + 1.0) / steps as f64;
            let mut idx = vec![0usize; a.len()];
            loop {
                let u: Vec<f64> = idx.iter().map(|&i| grid(i)).collect();
                if u.iter().sum::<f64>() <= k as f64 + 1e-12 {
                    best = best.min(0.5 * a.iter().zip(&u).map(|(a, u)| a * a / u).sum::<f64>());
                }
                let mut p = 0;
                while p < idx.len() {
                    idx[p] += 1;
                    if idx[p] < steps { break; }
                    idx[p] = 0;
                    p += 1;
                }
                if p == idx.len() { break; }
            }
            prop_assert!(v <= best + 1e-9, "closed form {v} above the grid minimum {best}");
            prop_assert!(v >= best * (1.0 - 0.05) - 1e-9, "closed form {v} far below the grid minimum {best}");
        }
    }

    #[test]
    fn k_sparse_vectors_are_only_ridge_shrunk_and_value_is_half_the_weighted_norm() {
        let g = Groups::contiguous(6, 2);
        let d = [1.0, 2.0, 3.0];
        let x = [1.0, 2.0, 0.0, 0.0, -3.0, 1.0];
        let v = value(&x, &g, &d, 2);
        assert!((v - 0.5 * (1.0 * 5.0 + 3.0 * 10.0)).abs() < 1e-12);
        let mut z = x;
        prox(&mut z, &g, &d, 0.5, 2);
        assert!((z[0] - 1.0 / 1.5).abs() < 1e-12 && (z[4] + 3.0 / 2.5).abs() < 1e-12);
    }

    #[test]
    fn heavier_groups_are_pruned_first() {
        // Two groups of equal norm: the one with the larger weight d is zeroed.
        let g = Groups::contiguous(4, 2);
        let mut z = [1.0, 1.0, 1.0, 1.0];
        let info = prox(&mut z, &g, &[1.0, 4.0], 2.0, 1);
        assert!(info.u[1] < info.u[0]);
        assert_eq!(&z[2..], &[0.0, 0.0]);
    }
}
