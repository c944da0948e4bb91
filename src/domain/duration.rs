//! Human durations as rules write them: `90m`, `1d`, `2h30m`, `1w`.

use std::fmt;
use std::str::FromStr;

use super::Invalid;

/// A positive length of time, written with units `w`, `d`, `h`, `m`, `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    seconds: u64,
}

impl Duration {
    pub const fn from_secs(seconds: u64) -> Duration {
        Duration { seconds }
    }

    pub fn as_secs(self) -> u64 {
        self.seconds
    }

    pub(crate) fn std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.seconds)
    }

    /// As a chrono span, capped at 1,000 years: rules accept any duration
    /// that fits in 64 bits, and chrono's `TimeDelta` and date arithmetic
    /// panic long before that. Nothing a schedule, survey or escalation
    /// does is changed by the cap.
    pub(crate) fn chrono(self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(self.seconds.min(Self::CHRONO_MAX_SECS) as i64)
    }

    const CHRONO_MAX_SECS: u64 = 1_000 * 366 * 86_400;

    /// Whole days, when the duration is a whole number of days.
    pub(crate) fn whole_days(self) -> Option<u64> {
        self.seconds
            .is_multiple_of(86_400)
            .then_some(self.seconds / 86_400)
    }
}

impl FromStr for Duration {
    type Err = Invalid;

    fn from_str(text: &str) -> Result<Duration, Invalid> {
        Duration::parse(text)
    }
}

impl Duration {
    /// Parses `90m`, `2h30m`, `1d`; on failure the error's hint is the
    /// written-out fix where one can be worked out (`2 hours` → `2h`).
    ///
    /// ```
    /// use hearth::domain::Duration;
    ///
    /// assert_eq!(Duration::parse("2h30m").unwrap().as_secs(), 9_000);
    /// let e = Duration::parse("2 hours").unwrap_err();
    /// assert!(e.message.contains("`2 hours`"), "{e}");
    /// assert!(e.hint.as_deref().is_some_and(|h| h.contains("2h")), "{:?}", e.hint);
    /// ```
    pub fn parse(text: &str) -> Result<Duration, Invalid> {
        Duration::parse_strict(text).map_err(|message| {
            let hint = lenient(text).map(|fixed| format!("write `{fixed}`"));
            Invalid::new(message).with_hint(hint)
        })
    }

    fn parse_strict(text: &str) -> Result<Duration, String> {
        let bad = || {
            format!(
                "invalid duration `{text}`: expected a number and a unit, like `90m`, `2h30m` or `1d` (units: w, d, h, m, s)"
            )
        };
        let s = text.trim();
        if s.is_empty() {
            return Err(bad());
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        let mut last_unit_rank = usize::MAX;
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let (rank, unit) = match c {
                'w' => (4, 604_800),
                'd' => (3, 86_400),
                'h' => (2, 3_600),
                'm' => (1, 60),
                's' => (0, 1),
                _ => return Err(bad()),
            };
            if digits.is_empty() {
                return Err(bad());
            }
            // Units must be given largest first, each at most once.
            if rank == last_unit_rank {
                return Err(format!(
                    "invalid duration `{text}`: unit `{c}` appears twice"
                ));
            }
            if rank > last_unit_rank {
                return Err(format!(
                    "invalid duration `{text}`: give units largest first, like `1h30m`"
                ));
            }
            last_unit_rank = rank;
            let n: u64 = digits.parse().map_err(|_| bad())?;
            digits.clear();
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
        }
        if !digits.is_empty() {
            return Err(format!(
                "invalid duration `{text}`: the number `{digits}` has no unit (w, d, h, m or s)"
            ));
        }
        if total == 0 {
            return Err(format!(
                "invalid duration `{text}`: must be longer than zero"
            ));
        }
        Ok(Duration { seconds: total })
    }
}

/// Reads a duration the way a person might write it (`2 hours`,
/// `90 minutes`, `1 day`, `30 mins`, `1h 30m`, `2H`, `1.5h`, `30m2h`) and
/// returns the form rules take, or `None` when the text is not a duration
/// at all or already parses. Keeps the writer's own numbers when they are
/// whole and in order (`90 minutes` → `90m`), else normalizes (`1.5h` →
/// `1h30m`).
fn lenient(text: &str) -> Option<String> {
    let lower = text.trim().to_lowercase();
    let mut parts: Vec<(String, char)> = Vec::new();
    let mut rest = lower.as_str();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if let Some(after) = rest.strip_prefix("and ") {
            rest = after;
            continue;
        }
        if rest.is_empty() {
            break;
        }
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number = &rest[..number_len];
        rest = rest[number_len..].trim_start();
        let word_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let word = &rest[..word_len];
        rest = &rest[word_len..];
        let unit = match word {
            "w" | "wk" | "wks" | "week" | "weeks" => 'w',
            "d" | "day" | "days" => 'd',
            "h" | "hr" | "hrs" | "hour" | "hours" => 'h',
            "m" | "min" | "mins" | "minute" | "minutes" => 'm',
            "s" | "sec" | "secs" | "second" | "seconds" => 's',
            _ => return None,
        };
        parts.push((number.to_owned(), unit));
    }
    if parts.is_empty() {
        return None;
    }
    let seconds_of = |unit: char| match unit {
        'w' => 604_800.0,
        'd' => 86_400.0,
        'h' => 3_600.0,
        'm' => 60.0,
        _ => 1.0,
    };
    let mut total = 0.0_f64;
    for (number, unit) in &parts {
        let n: f64 = number.parse().ok()?;
        total += n * seconds_of(*unit);
    }
    if !(total >= 1.0 && total.fract() == 0.0 && total < 1e15) {
        return None;
    }
    let literal: String = parts.iter().map(|(n, u)| format!("{n}{u}")).collect();
    let fixed = match Duration::parse_strict(&literal) {
        Ok(d) if d.as_secs() as f64 == total => literal,
        _ => Duration::from_secs(total as u64).to_string(),
    };
    (fixed != text).then_some(fixed)
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.seconds;
        for (unit, len) in [
            ("w", 604_800),
            ("d", 86_400),
            ("h", 3_600),
            ("m", 60),
            ("s", 1),
        ] {
            if rest >= len {
                write!(f, "{}{unit}", rest / len)?;
                rest %= len;
            }
        }
        Ok(())
    }
}

/// Parses a local time of day written `HH:MM` (24-hour). The hint gives
/// the 24-hour form of `5pm`, `5:30 PM`, `noon`, `1700` or `17:00:00`.
pub fn parse_time_of_day(text: &str) -> Result<chrono::NaiveTime, Invalid> {
    chrono::NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| {
        Invalid::new(format!(
            "invalid time of day `{text}`: expected 24-hour `HH:MM`, like `17:00`"
        ))
        .with_hint(time_hint(text).map(|t| format!("write `{}`", t.format("%H:%M"))))
    })
}

fn time_hint(text: &str) -> Option<chrono::NaiveTime> {
    let t = text.trim().to_lowercase().replace('.', "");
    match t.as_str() {
        "noon" | "midday" => return chrono::NaiveTime::from_hms_opt(12, 0, 0),
        "midnight" => return chrono::NaiveTime::from_hms_opt(0, 0, 0),
        _ => {}
    }
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    let (clock, half) = match (compact.strip_suffix("am"), compact.strip_suffix("pm")) {
        (Some(c), _) => (c, Some(0)),
        (_, Some(c)) => (c, Some(12)),
        _ => (compact.as_str(), None),
    };
    let (hour, minute) = match clock.split_once([':', 'h']) {
        Some((h, m)) => (h, m.get(..2).unwrap_or(m)),
        None if half.is_none() && clock.len() == 4 && clock.is_ascii() => {
            (&clock[..2], &clock[2..])
        }
        None => (clock, "0"),
    };
    let mut hour: u32 = hour.parse().ok()?;
    let minute: u32 = if minute.is_empty() {
        0
    } else {
        minute.parse().ok()?
    };
    if let Some(offset) = half {
        if !(1..=12).contains(&hour) {
            return None;
        }
        hour = hour % 12 + offset;
    }
    chrono::NaiveTime::from_hms_opt(hour, minute, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_duration_is_still_a_span_dates_can_be_moved_by() {
        let d = Duration::parse(&format!("{}s", u64::MAX)).unwrap();
        let now = chrono::Utc::now();
        assert!(now + d.chrono() > now);
        assert!(now - d.chrono() - d.chrono() < now);
        assert_eq!(d.chrono(), Duration::from_secs(u64::MAX / 2).chrono());
    }

    #[test]
    fn parses_the_forms_rules_use() {
        for (text, secs) in [
            ("90m", 5_400),
            ("1d", 86_400),
            ("2h30m", 9_000),
            ("1w2d", 777_600),
            ("45s", 45),
        ] {
            assert_eq!(text.parse::<Duration>().unwrap().as_secs(), secs, "{text}");
        }
    }

    #[test]
    fn rejects_malformed_durations_with_the_input_echoed() {
        for text in ["", "90", "m", "1x", "30m2h", "1h1h", "0m", "-5m", "1.5h"] {
            let err = text.parse::<Duration>().unwrap_err();
            assert!(err.message.contains(&format!("`{text}`")), "{text}: {err}");
        }
    }

    #[test]
    fn durations_written_in_words_get_the_rule_form_as_a_hint() {
        for (text, fixed) in [
            ("2 hours", "2h"),
            ("90 minutes", "90m"),
            ("1 day", "1d"),
            ("30 mins", "30m"),
            ("1 week", "1w"),
            ("45 seconds", "45s"),
            ("2 hours 30 minutes", "2h30m"),
            ("2 hours and 30 minutes", "2h30m"),
            ("1h 30m", "1h30m"),
            ("2H", "2h"),
            ("2hrs", "2h"),
            ("1.5h", "1h30m"),
            ("30m2h", "2h30m"),
            ("1h1h", "2h"),
        ] {
            let err = Duration::parse(text).unwrap_err();
            assert_eq!(
                err.hint.as_deref(),
                Some(format!("write `{fixed}`").as_str()),
                "{text}: {err}"
            );
            assert!(err.message.contains(&format!("`{text}`")), "{text}: {err}");
            assert!(Duration::parse(fixed).is_ok(), "{fixed}");
        }
    }

    #[test]
    fn no_hint_where_the_fix_cannot_be_worked_out() {
        for text in ["", "90", "soon", "0m", "-5m", "2 fortnights", "0.5s"] {
            let err = Duration::parse(text).unwrap_err();
            assert_eq!(err.hint, None, "{text}");
        }
    }

    #[test]
    fn displays_in_the_form_it_parses() {
        for text in ["90m", "1d", "2h30m", "1w2d", "45s"] {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.to_string().parse::<Duration>().unwrap(), d);
        }
        assert_eq!("90m".parse::<Duration>().unwrap().to_string(), "1h30m");
    }

    #[test]
    fn other_ways_of_writing_a_time_get_the_24_hour_form_as_a_hint() {
        for (text, fixed) in [
            ("5pm", "17:00"),
            ("5:30 PM", "17:30"),
            ("9 a.m.", "09:00"),
            ("noon", "12:00"),
            ("1700", "17:00"),
            ("17:00:00", "17:00"),
            ("17h", "17:00"),
        ] {
            let err = parse_time_of_day(text).unwrap_err();
            assert_eq!(
                err.hint.as_deref(),
                Some(format!("write `{fixed}`").as_str()),
                "{text}"
            );
        }
        assert_eq!(parse_time_of_day("25:00").unwrap_err().hint, None);
        assert_eq!(parse_time_of_day("soon").unwrap_err().hint, None);
        assert_eq!(parse_time_of_day("1é2").unwrap_err().hint, None);
        assert_eq!(parse_time_of_day("13pm").unwrap_err().hint, None);
    }

    #[test]
    fn time_of_day_is_24_hour_hh_mm() {
        assert_eq!(parse_time_of_day("17:00").unwrap().to_string(), "17:00:00");
        assert!(parse_time_of_day("5pm").is_err());
        assert!(parse_time_of_day("25:00").is_err());
    }
}
