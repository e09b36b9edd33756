//! Bad input: exit code 2, one clear message naming the file and the field,
//! and nothing written.

mod common;

use common::*;

/// Runs `candor run` on `spec` and checks the refusal; returns the message.
fn refused(sb: &Sandbox, spec: &str) -> String {
    sb.file("bad.yaml", spec);
    let o = sb.candor(&["run", "bad.yaml", "--store", "store", "--out", "out"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one message: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(!sb.join("store").exists(), "nothing written to the store");
    assert!(!sb.join("out").exists(), "nothing written to the out dir");
    lines[0].to_string()
}

fn setup() -> (Sandbox, String) {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(4));
    (sb, sim_spec(0, 1))
}

#[test]
fn a_typo_in_a_key_names_the_key_and_the_line() {
    let (sb, spec) = setup();
    let msg = refused(&sb, &spec.replace("    model: sim-test", "    modle: sim-test"));
    assert!(msg.contains("bad.yaml:5:"), "{msg}");
    assert!(
        msg.contains("models[0]") && msg.contains("unknown field `modle`"),
        "{msg}"
    );
}

#[test]
fn a_missing_dataset_names_the_field_and_the_path() {
    let (sb, spec) = setup();
    let msg = refused(&sb, &spec.replace("path: data.csv", "path: nowhere.csv"));
    assert!(
        msg.contains("bad.yaml:12: dataset.path: no such file") && msg.contains("nowhere.csv"),
        "{msg}"
    );
}

#[test]
fn an_undefined_template_variable_names_the_variable_and_the_template() {
    let (sb, spec) = setup();
    let msg = refused(&sb, &spec.replace("{{ query }}", "{{ qurey }}"));
    assert!(msg.contains("bad.yaml:17: prompts[0].user"), "{msg}");
    assert!(msg.contains("undefined variable `qurey`"), "{msg}");
}

#[test]
fn an_undefined_variable_in_a_template_file_names_that_file() {
    let (sb, spec) = setup();
    sb.file("prompts/sys.jinja", "line one\nYou are {{ persona }}.\n");
    let msg = refused(
        &sb,
        &spec.replace(
            "    system: \"You are being evaluated on {{ condition }}.\"",
            "    system_file: prompts/sys.jinja",
        ),
    );
    assert!(
        msg.contains("sys.jinja") && msg.contains("prompts[0].system") && msg.contains("`persona`"),
        "{msg}"
    );
}

#[test]
fn an_empty_condition_list_is_refused() {
    let (sb, spec) = setup();
    let start = spec.find("conditions:").unwrap();
    let end = spec.find("seeds:").unwrap();
    let spec = format!("{}conditions: []\n{}", &spec[..start], &spec[end..]).replace(
        "      comply: {training: 0.5, unmonitored: 0.2}\n      reasons_about_training: {training: 0.3}\n",
        "",
    );
    let msg = refused(&sb, &spec);
    assert!(
        msg.contains("bad.yaml:16: conditions: at least one condition is needed"),
        "{msg}"
    );
}

#[test]
fn a_csv_without_the_named_field_lists_its_columns() {
    let (sb, spec) = setup();
    let msg = refused(&sb, &spec.replace("field: goal", "field: prompt"));
    assert!(
        msg.contains("data.csv:1: dataset.field: the CSV has no column `prompt`"),
        "{msg}"
    );
    assert!(msg.contains("goal, kind"), "{msg}");
}

#[test]
fn other_mistakes_are_refused_the_same_way() {
    let (sb, spec) = setup();
    for (from, to, expect) in [
        ("backend: sim", "backend: anthropik", "unknown variant `anthropik`"),
        (
            "backend: sim",
            "backend: anthropic",
            "only backend: sim takes a `sim` block",
        ),
        (
            "compare: [training, unmonitored]",
            "compare: [training, watched]",
            "compare[1]: `watched` is not one of the conditions",
        ),
        ("seeds: 1", "seeds: 0", "seeds: must be between 1"),
        ("max_turns: 3", "max_turns: 0", "protocol.max_turns"),
        (
            "{training: 0.5,",
            "{training: 1.5,",
            "models[0].sim.comply.training: 1.5 is not a probability",
        ),
        ("name: small", "name: ../escape", "name: `../escape` must be"),
        ("kind: scratchpad", "kind: [", "bad.yaml:"),
        ("{{ query }}", "{{ query }", "prompts[0].user: template error"),
    ] {
        assert!(spec.contains(from), "{from}");
        let msg = refused(&sb, &spec.replacen(from, to, 1));
        assert!(msg.contains(expect), "{to}: {msg}");
    }
}

#[test]
fn bad_flags_are_refused_with_exit_code_2() {
    let (sb, spec) = setup();
    sb.file("s.yaml", &spec);
    let o = sb.candor(&["run", "s.yaml", "--concurrency", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--concurrency"), "{}", stderr(&o));
    let o = sb.candor(&["run", "missing.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.yaml"), "{}", stderr(&o));
    assert!(!sb.join(".candor").exists());
}

#[test]
fn a_missing_api_key_is_named_at_validate_time_and_never_shown() {
    let sb = Sandbox::new();
    sb.file("data.csv", &dataset(2));
    let spec = sim_spec(0, 1);
    let start = spec.find("models:").unwrap();
    let end = spec.find("dataset:").unwrap();
    let models =
        "models:\n  - id: claude\n    backend: anthropic\n    model: some-model\n    api_key_env: CANDOR_TEST_KEY_9\n";
    sb.file("real.yaml", &format!("{}{models}{}", &spec[..start], &spec[end..]));
    let o = sb
        .cmd(&["validate", "real.yaml"])
        .env_remove("CANDOR_TEST_KEY_9")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("real.yaml:6: models[0].api_key_env"), "{err}");
    assert!(err.contains("CANDOR_TEST_KEY_9") && err.contains("claude"), "{err}");
    // With the key set, it validates, and the key is printed nowhere.
    let o = sb
        .cmd(&["validate", "real.yaml"])
        .env("CANDOR_TEST_KEY_9", "sk-secret-value-123")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains("sk-secret") && !stderr(&o).contains("sk-secret"));
    // A key pasted into api_key_env is refused without being echoed whole.
    sb.file(
        "pasted.yaml",
        &format!(
            "{}{}{}",
            &spec[..start],
            models.replace("CANDOR_TEST_KEY_9", "sk-ant-abc-123"),
            &spec[end..]
        ),
    );
    let o = sb.candor(&["validate", "pasted.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("never holds the key"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("sk-ant-abc-123"), "{}", stderr(&o));
}

#[test]
fn a_bad_log_filter_is_refused_naming_candor_log() {
    let (sb, spec) = setup();
    sb.file("s.yaml", &spec);
    for filter in ["info,candor_worker=loud", "nonsense["] {
        let o = sb
            .cmd(&["run", "s.yaml", "--store", "store", "--out", "out"])
            .env("CANDOR_LOG", filter)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(&format!("CANDOR_LOG `{filter}`")), "{}", stderr(&o));
        assert!(!sb.join("store").exists() && !sb.join("out").exists());
    }
}
