//! Backoff between tries of a job.

use std::time::Duration;

/// The first retry waits about this long; each further one twice as long.
pub const BASE: Duration = Duration::from_millis(200);
/// No wait is longer than this.
pub const CAP: Duration = Duration::from_secs(30);

/// Capped exponential backoff with jitter before try `attempt + 1`, for a
/// job after its `attempt`-th failure. `salt` spreads the jobs that failed
/// together (the job index will do): the wait is drawn from [d/2, d).
pub fn backoff(attempt: u32, salt: u64) -> Duration {
    let exp = BASE.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let d = exp.min(CAP);
    let mut z = salt
        .wrapping_add(u64::from(attempt))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let frac = (z >> 11) as f64 / (1u64 << 53) as f64;
    d.mul_f64(0.5 + frac / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_with_jitter_inside_bounds() {
        for salt in 0..50 {
            let b1 = backoff(1, salt);
            assert!(b1 >= BASE / 2 && b1 < BASE, "{b1:?}");
            let b3 = backoff(3, salt);
            assert!(b3 >= BASE * 2 && b3 < BASE * 4, "{b3:?}");
            let b20 = backoff(20, salt);
            assert!(b20 >= CAP / 2 && b20 < CAP, "{b20:?}");
        }
        assert_ne!(backoff(2, 1), backoff(2, 2), "jitter spreads jobs");
    }
}
