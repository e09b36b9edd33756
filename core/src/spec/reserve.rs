//! The cost the budget reserves for each job in flight of a sweep whose
//! models under test include a batched one: an upper-bound estimate of one
//! job's cost, known from the spec before any job has finished.
//!
//! The budget counts each job in flight at the dearest finished job's cost
//! (`crate::budget`); with nothing finished nothing is known, and jobs start
//! one at a time. A batched job takes minutes to hours per round of calls,
//! so that would run the first job alone through all its rounds. With a
//! reserve, each job in flight counts at [`Sweep::reserved_micro_usd`] at
//! least, and batched jobs start together from the first.
//!
//! The estimate of one job, for each model under test (the reserve is the
//! largest), at [`BYTES_PER_TOKEN`] bytes a token:
//! - the prompt: the longest rendered prompt (system + user) of query 0
//!   over every variant × condition, grown by how much the dataset's longest
//!   query is longer than query 0's, plus the protocol's prefill;
//! - turns: `protocol.max_turns` for the scratchpad protocol, 1 for single
//!   and reasoning; each turn writes `max_tokens` (the entry's
//!   `params.max_tokens`, else what candor sends to Anthropic when it is
//!   unset, else [`DEFAULT_MAX_TOKENS`]) and reads the prompt, the earlier
//!   turns' outputs (at `max_tokens` each) and continuation messages;
//! - each judge classifier: `votes` calls, each reading the judge
//!   template's source and the whole conversation above, and writing the
//!   judge's `max_tokens` (default 1024).
//!
//! Each part is priced at its entry's `price()` (the batch price for a
//! batched entry), every input token at the dearer of the input and the
//! cache-write price. It is an upper bound as far as the bytes a token and
//! the output limit hold: text of fewer bytes a token, or an OpenAI model
//! with no `max_tokens` that writes more than 4096 tokens, can cost more.

use super::model::{BackendKind, ModelEntry};
use super::price::Price;
use super::rules::ANTHROPIC_DEFAULT_MAX_TOKENS;
use super::{ProtocolKind, Sweep};
use crate::jobs::JobTuple;
use crate::result::Usage;

/// Bytes a token, in the estimate.
pub const BYTES_PER_TOKEN: u64 = 4;
/// Output tokens a turn is counted at when neither the entry nor the
/// provider's default sets a limit.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The bounds of one job's conversation with a model under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Conversation {
    /// Input tokens over every turn.
    input: u64,
    /// Output tokens over every turn.
    output: u64,
    /// Bytes of the whole conversation: what a judge reads of it.
    bytes: u64,
}

impl Sweep {
    /// What the budget counts each job in flight at, at least, in micro-USD:
    /// when a model under test is batched, an upper-bound estimate of one
    /// job's cost (see the module docs); else 0, and the budget waits for
    /// the first job's cost as before.
    pub fn reserved_micro_usd(&self) -> u64 {
        if self.rows.is_empty() || !self.spec.models.iter().any(|m| m.batched().is_some()) {
            return 0;
        }
        (0..self.spec.models.len())
            .map(|m| self.job_bound(m))
            .max()
            .unwrap_or(0)
    }

    /// The bound of one job of model `m`: its conversation and its judges.
    fn job_bound(&self, m: usize) -> u64 {
        let c = self.conversation(m);
        let mut cost = bound(self.spec.models[m].price(), c.input, c.output);
        for (ci, (cl, judge)) in self.spec.classifiers.iter().zip(&self.judge_models).enumerate() {
            let (Some(j), Some(judge)) = (cl.judge(), judge) else {
                continue;
            };
            let template = self
                .templates
                .source_len(&format!("classifiers[{ci}].template"))
                .unwrap_or(0) as u64;
            let call = bound(judge.price(), tokens(template + c.bytes), u64::from(j.max_tokens()));
            cost = cost.saturating_add(call.saturating_mul(u64::from(j.votes)));
        }
        cost
    }

    /// The bounds of a conversation of model `m` that takes every turn the
    /// protocol allows, each written to its `max_tokens`.
    fn conversation(&self, m: usize) -> Conversation {
        let p = &self.spec.protocol;
        let turns = match p.kind {
            ProtocolKind::Scratchpad => u64::from(p.max_turns),
            ProtocolKind::Single | ProtocolKind::Reasoning => 1,
        };
        let max = u64::from(max_tokens(&self.spec.models[m]));
        let prompt = self.prompt_bytes(m) + p.prefill.as_ref().map_or(0, String::len) as u64;
        let next = p.continuation.len() as u64;
        let input = (0..turns).map(|k| tokens(prompt + k * next) + k * max).sum();
        Conversation {
            input,
            output: turns * max,
            bytes: prompt + turns.saturating_sub(1) * next + turns * max * BYTES_PER_TOKEN,
        }
    }

    /// Bytes of model `m`'s longest prompt (system + user): query 0's under
    /// every variant × condition, grown by the longest query's excess over
    /// query 0's.
    fn prompt_bytes(&self, m: usize) -> u64 {
        let longest = self.rows.iter().map(|r| r.query.len()).max().unwrap_or(0);
        let excess = longest.saturating_sub(self.rows[0].query.len());
        let mut most = 0;
        for variant in 0..self.spec.prompts.len() {
            for condition in 0..self.spec.conditions.len() {
                let t = JobTuple {
                    model: m,
                    variant,
                    query: 0,
                    condition,
                    seed: 0,
                };
                if let Ok((system, user)) = self.render(&t) {
                    most = most.max(system.len() + user.len());
                }
            }
        }
        (most + excess) as u64
    }
}

/// The output limit a turn of `m` is counted at.
fn max_tokens(m: &ModelEntry) -> u32 {
    m.params.max_tokens.unwrap_or(match m.backend {
        BackendKind::Anthropic => ANTHROPIC_DEFAULT_MAX_TOKENS,
        BackendKind::Openai | BackendKind::Sim => DEFAULT_MAX_TOKENS,
    })
}

fn tokens(bytes: u64) -> u64 {
    bytes.div_ceil(BYTES_PER_TOKEN)
}

/// Micro-USD of a call of `input` and `output` tokens at `price`, the input
/// at the dearer of plain input and prompt-cache writes.
fn bound(price: Price, input: u64, output: u64) -> u64 {
    let plain = Usage::tokens(input, output);
    let written = Usage {
        cache_creation_input_tokens: input,
        ..plain
    };
    price.micro_usd(&plain).max(price.micro_usd(&written))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::Bundle;
    use super::*;

    /// A batched model and a realtime one under test, and a judge, at round
    /// prices. The numbers in the tests are worked out from it by hand.
    const SPEC: &str = "name: t
models:
  - id: big
    backend: anthropic
    model: any
    batch: true
    params: {max_tokens: 100}
    price: {input_per_mtok: 10, output_per_mtok: 20}
  - id: small
    backend: openai
    model: any
    price: {input_per_mtok: 1, output_per_mtok: 1}
judges:
  - {id: judge, backend: openai, model: any, price: {input_per_mtok: 2, output_per_mtok: 4}}
dataset:
  path: data.csv
  field: q
prompts:
  - name: p
    system: \"sys\"
    user: \"{{ query }} {{ tone }}\"
conditions:
  - name: a
    vars: {tone: warm}
  - name: b
    vars: {tone: colder}
protocol: {kind: scratchpad, max_turns: 2, continuation: \"<NEXT/>\"}
classifiers:
  - {kind: prefix}
  - {name: j, kind: judge, judge: judge, votes: 3, max_tokens: 10, template: \"{{ transcript }} ok?\"}
";

    fn sweep(spec: &str) -> Sweep {
        let bundle = Bundle {
            spec_path: "dir/spec.yaml".into(),
            spec: spec.into(),
            // Query 0 is 3 bytes, the longest 8.
            files: BTreeMap::from([("data.csv".to_string(), "q\nabc\nabcdefgh\n".to_string())]),
            run: String::new(),
        };
        Sweep::from_bundle(&bundle).unwrap()
    }

    #[test]
    fn a_batched_sweep_reserves_the_dearest_models_bound_with_its_judges() {
        let s = sweep(SPEC);
        // The prompt: "sys" + "abc colder" (13 bytes) + 5 for the longest
        // query: 18 bytes. Two turns, "<NEXT/>" (7 bytes) between them.
        //
        // big: 100 tokens a turn. Turn 1 reads ceil(18 / 4) = 5 tokens,
        // turn 2 ceil(25 / 4) + 100 = 107: 112 in, 200 out. At the batch
        // price (half) input is 5, a cache write 6.25 (Anthropic's 1.25×),
        // output 10 micro-USD a token: 112 × 6.25 + 200 × 10 = 2_700.
        // Its judge reads the template (20 bytes) and 18 + 7 + 2 × 100 × 4 =
        // 825 bytes: ceil(845 / 4) = 212 tokens at 2, 10 out at 4 = 464 a
        // vote; 3 votes: 1_392. In all 4_092.
        assert_eq!(s.job_bound(0), 2_700 + 1_392);
        // small (realtime, OpenAI's 4096 tokens a turn): 5 + (7 + 4_096) =
        // 4_108 in, 8_192 out at 1: 12_300. Its judge reads 20 + 18 + 7 +
        // 2 × 4_096 × 4 = 32_813 bytes: 8_204 tokens at 2, 10 out at 4:
        // 16_448 a vote, 49_344 for 3. In all 61_644, the dearer.
        assert_eq!(s.job_bound(1), 12_300 + 49_344);
        assert_eq!(s.reserved_micro_usd(), 61_644);
    }

    #[test]
    fn single_call_protocols_count_one_turn() {
        let s = sweep(&SPEC.replace("kind: scratchpad, max_turns: 2", "kind: single, max_turns: 2"));
        // big: 5 in at 6.25 (31.25) + 100 out at 10; its judge reads 20 +
        // 18 + 400 bytes, ceil(438 / 4) = 110 tokens: (220 + 40) × 3.
        assert_eq!(s.job_bound(0), 1_031 + 780);
    }

    #[test]
    fn a_sweep_without_a_batched_model_under_test_reserves_nothing() {
        assert_eq!(
            sweep(&SPEC.replace("batch: true", "batch: false")).reserved_micro_usd(),
            0
        );
        // A batched judge alone does not make the sweep's jobs batched.
        let judge_only = SPEC.replace("batch: true", "batch: false").replace(
            "model: any, price: {input_per_mtok: 2",
            "model: any, batch: true, price: {input_per_mtok: 2",
        );
        assert_eq!(sweep(&judge_only).reserved_micro_usd(), 0);
    }
}
