//! `groups:`: timezone, session pattern, cancelled dates, extra sessions,
//! facilitators.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::{RawExtraSession, RawGroup};
use crate::domain::CronSpec;
use crate::domain::{self, Duration};
use crate::rules::{ExtraSession, Group};
use crate::schedule::{calendar, parse_date};

impl Compiler<'_> {
    pub(super) fn group(&mut self, g: &RawGroup, path: &Path) -> Option<Group> {
        let owner = rule("group", &g.id.value);
        let timezone = self.timezone(&g.timezone, path, &owner);
        let sessions = CronSpec::parse(&g.sessions.value.cron.value)
            .map_err(|e| self.invalid(Place::of(path, &g.sessions.value.cron), &owner, e))
            .ok();
        let duration = self.duration(&g.sessions.value.duration, path, &owner);
        let mut cancelled = BTreeSet::new();
        let mut ok = true;
        for d in &g.sessions.value.cancelled {
            match parse_date(&d.value) {
                Ok(date) => {
                    if let (Some(tz), Some(spec)) = (&timezone, &sessions)
                        && !crate::schedule::calendar::meets_on(spec, *tz, date)
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
        let mut extra = Vec::new();
        for e in &g.sessions.value.extra {
            match self.extra_session(&g.id.value, &e.value, path) {
                Some(session) => extra.push((e, session)),
                None => ok = false,
            }
        }
        extra.sort_by_key(|(_, s)| (s.date, s.at));
        if let (Some(tz), Some(spec)) = (&timezone, &sessions) {
            self.extra_overlaps(&g.id.value, &extra, &cancelled, spec, *tz, path);
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
            extra: extra.into_iter().map(|(_, s)| s).collect(),
            facilitators: g.facilitators.iter().map(|f| f.value.clone()).collect(),
        })
        .filter(|_| ok)
    }

    fn extra_session(
        &mut self,
        group: &str,
        e: &RawExtraSession,
        path: &Path,
    ) -> Option<ExtraSession> {
        let owner = rule("group", group);
        let date = match parse_date(&e.date.value) {
            Ok(date) => Some(date),
            Err(_) => {
                let d = self.diags.error(
                    Place::of(path, &e.date),
                    Some(&owner),
                    format!(
                        "group `{group}`: extra session date `{}` is not a date: expected `YYYY-MM-DD`, like `2026-12-23`",
                        e.date.value
                    ),
                );
                if let Some(fixed) = date_hint(&e.date.value) {
                    d.with_hint(format!("write `{fixed}`"));
                }
                None
            }
        };
        let on = date.map_or_else(|| e.date.value.clone(), |d| d.to_string());
        let at = match domain::parse_time_of_day(&e.at.value) {
            Ok(at) => Some(at),
            Err(err) => {
                let d = self.diags.error(
                    Place::of(path, &e.at),
                    Some(&owner),
                    format!("group `{group}`: extra session on {on}: {}", err.message),
                );
                if let Some(hint) = err.hint {
                    d.with_hint(hint);
                }
                None
            }
        };
        let duration = match &e.duration {
            None => Some(None),
            Some(text) => match Duration::parse(&text.value) {
                Ok(d) => Some(Some(d)),
                Err(err) => {
                    let d = self.diags.error(
                        Place::of(path, text),
                        Some(&owner),
                        format!("group `{group}`: extra session on {on}: {}", err.message),
                    );
                    if let Some(hint) = err.hint {
                        d.with_hint(hint);
                    }
                    None
                }
            },
        };
        Some(ExtraSession {
            date: date?,
            at: at?,
            duration: duration?,
        })
    }

    /// Warns about an extra session listed twice, or at the very start of
    /// a regular (not cancelled) session: it adds nothing.
    fn extra_overlaps(
        &mut self,
        group: &str,
        extra: &[(&serde_saphyr::Spanned<RawExtraSession>, ExtraSession)],
        cancelled: &BTreeSet<NaiveDate>,
        spec: &CronSpec,
        tz: Tz,
        path: &Path,
    ) {
        let owner = rule("group", group);
        let mut seen = BTreeSet::new();
        for (raw, e) in extra {
            let when = format!("{} at {}", e.date, e.at.format("%H:%M"));
            if !seen.insert((e.date, e.at)) {
                self.diags
                    .warning(
                        Place::of(path, raw),
                        Some(&owner),
                        format!("group `{group}` lists the extra session on {when} twice"),
                    )
                    .with_hint("remove one of them");
                continue;
            }
            if cancelled.contains(&e.date) {
                continue;
            }
            let start = crate::domain::local_time::resolve_local(tz, e.date, e.at);
            let Some(midnight) = tz
                .from_local_datetime(&e.date.and_time(chrono::NaiveTime::MIN))
                .earliest()
            else {
                continue;
            };
            let regular = calendar::occurrences(spec, tz, midnight.with_timezone(&Utc))
                .take_while(|t| t.date_naive() <= e.date)
                .any(|t| t == start);
            if regular {
                self.diags
                    .warning(
                        Place::of(path, raw),
                        Some(&owner),
                        format!(
                            "group `{group}`: the extra session on {when} is a regular session already"
                        ),
                    )
                    .with_hint(format!(
                        "its sessions follow `{}`; remove the extra session",
                        spec.pattern()
                    ));
            }
        }
    }
}

/// The `YYYY-MM-DD` form of a date written another unambiguous way:
/// `2026/12/23`, `2026.12.23`, `23.12.2026` or `12/23/2026` where the
/// day is over 12.
fn date_hint(text: &str) -> Option<NaiveDate> {
    let t = text.trim();
    for format in ["%Y/%m/%d", "%Y.%m.%d", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, format) {
            return Some(d);
        }
    }
    let parts: Vec<&str> = t.split(['/', '.', '-']).collect();
    if let [a, b, y] = parts[..]
        && y.len() == 4
    {
        let (a, b, y): (u32, u32, i32) = (a.parse().ok()?, b.parse().ok()?, y.parse().ok()?);
        // Only when one reading is impossible: 23/12 is a day first.
        return match (a > 12, b > 12) {
            (true, false) => NaiveDate::from_ymd_opt(y, b, a),
            (false, true) => NaiveDate::from_ymd_opt(y, a, b),
            _ => None,
        };
    }
    None
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::config::compile::{Compiled, Source, compile};
    use crate::config::options::CompileOptions;

    /// Compiles one `rules.yaml` with the default options.
    pub(in crate::config::compile) fn compile_yaml(text: &str) -> Compiled {
        compile(
            &[Source {
                path: PathBuf::from("rules.yaml"),
                text: text.to_owned(),
            }],
            &BTreeMap::new(),
            &CompileOptions::default(),
        )
    }

    /// Every diagnostic, one line each, hint after ` | hint: `.
    pub(in crate::config::compile) fn lines(c: &Compiled) -> Vec<String> {
        c.diagnostics
            .iter()
            .map(|d| match &d.hint {
                Some(h) => format!("{}: {} | hint: {h}", d.level, d.message),
                None => format!("{}: {}", d.level, d.message),
            })
            .collect()
    }

    fn group_with(extra: &str) -> String {
        format!(
            "groups:\n  - id: tuesday-anxiety\n    name: Tuesday Anxiety\n    timezone: America/New_York\n    sessions:\n      cron: \"0 18 * * TUE\"\n      duration: 90m\n      cancelled: [\"2026-12-29\"]\n      extra:\n{extra}"
        )
    }

    #[test]
    fn extra_sessions_compile_in_date_order_with_time_as_another_name_for_at() {
        let c = compile_yaml(&group_with(
            "        - { date: \"2026-12-31\", time: \"10:00\" }\n        - { date: \"2026-12-23\", at: \"18:00\", duration: 60m }\n",
        ));
        let rules = c
            .rules
            .as_ref()
            .unwrap_or_else(|| panic!("{:?}", lines(&c)));
        let g = &rules.groups["tuesday-anxiety"];
        let got: Vec<(String, String, Option<u64>)> = g
            .extra
            .iter()
            .map(|e| {
                (
                    e.date.to_string(),
                    e.at.to_string(),
                    e.duration.map(|d| d.as_secs()),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("2026-12-23".into(), "18:00:00".into(), Some(3600)),
                ("2026-12-31".into(), "10:00:00".into(), None),
            ]
        );
        assert!(
            lines(&c).iter().all(|l| !l.contains("extra")),
            "{:?}",
            lines(&c)
        );
    }

    #[test]
    fn a_bad_extra_session_names_the_group_and_the_value() {
        let c = compile_yaml(&group_with(
            "        - { date: \"23/12/2026\", at: \"18:00\" }\n        - { date: \"2026-12-24\", at: \"6pm\" }\n        - { date: \"2026-12-25\", at: \"18:00\", duration: 0m }\n        - { date: \"2026-12-26\", at: \"18:00\", duration: soon }\n",
        ));
        assert!(c.rules.is_none());
        let l = lines(&c);
        assert!(l.contains(&"error: group `tuesday-anxiety`: extra session date `23/12/2026` is not a date: expected `YYYY-MM-DD`, like `2026-12-23` | hint: write `2026-12-23`".to_owned()), "{l:?}");
        assert!(
            l.iter().any(|d| d.starts_with("error: group `tuesday-anxiety`: extra session on 2026-12-24: invalid time of day `6pm`") && d.ends_with("hint: write `18:00`")),
            "{l:?}"
        );
        assert!(
            l.iter().any(|d| d.starts_with(
                "error: group `tuesday-anxiety`: extra session on 2026-12-25: invalid duration `0m`"
            )),
            "{l:?}"
        );
        assert!(
            l.iter().any(|d| d
                .starts_with("error: group `tuesday-anxiety`: extra session on 2026-12-26:")
                && d.contains("soon")),
            "{l:?}"
        );
    }

    #[test]
    fn an_unknown_key_in_an_extra_session_is_an_error() {
        let c = compile_yaml(&group_with(
            "        - { date: \"2026-12-23\", at: \"18:00\", room: 4 }\n",
        ));
        assert!(c.rules.is_none());
        assert!(
            lines(&c).iter().any(|l| l.contains("room")),
            "{:?}",
            lines(&c)
        );
    }

    #[test]
    fn an_extra_session_that_is_a_regular_one_or_listed_twice_is_a_warning() {
        let c = compile_yaml(&group_with(
            "        - { date: \"2026-12-22\", at: \"18:00\" }\n        - { date: \"2026-12-23\", at: \"18:00\" }\n        - { date: \"2026-12-23\", at: \"18:00\" }\n        - { date: \"2026-12-29\", at: \"18:00\" }\n",
        ));
        assert!(c.rules.is_some(), "{:?}", lines(&c));
        let l = lines(&c);
        assert!(l.contains(&"warning: group `tuesday-anxiety`: the extra session on 2026-12-22 at 18:00 is a regular session already | hint: its sessions follow `0 18 * * TUE`; remove the extra session".to_owned()), "{l:?}");
        assert!(l.contains(&"warning: group `tuesday-anxiety` lists the extra session on 2026-12-23 at 18:00 twice | hint: remove one of them".to_owned()), "{l:?}");
        // On a cancelled date it replaces the cancelled session: no warning.
        assert!(!l.iter().any(|d| d.contains("2026-12-29")), "{l:?}");
    }

    #[test]
    fn date_hints_only_where_the_reading_is_certain() {
        let d = |t| date_hint(t).map(|d| d.to_string());
        assert_eq!(d("2026/12/23").as_deref(), Some("2026-12-23"));
        assert_eq!(d("12/23/2026").as_deref(), Some("2026-12-23"));
        assert_eq!(d("23.12.2026").as_deref(), Some("2026-12-23"));
        assert_eq!(d("03/04/2026"), None);
        assert_eq!(d("tomorrow"), None);
    }
}
