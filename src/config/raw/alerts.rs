//! `alerts:`: what a reply (or a scheduled run) is matched against, and
//! what is done when it matches.

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::Severity;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlert {
    pub(crate) id: Spanned<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default = "warning")]
    pub(crate) severity: Severity,
    #[serde(default)]
    pub(crate) keywords: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) when: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) script: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) reply: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) escalate: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) realert: Option<Spanned<String>>,
    /// A cron pattern: evaluate for every active member at each fire, in
    /// the member's timezone, instead of on a reply.
    #[serde(default)]
    pub(crate) every: Option<Spanned<String>>,
}

pub(super) fn warning() -> Severity {
    Severity::Warning
}
