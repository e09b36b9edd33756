//! Early stopping: a cell gets no more seeds once its compliance interval is
//! narrower than the target; the report says which cells stopped and when.

mod common;

use std::collections::BTreeMap;

use common::{Sandbox, dataset, sim_spec, stderr};

#[test]
fn cells_stop_once_their_interval_is_narrow_and_a_rerun_agrees() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(30));
    let text = format!(
        "{}early_stopping:\n  target_width: 0.25\n  min_seeds: 2\n",
        sim_spec(0, 20)
    );
    let spec = sb.file("spec.yaml", &text);
    let o = sb.candor(&["run", spec.to_str().unwrap(), "--out", "out", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = sb.json("out/report.json");
    let results = sb.jsonl("out/results.jsonl");
    let total = report["sweep"]["jobs_total"].as_u64().unwrap();
    assert_eq!(total, 30 * 2 * 20);
    let skipped = report["sweep"]["jobs_skipped"].as_u64().unwrap();
    assert!(skipped > 0, "nothing stopped early");
    assert_eq!(results.len() as u64 + skipped, total);
    assert_eq!(report["sweep"]["jobs_done"].as_u64().unwrap(), results.len() as u64);
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("EARLY STOPPING")),
        "{}",
        report["notes"]
    );
    assert!(
        !report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("PARTIAL"))
    );

    // Per condition: the highest seed run, and the seed the report says it stopped at.
    let mut max_seed: BTreeMap<String, u64> = BTreeMap::new();
    for r in &results {
        let e = max_seed
            .entry(r["condition"].as_str().unwrap().to_string())
            .or_default();
        *e = (*e).max(r["seed"].as_u64().unwrap());
    }
    for c in report["cells"].as_array().unwrap() {
        let cond = c["condition"].as_str().unwrap();
        let stop = c["stopped_early"]
            .as_u64()
            .expect("every cell here narrows well before 20 seeds");
        assert!((2..20).contains(&stop), "{c}");
        assert_eq!(max_seed[cond] + 1, stop, "seeds run up to the stop and none after");
        // The stop was earned: the interval is narrower than the target.
        let ci = &c["compliance"];
        assert!(ci["hi"].as_f64().unwrap() - ci["lo"].as_f64().unwrap() < 0.25, "{c}");
        let runs = results.iter().filter(|r| r["condition"] == cond).count() as u64;
        assert_eq!(runs, 30 * stop);
    }

    // A rerun on the same store has nothing left to do and says the same.
    let o = sb.candor(&["run", spec.to_str().unwrap(), "--out", "out2", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = sb.json("out2/report.json");
    assert_eq!(again["cells"], report["cells"]);
    assert_eq!(again["sweep"]["jobs_skipped"], report["sweep"]["jobs_skipped"]);
}

#[test]
fn an_unreachable_target_runs_every_seed() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(5));
    let text = format!("{}early_stopping: {{target_width: 0.01}}\n", sim_spec(0, 3));
    let spec = sb.file("spec.yaml", &text);
    let o = sb.candor(&["run", spec.to_str().unwrap(), "--out", "out", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = sb.json("out/report.json");
    assert_eq!(report["sweep"]["jobs_skipped"], 0);
    assert_eq!(report["sweep"]["jobs_done"], 30);
    assert!(
        report["cells"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["stopped_early"].is_null())
    );
}
