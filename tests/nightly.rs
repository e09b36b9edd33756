//! What a deployment leans on: run labels that make each night's submission
//! a sweep of its own, `submit --wait --id-file` and `@FILE` ids for jobs
//! without a shell, the verdict of `compare` between nights, the backlog at
//! `/queue` for autoscalers, `candor probe` for container health checks, and
//! the metrics a dashboard reads. Real redis-server, coordinator, workers and
//! sim-server processes on loopback.

mod common;

use std::time::Duration;

use common::*;

fn read_id(c: &Cluster, file: &str) -> String {
    let id = std::fs::read_to_string(c.sb.join(file)).unwrap().trim().to_string();
    assert_eq!(id.len(), 16, "{file} holds `{id}`");
    id
}

fn get(port: u16, path: &str) -> (u16, String) {
    let (code, text) = http(port, "GET", path, "");
    (code, text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

/// A line of /metrics text: the value of the series named exactly `series`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn each_night_is_a_sweep_of_its_own_and_compare_gives_the_verdict() {
    let mut c = Cluster::start(false, 5_000);
    c.sb.file("data.csv", &dataset(40));
    c.sb.file("s.yaml", &sim_spec(0, 3));

    // Nothing leases yet: the backlog is the whole sweep.
    let o = c.candor(&["submit", "s.yaml", "--run", "night-1", "--id-file", "n1.id"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let n1 = read_id(&c, "n1.id");
    assert_eq!(stdout(&o).trim(), n1);
    let (code, body) = get(c.http, "/queue");
    assert_eq!(code, 200, "{body}");
    let q: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(q["queue_depth"], 240, "{q}");
    assert_eq!(q["running_sweeps"], 1, "{q}");
    // OpenMetrics, as Prometheus asks for it: the content type, and the EOF it ends in.
    let (_, raw) = http(c.http, "GET", "/metrics", "");
    let head = raw.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase();
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(raw.ends_with("# EOF\n"), "{raw}");
    let (_, metrics) = get(c.http, "/metrics");
    assert_eq!(
        value(&metrics, &format!("candor_sweep_jobs{{sweep=\"{n1}\",name=\"small\"}}")),
        Some(240.0),
        "{metrics}"
    );

    let wport = free_port();
    c.add_worker(8, Some(wport));
    c.add_worker(8, None);
    let o = c.candor(&["submit", "s.yaml", "--run", "night-1", "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("already submitted"), "{}", stderr(&o));
    assert!(stderr(&o).contains("done — 240/240 done"), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), n1, "the same label names the same sweep");
    c.check(&n1, 240);
    let q: serde_json::Value = serde_json::from_str(&get(c.http, "/queue").1).unwrap();
    assert_eq!(
        (q["queue_depth"].as_u64(), q["running_sweeps"].as_u64()),
        (Some(0), Some(0)),
        "{q}"
    );

    // The next night: another sweep, fresh samples, and no flagged change.
    let o = c.candor(&["submit", "s.yaml", "--run", "night-2", "--wait", "--id-file", "n2.id"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let n2 = read_id(&c, "n2.id");
    assert_ne!(n1, n2);
    let unlabelled = c.submit("s.yaml");
    assert!(unlabelled != n1 && unlabelled != n2);
    let o = c.candor(&["cancel", &unlabelled]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    c.check(&n2, 240);
    for (id, out) in [("@n1.id", "r1"), ("@n2.id", "r2")] {
        let o = c.candor(&["report", id, "--out", out]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        c.export(id, out);
    }
    let outputs = |f: &str| -> Vec<String> {
        let mut rows = c.sb.jsonl(f);
        rows.sort_by_key(|r| r["index"].as_u64());
        rows.iter().map(|r| r["output"].to_string()).collect()
    };
    let (a, b) = (outputs("r1/results.jsonl"), outputs("r2/results.jsonl"));
    let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert!(
        differ > 24,
        "night 2 sampled afresh: only {differ} of 240 outputs differ"
    );
    let o = c.candor(&["compare", "@n1.id", "@n2.id", "--fail-on-regression"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));

    // A night on which the model changed: the verdict fails.
    let changed = sim_spec(0, 3).replace("comply: {training: 0.5", "comply: {training: 0.95");
    c.sb.file("changed.yaml", &changed);
    let o = c.candor(&[
        "submit",
        "changed.yaml",
        "--run",
        "night-3",
        "--wait",
        "--id-file",
        "n3.id",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = c.candor(&["compare", "@n1.id", "@n3.id", "--fail-on-regression"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("training"), "{}", stdout(&o));

    // What the dashboard reads.
    let (_, metrics) = get(c.http, "/metrics");
    assert!(
        value(
            &metrics,
            &format!("candor_sweep_cost_usd{{sweep=\"{n1}\",name=\"small\"}}")
        )
        .is_some(),
        "{metrics}"
    );
    let (_, wm) = get(wport, "/metrics");
    assert!(value(&wm, "candor_worker_cost_usd_total").is_some(), "{wm}");
    assert!(
        value(&wm, "candor_worker_jobs_total{outcome=\"completed\"}").unwrap() > 0.0,
        "{wm}"
    );

    // Bad labels and id files are refused, naming what to fix.
    let o = c.candor(&["submit", "s.yaml", "--run", "a b!"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--run"), "{}", stderr(&o));
    c.sb.file("junk.id", "not an id\n");
    for arg in ["@junk.id", "@missing.id"] {
        let o = c.candor(&["status", arg]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(arg), "{}", stderr(&o));
    }
}

#[test]
fn a_local_run_label_is_a_sweep_of_its_own() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(5));
    sb.file("s.yaml", &sim_spec(0, 1));
    let run = |label: Option<&str>, out: &str| {
        let mut args = vec!["run", "s.yaml", "--out", out, "--quiet"];
        if let Some(l) = label {
            args.extend(["--run", l]);
        }
        let o = sb.candor(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        sb.json(&format!("{out}/report.json"))["sweep"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let plain = run(None, "a");
    let labelled = run(Some("2026-12-01"), "b");
    assert_ne!(plain, labelled);
    assert_eq!(run(Some("2026-12-01"), "c"), labelled);
    let o = sb.candor(&["run", "s.yaml", "--run", ".hidden"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--run"), "{}", stderr(&o));
}

#[test]
fn each_run_label_gets_its_own_report_directory_and_provenance() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(3));
    sb.file("s.yaml", &sim_spec(0, 1));
    for label in ["night-1", "night-2"] {
        let o = sb.candor(&["run", "s.yaml", "--run", label, "--quiet"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    // The second label did not overwrite the first.
    for label in ["night-1", "night-2"] {
        let p = sb.json(&format!("runs/small/{label}/report.json"))["sweep"]["provenance"].clone();
        assert_eq!(p["run_label"], label, "{p}");
        assert_eq!(p["candor_version"], env!("CARGO_PKG_VERSION"), "{p}");
        assert!(p["started_at"].is_string() && p["finished_at"].is_string(), "{p}");
        assert_eq!(p["models"][0]["id"], "sim", "{p}");
        assert!(p["spec_hash"].as_str().is_some_and(|h| !h.is_empty()), "{p}");
    }
}

#[test]
fn workers_count_every_answer_of_a_model_api_and_probes_answer() {
    let mut c = Cluster::start(false, 5_000);
    // The server takes 5 requests a second; the spec claims twice that, so
    // some calls are answered 429 (and retried).
    let server = SimServer::start(&c.sb, &["--rpm", "5", "--window-secs", "1"], &[]);
    let models = format!(
        "  - {{id: api, backend: openai, model: m, base_url: \"{}/v1\", rate_limit: {{rpm: 600}}, price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}}}\n",
        server.base()
    );
    c.sb.file("data.csv", &dataset(8));
    c.sb.file("s.yaml", &spec_with_models(&models, 1));
    let wport = free_port();
    c.add_worker(8, Some(wport));
    let o = c.candor(&["submit", "s.yaml", "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let st = server.stats();
    let (_, wm) = get(wport, "/metrics");
    let calls = |outcome: &str| value(&wm, &format!("candor_backend_calls_total{{outcome=\"{outcome}\"}}"));
    assert_eq!(calls("ok"), st["ok"].as_f64(), "{wm}\n{st}");
    assert_eq!(calls("rate_limited"), st["rate_limited"].as_f64(), "{wm}\n{st}");
    assert!(
        st["rate_limited"].as_u64().unwrap() > 0,
        "the test wants some 429s: {st}"
    );
    assert_eq!(calls("error"), Some(0.0), "{wm}");
    assert!(value(&wm, "candor_worker_cost_usd_total").unwrap() > 0.0, "{wm}");

    // Health checks for images without a shell.
    let probe = |args: &[&str], env: &[(&str, String)]| {
        c.sb.cmd(&[&["probe"], args].concat())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap()
    };
    let o = probe(&[&format!("http://127.0.0.1:{}/readyz", c.http)], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = probe(&[], &[("CANDOR_HTTP", format!("0.0.0.0:{wport}"))]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("127.0.0.1:{wport}/healthz")),
        "{}",
        stdout(&o)
    );
    let o = probe(&[&format!("{}/healthz", server.base())], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = probe(&[&format!("http://127.0.0.1:{}/healthz", free_port())], &[]);
    assert_eq!(o.status.code(), Some(1), "nothing listens there: {}", stderr(&o));
    let o = probe(&[&format!("{}/no-such-page", server.base())], &[]);
    assert_eq!(o.status.code(), Some(1), "a 404 is unhealthy: {}", stderr(&o));
    let o = probe(&[], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("CANDOR_HTTP"), "{}", stderr(&o));
}

#[test]
fn ended_sweeps_can_be_deleted_and_workers_shrug_off_a_deleted_sweep() {
    // Leases long enough that no renewal (which would cancel the jobs of a
    // cancelled sweep) comes between the deletion and the jobs' results.
    let mut c = Cluster::start(false, 60_000);
    c.sb.file("data.csv", &dataset(20));
    c.sb.file("slow.yaml", &sim_spec(300, 5));
    c.sb.file("quick.yaml", &sim_spec(0, 1).replace("name: small", "name: quick"));
    // Worker 0 records straight to Redis, worker 1 through the coordinator.
    c.add_worker(4, None);
    c.add_worker(4, None);
    let slow = c.submit("slow.yaml");
    eventually(Duration::from_secs(30), "both workers busy with the slow sweep", || {
        c.status(&slow)["jobs_in_flight"].as_u64().unwrap_or(0) >= 8
    });

    // A running sweep is not deleted.
    let o = c.candor(&["delete", &slow]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cancel it first"), "{}", stderr(&o));
    assert_eq!(c.status(&slow)["state"], "running");

    // Cancelled, it is, while its jobs are still running on both workers.
    assert_eq!(c.candor(&["cancel", &slow]).status.code(), Some(0));
    let o = c.candor(&["delete", &slow]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("deleted sweep"), "{}", stdout(&o));
    let mut con = c.redis.con();
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("candor:s:{slow}:*"))
        .query(&mut con)
        .unwrap();
    assert!(left.is_empty(), "keys left behind: {left:?}");
    let o = c.candor(&["status", &slow]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(c.candor(&["delete", &slow]).status.code(), Some(4));

    // The workers drop the deleted sweep's results and go on with the next one.
    let quick = c.submit("quick.yaml");
    let o = c.candor(&["watch", &quick]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    c.check(&quick, 40);
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("candor:s:{slow}:*"))
        .query(&mut con)
        .unwrap();
    assert!(left.is_empty(), "late results recreated keys: {left:?}");
    for w in ["worker0.log", "worker1.log"] {
        let log = c.log_text(w);
        assert!(log.contains("sweep is gone; dropping its results"), "{w}:\n{log}");
    }
}
