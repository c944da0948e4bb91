//! The error of a domain parser: what is wrong, and the fix when it can be
//! worked out from the input.

use std::fmt;

/// A value that did not parse. `message` is a lowercase sentence echoing the
/// input; `hint`, when present, is the corrected input or the step that
/// fixes it, for a `  hint: ...` line under the error. `Display` (and the
/// conversion to `String`) is the message alone, so callers that add their
/// own context keep working; callers that can show a hint read `hint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub message: String,
    pub hint: Option<String>,
}

impl Invalid {
    pub(crate) fn new(message: impl Into<String>) -> Invalid {
        Invalid {
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: Option<String>) -> Invalid {
        self.hint = hint;
        self
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Invalid {}

impl From<Invalid> for String {
    fn from(e: Invalid) -> String {
        e.message
    }
}

#[cfg(test)]
mod tests {
    use super::Invalid;
    use crate::domain::CronSpec;
    use crate::domain::{
        Duration, Phone, parse_email, parse_time_of_day, parse_timezone, parse_webhook_url,
    };
    use crate::testing::Rng;

    /// Text built from pieces the parsers care about, plus multi-byte
    /// characters, so slicing on a wrong boundary would show.
    fn text(rng: &mut Rng) -> String {
        const PIECES: &[&str] = &[
            "1",
            "2",
            "30",
            "0",
            "00",
            "555",
            "+",
            "-",
            " ",
            ".",
            ":",
            "(",
            ")",
            "h",
            "m",
            "d",
            "w",
            "s",
            "hours",
            "min",
            "pm",
            "am",
            "noon",
            "MON",
            "Tues",
            "MONDAY",
            "*",
            "/",
            "@",
            "<",
            ">",
            "mailto:",
            "https://",
            "http://",
            "ftp://",
            "é",
            "🙂",
            "ü",
            "_",
            "America/New York",
            "america/new_york",
            "\u{a0}",
            "\t",
            "x",
            "Z",
            "L",
            "#",
            "*/15",
        ];
        let n = rng.next() % 8;
        (0..n).map(|_| *rng.pick(PIECES)).collect()
    }

    /// The text inside the first pair of backticks of a hint.
    fn suggested(hint: &str) -> Option<&str> {
        let start = hint.find('`')? + 1;
        let len = hint[start..].find('`')?;
        Some(&hint[start..start + len])
    }

    #[test]
    fn no_parser_panics_and_every_written_out_fix_parses() {
        type Check = fn(&str) -> Result<(), Invalid>;
        let parsers: [(&str, Check); 7] = [
            ("duration", |t| Duration::parse(t).map(drop)),
            ("phone", |t| Phone::parse(t).map(drop)),
            ("timezone", |t| parse_timezone(t).map(drop)),
            ("time of day", |t| parse_time_of_day(t).map(drop)),
            ("cron", |t| CronSpec::parse(t).map(drop)),
            ("email", |t| parse_email(t).map(drop)),
            ("webhook", |t| parse_webhook_url(t).map(drop)),
        ];
        let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
        let mut checked = 0;
        for _ in 0..3_000 {
            let input = text(&mut rng);
            for (name, parse) in &parsers {
                let Err(e) = parse(&input) else { continue };
                assert!(!e.message.is_empty(), "{name} `{input}`");
                // "write `X`" and "...: `X`" hints offer X as the whole fix.
                let Some(hint) = e.hint.as_deref() else {
                    continue;
                };
                if hint.starts_with("write `") || hint.contains(": `") {
                    let fixed = suggested(&hint[hint.find('`').unwrap_or(0)..])
                        .unwrap_or_else(|| panic!("{name} `{input}`: {hint}"));
                    assert!(
                        parse(fixed).is_ok(),
                        "{name} `{input}`: the hint's `{fixed}` does not parse ({hint})"
                    );
                    checked += 1;
                }
            }
        }
        assert!(
            checked >= 100,
            "only {checked} written-out fixes were tried"
        );
    }
}
