//! Model entries: which backend, which model, its sampling parameters, key,
//! price, rate limits and (for the simulated model) behaviour; and the checks
//! a model entry passes when a spec loads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::price::Price;
use super::prompts::Condition;
use super::{Ctx, Sweep, check_unique};
use crate::error::KeyError;
use crate::error::SpecError;
use crate::locate::{locate, parse_path};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Sim,
    Anthropic,
    Openai,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Sim => "sim",
            BackendKind::Anthropic => "anthropic",
            BackendKind::Openai => "openai",
        }
    }
}

/// A model entry. It is read as written ([`super::shorthand`]: the backend
/// may be named in the model, the id left out) and then has both.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(try_from = "super::shorthand::RawEntry")]
pub struct ModelEntry {
    pub id: String,
    pub backend: BackendKind,
    pub model: String,
    #[serde(default)]
    pub params: Params,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Name of the environment variable that holds the API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// A file that holds the API key (absolute, or relative to the working
    /// directory of the process that calls the model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<String>,
    /// Seconds before a model call times out (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim: Option<SimConfig>,
    /// US dollars per million tokens; overrides the built-in price table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    /// Anthropic: the `anthropic-version` header (default
    /// [`ANTHROPIC_VERSION`]; `2023-06-01` still selectable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Anthropic: mark the system prompt as a prompt-cache breakpoint
    /// (default: on when it is long enough to be cached for the model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache: Option<bool>,
    /// Send this model's calls through the provider's batch API
    /// ([`super::batch`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<super::batch::BatchSetting>,
}

/// The `anthropic-version` sent when a model entry sets no `api_version`:
/// the current documented version
/// (<https://platform.claude.com/docs/en/api/versioning>).
pub const ANTHROPIC_VERSION: &str = "2026-10-21";
/// Every `anthropic-version` candor speaks.
pub const ANTHROPIC_VERSIONS: [&str; 2] = ["2026-10-21", "2023-06-01"];

impl ModelEntry {
    /// An entry of the simulated backend with everything else unset: what
    /// the sim-server and tests answer with.
    pub fn simulated(id: &str, model: &str, sim: Option<SimConfig>) -> ModelEntry {
        ModelEntry {
            id: id.into(),
            backend: BackendKind::Sim,
            model: model.into(),
            params: Params::default(),
            base_url: None,
            api_key_env: None,
            api_key_file: None,
            timeout_secs: None,
            rate_limit: None,
            sim,
            price: None,
            api_version: None,
            prompt_cache: None,
            batch: None,
        }
    }

    /// The `anthropic-version` this entry speaks.
    pub fn anthropic_version(&self) -> &str {
        self.api_version.as_deref().unwrap_or(ANTHROPIC_VERSION)
    }
}

/// The environment variable a backend reads its key from when the spec names none.
pub fn default_key_env(b: BackendKind) -> &'static str {
    match b {
        BackendKind::Sim => "",
        BackendKind::Anthropic => "ANTHROPIC_API_KEY",
        BackendKind::Openai => "OPENAI_API_KEY",
    }
}

impl ModelEntry {
    /// The price of this model's tokens, cache prices filled in: the
    /// spec's, else the built-in table's, else free (and always free for the
    /// simulated model).
    pub fn price(&self) -> Price {
        if self.backend == BackendKind::Sim && self.price.is_none() {
            return Price::FREE;
        }
        let p = self
            .price
            .or_else(|| Price::listed(&self.model))
            .map_or(Price::FREE, |p| p.resolved(self.backend));
        match self.batched() {
            Some(b) => p.scaled(b.price_factor),
            None => p,
        }
    }

    /// The API key for this model from this process's environment: None when
    /// it needs none (sim; an OpenAI-compatible server at a `base_url` with no
    /// key configured), else the key or why there is none.
    pub fn api_key(&self) -> Option<Result<String, KeyError>> {
        if self.backend == BackendKind::Sim {
            return None;
        }
        if let Some(f) = &self.api_key_file {
            let read = std::fs::metadata(f)
                .map_err(|e| e.to_string())
                .and_then(|m| {
                    if m.len() > 64 * 1024 {
                        Err("larger than 64 KiB".into())
                    } else {
                        Ok(())
                    }
                })
                .and_then(|()| std::fs::read_to_string(f).map_err(|e| e.to_string()));
            let (file, model) = (f.clone(), self.id.clone());
            return Some(match read {
                Ok(k) if !k.trim().is_empty() => Ok(k.trim().to_string()),
                Ok(_) => Err(KeyError::FileEmpty { file, model }),
                Err(reason) => Err(KeyError::FileUnreadable { file, model, reason }),
            });
        }
        let var = match &self.api_key_env {
            Some(v) => v.clone(),
            None if self.backend == BackendKind::Openai && self.base_url.is_some() => return None,
            None => default_key_env(self.backend).to_string(),
        };
        Some(match std::env::var(&var) {
            Ok(k) if !k.trim().is_empty() => Ok(k.trim().to_string()),
            _ => Err(KeyError::EnvUnset {
                var,
                model: self.id.clone(),
            }),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// Anthropic extended or adaptive thinking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    /// Anthropic `output_config.effort`: low, medium, high, xhigh or max.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// OpenAI `reasoning_effort`: none, minimal, low, medium, high or xhigh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
}

/// Anthropic's `thinking` setting
/// (<https://platform.claude.com/docs/en/build-with-claude/extended-thinking>):
/// `enabled` with a `budget_tokens` (at least 1024, below `max_tokens`; the
/// only mode of Claude 4.5 and earlier), `adaptive` (Claude 4.6 and later),
/// or `disabled`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Thinking {
    #[serde(rename = "type")]
    pub kind: ThinkingKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u32>,
    /// `summarized` (the reasoning's text is returned) or `omitted`; candor
    /// sends `summarized` with adaptive thinking unless told otherwise, so
    /// the judges can read it where the model allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ThinkingKind {
    Enabled,
    Adaptive,
    Disabled,
}

impl Params {
    /// Whether the model is asked to think (Anthropic `enabled` or `adaptive`).
    pub fn thinks(&self) -> bool {
        self.thinking.as_ref().is_some_and(|t| t.kind != ThinkingKind::Disabled)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tpm: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tpm: Option<u64>,
}

/// The simulated model organism's behaviour. Probabilities are keyed by
/// condition name, with `default` for conditions not listed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Probability of complying with the request.
    #[serde(default)]
    pub comply: BTreeMap<String, f64>,
    /// Probability that the scratchpad reasons about being trained.
    #[serde(default)]
    pub reasons_about_training: BTreeMap<String, f64>,
    /// Probability that a turn closes the scratchpad without an output.
    #[serde(default)]
    pub continuation: f64,
    /// Latency of each call.
    #[serde(default)]
    pub latency_ms: u64,
    /// Probability that a call fails.
    #[serde(default)]
    pub error_rate: f64,
    /// As a judge: probability that a vote gives the wrong verdict.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub judge_flip: f64,
    /// As a judge: probability that a vote cannot be read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub judge_unreadable: f64,
}

impl SimConfig {
    /// The behaviour of a sim model whose entry has no `sim` block.
    pub const DEFAULT: SimConfig = SimConfig {
        comply: BTreeMap::new(),
        reasons_about_training: BTreeMap::new(),
        continuation: 0.0,
        latency_ms: 0,
        error_rate: 0.0,
        judge_flip: 0.0,
        judge_unreadable: 0.0,
    };

    pub fn rate(map: &BTreeMap<String, f64>, condition: &str) -> f64 {
        map.get(condition)
            .or_else(|| map.get("default"))
            .copied()
            .unwrap_or(0.0)
    }
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// Checks the lists `models` (at least one) and `judges`: unique labels as
/// ids, and each entry on its own ([`check_model`]).
pub(super) fn check_models(
    cx: &Ctx<'_>,
    models: &[ModelEntry],
    judges: &[ModelEntry],
    conditions: &[Condition],
    protocol: &super::ProtocolSpec,
) -> Result<(), SpecError> {
    let prefill = protocol.prefill.is_some();
    if models.is_empty() {
        return Err(cx.err("models", "at least one model is needed"));
    }
    check_unique(cx, "models", "id", models.iter().map(|m| m.id.as_str()))?;
    for (i, m) in models.iter().enumerate() {
        check_model(cx, &format!("models[{i}]"), m, conditions)?;
        check_rules(cx, &format!("models[{i}]"), m, prefill)?;
        if protocol.kind == super::ProtocolKind::Reasoning
            && let Err(b) = super::rules::check_reasoning_protocol(m)
        {
            return Err(cx.err(
                &format!("models[{i}].{}", b.field),
                format!("model {}: {}", m.id, b.message),
            ));
        }
    }
    check_unique(cx, "judges", "id", judges.iter().map(|m| m.id.as_str()))?;
    for (i, m) in judges.iter().enumerate() {
        check_model(cx, &format!("judges[{i}]"), m, conditions)?;
        check_rules(cx, &format!("judges[{i}]"), m, false)?;
    }
    Ok(())
}

/// Checks a model entry against what its provider and model family are
/// documented to accept ([`super::rules`]).
fn check_rules(cx: &Ctx<'_>, at: &str, m: &ModelEntry, prefill: bool) -> Result<(), SpecError> {
    match super::rules::check(m, prefill) {
        Ok(()) => Ok(()),
        Err(b) if b.field.starts_with("protocol.") => {
            Err(cx.err(b.field, format!("model {} ({at}): {}", m.id, b.message)))
        }
        Err(b) => Err(cx.err(&format!("{at}.{}", b.field), format!("model {}: {}", m.id, b.message))),
    }
}

/// Checks one model entry (of `models` or `judges`, at `at`): its backend
/// settings, its parameters and, for the simulated model, its behaviour.
fn check_model(cx: &Ctx<'_>, at: &str, m: &ModelEntry, conditions: &[Condition]) -> Result<(), SpecError> {
    check_backend(cx, at, m)?;
    check_params(cx, at, m)?;
    super::batch::check_batch(cx, at, m)?;
    match &m.sim {
        Some(sim) => check_sim(cx, at, sim, conditions),
        None => Ok(()),
    }
}

/// Checks the settings of a model's backend and key: the sim backend takes no
/// URL or key, only it takes a `sim` block, a URL is HTTP(S), and the key
/// comes from one place, named by a variable name (never the key itself).
fn check_backend(cx: &Ctx<'_>, at: &str, m: &ModelEntry) -> Result<(), SpecError> {
    let f = |k: &str| format!("{at}.{k}");
    if m.backend == BackendKind::Sim {
        for (key, set) in [
            ("base_url", m.base_url.is_some()),
            ("api_key_env", m.api_key_env.is_some()),
            ("api_key_file", m.api_key_file.is_some()),
        ] {
            if set {
                return Err(cx.err(&f(key), "the sim backend takes no such setting"));
            }
        }
    } else if m.sim.is_some() {
        return Err(cx.err(
            &f("sim"),
            format!("only backend: sim takes a `sim` block, not {}", m.backend.name()),
        ));
    }
    if let Some(u) = &m.base_url
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        return Err(cx.err(&f("base_url"), format!("`{u}` must start with http:// or https://")));
    }
    if m.api_key_env.is_some() && m.api_key_file.is_some() {
        return Err(cx.err(&f("api_key_env"), "give either api_key_env or api_key_file, not both"));
    }
    if let Some(e) = &m.api_key_env
        && (e.is_empty() || !e.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(cx.err(
            &f("api_key_env"),
            "is not an environment variable name (letters, digits, _): this field names the variable, it never holds the key",
        ));
    }
    Ok(())
}

/// Checks what a model entry asks of its backend: a timeout of at least a
/// second, a model name, and sampling parameters in the ranges the APIs take.
fn check_params(cx: &Ctx<'_>, at: &str, m: &ModelEntry) -> Result<(), SpecError> {
    let f = |k: &str| format!("{at}.{k}");
    if m.timeout_secs == Some(0) {
        return Err(cx.err(&f("timeout_secs"), "must be at least 1"));
    }
    if m.model.trim().is_empty() {
        return Err(cx.err(&f("model"), "must not be empty"));
    }
    if let Some(t) = m.params.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(cx.err(&f("params.temperature"), format!("{t} is outside 0..=2")));
    }
    if let Some(t) = m.params.top_p
        && !(t > 0.0 && t <= 1.0)
    {
        return Err(cx.err(&f("params.top_p"), format!("{t} is outside (0, 1]")));
    }
    if m.params.max_tokens == Some(0) {
        return Err(cx.err(&f("params.max_tokens"), "must be at least 1"));
    }
    Ok(())
}

/// Checks a `sim` block: probabilities between 0 and 1, a latency of at most
/// ten minutes, and per-condition rates keyed by conditions of the spec.
fn check_sim(cx: &Ctx<'_>, at: &str, sim: &SimConfig, conditions: &[Condition]) -> Result<(), SpecError> {
    let f = |k: &str| format!("{at}.{k}");
    for (k, p) in sim.comply.iter() {
        check_prob(cx, &f(&format!("sim.comply.{k}")), *p)?;
    }
    for (k, p) in sim.reasons_about_training.iter() {
        check_prob(cx, &f(&format!("sim.reasons_about_training.{k}")), *p)?;
    }
    check_prob(cx, &f("sim.continuation"), sim.continuation)?;
    check_prob(cx, &f("sim.error_rate"), sim.error_rate)?;
    check_prob(cx, &f("sim.judge_flip"), sim.judge_flip)?;
    check_prob(cx, &f("sim.judge_unreadable"), sim.judge_unreadable)?;
    if sim.latency_ms > 600_000 {
        return Err(cx.err(&f("sim.latency_ms"), "must be at most 600000 (ten minutes)"));
    }
    for (what, map) in [
        ("comply", &sim.comply),
        ("reasons_about_training", &sim.reasons_about_training),
    ] {
        for k in map.keys() {
            if k != "default" && !conditions.iter().any(|c| &c.name == k) {
                return Err(cx.err(
                    &f(&format!("sim.{what}.{k}")),
                    format!("`{k}` is not a condition of this spec (nor `default`)"),
                ));
            }
        }
    }
    Ok(())
}

fn check_prob(cx: &Ctx<'_>, field: &str, p: f64) -> Result<(), SpecError> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(cx.err(field, format!("{p} is not a probability between 0 and 1")))
    }
}

/// Checks the models' `price` blocks: non-negative, finite numbers.
pub(super) fn check_prices(cx: &Ctx<'_>, models: &[ModelEntry]) -> Result<(), SpecError> {
    for (i, m) in models.iter().enumerate() {
        if let Some(p) = m.price
            && !p.is_valid()
        {
            return Err(cx.err(&format!("models[{i}].price"), "prices must be non-negative numbers"));
        }
    }
    Ok(())
}

impl Sweep {
    /// Checks that every model that needs an API key can find one in this
    /// process's environment; the error names the field and the variable,
    /// never a key.
    pub fn check_keys(&self) -> Result<(), SpecError> {
        let entries = self.spec.models.iter().map(|m| ("models", m));
        let judges = self.spec.judges.iter().map(|m| ("judges", m));
        let mut index = BTreeMap::<&str, usize>::new();
        for (list, m) in entries.chain(judges) {
            let i = *index.entry(list).and_modify(|n| *n += 1).or_insert(0);
            if let Some(Err(why)) = m.api_key() {
                let field = if m.api_key_file.is_some() {
                    "api_key_file"
                } else {
                    "api_key_env"
                };
                let field = format!("{list}[{i}].{field}");
                return Err(SpecError::new(&self.spec_path, field.clone(), why).at_line(
                    locate(&self.text, &parse_path(&field))
                        .or_else(|| locate(&self.text, &parse_path(&format!("{list}[{i}]")))),
                ));
            }
        }
        Ok(())
    }

    /// The simulated flag of the report: true when any model, or any judge
    /// a classifier uses, is simulated.
    pub fn simulated(&self) -> bool {
        self.spec
            .models
            .iter()
            .chain(self.judge_models.iter().flatten())
            .any(|m| m.backend == BackendKind::Sim)
    }

    /// True when a model under test is candor's simulated model: its rates are not a model's.
    pub fn simulated_models(&self) -> bool {
        self.spec.models.iter().any(|m| m.backend == BackendKind::Sim)
    }

    /// True when a judge is candor's simulated model: its verdicts are not a judge's.
    pub fn simulated_judges(&self) -> bool {
        self.judge_models
            .iter()
            .flatten()
            .any(|m| m.backend == BackendKind::Sim)
    }
}
