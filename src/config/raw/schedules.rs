//! `templates:` and `schedules:`: what is sent, and when.

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTemplate {
    pub(crate) body: Spanned<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedule {
    pub(crate) id: Spanned<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// Who receives it; `all` when absent.
    #[serde(default)]
    pub(crate) segment: Option<Spanned<String>>,
    /// Restrict to members of these groups (and, for session-relative
    /// schedules, to these groups' sessions). Every group when absent.
    #[serde(default)]
    pub(crate) groups: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) template: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) survey: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) cron: Option<Spanned<String>>,
    /// IANA timezone of `cron`; the recipient's own timezone when absent.
    #[serde(default)]
    pub(crate) timezone: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) before_session: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) after_session: Option<Spanned<String>>,
    /// Local time of day (`HH:MM`) on the day `before_session`/`after_session` lands on.
    #[serde(default)]
    pub(crate) at: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) expires_after: Option<Spanned<String>>,
    /// Spread each recipient's message across this local window.
    #[serde(default)]
    pub(crate) window: Option<Spanned<RawWindow>>,
    /// How late a missed fire may still be processed (`0`: never).
    #[serde(default)]
    pub(crate) catch_up: Option<Spanned<String>>,
    #[serde(default = "yes")]
    pub(crate) enabled: bool,
}

/// `window: { from: "10:00", to: "14:00" }`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWindow {
    pub(crate) from: Spanned<String>,
    pub(crate) to: Spanned<String>,
}

fn yes() -> bool {
    true
}
