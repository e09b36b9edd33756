//! `candor calibrate`: runs one of a spec's classifiers over human-labelled
//! examples and prints how well it agrees: accuracy, precision and recall
//! at its threshold, and AUROC from the vote fractions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candor_core::JobId;
use candor_core::judge::{Confusion, auroc};
use candor_core::spec::{ClassifierSpec, JudgeInput};
use candor_core::stats::{Z95, wilson};
use candor_exec::cache::{Cache, FileCache};
use candor_exec::classify::classify;
use candor_exec::execute::backend_for;
use candor_exec::judging::{Judges, Spent};
use candor_exec::limit::{Limiter, LocalLimiter};
use serde::Deserialize;
use serde_json::json;

use crate::exit;

/// The largest labels file read.
const MAX_LABELS_BYTES: u64 = 64 * 1024 * 1024;
/// The most examples in one labels file.
const MAX_EXAMPLES: usize = 100_000;

#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// The classifier's name in the spec (e.g. alignment_faking).
    classifier: String,
    /// Human-labelled examples, one JSON object per line:
    /// {"query": …, "scratchpad": …, "output": …, "label": true|false} (scratchpad and transcript optional).
    #[arg(long)]
    labels: PathBuf,
    /// The spec that defines the classifier and its judge model.
    #[arg(long)]
    spec: PathBuf,
    /// Examples judged at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: u32,
    /// The store whose response cache answers repeated judge calls.
    #[arg(long, env = "CANDOR_STORE", default_value = ".candor/store")]
    store: PathBuf,
    /// Call the judge even for prompts the response cache has answered before.
    #[arg(long)]
    no_cache: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Example {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    query: String,
    #[serde(default)]
    scratchpad: String,
    /// A reasoning model's own reasoning (the scratchpad when absent).
    #[serde(default)]
    reasoning: Option<String>,
    output: String,
    #[serde(default)]
    transcript: Option<String>,
    label: bool,
}

fn read_labels(path: &Path) -> Result<Vec<Example>, String> {
    let text = candor_core::spec::read_limited(path, MAX_LABELS_BYTES, "labels file")?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if out.len() == MAX_EXAMPLES {
            return Err(format!("{}: more than {MAX_EXAMPLES} examples", path.display()));
        }
        let ex: Example = serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        out.push(ex);
    }
    if out.is_empty() {
        return Err(format!("{}: no examples", path.display()));
    }
    Ok(out)
}

/// One example's outcome: the vote fraction (1 or 0 for a rule), or why none.
type Scored = Result<f64, String>;

pub async fn calibrate(args: CalibrateArgs) -> i32 {
    let sweep = match super::load_to_run(&args.spec, None, &super::Scale::default()) {
        Ok(s) => Arc::new(s),
        Err(code) => return code,
    };
    let Some(ci) = sweep.spec.classifiers.iter().position(|c| c.name() == args.classifier) else {
        let names: Vec<&str> = sweep.spec.classifiers.iter().map(ClassifierSpec::name).collect();
        eprintln!(
            "error: {}: no classifier named `{}` (it has: {})",
            args.spec.display(),
            args.classifier,
            names.join(", ")
        );
        return exit::BAD_INPUT;
    };
    let examples = match read_labels(&args.labels) {
        Ok(e) => Arc::new(e),
        Err(e) => {
            eprintln!("error: --labels {e}");
            return exit::BAD_INPUT;
        }
    };
    let cache = match open_cache(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILURE;
        }
    };
    let limiter: Arc<dyn Limiter> = Arc::new(LocalLimiter::default());
    let journal: Arc<dyn candor_exec::batch::journal::Journal> =
        Arc::new(candor_exec::batch::journal::FileJournal::in_memory());
    let judges = Arc::new(Judges::new(&sweep, |m| backend_for(m, &limiter, &cache, &journal)));
    let threshold = sweep.spec.classifiers[ci].judge().map_or(0.5, |j| j.threshold);
    let scored = score_all(&sweep, ci, &judges, &examples, args.concurrency as usize).await;

    let mut points = Vec::new();
    let mut failures = Vec::new();
    for (ex, s) in examples.iter().zip(scored) {
        match s {
            Some(Ok(f)) => points.push((f, ex.label)),
            Some(Err(e)) => failures.push(e),
            None => failures.push("not judged".into()),
        }
    }
    let m = Metrics::of(&points, threshold);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "classifier": args.classifier,
                "threshold": threshold,
                "examples": examples.len(),
                "judged": points.len(),
                "not_judged": failures.len(),
                "positives": m.c.tp + m.c.fn_,
                "confusion": {"tp": m.c.tp, "fp": m.c.fp, "tn": m.c.tn, "fn": m.c.fn_},
                "accuracy": m.accuracy, "precision": m.precision, "recall": m.recall,
                "auroc": m.auroc,
            }))
            .expect("json")
        );
    } else {
        print!(
            "{}",
            m.table(&args.classifier, threshold, examples.len(), failures.len())
        );
        for e in failures.iter().take(5) {
            eprintln!("not judged: {e}");
        }
    }
    if points.is_empty() {
        eprintln!("error: no example could be judged");
        return exit::FAILURE;
    }
    exit::OK
}

/// The response cache in `--store`, unless `--no-cache`.
fn open_cache(args: &CalibrateArgs) -> Result<Option<Arc<dyn Cache>>, String> {
    if args.no_cache {
        return Ok(None);
    }
    std::fs::create_dir_all(&args.store).map_err(|e| format!("--store {}: {e}", args.store.display()))?;
    let path = args.store.join("responses.log");
    match FileCache::open(&path) {
        Ok(c) => Ok(Some(Arc::new(c))),
        Err(e) => Err(format!("response cache {}: {e}", path.display())),
    }
}

/// Each example's score (a rule's verdict as 0 or 1, or the judge's vote
/// fraction), `concurrency` at a time, in the examples' order.
async fn score_all(
    sweep: &Arc<candor_core::Sweep>,
    ci: usize,
    judges: &Arc<Judges>,
    examples: &Arc<Vec<Example>>,
    concurrency: usize,
) -> Vec<Option<Scored>> {
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..examples.len() {
        let (sweep, judges, examples, slots) = (sweep.clone(), judges.clone(), examples.clone(), slots.clone());
        tasks.spawn(async move {
            let _slot = slots.acquire().await.expect("never closed");
            (i, score(&sweep, ci, &judges, &examples[i], i).await)
        });
    }
    let mut scored: Vec<Option<Scored>> = vec![None; examples.len()];
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok((i, s)) => scored[i] = Some(s),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    scored
}

/// One example's score.
async fn score(sweep: &candor_core::Sweep, ci: usize, judges: &Judges, ex: &Example, i: usize) -> Scored {
    let cl = &sweep.spec.classifiers[ci];
    if let Some(yes) = classify(cl, &ex.output) {
        return Ok(f64::from(u8::from(yes)));
    }
    let transcript = ex
        .transcript
        .clone()
        .unwrap_or_else(|| format!("User: {}\n\nAssistant: {}\n\n{}", ex.query, ex.scratchpad, ex.output));
    let input = JudgeInput {
        query: &ex.query,
        scratchpad: &ex.scratchpad,
        reasoning: ex.reasoning.as_deref().unwrap_or(&ex.scratchpad),
        output: &ex.output,
        transcript: &transcript,
        model: "",
        variant: "",
        condition: "",
        seed: 0,
    };
    let id = ex.id.clone().unwrap_or_else(|| format!("example-{i}"));
    let h = candor_core::hash::parts("candor.calibrate.v1", &[id.as_bytes()]);
    let mut job = [0u8; 16];
    job.copy_from_slice(&h[..16]);
    let mut spent = Spent::default();
    judges
        .judge(sweep, ci, &input, JobId(job), 1, &mut spent)
        .await
        .map(|j| j.fraction)
        .map_err(|f| f.message)
}

/// The figures `calibrate` prints: the confusion matrix at the threshold and AUROC.
struct Metrics {
    c: Confusion,
    accuracy: Option<f64>,
    precision: Option<f64>,
    recall: Option<f64>,
    auroc: Option<f64>,
}

impl Metrics {
    fn of(points: &[(f64, bool)], threshold: f64) -> Metrics {
        let c = Confusion::of(points, threshold);
        let ratio = |(a, b): (u64, u64)| (b > 0).then(|| a as f64 / b as f64);
        Metrics {
            c,
            accuracy: ratio(c.accuracy()),
            precision: ratio(c.precision()),
            recall: ratio(c.recall()),
            auroc: auroc(points),
        }
    }

    fn table(&self, name: &str, threshold: f64, examples: usize, failed: usize) -> String {
        let row = |what: &str, k: u64, n: u64| {
            if n == 0 {
                return format!("{what:<10} —  (n = 0)\n");
            }
            let w = wilson(k, n, Z95);
            format!("{what:<10} {:.3}  [{:.3}, {:.3}]  ({k}/{n})\n", w.rate, w.lo, w.hi)
        };
        let mut s = format!(
            "classifier {name}: {} of {examples} examples judged ({failed} not), threshold {threshold}\n\
             confusion: {} true positive, {} false positive, {} true negative, {} false negative\n\n\
             {:<10} value  [95% CI]\n",
            examples - failed,
            self.c.tp,
            self.c.fp,
            self.c.tn,
            self.c.fn_,
            "metric"
        );
        s.push_str(&row(
            "accuracy",
            self.c.tp + self.c.tn,
            self.c.tp + self.c.tn + self.c.fp + self.c.fn_,
        ));
        s.push_str(&row("precision", self.c.tp, self.c.tp + self.c.fp));
        s.push_str(&row("recall", self.c.tp, self.c.tp + self.c.fn_));
        match self.auroc {
            Some(a) => s.push_str(&format!("{:<10} {a:.3}  (from vote fractions)\n", "AUROC")),
            None => s.push_str(&format!(
                "{:<10} —  (needs both a positive and a negative label)\n",
                "AUROC"
            )),
        }
        s
    }
}
