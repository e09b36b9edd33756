//! The part of Inspect's log schema that candor writes, field for field as
//! the pydantic models of `inspect_ai/log/_log.py`, `model/_chat_message.py`,
//! `model/_model_output.py`, `scorer/_metric.py` and `_util/content.py`
//! (inspect_ai 0.3.285) name them. Fields left out take Inspect's defaults.

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::BufRead;

use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use candor_core::result::Usage;

/// A JSON object whose keys keep the order they were given in.
pub struct Ordered<K, V>(pub Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for Ordered<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// `{}`.
#[derive(Serialize, Default, Clone, Copy)]
pub struct Empty {}

/// `ChatMessageSystem`, `ChatMessageUser`, `ChatMessageAssistant`.
#[derive(Serialize, Clone)]
pub struct Message<'a> {
    pub id: String,
    pub content: Content<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
    pub role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<&'a str>,
}

/// A message's `content`: a string, or a list of content parts.
#[derive(Serialize, Clone)]
#[serde(untagged)]
pub enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Part<'a>>),
}

/// `ContentText` and `ContentReasoning`.
#[derive(Serialize, Clone)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Part<'a> {
    Text {
        text: &'a str,
    },
    Reasoning {
        reasoning: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        signature: Option<&'a str>,
        redacted: bool,
    },
}

/// `ModelUsage`: Inspect counts `input_tokens` without the cached ones
/// (as its Anthropic and OpenAI providers do), candor with them.
#[derive(Serialize, Clone, Copy, Debug, PartialEq)]
pub struct ModelUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens_cache_write: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens_cache_read: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
}

impl From<&Usage> for ModelUsage {
    fn from(u: &Usage) -> ModelUsage {
        let some = |n: u64| (n > 0).then_some(n);
        ModelUsage {
            input_tokens: u.uncached_input_tokens(),
            output_tokens: u.output_tokens,
            total_tokens: u.input_tokens + u.output_tokens,
            input_tokens_cache_write: some(u.cache_creation_input_tokens),
            input_tokens_cache_read: some(u.cache_read_input_tokens),
            reasoning_tokens: some(u.reasoning_tokens),
        }
    }
}

/// `ChatCompletionChoice`.
#[derive(Serialize)]
pub struct Choice<'a> {
    pub message: Message<'a>,
    pub stop_reason: &'static str,
}

/// `ModelOutput`.
#[derive(Serialize)]
pub struct Output<'a> {
    pub model: &'a str,
    pub choices: Vec<Choice<'a>>,
    pub completion: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<ModelUsage>,
    pub time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

/// `Score`: `value` 1 for a classifier's yes, 0 for its no.
#[derive(Serialize, Clone)]
pub struct Score<'a> {
    pub value: u8,
    /// The job's final output, cut to about 1,024 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Cow<'a, str>>,
    pub metadata: ScoreMeta,
}

/// A score's `metadata`: candor's own verdict and, for a judge, its votes.
#[derive(Serialize, Clone)]
pub struct ScoreMeta {
    pub verdict: bool,
    /// `rule` (a rule-based classifier) or `judge`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yes_votes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_votes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
}

/// `EvalError` (candor has no traceback: both are empty).
#[derive(Serialize)]
pub struct EvalError {
    pub message: String,
    pub traceback: &'static str,
    pub traceback_ansi: &'static str,
}

/// `EvalSampleLimit`.
#[derive(Serialize)]
pub struct Limit {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub limit: f64,
}

/// A sample's `metadata`: where the job sits in the sweep and how it ended.
#[derive(Serialize)]
pub struct SampleMeta<'a> {
    pub model: &'a str,
    pub variant: &'a str,
    pub condition: &'a str,
    pub query_index: u64,
    pub query: Cow<'a, str>,
    pub seed: u32,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    pub job_index: u64,
    pub attempt: u32,
    pub turns: u32,
    pub cache_hits: u32,
    pub cost_usd: f64,
    pub sweep_id: &'a str,
}

/// `EvalSample`: `samples/<id>_epoch_<epoch>.json`.
#[derive(Serialize)]
pub struct Sample<'a, 'b> {
    pub id: &'a str,
    pub epoch: u32,
    pub input: &'b [Message<'a>],
    pub target: &'static str,
    pub messages: &'b [Message<'a>],
    pub output: Output<'a>,
    pub scores: Option<&'b Ordered<&'a str, Score<'a>>>,
    pub metadata: &'b SampleMeta<'a>,
    pub store: Empty,
    pub events: [Empty; 0],
    pub model_usage: &'b Ordered<&'a str, ModelUsage>,
    pub role_usage: &'b Ordered<&'static str, ModelUsage>,
    pub started_at: &'b str,
    pub completed_at: &'b str,
    pub total_time: f64,
    pub working_time: f64,
    pub uuid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<EvalError>,
    pub attachments: Empty,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
}

/// `EvalSampleSummary`: one element of `summaries.json`, thinned as
/// Inspect thins it (long texts cut).
#[derive(Serialize)]
pub struct Summary<'a, 'b> {
    pub id: &'a str,
    pub epoch: u32,
    pub input: &'b [Message<'a>],
    pub target: &'static str,
    pub metadata: &'b SampleMeta<'a>,
    pub scores: Option<&'b Ordered<&'a str, Score<'a>>>,
    pub model_usage: &'b Ordered<&'a str, ModelUsage>,
    pub role_usage: &'b Ordered<&'static str, ModelUsage>,
    pub started_at: &'b str,
    pub completed_at: &'b str,
    pub total_time: f64,
    pub working_time: f64,
    pub uuid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'b str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<&'static str>,
    pub retries: u32,
    pub completed: bool,
    pub message_count: usize,
}

/// `EvalSampleScore`: one element of a scorer's `samples` in `reductions.json`.
#[derive(Serialize)]
pub struct ReducedScore<'a> {
    pub value: f64,
    pub sample_id: &'a str,
}

/// `EvalDataset`.
#[derive(Serialize)]
pub struct Dataset<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_ids: Option<SampleIds<'a>>,
}

/// `EvalDataset.sample_ids` (which `read_eval_log_samples` walks), read as
/// it is written from lines each holding one id as a JSON string, so that
/// they are never all in memory.
pub struct SampleIds<'a>(pub RefCell<Box<dyn BufRead + 'a>>);

impl Serialize for SampleIds<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut lines = self.0.borrow_mut();
        let mut seq = s.serialize_seq(None)?;
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).map_err(S::Error::custom)? == 0 {
                break;
            }
            let id: String = serde_json::from_str(&line).map_err(S::Error::custom)?;
            seq.serialize_element(&id)?;
        }
        seq.end()
    }
}

/// `EvalConfig`: every job is one epoch of its own sample, and a failed
/// job is a sample with an error, not the end of the eval.
#[derive(Serialize)]
pub struct EvalConfig {
    pub epochs: u32,
    pub fail_on_error: bool,
    pub log_samples: bool,
}

/// The `GenerateConfig` fields a candor model's params give.
#[derive(Serialize, Default)]
pub struct GenerateConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_seqs: Option<&'a [String]>,
}

/// `EvalMetricDefinition`.
#[derive(Serialize)]
pub struct MetricDefinition {
    pub name: &'static str,
}

/// `EvalScorer`.
#[derive(Serialize)]
pub struct Scorer<'a> {
    pub name: &'a str,
    pub metrics: [MetricDefinition; 1],
}

/// `EvalSpec`: the eval's identity and configuration.
#[derive(Serialize)]
pub struct EvalSpec<'a> {
    pub eval_id: &'a str,
    pub run_id: &'a str,
    pub created: &'a str,
    pub task: &'a str,
    pub task_id: &'a str,
    pub task_version: u32,
    pub dataset: Dataset<'a>,
    pub model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_base_url: Option<&'a str>,
    pub model_generate_config: GenerateConfig<'a>,
    pub model_args: serde_json::Value,
    pub config: EvalConfig,
    pub packages: Ordered<&'static str, &'static str>,
    pub metadata: serde_json::Value,
    pub scorers: Vec<Scorer<'a>>,
}

/// `EvalPlan`: candor's protocol is not a chain of Inspect solvers.
#[derive(Serialize)]
pub struct Plan {
    pub name: &'static str,
    pub steps: [Empty; 0],
    pub config: Empty,
}

pub const PLAN: Plan = Plan {
    name: "plan",
    steps: [],
    config: Empty {},
};

/// `_journal/start.json`.
#[derive(Serialize)]
pub struct LogStart<'a, 'b> {
    pub version: u32,
    pub eval: &'b EvalSpec<'a>,
    pub plan: Plan,
}

/// `EvalMetric`.
#[derive(Serialize)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    pub metadata: serde_json::Value,
}

/// `EvalScore`: one classifier's results.
#[derive(Serialize)]
pub struct EvalScore<'a> {
    pub name: &'a str,
    pub scorer: &'a str,
    pub scored_samples: u64,
    pub unscored_samples: u64,
    pub metrics: Ordered<String, Metric>,
    pub metadata: serde_json::Value,
}

/// `HeadlineMetric`.
#[derive(Serialize)]
pub struct Headline<'a> {
    pub scorer: &'a str,
    pub score: &'a str,
    pub metric: &'static str,
}

/// `EvalResults`.
#[derive(Serialize)]
pub struct Results<'a> {
    pub total_samples: u64,
    pub completed_samples: u64,
    pub scores: Vec<EvalScore<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headline: Option<Headline<'a>>,
    pub metadata: serde_json::Value,
}

/// `EvalStats`.
#[derive(Serialize)]
pub struct Stats<'a> {
    pub started_at: String,
    pub completed_at: String,
    pub model_usage: Ordered<&'a str, ModelUsage>,
    pub role_usage: Ordered<&'static str, ModelUsage>,
}

/// `header.json`: the `EvalLog` without its samples.
#[derive(Serialize)]
pub struct Header<'a, 'b> {
    pub version: u32,
    pub status: &'static str,
    pub eval: &'b EvalSpec<'a>,
    pub plan: Plan,
    pub results: Results<'a>,
    pub stats: Stats<'a>,
    pub invalidated: bool,
}
