//! The compiled, immutable rule set the daemon runs on.
//!
//! Built only by [`crate::config::compile`], and only when the whole
//! directory compiled without an error: every reference here resolves,
//! every script and template is compiled, every cron pattern parsed.
//!
//! These types live in `engine` (not `config`) because the engine
//! evaluates them and `config` builds them: `config` depends on `engine`,
//! never the other way round. [`crate::rules`] re-exports them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use rhai::AST;

use serde::{Deserialize, Serialize};

use super::script::Sandbox;
use super::template::Templates;
use crate::domain::CronSpec;
pub use crate::domain::{Channel, Severity};
use crate::domain::{Duration, Phone};

/// The id of the built-in segment that holds every active member.
pub(crate) const ALL_SEGMENT: &str = "all";

#[derive(Debug, Clone)]
pub struct RuleSet {
    pub groups: BTreeMap<String, Group>,
    pub(crate) segments: BTreeMap<String, Segment>,
    pub(crate) templates: BTreeMap<String, TemplateInfo>,
    pub schedules: BTreeMap<String, Schedule>,
    pub surveys: BTreeMap<String, Survey>,
    /// Critical alerts first, then in the order the files list them.
    pub alerts: Vec<Alert>,
    pub escalations: BTreeMap<String, Escalation>,
    pub(crate) contacts: BTreeMap<String, Contact>,
    pub(crate) rotations: BTreeMap<String, Rotation>,
    /// Per-member frequency caps on routine (scheduled) messages; `None`
    /// when no `limits:` document is given.
    pub(crate) limits: Option<Limits>,
    pub(crate) tests: Vec<RuleTest>,
    pub renderer: Templates,
    pub(crate) sandbox: Sandbox,
    /// Every rule by kind and id with a fingerprint of its definition, for
    /// diffs between reloads.
    pub(crate) inventory: Inventory,
}

/// `(kind, id) → fingerprint`.
pub(crate) type Inventory = BTreeMap<(&'static str, String), String>;

impl RuleSet {
    /// How many rules of each kind, for summaries.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("groups", self.groups.len()),
            ("segments", self.segments.len()),
            ("templates", self.templates.len()),
            ("schedules", self.schedules.len()),
            ("surveys", self.surveys.len()),
            ("alerts", self.alerts.len()),
            ("escalations", self.escalations.len()),
            ("contacts", self.contacts.len()),
            ("rotations", self.rotations.len()),
            ("tests", self.tests.len()),
        ]
    }
}

#[derive(Debug, Clone)]
pub struct Group {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) timezone: Tz,
    pub(crate) sessions: CronSpec,
    pub(crate) duration: Duration,
    pub(crate) cancelled: BTreeSet<NaiveDate>,
    /// One-off sessions outside the pattern (`extra:`), in date order.
    pub(crate) extra: Vec<ExtraSession>,
    /// Contact ids.
    pub(crate) facilitators: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Segment {
    pub id: String,
    pub conditions: Vec<Condition>,
    pub when: Option<AST>,
}

/// A member field or roster attribute compared with a value.
#[derive(Debug, Clone)]
pub struct Condition {
    pub field: Field,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// One of [`MEMBER_FIELDS`].
    Member(String),
    /// A free roster attribute (`diagnosis`, `progress_level`, …).
    Attribute(String),
}

/// The member fields segments and scripts may see. The phone number is
/// deliberately not one of them.
pub(crate) const MEMBER_FIELDS: &[&str] = &[
    "id",
    "external_id",
    "first_name",
    "last_name",
    "language",
    "timezone",
    "status",
    "joined_on",
    "days_since_joined",
    "groups",
];

#[derive(Debug, Clone)]
pub enum Op {
    Eq(serde_json::Value),
    In(Vec<serde_json::Value>),
    AnyOf(Vec<serde_json::Value>),
    AllOf(Vec<serde_json::Value>),
    Lt(serde_json::Value),
    Lte(serde_json::Value),
    Gt(serde_json::Value),
    Gte(serde_json::Value),
    Exists(bool),
}

#[derive(Debug, Clone)]
pub struct TemplateInfo {
    pub id: String,
    /// SMS segments of the body rendered against the sample context.
    pub sample_segments: usize,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub(crate) id: String,
    pub(crate) segment: String,
    /// Empty: every group.
    pub(crate) groups: Vec<String>,
    pub content: Content,
    pub(crate) timing: Timing,
    pub(crate) expires_after: Option<Duration>,
    /// Spread each recipient's message across this local window.
    pub(crate) window: Option<Window>,
    /// How late a fire missed while the daemon was down may still be
    /// processed; zero means never.
    pub(crate) catch_up: Duration,
    pub(crate) enabled: bool,
}

/// The default `catch_up:` of a schedule: one hour.
pub(crate) const DEFAULT_CATCH_UP: Duration = Duration::from_secs(3600);

/// A one-off session (`extra:` under a group's `sessions:`): its local
/// date and start time in the group's timezone, and its length when it
/// differs from the group's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraSession {
    pub(crate) date: NaiveDate,
    pub(crate) at: NaiveTime,
    pub(crate) duration: Option<Duration>,
}

/// `window: { from: "10:00", to: "14:00" }`: local times, `from < to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub(crate) from: NaiveTime,
    pub(crate) to: NaiveTime,
}

/// `limits:`: at most this many routine messages per member per local
/// day and per seven local days. Replies, crisis, compliance, escalation
/// and staff messages are exempt and not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub per_day: Option<u32>,
    pub per_week: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Template(String),
    Survey(String),
}

#[derive(Debug, Clone)]
pub enum Timing {
    /// `timezone: None` fires in each recipient's own timezone.
    Cron {
        spec: Box<CronSpec>,
        timezone: Option<Tz>,
    },
    /// `offset` before a session starts; with `at`, at that local time on
    /// the day `offset` (whole days) before the session's date.
    BeforeSession {
        offset: Duration,
        at: Option<NaiveTime>,
    },
    /// `offset` after a session ends; with `at`, at that local time on the
    /// day `offset` (whole days) after the session's date.
    AfterSession {
        offset: Duration,
        at: Option<NaiveTime>,
    },
}

#[derive(Debug, Clone)]
pub struct Survey {
    pub(crate) id: String,
    pub questions: Vec<Question>,
    /// Template name of the re-prompt, if any.
    pub(crate) reprompt: Option<String>,
    pub(crate) max_reprompts: u32,
    pub(crate) expires_after: Duration,
    pub(crate) thanks: Option<String>,
    /// Ask the current question once more after this long without an
    /// answer (`remind_after:`).
    pub remind_after: Option<Duration>,
    /// How answers add up to a score (`score:`), for instruments.
    pub score: Option<Scoring>,
    /// Alerts on single answers (`alerts:` inside the survey), such as
    /// PHQ-9 item 9 above 0.
    pub item_alerts: Vec<ItemAlert>,
}

/// `score:` of a survey: the sum of some questions' numeric answers, with
/// reverse-scored items and labelled bands.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    /// Question ids summed, in order (every number question when the
    /// survey does not list them).
    pub items: Vec<String>,
    /// Items scored as `min + max - answer` of their number range.
    pub reverse: Vec<String>,
    /// Ascending by `from`: a total at or above `from` (and below the next
    /// band's `from`) gets `label`.
    pub bands: Vec<Band>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub(crate) from: f64,
    pub(crate) label: String,
}

/// An alert on one answer of a survey: fires when the answer to
/// `question` is above `above`.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemAlert {
    /// Its own alert id (incidents are filed under it).
    pub id: String,
    pub(crate) question: String,
    pub(crate) above: f64,
    pub severity: Severity,
    /// Template sent to the member when it fires.
    pub reply: Option<String>,
    pub escalate: Option<String>,
    pub(crate) realert: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Question {
    pub id: String,
    /// Template name of the question text.
    pub ask: String,
    pub(crate) expect: Expect,
    /// `item:`: the item as published, as notices name it ("item 9 —
    /// Thoughts that you would be better off dead or of hurting yourself
    /// in some way").
    pub(crate) item: Option<String>,
    /// `labels:`: the published wording of each number answer, from
    /// `min` up ("not at all", "several days", …).
    pub(crate) labels: Vec<String>,
}

impl Question {
    /// The answer `value` as a page quotes it: "item 9 — Thoughts …:
    /// 'more than half the days'"; `None` without an `item:`.
    pub fn quote(&self, value: f64, given: &str) -> Option<String> {
        let item = self.item.as_deref()?;
        let label = match &self.expect {
            Expect::Number { min, .. } if value.fract() == 0.0 => {
                let index = value - min.unwrap_or(0.0);
                (index >= 0.0)
                    .then(|| self.labels.get(index as usize))
                    .flatten()
                    .cloned()
            }
            _ => None,
        };
        Some(format!("{item}: '{}'", label.as_deref().unwrap_or(given)))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Number {
        min: Option<f64>,
        max: Option<f64>,
        integer: bool,
    },
    Choice(Vec<String>),
    YesNo,
    FreeText,
}

#[derive(Debug, Clone)]
pub struct Alert {
    pub id: String,
    pub(crate) severity: Severity,
    /// Lower-cased, trimmed.
    pub(crate) keywords: Vec<String>,
    pub(crate) when: Option<AST>,
    pub script: Option<(PathBuf, AST)>,
    pub(crate) reply: Option<String>,
    pub(crate) escalate: Option<String>,
    pub(crate) realert: Option<Duration>,
    /// `every:`: a scheduled alert, evaluated for every active member at
    /// each fire of this cron pattern (in each member's timezone) rather
    /// than on a reply. Only `script:`/`when:` alerts may have it.
    pub every: Option<CronSpec>,
}

#[derive(Debug, Clone)]
pub struct Escalation {
    pub(crate) id: String,
    /// The ordinary steps, in order (not the backup step).
    pub(crate) steps: Vec<Step>,
    pub(crate) repeat: Repeat,
    /// The step marked `backup: true` (it must be the last one written):
    /// notified once when the ordinary rounds end (`repeat: N`), or once
    /// after the first round (`repeat: until_acknowledged`).
    pub(crate) backup: Option<Step>,
    /// An incident acknowledged but not resolved within this long
    /// re-notifies whoever acknowledged it, then escalates again.
    pub(crate) resolve_within: Option<Duration>,
}

/// How many times the whole sequence of steps runs again when nobody
/// acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Repeat {
    /// `repeat: 2`: two more rounds after the first (0: none).
    Times(u32),
    /// `repeat: until_acknowledged`: rounds without end.
    UntilAcknowledged,
}

impl Default for Repeat {
    fn default() -> Repeat {
        Repeat::Times(0)
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub(crate) targets: Vec<Target>,
    pub(crate) via: Vec<Channel>,
    pub(crate) ack_within: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Target {
    Contact(String),
    /// The facilitators of the group the alert's member belongs to.
    GroupFacilitators,
    /// `on_call: ROTATION`: whoever the rotation has on call at the
    /// moment of the notification.
    OnCall(String),
}

#[derive(Debug, Clone)]
pub struct Contact {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) sms: Option<Phone>,
    pub(crate) email: Option<String>,
    pub(crate) webhook: Option<String>,
    /// `phi: true`: this contact's notifications may carry the member's
    /// own words. Off by default (minimum necessary).
    pub(crate) phi: bool,
}

/// `rotations:`: who is on call when, in one timezone. A moment is
/// covered by the dated overrides that contain it if any, else by every
/// weekly shift that contains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    pub(crate) id: String,
    /// IANA name, validated at compile time.
    pub(crate) timezone: String,
    pub(crate) shifts: Vec<Shift>,
    pub(crate) overrides: Vec<Override>,
}

/// A weekly shift: on each of `days`, from `from` to `to` local time; a
/// `to` at or before `from` ends the next day (a night shift).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    pub(crate) days: Vec<chrono::Weekday>,
    pub(crate) from: chrono::NaiveTime,
    pub(crate) to: chrono::NaiveTime,
    /// Contact ids.
    pub(crate) contacts: Vec<String>,
}

/// A dated override, local time in the rotation's timezone, `from`
/// inclusive and `to` exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub(crate) from: chrono::NaiveDateTime,
    pub(crate) to: chrono::NaiveDateTime,
    /// Contact ids.
    pub(crate) contacts: Vec<String>,
}

/// A rule unit test, validated; `hearth test` runs it.
#[derive(Debug, Clone)]
pub struct RuleTest {
    pub name: String,
    pub file: PathBuf,
    pub start: chrono::DateTime<chrono::FixedOffset>,
    pub steps: usize,
}
