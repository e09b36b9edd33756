//! TLS everywhere: Redis over rediss:// with a password, a coordinator
//! serving TLS, workers and the client trusting a private CA. Secrets never
//! show in logs or --help.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const PASSWORD: &str = "redis-pw-4b8e1f";

/// A CA and a certificate for 127.0.0.1 signed by it, made with openssl.
fn certs(sb: &Sandbox) {
    let run = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(sb.path())
            .output()
            .expect("openssl runs");
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=candor test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    sb.file("ext.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

struct Killer(Vec<std::process::Child>);
impl Drop for Killer {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn a_sweep_over_tls_with_a_redis_password() {
    let sb = Sandbox::new();
    certs(&sb);
    let mut procs = Killer(Vec::new());
    let rport = free_port();
    let redis = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-port",
            &rport.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args([
            "--tls-cert-file",
            "server.pem",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.pem",
        ])
        .args(["--tls-auth-clients", "no", "--requirepass", PASSWORD])
        .current_dir(sb.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    procs.0.push(redis);
    // The coordinator gets the password in the URL, the direct worker from a
    // file, as a Kubernetes Secret would mount it.
    let redis_url = format!("rediss://:{PASSWORD}@127.0.0.1:{rport}");
    let bare_url = format!("rediss://127.0.0.1:{rport}");
    sb.file("redis-password", &format!("{PASSWORD}\n"));
    let log = |name: &str| Stdio::from(std::fs::File::create(sb.join(name)).unwrap());

    let port = free_port();
    let coord = Command::new(&*CANDOR)
        .args([
            "coordinator",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--redis-ca",
            "ca.pem",
        ])
        .args(["--tls-cert", "server.pem", "--tls-key", "server.key"])
        .env("CANDOR_REDIS_URL", &redis_url)
        .env("CANDOR_TOKEN", TOKEN)
        .env("CANDOR_LOG", "debug")
        .current_dir(sb.path())
        .stdout(log("coordinator.log"))
        .stderr(log("coordinator.err"))
        .spawn()
        .unwrap();
    procs.0.push(coord);
    eventually(Duration::from_secs(30), "the coordinator to listen", || {
        std::fs::read_to_string(sb.join("coordinator.err")).is_ok_and(|l| l.contains("listening on"))
    });
    let url = format!("https://127.0.0.1:{port}");
    for (i, direct) in [true, false].into_iter().enumerate() {
        let mut w = Command::new(&*CANDOR);
        w.args([
            "worker",
            "--coordinator",
            &url,
            "--tls-ca",
            "ca.pem",
            "--concurrency",
            "4",
        ])
        .env("CANDOR_TOKEN", TOKEN)
        .env("CANDOR_LOG", "debug")
        .current_dir(sb.path())
        .stdout(log(&format!("worker{i}.log")))
        .stderr(log(&format!("worker{i}.err")));
        if direct {
            w.args(["--redis-ca", "ca.pem"])
                .env("CANDOR_REDIS_URL", &bare_url)
                .env("CANDOR_REDIS_PASSWORD_FILE", "redis-password");
        }
        procs.0.push(w.spawn().unwrap());
    }

    sb.file("data.csv", &dataset(10));
    sb.file("s.yaml", &sim_spec(0, 2));
    let client = |args: &[&str]| {
        sb.cmd(args)
            .env("CANDOR_COORDINATOR", &url)
            .env("CANDOR_TLS_CA", sb.join("ca.pem"))
            .env("CANDOR_TOKEN", TOKEN)
            .output()
            .unwrap()
    };
    let o = client(&["submit", "s.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    let o = client(&["watch", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = client(&["report", &id, "--out", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("(40 results)"), "{}", stdout(&o));
    let o = client(&["export", &id, "--format", "jsonl", "--out", "out/results.jsonl"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(sb.jsonl("out/results.jsonl").len(), 40);

    // Plain HTTP to the TLS port gets nowhere; nor does TLS without trusting the CA.
    let o = sb
        .cmd(&["status", &id])
        .env("CANDOR_COORDINATOR", format!("http://127.0.0.1:{port}"))
        .env("CANDOR_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    let o = sb
        .cmd(&["status", &id])
        .env("CANDOR_COORDINATOR", &url)
        .env("CANDOR_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));

    // Neither the Redis password nor the token shows anywhere.
    for f in [
        "coordinator.log",
        "coordinator.err",
        "worker0.log",
        "worker0.err",
        "worker1.log",
        "worker1.err",
    ] {
        let text = std::fs::read_to_string(sb.join(f)).unwrap();
        assert!(
            !text.contains(PASSWORD) && !text.contains(TOKEN),
            "{f} shows a secret:\n{text}"
        );
    }
    assert!(
        std::fs::read_to_string(sb.join("coordinator.err"))
            .unwrap()
            .contains("rediss://***@127.0.0.1")
    );
    for cmd in ["coordinator", "worker", "submit"] {
        let o = sb
            .cmd(&[cmd, "--help"])
            .env("CANDOR_REDIS_URL", &redis_url)
            .env("CANDOR_TOKEN", TOKEN)
            .env("CANDOR_COORDINATOR", &url)
            .output()
            .unwrap();
        let text = stdout(&o);
        assert!(
            !text.contains(PASSWORD) && !text.contains(TOKEN),
            "{cmd} --help shows a secret:\n{text}"
        );
    }
}

#[test]
fn a_wrong_redis_password_is_a_clear_error_without_the_password() {
    let sb = Sandbox::new();
    let redis = Redis::start(&sb.join("r"), false);
    let mut con = redis.con();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("right-pw-91")
        .query(&mut con)
        .unwrap();
    // A wrong password in the URL, or from CANDOR_REDIS_PASSWORD beside a URL without one.
    let bare = format!("redis://127.0.0.1:{}", redis.port);
    let in_url = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port);
    for env in [
        vec![("CANDOR_REDIS_URL", in_url.as_str())],
        vec![("CANDOR_REDIS_URL", bare.as_str()), ("CANDOR_REDIS_PASSWORD", PASSWORD)],
    ] {
        let o = sb
            .cmd(&["coordinator", "--listen", "127.0.0.1:0"])
            .envs(env)
            .env("CANDOR_TOKEN", TOKEN)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("--redis redis://***@127.0.0.1"), "{err}");
        assert!(!err.contains(PASSWORD), "{err}");
    }

    // The right one from the environment: the coordinator starts and serves.
    let mut coord = sb
        .cmd(&["coordinator", "--listen", "127.0.0.1:0"])
        .env("CANDOR_REDIS_URL", format!("redis://127.0.0.1:{}", redis.port))
        .env("CANDOR_REDIS_PASSWORD", "right-pw-91")
        .env("CANDOR_TOKEN", TOKEN)
        .stderr(Stdio::from(std::fs::File::create(sb.join("c.err")).unwrap()))
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(30), "the coordinator to listen", || {
        std::fs::read_to_string(sb.join("c.err")).is_ok_and(|l| l.contains("listening on"))
    });
    let _ = coord.kill();
    let _ = coord.wait();
    assert!(
        !std::fs::read_to_string(sb.join("c.err"))
            .unwrap()
            .contains("right-pw-91")
    );
}
