//! Dense (fully connected): `y[r, n] = act(sum_k x[r, k] * w[n, k] + bias[n])`.

use super::{chunk, Operand, CHUNK};
use crate::op::{Activation, OpError};
use crate::shape::Shape;

/// Dot product with four independent accumulators (lets the compiler vectorise).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..4 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Four dot products of rows `w[i]` (each at least `x.len()` long) with the same `x`, each
/// input loaded once for the four rows; each row sums in `k` order (register blocking for
/// scalar FPUs such as the Cortex-M4F's: 2.25 instead of 3.25 instructions per MAC).
#[inline]
pub(crate) fn dot4(w: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
    let n = x.len();
    let (w0, w1, w2, w3) = (&w[0][..n], &w[1][..n], &w[2][..n], &w[3][..n]);
    let mut acc = [0.0f32; 4];
    #[allow(unused_mut)]
    let mut k0 = 0;
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    if n >= 4 {
        vfp::dot4_quads([w0, w1, w2, w3], x, n / 4, &mut acc);
        k0 = n / 4 * 4;
    }
    for k in k0..n {
        let xv = x[k];
        acc[0] += w0[k] * xv;
        acc[1] += w1[k] * xv;
        acc[2] += w2[k] * xv;
        acc[3] += w3[k] * xv;
    }
    acc
}

/// [`dot4`], out of line on Cortex-M with an FPU (hard-float ABI), where the Dense loop runs
/// it: there its loop's registers must not depend on the operator loop it would be inlined
/// into. Inlined, a change elsewhere in that loop cost it two register moves per four inputs
/// (ad_autoencoder on the M4: 836 377 → 867 977 instructions per inference; 834 806 out of
/// line). Conv keeps [`dot4`] inline (its calls are shorter), as does the M0 (soft float).
#[cfg_attr(target_abi = "eabihf", inline(never))]
fn dense_dot4(w: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
    dot4(w, x)
}

/// [`dot4`] for two inputs at once: `[dot4(w, x[0]), dot4(w, x[1])]` bit for bit (each sum in
/// `k` order), every weight loaded once for both (register blocking for scalar FPUs). On
/// hard-float Arm the pairs of inputs run in [`vfp::dot4x2_pairs`]' assembly loop (the same
/// operations in the same order, 1.5 instructions per MAC on the Cortex-M4F against about 2.2
/// compiled). Over the shorter input.
#[inline]
pub(crate) fn dot4x2(w: [&[f32]; 4], x: [&[f32]; 2]) -> [[f32; 4]; 2] {
    let n = x[0].len().min(x[1].len());
    let (w0, w1, w2, w3) = (&w[0][..n], &w[1][..n], &w[2][..n], &w[3][..n]);
    let (a, b) = (&x[0][..n], &x[1][..n]);
    let (mut p, mut q) = ([0.0f32; 4], [0.0f32; 4]);
    #[allow(unused_mut)]
    let mut k0 = 0;
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    if n >= 2 {
        vfp::dot4x2_pairs([w0, w1, w2, w3], [a, b], n / 2, &mut p, &mut q);
        k0 = n / 2 * 2;
    }
    for k in k0..n {
        let (av, bv) = (a[k], b[k]);
        let (u0, u1, u2, u3) = (w0[k], w1[k], w2[k], w3[k]);
        p[0] += u0 * av;
        p[1] += u1 * av;
        p[2] += u2 * av;
        p[3] += u3 * av;
        q[0] += u0 * bv;
        q[1] += u1 * bv;
        q[2] += u2 * bv;
        q[3] += u3 * bv;
    }
    [p, q]
}

/// The hard-float Arm loops of [`dot4`] and [`dot4x2`].
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
mod vfp {
    /// `acc[i] += Σ w[i][k] · x[k]` over `k < 4 · quads`, each step a `vmla.f32` in `k` order:
    /// [`super::dot4`]'s plain loop bit for bit. Four inputs per pass, each row's next four
    /// weights and the next four inputs in one `vldmia` with write-back each: 5 loads, 16
    /// multiply-adds and 2 loop instructions per 16 MACs. Saves and restores d0–d11 (96 bytes).
    ///
    /// # Panics
    /// When `quads` is 0 or a slice holds fewer than `4 · quads` floats.
    #[allow(unsafe_code)]
    #[inline(always)]
    pub(super) fn dot4_quads(w: [&[f32]; 4], x: &[f32], quads: usize, acc: &mut [f32; 4]) {
        assert!(quads > 0 && x.len() >= 4 * quads && w.iter().all(|r| r.len() >= 4 * quads), "dot4_quads: operands too short");
        // SAFETY: every load in the loop reads the next four floats of one operand, `quads`
        // times: inside the slices (asserted above); the accumulators are read from and written
        // to `acc`. The block uses s0–s23 only: d0–d11 are pushed first and popped last.
        unsafe {
            core::arch::asm!(
                "vpush {{d0-d11}}",
                "vldmia {pa}, {{s0-s3}}",
                "2:",
                "vldmia {w0}!, {{s4-s7}}",
                "vldmia {w1}!, {{s8-s11}}",
                "vldmia {w2}!, {{s12-s15}}",
                "vldmia {w3}!, {{s16-s19}}",
                "vldmia {px}!, {{s20-s23}}",
                "vmla.f32 s0, s4, s20",
                "vmla.f32 s1, s8, s20",
                "vmla.f32 s2, s12, s20",
                "vmla.f32 s3, s16, s20",
                "vmla.f32 s0, s5, s21",
                "vmla.f32 s1, s9, s21",
                "vmla.f32 s2, s13, s21",
                "vmla.f32 s3, s17, s21",
                "vmla.f32 s0, s6, s22",
                "vmla.f32 s1, s10, s22",
                "vmla.f32 s2, s14, s22",
                "vmla.f32 s3, s18, s22",
                "vmla.f32 s0, s7, s23",
                "vmla.f32 s1, s11, s23",
                "vmla.f32 s2, s15, s23",
                "vmla.f32 s3, s19, s23",
                "subs {cnt}, {cnt}, #1",
                "bne 2b",
                "vstmia {pa}, {{s0-s3}}",
                "vpop {{d0-d11}}",
                pa = in(reg) acc.as_mut_ptr(),
                w0 = inout(reg) w[0].as_ptr() => _,
                w1 = inout(reg) w[1].as_ptr() => _,
                w2 = inout(reg) w[2].as_ptr() => _,
                w3 = inout(reg) w[3].as_ptr() => _,
                px = inout(reg) x.as_ptr() => _,
                cnt = inout(reg) quads => _,
            );
        }
    }

    /// `p[i] += Σ w[i][k] · x[0][k]`, `q[i] += Σ w[i][k] · x[1][k]` over `k < 2 · pairs`, each
    /// step a `vmla.f32` (product rounded, then the sum: what the compiler emits for `p += u · a`)
    /// in `k` order, so the sums are [`super::dot4x2`]'s plain loop's bit for bit. Two inputs per
    /// pass, every operand's pair loaded by one `vldmia` with write-back: 6 loads, 16
    /// multiply-adds and 2 loop instructions per 16 MACs (1.5 a MAC; the compiled loop takes
    /// about 2.2: it cannot step six pointers with write-back loads). The FPU registers it uses
    /// are saved and restored inside the block (stable Rust cannot name them as operands on
    /// these targets), so the accumulators pass through memory once per call.
    ///
    /// # Panics
    /// When `pairs` is 0 or a slice holds fewer than `2 · pairs` floats.
    #[allow(unsafe_code)]
    #[inline(always)]
    pub(super) fn dot4x2_pairs(w: [&[f32]; 4], x: [&[f32]; 2], pairs: usize, p: &mut [f32; 4], q: &mut [f32; 4]) {
        assert!(pairs > 0 && w.iter().chain(&x).all(|r| r.len() >= 2 * pairs), "dot4x2_pairs: operands too short");
        // SAFETY: every load in the loop reads the next two floats of one operand, `pairs`
        // times: inside the slices (asserted above); the accumulators are read from and written
        // to `p` and `q` (4 floats each). The block uses s0–s19 only: d0–d9 are pushed first and
        // popped last (80 bytes of stack), so every FPU register leaves as it came.
        unsafe {
            core::arch::asm!(
                "vpush {{d0-d9}}",
                "vldmia {pp}, {{s0-s3}}",
                "vldmia {qq}, {{s4-s7}}",
                "2:",
                "vldmia {w0}!, {{s8, s9}}",
                "vldmia {w1}!, {{s10, s11}}",
                "vldmia {w2}!, {{s12, s13}}",
                "vldmia {w3}!, {{s14, s15}}",
                "vldmia {pa}!, {{s16, s17}}",
                "vldmia {pb}!, {{s18, s19}}",
                "vmla.f32 s0, s8, s16",
                "vmla.f32 s1, s10, s16",
                "vmla.f32 s2, s12, s16",
                "vmla.f32 s3, s14, s16",
                "vmla.f32 s4, s8, s18",
                "vmla.f32 s5, s10, s18",
                "vmla.f32 s6, s12, s18",
                "vmla.f32 s7, s14, s18",
                "vmla.f32 s0, s9, s17",
                "vmla.f32 s1, s11, s17",
                "vmla.f32 s2, s13, s17",
                "vmla.f32 s3, s15, s17",
                "vmla.f32 s4, s9, s19",
                "vmla.f32 s5, s11, s19",
                "vmla.f32 s6, s13, s19",
                "vmla.f32 s7, s15, s19",
                "subs {cnt}, {cnt}, #1",
                "bne 2b",
                "vstmia {pp}, {{s0-s3}}",
                "vstmia {qq}, {{s4-s7}}",
                "vpop {{d0-d9}}",
                pp = in(reg) p.as_mut_ptr(),
                qq = in(reg) q.as_mut_ptr(),
                w0 = inout(reg) w[0].as_ptr() => _,
                w1 = inout(reg) w[1].as_ptr() => _,
                w2 = inout(reg) w[2].as_ptr() => _,
                w3 = inout(reg) w[3].as_ptr() => _,
                pa = inout(reg) x[0].as_ptr() => _,
                pb = inout(reg) x[1].as_ptr() => _,
                cnt = inout(reg) pairs => _,
            );
        }
    }
}

/// Dense layer; inputs `x [.., K], w [N, K][, bias [N]]` validated by `execute`.
pub(super) fn dense(act: Activation, inputs: &[Operand<'_>], out: &mut [f32], y: &Shape) -> Result<(), OpError> {
    let x = &inputs[0];
    let w = &inputs[1];
    let k = w.shape.dim(1);
    let n = w.shape.dim(0);
    let rows = y.prod(0, y.rank().saturating_sub(1));
    if n == 0 {
        return Ok(());
    }
    if let (Some(xs), Some(ws), Some(mk)) = (x.view.as_f32(), w.view.as_f32(), super::gemm::simd()) {
        return super::gemm::dense(mk, xs, rows, k, ws, n, inputs.get(2).map(|b| b.view), act, out);
    }
    super::bias_rows(inputs.get(2), n, out);
    if let (Some(xs), Some(ws)) = (x.view.as_f32(), w.view.as_f32()) {
        // Native operands: four outputs per pass over the input row.
        if xs.len() < rows * k || ws.len() < n * k || out.len() < rows * n {
            return Err(OpError::ShapeMismatch);
        }
        for r in 0..rows {
            let xr = &xs[r * k..(r + 1) * k];
            let mut j = 0;
            while j + 4 <= n {
                let d = dense_dot4([&ws[j * k..], &ws[(j + 1) * k..], &ws[(j + 2) * k..], &ws[(j + 3) * k..]], xr);
                for (i, v) in d.iter().enumerate() {
                    out[r * n + j + i] += v;
                }
                j += 4;
            }
            for jj in j..n {
                out[r * n + jj] += dot(&ws[jj * k..(jj + 1) * k], xr);
            }
        }
        act.apply_all(out);
        return Ok(());
    }
    let mut wbuf = [0.0f32; CHUNK];
    let mut xbuf = [0.0f32; CHUNK];
    for j in 0..n {
        let mut k0 = 0;
        while k0 < k {
            let len = CHUNK.min(k - k0);
            let wc = chunk(w.view, j * k + k0, len, &mut wbuf);
            for r in 0..rows {
                let xc = chunk(x.view, r * k + k0, len, &mut xbuf);
                if let Some(o) = out.get_mut(r * n + j) {
                    *o += dot(wc, xc);
                }
            }
            k0 += len;
        }
    }
    if act != Activation::None {
        act.apply_all(out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::Operand;
    use crate::op::{Activation, Op};
    use crate::view::View;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(100)))]
        #[test]
        fn matches_naive(lead in proptest::collection::vec(1usize..4, 0..3), k in 1usize..600, n in 1usize..6,
                         bias in any::<bool>(), relu in any::<bool>(), seed in 0u64..1000) {
            let rows: usize = lead.iter().product();
            let mut xd = lead.clone();
            xd.push(k);
            let x = data(rows * k, seed);
            let w = round_f16(&data(n * k, seed + 1));
            let b = data(n, seed + 2);
            let act = if relu { Activation::Relu } else { Activation::None };
            let op = Op::Dense { act };
            let wd = [n, k];
            let bd = [n];
            let mut ins: Vec<(&[f32], &[usize])> = vec![(&x, &xd), (&w, &wd)];
            if bias {
                ins.push((&b, &bd));
            }
            let (got, y) = run(&op, &ins).unwrap();
            let mut yd = lead.clone();
            yd.push(n);
            prop_assert_eq!(y, sh(&yd));
            let close = |got: &[f32]| assert_dense_close(got, &x, rows, k, &w, n, bias.then_some(&b[..]), act, 1e-5);
            close(&got);
            // F16 / F32Le weights and F32Le activations (the decoding path) agree with the
            // native path up to summation order: the native path sums four rows at a time in
            // `k` order (`dot4`, assembly on hard-float Arm) or in SIMD lanes, the decoding path
            // in four interleaved accumulators (`dot`).
            let (w16, w32, x32) = (f16le(&w), f32le(&w), f32le(&x));
            for wv in [View::F16Le(&w16), View::F32Le(&w32)] {
                for xv in [View::F32(&x), View::F32Le(&x32)] {
                    let mut ops = vec![Operand { view: xv, shape: sh(&xd) }, Operand { view: wv, shape: sh(&wd) }];
                    if bias {
                        ops.push(Operand { view: View::F32(&b), shape: sh(&bd) });
                    }
                    let (g2, _) = run_ops(&op, &ops).unwrap();
                    close(&g2);
                }
            }
        }
    }

    proptest! {
        /// The two-input four-row dot equals [`super::dot4`] on each input bit for bit.
        #[test]
        fn dot4x2_is_dot4_twice(k in 0usize..300, extra in 0usize..3, seed in 0u64..1000) {
            let (x0, x1) = (data(k, seed), data(k + extra, seed + 9));
            let rows: Vec<Vec<f32>> = (0..4).map(|i| data(k + extra, seed + 1 + i)).collect();
            let w = [&rows[0][..], &rows[1][..], &rows[2][..], &rows[3][..]];
            let got = super::dot4x2(w, [&x0, &x1[..k]]);
            let bits = |v: [f32; 4]| v.map(f32::to_bits);
            prop_assert_eq!(bits(got[0]), bits(super::dot4(w, &x0)));
            prop_assert_eq!(bits(got[1]), bits(super::dot4(w, &x1[..k])));
        }

        /// The four-row dot (on hard-float Arm its assembly) is the plain `k`-order loop of
        /// each row, bit for bit.
        #[test]
        fn dot4_is_the_plain_loop(k in 0usize..300, extra in 0usize..3, seed in 0u64..1000) {
            let x = data(k, seed);
            let rows: Vec<Vec<f32>> = (0..4).map(|i| data(k + extra, seed + 1 + i)).collect();
            let got = super::dot4([&rows[0], &rows[1], &rows[2], &rows[3]], &x);
            let want: Vec<u32> = rows
                .iter()
                .map(|r| {
                    let mut a = 0.0f32;
                    for (w, v) in r.iter().zip(&x) {
                        a += w * v;
                    }
                    a.to_bits()
                })
                .collect();
            prop_assert_eq!(got.map(f32::to_bits).to_vec(), want);
        }

        /// The portable four-row dot (Cortex-M's Dense and patch Conv) against f64 sums.
        #[test]
        fn dot4_matches_f64(k in 0usize..300, extra in 0usize..3, seed in 0u64..1000) {
            let x = data(k, seed);
            let rows: Vec<Vec<f32>> = (0..4).map(|i| data(k + extra, seed + 1 + i)).collect();
            let got = super::dot4([&rows[0], &rows[1], &rows[2], &rows[3]], &x);
            let want: Vec<f64> = rows.iter().map(|r| r.iter().zip(&x).map(|(a, b)| *a as f64 * *b as f64).sum()).collect();
            let scale: Vec<f64> = rows.iter().map(|r| r.iter().zip(&x).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum()).collect();
            assert_close_scaled(&got, &want, &scale, 1e-5);
        }
    }

    #[test]
    fn clip_activation_and_rank1_input() {
        let x = [1.0f32, 2.0, 3.0];
        let w = [1.0f32, 1.0, 1.0, -1.0, 0.0, 0.0, 0.5, 0.5, 0.5];
        let b = [0.0f32, 0.5, 0.0];
        let op = Op::Dense { act: Activation::Clip { min: 0.0, max: 5.0 } };
        let (y, s) = run(&op, &[(&x, &[3]), (&w, &[3, 3]), (&b, &[3])]).unwrap();
        assert_eq!(s, sh(&[3]));
        assert_eq!(y, [5.0, 0.0, 3.0]);
    }
}
