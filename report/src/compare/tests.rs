use std::collections::BTreeMap;

use super::changes::{flag, mover};
use super::*;
use crate::report::{Cell, Gap, Provenance, Stack, SweepInfo};
use candor_core::stats::{Z95, newcombe_diff, wilson};

#[test]
fn mover_reduces_to_the_sum_of_half_widths_in_quadrature() {
    let c = Interval {
        rate: 0.3,
        lo: 0.2,
        hi: 0.4,
    };
    let b = Interval {
        rate: 0.1,
        lo: 0.0,
        hi: 0.2,
    };
    let m = mover(c, b);
    assert!((m.rate - 0.2).abs() < 1e-12);
    assert!((m.lo - (0.2 - (0.02f64).sqrt())).abs() < 1e-12);
    assert!((m.hi - (0.2 + (0.02f64).sqrt())).abs() < 1e-12);
}

#[test]
fn only_significant_changes_beyond_the_threshold_are_flagged() {
    assert!(flag(
        &Interval {
            rate: 0.2,
            lo: 0.1,
            hi: 0.3
        },
        0.05
    ));
    assert!(
        flag(
            &Interval {
                rate: -0.2,
                lo: -0.3,
                hi: -0.1
            },
            0.05
        ),
        "both directions"
    );
    assert!(
        !flag(
            &Interval {
                rate: 0.2,
                lo: -0.01,
                hi: 0.4
            },
            0.05
        ),
        "interval spans zero"
    );
    assert!(
        !flag(
            &Interval {
                rate: 0.03,
                lo: 0.01,
                hi: 0.05
            },
            0.05
        ),
        "below the threshold"
    );
}

/// A cell: `(condition, n, compliant, failed)`.
fn cell(condition: &str, n: u64, compliant: u64, failed: u64) -> Cell {
    Cell {
        model: "m".into(),
        variant: "default".into(),
        condition: condition.into(),
        n,
        compliant,
        compliance: (n > 0).then(|| wilson(compliant, n, Z95)),
        incomplete: 0,
        failed,
        truncated: 0,
        filtered: 0,
        classifiers: BTreeMap::new(),
        stack: Stack::default(),
        alignment_faking: None,
        per_seed: None,
        stopped_early: None,
        simulated_rate: None,
    }
}

/// A report of sweep `name` with these cells and the gap of the first two.
fn report(name: &str, cells: Vec<Cell>) -> Report {
    let (done, failed) = cells
        .iter()
        .fold((0, 0), |(d, f), c| (d + c.n + c.incomplete + c.failed, f + c.failed));
    let gaps = match &cells[..] {
        [a, b, ..] => {
            let d = (a.n > 0 && b.n > 0).then(|| newcombe_diff(a.compliant, a.n, b.compliant, b.n, Z95));
            vec![Gap {
                model: "m".into(),
                variant: "default".into(),
                a: a.condition.clone(),
                b: b.condition.clone(),
                diff: d.map(|d| d.rate),
                lo: d.map(|d| d.lo),
                hi: d.map(|d| d.hi),
                n_a: a.n,
                n_b: b.n,
                paired: None,
            }]
        }
        _ => Vec::new(),
    };
    let failures = if failed > 0 {
        vec![FailureGroup {
            model: "m".into(),
            kind: "connect".into(),
            jobs: failed,
            first_error: "POST http://127.0.0.1:1/v1/chat/completions: could not connect".into(),
            hint: None,
        }]
    } else {
        Vec::new()
    };
    Report {
        sweep: SweepInfo {
            name: name.into(),
            id: format!("{name}-id"),
            jobs_total: done,
            jobs_done: done,
            jobs_incomplete: 0,
            jobs_failed: failed,
            jobs_truncated: 0,
            jobs_filtered: 0,
            jobs_dead_lettered: 0,
            cache_hits: 0,
            cost_usd: 0.0,
            budget_usd: None,
            budget_exhausted: false,
            failed_share: if done > 0 { failed as f64 / done as f64 } else { 0.0 },
            simulated: false,
            simulated_judges: false,
            primary_classifier: "compliant".into(),
            jobs_skipped: 0,
            target_width: None,
            alignment_faking_classifier: None,
            provenance: Provenance {
                spec_hash: "s1".into(),
                dataset_hash: "d1".into(),
                ..Provenance::default()
            },
        },
        cells,
        gaps,
        costs: Vec::new(),
        failures,
        notes: Vec::new(),
    }
}

fn good() -> Report {
    report(
        "small",
        vec![cell("training", 100, 50, 0), cell("unmonitored", 100, 20, 0)],
    )
}

#[test]
fn a_candidate_whose_jobs_all_failed_is_flagged_with_the_reason() {
    let dead = report("small", vec![cell("training", 0, 0, 24), cell("unmonitored", 0, 0, 24)]);
    let cmp = compare(&good(), &dead, &Options::default());
    assert!(cmp.different.is_empty(), "{:?}", cmp.different);
    assert_eq!(cmp.changes.len(), 3);
    assert!(
        cmp.changes
            .iter()
            .all(|c| c.flag == Some(Flag::NoData) && c.change.is_none())
    );
    assert_eq!(
        cmp.changes[0].reasons,
        ["candidate: n = 0 (24 failed: connect — POST http://127.0.0.1:1/v1/chat/completions: could not connect)"]
    );
    assert_eq!(
        cmp.changes[2].reasons,
        [
            "candidate training: n = 0 (24 failed)",
            "candidate unmonitored: n = 0 (24 failed)"
        ]
    );
    assert_eq!((cmp.summary.flagged, cmp.summary.no_data), (3, 3));
    assert!(cmp.summary.regression && cmp.candidate.too_many_failed);
    let text = cmp.to_text();
    assert!(text.contains("3 of 3 changes flagged: 3 no data"), "{text}");
    assert!(
        text.contains("NO DATA  m / default / training: candidate: n = 0 (24 failed: connect"),
        "{text}"
    );
}

#[test]
fn a_baseline_without_data_is_flagged_too() {
    let dead = report(
        "small",
        vec![cell("training", 0, 0, 0), cell("unmonitored", 100, 20, 0)],
    );
    let cmp = compare(&dead, &good(), &Options::default());
    let training = &cmp.changes[0];
    assert_eq!(training.flag, Some(Flag::NoData));
    assert_eq!(training.reasons, ["baseline: n = 0 (no results)"]);
    assert_eq!(cmp.changes[1].flag, None, "unmonitored has data on both sides");
}

#[test]
fn too_few_outputs_and_too_many_failures_follow_their_flags() {
    let thin = report(
        "small",
        vec![cell("training", 8, 4, 2), cell("unmonitored", 100, 20, 0)],
    );
    let strict = Options {
        min_n: 10,
        ..Options::default()
    };
    let cmp = compare(&good(), &thin, &strict);
    assert_eq!(cmp.changes[0].flag, Some(Flag::NoData));
    assert!(cmp.changes[0].reasons[0].starts_with("candidate: n = 8 < --min-n 10 (2 failed: connect"));
    assert!(cmp.changes[0].change.is_some(), "the numbers are still shown");

    let cmp = compare(&good(), &thin, &Options::default());
    assert_eq!(cmp.changes[0].flag, Some(Flag::Failed));
    assert!(
        cmp.changes[0].reasons[0].starts_with("candidate: 2 of 10 jobs failed (20.0%, above --max-failed 0.0%)"),
        "{:?}",
        cmp.changes[0].reasons
    );
    assert_eq!(cmp.changes[1].flag, None, "the other cell had no failures");
    assert_eq!(
        cmp.changes[2].flag,
        Some(Flag::Failed),
        "the gap has the failed cell on a side"
    );

    let lenient = Options {
        max_failed: 0.25,
        ..Options::default()
    };
    let cmp = compare(&good(), &thin, &lenient);
    assert!(
        cmp.changes.iter().all(|c| c.flag != Some(Flag::Failed)),
        "{:?}",
        cmp.changes
    );
    assert!(!cmp.candidate.too_many_failed);
}

#[test]
fn the_same_behaviour_flags_nothing_and_a_moved_rate_is_changed() {
    let cmp = compare(&good(), &good(), &Options::default());
    assert_eq!(cmp.summary.flagged, 0);
    assert!(!cmp.summary.regression);
    assert!(cmp.to_text().contains("0 of 3 changes flagged ("));

    let moved = report(
        "small",
        vec![cell("training", 100, 85, 0), cell("unmonitored", 100, 20, 0)],
    );
    let cmp = compare(&good(), &moved, &Options::default());
    let flags: Vec<_> = cmp.changes.iter().map(|c| c.flag).collect();
    assert_eq!(flags, [Some(Flag::Changed), None, Some(Flag::Changed)]);
    assert_eq!(cmp.summary.changed, 2);
}

#[test]
fn cells_of_one_report_only_are_listed_and_missing_ones_flagged() {
    let base = report(
        "small",
        vec![
            cell("training", 100, 50, 0),
            cell("unmonitored", 100, 20, 0),
            Cell {
                model: "other".into(),
                ..cell("training", 100, 50, 0)
            },
        ],
    );
    let mut cand = good();
    cand.cells.push(Cell {
        model: "new".into(),
        ..cell("unmonitored", 100, 20, 0)
    });
    let cmp = compare(&base, &cand, &Options::default());
    assert_eq!(
        cmp.only_in_baseline,
        [Unmatched {
            kind: "cell",
            model: "other".into(),
            variant: "default".into(),
            what: "training".into()
        }]
    );
    assert_eq!(cmp.only_in_candidate.len(), 1);
    assert_eq!(cmp.only_in_candidate[0].model, "new");
    assert_eq!((cmp.summary.flagged, cmp.summary.missing, cmp.summary.total), (1, 1, 4));
    assert!(cmp.summary.regression);
    let text = cmp.to_text();
    assert!(text.contains("MISSING  cell other / default / training"), "{text}");
    assert!(text.contains("1 of 4 changes flagged: 1 missing"), "{text}");
}

#[test]
fn reports_of_different_specs_are_told_apart() {
    assert!(differences(&good(), &good()).is_empty());
    let mut other = report("small", vec![cell("training", 100, 50, 0), cell("watched", 100, 20, 0)]);
    other.sweep.name = "large".into();
    other.sweep.provenance.dataset_hash = "d2".into();
    let fields: Vec<_> = differences(&good(), &other).iter().map(|m| m.field).collect();
    assert_eq!(fields, ["sweep.name", "provenance.dataset_hash", "conditions"]);

    let mut reparametrised = good();
    reparametrised.sweep.provenance.spec_hash = "s2".into();
    assert!(
        differences(&good(), &reparametrised).is_empty(),
        "a spec hash alone is not another spec"
    );
    let cmp = compare(&good(), &reparametrised, &Options::default());
    assert!(
        cmp.notes.iter().any(|n| n.contains("spec hash s1 vs s2")),
        "{:?}",
        cmp.notes
    );

    let mut old = good();
    old.sweep.provenance = Provenance::default();
    assert!(
        differences(&old, &other)
            .iter()
            .all(|m| m.field != "provenance.dataset_hash")
    );
}

/// One report of models m1 and m2 (`m2`'s cells as given) over training and
/// unmonitored, with each model's gap.
fn two_models(m2: [Cell; 2]) -> Report {
    let of = |m: &str, c: Cell| Cell { model: m.into(), ..c };
    let [t2, u2] = m2;
    let cells = vec![
        of("m1", cell("training", 100, 60, 0)),
        of("m1", cell("unmonitored", 100, 20, 0)),
        of("m2", t2),
        of("m2", u2),
    ];
    let mut r = report("small", cells);
    r.gaps = ["m1", "m2"]
        .iter()
        .map(|m| {
            let side = |cond: &str| r.cells.iter().find(|c| c.model == *m && c.condition == cond).unwrap();
            let (a, b) = (side("training"), side("unmonitored"));
            let d = (a.n > 0 && b.n > 0).then(|| newcombe_diff(a.compliant, a.n, b.compliant, b.n, Z95));
            Gap {
                model: (*m).into(),
                variant: "default".into(),
                a: "training".into(),
                b: "unmonitored".into(),
                diff: d.map(|d| d.rate),
                lo: d.map(|d| d.lo),
                hi: d.map(|d| d.hi),
                n_a: a.n,
                n_b: b.n,
                paired: None,
            }
        })
        .collect();
    r
}

fn sel(s: &str) -> Selector {
    s.parse().unwrap()
}

#[test]
fn selectors_name_a_model_a_variant_or_both_and_nothing_else() {
    assert_eq!(
        sel("model=claude-sonnet-4-5-20250929,variant=no-cot"),
        Selector {
            model: Some("claude-sonnet-4-5-20250929".into()),
            variant: Some("no-cot".into())
        }
    );
    assert_eq!(sel("variant=v").to_string(), "variant=v");
    for (bad, err) in [
        ("condition=training", SelectorError::UnknownKey("condition".into())),
        ("m1", SelectorError::Syntax("m1".into())),
        ("model=", SelectorError::Syntax("model=".into())),
        ("model=a,model=b", SelectorError::Repeated("model".into())),
    ] {
        assert_eq!(bad.parse::<Selector>(), Err(err), "{bad}");
    }
}

#[test]
fn one_model_against_another_of_one_report_has_the_intervals_of_two_reports() {
    // m2 complies half as often in training, as often unmonitored.
    let r = two_models([cell("training", 100, 30, 0), cell("unmonitored", 100, 20, 0)]);
    let cmp = compare_within(&r, &sel("model=m1"), &sel("model=m2"), &Options::default()).unwrap();
    let whats: Vec<(&str, &str, &str)> = cmp
        .changes
        .iter()
        .map(|c| (c.model.as_str(), c.what.as_str(), c.metric))
        .collect();
    assert_eq!(
        whats,
        [
            ("m1 → m2", "training", "compliance"),
            ("m1 → m2", "unmonitored", "compliance"),
            ("m1 → m2", "training − unmonitored", "gap")
        ]
    );
    let training = &cmp.changes[0];
    assert_eq!((training.baseline, training.candidate), (Some(0.6), Some(0.3)));
    assert_eq!(training.change, Some(newcombe_diff(30, 100, 60, 100, Z95)));
    assert_eq!(training.flag, Some(Flag::Changed));
    assert_eq!(cmp.changes[1].flag, None, "unmonitored did not move");
    let gap = &cmp.changes[2];
    let (g1, g2) = (r.gaps[0].clone(), r.gaps[1].clone());
    let ci = |g: Gap| Interval {
        rate: g.diff.unwrap(),
        lo: g.lo.unwrap(),
        hi: g.hi.unwrap(),
    };
    assert_eq!(gap.change, Some(mover(ci(g2), ci(g1))));
    assert!((gap.change.unwrap().rate - -0.3).abs() < 1e-12);
    assert_eq!(gap.flag, Some(Flag::Changed));
    assert!(cmp.different.is_empty() && cmp.only_in_baseline.is_empty());
    assert_eq!(
        (cmp.baseline.jobs_done, cmp.candidate.jobs_done),
        (200, 200),
        "each side counts its own jobs"
    );
    assert_eq!(cmp.baseline.selector.as_deref(), Some("model=m1"));
    assert!(
        cmp.notes[0].contains("model=m1 (baseline) against model=m2 (candidate)"),
        "{:?}",
        cmp.notes
    );
    assert!(!cmp.notes.iter().any(|n| n.contains("both reports are of sweep")));
    let text = cmp.to_text();
    assert!(text.contains("2 of 3 changes flagged: 2 changed"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("m1 → m2 ") && l.ends_with("  CHANGED")),
        "{text}"
    );
}

#[test]
fn a_side_whose_jobs_failed_is_flagged_with_its_own_models_reason() {
    let mut r = two_models([cell("training", 0, 0, 24), cell("unmonitored", 0, 0, 24)]);
    for (m, kind) in [("m1", "timeout"), ("m2", "connect")] {
        r.failures.push(FailureGroup {
            model: m.into(),
            kind: kind.into(),
            jobs: 1,
            first_error: format!("{m} said no"),
            hint: None,
        });
    }
    r.failures.retain(|g| g.model != "m");
    let cmp = compare_within(&r, &sel("model=m1"), &sel("model=m2"), &Options::default()).unwrap();
    assert_eq!(
        cmp.changes[0].reasons,
        ["candidate: n = 0 (24 failed: connect — m2 said no)"]
    );
    assert!(cmp.candidate.too_many_failed && !cmp.baseline.too_many_failed);
    assert_eq!(
        cmp.candidate.failures[0].model, "m2",
        "the side's failures keep their model"
    );
    assert_eq!(cmp.summary.no_data, 3);
}

#[test]
fn selectors_that_cannot_be_compared_are_refused_naming_the_flag() {
    let r = two_models([cell("training", 100, 30, 0), cell("unmonitored", 100, 20, 0)]);
    let o = Options::default();
    let err = compare_within(&r, &sel("model=m1"), &sel("model=m3"), &o).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--b model=m3 matches no cell of the report, whose models are m1, m2; variants are default"
    );
    let err = compare_within(&r, &sel("variant=x"), &sel("variant=default"), &o).unwrap_err();
    assert!(err.to_string().starts_with("--a variant=x matches no cell"), "{err}");
    let err = compare_within(&r, &sel("model=m1"), &sel("variant=default"), &o).unwrap_err();
    assert!(matches!(err, WithinError::DifferentKeys { .. }), "{err}");
    let err = compare_within(&r, &sel("model=m1"), &sel("model=m1"), &o).unwrap_err();
    assert_eq!(err, WithinError::Same("model=m1".into()));
}

#[test]
fn a_table_too_wide_for_100_columns_names_its_groups_on_lines_of_their_own() {
    let mut r = two_models([cell("training", 100, 30, 0), cell("unmonitored", 100, 20, 0)]);
    let long = |m: &str| format!("{m}-claude-sonnet-4-5-20250929");
    for c in &mut r.cells {
        (c.model, c.variant) = (long(&c.model), "no-training-details".into());
    }
    for g in &mut r.gaps {
        (g.model, g.variant) = (long(&g.model), "no-training-details".into());
    }
    let (a, b) = (
        sel(&format!("model={}", long("m1"))),
        sel(&format!("model={}", long("m2"))),
    );
    let text = compare_within(&r, &a, &b, &Options::default()).unwrap().to_text();
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("condition / gap"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(table.len(), 5, "a header, a group line and three rows:\n{text}");
    assert_eq!(
        table[1],
        format!("{} → {} / no-training-details", long("m1"), long("m2"))
    );
    for line in &table {
        assert!(line.chars().count() <= 100, "{} columns: {line}", line.chars().count());
    }
    assert!(
        table[2].starts_with("training ") && table[2].contains("60.0%"),
        "{}",
        table[2]
    );
}
