//! What a reload reports: why it ran, how it went, and the status the
//! `/status` endpoint and systemd `STATUS=` show.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::diag::Diagnostic;
use crate::config::diff::RuleDiff;

/// Why a reload ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Startup,
    /// A file under the directory changed.
    Watch,
    /// SIGHUP (or `systemctl reload`).
    Signal,
}

/// The latest reload attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub(crate) at: DateTime<Utc>,
    pub(crate) trigger: Trigger,
    pub ok: bool,
    /// Errors (and warnings) of the attempt.
    pub diagnostics: Vec<Diagnostic>,
    /// `templates: +a ~b`, for a successful one.
    pub diff: Option<String>,
}

/// What the status endpoint and systemd `STATUS=` report.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadStatus {
    /// Increases by one every time a new rule set goes live.
    pub generation: u64,
    pub(crate) live_since: DateTime<Utc>,
    /// SHA-256 of every file of the live generation.
    pub files: BTreeMap<PathBuf, String>,
    pub attempts: u64,
    pub failures: u64,
    pub last: Attempt,
}

impl ReloadStatus {
    /// One line for systemd's `STATUS=`.
    pub fn summary(&self) -> String {
        let live = format!(
            "rules generation {} ({} files)",
            self.generation,
            self.files.len()
        );
        if self.last.ok {
            format!(
                "{live}; last reload ok at {}",
                self.last.at.format("%H:%M:%SZ")
            )
        } else {
            let errors = self
                .last
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .count();
            format!(
                "{live}; last reload FAILED at {} ({errors} error{}), previous rules still live",
                self.last.at.format("%H:%M:%SZ"),
                if errors == 1 { "" } else { "s" }
            )
        }
    }
}

#[derive(Debug)]
pub enum ReloadOutcome {
    /// A new generation is live.
    Applied { generation: u64, diff: RuleDiff },
    /// The directory's files are byte-for-byte what is live.
    Unchanged { generation: u64 },
    /// The new rules did not compile; the old ones still serve.
    Rejected {
        generation: u64,
        errors: Vec<Diagnostic>,
    },
    /// The compiler panicked (a bug in hearth, never the rules' fault);
    /// the old rules still serve and the status records the failure.
    Crashed { generation: u64, message: String },
}
