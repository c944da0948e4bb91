//! Alert evaluation: keyword/phrase alerts on word boundaries, `when:`
//! expressions and `script:` files in the Rhai sandbox, over a read-only
//! context. Critical keyword alerts are the crisis check's
//! ([`super::crisis`]); this stage evaluates everything else and reports
//! every alert it considered, fired or not, and why.
//!
//! A script that fails (a limit, an error, a result that is not a bool)
//! fails only its own evaluation: it is reported as not fired with the
//! error, logged by rule and member id, and counted.

use std::collections::BTreeMap;

use crate::engine::rules::{Alert, RuleSet, Severity};
use crate::pipeline::normalize::Normalized;
use crate::store::traits::reply::{Engagement, PastAnswer};

/// What an alert may read. Everything is optional: a scheduled alert has
/// no reply; a reply outside a survey has no answers.
#[derive(Debug, Clone, Default)]
pub struct AlertContext<'a> {
    /// The member's view (`Member::view`: never the phone number).
    pub member: Option<&'a serde_json::Value>,
    /// The text, as sent and as normalised.
    pub reply: Option<&'a Normalized>,
    /// The survey the reply answered, if any.
    pub survey: Option<&'a str>,
    /// That survey's answers so far, this one included, by question id.
    pub answers: Option<&'a BTreeMap<String, serde_json::Value>>,
    /// That survey's score, once it has one (`Scored::to_json`).
    pub score: Option<&'a serde_json::Value>,
    /// Earlier answers (not the current one), oldest first.
    pub history: &'a [PastAnswer],
    pub engagement: Option<&'a Engagement>,
}

/// One alert considered.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Considered {
    pub id: String,
    pub severity: Severity,
    pub fired: bool,
    /// Why it fired or did not: "keyword `kill myself`", "when: true",
    /// "script note: three low moods in a row: 3, 2, 2", "no keyword",
    /// "when: false", "script failed: …".
    pub reason: String,
    /// For a fired alert, the evidence kept on the incident (the phrase,
    /// the script's note, or the expression); never a name or a number.
    pub evidence: Option<String>,
    /// A script/expression that failed: the error.
    pub error: Option<String>,
}

/// Which alerts a stage evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A reply arrived: every alert without `every:`.
    Reply,
    /// A scheduled evaluation: the alerts with `every:` only.
    Scheduled,
}

/// Evaluates `rules`' alerts for `trigger` in order, skipping `skip` (the
/// alert the crisis check already fired). `member_id` is only for logs.
pub fn evaluate(
    rules: &RuleSet,
    cx: &AlertContext<'_>,
    trigger: Trigger,
    skip: Option<&str>,
    member_id: Option<i64>,
) -> Vec<Considered> {
    todo!(
        "{:?} {cx:?} {trigger:?} {skip:?} {member_id:?}",
        rules.alerts.len()
    )
}

/// Whether `alert`'s keywords match `text` on word boundaries ("kill" is
/// not in "skill"); the first that does.
pub fn keyword_match<'a>(alert: &'a Alert, text: &Normalized) -> Option<&'a str> {
    todo!("{alert:?} {text:?}")
}

/// Script failures since start, for `/status` and metrics.
pub fn script_failures() -> u64 {
    todo!()
}
