//! One reload attempt: reread the directory, compile it, and swap the
//! result in only if it compiled without an error and holds rules; every
//! attempt, whatever its outcome, is recorded in the status.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;

use super::guard::{CompilerPanic, compile_guarded, lock};
use super::live::{LiveRules, is_empty};
use super::status::{Attempt, ReloadOutcome, Trigger};
use crate::config::diag::Diagnostic;
use crate::config::diff::diff;
use crate::config::{Compiled, Level, Snapshot};
use crate::rules::RuleSet;

/// An error about the directory as a whole, for the reload status.
fn dir_error(dir: &Path, message: String, hint: &str) -> Diagnostic {
    Diagnostic {
        level: Level::Error,
        path: dir.to_owned(),
        line: 0,
        column: 0,
        message,
        rule: None,
        hint: Some(hint.to_owned()),
    }
}

impl LiveRules {
    /// Rereads and recompiles the directory (blocking: call it off the
    /// async threads). `Watch` reloads whose files are unchanged are
    /// skipped; a `Signal` always recompiles.
    ///
    /// Reading and compiling happen before the status lock is taken, and
    /// a compiler panic is caught: it becomes a rejected attempt whose
    /// error says so, and the last good rules stay live.
    pub fn reload(&self, trigger: Trigger) -> ReloadOutcome {
        let _serial = lock(&self.reload_lock);
        let outcome = self.reload_serialised(trigger);
        let attempts = lock(&self.status).attempts;
        self.attempts_tx.send_replace(attempts);
        outcome
    }

    fn reload_serialised(&self, trigger: Trigger) -> ReloadOutcome {
        let snapshot = match crate::config::read_dir(&self.dir) {
            Ok(s) => s,
            Err(e) => {
                let d = dir_error(
                    &self.dir,
                    format!(
                        "cannot read rules directory {}: {e}; previous rules still live",
                        self.dir.display()
                    ),
                    "restore the directory; the next change to it reloads",
                );
                return self.reject(trigger, vec![d]);
            }
        };
        if trigger == Trigger::Watch
            && snapshot.diagnostics.is_empty()
            && let Some(unchanged) = self.skip_if_unchanged(trigger, &snapshot)
        {
            return unchanged;
        }
        let hook = lock(&self.compile_hook).clone();
        let Compiled {
            rules,
            diagnostics,
            files,
        } = match compile_guarded(&self.compile, &snapshot, hook) {
            Ok(c) => c,
            Err(CompilerPanic { message }) => return self.crashed(trigger, message),
        };
        let Some(rules) = rules else {
            let errors: Vec<Diagnostic> = diagnostics
                .iter()
                .filter(|d| d.is_error())
                .cloned()
                .collect();
            return ReloadOutcome::Rejected {
                generation: self.record_failure(trigger, diagnostics),
                errors,
            };
        };
        if is_empty(&rules) {
            let d = dir_error(
                &self.dir,
                format!(
                    "rules directory {} holds no rules; refusing to run with none, previous rules still live",
                    self.dir.display()
                ),
                "put the rules files back; the next change to the directory reloads",
            );
            return self.reject(trigger, vec![d]);
        }
        self.go_live(trigger, rules, files, diagnostics)
    }

    /// The directory is byte for byte what is live: nothing to compile.
    /// Records the attempt as a success that keeps the last diagnostics;
    /// `None` when something changed.
    fn skip_if_unchanged(&self, trigger: Trigger, snapshot: &Snapshot) -> Option<ReloadOutcome> {
        let mut status = lock(&self.status);
        if snapshot.hashes() != status.files {
            return None;
        }
        status.attempts += 1;
        let diagnostics = if status.last.ok {
            std::mem::take(&mut status.last.diagnostics)
        } else {
            Vec::new()
        };
        status.last = Attempt {
            at: Utc::now(),
            trigger,
            ok: true,
            diagnostics,
            diff: None,
        };
        Some(ReloadOutcome::Unchanged {
            generation: status.generation,
        })
    }

    /// The compiler panicked: recorded as a failed attempt whose error
    /// says so.
    fn crashed(&self, trigger: Trigger, message: String) -> ReloadOutcome {
        let d = dir_error(
            &self.dir,
            format!("the rules compiler crashed: {message}; previous rules still live"),
            "this is a bug in hearth: please report it with the rules directory",
        );
        let generation = self.record_failure(trigger, vec![d]);
        ReloadOutcome::Crashed {
            generation,
            message,
        }
    }

    /// Swaps `rules` in as the next generation and tells subscribers.
    fn go_live(
        &self,
        trigger: Trigger,
        rules: RuleSet,
        files: BTreeMap<PathBuf, String>,
        diagnostics: Vec<Diagnostic>,
    ) -> ReloadOutcome {
        let changes = diff(&self.current.load().inventory, &rules.inventory);
        let mut status = lock(&self.status);
        let now = Utc::now();
        self.current.store(Arc::new(rules));
        status.attempts += 1;
        status.generation += 1;
        status.live_since = now;
        status.files = files;
        status.last = Attempt {
            at: now,
            trigger,
            ok: true,
            diagnostics,
            diff: Some(changes.to_string()),
        };
        let generation = status.generation;
        drop(status);
        self.generation_tx.send_replace(generation);
        ReloadOutcome::Applied {
            generation,
            diff: changes,
        }
    }

    /// Rejects an attempt whose errors are `errors`.
    fn reject(&self, trigger: Trigger, errors: Vec<Diagnostic>) -> ReloadOutcome {
        ReloadOutcome::Rejected {
            generation: self.record_failure(trigger, errors.clone()),
            errors,
        }
    }

    /// Records a failed attempt; returns the generation still serving.
    fn record_failure(&self, trigger: Trigger, diagnostics: Vec<Diagnostic>) -> u64 {
        let mut status = lock(&self.status);
        status.attempts += 1;
        status.failures += 1;
        status.last = Attempt {
            at: Utc::now(),
            trigger,
            ok: false,
            diagnostics,
            diff: None,
        };
        status.generation
    }
}
