//! Where a report comes from: which candor, which run, which spec and
//! dataset, which models.

use serde::{Deserialize, Serialize};

use candor_core::spec::Sweep;

/// Where a report comes from: which candor, which run, which spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The version of candor that wrote the report.
    pub candor_version: String,
    /// The run label (`--run`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_label: Option<String>,
    /// When the sweep (a local run: this run) started and ended, RFC 3339 in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// A hash of the spec's content without the run label: reports of one spec share it.
    pub spec_hash: String,
    /// A hash of the dataset's rows.
    pub dataset_hash: String,
    /// The models under test as the spec gives them.
    pub models: Vec<ModelInfo>,
    /// The judges' models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judges: Vec<ModelInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    pub backend: String,
    /// The provider's model name (empty for `sim`).
    #[serde(default)]
    pub model: String,
    /// The endpoint, without user info or query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    pub params: candor_core::spec::Params,
}

impl Provenance {
    /// The provenance of `sweep`; `started_ms`/`finished_ms` are Unix times in milliseconds.
    pub fn of(sweep: &Sweep, started_ms: Option<u64>, finished_ms: Option<u64>) -> Provenance {
        let info = |m: &candor_core::spec::ModelEntry| ModelInfo {
            id: m.id.clone(),
            backend: serde_json::to_value(m.backend)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            model: m.model.clone(),
            base_url: m.base_url.as_deref().map(candor_core::redact::url),
            params: m.params.clone(),
        };
        Provenance {
            candor_version: env!("CARGO_PKG_VERSION").to_string(),
            run_label: (!sweep.run.is_empty()).then(|| sweep.run.clone()),
            started_at: started_ms.map(rfc3339),
            finished_at: finished_ms.map(rfc3339),
            spec_hash: sweep.spec_hash.clone(),
            dataset_hash: sweep.dataset_hash.clone(),
            models: sweep.spec.models.iter().map(info).collect(),
            judges: sweep.spec.judges.iter().map(info).collect(),
        }
    }
}

/// A Unix time in milliseconds as RFC 3339 in UTC, to the second.
pub fn rfc3339(ms: u64) -> String {
    candor_core::time::rfc3339(ms / 1000, "")
}

/// A model's params as compact JSON.
pub(crate) fn params_json(m: &ModelInfo) -> String {
    serde_json::to_string(&m.params).unwrap_or_else(|_| "{}".to_string())
}
