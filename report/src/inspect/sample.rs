//! One job as an Inspect sample: its conversation as messages, its final
//! reply as the output, each classifier's verdict as a score, its tokens as
//! model usage, and where it sits in the sweep as metadata.

use std::borrow::Cow;
use std::io::Write;

use candor_core::result::{JobResult, Message as Turn, Role, Status};

use super::schema::{
    Choice, Content, EvalError, Limit, Message, ModelUsage, Ordered, Output, Part, SampleMeta, Score, ScoreMeta,
    Summary,
};

/// Inspect's own limits on a summary (`inspect_ai/log/_util.py`): input
/// texts cut to 5,120 characters, other texts to about 1,024.
const SUMMARY_INPUT_CHARS: usize = 5120;
const SUMMARY_TEXT_CHARS: usize = 1024;

/// What the writer needs of the model a job ran: its name as Inspect shows
/// a model (`backend/model`) and the provider's model name.
pub struct ModelName {
    pub inspect: String,
    pub provider: String,
}

/// A job made into the pieces of its sample and of its summary.
pub struct Parts<'a> {
    pub r: &'a JobResult,
    pub messages: Vec<Message<'a>>,
    /// How many of `messages` are the input (the system prompt and the first user turn).
    pub input_len: usize,
    pub scores: Option<Ordered<&'a str, Score<'a>>>,
    pub meta: SampleMeta<'a>,
    pub model_usage: Ordered<&'a str, ModelUsage>,
    pub role_usage: Ordered<&'static str, ModelUsage>,
    pub started_at: String,
    pub completed_at: String,
    pub seconds: f64,
    pub error: Option<String>,
}

impl<'a> Parts<'a> {
    /// `classifiers` in the order their scores are listed (the primary first).
    pub fn of(r: &'a JobResult, model: &'a ModelName, classifiers: &'a [String]) -> Parts<'a> {
        let (messages, input_len) = messages(r, &model.provider);
        let mut role_usage = Vec::new();
        if r.judge_usage.input_tokens + r.judge_usage.output_tokens > 0 {
            role_usage.push(("judge", ModelUsage::from(&r.judge_usage)));
        }
        let end_ms = r.started_at_ms + r.latency_ms.max(0.0).round() as u64;
        Parts {
            r,
            messages,
            input_len,
            scores: scores(r, classifiers),
            meta: meta(r),
            model_usage: Ordered(vec![(model.inspect.as_str(), ModelUsage::from(&r.usage))]),
            role_usage: Ordered(role_usage),
            started_at: rfc3339_ms(r.started_at_ms),
            completed_at: rfc3339_ms(end_ms),
            seconds: r.latency_ms.max(0.0).round() / 1000.0,
            error: (r.status == Status::Failed).then(|| error_message(r)),
        }
    }

    /// `samples/<id>_epoch_1.json`: the sample as JSON.
    pub fn write_sample(&self, model: &'a ModelName, w: impl Write) -> serde_json::Result<()> {
        let last = self.messages.iter().rev().find(|m| m.role == "assistant");
        let completion = self
            .r
            .output
            .as_deref()
            .or_else(|| last_assistant(self.r).map(|t| t.content.as_str()))
            .unwrap_or("");
        let choices = match (last, last_assistant(self.r)) {
            (Some(m), Some(t)) => vec![Choice {
                message: m.clone(),
                stop_reason: stop_reason(t.stop_reason.as_deref()),
            }],
            _ => Vec::new(),
        };
        let sample = super::schema::Sample {
            id: &self.r.job_id,
            epoch: 1,
            input: &self.messages[..self.input_len],
            target: "",
            messages: &self.messages,
            output: Output {
                model: &model.provider,
                choices,
                completion,
                usage: Some(ModelUsage::from(&self.r.usage)),
                time: self.seconds,
                error: self.error.as_deref(),
            },
            scores: self.scores.as_ref(),
            metadata: &self.meta,
            store: Default::default(),
            events: [],
            model_usage: &self.model_usage,
            role_usage: &self.role_usage,
            started_at: &self.started_at,
            completed_at: &self.completed_at,
            total_time: self.seconds,
            working_time: self.seconds,
            uuid: &self.r.job_id,
            error: self.error.as_ref().map(|m| EvalError {
                message: m.clone(),
                traceback: "",
                traceback_ansi: "",
            }),
            attachments: Default::default(),
            limit: (self.r.status == Status::Incomplete).then_some(Limit {
                kind: "turn",
                limit: f64::from(self.r.turns),
            }),
        };
        serde_json::to_writer(w, &sample)
    }

    /// One element of `summaries.json`, with long texts cut as Inspect cuts them.
    pub fn write_summary(&self, w: impl Write) -> serde_json::Result<()> {
        let input: Vec<Message> = self.messages[..self.input_len]
            .iter()
            .map(|m| Message {
                content: match &m.content {
                    Content::Text(t) => Content::Text(cut(t, SUMMARY_INPUT_CHARS, "...\n(content truncated)")),
                    parts => parts.clone(),
                },
                ..m.clone()
            })
            .collect();
        let scores = self.scores.as_ref().map(|s| {
            Ordered(
                s.0.iter()
                    .map(|(k, v)| {
                        let explanation = v.explanation.as_deref().map(|e| cut(e, SUMMARY_TEXT_CHARS, "..."));
                        (
                            *k,
                            Score {
                                explanation,
                                ..v.clone()
                            },
                        )
                    })
                    .collect(),
            )
        });
        let meta = SampleMeta {
            query: cut(&self.meta.query, SUMMARY_TEXT_CHARS, "..."),
            error_kind: self.meta.error_kind.clone(),
            ..self.meta
        };
        let summary = Summary {
            id: &self.r.job_id,
            epoch: 1,
            input: &input,
            target: "",
            metadata: &meta,
            scores: scores.as_ref(),
            model_usage: &self.model_usage,
            role_usage: &self.role_usage,
            started_at: &self.started_at,
            completed_at: &self.completed_at,
            total_time: self.seconds,
            working_time: self.seconds,
            uuid: &self.r.job_id,
            error: self.error.as_deref(),
            limit: (self.r.status == Status::Incomplete).then_some("turn"),
            retries: 0,
            completed: true,
            message_count: self.messages.len(),
        };
        serde_json::to_writer(w, &summary)
    }
}

/// The system prompt and every turn as Inspect messages; the input is the
/// system prompt and the first user turn.
fn messages<'a>(r: &'a JobResult, provider: &'a str) -> (Vec<Message<'a>>, usize) {
    let t = &r.transcript;
    let mut out = Vec::with_capacity(t.messages.len() + 1);
    let id = |i: usize| format!("{}-{i}", r.job_id);
    if !t.system.is_empty() {
        out.push(Message {
            id: id(0),
            content: Content::Text(Cow::Borrowed(&t.system)),
            source: None,
            role: "system",
            model: None,
        });
    }
    let mut input_len = None;
    for (i, m) in t.messages.iter().enumerate() {
        let first_user = m.role == Role::User && input_len.is_none();
        out.push(match m.role {
            Role::User => Message {
                id: id(i + 1),
                content: Content::Text(Cow::Borrowed(&m.content)),
                source: first_user.then_some("input"),
                role: "user",
                model: None,
            },
            Role::Assistant => Message {
                id: id(i + 1),
                content: assistant_content(m),
                source: Some("generate"),
                role: "assistant",
                model: Some(provider),
            },
        });
        if first_user {
            input_len = Some(out.len());
        }
    }
    let input_len = input_len.unwrap_or(out.len());
    (out, input_len)
}

/// A turn's text, after its reasoning when the provider returned any.
fn assistant_content(m: &Turn) -> Content<'_> {
    let Some(r) = &m.reasoning else {
        return Content::Text(Cow::Borrowed(&m.content));
    };
    let mut parts = Vec::with_capacity(2 + r.redacted.len());
    if !r.text.is_empty() || r.signature.is_some() {
        parts.push(Part::Reasoning {
            reasoning: &r.text,
            signature: r.signature.as_deref(),
            redacted: false,
        });
    }
    for data in &r.redacted {
        parts.push(Part::Reasoning {
            reasoning: data,
            signature: None,
            redacted: true,
        });
    }
    parts.push(Part::Text { text: &m.content });
    Content::Parts(parts)
}

fn last_assistant(r: &JobResult) -> Option<&Turn> {
    r.transcript.messages.iter().rev().find(|m| m.role == Role::Assistant)
}

/// A provider's stop reason as Inspect's `StopReason` names it.
pub fn stop_reason(reason: Option<&str>) -> &'static str {
    match reason {
        Some("end_turn" | "stop" | "stop_sequence" | "pause_turn") => "stop",
        Some("max_tokens" | "length") => "max_tokens",
        Some("model_context_window_exceeded") => "model_length",
        Some("tool_use" | "tool_calls" | "function_call") => "tool_calls",
        Some("refusal" | "content_filter") => "content_filter",
        _ => "unknown",
    }
}

/// One score per verdict the job has, in `classifiers`' order (a verdict
/// of a classifier not listed comes after them); none for a job that was
/// not classified.
fn scores<'a>(r: &'a JobResult, classifiers: &'a [String]) -> Option<Ordered<&'a str, Score<'a>>> {
    if r.classifications.is_empty() {
        return None;
    }
    let listed = classifiers.iter().map(String::as_str);
    let others = r
        .classifications
        .keys()
        .map(String::as_str)
        .filter(|k| !classifiers.iter().any(|c| c == k));
    let scores = listed
        .chain(others)
        .filter_map(|name| {
            let verdict = *r.classifications.get(name)?;
            Some((name, score(r, name, verdict)))
        })
        .collect();
    Some(Ordered(scores))
}

fn score<'a>(r: &'a JobResult, name: &str, verdict: bool) -> Score<'a> {
    let answer = r.output.as_deref().map(|o| cut(o, SUMMARY_TEXT_CHARS, "..."));
    let Some(j) = r.judgements.get(name) else {
        return Score {
            value: u8::from(verdict),
            answer,
            explanation: None,
            metadata: ScoreMeta {
                verdict,
                kind: "rule",
                yes_votes: None,
                valid_votes: None,
                fraction: None,
            },
        };
    };
    let mut text = format!("{} of {} readable votes yes", j.yes_votes, j.valid_votes);
    for (i, v) in j.votes.iter().enumerate() {
        let said = match v.yes {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unreadable",
        };
        text.push_str(&format!("\n\nvote {} ({said}):\n{}", i + 1, v.reply));
    }
    Score {
        value: u8::from(verdict),
        answer,
        explanation: Some(Cow::Owned(text)),
        metadata: ScoreMeta {
            verdict,
            kind: "judge",
            yes_votes: Some(j.yes_votes),
            valid_votes: Some(j.valid_votes),
            fraction: j.fraction.is_finite().then_some(j.fraction),
        },
    }
}

fn meta(r: &JobResult) -> SampleMeta<'_> {
    SampleMeta {
        model: &r.model,
        variant: &r.variant,
        condition: &r.condition,
        query_index: r.query_index,
        query: Cow::Borrowed(&r.query),
        seed: r.seed,
        status: r.status.name(),
        error_kind: r.error_kind.map(|k| k.to_string()),
        job_index: r.index,
        attempt: r.attempt,
        turns: r.turns,
        cache_hits: r.cache_hits,
        cost_usd: if r.cost_usd.is_finite() { r.cost_usd } else { 0.0 },
        sweep_id: &r.sweep_id,
    }
}

fn error_message(r: &JobResult) -> String {
    let error = r.error.as_deref().unwrap_or("the job failed");
    match r.error_kind {
        Some(k) => format!("{k}: {error}"),
        None => error.to_string(),
    }
}

/// `s` cut to `max` characters, with `tail` after the cut.
pub fn cut<'s>(s: &'s str, max: usize, tail: &str) -> Cow<'s, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some((at, _)) => Cow::Owned(format!("{}{tail}", &s[..at])),
    }
}

/// A Unix time in milliseconds as RFC 3339 in UTC, to the millisecond.
pub fn rfc3339_ms(ms: u64) -> String {
    candor_core::time::rfc3339(ms / 1000, &format!(".{:03}", ms % 1000))
}
