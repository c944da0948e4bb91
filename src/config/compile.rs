//! Raw files → [`RuleSet`], reporting every problem with its place.
//!
//! One pass per concern, each adding to the same [`Diagnostics`]; nothing
//! stops at the first error. The rule set exists only when no error was
//! found, so a half-valid directory can never be applied.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use serde_saphyr::{MessageFormatter, Spanned};
use sha2::{Digest, Sha256};

use super::diag::{Diagnostic, Diagnostics, Place, did_you_mean};
use super::raw::*;
use super::rules::*;
use crate::domain::{self, Duration, Phone};
use crate::engine::script::{Limits, Sandbox, ScriptKind};
use crate::engine::sms;
use crate::engine::template::{self, Templates};
use crate::schedule::{CronSpec, parse_date};

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
        self.diagnostics.len() - self.errors()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The most segments a template may render to before `check` warns.
pub const MAX_SEGMENTS: usize = 3;

/// Compiles already-read sources; `scripts` are the directory's `.rhai`
/// files by relative path, where `script:` references resolve. `files` is
/// left empty: [`super::compile_snapshot`] fills it from the snapshot.
pub(crate) fn compile(sources: &[Source], scripts: &BTreeMap<PathBuf, String>) -> Compiled {
    let mut c = Compiler {
        scripts,
        diags: Diagnostics::default(),
        texts: sources
            .iter()
            .map(|s| (s.path.clone(), s.text.as_str()))
            .collect(),
        ids: HashMap::new(),
        sandbox: Sandbox::new(Limits::default()),
        question_ids: BTreeSet::new(),
        answer_samples: Vec::new(),
    };
    let mut parsed = Vec::new();
    for source in sources {
        if let Some(file) = c.parse(source) {
            parsed.push((source.path.clone(), file));
        }
    }
    let rules = c.build(&parsed);
    let has_errors = c.diags.has_errors();
    Compiled {
        rules: if has_errors { None } else { rules },
        diagnostics: c.diags.into_sorted(),
        files: BTreeMap::new(),
    }
}

struct Compiler<'a> {
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
}

fn rule(kind: &str, id: &str) -> String {
    format!("{kind} {id}")
}

/// Hashes a raw definition (its content, not its place) for diffs.
fn fingerprint<T: Serialize>(item: &T, extra: &str) -> String {
    let json = serde_json::to_string(item).unwrap_or_default();
    sha256_hex(format!("{json}\u{0}{extra}").as_bytes())
}

impl<'a> Compiler<'a> {
    fn parse(&mut self, source: &Source) -> Option<RawFile> {
        match serde_saphyr::from_str::<Option<RawFile>>(&source.text) {
            Ok(file) => Some(file.unwrap_or_default()),
            Err(e) => {
                let (line, column) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((0, 0));
                let raw = serde_saphyr::DefaultMessageFormatter
                    .format_message(e.without_snippet())
                    .into_owned();
                let (message, hint, column) = yaml_message(&raw, &source.text, line, column);
                let d = self
                    .diags
                    .error(Place::new(&source.path, line, column), None, message);
                if let Some(hint) = hint {
                    d.with_hint(hint);
                }
                None
            }
        }
    }

    /// Registers an id; a duplicate is an error naming both places.
    fn define(&mut self, kind: &'static str, id: &Spanned<String>, path: &Path) -> bool {
        let at = Place::of(path, id);
        if id.value.trim().is_empty() {
            self.diags
                .error(at, None, format!("{kind} id must not be empty"));
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

    fn duration(&mut self, value: &Spanned<String>, path: &Path, owner: &str) -> Option<Duration> {
        value
            .value
            .parse::<Duration>()
            .map_err(|e| self.diags.error(Place::of(path, value), Some(owner), e))
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
                let d = self.diags.error(Place::of(path, value), Some(owner), e);
                match did_you_mean(&value.value, domain::timezone_names()) {
                    Some(hint) => d.with_hint(hint),
                    None => d.with_hint("use an IANA name, like `America/New_York`"),
                };
                None
            }
        }
    }

    /// Where line/column `(line, column)` of a YAML string value's own text
    /// stands in the file.
    ///
    /// For plain, single-quoted-free and literal (`|`) values the mapping is
    /// arithmetic: a quoted value's text starts one column after the quote,
    /// a literal block's span is its first content line and its lines
    /// share that indentation. Folded (`>`) and multi-line quoted values,
    /// and escapes (`\"`), break that arithmetic, so the result is checked:
    /// the offending token must stand there in the file; if it does not, it
    /// is looked for in the value's own source text, and failing that the
    /// value's start is named.
    fn place_in_value(
        &self,
        path: &Path,
        value: &Spanned<String>,
        line: usize,
        column: usize,
    ) -> Place {
        let start_line = value.referenced.line();
        let start_col = value.referenced.column();
        let text = self.texts.get(path).copied().unwrap_or("");
        let offset = value.referenced.span().byte_offset().map(|o| o as usize);
        let quoted = offset
            .and_then(|o| text.get(o..))
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c == '"' || c == '\'');
        let (l, c) = (line.max(1) as u64, column.max(1) as u64);
        let naive = match (l, quoted) {
            (1, true) => Place::new(path, start_line, start_col + c),
            (1, false) => Place::new(path, start_line, start_col + c - 1),
            (_, _) => Place::new(path, start_line + l - 1, start_col - 1 + c),
        };
        let token = token_at(&value.value, line.max(1), column.max(1));
        if token.is_empty() || source_at(text, &naive).is_some_and(|s| s.starts_with(token)) {
            return naive;
        }
        // Search the value's source: it spans at most its own length plus
        // escapes and indentation, so look a little further than that.
        let Some(start) = offset else {
            return Place::of(path, value);
        };
        let window_end = text.len().min(start + value.value.len() * 2 + 200);
        let window = text.get(start..window_end).unwrap_or("");
        // The n-th occurrence of the token in the value is the n-th in its source.
        let nth = occurrences_before(&value.value, token, line.max(1), column.max(1));
        match window.match_indices(token).nth(nth) {
            Some((i, _)) => position_of(text, path, start + i),
            None => Place::of(path, value),
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
                    .probe_unknown_functions(kind, &ast, &self.answer_samples)
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
                if let Some(s) = self.survey(&id.value, raw, path, &mut env, &mut template_places) {
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
        // Critical first; stable, so file order holds within a severity.
        alerts.sort_by_key(|a| std::cmp::Reverse(a.severity));

        let mut escalations = BTreeMap::new();
        for (path, f) in files {
            for (id, raw) in &f.escalations.0 {
                if let Some(e) = self.escalation(&id.value, raw, path, &contacts, &groups) {
                    inventory.insert(("escalations", id.value.clone()), fingerprint(raw, ""));
                    escalations.insert(e.id.clone(), e);
                }
            }
        }

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

        self.check_session_times(files, &groups, &schedules);

        // A template nobody sends is probably a typo elsewhere.
        for (path, f) in files {
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
            tests,
            renderer,
            sandbox: self.sandbox.clone(),
            inventory,
        })
    }

    /// Warns when a session-relative schedule lands inside quiet hours for
    /// a group it serves, judged on that group's next session.
    fn check_session_times(
        &mut self,
        files: &[(PathBuf, RawFile)],
        groups: &BTreeMap<String, Group>,
        schedules: &BTreeMap<String, Schedule>,
    ) {
        let now = chrono::Utc::now();
        for (path, f) in files {
            for raw in &f.schedules {
                let Some(s) = schedules.get(&raw.value.id.value) else {
                    continue;
                };
                let (offset, before) = match &s.timing {
                    Timing::BeforeSession { offset, at: None } => (offset, true),
                    Timing::AfterSession { offset, at: None } => (offset, false),
                    _ => continue,
                };
                let Some(at) = raw
                    .value
                    .before_session
                    .as_ref()
                    .or(raw.value.after_session.as_ref())
                else {
                    continue;
                };
                for g in groups
                    .values()
                    .filter(|g| s.groups.is_empty() || s.groups.contains(&g.id))
                {
                    let Some(start) = g.sessions.next_after(&now.with_timezone(&g.timezone)) else {
                        continue;
                    };
                    let fire = if before {
                        start - offset.chrono()
                    } else {
                        start + g.duration.chrono() + offset.chrono()
                    };
                    let hour = chrono::Timelike::hour(&fire);
                    if !(8..21).contains(&hour) {
                        self.diags
                            .warning(
                                Place::of(path, at),
                                Some(&rule("schedule", &s.id)),
                                format!(
                                    "schedule `{}` lands at {} for group `{}`, inside quiet hours (21:00–08:00)",
                                    s.id,
                                    fire.format("%H:%M"),
                                    g.id
                                ),
                            )
                            .with_hint("it would be held until morning; use `at:` to pick a daytime hour, or a shorter offset");
                    }
                }
            }
        }
    }

    fn add_template(
        &mut self,
        env: &mut minijinja::Environment<'static>,
        name: &str,
        body: &Spanned<String>,
        path: &Path,
        owner: &str,
    ) -> bool {
        if body.value.trim().is_empty() {
            self.diags.error(
                Place::of(path, body),
                Some(owner),
                format!("{owner} has an empty body"),
            );
            return false;
        }
        match Templates::add(env, name, &body.value) {
            Ok(()) => true,
            Err(e) => {
                let place = match e.line {
                    Some(line) => self.place_in_value(path, body, line, e.column.unwrap_or(1)),
                    None => Place::of(path, body),
                };
                self.diags
                    .error(place, Some(owner), format!("{owner}: {}", e.message));
                false
            }
        }
    }

    fn contact(&mut self, id: &Spanned<String>, raw: &RawContact, path: &Path) -> Option<Contact> {
        let owner = rule("contact", &id.value);
        let mut ok = true;
        if raw.sms.is_none() && raw.email.is_none() && raw.webhook.is_none() {
            self.diags
                .error(
                    Place::of(path, id),
                    Some(&owner),
                    format!("contact `{}` has no way to reach it", id.value),
                )
                .with_hint("give at least one of `sms`, `email` or `webhook`");
            ok = false;
        }
        let sms = raw.sms.as_ref().and_then(|s| {
            s.value
                .parse::<Phone>()
                .map_err(|e| {
                    ok = false;
                    self.diags.error(Place::of(path, s), Some(&owner), e);
                })
                .ok()
        });
        if let Some(email) = &raw.email
            && !valid_email(&email.value)
        {
            ok = false;
            self.diags.error(
                Place::of(path, email),
                Some(&owner),
                format!("invalid email address `{}`", email.value),
            );
        }
        if let Some(url) = &raw.webhook
            && !(url.value.starts_with("https://") || url.value.starts_with("http://"))
        {
            ok = false;
            self.diags
                .error(
                    Place::of(path, url),
                    Some(&owner),
                    format!("invalid webhook URL `{}`", url.value),
                )
                .with_hint("use an absolute http:// or https:// URL");
        }
        ok.then(|| Contact {
            id: id.value.clone(),
            name: raw.name.clone(),
            sms,
            email: raw.email.as_ref().map(|e| e.value.clone()),
            webhook: raw.webhook.as_ref().map(|w| w.value.clone()),
        })
    }

    fn group(&mut self, g: &RawGroup, path: &Path) -> Option<Group> {
        let owner = rule("group", &g.id.value);
        let timezone = self.timezone(&g.timezone, path, &owner);
        let sessions = CronSpec::parse(&g.sessions.value.cron.value)
            .map_err(|e| {
                self.diags
                    .error(Place::of(path, &g.sessions.value.cron), Some(&owner), e)
            })
            .ok();
        let duration = self.duration(&g.sessions.value.duration, path, &owner);
        let mut cancelled = BTreeSet::new();
        let mut ok = true;
        for d in &g.sessions.value.cancelled {
            match parse_date(&d.value) {
                Ok(date) => {
                    if let (Some(tz), Some(spec)) = (&timezone, &sessions)
                        && !meets_on(spec, *tz, date)
                    {
                        self.diags
                            .warning(
                                Place::of(path, d),
                                Some(&owner),
                                format!(
                                    "group `{}` has no session on {date} to cancel",
                                    g.id.value
                                ),
                            )
                            .with_hint(format!("its sessions follow `{}`", spec.pattern()));
                    }
                    cancelled.insert(date);
                }
                Err(e) => {
                    ok = false;
                    self.diags.error(Place::of(path, d), Some(&owner), e);
                }
            }
        }
        for f in &g.facilitators {
            ok &= self.reference("contact", f, path, &owner);
        }
        if g.name.value.trim().is_empty() {
            ok = false;
            self.diags.error(
                Place::of(path, &g.name),
                Some(&owner),
                format!("group `{}` has an empty name", g.id.value),
            );
        }
        Some(Group {
            id: g.id.value.clone(),
            name: g.name.value.clone(),
            timezone: timezone?,
            sessions: sessions?,
            duration: duration?,
            cancelled,
            facilitators: g.facilitators.iter().map(|f| f.value.clone()).collect(),
        })
        .filter(|_| ok)
    }

    fn segment(&mut self, s: &RawSegment, path: &Path) -> Option<Segment> {
        let owner = rule("segment", &s.id.value);
        let mut ok = true;
        if s.match_.is_none() && s.when.is_none() {
            self.diags
                .error(Place::of(path, &s.id), Some(&owner), format!("segment `{}` selects nobody in particular", s.id.value))
                .with_hint("give `match:` conditions, a `when:` expression, or both; `all` already means everyone");
            ok = false;
        }
        let mut conditions = Vec::new();
        if let Some(m) = &s.match_ {
            for (name, cond) in &m.value {
                match self.condition(name, cond, path, &owner) {
                    Some(mut c) => conditions.append(&mut c),
                    None => ok = false,
                }
            }
        }
        let when = match &s.when {
            Some(w) => match self.expression(ScriptKind::Segment, w, path, &owner) {
                Some(ast) => Some(ast),
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };
        ok.then(|| Segment {
            id: s.id.value.clone(),
            conditions,
            when,
        })
    }

    fn condition(
        &mut self,
        name: &str,
        cond: &Spanned<RawCondition>,
        path: &Path,
        owner: &str,
    ) -> Option<Vec<Condition>> {
        let at = Place::of(path, cond);
        let field = if name == "phone" || name.starts_with("phone") {
            self.diags
                .error(at, Some(owner), format!("segments cannot match on `{name}`"))
                .with_hint("phone numbers are kept out of rules and scripts; match on a roster attribute instead");
            return None;
        } else if let Some(attr) = name.strip_prefix("attributes.") {
            Field::Attribute(attr.to_owned())
        } else if MEMBER_FIELDS.contains(&name) {
            Field::Member(name.to_owned())
        } else {
            Field::Attribute(name.to_owned())
        };
        let c = &cond.value;
        let mut ops = Vec::new();
        let mut ok = true;
        if let Some(v) = &c.eq {
            ops.push(Op::Eq(v.clone()));
        }
        for (op_name, list, make) in [
            ("in", &c.in_, Op::In as fn(Vec<serde_json::Value>) -> Op),
            ("any_of", &c.any_of, Op::AnyOf),
            ("all_of", &c.all_of, Op::AllOf),
        ] {
            if let Some(list) = list {
                if list.is_empty() {
                    ok = false;
                    self.diags.error(
                        at.clone(),
                        Some(owner),
                        format!("`{op_name}` on `{name}` needs at least one value"),
                    );
                }
                ops.push(make(list.clone()));
            }
        }
        for (op_name, value, make) in [
            ("lt", &c.lt, Op::Lt as fn(serde_json::Value) -> Op),
            ("lte", &c.lte, Op::Lte),
            ("gt", &c.gt, Op::Gt),
            ("gte", &c.gte, Op::Gte),
        ] {
            if let Some(v) = value {
                let comparable = v.is_number() || v.as_str().is_some_and(|s| parse_date(s).is_ok());
                if !comparable {
                    ok = false;
                    self.diags
                        .error(
                            at.clone(),
                            Some(owner),
                            format!("`{op_name}` on `{name}` compares with `{v}`, which is not a number or a date"),
                        )
                        .with_hint("write a number (`2`) or a date (`2026-01-31`)");
                }
                ops.push(make(v.clone()));
            }
        }
        if let Some(e) = c.exists {
            ops.push(Op::Exists(e));
        }
        if ops.is_empty() {
            self.diags
                .error(
                    at,
                    Some(owner),
                    format!("condition on `{name}` has no operator"),
                )
                .with_hint("use one of eq, in, any_of, all_of, lt, lte, gt, gte, exists");
            return None;
        }
        ok.then(|| {
            ops.into_iter()
                .map(|op| Condition {
                    field: field.clone(),
                    op,
                })
                .collect()
        })
    }

    fn survey(
        &mut self,
        id: &str,
        raw: &RawSurvey,
        path: &Path,
        env: &mut minijinja::Environment<'static>,
        places: &mut Vec<(String, PathBuf, Spanned<String>)>,
    ) -> Option<Survey> {
        let owner = rule("survey", id);
        let mut ok = true;
        if raw.questions.is_empty() {
            ok = false;
            let at = self.ids["survey"][id].clone();
            self.diags
                .error(at, Some(&owner), format!("survey `{id}` has no questions"));
        }
        let mut seen = BTreeSet::new();
        let mut questions = Vec::new();
        for q in &raw.questions {
            let q = &q.value;
            if !seen.insert(q.id.value.clone()) {
                ok = false;
                self.diags.error(
                    Place::of(path, &q.id),
                    Some(&owner),
                    format!("duplicate question id `{}` in survey `{id}`", q.id.value),
                );
                continue;
            }
            let name = format!("survey/{id}/{}", q.id.value);
            let qowner = format!("question `{}` of survey `{id}`", q.id.value);
            if self.add_template(env, &name, &q.ask, path, &qowner) {
                places.push((name.clone(), path.to_path_buf(), q.ask.clone()));
            } else {
                ok = false;
            }
            let expect = match &q.expect.value {
                RawExpect::Number { min, max, integer } => {
                    if let (Some(lo), Some(hi)) = (min, max)
                        && lo > hi
                    {
                        ok = false;
                        self.diags.error(
                            Place::of(path, &q.expect),
                            Some(&owner),
                            format!("number range of question `{}` is empty: min {lo} is above max {hi}", q.id.value),
                        );
                    }
                    Expect::Number {
                        min: *min,
                        max: *max,
                        integer: *integer,
                    }
                }
                RawExpect::Choice(options) => {
                    let distinct: BTreeSet<String> =
                        options.iter().map(|o| o.trim().to_lowercase()).collect();
                    if options.is_empty()
                        || distinct.len() != options.len()
                        || distinct.contains("")
                    {
                        ok = false;
                        self.diags.error(
                            Place::of(path, &q.expect),
                            Some(&owner),
                            format!("choices of question `{}` must be distinct, non-empty, and at least one", q.id.value),
                        );
                    }
                    Expect::Choice(options.clone())
                }
                RawExpect::YesNo => Expect::YesNo,
                RawExpect::FreeText => Expect::FreeText,
            };
            questions.push(Question {
                id: q.id.value.clone(),
                ask: name,
                expect,
            });
        }
        let mut extra =
            |key: &str, value: &Option<Spanned<String>>, this: &mut Self| -> Option<String> {
                let v = value.as_ref()?;
                let name = format!("survey/{id}/{key}");
                if this.add_template(env, &name, v, path, &format!("{key} of survey `{id}`")) {
                    places.push((name.clone(), path.to_path_buf(), v.clone()));
                    Some(name)
                } else {
                    ok = false;
                    None
                }
            };
        let reprompt = extra("reprompt", &raw.reprompt, self);
        let thanks = extra("thanks", &raw.thanks, self);
        let expires_after = match &raw.expires_after {
            Some(e) => self.duration(e, path, &owner),
            None => Some(Duration::from_secs(24 * 3600)),
        };
        if raw.max_reprompts.unwrap_or(0) > 0 && raw.reprompt.is_none() {
            self.diags
                .warning(
                    self.ids["survey"][id].clone(),
                    Some(&owner),
                    format!("survey `{id}` re-prompts but has no `reprompt` text; the question is asked again instead"),
                );
        }
        Some(Survey {
            id: id.to_owned(),
            questions,
            reprompt,
            max_reprompts: raw.max_reprompts.unwrap_or(1),
            expires_after: expires_after?,
            thanks,
        })
        .filter(|_| ok)
    }

    fn schedule(&mut self, s: &RawSchedule, path: &Path) -> Option<Schedule> {
        let owner = rule("schedule", &s.id.value);
        let at_id = Place::of(path, &s.id);
        let mut ok = true;

        let segment = match &s.segment {
            Some(seg) => {
                ok &= self.reference("segment", seg, path, &owner);
                seg.value.clone()
            }
            None => ALL_SEGMENT.to_owned(),
        };
        for g in &s.groups {
            ok &= self.reference("group", g, path, &owner);
        }
        let content = match (&s.template, &s.survey) {
            (Some(t), None) => {
                ok &= self.reference("template", t, path, &owner);
                Some(Content::Template(t.value.clone()))
            }
            (None, Some(v)) => {
                ok &= self.reference("survey", v, path, &owner);
                Some(Content::Survey(v.value.clone()))
            }
            (Some(_), Some(v)) => {
                self.diags
                    .error(
                        Place::of(path, v),
                        Some(&owner),
                        format!("schedule `{}` has both `template` and `survey`", s.id.value),
                    )
                    .with_hint("a schedule sends one thing; split it into two schedules");
                None
            }
            (None, None) => {
                self.diags
                    .error(
                        at_id.clone(),
                        Some(&owner),
                        format!("schedule `{}` sends nothing", s.id.value),
                    )
                    .with_hint("give `template:` or `survey:`");
                None
            }
        };

        let timings = [
            s.cron.is_some(),
            s.before_session.is_some(),
            s.after_session.is_some(),
        ];
        let timing = match timings.iter().filter(|t| **t).count() {
            0 => {
                self.diags
                    .error(
                        at_id.clone(),
                        Some(&owner),
                        format!("schedule `{}` has no timing", s.id.value),
                    )
                    .with_hint("give one of `cron:`, `before_session:` or `after_session:`");
                None
            }
            1 => self.timing(s, path, &owner),
            _ => {
                self.diags
                    .error(
                        at_id.clone(),
                        Some(&owner),
                        format!("schedule `{}` has more than one timing", s.id.value),
                    )
                    .with_hint("give only one of `cron:`, `before_session:` or `after_session:`");
                None
            }
        };
        let expires_after = match &s.expires_after {
            Some(e) => match self.duration(e, path, &owner) {
                Some(d) => Some(d),
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };
        Some(Schedule {
            id: s.id.value.clone(),
            segment,
            groups: s.groups.iter().map(|g| g.value.clone()).collect(),
            content: content?,
            timing: timing?,
            expires_after,
            enabled: s.enabled,
        })
        .filter(|_| ok)
    }

    fn timing(&mut self, s: &RawSchedule, path: &Path, owner: &str) -> Option<Timing> {
        if let Some(cron) = &s.cron {
            if let Some(at) = &s.at {
                self.diags
                    .error(
                        Place::of(path, at),
                        Some(owner),
                        "`at` goes with `before_session` or `after_session`, not `cron`",
                    )
                    .with_hint("put the time of day in the cron pattern, like `0 12 * * THU`");
                return None;
            }
            let spec = CronSpec::parse(&cron.value)
                .map_err(|e| self.diags.error(Place::of(path, cron), Some(owner), e))
                .ok();
            let timezone = match &s.timezone {
                Some(tz) => Some(self.timezone(tz, path, owner)?),
                None => None,
            };
            let spec = spec?;
            if let Some(hour) = fixed_hours(spec.pattern())
                .into_iter()
                .find(|h| !(8..21).contains(h))
            {
                self.diags
                    .warning(
                        Place::of(path, cron),
                        Some(owner),
                        format!("schedule fires at {hour:02}:xx, inside quiet hours (21:00–08:00)"),
                    )
                    .with_hint(
                        "routine messages are held until quiet hours end; pick a daytime hour",
                    );
            }
            return Some(Timing::Cron {
                spec: Box::new(spec),
                timezone,
            });
        }
        if let Some(tz) = &s.timezone {
            self.diags
                .error(
                    Place::of(path, tz),
                    Some(owner),
                    "`timezone` goes with `cron`",
                )
                .with_hint("session-relative schedules use each group's own timezone");
            return None;
        }
        let (offset_text, before) = match (&s.before_session, &s.after_session) {
            (Some(b), _) => (b, true),
            (_, Some(a)) => (a, false),
            _ => unreachable!("timing() is called with exactly one timing"),
        };
        let offset = self.duration(offset_text, path, owner)?;
        let at = match &s.at {
            Some(at) => {
                let time = domain::parse_time_of_day(&at.value)
                    .map_err(|e| self.diags.error(Place::of(path, at), Some(owner), e))
                    .ok()?;
                if offset.whole_days().is_none() {
                    self.diags
                        .error(
                            Place::of(path, offset_text),
                            Some(owner),
                            format!(
                                "with `at`, the offset must be whole days, not `{}`",
                                offset_text.value
                            ),
                        )
                        .with_hint(
                            "`before_session: 1d` with `at: \"17:00\"` means 17:00 the day before",
                        );
                    return None;
                }
                if !(8..21).contains(&chrono::Timelike::hour(&time)) {
                    self.diags
                        .warning(
                            Place::of(path, at),
                            Some(owner),
                            format!("`at: {}` is inside quiet hours (21:00–08:00)", at.value),
                        )
                        .with_hint(
                            "routine messages are held until quiet hours end; pick a daytime hour",
                        );
                }
                Some(time)
            }
            None => None,
        };
        Some(if before {
            Timing::BeforeSession { offset, at }
        } else {
            Timing::AfterSession { offset, at }
        })
    }

    /// Returns the alert and the hash of its script file ("" without one).
    fn alert(&mut self, a: &RawAlert, path: &Path) -> Option<(Alert, String)> {
        let owner = rule("alert", &a.id.value);
        let mut ok = true;
        if a.keywords.is_empty() && a.when.is_none() && a.script.is_none() {
            self.diags
                .error(
                    Place::of(path, &a.id),
                    Some(&owner),
                    format!("alert `{}` has nothing to match", a.id.value),
                )
                .with_hint("give `keywords:`, a `when:` expression, or a `script:`");
            ok = false;
        }
        let mut keywords = Vec::new();
        for k in &a.keywords {
            let kw = k.value.trim().to_lowercase();
            if kw.is_empty() {
                ok = false;
                self.diags
                    .error(Place::of(path, k), Some(&owner), "empty keyword");
            } else if COMPLIANCE_KEYWORDS.contains(&kw.as_str()) {
                ok = false;
                self.diags
                    .error(
                        Place::of(path, k),
                        Some(&owner),
                        format!("`{}` is a compliance keyword and cannot be an alert keyword", k.value),
                    )
                    .with_hint("STOP, START, HELP and their synonyms always opt out, opt in or get help; an alert on them would hijack that");
            } else {
                keywords.push(kw);
            }
        }
        let when = match &a.when {
            Some(w) => match self.expression(ScriptKind::Alert, w, path, &owner) {
                Some(ast) => {
                    self.check_answer_ids(
                        &w.value,
                        |c, l, col| c.place_in_value(path, w, l, col),
                        &owner,
                    );
                    Some(ast)
                }
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };
        let mut script_hash = String::new();
        let script = match &a.script {
            Some(s) => match self.script(s, path, &owner) {
                Some((rel, ast, hash)) => {
                    script_hash = hash;
                    Some((rel, ast))
                }
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };
        if let Some(r) = &a.reply {
            ok &= self.reference("template", r, path, &owner);
        }
        if let Some(e) = &a.escalate {
            ok &= self.reference("escalation", e, path, &owner);
        }
        let realert = match &a.realert {
            Some(r) => match self.duration(r, path, &owner) {
                Some(d) => Some(d),
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };
        if a.severity == Severity::Critical && a.escalate.is_none() {
            self.diags
                .warning(
                    Place::of(path, &a.id),
                    Some(&owner),
                    format!("critical alert `{}` escalates to nobody", a.id.value),
                )
                .with_hint("add `escalate:` so a person is told");
        }
        let alert = Alert {
            id: a.id.value.clone(),
            severity: a.severity,
            keywords,
            when,
            script,
            reply: a.reply.as_ref().map(|r| r.value.clone()),
            escalate: a.escalate.as_ref().map(|e| e.value.clone()),
            realert,
        };
        ok.then_some((alert, script_hash))
    }

    /// Reads and compiles an alert script; errors point into the `.rhai` file.
    fn script(
        &mut self,
        s: &Spanned<String>,
        path: &Path,
        owner: &str,
    ) -> Option<(PathBuf, rhai::AST, String)> {
        let rel = PathBuf::from(&s.value);
        let escapes = rel.is_absolute()
            || rel.components().any(|c| {
                matches!(
                    c,
                    Component::ParentDir | Component::RootDir | Component::Prefix(_)
                )
            });
        if escapes {
            self.diags
                .error(Place::of(path, s), Some(owner), format!("script path `{}` leaves the rules directory", s.value))
                .with_hint("give a path relative to the rules directory, like `scripts/declining_mood.rhai`");
            return None;
        }
        if rel.extension().and_then(|e| e.to_str()) != Some("rhai") {
            self.diags.error(
                Place::of(path, s),
                Some(owner),
                format!("script `{}` is not a `.rhai` file", s.value),
            );
            return None;
        }
        // `./scripts/x.rhai` and `scripts/x.rhai` are the same file.
        let rel: PathBuf = rel
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        let text = match self.scripts.get(&rel) {
            Some(t) => t.clone(),
            None => {
                let known: Vec<String> = self
                    .scripts
                    .keys()
                    .map(|p| p.display().to_string())
                    .collect();
                let d = self.diags.error(
                    Place::of(path, s),
                    Some(owner),
                    format!("cannot read script `{}`: no such file", s.value),
                );
                if let Some(h) = did_you_mean(&s.value, known.iter().map(String::as_str)) {
                    d.with_hint(h);
                }
                return None;
            }
        };
        let hash = sha256_hex(text.as_bytes());

        let compiled = self
            .sandbox
            .compile_script(ScriptKind::Alert, &text)
            .and_then(|ast| {
                match self.sandbox.probe_unknown_functions(
                    ScriptKind::Alert,
                    &ast,
                    &self.answer_samples,
                ) {
                    Some(e) => Err(e),
                    None => Ok(ast),
                }
            });
        match compiled {
            Ok(ast) => {
                self.check_answer_ids(
                    &text,
                    |_, l, col| Place::new(&rel, l as u64, col as u64),
                    owner,
                );
                Some((rel, ast, hash))
            }
            Err(e) => {
                let d = self.diags.error(
                    Place::new(
                        &rel,
                        e.line.unwrap_or(0) as u64,
                        e.column.unwrap_or(0) as u64,
                    ),
                    Some(owner),
                    e.message,
                );
                if let Some(h) = e.hint {
                    d.with_hint(h);
                }
                None
            }
        }
    }

    fn escalation(
        &mut self,
        id: &str,
        raw: &RawEscalation,
        path: &Path,
        contacts: &BTreeMap<String, Contact>,
        groups: &BTreeMap<String, Group>,
    ) -> Option<Escalation> {
        let owner = rule("escalation", id);
        let mut ok = true;
        if raw.steps.is_empty() {
            ok = false;
            let at = self.ids["escalation"][id].clone();
            self.diags
                .error(at, Some(&owner), format!("escalation `{id}` has no steps"));
        }
        let mut steps = Vec::new();
        for (n, step) in raw.steps.iter().enumerate() {
            let st = &step.value;
            if st.notify.is_empty() || st.via.is_empty() {
                ok = false;
                self.diags.error(
                    Place::of(path, step),
                    Some(&owner),
                    format!(
                        "step {} of escalation `{id}` needs `notify` and `via`",
                        n + 1
                    ),
                );
            }
            let mut targets = Vec::new();
            for t in &st.notify {
                let target = if t.value == "group.facilitators" {
                    Target::GroupFacilitators
                } else if self.reference("contact", t, path, &owner) {
                    Target::Contact(t.value.clone())
                } else {
                    ok = false;
                    continue;
                };
                // Every named contact must be reachable on every channel.
                let reached: Vec<&Contact> = match &target {
                    Target::Contact(c) => contacts.get(c).into_iter().collect(),
                    Target::GroupFacilitators => groups
                        .values()
                        .flat_map(|g| g.facilitators.iter())
                        .filter_map(|f| contacts.get(f))
                        .collect(),
                };
                for c in reached {
                    for via in &st.via {
                        let has = match via.value {
                            Channel::Sms => c.sms.is_some(),
                            Channel::Email => c.email.is_some(),
                            Channel::Webhook => c.webhook.is_some(),
                        };
                        if !has {
                            ok = false;
                            self.diags.error(
                                Place::of(path, t),
                                Some(&owner),
                                format!(
                                    "step {} notifies contact `{}` by {}, but it has no {} address",
                                    n + 1,
                                    c.id,
                                    channel_name(via.value),
                                    channel_name(via.value)
                                ),
                            );
                        }
                    }
                }
                targets.push(target);
            }
            let ack = self.duration(&st.ack_within, path, &owner);
            if let Some(ack) = ack {
                steps.push(Step {
                    targets,
                    via: st.via.iter().map(|v| v.value).collect(),
                    ack_within: ack,
                });
            } else {
                ok = false;
            }
        }
        ok.then(|| Escalation {
            id: id.to_owned(),
            steps,
            repeat: raw.repeat,
        })
    }

    fn test(&mut self, t: &RawTest, path: &Path) -> Option<RuleTest> {
        let owner = format!("test \"{}\"", t.name.value);
        let mut ok = true;
        let start = chrono::DateTime::parse_from_rfc3339(&t.start.value)
            .map_err(|_| {
                self.diags
                    .error(Place::of(path, &t.start), Some(&owner), format!("invalid start instant `{}`", t.start.value))
                    .with_hint("write an RFC 3339 instant with its offset, like `2026-01-05T09:00:00-05:00`");
            })
            .ok();
        if let Some(tz) = &t.member.timezone {
            ok &= self.timezone(tz, path, &owner).is_some();
        }
        for g in &t.member.groups {
            ok &= self.reference("group", g, path, &owner);
        }
        for (n, step) in t.steps.iter().enumerate() {
            let st = &step.value;
            match (&st.advance, &st.reply) {
                (Some(a), None) => ok &= self.duration(a, path, &owner).is_some(),
                (None, Some(_)) => {}
                _ => {
                    ok = false;
                    self.diags.error(
                        Place::of(path, step),
                        Some(&owner),
                        format!("step {} needs exactly one of `advance` or `reply`", n + 1),
                    );
                }
            }
            for m in &st.expect.messages {
                if !self.known("template", &m.value) && !self.known("survey", &m.value) {
                    ok = false;
                    let mut names: Vec<String> = Vec::new();
                    for kind in ["template", "survey"] {
                        names.extend(
                            self.ids
                                .get(kind)
                                .into_iter()
                                .flat_map(|m| m.keys().cloned()),
                        );
                    }
                    let d = self.diags.error(
                        Place::of(path, m),
                        Some(&owner),
                        format!("unknown template or survey `{}`", m.value),
                    );
                    if let Some(h) = did_you_mean(&m.value, names.iter().map(String::as_str)) {
                        d.with_hint(h);
                    }
                }
            }
            for a in &st.expect.alerts {
                ok &= self.reference("alert", a, path, &owner);
            }
        }
        Some(RuleTest {
            name: t.name.value.clone(),
            file: path.to_path_buf(),
            start: start?,
            steps: t.steps.len(),
        })
        .filter(|_| ok)
    }
}

/// A typed answer at the low or high end of what a question accepts.
fn sample_answer(expect: &Expect, low: bool) -> rhai::Dynamic {
    use rhai::Dynamic;
    match expect {
        Expect::Number { min, max, .. } => {
            let v = if low {
                min.unwrap_or(0.0)
            } else {
                max.unwrap_or(10.0)
            };
            if v.fract() == 0.0 {
                Dynamic::from(v as i64)
            } else {
                Dynamic::from(v)
            }
        }
        Expect::Choice(options) => {
            let pick = if low { options.first() } else { options.last() };
            Dynamic::from(pick.cloned().unwrap_or_default())
        }
        Expect::YesNo => Dynamic::from(low),
        Expect::FreeText => Dynamic::from(if low {
            String::new()
        } else {
            "sample answer".to_owned()
        }),
    }
}

/// The word (or single symbol) at a 1-based line and column of `text`.
fn token_at(text: &str, line: usize, column: usize) -> &str {
    let Some(l) = text.lines().nth(line - 1) else {
        return "";
    };
    let Some((start, _)) = l.char_indices().nth(column - 1) else {
        return "";
    };
    let rest = &l[start..];
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let end = match rest.chars().next() {
        Some(c) if word(c) => rest.find(|c: char| !word(c)).unwrap_or(rest.len()),
        Some(c) => c.len_utf8(),
        None => 0,
    };
    &rest[..end]
}

/// How many times `token` occurs in `text` before the 1-based place.
fn occurrences_before(text: &str, token: &str, line: usize, column: usize) -> usize {
    let mut byte = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            byte += l.char_indices().nth(column - 1).map_or(l.len(), |(b, _)| b);
            break;
        }
        byte += l.len();
    }
    text[..byte.min(text.len())].matches(token).count()
}

/// The file text from a place onwards.
fn source_at<'t>(text: &'t str, at: &Place) -> Option<&'t str> {
    let line = text.lines().nth((at.line as usize).checked_sub(1)?)?;
    let (b, _) = line
        .char_indices()
        .nth((at.column as usize).checked_sub(1)?)?;
    Some(&line[b..])
}

/// The 1-based line and column of a byte offset.
fn position_of(text: &str, path: &Path, byte: usize) -> Place {
    let before = &text[..byte.min(text.len())];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
    Place::new(path, line, column)
}

/// STOP, START, HELP and their synonyms (CTIA): never alert keywords.
pub const COMPLIANCE_KEYWORDS: &[&str] = &[
    "stop",
    "stopall",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "optout",
    "opt-out",
    "revoke",
    "start",
    "unstop",
    "yes",
    "subscribe",
    "help",
    "info",
];

/// Whether a group's session pattern has a session on `date` (local).
fn meets_on(spec: &CronSpec, tz: chrono_tz::Tz, date: chrono::NaiveDate) -> bool {
    use chrono::TimeZone;
    let Some(midnight) = tz
        .from_local_datetime(&date.and_time(chrono::NaiveTime::MIN))
        .earliest()
    else {
        return true;
    };
    spec.next_after(&(midnight - chrono::TimeDelta::seconds(1)))
        .is_some_and(|next| next.date_naive() == date)
}

/// The string literals passed to `answer(…)` in a script, each with the
/// 1-based line and column of its `answer`.
fn answer_ids(source: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = source[from..].find("answer(") {
        let at = from + i;
        from = at + "answer(".len();
        let trimmed = source[from..].trim_start();
        if let Some(q) = trimmed.chars().next().filter(|c| *c == '"' || *c == '\'')
            && let Some(end) = trimmed[1..].find(q)
        {
            let before = &source[..at];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            out.push((trimmed[1..1 + end].to_owned(), line, column));
        }
    }
    out
}

fn owner_of_template(name: &str) -> String {
    match name.split('/').collect::<Vec<_>>()[..] {
        ["survey", survey, "reprompt"] => format!("reprompt of survey `{survey}`"),
        ["survey", survey, "thanks"] => format!("thanks of survey `{survey}`"),
        ["survey", survey, question] => format!("question `{question}` of survey `{survey}`"),
        _ => format!("template `{name}`"),
    }
}

fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Sms => "sms",
        Channel::Email => "email",
        Channel::Webhook => "webhook",
    }
}

fn valid_id(id: &str) -> bool {
    id.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_email(e: &str) -> bool {
    match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !e.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// The hours a cron pattern fires at, when its hour field is plain numbers.
fn fixed_hours(pattern: &str) -> Vec<u32> {
    let Some(hours) = pattern.split_whitespace().nth(1) else {
        return Vec::new();
    };
    hours
        .split(',')
        .map(|h| h.parse::<u32>())
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_default()
}

/// Turns serde-saphyr's message into one for a rules author: names the
/// key and echoes the value where the parser only named a type, adds a
/// hint where one helps, and mends the column where it is known to be off.
/// Returns the message, the hint and the column.
pub(crate) fn yaml_message(
    raw: &str,
    source: &str,
    line: u64,
    column: u64,
) -> (String, Option<String>, u64) {
    if let Some(rest) = raw.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return (
            format!("duplicate key `{key}`"),
            Some("each key may appear once in a mapping; remove or rename one".to_owned()),
            column,
        );
    }
    if let Some(rest) = raw.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once("`, expected one of ")
    {
        let hint = did_you_mean(field, expected.split(", "));
        return (raw.to_owned(), hint, column);
    }
    if raw.contains("tabs disallowed") {
        // The parser names the column after the tab.
        return (
            raw.to_owned(),
            Some("indent YAML with spaces, not tabs".to_owned()),
            column.saturating_sub(1).max(1),
        );
    }
    if raw.contains("found a tab") {
        return (
            raw.to_owned(),
            Some("indent YAML with spaces, not tabs; the tab may be on the next line".to_owned()),
            column,
        );
    }
    if raw.contains("illegal placement of ':'") || raw.contains("mapping values are not allowed") {
        return (
            raw.to_owned(),
            Some("check the indentation of this line and the one above; an unclosed `[` or `{` earlier in the file has the same effect".to_owned()),
            column,
        );
    }
    let expected = match raw {
        "invalid boolean" => Some("true or false"),
        "expected string scalar" => Some("text"),
        "invalid u8" | "invalid u16" | "invalid u32" | "invalid u64" | "invalid i8"
        | "invalid i16" | "invalid i32" | "invalid i64" => Some("a whole number"),
        "invalid f32" | "invalid f64" => Some("a number"),
        "expected sequence start" => Some("a list, like `[a, b]` or `- a` lines"),
        "expected mapping start" => Some("a mapping of `key: value` lines"),
        _ => None,
    };
    if let Some(expected) = expected
        && let Some((key, value)) = key_and_value(source, line, column)
    {
        return (
            format!("invalid value `{value}` for `{key}`: expected {expected}"),
            None,
            column,
        );
    }
    if let Some(expected) = expected {
        return (format!("invalid value: expected {expected}"), None, column);
    }
    (raw.to_owned(), None, column)
}

/// The key a value belongs to and the value's text on its line, read from
/// the source: `    max_reprompts: twice` at the `t` gives
/// (`max_reprompts`, `twice`).
fn key_and_value(source: &str, line: u64, column: u64) -> Option<(String, String)> {
    let text = source.lines().nth((line as usize).checked_sub(1)?)?;
    let (at, _) = text.char_indices().nth((column as usize).checked_sub(1)?)?;
    let before = &text[..at];
    let colon = before.rfind(':')?;
    let key = before[..colon].rsplit(['{', ',', ' ', '-']).next()?.trim();
    let value = text[at..].split(" #").next()?.trim_end();
    let value = value.strip_suffix(['}', ',']).unwrap_or(value).trim_end();
    (!key.is_empty() && !value.is_empty()).then(|| (key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_hours_reads_plain_hour_fields_only() {
        assert_eq!(fixed_hours("0 12 * * THU"), vec![12]);
        assert_eq!(fixed_hours("0 3,15 * * *"), vec![3, 15]);
        assert!(fixed_hours("0 */2 * * *").is_empty());
    }

    #[test]
    fn tokens_and_positions_inside_values() {
        assert_eq!(token_at("Hi {{ member.frist }}", 1, 7), "member.frist");
        assert_eq!(token_at("a\nb and c", 2, 3), "and");
        assert_eq!(token_at("x == (", 1, 6), "(");
        assert_eq!(occurrences_before("a and b and c", "and", 1, 9), 1);
        let p = position_of("one\ntwo three", Path::new("f"), 8);
        assert_eq!((p.line, p.column), (2, 5));
    }

    #[test]
    fn type_errors_name_the_key_and_echo_the_value() {
        let src = "surveys:\n  s:\n    max_reprompts: twice  # no\n  t: { enabled: maybe }\n";
        assert_eq!(
            yaml_message("invalid u32", src, 3, 20).0,
            "invalid value `twice` for `max_reprompts`: expected a whole number"
        );
        assert_eq!(
            yaml_message("invalid boolean", src, 4, 17).0,
            "invalid value `maybe` for `enabled`: expected true or false"
        );
        let (_, hint, _) = yaml_message(
            "unknown field `expire_after`, expected one of id, expires_after",
            "",
            1,
            1,
        );
        assert_eq!(hint.as_deref(), Some("did you mean `expires_after`?"));
    }

    #[test]
    fn answer_ids_are_read_from_string_literals() {
        let ids = answer_ids("answer(\"mood\") <= 3 &&\n  answer( 'sleep' ) < 2 || answer(x)");
        assert_eq!(
            ids,
            vec![("mood".to_owned(), 1, 1), ("sleep".to_owned(), 2, 3)]
        );
    }

    #[test]
    fn ids_are_slugs() {
        assert!(valid_id("tuesday-anxiety_2"));
        assert!(!valid_id("tuesday anxiety"));
        assert!(!valid_id("a/b"));
    }
}
