//! The id registry: every rule's id defined once (duplicates and bad ids
//! reported at their place), and every reference checked against it with
//! a suggestion for a near miss.

use std::path::Path;

use serde_saphyr::Spanned;

use super::{Compiler, rule, valid_id};
use crate::config::diag::Place;
use crate::rules::ALL_SEGMENT;
use crate::text::did_you_mean;

impl Compiler<'_> {
    /// Registers an id; a duplicate is an error naming both places.
    pub(super) fn define(&mut self, kind: &'static str, id: &Spanned<String>, path: &Path) -> bool {
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

    pub(super) fn known(&self, kind: &'static str, id: &str) -> bool {
        self.ids.get(kind).is_some_and(|m| m.contains_key(id))
            || (kind == "segment" && id == ALL_SEGMENT)
            || self.failed_ids.contains(&(kind, id.to_owned()))
    }

    /// Whether an unknown id may be defined in a file that could not be
    /// parsed; if so it is noted once at the end instead of reported.
    pub(super) fn maybe_unparsed(&mut self, kind: &'static str, id: &str) -> bool {
        if self.unparsed.is_empty() {
            return false;
        }
        self.unchecked.insert(format!("{kind} `{id}`"));
        true
    }

    /// One note naming what could not be checked because a file could not
    /// be parsed.
    pub(super) fn note_unchecked(&mut self) {
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
    /// What an alert (or a survey item's alert) points at: its `reply:`
    /// template and `escalate:` policy must exist, its `realert:` must be
    /// a duration. Whether all are good, and the re-alert window.
    pub(super) fn alert_targets(
        &mut self,
        reply: Option<&Spanned<String>>,
        escalate: Option<&Spanned<String>>,
        realert: Option<&Spanned<String>>,
        path: &Path,
        owner: &str,
    ) -> (bool, Option<crate::domain::Duration>) {
        let mut ok = true;
        if let Some(r) = reply {
            ok &= self.reference("template", r, path, owner);
        }
        if let Some(e) = escalate {
            ok &= self.reference("escalation", e, path, owner);
        }
        let realert = realert.and_then(|r| {
            let d = self.duration(r, path, owner);
            ok &= d.is_some();
            d
        });
        (ok, realert)
    }

    pub(super) fn reference(
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
}
