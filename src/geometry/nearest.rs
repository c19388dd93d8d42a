//! The two nearest descriptors of `b` to each descriptor of `a` by Hamming
//! distance: the inner loop of the geometric check's matching (1,000 × 1,000
//! 256-bit descriptors a pair). The same integers on every CPU, from the
//! fastest kernel it has:
//! - AVX-512 (F and BW): `b` transposed word by word, eight descriptors a
//!   vector, bits counted by nibble lookup (`vpshufb`) and summed per 64-bit
//!   lane (`vpsadbw`), and the two smallest kept per lane, then merged;
//! - the popcount instruction, one descriptor at a time;
//! - portable code (the baseline x86-64 target counts bits with a dozen
//!   shifts and masks).

/// The way the distances are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Popcnt,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Kernel {
    /// Whether this CPU runs the kernel.
    fn runs(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        use std::arch::is_x86_feature_detected as has;
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Popcnt => has!("popcnt"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => has!("avx512f") && has!("avx512bw"),
        }
    }

    /// Every kernel, from the slowest to the fastest.
    const ALL: &[Kernel] = &[
        Kernel::Portable,
        #[cfg(target_arch = "x86_64")]
        Kernel::Popcnt,
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512,
    ];

    /// The fastest this CPU runs.
    pub(crate) fn native() -> Kernel {
        let fastest = Kernel::ALL.iter().rev().find(|k| k.runs());
        fastest.copied().unwrap_or(Kernel::Portable)
    }

    /// Every kernel this CPU runs (for the tests).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Kernel> {
        Kernel::ALL.iter().copied().filter(|k| k.runs()).collect()
    }
}

/// For each descriptor of `a`: `(best, second, j)`, the smallest and the
/// second smallest distance to `b` (equal when two are closest) and the
/// first index of `b` at the smallest. `b` has at least two descriptors.
/// `kernel` must be one this CPU runs ([`Kernel::native`]).
pub(crate) fn two_nearest(
    a: &[[u64; 4]],
    b: &[[u64; 4]],
    kernel: Kernel,
) -> Vec<(u32, u32, usize)> {
    debug_assert!(b.len() >= 2);
    match kernel {
        Kernel::Portable => rows(a, b, distances_body),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the kernel was chosen because the CPU has the instruction.
        Kernel::Popcnt => rows(a, b, |x, y, out| unsafe { distances_popcnt(x, y, out) }),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, AVX-512 F and BW.
        Kernel::Avx512 => unsafe { avx512::two_nearest(a, b) },
    }
}

/// Hamming distance between two descriptors.
#[inline(always)]
pub(crate) fn hamming(a: &[u64; 4], b: &[u64; 4]) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

/// Row by row: every distance of a row, then its two smallest.
fn rows(
    a: &[[u64; 4]],
    b: &[[u64; 4]],
    distances: impl Fn(&[u64; 4], &[[u64; 4]], &mut [u32]),
) -> Vec<(u32, u32, usize)> {
    let mut dist = vec![0u32; b.len()];
    a.iter()
        .map(|da| {
            distances(da, b, &mut dist);
            let (mut best, mut second, mut best_j) = (u32::MAX, u32::MAX, 0usize);
            for (j, &d) in dist.iter().enumerate() {
                if d < second {
                    if d < best {
                        second = best;
                        best = d;
                        best_j = j;
                    } else {
                        second = d;
                    }
                }
            }
            (best, second, best_j)
        })
        .collect()
}

/// The Hamming distance of `a` to each descriptor of `b`, into `out`.
#[inline(always)]
fn distances_body(a: &[u64; 4], b: &[[u64; 4]], out: &mut [u32]) {
    for (o, d) in out.iter_mut().zip(b) {
        *o = hamming(a, d);
    }
}

/// [`distances_body`] with the popcount instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn distances_popcnt(a: &[u64; 4], b: &[[u64; 4]], out: &mut [u32]) {
    distances_body(a, b, out)
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// [`super::two_nearest`] eight descriptors of `b` at a time.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn two_nearest(a: &[[u64; 4]], b: &[[u64; 4]]) -> Vec<(u32, u32, usize)> {
        let n = b.len();
        let padded = n.div_ceil(8) * 8;
        // Word w of descriptor j at words[w * padded + j]; the padding is
        // masked out below.
        let mut words = vec![0u64; 4 * padded];
        for (j, d) in b.iter().enumerate() {
            for (w, &x) in d.iter().enumerate() {
                words[w * padded + j] = x;
            }
        }
        let nibble_bits = _mm512_broadcast_i32x4(_mm_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
        ));
        let low = _mm512_set1_epi8(0x0f);
        let far = _mm512_set1_epi64(i64::MAX);
        let eight = _mm512_set1_epi64(8);
        let first = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
        let tail = n % 8;
        a.iter()
            .map(|da| {
                let aw = da.map(|x| _mm512_set1_epi64(x as i64));
                let (mut best, mut second, mut best_j) = (far, far, _mm512_setzero_si512());
                let mut index = first;
                for j in (0..padded).step_by(8) {
                    let mut bits = _mm512_setzero_si512();
                    for (w, &aw) in aw.iter().enumerate() {
                        let row = &words[w * padded + j..w * padded + j + 8];
                        // SAFETY: `row` holds eight u64, an unaligned load.
                        let x = unsafe { _mm512_loadu_si512(row.as_ptr().cast()) };
                        let x = _mm512_xor_si512(x, aw);
                        let lo = _mm512_and_si512(x, low);
                        let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(x), low);
                        let count = _mm512_add_epi8(
                            _mm512_shuffle_epi8(nibble_bits, lo),
                            _mm512_shuffle_epi8(nibble_bits, hi),
                        );
                        // At most 8 a byte per word: 32 over the four.
                        bits = _mm512_add_epi8(bits, count);
                    }
                    let mut d = _mm512_sad_epu8(bits, _mm512_setzero_si512());
                    if j + 8 > n {
                        let padding = !((1u8 << tail) - 1);
                        d = _mm512_mask_blend_epi64(padding, d, far);
                    }
                    // Per lane: a strictly smaller distance takes the lead
                    // (so the first index keeps a tie), the old lead or the
                    // new distance, whichever is larger, may be the second.
                    let closer = _mm512_cmplt_epu64_mask(d, best);
                    second = _mm512_min_epu64(second, _mm512_max_epu64(best, d));
                    best = _mm512_min_epu64(best, d);
                    best_j = _mm512_mask_blend_epi64(closer, best_j, index);
                    index = _mm512_add_epi64(index, eight);
                }
                let lanes = |v: __m512i| {
                    let mut out = [0u64; 8];
                    // SAFETY: `out` holds eight u64, an unaligned store.
                    unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), v) };
                    out
                };
                let (bests, seconds, js) = (lanes(best), lanes(second), lanes(best_j));
                // The lane of the smallest distance (ties: the first index);
                // the second is that lane's second or another lane's best.
                let lead = (0..8).min_by_key(|&k| (bests[k], js[k])).unwrap_or(0);
                let runner_up = (0..8)
                    .filter(|&k| k != lead)
                    .map(|k| bests[k])
                    .fold(seconds[lead], u64::min);
                let clamp = |x: u64| x.min(u64::from(u32::MAX)) as u32;
                (clamp(bests[lead]), clamp(runner_up), js[lead] as usize)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, seed: u64) -> Vec<[u64; 4]> {
        let mut s = seed;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        (0..n).map(|_| [next(), next(), next(), next()]).collect()
    }

    #[test]
    fn every_kernel_gives_the_same_two_nearest() {
        let a = random(200, 0x9e37_79b9_7f4a_7c15);
        // Lengths around the vector width, ties at the smallest distance
        // (the first index must win), near copies.
        for n in [2, 3, 7, 8, 9, 16, 61, 997] {
            let mut b = random(n, n as u64 + 1);
            b[n - 1] = a[3];
            b[0] = a[3];
            let mut near = a[4];
            near[2] ^= 0b101;
            b[n / 2] = near;
            let want = two_nearest(&a, &b, Kernel::Portable);
            assert_eq!((want[3].0, want[3].2), (0, 0), "n = {n}");
            if n > 2 {
                assert_eq!(want[3].1, 0, "a tie: n = {n}");
            }
            if n > 2 {
                assert_eq!((want[4].0, want[4].2), (2, n / 2), "n = {n}");
            }
            for (i, w) in want.iter().enumerate() {
                let d: Vec<u32> = b.iter().map(|x| hamming(&a[i], x)).collect();
                let mut sorted = d.clone();
                sorted.sort_unstable();
                assert_eq!((w.0, w.1), (sorted[0], sorted[1]));
                assert_eq!(d.iter().position(|&x| x == w.0), Some(w.2));
            }
            for k in Kernel::available() {
                assert_eq!(two_nearest(&a, &b, k), want, "{k:?}, n = {n}");
            }
        }
        assert_eq!(Kernel::available().last(), Some(&Kernel::native()));
    }
}
