//! `candor compare BASELINE CANDIDATE`: what changed between two reports,
//! each a report.json (or its directory) or a sweep id on a coordinator;
//! `candor compare REPORT --a model=X --b model=Y`: two sides of one report
//! (model against model, variant against variant), with the same intervals.

use std::path::Path;

use candor_proto::v1 as pb;
use candor_report::compare::{Comparison, Options, Selector, compare as diff, compare_within};
use candor_report::report::Report;

use crate::client::Fail;
use crate::exit;

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The baseline: a report.json, the directory holding it, or a sweep id or @FILE holding one (needs --coordinator); with --a and --b, the one report whose two sides are compared.
    baseline: String,
    /// The candidate: a report.json, the directory holding it, or a sweep id or @FILE holding one (needs --coordinator). Not with --a and --b.
    #[arg(required_unless_present = "a")]
    candidate: Option<String>,
    /// The baseline side of one report: the cells of model=X, variant=V, or both (model=X,variant=V); each is compared with the --b cell of the same condition (and of the same variant or model, when not named).
    #[arg(long = "a", value_name = "SELECTOR", requires = "b", conflicts_with = "candidate", value_parser = selector)]
    a: Option<Selector>,
    /// The candidate side of one report, naming the same keys as --a (model=Y, variant=W, or model=Y,variant=W).
    #[arg(long = "b", value_name = "SELECTOR", requires = "a", conflicts_with = "candidate", value_parser = selector)]
    b: Option<Selector>,
    #[command(flatten)]
    client: crate::client::MaybeClientArgs,
    /// Smallest change (as a fraction, 0.05 = 5 points) worth flagging.
    #[arg(long, default_value_t = 0.05, value_parser = fraction)]
    threshold: f64,
    /// Fewest outputs a cell may have on either side; below it the cell is flagged as no data.
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    min_n: u64,
    /// Largest share of failed jobs (0 to 1) a cell or report may have; above it, it is flagged as failed.
    #[arg(long, default_value_t = 0.0, env = "CANDOR_MAX_FAILED", value_parser = fraction)]
    max_failed: f64,
    /// Compare reports of different specs (another name, dataset or set of conditions) instead of refusing.
    #[arg(long)]
    allow_different: bool,
    /// Exit 1 when anything is flagged: a change, a cell without data or with failed jobs, a missing cell.
    #[arg(long)]
    fail_on_regression: bool,
    /// Print the comparison as JSON.
    #[arg(long)]
    json: bool,
}

/// A count of at least 1.
fn at_least_one(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".to_string()),
        Err(e) => Err(format!("{s}: {e}")),
    }
}

/// A selector of one report's cells: `model=X`, `variant=V` or both.
fn selector(s: &str) -> Result<Selector, String> {
    s.parse()
        .map_err(|e: candor_report::compare::SelectorError| e.to_string())
}

/// A fraction from 0 to 1.
fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        Ok(_) => Err(format!("{s} is not between 0 and 1 (a fraction: 0.05 = 5%)")),
        Err(e) => Err(format!("{s}: {e}")),
    }
}

fn is_sweep_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A report from a path, or by sweep id from the coordinator, and where it came from.
async fn load(a: &CompareArgs, arg: &str, which: &str) -> Result<(Report, String), Fail> {
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
    let client = a
        .client
        .client(|| format!("{which} {arg}: no such file; to compare a sweep id, give --coordinator"))?;
    let r = client
        .sweeps()?
        .report(pb::SweepRef {
            sweep_id: arg.to_string(),
        })
        .await
        .map_err(|s| crate::client::rpc_failure(&format!("{which} {arg}"), &s))?
        .into_inner();
    let report = serde_json::from_str(&r.report_json).map_err(|e| {
        Fail(
            exit::FAILURE,
            format!("{which} {arg}: the coordinator sent an unreadable report: {e}"),
        )
    })?;
    Ok((report, format!("sweep {arg}")))
}

fn read(p: &Path, which: &str) -> Result<(Report, String), String> {
    let file = if p.is_dir() {
        p.join("report.json")
    } else {
        p.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{which} {}: {e}", file.display()))?;
    let report =
        serde_json::from_str(&text).map_err(|e| format!("{which} {}: not a candor report: {e}", file.display()))?;
    Ok((report, file.display().to_string()))
}

pub async fn compare(a: CompareArgs) -> i32 {
    let options = Options {
        threshold: a.threshold,
        min_n: a.min_n,
        max_failed: a.max_failed,
    };
    let cmp = match (&a.candidate, &a.a, &a.b) {
        (Some(candidate), None, None) => two_reports(&a, candidate, &options).await,
        (None, Some(sa), Some(sb)) => one_report(&a, sa, sb, &options).await,
        // clap refuses the others: a candidate with --a/--b, one of them alone.
        _ => Err(Fail(
            exit::BAD_INPUT,
            "give a candidate report, or --a and --b to compare two sides of one report".to_string(),
        )),
    };
    let cmp = match cmp {
        Ok(c) => c,
        Err(Fail(code, e)) => {
            eprintln!("error: {e}");
            return code;
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&cmp).expect("json"));
    } else {
        print!("{}", cmp.to_text());
    }
    if cmp.summary.regression && a.fail_on_regression {
        exit::FAILURE
    } else {
        exit::OK
    }
}

/// The changes from the baseline report to the candidate report.
async fn two_reports(a: &CompareArgs, candidate: &str, options: &Options) -> Result<Comparison, Fail> {
    let ((base, base_src), (cand, cand_src)) = match (
        load(a, &a.baseline, "baseline").await,
        load(a, candidate, "candidate").await,
    ) {
        (Ok(b), Ok(c)) => (b, c),
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let mut cmp = diff(&base, &cand, options);
    cmp.baseline.source = base_src;
    cmp.candidate.source = cand_src;
    if !cmp.different.is_empty() {
        let what: Vec<String> = cmp
            .different
            .iter()
            .map(|m| format!("{} `{}` vs `{}`", m.field, m.baseline, m.candidate))
            .collect();
        let what = what.join("; ");
        if !a.allow_different {
            return Err(Fail(
                exit::BAD_INPUT,
                format!(
                    "baseline {} and candidate {} are reports of different specs ({what}); \
                     give --allow-different to compare them anyway",
                    cmp.baseline.source, cmp.candidate.source
                ),
            ));
        }
        eprintln!("warning: comparing reports of different specs ({what})");
    }
    if cmp.changes.is_empty() {
        return Err(Fail(
            exit::BAD_INPUT,
            format!(
                "baseline {} and candidate {} share no model × variant × condition",
                cmp.baseline.source, cmp.candidate.source
            ),
        ));
    }
    Ok(cmp)
}

/// The changes from side --a to side --b of one report.
async fn one_report(a: &CompareArgs, sa: &Selector, sb: &Selector, options: &Options) -> Result<Comparison, Fail> {
    let (report, src) = load(a, &a.baseline, "report").await?;
    let mut cmp =
        compare_within(&report, sa, sb, options).map_err(|e| Fail(exit::BAD_INPUT, format!("report {src}: {e}")))?;
    cmp.baseline.source.clone_from(&src);
    cmp.candidate.source = src;
    Ok(cmp)
}
