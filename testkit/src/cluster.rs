//! Redis, a coordinator and workers: real `candor` processes on loopback.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::{CANDOR, Redis, Sandbox, eventually, free_port, stderr, stdout};

pub const TOKEN: &str = "test-token-7f3a9c";

/// Redis, a coordinator and workers: real processes on loopback.
pub struct Cluster {
    pub sb: Sandbox,
    pub redis: Redis,
    pub port: u16,
    /// The coordinator's /metrics, /healthz and /readyz port.
    pub http: u16,
    pub coordinator: Option<Child>,
    pub workers: Vec<Child>,
    lease_ttl_ms: u64,
    starts: usize,
    /// Extra environment for the coordinator and the workers.
    pub env: Vec<(String, String)>,
    /// Every worker records straight to Redis (else only even-numbered ones).
    pub all_direct: bool,
}

impl Cluster {
    /// Starts Redis (with an append-only file when `aof`) and a coordinator.
    pub fn start(aof: bool, lease_ttl_ms: u64) -> Cluster {
        Self::start_with_env(aof, lease_ttl_ms, Vec::new())
    }

    /// As `start`, with extra environment for the coordinator and the workers.
    pub fn start_with_env(aof: bool, lease_ttl_ms: u64, env: Vec<(String, String)>) -> Cluster {
        let sb = Sandbox::new();
        let redis = Redis::start(&sb.join("redis"), aof);
        let mut c = Cluster {
            sb,
            redis,
            port: free_port(),
            http: free_port(),
            coordinator: None,
            workers: Vec::new(),
            lease_ttl_ms,
            starts: 0,
            env,
            all_direct: false,
        };
        c.start_coordinator();
        c
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The archive every process of the cluster writes and reads: a
    /// directory in the sandbox (`CANDOR_ARCHIVE` in `env` overrides it).
    pub fn archive(&self) -> std::path::PathBuf {
        self.sb.join("archive")
    }

    fn log(&self, name: &str) -> Stdio {
        Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.sb.join(name))
                .unwrap(),
        )
    }

    pub fn start_coordinator(&mut self) {
        self.starts += 1;
        let child = self.coordinator_on(self.port, Some(self.http), "coordinator.log");
        self.coordinator = Some(child);
        let log = self.sb.join("coordinator.log");
        let starts = self.starts;
        eventually(Duration::from_secs(20), "the coordinator to listen", || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.matches("coordinator listening on").count() >= starts)
        });
    }

    /// Starts a coordinator process on `port` (and `http` for its metrics), logging to `log`.
    pub fn coordinator_on(&self, port: u16, http: Option<u16>, log: &str) -> Child {
        let mut c = Command::new(&*CANDOR);
        c.args([
            "coordinator",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--redis",
            &self.redis.url(),
        ]);
        if let Some(h) = http {
            c.args(["--http", &format!("127.0.0.1:{h}")]);
        }
        c.args(["--lease-ttl-ms", &self.lease_ttl_ms.to_string()])
            .env("CANDOR_TOKEN", TOKEN)
            .env("CANDOR_LOG", "info")
            .env("CANDOR_ARCHIVE", self.archive())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(self.log(log))
            .stderr(self.log(log))
            .spawn()
            .unwrap()
    }

    pub fn kill_coordinator(&mut self) {
        let mut c = self.coordinator.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// Starts a worker; odd-numbered workers send results through the
    /// coordinator, even ones straight to Redis. Returns its number.
    pub fn add_worker(&mut self, concurrency: u32, http_port: Option<u16>) -> usize {
        self.add_worker_with_grace(concurrency, http_port, 5)
    }

    pub fn add_worker_with_grace(&mut self, concurrency: u32, http_port: Option<u16>, grace_secs: u32) -> usize {
        let url = self.url();
        self.add_worker_to(&url, concurrency, http_port, grace_secs)
    }

    /// A worker of the coordinator at `url`.
    pub fn add_worker_to(&mut self, url: &str, concurrency: u32, http_port: Option<u16>, grace_secs: u32) -> usize {
        let n = self.workers.len();
        let mut c = Command::new(&*CANDOR);
        c.args([
            "worker",
            "--coordinator",
            url,
            "--concurrency",
            &concurrency.to_string(),
        ])
        .args(["--grace-secs", &grace_secs.to_string(), "--id", &format!("w{n}")])
        .env("CANDOR_TOKEN", TOKEN)
        .env("CANDOR_LOG", "info")
        .env("CANDOR_ARCHIVE", self.archive())
        .envs(self.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(self.log(&format!("worker{n}.log")))
        .stderr(self.log(&format!("worker{n}.log")));
        if n.is_multiple_of(2) || self.all_direct {
            c.args(["--redis", &self.redis.url()]);
        }
        if let Some(p) = http_port {
            c.args(["--http", &format!("127.0.0.1:{p}")]);
        }
        self.workers.push(c.spawn().unwrap());
        n
    }

    /// Runs a client command against the coordinator.
    pub fn candor(&self, args: &[&str]) -> Output {
        self.sb
            .cmd(args)
            .env("CANDOR_COORDINATOR", self.url())
            .env("CANDOR_TOKEN", TOKEN)
            .output()
            .unwrap()
    }

    pub fn submit(&self, spec: &str) -> String {
        let o = self.candor(&["submit", spec]);
        assert_eq!(o.status.code(), Some(0), "submit: {}", stderr(&o));
        stdout(&o).trim().to_string()
    }

    pub fn status(&self, id: &str) -> serde_json::Value {
        let o = self.candor(&["status", id, "--json"]);
        assert_eq!(o.status.code(), Some(0), "status: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// Jobs of sweep `id` with a result, read from Redis.
    pub fn done(&self, id: &str) -> u64 {
        let mut con = self.redis.con();
        redis::cmd("HGET")
            .arg(format!("candor:s:{id}:meta"))
            .arg("done")
            .query::<Option<u64>>(&mut con)
            .unwrap()
            .unwrap_or(0)
    }

    pub fn wait_done(&self, id: &str, jobs: u64, limit: Duration) {
        eventually(limit, &format!("sweep {id} to finish"), || self.done(id) >= jobs);
    }

    /// Exports a sweep's results into `out` as results.jsonl and results.csv.
    pub fn export(&self, id: &str, out: &str) {
        for f in ["jsonl", "csv"] {
            let path = format!("{out}/results.{f}");
            let o = self.candor(&["export", id, "--format", f, "--out", &path]);
            assert_eq!(o.status.code(), Some(0), "export {f}: {}", stderr(&o));
        }
    }

    /// The checker: every job has exactly one result, none is missing, and
    /// the report's counts equal the results.
    pub fn check(&self, id: &str, total: u64) {
        let mut con = self.redis.con();
        let results = crate::archive::live_results(&mut con, &self.archive(), id, total);
        assert_eq!(results.len() as u64, total, "one live result per job in the archive");
        let bits: u64 = redis::cmd("BITCOUNT")
            .arg(format!("candor:s:{id}:done"))
            .query(&mut con)
            .unwrap();
        assert_eq!(bits, total, "every job is marked done exactly once");
        assert_eq!(self.done(id), total, "the done counter counted each job once");
        let mut ids = std::collections::HashSet::new();
        for (idx, r) in &results {
            assert_eq!(r.index, *idx);
            assert!(ids.insert(r.job_id.clone()), "job id twice");
        }
        assert!((0..total).all(|i| results.contains_key(&i)), "no job is missing");

        let out = format!("report-{id}");
        let o = self.candor(&["report", id, "--out", &out]);
        assert_eq!(o.status.code(), Some(0), "report: {}", stderr(&o));
        self.export(id, &out);
        let lines = self.sb.jsonl(&format!("{out}/results.jsonl"));
        assert_eq!(lines.len() as u64, total, "results.jsonl has one line per job");
        let report = self.sb.json(&format!("{out}/report.json"));
        assert_eq!(report["sweep"]["jobs_done"].as_u64(), Some(total));
        let cells = report["cells"].as_array().unwrap();
        let counted: u64 = cells
            .iter()
            .map(|c| {
                ["n", "incomplete", "failed", "truncated", "filtered"]
                    .iter()
                    .map(|k| c[*k].as_u64().unwrap())
                    .sum::<u64>()
            })
            .sum();
        assert_eq!(counted, total, "the report counts every result once");
        let count = |status: &str| lines.iter().filter(|r| r["status"] == status).count() as u64;
        assert_eq!(report["sweep"]["jobs_failed"].as_u64(), Some(count("failed")));
        for status in ["incomplete", "truncated", "filtered"] {
            let field = format!("jobs_{status}");
            assert_eq!(report["sweep"][&field].as_u64(), Some(count(status)), "{field}");
        }
        let compliant: u64 = cells.iter().map(|c| c["compliant"].as_u64().unwrap()).sum();
        let primary = report["sweep"]["primary_classifier"].as_str().unwrap();
        let yes = lines.iter().filter(|r| r["classifications"][primary] == true).count() as u64;
        assert_eq!(compliant, yes, "compliant counts equal the results' verdicts");
        let csv = std::fs::read_to_string(self.sb.join(&format!("{out}/results.csv"))).unwrap();
        assert_eq!(
            csv.split_terminator("\r\n").count() as u64,
            total + 1,
            "results.csv has a header and a row per job"
        );
        let html = std::fs::read_to_string(self.sb.join(&format!("{out}/report.html"))).unwrap();
        assert_eq!(
            html.matches("data-bar=").count(),
            cells.len(),
            "report.html has a bar per cell"
        );
    }

    /// Sends a signal to worker `n`.
    pub fn signal_worker(&self, n: usize, sig: &str) {
        let pid = self.workers[n].id().to_string();
        assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
    }

    pub fn log_text(&self, name: &str) -> String {
        std::fs::read_to_string(self.sb.join(name)).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.workers.iter_mut().chain(self.coordinator.as_mut()) {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            for f in std::fs::read_dir(self.sb.path()).unwrap().flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.ends_with(".log") {
                    let text = std::fs::read_to_string(f.path()).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    eprintln!("--- {name} (last lines) ---");
                    for l in tail.iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
        }
    }
}
