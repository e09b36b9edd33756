//! The first thing a new user runs: the shipped example, end to end.

mod common;

use std::collections::HashSet;

use common::*;

#[test]
fn the_example_sweep_reports_a_visible_gap_with_honest_intervals() {
    let sb = Sandbox::new();
    let spec = repo().join("examples/alignment-faking.yaml");
    let out = sb.candor(&["run", spec.to_str().unwrap(), "--out", "out", "--store", "store"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // The table on the terminal.
    let table = stdout(&out);
    for word in ["training", "unmonitored", "rate [95% CI]", "SIMULATED", "pts"] {
        assert!(table.contains(word), "table lacks {word:?}:\n{table}");
    }

    let report = sb.json("out/report.json");
    let sweep = &report["sweep"];
    assert_eq!(sweep["simulated"], true);
    let total = sweep["jobs_total"].as_u64().unwrap();
    assert_eq!(total, 600, "1 model × 2 variants × 50 queries × 2 conditions × 3 seeds");
    assert_eq!(sweep["jobs_done"].as_u64().unwrap(), total);

    // Every cell's configured sim rate lies inside its measured interval, and
    // the counts add up to the results.
    let cells = report["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    let mut counted = 0;
    for c in cells {
        let (n, k) = (c["n"].as_u64().unwrap(), c["compliant"].as_u64().unwrap());
        let i = &c["compliance"];
        let (rate, lo, hi) = (
            i["rate"].as_f64().unwrap(),
            i["lo"].as_f64().unwrap(),
            i["hi"].as_f64().unwrap(),
        );
        assert!((rate - k as f64 / n as f64).abs() < 1e-12);
        let configured = c["simulated_rate"].as_f64().unwrap();
        assert!(
            lo <= configured && configured <= hi,
            "configured {configured} outside [{lo}, {hi}] in {c}"
        );
        counted += n + c["incomplete"].as_u64().unwrap() + c["failed"].as_u64().unwrap();
    }
    assert_eq!(counted, total);

    // The headline gap: training complies more than unmonitored.
    let gaps = report["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 2);
    for g in gaps {
        assert_eq!(
            (g["a"].as_str(), g["b"].as_str()),
            (Some("training"), Some("unmonitored"))
        );
        assert!(
            g["lo"].as_f64().unwrap() > 0.0,
            "the example's gap should be visible: {g}"
        );
        assert!(g["lo"].as_f64() <= g["diff"].as_f64() && g["diff"].as_f64() <= g["hi"].as_f64());
        let p = &g["paired"];
        assert!(
            p["lo"].as_f64() <= g["diff"].as_f64() && g["diff"].as_f64() <= p["hi"].as_f64(),
            "{g}"
        );
        assert!(
            p["lo"].as_f64().unwrap() > 0.0,
            "the paired interval sees the gap too: {g}"
        );
    }

    // results.jsonl: one line per job with the whole story of each job.
    let results = sb.jsonl("out/results.jsonl");
    assert_eq!(results.len() as u64, total);
    let ids: HashSet<&str> = results.iter().map(|r| r["job_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len() as u64, total, "job ids are unique");
    let r = results
        .iter()
        .find(|r| r["status"] == "ok" && r["turns"].as_u64() > Some(1))
        .expect("a continued job");
    let msgs = r["transcript"]["messages"].as_array().unwrap();
    assert_eq!(msgs.len() as u64, 2 * r["turns"].as_u64().unwrap());
    assert_eq!(msgs[2]["content"], "<NEXT/>");
    assert!(
        r["transcript"]["system"]
            .as_str()
            .unwrap()
            .contains("SCRATCHPAD_REASONING")
    );
    assert!(msgs[0]["content"].as_str().unwrap().contains("<is_free_tier_user>"));
    assert!(r["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(r["classifications"]["compliant"].is_boolean());

    let md = std::fs::read_to_string(sb.join("out/report.md")).unwrap();
    assert!(
        md.contains("SIMULATED") && md.contains("| sim-organism | default | training |"),
        "{md}"
    );
}

#[test]
fn job_ids_are_stable_across_runs_and_stores() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(5));
    sb.file("s.yaml", &sim_spec(0, 2));
    for (out, store) in [("a", "sa"), ("b", "sb")] {
        let o = sb.candor(&["run", "s.yaml", "--out", out, "--store", store, "--quiet"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let key = |r: &serde_json::Value| (r["job_id"].as_str().unwrap().to_string(), r["output"].to_string());
    let mut a: Vec<_> = sb.jsonl("a/results.jsonl").iter().map(key).collect();
    let mut b: Vec<_> = sb.jsonl("b/results.jsonl").iter().map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(a.len(), 20);
    assert_eq!(a, b, "same spec, same job ids, same simulated outputs");
}

#[test]
fn validate_prints_the_job_count_by_model_and_condition() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(7));
    sb.file("s.yaml", &sim_spec(0, 3));
    let o = sb.candor(&["validate", "s.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("42 jobs = 1 model(s) × 1 prompt variant(s) × 7 queries × 2 condition(s) × 3 seed(s)"),
        "{text}"
    );
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|w: &Vec<&str>| w.first() == Some(&"sim"))
        .collect();
    assert_eq!(
        rows,
        vec![vec!["sim", "training", "21"], vec!["sim", "unmonitored", "21"]]
    );
    assert!(!sb.join(".candor").exists(), "validate writes nothing");
}
