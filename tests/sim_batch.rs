//! `candor sim-server` serves both providers' batch APIs: every custom_id is
//! answered exactly once, by the same reply the realtime endpoint gives the
//! same body; injected outcomes, cancels and refused batches behave as the
//! providers document; `/stats` counts batches and resubmitted custom_ids.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const KEY: &str = "sim-key-123";

/// One HTTP/1.0 exchange with headers of our own: (status, body).
fn call(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text.split(' ').nth(1).unwrap().parse().unwrap();
    (code, text.split_once("\r\n\r\n").unwrap().1.to_string())
}

/// An Anthropic call with the key: (status, body).
fn anthropic(port: u16, method: &str, path: &str, body: &Value) -> (u16, String) {
    let h = [("x-api-key", KEY), ("content-type", "application/json")];
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    call(port, method, path, &h, body.as_bytes())
}

/// An OpenAI call with the key: (status, body).
fn openai(port: u16, method: &str, path: &str, body: &Value) -> (u16, String) {
    let auth = format!("Bearer {KEY}");
    let h = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    call(port, method, path, &h, body.as_bytes())
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn lines(text: &str) -> Vec<Value> {
    text.lines().filter(|l| !l.is_empty()).map(parsed).collect()
}

fn start(sb: &Sandbox, args: &[&str]) -> SimServer {
    SimServer::start(sb, args, &[("SIM_KEY", KEY)])
}

/// A request body about `question`.
fn params(model: &str, question: &str) -> Value {
    json!({"model": model, "max_tokens": 400, "messages": [{"role": "user", "content": question}]})
}

/// Creates an Anthropic batch of (custom_id, question); its id.
fn anthropic_batch(port: u16, requests: &[(String, String)]) -> String {
    let requests: Vec<Value> = requests
        .iter()
        .map(|(id, q)| json!({"custom_id": id, "params": params("m-a", q)}))
        .collect();
    let (code, text) = anthropic(port, "POST", "/v1/messages/batches", &json!({"requests": requests}));
    assert_eq!(code, 200, "{text}");
    let b = parsed(&text);
    assert_eq!(b["type"], "message_batch");
    assert!(b["id"].as_str().unwrap().starts_with("msgbatch_"), "{b}");
    b["id"].as_str().unwrap().to_string()
}

/// Polls an Anthropic batch until it has ended; its object.
fn anthropic_ended(port: u16, id: &str) -> Value {
    let mut last = Value::Null;
    eventually(Duration::from_secs(30), "the message batch to end", || {
        let (code, text) = anthropic(port, "GET", &format!("/v1/messages/batches/{id}"), &Value::Null);
        assert_eq!(code, 200, "{text}");
        last = parsed(&text);
        last["processing_status"] == "ended"
    });
    last
}

/// The results of an ended Anthropic batch, by custom_id (each exactly once).
fn anthropic_results(port: u16, id: &str) -> BTreeMap<String, Value> {
    let (code, text) = anthropic(port, "GET", &format!("/v1/messages/batches/{id}/results"), &Value::Null);
    assert_eq!(code, 200, "{text}");
    let mut by_id = BTreeMap::new();
    for l in lines(&text) {
        let id = l["custom_id"].as_str().unwrap().to_string();
        assert!(
            by_id.insert(id.clone(), l["result"].clone()).is_none(),
            "{id} answered twice"
        );
    }
    by_id
}

fn questions(prefix: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("{prefix}-{i}"), format!("question {prefix} {i}: should I?")))
        .collect()
}

#[test]
fn an_anthropic_batch_answers_each_request_once_as_the_realtime_api_does() {
    let sb = Sandbox::new();
    let server = start(&sb, &["--require-key-env", "SIM_KEY", "--batch-delay-ms", "200"]);
    let port = server.port;
    let (code, _) = call(port, "POST", "/v1/messages/batches", &[], b"{}");
    assert_eq!(code, 401, "the realtime endpoints' key check");
    let asked = questions("q", 12);
    let id = anthropic_batch(port, &asked);
    let b = anthropic_ended(port, &id);
    assert_eq!(b["request_counts"]["succeeded"], 12, "{b}");
    assert_eq!(b["request_counts"]["processing"], 0, "{b}");
    assert!(
        b["ended_at"].is_string() && b["results_url"].as_str().unwrap().ends_with("/results"),
        "{b}"
    );
    let results = anthropic_results(port, &id);
    assert_eq!(results.len(), asked.len());
    for (custom_id, question) in &asked {
        let r = &results[custom_id];
        assert_eq!(r["type"], "succeeded", "{r}");
        let (code, text) = anthropic(port, "POST", "/v1/messages", &params("m-a", question));
        assert_eq!(code, 200, "{text}");
        let realtime = parsed(&text);
        assert_eq!(
            r["message"]["content"], realtime["content"],
            "batched and realtime replies differ"
        );
        assert_eq!(r["message"]["type"], "message");
    }
    // Newest first.
    let second = anthropic_batch(port, &[("q-0".into(), "again".into()), ("new-1".into(), "x".into())]);
    let (code, text) = anthropic(port, "GET", "/v1/messages/batches?limit=1", &Value::Null);
    assert_eq!(code, 200, "{text}");
    let page = parsed(&text);
    assert_eq!(
        (page["data"][0]["id"].as_str(), page["has_more"].as_bool()),
        (Some(second.as_str()), Some(true))
    );
    let (_, text) = anthropic(
        port,
        "GET",
        &format!("/v1/messages/batches?after_id={second}"),
        &Value::Null,
    );
    assert_eq!(parsed(&text)["data"][0]["id"], id.as_str());
    anthropic_ended(port, &second);
    let st = server.stats();
    assert_eq!(st["batches_anthropic"], 2, "{st}");
    assert_eq!(st["batch_requests"], 14, "{st}");
    assert_eq!(st["batch_resubmitted"], 1, "q-0 was submitted twice: {st}");
    assert_eq!(st["batch_succeeded"], 14, "{st}");
}

#[test]
fn a_refused_anthropic_batch_names_the_problem() {
    let sb = Sandbox::new();
    let server = start(&sb, &["--require-key-env", "SIM_KEY"]);
    let refused = |requests: Value| {
        let (code, text) = anthropic(
            server.port,
            "POST",
            "/v1/messages/batches",
            &json!({"requests": requests}),
        );
        assert_eq!(code, 400, "{text}");
        let e = parsed(&text);
        assert_eq!(e["error"]["type"], "invalid_request_error", "{e}");
        e["error"]["message"].as_str().unwrap().to_string()
    };
    let p = params("m-a", "hi");
    let dup = refused(json!([{"custom_id": "a", "params": p}, {"custom_id": "a", "params": p}]));
    assert!(dup.contains("duplicate custom_id `a`"), "{dup}");
    let pattern = refused(json!([{"custom_id": "no spaces", "params": p}]));
    assert!(
        pattern.contains("requests.0.custom_id") && pattern.contains("pattern"),
        "{pattern}"
    );
    assert!(refused(json!([])).contains("at least 1"));
    assert_eq!(server.stats()["batches_anthropic"], 0);
}

/// A multipart/form-data upload of `jsonl` with purpose batch: (status, body).
fn upload(port: u16, jsonl: &str) -> (u16, String) {
    let body = format!(
        "--sim-boundary\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--sim-boundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n{jsonl}\r\n--sim-boundary--\r\n"
    );
    let auth = format!("Bearer {KEY}");
    let h = [
        ("authorization", auth.as_str()),
        ("content-type", "multipart/form-data; boundary=sim-boundary"),
    ];
    call(port, "POST", "/v1/files", &h, body.as_bytes())
}

fn input_file(requests: &[(String, String)]) -> String {
    let line = |(id, q): &(String, String)| {
        json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions", "body": params("m-o", q)}).to_string()
    };
    requests.iter().map(line).collect::<Vec<_>>().join("\n")
}

/// Uploads `requests` and creates a batch of them; the batch's id.
fn openai_batch(port: u16, requests: &[(String, String)], metadata: Value) -> String {
    let (code, text) = upload(port, &input_file(requests));
    assert_eq!(code, 200, "{text}");
    let file = parsed(&text);
    assert_eq!(
        (file["object"].as_str(), file["purpose"].as_str()),
        (Some("file"), Some("batch"))
    );
    let ask = json!({"input_file_id": file["id"], "endpoint": "/v1/chat/completions",
                     "completion_window": "24h", "metadata": metadata});
    let (code, text) = openai(port, "POST", "/v1/batches", &ask);
    assert_eq!(code, 200, "{text}");
    let b = parsed(&text);
    assert!(b["id"].as_str().unwrap().starts_with("batch_"), "{b}");
    b["id"].as_str().unwrap().to_string()
}

/// Polls an OpenAI batch until it is in one of `done`; its object.
fn openai_ended(port: u16, id: &str, done: &[&str]) -> Value {
    let mut last = Value::Null;
    eventually(Duration::from_secs(30), "the batch to end", || {
        let (code, text) = openai(port, "GET", &format!("/v1/batches/{id}"), &Value::Null);
        assert_eq!(code, 200, "{text}");
        last = parsed(&text);
        done.contains(&last["status"].as_str().unwrap())
    });
    last
}

/// The lines of a file's content, by custom_id (each exactly once across `into`).
fn file_lines(port: u16, file_id: &Value, into: &mut BTreeMap<String, Value>) {
    let Some(file_id) = file_id.as_str() else { return };
    let (code, text) = openai(port, "GET", &format!("/v1/files/{file_id}/content"), &Value::Null);
    assert_eq!(code, 200, "{text}");
    for l in lines(&text) {
        let id = l["custom_id"].as_str().unwrap().to_string();
        assert!(into.insert(id.clone(), l).is_none(), "{id} answered twice");
    }
}

#[test]
fn an_openai_batch_answers_each_request_once_as_the_realtime_api_does() {
    let sb = Sandbox::new();
    let server = start(&sb, &["--require-key-env", "SIM_KEY", "--batch-delay-ms", "200"]);
    let port = server.port;
    let asked = questions("o", 10);
    let id = openai_batch(port, &asked, json!({"run": "r1"}));
    let b = openai_ended(port, &id, &["completed"]);
    assert_eq!(
        b["request_counts"],
        json!({"total": 10, "completed": 10, "failed": 0}),
        "{b}"
    );
    assert!(b["error_file_id"].is_null(), "{b}");
    let mut out = BTreeMap::new();
    file_lines(port, &b["output_file_id"], &mut out);
    assert_eq!(out.len(), asked.len());
    for (custom_id, question) in &asked {
        let line = &out[custom_id];
        assert_eq!(line["response"]["status_code"], 200, "{line}");
        assert!(line["error"].is_null());
        let (code, text) = openai(port, "POST", "/v1/chat/completions", &params("m-o", question));
        assert_eq!(code, 200, "{text}");
        let realtime = parsed(&text);
        assert_eq!(
            line["response"]["body"]["choices"], realtime["choices"],
            "batched and realtime differ"
        );
    }
    // A client that did not record its batch finds it by its metadata.
    let (_, text) = openai(port, "GET", "/v1/batches", &Value::Null);
    let list = parsed(&text);
    assert_eq!(list["object"], "list");
    let mine: Vec<&Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["metadata"]["run"] == "r1")
        .collect();
    assert_eq!(mine.len(), 1, "{list}");
    assert_eq!(mine[0]["id"], id.as_str());
    // The same requests again: every custom_id resubmitted.
    let again = openai_batch(port, &asked, Value::Null);
    openai_ended(port, &again, &["completed"]);
    let st = server.stats();
    assert_eq!(
        (st["batches_openai"].as_u64(), st["batch_requests"].as_u64()),
        (Some(2), Some(20)),
        "{st}"
    );
    assert_eq!(st["batch_resubmitted"], 10, "{st}");
}

#[test]
fn a_refused_openai_file_or_batch_names_the_problem() {
    let sb = Sandbox::new();
    let server = start(&sb, &["--require-key-env", "SIM_KEY"]);
    let port = server.port;
    let good = input_file(&questions("v", 2));
    let refused = |(code, text): (u16, String)| {
        assert_eq!(code, 400, "{text}");
        parsed(&text)["error"]["message"].as_str().unwrap().to_string()
    };
    let e = refused(upload(port, &format!("{good}\n{{not json")));
    assert!(e.starts_with("line 3: not JSON"), "{e}");
    let e = refused(upload(port, &format!("{good}\n{}", good.lines().next().unwrap())));
    assert!(e.contains("line 3: duplicate custom_id `v-0`"), "{e}");
    let (code, text) = upload(port, &good);
    assert_eq!(code, 200, "{text}");
    let file = parsed(&text)["id"].clone();
    let ask = |window: &str, endpoint: &str| json!({"input_file_id": file, "endpoint": endpoint, "completion_window": window});
    let e = refused(openai(port, "POST", "/v1/batches", &ask("1h", "/v1/chat/completions")));
    assert!(e.contains("completion_window"), "{e}");
    let e = refused(openai(port, "POST", "/v1/batches", &ask("24h", "/v1/embeddings")));
    assert!(e.contains("endpoint"), "{e}");
    let missing = json!({"input_file_id": "file-none", "endpoint": "/v1/chat/completions", "completion_window": "24h"});
    assert_eq!(openai(port, "POST", "/v1/batches", &missing).0, 404);
    assert_eq!(server.stats()["batches_openai"], 0);
}

#[test]
fn injected_outcomes_are_counted_on_both_apis() {
    let sb = Sandbox::new();
    let args = [
        "--require-key-env",
        "SIM_KEY",
        "--batch-delay-ms",
        "100",
        "--batch-expired",
        "0.25",
    ];
    let server = start(
        &sb,
        &[&args[..], &["--batch-errored", "0.25", "--batch-errored-when", "BOOM"]].concat(),
    );
    let port = server.port;
    let mut asked = questions("i", 40);
    asked.push(("boom".into(), "BOOM goes the request".into()));
    let id = anthropic_batch(port, &asked);
    let b = anthropic_ended(port, &id);
    let results = anthropic_results(port, &id);
    assert_eq!(results.len(), 41);
    assert_eq!(results["boom"]["type"], "errored");
    assert_eq!(
        results["boom"]["error"]["error"]["type"], "api_error",
        "{}",
        results["boom"]
    );
    let mut by_type = BTreeMap::new();
    for r in results.values() {
        *by_type.entry(r["type"].as_str().unwrap().to_string()).or_insert(0u64) += 1;
    }
    for t in ["succeeded", "errored", "expired"] {
        assert_eq!(b["request_counts"][t], by_type[t], "{t}: {b}");
        assert!(by_type[t] > 0, "{t}: {by_type:?}");
    }
    let id = openai_batch(port, &asked, Value::Null);
    let o = openai_ended(port, &id, &["expired", "completed"]);
    assert_eq!(o["status"], "expired", "some requests expired: {o}");
    let mut all = BTreeMap::new();
    file_lines(port, &o["output_file_id"], &mut all);
    file_lines(port, &o["error_file_id"], &mut all);
    assert_eq!(all.len(), 41, "every custom_id answered once");
    let expired = all.values().filter(|l| l["error"]["code"] == "batch_expired").count() as u64;
    let errored = all.values().filter(|l| l["response"]["status_code"] == 500).count() as u64;
    assert_eq!(all["boom"]["response"]["status_code"], 500);
    assert_eq!(o["request_counts"]["failed"], expired + errored, "{o}");
    let st = server.stats();
    assert_eq!(st["batch_expired"], by_type["expired"] + expired, "{st}");
    assert_eq!(st["batch_errored"], by_type["errored"] + errored, "{st}");
    assert_eq!(
        st["batch_succeeded"].as_u64().unwrap()
            + st["batch_errored"].as_u64().unwrap()
            + st["batch_expired"].as_u64().unwrap(),
        82,
        "{st}"
    );
}

#[test]
fn a_cancelled_batch_cancels_its_requests() {
    let sb = Sandbox::new();
    // Batches that would take ten minutes: a cancel always comes first.
    let server = start(&sb, &["--require-key-env", "SIM_KEY", "--batch-delay-ms", "600000"]);
    let port = server.port;
    let asked = questions("c", 5);
    let id = anthropic_batch(port, &asked);
    let (code, text) = anthropic(port, "GET", &format!("/v1/messages/batches/{id}/results"), &Value::Null);
    assert_eq!(code, 400, "no results before the batch ends: {text}");
    assert!(text.contains("still processing"), "{text}");
    let (code, text) = anthropic(port, "POST", &format!("/v1/messages/batches/{id}/cancel"), &Value::Null);
    assert_eq!(code, 200, "{text}");
    let c = parsed(&text);
    assert!(c["cancel_initiated_at"].is_string(), "{c}");
    let b = anthropic_ended(port, &id);
    assert_eq!(b["request_counts"]["canceled"], 5, "{b}");
    let results = anthropic_results(port, &id);
    assert!(results.values().all(|r| r["type"] == "canceled"), "{results:?}");
    let id = openai_batch(port, &asked, Value::Null);
    let (code, text) = openai(port, "POST", &format!("/v1/batches/{id}/cancel"), &Value::Null);
    assert_eq!(code, 200, "{text}");
    let o = openai_ended(port, &id, &["cancelled"]);
    let mut all = BTreeMap::new();
    file_lines(port, &o["error_file_id"], &mut all);
    assert_eq!(all.len(), 5);
    assert!(all.values().all(|l| l["error"]["code"] == "batch_cancelled"), "{all:?}");
    assert_eq!(server.stats()["batch_canceled"], 10);
}
