//! Incidents: what an alert opens for a person to look at.
//!
//! An alert that fires for a subject (a member, or the number of an
//! unknown sender) is an [`AlertHit`]. [`fold`] decides, from what is
//! still unresolved (open or acknowledged) for that subject, what the hit
//! does: join the incident for the same alert; else join the subject's
//! oldest unresolved incident of at least its severity (several alerts
//! for one member make one incident, so one page, not ten: a warning
//! `low-mood` joins an open warning `gone-quiet`, any lesser alert joins
//! an open critical one); else be held back by `realert:`; else open a new
//! incident. A critical hit never joins a lesser incident: it opens its
//! own, which follows the crisis policy. Every hit is kept as evidence,
//! whatever the decision, so nothing a member said is lost; only the
//! incident count differs.
//!
//! The store applies [`fold`] inside the transaction that records the hit,
//! and `hearth explain` applies it to facts given on its command line, so
//! both decide alike.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Duration;

/// How urgent an alert is. Critical alerts are checked first, and a lesser
/// alert for a subject with a critical incident joins that incident.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Severity> {
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
    pub(crate) fn key(&self) -> String {
        match self {
            Subject::Member(id) => format!("member:{id}"),
            Subject::Number(n) => format!("number:{n}"),
        }
    }

    pub(crate) fn from_key(key: &str) -> Option<Subject> {
        if let Some(id) = key.strip_prefix("member:") {
            return id.parse().ok().map(Subject::Member);
        }
        key.strip_prefix("number:")
            .map(|n| Subject::Number(n.to_owned()))
    }

    pub(crate) fn member_id(&self) -> Option<i64> {
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
    /// For a survey item alert: the item and the answer as it reads
    /// ("item 9 — Thoughts that …: 'more than half the days'"), kept on
    /// the evidence for pages to quote.
    pub quote: Option<String>,
}

/// The alert id of a crisis match from the built-in floor when the rules
/// have no critical keyword alert to file it under.
pub(crate) const BUILTIN_CRISIS_ALERT: &str = "crisis";

/// What is unresolved (or was lately opened) for one subject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectIncidents {
    /// Unresolved (open or acknowledged) incidents, oldest first:
    /// `(id, alert, severity)`.
    pub open: Vec<(i64, String, Severity)>,
    /// The newest incident opened for each alert, open or not:
    /// `(alert, id, opened_at)`.
    pub(crate) last_opened: Vec<(String, i64, DateTime<Utc>)>,
}

/// What a hit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum HitDecision {
    /// Opens a new incident.
    Open,
    /// Adds its evidence to an unresolved incident of the subject: the
    /// one for the same alert, else the oldest of at least its severity.
    Join { incident: i64 },
    /// Within `realert:` of the last incident for this alert (now
    /// resolved): kept as evidence on it, no new incident.
    Realert { incident: i64 },
}

impl HitDecision {
    /// The incident the hit's evidence goes on, when it is not a new one.
    pub(crate) fn incident(self) -> Option<i64> {
        match self {
            HitDecision::Open => None,
            HitDecision::Join { incident } | HitDecision::Realert { incident } => Some(incident),
        }
    }

    /// Why, in words, for `hearth explain` and the audit trail.
    pub(crate) fn reason(self) -> String {
        match self {
            HitDecision::Open => "opens an incident".into(),
            HitDecision::Join { incident } => format!("joins open incident {incident}"),
            HitDecision::Realert { incident } => {
                format!("within realert of incident {incident}: evidence added, no new incident")
            }
        }
    }
}

/// Decides what `hit` does given what the subject has unresolved. Order:
/// (1) join the unresolved incident for the same alert; (2) else join the
/// oldest unresolved incident of at least the hit's severity (grouping: a
/// critical hit never joins a lesser incident); (3) else within `realert`
/// of the last incident for this alert it is held back; (4) else it opens
/// one.
pub(crate) fn fold(hit: &AlertHit, facts: &SubjectIncidents, now: DateTime<Utc>) -> HitDecision {
    if let Some((id, _, _)) = facts.open.iter().find(|(_, a, _)| *a == hit.alert) {
        return HitDecision::Join { incident: *id };
    }
    if let Some((id, _, _)) = facts
        .open
        .iter()
        .filter(|(_, _, s)| *s >= hit.severity)
        .min_by_key(|(id, _, _)| *id)
    {
        return HitDecision::Join { incident: *id };
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

/// Where an incident is in its life: opened by a hit, acknowledged and
/// resolved by a person (by text, the API or the CLI) through the
/// escalation engine. Open and acknowledged incidents are unresolved: they
/// take their subject's further hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    Open,
    Acknowledged,
    Resolved,
}

impl IncidentState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Acknowledged => "acknowledged",
            IncidentState::Resolved => "resolved",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<IncidentState> {
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
    pub(crate) at: DateTime<Utc>,
    pub alert: String,
    pub inbound_id: Option<i64>,
    pub text: String,
    /// `opened`, `joined`, `realert`, `follow_up` (a further text from the
    /// member while the incident was unresolved), or `not_texted` (the
    /// reply to the member could not be sent); `inhibited` on evidence
    /// recorded before grouping (a lesser alert kept on a critical
    /// incident).
    pub kind: String,
    /// What the text answered, as its survey item reads (a survey item
    /// alert's hit): what a page quotes instead of the bare answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) quote: Option<String>,
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
    pub(crate) opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Who acknowledged it (an actor: `contact:dana`, `api:<label>`,
    /// `cli:alex`), how (`sms`, `api`, `cli`) and when; cleared when the
    /// acknowledgement lapses and the incident is open again.
    pub acknowledged_by: Option<String>,
    pub acknowledged_how: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Who resolved it, how and when.
    pub resolved_by: Option<String>,
    pub resolved_how: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
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
            quote: None,
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
    fn a_lesser_alert_joins_an_open_critical_incident_and_another_critical_alert_joins_it_too() {
        let facts = SubjectIncidents {
            open: vec![(3, "crisis-language".into(), Severity::Critical)],
            last_opened: vec![],
        };
        assert_eq!(
            fold(&hit("low-mood", Severity::Warning, None), &facts, at(0)),
            HitDecision::Join { incident: 3 }
        );
        assert_eq!(
            fold(&hit("phq9-item9", Severity::Critical, None), &facts, at(0)),
            HitDecision::Join { incident: 3 }
        );
    }

    #[test]
    fn a_warning_joins_the_open_warning_incident_of_another_alert_one_page_not_two() {
        let facts = SubjectIncidents {
            open: vec![(5, "gone-quiet".into(), Severity::Warning)],
            last_opened: vec![("gone-quiet".into(), 5, at(0))],
        };
        assert_eq!(
            fold(
                &hit("low-mood", Severity::Warning, Some(86400)),
                &facts,
                at(1)
            ),
            HitDecision::Join { incident: 5 }
        );
        assert_eq!(
            fold(&hit("late-reply", Severity::Info, None), &facts, at(1)),
            HitDecision::Join { incident: 5 }
        );
    }

    #[test]
    fn a_critical_hit_never_joins_a_lesser_incident_but_opens_its_own() {
        let facts = SubjectIncidents {
            open: vec![
                (5, "gone-quiet".into(), Severity::Warning),
                (6, "late-reply".into(), Severity::Info),
            ],
            last_opened: vec![],
        };
        assert_eq!(
            fold(
                &hit("crisis-language", Severity::Critical, None),
                &facts,
                at(0)
            ),
            HitDecision::Open
        );
        // A warning passes over the lesser info incident to the warning one.
        let facts = SubjectIncidents {
            open: vec![
                (4, "late-reply".into(), Severity::Info),
                (5, "gone-quiet".into(), Severity::Warning),
            ],
            last_opened: vec![],
        };
        assert_eq!(
            fold(&hit("low-mood", Severity::Warning, None), &facts, at(0)),
            HitDecision::Join { incident: 5 }
        );
    }

    #[test]
    fn grouping_picks_the_oldest_unresolved_incident_of_enough_severity() {
        let facts = SubjectIncidents {
            open: vec![
                (9, "phq9-item9".into(), Severity::Critical),
                (7, "gone-quiet".into(), Severity::Warning),
                (8, "crisis-language".into(), Severity::Critical),
            ],
            last_opened: vec![],
        };
        assert_eq!(
            fold(&hit("low-mood", Severity::Warning, None), &facts, at(0)),
            HitDecision::Join { incident: 7 }
        );
        assert_eq!(
            fold(
                &hit("other-crisis", Severity::Critical, None),
                &facts,
                at(0)
            ),
            HitDecision::Join { incident: 8 }
        );
    }

    #[test]
    fn grouping_comes_before_realert() {
        let facts = SubjectIncidents {
            open: vec![(5, "gone-quiet".into(), Severity::Warning)],
            last_opened: vec![("low-mood".into(), 2, at(0))],
        };
        assert_eq!(
            fold(
                &hit("low-mood", Severity::Warning, Some(86400)),
                &facts,
                at(1)
            ),
            HitDecision::Join { incident: 5 }
        );
        assert_eq!(
            fold(
                &hit("low-mood", Severity::Warning, Some(86400)),
                &SubjectIncidents {
                    open: vec![],
                    ..facts
                },
                at(1)
            ),
            HitDecision::Realert { incident: 2 }
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
