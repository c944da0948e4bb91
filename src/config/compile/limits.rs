//! `limits:`: per-member caps on routine messages, one document for the
//! whole directory.

use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use super::{Compiler, fingerprint};
use crate::config::diag::Place;
use crate::config::raw::{RawFile, RawLimits};
use crate::rules::{Inventory, Limits};

impl Compiler<'_> {
    /// The directory's `limits:`, if any. A second document is an error
    /// naming where the first is; the first is still checked.
    pub(super) fn limits(
        &mut self,
        files: &[(PathBuf, RawFile)],
        inventory: &mut Inventory,
    ) -> Option<Limits> {
        let mut found: Vec<(&Path, &Spanned<RawLimits>)> = files
            .iter()
            .filter_map(|(path, f)| f.limits.as_ref().map(|l| (path.as_path(), l)))
            .collect();
        let (first_path, first) = *found.first()?;
        let first_place = Place::of(first_path, first);
        for (path, other) in found.drain(1..) {
            self.diags
                .error(
                    Place::of(path, other),
                    None,
                    format!("a second `limits:` document; the first is at {first_place}"),
                )
                .with_hint("keep one `limits:` for the whole rules directory");
        }
        inventory.insert(
            ("limits", "limits".to_owned()),
            fingerprint(&first.value, ""),
        );
        let per_day = self.cap(first_path, "per_day", first.value.per_day.as_ref());
        let per_week = self.cap(first_path, "per_week", first.value.per_week.as_ref());
        let (per_day, per_week) = (per_day?, per_week?);
        if per_day.is_none() && per_week.is_none() {
            self.diags
                .warning(first_place.clone(), None, "`limits:` sets no cap")
                .with_hint("give `per_day`, `per_week` or both, like `limits: { per_day: 1, per_week: 3 }`");
        }
        if let (Some(day), Some(week)) = (per_day, per_week)
            && day > week
        {
            self.diags
                .warning(
                    first_place,
                    None,
                    format!(
                        "`limits:` allows {day} a day but only {week} a week: the daily cap never applies"
                    ),
                )
                .with_hint(format!("lower `per_day` to {week} or less, or raise `per_week`"));
        }
        Some(Limits { per_day, per_week })
    }

    /// One cap: absent (no cap), or a whole number of one or more.
    /// `None` when it is invalid (reported).
    fn cap(&mut self, path: &Path, key: &str, value: Option<&Spanned<i64>>) -> Option<Option<u32>> {
        let Some(value) = value else {
            return Some(None);
        };
        match u32::try_from(value.value) {
            Ok(n) if n > 0 => Some(Some(n)),
            _ => {
                let d = self.diags.error(
                    Place::of(path, value),
                    None,
                    format!(
                        "`limits: {key}` is {}; a cap is a whole number of 1 or more",
                        value.value
                    ),
                );
                if value.value == 0 {
                    d.with_hint(format!(
                        "leave `{key}` out for no cap; `0` would block every routine message"
                    ));
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::groups::tests::{compile_yaml, lines};
    use crate::config::compile::{Source, compile};
    use crate::config::options::CompileOptions;

    #[test]
    fn limits_compile_into_the_rule_set_and_its_inventory() {
        let c = compile_yaml("limits: { per_day: 1, per_week: 3 }\n");
        let shown = lines(&c);
        let rules = c.rules.unwrap_or_else(|| panic!("{shown:?}"));
        let limits = rules.limits.expect("limits");
        assert_eq!((limits.per_day, limits.per_week), (Some(1), Some(3)));
        assert!(
            rules
                .inventory
                .contains_key(&("limits", "limits".to_owned()))
        );
        let c = compile_yaml("limits:\n  per_week: 2\n");
        let limits = c.rules.expect("rules").limits.expect("limits");
        assert_eq!((limits.per_day, limits.per_week), (None, Some(2)));
        assert!(
            compile_yaml("groups: []\n")
                .rules
                .expect("rules")
                .limits
                .is_none()
        );
    }

    #[test]
    fn a_change_of_limits_shows_in_the_reload_diff() {
        let inventory = |text: &str| compile_yaml(text).rules.expect("rules").inventory;
        let one = inventory("limits: { per_day: 1 }\n");
        let two = inventory("limits: { per_day: 2 }\n");
        let none = inventory("groups: []\n");
        let changed = crate::config::diff::diff(&one, &two);
        assert_eq!(changed.kinds["limits"].changed, ["limits"]);
        assert_eq!(
            crate::config::diff::diff(&none, &one).kinds["limits"].added,
            ["limits"]
        );
        assert_eq!(
            crate::config::diff::diff(&one, &none).kinds["limits"].removed,
            ["limits"]
        );
        assert!(crate::config::diff::diff(&one, &inventory("limits: {per_day: 1}\n")).is_empty());
    }

    #[test]
    fn a_zero_or_negative_cap_is_an_error_and_zero_gets_a_hint() {
        let c = compile_yaml("limits: { per_day: 0, per_week: -2 }\n");
        assert!(c.rules.is_none());
        assert_eq!(
            lines(&c),
            [
                "error: `limits: per_day` is 0; a cap is a whole number of 1 or more | hint: leave `per_day` out for no cap; `0` would block every routine message",
                "error: `limits: per_week` is -2; a cap is a whole number of 1 or more",
            ]
        );
    }

    #[test]
    fn an_unknown_key_in_limits_is_an_error() {
        let c = compile_yaml("limits: { per_day: 1, per_month: 10 }\n");
        assert!(c.rules.is_none());
        assert!(
            lines(&c).iter().any(|l| l.contains("per_month")),
            "{:?}",
            lines(&c)
        );
    }

    #[test]
    fn more_a_day_than_a_week_or_no_cap_at_all_is_a_warning() {
        let c = compile_yaml("limits: { per_day: 5, per_week: 3 }\n");
        assert!(c.rules.is_some());
        assert_eq!(
            lines(&c),
            [
                "warning: `limits:` allows 5 a day but only 3 a week: the daily cap never applies | hint: lower `per_day` to 3 or less, or raise `per_week`"
            ]
        );
        let c = compile_yaml("limits: {}\n");
        assert!(
            lines(&c)[0].starts_with("warning: `limits:` sets no cap"),
            "{:?}",
            lines(&c)
        );
    }

    #[test]
    fn a_second_limits_document_is_an_error_naming_both_places() {
        let source = |path: &str, text: &str| Source {
            path: path.into(),
            text: text.to_owned(),
        };
        let c = compile(
            &[
                source("caps.yaml", "limits: { per_day: 1 }\n"),
                source("more.yaml", "\n\nlimits: { per_week: 3 }\n"),
            ],
            &BTreeMap::new(),
            &CompileOptions::default(),
        );
        assert!(c.rules.is_none());
        let shown: Vec<String> = c.diagnostics.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            shown,
            [
                "more.yaml:3:9: error: a second `limits:` document; the first is at caps.yaml:1:9\n  hint: keep one `limits:` for the whole rules directory"
            ]
        );
    }
}
