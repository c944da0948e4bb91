//! Raw files → [`RuleSet`], reporting every problem with its place.
//!
//! One pass per concern, each adding to the same [`Diagnostics`]; nothing
//! stops at the first error. The rule set exists only when no error was
//! found, so a half-valid directory can never be applied.
//!
//! This module holds the compiler's state, the id registry and the
//! passes; each document kind compiles in its own file:
//!
//! - `groups`, `segments`, `templates`, `schedules`, `surveys`,
//!   `alerts`, `rotations`, `escalations`, `contacts`, `rule_tests`;
//! - `items`: a file that fails as a whole, parsed again rule by rule;
//! - `location`: places inside values, YAML parser messages;
//! - `limits`: the one `limits:` document;
//! - `lint`: quiet hours of session-relative schedules, cron times.
//!
//! Template length, crisis replies and unused templates are judged at the
//! end of `Compiler::build`, once every rule is compiled.

mod alerts;
mod contacts;
mod escalations;
mod groups;
mod items;
mod limits;
mod lint;
mod location;
mod rotations;
mod rule_tests;
mod schedules;
mod segments;
mod surveys;
mod templates;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_saphyr::Spanned;

pub use self::alerts::COMPLIANCE_KEYWORDS;
use self::alerts::answer_ids;
use self::surveys::sample_answer;
use self::templates::owner_of_template;
use super::diag::{Diagnostic, Diagnostics, Place};
use super::options::{CompileOptions, SendWindow};
use super::raw::*;
use super::rules::*;
use crate::domain::sms;
use crate::domain::{self, Duration};
use crate::engine::script::{Limits, Sandbox, ScriptKind};
use crate::engine::template::{self, Templates};
use crate::text::did_you_mean;
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
pub const MAX_SEGMENTS: usize = 3;

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

impl<'a> Compiler<'a> {
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

    /// Registers an id; a duplicate is an error naming both places.
    fn define(&mut self, kind: &'static str, id: &Spanned<String>, path: &Path) -> bool {
        let at = Place::of(path, id);
        // A rule with a bad id still exists: references to it are not
        // "unknown" on top of the one error.
        if id.value.trim().is_empty() || !valid_id(&id.value) {
            self.failed_ids.insert((kind, id.value.clone()));
        }
        if id.value.trim().is_empty() {
            self.diags
                .error(at, None, format!("{kind} id must not be empty"))
                .with_hint("ids are letters, digits, `-` and `_`, like `tuesday-anxiety`");
            return false;
        }
        if !valid_id(&id.value) {
            self.diags
                .error(
                    at,
                    Some(&rule(kind, &id.value)),
                    format!("invalid {kind} id `{}`", id.value),
                )
                .with_hint("ids are letters, digits, `-` and `_`, like `tuesday-anxiety`");
            return false;
        }
        if kind == "segment" && id.value == ALL_SEGMENT {
            self.diags
                .error(
                    at,
                    Some(&rule(kind, &id.value)),
                    "segment id `all` is built in and cannot be redefined",
                )
                .with_hint("`all` holds every active member; pick another id");
            return false;
        }
        let known = self.ids.entry(kind).or_default();
        if let Some(first) = known.get(&id.value) {
            let first = first.clone();
            self.diags
                .error(
                    at,
                    Some(&rule(kind, &id.value)),
                    format!("duplicate {kind} id `{}`", id.value),
                )
                .with_hint(format!("first defined at {first}"));
            return false;
        }
        known.insert(id.value.clone(), at);
        true
    }

    fn known(&self, kind: &'static str, id: &str) -> bool {
        self.ids.get(kind).is_some_and(|m| m.contains_key(id))
            || (kind == "segment" && id == ALL_SEGMENT)
            || self.failed_ids.contains(&(kind, id.to_owned()))
    }

    /// Whether an unknown id may be defined in a file that could not be
    /// parsed; if so it is noted once at the end instead of reported.
    fn maybe_unparsed(&mut self, kind: &'static str, id: &str) -> bool {
        if self.unparsed.is_empty() {
            return false;
        }
        self.unchecked.insert(format!("{kind} `{id}`"));
        true
    }

    /// One note naming what could not be checked because a file could not
    /// be parsed.
    fn note_unchecked(&mut self) {
        let (Some(first), false) = (self.unparsed.first(), self.unchecked.is_empty()) else {
            return;
        };
        let files: Vec<String> = self
            .unparsed
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect();
        let names: Vec<&str> = self.unchecked.iter().map(String::as_str).collect();
        self.diags.note(
            Place::new(first, 0, 0),
            None,
            format!(
                "not checked: {} may be defined in {}, which could not be parsed",
                names.join(", "),
                files.join(", ")
            ),
        );
    }

    /// Checks a reference; an unknown one is an error with a suggestion.
    fn reference(
        &mut self,
        kind: &'static str,
        target: &Spanned<String>,
        path: &Path,
        owner: &str,
    ) -> bool {
        if self.known(kind, &target.value) {
            return true;
        }
        if self.maybe_unparsed(kind, &target.value) {
            return false;
        }
        let mut candidates: Vec<&str> = self
            .ids
            .get(kind)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        if kind == "segment" {
            candidates.push(ALL_SEGMENT);
        }
        let hint = did_you_mean(&target.value, candidates.iter().copied()).or_else(|| {
            (candidates.is_empty()).then(|| format!("no {kind} is defined in this directory"))
        });
        let d = self.diags.error(
            Place::of(path, target),
            Some(owner),
            format!("unknown {kind} `{}`", target.value),
        );
        if let Some(hint) = hint {
            d.with_hint(hint);
        }
        false
    }

    /// Reports a domain parser's error at `at`, with its hint when it has one.
    fn invalid(&mut self, at: Place, owner: &str, e: domain::Invalid) {
        let d = self.diags.error(at, Some(owner), e.message);
        if let Some(hint) = e.hint {
            d.with_hint(hint);
        }
    }

    fn duration(&mut self, value: &Spanned<String>, path: &Path, owner: &str) -> Option<Duration> {
        Duration::parse(&value.value)
            .map_err(|e| self.invalid(Place::of(path, value), owner, e))
            .ok()
    }

    fn timezone(
        &mut self,
        value: &Spanned<String>,
        path: &Path,
        owner: &str,
    ) -> Option<chrono_tz::Tz> {
        match domain::parse_timezone(&value.value) {
            Ok(tz) => Some(tz),
            Err(e) => {
                let hint = e
                    .hint
                    .or_else(|| did_you_mean(&value.value, domain::timezone_names()))
                    .unwrap_or_else(|| "use an IANA name, like `America/New_York`".to_owned());
                self.diags
                    .error(Place::of(path, value), Some(owner), e.message)
                    .with_hint(hint);
                None
            }
        }
    }

    /// Compiles a `when:` expression and probes it for unknown functions;
    /// errors point into the YAML value.
    fn expression(
        &mut self,
        kind: ScriptKind,
        w: &Spanned<String>,
        path: &Path,
        owner: &str,
    ) -> Option<rhai::AST> {
        let result = self
            .sandbox
            .compile_expression(kind, &w.value)
            .and_then(|ast| {
                match self
                    .sandbox
                    .probe(kind, &ast, &w.value, &self.answer_samples)
                {
                    Some(e) => Err(e),
                    None => Ok(ast),
                }
            });
        match result {
            Ok(ast) => Some(ast),
            Err(e) => {
                let place =
                    self.place_in_value(path, w, e.line.unwrap_or(1), e.column.unwrap_or(1));
                let d = self.diags.error(place, Some(owner), e.message);
                if let Some(h) = e.hint {
                    d.with_hint(h);
                }
                None
            }
        }
    }

    /// Warns about `answer("x")` where no survey asks a question `x`.
    /// `place(line, column)` turns a place inside `source` into a file place.
    fn check_answer_ids(
        &mut self,
        source: &str,
        place: impl Fn(&Self, usize, usize) -> Place,
        owner: &str,
    ) {
        for (id, line, column) in answer_ids(source) {
            if !self.question_ids.contains(&id) {
                let hint = did_you_mean(&id, self.question_ids.iter().map(String::as_str));
                let at = place(self, line, column);
                let d = self.diags.warning(
                    at,
                    Some(owner),
                    format!("`answer(\"{id}\")` names a question no survey asks"),
                );
                if let Some(h) = hint {
                    d.with_hint(h);
                }
            }
        }
    }

    fn build(&mut self, files: &[(PathBuf, RawFile)]) -> Option<RuleSet> {
        // Pass 1: every id, so references can point forward and across files.
        for (path, f) in files {
            for g in &f.groups {
                self.define("group", &g.value.id, path);
            }
            for s in &f.segments {
                self.define("segment", &s.value.id, path);
            }
            for (id, _) in &f.templates.0 {
                self.define("template", id, path);
            }
            for s in &f.schedules {
                self.define("schedule", &s.value.id, path);
            }
            for (id, _) in &f.surveys.0 {
                self.define("survey", id, path);
            }
            for a in &f.alerts {
                self.define("alert", &a.value.id, path);
            }
            for (id, _) in &f.escalations.0 {
                self.define("escalation", id, path);
            }
            for (id, _) in &f.contacts.0 {
                self.define("contact", id, path);
            }
            for (id, _) in &f.rotations.0 {
                self.define("rotation", id, path);
            }
        }
        // A survey's item alerts share the alert ids' namespace (incidents
        // are filed under them); after the alerts, so a clash is reported
        // at the item alert.
        for (path, f) in files {
            for (_, raw) in &f.surveys.0 {
                for a in &raw.alerts {
                    self.define("alert", &a.value.id, path);
                }
            }
        }

        // Pass 2: compile each kind.
        let mut inventory = Inventory::new();
        let mut env = template::environment();
        let mut template_places: Vec<(String, PathBuf, Spanned<String>)> = Vec::new();
        let mut used_templates: BTreeSet<String> = BTreeSet::new();

        let mut contacts = BTreeMap::new();
        for (path, f) in files {
            for (id, raw) in &f.contacts.0 {
                if let Some(c) = self.contact(id, raw, path) {
                    inventory.insert(("contacts", id.value.clone()), fingerprint(raw, ""));
                    contacts.insert(id.value.clone(), c);
                }
            }
        }

        let mut groups = BTreeMap::new();
        for (path, f) in files {
            for g in &f.groups {
                if let Some(group) = self.group(&g.value, path) {
                    inventory.insert(("groups", group.id.clone()), fingerprint(&g.value, ""));
                    groups.insert(group.id.clone(), group);
                }
            }
        }

        let mut segments = BTreeMap::new();
        for (path, f) in files {
            for s in &f.segments {
                if let Some(seg) = self.segment(&s.value, path) {
                    inventory.insert(("segments", seg.id.clone()), fingerprint(&s.value, ""));
                    segments.insert(seg.id.clone(), seg);
                }
            }
        }

        for (path, f) in files {
            for (id, raw) in &f.templates.0 {
                inventory.insert(("templates", id.value.clone()), fingerprint(raw, ""));
                if self.add_template(
                    &mut env,
                    &id.value,
                    &raw.body,
                    path,
                    &owner_of_template(&id.value),
                ) {
                    template_places.push((id.value.clone(), path.clone(), raw.body.clone()));
                }
            }
        }

        let mut surveys = BTreeMap::new();
        for (path, f) in files {
            for (id, raw) in &f.surveys.0 {
                inventory.insert(("surveys", id.value.clone()), fingerprint(raw, ""));
                if let Some(s) = self.survey(id, raw, path, &mut env, &mut template_places) {
                    surveys.insert(s.id.clone(), s);
                }
            }
        }

        self.question_ids = surveys
            .values()
            .flat_map(|s: &Survey| s.questions.iter().map(|q| q.id.clone()))
            .collect();
        self.answer_samples = [true, false]
            .into_iter()
            .map(|low| {
                surveys
                    .values()
                    .flat_map(|s| s.questions.iter())
                    .map(|q| (q.id.as_str().into(), sample_answer(&q.expect, low)))
                    .collect()
            })
            .collect();

        let mut schedules = BTreeMap::new();
        for (path, f) in files {
            for s in &f.schedules {
                inventory.insert(
                    ("schedules", s.value.id.value.clone()),
                    fingerprint(&s.value, ""),
                );
                // Counted as used even when the schedule has another error, so
                // that error is not joined by a misleading "not used".
                if let Some(t) = &s.value.template {
                    used_templates.insert(t.value.clone());
                }
                if let Some(sched) = self.schedule(&s.value, path) {
                    schedules.insert(sched.id.clone(), sched);
                }
            }
        }

        let mut alerts = Vec::new();
        let mut crisis_replies: Vec<(PathBuf, Spanned<String>, String)> = Vec::new();
        for (path, f) in files {
            for a in &f.alerts {
                if let Some(r) = &a.value.reply {
                    used_templates.insert(r.value.clone());
                    if a.value.severity == Severity::Critical {
                        crisis_replies.push((path.clone(), r.clone(), a.value.id.value.clone()));
                    }
                }
                if let Some((alert, script_hash)) = self.alert(&a.value, path) {
                    inventory.insert(
                        ("alerts", alert.id.clone()),
                        fingerprint(&a.value, &script_hash),
                    );
                    if let Some(r) = &alert.reply {
                        used_templates.insert(r.clone());
                    }
                    alerts.push(alert);
                }
            }
        }
        for (_, f) in files {
            for (_, raw) in &f.surveys.0 {
                for r in raw.alerts.iter().filter_map(|a| a.value.reply.as_ref()) {
                    used_templates.insert(r.value.clone());
                }
            }
        }
        // Critical first; stable, so file order holds within a severity.
        alerts.sort_by_key(|a| std::cmp::Reverse(a.severity));

        // Before escalations: `on_call` targets resolve against them.
        let mut rotations = BTreeMap::new();
        for (path, f) in files {
            for (id, raw) in &f.rotations.0 {
                if let Some(r) = self.rotation(id, raw, path) {
                    inventory.insert(("rotations", id.value.clone()), fingerprint(raw, ""));
                    rotations.insert(r.id.clone(), r);
                }
            }
        }

        let mut escalations = BTreeMap::new();
        let known = escalations::Known {
            contacts: &contacts,
            groups: &groups,
            rotations: &rotations,
        };
        for (path, f) in files {
            for (id, raw) in &f.escalations.0 {
                if let Some(e) = self.escalation(id, raw, path, &known) {
                    inventory.insert(("escalations", id.value.clone()), fingerprint(raw, ""));
                    escalations.insert(e.id.clone(), e);
                }
            }
        }

        let limits = self.limits(files, &mut inventory);

        let mut tests = Vec::new();
        for (path, f) in files {
            for t in &f.tests {
                if let Some(test) = self.test(&t.value, path) {
                    tests.push(test);
                }
            }
        }

        // Templates: render each against the sample context, measure it.
        let renderer = Templates::new(env);
        let sample = template::sample_context();
        let mut templates = BTreeMap::new();
        for (name, path, body) in &template_places {
            let owner = owner_of_template(name);
            match renderer.render(name, &sample) {
                Ok(text) => {
                    let len = sms::measure(&text);
                    if len.segments > MAX_SEGMENTS {
                        self.diags
                            .warning(
                                Place::of(path, body),
                                Some(&owner),
                                format!(
                                    "{owner} renders to {} SMS segments ({} {} characters); keep it to {MAX_SEGMENTS} or fewer",
                                    len.segments,
                                    len.units,
                                    match len.encoding {
                                        sms::Encoding::Gsm7 => "GSM-7",
                                        sms::Encoding::Ucs2 => "UCS-2",
                                    }
                                ),
                            )
                            .with_hint("long texts cost more, may arrive out of order, and lose readers; an emoji or curly quote forces UCS-2 (70 characters a segment)");
                    }
                    if !name.contains('/') {
                        templates.insert(
                            name.clone(),
                            TemplateInfo {
                                id: name.clone(),
                                sample_segments: len.segments,
                            },
                        );
                    }
                }
                Err(e) => {
                    let place = match e.line {
                        Some(line) => self.place_in_value(path, body, line, e.column.unwrap_or(1)),
                        None => Place::of(path, body),
                    };
                    let d =
                        self.diags
                            .error(place, Some(&owner), format!("{owner}: {}", e.message));
                    if let Some(hint) = e.hint {
                        d.with_hint(hint);
                    }
                }
            }
        }

        // A crisis reply goes out before the sender is looked up, so it may
        // go to a number not on the roster: it cannot use member variables.
        let no_member = template::unknown_sender_context();
        for (path, reply, alert) in &crisis_replies {
            if !renderer.contains(&reply.value) {
                continue;
            }
            if let Err(e) = renderer.render(&reply.value, &no_member) {
                self.diags
                    .error(
                        Place::of(path, reply),
                        Some(&rule("alert", alert)),
                        format!(
                            "critical alert `{alert}` replies with template `{}`, which fails for a sender not on the roster: {}",
                            reply.value, e.message
                        ),
                    )
                    .with_hint("a crisis reply must reach anyone who texts; write it without member, group or session variables");
            }
        }

        self.check_schedule_times(files, &groups, &schedules);
        self.check_template_places(files, &schedules, &surveys, &renderer);

        // A template nobody sends is probably a typo elsewhere; unless a
        // schedule or alert that may send it could not be read.
        let senders_unread = !self.unparsed.is_empty()
            || self.items_failed.contains("schedule")
            || self.items_failed.contains("alert");
        for (path, f) in files.iter().filter(|_| !senders_unread) {
            for (id, _) in &f.templates.0 {
                if !used_templates.contains(&id.value) {
                    self.diags.warning(
                        Place::of(path, id),
                        Some(&rule("template", &id.value)),
                        format!(
                            "template `{}` is not used by any schedule or alert",
                            id.value
                        ),
                    );
                }
            }
        }

        self.note_unchecked();
        if self.diags.has_errors() {
            return None;
        }
        Some(RuleSet {
            groups,
            segments,
            templates,
            schedules,
            surveys,
            alerts,
            escalations,
            contacts,
            rotations,
            limits,
            tests,
            renderer,
            sandbox: self.sandbox.clone(),
            inventory,
        })
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
