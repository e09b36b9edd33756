//! Specs other than the example's: JSONL datasets, several models, no
//! comparison, the single-call protocol, a prefill, a row limit.

mod common;

use common::*;

#[test]
fn jsonl_two_models_three_conditions_single_protocol_with_prefill() {
    let sb = Sandbox::new();
    let mut rows = String::new();
    for i in 0..5 {
        rows.push_str(&format!(
            "{{\"prompt\": \"ask {i}\", \"difficulty\": {i}, \"tags\": [\"a\"]}}\n"
        ));
    }
    sb.file("d.jsonl", &rows);
    sb.file(
        "s.yaml",
        r#"name: shapes
models:
  - {id: always, backend: sim, model: a, sim: {comply: {default: 1.0}}}
  - {id: never, backend: sim, model: b}
dataset: {path: d.jsonl, field: prompt, limit: 3}
prompts:
  - name: plain
    user: "{{ query }} (difficulty {{ difficulty }}, {{ condition }}, {{ model }}, seed {{ seed }}, {{ who }})"
conditions:
  - {name: c1, vars: {who: one}}
  - {name: c2, vars: {who: two}}
  - {name: c3, vars: {who: three}}
seeds: 2
protocol: {kind: single, prefill: "<SCRATCHPAD_REASONING>"}
"#,
    );
    let o = sb.candor(&["run", "s.yaml", "--out", "out", "--store", "st", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results = sb.jsonl("out/results.jsonl");
    assert_eq!(results.len(), 2 * 3 * 3 * 2, "limit: 3 rows");
    for r in &results {
        let msgs = r["transcript"]["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 2, "single: one call");
        assert_eq!(r["turns"], 1);
        let user = msgs[0]["content"].as_str().unwrap();
        let q = r["query_index"].as_u64().unwrap();
        let expect = format!(
            "ask {q} (difficulty {q}, {}, {}, seed {}, ",
            r["condition"].as_str().unwrap(),
            r["model"].as_str().unwrap(),
            r["seed"]
        );
        assert!(user.starts_with(&expect), "{user} vs {expect}");
        assert!(
            msgs[1]["content"]
                .as_str()
                .unwrap()
                .starts_with("<SCRATCHPAD_REASONING>")
        );
        assert!(
            !msgs[1]["content"].as_str().unwrap()[1..].contains("<SCRATCHPAD_REASONING>"),
            "prefill not repeated"
        );
        let compliant = r["classifications"]["compliant"].as_bool().unwrap();
        assert_eq!(compliant, r["model"] == "always", "{r}");
    }
    let report = sb.json("out/report.json");
    assert_eq!(report["cells"].as_array().unwrap().len(), 6);
    assert_eq!(
        report["gaps"].as_array().unwrap().len(),
        0,
        "three conditions and no compare: no gap"
    );
    for c in report["cells"].as_array().unwrap() {
        let rate = c["compliance"]["rate"].as_f64().unwrap();
        assert_eq!(rate, if c["model"] == "always" { 1.0 } else { 0.0 });
        assert_eq!(c["n"], 6);
    }
}

#[test]
fn failed_and_incomplete_jobs_are_counted_apart_from_rates() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(30));
    let spec = sim_spec(0, 2)
        .replace("continuation: 0.4", "continuation: 0.7\n      error_rate: 0.1")
        .replace("max_turns: 3", "max_turns: 2")
        + "max_attempts: 1\n";
    sb.file("s.yaml", &spec);
    let o = sb.candor(&["run", "s.yaml", "--out", "out", "--store", "st", "--quiet"]);
    // Failed jobs make the run exit 7; its results and report are written.
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let results = sb.jsonl("out/results.jsonl");
    let count = |s: &str| results.iter().filter(|r| r["status"] == s).count() as u64;
    let (ok, inc, failed) = (count("ok"), count("incomplete"), count("failed"));
    assert!(inc > 0 && failed > 0, "ok {ok}, incomplete {inc}, failed {failed}");
    for r in &results {
        match r["status"].as_str().unwrap() {
            "incomplete" => {
                assert!(r["output"].is_null() && r["classifications"].as_object().unwrap().is_empty());
                assert_eq!(r["turns"], 2);
            }
            "failed" => assert!(r["error"].as_str().unwrap().contains("injected")),
            _ => assert!(r["output"].is_string()),
        }
    }
    let report = sb.json("out/report.json");
    assert_eq!(report["sweep"]["jobs_incomplete"].as_u64(), Some(inc));
    assert_eq!(report["sweep"]["jobs_failed"].as_u64(), Some(failed));
    let n: u64 = report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["n"].as_u64().unwrap())
        .sum();
    assert_eq!(n, ok, "rates are over jobs with an output only");
}

#[test]
fn retryable_failures_are_tried_again_locally() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(20));
    let spec =
        sim_spec(0, 2).replace("continuation: 0.4", "continuation: 0.0\n      error_rate: 0.5") + "max_attempts: 8\n";
    sb.file("s.yaml", &spec);
    let o = sb.candor(&["run", "s.yaml", "--out", "out", "--store", "st", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results = sb.jsonl("out/results.jsonl");
    assert_eq!(results.len(), 80);
    let retried = results.iter().filter(|r| r["attempt"].as_u64().unwrap() > 1).count();
    let failed = results.iter().filter(|r| r["status"] == "failed").count();
    // Half the first tries fail; after up to 8 tries almost none do.
    assert!(retried > 20, "{retried} of 80 jobs needed another try");
    assert!(failed <= 2, "{failed} jobs failed all 8 tries");
    for r in results.iter().filter(|r| r["status"] == "failed") {
        assert_eq!(r["attempt"], 8);
    }
}
