//! Domain values that parse, not validate: once built, they are valid.
//!
//! Each parser's error is a lowercase sentence that echoes the input, fit to
//! follow `path:line:column: error:`.

mod duration;
pub mod message;
mod phone;

pub use duration::{Duration, parse_time_of_day};
pub use phone::Phone;

/// Parses an IANA timezone name (`America/New_York`).
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse::<chrono_tz::Tz>()
        .map_err(|_| format!("unknown timezone `{name}`"))
}

/// The timezone names, for "did you mean" hints.
pub fn timezone_names() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
}
