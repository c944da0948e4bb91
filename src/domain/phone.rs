//! Phone numbers in E.164, the only form Hearth stores or sends to.

use std::fmt;
use std::str::FromStr;

use super::Invalid;

/// An E.164 number: `+`, a country code that does not start with 0, and
/// 7 to 15 digits in all. `Debug` masks it, so a stray `{:?}` in a log
/// line cannot leak it; `Display` is the full number, for providers.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(String);

impl Phone {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `+1•••••••0100`: country code's first digit and the last four.
    pub(crate) fn masked(&self) -> String {
        let digits = &self.0[1..];
        let keep = 4.min(digits.len());
        let hidden = digits.len() - keep - 1;
        format!(
            "+{}{}{}",
            &digits[..1],
            "•".repeat(hidden),
            &digits[digits.len() - keep..]
        )
    }
}

impl FromStr for Phone {
    type Err = Invalid;

    fn from_str(text: &str) -> Result<Phone, Invalid> {
        Phone::parse(text)
    }
}

impl Phone {
    /// Parses an E.164 number; on failure the hint gives the E.164 form
    /// where it can be worked out (`+1 555-555-0100` → `+15555550100`), and
    /// says so when that form assumes a country code.
    ///
    /// ```
    /// use hearth::domain::Phone;
    ///
    /// assert_eq!(Phone::parse("+15555550100").unwrap().as_str(), "+15555550100");
    /// let e = Phone::parse("+1 555 555 0100").unwrap_err();
    /// assert_eq!(e.hint.as_deref(), Some("write `+15555550100`"));
    /// ```
    pub fn parse(text: &str) -> Result<Phone, Invalid> {
        if is_e164(text) {
            Ok(Phone(text.to_owned()))
        } else {
            Err(Invalid::new(format!(
                "invalid phone number `{text}`: expected E.164, a `+` then the country code and number with no spaces, like `+15555550100`"
            ))
            .with_hint(e164_hint(text)))
        }
    }
}

fn is_e164(text: &str) -> bool {
    let digits = text.strip_prefix('+').unwrap_or("");
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// The E.164 form of a number written with spaces, dashes, dots or
/// brackets, an international `00` prefix, or as a North American national
/// number (10 digits, or 11 starting with `1`), which assumes country code 1.
fn e164_hint(text: &str) -> Option<String> {
    let t = text.trim();
    let formatting = |c: char| matches!(c, ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}');
    if !t
        .chars()
        .all(|c| c.is_ascii_digit() || c == '+' || formatting(c))
        || t.chars().skip(1).any(|c| c == '+')
    {
        return None;
    }
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    let valid = |candidate: String| is_e164(&candidate).then_some(candidate);
    if t.starts_with('+') {
        return valid(format!("+{digits}")).map(|p| format!("write `{p}`"));
    }
    if let Some(international) = digits.strip_prefix("00") {
        return valid(format!("+{international}")).map(|p| format!("write `{p}`"));
    }
    let national = match digits.len() {
        10 => Some(digits.as_str()),
        11 => digits.strip_prefix('1'),
        _ => None,
    };
    // North American area codes and exchanges do not start with 0 or 1.
    match national {
        Some(n) if !n.starts_with(['0', '1']) => valid(format!("+1{n}")).map(|p| {
            format!("write `{p}` (this assumes country code 1, the US and Canada; use your own country code after the `+` otherwise)")
        }),
        _ if digits.starts_with('0') && digits.len() > 7 => Some(format!(
            "write the country code after a `+` and drop the leading 0, like `+44{}` for a UK number",
            &digits[1..]
        )),
        _ => None,
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_e164_and_rejects_the_rest() {
        assert!("+15555550100".parse::<Phone>().is_ok());
        assert!("+447700900123".parse::<Phone>().is_ok());
        for bad in [
            "5555550100",
            "+1 555 555 0100",
            "+0123456789",
            "+12",
            "+1234567890123456",
            "+1555555010x",
        ] {
            assert!(bad.parse::<Phone>().is_err(), "{bad}");
        }
    }

    #[test]
    fn national_and_formatted_numbers_get_their_e164_form_as_a_hint() {
        let assumed = "(this assumes country code 1, the US and Canada; use your own country code after the `+` otherwise)";
        for (text, hint) in [
            ("555-555-0100", format!("write `+15555550100` {assumed}")),
            ("(555) 555-0100", format!("write `+15555550100` {assumed}")),
            ("555.555.0100", format!("write `+15555550100` {assumed}")),
            ("1-555-555-0100", format!("write `+15555550100` {assumed}")),
            ("+1 555 555 0100", "write `+15555550100`".to_owned()),
            ("+44 7700 900123", "write `+447700900123`".to_owned()),
            ("0044 7700 900123", "write `+447700900123`".to_owned()),
            (
                "07700 900123",
                "write the country code after a `+` and drop the leading 0, like `+447700900123` for a UK number".to_owned(),
            ),
        ] {
            let err = Phone::parse(text).unwrap_err();
            assert_eq!(err.hint.as_deref(), Some(hint.as_str()), "{text}");
            assert!(err.message.contains(&format!("`{text}`")), "{text}");
        }
    }

    #[test]
    fn no_hint_for_what_is_not_a_number() {
        for text in [
            "call me",
            "555-0100",
            "+12",
            "+1555555010x",
            "",
            "++15555550100",
        ] {
            assert_eq!(Phone::parse(text).unwrap_err().hint, None, "{text}");
        }
    }

    #[test]
    fn debug_masks_the_number() {
        let p: Phone = "+15555550100".parse().unwrap();
        assert_eq!(format!("{p:?}"), "Phone(+1••••••0100)");
        assert!(!format!("{p:?}").contains("5555550100"));
    }
}
