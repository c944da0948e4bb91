//! `escalations:`: steps, their `notify:` targets and channels, `repeat`.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::Channel;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEscalation {
    pub(crate) steps: Vec<Spanned<RawStep>>,
    /// How many more times the whole sequence runs when nobody
    /// acknowledges: a whole number (0 when absent) or `until_acknowledged`.
    #[serde(default)]
    pub(crate) repeat: Option<Spanned<RawRepeat>>,
    /// An acknowledged incident not resolved within this long re-notifies.
    #[serde(default)]
    pub(crate) resolve_within: Option<Spanned<String>>,
}

/// `repeat:` as written: checked by the compiler, so a wrong value gets a
/// message naming the escalation and a hint rather than a type error.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum RawRepeat {
    /// A whole number, possibly negative or too large (reported later).
    Number(i128),
    /// A word (`until_acknowledged`, or a mistake), or a number quoted.
    Word(String),
    /// Anything else scalar (`1.5`, `true`), as written.
    Other(String),
}

impl<'de> Deserialize<'de> for RawRepeat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RepeatVisitor;
        impl<'de> Visitor<'de> for RepeatVisitor {
            type Value = RawRepeat;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number or `until_acknowledged`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RawRepeat::Other(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawRepeat::Number(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(RawRepeat::Number(v.into()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
                Ok(RawRepeat::Number(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
                Ok(RawRepeat::Number(i128::try_from(v).unwrap_or(i128::MAX)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(RawRepeat::Other(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawRepeat::Word(v.to_owned()))
            }
        }
        deserializer.deserialize_any(RepeatVisitor)
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    pub(crate) notify: Vec<Spanned<RawTarget>>,
    pub(crate) via: Vec<Spanned<Channel>>,
    pub(crate) ack_within: Spanned<String>,
    /// `backup: true`: the last step, run once when the rounds end.
    #[serde(default)]
    pub(crate) backup: Option<Spanned<bool>>,
}

/// One item of `notify:`: a contact id or `group.facilitators`, or
/// `{ on_call: ROTATION }`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum RawTarget {
    Name(String),
    OnCall(RawOnCall),
}

/// `{ on_call: nights }` in a `notify:` list.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOnCall {
    pub(crate) on_call: Spanned<String>,
}

impl<'de> Deserialize<'de> for RawTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TargetVisitor;
        impl<'de> Visitor<'de> for TargetVisitor {
            type Value = RawTarget;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a contact id, `group.facilitators`, or `{ on_call: ROTATION }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawTarget::Name(v.to_owned()))
            }
            // A contact id that YAML reads as a number (`42`), as elsewhere.
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawTarget::Name(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(RawTarget::Name(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawOnCall::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawTarget::OnCall)
            }
        }
        deserializer.deserialize_any(TargetVisitor)
    }
}
