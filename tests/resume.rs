//! A run killed in the middle resumes: the same command again runs only the
//! unfinished jobs and ends with exactly one result per job.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::*;

const HEADER: u64 = 39;

fn store_bytes(sb: &Sandbox) -> u64 {
    std::fs::read_dir(sb.join("store"))
        .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// The arguments that run the sandbox's 240-job sweep.
fn args(concurrency: &'static str) -> [&'static str; 8] {
    [
        "run",
        "s.yaml",
        "--out",
        "out",
        "--store",
        "store",
        "--concurrency",
        concurrency,
    ]
}

/// Starts the 240-job sweep in the background and returns once `records`
/// results are in the store.
fn started(latency_ms: u64, concurrency: &'static str, records: u64) -> (Sandbox, std::process::Child) {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(40));
    sb.file("s.yaml", &sim_spec(latency_ms, 3));
    let child = sb.spawn(&args(concurrency));
    eventually(Duration::from_secs(60), "results in the store", || {
        store_bytes(&sb) > HEADER + records * 300
    });
    (sb, child)
}

/// Rows in the local archive and the distinct jobs among them.
fn archive_rows(sb: &Sandbox) -> (usize, usize) {
    let id = sb.json("out/report.json")["sweep"]["id"].as_str().unwrap().to_string();
    let dir = sb.join("store/archive");
    let mut rows = Vec::new();
    for part in candor_testkit::archive::part_files(&dir, &id) {
        rows.extend(
            candor_testkit::archive::read_part(&dir, &id, &part)
                .into_iter()
                .map(|(i, _)| i),
        );
    }
    let jobs = rows.iter().collect::<HashSet<_>>().len();
    (rows.len(), jobs)
}

fn outputs(sb: &Sandbox, file: &str) -> BTreeMap<String, String> {
    sb.jsonl(file)
        .iter()
        .map(|r| (r["job_id"].as_str().unwrap().to_string(), r["output"].to_string()))
        .collect()
}

#[test]
fn kill_9_in_the_middle_then_rerun_gives_one_result_per_job() {
    // 15 ms per model call; kill without warning once 20 results are stored.
    let (sb, mut child) = started(15, "4", 20);
    let args = args("4");
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by a signal");
    assert!(
        !sb.join("out/results.jsonl").exists(),
        "the killed run got nowhere near exporting"
    );

    let o = sb.candor(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.starts_with("resumed:"))
        .unwrap_or_else(|| panic!("no resume line in {err}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let (resumed, total, ran) = (nums[0], nums[1], nums[2]);
    assert_eq!(total, 240);
    assert!(resumed > 0 && resumed < total, "{line}");
    assert_eq!(resumed + ran, total, "only unfinished jobs ran: {line}");

    let results = sb.jsonl("out/results.jsonl");
    assert_eq!(results.len(), 240);
    let ids: HashSet<&str> = results.iter().map(|r| r["job_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 240, "exactly one result per job");
    assert_eq!(sb.json("out/report.json")["sweep"]["jobs_done"], 240);
    assert_eq!(archive_rows(&sb), (240, 240), "the archive holds one result per job");

    // Same results as a run that was never interrupted.
    let o = sb.candor(&[
        "run",
        "s.yaml",
        "--out",
        "clean",
        "--store",
        "clean-store",
        "--concurrency",
        "16",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(outputs(&sb, "out/results.jsonl"), outputs(&sb, "clean/results.jsonl"));

    // And a third run has nothing left to do.
    let o = sb.candor(&args);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("resumed: 240 of 240 jobs already had results; ran 0"),
        "{}",
        stderr(&o)
    );
    assert_eq!(sb.jsonl("out/results.jsonl").len(), 240);
    assert_eq!(
        archive_rows(&sb),
        (240, 240),
        "rewriting the archive keeps one result per job"
    );
}

#[test]
fn sigint_stops_cleanly_with_a_partial_report_and_a_rerun_finishes() {
    let (sb, child) = started(20, "2", 10);
    let args = args("2");
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("run the same command again"), "{}", stderr(&o));
    let report = sb.json("out/report.json");
    let done = report["sweep"]["jobs_done"].as_u64().unwrap();
    assert!(done > 0 && done < 240);
    assert!(report["notes"].to_string().contains("PARTIAL"));
    assert_eq!(sb.jsonl("out/results.jsonl").len() as u64, done);

    let o = sb.candor(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(sb.jsonl("out/results.jsonl").len(), 240);
}
