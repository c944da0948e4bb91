//! `tests:`: rule unit tests, run by `hearth test` (only validated here).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

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
