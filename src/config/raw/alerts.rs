//! `alerts:`: what a reply (or a scheduled run) is matched against, and
//! what is done when it matches.

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::Severity;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlert {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "warning")]
    pub severity: Severity,
    #[serde(default)]
    pub keywords: Vec<Spanned<String>>,
    #[serde(default)]
    pub when: Option<Spanned<String>>,
    #[serde(default)]
    pub script: Option<Spanned<String>>,
    #[serde(default)]
    pub reply: Option<Spanned<String>>,
    #[serde(default)]
    pub escalate: Option<Spanned<String>>,
    #[serde(default)]
    pub realert: Option<Spanned<String>>,
    /// A cron pattern: evaluate for every active member at each fire, in
    /// the member's timezone, instead of on a reply.
    #[serde(default)]
    pub every: Option<Spanned<String>>,
}

pub(super) fn warning() -> Severity {
    Severity::Warning
}
