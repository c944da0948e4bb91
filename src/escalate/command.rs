//! Contacts' text commands: `ACK 42`, `RESOLVE 42`, `ESC 42`, and a bare
//! `ACK` (the contact's one open incident).
//!
//! Accepted spellings, in any case, with or without `#` before the
//! number and spaces around it: `ACK`, `ACKNOWLEDGE`;
//! `RESOLVE`, `RESOLVED`, `RES`; `ESC`,
//! `ESCALATE`. Anything else is not a command (the text is kept as a
//! contact's text, as before).

use super::act::{ActError, Acted, Action};
use crate::domain::incident::IncidentState;

/// A parsed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Command {
    pub(crate) action: Action,
    /// `None` for a bare command.
    pub(crate) incident: Option<i64>,
}

/// Reads a command from a text; `None` when it is not one.
pub(crate) fn parse(text: &str) -> Option<Command> {
    let t = text.trim().trim_end_matches(['.', '!']).trim();
    let upper = t.to_uppercase();
    let word_end = upper
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(upper.len());
    let (word, rest) = upper.split_at(word_end);
    let rest = rest.trim().trim_start_matches('#').trim();
    let action = match word {
        "ACK" | "ACKNOWLEDGE" | "ACKED" => Action::Ack,
        "RESOLVE" | "RESOLVED" | "RES" => Action::Resolve,
        "ESC" | "ESCALATE" => Action::Escalate,
        _ => return None,
    };
    if rest.is_empty() {
        return Some(Command {
            action,
            incident: None,
        });
    }
    if rest.len() > 18 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let incident = rest.parse::<i64>().ok().filter(|n| *n > 0)?;
    Some(Command {
        action,
        incident: Some(incident),
    })
}

/// The one-line answer to a contact's command.
pub(crate) fn confirmation(cmd: &Command, result: &Result<Acted, ActError>) -> String {
    match result {
        Ok(Acted::Done {
            incident,
            state,
            told,
        }) => match state {
            IncidentState::Acknowledged => {
                let others = match told {
                    0 => String::new(),
                    1 => " 1 other was told.".into(),
                    n => format!(" {n} others were told."),
                };
                format!(
                    "Hearth: you have #{incident}. Reply RESOLVE {incident} when it is handled.{others}"
                )
            }
            IncidentState::Resolved => format!("Hearth: #{incident} resolved. Thank you."),
            IncidentState::Open => format!("Hearth: #{incident} passed on to the next step."),
        },
        Ok(Acted::Already {
            incident,
            state,
            by,
        }) => match (state, by) {
            (IncidentState::Acknowledged, Some(by)) => {
                format!("Hearth: #{incident} was already acknowledged ({by}).")
            }
            (IncidentState::Resolved, _) => format!("Hearth: #{incident} is already resolved."),
            _ => format!("Hearth: #{incident} is already {}.", state.as_str()),
        },
        Err(ActError::Ambiguous(ids)) => {
            let list: Vec<String> = ids.iter().map(|i| format!("#{i}")).collect();
            format!(
                "Hearth: you have several open incidents ({}). Say which, e.g. {} {}.",
                list.join(", "),
                verb(cmd.action),
                ids.first().copied().unwrap_or_default()
            )
        }
        Err(ActError::NoneOpen) => "Hearth: you have no open incident.".into(),
        Err(ActError::NotFound(id)) => format!("Hearth: there is no incident #{id}."),
        Err(ActError::Resolved(id)) => {
            format!("Hearth: #{id} is already resolved; nothing changed.")
        }
        Err(ActError::NotOnChain(id)) => {
            format!("Hearth: you are not on #{id}'s escalation chain, so it was not changed.")
        }
        Err(ActError::NotStarted(id)) => {
            format!("Hearth: #{id} could not be changed just now; try again in a minute.")
        }
        Err(ActError::Store(_)) => "Hearth: that did not go through; please try again.".into(),
    }
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Ack => "ACK",
        Action::Resolve => "RESOLVE",
        Action::Escalate => "ESC",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(action: Action, incident: Option<i64>) -> Option<Command> {
        Some(Command { action, incident })
    }

    #[test]
    fn the_usual_spellings_are_commands() {
        assert_eq!(parse("ACK 42"), c(Action::Ack, Some(42)));
        assert_eq!(parse("ack #42"), c(Action::Ack, Some(42)));
        assert_eq!(parse(" Ack42. "), c(Action::Ack, Some(42)));
        assert_eq!(parse("ACK"), c(Action::Ack, None));
        assert_eq!(
            parse("ok 7"),
            None,
            "OK is an answer to a survey, never a command"
        );
        assert_eq!(parse("RESOLVE 42"), c(Action::Resolve, Some(42)));
        assert_eq!(parse("resolved"), c(Action::Resolve, None));
        assert_eq!(parse("ESC 42"), c(Action::Escalate, Some(42)));
        assert_eq!(parse("Escalate #3!"), c(Action::Escalate, Some(3)));
    }

    #[test]
    fn ordinary_words_and_bad_numbers_are_not_commands() {
        for text in [
            "ok",
            "OK thanks",
            "acknowledged, on my way",
            "ACK 42 43",
            "ACK -1",
            "ACK 0",
            "ACK 99999999999999999999",
            "rescue",
            "escape",
            "",
            "42",
            "ACKACK",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn no_text_makes_the_parser_panic() {
        let mut rng = crate::testing::Rng::new(0x9e37_79b9_7f4a_7c15);
        let alphabet: Vec<char> = "ACKRESOLVEac 0123456789#.!\u{e9}\u{1F600}\t-"
            .chars()
            .collect();
        for _ in 0..20_000 {
            let x = rng.next();
            let len = (x % 12) as usize;
            let s: String = (0..len)
                .map(|i| alphabet[((x >> (i * 5)) as usize) % alphabet.len()])
                .collect();
            let _ = parse(&s);
        }
    }
}
