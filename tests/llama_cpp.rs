//! A sweep against a real model server nobody here wrote: llama.cpp's
//! OpenAI-compatible server (llama-cpp-python) with SmolLM2-135M-Instruct,
//! from the venv `scripts/llama-venv` makes under target/. Real usage is
//! recorded, replies cut at `max_tokens` count as truncated, and a rerun is
//! answered from the response cache without a single call.

mod common;

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// The GGUF file: `$CANDOR_LLAMA_GGUF` (the test command sets it), else
/// what `scripts/llama-venv` prints (it installs the venv when missing).
fn gguf() -> String {
    if let Ok(p) = std::env::var("CANDOR_LLAMA_GGUF")
        && !p.is_empty()
    {
        return p;
    }
    let o = Command::new(candor_testkit::repo().join("scripts/llama-venv"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/llama-venv runs");
    assert!(o.status.success(), "scripts/llama-venv failed");
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .last()
        .expect("a GGUF path")
        .to_string()
}

/// The server process, stopped when dropped.
struct Llama {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Llama {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Llama {
    fn start(sb: &Sandbox) -> Llama {
        let port = free_port();
        let log = sb.join("llama.log");
        let python = candor_testkit::repo().join("target/llama-venv/bin/python");
        let child = Command::new(python)
            .args(["-m", "llama_cpp.server", "--model", &gguf(), "--host", "127.0.0.1"])
            .args([
                "--port",
                &port.to_string(),
                "--model_alias",
                "smollm2",
                "--verbose",
                "false",
            ])
            .args(["--n_threads", "1"])
            .env("PYTHONUNBUFFERED", "1")
            .stdout(File::create(&log).unwrap())
            .stderr(File::create(sb.join("llama.err")).unwrap())
            .spawn()
            .expect("the llama.cpp server starts");
        let mut server = Llama { child, port, log };
        eventually(Duration::from_secs(120), "the llama.cpp server to answer", || {
            if let Ok(Some(st)) = server.child.try_wait() {
                let err = std::fs::read_to_string(sb.join("llama.err")).unwrap_or_default();
                panic!("the llama.cpp server exited ({st}): {err}");
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && http(port, "GET", "/v1/models", "").0 == 200
        });
        server
    }

    /// Chat completions it has answered, from its access log.
    fn completions(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("\"POST /v1/chat/completions HTTP/1.1\" 200")
            .count()
    }
}

#[test]
fn a_sweep_against_llama_cpp_records_real_usage_truncation_and_reruns_from_the_cache() {
    let sb = Sandbox::new();
    let server = Llama::start(&sb);
    sb.file("data.csv", &dataset(4));
    // max_tokens, not max_completion_tokens: llama.cpp ignores the latter.
    let models = format!(
        "  - {{id: smol, backend: openai, model: smollm2, base_url: \"http://127.0.0.1:{}/v1\", \
         params: {{max_tokens: 12, temperature: 0}}}}\n",
        server.port
    );
    sb.file("s.yaml", &spec_with_models(&models, 1));
    let args = [
        "run",
        "s.yaml",
        "--out",
        "out",
        "--store",
        "st",
        "--concurrency",
        "2",
        "--quiet",
    ];
    let o = sb.candor(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results = sb.jsonl("out/results.jsonl");
    assert_eq!(results.len(), 8, "4 queries × 2 conditions × 1 seed");
    let mut truncated = 0;
    for r in &results {
        assert_ne!(r["status"], "failed", "{r}");
        let (input, output) = (
            r["usage"]["input_tokens"].as_u64().unwrap(),
            r["usage"]["output_tokens"].as_u64().unwrap(),
        );
        assert!(input > 20 && (1..=12).contains(&output), "real usage: {r}");
        let stop = r["transcript"]["messages"][1]["stop_reason"].as_str().unwrap();
        assert!(stop == "length" || stop == "stop", "{r}");
        if r["status"] == "truncated" {
            assert_eq!(stop, "length");
            truncated += 1;
        }
    }
    assert!(truncated > 0, "12 tokens cut some replies");
    let calls = server.completions();
    assert!(calls >= 8, "every job called the server: {calls}");
    let report = sb.json("out/report.json");
    assert_eq!(report["sweep"]["jobs_truncated"], truncated);
    assert!(sb.join("out/report.html").exists());

    // The same jobs again (their results removed, the response cache kept):
    // every answer comes from the cache, and the server sees no request.
    std::fs::remove_file(sb.join(&format!("st/{}.log", report["sweep"]["id"].as_str().unwrap()))).unwrap();
    let o = sb.candor(&["run", "s.yaml", "--out", "again", "--store", "st", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let again = sb.jsonl("again/results.jsonl");
    assert_eq!(again.len(), 8);
    assert!(
        again.iter().all(|r| r["cache_hits"].as_u64().unwrap() >= 1),
        "answered from the cache"
    );
    assert_eq!(server.completions(), calls, "no call reached the server");
    assert_eq!(sb.json("again/report.json")["sweep"]["jobs_truncated"], truncated);
}
