//! `groups:`: a group's sessions, cancelled dates and one-off extras.

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGroup {
    pub(crate) id: Spanned<String>,
    pub(crate) name: Spanned<String>,
    pub(crate) timezone: Spanned<String>,
    pub(crate) sessions: Spanned<RawSessions>,
    #[serde(default)]
    pub(crate) facilitators: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSessions {
    pub(crate) cron: Spanned<String>,
    pub(crate) duration: Spanned<String>,
    /// Dates (`YYYY-MM-DD`, in the group's timezone) on which no session meets.
    #[serde(default)]
    pub(crate) cancelled: Vec<Spanned<String>>,
    /// One-off sessions outside the pattern.
    #[serde(default)]
    pub(crate) extra: Vec<Spanned<RawExtraSession>>,
}

/// `{ date: "2026-12-23", at: "18:00", duration: 60m }` under `extra:`;
/// `time` is another name for `at`, `duration` defaults to the group's.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExtraSession {
    pub(crate) date: Spanned<String>,
    #[serde(alias = "time")]
    pub(crate) at: Spanned<String>,
    #[serde(default)]
    pub(crate) duration: Option<Spanned<String>>,
}
