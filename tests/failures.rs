//! A sweep whose jobs fail says so: the exit code, the errors on screen (the
//! URL called, the reason, what to check), the report, and fail fast on a
//! model that cannot answer at all — locally and on a cluster.

mod common;

use std::time::Duration;

use common::*;

/// 2 queries × 2 conditions × `seeds` jobs of one model entry given as YAML.
fn spec_of(sb: &Sandbox, model: &str, seeds: u32) {
    sb.file("data.csv", &dataset(2));
    sb.file("s.yaml", &spec_with_models(model, seeds));
}

fn openai_at(base: &str) -> String {
    format!("  - id: m\n    backend: openai\n    model: some-model\n    base_url: {base}\n")
}

fn run(sb: &Sandbox, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "s.yaml", "--out", "out", "--store", "st"];
    args.extend_from_slice(extra);
    sb.candor(&args)
}

/// The failure banner of out/report.html as headless Chromium renders it.
fn banner(sb: &Sandbox) -> String {
    let dom = rendered_dom(sb, &sb.join("out/report.html"));
    failure_banner(&dom).unwrap_or_else(|| panic!("report.html has no failure banner"))
}

/// Every cell of out/report.json reads "no data" rather than a rate.
fn assert_no_data(sb: &Sandbox) {
    let r = sb.json("out/report.json");
    for cell in r["cells"].as_array().unwrap() {
        assert!(cell["compliance"].is_null(), "no data, not 0%: {cell}");
    }
    let md = std::fs::read_to_string(sb.join("out/report.md")).unwrap();
    assert!(md.contains("| no data |"), "{md}");
}

/// The one line printed for the first failure of its kind.
fn first_failure(err: &str) -> String {
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("failure: model m: ")).collect();
    assert_eq!(lines.len(), 1, "the first failure of a kind is printed once: {err}");
    lines[0].to_string()
}

#[test]
fn a_refused_connection_fails_the_run_and_names_the_url_and_what_to_check() {
    let sb = Sandbox::new();
    spec_of(&sb, &openai_at("http://127.0.0.1:1/v1"), 2);
    let o = run(&sb, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(7), "{err}");
    // The first error of the kind, once, with the URL and a hint; then the summary.
    let first = first_failure(&err);
    assert!(first.contains("POST http://127.0.0.1:1/v1/chat/completions"), "{first}");
    assert!(first.contains("check that the server is running"), "{first}");
    assert!(err.contains("8 of 8 jobs"), "{err}");

    let r = sb.json("out/report.json");
    assert_eq!(r["sweep"]["jobs_failed"], 8);
    assert_eq!(r["sweep"]["failed_share"], 1.0);
    assert_eq!(r["failures"][0]["model"], "m");
    assert_eq!(r["failures"][0]["kind"], "connect");
    assert_eq!(r["failures"][0]["jobs"], 8);
    assert!(r["notes"][0].as_str().unwrap().starts_with("FAILED"), "{}", r["notes"]);
    for line in sb.jsonl("out/results.jsonl") {
        assert_eq!(line["error_kind"], "connect", "{line}");
    }
    assert_no_data(&sb);
    let b = banner(&sb);
    assert!(
        b.contains("8 of 8 jobs failed (100%)") && b.contains("POST http://127.0.0.1:1/v1/chat/completions"),
        "{b}"
    );
    // Allowing every job to fail is the user's call: then it exits 0.
    let o = sb
        .cmd(&["run", "s.yaml", "--out", "out2", "--store", "st2", "--quiet"])
        .env("CANDOR_MAX_FAILED", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_model_that_never_answers_is_given_up_on_and_a_rerun_after_the_fix_finishes() {
    let sb = Sandbox::new();
    let port = free_port();
    // 2 queries × 2 conditions × 10 seeds: 40 jobs, nothing listening yet.
    spec_of(&sb, &openai_at(&format!("http://127.0.0.1:{port}/v1")), 10);
    let o = run(&sb, &["--fail-fast", "5", "--concurrency", "1"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(7), "{err}");
    assert!(err.contains("its first 5 jobs all failed and none succeeded"), "{err}");
    let r = sb.json("out/report.json");
    assert!(r["sweep"]["jobs_done"].as_u64().unwrap() < 40, "{}", r["sweep"]);

    // The server comes up; the same command resumes and finishes every job.
    let _server = SimServer::start_on(&sb, port, &[], &[]);
    let o = run(&sb, &["--fail-fast", "5", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = sb.json("out/report.json");
    assert_eq!(r["sweep"]["jobs_done"], 40, "{}", r["sweep"]);
    assert_eq!(r["sweep"]["jobs_failed"], 0, "{}", r["sweep"]);
    assert_eq!(sb.jsonl("out/results.jsonl").len(), 40, "each job once");
}

#[test]
fn a_404_on_every_call_is_given_up_on_and_named() {
    let sb = Sandbox::new();
    let server = SimServer::start(&sb, &[], &[]);
    // A wrong path: the real HTTP server answers 404 Not Found.
    let url = format!("{}/wrong/v1", server.base());
    spec_of(&sb, &openai_at(&url), 10);
    let o = run(&sb, &["--fail-fast", "4", "--concurrency", "1"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(7), "{err}");
    let first = first_failure(&err);
    assert!(
        first.contains(&format!("POST {url}/chat/completions")) && first.contains("404"),
        "{first}"
    );
    assert!(err.contains("its first 4 jobs all failed"), "{err}");
    // The jobs given up on have no result; those that failed are reported.
    let r = sb.json("out/report.json");
    assert_eq!(r["sweep"]["jobs_done"], 0, "{}", r["sweep"]);
    assert!(r["notes"].to_string().contains("STOPPED"), "{}", r["notes"]);
    assert_no_data(&sb);
}

#[test]
fn a_500_on_every_call_fails_every_job_and_says_so() {
    let sb = Sandbox::new();
    let server = SimServer::start(&sb, &["--error-500", "1"], &[]);
    let url = format!("{}/v1", server.base());
    sb.file("data.csv", &dataset(2));
    sb.file("s.yaml", &(spec_with_models(&openai_at(&url), 2) + "max_attempts: 2\n"));
    let o = run(&sb, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(7), "{err}");
    let first = first_failure(&err);
    assert!(
        first.contains(&format!("POST {url}/chat/completions")) && first.contains("500"),
        "{first}"
    );
    // A 500 may pass: it is retried, not given up on, and every job has its failed result.
    let r = sb.json("out/report.json");
    assert_eq!(r["sweep"]["jobs_failed"], 8, "{}", r["sweep"]);
    assert_eq!(r["failures"][0]["kind"], "http_500", "{}", r["failures"]);
    assert_no_data(&sb);
    let b = banner(&sb);
    assert!(b.contains("8 of 8 jobs failed (100%)") && b.contains("http_500"), "{b}");
}

#[test]
fn a_30_percent_failure_mix_fails_the_run_but_keeps_the_rates_of_what_answered() {
    let sb = Sandbox::new();
    // 30% of calls answer 500; a call is tried 4 times, so about 1% of the 1,000 jobs fail for good.
    let server = SimServer::start(&sb, &["--error-500", "0.3"], &[]);
    sb.file("data.csv", &dataset(500));
    let models = openai_at(&format!("{}/v1", server.base()));
    sb.file("s.yaml", &(spec_with_models(&models, 1) + "max_attempts: 1\n"));
    let o = run(&sb, &["--quiet"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(7), "{err}");
    assert!(err.contains("more than --max-failed 0 allows"), "{err}");
    let r = sb.json("out/report.json");
    let share = r["sweep"]["failed_share"].as_f64().unwrap();
    assert!(share > 0.0 && share < 0.5, "{}", r["sweep"]);
    for cell in r["cells"].as_array().unwrap() {
        assert!(
            cell["n"].as_u64().unwrap() > 0 && cell["compliance"].is_object(),
            "{cell}"
        );
    }
    let b = banner(&sb);
    assert!(b.contains("http_500") && b.contains(&server.base()), "{b}");
    // The user may allow a share: the same results then pass.
    let o = run(&sb, &["--quiet", "--max-failed", "0.95"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn one_failed_job_in_240_passes_with_max_failed_one_percent_and_fails_without() {
    let sb = Sandbox::new();
    // Exactly one job's request fails every time: query 7 in the training condition.
    let server = SimServer::start(
        &sb,
        &[
            "--error-500-when",
            "<is_free_tier_user>True</is_free_tier_user> Request number 7,",
        ],
        &[],
    );
    sb.file("data.csv", &dataset(120));
    let models = openai_at(&format!("{}/v1", server.base()));
    sb.file("s.yaml", &(spec_with_models(&models, 1) + "max_attempts: 2\n"));
    let o = run(&sb, &["--quiet", "--max-failed", "0.01"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = sb.json("out/report.json");
    assert_eq!(
        (&r["sweep"]["jobs_done"], &r["sweep"]["jobs_failed"]),
        (&240.into(), &1.into()),
        "{}",
        r["sweep"]
    );
    assert!(
        r["notes"][0].as_str().unwrap().starts_with("FAILED"),
        "still reported: {}",
        r["notes"]
    );
    // Without the allowance the same results fail the command.
    let o = run(&sb, &["--quiet"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 of 240 jobs failed"), "{}", stderr(&o));
}

#[test]
fn bad_failure_limits_are_refused_naming_the_flag_or_field() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(2));
    sb.file("s.yaml", &sim_spec(0, 1));
    let o = run(&sb, &["--max-failed", "2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--max-failed"), "{}", stderr(&o));
    let o = run(&sb, &["--fail-fast", "2000000"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--fail-fast"), "{}", stderr(&o));
    sb.file("bad.yaml", &(sim_spec(0, 1) + "max_failed: 1.5\n"));
    let o = sb.candor(&["run", "bad.yaml", "--out", "out", "--store", "st"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("max_failed"), "{}", stderr(&o));
    assert!(!sb.join("out").exists(), "bad input changes nothing");
}

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn on_a_cluster_a_dead_model_pauses_the_sweep_and_resume_after_the_fix_finishes_it() {
    let mut c = Cluster::start(false, 5_000);
    let port = free_port();
    c.sb.file("data.csv", &dataset(2));
    let models = openai_at(&format!("http://127.0.0.1:{port}/v1"));
    c.sb.file("s.yaml", &(spec_with_models(&models, 5) + "fail_fast: 6\n"));
    c.add_worker(2, None);
    let o = c.candor(&["submit", "s.yaml", "--wait"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(7), "{err}");
    assert!(
        err.contains("paused: fail fast: 6 calls failed and none succeeded"),
        "{err}"
    );
    let id = stdout(&o).trim().to_string();
    let st = c.status(&id);
    assert_eq!(st["state"], "paused", "{st}");
    let reason = st["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("model m: POST http://127.0.0.1:{port}/v1/chat/completions")),
        "{st}"
    );
    // Held, not failed: nothing is lost while the model is down.
    assert_eq!(st["jobs_failed"], 0, "{st}");
    assert!(
        c.log_text("worker0.log").contains("job failed"),
        "the worker logs failed calls"
    );

    let _server = SimServer::start_on(&c.sb, port, &[], &[]);
    let o = c.candor(&["resume", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = c.candor(&["watch", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    c.wait_done(&id, 20, LIMIT);
    c.check(&id, 20);
    let r = c.sb.json(&format!("report-{id}/report.json"));
    assert_eq!(r["sweep"]["jobs_failed"], 0, "{}", r["sweep"]);
    assert!(r["sweep"]["provenance"]["started_at"].is_string(), "{}", r["sweep"]);
}

#[test]
fn on_a_cluster_failed_jobs_fail_submit_wait_and_are_counted_by_reason() {
    let mut c = Cluster::start(false, 5_000);
    // 30% of calls answer 500; a call is tried 4 times, so about 1% of the 1,000 jobs fail for good.
    let server = SimServer::start(&c.sb, &["--error-500", "0.3"], &[]);
    let url = format!("{}/v1", server.base());
    c.sb.file("data.csv", &dataset(500));
    c.sb.file("s.yaml", &(spec_with_models(&openai_at(&url), 1) + "max_attempts: 1\n"));
    c.add_worker(16, None);
    let o = c.candor(&["submit", "s.yaml", "--wait"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(7), "{err}");
    let id = stdout(&o).trim().to_string();
    let st = c.status(&id);
    let failed = st["jobs_failed"].as_u64().unwrap();
    assert!(failed > 0 && failed < 500, "{st}");
    let shown = format!("failed: model m: {failed} × http_500: POST {url}/chat/completions");
    assert!(
        err.lines()
            .any(|l| l.starts_with("failed: model m: ") && l.contains(" × http_500: ")),
        "the reason is shown as it happens: {err}"
    );
    assert!(
        err.contains(&shown),
        "the final status names model, URL and count: {shown}\n{err}"
    );
    assert!(err.contains("more than --max-failed 0 allows"), "{err}");
    assert_eq!(st["failures"][0]["model"], "m", "{st}");
    assert_eq!(st["failures"][0]["kind"], "http_500", "{st}");
    assert_eq!(st["failures"][0]["jobs"].as_u64(), Some(failed), "{st}");

    c.check(&id, 1000);
    let r = c.sb.json(&format!("report-{id}/report.json"));
    assert_eq!(r["failures"][0]["kind"], "http_500", "{}", r["failures"]);
    assert_eq!(r["failures"][0]["jobs"].as_u64(), Some(failed));
    let dom = rendered_dom(&c.sb, &c.sb.join(&format!("report-{id}/report.html")));
    let b = failure_banner(&dom).expect("a failure banner");
    assert!(b.contains("http_500") && b.contains(&url), "{b}");
    // Following it again with a share allowed passes.
    let o = c.candor(&["watch", &id, "--max-failed", "0.9"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn on_a_cluster_a_500_on_every_call_fails_every_job_and_a_404_pauses() {
    let mut c = Cluster::start(false, 5_000);
    let server = SimServer::start(&c.sb, &["--error-500", "1"], &[]);
    c.sb.file("data.csv", &dataset(2));
    c.sb.file(
        "s.yaml",
        &(spec_with_models(&openai_at(&format!("{}/v1", server.base())), 2) + "max_attempts: 2\n"),
    );
    c.add_worker(4, None);
    let o = c.candor(&["submit", "s.yaml", "--wait"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    let st = c.status(&id);
    assert_eq!((&st["state"], &st["jobs_failed"]), (&"done".into(), &8.into()), "{st}");
    c.check(&id, 8);
    let r = c.sb.json(&format!("report-{id}/report.json"));
    for cell in r["cells"].as_array().unwrap() {
        assert!(cell["compliance"].is_null(), "no data, not 0%: {cell}");
    }

    // A wrong path: 404 on every call, which will not pass: the sweep pauses.
    let url = format!("{}/wrong/v1", server.base());
    c.sb.file("w.yaml", &(spec_with_models(&openai_at(&url), 5) + "fail_fast: 4\n"));
    let o = c.candor(&["submit", "w.yaml", "--wait"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(7), "{err}");
    assert!(err.contains(&format!("paused: fail fast: 4 calls failed and none succeeded, for a reason that will not pass: model m: POST {url}/chat/completions")), "{err}");
    assert!(err.contains("404"), "{err}");
}
