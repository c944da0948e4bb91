//! What a rules directory is compiled against, beyond its own files.

use chrono::{NaiveTime, Timelike};

/// Inputs of a compile that come from outside the rules directory.
/// `Default` is what `hearth check DIR` uses without settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// The settings' `dispatch.send_window`: schedules that fire outside
    /// it get a quiet-hours warning.
    pub send_window: SendWindow,
}

/// The local times routine messages may be sent between. `start == end`
/// means the whole day (no quiet hours); `start > end` wraps midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendWindow {
    pub start: NaiveTime,
    pub end: NaiveTime,
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
    pub fn is_whole_day(&self) -> bool {
        self.start == self.end
            || (self.start == NaiveTime::MIN && self.end.hour() == 23 && self.end.minute() == 59)
    }

    /// Whether a message may be sent at local time `t`.
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.is_whole_day() {
            true
        } else if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// The quiet hours, for messages: `21:00–08:00`.
    pub fn quiet_hours(&self) -> String {
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
