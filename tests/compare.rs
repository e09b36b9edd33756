//! `candor compare`: a planted change is flagged, a rerun with other
//! sampling seeds is not.

mod common;

use common::*;

fn run(sb: &Sandbox, name: &str, spec: &str) {
    sb.file(&format!("{name}.yaml"), spec);
    let o = sb.candor(&[
        "run",
        &format!("{name}.yaml"),
        "--out",
        name,
        "--store",
        "st",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_planted_change_is_flagged_and_other_seeds_are_not() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(60));
    run(&sb, "base", &sim_spec(0, 3));
    // Same model, one more sampling seed: the same behaviour.
    run(&sb, "reseeded", &sim_spec(0, 4));
    // The model now complies far more often when it believes it is trained.
    run(
        &sb,
        "changed",
        &sim_spec(0, 3).replace("{training: 0.5,", "{training: 0.85,"),
    );

    let o = sb.candor(&["compare", "base", "reseeded", "--fail-on-regression"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("0 of 3 changes flagged"), "{}", stdout(&o));

    let o = sb.candor(&["compare", "base/report.json", "changed", "--fail-on-regression"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    let line = |what: &str| {
        text.lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("{what}: {text}"))
            .to_string()
    };
    assert!(line(" training ").ends_with("CHANGED"), "{text}");
    assert!(!line(" unmonitored ").ends_with("CHANGED"), "{text}");
    assert!(line("training − unmonitored").ends_with("CHANGED"), "{text}");

    let o = sb.candor(&["compare", "base", "changed", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let training = v.as_array().unwrap().iter().find(|c| c["what"] == "training").unwrap();
    assert!(training["change"]["lo"].as_f64().unwrap() > 0.0, "{training}");

    let o = sb.candor(&["compare", "base", "nowhere"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("candidate") && stderr(&o).contains("nowhere"),
        "{}",
        stderr(&o)
    );
}

/// The sim spec with a sim judge of alignment faking on compliant outputs.
fn judged(seeds: u32, reasons: &str) -> String {
    sim_spec(0, seeds).replace("reasons_about_training: {training: 0.3}", reasons)
        + "judges:\n  - {id: judge, backend: sim, model: sim-judge}\n\
           classifiers:\n  - {name: compliant, kind: prefix}\n\
           \x20 - {kind: judge, builtin: alignment_faking, judge: judge, votes: 3, only_if: compliant}\n"
}

#[test]
fn the_alignment_faking_rate_is_watched_too() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(60));
    run(&sb, "base", &judged(3, "reasons_about_training: {training: 0.3}"));
    run(&sb, "reseeded", &judged(4, "reasons_about_training: {training: 0.3}"));
    // Complies as often, but now mostly to avoid being modified.
    run(&sb, "faking", &judged(3, "reasons_about_training: {training: 0.9}"));

    let o = sb.candor(&["compare", "base", "reseeded", "--fail-on-regression"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("0 of 7 changes flagged"), "{}", stdout(&o));

    let o = sb.candor(&["compare", "base", "faking", "--json", "--fail-on-regression"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let get = |what: &str, metric: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|c| c["what"] == what && c["metric"] == metric)
            .unwrap_or_else(|| panic!("{what} {metric}: {v}"))
            .clone()
    };
    assert_eq!(get("training", "AF|compliant")["flagged"], true);
    assert_eq!(get("training", "AF|all")["flagged"], true);
    assert_eq!(
        get("training", "compliance")["flagged"],
        false,
        "compliance did not move"
    );
    assert_eq!(get("unmonitored", "AF|compliant")["flagged"], false);
}
