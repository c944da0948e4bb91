//! Phone numbers in E.164, the only form Hearth stores or sends to.

use std::fmt;
use std::str::FromStr;

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
    pub fn masked(&self) -> String {
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
    type Err = String;

    fn from_str(text: &str) -> Result<Phone, String> {
        let digits = text.strip_prefix('+').unwrap_or("");
        let ok = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Phone(text.to_owned()))
        } else {
            Err(format!(
                "invalid phone number `{text}`: expected E.164, a `+` then the country code and number with no spaces, like `+15555550100`"
            ))
        }
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
    fn debug_masks_the_number() {
        let p: Phone = "+15555550100".parse().unwrap();
        assert_eq!(format!("{p:?}"), "Phone(+1••••••0100)");
        assert!(!format!("{p:?}").contains("5555550100"));
    }
}
