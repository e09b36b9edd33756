//! `candor list`: the sweeps a coordinator knows (with `--coordinator`),
//! and the local runs under `--runs` (default `runs/`): state, created,
//! name, label, models, jobs, failures, cost. A run still going is read
//! from the `progress.json` it rewrites every second, one that ended from
//! its report.json.

use std::path::{Path, PathBuf};

use candor_proto::v1 as pb;
use candor_view::progress_file::{self, ProgressFile};
use serde_json::{Value, json};

use crate::client::{Fail, MaybeClientArgs, rpc_failure};
use crate::exit;

/// The largest report.json read.
const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(clap::Args)]
pub struct ListArgs {
    /// Where local runs write their reports (`candor run`'s default out dirs are under it).
    #[arg(long, value_name = "DIR", default_value = "runs")]
    runs: PathBuf,
    /// Print JSON: {"sweeps": [...], "runs": [...]}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    client: MaybeClientArgs,
}

pub async fn list(a: ListArgs) -> i32 {
    match list_all(&a).await {
        Ok(code) => code,
        Err(Fail(code, msg)) => {
            eprintln!("error: {msg}");
            code
        }
    }
}

async fn list_all(a: &ListArgs) -> Result<i32, Fail> {
    let sweeps = match &a.client.coordinator {
        Some(_) => {
            let mut c = a.client.client(String::new)?.sweeps()?;
            let r = c.list(pb::ListRequest {}).await.map_err(|s| rpc_failure("list", &s))?;
            r.into_inner().sweeps
        }
        None => Vec::new(),
    };
    let mut dirs = Vec::new();
    candor_view::find_runs(&a.runs, candor_view::MAX_DEPTH, &mut dirs);
    let mut runs: Vec<Value> = dirs.iter().filter_map(|d| local_run(d)).collect();
    runs.sort_by(|x, y| x["created"].as_str().cmp(&y["created"].as_str()));
    if a.json {
        let sweeps: Vec<Value> = sweeps.iter().map(super::remote::status_json).collect();
        println!("{}", json!({"sweeps": sweeps, "runs": runs}));
        return Ok(exit::OK);
    }
    for s in &sweeps {
        println!("{}", super::remote::status_line(s));
    }
    for r in &runs {
        println!("{}", run_line(r));
    }
    if sweeps.is_empty() && runs.is_empty() {
        eprintln!(
            "no local runs under {} (and no --coordinator / CANDOR_COORDINATOR for submitted sweeps)",
            a.runs.display()
        );
    }
    Ok(exit::OK)
}

/// One local run: from its progress file while it runs, else from its
/// report.json; None when neither is one candor wrote.
fn local_run(dir: &Path) -> Option<Value> {
    let progress = progress_file::read(dir);
    if let Some(p) = progress.as_ref().filter(|p| p.state == "running") {
        return Some(running(dir, p));
    }
    let mut run = ended(&dir.join("report.json"))?;
    run["state"] = json!(progress.map_or("ended".to_string(), |p| p.state));
    Some(run)
}

/// A run whose progress file says it is running (or `stale`: not rewritten
/// for a while, its process gone).
fn running(dir: &Path, p: &ProgressFile) -> Value {
    let age = progress_file::now_ms().saturating_sub(p.updated_ms);
    let mut models: Vec<&str> = p.cells.iter().map(|c| c.model.as_str()).collect();
    models.sort_unstable();
    models.dedup();
    json!({
        "dir": dir.display().to_string(), "state": if age > progress_file::STALE_AFTER_MS { "stale" } else { "running" },
        "id": p.sweep_id, "name": p.name, "run_label": p.run_label,
        "created": candor_core::time::rfc3339(p.started_ms / 1000, ""), "finished": Value::Null, "models": models,
        "jobs_total": p.jobs_total, "jobs_done": p.jobs_done, "jobs_failed": p.jobs_failed,
        "cost_usd": p.cost_usd,
    })
}

/// A run that ended, from its report.json.
fn ended(path: &Path) -> Option<Value> {
    if std::fs::metadata(path).ok()?.len() > MAX_REPORT_BYTES {
        return None;
    }
    let r: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let s = r.get("sweep")?;
    let p = &s["provenance"];
    let models: Vec<&str> = p["models"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    Some(json!({
        "dir": path.parent().map(|d| d.display().to_string()),
        "id": s["id"], "name": s["name"], "run_label": p.get("run_label").cloned().unwrap_or(Value::Null),
        "created": p["started_at"], "finished": p["finished_at"], "models": models,
        "jobs_total": s["jobs_total"], "jobs_done": s["jobs_done"], "jobs_failed": s["jobs_failed"],
        "cost_usd": s["cost_usd"], "simulated": s["simulated"],
    }))
}

fn run_line(r: &Value) -> String {
    let text = |k: &str| r[k].as_str().unwrap_or("-").to_string();
    let n = |k: &str| r[k].as_u64().unwrap_or(0);
    let models: Vec<&str> = r["models"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    format!(
        "run {} ({}{}) {}: {}/{} done, {} failed, ${:.4}; models {}; created {}; {}",
        text("id"),
        text("name"),
        r["run_label"]
            .as_str()
            .map(|l| format!(", run {l}"))
            .unwrap_or_default(),
        text("state"),
        n("jobs_done"),
        n("jobs_total"),
        n("jobs_failed"),
        r["cost_usd"].as_f64().unwrap_or(0.0),
        models.join(", "),
        text("created"),
        text("dir"),
    )
}
