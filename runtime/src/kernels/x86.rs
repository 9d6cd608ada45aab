//! x86-64 AVX2 + FMA inner loops. Each is a safe function that callers use only after
//! [`avx2_fma`] returned true; each keeps the plain loop it replaces as its reference (tests
//! compare them over random lengths, ragged tails included).
//!
//! Detection: at run time behind `std` (`is_x86_feature_detected!`, cached by std), at compile
//! time otherwise (`-C target-feature=+avx2,+fma`).
#![allow(unsafe_code)]

use core::arch::x86_64::*;

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
    Codes { vl: avx512vl() }.dot(bits, table, row, x)
}

/// Proof that AVX2 + FMA were detected (only [`Codes::detect`] makes one), with whether AVX-512
/// F + VL are there too: kernels detect once per call, not once per row.
#[derive(Clone, Copy)]
pub(crate) struct Codes {
    vl: bool,
}

impl Codes {
    /// `Some` when the CPU has AVX2 and FMA.
    #[inline]
    pub(crate) fn detect() -> Option<Codes> {
        avx2_fma().then(|| Codes { vl: avx512vl() })
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

/// Whether AVX-512 F and VL are available too (the 16-entry two-table permute).
#[inline]
pub(crate) fn avx512vl() -> bool {
    #[cfg(all(target_feature = "avx512f", target_feature = "avx512vl"))]
    {
        true
    }
    #[cfg(all(feature = "std", not(all(target_feature = "avx512f", target_feature = "avx512vl"))))]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(all(not(feature = "std"), not(all(target_feature = "avx512f", target_feature = "avx512vl"))))]
    {
        false
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        /// Against the plain loop: every width, any length (ragged tails), rows shorter than
        /// the input (missing codes are 0).
        #[test]
        fn dot_codes_matches_the_plain_loop(bits in prop_oneof![Just(2usize), Just(4), Just(8)], n in 0usize..200, short in 0usize..3,
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
