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

/// Every `.rs` file of the product's crates (not tests, not benchmarks).
fn product_sources() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut todo: Vec<std::path::PathBuf> = [
        "src",
        "core",
        "store",
        "report",
        "exec",
        "sim",
        "queue",
        "worker",
        "coordinator",
        "proto",
    ]
    .iter()
    .map(|d| root.join(d))
    .collect();
    let mut files = Vec::new();
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if p.is_dir() && name != "tests" && name != "target" {
                todo.push(p);
            } else if name.ends_with(".rs") {
                files.push(p);
            }
        }
    }
    files
}

/// The quoted upper-case names after each `marker` in `text`.
fn names_after(text: &str, marker: &str) -> Vec<String> {
    text.match_indices(marker)
        .filter_map(|(at, _)| {
            let rest = &text[at + marker.len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            (name.len() > 2 && rest[name.len()..].starts_with('"')).then_some(name)
        })
        .collect()
}

/// ARCHITECTURE.md's Environment table lists every variable the programs
/// read: each flag's `env = "…"`, each `env::var("…")`, each `name: "…"`
/// of `config::ENV_ONLY`, and each `…_ENV` constant.
#[test]
fn every_environment_variable_the_code_reads_is_listed_in_architecture_md() {
    let arch = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ARCHITECTURE.md")).unwrap();
    let table = &arch[arch.find("## Environment").expect("an Environment section")..];
    let mut read = BTreeSet::new();
    for f in product_sources() {
        let text = std::fs::read_to_string(&f).unwrap();
        for marker in [
            "env = \"",
            "env::var(\"",
            "env::var_os(\"",
            "name: \"",
            "_ENV: &str = \"",
        ] {
            for name in names_after(&text, marker) {
                read.insert((name, f.display().to_string()));
            }
        }
    }
    assert!(
        read.iter().any(|(n, _)| n == "CANDOR_REDIS_URL") && read.iter().any(|(n, _)| n == "CANDOR_LOG"),
        "the scan found too little: {read:?}"
    );
    let missing: Vec<String> = read
        .iter()
        .filter(|(n, _)| !table.contains(&format!("`{n}`")))
        .map(|(n, f)| format!("{n} (read in {f})"))
        .collect();
    assert!(
        missing.is_empty(),
        "not in ARCHITECTURE.md's Environment table: {missing:?}"
    );
}
