//! Rotations: who is on call at a given moment.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;

use crate::domain::local_time::resolve_local;
use crate::rules::{Rotation, Shift};

/// The contact ids on call at `at`: those of the dated overrides that
/// contain it if any does, else those of every weekly shift that contains
/// it, in the order written, without repeats. Local times are read in the
/// rotation's timezone, so a shift from 09:00 to 17:00 covers 09:00–17:00
/// on the wall clock on both sides of a DST change; a nonexistent local
/// time (spring forward) begins at the first instant after the gap, and
/// an ambiguous one (fall back) at its first occurrence.
pub(crate) fn on_call(rotation: &Rotation, at: DateTime<Utc>) -> Vec<String> {
    // The compiler checked the name; UTC only if a hand-built rotation
    // carries a bad one.
    let tz: Tz = rotation.timezone.parse().unwrap_or(Tz::UTC);
    let mut out: Vec<String> = Vec::new();
    let mut add = |ids: &[String]| {
        for id in ids {
            if !out.contains(id) {
                out.push(id.clone());
            }
        }
    };
    let instant = |local: NaiveDateTime| resolve_local(tz, local.date(), local.time());
    let mut overridden = false;
    for o in &rotation.overrides {
        if instant(o.from) <= at && at < instant(o.to) {
            overridden = true;
            add(&o.contacts);
        }
    }
    if overridden {
        return out;
    }
    let today = at.with_timezone(&tz).date_naive();
    // A shift ends at the latest the day after it starts: one that
    // started yesterday may still be running.
    let starts: Vec<NaiveDate> = [today.checked_sub_days(Days::new(1)), Some(today)]
        .into_iter()
        .flatten()
        .collect();
    for shift in &rotation.shifts {
        if starts.iter().any(|d| covers(tz, shift, *d, at)) {
            add(&shift.contacts);
        }
    }
    out
}

/// Whether the shift's run starting on local date `day` contains `at`.
fn covers(tz: Tz, shift: &Shift, day: NaiveDate, at: DateTime<Utc>) -> bool {
    if !shift.days.contains(&day.weekday()) {
        return false;
    }
    let end_day = if shift.to > shift.from {
        day
    } else {
        match day.checked_add_days(Days::new(1)) {
            Some(d) => d,
            None => return false,
        }
    };
    let start = resolve_local(tz, day, shift.from);
    let end = resolve_local(tz, end_day, shift.to);
    start <= at && at < end
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveTime, TimeZone, Weekday};

    use super::*;
    use crate::rules::Override;

    const WEEKDAYS: [Weekday; 5] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];
    const EVERY_DAY: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    fn hm(text: &str) -> NaiveTime {
        NaiveTime::parse_from_str(text, "%H:%M").expect("a time")
    }

    fn shift(days: &[Weekday], from: &str, to: &str, who: &str) -> Shift {
        Shift {
            days: days.to_vec(),
            from: hm(from),
            to: hm(to),
            contacts: vec![who.to_owned()],
        }
    }

    fn rotation(shifts: Vec<Shift>, overrides: Vec<Override>) -> Rotation {
        Rotation {
            id: "clinic".to_owned(),
            timezone: "America/New_York".to_owned(),
            shifts,
            overrides,
        }
    }

    /// A day shift 09:00–17:00 (`day`) and a night shift 17:00–09:00
    /// (`night`) every day of the week.
    fn day_and_night() -> Rotation {
        rotation(
            vec![
                shift(&EVERY_DAY, "09:00", "17:00", "day"),
                shift(&EVERY_DAY, "17:00", "09:00", "night"),
            ],
            Vec::new(),
        )
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("an RFC 3339 instant")
            .with_timezone(&Utc)
    }

    fn who(r: &Rotation, at: &str) -> Vec<String> {
        on_call(r, utc(at))
    }

    #[test]
    fn a_weekday_shift_covers_from_its_start_inclusive_to_its_end_exclusive() {
        let r = rotation(vec![shift(&WEEKDAYS, "09:00", "17:00", "dana")], Vec::new());
        // Tuesday 2026-12-01, EST (UTC-5).
        assert!(who(&r, "2026-12-01T13:59:59Z").is_empty());
        assert_eq!(who(&r, "2026-12-01T14:00:00Z"), ["dana"]);
        assert_eq!(who(&r, "2026-12-01T21:59:59Z"), ["dana"]);
        assert!(who(&r, "2026-12-01T22:00:00Z").is_empty());
        // Saturday: not a shift day.
        assert!(who(&r, "2026-12-05T15:00:00Z").is_empty());
    }

    #[test]
    fn a_night_shift_runs_into_the_next_day_even_when_that_day_is_not_listed() {
        let r = rotation(
            vec![shift(&[Weekday::Fri], "17:00", "09:00", "lee")],
            Vec::new(),
        );
        // Friday 2026-12-04 17:00 EST .. Saturday 09:00 EST.
        assert!(who(&r, "2026-12-04T21:59:00Z").is_empty());
        assert_eq!(who(&r, "2026-12-04T22:00:00Z"), ["lee"]);
        assert_eq!(who(&r, "2026-12-05T05:00:00Z"), ["lee"]);
        assert_eq!(who(&r, "2026-12-05T13:59:00Z"), ["lee"]);
        assert!(who(&r, "2026-12-05T14:00:00Z").is_empty());
        // Thursday night is not Friday's shift.
        assert!(who(&r, "2026-12-04T05:00:00Z").is_empty());
    }

    #[test]
    fn a_shift_whose_end_equals_its_start_lasts_a_whole_day() {
        let r = rotation(
            vec![shift(&[Weekday::Sat], "00:00", "00:00", "sam")],
            Vec::new(),
        );
        // Saturday 2026-12-05 00:00 EST = 05:00Z, to Sunday 00:00 EST.
        assert!(who(&r, "2026-12-05T04:59:00Z").is_empty());
        assert_eq!(who(&r, "2026-12-05T05:00:00Z"), ["sam"]);
        assert_eq!(who(&r, "2026-12-06T04:59:00Z"), ["sam"]);
        assert!(who(&r, "2026-12-06T05:00:00Z").is_empty());
    }

    #[test]
    fn overlapping_shifts_give_everyone_in_written_order_without_repeats() {
        let mut both = shift(&WEEKDAYS, "08:00", "18:00", "lee");
        both.contacts.push("dana".to_owned());
        let r = rotation(
            vec![shift(&WEEKDAYS, "09:00", "17:00", "dana"), both],
            Vec::new(),
        );
        assert_eq!(who(&r, "2026-12-01T15:00:00Z"), ["dana", "lee"]);
        assert_eq!(who(&r, "2026-12-01T13:30:00Z"), ["lee", "dana"]);
    }

    #[test]
    fn an_override_wins_over_the_shifts_only_while_it_lasts() {
        let local = |t: &str| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M").unwrap();
        let mut r = day_and_night();
        r.overrides.push(Override {
            from: local("2026-12-24T17:00"),
            to: local("2026-12-26T09:00"),
            contacts: vec!["sam".to_owned()],
        });
        assert_eq!(who(&r, "2026-12-24T21:59:00Z"), ["day"]);
        assert_eq!(who(&r, "2026-12-24T22:00:00Z"), ["sam"]);
        assert_eq!(who(&r, "2026-12-25T15:00:00Z"), ["sam"]);
        assert_eq!(who(&r, "2026-12-26T13:59:00Z"), ["sam"]);
        assert_eq!(who(&r, "2026-12-26T14:00:00Z"), ["day"]);
    }

    #[test]
    fn the_right_person_is_on_call_across_the_spring_forward_change() {
        // 2026-03-08, America/New_York: 02:00 EST jumps to 03:00 EDT.
        let r = day_and_night();
        // Saturday night's shift ends at 09:00 EDT = 13:00Z (not 14:00Z).
        assert_eq!(who(&r, "2026-03-08T06:59:00Z"), ["night"]); // 01:59 EST
        assert_eq!(who(&r, "2026-03-08T07:00:00Z"), ["night"]); // 03:00 EDT
        assert_eq!(who(&r, "2026-03-08T12:59:00Z"), ["night"]);
        assert_eq!(who(&r, "2026-03-08T13:00:00Z"), ["day"]); // 09:00 EDT
        assert_eq!(who(&r, "2026-03-08T20:59:00Z"), ["day"]);
        assert_eq!(who(&r, "2026-03-08T21:00:00Z"), ["night"]); // 17:00 EDT
        // The day before, 09:00 and 17:00 were still EST.
        assert_eq!(who(&r, "2026-03-07T13:30:00Z"), ["night"]);
        assert_eq!(who(&r, "2026-03-07T14:00:00Z"), ["day"]);
        assert_eq!(who(&r, "2026-03-07T21:30:00Z"), ["day"]);
        assert_eq!(who(&r, "2026-03-07T22:00:00Z"), ["night"]);
    }

    #[test]
    fn the_right_person_is_on_call_across_the_fall_back_change() {
        // 2026-11-01, America/New_York: 02:00 EDT falls back to 01:00 EST.
        let r = day_and_night();
        // Saturday night's shift started 17:00 EDT = 21:00Z, and ends
        // 09:00 EST = 14:00Z on Sunday: a 17-hour night.
        assert_eq!(who(&r, "2026-10-31T20:59:00Z"), ["day"]);
        assert_eq!(who(&r, "2026-10-31T21:00:00Z"), ["night"]);
        assert_eq!(who(&r, "2026-11-01T05:30:00Z"), ["night"]); // 01:30 EDT
        assert_eq!(who(&r, "2026-11-01T06:30:00Z"), ["night"]); // 01:30 EST
        assert_eq!(who(&r, "2026-11-01T13:30:00Z"), ["night"]); // 08:30 EST
        assert_eq!(who(&r, "2026-11-01T14:00:00Z"), ["day"]); // 09:00 EST
        assert_eq!(who(&r, "2026-11-01T21:59:00Z"), ["day"]);
        assert_eq!(who(&r, "2026-11-01T22:00:00Z"), ["night"]); // 17:00 EST
    }

    #[test]
    fn a_shift_starting_inside_the_spring_gap_begins_when_the_clocks_jump() {
        let r = rotation(
            vec![shift(&[Weekday::Sun], "02:30", "06:00", "kai")],
            Vec::new(),
        );
        // 02:30 does not exist on 2026-03-08; the shift starts at 03:00 EDT.
        assert!(who(&r, "2026-03-08T06:59:59Z").is_empty());
        assert_eq!(who(&r, "2026-03-08T07:00:00Z"), ["kai"]);
        assert_eq!(who(&r, "2026-03-08T09:59:00Z"), ["kai"]);
        assert!(who(&r, "2026-03-08T10:00:00Z").is_empty());
    }

    #[test]
    fn an_ambiguous_start_in_the_fall_back_hour_is_its_first_occurrence() {
        let r = rotation(
            vec![shift(&[Weekday::Sun], "01:30", "03:00", "kai")],
            Vec::new(),
        );
        let first = chrono_tz::America::New_York
            .with_ymd_and_hms(2026, 11, 1, 1, 30, 0)
            .earliest()
            .expect("01:30 exists")
            .with_timezone(&Utc);
        assert_eq!(first, utc("2026-11-01T05:30:00Z"));
        assert!(who(&r, "2026-11-01T05:29:00Z").is_empty());
        assert_eq!(who(&r, "2026-11-01T05:30:00Z"), ["kai"]);
        assert_eq!(who(&r, "2026-11-01T07:59:00Z"), ["kai"]);
        assert!(who(&r, "2026-11-01T08:00:00Z").is_empty());
    }
}
