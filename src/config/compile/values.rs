//! Values every document kind shares, parsed and reported alike:
//! durations, timezones, `when:` expressions and the question ids their
//! `answer("…")` calls name.

use std::path::Path;

use serde_saphyr::Spanned;

use super::Compiler;
use super::alerts::answer_ids;
use crate::config::diag::Place;
use crate::domain::{self, Duration};
use crate::rules::script::ScriptKind;
use crate::text::did_you_mean;

impl Compiler<'_> {
    /// Reports a domain parser's error at `at`, with its hint when it has one.
    pub(super) fn invalid(&mut self, at: Place, owner: &str, e: domain::Invalid) {
        let d = self.diags.error(at, Some(owner), e.message);
        if let Some(hint) = e.hint {
            d.with_hint(hint);
        }
    }

    pub(super) fn duration(
        &mut self,
        value: &Spanned<String>,
        path: &Path,
        owner: &str,
    ) -> Option<Duration> {
        Duration::parse(&value.value)
            .map_err(|e| self.invalid(Place::of(path, value), owner, e))
            .ok()
    }

    pub(super) fn timezone(
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
    pub(super) fn expression(
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
    pub(super) fn check_answer_ids(
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
}
