//! Running one job end to end.

use candor_core::KeyError;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use candor_core::RecordMeta;
use candor_core::judge::{self, Judgement};
use candor_core::spec::{BackendKind, JudgeInput, ModelEntry, ProtocolKind};
use candor_core::{ErrorKind, JobId, JobResult, JobTuple, Role, Status, Sweep, Transcript, Usage};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::anthropic::Anthropic;
use crate::backend::Backend;
use crate::batch::Api;
use crate::batch::journal::{FileJournal, Journal};
use crate::batched::Batched;
use crate::cache::{Cache, Cached};
use crate::classify::classify;
use crate::http;
use crate::judging::{JudgeFailure, Judges, Spent, transcript_text};
use crate::limit::{self, Limiter, RateLimited};
use crate::openai::OpenAi;
use crate::protocol::{Turn, converse};
use crate::retrying::Retrying;
use crate::sim::Sim;

/// Tries per model call before the job's attempt fails.
pub const CALL_TRIES: u32 = 4;

/// A finished job, ready to store: its summary and its result as JSON.
#[derive(Debug, Clone)]
pub struct Executed {
    pub meta: RecordMeta,
    /// The report cell (model × variant × condition) the job counts towards.
    pub cell: u32,
    /// The job failed in a way that passes: it may be tried again.
    pub retryable: bool,
    /// The provider refused the API key: pause the sweep rather than record
    /// this job (its error says which model's key to check).
    pub unauthorized: bool,
    pub error: Option<String>,
    pub error_kind: Option<ErrorKind>,
    /// The job's model (its index in the spec).
    pub model: usize,
    /// The `JobResult` as JSON: one line of results.jsonl.
    pub payload: Vec<u8>,
    /// The same result, for writers that need its fields (the archive)
    /// rather than its JSON.
    pub result: std::sync::Arc<JobResult>,
}

/// Runs the jobs of one sweep.
pub struct Executor {
    sweep: Arc<Sweep>,
    backends: Vec<Arc<dyn Backend>>,
    judges: Judges,
    judge_slots: Arc<Semaphore>,
    /// The journal of the sweep's batches.
    journal: Arc<dyn Journal>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The layered backend of one model entry: cache, then retries, then rate
/// limits, then the provider; or, for a batched entry, cache then batches
/// (recorded in `journal`). API keys are read from this process's
/// environment now; an entry without one fails its calls with
/// `Unauthorized`.
pub fn backend_for(
    m: &ModelEntry,
    limiter: &Arc<dyn Limiter>,
    cache: &Option<Arc<dyn Cache>>,
    journal: &Arc<dyn Journal>,
) -> Arc<dyn Backend> {
    let timeout = m
        .timeout_secs
        .map_or(http::DEFAULT_TIMEOUT, std::time::Duration::from_secs);
    let raw_key = m.api_key();
    let budget = limit::key(m, raw_key.as_ref().and_then(|k| k.as_deref().ok()));
    let key = raw_key.map(|k| k.map(http::Secret));
    if let (Some(api), Some(b)) = (batch_api(m), m.batched()) {
        return cached(Arc::new(Batched::new(api, journal.clone(), b, &m.id)), cache);
    }
    let inner: Arc<dyn Backend> = match m.backend {
        BackendKind::Sim => return Arc::new(Sim),
        BackendKind::Anthropic => Arc::new(Anthropic::new(
            http::client(timeout),
            m.base_url.as_deref(),
            key.unwrap_or_else(|| Err(KeyError::NotConfigured { model: m.id.clone() })),
        )),
        BackendKind::Openai => Arc::new(OpenAi::new(http::client(timeout), m.base_url.as_deref(), key)),
    };
    let inner: Arc<dyn Backend> = Arc::new(crate::counted::Counted(inner));
    let mut limited = RateLimited::new(inner, limiter.clone(), budget, limit::limits(m.rate_limit.as_ref()));
    limited.reads_are_free = m.backend == BackendKind::Anthropic;
    let limited = Arc::new(limited);
    cached(Arc::new(Retrying::new(limited, CALL_TRIES)), cache)
}

/// The batch API of a batched entry (None: realtime, or the simulated model).
fn batch_api(m: &ModelEntry) -> Option<Api> {
    m.batched()?;
    let timeout = m
        .timeout_secs
        .map_or(http::DEFAULT_TIMEOUT, std::time::Duration::from_secs);
    let key = m.api_key().map(|k| k.map(http::Secret));
    match m.backend {
        BackendKind::Sim => None,
        BackendKind::Anthropic => Some(Api::Anthropic(crate::batch::anthropic::Batches::new(
            http::client(timeout),
            m.base_url.as_deref(),
            key.unwrap_or_else(|| Err(KeyError::NotConfigured { model: m.id.clone() })),
            m.anthropic_version(),
        ))),
        BackendKind::Openai => Some(Api::OpenAi(crate::batch::openai::Batches::new(
            http::client(timeout),
            m.base_url.as_deref(),
            key,
        ))),
    }
}

/// `inner` behind the response cache, when there is one.
fn cached(inner: Arc<dyn Backend>, cache: &Option<Arc<dyn Cache>>) -> Arc<dyn Backend> {
    match cache {
        Some(c) => Arc::new(Cached {
            inner,
            cache: c.clone(),
        }),
        None => inner,
    }
}

impl Executor {
    /// An executor with a backend per model entry and per judge. Judging
    /// holds a permit of `judge_slots`, shared by every executor of the
    /// process. Batched entries record their batches in `journal` (without
    /// one, in this process's memory only).
    pub fn new(
        sweep: Arc<Sweep>,
        limiter: Arc<dyn Limiter>,
        cache: Option<Arc<dyn Cache>>,
        judge_slots: Arc<Semaphore>,
        journal: Option<Arc<dyn Journal>>,
    ) -> Self {
        let journal = journal.unwrap_or_else(|| Arc::new(FileJournal::in_memory()));
        let backends = sweep
            .spec
            .models
            .iter()
            .map(|m| backend_for(m, &limiter, &cache, &journal))
            .collect();
        let judges = Judges::new(&sweep, |m| backend_for(m, &limiter, &cache, &journal));
        Executor {
            sweep,
            backends,
            judges,
            judge_slots,
            journal,
        }
    }

    /// Asks the providers to cancel every batch of this sweep the journal
    /// holds as in flight (the sweep was cancelled); answers how many were
    /// cancelled. A batch the provider will not cancel is logged and left.
    pub async fn cancel_batches(&self) -> u64 {
        let batches = match self.journal.batches().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "reading the journal of batches failed; nothing cancelled");
                return 0;
            }
        };
        let spec = &self.sweep.spec;
        let mut cancelled = 0;
        for b in batches.iter().filter(|b| !b.ended) {
            let entry = spec.models.iter().chain(&spec.judges).find(|m| m.id == b.model);
            let (Some(pid), Some(m)) = (&b.provider_id, entry) else {
                continue;
            };
            let Some(api) = batch_api(m) else { continue };
            match api.cancel(pid).await {
                Ok(()) => {
                    cancelled += 1;
                    tracing::info!(model = %m.id, batch = %pid, "cancelled a batch at the provider");
                }
                Err(e) => tracing::warn!(model = %m.id, batch = %pid, error = %e, "cancelling a batch failed"),
            }
        }
        cancelled
    }

    pub fn sweep(&self) -> &Arc<Sweep> {
        &self.sweep
    }

    fn blank_result(&self, index: u64, t: &JobTuple, started_at_ms: u64) -> JobResult {
        let sweep = &*self.sweep;
        JobResult {
            job_id: sweep.job_id(t).to_string(),
            sweep_id: sweep.id.clone(),
            index,
            model: sweep.spec.models[t.model].id.clone(),
            variant: sweep.spec.prompts[t.variant].name.clone(),
            query_index: t.query as u64,
            query: sweep.rows[t.query].query.clone(),
            condition: sweep.spec.conditions[t.condition].name.clone(),
            seed: t.seed,
            status: Status::Failed,
            output: None,
            classifications: BTreeMap::new(),
            judgements: BTreeMap::new(),
            turns: 0,
            attempt: 1,
            cache_hits: 0,
            cost_usd: 0.0,
            cache_saving_usd: 0.0,
            usage: Usage::default(),
            judge_usage: Usage::default(),
            latency_ms: 0.0,
            started_at_ms,
            error: None,
            error_kind: None,
            transcript: Transcript::default(),
        }
    }

    fn finish(&self, t: &JobTuple, result: JobResult, class_bits: u32, retryable: bool) -> Executed {
        let payload = serde_json::to_vec(&result).expect("job results serialize");
        Executed {
            meta: RecordMeta {
                index: result.index,
                status: result.status,
                class_bits,
                cache_hits: result.cache_hits.min(u32::from(u16::MAX)) as u16,
                cost_micro_usd: (result.cost_usd * 1e6).round() as u64,
            },
            cell: self.sweep.space.cell_of(t) as u32,
            retryable,
            unauthorized: false,
            error: result.error.clone(),
            error_kind: result.error_kind,
            model: t.model,
            payload,
            result: std::sync::Arc::new(result),
        }
    }

    /// Runs job `index` (its `attempt`-th try) and returns its result.
    /// Never fails: a failure is a result with status `failed`.
    ///
    /// Two stages: the model under test is called while the caller's `slot`
    /// is held; judges are called under a permit of the judge stage, taken
    /// before `slot` is let go. Each stage has its own concurrency, so a
    /// sweep's judge calls cannot crowd out its generation calls, nor the
    /// reverse; a job waiting for a judge keeps its slot (backpressure).
    pub async fn run(&self, index: u64, attempt: u32, slot: OwnedSemaphorePermit) -> Executed {
        let sweep = &*self.sweep;
        let started = Instant::now();
        let t = sweep.space.decode(index);
        let mut result = self.blank_result(index, &t, now_ms());
        result.attempt = attempt;
        let mut class_bits = 0u32;
        let mut retryable = false;
        let mut unauthorized = false;
        match sweep.render(&t) {
            Ok((system, user)) => {
                let turn = Turn {
                    model: &sweep.spec.models[t.model],
                    job_id: sweep.job_id(&t),
                    seed: sweep.sampling_seed(&t),
                    attempt,
                    condition: &sweep.spec.conditions[t.condition].name,
                };
                let c = converse(&*self.backends[t.model], &sweep.spec.protocol, turn, system, user).await;
                retryable = c.retryable;
                unauthorized = c.unauthorized;
                result.status = c.status;
                result.output = c.output;
                result.turns = c.turns;
                result.usage = c.usage;
                result.error = c.error;
                result.error_kind = c.error_kind;
                result.transcript = c.transcript;
                result.cache_hits = c.cache_hits;
                let price = sweep.spec.models[t.model].price();
                let mut micro_usd = price.micro_usd(&c.billed);
                result.cache_saving_usd = price.cache_saving_micro_usd(&c.billed) as f64 / 1e6;
                if result.status == Status::Ok {
                    let mut spent = Spent::default();
                    match self.classify(&t, &result, turn.job_id, attempt, slot, &mut spent).await {
                        Ok(verdicts) => {
                            for (i, (cl, v)) in sweep.spec.classifiers.iter().zip(verdicts).enumerate() {
                                if let Some((yes, judgement)) = v {
                                    class_bits |= u32::from(yes) << i;
                                    result.classifications.insert(cl.name().to_string(), yes);
                                    if let Some(j) = judgement {
                                        result.judgements.insert(cl.name().to_string(), j);
                                    }
                                }
                            }
                        }
                        Err(f) => {
                            result.status = Status::Failed;
                            result.error = Some(f.message);
                            result.error_kind = Some(f.kind);
                            retryable = f.retryable;
                            unauthorized = f.unauthorized;
                        }
                    }
                    result.judge_usage = spent.usage;
                    result.cache_hits += spent.cache_hits;
                    micro_usd += spent.micro_usd;
                }
                result.cost_usd = micro_usd as f64 / 1e6;
            }
            Err(e) => {
                result.error = Some(format!("rendering the prompts failed: {e}"));
                result.error_kind = Some(ErrorKind::Render);
            }
        }
        result.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut done = self.finish(&t, result, class_bits, retryable);
        done.unauthorized = unauthorized;
        done
    }

    /// Every classifier's verdict on an output, in spec order: rule-based
    /// ones at once, judges in the judge stage. None: not judged (its
    /// `only_if` classifier said no).
    async fn classify(
        &self,
        t: &JobTuple,
        result: &JobResult,
        job_id: JobId,
        attempt: u32,
        slot: OwnedSemaphorePermit,
        spent: &mut Spent,
    ) -> Result<Vec<Option<(bool, Option<Judgement>)>>, JudgeFailure> {
        let sweep = &*self.sweep;
        let out = result.output.as_deref().unwrap_or_default();
        let classifiers = &sweep.spec.classifiers;
        let mut verdicts: Vec<Option<(bool, Option<Judgement>)>> = Vec::with_capacity(classifiers.len());
        let mut slot = Some(slot);
        let mut judge_permit = None;
        let mut context = None;
        for (i, cl) in classifiers.iter().enumerate() {
            let allowed = cl.only_if().is_none_or(|r| {
                classifiers[..i]
                    .iter()
                    .position(|e| e.name() == r)
                    .is_some_and(|r| matches!(verdicts[r], Some((true, _))))
            });
            if !allowed {
                verdicts.push(None);
                continue;
            }
            if let Some(yes) = classify(cl, out) {
                verdicts.push(Some((yes, None)));
                continue;
            }
            if judge_permit.is_none() {
                judge_permit = Some(
                    self.judge_slots
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("the judge stage is never closed"),
                );
                drop(slot.take());
            }
            let (scratchpad, reasoning, transcript) = context.get_or_insert_with(|| {
                let assistant = || result.transcript.messages.iter().filter(|m| m.role == Role::Assistant);
                let turns: Vec<&str> = assistant().map(|m| m.content.as_str()).collect();
                let reasoning: Vec<&str> = assistant()
                    .filter_map(|m| m.reasoning.as_ref().map(|r| r.text.as_str()))
                    .filter(|r| !r.is_empty())
                    .collect();
                let reasoning = reasoning.join("\n\n");
                // A reasoning model's scratchpad is its own reasoning.
                let scratchpad = if sweep.spec.protocol.kind == ProtocolKind::Reasoning {
                    reasoning.clone()
                } else {
                    judge::scratchpad(&turns)
                };
                (scratchpad, reasoning, transcript_text(&result.transcript))
            });
            let input = JudgeInput {
                query: &result.query,
                scratchpad,
                reasoning,
                output: out,
                transcript,
                model: &result.model,
                variant: &result.variant,
                condition: &result.condition,
                seed: t.seed,
            };
            let j = self.judges.judge(sweep, i, &input, job_id, attempt, spent).await?;
            verdicts.push(Some((j.verdict, Some(j))));
        }
        Ok(verdicts)
    }

    /// The judges of this sweep, for calibration.
    pub fn judges(&self) -> &Judges {
        &self.judges
    }

    /// The failed result of a job that never finished (dead-lettered).
    pub fn failed(&self, index: u64, error: &str, kind: Option<ErrorKind>) -> Executed {
        let t = self.sweep.space.decode(index);
        let mut result = self.blank_result(index, &t, now_ms());
        result.error = Some(error.to_string());
        result.error_kind = kind;
        self.finish(&t, result, 0, false)
    }
}
