//! `batch:` on a model or judge entry: its calls go through the provider's
//! batch API (Anthropic Message Batches, OpenAI Batch) instead of the
//! realtime endpoint, at the batch price, and wait for the batch to end.
//!
//! Both providers charge batched usage at half their standard prices, every
//! token class included (input, output, cache writes and reads): Anthropic's
//! <https://platform.claude.com/docs/en/build-with-claude/batch-processing>
//! ("All usage is charged at 50% of the standard API prices"; the prompt
//! cache's multipliers stack with it) and OpenAI's
//! <https://developers.openai.com/api/docs/guides/batch> (50% lower costs).

use serde::{Deserialize, Serialize};

use super::Ctx;
use super::model::{BackendKind, ModelEntry};
use crate::error::SpecError;

/// What batched usage costs, as a share of the standard price.
pub const BATCH_PRICE_FACTOR: f64 = 0.5;

/// `batch: true`, or the same with settings.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum BatchSetting {
    On(bool),
    With(Batch),
}

/// How a batched model's calls are gathered, followed and priced.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Seconds a round gathers calls before it is submitted (default 2):
    /// every job in flight adds its call to the round within this time.
    #[serde(default = "default_window")]
    pub window_secs: f64,
    /// The most calls in one batch (default and most: the provider's limit,
    /// 100,000 for Anthropic and 50,000 for OpenAI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    /// Seconds between two looks at a batch in flight (default 30).
    #[serde(default = "default_poll")]
    pub poll_secs: f64,
    /// Batches a call is sent in before it fails, when it expires, errors
    /// or is canceled (default 3).
    #[serde(default = "default_tries")]
    pub tries: u32,
    /// What batched usage costs as a share of `price` (default 0.5).
    #[serde(default = "default_factor")]
    pub price_factor: f64,
}

fn default_window() -> f64 {
    2.0
}
fn default_poll() -> f64 {
    30.0
}
fn default_tries() -> u32 {
    3
}
fn default_factor() -> f64 {
    BATCH_PRICE_FACTOR
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            window_secs: default_window(),
            max_requests: None,
            poll_secs: default_poll(),
            tries: default_tries(),
            price_factor: default_factor(),
        }
    }
}

impl BatchSetting {
    /// The settings, when batching is on.
    pub fn get(&self) -> Option<Batch> {
        match self {
            BatchSetting::On(true) => Some(Batch::default()),
            BatchSetting::On(false) => None,
            BatchSetting::With(b) => Some(*b),
        }
    }
}

impl ModelEntry {
    /// The batch settings of this entry, when its calls are batched.
    pub fn batched(&self) -> Option<Batch> {
        self.batch.as_ref().and_then(BatchSetting::get)
    }
}

/// Checks a `batch` block: only the providers with a batch API take one,
/// and its numbers are in range.
pub(super) fn check_batch(cx: &Ctx<'_>, at: &str, m: &ModelEntry) -> Result<(), SpecError> {
    let Some(b) = m.batched() else { return Ok(()) };
    let f = |k: &str| format!("{at}.batch{k}");
    if m.backend == BackendKind::Sim {
        return Err(cx.err(
            &f(""),
            "the sim backend has no batch API: batch an anthropic or openai model (candor sim-server serves both batch APIs)",
        ));
    }
    if !(b.window_secs.is_finite() && (0.0..=3600.0).contains(&b.window_secs)) {
        return Err(cx.err(&f(".window_secs"), "must be between 0 and 3600"));
    }
    if !(b.poll_secs.is_finite() && (0.05..=3600.0).contains(&b.poll_secs)) {
        return Err(cx.err(&f(".poll_secs"), "must be between 0.05 and 3600"));
    }
    if !(1..=20).contains(&b.tries) {
        return Err(cx.err(&f(".tries"), "must be between 1 and 20"));
    }
    if !(b.price_factor.is_finite() && (0.0..=1.0).contains(&b.price_factor)) {
        return Err(cx.err(&f(".price_factor"), "must be between 0 and 1"));
    }
    let most = match m.backend {
        BackendKind::Anthropic => 100_000,
        _ => 50_000,
    };
    if let Some(n) = b.max_requests
        && !(1..=most).contains(&n)
    {
        return Err(cx.err(
            &f(".max_requests"),
            format!("must be between 1 and {most}, the provider's limit"),
        ));
    }
    Ok(())
}
