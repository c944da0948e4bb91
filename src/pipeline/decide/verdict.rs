//! What a decision says, stage by stage: the verdicts `hearth explain`
//! prints, and the [`Decision`] that carries them with the effects.

use serde::Serialize;

use super::super::alerts::AlertVerdict;
use super::super::crisis::{Construct, CrisisSeverity, Fired};
use super::super::keywords::Keyword;
use crate::domain::message::Kind;
use crate::store::traits::reply::ReplyEffects;

/// Every stage's verdict, and what to write.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub(crate) original: String,
    pub(crate) normalised: String,
    pub(crate) words: Vec<String>,
    pub(crate) crisis: CrisisVerdict,
    /// What the crisis hit does to incidents (`hearth explain` only).
    pub(crate) crisis_incident: Option<String>,
    /// `stop`, `start`, `yes`, `help`, or null.
    pub(crate) compliance: Option<Keyword>,
    /// What the keyword did ("consent revoked", "already opted out: no
    /// second confirmation", …); null without a keyword.
    pub(crate) compliance_action: Option<String>,
    pub(crate) sender: SenderVerdict,
    pub(crate) survey: SurveyVerdict,
    pub(crate) alerts: Vec<AlertVerdict>,
    /// A follow-up on the sender's unresolved critical incident, if any.
    pub(crate) follow_up: Option<FollowUpVerdict>,
    pub(crate) replies: Vec<ReplyVerdict>,
    /// The inbound row's outcome.
    pub(crate) outcome: String,
    #[serde(skip)]
    pub(crate) effects: ReplyEffects,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CrisisVerdict {
    pub(crate) matched: bool,
    /// The alert the incident is filed under.
    pub(crate) alert: Option<String>,
    pub(crate) phrase: Option<String>,
    /// `rule` (a critical alert's keyword) or `floor` (built in).
    pub(crate) source: Option<&'static str>,
    /// The first construct named, for a detector match.
    pub(crate) category: Option<Construct>,
    /// `critical` (the crisis reply and a page) or `warning` (the crisis
    /// reply and a warning incident).
    pub(crate) severity: Option<CrisisSeverity>,
    /// The combination rule that decided it.
    pub(crate) rule: Option<String>,
    /// Every construct that counted, with the words that fired it.
    pub(crate) constructs: Vec<Fired>,
}

/// What the follow-up stage did with a text on an unresolved critical
/// incident.
#[derive(Debug, Clone, Serialize)]
pub struct FollowUpVerdict {
    pub(crate) incident: i64,
    /// Kept as `follow_up` evidence (false when the crisis hit keeps it).
    pub(crate) evidence: bool,
    /// The follow-up reply was queued.
    pub(crate) replied: bool,
    /// Why not, when it was not.
    pub(crate) no_reply: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SenderVerdict {
    /// `member`, `contact` or `unknown`.
    pub(crate) kind: &'static str,
    pub(crate) member_id: Option<i64>,
    pub(crate) external_id: Option<String>,
    pub(crate) contact: Option<String>,
    /// The member has no current consent (opted out or never consented).
    pub(crate) opted_out: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SurveyVerdict {
    /// `none`, `preempted`, `answered`, `completed`, `reprompted`,
    /// `gave_up`, `stopped`, `not_in_rules`.
    pub(crate) state: &'static str,
    pub(crate) survey: Option<String>,
    pub(crate) question: Option<String>,
    pub(crate) answer: Option<serde_json::Value>,
    pub(crate) reason: Option<String>,
    pub(crate) next_question: Option<String>,
    pub(crate) score: Option<serde_json::Value>,
}

impl SurveyVerdict {
    /// No survey open, or none touched.
    pub(super) fn none() -> SurveyVerdict {
        SurveyVerdict {
            state: "none",
            ..SurveyVerdict::default()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplyVerdict {
    /// `crisis`, `stop`, `start`, `help`, `survey:<id>:<n>`, `alert:<id>`, …
    pub(crate) purpose: String,
    pub(crate) kind: Kind,
    /// The template rendered, or null for a text from the settings.
    pub(crate) template: Option<String>,
}
