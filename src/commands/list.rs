//! `candor list`: the sweeps a coordinator knows (with `--coordinator`),
//! and the local runs whose reports are under `--runs` (default `runs/`):
//! created, name, label, models, jobs, failures, cost.

use std::path::{Path, PathBuf};

use candor_proto::v1 as pb;
use serde_json::{Value, json};

use crate::client::{Fail, MaybeClientArgs, rpc_failure};
use crate::exit;

/// The largest report.json read.
const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;
/// How deep under `--runs` reports are looked for (runs/NAME/LABEL/report.json).
const MAX_DEPTH: usize = 3;

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
    let mut reports = Vec::new();
    find_reports(&a.runs, MAX_DEPTH, &mut reports);
    let mut runs: Vec<Value> = reports.iter().filter_map(|p| local_run(p)).collect();
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

/// Every report.json under `dir`, `depth` levels down at most.
fn find_reports(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let report = dir.join("report.json");
    if report.is_file() {
        out.push(report);
    }
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for d in dirs {
        find_reports(&d, depth - 1, out);
    }
}

/// One local run from its report.json; None when it is not one candor wrote.
fn local_run(path: &Path) -> Option<Value> {
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
        "run {} ({}{}): {}/{} done, {} failed, ${:.4}; models {}; created {}; {}",
        text("id"),
        text("name"),
        r["run_label"]
            .as_str()
            .map(|l| format!(", run {l}"))
            .unwrap_or_default(),
        n("jobs_done"),
        n("jobs_total"),
        n("jobs_failed"),
        r["cost_usd"].as_f64().unwrap_or(0.0),
        models.join(", "),
        text("created"),
        text("dir"),
    )
}
