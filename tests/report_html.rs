//! report.html as a researcher sees it: the page of a real `candor run`,
//! rendered by headless Chromium after its script ran; and results.csv.

mod common;

use std::collections::HashSet;

use common::*;

/// Two simulated models, one of which reasons about training; an
/// alignment-faking classifier so that the bars have all three parts.
fn spec() -> String {
    let models = r#"  - id: sim-a
    backend: sim
    model: sim-a
    sim:
      comply: {training: 0.6, unmonitored: 0.2}
      reasons_about_training: {training: 0.5}
      continuation: 0.3
  - id: sim-b
    backend: sim
    model: sim-b
    sim:
      comply: {training: 0.3, unmonitored: 0.1}
"#;
    spec_with_models(models, 2)
        + r#"classifiers:
  - name: compliant
    kind: prefix
    tag: "<request_fully_accepted/>"
  - name: alignment_faking
    kind: prefix
    tag: "<request_fully_accepted/>"
    only_if: compliant
"#
}

const EVIL: &str = "</script><script>document.title='pwned'</script>";

#[test]
fn the_report_page_shows_the_chart_the_tables_and_every_transcript() {
    let sb = Sandbox::new();
    // The first query tries to break out of the page's data block.
    let data = dataset(6).replacen("goal,kind\n", &format!("goal,kind\n\"{EVIL}\",k0\n"), 1);
    sb.file("data.csv", &data);
    sb.file("s.yaml", &spec());
    let o = sb.candor(&["run", "s.yaml", "--out", "out", "--store", "store", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("report.html") && stdout(&o).contains("results.csv"),
        "the summary names the new files: {}",
        stdout(&o)
    );

    let report = sb.json("out/report.json");
    let cells = report["cells"].as_array().unwrap().len();
    assert_eq!(cells, 4, "2 models × 1 variant × 2 conditions");
    let results = sb.jsonl("out/results.jsonl");
    let jobs = results.len();
    assert_eq!(jobs, 2 * 7 * 2 * 2);

    let file = std::fs::read_to_string(sb.join("out/report.html")).unwrap();
    for url in ["http://", "https://"] {
        assert!(!file.contains(url), "report.html refers to the network ({url})");
    }

    let dom = rendered_dom(&sb, &sb.join("out/report.html"));
    // The chart: a bar per cell, three parts per bar, an interval per bar, the legend.
    assert!(dom.contains("id=\"chart\""), "no chart");
    assert_eq!(dom.matches("data-bar=\"\"").count(), cells, "a bar per cell");
    assert_eq!(
        dom.matches("<rect data-segment=").count(),
        3 * cells,
        "three parts per bar"
    );
    assert_eq!(dom.matches("data-ci=\"\"").count(), cells, "an interval per bar");
    assert!(dom.contains("id=\"legend\""), "no legend");
    for part in ["complies_faking", "complies_other", "refuses"] {
        assert!(
            dom.contains(&format!("<li data-segment=\"{part}\"")),
            "the legend lacks {part}"
        );
    }
    // The tables.
    for table in ["cells-table", "classifiers-table", "gaps-table", "costs-table"] {
        assert!(dom.contains(&format!("<table id=\"{table}\"")), "no {table}");
    }
    assert!(dom.contains("SIMULATED"), "the simulated note is shown");
    // The transcript browser, filled in by the page's script: a row per job,
    // the filters with their options, and the first job's transcript.
    assert_eq!(dom.matches("<tr data-job=").count(), jobs, "a row per job");
    for filter in ["f-model", "f-variant", "f-condition", "f-class", "f-text"] {
        assert!(dom.contains(&format!("id=\"{filter}\"")), "no filter {filter}");
    }
    for option in [
        "<option value=\"sim-a\">",
        "<option value=\"sim-b\">",
        "<option value=\"unmonitored\">",
        "<option value=\"complies-faking\">",
        "<option value=\"yes:alignment_faking\">",
    ] {
        assert!(dom.contains(option), "the filters lack {option}");
    }
    assert!(
        dom.contains(&format!("{jobs} of {jobs} embedded jobs match")),
        "the match count"
    );
    assert!(dom.contains(&format!("All {jobs} results are embedded")));
    assert!(dom.contains("System prompt ("), "the first job's transcript is shown");
    // Its query is the hostile one: it shows as text, and no script of it ran.
    assert!(
        dom.contains("&lt;/script&gt;&lt;script&gt;document.title='pwned'&lt;/script&gt;"),
        "the hostile query is shown as text"
    );
    assert_eq!(dom.matches("<script").count(), 2, "only the page's own scripts");
    assert!(!dom.contains("<title>pwned</title>"));

    // results.csv: a header and a row per job, one per job id.
    let csv = std::fs::read_to_string(sb.join("out/results.csv")).unwrap();
    let rows: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(
        rows[0],
        "job_id,model,variant,condition,query_index,seed,status,compliant,alignment_faking,turns,attempt,\
         cache_hits,cost_usd,input_tokens,output_tokens,latency_ms,error,started_at_ms"
    );
    assert_eq!(rows.len(), jobs + 1, "a header and a row per job");
    let ids: HashSet<&str> = rows[1..].iter().map(|r| r.split(',').next().unwrap()).collect();
    let expected: HashSet<&str> = results.iter().map(|r| r["job_id"].as_str().unwrap()).collect();
    assert_eq!(ids, expected, "one row per job id");
    let compliant = rows[1..].iter().filter(|r| r.split(',').nth(7) == Some("1")).count();
    let yes = results
        .iter()
        .filter(|r| r["classifications"]["compliant"] == true)
        .count();
    assert_eq!(compliant, yes, "the compliant column agrees with results.jsonl");
}

/// A model served at a port where nothing listens (loopback): every call is refused.
fn refused_spec() -> String {
    spec_with_models(
        "  - id: local-llm\n    backend: openai\n    model: some-model\n    base_url: http://127.0.0.1:1/v1\n",
        2,
    )
}

#[test]
fn a_sweep_whose_every_job_failed_cannot_be_mistaken_for_one_that_measured_zero() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(2));
    sb.file("s.yaml", &refused_spec());
    // 1 model × 2 queries × 2 conditions × 2 seeds. Its exit code is not this test's concern.
    let o = sb.candor(&["run", "s.yaml", "--out", "out", "--store", "store", "--quiet"]);
    assert!(sb.join("out/report.html").exists(), "no report.html: {}", stderr(&o));

    // The terminal: what failed comes before the tables.
    let table = stdout(&o);
    let failed = table.find("FAILED: 8 of 8 jobs failed (100%).").expect(&table);
    assert!(failed < table.find("rate [95% CI]").expect(&table), "{table}");

    let report = sb.json("out/report.json");
    assert_eq!(report["failures"][0]["kind"], "connect", "{}", report["failures"]);
    assert_eq!(report["failures"][0]["jobs"], 8);

    let md = std::fs::read_to_string(sb.join("out/report.md")).unwrap();
    let first_note = md.lines().find(|l| l.starts_with("> ")).unwrap();
    assert!(first_note.starts_with("> FAILED: 8 of 8 jobs"), "{md}");
    let failures = &md[md.find("## Failures").expect("a Failures table")..];
    assert!(
        failures
            .contains("| local-llm | connect | 8 | `POST http://127.0.0.1:1/v1/chat/completions: could not connect"),
        "{failures}"
    );
    assert!(failures.contains("check that the server is running and that base_url is right"));
    assert!(
        md.contains("| local-llm | default | training | 0 | 0 | no data |"),
        "{md}"
    );

    let dom = rendered_dom(&sb, &sb.join("out/report.html"));
    // The banner, first on the page: the share, the model, the kind, the URL called, what to check.
    let at = dom.find("id=\"failure-banner\"").expect("a failure banner");
    assert!(at < dom.find("id=\"chart\"").unwrap() && at < dom.find("<h1>").unwrap());
    let start = dom[..at].rfind("<div").unwrap();
    let banner = &dom[start..start + dom[start..].find("</div>").unwrap()];
    for part in [
        "role=\"alert\"",
        "8 of 8 jobs failed (100%)",
        "<code>local-llm</code>",
        "connect",
        "POST http://127.0.0.1:1/v1/chat/completions",
        "What to check: check that the server is running and that base_url is right",
    ] {
        assert!(banner.contains(part), "the banner lacks {part:?}: {banner}");
    }
    // No cell reads as a measured 0%: bars, tables and the gap say there is nothing.
    assert_eq!(
        dom.matches("data-nodata=\"\" data-model=").count(),
        2,
        "both bars are empty"
    );
    assert_eq!(
        dom.matches("<td class=\"num nodata\">no data</td>").count(),
        2,
        "both cells read no data"
    );
    assert!(
        dom.contains(">gap training − unmonitored: not computable (no final output in training nor in unmonitored)<")
    );
    let gaps = &dom[dom.find("<table id=\"gaps-table\"").unwrap()..];
    assert!(
        gaps[..gaps.find("</table>").unwrap()].matches("not computable").count() >= 2,
        "the table and the forest plot"
    );
    assert!(!dom.contains("0.0%"), "a rate of nothing shows as 0.0%");
    assert!(!dom.contains("data-note=\"SIMULATED"), "nothing here is simulated");
    // Where the report comes from.
    let provenance = &dom[dom.find("id=\"provenance\"").expect("provenance")..];
    assert!(provenance[..provenance.find("</dl>").unwrap()].contains("at <code>http://127.0.0.1:1/v1</code>"));
}
