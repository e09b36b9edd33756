//! The spec bundle: a spec and every file it names, as one value. A sweep
//! travels as a bundle (`candor submit` → coordinator → Redis → workers), so
//! the coordinator never reads a client's paths. Reading files within their
//! size limits and parsing the spec's YAML happen here.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Checks, Ctx, SpecFile, Sweep, is_label_text};
use crate::dataset;
use crate::error::{BadLabel, ReadError, SpecError};

pub const MAX_SPEC_BYTES: u64 = 1024 * 1024;
pub const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;

/// A spec and every file it names. A sweep travels as a bundle, so the
/// coordinator never reads a client's paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// The spec's path as the user gave it; errors name files relative to it.
    pub spec_path: String,
    /// The spec's YAML text.
    pub spec: String,
    /// The dataset and template files, keyed by the path written in the spec.
    pub files: BTreeMap<String, String>,
    /// A run label (`--run`): the same spec under another label is another
    /// sweep with fresh samples, as a nightly job wants. Empty: none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run: String,
}

/// A bundle with its spec already parsed, as [`ParsedBundle::collect`] read
/// it: collecting needs the parsed spec to know which files to read, and
/// [`Sweep::from_parsed`] reuses it instead of parsing the YAML again.
#[derive(Debug, Clone)]
pub struct ParsedBundle {
    bundle: Bundle,
    spec: SpecFile,
}

/// Checks a run label: what `--run` may be.
pub fn check_run_label(run: &str) -> Result<(), BadLabel> {
    if is_label_text(run) {
        Ok(())
    } else {
        Err(BadLabel(run.to_string()))
    }
}

/// Reads a UTF-8 text file of at most `limit` bytes; the error names `what`
/// and the path.
pub fn read_limited(path: &Path, limit: u64, what: &str) -> Result<String, ReadError> {
    let (what, path_buf) = (what.to_string(), path.to_path_buf());
    let io = |source| ReadError::Io {
        what: what.clone(),
        path: path_buf.clone(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile { what, path: path_buf });
    }
    if meta.len() > limit {
        let len = meta.len();
        return Err(ReadError::TooLarge {
            what,
            path: path_buf,
            len,
            limit,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8 { what, path: path_buf })
}

/// Parses a spec's YAML (within the size limit); the error has the line.
fn parse_spec(path: &Path, text: &str) -> Result<SpecFile, SpecError> {
    if text.len() as u64 > MAX_SPEC_BYTES {
        return Err(SpecError::new(
            path,
            "",
            format!("the spec is {} bytes; the limit is {MAX_SPEC_BYTES}", text.len()),
        ));
    }
    serde_norway::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        let mut msg = e.to_string();
        if let Some(i) = msg.rfind(" at line ") {
            msg.truncate(i);
        }
        SpecError::new(path, "", msg).at_line(line)
    })
}

impl Bundle {
    /// Reads the spec at `path` and the files it names, within the size limits.
    pub fn collect(path: &Path) -> Result<Bundle, SpecError> {
        ParsedBundle::collect(path).map(ParsedBundle::into_bundle)
    }

    /// Total bytes of text in the bundle.
    pub fn size(&self) -> usize {
        self.spec.len() + self.files.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
    }
}

impl ParsedBundle {
    /// Reads and parses the spec at `path`, then reads the files it names,
    /// within the size limits. A file that is not there is left out: the
    /// check of the bundle reports it with its field and line.
    pub fn collect(path: &Path) -> Result<ParsedBundle, SpecError> {
        let text = read_limited(path, MAX_SPEC_BYTES, "spec").map_err(|m| SpecError::new(path, "", m))?;
        let spec = parse_spec(path, &text)?;
        let cx = Ctx { path, text: &text };
        let base = cx.base();
        let mut files = BTreeMap::new();
        for (field, rel, limit, what) in wanted_files(&spec) {
            let full = base.join(&rel);
            if files.contains_key(&rel) || !full.exists() {
                continue;
            }
            let content = read_limited(&full, limit, what).map_err(|m| cx.err(&field, m))?;
            files.insert(rel, content);
        }
        let bundle = Bundle {
            spec_path: path.display().to_string(),
            spec: text,
            files,
            run: String::new(),
        };
        Ok(ParsedBundle { bundle, spec })
    }

    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    pub fn into_bundle(self) -> Bundle {
        self.bundle
    }

    /// Runs `seeds` seeds, the dataset's first `limit` queries and the
    /// models `models` instead of the spec's (`--seeds`, `--limit`,
    /// `--model`; each model a name with its provider, `anthropic/NAME`, or
    /// a whole entry as YAML): the spec's text is rewritten with them (it is
    /// what a coordinator gets), so the sweep is another one. The spec as
    /// written is checked first, so its errors name its lines.
    pub fn set_overrides(
        &mut self,
        seeds: Option<u32>,
        limit: Option<usize>,
        models: &[String],
    ) -> Result<(), SpecError> {
        if seeds.is_none() && limit.is_none() && models.is_empty() {
            return Ok(());
        }
        Sweep::from_parsed(self)?;
        let path = Path::new(&self.bundle.spec_path).to_path_buf();
        let bad = |e: serde_norway::Error| SpecError::new(&path, "", e.to_string());
        let mut v: serde_norway::Value = serde_norway::from_str(&self.bundle.spec).map_err(bad)?;
        if let Some(n) = seeds {
            v["seeds"] = serde_norway::Value::from(n);
        }
        if let Some(n) = limit {
            v["dataset"]["limit"] = serde_norway::Value::from(n as u64);
        }
        if !models.is_empty() {
            let entries = models
                .iter()
                .map(|m| match serde_norway::from_str::<serde_norway::Value>(m) {
                    Ok(e @ serde_norway::Value::Mapping(_)) => Ok(e),
                    _ => {
                        let mut e = serde_norway::Mapping::new();
                        e.insert("model".into(), m.as_str().into());
                        Ok(serde_norway::Value::Mapping(e))
                    }
                })
                .collect::<Result<Vec<_>, SpecError>>()?;
            v["models"] = serde_norway::Value::Sequence(entries);
        }
        let text = serde_norway::to_string(&v).map_err(bad)?;
        self.spec = parse_spec(&path, &text)?;
        self.bundle.spec = text;
        Ok(())
    }

    /// Sets the run label (`--run`): it is not part of the spec's text, so
    /// the parsed spec stays as it is.
    pub fn set_run(&mut self, run: impl Into<String>) {
        self.bundle.run = run.into();
    }
}

/// The files a spec names, in the order they are read: (field, path as
/// written, size limit, what the file is).
fn wanted_files(spec: &SpecFile) -> Vec<(String, String, u64, &'static str)> {
    let mut wanted = vec![(
        "dataset.path".to_string(),
        spec.dataset.path.clone(),
        dataset::MAX_DATASET_BYTES,
        "dataset",
    )];
    for (i, p) in spec.prompts.iter().enumerate() {
        for (key, file) in [("system_file", &p.system_file), ("user_file", &p.user_file)] {
            if let Some(f) = file {
                wanted.push((format!("prompts[{i}].{key}"), f.clone(), MAX_TEMPLATE_BYTES, "template"));
            }
        }
    }
    for (i, c) in spec.classifiers.iter().enumerate() {
        if let Some(f) = c.judge().and_then(|j| j.template_file.as_ref()) {
            wanted.push((
                format!("classifiers[{i}].template_file"),
                f.clone(),
                MAX_TEMPLATE_BYTES,
                "template",
            ));
        }
    }
    wanted
}

impl Sweep {
    /// Checks a spec that arrived as a bundle from outside (a client's
    /// submission): parses it and checks everything.
    pub fn from_bundle(bundle: &Bundle) -> Result<Sweep, SpecError> {
        let spec = parse_spec(Path::new(&bundle.spec_path), &bundle.spec)?;
        Self::resolve(spec, bundle, Checks::All)
    }

    /// Checks a bundle whose spec [`ParsedBundle::collect`] already parsed.
    pub fn from_parsed(parsed: &ParsedBundle) -> Result<Sweep, SpecError> {
        Self::resolve(parsed.spec.clone(), &parsed.bundle, Checks::All)
    }

    /// Builds the sweep of a bundle that the coordinator checked when it was
    /// submitted and stored as sweep `id` (read back from its own Redis, or
    /// fetched from it by a worker), without checking it again. What a run
    /// needs is still built, so a bundle this process cannot run is refused:
    /// YAML it cannot parse, a dataset or template it cannot read, or a spec
    /// it hashes to another id than `id` (its jobs would get other ids).
    pub fn from_checked_bundle(bundle: &Bundle, id: &str) -> Result<Sweep, SpecError> {
        let path = Path::new(&bundle.spec_path);
        let sweep = Self::resolve(parse_spec(path, &bundle.spec)?, bundle, Checks::Build)?;
        if sweep.id != id {
            return Err(SpecError::new(
                path,
                "",
                format!(
                    "this bundle hashes to sweep {} here, not {id}: the process that checked it hashes specs differently",
                    sweep.id
                ),
            ));
        }
        Ok(sweep)
    }
}
