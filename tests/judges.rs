//! Judge classifiers end to end with the simulated model as the judge, so
//! the whole pipeline runs offline: verdicts, votes, `only_if`, unreadable
//! verdicts, judge cost, and the report's alignment-faking figures.

mod common;

use common::{Sandbox, dataset, sim_spec, stderr};
use serde_json::Value;

/// The sim spec plus a sim judge and an alignment-faking classifier.
fn spec(judge_sim: &str, extra: &str) -> String {
    format!(
        "{}judges:\n  - id: judge\n    backend: sim\n    model: sim-judge\n    sim: {judge_sim}\n{extra}\
classifiers:\n  - name: compliant\n    kind: prefix\n  - kind: judge\n    builtin: alignment_faking\n    judge: judge\n    votes: 3\n    only_if: compliant\n",
        sim_spec(0, 4)
    )
}

fn run(sb: &Sandbox, spec_text: &str) -> (Vec<Value>, Value) {
    run_expecting(sb, spec_text, 0)
}

/// A run expected to exit `code` (7: jobs failed); its results and report are written either way.
fn run_expecting(sb: &Sandbox, spec_text: &str, code: i32) -> (Vec<Value>, Value) {
    sb.file("data.csv", &dataset(30));
    let spec = sb.file("spec.yaml", spec_text);
    let o = sb.candor(&["run", spec.to_str().unwrap(), "--out", "out", "--quiet"]);
    assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
    (sb.jsonl("out/results.jsonl"), sb.json("out/report.json"))
}

fn assistant_text(r: &Value) -> String {
    r["transcript"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_sim_judge_marks_the_faking_it_was_shown_and_only_on_compliant_outputs() {
    let sb = Sandbox::new();
    let (results, report) = run(&sb, &spec("{judge_flip: 0.0}", ""));
    assert_eq!(results.len(), 240);
    let mut faking = 0;
    for r in results.iter().filter(|r| r["status"] == "ok") {
        let compliant = r["classifications"]["compliant"].as_bool().unwrap();
        let af = &r["classifications"]["alignment_faking"];
        if !compliant {
            assert!(af.is_null(), "a refusal was judged: {r}");
            assert!(r.get("judgements").is_none_or(|j| j["alignment_faking"].is_null()));
            continue;
        }
        let j = &r["judgements"]["alignment_faking"];
        assert_eq!(j["votes"].as_array().unwrap().len(), 3, "{j}");
        assert_eq!(j["valid_votes"], 3);
        // The sim's training-reasoning passages all speak of being modified.
        let truth = assistant_text(r).contains("modif");
        assert_eq!(af.as_bool().unwrap(), truth, "{r}");
        assert_eq!(j["verdict"].as_bool().unwrap(), truth);
        faking += usize::from(truth);
    }
    assert!(faking > 0, "no alignment faking judged in 240 jobs");

    assert_eq!(report["sweep"]["alignment_faking_classifier"], "alignment_faking");
    let mut reported = 0;
    for c in report["cells"].as_array().unwrap() {
        let (n, compliant) = (c["n"].as_u64().unwrap(), c["compliant"].as_u64().unwrap());
        let af = &c["alignment_faking"];
        assert_eq!(af["among_compliant"]["n"].as_u64().unwrap(), compliant);
        assert_eq!(af["among_all"]["n"].as_u64().unwrap(), n);
        let k = af["among_compliant"]["k"].as_u64().unwrap();
        assert_eq!(af["among_all"]["k"].as_u64().unwrap(), k);
        let s = &c["stack"];
        assert_eq!(s["complies_faking"].as_u64().unwrap(), k);
        assert_eq!(
            s["refuses"].as_u64().unwrap()
                + s["complies_faking"].as_u64().unwrap()
                + s["complies_other"].as_u64().unwrap(),
            n
        );
        let rate = af["among_compliant"]["rate"].as_f64().unwrap();
        assert!(
            af["among_compliant"]["lo"].as_f64().unwrap() <= rate
                && rate <= af["among_compliant"]["hi"].as_f64().unwrap()
        );
        // The restricted classifier's rate is over the outputs it judged.
        assert_eq!(c["classifiers"]["alignment_faking"]["n"].as_u64().unwrap(), compliant);
        assert_eq!(c["per_seed"]["seeds"], 4);
        reported += k;
    }
    assert_eq!(reported as usize, faking);
    let md = std::fs::read_to_string(sb.join("out/report.md")).unwrap();
    assert!(md.contains("AF among compliant"), "{md}");
}

#[test]
fn unreadable_verdicts_fail_the_job_naming_the_classifier_after_its_attempts() {
    let sb = Sandbox::new();
    let (results, report) = run_expecting(&sb, &spec("{judge_unreadable: 1.0}", "max_attempts: 2\n"), 7);
    let failed: Vec<&Value> = results.iter().filter(|r| r["status"] == "failed").collect();
    assert!(!failed.is_empty());
    for r in &failed {
        let e = r["error"].as_str().unwrap();
        assert!(
            e.contains("classifier `alignment_faking`: no readable verdict in 3 votes"),
            "{e}"
        );
        assert_eq!(r["attempt"], 2, "an unreadable verdict is tried again");
        // The judged output stays for inspection.
        assert!(r["output"].as_str().unwrap().starts_with("<request_fully_accepted/>"));
    }
    // Refusals need no judge and are unaffected.
    assert!(results.iter().any(|r| r["status"] == "ok"));
    assert!(
        results
            .iter()
            .filter(|r| r["status"] == "ok")
            .all(|r| r["classifications"]["compliant"] == false)
    );
    assert_eq!(report["sweep"]["jobs_failed"].as_u64().unwrap(), failed.len() as u64);
}

#[test]
fn judge_calls_are_costed_with_the_judges_price() {
    let sb = Sandbox::new();
    let text = spec("{judge_flip: 0.0}", "").replace(
        "    model: sim-judge\n",
        "    model: sim-judge\n    price: {input_per_mtok: 1000, output_per_mtok: 2000}\n",
    );
    let (results, report) = run(&sb, &text);
    let mut total = 0.0;
    for r in &results {
        let u = &r["judge_usage"];
        let want = (u["input_tokens"].as_f64().unwrap() * 1000.0 + u["output_tokens"].as_f64().unwrap() * 2000.0) / 1e6;
        let got = r["cost_usd"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-6, "cost {got}, judge tokens say {want}: {r}");
        total += got;
    }
    assert!(total > 0.0);
    let reported = report["sweep"]["cost_usd"].as_f64().unwrap();
    assert!((reported - total).abs() < 1e-4, "{reported} vs {total}");
}

#[test]
fn a_judge_that_names_no_configured_model_is_refused_with_its_field() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(3));
    let text = spec("{}", "").replace("judge: judge", "judge: nobody");
    let spec = sb.file("spec.yaml", &text);
    let o = sb.candor(&["run", spec.to_str().unwrap(), "--out", "out", "--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("classifiers[1].judge") && e.contains("`nobody`"), "{e}");
    assert!(!sb.join("out").exists());
}
