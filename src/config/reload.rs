//! The live rule set, its one reload path, and the directory watcher.
//!
//! [`LiveRules`] holds the current [`RuleSet`] behind an `ArcSwap`: readers
//! take an `Arc` and keep a consistent set for as long as they hold it. A
//! reload rereads the whole directory and swaps only if it compiled without
//! an error; otherwise the last good set keeps serving and the failure is
//! recorded in [`ReloadStatus`].
//!
//! Nothing poisons the reload path: the directory is read and compiled
//! before any lock that guards shared state is taken, a panic in the
//! compiler is caught (the last good set stays live and the panic is
//! recorded as a failed attempt), and every lock is taken poison-tolerantly,
//! so even a panic elsewhere never turns into a cascade of panics in later
//! reloads or `/status` calls. A reload that would leave no rules at all is
//! refused the same way.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
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
use super::{Compiled, Level, Snapshot};

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

/// Called with every snapshot just before it is compiled. Tests use it to
/// make the compiler fail in ways no rules directory can (a panic); see
/// [`LiveRules::set_compile_hook`].
#[doc(hidden)]
pub type CompileHook = Arc<dyn Fn(&Snapshot) + Send + Sync>;

/// Takes a lock whether or not a panic poisoned it: the data behind every
/// lock here is replaced whole, never left half-written, so it is always
/// consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The text of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// How a snapshot is compiled: [`super::compile_snapshot`] with the
/// daemon's own inputs (such as its send window) bound in.
pub type Compile = Arc<dyn Fn(&Snapshot) -> Compiled + Send + Sync>;

/// Compiles a snapshot, turning a compiler panic into an error message.
fn compile_guarded(
    compile: &Compile,
    snapshot: &Snapshot,
    hook: Option<CompileHook>,
) -> Result<Compiled, String> {
    catch_unwind(AssertUnwindSafe(|| {
        if let Some(hook) = hook {
            hook(snapshot);
        }
        compile(snapshot)
    }))
    .map_err(|payload| panic_message(payload.as_ref()))
}

/// Whether a rule set has no rules of any kind.
fn is_empty(rules: &RuleSet) -> bool {
    rules.counts().iter().all(|(_, n)| *n == 0)
}

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

pub struct LiveRules {
    dir: PathBuf,
    current: ArcSwap<RuleSet>,
    status: Mutex<ReloadStatus>,
    /// Serialises reloads, so two triggers never compile concurrently.
    reload_lock: Mutex<()>,
    generation_tx: watch::Sender<u64>,
    /// The number of reload attempts, for those who wait on one.
    attempts_tx: watch::Sender<u64>,
    compile_hook: Mutex<Option<CompileHook>>,
    compile: Compile,
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
        LiveRules::load_with(dir, Arc::new(super::compile_snapshot))
    }

    /// [`LiveRules::load`], compiling this and every later reload with
    /// `compile`.
    pub fn load_with(dir: &Path, compile: Compile) -> Result<LiveRules, StartupError> {
        let snapshot = super::read_dir(dir).map_err(|source| StartupError::Unreadable {
            dir: dir.to_owned(),
            source,
        })?;
        let compiled = compile_guarded(&compile, &snapshot, None).map_err(|message| {
            StartupError::Crashed {
                dir: dir.to_owned(),
                message,
            }
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
        let snapshot = match super::read_dir(&self.dir) {
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
        // The directory is byte for byte what is live: nothing to compile.
        if trigger == Trigger::Watch && snapshot.diagnostics.is_empty() {
            let mut status = lock(&self.status);
            if snapshot.hashes() == status.files {
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
                return ReloadOutcome::Unchanged {
                    generation: status.generation,
                };
            }
        }
        let hook = lock(&self.compile_hook).clone();
        let compiled = match compile_guarded(&self.compile, &snapshot, hook) {
            Ok(c) => c,
            Err(message) => {
                let d = dir_error(
                    &self.dir,
                    format!("the rules compiler crashed: {message}; previous rules still live"),
                    "this is a bug in hearth: please report it with the rules directory",
                );
                let generation = self.record_failure(trigger, vec![d]);
                return ReloadOutcome::Crashed {
                    generation,
                    message,
                };
            }
        };
        let Some(rules) = compiled.rules else {
            let errors: Vec<Diagnostic> = compiled
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .cloned()
                .collect();
            return ReloadOutcome::Rejected {
                generation: self.record_failure(trigger, compiled.diagnostics),
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
        let changes = diff(&self.current.load().inventory, &rules.inventory);
        let mut status = lock(&self.status);
        let now = Utc::now();
        self.current.store(Arc::new(rules));
        status.attempts += 1;
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

/// Watches the rules directory and reports settled changes.
///
/// notify-debouncer-full merges the raw events of one path (an editor's
/// write-rename-chmod) but emits each event once it is older than its
/// window, so a burst that lasts longer than the window arrives in several
/// batches. The quiet period is therefore ours: [`RulesWatcher::next_change`]
/// returns only once `quiet` has passed with no further change.
///
/// The watch outlives the directory: an inotify watch dies with the
/// directory it watches, so the parent is watched too (a removed and
/// recreated directory, or a swapped `rules` symlink, shows there), and
/// every [`RECHECK`] the directory's identity (canonical path, device,
/// inode) is compared with the one watched, which catches a symlink swapped
/// further up the path. Either way the watch is re-established on the new
/// directory and a change is reported, so the next reload reads it.
pub struct RulesWatcher {
    debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    rx: mpsc::UnboundedReceiver<Seen>,
    quiet: Duration,
    /// The directory as configured (absolute, symlinks not resolved).
    dir: PathBuf,
    /// What the recursive watch is on; `None` while the directory is gone.
    watching: Option<Identity>,
}

/// One settled batch of relevant events.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// The directory's own entry was created, removed or renamed (or the
    /// watch reported an error): the watch must be set up again.
    entry: bool,
}

/// Which directory a path names at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    canonical: PathBuf,
    dev: u64,
    ino: u64,
}

fn identity(dir: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    let canonical = std::fs::canonicalize(dir).ok()?;
    let meta = std::fs::metadata(&canonical).ok()?;
    meta.is_dir().then(|| Identity {
        canonical,
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

/// notify-debouncer-full's own window: long enough to merge one save's
/// raw events, short next to the quiet period.
const MERGE_WINDOW: Duration = Duration::from_millis(20);

/// How often the directory's identity is compared with the watched one.
pub const RECHECK: Duration = Duration::from_secs(1);

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

/// What a batch of events means for a watch on `dir`: `None` when nothing
/// under it changed (the parent watch also reports its other entries).
fn classify(dir: &Path, events: &[notify_debouncer_full::DebouncedEvent]) -> Option<Seen> {
    use notify::EventKind;
    let mut seen = None;
    for e in events {
        // Reading the files (our own reload among them) raises access
        // events; only changes count.
        if matches!(e.kind, EventKind::Access(_)) {
            continue;
        }
        for p in &e.paths {
            if !p.starts_with(dir) || !relevant(p) {
                continue;
            }
            let entry = p == dir
                && matches!(
                    e.kind,
                    EventKind::Create(_)
                        | EventKind::Remove(_)
                        | EventKind::Modify(notify::event::ModifyKind::Name(_))
                        | EventKind::Other
                        | EventKind::Any
                );
            let s: &mut Seen = seen.get_or_insert(Seen { entry: false });
            s.entry |= entry;
        }
    }
    seen
}

impl RulesWatcher {
    /// Starts watching `dir` recursively (and its parent, for the
    /// directory's own entry).
    pub fn start(dir: &Path, quiet: Duration) -> notify::Result<RulesWatcher> {
        let dir = std::path::absolute(dir).map_err(notify::Error::io)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let filter_dir = dir.clone();
        let mut debouncer = new_debouncer(
            MERGE_WINDOW,
            Some(MERGE_WINDOW / 4),
            move |result: DebounceEventResult| match result {
                Ok(events) => {
                    if let Some(seen) = classify(&filter_dir, &events) {
                        let _ = tx.send(seen);
                    }
                }
                Err(errors) => {
                    for e in errors {
                        tracing::warn!(error.cause_chain = ?e, "rules directory watch error");
                    }
                    // Something happened that we could not see; look again.
                    let _ = tx.send(Seen { entry: true });
                }
            },
        )?;
        let watching = identity(&dir);
        debouncer.watch(&dir, RecursiveMode::Recursive)?;
        if let Some(parent) = dir.parent().filter(|p| p.is_dir())
            && let Err(e) = debouncer.watch(parent, RecursiveMode::NonRecursive)
        {
            // Without it a recreated directory is noticed by RECHECK only.
            tracing::warn!(error.cause_chain = ?e, parent = %parent.display(), "cannot watch the rules directory's parent");
        }
        Ok(RulesWatcher {
            debouncer,
            rx,
            quiet,
            dir,
            watching,
        })
    }

    /// Re-establishes the recursive watch if the directory is no longer
    /// the one watched (or `force`). True if the watch was renewed or lost,
    /// which is itself a change to report.
    fn rewatch(&mut self, force: bool) -> bool {
        let now = identity(&self.dir);
        if now == self.watching && !(force && now.is_some()) {
            return false;
        }
        // The old watch usually died with its directory; notify then has
        // nothing to remove, which is fine.
        let _ = self.debouncer.unwatch(&self.dir);
        if now.is_some() {
            match self.debouncer.watch(&self.dir, RecursiveMode::Recursive) {
                Ok(()) => {
                    tracing::info!(dir = %self.dir.display(), "watching the rules directory again")
                }
                Err(e) => {
                    tracing::warn!(error.cause_chain = ?e, dir = %self.dir.display(), "cannot watch the rules directory; retrying");
                    self.watching = None;
                    return true;
                }
            }
        } else {
            tracing::warn!(dir = %self.dir.display(), "the rules directory is gone; previous rules stay live until it is back");
        }
        self.watching = now;
        true
    }

    /// Waits for a change, then until `quiet` passes with no other change,
    /// so a burst of writes causes one reload. False when the watch ended.
    pub async fn next_change(&mut self) -> bool {
        let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                seen = self.rx.recv() => match seen {
                    Some(seen) => {
                        self.rewatch(seen.entry);
                        break;
                    }
                    None => return false,
                },
                _ = recheck.tick() => {
                    if self.rewatch(false) {
                        break;
                    }
                }
            }
        }
        // The debouncer already waited MERGE_WINDOW; the whole quiet
        // period is what the operator configured.
        let quiet = self.quiet.saturating_sub(MERGE_WINDOW).max(MERGE_WINDOW);
        loop {
            match tokio::time::timeout(quiet, self.rx.recv()).await {
                Ok(Some(seen)) => {
                    self.rewatch(seen.entry);
                }
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
    fn a_compiler_panic_becomes_an_error_message_not_a_crash() {
        let hook: CompileHook = Arc::new(|_| panic!("boom at {}", 42));
        let compile: Compile = Arc::new(super::super::compile_snapshot);
        let err = compile_guarded(&compile, &Snapshot::default(), Some(hook)).unwrap_err();
        assert_eq!(err, "boom at 42");
    }

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

    #[test]
    fn a_poisoned_lock_is_still_usable() {
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _guard = m2.lock().unwrap();
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        assert_eq!(*lock(&m), 2);
    }

    fn event(kind: notify::EventKind, path: &str) -> notify_debouncer_full::DebouncedEvent {
        notify_debouncer_full::DebouncedEvent::new(
            notify::Event::new(kind).add_path(PathBuf::from(path)),
            std::time::Instant::now(),
        )
    }

    #[test]
    fn only_the_directory_and_its_own_entry_count_in_the_parents_events() {
        use notify::EventKind::{Access, Create, Modify, Remove};
        use notify::event::{AccessKind, CreateKind, DataChange, ModifyKind, RemoveKind};
        let dir = Path::new("/srv/hearth/rules");
        // A sibling in the parent (the database, a log) is not ours.
        let sibling = event(Create(CreateKind::File), "/srv/hearth/console.jsonl");
        assert!(classify(dir, &[sibling]).is_none());
        // Nor is a sibling whose name merely starts the same.
        let lookalike = event(Create(CreateKind::Folder), "/srv/hearth/rules-old");
        assert!(classify(dir, &[lookalike]).is_none());
        // Reads are not changes.
        let read = event(Access(AccessKind::Any), "/srv/hearth/rules/main.yaml");
        assert!(classify(dir, &[read]).is_none());
        // A file inside is a change, not a new directory.
        let edit = event(
            Modify(ModifyKind::Data(DataChange::Any)),
            "/srv/hearth/rules/main.yaml",
        );
        assert!(!classify(dir, &[edit]).unwrap().entry);
        // The directory's own entry coming or going means a new watch.
        for kind in [Create(CreateKind::Folder), Remove(RemoveKind::Folder)] {
            let own = event(kind, "/srv/hearth/rules");
            assert!(classify(dir, &[own]).unwrap().entry);
        }
    }

    #[test]
    fn editor_droppings_do_not_trigger_but_dot_names_do() {
        assert!(!relevant(Path::new("/r/.rules.yaml.swp")));
        assert!(!relevant(Path::new("/r/rules.yaml~")));
        assert!(!relevant(Path::new("/r/4913")));
        assert!(relevant(Path::new("/r/..data")));
        assert!(relevant(Path::new("/r/rules.yaml")));
    }
}
