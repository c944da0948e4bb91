//! The live rule set, its one reload path, and the directory watcher.
//!
//! [`LiveRules`] holds the current [`RuleSet`] behind an `ArcSwap`: readers
//! take an `Arc` and keep a consistent set for as long as they hold it. A
//! reload rereads the whole directory and swaps only if it compiled without
//! an error; otherwise the last good set keeps serving and the failure is
//! recorded in [`ReloadStatus`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::diag::Diagnostic;
use super::diff::{RuleDiff, diff};
use super::rules::RuleSet;

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
    pub at: DateTime<Utc>,
    pub trigger: Trigger,
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
    pub live_since: DateTime<Utc>,
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
                "{live}; last reload FAILED at {} ({errors} errors), previous rules still live",
                self.last.at.format("%H:%M:%SZ")
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
}

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
}

pub struct LiveRules {
    dir: PathBuf,
    current: ArcSwap<RuleSet>,
    status: Mutex<ReloadStatus>,
    /// Serialises reloads, so two triggers never compile concurrently.
    reload_lock: Mutex<()>,
    generation_tx: watch::Sender<u64>,
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
    pub fn load(dir: &Path) -> Result<LiveRules, StartupError> {
        let compiled = super::load_dir(dir).map_err(|source| StartupError::Unreadable {
            dir: dir.to_owned(),
            source,
        })?;
        let Some(rules) = compiled.rules else {
            return Err(StartupError::Invalid {
                dir: dir.to_owned(),
                errors: compiled.diagnostics,
            });
        };
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
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The live rule set. Hold the `Arc` for one unit of work.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current.load_full()
    }

    pub fn status(&self) -> ReloadStatus {
        self.status.lock().expect("status lock").clone()
    }

    pub fn generation(&self) -> u64 {
        *self.generation_tx.borrow()
    }

    /// Notified with the generation each time a new rule set goes live.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation_tx.subscribe()
    }

    /// Rereads and recompiles the directory (blocking: call it off the
    /// async threads). `Watch` reloads whose files are unchanged are
    /// skipped; a `Signal` always recompiles.
    pub fn reload(&self, trigger: Trigger) -> ReloadOutcome {
        let _serial = self.reload_lock.lock().expect("reload lock");
        let snapshot = super::read_dir(&self.dir);
        let mut status = self.status.lock().expect("status lock");
        status.attempts += 1;
        let now = Utc::now();
        let snapshot = match snapshot {
            Ok(s) => s,
            Err(e) => {
                status.failures += 1;
                let d = Diagnostic {
                    level: super::Level::Error,
                    path: self.dir.clone(),
                    line: 0,
                    column: 0,
                    message: format!("cannot read rules directory: {e}"),
                    rule: None,
                    hint: None,
                };
                status.last = Attempt {
                    at: now,
                    trigger,
                    ok: false,
                    diagnostics: vec![d.clone()],
                    diff: None,
                };
                return ReloadOutcome::Rejected {
                    generation: status.generation,
                    errors: vec![d],
                };
            }
        };
        // The directory is byte for byte what is live: nothing to compile.
        if trigger == Trigger::Watch
            && snapshot.diagnostics.is_empty()
            && snapshot.hashes() == status.files
        {
            let diagnostics = if status.last.ok {
                std::mem::take(&mut status.last.diagnostics)
            } else {
                Vec::new()
            };
            status.last = Attempt {
                at: now,
                trigger,
                ok: true,
                diagnostics,
                diff: None,
            };
            return ReloadOutcome::Unchanged {
                generation: status.generation,
            };
        }
        let compiled = super::compile_snapshot(&snapshot);
        match compiled.rules {
            Some(rules) => {
                let changes = diff(&self.current.load().inventory, &rules.inventory);
                self.current.store(Arc::new(rules));
                status.generation += 1;
                status.live_since = now;
                status.files = compiled.files;
                status.last = Attempt {
                    at: now,
                    trigger,
                    ok: true,
                    diagnostics: compiled.diagnostics,
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
            None => {
                status.failures += 1;
                let errors: Vec<Diagnostic> = compiled
                    .diagnostics
                    .iter()
                    .filter(|d| d.is_error())
                    .cloned()
                    .collect();
                status.last = Attempt {
                    at: now,
                    trigger,
                    ok: false,
                    diagnostics: compiled.diagnostics,
                    diff: None,
                };
                ReloadOutcome::Rejected {
                    generation: status.generation,
                    errors,
                }
            }
        }
    }
}

/// Watches the rules directory and reports settled changes.
///
/// notify-debouncer-full merges the raw events of one path (an editor's
/// write-rename-chmod) but emits each event once it is older than its
/// window, so a burst that lasts longer than the window arrives in several
/// batches. The quiet period is therefore ours: [`RulesWatcher::next_change`]
/// returns only once `quiet` has passed with no further change.
pub struct RulesWatcher {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    rx: mpsc::UnboundedReceiver<()>,
    quiet: Duration,
}

/// notify-debouncer-full's own window: long enough to merge one save's
/// raw events, short next to the quiet period.
const MERGE_WINDOW: Duration = Duration::from_millis(20);

/// Whether a changed path can matter: everything but editor droppings.
/// Dot-names count (Kubernetes swaps its `..data` symlink) even though
/// reading skips them.
fn relevant(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    !(name.ends_with('~')
        || name == "4913"
        || [".swp", ".swx", ".swo"]
            .iter()
            .any(|ext| name.ends_with(ext)))
}

impl RulesWatcher {
    /// Starts watching `dir` recursively.
    pub fn start(dir: &Path, quiet: Duration) -> notify::Result<RulesWatcher> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut debouncer = new_debouncer(
            MERGE_WINDOW,
            Some(MERGE_WINDOW / 4),
            move |result: DebounceEventResult| match result {
                Ok(events) => {
                    // Reading the files (our own reload among them) raises
                    // access events; only changes count.
                    let changed = events.iter().any(|e| {
                        !matches!(e.kind, notify::EventKind::Access(_))
                            && e.paths.iter().any(|p| relevant(p))
                    });
                    if changed {
                        let _ = tx.send(());
                    }
                }
                Err(errors) => {
                    for e in errors {
                        tracing::warn!(error.cause_chain = ?e, "rules directory watch error");
                    }
                    // Something happened that we could not see; look again.
                    let _ = tx.send(());
                }
            },
        )?;
        debouncer.watch(dir, RecursiveMode::Recursive)?;
        Ok(RulesWatcher {
            _debouncer: debouncer,
            rx,
            quiet,
        })
    }

    /// Waits for a change, then until `quiet` passes with no other change,
    /// so a burst of writes causes one reload. False when the watch ended.
    pub async fn next_change(&mut self) -> bool {
        if self.rx.recv().await.is_none() {
            return false;
        }
        // The debouncer already waited MERGE_WINDOW; the whole quiet
        // period is what the operator configured.
        let quiet = self.quiet.saturating_sub(MERGE_WINDOW).max(MERGE_WINDOW);
        loop {
            match tokio::time::timeout(quiet, self.rx.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return false,
                Err(_quiet) => return true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_droppings_do_not_trigger_but_dot_names_do() {
        assert!(!relevant(Path::new("/r/.rules.yaml.swp")));
        assert!(!relevant(Path::new("/r/rules.yaml~")));
        assert!(!relevant(Path::new("/r/4913")));
        assert!(relevant(Path::new("/r/..data")));
        assert!(relevant(Path::new("/r/rules.yaml")));
    }
}
