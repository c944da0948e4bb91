//! The send window: the local times routine messages may go out between
//! (quiet hours are the rest), judged in the recipient's timezone. One
//! type for the settings, the last gate and `hearth check`'s warnings.

use chrono::{DateTime, Days, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;

use super::local_time::resolve_local;

/// The local times routine messages may be sent between. `start == end`
/// means the whole day (no quiet hours); `start > end` wraps midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendWindow {
    pub(crate) start: NaiveTime,
    pub(crate) end: NaiveTime,
}

impl Default for SendWindow {
    /// 08:00–21:00, the settings' default.
    fn default() -> Self {
        SendWindow {
            start: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or(NaiveTime::MIN),
            end: NaiveTime::from_hms_opt(21, 0, 0).unwrap_or(NaiveTime::MIN),
        }
    }
}

impl SendWindow {
    pub fn new(start: NaiveTime, end: NaiveTime) -> SendWindow {
        SendWindow { start, end }
    }

    /// Whether the window covers the whole day, so nothing is quiet.
    pub(crate) fn is_whole_day(&self) -> bool {
        self.start == self.end
            || (self.start == NaiveTime::MIN && self.end.hour() == 23 && self.end.minute() == 59)
    }

    /// Whether a message may be sent at local time `t`.
    pub(crate) fn contains(&self, t: NaiveTime) -> bool {
        if self.is_whole_day() {
            true
        } else if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// `None` when `now` is inside the window in `tz`; otherwise the
    /// instant it next opens there (a start inside a spring-forward gap
    /// opens at the first instant after it).
    pub(crate) fn next_opening(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&tz);
        let t = local.time();
        if self.contains(t) {
            return None;
        }
        let today = local.date_naive();
        let day = if t < self.start {
            today
        } else {
            today.checked_add_days(Days::new(1))?
        };
        Some(resolve_local(tz, day, self.start).with_timezone(&Utc))
    }

    /// The quiet hours, for messages: `21:00–08:00`.
    pub(crate) fn quiet_hours(&self) -> String {
        format!(
            "{}–{}",
            self.end.format("%H:%M"),
            self.start.format("%H:%M")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("a time")
    }

    #[test]
    fn outside_the_window_it_next_opens_at_its_start_where_the_recipient_is() {
        use chrono::TimeZone;
        use chrono_tz::America::New_York;
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let day = SendWindow::default();
        // 03:00 in New York (08:00 UTC): opens at 08:00 New York (13:00 UTC).
        assert_eq!(
            day.next_opening(at("2026-01-06T08:00:00Z"), New_York),
            Some(at("2026-01-06T13:00:00Z"))
        );
        // 21:30 New York: opens at 08:00 the next day.
        assert_eq!(
            day.next_opening(at("2026-01-07T02:30:00Z"), New_York),
            Some(at("2026-01-07T13:00:00Z"))
        );
        // Inside: no wait.
        assert_eq!(day.next_opening(at("2026-01-06T15:00:00Z"), New_York), None);
        // Until midnight: 23:30 is inside, 07:00 waits for 20:00.
        let evening = SendWindow::new(t(20, 0), NaiveTime::MIN);
        let local = |h, m| {
            New_York
                .with_ymd_and_hms(2026, 1, 6, h, m, 0)
                .unwrap()
                .with_timezone(&Utc)
        };
        assert_eq!(evening.next_opening(local(23, 30), New_York), None);
        assert_eq!(
            evening.next_opening(local(7, 0), New_York),
            Some(local(20, 0))
        );
        // The whole day never waits.
        assert_eq!(
            SendWindow::new(NaiveTime::MIN, NaiveTime::MIN).next_opening(local(3, 0), New_York),
            None
        );
    }

    #[test]
    fn the_window_holds_its_start_and_not_its_end_and_may_wrap_or_cover_the_day() {
        let day = SendWindow::default();
        assert!(day.contains(t(8, 0)) && day.contains(t(20, 59)));
        assert!(!day.contains(t(21, 0)) && !day.contains(t(7, 59)));
        assert_eq!(day.quiet_hours(), "21:00–08:00");
        let night = SendWindow::new(t(22, 0), t(6, 0));
        assert!(night.contains(t(23, 0)) && night.contains(t(5, 0)) && !night.contains(t(12, 0)));
        for whole in [
            SendWindow::new(t(0, 0), t(0, 0)),
            SendWindow::new(t(0, 0), t(23, 59)),
        ] {
            assert!(whole.is_whole_day() && whole.contains(t(3, 0)) && whole.contains(t(23, 59)));
        }
    }
}
