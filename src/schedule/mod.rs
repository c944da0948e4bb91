//! Session-relative and cron timing: the group calendar and fire
//! computation.
//!
//! Crontab patterns are the standard five fields (minute, hour, day of
//! month, month, day of week with 0/7 = Sunday and names like `TUE`),
//! parsed by croner and evaluated in an IANA timezone, so "18:00 every
//! Tuesday in New York" stays 18:00 local across daylight-saving changes.

pub(crate) mod calendar;
pub(crate) mod fire;
pub mod plan;

pub use calendar::sessions;

use chrono::NaiveDate;

/// A rules duration as a span of time, capped at 1,000 years (see
/// [`crate::domain::Duration::chrono`]).
pub(crate) fn span(d: crate::domain::Duration) -> chrono::TimeDelta {
    d.chrono()
}

/// Parses a calendar date written `YYYY-MM-DD`.
pub(crate) fn parse_date(text: &str) -> Result<NaiveDate, crate::domain::Invalid> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        crate::domain::Invalid::new(format!(
            "invalid date `{text}`: expected `YYYY-MM-DD`, like `2026-12-22`"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone};
    use chrono_tz::America::New_York;

    #[test]
    fn a_huge_duration_is_capped_not_a_panic() {
        let huge = crate::domain::Duration::from_secs(u64::MAX);
        let start = New_York.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert!((start + span(huge)).year() > 3000);
        assert_eq!(
            span(crate::domain::Duration::from_secs(90)).num_seconds(),
            90
        );
    }
}
