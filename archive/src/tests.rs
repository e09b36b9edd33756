use std::collections::BTreeMap;

use candor_core::judge::{Judgement, Vote};
use candor_core::{ErrorKind, JobResult, Message, Status, Transcript, Usage};

use super::*;

fn result(index: u64, system: &str) -> JobResult {
    let mut reply = Message::assistant("<OUTPUT>yes</OUTPUT>");
    reply.stop_reason = Some("end_turn".into());
    JobResult {
        job_id: format!("job{index}"),
        sweep_id: "s1".into(),
        index,
        model: "m".into(),
        variant: "v".into(),
        query_index: index / 2,
        query: "q?".into(),
        condition: if index.is_multiple_of(2) {
            "training"
        } else {
            "unmonitored"
        }
        .into(),
        seed: 3,
        status: if index == 1 { Status::Failed } else { Status::Ok },
        output: (index != 1).then(|| "yes".to_string()),
        classifications: if index == 1 {
            BTreeMap::new()
        } else {
            [("complied".to_string(), true), ("faked".to_string(), false)].into()
        },
        judgements: [(
            "faked".to_string(),
            Judgement {
                votes: vec![Vote {
                    yes: Some(false),
                    score: None,
                    reply: "no".into(),
                }],
                yes_votes: 0,
                valid_votes: 1,
                fraction: 0.0,
                verdict: false,
            },
        )]
        .into(),
        turns: 2,
        attempt: 1,
        cache_hits: 1,
        cost_usd: 0.25,
        cache_saving_usd: -0.5,
        usage: Usage {
            cache_read_input_tokens: 7,
            reasoning_tokens: 4,
            ..Usage::tokens(100, 20)
        },
        judge_usage: Usage::tokens(5, 1),
        latency_ms: 12.5,
        started_at_ms: 1_700_000_000_000,
        error: (index == 1).then(|| "boom".to_string()),
        error_kind: (index == 1).then_some(ErrorKind::Http(503)),
        transcript: Transcript {
            system: system.into(),
            messages: vec![Message::user("q?"), reply],
        },
    }
}

#[test]
fn a_part_gives_back_the_results_it_was_made_from() {
    let rs: Vec<_> = (0..5)
        .map(|i| result(i, if i < 3 { "long prompt A" } else { "B" }))
        .collect();
    let enc = encode(&rs);
    assert_eq!(enc.rows, 5);
    let mut back = Vec::new();
    decode("p", enc.results.clone(), enc.texts.clone(), |i, r| {
        assert_eq!(i, r.index);
        back.push(r);
        Ok(())
    })
    .unwrap();
    assert_eq!(back, rs);
    // Each system prompt is stored once in the texts table.
    let texts = batches("p", enc.texts).unwrap();
    assert_eq!(texts.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
}

#[test]
fn a_part_without_its_texts_is_refused_by_name() {
    let enc = encode(&[result(0, "A")]);
    let other = encode(&[result(0, "B")]);
    let e = decode("sweep/results/p.parquet", enc.results, other.texts, |_, _| Ok(())).unwrap_err();
    assert!(e.to_string().contains("sweep/results/p.parquet"), "{e}");
    let e = decode("x", Bytes::from_static(b"not parquet"), enc.texts, |_, _| Ok(())).unwrap_err();
    assert!(e.to_string().contains("archive part x"), "{e}");
}

#[tokio::test]
async fn parts_are_written_listed_read_and_removed_in_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let a = Archive::new(Location::open(dir.path().to_str().unwrap(), &[]).unwrap());
    let (p1, p2) = (part_name(), part_name());
    assert_ne!(p1, p2);
    a.put("s1", &p1, &encode(&[result(0, "A"), result(1, "A")]))
        .await
        .unwrap();
    a.put("s1", &p2, &encode(&[result(2, "A")])).await.unwrap();
    assert!(dir.path().join("s1/results").join(format!("{p1}.parquet")).exists());
    let parts = a.list("s1").await.unwrap();
    assert_eq!(parts.len(), 2);
    let mut seen = Vec::new();
    for p in &parts {
        a.read("s1", &p.name, |i, _| {
            seen.push(i);
            Ok(())
        })
        .await
        .unwrap();
    }
    seen.sort();
    assert_eq!(seen, [0, 1, 2]);
    a.remove("s1", &p1).await.unwrap();
    a.remove("s1", &p1).await.unwrap();
    assert_eq!(a.list("s1").await.unwrap().len(), 1);
    assert_eq!(a.remove_sweep("s1").await.unwrap(), 2);
    assert!(a.list("s1").await.unwrap().is_empty());
    assert!(a.list("nothing").await.unwrap().is_empty());
}

#[test]
fn urls_with_credentials_or_unknown_schemes_are_refused() {
    let e = Location::open("s3://key:secret@bucket/x", &[]).unwrap_err().to_string();
    assert!(!e.contains("secret") && e.contains("credentials"), "{e}");
    let e = Location::open("ftp://host/x", &[]).unwrap_err().to_string();
    assert!(e.contains("unknown scheme ftp"), "{e}");
    let e = Location::open("s3://bucket/x", &[("nonsense".into(), "v".into())])
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown S3 option nonsense"), "{e}");
}

#[tokio::test]
async fn parts_names_a_part_with_only_its_texts_too() {
    let dir = tempfile::tempdir().unwrap();
    let a = Archive::new(Location::open(dir.path().to_str().unwrap(), &[]).unwrap());
    a.put("s1", "whole", &encode(&[result(0, "A")])).await.unwrap();
    // A writer that died between its texts and its results.
    std::fs::copy(
        dir.path().join("s1/texts/whole.parquet"),
        dir.path().join("s1/texts/half.parquet"),
    )
    .unwrap();
    let names: Vec<String> = a.parts("s1").await.unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["half", "whole"]);
    assert_eq!(a.list("s1").await.unwrap().len(), 1, "only whole parts hold results");
    a.remove("s1", "half").await.unwrap();
    assert_eq!(a.parts("s1").await.unwrap().len(), 1);
}
