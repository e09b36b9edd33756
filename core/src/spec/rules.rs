//! What each provider and documented model family accepts, checked when a
//! spec loads so that a sweep never sends a request the API is known to
//! refuse. Unknown models pass: the first 400 naming a parameter stops
//! their jobs instead (see `ErrorKind::Param`).
//!
//! Sources (2026-12):
//! - Anthropic API versions: <https://platform.claude.com/docs/en/api/versioning>
//!   and <https://platform.claude.com/docs/en/api/migration-2026-10-21>
//!   (`2026-10-21` refuses `temperature`, `top_p` and `top_k` on every model).
//! - Thinking: <https://platform.claude.com/docs/en/build-with-claude/extended-thinking>
//!   and <https://platform.claude.com/docs/en/build-with-claude/thinking-troubleshooting>
//!   (`enabled` is the only mode up to Claude 4.5, deprecated on 4.6, refused
//!   from Opus 4.7 and the 5 models; `budget_tokens` ≥ 1024 and below
//!   `max_tokens`; no `temperature` or `top_k` while thinking, `top_p` only
//!   in 0.95..=1; no assistant prefill while thinking).
//! - Migration guides: Claude 4.6 and later refuse assistant prefill; Sonnet
//!   4.5, Haiku 4.5 (and Opus 4.1) refuse `temperature` with `top_p`; Opus
//!   4.7 and later and the 5 models refuse non-default sampling parameters.
//! - Effort: <https://platform.claude.com/docs/en/build-with-claude/effort>.
//! - OpenAI reasoning models (o-series, GPT-5 family): `max_completion_tokens`
//!   instead of `max_tokens`; no `temperature` or `top_p` unless
//!   `reasoning_effort` is `none` (GPT-5.1 and later); `reasoning_effort`
//!   values per model (`minimal` only on the first GPT-5 models, `none`
//!   from GPT-5.1).
//! - Prompt cache minimums: Anthropic's prompt-caching page (1024 tokens for
//!   Sonnet 4.x and Opus 4/4.1/4.8, 2048 for Opus 4.7 and Sonnet 4.6, 4096 for
//!   Opus 4.5/4.6 and Haiku 4.5, 512 for Opus 5).

use super::model::{BackendKind, ModelEntry, ThinkingKind};

/// The smallest thinking budget Anthropic accepts.
pub const MIN_THINKING_BUDGET: u32 = 1024;
/// `max_tokens` sent to Anthropic when the spec sets none (the API requires it).
pub const ANTHROPIC_DEFAULT_MAX_TOKENS: u32 = 4096;

/// A rule a model entry breaks: the field (below the entry) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub field: &'static str,
    pub message: String,
}

fn broken(field: &'static str, message: impl Into<String>) -> Result<(), Broken> {
    Err(Broken {
        field,
        message: message.into(),
    })
}

fn starts(model: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| model.starts_with(p))
}

/// Claude models that refuse a non-default `temperature`, `top_p` or `top_k`.
fn claude_refuses_sampling(model: &str) -> bool {
    starts(
        model,
        &[
            "claude-opus-4-7",
            "claude-opus-4-8",
            "claude-opus-5",
            "claude-sonnet-5",
            "claude-haiku-5",
            "claude-fable-5",
            "claude-mythos-5",
        ],
    )
}

/// Claude models that refuse an assistant prefill (4.6 and later).
fn claude_refuses_prefill(model: &str) -> bool {
    claude_refuses_sampling(model) || starts(model, &["claude-opus-4-6", "claude-sonnet-4-6"])
}

/// Claude models whose only thinking mode is `enabled` (4.5 and earlier).
fn claude_thinks_enabled_only(model: &str) -> bool {
    starts(
        model,
        &[
            "claude-haiku-4-5",
            "claude-sonnet-4-5",
            "claude-opus-4-5",
            "claude-opus-4-1",
            "claude-opus-4-2",
            "claude-sonnet-4-2",
            "claude-3-7-sonnet",
        ],
    )
}

/// Claude models that refuse `temperature` and `top_p` together.
fn claude_refuses_both_samplers(model: &str) -> bool {
    starts(model, &["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"])
}

/// Claude models that take no `output_config.effort`.
fn claude_refuses_effort(model: &str) -> bool {
    starts(
        model,
        &["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1", "claude-3"],
    )
}

/// OpenAI reasoning models: the o-series and the GPT-5 family.
pub fn openai_reasoning_model(model: &str) -> bool {
    starts(model, &["o1", "o3", "o4", "gpt-5"])
}

/// The first GPT-5 models and the o-series: reasoning always on (no `none`).
fn openai_always_reasons(model: &str) -> bool {
    starts(model, &["o1", "o3", "o4"])
        || ["gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5-pro"].contains(&model)
        || starts(
            model,
            &["gpt-5-2025", "gpt-5-mini-2025", "gpt-5-nano-2025", "gpt-5-pro-2025"],
        )
}

/// Whether an OpenAI-style request to this entry names its output limit
/// `max_completion_tokens` (OpenAI itself, and its reasoning models by any
/// endpoint) rather than `max_tokens` (other OpenAI-compatible servers).
pub fn uses_max_completion_tokens(m: &ModelEntry) -> bool {
    let official = m
        .base_url
        .as_deref()
        .is_none_or(|u| u.trim_end_matches('/').ends_with("api.openai.com/v1"));
    official || openai_reasoning_model(&m.model)
}

/// Whether requests to this entry may carry a `temperature` (judges set one
/// of their own only where the API takes it).
pub fn accepts_sampling(m: &ModelEntry) -> bool {
    match m.backend {
        BackendKind::Anthropic => {
            m.anthropic_version() != "2026-10-21" && !claude_refuses_sampling(&m.model) && !m.params.thinks()
        }
        BackendKind::Openai => {
            !openai_reasoning_model(&m.model) || m.params.reasoning_effort.as_deref() == Some("none")
        }
        BackendKind::Sim => true,
    }
}

/// The smallest system prompt (in tokens) Anthropic caches for `model`; a
/// shorter one is not cached, with no error.
pub fn min_cacheable_tokens(model: &str) -> u64 {
    if starts(model, &["claude-opus-5", "claude-fable-5", "claude-mythos-5"]) {
        512
    } else if starts(model, &["claude-opus-4-5", "claude-opus-4-6", "claude-haiku-4-5"]) {
        4096
    } else if starts(
        model,
        &[
            "claude-opus-4-7",
            "claude-sonnet-4-6",
            "claude-3-haiku",
            "claude-3-5-haiku",
        ],
    ) {
        2048
    } else {
        1024
    }
}

/// Under `protocol: {kind: reasoning}` a model's own reasoning is the
/// scratchpad: an Anthropic model must think (the 5 models do by default).
pub fn check_reasoning_protocol(m: &ModelEntry) -> Result<(), Broken> {
    let thinks_by_default = starts(
        &m.model,
        &["claude-opus-5", "claude-sonnet-5", "claude-fable-5", "claude-mythos-5"],
    );
    if m.backend == BackendKind::Anthropic && !m.params.thinks() && !thinks_by_default {
        return broken(
            "params.thinking",
            "protocol kind reasoning reads the model's own reasoning: give it thinking (type: adaptive, or enabled with a budget_tokens)",
        );
    }
    Ok(())
}

/// Checks a model entry against its provider's rules (`prefill`: the
/// protocol starts the reply with one).
pub fn check(m: &ModelEntry, prefill: bool) -> Result<(), Broken> {
    match m.backend {
        BackendKind::Anthropic => check_anthropic(m, prefill),
        BackendKind::Openai => check_openai(m),
        BackendKind::Sim => check_sim(m),
    }
}

fn check_sim(m: &ModelEntry) -> Result<(), Broken> {
    let p = &m.params;
    if p.reasoning_effort.is_some() {
        return broken(
            "params.reasoning_effort",
            "only the openai backend takes reasoning_effort",
        );
    }
    if p.thinking.is_some() || p.effort.is_some() {
        let field = if p.effort.is_some() {
            "params.effort"
        } else {
            "params.thinking"
        };
        return broken(field, "only the anthropic backend takes thinking and effort");
    }
    for (field, set) in [
        ("api_version", m.api_version.is_some()),
        ("prompt_cache", m.prompt_cache.is_some()),
    ] {
        if set {
            return broken(field, "only the anthropic backend takes this setting");
        }
    }
    Ok(())
}

fn check_anthropic(m: &ModelEntry, prefill: bool) -> Result<(), Broken> {
    let (p, model) = (&m.params, m.model.as_str());
    if let Some(v) = &m.api_version
        && !super::model::ANTHROPIC_VERSIONS.contains(&v.as_str())
    {
        return broken(
            "api_version",
            format!("`{v}` is not an anthropic-version candor speaks (2026-10-21, 2023-06-01)"),
        );
    }
    if p.reasoning_effort.is_some() {
        return broken(
            "params.reasoning_effort",
            "is OpenAI's; Anthropic models take `effort` (low, medium, high, xhigh, max) and `thinking`",
        );
    }
    let sampling = [
        ("params.temperature", p.temperature.is_some()),
        ("params.top_p", p.top_p.is_some()),
        ("params.top_k", p.top_k.is_some()),
    ];
    let first_sampler = sampling.iter().find(|(_, set)| *set).map(|(f, _)| *f);
    if let Some(field) = first_sampler {
        if m.anthropic_version() == "2026-10-21" {
            return broken(
                field,
                "anthropic-version 2026-10-21 refuses temperature, top_p and top_k on every model: \
                 remove it, or set api_version: \"2023-06-01\"",
            );
        }
        if claude_refuses_sampling(model) {
            return broken(field, format!("{model} refuses sampling parameters: remove it"));
        }
    }
    if p.temperature.is_some() && p.top_p.is_some() && claude_refuses_both_samplers(model) {
        return broken(
            "params.top_p",
            format!("{model} refuses temperature and top_p together: set one"),
        );
    }
    if prefill && claude_refuses_prefill(model) {
        return broken(
            "protocol.prefill",
            format!("{model} refuses an assistant prefill: remove protocol.prefill for this sweep"),
        );
    }
    if let Some(e) = &p.effort {
        if !["low", "medium", "high", "xhigh", "max"].contains(&e.as_str()) {
            return broken(
                "params.effort",
                format!("`{e}` is not one of low, medium, high, xhigh, max"),
            );
        }
        if claude_refuses_effort(model) {
            return broken("params.effort", format!("{model} takes no effort setting"));
        }
    }
    check_thinking(m, prefill)
}

fn check_thinking(m: &ModelEntry, prefill: bool) -> Result<(), Broken> {
    let (p, model) = (&m.params, m.model.as_str());
    let Some(t) = &p.thinking else { return Ok(()) };
    if let Some(d) = &t.display
        && !["summarized", "omitted"].contains(&d.as_str())
    {
        return broken(
            "params.thinking.display",
            format!("`{d}` is not one of summarized, omitted"),
        );
    }
    match t.kind {
        ThinkingKind::Enabled => {
            let Some(b) = t.budget_tokens else {
                return broken("params.thinking.budget_tokens", "type: enabled needs a budget_tokens");
            };
            let max = p.max_tokens.unwrap_or(ANTHROPIC_DEFAULT_MAX_TOKENS);
            if b < MIN_THINKING_BUDGET || b >= max {
                return broken(
                    "params.thinking.budget_tokens",
                    format!("must be at least {MIN_THINKING_BUDGET} and below max_tokens ({max})"),
                );
            }
            if claude_refuses_sampling(model) {
                return broken(
                    "params.thinking.type",
                    format!("{model} refuses type: enabled: use type: adaptive (with effort)"),
                );
            }
        }
        ThinkingKind::Adaptive => {
            if t.budget_tokens.is_some() {
                return broken(
                    "params.thinking.budget_tokens",
                    "type: adaptive takes no budget (use effort)",
                );
            }
            if claude_thinks_enabled_only(model) {
                return broken(
                    "params.thinking.type",
                    format!("{model} has no adaptive thinking: use type: enabled with a budget_tokens"),
                );
            }
        }
        ThinkingKind::Disabled => return Ok(()),
    }
    if p.temperature.is_some() {
        return broken(
            "params.temperature",
            "Anthropic refuses temperature while the model thinks",
        );
    }
    if p.top_k.is_some() {
        return broken("params.top_k", "Anthropic refuses top_k while the model thinks");
    }
    if let Some(t) = p.top_p
        && t < 0.95
    {
        return broken(
            "params.top_p",
            "while the model thinks, Anthropic takes top_p only from 0.95 to 1",
        );
    }
    if prefill {
        return broken(
            "protocol.prefill",
            "Anthropic refuses an assistant prefill while the model thinks: remove protocol.prefill",
        );
    }
    Ok(())
}

fn check_openai(m: &ModelEntry) -> Result<(), Broken> {
    let (p, model) = (&m.params, m.model.as_str());
    if p.thinking.is_some() || p.effort.is_some() {
        let field = if p.effort.is_some() {
            "params.effort"
        } else {
            "params.thinking"
        };
        return broken(field, "is Anthropic's; OpenAI models take reasoning_effort");
    }
    if m.api_version.is_some() || m.prompt_cache.is_some() {
        let field = if m.api_version.is_some() {
            "api_version"
        } else {
            "prompt_cache"
        };
        return broken(
            field,
            "only the anthropic backend takes this setting (OpenAI caches prompts by itself)",
        );
    }
    let effort = p.reasoning_effort.as_deref();
    if let Some(e) = effort
        && !["none", "minimal", "low", "medium", "high", "xhigh"].contains(&e)
    {
        return broken(
            "params.reasoning_effort",
            format!("`{e}` is not one of none, minimal, low, medium, high, xhigh"),
        );
    }
    if !openai_reasoning_model(model) {
        return Ok(());
    }
    if openai_always_reasons(model) && effort == Some("none") {
        return broken(
            "params.reasoning_effort",
            format!("{model} always reasons: it takes no `none`"),
        );
    }
    if effort == Some("minimal") && !openai_always_reasons(model) {
        return broken(
            "params.reasoning_effort",
            format!("{model} takes no `minimal` (only the first GPT-5 models do)"),
        );
    }
    if effort != Some("none") {
        for (field, set) in [
            ("params.temperature", p.temperature.is_some()),
            ("params.top_p", p.top_p.is_some()),
        ] {
            if set {
                return broken(
                    field,
                    format!(
                        "{model} refuses it while reasoning: remove it (or set reasoning_effort: none where the model allows)"
                    ),
                );
            }
        }
    }
    Ok(())
}
