//! `.env` files, as the field's tools read them: `KEY=VALUE` lines in the
//! working directory's `.env` and its parents' (the nearest file wins), for
//! API keys and `CANDOR_*` settings. The environment wins over every file.
//! Values are secrets: no message shows one.
//!
//! The variables are given to the process by running it again with them
//! (an `exec` of the same binary and arguments), so that every reader of
//! the environment (clap's `env`, the model entries' `api_key_env`) sees
//! them, without changing the environment of a running process.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// The largest `.env` file read.
const MAX_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DotenvError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: larger than {MAX_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}:{line}: {why} (expected KEY=VALUE, KEY letters, digits and _)")]
    Line {
        path: PathBuf,
        line: usize,
        why: &'static str,
    },
    #[error("starting again with the variables of {path}: {source}")]
    Exec { path: PathBuf, source: std::io::Error },
}

/// Reads the `.env` files from `dir` up and, when they set variables the
/// environment does not have, runs this process again with them (this
/// call then does not return). Returns when there is nothing to add.
pub fn apply(dir: &Path) -> Result<(), DotenvError> {
    let mut vars = BTreeMap::new();
    let mut nearest = None;
    for d in dir.ancestors() {
        let path = d.join(".env");
        if !path.is_file() {
            continue;
        }
        for (k, v) in parse(&path)? {
            vars.entry(k).or_insert(v);
        }
        nearest.get_or_insert(path);
    }
    vars.retain(|k, _| std::env::var_os(k).is_none());
    let Some(path) = nearest.filter(|_| !vars.is_empty()) else {
        return Ok(());
    };
    let exe = std::env::current_exe().map_err(|source| DotenvError::Exec {
        path: path.clone(),
        source,
    })?;
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    let source = cmd.args(args).envs(vars).exec();
    Err(DotenvError::Exec { path, source })
}

/// The variables of one file, in order.
fn parse(path: &Path) -> Result<Vec<(String, String)>, DotenvError> {
    let read = |source| DotenvError::Read {
        path: path.to_path_buf(),
        source,
    };
    if std::fs::metadata(path).map_err(read)?.len() > MAX_BYTES {
        return Err(DotenvError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let bad = |why| DotenvError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            why,
        };
        let l = l.strip_prefix("export ").map_or(l, str::trim_start);
        let (key, value) = l.split_once('=').ok_or_else(|| bad("no `=`"))?;
        let key = key.trim();
        let valid = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(bad("not a variable name"));
        }
        out.push((
            key.to_string(),
            value_of(value.trim()).ok_or_else(|| bad("an unclosed quote"))?,
        ));
    }
    Ok(out)
}

/// A value as written: quoted ('…' as is, "…" with \n, \" and \\), or bare
/// up to a ` #` comment. None: a quote left open.
fn value_of(v: &str) -> Option<String> {
    if let Some(rest) = v.strip_prefix('\'') {
        return rest.split_once('\'').map(|(inner, _)| inner.to_string());
    }
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => match chars.next()? {
                    'n' => out.push('\n'),
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
        return None;
    }
    let bare = v.split_once(" #").map_or(v, |(before, _)| before);
    Some(bare.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::value_of;

    #[test]
    fn values_are_read_as_written() {
        assert_eq!(value_of("sk-abc").as_deref(), Some("sk-abc"));
        assert_eq!(value_of("sk-abc  # the key").as_deref(), Some("sk-abc"));
        assert_eq!(value_of("'a # b'").as_deref(), Some("a # b"));
        assert_eq!(value_of(r#""a\"b\nc""#).as_deref(), Some("a\"b\nc"));
        assert_eq!(value_of("\"open"), None);
        assert_eq!(value_of("").as_deref(), Some(""));
    }
}
