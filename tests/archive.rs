//! The archive of results: Parquet parts that a local run and a cluster
//! write alike, read back by candor's export and by pyarrow and DuckDB, on
//! a directory and on a real S3-compatible server; a worker killed between
//! writing a part and recording it leaves garbage that is collected, and
//! every job keeps exactly one live result.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(120);

/// Reads a sweep's archive with pyarrow and DuckDB: rows, distinct jobs,
/// statuses, and every row's system prompt found in the texts table.
const READ_LOCAL: &str = r#"
import json, sys
import duckdb, pyarrow.parquet as pq
root = sys.argv[1]
t = pq.read_table(root + "/results")
con = duckdb.connect()
rows, jobs = con.execute(
    f"select count(*), count(distinct index) from read_parquet('{root}/results/*.parquet')").fetchone()
missing = con.execute(f"""
    select count(*) from read_parquet('{root}/results/*.parquet') r
    left join (select distinct sha256, text from read_parquet('{root}/texts/*.parquet')) t
      on r.system_sha256 = t.sha256
    where t.text is null or length(t.text) = 0""").fetchone()[0]
complied = con.execute(
    f"select count(*) from read_parquet('{root}/results/*.parquet') where classifications['compliant']").fetchone()[0]
print(json.dumps({
    "pyarrow_rows": t.num_rows,
    "columns": t.column_names,
    "status": {s: t.column("status").to_pylist().count(s) for s in set(t.column("status").to_pylist())},
    "rows": rows, "jobs": jobs, "missing_texts": missing, "complied": complied,
}))
"#;

fn small_sweep(sb: &Sandbox, queries: usize, seeds: u32) -> &'static str {
    sb.file("data.csv", &dataset(queries));
    sb.file("spec.yaml", &sim_spec(0, seeds));
    "spec.yaml"
}

#[test]
fn a_local_run_writes_an_archive_that_exports_and_pyarrow_and_duckdb_read() {
    let sb = Sandbox::new();
    let spec = small_sweep(&sb, 30, 3);
    let o = sb.candor(&["run", spec, "--out", "out", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report = sb.json("out/report.json");
    let id = report["sweep"]["id"].as_str().unwrap().to_string();
    let total = report["sweep"]["jobs_total"].as_u64().unwrap();
    assert_eq!(total, 180);
    let root = sb.join(&format!(".candor/store/archive/{id}"));
    assert!(root.join("results").is_dir(), "no archive at {}", root.display());

    // Exports: the same results as results.jsonl, the same results.csv.
    for (format, out) in [
        ("jsonl", "e/results.jsonl"),
        ("csv", "e/results.csv"),
        ("parquet", "e/pq"),
    ] {
        let o = sb.candor(&["export", "out", "--format", format, "--out", out]);
        assert_eq!(o.status.code(), Some(0), "export {format}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("exported {total} results")),
            "{}",
            stderr(&o)
        );
    }
    let set = |name: &str| -> BTreeSet<String> { sb.jsonl(name).iter().map(|v| v.to_string()).collect() };
    assert_eq!(
        set("e/results.jsonl"),
        set("out/results.jsonl"),
        "export gives back every result as it was"
    );
    assert_eq!(
        std::fs::read(sb.join("e/results.csv")).unwrap(),
        std::fs::read(sb.join("out/results.csv")).unwrap()
    );

    // pyarrow and DuckDB read the archive and the export.
    let lines = sb.jsonl("out/results.jsonl");
    let complied = lines
        .iter()
        .filter(|r| r["classifications"]["compliant"] == true)
        .count() as u64;
    for dir in [root.clone(), sb.join("e/pq")] {
        let out = python(&sb, READ_LOCAL, &[dir.to_str().unwrap()]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["pyarrow_rows"].as_u64(), Some(total), "{v}");
        assert_eq!(
            (v["rows"].as_u64(), v["jobs"].as_u64()),
            (Some(total), Some(total)),
            "{v}"
        );
        assert_eq!(v["missing_texts"].as_u64(), Some(0), "{v}");
        assert_eq!(v["complied"].as_u64(), Some(complied), "{v}");
        assert_eq!(
            v["status"]["ok"].as_u64(),
            Some(
                report["sweep"]["jobs_done"].as_u64().unwrap()
                    - report["sweep"]["jobs_failed"].as_u64().unwrap()
                    - report["sweep"]["jobs_incomplete"].as_u64().unwrap()
            ),
            "{v}"
        );
        for col in [
            "model",
            "condition",
            "seed",
            "output",
            "cost_usd",
            "input_tokens",
            "messages",
        ] {
            assert!(
                v["columns"].as_array().unwrap().iter().any(|c| c == col),
                "no column {col}: {v}"
            );
        }
    }

    // Bad input names what to fix and changes nothing.
    let o = sb.candor(&["export", "nowhere", "--format", "csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("nowhere: not a local run's out dir"),
        "{}",
        stderr(&o)
    );
    let o = sb.candor(&["export", "out", "--format", "csv", "--store", "elsewhere"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("no archive of sweep"), "{}", stderr(&o));
}

/// A cluster of `workers` writing straight to Redis, with `env`.
fn cluster(env: Vec<(String, String)>) -> Cluster {
    let mut c = Cluster::start_with_env(false, 1_000, env);
    c.all_direct = true;
    c
}

fn spec(c: &Cluster, queries: usize, seeds: u32, ms: u64) -> String {
    c.sb.file("data.csv", &dataset(queries));
    c.sb.file("spec.yaml", &sim_spec(ms, seeds));
    "spec.yaml".into()
}

#[test]
fn a_worker_killed_between_writing_a_part_and_recording_it_leaves_garbage_that_is_collected() {
    let mut c = cluster(vec![("CANDOR_ARCHIVE_GC_GRACE_SECS".into(), "2".into())]);
    let s = spec(&c, 40, 5, 20);
    // The first worker dies right after writing its third part.
    c.env.push(("CANDOR_CRASH_AFTER_PARTS".into(), "3".into()));
    c.add_worker(8, None);
    c.env.pop();
    let id = c.submit(&s);
    eventually(LIMIT, "the worker to die after writing a part", || {
        c.log_text("worker0.log")
            .contains("killing this process (kill -9) after writing a part")
    });
    let status = c.workers[0].wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "killed by SIGKILL"
    );
    assert!(c.done(&id) < 400, "it died before the end");
    c.add_worker(8, None);
    c.add_worker(8, None);
    c.wait_done(&id, 400, LIMIT);
    c.check(&id, 400);
    let archive = c.archive();
    eventually(LIMIT, "the garbage parts to be removed", || {
        candor_testkit::archive::garbage(&mut c.redis.con(), &archive, &id, 400).is_empty()
    });
    assert!(
        c.log_text("coordinator.log")
            .contains("removed archive parts no result was recorded from"),
        "the collector removed the dead worker's part"
    );
    c.check(&id, 400);
    // Deleting the sweep removes its parts.
    let o = c.candor(&["delete", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(candor_testkit::archive::part_files(&archive, &id).is_empty());
}

/// Counts a sweep's rows in an S3 archive with pyarrow.
const READ_S3: &str = r#"
import json, sys
import pyarrow.fs as fs, pyarrow.parquet as pq
port, path = sys.argv[1], sys.argv[2]
s3 = fs.S3FileSystem(access_key="candor-test", secret_key="candor-test-secret", region="us-east-1",
                     endpoint_override=f"127.0.0.1:{port}", scheme="http")
files = [f.path for f in s3.get_file_info(fs.FileSelector(path, allow_not_found=True, recursive=True)) if f.is_file]
rows = 0
indices = set()
for f in files:
    if "/results/" in f:
        t = pq.read_table(f, filesystem=s3, columns=["index"])
        rows += t.num_rows
        indices.update(t.column("index").to_pylist())
print(json.dumps({"files": len(files), "rows": rows, "jobs": len(indices)}))
"#;

#[test]
fn a_cluster_archives_to_a_real_s3_server_and_delete_removes_the_parts() {
    let sb = Sandbox::new();
    let s3 = S3Server::start(&sb);
    s3.bucket("candor-results");
    let mut env = s3.env();
    env.push(("CANDOR_ARCHIVE".into(), "s3://candor-results/nightly".into()));
    let mut c = cluster(env);
    let s = spec(&c, 20, 3, 0);
    c.add_worker(8, None);
    c.add_worker(8, None);
    let id = c.submit(&s);
    c.wait_done(&id, 120, LIMIT);
    // Nothing was written to a directory; the report and export read S3.
    assert!(!c.archive().exists());
    let o = c.candor(&["report", &id, "--out", "rep"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("(120 results)"), "{}", stdout(&o));
    c.export(&id, "rep");
    assert_eq!(c.sb.jsonl("rep/results.jsonl").len(), 120);
    let o = c.candor(&["export", &id, "--format", "parquet", "--out", "pq"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let port = s3.port.to_string();
    let path = format!("candor-results/nightly/{id}");
    let v: serde_json::Value = serde_json::from_str(python(&c.sb, READ_S3, &[&port, &path]).trim()).unwrap();
    assert_eq!((v["rows"].as_u64(), v["jobs"].as_u64()), (Some(120), Some(120)), "{v}");
    let o = c.candor(&["delete", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(python(&c.sb, READ_S3, &[&port, &path]).trim()).unwrap();
    assert_eq!(v["files"].as_u64(), Some(0), "delete removed the parts: {v}");
}

#[test]
fn a_sweep_past_its_specs_retention_is_deleted_with_its_parts() {
    // A short grace period: the coordinator tidies every second.
    let mut c = cluster(vec![("CANDOR_ARCHIVE_GC_GRACE_SECS".into(), "4".into())]);
    c.sb.file("data.csv", &dataset(10));
    // About 2.6 seconds.
    c.sb.file("spec.yaml", &format!("{}retention_days: 0.00003\n", sim_spec(0, 2)));
    let bad = format!("{}retention_days: -1\n", sim_spec(0, 2));
    c.sb.file("bad.yaml", &bad);
    let o = c.candor(&["submit", "bad.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("retention_days"), "{}", stderr(&o));
    c.add_worker(8, None);
    let id = c.submit("spec.yaml");
    c.wait_done(&id, 40, LIMIT);
    let archive = c.archive();
    assert!(!candor_testkit::archive::part_files(&archive, &id).is_empty());
    eventually(LIMIT, "the sweep to be deleted", || {
        c.candor(&["status", &id]).status.code() == Some(4)
    });
    eventually(LIMIT, "its parts to go with it", || {
        candor_testkit::archive::part_files(&archive, &id).is_empty()
    });
    eventually(LIMIT, "the coordinator to say why", || {
        c.log_text("coordinator.log").contains("past its retention")
    });
}

#[test]
fn a_worker_given_another_archive_than_its_coordinators_is_refused() {
    let mut c = cluster(Vec::new());
    let elsewhere = c.sb.join("elsewhere").display().to_string();
    c.env.push(("CANDOR_ARCHIVE".into(), elsewhere));
    let n = c.add_worker(2, None);
    c.env.pop();
    let mut code = None;
    eventually(LIMIT, "the worker to exit", || {
        code = c.workers[n].try_wait().unwrap().map(|s| s.code());
        code.is_some()
    });
    assert_eq!(code, Some(Some(2)), "bad input");
    let log = c.log_text("worker0.log");
    assert!(log.contains("not the coordinator's archive"), "{log}");
    // The coordinator's own archive is named, and a worker on it starts.
    assert!(c.archive().join("candor-archive-id").is_file());
    let s = spec(&c, 5, 1, 0);
    c.add_worker(2, None);
    let id = c.submit(&s);
    c.wait_done(&id, 10, LIMIT);
    c.check(&id, 10);
}
