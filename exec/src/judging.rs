//! Running a sweep's judge classifiers on one output: the prompt from the
//! classifier's template, `votes` calls to the judge model (through the same
//! rate limits, retries and cache as any model call), the replies parsed and
//! turned into a verdict.

use std::sync::Arc;

use candor_core::judge::{self, Judgement, Vote};
use candor_core::spec::{JudgeInput, Params};
use candor_core::{ErrorKind, JobId, Message, Sweep, Usage};

use crate::backend::{Backend, BackendError, ChatRequest};

/// The judge backends of one sweep, per classifier.
pub struct Judges {
    per: Vec<Option<(Arc<dyn Backend>, Params)>>,
}

/// What judging cost so far, counted even when it fails.
#[derive(Debug, Default, Clone, Copy)]
pub struct Spent {
    pub usage: Usage,
    pub micro_usd: u64,
    pub cache_hits: u32,
}

/// Why a classifier has no verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgeFailure {
    pub message: String,
    /// Trying the job again may help (a passing error, unreadable votes).
    pub retryable: bool,
    /// The judge's provider refused the API key.
    pub unauthorized: bool,
    pub kind: ErrorKind,
}

impl Judges {
    /// Judge backends for `sweep`, each built by `backend` from its model entry.
    pub fn new(sweep: &Sweep, backend: impl Fn(&candor_core::spec::ModelEntry) -> Arc<dyn Backend>) -> Self {
        let per = sweep
            .spec
            .classifiers
            .iter()
            .zip(&sweep.judge_models)
            .map(|(c, m)| {
                let (j, m) = (c.judge()?, m.as_ref()?);
                // The judge's temperature where its API takes one.
                let params = Params {
                    temperature: candor_core::spec::rules::accepts_sampling(m).then(|| j.temperature()),
                    max_tokens: Some(j.max_tokens()),
                    ..m.params.clone()
                };
                Some((backend(m), params))
            })
            .collect();
        Judges { per }
    }

    /// Asks the judge of classifier `ci` about one output. Vote `v` of
    /// attempt `a` is sampled with seed `(a - 1) × votes + v`, so a retried
    /// job gets fresh votes rather than cached ones.
    pub async fn judge(
        &self,
        sweep: &Sweep,
        ci: usize,
        input: &JudgeInput<'_>,
        job_id: JobId,
        attempt: u32,
        spent: &mut Spent,
    ) -> Result<Judgement, JudgeFailure> {
        let cl = &sweep.spec.classifiers[ci];
        let (Some(spec), Some((backend, params)), Some(model)) =
            (cl.judge(), self.per[ci].as_ref(), sweep.judge_models[ci].as_ref())
        else {
            return Err(JudgeFailure {
                message: format!("classifier `{}` is not a judge", cl.name()),
                retryable: false,
                unauthorized: false,
                kind: ErrorKind::Render,
            });
        };
        let prompt = sweep.judge_prompt(ci, input).map_err(|e| JudgeFailure {
            message: format!("classifier `{}`: rendering the judge prompt failed: {e}", cl.name()),
            retryable: false,
            unauthorized: false,
            kind: ErrorKind::Render,
        })?;
        let messages = [Message::user(prompt)];
        let price = model.price();
        let mut votes = Vec::with_capacity(spec.votes as usize);
        for v in 0..spec.votes {
            let req = ChatRequest {
                model,
                system: "",
                messages: &messages,
                params,
                job_id,
                seed: attempt.saturating_sub(1).saturating_mul(spec.votes).saturating_add(v),
                turn: 1,
                attempt,
                condition: input.condition,
                judge: Some(spec.ask()),
            };
            let reply = backend.complete(req).await.map_err(|e| JudgeFailure {
                message: format!("classifier `{}`: judge {}: {e}", cl.name(), model.id),
                retryable: e.is_retryable(),
                unauthorized: matches!(e, BackendError::Unauthorized { .. }),
                kind: e.kind(),
            })?;
            spent.usage += reply.usage;
            if reply.cached {
                spent.cache_hits += 1;
            } else {
                spent.micro_usd += price.micro_usd(&reply.usage);
            }
            let (yes, score) = judge::parse(spec.parser(), &reply.text, spec.score_yes_at(), spec.score_max);
            votes.push(Vote {
                yes,
                score,
                reply: judge::keep(&reply.text),
            });
        }
        let last = votes.last().map(|v| v.reply.chars().take(200).collect::<String>());
        judge::decide(votes, spec.threshold).ok_or_else(|| JudgeFailure {
            message: format!(
                "classifier `{}`: no readable verdict in {} votes (last reply: {:?})",
                cl.name(),
                spec.votes,
                last.unwrap_or_default()
            ),
            retryable: true,
            unauthorized: false,
            kind: ErrorKind::Verdict,
        })
    }
}

/// The conversation as plain text for a judge: the system prompt, then each
/// turn with its speaker.
pub fn transcript_text(t: &candor_core::Transcript) -> String {
    let mut s = format!("System: {}", t.system);
    for m in &t.messages {
        let who = match m.role {
            candor_core::Role::User => "User",
            candor_core::Role::Assistant => "Assistant",
        };
        if let Some(r) = m.reasoning.as_ref().filter(|r| !r.text.is_empty()) {
            s.push_str(&format!("\n\n{who} (reasoning): {}", r.text));
        }
        s.push_str(&format!("\n\n{who}: {}", m.content));
    }
    s
}
