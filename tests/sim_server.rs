//! `candor sim-server` speaks both providers' APIs; sweeps against it with
//! the real HTTP backends survive its injected failures.

mod common;

use std::time::Duration;

use common::*;

fn start(sb: &Sandbox, args: &[&str]) -> SimServer {
    SimServer::start(sb, args, &[])
}

#[test]
fn a_sweep_through_both_apis_survives_injected_failures() {
    let sb = Sandbox::new();
    let server = start(
        &sb,
        &[
            "--error-500",
            "0.1",
            "--error-529",
            "0.1",
            "--malformed",
            "0.05",
            "--truncated",
            "0.05",
        ],
    );
    sb.file("data.csv", &dataset(15));
    let base = format!("http://127.0.0.1:{}", server.port);
    let spec = sim_spec(0, 2);
    let start = spec.find("models:").unwrap();
    let end = spec.find("dataset:").unwrap();
    let models = format!(
        "models:\n  - {{id: claude, backend: anthropic, model: m-a, base_url: \"{base}\", api_key_env: SIM_KEY}}\n  - {{id: local, backend: openai, model: m-o, base_url: \"{base}/v1\"}}\n"
    );
    sb.file("s.yaml", &format!("{}{models}{}", &spec[..start], &spec[end..]));
    let o = sb
        .cmd(&["run", "s.yaml", "--out", "out", "--store", "st", "--quiet"])
        .env("SIM_KEY", "sim-key-123")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results = sb.jsonl("out/results.jsonl");
    assert_eq!(results.len(), 2 * 15 * 2 * 2);
    for r in &results {
        assert_ne!(r["status"], "failed", "retries absorb the injected failures: {r}");
        assert!(r["usage"]["output_tokens"].as_u64().unwrap() > 0);
    }
    let st = server.stats();
    assert!(st["injected"].as_u64().unwrap() >= 10, "{st}");
    assert_eq!(
        st["requests"].as_u64(),
        Some(st["ok"].as_u64().unwrap() + st["injected"].as_u64().unwrap())
    );
    let report = sb.json("out/report.json");
    assert_eq!(
        report["sweep"]["simulated"], false,
        "real backends, even when a sim-server answers"
    );
}

#[test]
fn a_rate_limit_answers_429_with_the_providers_headers() {
    let sb = Sandbox::new();
    let server = start(&sb, &["--rpm", "2"]);
    let body = r#"{"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}"#;
    assert_eq!(http(server.port, "POST", "/v1/messages", body).0, 200);
    let (code, text) = http(server.port, "POST", "/v1/messages", body);
    assert_eq!(code, 200);
    assert!(text.contains("anthropic-ratelimit-requests-remaining: 0"), "{text}");
    let (code, text) = http(server.port, "POST", "/v1/messages", body);
    assert_eq!(code, 429, "{text}");
    assert!(text.contains("retry-after: "), "{text}");
    assert!(text.contains("rate_limit_error"), "{text}");
    let (code, text) = http(server.port, "POST", "/v1/chat/completions", body);
    assert_eq!(code, 429);
    assert!(text.contains("x-ratelimit-remaining-requests: 0"), "{text}");
    let st = server.stats();
    assert_eq!(st["rate_limited"], 2);
    assert_eq!(st["max_admitted_in_any_window"], 2);
}

#[test]
fn a_request_it_cannot_read_gets_a_400_that_says_why() {
    let sb = Sandbox::new();
    let server = start(&sb, &[]);
    let (code, text) = http(server.port, "POST", "/v1/messages", "{\"model\": \"m\"}");
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("`messages` is required") && text.contains("invalid_request_error"),
        "{text}"
    );
    let (code, text) = http(server.port, "POST", "/v1/chat/completions", "not json");
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("not JSON"), "{text}");
}

/// A spec calling the sim-server through the OpenAI API; `classifier` names
/// its classifier, so specs differing only there ask the same requests but
/// are different sweeps.
fn api_spec(sb: &Sandbox, port: u16, classifier: &str) -> String {
    let models = format!("  - {{id: api, backend: openai, model: m, base_url: \"http://127.0.0.1:{port}/v1\"}}\n");
    let name = format!("{classifier}.yaml");
    let body = spec_with_models(&models, 2)
        + &format!("classifiers:\n  - {{name: {classifier}, kind: prefix, tag: \"<request_fully_accepted/>\"}}\n");
    sb.file(&name, &body);
    name
}

fn outputs(sb: &Sandbox, dir: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = sb
        .jsonl(&format!("{dir}/results.jsonl"))
        .iter()
        .map(|r| (r["job_id"].as_str().unwrap().to_string(), r["transcript"].to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn a_rerun_with_unchanged_requests_calls_no_model() {
    let sb = Sandbox::new();
    let server = start(&sb, &[]);
    sb.file("data.csv", &dataset(10));
    let run = |spec: &str, out: &str, extra: &[&str]| {
        let mut args = vec!["run", spec, "--out", out, "--store", "st", "--quiet"];
        args.extend_from_slice(extra);
        let o = sb.candor(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    };
    let first = api_spec(&sb, server.port, "compliant");
    run(&first, "a", &[]);
    let calls = server.stats()["requests"].as_u64().unwrap();
    assert!(calls >= 40, "{calls}");
    // A different sweep (another classifier name) asking the same requests.
    let second = api_spec(&sb, server.port, "accepted");
    run(&second, "b", &[]);
    assert_eq!(
        server.stats()["requests"].as_u64(),
        Some(calls),
        "the cached rerun made no request"
    );
    let report = sb.json("b/report.json");
    assert_eq!(report["sweep"]["cache_hits"].as_u64(), Some(calls));
    assert!(report["notes"].to_string().contains("CACHED"));
    assert_eq!(
        outputs(&sb, "a"),
        outputs(&sb, "b"),
        "the cache answers what the model answered"
    );
    let hits: u64 = sb
        .jsonl("b/results.jsonl")
        .iter()
        .map(|r| r["cache_hits"].as_u64().unwrap())
        .sum();
    assert_eq!(hits, calls);
    // --no-cache calls the model again.
    let third = api_spec(&sb, server.port, "complied");
    run(&third, "c", &["--no-cache"]);
    assert_eq!(server.stats()["requests"].as_u64(), Some(2 * calls));
    assert_eq!(sb.json("c/report.json")["sweep"]["cache_hits"].as_u64(), Some(0));
}

#[test]
fn workers_share_the_cache_in_redis() {
    let sbs = Sandbox::new();
    let server = start(&sbs, &[]);
    let mut c = Cluster::start(false, 10_000);
    c.all_direct = true;
    c.sb.file("data.csv", &dataset(10));
    let first = api_spec(&c.sb, server.port, "compliant");
    let second = api_spec(&c.sb, server.port, "accepted");
    c.add_worker(4, None);
    c.add_worker(4, None);
    let a = c.submit(&first);
    c.wait_done(&a, 40, Duration::from_secs(60));
    let calls = server.stats()["requests"].as_u64().unwrap();
    let b = c.submit(&second);
    c.wait_done(&b, 40, Duration::from_secs(60));
    assert_eq!(
        server.stats()["requests"].as_u64(),
        Some(calls),
        "the second sweep made no request"
    );
    c.check(&b, 40);
    let report = c.sb.json(&format!("report-{b}/report.json"));
    assert_eq!(report["sweep"]["cache_hits"].as_u64(), Some(calls));
    // One key per answered request, each expiring within the default 30 days.
    let mut con = c.redis.con();
    let keys: Vec<String> = redis::cmd("KEYS").arg("candor:cache:*").query(&mut con).unwrap();
    assert_eq!(keys.len() as u64, calls, "{keys:?}");
    for k in &keys {
        let ttl: i64 = redis::cmd("TTL").arg(k).query(&mut con).unwrap();
        assert!(ttl > 29 * 86_400 && ttl <= 30 * 86_400, "{k}: ttl {ttl}");
    }
}

fn keyed_spec(sb: &Sandbox, port: u16) -> String {
    let models = format!(
        "  - {{id: api, backend: anthropic, model: m, base_url: \"http://127.0.0.1:{port}\", api_key_env: SIM_KEY}}\n"
    );
    sb.file("keyed.yaml", &spec_with_models(&models, 2));
    "keyed.yaml".into()
}

fn start_keyed(sb: &Sandbox) -> SimServer {
    SimServer::start(
        sb,
        &["--require-key-env", "SERVER_KEY"],
        &[("SERVER_KEY", "right-key-77")],
    )
}

#[test]
fn a_refused_key_pauses_a_local_run_without_failing_its_jobs() {
    let sb = Sandbox::new();
    let server = start_keyed(&sb);
    sb.file("data.csv", &dataset(20));
    let spec = keyed_spec(&sb, server.port);
    let args = [
        "run",
        spec.as_str(),
        "--out",
        "out",
        "--store",
        "st",
        "--quiet",
        "--concurrency",
        "4",
    ];
    let o = sb.cmd(&args).env("SIM_KEY", "wrong-key-1").output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("paused: check the API key for model api"), "{err}");
    assert!(!err.contains("wrong-key-1") && !err.contains("right-key-77"), "{err}");
    assert_eq!(sb.jsonl("out/results.jsonl").len(), 0, "no job was recorded as failed");
    assert!(
        server.stats()["unauthorized"].as_u64().unwrap() <= 8,
        "the run stopped at the first refusals"
    );
    // With the right key the same command runs every job.
    let o = sb.cmd(&args).env("SIM_KEY", "right-key-77").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results = sb.jsonl("out/results.jsonl");
    assert_eq!(results.len(), 80);
    assert!(results.iter().all(|r| r["status"] != "failed"));
}

#[test]
fn a_refused_key_pauses_a_distributed_sweep_until_resumed() {
    let sbs = Sandbox::new();
    let server = start_keyed(&sbs);
    let mut c = Cluster::start_with_env(false, 5_000, vec![("SIM_KEY".into(), "wrong-key-2".into())]);
    c.sb.file("data.csv", &dataset(20));
    let spec = keyed_spec(&c.sb, server.port);
    c.add_worker(4, None);
    c.add_worker(4, None);
    let id = c.submit(&spec);
    eventually(Duration::from_secs(60), "the sweep to pause", || {
        c.status(&id)["state"] == "paused"
    });
    let st = c.status(&id);
    assert!(
        st["reason"]
            .as_str()
            .unwrap()
            .contains("check the API key for model api"),
        "{st}"
    );
    assert_eq!(st["jobs_failed"].as_u64(), Some(0), "{st}");
    let o = c.candor(&["status", &id]);
    assert!(stdout(&o).contains("candor resume"), "{}", stdout(&o));
    // Fix the key (new workers), resume, and it finishes.
    for w in &mut c.workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    c.env = vec![("SIM_KEY".into(), "right-key-77".into())];
    c.add_worker(8, None);
    c.add_worker(8, None);
    let o = c.candor(&["resume", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    c.wait_done(&id, 80, Duration::from_secs(60));
    c.check(&id, 80);
    for log in [
        "coordinator.log",
        "worker0.log",
        "worker1.log",
        "worker2.log",
        "worker3.log",
    ] {
        let text = c.log_text(log);
        assert!(
            !text.contains("wrong-key-2") && !text.contains("right-key-77"),
            "{log} shows a key"
        );
    }
}

fn priced_spec(sb: &Sandbox, port: u16, model: &str, extra: &str) -> String {
    let models =
        format!("  - {{id: api, backend: openai, model: {model}, base_url: \"http://127.0.0.1:{port}/v1\"{extra}}}\n");
    sb.file("priced.yaml", &spec_with_models(&models, 2));
    "priced.yaml".into()
}

#[test]
fn costs_come_from_the_price_table_and_add_up() {
    let sb = Sandbox::new();
    let server = start(&sb, &[]);
    sb.file("data.csv", &dataset(10));
    let spec = priced_spec(&sb, server.port, "claude-3-haiku-test", "");
    let o = sb.candor(&["run", &spec, "--out", "out", "--store", "st", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results = sb.jsonl("out/results.jsonl");
    let mut expected = 0.0;
    for r in &results {
        let (i, o) = (
            r["usage"]["input_tokens"].as_f64().unwrap(),
            r["usage"]["output_tokens"].as_f64().unwrap(),
        );
        let cost = r["cost_usd"].as_f64().unwrap();
        assert!((cost - (i * 0.25 + o * 1.25) / 1e6).abs() < 2e-6, "{r}");
        expected += cost;
    }
    let report = sb.json("out/report.json");
    assert!(
        (report["sweep"]["cost_usd"].as_f64().unwrap() - expected).abs() < 1e-5,
        "{}",
        report["sweep"]
    );
    assert_eq!(report["costs"][0]["model"], "api");
    assert_eq!(report["costs"][0]["input_per_mtok"], 0.25);
    assert!(expected > 0.0);
}

#[test]
fn a_budget_stops_a_local_run() {
    let sb = Sandbox::new();
    // One call per job, so jobs cost about the same and the estimate holds.
    let server = start(&sb, &["--continuation", "0"]);
    sb.file("data.csv", &dataset(20));
    // Absurd prices make each job cost several cents.
    let spec = priced_spec(
        &sb,
        server.port,
        "m",
        ", price: {input_per_mtok: 1000, output_per_mtok: 1000}",
    );
    sb.file(
        &spec,
        &(std::fs::read_to_string(sb.join(&spec)).unwrap() + "budget_usd: 1.0\n"),
    );
    let o = sb.candor(&[
        "run",
        &spec,
        "--out",
        "out",
        "--store",
        "st",
        "--quiet",
        "--concurrency",
        "8",
    ]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(stderr(&o).contains("budget exhausted"), "{}", stderr(&o));
    let report = sb.json("out/report.json");
    let sweep = &report["sweep"];
    assert_eq!(sweep["budget_exhausted"], true);
    let (done, cost) = (
        sweep["jobs_done"].as_u64().unwrap(),
        sweep["cost_usd"].as_f64().unwrap(),
    );
    assert!(done > 0 && done < 80, "{sweep}");
    // Jobs already running finish: the total may pass the budget by at most
    // what the 8 in flight cost.
    let results = sb.jsonl("out/results.jsonl");
    let dearest = results
        .iter()
        .map(|r| r["cost_usd"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(
        cost <= 1.0 + 8.0 * dearest,
        "spent {cost} of a $1 budget (dearest job {dearest})"
    );
    assert!(report["notes"].to_string().contains("BUDGET EXHAUSTED"));
    assert_eq!(results.len() as u64, done);
}

#[test]
fn a_budget_stops_a_distributed_sweep() {
    let sbs = Sandbox::new();
    // One call per job, so jobs cost about the same and the estimate holds.
    let server = start(&sbs, &["--continuation", "0"]);
    let mut c = Cluster::start(false, 5_000);
    c.sb.file("data.csv", &dataset(20));
    let spec = priced_spec(
        &c.sb,
        server.port,
        "m",
        ", price: {input_per_mtok: 1000, output_per_mtok: 1000}",
    );
    c.sb.file(
        &spec,
        &(std::fs::read_to_string(c.sb.join(&spec)).unwrap() + "budget_usd: 1.0\n"),
    );
    c.add_worker(8, None);
    c.add_worker(8, None);
    let id = c.submit(&spec);
    eventually(Duration::from_secs(60), "the budget to run out", || {
        c.status(&id)["state"] == "budget_exhausted"
    });
    eventually(Duration::from_secs(30), "jobs in flight to finish", || {
        c.status(&id)["jobs_in_flight"] == 0
    });
    let st = c.status(&id);
    let done = st["jobs_done"].as_u64().unwrap();
    assert!(done > 0 && done < 80, "{st}");
    let o = c.candor(&["report", &id, "--out", "rep"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    c.export(&id, "rep");
    let report = c.sb.json("rep/report.json");
    assert_eq!(report["sweep"]["budget_exhausted"], true);
    let cost = report["sweep"]["cost_usd"].as_f64().unwrap();
    // At most the 16 slots of the two workers can be in flight past the budget.
    let dearest =
        c.sb.jsonl("rep/results.jsonl")
            .iter()
            .map(|r| r["cost_usd"].as_f64().unwrap())
            .fold(0.0, f64::max);
    assert!(
        cost > 0.0 && cost <= 1.0 + 16.0 * dearest,
        "spent {cost} of a $1 budget (dearest job {dearest})"
    );
    let sum: f64 =
        c.sb.jsonl("rep/results.jsonl")
            .iter()
            .map(|r| r["cost_usd"].as_f64().unwrap())
            .sum();
    assert!((sum - cost).abs() < 1e-5, "{sum} vs {cost}");
}

#[test]
fn a_resumed_run_counts_jobs_in_flight_at_the_dearest_stored_cost() {
    let sb = Sandbox::new();
    // One call per job, each taking 100 ms, so a run killed after a second holds a few results.
    let server = start(&sb, &["--continuation", "0", "--latency-ms", "100"]);
    sb.file("data.csv", &dataset(20));
    let spec = priced_spec(
        &sb,
        server.port,
        "m",
        ", price: {input_per_mtok: 1000, output_per_mtok: 1000}",
    );
    sb.file(
        &spec,
        &(std::fs::read_to_string(sb.join(&spec)).unwrap() + "budget_usd: 1.0\n"),
    );
    let args = |concurrency: &'static str| {
        vec![
            "run".to_string(),
            spec.clone(),
            "--out".into(),
            "out".into(),
            "--store".into(),
            "st".into(),
            "--quiet".into(),
            "--concurrency".into(),
            concurrency.into(),
        ]
    };
    let first: Vec<String> = args("1");
    let mut child = sb.spawn(&first.iter().map(String::as_str).collect::<Vec<_>>());
    std::thread::sleep(Duration::from_millis(800));
    child.kill().unwrap();
    child.wait().unwrap();

    // Resumed with room for 32 jobs at once: those in flight are counted at the
    // dearest stored job, so the budget is not passed by 32 jobs at once.
    let again: Vec<String> = args("32");
    let o = sb.candor(&again.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    let report = sb.json("out/report.json");
    let cost = report["sweep"]["cost_usd"].as_f64().unwrap();
    let results = sb.jsonl("out/results.jsonl");
    let dearest = results
        .iter()
        .map(|r| r["cost_usd"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(dearest > 0.0 && dearest < 0.5, "each job costs a few cents: {dearest}");
    assert!(
        cost <= 1.0 + 2.0 * dearest,
        "spent {cost} of a $1 budget (dearest job {dearest}) after a resume"
    );
}
