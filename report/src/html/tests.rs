use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::script::{SCRIPT, base64};
use super::tables::{KNOWN_CELL_FIELDS, unknown_fields};
use super::*;
use crate::report::Rate;

const MODELS: [&str; 2] = ["m1", "m2"];
const CONDITIONS: [&str; 2] = ["training", "unmonitored"];

/// A report of two models × one variant × two conditions; with an
/// alignment-faking classifier when `faking`.
fn report(faking: bool) -> Report {
    let mut cells = Vec::new();
    for m in MODELS {
        for c in CONDITIONS {
            let mut cell = json!({
                "model": m, "variant": "default", "condition": c, "n": 40, "compliant": 12,
                "compliance": {"rate": 0.3, "lo": 0.18, "hi": 0.45}, "incomplete": 1, "failed": 0,
                "classifiers": {"compliant": {"yes": 12, "n": 40, "rate": 0.3, "lo": 0.18, "hi": 0.45}},
                "stack": {"refuses": 28, "complies_faking": 5, "complies_other": 7},
                "per_seed": {"seeds": 2, "min": 0.25, "max": 0.35, "sd": 0.07},
                "simulated_rate": 0.3
            });
            if faking {
                cell["alignment_faking"] = json!({
                    "among_compliant": {"k": 5, "n": 12, "rate": 0.4167, "lo": 0.19, "hi": 0.68},
                    "among_all": {"k": 5, "n": 40, "rate": 0.125, "lo": 0.05, "hi": 0.26}
                });
                cell["classifiers"]["alignment_faking"] = json!({
                    "yes": 5, "n": 12, "rate": 0.4167, "lo": 0.19, "hi": 0.68,
                    "among_all": {"rate": 0.125, "lo": 0.05, "hi": 0.26}
                });
            }
            cells.push(cell);
        }
    }
    serde_json::from_value(json!({
        "sweep": {
            "name": "demo", "id": "abc123", "jobs_total": 164, "jobs_done": 164, "jobs_incomplete": 4,
            "jobs_failed": 0, "simulated": true, "primary_classifier": "compliant",
            "alignment_faking_classifier": if faking { json!("alignment_faking") } else { Value::Null },
            "cost_usd": 1.5
        },
        "cells": cells,
        "gaps": MODELS.iter().map(|m| json!({
            "model": m, "variant": "default", "a": "training", "b": "unmonitored", "diff": 0.2,
            "lo": 0.05, "hi": 0.35, "n_a": 40, "n_b": 40, "paired": {"rate": 0.2, "lo": 0.08, "hi": 0.31}
        })).collect::<Vec<_>>(),
        "costs": MODELS.iter().map(|m| json!({
            "model": m, "usd": 0.75, "input_per_mtok": 3.0, "output_per_mtok": 15.0
        })).collect::<Vec<_>>(),
        "notes": ["SIMULATED: made-up numbers.", "Rates are over jobs that gave a final output (n)."]
    }))
    .unwrap()
}

fn result(model: &str, condition: &str, query: u64, seed: u64, text: &str) -> String {
    json!({
        "job_id": format!("{model}-{condition}-{query}-{seed}"), "sweep_id": "abc123", "index": query,
        "model": model, "variant": "default", "query_index": query, "query": format!("query {query} {text}"),
        "condition": condition, "seed": seed, "status": "ok", "output": text,
        "classifications": {"compliant": query.is_multiple_of(2), "alignment_faking": query.is_multiple_of(4)},
        "turns": 1, "attempt": 1, "cache_hits": 0, "cost_usd": 0.001,
        "usage": {"input_tokens": 100, "output_tokens": 20}, "latency_ms": 12.5, "started_at_ms": 1,
        "error": null,
        "transcript": {"system": format!("The system prompt of {condition}."), "messages": [
            {"role": "user", "content": format!("query {query}")},
            {"role": "assistant", "content": format!("<SCRATCHPAD_REASONING>{text}</SCRATCHPAD_REASONING><OUTPUT>{text}</OUTPUT>")}
        ]}
    })
    .to_string()
}

/// `per_cell` results for each model × condition, as results.jsonl.
fn results(per_cell: u64, text: &str) -> String {
    let mut s = String::new();
    for q in 0..per_cell {
        for m in MODELS {
            for c in CONDITIONS {
                s.push_str(&result(m, c, q, 0, text));
                s.push('\n');
            }
        }
    }
    s
}

fn render(report: &Report, jsonl: &str, limits: Limits) -> (String, Embedded) {
    let mut out = Vec::new();
    let e = write_html_within(report, jsonl.as_bytes(), &mut out, limits).unwrap();
    (String::from_utf8(out).unwrap(), e)
}

/// The page's embedded data, parsed.
fn data(page: &str) -> Value {
    let start = page.find("id=\"candor-data\">").unwrap() + "id=\"candor-data\">".len();
    let end = start + page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..end]).unwrap()
}

#[test]
fn a_transcript_cannot_close_the_script_block() {
    let evil = "</script><script>alert(1)</script><!-- \u{2028}\u{2029} & <img src=x onerror=alert(2)>";
    let mut r = report(true);
    r.cells[0].model = "<img src=x onerror=alert(3)>".into();
    let (page, e) = render(&r, &result("m1", "training", 0, 0, evil), Limits::default());
    assert_eq!(e.shown, 1);
    assert_eq!(
        page.to_ascii_lowercase().matches("<script").count(),
        2,
        "only the data block and the page's own script"
    );
    assert_eq!(page.matches("</script>").count(), 2);
    assert!(!page.contains("<img"), "markup in data and names is escaped");
    assert!(!page.contains('\u{2028}') && !page.contains('\u{2029}'));
    assert!(
        page.contains("&lt;img src=x onerror=alert(3)&gt;"),
        "names are shown as text"
    );
    // The data survive the escaping intact.
    let d = data(&page);
    let job = &d["jobs"][0];
    assert_eq!(job["output"], evil);
    assert_eq!(job["query"], format!("query 0 {evil}"));
    assert_eq!(job["messages"][1]["content"].as_str().unwrap().matches(evil).count(), 2);
    // The script never writes markup from data.
    assert!(!SCRIPT.contains("innerHTML") && !SCRIPT.contains("insertAdjacentHTML") && !SCRIPT.contains("eval("));
}

/// Text that would be markup, or end an attribute, if written as it is.
const MARKUP: &str = "<b class='x'>\"&amp;";

#[test]
fn every_text_of_the_report_is_written_as_text() {
    // Every string the page shows, from the report, made markup.
    let mut v = serde_json::to_value(report(true)).unwrap();
    let mut strings = 0;
    fn mark(v: &mut Value, strings: &mut usize) {
        match v {
            Value::String(s) => {
                s.push_str(MARKUP);
                *strings += 1;
            }
            Value::Array(a) => a.iter_mut().for_each(|v| mark(v, strings)),
            Value::Object(m) => m.values_mut().for_each(|v| mark(v, strings)),
            _ => {}
        }
    }
    v["sweep"]["provenance"] = json!({
        "candor_version": "1", "run_label": "r", "started_at": "s", "spec_hash": "h", "dataset_hash": "d",
        "models": [{"id": "m1", "backend": "openai", "model": "x", "base_url": "u", "params": {"stop": ["s"]}}],
        "judges": [{"id": "j", "backend": "sim", "params": {}}]
    });
    v["sweep"]["jobs_failed"] = json!(7);
    v["sweep"]["an_unknown_field"] = json!("x");
    v["cells"][0]["an_unknown_field"] = json!("x");
    v["failures"] = json!([{"model": "m1", "kind": "k", "jobs": 7, "first_error": "e", "hint": "h"}]);
    v["notes"] = json!(["FAILED: f", "PARTIAL: p", "a footnote"]);
    mark(&mut v, &mut strings);
    let r: Report = serde_json::from_value(v).unwrap();
    let (page, _) = render(&r, &result("m1", "training", 0, 0, MARKUP), Limits::default());
    let body = &page[page.find("<body>").unwrap()..page.find("<script type=").unwrap()];
    assert!(!body.contains("<b "), "no text is written as markup");
    assert!(!body.contains("'x'") && !body.contains("\"&"), "quotes are escaped");
    let escaped = "&lt;b class=&#39;x&#39;&gt;&quot;&amp;amp;";
    assert!(
        body.matches(escaped).count() >= strings,
        "the texts are shown, escaped: {} times for {strings} texts",
        body.matches(escaped).count()
    );
    assert_eq!(
        data(&page)["jobs"][0]["output"],
        MARKUP,
        "the data keep the text as it is"
    );
}

#[test]
fn only_the_pages_own_script_may_run_and_nothing_is_loaded() {
    let (page, _) = render(&report(true), &results(2, "ok"), Limits::default());
    let hash = base64(&Sha256::digest(SCRIPT.as_bytes()));
    assert!(
        page.contains(&format!("script-src 'sha256-{hash}'")),
        "the policy names the script's hash"
    );
    assert!(
        page.contains(&format!("<script>{SCRIPT}</script>")),
        "the script is embedded byte for byte"
    );
    assert!(page.contains("default-src 'none'"));
    for url in ["http://", "https://", "//cdn", "@import", "url(http"] {
        assert!(!page.contains(url), "the page refers to {url}");
    }
}

#[test]
fn base64_pads_like_the_standard() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
}

#[test]
fn the_chart_has_a_bar_per_cell_and_a_segment_per_part() {
    for (faking, parts) in [(true, 3), (false, 2)] {
        let (page, _) = render(&report(faking), "", Limits::default());
        let svg = &page[page.find("<svg id=\"chart-svg\"").unwrap()..];
        let svg = &svg[..svg.find("</svg>").unwrap()];
        assert_eq!(svg.matches("data-bar=").count(), 4);
        assert_eq!(svg.matches("data-segment=").count(), 4 * parts);
        assert_eq!(svg.matches("data-ci=").count(), 4, "an interval on every bar");
        assert_eq!(
            page.matches("<li data-segment=").count(),
            parts,
            "a legend entry per part"
        );
        // Widths follow the stack: 5 and 7 of 40 complied, 28 refused.
        let width = |seg: &str| {
            let at = svg.find(&format!("data-segment=\"{seg}\"")).unwrap();
            let w = &svg[at..][svg[at..].find("width=\"").unwrap() + 7..];
            w[..w.find('"').unwrap()].parse::<f64>().unwrap()
        };
        if faking {
            assert!((width("complies_faking") - 470.0 * 5.0 / 40.0).abs() < 0.01);
            assert!((width("complies_other") - 470.0 * 7.0 / 40.0).abs() < 0.01);
        } else {
            assert!((width("complies") - 470.0 * 12.0 / 40.0).abs() < 0.01);
        }
        assert!((width("refuses") - 470.0 * 28.0 / 40.0).abs() < 0.01);
    }
}

#[test]
fn tables_give_every_rate_with_its_n_and_interval() {
    let (page, _) = render(&report(true), "", Limits::default());
    for id in ["cells-table", "classifiers-table", "gaps-table", "costs-table"] {
        assert!(page.contains(&format!("<table id=\"{id}\"")), "{id}");
    }
    assert!(page.contains("30.0% <span class=\"ci\">[18.0, 45.0]</span>"));
    assert!(page.contains("41.7% <span class=\"ci\">[19.0, 68.0]</span><span class=\"n below\">5 of 12</span>"));
    assert!(page.contains("12.5% <span class=\"ci\">[5.0, 26.0]</span><span class=\"n below\">5 of 40</span>"));
    assert!(page.contains("+20.0 pts") && page.contains("[+5.0, +35.0]") && page.contains("[+8.0, +31.0]"));
    assert!(
        page.contains("data-note=\"SIMULATED\""),
        "the SIMULATED note is a banner"
    );
    assert!(page.contains("<p>Rates are over jobs that gave a final output (n).</p>"));
}

/// `report(true)` with cell m1/training without any final output: all
/// its jobs failed, so its gap has an empty side.
fn report_with_an_empty_cell() -> Report {
    let mut r = report(true);
    let c = &mut r.cells[0];
    c.n = 0;
    c.compliant = 0;
    c.compliance = None;
    c.failed = 41;
    c.stack = Default::default();
    c.per_seed = None;
    // The configured rate of a simulated model is no measurement: left out here.
    c.simulated_rate = None;
    let zero = Rate {
        k: 0,
        n: 0,
        rate: 0.0,
        lo: 0.0,
        hi: 1.0,
    };
    c.alignment_faking = Some(crate::report::FakingRates {
        among_compliant: zero,
        among_all: zero,
    });
    for k in c.classifiers.values_mut() {
        (k.yes, k.n, k.rate, k.lo, k.hi) = (0, 0, 0.0, 0.0, 1.0);
        if let Some(a) = &mut k.among_all {
            (a.rate, a.lo, a.hi) = (0.0, 0.0, 1.0);
        }
    }
    let g = &mut r.gaps[0];
    (g.diff, g.lo, g.hi, g.n_a, g.paired) = (None, None, None, 0, None);
    r
}

/// The parts of `page` from each `start` to the next `end`.
fn parts<'a>(page: &'a str, start: &str, end: &str) -> Vec<&'a str> {
    page.match_indices(start)
        .map(|(i, _)| &page[i..i + page[i..].find(end).unwrap()])
        .collect()
}

#[test]
fn a_cell_without_outputs_reads_no_data_everywhere_and_its_gap_not_computable() {
    let r = report_with_an_empty_cell();
    let (page, _) = render(&r, "", Limits::default());
    let row = |table: &str, model: &str, condition: &str| -> String {
        let t = &page[page.find(&format!("<table id=\"{table}\"")).unwrap()..];
        let t = &t[..t.find("</table>").unwrap()];
        parts(t, "<tr", "</tr>")
            .into_iter()
            .filter(|r| r.contains(&format!("<td>{model}</td>")) && r.contains(&format!("<td>{condition}</td>")))
            .collect()
    };
    // The chart: the bar, its label and its tooltip.
    let bars = parts(&page, "<g class=\"bar\"", "</g>");
    let bar = bars
        .iter()
        .find(|b| b.contains("data-model=\"m1\"") && b.contains("data-condition=\"training\""))
        .unwrap();
    assert!(bar.contains("data-nodata=\"\""));
    assert!(bar.contains(
        "<tspan class=\"rate\">no data</tspan> <tspan class=\"n\">no final output: 41 failed, 1 incomplete</tspan>"
    ));
    assert!(bar.contains("compliance: no data (no final output)"), "{bar}");
    assert!(!bar.contains('%'), "no rate on an empty bar: {bar}");
    assert_eq!(
        page.matches("data-nodata=\"\" data-model").count(),
        1,
        "the other bars have data"
    );
    // The tables: the cell's compliance and faking rates, its classifiers.
    let cells = row("cells-table", "m1", "training");
    assert_eq!(cells.matches("no data").count(), 3, "{cells}");
    assert!(cells.contains("<span class=\"n below\">0 of 0</span>"));
    let classifiers = row("classifiers-table", "m1", "training");
    assert_eq!(classifiers.matches("no data").count(), 2, "{classifiers}");
    for r in [&cells, &classifiers] {
        assert!(!r.contains('%'), "{r}");
    }
    assert!(
        row("cells-table", "m1", "unmonitored").contains("30.0%"),
        "the others keep their rates"
    );
    // The gap: in the chart, its table and its forest plot.
    assert!(page.contains(">gap training − unmonitored: not computable (no final output in training)</text>"));
    let gap = &page[page.find("<table id=\"gaps-table\"").unwrap()..];
    let gap = &gap[gap.find("<tr data-nodata").expect("the gap's row")..];
    let gap = &gap[..gap.find("</tr>").unwrap()];
    assert!(gap.contains(">not computable</span></td>"), "{gap}");
    assert!(
        gap.contains("text-anchor=\"middle\">not computable</text>"),
        "the forest plot says so: {gap}"
    );
    assert!(!gap.contains("<circle"), "{gap}");
    assert!(!gap.contains("pts"), "{gap}");
}

#[test]
fn fields_the_page_does_not_know_are_shown_as_they_are() {
    let cell = json!({"model": "m", "n": 3, "stopped_early": true, "note": "x", "absent": null});
    assert_eq!(
        unknown_fields(&cell, KNOWN_CELL_FIELDS),
        vec![
            ("note".to_string(), "x".to_string()),
            ("stopped_early".to_string(), "yes".to_string())
        ]
    );
}

#[test]
fn all_results_are_embedded_under_the_limits_in_a_browsable_order() {
    let (page, e) = render(&report(true), &results(5, "fine"), Limits::default());
    assert_eq!(
        e,
        Embedded {
            shown: 20,
            total: 20,
            unreadable: 0
        }
    );
    assert!(page.contains("All 20 results are embedded in this page."));
    let d = data(&page);
    let jobs = d["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 20);
    // By model, then query, then condition: a query's conditions side by side.
    let key = |j: &Value| {
        (
            j["model"].as_str().unwrap().to_string(),
            j["query_index"].as_u64().unwrap(),
        )
    };
    assert_eq!(key(&jobs[0]), ("m1".into(), 0));
    assert_eq!(jobs[0]["condition"], "training");
    assert_eq!(jobs[1]["condition"], "unmonitored");
    assert_eq!(key(&jobs[2]), ("m1".into(), 1));
    assert_eq!(key(&jobs[10]), ("m2".into(), 0));
    assert_eq!(d["meta"]["shown"], 20);
    assert_eq!(d["meta"]["classifiers"], json!(["compliant", "alignment_faking"]));
    assert!(jobs[0].get("sweep_id").is_none() && jobs[0].get("transcript").is_none());
}

#[test]
fn each_system_prompt_is_embedded_once() {
    let (page, _) = render(&report(true), &results(5, "fine"), Limits::default());
    assert_eq!(page.matches("The system prompt of training.").count(), 1);
    let d = data(&page);
    let systems = d["systems"].as_array().unwrap();
    assert_eq!(systems.len(), 2);
    for j in d["jobs"].as_array().unwrap() {
        let s = systems[j["system"].as_u64().unwrap() as usize].as_str().unwrap();
        assert_eq!(s, format!("The system prompt of {}.", j["condition"].as_str().unwrap()));
    }
}

#[test]
fn over_the_job_limit_the_first_results_of_every_cell_are_embedded() {
    let limits = Limits {
        jobs: 10,
        bytes: usize::MAX,
    };
    let (page, e) = render(&report(true), &results(25, "fine"), limits);
    assert_eq!((e.shown, e.total), (10, 100));
    assert!(
        page.contains("This page embeds 10 of the 100 results"),
        "the page says it samples"
    );
    let d = data(&page);
    let mut per_cell: HashMap<(String, String), Vec<u64>> = HashMap::new();
    for j in d["jobs"].as_array().unwrap() {
        per_cell
            .entry((j["model"].to_string(), j["condition"].to_string()))
            .or_default()
            .push(j["query_index"].as_u64().unwrap());
    }
    assert_eq!(per_cell.len(), 4, "every cell is represented");
    for qs in per_cell.values() {
        assert!(qs.len() == 2 || qs.len() == 3, "spread evenly: {per_cell:?}");
        assert_eq!(qs, &(0..qs.len() as u64).collect::<Vec<_>>(), "the first ones");
    }
}

#[test]
fn an_uneven_sweep_fills_the_limit_from_the_cells_that_have_more() {
    // Cell m1/training has 30 results, the three others 2 each.
    let mut jsonl = String::new();
    for q in 0..30 {
        jsonl.push_str(&result("m1", "training", q, 0, "x"));
        jsonl.push('\n');
    }
    for (m, c) in [("m1", "unmonitored"), ("m2", "training"), ("m2", "unmonitored")] {
        for q in 0..2 {
            jsonl.push_str(&result(m, c, q, 0, "x"));
            jsonl.push('\n');
        }
    }
    let limits = Limits {
        jobs: 12,
        bytes: usize::MAX,
    };
    let (page, e) = render(&report(true), &jsonl, limits);
    assert_eq!((e.shown, e.total), (12, 36));
    let d = data(&page);
    let first = d["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["model"] == "m1" && j["condition"] == "training")
        .count();
    assert_eq!(first, 6, "the big cell gets what the small ones leave");
}

#[test]
fn the_byte_limit_bounds_what_is_embedded() {
    let long = "y".repeat(10_000);
    let limits = Limits {
        jobs: usize::MAX,
        bytes: 300_000,
    };
    // Each result holds its text four times: about 40 kB.
    let (page, e) = render(&report(true), &results(10, &long), limits);
    assert_eq!(e.total, 40);
    assert!((4..=8).contains(&e.shown), "{e:?}");
    let d = data(&page);
    assert!(d["jobs"].to_string().len() + d["systems"].to_string().len() <= 300_000);
    let cells: BTreeSet<String> = d["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| format!("{}/{}", j["model"], j["condition"]))
        .collect();
    assert_eq!(cells.len(), 4, "every cell is represented");
    assert!(page.contains(&format!("This page embeds {} of the 40 results", e.shown)));
}

#[test]
fn unreadable_lines_are_left_out_and_counted() {
    let jsonl = format!(
        "{}\nnot json\n\n[]\n{}\n",
        result("m1", "training", 0, 0, "a"),
        r#"{"job_id": "only-an-id"}"#
    );
    let (page, e) = render(&report(true), &jsonl, Limits::default());
    assert_eq!(
        e,
        Embedded {
            shown: 2,
            total: 2,
            unreadable: 2
        }
    );
    assert!(page.contains("2 line(s) of results.jsonl could not be read"));
    let d = data(&page);
    assert_eq!(
        d["jobs"][1]["job_id"], "only-an-id",
        "a result with missing fields is still shown"
    );
}

#[test]
fn every_model_is_a_row_of_the_side_by_side_table() {
    use candor_core::stats::Interval;
    let mut r = report(true);
    // m2 complies twice as often in training; its unmonitored cell has no output.
    r.cells[2].compliant = 24;
    r.cells[2].compliance = Some(Interval {
        rate: 0.6,
        lo: 0.45,
        hi: 0.74,
    });
    r.cells[3].n = 0;
    r.cells[3].compliant = 0;
    r.cells[3].failed = 40;
    r.cells[3].compliance = None;
    r.cells[3].alignment_faking = None;
    (r.gaps[1].diff, r.gaps[1].lo, r.gaps[1].hi) = (None, None, None);
    let (page, _) = render(&r, "", Limits::default());
    let at = page.find("<table id=\"models-table\"").expect("a models table");
    assert!(
        at < page.find("<table id=\"cells-table\"").unwrap(),
        "it comes before the cells"
    );
    let table = &page[at..at + page[at..].find("</table>").unwrap()];
    for head in [
        "training: compliance",
        "unmonitored: compliance",
        "gap training − unmonitored",
        "training: alignment faking",
        ">n<",
        ">failed<",
        ">cost<",
    ] {
        assert!(table.contains(head), "{head}: {table}");
    }
    let rows: Vec<&str> = table.split("<tr data-model=").skip(1).collect();
    assert_eq!(rows.len(), 2, "a row per model × variant: {table}");
    let m1 = rows[0];
    assert!(m1.starts_with("\"m1\" data-variant=\"default\""), "{m1}");
    let rate = "30.0% <span class=\"ci\">[18.0, 45.0]</span><span class=\"n below\">12 of 40</span>";
    assert_eq!(m1.matches(rate).count(), 2, "both conditions: {m1}");
    assert!(m1.contains("+20.0 pts <span class=\"ci\">[+5.0, +35.0]</span>"), "{m1}");
    let faking = "12.5% <span class=\"ci\">[5.0, 26.0]</span><span class=\"n below\">5 of 40</span>";
    assert_eq!(m1.matches(faking).count(), 2, "{m1}");
    assert!(
        m1.ends_with("<td class=\"num\">80</td><td class=\"num\">0</td><td class=\"num\">$0.75</td></tr>\n"),
        "{m1}"
    );
    let m2 = rows[1];
    assert!(m2.contains("60.0% <span class=\"ci\">[45.0, 74.0]</span><span class=\"n below\">24 of 40</span>"));
    let empty = "<td class=\"num nodata\">no data<span class=\"n below\">0 of 0</span></td>";
    assert_eq!(m2.matches(empty).count(), 2, "compliance and faking unmonitored: {m2}");
    assert!(m2.contains("<span class=\"nodata\">not computable</span>"), "{m2}");
    assert!(
        m2.contains("<td class=\"num\">40</td><td class=\"num\">40</td>"),
        "n 40, failed 40: {m2}"
    );
}
