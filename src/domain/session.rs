//! One meeting of a group, as templates and schedules see it, and the
//! sample session `hearth check` renders templates against.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;

/// One meeting of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub(crate) starts_at: DateTime<Utc>,
    pub(crate) ends_at: DateTime<Utc>,
    /// `starts_at` in the group's timezone.
    pub(crate) local_starts_at: DateTime<Tz>,
    /// `ends_at` in the group's timezone.
    pub(crate) local_ends_at: DateTime<Tz>,
    /// A one-off session from `extra:`, not the group's pattern.
    pub(crate) extra: bool,
}

impl Session {
    /// The session's calendar date where the group meets.
    pub(crate) fn local_date(&self) -> NaiveDate {
        self.local_starts_at.date_naive()
    }

    /// How a message sent at `now` names the session's day, judged by the
    /// calendar where the group meets: `today`, `tomorrow`, `on Thursday`
    /// (within the coming week) or `on Tuesday, January 13` (further off).
    /// A session already under way or past is still `today` on its day.
    pub(crate) fn when(&self, now: DateTime<Utc>) -> String {
        let today = now
            .with_timezone(&self.local_starts_at.timezone())
            .date_naive();
        match (self.local_date() - today).num_days() {
            ..=0 => "today".to_owned(),
            1 => "tomorrow".to_owned(),
            2..=6 => format!("on {}", self.local_starts_at.format("%A")),
            _ => format!("on {}", self.local_starts_at.format("%A, %B %-d")),
        }
    }
}

/// The "now" `hearth check` judges rules at, so its output never depends
/// on the wall clock: Monday 2026-01-05, 17:00 in New York.
pub(crate) fn sample_now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_650_400, 0).unwrap_or_default()
}

/// A sample session, the Tuesday after [`sample_now`] at 18:00 in New
/// York for 90 minutes: what templates render against at check.
pub(crate) fn sample_session() -> Session {
    let tz = chrono_tz::America::New_York;
    let start = sample_now().with_timezone(&tz) + TimeDelta::hours(25);
    let end = start + TimeDelta::minutes(90);
    Session {
        starts_at: start.with_timezone(&Utc),
        ends_at: end.with_timezone(&Utc),
        local_starts_at: start,
        local_ends_at: end,
        extra: false,
    }
}
