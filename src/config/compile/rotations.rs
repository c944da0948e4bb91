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
use crate::config::raw::RawRotation;
use crate::config::rules::{Override, Rotation, Shift};
use crate::domain;
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

/// A local date and time, `2026-12-24T17:00` (a space for the `T` and
/// seconds are accepted too).
fn parse_local(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim();
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
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
            let mut days = Vec::new();
            if s.value.days.is_empty() {
                ok = false;
                self.diags
                    .error(
                        Place::of(path, s),
                        Some(&owner),
                        format!("{what} has no days"),
                    )
                    .with_hint(
                        "list the days it starts on, like `days: [mon, tue, wed, thu, fri]`",
                    );
            }
            for d in &s.value.days {
                match parse_day(&d.value) {
                    Some(day) if !days.contains(&day) => days.push(day),
                    Some(_) => {}
                    None => {
                        ok = false;
                        let hint = did_you_mean(
                            &d.value.to_lowercase(),
                            DAY_NAMES.iter().flat_map(|(s, l, _)| [*s, *l]),
                        )
                        .unwrap_or_else(|| {
                            "days are mon, tue, wed, thu, fri, sat, sun (or their full names)"
                                .to_owned()
                        });
                        self.diags
                            .error(
                                Place::of(path, d),
                                Some(&owner),
                                format!("{what}: unknown day `{}`", d.value),
                            )
                            .with_hint(hint);
                    }
                }
            }
            let from = self.time_of_day(&s.value.from, path, &owner, &what);
            let to = self.time_of_day(&s.value.to, path, &owner, &what);
            let contacts = self.rotation_contacts(&s.value.contacts, s, path, &owner, &what);
            match (from, to, contacts) {
                (Some(from), Some(to), Some(contacts)) => shifts.push(Shift {
                    days,
                    from,
                    to,
                    contacts,
                }),
                _ => ok = false,
            }
        }
        let mut overrides = Vec::new();
        for (n, o) in raw.overrides.iter().enumerate() {
            let what = format!("override {} of rotation `{id}`", n + 1);
            let from = self.local_time(&o.value.from, path, &owner, &what);
            let to = self.local_time(&o.value.to, path, &owner, &what);
            if let (Some(f), Some(t)) = (from, to)
                && t <= f
            {
                ok = false;
                self.diags
                    .error(
                        Place::of(path, &o.value.to),
                        Some(&owner),
                        format!(
                            "{what}: `to: {}` is not after `from: {}`",
                            o.value.to.value, o.value.from.value
                        ),
                    )
                    .with_hint("an override covers `from` (inclusive) to `to` (exclusive), both local times in the rotation's timezone");
            }
            let contacts = self.rotation_contacts(&o.value.contacts, o, path, &owner, &what);
            match (from, to, contacts) {
                (Some(from), Some(to), Some(contacts)) => {
                    overrides.push(Override { from, to, contacts })
                }
                _ => ok = false,
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
