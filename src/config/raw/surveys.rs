//! `surveys:`: questions and what they expect, re-prompts, reminders,
//! `score:` and per-item `alerts:`.

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::Severity;
use super::alerts::warning;

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
    /// The item as published, for notices.
    #[serde(default)]
    pub item: Option<Spanned<String>>,
    /// The published wording of each number answer, from `min` up.
    #[serde(default)]
    pub labels: Option<Spanned<Vec<String>>>,
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
