//! IANA timezone names (`America/New_York`).

use super::Invalid;

/// Parses an IANA timezone name. On failure the hint is the right name
/// where it can be worked out: spaces for underscores (`America/New York`)
/// or the wrong case (`america/new_york`). Other misspellings are left to
/// the caller's "did you mean" over [`timezone_names`].
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, Invalid> {
    name.parse::<chrono_tz::Tz>().map_err(|_| {
        Invalid::new(format!("unknown timezone `{name}`"))
            .with_hint(corrected(name).map(|right| format!("write `{right}`")))
    })
}

/// The timezone names, for "did you mean" hints.
pub fn timezone_names() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
}

fn corrected(name: &str) -> Option<&'static str> {
    let wanted: String = name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
        .replace("_/_", "/")
        .replace("_/", "/")
        .replace("/_", "/");
    timezone_names().find(|known| known.eq_ignore_ascii_case(&wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_and_wrong_case_get_the_right_name_as_a_hint() {
        for (text, right) in [
            ("America/New York", "America/New_York"),
            ("america/new_york", "America/New_York"),
            ("AMERICA/LOS ANGELES", "America/Los_Angeles"),
            ("Europe / London", "Europe/London"),
            (" america/chicago ", "America/Chicago"),
        ] {
            let err = parse_timezone(text).unwrap_err();
            assert_eq!(err.message, format!("unknown timezone `{text}`"));
            assert_eq!(
                err.hint.as_deref(),
                Some(format!("write `{right}`").as_str()),
                "{text}"
            );
        }
    }

    #[test]
    fn right_names_parse_and_unknown_ones_get_no_hint_here() {
        assert_eq!(
            parse_timezone("America/New_York").unwrap(),
            chrono_tz::America::New_York
        );
        assert_eq!(parse_timezone("America/New_Yrok").unwrap_err().hint, None);
        assert_eq!(parse_timezone("").unwrap_err().hint, None);
    }
}
