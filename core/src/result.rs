//! What a job produces: one `JobResult` per job id, as exported to
//! `results.jsonl`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    /// The turn's text (for a reasoning model, the reply after its reasoning).
    pub content: String,
    /// An assistant turn's own reasoning, kept apart from its text, when the
    /// provider returned it (Anthropic thinking blocks; the `reasoning` or
    /// `reasoning_content` field of OpenAI-compatible servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    /// Why the model stopped this assistant turn, as the provider said it
    /// (`end_turn`, `max_tokens`, `refusal`, `stop`, `length`,
    /// `content_filter`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
            reasoning: None,
            stop_reason: None,
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
            reasoning: None,
            stop_reason: None,
        }
    }
}

/// A model's reasoning of one turn, as the provider returned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Reasoning {
    /// The reasoning text (Anthropic returns a summary, or nothing when the
    /// model's `display` is `omitted`).
    pub text: String,
    /// Anthropic's signature of the thinking blocks, which the API wants
    /// back unchanged when the conversation goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Thinking blocks the provider returned encrypted (`redacted_thinking`),
    /// kept as they came so that they can be sent back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
}

/// Every turn of a job's conversation, including the system prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Transcript {
    pub system: String,
    pub messages: Vec<Message>,
}

/// Tokens of one or more model calls. `input_tokens` counts every prompt
/// token, cached or not (Anthropic's `input_tokens` +
/// `cache_creation_input_tokens` + `cache_read_input_tokens`; OpenAI's
/// `prompt_tokens`); the cache counts are parts of it. `output_tokens`
/// counts every generated token, reasoning included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Input tokens written to the provider's prompt cache (Anthropic's
    /// `cache_creation_input_tokens`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the provider's prompt cache (Anthropic's
    /// `cache_read_input_tokens`; OpenAI's `prompt_tokens_details.cached_tokens`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_input_tokens: u64,
    /// Output tokens the model spent reasoning (OpenAI's
    /// `completion_tokens_details.reasoning_tokens`; 0 when not reported).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reasoning_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
}

impl Usage {
    /// Plain counts, with nothing cached and no reasoning reported.
    pub fn tokens(input_tokens: u64, output_tokens: u64) -> Usage {
        Usage {
            input_tokens,
            output_tokens,
            ..Usage::default()
        }
    }

    /// Input tokens neither written to nor read from a prompt cache.
    pub fn uncached_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_sub(self.cache_creation_input_tokens)
            .saturating_sub(self.cache_read_input_tokens)
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cache_creation_input_tokens += o.cache_creation_input_tokens;
        self.cache_read_input_tokens += o.cache_read_input_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
    }
}

/// How a job ended. Only `Ok` jobs are classified and counted in rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The model gave a final output.
    Ok,
    /// The model used every turn without giving a final output.
    Incomplete,
    /// The backend failed; `error` says why.
    Failed,
    /// The final reply was cut at the token limit (`max_tokens`, `length`):
    /// what the model would have answered is not known.
    Truncated,
    /// The provider's own safety system stopped the reply (Anthropic
    /// `refusal`, OpenAI `content_filter`): not the model's refusal.
    Filtered,
}

impl Status {
    /// Every status, in the order of their codes.
    pub const ALL: [Status; 5] = [
        Status::Ok,
        Status::Incomplete,
        Status::Failed,
        Status::Truncated,
        Status::Filtered,
    ];

    /// The status as results, reports and Redis tallies name it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Incomplete => "incomplete",
            Status::Failed => "failed",
            Status::Truncated => "truncated",
            Status::Filtered => "filtered",
        }
    }

    /// The model answered (with or without a final output): the call path
    /// to it works.
    pub fn answered(self) -> bool {
        self != Status::Failed
    }

    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Incomplete => 1,
            Status::Failed => 2,
            Status::Truncated => 3,
            Status::Filtered => 4,
        }
    }
    pub fn from_code(c: u8) -> Option<Status> {
        match c {
            0 => Some(Status::Ok),
            1 => Some(Status::Incomplete),
            2 => Some(Status::Failed),
            3 => Some(Status::Truncated),
            4 => Some(Status::Filtered),
            _ => None,
        }
    }
}

/// What a turn's stop reason makes of the job, when it is not the model's
/// own end: `Truncated` when the reply was cut at the token limit
/// (Anthropic `max_tokens` and `model_context_window_exceeded`, OpenAI
/// `length`), `Filtered` when the provider's safety system stopped it
/// (Anthropic `refusal`, OpenAI `content_filter`). Stop reasons as
/// documented at
/// <https://platform.claude.com/docs/build-with-claude/handling-stop-reasons>
/// and in the `finish_reason` of OpenAI's Chat Completions reference.
pub fn stop_status(reason: Option<&str>) -> Option<Status> {
    match reason? {
        "max_tokens" | "length" | "model_context_window_exceeded" => Some(Status::Truncated),
        "refusal" | "content_filter" => Some(Status::Filtered),
        _ => None,
    }
}

/// One line of `results.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub job_id: String,
    pub sweep_id: String,
    pub index: u64,
    pub model: String,
    pub variant: String,
    pub query_index: u64,
    pub query: String,
    pub condition: String,
    pub seed: u32,
    pub status: Status,
    /// The final output (inside `<OUTPUT>` for the scratchpad protocol).
    pub output: Option<String>,
    /// Classifier name → verdict; empty unless `status` is `ok`.
    pub classifications: BTreeMap<String, bool>,
    /// Judge classifier name → its votes and verdict.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub judgements: BTreeMap<String, crate::judge::Judgement>,
    /// Number of model calls.
    pub turns: u32,
    /// Which try of the job this is (retryable failures are tried again).
    pub attempt: u32,
    /// Model calls answered from the response cache.
    #[serde(default)]
    pub cache_hits: u32,
    /// What the job's model and judge calls cost in US dollars (cache hits are free).
    #[serde(default)]
    pub cost_usd: f64,
    /// What the provider's prompt cache saved on the job's model calls, in
    /// US dollars (negative when cache writes cost more than reads saved).
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub cache_saving_usd: f64,
    pub usage: Usage,
    /// Tokens of the judge calls (their cost is in `cost_usd`).
    #[serde(default)]
    pub judge_usage: Usage,
    /// Wall time of the whole job, in milliseconds.
    pub latency_ms: f64,
    /// Unix time in milliseconds when the job started.
    pub started_at_ms: u64,
    pub error: Option<String>,
    /// What kind of failure `error` is, for grouping failures by reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    pub transcript: Transcript,
}

/// What kind of failure ended a job, so that failures group by reason and a
/// model that cannot answer at all is told apart from one that failed now
/// and then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ErrorKind {
    /// No connection could be made: refused, no such host, unreachable.
    Connect,
    /// The call took longer than the model entry's `timeout_secs`.
    Timeout,
    /// The connection broke, or the body was cut short.
    Transport,
    /// The provider answered with this HTTP status.
    Http(u16),
    /// The provider kept answering 429.
    RateLimited,
    /// The provider refused a request parameter for this model (a 400 that
    /// names it): every call to the model would be refused the same way.
    Param,
    /// The answer was not what the API documents.
    Malformed,
    /// The answer was larger than candor reads.
    TooLarge,
    /// The provider refused the credentials, or there were none.
    Unauthorized,
    /// The prompts could not be rendered for this job.
    Render,
    /// A judge's answer held no verdict.
    Verdict,
    /// Every attempt's worker stopped or lost the job before it finished.
    Abandoned,
}

impl ErrorKind {
    /// A failure that will not pass by trying again: every further call to
    /// the same model is expected to fail the same way.
    pub fn is_persistent(self) -> bool {
        matches!(self, ErrorKind::Connect | ErrorKind::Param | ErrorKind::Http(400 | 404))
    }

    /// What to check, for a person reading the failure.
    pub fn hint(self) -> &'static str {
        match self {
            ErrorKind::Connect => "check that the server is running and that base_url is right",
            ErrorKind::Timeout => "the model is slow or overloaded: raise timeout_secs or lower --concurrency",
            ErrorKind::Transport => "the connection broke: check the network or the server's logs",
            ErrorKind::Http(404) => "check the model name and base_url (the server has no such model or path)",
            ErrorKind::Http(400 | 422) => "the server refused the request: check the model's params and the prompts",
            ErrorKind::Http(413) => "the request is too large for the server: shorten the prompts or max_tokens",
            ErrorKind::Http(s) if s >= 500 => "the server is failing: check its status or logs and try again later",
            ErrorKind::Http(_) => "check the provider's message",
            ErrorKind::RateLimited => {
                "the provider kept answering 429: set or lower rate_limit, or lower --concurrency"
            }
            ErrorKind::Param => {
                "the provider refused a parameter of this model: change the model's params or protocol as its message says"
            }
            ErrorKind::Malformed => "the server's answers are not the API's format: check base_url and backend",
            ErrorKind::TooLarge => "the server's answers are too large: check base_url and max_tokens",
            ErrorKind::Unauthorized => "check the API key",
            ErrorKind::Render => "check the templates and the dataset's columns",
            ErrorKind::Verdict => "the judge's answers hold no verdict: check the judge's prompt and model",
            ErrorKind::Abandoned => {
                "the workers running it stopped or lost it on every attempt: check the workers' logs"
            }
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorKind::Connect => f.write_str("connect"),
            ErrorKind::Timeout => f.write_str("timeout"),
            ErrorKind::Transport => f.write_str("transport"),
            ErrorKind::Http(s) => write!(f, "http_{s}"),
            ErrorKind::RateLimited => f.write_str("rate_limited"),
            ErrorKind::Param => f.write_str("param"),
            ErrorKind::Malformed => f.write_str("malformed"),
            ErrorKind::TooLarge => f.write_str("too_large"),
            ErrorKind::Unauthorized => f.write_str("unauthorized"),
            ErrorKind::Render => f.write_str("render"),
            ErrorKind::Verdict => f.write_str("verdict"),
            ErrorKind::Abandoned => f.write_str("abandoned"),
        }
    }
}

impl From<ErrorKind> for String {
    fn from(k: ErrorKind) -> String {
        k.to_string()
    }
}

impl TryFrom<String> for ErrorKind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for ErrorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "connect" => ErrorKind::Connect,
            "timeout" => ErrorKind::Timeout,
            "transport" => ErrorKind::Transport,
            "rate_limited" => ErrorKind::RateLimited,
            "param" => ErrorKind::Param,
            "malformed" => ErrorKind::Malformed,
            "too_large" => ErrorKind::TooLarge,
            "unauthorized" => ErrorKind::Unauthorized,
            "render" => ErrorKind::Render,
            "verdict" => ErrorKind::Verdict,
            "abandoned" => ErrorKind::Abandoned,
            _ => match s.strip_prefix("http_").and_then(|n| n.parse().ok()) {
                Some(n) => ErrorKind::Http(n),
                None => return Err(format!("unknown error kind `{s}`")),
            },
        })
    }
}

/// What is kept about a result besides its payload: what reports, budgets
/// and early stopping read without decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    pub index: u64,
    pub status: Status,
    /// Bit `i` is the verdict of classifier `i`.
    pub class_bits: u32,
    /// Model calls of the job answered from the response cache.
    pub cache_hits: u16,
    /// What the job's model calls cost, in millionths of a US dollar.
    pub cost_micro_usd: u64,
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    #[test]
    fn error_kinds_round_trip_through_their_names() {
        for k in [
            ErrorKind::Connect,
            ErrorKind::Http(404),
            ErrorKind::Http(503),
            ErrorKind::RateLimited,
            ErrorKind::Param,
            ErrorKind::Verdict,
        ] {
            assert_eq!(k.to_string().parse::<ErrorKind>(), Ok(k));
        }
        assert!("http_x".parse::<ErrorKind>().is_err());
        assert!(ErrorKind::Http(404).is_persistent() && !ErrorKind::Http(500).is_persistent());
    }
}
