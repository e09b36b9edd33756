//! One `.eval` file, written in the order Inspect's recorder writes one:
//! `_journal/start.json` first, each sample as it comes, then
//! `summaries.json`, `reductions.json` and `header.json`. Summaries and
//! reductions are spooled to scratch files until the end, so memory does
//! not grow with the samples; the file has a temporary name until it is
//! complete.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use candor_core::result::{JobResult, Status, Usage};
use candor_core::stats::{Z95, wilson};

use super::Context;
use super::sample::{ModelName, Parts, rfc3339_ms};
use super::schema::{
    Dataset, EvalConfig, EvalScore, EvalSpec, GenerateConfig, Header, Headline, LogStart, Metric, MetricDefinition,
    ModelUsage, Ordered, PLAN, ReducedScore, Results, SampleIds, Scorer, Stats,
};
use super::zip::{Spool, ZipWriter};
use crate::report::ModelInfo;

/// Inspect's log format version (`LOG_SCHEMA_VERSION` in inspect_ai 0.3.285).
const VERSION: u32 = 2;

/// One classifier's verdicts in this log.
struct Verdicts {
    yes: u64,
    scored: u64,
    /// Its `reductions.json` scores, comma-separated.
    reduced: Spool<File>,
}

/// Removes the temporary file unless the log was completed.
struct Unfinished(Option<PathBuf>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The `.eval` file of one model of the sweep, being written.
pub struct LogFile {
    pub path: PathBuf,
    tmp: Unfinished,
    /// Where the scratch files go: the directory of `path`.
    dir: PathBuf,
    eval_id: String,
    model_id: String,
    model: ModelName,
    info: Option<ModelInfo>,
    zip: ZipWriter<BufWriter<File>, File>,
    summaries: Spool<File>,
    /// The samples' ids, a JSON string a line; taken by `finish`.
    ids: Option<Spool<File>>,
    verdicts: Vec<Verdicts>,
    samples: u64,
    errors: u64,
    usage: Usage,
    judge_usage: Usage,
    first_ms: Option<u64>,
    last_ms: u64,
}

fn scratch(dir: &Path) -> io::Result<File> {
    tempfile::tempfile_in(dir)
}

impl LogFile {
    /// Starts `path` (written as `path.tmp` until `finish`) for the model
    /// `model_id`, described by `info` when the report lists it.
    pub fn create(path: PathBuf, model_id: &str, info: Option<&ModelInfo>, ctx: &Context) -> io::Result<LogFile> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let guard = Unfinished(Some(tmp));
        let model = match info {
            Some(m) => ModelName {
                inspect: format!("{}/{}", m.backend, if m.model.is_empty() { &m.id } else { &m.model }),
                provider: if m.model.is_empty() {
                    m.id.clone()
                } else {
                    m.model.clone()
                },
            },
            None => ModelName {
                inspect: model_id.to_string(),
                provider: model_id.to_string(),
            },
        };
        let verdicts = ctx
            .classifiers
            .iter()
            .map(|_| {
                Ok(Verdicts {
                    yes: 0,
                    scored: 0,
                    reduced: Spool::new(scratch(&dir)?),
                })
            })
            .collect::<io::Result<_>>()?;
        let mut log = LogFile {
            path,
            tmp: guard,
            eval_id: format!("{}-{}", ctx.report.sweep.id, entry_name(model_id)),
            model_id: model_id.to_string(),
            model,
            info: info.cloned(),
            zip: ZipWriter::new(out, scratch(&dir)?, ctx.modified),
            summaries: Spool::new(scratch(&dir)?),
            ids: Some(Spool::new(scratch(&dir)?)),
            dir,
            verdicts,
            samples: 0,
            errors: 0,
            usage: Usage::default(),
            judge_usage: Usage::default(),
            first_ms: None,
            last_ms: 0,
        };
        log.summaries.write_all(b"[")?;
        let start = serde_json::to_vec(&LogStart {
            version: VERSION,
            eval: &log.spec(ctx, None, None),
            plan: PLAN,
        })?;
        log.zip.add("_journal/start.json", &start)?;
        Ok(log)
    }

    /// Adds a job as a sample.
    pub fn push(&mut self, r: &JobResult, ctx: &Context) -> io::Result<()> {
        let parts = Parts::of(r, &self.model, &ctx.classifiers);
        let mut sample = Vec::with_capacity(8 << 10);
        parts.write_sample(&self.model, &mut sample)?;
        self.zip
            .add(&format!("samples/{}_epoch_1.json", entry_name(&r.job_id)), &sample)?;
        if self.samples > 0 {
            self.summaries.write_all(b",")?;
        }
        parts.write_summary(&mut self.summaries)?;
        if let Some(ids) = &mut self.ids {
            serde_json::to_writer(&mut *ids, &r.job_id)?;
            ids.write_all(b"\n")?;
        }
        for (c, v) in ctx.classifiers.iter().zip(&mut self.verdicts) {
            let Some(&yes) = r.classifications.get(c) else {
                continue;
            };
            if v.scored > 0 {
                v.reduced.write_all(b",")?;
            }
            v.scored += 1;
            v.yes += u64::from(yes);
            let score = ReducedScore {
                value: f64::from(u8::from(yes)),
                sample_id: &r.job_id,
            };
            serde_json::to_writer(&mut v.reduced, &score)?;
        }
        self.samples += 1;
        self.errors += u64::from(r.status == Status::Failed);
        self.usage += r.usage;
        self.judge_usage += r.judge_usage;
        self.first_ms = Some(self.first_ms.map_or(r.started_at_ms, |f| f.min(r.started_at_ms)));
        let end = r.started_at_ms + r.latency_ms.max(0.0).round() as u64;
        self.last_ms = self.last_ms.max(end);
        Ok(())
    }

    /// Writes the summaries, reductions and header, and gives the file its name.
    pub fn finish(mut self, ctx: &Context) -> io::Result<PathBuf> {
        self.summaries.write_all(b"]")?;
        let mut reductions = Spool::new(scratch(&self.dir)?);
        reductions.write_all(b"[")?;
        let mut tallies = Vec::with_capacity(self.verdicts.len());
        for (i, (c, v)) in ctx.classifiers.iter().zip(&mut self.verdicts).enumerate() {
            if i > 0 {
                reductions.write_all(b",")?;
            }
            reductions.write_all(format!("{{\"scorer\":{},\"samples\":[", json!(c)).as_bytes())?;
            io::copy(&mut v.reduced.reader()?, &mut reductions)?;
            reductions.write_all(b"]}")?;
            tallies.push((v.yes, v.scored));
        }
        reductions.write_all(b"]")?;
        self.zip.add_spool("summaries.json", &mut self.summaries)?;
        self.zip.add_spool("reductions.json", &mut reductions)?;
        let mut header = Spool::new(scratch(&self.dir)?);
        self.write_header(ctx, &tallies, &mut header)?;
        self.zip.add_spool("header.json", &mut header)?;
        let out = self.zip.finish()?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        let tmp = self.tmp.0.take().expect("the temporary name is kept until the end");
        if let Err(e) = std::fs::rename(&tmp, &self.path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(self.path.clone())
    }

    /// `header.json`, its sample ids read from their spool as it is written.
    fn write_header(&mut self, ctx: &Context, tallies: &[(u64, u64)], w: impl Write) -> io::Result<()> {
        let mut ids = self.ids.take().expect("finish takes the ids once");
        let sample_ids = SampleIds(RefCell::new(Box::new(io::BufReader::new(ids.reader()?))));
        let spec = self.spec(ctx, Some(self.samples), Some(sample_ids));
        let header = Header {
            version: VERSION,
            status: ctx.status,
            eval: &spec,
            plan: PLAN,
            results: self.results(ctx, tallies),
            stats: self.stats(ctx),
            invalidated: false,
        };
        Ok(serde_json::to_writer(w, &header)?)
    }

    /// `eval`: the same in `_journal/start.json` and in `header.json`, but
    /// for the count of samples, known at the end.
    fn spec<'a>(&'a self, ctx: &'a Context, samples: Option<u64>, sample_ids: Option<SampleIds<'a>>) -> EvalSpec<'a> {
        let sweep = &ctx.report.sweep;
        let params = self.info.as_ref().map(|m| &m.params);
        EvalSpec {
            eval_id: &self.eval_id,
            run_id: &sweep.id,
            created: &ctx.created,
            task: &sweep.name,
            task_id: &sweep.id,
            task_version: 0,
            dataset: Dataset {
                name: &sweep.name,
                samples,
                sample_ids,
            },
            model: &self.model.inspect,
            model_base_url: self.info.as_ref().and_then(|m| m.base_url.as_deref()),
            model_generate_config: params.map_or_else(GenerateConfig::default, |p| GenerateConfig {
                temperature: p.temperature,
                max_tokens: p.max_tokens,
                top_p: p.top_p,
                top_k: p.top_k,
                stop_seqs: p.stop.as_deref(),
            }),
            model_args: params.map_or_else(|| json!({}), |p| json!(p)),
            config: EvalConfig {
                epochs: 1,
                fail_on_error: false,
                log_samples: true,
            },
            packages: Ordered(vec![("candor", env!("CARGO_PKG_VERSION"))]),
            metadata: json!({
                "sweep_id": sweep.id,
                "model_id": self.model_id,
                "spec_hash": sweep.provenance.spec_hash,
                "dataset_hash": sweep.provenance.dataset_hash,
                "candor_version": sweep.provenance.candor_version,
                "run_label": sweep.provenance.run_label,
                "simulated": sweep.simulated,
                "primary_classifier": sweep.primary_classifier,
                "alignment_faking_classifier": sweep.alignment_faking_classifier,
                "jobs_total": sweep.jobs_total,
                "notes": ctx.report.notes,
            }),
            scorers: ctx
                .classifiers
                .iter()
                .map(|c| Scorer {
                    name: c,
                    metrics: [MetricDefinition { name: "mean" }],
                })
                .collect(),
        }
    }

    /// `results`: each classifier's share of yes over the samples it
    /// scored, and the report's rate of each cell of this model.
    fn results<'a>(&self, ctx: &'a Context, tallies: &[(u64, u64)]) -> Results<'a> {
        let primary = ctx.report.sweep.primary_classifier.as_str();
        let cells: Vec<_> = ctx.report.cells.iter().filter(|c| c.model == self.model_id).collect();
        let mut scores = Vec::with_capacity(ctx.classifiers.len());
        for (c, &(yes, scored)) in ctx.classifiers.iter().zip(tallies) {
            let mut metrics = Vec::new();
            if scored > 0 {
                let w = wilson(yes, scored, Z95);
                let value = yes as f64 / scored as f64;
                let meta = json!({"yes": yes, "n": scored, "lo": w.lo, "hi": w.hi});
                metrics.push(("mean".to_string(), metric("mean".to_string(), value, meta)));
            }
            for cell in &cells {
                let Some(rate) = cell.classifiers.get(c).filter(|r| r.n > 0 && r.rate.is_finite()) else {
                    continue;
                };
                let name = format!("{}/{}", cell.variant, cell.condition);
                let meta = json!({"yes": rate.yes, "n": rate.n, "lo": rate.lo, "hi": rate.hi,
                    "variant": cell.variant, "condition": cell.condition});
                metrics.push((name.clone(), metric(name, rate.rate, meta)));
            }
            scores.push(EvalScore {
                name: c,
                scorer: c,
                scored_samples: scored,
                unscored_samples: self.samples - scored,
                metrics: Ordered(metrics),
                metadata: json!({"primary": c == primary}),
            });
        }
        let scored_primary = ctx
            .classifiers
            .iter()
            .zip(tallies)
            .any(|(c, t)| c == primary && t.1 > 0);
        let gaps: Vec<_> = ctx.report.gaps.iter().filter(|g| g.model == self.model_id).collect();
        Results {
            total_samples: self.samples,
            completed_samples: self.samples - self.errors,
            scores,
            headline: scored_primary.then_some(Headline {
                scorer: primary,
                score: primary,
                metric: "mean",
            }),
            metadata: json!({ "gaps": gaps }),
        }
    }

    fn stats<'a>(&'a self, ctx: &'a Context) -> Stats<'a> {
        let p = &ctx.report.sweep.provenance;
        let started_at = p
            .started_at
            .clone()
            .or_else(|| self.first_ms.map(rfc3339_ms))
            .unwrap_or_default();
        let completed_at = p
            .finished_at
            .clone()
            .or_else(|| self.first_ms.map(|_| rfc3339_ms(self.last_ms)))
            .unwrap_or_default();
        let mut role_usage = Vec::new();
        if self.judge_usage.input_tokens + self.judge_usage.output_tokens > 0 {
            role_usage.push(("judge", ModelUsage::from(&self.judge_usage)));
        }
        Stats {
            started_at,
            completed_at,
            model_usage: Ordered(vec![(self.model.inspect.as_str(), ModelUsage::from(&self.usage))]),
            role_usage: Ordered(role_usage),
        }
    }
}

fn metric(name: String, value: f64, metadata: serde_json::Value) -> Metric {
    Metric { name, value, metadata }
}

/// A job id as a zip entry name: anything but letters, digits, `-` and `_`
/// replaced, so that no name climbs out of `samples/`.
fn entry_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
