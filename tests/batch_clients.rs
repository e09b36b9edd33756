//! candor's clients of the providers' batch APIs against `candor
//! sim-server`'s (a real process on loopback): submit, follow, read every
//! request's outcome once, find an unrecorded OpenAI batch by its tag, and
//! cancel. A batched reply is the reply the realtime endpoint gives the
//! same request.

mod common;

use std::time::{Duration, Instant};

use candor_exec::backend::ChatReply;
use candor_exec::batch::{BatchRequest, BatchStatus, Outcome, anthropic, openai};
use candor_exec::http::Secret;
use common::*;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);

fn requests(n: usize) -> Vec<BatchRequest> {
    (0..n)
        .map(|i| BatchRequest {
            custom_id: format!("job-{i}"),
            body: json!({
                "model": "sim",
                "max_tokens": 200,
                "messages": [{"role": "user", "content": format!("question {i}")}],
            }),
        })
        .collect()
}

/// Polls `status` until the batch ends.
async fn ended<F, Fut>(mut status: F) -> BatchStatus
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<BatchStatus, candor_exec::backend::BackendError>>,
{
    let start = Instant::now();
    loop {
        let s = status().await.unwrap();
        if s.ended {
            return s;
        }
        assert!(start.elapsed() < LIMIT, "the batch did not end: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The realtime endpoint's answer to the same request body.
async fn realtime(post: reqwest::RequestBuilder, req: &BatchRequest) -> Vec<u8> {
    let resp = post
        .header("content-type", "application/json")
        .body(req.body.to_string())
        .send()
        .await
        .unwrap();
    resp.bytes().await.unwrap().to_vec()
}

fn text(r: &ChatReply) -> String {
    r.text.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_batches_answer_every_request_once_as_the_realtime_api_would() {
    let sb = Sandbox::new();
    let server = SimServer::start(&sb, &["--batch-delay-ms", "300", "--continuation", "0"], &[]);
    let client = candor_exec::http::client(Duration::from_secs(30));
    let base = server.base();
    let b = anthropic::Batches::new(client.clone(), Some(&base), Ok(Secret("k".into())), "2026-10-21");
    let reqs = requests(5);
    let id = b.submit(&reqs).await.unwrap();
    let s = ended(|| b.status(&id)).await;
    assert_eq!((s.succeeded, s.errored, s.processing), (5, 0, 0), "{s:?}");
    let mut got = Vec::new();
    b.results(&id, |cid, o| got.push((cid, o))).await.unwrap();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(),
        ["job-0", "job-1", "job-2", "job-3", "job-4"]
    );
    // The same request, realtime: the same reply.
    let post = client
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", "k")
        .header("anthropic-version", "2026-10-21");
    let realtime = candor_exec::anthropic::parse_reply(&realtime(post, &reqs[2]).await).unwrap();
    match &got[2].1 {
        Outcome::Succeeded(r) => assert_eq!(text(r), text(&realtime)),
        o => panic!("job-2: {o:?}"),
    }

    // Cancelled before it is processed: every request cancelled.
    let slow = SimServer::start(&sb, &["--batch-delay-ms", "600000"], &[]);
    let b = anthropic::Batches::new(client, Some(&slow.base()), Ok(Secret("k".into())), "2026-10-21");
    let id = b.submit(&requests(3)).await.unwrap();
    b.cancel(&id).await.unwrap();
    let s = ended(|| b.status(&id)).await;
    assert_eq!(s.canceled, 3, "{s:?}");
    let mut canceled = 0;
    b.results(&id, |_, o| canceled += usize::from(matches!(o, Outcome::Canceled)))
        .await
        .unwrap();
    assert_eq!(canceled, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_batches_are_found_by_their_tag_and_report_expired_requests() {
    let sb = Sandbox::new();
    let server = SimServer::start(
        &sb,
        &[
            "--batch-delay-ms",
            "300",
            "--batch-errored-when",
            "question 1",
            "--continuation",
            "0",
        ],
        &[],
    );
    let client = candor_exec::http::client(Duration::from_secs(30));
    let base = format!("{}/v1", server.base());
    let b = openai::Batches::new(client.clone(), Some(&base), None);
    let reqs = requests(4);
    let id = b.submit(&reqs, "sweep-abc-round-1").await.unwrap();
    // A process that died before recording the id finds the batch again.
    assert_eq!(b.find("sweep-abc-round-1", 3).await.unwrap(), Some(id.clone()));
    assert_eq!(b.find("never-submitted", 3).await.unwrap(), None);
    let s = ended(|| b.status(&id)).await;
    assert_eq!((s.succeeded, s.errored), (3, 1), "{s:?}");
    let mut ok = Vec::new();
    let mut errored = Vec::new();
    b.results(&id, |cid, o| match o {
        Outcome::Succeeded(r) => ok.push((cid, text(&r))),
        Outcome::Errored(e) => errored.push((cid, e.to_string())),
        o => panic!("{cid}: {o:?}"),
    })
    .await
    .unwrap();
    ok.sort();
    assert_eq!(
        ok.iter().map(|o| o.0.as_str()).collect::<Vec<_>>(),
        ["job-0", "job-2", "job-3"]
    );
    assert_eq!(errored.len(), 1);
    assert_eq!(errored[0].0, "job-1");
    let post = client.post(format!("{base}/chat/completions"));
    let realtime = candor_exec::openai::parse_reply(&realtime(post, &reqs[3]).await).unwrap();
    assert_eq!(ok[2].1, text(&realtime));

    // Every request expired.
    let expiring = SimServer::start(&sb, &["--batch-delay-ms", "200", "--batch-expired", "1"], &[]);
    let b = openai::Batches::new(client, Some(&format!("{}/v1", expiring.base())), None);
    let id = b.submit(&requests(2), "sweep-abc-round-2").await.unwrap();
    ended(|| b.status(&id)).await;
    let mut expired = 0;
    b.results(&id, |_, o| expired += usize::from(matches!(o, Outcome::Expired)))
        .await
        .unwrap();
    assert_eq!(expired, 2);
}
