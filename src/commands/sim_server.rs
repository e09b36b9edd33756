//! `candor sim-server`: the simulated model behind the Anthropic and OpenAI
//! APIs (and their batch APIs), for dry runs, load tests and fault tests.

use std::net::SocketAddr;
use std::time::Duration;

use super::serve::{bad, signalled};
use crate::exit;
use crate::telemetry::bind;

fn probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not a probability between 0 and 1"))
    }
}

fn marker(s: &str) -> Result<(String, f64), String> {
    let (m, p) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("`{s}` is not MARKER=PROBABILITY"))?;
    if m.is_empty() {
        return Err("the marker is empty".into());
    }
    Ok((m.to_string(), probability(p)?))
}

#[derive(clap::Args)]
pub struct SimServerArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8089)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Latency of every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Requests per minute; more are answered 429 with retry-after and rate-limit headers.
    #[arg(long)]
    rpm: Option<u32>,
    /// Seconds over which --rpm is counted (the providers use 60).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    window_secs: u64,
    /// Probability of answering 500.
    #[arg(long, default_value = "0", value_parser = probability)]
    error_500: f64,
    /// Answer 500 to every request whose first message contains MARKER.
    #[arg(long, value_name = "MARKER")]
    error_500_when: Option<String>,
    /// Probability of answering 529 (overloaded).
    #[arg(long, default_value = "0", value_parser = probability)]
    error_529: f64,
    /// Probability of a 200 whose body is not valid JSON.
    #[arg(long, default_value = "0", value_parser = probability)]
    malformed: f64,
    /// Probability of a body cut off half way.
    #[arg(long, default_value = "0", value_parser = probability)]
    truncated: f64,
    /// Probability of an answer delayed by --slow-ms more.
    #[arg(long, default_value = "0", value_parser = probability)]
    slow: f64,
    #[arg(long, default_value_t = 5_000)]
    slow_ms: u64,
    /// Compliance probability when no --comply-when marker is in the first user message.
    #[arg(long, default_value = "0.1", value_parser = probability)]
    comply: f64,
    /// MARKER=P: compliance probability P when the first user message contains MARKER
    /// (repeatable; the first match wins) [default: <is_free_tier_user>True</is_free_tier_user>=0.3]
    #[arg(long, value_parser = marker)]
    comply_when: Vec<(String, f64)>,
    /// Probability that a turn closes the scratchpad without an output.
    #[arg(long, default_value = "0.25", value_parser = probability)]
    continuation: f64,
    /// Seed of the injected failures.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Answer 401 unless a request carries the API key held by this environment variable.
    #[arg(long)]
    require_key_env: Option<String>,
    /// Answer 400 naming PARAM to every request that sets it, as a model that refuses it (repeatable).
    #[arg(long, value_name = "PARAM")]
    reject_param: Vec<String>,
    /// Stop replies to requests whose first message contains MARKER as a provider's safety system
    /// does (Anthropic stop_reason refusal, OpenAI finish_reason content_filter).
    #[arg(long, value_name = "MARKER")]
    refuse_when: Option<String>,
    /// Input tokens per minute, counted as the provider counts them (Anthropic: cache reads are
    /// free); more are answered 429.
    #[arg(long, value_name = "N")]
    input_tpm: Option<u64>,
    /// Milliseconds a batch (Anthropic /v1/messages/batches, OpenAI /v1/batches) takes to process.
    #[arg(long, default_value_t = 1_000)]
    batch_delay_ms: u64,
    /// Probability that a batched request expires unprocessed.
    #[arg(long, default_value = "0", value_parser = probability)]
    batch_expired: f64,
    /// Probability that a batched request ends in an error (a 500 api_error).
    #[arg(long, default_value = "0", value_parser = probability)]
    batch_errored: f64,
    /// Batched requests whose first message contains MARKER end in an error.
    #[arg(long, value_name = "MARKER")]
    batch_errored_when: Option<String>,
}

pub async fn sim_server(a: SimServerArgs) -> i32 {
    let listener = match bind(SocketAddr::new(a.host, a.port), "--port").await {
        Ok(l) => l,
        Err(e) => return bad(e),
    };
    let comply_when = if a.comply_when.is_empty() {
        vec![("<is_free_tier_user>True</is_free_tier_user>".to_string(), 0.3)]
    } else {
        a.comply_when
    };
    let cfg = candor_sim::Config {
        latency: Duration::from_millis(a.latency_ms),
        rpm: a.rpm,
        window: Duration::from_secs(a.window_secs),
        p500: a.error_500,
        fail_when: a.error_500_when,
        p529: a.error_529,
        malformed: a.malformed,
        truncated: a.truncated,
        slow: a.slow,
        slow_by: Duration::from_millis(a.slow_ms),
        comply: a.comply,
        comply_when,
        continuation: a.continuation,
        seed: a.seed,
        require_key: match &a.require_key_env {
            Some(var) => match std::env::var(var) {
                Ok(k) if !k.is_empty() => Some(k),
                _ => return bad(format!("--require-key-env: the environment variable {var} is not set")),
            },
            None => None,
        },
        reject_params: a.reject_param,
        refuse_when: a.refuse_when,
        input_tpm: a.input_tpm,
        batch_delay: Duration::from_millis(a.batch_delay_ms),
        batch_expired: a.batch_expired,
        batch_errored: a.batch_errored,
        batch_errored_when: a.batch_errored_when,
    };
    let addr = listener.local_addr().expect("bound");
    eprintln!(
        "sim-server listening on {addr}: Anthropic at http://{addr}/v1/messages, OpenAI at http://{addr}/v1/chat/completions, batches at /v1/messages/batches and /v1/batches, counts at /stats"
    );
    match candor_sim::serve(listener, cfg, signalled()).await {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}
