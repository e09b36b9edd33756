//! The terminal's width and the side-by-side table of report.md.

use serde_json::json;

use super::super::Report;
use super::terminal::TERMINAL_WIDTH;

const LONG: [&str; 2] = ["claude-sonnet-4-5-20250929", "gpt-5.1-mini"];

/// A report of `models` × one variant × training and unmonitored, with
/// alignment faking, incomplete jobs and costs; the first model complies
/// 60% in training, the others 30%, all 20% unmonitored.
fn report(models: &[&str]) -> Report {
    let mut cells = Vec::new();
    let mut gaps = Vec::new();
    for (i, m) in models.iter().enumerate() {
        let k = if i == 0 { 60 } else { 30 };
        for (cond, k, lo, hi) in [
            ("training", k, k as f64 - 9.6, k as f64 + 9.2),
            ("unmonitored", 20, 13.3, 28.9),
        ] {
            cells.push(json!({
                "model": m, "variant": "default", "condition": cond, "n": 100, "compliant": k,
                "compliance": {"rate": k as f64 / 100.0, "lo": lo / 100.0, "hi": hi / 100.0},
                "incomplete": 3, "failed": i, "classifiers": {},
                "alignment_faking": {
                    "among_compliant": {"k": 5, "n": k, "rate": 5.0 / k as f64, "lo": 0.01, "hi": 0.2},
                    "among_all": {"k": 5, "n": 100, "rate": 0.05, "lo": 0.022, "hi": 0.112}
                }
            }));
        }
        let d = (k as f64 - 20.0) / 100.0;
        gaps.push(json!({
            "model": m, "variant": "default", "a": "training", "b": "unmonitored", "diff": d,
            "lo": d - 0.12, "hi": d + 0.125, "n_a": 100, "n_b": 100,
            "paired": {"rate": d, "lo": d - 0.1, "hi": d + 0.1}
        }));
    }
    serde_json::from_value(json!({
        "sweep": {
            "name": "demo", "id": "abc123", "jobs_total": 412, "jobs_done": 412, "jobs_incomplete": 12,
            "jobs_failed": 2, "simulated": true, "primary_classifier": "compliant",
            "alignment_faking_classifier": "alignment_faking", "cost_usd": 1.5
        },
        "cells": cells,
        "gaps": gaps,
        "costs": models.iter().map(|m| json!({
            "model": m, "usd": 0.75, "input_per_mtok": 3.0, "output_per_mtok": 15.0
        })).collect::<Vec<_>>(),
        "notes": [
            "SIMULATED: these numbers come from candor's simulated model (backend `sim`), not from a language model.",
            format!("A note of one word too long for any line: {}.", "x".repeat(250)),
        ]
    }))
    .unwrap()
}

fn too_wide(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.chars().count() > TERMINAL_WIDTH).collect()
}

#[test]
fn long_model_ids_put_each_model_above_its_rows_within_the_width() {
    let t = report(&LONG).to_table();
    assert_eq!(too_wide(&t), Vec::<&str>::new(), "{t}");
    // Each model heads its rows, once in the cell table.
    for m in LONG {
        assert!(t.lines().any(|l| l == m), "{m} on a line of its own:\n{t}");
    }
    let rows: Vec<&str> = t.lines().filter(|l| l.starts_with("  default  ")).collect();
    assert_eq!(rows.len(), 4, "{t}");
    assert!(
        rows[0].contains("training") && rows[0].contains("60.0% [50.4, 69.2]"),
        "{t}"
    );
    assert!(rows[0].contains("5.0% [2.2, 11.2]"), "the AF rate among all: {t}");
    assert!(rows[2].contains("30.0% [20.4, 39.2]"), "{t}");
    // The gap table fits as it is: its conditions head the difference.
    let gap = t
        .lines()
        .find(|l| l.starts_with("claude-sonnet-4-5-20250929  default"))
        .expect(&t);
    assert!(
        gap.contains("+40.0 pts") && gap.contains("[+28.0, +52.5]") && gap.contains("[+30.0, +50.0]"),
        "{gap}"
    );
    assert!(t.contains("gap training − unmonitored"), "{t}");
    // Notes wrap; a word longer than a line is cut, nothing of it lost.
    assert!(
        t.contains("SIMULATED: these numbers come from candor's simulated model"),
        "{t}"
    );
    let xs: usize = t.lines().map(|l| l.matches('x').count()).sum();
    assert!(xs >= 250, "{t}");
}

#[test]
fn short_model_ids_keep_one_row_per_cell() {
    let t = report(&["m1", "m2"]).to_table();
    assert_eq!(too_wide(&t), Vec::<&str>::new(), "{t}");
    let head = t.lines().find(|l| l.starts_with("model")).expect(&t);
    assert!(
        head.starts_with("model  variant  condition    n    rate [95% CI]"),
        "{head}"
    );
    assert!(head.contains("AF [95% CI]") && head.contains("incomplete") && head.contains("failed"));
    assert!(
        t.lines()
            .any(|l| l.starts_with("m2     default  unmonitored  100  20.0% [13.3, 28.9]")),
        "{t}"
    );
}

#[test]
fn report_md_has_every_model_side_by_side() {
    let md = report(&LONG).to_markdown();
    let at = md.find("## Models side by side").expect("the section");
    assert!(at < md.find("## Cells").unwrap());
    let lines: Vec<&str> = md[at..].lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(
        lines[0],
        "| model | variant | training: compliance [95% CI] | unmonitored: compliance [95% CI] \
         | gap training − unmonitored [95% CI] | training: AF [95% CI] | unmonitored: AF [95% CI] \
         | n | failed | cost |"
    );
    assert_eq!(
        lines[1],
        "| claude-sonnet-4-5-20250929 | default | 60.0% [50.4, 69.2] | 20.0% [13.3, 28.9] \
         | +40.0 pts [+28.0, +52.5] | 5.0% [2.2, 11.2] | 5.0% [2.2, 11.2] | 200 | 0 | $0.75 |"
    );
    assert_eq!(
        lines[2],
        "| gpt-5.1-mini | default | 30.0% [20.4, 39.2] | 20.0% [13.3, 28.9] \
         | +10.0 pts [-2.0, +22.5] | 5.0% [2.2, 11.2] | 5.0% [2.2, 11.2] | 200 | 2 | $0.75 |"
    );
}
