//! Configuration layers: defaults, then CANDOR_* variables, then flags; and
//! `--dump-config`, which shows the result without any secret.

mod common;

use common::*;

fn dump(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let o = sb
        .cmd(args)
        .env_remove("CANDOR_TOKEN")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (o.status.code().unwrap(), stdout(&o), stderr(&o))
}

#[test]
fn flags_win_over_the_environment_and_secrets_never_show() {
    let sb = Sandbox::new();
    let env = [
        ("CANDOR_LISTEN", "0.0.0.0:7070"),
        ("CANDOR_HTTP", "0.0.0.0:9090"),
        ("CANDOR_REDIS_URL", "redis://:url-secret-1@redis:6379"),
        ("CANDOR_REDIS_PASSWORD", "env-secret-2"),
        ("CANDOR_TOKEN", "token-secret-3"),
        ("CANDOR_LEASE_TTL_MS", "20000"),
    ];
    let (code, out, err) = dump(
        &sb,
        &["coordinator", "--dump-config", "--listen", "127.0.0.1:7171"],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    for line in [
        "CANDOR_LISTEN=127.0.0.1:7171",
        "CANDOR_HTTP=0.0.0.0:9090",
        "CANDOR_REDIS_URL=redis://***@redis:6379",
        "CANDOR_REDIS_PASSWORD=(set)",
        "CANDOR_TOKEN=(set)",
        "CANDOR_LEASE_TTL_MS=20000",
        "CANDOR_TLS_CERT=(unset)",
    ] {
        assert!(out.lines().any(|l| l == line), "no `{line}` in\n{out}");
    }
    for secret in ["url-secret-1", "env-secret-2", "token-secret-3"] {
        assert!(!out.contains(secret) && !err.contains(secret), "{out}{err}");
    }

    let env = [
        ("CANDOR_COORDINATOR", "http://coordinator:7070"),
        ("CANDOR_CONCURRENCY", "16"),
        ("CANDOR_NO_CACHE", "true"),
        ("CANDOR_WORKER_ID", "worker-7"),
    ];
    let (code, out, err) = dump(&sb, &["worker", "--dump-config", "--concurrency", "8"], &env);
    assert_eq!(code, 0, "{err}");
    for line in [
        "CANDOR_COORDINATOR=http://coordinator:7070",
        "CANDOR_CONCURRENCY=8",
        "CANDOR_JUDGE_CONCURRENCY=8",
        "CANDOR_NO_CACHE=true",
        "CANDOR_WORKER_ID=worker-7",
        "CANDOR_GRACE_SECS=30",
        "CANDOR_CACHE_TTL_DAYS=30",
        "CANDOR_TOKEN=(unset)",
    ] {
        assert!(out.lines().any(|l| l == line), "no `{line}` in\n{out}");
    }
}

#[test]
fn a_bad_value_in_the_environment_names_the_variable() {
    let sb = Sandbox::new();
    let env = [("CANDOR_COORDINATOR", "http://c:7070"), ("CANDOR_GRACE_SECS", "99999")];
    let (code, _, err) = dump(&sb, &["worker", "--dump-config"], &env);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--grace-secs"), "{err}");
    let (code, _, err) = dump(&sb, &["coordinator", "--dump-config"], &[("CANDOR_LISTEN", "x")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--listen"), "{err}");
}
