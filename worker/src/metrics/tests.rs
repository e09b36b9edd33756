use super::*;

/// The value of the sample named exactly `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn the_histogram_is_cumulative() {
    let m = Metrics::default();
    m.observe_latency(0.003);
    m.observe_latency(0.2);
    m.observe_latency(100.0);
    let text = m.render();
    let bucket = |le: &str| value(&text, &format!("candor_job_latency_seconds_bucket{{le=\"{le}\"}}"));
    assert_eq!(bucket("0.001"), Some(0.0), "{text}");
    assert_eq!(bucket("0.005"), Some(1.0), "{text}");
    assert_eq!(bucket("0.25"), Some(2.0), "{text}");
    assert_eq!(bucket("+Inf"), Some(3.0), "{text}");
    assert_eq!(value(&text, "candor_job_latency_seconds_count"), Some(3.0), "{text}");
    let sum = value(&text, "candor_job_latency_seconds_sum").unwrap();
    assert!((sum - 100.203).abs() < 1e-9, "{text}");
}

#[test]
fn outcomes_are_labels_of_one_family_and_all_start_at_zero() {
    let m = Metrics::default();
    m.jobs(JobOutcome::Completed, 3);
    m.jobs(JobOutcome::DeadLettered, 1);
    let text = m.render();
    assert!(text.contains("# TYPE candor_worker_jobs counter\n"), "{text}");
    for (outcome, n) in [
        ("completed", 3.0),
        ("failed", 0.0),
        ("retried", 0.0),
        ("dead_lettered", 1.0),
        ("released", 0.0),
        ("refused", 0.0),
    ] {
        let series = format!("candor_worker_jobs_total{{outcome=\"{outcome}\"}}");
        assert_eq!(value(&text, &series), Some(n), "{series} in\n{text}");
    }
    assert!(!text.contains("candor_worker_jobs_completed"), "{text}");
}

#[test]
fn the_exposition_has_every_family_and_ends_in_eof() {
    let m = Metrics::default();
    m.leased(5);
    m.lease_lost();
    m.set_in_flight(2);
    // Added as f64 these would show 0.30000000000000004.
    m.add_cost(100_000);
    m.add_cost(200_000);
    m.add_cost(950_000);
    let text = m.render();
    assert_eq!(value(&text, "candor_worker_jobs_leased_total"), Some(5.0), "{text}");
    assert_eq!(value(&text, "candor_worker_leases_lost_total"), Some(1.0), "{text}");
    assert_eq!(value(&text, "candor_worker_jobs_in_flight"), Some(2.0), "{text}");
    assert_eq!(value(&text, "candor_worker_cost_usd_total"), Some(1.25), "{text}");
    for outcome in ["ok", "rate_limited", "error"] {
        let series = format!("candor_backend_calls_total{{outcome=\"{outcome}\"}}");
        assert!(value(&text, &series).is_some(), "{series} in\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn the_process_batch_counts_are_exported_as_they_are_at_the_scrape() {
    use candor_exec::batch::stats::STATS;
    use std::sync::atomic::Ordering;
    let m = Metrics::default();
    let before = m.render();
    for family in [
        "# TYPE candor_batches_in_flight gauge\n",
        "# TYPE candor_batch_oldest_age_seconds gauge\n",
        "# TYPE candor_batches_submitted counter\n",
        "# TYPE candor_batch_requests counter\n",
        "# TYPE candor_batch_requests_resent counter\n",
        "# TYPE candor_batch_calls_followed counter\n",
    ] {
        assert!(before.contains(family), "no `{family}` in\n{before}");
    }
    for outcome in ["succeeded", "errored", "expired", "canceled"] {
        let series = format!("candor_batch_requests_total{{outcome=\"{outcome}\"}}");
        assert!(value(&before, &series).is_some(), "{series} in\n{before}");
    }
    let read = |text: &str, series: &str| value(text, series).unwrap_or_else(|| panic!("{series} in\n{text}"));
    STATS.batches.fetch_add(2, Ordering::Relaxed);
    STATS.outcomes[2].fetch_add(3, Ordering::Relaxed);
    STATS.retried.fetch_add(3, Ordering::Relaxed);
    STATS.followed.fetch_add(5, Ordering::Relaxed);
    let after = m.render();
    for (series, added) in [
        ("candor_batches_submitted_total", 2.0),
        ("candor_batch_requests_total{outcome=\"expired\"}", 3.0),
        ("candor_batch_requests_resent_total", 3.0),
        ("candor_batch_calls_followed_total", 5.0),
    ] {
        assert_eq!(read(&after, series) - read(&before, series), added, "{series}");
    }
    assert!(after.ends_with("# EOF\n"), "{after}");
}
