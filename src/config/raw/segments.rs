//! `segments:`: `match:` conditions (a scalar or a mapping of operators)
//! and `when:` expressions.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSegment {
    pub(crate) id: Spanned<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// Field or attribute name → condition; all must hold.
    #[serde(default, rename = "match")]
    pub(crate) match_: Option<Spanned<BTreeMap<String, Spanned<RawCondition>>>>,
    /// A Rhai expression over `member`; must be true as well.
    #[serde(default)]
    pub(crate) when: Option<Spanned<String>>,
}

/// A `match:` condition: either a scalar (equality) or a mapping of operators,
/// all of which must hold (`{ gte: 2, lte: 4 }`).
#[derive(Debug, Default, Serialize)]
pub(crate) struct RawCondition {
    pub(crate) eq: Option<serde_json::Value>,
    #[serde(rename = "in")]
    pub(crate) in_: Option<Vec<serde_json::Value>>,
    pub(crate) any_of: Option<Vec<serde_json::Value>>,
    pub(crate) all_of: Option<Vec<serde_json::Value>>,
    pub(crate) lt: Option<serde_json::Value>,
    pub(crate) lte: Option<serde_json::Value>,
    pub(crate) gt: Option<serde_json::Value>,
    pub(crate) gte: Option<serde_json::Value>,
    pub(crate) exists: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConditionOps {
    eq: Option<serde_json::Value>,
    #[serde(rename = "in")]
    in_: Option<Vec<serde_json::Value>>,
    any_of: Option<Vec<serde_json::Value>>,
    all_of: Option<Vec<serde_json::Value>>,
    lt: Option<serde_json::Value>,
    lte: Option<serde_json::Value>,
    gt: Option<serde_json::Value>,
    gte: Option<serde_json::Value>,
    exists: Option<bool>,
}

impl<'de> Deserialize<'de> for RawCondition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CondVisitor;
        impl<'de> Visitor<'de> for CondVisitor {
            type Value = RawCondition;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value to compare with, or a mapping of operators (eq, in, any_of, all_of, lt, lte, gt, gte, exists)")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(eq(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(eq(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(eq(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(eq(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(eq(v.into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let ops = RawConditionOps::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawCondition {
                    eq: ops.eq,
                    in_: ops.in_,
                    any_of: ops.any_of,
                    all_of: ops.all_of,
                    lt: ops.lt,
                    lte: ops.lte,
                    gt: ops.gt,
                    gte: ops.gte,
                    exists: ops.exists,
                })
            }
        }
        fn eq(v: serde_json::Value) -> RawCondition {
            RawCondition {
                eq: Some(v),
                ..RawCondition::default()
            }
        }
        deserializer.deserialize_any(CondVisitor)
    }
}
