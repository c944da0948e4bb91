//! Raw files → [`RuleSet`], reporting every problem with its place.
//!
//! One pass per concern, each adding to the same [`Diagnostics`]; nothing
//! stops at the first error. The rule set exists only when no error was
//! found, so a half-valid directory can never be applied.
//!
//! This module holds the compiler's state and its entry point; the rest
//! is one file per job:
//!
//! - `build`: the order of the passes, from ids to the final checks;
//! - `registry`: ids defined once, references checked against them;
//! - `values`: durations, timezones, `when:` expressions, `answer()` ids;
//! - `groups`, `segments`, `schedules`, `surveys`, `alerts`, `rotations`,
//!   `escalations`, `contacts`, `rule_tests`: one document kind each;
//! - `scoring`: a survey's `score:` and its per-item `alerts:`;
//! - `templates`: template bodies, their length, crisis replies, unused ones;
//! - `items`: a file that fails as a whole, parsed again rule by rule;
//! - `location`: places inside values, YAML parser messages;
//! - `limits`: the one `limits:` document;
//! - `lint`: quiet hours of session-relative schedules, cron times.

mod alerts;
mod build;
mod contacts;
mod escalations;
mod groups;
mod items;
mod limits;
mod lint;
mod location;
mod registry;
mod rotations;
mod rule_tests;
mod schedules;
mod scoring;
mod segments;
mod surveys;
mod templates;
mod values;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use serde::Serialize;

use super::diag::{Diagnostic, Diagnostics, Place};
use super::options::CompileOptions;
use super::raw::*;
use crate::domain::SendWindow;
use crate::rules::script::{Limits, Sandbox};
use crate::rules::*;
pub use crate::text::sha256_hex;

/// One rules file as read from disk; `path` is relative to the directory.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// What compiling a directory produced.
#[derive(Debug)]
pub struct Compiled {
    /// Present only when there was no error.
    pub rules: Option<RuleSet>,
    /// Errors and warnings, sorted by place.
    pub diagnostics: Vec<Diagnostic>,
    /// SHA-256 of every file read (YAML and scripts), by relative path.
    pub files: BTreeMap<PathBuf, String>,
}

impl Compiled {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.level == super::diag::Level::Warning)
            .count()
    }
}

/// The most segments a template may render to before `check` warns.
pub(crate) const MAX_SEGMENTS: usize = 3;

/// Compiles already-read sources; `scripts` are the directory's `.rhai`
/// files by relative path, where `script:` references resolve. `files` is
/// left empty: [`super::compile_snapshot`] fills it from the snapshot.
pub(crate) fn compile(
    sources: &[Source],
    scripts: &BTreeMap<PathBuf, String>,
    options: &CompileOptions,
) -> Compiled {
    let mut c = Compiler {
        window: options.send_window,
        scripts,
        diags: Diagnostics::default(),
        texts: sources
            .iter()
            .map(|s| (s.path.clone(), s.text.as_str()))
            .collect(),
        ids: HashMap::new(),
        sandbox: default_sandbox(),
        question_ids: BTreeSet::new(),
        answer_samples: Vec::new(),
        unparsed: Vec::new(),
        unchecked: BTreeSet::new(),
        items_failed: BTreeSet::new(),
        failed_ids: items::FailedIds::new(),
    };
    let mut parsed = Vec::new();
    for source in sources {
        if let Some(file) = c.parse(source) {
            parsed.push((source.path.clone(), file));
        }
    }
    let rules = c.build(&parsed);
    name_owners(&mut c.diags.items);
    let has_errors = c.diags.has_errors();
    Compiled {
        rules: if has_errors { None } else { rules },
        diagnostics: c.diags.into_sorted(),
        files: BTreeMap::new(),
    }
}

/// The sandbox every compile shares: building a Rhai engine is the
/// largest fixed cost of a compile, and the engine is immutable once built
/// (a rule set holds a clone of the `Arc`).
fn default_sandbox() -> Sandbox {
    static SANDBOX: std::sync::OnceLock<Sandbox> = std::sync::OnceLock::new();
    SANDBOX
        .get_or_init(|| Sandbox::new(Limits::default()))
        .clone()
}

struct Compiler<'a> {
    /// Routine messages outside it are held: quiet-hours warnings.
    window: SendWindow,
    scripts: &'a BTreeMap<PathBuf, String>,
    diags: Diagnostics,
    texts: HashMap<PathBuf, &'a str>,
    /// kind → id → where it is defined.
    ids: HashMap<&'static str, BTreeMap<String, Place>>,
    sandbox: Sandbox,
    /// Every survey question id, for checking `answer("…")` calls.
    question_ids: BTreeSet<String>,
    /// Low and high sample answers to every question, for probing scripts.
    answer_samples: Vec<rhai::Map>,
    /// Files skipped because their YAML syntax is broken.
    unparsed: Vec<PathBuf>,
    /// References not checked because they may point into `unparsed`.
    unchecked: BTreeSet<String>,
    /// Kinds of which some rule failed to parse.
    items_failed: BTreeSet<&'static str>,
    /// Ids of rules that failed to parse: they exist, so references to
    /// them are not unknown.
    failed_ids: items::FailedIds,
}

fn rule(kind: &str, id: &str) -> String {
    format!("{kind} {id}")
}

/// How a diagnostic's message names its rule: `schedule \`x\``; owners
/// that are already phrases (`question \`q\` of survey \`s\``,
/// `test "t"`) as they are.
fn owner_name(owner: &str) -> String {
    if owner.contains('`') || owner.contains('"') {
        return owner.to_owned();
    }
    match owner.split_once(' ') {
        Some((kind, id)) => format!("{kind} `{id}`"),
        None => owner.to_owned(),
    }
}

/// Every diagnostic about a rule names its kind and id: a message that
/// does not already name its owner is prefixed with it
/// (`schedule \`midweek-checkin\`: unknown segment \`high-suport\``).
fn name_owners(items: &mut [Diagnostic]) {
    for d in items {
        let Some(owner) = &d.rule else { continue };
        let name = owner_name(owner);
        let id_phrase = owner
            .split_once(' ')
            .map(|(kind, id)| format!("{kind} id `{id}`"));
        let named = d.message.contains(&name) || id_phrase.is_some_and(|p| d.message.contains(&p));
        if !named {
            d.message = format!("{name}: {}", d.message);
        }
    }
}

/// Hashes a raw definition (its content, not its place) for diffs.
fn fingerprint<T: Serialize>(item: &T, extra: &str) -> String {
    let json = serde_json::to_string(item).unwrap_or_default();
    sha256_hex(format!("{json}\u{0}{extra}").as_bytes())
}

impl Compiler<'_> {
    /// Parses one file. When it fails as a whole, it is parsed again rule
    /// by rule ([`items`]), so one bad rule is reported at its place and
    /// the others are still compiled and checked. Only a file whose YAML
    /// syntax is broken is skipped (`None`).
    fn parse(&mut self, source: &Source) -> Option<RawFile> {
        let e = match serde_saphyr::from_str::<Option<RawFile>>(&source.text) {
            Ok(file) => return Some(file.unwrap_or_default()),
            Err(e) => e,
        };
        let before = self.diags.items.len();
        let file = self.parse_items(&source.path, &source.text);
        if file.is_none() || self.diags.items.len() == before {
            // Broken syntax, or a problem no single rule shows: the
            // parser's own message for the file.
            self.yaml_error(&source.path, &source.text, &e, None);
        }
        if file.is_none() {
            self.unparsed.push(source.path.clone());
        }
        file
    }
}

fn valid_id(id: &str) -> bool {
    id.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_slugs() {
        assert!(valid_id("tuesday-anxiety_2"));
        assert!(!valid_id("tuesday anxiety"));
        assert!(!valid_id("a/b"));
    }
}
