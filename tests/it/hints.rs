//! Hints: wherever the fix can be worked out, the diagnostic says it.
//!
//! A fixture directory under `tests/fixtures/{invalid,warnings}/` may hold a
//! `hint.txt`: one hint a line, each of which must be the `  hint: ...` of
//! one of the diagnostics the fixture produces (its `expect.txt` pins the
//! diagnostics themselves).

use std::path::{Path, PathBuf};

use hearth::config::load_dir;

/// The fewest fixtures with a `hint.txt`; update it with them.
const MIN_HINT_FIXTURES: usize = 44;

fn hint_fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs = Vec::new();
    for kind in ["invalid", "warnings"] {
        let entries = std::fs::read_dir(root.join(kind))
            .unwrap_or_else(|e| panic!("cannot read fixtures/{kind}: {e}"));
        for entry in entries {
            let dir = entry.expect("a readable fixture entry").path();
            if dir.join("hint.txt").is_file() {
                dirs.push(dir);
            }
        }
    }
    dirs.sort();
    dirs
}

#[test]
fn every_hint_fixture_shows_the_hints_it_lists() {
    let dirs = hint_fixtures();
    assert!(
        dirs.len() >= MIN_HINT_FIXTURES,
        "found {} fixtures with a hint.txt, expected at least {MIN_HINT_FIXTURES}",
        dirs.len()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let wanted = std::fs::read_to_string(dir.join("hint.txt")).expect("hint.txt is readable");
        let compiled = load_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let hints: Vec<&str> = compiled
            .diagnostics
            .iter()
            .filter_map(|d| d.hint.as_deref())
            .collect();
        let lines: Vec<&str> = wanted.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            failures.push(format!("{}: hint.txt lists no hint", dir.display()));
        }
        for line in lines {
            if !hints.contains(&line) {
                failures.push(format!(
                    "{}:\n  missing hint: {line}\n  got: {hints:?}",
                    dir.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn check_prints_each_hint_on_its_own_line_under_its_error() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid/duration-in-words");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("check")
        .arg(&dir)
        .output()
        .expect("hearth runs");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = format!("{stdout}{stderr}");
    let error_line = text
        .lines()
        .position(|l| l.contains("error: group `tuesday-anxiety`: invalid duration `2 hours`"))
        .unwrap_or_else(|| panic!("no duration error in:\n{text}"));
    assert_eq!(
        text.lines().nth(error_line + 1),
        Some("  hint: write `2h`"),
        "{text}"
    );
}
