//! Cron and session-relative timing.
//!
//! Crontab patterns are the standard five fields (minute, hour, day of
//! month, month, day of week with 0/7 = Sunday and names like `TUE`),
//! parsed by croner and evaluated in an IANA timezone, so "18:00 every
//! Tuesday in New York" stays 18:00 local across daylight-saving changes.

pub mod calendar;

pub use calendar::{Session, sessions};

use chrono::{DateTime, NaiveDate, TimeZone};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A parsed five-field crontab pattern.
#[derive(Debug, Clone)]
pub struct CronSpec {
    pattern: String,
    cron: Cron,
}

impl CronSpec {
    pub fn parse(text: &str) -> Result<CronSpec, String> {
        let fields = text.split_whitespace().count();
        if fields != 5 && !text.trim_start().starts_with('@') {
            return Err(format!(
                "invalid cron pattern `{text}`: expected 5 fields (minute hour day-of-month month day-of-week), found {fields}"
            ));
        }
        if let Some(problem) = out_of_range(text) {
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

    /// The first fire strictly after `after`, in `after`'s timezone.
    pub fn next_after<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        self.cron.find_next_occurrence(after, false).ok()
    }
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

/// Parses a calendar date written `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("invalid date `{text}`: expected `YYYY-MM-DD`, like `2026-12-22`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike, Weekday};
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
    fn six_fields_and_garbage_are_rejected() {
        assert!(CronSpec::parse("0 0 18 * * TUE").is_err());
        let err = CronSpec::parse("0 25 * * *").unwrap_err();
        assert_eq!(
            err,
            "invalid cron pattern `0 25 * * *`: hour `25` is out of range 0–23"
        );
        assert!(CronSpec::parse("*/15 8-20 1,15 1-12 1-5").is_ok());
        assert!(
            CronSpec::parse("0 12 * 13 *")
                .unwrap_err()
                .contains("month `13` is out of range 1–12")
        );
    }
}
