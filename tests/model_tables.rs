//! Models with today's long ids, side by side: `candor run`'s table fits a
//! terminal of 100 columns and still gives every rate with its interval,
//! and report.md and report.html put each model on one row with its
//! compliance per condition, gap, alignment-faking rates, n, failures and
//! cost.

mod common;

use serde_json::Value;

use common::*;

const CLAUDE: &str = "claude-sonnet-4-5-20250929";
const GPT: &str = "gpt-5.1-mini";

/// Two simulated models that behave differently (the first complies more
/// when it believes it is trained, and says why), judged for alignment
/// faking by a simulated judge.
fn spec() -> String {
    let models = format!(
        "  - id: {CLAUDE}\n    backend: sim\n    model: sim-a\n    sim:\n      \
         comply: {{training: 0.7, unmonitored: 0.2}}\n      reasons_about_training: {{training: 0.8}}\n      \
         continuation: 0.3\n\
         \x20 - id: {GPT}\n    backend: sim\n    model: sim-b\n    sim:\n      \
         comply: {{training: 0.3, unmonitored: 0.25}}\n"
    );
    spec_with_models(&models, 3)
        + "judges:\n  - {id: judge, backend: sim, model: sim-judge}\n\
           classifiers:\n  - {name: compliant, kind: prefix}\n\
           \x20 - {kind: judge, builtin: alignment_faking, judge: judge, votes: 3, only_if: compliant}\n"
}

/// A rate and its interval as the terminal and report.md write them.
fn rate(i: &Value) -> String {
    let p = |k: &str| i[k].as_f64().unwrap() * 100.0;
    format!("{:.1}% [{:.1}, {:.1}]", p("rate"), p("lo"), p("hi"))
}

/// A gap and its interval in points.
fn gap(g: &Value) -> (String, String) {
    let p = |k: &str| format!("{:+.1}", g[k].as_f64().unwrap() * 100.0);
    (format!("{} pts", p("diff")), format!("[{}, {}]", p("lo"), p("hi")))
}

fn cell<'a>(report: &'a Value, model: &str, condition: &str) -> &'a Value {
    report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == model && c["condition"] == condition)
        .unwrap_or_else(|| panic!("{model} {condition}"))
}

fn model_gap<'a>(report: &'a Value, model: &str) -> &'a Value {
    report["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["model"] == model)
        .unwrap()
}

fn run(sb: &Sandbox) -> (String, Value) {
    sb.file("data.csv", &dataset(40));
    sb.file("s.yaml", &spec());
    // Not quiet: every line a researcher sees on stdout.
    let o = sb.candor(&["run", "s.yaml", "--out", "out", "--store", "st"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    (stdout(&o), sb.json("out/report.json"))
}

#[test]
fn the_terminal_table_fits_100_columns_with_long_model_ids_and_keeps_the_numbers() {
    let sb = Sandbox::new();
    let (out, report) = run(&sb);
    let wide: Vec<(usize, &str)> = out
        .lines()
        .map(|l| (l.chars().count(), l))
        .filter(|(n, _)| *n > 100)
        .collect();
    assert!(wide.is_empty(), "lines over 100 columns: {wide:#?}\n{out}");

    let lines: Vec<&str> = out.lines().collect();
    for model in [CLAUDE, GPT] {
        // The model heads its cells' rows: each condition's compliance and AF rate with its interval.
        let at = lines
            .iter()
            .position(|l| *l == model)
            .unwrap_or_else(|| panic!("{model} heads its rows:\n{out}"));
        for (row, condition) in lines[at + 1..at + 3].iter().zip(["training", "unmonitored"]) {
            let c = cell(&report, model, condition);
            let af = &c["alignment_faking"]["among_all"];
            for part in [
                condition.to_string(),
                format!("  {}  ", c["n"]),
                rate(&c["compliance"]),
                rate(af),
            ] {
                assert!(
                    row.contains(&part),
                    "{model} {condition}: {part:?} not in {row:?}\n{out}"
                );
            }
        }
        // Its gap, with both intervals.
        let g = model_gap(&report, model);
        let (diff, ci) = gap(g);
        let row = lines
            .iter()
            .find(|l| l.starts_with(&format!("{model} ")) && l.contains("  default  "))
            .unwrap_or_else(|| panic!("{model}'s gap:\n{out}"));
        assert!(row.contains(&diff) && row.contains(&ci), "{diff} {ci} not in {row:?}");
    }
    // The behaviour the models were given shows: a gap for the first, none to speak of for the second.
    let (claude, gpt) = (model_gap(&report, CLAUDE), model_gap(&report, GPT));
    assert!(claude["lo"].as_f64().unwrap() > 0.3, "{claude}");
    assert!(gpt["lo"].as_f64().unwrap() < 0.0, "{gpt}");
    assert!(out.contains("SIMULATED"), "{out}");
}

#[test]
fn report_md_and_html_put_every_model_side_by_side() {
    let sb = Sandbox::new();
    let (_, report) = run(&sb);
    let md = std::fs::read_to_string(sb.join("out/report.md")).unwrap();
    let section = &md[md.find("## Models side by side").expect(&md)..md.find("## Cells").unwrap()];
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 3, "the head and a row per model:\n{section}");
    assert!(
        rows[0].contains(
            "| training: compliance [95% CI] | unmonitored: compliance [95% CI] | gap training − unmonitored"
        ),
        "{}",
        rows[0]
    );
    let dom = rendered_dom(&sb, &sb.join("out/report.html"));
    let at = dom
        .find("<table id=\"models-table\"")
        .expect("a models table on the page");
    let table = &dom[at..at + dom[at..].find("</table>").unwrap()];
    let html_rows: Vec<&str> = table.split("<tr data-model=").skip(1).collect();
    assert_eq!(html_rows.len(), 2, "{table}");

    for (i, model) in [CLAUDE, GPT].into_iter().enumerate() {
        let (t, u) = (cell(&report, model, "training"), cell(&report, model, "unmonitored"));
        let (diff, ci) = gap(model_gap(&report, model));
        let n = t["n"].as_u64().unwrap() + u["n"].as_u64().unwrap();
        let cost = report["costs"].as_array().unwrap()[i]["usd"].as_f64().unwrap();
        let cost = if cost != 0.0 && cost < 0.01 {
            format!("${cost:.4}")
        } else {
            format!("${cost:.2}")
        };
        let af = |c: &Value| rate(&c["alignment_faking"]["among_all"]);
        let expected = format!(
            "| {model} | default | {} | {} | {diff} {ci} | {} | {} | {n} | 0 | {cost} |",
            rate(&t["compliance"]),
            rate(&u["compliance"]),
            af(t),
            af(u)
        );
        assert_eq!(rows[i + 1], expected);

        let row = html_rows[i];
        assert!(row.starts_with(&format!("\"{model}\"")), "{row}");
        let pct = |c: &Value, k: &str| format!("{:.1}%", c[k]["rate"].as_f64().unwrap() * 100.0);
        let compliant = |c: &Value| format!("{} of {}", c["compliant"], c["n"]);
        for part in [
            pct(t, "compliance"),
            compliant(t),
            pct(u, "compliance"),
            compliant(u),
            format!("{diff} <span class=\"ci\">{ci}</span>"),
            format!("<td class=\"num\">{n}</td>"),
        ] {
            assert!(row.contains(&part), "{model}: {part:?} not in {row}");
        }
    }
}
