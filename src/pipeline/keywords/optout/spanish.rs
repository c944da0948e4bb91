//! The Spanish half of the opt-out grammar: "no me manden más mensajes",
//! "dejen de escribirme", "ya no quiero recibir mensajes", "quiero darme de
//! baja", "sáquenme de la lista", "paren los mensajes".

use super::lexicon::Lexicon;
use super::{After, OptOut, hit};

impl Lexicon {
    pub(super) fn spanish(&self, w: &[String]) -> Option<OptOut> {
        let es = &self.es;
        if w.len() == 1 && es.bare.has(&w[0]) {
            return Some(OptOut {
                spanish: true,
                scoped: false,
            });
        }
        (0..w.len()).find_map(|i| {
            self.no_me_manden(w, i)
                .or_else(|| self.dejen_de(w, i))
                .or_else(|| self.no_quiero(w, i))
                .or_else(|| self.de_baja(w, i))
                .or_else(|| self.sacame(w, i))
                .or_else(|| self.paren_los_mensajes(w, i))
        })
    }

    /// What follows a Spanish verb: the messages (past fillers), or
    /// nothing but fillers.
    fn es_after(&self, w: &[String], from: usize) -> After {
        let es = &self.es;
        for (j, x) in w.iter().enumerate().skip(from).take(6) {
            if es.messages.has(x) {
                return After::Messages(j, false);
            }
            if es.kinds.has(x) {
                return After::Messages(j, true);
            }
            if !es.filler.has(x) && x != "nunca" {
                return After::Other;
            }
        }
        if from + 6 < w.len() {
            After::Other
        } else {
            After::End
        }
    }

    /// no me manden (más) mensajes / no me escriban / no me sigan mandando.
    fn no_me_manden(&self, w: &[String], i: usize) -> Option<OptOut> {
        let es = &self.es;
        if w[i] != "no" || w.get(i + 1).is_none_or(|x| x != "me") {
            return None;
        }
        let v = i + 2;
        let verb = w.get(v)?;
        if es.write_subj.has(verb) {
            return hit(self, w, v, false, true);
        }
        if es.keep.has(verb) && w.get(v + 1).is_some_and(|x| es.gerund.has(x)) {
            return hit(self, w, v + 1, false, true);
        }
        if es.send_subj.has(verb) {
            return match self.es_after(w, v + 1) {
                After::Messages(t, kind) => hit(self, w, t, kind, true),
                After::End => hit(self, w, v, false, true),
                _ => None,
            };
        }
        None
    }

    /// dejen de escribirme / paren de mandarme mensajes / quiero dejar de
    /// recibir mensajes.
    fn dejen_de(&self, w: &[String], i: usize) -> Option<OptOut> {
        let es = &self.es;
        if !es.stop.has(&w[i]) || w.get(i + 1).is_none_or(|x| x != "de") {
            return None;
        }
        if i > 0 && w[i - 1] == "no" || (i > 1 && w[i - 2] == "no" && es.want.has(&w[i - 1])) {
            // "no dejen de escribirme", "no quiero dejar de recibir": the
            // opposite of a request.
            return None;
        }
        let v = i + 2;
        let verb = w.get(v)?;
        if es.infinitive_me.has(verb) {
            return hit(self, w, v, false, true);
        }
        let v = if verb == "me" { v + 1 } else { v };
        let verb = w.get(v)?;
        if es.infinitive.has(verb) {
            return match self.es_after(w, v + 1) {
                After::Messages(t, kind) => hit(self, w, t, kind, true),
                After::End if w[v - 1] == "me" => hit(self, w, v, false, true),
                _ => None,
            };
        }
        None
    }

    /// (ya) no quiero (recibir) (más) mensajes / no quiero que me escriban.
    fn no_quiero(&self, w: &[String], i: usize) -> Option<OptOut> {
        let es = &self.es;
        if w[i] != "no" || w.get(i + 1).is_none_or(|x| !es.want.has(x)) {
            return None;
        }
        let v = i + 2;
        if w.get(v).is_some_and(|x| x == "que") && w.get(v + 1).is_some_and(|x| x == "me") {
            let verb = w.get(v + 2)?;
            if es.write_subj.has(verb) || es.send_subj.has(verb) || es.keep.has(verb) {
                return hit(self, w, v + 2, false, true);
            }
            return None;
        }
        match self.es_after(w, v) {
            After::Messages(t, kind) => hit(self, w, t, kind, true),
            _ => None,
        }
    }

    /// quiero darme de baja / denme de baja / dar de baja.
    fn de_baja(&self, w: &[String], i: usize) -> Option<OptOut> {
        if w[i] != "baja" || i == 0 || w[i - 1] != "de" {
            return None;
        }
        if (i.saturating_sub(5)..i).any(|k| w[k] == "no") {
            return None;
        }
        hit(self, w, i, false, true)
    }

    /// sáquenme de la lista / borren mi número.
    fn sacame(&self, w: &[String], i: usize) -> Option<OptOut> {
        let es = &self.es;
        if i > 0 && w[i - 1] == "no" {
            return None;
        }
        if es.take_me.has(&w[i]) {
            let listed = (i + 1..w.len().min(i + 5)).find(|&k| es.list.has(&w[k]));
            return listed.and_then(|k| hit(self, w, k, false, true));
        }
        if es.take.has(&w[i])
            && w.get(i + 1).is_some_and(|x| x == "mi")
            && w.get(i + 2).is_some_and(|x| x == "numero")
        {
            return hit(self, w, i + 2, false, true);
        }
        None
    }

    /// paren los mensajes / basta de mensajes / cancelar la suscripción / no
    /// más mensajes.
    fn paren_los_mensajes(&self, w: &[String], i: usize) -> Option<OptOut> {
        let es = &self.es;
        let request = es.request_noun.has(&w[i]) && !(i > 0 && w[i - 1] == "no");
        let no_mas = w[i] == "no" && w.get(i + 1).is_some_and(|x| x == "mas");
        if !request && !no_mas {
            return None;
        }
        let from = if no_mas { i + 2 } else { i + 1 };
        match self.es_after(w, from) {
            After::Messages(t, kind) => hit(self, w, t, kind, true),
            _ => None,
        }
    }
}
