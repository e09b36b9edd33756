//! What sweep ids and job ids are hashed from. A job id hashes what the job
//! asks of the model (and the run label, when there is one); a sweep id also
//! hashes the labels and everything else that shapes results. The bytes fed
//! to the hasher are part of the on-disk format (see [`crate::hash`]).

use serde::Serialize;

use super::SpecFile;
use super::Sweep;
use super::model::{BackendKind, ModelEntry, Params, SimConfig};
use crate::dataset::Row;
use crate::hash::{self, Hash};
use crate::jobs::{JobId, JobTuple};

/// The parts a job id is hashed from, one hash per model, variant, row and
/// condition, computed once per sweep so that an id costs no allocation.
pub(super) struct JobHashes {
    pub models: Vec<Hash>,
    pub variants: Vec<Hash>,
    pub rows: Vec<Hash>,
    pub conditions: Vec<Hash>,
    pub protocol: Hash,
    /// The run label's hash; None without one.
    pub run: Option<Hash>,
}

/// A sweep's ids (16 hex digits each).
pub(super) struct SweepIds {
    /// The spec's content and the run label.
    pub id: String,
    /// The spec's content without the run label: what two runs of one spec share.
    pub spec_hash: String,
    /// The dataset's rows as the sweep reads them.
    pub dataset_hash: String,
}

/// A hash of what a model entry asks of its backend (not its label, key or limits).
fn model_hash(m: &ModelEntry) -> Hash {
    #[derive(Serialize)]
    struct ModelContent<'a> {
        backend: BackendKind,
        model: &'a str,
        params: &'a Params,
        base_url: &'a Option<String>,
        sim: &'a Option<SimConfig>,
    }
    hash::json(
        "candor.model.v1",
        &ModelContent {
            backend: m.backend,
            model: &m.model,
            params: &m.params,
            base_url: &m.base_url,
            sim: &m.sim,
        },
    )
}

/// A hash of a prompt variant's system and user template sources.
pub(super) fn variant_hash(system: &str, user: &str) -> Hash {
    hash::parts("candor.variant.v1", &[system.as_bytes(), user.as_bytes()])
}

/// A hash of a judge: its model's content and its template's source.
pub(super) fn judge_hash(model: &ModelEntry, source: &str) -> Hash {
    hash::parts("candor.judge.v1", &[&model_hash(model), source.as_bytes()])
}

/// Hashes the parts of job ids and the sweep's ids from the spec, its rows,
/// the hashes of its judges and variants, its `compare` pair and run label.
pub(super) fn hash_sweep(
    spec: &SpecFile,
    rows: &[Row],
    judge_hashes: &[Hash],
    variant_hashes: Vec<Hash>,
    compare: Option<(usize, usize)>,
    run: &str,
) -> (JobHashes, SweepIds) {
    let jobs = JobHashes {
        models: spec.models.iter().map(model_hash).collect(),
        variants: variant_hashes,
        rows: rows
            .iter()
            .map(|r| {
                let fields = serde_json::to_string(&r.fields).expect("row serializes");
                hash::parts("candor.row.v1", &[spec.dataset.field.as_bytes(), fields.as_bytes()])
            })
            .collect(),
        conditions: spec
            .conditions
            .iter()
            .map(|c| hash::json("candor.condition.v1", c))
            .collect(),
        protocol: hash::json("candor.protocol.v1", &spec.protocol),
        run: (!run.is_empty()).then(|| hash::parts("candor.run.v1", &[run.as_bytes()])),
    };
    let mut labels = serde_json::json!({
        "models": spec.models.iter().map(|m| &m.id).collect::<Vec<_>>(),
        "prompts": spec.prompts.iter().map(|p| &p.name).collect::<Vec<_>>(),
        "classifiers": &spec.classifiers,
        "seeds": spec.seeds,
        "compare": compare,
    });
    // Only when set, so that sweeps without them keep their ids.
    if let Some(e) = spec.early_stopping {
        labels["early_stopping"] = serde_json::json!(e);
    }
    let spec_hash = content_hash(&labels, &jobs, judge_hashes);
    if !run.is_empty() {
        labels["run"] = serde_json::json!(run);
    }
    let ids = SweepIds {
        id: content_hash(&labels, &jobs, judge_hashes),
        spec_hash,
        dataset_hash: {
            let rows: Vec<&[u8]> = jobs.rows.iter().map(|h| &h[..]).collect();
            hash::hex(&hash::parts("candor.dataset.v1", &rows)[..8])
        },
    };
    (jobs, ids)
}

/// The hash of a sweep's content: its labels and every part's hash.
fn content_hash(labels: &serde_json::Value, jobs: &JobHashes, judge_hashes: &[Hash]) -> String {
    let labels_s = labels.to_string();
    let mut parts: Vec<&[u8]> = vec![labels_s.as_bytes()];
    for h in jobs
        .models
        .iter()
        .chain(judge_hashes)
        .chain(&jobs.variants)
        .chain(&jobs.rows)
        .chain(&jobs.conditions)
    {
        parts.push(h);
    }
    parts.push(&jobs.protocol);
    hash::hex(&hash::parts("candor.sweep.v1", &parts)[..8])
}

impl Sweep {
    pub fn job_id(&self, t: &JobTuple) -> JobId {
        let h = &self.hashes;
        let seed = t.seed.to_le_bytes();
        let [m, v, q, c, p]: [&[u8]; 5] = [
            &h.models[t.model],
            &h.variants[t.variant],
            &h.rows[t.query],
            &h.conditions[t.condition],
            &h.protocol,
        ];
        // No allocation: this runs once per job. Without a run label the
        // parts (and so the ids of existing sweeps) are as they always were.
        let h = match &h.run {
            None => hash::parts("candor.job.v1", &[m, v, q, c, p, &seed]),
            Some(run) => hash::parts("candor.job.v1", &[m, v, q, c, p, &seed, run]),
        };
        let mut id = [0u8; 16];
        id.copy_from_slice(&h[..16]);
        JobId(id)
    }

    /// The seed a job's model calls carry (and the response cache keys on):
    /// the job's seed, or under a run label a seed drawn from both, so that
    /// each run samples afresh instead of reading the last run's answers.
    pub fn sampling_seed(&self, t: &JobTuple) -> u32 {
        match &self.hashes.run {
            None => t.seed,
            Some(run) => {
                let h = hash::parts("candor.seed.v1", &[run, &t.seed.to_le_bytes()]);
                u32::from_le_bytes([h[0], h[1], h[2], h[3]])
            }
        }
    }
}
