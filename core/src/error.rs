//! The spec layer's error: always names the file, the field and, where it has
//! one, the line.

use std::fmt;
use std::path::PathBuf;

/// A problem with a sweep spec or one of the files it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file the problem is in (the spec, a template, the dataset).
    pub file: PathBuf,
    /// The field, as a path such as `prompts[0].user`; empty for the whole file.
    pub field: String,
    /// 1-based line in `file`, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl SpecError {
    pub fn new(file: impl Into<PathBuf>, field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            file: file.into(),
            field: field.into(),
            line: None,
            message: message.into(),
        }
    }

    pub fn at_line(mut self, line: Option<usize>) -> Self {
        if line.is_some() {
            self.line = line;
        }
        self
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for SpecError {}

/// A template that did not render (or is not there).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{template}{}: {reason}", line.map(|l| format!(", template line {l}")).unwrap_or_default())]
pub struct RenderError {
    /// The field the template came from, such as `prompts[0].user`.
    pub template: String,
    /// 1-based line in the template, when known.
    pub line: Option<usize>,
    pub reason: String,
}

impl From<RenderError> for String {
    fn from(e: RenderError) -> String {
        e.to_string()
    }
}

/// Why a model has no API key in this process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the environment variable {var}, which holds the API key for model {model}, is not set")]
    EnvUnset { var: String, model: String },
    #[error("the API key file {file} for model {model} is empty")]
    FileEmpty { file: String, model: String },
    #[error("cannot read the API key file {file} for model {model}: {reason}")]
    FileUnreadable {
        file: String,
        model: String,
        reason: String,
    },
    #[error("no API key for model {model}")]
    NotConfigured { model: String },
}

impl From<KeyError> for String {
    fn from(e: KeyError) -> String {
        e.to_string()
    }
}

/// A file read with a size limit that could not be read as text; names what
/// the file was for and its path.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {what} `{}`: {source}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} `{}` is not a file", path.display())]
    NotAFile { what: String, path: PathBuf },
    #[error("{what} `{}` is {len} bytes; the limit is {limit}", path.display())]
    TooLarge {
        what: String,
        path: PathBuf,
        len: u64,
        limit: u64,
    },
    #[error("{what} `{}` is not UTF-8 text", path.display())]
    NotUtf8 { what: String, path: PathBuf },
}

impl From<ReadError> for String {
    fn from(e: ReadError) -> String {
        e.to_string()
    }
}

/// A run label that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` must be at most 100 characters of letters, digits, `-`, `_` or `.`")]
pub struct BadLabel(pub String);

impl From<BadLabel> for String {
    fn from(e: BadLabel) -> String {
        e.to_string()
    }
}
