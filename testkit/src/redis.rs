//! A real `redis-server` on a free loopback port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{eventually, free_port};

/// A real `redis-server` on a free loopback port, with its data in `dir`.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    aof: bool,
}

impl Redis {
    pub fn start(dir: &Path, aof: bool) -> Redis {
        std::fs::create_dir_all(dir).unwrap();
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir: dir.to_path_buf(),
            aof,
        };
        r.launch();
        r
    }

    fn launch(&mut self) {
        let mut c = Command::new("redis-server");
        c.args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "redis.log"]);
        if self.aof {
            c.args(["--appendonly", "yes", "--appendfsync", "everysec"]);
        } else {
            c.args(["--appendonly", "no"]);
        }
        self.child = Some(
            c.stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server starts (is it installed?)"),
        );
        eventually(Duration::from_secs(20), "redis to answer PING", || self.ping());
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's process id (for its peak memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn ping(&self) -> bool {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    pub fn con(&self) -> redis::Connection {
        redis::Client::open(self.url()).unwrap().get_connection().unwrap()
    }

    /// kill -9, then start again on the same port and data directory.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        self.launch();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
