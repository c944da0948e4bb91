//! The raw rules model: structs that mirror the YAML one to one.
//!
//! Nothing here is checked beyond YAML types and unknown keys
//! (`deny_unknown_fields`); [`super::compile`] turns these into a
//! [`super::RuleSet`]. Every value a later error may point at is
//! [`Spanned`], so the error names its line and column.
//!
//! This file holds a whole rules file ([`RawFile`]), the id-keyed mapping
//! ([`Entries`]) and `limits:`; each other document kind mirrors in its own
//! file:
//!
//! - `groups`: `groups:` and their sessions;
//! - `segments`: `segments:` and their `match:` conditions;
//! - `schedules`: `templates:` and `schedules:`, what is sent and when;
//! - `surveys`: `surveys:`, their questions, scores and item alerts;
//! - `alerts`: `alerts:`;
//! - `escalations`: `escalations:`, their steps and targets;
//! - `on_call`: `contacts:` and `rotations:`, who can be paged;
//! - `rule_tests`: `tests:`.

mod alerts;
mod escalations;
mod groups;
mod on_call;
mod rule_tests;
mod schedules;
mod segments;
mod surveys;

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

pub(crate) use self::alerts::RawAlert;
pub(crate) use self::escalations::{RawEscalation, RawRepeat, RawStep, RawTarget};
pub(crate) use self::groups::{RawExtraSession, RawGroup};
pub(crate) use self::on_call::{RawContact, RawOverride, RawRotation, RawShift};
pub(crate) use self::rule_tests::RawTest;
pub(crate) use self::schedules::{RawSchedule, RawTemplate, RawWindow};
pub(crate) use self::segments::{RawCondition, RawSegment};
pub(crate) use self::surveys::{RawExpect, RawItemAlert, RawQuestion, RawScore, RawSurvey};
pub use crate::rules::{Channel, Severity};

/// One `*.yaml` file of the rules directory. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    #[serde(default)]
    pub(crate) groups: Vec<Spanned<RawGroup>>,
    #[serde(default)]
    pub(crate) segments: Vec<Spanned<RawSegment>>,
    #[serde(default)]
    pub(crate) templates: Entries<RawTemplate>,
    #[serde(default)]
    pub(crate) schedules: Vec<Spanned<RawSchedule>>,
    #[serde(default)]
    pub(crate) surveys: Entries<RawSurvey>,
    #[serde(default)]
    pub(crate) alerts: Vec<Spanned<RawAlert>>,
    #[serde(default)]
    pub(crate) escalations: Entries<RawEscalation>,
    #[serde(default)]
    pub(crate) contacts: Entries<RawContact>,
    /// Who is on call when: targets of `notify: [{ on_call: ID }]`.
    #[serde(default)]
    pub(crate) rotations: Entries<RawRotation>,
    #[serde(default)]
    pub(crate) tests: Vec<Spanned<RawTest>>,
    /// Per-member frequency caps; at most one in the directory.
    #[serde(default)]
    pub(crate) limits: Option<Spanned<RawLimits>>,
}

/// `limits: { per_day: 1, per_week: 3 }`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    #[serde(default)]
    pub(crate) per_day: Option<Spanned<i64>>,
    #[serde(default)]
    pub(crate) per_week: Option<Spanned<i64>>,
}

/// A YAML mapping kept in document order, with the location of every key:
/// `templates:`, `surveys:`, `escalations:`, `contacts:` and `rotations:`
/// are keyed by id.
#[derive(Debug)]
pub(crate) struct Entries<V>(pub Vec<(Spanned<String>, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping from id to definition")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Entries(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    out.push((key, map.next_value()?));
                }
                Ok(Entries(out))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}
