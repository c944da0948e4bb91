//! The rules directory: reading, parsing, compiling, validating, reloading.
//!
//! - [`raw`]: structs mirroring the YAML (`deny_unknown_fields`, spans).
//! - [`compile`]: raw files → [`RuleSet`], every problem as a [`Diagnostic`].
//! - [`rules`]: the immutable compiled rule set.
//! - [`diff`]: what changed between two rule sets.
//! - [`reload`]: the live rule set, its reload path and status, the watcher.
//!
//! One validator serves start-up, hot reload, `hearth check` and `hearth test`.

pub mod compile;
pub mod diag;
pub mod diff;
pub(crate) mod raw;
pub mod reload;
pub mod rules;

use std::path::{Path, PathBuf};

pub use compile::{Compiled, Source};
pub use diag::{Diagnostic, Level};
pub use rules::RuleSet;

use diag::{Diagnostics, Place};

/// Whether a directory entry is left out: dotfiles (and so Kubernetes'
/// `..data`), editor swap and backup files, and vim's `4913` probe.
pub fn is_ignored(name: &str) -> bool {
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

/// Reads every rules file under `dir` (recursively, following symlinks,
/// sorted by path). A file that cannot be read becomes a diagnostic, not a
/// failure, so `check` still reports everything else.
pub fn read_dir(dir: &Path) -> Result<(Vec<Source>, Vec<Diagnostic>), std::io::Error> {
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let mut sources = Vec::new();
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
        if !entry.file_type().is_file() || !is_rules_file(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let rel: PathBuf = entry
            .path()
            .strip_prefix(dir)
            .unwrap_or(entry.path())
            .to_path_buf();
        match std::fs::read(entry.path()) {
            Ok(bytes) => match String::from_utf8(bytes) {
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
    Ok((sources, diags.into_sorted()))
}

/// Reads and compiles a rules directory: the one path for start-up,
/// reload, `check` and `test`.
pub fn load_dir(dir: &Path) -> Result<Compiled, std::io::Error> {
    let (sources, read_errors) = read_dir(dir)?;
    let mut compiled = compile::compile(dir, &sources);
    if !read_errors.is_empty() {
        compiled.rules = None;
        compiled.diagnostics.extend(read_errors);
        compiled
            .diagnostics
            .sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
    }
    Ok(compiled)
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
