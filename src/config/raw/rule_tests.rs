//! `tests:`: rule unit tests, run by `hearth test` (only validated here).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// A rule unit test (`hearth test` runs these; here they are only validated).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTest {
    pub(crate) name: Spanned<String>,
    #[serde(default)]
    pub(crate) member: RawTestMember,
    /// RFC 3339 instant the test clock starts at.
    pub(crate) start: Spanned<String>,
    pub(crate) steps: Vec<Spanned<RawTestStep>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTestMember {
    #[serde(default)]
    pub(crate) first_name: Option<String>,
    #[serde(default)]
    pub(crate) last_name: Option<String>,
    #[serde(default)]
    pub(crate) timezone: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) language: Option<String>,
    #[serde(default)]
    pub(crate) groups: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) days_since_joined: Option<i64>,
    #[serde(default)]
    pub(crate) attributes: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTestStep {
    /// Move the clock forward by this duration, firing what falls due.
    #[serde(default)]
    pub(crate) advance: Option<Spanned<String>>,
    /// The member texts this.
    #[serde(default)]
    pub(crate) reply: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) expect: RawTestExpect,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTestExpect {
    /// Template or survey ids of the messages sent to the member in this step.
    #[serde(default)]
    pub(crate) messages: Vec<Spanned<String>>,
    /// Alert ids raised in this step.
    #[serde(default)]
    pub(crate) alerts: Vec<Spanned<String>>,
}
