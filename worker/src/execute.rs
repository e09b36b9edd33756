//! Running one job end to end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use candor_core::spec::BackendKind;
use candor_core::store::RecordMeta;
use candor_core::{JobResult, Status, Sweep, Transcript, Usage};

use crate::backend::Backend;
use crate::classify::classify;
use crate::protocol::{Turn, converse};
use crate::sim::Sim;

/// A finished job, ready for the store: its summary and its result as JSON.
#[derive(Debug, Clone)]
pub struct Executed {
    pub meta: RecordMeta,
    pub payload: Vec<u8>,
}

/// Runs the jobs of one sweep.
pub struct Executor {
    sweep: Arc<Sweep>,
    backends: Vec<Arc<dyn Backend>>,
}

impl Executor {
    /// An executor with a backend per model entry.
    pub fn new(sweep: Arc<Sweep>) -> Self {
        let sim: Arc<dyn Backend> = Arc::new(Sim);
        let backends = sweep
            .spec
            .models
            .iter()
            .map(|m| match m.backend {
                // Spec loading refuses backends this version does not have.
                BackendKind::Sim | BackendKind::Anthropic | BackendKind::Openai => sim.clone(),
            })
            .collect();
        Executor { sweep, backends }
    }

    /// An executor whose models all answer through `backend`.
    pub fn with_backend(sweep: Arc<Sweep>, backend: Arc<dyn Backend>) -> Self {
        let backends = vec![backend; sweep.spec.models.len()];
        Executor { sweep, backends }
    }

    pub fn sweep(&self) -> &Arc<Sweep> {
        &self.sweep
    }

    /// Runs job `index` and returns its result. Never fails: a failure is a
    /// result with status `failed`.
    pub async fn run(&self, index: u64) -> Executed {
        let sweep = &*self.sweep;
        let started = Instant::now();
        let started_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let t = sweep.space.decode(index);
        let job_id = sweep.job_id(&t);
        let model = &sweep.spec.models[t.model];
        let condition = &sweep.spec.conditions[t.condition].name;
        let conv = match sweep.render(&t) {
            Ok((system, user)) => {
                let turn = Turn {
                    model,
                    job_id,
                    seed: t.seed,
                    condition,
                };
                Ok(converse(&*self.backends[t.model], &sweep.spec.protocol, turn, system, user).await)
            }
            Err(e) => Err(e),
        };
        let mut result = JobResult {
            job_id: job_id.to_string(),
            sweep_id: sweep.id.clone(),
            index,
            model: model.id.clone(),
            variant: sweep.spec.prompts[t.variant].name.clone(),
            query_index: t.query as u64,
            query: sweep.rows[t.query].query.clone(),
            condition: condition.clone(),
            seed: t.seed,
            status: Status::Failed,
            output: None,
            classifications: BTreeMap::new(),
            turns: 0,
            usage: Usage::default(),
            latency_ms: 0.0,
            started_at_ms,
            error: None,
            transcript: Transcript::default(),
        };
        let mut class_bits = 0u32;
        match conv {
            Ok(c) => {
                if let (Status::Ok, Some(out)) = (c.status, &c.output) {
                    for (i, cl) in sweep.spec.classifiers.iter().enumerate() {
                        let yes = classify(cl, out);
                        class_bits |= u32::from(yes) << i;
                        result.classifications.insert(cl.name().to_string(), yes);
                    }
                }
                result.status = c.status;
                result.output = c.output;
                result.turns = c.turns;
                result.usage = c.usage;
                result.error = c.error;
                result.transcript = c.transcript;
            }
            Err(e) => result.error = Some(format!("rendering the prompts failed: {e}")),
        }
        result.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let payload = serde_json::to_vec(&result).expect("job results serialize");
        Executed {
            meta: RecordMeta {
                index,
                status: result.status,
                class_bits,
            },
            payload,
        }
    }
}
