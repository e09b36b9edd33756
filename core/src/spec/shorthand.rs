//! A model entry as it may be written: the backend named in the model
//! (`model: anthropic/claude-sonnet-4-5`, `openai/gpt-5.4`,
//! `openai-compatible/NAME` with a `base_url`) or as
//! `backend: openai-compatible`, and the id defaulting to the model's name.
//! The entry is read into [`RawEntry`] and made a [`ModelEntry`] here, so
//! the rest of candor sees one shape.

use serde::Deserialize;

use super::batch::BatchSetting;
use super::model::{BackendKind, ModelEntry, Params, RateLimit, SimConfig};
use super::price::Price;

/// A backend as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Written {
    Sim,
    Anthropic,
    Openai,
    /// Any server speaking OpenAI's Chat Completions at a `base_url`.
    OpenaiCompatible,
}

impl Written {
    fn of_prefix(prefix: &str) -> Option<Written> {
        match prefix {
            "anthropic" => Some(Written::Anthropic),
            "openai" => Some(Written::Openai),
            "openai-compatible" => Some(Written::OpenaiCompatible),
            "sim" => Some(Written::Sim),
            _ => None,
        }
    }
}

/// A model entry as the spec's YAML gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEntry {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    backend: Option<Written>,
    model: String,
    #[serde(default)]
    params: Params,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    api_key_env: Option<String>,
    #[serde(default)]
    api_key_file: Option<String>,
    #[serde(default)]
    timeout_secs: Option<u64>,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    #[serde(default)]
    sim: Option<SimConfig>,
    #[serde(default)]
    price: Option<Price>,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    prompt_cache: Option<bool>,
    #[serde(default)]
    batch: Option<BatchSetting>,
}

impl TryFrom<RawEntry> for ModelEntry {
    type Error = String;

    fn try_from(r: RawEntry) -> Result<ModelEntry, String> {
        let prefixed = r
            .model
            .split_once('/')
            .and_then(|(p, rest)| Some((Written::of_prefix(p)?, rest.to_string())));
        let (written, model) = match (r.backend, prefixed) {
            (None, Some((w, rest))) => (w, rest),
            (Some(w), Some((p, rest))) if w == p => (w, rest),
            (Some(w), _) => (w, r.model.clone()),
            (None, None) => {
                return Err(format!(
                    "model `{}`: no backend: set `backend: anthropic|openai|openai-compatible|sim`, or name the \
                     model with its provider (`anthropic/NAME`, `openai/NAME`, `openai-compatible/NAME` with a base_url)",
                    r.model
                ));
            }
        };
        if written == Written::OpenaiCompatible && r.base_url.is_none() {
            return Err(format!(
                "model `{}`: an openai-compatible model needs the `base_url` of its server",
                r.model
            ));
        }
        let backend = match written {
            Written::Sim => BackendKind::Sim,
            Written::Anthropic => BackendKind::Anthropic,
            Written::Openai | Written::OpenaiCompatible => BackendKind::Openai,
        };
        Ok(ModelEntry {
            id: r.id.unwrap_or_else(|| model.clone()),
            backend,
            model,
            params: r.params,
            base_url: r.base_url,
            api_key_env: r.api_key_env,
            api_key_file: r.api_key_file,
            timeout_secs: r.timeout_secs,
            rate_limit: r.rate_limit,
            sim: r.sim,
            price: r.price,
            api_version: r.api_version,
            prompt_cache: r.prompt_cache,
            batch: r.batch,
        })
    }
}
