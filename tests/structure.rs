//! The crate layering ARCHITECTURE.md states, checked on the real
//! dependency graph (`cargo tree`, offline, from Cargo.lock).

use std::collections::BTreeSet;
use std::process::Command;

/// Every package `krate` links (normal dependencies, transitively).
fn linked(krate: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            krate,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {krate}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn assert_links_none(krate: &str, forbidden: &[&str]) {
    let deps = linked(krate);
    assert!(deps.len() > 1, "cargo tree -p {krate} listed nothing: {deps:?}");
    let found: Vec<&&str> = forbidden.iter().filter(|f| deps.contains(**f)).collect();
    assert!(
        found.is_empty(),
        "{krate} links {found:?}, which ARCHITECTURE.md says it must not"
    );
}

/// The executor runs inside the local runner as well as the fleet: it
/// talks HTTP to model APIs and nothing else.
#[test]
fn the_executor_links_no_redis_grpc_or_http_server() {
    assert_links_none(
        "candor-exec",
        &["redis", "tonic", "axum", "prost", "candor-queue", "candor-proto"],
    );
}

/// The domain, the store and the reports do no network I/O at all.
#[test]
fn the_domain_store_and_reports_link_no_network_crates() {
    for krate in ["candor-core", "candor-store", "candor-report"] {
        assert_links_none(
            krate,
            &["redis", "tonic", "axum", "reqwest", "tokio", "hyper", "candor-exec"],
        );
    }
}
