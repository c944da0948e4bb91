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
    pub(crate) description: Option<String>,
    pub(crate) questions: Vec<Spanned<RawQuestion>>,
    #[serde(default)]
    pub(crate) reprompt: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) max_reprompts: Option<u32>,
    #[serde(default)]
    pub(crate) expires_after: Option<Spanned<String>>,
    /// Sent once every question is answered.
    #[serde(default)]
    pub(crate) thanks: Option<Spanned<String>>,
    /// Ask the current question once more after this long without an answer.
    #[serde(default)]
    pub(crate) remind_after: Option<Spanned<String>>,
    /// How the answers add up to a score (instruments).
    #[serde(default)]
    pub(crate) score: Option<Spanned<RawScore>>,
    /// Alerts on single answers (PHQ-9 item 9 above 0).
    #[serde(default)]
    pub(crate) alerts: Vec<Spanned<RawItemAlert>>,
}

/// `score:` of a survey.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScore {
    /// Question ids summed; every number question when absent.
    #[serde(default)]
    pub(crate) items: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(crate) reverse: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) bands: Vec<Spanned<RawBand>>,
}

/// `{ from: 5, label: mild }`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBand {
    pub(crate) from: f64,
    pub(crate) label: String,
}

/// An alert on one answer (`alerts:` inside a survey).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawItemAlert {
    pub(crate) id: Spanned<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    pub(crate) question: Spanned<String>,
    #[serde(default)]
    pub(crate) above: f64,
    #[serde(default = "warning")]
    pub(crate) severity: Severity,
    #[serde(default)]
    pub(crate) reply: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) escalate: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) realert: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuestion {
    pub(crate) id: Spanned<String>,
    pub(crate) ask: Spanned<String>,
    pub(crate) expect: Spanned<RawExpect>,
    /// The item as published, for notices.
    #[serde(default)]
    pub(crate) item: Option<Spanned<String>>,
    /// The published wording of each number answer, from `min` up.
    #[serde(default)]
    pub(crate) labels: Option<Spanned<Vec<String>>>,
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
