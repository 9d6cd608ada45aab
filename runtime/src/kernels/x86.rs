//! x86-64 AVX2 + FMA inner loops. Each is a safe function that callers use only after
//! [`avx2_fma`] returned true; each keeps the plain loop it replaces as its reference (tests
//! compare them over random lengths, ragged tails included).
//!
//! Detection: at run time behind `std` (`is_x86_feature_detected!`, cached by std), at compile
//! time otherwise (`-C target-feature=+avx2,+fma`).
#![allow(unsafe_code)]

use super::depthwise::{Taps, MAX_TAPS, S2, TB};
use crate::codebook::Parts;
use crate::op::Activation;
use core::arch::x86_64::*;
use core::mem::MaybeUninit;

/// The two 8-entry halves of a 16-value codebook, the per-lane shifts that spread a 32-bit word
/// of 8 nibbles over 8 lanes, and the nibble mask: the set-up of every 4-bit loop.
macro_rules! nibble_setup {
    ($table:ident) => {{
        let t: &[f32; 256] = $table;
        // SAFETY (loads): the table has 256 values.
        let lo = unsafe { _mm256_loadu_ps(t.as_ptr()) };
        let hi = unsafe { _mm256_loadu_ps(t.as_ptr().add(8)) };
        (lo, hi, _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28), _mm256_set1_epi32(15))
    }};
}

/// Whether the AVX2 + FMA paths may run on this CPU.
#[inline]
pub(crate) fn avx2_fma() -> bool {
    #[cfg(all(target_feature = "avx2", target_feature = "fma"))]
    {
        true
    }
    #[cfg(all(feature = "std", not(all(target_feature = "avx2", target_feature = "fma"))))]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(all(not(feature = "std"), not(all(target_feature = "avx2", target_feature = "fma"))))]
    {
        false
    }
}

/// Σ_j table[code_j] · x[j] over `j < x.len()`, where `code_j` is the `bits`-bit index `j` of the
/// packed row `row` (least significant bit first) and `table` the row's codebook (entries past
/// `2^bits` unused). `bits` must be 2, 4 or 8; indices whose bytes are missing from `row` count
/// as 0. The sum is taken in 8 lanes (a different order from the scalar dot).
///
/// # Panics
/// When [`avx2_fma`] is false or `bits` is not 2, 4 or 8.
#[cfg(test)]
pub(crate) fn dot_codes(bits: usize, table: &[f32; 256], row: &[u8], x: &[f32]) -> f32 {
    assert!(avx2_fma(), "dot_codes: AVX2 + FMA");
    Codes { vl: avx512vl(), bw: false }.dot(bits, table, row, x)
}

/// Proof that AVX2 + FMA were detected (only [`Codes::detect`] makes one), with whether AVX-512
/// F + VL are there too: kernels detect once per call, not once per row.
#[derive(Clone, Copy)]
pub(crate) struct Codes {
    vl: bool,
    /// AVX-512 BW too (masked byte loads): the split 4-bit loop.
    bw: bool,
}

impl Codes {
    /// `Some` when the CPU has AVX2 and FMA.
    #[inline]
    pub(crate) fn detect() -> Option<Codes> {
        avx2_fma().then(|| Codes { vl: avx512vl(), bw: avx512vl() && avx512bw() })
    }

    /// [`dot_codes`] without detecting again.
    ///
    /// # Panics
    /// When `bits` is not 2, 4 or 8.
    #[inline]
    pub(crate) fn dot(self, bits: usize, table: &[f32; 256], row: &[u8], x: &[f32]) -> f32 {
        assert!(matches!(bits, 2 | 4 | 8), "dot_codes: 2, 4 or 8 bits");
        dot_codes_detected(self.vl, bits, table, row, x)
    }
}

impl Codes {
    /// [`Codes::dot`] of four 4-bit rows sharing one codebook with the same `x` (each input
    /// loaded once for the four rows); `None` for other widths.
    #[inline]
    pub(crate) fn dot_rows4(self, bits: usize, table: &[f32; 256], rows: [&[u8]; 4], x: &[f32]) -> Option<[f32; 4]> {
        if bits != 4 {
            return None;
        }
        let n = rows.iter().fold(x.len(), |n, r| n.min(r.len() * 2));
        // SAFETY: the CPU has AVX2 and FMA (a `Codes` exists only after detection), and AVX-512
        // F + VL when `vl`.
        let (mut sums, done) = unsafe {
            if self.vl {
                rows4_vl(table, rows, &x[..n])
            } else {
                rows4(table, rows, &x[..n])
            }
        };
        for (s, row) in sums.iter_mut().zip(rows) {
            for (j, &xv) in x.iter().enumerate().skip(done) {
                let code = row.get(j / 2).map_or(0, |&b| (b as usize >> (j % 2 * 4)) & 15);
                *s += table[code] * xv;
            }
        }
        Some(sums)
    }
}

/// Rows of one codebook that [`Codes::dot_rows_split`] sums at a time.
pub(crate) const SPLIT_ROWS: usize = 8;

impl Codes {
    /// Whether [`Codes::dot_rows_split`] runs (AVX-512 F, VL and BW).
    #[inline]
    pub(crate) fn wide(self) -> bool {
        self.vl && self.bw
    }

    /// [`Codes::dot`] of `books.len() ≤ SPLIT_ROWS` 4-bit rows with the same `x`: row `i` is
    /// `rows[i·stride ..][.. stride]` and goes through the codebook whose stored bytes are
    /// `books[i]` (16 f16 or f32 little-endian values, as `f16` says; missing values are 0.0).
    /// Takes `x` split by parity as well (`xe[i] = x[2i]`, `xo[i] = x[2i + 1]`). Entry `i` of
    /// the result belongs to row `i` (the rest are 0). `None` without AVX-512 F, VL and BW, with
    /// more than [`SPLIT_ROWS`] rows, or when `rows` is shorter than `books.len()` rows. (The
    /// tests' entry to the loop [`Codes::gemv4_split`] runs.)
    #[cfg(test)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dot_rows_split(
        self,
        books: &[&[u8]],
        f16: bool,
        rows: &[u8],
        stride: usize,
        x: &[f32],
        xe: &[f32],
        xo: &[f32],
    ) -> Option<[f32; SPLIT_ROWS]> {
        let nr = books.len();
        if !self.wide() || nr > SPLIT_ROWS || rows.len() < nr.saturating_mul(stride) {
            return None;
        }
        let n = x.len().min(2 * stride).min(2 * xe.len()).min(2 * xo.len());
        let mut sums = [0.0f32; SPLIT_ROWS];
        macro_rules! go {
            ($($r:literal)*) => {
                match nr {
                    // SAFETY: AVX-512 F, VL and BW detected; `n ≤ 2·stride` and
                    // `nr·stride ≤ rows.len()` bound the rows, `n ≤ 2·len` bounds `xe`, `xo`.
                    $($r => unsafe {
                        let tbl: [__m512; $r] = core::array::from_fn(|i| table16(books[i], f16));
                        _mm256_storeu_ps(sums.as_mut_ptr(), rows_split::<$r>(tbl, rows.as_ptr(), stride, xe.as_ptr(), xo.as_ptr(), n));
                    })*
                    _ => {}
                }
            };
        }
        go!(1 2 3 4 5 6 7 8);
        for (i, (s, book)) in sums.iter_mut().zip(books).enumerate() {
            let row = &rows[i * stride..(i + 1) * stride];
            for (j, &xv) in x.iter().enumerate().skip(n) {
                let code = row.get(j / 2).map_or(0, |&b| (b as usize >> (j % 2 * 4)) & 15);
                *s += crate::codebook::codeword(book, f16, code) * xv;
            }
        }
        Some(sums)
    }

    /// `x` split by parity into the first `⌈x.len()/2⌉` floats of `xe` and `xo` (`xe[i] =
    /// x[2i]`, `xo[i] = x[2i + 1]`, and 0.0 as `xo`'s last for an odd length), returned as those
    /// floats: the inputs [`Codes::gemv4_split`] takes. `xe` and `xo` may be memory never written.
    /// `None`, with nothing written, without AVX-512 F, VL and BW or when they are shorter.
    pub(crate) fn split_parity<'b>(
        self,
        x: &[f32],
        xe: &'b mut [MaybeUninit<f32>],
        xo: &'b mut [MaybeUninit<f32>],
    ) -> Option<(&'b [f32], &'b [f32])> {
        let h = x.len().div_ceil(2);
        if !self.wide() || xe.len() < h || xo.len() < h {
            return None;
        }
        let (e, o) = (xe.as_mut_ptr().cast::<f32>(), xo.as_mut_ptr().cast::<f32>());
        // SAFETY: AVX-512 F, VL and BW detected; `split_parity_core` reads `x.len()` floats and
        // writes the first `h` of `e` and `o` (checked above), every one of them, so the slices
        // made from them afterwards are initialized (`MaybeUninit<f32>` has `f32`'s layout).
        unsafe {
            split_parity_core(x.as_ptr(), x.len(), e, o);
            Some((core::slice::from_raw_parts(e, h), core::slice::from_raw_parts(o, h)))
        }
    }

    /// `out[j] += Σ_i codebook(group(j))[code(j, 2·b0 + i)] · x[i]` for every row `j <
    /// out.len()` of the 4-bit codebook `p` ([`SPLIT_ROWS`] rows at a time, each through its
    /// group's codebook held in a register), given `x` split by parity as well (as
    /// [`Codes::dot_rows_split`]). False, with `out` untouched, without AVX-512 F, VL and BW,
    /// for other widths, with more than 16 groups, or when `p` does not hold every row's codes
    /// `2·b0 .. 2·b0 + x.len()`.
    pub(crate) fn gemv4_split(self, p: &Parts<'_>, b0: usize, x: &[f32], xe: &[f32], xo: &[f32], out: &mut [f32]) -> bool {
        let (n, stride) = (x.len(), p.stride());
        if !self.wide()
            || p.bits() != 4
            || p.groups() > 16
            || n > 2 * xe.len().min(xo.len())
            || b0.checked_add(n.div_ceil(2)).is_none_or(|end| end > stride)
            || p.indices().len() < out.len().saturating_mul(stride)
        {
            return false;
        }
        // SAFETY: AVX-512 F, VL and BW detected; the checks above are `gemv4_split_core`'s.
        unsafe { gemv4_split_core(p, b0, xe, xo, n, out) };
        true
    }
}

impl Codes {
    /// `out[j] += Σ_i codebook(group(j))[code(j, i)] · x[i]` for every row `j < out.len()` of
    /// the 4-bit codebook `p`, for rows of at most 16 codes (`x.len() ≤ 16`): each row decoded
    /// into one register and multiplied by the inputs, then sixteen rows' products reduced
    /// together into one register of sums (45 shuffles and adds per 16 rows, where reducing
    /// each row alone takes 8 and the split kernel pays a pass of eight rows' reductions for
    /// every eight rows). Agrees with the definition to rounding (another summation order).
    /// False, with `out` untouched, without AVX-512 F, VL and BW, for other widths, more than
    /// 16 groups, more than 16 inputs, or when `p` does not hold every row's codes.
    pub(crate) fn gemv4_short(self, p: &Parts<'_>, x: &[f32], out: &mut [f32]) -> bool {
        let (n, stride) = (x.len(), p.stride());
        if !self.wide()
            || p.bits() != 4
            || p.groups() > 16
            || n > 16
            || stride < n.div_ceil(2)
            || p.indices().len() < out.len().saturating_mul(stride)
        {
            return false;
        }
        // SAFETY: AVX-512 F, VL and BW detected; the checks above are `gemv4_short_core`'s.
        unsafe { gemv4_short_core(p, x, out) };
        true
    }
}

/// Fills `cache` with the codebook registers of the 4-bit payload `p`'s stored groups (at most
/// 16) and the zero entry 16, in the caller's own frame (building them elsewhere and copying the
/// 1 KiB back cost more than a small layer's decode); returns how many groups it holds. Read it
/// through [`book_slot`], which names only written entries.
#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw")]
fn stored_books(p: &Parts<'_>, cache: &mut [MaybeUninit<__m512>; 17]) -> usize {
    let (books, f16) = (p.codebooks(), p.f16());
    let bl = if f16 { 32 } else { 64 };
    let ng = p.groups().min(16);
    for (g, t) in cache.iter_mut().enumerate().take(ng) {
        t.write(table16(books.get(g * bl..g * bl + bl).unwrap_or(&[]), f16));
    }
    cache[16].write(_mm512_setzero_ps());
    ng
}

/// The [`stored_books`] entry of row `j`: its group's, or the zero entry for a group past the
/// `ng` held (as `Parts::load` reads missing values).
#[inline(always)]
fn book_slot(p: &Parts<'_>, j: usize, ng: usize) -> usize {
    let g = p.group(j);
    if g < ng {
        g
    } else {
        16
    }
}

/// The loop of [`Codes::gemv4_short`]; the caller guarantees `x.len() ≤ 16`, `⌈x.len()/2⌉ ≤
/// stride`, `out.len()·stride ≤ indices.len()` and at most 16 groups.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw")]
unsafe fn gemv4_short_core(p: &Parts<'_>, x: &[f32], out: &mut [f32]) {
    let (n, stride, codes) = (x.len(), p.stride(), p.indices().as_ptr());
    let mut cache = [MaybeUninit::<__m512>::uninit(); 17];
    let ng = stored_books(p, &mut cache);
    let gid = |j: usize| book_slot(p, j, ng);
    let (inputs, bytes) = (((1u32 << n) - 1) as __mmask16, ((1u32 << n.div_ceil(2)) - 1) as __mmask16);
    let dup = _mm_set_epi8(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    let shifts = _mm512_set_epi32(4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0);
    // SAFETY: only the `n` inputs are read; row `j < out.len()` reads its first `⌈n/2⌉ ≤ stride`
    // bytes, inside `indices` (the caller's guarantees); lanes past `n` are zero in `xv`, so
    // their codes (whatever the masked-off bytes decode to: zero) add nothing.
    unsafe {
        let xv = _mm512_maskz_loadu_ps(inputs, x.as_ptr());
        let mut j0 = 0;
        while j0 < out.len() {
            let rows = (out.len() - j0).min(16);
            let mut prod = [_mm512_setzero_ps(); 16];
            for (r, v) in prod.iter_mut().enumerate().take(rows) {
                let j = j0 + r;
                let b = _mm_shuffle_epi8(_mm_maskz_loadu_epi8(bytes, codes.add(j * stride).cast()), dup);
                let w = _mm512_permutexvar_ps(_mm512_srlv_epi32(_mm512_cvtepu8_epi32(b), shifts), cache[gid(j)].assume_init());
                *v = _mm512_mul_ps(w, xv);
            }
            let sums = reduce16(prod);
            let m = ((1u32 << rows) - 1) as __mmask16;
            let o = out.as_mut_ptr().add(j0);
            _mm512_mask_storeu_ps(o, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), sums));
            j0 += 16;
        }
    }
}

/// Lane `i` of the result is the sum of the 16 lanes of `v[i]`: pairs of registers folded
/// into one at every level (128-bit blocks, then pairs and single lanes), the lanes put back
/// in row order by one permute at the end.
#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw")]
fn reduce16(v: [__m512; 16]) -> __m512 {
    // Level 1: lanes 0–7 hold 8 partial sums of `v[2i]`, lanes 8–15 of `v[2i + 1]`.
    let q: [__m512; 8] = core::array::from_fn(|i| {
        let (a, b) = (v[2 * i], v[2 * i + 1]);
        _mm512_add_ps(_mm512_shuffle_f32x4::<0b01_00_01_00>(a, b), _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b))
    });
    // Level 2: 128-bit block `c` of `r[j]` holds 4 partial sums of `v[4j + c]`.
    let r: [__m512; 4] = core::array::from_fn(|j| {
        let (a, b) = (q[2 * j], q[2 * j + 1]);
        _mm512_add_ps(_mm512_shuffle_f32x4::<0b10_00_10_00>(a, b), _mm512_shuffle_f32x4::<0b11_01_11_01>(a, b))
    });
    // Level 3: block `c` of `s[k]` holds 2 partial sums each of `v[8k + c]` and `v[8k + 4 + c]`,
    // interleaved.
    let s: [__m512; 2] = core::array::from_fn(|k| {
        let (a, b) = (r[2 * k], r[2 * k + 1]);
        _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b))
    });
    // Level 4: lane `m` of block `c` is the sum of `v[4m + c]`.
    let (a, b) = (_mm512_castps_pd(s[0]), _mm512_castps_pd(s[1]));
    let t = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    // Row `i` from lane `4·(i mod 4) + i div 4`.
    let fix = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    _mm512_permutexvar_ps(fix, t)
}

/// The loop of [`Codes::split_parity`]: reads the `n` floats at `x`, writes `⌈n/2⌉` at `e`
/// (even positions) and at `o` (odd ones, 0.0 past the last); the caller guarantees the bounds.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw")]
unsafe fn split_parity_core(x: *const f32, n: usize, e: *mut f32, o: *mut f32) {
    // SAFETY: 16 values.
    let even = unsafe { _mm512_loadu_si512(EVEN.as_ptr().cast()) };
    let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    let mut j = 0;
    // SAFETY: full blocks read `j .. j + 32 ≤ n` and write `j/2 .. j/2 + 16 ≤ ⌈n/2⌉`; the last
    // block reads only its lanes below `n` (the rest are zeros) and writes `⌈(n − j)/2⌉`.
    unsafe {
        while j + 32 <= n {
            let (a, c) = (_mm512_loadu_ps(x.add(j)), _mm512_loadu_ps(x.add(j + 16)));
            _mm512_storeu_ps(e.add(j / 2), _mm512_permutex2var_ps(a, even, c));
            _mm512_storeu_ps(o.add(j / 2), _mm512_permutex2var_ps(a, odd, c));
            j += 32;
        }
        if j < n {
            let rem = n - j;
            let read = if rem >= 32 { u32::MAX } else { (1u32 << rem) - 1 };
            let a = _mm512_maskz_loadu_ps(read as __mmask16, x.add(j));
            let c = _mm512_maskz_loadu_ps((read >> 16) as __mmask16, x.add(j).wrapping_add(16));
            let w = ((1u32 << rem.div_ceil(2)) - 1) as __mmask16;
            _mm512_mask_storeu_ps(e.add(j / 2), w, _mm512_permutex2var_ps(a, even, c));
            _mm512_mask_storeu_ps(o.add(j / 2), w, _mm512_permutex2var_ps(a, odd, c));
        }
    }
}

/// The codebooks of a 4-bit payload with at most 16 groups, converted once into registers
/// (only [`Codes::books4`] makes one, after AVX-512 F, VL and BW were detected). Not `Copy`:
/// it is 1 KiB, borrowed per decode.
pub(crate) struct Books4 {
    cache: [__m512; 17],
}

impl Codes {
    /// [`Books4`] of `p`: `None` without AVX-512 F, VL and BW, for other widths or with more
    /// than 16 groups.
    pub(crate) fn books4(self, p: &Parts<'_>) -> Option<Books4> {
        if !self.wide() || p.bits() != 4 || p.groups() > 16 {
            return None;
        }
        // SAFETY: AVX-512 F, VL and BW detected.
        Some(Books4 { cache: unsafe { books4_core(p) } })
    }
}

/// Every group's codebook in a register; entry 16 (and any group past the stored codebooks) is
/// zeros, as `Parts::load` reads missing values.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw")]
fn books4_core(p: &Parts<'_>) -> [__m512; 17] {
    let (books, f16) = (p.codebooks(), p.f16());
    let bl = if f16 { 32 } else { 64 };
    let mut cache = [_mm512_setzero_ps(); 17];
    for (g, t) in cache.iter_mut().enumerate().take(p.groups().min(16)) {
        *t = table16(books.get(g * bl..g * bl + bl).unwrap_or(&[]), f16);
    }
    cache
}

/// The rows `m0 ..` a decode of `len` floats, `kdim` a row, covers: `None` unless `len` is a
/// multiple of `kdim > 0` and each of those rows holds `kdim` codes inside the payload.
fn rows_fit(p: &Parts<'_>, m0: usize, kdim: usize, len: usize) -> Option<usize> {
    let (stride, rows) = (p.stride(), len / kdim.max(1));
    let fits = kdim > 0
        && len.is_multiple_of(kdim)
        && stride >= kdim.div_ceil(2)
        && m0.checked_add(rows).and_then(|e| e.checked_mul(stride)).is_some_and(|end| end <= p.indices().len());
    fits.then_some(rows)
}

impl Books4 {
    /// Writes rows `m0 ..` of `p` (the payload these books came from), the first `kdim` weights
    /// of each, to `buf`, `kdim` floats a row, as many rows as `buf` holds (`buf.len()` a
    /// multiple of `kdim`): the values [`Parts::decode`] gives, 16 per permute, with one check
    /// for the whole run. `buf` may be memory never written (a stack buffer nobody clears):
    /// every float of it is written, and it is returned as those floats. `None`, with `buf`
    /// untouched, when a row holds fewer than `kdim` codes or is missing.
    pub(crate) fn decode_rows<'b>(&self, p: &Parts<'_>, m0: usize, kdim: usize, buf: &'b mut [MaybeUninit<f32>]) -> Option<&'b mut [f32]> {
        rows_fit(p, m0, kdim, buf.len())?;
        let (out, len) = (buf.as_mut_ptr().cast::<f32>(), buf.len());
        // SAFETY: a `Books4` exists only after AVX-512 F, VL and BW were detected; each row's
        // `⌈kdim/2⌉ ≤ stride` bytes lie in `indices` (checked above); `decode_rows_core` writes
        // each of the `len` floats at `out` (every row's `kdim`: full blocks and the masked
        // tail), so the slice made from them afterwards is initialized (`MaybeUninit<f32>` has
        // `f32`'s layout).
        unsafe {
            decode_rows_core(&self.cache, p, m0, kdim, out, len);
            Some(core::slice::from_raw_parts_mut(out, len))
        }
    }

    /// The small-plane 1×1 Conv ([`Fma::im_1x1`]) on input-major 4-bit codes: `p` (the payload
    /// these books came from) holds `c` rows (inputs) of `m` codes (outputs), and each row's
    /// codes are decoded in registers (two permutes per 32 outputs) where the f32 kernel loads
    /// its weights, so nothing is decoded to memory; inputs zero at every position of a block
    /// are skipped before their codes are read. The same sums, bit for bit, as
    /// [`Fma::im_1x1`] on the decoded weights. False, with nothing written, when the slices or
    /// the plane do not fit (as [`super::gemm::im_fits`]) or a row holds fewer than `m` codes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn im_1x1(
        &self,
        p: &Parts<'_>,
        x: &[f32],
        hw: usize,
        c: usize,
        m: usize,
        bias: &[f32],
        act: Activation,
        out: &mut [f32],
    ) -> bool {
        let stride = p.stride();
        if !(1..=super::gemm::IM_PLANE).contains(&hw)
            || x.len() < c * hw
            || out.len() < m * hw
            || !(bias.is_empty() || bias.len() >= m)
            || stride < m.div_ceil(2)
            || c.checked_mul(stride).is_none_or(|end| end > p.indices().len())
            || m * hw >= i32::MAX as usize
        {
            return false;
        }
        let b = if bias.is_empty() { None } else { Some(bias.as_ptr()) };
        let mut p0 = 0;
        while p0 < hw {
            let np = IM_BLOCK.min(hw - p0);
            // SAFETY: AVX-512 F, VL and BW detected (a `Books4` exists); positions `p0 .. p0 + np`
            // lie inside every input and output plane, inputs below `c` and outputs below `m`
            // inside the slices, and each row's `⌈m/2⌉ ≤ stride` code bytes inside `indices`
            // (checked above); code, bias and output accesses past output `m` are masked off.
            unsafe {
                let (xp, op) = (x.as_ptr().add(p0), out.as_mut_ptr().add(p0));
                let k = (&self.cache, p, hw, c, m, b, act);
                match np {
                    12 => im_1x1_cb4::<12>(k, xp, op),
                    11 => im_1x1_cb4::<11>(k, xp, op),
                    10 => im_1x1_cb4::<10>(k, xp, op),
                    9 => im_1x1_cb4::<9>(k, xp, op),
                    8 => im_1x1_cb4::<8>(k, xp, op),
                    7 => im_1x1_cb4::<7>(k, xp, op),
                    6 => im_1x1_cb4::<6>(k, xp, op),
                    5 => im_1x1_cb4::<5>(k, xp, op),
                    4 => im_1x1_cb4::<4>(k, xp, op),
                    3 => im_1x1_cb4::<3>(k, xp, op),
                    2 => im_1x1_cb4::<2>(k, xp, op),
                    _ => im_1x1_cb4::<1>(k, xp, op),
                }
            }
            p0 += np;
        }
        true
    }

    /// Writes weights `k0 .. k0 + out.len()` of row `row` of `p` (the payload these books came
    /// from) to `out`: the values [`Parts::decode`] gives. False, with `out` untouched, for an odd
    /// `k0` or when the row holds fewer codes.
    #[inline]
    pub(crate) fn decode(&self, p: &Parts<'_>, row: usize, k0: usize, out: &mut [f32]) -> bool {
        let codes = p.row(row);
        if !k0.is_multiple_of(2) || codes.len() < (k0 + out.len()).div_ceil(2) {
            return false;
        }
        // SAFETY: a `Books4` exists only after AVX-512 F, VL and BW were detected; the row
        // holds bytes `k0/2 .. ⌈(k0 + out.len())/2⌉`.
        unsafe { decode4_core(self.cache[p.group(row).min(16)], &codes[k0 / 2..], out.as_mut_ptr(), out.len()) };
        true
    }
}

/// The 16 × 16 transpose: lane `j` of result `i` is lane `i` of `r[j]`.
#[inline]
#[target_feature(enable = "avx2,fma,avx512f")]
pub(super) fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    // Lanes of row pairs interleaved, then lane pairs: 128-bit block `q` of `t2[4k + s]` holds
    // lane `4q + s` of rows `4k .. 4k + 4`.
    let t1: [__m512; 16] = core::array::from_fn(|i| {
        let (a, b) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_ps(a, b)
        } else {
            _mm512_unpackhi_ps(a, b)
        }
    });
    let t2: [__m512; 16] = core::array::from_fn(|i| {
        let (k, s) = (i / 4, i % 4);
        let (a, b) = (_mm512_castps_pd(t1[4 * k + s / 2]), _mm512_castps_pd(t1[4 * k + 2 + s / 2]));
        _mm512_castpd_ps(if s % 2 == 0 { _mm512_unpacklo_pd(a, b) } else { _mm512_unpackhi_pd(a, b) })
    });
    // Result `4q + s` is block `q` of `t2[s]`, `t2[4 + s]`, `t2[8 + s]`, `t2[12 + s]`: blocks
    // (0, 2) and (1, 3) of each pair of row groups, then of the two pairs.
    let mut out = [_mm512_setzero_ps(); 16];
    for s in 0..4 {
        let lo: [__m512; 2] = core::array::from_fn(|k| _mm512_shuffle_f32x4::<0b10_00_10_00>(t2[8 * k + s], t2[8 * k + 4 + s]));
        let hi: [__m512; 2] = core::array::from_fn(|k| _mm512_shuffle_f32x4::<0b11_01_11_01>(t2[8 * k + s], t2[8 * k + 4 + s]));
        out[s] = _mm512_shuffle_f32x4::<0b10_00_10_00>(lo[0], lo[1]);
        out[8 + s] = _mm512_shuffle_f32x4::<0b11_01_11_01>(lo[0], lo[1]);
        out[4 + s] = _mm512_shuffle_f32x4::<0b10_00_10_00>(hi[0], hi[1]);
        out[12 + s] = _mm512_shuffle_f32x4::<0b11_01_11_01>(hi[0], hi[1]);
    }
    out
}

impl Codes {
    /// Writes the `m × c` weights of the 4-bit payload `p` (at most 16 groups, each row at least
    /// `c` codes) transposed to `out`, rows `mp` = `m` rounded up to whole blocks of 16 apart:
    /// `out[j·mp + i]` is row `i`'s weight `j`, the value [`Parts::decode`] gives (0.0 for `i ≥
    /// m`). Sixteen rows' codes at a time are decoded into registers and transposed there. `out`
    /// may be memory never written: its first `mp·c` floats are all written and returned.
    /// `None`, with `out` untouched, without AVX-512 F, VL and BW, for other widths or more
    /// groups, or when the shapes do not fit.
    pub(crate) fn decode_transposed4<'b>(
        self,
        p: &Parts<'_>,
        m: usize,
        c: usize,
        out: &'b mut [MaybeUninit<f32>],
    ) -> Option<&'b mut [f32]> {
        let len = m.div_ceil(16).checked_mul(16)?.checked_mul(c)?;
        if !self.wide()
            || p.bits() != 4
            || p.groups() > 16
            || m == 0
            || c == 0
            || out.len() < len
            || p.stride() < c.div_ceil(2)
            || m.checked_mul(p.stride()).is_none_or(|end| end > p.indices().len())
        {
            return None;
        }
        let o = out.as_mut_ptr().cast::<f32>();
        // SAFETY: AVX-512 F, VL and BW detected; rows below `m` hold `⌈c/2⌉` code bytes inside
        // `indices`; `decode_transposed_core` writes each of the `mp·c` floats at `o` once, so
        // the slice made from them is initialized.
        unsafe {
            decode_transposed_core(p, m, c, o);
            Some(core::slice::from_raw_parts_mut(o, len))
        }
    }

    /// [`Books4::decode_rows`] with the codebook registers built in the decode's own frame
    /// (making a [`Books4`] copies 1 KiB of them out and back, more than a depthwise layer's
    /// rows of 9 take to decode). `None`, with `buf` untouched, without AVX-512 F, VL and BW, for
    /// other widths or more than 16 groups, or when a row holds fewer than `kdim` codes or is
    /// missing.
    pub(crate) fn decode_rows4<'b>(self, p: &Parts<'_>, m0: usize, kdim: usize, buf: &'b mut [MaybeUninit<f32>]) -> Option<&'b mut [f32]> {
        if !self.wide() || p.bits() != 4 || p.groups() > 16 {
            return None;
        }
        rows_fit(p, m0, kdim, buf.len())?;
        let (out, len) = (buf.as_mut_ptr().cast::<f32>(), buf.len());
        // SAFETY: AVX-512 F, VL and BW detected; each row's `⌈kdim/2⌉ ≤ stride` bytes lie in
        // `indices` (checked above); every one of the `len` floats at `out` is written, so the
        // slice made from them is initialized.
        unsafe {
            decode_rows4_core(p, m0, kdim, out, len);
            Some(core::slice::from_raw_parts_mut(out, len))
        }
    }
}

/// The loop of [`Codes::decode_rows4`]: writes all `len` floats at `out` (`len` a multiple of
/// `kdim`), row `m0 + i` at `out + i·kdim`; the caller guarantees the rows' bytes.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw")]
unsafe fn decode_rows4_core(p: &Parts<'_>, m0: usize, kdim: usize, out: *mut f32, len: usize) {
    let mut cache = [MaybeUninit::<__m512>::uninit(); 17];
    let ng = stored_books(p, &mut cache);
    let (stride, codes) = (p.stride(), p.indices());
    for i in 0..len / kdim.max(1) {
        let at = (m0 + i) * stride;
        // SAFETY: `book_slot` names a written entry; the row's `⌈kdim/2⌉` bytes lie in `codes`
        // and floats `i·kdim .. (i + 1)·kdim` at `out` are writable (the caller's guarantees).
        unsafe {
            let tbl = cache[book_slot(p, m0 + i, ng)].assume_init();
            decode4_core(tbl, codes.get_unchecked(at..at + stride), out.add(i * kdim), kdim)
        };
    }
}

/// The loop of [`Codes::decode_transposed4`]; the caller guarantees its bounds.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw")]
unsafe fn decode_transposed_core(p: &Parts<'_>, m: usize, c: usize, out: *mut f32) {
    let (stride, codes, mp) = (p.stride(), p.indices().as_ptr(), m.div_ceil(16) * 16);
    let mut cache = [MaybeUninit::<__m512>::uninit(); 17];
    let ng = stored_books(p, &mut cache);
    // Lane i takes byte i / 2, shifted right by 4 for odd i (`vpermps` reads the low 4 bits).
    let dup = _mm_set_epi8(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    let shifts = _mm512_set_epi32(4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0);
    // SAFETY: rows `i0 + r < m` read bytes `j0/2 .. ⌈(j0 + nj)/2⌉ ≤ ⌈c/2⌉` of their codes
    // (masked; the others read none); writes rows `j0 .. j0 + nj` of `out`, columns `i0 .. i0 +
    // 16 ≤ mp`.
    unsafe {
        for i0 in (0..m).step_by(16) {
            // Rows past `m` read no codes: their weights are zeros.
            // `book_slot` and 16 name written entries.
            let tbl: [__m512; 16] = core::array::from_fn(|r| cache[if i0 + r < m { book_slot(p, i0 + r, ng) } else { 16 }].assume_init());
            let mut j0 = 0;
            while j0 < c {
                let nj = (c - j0).min(16);
                let bytes = ((1u32 << nj.div_ceil(2)) - 1) as __mmask16;
                // Whole blocks of rows without a test per row.
                let full = i0 + 16 <= m;
                let rows: [__m512; 16] = core::array::from_fn(|r| {
                    let bytes = if full || i0 + r < m { bytes } else { 0 };
                    let b = _mm_shuffle_epi8(_mm_maskz_loadu_epi8(bytes, codes.wrapping_add((i0 + r) * stride + j0 / 2).cast()), dup);
                    _mm512_permutexvar_ps(_mm512_srlv_epi32(_mm512_cvtepu8_epi32(b), shifts), tbl[r])
                });
                let t = transpose16(rows);
                // Whole blocks stored unrolled (a loop bounded at run time kept `t` in memory).
                if nj == 16 {
                    for (j, v) in t.iter().enumerate() {
                        _mm512_storeu_ps(out.add((j0 + j) * mp + i0), *v);
                    }
                } else {
                    for (j, v) in t.iter().enumerate().take(nj) {
                        _mm512_storeu_ps(out.add((j0 + j) * mp + i0), *v);
                    }
                }
                j0 += 16;
            }
        }
    }
}

/// The loop of [`Books4::decode_rows`], in one AVX-512 function so each row's decode inlines
/// (its checks are the caller's guarantees): writes all `len` floats at `out` (`len` a
/// multiple of `kdim`), row `m0 + i` at `out + i·kdim`.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw")]
unsafe fn decode_rows_core(cache: &[__m512; 17], p: &Parts<'_>, m0: usize, kdim: usize, out: *mut f32, len: usize) {
    let (stride, codes) = (p.stride(), p.indices());
    for i in 0..len / kdim.max(1) {
        let at = (m0 + i) * stride;
        // SAFETY: the row's `⌈kdim/2⌉` bytes lie in `codes` and floats `i·kdim ..
        // (i + 1)·kdim` at `out` are writable (the caller's guarantees).
        unsafe { decode4_core(cache[p.group(m0 + i).min(16)], codes.get_unchecked(at..at + stride), out.add(i * kdim), kdim) };
    }
}

/// Writes the first `n` weights of the 4-bit row `codes` through codebook `tbl` to the `n`
/// floats at `out` (each exactly once); the caller guarantees `⌈n/2⌉ ≤ codes.len()` and that
/// the `n` floats are writable.
#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw")]
unsafe fn decode4_core(tbl: __m512, codes: &[u8], out: *mut f32, n: usize) {
    // Lane i takes byte i / 2, shifted right by 4 for odd i (`vpermps` reads the low 4 bits).
    let dup = _mm_set_epi8(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    let shifts = _mm512_set_epi32(4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0);
    let mut j = 0;
    // SAFETY: full blocks read bytes `j/2 .. j/2 + 8 ≤ ⌈n/2⌉` and write `j .. j + 16 ≤ n`; the
    // last block reads and writes only its lanes below `n`.
    unsafe {
        while j + 16 <= n {
            let b = _mm_shuffle_epi8(_mm_loadl_epi64(codes.as_ptr().add(j / 2).cast()), dup);
            let v = _mm512_permutexvar_ps(_mm512_srlv_epi32(_mm512_cvtepu8_epi32(b), shifts), tbl);
            _mm512_storeu_ps(out.add(j), v);
            j += 16;
        }
        if j < n {
            let rem = n - j;
            let bytes = ((1u32 << rem.div_ceil(2)) - 1) as __mmask16;
            let b = _mm_shuffle_epi8(_mm_maskz_loadu_epi8(bytes, codes.as_ptr().add(j / 2).cast()), dup);
            let v = _mm512_permutexvar_ps(_mm512_srlv_epi32(_mm512_cvtepu8_epi32(b), shifts), tbl);
            _mm512_mask_storeu_ps(out.add(j), ((1u32 << rem) - 1) as __mmask16, v);
        }
    }
}

/// The loop of [`Codes::gemv4_split`]; the caller guarantees `b0 + ⌈n/2⌉ ≤ stride`,
/// `out.len()·stride ≤ indices.len()`, `n ≤ 2·len` for `xe` and `xo`, and at most 16 groups.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw")]
unsafe fn gemv4_split_core(p: &Parts<'_>, b0: usize, xe: &[f32], xo: &[f32], n: usize, out: &mut [f32]) {
    // The codebooks converted here (`books4_core` returned them through a cleared and copied
    // 1 KiB table); groups past the stored ones read zeros, as `Parts::load` does.
    let stride = p.stride();
    // Only the stored groups' entries and the zero entry 16 are written (a 1 KiB clear was a
    // tenth of a 64 × 12 layer's time); `gid` reads no other.
    let mut cache = [MaybeUninit::<__m512>::uninit(); 17];
    let ng = stored_books(p, &mut cache);
    // Registers are copied out of `cache` here, in this function's own loops: a closure
    // returning one (no AVX-512 of its own, so it returns it through memory) was left out of
    // line when the group lookup grew, 0.82 instead of 0.99 of dense f32 on 144-wide layers.
    let gid = |j: usize| book_slot(p, j, ng);
    // SAFETY: the rows `j0 ..` start inside `indices` (`j0 < out.len()`), and `rows_split`
    // reads at most `⌈n/2⌉` bytes past `b0` of each (see the caller's guarantees).
    unsafe {
        let base = p.indices().as_ptr().add(b0);
        let (xe, xo) = (xe.as_ptr(), xo.as_ptr());
        let mut chunks = out.chunks_exact_mut(SPLIT_ROWS);
        let mut j0 = 0;
        for o in &mut chunks {
            let mut tbl = [_mm512_setzero_ps(); SPLIT_ROWS];
            for (r, t) in tbl.iter_mut().enumerate() {
                // `gid` returns only entries written above.
                *t = cache[gid(j0 + r)].assume_init();
            }
            let s = rows_split::<SPLIT_ROWS>(tbl, base.add(j0 * stride), stride, xe, xo, n);
            _mm256_storeu_ps(o.as_mut_ptr(), _mm256_add_ps(_mm256_loadu_ps(o.as_ptr()), s));
            j0 += SPLIT_ROWS;
        }
        let rest = chunks.into_remainder();
        let mut sums = [0.0f32; SPLIT_ROWS];
        macro_rules! go {
            ($($r:literal)*) => {
                match rest.len() {
                    $($r => {
                        let mut tbl = [_mm512_setzero_ps(); $r];
                        for (r, t) in tbl.iter_mut().enumerate() {
                            // `gid` returns only entries written above.
                            *t = cache[gid(j0 + r)].assume_init();
                        }
                        _mm256_storeu_ps(sums.as_mut_ptr(), rows_split::<$r>(tbl, base.add(j0 * stride), stride, xe, xo, n));
                    })*
                    _ => {}
                }
            };
        }
        go!(1 2 3 4 5 6 7);
        for (o, s) in rest.iter_mut().zip(sums) {
            *o += s;
        }
    }
}

/// The 16 codewords of stored codebook bytes `cb` (f16 or f32 little-endian) in one register;
/// values past the bytes are 0.0 (masked lanes are not read). f16 values convert exactly.
#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw")]
fn table16(cb: &[u8], f16: bool) -> __m512 {
    if f16 {
        let m = (((1u32 << (cb.len() / 2).min(16)) - 1) & 0xffff) as __mmask16;
        // SAFETY: only the first `cb.len() / 2` halves are read.
        _mm512_cvtph_ps(unsafe { _mm256_maskz_loadu_epi16(m, cb.as_ptr().cast()) })
    } else {
        let m = (((1u32 << (cb.len() / 4).min(16)) - 1) & 0xffff) as __mmask16;
        // SAFETY: only the first `cb.len() / 4` values are read.
        unsafe { _mm512_maskz_loadu_ps(m, cb.as_ptr().cast()) }
    }
}

/// Sums over codes `0 .. n` of `R ≤ SPLIT_ROWS` 4-bit rows starting at `rows`, `stride` bytes
/// apart, row `r` through codebook `tbl[r]`; lane `r` of the result is row `r`'s sum (lanes
/// from `R` on are 0). The last partial block of 32 codes is masked (at most 16 codes: in
/// 256-bit halves). The caller guarantees that
/// `⌈n/2⌉` bytes of each row and `⌈n/2⌉` values of `xe` and `xo` are readable.
#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw")]
unsafe fn rows_split<const R: usize>(tbl: [__m512; R], rows: *const u8, stride: usize, xe: *const f32, xo: *const f32, n: usize) -> __m256 {
    // SAFETY (loads): `h + 16 ≤ n / 2` below bounds the full blocks, and the masked loads read
    // only lanes below `n`.
    unsafe {
        let (mut ae, mut ao) = ([_mm512_setzero_ps(); R], [_mm512_setzero_ps(); R]);
        let mut j = 0;
        // `vpermps` reads only an index's low 4 bits: the low nibble needs no mask, and the
        // high nibble is the widened byte shifted right by 4.
        while j + 32 <= n {
            let h = j / 2;
            let (ve, vo) = (_mm512_loadu_ps(xe.add(h)), _mm512_loadu_ps(xo.add(h)));
            for r in 0..R {
                // Lane i: byte h + i, codes j + 2i (low nibble) and j + 2i + 1 (high).
                let b = _mm512_cvtepu8_epi32(_mm_loadu_si128(rows.add(r * stride + h).cast()));
                ae[r] = _mm512_fmadd_ps(_mm512_permutexvar_ps(b, tbl[r]), ve, ae[r]);
                ao[r] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32::<4>(b), tbl[r]), vo, ao[r]);
            }
            j += 32;
        }
        // A last block of more than 16 codes goes masked through the whole registers; one of
        // at most 16 through their low halves (Zen 4 runs a 512-bit operation as two 256-bit
        // ones: half the work, 144-wide rows' last of five steps), with each row's sum below.
        let (h, rem) = (j / 2, n - j);
        let (ne, no) = (rem.div_ceil(2), rem / 2);
        let (me, mo) = (((1u32 << ne) - 1) as __mmask16, ((1u32 << no) - 1) as __mmask16);
        if rem > 16 {
            let (ve, vo) = (_mm512_maskz_loadu_ps(me, xe.add(h)), _mm512_maskz_loadu_ps(mo, xo.add(h)));
            for r in 0..R {
                let b = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(me, rows.add(r * stride + h).cast()));
                ae[r] = _mm512_mask3_fmadd_ps(_mm512_permutexvar_ps(b, tbl[r]), ve, ae[r], me);
                ao[r] = _mm512_mask3_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32::<4>(b), tbl[r]), vo, ao[r], mo);
            }
        }
        let half = rem > 0 && rem <= 16;
        let (he, ho) = (me as __mmask8, mo as __mmask8);
        let (ve, vo) = if half {
            (_mm256_maskz_loadu_ps(he, xe.add(h)), _mm256_maskz_loadu_ps(ho, xo.add(h)))
        } else {
            (_mm256_setzero_ps(), _mm256_setzero_ps())
        };
        // Each row to 8 lanes (plus its last half block), then the eight rows reduced together
        // (absent rows are zero).
        let mut y = [_mm256_setzero_ps(); SPLIT_ROWS];
        for r in 0..R {
            let s = _mm512_add_ps(ae[r], ao[r]);
            let mut t = _mm256_add_ps(_mm512_castps512_ps256(s), _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(s))));
            if half {
                // Lane i: byte h + i, codes j + 2i and j + 2i + 1; `vpermt2ps` reads an index's
                // low 4 bits, the 16 codewords in two halves.
                let (lo, hi) = (_mm512_castps512_ps256(tbl[r]), _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(tbl[r]))));
                let b = _mm256_cvtepu8_epi32(_mm_maskz_loadu_epi8(me, rows.add(r * stride + h).cast()));
                t = _mm256_mask3_fmadd_ps(_mm256_permutex2var_ps(lo, b, hi), ve, t, he);
                t = _mm256_mask3_fmadd_ps(_mm256_permutex2var_ps(lo, _mm256_srli_epi32::<4>(b), hi), vo, t, ho);
            }
            y[r] = t;
        }
        hsum8(y)
    }
}

/// Lane `i` of the result is the sum of the eight lanes of `v[i]`.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum8(v: [__m256; 8]) -> __m256 {
    let (h01, h23) = (_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
    let (h45, h67) = (_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
    // Per 128-bit half: [v0, v1, v2, v3] partial sums (low half's lanes, then the high half's).
    let (q0, q1) = (_mm256_hadd_ps(h01, h23), _mm256_hadd_ps(h45, h67));
    _mm256_add_ps(_mm256_permute2f128_ps::<0x20>(q0, q1), _mm256_permute2f128_ps::<0x31>(q0, q1))
}

/// The four-row loop of [`Codes::dot_rows4`], `$look` mapping a 32-bit word of 8 codes to their
/// 8 codebook values.
macro_rules! rows4_body {
    ($table:ident, $rows:ident, $x:ident, $look:ident) => {{
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut j = 0;
        while j + 8 <= $x.len() {
            // SAFETY (load): j + 8 <= x.len().
            let xv = unsafe { _mm256_loadu_ps($x.as_ptr().add(j)) };
            for (a, row) in acc.iter_mut().zip($rows) {
                let b = u32::from_le_bytes(row[j / 2..j / 2 + 4].try_into().unwrap_or([0; 4]));
                *a = _mm256_fmadd_ps($look(b), xv, *a);
            }
            j += 8;
        }
        ([hsum(acc[0]), hsum(acc[1]), hsum(acc[2]), hsum(acc[3])], j)
    }};
}

/// Four rows, AVX2: two 8-entry permutes and a blend per 8 codes.
#[target_feature(enable = "avx2,fma")]
unsafe fn rows4(table: &[f32; 256], rows: [&[u8]; 4], x: &[f32]) -> ([f32; 4], usize) {
    let (lo, hi, shifts, nib) = nibble_setup!(table);
    let look = |word: u32| {
        let c = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(word as i32), shifts), nib);
        let sel = _mm256_castsi256_ps(_mm256_slli_epi32(c, 28));
        _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, c), _mm256_permutevar8x32_ps(hi, c), sel)
    };
    rows4_body!(table, rows, x, look)
}

/// Four rows, AVX-512VL: one 16-entry two-table permute per 8 codes.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
unsafe fn rows4_vl(table: &[f32; 256], rows: [&[u8]; 4], x: &[f32]) -> ([f32; 4], usize) {
    let (lo, hi, shifts, nib) = nibble_setup!(table);
    let look = |word: u32| _mm256_permutex2var_ps(lo, _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(word as i32), shifts), nib), hi);
    rows4_body!(table, rows, x, look)
}

/// Inputs a step of the byte-plane 4-bit kernel takes: 32 code bytes.
pub(crate) const PLANE_BLOCK: usize = 64;

/// Which input of its [`PLANE_BLOCK`] lane `i` of a permuted block holds: the order in which
/// [`planes_block`] yields a block's 64 weights (8 registers of 8 lanes). A permutation of
/// `0..64`.
pub(crate) const fn plane_source(i: usize) -> usize {
    let (r, l) = (i / 8, i % 8);
    // Register r: low (r < 4) or high nibbles, 16-bit unpack stage r % 4; lane l: 128-bit half
    // l / 4, 32-bit unpack position l % 4.
    let (t, f, h, e) = (r / 4, r % 4, l / 4, l % 4);
    2 * (16 * h + 4 * f + e) + t
}

/// [`plane_source`] of a last block of at most 32 inputs, which [`planes_half`] decodes (4
/// registers; the low 128-bit half holds low nibbles, the high half high nibbles). A
/// permutation of `0..32`.
pub(crate) const fn half_source(i: usize) -> usize {
    let (f, t, e) = (i / 8, i % 8 / 4, i % 4);
    2 * (4 * f + e) + t
}

/// How many permuted inputs [`permute_planes`] writes for `n` inputs: whole [`PLANE_BLOCK`]s,
/// the last one half a block when it holds at most 32 inputs.
pub(crate) const fn planes_len(n: usize) -> usize {
    n.next_multiple_of(PLANE_BLOCK / 2)
}

/// `xp` (at least [`planes_len`]`(x.len())` values) gets `x` in [`plane_source`] order block by
/// block ([`half_source`] for a last half block), 0.0 past `x.len()`: the inputs
/// [`Codes::gemv4_planes`] takes. Returns the [`planes_len`] values written.
pub(crate) fn permute_planes<'a>(x: &[f32], xp: &'a mut [MaybeUninit<f32>]) -> &'a mut [f32] {
    const fn table<const N: usize>(half: bool) -> [u8; N] {
        let mut s = [0u8; N];
        let mut i = 0;
        while i < N {
            s[i] = if half { half_source(i) } else { plane_source(i) } as u8;
            i += 1;
        }
        s
    }
    const FULL: [u8; PLANE_BLOCK] = table::<PLANE_BLOCK>(false);
    const HALF: [u8; PLANE_BLOCK / 2] = table::<{ PLANE_BLOCK / 2 }>(true);
    let len = planes_len(x.len()).min(xp.len() / (PLANE_BLOCK / 2) * (PLANE_BLOCK / 2));
    let xp = &mut xp[..len];
    for (q, blk) in xp.chunks_mut(PLANE_BLOCK).enumerate() {
        let src = x.get(q * PLANE_BLOCK..).unwrap_or(&[]);
        let order: &[u8] = if blk.len() == PLANE_BLOCK { &FULL } else { &HALF };
        for (v, &s) in blk.iter_mut().zip(order) {
            v.write(src.get(s as usize).copied().unwrap_or(0.0));
        }
    }
    // SAFETY: every one of the `len` values was written above (`blk` covers `xp`, and each
    // block's order has its length: the last chunk is a whole or a half block since `len` is
    // a multiple of 32); `MaybeUninit<f32>` has `f32`'s layout.
    unsafe { core::slice::from_raw_parts_mut(xp.as_mut_ptr().cast::<f32>(), len) }
}

/// Most groups [`PlaneBooks`] holds.
pub(crate) const PLANE_GROUPS: usize = 16;

/// The codebooks of a 4-bit payload (at most [`PLANE_GROUPS`] groups) as byte planes for
/// `vpshufb` lookups: bytes `16b .. 16b + 16` of group `g`'s entry are byte `b` of each of its
/// 16 codewords (missing codewords are 0.0, as `Parts::load` reads them). Made by
/// [`Codes::plane_books`] (AVX2 detected).
pub(crate) struct PlaneBooks {
    planes: [[u8; 64]; PLANE_GROUPS],
}

impl Codes {
    /// [`PlaneBooks`] of `p`: `None` for other widths or more than [`PLANE_GROUPS`] groups.
    pub(crate) fn plane_books(self, p: &Parts<'_>) -> Option<PlaneBooks> {
        if p.bits() != 4 || p.groups() > PLANE_GROUPS {
            return None;
        }
        let mut books = PlaneBooks { planes: [[0; 64]; PLANE_GROUPS] };
        let mut t = [0.0f32; 256];
        for (g, planes) in books.planes.iter_mut().enumerate().take(p.groups()) {
            p.load(g, &mut t);
            // SAFETY: a `Codes` exists only after AVX2 was detected.
            unsafe { byte_planes(&t, planes) };
        }
        Some(books)
    }

    /// `out[j] += Σ_m codebook(group(j))[code(j, 2·b0 + m)] · x[m]` over `m < n` for every row
    /// `j < out.len()` of the 4-bit payload `p`, `books` its [`Codes::plane_books`], given `xp`:
    /// `x` in [`permute_planes`] order, zero from `n` on (codewords are finite, as parsing
    /// guarantees, so the codes past a row's `n` that the kernel may read add nothing). Four
    /// `vpshufb` and eight unpacks per 32 weights instead of a permute pair per 8. Sums in
    /// another order than the scalar dot. False, with `out` untouched, when a row does not hold codes `2·b0 .. 2·b0 + n` or
    /// `xp` holds fewer than [`planes_len`]`(n)` values.
    pub(crate) fn gemv4_planes(self, books: &PlaneBooks, p: &Parts<'_>, b0: usize, xp: &[f32], n: usize, out: &mut [f32]) -> bool {
        let stride = p.stride();
        if p.bits() != 4
            || b0.checked_add(n.div_ceil(2)).is_none_or(|end| end > stride)
            || p.indices().len() < out.len().saturating_mul(stride)
            || xp.len() < planes_len(n)
        {
            return false;
        }
        // SAFETY: AVX2 + FMA detected (a `Codes` exists); the bounds are checked above.
        unsafe { gemv4_planes_core(books, p, b0, xp.as_ptr(), n, out) };
        true
    }
}

impl Codes {
    /// `out[j] += Σ_m codebook(group(j))[code(j, m)] · x[m]` over `m < x.len() ≤ 16` for every
    /// row `j < out.len()` of the 4-bit payload `p`, `books` its [`Codes::plane_books`]: rows of
    /// at most 16 codes (one or two registers each), eight rows decoded at a time and their
    /// products reduced together ([`hsum8`]), where [`Codes::gemv4_planes`] would decode a
    /// 32-code half block and reduce a register for every row. Sums in another order than the
    /// scalar dot. False, with `out` untouched, for longer or empty inputs or when a row does
    /// not hold `x.len()` codes.
    pub(crate) fn gemv4_short_planes(self, books: &PlaneBooks, p: &Parts<'_>, x: &[f32], out: &mut [f32]) -> bool {
        let k = x.len();
        if p.bits() != 4 || !(1..=16).contains(&k) || rows_fit(p, 0, k, out.len() * k) != Some(out.len()) {
            return false;
        }
        let mut xs = [0.0f32; 16];
        xs[..k].copy_from_slice(x);
        // Eight rows of `k` floats and 16 more, zero, that the last rows' whole-register loads
        // reach (times a zero input, since the inputs past `k` are zero; codewords are finite).
        let mut buf = [MaybeUninit::<f32>::uninit(); 8 * 16 + 16];
        for (q, o) in out.chunks_mut(8).enumerate() {
            let nb = o.len();
            for v in &mut buf[nb * k..nb * k + 16] {
                v.write(0.0);
            }
            // The rows lie in the payload (checked above), so they always decode.
            if books.decode_rows(p, 8 * q, k, &mut buf[..nb * k]).is_none() {
                return false;
            }
            // SAFETY: AVX2 + FMA detected (a `Codes` exists); the first `nb·k + 16` floats of
            // `buf` are initialized (the rows just decoded, then the zeros written above), read
            // through a pointer to the whole buffer.
            let sums = unsafe { short_rows_avx2(buf.as_ptr().cast::<f32>(), k, nb, &xs) };
            for (o, v) in o.iter_mut().zip(sums) {
                *o += v;
            }
        }
        true
    }
}

/// The sums of rows `0 .. nb ≤ 8` of `k ≤ 16` floats each at `w` (row `r` at `w + r·k`)
/// with `x` (zero from `k` on), lane `r` of the result row `r`'s (0 past `nb`); the caller
/// guarantees `nb·k + 16` readable floats at `w`, every one finite past the rows.
#[target_feature(enable = "avx2,fma")]
unsafe fn short_rows_avx2(w: *const f32, k: usize, nb: usize, x: &[f32; 16]) -> [f32; 8] {
    // SAFETY: 16 floats in `x`.
    let (xl, xh) = unsafe { (_mm256_loadu_ps(x.as_ptr()), _mm256_loadu_ps(x.as_ptr().add(8))) };
    let v: [__m256; 8] = core::array::from_fn(|r| {
        if r >= nb {
            return _mm256_setzero_ps();
        }
        // SAFETY: floats `r·k .. r·k + 16 ≤ nb·k + 16` at `w` (the caller's guarantee).
        let (lo, hi) = unsafe { (_mm256_loadu_ps(w.add(r * k)), _mm256_loadu_ps(w.add(r * k + 8))) };
        _mm256_fmadd_ps(hi, xh, _mm256_mul_ps(lo, xl))
    });
    let mut out = [0.0f32; 8];
    // SAFETY: 8 floats in `out`.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), hsum8(v)) };
    out
}

impl PlaneBooks {
    /// Writes weights `k0 .. k0 + out.len()` of row `row` of `p` (the payload these books came
    /// from) to `out`: the values `Parts::decode` gives, 64 per 29 shuffles. False, with `out`
    /// untouched, for an odd `k0` or when the row holds fewer codes.
    pub(crate) fn decode(&self, p: &Parts<'_>, row: usize, k0: usize, out: &mut [f32]) -> bool {
        if !k0.is_multiple_of(2) || p.row(row).len() < (k0 + out.len()).div_ceil(2) {
            return false;
        }
        let book = self.planes[p.group(row).min(PLANE_GROUPS - 1)].as_ptr();
        // SAFETY: a `PlaneBooks` exists only after AVX2 was detected; the row holds bytes
        // `k0/2 .. ⌈(k0 + out.len())/2⌉` (checked above), which start at byte
        // `row·stride + k0/2` of the payload.
        unsafe { planes_decode(book, p.indices(), row * p.stride() + k0 / 2, out.as_mut_ptr(), out.len(), out.len()) };
        true
    }

    /// Writes rows `m0 ..` of `p`, the first `kdim` weights of each, to `buf` (as
    /// `Books4::decode_rows`: `kdim` floats a row, as many rows as `buf` holds, every float
    /// written, returned as those floats). `None`, with `buf` untouched, when a row holds fewer
    /// than `kdim` codes or is missing.
    pub(crate) fn decode_rows<'b>(&self, p: &Parts<'_>, m0: usize, kdim: usize, buf: &'b mut [MaybeUninit<f32>]) -> Option<&'b mut [f32]> {
        let rows = rows_fit(p, m0, kdim, buf.len())?;
        let out = buf.as_mut_ptr().cast::<f32>();
        // SAFETY: AVX2 detected (a `PlaneBooks` exists); each row's `⌈kdim/2⌉ ≤ stride` bytes
        // lie in the payload (checked above); the `rows·kdim = buf.len()` floats are writable.
        unsafe { planes_decode_rows(self, p, m0, kdim, out, rows) };
        // SAFETY: every one of the `rows·kdim = buf.len()` floats was written above
        // (`MaybeUninit<f32>` has `f32`'s layout).
        Some(unsafe { core::slice::from_raw_parts_mut(out, buf.len()) })
    }
}

/// Whether the column block `o0 .. o0 + nb` (`o0` even, `nb > 0`) of rows `0 .. rows` of `p`
/// lies in the payload, and `len` floats fit in `room`.
fn cols_fit(p: &Parts<'_>, o0: usize, nb: usize, rows: usize, len: usize, room: usize) -> bool {
    let stride = p.stride();
    o0.is_multiple_of(2)
        && nb > 0
        && o0.checked_add(nb).is_some_and(|e| e.div_ceil(2) <= stride)
        && rows.checked_mul(stride).is_some_and(|e| e <= p.indices().len())
        && len <= room
}

/// A 4-bit payload's codebooks ready for the x86 decoders: in AVX-512 registers
/// ([`Books4`], at most 16 groups, AVX-512 F, VL and BW) or as byte planes ([`PlaneBooks`],
/// AVX2, at most [`PLANE_GROUPS`] groups). One per call on the stack (no allocator to box the
/// larger variant in).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Decoder4 {
    Wide(Books4),
    Planes(PlaneBooks),
}

impl Codes {
    /// The fastest [`Decoder4`] of `p` this CPU runs; `None` for other widths or too many
    /// groups.
    pub(crate) fn decoder4(self, p: &Parts<'_>) -> Option<Decoder4> {
        match self.books4(p) {
            Some(b) => Some(Decoder4::Wide(b)),
            None => self.plane_books(p).map(Decoder4::Planes),
        }
    }
}

impl Decoder4 {
    /// [`Books4::decode`] / [`PlaneBooks::decode`].
    #[inline]
    pub(crate) fn decode(&self, p: &Parts<'_>, row: usize, k0: usize, out: &mut [f32]) -> bool {
        match self {
            Decoder4::Wide(b) => b.decode(p, row, k0, out),
            Decoder4::Planes(b) => b.decode(p, row, k0, out),
        }
    }

    /// [`Books4::decode_rows`] / [`PlaneBooks::decode_rows`].
    pub(crate) fn decode_rows<'b>(&self, p: &Parts<'_>, m0: usize, kdim: usize, buf: &'b mut [MaybeUninit<f32>]) -> Option<&'b mut [f32]> {
        match self {
            Decoder4::Wide(b) => b.decode_rows(p, m0, kdim, buf),
            Decoder4::Planes(b) => b.decode_rows(p, m0, kdim, buf),
        }
    }

    /// For every row `ci < live.len()`, `out[ci·nb ..][..nb]` gets weights `o0 .. o0 + nb` of
    /// row `ci` of `p` (the payload these books came from) where `live[ci]`, zeros elsewhere:
    /// the column block of an input-major weight. With `compact`, only the live rows' blocks,
    /// one after the other (`out[i·nb ..][..nb]` for the `i`-th live row). `out` may be memory
    /// never written: the floats written (`live.len()·nb`, or `nb` a live row) are returned.
    /// `None`, with `out` untouched, for an odd `o0`, when a row holds fewer codes or is
    /// missing, when `out` is shorter, and for `compact` with the AVX-512 books (whose kernel
    /// decodes in registers).
    pub(crate) fn decode_cols<'b>(
        &self,
        p: &Parts<'_>,
        o0: usize,
        nb: usize,
        live: &[bool],
        compact: bool,
        out: &'b mut [MaybeUninit<f32>],
    ) -> Option<&'b mut [f32]> {
        let rows = if compact { live.iter().filter(|&&l| l).count() } else { live.len() };
        let len = rows.checked_mul(nb)?;
        if !cols_fit(p, o0, nb, live.len(), len, out.len()) {
            return None;
        }
        let out = &mut out[..len];
        match self {
            Decoder4::Wide(_) if compact => None,
            Decoder4::Wide(b) => {
                for v in out.iter_mut() {
                    v.write(0.0);
                }
                // SAFETY: every float was written above (`MaybeUninit<f32>` has `f32`'s layout).
                let out = unsafe { core::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), len) };
                for ((ci, &l), row) in live.iter().enumerate().zip(out.chunks_exact_mut(nb)) {
                    // The bounds are checked above: a live row always decodes.
                    let _ = l && b.decode(p, ci, o0, row);
                }
                Some(out)
            }
            Decoder4::Planes(b) => {
                let ptr = out.as_mut_ptr().cast::<f32>();
                // SAFETY: AVX2 detected (a `PlaneBooks` exists); the bounds are checked above;
                // `planes_decode_cols` writes each of the `len` floats (every row, decoded or
                // zeros, or every live row), so the slice made from them afterwards is
                // initialized.
                unsafe {
                    planes_decode_cols(b, p, o0, nb, live, ptr, compact);
                    Some(core::slice::from_raw_parts_mut(ptr, len))
                }
            }
        }
    }

    /// The AVX-512 books (whose kernels, such as [`Books4::im_1x1`], decode in registers).
    pub(crate) fn wide(&self) -> Option<&Books4> {
        match self {
            Decoder4::Wide(b) => Some(b),
            Decoder4::Planes(_) => None,
        }
    }
}

/// Writes weights `0 .. n` of the 4-bit codes starting at byte `s` of `codes` through the byte
/// planes at `planes` to `out`, in order. The caller guarantees `⌈n/2⌉` bytes from `s` in
/// `codes` and `room ≥ n` writable floats at `out`: floats `n .. room` may be overwritten with
/// garbage (whole registers go out with plain stores where they fit, the last partial one
/// masked otherwise). Codes past the row are read inside `codes` or through a zeroed copy.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn planes_decode(planes: *const u8, codes: &[u8], s: usize, out: *mut f32, n: usize, room: usize) {
    let copy = |at: usize| -> [u8; 32] {
        let mut b = [0u8; 32];
        let src = &codes[at..codes.len().min(at + 32)];
        b[..src.len()].copy_from_slice(src);
        b
    };
    let mut j = 0;
    while j + PLANE_BLOCK <= n {
        let at = s + j / 2;
        // SAFETY: bytes `at .. at + 32` lie in the row (the caller's guarantee).
        let w = unsafe { natural_block(planes, _mm256_loadu_si256(codes.as_ptr().add(at).cast())) };
        for (r, w) in w.into_iter().enumerate() {
            // SAFETY: floats `j + 8r .. j + 8r + 8 ≤ n` at `out`.
            unsafe { _mm256_storeu_ps(out.add(j + 8 * r), w) };
        }
        j += PLANE_BLOCK;
    }
    if j < n {
        let (at, rem) = (s + j / 2, n - j);
        let v = if at + 32 <= codes.len() {
            // SAFETY: bytes `at .. at + 32` lie in `codes`.
            unsafe { _mm256_loadu_si256(codes.as_ptr().add(at).cast()) }
        } else {
            // SAFETY: a 32-byte copy.
            unsafe { _mm256_loadu_si256(copy(at).as_ptr().cast()) }
        };
        let mut w = [_mm256_setzero_ps(); 8];
        if rem <= PLANE_BLOCK / 2 {
            // SAFETY: `planes` points at 64 plane bytes (the caller's guarantee).
            w[..4].copy_from_slice(&unsafe { natural_half(planes, _mm256_castsi256_si128(v)) });
        } else {
            // SAFETY: as above.
            w = unsafe { natural_block(planes, v) };
        }
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for (r, w) in w.into_iter().enumerate().take(rem.div_ceil(8)) {
            if j + 8 * r + 8 <= room {
                // SAFETY: floats `j + 8r .. j + 8r + 8 ≤ room` at `out` (those past `n` are
                // the caller's to overwrite).
                unsafe { _mm256_storeu_ps(out.add(j + 8 * r), w) };
            } else {
                // Lanes below `rem - 8r`: floats `j + 8r .. n` at `out` (a masked store only
                // here: it is slow on some CPUs).
                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((rem - 8 * r) as i32), lanes);
                // SAFETY: the masked lanes lie below `n` (writable, the caller's guarantee).
                unsafe { _mm256_maskstore_ps(out.add(j + 8 * r), mask, w) };
            }
        }
    }
}

/// [`PlaneBooks::decode_rows`]'s loop, in one AVX2 function so each row's decode inlines: row
/// `m0 + i` (`kdim` weights) to `out + i·kdim` for `i < rows`; the caller guarantees the rows'
/// bytes in the payload and `rows·kdim` writable floats.
#[target_feature(enable = "avx2,fma")]
unsafe fn planes_decode_rows(books: &PlaneBooks, p: &Parts<'_>, m0: usize, kdim: usize, out: *mut f32, rows: usize) {
    let (stride, codes) = (p.stride(), p.indices());
    // Short rows with at most one padding code (a depthwise 3 × 3 filter: 9 codes in 5 bytes):
    // each run of rows of one group is one code stream, decoded whole registers at a time
    // rather than a 32-code lookup per row (kws_dscnn's 64 filters 1.6 → 0.3 µs).
    if kdim < PLANE_BLOCK && 2 * stride - kdim <= 1 {
        // SAFETY: the caller's guarantees.
        unsafe { planes_decode_runs(books, p, m0, kdim, out, rows) };
        return;
    }
    for i in 0..rows {
        let book = books.planes[p.group(m0 + i).min(PLANE_GROUPS - 1)].as_ptr();
        // SAFETY: the caller's guarantees.
        unsafe { planes_decode(book, codes, (m0 + i) * stride, out.add(i * kdim), kdim, (rows - i) * kdim) };
    }
}

/// Floats of the code stream [`planes_decode_runs`] decodes at a time.
const RUN_BUF: usize = 2048;

/// [`planes_decode_rows`] for rows of `kdim < PLANE_BLOCK` codes in `stride` bytes, `2·stride -
/// kdim ≤ 1`: the same floats at the same places. Each run of consecutive rows of one group
/// is decoded as one stream of `2·stride` codes a row (the padding code included) straight to
/// `out` when rows have no padding, else to a stack buffer whose rows are then copied to
/// `out` without their padding. The caller guarantees the rows' bytes in the payload and
/// `rows·kdim` writable floats at `out`.
#[target_feature(enable = "avx2,fma")]
unsafe fn planes_decode_runs(books: &PlaneBooks, p: &Parts<'_>, m0: usize, kdim: usize, out: *mut f32, rows: usize) {
    let (stride, codes) = (p.stride(), p.indices());
    let (span, end) = (2 * stride, rows * kdim);
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    // Rows a buffer holds, with 16 floats to spare for the copies' whole-register loads.
    let per = ((RUN_BUF - 16) / span.max(1)).max(1);
    let mut tmp = [MaybeUninit::<f32>::uninit(); RUN_BUF];
    let t = tmp.as_mut_ptr().cast::<f32>();
    let mut i = 0;
    while i < rows {
        let g = p.group(m0 + i);
        let mut e = i + 1;
        while e < rows && p.group(m0 + e) == g {
            e += 1;
        }
        let book = books.planes[g.min(PLANE_GROUPS - 1)].as_ptr();
        if span == kdim {
            // SAFETY: rows `m0 + i .. m0 + e` are `(e - i)·kdim` codes from byte `(m0 + i)·stride`
            // (the caller's guarantee), written to floats `i·kdim .. e·kdim ≤ end` at `out`;
            // floats from there to `end` are writable, rewritten by the runs after this one.
            unsafe { planes_decode(book, codes, (m0 + i) * stride, out.add(i * kdim), (e - i) * kdim, end - i * kdim) };
            i = e;
            continue;
        }
        while i < e {
            let n = per.min(e - i);
            // SAFETY: as above, `n·span ≤ RUN_BUF - 16` floats to `tmp`; the 16 after them are
            // zeroed so every float the copies below load is initialized.
            unsafe {
                planes_decode(book, codes, (m0 + i) * stride, t, n * span, n * span);
                _mm256_storeu_ps(t.add(n * span), _mm256_setzero_ps());
                _mm256_storeu_ps(t.add(n * span + 8), _mm256_setzero_ps());
            }
            for r in 0..n {
                let (src, at) = (r * span, (i + r) * kdim);
                let mut j = 0;
                while j < kdim {
                    // SAFETY: floats `src + j .. src + j + 8 ≤ n·span + 16` of `tmp` are written
                    // (`j < kdim < span`); floats past this row's `kdim` at `out` below `end` are
                    // rewritten by the rows after it; those at or past `end` are masked off.
                    unsafe {
                        let v = _mm256_loadu_ps(t.add(src + j));
                        if at + j + 8 <= end {
                            _mm256_storeu_ps(out.add(at + j), v);
                        } else {
                            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((end - at - j) as i32), lanes);
                            _mm256_maskstore_ps(out.add(at + j), mask, v);
                        }
                    }
                    j += 8;
                }
            }
            i += n;
        }
    }
}

/// `live[ci] |= ` whether plane `ci` of `x` (`hw` floats each, `live.len()` planes) holds a
/// value other than ±0 (NaN included); false, with `live` untouched, without AVX2 or when `x`
/// is short. The same flags as the scalar test, 8 lanes a compare (the scalar fold over VWW's
/// 36- and 9-float planes was 2 % of its 4-bit run).
pub(crate) fn live_rows(x: &[f32], hw: usize, live: &mut [bool]) -> bool {
    if Codes::detect().is_none() || live.len().checked_mul(hw).is_none_or(|n| n > x.len()) {
        return false;
    }
    // SAFETY: AVX2 detected; `live.len()·hw ≤ x.len()` (checked above).
    unsafe { live_rows_avx2(x.as_ptr(), hw, live) };
    true
}

/// [`live_rows`]' loop; the caller guarantees AVX2 and `live.len()·hw` floats at `x`.
#[target_feature(enable = "avx2")]
unsafe fn live_rows_avx2(x: *const f32, hw: usize, live: &mut [bool]) {
    let zero = _mm256_setzero_ps();
    for (ci, l) in live.iter_mut().enumerate() {
        // SAFETY: floats `ci·hw .. (ci + 1)·hw` at `x` (the caller's guarantee); whole-vector
        // loads start at or after the plane's start and end at or before its end.
        unsafe {
            let row = x.add(ci * hw);
            let any = if hw >= 8 {
                let mut acc = _mm256_cmp_ps::<_CMP_NEQ_UQ>(_mm256_loadu_ps(row.add(hw - 8)), zero);
                let mut j = 0;
                while j + 8 <= hw {
                    acc = _mm256_or_ps(acc, _mm256_cmp_ps::<_CMP_NEQ_UQ>(_mm256_loadu_ps(row.add(j)), zero));
                    j += 8;
                }
                _mm256_movemask_ps(acc) != 0
            } else {
                (0..hw).fold(false, |a, j| a | (*row.add(j) != 0.0))
            };
            *l |= any;
        }
    }
}

/// The planes (`hw` floats each) of the inputs `ci` with `live[ci]` of each of the `batch`
/// items of `x` (`c` planes each), one after the other into `out`, returned as those floats;
/// `None`, with `out` untouched, when `x` or `out` is too short.
pub(crate) fn live_planes<'b>(
    x: &[f32],
    batch: usize,
    c: usize,
    hw: usize,
    live: &[bool],
    out: &'b mut [MaybeUninit<f32>],
) -> Option<&'b [f32]> {
    let len = batch.checked_mul(live.iter().filter(|&&l| l).count())?.checked_mul(hw)?;
    if c == 0 || live.len() != c || x.len() < batch.checked_mul(c)?.checked_mul(hw)? || out.len() < len {
        return None;
    }
    let mut at = 0;
    for xn in x.chunks_exact(c * hw.max(1)).take(batch) {
        for (plane, _) in xn.chunks_exact(hw.max(1)).zip(live).filter(|(_, &l)| l) {
            for (d, &v) in out[at..at + hw].iter_mut().zip(plane) {
                d.write(v);
            }
            at += hw;
        }
    }
    // SAFETY: the first `len` floats of `out` were written above (`at == len`; for `hw == 0`
    // the slice is empty); `MaybeUninit<f32>` has `f32`'s layout.
    (at == len).then(|| unsafe { core::slice::from_raw_parts(out.as_ptr().cast::<f32>(), len) })
}

/// [`Decoder4::decode_cols`] with byte planes: writes all `live.len()·nb` floats at `out`
/// (row `ci` at `out + ci·nb`), or with `compact` only the live rows' blocks, one after the
/// other (`compact` of [`Decoder4::decode_cols`]); the caller guarantees every row's bytes `o0/2 ..
/// ⌈(o0 + nb)/2⌉` in the payload and that many writable floats.
#[target_feature(enable = "avx2,fma")]
unsafe fn planes_decode_cols(books: &PlaneBooks, p: &Parts<'_>, o0: usize, nb: usize, live: &[bool], out: *mut f32, compact: bool) {
    let (stride, codes) = (p.stride(), p.indices());
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    // Rows written: every row, or (`compact`) the live ones.
    let total = if compact { live.iter().filter(|&&l| l).count() } else { live.len() };
    let mut i = 0;
    for (ci, &l) in live.iter().enumerate() {
        // SAFETY: floats `i·nb .. (i + 1)·nb` at `out` are writable (the caller's guarantee).
        let row = unsafe { out.add(i * nb) };
        if !l {
            if !compact {
                // SAFETY: as above.
                unsafe { core::ptr::write_bytes(row, 0, nb) };
                i += 1;
            }
            continue;
        }
        // Floats from here to the end of the block are writable; those past this row's `nb`
        // are rewritten by the rows after it.
        let room = (total - i) * nb;
        i += 1;
        let book = books.planes[p.group(ci).min(PLANE_GROUPS - 1)].as_ptr();
        let at = ci * stride + o0 / 2;
        if nb <= PLANE_BLOCK / 2 && at + 16 <= codes.len() {
            // Blocks of at most 32 outputs: one half-block lookup inline, no call per row.
            // SAFETY: bytes `at .. at + 16` lie in `codes`; `book` points at 64 plane bytes.
            let w = unsafe { natural_half(book, _mm_loadu_si128(codes.as_ptr().add(at).cast())) };
            for (r, w) in w.into_iter().enumerate().take(nb.div_ceil(8)) {
                if 8 * r + 8 <= room {
                    // SAFETY: floats `8r .. 8r + 8 ≤ room` from the row's start.
                    unsafe { _mm256_storeu_ps(row.add(8 * r), w) };
                } else {
                    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((nb - 8 * r) as i32), lanes);
                    // SAFETY: the masked lanes lie below `nb`.
                    unsafe { _mm256_maskstore_ps(row.add(8 * r), mask, w) };
                }
            }
        } else {
            // SAFETY: the caller's guarantees; the block holds `room` floats from the row on.
            unsafe { planes_decode(book, codes, at, row, nb, room) };
        }
    }
}

/// The four byte planes at `planes` (64 bytes, the caller's guarantee), each in both halves.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn plane_regs(planes: *const u8) -> [__m256i; 4] {
    // SAFETY: four 16-byte loads inside the 64 bytes.
    core::array::from_fn(|k| unsafe { _mm256_broadcastsi128_si256(_mm_loadu_si128(planes.add(16 * k).cast())) })
}

/// The codewords of 32 codes `idx` (one byte each, in dword order `0, 2, 4, 6 | 1, 3, 5, 7`
/// of runs of 4) through `pl`: 4 registers of 8 weights in code order.
#[inline]
#[target_feature(enable = "avx2")]
fn natural_lookup(pl: &[__m256i; 4], idx: __m256i) -> [__m256; 4] {
    let b: [__m256i; 4] = core::array::from_fn(|k| _mm256_shuffle_epi8(pl[k], idx));
    let (l01, h01) = (_mm256_unpacklo_epi8(b[0], b[1]), _mm256_unpackhi_epi8(b[0], b[1]));
    let (l23, h23) = (_mm256_unpacklo_epi8(b[2], b[3]), _mm256_unpackhi_epi8(b[2], b[3]));
    [
        _mm256_castsi256_ps(_mm256_unpacklo_epi16(l01, l23)),
        _mm256_castsi256_ps(_mm256_unpackhi_epi16(l01, l23)),
        _mm256_castsi256_ps(_mm256_unpacklo_epi16(h01, h23)),
        _mm256_castsi256_ps(_mm256_unpackhi_epi16(h01, h23)),
    ]
}

/// The 64 weights of 32 code bytes `v` through the byte planes at `planes` (64 bytes), in
/// order: register `r` holds weights `8r .. 8r + 8`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn natural_block(planes: *const u8, v: __m256i) -> [__m256; 8] {
    // Bytes 0–7 and 16–23 to the low half, 8–15 and 24–31 to the high half, so the nibble
    // interleave gives codes 0–31 and 32–63 in order; then runs of 4 codes reordered so each
    // lookup's 128-bit halves hold consecutive runs.
    let v = _mm256_permute4x64_epi64::<0b11_01_10_00>(v);
    let nib = _mm256_set1_epi8(15);
    let (lo, hi) = (_mm256_and_si256(v, nib), _mm256_and_si256(_mm256_srli_epi16::<4>(v), nib));
    let order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    // SAFETY: the caller's guarantee.
    let pl = unsafe { plane_regs(planes) };
    let a = natural_lookup(&pl, _mm256_permutevar8x32_epi32(_mm256_unpacklo_epi8(lo, hi), order));
    let b = natural_lookup(&pl, _mm256_permutevar8x32_epi32(_mm256_unpackhi_epi8(lo, hi), order));
    [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
}

/// The 32 weights of 16 code bytes `v` through the byte planes at `planes` (64 bytes), in
/// order (as [`natural_block`]).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn natural_half(planes: *const u8, v: __m128i) -> [__m256; 4] {
    let nib = _mm_set1_epi8(15);
    let (lo, hi) = (_mm_and_si128(v, nib), _mm_and_si128(_mm_srli_epi16::<4>(v), nib));
    let codes = _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
    // SAFETY: the caller's guarantee.
    let pl = unsafe { plane_regs(planes) };
    natural_lookup(&pl, _mm256_permutevar8x32_epi32(codes, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7)))
}

/// `planes` gets entries `0..16` of `t` as [`PlaneBooks`] lays them out.
#[target_feature(enable = "avx2")]
unsafe fn byte_planes(t: &[f32; 256], planes: &mut [u8; 64]) {
    // Within each 4-float quarter, byte b of each float to dword b; then a 4×4 dword transpose.
    let split = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    // SAFETY: loads of floats 0..16 of `t`.
    let q: [__m128i; 4] = core::array::from_fn(|i| _mm_shuffle_epi8(unsafe { _mm_loadu_si128(t.as_ptr().add(4 * i).cast()) }, split));
    let (a, b) = (_mm_unpacklo_epi32(q[0], q[1]), _mm_unpacklo_epi32(q[2], q[3]));
    let (c, d) = (_mm_unpackhi_epi32(q[0], q[1]), _mm_unpackhi_epi32(q[2], q[3]));
    let out = [_mm_unpacklo_epi64(a, b), _mm_unpackhi_epi64(a, b), _mm_unpacklo_epi64(c, d), _mm_unpackhi_epi64(c, d)];
    for (k, v) in out.into_iter().enumerate() {
        // SAFETY: bytes `16k .. 16k + 16` of `planes`.
        unsafe { _mm_storeu_si128(planes.as_mut_ptr().add(16 * k).cast(), v) };
    }
}

/// The 64 weights of 32 code bytes `v` through the byte planes at `planes` (64 bytes), in
/// [`plane_source`] order (register `r` lane `l` is weight `plane_source(8r + l)`).
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn planes_block(planes: *const u8, v: __m256i) -> [__m256; 8] {
    let nib = _mm256_set1_epi8(15);
    let idx = [_mm256_and_si256(v, nib), _mm256_and_si256(_mm256_srli_epi16::<4>(v), nib)];
    // SAFETY: four 16-byte loads inside the 64 bytes at `planes` (the caller's guarantee).
    let pl: [__m256i; 4] = core::array::from_fn(|k| unsafe { _mm256_broadcastsi128_si256(_mm_loadu_si128(planes.add(16 * k).cast())) });
    let mut w = [_mm256_setzero_ps(); 8];
    for (t, idx) in idx.into_iter().enumerate() {
        let b: [__m256i; 4] = core::array::from_fn(|k| _mm256_shuffle_epi8(pl[k], idx));
        let (l01, h01) = (_mm256_unpacklo_epi8(b[0], b[1]), _mm256_unpackhi_epi8(b[0], b[1]));
        let (l23, h23) = (_mm256_unpacklo_epi8(b[2], b[3]), _mm256_unpackhi_epi8(b[2], b[3]));
        w[4 * t] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(l01, l23));
        w[4 * t + 1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(l01, l23));
        w[4 * t + 2] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(h01, h23));
        w[4 * t + 3] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(h01, h23));
    }
    w
}

/// The loop of [`Codes::gemv4_planes`]; the caller guarantees its bounds (every row's bytes
/// `b0 .. b0 + ⌈n/2⌉` in the payload, [`planes_len`]`(n)` floats at `xp`). Row by row, each
/// row's sum in one register (the inputs come from L1 again for every row: the shuffle ports,
/// not loads, bound the loop).
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv4_planes_core(books: &PlaneBooks, p: &Parts<'_>, b0: usize, xp: *const f32, n: usize, out: &mut [f32]) {
    let (stride, codes) = (p.stride(), p.indices());
    for (j, o) in out.iter_mut().enumerate() {
        let book = books.planes[p.group(j).min(PLANE_GROUPS - 1)].as_ptr();
        // SAFETY: the caller's guarantees, passed on.
        *o += unsafe { planes_row(book, codes, j * stride + b0, xp, n) };
    }
}

/// The 32 weights of 16 code bytes `v` through the byte planes at `planes` (64 bytes), in
/// [`half_source`] order.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn planes_half(planes: *const u8, v: __m128i) -> [__m256; 4] {
    let nib = _mm_set1_epi8(15);
    let idx = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16::<4>(v), nib), _mm_and_si128(v, nib));
    // SAFETY: four 16-byte loads inside the 64 bytes at `planes` (the caller's guarantee).
    let b: [__m256i; 4] = core::array::from_fn(|k| {
        _mm256_shuffle_epi8(unsafe { _mm256_broadcastsi128_si256(_mm_loadu_si128(planes.add(16 * k).cast())) }, idx)
    });
    let (l01, h01) = (_mm256_unpacklo_epi8(b[0], b[1]), _mm256_unpackhi_epi8(b[0], b[1]));
    let (l23, h23) = (_mm256_unpacklo_epi8(b[2], b[3]), _mm256_unpackhi_epi8(b[2], b[3]));
    [
        _mm256_castsi256_ps(_mm256_unpacklo_epi16(l01, l23)),
        _mm256_castsi256_ps(_mm256_unpackhi_epi16(l01, l23)),
        _mm256_castsi256_ps(_mm256_unpacklo_epi16(h01, h23)),
        _mm256_castsi256_ps(_mm256_unpackhi_epi16(h01, h23)),
    ]
}

/// `acc[r % 4] += w[r] · x[8r ..][..8]` (lane-wise): four independent chains, so a block's
/// eight products wait on two multiply-adds of the block before, not eight. The caller
/// guarantees `8·W` readable floats at `x`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn planes_fma<const W: usize>(acc: &mut [__m256; 4], w: &[__m256; W], x: *const f32) {
    for (r, w) in w.iter().enumerate() {
        // SAFETY (load): floats `8r .. 8r + 8 ≤ 8·W` at `x`.
        acc[r % 4] = _mm256_fmadd_ps(*w, unsafe { _mm256_loadu_ps(x.add(8 * r)) }, acc[r % 4]);
    }
}

/// The sum of one row: its codes start at byte `s` of `codes` and go through the byte planes
/// at `planes`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn planes_row(planes: *const u8, codes: &[u8], s: usize, xp: *const f32, n: usize) -> f32 {
    let mut acc = [_mm256_setzero_ps(); 4];
    // Bytes `at ..` of `codes` through a zeroed copy (at the payload's end; codes past the
    // row's `n` meet zero inputs).
    let copy = |at: usize| -> [u8; 32] {
        let mut b = [0u8; 32];
        let src = &codes[at..s + n.div_ceil(2)];
        b[..src.len()].copy_from_slice(src);
        b
    };
    // Blocks of 64, the last one half a block when it holds at most 32 codes.
    let blocks = planes_len(n) / PLANE_BLOCK;
    for q in 0..blocks {
        let at = s + 32 * q;
        let v = if at + 32 <= codes.len() {
            // SAFETY: bytes `at .. at + 32` lie in `codes`.
            unsafe { _mm256_loadu_si256(codes.as_ptr().add(at).cast()) }
        } else {
            // SAFETY: a 32-byte copy.
            unsafe { _mm256_loadu_si256(copy(at).as_ptr().cast()) }
        };
        // SAFETY: `planes` points at a group's 64 plane bytes; the block's 64 floats at `xp`
        // are readable (the caller's guarantee).
        unsafe { planes_fma(&mut acc, &planes_block(planes, v), xp.add(PLANE_BLOCK * q)) };
    }
    if !planes_len(n).is_multiple_of(PLANE_BLOCK) {
        let at = s + 32 * blocks;
        let v = if at + 16 <= codes.len() {
            // SAFETY: bytes `at .. at + 16` lie in `codes`.
            unsafe { _mm_loadu_si128(codes.as_ptr().add(at).cast()) }
        } else {
            // SAFETY: a 16-byte load from a 32-byte copy.
            unsafe { _mm_loadu_si128(copy(at).as_ptr().cast()) }
        };
        // SAFETY: as above; the half block's 32 floats at `xp` are readable.
        unsafe { planes_fma(&mut acc, &planes_half(planes, v), xp.add(PLANE_BLOCK * blocks)) };
    }
    hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])))
}

/// The body of [`dot_codes`]; callers hold a [`Codes`] (AVX2 + FMA detected).
#[inline]
fn dot_codes_detected(vl: bool, bits: usize, table: &[f32; 256], row: &[u8], x: &[f32]) -> f32 {
    let per = 8 / bits;
    // Whole bytes present in `row`; the rest of `x` goes through the scalar tail.
    let n = x.len().min(row.len() * per);
    // SAFETY: the CPU has AVX2 and FMA (a `Codes` exists only after detection), and AVX-512
    // F + VL when `vl`.
    let (head, done) = unsafe {
        match bits {
            4 if vl => dot4_vl(table, row, &x[..n]),
            4 => dot4(table, row, &x[..n]),
            2 => dot2(table, row, &x[..n]),
            _ => dot8(table, row, &x[..n]),
        }
    };
    let mask = (1usize << bits) - 1;
    let mut tail = 0.0;
    for (j, &xv) in x.iter().enumerate().skip(done) {
        let code = row.get(j * bits / 8).map_or(0, |&b| (b as usize >> (j * bits % 8)) & mask);
        tail += table[code] * xv;
    }
    head + tail
}

/// MaxPool whose `k × k` windows tile the rows (stride `k`, 2 or 3; no padding or dilation;
/// `ow · k ≤ w` and `oh · k ≤ h`) over `planes` planes of `h × w` in `x`, AVX-512: per output
/// row, `32 / k` outputs at a time from two loads of each window row, one permute per window
/// column. Each output is `fmax` folded over its window from −∞ in window order (rows, then
/// columns), as the portable row loop does (on the AVX2 tier 8 outputs at a time, from two
/// loads of each window row for 2 × 2 windows, three for 3 × 3). False, with nothing written,
/// without AVX2 or AVX-512 or when the shapes do not hold.
#[allow(clippy::too_many_arguments)]
pub(crate) fn max_pool_tiled(x: &[f32], planes: usize, h: usize, w: usize, k: usize, oh: usize, ow: usize, out: &mut [f32]) -> bool {
    let avx2 = !avx512vl() && avx2_fma();
    if !(avx512vl() || avx2)
        || !(2..=3).contains(&k)
        || ow.checked_mul(k).is_none_or(|v| v > w)
        || oh.checked_mul(k).is_none_or(|v| v > h)
        || planes.checked_mul(h * w).is_none_or(|n| n > x.len())
        || planes.checked_mul(oh * ow).is_none_or(|n| n > out.len())
    {
        return false;
    }
    if avx2 {
        // SAFETY: AVX2 detected; the bounds as below.
        unsafe {
            if k == 2 {
                max_pool2_avx2(x.as_ptr(), planes, h, w, oh, ow, out.as_mut_ptr())
            } else {
                max_pool3_avx2(x.as_ptr(), planes, h, w, oh, ow, out.as_mut_ptr())
            }
        };
        return true;
    }
    // SAFETY: AVX-512 F detected; every plane of `x` and `out` lies inside the slices (checked
    // above) and each output row reads input columns below `ow · k ≤ w` of rows below
    // `oh · k ≤ h`.
    unsafe { max_pool_tiled_core(x.as_ptr(), planes, h, w, k, oh, ow, out.as_mut_ptr()) };
    true
}

/// `fmax` (NaN from either side, `a` on ties) on 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn fmax_ymm(a: __m256, b: __m256) -> __m256 {
    let keep = _mm256_or_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(a, b), _mm256_cmp_ps::<_CMP_UNORD_Q>(a, a));
    _mm256_blendv_ps(b, a, keep)
}

/// [`max_pool_tiled`] for 2 × 2 windows on the AVX2 tier: per output row, 8 outputs at a time
/// from two loads of each window row (masked past the outputs' columns), split into its even
/// and odd columns; the caller guarantees the bounds.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn max_pool2_avx2(x: *const f32, planes: usize, h: usize, w: usize, oh: usize, ow: usize, out: *mut f32) {
    let ninf = _mm256_set1_ps(f32::NEG_INFINITY);
    let lanes = [_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15)];
    for p in 0..planes {
        for oy in 0..oh {
            let mut ox0 = 0;
            while ox0 < ow {
                let n = 8.min(ow - ox0);
                // Input columns `2·ox0 .. 2·(ox0 + n)` of each window row.
                let len = _mm256_set1_epi32(2 * n as i32);
                let m = [_mm256_cmpgt_epi32(len, lanes[0]), _mm256_cmpgt_epi32(len, lanes[1])];
                let mut acc = ninf;
                for ky in 0..2 {
                    // SAFETY: row `2·oy + ky < h` of plane `p`, its columns below `2n` past
                    // `2·ox0` (so below `w`); masked-off lanes are not accessed.
                    unsafe {
                        let row = x.add(p * h * w + (2 * oy + ky) * w + 2 * ox0);
                        let (lo, hi) = if n == 8 {
                            (_mm256_loadu_ps(row), _mm256_loadu_ps(row.add(8)))
                        } else {
                            (_mm256_maskload_ps(row, m[0]), _mm256_maskload_ps(row.wrapping_add(8), m[1]))
                        };
                        acc = fmax_ymm(fmax_ymm(acc, evens_pair(lo, hi)), odds_pair(lo, hi));
                    }
                }
                // SAFETY: outputs `ox0 .. ox0 + n` of row `oy` of plane `p`.
                unsafe { store_first(out.add(p * oh * ow + oy * ow + ox0), acc, n) };
                ox0 += n;
            }
        }
    }
}

/// [`max_pool_tiled`] for 3 × 3 windows on the AVX2 tier: per output row, 8 outputs at a time
/// from three loads of each window row (masked past the outputs' columns), split into its
/// columns `3j`, `3j + 1` and `3j + 2` (two blends and a permute each) and folded in window
/// order, so the values equal the window fold bit for bit; the caller guarantees the bounds.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn max_pool3_avx2(x: *const f32, planes: usize, h: usize, w: usize, oh: usize, ow: usize, out: *mut f32) {
    let ninf = _mm256_set1_ps(f32::NEG_INFINITY);
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    // Column `3j + c` of 24 consecutive floats `[a, b, d]` to lane `j`: lanes of `a`, `b`
    // and `d` blended so each holds one of them, then put in order.
    let order =
        [_mm256_setr_epi32(0, 3, 6, 1, 4, 7, 2, 5), _mm256_setr_epi32(1, 4, 7, 2, 5, 0, 3, 6), _mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7)];
    let split = |a: __m256, b: __m256, d: __m256| {
        [
            _mm256_permutevar8x32_ps(_mm256_blend_ps::<0b0010_0100>(_mm256_blend_ps::<0b1001_0010>(a, b), d), order[0]),
            _mm256_permutevar8x32_ps(_mm256_blend_ps::<0b0100_1001>(_mm256_blend_ps::<0b0010_0100>(a, b), d), order[1]),
            _mm256_permutevar8x32_ps(_mm256_blend_ps::<0b1001_0010>(_mm256_blend_ps::<0b0100_1001>(a, b), d), order[2]),
        ]
    };
    for p in 0..planes {
        for oy in 0..oh {
            let mut ox0 = 0;
            while ox0 < ow {
                let n = 8.min(ow - ox0);
                // Input columns `3·ox0 .. 3·(ox0 + n)` of each window row.
                let m: [__m256i; 3] = core::array::from_fn(|r| _mm256_cmpgt_epi32(_mm256_set1_epi32(3 * n as i32 - 8 * r as i32), lanes));
                let mut acc = ninf;
                for ky in 0..3 {
                    // SAFETY: row `3·oy + ky < h` of plane `p`, its columns below `3n` past
                    // `3·ox0` (so below `w`); masked-off lanes are not accessed.
                    unsafe {
                        let row = x.add(p * h * w + (3 * oy + ky) * w + 3 * ox0);
                        let v: [__m256; 3] = if n == 8 {
                            core::array::from_fn(|r| _mm256_loadu_ps(row.add(8 * r)))
                        } else {
                            core::array::from_fn(|r| _mm256_maskload_ps(row.wrapping_add(8 * r), m[r]))
                        };
                        for c in split(v[0], v[1], v[2]) {
                            acc = fmax_ymm(acc, c);
                        }
                    }
                }
                // SAFETY: outputs `ox0 .. ox0 + n` of row `oy` of plane `p`.
                unsafe { store_first(out.add(p * oh * ow + oy * ow + ox0), acc, n) };
                ox0 += n;
            }
        }
    }
}

/// `fmax` (NaN from either side, `a` on ties) on 16 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,avx512f")]
fn fmax_zmm(a: __m512, b: __m512) -> __m512 {
    let keep = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(a, b) | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, a);
    _mm512_mask_blend_ps(keep, b, a)
}

/// The loop of [`max_pool_tiled`]; the caller guarantees the bounds.
#[target_feature(enable = "avx2,fma,avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn max_pool_tiled_core(x: *const f32, planes: usize, h: usize, w: usize, k: usize, oh: usize, ow: usize, out: *mut f32) {
    // Outputs per step, and per window column the lanes `k·i + kx` of a register pair.
    let per = 32 / k;
    let mut idx = [_mm512_setzero_si512(); 3];
    for (kx, v) in idx.iter_mut().enumerate().take(k) {
        let mut l = [0i32; 16];
        for (i, e) in l.iter_mut().enumerate().take(per) {
            *e = (k * i + kx) as i32;
        }
        // SAFETY: 16 values.
        *v = unsafe { _mm512_loadu_si512(l.as_ptr().cast()) };
    }
    let ninf = _mm512_set1_ps(f32::NEG_INFINITY);
    for p in 0..planes {
        for oy in 0..oh {
            let mut ox0 = 0;
            while ox0 < ow {
                let n = per.min(ow - ox0);
                // Input columns `ox0·k .. (ox0 + n)·k` of each window row.
                let len = n * k;
                let (m0, m1) = ((u32::MAX >> (32 - len.min(16))) as u16, if len > 16 { (u32::MAX >> (32 - (len - 16))) as u16 } else { 0 });
                let mut acc = ninf;
                for ky in 0..k {
                    // SAFETY: row `oy·k + ky < h` of plane `p`, its columns below `len` past
                    // `ox0·k` (so below `w`); masked-off lanes are not accessed.
                    unsafe {
                        let row = x.add(p * h * w + (oy * k + ky) * w + ox0 * k);
                        let (lo, hi) = (masked_load(m0, row), masked_load(m1, row.wrapping_add(16)));
                        for v in idx.iter().take(k) {
                            acc = fmax_zmm(acc, _mm512_permutex2var_ps(lo, *v, hi));
                        }
                    }
                }
                // SAFETY: outputs `ox0 .. ox0 + n` of row `oy` of plane `p`.
                unsafe { _mm512_mask_storeu_ps(out.add(p * oh * ow + oy * ow + ox0), (u32::MAX >> (32 - n)) as u16, acc) };
                ox0 += n;
            }
        }
    }
}

/// Whether the AVX-512 kernels may run (host builds can turn them off to measure the AVX2 tier
/// on an AVX-512 CPU; see [`crate::kernels::set_avx512`]).
#[cfg(feature = "std")]
pub(crate) static AVX512_ON: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);

/// [`AVX512_ON`] (always true without `std`).
#[inline]
fn avx512_allowed() -> bool {
    #[cfg(feature = "std")]
    {
        AVX512_ON.load(core::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(feature = "std"))]
    {
        true
    }
}

/// Whether AVX-512 BW is available (masked byte loads) and allowed ([`avx512_allowed`]).
#[inline]
pub(crate) fn avx512bw() -> bool {
    #[cfg(target_feature = "avx512bw")]
    {
        avx512_allowed()
    }
    #[cfg(all(feature = "std", not(target_feature = "avx512bw")))]
    {
        avx512_allowed() && std::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(all(not(feature = "std"), not(target_feature = "avx512bw")))]
    {
        false
    }
}

/// Whether AVX-512 F and VL are available too (the 16-entry two-table permute) and allowed
/// ([`avx512_allowed`]).
#[inline]
pub(crate) fn avx512vl() -> bool {
    #[cfg(all(target_feature = "avx512f", target_feature = "avx512vl"))]
    {
        avx512_allowed()
    }
    #[cfg(all(feature = "std", not(all(target_feature = "avx512f", target_feature = "avx512vl"))))]
    {
        avx512_allowed() && std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(all(not(feature = "std"), not(all(target_feature = "avx512f", target_feature = "avx512vl"))))]
    {
        false
    }
}

/// `out[i] = quantize_dequantize(x[i])` (see `unary::quantize_dequantize`) over
/// `min(x.len(), out.len())` values, vectorized by the compiler for AVX2: the same IEEE
/// operations in the same order (no contraction into FMA), hence the same bits as the scalar loop.
/// Returns false (and writes nothing) when AVX2 + FMA are not available.
pub(crate) fn quantize_dequantize(x: &[f32], out: &mut [f32], scale: f32, min: f32, max: f32) -> bool {
    #[target_feature(enable = "avx2,fma")]
    fn run(x: &[f32], out: &mut [f32], scale: f32, min: f32, max: f32) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = super::unary::quantize_dequantize(v, scale, min, max);
        }
    }
    if !avx2_fma() {
        return false;
    }
    // SAFETY: AVX2 + FMA were detected.
    unsafe { run(x, out, scale, min, max) };
    true
}

/// Sum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// 4-bit codes, 8 weights per 4 bytes: the codes of one 32-bit word spread to 8 lanes, looked
/// up in the two 8-entry halves of the codebook and blended on bit 3. Returns the sum over the
/// first `done` inputs (a multiple of 8) and `done`.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot4(table: &[f32; 256], row: &[u8], x: &[f32]) -> (f32, usize) {
    let (lo, hi, shifts, nib) = nibble_setup!(table);
    let look = |word: u32| {
        let c = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(word as i32), shifts), nib);
        let sel = _mm256_castsi256_ps(_mm256_slli_epi32(c, 28));
        _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, c), _mm256_permutevar8x32_ps(hi, c), sel)
    };
    dot4_body!(row, x, look)
}

/// The one-row 4-bit loop of [`dot4`] and [`dot4_vl`], `$look` mapping a 32-bit word of 8 codes
/// to their 8 codebook values; two accumulators, 16 codes per step.
macro_rules! dot4_body {
    ($row:ident, $x:ident, $look:ident) => {{
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut j = 0;
        while j + 16 <= $x.len() {
            let b = u64::from_le_bytes($row[j / 2..j / 2 + 8].try_into().unwrap_or([0; 8]));
            // SAFETY (loads): j + 16 <= x.len().
            let (x0, x1) = unsafe { (_mm256_loadu_ps($x.as_ptr().add(j)), _mm256_loadu_ps($x.as_ptr().add(j + 8))) };
            a0 = _mm256_fmadd_ps($look(b as u32), x0, a0);
            a1 = _mm256_fmadd_ps($look((b >> 32) as u32), x1, a1);
            j += 16;
        }
        if j + 8 <= $x.len() {
            let b = u32::from_le_bytes($row[j / 2..j / 2 + 4].try_into().unwrap_or([0; 4]));
            // SAFETY (load): j + 8 <= x.len().
            let x0 = unsafe { _mm256_loadu_ps($x.as_ptr().add(j)) };
            a0 = _mm256_fmadd_ps($look(b), x0, a0);
            j += 8;
        }
        (hsum(_mm256_add_ps(a0, a1)), j)
    }};
}
use dot4_body;

/// [`dot4`] with one 16-entry two-table permute per 8 weights instead of two permutes and a blend.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
unsafe fn dot4_vl(table: &[f32; 256], row: &[u8], x: &[f32]) -> (f32, usize) {
    let (lo, hi, shifts, nib) = nibble_setup!(table);
    let look = |word: u32| _mm256_permutex2var_ps(lo, _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(word as i32), shifts), nib), hi);
    dot4_body!(row, x, look)
}

/// 2-bit codes, 8 weights per 2 bytes: one 4-entry lookup.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot2(table: &[f32; 256], row: &[u8], x: &[f32]) -> (f32, usize) {
    // SAFETY (loads): table has 256 values; x reads stay below j + 8 <= x.len().
    let t = unsafe { _mm256_loadu_ps(table.as_ptr()) };
    let shifts = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    let two = _mm256_set1_epi32(3);
    let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut j = 0;
    let look = |half: u32| _mm256_permutevar8x32_ps(t, _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(half as i32), shifts), two));
    while j + 16 <= x.len() {
        let b = u32::from_le_bytes(row[j / 4..j / 4 + 4].try_into().unwrap_or([0; 4]));
        let (x0, x1) = unsafe { (_mm256_loadu_ps(x.as_ptr().add(j)), _mm256_loadu_ps(x.as_ptr().add(j + 8))) };
        a0 = _mm256_fmadd_ps(look(b & 0xffff), x0, a0);
        a1 = _mm256_fmadd_ps(look(b >> 16), x1, a1);
        j += 16;
    }
    if j + 8 <= x.len() {
        let b = u16::from_le_bytes([row[j / 4], row[j / 4 + 1]]) as u32;
        let x0 = unsafe { _mm256_loadu_ps(x.as_ptr().add(j)) };
        a0 = _mm256_fmadd_ps(look(b), x0, a0);
        j += 8;
    }
    (hsum(_mm256_add_ps(a0, a1)), j)
}

/// 8-bit codes: 8 bytes widened to 8 lanes and gathered from the 256-entry codebook.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot8(table: &[f32; 256], row: &[u8], x: &[f32]) -> (f32, usize) {
    let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut j = 0;
    // SAFETY: every gathered index is a byte (< 256 = table.len()); x reads stay below
    // j + 8 <= x.len(); the 8-byte code loads are bounds-checked slices.
    let look = |b: u64| unsafe { _mm256_i32gather_ps::<4>(table.as_ptr(), _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(b as i64))) };
    while j + 16 <= x.len() {
        let b0 = u64::from_le_bytes(row[j..j + 8].try_into().unwrap_or([0; 8]));
        let b1 = u64::from_le_bytes(row[j + 8..j + 16].try_into().unwrap_or([0; 8]));
        let (x0, x1) = unsafe { (_mm256_loadu_ps(x.as_ptr().add(j)), _mm256_loadu_ps(x.as_ptr().add(j + 8))) };
        a0 = _mm256_fmadd_ps(look(b0), x0, a0);
        a1 = _mm256_fmadd_ps(look(b1), x1, a1);
        j += 16;
    }
    if j + 8 <= x.len() {
        let b0 = u64::from_le_bytes(row[j..j + 8].try_into().unwrap_or([0; 8]));
        let x0 = unsafe { _mm256_loadu_ps(x.as_ptr().add(j)) };
        a0 = _mm256_fmadd_ps(look(b0), x0, a0);
        j += 8;
    }
    (hsum(_mm256_add_ps(a0, a1)), j)
}

/// Proof that AVX2 + FMA were detected (only [`Fma::detect`] makes one), with whether AVX-512
/// F + VL are there too: the f32 GEMM tile, dot products and the vectorised depthwise loops
/// behind it may run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fma {
    avx512: bool,
}

impl Fma {
    /// `Some` when the CPU has AVX2 and FMA.
    #[inline]
    pub(crate) fn detect() -> Option<Fma> {
        avx2_fma().then(|| Fma { avx512: avx512vl() })
    }

    /// The same capability without the AVX-512 tile (tests of the AVX2 path on AVX-512 CPUs).
    #[cfg(test)]
    pub(crate) fn avx2_only(self) -> Fma {
        Fma { avx512: false }
    }

    /// Whether the AVX-512 kernels are on.
    pub(crate) fn has_avx512(self) -> bool {
        self.avx512
    }

    /// Most rows [`Fma::tile`] takes: 12 with AVX-512 (one 16-lane register per row), else 6.
    #[inline]
    pub(crate) fn rows(self) -> usize {
        if self.avx512 {
            12
        } else {
            6
        }
    }

    /// `c[i·ldc + j] += Σ_{k<kc} a[i·lda + k] · b[k·ldb + j]` for `i < R`, `j < 16`
    /// (sums taken per `(i, j)` in `k` order, each step one fused multiply-add).
    ///
    /// # Panics
    /// When `R` is 0 or more than [`Fma::rows`], or a slice is shorter than the indices above
    /// need.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tile<const R: usize>(self, kc: usize, a: &[f32], lda: usize, b: &[f32], ldb: usize, c: &mut [f32], ldc: usize) {
        assert!(R >= 1 && R <= self.rows(), "tile: 1..={} rows", self.rows());
        if kc == 0 {
            return;
        }
        assert!(
            a.len() >= (R - 1) * lda + kc && b.len() >= (kc - 1) * ldb + 16 && c.len() >= (R - 1) * ldc + 16,
            "tile: operands too short"
        );
        // SAFETY: AVX2 + FMA (and AVX-512 F when `avx512`) detected (`self`); every index read
        // or written is bounded by the lengths asserted above.
        unsafe {
            if self.avx512 {
                tile_avx512::<R>(kc, a.as_ptr(), lda, b.as_ptr(), ldb, c.as_mut_ptr(), ldc)
            } else {
                tile_avx2::<R>(kc, a.as_ptr(), lda, b.as_ptr(), ldb, c.as_mut_ptr(), ldc)
            }
        }
    }

    /// Whether pixel-tile pairs go through a `RowTab`, and partial pairs of a direct Conv are
    /// read in place ([`Fma::tile_out`] reads both with masked AVX-512 loads).
    #[inline]
    pub(super) fn tabbed(self) -> bool {
        self.avx512
    }

    /// [`super::gemm::Micro::tile_out`] with AVX-512 (panels of up to 32 columns, and pairs
    /// read through a `RowTab`): the sums start from the bias or `out` and leave through the
    /// activation in registers, with masked loads and stores for the `np` columns.
    ///
    /// # Panics
    /// When a slice is shorter than the tile needs.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn tile_out<const R: usize>(
        self,
        kc: usize,
        a: &[f32],
        lda: usize,
        b: super::gemm::Bop<'_>,
        out: &mut [f32],
        ldo: usize,
        np: usize,
        bias: Option<&[f32]>,
        act: Option<Activation>,
    ) -> bool {
        use super::gemm::Bop;
        if !self.avx512 || R == 0 || R > self.rows() || np == 0 || np > 32 {
            return false;
        }
        assert!(kc == 0 || a.len() >= (R - 1) * lda + kc, "tile_out: a too short");
        assert!(out.len() >= (R - 1) * ldo + np, "tile_out: out too short");
        assert!(bias.is_none_or(|b| b.len() >= R), "tile_out: bias too short");
        let lanes = |n: usize| if n >= 16 { u16::MAX } else { ((1u32 << n) - 1) as u16 };
        let m = (lanes(np), lanes(np.saturating_sub(16)));
        let bias = bias.map(|b| b.as_ptr());
        let (a, c) = (a.as_ptr(), out.as_mut_ptr());
        match b {
            Bop::Panel { b, ldb } => {
                // Each half reads the lanes it stores (a partial pair of a direct Conv is read in
                // place up to its plane's end).
                let need = |h: usize| (kc - 1) * ldb + np.saturating_sub(16 * h).min(16);
                assert!(kc == 0 || (0..2).all(|h| b[h].len() >= need(h)), "tile_out: b too short");
                let b = [b[0].as_ptr(), b[1].as_ptr()];
                // SAFETY: AVX-512 F detected (`self`); `a`, the lanes of `b` in `m`, `bias` and
                // the `np` columns of the `R` rows of `out` are inside their slices (asserted
                // above); masked-off lanes are not accessed.
                unsafe {
                    match np {
                        32 => out_panel_avx512::<R, false>(kc, a, lda, b, ldb, c, ldo, m, bias, act),
                        17.. => out_panel_avx512::<R, true>(kc, a, lda, b, ldb, c, ldo, m, bias, act),
                        _ => out_panel1_avx512::<R>(kc, a, lda, b[0], ldb, c, ldo, m.0, bias, act),
                    }
                }
            }
            Bop::Tab { src, t } => {
                assert!(src.len() >= t.len() && t.rows().len() >= kc, "tile_out: rows too short");
                let src = src.as_ptr().wrapping_offset(t.shift());
                // SAFETY: as above; every lane loaded from `src` lies inside it (the `RowTab`
                // guarantee).
                unsafe { out_tab_avx512::<R>(kc, a, lda, src, t.rows().as_ptr(), c, ldo, m, bias, act) }
            }
        }
        true
    }

    /// `dst[j] = src[j]` for `lo ≤ j < lo + span`, `0.0` for the other `j < 16`.
    #[inline]
    pub(crate) fn window16(self, dst: &mut [f32; 16], src: &[f32; 16], lo: u32, span: u32) {
        // SAFETY: AVX2 + FMA (and AVX-512 F when `avx512`) detected; both arrays hold 16 values.
        unsafe {
            if self.avx512 {
                window16_avx512(dst, src, lo, span)
            } else {
                window16_avx2(dst, src, lo, span)
            }
        }
    }

    /// `dst[i] = src[2·i]` for every `i` both hold: 16 values per two-source permute
    /// (AVX-512, the tail masked), or 8 per two shuffles and a lane permute (AVX2, the tail one
    /// at a time).
    #[inline]
    pub(crate) fn evens(self, dst: &mut [f32], src: &[f32]) {
        // Whole blocks of 32 source values.
        let blocks = dst.len().min(src.len() / 2) / 16;
        // The values after them: `src` holds `2·n − 1` for `n` more.
        let n = (dst.len() - 16 * blocks).min((src.len() - 32 * blocks).div_ceil(2)).min(16);
        // SAFETY: AVX2 + FMA (and AVX-512 F when `avx512`) detected; `16·blocks + n` values of
        // `dst` and `32·blocks + 2·n − 1` of `src`.
        unsafe {
            if self.avx512 {
                evens_avx512(dst.as_mut_ptr(), src.as_ptr(), blocks, n);
                return;
            }
            evens_avx2(dst.as_mut_ptr(), src.as_ptr(), blocks)
        }
        super::gemm::evens_scalar(&mut dst[16 * blocks..], src.get(32 * blocks..).unwrap_or(&[]));
    }

    /// [`Fma::evens`] on `rows` rows at once: `dst[r·ds + i] = src[r·ss + 2·i]` for `i < n`. False
    /// (nothing written) without AVX-512 or when a row would reach past either slice.
    #[inline]
    pub(crate) fn evens_rows(self, dst: &mut [f32], src: &[f32], rows: usize, n: usize, ds: usize, ss: usize) -> bool {
        let last = rows.checked_sub(1);
        let fits = |len: usize, stride: usize, width: usize| {
            last.and_then(|l| l.checked_mul(stride)).and_then(|v| v.checked_add(width)).is_some_and(|end| end <= len)
        };
        if !self.avx512 || n == 0 || !fits(dst.len(), ds, n) || !fits(src.len(), ss, 2 * n - 1) {
            return false;
        }
        // SAFETY: AVX-512 F detected; row `r` writes `dst[r·ds .. r·ds + n]` and reads
        // `src[r·ss .. r·ss + 2·n − 1]`, inside both slices (checked above).
        unsafe { evens_rows_avx512(dst.as_mut_ptr(), src.as_ptr(), rows, n, ds, ss) };
        true
    }

    /// `f` on the stride-2 phases of the `c` planes `x` (`h × w` each, [`Fma::split2`]'s
    /// layout one plane after the other) split into stack memory nobody clears, since
    /// [`Fma::split2`]'s loops write every float (clearing 64 KiB for ResNet-8's 16-channel
    /// stride-2 layer cost more than the split itself). `None`, `f` not run, when `x` holds
    /// fewer than `c` planes or the phases exceed `PHASES_MAX` floats.
    pub(crate) fn with_phases<R>(self, x: &[f32], c: usize, h: usize, w: usize, f: impl FnOnce(&mut [f32]) -> R) -> Option<R> {
        let per = 4 * h.div_ceil(2) * w.div_ceil(2);
        let len = c.checked_mul(per).filter(|&l| l <= super::gemm::PHASES_MAX)?;
        if w == 0 || c.checked_mul(h * w).is_none_or(|n| n > x.len()) {
            return None;
        }
        Some(match len {
            0..=2048 => phases_in::<2048, R>(self, x, c, h, w, f),
            2049..=4096 => phases_in::<4096, R>(self, x, c, h, w, f),
            4097..=8192 => phases_in::<8192, R>(self, x, c, h, w, f),
            _ => phases_in::<{ super::gemm::PHASES_MAX }, R>(self, x, c, h, w, f),
        })
    }

    /// [`super::gemm::split2_scalar`]: 16 values of each column phase per two-source permute
    /// pair (AVX-512, row tails masked), or 8 per two shuffles and a lane permute (AVX2, row
    /// tails one at a time); every float of `dst`'s first `4·⌈h/2⌉·⌈w/2⌉` written.
    #[inline]
    pub(crate) fn split2(self, x: &[f32], h: usize, w: usize, dst: &mut [f32]) {
        let (hq, wq) = (h.div_ceil(2), w.div_ceil(2));
        if x.len() < h * w || dst.len() < 4 * hq * wq || w == 0 {
            return super::gemm::split2_scalar(x, h, w, dst);
        }
        // SAFETY: `x` holds `h·w` values and `dst` `4·hq·wq` (checked above).
        unsafe { split2_tier(self, x.as_ptr(), h, w, dst.as_mut_ptr()) }
    }

    /// Row `r` of `dst` (16 values each, as many rows as both hold) gets `src[idx[j] + off]`
    /// in the lanes `j` set in `mask`, with `(off, mask) = rows[r]`, when that index lies in
    /// `0 .. src.len()`; `0.0` in the other lanes (a total function: lanes out of range are masked
    /// off, never read).
    #[inline]
    pub(crate) fn gather_rows(self, dst: &mut [f32], src: &[f32], idx: &[i32; 16], rows: &[(i32, u16)]) {
        let n = rows.len().min(dst.len() / 16);
        let len = src.len().min(i32::MAX as usize) as i32;
        // SAFETY: AVX2 + FMA (and AVX-512 F when `avx512`) detected; `dst` holds `16·n` values;
        // every lane read is masked to `0 ≤ index < len ≤ src.len()`.
        unsafe {
            if self.avx512 {
                gather_rows_avx512(dst.as_mut_ptr(), src.as_ptr(), len, idx, &rows[..n])
            } else {
                gather_rows_avx2(dst.as_mut_ptr(), src.as_ptr(), len, idx, &rows[..n])
            }
        }
    }

    /// `Σ_k w_r[k] · x[k]` for the four rows `w_r` (each at least `x.len()` long), each input
    /// loaded once for the four rows; 16 lanes per row with AVX-512 (the tail masked), else 8,
    /// so the order differs from [`super::dense::dot`].
    ///
    /// # Panics
    /// When a row is shorter than `x`.
    #[inline]
    pub(crate) fn dot4(self, w: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
        assert!(w.iter().all(|r| r.len() >= x.len()), "dot4: rows shorter than x");
        // SAFETY: AVX2 + FMA (and AVX-512 F when `avx512`) detected; indices below `x.len()`
        // on every row (asserted).
        unsafe {
            if self.avx512 {
                dot4_f32_avx512(w, x)
            } else {
                dot4_f32(w, x)
            }
        }
    }

    /// Eight dot products of rows with the same `x`, each row's sum [`Fma::dot4`]'s bit for
    /// bit: with AVX-512 eight independent sums in flight instead of four (the same 16-lane
    /// partial sums, reduced by the same tree); else two [`Fma::dot4`].
    #[inline]
    pub(crate) fn dot8(self, w: [&[f32]; 8], x: &[f32]) -> [f32; 8] {
        assert!(w.iter().all(|r| r.len() >= x.len()), "dot8: rows shorter than x");
        if !self.avx512 {
            // Eight AVX2 sums in flight timed level with two four-row passes (hello_edge_dnn
            // 4.3–4.4 µs both, `sprig bench --no-avx512`).
            let (a, b) = (self.dot4([w[0], w[1], w[2], w[3]], x), self.dot4([w[4], w[5], w[6], w[7]], x));
            return [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]];
        }
        // SAFETY: AVX-512 F detected; indices below `x.len()` on every row (asserted).
        unsafe { dot8_f32_avx512(w, x) }
    }

    /// `Σ_k a[k] · b[k]` over the shorter length, 8 lanes.
    #[inline]
    pub(crate) fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        // SAFETY: AVX2 + FMA detected; indices below `n`.
        unsafe { dot_f32(&a[..n], &b[..n]) }
    }

    /// [`super::gemm::gather_rows_scalar`] with `idx[j] = base + 2·j`, as two masked loads and
    /// a permute per row, with AVX-512; false (nothing written) without it.
    #[inline]
    pub(crate) fn load_rows2(self, dst: &mut [f32], src: &[f32], base: i32, rows: &[(i32, u16)]) -> bool {
        if !self.avx512 {
            return false;
        }
        let n = rows.len().min(dst.len() / 16);
        // SAFETY: AVX-512 F detected; `dst` holds `16·n` values; only lanes with an index in
        // `0 .. src.len()` are loaded (`row_lanes2`).
        unsafe { load_rows2_avx512(dst.as_mut_ptr(), src.as_ptr(), src.len(), base, &rows[..n]) }
        true
    }

    /// [`super::gemm::gather_rows_scalar`] with `idx[j] = base + (j / 4)·stride + j % 4`, as
    /// four 4-float loads per row ANDed with the lanes' mask (on both tiers; on AVX2 it
    /// replaces the gather instruction); false (nothing written) when some row's four runs are
    /// not all inside `src`.
    #[inline]
    pub(crate) fn load_rows4(self, dst: &mut [f32], src: &[f32], base: i32, stride: i32, rows: &[(i32, u16)]) -> bool {
        let n = rows.len().min(dst.len() / 16);
        // Offsets ascend within a batch (a tile's rows are taps, then planes, in order), but
        // each row is checked: the first and last bound nothing in general.
        let (b, len) = (base as i64, src.len() as i64);
        if stride < 0 || !rows[..n].iter().all(|&(off, _)| b + off as i64 >= 0 && b + off as i64 + 3 * stride as i64 + 4 <= len) {
            return false;
        }
        // SAFETY: AVX2 detected (a `Fma` exists); `dst` holds `16·n` values; every row's four
        // runs of four floats lie inside `src` (checked above).
        unsafe { load_rows4_avx2(dst.as_mut_ptr(), src.as_ptr(), base, stride as usize, &rows[..n]) };
        true
    }

    /// [`super::gemm::load_rows_scalar`] with masked contiguous loads.
    #[inline]
    pub(crate) fn load_rows(self, dst: &mut [f32], src: &[f32], base: i32, rows: &[(i32, u16)]) {
        let n = rows.len().min(dst.len() / 16);
        // SAFETY: AVX2 + FMA (and AVX-512 F when `avx512`) detected; `dst` holds `16·n` values;
        // only lanes with an index in `0 .. src.len()` are loaded.
        unsafe {
            if self.avx512 {
                load_rows_avx512(dst.as_mut_ptr(), src.as_ptr(), src.len(), base, &rows[..n])
            } else {
                load_rows_avx2(dst.as_mut_ptr(), src.as_ptr(), src.len(), base, &rows[..n])
            }
        }
    }

    /// [`super::depthwise::dw_taps_scalar`] with masked loads and stores: one 16-lane AVX-512
    /// register per block, or two 8-lane AVX2 halves.
    #[inline]
    pub(super) fn dw_taps(self, t: &Taps, x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
        let n = t.channels(x, w, b, out);
        // SAFETY: AVX2 + FMA (and AVX-512 F when `avx512`) detected; channels below `n` have
        // their planes, filters and bias inside the slices (`Taps::channels`), and every lane
        // loaded or stored lies inside its plane (the `Taps` guarantee).
        unsafe {
            if self.avx512 {
                dw_taps_avx512(t, x.as_ptr(), w.as_ptr(), b.as_ptr(), out.as_mut_ptr(), n)
            } else {
                dw_taps_avx2(t, x.as_ptr(), w.as_ptr(), b.as_ptr(), out.as_mut_ptr(), n)
            }
        }
    }

    /// [`super::depthwise::conv_taps_scalar`] bit for bit with AVX-512 masked loads: each tap's
    /// 16-lane blocks loaded once for four filters; the scalar definition without AVX-512.
    #[inline]
    pub(super) fn conv_taps(self, t: &Taps, x: &[f32], cin: usize, w: &[f32], b: &[f32], out: &mut [f32]) {
        let n = t.filters(x, cin, w, b, out);
        if !self.avx512 {
            return super::depthwise::conv_taps_scalar(t, x, cin, w, b, out);
        }
        // SAFETY: AVX-512 F detected; `x` holds `cin` input planes and filters below `n` have
        // their weights, bias and output planes inside the slices (`Taps::filters`); every lane
        // loaded or stored lies inside its plane (the `Taps` guarantee).
        unsafe {
            let (x, w, b, o) = (x.as_ptr(), w.as_ptr(), b.as_ptr(), out.as_mut_ptr());
            match t.store().iter().rposition(|&m| m != 0) {
                Some(0) => conv_taps_avx512::<1>(t, x, cin, w, b, o, n),
                Some(1) => conv_taps_avx512::<2>(t, x, cin, w, b, o, n),
                Some(2) => conv_taps_avx512::<3>(t, x, cin, w, b, o, n),
                Some(_) => conv_taps_avx512::<TB>(t, x, cin, w, b, o, n),
                None => {}
            }
        }
    }

    /// Whether [`Fma::dw_s2`] and [`Fma::conv_s2`] have their kernels: on every tier (AVX-512
    /// with the even-lane permute of two registers, AVX2 with two shuffles per 8 lanes).
    #[inline]
    pub(super) fn dw_s2_ready(self) -> bool {
        true
    }

    /// A 3 × 3, stride-1 depthwise layer padded by one on every side (`h × wd` output planes,
    /// as the input's) for `n` channels on the AVX2 tier (not AVX-512, which keeps its own):
    /// [`super::depthwise::dw_taps_scalar`]'s sums bit for bit — from the bias (0 without
    /// one), each tap fused in `(ky, kx)` order, `w · 0` where it leaves the plane — and
    /// activation. False (nothing written) elsewhere, for planes wider than [`DW3_W`] or when
    /// the slices are short.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dw3_same(
        self,
        h: usize,
        wd: usize,
        x: &[f32],
        w: &[f32],
        b: Option<&[f32]>,
        act: Activation,
        out: &mut [f32],
        n: usize,
    ) -> bool {
        let p = h * wd;
        if self.avx512
            || !(1..=DW3_W).contains(&wd)
            || h == 0
            || p >= 1 << 24
            || x.len() < n * p
            || out.len() < n * p
            || w.len() < 9 * n
            || b.is_some_and(|b| b.len() < n)
        {
            return false;
        }
        // SAFETY: AVX2 + FMA detected (`self`); the slices hold `n` planes, filters and biases
        // (checked above).
        unsafe { dw3_same_avx2(h, wd, x.as_ptr(), w.as_ptr(), b.map(|b| b.as_ptr()), act, out.as_mut_ptr(), n) };
        true
    }

    /// Whether [`Fma::dw_s1`] has its kernel for the layer `s` and runs it faster than the
    /// position-group kernel ([`Fma::dw_taps`]): the AVX2 tier on rows of at least
    /// [`super::depthwise::DW1_OW`] outputs, AVX-512 on 3 × 3 kernels and rows of at least
    /// [`super::depthwise::DW1_OW_AVX512`].
    #[inline]
    pub(super) fn dw_s1_ready(self, s: &S2) -> bool {
        if self.avx512 {
            (s.s, s.kh, s.kw) == (1, 3, 3) && s.ow >= super::depthwise::DW1_OW_AVX512
        } else {
            s.ow >= super::depthwise::DW1_OW
        }
    }

    /// [`super::depthwise::dw_s1_scalar`], bit for bit: 8 outputs of a row per register, four
    /// output rows at a time, each input row loaded once per 8 outputs and tap column.
    #[inline]
    pub(super) fn dw_s1(self, s: &S2, x: &[f32], w: &[f32], b: &[f32], act: Activation, out: &mut [f32]) {
        let n = s.channels(x, w, b, out);
        if self.avx512 && (s.s, s.kh, s.kw) == (1, 3, 3) {
            // SAFETY: AVX-512 F detected; channels below `n` have their planes, filters, bias
            // and outputs inside the slices (`S2::channels`); every lane loaded lies inside its
            // input row (the column masks) of a row inside the plane (rows outside load
            // nothing), and every lane stored is an output of the channel.
            return unsafe { dw_s1_avx512(s, x.as_ptr(), w.as_ptr(), b.as_ptr(), act, out.as_mut_ptr(), n) };
        }
        if s.s != 1 || s.kw > S_AVX2_KW {
            return super::depthwise::dw_s1_scalar(s, x, w, b, act, out);
        }
        // SAFETY: AVX2 + FMA detected (`self`); channels below `n` have their planes, filters,
        // bias and outputs inside the slices (`S2::channels`).
        unsafe { dw_s1_avx2(s, x.as_ptr(), w.as_ptr(), b.as_ptr(), act, out.as_mut_ptr(), n) }
    }

    /// Whether [`Fma::conv_taps`] has its kernel (AVX-512 masked loads); else shared-plane
    /// layers keep the tiled product.
    #[inline]
    pub(super) fn shared_ready(self) -> bool {
        self.avx512
    }

    /// [`super::depthwise::dw_s2_scalar`], bit for bit: 16 outputs of a row per register, each
    /// tap one pair of masked loads of the input row (lanes in the padding masked off) and an
    /// even-lane permute, four output rows at a time; the activation applied in registers.
    #[inline]
    pub(super) fn dw_s2(self, s: &S2, x: &[f32], w: &[f32], b: &[f32], act: Activation, out: &mut [f32]) {
        let n = s.channels(x, w, b, out);
        if !self.avx512 {
            if s.kw > S_AVX2_KW {
                return super::depthwise::dw_s2_scalar(s, x, w, b, act, out);
            }
            // SAFETY: AVX2 + FMA detected; the bounds as below.
            return unsafe { dw_s2_avx2(s, x.as_ptr(), w.as_ptr(), b.as_ptr(), act, out.as_mut_ptr(), n) };
        }
        // SAFETY: AVX-512 F detected; channels below `n` have their planes, filters, bias and
        // outputs inside the slices (`S2::channels`); every lane loaded lies inside its input
        // row (the column masks) of a row inside the plane (rows outside load nothing), and
        // every lane stored is an output of the channel.
        unsafe { dw_s2_avx512(s, x.as_ptr(), w.as_ptr(), b.as_ptr(), act, out.as_mut_ptr(), n) }
    }

    /// [`super::depthwise::conv_s2_scalar`], bit for bit: 16 outputs of a row per register for
    /// eight filters and two output rows at a time, each input row loaded once per 16 outputs
    /// and split into its tap vectors, the activation applied in registers.
    #[inline]
    pub(super) fn conv_s2(self, s: &S2, x: &[f32], w: &[f32], b: &[f32], act: Activation, out: &mut [f32]) {
        let n = s.filters(x, w, b, out);
        if !self.avx512 && s.kw <= S_AVX2_KW && (s.s == 1 || s.s == 2) {
            // SAFETY: AVX2 + FMA detected; the bounds as below.
            unsafe {
                let (x, w, b, o) = (x.as_ptr(), w.as_ptr(), b.as_ptr(), out.as_mut_ptr());
                return if s.s == 1 { conv_s_avx2::<1>(s, x, w, b, act, o, n) } else { conv_s_avx2::<2>(s, x, w, b, act, o, n) };
            }
        }
        if !self.avx512 || (s.s != 1 && s.kw > 3) || s.kw > MAX_TAPS {
            return super::depthwise::conv_s2_scalar(s, x, w, b, act, out);
        }
        // SAFETY: AVX-512 F detected; filters below `n` have their weights, bias and outputs
        // inside the slices and the `cg` input planes are inside `x` (`S2::filters`); every
        // lane loaded lies inside its input row of a row inside the plane, and every lane
        // stored is an output of the filter.
        unsafe {
            if s.s == 1 {
                conv_s1_avx512(s, x.as_ptr(), w.as_ptr(), b.as_ptr(), act, out.as_mut_ptr(), n)
            } else {
                conv_s2_avx512(s, x.as_ptr(), w.as_ptr(), b.as_ptr(), act, out.as_mut_ptr(), n)
            }
        }
    }

    /// [`super::gemm::Micro::im_1x1`] with AVX-512: 32 outputs × up to 12 positions in
    /// registers, one pair of weight-row loads and one broadcast per position and input.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn im_1x1(
        self,
        x: &[f32],
        hw: usize,
        c: usize,
        wt: &[f32],
        m: usize,
        bias: &[f32],
        act: Activation,
        out: &mut [f32],
    ) -> bool {
        if !super::gemm::im_fits(x, hw, c, wt, m, bias, out) {
            return false;
        }
        let b = if bias.is_empty() { None } else { Some(bias.as_ptr()) };
        if !self.avx512 {
            // SAFETY: AVX2 + FMA detected; the bounds checked above.
            unsafe { im_1x1_avx2(x.as_ptr(), hw, c, wt.as_ptr(), m, b, act, out.as_mut_ptr()) };
            return true;
        }
        let mut p0 = 0;
        while p0 < hw {
            let np = IM_BLOCK.min(hw - p0);
            // SAFETY: AVX-512 F detected; positions `p0 .. p0 + np` lie inside every input and
            // output plane, inputs below `c` and outputs below `m` inside the slices (checked
            // above); the weight and bias loads are masked to the outputs below `m`.
            unsafe {
                let (xp, op) = (x.as_ptr().add(p0), out.as_mut_ptr().add(p0));
                match np {
                    12 => im_1x1_avx512::<12>(xp, hw, c, wt.as_ptr(), m, b, act, op),
                    11 => im_1x1_avx512::<11>(xp, hw, c, wt.as_ptr(), m, b, act, op),
                    10 => im_1x1_avx512::<10>(xp, hw, c, wt.as_ptr(), m, b, act, op),
                    9 => im_1x1_avx512::<9>(xp, hw, c, wt.as_ptr(), m, b, act, op),
                    8 => im_1x1_avx512::<8>(xp, hw, c, wt.as_ptr(), m, b, act, op),
                    7 => im_1x1_avx512::<7>(xp, hw, c, wt.as_ptr(), m, b, act, op),
                    6 => im_1x1_avx512::<6>(xp, hw, c, wt.as_ptr(), m, b, act, op),
                    5 => im_1x1_avx512::<5>(xp, hw, c, wt.as_ptr(), m, b, act, op),
                    4 => im_1x1_avx512::<4>(xp, hw, c, wt.as_ptr(), m, b, act, op),
                    3 => im_1x1_avx512::<3>(xp, hw, c, wt.as_ptr(), m, b, act, op),
                    2 => im_1x1_avx512::<2>(xp, hw, c, wt.as_ptr(), m, b, act, op),
                    _ => im_1x1_avx512::<1>(xp, hw, c, wt.as_ptr(), m, b, act, op),
                }
            }
            p0 += np;
        }
        true
    }

    /// Runs `f` in a function compiled for AVX2 + FMA (and AVX-512 F + VL when detected), so
    /// the SIMD helpers `f` calls inline into it and loops the compiler vectorises use the wide
    /// registers (the result is what `f` computes; only instruction choice differs).
    #[inline]
    pub(crate) fn run<T>(self, f: impl FnOnce() -> T) -> T {
        // SAFETY: AVX2 + FMA detected (`self`), and AVX-512 F + VL when `avx512`.
        unsafe {
            if self.avx512 {
                run_avx512(f)
            } else {
                run_avx2(f)
            }
        }
    }
}

#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
unsafe fn run_avx512<T>(f: impl FnOnce() -> T) -> T {
    f()
}

#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// [`Fma::tile`] on raw pointers; the caller guarantees the bounds.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const R: usize>(kc: usize, a: *const f32, lda: usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize) {
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for (i, r) in acc.iter_mut().enumerate() {
        // SAFETY (all loads and stores here): bounded by the caller's length checks.
        unsafe {
            r[0] = _mm256_loadu_ps(c.add(i * ldc));
            r[1] = _mm256_loadu_ps(c.add(i * ldc + 8));
        }
    }
    for k in 0..kc {
        let (b0, b1) = unsafe { (_mm256_loadu_ps(b.add(k * ldb)), _mm256_loadu_ps(b.add(k * ldb + 8))) };
        for (i, r) in acc.iter_mut().enumerate() {
            let av = unsafe { _mm256_broadcast_ss(&*a.add(i * lda + k)) };
            r[0] = _mm256_fmadd_ps(av, b0, r[0]);
            r[1] = _mm256_fmadd_ps(av, b1, r[1]);
        }
    }
    for (i, r) in acc.iter().enumerate() {
        unsafe {
            _mm256_storeu_ps(c.add(i * ldc), r[0]);
            _mm256_storeu_ps(c.add(i * ldc + 8), r[1]);
        }
    }
}

/// `act` on 16 lanes, as [`Activation::apply`] does on each (the same selects: ReLU and
/// Threshold send NaN to 0, Clip keeps it).
#[inline(always)]
pub(super) fn act_zmm(act: Option<Activation>, v: __m512) -> __m512 {
    // SAFETY: only reached from AVX-512 F functions (the callers below).
    unsafe {
        match act {
            None | Some(Activation::None) => v,
            // `max(a, b)` = `a > b ? a : b`: `v > 0 ? v : 0`.
            Some(Activation::Relu) => _mm512_max_ps(v, _mm512_setzero_ps()),
            // `min < v ? ... `: `max(min, v)` = `min > v ? min : v`, then `max < y ? max : y`.
            Some(Activation::Clip { min, max }) => _mm512_min_ps(_mm512_set1_ps(max), _mm512_max_ps(_mm512_set1_ps(min), v)),
            Some(Activation::Threshold { alpha }) => _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, _mm512_set1_ps(alpha)), v),
        }
    }
}

/// `act` on 8 lanes, as [`Activation::apply`] does on each (the selects of [`act_zmm`]).
#[inline(always)]
pub(super) fn act_ymm(act: Activation, v: __m256) -> __m256 {
    // SAFETY: only reached from AVX2 functions (the callers below).
    unsafe {
        match act {
            Activation::None => v,
            // `max(a, b)` = `a > b ? a : b`: `v > 0 ? v : 0`.
            Activation::Relu => _mm256_max_ps(v, _mm256_setzero_ps()),
            // `max(min, v)` = `min > v ? min : v`, then `max < y ? max : y`.
            Activation::Clip { min, max } => _mm256_min_ps(_mm256_set1_ps(max), _mm256_max_ps(_mm256_set1_ps(min), v)),
            Activation::Threshold { alpha } => _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, _mm256_set1_ps(alpha)), v),
        }
    }
}

/// The body of [`Fma::tile_out`] over `H` (1 or 2) 16-lane halves: `load(k)` gives row `k`
/// of `B`; the caller guarantees the bounds.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn out_core<const R: usize, const H: usize>(
    kc: usize,
    a: *const f32,
    lda: usize,
    load: impl Fn(usize) -> [__m512; H],
    c: *mut f32,
    ldc: usize,
    m: [u16; H],
    bias: Option<*const f32>,
    act: Option<Activation>,
) {
    // SAFETY (all loads and stores here): bounded by the caller's checks; masked-off lanes are
    // not accessed.
    let mut acc: [[__m512; H]; R] = match bias {
        Some(b) => core::array::from_fn(|i| [unsafe { _mm512_set1_ps(*b.add(i)) }; H]),
        None => {
            core::array::from_fn(|i| core::array::from_fn(|h| unsafe { _mm512_maskz_loadu_ps(m[h], c.add(i * ldc).wrapping_add(16 * h)) }))
        }
    };
    for k in 0..kc {
        let b = load(k);
        for (i, r) in acc.iter_mut().enumerate() {
            unsafe {
                let av = _mm512_set1_ps(*a.add(i * lda + k));
                for (r, &b) in r.iter_mut().zip(&b) {
                    *r = _mm512_fmadd_ps(av, b, *r);
                }
            }
        }
    }
    // SAFETY: the caller's guarantee.
    unsafe { out_store::<R, H>(acc, c, ldc, m, act) }
}

/// The stores of [`out_core`], apart so the activation's constants do not take registers the
/// accumulators need during the sum (and the accumulators stay in registers: passed by value,
/// not borrowed); the caller guarantees the bounds.
#[target_feature(enable = "avx2,fma,avx512f")]
#[inline(never)]
unsafe fn out_store<const R: usize, const H: usize>(acc: [[__m512; H]; R], c: *mut f32, ldc: usize, m: [u16; H], act: Option<Activation>) {
    for (i, r) in acc.iter().enumerate() {
        for (h, &v) in r.iter().enumerate() {
            // SAFETY: the caller's guarantee; masked-off lanes are not accessed.
            unsafe { _mm512_mask_storeu_ps(c.add(i * ldc).wrapping_add(16 * h), m[h], act_zmm(act, v)) }
        }
    }
}

/// [`Fma::tile_out`] of a pair of panels, loading only the lanes in `m` when `MASKED` (else
/// all 32); the caller guarantees the bounds.
#[target_feature(enable = "avx2,fma,avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn out_panel_avx512<const R: usize, const MASKED: bool>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: [*const f32; 2],
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    m: (u16, u16),
    bias: Option<*const f32>,
    act: Option<Activation>,
) {
    // SAFETY: the caller's guarantee; masked-off lanes are not accessed.
    unsafe {
        if MASKED {
            let load = |k: usize| [_mm512_maskz_loadu_ps(m.0, b[0].add(k * ldb)), _mm512_maskz_loadu_ps(m.1, b[1].wrapping_add(k * ldb))];
            out_core::<R, 2>(kc, a, lda, load, c, ldc, [m.0, m.1], bias, act)
        } else {
            let load = |k: usize| [_mm512_loadu_ps(b[0].add(k * ldb)), _mm512_loadu_ps(b[1].add(k * ldb))];
            out_core::<R, 2>(kc, a, lda, load, c, ldc, [m.0, m.1], bias, act)
        }
    }
}

/// [`Fma::tile_out`] of one panel of at most 16 columns (the lanes in `m`); the caller
/// guarantees the bounds.
#[target_feature(enable = "avx2,fma,avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn out_panel1_avx512<const R: usize>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    m: u16,
    bias: Option<*const f32>,
    act: Option<Activation>,
) {
    // SAFETY: the caller's guarantee; masked-off lanes are not accessed.
    unsafe {
        let load = |k: usize| [_mm512_maskz_loadu_ps(m, b.add(k * ldb))];
        out_core::<R, 1>(kc, a, lda, load, c, ldc, [m], bias, act)
    }
}

/// [`Fma::tile_out`] of a pair read through a `RowTab` (`src` already shifted); the caller
/// guarantees the bounds.
#[target_feature(enable = "avx2,fma,avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn out_tab_avx512<const R: usize>(
    kc: usize,
    a: *const f32,
    lda: usize,
    src: *const f32,
    rows: *const [(i32, u32); 2],
    c: *mut f32,
    ldc: usize,
    m: (u16, u16),
    bias: Option<*const f32>,
    act: Option<Activation>,
) {
    // SAFETY: the caller's guarantee; masked-off lanes are not accessed.
    unsafe {
        if m.1 == 0 {
            // One tile: the first half only.
            let load = |k: usize| {
                let [(s0, m0), _] = *rows.add(k);
                [tab_load(src, s0, m0)]
            };
            return out_core::<R, 1>(kc, a, lda, load, c, ldc, [m.0], bias, act);
        }
        let load = |k: usize| {
            let [(s0, m0), (s1, m1)] = *rows.add(k);
            [tab_load(src, s0, m0), tab_load(src, s1, m1)]
        };
        out_core::<R, 2>(kc, a, lda, load, c, ldc, [m.0, m.1], bias, act)
    }
}

/// The 16 lanes of a `RowTab` row at `src + start`, 0 outside `mask` ([`masked_load`]); the
/// caller guarantees that every lane set in `mask` is readable.
#[inline(always)]
unsafe fn tab_load(src: *const f32, start: i32, mask: u32) -> __m512 {
    let p = src.wrapping_offset(start as isize);
    // SAFETY: the caller's guarantee.
    unsafe { masked_load(mask as u16, p) }
}

/// The lanes of `mask` at `p`, 0 elsewhere; the caller guarantees that every lane set in
/// `mask` is readable. A full mask takes a plain load: on AMD Zen 4 (AVX-512 on 256-bit
/// units), moving a mask read from memory into a mask register for each load cost a 3 × 3
/// Conv's inner loop 9 % of its rate (a C model of the RowTab loop with ResNet-8's masks: 50.6
/// against 55.3 GMAC/s taking plain loads where the mask is full), and in the kernels below
/// most masks are full (ResNet-8's 16 → 16 layers, through [`conv_taps_avx512`], 0.90–0.95 of
/// the time, the model 0.96–0.99, A/B of the same minutes). Where masks change from load to
/// load without a pattern (the stride-2 window kernels) the branch cost more than it saved,
/// and they keep the masked load.
#[inline(always)]
unsafe fn masked_load(mask: __mmask16, p: *const f32) -> __m512 {
    // SAFETY: the caller's guarantee: a full mask makes all 16 lanes readable; masked-off
    // lanes are not accessed.
    unsafe {
        if mask == 0xffff {
            _mm512_loadu_ps(p)
        } else {
            _mm512_maskz_loadu_ps(mask, p)
        }
    }
}

/// [`Fma::tile`] with one 16-lane register per row; the caller guarantees the bounds.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn tile_avx512<const R: usize>(kc: usize, a: *const f32, lda: usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize) {
    let mut acc = [_mm512_setzero_ps(); R];
    for (i, r) in acc.iter_mut().enumerate() {
        // SAFETY (all loads and stores here): bounded by the caller's length checks.
        *r = unsafe { _mm512_loadu_ps(c.add(i * ldc)) };
    }
    for k in 0..kc {
        let bv = unsafe { _mm512_loadu_ps(b.add(k * ldb)) };
        for (i, r) in acc.iter_mut().enumerate() {
            *r = _mm512_fmadd_ps(_mm512_set1_ps(unsafe { *a.add(i * lda + k) }), bv, *r);
        }
    }
    for (i, r) in acc.iter().enumerate() {
        unsafe { _mm512_storeu_ps(c.add(i * ldc), *r) };
    }
}

/// [`Fma::evens`] over `blocks` blocks, then `n ≤ 16` more values (masked), with AVX-512; the
/// caller guarantees `16·blocks + n` values of `dst` and `32·blocks + 2·n − 1` of `src`.
#[target_feature(enable = "avx2,fma,avx512f")]
#[inline]
unsafe fn evens_avx512(dst: *mut f32, src: *const f32, blocks: usize, n: usize) {
    // SAFETY: 16 values.
    let even = unsafe { _mm512_loadu_si512(EVEN.as_ptr().cast()) };
    for b in 0..blocks {
        // SAFETY: block `b` in bounds (caller).
        unsafe {
            let (a, c) = (_mm512_loadu_ps(src.add(32 * b)), _mm512_loadu_ps(src.add(32 * b + 16)));
            _mm512_storeu_ps(dst.add(16 * b), _mm512_permutex2var_ps(a, even, c));
        }
    }
    if n > 0 {
        let read = (1u32 << (2 * n - 1)) - 1;
        let (s, d) = (src.wrapping_add(32 * blocks), dst.wrapping_add(16 * blocks));
        // SAFETY: the `2·n − 1` values read and `n` written are in bounds (caller); masked-out
        // lanes are not accessed.
        unsafe {
            let (a, c) = (_mm512_maskz_loadu_ps(read as u16, s), _mm512_maskz_loadu_ps((read >> 16) as u16, s.wrapping_add(16)));
            _mm512_mask_storeu_ps(d, ((1u32 << n) - 1) as u16, _mm512_permutex2var_ps(a, even, c));
        }
    }
}

/// [`evens_avx512`] on `rows` rows, `ds` / `ss` values apart (inlined here, so the permute
/// pattern loads once for all rows); the caller guarantees the bounds [`Fma::evens_rows`] checks.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn evens_rows_avx512(dst: *mut f32, src: *const f32, rows: usize, n: usize, ds: usize, ss: usize) {
    for r in 0..rows {
        // SAFETY: row `r`'s `n` values of `dst` and `2·n − 1` of `src` (caller).
        unsafe { evens_avx512(dst.wrapping_add(r * ds), src.wrapping_add(r * ss), n / 16, n % 16) };
    }
}

/// [`Fma::split2`] with AVX-512; the caller guarantees `h·w` values of `x`, `4·hq·wq` of `dst`
/// and `w ≥ 1`.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn split2_avx512(x: *const f32, h: usize, w: usize, dst: *mut f32) {
    let (hq, wq) = (h.div_ceil(2), w.div_ceil(2));
    let phase = hq * wq;
    // SAFETY: 16 values each.
    let (even, odd) = unsafe { (_mm512_loadu_si512(EVEN.as_ptr().cast()), _mm512_loadu_si512(ODD.as_ptr().cast())) };
    let lanes = |n: usize| if n >= 16 { u16::MAX } else { ((1u32 << n) - 1) as u16 };
    // Per row: whole blocks of 32 values, then `r` more (the odd phase's lane past the row
    // reads a masked-off 0, so both phases store `⌈r / 2⌉` lanes).
    let (blocks, r) = (w / 32, w % 32);
    let (m0, m1, mo) = (lanes(r), lanes(r.saturating_sub(16)), lanes(r.div_ceil(2)));
    for iy in 0..h {
        let (py, i) = (iy % 2, iy / 2);
        // SAFETY: row `iy` of `x` and row `i` of phases `(py, 0)`, `(py, 1)` are in bounds
        // (caller); masked-off lanes are not accessed.
        unsafe {
            let (s, e) = (x.add(iy * w), dst.add(2 * py * phase + i * wq));
            let o = e.add(phase);
            for b in 0..blocks {
                let (a, c) = (_mm512_loadu_ps(s.add(32 * b)), _mm512_loadu_ps(s.add(32 * b + 16)));
                _mm512_storeu_ps(e.add(16 * b), _mm512_permutex2var_ps(a, even, c));
                _mm512_storeu_ps(o.add(16 * b), _mm512_permutex2var_ps(a, odd, c));
            }
            if r > 0 {
                let t = s.add(32 * blocks);
                let (a, c) = (_mm512_maskz_loadu_ps(m0, t), _mm512_maskz_loadu_ps(m1, t.wrapping_add(16)));
                _mm512_mask_storeu_ps(e.add(16 * blocks), mo, _mm512_permutex2var_ps(a, even, c));
                _mm512_mask_storeu_ps(o.add(16 * blocks), mo, _mm512_permutex2var_ps(a, odd, c));
            }
        }
    }
    // SAFETY: the caller's bounds.
    unsafe { split2_pad_rows(h, w, dst) }
}

/// Zeroes the last rows of the odd row phases when `h` is odd (they lie past the plane), the
/// rows [`split2_avx512`] and [`split2_avx2`] do not write; the caller guarantees
/// `4·⌈h / 2⌉·⌈w / 2⌉` values of `dst`.
unsafe fn split2_pad_rows(h: usize, w: usize, dst: *mut f32) {
    let (hq, wq) = (h.div_ceil(2), w.div_ceil(2));
    if h % 2 == 1 {
        for px in 0..2 {
            // SAFETY: row `hq − 1` of phase `(1, px)` is in bounds (caller).
            unsafe { core::ptr::write_bytes(dst.add((2 + px) * hq * wq + (hq - 1) * wq), 0, wq) };
        }
    }
}

/// [`Fma::with_phases`] with `N` floats of stack in a frame of its own; the caller guarantees
/// `c · h · w` floats of `x`, `w ≥ 1` and `c · 4·⌈h/2⌉·⌈w/2⌉ ≤ N`.
#[inline(never)]
fn phases_in<const N: usize, R>(fma: Fma, x: &[f32], c: usize, h: usize, w: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let per = 4 * h.div_ceil(2) * w.div_ceil(2);
    // Cache-line aligned, so phase rows of whole lines are stored (and read by the tiled
    // product) without straddling two: ResNet-8's 16-channel stride-2 Conv, whose phase rows
    // are one line each, ran at 1.17× this time with a 4-byte aligned buffer (criterion).
    #[repr(align(64))]
    struct Lines<const N: usize>([MaybeUninit<f32>; N]);
    let mut buf = Lines([MaybeUninit::<f32>::uninit(); N]);
    let dst = buf.0.as_mut_ptr().cast::<f32>();
    // SAFETY: AVX2 + FMA (and AVX-512 F when `avx512`) detected (an `Fma` exists); plane `ch`
    // of `x` holds `h·w` floats and its phases' `per` floats at `dst + ch·per` lie in `buf`
    // (the caller's guarantees). `split2_avx512` / `split2_avx2` write every one of those
    // floats (each phase row in full, the rows past an odd plane zeroed), so the `c·per`
    // floats handed to `f` are initialized (`MaybeUninit<f32>` has `f32`'s layout).
    unsafe {
        for ch in 0..c {
            split2_tier(fma, x.as_ptr().add(ch * h * w), h, w, dst.add(ch * per));
        }
        f(core::slice::from_raw_parts_mut(dst, c * per))
    }
}

/// [`split2_avx512`] or [`split2_avx2`], by `fma`'s tier (its detection is the target features'
/// guarantee); the caller guarantees their bounds: `h·w` values at `x`, `4·⌈h/2⌉·⌈w/2⌉` at
/// `dst`, `w ≥ 1`.
#[inline]
unsafe fn split2_tier(fma: Fma, x: *const f32, h: usize, w: usize, dst: *mut f32) {
    // SAFETY: AVX2 + FMA (and AVX-512 F when `avx512`) detected (an `Fma` exists); the bounds
    // are the caller's.
    unsafe {
        if fma.avx512 {
            split2_avx512(x, h, w, dst)
        } else {
            split2_avx2(x, h, w, dst)
        }
    }
}

/// [`Fma::split2`] with AVX2; the caller guarantees `h·w` values of `x`, `4·hq·wq` of `dst` and
/// `w ≥ 1`.
#[target_feature(enable = "avx2,fma")]
unsafe fn split2_avx2(x: *const f32, h: usize, w: usize, dst: *mut f32) {
    let (hq, wq) = (h.div_ceil(2), w.div_ceil(2));
    let phase = hq * wq;
    let blocks = w / 16;
    for iy in 0..h {
        let (py, i) = (iy % 2, iy / 2);
        // SAFETY: row `iy` of `x` and row `i` of phases `(py, 0)`, `(py, 1)` are in bounds
        // (caller).
        unsafe {
            let (s, e) = (x.add(iy * w), dst.add(2 * py * phase + i * wq));
            let o = e.add(phase);
            for b in 0..blocks {
                let (a, c) = (_mm256_loadu_ps(s.add(16 * b)), _mm256_loadu_ps(s.add(16 * b + 8)));
                let ev = _mm256_castps_pd(_mm256_shuffle_ps::<0b10_00_10_00>(a, c));
                let od = _mm256_castps_pd(_mm256_shuffle_ps::<0b11_01_11_01>(a, c));
                _mm256_storeu_ps(e.add(8 * b), _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(ev)));
                _mm256_storeu_ps(o.add(8 * b), _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(od)));
            }
            for j in 8 * blocks..wq {
                *e.add(j) = *s.add(2 * j);
                *o.add(j) = if 2 * j + 1 < w { *s.add(2 * j + 1) } else { 0.0 };
            }
        }
    }
    // SAFETY: the caller's bounds.
    unsafe { split2_pad_rows(h, w, dst) }
}

/// [`Fma::evens`] over `blocks` blocks with AVX2 (`[a0 a2 c0 c2 | a4 a6 c4 c6]`, then the
/// 64-bit lanes reordered); the caller guarantees `16·blocks` values of `dst` and `32·blocks`
/// of `src`.
#[target_feature(enable = "avx2,fma")]
unsafe fn evens_avx2(dst: *mut f32, src: *const f32, blocks: usize) {
    for h in 0..2 * blocks {
        // SAFETY: half-block `h` in bounds (caller).
        unsafe {
            let (a, c) = (_mm256_loadu_ps(src.add(16 * h)), _mm256_loadu_ps(src.add(16 * h + 8)));
            let s = _mm256_castps_pd(_mm256_shuffle_ps::<0b10_00_10_00>(a, c));
            _mm256_storeu_ps(dst.add(8 * h), _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(s)));
        }
    }
}

/// [`Fma::window16`] with a lane mask.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn window16_avx512(dst: &mut [f32; 16], src: &[f32; 16], lo: u32, span: u32) {
    let keep = if span >= 16 { u32::MAX } else { (1u32 << span) - 1 };
    let m = (keep << lo.min(31)) as __mmask16;
    // SAFETY: 16 values on each side.
    unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), _mm512_maskz_loadu_ps(m, src.as_ptr())) }
}

/// [`Fma::window16`] with compare masks (inline: it runs once per panel row).
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn window16_avx2(dst: &mut [f32; 16], src: &[f32; 16], lo: u32, span: u32) {
    let lo_v = _mm256_set1_epi32(lo.min(1 << 20) as i32 - 1);
    let hi_v = _mm256_set1_epi32((lo.min(1 << 20) + span.min(1 << 20)) as i32);
    for h in 0..2 {
        let idx = _mm256_setr_epi32(8 * h, 8 * h + 1, 8 * h + 2, 8 * h + 3, 8 * h + 4, 8 * h + 5, 8 * h + 6, 8 * h + 7);
        let m = _mm256_and_si256(_mm256_cmpgt_epi32(idx, lo_v), _mm256_cmpgt_epi32(hi_v, idx));
        // SAFETY: lanes 8h..8h+8 of 16-value arrays.
        unsafe {
            let v = _mm256_loadu_ps(src.as_ptr().add(8 * h as usize));
            _mm256_storeu_ps(dst.as_mut_ptr().add(8 * h as usize), _mm256_and_ps(v, _mm256_castsi256_ps(m)));
        }
    }
}

/// Row `r`'s start in `src` and its lanes `j` whose index `start + j` lies in `0 .. len`
/// ([`Fma::load_rows`]).
#[inline(always)]
fn row_lanes(base: i32, (off, mask): (i32, u16), len: usize) -> (isize, u16) {
    let start = base.wrapping_add(off) as i64;
    let len = len.min(i32::MAX as usize) as i64;
    let (lo, hi) = ((-start).clamp(0, 16), (len - start).clamp(0, 16));
    let range = if hi > lo { ((1u32 << hi) - (1u32 << lo)) as u16 } else { 0 };
    (start as isize, mask & range)
}

/// Most runs [`index_runs`] splits a tile into.
const RUNS_MAX: usize = 6;

/// `idx` as runs of consecutive indices, `(shift, lanes)`: lane `j` of `lanes` has
/// `idx[j] = shift + j`; the runs' lanes partition `0 .. 16`. `None` for more than [`RUNS_MAX`]
/// runs.
#[inline(always)]
fn index_runs(idx: &[i32; 16]) -> Option<([(i32, u16); RUNS_MAX], usize)> {
    let (mut runs, mut nr, mut j) = ([(0i32, 0u16); RUNS_MAX], 0, 0);
    while j < 16 {
        let a = j;
        j += 1;
        while j < 16 && idx[j] == idx[j - 1].wrapping_add(1) {
            j += 1;
        }
        *runs.get_mut(nr)? = (idx[a].wrapping_sub(a as i32), ((1u32 << j) - (1u32 << a)) as u16);
        nr += 1;
    }
    Some((runs, nr))
}

/// Row `r`'s start in `src` and its lanes `j` whose index `start + 2·j` lies in `0 .. len`
/// ([`Fma::load_rows2`]).
#[inline(always)]
fn row_lanes2(base: i32, (off, mask): (i32, u16), len: usize) -> (isize, u16) {
    let start = base.wrapping_add(off) as i64;
    let len = len.min(i32::MAX as usize) as i64;
    let lo = if start < 0 { ((1 - start) / 2).min(16) } else { 0 };
    let hi = if len > start { ((len - start + 1) / 2).min(16) } else { 0 };
    let range = if hi > lo { ((1u32 << hi) - (1u32 << lo)) as u16 } else { 0 };
    (start as isize, mask & range)
}

/// Bit `j` of `m` moved to bit `2·j`.
#[inline(always)]
fn spread_bits(m: u16) -> u32 {
    SPREAD[(m & 0xff) as usize] as u32 | (SPREAD[(m >> 8) as usize] as u32) << 16
}

/// Bit `j` of the index moved to bit `2·j`.
static SPREAD: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut j = 0;
        while j < 8 {
            t[i] |= (((i >> j) & 1) << (2 * j)) as u16;
            j += 1;
        }
        i += 1;
    }
    t
};

/// [`Fma::load_rows2`]'s loop; the caller guarantees `src` holds `len` values and `dst`
/// `16·rows.len()`.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn load_rows2_avx512(dst: *mut f32, src: *const f32, len: usize, base: i32, rows: &[(i32, u16)]) {
    // SAFETY: 16 values.
    let even = unsafe { _mm512_loadu_si512(EVEN.as_ptr().cast()) };
    for (r, &row) in rows.iter().enumerate() {
        // Rows whose 32 floats all lie in `src` keep their mask as is.
        let at = base.wrapping_add(row.0) as isize;
        let (start, m) = if at >= 0 && (at as usize).saturating_add(32) <= len { (at, row.1) } else { row_lanes2(base, row, len) };
        let read = spread_bits(m);
        let p = src.wrapping_offset(start);
        // SAFETY: row `r` of `dst` in bounds (caller); only the floats `start + 2·j` of lanes
        // `j` in `m` are loaded, each inside `src` (`row_lanes2`).
        unsafe {
            let (a, c) = (_mm512_maskz_loadu_ps(read as u16, p), _mm512_maskz_loadu_ps((read >> 16) as u16, p.wrapping_add(16)));
            _mm512_storeu_ps(dst.add(16 * r), _mm512_maskz_permutex2var_ps(m, a, even, c));
        }
    }
}

/// [`Fma::load_rows4`]'s loop (both tiers); the caller guarantees `dst` holds
/// `16·rows.len()` values and every row's floats `start + r·stride + i` (`r, i < 4`) lie in
/// `src` (so the lanes masked off are read, then cleared to +0.0, as the gather leaves them).
#[target_feature(enable = "avx2,fma")]
unsafe fn load_rows4_avx2(dst: *mut f32, src: *const f32, base: i32, stride: usize, rows: &[(i32, u16)]) {
    let bits = _mm_setr_epi32(1, 2, 4, 8);
    for (r, &(off, m)) in rows.iter().enumerate() {
        // SAFETY: the caller's guarantee.
        unsafe {
            let (p, d) = (src.offset(base as isize + off as isize), dst.add(16 * r));
            if m == u16::MAX {
                for k in 0..4 {
                    _mm_storeu_ps(d.add(4 * k), _mm_loadu_ps(p.add(k * stride)));
                }
            } else {
                for k in 0..4 {
                    let on = _mm_cmpeq_epi32(_mm_and_si128(_mm_set1_epi32(i32::from((m >> (4 * k)) & 0xf)), bits), bits);
                    _mm_storeu_ps(d.add(4 * k), _mm_and_ps(_mm_loadu_ps(p.add(k * stride)), _mm_castsi128_ps(on)));
                }
            }
        }
    }
}

/// [`Fma::load_rows`] with AVX-512 masked loads; the caller guarantees `src` holds `len`
/// values and `dst` `16·rows.len()`.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn load_rows_avx512(dst: *mut f32, src: *const f32, len: usize, base: i32, rows: &[(i32, u16)]) {
    for (r, &row) in rows.iter().enumerate() {
        let (start, m) = row_lanes(base, row, len);
        // SAFETY: row `r` of `dst` in bounds (caller); masked-out lanes are not accessed.
        unsafe { _mm512_storeu_ps(dst.add(16 * r), _mm512_maskz_loadu_ps(m, src.wrapping_offset(start))) }
    }
}

/// [`Fma::load_rows`] with AVX2 masked loads; the caller guarantees `src` holds `len` values
/// and `dst` `16·rows.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn load_rows_avx2(dst: *mut f32, src: *const f32, len: usize, base: i32, rows: &[(i32, u16)]) {
    let bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    for (r, &row) in rows.iter().enumerate() {
        let (start, m) = row_lanes(base, row, len);
        for h in 0..2 {
            let mv = _mm256_set1_epi32(((m >> (8 * h)) & 0xff) as i32);
            let on = _mm256_cmpeq_epi32(_mm256_and_si256(mv, bits), bits);
            // SAFETY: row `r` of `dst` in bounds (caller); masked-out lanes are not accessed.
            unsafe { _mm256_storeu_ps(dst.add(16 * r + 8 * h), _mm256_maskload_ps(src.wrapping_offset(start).wrapping_add(8 * h), on)) }
        }
    }
}

/// [`Fma::dw_taps`] for `n` channels with AVX-512; the caller guarantees the bounds. Only
/// the blocks holding output positions are summed (a plane of 9 positions takes one).
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn dw_taps_avx512(t: &Taps, x: *const f32, w: *const f32, b: *const f32, out: *mut f32, n: usize) {
    // SAFETY: the caller's guarantee.
    unsafe {
        match t.store().iter().rposition(|&m| m != 0) {
            Some(0) => dw_taps_avx512_n::<1>(t, x, w, b, out, n),
            Some(1) => dw_taps_avx512_n::<2>(t, x, w, b, out, n),
            Some(2) => dw_taps_avx512_n::<3>(t, x, w, b, out, n),
            Some(_) => dw_taps_avx512_n::<TB>(t, x, w, b, out, n),
            None => {}
        }
    }
}

/// [`dw_taps_avx512`] on the first `NB` blocks: channels [`DW_CH`] at a time (that many times
/// the independent sums, each mask loaded once for all), then the rest in one pass. Layers
/// whose kernel rows are 3 or 5 consecutive taps take [`dw_rows_ch`].
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn dw_taps_avx512_n<const NB: usize>(t: &Taps, x: *const f32, w: *const f32, b: *const f32, out: *mut f32, n: usize) {
    // Channels `0 .. n` through `$f::<.., CH, ..>`, [`DW_CH`] at a time, then the last one to
    // three in one pass.
    macro_rules! channels {
        ($f:ident, $ch:expr $(, $kw:literal)?) => {{
            let mut c = 0;
            while c + $ch <= n {
                // SAFETY: channels `c .. c + CH` below `n` (the caller's guarantee).
                unsafe { $f::<NB, $ch $(, $kw)?>(t, x, w, b, out, c) };
                c += $ch;
            }
            // SAFETY: channels `c .. n` (the caller's guarantee).
            unsafe {
                match n - c {
                    3 => $f::<NB, 3 $(, $kw)?>(t, x, w, b, out, c),
                    2 => $f::<NB, 2 $(, $kw)?>(t, x, w, b, out, c),
                    1 => $f::<NB, 1 $(, $kw)?>(t, x, w, b, out, c),
                    _ => {}
                }
            }
        }};
    }
    match t.run() {
        3 => channels!(dw_rows_ch, RCH, 3),
        5 => channels!(dw_rows_ch, RCH, 5),
        _ => channels!(dw_taps_ch, DW_CH),
    }
}

/// Channels [`dw_taps_avx512_n`] sums together.
const DW_CH: usize = 4;
/// Channels [`dw_rows_ch`] sums together.
const RCH: usize = 2;

/// [`dw_taps_avx512_n`] for channels `c .. c + CH` (below the caller's `n`): masked-out lanes
/// are not accessed, so the wrapped addresses of empty blocks are never dereferenced.
#[inline(always)]
// Blocks outer, channels inner (each mask loaded once for all channels): `acc` is indexed
// across its inner dimension.
#[allow(clippy::needless_range_loop)]
unsafe fn dw_taps_ch<const NB: usize, const CH: usize>(t: &Taps, x: *const f32, w: *const f32, b: *const f32, out: *mut f32, c: usize) {
    let (taps, (ip, op), j0, st, act) = (t.taps(), t.planes(), t.j0() as isize, t.store(), Some(t.act()));
    // Block `k`'s tap `tp` at `k · taps + tp`, `TB · taps` masks (`Taps::masks`).
    let masks = t.masks().as_ptr();
    // SAFETY: the caller's guarantee.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); NB]; CH];
        for (h, a) in acc.iter_mut().enumerate() {
            *a = [_mm512_set1_ps(*b.add(c + h)); NB];
        }
        for (tp, &dt) in t.d().iter().enumerate() {
            let mut wv = [_mm512_setzero_ps(); CH];
            let mut base = [x; CH];
            for h in 0..CH {
                wv[h] = _mm512_set1_ps(*w.add((c + h) * taps + tp));
                base[h] = x.add((c + h) * ip).wrapping_offset(j0 + dt);
            }
            for k in 0..NB {
                let m = *masks.add(k * taps + tp);
                for h in 0..CH {
                    let v = masked_load(m, base[h].wrapping_add(16 * k));
                    acc[h][k] = _mm512_fmadd_ps(wv[h], v, acc[h][k]);
                }
            }
        }
        for (h, acc) in acc.iter().enumerate() {
            let oc = out.add((c + h) * op).wrapping_offset(j0);
            for (k, a) in acc.iter().enumerate() {
                _mm512_mask_storeu_ps(oc.wrapping_add(16 * k), st[k], act_zmm(act, *a));
            }
        }
    }
}

/// [`dw_taps_ch`] for layers whose kernel rows are `KW` consecutive taps ([`Taps::run`]): per
/// kernel row and channel, the `NB + 1` windows of 16 input positions are loaded once and each
/// tap is a shift of two of them (`valignd`, its mask zeroing the lanes it does not read), so
/// a row of `KW` taps costs one load per block instead of `KW`. Same products in the same order
/// as [`dw_taps_ch`], so the same bits.
#[inline(always)]
// Rows outer, then blocks, taps and channels (each mask loaded once for all channels).
#[allow(clippy::needless_range_loop)]
unsafe fn dw_rows_ch<const NB: usize, const CH: usize, const KW: usize>(
    t: &Taps,
    x: *const f32,
    w: *const f32,
    b: *const f32,
    out: *mut f32,
    c: usize,
) {
    let (taps, (ip, op), j0, st, act) = (t.taps(), t.planes(), t.j0() as isize, t.store(), Some(t.act()));
    let (masks, wins, d) = (t.masks().as_ptr(), t.windows().as_ptr(), t.d());
    // SAFETY: the caller's guarantee; windows load only lanes inside their planes (`Taps::windows`).
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); NB]; CH];
        for (h, a) in acc.iter_mut().enumerate() {
            *a = [_mm512_set1_ps(*b.add(c + h)); NB];
        }
        for r in 0..taps / KW {
            let mut base = [x; CH];
            for h in 0..CH {
                base[h] = x.add((c + h) * ip).wrapping_offset(j0 + d[r * KW]);
            }
            let wm = wins.add(r * (TB + 1));
            let mut wv = [[_mm512_setzero_ps(); KW]; CH];
            let mut lo = [_mm512_setzero_si512(); CH];
            for h in 0..CH {
                for kx in 0..KW {
                    wv[h][kx] = _mm512_set1_ps(*w.add((c + h) * taps + r * KW + kx));
                }
                lo[h] = _mm512_castps_si512(masked_load(*wm, base[h]));
            }
            for k in 0..NB {
                let mut hi = [_mm512_setzero_si512(); CH];
                for h in 0..CH {
                    hi[h] = _mm512_castps_si512(masked_load(*wm.add(k + 1), base[h].wrapping_add(16 * (k + 1))));
                }
                for kx in 0..KW {
                    let m = *masks.add(k * taps + r * KW + kx);
                    for h in 0..CH {
                        let v = _mm512_castsi512_ps(shift_window(m, hi[h], lo[h], kx));
                        acc[h][k] = _mm512_fmadd_ps(wv[h][kx], v, acc[h][k]);
                    }
                }
                lo = hi;
            }
        }
        for (h, acc) in acc.iter().enumerate() {
            let oc = out.add((c + h) * op).wrapping_offset(j0);
            for (k, a) in acc.iter().enumerate() {
                _mm512_mask_storeu_ps(oc.wrapping_add(16 * k), st[k], act_zmm(act, *a));
            }
        }
    }
}

/// Lanes `s .. s + 16` of the 32 lanes `lo, hi` (`valignd`), zero outside `m`; `s` at most 7
/// (a constant once inlined into an unrolled loop).
#[inline(always)]
unsafe fn shift_window(m: __mmask16, hi: __m512i, lo: __m512i, s: usize) -> __m512i {
    // SAFETY: AVX-512 F (the caller's).
    unsafe {
        if m == 0xffff {
            return match s {
                0 => lo,
                1 => _mm512_alignr_epi32::<1>(hi, lo),
                2 => _mm512_alignr_epi32::<2>(hi, lo),
                3 => _mm512_alignr_epi32::<3>(hi, lo),
                4 => _mm512_alignr_epi32::<4>(hi, lo),
                5 => _mm512_alignr_epi32::<5>(hi, lo),
                6 => _mm512_alignr_epi32::<6>(hi, lo),
                _ => _mm512_alignr_epi32::<7>(hi, lo),
            };
        }
        match s {
            0 => _mm512_maskz_mov_epi32(m, lo),
            1 => _mm512_maskz_alignr_epi32::<1>(m, hi, lo),
            2 => _mm512_maskz_alignr_epi32::<2>(m, hi, lo),
            3 => _mm512_maskz_alignr_epi32::<3>(m, hi, lo),
            4 => _mm512_maskz_alignr_epi32::<4>(m, hi, lo),
            5 => _mm512_maskz_alignr_epi32::<5>(m, hi, lo),
            6 => _mm512_maskz_alignr_epi32::<6>(m, hi, lo),
            _ => _mm512_maskz_alignr_epi32::<7>(m, hi, lo),
        }
    }
}

/// Filters [`conv_taps_avx512`] sums together.
const CT_F: usize = 4;

/// [`Fma::conv_taps`] on the first `NB` blocks for `n` filters: [`CT_F`] filters at a time,
/// then the rest in one pass (measured: mnist-8 pruned to 14 filters, 1.15 → 1.25× over dense); the caller guarantees the bounds.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn conv_taps_avx512<const NB: usize>(t: &Taps, x: *const f32, cin: usize, w: *const f32, b: *const f32, out: *mut f32, n: usize) {
    let mut f = 0;
    while f + CT_F <= n {
        // SAFETY: filters `f .. f + CT_F` below `n` (the caller's guarantee).
        unsafe { conv_taps_f::<NB, CT_F>(t, x, cin, w, b, out, f) };
        f += CT_F;
    }
    // The last filters in one pass (a pruned layer's 14 filters take four passes, not five).
    // SAFETY: filters `f .. n` (the caller's guarantee).
    unsafe {
        match n - f {
            3 => conv_taps_f::<NB, 3>(t, x, cin, w, b, out, f),
            2 => conv_taps_f::<NB, 2>(t, x, cin, w, b, out, f),
            1 => conv_taps_f::<NB, 1>(t, x, cin, w, b, out, f),
            _ => {}
        }
    }
}

/// [`conv_taps_avx512`] for filters `f0 .. f0 + F` (below the caller's `n`): masked-out lanes
/// are not accessed, so the wrapped addresses of empty blocks are never dereferenced.
#[inline(always)]
// Taps outer, filters inner (each tap's blocks loaded once for all filters): `acc` is indexed
// across both dimensions.
#[allow(clippy::needless_range_loop, clippy::too_many_arguments)]
unsafe fn conv_taps_f<const NB: usize, const F: usize>(
    t: &Taps,
    x: *const f32,
    cin: usize,
    w: *const f32,
    b: *const f32,
    out: *mut f32,
    f0: usize,
) {
    let (taps, (ip, op), j0, st, act) = (t.taps(), t.planes(), t.j0() as isize, t.store(), Some(t.act()));
    let k = cin * taps;
    // Block `k`'s tap `tp` at `k · taps + tp`, `TB · taps` masks (`Taps::masks`).
    let masks = t.masks().as_ptr();
    // SAFETY: the caller's guarantee.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); NB]; F];
        for (h, a) in acc.iter_mut().enumerate() {
            *a = [_mm512_set1_ps(*b.add(f0 + h)); NB];
        }
        for c in 0..cin {
            let xc = x.add(c * ip);
            for (tp, &dt) in t.d().iter().enumerate() {
                let base = xc.wrapping_offset(j0 + dt);
                let mut v = [_mm512_setzero_ps(); NB];
                for blk in 0..NB {
                    v[blk] = masked_load(*masks.add(blk * taps + tp), base.wrapping_add(16 * blk));
                }
                for h in 0..F {
                    let wv = _mm512_set1_ps(*w.add((f0 + h) * k + c * taps + tp));
                    for blk in 0..NB {
                        acc[h][blk] = _mm512_fmadd_ps(wv, v[blk], acc[h][blk]);
                    }
                }
            }
        }
        for (h, acc) in acc.iter().enumerate() {
            let oc = out.add((f0 + h) * op).wrapping_offset(j0);
            for (blk, a) in acc.iter().enumerate() {
                _mm512_mask_storeu_ps(oc.wrapping_add(16 * blk), st[blk], act_zmm(act, *a));
            }
        }
    }
}

/// What [`im_1x1_cb4`] reads: the codebooks in registers, the payload, plane size, inputs,
/// outputs, bias and activation.
type Cb4Args<'a, 'p> = (&'a [__m512; 17], &'a Parts<'p>, usize, usize, usize, Option<*const f32>, Activation);

/// [`Books4::im_1x1`] for the `NP` positions at `x` / `out` (of planes of `hw`): the tiles of
/// [`im_1x1_avx512`], each input's 32 weights decoded from its 16 code bytes; the caller
/// guarantees the bounds.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw")]
unsafe fn im_1x1_cb4<const NP: usize>((cache, p, hw, c, m, bias, act): Cb4Args<'_, '_>, x: *const f32, out: *mut f32) {
    // Lane i takes byte i / 2, shifted right by 4 for odd i (`vpermps` reads the low 4 bits).
    let dup = _mm_set_epi8(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    let shifts = _mm512_set_epi32(4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0);
    let (cstride, codes) = (p.stride(), p.indices().as_ptr());
    let weights = |ci: usize, o0: usize, mk: [u16; 2]| {
        // Code bytes of this tile: outputs `o0 .. o0 + min(m - o0, 32)`, two per byte.
        let bytes = (u32::MAX >> (32 - (m - o0).min(32).div_ceil(2))) as u16;
        let tbl = cache[p.group(ci).min(16)];
        // SAFETY: row `ci`'s `⌈m/2⌉ ≤ stride` code bytes lie in `indices` (the caller's
        // guarantee); the load is masked to this tile's bytes.
        let cb = unsafe { _mm_maskz_loadu_epi8(bytes, codes.add(ci * cstride + o0 / 2).cast()) };
        let lo = _mm512_srlv_epi32(_mm512_cvtepu8_epi32(_mm_shuffle_epi8(cb, dup)), shifts);
        let hi = _mm512_srlv_epi32(_mm512_cvtepu8_epi32(_mm_shuffle_epi8(_mm_srli_si128::<8>(cb), dup)), shifts);
        [_mm512_maskz_permutexvar_ps(mk[0], lo, tbl), _mm512_maskz_permutexvar_ps(mk[1], hi, tbl)]
    };
    // SAFETY: the caller's guarantee.
    unsafe { im_1x1_tiles::<NP, false>(x, hw, c, m, bias, act, out, weights) }
}

/// The tiles of [`im_1x1_avx512`] and [`im_1x1_cb4`] for the `NP` positions at `x` / `out`:
/// 32 outputs at a time from the bias, each input not zero at every position adding its
/// weights `weights(ci, o0, masks)` (outputs `o0 ..`, lanes past output `m` zero) times each
/// position's value, fused, in input order; stored through the activation, each output's
/// positions as one row. Inlined into its callers, whose target features it needs; they guarantee the bounds.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn im_1x1_tiles<const NP: usize, const LIST: bool>(
    x: *const f32,
    hw: usize,
    c: usize,
    m: usize,
    bias: Option<*const f32>,
    act: Activation,
    out: *mut f32,
    weights: impl Fn(usize, usize, [u16; 2]) -> [__m512; 2],
) {
    let pmask = (u32::MAX >> (32 - NP)) as u16;
    // SAFETY: AVX-512 F in every caller; loads and stores past output `m` are masked off.
    unsafe {
        // Inputs zero at every position add nothing: with `LIST` and at most IM_LIST inputs the
        // others are listed once for every block of outputs, else each input is tested per
        // block. (Listed, the 4-bit tile, which decodes each input's weights from its group's
        // codebook in registers, ran VWW's denser 6 × 6 layers 2× slower on a Zen 4, its
        // sparsest 3 × 3 ones 1.5× faster; the f32 tile gained on every layer.)
        let (mut list, mut n, listed) = ([0u16; IM_LIST], 0, LIST && c <= IM_LIST);
        if listed {
            for ci in 0..c {
                if _mm512_mask_cmp_ps_mask::<_CMP_NEQ_UQ>(pmask, _mm512_maskz_loadu_ps(pmask, x.add(ci * hw)), _mm512_setzero_ps()) != 0 {
                    list[n] = ci as u16;
                    n += 1;
                }
            }
        }
        for o0 in (0..m).step_by(32) {
            let left = m - o0;
            let mk =
                [(u32::MAX >> (32 - left.min(16))) as u16, if left > 16 { (u32::MAX >> (32 - (left - 16).min(16))) as u16 } else { 0 }];
            let start = match bias {
                Some(b) => [_mm512_maskz_loadu_ps(mk[0], b.add(o0)), _mm512_maskz_loadu_ps(mk[1], b.wrapping_add(o0 + 16))],
                None => [_mm512_setzero_ps(); 2],
            };
            let mut acc = [start; NP];
            macro_rules! add_input {
                ($ci:expr, $xr:expr) => {{
                    let (ci, xr) = ($ci, $xr);
                    let w = weights(ci, o0, mk);
                    for (p, a) in acc.iter_mut().enumerate() {
                        let xv = _mm512_set1_ps(*xr.add(p));
                        a[0] = _mm512_fmadd_ps(xv, w[0], a[0]);
                        a[1] = _mm512_fmadd_ps(xv, w[1], a[1]);
                    }
                }};
            }
            if listed {
                for &ci in &list[..n] {
                    let ci = ci as usize;
                    add_input!(ci, x.add(ci * hw));
                }
            } else {
                for ci in 0..c {
                    let xr = x.add(ci * hw);
                    // Inputs zero at every position add nothing.
                    if _mm512_mask_cmp_ps_mask::<_CMP_NEQ_UQ>(pmask, _mm512_maskz_loadu_ps(pmask, xr), _mm512_setzero_ps()) != 0 {
                        add_input!(ci, xr);
                    }
                }
            }
            // Output `o0 + j` of position `p` at `(o0 + j)·hw + p`: each eight outputs of up
            // to eight positions transposed, so that each output's positions go out as one row
            // (a scatter per position and half was 15–30 % of the kernel on a Zen 4).
            for e in 0..left.min(32).div_ceil(8) {
                let (h, up) = (e / 2, e % 2 == 1);
                for pg in (0..NP).step_by(8) {
                    let np8 = (NP - pg).min(8);
                    let mut rows = [_mm256_setzero_ps(); 8];
                    for (r, a) in rows.iter_mut().zip(&acc[pg..pg + np8]) {
                        let v = _mm512_castps_pd(act_zmm(Some(act), a[h]));
                        *r = _mm256_castpd_ps(if up { _mm512_extractf64x4_pd::<1>(v) } else { _mm512_castpd512_pd256(v) });
                    }
                    for (j, col) in transpose8(rows).iter().enumerate().take((left - 8 * e).min(8)) {
                        store_first(out.add((o0 + 8 * e + j) * hw + pg), *col, np8);
                    }
                }
            }
        }
    }
}

/// Positions [`im_1x1_avx512`] sums together.
const IM_BLOCK: usize = 12;

/// [`Fma::im_1x1`] for the `NP` positions at `x` / `out` (of planes of `hw`); the caller
/// guarantees the bounds.
#[target_feature(enable = "avx2,fma,avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn im_1x1_avx512<const NP: usize>(
    x: *const f32,
    hw: usize,
    c: usize,
    wt: *const f32,
    m: usize,
    bias: Option<*const f32>,
    act: Activation,
    out: *mut f32,
) {
    let weights = |ci: usize, o0: usize, mk: [u16; 2]| {
        // SAFETY: input `ci`'s row of `m` weights lies inside `wt` (the caller's guarantee); the
        // loads are masked to the outputs below `m`.
        unsafe {
            let wr = wt.add(ci * m + o0);
            [masked_load(mk[0], wr), masked_load(mk[1], wr.wrapping_add(16))]
        }
    };
    // SAFETY: the caller's guarantee.
    unsafe { im_1x1_tiles::<NP, true>(x, hw, c, m, bias, act, out, weights) }
}

/// Positions [`im_1x1_avx2`] sums together.
const IM_BLOCK2: usize = 6;

/// [`Fma::im_1x1`] with AVX2 + FMA: 16 outputs × up to [`IM_BLOCK2`] positions in registers;
/// the caller guarantees the bounds.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn im_1x1_avx2(
    x: *const f32,
    hw: usize,
    c: usize,
    wt: *const f32,
    m: usize,
    bias: Option<*const f32>,
    act: Activation,
    out: *mut f32,
) {
    let mut p0 = 0;
    while p0 < hw {
        let np = IM_BLOCK2.min(hw - p0);
        // SAFETY: the caller's guarantee, for positions `p0 .. p0 + np`.
        unsafe {
            let (xp, op) = (x.add(p0), out.add(p0));
            match np {
                6 => im_1x1_avx2_n::<6>(xp, hw, c, wt, m, bias, act, op),
                5 => im_1x1_avx2_n::<5>(xp, hw, c, wt, m, bias, act, op),
                4 => im_1x1_avx2_n::<4>(xp, hw, c, wt, m, bias, act, op),
                3 => im_1x1_avx2_n::<3>(xp, hw, c, wt, m, bias, act, op),
                2 => im_1x1_avx2_n::<2>(xp, hw, c, wt, m, bias, act, op),
                _ => im_1x1_avx2_n::<1>(xp, hw, c, wt, m, bias, act, op),
            }
        }
        p0 += np;
    }
}

/// Most inputs whose zero test [`im_1x1_avx2_n`] does once for all output blocks (a list of
/// the others on the stack).
const IM_LIST: usize = 1024;

/// [`im_1x1_avx2`] for the `NP` positions at `x` / `out`: the inputs that are not zero at
/// every position are listed once, then each block of 16 outputs sums over the list (plain
/// weight loads for whole blocks, masked ones for the last).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn im_1x1_avx2_n<const NP: usize>(
    x: *const f32,
    hw: usize,
    c: usize,
    wt: *const f32,
    m: usize,
    bias: Option<*const f32>,
    act: Activation,
    out: *mut f32,
) {
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let mut list = [0u16; IM_LIST];
    // SAFETY: the caller's guarantee; weight, bias and input loads past output `m` or position
    // `NP` are masked off.
    unsafe {
        let pm = _mm256_cmpgt_epi32(_mm256_set1_epi32(NP as i32), lane);
        let mut c0 = 0;
        while c0 < c {
            let cn = (c - c0).min(IM_LIST);
            // Inputs zero at every position add nothing.
            let mut n = 0;
            for ci in c0..c0 + cn {
                let xv = _mm256_maskload_ps(x.add(ci * hw), pm);
                if _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(xv, _mm256_setzero_ps())) != 0 {
                    list[n] = (ci - c0) as u16;
                    n += 1;
                }
            }
            let (first, last) = (c0 == 0, c0 + cn == c);
            for o0 in (0..m).step_by(16) {
                let left = m - o0;
                let mk = [
                    _mm256_cmpgt_epi32(_mm256_set1_epi32(left.min(8) as i32), lane),
                    _mm256_cmpgt_epi32(_mm256_set1_epi32(left.saturating_sub(8).min(8) as i32), lane),
                ];
                // Sums start at the bias (first input chunk) or at the chunk before's outputs.
                let mut acc = [[_mm256_setzero_ps(); 2]; NP];
                if first {
                    if let Some(b) = bias {
                        let start = [_mm256_maskload_ps(b.add(o0), mk[0]), _mm256_maskload_ps(b.wrapping_add(o0 + 8), mk[1])];
                        acc = [start; NP];
                    }
                } else {
                    let mut tile = [[0.0f32; 16]; NP];
                    for (p, t) in tile.iter_mut().enumerate() {
                        for (j, v) in t.iter_mut().enumerate().take(left.min(16)) {
                            *v = *out.add((o0 + j) * hw + p);
                        }
                    }
                    for (a, t) in acc.iter_mut().zip(&tile) {
                        *a = [_mm256_loadu_ps(t.as_ptr()), _mm256_loadu_ps(t.as_ptr().add(8))];
                    }
                }
                let (xc, wc) = (x.add(c0 * hw), wt.add(c0 * m + o0));
                if left >= 16 {
                    for &ci in &list[..n] {
                        let (xr, wr) = (xc.add(ci as usize * hw), wc.add(ci as usize * m));
                        let w = [_mm256_loadu_ps(wr), _mm256_loadu_ps(wr.add(8))];
                        for (p, a) in acc.iter_mut().enumerate() {
                            let b = _mm256_broadcast_ss(&*xr.add(p));
                            a[0] = _mm256_fmadd_ps(b, w[0], a[0]);
                            a[1] = _mm256_fmadd_ps(b, w[1], a[1]);
                        }
                    }
                } else {
                    for &ci in &list[..n] {
                        let (xr, wr) = (xc.add(ci as usize * hw), wc.add(ci as usize * m));
                        let w = [_mm256_maskload_ps(wr, mk[0]), _mm256_maskload_ps(wr.wrapping_add(8), mk[1])];
                        for (p, a) in acc.iter_mut().enumerate() {
                            let b = _mm256_broadcast_ss(&*xr.add(p));
                            a[0] = _mm256_fmadd_ps(b, w[0], a[0]);
                            a[1] = _mm256_fmadd_ps(b, w[1], a[1]);
                        }
                    }
                }
                // The activation on whole registers (a `match` per stored float was a third
                // of the kernel's time), then each half transposed so that each output's `NP`
                // positions go out as one row (scalar stores of a tile were a tenth).
                for h in 0..left.div_ceil(8).min(2) {
                    let mut rows = [_mm256_setzero_ps(); 8];
                    for (r, a) in rows.iter_mut().zip(&acc) {
                        *r = if last { act_ymm(act, a[h]) } else { a[h] };
                    }
                    for (j, col) in transpose8(rows).iter().enumerate().take(left.saturating_sub(8 * h).min(8)) {
                        store_first(out.add((o0 + 8 * h + j) * hw), *col, NP);
                    }
                }
            }
            c0 += cn;
        }
    }
}

/// Even lanes `0, 2, …, 30` of a register pair.
const EVEN: [i32; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];
/// Output rows [`dw_s2_avx512`] sums together.
const S2_ROWS: usize = 4;
/// Output rows [`dw_s2_avx512`] sums together with 3 × 3 kernels (eight instead of four took
/// VWW's 64 × 24 × 24 layer 7.1 → 8.5 µs, its 12 rows in a full and a half-empty block, and its
/// 16 × 48 × 48 layer 7.9 → 9.5 µs).
const S2_ROWS3: usize = 4;

/// Odd lanes `1, 3, …, 31` of a register pair.
const ODD: [i32; 16] = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31];

/// [`Fma::dw_s2`] for `n` channels; the caller guarantees the bounds.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn dw_s2_avx512(s: &S2, x: *const f32, w: *const f32, b: *const f32, act: Activation, out: *mut f32, n: usize) {
    // 3 × 3 kernels (every stride-2 depthwise layer of the real models) run copies shaped at
    // compile time: the general loops' per-row bookkeeping was most of their time (VWW's
    // 16 × 48 × 48 layer 10.0 µs, 7.9 shaped).
    let k3 = (s.kh, s.kw) == (3, 3);
    // SAFETY: the caller's guarantee.
    unsafe {
        match (s.kw <= 3, s.ow, k3) {
            (true, 0..4, true) => dw_s2_packed::<4, 3, 3>(s, x, w, b, act, out, n),
            (true, 0..4, false) => dw_s2_packed::<4, 0, 0>(s, x, w, b, act, out, n),
            (true, 4..8, true) => dw_s2_packed::<2, 3, 3>(s, x, w, b, act, out, n),
            (true, 4..8, false) => dw_s2_packed::<2, 0, 0>(s, x, w, b, act, out, n),
            (true, _, true) => dw_s2_narrow::<3, 3>(s, x, w, b, act, out, n),
            (true, _, false) => dw_s2_narrow::<0, 0>(s, x, w, b, act, out, n),
            (false, ..) => dw_s2_wide(s, x, w, b, act, out, n),
        }
    }
}

/// [`dw_s2_avx512`] for kernels at most 3 wide on rows narrower than `16 / P` outputs: `P`
/// output rows share a register (`G = 16 / P` lanes each). Per kernel row, each output row's
/// input row is loaded as a `2G`-lane window into its part of a register pair, which the even,
/// odd and shifted-even permutes turn into the three tap vectors of all `P` rows at once.
/// With a `KH × KW` kernel (`s.kh × s.kw` when `KH` is 0), the same sums in the same order for
/// either; inlined into [`dw_s2_avx512`] (AVX-512 F).
#[inline(always)]
unsafe fn dw_s2_packed<const P: usize, const KH: usize, const KW: usize>(
    s: &S2,
    x: *const f32,
    w: *const f32,
    b: *const f32,
    act: Activation,
    out: *mut f32,
    n: usize,
) {
    let g = 16 / P;
    let (kh, kw) = if KH == 0 { (s.kh, s.kw) } else { (KH, KW) };
    let (taps, ip, op) = (kh * kw, s.h * s.w, s.oh * s.ow);
    let (wi, hi) = (s.w as isize, s.h as isize);
    // Lane `l` of the third tap vector: input lane `2l + 2` of its row's window (the last lane
    // of each row, no output since `ow < g`, takes any lane of its window).
    let mut e1 = [0i32; 16];
    for (l, v) in e1.iter_mut().enumerate() {
        let end = (l / g + 1) * 2 * g;
        *v = if 2 * l + 2 < end { 2 * l + 2 } else { 2 * l } as i32;
    }
    // The window's lanes inside the row: input columns `-pl + i`, `i < 2g`.
    let col = -(s.pl as isize);
    let (lo, hi_c) = ((-col).clamp(0, 2 * g as isize) as u32, (wi - col).clamp(0, 2 * g as isize) as u32);
    let win = if hi_c > lo { (1u32 << hi_c) - (1u32 << lo) } else { 0 };
    let rows_store = (1u32 << s.ow) - 1;
    // SAFETY: the caller's guarantee; masked-off lanes are not accessed, so the wrapped
    // addresses of rows and columns in the padding (and of the part-register loads, shifted
    // back by their lane offset) are never dereferenced.
    unsafe {
        let (even, odd, e1) =
            (_mm512_loadu_si512(EVEN.as_ptr().cast()), _mm512_loadu_si512(ODD.as_ptr().cast()), _mm512_loadu_si512(e1.as_ptr().cast()));
        for c in 0..n {
            let (xc, wc, oc) = (x.add(c * ip), w.add(c * taps), out.add(c * op));
            let b0 = _mm512_set1_ps(*b.add(c));
            let wv = shaped_weights::<KH>(wc, taps);
            let mut oy = 0;
            while oy < s.oh {
                let mut acc = b0;
                for ky in 0..kh {
                    let mut v = [_mm512_setzero_ps(); 2];
                    for q in 0..P {
                        let iy = (2 * (oy + q) + ky) as isize - s.pt as isize;
                        if oy + q >= s.oh || !(0..hi).contains(&iy) {
                            continue;
                        }
                        // Row `q`'s window: lanes `q·2g ..` of the pair.
                        let (r, off) = (q * 2 * g / 16, q * 2 * g % 16);
                        let p = xc.wrapping_offset(iy * wi + col - off as isize);
                        v[r] = _mm512_mask_loadu_ps(v[r], (win << off) as u16, p);
                    }
                    let tv = [
                        _mm512_permutex2var_ps(v[0], even, v[1]),
                        _mm512_permutex2var_ps(v[0], odd, v[1]),
                        _mm512_permutex2var_ps(v[0], e1, v[1]),
                    ];
                    for (kx, t) in tv.iter().enumerate().take(kw) {
                        let wt = if KH == 0 { _mm512_set1_ps(*wc.add(ky * kw + kx)) } else { wv[ky * kw + kx] };
                        acc = _mm512_add_ps(acc, _mm512_mul_ps(wt, *t));
                    }
                }
                let acc = act_zmm(Some(act), acc);
                for q in 0..P.min(s.oh - oy) {
                    _mm512_mask_storeu_ps(oc.add((oy + q) * s.ow).wrapping_sub(q * g), (rows_store << (q * g)) as u16, acc);
                }
                oy += P;
            }
        }
    }
}

/// [`dw_s2_avx512`] for kernels at most 3 wide: each input row of a block of output rows is
/// loaded once per 16 outputs (a 48-lane window) and split into the three tap vectors (even
/// lanes, odd lanes, even lanes one further), which every output row reading it then uses.
/// With a `KH × KW` kernel (`s.kh × s.kw` when `KH` is 0), the same sums in the same order for
/// either, each channel's weights broadcast once for all its rows; inlined into
/// [`dw_s2_avx512`] (AVX-512 F).
#[inline(always)]
unsafe fn dw_s2_narrow<const KH: usize, const KW: usize>(
    s: &S2,
    x: *const f32,
    w: *const f32,
    b: *const f32,
    act: Activation,
    out: *mut f32,
    n: usize,
) {
    let (kh, kw) = if KH == 0 { (s.kh, s.kw) } else { (KH, KW) };
    let (taps, ip, op) = (kh * kw, s.h * s.w, s.oh * s.ow);
    let (wi, hi) = (s.w as isize, s.h as isize);
    // Input rows a block of output rows reads.
    let span = 2 * (S2_ROWS - 1) + kh;
    // SAFETY: the caller's guarantee; masked-off lanes are not accessed, so the wrapped
    // addresses of rows and columns in the padding are never dereferenced.
    unsafe {
        let (even, odd) = (_mm512_loadu_si512(EVEN.as_ptr().cast()), _mm512_loadu_si512(ODD.as_ptr().cast()));
        for ox0 in (0..s.ow).step_by(16) {
            let store = (u32::MAX >> (32 - (s.ow - ox0).min(16))) as u16;
            // The window of input columns `col .. col + 48` and its lanes inside the row.
            let col = 2 * ox0 as isize - s.pl as isize;
            let masks = s2_window(col, wi, kw);
            for c in 0..n {
                let (xc, wc, oc) = (x.add(c * ip), w.add(c * taps), out.add(c * op + ox0));
                let b0 = _mm512_set1_ps(*b.add(c));
                let wv = shaped_weights::<KH>(wc, taps);
                let mut oy = 0;
                while oy < s.oh {
                    let iy0 = (2 * oy) as isize - s.pt as isize;
                    if KH == 3 && KW == 3 {
                        // [`S2_ROWS3`] output rows from their 9 input rows, unrolled: which rows
                        // read an input row as which kernel row is known here, and the weights
                        // are broadcast once per channel.
                        let mut acc = [b0; S2_ROWS3];
                        macro_rules! rows {
                            ($($j:literal)*) => {$({
                                let iy = iy0 + $j;
                                let tv = if (0..hi).contains(&iy) {
                                    s2_taps(xc.wrapping_offset(iy * wi + col), masks, even, odd)
                                } else {
                                    [_mm512_setzero_ps(); 3]
                                };
                                row3::<$j, 2, false>(&mut acc, &tv, &wv);
                            })*};
                        }
                        const _: () = assert!(S2_ROWS3 == 4 && 2 * (S2_ROWS3 - 1) + 3 == 9);
                        rows!(0 1 2 3 4 5 6 7 8);
                        for (r, a) in acc.iter().enumerate().take(s.oh - oy) {
                            _mm512_mask_storeu_ps(oc.add((oy + r) * s.ow), store, act_zmm(Some(act), *a));
                        }
                        oy += S2_ROWS3;
                        continue;
                    }
                    let mut acc = [b0; S2_ROWS];
                    for j in 0..span {
                        let iy = iy0 + j as isize;
                        let tv = if (0..hi).contains(&iy) {
                            s2_taps(xc.wrapping_offset(iy * wi + col), masks, even, odd)
                        } else {
                            [_mm512_setzero_ps(); 3]
                        };
                        // Output row `r` reads this row as kernel row `j - 2r`: rows in
                        // increasing `ky`, so each output sums its taps in `(ky, kx)` order.
                        for (r, a) in acc.iter_mut().enumerate() {
                            let Some(ky) = j.checked_sub(2 * r).filter(|&ky| ky < kh) else { continue };
                            for (kx, v) in tv.iter().enumerate().take(kw) {
                                let wt = if KH == 0 { _mm512_set1_ps(*wc.add(ky * kw + kx)) } else { wv[ky * kw + kx] };
                                *a = _mm512_add_ps(*a, _mm512_mul_ps(wt, *v));
                            }
                        }
                    }
                    for (r, a) in acc.iter().enumerate().take(s.oh - oy) {
                        _mm512_mask_storeu_ps(oc.add((oy + r) * s.ow), store, act_zmm(Some(act), *a));
                    }
                    oy += S2_ROWS;
                }
            }
        }
    }
}

/// The three tap vectors of 16 stride-2 outputs from the input row at `p` (a 48-lane window,
/// lanes `m0`, `m1`, `m2` inside the row): input lanes `0, 2, …, 30`, `1, 3, …, 31` and
/// `2, 4, …, 32`.
#[inline(always)]
unsafe fn s2_taps(p: *const f32, (m0, m1, m2): (u16, u16, u16), even: __m512i, odd: __m512i) -> [__m512; 3] {
    // SAFETY: the caller's guarantee that the masked-in lanes are inside the row; AVX-512 F
    // in every caller.
    unsafe {
        let v0 = _mm512_maskz_loadu_ps(m0, p);
        let v1 = _mm512_maskz_loadu_ps(m1, p.wrapping_add(16));
        let v2 = _mm512_maskz_loadu_ps(m2, p.wrapping_add(32));
        let e = _mm512_permutex2var_ps(v0, even, v1);
        let o = _mm512_permutex2var_ps(v0, odd, v1);
        [e, o, _mm512_castsi512_ps(_mm512_alignr_epi32::<1>(_mm512_castps_si512(v2), _mm512_castps_si512(e)))]
    }
}

/// The lanes of the 48-lane window of input columns `col ..` inside a row of `w` columns, as
/// three 16-lane masks (the third empty unless `kw` is 3).
#[inline(always)]
fn s2_window(col: isize, w: isize, kw: usize) -> (u16, u16, u16) {
    let (lo, hi) = ((-col).clamp(0, 48) as u32, (w - col).clamp(0, 48) as u32);
    let m = if hi > lo { (1u64 << hi) - (1u64 << lo) } else { 0 };
    (m as u16, (m >> 16) as u16, if kw == 3 { (m >> 32) as u16 } else { 0 })
}

/// [`Fma::dw_s1`] for 3 × 3 kernels with AVX-512: 16 outputs of a row per register, four
/// output rows at a time from their six input rows, each loaded once per 16 outputs and kernel
/// column (lanes outside the row masked off, so they read 0), unrolled with the weights
/// broadcast once per channel. Each output sums its taps in `(ky, kx)` order, fused, from the
/// bias; rows in the padding fuse `w · 0`: [`super::depthwise::dw_s1_scalar`], bit for bit.
/// VWW's 8 × 48 × 48 and 32 × 24 × 24 layers took the position-group kernel before.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn dw_s1_avx512(s: &S2, x: *const f32, w: *const f32, b: *const f32, act: Activation, out: *mut f32, n: usize) {
    let (ip, op) = (s.h * s.w, s.oh * s.ow);
    let (wi, hi) = (s.w as isize, s.h as isize);
    // SAFETY: the caller's guarantee; masked-off lanes are not accessed, so the wrapped
    // addresses of rows and columns in the padding are never dereferenced.
    unsafe {
        for ox0 in (0..s.ow).step_by(16) {
            let store = (u32::MAX >> (32 - (s.ow - ox0).min(16))) as u16;
            // Kernel column `kx` of output `ox0 + l` reads input column `ox0 + l + kx − pl`.
            let col = ox0 as isize - s.pl as isize;
            let mask = |kx: isize| {
                let (lo, hi) = ((-(col + kx)).clamp(0, 16) as u32, (wi - (col + kx)).clamp(0, 16) as u32);
                if hi > lo {
                    ((1u32 << hi) - (1u32 << lo)) as u16
                } else {
                    0
                }
            };
            let masks = [mask(0), mask(1), mask(2)];
            for c in 0..n {
                let (xc, wc, oc) = (x.add(c * ip), w.add(c * 9), out.add(c * op + ox0));
                let b0 = _mm512_set1_ps(*b.add(c));
                let wv = shaped_weights::<3>(wc, 9);
                let mut oy = 0;
                while oy < s.oh {
                    let mut acc = [b0; S1_ROWS];
                    let iy0 = oy as isize - s.pt as isize;
                    macro_rules! rows {
                        ($($j:literal)*) => {$({
                            let iy = iy0 + $j;
                            let tv = if (0..hi).contains(&iy) {
                                let p = xc.wrapping_offset(iy * wi + col);
                                [
                                    _mm512_maskz_loadu_ps(masks[0], p),
                                    _mm512_maskz_loadu_ps(masks[1], p.wrapping_add(1)),
                                    _mm512_maskz_loadu_ps(masks[2], p.wrapping_add(2)),
                                ]
                            } else {
                                [_mm512_setzero_ps(); 3]
                            };
                            row3::<$j, 1, true>(&mut acc, &tv, &wv);
                        })*};
                    }
                    const _: () = assert!(S1_ROWS == 4);
                    rows!(0 1 2 3 4 5);
                    for (r, a) in acc.iter().enumerate().take(s.oh - oy) {
                        _mm512_mask_storeu_ps(oc.add((oy + r) * s.ow), store, act_zmm(Some(act), *a));
                    }
                    oy += S1_ROWS;
                }
            }
        }
    }
}

/// The first `taps ≤ 9` weights at `wc`, each broadcast to a register, for a copy shaped at
/// compile time (`KH` not 0); zeros for the general copy, which reads them from memory. The
/// caller guarantees `taps` readable floats when `KH` is not 0.
#[inline(always)]
unsafe fn shaped_weights<const KH: usize>(wc: *const f32, taps: usize) -> [__m512; 9] {
    // SAFETY: AVX-512 F in every caller; the caller's guarantee for the reads.
    unsafe {
        let mut wv = [_mm512_setzero_ps(); 9];
        if KH != 0 {
            for (t, v) in wv.iter_mut().enumerate().take(taps) {
                *v = _mm512_set1_ps(*wc.add(t));
            }
        }
        wv
    }
}

/// Adds input row `J` of a block's tap vectors `tv` to the four output rows that read it
/// through a 3 × 3 kernel at stride `S` (row `r` as kernel row `J − S·r`), in `kx` order:
/// fused multiply-adds when `FUSED`, else a product then a sum.
#[inline(always)]
fn row3<const J: usize, const S: usize, const FUSED: bool>(acc: &mut [__m512; 4], tv: &[__m512; 3], wv: &[__m512; 9]) {
    for (r, a) in acc.iter_mut().enumerate() {
        if J >= S * r && J - S * r < 3 {
            let ky = J - S * r;
            for (kx, v) in tv.iter().enumerate() {
                // SAFETY: AVX-512 F in every caller.
                *a = unsafe {
                    if FUSED {
                        _mm512_fmadd_ps(wv[ky * 3 + kx], *v, *a)
                    } else {
                        _mm512_add_ps(*a, _mm512_mul_ps(wv[ky * 3 + kx], *v))
                    }
                };
            }
        }
    }
}

/// Filters [`conv_s2_avx512`] sums together.
const S2_FILTERS: usize = 8;
/// Output rows [`conv_s2_avx512`] sums together.
const S2_STEM_ROWS: usize = 2;

/// [`Fma::conv_s2`] for `n` filters (kernels at most 3 wide); the caller guarantees the bounds.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn conv_s2_avx512(s: &S2, x: *const f32, w: *const f32, b: *const f32, act: Activation, out: *mut f32, n: usize) {
    let (taps, ip, op) = (s.kh * s.kw, s.h * s.w, s.oh * s.ow);
    let k = s.cg * taps;
    let (wi, hi) = (s.w as isize, s.h as isize);
    let span = 2 * (S2_STEM_ROWS - 1) + s.kh;
    // SAFETY: the caller's guarantee; masked-off lanes are not accessed, so the wrapped
    // addresses of rows and columns in the padding are never dereferenced; filters past `n`
    // in a block read the last filter's weights and are not stored.
    unsafe {
        let (even, odd) = (_mm512_loadu_si512(EVEN.as_ptr().cast()), _mm512_loadu_si512(ODD.as_ptr().cast()));
        for ox0 in (0..s.ow).step_by(16) {
            let store = (u32::MAX >> (32 - (s.ow - ox0).min(16))) as u16;
            let col = 2 * ox0 as isize - s.pl as isize;
            let masks = s2_window(col, wi, s.kw);
            for f0 in (0..n).step_by(S2_FILTERS) {
                let nf = S2_FILTERS.min(n - f0);
                let mut wf = [w; S2_FILTERS];
                for (i, p) in wf.iter_mut().enumerate() {
                    *p = w.add((f0 + i.min(nf - 1)) * k);
                }
                let mut oy = 0;
                while oy < s.oh {
                    let mut acc = [[_mm512_setzero_ps(); S2_FILTERS]; S2_STEM_ROWS];
                    for row in acc.iter_mut() {
                        for (i, a) in row.iter_mut().enumerate() {
                            *a = _mm512_set1_ps(*b.add(f0 + i.min(nf - 1)));
                        }
                    }
                    let iy0 = (2 * oy) as isize - s.pt as isize;
                    for c in 0..s.cg {
                        let xc = x.add(c * ip);
                        for j in 0..span {
                            let iy = iy0 + j as isize;
                            let tv = if (0..hi).contains(&iy) {
                                s2_taps(xc.wrapping_offset(iy * wi + col), masks, even, odd)
                            } else {
                                [_mm512_setzero_ps(); 3]
                            };
                            // Output row `r` reads this row as kernel row `j - 2r`; with `c`
                            // outermost each output sums in `(c, ky, kx)` order.
                            for (r, row) in acc.iter_mut().enumerate() {
                                let Some(ky) = j.checked_sub(2 * r).filter(|&ky| ky < s.kh) else { continue };
                                for (kx, v) in tv.iter().enumerate().take(s.kw) {
                                    let t = c * taps + ky * s.kw + kx;
                                    for (a, wp) in row.iter_mut().zip(&wf) {
                                        *a = _mm512_fmadd_ps(_mm512_set1_ps(*wp.add(t)), *v, *a);
                                    }
                                }
                            }
                        }
                    }
                    for (r, row) in acc.iter().enumerate().take(s.oh - oy) {
                        for (i, a) in row.iter().enumerate().take(nf) {
                            _mm512_mask_storeu_ps(out.add((f0 + i) * op + (oy + r) * s.ow + ox0), store, act_zmm(Some(act), *a));
                        }
                    }
                    oy += S2_STEM_ROWS;
                }
            }
        }
    }
}

/// Output rows [`conv_s1_avx512`] sums together (each input row loaded once serves both).
const S1_STEM_ROWS: usize = 2;

/// [`Fma::conv_s2`] at stride 1 for `n` filters: per 16 outputs of a row, each input row
/// segment one masked load per kernel column, serving up to [`S2_FILTERS`] filters (as many as
/// remain: a pruned layer's last block computes no filter it does not store) and
/// [`S1_STEM_ROWS`] output rows; sums in `(c, ky, kx)` order from the bias, padding taps adding
/// `w · 0`, as [`super::depthwise::conv_s2_scalar`]. The caller guarantees the bounds.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn conv_s1_avx512(s: &S2, x: *const f32, w: *const f32, b: *const f32, act: Activation, out: *mut f32, n: usize) {
    let wi = s.w as isize;
    for ox0 in (0..s.ow).step_by(16) {
        // Per kernel column: the first input column of the segment, and its lanes inside the
        // row.
        let mut cols = [(0isize, 0u16); MAX_TAPS];
        for (kx, c) in cols.iter_mut().enumerate().take(s.kw) {
            let col = (ox0 + kx) as isize - s.pl as isize;
            let (lo, hi_c) = ((-col).clamp(0, 16), (wi - col).clamp(0, 16));
            *c = (col, if hi_c > lo { ((1u32 << hi_c) - (1u32 << lo)) as u16 } else { 0 });
        }
        let mut f0 = 0;
        while f0 < n {
            let nf = S2_FILTERS.min(n - f0);
            // SAFETY: the caller's guarantee, for filters `f0 .. f0 + nf`.
            unsafe {
                let a = (s, x, w, b, act, out, &cols, ox0, f0);
                match nf {
                    8 => conv_s1_block::<8>(a),
                    7 => conv_s1_block::<7>(a),
                    6 => conv_s1_block::<6>(a),
                    5 => conv_s1_block::<5>(a),
                    4 => conv_s1_block::<4>(a),
                    3 => conv_s1_block::<3>(a),
                    2 => conv_s1_block::<2>(a),
                    _ => conv_s1_block::<1>(a),
                }
            }
            f0 += nf;
        }
    }
}

/// What [`conv_s1_block`] reads: the geometry, input, weights, bias, activation, output, the
/// segment's kernel columns (first input column, lanes inside the row) and first output
/// column, and the block's first filter.
type S1Block<'a> = (&'a S2, *const f32, *const f32, *const f32, Activation, *mut f32, &'a [(isize, u16); MAX_TAPS], usize, usize);

/// [`conv_s1_avx512`] for filters `f0 .. f0 + NF` and the 16 outputs from column `ox0` of
/// every output row; the caller guarantees the bounds.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn conv_s1_block<const NF: usize>((s, x, w, b, act, out, cols, ox0, f0): S1Block<'_>) {
    let (taps, ip, op) = (s.kh * s.kw, s.h * s.w, s.oh * s.ow);
    let k = s.cg * taps;
    let (wi, hi) = (s.w as isize, s.h as isize);
    let span = S1_STEM_ROWS - 1 + s.kh;
    let store = (u32::MAX >> (32 - (s.ow - ox0).min(16))) as u16;
    // SAFETY: the caller's guarantee; masked-off lanes are not accessed, so the wrapped
    // addresses of rows and columns in the padding are never dereferenced.
    unsafe {
        let mut wf = [w; NF];
        for (i, p) in wf.iter_mut().enumerate() {
            *p = w.add((f0 + i) * k);
        }
        let mut oy = 0;
        while oy < s.oh {
            let mut acc = [[_mm512_setzero_ps(); NF]; S1_STEM_ROWS];
            for row in acc.iter_mut() {
                for (i, a) in row.iter_mut().enumerate() {
                    *a = _mm512_set1_ps(*b.add(f0 + i));
                }
            }
            let iy0 = oy as isize - s.pt as isize;
            for c in 0..s.cg {
                let xc = x.add(c * ip);
                for j in 0..span {
                    let iy = iy0 + j as isize;
                    let inside = (0..hi).contains(&iy);
                    for (kx, &(col, m)) in cols.iter().enumerate().take(s.kw) {
                        let v = if inside { masked_load(m, xc.wrapping_offset(iy * wi + col)) } else { _mm512_setzero_ps() };
                        // Output row `r` reads this row as kernel row `j - r`; with `c` outermost
                        // and `kx` innermost each output sums in `(c, ky, kx)` order.
                        for (r, row) in acc.iter_mut().enumerate() {
                            let Some(ky) = j.checked_sub(r).filter(|&ky| ky < s.kh) else { continue };
                            let t = c * taps + ky * s.kw + kx;
                            for (a, wp) in row.iter_mut().zip(&wf) {
                                *a = _mm512_fmadd_ps(_mm512_set1_ps(*wp.add(t)), v, *a);
                            }
                        }
                    }
                }
            }
            for (r, row) in acc.iter().enumerate().take(s.oh - oy) {
                for (i, a) in row.iter().enumerate() {
                    _mm512_mask_storeu_ps(out.add((f0 + i) * op + (oy + r) * s.ow + ox0), store, act_zmm(Some(act), *a));
                }
            }
            oy += S1_STEM_ROWS;
        }
    }
}

/// [`dw_s2_avx512`] for any kernel width: each tap one pair of masked loads of the input row
/// and an even-lane permute.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn dw_s2_wide(s: &S2, x: *const f32, w: *const f32, b: *const f32, act: Activation, out: *mut f32, n: usize) {
    let (taps, ip, op) = (s.kh * s.kw, s.h * s.w, s.oh * s.ow);
    let (wi, hi) = (s.w as isize, s.h as isize);
    // SAFETY: the caller's guarantee; masked-off lanes are not accessed, so the wrapped
    // addresses of rows and columns in the padding are never dereferenced.
    unsafe {
        let even = _mm512_loadu_si512(EVEN.as_ptr().cast());
        // Per kernel column: the first input column of the segment's 32-lane window, and the
        // lanes of the window inside the row.
        let mut cols = [(0isize, 0u16, 0u16); MAX_TAPS];
        for ox0 in (0..s.ow).step_by(16) {
            let store = (u32::MAX >> (32 - (s.ow - ox0).min(16))) as u16;
            for (kx, c) in cols.iter_mut().enumerate().take(s.kw) {
                let col = 2 * ox0 as isize + kx as isize - s.pl as isize;
                let (lo, hi) = ((-col).clamp(0, 32) as u32, (wi - col).clamp(0, 32) as u32);
                let m = if hi > lo { ((1u64 << hi) - (1u64 << lo)) as u32 } else { 0 };
                *c = (col, m as u16, (m >> 16) as u16);
            }
            for c in 0..n {
                let (xc, wc, oc) = (x.add(c * ip), w.add(c * taps), out.add(c * op + ox0));
                let b0 = _mm512_set1_ps(*b.add(c));
                let mut oy = 0;
                while oy < s.oh {
                    let mut acc = [b0; S2_ROWS];
                    for ky in 0..s.kh {
                        // Per output row: where its input row starts, and whether it is one.
                        let mut rows = [(0isize, false); S2_ROWS];
                        for (r, row) in rows.iter_mut().enumerate() {
                            let iy = (2 * (oy + r) + ky) as isize - s.pt as isize;
                            *row = (iy * wi, oy + r < s.oh && (0..hi).contains(&iy));
                        }
                        for (kx, &(col, ml, mh)) in cols.iter().enumerate().take(s.kw) {
                            let wv = _mm512_set1_ps(*wc.add(ky * s.kw + kx));
                            for (a, &(at, inside)) in acc.iter_mut().zip(&rows) {
                                let (ml, mh) = if inside { (ml, mh) } else { (0, 0) };
                                let p = xc.wrapping_offset(at + col);
                                let v0 = _mm512_maskz_loadu_ps(ml, p);
                                let v1 = _mm512_maskz_loadu_ps(mh, p.wrapping_add(16));
                                let v = _mm512_permutex2var_ps(v0, even, v1);
                                *a = _mm512_add_ps(*a, _mm512_mul_ps(wv, v));
                            }
                        }
                    }
                    for (r, a) in acc.iter().enumerate().take(s.oh - oy) {
                        _mm512_mask_storeu_ps(oc.add((oy + r) * s.ow), store, act_zmm(Some(act), *a));
                    }
                    oy += S2_ROWS;
                }
            }
        }
    }
}

/// [`Fma::dw_taps`] for `n` channels with AVX2 masked loads; the caller guarantees the bounds.
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_taps_avx2(t: &Taps, x: *const f32, w: *const f32, b: *const f32, out: *mut f32, n: usize) {
    // SAFETY: the caller's guarantee; the mask table holds every tap.
    unsafe {
        match t.taps() {
            0..=9 => dw_taps_avx2_n::<9>(t, x, w, b, out, n),
            10..=25 => dw_taps_avx2_n::<25>(t, x, w, b, out, n),
            _ => dw_taps_avx2_n::<MAX_TAPS>(t, x, w, b, out, n),
        }
    }
}

/// [`dw_taps_avx2`] with lane masks for `T ≥ taps` taps: only the 8-lane halves that hold an
/// output position are summed (a small plane's group is mostly past its end), each tap's half
/// is one masked load (zeros in its masked-out lanes, so `w · 0` there), and full halves leave
/// through plain stores. Every half's load is masked, whatever its mask: choosing a plain
/// load, no load or a masked one per tap and half was a branch per load, and kws_dscnn's
/// depthwise layers (64 × 25 × 5) took 7.3 µs that way against 6.2 µs branch-free on an AVX2
/// EPYC (alternating `sprig bench --per-layer` runs).
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_taps_avx2_n<const T: usize>(t: &Taps, x: *const f32, w: *const f32, b: *const f32, out: *mut f32, n: usize) {
    let st = t.store();
    // Stored halves are a prefix: a group's positions past the plane's end come last.
    let nq = (0..2 * TB).take_while(|&q| (st[q / 2] >> (8 * (q % 2))) & 0xff != 0).count();
    // SAFETY: the caller's guarantee.
    unsafe {
        match nq {
            0 => {}
            1 => dw_taps_avx2_q::<T, 1>(t, x, w, b, out, n),
            2 => dw_taps_avx2_q::<T, 2>(t, x, w, b, out, n),
            3 => dw_taps_avx2_q::<T, 3>(t, x, w, b, out, n),
            4 => dw_taps_avx2_q::<T, 4>(t, x, w, b, out, n),
            5 => dw_taps_avx2_q::<T, 5>(t, x, w, b, out, n),
            6 => dw_taps_avx2_q::<T, 6>(t, x, w, b, out, n),
            7 => dw_taps_avx2_q::<T, 7>(t, x, w, b, out, n),
            _ => dw_taps_avx2_q::<T, { 2 * TB }>(t, x, w, b, out, n),
        }
    }
}

/// [`dw_taps_avx2_n`] over the first `Q` halves (the stored ones).
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_taps_avx2_q<const T: usize, const Q: usize>(t: &Taps, x: *const f32, w: *const f32, b: *const f32, out: *mut f32, n: usize) {
    let (taps, (ip, op), j0, st, act) = (t.taps(), t.planes(), t.j0() as isize, t.store(), t.act());
    debug_assert!(taps <= T, "the dispatcher picks T ≥ taps");
    let bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let byte = |m: u16, q: usize| (m >> (8 * (q % 2))) & 0xff;
    let vec = |m: u16| _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(m as i32), bits), bits);
    let mut lanes = [[_mm256_setzero_si256(); Q]; T];
    let mut sv = [_mm256_setzero_si256(); Q];
    let mut full = [false; Q];
    for q in 0..Q {
        let m = byte(st[q / 2], q);
        (sv[q], full[q]) = (vec(m), m == 0xff);
        for (tp, l) in lanes.iter_mut().enumerate().take(taps) {
            l[q] = vec(byte(t.mask(q / 2, tp), q));
        }
    }
    for c in 0..n {
        // SAFETY: channel `c` below `n` (caller); masked-out lanes are not accessed, and every
        // lane of a full half is stored inside the plane.
        unsafe {
            let (xc, wc) = (x.add(c * ip), w.add(c * taps));
            let mut acc = [_mm256_set1_ps(*b.add(c)); Q];
            for (tp, (&dt, l)) in t.d().iter().zip(&lanes).enumerate() {
                let wv = _mm256_set1_ps(*wc.add(tp));
                let base = xc.wrapping_offset(j0 + dt);
                for (q, a) in acc.iter_mut().enumerate() {
                    let v = _mm256_maskload_ps(base.wrapping_add(8 * q), l[q]);
                    *a = _mm256_fmadd_ps(wv, v, *a);
                }
            }
            let oc = out.add(c * op).wrapping_offset(j0);
            for (q, a) in acc.iter().enumerate() {
                let v = act_ymm(act, *a);
                if full[q] {
                    _mm256_storeu_ps(oc.wrapping_add(8 * q), v);
                } else {
                    _mm256_maskstore_ps(oc.wrapping_add(8 * q), sv[q], v);
                }
            }
        }
    }
}

/// [`Fma::gather_rows`] with AVX-512 masked gathers; the caller guarantees `src` holds `len`
/// values and `dst` `16·rows.len()`.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn gather_rows_avx512(dst: *mut f32, src: *const f32, len: i32, idx: &[i32; 16], rows: &[(i32, u16)]) {
    // Tiles over a few output rows (stride 1, output rows narrower than a tile) are a few runs of
    // consecutive indices: one masked load per run instead of a gather (a gather of 16 lanes was
    // a quarter of a 1 → 28-filter 10 × 4 Conv on 49 × 10 on a Zen 4).
    if let Some((runs, nr)) = index_runs(idx) {
        let runs = &runs[..nr];
        let lo = runs.iter().map(|r| r.0 as i64).min().unwrap_or(0);
        let hi = runs.iter().map(|r| r.0 as i64).max().unwrap_or(0) + 16;
        for (r, &(off, mask)) in rows.iter().enumerate() {
            // Rows whose every run lies inside `src` need no per-lane bound.
            let inside = off as i64 + lo >= 0 && off as i64 + hi <= len as i64;
            let mut v = _mm512_setzero_si512();
            for &(shift, lanes) in runs {
                let (start, m) = if inside {
                    ((shift as i64 + off as i64) as isize, mask & lanes)
                } else {
                    row_lanes(shift, (off, mask & lanes), len as usize)
                };
                // SAFETY: lanes `j` of `m` have `0 ≤ start + j < len` (`inside` or `row_lanes`);
                // the others are not accessed.
                v = _mm512_or_si512(v, _mm512_castps_si512(unsafe { _mm512_maskz_loadu_ps(m, src.wrapping_offset(start)) }));
            }
            // SAFETY: row `r` of `dst` in bounds (caller).
            unsafe { _mm512_storeu_ps(dst.add(16 * r), _mm512_castsi512_ps(v)) };
        }
        return;
    }
    // SAFETY: 16 values in `idx`; row `r` of `dst` in bounds (caller); lanes outside `0 .. len`
    // (unsigned compare) are masked.
    unsafe {
        let (base, lenv) = (_mm512_loadu_si512(idx.as_ptr().cast()), _mm512_set1_epi32(len));
        for (r, &(off, mask)) in rows.iter().enumerate() {
            let vi = _mm512_add_epi32(base, _mm512_set1_epi32(off));
            let k = _mm512_mask_cmplt_epu32_mask(mask, vi, lenv);
            _mm512_storeu_ps(dst.add(16 * r), _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), k, vi, src));
        }
    }
}

/// [`Fma::gather_rows`] with AVX2 masked gathers (two per row); the caller guarantees `src`
/// holds `len` values and `dst` `16·rows.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn gather_rows_avx2(dst: *mut f32, src: *const f32, len: i32, idx: &[i32; 16], rows: &[(i32, u16)]) {
    let bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let lenv = _mm256_set1_epi32(len);
    // SAFETY: 16 values in `idx`.
    let base = unsafe { [_mm256_loadu_si256(idx.as_ptr().cast()), _mm256_loadu_si256(idx.as_ptr().add(8).cast())] };
    for (r, &(off, mask)) in rows.iter().enumerate() {
        for (h, b) in base.iter().enumerate() {
            let mv = _mm256_set1_epi32(((mask >> (8 * h)) & 0xff) as i32);
            let on = _mm256_cmpeq_epi32(_mm256_and_si256(mv, bits), bits);
            let vi = _mm256_add_epi32(*b, _mm256_set1_epi32(off));
            let inside = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), vi), _mm256_cmpgt_epi32(lenv, vi));
            let m = _mm256_castsi256_ps(_mm256_and_si256(on, inside));
            // SAFETY: lanes outside `0 .. len` are masked; row `r` of `dst` in bounds (caller).
            unsafe {
                let v = _mm256_mask_i32gather_ps::<4>(_mm256_setzero_ps(), src, vi, m);
                _mm256_storeu_ps(dst.add(16 * r + 8 * h), v);
            }
        }
    }
}

/// [`Fma::dot4`]; the caller guarantees every row holds `x.len()` values.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot4_f32(w: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
    let n = x.len();
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut k = 0;
    while k + 8 <= n {
        // SAFETY: k + 8 <= n <= every row's length.
        let xv = unsafe { _mm256_loadu_ps(x.as_ptr().add(k)) };
        for (a, r) in acc.iter_mut().zip(&w) {
            *a = _mm256_fmadd_ps(unsafe { _mm256_loadu_ps(r.as_ptr().add(k)) }, xv, *a);
        }
        k += 8;
    }
    let mut out = [0.0f32; 4];
    for ((o, a), r) in out.iter_mut().zip(&acc).zip(&w) {
        *o = hsum(*a) + x[k..].iter().zip(&r[k..n]).map(|(x, w)| x * w).sum::<f32>();
    }
    out
}

/// The 16-lane partial sums of `R` rows' dot products with `x`: lane `j` of row `i` sums
/// `w[i][k] · x[k]` over `k ≡ j (mod 16)` in `k` order (fused multiply-adds, the tail masked).
/// The caller guarantees AVX-512 F and that every row holds `x.len()` values.
#[inline(always)]
unsafe fn partial_sums_avx512<const R: usize>(w: [&[f32]; R], x: &[f32]) -> [__m512; R] {
    let n = x.len();
    // SAFETY: the caller's guarantee.
    let mut acc = [unsafe { _mm512_setzero_ps() }; R];
    let mut k = 0;
    while k < n {
        // Lanes `k .. min(k + 16, n)`; masked-out lanes are not accessed.
        let m = if n - k >= 16 { u16::MAX } else { (1u16 << (n - k)) - 1 };
        // SAFETY: only lanes below n <= every row's length are loaded.
        unsafe {
            let xv = masked_load(m, x.as_ptr().add(k));
            for (a, r) in acc.iter_mut().zip(&w) {
                *a = _mm512_fmadd_ps(masked_load(m, r.as_ptr().add(k)), xv, *a);
            }
        }
        k += 16;
    }
    acc
}

/// [`Fma::dot4`] with AVX-512; the caller guarantees every row holds `x.len()` values.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn dot4_f32_avx512(w: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
    // SAFETY: the caller's guarantee; AVX-512 F (this function's feature).
    let acc = unsafe { partial_sums_avx512(w, x) };
    [_mm512_reduce_add_ps(acc[0]), _mm512_reduce_add_ps(acc[1]), _mm512_reduce_add_ps(acc[2]), _mm512_reduce_add_ps(acc[3])]
}

/// [`Fma::dot8`] with AVX-512; the caller guarantees every row holds `x.len()` values. Each
/// row's 16 partial sums are reduced as `_mm512_reduce_add_ps` reduces them (lanes `i + 8`,
/// then `i + 4`, `i + 2`, `i + 1`), eight rows at once (tested bit for bit against
/// [`dot4_f32_avx512`]).
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn dot8_f32_avx512(w: [&[f32]; 8], x: &[f32]) -> [f32; 8] {
    // SAFETY: the caller's guarantee; AVX-512 F (this function's feature).
    let acc = unsafe { partial_sums_avx512(w, x) };
    // Lanes `i + 8`: rows 2p and 2p + 1 in the low and high halves of `h[p]`.
    let mut h = [_mm512_setzero_ps(); 4];
    for (p, v) in h.iter_mut().enumerate() {
        let (a, b) = (acc[2 * p], acc[2 * p + 1]);
        *v = _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(a, b), _mm512_shuffle_f32x4::<0xEE>(a, b));
    }
    // Lanes `i + 4`: `q[0]`'s 128-bit lane `l` holds row `l`, `q[1]`'s row `4 + l`.
    let mut q = [_mm512_setzero_ps(); 2];
    for (p, v) in q.iter_mut().enumerate() {
        let (a, b) = (h[2 * p], h[2 * p + 1]);
        *v = _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(a, b), _mm512_shuffle_f32x4::<0xDD>(a, b));
    }
    // Lanes `i + 2`: per 128-bit lane `l`, row `l` in lanes 0–1, row `4 + l` in lanes 2–3.
    let (a, b) = (_mm512_castps_pd(q[0]), _mm512_castps_pd(q[1]));
    let s = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    // Lanes `i + 1`: per 128-bit lane `l`, row `l` in lane 0, row `4 + l` in lane 1.
    let t = _mm512_add_ps(_mm512_shuffle_ps::<0b10_00_10_00>(s, s), _mm512_shuffle_ps::<0b11_01_11_01>(s, s));
    let mut lanes = [0.0f32; 16];
    // SAFETY: 16 floats written.
    unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), t) };
    [lanes[0], lanes[4], lanes[8], lanes[12], lanes[1], lanes[5], lanes[9], lanes[13]]
}

/// [`Fma::dot`] on equal-length slices.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut k = 0;
    while k + 16 <= n {
        // SAFETY: k + 16 <= n.
        unsafe {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(k)), _mm256_loadu_ps(b.as_ptr().add(k)), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(k + 8)), _mm256_loadu_ps(b.as_ptr().add(k + 8)), a1);
        }
        k += 16;
    }
    hsum(_mm256_add_ps(a0, a1)) + a[k..n].iter().zip(&b[k..n]).map(|(x, y)| x * y).sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    proptest! {
        /// Both tiers' `split2` write every float of a plane's phases (a destination full of NaN
        /// keeps none) with the scalar split's values, odd and even sides: what lets
        /// `with_phases` hand out stack memory nobody cleared; and `with_phases` gives the
        /// planes' phases one after the other, as the scalar split does plane by plane.
        #[test]
        fn split2_writes_every_float(c in 1usize..4, h in 1usize..40, w in 1usize..70, seed in 0u64..1000) {
            let Some(f) = Fma::detect() else { return Ok(()) };
            let per = 4 * h.div_ceil(2) * w.div_ceil(2);
            let x = super::super::testutil::data(c * h * w, seed);
            let mut want = vec![f32::NAN; c * per];
            for (xp, d) in x.chunks_exact(h * w).zip(want.chunks_exact_mut(per)) {
                super::super::gemm::split2_scalar(xp, h, w, d);
            }
            prop_assert!(want.iter().all(|v| !v.is_nan()));
            for tier in [f, f.avx2_only()] {
                let mut got = vec![f32::NAN; per + 1];
                tier.split2(&x[..h * w], h, w, &mut got[..per]);
                prop_assert_eq!(&got[..per], &want[..per]);
                prop_assert!(got[per].is_nan(), "wrote past the phases");
                let all = tier.with_phases(&x, c, h, w, |buf| buf.to_vec());
                prop_assert_eq!(all.as_deref(), (c * per <= super::super::gemm::PHASES_MAX).then_some(&want[..]));
                prop_assert!(tier.with_phases(&x[1..], c, h, w, |_| ()).is_none(), "a short input is refused");
            }
        }
        /// `dot8` gives each row exactly `dot4`'s sum, whatever the length (ragged tails) and
        /// wherever the row sits among the eight.
        #[test]
        fn dot8_matches_dot4_bitwise(n in 0usize..300, seed in 0u64..1000) {
            let Some(f) = Fma::detect() else { return Ok(()) };
            let rows: Vec<Vec<f32>> = (0..8).map(|r| super::super::testutil::data(n, seed + r)).collect();
            let x = super::super::testutil::data(n, seed + 99);
            let w: [&[f32]; 8] = core::array::from_fn(|r| rows[r].as_slice());
            // Both tiers: AVX-512 (where the CPU has it) and AVX2.
            for f in [f, f.avx2_only()] {
                let got = f.dot8(w, &x);
                let a = f.dot4([w[0], w[1], w[2], w[3]], &x);
                let b = f.dot4([w[4], w[5], w[6], w[7]], &x);
                for (i, (g, e)) in got.iter().zip(a.iter().chain(&b)).enumerate() {
                    prop_assert_eq!(g.to_bits(), e.to_bits(), "row {}", i);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(super::super::testutil::cases(24)))]
        /// The small-plane pointwise kernels past one list of inputs ([`IM_LIST`]; AVX2 carries
        /// the sums through the outputs between lists, AVX-512 tests each input per block of
        /// outputs): bit for bit the fused sums over the inputs
        /// that are not zero at every position, in input order, from the bias, through the
        /// activation only at the end.
        #[test]
        // Thousands of inputs: too slow under Miri, where `input_sparse::tests::small_plane*`
        // cover this kernel's memory accesses.
        #[cfg_attr(miri, ignore)]
        fn im_1x1_across_input_lists(c in 1000usize..2200, m in 1usize..40, hw in 1usize..=36, zero_every in 2usize..5, act in 0u8..3,
                                     seed in 0u64..1000, avx512 in any::<bool>()) {
            let Some(f) = Fma::detect() else { return Ok(()) };
            let f = if avx512 { f } else { f.avx2_only() };
            let mut x = super::super::testutil::data(c * hw, seed);
            for (ci, row) in x.chunks_exact_mut(hw).enumerate() {
                if ci % zero_every == 0 {
                    row.fill(0.0);
                }
            }
            let (wt, b) = (super::super::testutil::data(c * m, seed + 1), super::super::testutil::data(m, seed + 2));
            let act = [Activation::None, Activation::Relu, Activation::Clip { min: -0.5, max: 0.5 }][act as usize];
            let mut got = std::vec![f32::NAN; m * hw];
            prop_assert!(f.im_1x1(&x, hw, c, &wt, m, &b, act, &mut got));
            let live: Vec<usize> = (0..c).filter(|&ci| x[ci * hw..(ci + 1) * hw].iter().any(|&v| v != 0.0)).collect();
            for o in 0..m {
                for p in 0..hw {
                    let mut acc = b[o];
                    for &ci in &live {
                        acc = libm::fmaf(x[ci * hw + p], wt[ci * m + o], acc);
                    }
                    prop_assert_eq!(got[o * hw + p].to_bits(), act.apply(acc).to_bits(), "output {} position {}", o, p);
                }
            }
        }
    }

    /// Plain `c += a · b` over one tile, in f64.
    #[allow(clippy::too_many_arguments)]
    fn tile_ref(r: usize, kc: usize, a: &[f32], lda: usize, b: &[f32], ldb: usize, c: &[f32], ldc: usize) -> Vec<f64> {
        let mut out: Vec<f64> = c.iter().map(|&v| v as f64).collect();
        for i in 0..r {
            for j in 0..16 {
                out[i * ldc + j] += (0..kc).map(|k| a[i * lda + k] as f64 * b[k * ldb + j] as f64).sum::<f64>();
            }
        }
        out
    }

    /// The 16- and 8-lane activations equal [`Activation::apply`] bit for bit, on NaN, signed
    /// zeros, infinities and the bounds themselves.
    #[test]
    fn act_zmm_matches_apply() {
        if !avx512vl() {
            return;
        }
        let vals: [f32; 16] = [
            f32::NAN,
            -f32::NAN,
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            -0.5,
            0.25,
            -0.25,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-40,
            -1e-40,
            3.0,
            0.5000001,
        ];
        let acts = [
            Activation::None,
            Activation::Relu,
            Activation::Clip { min: -0.5, max: 0.5 },
            Activation::Clip { min: 0.0, max: 6.0 },
            Activation::Threshold { alpha: 0.25 },
            Activation::Threshold { alpha: -0.0 },
        ];
        #[target_feature(enable = "avx512f")]
        fn lanes(act: Activation, v: &[f32; 16]) -> [f32; 16] {
            let mut out = [0.0f32; 16];
            // SAFETY: 16 values each side.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), act_zmm(Some(act), _mm512_loadu_ps(v.as_ptr()))) };
            out
        }
        #[target_feature(enable = "avx2")]
        fn halves(act: Activation, v: &[f32; 16]) -> [f32; 16] {
            let mut out = [0.0f32; 16];
            // SAFETY: 16 values each side, 8 per half.
            unsafe {
                for h in 0..2 {
                    _mm256_storeu_ps(out.as_mut_ptr().add(8 * h), act_ymm(act, _mm256_loadu_ps(v.as_ptr().add(8 * h))));
                }
            }
            out
        }
        for act in acts {
            // SAFETY: AVX-512 F (hence AVX2) detected above.
            for got in unsafe { [lanes(act, &vals), halves(act, &vals)] } {
                for (g, v) in got.iter().zip(vals) {
                    assert_eq!(g.to_bits(), act.apply(v).to_bits(), "{act:?} of {v}");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(300)))]
        /// Both tiles (AVX2 6-row, AVX-512 12-row where the CPU has it) against the plain
        /// product, with padded strides and untouched elements between rows.
        #[test]
        fn tile_matches_the_plain_product(r in 1usize..=12, kc in 0usize..40, pad_a in 0usize..5, pad_b in 0usize..5, pad_c in 0usize..5, seed in any::<u64>()) {
            let Some(f) = Fma::detect() else { return Ok(()) };
            let mut s = seed | 1;
            let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; (s % 2001) as f32 / 1000.0 - 1.0 };
            let (lda, ldb, ldc) = (kc + pad_a, 16 + pad_b, 16 + pad_c);
            let a: Vec<f32> = (0..r * lda).map(|_| next()).collect();
            let b: Vec<f32> = (0..kc.max(1) * ldb).map(|_| next()).collect();
            let c0: Vec<f32> = (0..r * ldc).map(|_| next()).collect();
            let want = tile_ref(r, kc, &a, lda, &b, ldb, &c0, ldc);
            for mk in [f, f.avx2_only()] {
                if r > mk.rows() {
                    continue;
                }
                let mut c = c0.clone();
                macro_rules! go { ($($n:literal)*) => { match r { $($n => mk.tile::<$n>(kc, &a, lda, &b, ldb, &mut c, ldc),)* _ => unreachable!() } } }
                go!(1 2 3 4 5 6 7 8 9 10 11 12);
                for (i, (g, w)) in c.iter().zip(&want).enumerate() {
                    prop_assert!((*g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()), "elem {i}: {g} vs {w}");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(200)))]
        /// The AVX-512 4-bit decode gives the stored weights of every run of rows, for prefixes
        /// of every length.
        #[test]
        fn books4_decode_rows_matches_the_stored_weights(rows in 1usize..6, cols in 1usize..80, groups in 1usize..4, f16_values in any::<bool>(),
                                              seed in 0u64..1000) {
            let Some(c) = Codes::detect().filter(|c| c.wide()) else { return Ok(()) };
            let (payload, w) = crate::kernels::testutil::quantized(rows, cols, 4, f16_values, groups, seed);
            let cb = crate::codebook::Codebook::parse(&payload, rows, cols).unwrap();
            let p = cb.parts();
            let books = c.books4(&p).unwrap();
            // SAFETY (the reads below): every float was written with `MaybeUninit::new`.
            let read = |b: &[MaybeUninit<f32>]| -> Vec<f32> { b.iter().map(|v| unsafe { v.assume_init() }).collect() };
            for m0 in 0..rows {
                for len in [cols, cols / 2, 1].into_iter().filter(|&l| l > 0) {
                    let n = rows - m0;
                    let mut out = vec![MaybeUninit::new(f32::NAN); n * len + 1];
                    let got = books.decode_rows(&p, m0, len, &mut out[..n * len]).map(|d| d.to_vec());
                    prop_assert!(got.is_some());
                    let got = got.unwrap_or_default();
                    for i in 0..n {
                        prop_assert_eq!(&got[i * len..(i + 1) * len], &w[(m0 + i) * cols..(m0 + i) * cols + len]);
                    }
                    prop_assert_eq!(read(&out[..n * len]), got);
                    prop_assert!(read(&out[n * len..])[0].is_nan(), "wrote past the end");
                }
                // More weights than a row holds, or rows past the last: refused, untouched.
                let mut long = vec![MaybeUninit::new(0.0f32); 2 * cols.div_ceil(2) + 1];
                let l = long.len();
                prop_assert!(books.decode_rows(&p, m0, l, &mut long).is_none());
                let mut past = vec![MaybeUninit::new(0.0f32); 2 * cols];
                prop_assert!(books.decode_rows(&p, rows - 1, cols, &mut past).is_none());
                prop_assert!(read(&long).iter().chain(&read(&past)).all(|&v| v == 0.0));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(200)))]
        /// The short-row 4-bit kernel adds each row's dot product with the inputs (to rounding)
        /// to the outputs, for every number of rows around the blocks of 16 and every row
        /// length up to 16, and refuses longer rows untouched.
        #[test]
        fn gemv4_short_adds_every_rows_dot_product(rows in 1usize..40, cols in 1usize..=16, groups in 1usize..5, f16_values in any::<bool>(),
                                                   seed in 0u64..1000) {
            let Some(c) = Codes::detect().filter(|c| c.wide()) else { return Ok(()) };
            let (payload, w) = crate::kernels::testutil::quantized(rows, cols, 4, f16_values, groups, seed);
            let cb = crate::codebook::Codebook::parse(&payload, rows, cols).unwrap();
            let p = cb.parts();
            let x = crate::kernels::testutil::data(cols, seed + 1);
            let start = crate::kernels::testutil::data(rows, seed + 2);
            let mut out = start.clone();
            prop_assert!(c.gemv4_short(&p, &x, &mut out));
            for j in 0..rows {
                let want = start[j] + w[j * cols..(j + 1) * cols].iter().zip(&x).map(|(a, b)| a * b).sum::<f32>();
                let scale = 1.0 + start[j].abs() + w[j * cols..(j + 1) * cols].iter().zip(&x).map(|(a, b)| (a * b).abs()).sum::<f32>();
                prop_assert!((out[j] - want).abs() <= 1e-5 * scale, "row {}: {} against {}", j, out[j], want);
            }
            let mut long = start.clone();
            prop_assert!(!c.gemv4_short(&p, &[1.0; 17], &mut long));
            prop_assert_eq!(long, start);
        }
    }

    /// Lane `i` of the 16-register reduction is the sum of register `i`'s lanes (each lane of
    /// each register a distinct power of two, so a misplaced lane changes the sum).
    #[test]
    fn reduce16_sums_each_register_into_its_lane() {
        let Some(_) = Codes::detect().filter(|c| c.wide()) else { return };
        let regs: Vec<[f32; 16]> = (0..16).map(|i| core::array::from_fn(|l| ((i * 16 + l) % 23) as f32 * 2f32.powi(l as i32))).collect();
        // SAFETY: AVX-512 F, VL and BW detected.
        let got: [f32; 16] = unsafe {
            let v: [__m512; 16] = core::array::from_fn(|i| _mm512_loadu_ps(regs[i].as_ptr()));
            core::mem::transmute(reduce16(v))
        };
        for (i, r) in regs.iter().enumerate() {
            assert_eq!(got[i], r.iter().sum::<f32>(), "lane {i}");
        }
    }

    /// The permuted-input orders cover each input of a block once.
    #[test]
    fn plane_orders_are_permutations() {
        let mut full: Vec<usize> = (0..PLANE_BLOCK).map(plane_source).collect();
        let mut half: Vec<usize> = (0..PLANE_BLOCK / 2).map(half_source).collect();
        full.sort_unstable();
        half.sort_unstable();
        assert_eq!(full, (0..PLANE_BLOCK).collect::<Vec<_>>());
        assert_eq!(half, (0..PLANE_BLOCK / 2).collect::<Vec<_>>());
        assert_eq!(
            (planes_len(0), planes_len(1), planes_len(32), planes_len(33), planes_len(64), planes_len(97)),
            (0, 32, 32, 64, 64, 128)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(200)))]
        /// The AVX2 byte-plane kernels against the stored weights: the decoders give them bit for
        /// bit (every row run, prefixes and even offsets of every length, up to the payload's
        /// last byte), and the product of every row with an input agrees with the plain sum over
        /// them (any length: whole, half and ragged blocks; several groups; f32 and f16 values).
        #[test]
        fn byte_planes_match_the_stored_weights(rows in 1usize..7, cols in 1usize..300, groups in 1usize..5, f16_values in any::<bool>(),
                                                seed in 0u64..1000) {
            let Some(c) = Codes::detect() else { return Ok(()) };
            // Under Miri: rows up to two whole blocks and a half one.
            let cols = if cfg!(miri) { cols % 160 + 1 } else { cols };
            let (payload, w) = crate::kernels::testutil::quantized(rows, cols, 4, f16_values, groups, seed);
            let cb = crate::codebook::Codebook::parse(&payload, rows, cols).unwrap();
            let p = cb.parts();
            let books = c.plane_books(&p).unwrap();
            // SAFETY (the reads below): every float was written with `MaybeUninit::new`.
            let read = |b: &[MaybeUninit<f32>]| -> Vec<f32> { b.iter().map(|v| unsafe { v.assume_init() }).collect() };
            for m0 in 0..rows {
                for len in [cols, cols / 2, 1].into_iter().filter(|&l| l > 0) {
                    let n = rows - m0;
                    let mut out = vec![MaybeUninit::new(f32::NAN); n * len + 1];
                    let got = books.decode_rows(&p, m0, len, &mut out[..n * len]).map(|d| d.to_vec());
                    prop_assert!(got.is_some());
                    let got = got.unwrap_or_default();
                    for i in 0..n {
                        prop_assert_eq!(&got[i * len..(i + 1) * len], &w[(m0 + i) * cols..(m0 + i) * cols + len]);
                    }
                    prop_assert!(read(&out[n * len..])[0].is_nan(), "wrote past the end");
                }
                for k0 in [0, 2, cols / 2 / 2 * 2, cols.saturating_sub(1) / 2 * 2].into_iter().filter(|&k| k <= cols) {
                    let mut run = vec![f32::NAN; cols - k0 + 1];
                    let l = run.len() - 1;
                    prop_assert!(books.decode(&p, m0, k0, &mut run[..l]));
                    prop_assert_eq!(&run[..l], &w[m0 * cols + k0..(m0 + 1) * cols]);
                    prop_assert!(run[l].is_nan(), "wrote past the end");
                }
                prop_assert!(!books.decode(&p, m0, 1, &mut [0.0]), "odd offset");
                let mut long = vec![MaybeUninit::new(0.0f32); 2 * cols.div_ceil(2) + 1];
                let l = long.len();
                prop_assert!(books.decode_rows(&p, m0, l, &mut long).is_none());
            }
            // Column blocks of every row, dead rows as zeros (the buffer's floats past the block
            // untouched).
            let dec = Decoder4::Planes(c.plane_books(&p).unwrap());
            let live: Vec<bool> = (0..rows).map(|i| (seed >> i) & 1 == 0 || i == 0).collect();
            for o0 in [0, cols / 2 / 2 * 2].into_iter().filter(|&o| o < cols) {
                for nb in [cols - o0, (cols - o0).min(32), 1] {
                    let mut out = vec![MaybeUninit::new(f32::NAN); rows * nb + 1];
                    let got = dec.decode_cols(&p, o0, nb, &live, false, &mut out).map(|d| d.to_vec());
                    prop_assert!(got.is_some());
                    let got = got.unwrap_or_default();
                    for (ci, &l) in live.iter().enumerate() {
                        let want: Vec<f32> = if l { w[ci * cols + o0..ci * cols + o0 + nb].to_vec() } else { vec![0.0; nb] };
                        prop_assert_eq!(&got[ci * nb..(ci + 1) * nb], &want[..], "row {} of the block at {}", ci, o0);
                    }
                    prop_assert!(read(&out[rows * nb..])[0].is_nan(), "wrote past the block");
                    // The live rows only, one after the other.
                    let n_live = live.iter().filter(|&&l| l).count();
                    let mut out = vec![MaybeUninit::new(f32::NAN); n_live * nb + 1];
                    let got = dec.decode_cols(&p, o0, nb, &live, true, &mut out).map(|d| d.to_vec()).unwrap_or_default();
                    let want: Vec<f32> = (0..rows).filter(|&ci| live[ci]).flat_map(|ci| w[ci * cols + o0..ci * cols + o0 + nb].to_vec()).collect();
                    prop_assert_eq!(got, want, "live rows of the block at {}", o0);
                    prop_assert!(read(&out[n_live * nb..])[0].is_nan(), "wrote past the live rows");
                }
            }
            prop_assert!(dec.decode_cols(&p, 1, 1, &live, false, &mut [MaybeUninit::new(0.0); 64]).is_none(), "odd offset");
            // The product, from byte 0 and from a later even start.
            let mut s = seed | 1;
            let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
            let x: Vec<f32> = (0..cols).map(|_| (next() % 2001) as f32 / 1000.0 - 1.0).collect();
            for k0 in [0, cols / 4 * 2] {
                let xs = &x[k0..];
                let mut xp = vec![MaybeUninit::new(f32::NAN); planes_len(xs.len()) + 3];
                let xp = permute_planes(xs, &mut xp);
                prop_assert_eq!(xp.len(), planes_len(xs.len()));
                let mut out = vec![0.5f32; rows];
                prop_assert!(c.gemv4_planes(&books, &p, k0 / 2, xp, xs.len(), &mut out));
                for (j, o) in out.iter().enumerate() {
                    let want: f64 = 0.5 + (k0..cols).map(|m| w[j * cols + m] as f64 * x[m] as f64).sum::<f64>();
                    prop_assert!((*o as f64 - want).abs() <= 1e-5 * (1.0 + cols as f64), "row {j} from {k0}: {o} vs {want}");
                }
                // Too few permuted inputs, or codes past the row: refused, untouched.
                let short = &xp[..xp.len().saturating_sub(32)];
                prop_assert!(xs.is_empty() || !c.gemv4_planes(&books, &p, k0 / 2, short, xs.len(), &mut out));
                prop_assert!(!c.gemv4_planes(&books, &p, k0 / 2 + 1, xp, xs.len().max(1) + cols.div_ceil(2) * 2, &mut out));
            }
        }
    }

    /// The short-row 4-bit product (rows of 1–16 codes, eight rows a pass, ragged last pass,
    /// several groups) against the plain sum over the stored weights; longer rows refused.
    #[test]
    fn short_rows_match_the_stored_weights() {
        let Some(c) = Codes::detect() else { return };
        for (rows, cols, groups) in [(13, 8, 3), (8, 16, 1), (5, 1, 2), (17, 11, 4), (9, 15, 2)] {
            let (payload, w) = crate::kernels::testutil::quantized(rows, cols, 4, false, groups, 7 + cols as u64);
            let cb = crate::codebook::Codebook::parse(&payload, rows, cols).unwrap();
            let p = cb.parts();
            let books = c.plane_books(&p).unwrap();
            let x: Vec<f32> = (0..cols).map(|m| (m as f32 * 0.37).sin()).collect();
            let mut out = vec![0.25f32; rows];
            assert!(c.gemv4_short_planes(&books, &p, &x, &mut out));
            for (j, o) in out.iter().enumerate() {
                let want: f64 = 0.25 + (0..cols).map(|m| w[j * cols + m] as f64 * x[m] as f64).sum::<f64>();
                assert!((*o as f64 - want).abs() <= 1e-5 * (1.0 + cols as f64), "{rows}×{cols} row {j}: {o} vs {want}");
            }
        }
        let (payload, _) = crate::kernels::testutil::quantized(2, 17, 4, false, 1, 1);
        let cb = crate::codebook::Codebook::parse(&payload, 2, 17).unwrap();
        let p = cb.parts();
        let books = c.plane_books(&p).unwrap();
        let mut out = [1.0f32; 2];
        assert!(!c.gemv4_short_planes(&books, &p, &[0.5; 17], &mut out) && out == [1.0; 2]);
        assert!(!c.gemv4_short_planes(&books, &p, &[], &mut out) && out == [1.0; 2]);
    }

    /// The register transpose against its definition, every lane distinct.
    #[test]
    fn transpose8_moves_every_lane() {
        if !is_x86_feature_detected!("avx2") {
            eprintln!("skipped: no AVX2 on this CPU");
            return;
        }
        let v: Vec<f32> = (0..64).map(|i| i as f32).collect();
        // SAFETY: AVX2 detected above; 64 floats read and written.
        unsafe {
            let rows: [__m256; 8] = core::array::from_fn(|i| _mm256_loadu_ps(v.as_ptr().add(8 * i)));
            let mut got = [0.0f32; 64];
            for (j, c) in transpose8(rows).iter().enumerate() {
                _mm256_storeu_ps(got.as_mut_ptr().add(8 * j), *c);
            }
            for (j, i) in (0..8).flat_map(|j| (0..8).map(move |i| (j, i))) {
                assert_eq!(got[8 * j + i], v[8 * i + j], "row {j} lane {i}");
            }
        }
    }

    /// The vector zero test of planes against the scalar one: ±0 planes dead, a single other
    /// value anywhere (NaN, a subnormal) makes a plane live; flags are ORed in.
    #[test]
    fn live_rows_is_the_scalar_test() {
        if Codes::detect().is_none() {
            return;
        }
        for hw in [1usize, 3, 7, 8, 9, 15, 16, 36] {
            let planes = 2 * hw + 3;
            let mut x = vec![0.0f32; planes * hw];
            // Plane `2i` gets one value at position `i`, plane `2i + 1` a -0 there.
            let specials = [1.0, f32::NAN, f32::from_bits(1), -3.5, f32::INFINITY];
            for i in 0..hw {
                x[2 * i * hw + i] = specials[i % specials.len()];
                x[(2 * i + 1) * hw + i] = -0.0;
            }
            let mut live = vec![false; planes];
            live[planes - 1] = true;
            assert!(live_rows(&x, hw, &mut live));
            let want: Vec<bool> = (0..planes).map(|p| p == planes - 1 || x[p * hw..(p + 1) * hw].iter().any(|&v| v != 0.0)).collect();
            assert_eq!(live, want, "hw {hw}");
            assert!(!live_rows(&x[..planes * hw - 1], hw, &mut live), "short input");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(60)))]
        /// Many short rows (depthwise filters: the row runs decoded as one code stream, through
        /// the stack buffer when rows have a padding code): every row bit for bit, nothing
        /// written past the end, across runs of one group and buffer chunks.
        #[test]
        fn short_rows_decode_as_runs(rows in 1usize..1300, cols in prop_oneof![1usize..12, 1usize..64], groups in 1usize..5, seed in 0u64..1000) {
            let Some(c) = Codes::detect() else { return Ok(()) };
            let rows = if cfg!(miri) { rows % 40 + 1 } else { rows };
            let (payload, w) = crate::kernels::testutil::quantized(rows, cols, 4, false, groups, seed);
            let cb = crate::codebook::Codebook::parse(&payload, rows, cols).unwrap();
            let p = cb.parts();
            let books = c.plane_books(&p).unwrap();
            for m0 in [0, rows / 3, rows - 1] {
                let n = rows - m0;
                let mut out = vec![MaybeUninit::new(f32::NAN); n * cols + 1];
                let got = books.decode_rows(&p, m0, cols, &mut out[..n * cols]).map(|d| d.to_vec()).unwrap_or_default();
                prop_assert_eq!(&got[..], &w[m0 * cols..]);
                // SAFETY: written with `MaybeUninit::new`.
                prop_assert!(unsafe { out[n * cols].assume_init() }.is_nan(), "wrote past the end");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::kernels::testutil::cases(500)))]
        /// Against the plain loop: every width, any length (ragged tails), rows shorter than
        /// the input (missing codes are 0).
        #[test]
        fn dot_codes_matches_the_plain_loop(bits in prop_oneof![Just(2usize), Just(4), Just(8)], n in 0usize..300, short in 0usize..3,
                                            seed in any::<u64>()) {
            if !avx2_fma() {
                return Ok(());
            }
            let mut s = seed | 1;
            let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
            let mut table = [0.0f32; 256];
            for v in table.iter_mut().take(1 << bits) {
                *v = (next() % 2001) as f32 / 1000.0 - 1.0;
            }
            let bytes = (n * bits).div_ceil(8).saturating_sub(short);
            let row: Vec<u8> = (0..bytes).map(|_| next() as u8).collect();
            let x: Vec<f32> = (0..n).map(|_| (next() % 2001) as f32 / 1000.0 - 1.0).collect();
            let mask = (1usize << bits) - 1;
            let want: f64 = (0..n)
                .map(|j| {
                    let code = row.get(j * bits / 8).map_or(0, |&b| (b as usize >> (j * bits % 8)) & mask);
                    table[code] as f64 * x[j] as f64
                })
                .sum();
            let got = dot_codes(bits, &table, &row, &x) as f64;
            prop_assert!((got - want).abs() <= 1e-5 * (1.0 + n as f64), "{got} vs {want}");
            if bits == 4 {
                // Four rows at once (the same row four times, and shifted copies).
                let c = Codes::detect().unwrap();
                let r2: Vec<u8> = row.iter().map(|b| b.rotate_left(3)).collect();
                let four = c.dot_rows4(4, &table, [&row, &r2, &row, &r2], &x).unwrap();
                let got2 = dot_codes(4, &table, &r2, &x) as f64;
                for (k, v) in four.iter().enumerate() {
                    let w = if k % 2 == 0 { want } else { got2 };
                    prop_assert!((*v as f64 - w).abs() <= 1e-5 * (1.0 + n as f64), "row {k}: {v} vs {w}");
                }
                if c.wide() {
                    let xe: Vec<f32> = x.iter().step_by(2).copied().collect();
                    let xo: Vec<f32> = x.iter().skip(1).step_by(2).copied().collect();
                    // The kernel's split into unwritten memory: these halves, `xo` ending in 0.0
                    // for an odd length, and nothing written into buffers one float short.
                    let h = n.div_ceil(2);
                    let (mut be, mut bo) = (vec![MaybeUninit::<f32>::uninit(); h + 3], vec![MaybeUninit::<f32>::uninit(); h + 3]);
                    let (se, so) = c.split_parity(&x, &mut be, &mut bo).unwrap();
                    prop_assert_eq!(se, &xe[..]);
                    prop_assert_eq!(&so[..xo.len()], &xo[..]);
                    prop_assert!(so.len() == h && (n % 2 == 0 || so[h - 1] == 0.0));
                    if h > 0 {
                        prop_assert!(c.split_parity(&x, &mut be[..h - 1], &mut bo).is_none());
                        prop_assert!(c.split_parity(&x, &mut be, &mut bo[..h - 1]).is_none());
                    }
                    // Every batch size, alternating the two rows.
                    for nr in 1..=SPLIT_ROWS {
                        let stride = row.len();
                        let rows: Vec<u8> = (0..nr).flat_map(|k| if k % 2 == 0 { row.clone() } else { r2.clone() }).collect();
                        // The table as stored f32 and f16 bytes (the values are multiples of
                        // 1/1000 in [-1, 1]: f16 rounds them, so the f16 rows are checked
                        // against the f32 rows within f16's precision).
                        let b32: Vec<u8> = table[..16].iter().flat_map(|v| v.to_le_bytes()).collect();
                        let books = vec![&b32[..]; nr];
                        let split = c.dot_rows_split(&books, false, &rows, stride, &x, &xe, &xo).unwrap();
                        let b16: Vec<u8> = table[..16].iter().flat_map(|v| half::f16::from_f32(*v).to_bits().to_le_bytes()).collect();
                        let t16: Vec<f32> = table[..16].iter().map(|v| half::f16::from_f32(*v).to_f32()).collect();
                        let h16 = c.dot_rows_split(&vec![&b16[..]; nr], true, &rows, stride, &x, &xe, &xo).unwrap();
                        for (k, v) in h16.iter().enumerate().take(nr) {
                            let r = if k % 2 == 0 { &row } else { &r2 };
                            let w: f64 = (0..n).map(|j| t16[r.get(j / 2).map_or(0, |&b| (b as usize >> (j % 2 * 4)) & 15)] as f64 * x[j] as f64).sum();
                            prop_assert!((*v as f64 - w).abs() <= 1e-5 * (1.0 + n as f64), "f16 split row {k} of {nr}: {v} vs {w}");
                        }
                        for (k, v) in split.iter().enumerate() {
                            let w = if k >= nr { 0.0 } else if k % 2 == 0 { want } else { got2 };
                            prop_assert!((*v as f64 - w).abs() <= 1e-5 * (1.0 + n as f64), "split row {k} of {nr}: {v} vs {w}");
                        }
                    }
                    let b32: Vec<u8> = table[..16].iter().flat_map(|v| v.to_le_bytes()).collect();
                    prop_assert!(c.dot_rows_split(&[&b32[..]; SPLIT_ROWS + 1], false, &row.repeat(SPLIT_ROWS + 1), row.len(), &x, &xe, &xo).is_none());
                    prop_assert!(row.is_empty() || c.dot_rows_split(&[&b32[..]; 2], false, &row, row.len(), &x, &xe, &xo).is_none());
                    // A short codebook reads as zeros past its bytes.
                    let short = c.dot_rows_split(&[&b32[..4]], false, &row, row.len(), &x, &xe, &xo).unwrap()[0] as f64;
                    let ws: f64 = (0..n).filter(|&j| row.get(j / 2).map_or(0, |&b| (b as usize >> (j % 2 * 4)) & 15) == 0).map(|j| table[0] as f64 * x[j] as f64).sum();
                    prop_assert!((short - ws).abs() <= 1e-5 * (1.0 + n as f64), "short codebook: {short} vs {ws}");
                }
                for vl in [false, true] {
                    if vl && !avx512vl() {
                        continue;
                    }
                    let m = n.min(row.len() * 2);
                    // SAFETY: AVX2 + FMA checked above, AVX-512 VL when `vl`.
                    let (h, done) = unsafe { if vl { rows4_vl(&table, [&row; 4], &x[..m]) } else { rows4(&table, [&row; 4], &x[..m]) } };
                    let wh: f64 = (0..done).map(|j| table[(row[j / 2] as usize >> (j % 2 * 4)) & 15] as f64 * x[j] as f64).sum();
                    prop_assert!(h.iter().all(|&v| (v as f64 - wh).abs() <= 1e-5 * (1.0 + n as f64)));
                }
                // The AVX2-only variant too, where AVX-512 would take over.
                let m = n.min(row.len() * 2);
                // SAFETY: AVX2 + FMA checked above.
                let (head, done) = unsafe { dot4(&table, &row, &x[..m]) };
                let (want_head, _) = (0..done).fold((0.0f64, 0), |(s, _), j| (s + table[(row[j / 2] as usize >> (j % 2 * 4)) & 15] as f64 * x[j] as f64, 0));
                prop_assert!((head as f64 - want_head).abs() <= 1e-5 * (1.0 + n as f64));
            }
        }
    }
}

/// Most weights per filter [`conv_s_avx2`] takes (every stem: at most 4 input channels of
/// [`MAX_TAPS`] taps).
const CONV_S_K: usize = 4 * MAX_TAPS;

/// Widest kernel the AVX2 in-place strided kernels ([`dw_s2_avx2`], [`conv_s_avx2`]) take.
const S_AVX2_KW: usize = 8;

/// Where tap `kx` of an 8-output block reads along a row: its first input column and the lane
/// masks of the (one at stride 1, two at stride 2) 8-float loads, with whether every lane of
/// them lies inside the row (plain loads).
#[derive(Clone, Copy)]
struct TapCols {
    col: isize,
    masks: [__m256i; 2],
    full: bool,
}

/// The [`TapCols`] of taps `0 .. kw` for the block of outputs `ox0 .. ox0 + 8` of a row `w`
/// wide, at stride `S` with left padding `pl`: output `ox0 + l`'s tap `kx` reads input column
/// `S·(ox0 + l) + kx − pl`.
#[inline(always)]
fn tap_cols<const S: usize>(ox0: usize, kw: usize, pl: usize, w: usize) -> [TapCols; S_AVX2_KW] {
    // SAFETY: only reached from AVX2 functions (the kernels below).
    unsafe {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let (wv, neg) = (_mm256_set1_epi32(w.min(i32::MAX as usize) as i32), _mm256_set1_epi32(-1));
        let mut t = [TapCols { col: 0, masks: [_mm256_setzero_si256(); 2], full: false }; S_AVX2_KW];
        for (kx, tc) in t.iter_mut().enumerate().take(kw) {
            let col = (S * ox0 + kx) as isize - pl as isize;
            tc.col = col;
            for (h, m) in tc.masks.iter_mut().enumerate().take(S) {
                let at = _mm256_add_epi32(_mm256_set1_epi32((col + 8 * h as isize) as i32), lanes);
                *m = _mm256_and_si256(_mm256_cmpgt_epi32(at, neg), _mm256_cmpgt_epi32(wv, at));
            }
            tc.full = col >= 0 && col + 8 * S as isize <= w as isize;
        }
        t
    }
}

/// The 8 × 8 transpose of `r`: lane `i` of row `j` of the result is lane `j` of `r[i]`.
#[inline(always)]
pub(super) fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    // SAFETY: only reached from AVX2 functions (`im_1x1_avx2_n`, the Winograd weight transform,
    // and its test after detecting AVX2).
    unsafe {
        // Pairs of rows interleaved, then quads, within each 128-bit half; then the halves.
        let t: [__m256; 8] = core::array::from_fn(|i| {
            let (a, b) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
            if i % 2 == 0 {
                _mm256_unpacklo_ps(a, b)
            } else {
                _mm256_unpackhi_ps(a, b)
            }
        });
        let q = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        core::array::from_fn(|j| {
            if j < 4 {
                _mm256_permute2f128_ps::<0x20>(q[j], q[j + 4])
            } else {
                _mm256_permute2f128_ps::<0x31>(q[j - 4], q[j])
            }
        })
    }
}

/// Stores the first `cnt ≤ 8` lanes of `v` at `p`, nothing past them. A partial block goes
/// out as at most three plain stores of 4, 2 and 1 lanes: AVX2 masked stores are slow on some
/// CPUs, and a copy through the stack became a `memcpy` call per block (2 % of kws_dscnn's
/// run, 2 % of VWW's on an AVX2-only EPYC).
#[inline(always)]
pub(super) unsafe fn store_first(p: *mut f32, v: __m256, cnt: usize) {
    // SAFETY: the caller guarantees `cnt` writable floats at `p`; each store below writes
    // lanes below `cnt` only.
    unsafe {
        if cnt >= 8 {
            _mm256_storeu_ps(p, v);
            return;
        }
        let (mut p, mut lo) = (p, _mm256_castps256_ps128(v));
        if cnt & 4 != 0 {
            _mm_storeu_ps(p, lo);
            lo = _mm256_extractf128_ps::<1>(v);
            p = p.add(4);
        }
        if cnt & 2 != 0 {
            p.cast::<i64>().write_unaligned(_mm_cvtsi128_si64(_mm_castps_si128(lo)));
            lo = _mm_movehl_ps(lo, lo);
            p = p.add(2);
        }
        if cnt & 1 != 0 {
            _mm_store_ss(p, lo);
        }
    }
}

/// [`Fma::dw_s2`] with AVX2 for `n` channels, kernels at most [`S_AVX2_KW`] wide: 8 outputs of
/// a row per register, each tap's vector the even lanes of two 8-float loads of its input row
/// (masked where they leave the row); rows in the padding add `w · 0` as the definition does.
/// The caller guarantees the bounds.
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_s2_avx2(s: &S2, x: *const f32, w: *const f32, b: *const f32, act: Activation, out: *mut f32, n: usize) {
    // SAFETY: the caller's guarantee.
    unsafe {
        match (s.kh, s.kw) {
            (3, 3) => dw_in_place_k::<2, 3, 3>(s, x, w, b, act, out, n),
            _ => dw_in_place_k::<2, 0, 0>(s, x, w, b, act, out, n),
        }
    }
}

/// [`dw_s2_avx2`] (`S = 2`) and [`dw_s1_avx2`] (`S = 1`) for `KH × KW` kernels (`0, 0`: the
/// layer's, known at run time only): per 8-output block of a row and channel, one output row
/// at a time at stride 2 ([`dw_s2_row`]), [`S1_ROWS`] at stride 1 ([`dw_s1_rows`]).
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_in_place_k<const S: usize, const KH: usize, const KW: usize>(
    s: &S2,
    x: *const f32,
    w: *const f32,
    b: *const f32,
    act: Activation,
    out: *mut f32,
    n: usize,
) {
    let (taps, ip, op) = (s.kh * s.kw, s.h * s.w, s.oh * s.ow);
    // SAFETY: the caller's guarantee.
    unsafe {
        for ox0 in (0..s.ow).step_by(8) {
            let cnt = (s.ow - ox0).min(8);
            let tc = tap_cols::<S>(ox0, s.kw, s.pl, s.w);
            let full = tc[..s.kw].iter().all(|t| t.full);
            for c in 0..n {
                let (xc, wc, oc) = (x.add(c * ip), w.add(c * taps), out.add(c * op + ox0));
                let b0 = _mm256_set1_ps(*b.add(c));
                let wv = tap_weights::<KH, KW>(wc);
                let mut oy = 0;
                while oy < s.oh {
                    if S == 1 {
                        let acc = if full {
                            dw_s1_rows::<KH, KW, true>(s, xc, wc, &wv, b0, &tc, oy)
                        } else {
                            dw_s1_rows::<KH, KW, false>(s, xc, wc, &wv, b0, &tc, oy)
                        };
                        for (r, a) in acc.iter().enumerate().take(s.oh - oy) {
                            store_first(oc.add((oy + r) * s.ow), act_ymm(act, *a), cnt);
                        }
                        oy += S1_ROWS;
                    } else {
                        let acc = if full {
                            dw_s2_row::<KH, KW, true>(s, xc, wc, &wv, b0, &tc, oy)
                        } else {
                            dw_s2_row::<KH, KW, false>(s, xc, wc, &wv, b0, &tc, oy)
                        };
                        store_first(oc.add(oy * s.ow), act_ymm(act, unperm(acc)), cnt);
                        oy += 1;
                    }
                }
            }
        }
    }
}

/// The sum of output row `oy` of one channel for the block `tc` describes, in `(ky, kx)` order
/// from `b0`, each term a product then a sum: plain loads when `FULL`, masked ones otherwise;
/// rows in the padding add `w · 0`. Lanes in [`evens_q`] order ([`unperm`] restores it); taps
/// `kx` and `kx + 1` read the evens and the odds of one load pair (tap `kx`'s masks zero
/// exactly the odd lanes tap `kx + 1` would).
#[inline(always)]
unsafe fn dw_s2_row<const KH: usize, const KW: usize, const FULL: bool>(
    s: &S2,
    xc: *const f32,
    wc: *const f32,
    wv: &[__m256; TAPS_REG],
    b0: __m256,
    tc: &[TapCols; S_AVX2_KW],
    oy: usize,
) -> __m256 {
    let (kh, kw) = if KH > 0 { (KH, KW) } else { (s.kh, s.kw) };
    let mut acc = b0;
    // SAFETY: the caller's guarantee; rows outside the plane are not read, and the lanes read
    // of a row are inside it (`tap_cols`).
    unsafe {
        for ky in 0..kh {
            let iy = (2 * oy + ky) as isize - s.pt as isize;
            let wr = wc.add(ky * kw);
            if (0..s.h as isize).contains(&iy) {
                let row = xc.add(iy as usize * s.w);
                let mut kx = 0;
                while kx < kw {
                    let t = &tc[kx];
                    let p = row.wrapping_offset(t.col);
                    let (lo, hi) = if FULL {
                        (_mm256_loadu_ps(p), _mm256_loadu_ps(p.wrapping_add(8)))
                    } else {
                        (_mm256_maskload_ps(p, t.masks[0]), _mm256_maskload_ps(p.wrapping_add(8), t.masks[1]))
                    };
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(tap_weight::<KH, KW>(wv, wr, ky * kw + kx, kx), evens_q(lo, hi)));
                    if kx + 1 < kw {
                        let w1 = tap_weight::<KH, KW>(wv, wr, ky * kw + kx + 1, kx + 1);
                        acc = _mm256_add_ps(acc, _mm256_mul_ps(w1, odds_q(lo, hi)));
                    }
                    kx += 2;
                }
            } else {
                for kx in 0..kw {
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(tap_weight::<KH, KW>(wv, wr, ky * kw + kx, kx), _mm256_setzero_ps()));
                }
            }
        }
    }
    acc
}

/// [`Fma::conv_s2`] with AVX2 for `n` filters at stride `S` (1 or 2), kernels at most
/// [`S_AVX2_KW`] wide: up to 4 filters × 24 outputs of a row (three 8-output blocks; single
/// blocks at the row's end) at a time, each tap vector (input channel, kernel row, column)
/// loaded once and fused into every filter's sum in the definition's `(c, ky, kx)` order; rows
/// in the padding fuse `w · 0`. The caller guarantees the bounds.
#[target_feature(enable = "avx2,fma")]
unsafe fn conv_s_avx2<const S: usize>(s: &S2, x: *const f32, w: *const f32, b: *const f32, act: Activation, out: *mut f32, n: usize) {
    let mut f0 = 0;
    while f0 < n {
        let nf = (n - f0).min(4);
        // SAFETY: the caller's guarantee, for filters `f0 .. f0 + nf`.
        unsafe {
            match nf {
                4 => conv_s_avx2_f::<S, 4>(s, x, w, b, act, out, f0),
                3 => conv_s_avx2_f::<S, 3>(s, x, w, b, act, out, f0),
                2 => conv_s_avx2_f::<S, 2>(s, x, w, b, act, out, f0),
                _ => conv_s_avx2_f::<S, 1>(s, x, w, b, act, out, f0),
            }
        }
        f0 += nf;
    }
}

/// [`conv_s_avx2`] for filters `f0 .. f0 + F`.
#[target_feature(enable = "avx2,fma")]
unsafe fn conv_s_avx2_f<const S: usize, const F: usize>(
    s: &S2,
    x: *const f32,
    w: *const f32,
    b: *const f32,
    act: Activation,
    out: *mut f32,
    f0: usize,
) {
    let op = s.oh * s.ow;
    // SAFETY: the caller's guarantee; rows outside the plane are not read, and the lanes read
    // of a row are inside it (`tap_cols`).
    unsafe {
        let mut bias = [_mm256_setzero_ps(); F];
        for (f, v) in bias.iter_mut().enumerate() {
            *v = _mm256_set1_ps(*b.add(f0 + f));
        }
        // The filters' weights tap-major (tap `t`'s `F` weights at `t·F`), so each tap's
        // broadcasts read fixed offsets from one pointer.
        let k = s.cg * s.kh * s.kw;
        let mut wp = [0.0f32; CONV_S_K * 4];
        if k > CONV_S_K {
            return;
        }
        for t in 0..k {
            for f in 0..F {
                wp[t * F + f] = *w.add((f0 + f) * k + t);
            }
        }
        let wf = wp.as_ptr();
        let mut ox0 = 0;
        while ox0 < s.ow {
            let nb = if s.ow - ox0 >= 24 { 3 } else { 1 };
            let tc: [[TapCols; S_AVX2_KW]; 3] = core::array::from_fn(|i| tap_cols::<S>(ox0 + 8 * i, s.kw, s.pl, s.w));
            let full = tc[..nb].iter().all(|c| c[..s.kw].iter().all(|t| t.full));
            for oy in 0..s.oh {
                let o = out.add(f0 * op + oy * s.ow + ox0);
                if nb == 3 {
                    let acc = if full {
                        conv_s_block::<S, F, 3, true>(s, x, wf, bias, &tc, oy)
                    } else {
                        conv_s_block::<S, F, 3, false>(s, x, wf, bias, &tc, oy)
                    };
                    for (f, a) in acc.iter().enumerate() {
                        for (i, v) in a.iter().enumerate() {
                            _mm256_storeu_ps(o.add(f * op + 8 * i), act_ymm(act, *v));
                        }
                    }
                } else {
                    let cnt = (s.ow - ox0).min(8);
                    let acc = if full {
                        conv_s_block::<S, F, 1, true>(s, x, wf, bias, &tc, oy)
                    } else {
                        conv_s_block::<S, F, 1, false>(s, x, wf, bias, &tc, oy)
                    };
                    for (f, a) in acc.iter().enumerate() {
                        store_first(o.add(f * op), act_ymm(act, a[0]), cnt);
                    }
                }
            }
            ox0 += (8 * nb).min(s.ow - ox0);
        }
    }
}

/// The sums of [`conv_s_avx2_f`]'s `F` filters over `NB` consecutive 8-output blocks (`tc[i]`
/// describes block `i`) of output row `oy`, from `bias`; every tap's loads plain when `FULL`
/// (all inside the row), masked otherwise. (Keeping the sums in [`evens_q`] order here, one
/// shuffle less per tap, took VWW's 3 → 8 stem from 23.1 to 24.2 µs: the compiler spilled.)
#[inline(always)]
unsafe fn conv_s_block<const S: usize, const F: usize, const NB: usize, const FULL: bool>(
    s: &S2,
    x: *const f32,
    wf: *const f32,
    bias: [__m256; F],
    tc: &[[TapCols; S_AVX2_KW]; 3],
    oy: usize,
) -> [[__m256; NB]; F] {
    let taps = s.kh * s.kw;
    let mut acc = [[_mm256_setzero_ps(); NB]; F];
    for (a, b) in acc.iter_mut().zip(&bias) {
        *a = [*b; NB];
    }
    // SAFETY: the caller's guarantee (as `conv_s_avx2_f`'s).
    unsafe {
        for c in 0..s.cg {
            let xc = x.add(c * s.h * s.w);
            for ky in 0..s.kh {
                let iy = (S * oy + ky) as isize - s.pt as isize;
                let wr = wf.add((c * taps + ky * s.kw) * F);
                if (0..s.h as isize).contains(&iy) {
                    let row = xc.add(iy as usize * s.w);
                    for kx in 0..s.kw {
                        let mut v = [_mm256_setzero_ps(); NB];
                        for (vi, ti) in v.iter_mut().zip(tc) {
                            let t = &ti[kx];
                            let p = row.wrapping_offset(t.col);
                            let ld = |h: usize| {
                                if FULL {
                                    _mm256_loadu_ps(p.wrapping_add(8 * h))
                                } else {
                                    _mm256_maskload_ps(p.wrapping_add(8 * h), t.masks[h])
                                }
                            };
                            *vi = if S == 1 { ld(0) } else { evens_pair(ld(0), ld(1)) };
                        }
                        for (f, a) in acc.iter_mut().enumerate() {
                            let wv = _mm256_set1_ps(*wr.add(kx * F + f));
                            for (ai, vi) in a.iter_mut().zip(&v) {
                                *ai = _mm256_fmadd_ps(wv, *vi, *ai);
                            }
                        }
                    }
                } else {
                    for kx in 0..s.kw {
                        for (f, a) in acc.iter_mut().enumerate() {
                            let wv = _mm256_set1_ps(*wr.add(kx * F + f));
                            for ai in a.iter_mut() {
                                *ai = _mm256_fmadd_ps(wv, _mm256_setzero_ps(), *ai);
                            }
                        }
                    }
                }
            }
        }
    }
    acc
}

/// Lanes 0, 2, 4, 6 of `a` and `b` within each 128-bit half, one shuffle: `a0 a2 b0 b2 a4
/// a6 b4 b6`, the even lanes of the 16 in the order `0 1 4 5 2 3 6 7` — lane-wise sums of such
/// vectors are the sums of [`evens_pair`]'s, permuted, until [`unperm`].
#[inline(always)]
fn evens_q(a: __m256, b: __m256) -> __m256 {
    // SAFETY: only reached from AVX2 functions (the kernels above).
    unsafe { _mm256_shuffle_ps::<0b10_00_10_00>(a, b) }
}

/// The odd lanes of `a` and `b` in [`evens_q`]'s order.
#[inline(always)]
fn odds_q(a: __m256, b: __m256) -> __m256 {
    // SAFETY: only reached from AVX2 functions (the kernels above).
    unsafe { _mm256_shuffle_ps::<0b11_01_11_01>(a, b) }
}

/// A vector in [`evens_q`]'s lane order back in order.
#[inline(always)]
fn unperm(v: __m256) -> __m256 {
    // SAFETY: only reached from AVX2 functions (the kernels above).
    unsafe { _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v))) }
}

/// Lanes 0, 2, 4, 6 of `a`, then of `b`.
#[inline(always)]
fn evens_pair(a: __m256, b: __m256) -> __m256 {
    // SAFETY: only reached from AVX2 functions (the kernels above).
    unsafe {
        let e = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(e)))
    }
}

/// Lanes 1, 3, 5, 7 of `a`, then of `b`.
#[inline(always)]
fn odds_pair(a: __m256, b: __m256) -> __m256 {
    // SAFETY: only reached from AVX2 functions (the kernels above).
    unsafe {
        let o = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(o)))
    }
}

/// Most taps whose broadcast weights the depthwise row kernels keep in registers (3 × 3).
const TAPS_REG: usize = 9;

/// The broadcast weights of a `KH × KW` filter at `wc` when its size is known and at most
/// [`TAPS_REG`] taps (else zeros: the kernels then broadcast each weight where they use it).
#[inline(always)]
unsafe fn tap_weights<const KH: usize, const KW: usize>(wc: *const f32) -> [__m256; TAPS_REG] {
    let mut wv = [_mm256_setzero_ps(); TAPS_REG];
    if KH > 0 && KH * KW <= TAPS_REG {
        for (t, v) in wv.iter_mut().enumerate().take(KH * KW) {
            // SAFETY: the caller's filter of `KH · KW` weights.
            *v = unsafe { _mm256_set1_ps(*wc.add(t)) };
        }
    }
    wv
}

/// Tap `t` (column `kx` of the kernel row at `wr`) of the filter: from `wv` where
/// [`tap_weights`] filled it, else broadcast from memory.
#[inline(always)]
unsafe fn tap_weight<const KH: usize, const KW: usize>(wv: &[__m256; TAPS_REG], wr: *const f32, t: usize, kx: usize) -> __m256 {
    if KH > 0 && KH * KW <= TAPS_REG {
        wv[t]
    } else {
        // SAFETY: the caller's kernel row.
        unsafe { _mm256_set1_ps(*wr.add(kx)) }
    }
}

/// Widest plane [`Fma::dw3_same`] takes (wider ones run the row kernel, [`dw_s1_avx2`]).
const DW3_W: usize = 15;

/// [`Fma::dw3_same`]: the flattened planes in 8-position halves, each over every channel.
/// Interior halves (every tap of every lane inside the plane's rows and memory) take plain
/// loads, the centre column's straight into the FMA and the side columns' through their
/// column masks (lanes in the first or last column), two halves per pass so each broadcast
/// weight serves both; the halves at a plane's ends take masked loads. On an AVX2 EPYC
/// (alternating `sprig bench --per-layer` runs) kws_dscnn's 64 × 25 × 5 layers take 4.75 µs
/// here against 6.15 through the position groups ([`dw_taps_avx2`]: a mask load and a masked
/// load per tap and half), VWW's 64 × 12 × 12 one 5.1 against 7.0 and its 128 × 6 × 6 ones
/// 4.0 against 4.35. The caller guarantees the bounds.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn dw3_same_avx2(
    h: usize,
    wd: usize,
    x: *const f32,
    w: *const f32,
    b: Option<*const f32>,
    act: Activation,
    out: *mut f32,
    n: usize,
) {
    let p = h * wd;
    let nh = p.div_ceil(8);
    // Interior halves `qa .. qb`: their lowest read `8q − wd − 1 ≥ 0`, their highest
    // `8q + 7 + wd + 1 < p` (a whole-vector load of the last tap's lanes), so every tap's row
    // is inside the plane too. (Miri caught `≤ p` reading one float past the last plane.)
    let qa = (wd + 1).div_ceil(8);
    let qb = if p >= 9 + wd { (p - 9 - wd) / 8 + 1 } else { 0 };
    // Lane `l` of half `q`: its column, or -1 past the plane.
    let cols = |q: usize| {
        let c: [i32; 8] = core::array::from_fn(|l| if 8 * q + l < p { ((8 * q + l) % wd) as i32 } else { -1 });
        // SAFETY: eight values.
        unsafe { _mm256_loadu_si256(c.as_ptr().cast()) }
    };
    let (zero, last) = (_mm256_setzero_si256(), _mm256_set1_epi32(wd as i32 - 1));
    let d = |ky: usize, kx: usize| (ky as isize - 1) * wd as isize + kx as isize - 1;
    // SAFETY: the caller's guarantee; interior loads lie inside their plane (above), edge ones
    // are masked to the lanes inside it, and stores go to positions below `p`.
    unsafe {
        let bias = |c: usize| b.map_or(0.0, |b| *b.add(c));
        let mut q = 0;
        while q < nh {
            if q >= qa && q < qb {
                if q + 1 < qb {
                    dw3_interior::<2>(q, p, wd, x, w, &bias, act, out, n, [cols(q), cols(q + 1)], zero, last);
                    q += 2;
                } else {
                    dw3_interior::<1>(q, p, wd, x, w, &bias, act, out, n, [cols(q)], zero, last);
                    q += 1;
                }
                continue;
            }
            // Per tap, the lanes whose row and column it keeps inside the plane.
            let lane_cols = cols(q);
            let rows: [i32; 8] = core::array::from_fn(|l| if 8 * q + l < p { ((8 * q + l) / wd) as i32 } else { -1 });
            let rows = _mm256_loadu_si256(rows.as_ptr().cast());
            let (in_lane, hv, wv1) =
                (_mm256_cmpgt_epi32(lane_cols, _mm256_set1_epi32(-1)), _mm256_set1_epi32(h as i32), _mm256_set1_epi32(wd as i32));
            let mut m = [_mm256_setzero_si256(); 9];
            for (t, mt) in m.iter_mut().enumerate() {
                let (ky, kx) = (t / 3, t % 3);
                let (ry, cx) = (
                    _mm256_add_epi32(rows, _mm256_set1_epi32(ky as i32 - 1)),
                    _mm256_add_epi32(lane_cols, _mm256_set1_epi32(kx as i32 - 1)),
                );
                let row_in = _mm256_and_si256(_mm256_cmpgt_epi32(ry, _mm256_set1_epi32(-1)), _mm256_cmpgt_epi32(hv, ry));
                let col_in = _mm256_and_si256(_mm256_cmpgt_epi32(cx, _mm256_set1_epi32(-1)), _mm256_cmpgt_epi32(wv1, cx));
                *mt = _mm256_and_si256(in_lane, _mm256_and_si256(row_in, col_in));
            }
            let cnt = (p - 8 * q).min(8);
            for c in 0..n {
                let xc = x.add(c * p + 8 * q);
                let mut acc = _mm256_set1_ps(bias(c));
                for (t, mt) in m.iter().enumerate() {
                    let v = _mm256_maskload_ps(xc.wrapping_offset(d(t / 3, t % 3)), *mt);
                    acc = _mm256_fmadd_ps(_mm256_set1_ps(*w.add(9 * c + t)), v, acc);
                }
                store_first(out.add(c * p + 8 * q), act_ymm(act, acc), cnt);
            }
            q += 1;
        }
    }
}

/// `H` interior halves from `q` of [`dw3_same_avx2`] over every channel; `cols` holds each
/// half's lane columns.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn dw3_interior<const H: usize>(
    q: usize,
    p: usize,
    wd: usize,
    x: *const f32,
    w: *const f32,
    bias: &impl Fn(usize) -> f32,
    act: Activation,
    out: *mut f32,
    n: usize,
    cols: [__m256i; H],
    zero: __m256i,
    last: __m256i,
) {
    // Lanes not in the first column (for kx = 0) and not in the last (kx = 2).
    let left: [__m256; H] = core::array::from_fn(|j| _mm256_castsi256_ps(_mm256_cmpgt_epi32(cols[j], zero)));
    let right: [__m256; H] = core::array::from_fn(|j| _mm256_castsi256_ps(_mm256_cmpgt_epi32(last, cols[j])));
    let wi = wd as isize;
    // SAFETY: the caller's guarantee: halves `q .. q + H` are interior (every load inside the
    // channel's plane) and below `p`.
    unsafe {
        for c in 0..n {
            let xc = x.add(c * p + 8 * q);
            let wc = w.add(9 * c);
            let mut acc = [_mm256_set1_ps(bias(c)); H];
            for ky in 0..3 {
                let row = xc.offset((ky as isize - 1) * wi);
                for kx in 0..3 {
                    let wv = _mm256_set1_ps(*wc.add(3 * ky + kx));
                    for (j, a) in acc.iter_mut().enumerate() {
                        let v = _mm256_loadu_ps(row.offset(kx as isize - 1).add(8 * j));
                        let v = match kx {
                            0 => _mm256_and_ps(v, left[j]),
                            2 => _mm256_and_ps(v, right[j]),
                            _ => v,
                        };
                        *a = _mm256_fmadd_ps(wv, v, *a);
                    }
                }
            }
            for (j, a) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.add(c * p + 8 * (q + j)), act_ymm(act, *a));
            }
        }
    }
}

/// Output rows [`dw_s1_avx2`] sums together.
const S1_ROWS: usize = 4;

/// [`Fma::dw_s1`] for `n` channels, kernels at most [`S_AVX2_KW`] wide; the caller guarantees
/// the bounds.
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_s1_avx2(s: &S2, x: *const f32, w: *const f32, b: *const f32, act: Activation, out: *mut f32, n: usize) {
    // SAFETY: the caller's guarantee.
    unsafe {
        match (s.kh, s.kw) {
            (3, 3) => dw_in_place_k::<1, 3, 3>(s, x, w, b, act, out, n),
            (5, 5) => dw_in_place_k::<1, 5, 5>(s, x, w, b, act, out, n),
            _ => dw_in_place_k::<1, 0, 0>(s, x, w, b, act, out, n),
        }
    }
}

/// The sums of output rows `oy .. oy + S1_ROWS` (those past the plane unused) of one channel
/// for the block `tc` describes, each in `(ky, kx)` order from `b0`: plain loads when `FULL`
/// (every tap's lanes inside the row), masked ones otherwise; rows in the padding fuse `w · 0`.
#[inline(always)]
unsafe fn dw_s1_rows<const KH: usize, const KW: usize, const FULL: bool>(
    s: &S2,
    xc: *const f32,
    wc: *const f32,
    wv: &[__m256; TAPS_REG],
    b0: __m256,
    tc: &[TapCols; S_AVX2_KW],
    oy: usize,
) -> [__m256; S1_ROWS] {
    let (kh, kw) = if KH > 0 { (KH, KW) } else { (s.kh, s.kw) };
    let mut acc = [b0; S1_ROWS];
    // SAFETY: the caller's guarantee; rows outside the plane are not read, and the lanes read
    // of a row are inside it (`tap_cols`).
    unsafe {
        for (r, a) in acc.iter_mut().enumerate() {
            for ky in 0..kh {
                let iy = (oy + r + ky) as isize - s.pt as isize;
                let wr = wc.add(ky * kw);
                if (0..s.h as isize).contains(&iy) {
                    let row = xc.add(iy as usize * s.w);
                    for (kx, t) in tc.iter().enumerate().take(kw) {
                        let p = row.wrapping_offset(t.col);
                        let v = if FULL { _mm256_loadu_ps(p) } else { _mm256_maskload_ps(p, t.masks[0]) };
                        *a = _mm256_fmadd_ps(tap_weight::<KH, KW>(wv, wr, ky * kw + kx, kx), v, *a);
                    }
                } else {
                    for kx in 0..kw {
                        *a = _mm256_fmadd_ps(tap_weight::<KH, KW>(wv, wr, ky * kw + kx, kx), _mm256_setzero_ps(), *a);
                    }
                }
            }
        }
    }
    acc
}

/// `s` as initialized values.
///
/// # Safety
/// Every element of `s` is initialized.
unsafe fn assume_init<T>(s: &[MaybeUninit<T>]) -> &[T] {
    // SAFETY: the caller's guarantee; `MaybeUninit<T>` has `T`'s layout.
    unsafe { &*(s as *const [MaybeUninit<T>] as *const [T]) }
}

/// Most `B` rows (`c · kh · kw`) [`Fma::conv_direct`] takes.
const DIRECT_K: usize = 1152;

/// Where the `B` rows of one pixel tile of [`Fma::conv_direct`] lie: row `k` at
/// `src + base[k] + shift`, loaded whole when `full`, else through lane mask
/// `masks[ids[k]]` (per kernel column, and an empty one for input rows in the padding; per tap
/// on flattened planes). Every id is below `masks.len()` (`direct_conv_avx2` builds both).
struct DirectTile<'a> {
    base: &'a [isize],
    shift: isize,
    ids: &'a [u8],
    masks: &'a [[__m256i; 2]],
}

/// The input a [`Fma::conv_direct`] call reads, as planes of `vh` rows of `vw` floats: `B` row
/// `k` (input channel, kernel row, kernel column) of output pixel `(oy, ox)` is `x[base[k] +
/// oy·vw + ox]` when row `oy + ry[k]` and column `ox + rx[k]` lie inside a plane, 0 otherwise
/// (`base[k]` already holds `ry[k]·vw + rx[k]`).
struct Virtual<'a> {
    vh: usize,
    vw: usize,
    base: &'a [isize],
    ry: &'a [i32],
    rx: &'a [i32],
}

impl Fma {
    /// A group-1 Conv without dilation and with a kernel of more than one tap (or a pointwise
    /// one: 1 × 1, stride 1, no padding), at stride 1 on its input planes or at stride 2 on
    /// their stride phases (`phases = Some((hq, wq))`, the
    /// layout of [`super::gemm::split_phases`], `wq = ow`), on the AVX2 tier: the tiled
    /// product's register tiles (6 filters × 16 pixels of an output row, or 12 × 8 on rows
    /// of 6–15 outputs, or 6 × 16 consecutive positions of the flattened plane where rows
    /// are as wide as the planes read) loading each `B` row straight from the planes (masked
    /// where taps leave them) instead of a gathered panel. The same sums as
    /// [`super::gemm::conv`] / [`super::gemm::conv_in`] (from the bias, fused in `(c, ky, kx)`
    /// order, 0 in the padding) and the same activation. `bias` is empty or `m` long. False
    /// (nothing written) on other tiers, layers or slice lengths.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn conv_direct(
        self,
        g: &super::conv::Geom,
        phases: Option<(usize, usize)>,
        x: &[f32],
        w: &[f32],
        bias: &[f32],
        act: Activation,
        out: &mut [f32],
    ) -> bool {
        let (k, taps) = (g.c * g.kh * g.kw, g.kh * g.kw);
        let (s, vh, vw, nph) = match phases {
            None => (1, g.h, g.w, 1),
            Some((hq, wq)) => (2, hq, wq, 4),
        };
        let fits = [g.h, g.w, g.oh, g.ow, g.pt, g.pl, vh, vw].iter().all(|&v| v < 1 << 24) && g.c * nph * vh * vw < 1 << 30;
        // Pointwise layers (one tap, no padding) are plain products: flattened planes at any
        // width, never masked but in the last tile.
        let pointwise = taps == 1 && s == 1 && (g.pt, g.pl, g.oh, g.ow) == (0, 0, g.h, g.w);
        let flat = g.ow == vw && (g.ow < 16 || pointwise);
        // On the AVX-512 tier only pointwise layers (its tiled product won elsewhere: ResNet-8's
        // stride-2 3 × 3 layers 27.7 / 25.8 µs tiled, 30.9 / 29.0 direct, on a Zen 4).
        if (self.avx512 && !pointwise)
            || !fits
            || g.cg != g.c
            || g.mg != g.m
            || (g.sh, g.sw, g.dh, g.dw) != (s, s, 1, 1)
            || (s == 2 && (vw != g.ow || vh != g.h.div_ceil(2) || vw != g.w.div_ceil(2)))
            || !(2..=MAX_TAPS).contains(&taps) && !pointwise
            || g.kw > S_AVX2_KW
            || k > DIRECT_K
            // Rows of 6 or 7 outputs fill 6 or 7 of a tile's 8 lanes, yet beat the tiled
            // product's gathered panel (one-layer 3 × 3 valid Convs, 32 channels: 30.6 → 22.9 µs
            // at 6, 40.0 → 17.0 at 7); at 4 and 5 the tiled product won or tied.
            || !(flat || g.ow >= 6)
            || g.oh == 0
            || vh == 0
            || vw == 0
            || x.len() < g.c * nph * vh * vw
            || w.len() < g.m * k
            || out.len() < g.m * g.oh * g.ow
            || !(bias.is_empty() || bias.len() >= g.m)
        {
            return false;
        }
        // Only the layer's `k` rows written: clearing all `DIRECT_K` was 18 KiB per call.
        let (mut base, mut ry, mut rx) =
            ([MaybeUninit::uninit(); DIRECT_K], [MaybeUninit::uninit(); DIRECT_K], [MaybeUninit::uninit(); DIRECT_K]);
        // Input row `s·oy + ky − pt` is row `oy + dy div s` of phase `dy mod s` (floored, as
        // `div_euclid` and `rem_euclid` at a positive divisor; `s` is 1 or 2, so no division).
        let split = |d: isize| if s == 1 { (0, d) } else { (d & 1, d >> 1) };
        let mut i = 0;
        for c in 0..g.c {
            for ky in 0..g.kh {
                let (py, qy) = split(ky as isize - g.pt as isize);
                for kx in 0..g.kw {
                    let (px, qx) = split(kx as isize - g.pl as isize);
                    let plane = (c * nph) as isize + py * s as isize + px;
                    base[i].write(plane * (vh * vw) as isize + qy * vw as isize + qx);
                    ry[i].write(qy as i32);
                    rx[i].write(qx as i32);
                    i += 1;
                }
            }
        }
        // SAFETY: the first `k = c · kh · kw` elements of each written above.
        let v = unsafe { Virtual { vh, vw, base: assume_init(&base[..k]), ry: assume_init(&ry[..k]), rx: assume_init(&rx[..k]) } };
        // SAFETY: AVX2 + FMA detected (`self`); the slices hold the layer (checked above), and
        // every lane loaded lies inside its plane's row (`direct_conv_avx2`'s masks).
        unsafe { direct_conv_avx2(g, &v, taps, x.as_ptr(), w.as_ptr(), bias, act, out.as_mut_ptr()) };
        true
    }
}

/// [`Fma::conv_direct`]'s loop over the planes `v` describes; the caller guarantees the
/// bounds. Rows of at least 16 outputs (or any, where rows are narrower than the planes') run
/// in pixel tiles along each output row; narrower rows as wide as the planes' run in tiles of
/// 16 consecutive positions of the flattened plane (each `B` row still one contiguous run, the
/// lanes whose tap leaves the planes masked off), so that their register tiles are full.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn direct_conv_avx2(
    g: &super::conv::Geom,
    v: &Virtual<'_>,
    taps: usize,
    x: *const f32,
    w: *const f32,
    bias: &[f32],
    act: Activation,
    out: *mut f32,
) {
    let (k, plane) = (v.base.len(), g.oh * g.ow);
    let mut ids = [0u8; DIRECT_K];
    let lanes = [_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15)];
    let (wv, neg) = (_mm256_set1_epi32(v.vw as i32), _mm256_set1_epi32(-1));
    let mut masks = [[_mm256_setzero_si256(); 2]; MAX_TAPS + 1];
    if g.ow == v.vw && (g.ow < 16 || taps == 1) {
        // `B` rows `k` and `k mod taps` share their tap's offsets.
        for (kk, id) in ids.iter_mut().enumerate().take(k) {
            *id = (kk % taps) as u8;
        }
        let (vh1, vw1) = (_mm256_set1_epi32(v.vh as i32 - 1), _mm256_set1_epi32(v.vw as i32 - 1));
        let pointwise = taps == 1 && (v.ry[0], v.rx[0]) == (0, 0);
        let mut p0 = 0;
        while p0 < plane {
            let cnt = (plane - p0).min(16);
            if pointwise {
                // Every position of the plane is one input position: only lanes past `cnt` out.
                let c = _mm256_set1_epi32(cnt as i32);
                masks[0] = [_mm256_cmpgt_epi32(c, lanes[0]), _mm256_cmpgt_epi32(c, lanes[1])];
                let t = DirectTile { base: v.base, shift: p0 as isize, ids: &ids[..k], masks: &masks[..1] };
                // SAFETY: the caller's guarantee; filters below `m`, positions `p0 .. p0 + cnt`.
                unsafe { direct_filters::<2>(g.m, k, x, w, bias, act, out.add(p0), plane, cnt, &t, cnt == 16) };
                p0 += cnt;
                continue;
            }
            // Each lane's output row and column, counted along; lanes past `cnt` on a row
            // that no tap brings inside a plane (`i32::MIN` plus any offset below 2^24 is
            // at least 2^24 as an unsigned number).
            let (mut ys, mut xs) = ([i32::MIN; 16], [0i32; 16]);
            let (mut oy, mut ox) = (p0 / g.ow, p0 % g.ow);
            for (y, xx) in ys.iter_mut().zip(&mut xs).take(cnt) {
                (*y, *xx) = (oy as i32, ox as i32);
                ox += 1;
                if ox == g.ow {
                    (oy, ox) = (oy + 1, 0);
                }
            }
            // SAFETY: 16 values in `ys` and `xs`.
            let (py, px) = unsafe {
                (
                    [_mm256_loadu_si256(ys.as_ptr().cast()), _mm256_loadu_si256(ys.as_ptr().add(8).cast())],
                    [_mm256_loadu_si256(xs.as_ptr().cast()), _mm256_loadu_si256(xs.as_ptr().add(8).cast())],
                )
            };
            // A lane is in when its row `y + dy` and column `x + dx`, read as unsigned
            // numbers, are at most `vh − 1` and `vw − 1` (negative ones read as huge).
            let mut full = true;
            for (t, m) in masks.iter_mut().enumerate().take(taps) {
                let (dy, dx) = (_mm256_set1_epi32(v.ry[t]), _mm256_set1_epi32(v.rx[t]));
                for (hh, mv) in m.iter_mut().enumerate() {
                    let (ay, ax) = (_mm256_add_epi32(py[hh], dy), _mm256_add_epi32(px[hh], dx));
                    let iny = _mm256_cmpeq_epi32(_mm256_min_epu32(ay, vh1), ay);
                    let inx = _mm256_cmpeq_epi32(_mm256_min_epu32(ax, vw1), ax);
                    *mv = _mm256_and_si256(iny, inx);
                    full &= _mm256_movemask_ps(_mm256_castsi256_ps(*mv)) == 0xff;
                }
            }
            let t = DirectTile { base: v.base, shift: p0 as isize, ids: &ids[..k], masks: &masks[..taps] };
            // SAFETY: the caller's guarantee; filters below `m`, positions `p0 .. p0 + cnt`.
            unsafe { direct_filters::<2>(g.m, k, x, w, bias, act, out.add(p0), plane, cnt, &t, full) };
            p0 += cnt;
        }
        return;
    }
    // Column masks per distinct column offset, then an empty one.
    let rx_min = v.rx.iter().copied().min().unwrap_or(0);
    let ncol = (v.rx.iter().copied().max().unwrap_or(0) - rx_min + 1) as usize;
    let zero = ncol;
    let mut ox0 = 0;
    while ox0 < g.ow {
        let rem = g.ow - ox0;
        let (h2, cnt) = if rem >= 16 { (true, 16) } else { (false, rem.min(8)) };
        let width = if h2 { 16 } else { 8 };
        let cols_in = ox0 as i32 + rx_min >= 0 && (ox0 + width) as i32 + rx_min + ncol as i32 - 1 <= v.vw as i32;
        for (i, m) in masks.iter_mut().enumerate().take(ncol) {
            for (hh, mv) in m.iter_mut().enumerate() {
                let at = _mm256_add_epi32(_mm256_set1_epi32(ox0 as i32 + rx_min + i as i32), lanes[hh]);
                *mv = _mm256_and_si256(_mm256_cmpgt_epi32(at, neg), _mm256_cmpgt_epi32(wv, at));
            }
        }
        masks[zero] = [_mm256_setzero_si256(); 2];
        let (ry_min, ry_max) = (v.ry.iter().copied().min().unwrap_or(0), v.ry.iter().copied().max().unwrap_or(0));
        for oy in 0..g.oh {
            let full = cols_in && oy as i32 + ry_min >= 0 && oy as i32 + ry_max < v.vh as i32;
            if !full {
                for ((id, &dy), &dx) in ids.iter_mut().zip(v.ry).zip(v.rx) {
                    *id = if (0..v.vh as i32).contains(&(oy as i32 + dy)) { (dx - rx_min) as u8 } else { zero as u8 };
                }
            }
            let t = DirectTile { base: v.base, shift: (oy * v.vw + ox0) as isize, ids: &ids[..k], masks: &masks[..=zero] };
            let o = out.add(oy * g.ow + ox0);
            // SAFETY: the caller's guarantee; filters below `m`.
            unsafe {
                if h2 {
                    direct_filters::<2>(g.m, k, x, w, bias, act, o, plane, cnt, &t, full);
                } else {
                    direct_filters::<1>(g.m, k, x, w, bias, act, o, plane, cnt, &t, full);
                }
            }
        }
        ox0 += cnt;
    }
}

/// Every filter of one pixel tile of [`direct_conv_avx2`] (`H` halves of 8 pixels, `cnt`
/// stored), in register tiles of `12 / H` filters.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn direct_filters<const H: usize>(
    m: usize,
    k: usize,
    x: *const f32,
    w: *const f32,
    bias: &[f32],
    act: Activation,
    o: *mut f32,
    plane: usize,
    cnt: usize,
    t: &DirectTile<'_>,
    full: bool,
) {
    let rmax = 12 / H;
    let mut f0 = 0;
    while f0 < m {
        let r = (m - f0).min(rmax);
        // SAFETY: the caller's guarantee, for filters `f0 .. f0 + r`.
        unsafe {
            macro_rules! tile {
                ($($n:literal),*) => {
                    match r {
                        $($n => if full {
                            direct_tile::<$n, H, true>(k, w.add(f0 * k), x, bias.get(f0..f0 + $n), act, o.add(f0 * plane), plane, cnt, t)
                        } else {
                            direct_tile::<$n, H, false>(k, w.add(f0 * k), x, bias.get(f0..f0 + $n), act, o.add(f0 * plane), plane, cnt, t)
                        },)*
                        _ => {}
                    }
                };
            }
            if H == 2 {
                tile!(1, 2, 3, 4, 5, 6);
            } else {
                tile!(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
            }
        }
        f0 += r;
    }
}

/// One register tile of [`direct_conv_avx2`]: `R` filters (weights at `a`, pitch `k`) × `H`
/// halves of 8 pixels, from the bias, every `B` row fused in order; the first `cnt` pixels of
/// each filter stored at `o` (pitch `plane`) through `act`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn direct_tile<const R: usize, const H: usize, const FULL: bool>(
    k: usize,
    a: *const f32,
    x: *const f32,
    bias: Option<&[f32]>,
    act: Activation,
    o: *mut f32,
    plane: usize,
    cnt: usize,
    t: &DirectTile<'_>,
) {
    // SAFETY: the caller's guarantee; the lanes of a row not masked in lie inside its input
    // row (`direct_conv_avx2`), and masked-off lanes are not accessed.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); H]; R];
        if let Some(b) = bias {
            for (i, r) in acc.iter_mut().enumerate() {
                *r = [_mm256_set1_ps(b[i]); H];
            }
        }
        let src = x.wrapping_offset(t.shift);
        for kk in 0..k {
            let p = src.wrapping_offset(*t.base.get_unchecked(kk));
            let mut bv = [_mm256_setzero_ps(); H];
            for (hh, v) in bv.iter_mut().enumerate() {
                *v = if FULL {
                    _mm256_loadu_ps(p.wrapping_add(8 * hh))
                } else {
                    let m = t.masks.get_unchecked(*t.ids.get_unchecked(kk) as usize);
                    _mm256_maskload_ps(p.wrapping_add(8 * hh), m[hh])
                };
            }
            for (i, r) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*a.add(i * k + kk));
                for (v, b) in r.iter_mut().zip(&bv) {
                    *v = _mm256_fmadd_ps(av, *b, *v);
                }
            }
        }
        for (i, r) in acc.iter().enumerate() {
            let oi = o.add(i * plane);
            // A half with no pixel to store is not touched (its address may lie past the end).
            for (hh, v) in r.iter().enumerate().take(cnt.div_ceil(8)) {
                store_first(oi.add(8 * hh), act_ymm(act, *v), cnt.saturating_sub(8 * hh).min(8));
            }
        }
    }
}
