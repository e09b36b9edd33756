use super::*;

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn sweep(id: &str, state: &str) -> SweepState {
    SweepState {
        id: id.into(),
        name: "plain".into(),
        state: state.into(),
        total: 100,
        done: 40,
        failed: 5,
        dead: 2,
        retried: 7,
        leased: 60,
        lease_expiries: 1,
        in_flight: 8,
        skipped: 2,
        spent_micro_usd: 1_500_000,
        ..SweepState::default()
    }
}

#[test]
fn per_sweep_series_carry_the_sweep_and_its_outcomes() {
    let m = Metrics::default();
    m.rpc();
    m.leased(3);
    let text = m.render(&[sweep("a1", "running"), sweep("b2", "done")]);
    let at = |name: &str, id: &str, extra: &str| {
        let series = format!("{name}{{sweep=\"{id}\",name=\"plain\"{extra}}}");
        value(&text, &series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    for (outcome, n) in [
        ("completed", 40.0),
        ("failed", 5.0),
        ("retried", 7.0),
        ("dead_lettered", 2.0),
    ] {
        assert_eq!(at("candor_jobs_total", "a1", &format!(",outcome=\"{outcome}\"")), n);
    }
    assert_eq!(at("candor_jobs_leased_total", "a1", ""), 60.0);
    assert_eq!(at("candor_lease_expiries_total", "a1", ""), 1.0);
    assert_eq!(at("candor_queue_depth_jobs", "a1", ""), 50.0);
    assert_eq!(at("candor_queue_depth_jobs", "b2", ""), 0.0, "only running sweeps wait");
    assert_eq!(at("candor_jobs_in_flight", "a1", ""), 8.0);
    assert_eq!(at("candor_sweep_jobs", "a1", ""), 100.0);
    assert_eq!(at("candor_sweep_cost_usd", "a1", ""), 1.5);
    assert_eq!(value(&text, "candor_coordinator_rpcs_total"), Some(1.0), "{text}");
    assert_eq!(
        value(&text, "candor_coordinator_jobs_leased_total"),
        Some(3.0),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn a_sweep_gone_from_redis_is_gone_from_the_next_scrape() {
    let m = Metrics::default();
    let first = m.render(&[sweep("a1", "running")]);
    assert!(first.contains("sweep=\"a1\""), "{first}");
    let second = m.render(&[]);
    assert!(!second.contains("sweep=\"a1\""), "{second}");
    assert!(second.contains("candor_coordinator_rpcs_total 0\n"), "{second}");
}

#[test]
fn label_values_are_escaped() {
    let m = Metrics::default();
    let mut s = sweep("a1", "running");
    s.name = "say \"hi\"\n".into();
    let text = m.render(&[s]);
    assert!(
        text.contains(r#"candor_sweep_jobs{sweep="a1",name="say \"hi\"\n"} 100"#),
        "{text}"
    );
}
