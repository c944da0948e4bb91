//! SMS length arithmetic: how many segments a body costs.
//!
//! A body that fits the GSM 03.38 alphabet travels as GSM-7 (160 characters
//! in one segment, 153 per segment when split; characters of the extension
//! table count twice). Anything else forces UCS-2 (70 UTF-16 units alone, 67
//! per segment when split).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsLength {
    pub encoding: Encoding,
    /// Septets for GSM-7, UTF-16 code units for UCS-2.
    pub(crate) units: usize,
    pub segments: usize,
}

const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// Measures a message body.
pub fn measure(body: &str) -> SmsLength {
    let mut septets = 0;
    for c in body.chars() {
        if GSM_BASIC.contains(c) {
            septets += 1;
        } else if GSM_EXTENDED.contains(c) {
            septets += 2;
        } else {
            let units = body.encode_utf16().count();
            return SmsLength {
                encoding: Encoding::Ucs2,
                units,
                segments: segments(units, 70, 67),
            };
        }
    }
    SmsLength {
        encoding: Encoding::Gsm7,
        units: septets,
        segments: segments(septets, 160, 153),
    }
}

fn segments(units: usize, single: usize, per_part: usize) -> usize {
    if units <= single {
        1
    } else {
        units.div_ceil(per_part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_bodies_split_at_160_then_153() {
        assert_eq!(measure(&"a".repeat(160)).segments, 1);
        assert_eq!(measure(&"a".repeat(161)).segments, 2);
        assert_eq!(measure(&"a".repeat(306)).segments, 2);
        assert_eq!(measure(&"a".repeat(307)).segments, 3);
        assert_eq!(measure("Hi").encoding, Encoding::Gsm7);
    }

    #[test]
    fn extension_characters_count_twice() {
        assert_eq!(measure("€").units, 2);
        assert_eq!(measure(&"[".repeat(80)).segments, 1);
        assert_eq!(measure(&"[".repeat(81)).segments, 2);
    }

    #[test]
    fn one_emoji_forces_ucs2() {
        let body = format!("{}🙂", "a".repeat(68));
        let len = measure(&body);
        assert_eq!(len.encoding, Encoding::Ucs2);
        assert_eq!(len.units, 70);
        assert_eq!(len.segments, 1);
        assert_eq!(measure(&format!("{}🙂", "a".repeat(69))).segments, 2);
    }
}
