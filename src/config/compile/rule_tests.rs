//! `tests:`: rule unit tests, validated here and run by `hearth test`.

use std::path::Path;

use super::Compiler;
use crate::config::diag::Place;
use crate::config::raw::RawTest;
use crate::rules::RuleTest;
use crate::text::did_you_mean;

impl Compiler<'_> {
    pub(super) fn test(&mut self, t: &RawTest, path: &Path) -> Option<RuleTest> {
        let owner = format!("test \"{}\"", t.name.value);
        let mut ok = true;
        if t.name.value.trim().is_empty() {
            ok = false;
            self.diags
                .error(
                    Place::of(path, &t.name),
                    Some(&owner),
                    "test name must not be empty",
                )
                .with_hint(
                    "name the test for what it proves, like `crisis language raises the alert`",
                );
        }
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
                if !self.known("template", &m.value)
                    && !self.known("survey", &m.value)
                    && !self.maybe_unparsed("template or survey", &m.value)
                {
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
