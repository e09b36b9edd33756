//! `candor export --format inspect`: a sweep's results as Inspect AI eval
//! logs, read back by inspect_ai itself (`read_eval_log`,
//! `read_eval_log_samples`, `samples_df`) from the venv `scripts/data-venv`
//! makes, and shown by `inspect view` in headless Chromium; from a local run
//! and from a coordinator.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Reads one `.eval` with inspect_ai and prints what a user would look at,
/// as JSON: the header, every sample's scores and error, one sample in full
/// (`sys.argv[2]`), and what `samples_df` and `read_eval_log_samples` give.
const READ: &str = r#"
import json, sys
import pandas as pd
from inspect_ai.log import read_eval_log, read_eval_log_samples
from inspect_ai.analysis import samples_df
path, job = sys.argv[1], sys.argv[2]
log = read_eval_log(path)
s = next(x for x in log.samples if x.id == job)
df = samples_df(path)
def usage(u):
    return None if u is None else u.model_dump(exclude_none=True)
print(json.dumps({
    "status": log.status, "task": log.eval.task, "model": log.eval.model,
    "samples": len(log.samples),
    "total": log.results.total_samples, "completed": log.results.completed_samples,
    "metrics": {sc.name: {k: m.value for k, m in sc.metrics.items()} for sc in log.results.scores},
    "usage": usage(log.stats.model_usage.get(log.eval.model)),
    "judge_usage": usage(log.stats.role_usage.get("judge")),
    "scores": {x.id: {k: v.value for k, v in (x.scores or {}).items()} for x in log.samples},
    "errors": {x.id: x.error.message for x in log.samples if x.error is not None},
    "limits": sorted(x.id for x in log.samples if x.limit is not None and x.limit.type == "turn"),
    "sample": {
        "messages": [[m.role, m.text] for m in s.messages],
        "input": [[m.role, m.text] for m in s.input],
        "completion": s.output.completion,
        "stop_reason": s.output.stop_reason,
        "metadata": s.metadata,
        "usage": usage(s.model_usage.get(log.eval.model)),
    },
    "df_ids": sorted(str(i) for i in df["id"]),
    "df_compliant": {str(i): float(v) for i, v in zip(df["id"], df["score_compliant"]) if pd.notna(v)},
    "df_conditions": {str(i): c for i, c in zip(df["id"], df["metadata_condition"])},
    "streamed": sorted(x.id for x in read_eval_log_samples(path, all_samples_required=False)),
}))
"#;

/// The sim spec with a sim judge, an alignment-faking classifier and
/// `error_rate` of the model's calls failing.
fn spec(sb: &Sandbox, name: &str, queries: usize, error_rate: f64) -> String {
    sb.file(&format!("{name}.csv"), &dataset(queries));
    let spec = sim_spec(0, 2)
        .replace("name: small", &format!("name: {name}"))
        .replace("path: data.csv", &format!("path: {name}.csv"))
        .replace(
            "      continuation: 0.4\n",
            &format!("      continuation: 0.4\n      error_rate: {error_rate}\n"),
        );
    sb.file(
        &format!("{name}.yaml"),
        &format!(
            "{spec}judges:\n  - id: judge\n    backend: sim\n    model: sim-judge\n\
             classifiers:\n  - name: compliant\n    kind: prefix\n  - kind: judge\n    builtin: alignment_faking\n    judge: judge\n    votes: 3\n    only_if: compliant\n"
        ),
    );
    format!("{name}.yaml")
}

/// inspect_ai's reading of the `.eval` at `path` (relative to the sandbox).
fn read(sb: &Sandbox, path: &str, job: &str) -> Value {
    serde_json::from_str(python(sb, READ, &[path, job]).trim()).unwrap()
}

fn ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// A run of 40 jobs, some failed, and its export; returns the results.
fn run_and_export(sb: &Sandbox) -> Vec<Value> {
    let s = spec(sb, "small", 10, 0.6);
    let o = sb.candor(&["run", &s, "--out", "out", "--quiet", "--max-failed", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = sb.candor(&["export", "out", "--format", "inspect"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("exported 40 results"), "{err}");
    assert!(err.contains("wrote out/inspect/small_sim.eval"), "{err}");
    sb.jsonl("out/results.jsonl")
}

/// The ids of the jobs whose status is `status` (any, for None).
fn job_ids(results: &[Value], status: Option<&str>) -> BTreeSet<String> {
    results
        .iter()
        .filter(|r| status.is_none_or(|s| r["status"] == s))
        .map(|r| r["job_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_local_run_exports_an_eval_log_that_inspect_ai_reads_sample_by_sample() {
    let sb = Sandbox::new();
    let results = run_and_export(&sb);
    let failed = job_ids(&results, Some("failed"));
    assert!(!failed.is_empty() && failed.len() < 40, "{} of 40 failed", failed.len());
    // A job of several turns with a judge's verdict: the one to read in full.
    let judged = |r: &&Value| r["classifications"]["alignment_faking"].is_boolean();
    let known = results
        .iter()
        .filter(judged)
        .find(|r| r["turns"].as_u64() > Some(1))
        .or_else(|| results.iter().find(judged))
        .expect("a job the judge judged");
    let v = read(&sb, "out/inspect/small_sim.eval", known["job_id"].as_str().unwrap());

    assert_eq!(
        (v["status"].as_str(), v["task"].as_str(), v["model"].as_str()),
        (Some("success"), Some("small"), Some("sim/sim-test"))
    );
    let all = job_ids(&results, None);
    assert_eq!(
        (all.len(), &v["samples"], &v["total"]),
        (40, &Value::from(40), &Value::from(40))
    );
    assert_eq!(ids(&v["df_ids"]), all, "samples_df: one row per job");
    assert_eq!(ids(&v["streamed"]), all, "read_eval_log_samples: every job once");
    assert_eq!(v["completed"].as_u64(), Some(40 - failed.len() as u64));
    let errors: BTreeSet<String> = v["errors"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(errors, failed, "the failed jobs are the samples with an error");
    for (id, message) in v["errors"].as_object().unwrap() {
        assert!(
            message.as_str().unwrap().contains("injected server error"),
            "{id}: {message}"
        );
    }
    let incomplete = job_ids(&results, Some("incomplete"));
    assert_eq!(ids(&v["limits"]), incomplete, "an incomplete job hit the turn limit");

    assert_scores(&v, &results, &sb.json("out/report.json"));
    // Tokens add up to the results' (the sim caches nothing, so Inspect's
    // input without cached tokens is all of candor's input).
    let sum = |field: &str, key: &str| results.iter().map(|r| r[field][key].as_u64().unwrap()).sum::<u64>();
    assert_eq!(v["usage"]["input_tokens"].as_u64(), Some(sum("usage", "input_tokens")));
    assert_eq!(
        v["usage"]["output_tokens"].as_u64(),
        Some(sum("usage", "output_tokens"))
    );
    assert_eq!(
        v["judge_usage"]["input_tokens"].as_u64(),
        Some(sum("judge_usage", "input_tokens"))
    );
    assert_sample(&v["sample"], known);
}

/// Every verdict is a score (1 yes, 0 no), in the log and in samples_df,
/// and the header's rates are the results' and the report's.
fn assert_scores(v: &Value, results: &[Value], report: &Value) {
    let (mut yes, mut scored) = (0, 0);
    for r in results {
        let id = r["job_id"].as_str().unwrap();
        let (scores, verdicts) = (&v["scores"][id], r["classifications"].as_object().unwrap());
        for (name, verdict) in verdicts {
            assert_eq!(
                scores[name].as_f64(),
                Some(f64::from(u8::from(verdict == true))),
                "{id} {name}"
            );
        }
        assert_eq!(scores.as_object().unwrap().len(), verdicts.len(), "{id}");
        match r["classifications"]["compliant"].as_bool() {
            Some(c) => {
                assert_eq!(v["df_compliant"][id].as_f64(), Some(f64::from(u8::from(c))), "{id}");
                (yes, scored) = (yes + u64::from(c), scored + 1);
            }
            None => assert!(v["df_compliant"].get(id).is_none(), "{id} was not classified"),
        }
        assert_eq!(v["df_conditions"][id], r["condition"]);
    }
    let metrics = &v["metrics"]["compliant"];
    let mean = yes as f64 / scored as f64;
    assert!((metrics["mean"].as_f64().unwrap() - mean).abs() < 1e-12, "{metrics}");
    for cell in report["cells"].as_array().unwrap() {
        let key = format!("default/{}", cell["condition"].as_str().unwrap());
        assert_eq!(metrics[&key], cell["classifiers"]["compliant"]["rate"], "{key}");
    }
}

/// One sample in full: its conversation, output and place in the sweep.
fn assert_sample(s: &Value, known: &Value) {
    let t = &known["transcript"];
    let mut want = vec![serde_json::json!(["system", t["system"]])];
    for m in t["messages"].as_array().unwrap() {
        want.push(serde_json::json!([m["role"], m["content"]]));
    }
    assert_eq!(s["messages"], Value::from(want.clone()));
    assert_eq!(s["input"], Value::from(want[..2].to_vec()));
    assert_eq!(s["completion"], known["output"]);
    assert_eq!(s["stop_reason"], "stop");
    for k in ["condition", "seed", "variant", "query_index", "status"] {
        assert_eq!(s["metadata"][k], known[k], "{k}");
    }
    assert_eq!(s["usage"]["output_tokens"], known["usage"]["output_tokens"]);
}

/// `inspect view` (its server, from the venv) on `dir`, stopped when dropped.
struct View(Child);

impl Drop for View {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn inspect_view_shows_the_exported_samples_and_their_scores() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run scripts/check, which installs Chromium (Debian package `chromium`)"
    );
    let sb = Sandbox::new();
    let results = run_and_export(&sb);
    // The sample list is sorted by id and drawn as it scrolls: the first id is on screen.
    let first = results.iter().map(|r| r["job_id"].as_str().unwrap()).min().unwrap();
    let failed = results.iter().filter(|r| r["status"] == "failed").count();
    let scored = results
        .iter()
        .filter(|r| r["classifications"]["compliant"].is_boolean())
        .count();
    let port = free_port();
    let log = std::fs::File::create(sb.join("view.log")).unwrap();
    let _view = View(
        Command::new(PYTHON.parent().unwrap().join("inspect"))
            .args(["view", "start", "--log-dir", "out/inspect", "--port", &port.to_string()])
            .current_dir(sb.path())
            .env("HOME", sb.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("inspect view starts"),
    );
    eventually(Duration::from_secs(60), "inspect view to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let url = format!("http://127.0.0.1:{port}/#/logs/small_sim.eval");
    let (errors, compliant) = (format!("{failed} of 40 samples"), format!("compliant ({scored}/40)"));
    let want: [&str; 6] = [
        first,
        "40 samples",
        &errors,
        &compliant,
        "COMPLIANT",
        "ALIGNMENT_FAKING",
    ];
    let browser = Browser::start(&sb);
    browser.goto(&url);
    eventually(
        Duration::from_secs(60),
        &format!("the viewer's page to show {want:?}"),
        || {
            let text = browser.text_of("body").unwrap_or_default();
            want.iter().all(|w| text.contains(w))
        },
    );
}

#[test]
fn a_coordinators_sweep_exports_the_samples_and_scores_of_a_local_run() {
    let mut c = Cluster::start(false, 5_000);
    let s = spec(&c.sb, "small", 6, 0.0);
    c.add_worker(8, None);
    let id = c.submit(&s);
    let o = c.candor(&["watch", &id]);
    assert_eq!(o.status.code(), Some(0), "watch: {}", stderr(&o));
    // The default place for a sweep id: runs/<sweep name>/inspect/.
    let o = c.candor(&["export", &id, "--format", "inspect"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("exported 24 results"), "{}", stderr(&o));
    let o =
        c.sb.candor(&["run", &s, "--out", "local", "--store", "local-store", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o =
        c.sb.candor(&["export", "local", "--store", "local-store", "--format", "inspect"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let results = c.sb.jsonl("local/results.jsonl");
    let job = results[0]["job_id"].as_str().unwrap();
    let remote = read(&c.sb, "runs/small/inspect/small_sim.eval", job);
    let local = read(&c.sb, "local/inspect/small_sim.eval", job);
    assert_eq!(remote["samples"], 24);
    assert_eq!(ids(&remote["streamed"]).len(), 24);
    for k in [
        "scores",
        "df_ids",
        "df_compliant",
        "metrics",
        "usage",
        "judge_usage",
        "status",
        "model",
    ] {
        assert_eq!(
            remote[k], local[k],
            "{k}: the coordinator's export differs from the local run's"
        );
    }
    let judged: BTreeMap<&str, bool> = results
        .iter()
        .filter_map(|r| {
            Some((
                r["job_id"].as_str()?,
                r["classifications"]["alignment_faking"].as_bool()?,
            ))
        })
        .collect();
    assert!(!judged.is_empty(), "the judge judged something");
    for (id, verdict) in judged {
        assert_eq!(
            remote["scores"][id]["alignment_faking"].as_f64(),
            Some(f64::from(u8::from(verdict)))
        );
    }
}

#[test]
fn bad_targets_are_refused_with_what_to_fix() {
    let sb = Sandbox::new();
    // Not an out dir, and no coordinator to ask: named, with the same code as the other formats.
    let export = |args: &[&str]| sb.cmd(args).env_remove("CANDOR_COORDINATOR").output().unwrap();
    let o = export(&["export", "no-such-run", "--format", "inspect"]);
    let err = stderr(&o);
    assert!(err.contains("no-such-run: not a local run's out dir"), "{err}");
    let jsonl = export(&["export", "no-such-run", "--format", "jsonl"]);
    assert_eq!(o.status.code(), jsonl.status.code());
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!sb.join("no-such-run").exists(), "nothing written");

    // One .eval file for a sweep of two models: refused before anything is written.
    sb.file("data.csv", &dataset(2));
    let models = "  - id: a\n    backend: sim\n    model: sim-a\n  - id: b\n    backend: sim\n    model: sim-b\n";
    sb.file("two.yaml", &spec_with_models(models, 1));
    let o = sb.candor(&["run", "two.yaml", "--out", "out", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = sb.candor(&["export", "out", "--format", "inspect", "--out", "both.eval"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--out both.eval") && err.contains("(a, b)"), "{err}");
    assert!(!sb.join("both.eval").exists() && !sb.join("both.eval.tmp").exists());
    // A directory gets one .eval per model.
    let o = sb.candor(&["export", "out", "--format", "inspect", "--out", "logs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut files: Vec<String> = std::fs::read_dir(sb.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["small_a.eval", "small_b.eval"]);

    // An out dir whose store is elsewhere: the store is named.
    let o = sb.candor(&["export", "out", "--format", "inspect", "--store", "elsewhere"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("elsewhere") && err.contains("--store"), "{err}");
}
