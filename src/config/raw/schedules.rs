//! `templates:` and `schedules:`: what is sent, and when.

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

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
