//! `candor compare BASELINE CANDIDATE`: what changed between two reports,
//! each a report.json (or its directory) or a sweep id on a coordinator.

use std::path::{Path, PathBuf};

use candor_core::compare::compare as diff;
use candor_core::report::Report;
use candor_proto::v1 as pb;

use crate::client::Fail;
use crate::exit;

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The baseline: a report.json, the directory holding it, or a sweep id or @FILE holding one (needs --coordinator).
    baseline: String,
    /// The candidate: a report.json, the directory holding it, or a sweep id or @FILE holding one (needs --coordinator).
    candidate: String,
    /// The coordinator to fetch reports of sweep ids from (http://HOST:PORT or https://).
    #[arg(long, env = "CANDOR_COORDINATOR", hide_env_values = true)]
    coordinator: Option<String>,
    /// Read the coordinator's bearer token from this file instead of CANDOR_TOKEN.
    #[arg(long, env = "CANDOR_TOKEN_FILE", hide_env_values = true)]
    token_file: Option<PathBuf>,
    /// A PEM CA certificate to trust for an https:// coordinator.
    #[arg(long, env = "CANDOR_TLS_CA", hide_env_values = true)]
    tls_ca: Option<PathBuf>,
    /// Smallest change (as a fraction, 0.05 = 5 points) worth flagging.
    #[arg(long, default_value_t = 0.05)]
    threshold: f64,
    /// Exit 1 when any change is flagged.
    #[arg(long)]
    fail_on_regression: bool,
    /// Print the changes as JSON.
    #[arg(long)]
    json: bool,
}

fn is_sweep_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A report from a path, or by sweep id from the coordinator.
async fn load(a: &CompareArgs, arg: &str, which: &str) -> Result<Report, Fail> {
    let id;
    let arg = if arg.starts_with('@') {
        id = super::remote::sweep_id(arg)?;
        id.as_str()
    } else {
        arg
    };
    let p = Path::new(arg);
    if p.exists() || !is_sweep_id(arg) {
        return read(p, which).map_err(|e| Fail(exit::BAD_INPUT, e));
    }
    let Some(url) = &a.coordinator else {
        return Err(Fail(
            exit::BAD_INPUT,
            format!("{which} {arg}: no such file; to compare a sweep id, give --coordinator"),
        ));
    };
    let client = crate::client::ClientArgs {
        coordinator: url.clone(),
        token_file: a.token_file.clone(),
        tls_ca: a.tls_ca.clone(),
    };
    let r = client
        .sweeps()?
        .report(pb::SweepRef {
            sweep_id: arg.to_string(),
        })
        .await
        .map_err(|s| crate::client::rpc_failure(&format!("{which} {arg}"), &s))?
        .into_inner();
    serde_json::from_str(&r.report_json).map_err(|e| {
        Fail(
            exit::FAILURE,
            format!("{which} {arg}: the coordinator sent an unreadable report: {e}"),
        )
    })
}

fn read(p: &Path, which: &str) -> Result<Report, String> {
    let file = if p.is_dir() {
        p.join("report.json")
    } else {
        p.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{which} {}: {e}", file.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{which} {}: not a candor report: {e}", file.display()))
}

pub async fn compare(a: CompareArgs) -> i32 {
    if !(0.0..=1.0).contains(&a.threshold) {
        eprintln!("error: --threshold: {} is not between 0 and 1", a.threshold);
        return exit::BAD_INPUT;
    }
    let (base, cand) = match (
        load(&a, &a.baseline, "baseline").await,
        load(&a, &a.candidate, "candidate").await,
    ) {
        (Ok(b), Ok(c)) => (b, c),
        (Err(Fail(code, e)), _) | (_, Err(Fail(code, e))) => {
            eprintln!("error: {e}");
            return code;
        }
    };
    let changes = diff(&base, &cand, a.threshold);
    if changes.is_empty() {
        eprintln!("error: the two reports share no model × variant × condition");
        return exit::BAD_INPUT;
    }
    let flagged = changes.iter().filter(|c| c.flagged).count();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&changes).expect("json"));
    } else {
        let pct = |x: f64| format!("{:.1}%", x * 100.0);
        let pts = |x: f64| format!("{:+.1}", x * 100.0);
        println!(
            "{:<16} {:<20} {:<24} {:<12} {:>9} {:>9} {:>9} {:>18}",
            "model", "variant", "condition / gap", "metric", "baseline", "candidate", "change", "95% CI (pts)"
        );
        for c in &changes {
            println!(
                "{:<16} {:<20} {:<24} {:<12} {:>9} {:>9} {:>9} {:>18}{}",
                c.model,
                c.variant,
                c.what,
                c.metric,
                pct(c.baseline),
                pct(c.candidate),
                pts(c.change.rate),
                format!("[{}, {}]", pts(c.change.lo), pts(c.change.hi)),
                if c.flagged { "  CHANGED" } else { "" }
            );
        }
        println!(
            "{flagged} of {} changes flagged (interval excludes 0 and |change| ≥ {:.1} pts)",
            changes.len(),
            a.threshold * 100.0
        );
    }
    if flagged > 0 && a.fail_on_regression {
        exit::FAILURE
    } else {
        exit::OK
    }
}
