//! Property test: no rules directory crashes the compiler.
//!
//! Starts from the repository's own rule sets (`rules/` and
//! `examples/clinic/rules/`), mutates them the ways people and editors
//! break YAML (drop, duplicate and retype keys; swap values between fields;
//! empty, spaced and non-ASCII ids; truncated files; cross-file
//! duplicates; junk bytes; broken scripts) and compiles each result through
//! the path `hearth check` takes ([`compile_snapshot_with`], under a
//! random send window). Every outcome must
//! be valid: no panic, rules present exactly when there is no error, every
//! diagnostic naming a file of the directory and a message.
//!
//! Deterministic: the seed is fixed unless `HEARTH_FUZZ_SEED` is set;
//! `HEARTH_FUZZ_ITERATIONS` changes the count. A failure prints the seed of
//! the failing case and every mutated file, so it can be replayed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;

use hearth::config::{CompileOptions, Compiled, Snapshot, Source, compile_snapshot_with, read_dir};
use hearth::domain::SendWindow;

use crate::support::rng::Rng;

/// At least this many mutated directories per run.
const ITERATIONS: u64 = 10_000;
/// How many of them also go through the real `hearth check` binary.
const BINARY_RUNS: u64 = 30;
const DEFAULT_SEED: u64 = 0x4845_4152_5448_0007;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn base_sets() -> Vec<Snapshot> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["rules", "examples/clinic/rules"]
        .iter()
        .map(|dir| {
            let snapshot = read_dir(&root.join(dir)).expect("the repository's rules are readable");
            assert!(
                snapshot.sources.len() >= 5 && !snapshot.scripts.is_empty(),
                "{dir}: too few files to mutate"
            );
            snapshot
        })
        .collect()
}

/// Values a field may be retyped to.
const VALUES: &[&str] = &[
    "[]",
    "{}",
    "~",
    "null",
    "0",
    "-1",
    "42",
    "1.5",
    "1e400",
    ".nan",
    "true",
    "maybe",
    "\"\"",
    "\"   \"",
    "[a, b]",
    "{ a: 1 }",
    "[[1], {x: y}]",
    "\"2 hours\"",
    "\"0 0 12 * * THU\"",
    "\"99:99\"",
    "\"America/New York\"",
    "\"+1 (555) 010\"",
    "\"{{ member.nope }}\"",
    "\"{{ x }\"",
    "\"answer(\\\"mood\\\") <=\"",
    "\"loop {}\"",
    "\"../../etc/passwd\"",
    "\"ü日本🙂\"",
    "|\n  block\n  text",
    "*nowhere",
    "&anchor x",
    "!!binary aGk=",
    // Escalation and rotation values, moved where they do not belong.
    "until_acknowledged",
    "{ on_call: clinicians }",
    "[{ on_call: nowhere }, group.facilitators]",
    "\"2026-12-24T17:00\"",
    "[mon, funday]",
];

/// Ids: empty, spaced, non-ASCII, built-in, very long.
const IDS: &[&str] = &[
    "\"\"",
    "\" \"",
    "\"on call\"",
    "\" lead\"",
    "ünïcödé",
    "日本",
    "🙂",
    "all",
    "group.facilitators",
    "a/b",
    "\"a\\tb\"",
    "x-very-long-id-x-very-long-id-x-very-long-id-x-very-long-id-x-very-long-id",
    "mood",
    "crisis",
    "\"42\"",
    "42",
    "~",
];

/// Junk an editor or a careless paste leaves behind.
const JUNK: &[&str] = &[
    "\t",
    "{",
    "}",
    "[",
    "]",
    ":",
    "\"",
    "'",
    "- ",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "---\n",
    "...\n",
    "? ",
    "|",
    ">",
    "%YAML 1.2\n",
    "\u{feff}",
    "\r\n",
    "é",
    "\u{0}",
];

/// Where a line's value starts: after `key:` (and a space), if it has one.
fn value_start(line: &str) -> Option<usize> {
    let trimmed = line.trim_start();
    let body = trimmed.strip_prefix("- ").unwrap_or(trimmed);
    if body.starts_with('#') {
        return None;
    }
    let offset = line.len() - body.len();
    let colon = body.find(": ")?;
    Some(offset + colon + 2)
}

fn lines_of(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

fn join(lines: &[String]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// Applies one mutation to the directory; returns what it did.
fn mutate(rng: &mut Rng, set: &mut Snapshot) -> String {
    if set.sources.is_empty() {
        set.sources.push(Source {
            path: PathBuf::from("new.yaml"),
            text: String::new(),
        });
    }
    let f = rng.below(set.sources.len());
    let path = set.sources[f].path.display().to_string();
    let mut lines = lines_of(&set.sources[f].text);
    if lines.is_empty() {
        lines.push(String::new());
    }
    let n = rng.below(lines.len());
    let what = match rng.below(14) {
        0 => {
            lines.remove(n);
            format!("{path}: drop line {}", n + 1)
        }
        1 => {
            let line = lines[n].clone();
            lines.insert(n, line);
            format!("{path}: duplicate line {}", n + 1)
        }
        2 | 3 => {
            // Retype the value of a `key: value` line.
            let Some((i, at)) = (0..lines.len())
                .map(|k| (n + k) % lines.len())
                .find_map(|i| value_start(&lines[i]).map(|at| (i, at)))
            else {
                return format!("{path}: no value to retype");
            };
            let value = rng.pick(VALUES);
            lines[i] = format!("{}{value}", &lines[i][..at]);
            format!("{path}: retype line {} to {value}", i + 1)
        }
        4 => {
            // Swap the values of two fields, maybe in different rules.
            let with_values: Vec<usize> = (0..lines.len())
                .filter(|i| value_start(&lines[*i]).is_some())
                .collect();
            if with_values.len() < 2 {
                return format!("{path}: nothing to swap");
            }
            let a = *rng.pick(&with_values);
            let b = *rng.pick(&with_values);
            let (sa, sb) = (
                value_start(&lines[a]).unwrap_or(0),
                value_start(&lines[b]).unwrap_or(0),
            );
            let (va, vb) = (lines[a][sa..].to_owned(), lines[b][sb..].to_owned());
            lines[a] = format!("{}{vb}", &lines[a][..sa]);
            lines[b] = format!("{}{va}", &lines[b][..sb]);
            format!("{path}: swap values of lines {} and {}", a + 1, b + 1)
        }
        5 | 6 => {
            // Replace an id: an `id:` field or a key of a keyed section.
            let is_id = |l: &str| {
                let t = l.trim_start();
                t.starts_with("- id:")
                    || t.starts_with("id:")
                    || (l.starts_with("  ") && !l.starts_with("   ") && t.ends_with(':'))
            };
            let Some(i) = (0..lines.len())
                .map(|k| (n + k) % lines.len())
                .find(|i| is_id(&lines[*i]))
            else {
                return format!("{path}: no id to replace");
            };
            let id = rng.pick(IDS);
            let line = &lines[i];
            lines[i] = match value_start(line) {
                Some(at)
                    if line
                        .trim_start()
                        .trim_start_matches("- ")
                        .starts_with("id:") =>
                {
                    format!("{}{id}", &line[..at])
                }
                _ => {
                    let indent = line.len() - line.trim_start().len();
                    format!("{}{id}:", &line[..indent])
                }
            };
            format!("{path}: id on line {} becomes {id}", i + 1)
        }
        7 => {
            let text = join(&lines);
            let mut cut = rng.below(text.len() + 1);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            set.sources[f].text = text[..cut].to_owned();
            return format!("{path}: truncate at byte {cut}");
        }
        8 => {
            // Copy a block of lines into another file: cross-file duplicates.
            let g = rng.below(set.sources.len());
            let len = 1 + rng.below(12);
            let block: Vec<String> = lines.iter().skip(n).take(len).cloned().collect();
            let mut other = lines_of(&set.sources[g].text);
            let at = rng.below(other.len() + 1);
            for (k, l) in block.into_iter().enumerate() {
                other.insert(at + k, l);
            }
            set.sources[g].text = join(&other);
            return format!(
                "copy lines {}.. of {path} into {} at line {}",
                n + 1,
                set.sources[g].path.display(),
                at + 1
            );
        }
        9 => {
            // The same file twice under another name.
            let copy = Source {
                path: PathBuf::from(format!("copy-{}", rng.below(1000))).with_extension("yaml"),
                text: set.sources[f].text.clone(),
            };
            let name = copy.path.display().to_string();
            set.sources.push(copy);
            return format!("{path}: copied whole to {name}");
        }
        10 => {
            let junk = rng.pick(JUNK);
            let line = &lines[n];
            let mut at = rng.below(line.len() + 1);
            while !line.is_char_boundary(at) {
                at -= 1;
            }
            lines[n] = format!("{}{junk}{}", &line[..at], &line[at..]);
            format!("{path}: insert {junk:?} into line {} at {at}", n + 1)
        }
        11 => {
            // Re-indent a line by one or two spaces either way.
            let line = &lines[n];
            lines[n] = if rng.chance(2) {
                format!("{}{line}", if rng.chance(2) { " " } else { "  " })
            } else {
                line.strip_prefix(' ').unwrap_or(line).to_owned()
            };
            format!("{path}: re-indent line {}", n + 1)
        }
        12 => {
            // Break a script, or point a rule at a script that is not there.
            if let Some((script, text)) = set.scripts.iter_mut().next() {
                let cut = text.len() * rng.below(4) / 4;
                let mut cut = cut.min(text.len());
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                let tail = *rng.pick(&["", "(", "}", "loop {}", "let x = ;", "answer(\"nope\")"]);
                *text = format!("{}{tail}", &text[..cut]);
                return format!("{}: cut at {cut}, add {tail:?}", script.display());
            }
            return "no script to break".to_owned();
        }
        _ => {
            if set.sources.len() > 1 && rng.chance(2) {
                set.sources.remove(f);
                return format!("{path}: delete file");
            }
            set.sources[f].text = String::new();
            return format!("{path}: empty file");
        }
    };
    set.sources[f].text = join(&lines);
    what
}

fn clone_snapshot(s: &Snapshot) -> Snapshot {
    Snapshot {
        sources: s.sources.clone(),
        scripts: s.scripts.clone(),
        diagnostics: s.diagnostics.clone(),
    }
}

/// A send window: mostly the default, sometimes the whole day, a window
/// that wraps midnight, or an odd one.
fn window(rng: &mut Rng) -> SendWindow {
    let t = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap_or(chrono::NaiveTime::MIN);
    match rng.below(6) {
        0 => SendWindow::new(t(0, 0), t(0, 0)),
        1 => SendWindow::new(t(0, 0), t(23, 59)),
        2 => SendWindow::new(t(22, 0), t(6, 0)),
        3 => SendWindow::new(
            t(rng.below(24) as u32, rng.below(60) as u32),
            t(rng.below(24) as u32, rng.below(60) as u32),
        ),
        _ => SendWindow::default(),
    }
}

/// One mutated directory built from `seed`, with the options it is
/// compiled with and the list of mutations.
fn case(bases: &[Snapshot], seed: u64) -> (Snapshot, CompileOptions, Vec<String>) {
    let mut rng = Rng::new(seed);
    let options = CompileOptions {
        send_window: window(&mut rng),
    };
    let mut set = clone_snapshot(&bases[rng.below(bases.len())]);
    // A quarter of the cases keep the whole directory; the rest a random
    // part of it (at least one file), so that ten thousand cases stay
    // quick and references into missing files are exercised too.
    if !rng.chance(4) {
        let keep: Vec<bool> = (0..set.sources.len()).map(|_| rng.chance(3)).collect();
        let first = rng.below(set.sources.len());
        let mut i = 0;
        set.sources.retain(|_| {
            i += 1;
            keep[i - 1] || i - 1 == first
        });
    }
    let count = 1 + rng.below(3);
    let done = (0..count).map(|_| mutate(&mut rng, &mut set)).collect();
    (set, options, done)
}

/// What is wrong with an outcome, if anything.
fn invalid_outcome(set: &Snapshot, compiled: &Compiled) -> Option<String> {
    if compiled.rules.is_some() != (compiled.errors() == 0) {
        return Some(format!(
            "rules {} with {} error(s)",
            if compiled.rules.is_some() {
                "present"
            } else {
                "absent"
            },
            compiled.errors()
        ));
    }
    let known: Vec<&Path> = set
        .sources
        .iter()
        .map(|s| s.path.as_path())
        .chain(set.scripts.keys().map(PathBuf::as_path))
        .collect();
    for d in &compiled.diagnostics {
        if d.message.trim().is_empty() {
            return Some(format!("a diagnostic without a message: {d:?}"));
        }
        if !known.contains(&d.path.as_path()) {
            return Some(format!("a diagnostic about a file not read: {d}"));
        }
        if d.to_string().is_empty() {
            return Some(format!("a diagnostic that renders empty: {d:?}"));
        }
    }
    None
}

fn describe_case(seed: u64, set: &Snapshot, done: &[String]) -> String {
    let mut out = format!(
        "seed {seed:#x} (HEARTH_FUZZ_SEED={seed:#x} HEARTH_FUZZ_ITERATIONS=1)\nmutations:\n"
    );
    for m in done {
        let _ = writeln!(out, "  {m}");
    }
    for s in &set.sources {
        let _ = writeln!(out, "--- {} ---\n{}", s.path.display(), s.text);
    }
    for (p, t) in &set.scripts {
        let _ = writeln!(out, "--- {} ---\n{t}", p.display());
    }
    out
}

/// Compiles the cases `seeds` yields; returns the failures (at most three)
/// and how many cases had an error.
fn run_cases(bases: &[Snapshot], seeds: impl Iterator<Item = u64>) -> (Vec<String>, usize) {
    let mut failures = Vec::new();
    let mut with_errors = 0;
    for seed in seeds {
        let (set, options, done) = case(bases, seed);
        match catch_unwind(AssertUnwindSafe(|| compile_snapshot_with(&set, &options))) {
            Ok(compiled) => {
                if compiled.errors() > 0 {
                    with_errors += 1;
                }
                if let Some(why) = invalid_outcome(&set, &compiled) {
                    failures.push(format!("{why}\n{}", describe_case(seed, &set, &done)));
                }
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failures.push(format!(
                    "panicked: {message}\n{}",
                    describe_case(seed, &set, &done)
                ));
            }
        }
        if failures.len() >= 3 {
            break;
        }
    }
    (failures, with_errors)
}

#[test]
fn ten_thousand_mutated_rule_sets_compile_to_a_valid_outcome_without_a_panic() {
    let bases = base_sets();
    let first = env_u64("HEARTH_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let iterations = env_u64("HEARTH_FUZZ_ITERATIONS").unwrap_or(ITERATIONS);
    // One worker per core, each taking every n-th seed: the cases and the
    // outcome do not depend on how many workers there are.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let results: Vec<(Vec<String>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let bases = &bases;
                scope.spawn(move || {
                    run_cases(
                        bases,
                        (w..iterations)
                            .step_by(workers as usize)
                            .map(|i| first.wrapping_add(i)),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a fuzz worker does not panic"))
            .collect()
    });
    let failures: Vec<String> = results.iter().flat_map(|r| r.0.clone()).collect();
    let with_errors: usize = results.iter().map(|r| r.1).sum();
    assert!(
        failures.is_empty(),
        "{} failing case(s) from first seed {first:#x}:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // The mutations must actually break things, or the test proves little.
    assert!(
        iterations < 100 || with_errors * 2 > iterations as usize,
        "only {with_errors} of {iterations} mutated directories had an error"
    );
}

#[test]
fn mutated_rule_sets_through_the_real_binary_exit_0_or_1() {
    let bases = base_sets();
    let first = env_u64("HEARTH_FUZZ_SEED").unwrap_or(DEFAULT_SEED) ^ 0xB1;
    for i in 0..BINARY_RUNS {
        let seed = first.wrapping_add(i);
        let (set, _, done) = case(&bases, seed);
        let dir = tempfile::tempdir().expect("a temp dir");
        let write = |rel: &Path, text: &str| {
            let path = dir.path().join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create a subdirectory");
            }
            std::fs::write(path, text).expect("write a rules file");
        };
        let mut files: BTreeMap<&Path, &str> = BTreeMap::new();
        for s in &set.sources {
            files.insert(&s.path, &s.text);
        }
        for (p, t) in &set.scripts {
            files.insert(p, t);
        }
        for (p, t) in files {
            write(p, t);
        }
        let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .arg("check")
            .arg(dir.path())
            .output()
            .expect("hearth runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
        let code = output.status.code();
        assert!(
            matches!(code, Some(0) | Some(1))
                && (last.starts_with("ok:") || last.starts_with("invalid:"))
                && !String::from_utf8_lossy(&output.stderr).contains("panicked"),
            "exit {code:?}\n--- stdout ---\n{stdout}--- stderr ---\n{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            describe_case(seed, &set, &done)
        );
    }
}
