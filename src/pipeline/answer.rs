//! Survey answers: reading a reply as the answer a question expects, and
//! scoring instruments.
//!
//! [`parse_answer`] reads numbers, choices by number or by word, yes/no in
//! common forms, and free text. [`score`] sums a survey's scored items with reverse items and
//! bands; [`item_alerts`] lists the per-item alerts an answer fires.

use std::collections::BTreeMap;

use crate::engine::rules::{Expect, ItemAlert, Survey};
use crate::pipeline::normalize::Normalized;

/// A valid answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Number(f64),
    /// The option's 0-based index and its label as the rules write it.
    Choice {
        index: usize,
        label: String,
    },
    YesNo(bool),
    Text(String),
}

impl Answer {
    /// As stored and as scripts see it: an integer number as an integer,
    /// a choice as its label, yes/no as a boolean, text as a string.
    pub fn to_json(&self) -> serde_json::Value {
        todo!("{self:?}")
    }
}

/// Why a reply is not a valid answer, in words fit for `hearth explain`
/// ("not a number", "7 is above the maximum 5").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAnAnswer(pub String);

/// Reads `text` as an answer to a question expecting `expect`.
pub fn parse_answer(expect: &Expect, text: &Normalized) -> Result<Answer, NotAnAnswer> {
    todo!("{expect:?} {text:?}")
}

/// A survey's score: the total of its scored items and the band it falls in.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Scored {
    pub total: f64,
    pub band: Option<String>,
    /// Every scored item was answered.
    pub complete: bool,
}

impl Scored {
    /// `{"total": 14, "band": "moderate", "complete": true}` (an integer
    /// total as an integer).
    pub fn to_json(&self) -> serde_json::Value {
        todo!()
    }
}

/// Scores `answers` (by question id, as stored JSON) against the survey's
/// `score:`; `None` when it has none.
pub fn score(survey: &Survey, answers: &BTreeMap<String, serde_json::Value>) -> Option<Scored> {
    todo!("{survey:?} {answers:?}")
}

/// The survey's per-item alerts that the answer to `question` fires, with
/// the evidence text for each ("answer 2 to phq9_9, above 0").
pub fn item_alerts<'s>(
    survey: &'s Survey,
    question: &str,
    answer: &serde_json::Value,
) -> Vec<(&'s ItemAlert, String)> {
    todo!("{survey:?} {question} {answer:?}")
}
