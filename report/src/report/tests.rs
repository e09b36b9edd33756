use super::text::{md_code, share};
use super::*;
use candor_core::result::ErrorKind;
use candor_core::spec::{Bundle, Sweep};

/// A sweep of one model under test served at `base_url` (never called
/// here) over two conditions, with a simulated judge when `judge`.
fn sweep(judge: bool) -> Sweep {
    let mut spec = String::from(
        "name: views\n\
         models:\n  - id: local-llm\n    backend: openai\n    model: some-model\n    base_url: http://127.0.0.1:1/v1\n    params: {temperature: 0.5}\n\
         dataset:\n  path: data.csv\n  field: goal\n\
         prompts:\n  - name: default\n    system: \"s\"\n    user: \"{{ query }}\"\n\
         conditions:\n  - name: training\n  - name: unmonitored\n\
         compare: [training, unmonitored]\n",
    );
    if judge {
        spec.push_str(
            "judges:\n  - id: judge\n    backend: sim\n    model: sim-judge\n\
             classifiers:\n  - name: compliant\n    kind: prefix\n  - kind: judge\n    builtin: alignment_faking\n    judge: judge\n    only_if: compliant\n",
        );
    }
    let bundle = Bundle {
        spec_path: "spec.yaml".into(),
        spec,
        files: [("data.csv".to_string(), "goal\nq0\nq1\n".to_string())].into(),
        run: "nightly-1".into(),
    };
    Sweep::from_bundle(&bundle).unwrap()
}

/// Every job of the sweep failed to connect.
fn all_failed(s: &Sweep, error: &str) -> Report {
    let mut t = Tally::new(s);
    let per_cell = s.total_jobs() / t.cells.len() as u64;
    for c in &mut t.cells {
        c.failed = per_cell;
    }
    t.failures.add(0, Some(ErrorKind::Connect), error, s.total_jobs());
    Report::build(s, &t)
}

fn html(r: &Report) -> String {
    let mut out = Vec::new();
    crate::html::write_html(r, &b""[..], &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

const ERROR: &str = "POST http://127.0.0.1:1/v1/chat/completions: could not connect | <b>refused</b>";

#[test]
fn the_terminal_shows_what_failed_before_the_tables() {
    let s = sweep(false);
    let r = all_failed(&s, ERROR);
    let t = r.to_table();
    let first = t.lines().next().unwrap();
    assert_eq!(first, "FAILED: 4 of 4 jobs failed (100%).");
    let banner = &t[..t.find("model  ").expect("the cell table")];
    for part in [
        "local-llm · connect · 4 jobs",
        ERROR,
        "what to check: check that the server is running",
    ] {
        assert!(banner.contains(part), "{part:?} is not above the tables:\n{t}");
    }
    assert!(t.contains("no data") && t.contains("not computable"), "{t}");
    assert!(!t.contains("0.0%"), "{t}");
    assert_eq!(t.matches("FAILED").count(), 1, "the note is not repeated below:\n{t}");
}

#[test]
fn report_md_heads_with_the_failures_and_lists_every_reason() {
    let s = sweep(false);
    let mut t = Tally::new(&s);
    t.cells[0].failed = 2;
    t.cells[1].ok = 1;
    t.failures.add(0, Some(ErrorKind::Connect), ERROR, 1);
    t.failures.add(0, None, "line one\nline two", 1);
    let mut r = Report::build(&s, &t);
    r.mark_budget_exhausted();
    let md = r.to_markdown();
    // Notes are blockquotes, the failures first; a note of several lines stays one quote.
    let quotes: Vec<&str> = md.split("\n\n").filter(|p| p.starts_with("> ")).collect();
    assert!(quotes[0].starts_with("> FAILED: 2 of 3 jobs"), "{md}");
    assert!(quotes[0].lines().all(|l| l.starts_with("> ")), "{md}");
    assert!(quotes[1].starts_with("> BUDGET EXHAUSTED"), "{md}");
    let failures = &md[md.find("## Failures").expect("a Failures section")..md.find("## Cells").unwrap()];
    assert!(failures.contains("| model | reason | jobs | first error | what to check |"));
    assert!(
        failures.contains(
            "| local-llm | connect | 1 | `POST http://127.0.0.1:1/v1/chat/completions: could not connect \\| <b>refused</b>` \
             | check that the server is running and that base_url is right |"
        ),
        "a pipe in an error stays inside its cell, and the error shows as code:\n{failures}"
    );
    assert!(
        failures.contains("| local-llm | other | 1 | `line one line two` | — |"),
        "{failures}"
    );
    // The cell with no output reads no data; the gap is not computable.
    assert!(
        md.contains("| local-llm | default | training | 0 | 0 | no data |"),
        "{md}"
    );
    assert!(md.contains("| not computable | — | — |"), "{md}");
    let provenance = &md[md.find("## Provenance").expect("a Provenance section")..];
    assert!(provenance.contains(&format!("candor {} · run `nightly-1`", env!("CARGO_PKG_VERSION"))));
    assert!(provenance.contains(&format!("spec `{}` · dataset `{}`", s.spec_hash, s.dataset_hash)));
    assert!(
        provenance.contains(
            "- model `local-llm`: openai `some-model` at `http://127.0.0.1:1/v1` · params `{\"temperature\":0.5}`"
        ),
        "{provenance}"
    );
}

#[test]
fn the_page_opens_with_a_failure_banner_of_escaped_text() {
    let s = sweep(false);
    let r = all_failed(&s, ERROR);
    let page = html(&r);
    let body = &page[page.find("<body>").unwrap()..];
    let banner = body.find("id=\"failure-banner\"").expect("a failure banner");
    assert!(
        banner < body.find("<h1>").unwrap(),
        "the banner is the first thing on the page"
    );
    let banner = &body[banner..];
    let banner = &banner[..banner.find("</div>").unwrap()];
    assert!(banner.contains("role=\"alert\""));
    for part in [
        "4 of 4 jobs failed (100%)",
        "<code>local-llm</code>",
        "<span class=\"kind\">connect</span> · 4 jobs",
        "could not connect | &lt;b&gt;refused&lt;/b&gt;",
        "What to check: check that the server is running and that base_url is right",
    ] {
        assert!(banner.contains(part), "the banner lacks {part:?}: {banner}");
    }
    assert!(!page.contains("<b>"), "outside text is shown as text only");
    assert!(page.contains("<title>FAILED · views"), "the tab says so too");
    assert!(page.contains("<table id=\"failures-table\">"));
    assert_eq!(
        page.matches("data-note=\"FAILED\"").count(),
        1,
        "one banner, not the note again"
    );
    assert!(!page.contains("data-note=\"SIMULATED"), "nothing here is simulated");
    // Provenance, and no raw JSON of the fields the page knows.
    assert!(page.contains("at <code>http://127.0.0.1:1/v1</code> · params <code>{&quot;temperature&quot;:0.5}</code>"));
    assert!(!page.contains("<dt>provenance</dt>") && !page.contains("<dt>failed_share</dt>"));
}

#[test]
fn a_simulated_judge_alone_gets_a_quiet_note_not_the_simulated_banner() {
    let s = sweep(true);
    let mut t = Tally::new(&s);
    for c in &mut t.cells {
        c.ok = 2;
    }
    let r = Report::build(&s, &t);
    assert!(!r.sweep.simulated && r.sweep.simulated_judges);
    assert!(
        r.notes.iter().any(|n| n.starts_with("SIMULATED JUDGE:")),
        "{:?}",
        r.notes
    );
    assert!(!r.notes.iter().any(|n| n.starts_with("SIMULATED:")), "{:?}", r.notes);
    let page = html(&r);
    assert!(page.contains("<div class=\"notice simulated-judge\" data-note=\"SIMULATED JUDGE\" role=\"note\">"));
    assert!(!page.contains("data-note=\"SIMULATED\""), "no SIMULATED banner");
    assert!(!page.contains("id=\"failure-banner\""), "nothing failed");
    assert!(page.contains("<dt>judge</dt><dd data-model=\"judge\"><code>judge</code>: sim <code>sim-judge</code>"));
    // A SIMULATED note of a report whose models under test are real is no banner either.
    let mut r = r;
    r.notes.insert(0, "SIMULATED: numbers from the simulated model.".into());
    let page = html(&r);
    assert!(!page.contains("data-note=\"SIMULATED\""));
    assert!(
        page.contains("<p>SIMULATED: numbers from the simulated model.</p>"),
        "it is a plain note"
    );
}

#[test]
fn shares_are_as_short_as_is_exact_enough() {
    assert_eq!(share(24, 24), "100%");
    assert_eq!(share(1, 8), "12.5%");
    assert_eq!(share(1, 3), "33.3%");
    assert_eq!(share(1, 100_000), "<0.1%");
    assert_eq!(share(99_999, 100_000), ">99.9%");
    assert_eq!(share(0, 0), "0%");
}

#[test]
fn code_spans_hold_any_backticks() {
    assert_eq!(md_code("a"), "`a`");
    assert_eq!(md_code("a `b` c"), "``a `b` c``");
    assert_eq!(md_code("`x"), "`` `x ``");
}
