//! Opt-out sentences: "please stop texting me", "no more texts", "dejen de
//! escribirme" read as a revocation of consent (FCC: any reasonable means),
//! by a small grammar rather than a list of whole messages.
//!
//! A text is cut into clauses (at `.`, `,`, `!`, `?`, `;`, `:`), each
//! prepared as every matched text is ([`phrase_words`]: case, repeats,
//! text-speak such as `pls`, `dont`, `u`), accents dropped. A clause is an
//! opt-out when it holds, within a few words:
//!
//! - a **request** (stop, quit, cease, end, cancel) + a **texting verb**
//!   (texting, messaging, sending, contacting) + **me / us / these /
//!   messages** or nothing more: "stop texting me", "quit sending these",
//!   "can you stop messaging me";
//! - a request + **messages** ("stop the texts", "cancel my subscription")
//!   or + receiving them ("I want to stop getting these messages");
//! - **no more** + messages ("no more texts please");
//! - a **negated** texting verb + me ("don't text me anymore", "never
//!   message me again", "don't send me any more messages");
//! - a **negated want** + messages ("I don't want these messages anymore",
//!   "I don't want to be texted");
//! - **unsubscribe** / **opt out** as a request ("please unsubscribe me",
//!   "I want to opt out", "opt me out"), **take / remove me** off a list
//!   ("take me off your list", "remove my number");
//! - the Spanish forms: "no me manden más mensajes", "dejen de escribirme",
//!   "ya no quiero recibir mensajes", "quiero darme de baja", "no más
//!   mensajes", "sáquenme de la lista", "paren los mensajes".
//!
//! What keeps ordinary texts out: nothing matches without a texting verb or
//! a word for the messages ("I can't stop crying", "stop by after group?",
//! "I want to stop drinking", "cancel my appointment"); a negated request
//! is no request ("don't stop the check-ins", "no dejen de escribirme");
//! someone else's texting is not ours ("my ex won't stop texting me");
//! and the speaker's own texting is not ours either ("I need to stop
//! texting so much").
//!
//! A request that names a topic ("stop texting me about the dentist", "no
//! more reminders about group") is still an opt-out; [`OptOut::scoped`]
//! says so, for the confirmation to say it covers every text.

use std::collections::HashSet;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use self::lexicon::{LEXICON, Lexicon};
use crate::domain::normalize::phrase_words;

mod lexicon;
mod spanish;

/// An opt-out sentence found in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OptOut {
    /// Written in Spanish (the confirmation to an unknown number is then
    /// Spanish).
    pub(crate) spanish: bool,
    /// The request named one kind of message or topic ("about the
    /// dentist", "no more reminders"): it still revokes everything.
    pub(crate) scoped: bool,
}

/// The opt-out sentence in `folded` text (see [`crate::domain::normalize`]),
/// if there is one.
pub(crate) fn read(folded: &str) -> Option<OptOut> {
    let lex = &*LEXICON;
    folded
        .split(['.', ',', '!', '?', ';', ':', '\u{2026}', '(', ')', '"'])
        .map(clause_words)
        .filter(|w| !w.is_empty())
        .find_map(|w| lex.english(&w).or_else(|| lex.spanish(&w)))
}

/// A clause's words for matching: prepared as phrases are, accents dropped,
/// `check ins` made one word.
fn clause_words(clause: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in phrase_words(clause) {
        let w = deaccent(&w);
        if w == "ins"
            && let Some(last) = out.last_mut()
            && last == "check"
        {
            last.push_str("ins");
            continue;
        }
        out.push(w);
    }
    out
}

fn deaccent(w: &str) -> String {
    w.nfd().filter(|c| !is_combining_mark(*c)).collect()
}

/// One word prepared as a clause's words are.
fn prepared(w: &str) -> String {
    deaccent(&phrase_words(w).concat())
}

/// A set of prepared words; a few classes also accept one slip of the
/// thumb in a long word (`mesaging`, `unsubscibe`).
struct Words {
    exact: HashSet<String>,
    fuzzy: bool,
}

impl Words {
    fn new(words: &[&str]) -> Words {
        Words {
            exact: words.iter().map(|w| prepared(w)).collect(),
            fuzzy: false,
        }
    }

    fn fuzzy(words: &[&str]) -> Words {
        Words {
            fuzzy: true,
            ..Words::new(words)
        }
    }

    fn has(&self, w: &str) -> bool {
        self.exact.contains(w)
            || (self.fuzzy
                && w.chars().count() >= 7
                && self.exact.iter().any(|e| {
                    e.chars().count() >= 7 && !w.starts_with(e.as_str()) && one_edit(e, w)
                }))
    }
}

/// `a` and `b` differ by one insertion, deletion, substitution or swap of
/// neighbours.
fn one_edit(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if long.len() - short.len() > 1 {
        return false;
    }
    let head = short
        .iter()
        .zip(long.iter())
        .take_while(|(x, y)| x == y)
        .count();
    if short.len() == long.len() {
        let swapped = head + 1 < a.len()
            && a[head] == b[head + 1]
            && a[head + 1] == b[head]
            && a[head + 2..] == b[head + 2..];
        swapped || a[head + 1..] == b[head + 1..]
    } else {
        short[head..] == long[head + 1..]
    }
}

/// What follows a verb or a request, read past filler words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// `me`, `us` at this index.
    Me(usize),
    /// A word for the messages; `true` for one kind (reminders, surveys).
    Messages(usize, bool),
    /// `these`, `them` with nothing after them but closing words.
    These,
    /// Nothing but closing words.
    End,
    Other,
}

/// A clause's opt-out, if `at` matched, with its scope read from the words
/// after `target`.
fn hit(lex: &Lexicon, w: &[String], target: usize, kind: bool, spanish: bool) -> Option<OptOut> {
    let topic = if spanish { &lex.es.topic } else { &lex.topic };
    let kinds = if spanish { &lex.es.kinds } else { &lex.kinds };
    let scoped = kind
        || w.iter()
            .skip(target + 1)
            .any(|x| topic.has(x) || kinds.has(x));
    Some(OptOut { spanish, scoped })
}

impl Lexicon {
    fn english(&self, w: &[String]) -> Option<OptOut> {
        // "Thanks. Stop." — a sentence that is the word alone.
        let bare = |x: &String| matches!(x.as_str(), "stop" | "stopal");
        if w.iter().any(bare) && w.iter().all(|x| bare(x) || self.closing.has(x)) {
            return hit(self, w, w.len() - 1, false, false);
        }
        (0..w.len()).find_map(|i| {
            self.request_verb(w, i)
                .or_else(|| self.no_more(w, i))
                .or_else(|| self.dont_send(w, i))
                .or_else(|| self.dont_want(w, i))
                .or_else(|| self.unsubscribe(w, i))
                .or_else(|| self.take_me_off(w, i))
        })
    }

    /// What follows `from`, past up to five `fillers`.
    fn after(&self, w: &[String], from: usize, fillers: &Words) -> After {
        let mut these = false;
        for (j, x) in w.iter().enumerate().skip(from).take(6) {
            let this_number =
                j > 0 && self.my_thing.has(x) && matches!(w[j - 1].as_str(), "this" | "my" | "our");
            if self.me.has(x) || this_number {
                return After::Me(j);
            }
            if self.messages.has(x) {
                return After::Messages(j, false);
            }
            if self.kinds.has(x) {
                return After::Messages(j, true);
            }
            if self.these.has(x) {
                these = true;
            } else if !fillers.has(x) {
                return After::Other;
            }
        }
        if from + 6 < w.len() {
            After::Other
        } else if these {
            After::These
        } else {
            After::End
        }
    }

    /// A negation or someone else just before `i` (within `window` words).
    fn blocked(&self, w: &[String], i: usize, window: usize) -> bool {
        let start = i.saturating_sub(window);
        (start..i).any(|k| {
            self.blocker.has(&w[k]) || (w[k] == "not" && k > 0 && self.not_before.has(&w[k - 1]))
        })
    }

    /// The speaker talks of their own texting: `i` (or `we`) shortly
    /// before, without a `you` between.
    fn own_act(&self, w: &[String], i: usize) -> bool {
        for k in (i.saturating_sub(5)..i).rev() {
            match w[k].as_str() {
                "you" | "yal" | "guys" | "ya" => return false,
                "i" | "we" => return true,
                _ => {}
            }
        }
        false
    }

    /// stop/quit/cancel + texting me, + the messages, + getting them.
    fn request_verb(&self, w: &[String], i: usize) -> Option<OptOut> {
        if !self.request.has(&w[i]) || self.blocked(w, i, 4) {
            return None;
        }
        // "the end of the messages": a noun, not a request.
        if i > 0 && matches!(w[i - 1].as_str(), "the" | "a" | "an" | "that" | "this") {
            return None;
        }
        let mut j = i + 1;
        while j < w.len() && j < i + 4 && self.filler.has(&w[j]) && !self.messages.has(&w[j]) {
            j += 1;
        }
        let next = w.get(j)?;
        if self.sending.has(next) {
            if self.own_act(w, i) {
                return None;
            }
            return self.sent_to_me(w, j);
        }
        if self.receiving.has(next) {
            return match self.after(w, j + 1, &self.filler) {
                After::Messages(t, kind) => hit(self, w, t, kind, false),
                After::These => hit(self, w, j, false, false),
                _ => None,
            };
        }
        match self.after(w, j, &self.filler) {
            After::Messages(t, kind) => hit(self, w, t, kind, false),
            _ => None,
        }
    }

    /// After a texting verb at `v`: me, the messages, these, or nothing.
    fn sent_to_me(&self, w: &[String], v: usize) -> Option<OptOut> {
        let sending = w[v] == "sending" || w[v] == "send";
        match self.after(w, v + 1, &self.filler) {
            After::Me(t) if sending => match self.after(w, t + 1, &self.filler) {
                After::Messages(t, kind) => hit(self, w, t, kind, false),
                After::These | After::End => hit(self, w, t, false, false),
                _ if w
                    .get(t + 1)
                    .is_some_and(|x| x == "anything" || x == "nothing") =>
                {
                    hit(self, w, t + 1, false, false)
                }
                _ => None,
            },
            After::Me(t) => match w.get(t + 1) {
                Some(x) if self.after_me_blocker.has(x) => None,
                _ => hit(self, w, t, false, false),
            },
            After::Messages(t, kind) => hit(self, w, t, kind, false),
            After::These | After::End => hit(self, w, v, false, false),
            After::Other => None,
        }
    }

    /// no more texts / no more texting / no more of these.
    fn no_more(&self, w: &[String], i: usize) -> Option<OptOut> {
        if w[i] != "no" || w.get(i + 1).is_none_or(|x| x != "more") {
            return None;
        }
        if i > 0 && self.stated.has(&w[i - 1]) {
            return None;
        }
        if w.iter().skip(i + 2).any(|x| x == "left") {
            return None;
        }
        if w.get(i + 2).is_some_and(|x| self.sending.has(x)) {
            return hit(self, w, i + 2, false, false);
        }
        match self.after(w, i + 2, &self.filler) {
            After::Messages(t, kind) => hit(self, w, t, kind, false),
            After::These => hit(self, w, i + 1, false, false),
            _ => None,
        }
    }

    /// don't text me / never message me again / don't send me messages.
    fn dont_send(&self, w: &[String], i: usize) -> Option<OptOut> {
        let mut v = match w[i].as_str() {
            "do" if w.get(i + 1).is_some_and(|x| x == "not") => i + 2,
            "never" => i + 1,
            _ => return None,
        };
        if i > 0 && (self.subject.has(&w[i - 1]) || self.blocker.has(&w[i - 1])) {
            return None;
        }
        while w
            .get(v)
            .is_some_and(|x| matches!(x.as_str(), "ever" | "even" | "please" | "again" | "just"))
        {
            v += 1;
        }
        let verb = w.get(v)?;
        if !self.send.has(verb) && !self.sending.has(verb) {
            return None;
        }
        self.sent_to_me(w, v)
    }

    /// I don't want these messages / I no longer want texts / I don't want
    /// to be texted.
    fn dont_want(&self, w: &[String], i: usize) -> Option<OptOut> {
        if !self.want.has(&w[i]) || i == 0 {
            return None;
        }
        let negated = match w[i - 1].as_str() {
            "not" => i >= 2 && matches!(w[i - 2].as_str(), "do" | "does"),
            "longer" => i >= 2 && w[i - 2] == "no",
            "never" => true,
            _ => false,
        };
        if !negated {
            return None;
        }
        let lead = i.saturating_sub(3);
        if (lead..i)
            .any(|k| self.blocker.has(&w[k]) || matches!(w[k].as_str(), "you" | "u" | "they"))
        {
            return None;
        }
        let passive =
            (i + 1..w.len().min(i + 5)).find(|&k| self.passive.has(&w[k]) && w[k - 1] == "be");
        if let Some(k) = passive {
            return hit(self, w, k, false, false);
        }
        match self.after(w, i + 1, &self.want_filler) {
            After::Messages(t, kind) => hit(self, w, t, kind, false),
            _ => None,
        }
    }

    /// unsubscribe (me) / opt (me) out, as a request.
    fn unsubscribe(&self, w: &[String], i: usize) -> Option<OptOut> {
        let end = if self.unsubscribe.has(&w[i]) || w[i] == "optout" {
            i
        } else if w[i] == "opt" && w.get(i + 1).is_some_and(|x| x == "out") {
            i + 1
        } else if w[i] == "opt"
            && w.get(i + 1).is_some_and(|x| self.me.has(x))
            && w.get(i + 2).is_some_and(|x| x == "out")
        {
            i + 2
        } else {
            return None;
        };
        if self.blocked(w, i, 3) {
            return None;
        }
        hit(self, w, end, false, false)
    }

    /// take me off your list / remove me / delete my number / lose my number.
    fn take_me_off(&self, w: &[String], i: usize) -> Option<OptOut> {
        let verb = w[i].as_str();
        let lose = verb == "lose";
        if !(lose || self.remove.has(verb) || self.take.has(verb)) || self.blocked(w, i, 3) {
            return None;
        }
        let object_end = match (w.get(i + 1), w.get(i + 2)) {
            (Some(a), _) if self.me.has(a) && !lose => i + 2,
            (Some(a), Some(b)) if (a == "my" || a == "our") && self.my_thing.has(b) => i + 3,
            _ => return None,
        };
        if lose {
            return hit(self, w, object_end - 1, false, false);
        }
        let closing = w[object_end.min(w.len())..]
            .iter()
            .all(|x| self.filler.has(x));
        if closing && self.remove.has(verb) {
            return hit(self, w, object_end - 1, false, false);
        }
        let from = w
            .get(object_end)
            .is_some_and(|x| matches!(x.as_str(), "from" | "of"));
        if from && object_end + 1 == w.len() {
            return hit(self, w, object_end, false, false);
        }
        let listed = (object_end + 1..w.len().min(object_end + 5)).find(|&k| self.list.has(&w[k]));
        match listed {
            Some(k) if from => hit(self, w, k, self.kinds.has(&w[k]), false),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
