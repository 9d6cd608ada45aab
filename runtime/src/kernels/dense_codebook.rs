//! Dense (fully connected) with a codebook weight, decoded inside the loop: decode-and-dot
//! (kernel `DEFAULT`) or per-codeword sums (kernel `CODEBOOK_LUT`).

use super::dense::{self, dot};
#[cfg(target_arch = "x86_64")]
use super::x86::Codes;
use super::{chunk, Operand, CHUNK};
use crate::codebook::{fill_pairs4, Codebook, Pairs4, Parts, Table, TABLE_LEN};
use crate::op::{Activation, OpError};
use crate::shape::Shape;

/// Rows of the problem: `rows` input rows of `k` values, `n` outputs per row.
#[derive(Clone, Copy)]
struct Dims {
    rows: usize,
    k: usize,
    n: usize,
}

/// Dense layer with weight `w` (`[N, K]`); inputs `x [.., K], w[, bias [N]]` validated by
/// `execute`. `lut` picks [`f32_codebook_lut_gemv`], else [`f32_codebook_gemv`]. A window of a
/// constant runs the dense kernel, which reads the weight element-wise.
pub(super) fn dense_codebook(
    act: Activation,
    lut: bool,
    inputs: &[Operand<'_>],
    w: &Codebook<'_>,
    out: &mut [f32],
    y: &Shape,
) -> Result<(), OpError> {
    let d = Dims { rows: y.prod(0, y.rank().saturating_sub(1)), k: inputs[1].shape.dim(1), n: inputs[1].shape.dim(0) };
    if !(w.is_whole() && w.dims() == (d.n, d.k)) {
        return dense::dense(act, inputs, out, y);
    }
    if d.n == 0 {
        return Ok(());
    }
    // The header read once for the whole call (a few ns each time: a 64 × 12 layer's whole
    // multiply-add work is about 50).
    let p = w.parts();
    super::bias_rows(inputs.get(2), d.n, out);
    if lut {
        f32_codebook_lut_gemv(d, 1 << p.bits(), &inputs[0], w, out)?;
    } else if simd_gemv(d, &p, &inputs[0], w, out)? {
    } else {
        f32_codebook_gemv(d, &inputs[0], w, out)?;
    }
    if act != Activation::None {
        act.apply_all(out);
    }
    Ok(())
}

/// Calls `visit(row, group)` for rows `0..n`: group by group within blocks of [`GROUP_BLOCK`]
/// rows when there are a few groups (so each group's decode tables are built once per block),
/// else in order. Each row's packed group id is read once.
fn rows_by_group(w: &Codebook<'_>, n: usize, mut visit: impl FnMut(usize, usize) -> Result<(), OpError>) -> Result<(), OpError> {
    let groups = w.groups();
    let p = w.parts();
    if !(groups > 1 && groups <= 64) {
        return (0..n).try_for_each(|j| visit(j, p.group(j)));
    }
    let mut ids = [0u8; GROUP_BLOCK];
    let mut order = [0u16; GROUP_BLOCK];
    for r0 in (0..n).step_by(GROUP_BLOCK) {
        let len = GROUP_BLOCK.min(n - r0);
        // Counting sort of the block's rows by group (stable, so rows stay in order per group).
        let mut start = [0u16; 65];
        for (i, id) in ids[..len].iter_mut().enumerate() {
            *id = p.group(r0 + i).min(63) as u8;
            start[*id as usize + 1] += 1;
        }
        for g in 0..64 {
            start[g + 1] += start[g];
        }
        let mut next = start;
        for (i, &id) in ids[..len].iter().enumerate() {
            order[next[id as usize] as usize] = i as u16;
            next[id as usize] += 1;
        }
        for &i in &order[..len] {
            visit(r0 + i as usize, ids[i as usize] as usize)?;
        }
    }
    Ok(())
}

/// Inputs per chunk that [`wide_gemv`] splits by parity on the stack (4 KiB; even).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const SPLIT_CODES: usize = 1024;

/// Rows whose group ids [`rows_by_group`] reads at a time.
const GROUP_BLOCK: usize = 256;

/// Decode and dot: each output row's weights are decoded a chunk at a time into a stack buffer
/// (once, whatever the number of input rows), then dotted with each input row's chunk; the same
/// sums, in the same order, as the dense kernel on the decoded weights.
fn f32_codebook_gemv(d: Dims, x: &Operand<'_>, w: &Codebook<'_>, out: &mut [f32]) -> Result<(), OpError> {
    let mut table = Table::new();
    let mut wbuf = [0.0f32; CHUNK];
    let mut xbuf = [0.0f32; CHUNK];
    rows_by_group(w, d.n, |j, _| {
        let mut k0 = 0;
        while k0 < d.k {
            let len = CHUNK.min(d.k - k0);
            let wc = &mut wbuf[..len];
            table.decode(w, j, k0, wc);
            for r in 0..d.rows {
                let xc = chunk(x.view, r * d.k + k0, len, &mut xbuf);
                *out.get_mut(r * d.n + j).ok_or(OpError::ShapeMismatch)? += dot(wc, xc);
            }
            k0 += len;
        }
        Ok(())
    })?;
    Ok(())
}

/// Fused decode-and-dot for 2-, 4- and 8-bit indices and native f32 inputs: each row's codes go
/// straight into the dot product through its group's codebook (AVX2 + FMA on x86-64 when the
/// CPU has them, [`dot_codes_scalar`] elsewhere); false when it does not apply. Sums in another
/// order than the dense kernel, so it agrees with it on the decoded weights to rounding, not bit
/// for bit.
fn simd_gemv(d: Dims, p: &Parts<'_>, x: &Operand<'_>, w: &Codebook<'_>, out: &mut [f32]) -> Result<bool, OpError> {
    let bits = p.bits();
    let Some(xs) = x.view.as_f32() else { return Ok(false) };
    if !matches!(bits, 2 | 4 | 8) {
        return Ok(false);
    }
    #[cfg(target_arch = "x86_64")]
    let simd = super::x86::Codes::detect();
    #[cfg(target_arch = "x86_64")]
    if let (Some(c), 4) = (simd, bits) {
        // Where it does not apply (more than 16 groups; or a partial payload, never after
        // parsing) the loops below run instead: it checks before it writes.
        if c.wide() && wide_gemv(c, d, xs, p, out)? {
            return Ok(true);
        }
        if !c.wide() && planes_gemv(c, d, xs, p, out)? {
            return Ok(true);
        }
    }
    // The table reloaded when the group changes.
    // aarch64, at most 16 groups: every row through its group's byte planes, rows in order
    // (`neon::Books4::gemv`); the loops below take more groups.
    #[cfg(target_arch = "aarch64")]
    if let Some(books) = super::gemm::neon().filter(|_| bits == 4).and_then(|n| n.books4(p)) {
        for r in 0..d.rows {
            let xr = xs.get(r * d.k..(r + 1) * d.k).ok_or(OpError::ShapeMismatch)?;
            let or = out.get_mut(r * d.n..(r + 1) * d.n).ok_or(OpError::ShapeMismatch)?;
            if !books.gemv(p, xr, or) {
                return Err(OpError::ShapeMismatch);
            }
        }
        return Ok(true);
    }
    let mut t = [0.0f32; TABLE_LEN];
    let mut loaded = None;
    // The dot product of one row, AVX2 where detected, else the portable fused loop.
    let one = |bits: usize, t: &[f32; TABLE_LEN], row: &[u8], x: &[f32]| {
        #[cfg(target_arch = "x86_64")]
        if let Some(c) = simd {
            return c.dot(bits, t, row, x);
        }
        dot_codes_scalar(bits, t, row, x)
    };
    // 4-bit (x86-64 without AVX-512, and every other target): rows of the same group go four at
    // a time, each input loaded once for the four (on aarch64 through the NEON byte-plane
    // decoder, `Neon::dot_codes4`).
    if bits == 4 {
        // The pair table of the loaded group for the portable loops (`paired`: the group it
        // was built for), built when the group's first rows run, where the inputs per row carry
        // enough work to pay for it.
        let mut pairs: Pairs4 = [[0.0; 2]; 256];
        let mut paired: Option<usize> = None;
        #[cfg(target_arch = "x86_64")]
        let portable = simd.is_none();
        // NEON: the rows' codes through the group's byte planes (built with its first rows).
        #[cfg(target_arch = "aarch64")]
        let neon = super::gemm::neon();
        #[cfg(target_arch = "aarch64")]
        let mut planes: Option<(usize, super::neon::Planes4)> = None;
        #[cfg(target_arch = "aarch64")]
        let portable = neon.is_none();
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let portable = true;
        let use_pairs = PAIR_TABLES && portable && d.k.saturating_mul(d.rows) >= PAIR_MIN_K;
        let mut pend = [0usize; 4];
        let mut np = 0;
        let mut flush = |t: &[f32; TABLE_LEN], g: usize, pend: &[usize], out: &mut [f32]| -> Result<(), OpError> {
            #[cfg(target_arch = "aarch64")]
            if let Some(nk) = neon.filter(|_| !pend.is_empty()) {
                let pl = match planes {
                    Some((pg, pl)) if pg == g => pl,
                    _ => planes.insert((g, nk.planes4(t))).1,
                };
                let rows: [&[u8]; 4] = core::array::from_fn(|i| pend.get(i).map_or(&[][..], |&j| p.row(j)));
                for r in 0..d.rows {
                    let xr = xs.get(r * d.k..(r + 1) * d.k).ok_or(OpError::ShapeMismatch)?;
                    let v = match pend.len() {
                        1 => nk.dot_codes4(&pl, [rows[0]], xr).map(|[a]| [a, 0.0, 0.0, 0.0]),
                        2 => nk.dot_codes4(&pl, [rows[0], rows[1]], xr).map(|[a, b]| [a, b, 0.0, 0.0]),
                        3 => nk.dot_codes4(&pl, [rows[0], rows[1], rows[2]], xr).map(|[a, b, c]| [a, b, c, 0.0]),
                        _ => nk.dot_codes4(&pl, rows, xr),
                    };
                    // Rows shorter than the inputs (never after parsing) are a shape mismatch.
                    for (&j, v) in pend.iter().zip(v.ok_or(OpError::ShapeMismatch)?) {
                        *out.get_mut(r * d.n + j).ok_or(OpError::ShapeMismatch)? += v;
                    }
                }
                return Ok(());
            }
            if use_pairs && !pend.is_empty() && paired != Some(g) {
                fill_pairs4(t, &mut pairs);
                paired = Some(g);
            }
            for r in 0..d.rows {
                let xr = xs.get(r * d.k..(r + 1) * d.k).ok_or(OpError::ShapeMismatch)?;
                let mut v = [0.0f32; 4];
                if use_pairs {
                    let mut rows: [&[u8]; 4] = [&[]; 4];
                    for (r, &j) in rows.iter_mut().zip(pend) {
                        *r = p.row(j);
                    }
                    dot_pairs4_rows(&pairs, &rows[..pend.len()], xr, &mut v[..pend.len()]);
                } else if let [j0, j1, j2, j3] = *pend {
                    let rows = [p.row(j0), p.row(j1), p.row(j2), p.row(j3)];
                    #[cfg(target_arch = "x86_64")]
                    let wide = simd.and_then(|c| c.dot_rows4(4, t, rows, xr));
                    #[cfg(target_arch = "x86_64")]
                    {
                        v = wide.unwrap_or_else(|| dot_codes4_rows4(t, rows, xr));
                    }
                    #[cfg(not(target_arch = "x86_64"))]
                    {
                        v = dot_codes4_rows4(t, rows, xr);
                    }
                } else {
                    for (&j, v) in pend.iter().zip(v.iter_mut()) {
                        *v = one(4, t, p.row(j), xr);
                    }
                }
                for (&j, v) in pend.iter().zip(v) {
                    *out.get_mut(r * d.n + j).ok_or(OpError::ShapeMismatch)? += v;
                }
            }
            Ok(())
        };
        rows_by_group(w, d.n, |j, g| {
            if loaded != Some(g) {
                flush(&t, loaded.unwrap_or(g), &pend[..np], out)?;
                np = 0;
                p.load(g, &mut t);
                loaded = Some(g);
            }
            pend[np] = j;
            np += 1;
            if np == 4 {
                flush(&t, g, &pend, out)?;
                np = 0;
            }
            Ok(())
        })?;
        flush(&t, loaded.unwrap_or(0), &pend[..np], out)?;
        return Ok(true);
    }
    rows_by_group(w, d.n, |j, g| {
        if loaded != Some(g) {
            p.load(g, &mut t);
            loaded = Some(g);
        }
        let row = p.row(j);
        for r in 0..d.rows {
            let xr = xs.get(r * d.k..(r + 1) * d.k).ok_or(OpError::ShapeMismatch)?;
            *out.get_mut(r * d.n + j).ok_or(OpError::ShapeMismatch)? += one(bits, &t, row, xr);
        }
        Ok(())
    })?;
    Ok(true)
}

/// Calls `f(k0, x, out)` for every input row and chunk of at most [`SPLIT_CODES`] inputs
/// starting at `k0` (a multiple of SPLIT_CODES, so on a code byte): `x` the chunk's inputs and
/// `out` the row's outputs. False from `f` is a payload that does not hold every row's codes
/// (never after parsing).
#[cfg(target_arch = "x86_64")]
fn for_chunks(d: Dims, xs: &[f32], out: &mut [f32], mut f: impl FnMut(usize, &[f32], &mut [f32]) -> bool) -> Result<(), OpError> {
    for r in 0..d.rows {
        let outr = out.get_mut(r * d.n..(r + 1) * d.n).ok_or(OpError::ShapeMismatch)?;
        for k0 in (0..d.k).step_by(SPLIT_CODES) {
            let len = SPLIT_CODES.min(d.k - k0);
            let xr = xs.get(r * d.k + k0..r * d.k + k0 + len).ok_or(OpError::ShapeMismatch)?;
            if !f(k0, xr, outr) {
                return Err(OpError::ShapeMismatch);
            }
        }
    }
    Ok(())
}

/// The AVX-512 4-bit kernel: per input row and per chunk of [`SPLIT_CODES`] inputs (split by
/// parity on the stack once for every output row), [`Codes::gemv4_split`] adds the chunk's
/// sums to the outputs. False, before writing, with more than 16 groups, or when `w` does not
/// hold every row's codes (never after parsing).
#[cfg(target_arch = "x86_64")]
fn wide_gemv(c: Codes, d: Dims, xs: &[f32], p: &Parts<'_>, out: &mut [f32]) -> Result<bool, OpError> {
    if p.groups() > 16 || p.stride() < d.k.div_ceil(2) || p.indices().len() < d.n.saturating_mul(p.stride()) {
        return Ok(false);
    }
    // Rows of at most 16 codes: one register a row, sixteen rows reduced together.
    if d.k <= 16 {
        for r in 0..d.rows {
            let xr = xs.get(r * d.k..(r + 1) * d.k).ok_or(OpError::ShapeMismatch)?;
            let outr = out.get_mut(r * d.n..(r + 1) * d.n).ok_or(OpError::ShapeMismatch)?;
            if !c.gemv4_short(p, xr, outr) {
                return Err(OpError::ShapeMismatch);
            }
        }
        return Ok(true);
    }
    // The split inputs go to stack memory nobody clears (a 4 KiB clear per call was 4 % of a
    // 144-wide 4-bit model's time; `split_parity` writes every float it returns).
    use core::mem::MaybeUninit;
    let mut split = |xe: &mut [MaybeUninit<f32>], xo: &mut [MaybeUninit<f32>]| {
        for_chunks(d, xs, out, |k0, xr, outr| c.split_parity(xr, xe, xo).is_some_and(|(xe, xo)| c.gemv4_split(p, k0 / 2, xr, xe, xo, outr)))
    };
    const SMALL: usize = 128;
    if d.k <= 2 * SMALL {
        split(&mut [MaybeUninit::uninit(); SMALL], &mut [MaybeUninit::uninit(); SMALL])?;
    } else {
        split(&mut [MaybeUninit::uninit(); SPLIT_CODES / 2], &mut [MaybeUninit::uninit(); SPLIT_CODES / 2])?;
    }
    Ok(true)
}

/// The AVX2 4-bit kernel: per input row and chunk of [`SPLIT_CODES`] inputs (permuted once into
/// [`super::x86::permute_planes`] order on the stack for every output row),
/// [`Codes::gemv4_planes`] adds the chunk's sums to the outputs. False, before writing, with
/// more than [`super::x86::PLANE_GROUPS`] groups, or when `w` does not hold every row's codes
/// (never after parsing).
#[cfg(target_arch = "x86_64")]
fn planes_gemv(c: Codes, d: Dims, xs: &[f32], p: &Parts<'_>, out: &mut [f32]) -> Result<bool, OpError> {
    use super::x86::{permute_planes, PLANE_BLOCK};
    use core::mem::MaybeUninit;
    const _: () = assert!(SPLIT_CODES.is_multiple_of(PLANE_BLOCK));
    if p.stride() < d.k.div_ceil(2) || p.indices().len() < d.n.saturating_mul(p.stride()) {
        return Ok(false);
    }
    let Some(books) = c.plane_books(p) else { return Ok(false) };
    // Rows of 1–16 codes: eight rows a pass, their sums reduced together.
    if (1..=16).contains(&d.k) {
        for r in 0..d.rows {
            let xr = xs.get(r * d.k..(r + 1) * d.k).ok_or(OpError::ShapeMismatch)?;
            let outr = out.get_mut(r * d.n..(r + 1) * d.n).ok_or(OpError::ShapeMismatch)?;
            if !c.gemv4_short_planes(&books, p, xr, outr) {
                return Err(OpError::ShapeMismatch);
            }
        }
        return Ok(true);
    }
    let mut xp = [MaybeUninit::<f32>::uninit(); SPLIT_CODES];
    for_chunks(d, xs, out, |k0, xr, outr| {
        let xp = permute_planes(xr, &mut xp);
        c.gemv4_planes(&books, p, k0 / 2, xp, xr.len(), outr)
    })?;
    Ok(true)
}

/// Σ_j table[code_j] · x[j] over `j < x.len()` for the packed `bits`-bit row `row` (2, 4 or 8;
/// codes whose bytes are missing count as 0), a byte of codes at a time with one accumulator per
/// code position in the byte (no unpacking buffer; the `u8`-indexed table needs no bounds checks).
pub(crate) fn dot_codes_scalar(bits: usize, table: &[f32; TABLE_LEN], row: &[u8], x: &[f32]) -> f32 {
    let per = 8 / bits.clamp(1, 8);
    let mask = (1usize << bits.min(8)) - 1;
    let whole = (x.len() / per).min(row.len());
    let mut acc = [0.0f32; 4];
    match per {
        1 => {
            for (&b, &xv) in row.iter().zip(x.iter()).take(whole) {
                acc[0] += table[b as usize] * xv;
            }
        }
        2 => {
            for (&b, xs) in row.iter().zip(x.chunks_exact(2)).take(whole) {
                acc[0] += table[(b & 15) as usize] * xs[0];
                acc[1] += table[(b >> 4) as usize] * xs[1];
            }
        }
        _ => {
            for (&b, xs) in row.iter().zip(x.chunks_exact(4)).take(whole) {
                acc[0] += table[(b & 3) as usize] * xs[0];
                acc[1] += table[((b >> 2) & 3) as usize] * xs[1];
                acc[2] += table[((b >> 4) & 3) as usize] * xs[2];
                acc[3] += table[(b >> 6) as usize] * xs[3];
            }
        }
    }
    let mut tail = 0.0;
    for (j, &xv) in x.iter().enumerate().skip(whole * per) {
        let code = row.get(j * bits / 8).map_or(0, |&b| (b as usize >> (j * bits % 8)) & mask);
        tail += table[code] * xv;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// [`dot_codes_scalar`] of four 4-bit rows through one table with the same `x`, each input pair
/// loaded once for two rows (register blocking for scalar FPUs such as the Cortex-M4F's); each
/// row sums in `k` order. Codes whose bytes are missing count as 0.
pub(crate) fn dot_codes4_rows4(table: &[f32; TABLE_LEN], rows: [&[u8]; 4], x: &[f32]) -> [f32; 4] {
    let whole = rows.iter().fold(x.len() / 2, |n, r| n.min(r.len()));
    let mut acc = [0.0f32; 4];
    // Two rows per pass: four rows at once would not fit the Cortex-M4's 13 general registers
    // (the table base and row pointers spill to the stack).
    for (a, r) in acc.chunks_exact_mut(2).zip(rows.chunks_exact(2)) {
        let (r0, r1) = (&r[0][..whole], &r[1][..whole]);
        let (mut a0, mut a1) = (0.0f32, 0.0f32);
        // Eight codes per 32-bit word: each code is one shift-and-mask of the word.
        let (x8, w0, w1) = (x.chunks_exact(8), r0.chunks_exact(4), r1.chunks_exact(4));
        let done = 8 * w0.len();
        for ((xs, w0), w1) in x8.zip(w0).zip(w1) {
            let (c0, c1) = (u32::from_le_bytes([w0[0], w0[1], w0[2], w0[3]]), u32::from_le_bytes([w1[0], w1[1], w1[2], w1[3]]));
            for (i, &xv) in xs.iter().enumerate() {
                a0 += table[((c0 >> (4 * i)) & 15) as usize] * xv;
                a1 += table[((c1 >> (4 * i)) & 15) as usize] * xv;
            }
        }
        for ((xs, &b0), &b1) in x[done..].chunks_exact(2).zip(&r0[done / 2..]).zip(&r1[done / 2..]) {
            let (x0, x1) = (xs[0], xs[1]);
            a0 += table[(b0 & 15) as usize] * x0;
            a1 += table[(b1 & 15) as usize] * x0;
            a0 += table[(b0 >> 4) as usize] * x1;
            a1 += table[(b1 >> 4) as usize] * x1;
        }
        (a[0], a[1]) = (a0, a1);
    }
    for (a, row) in acc.iter_mut().zip(rows) {
        for (j, &xv) in x.iter().enumerate().skip(2 * whole) {
            let code = row.get(j / 2).map_or(0, |&b| (b as usize >> (j % 2 * 4)) & 15);
            *a += table[code] * xv;
        }
    }
    acc
}

/// [`dot_codes4_rows4`] for the rows `rows` (at most 4; `out[i]` gets row `i`'s sum) through
/// the pair table of the same codebook ([`fill_pairs4`]): one lookup per code byte instead of
/// one per code, four rows in one pass (each input loaded once for them; Cortex-M4F,
/// hello_edge_dnn at 4 bits: 6.60 → 6.44 instructions per MAC), else two per pass (an odd last
/// row alone). Each row's sum is
/// [`dot_codes4_rows4`]'s, bit for bit (in `k` order, multiply then add). Not inlined: one copy
/// serves every row count (flash on microcontrollers).
#[inline(never)]
pub(crate) fn dot_pairs4_rows(pairs: &Pairs4, rows: &[&[u8]], x: &[f32], out: &mut [f32]) {
    let whole = rows.iter().fold(x.len() / 2, |n, r| n.min(r.len()));
    if let ([a0, a1, a2, a3], [r0, r1, r2, r3]) = (&mut *out, rows) {
        [*a0, *a1, *a2, *a3] = pairs_rows4(pairs, [&r0[..whole], &r1[..whole], &r2[..whole], &r3[..whole]], &x[..2 * whole]);
    }
    for (a, r) in out.chunks_mut(2).zip(rows.chunks(2)).filter(|_| rows.len() != 4) {
        match (a, r) {
            ([a0, a1], [r0, r1]) => (*a0, *a1) = pairs_rows2(pairs, &r0[..whole], &r1[..whole], &x[..2 * whole]),
            ([a0, ..], [r0, ..]) => *a0 = pairs_row(pairs, &r0[..whole], &x[..2 * whole]),
            _ => {}
        }
    }
    for (a, row) in out.iter_mut().zip(rows) {
        for (j, &xv) in x.iter().enumerate().skip(2 * whole) {
            let pair = row.get(j / 2).map_or(pairs[0], |&b| pairs[b as usize]);
            *a += pair[j % 2] * xv;
        }
    }
}

/// The sums of two rows of code bytes over `x` (two inputs per byte), each in `k` order. Not
/// inlined: one copy serves every row count (flash on microcontrollers).
#[inline(never)]
fn pairs_rows2(pairs: &Pairs4, r0: &[u8], r1: &[u8], x: &[f32]) -> (f32, f32) {
    let (mut a0, mut a1) = (0.0f32, 0.0f32);
    for ((xs, &b0), &b1) in x.chunks_exact(2).zip(r0).zip(r1) {
        let (w0, w1) = (pairs[b0 as usize], pairs[b1 as usize]);
        a0 += w0[0] * xs[0];
        a1 += w1[0] * xs[0];
        a0 += w0[1] * xs[1];
        a1 += w1[1] * xs[1];
    }
    (a0, a1)
}

/// [`pairs_rows2`] for four rows: each input pair loaded once for the four.
#[inline(never)]
fn pairs_rows4(pairs: &Pairs4, r: [&[u8]; 4], x: &[f32]) -> [f32; 4] {
    let mut a = [0.0f32; 4];
    for ((((xs, &b0), &b1), &b2), &b3) in x.chunks_exact(2).zip(r[0]).zip(r[1]).zip(r[2]).zip(r[3]) {
        let w = [pairs[b0 as usize], pairs[b1 as usize], pairs[b2 as usize], pairs[b3 as usize]];
        for (a, w) in a.iter_mut().zip(&w) {
            *a += w[0] * xs[0];
        }
        for (a, w) in a.iter_mut().zip(&w) {
            *a += w[1] * xs[1];
        }
    }
    a
}

/// [`pairs_rows2`] for one row.
#[inline(never)]
fn pairs_row(pairs: &Pairs4, r0: &[u8], x: &[f32]) -> f32 {
    let mut a0 = 0.0f32;
    for (xs, &b0) in x.chunks_exact(2).zip(r0) {
        let w0 = pairs[b0 as usize];
        a0 += w0[0] * xs[0];
        a0 += w0[1] * xs[1];
    }
    a0
}

/// Whether the portable 4-bit Dense loop reads weights through a pair table ([`Pairs4`]) where
/// a group's rows carry enough work: everywhere but soft-float bare-metal targets (Cortex-M0,
/// where each multiply-add is a library call and the table's 2 KiB of stack buys little).
const PAIR_TABLES: bool = !(cfg!(target_os = "none") && cfg!(target_abi = "eabi"));

/// Inputs per row (times input rows) from which a group's pair table pays for its 256 entries.
const PAIR_MIN_K: usize = 128;

/// Per-codeword sums: for each output row, the inputs are summed per codeword index (`q`
/// partial sums, `q = 2^bits`), then `q` products with the row's codebook give the output: `q`
/// multiplies per output instead of `k`. The partial sums of up to `TABLE_LEN / q` input rows
/// share one stack buffer, so each chunk of indices is unpacked once for all of them.
fn f32_codebook_lut_gemv(d: Dims, q: usize, x: &Operand<'_>, w: &Codebook<'_>, out: &mut [f32]) -> Result<(), OpError> {
    if !(1..=TABLE_LEN).contains(&q) {
        return Err(OpError::ShapeMismatch);
    }
    let tile = TABLE_LEN / q;
    let mut table = Table::new();
    let mut sums = [0.0f32; TABLE_LEN];
    let mut codes = [0u8; CHUNK];
    let mut xbuf = [0.0f32; CHUNK];
    for j in 0..d.n {
        let t = table.of_row(w, j);
        let mut r0 = 0;
        while r0 < d.rows {
            let nr = tile.min(d.rows - r0);
            let acc = &mut sums[..nr * q];
            acc.fill(0.0);
            let mut k0 = 0;
            while k0 < d.k {
                let len = CHUNK.min(d.k - k0);
                let cs = &mut codes[..len];
                w.row_codes(j, k0, cs);
                for (i, s) in acc.chunks_exact_mut(q).enumerate() {
                    let xc = chunk(x.view, (r0 + i) * d.k + k0, len, &mut xbuf);
                    for (&c, &xv) in cs.iter().zip(xc) {
                        if let Some(v) = s.get_mut(c as usize) {
                            *v += xv;
                        }
                    }
                }
                k0 += len;
            }
            for (i, s) in acc.chunks_exact(q).enumerate() {
                *out.get_mut((r0 + i) * d.n + j).ok_or(OpError::ShapeMismatch)? += dot(s, &t[..q]);
            }
            r0 += nr;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{execute_in, execute_kernel_in, ops_mask, Operand, ALL_OPS, BINARY_BITS, CODEBOOK_BIT, SPARSE_BIT, UNARY_BITS};
    use crate::codebook::{Codebook, TABLE_LEN};
    use crate::format::kernel;
    use crate::op::{kind, Activation, BinaryKind, Op, OpError};
    use crate::view::View;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(500)))]
        /// The portable fused loop against the definition: every width, any length (ragged
        /// tails), rows shorter than the input (missing codes are 0).
        #[test]
        fn scalar_fused_dot_matches_the_definition(bits in prop_oneof![Just(2usize), Just(4), Just(8)], n in 0usize..100,
                                                   short in 0usize..3, seed in any::<u64>()) {
            let mut s = seed | 1;
            let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
            let mut table = [0.0f32; TABLE_LEN];
            for v in table.iter_mut().take(1 << bits) {
                *v = (next() % 2001) as f32 / 1000.0 - 1.0;
            }
            let row: Vec<u8> = (0..(n * bits).div_ceil(8).saturating_sub(short)).map(|_| next() as u8).collect();
            let x: Vec<f32> = (0..n).map(|_| (next() % 2001) as f32 / 1000.0 - 1.0).collect();
            let want: f64 = (0..n)
                .map(|j| table[row.get(j * bits / 8).map_or(0, |&b| (b as usize >> (j * bits % 8)) & ((1 << bits) - 1))] as f64 * x[j] as f64)
                .sum();
            let got = super::dot_codes_scalar(bits, &table, &row, &x) as f64;
            prop_assert!((got - want).abs() <= 1e-5 * (1.0 + n as f64), "{got} vs {want}");
        }
    }

    /// Inputs longer than one parity-split chunk of the AVX-512 kernel (the chunks' sums add up),
    /// with 1 to 20 groups (more than 16 take the other loops), batched rows, both value types.
    #[test]
    fn long_rows_and_many_groups_match_naive() {
        for (k, n, groups, rows, f16_values) in
            [(2 * super::SPLIT_CODES + 37, 11, 3, 2, true), (super::SPLIT_CODES + 1, 9, 16, 1, false), (300, 19, 20, 2, true)]
        {
            let (payload, w) = quantized(n, k, 4, f16_values, groups, k as u64);
            let x = data(rows * k, 5);
            let b = data(n, 6);
            let want = naive_dense(&x, rows, k, &w, n, Some(&b), Activation::Relu);
            let abs = |v: &[f32]| v.iter().map(|v| v.abs()).collect::<Vec<_>>();
            let scale = naive_dense(&abs(&x), rows, k, &abs(&w), n, None, Activation::None);
            let cb = Codebook::parse(&payload, n, k).unwrap();
            let ops = [
                Operand { view: View::F32(&x), shape: sh(&[rows, k]) },
                Operand { view: View::Codebook(cb), shape: sh(&[n, k]) },
                Operand { view: View::F32(&b), shape: sh(&[n]) },
            ];
            let (got, _) = run_ops(&Op::Dense { act: Activation::Relu }, &ops).unwrap();
            assert_close_scaled(&got, &want, &scale, 1e-5);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(500)))]
        /// The portable four-row 4-bit loops (per code and per code byte) against the
        /// definition: any length (odd tails), rows of different lengths (missing codes are 0).
        #[test]
        fn four_row_loop_matches_the_definition(n in 0usize..100, short in proptest::collection::vec(0usize..3, 4), seed in any::<u64>()) {
            let mut s = seed | 1;
            let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
            let mut table = [0.0f32; TABLE_LEN];
            for v in table.iter_mut().take(16) {
                *v = (next() % 2001) as f32 / 1000.0 - 1.0;
            }
            let rows: Vec<Vec<u8>> = short.iter().map(|&sh| (0..n.div_ceil(2).saturating_sub(sh)).map(|_| next() as u8).collect()).collect();
            let x: Vec<f32> = (0..n).map(|_| (next() % 2001) as f32 / 1000.0 - 1.0).collect();
            let got = super::dot_codes4_rows4(&table, [&rows[0], &rows[1], &rows[2], &rows[3]], &x);
            // The pair-table loop: the same sums, bit for bit.
            let mut pairs = [[0.0f32; 2]; 256];
            crate::codebook::fill_pairs4(&table, &mut pairs);
            let rs: [&[u8]; 4] = [&rows[0], &rows[1], &rows[2], &rows[3]];
            // Four rows, and fewer (a group's last ones): each row's sum unchanged.
            for n in 1..=4 {
                let mut paired = [f32::NAN; 4];
                super::dot_pairs4_rows(&pairs, &rs[..n], &x, &mut paired[..n]);
                prop_assert_eq!(paired[..n].iter().map(|v| v.to_bits()).collect::<Vec<_>>(), got[..n].iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
            for (g, row) in got.iter().zip(&rows) {
                let want: f64 = (0..n).map(|j| table[row.get(j / 2).map_or(0, |&b| (b as usize >> (j % 2 * 4)) & 15)] as f64 * x[j] as f64).sum();
                prop_assert!((*g as f64 - want).abs() <= 1e-5 * (1.0 + n as f64), "{g} vs {want}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(300)))]
        #[test]
        fn matches_naive(lead in proptest::collection::vec(1usize..4, 0..3), k in 1usize..600, n in 1usize..12, bits in 1u8..=8,
                         f16_values in any::<bool>(), groups in 1usize..=4, bias in any::<bool>(), act in 0u8..3, seed in 0u64..1000) {
            let rows: usize = lead.iter().product();
            let mut xd = lead.clone();
            xd.push(k);
            let x = data(rows * k, seed + 2);
            let (payload, w) = quantized(n, k, bits, f16_values, groups, seed);
            let b = data(n, seed + 3);
            let act = ACTS[act as usize];
            let op = Op::Dense { act };
            let want = naive_dense(&x, rows, k, &w, n, bias.then_some(&b[..]), act);
            let abs = |v: &[f32]| v.iter().map(|v| v.abs()).collect::<Vec<_>>();
            let scale = naive_dense(&abs(&x), rows, k, &abs(&w), n, None, Activation::None);
            let unaligned = [&[0u8][..], &payload].concat();
            let x32 = f32le(&x);
            // The dense kernel on the decoded weights, for the exact comparison.
            let mut dense_ops = vec![Operand { view: View::F32(&x), shape: sh(&xd) }, Operand { view: View::F32(&w), shape: sh(&[n, k]) }];
            if bias {
                dense_ops.push(Operand { view: View::F32(&b), shape: sh(&[n]) });
            }
            let (dense, _) = run_ops(&op, &dense_ops).unwrap();
            for bytes in [&payload[..], &unaligned[1..]] {
                let cb = Codebook::parse(bytes, n, k).unwrap();
                for xv in [View::F32(&x), View::F32Le(&x32)] {
                    let mut ops = vec![Operand { view: xv, shape: sh(&xd) }, Operand { view: View::Codebook(cb), shape: sh(&[n, k]) }];
                    if bias {
                        ops.push(Operand { view: View::F32(&b), shape: sh(&[n]) });
                    }
                    let (got, y) = run_ops(&op, &ops).unwrap();
                    let mut yd = lead.clone();
                    yd.push(n);
                    prop_assert_eq!(y, sh(&yd));
                    assert_close_scaled(&got, &want, &scale, 1e-5);
                    // The same values up to summation order: SIMD lanes on either side, or the
                    // dense kernel's four rows in `k` order (`dense::dot4`) against `dot`'s four
                    // interleaved accumulators.
                    assert_close_scaled(&got, &dense.iter().map(|&v| v as f64).collect::<Vec<_>>(), &scale, 1e-5);
                    let mut lut = vec![f32::NAN; got.len()];
                    prop_assert_eq!(execute_kernel_in::<ALL_OPS>(&op, kernel::CODEBOOK_LUT, &ops, &mut lut, &y), Ok(()));
                    assert_close_scaled(&lut, &want, &scale, 2e-5);
                }
            }
        }
    }

    #[test]
    fn the_set_needs_the_codebook_bit_and_the_lut_needs_a_codebook_dense() {
        let x = data(3 * 10, 4);
        let (payload, w) = quantized(5, 10, 3, false, 2, 7);
        let cb = Codebook::parse(&payload, 5, 10).unwrap();
        let b = data(5, 5);
        let op = Op::Dense { act: Activation::Relu };
        let ops = [
            Operand { view: View::F32(&x), shape: sh(&[3, 10]) },
            Operand { view: View::Codebook(cb), shape: sh(&[5, 10]) },
            Operand { view: View::F32(&b), shape: sh(&[5]) },
        ];
        let (y, s) = run_ops(&op, &ops).unwrap();
        assert_close(&y, &naive_dense(&x, 3, 10, &w, 5, Some(&b), Activation::Relu), 1e-5);
        let mut out = vec![0.0; 15];
        const DENSE_ONLY: u128 = ops_mask(&[kind::DENSE]);
        for k in [kernel::DEFAULT, kernel::CODEBOOK_LUT] {
            assert_eq!(execute_kernel_in::<DENSE_ONLY>(&op, k, &ops, &mut out, &s), Err(OpError::UnknownKind(kind::DENSE)));
            assert_eq!(
                execute_kernel_in::<{ DENSE_ONLY | 1 << SPARSE_BIT }>(&op, k, &ops, &mut out, &s),
                Err(OpError::UnknownKind(kind::DENSE))
            );
            assert_eq!(out, [0.0; 15], "nothing written");
        }
        assert_eq!(execute_in::<{ DENSE_ONLY | 1 << CODEBOOK_BIT }>(&op, &ops, &mut out, &s), Ok(()));
        assert_eq!(out, y);
        assert_eq!(execute_kernel_in::<{ DENSE_ONLY | 1 << CODEBOOK_BIT }>(&op, kernel::CODEBOOK_LUT, &ops, &mut out, &s), Ok(()));
        assert_close(&out, &y.iter().map(|&v| v as f64).collect::<Vec<_>>(), 1e-5);
        // The LUT kernel on a dense weight, on another operator, or an unknown kernel code.
        let dense = [ops[0], Operand { view: View::F32(&w), ..ops[1] }, ops[2]];
        out.fill(0.0);
        assert_eq!(execute_kernel_in::<ALL_OPS>(&op, kernel::CODEBOOK_LUT, &dense, &mut out, &s), Err(OpError::BadAttribute));
        assert_eq!(execute_kernel_in::<ALL_OPS>(&op, 7, &ops, &mut out, &s), Err(OpError::BadAttribute));
        let relu = Op::Unary(crate::op::UnaryKind::Relu);
        let one = [ops[0]];
        let mut o30 = vec![0.0; 30];
        assert_eq!(execute_kernel_in::<ALL_OPS>(&relu, kernel::CODEBOOK_LUT, &one, &mut o30, &sh(&[3, 10])), Err(OpError::BadAttribute));
        assert_eq!(out, [0.0; 15], "nothing written");
    }

    #[test]
    fn no_function_bit_is_a_weight_kernel_bit() {
        let functions = ops_mask(&[kind::UNARY, kind::BINARY]);
        assert_eq!(functions & (1 << CODEBOOK_BIT | 1 << SPARSE_BIT), 0);
        assert_eq!(functions >> UNARY_BITS, (1 << (CODEBOOK_BIT - UNARY_BITS)) - 1);
        for k in [
            BinaryKind::Add,
            BinaryKind::Sub,
            BinaryKind::Mul,
            BinaryKind::Div,
            BinaryKind::PRelu,
            BinaryKind::Pow,
            BinaryKind::Max,
            BinaryKind::Min,
            BinaryKind::AddRelu,
        ] {
            assert!(Op::Binary(k).feature_bits() >> BINARY_BITS != 0);
            assert_eq!(Op::Binary(k).feature_bits() & (1 << CODEBOOK_BIT | 1 << SPARSE_BIT), 0);
        }
    }

    #[test]
    fn a_window_takes_the_generic_path() {
        let (n, k) = (6, 7);
        let (payload, w) = quantized(n, k, 5, true, 3, 11);
        let cb = Codebook::parse(&payload, n, k).unwrap();
        let x = data(k, 9);
        let op = Op::Dense { act: Activation::None };
        let want = naive_dense(&x, 1, k, &w, n, None, Activation::None);
        let win = View::Codebook(cb).slice(2 * k, 2 * k).unwrap();
        let ops = [Operand { view: View::F32(&x), shape: sh(&[k]) }, Operand { view: win, shape: sh(&[2, k]) }];
        let (got, y) = run_ops(&op, &ops).unwrap();
        assert_close(&got, &want[2..4], 1e-5);
        let mut lut = vec![0.0; 2];
        assert_eq!(execute_kernel_in::<ALL_OPS>(&op, kernel::CODEBOOK_LUT, &ops, &mut lut, &y), Ok(()));
        assert_close(&lut, &want[2..4], 1e-5);
    }
}
