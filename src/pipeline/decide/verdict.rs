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
    pub original: String,
    pub normalised: String,
    pub words: Vec<String>,
    pub crisis: CrisisVerdict,
    /// What the crisis hit does to incidents (`hearth explain` only).
    pub crisis_incident: Option<String>,
    /// `stop`, `start`, `yes`, `help`, or null.
    pub compliance: Option<Keyword>,
    /// What the keyword did ("consent revoked", "already opted out: no
    /// second confirmation", …); null without a keyword.
    pub compliance_action: Option<String>,
    pub sender: SenderVerdict,
    pub survey: SurveyVerdict,
    pub alerts: Vec<AlertVerdict>,
    /// A follow-up on the sender's unresolved critical incident, if any.
    pub follow_up: Option<FollowUpVerdict>,
    pub replies: Vec<ReplyVerdict>,
    /// The inbound row's outcome.
    pub outcome: String,
    #[serde(skip)]
    pub effects: ReplyEffects,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CrisisVerdict {
    pub matched: bool,
    /// The alert the incident is filed under.
    pub alert: Option<String>,
    pub phrase: Option<String>,
    /// `rule` (a critical alert's keyword) or `floor` (built in).
    pub source: Option<&'static str>,
    /// The first construct named, for a detector match.
    pub category: Option<Construct>,
    /// `critical` (the crisis reply and a page) or `warning` (the crisis
    /// reply and a warning incident).
    pub severity: Option<CrisisSeverity>,
    /// The combination rule that decided it.
    pub rule: Option<String>,
    /// Every construct that counted, with the words that fired it.
    pub constructs: Vec<Fired>,
}

/// What the follow-up stage did with a text on an unresolved critical
/// incident.
#[derive(Debug, Clone, Serialize)]
pub struct FollowUpVerdict {
    pub incident: i64,
    /// Kept as `follow_up` evidence (false when the crisis hit keeps it).
    pub evidence: bool,
    /// The follow-up reply was queued.
    pub replied: bool,
    /// Why not, when it was not.
    pub no_reply: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SenderVerdict {
    /// `member`, `contact` or `unknown`.
    pub kind: &'static str,
    pub member_id: Option<i64>,
    pub external_id: Option<String>,
    pub contact: Option<String>,
    /// The member has no current consent (opted out or never consented).
    pub opted_out: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SurveyVerdict {
    /// `none`, `preempted`, `answered`, `completed`, `reprompted`,
    /// `gave_up`, `stopped`, `not_in_rules`.
    pub state: &'static str,
    pub survey: Option<String>,
    pub question: Option<String>,
    pub answer: Option<serde_json::Value>,
    pub reason: Option<String>,
    pub next_question: Option<String>,
    pub score: Option<serde_json::Value>,
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
    pub purpose: String,
    pub kind: Kind,
    /// The template rendered, or null for a text from the settings.
    pub template: Option<String>,
}
