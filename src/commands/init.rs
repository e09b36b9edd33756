//! `candor init DIR`: a starter sweep in a directory of its own — the
//! shipped alignment-faking example (spec, prompts, requests), named after
//! the directory, with a `.env.example` for API keys and a `.gitignore`
//! that keeps keys and results out of version control.

use std::path::{Path, PathBuf};

use crate::exit;

#[derive(clap::Args)]
pub struct InitArgs {
    /// The directory to write into (made when missing; default: the current one).
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// The sweep's name (default: the directory's name).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Overwrite files that already exist instead of refusing.
    #[arg(long)]
    force: bool,
}

/// The example every starter is made from: one source, so the two never drift.
const SPEC: &str = include_str!("../../examples/alignment-faking.yaml");
const EXAMPLE_NAME: &str = "name: alignment-faking-helpful-only\n";

const ENV_EXAMPLE: &str = "\
# Copy to .env and fill in: candor reads .env from the working directory and
# its parents; a variable set in the environment wins over the file.
# ANTHROPIC_API_KEY=
# OPENAI_API_KEY=
";

const GITIGNORE: &str = "\
# API keys
.env
# candor's results and its embedded store
runs/
.candor/
";

/// The files a starter holds: path under DIR, and text.
fn files(name: &str) -> Vec<(&'static str, String)> {
    let spec = SPEC.replacen(EXAMPLE_NAME, &format!("name: {name}\n"), 1);
    vec![
        ("sweep.yaml", spec),
        ("requests.csv", include_str!("../../examples/requests.csv").to_string()),
        (
            "prompts/system.jinja",
            include_str!("../../examples/prompts/system.jinja").to_string(),
        ),
        (
            "prompts/system-no-training-details.jinja",
            include_str!("../../examples/prompts/system-no-training-details.jinja").to_string(),
        ),
        (
            "prompts/user.jinja",
            include_str!("../../examples/prompts/user.jinja").to_string(),
        ),
        (".env.example", ENV_EXAMPLE.to_string()),
        (".gitignore", GITIGNORE.to_string()),
    ]
}

/// A sweep name made from a directory name: lowercase letters, digits and
/// dashes, at most 64 characters.
fn name_from(dir: &Path) -> String {
    let raw = std::fs::canonicalize(dir)
        .ok()
        .or_else(|| Some(dir.to_path_buf()))
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let mut name = String::new();
    for c in raw.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (name.is_empty() || name.ends_with('-'))) {
            name.push(c);
        }
    }
    let name: String = name.trim_end_matches('-').chars().take(64).collect();
    if name.is_empty() { "my-sweep".to_string() } else { name }
}

pub fn init(a: InitArgs) -> i32 {
    let name = a.name.clone().unwrap_or_else(|| name_from(&a.dir));
    let bad = match candor_core::spec::check_run_label(&name) {
        Err(m) => Some(m.to_string()),
        Ok(()) if name.is_empty() => Some("must not be empty".to_string()),
        Ok(()) => None,
    };
    if let Some(m) = bad {
        eprintln!("error: --name: {m}");
        return exit::BAD_INPUT;
    }
    let files = files(&name);
    let taken: Vec<String> = files
        .iter()
        .map(|(p, _)| a.dir.join(p))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !taken.is_empty() && !a.force {
        eprintln!(
            "error: {} already exist{}: {} (nothing was written; --force overwrites)",
            if taken.len() == 1 { "this file" } else { "these files" },
            if taken.len() == 1 { "s" } else { "" },
            taken.join(", ")
        );
        return exit::BAD_INPUT;
    }
    for (rel, text) in &files {
        let path = a.dir.join(rel);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text));
        if let Err(e) = written {
            eprintln!("error: cannot write {}: {e}", path.display());
            return exit::FAILURE;
        }
    }
    print_next(&a.dir, &name);
    exit::OK
}

fn print_next(dir: &Path, name: &str) {
    println!("wrote the sweep `{name}` to {}:", dir.display());
    println!("  sweep.yaml       the spec: models, dataset, prompts, conditions, classifiers");
    println!("  prompts/         the system and user templates (minijinja)");
    println!("  requests.csv     the requests asked, one per row (column `goal`)");
    println!("  .env.example     where API keys go (copy to .env)");
    println!("next:");
    if dir != Path::new(".") {
        println!("  cd {}", dir.display());
    }
    println!("  candor run sweep.yaml --limit 5                        # the simulated model, no key");
    println!("  candor run sweep.yaml --model anthropic/claude-sonnet-5 # a real one, ANTHROPIC_API_KEY");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_starter_is_the_example_under_its_own_name() {
        let spec = &files("my-study")[0].1;
        assert!(spec.contains("\nname: my-study\n"), "{spec}");
        assert!(!spec.contains("alignment-faking-helpful-only"));
    }

    #[test]
    fn names_come_from_the_directory() {
        assert_eq!(name_from(Path::new("/tmp/My Study (2026)")), "my-study-2026");
        assert_eq!(name_from(Path::new("/tmp/___")), "my-sweep");
    }
}
