//! `candor sim-server` speaks both providers' APIs; sweeps against it with
//! the real HTTP backends survive its injected failures.

mod common;

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;

struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(sb: &Sandbox, args: &[&str]) -> Server {
    let port = free_port();
    let log = Stdio::from(std::fs::File::create(sb.join("sim-server.log")).unwrap());
    let child = sb
        .cmd(&["sim-server", "--port", &port.to_string()])
        .args(args)
        .stderr(log)
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(20), "the sim-server to listen", || {
        std::fs::read_to_string(sb.join("sim-server.log")).is_ok_and(|l| l.contains("listening on"))
    });
    Server(child, port)
}

/// A raw HTTP/1.0 request: (status code, headers and body as text).
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text.split(' ').nth(1).unwrap().parse().unwrap();
    (code, text)
}

fn stats(port: u16) -> serde_json::Value {
    let (_, text) = http(port, "GET", "/stats", "");
    serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}

#[test]
fn a_sweep_through_both_apis_survives_injected_failures() {
    let sb = Sandbox::new();
    let server = start(
        &sb,
        &[
            "--error-500",
            "0.1",
            "--error-529",
            "0.1",
            "--malformed",
            "0.05",
            "--truncated",
            "0.05",
        ],
    );
    sb.file("data.csv", &dataset(15));
    let base = format!("http://127.0.0.1:{}", server.1);
    let spec = sim_spec(0, 2);
    let start = spec.find("models:").unwrap();
    let end = spec.find("dataset:").unwrap();
    let models = format!(
        "models:\n  - {{id: claude, backend: anthropic, model: m-a, base_url: \"{base}\", api_key_env: SIM_KEY}}\n  - {{id: local, backend: openai, model: m-o, base_url: \"{base}/v1\"}}\n"
    );
    sb.file("s.yaml", &format!("{}{models}{}", &spec[..start], &spec[end..]));
    let o = sb
        .cmd(&["run", "s.yaml", "--out", "out", "--store", "st", "--quiet"])
        .env("SIM_KEY", "sim-key-123")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results = sb.jsonl("out/results.jsonl");
    assert_eq!(results.len(), 2 * 15 * 2 * 2);
    for r in &results {
        assert_ne!(r["status"], "failed", "retries absorb the injected failures: {r}");
        assert!(r["usage"]["output_tokens"].as_u64().unwrap() > 0);
    }
    let st = stats(server.1);
    assert!(st["injected"].as_u64().unwrap() >= 10, "{st}");
    assert_eq!(
        st["requests"].as_u64(),
        Some(st["ok"].as_u64().unwrap() + st["injected"].as_u64().unwrap())
    );
    let report = sb.json("out/report.json");
    assert_eq!(
        report["sweep"]["simulated"], false,
        "real backends, even when a sim-server answers"
    );
}

#[test]
fn a_rate_limit_answers_429_with_the_providers_headers() {
    let sb = Sandbox::new();
    let server = start(&sb, &["--rpm", "2"]);
    let body = r#"{"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}"#;
    assert_eq!(http(server.1, "POST", "/v1/messages", body).0, 200);
    let (code, text) = http(server.1, "POST", "/v1/messages", body);
    assert_eq!(code, 200);
    assert!(text.contains("anthropic-ratelimit-requests-remaining: 0"), "{text}");
    let (code, text) = http(server.1, "POST", "/v1/messages", body);
    assert_eq!(code, 429, "{text}");
    assert!(text.contains("retry-after: "), "{text}");
    assert!(text.contains("rate_limit_error"), "{text}");
    let (code, text) = http(server.1, "POST", "/v1/chat/completions", body);
    assert_eq!(code, 429);
    assert!(text.contains("x-ratelimit-remaining-requests: 0"), "{text}");
    let st = stats(server.1);
    assert_eq!(st["rate_limited"], 2);
    assert_eq!(st["max_admitted_in_any_window"], 2);
}

#[test]
fn a_request_it_cannot_read_gets_a_400_that_says_why() {
    let sb = Sandbox::new();
    let server = start(&sb, &[]);
    let (code, text) = http(server.1, "POST", "/v1/messages", "{\"model\": \"m\"}");
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("`messages` is required") && text.contains("invalid_request_error"),
        "{text}"
    );
    let (code, text) = http(server.1, "POST", "/v1/chat/completions", "not json");
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("not JSON"), "{text}");
}
