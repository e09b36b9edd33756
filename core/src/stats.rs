//! Interval estimates for rates and for differences of rates.

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A rate with its interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    pub rate: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Wilson score interval for `k` successes out of `n`. With `n == 0` the
/// rate is unknown: rate 0 and the interval [0, 1].
pub fn wilson(k: u64, n: u64, z: f64) -> Interval {
    if n == 0 {
        return Interval {
            rate: 0.0,
            lo: 0.0,
            hi: 1.0,
        };
    }
    let n_f = n as f64;
    let p = k as f64 / n_f;
    let z2 = z * z;
    let denom = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denom;
    let half = z * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / denom;
    Interval {
        rate: p,
        lo: (centre - half).max(0.0),
        hi: (centre + half).min(1.0),
    }
}

/// Difference of two independent proportions `a - b` with Newcombe's hybrid
/// score interval (his method 10), built from the two Wilson intervals.
pub fn newcombe_diff(ka: u64, na: u64, kb: u64, nb: u64, z: f64) -> Interval {
    let a = wilson(ka, na, z);
    let b = wilson(kb, nb, z);
    let d = a.rate - b.rate;
    let lo = d - ((a.rate - a.lo).powi(2) + (b.hi - b.rate).powi(2)).sqrt();
    let hi = d + ((a.hi - a.rate).powi(2) + (b.rate - b.lo).powi(2)).sqrt();
    Interval {
        rate: d,
        lo: lo.max(-1.0),
        hi: hi.min(1.0),
    }
}

/// Resamples of the paired bootstrap.
pub const BOOTSTRAP_RESAMPLES: u32 = 2000;
/// Its fixed seed, so a report is reproducible.
pub const BOOTSTRAP_SEED: u64 = 0x5eed_ca4d_0c0f_fee5;

/// 95% percentile interval of `rate(a) − rate(b)` by a paired bootstrap
/// over queries: each resample draws queries with replacement and keeps
/// both conditions' outcomes of a drawn query together. `pairs[q]` is
/// `[yes_a, n_a, yes_b, n_b]` for query `q`. None with fewer than two queries
/// that have outcomes in both conditions.
pub fn paired_bootstrap(pairs: &[[u32; 4]], resamples: u32, seed: u64) -> Option<Interval> {
    let used: Vec<[u32; 4]> = pairs.iter().copied().filter(|p| p[1] > 0 && p[3] > 0).collect();
    if used.len() < 2 {
        return None;
    }
    let stat = |s: [u64; 4]| s[0] as f64 / s[1] as f64 - s[2] as f64 / s[3] as f64;
    let total = used.iter().fold([0u64; 4], |mut t, p| {
        for k in 0..4 {
            t[k] += u64::from(p[k]);
        }
        t
    });
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut diffs = Vec::with_capacity(resamples as usize);
    for _ in 0..resamples {
        let mut s = [0u64; 4];
        for _ in 0..used.len() {
            let p = used[(next() % used.len() as u64) as usize];
            for k in 0..4 {
                s[k] += u64::from(p[k]);
            }
        }
        diffs.push(stat(s));
    }
    diffs.sort_by(f64::total_cmp);
    let at = |q: f64| diffs[((q * (diffs.len() - 1) as f64).round() as usize).min(diffs.len() - 1)];
    Some(Interval {
        rate: stat(total),
        lo: at(0.025),
        hi: at(0.975),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    // Reference values: Newcombe (1998), "Two-sided confidence intervals for
    // the single proportion", Table I, method 3 (score interval).
    #[test]
    fn wilson_matches_published_values() {
        for (k, n, lo, hi) in [
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0, 0.1611),
            (1, 29, 0.0061, 0.1718),
        ] {
            let i = wilson(k, n, Z95);
            assert!(
                close(i.lo, lo) && close(i.hi, hi),
                "{k}/{n}: got [{:.4}, {:.4}]",
                i.lo,
                i.hi
            );
            assert!(close(i.rate, k as f64 / n as f64));
        }
    }

    #[test]
    fn wilson_edges() {
        let all = wilson(10, 10, Z95);
        assert!(close(all.hi, 1.0));
        assert!(close(all.lo, 0.7225));
        assert_eq!(
            wilson(0, 0, Z95),
            Interval {
                rate: 0.0,
                lo: 0.0,
                hi: 1.0
            }
        );
    }

    // Reference values: Newcombe (1998), "Interval estimation for the
    // difference between independent proportions", Table II, method 10.
    #[test]
    fn newcombe_matches_published_values() {
        for (ka, na, kb, nb, lo, hi) in [
            (56, 70, 48, 80, 0.0524, 0.3339),
            (9, 10, 3, 10, 0.1705, 0.8090),
            (5, 56, 0, 29, -0.0381, 0.1926),
        ] {
            let d = newcombe_diff(ka, na, kb, nb, Z95);
            assert!(
                close(d.lo, lo) && close(d.hi, hi),
                "{ka}/{na} - {kb}/{nb}: got [{:.4}, {:.4}]",
                d.lo,
                d.hi
            );
        }
    }

    #[test]
    fn the_paired_bootstrap_is_reproducible_and_sensible() {
        // 50 queries, 4 samples per condition; a complies more on most.
        let pairs: Vec<[u32; 4]> = (0..50).map(|q| [2 + (q % 3), 4, q % 2, 4]).collect();
        let a = paired_bootstrap(&pairs, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED).unwrap();
        assert_eq!(
            Some(a),
            paired_bootstrap(&pairs, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED),
            "same seed, same interval"
        );
        assert!(a.lo < a.rate && a.rate < a.hi && a.lo > 0.0, "{a:?}");
        // Identical conditions on every query: no difference, no spread.
        let same: Vec<[u32; 4]> = (0..30).map(|q| [q % 4, 4, q % 4, 4]).collect();
        let s = paired_bootstrap(&same, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED).unwrap();
        assert_eq!((s.rate, s.lo, s.hi), (0.0, 0.0, 0.0));
        // Pairing removes the between-query spread Newcombe must allow for.
        let n = newcombe_diff(
            pairs.iter().map(|p| u64::from(p[0])).sum(),
            200,
            pairs.iter().map(|p| u64::from(p[2])).sum(),
            200,
            Z95,
        );
        assert!((a.rate - n.rate).abs() < 1e-12);
        assert!(paired_bootstrap(&pairs[..1], 100, 1).is_none());
    }
}
