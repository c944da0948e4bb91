//! [`RulesWatcher`]: watches the rules directory (and its parent) and
//! reports a change once it has settled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

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
