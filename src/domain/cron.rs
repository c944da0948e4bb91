//! A five-field crontab pattern, parsed by croner and read in an IANA
//! timezone (0/7 = Sunday, names like `TUE`), with hints that fix common
//! mistakes (a seconds field, long day names).

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::domain::Invalid;

/// A parsed five-field crontab pattern.
#[derive(Debug, Clone)]
pub struct CronSpec {
    pattern: String,
    cron: Cron,
}

impl CronSpec {
    /// Parses a five-field pattern. On failure the hint is the fixed
    /// pattern where it can be worked out: a seconds field dropped
    /// (`0 0 12 * * MON` → `0 12 * * MON`), day and month names shortened to
    /// their three letters (`MONDAY`, `Tues` → `MON`, `TUE`).
    pub(crate) fn parse(text: &str) -> Result<CronSpec, Invalid> {
        CronSpec::parse_strict(text).map_err(|message| Invalid::new(message).with_hint(hint(text)))
    }

    fn parse_strict(text: &str) -> Result<CronSpec, String> {
        let fields = text.split_whitespace().count();
        if fields != 5 && !text.trim_start().starts_with('@') {
            return Err(format!(
                "invalid cron pattern `{text}`: expected 5 fields (minute hour day-of-month month day-of-week), found {fields}"
            ));
        }
        if let Some(problem) = out_of_range(text).or_else(|| unknown_name(text)) {
            return Err(format!("invalid cron pattern `{text}`: {problem}"));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| {
                format!(
                    "invalid cron pattern `{text}`: {}",
                    lowercase_first(&e.to_string())
                )
            })?;
        Ok(CronSpec {
            pattern: text.to_owned(),
            cron,
        })
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The first fire strictly after `after`, in `after`'s timezone (the
    /// tests' reading of a pattern; the scheduler uses [`Self::next_naive`]).
    #[cfg(test)]
    pub(crate) fn next_after<Tz: chrono::TimeZone>(
        &self,
        after: &chrono::DateTime<Tz>,
    ) -> Option<chrono::DateTime<Tz>> {
        self.cron.find_next_occurrence(after, false).ok()
    }

    /// The first naive wall time matching the pattern at (`inclusive`) or
    /// after `from`, on a calendar with no daylight saving.
    pub(crate) fn next_naive(
        &self,
        from: chrono::NaiveDateTime,
        inclusive: bool,
    ) -> Option<chrono::NaiveDateTime> {
        self.cron
            .find_next_occurrence(&from.and_utc(), inclusive)
            .ok()
            .map(|t| t.naive_utc())
    }
}

/// The fix for a pattern that does not parse, when one can be worked out
/// and the fixed pattern parses.
fn hint(text: &str) -> Option<String> {
    let mut fields: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    let dropped_seconds = fields.len() == 6;
    if dropped_seconds {
        fields.remove(0);
    }
    if fields.len() != 5 {
        return None;
    }
    let mut renamed = false;
    for (field, names) in [(3, &MONTHS[..]), (4, &DAYS[..])] {
        let fixed = short_names(&fields[field], names);
        renamed |= fixed != fields[field];
        fields[field] = fixed;
    }
    let fixed = fields.join(" ");
    CronSpec::parse_strict(&fixed).ok()?;
    Some(match (dropped_seconds, renamed) {
        (true, _) => format!("drop the seconds field: `{fixed}`"),
        (false, true) => format!("day and month names are three letters: `{fixed}`"),
        (false, false) => return None,
    })
}

const DAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// A word in the month or day-of-week field that is not a three-letter
/// name, said in words: croner reads `MONDAY` as `1DAY` and names a `D`.
fn unknown_name(text: &str) -> Option<String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    for (index, field, names) in [(3, "month", &MONTHS[..]), (4, "day of week", &DAYS[..])] {
        let value = fields.get(index)?;
        let word = value
            .split(|c: char| !c.is_alphabetic())
            // `L` is croner's "last" (`5L`, the last Friday).
            .find(|w| {
                !w.is_empty()
                    && !w.eq_ignore_ascii_case("l")
                    && !names.iter().any(|n| n[..3].eq_ignore_ascii_case(w))
            });
        if let Some(word) = word {
            let short: Vec<String> = names.iter().map(|n| n[..3].to_uppercase()).collect();
            return Some(format!(
                "{field} `{word}` is not one of {}",
                short.join(", ")
            ));
        }
    }
    None
}

/// `MONDAY-Fri,tues` → `MON-FRI,TUE`: each run of letters that starts a
/// name (at least its first three letters, or `weds`) becomes the name's
/// three-letter form; anything else is left as written.
fn short_names(field: &str, names: &[&str]) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let lower = word.to_lowercase();
        let name = names.iter().find(|n| {
            (lower.len() >= 3 && n.starts_with(lower.as_str()))
                || (lower == "weds" && **n == "wednesday")
        });
        match name {
            Some(n) => out.push_str(&n[..3].to_uppercase()),
            None => out.push_str(word),
        }
        word.clear();
    };
    for c in field.chars() {
        if c.is_alphabetic() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// A number outside its field's range, named in words: croner only says
/// "number out of bounds".
fn out_of_range(text: &str) -> Option<String> {
    const FIELDS: [(&str, u32, u32); 5] = [
        ("minute", 0, 59),
        ("hour", 0, 23),
        ("day of month", 1, 31),
        ("month", 1, 12),
        ("day of week", 0, 7),
    ];
    for (field, (name, lo, hi)) in text.split_whitespace().zip(FIELDS) {
        for part in field.split(',') {
            // The step after `/` is a count, not a value of the field.
            let values = part.split('/').next().unwrap_or("");
            for v in values.split('-') {
                if let Ok(n) = v.parse::<u32>()
                    && !(lo..=hi).contains(&n)
                {
                    return Some(format!("{name} `{n}` is out of range {lo}–{hi}"));
                }
            }
        }
    }
    None
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike, Weekday};
    use chrono_tz::America::New_York;

    #[test]
    fn day_of_week_names_and_numbers_follow_crontab() {
        // `2` is Tuesday in crontab (0 = Sunday); the `cron` crate gets this wrong.
        let start = New_York.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        for pattern in ["0 18 * * TUE", "0 18 * * 2"] {
            let next = CronSpec::parse(pattern)
                .unwrap()
                .next_after(&start)
                .unwrap();
            assert_eq!(next.weekday(), Weekday::Tue, "{pattern}");
            assert_eq!(next.hour(), 18);
        }
    }

    #[test]
    fn local_time_holds_across_daylight_saving() {
        let spec = CronSpec::parse("0 18 * * *").unwrap();
        let before = New_York.with_ymd_and_hms(2026, 3, 7, 19, 0, 0).unwrap();
        let next = spec.next_after(&before).unwrap();
        let after_change = spec.next_after(&next).unwrap();
        assert_eq!((next.day(), next.hour()), (8, 18));
        assert_eq!((after_change.day(), after_change.hour()), (9, 18));
    }

    #[test]
    fn a_seconds_field_gets_the_five_field_pattern_as_a_hint() {
        let err = CronSpec::parse("0 0 12 * * MON").unwrap_err();
        assert!(err.message.contains("found 6"), "{err}");
        assert_eq!(
            err.hint.as_deref(),
            Some("drop the seconds field: `0 12 * * MON`")
        );
        assert_eq!(
            CronSpec::parse("30 0 18 * * Tuesday")
                .unwrap_err()
                .hint
                .as_deref(),
            Some("drop the seconds field: `0 18 * * TUE`")
        );
    }

    #[test]
    fn long_day_and_month_names_get_their_three_letters_as_a_hint() {
        for (text, fixed) in [
            ("0 18 * * MONDAY", "0 18 * * MON"),
            ("0 18 * * Tues", "0 18 * * TUE"),
            ("0 18 * * monday-friday", "0 18 * * MON-FRI"),
            ("0 18 * * MON,Weds,THURSDAY", "0 18 * * MON,WED,THU"),
            ("0 9 1 January *", "0 9 1 JAN *"),
        ] {
            let err = CronSpec::parse(text).unwrap_err();
            assert!(err.message.contains("is not one of"), "{err}");
            assert_eq!(
                err.hint.as_deref(),
                Some(format!("day and month names are three letters: `{fixed}`").as_str()),
                "{text}: {err}"
            );
            assert!(CronSpec::parse(fixed).is_ok(), "{fixed}");
        }
    }

    #[test]
    fn no_hint_where_no_fix_parses() {
        for text in [
            "0 25 * * *",
            "0 18 * * FUNDAY",
            "every tuesday",
            "0 0 0 12 * * MON",
        ] {
            assert_eq!(CronSpec::parse(text).unwrap_err().hint, None, "{text}");
        }
    }

    #[test]
    fn six_fields_and_garbage_are_rejected() {
        assert!(CronSpec::parse("0 0 18 * * TUE").is_err());
        let err = CronSpec::parse("0 25 * * *").unwrap_err().message;
        assert_eq!(
            err,
            "invalid cron pattern `0 25 * * *`: hour `25` is out of range 0–23"
        );
        assert!(CronSpec::parse("*/15 8-20 1,15 1-12 1-5").is_ok());
        assert!(CronSpec::parse("0 18 * jan-mar mon-fri").is_ok());
        assert!(CronSpec::parse("0 18 * * 5L").is_ok());
        assert!(
            CronSpec::parse("0 12 * 13 *")
                .unwrap_err()
                .message
                .contains("month `13` is out of range 1–12")
        );
    }
}
