//! `alerts:`: keywords, `when:` expressions and `script:` files.

use std::path::{Component, Path, PathBuf};

use serde_saphyr::Spanned;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::RawAlert;
use crate::domain::CronSpec;
use crate::rules::script::ScriptKind;
use crate::rules::{Alert, Severity};
use crate::text::{did_you_mean, sha256_hex};

impl Compiler<'_> {
    /// Returns the alert and the hash of its script file ("" without one).
    pub(super) fn alert(&mut self, a: &RawAlert, path: &Path) -> Option<(Alert, String)> {
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
        let (keywords, keywords_ok) = self.keywords(a, path, &owner);
        ok &= keywords_ok;
        let when = match &a.when {
            Some(w) => {
                let ast = self.alert_when(w, path, &owner);
                ok &= ast.is_some();
                ast
            }
            None => None,
        };
        let (script, script_hash) = match &a.script {
            Some(s) => match self.script(s, path, &owner) {
                Some((rel, ast, hash)) => (Some((rel, ast)), hash),
                None => {
                    ok = false;
                    (None, String::new())
                }
            },
            None => (None, String::new()),
        };
        let (targets_ok, realert) = self.alert_targets(
            a.reply.as_ref(),
            a.escalate.as_ref(),
            a.realert.as_ref(),
            path,
            &owner,
        );
        ok &= targets_ok;
        let every = match &a.every {
            Some(e) => {
                let every = self.every(a, e, path, &owner);
                ok &= every.is_some();
                every.flatten()
            }
            None => None,
        };
        if let (Some(e), true) = (&every, ok) {
            self.warn_answer_in_scheduled(a, e, script.as_ref().map(|(rel, _)| rel), path, &owner);
        }
        if a.severity == Severity::Critical && a.escalate.is_none() {
            self.warn_unescalated(a, path, &owner);
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
            every,
        };
        ok.then_some((alert, script_hash))
    }

    /// A critical alert that tells no person.
    fn warn_unescalated(&mut self, a: &RawAlert, path: &Path, owner: &str) {
        self.diags
            .warning(
                Place::of(path, &a.id),
                Some(owner),
                format!("critical alert `{}` escalates to nobody", a.id.value),
            )
            .with_hint("add `escalate:` so a person is told");
    }

    /// `keywords:`, lowercased; none empty, none a compliance keyword.
    fn keywords(&mut self, a: &RawAlert, path: &Path, owner: &str) -> (Vec<String>, bool) {
        let mut ok = true;
        let mut keywords = Vec::new();
        for k in &a.keywords {
            let kw = k.value.trim().to_lowercase();
            if kw.is_empty() {
                ok = false;
                self.diags
                    .error(Place::of(path, k), Some(owner), "empty keyword");
            } else if COMPLIANCE_KEYWORDS.contains(&kw.as_str()) {
                ok = false;
                self.diags
                    .error(
                        Place::of(path, k),
                        Some(owner),
                        format!("`{}` is a compliance keyword and cannot be an alert keyword", k.value),
                    )
                    .with_hint("STOP, START, HELP and their synonyms always opt out, opt in or get help; an alert on them would hijack that");
            } else {
                keywords.push(kw);
            }
        }
        (keywords, ok)
    }

    /// A `when:` expression, its `answer("…")` ids checked.
    fn alert_when(&mut self, w: &Spanned<String>, path: &Path, owner: &str) -> Option<rhai::AST> {
        let ast = self.expression(ScriptKind::Alert, w, path, owner)?;
        self.check_answer_ids(
            &w.value,
            |c, l, col| c.place_in_value(path, w, l, col),
            owner,
        );
        Some(ast)
    }

    /// `every:`: the cron pattern of a scheduled alert, which has no reply
    /// to match keywords against or to answer. `None` after an error.
    fn every(
        &mut self,
        a: &RawAlert,
        every: &Spanned<String>,
        path: &Path,
        owner: &str,
    ) -> Option<Option<CronSpec>> {
        let mut ok = true;
        if let Some(first) = a.keywords.first() {
            ok = false;
            self.diags
                .error(
                    Place::of(path, first),
                    Some(owner),
                    format!(
                        "scheduled alert `{}` (`every: \"{}\"`) has `keywords:`, but there is no reply to match them against",
                        a.id.value, every.value
                    ),
                )
                .with_hint("a scheduled alert reads `history` and `engagement` in a `when:` or `script:`; put keywords in an alert without `every:`");
        } else if a.when.is_none() && a.script.is_none() {
            // No matcher at all: "has nothing to match" is reported.
            ok = false;
        }
        if let Some(r) = &a.reply {
            ok = false;
            self.diags
                .error(
                    Place::of(path, r),
                    Some(owner),
                    format!(
                        "scheduled alert `{}` has `reply: {}`, but it answers no text, so nothing would be sent",
                        a.id.value, r.value
                    ),
                )
                .with_hint("drop `reply:`; `escalate:` tells staff, who can reach the member");
        }
        let spec = match CronSpec::parse(&every.value) {
            Ok(spec) => Some(spec),
            Err(e) => {
                let message = format!("`every:` of alert `{}`: {}", a.id.value, e.message);
                let d = self
                    .diags
                    .error(Place::of(path, every), Some(owner), message);
                if let Some(h) = e.hint {
                    d.with_hint(h);
                }
                None
            }
        };
        (ok && spec.is_some()).then_some(spec)
    }

    /// `answer("id")` in a scheduled alert is `()` on every run: there is
    /// no survey reply. A warning, at the first call.
    fn warn_answer_in_scheduled(
        &mut self,
        a: &RawAlert,
        every: &CronSpec,
        script: Option<&PathBuf>,
        path: &Path,
        owner: &str,
    ) {
        let in_when = a.when.as_ref().and_then(|w| {
            answer_ids(&w.value)
                .into_iter()
                .next()
                .map(|(id, l, c)| (id, self.place_in_value(path, w, l, c)))
        });
        let found = in_when.or_else(|| {
            let rel = script?;
            let text = self.scripts.get(rel)?;
            answer_ids(text)
                .into_iter()
                .next()
                .map(|(id, l, c)| (id, Place::new(rel, l as u64, c as u64)))
        });
        if let Some((id, place)) = found {
            self.diags
                .warning(
                    place,
                    Some(owner),
                    format!(
                        "scheduled alert `{}` (`every: \"{}\"`) reads `answer(\"{id}\")`, which is always `()` there: a scheduled run answers no survey",
                        a.id.value,
                        every.pattern()
                    ),
                )
                .with_hint("read earlier answers from `history` (oldest first), like `history.filter(|h| h.question == \"mood\")`");
        }
    }

    /// A `script:` path: a `.rhai` file inside the rules directory,
    /// without `./` parts.
    fn script_path(&mut self, s: &Spanned<String>, path: &Path, owner: &str) -> Option<PathBuf> {
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
        Some(
            rel.components()
                .filter(|c| !matches!(c, Component::CurDir))
                .collect(),
        )
    }

    /// Reads and compiles an alert script; errors point into the `.rhai` file.
    pub(super) fn script(
        &mut self,
        s: &Spanned<String>,
        path: &Path,
        owner: &str,
    ) -> Option<(PathBuf, rhai::AST, String)> {
        let rel = self.script_path(s, path, owner)?;
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
                match self
                    .sandbox
                    .probe(ScriptKind::Alert, &ast, &text, &self.answer_samples)
                {
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

/// The string literals passed to `answer(…)` in a script, each with the
/// 1-based line and column of its `answer`; calls inside comments and
/// strings do not count.
pub(super) fn answer_ids(source: &str) -> Vec<(String, usize, usize)> {
    crate::rules::script::answer_calls(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_ids_are_read_from_string_literals() {
        let ids = answer_ids(
            "answer(\"mood\") <= 3 &&\n  answer( 'sleep' ) < 2 || answer(x)\n// answer(\"old\")\n\"answer(\\\"no\\\")\"",
        );
        assert_eq!(
            ids,
            vec![("mood".to_owned(), 1, 1), ("sleep".to_owned(), 2, 3)]
        );
    }
}
