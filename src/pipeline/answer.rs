//! Survey answers: reading a reply as the answer a question expects, and
//! scoring instruments.
//!
//! [`parse_answer`] reads numbers, choices by number or by word, yes/no in
//! common forms, and free text. [`score`] sums a survey's scored items with reverse items and
//! bands; [`item_alerts`] lists the per-item alerts an answer fires.

use std::collections::BTreeMap;

use crate::domain::normalize::{Normalized, phrase_words};
use crate::rules::{Expect, ItemAlert, Survey};

/// A valid answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Number(f64),
    /// The option's 0-based index and its label as the rules write it.
    Choice {
        index: usize,
        label: String,
    },
    YesNo(bool),
    Text(String),
}

impl Answer {
    /// As stored and as scripts see it: an integer number as an integer,
    /// a choice as its label, yes/no as a boolean, text as a string.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Answer::Number(n) => number_json(*n),
            Answer::Choice { label, .. } => serde_json::Value::String(label.clone()),
            Answer::YesNo(b) => serde_json::Value::Bool(*b),
            Answer::Text(t) => serde_json::Value::String(t.clone()),
        }
    }
}

/// Why a reply is not a valid answer, in words fit for `hearth explain`
/// ("not a number", "7 is above the maximum 5").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotAnAnswer(pub String);

/// Reads `text` as an answer to a question expecting `expect`.
pub(crate) fn parse_answer(expect: &Expect, text: &Normalized) -> Result<Answer, NotAnAnswer> {
    match expect {
        Expect::Number { min, max, integer } => {
            let n = one_number(text)?;
            if *integer && n.fract() != 0.0 {
                return Err(not(format!("{} is not a whole number", show(n))));
            }
            if let Some(lo) = min
                && n < *lo
            {
                return Err(not(format!(
                    "{} is below the minimum {}",
                    show(n),
                    show(*lo)
                )));
            }
            if let Some(hi) = max
                && n > *hi
            {
                return Err(not(format!(
                    "{} is above the maximum {}",
                    show(n),
                    show(*hi)
                )));
            }
            Ok(Answer::Number(n))
        }
        Expect::Choice(options) => choice(options, text),
        Expect::YesNo => yes_no(text),
        Expect::FreeText => {
            let t = text.original.trim();
            if t.chars().any(char::is_alphanumeric) {
                Ok(Answer::Text(t.to_owned()))
            } else {
                Err(not("no letters or digits"))
            }
        }
    }
}

fn not(reason: impl Into<String>) -> NotAnAnswer {
    NotAnAnswer(reason.into())
}

/// A number as people write it: `4`, not `4.0`.
fn show(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A number as JSON: an integer when it is one.
fn number_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// The words `zero` to `ten`, prepared as a text's words are.
fn number_words() -> [(String, f64); 11] {
    let names = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    std::array::from_fn(|i| (phrase_words(names[i]).concat(), i as f64))
}

/// Words after which a number word is a pronoun, not an answer (as
/// normalised: repeats collapsed).
const NOT_BEFORE_A_NUMBER: &[&str] = &[
    "no", "any", "some", "every", "the", "this", "that", "which", "each", "another", "a",
];

/// The numbers written in digits in `folded`: an optional sign (at the
/// start or after a space), digits, an optional decimal part. Digits
/// inside a word (`su1c1de`, `4th`) are not numbers.
fn digit_numbers(folded: &str) -> Vec<f64> {
    let chars: Vec<char> = folded.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut start = i;
        if start > 0 && chars[start - 1].is_alphabetic() {
            // Part of a word: skip the whole run.
            while i < chars.len() && chars[i].is_alphanumeric() {
                i += 1;
            }
            continue;
        }
        let negative = start > 0
            && matches!(chars[start - 1], '-' | '+')
            && (start == 1 || chars[start - 2].is_whitespace());
        if negative {
            start -= 1;
        }
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if i + 1 < chars.len() && matches!(chars[i], '.' | ',') && chars[i + 1].is_ascii_digit() {
            let decimals = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            // `6,5` is a decimal comma; `1,000` is not a decimal.
            if chars[i] == '.' || decimals <= 2 {
                i += 1 + decimals;
            }
        }
        if i < chars.len() && chars[i].is_alphabetic() {
            // `4th`, `2nd`, `3am`: a word, not an answer.
            while i < chars.len() && chars[i].is_alphanumeric() {
                i += 1;
            }
            continue;
        }
        let token: String = chars[start..i]
            .iter()
            .map(|c| if *c == ',' { '.' } else { *c })
            .collect();
        if let Ok(n) = token.parse::<f64>()
            && n.is_finite()
        {
            out.push(n);
        }
    }
    out
}

/// The one number in a reply, in digits or as a word from zero to ten;
/// `7/10` and `7 out of 10` read as 7.
fn one_number(text: &Normalized) -> Result<f64, NotAnAnswer> {
    let mut found = digit_numbers(&text.folded);
    let words = number_words();
    for (i, w) in text.words.iter().enumerate() {
        let Some((_, n)) = words.iter().find(|(name, _)| name == w) else {
            continue;
        };
        // "no one", "the one", "one of those days": not a count.
        let before = i.checked_sub(1).and_then(|j| text.words.get(j));
        let after = text.words.get(i + 1);
        if before.is_some_and(|b| NOT_BEFORE_A_NUMBER.contains(&b.as_str()))
            || after.is_some_and(|a| a == "of")
        {
            continue;
        }
        found.push(*n);
    }
    match found.as_slice() {
        [] => Err(not("not a number")),
        [n] => Ok(*n),
        [n, _] if out_of(&text.folded) => Ok(*n),
        more => {
            let list: Vec<String> = more.iter().take(4).map(|n| show(*n)).collect();
            Err(not(format!(
                "more than one number ({}); expected one",
                list.join(", ")
            )))
        }
    }
}

/// `7/10`, `7 out of 10`, `7 of 10`.
fn out_of(folded: &str) -> bool {
    let squeezed: String = folded.chars().filter(|c| !c.is_whitespace()).collect();
    let between: String = squeezed
        .trim_matches(|c: char| !c.is_ascii_digit())
        .chars()
        .skip_while(char::is_ascii_digit)
        .take_while(|c| !c.is_ascii_digit())
        .collect();
    matches!(between.as_str(), "/" | "outof" | "of")
}

/// By the option's words, by its 1-based number, or by a first word no
/// other option shares.
fn choice(options: &[String], text: &Normalized) -> Result<Answer, NotAnAnswer> {
    let pick = |index: usize| Answer::Choice {
        index,
        label: options[index].clone(),
    };
    let reply = text.words.join(" ");
    let option_words: Vec<Vec<String>> = options.iter().map(|o| phrase_words(o)).collect();
    if let Some(i) = option_words
        .iter()
        .position(|w| !w.is_empty() && w.join(" ") == reply)
    {
        return Ok(pick(i));
    }
    if let [word] = text.words.as_slice() {
        let hits: Vec<usize> = option_words
            .iter()
            .enumerate()
            .filter(|(_, w)| w.first() == Some(word))
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [i] => return Ok(pick(*i)),
            [] => {}
            many => {
                let names: Vec<&str> = many.iter().map(|i| options[*i].as_str()).collect();
                return Err(not(format!(
                    "could be more than one choice ({})",
                    names.join(", ")
                )));
            }
        }
    }
    if let Ok(n) = one_number(text) {
        if n.fract() == 0.0 && n >= 1.0 && n <= options.len() as f64 {
            return Ok(pick(n as usize - 1));
        }
        return Err(not(format!(
            "{} is not one of the choices 1 to {}",
            show(n),
            options.len()
        )));
    }
    Err(not(format!(
        "not one of the choices ({})",
        options.join(", ")
    )))
}

const YES: &[&str] = &[
    "yes",
    "y",
    "yeah",
    "yep",
    "yup",
    "yes please",
    "sure",
    "ok",
    "okay",
    "correct",
    "si",
    "sí",
];
const NO: &[&str] = &["no", "n", "nope", "nah", "not really", "no thanks"];

fn yes_no(text: &Normalized) -> Result<Answer, NotAnAnswer> {
    let matches = |list: &[&str]| list.iter().any(|p| phrase_words(p) == text.words);
    if matches(YES) {
        Ok(Answer::YesNo(true))
    } else if matches(NO) {
        Ok(Answer::YesNo(false))
    } else {
        Err(not("not a yes or no"))
    }
}

/// A survey's score: the total of its scored items and the band it falls in.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Scored {
    pub total: f64,
    pub band: Option<String>,
    /// Every scored item was answered.
    pub complete: bool,
}

impl Scored {
    /// `{"total": 14, "band": "moderate", "complete": true}` (an integer
    /// total as an integer).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "total": number_json(self.total),
            "band": self.band,
            "complete": self.complete,
        })
    }
}

/// Scores `answers` (by question id, as stored JSON) against the survey's
/// `score:`; `None` when it has none.
pub fn score(survey: &Survey, answers: &BTreeMap<String, serde_json::Value>) -> Option<Scored> {
    let scoring = survey.score.as_ref()?;
    let mut total = 0.0;
    let mut complete = true;
    for item in &scoring.items {
        let value = survey
            .questions
            .iter()
            .find(|q| &q.id == item)
            .zip(answers.get(item))
            .and_then(|(q, a)| item_value(&q.expect, a, scoring.reverse.contains(item)));
        match value {
            Some(v) => total += v,
            None => complete = false,
        }
    }
    let band = if complete {
        scoring
            .bands
            .iter()
            .rev()
            .find(|b| total >= b.from)
            .map(|b| b.label.clone())
    } else {
        None
    };
    Some(Scored {
        total,
        band,
        complete,
    })
}

/// An answer's value for scoring and item alerts: a number as itself, a
/// choice as its 0-based index; reversed as `min + max - value` (a
/// choice's range is 0 to the last index).
fn item_value(expect: &Expect, answer: &serde_json::Value, reverse: bool) -> Option<f64> {
    let (value, lo, hi) = match expect {
        Expect::Number { min, max, .. } => (answer.as_f64()?, *min, *max),
        Expect::Choice(options) => {
            let label = answer.as_str()?;
            let index = options
                .iter()
                .position(|o| o == label)
                .or_else(|| options.iter().position(|o| o.eq_ignore_ascii_case(label)))?;
            (
                index as f64,
                Some(0.0),
                Some(options.len().saturating_sub(1) as f64),
            )
        }
        Expect::YesNo | Expect::FreeText => return None,
    };
    if !reverse {
        return Some(value);
    }
    Some(lo? + hi? - value)
}

/// The survey's per-item alerts that the answer to `question` fires, with
/// the evidence text for each ("item 9 — Thoughts …: 'more than half the
/// days' (answer 2 to phq9_9, above 0)", or "answer 2 to phq9_9, above
/// 0" for a question without `item:`) and what a page quotes (the item
/// and the answer as they read; `None` without `item:`).
pub fn item_alerts<'s>(
    survey: &'s Survey,
    question: &str,
    answer: &serde_json::Value,
) -> Vec<(&'s ItemAlert, String, Option<String>)> {
    let Some(q) = survey.questions.iter().find(|q| q.id == question) else {
        return Vec::new();
    };
    let Some(value) = item_value(&q.expect, answer, false) else {
        return Vec::new();
    };
    survey
        .item_alerts
        .iter()
        .filter(|a| a.question == question && value > a.above)
        .map(|a| {
            let given = match answer {
                serde_json::Value::String(label) => format!("\"{label}\" ({})", show(value)),
                _ => show(value),
            };
            let plain = format!("answer {given} to {question}, above {}", show(a.above));
            let label = answer.as_str().map_or_else(|| show(value), str::to_owned);
            let quote = q.quote(value, &label);
            let evidence = match &quote {
                Some(quote) => format!("{quote} ({plain})"),
                None => plain,
            };
            (a, evidence, quote)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::Duration;
    use crate::domain::normalize::normalize;
    use crate::rules::{Band, Question, Scoring, Severity};

    fn parse(expect: &Expect, text: &str) -> Result<Answer, NotAnAnswer> {
        parse_answer(expect, &normalize(text))
    }

    fn reason(expect: &Expect, text: &str) -> String {
        match parse(expect, text) {
            Err(NotAnAnswer(r)) => r,
            Ok(a) => panic!("{text:?} read as {a:?}"),
        }
    }

    fn scale(min: f64, max: f64) -> Expect {
        Expect::Number {
            min: Some(min),
            max: Some(max),
            integer: true,
        }
    }

    #[test]
    fn a_number_is_read_with_words_around_it() {
        let e = scale(1.0, 10.0);
        for (text, n) in [
            ("4", 4.0),
            ("4!", 4.0),
            ("  4 ", 4.0),
            ("I'd say 4", 4.0),
            ("a 7 today", 7.0),
            ("７", 7.0),
            ("seven", 7.0),
            ("Sevennn!", 7.0),
            ("three I guess", 3.0),
            ("ten", 10.0),
            ("7/10", 7.0),
            ("7 out of 10", 7.0),
            ("2", 2.0),
        ] {
            assert_eq!(parse(&e, text), Ok(Answer::Number(n)), "{text:?}");
        }
        let free = Expect::Number {
            min: None,
            max: None,
            integer: false,
        };
        assert_eq!(parse(&free, "-3"), Ok(Answer::Number(-3.0)));
        assert_eq!(parse(&free, "slept 6.5 hours"), Ok(Answer::Number(6.5)));
        assert_eq!(parse(&free, "6,5"), Ok(Answer::Number(6.5)));
        assert_ne!(parse(&free, "1,000"), Ok(Answer::Number(1.0)));
        assert_eq!(parse(&free, "zero"), Ok(Answer::Number(0.0)));
    }

    #[test]
    fn a_number_out_of_range_or_not_whole_is_refused_with_the_reason() {
        let e = scale(1.0, 5.0);
        assert_eq!(reason(&e, "7"), "7 is above the maximum 5");
        assert_eq!(reason(&e, "0"), "0 is below the minimum 1");
        assert_eq!(reason(&e, "4.5"), "4.5 is not a whole number");
        assert_eq!(reason(&e, "banana"), "not a number");
        assert_eq!(reason(&e, "4th"), "not a number");
        assert_eq!(
            reason(&e, "4 or 5"),
            "more than one number (4, 5); expected one"
        );
        assert_eq!(
            reason(&e, "two or three"),
            "more than one number (2, 3); expected one"
        );
        assert_eq!(reason(&e, ""), "not a number");
    }

    #[test]
    fn one_as_a_pronoun_is_not_a_number() {
        let e = scale(1.0, 10.0);
        for text in [
            "no one cares",
            "the one I wanted",
            "one of those days",
            "any one",
        ] {
            assert_eq!(reason(&e, text), "not a number", "{text:?}");
        }
        assert_eq!(parse(&e, "one"), Ok(Answer::Number(1.0)));
        assert_eq!(parse(&e, "just one today"), Ok(Answer::Number(1.0)));
    }

    #[test]
    fn a_choice_is_read_by_words_number_or_a_first_word_only_it_has() {
        let e = Expect::Choice(vec!["Very".into(), "Somewhat".into(), "Not really".into()]);
        let label = |text: &str| match parse(&e, text) {
            Ok(Answer::Choice { index, label }) => (index, label),
            other => panic!("{text:?} read as {other:?}"),
        };
        assert_eq!(label("not really"), (2, "Not really".into()));
        assert_eq!(label("NOT REALLY!!"), (2, "Not really".into()));
        assert_eq!(label("  not   really. "), (2, "Not really".into()));
        assert_eq!(label("very"), (0, "Very".into()));
        assert_eq!(label("somewhat"), (1, "Somewhat".into()));
        assert_eq!(label("not"), (2, "Not really".into()));
        assert_eq!(label("2"), (1, "Somewhat".into()));
        assert_eq!(label("3"), (2, "Not really".into()));
        assert_eq!(reason(&e, "4"), "4 is not one of the choices 1 to 3");
        assert_eq!(
            reason(&e, "banana"),
            "not one of the choices (Very, Somewhat, Not really)"
        );
        assert_eq!(
            parse(&e, "Very")
                .map(|a| a.to_json())
                .expect("a valid choice"),
            json!("Very")
        );
    }

    #[test]
    fn a_first_word_two_choices_share_is_not_an_answer() {
        let e = Expect::Choice(vec!["Not at all".into(), "Not really".into(), "Yes".into()]);
        assert_eq!(
            reason(&e, "not"),
            "could be more than one choice (Not at all, Not really)"
        );
        assert!(matches!(
            parse(&e, "not at all"),
            Ok(Answer::Choice { index: 0, .. })
        ));
    }

    #[test]
    fn yes_and_no_are_read_in_their_common_forms_and_nothing_else() {
        for text in [
            "yes",
            "Y",
            "yeah",
            "Yep!",
            "yup",
            "yes please",
            "sure",
            "OK",
            "okay",
            "Correct.",
            "si",
            "Sí",
            "YESSS",
        ] {
            assert_eq!(
                parse(&Expect::YesNo, text),
                Ok(Answer::YesNo(true)),
                "{text:?}"
            );
        }
        for text in ["no", "N", "nope", "nah", "not really", "No thanks!", "nooo"] {
            assert_eq!(
                parse(&Expect::YesNo, text),
                Ok(Answer::YesNo(false)),
                "{text:?}"
            );
        }
        for text in ["maybe", "yes and no", "banana", "", "4", "no way jose"] {
            assert_eq!(reason(&Expect::YesNo, text), "not a yes or no", "{text:?}");
        }
        assert_eq!(Answer::YesNo(true).to_json(), json!(true));
    }

    #[test]
    fn free_text_needs_a_letter_or_digit_and_keeps_the_original() {
        assert_eq!(
            parse(&Expect::FreeText, "  Slept badly, Tom's fault "),
            Ok(Answer::Text("Slept badly, Tom's fault".into()))
        );
        assert_eq!(parse(&Expect::FreeText, "5"), Ok(Answer::Text("5".into())));
        assert_eq!(reason(&Expect::FreeText, " ?! "), "no letters or digits");
        assert_eq!(reason(&Expect::FreeText, ""), "no letters or digits");
    }

    #[test]
    fn numbers_are_stored_as_integers_when_whole() {
        assert_eq!(Answer::Number(4.0).to_json(), json!(4));
        assert_eq!(Answer::Number(6.5).to_json(), json!(6.5));
        assert_eq!(Answer::Text("hi".into()).to_json(), json!("hi"));
    }

    #[test]
    fn no_reply_makes_answer_parsing_panic() {
        let expects = [
            scale(1.0, 10.0),
            Expect::Number {
                min: None,
                max: None,
                integer: false,
            },
            Expect::Choice(vec!["Very".into(), "Somewhat".into(), "Not really".into()]),
            Expect::Choice(vec!["1".into(), "2".into()]),
            Expect::YesNo,
            Expect::FreeText,
        ];
        let alphabet: Vec<char> = "aenorstvy 0123456789-+.,/!?'’ＳＴé\u{301}ß\u{200b}\t\n٣१"
            .chars()
            .collect();
        let mut rng = crate::testing::Rng::new(0x9e37_79b9_7f4a_7c15);
        let mut next = || rng.next();
        for _ in 0..20_000 {
            let len = (next() % 30) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let n = normalize(&text);
            for e in &expects {
                if let Ok(a) = parse_answer(e, &n) {
                    // Whatever is accepted can be stored.
                    assert!(!a.to_json().is_null(), "{text:?} {e:?}");
                }
            }
        }
    }

    fn phq9() -> Survey {
        let ids: Vec<String> = (1..=9).map(|i| format!("phq9_{i}")).collect();
        Survey {
            id: "phq9".into(),
            questions: ids
                .iter()
                .map(|id| Question {
                    id: id.clone(),
                    ask: format!("survey/phq9/{id}"),
                    expect: scale(0.0, 3.0),
                    item: None,
                    labels: Vec::new(),
                })
                .collect(),
            reprompt: None,
            max_reprompts: 1,
            expires_after: Duration::from_secs(86_400),
            thanks: None,
            remind_after: None,
            score: Some(Scoring {
                items: ids,
                reverse: Vec::new(),
                bands: [
                    (0.0, "minimal"),
                    (5.0, "mild"),
                    (10.0, "moderate"),
                    (15.0, "moderately severe"),
                    (20.0, "severe"),
                ]
                .into_iter()
                .map(|(from, label)| Band {
                    from,
                    label: label.into(),
                })
                .collect(),
            }),
            item_alerts: vec![ItemAlert {
                id: "phq9-item9".into(),
                question: "phq9_9".into(),
                above: 0.0,
                severity: Severity::Critical,
                reply: Some("phq9-item9-followup".into()),
                escalate: Some("crisis".into()),
                realert: None,
            }],
        }
    }

    fn all(value: i64) -> BTreeMap<String, serde_json::Value> {
        (1..=9)
            .map(|i| (format!("phq9_{i}"), json!(value)))
            .collect()
    }

    #[test]
    fn phq9_totals_fall_in_their_published_bands() {
        let s = phq9();
        let scored = |answers| score(&s, &answers).expect("phq9 is scored");
        assert_eq!(
            scored(all(1)),
            Scored {
                total: 9.0,
                band: Some("mild".into()),
                complete: true
            }
        );
        assert_eq!(scored(all(3)).band.as_deref(), Some("severe"));
        assert_eq!(scored(all(3)).total, 27.0);
        assert_eq!(scored(all(0)).band.as_deref(), Some("minimal"));
        let mut a = all(1);
        a.insert("phq9_1".into(), json!(2));
        a.insert("phq9_2".into(), json!(3));
        assert_eq!(scored(a.clone()).total, 12.0);
        assert_eq!(scored(a).band.as_deref(), Some("moderate"));
        let mut a = all(2);
        a.insert("phq9_1".into(), json!(1));
        assert_eq!(scored(a).band.as_deref(), Some("moderately severe"));
        assert_eq!(
            scored(all(2)).to_json(),
            json!({"total": 18, "band": "moderately severe", "complete": true})
        );
    }

    #[test]
    fn a_missing_item_leaves_the_score_incomplete_and_unbanded() {
        let s = phq9();
        let mut a = all(3);
        a.remove("phq9_4");
        let scored = score(&s, &a).expect("phq9 is scored");
        assert_eq!(scored.total, 24.0);
        assert!(!scored.complete);
        assert_eq!(scored.band, None);
        let mut unscored = phq9();
        unscored.score = None;
        assert_eq!(score(&unscored, &all(1)), None);
    }

    #[test]
    fn reverse_items_count_as_min_plus_max_minus_the_answer() {
        let mut s = phq9();
        let scoring = s.score.as_mut().expect("scored");
        scoring.reverse = vec!["phq9_1".into(), "phq9_2".into()];
        let mut a = all(0);
        a.insert("phq9_1".into(), json!(3));
        a.insert("phq9_2".into(), json!(1));
        // 0 + (0 + 3 - 3) + (0 + 3 - 1) = 2
        assert_eq!(score(&s, &a).map(|x| x.total), Some(2.0));
        // A reversed choice counts from the last option back.
        s.questions[0].expect = Expect::Choice(vec!["a".into(), "b".into(), "c".into()]);
        a.insert("phq9_1".into(), json!("a"));
        assert_eq!(score(&s, &a).map(|x| x.total), Some(4.0));
    }

    #[test]
    fn a_choice_scores_as_its_zero_based_index() {
        let mut s = phq9();
        s.questions[0].expect = Expect::Choice(vec![
            "Not at all".into(),
            "Several days".into(),
            "More than half the days".into(),
            "Nearly every day".into(),
        ]);
        let mut a = all(0);
        a.insert("phq9_1".into(), json!("More than half the days"));
        assert_eq!(score(&s, &a).map(|x| x.total), Some(2.0));
    }

    #[test]
    fn item_9_above_zero_fires_its_alert_and_zero_does_not() {
        let s = phq9();
        for v in 1..=3 {
            let fired = item_alerts(&s, "phq9_9", &json!(v));
            assert_eq!(fired.len(), 1, "{v}");
            assert_eq!(fired[0].0.id, "phq9-item9");
            assert_eq!(fired[0].1, format!("answer {v} to phq9_9, above 0"));
        }
        assert!(item_alerts(&s, "phq9_9", &json!(0)).is_empty());
        assert!(item_alerts(&s, "phq9_8", &json!(3)).is_empty());
        assert!(item_alerts(&s, "phq9_9", &json!("banana")).is_empty());
        assert!(item_alerts(&s, "nope", &json!(3)).is_empty());
    }
}
