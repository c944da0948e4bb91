//! What notices say: the minimum necessary. Incident number, alert,
//! severity, the member's first name and last initial, the group, the
//! step, and how to acknowledge. The member's own words only to a contact
//! marked `phi: true`. Never the member's number, full name or roster id.

use chrono::{DateTime, Utc};

use crate::domain::incident::Severity;

/// What a notice is about, read once per incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct About {
    pub(crate) incident: i64,
    pub(crate) alert: String,
    pub(crate) severity: Severity,
    /// "Maria G.", or "a sender not on the roster".
    pub(crate) who: String,
    /// Group names.
    pub(crate) groups: Vec<String>,
    /// The newest text that fed the incident, for `phi: true` contacts.
    pub(crate) words: Option<String>,
    /// What that text answered, as the survey item reads ("item 9 —
    /// Thoughts that …: 'more than half the days'"), when a survey item
    /// alert fed the incident: quoted instead of the bare answer, for
    /// `phi: true` contacts.
    pub(crate) quote: Option<String>,
}

/// Why a notice goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// A step's notification (1-based step number; round 0 is the first
    /// pass). `repeat`: a critical incident's policy ran out with nobody
    /// acknowledging and this is a repeat page, unacknowledged this many
    /// minutes.
    Page {
        step: u32,
        round: u32,
        backup: bool,
        repeat: Option<i64>,
    },
    /// The member (or the unknown sender) texted again while the incident
    /// is unresolved: forwarded to whoever acknowledged it, or to the
    /// current step's contacts.
    FollowUp { acknowledged: bool },
    /// Someone acknowledged: "Dana Reyes (sms)".
    Acknowledged { by: String },
    /// Resolved before anyone acknowledged.
    Resolved { by: String },
    /// Acknowledged by this contact but not resolved within
    /// `resolve_within`.
    Reminder { since: DateTime<Utc> },
}

impl Event {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Event::Page { .. } => "page",
            Event::FollowUp { .. } => "follow_up",
            Event::Acknowledged { .. } => "acknowledged",
            Event::Resolved { .. } => "resolved",
            Event::Reminder { .. } => "reminder",
        }
    }
}

/// How a staff contact is named to colleagues: the name before any
/// parenthesis or comma ("Sam Ortiz, LCSW (co-facilitator)" → "Sam
/// Ortiz"). Staff are not members: their names are not PHI.
pub(crate) fn staff_name(full: &str) -> String {
    let cut = full.find(['(', ',']).unwrap_or(full.len());
    full[..cut].split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The member as notices name them.
pub(crate) fn member_display(first_name: &str, last_name: Option<&str>) -> String {
    let first = first_name.split_whitespace().next().unwrap_or(first_name);
    match last_name.and_then(|l| l.trim().chars().next()) {
        Some(i) => format!("{first} {}.", i.to_uppercase()),
        None => first.to_owned(),
    }
}

const MAX_WORDS: usize = 300;

fn clip(w: &str) -> String {
    let mut w: String = w.chars().take(MAX_WORDS).collect();
    if w.chars().count() == MAX_WORDS {
        w.push('…');
    }
    w
}

fn words(about: &About, phi: bool) -> Option<String> {
    if !phi {
        return None;
    }
    about.words.as_deref().map(clip)
}

/// What a page quotes to a `phi: true` contact: the answer as its survey
/// item reads, else the member's own words ("They wrote: …").
fn quoted(about: &About, phi: bool) -> Option<String> {
    if !phi {
        return None;
    }
    match (&about.quote, &about.words) {
        (Some(q), _) => Some(format!("They answered {}", clip(q))),
        (None, Some(w)) => Some(format!("They wrote: \"{}\"", clip(w))),
        (None, None) => None,
    }
}

/// "Repeat page: still unacknowledged after 45 min."
fn repeat_line(repeat: Option<i64>) -> String {
    match repeat {
        Some(m) => format!(" Repeat page: still unacknowledged after {m} min."),
        None => String::new(),
    }
}

fn headline(a: &About) -> String {
    let group = if a.groups.is_empty() {
        String::new()
    } else {
        format!(" ({})", a.groups.join(", "))
    };
    format!(
        "#{} {} {}: {}{group}",
        a.incident,
        a.severity.as_str().to_uppercase(),
        a.alert,
        a.who
    )
}

/// The SMS text.
pub(crate) fn sms(a: &About, e: &Event, phi: bool) -> String {
    let n = a.incident;
    let mut s = match e {
        Event::Page {
            step,
            round,
            repeat,
            ..
        } => {
            let again = if *round > 0 { " (again)" } else { "" };
            format!(
                "Hearth {}.{} Step {step}{again}. Reply ACK {n} to take it, ESC {n} to pass it on.",
                headline(a),
                repeat_line(*repeat)
            )
        }
        Event::FollowUp { acknowledged: true } => format!(
            "Hearth #{n} {} texted again; you have it (RESOLVE {n} when handled).",
            a.who
        ),
        Event::FollowUp {
            acknowledged: false,
        } => format!(
            "Hearth {} texted again; nobody has acknowledged. Reply ACK {n} to take it.",
            headline(a)
        ),
        Event::Acknowledged { by } => {
            format!("Hearth #{n}: acknowledged by {by}. No action needed from you.")
        }
        Event::Resolved { by } => format!("Hearth #{n}: resolved by {by}. No action needed."),
        Event::Reminder { since } => format!(
            "Hearth #{n}: you acknowledged it at {} UTC and it is not resolved. Reply RESOLVE {n} when done, or ESC {n} to pass it on.",
            since.format("%H:%M")
        ),
    };
    match e {
        Event::Page { .. } => {
            if let Some(q) = quoted(a, phi) {
                s.push(' ');
                s.push_str(&q);
            }
        }
        Event::FollowUp { .. } => {
            if let Some(w) = words(a, phi) {
                s.push_str(&format!(" They wrote: \"{w}\""));
            }
        }
        _ => {}
    }
    s
}

/// The email subject and body. `sms_ack`: the contact can acknowledge by
/// text (it has an SMS number).
pub(crate) fn email(a: &About, e: &Event, phi: bool, sms_ack: bool) -> (String, String) {
    let n = a.incident;
    let subject = match e {
        Event::Page { .. } => format!(
            "[Hearth #{n}] {} {}: needs someone",
            a.severity.as_str(),
            a.alert
        ),
        Event::Acknowledged { by } => format!("[Hearth #{n}] acknowledged by {by}"),
        Event::Resolved { by } => format!("[Hearth #{n}] resolved by {by}"),
        Event::Reminder { .. } => format!("[Hearth #{n}] acknowledged but not resolved"),
        Event::FollowUp { .. } => format!(
            "[Hearth #{n}] {} {}: they texted again",
            a.severity.as_str(),
            a.alert
        ),
    };
    let how = if sms_ack {
        format!(
            "To acknowledge, text ACK {n} to Hearth's number (ESC {n} passes it on, RESOLVE {n} closes it), or use `hearth incidents ack {n}` or the admin API."
        )
    } else {
        format!(
            "To acknowledge, use `hearth incidents ack {n}` or POST /api/incidents/{n}/ack on the admin API."
        )
    };
    let mut body = email_body(a, e, &how);
    match e {
        Event::Page { .. } => {
            if let Some(q) = quoted(a, phi) {
                body.push_str(&format!("\n{q}\n"));
            }
        }
        Event::FollowUp { .. } => {
            if let Some(w) = words(a, phi) {
                body.push_str(&format!("\nThey wrote:\n\n  {w}\n"));
            }
        }
        _ => {}
    }
    body.push_str("\n-- \nSent by Hearth. This message is confidential; do not forward it.\n");
    (subject, body)
}

/// The email body before the quoted words and the footer.
fn email_body(a: &About, e: &Event, how: &str) -> String {
    let n = a.incident;
    match e {
        Event::Page {
            step,
            round,
            backup,
            repeat,
        } => {
            let which = if *backup {
                "the backup step".to_owned()
            } else if *round > 0 {
                format!("step {step}, round {}", round + 1)
            } else {
                format!("step {step}")
            };
            let still = match repeat {
                Some(m) => format!(
                    "\nIts escalation policy has run out and it is still unacknowledged after {m} min: this is a repeat page, and it repeats until someone acknowledges."
                ),
                None => String::new(),
            };
            format!(
                "Incident {}\nThis is {which} of its escalation: nobody has acknowledged it yet.{still}\n\n{how}\n",
                headline(a)
            )
        }
        Event::FollowUp { acknowledged } => {
            let next = if *acknowledged {
                format!("You acknowledged it. Resolve it (RESOLVE {n}) when it is handled.")
            } else {
                format!("Nobody has acknowledged it yet.\n\n{how}")
            };
            format!(
                "Incident {} is not resolved, and they texted again.\n{next}\n",
                headline(a)
            )
        }
        Event::Acknowledged { by } => format!(
            "Incident {} was acknowledged by {by}. No action is needed from you.\n",
            headline(a)
        ),
        Event::Resolved { by } => format!(
            "Incident {} was resolved by {by}. No action is needed.\n",
            headline(a)
        ),
        Event::Reminder { since } => format!(
            "You acknowledged incident {} at {} and it is not resolved yet.\nResolve it (RESOLVE {n}) or pass it on (ESC {n}); otherwise it escalates again.\n",
            headline(a),
            since.format("%Y-%m-%d %H:%M UTC")
        ),
    }
}

/// The webhook's JSON body.
pub(crate) fn webhook(a: &About, e: &Event, phi: bool, at: DateTime<Utc>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "event": e.name(),
        "incident": a.incident,
        "alert": a.alert,
        "severity": a.severity.as_str(),
        "member": a.who,
        "groups": a.groups,
        "at": at.to_rfc3339(),
        "acknowledge": {
            "sms": format!("ACK {}", a.incident),
            "api": format!("/api/incidents/{}/ack", a.incident),
        },
    });
    match e {
        Event::Page {
            step,
            round,
            backup,
            repeat,
        } => {
            v["step"] = (*step).into();
            v["round"] = (*round).into();
            v["backup"] = (*backup).into();
            if let Some(m) = repeat {
                v["repeat"] = true.into();
                v["unacknowledged_minutes"] = (*m).into();
            }
            if let Some(w) = words(a, phi) {
                v["words"] = w.into();
            }
            if let (Some(q), true) = (&a.quote, phi) {
                v["answered"] = clip(q).into();
            }
        }
        Event::FollowUp { acknowledged } => {
            v["acknowledged"] = (*acknowledged).into();
            if let Some(w) = words(a, phi) {
                v["words"] = w.into();
            }
        }
        Event::Acknowledged { by } | Event::Resolved { by } => v["by"] = by.clone().into(),
        Event::Reminder { since } => v["acknowledged_at"] = since.to_rfc3339().into(),
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about() -> About {
        About {
            incident: 42,
            alert: "crisis-language".into(),
            severity: Severity::Critical,
            who: member_display("Maria", Some("Gonzalez")),
            groups: vec!["Tuesday Evening".into()],
            words: Some("i want to end it".into()),
            quote: None,
        }
    }

    #[test]
    fn a_page_names_the_member_by_first_name_and_initial_and_says_how_to_acknowledge() {
        let page = Event::Page {
            step: 1,
            round: 0,
            backup: false,
            repeat: None,
        };
        let s = sms(&about(), &page, false);
        assert_eq!(
            s,
            "Hearth #42 CRITICAL crisis-language: Maria G. (Tuesday Evening). Step 1. Reply ACK 42 to take it, ESC 42 to pass it on."
        );
        assert!(!s.contains("Gonzalez") && !s.contains("end it"));
        let (subject, body) = email(&about(), &page, false, true);
        assert!(subject.contains("#42") && !subject.contains("Maria"));
        assert!(body.contains("text ACK 42") && !body.contains("end it"));
        let w = webhook(&about(), &page, false, Utc::now());
        assert!(w.get("words").is_none());
        assert_eq!(w["member"], "Maria G.");
    }

    #[test]
    fn only_a_phi_contact_sees_the_members_words() {
        let page = Event::Page {
            step: 2,
            round: 1,
            backup: false,
            repeat: None,
        };
        assert!(sms(&about(), &page, true).ends_with("They wrote: \"i want to end it\""));
        assert!(
            email(&about(), &page, true, false)
                .1
                .contains("i want to end it")
        );
        assert_eq!(
            webhook(&about(), &page, true, Utc::now())["words"],
            "i want to end it"
        );
        // Acknowledgement notices never quote them.
        let ack = Event::Acknowledged {
            by: "Dana Reyes (sms)".into(),
        };
        assert!(!sms(&about(), &ack, true).contains("end it"));
    }

    #[test]
    fn names_shorten_to_first_name_and_initial() {
        assert_eq!(staff_name("Dana Reyes"), "Dana Reyes");
        assert_eq!(staff_name("Sam Ortiz, LCSW (co-facilitator)"), "Sam Ortiz");
        assert_eq!(
            staff_name("Dr. Jordan Lee (Tuesday Anxiety)"),
            "Dr. Jordan Lee"
        );
        assert_eq!(staff_name("  Ana  María "), "Ana María");
        assert_eq!(member_display("Maria", None), "Maria");
        assert_eq!(member_display("Maria", Some("  ")), "Maria");
        assert_eq!(member_display("Émile", Some("ölund")), "Émile Ö.");
    }

    #[test]
    fn a_repeat_page_says_how_long_it_has_gone_unacknowledged() {
        let page = Event::Page {
            step: 2,
            round: 3,
            backup: false,
            repeat: Some(45),
        };
        let s = sms(&about(), &page, false);
        assert!(
            s.contains("still unacknowledged after 45 min") && s.contains("ACK 42"),
            "{s}"
        );
        assert!(
            email(&about(), &page, false, true)
                .1
                .contains("still unacknowledged after 45 min")
        );
        let w = webhook(&about(), &page, false, Utc::now());
        assert_eq!(
            (w["repeat"].clone(), w["unacknowledged_minutes"].clone()),
            (true.into(), 45.into())
        );
        let first = Event::Page {
            step: 1,
            round: 0,
            backup: false,
            repeat: None,
        };
        assert!(!sms(&about(), &first, false).contains("unacknowledged after"));
    }

    #[test]
    fn a_page_for_a_survey_item_quotes_the_item_and_the_answer_not_the_bare_number() {
        let a = About {
            alert: "phq9-item9".into(),
            words: Some("2".into()),
            quote: Some("item 9 — Thoughts that you would be better off dead or of hurting yourself in some way: 'more than half the days'".into()),
            ..about()
        };
        let page = Event::Page {
            step: 1,
            round: 0,
            backup: false,
            repeat: None,
        };
        let s = sms(&a, &page, true);
        assert!(
            s.ends_with("They answered item 9 — Thoughts that you would be better off dead or of hurting yourself in some way: 'more than half the days'"),
            "{s}"
        );
        assert!(!s.contains("They wrote"), "{s}");
        assert!(!sms(&a, &page, false).contains("better off dead"));
        assert!(
            email(&a, &page, true, true)
                .1
                .contains("'more than half the days'")
        );
    }

    #[test]
    fn a_follow_up_notice_names_the_incident_and_carries_the_text_only_for_phi_contacts() {
        let a = About {
            words: Some("hello? is anyone there?".into()),
            ..about()
        };
        let open = Event::FollowUp {
            acknowledged: false,
        };
        let s = sms(&a, &open, true);
        assert!(s.contains("#42") && s.contains("ACK 42"), "{s}");
        assert!(
            s.ends_with("They wrote: \"hello? is anyone there?\""),
            "{s}"
        );
        let plain = sms(&a, &open, false);
        assert!(
            plain.contains("texted again") && !plain.contains("anyone there"),
            "{plain}"
        );
        let mine = sms(&a, &Event::FollowUp { acknowledged: true }, true);
        assert!(
            mine.contains("RESOLVE 42") && mine.contains("anyone there"),
            "{mine}"
        );
        let w = webhook(&a, &open, true, Utc::now());
        assert_eq!(w["event"], "follow_up");
        assert_eq!(w["words"], "hello? is anyone there?");
    }
}
