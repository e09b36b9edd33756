//! Calendar dates without a date crate: what RFC 3339 timestamps in
//! reports and the sim-server's API objects need.

/// The (year, month, day) of a count of days since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// RFC 3339 in UTC of `secs` since the Unix epoch, to the second, with
/// `fraction` (such as `.123456`, or empty) before the `Z`.
pub fn rfc3339(secs: u64, fraction: &str) -> String {
    let (y, m, d) = civil((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{fraction}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn days_and_times_are_the_calendars() {
        assert_eq!(super::civil(0), (1970, 1, 1));
        assert_eq!(super::civil(11_016), (2000, 2, 29));
        assert_eq!(super::rfc3339(951_782_400 + 3661, ""), "2000-02-29T01:01:01Z");
        assert_eq!(super::rfc3339(1_724_179_044, ".100435"), "2024-08-20T18:37:24.100435Z");
    }
}
