//! Commands against a coordinator: submit, status, watch, report, cancel, list.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candor_proto::v1 as pb;
use tokio_stream::StreamExt;

use crate::client::{ClientArgs, Fail, rpc_failure};
use crate::exit;

#[derive(clap::Args)]
pub struct SubmitArgs {
    /// The sweep spec (YAML). It and the files it names are sent to the coordinator.
    spec: PathBuf,
    /// A run label: the same spec under another label is another sweep, with fresh samples
    /// (a nightly job gives each night's run its own label). Submitting again under the same
    /// label names the same sweep.
    #[arg(long, env = "CANDOR_RUN")]
    run: Option<String>,
    /// Wait until the sweep ends, following its progress; exit 0 only if it ends done with
    /// no more failed jobs than --max-failed allows (7 when more failed, 6 when the budget ran out).
    #[arg(long)]
    wait: bool,
    /// With --wait: the share of jobs (0 to 1) that may fail with the command still exiting 0 [default: the spec's max_failed, else 0]
    #[arg(long, env = "CANDOR_MAX_FAILED", value_parser = super::share)]
    max_failed: Option<f64>,
    /// Also write the sweep id to this file (for `@FILE` in later commands).
    #[arg(long)]
    id_file: Option<PathBuf>,
    #[command(flatten)]
    scale: super::Scale,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(clap::Args)]
pub struct IdArgs {
    /// The sweep id printed by `candor submit`, or @FILE to read it from a file.
    id: String,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(clap::Args)]
pub struct WatchArgs {
    /// The sweep id printed by `candor submit`, or @FILE to read it from a file.
    id: String,
    /// The share of jobs (0 to 1) that may fail with the command still exiting 0 (7 when more failed)
    #[arg(long, env = "CANDOR_MAX_FAILED", value_parser = super::share, default_value_t = 0.0)]
    max_failed: f64,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The sweep id printed by `candor submit`, or @FILE to read it from a file.
    id: String,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// The sweep id printed by `candor submit`, or @FILE to read it from a file.
    id: String,
    /// Where to write report.json, report.md and report.html [default: runs/<sweep name>]
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    client: ClientArgs,
}

fn done(r: Result<i32, Fail>) -> i32 {
    match r {
        Ok(c) => c,
        Err(Fail(code, msg)) => {
            eprintln!("error: {msg}");
            code
        }
    }
}

/// The largest file `@FILE` reads a sweep id from.
const MAX_ID_FILE_BYTES: u64 = 4096;

/// A sweep id as given: the id itself, or `@FILE` holding it.
pub fn sweep_id(arg: &str) -> Result<String, Fail> {
    let Some(path) = arg.strip_prefix('@') else {
        return Ok(arg.to_string());
    };
    let text = candor_core::spec::read_limited(Path::new(path), MAX_ID_FILE_BYTES, "sweep id file")
        .map_err(|e| Fail(exit::BAD_INPUT, format!("{arg}: {e}")))?;
    let id = text.trim();
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Fail(
            exit::BAD_INPUT,
            format!("{arg}: does not hold a sweep id (16 hex digits)"),
        ));
    }
    Ok(id.to_string())
}

pub async fn submit(a: SubmitArgs) -> i32 {
    done(
        async {
            let bundle = super::bundle(&a.spec, a.run.as_deref(), &a.scale).map_err(|e| Fail(exit::BAD_INPUT, e))?;
            // Check here too, so a bad spec fails before any network.
            let sweep = candor_core::Sweep::from_parsed(&bundle).map_err(|e| Fail(exit::BAD_INPUT, e.to_string()))?;
            let max_failed = a.max_failed.or(sweep.spec.max_failed).unwrap_or(0.0);
            let mut c = a.client.sweeps()?;
            let req = pb::SubmitRequest {
                bundle: Some(bundle.into_bundle().into()),
            };
            let r = c.submit(req).await.map_err(|s| rpc_failure("submit", &s))?.into_inner();
            eprintln!(
                "{} sweep {} ({}, {} jobs)",
                if r.created { "submitted" } else { "already submitted:" },
                r.sweep_id,
                r.name,
                r.jobs_total
            );
            println!("{}", r.sweep_id);
            if let Some(f) = &a.id_file {
                write_atomic(f, format!("{}\n", r.sweep_id).as_bytes())?;
            }
            if a.wait {
                return follow(&a.client, &r.sweep_id, max_failed).await;
            }
            Ok(exit::OK)
        }
        .await,
    )
}

pub(super) fn status_json(s: &pb::SweepStatus) -> serde_json::Value {
    serde_json::json!({
        "id": s.sweep_id, "name": s.name, "state": s.state,
        "jobs_total": s.jobs_total, "jobs_done": s.jobs_done, "jobs_failed": s.jobs_failed,
        "jobs_incomplete": s.jobs_incomplete, "jobs_dead_lettered": s.jobs_dead_lettered,
        "jobs_truncated": s.jobs_truncated, "jobs_filtered": s.jobs_filtered,
        "jobs_in_flight": s.jobs_in_flight, "jobs_retrying": s.jobs_retrying, "retries": s.retries,
        "lease_expiries": s.lease_expiries, "simulated": s.simulated, "reason": s.reason,
        "created_ms": s.created_ms, "finished_ms": s.finished_ms,
        "failures": s.failures.iter().map(|f| serde_json::json!({
            "model": f.model, "kind": f.kind, "jobs": f.jobs, "first_error": f.first_error,
        })).collect::<Vec<_>>(),
        "cells": s.cells.iter().map(|c| serde_json::json!({
            "model": c.model, "condition": c.condition, "total": c.total, "done": c.done,
        })).collect::<Vec<_>>(),
        "batches": s.batches.as_ref().map(|b| serde_json::json!({
            "in_flight": b.in_flight, "unsubmitted": b.unsubmitted, "ended": b.ended,
            "requests": b.requests, "oldest_age_secs": b.oldest_age_secs,
        })),
    })
}

pub(super) fn status_line(s: &pb::SweepStatus) -> String {
    let line = format!(
        "sweep {} ({}): {} — {}/{} done, {} failed ({} dead-lettered), {} incomplete, {} in flight, {} waiting to retry",
        s.sweep_id,
        s.name,
        s.state,
        s.jobs_done,
        s.jobs_total,
        s.jobs_failed,
        s.jobs_dead_lettered,
        s.jobs_incomplete,
        s.jobs_in_flight,
        s.jobs_retrying
    );
    let mut line = line;
    if s.jobs_truncated + s.jobs_filtered > 0 {
        line.push_str(&format!(
            "\n  not counted in rates: {} truncated at the token limit, {} filtered by the provider",
            s.jobs_truncated, s.jobs_filtered
        ));
    }
    if let Some(b) = &s.batches {
        line.push_str(&format!(
            "\n  batches: {} in flight (the oldest recorded {}s ago), {} ended, {} being submitted; {} requests",
            b.in_flight, b.oldest_age_secs, b.ended, b.unsubmitted, b.requests
        ));
    }
    for f in &s.failures {
        line.push_str(&format!("\n  {}", failure_line(f)));
    }
    if !s.reason.is_empty() {
        line.push_str(&format!(
            "\n  paused: {} (fix it, then `candor resume {}`)",
            s.reason, s.sweep_id
        ));
    }
    line
}

/// One reason jobs failed: model, kind, how many, the first error and what to check.
fn failure_line(f: &pb::FailureReason) -> String {
    let kind = if f.kind.is_empty() { "failed" } else { &f.kind };
    let hint = f
        .kind
        .parse::<candor_core::ErrorKind>()
        .map(|k| format!(" — {}", k.hint()))
        .unwrap_or_default();
    format!(
        "failed: model {}: {} × {kind}: {}{hint}",
        f.model, f.jobs, f.first_error
    )
}

/// The exit code of a sweep that ended `s`: done with at most `max_failed`
/// of its jobs failed, or why not.
fn verdict(s: &pb::SweepStatus, max_failed: f64) -> Result<i32, Fail> {
    let share = if s.jobs_done == 0 {
        0.0
    } else {
        s.jobs_failed as f64 / s.jobs_done as f64
    };
    match s.state.as_str() {
        "done" if s.jobs_failed > 0 && share > max_failed => Err(Fail(
            exit::JOBS_FAILED,
            format!(
                "sweep {}: {} of {} jobs failed ({:.1}%), more than --max-failed {max_failed} allows",
                s.sweep_id,
                s.jobs_failed,
                s.jobs_done,
                share * 100.0
            ),
        )),
        "done" => Ok(exit::OK),
        "budget_exhausted" => Err(Fail(
            exit::BUDGET,
            format!(
                "sweep {}: budget exhausted: ${:.2} of ${:.2} spent; {} of {} jobs have results, {} still running",
                s.sweep_id, s.cost_usd, s.budget_usd, s.jobs_done, s.jobs_total, s.jobs_in_flight
            ),
        )),
        "paused" if s.reason.starts_with("fail fast") => Err(Fail(
            exit::JOBS_FAILED,
            format!("sweep {} is paused: {}", s.sweep_id, s.reason),
        )),
        other => Err(Fail(exit::FAILURE, format!("sweep {} is {other}", s.sweep_id))),
    }
}

pub async fn status(a: StatusArgs) -> i32 {
    done(
        async {
            let mut c = a.client.sweeps()?;
            let s = c
                .get(pb::SweepRef {
                    sweep_id: sweep_id(&a.id)?,
                })
                .await
                .map_err(|s| rpc_failure("status", &s))?
                .into_inner();
            if a.json {
                println!("{}", serde_json::to_string_pretty(&status_json(&s)).expect("json"));
            } else {
                println!("{}", status_line(&s));
                for cell in &s.cells {
                    println!(
                        "  {:<24} {:<16} {:>10}/{}",
                        cell.model, cell.condition, cell.done, cell.total
                    );
                }
            }
            Ok(exit::OK)
        }
        .await,
    )
}

pub async fn cancel(a: IdArgs) -> i32 {
    done(
        async {
            let mut c = a.client.sweeps()?;
            let s = c
                .cancel(pb::SweepRef {
                    sweep_id: sweep_id(&a.id)?,
                })
                .await
                .map_err(|s| rpc_failure("cancel", &s))?
                .into_inner();
            println!("{}", status_line(&s));
            Ok(exit::OK)
        }
        .await,
    )
}

pub async fn resume(a: IdArgs) -> i32 {
    done(
        async {
            let mut c = a.client.sweeps()?;
            let s = c
                .resume(pb::SweepRef {
                    sweep_id: sweep_id(&a.id)?,
                })
                .await
                .map_err(|s| rpc_failure("resume", &s))?
                .into_inner();
            println!("{}", status_line(&s));
            Ok(exit::OK)
        }
        .await,
    )
}

pub async fn delete(a: IdArgs) -> i32 {
    done(
        async {
            let mut c = a.client.sweeps()?;
            let r = c
                .delete(pb::SweepRef {
                    sweep_id: sweep_id(&a.id)?,
                })
                .await
                .map_err(|s| rpc_failure("delete", &s))?
                .into_inner();
            println!("deleted sweep {} ({}) and its results", r.sweep_id, r.state);
            Ok(exit::OK)
        }
        .await,
    )
}

pub async fn watch(a: WatchArgs) -> i32 {
    done(async { follow(&a.client, &sweep_id(&a.id)?, a.max_failed).await }.await)
}

/// How long `watch` and `submit --wait` keep trying to reach a coordinator
/// that went away (a restart, a rolling update) before they give up.
const RECONNECT_FOR: Duration = Duration::from_secs(300);

/// What `watch` shows: bars per model × condition on a terminal, a status
/// line every 2 s otherwise, and the first error of each model and kind,
/// once, as it appears.
struct Screen {
    tty: bool,
    multi: indicatif::MultiProgress,
    style: indicatif::ProgressStyle,
    bars: Vec<indicatif::ProgressBar>,
    overall: Option<indicatif::ProgressBar>,
    last_line: Instant,
    seen: std::collections::HashSet<(String, String)>,
}

impl Screen {
    fn new() -> Screen {
        Screen {
            tty: std::io::stderr().is_terminal(),
            multi: indicatif::MultiProgress::new(),
            style: indicatif::ProgressStyle::with_template("{prefix:<40} {bar:30.cyan/blue} {pos}/{len} {msg}")
                .expect("template"),
            bars: Vec::new(),
            overall: None,
            last_line: Instant::now() - Duration::from_secs(60),
            seen: std::collections::HashSet::new(),
        }
    }

    /// A line on stderr that does not tear the bars.
    fn say(&self, line: &str) {
        if self.tty {
            self.multi.suspend(|| eprintln!("{line}"));
        } else {
            eprintln!("{line}");
        }
    }

    fn show(&mut self, s: &pb::SweepStatus) {
        for f in &s.failures {
            if self.seen.insert((f.model.clone(), f.kind.clone())) {
                self.say(&failure_line(f));
            }
        }
        if !self.tty {
            if self.last_line.elapsed() >= Duration::from_secs(2) || s.state != "running" {
                eprintln!("{}", status_line(s));
                self.last_line = Instant::now();
            }
            return;
        }
        if self.bars.is_empty() {
            let o = self.bar(s.jobs_total, format!("{} (all)", s.name));
            self.overall = Some(o);
            for cell in &s.cells {
                let b = self.bar(cell.total, format!("{} × {}", cell.model, cell.condition));
                self.bars.push(b);
            }
        }
        if let Some(o) = &self.overall {
            o.set_position(s.jobs_done);
            if s.jobs_failed > 0 {
                o.set_message(format!("{} failed", s.jobs_failed));
            }
        }
        for (b, cell) in self.bars.iter().zip(&s.cells) {
            b.set_position(cell.done);
        }
    }

    fn bar(&self, len: u64, prefix: String) -> indicatif::ProgressBar {
        let b = self
            .multi
            .add(indicatif::ProgressBar::new(len).with_style(self.style.clone()));
        b.set_prefix(prefix);
        b
    }

    fn finish(&self, s: &pb::SweepStatus) {
        for b in self.bars.iter().chain(self.overall.iter()) {
            b.finish();
        }
        if self.tty {
            eprintln!("{}", status_line(s));
        }
    }
}

/// Follows a sweep until it ends (see [`Screen`]). Reconnects when the
/// coordinator goes away for a while. Ends when the sweep leaves `running`
/// (done, cancelled, paused, out of budget); Ok only when it ends done.
async fn follow(client: &ClientArgs, id: &str, max_failed: f64) -> Result<i32, Fail> {
    let mut c = client.sweeps()?;
    let mut screen = Screen::new();
    let mut last: Option<pb::SweepStatus> = None;
    let mut lost_since: Option<Instant> = None;
    let mut backoff = Duration::from_millis(200);
    loop {
        let lost = match c
            .watch(pb::SweepRef {
                sweep_id: id.to_string(),
            })
            .await
        {
            Err(s) if s.code() == tonic::Code::Unavailable => rpc_failure("watch", &s),
            Err(s) => return Err(rpc_failure("watch", &s)),
            Ok(r) => {
                let mut stream = r.into_inner();
                let mut lost = Fail(exit::UNAVAILABLE, "watch: the coordinator closed the stream".into());
                while let Some(item) = stream.next().await {
                    let s = match item {
                        Ok(s) => s,
                        Err(s) if s.code() == tonic::Code::Unavailable || s.code() == tonic::Code::Unknown => {
                            lost = rpc_failure("watch", &s);
                            break;
                        }
                        Err(s) => return Err(rpc_failure("watch", &s)),
                    };
                    (lost_since, backoff) = (None, Duration::from_millis(200));
                    screen.show(&s);
                    let ended = s.state != "running";
                    last = Some(s);
                    if ended {
                        break;
                    }
                }
                match &last {
                    Some(s) if s.state != "running" => break,
                    _ => lost,
                }
            }
        };
        let since = *lost_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= RECONNECT_FOR {
            return Err(lost);
        }
        if !screen.tty {
            eprintln!("{}; reconnecting", lost.1);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    let s = last.expect("the loop ends on a status");
    screen.finish(&s);
    verdict(&s, max_failed)
}

fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<(), Fail> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Fail(exit::FAILURE, format!("cannot write {}: {e}", path.display())))
}

pub async fn report(a: ReportArgs) -> i32 {
    done(
        async {
            let mut c = a.client.sweeps()?;
            let id = pb::SweepRef {
                sweep_id: sweep_id(&a.id)?,
            };
            let r = c
                .report(id.clone())
                .await
                .map_err(|s| rpc_failure("report", &s))?
                .into_inner();
            let report: candor_report::report::Report = serde_json::from_str(&r.report_json).map_err(|e| {
                Fail(
                    exit::FAILURE,
                    format!("report: the coordinator sent an unreadable report: {e}"),
                )
            })?;
            let out = a
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs").join(&report.sweep.name));
            // The results stream by, each into the page's sample (and the
            // prompt cache's sums): nothing else of them is kept.
            let mut views = candor_report::export::Views::new(&report);
            let mut stream = c.results(id).await.map_err(|s| rpc_failure("report", &s))?.into_inner();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|s| rpc_failure("report", &s))?;
                for line in chunk.jsonl.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    views.offer(line);
                }
            }
            let n = views.results;
            let report = views
                .write(report, &out)
                .map_err(|e| Fail(exit::FAILURE, e.to_string()))?;
            println!("{}", report.to_table());
            println!(
                "wrote {}/report.json, report.md, report.html ({n} results)",
                out.display()
            );
            println!(
                "its results: candor export {} --format parquet|jsonl|csv|inspect",
                report.sweep.id
            );
            Ok(exit::OK)
        }
        .await,
    )
}
