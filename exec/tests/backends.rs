//! The HTTP backends against fixtures shaped like the providers' documented
//! responses (wiremock), and a raw socket for bodies cut short.

use std::sync::Arc;
use std::time::{Duration, Instant};

use candor_core::spec::{BackendKind, ModelEntry, Params};
use candor_core::{JobId, Message};
use candor_exec::anthropic::Anthropic;
use candor_exec::backend::{Backend, BackendError, ChatReply, ChatRequest};
use candor_exec::http::{Secret, client};
use candor_exec::openai::OpenAi;
use candor_exec::retrying::Retrying;
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-test-key-5531";

fn model(backend: BackendKind) -> ModelEntry {
    ModelEntry {
        id: "m1".into(),
        backend,
        model: "provider-model".into(),
        params: Params {
            temperature: Some(0.5),
            max_tokens: Some(100),
            stop: Some(vec!["STOP".into()]),
            ..Params::default()
        },
        base_url: None,
        api_key_env: None,
        api_key_file: None,
        timeout_secs: None,
        rate_limit: None,
        sim: None,
        price: None,
        api_version: None,
        prompt_cache: None,
        batch: None,
    }
}

async fn call(b: &dyn Backend, m: &ModelEntry, prefill: bool) -> Result<ChatReply, BackendError> {
    call_with(b, m, "be brief", prefill).await
}

/// A call with this system prompt.
async fn call_with(b: &dyn Backend, m: &ModelEntry, system: &str, prefill: bool) -> Result<ChatReply, BackendError> {
    let mut msgs = vec![Message::user("hello")];
    if prefill {
        msgs.push(Message::assistant("<SCRATCHPAD_REASONING>"));
    }
    b.complete(ChatRequest {
        model: m,
        system,
        messages: &msgs,
        params: &m.params,
        job_id: JobId([7; 16]),
        seed: 3,
        turn: 1,
        attempt: 1,
        condition: "training",
        judge: None,
    })
    .await
}

fn anthropic(server: &MockServer) -> Retrying {
    let inner = Anthropic::new(
        client(Duration::from_secs(5)),
        Some(&server.uri()),
        Ok(Secret(KEY.into())),
    );
    Retrying::new(Arc::new(inner), 4)
}

fn anthropic_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "provider-model",
        "content": [{"type": "text", "text": "<OUTPUT>hi</OUTPUT>"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 5}
    }))
}

fn anthropic_error(status: u16, kind: &str, msg: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"type": "error", "error": {"type": kind, "message": msg}}))
}

#[tokio::test]
async fn anthropic_sends_the_documented_request_and_reads_the_reply() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .and(body_partial_json(json!({
            "model": "provider-model", "max_tokens": 100, "system": "be brief", "temperature": 0.5,
            "stop_sequences": ["STOP"],
            "messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "<SCRATCHPAD_REASONING>"}]
        })))
        .respond_with(anthropic_ok())
        .expect(1)
        .mount(&server)
        .await;
    let mut m = model(BackendKind::Anthropic);
    m.api_version = Some("2023-06-01".into());
    let r = call(&anthropic(&server), &m, true).await.unwrap();
    assert_eq!(r.text, "<OUTPUT>hi</OUTPUT>");
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (12, 5));
    assert_eq!(r.stop_reason.as_deref(), Some("end_turn"));
}

#[tokio::test]
async fn overloaded_and_server_errors_are_retried_then_succeed() {
    for (status, kind) in [(529, "overloaded_error"), (500, "api_error"), (503, "api_error")] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(anthropic_error(status, kind, "try later"))
            .up_to_n_times(2)
            .expect(2)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(anthropic_ok())
            .expect(1)
            .mount(&server)
            .await;
        let m = model(BackendKind::Anthropic);
        let r = call(&anthropic(&server), &m, false).await;
        assert!(r.is_ok(), "{status}: {r:?}");
    }
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(anthropic_error(429, "rate_limit_error", "slow down").insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(anthropic_ok())
        .mount(&server)
        .await;
    let m = model(BackendKind::Anthropic);
    let started = Instant::now();
    call(&anthropic(&server), &m, false).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "retried after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_400_fails_at_once_with_the_providers_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(anthropic_error(
            400,
            "invalid_request_error",
            "max_tokens: must be positive",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let m = model(BackendKind::Anthropic);
    match call(&anthropic(&server), &m, false).await {
        Err(BackendError::Failed { message, .. }) => {
            assert!(
                message.contains("400") && message.contains("max_tokens: must be positive"),
                "{message}"
            );
            assert!(!message.contains(KEY));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_401_names_the_model_whose_key_to_check() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(anthropic_error(401, "authentication_error", "invalid x-api-key"))
        .expect(1)
        .mount(&server)
        .await;
    let m = model(BackendKind::Anthropic);
    match call(&anthropic(&server), &m, false).await {
        Err(BackendError::Unauthorized { message }) => {
            assert!(message.contains("check the API key for model m1"), "{message}");
            assert!(!message.contains(KEY));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_malformed_body_is_an_error_not_a_crash() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"content\": [oops"))
        .expect(4)
        .mount(&server)
        .await;
    let m = model(BackendKind::Anthropic);
    match call(&anthropic(&server), &m, false).await {
        Err(BackendError::Retryable { message, .. }) => assert!(message.contains("malformed response"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_body_cut_short_is_an_error_not_a_crash() {
    // A server that promises 1000 bytes and sends 20.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"content\": [{\"typ")
                .await;
            let _ = s.shutdown().await;
        }
    });
    let inner = Anthropic::new(
        client(Duration::from_secs(5)),
        Some(&format!("http://{addr}")),
        Ok(Secret(KEY.into())),
    );
    let m = model(BackendKind::Anthropic);
    match call(&Retrying::new(Arc::new(inner), 2), &m, false).await {
        Err(BackendError::Retryable { message, .. }) => assert!(message.contains("cut short"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn openai_compatible_servers_get_chat_completions() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(body_partial_json(json!({
            "model": "provider-model", "max_tokens": 100, "temperature": 0.5, "stop": ["STOP"], "seed": 3,
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "c1", "object": "chat.completion", "model": "provider-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "<OUTPUT>ok</OUTPUT>"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let mut m = model(BackendKind::Openai);
    m.base_url = Some(format!("{}/v1", server.uri()));
    let b = OpenAi::new(
        client(Duration::from_secs(5)),
        Some(&format!("{}/v1", server.uri())),
        Some(Ok(Secret(KEY.into()))),
    );
    let r = call(&b, &m, false).await.unwrap();
    assert_eq!(r.text, "<OUTPUT>ok</OUTPUT>");
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (9, 3));
    assert_eq!(r.stop_reason.as_deref(), Some("stop"));
}

#[tokio::test]
async fn a_missing_key_fails_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(anthropic_ok())
        .expect(0)
        .mount(&server)
        .await;
    let inner = Anthropic::new(
        client(Duration::from_secs(5)),
        Some(&server.uri()),
        Err(candor_core::KeyError::EnvUnset {
            var: "X".into(),
            model: "m".into(),
        }),
    );
    let m = model(BackendKind::Anthropic);
    match call(&inner, &m, false).await {
        Err(BackendError::Unauthorized { message }) => assert!(
            message.contains("the environment variable X, which holds the API key for model m, is not set"),
            "{message}"
        ),
        other => panic!("a missing key is unauthorized, not {other:?}"),
    }
}

#[tokio::test]
async fn timeouts_are_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(anthropic_ok().set_delay(Duration::from_secs(3)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(anthropic_ok())
        .mount(&server)
        .await;
    let inner = Anthropic::new(
        client(Duration::from_millis(500)),
        Some(&server.uri()),
        Ok(Secret(KEY.into())),
    );
    let m = model(BackendKind::Anthropic);
    let r = call(&Retrying::new(Arc::new(inner), 3), &m, false).await;
    assert!(r.is_ok(), "{r:?}");
}

#[tokio::test]
async fn anthropic_today_caches_the_system_prompt_and_reads_thinking_and_cache_usage() {
    let server = MockServer::start().await;
    let system = "x".repeat(10_000);
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("anthropic-version", "2026-10-21"))
        .and(body_partial_json(json!({
            "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
            "thinking": {"type": "adaptive", "display": "summarized"},
            "output_config": {"effort": "high"}
        })))
        // Shaped like the documented reply of a thinking model with a cache hit.
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_2", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
            "content": [
                {"type": "thinking", "thinking": "Training would change me.", "signature": "EqQBCgIYAhIM"},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"},
                {"type": "text", "text": "<rejected/>"}
            ],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 21, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2000,
                      "output_tokens": 393}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let mut m = model(BackendKind::Anthropic);
    m.model = "claude-sonnet-4-6".into();
    m.params = Params {
        max_tokens: Some(4096),
        thinking: Some(candor_core::spec::Thinking {
            kind: candor_core::spec::ThinkingKind::Adaptive,
            budget_tokens: None,
            display: None,
        }),
        effort: Some("high".into()),
        ..Params::default()
    };
    let r = call_with(&anthropic(&server), &m, &system, false).await.unwrap();
    assert_eq!(r.text, "<rejected/>");
    let reasoning = r.reasoning.unwrap();
    assert_eq!(reasoning.text, "Training would change me.");
    assert_eq!(reasoning.signature.as_deref(), Some("EqQBCgIYAhIM"));
    assert_eq!(reasoning.redacted, ["EmwKAhgBEgy3"]);
    // Anthropic's input_tokens leaves the cached part out; candor's counts all of it.
    assert_eq!((r.usage.input_tokens, r.usage.cache_read_input_tokens), (2021, 2000));
    assert_eq!(r.usage.output_tokens, 393);
}

#[tokio::test]
async fn openai_reasoning_models_get_max_completion_tokens_and_their_refusals_name_the_parameter() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({"max_completion_tokens": 100, "reasoning_effort": "low"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "c2", "object": "chat.completion", "model": "gpt-5.4",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "", "reasoning_content": "hmm"},
                         "finish_reason": "length"}],
            "usage": {"prompt_tokens": 1500, "completion_tokens": 100, "total_tokens": 1600,
                      "prompt_tokens_details": {"cached_tokens": 1280},
                      "completion_tokens_details": {"reasoning_tokens": 100}}
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    // The documented refusal of max_tokens by a reasoning model.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
            "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}})))
        .mount(&server)
        .await;
    let mut m = model(BackendKind::Openai);
    m.model = "gpt-5.4".into();
    m.params = Params {
        max_tokens: Some(100),
        reasoning_effort: Some("low".into()),
        ..Params::default()
    };
    let b = OpenAi::new(
        client(Duration::from_secs(5)),
        Some(&format!("{}/v1", server.uri())),
        None,
    );
    let r = call(&b, &m, false).await.unwrap();
    assert_eq!(r.stop_reason.as_deref(), Some("length"));
    assert_eq!(r.reasoning.unwrap().text, "hmm");
    assert_eq!((r.usage.cache_read_input_tokens, r.usage.reasoning_tokens), (1280, 100));
    match call(&b, &m, false).await {
        Err(BackendError::Failed { kind, message }) => {
            assert_eq!(kind, candor_core::ErrorKind::Param);
            assert!(message.contains("max_tokens"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
