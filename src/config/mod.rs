//! The rules directory: reading, parsing, compiling, validating, reloading.
//!
//! - `mod.rs` (here): reading the directory into a [`Snapshot`] and
//!   compiling it ([`load_dir`], [`compile_snapshot`]).
//! - [`raw`]: structs mirroring the YAML (`deny_unknown_fields`, spans).
//! - [`compile`]: raw files → [`RuleSet`], every problem as a [`Diagnostic`].
//! - [`diag`]: a diagnostic, its place, and the list a compile fills.
//! - [`rules`]: the immutable compiled rule set (defined in
//!   [`crate::rules`], which evaluates it; re-exported here).
//! - `options`: [`CompileOptions`], inputs from outside the directory
//!   (the send window).
//! - [`diff`]: what changed between two rule sets.
//! - [`reload`]: the live rule set, its reload path and status, the watcher.
//!
//! One validator serves start-up, hot reload, `hearth check` and `hearth test`.

pub(crate) mod compile;
pub mod diag;
pub(crate) mod diff;
mod options;
pub(crate) mod raw;
pub mod reload;

use std::path::{Path, PathBuf};

pub use crate::rules::RuleSet;
pub use compile::{Compiled, Source};
pub use diag::{Diagnostic, Level};
pub use options::CompileOptions;

use diag::{Diagnostics, Place};

/// Whether a directory entry is left out: dotfiles (and so Kubernetes'
/// `..data`), editor swap and backup files, and vim's `4913` probe.
pub(crate) fn is_ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || name == "4913"
        || [".swp", ".swx", ".swo", ".tmp", ".bak"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

fn is_rules_file(name: &str) -> bool {
    !is_ignored(name) && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// The rules directory as read at one moment: every rules file and every
/// script. Compiling uses only this, so its hashes always describe exactly
/// what was compiled.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub sources: Vec<Source>,
    /// `.rhai` files by relative path.
    pub scripts: std::collections::BTreeMap<PathBuf, String>,
    /// Files that could not be read.
    pub diagnostics: Vec<Diagnostic>,
}

impl Snapshot {
    /// SHA-256 of every file read, by relative path.
    pub(crate) fn hashes(&self) -> std::collections::BTreeMap<PathBuf, String> {
        self.sources
            .iter()
            .map(|s| (s.path.clone(), compile::sha256_hex(s.text.as_bytes())))
            .chain(
                self.scripts
                    .iter()
                    .map(|(p, t)| (p.clone(), compile::sha256_hex(t.as_bytes()))),
            )
            .collect()
    }
}

/// Reads every rules file and script under `dir` (recursively, following
/// symlinks, sorted by path). A file that cannot be read becomes a
/// diagnostic, not a failure, so `check` still reports everything else.
pub fn read_dir(dir: &Path) -> Result<Snapshot, std::io::Error> {
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let mut sources = Vec::new();
    let mut scripts = std::collections::BTreeMap::new();
    let mut diags = Diagnostics::default();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !is_ignored(&e.file_name().to_string_lossy()));
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let rel = e
                    .path()
                    .and_then(|p| p.strip_prefix(dir).ok())
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                diags.error(Place::new(&rel, 0, 0), None, format!("cannot read: {e}"));
                continue;
            }
        };
        let name = entry.file_name().to_string_lossy();
        let script = !is_ignored(&name) && name.ends_with(".rhai");
        if !entry.file_type().is_file() || !(script || is_rules_file(&name)) {
            continue;
        }
        let rel: PathBuf = entry
            .path()
            .strip_prefix(dir)
            .unwrap_or(entry.path())
            .to_path_buf();
        match std::fs::read(entry.path()) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) if script => {
                    scripts.insert(rel, text);
                }
                Ok(text) => sources.push(Source { path: rel, text }),
                Err(_) => {
                    diags
                        .error(Place::new(&rel, 0, 0), None, "file is not valid UTF-8")
                        .with_hint("save it as UTF-8");
                }
            },
            Err(e) => {
                diags.error(Place::new(&rel, 0, 0), None, format!("cannot read: {e}"));
            }
        }
    }
    Ok(Snapshot {
        sources,
        scripts,
        diagnostics: diags.into_sorted(),
    })
}

/// Reads and compiles a rules directory with the default
/// [`CompileOptions`] (send window 08:00–21:00).
pub fn load_dir(dir: &Path) -> Result<Compiled, std::io::Error> {
    load_dir_with(dir, &CompileOptions::default())
}

/// Reads and compiles a rules directory: the one path for start-up,
/// reload, `check` and `test`. `options` carry what the rules are judged
/// against (the settings' send window).
pub fn load_dir_with(dir: &Path, options: &CompileOptions) -> Result<Compiled, std::io::Error> {
    Ok(compile_snapshot_with(&read_dir(dir)?, options))
}

/// Compiles a snapshot read with [`read_dir`], with the default options.
pub(crate) fn compile_snapshot(snapshot: &Snapshot) -> Compiled {
    compile_snapshot_with(snapshot, &CompileOptions::default())
}

/// Compiles a snapshot read with [`read_dir`].
pub fn compile_snapshot_with(snapshot: &Snapshot, options: &CompileOptions) -> Compiled {
    let mut compiled = compile::compile(&snapshot.sources, &snapshot.scripts, options);
    compiled.files = snapshot.hashes();
    if !snapshot.diagnostics.is_empty() {
        compiled.rules = None;
        compiled
            .diagnostics
            .extend(snapshot.diagnostics.iter().cloned());
        compiled
            .diagnostics
            .sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
    }
    compiled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_droppings_are_ignored() {
        for name in [
            ".hidden.yaml",
            "rules.yaml~",
            "rules.yaml.swp",
            ".rules.yaml.swx",
            "4913",
            "..data",
        ] {
            assert!(!is_rules_file(name), "{name}");
        }
        assert!(is_rules_file("rules.yaml"));
        assert!(is_rules_file("alerts.yml"));
        assert!(!is_rules_file("notes.txt"));
    }
}
