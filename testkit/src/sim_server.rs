//! A `candor sim-server` on a free loopback port.

use std::process::{Child, Stdio};
use std::time::Duration;

use crate::{Sandbox, eventually, free_port, http};

/// A `candor sim-server` on a free loopback port, killed when dropped.
pub struct SimServer {
    pub child: Child,
    pub port: u16,
}

impl SimServer {
    /// Starts one with `args` and extra environment; its log is `sim-server.log`.
    pub fn start(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> SimServer {
        SimServer::start_on(sb, free_port(), args, env)
    }

    /// Starts one on `port` (a model server that comes up after candor first tried it).
    pub fn start_on(sb: &Sandbox, port: u16, args: &[&str], env: &[(&str, &str)]) -> SimServer {
        let log = Stdio::from(std::fs::File::create(sb.join("sim-server.log")).unwrap());
        let child = sb
            .cmd(&["sim-server", "--port", &port.to_string()])
            .args(args)
            .envs(env.iter().copied())
            .stderr(log)
            .spawn()
            .unwrap();
        eventually(Duration::from_secs(20), "the sim-server to listen", || {
            std::fs::read_to_string(sb.join("sim-server.log")).is_ok_and(|l| l.contains("listening on"))
        });
        SimServer { child, port }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it has answered (`GET /stats`).
    pub fn stats(&self) -> serde_json::Value {
        let (_, text) = http(self.port, "GET", "/stats", "");
        serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap()
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
