//! `candor compare BASELINE CANDIDATE`: what changed between two reports.

use std::path::{Path, PathBuf};

use candor_core::compare::compare as diff;
use candor_core::report::Report;

use crate::exit;

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The baseline: a report.json, or the directory holding it.
    baseline: PathBuf,
    /// The candidate: a report.json, or the directory holding it.
    candidate: PathBuf,
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

fn read(p: &Path, which: &str) -> Result<Report, String> {
    let file = if p.is_dir() {
        p.join("report.json")
    } else {
        p.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{which} {}: {e}", file.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{which} {}: not a candor report: {e}", file.display()))
}

pub fn compare(a: CompareArgs) -> i32 {
    if !(0.0..=1.0).contains(&a.threshold) {
        eprintln!("error: --threshold: {} is not between 0 and 1", a.threshold);
        return exit::BAD_INPUT;
    }
    let (base, cand) = match (read(&a.baseline, "baseline"), read(&a.candidate, "candidate")) {
        (Ok(b), Ok(c)) => (b, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
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
            "{:<16} {:<20} {:<24} {:<10} {:>9} {:>9} {:>9} {:>18}",
            "model", "variant", "condition / gap", "metric", "baseline", "candidate", "change", "95% CI (pts)"
        );
        for c in &changes {
            println!(
                "{:<16} {:<20} {:<24} {:<10} {:>9} {:>9} {:>9} {:>18}{}",
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
