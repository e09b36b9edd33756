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
    pub content: String,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// Every turn of a job's conversation, including the system prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Transcript {
    pub system: String,
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
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
}

impl Status {
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Incomplete => 1,
            Status::Failed => 2,
        }
    }
    pub fn from_code(c: u8) -> Option<Status> {
        match c {
            0 => Some(Status::Ok),
            1 => Some(Status::Incomplete),
            2 => Some(Status::Failed),
            _ => None,
        }
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
    pub usage: Usage,
    /// Tokens of the judge calls (their cost is in `cost_usd`).
    #[serde(default)]
    pub judge_usage: Usage,
    /// Wall time of the whole job, in milliseconds.
    pub latency_ms: f64,
    /// Unix time in milliseconds when the job started.
    pub started_at_ms: u64,
    pub error: Option<String>,
    pub transcript: Transcript,
}
