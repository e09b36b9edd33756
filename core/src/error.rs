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
