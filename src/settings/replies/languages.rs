//! HELP and the STOP/START confirmations in the member's language: the
//! built-in English and Spanish texts, a deployment's per-language
//! overrides (`replies.languages`), and which language a member gets.

use std::collections::BTreeMap;

use super::super::raw::RawLanguageReplies;
use super::ReplySettings;

/// What Hearth says on its own behalf, in some language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said {
    Help,
    /// The one confirmation of an opt-out.
    Stop,
    /// The confirmation of an opt-out that named one topic: it says the
    /// revocation covers every text and how to subscribe again.
    StopTopic,
    Start,
}

/// One language's texts from the settings (`replies.languages.<code>`):
/// each may use `{program}`, `{contact}` and `{frequency}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LanguageReplies {
    pub(crate) program: Option<String>,
    pub(crate) contact: Option<String>,
    pub(crate) frequency: Option<String>,
    pub(crate) help: Option<String>,
    pub(crate) stop: Option<String>,
    pub(crate) stop_topic: Option<String>,
    pub(crate) start: Option<String>,
    /// The reply to a further text on an unresolved critical incident.
    pub(crate) follow_up: Option<String>,
}

/// A built-in language's texts.
struct Builtin {
    program: &'static str,
    contact: &'static str,
    frequency: &'static str,
    help: &'static str,
    stop: &'static str,
    stop_topic: &'static str,
    start: &'static str,
    follow_up: &'static str,
}

pub(super) const DEFAULT_PROGRAM: &str = "Hearth support group texts";
pub(super) const DEFAULT_CONTACT: &str = "your group facilitator";
pub(super) const DEFAULT_FREQUENCY: &str = "up to 1 msg/day";

const ENGLISH: Builtin = Builtin {
    program: DEFAULT_PROGRAM,
    contact: DEFAULT_CONTACT,
    frequency: DEFAULT_FREQUENCY,
    help: "{program}: {frequency}. Help: {contact}. Msg & data rates may apply. Reply STOP to opt out. If you are in crisis, call or text 988.",
    stop: "{program}: you are unsubscribed and will get no more messages. Reply START to subscribe again.",
    stop_topic: "{program}: you are unsubscribed from all of this program's texts, not only that topic, and will get no more messages. Reply START to subscribe again.",
    start: "{program}: you are subscribed again, {frequency}. Reply HELP for help, STOP to opt out.",
    follow_up: super::DEFAULT_FOLLOW_UP_TEXT,
};

const SPANISH: Builtin = Builtin {
    program: "Mensajes de los grupos de apoyo Hearth",
    contact: "su facilitador de grupo",
    frequency: "hasta 1 mensaje al día",
    help: "{program}: {frequency}. Ayuda: {contact}. Pueden aplicarse tarifas de mensajes y datos. Responda STOP o BAJA para cancelar. Si está en crisis, llame o escriba al 988.",
    stop: "{program}: se dio de baja y no recibirá más mensajes. Responda START para volver a suscribirse.",
    stop_topic: "{program}: se dio de baja de todos los mensajes de este programa, no solo de ese tema, y no recibirá más mensajes. Responda START para volver a suscribirse.",
    start: "{program}: está suscrito de nuevo, {frequency}. Responda AYUDA para ayuda, STOP o BAJA para cancelar.",
    follow_up: "Ya le avisamos a una persona. Si está en peligro ahora, llame al 911 o llame o escriba al 988.",
};

fn builtin(code: &str) -> Option<&'static Builtin> {
    match code {
        "en" => Some(&ENGLISH),
        "es" => Some(&SPANISH),
        _ => None,
    }
}

/// A roster's or the settings' language as a key: lower case, the primary
/// subtag (`es-MX` → `es`), common names read as codes (`Spanish`,
/// `español` → `es`).
pub fn language_key(language: &str) -> String {
    let lower = language.trim().to_lowercase().replace('_', "-");
    let primary = lower.split('-').next().unwrap_or_default();
    match primary {
        "spa" | "spanish" | "espanol" | "español" | "castellano" => "es".into(),
        "eng" | "english" => "en".into(),
        other => other.into(),
    }
}

impl ReplySettings {
    /// The reply to a further text on an unresolved critical incident, in
    /// `language` (a key [`ReplySettings::language`] gave): that
    /// language's `follow_up`, else the built-in one of a language other
    /// than English, else `replies.follow_up_text`.
    pub fn follow_up(&self, language: &str) -> String {
        self.languages
            .get(language)
            .and_then(|l| l.follow_up.clone())
            .or_else(|| {
                builtin(language)
                    .filter(|_| language != "en")
                    .map(|b| b.follow_up.to_owned())
            })
            .unwrap_or_else(|| self.follow_up_text.clone())
    }

    /// The language Hearth answers a member whose roster says `language`
    /// in: that language when it is built in (English, Spanish) or set in
    /// `replies.languages`, else English.
    pub fn language(&self, language: &str) -> String {
        let key = language_key(language);
        if builtin(&key).is_some() || self.languages.contains_key(&key) {
            key
        } else {
            "en".into()
        }
    }

    /// What Hearth says in `language` (a key [`ReplySettings::language`]
    /// gave), with the program, contact and frequency filled in.
    pub fn said(&self, what: Said, language: &str) -> String {
        let own = self.languages.get(language);
        let built = builtin(language);
        let template = own
            .and_then(|o| pick(o, what))
            .or_else(|| built.map(|b| b.text(what)))
            .or_else(|| own.and_then(|o| (what == Said::StopTopic).then_some(o.stop.as_deref())?))
            .unwrap_or_else(|| ENGLISH.text(what));
        // A setting given for this language, else the deployment's own
        // (unless it is the English default and the language has its own).
        let value = |given: Option<&String>,
                     general: &str,
                     default: &str,
                     b: fn(&Builtin) -> &'static str| {
            match (given, built) {
                (Some(v), _) => v.clone(),
                (None, Some(b_)) if general == default => b(b_).to_owned(),
                _ => general.to_owned(),
            }
        };
        let program = value(
            own.and_then(|o| o.program.as_ref()),
            &self.program,
            DEFAULT_PROGRAM,
            |b| b.program,
        );
        let contact = value(
            own.and_then(|o| o.contact.as_ref()),
            &self.contact,
            DEFAULT_CONTACT,
            |b| b.contact,
        );
        let frequency = value(
            own.and_then(|o| o.frequency.as_ref()),
            &self.frequency,
            DEFAULT_FREQUENCY,
            |b| b.frequency,
        );
        template
            .replace("{program}", &program)
            .replace("{contact}", &contact)
            .replace("{frequency}", &frequency)
    }
}

impl Builtin {
    fn text(&self, what: Said) -> &'static str {
        match what {
            Said::Help => self.help,
            Said::Stop => self.stop,
            Said::StopTopic => self.stop_topic,
            Said::Start => self.start,
        }
    }
}

fn pick(o: &LanguageReplies, what: Said) -> Option<&str> {
    match what {
        Said::Help => o.help.as_deref(),
        Said::Stop => o.stop.as_deref(),
        Said::StopTopic => o.stop_topic.as_deref(),
        Said::Start => o.start.as_deref(),
    }
}

/// `replies.languages`, checked: codes made keys, texts trimmed and not
/// empty, placeholders known, HELP giving 988, and a language Hearth has
/// no texts of giving all three of `help`, `stop` and `start`.
pub(super) fn languages(
    raw: BTreeMap<String, RawLanguageReplies>,
) -> Result<BTreeMap<String, LanguageReplies>, String> {
    let mut out = BTreeMap::new();
    for (code, r) in raw {
        let key = language_key(&code);
        if key.is_empty() || !key.chars().all(|c| c.is_alphanumeric()) {
            return Err(format!(
                "replies.languages: `{code}` is not a language code\n  hint: use the code the roster's `language` column holds, like `es` or `fr`"
            ));
        }
        let at = |field: &str| format!("replies.languages.{code}.{field}");
        let text = |field: &str, v: Option<String>| -> Result<Option<String>, String> {
            let Some(v) = v else { return Ok(None) };
            let v = v.trim().to_owned();
            if v.is_empty() {
                return Err(format!(
                    "{} is empty\n  hint: leave it out for the default",
                    at(field)
                ));
            }
            placeholders(&at(field), &v)?;
            Ok(Some(v))
        };
        let l = LanguageReplies {
            program: text("program", r.program)?,
            contact: text("contact", r.contact)?,
            frequency: text("frequency", r.frequency)?,
            help: text("help", r.help)?,
            stop: text("stop", r.stop)?,
            stop_topic: text("stop_topic", r.stop_topic)?,
            start: text("start", r.start)?,
            follow_up: text("follow_up", r.follow_up)?,
        };
        if let Some(f) = &l.follow_up
            && !f.contains("988")
            && !f.contains("911")
        {
            return Err(format!(
                "{} does not give 988 or 911: `{f}`\n  hint: it answers someone in a crisis conversation; say how to reach help now, like \"call 911 or call or text 988\"",
                at("follow_up")
            ));
        }
        if let Some(help) = &l.help
            && !help.contains("988")
        {
            return Err(format!(
                "{} does not give 988: `{help}`\n  hint: HELP must say how to reach crisis help, like \"If you are in crisis, call or text 988.\"",
                at("help")
            ));
        }
        if builtin(&key).is_none() {
            let missing: Vec<&str> = [("help", &l.help), ("stop", &l.stop), ("start", &l.start)]
                .into_iter()
                .filter(|(_, v)| v.is_none())
                .map(|(k, _)| k)
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "replies.languages.{code} lacks {}\n  hint: Hearth has built-in texts in English (en) and Spanish (es) only; another language needs its own help, stop and start",
                    missing.join(", ")
                ));
            }
        }
        if out.insert(key.clone(), l).is_some() {
            return Err(format!(
                "replies.languages: `{code}` is a second entry for `{key}`\n  hint: keep one"
            ));
        }
    }
    Ok(out)
}

/// Every `{…}` in `text` is one Hearth fills in.
fn placeholders(at: &str, text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!(
                "{at}: `{{` is never closed\n  hint: write {{program}}, {{contact}} or {{frequency}}"
            ));
        };
        let name = &after[..close];
        if !matches!(name, "program" | "contact" | "frequency") {
            return Err(format!(
                "{at}: unknown placeholder `{{{name}}}`\n  hint: write {{program}}, {{contact}} or {{frequency}}"
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::testing::parse;

    #[test]
    fn a_member_gets_their_language_when_hearth_has_it_and_english_otherwise() {
        let s = ReplySettings::default();
        assert_eq!(s.language("es"), "es");
        assert_eq!(s.language("ES-mx"), "es");
        assert_eq!(s.language("Spanish"), "es");
        assert_eq!(s.language("en"), "en");
        assert_eq!(s.language("fr"), "en");
        assert_eq!(s.language(""), "en");
        let fr = parse(
            "replies: { languages: { fr: { help: \"{program}: aide au {contact}. En crise, appelez le 988.\", stop: \"{program}: désabonné.\", start: \"{program}: réabonné.\" } } }\n",
            &[],
        )
        .unwrap()
        .replies;
        assert_eq!(fr.language("fr-CA"), "fr");
        assert_eq!(
            fr.said(Said::Help, "fr"),
            "Hearth support group texts: aide au your group facilitator. En crise, appelez le 988."
        );
        assert_eq!(
            fr.said(Said::StopTopic, "fr"),
            "Hearth support group texts: désabonné."
        );
    }

    #[test]
    fn built_in_texts_carry_what_compliance_asks_in_english_and_spanish() {
        let s = ReplySettings::default();
        let help = s.said(Said::Help, "en");
        for part in [
            DEFAULT_PROGRAM,
            DEFAULT_CONTACT,
            DEFAULT_FREQUENCY,
            "Msg & data rates may apply",
            "STOP",
            "If you are in crisis, call or text 988",
        ] {
            assert!(help.contains(part), "{help}");
        }
        let ayuda = s.said(Said::Help, "es");
        for part in [
            "Mensajes de los grupos de apoyo Hearth",
            "su facilitador",
            "tarifas de mensajes y datos",
            "BAJA",
            "988",
        ] {
            assert!(ayuda.contains(part), "{ayuda}");
        }
        assert!(s.said(Said::Stop, "es").contains("START"));
        assert!(
            s.said(Said::StopTopic, "en")
                .contains("not only that topic")
        );
        assert!(
            s.said(Said::StopTopic, "es")
                .contains("no solo de ese tema")
        );
        assert!(
            s.said(Said::Start, "es")
                .starts_with("Mensajes de los grupos")
        );
    }

    #[test]
    fn a_deployments_program_is_used_in_every_language_unless_the_language_sets_its_own() {
        let s = parse(
            "replies: { program: Maple texts, contact: call 555-0100, languages: { es: { frequency: hasta 2 mensajes por semana } } }\n",
            &[],
        )
        .unwrap()
        .replies;
        let help = s.said(Said::Help, "es");
        assert!(
            help.starts_with("Maple texts: hasta 2 mensajes por semana. Ayuda: call 555-0100."),
            "{help}"
        );
        assert!(s.said(Said::Help, "en").contains("up to 1 msg/day"));
    }

    #[test]
    fn bad_language_sections_are_refused_naming_the_key() {
        for (yaml, names) in [
            (
                "replies: { languages: { fr: { help: \"aide 988\" } } }",
                "replies.languages.fr lacks stop, start",
            ),
            (
                "replies: { languages: { es: { help: \"ayuda\" } } }",
                "replies.languages.es.help does not give 988",
            ),
            (
                "replies: { languages: { es: { stop: \"{programa}: baja\" } } }",
                "unknown placeholder `{programa}`",
            ),
            (
                "replies: { languages: { es: { stop: \"  \" } } }",
                "replies.languages.es.stop is empty",
            ),
            (
                "replies: { languages: { \"e s\": { stop: x } } }",
                "`e s` is not a language code",
            ),
            ("replies: { languages: { es: { stopp: x } } }", "stopp"),
            (
                "replies: { languages: { es: { stop: x }, ES: { stop: y } } }",
                "second entry for `es`",
            ),
        ] {
            let err = parse(&format!("{yaml}\n"), &[]).unwrap_err().to_string();
            assert!(err.contains(names), "{yaml}: {err}");
        }
    }
}
