//! [`LiveRules`]: the live rule set behind an `ArcSwap`, its status, and
//! loading it at start-up (where there is no last good set to fall back on).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use chrono::Utc;
use tokio::sync::watch;

use super::guard::{Compile, CompileHook, compile_guarded, lock};
use super::status::{Attempt, ReloadStatus, Trigger};
use crate::config::diag::Diagnostic;
use crate::rules::RuleSet;

/// The rules directory did not load at start-up.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot read rules directory {}: {source}", dir.display())]
    Unreadable {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("rules directory {} is invalid ({} errors)", dir.display(), errors.iter().filter(|d| d.is_error()).count())]
    Invalid {
        dir: PathBuf,
        errors: Vec<Diagnostic>,
    },
    #[error("rules directory {} holds no rules: hearth would run with nothing to do\n  hint: put at least one *.yaml rules file in it (see docs/RULES.md), or point `rules_dir` at the right directory", dir.display())]
    Empty { dir: PathBuf },
    #[error("the rules compiler crashed on {}: {message}\n  hint: this is a bug in hearth, not in the rules: please report it with the rules directory", dir.display())]
    Crashed { dir: PathBuf, message: String },
}

/// Whether a rule set has no rules of any kind.
pub(super) fn is_empty(rules: &RuleSet) -> bool {
    rules.counts().iter().all(|(_, n)| *n == 0)
}

pub struct LiveRules {
    pub(super) dir: PathBuf,
    pub(super) current: ArcSwap<RuleSet>,
    pub(super) status: Mutex<ReloadStatus>,
    /// Serialises reloads, so two triggers never compile concurrently.
    pub(super) reload_lock: Mutex<()>,
    pub(super) generation_tx: watch::Sender<u64>,
    /// The number of reload attempts, for those who wait on one.
    pub(super) attempts_tx: watch::Sender<u64>,
    pub(super) compile_hook: Mutex<Option<CompileHook>>,
    pub(super) compile: Compile,
}

impl std::fmt::Debug for LiveRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRules")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl LiveRules {
    /// Loads the directory for the first time. There is no last good set
    /// to fall back on, so an invalid directory is an error.
    /// A directory without a single rule is an error too: it is far more
    /// likely a wrong path or a failed deployment than an intent.
    pub fn load(dir: &Path) -> Result<LiveRules, StartupError> {
        LiveRules::load_with(dir, Arc::new(crate::config::compile_snapshot))
    }

    /// [`LiveRules::load`], compiling this and every later reload with
    /// `compile`.
    pub(crate) fn load_with(dir: &Path, compile: Compile) -> Result<LiveRules, StartupError> {
        let snapshot = crate::config::read_dir(dir).map_err(|source| StartupError::Unreadable {
            dir: dir.to_owned(),
            source,
        })?;
        let compiled =
            compile_guarded(&compile, &snapshot, None).map_err(|e| StartupError::Crashed {
                dir: dir.to_owned(),
                message: e.message,
            })?;
        let Some(rules) = compiled.rules else {
            return Err(StartupError::Invalid {
                dir: dir.to_owned(),
                errors: compiled.diagnostics,
            });
        };
        if is_empty(&rules) {
            return Err(StartupError::Empty {
                dir: dir.to_owned(),
            });
        }
        let now = Utc::now();
        let status = ReloadStatus {
            generation: 1,
            live_since: now,
            files: compiled.files,
            attempts: 1,
            failures: 0,
            last: Attempt {
                at: now,
                trigger: Trigger::Startup,
                ok: true,
                diagnostics: compiled.diagnostics,
                diff: None,
            },
        };
        Ok(LiveRules {
            dir: dir.to_owned(),
            current: ArcSwap::from_pointee(rules),
            status: Mutex::new(status),
            reload_lock: Mutex::new(()),
            generation_tx: watch::channel(1).0,
            attempts_tx: watch::channel(1).0,
            compile_hook: Mutex::new(None),
            compile,
        })
    }

    /// Test-only: runs `hook` on each snapshot just before it is compiled
    /// (inside the same panic guard as the compiler). Production never
    /// sets one.
    #[doc(hidden)]
    pub fn set_compile_hook(&self, hook: Option<CompileHook>) {
        *lock(&self.compile_hook) = hook;
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The live rule set. Hold the `Arc` for one unit of work.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current.load_full()
    }

    pub fn status(&self) -> ReloadStatus {
        lock(&self.status).clone()
    }

    pub fn generation(&self) -> u64 {
        *self.generation_tx.borrow()
    }

    /// Notified with the generation each time a new rule set goes live.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation_tx.subscribe()
    }

    /// Notified with the attempt count after each reload attempt, whatever
    /// its outcome.
    pub fn subscribe_attempts(&self) -> watch::Receiver<u64> {
        self.attempts_tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_rules_does_not_load_and_says_which() {
        let dir = tempfile::tempdir().unwrap();
        let err = LiveRules::load(dir.path()).unwrap_err();
        assert!(matches!(err, StartupError::Empty { .. }), "{err:?}");
        std::fs::write(dir.path().join("empty.yaml"), "# nothing yet\n").unwrap();
        let err = LiveRules::load(dir.path()).unwrap_err();
        assert!(matches!(err, StartupError::Empty { .. }), "{err:?}");
        assert!(
            err.to_string().starts_with(&format!(
                "rules directory {} holds no rules",
                dir.path().display()
            )),
            "{err}"
        );
    }
}
