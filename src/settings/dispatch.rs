//! `dispatch:`: how the dispatcher sends (the send window, rates,
//! concurrency, retries, the circuit breaker), with its defaults and
//! their checks.

use super::parse_millis;
use super::raw::RawDispatch;
use crate::domain::SendWindow;

/// How the dispatcher sends.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Routine messages go only between these local times of the
    /// recipient (default 08:00–21:00); outside, they wait. An end of
    /// 00:00 means midnight (`end: "24:00"`), so `00:00`–`24:00` is the
    /// whole day: no quiet hours.
    pub send_window: SendWindow,
    /// SMS segments per second per sender (a US long code does 1).
    pub segments_per_second: u32,
    pub burst: u32,
    /// How long a message keeps being retried after provider errors,
    /// counted from when it was queued (its own expiry, when earlier,
    /// wins). Retries go by time, not by a count of attempts.
    pub retry_horizon: std::time::Duration,
    pub backoff_initial: std::time::Duration,
    pub backoff_max: std::time::Duration,
    /// Per provider request.
    pub timeout: std::time::Duration,
    /// Routine sends in flight at once.
    pub concurrency: usize,
    /// Crisis, compliance and escalation sends in flight at once, on a
    /// lane of their own that never waits behind routine sends.
    pub urgent_concurrency: usize,
    /// Consecutive provider errors that pause the whole provider (the
    /// circuit breaker) instead of burning each message's retries.
    pub breaker_threshold: u32,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            send_window: SendWindow::default(),
            segments_per_second: 1,
            burst: 1,
            retry_horizon: std::time::Duration::from_secs(24 * 3600),
            backoff_initial: std::time::Duration::from_secs(30),
            backoff_max: std::time::Duration::from_secs(3600),
            timeout: std::time::Duration::from_secs(10),
            concurrency: 4,
            urgent_concurrency: 2,
            breaker_threshold: 5,
        }
    }
}

pub(super) fn dispatch_settings(raw: RawDispatch) -> Result<DispatchSettings, String> {
    let mut d = DispatchSettings::default();
    if let Some(w) = raw.send_window {
        let start = crate::domain::parse_time_of_day(&w.start)
            .map_err(|e| format!("dispatch.send_window.start: {e}"))?;
        // `24:00` is midnight at the end of the day, kept as 00:00.
        let end = if w.end.trim() == "24:00" {
            chrono::NaiveTime::MIN
        } else {
            crate::domain::parse_time_of_day(&w.end)
                .map_err(|e| format!("dispatch.send_window.end: {e}"))?
        };
        if end != chrono::NaiveTime::MIN && start >= end {
            return Err(format!(
                "dispatch.send_window: start {} must be before end {}\n  hint: for no quiet hours at all, use start \"00:00\" and end \"24:00\"",
                w.start, w.end
            ));
        }
        d.send_window = SendWindow::new(start, end);
    }
    if let Some(n) = raw.segments_per_second {
        if n == 0 {
            return Err("dispatch.segments_per_second must be at least 1".into());
        }
        d.segments_per_second = n;
    }
    if let Some(n) = raw.burst {
        d.burst = n.max(1);
    }
    if let Some(n) = raw.max_attempts {
        return Err(format!(
            "dispatch.max_attempts ({n}) is no longer read: provider errors are retried by time\n  hint: set dispatch.retry_horizon (default 24h) instead"
        ));
    }
    for (name, value, slot, default) in [
        ("concurrency", raw.concurrency, &mut d.concurrency, 4),
        (
            "urgent_concurrency",
            raw.urgent_concurrency,
            &mut d.urgent_concurrency,
            2,
        ),
    ] {
        if let Some(n) = value {
            if n == 0 || n > 256 {
                return Err(format!(
                    "dispatch.{name}: {n} is out of range\n  hint: between 1 and 256 (default {default})"
                ));
            }
            *slot = n;
        }
    }
    if let Some(n) = raw.breaker_threshold {
        d.breaker_threshold = n.max(1);
    }
    for (name, text, slot) in [
        ("retry_horizon", raw.retry_horizon, &mut d.retry_horizon),
        (
            "backoff_initial",
            raw.backoff_initial,
            &mut d.backoff_initial,
        ),
        ("backoff_max", raw.backoff_max, &mut d.backoff_max),
        ("timeout", raw.timeout, &mut d.timeout),
    ] {
        if let Some(t) = text {
            *slot = parse_millis(&t).map_err(|e| format!("dispatch.{name}: {e}"))?;
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::testing::parse;

    #[test]
    fn the_send_window_can_be_the_whole_day_and_dispatch_limits_are_checked() {
        let s = parse(
            "dispatch: { send_window: { start: \"00:00\", end: \"24:00\" }, concurrency: 8, urgent_concurrency: 3, retry_horizon: 2h, breaker_threshold: 2 }\n",
            &[],
        )
        .unwrap();
        let d = &s.dispatch;
        assert_eq!(
            d.send_window,
            SendWindow::new(chrono::NaiveTime::MIN, chrono::NaiveTime::MIN)
        );
        for h in [0, 3, 12, 23] {
            let t = chrono::NaiveTime::from_hms_opt(h, 59, 59).unwrap();
            assert!(d.send_window.contains(t), "{t}");
        }
        assert_eq!(
            (d.concurrency, d.urgent_concurrency, d.breaker_threshold),
            (8, 3, 2)
        );
        assert_eq!(d.retry_horizon, std::time::Duration::from_secs(7200));
        let default = DispatchSettings::default();
        assert!(
            !default
                .send_window
                .contains(chrono::NaiveTime::from_hms_opt(21, 0, 0).unwrap())
        );
        assert!(
            default
                .send_window
                .contains(chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap())
        );

        let err = parse("dispatch: { max_attempts: 3 }\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dispatch.max_attempts") && err.contains("retry_horizon"),
            "{err}"
        );
        let err = parse("dispatch: { concurrency: 0 }\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("dispatch.concurrency: 0"), "{err}");
        let err = parse(
            "dispatch: { send_window: { start: \"21:00\", end: \"08:00\" } }\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("24:00"), "{err}");
    }
}
