//! The raw rules model: structs that mirror the YAML one to one.
//!
//! Nothing here is checked beyond YAML types and unknown keys
//! (`deny_unknown_fields`); [`super::compile`] turns these into a
//! [`super::RuleSet`]. Every value a later error may point at is
//! [`Spanned`], so the error names its line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

pub use crate::engine::rules::{Channel, Severity};

/// One `*.yaml` file of the rules directory. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    #[serde(default)]
    pub groups: Vec<Spanned<RawGroup>>,
    #[serde(default)]
    pub segments: Vec<Spanned<RawSegment>>,
    #[serde(default)]
    pub templates: Entries<RawTemplate>,
    #[serde(default)]
    pub schedules: Vec<Spanned<RawSchedule>>,
    #[serde(default)]
    pub surveys: Entries<RawSurvey>,
    #[serde(default)]
    pub alerts: Vec<Spanned<RawAlert>>,
    #[serde(default)]
    pub escalations: Entries<RawEscalation>,
    #[serde(default)]
    pub contacts: Entries<RawContact>,
    /// Who is on call when: targets of `notify: [{ on_call: ID }]`.
    #[serde(default)]
    pub rotations: Entries<RawRotation>,
    #[serde(default)]
    pub tests: Vec<Spanned<RawTest>>,
    /// Per-member frequency caps; at most one in the directory.
    #[serde(default)]
    pub limits: Option<Spanned<RawLimits>>,
}

/// `limits: { per_day: 1, per_week: 3 }`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    #[serde(default)]
    pub per_day: Option<Spanned<i64>>,
    #[serde(default)]
    pub per_week: Option<Spanned<i64>>,
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

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGroup {
    pub id: Spanned<String>,
    pub name: Spanned<String>,
    pub timezone: Spanned<String>,
    pub sessions: Spanned<RawSessions>,
    #[serde(default)]
    pub facilitators: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSessions {
    pub cron: Spanned<String>,
    pub duration: Spanned<String>,
    /// Dates (`YYYY-MM-DD`, in the group's timezone) on which no session meets.
    #[serde(default)]
    pub cancelled: Vec<Spanned<String>>,
    /// One-off sessions outside the pattern.
    #[serde(default)]
    pub extra: Vec<Spanned<RawExtraSession>>,
}

/// `{ date: "2026-12-23", at: "18:00", duration: 60m }` under `extra:`;
/// `time` is another name for `at`, `duration` defaults to the group's.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExtraSession {
    pub date: Spanned<String>,
    #[serde(alias = "time")]
    pub at: Spanned<String>,
    #[serde(default)]
    pub duration: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSegment {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Field or attribute name → condition; all must hold.
    #[serde(default, rename = "match")]
    pub match_: Option<Spanned<BTreeMap<String, Spanned<RawCondition>>>>,
    /// A Rhai expression over `member`; must be true as well.
    #[serde(default)]
    pub when: Option<Spanned<String>>,
}

/// A `match:` condition: either a scalar (equality) or a mapping of operators,
/// all of which must hold (`{ gte: 2, lte: 4 }`).
#[derive(Debug, Default, Serialize)]
pub(crate) struct RawCondition {
    pub eq: Option<serde_json::Value>,
    #[serde(rename = "in")]
    pub in_: Option<Vec<serde_json::Value>>,
    pub any_of: Option<Vec<serde_json::Value>>,
    pub all_of: Option<Vec<serde_json::Value>>,
    pub lt: Option<serde_json::Value>,
    pub lte: Option<serde_json::Value>,
    pub gt: Option<serde_json::Value>,
    pub gte: Option<serde_json::Value>,
    pub exists: Option<bool>,
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

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTemplate {
    pub body: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedule {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Who receives it; `all` when absent.
    #[serde(default)]
    pub segment: Option<Spanned<String>>,
    /// Restrict to members of these groups (and, for session-relative
    /// schedules, to these groups' sessions). Every group when absent.
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    #[serde(default)]
    pub template: Option<Spanned<String>>,
    #[serde(default)]
    pub survey: Option<Spanned<String>>,
    #[serde(default)]
    pub cron: Option<Spanned<String>>,
    /// IANA timezone of `cron`; the recipient's own timezone when absent.
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    #[serde(default)]
    pub before_session: Option<Spanned<String>>,
    #[serde(default)]
    pub after_session: Option<Spanned<String>>,
    /// Local time of day (`HH:MM`) on the day `before_session`/`after_session` lands on.
    #[serde(default)]
    pub at: Option<Spanned<String>>,
    #[serde(default)]
    pub expires_after: Option<Spanned<String>>,
    /// Spread each recipient's message across this local window.
    #[serde(default)]
    pub window: Option<Spanned<RawWindow>>,
    /// How late a missed fire may still be processed (`0`: never).
    #[serde(default)]
    pub catch_up: Option<Spanned<String>>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// `window: { from: "10:00", to: "14:00" }`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWindow {
    pub from: Spanned<String>,
    pub to: Spanned<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSurvey {
    #[serde(default)]
    pub description: Option<String>,
    pub questions: Vec<Spanned<RawQuestion>>,
    #[serde(default)]
    pub reprompt: Option<Spanned<String>>,
    #[serde(default)]
    pub max_reprompts: Option<u32>,
    #[serde(default)]
    pub expires_after: Option<Spanned<String>>,
    /// Sent once every question is answered.
    #[serde(default)]
    pub thanks: Option<Spanned<String>>,
    /// Ask the current question once more after this long without an answer.
    #[serde(default)]
    pub remind_after: Option<Spanned<String>>,
    /// How the answers add up to a score (instruments).
    #[serde(default)]
    pub score: Option<Spanned<RawScore>>,
    /// Alerts on single answers (PHQ-9 item 9 above 0).
    #[serde(default)]
    pub alerts: Vec<Spanned<RawItemAlert>>,
}

/// `score:` of a survey.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScore {
    /// Question ids summed; every number question when absent.
    #[serde(default)]
    pub items: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub reverse: Vec<Spanned<String>>,
    #[serde(default)]
    pub bands: Vec<Spanned<RawBand>>,
}

/// `{ from: 5, label: mild }`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBand {
    pub from: f64,
    pub label: String,
}

/// An alert on one answer (`alerts:` inside a survey).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawItemAlert {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub question: Spanned<String>,
    #[serde(default)]
    pub above: f64,
    #[serde(default = "warning")]
    pub severity: Severity,
    #[serde(default)]
    pub reply: Option<Spanned<String>>,
    #[serde(default)]
    pub escalate: Option<Spanned<String>>,
    #[serde(default)]
    pub realert: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuestion {
    pub id: Spanned<String>,
    pub ask: Spanned<String>,
    pub expect: Spanned<RawExpect>,
}

#[derive(Debug, Deserialize, Serialize, Clone, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum RawExpect {
    Number {
        #[serde(default)]
        min: Option<f64>,
        #[serde(default)]
        max: Option<f64>,
        #[serde(default)]
        integer: bool,
    },
    Choice(Vec<String>),
    YesNo,
    FreeText,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlert {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "warning")]
    pub severity: Severity,
    #[serde(default)]
    pub keywords: Vec<Spanned<String>>,
    #[serde(default)]
    pub when: Option<Spanned<String>>,
    #[serde(default)]
    pub script: Option<Spanned<String>>,
    #[serde(default)]
    pub reply: Option<Spanned<String>>,
    #[serde(default)]
    pub escalate: Option<Spanned<String>>,
    #[serde(default)]
    pub realert: Option<Spanned<String>>,
    /// A cron pattern: evaluate for every active member at each fire, in
    /// the member's timezone, instead of on a reply.
    #[serde(default)]
    pub every: Option<Spanned<String>>,
}

fn warning() -> Severity {
    Severity::Warning
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEscalation {
    pub steps: Vec<Spanned<RawStep>>,
    /// How many more times the whole sequence runs when nobody
    /// acknowledges: a whole number (0 when absent) or `until_acknowledged`.
    #[serde(default)]
    pub repeat: Option<Spanned<RawRepeat>>,
    /// An acknowledged incident not resolved within this long re-notifies.
    #[serde(default)]
    pub resolve_within: Option<Spanned<String>>,
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
    pub notify: Vec<Spanned<RawTarget>>,
    pub via: Vec<Spanned<Channel>>,
    pub ack_within: Spanned<String>,
    /// `backup: true`: the last step, run once when the rounds end.
    #[serde(default)]
    pub backup: Option<Spanned<bool>>,
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
    pub on_call: Spanned<String>,
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

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContact {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub sms: Option<Spanned<String>>,
    #[serde(default)]
    pub email: Option<Spanned<String>>,
    #[serde(default)]
    pub webhook: Option<Spanned<String>>,
    /// Notifications to this contact may carry the member's own words.
    #[serde(default)]
    pub phi: bool,
}

/// `rotations:`: weekly shifts in one timezone, and dated overrides.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRotation {
    #[serde(default)]
    pub description: Option<String>,
    pub timezone: Spanned<String>,
    #[serde(default)]
    pub shifts: Vec<Spanned<RawShift>>,
    #[serde(default)]
    pub overrides: Vec<Spanned<RawOverride>>,
}

/// `{ days: [mon, tue], from: "17:00", to: "09:00", contacts: [dana] }`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShift {
    pub days: Vec<Spanned<String>>,
    pub from: Spanned<String>,
    pub to: Spanned<String>,
    pub contacts: Vec<Spanned<String>>,
}

/// `{ from: "2026-12-24T17:00", to: "2026-12-26T09:00", contacts: [sam] }`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOverride {
    pub from: Spanned<String>,
    pub to: Spanned<String>,
    pub contacts: Vec<Spanned<String>>,
}

/// A rule unit test (`hearth test` runs these; here they are only validated).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTest {
    pub name: Spanned<String>,
    #[serde(default)]
    pub member: RawTestMember,
    /// RFC 3339 instant the test clock starts at.
    pub start: Spanned<String>,
    pub steps: Vec<Spanned<RawTestStep>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTestMember {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    #[serde(default)]
    pub days_since_joined: Option<i64>,
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTestStep {
    /// Move the clock forward by this duration, firing what falls due.
    #[serde(default)]
    pub advance: Option<Spanned<String>>,
    /// The member texts this.
    #[serde(default)]
    pub reply: Option<Spanned<String>>,
    #[serde(default)]
    pub expect: RawTestExpect,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTestExpect {
    /// Template or survey ids of the messages sent to the member in this step.
    #[serde(default)]
    pub messages: Vec<Spanned<String>>,
    /// Alert ids raised in this step.
    #[serde(default)]
    pub alerts: Vec<Spanned<String>>,
}
