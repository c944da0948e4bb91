//! The opt-out grammar's words: each class (requests, texting verbs,
//! words for the messages, fillers, what blocks a match), in English and
//! Spanish, written as people type them and prepared once.

use std::sync::LazyLock;

use super::Words;

pub(super) struct Lexicon {
    pub(super) request: Words,
    pub(super) sending: Words,
    pub(super) send: Words,
    pub(super) receiving: Words,
    pub(super) messages: Words,
    pub(super) kinds: Words,
    pub(super) me: Words,
    pub(super) these: Words,
    pub(super) filler: Words,
    pub(super) closing: Words,
    pub(super) want_filler: Words,
    pub(super) blocker: Words,
    pub(super) not_before: Words,
    pub(super) subject: Words,
    pub(super) stated: Words,
    pub(super) after_me_blocker: Words,
    pub(super) topic: Words,
    pub(super) want: Words,
    pub(super) passive: Words,
    pub(super) remove: Words,
    pub(super) take: Words,
    pub(super) my_thing: Words,
    pub(super) list: Words,
    pub(super) unsubscribe: Words,
    pub(super) es: Spanish,
}

pub(super) struct Spanish {
    pub(super) send_subj: Words,
    pub(super) write_subj: Words,
    pub(super) stop: Words,
    pub(super) infinitive_me: Words,
    pub(super) infinitive: Words,
    pub(super) want: Words,
    pub(super) messages: Words,
    pub(super) kinds: Words,
    pub(super) filler: Words,
    pub(super) take_me: Words,
    pub(super) take: Words,
    pub(super) list: Words,
    pub(super) bare: Words,
    pub(super) request_noun: Words,
    pub(super) keep: Words,
    pub(super) gerund: Words,
    pub(super) topic: Words,
}

#[rustfmt::skip]
pub(super) static LEXICON: LazyLock<Lexicon> = LazyLock::new(|| Lexicon {
    request: Words::new(&[
        "stop", "quit", "cease", "halt", "end", "discontinue", "cancel", "stahp",
    ]),
    sending: Words::fuzzy(&[
        "texting", "txting", "texing", "textin", "txtin", "messaging", "msging", "msgin",
        "sending", "contacting", "spamming", "bothering", "harassing", "emailing", "smsing",
    ]),
    send: Words::new(&[
        "text", "txt", "tx", "message", "msg", "contact", "send", "email", "sms", "bother", "spam",
    ]),
    receiving: Words::fuzzy(&[
        "getting", "geting", "receiving", "recieving", "get", "receive", "recieve",
    ]),
    messages: Words::fuzzy(&[
        "texts", "text", "txts", "txt", "messages", "message", "msgs", "msg", "sms", "texting",
        "messaging", "spam", "subscription", "stuff", "crap", "junk", "garbage", "shit",
    ]),
    kinds: Words::fuzzy(&[
        "reminders", "reminder", "notifications", "notification", "alerts", "checkins", "surveys",
        "survey", "updates", "questions", "questionnaires",
    ]),
    me: Words::new(&["me", "us"]),
    these: Words::new(&["these", "those", "them", "this", "it"]),
    filler: Words::new(&[
        "the", "all", "your", "any", "of", "my", "with", "from", "you", "ya", "yall", "guys",
        "please", "just", "ever", "even", "again", "more", "anymore", "damn", "stupid", "freaking",
        "fucking", "automated", "daily", "weekly", "group", "hearth", "now", "already", "thanks",
        "thank", "ok", "okay", "asap", "immediately", "seriously", "lol", "other", "such", "so",
        "many", "every", "day", "no",
    ]),
    closing: Words::new(&[
        "please", "now", "just", "thanks", "thank", "ok", "okay", "already", "seriously", "all",
    ]),
    want_filler: Words::new(&[
        "to", "get", "getting", "receive", "receiving", "recieve", "any", "more", "anymore", "the",
        "these", "those", "your", "all", "of", "this", "such", "keep", "be", "from", "you",
        "stupid", "damn", "daily", "weekly", "group", "other",
    ]),
    blocker: Words::new(&[
        "never", "did", "doesnt", "if", "he", "she", "they", "his", "ex", "mom", "mum", "dad",
        "mother", "father", "brother", "sister", "friend", "friends", "boyfriend", "girlfriend",
        "bf", "gf", "husband", "wife", "partner", "son", "daughter", "someone", "somebody",
        "people", "nobody", "everyone", "everybody", "boss", "coworker", "kids", "kid", "cousin",
        "aunt", "uncle", "grandma", "sponsor",
    ]),
    not_before: Words::new(&["do", "does", "did", "can", "could", "should", "must"]),
    subject: Words::new(&[
        "you", "u", "i", "we", "they", "he", "she", "it", "why", "who", "what", "how", "if",
        "when", "people", "nobody", "ya", "yall",
    ]),
    stated: Words::new(&[
        "got", "get", "have", "had", "has", "received", "recieved", "were", "are", "is", "was",
        "there", "see", "saw", "with", "if", "any",
    ]),
    after_me_blocker: Words::new(&[
        "back", "enough", "yet", "first", "if", "unless", "when", "or", "anything",
    ]),
    topic: Words::new(&[
        "about", "regarding", "re", "for", "on", "concerning", "before", "after", "during", "at",
        "until", "till", "til",
    ]),
    want: Words::new(&["want", "wish", "need"]),
    passive: Words::new(&["texted", "txted", "messaged", "contacted", "bothered"]),
    remove: Words::new(&["remove", "delete", "drop", "erase", "unlist"]),
    take: Words::new(&["take", "get"]),
    my_thing: Words::new(&["number", "name", "phone", "info", "contact", "cell"]),
    list: Words::fuzzy(&[
        "list", "lists", "texts", "text", "messages", "system", "database", "contacts", "this",
        "it", "program", "sms", "texting", "messaging", "reminders", "subscription", "mailing",
        "thing",
    ]),
    unsubscribe: Words::fuzzy(&["unsubscribe", "unsub", "unsuscribe", "unsubcribe", "unsubscibe"]),
    es: Spanish {
        send_subj: Words::new(&["manden", "mandes", "mande", "envien", "envies", "envie"]),
        write_subj: Words::new(&[
            "escriban", "escribas", "escriba", "contacten", "contactes", "contacte", "textees",
            "texteen", "textee", "molesten", "molestes", "moleste", "mensajeen",
        ]),
        stop: Words::new(&[
            "deja", "dejen", "dejes", "deje", "dejar", "paren", "para", "pare", "parar", "basta",
            "detengan", "detenga", "deten",
        ]),
        infinitive_me: Words::new(&[
            "escribirme", "mandarme", "enviarme", "textearme", "contactarme", "molestarme",
            "mensajearme", "escribirnos", "mandarnos", "enviarnos",
        ]),
        infinitive: Words::new(&[
            "escribir", "mandar", "enviar", "recibir", "textear", "contactar",
        ]),
        want: Words::new(&["quiero", "deseo", "queremos", "necesito", "quisiera"]),
        messages: Words::new(&[
            "mensajes", "mensaje", "msjs", "msj", "mjs", "textos", "texto", "sms", "mensajitos",
            "suscripcion",
        ]),
        kinds: Words::new(&[
            "recordatorios", "recordatorio", "notificaciones", "alertas", "encuestas",
        ]),
        filler: Words::new(&[
            "mas", "los", "las", "estos", "estas", "sus", "tus", "de", "a", "el", "la", "mi",
            "ningun", "ninguno", "nada", "recibir", "seguir", "recibiendo", "por", "favor", "ya",
            "ustedes", "con", "tantos", "tantas", "esos", "esas",
        ]),
        take_me: Words::new(&[
            "sacame", "saquenme", "sacarme", "quitame", "quitenme", "quitarme", "borrame",
            "borrenme", "borrarme", "eliminame", "eliminenme", "eliminarme",
        ]),
        take: Words::new(&[
            "saquen", "quiten", "borren", "eliminen", "saca", "quita", "borra", "elimina",
        ]),
        list: Words::new(&["lista", "listas", "mensajes", "sistema", "programa", "suscripcion"]),
        bare: Words::new(&["baja", "alto", "parar", "cancelar", "detener"]),
        request_noun: Words::new(&[
            "paren", "pare", "detengan", "detenga", "basta", "cancelen", "cancela", "cancelar",
            "alto", "parar", "suspendan", "suspender",
        ]),
        keep: Words::new(&["sigan", "sigas", "siga"]),
        gerund: Words::new(&[
            "mandando", "enviando", "escribiendo", "mandandome", "escribiendome", "enviandome",
        ]),
        topic: Words::new(&["sobre", "acerca", "del", "para", "antes", "despues", "durante"]),
    },
});
