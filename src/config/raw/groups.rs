//! `groups:`: a group's sessions, cancelled dates and one-off extras.

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

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
