//! Members, their consent and the audit trail as every layer sees them:
//! plain values with no storage behind them.
//!
//! A member's public handle is the clinic's external id (from the EHR or
//! roster); logs and the audit trail use the internal numeric id. Names and
//! phone numbers are PHI: `Debug` on [`Member`] and [`MemberRecord`] shows
//! neither.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{Invalid, Phone};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    Active,
    Inactive,
}

impl MemberStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Active => "active",
            MemberStatus::Inactive => "inactive",
        }
    }

    /// An empty cell reads as active: a roster that has no status column
    /// lists the members it means to keep.
    pub(crate) fn parse(s: &str) -> Result<MemberStatus, Invalid> {
        match s.trim().to_lowercase().as_str() {
            "active" | "" => Ok(MemberStatus::Active),
            "inactive" => Ok(MemberStatus::Inactive),
            other => Err(Invalid::new(format!(
                "invalid status `{other}`: expected `active` or `inactive`"
            ))),
        }
    }
}

/// A member as stored, with current consent derived from the ledger.
#[derive(Clone, PartialEq)]
pub struct Member {
    pub id: i64,
    pub external_id: String,
    pub(crate) first_name: String,
    pub(crate) last_name: Option<String>,
    pub(crate) phone: Phone,
    pub(crate) timezone: String,
    pub language: String,
    pub(crate) joined_on: NaiveDate,
    pub status: MemberStatus,
    pub groups: Vec<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub consent: ConsentState,
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("id", &self.id)
            .field("external_id", &self.external_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Member {
    pub(crate) fn days_since_joined(&self, today: NaiveDate) -> i64 {
        (today - self.joined_on).num_days()
    }

    /// Everything rules and scripts may see: no phone number.
    pub(crate) fn view(&self, today: NaiveDate) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "external_id": self.external_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "timezone": self.timezone,
            "language": self.language,
            "joined_on": self.joined_on.to_string(),
            "days_since_joined": self.days_since_joined(today),
            "status": self.status.as_str(),
            "groups": self.groups,
            "attributes": self.attributes,
        })
    }
}

/// A member's fields as an import or staff edit gives them.
#[derive(Clone, PartialEq)]
pub struct MemberRecord {
    pub(crate) external_id: String,
    pub(crate) first_name: String,
    pub(crate) last_name: Option<String>,
    pub(crate) phone: Phone,
    pub(crate) timezone: String,
    pub(crate) language: String,
    pub(crate) joined_on: NaiveDate,
    /// `None`: the roster did not say (no `status` column, or an empty
    /// cell). A new member is then active and an existing one keeps the
    /// status it has, so a re-import never reactivates someone staff
    /// deactivated.
    pub(crate) status: Option<MemberStatus>,
    pub(crate) groups: Vec<String>,
    pub(crate) attributes: serde_json::Map<String, serde_json::Value>,
}

impl fmt::Debug for MemberRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberRecord")
            .field("external_id", &self.external_id)
            .finish_non_exhaustive()
    }
}

/// What an upsert did, with the member's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upserted {
    Inserted(i64),
    Updated(i64),
    Unchanged(i64),
}

impl Upserted {
    pub(crate) fn id(self) -> i64 {
        match self {
            Upserted::Inserted(id) | Upserted::Updated(id) | Upserted::Unchanged(id) => id,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentAction {
    Granted,
    Revoked,
}

impl ConsentAction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ConsentAction::Granted => "granted",
            ConsentAction::Revoked => "revoked",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<ConsentAction, Invalid> {
        match s {
            "granted" => Ok(ConsentAction::Granted),
            "revoked" => Ok(ConsentAction::Revoked),
            _ => Err(Invalid::new(format!(
                "invalid consent action `{s}`: expected granted or revoked"
            ))),
        }
    }
}

/// Where a consent event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentSource {
    /// The clinic's roster import.
    Import,
    /// The member texted a keyword (STOP, START).
    Keyword,
    /// A staff member recorded it.
    Staff,
}

impl ConsentSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentSource::Import => "import",
            ConsentSource::Keyword => "keyword",
            ConsentSource::Staff => "staff",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<ConsentSource, Invalid> {
        match s {
            "import" => Ok(ConsentSource::Import),
            "keyword" => Ok(ConsentSource::Keyword),
            "staff" => Ok(ConsentSource::Staff),
            _ => Err(Invalid::new(format!(
                "invalid consent source `{s}`: expected import, keyword or staff"
            ))),
        }
    }
}

/// One row of the consent ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentEvent {
    pub(crate) id: i64,
    pub action: ConsentAction,
    pub source: ConsentSource,
    pub text: String,
    pub actor: String,
    pub(crate) at: DateTime<Utc>,
}

/// A member's current SMS consent, derived from the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConsentState {
    /// The newest event, if any; no event means no consent.
    pub last: Option<ConsentEvent>,
}

impl ConsentState {
    pub fn granted(&self) -> bool {
        self.last
            .as_ref()
            .is_some_and(|e| e.action == ConsentAction::Granted)
    }

    /// Revoked by the member's own text: only the member can undo it.
    pub fn revoked_by_member(&self) -> bool {
        self.last.as_ref().is_some_and(|e| {
            e.action == ConsentAction::Revoked && e.source == ConsentSource::Keyword
        })
    }

    /// Who revoked consent, if it stands revoked.
    pub fn revoked_by(&self) -> Option<RevokedBy> {
        let e = self.last.as_ref()?;
        if e.action != ConsentAction::Revoked {
            return None;
        }
        Some(match e.source {
            ConsentSource::Keyword if e.text.starts_with(PROVIDER_OPT_OUT) => RevokedBy::Provider,
            ConsentSource::Keyword => RevokedBy::Stop,
            ConsentSource::Staff => RevokedBy::Staff,
            ConsentSource::Import => RevokedBy::Import,
        })
    }

    /// Whether a grant from `source` re-grants consent as it stands. A
    /// revocation stays until a grant at least as explicit: the member's
    /// own START/YES after their STOP or the provider's opt-out; the
    /// member's keyword or staff recording new consent after staff
    /// revoked it. A roster import re-grants only what an import revoked.
    pub fn may_grant(&self, source: ConsentSource) -> bool {
        match self.revoked_by() {
            None | Some(RevokedBy::Import) => true,
            Some(RevokedBy::Stop | RevokedBy::Provider) => source == ConsentSource::Keyword,
            Some(RevokedBy::Staff) => source != ConsentSource::Import,
        }
    }
}

/// How a provider's opt-out begins its ledger text
/// ([`crate::domain::bookkeeping`]), so the ledger can tell it from a STOP.
pub(crate) const PROVIDER_OPT_OUT: &str = "provider reported the number opted out";

/// Who revoked a member's consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RevokedBy {
    /// The member texted STOP (or an opt-out sentence).
    Stop,
    /// The provider reported the number opted out (carrier STOP, error
    /// 21610).
    Provider,
    /// Staff recorded it (`hearth members consent revoke`).
    Staff,
    /// A roster import's `consent` column said no.
    Import,
}

impl fmt::Display for ConsentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.last {
            None => f.write_str("none"),
            Some(e) => write!(
                f,
                "{} ({}, {})",
                e.action.as_str(),
                e.source.as_str(),
                e.at.format("%Y-%m-%d")
            ),
        }
    }
}

/// What recording a consent change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A new ledger row.
    Changed,
    /// Consent already stood that way; nothing written.
    AlreadySo,
    /// A grant that would override the member's own STOP (or the
    /// provider's opt-out); refused.
    RefusedAfterOptOut,
    /// A roster import's grant that would override staff's revocation;
    /// refused.
    RefusedAfterRevocation,
}

/// One entry of the hash-chained audit trail. Entries carry ids, never
/// names, phone numbers or message bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub(crate) id: i64,
    pub(crate) at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: Option<String>,
    pub detail: serde_json::Value,
    pub(crate) prev_hash: String,
    pub(crate) hash: String,
}

/// The outcome of walking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVerified {
    /// Every entry walked checks out; `head` is the newest hash.
    Intact { entries: u64, head: String },
    /// The first entry that does not.
    Broken {
        entry: i64,
        reason: String,
        checked: u64,
    },
}
