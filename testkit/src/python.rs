//! Python for the interop tests (pyarrow, DuckDB, inspect_ai) and a real
//! S3-compatible server (moto's `moto_server`) on a free loopback port: both
//! from the venv `scripts/data-venv` makes under `target/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::Duration;

use crate::{Sandbox, eventually, free_port, http};

/// The venv's python: `$CANDOR_PYTHON` (the test command sets it), else
/// what `scripts/data-venv` prints (it makes the venv when missing).
pub static PYTHON: LazyLock<PathBuf> = LazyLock::new(|| {
    if let Some(p) = std::env::var_os("CANDOR_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let o = Command::new(crate::repo().join("scripts/data-venv"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/data-venv runs");
    assert!(o.status.success(), "scripts/data-venv failed");
    let out = String::from_utf8(o.stdout).unwrap();
    PathBuf::from(
        out.lines()
            .last()
            .expect("scripts/data-venv prints the python path")
            .trim(),
    )
});

/// Runs a Python script with `args` in the sandbox; panics with its output
/// unless it exits 0; returns its stdout.
pub fn python(sb: &Sandbox, script: &str, args: &[&str]) -> String {
    let path = sb.file("check.py", script);
    let o = Command::new(&*PYTHON)
        .arg(path)
        .args(args)
        .current_dir(sb.path())
        .output()
        .unwrap();
    let (out, err) = (crate::stdout(&o), crate::stderr(&o));
    assert!(o.status.success(), "python failed:\n{out}\n{err}");
    out
}

/// A `moto_server` (S3 and more, in memory) on a free loopback port,
/// killed when dropped.
pub struct S3Server {
    child: Child,
    pub port: u16,
}

impl S3Server {
    pub fn start(sb: &Sandbox) -> S3Server {
        let port = free_port();
        let bin = PYTHON.parent().expect("the venv's bin").join("moto_server");
        let log = Stdio::from(std::fs::File::create(sb.join("s3.log")).unwrap());
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("moto_server starts");
        let s = S3Server { child, port };
        eventually(Duration::from_secs(30), "the S3 server to answer", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        s
    }

    /// Creates a bucket.
    pub fn bucket(&self, name: &str) {
        let (code, text) = http(self.port, "PUT", &format!("/{name}"), "");
        assert_eq!(code, 200, "creating bucket {name}: {text}");
    }

    /// What candor (and pyarrow) need to reach it.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "candor-test"),
            ("AWS_SECRET_ACCESS_KEY", "candor-test-secret"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT", &format!("http://127.0.0.1:{}", self.port)),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
