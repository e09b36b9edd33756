//! What a model's tokens cost: the spec's `price` block, the built-in price
//! table, and the cost (and the prompt cache's saving) of a call's usage.
//!
//! Prices follow the providers' pricing pages as of 2026-12:
//! Anthropic <https://platform.claude.com/docs/en/about-claude/pricing>
//! (5-minute cache writes at 1.25× the input price, cache hits at 0.1×);
//! OpenAI <https://developers.openai.com/api/docs/pricing> (no charge to
//! write the automatic cache; cached input at 0.1× on the GPT-5 family,
//! 0.25× on GPT-4.1, 0.5× on GPT-4o).

use serde::{Deserialize, Serialize};

use super::model::BackendKind;
use crate::result::Usage;

/// US dollars per million tokens. The cache prices default to the
/// provider's rule when the spec leaves them out: Anthropic writes at
/// 1.25× and reads at 0.1× of the input price; OpenAI writes for free (at
/// the input price) and reads at the input price (set `cache_read_per_mtok`
/// to count its discount).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_per_mtok: Option<f64>,
}

/// A row of the built-in table: model name prefix, then input, output,
/// cache write and cache read prices per million tokens.
type Listed = (&'static str, f64, f64, f64, f64);

/// Built-in prices by model name prefix, most specific first. Providers
/// change their prices: set `price` on a model entry to be sure. Unknown
/// models cost 0 (the report says which price it used).
pub const PRICES: &[Listed] = &[
    ("claude-opus-5", 5.0, 25.0, 6.25, 0.50),
    ("claude-opus-4-8", 5.0, 25.0, 6.25, 0.50),
    ("claude-opus-4-7", 5.0, 25.0, 6.25, 0.50),
    ("claude-opus-4-6", 5.0, 25.0, 6.25, 0.50),
    ("claude-opus-4-5", 5.0, 25.0, 6.25, 0.50),
    ("claude-opus-4", 15.0, 75.0, 18.75, 1.50),
    ("claude-3-opus", 15.0, 75.0, 18.75, 1.50),
    ("claude-sonnet-5", 2.0, 10.0, 2.50, 0.20),
    ("claude-sonnet-4", 3.0, 15.0, 3.75, 0.30),
    ("claude-3-7-sonnet", 3.0, 15.0, 3.75, 0.30),
    ("claude-3-5-sonnet", 3.0, 15.0, 3.75, 0.30),
    ("claude-haiku-4-5", 1.0, 5.0, 1.25, 0.10),
    ("claude-3-5-haiku", 0.8, 4.0, 1.0, 0.08),
    ("claude-3-haiku", 0.25, 1.25, 0.30, 0.03),
    ("gpt-5.5", 5.0, 30.0, 5.0, 0.50),
    ("gpt-5.4-mini", 0.75, 4.5, 0.75, 0.075),
    ("gpt-5.4-nano", 0.2, 1.25, 0.2, 0.02),
    ("gpt-5.4", 2.5, 15.0, 2.5, 0.25),
    ("gpt-5-mini", 0.25, 2.0, 0.25, 0.025),
    ("gpt-5", 1.25, 10.0, 1.25, 0.125),
    ("gpt-4.1-mini", 0.4, 1.6, 0.4, 0.10),
    ("gpt-4.1", 2.0, 8.0, 2.0, 0.50),
    ("gpt-4o-mini", 0.15, 0.6, 0.15, 0.075),
    ("gpt-4o", 2.5, 10.0, 2.5, 1.25),
];

impl Price {
    pub const FREE: Price = Price {
        input_per_mtok: 0.0,
        output_per_mtok: 0.0,
        cache_write_per_mtok: Some(0.0),
        cache_read_per_mtok: Some(0.0),
    };

    /// The built-in price of `model`, if the table lists it.
    pub fn listed(model: &str) -> Option<Price> {
        PRICES
            .iter()
            .find(|(prefix, ..)| model.starts_with(prefix))
            .map(|&(_, i, o, w, r)| Price {
                input_per_mtok: i,
                output_per_mtok: o,
                cache_write_per_mtok: Some(w),
                cache_read_per_mtok: Some(r),
            })
    }

    /// This price with its cache prices filled in by `backend`'s rule.
    pub fn resolved(self, backend: BackendKind) -> Price {
        let (w, r) = match backend {
            BackendKind::Anthropic => (1.25, 0.1),
            BackendKind::Openai | BackendKind::Sim => (1.0, 1.0),
        };
        Price {
            cache_write_per_mtok: Some(self.cache_write_per_mtok.unwrap_or(self.input_per_mtok * w)),
            cache_read_per_mtok: Some(self.cache_read_per_mtok.unwrap_or(self.input_per_mtok * r)),
            ..self
        }
    }

    /// Every price of this one times `factor` (the batch price).
    pub fn scaled(self, factor: f64) -> Price {
        Price {
            input_per_mtok: self.input_per_mtok * factor,
            output_per_mtok: self.output_per_mtok * factor,
            cache_write_per_mtok: self.cache_write_per_mtok.map(|p| p * factor),
            cache_read_per_mtok: self.cache_read_per_mtok.map(|p| p * factor),
        }
    }

    fn write(&self) -> f64 {
        self.cache_write_per_mtok.unwrap_or(self.input_per_mtok)
    }

    fn read(&self) -> f64 {
        self.cache_read_per_mtok.unwrap_or(self.input_per_mtok)
    }

    /// Micro-dollars for `u`: uncached input, cache writes and cache reads
    /// each at their price, and output.
    pub fn micro_usd(&self, u: &Usage) -> u64 {
        (u.uncached_input_tokens() as f64 * self.input_per_mtok
            + u.cache_creation_input_tokens as f64 * self.write()
            + u.cache_read_input_tokens as f64 * self.read()
            + u.output_tokens as f64 * self.output_per_mtok)
            .round() as u64
    }

    /// Micro-dollars the prompt cache saved on `u` against paying every
    /// input token at the input price (negative when writes cost more than
    /// reads saved).
    pub fn cache_saving_micro_usd(&self, u: &Usage) -> i64 {
        let uncached = Usage {
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
            ..*u
        };
        self.micro_usd(&uncached) as i64 - self.micro_usd(u) as i64
    }

    /// Whether every price is a non-negative, finite number.
    pub fn is_valid(&self) -> bool {
        [
            Some(self.input_per_mtok),
            Some(self.output_per_mtok),
            self.cache_write_per_mtok,
            self.cache_read_per_mtok,
        ]
        .into_iter()
        .flatten()
        .all(|p| p >= 0.0 && p.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_prefix_wins() {
        assert_eq!(Price::listed("claude-opus-4-6").unwrap().input_per_mtok, 5.0);
        assert_eq!(Price::listed("claude-opus-4-1-20250805").unwrap().input_per_mtok, 15.0);
        assert_eq!(Price::listed("gpt-5.4-mini").unwrap().output_per_mtok, 4.5);
        assert_eq!(Price::listed("gpt-5.1").unwrap().input_per_mtok, 1.25);
        assert_eq!(Price::listed("llama-3"), None);
    }

    #[test]
    fn cache_reads_and_writes_are_priced_apart() {
        // Sonnet 4.x: $3 in, $3.75 write, $0.30 read, $15 out.
        let p = Price::listed("claude-sonnet-4-6").unwrap();
        let u = Usage {
            input_tokens: 1_000_000 + 2_000_000 + 4_000_000,
            output_tokens: 1_000_000,
            cache_creation_input_tokens: 2_000_000,
            cache_read_input_tokens: 4_000_000,
            reasoning_tokens: 0,
        };
        assert_eq!(p.micro_usd(&u), 3_000_000 + 7_500_000 + 1_200_000 + 15_000_000);
        // Uncached, the same input costs 7 × $3.
        assert_eq!(
            p.cache_saving_micro_usd(&u),
            21_000_000 - 3_000_000 - 7_500_000 - 1_200_000
        );
        assert_eq!(p.micro_usd(&Usage::tokens(1_000_000, 0)), 3_000_000);
    }

    #[test]
    fn a_spec_price_without_cache_prices_follows_the_providers_rule() {
        let p = Price {
            input_per_mtok: 10.0,
            output_per_mtok: 20.0,
            cache_write_per_mtok: None,
            cache_read_per_mtok: None,
        };
        let a = p.resolved(BackendKind::Anthropic);
        assert_eq!((a.cache_write_per_mtok, a.cache_read_per_mtok), (Some(12.5), Some(1.0)));
        let o = p.resolved(BackendKind::Openai);
        assert_eq!(
            (o.cache_write_per_mtok, o.cache_read_per_mtok),
            (Some(10.0), Some(10.0))
        );
    }
}
