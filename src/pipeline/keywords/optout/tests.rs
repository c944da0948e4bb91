//! The opt-out grammar on tables of sentences people write, and on random
//! text.

use super::super::{Keyword, Keywords, Reading};
use super::one_edit;
use crate::domain::normalize::normalize;

fn read(text: &str) -> Option<Reading> {
    Keywords::default().read(&normalize(text))
}

/// Opt-outs in English: plain, polite, angry, typed in a hurry.
const ENGLISH_OPT_OUTS: &[&str] = &[
    "Please stop texting me",
    "please stop texting me.",
    "stop texting me",
    "Stop texting me!!",
    "pls stop txting me",
    "plz stop texting me",
    "stop txting me",
    "stopp texting me",
    "STOP TEXTING ME",
    "quit texting me",
    "Quit messaging me",
    "stop messaging me",
    "stop mesaging me please",
    "stop sending these",
    "stop sending me these",
    "stop sending me messages",
    "stop sending me texts",
    "Stop sending me this stuff",
    "can you stop texting me",
    "Can you please stop sending me messages?",
    "could u stop texting me",
    "will you stop texting me",
    "why won't you stop texting me",
    "I asked you to stop texting me",
    "I need you to stop texting me",
    "i want you guys to stop sending me these",
    "you can stop texting me now",
    "Stop contacting me",
    "stop contacting me please",
    "stop texting this number",
    "stop texting",
    "stop the texts",
    "stop these messages",
    "Stop all texts",
    "stop all the messages please",
    "cancel my subscription",
    "cancel the texts",
    "end the messages",
    "I want to stop getting these texts",
    "i want to stop receiving messages",
    "stop getting these",
    "I want to opt out",
    "i would like to opt out",
    "I'd like to opt out please",
    "opt me out",
    "Opt out please",
    "how do i opt out",
    "how do I unsubscribe",
    "please unsubscribe me",
    "unsubscribe me",
    "Unsubscribe me from this",
    "i want to unsubscribe",
    "unsubscibe me",
    "unsuscribe",
    "no more texts please",
    "No more texts",
    "no more messages",
    "no more msgs",
    "no more texting me",
    "no more of these please",
    "don't text me anymore",
    "dont text me no more",
    "do not text me",
    "Please don't text me again",
    "don't message me",
    "dont txt me",
    "do not contact me",
    "never text me again",
    "don't send me any more messages",
    "dont send me anything else",
    "do not send me texts",
    "I don't want these messages anymore",
    "i dont want these texts",
    "I do not want to receive messages",
    "i don't want any more texts",
    "I no longer want to get these messages",
    "i don't want to be texted anymore",
    "take me off your list",
    "take me off the list",
    "Take me off this list please",
    "take me off",
    "remove me from your list",
    "remove me from this list",
    "remove me",
    "please remove my number",
    "delete my number",
    "take my number off your list",
    "get me off this list",
    "lose my number",
    "Thanks. Stop.",
    "ok. stop please",
    "i want to kill myself, stop texting me",
    "I'm fine, don't text me",
    "seriously stop txting me",
];

/// Opt-outs that name one topic or kind of message: still an opt-out,
/// scoped.
const SCOPED_OPT_OUTS: &[&str] = &[
    "stop texting me about the dentist",
    "no more reminders about group please",
    "stop sending me reminders",
    "no more surveys",
    "please stop the check-ins",
    "dont text me before 9am",
    "stop messaging me on weekends",
    "unsubscribe me from the reminders",
    "no me manden mensajes sobre el grupo",
    "no más recordatorios",
];

/// Opt-outs in Spanish, with and without accents.
const SPANISH_OPT_OUTS: &[&str] = &[
    "no me manden más mensajes",
    "no me manden mas mensajes",
    "No me manden mensajes",
    "no me manden nada",
    "no me envíen más mensajes",
    "no me envien mas textos",
    "no me mandes mensajes",
    "ya no quiero recibir mensajes",
    "Ya no quiero recibir más mensajes",
    "no quiero recibir mensajes",
    "no quiero más mensajes",
    "ya no quiero mensajes",
    "no quiero que me escriban",
    "no quiero que me manden mensajes",
    "dejen de escribirme",
    "Dejen de escribirme por favor",
    "deja de escribirme",
    "dejen de mandarme mensajes",
    "paren de enviarme mensajes",
    "dejen de enviarme mensajes",
    "quiero dejar de recibir mensajes",
    "no me escriban mas",
    "no me escriban más",
    "no me escriban",
    "no me escribas",
    "no me contacten",
    "no me sigan mandando mensajes",
    "quiero darme de baja",
    "me quiero dar de baja",
    "denme de baja por favor",
    "darme de baja",
    "BAJA",
    "baja",
    "ALTO",
    "PARAR",
    "CANCELAR",
    "Cancelar.",
    "detener",
    "no más mensajes",
    "no mas mensajes por favor",
    "ya no más textos",
    "sáquenme de la lista",
    "sacame de la lista por favor",
    "bórrenme de la lista",
    "borren mi número",
    "paren los mensajes",
    "basta de mensajes",
    "cancelar la suscripción",
    "alto a los mensajes",
    "BAJA, por favor",
];

/// Ordinary texts that hold an opt-out word, a texting verb or both.
const NOT_OPT_OUTS: &[&str] = &[
    "I can't stop crying",
    "i cant stop crying",
    "cancel my appointment",
    "cancel my appointment please",
    "stop by after group?",
    "can you stop by later?",
    "I want to stop drinking",
    "i need to stop smoking",
    "don't stop the check-ins, they help",
    "please don't stop texting me",
    "never stop texting me, this helps",
    "why did you stop texting me?",
    "did you stop sending the reminders?",
    "my ex won't stop texting me",
    "he keeps texting me and won't stop",
    "my sister needs to stop texting me at work",
    "I need to stop texting my ex",
    "I need to stop texting so much",
    "we should stop texting during group",
    "I'll stop texting you now, goodnight",
    "you don't text me enough",
    "why don't you text me anymore",
    "don't text me back, I'm driving",
    "I don't text much",
    "don't send me the link, I have it",
    "I stopped getting the messages, can you check?",
    "I have no more texts left on my plan",
    "I got no more messages after Tuesday",
    "I don't want to miss these messages",
    "I don't want to stop coming to group",
    "I do not want to opt out",
    "did I opt out by accident? I still want the texts",
    "I never unsubscribed",
    "please don't unsubscribe me",
    "if I opt out will I still get help?",
    "get me out of here",
    "remove me from the group chat",
    "take me to group on Tuesday",
    "drop me a line",
    "drop me off at group",
    "I can't stop thinking about it",
    "stop it, you're making me laugh",
    "the end of the messages made me cry",
    "this is the end",
    "the end of the session was hard",
    "yes please",
    "I need help with my homework",
    "stopping by the pharmacy",
    "Stopwatch",
    "4",
    "",
    "...",
    "thanks for the texts, they help",
    "I love getting these messages",
    "keep the texts coming",
    "text me the address please",
    "can you text me the time?",
    "send me the link",
    "I quit my job today",
    "I want to end it all",
    "no puedo dejar de llorar",
    "no quiero parar de venir al grupo",
    "no dejen de escribirme",
    "no me mandaron el link",
    "no me manden el link, ya lo tengo",
    "quiero dejar de beber",
    "tengo que dejar de escribirle",
    "sácame de aquí",
    "no quiero darme de baja",
    "la presión me baja en la tarde",
    "no más por hoy",
    "gracias por los mensajes",
    "me gustan los mensajes",
    "cancelar mi cita",
    "ya no puedo más",
];

#[test]
fn opt_out_sentences_in_english_revoke_consent() {
    let missed: Vec<&&str> = ENGLISH_OPT_OUTS
        .iter()
        .filter(|t| read(t).is_none_or(|r| r.keyword != Keyword::Stop || r.spanish))
        .collect();
    assert!(
        missed.is_empty(),
        "not read as English opt-outs: {missed:#?}"
    );
}

#[test]
fn opt_out_sentences_in_spanish_revoke_consent_and_are_read_as_spanish() {
    let missed: Vec<&&str> = SPANISH_OPT_OUTS
        .iter()
        .filter(|t| read(t).is_none_or(|r| r.keyword != Keyword::Stop || !r.spanish))
        .collect();
    assert!(
        missed.is_empty(),
        "not read as Spanish opt-outs: {missed:#?}"
    );
}

#[test]
fn a_request_that_names_one_topic_revokes_and_is_marked_scoped() {
    let missed: Vec<&&str> = SCOPED_OPT_OUTS
        .iter()
        .filter(|t| read(t).is_none_or(|r| r.keyword != Keyword::Stop || !r.scoped))
        .collect();
    assert!(
        missed.is_empty(),
        "not read as scoped opt-outs: {missed:#?}"
    );
    for t in [
        "stop texting me",
        "no more texts",
        "BAJA",
        "dejen de escribirme",
    ] {
        assert!(!read(t).unwrap().scoped, "{t:?} names no topic");
    }
}

#[test]
fn ordinary_texts_with_opt_out_words_are_not_opt_outs() {
    let wrong: Vec<&&str> = NOT_OPT_OUTS
        .iter()
        .filter(|t| read(t).is_some_and(|r| r.keyword == Keyword::Stop))
        .collect();
    assert!(wrong.is_empty(), "read as opt-outs: {wrong:#?}");
}

#[test]
fn the_tables_are_as_large_as_promised() {
    let opt_outs = ENGLISH_OPT_OUTS.len() + SCOPED_OPT_OUTS.len() + SPANISH_OPT_OUTS.len();
    assert!(opt_outs >= 80, "{opt_outs} opt-out sentences");
    assert!(SPANISH_OPT_OUTS.len() >= 40, "{}", SPANISH_OPT_OUTS.len());
    assert!(
        NOT_OPT_OUTS.len() >= 60,
        "{} ordinary texts",
        NOT_OPT_OUTS.len()
    );
}

#[test]
fn one_slip_of_the_thumb_is_one_edit_and_a_longer_word_is_not() {
    assert!(one_edit("mesaging", "mesagin"));
    assert!(one_edit("texting", "tetxing"));
    assert!(one_edit("unsubscribe", "unsubscibe"));
    assert!(one_edit("texting", "texxing"));
    assert!(!one_edit("texting", "txtng"));
    assert!(!one_edit("unsubscribe", "resubscribe"));
}

#[test]
fn literal_words_the_grammar_compares_are_already_prepared() {
    for w in [
        "not", "no", "more", "opt", "out", "optout", "me", "my", "our", "from", "of", "lose",
        "sending", "send", "anything", "nothing", "left", "do", "does", "never", "longer", "be",
        "you", "guys", "ya", "i", "we", "ever", "even", "please", "again", "just", "que", "de",
        "baja", "mi", "numero", "mas", "nunca", "the", "a", "an", "that", "this", "stop",
    ] {
        assert_eq!(super::prepared(w), w, "{w:?} changes when prepared");
    }
    assert_eq!(super::prepared("yall"), "yal");
    assert_eq!(super::prepared("stopall"), "stopal");
}

#[test]
fn no_text_makes_reading_panic() {
    let mut rng = crate::testing::Rng::new(0x0b5e_55ed_0f0f_1701);
    let pieces: Vec<&str> = ENGLISH_OPT_OUTS
        .iter()
        .chain(SPANISH_OPT_OUTS)
        .chain(NOT_OPT_OUTS)
        .flat_map(|t| t.split(' '))
        .chain([
            "",
            " ",
            ",",
            ".",
            "!",
            "?",
            "'",
            "’",
            "ñ",
            "é",
            "\u{301}",
            "\u{200b}",
            "ＳＴＯＰ",
            "🙏",
            "\n",
            "\t",
            "\u{0}",
            "ǅ",
            "ß",
            "İ",
            "ﬁ",
            "2",
            "u",
            "r",
        ])
        .collect();
    let keywords = Keywords::default();
    let alphabet: Vec<char> = "stopxe mñé\u{301}',.!?;:()\"…ıİßﬁ\u{200b}0123456789"
        .chars()
        .collect();
    for _ in 0..20_000 {
        let n = rng.below(12);
        let mut text = String::new();
        for _ in 0..n {
            if rng.below(4) == 0 {
                text.push(*rng.pick(&alphabet));
            } else {
                let piece: &&str = rng.pick(&pieces[..]);
                text.push_str(piece);
                if rng.below(3) != 0 {
                    text.push(' ');
                }
            }
        }
        let _ = keywords.read(&normalize(&text));
    }
}
