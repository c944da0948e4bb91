//! Wall-clock time in an IANA timezone across daylight-saving changes: a
//! local time resolved as a fixed-time job is (after a gap, the first of an
//! overlap), and the local day (or week) around an instant.

use chrono::{
    DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone,
    Utc,
};
use chrono_tz::Tz;

/// More than any zone's offset moves at one change (two hours at most,
/// Antarctica/Troll): naive local times this far from an instant's own
/// local time cannot map to the other side of it.
pub(crate) const MARGIN: TimeDelta = TimeDelta::hours(3);

/// A local wall time on a local date, resolved as a fixed-time job is:
/// in a gap, the first valid instant after it; in an overlap, the first
/// occurrence.
pub fn resolve_local(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Tz> {
    let naive = date.and_time(time);
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t,
        LocalResult::Ambiguous(first, _) => first,
        LocalResult::None => after_gap(tz, naive),
    }
}

/// The first instant whose local time is at or past `naive`, a wall time
/// inside a gap: the instant the clocks jumped (02:30 → 03:00 in New York).
pub(crate) fn after_gap(tz: Tz, naive: NaiveDateTime) -> DateTime<Tz> {
    let reaches = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local() >= naive;
    // `naive` read at the offset before the gap is an instant past the
    // jump; a margin earlier is before it. Search between, to the second.
    let before_offset = tz
        .from_local_datetime(&(naive - MARGIN))
        .earliest()
        .map(|t| t.offset().fix())
        .unwrap_or_else(|| tz.offset_from_utc_datetime(&naive).fix());
    let jumped = naive.and_utc().timestamp() - i64::from(before_offset.local_minus_utc());
    let at = |secs: i64| DateTime::from_timestamp(secs, 0).unwrap_or_default();
    let (mut lo, mut hi) = (jumped - MARGIN.num_seconds(), jumped);
    if !reaches(at(hi)) || reaches(at(lo)) {
        // Not the shape of a gap (no zone does this): step forward by the
        // minute to the first wall time that exists.
        let mut probe = naive;
        for _ in 0..(MARGIN.num_minutes() * 2) {
            probe += TimeDelta::minutes(1);
            if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                return t;
            }
        }
        return at(hi).with_timezone(&tz);
    }
    // Whole seconds: `lo` never reaches `naive`, `hi` always does.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if reaches(at(mid)) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    at(hi).with_timezone(&tz)
}

/// `[start, end)` of the local day of `at` in `tz`, the start moved back
/// `days_before` local days: the span a per-day (0) or per-week (6) cap
/// counts over.
pub(crate) fn local_day(
    tz: Tz,
    at: DateTime<Utc>,
    days_before: u64,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let date = at.with_timezone(&tz).date_naive();
    let first = date.checked_sub_days(Days::new(days_before))?;
    let next = date.checked_add_days(Days::new(1))?;
    let midnight = |d: chrono::NaiveDate| resolve_local(tz, d, NaiveTime::MIN).with_timezone(&Utc);
    Some((midnight(first), midnight(next)))
}
