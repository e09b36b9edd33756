//! The provider's prompt cache in a report: per model, the share of input
//! tokens read from the cache and the money it saved, summed from the
//! results (each result carries what caching saved on its billed calls).

use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};

use candor_core::Usage;

use super::Report;

/// How much of a model's input the provider's prompt cache served.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptCacheUse {
    /// Every input token of the model's calls, cached or not.
    pub input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_creation_input_tokens: u64,
    /// `cache_read_input_tokens / input_tokens`.
    pub cached_share: f64,
    /// US dollars the cache saved against paying every input token at the
    /// input price (cache writes at their higher price counted against it).
    pub saved_usd: f64,
}

/// The part of a result line read here.
#[derive(Deserialize)]
struct Line {
    model: String,
    #[serde(default)]
    usage: Usage,
    #[serde(default)]
    cache_saving_usd: f64,
}

/// Each model's prompt-cache use, summed result by result, and its own
/// calls' usage (for what batching saved).
#[derive(Debug, Default)]
pub struct CacheTally {
    per: std::collections::HashMap<String, PromptCacheUse>,
    usage: std::collections::HashMap<String, Usage>,
}

impl CacheTally {
    /// Adds one line of results.jsonl (an unreadable line is skipped).
    pub fn add(&mut self, line: &[u8]) {
        let Ok(l) = serde_json::from_slice::<Line>(line) else {
            return;
        };
        let u = self.usage.entry(l.model.clone()).or_default();
        u.input_tokens += l.usage.input_tokens;
        u.output_tokens += l.usage.output_tokens;
        u.cache_read_input_tokens += l.usage.cache_read_input_tokens;
        u.cache_creation_input_tokens += l.usage.cache_creation_input_tokens;
        let p = self.per.entry(l.model).or_default();
        p.input_tokens += l.usage.input_tokens;
        p.cache_read_input_tokens += l.usage.cache_read_input_tokens;
        p.cache_creation_input_tokens += l.usage.cache_creation_input_tokens;
        p.saved_usd += l.cache_saving_usd;
    }

    /// Puts each model's use in `report.costs`, with a note.
    pub fn apply(mut self, report: &mut Report) {
        for c in report.costs.iter_mut() {
            if let (Some(f), Some(u)) = (c.batch_price_factor.filter(|f| *f > 0.0), self.usage.get(&c.model)) {
                let price = candor_core::spec::price::Price {
                    input_per_mtok: c.input_per_mtok,
                    output_per_mtok: c.output_per_mtok,
                    cache_write_per_mtok: c.cache_write_per_mtok,
                    cache_read_per_mtok: c.cache_read_per_mtok,
                };
                let saved = price.micro_usd(u) as f64 / 1e6 * (1.0 / f - 1.0);
                c.batch_saving_usd = Some(saved);
                report.notes.push(format!(
                    "BATCH: model {}: its calls went through the provider's batch API at {:.0}% of the standard \
                     price, saving ${saved:.4} on them (its judges' calls are priced by their own entries).",
                    c.model,
                    f * 100.0
                ));
            }
            let Some(mut p) = self.per.remove(&c.model) else {
                continue;
            };
            if p.cache_read_input_tokens + p.cache_creation_input_tokens == 0 {
                continue;
            }
            p.cached_share = p.cache_read_input_tokens as f64 / p.input_tokens.max(1) as f64;
            report.notes.push(format!(
                "PROMPT CACHE: model {}: {:.1}% of input tokens read from the provider's cache, saving ${:.4} \
                 (cost ${:.4}).",
                c.model,
                p.cached_share * 100.0,
                p.saved_usd,
                c.usd
            ));
            c.prompt_cache = Some(p);
        }
    }
}

/// Adds each model's prompt-cache use to `report.costs`, and a note, from
/// the results in `results` (results.jsonl). Reads nothing when every model
/// is free (the simulated model caches nothing).
pub fn add_prompt_cache(report: &mut Report, results: &Path) -> std::io::Result<()> {
    if report
        .costs
        .iter()
        .all(|c| c.input_per_mtok == 0.0 && c.batch_price_factor.is_none())
    {
        return Ok(());
    }
    let mut tally = CacheTally::default();
    let file = std::fs::File::open(results)?;
    for line in std::io::BufReader::with_capacity(1 << 20, file).split(b'\n') {
        tally.add(&line?);
    }
    tally.apply(report);
    Ok(())
}
