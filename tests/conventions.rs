//! The conventions researchers bring from other tools: API keys and
//! `CANDOR_*` settings in a `.env` (in the working directory or a parent;
//! the environment wins; values never shown), and `--limit` / `--seeds` to
//! run a smaller sweep without editing its spec.

mod common;

use std::time::Duration;

use common::*;

const KEY: &str = "sk-dotenv-secret-9f3a";

/// A spec whose one model is an Anthropic entry on the sim-server at
/// `base`, its key in SIM_KEY.
fn spec(base: &str) -> String {
    spec_with_models(
        &format!(
            "  - {{id: claude, backend: anthropic, model: claude-sonnet-4-5, base_url: \"{base}\", api_key_env: SIM_KEY}}\n"
        ),
        2,
    )
}

/// Every file under `dir`, read as text where it is text.
fn all_text(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.push_str(&all_text(&p));
        } else if let Ok(t) = std::fs::read_to_string(&p) {
            out.push_str(&t);
        }
    }
    out
}

#[test]
fn a_key_in_a_parent_directorys_dotenv_is_used_and_never_shown() {
    let sb = Sandbox::new();
    let sim = SimServer::start(&sb, &["--require-key-env", "SIM_KEY"], &[("SIM_KEY", KEY)]);
    sb.file("project/data.csv", &dataset(3));
    sb.file("project/spec.yaml", &spec(&sim.base()));
    // The key in the parent's .env; a CANDOR_* setting in the nearer one.
    sb.file(
        ".env",
        &format!("# keys\nexport SIM_KEY=\"{KEY}\"\nCANDOR_STORE=wrong-store\n"),
    );
    sb.file("project/.env", "CANDOR_STORE=dotenv-store   # the nearest file wins\n");
    let o = sb
        .cmd(&["run", "spec.yaml", "--out", "out"])
        .current_dir(sb.join("project"))
        .env_remove("SIM_KEY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        sb.join("project/dotenv-store").is_dir(),
        "CANDOR_STORE came from project/.env"
    );
    assert!(!sb.join("project/wrong-store").exists());
    let results = sb.jsonl("project/out/results.jsonl");
    assert_eq!(results.len(), 12, "3 queries × 2 conditions × 2 seeds");
    assert!(results.iter().all(|r| r["status"] == "ok"), "the server took the key");
    let shown = format!("{}{}{}", stdout(&o), stderr(&o), all_text(&sb.join("project/out")));
    assert!(!shown.contains(KEY), "the key is never shown");
}

#[test]
fn the_environment_wins_over_the_dotenv() {
    let sb = Sandbox::new();
    let sim = SimServer::start(&sb, &["--require-key-env", "SIM_KEY"], &[("SIM_KEY", KEY)]);
    sb.file("data.csv", &dataset(3));
    sb.file("spec.yaml", &spec(&sim.base()));
    sb.file(".env", &format!("SIM_KEY={KEY}\n"));
    let o = sb
        .cmd(&["run", "spec.yaml", "--out", "out"])
        .env("SIM_KEY", "sk-from-the-environment")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "the environment's key was refused: {}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("check the API key for model claude"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("sk-from-the-environment") && !stderr(&o).contains(KEY));
}

#[test]
fn a_bad_dotenv_line_is_named_and_its_value_not_shown() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(3));
    sb.file("spec.yaml", &sim_spec(0, 1));
    sb.file(".env", "# ok\nGOOD=1\nthis is sk-not-shown\n");
    let o = sb.cmd(&["run", "spec.yaml", "--out", "out"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(".env:3: no `=`"), "{err}");
    assert!(!err.contains("sk-not-shown"), "{err}");
    assert!(!sb.join("out").exists(), "nothing was run");
}

#[test]
fn limit_and_seeds_run_a_smaller_sweep_of_its_own() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(10));
    sb.file("spec.yaml", &sim_spec(0, 3));
    let full = sb.candor(&["run", "spec.yaml", "--out", "full", "--quiet"]);
    assert_eq!(full.status.code(), Some(0), "{}", stderr(&full));
    assert_eq!(sb.jsonl("full/results.jsonl").len(), 60);
    let small = sb.candor(&[
        "run",
        "spec.yaml",
        "--out",
        "small",
        "--limit",
        "4",
        "--seeds",
        "1",
        "--quiet",
    ]);
    assert_eq!(small.status.code(), Some(0), "{}", stderr(&small));
    let results = sb.jsonl("small/results.jsonl");
    assert_eq!(results.len(), 8, "4 queries × 2 conditions × 1 seed");
    assert!(
        results
            .iter()
            .all(|r| r["query_index"].as_u64() < Some(4) && r["seed"] == 0)
    );
    let (a, b) = (sb.json("full/report.json"), sb.json("small/report.json"));
    assert_ne!(
        a["sweep"]["id"], b["sweep"]["id"],
        "a sweep of its own, not the full one resumed"
    );
    let bad = sb.candor(&["run", "spec.yaml", "--limit", "0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--limit"), "{}", stderr(&bad));
}

#[test]
fn a_new_user_runs_a_shorthand_model_with_a_dotenv_key_and_a_limit() {
    let sb = Sandbox::new();
    let sim = SimServer::start(&sb, &["--require-key-env", "SIM_KEY"], &[("SIM_KEY", KEY)]);
    sb.file("data.csv", &dataset(20));
    let models = format!(
        "  - {{model: anthropic/claude-sonnet-4-5, base_url: \"{}\"}}\n",
        sim.base()
    );
    sb.file("spec.yaml", &spec_with_models(&models, 1));
    sb.file(".env", &format!("ANTHROPIC_API_KEY={KEY}\n"));
    let o = sb
        .cmd(&["run", "spec.yaml", "--limit", "5", "--out", "out", "--quiet"])
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results = sb.jsonl("out/results.jsonl");
    assert_eq!(results.len(), 10, "5 queries × 2 conditions");
    assert!(
        results
            .iter()
            .all(|r| r["model"] == "claude-sonnet-4-5" && r["status"] == "ok")
    );
    assert!(!stdout(&o).contains(KEY) && !stderr(&o).contains(KEY));
}

#[test]
fn model_shorthands_are_checked_and_model_swaps_the_specs_models() {
    let sb = Sandbox::new();
    let sim = SimServer::start(&sb, &[], &[]);
    sb.file("data.csv", &dataset(6));
    let no_url = spec_with_models("  - {model: openai-compatible/m-o}\n", 1);
    sb.file("no-url.yaml", &no_url);
    let o = sb.candor(&["validate", "no-url.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no-url.yaml:3: models:") && stderr(&o).contains("needs the `base_url`"),
        "{}",
        stderr(&o)
    );
    let no_backend = spec_with_models("  - {model: m-o}\n", 1);
    sb.file("no-backend.yaml", &no_backend);
    let o = sb.candor(&["validate", "no-backend.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no backend"), "{}", stderr(&o));
    // The sim spec's model swapped for a server's, without editing it.
    sb.file("spec.yaml", &sim_spec(0, 1));
    let entry = format!("{{model: openai-compatible/m-o, base_url: \"{}/v1\"}}", sim.base());
    let o = sb.candor(&[
        "run",
        "spec.yaml",
        "--model",
        &entry,
        "--limit",
        "3",
        "--out",
        "out",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results = sb.jsonl("out/results.jsonl");
    assert_eq!(results.len(), 6);
    assert!(results.iter().all(|r| r["model"] == "m-o"), "{:?}", results[0]["model"]);
    assert!(sim.stats()["requests"].as_u64() >= Some(6), "the server answered them");
}

#[test]
fn candor_list_shows_the_local_runs() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(4));
    sb.file("spec.yaml", &sim_spec(0, 1));
    let o = sb.candor(&["list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("no local runs under runs"), "{}", stderr(&o));
    for args in [
        vec!["run", "spec.yaml", "--quiet"],
        vec!["run", "spec.yaml", "--run", "nightly-1", "--quiet"],
    ] {
        let o = sb.candor(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let o = sb.candor(&["list"]);
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains("(small) done: 8/8 done, 0 failed") && text.contains("(small, run nightly-1) done"),
        "{text}"
    );
    assert!(
        text.contains("models sim") && text.contains("runs/small/nightly-1"),
        "{text}"
    );
    let o = sb.candor(&["list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .all(|r| r["jobs_total"] == 8 && r["models"][0] == "sim" && r["created"].is_string())
    );
    assert_eq!(v["sweeps"].as_array().unwrap().len(), 0);

    // A run still going is listed from the progress it writes every second.
    sb.file("slow.yaml", &sim_spec(400, 1));
    let mut child = sb.spawn(&[
        "run",
        "slow.yaml",
        "--seeds",
        "2",
        "--concurrency",
        "1",
        "--out",
        "runs/slow",
        "--quiet",
    ]);
    eventually(
        Duration::from_secs(30),
        "the running run is listed with some jobs done",
        || {
            let text = stdout(&sb.candor(&["list"]));
            text.lines()
                .any(|l| l.contains("(small) running: ") && !l.contains(": 0/16") && l.ends_with("runs/slow"))
        },
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn candor_init_writes_a_starter_that_runs_and_never_overwrites() {
    let sb = Sandbox::new();
    let o = sb.candor(&["init", "My Study"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("candor run sweep.yaml --limit 5"), "{}", stdout(&o));
    let dir = sb.join("My Study");
    for f in [
        "sweep.yaml",
        "requests.csv",
        "prompts/system.jinja",
        "prompts/user.jinja",
        ".env.example",
        ".gitignore",
    ] {
        assert!(dir.join(f).is_file(), "{f} written");
    }
    // The starter runs as written, on the simulated model, named after its directory.
    let o = sb
        .cmd(&["run", "sweep.yaml", "--limit", "2", "--seeds", "1"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("runs/my-study/report.json")).unwrap()).unwrap();
    // 2 requests × 2 prompts × 2 conditions × 1 seed.
    assert_eq!(report["sweep"]["jobs_done"], 8, "{report}");

    // A second init changes nothing and names what is in the way.
    std::fs::write(dir.join("sweep.yaml"), "edited\n").unwrap();
    let o = sb.candor(&["init", "My Study"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("sweep.yaml") && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(dir.join("sweep.yaml")).unwrap(), "edited\n");
    let o = sb.candor(&["init", "My Study", "--force", "--name", "renamed"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(dir.join("sweep.yaml"))
            .unwrap()
            .contains("\nname: renamed\n")
    );
    let o = sb.candor(&["init", "other", "--name", "no spaces"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--name"), "{}", stderr(&o));
    assert!(!sb.join("other").exists(), "nothing written on bad input");
}
