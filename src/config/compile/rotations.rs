//! `rotations:`: weekly shifts in one timezone and dated overrides, the
//! targets of `notify: [{ on_call: ID }]`.
//!
//! Compiled before escalations, so an `on_call` reference and the
//! channels of everyone in the rotation can be checked. A rotation that
//! leaves part of the week with nobody on call is a warning, naming the
//! first gap.

use std::path::Path;

use chrono::{NaiveDateTime, NaiveTime, Weekday};
use serde_saphyr::Spanned;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::{RawOverride, RawRotation, RawShift};
use crate::domain;
use crate::rules::{Override, Rotation, Shift};
use crate::text::did_you_mean;

const DAY_NAMES: [(&str, &str, Weekday); 7] = [
    ("mon", "monday", Weekday::Mon),
    ("tue", "tuesday", Weekday::Tue),
    ("wed", "wednesday", Weekday::Wed),
    ("thu", "thursday", Weekday::Thu),
    ("fri", "friday", Weekday::Fri),
    ("sat", "saturday", Weekday::Sat),
    ("sun", "sunday", Weekday::Sun),
];

const MINUTES_PER_DAY: usize = 24 * 60;
const MINUTES_PER_WEEK: usize = 7 * MINUTES_PER_DAY;

/// `mon`…`sun` or the full names, in any case.
fn parse_day(text: &str) -> Option<Weekday> {
    let t = text.trim().to_lowercase();
    DAY_NAMES
        .iter()
        .find(|(short, long, _)| t == *short || t == *long)
        .map(|(_, _, day)| *day)
}

/// A hint for a day that is not one: the list a shorthand stands for, a
/// near miss, or the list of days.
fn day_hint(text: &str) -> String {
    let t = text.trim().to_lowercase();
    let list = match t.trim_end_matches('s') {
        "weekday" | "workday" => Some("[mon, tue, wed, thu, fri]"),
        "weekend" => Some("[sat, sun]"),
        "daily" | "everyday" | "every day" | "all" | "day" => {
            Some("[mon, tue, wed, thu, fri, sat, sun]")
        }
        _ => None,
    };
    if let Some(list) = list {
        return format!("list the days: `days: {list}`");
    }
    did_you_mean(&t, DAY_NAMES.iter().flat_map(|(s, l, _)| [*s, *l])).unwrap_or_else(|| {
        "days are mon, tue, wed, thu, fri, sat, sun (or their full names)".to_owned()
    })
}

/// A local date and time, `2026-12-24T17:00` (a space for the `T` and
/// seconds are accepted too), in years 1970 to 9999 so every later
/// conversion to an instant stays in range.
fn parse_local(text: &str) -> Option<NaiveDateTime> {
    use chrono::Datelike;
    let t = text.trim();
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
    .filter(|d| (1970..=9999).contains(&d.year()))
}

impl Compiler<'_> {
    pub(super) fn rotation(
        &mut self,
        id_at: &Spanned<String>,
        raw: &RawRotation,
        path: &Path,
    ) -> Option<Rotation> {
        let id = id_at.value.as_str();
        let owner = rule("rotation", id);
        let mut ok = self.timezone(&raw.timezone, path, &owner).is_some();
        if raw.shifts.is_empty() && raw.overrides.is_empty() {
            ok = false;
            self.diags
                .error(
                    Place::of(path, id_at),
                    Some(&owner),
                    format!("rotation `{id}` has no shifts and no overrides"),
                )
                .with_hint("add a weekly shift, like `shifts: [{ days: [mon, tue, wed, thu, fri], from: \"09:00\", to: \"17:00\", contacts: [dana] }]`");
        }
        let mut shifts = Vec::new();
        for (n, s) in raw.shifts.iter().enumerate() {
            let what = format!("shift {} of rotation `{id}`", n + 1);
            match self.shift(s, path, &owner, &what) {
                Some(shift) => shifts.push(shift),
                None => ok = false,
            }
        }
        let mut overrides = Vec::new();
        for (n, o) in raw.overrides.iter().enumerate() {
            let what = format!("override {} of rotation `{id}`", n + 1);
            match self.override_of(o, path, &owner, &what) {
                Some(o) => overrides.push(o),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        self.lint_gaps(id_at, path, &owner, &shifts);
        Some(Rotation {
            id: id.to_owned(),
            timezone: raw.timezone.value.trim().to_owned(),
            shifts,
            overrides,
        })
    }

    /// One weekly shift: the days it starts on, its times, who is on call.
    fn shift(
        &mut self,
        s: &Spanned<RawShift>,
        path: &Path,
        owner: &str,
        what: &str,
    ) -> Option<Shift> {
        let (days, days_ok) = self.shift_days(s, path, owner, what);
        let from = self.time_of_day(&s.value.from, path, owner, what);
        let to = self.time_of_day(&s.value.to, path, owner, what);
        let contacts = self.rotation_contacts(&s.value.contacts, s, path, owner, what);
        match (from, to, contacts, days_ok) {
            (Some(from), Some(to), Some(contacts), true) => Some(Shift {
                days,
                from,
                to,
                contacts,
            }),
            _ => None,
        }
    }

    /// `days:` of a shift, each once; with whether every one is a day.
    fn shift_days(
        &mut self,
        s: &Spanned<RawShift>,
        path: &Path,
        owner: &str,
        what: &str,
    ) -> (Vec<Weekday>, bool) {
        let mut ok = true;
        let mut days = Vec::new();
        if s.value.days.is_empty() {
            ok = false;
            self.diags
                .error(
                    Place::of(path, s),
                    Some(owner),
                    format!("{what} has no days"),
                )
                .with_hint("list the days it starts on, like `days: [mon, tue, wed, thu, fri]`");
        }
        for d in &s.value.days {
            match parse_day(&d.value) {
                Some(day) if !days.contains(&day) => days.push(day),
                Some(_) => {}
                None => {
                    ok = false;
                    let hint = day_hint(&d.value);
                    self.diags
                        .error(
                            Place::of(path, d),
                            Some(owner),
                            format!("{what}: unknown day `{}`", d.value),
                        )
                        .with_hint(hint);
                }
            }
        }
        (days, ok)
    }

    /// One dated override: `from` before `to`, who is on call.
    fn override_of(
        &mut self,
        o: &Spanned<RawOverride>,
        path: &Path,
        owner: &str,
        what: &str,
    ) -> Option<Override> {
        let mut ok = true;
        let from = self.local_time(&o.value.from, path, owner, what);
        let to = self.local_time(&o.value.to, path, owner, what);
        if let (Some(f), Some(t)) = (from, to)
            && t <= f
        {
            ok = false;
            self.diags
                .error(
                    Place::of(path, &o.value.to),
                    Some(owner),
                    format!(
                        "{what}: `to: {}` is not after `from: {}`",
                        o.value.to.value, o.value.from.value
                    ),
                )
                .with_hint("an override covers `from` (inclusive) to `to` (exclusive), both local times in the rotation's timezone");
        }
        let contacts = self.rotation_contacts(&o.value.contacts, o, path, owner, what);
        match (from, to, contacts, ok) {
            (Some(from), Some(to), Some(contacts), true) => Some(Override { from, to, contacts }),
            _ => None,
        }
    }

    fn time_of_day(
        &mut self,
        value: &Spanned<String>,
        path: &Path,
        owner: &str,
        what: &str,
    ) -> Option<NaiveTime> {
        domain::parse_time_of_day(&value.value)
            .map_err(|e| {
                let d = self.diags.error(
                    Place::of(path, value),
                    Some(owner),
                    format!("{what}: {}", e.message),
                );
                if let Some(h) = e.hint {
                    d.with_hint(h);
                }
            })
            .ok()
    }

    fn local_time(
        &mut self,
        value: &Spanned<String>,
        path: &Path,
        owner: &str,
        what: &str,
    ) -> Option<NaiveDateTime> {
        let parsed = parse_local(&value.value);
        if parsed.is_none() {
            self.diags
                .error(
                    Place::of(path, value),
                    Some(owner),
                    format!(
                        "{what}: invalid local date and time `{}`: expected `YYYY-MM-DDTHH:MM`",
                        value.value
                    ),
                )
                .with_hint("write it like `2026-12-24T17:00` (local time in the rotation's timezone; quote it)");
        }
        parsed
    }

    /// The contact ids of a shift or override; `None` (reported) when the
    /// list is empty or names an unknown contact.
    fn rotation_contacts<T>(
        &mut self,
        contacts: &[Spanned<String>],
        item: &Spanned<T>,
        path: &Path,
        owner: &str,
        what: &str,
    ) -> Option<Vec<String>> {
        if contacts.is_empty() {
            self.diags
                .error(
                    Place::of(path, item),
                    Some(owner),
                    format!("{what} has no contacts"),
                )
                .with_hint("name who is on call, like `contacts: [dana]` (ids from `contacts:`)");
            return None;
        }
        let mut ok = true;
        let mut ids: Vec<String> = Vec::new();
        for c in contacts {
            if !self.reference("contact", c, path, owner) {
                ok = false;
            } else if !ids.contains(&c.value) {
                ids.push(c.value.clone());
            }
        }
        ok.then_some(ids)
    }

    /// Warns when the weekly shifts leave time with nobody on call,
    /// naming the first gap (dated overrides cannot fill a weekly gap).
    fn lint_gaps(&mut self, id_at: &Spanned<String>, path: &Path, owner: &str, shifts: &[Shift]) {
        let Some((from, to)) = first_gap(shifts) else {
            return;
        };
        let id = &id_at.value;
        let message = if from == to {
            format!("rotation `{id}` has no weekly shifts: nobody is on call outside its overrides")
        } else {
            format!(
                "rotation `{id}` has nobody on call from {} to {}",
                week_time(from),
                week_time(to)
            )
        };
        self.diags
            .warning(Place::of(path, id_at), Some(owner), message)
            .with_hint("a step that notifies only this rotation reaches nobody then; add a shift, or notify someone else in the same step");
    }
}

/// The first stretch of the week (minutes from Monday 00:00, local wall
/// time) no shift covers, as `(from, to)`; `from == to` when no shift
/// covers any of it. `None` when the week is covered.
pub(super) fn first_gap(shifts: &[Shift]) -> Option<(usize, usize)> {
    let mut covered = vec![false; MINUTES_PER_WEEK];
    for s in shifts {
        let from = minute_of_day(s.from);
        let to = minute_of_day(s.to);
        let len = if to > from {
            to - from
        } else {
            to + MINUTES_PER_DAY - from
        };
        for day in &s.days {
            let start = day.num_days_from_monday() as usize * MINUTES_PER_DAY + from;
            for m in start..start + len {
                covered[m % MINUTES_PER_WEEK] = true;
            }
        }
    }
    if covered.iter().all(|c| *c) {
        return None;
    }
    if covered.iter().all(|c| !*c) {
        return Some((0, 0));
    }
    // The first minute not covered right after one that is, so a gap
    // across Sunday midnight is named whole.
    let start = (0..MINUTES_PER_WEEK)
        .find(|&m| !covered[m] && covered[(m + MINUTES_PER_WEEK - 1) % MINUTES_PER_WEEK])?;
    let end = (1..MINUTES_PER_WEEK)
        .map(|k| (start + k) % MINUTES_PER_WEEK)
        .find(|&m| covered[m])?;
    Some((start, end))
}

fn minute_of_day(t: NaiveTime) -> usize {
    use chrono::Timelike;
    (t.hour() * 60 + t.minute()) as usize
}

/// `Tue 09:00` for a minute of the week from Monday 00:00.
fn week_time(minute: usize) -> String {
    let day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][minute / MINUTES_PER_DAY % 7];
    let m = minute % MINUTES_PER_DAY;
    format!("{day} {:02}:{:02}", m / 60, m % 60)
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDateTime, NaiveTime, Weekday};

    use super::super::groups::tests::{compile_yaml, lines};

    const CONTACTS: &str = "contacts:\n  dana: { sms: \"+15555550101\" }\n  lee: { sms: \"+15555550102\" }\n  sam: { sms: \"+15555550103\" }\n";

    fn rotation(body: &str) -> String {
        format!("{CONTACTS}rotations:\n  nights:\n{body}")
    }

    /// A rotation with the given shift line, the rest of the week covered
    /// by lee (so no gap warning), and an override line if given.
    fn one(shift: &str) -> String {
        rotation(&format!(
            "    timezone: America/New_York\n    shifts:\n      - {shift}\n"
        ))
    }

    fn diagnostics(text: &str) -> Vec<String> {
        lines(&compile_yaml(text))
    }

    #[test]
    fn a_rotation_compiles_with_days_in_any_case_or_spelled_out_and_overrides() {
        let c = compile_yaml(&rotation(
            "    timezone: America/New_York\n    shifts:\n      - { days: [Mon, TUESDAY, wed, thu, fri], from: \"17:00\", to: \"09:00\", contacts: [dana] }\n      - { days: [sat, sun], from: \"00:00\", to: \"00:00\", contacts: [lee, lee] }\n      - { days: [mon, tue, wed, thu, fri], from: \"00:00\", to: \"17:00\", contacts: [sam] }\n    overrides:\n      - { from: \"2026-12-24T17:00\", to: \"2026-12-26T09:00\", contacts: [sam] }\n",
        ));
        let shown = lines(&c);
        assert!(shown.is_empty(), "{shown:?}");
        let rules = c.rules.expect("rules");
        let r = &rules.rotations["nights"];
        assert_eq!(r.timezone, "America/New_York");
        assert_eq!(
            r.shifts[0].days,
            [
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri
            ]
        );
        assert_eq!(r.shifts[0].from, NaiveTime::from_hms_opt(17, 0, 0).unwrap());
        assert_eq!(r.shifts[0].to, NaiveTime::from_hms_opt(9, 0, 0).unwrap());
        assert_eq!(r.shifts[1].contacts, ["lee"], "repeats are dropped");
        let local = |t| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M").unwrap();
        assert_eq!(r.overrides[0].from, local("2026-12-24T17:00"));
        assert_eq!(r.overrides[0].to, local("2026-12-26T09:00"));
        assert_eq!(r.overrides[0].contacts, ["sam"]);
    }

    #[test]
    fn a_bad_timezone_is_an_error_with_an_iana_hint() {
        assert_eq!(
            diagnostics(&rotation(
                "    timezone: Eastern\n    shifts:\n      - { days: [mon, tue, wed, thu, fri, sat, sun], from: \"00:00\", to: \"00:00\", contacts: [dana] }\n"
            )),
            [
                "error: rotation `nights`: unknown timezone `Eastern` | hint: did you mean `US/Eastern`?"
            ]
        );
        assert_eq!(
            diagnostics(&rotation(
                "    timezone: \"0\"\n    shifts:\n      - { days: [mon, tue, wed, thu, fri, sat, sun], from: \"00:00\", to: \"00:00\", contacts: [dana] }\n"
            )),
            [
                "error: rotation `nights`: unknown timezone `0` | hint: use an IANA name, like `America/New_York`"
            ]
        );
    }

    #[test]
    fn a_bad_day_is_an_error_with_a_suggestion_or_the_list_of_days() {
        assert_eq!(
            diagnostics(&one(
                "{ days: [mon, tuseday], from: \"00:00\", to: \"00:00\", contacts: [dana] }"
            )),
            [
                "error: shift 1 of rotation `nights`: unknown day `tuseday` | hint: did you mean `tuesday`?"
            ]
        );
        assert_eq!(
            diagnostics(&one(
                "{ days: [weekdays], from: \"00:00\", to: \"00:00\", contacts: [dana] }"
            )),
            [
                "error: shift 1 of rotation `nights`: unknown day `weekdays` | hint: list the days: `days: [mon, tue, wed, thu, fri]`"
            ]
        );
        assert_eq!(
            diagnostics(&one(
                "{ days: [mon, 7], from: \"00:00\", to: \"00:00\", contacts: [dana] }"
            )),
            [
                "error: shift 1 of rotation `nights`: unknown day `7` | hint: days are mon, tue, wed, thu, fri, sat, sun (or their full names)"
            ]
        );
        assert_eq!(
            diagnostics(&one(
                "{ days: [], from: \"00:00\", to: \"00:00\", contacts: [dana] }"
            )),
            [
                "error: shift 1 of rotation `nights` has no days | hint: list the days it starts on, like `days: [mon, tue, wed, thu, fri]`"
            ]
        );
    }

    #[test]
    fn a_bad_time_is_an_error_with_the_24_hour_form_as_a_hint() {
        assert_eq!(
            diagnostics(&one(
                "{ days: [mon, tue, wed, thu, fri, sat, sun], from: \"5pm\", to: \"5pm\", contacts: [dana] }"
            )),
            [
                "error: shift 1 of rotation `nights`: invalid time of day `5pm`: expected 24-hour `HH:MM`, like `17:00` | hint: write `17:00`",
                "error: shift 1 of rotation `nights`: invalid time of day `5pm`: expected 24-hour `HH:MM`, like `17:00` | hint: write `17:00`"
            ]
        );
    }

    #[test]
    fn an_unknown_or_missing_contact_is_an_error() {
        assert_eq!(
            diagnostics(&one(
                "{ days: [mon, tue, wed, thu, fri, sat, sun], from: \"00:00\", to: \"00:00\", contacts: [dan] }"
            )),
            ["error: rotation `nights`: unknown contact `dan` | hint: did you mean `dana`?"]
        );
        assert_eq!(
            diagnostics(&one(
                "{ days: [mon, tue, wed, thu, fri, sat, sun], from: \"00:00\", to: \"00:00\", contacts: [] }"
            )),
            [
                "error: shift 1 of rotation `nights` has no contacts | hint: name who is on call, like `contacts: [dana]` (ids from `contacts:`)"
            ]
        );
    }

    #[test]
    fn an_override_must_end_after_it_starts_and_be_a_local_date_and_time() {
        let base = "    timezone: America/New_York\n    shifts:\n      - { days: [mon, tue, wed, thu, fri, sat, sun], from: \"00:00\", to: \"00:00\", contacts: [dana] }\n    overrides:\n";
        assert_eq!(
            diagnostics(&rotation(&format!(
                "{base}      - {{ from: \"2026-12-24T17:00\", to: \"2026-12-24T17:00\", contacts: [sam] }}\n"
            ))),
            [
                "error: override 1 of rotation `nights`: `to: 2026-12-24T17:00` is not after `from: 2026-12-24T17:00` | hint: an override covers `from` (inclusive) to `to` (exclusive), both local times in the rotation's timezone"
            ]
        );
        assert_eq!(
            diagnostics(&rotation(&format!(
                "{base}      - {{ from: \"Dec 24 5pm\", to: \"2026-12-26T09:00\", contacts: [sam] }}\n"
            ))),
            [
                "error: override 1 of rotation `nights`: invalid local date and time `Dec 24 5pm`: expected `YYYY-MM-DDTHH:MM` | hint: write it like `2026-12-24T17:00` (local time in the rotation's timezone; quote it)"
            ]
        );
        assert_eq!(
            diagnostics(&rotation(&format!(
                "{base}      - {{ from: \"2026-12-24T17:00\", to: \"+262000-01-01T00:00\", contacts: [sam] }}\n"
            )))
            .len(),
            1,
            "a year out of range is an error, not a panic later"
        );
        assert_eq!(
            diagnostics(&rotation(&format!(
                "{base}      - {{ from: \"2026-12-24T17:00\", to: \"2026-12-26T09:00\", contacts: [] }}\n"
            ))),
            [
                "error: override 1 of rotation `nights` has no contacts | hint: name who is on call, like `contacts: [dana]` (ids from `contacts:`)"
            ]
        );
    }

    #[test]
    fn a_rotation_without_shifts_or_overrides_is_an_error() {
        assert_eq!(
            diagnostics(&rotation("    timezone: UTC\n")),
            [
                "error: rotation `nights` has no shifts and no overrides | hint: add a weekly shift, like `shifts: [{ days: [mon, tue, wed, thu, fri], from: \"09:00\", to: \"17:00\", contacts: [dana] }]`"
            ]
        );
    }

    #[test]
    fn a_week_with_nobody_on_call_is_a_warning_naming_the_first_gap() {
        // Weeknights and whole weekend days: Monday daytime is the first gap.
        let c = compile_yaml(&rotation(
            "    timezone: America/New_York\n    shifts:\n      - { days: [mon, tue, wed, thu, fri], from: \"17:00\", to: \"09:00\", contacts: [dana] }\n      - { days: [sat, sun], from: \"00:00\", to: \"00:00\", contacts: [lee] }\n",
        ));
        assert!(c.rules.is_some(), "a warning, not an error");
        assert_eq!(
            lines(&c),
            [
                "warning: rotation `nights` has nobody on call from Mon 00:00 to Mon 17:00 | hint: a step that notifies only this rotation reaches nobody then; add a shift, or notify someone else in the same step"
            ]
        );
        // A gap across Sunday midnight is named whole.
        assert_eq!(
            super::first_gap(&compile_yaml(&one(
                "{ days: [mon, tue, wed, thu, fri, sat], from: \"00:00\", to: \"00:00\", contacts: [dana] }"
            ))
            .rules
            .expect("rules")
            .rotations["nights"]
                .shifts),
            Some((6 * 1440, 0))
        );
        let c = compile_yaml(&rotation(
            "    timezone: UTC\n    overrides:\n      - { from: \"2026-12-24T17:00\", to: \"2026-12-26T09:00\", contacts: [sam] }\n",
        ));
        assert_eq!(
            lines(&c),
            [
                "warning: rotation `nights` has no weekly shifts: nobody is on call outside its overrides | hint: a step that notifies only this rotation reaches nobody then; add a shift, or notify someone else in the same step"
            ]
        );
    }
}
