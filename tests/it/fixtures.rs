//! Fixture rule sets under `tests/fixtures/`: every valid one loads, every
//! invalid one fails with exactly the errors its `expect.txt` lists.
//!
//! An invalid fixture is a directory focused on one mistake. Its
//! `expect.txt` holds the diagnostics that must be produced, one a line, in
//! their rendered first-line form (`file.yaml:LINE:COL: error: MESSAGE`,
//! paths relative to the fixture). Warnings may come on top; errors may not.
//!
//! A warning fixture under `tests/fixtures/warnings/` is a valid rule set
//! (no errors) whose `expect.txt` lists exactly the warnings it must produce,
//! in the same first-line form.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hearth::config::{Compiled, Diagnostic, load_dir};

/// How many directories `tests/fixtures/valid/` holds; update it with them.
const VALID_FIXTURES: usize = 6;
/// The fewest directories `tests/fixtures/invalid/` may hold.
const MIN_INVALID_FIXTURES: usize = 112;
/// The fewest directories `tests/fixtures/warnings/` may hold.
const MIN_WARNING_FIXTURES: usize = 10;

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture(kind: &str, name: &str) -> PathBuf {
    let dir = fixtures_root().join(kind).join(name);
    assert!(dir.is_dir(), "fixture {} is missing", dir.display());
    dir
}

/// The fixture directories of one kind, sorted by name.
fn fixture_dirs(kind: &str) -> Vec<PathBuf> {
    let root = fixtures_root().join(kind);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()))
        .map(|entry| entry.expect("a readable fixture entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn name_of(dir: &Path) -> String {
    dir.file_name()
        .expect("a fixture directory has a name")
        .to_string_lossy()
        .into_owned()
}

fn load(dir: &Path) -> Compiled {
    load_dir(dir).unwrap_or_else(|e| panic!("load_dir({}) failed: {e}", dir.display()))
}

/// `path:line:column: level: message`, without the hint.
fn first_line(d: &Diagnostic) -> String {
    d.to_string().lines().next().unwrap_or_default().to_owned()
}

/// Every diagnostic in full, hints included, for failure messages.
fn rendered(compiled: &Compiled) -> String {
    if compiled.diagnostics.is_empty() {
        return "    (no diagnostics)\n".to_owned();
    }
    let mut out = String::new();
    for d in &compiled.diagnostics {
        for line in d.to_string().lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

/// The non-blank lines of a fixture's `expect.txt`.
fn expected_lines(dir: &Path) -> Vec<String> {
    let path = dir.join("expect.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn is_error_line(line: &str) -> bool {
    line.contains(": error: ")
}

fn is_warning_line(line: &str) -> bool {
    line.contains(": warning: ")
}

/// What is wrong with one invalid fixture's result, if anything.
fn check_invalid(dir: &Path) -> Option<String> {
    let expected = expected_lines(dir);
    let compiled = load(dir);
    let mut problems = Vec::new();
    if !expected.iter().any(|l| is_error_line(l)) {
        problems.push("expect.txt lists no error".to_owned());
    }
    if compiled.rules.is_some() {
        problems.push("it loaded (rules is Some) but must not".to_owned());
    }
    let produced: Vec<String> = compiled.diagnostics.iter().map(first_line).collect();
    for line in &expected {
        if !produced.contains(line) {
            problems.push(format!("missing: {line}"));
        }
    }
    let expected_errors: BTreeSet<&str> = expected
        .iter()
        .map(String::as_str)
        .filter(|l| is_error_line(l))
        .collect();
    let produced_errors: Vec<&str> = compiled
        .diagnostics
        .iter()
        .zip(&produced)
        .filter(|(d, _)| d.is_error())
        .map(|(_, line)| line.as_str())
        .collect();
    let mut seen = BTreeSet::new();
    for line in &produced_errors {
        if !expected_errors.contains(line) {
            problems.push(format!("unexpected: {line}"));
        } else if !seen.insert(*line) {
            problems.push(format!("reported more than once: {line}"));
        }
    }
    if problems.is_empty() {
        return None;
    }
    let mut report = format!("{}:\n", dir.display());
    for p in problems {
        let _ = writeln!(report, "  {p}");
    }
    let _ = write!(report, "  got:\n{}", rendered(&compiled));
    Some(report)
}

/// What is wrong with one warning fixture's result, if anything.
fn check_warnings(dir: &Path) -> Option<String> {
    let expected = expected_lines(dir);
    let compiled = load(dir);
    let mut problems = Vec::new();
    if expected.is_empty() {
        problems.push("expect.txt lists no warning".to_owned());
    }
    for line in expected.iter().filter(|l| !is_warning_line(l)) {
        problems.push(format!("expect.txt lists a non-warning: {line}"));
    }
    if compiled.rules.is_none() || compiled.errors() > 0 {
        problems.push(format!(
            "it must load without errors, but has {} error(s)",
            compiled.errors()
        ));
    }
    let expected_warnings: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    let produced_warnings: Vec<String> = compiled
        .diagnostics
        .iter()
        .filter(|d| !d.is_error())
        .map(first_line)
        .collect();
    for line in &expected_warnings {
        if !produced_warnings.iter().any(|p| p == line) {
            problems.push(format!("missing: {line}"));
        }
    }
    let mut seen = BTreeSet::new();
    for line in &produced_warnings {
        if !expected_warnings.contains(line.as_str()) {
            problems.push(format!("unexpected: {line}"));
        } else if !seen.insert(line.as_str()) {
            problems.push(format!("reported more than once: {line}"));
        }
    }
    if problems.is_empty() {
        return None;
    }
    let mut report = format!("{}:\n", dir.display());
    for p in problems {
        let _ = writeln!(report, "  {p}");
    }
    let _ = write!(report, "  got:\n{}", rendered(&compiled));
    Some(report)
}

#[test]
fn every_valid_fixture_loads_without_errors() {
    let dirs = fixture_dirs("valid");
    let mut failures = String::new();
    for dir in &dirs {
        let compiled = load(dir);
        if compiled.rules.is_none() || compiled.errors() > 0 {
            let _ = write!(
                failures,
                "{}: {} error(s), rules {}\n{}",
                dir.display(),
                compiled.errors(),
                if compiled.rules.is_some() {
                    "present"
                } else {
                    "absent"
                },
                rendered(&compiled)
            );
        }
    }
    assert!(failures.is_empty(), "valid fixtures that fail:\n{failures}");
    let names: Vec<String> = dirs.iter().map(|d| name_of(d)).collect();
    assert_eq!(
        dirs.len(),
        VALID_FIXTURES,
        "expected {VALID_FIXTURES} valid fixtures, found {names:?}"
    );
}

#[test]
fn every_valid_fixture_is_also_free_of_warnings() {
    let mut failures = String::new();
    for dir in fixture_dirs("valid") {
        let compiled = load(&dir);
        if compiled.warnings() > 0 {
            let _ = write!(failures, "{}:\n{}", dir.display(), rendered(&compiled));
        }
    }
    assert!(
        failures.is_empty(),
        "valid fixtures with warnings:\n{failures}"
    );
}

#[test]
fn every_invalid_fixture_reports_exactly_the_expected_diagnostics() {
    let dirs = fixture_dirs("invalid");
    assert!(
        dirs.len() >= MIN_INVALID_FIXTURES,
        "expected at least {MIN_INVALID_FIXTURES} invalid fixtures, found {}",
        dirs.len()
    );
    let failures: Vec<String> = dirs.iter().filter_map(|d| check_invalid(d)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} invalid fixtures did not report what expect.txt says:\n\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}

#[test]
fn every_warning_fixture_warns_exactly_as_expected() {
    let dirs = fixture_dirs("warnings");
    assert!(
        dirs.len() >= MIN_WARNING_FIXTURES,
        "expected at least {MIN_WARNING_FIXTURES} warning fixtures, found {}",
        dirs.len()
    );
    let failures: Vec<String> = dirs.iter().filter_map(|d| check_warnings(d)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} warning fixtures did not warn as expect.txt says:\n\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}

#[test]
fn a_misspelt_answer_id_warns_with_the_question_that_was_meant() {
    let compiled = load(&fixture("warnings", "answer-names-unknown-question"));
    assert!(
        compiled
            .diagnostics
            .iter()
            .any(|d| !d.is_error() && d.hint.as_deref() == Some("did you mean `mood`?")),
        "no warning hints `mood`; got:\n{}",
        rendered(&compiled)
    );
}

#[test]
fn a_duplicate_id_across_files_is_reported_at_the_second_and_hints_at_the_first() {
    let compiled = load(&fixture("invalid", "duplicate-id-across-files"));
    let duplicate = compiled
        .diagnostics
        .iter()
        .find(|d| d.message == "duplicate template id `session-reminder`")
        .unwrap_or_else(|| panic!("no duplicate-id error; got:\n{}", rendered(&compiled)));
    assert_eq!(
        duplicate.to_string(),
        "b-more-templates.yaml:3:3: error: duplicate template id `session-reminder`\n  \
         hint: first defined at a-templates.yaml:2:3",
        "got:\n{}",
        rendered(&compiled)
    );
}

#[test]
fn unknown_references_suggest_the_name_that_was_meant() {
    for (name, hint) in [
        (
            "unknown-template-reference",
            "did you mean `session-reminder`?",
        ),
        ("unknown-segment-reference", "did you mean `high-support`?"),
        ("unknown-survey-reference", "did you mean `mood-checkin`?"),
        ("unknown-escalation-reference", "did you mean `crisis`?"),
        ("unknown-contact-reference", "did you mean `clinical-lead`?"),
        ("unknown-group-reference", "did you mean `tuesday-anxiety`?"),
        ("test-unknown-alert", "did you mean `crisis-language`?"),
        ("bad-timezone", "did you mean `America/New_York`?"),
        (
            "template-undefined-variable-quoted",
            "did you mean `member.first_name`?",
        ),
        (
            "template-undefined-variable-block",
            "did you mean `session.starts_at`?",
        ),
        (
            "rhai-undefined-variable-in-segment",
            "did you mean `member`?",
        ),
        (
            "survey-ask-undefined-variable",
            "did you mean `member.first_name`?",
        ),
        ("unknown-nested-key", "did you mean `expires_after`?"),
        ("template-unknown-filter", "did you mean `time`?"),
        ("rhai-unknown-function-in-when", "did you mean `answer`?"),
        (
            "rhai-unknown-function-in-script-file",
            "did you mean `answer`?",
        ),
    ] {
        let compiled = load(&fixture("invalid", name));
        assert!(
            compiled
                .diagnostics
                .iter()
                .any(|d| d.is_error() && d.hint.as_deref() == Some(hint)),
            "{name}: no error hints {hint:?}; got:\n{}",
            rendered(&compiled)
        );
    }
}

#[test]
fn a_tab_in_the_indentation_hints_to_indent_with_spaces() {
    let compiled = load(&fixture("invalid", "yaml-tab-indentation"));
    assert!(
        compiled.diagnostics.iter().any(|d| d.is_error()
            && d.hint.as_deref() == Some("indent YAML with spaces, not tabs")),
        "no error hints at spaces; got:\n{}",
        rendered(&compiled)
    );
}

#[test]
fn editor_droppings_and_dotfiles_in_a_rules_directory_are_not_read() {
    let dir = fixture("valid", "ignored-files");
    // Each of these would be an error if it were read, so they must exist
    // for the fixture to prove anything.
    let ignored = [".hidden.yaml", "rules.yaml~", ".rules.yaml.swp", "4913"];
    for name in ignored {
        assert!(
            dir.join(name).is_file(),
            "{name} is missing from the fixture"
        );
    }
    let compiled = load(&dir);
    let read: Vec<&Path> = compiled.files.keys().map(PathBuf::as_path).collect();
    assert_eq!(
        read,
        [Path::new("rules.yaml")],
        "diagnostics:\n{}",
        rendered(&compiled)
    );
}

#[test]
fn rules_files_are_read_at_every_depth_of_subdirectories() {
    let compiled = load(&fixture("valid", "nested-subdirectory"));
    let read: Vec<&Path> = compiled.files.keys().map(PathBuf::as_path).collect();
    assert_eq!(
        read,
        [
            Path::new("more/deeper/surveys.yml"),
            Path::new("more/templates.yaml"),
            Path::new("top.yaml"),
        ]
    );
    let rules = compiled.rules.expect("the fixture is valid");
    let counts = rules.counts();
    assert!(
        counts.contains(&("schedules", 2)) && counts.contains(&("surveys", 1)),
        "{counts:?}"
    );
}

#[test]
fn a_script_file_is_read_and_its_errors_point_into_it() {
    let valid = load(&fixture("valid", "every-kind"));
    assert!(
        valid
            .files
            .contains_key(Path::new("scripts/declining_mood.rhai")),
        "{:?}",
        valid.files.keys()
    );
    let invalid = load(&fixture("invalid", "rhai-syntax-error-in-script-file"));
    let errors: Vec<&Diagnostic> = invalid
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    assert!(
        errors.len() == 1 && errors[0].path == Path::new("scripts/declining_mood.rhai"),
        "got:\n{}",
        rendered(&invalid)
    );
}

// The real binary: `hearth check DIR`.

fn hearth_check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("check")
        .args(args)
        .output()
        .expect("hearth runs")
}

fn describe(output: &Output) -> String {
    format!(
        "exit status: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn last_line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_owned()
}

fn path_arg(dir: &Path) -> &str {
    dir.to_str().expect("the fixture path is UTF-8")
}

#[test]
fn check_of_an_invalid_directory_prints_the_diagnostic_and_exits_1() {
    let dir = fixture("invalid", "unknown-template-reference");
    let output = hearth_check(&[path_arg(&dir)]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in expected_lines(&dir) {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?}\n{}",
            describe(&output)
        );
    }
    assert!(
        stdout.contains("\n  hint: did you mean `session-reminder`?\n"),
        "{}",
        describe(&output)
    );
    assert!(
        last_line(&output).starts_with("invalid:"),
        "{}",
        describe(&output)
    );
}

#[test]
fn check_of_a_valid_directory_prints_an_ok_summary_and_exits_0() {
    let output = hearth_check(&[path_arg(&fixture("valid", "every-kind"))]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        last_line(&output).starts_with("ok:"),
        "{}",
        describe(&output)
    );
}

#[test]
fn check_with_json_format_emits_each_diagnostic_with_its_place() {
    let dir = fixture("invalid", "unknown-escalation-reference");
    let output = hearth_check(&[path_arg(&dir), "--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON: {e}\n{}", describe(&output)));
    assert_eq!(doc["ok"], false, "{doc:#}");
    let first = &doc["diagnostics"][0];
    assert_eq!(first["path"], "rules.yaml", "{doc:#}");
    assert_eq!(first["line"], 5, "{doc:#}");
    assert_eq!(first["column"], 15, "{doc:#}");
    assert_eq!(first["level"], "error", "{doc:#}");
    assert_eq!(
        first["message"], "alert `crisis-language`: unknown escalation `crisiss`",
        "{doc:#}"
    );
    assert_eq!(first["hint"], "did you mean `crisis`?", "{doc:#}");
}

#[test]
fn check_of_a_directory_that_does_not_exist_exits_2() {
    let output = hearth_check(&["/nonexistent"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("/nonexistent"),
        "{}",
        describe(&output)
    );
}

// Issue 7: directories that used to panic the compiler (exit 101).

fn assert_checks_without_a_panic(name: &str, located: &str) {
    let dir = fixture("invalid", name);
    let output = hearth_check(&[path_arg(&dir)]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.lines().any(|l| l == located),
        "missing {located:?}\n{}",
        describe(&output)
    );
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("panicked"),
        "{}",
        describe(&output)
    );
}

#[test]
fn regression_issue_7_an_escalation_with_a_spaced_id_and_no_steps_is_two_located_errors_not_a_panic()
 {
    assert_checks_without_a_panic(
        "escalation-spaced-id-without-steps",
        "rules.yaml:1:16: error: escalation `on call` has no steps",
    );
}

#[test]
fn regression_issue_7_a_survey_with_an_invalid_id_is_located_errors_not_a_panic() {
    assert_checks_without_a_panic(
        "survey-spaced-id-without-questions",
        "rules.yaml:2:3: error: survey `mood check` has no questions",
    );
    assert_checks_without_a_panic(
        "survey-spaced-id-reprompts-without-text",
        "rules.yaml:2:3: error: invalid survey id `mood check`",
    );
}

// Issue 7: one bad rule never hides the others.

#[test]
fn one_bad_schedule_among_good_ones_is_exactly_one_error_and_the_others_are_checked() {
    let compiled = load(&fixture("invalid", "one-bad-schedule-among-good-ones"));
    let errors: Vec<String> = compiled
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(first_line)
        .collect();
    assert_eq!(
        errors,
        [
            "rules.yaml:20:14: error: schedule `midweek`: invalid value `maybe` for `enabled`: expected true or false"
        ],
        "got:\n{}",
        rendered(&compiled)
    );
    // The good rules of the same file were compiled: had the file been
    // dropped, `weekly-note` would read as unused or unknown.
    assert_eq!(compiled.warnings(), 0, "got:\n{}", rendered(&compiled));
}

#[test]
fn a_rule_with_an_unknown_key_still_defines_its_id_for_references() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(
        dir.path().join("rules.yaml"),
        "templates:\n  hello:\n    body: \"Hi. Reply STOP to opt out.\"\n    colour: blue\n\
         schedules:\n  - id: weekly\n    template: hello\n    cron: \"0 12 * * THU\"\n",
    )
    .expect("write rules");
    let compiled = load(dir.path());
    let errors: Vec<&Diagnostic> = compiled
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    assert!(
        errors.len() == 1
            && errors[0]
                .message
                .starts_with("template `hello`: unknown field `colour`"),
        "got:\n{}",
        rendered(&compiled)
    );
}

#[test]
fn a_syntax_broken_file_is_skipped_with_one_note_and_no_unknown_references() {
    let compiled = load(&fixture("invalid", "syntax-broken-file-referenced"));
    let rendered = rendered(&compiled);
    assert!(!rendered.contains("unknown"), "got:\n{rendered}");
    assert_eq!(compiled.errors(), 1, "got:\n{rendered}");
    let notes: Vec<&Diagnostic> = compiled
        .diagnostics
        .iter()
        .filter(|d| d.level == hearth::config::Level::Note)
        .collect();
    assert_eq!(notes.len(), 1, "got:\n{rendered}");
    assert!(
        notes[0].message.contains("segment `high-support`")
            && notes[0].message.contains("template `session-reminder`"),
        "got:\n{rendered}"
    );
}

// Issue 7: quiet hours come from the settings' send window.

fn settings_with_window(dir: &Path, start: &str, end: &str) -> PathBuf {
    let path = dir.join("hearth.yaml");
    std::fs::write(
        &path,
        format!(
            "database:\n  path: db/hearth.db\nprovider:\n  kind: console\n\
             dispatch:\n  send_window: {{ start: \"{start}\", end: \"{end}\" }}\n"
        ),
    )
    .expect("write settings");
    path
}

#[test]
fn check_with_settings_judges_quiet_hours_by_their_send_window() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let settings = settings_with_window(tmp.path(), "06:00", "23:00");
    let rules = fixture("warnings", "cron-in-quiet-hours");
    let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["check", "--settings"])
        .arg(&settings)
        .arg(&rules)
        .output()
        .expect("hearth runs");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(
            "rules.yaml:8:11: warning: schedule `weekly-hello` fires at 03:00, inside quiet hours (23:00–06:00)"
        ),
        "{}",
        describe(&output)
    );
}

#[test]
fn a_send_window_covering_the_whole_day_gives_no_quiet_hours_warning() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let settings = settings_with_window(tmp.path(), "00:00", "23:59");
    for name in [
        "cron-in-quiet-hours",
        "at-in-quiet-hours",
        "after-session-lands-in-quiet-hours",
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["check", "--settings"])
            .arg(&settings)
            .arg(fixture("warnings", name))
            .output()
            .expect("hearth runs");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name}: {}",
            describe(&output)
        );
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("quiet hours"),
            "{name}: {}",
            describe(&output)
        );
    }
    // The same through the library entry point the daemon's reload uses.
    let whole_day = hearth::config::CompileOptions {
        send_window: hearth::domain::SendWindow::new(
            chrono::NaiveTime::MIN,
            chrono::NaiveTime::MIN,
        ),
    };
    let compiled =
        hearth::config::load_dir_with(&fixture("warnings", "at-in-quiet-hours"), &whole_day)
            .expect("read the fixture");
    assert_eq!(compiled.warnings(), 0, "got:\n{}", rendered(&compiled));
}

#[test]
fn check_with_a_settings_file_that_does_not_exist_exits_1_naming_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["check", "--settings", "/nonexistent/hearth.yaml"])
        .arg(fixture("valid", "every-kind"))
        .output()
        .expect("hearth runs");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("/nonexistent/hearth.yaml"),
        "{}",
        describe(&output)
    );
}

#[test]
fn empty_spaced_and_non_ascii_ids_of_every_kind_are_located_errors_naming_the_kind() {
    for (fixture_name, kind, count) in [
        ("invalid-ids-groups", "group", 3),
        ("invalid-ids-segments", "segment", 3),
        ("invalid-ids-templates", "template", 3),
        ("invalid-ids-schedules", "schedule", 3),
        ("invalid-ids-surveys", "survey", 3),
        ("invalid-ids-questions", "question", 3),
        ("invalid-ids-alerts", "alert", 3),
        ("invalid-ids-escalations", "escalation", 3),
        ("invalid-ids-contacts", "contact", 3),
        ("invalid-ids-rotations", "rotation", 3),
        ("invalid-ids-tests", "test", 2),
    ] {
        let compiled = load(&fixture("invalid", fixture_name));
        let errors: Vec<&Diagnostic> = compiled
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .collect();
        assert_eq!(
            errors.len(),
            count,
            "{fixture_name}: got:\n{}",
            rendered(&compiled)
        );
        for e in errors {
            assert!(
                e.line > 0 && e.column > 0 && e.message.contains(kind),
                "{fixture_name}: not located or not naming `{kind}`: {e}"
            );
        }
    }
}

#[test]
fn a_rule_checked_on_its_own_still_points_inside_its_values() {
    // The schedule's unknown key sends the file down the rule-by-rule
    // path; the alert's script error must still land on `answr`.
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(
        dir.path().join("rules.yaml"),
        "schedules:\n  - id: weekly\n    colour: blue\n    cron: \"0 12 * * THU\"\n\
         alerts:\n  - id: low-mood\n    when: 'answr(\"mood\") <= 3'\n",
    )
    .expect("write rules");
    let compiled = load(dir.path());
    let lines: Vec<String> = compiled
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(first_line)
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l
                .starts_with("rules.yaml:3:5: error: schedule `weekly`: unknown field `colour`"))
            && lines.contains(
                &"rules.yaml:7:12: error: alert `low-mood`: unknown function `answr` in script"
                    .to_owned()
            ),
        "got:\n{}",
        rendered(&compiled)
    );
}
