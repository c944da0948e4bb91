//! `contacts:` and `rotations:`: who can be paged, and who is on call when.

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContact {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) sms: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) email: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) webhook: Option<Spanned<String>>,
    /// Notifications to this contact may carry the member's own words.
    #[serde(default)]
    pub(crate) phi: bool,
}

/// `rotations:`: weekly shifts in one timezone, and dated overrides.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRotation {
    #[serde(default)]
    pub(crate) description: Option<String>,
    pub(crate) timezone: Spanned<String>,
    #[serde(default)]
    pub(crate) shifts: Vec<Spanned<RawShift>>,
    #[serde(default)]
    pub(crate) overrides: Vec<Spanned<RawOverride>>,
}

/// `{ days: [mon, tue], from: "17:00", to: "09:00", contacts: [dana] }`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShift {
    pub(crate) days: Vec<Spanned<String>>,
    pub(crate) from: Spanned<String>,
    pub(crate) to: Spanned<String>,
    pub(crate) contacts: Vec<Spanned<String>>,
}

/// `{ from: "2026-12-24T17:00", to: "2026-12-26T09:00", contacts: [sam] }`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOverride {
    pub(crate) from: Spanned<String>,
    pub(crate) to: Spanned<String>,
    pub(crate) contacts: Vec<Spanned<String>>,
}
