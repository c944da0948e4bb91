//! Time zones picked by the wall clock, so tests about quiet hours and
//! send windows hold whenever they run.

/// An IANA zone (`Etc/GMT±N`) where the local time is now within half an
/// hour of `hour`:00, so tests about quiet hours hold whenever they run.
///
/// Whole-hour zones keep the UTC minute, so no zone can promise that the
/// hour stays `hour` for long when the minute is late: picking by the
/// current hour alone (as this once did) gave a zone where `hour` ended
/// seconds later, and a test crossing that boundary failed. Instead the
/// zone is the one whose local time is nearest to `hour`:00, between
/// (`hour`-1):30 and `hour`:30 now, and so, for the next 30 minutes, never
/// further than an hour from `hour`:00. Callers ask for an hour at least
/// 90 minutes away from the edge that matters (3 for "quiet at night", 12
/// or 14 for "inside the default 08:00–21:00 window"). If the clock
/// crosses a half hour while the zone is picked, it is picked again.
pub fn timezone_where_it_is(hour: i32) -> String {
    loop {
        let before = chrono::Utc::now();
        let zone = zone_nearest(hour, before);
        if zone_nearest(hour, chrono::Utc::now()) == zone {
            return zone;
        }
    }
}

fn zone_nearest(hour: i32, now: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    // The UTC hour nearest to now: 10:40 counts as 11.
    let utc_hour = (now.hour() as i32 + i32::from(now.minute() >= 30)) % 24;
    let offset = (hour - utc_hour).rem_euclid(24);
    let offset = if offset > 14 { offset - 24 } else { offset };
    // POSIX-style names invert the sign: Etc/GMT-5 is UTC+5.
    match offset {
        0 => "Etc/GMT".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}
