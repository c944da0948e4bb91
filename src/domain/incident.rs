//! Incidents: what an alert opens for a person to look at.
//!
//! An alert that fires for a subject (a member, or the number of an
//! unknown sender) is an [`AlertHit`]. [`fold`] decides, from what is
//! already open for that subject, what the hit does: open a new incident,
//! join the open one for the same alert, or be held back by `realert:` or
//! by inhibition (no routine alert while a critical incident is open for
//! the subject). Every hit is kept as evidence, whatever the decision, so
//! nothing a member said is lost; only the incident count differs.
//!
//! The store applies [`fold`] inside the transaction that records the hit,
//! and `hearth explain` applies it to facts given on its command line, so
//! both decide alike.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Duration;

/// How urgent an alert is. Critical alerts are checked first and inhibit
/// lesser ones for the same subject.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// Whom an incident is about.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Member(i64),
    /// A sender who is not a member: the number as the provider gave it.
    Number(String),
}

impl Subject {
    /// As stored: `member:12`, `number:+15555550123`.
    pub fn key(&self) -> String {
        match self {
            Subject::Member(id) => format!("member:{id}"),
            Subject::Number(n) => format!("number:{n}"),
        }
    }

    pub fn from_key(key: &str) -> Option<Subject> {
        if let Some(id) = key.strip_prefix("member:") {
            return id.parse().ok().map(Subject::Member);
        }
        key.strip_prefix("number:")
            .map(|n| Subject::Number(n.to_owned()))
    }

    pub fn member_id(&self) -> Option<i64> {
        match self {
            Subject::Member(id) => Some(*id),
            Subject::Number(_) => None,
        }
    }
}

/// Never prints a number: logs name members by id only.
impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Member(id) => write!(f, "Member({id})"),
            Subject::Number(_) => f.write_str("Number(..)"),
        }
    }
}

/// One alert firing for one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertHit {
    /// The alert's id (`crisis-language`, `low-mood`, `phq9-item9`, or
    /// [`BUILTIN_CRISIS_ALERT`] for a floor match when the rules name no
    /// critical alert).
    pub alert: String,
    pub severity: Severity,
    pub subject: Subject,
    /// The text that fired it; `None` for a scheduled alert.
    pub inbound_id: Option<i64>,
    /// What matched, for the person reading the incident: the phrase, the
    /// script's note, "answer 2 to mood". Never a name or a number.
    pub evidence: String,
    /// The alert's `realert:` window.
    pub realert: Option<Duration>,
    /// The escalation policy the incident will follow.
    pub escalate: Option<String>,
    /// The idempotency key of the reply sent to the member because of this
    /// hit (the crisis reply), so a failed send can be noted on the
    /// incident ("the member could not be texted").
    pub reply_key: Option<String>,
}

/// The alert id of a crisis match from the built-in floor when the rules
/// have no critical keyword alert to file it under.
pub const BUILTIN_CRISIS_ALERT: &str = "crisis";

/// What is open (or was lately opened) for one subject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectIncidents {
    /// Open incidents: `(id, alert, severity)`.
    pub open: Vec<(i64, String, Severity)>,
    /// The newest incident opened for each alert, open or not:
    /// `(alert, id, opened_at)`.
    pub last_opened: Vec<(String, i64, DateTime<Utc>)>,
}

/// What a hit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum HitDecision {
    /// Opens a new incident.
    Open,
    /// Adds its evidence to the open incident for the same alert.
    Join { incident: i64 },
    /// Within `realert:` of the last incident for this alert (now closed):
    /// kept as evidence on it, no new incident.
    Realert { incident: i64 },
    /// A lesser alert while a critical incident is open for the subject:
    /// kept as evidence on the critical incident.
    Inhibited { incident: i64 },
}

impl HitDecision {
    /// The incident the hit's evidence goes on, when it is not a new one.
    pub fn incident(self) -> Option<i64> {
        match self {
            HitDecision::Open => None,
            HitDecision::Join { incident }
            | HitDecision::Realert { incident }
            | HitDecision::Inhibited { incident } => Some(incident),
        }
    }

    /// Why, in words, for `hearth explain` and the audit trail.
    pub fn reason(self) -> String {
        match self {
            HitDecision::Open => "opens an incident".into(),
            HitDecision::Join { incident } => format!("joins open incident {incident}"),
            HitDecision::Realert { incident } => {
                format!("within realert of incident {incident}: evidence added, no new incident")
            }
            HitDecision::Inhibited { incident } => {
                format!("inhibited by open critical incident {incident}: evidence added there")
            }
        }
    }
}

/// Decides what `hit` does given what the subject has open. Order: join
/// the open incident for the same alert; else a non-critical hit while a
/// critical incident is open is inhibited; else within `realert` of the
/// last incident for this alert it is held back; else it opens one.
pub fn fold(hit: &AlertHit, facts: &SubjectIncidents, now: DateTime<Utc>) -> HitDecision {
    if let Some((id, _, _)) = facts.open.iter().find(|(_, a, _)| *a == hit.alert) {
        return HitDecision::Join { incident: *id };
    }
    if hit.severity < Severity::Critical
        && let Some((id, _, _)) = facts
            .open
            .iter()
            .filter(|(_, _, s)| *s == Severity::Critical)
            .min_by_key(|(id, _, _)| *id)
    {
        return HitDecision::Inhibited { incident: *id };
    }
    if let Some(window) = hit.realert
        && let Some((_, id, at)) = facts
            .last_opened
            .iter()
            .filter(|(a, _, _)| *a == hit.alert)
            .max_by_key(|(_, _, at)| *at)
        && now - *at < window.chrono()
    {
        return HitDecision::Realert { incident: *id };
    }
    HitDecision::Open
}

/// Where an incident is in its life. This issue opens them; acknowledging
/// and resolving are the escalation engine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    Open,
    Acknowledged,
    Resolved,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Acknowledged => "acknowledged",
            IncidentState::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<IncidentState> {
        match s {
            "open" => Some(IncidentState::Open),
            "acknowledged" => Some(IncidentState::Acknowledged),
            "resolved" => Some(IncidentState::Resolved),
            _ => None,
        }
    }
}

/// One piece of evidence on an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub at: DateTime<Utc>,
    pub alert: String,
    pub inbound_id: Option<i64>,
    pub text: String,
    /// `opened`, `joined`, `realert`, `inhibited`, or `not_texted` (the
    /// reply to the member could not be sent).
    pub kind: String,
}

/// An incident as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    pub id: i64,
    #[serde(skip)]
    pub subject: Subject,
    pub member_id: Option<i64>,
    pub member_external_id: Option<String>,
    pub alert: String,
    pub severity: Severity,
    pub state: IncidentState,
    pub escalate: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Oldest first.
    pub evidence: Vec<Evidence>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(alert: &str, severity: Severity, realert: Option<u64>) -> AlertHit {
        AlertHit {
            alert: alert.into(),
            severity,
            subject: Subject::Member(1),
            inbound_id: Some(1),
            evidence: "x".into(),
            realert: realert.map(Duration::from_secs),
            escalate: None,
            reply_key: None,
        }
    }

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap()
    }

    #[test]
    fn a_hit_joins_the_open_incident_for_its_alert_before_anything_else() {
        let facts = SubjectIncidents {
            open: vec![
                (3, "crisis-language".into(), Severity::Critical),
                (7, "low-mood".into(), Severity::Warning),
            ],
            last_opened: vec![("low-mood".into(), 7, at(0))],
        };
        assert_eq!(
            fold(
                &hit("low-mood", Severity::Warning, Some(86400)),
                &facts,
                at(1)
            ),
            HitDecision::Join { incident: 7 }
        );
    }

    #[test]
    fn an_open_critical_incident_inhibits_lesser_alerts_but_not_critical_ones() {
        let facts = SubjectIncidents {
            open: vec![(3, "crisis-language".into(), Severity::Critical)],
            last_opened: vec![],
        };
        assert_eq!(
            fold(&hit("low-mood", Severity::Warning, None), &facts, at(0)),
            HitDecision::Inhibited { incident: 3 }
        );
        assert_eq!(
            fold(&hit("phq9-item9", Severity::Critical, None), &facts, at(0)),
            HitDecision::Open
        );
    }

    #[test]
    fn realert_holds_back_a_new_incident_only_inside_its_window() {
        let facts = SubjectIncidents {
            open: vec![],
            last_opened: vec![("low-mood".into(), 9, at(0))],
        };
        let h = hit("low-mood", Severity::Warning, Some(24 * 3600));
        assert_eq!(
            fold(&h, &facts, at(23)),
            HitDecision::Realert { incident: 9 }
        );
        assert_eq!(fold(&h, &facts, at(24)), HitDecision::Open);
        assert_eq!(
            fold(&hit("low-mood", Severity::Warning, None), &facts, at(1)),
            HitDecision::Open
        );
    }

    #[test]
    fn subjects_round_trip_through_their_stored_key_and_debug_hides_numbers() {
        for s in [Subject::Member(42), Subject::Number("+15555550123".into())] {
            assert_eq!(Subject::from_key(&s.key()), Some(s.clone()));
        }
        assert_eq!(Subject::from_key("elsewhere:1"), None);
        assert!(!format!("{:?}", Subject::Number("+15555550123".into())).contains("555"));
    }
}
