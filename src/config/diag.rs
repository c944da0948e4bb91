//! Diagnostics: one problem found in the rules directory, with its place.
//!
//! Rendered as `path:line:column: error: message` (the shape compilers and
//! editors understand), with an optional `  hint: …` line underneath.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_saphyr::Spanned;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    /// Neither wrong nor suspicious: what could not be checked, and why.
    Note,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        })
    }
}

/// One problem found while loading a rule set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub level: Level,
    /// Path relative to the rules directory.
    pub path: PathBuf,
    /// 1-based; 0 when the problem concerns the whole file.
    pub line: u64,
    pub column: u64,
    pub message: String,
    /// The rule the problem belongs to, e.g. `schedule reminder-day-before`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.level,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// A place in a file: path plus 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) path: PathBuf,
    pub(crate) line: u64,
    pub(crate) column: u64,
}

impl Place {
    pub(crate) fn new(path: &Path, line: u64, column: u64) -> Place {
        Place {
            path: path.to_path_buf(),
            line,
            column,
        }
    }

    pub(crate) fn of<T>(path: &Path, spanned: &Spanned<T>) -> Place {
        Place::new(path, spanned.referenced.line(), spanned.referenced.column())
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// Collects diagnostics while compiling.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    pub(crate) items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub(crate) fn error(
        &mut self,
        at: Place,
        rule: Option<&str>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(Level::Error, at, rule, message.into())
    }

    pub(crate) fn warning(
        &mut self,
        at: Place,
        rule: Option<&str>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(Level::Warning, at, rule, message.into())
    }

    pub(crate) fn note(&mut self, at: Place, rule: Option<&str>, message: impl Into<String>) {
        self.push(Level::Note, at, rule, message.into());
    }

    fn push(
        &mut self,
        level: Level,
        at: Place,
        rule: Option<&str>,
        message: String,
    ) -> &mut Diagnostic {
        self.items.push(Diagnostic {
            level,
            path: at.path,
            line: at.line,
            column: at.column,
            message,
            rule: rule.map(str::to_owned),
            hint: None,
        });
        self.items.last_mut().expect("just pushed")
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// Sorted by file, line and column, as a reader walks the directory.
    pub(crate) fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| {
            (&a.path, a.line, a.column, a.level).cmp(&(&b.path, b.line, b.column, b.level))
        });
        self.items
    }
}

impl Diagnostic {
    pub(crate) fn with_hint(&mut self, hint: impl Into<String>) -> &mut Diagnostic {
        self.hint = Some(hint.into());
        self
    }
}

/// Kept here for callers outside `config`; the helper lives in [`crate::text`].
pub use crate::text::did_you_mean;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_as_path_line_column_level_message_then_hint() {
        let mut d = Diagnostics::default();
        d.error(
            Place::new(Path::new("a.yaml"), 3, 7),
            Some("schedule x"),
            "unknown template `y`",
        )
        .with_hint("did you mean `z`?");
        assert_eq!(
            d.items[0].to_string(),
            "a.yaml:3:7: error: unknown template `y`\n  hint: did you mean `z`?"
        );
    }
}
